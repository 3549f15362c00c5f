"""The process's monotonic clock driven by the test (stream31): ``time.monotonic``, ``monotonic_ns`` and ``sleep``
replaced, so a streaming simulator renders in no time and its clock, its queue and the frameset matcher's holds do not
depend on the machine's load."""

from __future__ import annotations

import time


class Clock:
    """A monotonic clock that moves only when something sleeps on it (or the test moves it)."""

    def __init__(self) -> None:
        self.ns = 10**12

    def monotonic(self) -> float:
        return self.ns / 1e9

    def monotonic_ns(self) -> int:
        return self.ns

    def sleep(self, s: float) -> None:
        self.ns += max(0, round(s * 1e9))


def drive(monkeypatch) -> Clock:
    """A :class:`Clock` in place of ``time``'s monotonic clock and sleep until ``monkeypatch`` undoes it."""
    c = Clock()
    monkeypatch.setattr(time, "monotonic", c.monotonic)
    monkeypatch.setattr(time, "monotonic_ns", c.monotonic_ns)
    monkeypatch.setattr(time, "sleep", c.sleep)
    return c
