"""The hierarchy contract, spoken through WebDAV by a requests-based client."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.contract.hierarchy_suite import WritableContract
from tests.gateways.webdav.davclient import Dav, DavFs


class TestWebdavWritable(WritableContract):
    @pytest.fixture
    def fs(self, dav: Callable[[str | None], Dav]) -> Callable[[str | None], DavFs]:
        return lambda login: DavFs(dav(login))
