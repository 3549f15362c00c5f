"""The judge's ``_Once`` (a value made once by whichever judge task asks first) when its maker is interrupted by a
``BaseException`` that is not an ``Exception`` (final30: later askers failed an assert)."""

from __future__ import annotations

import pytest

from agent.liveness.judge import MakeInterrupted, _Once


class Interrupted(BaseException):
    """Stands for KeyboardInterrupt/SystemExit/GeneratorExit without stopping the test run."""


def test_an_interrupted_maker_reaches_its_asker_unchanged_and_every_later_asker_a_stable_error():
    calls = []

    def make():
        calls.append(1)
        raise Interrupted("stop")
    once = _Once(make)
    with pytest.raises(Interrupted):
        once.get()
    with pytest.raises(MakeInterrupted, match=r"interrupted \(Interrupted\)") as first:
        once.get()
    with pytest.raises(MakeInterrupted) as second:
        once.get()
    assert first.value is second.value and isinstance(first.value.__cause__, Interrupted)
    assert calls == [1]                                   # made (tried) once


def test_a_value_and_an_ordinary_error_are_kept_as_before():
    once = _Once(lambda: [1])
    assert once.get() is once.get()
    bad = _Once(lambda: 1 // 0)
    with pytest.raises(ZeroDivisionError) as a:
        bad.get()
    with pytest.raises(ZeroDivisionError) as b:
        bad.get()
    assert a.value is b.value
