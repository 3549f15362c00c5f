"""The gate measures the face inside its own region (masks, gray, RGB crops, the IR around glint
holes): every number and every decision must equal the straightforward whole-frame path's
(``tests/helpers/quality_reference.py``) on the same framesets, in the same process.

Scenes cover both colour sizes (D435 640x480, D455 1280x720 with its tiles), two people, no face, an
attack, a hand in front of the face, glasses with projector glints, a face running off the frame,
a turned head in dim light, a bystander, a cap's brim in front of the brow (the sixteenth family), and a
surface in front of the face (depth edited in)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import agent.quality.gate as gate_module
import agent.quality.metrics as metrics_module
import drivers
from agent.face import FaceDetector, face_mesh
from agent.face.pose import depth_at
from agent.pipeline.align import AlignedFrameSet, align_frameset
from agent.pipeline.frames import framesets
from agent.quality import QualityGate, QualityReport, QualitySettings
from agent.quality import metrics as M
from agent.quality.depth import face_depth
from agent.quality.gate import SIM_LUX_K
from drivers.sim.camera import SERIAL
from tests.helpers import quality_reference as ref

SCENES = {
    "d435": "",
    "d455": "&camera=d455",
    "d455_two_people": "&camera=d455&subject=multi",
    "d455_bystander": "&camera=d455&bystander=1&background=clutter&seed=3",
    "glasses_glints": "&glasses=clear&identity=4",
    "hand_in_front": "&subject=head_model_hand",
    "print": "&subject=print",
    "no_face": "&subject=none",
    "turned_dim": "&yaw=28&lux=12&identity=2",
    "cap_brim": "&family=sixteenth&identity=87",
}
FRAMESETS = 3


@pytest.fixture(scope="module")
def scenes() -> dict[str, list[AlignedFrameSet]]:
    out = {}
    for name, query in SCENES.items():
        cam = drivers.open("sim://?realtime=0" + query)
        cam.start()
        try:
            out[name] = [align_frameset(fs) for fs in framesets(cam, FRAMESETS, per_frameset=True)]
        finally:
            cam.stop()
    out["occluded"] = [_occluded(a) for a in out["d435"]]
    out["at_the_edge"] = [_shifted(a, 270) for a in out["d435"]]
    return out


def _shifted(a: AlignedFrameSet, dx: int) -> AlignedFrameSet:
    """``a`` with colour and aligned depth moved ``dx`` px right: the face runs off the frame."""
    def move(x: np.ndarray, fill: float) -> np.ndarray:
        out = np.full_like(x, fill)
        out[:, dx:] = x[:, :-dx]
        return out
    color = dataclasses.replace(a.color, pixels=move(a.color.pixels, 0))
    ir = move(a.ir, 0) if a.ir is not None else None
    return AlignedFrameSet(a.frameset, color, move(a.depth_u16, 0), ir, a.depth_scale)


def _occluded(a: AlignedFrameSet) -> AlignedFrameSet:
    """``a`` with a surface 4 cm in front of the nose tip from the lips down (a hand, say)."""
    det = FaceDetector().detect(a.color.pixels)[0]
    lm = face_mesh(a.color.pixels, det).landmarks
    nose = float(depth_at(lm[[4]], a.depth_m)[0])
    depth = a.depth_m[...]
    x0, x1 = int(lm[:, 0].min()), int(lm[:, 0].max())
    depth[int(lm[13, 1]):int(lm[:, 1].max()), x0:x1] = nose - 0.04
    units = np.where(np.isfinite(depth), np.round(depth / a.depth_scale), 0).astype(np.uint16)
    return AlignedFrameSet(a.frameset, a.color, units, a.ir, a.depth_scale)


@pytest.fixture(scope="module")
def settings() -> QualitySettings:
    # With the simulator's lux calibration, so that the skin level is measured too.
    return QualitySettings(lux_calibration={SERIAL: SIM_LUX_K})


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


def _assert_same_report(fast: QualityReport, slow: QualityReport, where: str) -> None:
    assert fast.ok == slow.ok, where
    assert fast.prompts == slow.prompts, where
    assert (fast.prompt.code if fast.prompt else None) == (slow.prompt.code if slow.prompt else None), where
    assert fast.progress == slow.progress and fast.faces_found == slow.faces_found, where
    assert [(c.name, c.ok, c.limit, c.clause, c.prompt) for c in fast.checks] == \
        [(c.name, c.ok, c.limit, c.clause, c.prompt) for c in slow.checks], where
    for c, d in zip(fast.checks, slow.checks, strict=True):
        assert _same(c.value, d.value), f"{where}: {c.name} {c.value} != {d.value}"
    assert fast.metrics.keys() == slow.metrics.keys(), where
    for k in fast.metrics:
        assert _same(fast.metrics[k], slow.metrics[k]), f"{where}: {k} {fast.metrics[k]} != {slow.metrics[k]}"


def test_each_measurement_equals_the_whole_frame_path(scenes, gate):
    faces = 0
    for name, sets in scenes.items():
        for i, a in enumerate(sets):
            bgr = a.color.pixels
            dets = gate.detector.detect(bgr)
            if not dets:
                continue
            faces += 1
            where = f"{name}[{i}]"
            mesh, mesh_ref = face_mesh(bgr, dets[0]), ref.face_mesh(bgr, dets[0])
            assert np.array_equal(mesh.landmarks, mesh_ref.landmarks), where
            assert mesh.presence == mesh_ref.presence and mesh.openness == mesh_ref.openness, where
            assert mesh.iris_right is not None and mesh_ref.iris_right is not None
            assert np.array_equal(mesh.iris_right, mesh_ref.iris_right), where
            lm, ipd = mesh.landmarks, mesh.ipd_px
            fd, fd_ref = dataclasses.astuple(face_depth(a, lm, ipd)), dataclasses.astuple(ref.face_depth(a, lm, ipd))
            assert all(_same(x, y) for x, y in zip(fd, fd_ref, strict=True)), (where, fd, fd_ref)
            assert M.face_exposure(bgr, lm, 85, 200) == ref.face_exposure(bgr, lm, 85, 200), where
            assert M.sharpness(bgr, dets[0].centre, ipd) == ref.sharpness(bgr, dets[0].centre, ipd), where
            assert M.skin_linear_level(bgr, lm, ipd) == ref.skin_linear_level(bgr, lm, ipd), where
    assert faces >= 20


def test_every_verdict_and_prompt_equals_the_whole_frame_path(scenes, settings, monkeypatch):
    fast_gate = QualityGate(settings)
    fast = {}
    for name, sets in scenes.items():
        fast_gate.reset()
        fast[name] = [fast_gate.evaluate(a) for a in sets]
    monkeypatch.setattr(gate_module, "face_mesh", ref.face_mesh)
    monkeypatch.setattr(gate_module, "face_depth", ref.face_depth)
    monkeypatch.setattr(metrics_module, "face_exposure", ref.face_exposure)
    monkeypatch.setattr(metrics_module, "sharpness", ref.sharpness)
    monkeypatch.setattr(metrics_module, "skin_linear_level", ref.skin_linear_level)
    slow_gate = QualityGate(settings, detector=fast_gate.detector)
    for name, sets in scenes.items():
        slow_gate.reset()
        for i, (a, f) in enumerate(zip(sets, fast[name], strict=True)):
            _assert_same_report(f, slow_gate.evaluate(a), f"{name}[{i}]")
    # The scenes reach the branches that the region-limited code changed.
    reports = [r for rs in fast.values() for r in rs]
    assert any(r.faces_found == 0 for r in reports) and any(r.faces_found >= 2 for r in reports)
    assert any(r.metrics.get("depth_glint_holes", 0) > 0 for r in reports), "no glint holes measured"
    assert any(r.metrics.get("in_front_share", 0) > 0 for r in reports), "nothing measured in front of a face"
    assert any(r.metrics.get("brim_share", 0) > 0 for r in reports), "no cap's brim measured"
    assert any(r.ok for r in reports) and any("FACE_INCOMPLETE" in r.prompts for r in reports)
