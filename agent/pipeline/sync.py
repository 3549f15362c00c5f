"""Frameset matching across streams and devices (T/IIFAA 3001.1 §7.5 g: RGB–depth sync < 1 frame).

Frames arrive one at a time, per stream, possibly dropped, duplicated or out of order. The matcher
groups them into :class:`FrameSet`s whose members were captured within half a frame period of each
other, and reports each set's skew.

Time base. When every frame comes from one device clock, frames are compared on that clock
(hardware timestamps, unwrapped if the counter wraps). When several clocks are involved (a depth
camera plus a separate UVC color camera), each clock is mapped onto the host's monotonic clock by
its own linear model, fitted from (device timestamp, host arrival) pairs: the slope by least squares
over a window, the offset from the lower envelope, because arrival is always *after* capture and the
least-delayed frames say most about the true offset (librealsense's global time works the same way).

Matching. The first required stream is the reference. Its oldest buffered frame is the anchor; each
other stream contributes its frame nearest the anchor if within half a period, unless a later
reference frame already buffered needs that frame more: it is nearer to that frame, has no other
frame of the stream within half a period, and has one in every other stream. That reference frame
is matched next from the same buffers, so the frame is left to it and the anchor takes its next
nearest frame (two sets where greedy pairing made one), or, with none, is treated as having no
candidate. Such a claim is judged only from frames already here: the matcher never waits to learn
whether a later reference frame, or a nearer partner, will still come (on the live path that wait
would add up to a period to every set's latency). If a stream has no candidate yet, the anchor
waits until that stream has delivered a frame more than half a period plus the reorder allowance
past it (then the match can no longer come) or until the latency bound expires. An anchor that
follows a gap in the reference stream is held for the reorder allowance too, since the missing
reference frame may still arrive out of order and must be matched first; so is the first anchor,
whose predecessor may be such a frame (otherwise it would purge that frame's partners). Buffers are
bounded; everything discarded is counted by reason.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from drivers.errors import CaptureAgentError
from drivers.frame import Extrinsics, Frame, FrameSet, StreamKind


class SyncError(CaptureAgentError):
    code = "SYN_ERROR"


class SyncTimeout(SyncError):
    """No complete frameset could be formed before the deadline."""

    code = "SYN_TIMEOUT"


class Unwrapper:
    """Turns a wrapping device counter (ms) into a monotonic timeline; tolerates late frames."""

    def __init__(self, wrap_ms: float | None):
        self.wrap_ms = wrap_ms
        self._cycles = 0
        self._last: float | None = None

    def unwrap(self, ts_ms: float) -> float:
        if not self.wrap_ms:
            return ts_ms
        half = self.wrap_ms / 2
        if self._last is None:
            self._last = ts_ms
            return ts_ms
        if ts_ms < self._last - half:              # the counter wrapped
            self._cycles += 1
            self._last = ts_ms
            return ts_ms + self._cycles * self.wrap_ms
        if ts_ms > self._last + half:              # a late frame from before the last wrap
            return ts_ms + (self._cycles - 1) * self.wrap_ms
        self._last = max(self._last, ts_ms)
        return ts_ms + self._cycles * self.wrap_ms


class ClockModel:
    """host_ms ≈ slope * device_ms + offset, fitted online over a bounded window."""

    def __init__(self, window: int = 240, refit_every: int = 15):
        self._pairs: collections.deque[tuple[float, float]] = collections.deque(maxlen=window)
        self._refit_every = refit_every
        self._since_fit = 0
        self.slope = 1.0
        self.offset: float | None = None
        self._ref_dev = 0.0

    def update(self, device_ms: float, host_ms: float) -> None:
        if not self._pairs:
            self._ref_dev = device_ms
        self._pairs.append((device_ms, host_ms))
        self._since_fit += 1
        if self.offset is None or self._since_fit >= self._refit_every:
            self._fit()
        else:
            # Between refits, a less-delayed arrival lowers the envelope at once.
            self.offset = min(self.offset, host_ms - self.slope * (device_ms - self._ref_dev))

    def _fit(self) -> None:
        self._since_fit = 0
        d = np.array([p[0] for p in self._pairs]) - self._ref_dev
        h = np.array([p[1] for p in self._pairs])
        if len(d) >= 8 and np.ptp(d) > 0:
            slope = float(np.polyfit(d, h, 1)[0])
            # A crystal drifts by ppm, not percent: reject fits thrown off by arrival bursts.
            self.slope = slope if abs(slope - 1.0) < 0.01 else 1.0
        self.offset = float(np.min(h - self.slope * d))

    def to_host(self, device_ms: float) -> float:
        if self.offset is None:
            raise SyncError("clock model has no samples yet")
        return self.slope * (device_ms - self._ref_dev) + self.offset


@dataclass
class MatcherStats:
    emitted: int = 0
    discarded: collections.Counter = field(default_factory=collections.Counter)
    max_skew_ms: float = 0.0
    skews_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=1000))


@dataclass
class _Entry:
    frame: Frame
    raw_ms: float                   # unwrapped timestamp on the frame's own clock
    clock: tuple[str, str]          # (device serial, clock domain)


class FrameSetMatcher:
    """Groups frames of ``streams`` into FrameSets with |Δt| < half a frame period."""

    def __init__(self, streams: Iterable[StreamKind], fps: float, *,
                 extrinsics: Mapping[tuple[StreamKind, StreamKind], Extrinsics] | None = None,
                 reorder_frames: float = 1.0, max_buffer: int = 8, max_latency_ms: float | None = None,
                 wrap_ms: Mapping[str, float] | None = None):
        self.streams = tuple(dict.fromkeys(streams))
        if len(self.streams) < 2:
            raise SyncError("a frameset needs at least two streams")
        if not fps > 0:
            raise SyncError("fps must be positive")
        self.period_ms = 1000.0 / fps
        self.tolerance_ms = self.period_ms / 2
        self.reorder_ms = reorder_frames * self.period_ms
        self.max_buffer = max_buffer
        self.max_latency_ms = max_latency_ms if max_latency_ms is not None else 4 * self.period_ms
        self.extrinsics = dict(extrinsics or {})
        self._wrap = dict(wrap_ms or {})
        self._buffers: dict[StreamKind, list[_Entry]] = {k: [] for k in self.streams}
        self._frontier: dict[StreamKind, float] = {}
        self._unwrappers: dict[tuple[str, str], Unwrapper] = {}
        self._clocks: dict[tuple[str, str], ClockModel] = {}
        self._seen: collections.deque = collections.deque(maxlen=64)
        self._seen_set: set = set()
        self._last_anchor_ms: float | None = None
        self._last_ref_ms: float | None = None     # newest reference frame emitted or given up
        self.stats = MatcherStats()

    # --- time base -----------------------------------------------------------------------------
    def _time(self, e: _Entry) -> float:
        if len(self._clocks) == 1:
            return e.raw_ms
        return self._clocks[e.clock].to_host(e.raw_ms)

    # --- public API ------------------------------------------------------------------------------
    def push(self, frame: Frame) -> list[FrameSet]:
        if frame.stream not in self._buffers:
            self.stats.discarded["unrequested_stream"] += 1
            return []
        ident = (frame.device_serial, frame.stream, frame.index, frame.frame_number, frame.timestamp_ms)
        if ident in self._seen_set:
            self.stats.discarded["duplicate"] += 1
            return []
        self._remember(ident)
        clock = (frame.device_serial, frame.clock_domain.value)
        unwrapper = self._unwrappers.setdefault(clock, Unwrapper(self._wrap.get(frame.device_serial)))
        raw = unwrapper.unwrap(frame.timestamp_ms)
        model = self._clocks.setdefault(clock, ClockModel())
        model.update(raw, frame.host_time_ns / 1e6)
        entry = _Entry(frame, raw, clock)
        t = self._time(entry)
        if self._last_anchor_ms is not None and t < self._last_anchor_ms - self.tolerance_ms:
            self.stats.discarded["late"] += 1
            return []
        buf = self._buffers[frame.stream]
        buf.append(entry)
        buf.sort(key=self._time)
        if len(buf) > self.max_buffer:
            buf.pop(0)
            self.stats.discarded["overflow"] += 1
        self._frontier[frame.stream] = max(self._frontier.get(frame.stream, -np.inf), t)
        return self._emit_ready(now_host_ms=frame.host_time_ns / 1e6)

    def flush(self) -> list[FrameSet]:
        """Emit what can still be completed and discard the rest (end of a stream)."""
        out = self._emit_ready(now_host_ms=None, final=True)
        for buf in self._buffers.values():
            self.stats.discarded["unmatched"] += len(buf)
            buf.clear()
        return out

    # --- matching ----------------------------------------------------------------------------------
    def _remember(self, ident) -> None:
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(ident)
        self._seen_set.add(ident)

    def _candidate(self, k: StreamKind, ta: float) -> _Entry | None:
        """Stream ``k``'s frame for the anchor at ``ta``: the nearest within tolerance that no later
        buffered reference frame claims (see :meth:`_claimed`)."""
        buf = self._buffers[k]
        if len(self._buffers[self.streams[0]]) < 2:      # no later reference frame to claim one
            best = min(buf, key=lambda e: abs(self._time(e) - ta), default=None)
            return best if best is not None and abs(self._time(best) - ta) < self.tolerance_ms else None
        for dist, i in sorted((abs(self._time(e) - ta), i) for i, e in enumerate(buf)):
            if dist >= self.tolerance_ms:
                break
            if not self._claimed(k, buf[i], ta):
                return buf[i]
        return None

    def _claimed(self, k: StreamKind, e: _Entry, ta: float) -> bool:
        """Whether a later buffered reference frame needs ``e`` more than the anchor at ``ta``: it
        is nearer to ``e``, ``e`` is its only frame of stream ``k`` within tolerance, and it has a
        frame within tolerance in every other stream. It comes next, with these same buffers, so
        ``e`` goes to it: the anchor takes another frame if it has one (two sets, not one) and is
        otherwise given up for a set of smaller skew. A claim is made only from frames already
        here, so it costs no waiting."""
        te = self._time(e)
        gap = abs(te - ta)
        for b in self._buffers[self.streams[0]][1:]:
            tb = self._time(b)
            if tb - te >= gap:
                break                                   # sorted: later ones are farther still
            if abs(tb - te) >= gap:
                continue
            if any(x is not e and abs(self._time(x) - tb) < self.tolerance_ms for x in self._buffers[k]):
                continue                                # it has another frame of this stream
            if all(any(abs(self._time(x) - tb) < self.tolerance_ms for x in self._buffers[j])
                   for j in self.streams[1:] if j is not k):
                return True
        return False

    def _emit_ready(self, now_host_ms: float | None, final: bool = False) -> list[FrameSet]:
        out: list[FrameSet] = []
        ref = self.streams[0]
        while self._buffers[ref]:
            anchor = self._buffers[ref][0]
            ta = self._time(anchor)
            overdue = now_host_ms is not None and now_host_ms - anchor.frame.host_time_ns / 1e6 > self.max_latency_ms
            if (not final and not overdue
                    and (self._last_ref_ms is None or ta - self._last_ref_ms > 1.5 * self.period_ms)
                    and self._frontier[ref] < ta + self.reorder_ms):
                # A reference frame is missing before this anchor (or, for the first anchor, may
                # be): it may be dropped, or still on its way out of order. Hold the anchor (and
                # the frames it would purge) until the reorder allowance has passed.
                break
            chosen: dict[StreamKind, _Entry] = {ref: anchor}
            waiting = False
            give_up = False
            for k in self.streams[1:]:
                buf = self._buffers[k]
                # Frames too old for this anchor can match no later anchor either.
                while buf and self._time(buf[0]) <= ta - self.tolerance_ms:
                    buf.pop(0)
                    self.stats.discarded["unmatched"] += 1
                best = self._candidate(k, ta)
                if best is not None:
                    chosen[k] = best
                    continue
                frontier = self._frontier.get(k, -np.inf)
                if final or frontier >= ta + self.tolerance_ms + self.reorder_ms:
                    give_up = True
                elif overdue:
                    give_up = True
                    self.stats.discarded["timeout"] += 1
                else:
                    waiting = True
            if give_up:
                self._last_ref_ms = ta
                self._buffers[ref].pop(0)
                self.stats.discarded["unmatched"] += 1
                continue
            if waiting:
                break
            times = [self._time(e) for e in chosen.values()]
            skew = max(times) - min(times)
            for k, e in chosen.items():
                self._buffers[k].remove(e)
            self._last_anchor_ms = self._last_ref_ms = ta
            if skew >= self.period_ms:          # cannot happen with half-period pairing; kept as a guard
                self.stats.discarded["skew"] += len(chosen)
                continue
            self.stats.emitted += 1
            self.stats.max_skew_ms = max(self.stats.max_skew_ms, skew)
            self.stats.skews_ms.append(skew)
            out.append(FrameSet({k: e.frame for k, e in chosen.items()}, self.extrinsics, skew_ms=skew))
        return out
