"""The hierarchy contract, read through the REST API: paths resolved by
``GET resource/lookup`` and checked back by ``GET resource/{id}/path``
(``tests/gateways/http/restfs.py``), against one server per module."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.contract.hierarchy_suite import HierarchyContract, ReadOnlyContract, WritableContract
from tests.gateways.http.restfs import RestFs
from tests.gateways.http.restsite import RestSite

Factory = Callable[[str | None], RestFs]

# The by-path write cases: REST writes by id (POST file/folder, PUT item/{id},
# DELETE folder/{id} which is always recursive), so a POSIX rename, an rmdir
# refused when not empty or an open-for-write on a path have no REST form.
# The REST writes are tested in test_rest_upload.py, test_rest_tree.py and
# test_rest_resource.py; the access rules on them in tests/security.
NOT_FOR_REST = "by-path write: REST writes by id (see tests/gateways/http/test_rest_*)"
WRITE_CASES = sorted((set(vars(WritableContract)) | set(vars(ReadOnlyContract)))
                     - set(vars(HierarchyContract)))


def skip_cases(names: list[str], reason: str) -> Callable[[type], type]:
    """Inherited contract cases shown as skipped (with the reason), not dropped."""
    def mark(cls: type) -> type:
        for name in names:
            if name.startswith("test_"):
                def skipped(self: object) -> None:
                    pytest.fail("skipped by its mark")
                skipped.__name__ = skipped.__qualname__ = name
                setattr(cls, name, pytest.mark.skip(reason=reason)(skipped))
        return cls
    return mark


@pytest.fixture(scope="module")
def clients(ro_site: RestSite) -> Iterator[dict[str | None, RestFs]]:
    yield {}  # one client per login, for the whole module


@skip_cases(WRITE_CASES, NOT_FOR_REST)
class TestRestReadContract(HierarchyContract):
    @pytest.fixture
    def fs(self, ro_site: RestSite, clients: dict[str | None, RestFs]) -> Factory:
        def make(login: str | None) -> RestFs:
            if login not in clients:
                clients[login] = RestFs(ro_site.api, ro_site.session(login))
            return clients[login]
        return make

    def test_root_and_virtual_dirs(self, fs: Factory) -> None:
        # Girder's rule (contract 2.x, listUser): GET user needs a login, so an
        # anonymous caller cannot list /user on REST; it still reads below it.
        anon = fs(None)
        assert sorted(anon.listdir("/")) == ["collection", "user"]
        assert anon.isdir("/") and anon.isdir("/user") and anon.isdir("/collection")
        with pytest.raises(PermissionError):
            anon.listdir("/user")
        assert "Public" in anon.listdir("/user/alice")
        assert {"admin", "alice", "bobby", "carol"} <= set(fs("bobby").listdir("/user"))

    def test_lookup_and_path_agree(self, fs: Factory, ro_site: RestSite) -> None:
        """The REST-only half: a file's path keeps its item segment (Girder
        never collapses an item), and an unreadable id's path is refused."""
        alice = fs("alice")
        item = alice.node("/user/alice/Private/data/a.txt")
        assert item.model == "item" and item.file_shaped
        file = alice.node("/user/alice/Private/data/a.txt/a.txt")
        assert file.model == "file" and file.doc["_id"] == item.file["_id"]
        reply = ro_site.get(f"resource/{item.doc['_id']}/path", "bobby",
                            params={"type": "item"})
        assert reply.status_code == 403, reply.text
