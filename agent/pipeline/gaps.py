"""Lost framesets in a challenge window: where a stream's frame counter or timestamp jumps.

The challenge's verifiers compare the window's framesets with the nonce's schedule by their PLACE in
the window (never by the frames' own counters, which an injector on the camera link writes itself).
A frameset the host loses (a USB drop, the matcher giving up a late tick) therefore moves every
later projector and screen edge a frame early: a contradiction, judged ``attack``. Such a window is
instead ended as "frames lost" (``SES_FRAMES_LOST``, counted as a failed attempt) as soon as the gap
is seen, and the server refuses a window with one (``hil/ingest/evidence.py``). The counters decide
only whether a window is whole, never how it is aligned.

The rule (:func:`first_gap`), per stream, over consecutive framesets of one window:

* counter: every step is the window's smallest positive step (1 when the stream runs at the
  framesets' rate, 3 for a 90 fps depth stream matched at 30); a larger one is a gap;
* time, on the terminal and only for a stream on the camera's own clock (``ClockDomain.HARDWARE``):
  no step longer than its counted frames plus half a frame period, the period being the window's
  own (the median time per counted frame: a camera slower than its profile, a UVC colour imager at
  half rate in dim light, is not a gap). Host arrival times (``SYSTEM``, ``GLOBAL``) jitter with the
  host's load, and a genuine window must not be refused for that; the server, which does not know
  a stream's clock, checks the counters only (it must never refuse what a genuine terminal sends).

A counter or timestamp that does not advance is not called a gap: the judge reads it as a sign of
frames not streamed now (``injection_signals``) and the server refuses it on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from drivers.frame import ClockDomain, FrameSet, StreamKind

SLACK_PERIODS = 0.5            # a step may exceed its counted frames' time by this many frame periods


@dataclass(frozen=True)
class Gap:
    """One jump in one stream between framesets ``index - 1`` and ``index`` of the window."""

    stream: str
    index: int
    counter_step: int
    expected_step: int
    ms: float
    period_ms: float

    def describe(self) -> str:
        if self.counter_step != self.expected_step:
            return (f"{self.stream} frame counter advanced by {self.counter_step} between framesets "
                    f"{self.index - 1} and {self.index} of the window (by {self.expected_step} elsewhere)")
        return (f"{self.stream} timestamps {self.ms:.1f} ms apart between framesets {self.index - 1} and "
                f"{self.index} of the window ({self.counter_step} frame(s) of {self.period_ms:.1f} ms counted)")


def first_gap(stream: str, counters: Sequence[float] | np.ndarray, stamps: Sequence[float] | np.ndarray, *,
              timed: bool = True) -> Gap | None:
    """The first gap in one stream's frame counters and timestamps (ms) over a window's framesets,
    in order; None when the window is whole (or too short to tell: fewer than two steps). Without
    ``timed`` only the counters are checked (the timestamps still say which steps advanced)."""
    c = np.asarray(counters, dtype=np.float64)
    s = np.asarray(stamps, dtype=np.float64)
    n = min(len(c), len(s))
    if n < 2:
        return None
    dc, dt = c[1:n] - c[:n - 1], s[1:n] - s[:n - 1]
    ok = (dc > 0) & (dt > 0)                    # what does not advance is not a gap (see above)
    if not ok.any():
        return None
    step = float(dc[ok].min())
    period = float(np.median(dt[ok] / dc[ok]))
    bad = ok & ((dc > step) | (timed & (dt > (dc + SLACK_PERIODS) * period)))
    if not bad.any():
        return None
    k = int(np.argmax(bad))
    return Gap(stream, k + 1, int(dc[k]), int(step), float(dt[k]), period)


class WindowGaps:
    """:func:`first_gap` applied as a window is read: ``check`` each frameset in order; it returns
    the first gap among the framesets so far (then the window is over), or None. A time gap may
    show only once a few steps after it have given the window's period."""

    def __init__(self) -> None:
        self._counters: dict[StreamKind, list[float]] = {}
        self._stamps: dict[StreamKind, list[float]] = {}
        self._timed: dict[StreamKind, bool] = {}

    def check(self, fs: FrameSet) -> Gap | None:
        for kind, f in fs.frames.items():
            self._counters.setdefault(kind, []).append(float(f.frame_number))
            self._stamps.setdefault(kind, []).append(float(f.timestamp_ms))
            self._timed[kind] = self._timed.get(kind, True) and f.clock_domain is ClockDomain.HARDWARE
        for kind in sorted(self._counters, key=lambda k: k.value):
            gap = first_gap(kind.value, self._counters[kind], self._stamps[kind], timed=self._timed[kind])
            if gap is not None:
                return gap
        return None
