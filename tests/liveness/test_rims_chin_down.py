"""The lower cheek discs with the chin down (issue 14, twenty-first session): a spectacle frame's lower
rim, 15-20 mm in front of the cheek, slides over the lower discs' upper rows when the chin is down, and
rims20's rule, which reads those discs alone as out of any frame's reach, read the rim's hard line with
them (ninth live/266, train live/44 refused as masks). The depth finds the rim, a thin line standing off
the face (``features.raised_lines``), and its pixels and those within the speckle high-pass's reach
leave the lower discs (``features.clear_of_rims``), whatever the rim's albedo and the ambient light.

Synthetic, as ``test_spectacle_rims`` (its three bands in the dark, dots soft like skin's or sharp like
resin's, photon shot noise), with the frame slid down: the lens over the upper cheeks down to the
lower band and the lower rim (3 px) across the lower band's rows 6-8; and a depth image: a cheek
curving with a 60 mm radius 0.45 m away (1.1 mm a pixel, 1 mm units, 1 mm of noise), the rim 12 mm in
front of it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from agent.liveness.detectors import active_ramps
from agent.liveness.features import (
    RIM_REACH_PX,
    RIMS_OVER_LOWER,
    ProjectorLight,
    ProjectorMeasure,
    clear_of_rims,
    pair_light,
    raised_lines,
)
from tests.liveness.test_projector_measure import RESIN_SIGMA, SKIN_SIGMA, dot_pattern
from tests.liveness.test_spectacle_rims import Face

SPECKLE = active_ramps()["projector_speckle"]
PX_M = 0.0011                 # a pixel on the face (a D435 at 0.45 m)
RIM_ROWS = (66, 69)           # the lower rim's rows in the region (the lower band begins at 60)


class ChinDown(Face):
    """``test_spectacle_rims.Face`` with its frame slid down by the chin: the lens (0.8 of the skin's
    albedo, dots displaced) from the upper rim's line down to the lower rim, which crosses the lower
    band's rows 6-8 (0.2 of the albedo, dots as sharp as resin's); ``depth(rim)``: the region's depth."""

    def __init__(self, sigma: float, seed: int = 0):
        super().__init__(sigma, frame=True, seed=seed)
        rows = np.arange(self.mask.shape[0])[:, None] - 12
        lens = (rows >= 41) & (rows < RIM_ROWS[0])
        rim = (rows >= RIM_ROWS[0]) & (rows < RIM_ROWS[1])
        self.pattern = np.where(rim, dot_pattern(self.mask.shape, RESIN_SIGMA, seed + 11), self.pattern)
        self.pattern = np.where(lens, np.roll(self.pattern, 3, axis=1), self.pattern)
        self.albedo = np.where(rim, 0.2 * self.albedo, np.where(lens, 0.8 * self.albedo, self.albedo))
        self.seed = seed

    def depth(self, rim: bool = True, step_m: float = 0.0) -> np.ndarray:
        """Depth units (1 mm) of the region: the cheek, with the rim 12 mm in front of it (``rim``), or
        with everything above the lower band ``step_m`` in front of it (a mask's edge: a step)."""
        h, w = self.mask.shape
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        z = 0.45 + ((x - w / 2) ** 2 + (y - h / 2) ** 2) * PX_M ** 2 / (2 * 0.060)
        rows = y - 12
        if rim:
            z = np.where((rows >= RIM_ROWS[0]) & (rows < RIM_ROWS[1]), z - 0.012, z)
        z = np.where(rows < 60, z - step_m, z)
        noise = np.random.default_rng(self.seed + 21).normal(size=z.shape) * 0.001
        return np.round((z + noise) / 0.001).astype(np.uint16)

    def cleared(self, units: np.ndarray) -> np.ndarray:
        """The lower band without what ``clear_of_rims`` leaves out (one disc covering the band)."""
        centre = np.array([[self.mask.shape[1] / 2, 12 + 75.0]])
        return clear_of_rims(units, 0.001, self.lower, centre, 34.0)

    def read(self, lower: np.ndarray, n: int = 6) -> list[ProjectorLight]:
        out = []
        for _ in range(n):
            on, off, a, b = self.frame(True), self.frame(False), self.frame(False), self.frame(False)
            out.append(pair_light(on, off, self.mask, (a, b), forehead=self.forehead, lower=lower))
        return out


def _measure(face: ChinDown, lower: np.ndarray) -> ProjectorMeasure:
    return ProjectorMeasure.pool(face.read(lower))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_rim_over_the_lower_discs_is_left_out_and_skin_reads_as_skin(seed):
    # Read on the whole lower band (rims20's premise), the rim's hard line is in it: the lower band
    # reads far over the bare face's, and the session with it, whether rims20's rule reads it alone
    # (ninth live/266) or not (train live/44). Without the rim's pixels and their neighbours the lower
    # band is skin again, and rims20's rule reads it alone: the bare skin's on the same pixels.
    face = ChinDown(SKIN_SIGMA, seed=seed)
    cleared = face.cleared(face.depth())
    rows = np.flatnonzero((face.lower & ~cleared).any(axis=1)) - 12
    assert rows.min() == RIM_ROWS[0] - RIM_REACH_PX and rows.max() == RIM_ROWS[1] - 1 + RIM_REACH_PX
    assert cleared.sum() >= 0.6 * face.lower.sum()
    old, new = _measure(face, face.lower), _measure(face, cleared)
    bare = Face(SKIN_SIGMA, frame=False, seed=seed)
    whole = ProjectorMeasure.pool(bare.pairs()[0])
    bare.lower = cleared                      # the bare face read on the same pixels
    same = ProjectorMeasure.pool(bare.pairs()[0])
    assert old.lower > 1.3 * whole.lower and old.low > 1.3 * whole.high, old
    assert new.rims_dropped == 6 and new.upper > RIMS_OVER_LOWER * new.lower
    assert new.speckle == pytest.approx(new.lower, rel=1e-6) == pytest.approx(same.lower, rel=0.02)
    assert new.high < SPECKLE.live, new


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_mask_under_a_rim_is_still_a_mask(seed):
    # Resin under the same frame: the rim's pixels leave the lower band as they do skin's, and what is
    # left of it is resin, and reads as it.
    face = ChinDown(RESIN_SIGMA, seed=seed)
    cleared = face.cleared(face.depth())
    assert cleared.sum() < face.lower.sum()
    new = _measure(face, cleared)
    assert new.low > SPECKLE.attack, new


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_without_a_raised_line_the_lower_discs_are_read_as_before(seed):
    # A cheek with the depth's noise, a flat print's plane, a mask's edge (a 4 mm or a 15 mm step
    # above the lower band): nothing is left out, and the pairs read as before to the bit.
    face = ChinDown(SKIN_SIGMA, seed=seed)
    for units in (face.depth(rim=False), np.full(face.mask.shape, 450, np.uint16),
                  face.depth(rim=False, step_m=0.004), face.depth(rim=False, step_m=0.015)):
        assert np.array_equal(face.cleared(units), face.lower)
    assert not np.array_equal(face.cleared(face.depth()), face.lower)        # the rim itself does


def test_a_raised_line_is_found_at_any_slant_and_a_lone_noisy_pixel_is_not():
    h, w = 60, 80
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    cheek = 0.45 + ((x - 40) ** 2 + (y - 30) ** 2) * PX_M ** 2 / (2 * 0.060)
    for slope in (0.0, 0.5, -1.0, 3.0):
        on_line = np.abs((y - 30) - slope * (x - 40)) < 1.5 * np.sqrt(1 + slope ** 2)
        raised = raised_lines(np.where(on_line, cheek - 0.010, cheek).astype(np.float32))
        inner = on_line & (x >= 8) & (x < w - 8) & (y >= 8) & (y < h - 8)
        assert raised[inner].all() and not raised[~on_line].any(), slope
    spike = cheek.copy()
    spike[30, 40] -= 0.010                  # one pixel 10 mm nearer: noise, not a frame
    assert not raised_lines(spike.astype(np.float32)).any()
    tilted = 0.45 + x * PX_M * np.tan(np.deg2rad(60))         # a cheek turned 60 degrees: a slope
    assert not raised_lines(tilted.astype(np.float32)).any()


def _frameset(line_rows: tuple[int, int] | None = None):
    """The liveness worker's warm-up frameset (``warmup.framesets``: a dome 0.6 m away, 1 mm of depth
    noise, a D4xx's 1 mm units), with, in the depth imager's rows ``line_rows``, a line 12 mm in front
    of it, aligned; and a face on it: the material region's landmarks placed as on a frontal train face
    (``test_material_region``'s), 80 px between the eyes."""
    from types import SimpleNamespace

    from agent.liveness.features import EYE_PATCHES, SKIN_PATCHES
    from agent.liveness.warmup import framesets
    from agent.pipeline.align import align_frameset
    from agent.quality.depth import NOSE_TIP
    from agent.quality.metrics import FACE_OVAL
    from drivers.frame import StreamKind
    from tests.liveness.test_material_region import OVAL, SKIN

    fs = framesets(None, 1)[0]
    if line_rows is not None:
        d = fs.frames[StreamKind.DEPTH]
        units = d.pixels.copy()
        units[line_rows[0]:line_rows[1], 8:] -= np.uint16(12)
        fs = dataclasses.replace(fs, frames={**fs.frames, StreamKind.DEPTH: dataclasses.replace(d, pixels=units)})
    lm = np.zeros((478, 3))
    middle, ipd = np.array([212.0, 80.0]), 80.0
    lm[list(SKIN_PATCHES), :2] = SKIN * ipd + middle
    lm[list(FACE_OVAL), :2] = OVAL * ipd + middle
    lm[list(EYE_PATCHES), :2] = middle + np.array([0.0, -0.05]) * ipd
    # The nose tip on the dome's nearest point (of the frameset without the line): nothing of a face stands in
    # front of its nose tip, and the judge leaves out what does (``features.behind_nose_tip``, caps28).
    bare = align_frameset(framesets(None, 1)[0]).depth_u16.astype(float)
    bare[bare == 0] = np.inf
    y, x = np.unravel_index(int(np.argmin(bare)), bare.shape)
    lm[NOSE_TIP, :2] = (x, y)
    return align_frameset(fs), SimpleNamespace(mesh=SimpleNamespace(landmarks=lm, ipd_px=ipd))


def test_the_material_region_leaves_a_raised_line_out_of_the_lower_discs():
    # The same frameset and face without and with a line standing off the face across the lower
    # discs' upper rows: without it nothing is left out; with it the pixels about the line leave the
    # lower discs (and only those), above their middle, and the rest stays.
    from agent.liveness.features import MIN_GROUP_PIXELS, material_skin

    a, face = _frameset()
    whole = material_skin(a, face)
    assert whole is not None and whole.lower is not None and whole.lower_rims == 0
    rows = np.flatnonzero(whole.lower.any(axis=1))
    top = (whole.box[0].start or 0) + int(rows.min() + 0.2 * (rows.max() - rows.min()))
    a, face = _frameset((top, top + 3))
    worn = material_skin(a, face)
    assert worn is not None and worn.lower is not None and np.array_equal(worn.mask, whole.mask)
    gone = whole.lower & ~worn.lower
    assert not (worn.lower & ~whole.lower).any() and gone.sum() == worn.lower_rims > 0
    assert worn.lower.sum() >= MIN_GROUP_PIXELS
    assert np.nonzero(gone)[0].mean() < np.nonzero(whole.lower)[0].mean()
    line = top - (whole.box[0].start or 0)
    assert set(np.flatnonzero(gone.any(axis=1))) == set(range(line - RIM_REACH_PX, line + 3 + RIM_REACH_PX)) \
        & set(rows)
