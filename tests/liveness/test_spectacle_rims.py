"""The material measure with a spectacle frame on the upper cheeks (issue 14, the seventh family's
live faces still refused after the forehead was read apart): a rim crossing the upper cheek discs
must not make skin read as a mask, and a mask wearing one must still read as a mask.

Synthetic on/off pairs in the dark (the unlit frame black, as on seventh's night street: nothing of
the frame's own NIR albedo is taken out), as ``test_forehead_occluder``: a region of three bands,
the forehead's discs (top), the upper cheeks' (middle) and the lower cheeks' (bottom,
``pair_light``'s ``lower``), dots soft like skin's or sharp like resin's, photon shot noise. The
frame: thin dark lines (the rim's lower edge across the upper cheeks, the bridge at the forehead's
foot) of 0.3 times the skin's NIR albedo, 3 px wide, as the simulator's frames (``frame_nir``
0.10-0.60 against skin's ~0.5-0.8, a rim of ~2 mm at ~1 px/mm)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agent.liveness.detectors import active_ramps, cue_summary
from agent.liveness.features import RIMS_OVER_LOWER, ProjectorLight, ProjectorMeasure, pair_light
from tests.liveness.test_forehead_occluder import Face as OccluderFace
from tests.liveness.test_projector_measure import RESIN_SIGMA, SKIN_SIGMA, dot_pattern

SPECKLE = active_ramps()["projector_speckle"]


class Face(OccluderFace):
    """Three bands of a 60 x 90 px region, 60 DN of dots of ``sigma``, no ambient light; ``frame``: a
    spectacle frame on the upper two bands: the rim's lower edge across the upper cheeks and the
    bridge at the forehead's foot (3 px lines of 0.2 times the skin's NIR albedo, their dots as
    sharp as resin's: the simulator's ``FRAME``), and between them the skin seen through the lens
    (0.8 of its albedo, the dots displaced by 3 px: the lens's refraction). Its images in the dark are
    ``test_forehead_occluder``'s (``frame(lit)``)."""

    def __init__(self, sigma: float, frame: bool, seed: int = 0):
        h, w = 90, 60
        shape = (h + 24, w + 24)
        self.mask = np.zeros(shape, bool)
        self.mask[12:-12, 12:-12] = True
        rows = np.arange(shape[0])[:, None] - 12
        self.forehead = self.mask & (rows < 30)
        self.lower = self.mask & (rows >= 60)
        self.pattern = dot_pattern(shape, sigma, seed + 1)
        texture = np.random.default_rng(seed + 7).normal(size=shape).astype(np.float32)
        self.albedo = 1 + 0.05 * cv2.GaussianBlur(texture, (0, 0), 3)
        if frame:
            lens = (rows >= 30) & (rows < 38)
            lines = ((rows >= 38) & (rows < 41)) | ((rows >= 24) & (rows < 27))
            self.pattern = np.where(lines, dot_pattern(shape, RESIN_SIGMA, seed + 5), self.pattern)
            self.pattern = np.where(lens, np.roll(self.pattern, 3, axis=1), self.pattern)
            self.albedo = np.where(lines, 0.2 * self.albedo, np.where(lens, 0.8 * self.albedo, self.albedo))
        self.rng = np.random.default_rng(seed)

    def pairs(self, n: int = 6) -> tuple[list[ProjectorLight], list[ProjectorLight]]:
        """``n`` pairs read with the lower cheeks apart and, on the same frames, as before them (the
        forehead apart only)."""
        apart, before = [], []
        for _ in range(n):
            on, off, a, b = self.frame(True), self.frame(False), self.frame(False), self.frame(False)
            apart.append(pair_light(on, off, self.mask, (a, b), forehead=self.forehead, lower=self.lower))
            before.append(pair_light(on, off, self.mask, (a, b), forehead=self.forehead))
        return apart, before


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_frame_on_the_upper_cheeks_is_left_out_of_skin(seed):
    # The frame raises the region's speckle over the same skin's without it; what it can reach reads
    # far over the lower cheeks, and the speckle is theirs alone: the bare face's own lower cheeks.
    apart, before = Face(SKIN_SIGMA, frame=True, seed=seed).pairs()
    bare, _ = Face(SKIN_SIGMA, frame=False, seed=seed).pairs()
    old, new, plain = (ProjectorMeasure.pool(x) for x in (before, apart, bare))
    assert old.low > plain.high
    assert new.rims_dropped == 6 and new.upper > RIMS_OVER_LOWER * new.lower
    assert new.speckle == pytest.approx(new.lower, rel=1e-6) == pytest.approx(plain.lower, rel=0.02)
    assert new.high < SPECKLE.live
    # The dots' shape is read on every pixel either way.
    assert new.sharpness == old.sharpness
    cues = cue_summary([], projector=new, motion={})
    assert cues["projector_rims_dropped_pairs"] == 6
    assert cues["projector_speckle_upper"] > cues["projector_speckle_lower"] == cues["projector_speckle"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_mask_wearing_spectacles_is_still_a_mask(seed):
    # Resin everywhere under the same frame: whichever part is read, it reads as a mask.
    apart, before = Face(RESIN_SIGMA, frame=True, seed=seed).pairs()
    new = ProjectorMeasure.pool(apart)
    assert new.low > SPECKLE.attack, new


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sigma", [SKIN_SIGMA, RESIN_SIGMA])
def test_one_surface_without_a_frame_reads_as_itself(seed, sigma):
    # Bare skin or a bare mask: read whole exactly as before unless which dots fell where lifts the
    # upper part over RIMS_OVER_LOWER times the lower cheeks; either way skin reads as skin and resin
    # as resin (the lower cheeks alone are the same surface).
    apart, before = Face(sigma, frame=False, seed=seed).pairs()
    old, new = ProjectorMeasure.pool(before), ProjectorMeasure.pool(apart)
    assert (new.rims_dropped == 0) == (new.upper <= RIMS_OVER_LOWER * new.lower)
    if not new.rims_dropped:
        assert (new.speckle, new.low, new.high, new.sharpness) == (old.speckle, old.low, old.high, old.sharpness)
    if sigma == SKIN_SIGMA:
        assert new.high < SPECKLE.live
    else:
        assert new.low > SPECKLE.attack


def _pair(lower_sharpness: float) -> ProjectorLight:
    # One pair as the simulator gave seventh live/3 on main (spectacles, night street; refused as a
    # mask: 0.280, interval 0.275-0.286): what a frame can reach 0.302, the lower cheeks 0.244.
    lower = ProjectorLight(0.244 ** 2, 70.0, 4.0, 300, 1.0, sharpness=lower_sharpness)
    return ProjectorLight(0.280 ** 2, 70.0, 4.0, 900, 1.0, sharpness=0.97, forehead_contrast2=0.301 ** 2,
                          cheeks_contrast2=0.263 ** 2, forehead_sharpness=0.96, cheeks_sharpness=0.98,
                          cheeks=ProjectorLight(0.263 ** 2, 70.0, 4.0, 600, 1.0), upper_contrast2=0.302 ** 2,
                          lower_contrast2=0.244 ** 2, lower_sharpness=lower_sharpness, lower=lower)


def test_the_lower_cheeks_stand_alone_only_with_skin_dots():
    # The same readings with the lower cheeks' dots as soft as skin's (0.92, as live/3's) read the
    # lower cheeks alone, under the ramp's live end; with them as sharp as a mask's (1.9), or not
    # read (NaN), the whole region, as before.
    live = ProjectorMeasure.pool([_pair(0.92) for _ in range(6)])
    assert live.rims_dropped == 6 and live.speckle == pytest.approx(0.244) and live.speckle < SPECKLE.live
    for sharp in (1.9, float("nan")):
        kept = ProjectorMeasure.pool([_pair(sharp) for _ in range(6)])
        assert kept.rims_dropped == 0 and kept.speckle == pytest.approx(0.280) and kept.speckle > SPECKLE.attack
    assert live.sharpness == kept.sharpness == pytest.approx(0.97)
