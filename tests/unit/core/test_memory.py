"""Memory that comes back after work: allocator knobs and the reclaimer."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from joist.core import memory


def test_arena_limit_and_trim_on_glibc() -> None:
    if memory._LIBC is None:
        pytest.skip("not glibc")
    assert memory.limit_arenas(0) is False  # 0 leaves glibc's default alone
    assert memory.limit_arenas(2) is True
    assert isinstance(memory.trim(), bool)
    assert memory.rss_mib() > 1


def test_reclaimer_runs_every_sweep_even_after_a_failing_one() -> None:
    calls: list[str] = []
    done = threading.Event()

    def failing() -> int:
        calls.append("failing")
        raise RuntimeError("boom")

    def counting() -> int:
        calls.append("counting")
        done.set()
        return 3

    reclaimer = memory.Reclaimer(0.01)
    reclaimer.add(failing)
    reclaimer.add(counting)
    reclaimer.start()
    try:
        assert done.wait(timeout=30)
    finally:
        reclaimer.stop()
    assert calls[:2] == ["failing", "counting"]
    assert reclaimer._thread is None  # joined: no more sweeps


def test_reclaimer_with_no_interval_never_starts() -> None:
    reclaimer = memory.Reclaimer(0)
    reclaimer.add(lambda: 1)
    reclaimer.start()
    assert reclaimer._thread is None
    reclaimer.run_once()  # by hand it still sweeps and may trim
    reclaimer.stop()


def test_reclaimer_trims_after_a_big_sweep_or_growth(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []
    rss = [100.0]
    monkeypatch.setattr(memory, "trim", lambda: trims.append(1) or True)
    monkeypatch.setattr(memory, "rss_mib", lambda: rss[0])
    dropped = [0]
    reclaimer = memory.Reclaimer(0)
    reclaimer.add(lambda: dropped[0])
    reclaimer.run_once()
    assert trims == []  # nothing freed, no growth: no trim
    dropped[0] = memory.DROPPED
    reclaimer.run_once()
    assert len(trims) == 1  # many entries freed
    dropped[0] = 0
    rss[0] += memory.GROWTH_MIB
    reclaimer.run_once()
    assert len(trims) == 2 and reclaimer.trims == 2  # RSS grew since the last trim
    reclaimer.run_once()
    assert len(trims) == 2


def test_freeze_startup_keeps_no_garbage_and_freezes_the_rest() -> None:
    class Cyclic:
        pass

    garbage = Cyclic()
    garbage.me = garbage  # type: ignore[attr-defined]
    gone = weakref.ref(garbage)
    kept = Cyclic()
    del garbage
    try:
        memory.freeze_startup()
        assert gone() is None  # collected before the freeze, not kept for good
        assert gc.get_freeze_count() > 0 and kept is not None
    finally:
        gc.unfreeze()  # this test process goes on building apps
