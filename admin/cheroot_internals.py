"""Every use the HTTP front (``http_front.py``) makes of cheroot beyond its
public API: listed here, each checked by ``check()`` when a server starts.

cheroot's public API is a WSGI server whose connection manager hands a new
connection to a worker thread at once; the front replaces that manager (see
its module doc for why). That takes six things cheroot does not document:

``HTTPServer._connections``
    The manager ``prepare()`` builds; ``serve()``, ``stop()`` and the
    workers (through ``put_conn``) call exactly ``run``, ``stop``, ``close``,
    ``put`` and ``can_add_keepalive_connection`` on it. ``install_manager``
    swaps ours in; ``check`` verifies cheroot still calls no other method.

``HTTPServer.process_conn(conn)``
    Queues a connection for a worker: the front calls it once a head is in.

``HTTPConnection(server, sock, makefile)``
    The constructor's third argument builds the socket files: the front's
    reader replays the head bytes it has already read.

``conn.wfile``
    The connection's writer (``http_body.SocketWriter``, built by the same
    third argument): cheroot calls only ``write`` on it (``WRITER_CALLS``), and
    its thread pool's statistics read ``bytes_written``.

``ThreadPool.qsize``
    How many connections wait for a worker (a property): a worker waits for
    its client's next request only while none does (``HeadFront.take_next``).

``HTTPServer.bind(family, type, proto)``
    What ``prepare()`` calls to create ``self.socket``: a ``joist serve``
    worker overrides it to adopt the listening socket its supervisor bound
    (``admin/workers.py``) instead of binding one.

A cheroot that changes any of these fails ``check()`` (and so the server's
start) with ``CherootInternalsError`` rather than misbehaving silently;
``tests/gateways/http/test_cheroot_internals.py`` probes each one. ``setup.py``
pins cheroot to the range tested (``TESTED``).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import cheroot
from cheroot import server
from cheroot.workers import threadpool

TESTED = ">=11.0,<12"
"""cheroot versions these internals were checked against (as in setup.py)."""

MANAGER_CALLS = frozenset({"run", "stop", "close", "put", "can_add_keepalive_connection"})
"""What cheroot's server calls on its connection manager."""

WRITER_CALLS = frozenset({"write"})
"""What cheroot's request and connection code calls on a connection's ``wfile``."""


class CherootInternalsError(RuntimeError):
    """The installed cheroot no longer has an internal the front relies on."""


def manager_calls() -> set[str]:
    """The attributes cheroot's ``HTTPServer`` uses on ``self._connections``."""
    source = inspect.getsource(server.HTTPServer)
    return set(re.findall(r"self\._connections\.(\w+)", source))


def writer_calls() -> set[str]:
    """The attributes cheroot's server module uses on a connection's ``wfile``."""
    return set(re.findall(r"\.wfile\.(\w+)", inspect.getsource(server)))


def check() -> None:
    """Fail loudly if this cheroot differs from the one the front was built for."""
    problems = []
    if "self._connections = " not in inspect.getsource(server.HTTPServer.prepare):
        problems.append("HTTPServer.prepare no longer builds self._connections")
    calls = manager_calls()
    if calls != MANAGER_CALLS:
        problems.append(f"HTTPServer calls {sorted(calls)} on its connection manager, "
                        f"not {sorted(MANAGER_CALLS)}")
    if not callable(getattr(server.HTTPServer, "process_conn", None)):
        problems.append("HTTPServer.process_conn is gone")
    params = list(inspect.signature(server.HTTPConnection.__init__).parameters)
    if params[:4] != ["self", "server", "sock", "makefile"]:
        problems.append(f"HTTPConnection takes {params}, not (server, sock, makefile)")
    if "self.bind(" not in inspect.getsource(server.HTTPServer.prepare):
        problems.append("HTTPServer.prepare no longer calls self.bind")
    bind_params = list(inspect.signature(server.HTTPServer.bind).parameters)
    if bind_params[:4] != ["self", "family", "type", "proto"]:
        problems.append(f"HTTPServer.bind takes {bind_params}, not (family, type, proto)")
    if writer_calls() != WRITER_CALLS:
        problems.append(f"cheroot calls {sorted(writer_calls())} on a connection's writer, "
                        f"not {sorted(WRITER_CALLS)}")
    if not isinstance(inspect.getattr_static(threadpool.ThreadPool, "qsize", None), property):
        problems.append("ThreadPool.qsize is no longer a property")
    if problems:
        raise CherootInternalsError(
            f"cheroot {cheroot.__version__} is not one the HTTP front was "
            f"tested with ({TESTED}): " + "; ".join(problems))


def install_manager(httpserver: Any, manager: Any) -> Any:
    """Put ``manager`` in place of the one ``prepare()`` built; return the old one."""
    old = httpserver._connections
    httpserver._connections = manager
    return old


__all__ = ["MANAGER_CALLS", "TESTED", "WRITER_CALLS", "CherootInternalsError", "check",
           "install_manager", "manager_calls", "writer_calls"]
