"""The material measure in direct sun with dark fine structures moving over the skin (issue 14, the
eighth family's "leans hard" floor, docs/liveness.md "Direct sun").

Synthetic windows: a 60 x 60 px region under 120 DN of ambient NIR (the sunlit skin of eighth
live/139) and 20 DN of projector dots (Gaussian dots of sigma 1.0 px, which read 0.93-1.11 sharp as
skin's do, or 0.7 px, 1.6-1.9 as resin's or a print's), photon shot noise at the simulator's full
well. Over it four dark strands (hair, a brow's edge: 30 px long, one pixel wide, at 0.3 of the
skin's albedo), which the sway moves by a pixel
between the on-off pair's frames while the nearest unlit pair caught a still moment. Their moved
edge is in the on-off difference at the ambient's level, six times the dots'; read with them, skin
reads as hard as resin."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agent.liveness.detectors import active_ramps
from agent.liveness.features import ProjectorMeasure, pair_light, without_dark_edges
from tests.liveness.test_projector_measure import FULL_WELL_E, dot_pattern

SHARPNESS = active_ramps()["projector_sharpness"]
SKIN_DOTS, HARD_DOTS = 1.0, 0.7          # the dots' sigma (px): skin's sharpness, resin's or ink's


class Sunlit:
    """A region under ``ambient`` DN of NIR and, lit, ``dots`` DN of the projector's dots (``sigma``),
    with ``strands`` dark vertical lines of one pixel at 0.3 of the albedo, at a column offset each
    frame is drawn with."""

    def __init__(self, sigma: float, ambient: float = 120.0, dots: float = 20.0, strands: int = 4, seed: int = 0,
                 length: int = 30, depth: float = 0.3):
        side = 60
        self.shape = (side + 24, side + 24)
        self.mask = np.zeros(self.shape, bool)
        self.mask[12:-12, 12:-12] = True
        self.pattern = dot_pattern(self.shape, sigma, seed + 1)
        texture = np.random.default_rng(seed + 7).normal(size=self.shape).astype(np.float32)
        self.skin = 1 + 0.05 * cv2.GaussianBlur(texture, (0, 0), 3)
        rng = np.random.default_rng(seed + 9)
        self.columns = rng.choice(np.arange(14, side + 8, 8), strands, replace=False)
        self.rows = rng.integers(12, side + 12 - length, strands)
        self.length, self.depth = length, depth
        self.ambient, self.dots = ambient, dots
        self.rng = np.random.default_rng(seed)

    def albedo(self, shift: int) -> np.ndarray:
        a = self.skin.copy()
        for r, c in zip(self.rows, self.columns, strict=True):
            a[r:r + self.length, c + shift] *= self.depth
        return a

    def frame(self, lit: bool, shift: int) -> np.ndarray:
        light = self.ambient + (self.dots * self.pattern if lit else 0.0)
        e = self.albedo(shift) * light * FULL_WELL_E / 255
        noisy = e + self.rng.normal(size=self.shape) * np.sqrt(e + 16)
        return np.clip(np.floor(noisy * 255 / FULL_WELL_E), 0, 255).astype(np.float32)

    def window(self, moving: bool, n: int = 6) -> tuple[ProjectorMeasure, int]:
        """``n`` on-off pairs, the strands a pixel apart between the pair's frames when ``moving``,
        each with an unlit noise pair in which they hold still; and the skin pixels the measure left
        out of the first pair (``without_dark_edges``)."""
        lights, out = [], -1
        for i in range(n):
            s = i % 2
            on, off = self.frame(True, s + (1 if moving else 0)), self.frame(False, s)
            a, b = self.frame(False, s), self.frame(False, s)
            lights.append(pair_light(on, off, self.mask, (a, b)))
            if out < 0:
                out = without_dark_edges(on, off, self.mask, (a, b))[1]
        return ProjectorMeasure.pool(lights), out


@pytest.mark.parametrize("seed", [0, 1])
def test_strands_moving_over_sunlit_skin_leave_its_dots_soft(seed):
    # Read on every pixel (main), the moved strands' edges read as dots: sharpness 1.76-1.99 against
    # 1.00-1.10 with them still (at the ramp's attack end, 1.4893), the speckle 1.3-1.5x harder.
    still, _ = Sunlit(SKIN_DOTS, seed=seed).window(moving=False)
    moved, out = Sunlit(SKIN_DOTS, seed=seed).window(moving=True)
    assert out > 0
    assert still.sharpness < SHARPNESS.live, still
    assert moved.sharpness < SHARPNESS.live, moved
    assert moved.sharpness == pytest.approx(still.sharpness, abs=0.1)
    assert moved.speckle < 1.05 * still.speckle, (moved, still)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_print_moved_by_hand_keeps_its_sharp_dots(seed):
    # Ink strokes on paper moved between the frames (a print held by hand): the measure leaves them
    # out as it does a strand, and the paper's own dots on the rest read as sharp as when it holds
    # still, past the attack end either way.
    still, _ = Sunlit(HARD_DOTS, seed=seed).window(moving=False)
    moved, out = Sunlit(HARD_DOTS, seed=seed).window(moving=True)
    assert out > 0
    assert still.sharpness > SHARPNESS.attack, still
    assert moved.sharpness > SHARPNESS.attack, moved
    assert moved.sharpness >= still.sharpness - 0.1


def test_indoors_the_dots_drown_the_ambient_and_every_pixel_is_read():
    # Ambient under twice the dots' light: nothing is left out, strands or not.
    scene = Sunlit(SKIN_DOTS, ambient=30.0, dots=60.0)
    on, off, a, b = scene.frame(True, 1), scene.frame(False, 0), scene.frame(False, 0), scene.frame(False, 0)
    skin, out = without_dark_edges(on, off, scene.mask, (a, b))
    assert out == 0 and (skin == scene.mask).all()
    sunlit = Sunlit(SKIN_DOTS)
    on, off, a, b = sunlit.frame(True, 1), sunlit.frame(False, 0), sunlit.frame(False, 0), sunlit.frame(False, 0)
    skin, out = without_dark_edges(on, off, sunlit.mask, (a, b))
    assert 0 < out < 0.5 * sunlit.mask.sum() and not (skin & ~sunlit.mask).any()
