"""The eye discs end at the lower lids (issue 14, twenty-third session, eye23). Review 22 found eye22's
pressed band cut at the lower lid (``bench.conformal_band --narrow --down-mm 5``) accepted under other
nonces: the discs at 0.12 eye spacings reached about 12 mm under the eye line, so the wearer's own skin
below the cut filled a third of them, and the reading sat at the ramp's attack end, where which pairs a
nonce lit decided the verdict. Any print of eyes must cover the eyes' openings; nothing obliges it to
cover the cheek under them. The eye region now keeps only what lies on or above each eye's lower lid
(``features.above_lower_lids``; docs/liveness.md, "The eye discs end at the lower lids").

A synthetic frameset and face as ``test_rims_chin_down``'s (warm-up frames, mesh landmarks placed by
hand), the eyes' eight landmarks where the mesh puts them (corners 0.23 eye spacings either side of
each pupil, the upper lid's middle 0.045 above, the lower lid's 0.03 below), level and rolled."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from agent.liveness.detectors import evaluate
from agent.liveness.features import (
    EYE_PATCHES,
    EYE_RADIUS_IPD,
    MIN_GROUP_PIXELS,
    SKIN_PATCHES,
    ProjectorMeasure,
    above_lower_lids,
    material_skin,
    pair_light,
    to_ir_pixels,
)
from agent.quality.metrics import FACE_OVAL, discs_mask
from tests.liveness.test_projector_measure import FULL_WELL_E, RESIN_SIGMA, SKIN_SIGMA, dot_pattern

MIDDLE, IPD = np.array([212.0, 80.0]), 80.0
LOWER_LID = 0.03                      # the lower lid's middle under the eye line, in eye spacings


def eye_points(roll_deg: float) -> np.ndarray:
    """EYE_PATCHES' eight points (each eye: corners, upper lid, lower lid), in eye spacings from the
    point between the eyes, rolled by ``roll_deg``."""
    pts = []
    for side in (-0.5, 0.5):
        pts += [(side - 0.23, 0.0), (side + 0.23, 0.0), (side, -0.045), (side, LOWER_LID)]
    t = np.radians(roll_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return np.array(pts) @ rot.T


def _frameset(roll_deg: float):
    from agent.liveness.warmup import framesets
    from agent.pipeline.align import align_frameset
    from tests.liveness.test_material_region import OVAL, SKIN

    lm = np.zeros((478, 3))
    lm[list(SKIN_PATCHES), :2] = SKIN * IPD + MIDDLE
    lm[list(FACE_OVAL), :2] = OVAL * IPD + MIDDLE
    lm[list(EYE_PATCHES), :2] = eye_points(roll_deg) * IPD + MIDDLE
    return align_frameset(framesets(None, 1)[0]), SimpleNamespace(mesh=SimpleNamespace(landmarks=lm, ipd_px=IPD))


@pytest.mark.parametrize("roll_deg", [0.0, 12.0, -20.0])
def test_the_eye_region_keeps_nothing_under_the_lower_lids(roll_deg):
    aligned, face = _frameset(roll_deg)
    skin = material_skin(aligned, face)
    assert skin is not None and skin.eyes is not None
    mapped = to_ir_pixels(aligned, face.mesh.landmarks[list(EYE_PATCHES), :2])
    assert mapped is not None
    origin = np.array([skin.box[1].start or 0, skin.box[0].start or 0])
    pts = mapped[0] - origin
    radius = EYE_RADIUS_IPD * IPD * mapped[1]
    # How far each pixel lies under its eye's corners' line (the rolled eye line), in pixels.
    t = np.radians(roll_deg)
    down = np.array([-np.sin(t), np.cos(t)])
    rows, cols = np.nonzero(skin.eyes)
    xy = np.c_[cols, rows].astype(float)
    left = xy[:, 0] < pts[:, 0].mean()
    below = np.where(left, (xy - pts[0]) @ down, (xy - pts[4]) @ down)
    lid = LOWER_LID * IPD * mapped[1]
    assert below.max() <= lid + 0.5
    # Above the lids the discs are whole: only the cheek under the lids left them.
    discs = discs_mask(skin.eyes.shape, pts, max(radius, 2.0))
    r2, c2 = np.nonzero(discs & ~skin.eyes)
    gone = np.c_[c2, r2].astype(float)
    gl = gone[:, 0] < pts[:, 0].mean()
    gone_below = np.where(gl, (gone - pts[0]) @ down, (gone - pts[4]) @ down)
    assert gone.size and gone_below.min() > lid - 0.5
    # The region still holds the dots of the eyes' openings and their upper lids.
    assert skin.eyes.sum() >= MIN_GROUP_PIXELS and skin.eyes.sum() > 0.5 * discs.sum()


def test_each_pixel_is_bounded_by_its_own_eye():
    # The left eye rolled down, the right level (a face seen askew): each keeps its own lower lid.
    pts = eye_points(0.0) * 40 + np.array([60.0, 30.0])
    pts[:4, 1] += 6                                   # the left eye 6 px lower
    keep = above_lower_lids((60, 120), pts)
    left_lid, right_lid = pts[3, 1], pts[7, 1]
    assert keep[int(left_lid), int(pts[3, 0])] and not keep[int(left_lid) + 2, int(pts[3, 0])]
    assert keep[int(right_lid), int(pts[7, 0])] and not keep[int(right_lid) + 2, int(pts[7, 0])]
    # Between the two lids' heights: under the right eye's lid, above the left eye's.
    y = int(right_lid) + 2
    assert not keep[y, int(pts[7, 0])] and keep[y, int(pts[3, 0])]


def _band_reading(seed: int, cut_ipd: float | None) -> float:
    """The eye region's reading (``ProjectorMeasure.eyes_sharpness``, six on-off pairs in the dark, photon
    shot noise) of a print of eyes pressed onto the face of ``_frameset(0)``: dots as sharp as resin's
    (paper's spread does not exceed it) down to ``cut_ipd`` eye spacings under the eye line (None: over the
    whole region), skin's below; ``seed`` draws the dots, as a nonce decides which pairs a window lights."""
    aligned, face = _frameset(0.0)
    skin = material_skin(aligned, face)
    mapped = to_ir_pixels(aligned, face.mesh.landmarks[list(EYE_PATCHES), :2])
    assert skin is not None and skin.eyes is not None and mapped is not None
    shape = skin.mask.shape
    eye_line = mapped[0][0, 1] - (skin.box[0].start or 0)
    rows = np.arange(shape[0])[:, None] + np.zeros((1, shape[1]), int)
    ipd = IPD * mapped[1]
    printed = rows < (eye_line + cut_ipd * ipd if cut_ipd is not None else shape[0])
    pattern = np.where(printed, dot_pattern(shape, RESIN_SIGMA, seed + 2), dot_pattern(shape, SKIN_SIGMA, seed + 1))
    texture = np.random.default_rng(seed + 7).normal(size=shape).astype(np.float32)
    albedo = 1 + 0.05 * cv2.GaussianBlur(texture, (0, 0), 3)
    rng = np.random.default_rng(seed)

    def frame(lit: bool) -> np.ndarray:
        e = albedo * (60.0 * pattern if lit else 0.0) * FULL_WELL_E / 255
        noisy = e + rng.normal(size=shape) * np.sqrt(e + 16)
        return np.clip(np.floor(noisy * 255 / FULL_WELL_E), 0, 255).astype(np.float32)

    cheeks = skin.mask & (rows > eye_line + 0.3 * ipd)
    lights = [pair_light(frame(True), frame(False), cheeks, (frame(False), frame(False)), eyes=skin.eyes)
              for _ in range(6)]
    return ProjectorMeasure.pool(lights).eyes_sharpness


@pytest.mark.parametrize("seed", range(5))
def test_a_band_cut_under_the_lower_lid_reads_as_the_whole_print_whatever_the_dots(seed):
    # Review 22's cut, 5 mm (0.08 eye spacings) under the eye line: what lies under it no longer enters
    # the reading, so the band reads as the print over the whole region does, under every draw of the
    # dots (before: 15-31 % away from it, the skin's share under the cut deciding).
    cut, whole = _band_reading(seed, 0.08), _band_reading(seed, None)
    assert np.isfinite(cut) and abs(cut / whole - 1) < 0.12


def _summary(eyes_sharpness: float) -> dict[str, float]:
    # A face with its own eye recess (a live one, or a band pressed onto it): the dots decide.
    return {"eye_recess_mm": 15.0, "projector_sharpness_eyes": eyes_sharpness}
