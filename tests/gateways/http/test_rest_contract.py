"""The hierarchy contract, read through the REST API: paths resolved by
``GET resource/lookup`` and checked back by ``GET resource/{id}/path``
(``tests/gateways/http/restfs.py``), against one server per module."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.contract.hierarchy_suite import HierarchyContract, ReadOnlyContract, WritableContract
from tests.gateways.http.restfs import RestFs
from tests.gateways.http.restsite import RestSite

Factory = Callable[[str | None], RestFs]

# The contract's write cases speak of paths: REST writes by id (POST file and
# folder under a parent id, PUT item/folder to rename or move, DELETE folder
# always recursive), so each is shown skipped with why, never dropped. REST's
# own writes are in test_rest_upload.py, test_rest_tree.py, test_rest_resource.py
# and their access rules in tests/security/test_access_matrix.py.
NOT_FOR_REST = {
    "test_read_only_refusals": "a writable gateway (read-only is SFTP's and a plain mount's)",
    "test_create_read_overwrite_remove": "open-for-write on a path: REST uploads under a "
                                         "parent id (POST file) and replaces by file id",
    "test_mkdir_and_rmdir": "rmdir refusing a non-empty directory: REST's DELETE folder is "
                            "always recursive (Girder)",
    "test_rename_file_and_folder": "POSIX rename by path: REST renames and moves by id "
                                   "(PUT item/folder)",
    "test_file_in_item_directory": "a file created by path in an item directory: REST "
                                   "uploads by item id (POST file parentType=item)",
    "test_write_denied_where_readable": "by-path writes: REST's write denials by id are in "
                                        "tests/security/test_access_matrix.py",
    "test_write_where_invisible_is_not_found": "by-path writes: REST's write denials by id "
                                               "are in tests/security/test_access_matrix.py",
}


def contract_cases(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ for name in vars(klass) if name.startswith("test_")}


def skip_cases(reasons: dict[str, str]) -> Callable[[type], type]:
    """Contract cases shown as skipped with their reason, not silently dropped."""
    def mark(cls: type) -> type:
        for name, reason in reasons.items():
            def skipped(self: object) -> None:
                pytest.fail("skipped by its mark")
            skipped.__name__ = skipped.__qualname__ = name
            setattr(cls, name, pytest.mark.skip(reason=f"REST: {reason}")(skipped))
        return cls
    return mark


@pytest.fixture(scope="module")
def clients(ro_site: RestSite) -> dict[str | None, RestFs]:
    return {}  # one client per login, for the whole module


@skip_cases(NOT_FOR_REST)
class TestRestReadContract(HierarchyContract):
    @pytest.fixture
    def fs(self, ro_site: RestSite, clients: dict[str | None, RestFs]) -> Factory:
        def make(login: str | None) -> RestFs:
            if login not in clients:
                clients[login] = RestFs(ro_site.api, ro_site.session(login))
            return clients[login]
        return make

    def test_root_and_virtual_dirs(self, fs: Factory) -> None:
        # Girder's rule (girder-rest-contract.md, listUser): GET user needs a login, so an
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


def test_every_contract_case_runs_or_says_why_not() -> None:
    """A case added to the contract reaches REST, or is skipped with a reason."""
    every = contract_cases(WritableContract) | contract_cases(ReadOnlyContract)
    assert every - contract_cases(HierarchyContract) == set(NOT_FOR_REST)
