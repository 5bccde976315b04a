"""The fence around cheroot's internals (admin/cheroot_internals.py): the
installed cheroot passes, each probe fails when its internal changes, the
front offers every call cheroot makes on a connection manager, and a server
refuses to start on a cheroot that changed."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import cheroot
import pytest
from cheroot import server
from cheroot.workers import threadpool
from packaging.specifiers import SpecifierSet

from joist.admin import cheroot_internals as internals
from joist.admin.http_body import Limits, SocketWriter
from joist.admin.http_front import GuardedServer, HeadFront

ROOT = Path(__file__).resolve().parents[3]


def test_the_installed_cheroot_passes_the_check() -> None:
    internals.check()
    assert cheroot.__version__ in SpecifierSet(internals.TESTED)


def test_setup_pins_cheroot_to_the_tested_range() -> None:
    pins = re.findall(r'"cheroot([^"]*)"', (ROOT / "setup.py").read_text())
    assert pins == [internals.TESTED]


def test_the_front_offers_every_call_cheroot_makes_on_its_manager() -> None:
    missing = [name for name in internals.manager_calls() if not hasattr(HeadFront, name)]
    assert not missing


def test_the_writer_offers_every_call_cheroot_makes_on_it() -> None:
    missing = [name for name in internals.writer_calls() if not hasattr(SocketWriter, name)]
    assert not missing
    with socket.socket() as sock:  # the thread pool's statistics read it
        assert SocketWriter(sock).bytes_written == 0


def _broken(monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    if what == "manager call":
        monkeypatch.setattr(internals, "MANAGER_CALLS", internals.MANAGER_CALLS | {"drain"})
    elif what == "process_conn":
        monkeypatch.delattr(server.HTTPServer, "process_conn")
    elif what == "connection signature":
        def init(self: Any, server: Any, sock: Any) -> None:
            raise AssertionError("never built")
        monkeypatch.setattr(server.HTTPConnection, "__init__", init)
    elif what == "writer call":
        monkeypatch.setattr(internals, "WRITER_CALLS", internals.WRITER_CALLS | {"flush"})
    elif what == "qsize":
        monkeypatch.setattr(threadpool.ThreadPool, "qsize", lambda self: 0)
    elif what == "prepare":
        monkeypatch.setattr(server.HTTPServer, "prepare", lambda self: None)


@pytest.mark.parametrize("what", ["manager call", "process_conn", "connection signature",
                                  "writer call", "qsize", "prepare"])
def test_each_probe_fails_when_its_internal_changes(monkeypatch: pytest.MonkeyPatch,
                                                     what: str) -> None:
    _broken(monkeypatch, what)
    with pytest.raises(internals.CherootInternalsError, match=cheroot.__version__):
        internals.check()


def test_a_server_does_not_start_on_a_changed_cheroot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(server.HTTPServer, "process_conn")
    limits = Limits(header_timeout=5, body_timeout=5, body_min_rate=0, per_address=0,
                    body_workers_per_address=1, max_head_bytes=65536)
    srv = GuardedServer(("127.0.0.1", 0), lambda environ, start: [], limits)
    with pytest.raises(internals.CherootInternalsError, match="process_conn"):
        srv.prepare()
    assert srv.front is None and not srv.ready
