"""The recorded pattern's reading shaded by the projector's incidence on the lit frame's depth
(``features.incidence_shading``, ``shaded_reference_dot_shape``, ``ProjectorLight.shading_gain``;
docs/liveness.md, "The dots' shading taken out of the reference").

The dots' light falls with the cosine of its incidence; near a brow ridge that cosine changes within a
few rows, which the dots' fine- over mid-band reading takes for blur. The pattern's own reading shaded
by the same cosine carries that mid band too, and the pair's reading times the plain over the shaded
reading (the gain) has it taken out. The gain is never under 1: a depth (forged on the camera link)
whose shading would make the pattern read sharper can only leave the reading as it was.

Synthetic depth and dots only (``test_dot_sampling``'s scene)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from agent.liveness import features as F
from agent.liveness.detectors import cue_summary
from agent.liveness.features import (
    PatternFit,
    ProjectorLight,
    ProjectorMeasure,
    incidence_shading,
    reference_dot_shape,
    shaded_reference_dot_shape,
)
from drivers.frame import Intrinsics
from tests.liveness.test_dot_sampling import scene

INTR = Intrinsics(100, 80, 600.0, 600.0, 50.0, 40.0)    # a box the size of the scene, centred on the axis
BASELINE = 0.036                                        # the projector's offset (m)


def shading(z: np.ndarray) -> np.ndarray:
    return incidence_shading(z.astype(np.float32), np.ones(z.shape, bool), (0, 0), INTR, BASELINE)


def test_a_plane_facing_the_camera_is_lit_evenly_and_a_tilted_one_as_its_cosine() -> None:
    flat = shading(np.full((80, 100), 0.45))
    assert float(flat.max() - flat.min()) < 0.05
    # Tilted 40 degrees about the vertical axis: z grows along the columns. The cosine to the
    # projector's ray is about cos 40 everywhere and the light falls with the squared distance.
    x = (np.arange(100) - 50) / 600.0
    z = 0.45 / (1 - np.tan(np.radians(40)) * x)[None, :].repeat(80, 0)
    tilted = shading(z)
    assert tilted[40, 80] < tilted[40, 50] < tilted[40, 20]   # farther columns darker (1 / r**2)
    raw = incidence_shading(z.astype(np.float32), np.ones(z.shape, bool), (0, 0), INTR, BASELINE)
    assert np.isfinite(raw).all() and float(raw.min()) > 0


def test_a_brow_ridge_s_shading_softens_the_pattern_and_the_gain_hardens_the_reading() -> None:
    surface, sharp, mask = scene(1, 0.16)                 # resin's dots over the projector's flood (0.25)
    rows = np.arange(80, dtype=np.float32)[:, None]
    z = np.full((80, 100), 0.45, np.float32) - 0.010 * np.exp(-0.5 * ((rows - 30) / 3.0) ** 2)   # a ridge
    shade = shading(z)
    # The recorded pattern holds the flood as the camera saw it (each pixel over its neighbourhood's mean).
    fit = PatternFit(sharp + 0.25, np.ones_like(mask), shading=shade)
    plain, shaded = reference_dot_shape(fit, mask), shaded_reference_dot_shape(fit, mask)
    assert shaded < plain                                 # the shaded flood's fall is mid-band energy
    lit = F.dot_shape(surface * shade, mask)[0]
    unlit = F.dot_shape(surface, mask)[0]
    assert lit < unlit - 0.2                              # the surface read soft under it ...
    light = ProjectorLight(0.04, 60.0, 1.0, 400, 0.9, sharpness=lit, reference_sharpness=plain,
                           shaded_reference_sharpness=shaded)
    assert light.shading_gain > 1.0
    assert abs(lit * light.shading_gain - unlit) < abs(lit - unlit)   # ... and less so with the gain


def test_facets_finer_than_the_smoothing_make_no_shading() -> None:
    rows = np.arange(80, dtype=np.float32)[:, None]
    saw = 0.45 + ((rows % 2) - 0.5) * 0.010 + np.zeros((80, 100), np.float32)      # 10 mm facets every 2 rows
    inner = shading(saw)[10:-10, 10:-10]
    assert float(inner.std()) < 0.01


def test_the_gain_never_softens_and_is_one_without_a_shaded_reading() -> None:
    def light(ref: float, shaded: float) -> ProjectorLight:
        return ProjectorLight(0.04, 60.0, 1.0, 400, 0.9, sharpness=1.6, reference_sharpness=ref,
                              shaded_reference_sharpness=shaded)
    assert math.isclose(light(2.0, 1.6).shading_gain, 1.25)
    assert light(1.6, 2.0).shading_gain == 1.0            # a shading that sharpens the pattern is not taken
    assert light(2.0, float("nan")).shading_gain == 1.0
    assert light(float("nan"), 1.6).shading_gain == 1.0
    assert math.isnan(shaded_reference_dot_shape((np.ones((4, 4), np.float32), np.ones((4, 4), bool)),
                                                 np.ones((4, 4), bool)))       # no shading: not read


def pair(sharpness: float, ref: float, shaded: float) -> ProjectorLight:
    return ProjectorLight(0.04, 60.0, 1.0, 400, 0.9, 0.0, sharpness=sharpness, coarse=0.3, unmatched=0.2,
                          reference_sharpness=ref, shaded_reference_sharpness=shaded)


def test_the_shaded_sharpness_is_reported_and_scored_only_when_switched_on(monkeypatch: pytest.MonkeyPatch) -> None:
    lights = [pair(1.2, 2.0, 1.6), pair(1.3, 2.0, 2.2), pair(1.1, 1.8, 1.5)]
    assert not F.SHADED_REFERENCE
    pm = ProjectorMeasure.pool(lights)
    assert math.isclose(pm.sharpness, 1.2)                # as before: the plain reading decides
    assert math.isclose(pm.sharpness_shaded, float(np.median([1.2 * 1.25, 1.3, 1.1 * 1.2])))
    assert pm.sharpness_shaded >= pm.sharpness
    assert math.isclose(pm.sharpness_ratio_shaded, float(np.median([1.2 / 1.6, 1.3 / 2.0, 1.1 / 1.5])))
    m = cue_summary([], projector=pm)
    assert m["projector_sharpness"] == pm.sharpness and m["projector_sharpness_shaded"] == pm.sharpness_shaded
    monkeypatch.setattr(F, "SHADED_REFERENCE", True)
    on = ProjectorMeasure.pool(lights)
    assert math.isclose(on.sharpness, pm.sharpness_shaded)
    plain = ProjectorMeasure.pool([pair(1.2, 2.0, float("nan")), pair(1.3, 2.0, float("nan"))])
    assert math.isnan(plain.sharpness_shaded) and "projector_sharpness_shaded" not in cue_summary([], projector=plain)


def test_the_shading_is_read_from_the_skin_s_own_depth() -> None:
    # A depth edge beside the skin (the background, hair) smoothed into the skin would tilt its normals.
    z = np.full((80, 100), 0.45, np.float32)
    z[:, 70:] = 0.60
    skin = np.zeros((80, 100), bool)
    cv2.circle(skin.view(np.uint8), (40, 40), 20, 1, -1)
    on_skin = incidence_shading(z, skin, (0, 0), INTR, BASELINE)
    assert float(on_skin[skin].max() - on_skin[skin].min()) < 0.05
