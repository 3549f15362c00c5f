"""Lost framesets in a challenge window: where a stream's frame counter or timestamp jumps.

The challenge's verifiers compare the window's framesets with the nonce's schedule by their PLACE in
the window (never by the frames' own counters, which an injector on the camera link writes itself).
A frameset the host loses (a USB drop, the matcher giving up a late tick) therefore moves every
later projector and screen edge a frame early: a contradiction, judged ``attack``. Such a window is
instead ended as "frames lost" (``SES_FRAMES_LOST``, counted as a failed attempt) as soon as the gap
is seen, and the server refuses a window with one (``hil/ingest/evidence.py``). The counters decide
only whether a window is whole, never how it is aligned.

The matcher (``pipeline/sync.py``) forms one frameset per frame of the slowest stream, pairing it
with one frame of every other stream within half the slowest profile's period: a stream at the
framesets' rate advances by exactly 1 a frameset, and a stream ``r`` times faster (90 fps depth
matched at 30: ``r`` = 3) by ``r`` give or take which of the ``r`` frames inside that half-period
window was picked. Near a phase where the pick flips between two of them the steps alternate
(3,3,2,4,3 or 2,4,2,4): nothing is lost, but no single step says so. Over any run of framesets the
picks bound the error: a stream's counter advance stays within ``r`` of ``r`` times the run's steps
(each pick lies within ``r``/2 frames of its ideal place, up to the timestamps' jitter). A lost
frameset adds ``r``.

The rule (:func:`window_gap`), per stream, over consecutive framesets of one window:

* the framesets' period ``T``: the largest own period among the streams the evidence carries
  (depth, or IR without depth, and colour) that advanced at every step; a stream's own period is
  the median time per counted frame (a camera slower than its profile, a UVC colour imager at half
  rate in dim light, sets its own);
* counter: with ``r`` = ``T`` / the stream's period (snapped to the nearest tenth when within 0.02 of
  it: rates are whole-number ratios; 1 exactly for the slowest stream), a gap where the counter's
  advance over any run of framesets exceeds ``r`` times the run's steps by ``max(r, 1)`` or more
  (one frameset's worth; at ``r`` = 1 this is every step 1, the rule before 90 fps was looked at).
  The slowest stream sees every lost frameset exactly; a faster one may miss one the pick hides (a
  lost frameset's excess is ``r`` less the pick's flip), and reports one that was not lost only
  when frames lost beside a flip put its pick a whole frameset off its place (two ticks in a row).
  Only the streams that set the period are counted: IR beside depth is matched to the depth tick,
  not to the colour frame (its frame of that tick lost, the next tick's stands in, one more tick
  off), and says nothing depth does not; it is timed like any stream;
* time, on the terminal and only for a stream on the camera's own clock (``ClockDomain.HARDWARE``):
  no step longer than its counted frames plus half a frame period, the period the stream's own.
  Host arrival times (``SYSTEM``, ``GLOBAL``) jitter with the host's load, and a genuine window must
  not be refused for that; the server, which does not know a stream's clock, checks the counters
  only (it must never refuse what a genuine terminal sends). A colour frame twice as long (an
  imager lengthening one exposure in dim light) stays a gap although its own counter steps by 1:
  the matcher then gives up the reference stream's tick with no colour frame within half a period
  (depth's counter jumps too, by 2 at 30 fps and 6 at 90), so a frameset is lost on the projector's
  clock; and where a counter is the host's own count of frames read (``drivers/uvc.py``) the time
  rule is the only one that sees a frame lost.

A counter or timestamp that does not advance is not called a gap: the judge reads it as a sign of
frames not streamed now (``injection_signals``) and the server refuses it on its own.

:class:`WindowGaps` applies the rule as a window is read, incrementally (per frameset O(log n),
plus a re-read of a stream's counters when its ratio ``r`` changes, which a whole-number ratio does
not do once its periods settle); it returns exactly what :func:`window_gap` returns over the
framesets so far (``tests/pipeline/test_gaps.py`` compares them on random windows).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from drivers.frame import ClockDomain, FrameSet, StreamKind

SLACK_PERIODS = 0.5            # a step may exceed its counted frames' time by this many frame periods
SNAP_TENTHS = 0.2              # a rate ratio within 0.2 tenths (0.02) of a tenth is that tenth


@dataclass(frozen=True)
class Gap:
    """One gap in one stream, seen at frameset ``index`` of the window: its counter advanced by
    ``advance`` from frameset ``start`` (``expected`` explained by the framesets between, at
    ``per_frameset`` counted frames a frameset), or (``counter`` false) its timestamps ``ms`` apart
    between ``index - 1`` and ``index`` for ``advance`` counted frames of ``period_ms``."""

    stream: str
    start: int
    index: int
    advance: int
    expected: float
    per_frameset: float
    ms: float
    period_ms: float
    counter: bool

    def describe(self) -> str:
        if self.counter:
            return (f"{self.stream} frame counter advanced by {self.advance} between framesets {self.start} and "
                    f"{self.index} of the window ({self.expected:g} at {self.per_frameset:g} a frameset)")
        return (f"{self.stream} timestamps {self.ms:.1f} ms apart between framesets {self.index - 1} and "
                f"{self.index} of the window ({self.advance} frame(s) of {self.period_ms:.1f} ms counted)")


def _median(v: Sequence[float]) -> float:
    """The median of a sorted, non-empty sequence (both implementations use this one)."""
    k = len(v) // 2
    return float(v[k]) if len(v) % 2 else float((v[k - 1] + v[k]) / 2)


def per_frameset(frameset_ms: float, period_ms: float) -> float:
    """A stream's counted frames per frameset: the framesets' period over its own, snapped to the
    nearest tenth when within 0.02 of it (1.0 exactly for the stream that sets the period)."""
    x = frameset_ms / period_ms
    k = round(x * 10)
    return k / 10 if abs(x * 10 - k) <= SNAP_TENTHS else x


def _steps(counters: Sequence[float] | np.ndarray, stamps: Sequence[float] | np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    c = np.asarray(counters, dtype=np.float64)
    s = np.asarray(stamps, dtype=np.float64)
    n = min(len(c), len(s))
    c, s = c[:n], s[:n]
    return c, s, c[1:] - c[:-1], s[1:] - s[:-1]


def period_of(counters: Sequence[float] | np.ndarray, stamps: Sequence[float] | np.ndarray
              ) -> tuple[float | None, bool]:
    """A stream's own period over a window (the median time per counted frame of the steps where
    both advance; None without one) and whether it advanced at every step."""
    _, _, dc, dt = _steps(counters, stamps)
    ok = (dc > 0) & (dt > 0)
    if not ok.any():
        return None, False
    return _median(sorted((dt[ok] / dc[ok]).tolist())), bool(ok.all())


def frameset_period(periods: Sequence[tuple[float | None, bool]]) -> float | None:
    """The framesets' period from the streams' (period, advanced at every step): the largest among
    those that advanced at every step (a stream that repeats a frame is slower than its framesets),
    else among all; None when no stream has a period."""
    every = [p for p, all_ok in periods if p is not None and all_ok]
    some = [p for p, _ in periods if p is not None]
    return max(every) if every else (max(some) if some else None)


def first_gap(stream: str, counters: Sequence[float] | np.ndarray, stamps: Sequence[float] | np.ndarray, *,
              timed: bool = True, frameset_ms: float | None = None, counted: bool = True) -> Gap | None:
    """The first gap in one stream's frame counters and timestamps (ms) over a window's framesets,
    in order; None when the window is whole (or too short to tell). ``frameset_ms``: the framesets'
    period (:func:`frameset_period`); None: this stream's own (it runs at the framesets' rate).
    Without ``timed`` only the counters are checked (the timestamps still give the period); without
    ``counted`` only the timestamps (IR beside depth: :func:`window_gap`)."""
    c, s, dc, dt = _steps(counters, stamps)
    n = len(c)
    if n < 2:
        return None
    ok = (dc > 0) & (dt > 0)                    # what does not advance is not a gap (see above)
    if not ok.any():
        return None
    period = _median(sorted((dt[ok] / dc[ok]).tolist()))
    r = per_frameset(frameset_ms if frameset_ms is not None else period, period)
    e = c - r * np.arange(n, dtype=np.float64)
    low = np.minimum.accumulate(e)
    cbad = (e[1:] - low[:-1] >= max(r, 1.0)) if counted else np.zeros(n - 1, dtype=bool)
    q = np.where(ok, dt / np.where(ok, dc + SLACK_PERIODS, 1.0), -np.inf)
    tbad = (q > period) if timed else np.zeros(n - 1, dtype=bool)
    bad = cbad | tbad
    if not bad.any():
        return None
    j = int(np.argmax(bad)) + 1
    if cbad[j - 1]:
        i = int(np.flatnonzero(e[:j] == low[j - 1])[-1])     # the run from the latest low point
        return Gap(stream, i, j, int(c[j] - c[i]), r * (j - i), r, float(s[j] - s[i]), period, True)
    return Gap(stream, j - 1, j, int(dc[j - 1]), r, r, float(dt[j - 1]), period, False)


def _first(gaps: Sequence[Gap | None]) -> Gap | None:
    found = [g for g in gaps if g is not None]
    return min(found, key=lambda g: g.index) if found else None     # stable: ties keep stream order


def window_gap(streams: Sequence[tuple[str, Sequence[float] | np.ndarray, Sequence[float] | np.ndarray, bool]], *,
               period_from: Collection[str] | None = None) -> Gap | None:
    """The window's first gap (lowest frameset index; among equals the first stream given) over
    ``(name, counters, stamps, timed)`` per stream, the framesets' period taken from the streams
    named in ``period_from`` (None: all), whose counters alone are checked: another stream (IR
    beside depth) only by its time."""
    periods = [period_of(c, s) for name, c, s, _ in streams if period_from is None or name in period_from]
    t = frameset_period(periods)
    return _first([first_gap(name, c, s, timed=timed, frameset_ms=t,
                             counted=period_from is None or name in period_from) for name, c, s, timed in streams])


def period_streams(names: Collection[str]) -> frozenset[str]:
    """The streams the evidence carries, which set the framesets' period: depth (IR without depth;
    IR runs at depth's rate) and colour."""
    ref = StreamKind.DEPTH.value if StreamKind.DEPTH.value in names else StreamKind.IR.value
    return frozenset(n for n in names if n in (ref, StreamKind.COLOR.value))


class _Stream:
    """One stream's state in :class:`WindowGaps`: the same quantities :func:`first_gap` computes,
    kept up to date one frameset at a time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.timed = True
        self.c: list[float] = []
        self.s: list[float] = []
        self.ratios: list[float] = []          # dt / dc of the advancing steps, sorted
        self.all_ok = True
        self.qmax: list[float] = []            # running maximum of dt / (dc + slack) over the steps
        self.r: float | None = None            # the ratio the counter state below was read with
        self.e: list[float] = []
        self.low = math.inf                    # min of e so far, and the latest index holding it
        self.low_at = -1
        self.lows: list[float] = []            # running min of e (for the run's start when r changes)
        self.cgap: int | None = None           # first counter-bad index under self.r

    def add(self, counter: float, stamp: float, hardware: bool) -> None:
        self.timed = self.timed and hardware
        if self.c:
            dc, dt = counter - self.c[-1], stamp - self.s[-1]
            ok = dc > 0 and dt > 0
            self.all_ok = self.all_ok and ok
            q = -math.inf
            if ok:
                bisect.insort(self.ratios, dt / dc)
                q = dt / (dc + SLACK_PERIODS)
            self.qmax.append(max(self.qmax[-1], q) if self.qmax else q)
        self.c.append(counter)
        self.s.append(stamp)

    def period(self) -> float | None:
        return _median(self.ratios) if self.ratios else None

    def _push_e(self, i: int, r: float) -> None:
        v = self.c[i] - r * float(i)
        if self.cgap is None and i > 0 and v - self.low >= max(r, 1.0):
            self.cgap = i
        self.e.append(v)
        if v <= self.low:
            self.low, self.low_at = v, i
        self.lows.append(self.low)

    def gap(self, frameset_ms: float | None, counted: bool) -> Gap | None:
        period = self.period()
        if len(self.c) < 2 or period is None:
            return None
        r = per_frameset(frameset_ms if frameset_ms is not None else period, period)
        if counted:
            if r != self.r:                     # re-read the counters under the new ratio
                self.r, self.e, self.lows, self.low, self.low_at, self.cgap = r, [], [], math.inf, -1, None
            for i in range(len(self.e), len(self.c)):
                self._push_e(i, r)
        tj = bisect.bisect_right(self.qmax, period) + 1 if self.timed else len(self.c)
        cj = self.cgap if counted and self.cgap is not None else len(self.c)
        if cj <= tj and cj < len(self.c):
            j = cj
            i = max(k for k in range(j) if self.e[k] == self.lows[j - 1])
            return Gap(self.name, i, j, int(self.c[j] - self.c[i]), r * (j - i), r, float(self.s[j] - self.s[i]),
                       period, True)
        if tj < len(self.c):
            j = tj
            return Gap(self.name, j - 1, j, int(self.c[j] - self.c[j - 1]), r, r, float(self.s[j] - self.s[j - 1]),
                       period, False)
        return None


class WindowGaps:
    """:func:`window_gap` applied as a window is read: ``check`` each frameset in order; it returns
    the window's first gap among the framesets so far (then the window is over), or None. A time
    gap may show only once a few steps after it have given the stream's period; a counter gap
    likewise once the framesets' period and the stream's ratio are known."""

    def __init__(self) -> None:
        self._streams: dict[StreamKind, _Stream] = {}

    def check(self, fs: FrameSet) -> Gap | None:
        for kind, f in fs.frames.items():
            st = self._streams.get(kind)
            if st is None:
                st = self._streams[kind] = _Stream(kind.value)
            st.add(float(f.frame_number), float(f.timestamp_ms), f.clock_domain is ClockDomain.HARDWARE)
        order = sorted(self._streams.values(), key=lambda st: st.name)
        sets = period_streams([st.name for st in order])
        t = frameset_period([(st.period(), st.all_ok) for st in order if st.name in sets])
        return _first([st.gap(t, st.name in sets) for st in order])
