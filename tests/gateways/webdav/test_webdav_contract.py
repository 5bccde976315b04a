"""The hierarchy contract, spoken through WebDAV by a requests-based client."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.contract.hierarchy_suite import WritableContract
from tests.gateways.webdav.conftest import DavSite
from tests.gateways.webdav.davclient import Dav, DavFs


class TestWebdavWritable(WritableContract):
    @pytest.fixture
    def fs(self, site: DavSite, dav: Callable[[str | None], Dav]
           ) -> Callable[[str | None], DavFs]:
        # The contract's anonymous reader: WebDAV serves one only when asked to.
        site.app.services.settings.set("joist.webdav.anonymous_read", True)
        return lambda login: DavFs(dav(login))

    def test_anonymous_sees_no_private(self, fs: Callable[[str | None], DavFs]) -> None:
        # WebDAV's rule (issue 12 #10): what anonymous may not see asks for a
        # login (401, so clients send credentials), the same as a missing path.
        anon = fs(None)
        assert "Private" not in anon.listdir("/user/alice")
        assert "Public" in anon.listdir("/user/alice")
        for path in ("/user/alice/Private", "/user/alice/Nothing"):
            with pytest.raises(PermissionError):
                anon.listdir(path)
