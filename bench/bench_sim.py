"""Simulator cost: milliseconds to render and expose one tick (color + depth + IR, 640x480 each).

The first three scenes are the ones tracked since the simulator began (live, print, tablet); the
others show what worn instruments and busy scenes cost."""

from __future__ import annotations

import time

import drivers


def run() -> list[dict]:
    rows = []
    for subject in ("live", "print", "screen_still", "mask_eyeholes", "live&bystander=1&background=moving"):
        cam = drivers.open(f"sim://?realtime=0&subject={subject}")
        with cam:
            for _ in range(9):          # warm caches: textures, gradients, rays
                cam.read()
            n_ticks = 20
            t0 = time.perf_counter()
            for _ in range(3 * n_ticks):
                cam.read()
            ms = (time.perf_counter() - t0) * 1000 / n_ticks
        rows.append({"name": f"sim tick ({subject}), 3 streams 640x480", "value": ms, "unit": "ms"})
    return rows
