"""§7.5 h judged over the capture window: a capture completes on a short depth window only when the
framesets it still lacks could not overturn the window's verdict, so marginal depth is not passed on
the median of a session's first framesets, and a good face completes as soon as before."""

from __future__ import annotations

from agent.quality import QualityGate
from agent.quality.depth import FaceDepth
from agent.quality.gate import Measurement
from agent.quality.spec import CheckResult


def _frameset(face: float, core: float = 1.0, *own: CheckResult) -> Measurement:
    """One frameset whose own checks are ``own`` (by default one that passes: a face the gate
    otherwise accepts) and whose depth covers ``face`` of the face oval and ``core`` of the
    eye/nose/mouth discs."""
    checks = list(own) or [CheckResult("face_present", True, 1, ">= 1 face", "6.1.1")]
    return Measurement(checks, None, 1, {}, 0.0, FaceDepth(face=face, core=core, glint_holes=0, in_front=0.0))


def _run(gate: QualityGate, faces: list[float], core: float = 1.0) -> list[tuple[bool, bool, int]]:
    gate.reset()
    out = []
    for f in faces:
        r = gate.apply(_frameset(f, core))
        out.append((r.ok, gate.complete, r.progress))
    return out


def test_a_quick_capture_completes_only_when_its_depth_window_is_settled(gate):
    t = gate.thresholds
    assert (t.depth_window, t.good_frames_required, t.depth_face_completeness_min) == (6, 5, 0.80)
    # Depth at the limit early, under it from the fourth frameset: the median of the first 5 passes
    # (0.81) and on main completed the capture; with a sixth frameset of no depth it is 0.785, so
    # the window waits for its sixth, whose median (0.785) fails.
    steps = _run(gate, [0.82, 0.81, 0.83, 0.75, 0.76, 0.74])
    assert [ok for ok, _, _ in steps] == [True] * 5 + [False]
    assert not any(done for _, done, _ in steps)
    assert max(p for _, _, p in steps) == 80
    assert gate.apply(_frameset(0.74)).prompts == ["DEPTH_SPARSE"] and not gate.complete
    # The same at the eyes, nose and mouth (core, >= 95 %).
    steps = _run(gate, [0.97] * 6, core=0.96)
    assert [done for _, done, _ in steps] == [False] * 4 + [True] * 2
    gate.reset()
    for core in (0.97, 0.96, 0.97, 0.93, 0.935):          # median 0.96; with a sixth of none 0.9475
        gate.apply(_frameset(0.97, core))
    assert gate.good_frames == 5 and not gate.complete
    # A good face completes on its 5th frameset as before, one noisy frameset among them or not ...
    for faces in ([0.97] * 5, [0.97, 0.97, 0.4, 0.97, 0.97]):
        steps = _run(gate, faces)
        assert [done for _, done, _ in steps] == [False] * 4 + [True], faces
        assert [p for _, _, p in steps] == [20, 40, 60, 80, 100]
    # ... and a face measured before it passes (turning, say) fills the window meanwhile.
    gate.reset()
    turned = CheckResult("yaw", False, 30.0, "|yaw| <= 20", "7.3", "TURN_TO_CAMERA")
    for _ in range(4):
        gate.apply(_frameset(0.97, 1.0, turned))
    done = []
    for _ in range(5):
        gate.apply(_frameset(0.97))
        done.append(gate.complete)
    assert done == [False] * 4 + [True]
