"""The hierarchy contract: what every gateway must show of the tree in ``world``.

A gateway's tests subclass ``HierarchyContract`` and provide the ``fs`` fixture:
a callable ``fs(login_or_None) -> FsClient`` speaking that gateway's real
protocol. Errors must surface as the built-in OS exceptions (FileNotFoundError,
PermissionError, FileExistsError, or OSError with an errno), as the view's own
errors already are.
"""

from __future__ import annotations

import errno
from typing import Protocol

import pytest

from tests import world as w


class FsClient(Protocol):
    def listdir(self, path: str) -> list[str]: ...
    def isdir(self, path: str) -> bool: ...
    def size(self, path: str) -> int: ...
    def read(self, path: str, offset: int = 0, size: int | None = None) -> bytes: ...
    def write(self, path: str, data: bytes) -> None: ...
    def mkdir(self, path: str) -> None: ...
    def remove(self, path: str) -> None: ...
    def rmdir(self, path: str) -> None: ...
    def rename(self, src: str, dst: str) -> None: ...


DATA = "/user/alice/Private/data"
REFUSED = (errno.EROFS, errno.EACCES, errno.EPERM)


def refused(exc: BaseException) -> bool:
    return isinstance(exc, PermissionError) or (
        isinstance(exc, OSError) and exc.errno in REFUSED)


class HierarchyContract:
    """Read-side rules every gateway keeps."""

    def test_root_and_virtual_dirs(self, fs) -> None:
        anon = fs(None)
        assert sorted(anon.listdir("/")) == ["collection", "user"]
        assert anon.isdir("/") and anon.isdir("/user") and anon.isdir("/collection")
        assert {"admin", "alice", "bobby", "carol"} <= set(anon.listdir("/user"))

    def test_collections_filtered_by_acl(self, fs) -> None:
        assert "secret" not in fs("bobby").listdir("/collection")
        assert "shared" not in fs("bobby").listdir("/collection")
        assert "shared" in fs("carol").listdir("/collection")  # through the group
        assert {"shared", "secret"} <= set(fs("admin").listdir("/collection"))

    def test_owner_reads_natural_layout(self, fs) -> None:
        alice = fs("alice")
        assert sorted(alice.listdir(DATA)) == ["a.txt", "deep", "multi", "odd\\-name"]
        assert not alice.isdir(f"{DATA}/a.txt")
        assert alice.size(f"{DATA}/a.txt") == len(w.A_TXT)
        assert alice.read(f"{DATA}/a.txt") == w.A_TXT
        assert alice.isdir(f"{DATA}/multi")
        assert sorted(alice.listdir(f"{DATA}/multi")) == ["x.bin", "y.bin"]
        assert alice.read(f"{DATA}/multi/x.bin") == w.X_BIN
        assert alice.read(f"{DATA}/deep/d1/d2/d3/leaf.txt") == w.LEAF

    def test_ranged_reads(self, fs) -> None:
        alice = fs("alice")
        path = f"{DATA}/multi/y.bin"
        assert alice.read(path, 100, 50) == w.Y_BIN[100:150]
        assert alice.read(path, len(w.Y_BIN) - 10, 100) == w.Y_BIN[-10:]
        assert alice.read(path, len(w.Y_BIN) + 5, 10) == b""

    def test_name_codec(self, fs) -> None:
        alice = fs("alice")
        assert alice.isdir(f"{DATA}/odd\\-name")
        assert alice.listdir(f"{DATA}/odd\\-name") == []

    def test_public_data_for_everyone(self, fs) -> None:
        for who in (None, "bobby", "carol"):
            assert fs(who).read("/user/alice/Public/readme.txt") == w.README

    def test_group_grant(self, fs) -> None:
        assert fs("carol").read("/collection/shared/docs/report.txt") == w.REPORT

    @pytest.mark.parametrize("path", [
        "/user/alice/Private", f"{DATA}", f"{DATA}/a.txt", f"{DATA}/multi/x.bin",
        "/collection/secret", "/collection/secret/vault/hidden.txt",
    ])
    def test_denied_is_not_found(self, fs, path: str) -> None:
        """A forbidden path answers exactly as a missing one: no existence leak."""
        bob = fs("bobby")
        missing = path + "-does-not-exist"
        for target in (path, missing):
            for probe in (bob.size, bob.read, bob.listdir, bob.isdir):
                with pytest.raises(FileNotFoundError):
                    probe(target)

    def test_anonymous_sees_no_private(self, fs) -> None:
        anon = fs(None)
        assert "Private" not in anon.listdir("/user/alice")
        assert "Public" in anon.listdir("/user/alice")
        with pytest.raises(FileNotFoundError):
            anon.listdir("/user/alice/Private")

    def test_missing_paths(self, fs) -> None:
        alice = fs("alice")
        for path in ("/nope", "/user/nobody", "/collection/none", f"{DATA}/none.txt",
                     f"{DATA}/multi/none.bin"):
            with pytest.raises(FileNotFoundError):
                alice.size(path)



class ReadOnlyContract(HierarchyContract):
    """Read-only gateways (SFTP, a mount without --rw): every write refused."""

    def test_read_only_refusals(self, fs) -> None:
        alice = fs("alice")
        attempts = [
            lambda: alice.write(f"{DATA}/new.txt", b"x"),
            lambda: alice.write(f"{DATA}/a.txt", b"x"),
            lambda: alice.mkdir(f"{DATA}/newdir"),
            lambda: alice.remove(f"{DATA}/a.txt"),
            lambda: alice.rmdir(f"{DATA}/deep"),
            lambda: alice.rename(f"{DATA}/a.txt", f"{DATA}/b.txt"),
        ]
        for attempt in attempts:
            with pytest.raises(OSError) as info:
                attempt()
            assert refused(info.value), info.value
        assert alice.read(f"{DATA}/a.txt") == w.A_TXT
        assert sorted(alice.listdir(DATA)) == ["a.txt", "deep", "multi", "odd\\-name"]


class WritableContract(HierarchyContract):
    """Writable gateways (WebDAV, a mount with --rw)."""

    def test_create_read_overwrite_remove(self, fs) -> None:
        alice = fs("alice")
        path = f"{DATA}/new.txt"
        alice.write(path, b"first version")
        assert alice.read(path) == b"first version"
        assert not alice.isdir(path)
        alice.write(path, b"second")
        assert alice.read(path) == b"second"
        assert alice.size(path) == 6
        alice.remove(path)
        with pytest.raises(FileNotFoundError):
            alice.size(path)

    def test_mkdir_and_rmdir(self, fs) -> None:
        alice = fs("alice")
        alice.mkdir(f"{DATA}/fresh")
        assert alice.isdir(f"{DATA}/fresh")
        with pytest.raises(FileExistsError):
            alice.mkdir(f"{DATA}/fresh")
        alice.write(f"{DATA}/fresh/f.txt", b"f")
        with pytest.raises(OSError):
            alice.rmdir(f"{DATA}/fresh")  # not empty
        alice.remove(f"{DATA}/fresh/f.txt")
        alice.rmdir(f"{DATA}/fresh")
        assert "fresh" not in alice.listdir(DATA)

    def test_rename_file_and_folder(self, fs) -> None:
        alice = fs("alice")
        alice.rename(f"{DATA}/a.txt", f"{DATA}/renamed.txt")
        assert alice.read(f"{DATA}/renamed.txt") == w.A_TXT
        assert "a.txt" not in alice.listdir(DATA)
        alice.rename(f"{DATA}/renamed.txt", f"{DATA}/deep/moved.txt")
        assert alice.read(f"{DATA}/deep/moved.txt") == w.A_TXT
        alice.rename(f"{DATA}/deep", f"{DATA}/multi2")
        assert alice.read(f"{DATA}/multi2/d1/d2/d3/leaf.txt") == w.LEAF

    def test_file_in_item_directory(self, fs) -> None:
        alice = fs("alice")
        alice.write(f"{DATA}/multi/z.bin", b"zzz")
        assert sorted(alice.listdir(f"{DATA}/multi")) == ["x.bin", "y.bin", "z.bin"]
        alice.remove(f"{DATA}/multi/z.bin")
        assert sorted(alice.listdir(f"{DATA}/multi")) == ["x.bin", "y.bin"]

    def test_write_denied_where_readable(self, fs) -> None:
        carol = fs("carol")  # READ on shared through her group, no WRITE
        with pytest.raises(PermissionError):
            carol.write("/collection/shared/docs/new.txt", b"x")
        with pytest.raises(PermissionError):
            carol.remove("/collection/shared/docs/report.txt")
        with pytest.raises(PermissionError):
            carol.mkdir("/collection/shared/docs/sub")
        assert carol.read("/collection/shared/docs/report.txt") == w.REPORT

    def test_write_where_invisible_is_not_found(self, fs) -> None:
        bob = fs("bobby")
        with pytest.raises(FileNotFoundError):
            bob.write(f"{DATA}/intrude.txt", b"x")
        with pytest.raises(FileNotFoundError):
            bob.remove(f"{DATA}/a.txt")
        assert fs("alice").read(f"{DATA}/a.txt") == w.A_TXT
