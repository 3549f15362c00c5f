"""Liveness sessions on the simulator: each attack species is caught by the detector meant for it."""

from __future__ import annotations


import pytest

import drivers
from agent.liveness.fusion import calibrate, decide, Thresholds
from agent.liveness.session import run_session
from agent.quality import QualityGate


NONCE = bytes.fromhex("5be1c0de" * 8)


@pytest.fixture(scope="module")
def gate():
    return QualityGate()


def session(gate, query: str, *, nonce=True, frames=12):
    # A fixed nonce keeps each test deterministic; pad-eval measures over random nonces.
    cam = drivers.open("sim://?realtime=0" + query)
    with cam:
        return run_session(cam, frames, gate=gate, nonce=NONCE if nonce else None)


def test_live_person_passes_with_the_challenge(gate):
    r = session(gate, "&seed=21&identity=3&lux=150&yaw=8")
    v = r.verdict
    assert v.verdict == "live" and v.score >= 0.5
    assert v.challenge_used and v.challenge["passed"]
    assert len(v.frame_digests) == r.framesets and all(len(d) == 64 for d in v.frame_digests)
    assert set(v.detectors) == {"depth_geometry", "cross_modal", "material", "motion"}


@pytest.mark.parametrize("species, detector", [
    ("print", "depth_geometry"), ("print_curved", "depth_geometry"), ("print_cutout", "depth_geometry"),
    ("screen_still", "cross_modal"), ("screen_video", "cross_modal"), ("mask", "material"),
    ("head_model", "motion"),
])
def test_each_attack_species_is_rejected_by_its_detector(gate, species, detector):
    v = session(gate, f"&subject={species}&seed=31").verdict
    assert v.verdict == "attack"
    assert v.detectors[detector] < 0.5


def test_injected_stream_that_ignores_the_challenge_is_rejected(gate):
    v = session(gate, "&inject=replay&seed=5", frames=20).verdict
    assert v.verdict == "attack"
    assert v.challenge_used and not v.challenge["passed"]


def test_no_face_is_inconclusive_never_live(gate):
    v = session(gate, "&subject=none").verdict
    assert v.verdict == "inconclusive" and v.score == 0.0


def test_without_a_nonce_no_challenge_is_claimed(gate):
    v = session(gate, "&seed=3", nonce=False).verdict
    assert not v.challenge_used and v.challenge is None


def test_calibration_fits_the_live_threshold_above_the_attacks():
    fit = calibrate([0.9, 1.0, 0.8, 0.95], [0.0, 0.1, 0.3, 0.0], target_apcer=0.001)
    assert fit["live_min"] > 0.3 and fit["calibration_apcer"] == 0.0 and fit["calibration_bpcer"] == 0.0
    t = Thresholds(0.5, 0.2)
    assert decide(0.5, t) == "live" and decide(0.35, t) == "inconclusive" and decide(0.1, t) == "attack"


@pytest.mark.parametrize("subject", ["live", "mask"])
def test_sunlight_that_drowns_the_projector_is_never_live(gate, subject):
    # At 5000 lux the projector lights well under half of the skin's IR: material is unmeasurable,
    # so neither a person nor a mask may be called live (the person is asked to retry in shade).
    v = session(gate, f"&subject={subject}&seed=34&lux=5000").verdict
    assert v.verdict != "live"
    assert "material" not in v.detectors
    assert any("drowns the projector" in n for n in v.notes)
