"""perf33: the window's end cheaper for the caller's thread, every number the same to the bit.

``judge._flood_floors`` works out every frame's flood floor at once (numpy) instead of frame by frame in Python;
each floor must be perf32's (``tests/helpers/liveness_reference.py``'s ``flood_floors_before33``) to the bit, on
random windows with ramps, bursts, frames without a level and windows where a state has one frame or none."""

from __future__ import annotations

import numpy as np
import pytest

import agent.liveness.judge as judge_module
from agent.liveness.challenge import projector_schedule
from agent.liveness.judge import FLOOD_RISE_DN, _flood_floors, _flood_neighbours, flood_frames
from tests.helpers.liveness_reference import flood_floors_before33
from tests.liveness.test_flood_ramp import ramped_windows


def floors(levels: list[float], lit: list[bool]) -> list[float | None]:
    """The judge's floors as ``flood_floors_before33`` lists them (None where it reads none)."""
    lv = np.asarray(levels, dtype=np.float64)
    before, after = _flood_neighbours(lv, lit)
    got = _flood_floors(lv, before, after)
    return [float(f) if np.isfinite(v) and (before[k, -1] >= 0 or after[k, 0] >= 0) else None
            for k, (f, v) in enumerate(zip(got, lv, strict=True))]


def same_bits(a: list[float | None], b: list[float | None]) -> bool:
    def bits(v: float | None) -> bytes | None:
        return None if v is None else np.float64(v).tobytes()
    return len(a) == len(b) and all(bits(x) == bits(y) for x, y in zip(a, b, strict=True))


def edge_windows():
    """Windows the loops' edges live in: one lit frame, every frame lit, no level on most frames, two frames, none,
    a state with a single frame with a level, a flat window (every line on every frame), levels on a line."""
    yield [True], [5.0]
    yield [True] * 8, [5.0, 9.0, 5.0, 5.0, 12.0, 5.0, 5.0, 5.0]
    yield [False, True] * 4, [float("nan")] * 6 + [3.0, 4.0]
    yield [False, True], [1.0, 2.0]
    yield [], []
    yield [False, False, True, False, False], [2.0, 2.0, 30.0, 2.0, 9.0]
    yield [False] * 12, [7.0] * 12
    yield [False] * 12, [0.1 * k + 3.0 for k in range(12)]
    yield [False] * 12, [0.1 * k + 3.0 + (5.0 if k == 6 else 0.0) for k in range(12)]


@pytest.mark.parametrize("ramp", [True, False])
def test_every_floor_is_perf32s_to_the_bit(ramp, monkeypatch):
    monkeypatch.setattr(judge_module, "FLOOD_RAMP", ramp)
    import tests.helpers.liveness_reference as ref
    monkeypatch.setattr(ref, "FLOOD_RAMP", ramp)
    windows = [*ramped_windows(33, n=150), *edge_windows()]
    flagged = lines = 0
    for lit, levels in windows:
        want, got = flood_floors_before33(levels, lit), floors(levels, lit)
        assert same_bits(got, want), (lit, levels)
        # and the flags are the rule's on those floors
        flags = flood_frames(levels, lit)
        assert flags == [f is not None and levels[k] > f + FLOOD_RISE_DN for k, f in enumerate(want)]
        flagged += sum(flags)
        if ramp:
            with monkeypatch.context() as m:
                m.setattr(ref, "FLOOD_RAMP", False)
                least = flood_floors_before33(levels, lit)
            lines += sum(f is not None and f != g for f, g in zip(want, least, strict=True))
    assert flagged > 100                      # the windows flag frames: a rule that flags none would pass too
    assert lines > 100 or not ramp            # and a line, not the least, set many floors (with the ramp)


def test_a_window_of_bursts_on_a_schedule():
    # A projector-challenged window's own schedule, a burst on every fourth frame: the floors and flags agree.
    lit = [bool(v) for v in projector_schedule(b"perf33-schedule!" * 2, 32)]
    levels = [15.0 + 7.0 * on + (6.0 if k % 4 == 1 else 0.0) for k, on in enumerate(lit)]
    assert same_bits(floors(levels, lit), flood_floors_before33(levels, lit))
    assert sum(flood_frames(levels, lit)) >= 6
