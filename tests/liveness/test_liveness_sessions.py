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


def test_projector_speckle_holds_still_under_warm_bright_indoor_light(gate):
    # Tungsten-like light at 1000 lux carries ~4x the projector's NIR onto the skin. Measured in
    # the IR imager's pixels with the shot noise removed, the skin's speckle contrast stays where
    # it is in cool dim light, and the person is still judged live on all four detectors.
    cues = {}
    for lux, cct in ((200, 5500), (1000, 3200)):
        v = session(gate, f"&seed=41&identity=5&lux={lux}&cct={cct}", frames=16).verdict
        assert v.verdict == "live", (lux, cct, v.score, v.notes)
        assert "material" in v.detectors
        cues[lux] = v.cues
    assert cues[1000]["projector_snr"] < cues[200]["projector_snr"] / 3      # the noise really grew
    assert abs(cues[1000]["projector_speckle"] - cues[200]["projector_speckle"]) < 0.02


@pytest.mark.parametrize("subject", ["live", "mask"])
def test_sunlight_that_drowns_the_projector_is_never_live(gate, subject):
    # At 10 000 lux (sunlight through the kiosk's window) the projector's light on the skin is
    # within a few noise deviations of the on-off difference's shot noise: material is
    # unmeasurable, so neither a person nor a mask may be called live (retry out of the sun).
    v = session(gate, f"&subject={subject}&seed=34&lux=10000").verdict
    assert v.verdict != "live"
    assert "material" not in v.detectors
    assert v.cues["projector_snr"] < 5.0
    assert any("drowns the projector" in n for n in v.notes)


def test_bright_daylight_indoors_still_measures_material(gate):
    # 5000 lux of daylight: the projector stands about 5 noise deviations above the shot noise, so skin
    # and resin are told apart rather than both turned away.
    live = session(gate, "&subject=live&seed=34&lux=5000").verdict
    mask = session(gate, "&subject=mask&seed=34&lux=5000").verdict
    assert "material" in live.detectors and "material" in mask.detectors
    assert live.verdict == "live" and mask.verdict == "attack"


def test_clipped_dots_are_reported_as_clipping_not_as_sunlight(gate):
    # White paper at 50 cm returns so much of the projector that its dots clip in the IR image:
    # the speckle is not measured, and the verdict says why (the flat depth still calls it attack).
    v = session(gate, "&subject=print&lux=300&distance_mm=500").verdict
    assert v.verdict == "attack"
    assert v.cues["projector_clipped"] > 0.02
    assert any("saturate" in n for n in v.notes) and not any("drowns" in n for n in v.notes)
