"""The material measure's depth lookup as it was written first: each point's 7 x 7 window read and
its median taken one point at a time (``np.nanmedian``). ``features.depth_around`` now gathers every
window at once and must give the same depths, to the bit (``tests/liveness/test_material_region.py``);
``bench/bench_material.py`` times the two against each other. Kept here, not in the package: nothing
else runs it."""

from __future__ import annotations

import numpy as np

from agent.pipeline.align import AlignedFrameSet


def depth_around(aligned: AlignedFrameSet, pts: np.ndarray) -> np.ndarray:
    h, w = aligned.depth_m.shape
    z = np.full(len(pts), np.nan)
    for n, (x, y) in enumerate(np.round(pts).astype(int)):
        win = aligned.depth_m[max(y - 3, 0):min(y + 4, h), max(x - 3, 0):min(x + 4, w)]
        if np.isfinite(win).any():
            z[n] = np.nanmedian(win)
    return z
