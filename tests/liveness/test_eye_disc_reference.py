"""The discs over the eyes read against the projector's recorded pattern on their own pixels.

The eye discs' dots' sharpness (``projector_sharpness_eyes``) depends on which few dozen dots fell on
them as the skin's does (docs/liveness.md, "The nineteenth's material and eye-region refusals"). With
a dot reference each pair also reads the recorded pattern on the discs' pixels it read
(``ProjectorLight.eyes_reference_sharpness``, by ``reference_dot_shape``, the skin's function), and a
session reports the ratio (``projector_sharpness_eyes_ratio``): reported, never scored
(docs/liveness.md, "The eye discs' reference reading").

Synthetic images: ``test_dot_sampling``'s sparse dots, spread as skin spreads them, on a lit and an
unlit frame; skin discs and two eye discs apart."""

from __future__ import annotations

import math

import cv2
import numpy as np

from agent.liveness.detectors import active_ramps, evaluate
from agent.liveness.features import ProjectorLight, ProjectorMeasure, pair_light, reference_dot_shape
from tests.liveness.test_dot_sampling import SKIN_MIX, cues, scene

EYES = ((25, 40, 6), (75, 40, 6))


def frames(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lit, unlit, skin discs, eye discs, the pattern's own image)."""
    surface, sharp, skin = scene(seed, SKIN_MIX)
    off = np.full(surface.shape, 30.0, np.float32)
    eyes = np.zeros(surface.shape, np.uint8)
    for x, y, r in EYES:
        cv2.circle(eyes, (x, y), r, 1, -1)
    return off + 120.0 * surface, off, skin, eyes.astype(bool) & ~skin, sharp


def test_a_pair_reads_the_pattern_on_the_eye_discs_it_read_only_with_a_reference() -> None:
    on, off, skin, eyes, sharp = frames(3)
    predicted = (sharp, np.ones_like(skin))
    checked = pair_light(on, off, skin, predicted=predicted, checked=True, eyes=eyes)
    assert math.isfinite(checked.eyes_sharpness)
    assert checked.eyes_reference_sharpness == reference_dot_shape(predicted, eyes)
    assert checked.eyes_reference_sharpness != checked.reference_sharpness      # its own pixels, not the skin's
    plain = pair_light(on, off, skin, eyes=eyes)
    assert math.isnan(plain.eyes_reference_sharpness) and plain.eyes_sharpness == checked.eyes_sharpness
    # No prediction (no depth on the box): checked, but no reference reading there.
    assert math.isnan(pair_light(on, off, skin, predicted=None, checked=True, eyes=eyes).eyes_reference_sharpness)
    # The pattern off most of the discs (under MIN_REFERENCE_COVER): none either.
    left = np.zeros_like(skin)
    left[:, :50] = True
    assert math.isnan(pair_light(on, off, skin, predicted=(sharp, left), checked=True,
                                 eyes=eyes).eyes_reference_sharpness)


def light(eyes: float, reference: float, *, one_sided: bool = False) -> ProjectorLight:
    return ProjectorLight(0.04, 60.0, 1.0, 400, 0.9, 0.2 if one_sided else 0.0, sharpness=1.0, coarse=0.3,
                          unmatched=0.2, reference_sharpness=2.0, eyes_sharpness=eyes,
                          eyes_reference_sharpness=reference)


def test_a_session_pools_the_eye_discs_ratio_over_the_two_sided_pairs_read_there() -> None:
    nan = float("nan")
    pm = ProjectorMeasure.pool([light(1.2, 2.0), light(1.4, 2.0), light(1.0, 2.5), light(nan, nan),
                                light(3.0, 1.0, one_sided=True)])
    assert math.isclose(pm.eyes_sharpness, 1.2) and pm.eyes_read == 3
    assert math.isclose(pm.eyes_sharpness_ratio, 0.6)              # median of 0.6, 0.7, 0.4
    # A pair read on the discs with no reference reading there: no ratio (the rest a median an
    # injector who took that pair's depth away would choose), the absolute reading as it was.
    gone = ProjectorMeasure.pool([light(1.2, 2.0), light(1.4, nan), light(1.0, 2.5)])
    assert math.isnan(gone.eyes_sharpness_ratio) and math.isclose(gone.eyes_sharpness, 1.2)


def test_the_eye_discs_ratio_is_reported_and_decides_nothing() -> None:
    r = active_ramps()
    eyes_hard = r["eye_dots"].attack + 0.1
    for ratio in (0.3, 0.6, 1.2):
        m = cues(projector_sharpness=1.0, eye_recess_mm=15.0, projector_sharpness_eyes=eyes_hard,
                 projector_sharpness_eyes_ratio=ratio)
        plain = cues(projector_sharpness=1.0, eye_recess_mm=15.0, projector_sharpness_eyes=eyes_hard)
        assert evaluate(m, challenged=True, r=r).eye_region == evaluate(plain, challenged=True, r=r).eye_region == 0.0
