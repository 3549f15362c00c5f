"""The gate's second landmark try (issue 14, twenty-seventh session): where FaceMesh's presence on a
detected face is under ``presence_min``, the mesh runs again on the colour relit by the light the aligned
IR shows (``agent.face.relit.ir_relit``: the sun's stripes through blinds cross the IR image where they
cross the colour one), and its landmarks are kept only if that presence reaches the limit."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from agent.face import FaceDetector, face_mesh
from agent.face.relit import ir_relit
from agent.quality.gate import QualityGate
from bench import stripes_landmarks as S
from drivers.sim import scene as sim_scene

from .test_relit_faces import PLAIN, aligned_sets, forbid

# fourteenth/bona_fide/live/47 (a development family's presentation, refused FACE_INCOMPLETE on main
# 4d96aa7: 29 of 30 framesets): a face at 432 mm under the blinds' stripes, found by the detector,
# FaceMesh's presence 0.01-0.02 on it.
STRIPED = ("sim://?subject=live&family=fourteenth&identity=508&seed=340567708&camera=d456&light=blinds&cct=3487"
           "&lux=3798.6&distance_mm=432&yaw=13.9&pitch=10.9&background=plain&realtime=0")


@pytest.fixture(scope="module")
def striped():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sim_scene.Scene, "objects", S._objects)
        frames, truths = S.frames(STRIPED, "asis")
    return frames[0], truths[0]


@pytest.fixture(scope="module")
def plain():
    return aligned_sets(PLAIN, 2)[1]


def test_the_stripes_landmarks_come_from_the_ir_relit_try_and_are_nearer_the_truth(striped):
    a, truth = striped
    bgr = np.ascontiguousarray(a.color.pixels)
    det = FaceDetector()
    d = det.detect(bgr)[0]
    first = face_mesh(bgr, d)
    gate = QualityGate(detector=det)
    assert first.presence < gate.thresholds.presence_min                  # what the family refused
    m = gate.measure(a)
    assert m.values["mesh_relit"] == 1.0 and m.face is not None
    assert m.face.mesh.presence >= gate.thresholds.presence_min
    assert S.nme(S.mesh_points(m.face.mesh), truth) < S.nme(S.mesh_points(first), truth)
    assert not [c for c in m.checks if c.prompt == "FACE_INCOMPLETE" and not c.ok]


def test_the_second_try_does_not_run_where_the_first_mesh_holds(plain, monkeypatch):
    forbid(monkeypatch, "ir_relit", "the IR-relit mesh ran on a face whose first mesh was present")
    m = QualityGate().measure(plain)
    assert m.face is not None and "mesh_relit" not in m.values


def test_no_relit_image_without_stripes_in_both_images(plain, striped):
    """Unstriped IR (a train face under fluorescent light): none. Stripes painted on the colour
    alone (a print's shading, an injected colour image): the IR shows none, so none. Stripes in the
    IR alone (an injected IR image): the colour does not fall with them to a hard shadow, so none.
    Without IR: no second try."""
    bgr = np.ascontiguousarray(plain.color.pixels)
    d = FaceDetector().detect(bgr)[0]
    assert plain.ir is not None and ir_relit(bgr, plain.ir, d) is None
    rows = np.arange(bgr.shape[0], dtype=np.float32)[:, None]
    bands = np.where(np.sin(2 * np.pi * rows / 30.0) > 0, 1.0, 0.2).astype(np.float32)
    painted = (bgr * bands[..., None]).astype(np.uint8)
    assert ir_relit(painted, plain.ir, d) is None
    ir_striped = (plain.ir * bands).astype(np.uint8)
    assert ir_relit(bgr, ir_striped, d) is None
    gate = QualityGate()
    assert gate.relit_mesh(dataclasses.replace(plain, ir=None), d) is None


def test_the_relit_image_is_the_colour_outside_the_face(striped):
    a, _ = striped
    bgr = np.ascontiguousarray(a.color.pixels)
    d = FaceDetector().detect(bgr)[0]
    out = ir_relit(bgr, a.ir, d)
    assert out is not None and out.shape == bgr.shape and out.dtype == np.uint8
    changed = cv2.cvtColor(cv2.absdiff(out, bgr), cv2.COLOR_BGR2GRAY) > 0
    ys, xs = np.nonzero(changed)
    cx, cy = d.centre
    side = max(d.width, d.height) * 1.5
    assert np.abs(xs - cx).max() < side and np.abs(ys - cy).max() < side    # around the face only


def measured_bits(m) -> str:
    """A measurement's checks, values and main face's landmarks, to the bit."""
    assert m.face is not None
    return repr((m.checks, sorted((k, float(v).hex()) for k, v in m.values.items()),
                 m.face.mesh.landmarks.tobytes(), float(m.face.mesh.presence).hex()))


def test_a_second_try_worked_out_ahead_is_taken_for_its_detection_alone(striped, monkeypatch):
    """``measure``'s ``relit`` (perf31: the judge works the window's last frameset's second try out as soon as
    its IR is aligned): taken for the very detection it was worked out for, without running it again, and
    the measurement is the one the gate makes itself, to the bit; for another detection object (even an equal
    one) the gate runs its own."""
    a, _ = striped
    gate = QualityGate()
    dets = gate.detector.detect(a.color.pixels)
    assert len(dets) == 1
    own = gate.measure(a, dets)
    ahead = (dets[0], gate.relit_mesh(a, dets[0]))
    calls = []
    real = gate.relit_mesh
    monkeypatch.setattr(gate, "relit_mesh", lambda *args: calls.append(args) or real(*args))
    taken = gate.measure(a, dets, relit=ahead)
    assert calls == [] and measured_bits(taken) == measured_bits(own) and taken.values["mesh_relit"] == 1.0
    other = gate.measure(a, dets, relit=(dataclasses.replace(dets[0]), None))
    assert len(calls) == 1 and measured_bits(other) == measured_bits(own)


def test_the_judge_works_the_second_try_out_ahead_only_where_the_frameset_before_tried_it(striped, plain):
    """``Judge._relit``: on the last frameset, while its colour landmarks are still to come, where the frameset
    before tried the second landmark try (``QualityGate.relit_tried``); not where it did not, nor once the
    colour landmarks are in (the gate then runs it itself where needed), nor without a single detection."""
    from concurrent.futures import Future
    from types import SimpleNamespace

    from agent.liveness.fusion import load_thresholds
    from agent.liveness.judge import Judge

    a, _ = striped
    gate = QualityGate()
    judge = Judge(gate, load_thresholds("kiosk", challenged=True), challenge=None)
    dets = gate.detector.detect(a.color.pixels)

    def done(value):
        f: Future = Future()
        f.set_result(value)
        return f
    tried = SimpleNamespace(measurement=gate.measure(a, dets))
    untried = SimpleNamespace(measurement=gate.measure(plain))
    assert gate.relit_tried(tried.measurement) and not gate.relit_tried(untried.measurement)
    got = judge._relit(a, done(dets), Future(), done(tried))
    assert got is not None and got[0] is dets[0]
    expected = gate.relit_mesh(a, dets[0])
    assert got[1] is not None and expected is not None
    assert got[1].landmarks.tobytes() == expected.landmarks.tobytes()
    assert judge._relit(a, done(dets), Future(), done(untried)) is None
    assert judge._relit(a, done(dets), done(None), done(tried)) is None          # the colour landmarks are in
    assert judge._relit(a, done(dets * 2), Future(), done(tried)) is None        # two detections
    assert judge._relit(a, done(dets), Future(), None) is None                   # the window's only frameset

    def fails(*_):
        raise RuntimeError("the relit mesh failed")
    gate.relit_mesh = fails
    assert judge._relit(a, done(dets), Future(), done(tried)) is None            # not this frameset's error


@pytest.mark.parametrize("k", [3, 5, 9, 15, 21, 31, 45])
def test_the_disc_maximum_is_the_elliptic_dilation_to_the_bit(k):
    """perf32: ``_disc_max`` (the element's rectangles' dilations) is ``cv2.dilate`` by the elliptic element,
    edges included, on float and 8-bit images of odd sizes."""
    from agent.face.relit import _disc_max, _disc_rects
    assert _disc_rects(k) is not None
    rng = np.random.default_rng(k)
    el = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    for img in (rng.random((97, 131), dtype=np.float32) * 300, rng.integers(0, 256, (64, 45), dtype=np.uint8),
                rng.random((k + 2, 3 * k), dtype=np.float32)):
        assert np.array_equal(_disc_max(img, k), cv2.dilate(img, el))


def test_the_relit_image_and_mesh_are_those_before_perf32(striped, plain):
    """``ir_relit`` with its tests first and the disc maxima by rectangles: the image before perf32
    (``ir_relit_before32``) to the bit, relit or None; ``relit_mesh``: the same landmarks and presence, the
    irises only where the presence reaches the limit (and then the same)."""
    from tests.helpers.quality_reference import ir_relit_before32, relit_mesh_before32
    gate = QualityGate()
    for a in (striped[0], plain):
        for d in gate.detector.detect(a.color.pixels):
            for ir in (a.ir, np.where(a.ir > 0, 255 - a.ir, 0).astype(a.ir.dtype)):
                new, old = ir_relit(a.color.pixels, ir, d), ir_relit_before32(a.color.pixels, ir, d)
                assert (new is None) == (old is None) and (new is None or np.array_equal(new, old))
            m, before = gate.relit_mesh(a, d), relit_mesh_before32(a, d)
            assert (m is None) == (before is None)
            if m is None or before is None:
                continue
            assert m.landmarks.tobytes() == before.landmarks.tobytes() and m.presence == before.presence
            if m.presence >= gate.thresholds.presence_min:
                assert m.iris_right is not None and m.iris_left is not None and before.iris_right is not None
                assert m.iris_right.tobytes() == before.iris_right.tobytes() and m.openness == before.openness
            else:
                assert m.iris_right is None and m.openness is None


def test_a_relit_mesh_under_the_limit_has_no_irises(striped, monkeypatch):
    """Below the presence limit the gate does not take the relit mesh, so its irises are not found."""
    a, _ = striped
    gate = QualityGate()
    d = gate.detector.detect(a.color.pixels)[0]
    monkeypatch.setattr(gate, "thresholds", dataclasses.replace(gate.thresholds, presence_min=1.01))
    forbid(monkeypatch, "with_irises", "the irises of a relit mesh under the presence limit were found")
    m = gate.relit_mesh(a, d)
    assert m is not None and m.iris_right is None and m.presence < gate.thresholds.presence_min


def test_the_second_try_ahead_stops_once_the_colour_landmarks_hold(striped):
    """``Judge._relit`` (perf32): the colour landmarks coming in during the try with their presence at the
    limit stop it (None: the gate takes no second try); under the limit it goes on, its landmarks the
    gate's own. Either way ``tried`` says it started."""
    from concurrent.futures import Future
    from types import SimpleNamespace

    from agent.liveness.fusion import load_thresholds
    from agent.liveness.judge import Judge, _Face

    a, _ = striped
    gate = QualityGate()
    judge = Judge(gate, load_thresholds("kiosk", challenged=True), challenge=None)
    dets = gate.detector.detect(a.color.pixels)
    colour = face_mesh(a.color.pixels, dets[0])
    assert colour.presence < gate.thresholds.presence_min

    def done(value):
        f: Future = Future()
        f.set_result(value)
        return f
    before = done(SimpleNamespace(measurement=gate.measure(a, dets)))
    real = gate.relit_mesh
    expected = real(a, dets[0])
    for presence, stops in ((1.0, True), (colour.presence, False)):
        face: Future = Future()
        steps = []

        def relit_mesh(aligned, det, check, face=face, presence=presence, steps=steps):
            def checked():
                steps.append(1)
                if not face.done():         # the colour landmarks come in during the try
                    face.set_result(_Face(dets, dataclasses.replace(colour, presence=presence)))
                check()
            return real(aligned, det, checked)
        gate.relit_mesh = relit_mesh
        tried: list[bool] = []
        got = judge._relit(a, done(dets), face, before, tried)
        assert tried == [True] and steps
        if stops:
            assert got is None and len(steps) == 1
        else:
            assert got is not None and got[1] is not None and expected is not None
            assert got[1].landmarks.tobytes() == expected.landmarks.tobytes() and len(steps) >= 2
    judge.close()
