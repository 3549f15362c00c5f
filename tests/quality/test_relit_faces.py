"""The gate's second try for a face (issue 14, twenty-sixth session): where the detector finds no face
on the colour image, it searches the image again relit (``agent.face.relit``: hard stripes of light
divided out) and keeps a box only where the aligned depth holds a head (``faces.head_in_depth``). The
fourteenth family's low sun through venetian blinds hid faces from the detector; the relit image alone
also made faces of photographs (detect25: ``coffee`` 0.63)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import drivers
from agent.face import FaceDetector
from agent.face.relit import relit_detections
from agent.pipeline.align import AlignedFrameSet, align_frameset
from agent.pipeline.frames import framesets
from agent.quality import gate as gate_module
from agent.quality.faces import head_in_depth
from agent.quality.gate import QualityGate
from bench.relit_detection import flat_print

# fourteenth/bona_fide/live/2 (a development family's presentation, refused NO_FACE on main 4d96aa7):
# a face at 427 mm crossed by the blinds' stripes, which the plain detector does not find.
STRIPED = ("sim://?subject=live&family=fourteenth&identity=692&seed=980163492&camera=d456&light=blinds&cct=4332"
           "&lux=6858.8&distance_mm=427&yaw=3.7&pitch=-9.7&background=clutter&realtime=0")
# train/live/0: a face the plain detector finds.
PLAIN = ("sim://?subject=live&family=train&identity=408&seed=1475445660&camera=d415&light=fluorescent&cct=3761"
         "&lux=89.8&distance_mm=418&yaw=4.4&pitch=2.9&background=clutter&realtime=0")


def aligned_sets(uri: str, n: int) -> list[AlignedFrameSet]:
    cam = drivers.open(uri)
    with cam:
        return [align_frameset(fs) for fs in framesets(cam, n, per_frameset=True)]


@pytest.fixture(scope="module")
def striped():
    return aligned_sets(STRIPED, 2)[1]


@pytest.fixture(scope="module")
def plain():
    return aligned_sets(PLAIN, 2)[1]


def test_a_face_under_the_blinds_is_found_by_the_second_try(striped):
    det = FaceDetector()
    assert det.detect(np.ascontiguousarray(striped.color.pixels)) == []       # the first try finds none
    m = QualityGate(detector=det).measure(striped)
    assert m.face is not None
    assert not any(c.name == "face_present" for c in m.checks)
    assert m.values["faces_relit"] == 1.0
    ev = head_in_depth(m.face.detection, striped)
    assert ev.is_head and 0.09 <= ev.width_m <= 0.14 and ev.relief_mm >= 15, ev


def test_the_same_box_on_a_flat_surface_is_no_head(striped):
    """The depth decides: the box the second try keeps is no head once its depth is a plane."""
    box = relit_detections(FaceDetector(), np.ascontiguousarray(striped.color.pixels))[0]
    flat = dataclasses.replace(striped, depth_u16=np.full_like(striped.depth_u16, round(0.43 / striped.depth_scale)))
    ev = head_in_depth(box, flat)
    assert not ev.is_head and abs(ev.relief_mm) < 1, ev
    no_depth = dataclasses.replace(striped, depth_u16=np.zeros_like(striped.depth_u16))
    assert not head_in_depth(box, no_depth).is_head                           # no depth is no head


def test_a_photograph_the_relit_image_makes_a_face_of_is_no_face(plain):
    """scikit-image's coffee cup, held up flat: relit, the detector finds a "face" in it; the depth
    (a plane) holds no head, so the gate still finds no face."""
    from skimage import data
    photo = flat_print(plain, data.coffee())
    det = FaceDetector()
    img = np.ascontiguousarray(photo.color.pixels)
    assert det.detect(img) == []
    assert relit_detections(det, img)                                         # what the depth check is for
    m = QualityGate(detector=det).measure(photo)
    assert m.face is None and "faces_relit" not in m.values
    assert [c.prompt for c in m.checks if not c.ok] == ["NO_FACE"]


def forbid(monkeypatch, name: str, why: str) -> None:
    """Make the gate's ``name`` (a second try) fail the test if it runs."""
    def refuse(*_):
        raise AssertionError(why)
    monkeypatch.setattr(gate_module, name, refuse)


def test_the_first_try_is_unchanged_where_it_finds_a_face(plain, monkeypatch):
    forbid(monkeypatch, "relit_detections", "the second try ran on a frame whose first try found a face")
    m = QualityGate().measure(plain)
    assert m.face is not None and "faces_relit" not in m.values


def test_a_striped_scene_without_anyone_has_no_face():
    """The blinds' stripes on the fourteenth family's wall and clutter, nobody in front of them."""
    a = aligned_sets("sim://?subject=none&family=fourteenth&seed=1&background=clutter&camera=d456&light=blinds"
                     "&realtime=0", 2)[1]
    m = QualityGate().measure(a)
    assert m.face is None and "faces_relit" not in m.values
    assert [c.prompt for c in m.checks if not c.ok] == ["NO_FACE"]
