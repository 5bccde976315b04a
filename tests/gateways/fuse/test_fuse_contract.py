"""The hierarchy contract through real mounts: each principal's view mounted
with ``joist mount`` and used with plain ``os`` calls and ``open``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.contract.hierarchy_suite import ReadOnlyContract, WritableContract
from tests.gateways.fuse.fuse_harness import MountFs, MountSite, mount_site, needs_fuse

pytestmark = needs_fuse

Factory = Callable[[str | None], MountFs]


@pytest.fixture(scope="module")
def ro_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MountSite]:
    with mount_site(tmp_path_factory.mktemp("fuse-ro")) as site:
        yield site


@pytest.fixture(scope="module")
def rw_shared_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MountSite]:
    with mount_site(tmp_path_factory.mktemp("fuse-rw-shared")) as site:
        yield site


@pytest.fixture
def rw_site(tmp_path: Path) -> Iterator[MountSite]:
    with mount_site(tmp_path / "site") as site:
        yield site


def _factory(site: MountSite, *args: str) -> Factory:
    return lambda login: MountFs(site.mount(login, *args).root)


class TestFuseReadOnly(ReadOnlyContract):
    @pytest.fixture
    def fs(self, ro_site: MountSite) -> Factory:
        return _factory(ro_site)


class TestFuseWritable(WritableContract):
    @pytest.fixture
    def fs(self, request: pytest.FixtureRequest, rw_shared_site: MountSite) -> Factory:
        # The tests inherited from HierarchyContract only read: they share one
        # world and its mounts. The write tests each get a fresh world.
        if request.function.__qualname__.startswith("HierarchyContract."):
            return _factory(rw_shared_site, "--rw")
        return _factory(request.getfixturevalue("rw_site"), "--rw")
