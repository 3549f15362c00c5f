"""The liveness worker's warm-up session, synthesised from arrays (``agent/liveness/warmup.py``):
it follows the challenge, reaches every face-dependent path of the judge, and is never judged live."""

from __future__ import annotations

import numpy as np
import pytest

from agent.liveness import warmup
from agent.liveness.challenge import Challenge, dot_energy
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import judge
from agent.quality import QualityGate


@pytest.fixture(scope="module")
def challenge():
    return Challenge.from_nonce(warmup.NONCE, 8, kinds=("projector", "illumination"))


@pytest.fixture(scope="module")
def sets(challenge):
    return warmup.framesets(challenge, challenge.frames)


def test_the_framesets_follow_the_challenge(challenge, sets):
    assert [fs.ir.metadata.projector_on for fs in sets] == list(challenge.schedule)
    lit = [dot_energy(fs.ir.pixels) for fs, on in zip(sets, challenge.schedule, strict=True) if on]
    dark = [dot_energy(fs.ir.pixels) for fs, on in zip(sets, challenge.schedule, strict=True) if not on]
    assert lit and dark and min(lit) > 3 * max(dark)          # the dots show on the lit frames only
    assert not sets[0].color.pixels.any()                        # the first: nothing in view
    assert [fs.depth.frame_number for fs in sets] == list(range(1, len(sets) + 1))


def test_the_same_framesets_every_start(challenge, sets):
    again = warmup.framesets(challenge, challenge.frames)
    for a, b in zip(sets, again, strict=True):
        for kind, f in a.frames.items():
            assert np.array_equal(f.pixels, b.frames[kind].pixels)


def test_the_warm_up_session_reaches_every_face_dependent_path_and_is_not_live(challenge, sets):
    gate = QualityGate(detector=warmup.WarmUpDetector())
    r = judge(sets, gate, VerdictThresholds(), challenge=challenge)
    v = r.verdict
    # A face "found" on every frame but the black one: landmarks, iris, pose, the gate's checks and
    # the liveness cues ran on each; the projector's light was measured on its lit/unlit pairs (8
    # frames hold too few pairs for it to decide material, which is reported unmeasurable).
    assert r.framesets == len(sets) and r.best_index is not None and r.best_index > 0
    assert {"depth_geometry", "cross_modal", "motion", "eye_region", "life_signs"} <= set(v.detectors)
    assert v.cues["projector_pairs"] >= 1 and "projector_speckle" in v.cues
    assert v.challenge is not None and set(v.challenge) >= {"passed", "nonce_sha256"}
    assert r.evidence is not None and sum(f["face"] for f in r.evidence["frames"]) == len(sets) - 1
    assert v.verdict != "live"                               # noise with a made-up face is no person
    plain = judge(sets, gate, VerdictThresholds(), challenge=None)
    assert plain.verdict.verdict != "live" and plain.evidence is None


def test_the_real_detector_finds_no_face_in_them(sets):
    # Nothing face-like is shipped or synthesised: the real detector, at its usual threshold, sees none.
    from agent.face import FaceDetector
    det = FaceDetector()
    assert all(det.detect(fs.color.pixels) == [] for fs in sets)
