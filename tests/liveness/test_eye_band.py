"""A printed eye band pressed onto the face (issue 14, twentieth session's review): the wearer's own
eye sockets under the print give the eye region its live recess, and the material region's discs
(forehead, cheeks) never reach the band, so every cue read the wearer's skin and the band was
accepted (``bench.conformal_band``; docs/liveness.md, "A printed eye band pressed onto the face").
Under a challenge the projector's dots are now read on discs over the eyes as well: paper leaves
them sharp, living eyes and lids spread them.

Synthetic on/off pairs in the dark, as ``test_spectacle_rims``: a face of three bands, the forehead's
skin (top), the eyes (middle, ``pair_light``'s ``eyes``, not skin) and the cheeks' skin (bottom);
dots as soft as skin's everywhere, or sharp on the eyes alone (a print there: resin's spread, which
paper's does not exceed), photon shot noise."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agent.liveness.detectors import cue_summary, evaluate
from agent.liveness.features import ProjectorMeasure, pair_light
from tests.liveness.test_projector_measure import FULL_WELL_E, RESIN_SIGMA, SKIN_SIGMA, dot_pattern


class Face:
    """A 60 x 90 px face: skin on the top and bottom thirds (dots of ``skin_sigma``), the eyes in the
    middle third with dots of ``eye_sigma``; 60 DN of dots, no ambient light."""

    def __init__(self, eye_sigma: float, seed: int = 0, skin_sigma: float = SKIN_SIGMA):
        shape = (90 + 24, 60 + 24)
        rows = np.arange(shape[0])[:, None] - 12 + np.zeros((1, shape[1]), int)
        inside = np.zeros(shape, bool)
        inside[12:-12, 12:-12] = True
        self.eyes = inside & (rows >= 30) & (rows < 60)
        self.skin = inside & ~self.eyes
        skin_dots, eye_dots = dot_pattern(shape, skin_sigma, seed + 1), dot_pattern(shape, eye_sigma, seed + 2)
        self.pattern = np.where(self.eyes, eye_dots, skin_dots)
        texture = np.random.default_rng(seed + 7).normal(size=shape).astype(np.float32)
        self.albedo = 1 + 0.05 * cv2.GaussianBlur(texture, (0, 0), 3)
        self.rng = np.random.default_rng(seed)

    def frame(self, lit: bool) -> np.ndarray:
        e = self.albedo * (60.0 * self.pattern if lit else 0.0) * FULL_WELL_E / 255
        noisy = e + self.rng.normal(size=self.skin.shape) * np.sqrt(e + 16)
        return np.clip(np.floor(noisy * 255 / FULL_WELL_E), 0, 255).astype(np.float32)

    def measure(self, eyes: bool = True, n: int = 6) -> ProjectorMeasure:
        lights = []
        for _ in range(n):
            on, off, a, b = self.frame(True), self.frame(False), self.frame(False), self.frame(False)
            lights.append(pair_light(on, off, self.skin, (a, b), eyes=self.eyes if eyes else None))
        return ProjectorMeasure.pool(lights)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_print_over_the_eyes_reads_sharp_there_and_skin_elsewhere(seed):
    band, bare = Face(RESIN_SIGMA, seed).measure(), Face(SKIN_SIGMA, seed).measure()
    mask = Face(RESIN_SIGMA, seed, skin_sigma=RESIN_SIGMA).measure()
    # The skin's own readings are the same surface's either way: nothing on the skin tells them apart.
    assert band.sharpness == pytest.approx(bare.sharpness, abs=0.02)
    # Over the eyes the print reads as a hard surface reads on the skin's discs (the material
    # measure's scale), and well over living eyes' dots.
    assert band.eyes_sharpness > 1.3 * bare.eyes_sharpness
    assert band.eyes_sharpness == pytest.approx(mask.sharpness, rel=0.2)
    cues = cue_summary([], projector=band, motion={})
    assert cues["projector_sharpness_eyes"] == band.eyes_sharpness
    # Not read apart (no eye discs given): no cue, the session reads as before.
    assert "projector_sharpness_eyes" not in cue_summary([], projector=Face(RESIN_SIGMA, seed).measure(eyes=False),
                                                         motion={})


def _summary(eyes_sharpness: float) -> dict[str, float]:
    # A pressed band as train print_eyes/0 rendered it through ``bench.conformal_band --narrow``: the
    # wearer's own recess, skin everywhere the material measure reads.
    return {"eye_recess_mm": 15.0, "projector_sharpness_eyes": eyes_sharpness}


def test_sharp_dots_over_the_eyes_refuse_a_band_with_a_live_recess():
    assert evaluate(_summary(1.79), challenged=True).eye_region == 0.0
    assert evaluate(_summary(0.90), challenged=True).eye_region == 1.0
    # Unread (no two-sided pair) or no challenge: the recess alone, as before.
    assert evaluate(_summary(float("nan")), challenged=True).eye_region == 1.0
    assert evaluate(_summary(1.79), challenged=False).eye_region == 1.0
    # A band in front of the eyes is refused by its recess whatever its dots read.
    assert evaluate({"eye_recess_mm": 2.5, "projector_sharpness_eyes": 0.9}, challenged=True).eye_region == 0.0
