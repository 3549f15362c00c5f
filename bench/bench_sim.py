"""Simulator cost: milliseconds to render and expose one tick (color + depth + IR, 640x480 each),
and what the screen light, a fast depth mode and a D455's chosen 1280x720 colour mode add, as
ratios to a plain tick in the same run, and the CPU time per frameset of each camera profile.

The first three scenes are the ones tracked since the simulator began (live, print, tablet); the
others show what worn instruments and busy scenes cost."""

from __future__ import annotations

import time

import drivers
from drivers.sim.profiles import PROFILES as CAMERA_PROFILES


def _ms_per_tick(uri: str, *, lit: bool = False, reads_per_tick: int = 3, n_ticks: int = 20) -> float:
    cam = drivers.open(uri)
    with cam:
        if lit:
            cam.set_illumination((1.0, 1.0, 1.0))
        for _ in range(3 * reads_per_tick):          # warm caches: textures, gradients, rays
            cam.read()
        t0 = time.perf_counter()
        for _ in range(reads_per_tick * n_ticks):
            cam.read()
        return (time.perf_counter() - t0) * 1000 / n_ticks


# Every camera profile the simulator has, from its table: a profile added there is measured here too.
PROFILES = tuple(CAMERA_PROFILES)


def _cpu_ms_per_tick(uri: str, *, n_ticks: int) -> float:
    """CPU time (this process, all threads) per tick of colour, depth and IR, after warm-up."""
    cam = drivers.open(uri)
    with cam:
        for _ in range(9):
            cam.read()
        t0 = time.process_time()
        for _ in range(3 * n_ticks):
            cam.read()
        return (time.process_time() - t0) * 1000 / n_ticks


def run() -> list[dict]:
    rows = []
    plain = {}
    for subject in ("live", "print", "screen_still", "mask_eyeholes", "live&bystander=1&background=moving"):
        plain[subject] = ms = _ms_per_tick(f"sim://?realtime=0&subject={subject}")
        rows.append({"name": f"sim tick ({subject}), 3 streams 640x480", "value": ms, "unit": "ms"})
    # Ratios against the plain live tick, measured alternately (best of three each: the machine is
    # shared, and the fastest run is the one least disturbed).
    live, lit, fast, d455_small, d455 = [], [], [], [], []
    for _ in range(3):
        live.append(_ms_per_tick("sim://?realtime=0&subject=live", n_ticks=10))
        lit.append(_ms_per_tick("sim://?realtime=0&subject=live", lit=True, n_ticks=10))
        # 848x480 at 90 fps with colour at 30: per 1/30 s, three depth/IR ticks and one colour frame.
        fast.append(_ms_per_tick("sim://?realtime=0&subject=live&depth_mode=848x480@90&color_fps=30",
                                 reads_per_tick=7, n_ticks=5))
        # A D455 streams the colour mode its driver chooses (1280x720), against the same camera at 640x480.
        d455_small.append(_ms_per_tick("sim://?realtime=0&subject=live&camera=d455&color_mode=640x480@30",
                                       n_ticks=10))
        d455.append(_ms_per_tick("sim://?realtime=0&subject=live&camera=d455", n_ticks=10))
    ref = min(live)
    # One row per camera profile (a live subject, each profile's own stream modes): CPU time per
    # frameset, the figure the test suite's time follows (best of three, alternating profiles).
    per_profile: dict[str, list[float]] = {p: [] for p in PROFILES}
    for _ in range(3):
        for p in PROFILES:
            per_profile[p].append(_cpu_ms_per_tick(f"sim://?realtime=0&subject=live&seed=21&camera={p}", n_ticks=8))
    for p, runs in per_profile.items():
        rows.append({"name": f"sim frameset CPU ({p}, live)", "value": min(runs), "unit": "ms"})
    rows.append({"name": "sim tick (live), kiosk screen lit", "value": min(lit), "unit": "ms",
                 "reference": ref, "ratio": min(lit) / ref})
    rows.append({"name": "sim 1/30 s at depth 848x480@90 + colour @30", "value": min(fast), "unit": "ms",
                 "reference": ref, "ratio": min(fast) / ref})
    rows.append({"name": "sim tick (live, d455), colour 1280x720 as chosen vs 640x480", "value": min(d455),
                 "unit": "ms", "reference": min(d455_small), "ratio": min(d455) / min(d455_small)})
    return rows
