"""The change counter's view of the WAL index must leave SQLite's own locks
alone: closing any descriptor of the ``-shm`` file would drop them, and the
next process to open the database would rebuild the index under the others
(SIGBUS, "locking protocol")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from joist.core.db.engine import CollectionSpec
from joist.core.db.sqlite import SQLiteEngine

DMS = 128  # SQLite's "dead man switch" byte of the -shm file (os_unix.c)

PROBE = """
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
asked = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, int(sys.argv[2]), 1, 0)
held = struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, asked))[0]
print("held" if held != fcntl.F_UNLCK else "free")
"""


def claim(shm: Path) -> str:
    """Whether another process holds SQLite's shared lock on the WAL index,
    asked from a fresh process (a process never sees its own locks)."""
    out = subprocess.run([sys.executable, "-c", PROBE, str(shm), str(DMS)], capture_output=True,
                         text=True, check=True, timeout=60)
    return out.stdout.strip()


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_the_watch_keeps_sqlites_claim_on_the_wal_index(tmp_path: Path) -> None:
    path = tmp_path / "joist.db"
    engine = SQLiteEngine(str(path))
    try:
        engine.collection(CollectionSpec("n")).insert_one({"n": 1})
        shm = Path(f"{path}-shm")
        assert claim(shm) == "held"
        engine.change_counter()  # maps the WAL-index header
        assert claim(shm) == "held"
        other = SQLiteEngine(str(path))  # a second engine in the same process
        other.change_counter()
        other.close()
        assert claim(shm) == "held"
        assert isinstance(engine.change_counter(), int)
    finally:
        engine.close()


def test_the_last_close_lets_go_of_the_mapping(tmp_path: Path) -> None:
    before = open_fds()
    path = tmp_path / "joist.db"
    engine = SQLiteEngine(str(path))
    first = engine.change_counter()
    assert first is not None and first & 1  # answered from the mapping
    engine.close()
    assert not Path(f"{path}-shm").exists()  # SQLite's last close unlinked it
    assert open_fds() <= before


def test_processes_opening_together_all_live(tmp_path: Path) -> None:
    """Six processes open the database at once while this one holds it, each
    writes and watches: none may die or see "locking protocol"."""
    path = tmp_path / "joist.db"
    engine = SQLiteEngine(str(path))
    try:
        engine.change_counter()
        script = (
            "import sys\n"
            "from joist.core.db.sqlite import SQLiteEngine\n"
            "from joist.core.db.engine import CollectionSpec\n"
            "e = SQLiteEngine(sys.argv[1])\n"
            "c = e.collection(CollectionSpec('n'))\n"
            "for i in range(50):\n"
            "    e.change_counter(); c.insert_one({'i': i})\n"
            "e.close()\n")
        procs = [subprocess.Popen([sys.executable, "-c", script, str(path)],
                                  stderr=subprocess.PIPE) for _ in range(6)]
        results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else b"")
                   for p in procs]
        assert [code for code, _ in results] == [0] * 6, results
        assert engine.collection(CollectionSpec("n")).count() == 300
    finally:
        engine.close()

