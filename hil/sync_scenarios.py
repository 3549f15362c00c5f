"""Synthetic frame arrivals for the frameset matcher: three streams of one device with timestamp
jitter, drops, duplicates, reordered arrival and a colour offset (the property tests and the sync
benchmark use the same generator)."""

from __future__ import annotations

import numpy as np

from drivers.frame import ClockDomain, Frame, Intrinsics, PixelFormat, StreamKind

D, C, IR = StreamKind.DEPTH, StreamKind.COLOR, StreamKind.IR
TINY = Intrinsics(2, 2, 1.0, 1.0, 0.5, 0.5)
_FMT = {D: (PixelFormat.Z16, np.uint16), IR: (PixelFormat.Y8, np.uint8), C: (PixelFormat.Y8, np.uint8)}


def frame(kind, n, ts_ms, host_ms, serial="dev0", domain=ClockDomain.HARDWARE):
    fmt, dt = _FMT[kind]
    return Frame(stream=kind, pixels=np.ones((2, 2), dt), format=fmt, timestamp_ms=ts_ms, clock_domain=domain,
                 host_time_ns=int(host_ms * 1e6), frame_number=n, intrinsics=TINY, device_serial=serial,
                 depth_scale=0.001 if kind is D else 0.0)


def generate(fps, n, jitter, offsets, drop, dup, reorder, seed):
    """``n`` ticks at ``fps``; returns the frames in arrival order and ``{(kind, tick): timestamp}``
    of every frame captured (dropped ones are absent)."""
    rng = np.random.default_rng(seed)
    period = 1000.0 / fps
    events, captured = [], {}
    for k in range(n):
        for kind in (D, IR, C):
            if rng.random() < drop:
                continue
            ts = 5000.0 + k * period + offsets[kind] + rng.uniform(-jitter, jitter)
            captured[(kind, k)] = ts
            arrival = ts + 3.0 + rng.uniform(0, reorder)
            events.append((arrival, frame(kind, k, ts, arrival)))
            if rng.random() < dup:
                events.append((arrival + rng.uniform(0, reorder), frame(kind, k, ts, arrival)))
    events.sort(key=lambda e: e[0])
    return [f for _, f in events], captured


