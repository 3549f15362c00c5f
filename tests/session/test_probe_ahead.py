"""The probe's frameset aligned while the capture goes on (``agent/session/probe_ahead.py``): only
the frameset named last is aligned, the verdict's frameset is taken only when it is that very
frameset, and nothing is kept after the session. The alignment here is the test's (it records
its calls and can be held), so the structure is checked, not the time."""

from __future__ import annotations

import threading

import pytest

from agent.session.probe_ahead import ProbeAhead


class _Frames:
    """Stands for a frameset: compared by identity, like the session's."""

    def __init__(self, name: str) -> None:
        self.name = name


class _Align:
    """An alignment that records what it aligned, can be held until released, and can fail."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.started = threading.Semaphore(0)
        self.go = threading.Event()
        self.go.set()
        self.fail: set[str] = set()

    def __call__(self, fs: _Frames):
        self.calls.append(fs.name)
        self.started.release()
        assert self.go.wait(10)
        if fs.name in self.fail:
            raise ValueError("SYN_ALIGN_INPUT")
        return ("aligned", fs)


@pytest.fixture
def align():
    return _Align()


def test_the_frameset_named_is_aligned_once_and_taken_at_the_verdict(align):
    a, b = _Frames("a"), _Frames("b")
    with ProbeAhead(align) as ahead:
        ahead.name(a)
        assert align.started.acquire(timeout=10)
        got = ahead.take(a)                   # waits for it if it is still running
        assert got == ("aligned", a) and got[1] is a
        assert align.calls == ["a"] and ahead.aligned == 1
        assert ahead.take(a) is None          # taken once: nothing of it is kept
    with ProbeAhead(align) as ahead:
        ahead.name(a)
        assert align.started.acquire(timeout=10)
        assert ahead.take(b) is None          # the verdict named another: the session aligns that one
        assert ahead.take(a) is None


def test_a_frameset_equal_to_the_one_aligned_but_not_it_is_not_taken(align):
    # The verdict's frameset is the session's own object, found by the index the verdict names: the
    # alignment made ahead is taken only for that very object.
    a = _Frames("a")
    twin = _Frames("a")
    with ProbeAhead(align) as ahead:
        ahead.name(a)
        assert align.started.acquire(timeout=10)
        assert ahead.take(twin) is None


def test_only_the_last_frameset_named_while_one_is_aligned_is_aligned_next(align):
    a, b, c = _Frames("a"), _Frames("b"), _Frames("c")
    align.go.clear()
    with ProbeAhead(align) as ahead:
        ahead.name(a)
        assert align.started.acquire(timeout=10)        # a is being aligned, held
        ahead.name(b)
        ahead.name(c)                                    # b is never aligned
        ahead.name(a)                                    # a again: being aligned already, c no longer wanted
        align.go.set()
        assert ahead.take(a) == ("aligned", a)
        assert align.calls == ["a"] and ahead.named == 4
    align.go.clear()
    align.calls.clear()
    with ProbeAhead(align) as ahead:
        ahead.name(a)
        assert align.started.acquire(timeout=10)
        ahead.name(b)
        ahead.name(c)
        align.go.set()
        assert align.started.acquire(timeout=10)        # then c, the last named
        assert ahead.take(c) == ("aligned", c)
        assert align.calls == ["a", "c"]


def test_the_verdict_waits_for_the_alignment_of_its_frameset_if_it_is_running(align):
    a = _Frames("a")
    align.go.clear()
    out: list = []
    with ProbeAhead(align) as ahead:
        ahead.name(a)
        assert align.started.acquire(timeout=10)
        taker = threading.Thread(target=lambda: out.append(ahead.take(a)))
        taker.start()
        align.go.set()
        taker.join(10)
        assert out == [("aligned", a)] and align.calls == ["a"]


def test_a_failed_alignment_is_left_to_the_session_and_nothing_outlives_close(align):
    a, b = _Frames("a"), _Frames("b")
    align.fail.add("a")
    with ProbeAhead(align) as ahead:
        ahead.name(a)
        assert align.started.acquire(timeout=10)
        assert ahead.take(a) is None          # the session aligns it itself and meets the error there
    ahead = ProbeAhead(align)
    ahead.name(b)
    assert align.started.acquire(timeout=10)
    ahead.close()
    assert ahead._thread is not None and not ahead._thread.is_alive()
    assert ahead._done is None and ahead._wanted is None and ahead._running is None
    ahead.name(a)                             # after close: ignored
    assert ahead.take(a) is None and ahead.take(b) is None and align.calls == ["a", "b"]
