"""The foreign flood's background levels from sums taken as each frameset comes (perf31,
``judge.BackgroundSum``): the judge sums each IR frame whole (its inspection) and in the box round the
skins folded so far (its fold), and ``finish`` adds only the strips the window's box grew by. The levels
must be the direct sums' (``background_levels`` without ``sums``) to the bit, whatever the order the boxes
grow in, and fall back to the direct sums where float64 sums would not be exact (pixels other than 8- or
16-bit integers) or a box bound reads from the frame's end."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from agent.liveness.features import IrSkin
from agent.liveness.judge import background_levels, background_sum, ir_total

SHAPE = (120, 160)


def frames_and_skins(seed: int, n: int, dtype: type, none_at: tuple[int, ...] = ()
                     ) -> tuple[list[np.ndarray], list[IrSkin | None]]:
    """``n`` IR frames of ``dtype`` (full-range noise) and a skin box for each, moving and growing about the
    frame's middle; no skin at the frames ``none_at``."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1000.0
    frames: list[np.ndarray] = [rng.uniform(0, top, SHAPE).astype(dtype) for _ in range(n)]
    skins: list[IrSkin | None] = []
    for k in range(n):
        if k in none_at:
            skins.append(None)
            continue
        y0, x0 = (int(v) for v in rng.integers(20, 50, 2))
        h, w = (int(v) for v in rng.integers(10, 60, 2))
        skins.append(IrSkin((slice(y0, min(y0 + h, SHAPE[0] + 7)), slice(x0, x0 + w)), np.ones((h, w), bool)))
    return frames, skins


def judge_sums(frames: list[np.ndarray], skins: list) -> list:
    """The sums as the judge takes them: each frame whole, then in the box of the skins folded so far."""
    return [background_sum(f, [s.box for s in skins[:k + 1] if s is not None], ir_total(f))
            for k, f in enumerate(frames)]


def hexes(levels: list[float]) -> list[str]:
    return [v.hex() for v in levels]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_running_sums_give_the_direct_levels_to_the_bit(dtype, seed):
    frames, skins = frames_and_skins(seed, 32, dtype, none_at=(0, 1, 9))
    sets = [SimpleNamespace(ir=SimpleNamespace(pixels=f)) for f in frames]
    sets[5] = SimpleNamespace(ir=None)
    sums = judge_sums(frames, skins)
    sums[5] = None
    direct = background_levels(sets, skins)
    assert hexes(background_levels(sets, skins, sums)) == hexes(direct)
    assert all(s is not None for k, s in enumerate(sums) if k != 5)     # every frame summed ahead
    assert sums[0].box == (0, 0, 0, 0) and sums[0].inner == 0.0        # (no skin yet: an empty box)
    assert np.isnan(direct[5]) and np.isfinite(direct).sum() == 31
    # The sums are what is read (not the frames summed again): a frame's whole sum raised raises its level
    # alone.
    sums[20] = replace(sums[20], total=sums[20].total + 1000.0)
    raised = background_levels(sets, skins, sums)
    assert raised[20] > direct[20] and hexes(raised[:20]) == hexes(direct[:20])


def test_a_window_without_skin_reads_the_whole_frames():
    frames, _ = frames_and_skins(3, 6, np.uint16)
    skins = [None] * 6
    sets = [SimpleNamespace(ir=SimpleNamespace(pixels=f)) for f in frames]
    got = background_levels(sets, skins, judge_sums(frames, skins))
    assert hexes(got) == hexes([float(f.sum(dtype=np.float64)) / f.size for f in frames])


def test_sums_that_would_not_be_exact_are_left_to_the_direct_reading():
    frames, skins = frames_and_skins(4, 8, np.float32)
    assert ir_total(frames[0]) is None
    assert all(s is None for s in judge_sums(frames, skins))
    sets = [SimpleNamespace(ir=SimpleNamespace(pixels=f)) for f in frames]
    assert hexes(background_levels(sets, skins, judge_sums(frames, skins))) == hexes(
        background_levels(sets, skins))


def test_a_box_read_from_the_frames_end_is_left_to_the_direct_reading():
    frames, skins = frames_and_skins(5, 8, np.uint16)
    sums = judge_sums(frames, skins)
    skins[6] = IrSkin((slice(-30, None), slice(10, 40)), np.ones((30, 30), bool))
    sets = [SimpleNamespace(ir=SimpleNamespace(pixels=f)) for f in frames]
    assert background_sum(frames[6], [s.box for s in skins if s is not None]) is None
    assert hexes(background_levels(sets, skins, sums)) == hexes(background_levels(sets, skins))


def test_sums_of_a_box_the_window_does_not_hold_are_not_taken():
    """Sums taken in a box wider than the window's (not the judge's: its boxes only grow) are not added
    to: the frame is summed directly."""
    frames, skins = frames_and_skins(6, 4, np.uint16)
    wide = [IrSkin((slice(0, SHAPE[0]), slice(0, SHAPE[1])), np.ones(SHAPE, bool))]
    sums = [background_sum(f, [s.box for s in wide]) for f in frames]
    sets = [SimpleNamespace(ir=SimpleNamespace(pixels=f)) for f in frames]
    assert hexes(background_levels(sets, skins, sums)) == hexes(background_levels(sets, skins))
