"""§7.5 h judged over the capture window: a capture is complete only once a good frameset was judged on
a full depth window, so marginal depth is not passed on the median of a session's first framesets, and
a good face waits for the window to fill, no longer."""

from __future__ import annotations

from agent.quality import QualityGate
from agent.quality.depth import FaceDepth
from agent.quality.gate import Measurement
from agent.quality.spec import CheckResult


def _frameset(face: float, core: float = 1.0) -> Measurement:
    """One frameset whose own checks all pass (a face the gate otherwise accepts) and whose depth on
    the face covers ``face`` of the oval and ``core`` of the eye/nose/mouth discs."""
    own = [CheckResult("face_present", True, 1, ">= 1 face", "6.1.1")]
    return Measurement(own, None, 1, {}, 0.0, FaceDepth(face=face, core=core, glint_holes=0, in_front=0.0))


def _run(gate: QualityGate, faces: list[float]) -> list[tuple[bool, bool, int]]:
    gate.reset()
    out = []
    for f in faces:
        r = gate.apply(_frameset(f))
        out.append((r.ok, gate.complete, r.progress))
    return out


def test_marginal_depth_is_not_passed_before_the_window_is_full(gate):
    t = gate.thresholds
    assert (t.depth_window, t.good_frames_required, t.depth_face_completeness_min) == (6, 5, 0.80)
    # Depth at the limit early, under it from the fourth frameset: the median of the first 5 passes
    # (0.81), that of all 6 does not (0.785). On 5 framesets a capture used to be complete.
    steps = _run(gate, [0.82, 0.81, 0.83, 0.75, 0.76, 0.74])
    assert [ok for ok, _, _ in steps] == [True] * 5 + [False]
    assert not any(done for _, done, _ in steps)
    assert max(p for _, _, p in steps) < 100
    assert gate.apply(_frameset(0.74)).prompts == ["DEPTH_SPARSE"]
    assert not gate.complete


def test_a_good_face_completes_as_soon_as_the_window_is_full(gate):
    steps = _run(gate, [0.97] * 6)
    assert [done for _, done, _ in steps] == [False] * 5 + [True]
    assert [p for _, _, p in steps] == [20, 40, 60, 80, 80, 100]
    # A face measured (turning, say) before it passes: its framesets fill the window; the good ones
    # then complete the capture at the usual count.
    gate.reset()
    for _ in range(4):
        gate.apply(Measurement([CheckResult("yaw", False, 30.0, "|yaw| <= 20", "7.3", "TURN_TO_CAMERA")], None, 1,
                               {}, 0.0, FaceDepth(face=0.97, core=1.0, glint_holes=0, in_front=0.0)))
    done = []
    for _ in range(5):
        gate.apply(_frameset(0.97))
        done.append(gate.complete)
    assert done == [False] * 4 + [True]
