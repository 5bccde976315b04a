"""The fence around mfusepy's internals (gateways/fuse/mfusepy_internals.py):
each internal probed on the installed mfusepy, each probe shown to fail when
the internal changes, and a mount that refuses to start on such a mfusepy.
No mount is needed: the real-mount suites exercise the same class."""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet

from joist.core.errors import UnsupportedError
from joist.gateways.fuse import libfuse
from joist.gateways.fuse import mfusepy_internals as internals

ROOT = Path(__file__).resolve().parents[3]

try:
    MFUSEPY: types.ModuleType | None = internals.load()
except UnsupportedError:
    MFUSEPY = None
needs_libfuse3 = pytest.mark.skipif(MFUSEPY is None, reason="no libfuse3 on this machine")


def _mfusepy() -> types.ModuleType:
    assert MFUSEPY is not None
    return MFUSEPY


@needs_libfuse3
def test_the_installed_mfusepy_passes_the_check() -> None:
    assert internals.problems(_mfusepy()) == []
    internals.check(_mfusepy())
    assert importlib.metadata.version("mfusepy") in SpecifierSet(internals.TESTED)


def test_setup_pins_mfusepy_to_the_tested_range() -> None:
    pins = re.findall(r'"mfusepy([^"]*)"', (ROOT / "setup.py").read_text())
    assert pins == [internals.TESTED]


@needs_libfuse3
def test_load_binds_libfuse3_and_leaves_the_environment_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUSE_LIBRARY_PATH", raising=False)
    monkeypatch.delenv("FUSE_LIBRARY_NAME", raising=False)
    monkeypatch.delitem(sys.modules, "mfusepy")  # a fresh import (put back afterwards)
    before = dict(os.environ)
    fresh = internals.load()
    assert fresh is not MFUSEPY
    assert fresh.fuse_version_major == 3
    assert "fuse3" in os.path.basename(fresh._libfuse_path)
    assert dict(os.environ) == before


def _altered(**changes: Any) -> types.ModuleType:
    """The installed mfusepy with some internals changed."""
    fake = types.ModuleType("mfusepy")
    fake.__dict__.update(vars(_mfusepy()))
    fake.__dict__.update(changes)
    return fake


def _fuse_with(**methods: Any) -> type:
    return type("FUSE", (_mfusepy().FUSE,), methods)


@needs_libfuse3
@pytest.mark.parametrize(("changes", "expected"), [
    ({"FUSE": "wrapper"}, "FUSE._wrapper"),
    ({"FUSE": "readdir"}, "FUSE.readdir_fuse_3"),
    ({"_libfuse": None}, "mfusepy._libfuse"),
    ({"fuse_version_minor": 11}, "ends idle workers"),
    ({"set_st_attrs": lambda st, attrs: None}, "set_st_attrs"),
    ({"fuse_conn_info": type("Conn", (ctypes.Structure,), {"_fields_": [
        ("want", ctypes.c_uint)]})}, "fuse_conn_info has no capable"),
])
def test_a_changed_internal_fails_the_check_loudly(changes: dict[str, Any],
                                                   expected: str) -> None:
    if changes.get("FUSE") == "wrapper":
        changes = {"FUSE": _fuse_with(_wrapper=lambda self, func, *args: 0)}
    elif changes.get("FUSE") == "readdir":
        changes = {"FUSE": _fuse_with(readdir_fuse_3=lambda self, path, buf, filler, offset,
                                      fip: 0)}
    with pytest.raises(internals.MfusepyInternalsError) as caught:
        internals.check(_altered(**changes))
    assert expected in str(caught.value)
    assert "tested: mfusepy" in str(caught.value)


@needs_libfuse3
def test_set_st_attrs_that_drops_nanoseconds_fails_the_check() -> None:
    real = _mfusepy().set_st_attrs

    def seconds_only(st: Any, attrs: dict[str, Any], use_ns: bool = False) -> None:
        real(st, attrs, use_ns=False)

    assert any("nanoseconds" in p for p in internals.problems(_altered(set_st_attrs=seconds_only)))


@needs_libfuse3
def test_a_mount_refuses_to_start_on_a_changed_mfusepy(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    broken = _altered(_libfuse=None)
    monkeypatch.setattr(internals, "load", lambda: broken)
    started = []
    monkeypatch.setattr(internals, "fuse_class", lambda m: started.append(m))
    with pytest.raises(internals.MfusepyInternalsError, match="_libfuse"):
        libfuse.run(object(), tmp_path, {})
    assert not started


# A foreign thread (one Python did not start) calling back into Python three
# times, as libfuse's workers do.
_SHIM = r"""
#include <pthread.h>
typedef void (*callback)(int);
static void *run(void *arg) {
    callback cb = *(callback *)arg;
    for (int i = 0; i < 3; i++) cb(i);
    return 0;
}
int call_thrice_on_a_new_thread(callback cb) {
    pthread_t thread;
    if (pthread_create(&thread, 0, run, &cb)) return -1;
    return pthread_join(thread, 0);
}
"""


@pytest.fixture(scope="module")
def foreign_thread(tmp_path_factory: pytest.TempPathFactory) -> Any:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build a foreign-thread probe")
    work = tmp_path_factory.mktemp("shim")
    (work / "shim.c").write_text(_SHIM)
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(work / "shim.so"),
                    str(work / "shim.c"), "-lpthread"], check=True, timeout=60)
    lib = ctypes.CDLL(str(work / "shim.so"))
    callback = ctypes.CFUNCTYPE(None, ctypes.c_int)
    lib.call_thrice_on_a_new_thread.argtypes = [callback]

    def call_thrice(function: Any) -> None:
        keep = callback(function)
        assert lib.call_thrice_on_a_new_thread(keep) == 0

    return call_thrice


def _marks_seen(call_thrice: Any, keep: bool) -> list[int | None]:
    local = threading.local()
    seen: list[int | None] = []

    def callback(i: int) -> None:
        if keep:
            internals.keep_thread_state()
        seen.append(getattr(local, "mark", None))
        local.mark = i

    call_thrice(callback)
    return seen


def test_without_the_kept_state_thread_locals_die_per_callback(foreign_thread: Any) -> None:
    # The control: this is what the extra PyGILState_Ensure exists to prevent.
    assert _marks_seen(foreign_thread, keep=False) == [None, None, None]


def test_the_kept_state_keeps_thread_locals_across_callbacks(foreign_thread: Any) -> None:
    kept = internals.kept_states
    assert _marks_seen(foreign_thread, keep=True) == [None, 0, 1]
    assert internals.kept_states == kept + 1  # one Ensure per thread, not per call
