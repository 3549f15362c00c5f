"""A cap's brim, which the quality gate lets through above the eyes (``agent.quality.depth.FaceDepth.brim``),
is never read as the face's skin or eyes by the liveness judge: the material region's pixels and the
eyes' discs standing in front of the nose tip by the gate's occluder margin are left out
(``features.behind_nose_tip``), as are the colour-aligned cues' (``features.leave_out_in_front``: the
depth geometry, the skin and eye discs), and a face with nothing in front of it loses no pixel (its
evidence is main's). The sixteenth family's cap wearer, identity 87 (docs/liveness.md, "A cap's brim is not an
occluder")."""

from __future__ import annotations

import numpy as np
import pytest

import drivers
from agent.liveness import features as F
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import framesets
from agent.quality import QualityGate
from agent.quality.depth import OCCLUDER_MARGIN_MM


def _frame_and_face(query: str):
    cam = drivers.open("sim://?realtime=0" + query)
    with cam:
        a = align_frameset(next(framesets(cam, 1, per_frameset=True)))
    r = QualityGate().evaluate(a)
    assert r.face is not None
    return a, r.face


def _skin(a, face, monkeypatch, leave_out: bool):
    with monkeypatch.context() as m:
        if not leave_out:
            m.setattr(F, "behind_nose_tip", lambda *args: None)            # main's region
        return F.material_skin(a, face)


def _nose_units(a, face) -> float:
    mapped = F.to_ir_pixels(a, face.mesh.landmarks[[F.NOSE_TIP], :2])
    assert mapped is not None
    (x, y), scale = mapped[0][0], mapped[1]
    units = a.frameset.depth.pixels
    r = max(0.06 * face.mesh.ipd_px * scale, 2.0)
    disc = F.discs_mask(units.shape, np.array([[x, y]]), r) & (units > 0)
    return float(np.median(units[disc]))


def test_the_brim_is_left_out_of_the_material_region_and_the_eyes(monkeypatch):
    a, face = _frame_and_face("&family=sixteenth&identity=87")
    before, after = _skin(a, face, monkeypatch, False), _skin(a, face, monkeypatch, True)
    assert before is not None and after is not None and before.box == after.box
    units, scale = a.frameset.depth.pixels[after.box], a.frameset.depth.depth_scale
    limit = (_nose_units(a, face) * scale - OCCLUDER_MARGIN_MM / 1000) / scale
    brim = (units > 0) & (units < limit)
    # On main the brim's pixels were in the region (the forehead's discs); now none is, and nothing else
    # was taken away.
    assert (before.mask & brim).sum() > 50
    assert not (after.mask & brim).any() and np.array_equal(after.mask, before.mask & ~brim)
    assert before.forehead is not None and after.forehead is not None
    assert not (after.forehead & brim).any()
    assert before.eyes is not None and after.eyes is not None
    assert not (after.eyes & brim).any() and np.array_equal(after.eyes, before.eyes & ~brim)


@pytest.mark.parametrize("query", ["&seed=4", "&camera=d455&identity=2", "&glasses=clear&identity=4"])
def test_a_face_with_nothing_in_front_keeps_every_pixel(monkeypatch, query):
    a, face = _frame_and_face(query)
    before, after = _skin(a, face, monkeypatch, False), _skin(a, face, monkeypatch, True)
    assert before is not None and after is not None
    for x, y in ((before.mask, after.mask), (before.forehead, after.forehead), (before.lower, after.lower),
                 (before.eyes, after.eyes)):
        assert (x is None and y is None) or np.array_equal(x, y)


def _left_out(a, face) -> tuple[int, int]:
    """Pixels ``leave_out_in_front`` takes from the colour-aligned ROI, and how many of them lie above
    the line through the upper lids."""
    from agent.quality.depth import above_lids
    roi = F.face_roi(a, face)
    lm = roi.local(face.mesh.landmarks[:, :2])
    before = roi.valid.copy()
    n = F.leave_out_in_front(roi, lm[F.NOSE_TIP], face.mesh.ipd_px)
    gone = before & ~roi.valid
    assert int(gone.sum()) == n
    return n, int((gone & above_lids(roi.shape, lm)).sum())


def test_the_cues_in_colour_leave_the_brim_out():
    a, face = _frame_and_face("&family=sixteenth&identity=87")
    n, above = _left_out(a, face)
    assert n > 500 and above == n                     # the brim, all of it above the upper lids


@pytest.mark.parametrize("query", ["&seed=4", "&camera=d455&identity=2", "&glasses=clear&identity=4",
                                   "&yaw=20&identity=5"])
def test_the_cues_in_colour_of_a_face_with_nothing_in_front_keep_every_pixel(query):
    a, face = _frame_and_face(query)
    assert _left_out(a, face) == (0, 0)
