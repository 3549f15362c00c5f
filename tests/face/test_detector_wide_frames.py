"""The face detector on frames wider than 4:3 (a D455's 1280x720 colour): square tiles of the
frame's height find a face that letterboxing the whole frame makes too small, and a face cut by a
tile's edge is counted once."""

import numpy as np
import pytest

import drivers
from agent.face import FaceDetector
from drivers.frame import StreamKind


@pytest.fixture(scope="module")
def d455_frame():
    """A 1280x720 colour frame of a live face at 0.5 m from the simulated D455, and the detector."""
    cam = drivers.open("sim://?realtime=0&camera=d455&seed=3&distance_mm=500&torso=0")
    with cam:
        frames = [cam.read(timeout_s=10) for _ in range(8)]
    colour = [f.pixels for f in frames if f.stream is StreamKind.COLOR][-1]
    assert colour.shape == (720, 1280, 3)
    return colour, FaceDetector()


def test_a_face_too_small_for_the_letterboxed_frame_is_found_in_a_tile(d455_frame):
    img, det = d455_frame
    whole, _, _ = det._raw(img, 0, 0)
    assert len(whole) == 0                       # the whole 16:9 frame in 128x128: the face is ~19 px
    found = det.detect(img)
    assert len(found) == 1 and found[0].score > 0.8
    # In frame pixels: the box's width is the face's (~0.15 m at 0.5 m through fx 629.5: ~130-190 px).
    assert 100 < found[0].width < 220
    # Keypoints back in frame pixels: both eyes inside the box.
    x0, y0, x1, y1 = found[0].bbox
    for x, y in found[0].keypoints[:2]:
        assert x0 < x < x1 and y0 < y < y1


def test_a_face_anywhere_across_the_frame_is_one_face(d455_frame):
    img, det = d455_frame
    cx = det.detect(img)[0].centre[0]
    # Slide the face across the frame, over every tile edge (280, 560, 720, 1000 for 1280x720).
    for target in range(160, 1121, 40):
        shifted = np.roll(img, int(target - cx), axis=1)
        found = det.detect(shifted)
        assert len(found) == 1, (target, [d.bbox for d in found])
        assert found[0].centre[0] == pytest.approx(target, abs=12)


def test_four_by_three_frames_are_searched_whole_once(d455_frame, monkeypatch):
    _, det = d455_frame
    calls = []
    real = det._raw
    monkeypatch.setattr(det, "_raw", lambda img, ox, oy: calls.append(img.shape) or real(img, ox, oy))
    det.detect(np.zeros((480, 640, 3), np.uint8))
    assert calls == [(480, 640, 3)]
    calls.clear()
    det.detect(np.zeros((720, 1280, 3), np.uint8))
    assert calls == [(720, 1280, 3)] + [(720, 720, 3)] * 3
