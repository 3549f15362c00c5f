"""``bench.material_refusals`` names the sub-measure that refused a live face from a record's stored
cues, as the judge's rules score them: the cue summaries below are field live records of pad-eval
(main, 2026-12-04), the face's other cues one accepted session's."""

from __future__ import annotations

from typing import Any

import pytest

from agent.liveness.detectors import active_ramps
from agent.liveness.fusion import load_thresholds
from bench.material_refusals import compare, condition, refusal

FACE = {"plane_rms_mm": 9.47877, "cylinder_rms_mm": 6.96351, "nose_prominence_mm": 36.71326, "scale_ratio": 0.82045,
        "depth_share": 0.99704, "ir_face_level": 27.50751, "ir_face_contrast": 0.52235, "speckle_contrast": 0.05252,
        "dot_sharpness": 0.78661, "ir_dot_sharpness": 0.87691, "eye_recess_mm": 17.0, "eye_dot_sharpness": 0.91092,
        "motion": 0.05391, "nonrigid": 0.03227, "nonrigid_peak": 0.04299, "blink": 0.37797, "blink_drop": 0.80482,
        "motion_snr": 10.54952}
MEASURED = {"projector_speckle": 0.19593, "projector_speckle_low": 0.16985, "projector_speckle_high": 0.21893,
            "projector_pairs": 8.0, "projector_share": 0.28019, "projector_snr": 7.03324,
            "projector_sharpness": 0.88783, "projector_pattern_checked": 1.0}
DROWNED = {"projector_clipped_floor": 0.20961, "projector_clipped_pairs": 7.0, "projector_share": 0.14449,
           "projector_snr": 3.68049, "projector_clipped": 0.0, "projector_sharpness_floor": 0.70856,
           "projector_coarse_pairs": 1.0, "projector_pattern_checked": 1.0}
SHARP = {**MEASURED, "projector_speckle": 0.2188, "projector_speckle_low": 0.21535,
         "projector_speckle_high": 0.2222, "projector_sharpness": 1.37905}
FLOOR = {"projector_clipped_floor": 0.35333, "projector_clipped_pairs": 6.0, "projector_share": 0.18644,
         "projector_snr": 3.90367, "projector_clipped": 0.0, "projector_sharpness_floor": 0.16924,
         "projector_pattern_checked": 1.0}
CLIPPED = {**DROWNED, "projector_snr": 12.0, "projector_clipped": 0.031, "projector_coarse_pairs": 0.0}
URI = ("sim://?subject=live&family=field&identity=582&seed=1&camera=gemini335&light=halogen&cct=3178&lux=2903.2"
       "&distance_mm=358&yaw=-7.3&pitch=-7.4&background=clutter&realtime=0")


def _rec(projector: dict[str, float], *, key: str = "field/bona_fide/live/0", passed: bool = True,
         notes: tuple[str, ...] = (), score: float = 0.0) -> dict[str, Any]:
    return {"key": key, "kind": "bona_fide", "split": "field", "uri": URI, "outcome": "rejected", "score": score,
            "verdict": "inconclusive", "detectors": {"material": 0.0}, "cues": {**FACE, **projector},
            "challenge": {"passed": passed}, "injection_signals": {"suspicious": False}, "notes": list(notes),
            "projector_seen": True, "passive": False}


@pytest.mark.parametrize(("projector", "cause"), [
    (MEASURED, None), (DROWNED, "drowned"), (SHARP, "sharpness"), (FLOOR, "clip_floor"), (CLIPPED, "clipped")])
def test_the_deciding_sub_measure_is_named(projector, cause):
    assert refusal(_rec(projector), active_ramps(), load_thresholds(challenged=True).live_min) == cause


def test_a_floor_refuses_at_its_lower_bound_when_the_record_has_it():
    # Field #27's six pairs agree: the lower end of their floor's interval is still past the ramp.
    # Pairs that scatter more leave a bound under it: the floor decides nothing, the face is
    # refused for the weak light alone (unmeasured, 0.45), not called an attack.
    r, live_min = active_ramps(), load_thresholds(challenged=True).live_min
    tight = _rec({**FLOOR, "projector_clipped_floor_low": 0.28333})
    assert refusal(tight, r, live_min) == "clip_floor" and condition(tight)["floor_low"] == 0.283
    assert refusal(_rec({**FLOOR, "projector_clipped_floor_low": 0.2}), r, live_min) == "drowned"


def test_a_record_without_an_snr_is_called_drowned_only_when_ambient_light_outweighs_the_projector():
    # The fifth family's warm LED faces had no projector SNR (no pair's noise measured as finite) and
    # were labelled "drowned", the projector's light under 5 measured noise deviations. Without an
    # SNR only the projector's share of the skin's light can tell: a small one (direct sunlight) is
    # drowned; most of the light (a dark room) is not measured, and a counted pair goes on as usual.
    r, live_min = active_ramps(), load_thresholds(challenged=True).live_min
    no_snr = {k: v for k, v in DROWNED.items() if k != "projector_snr"}
    assert refusal(_rec(DROWNED), r, live_min) == "drowned"
    assert refusal(_rec(no_snr), r, live_min) == "drowned"                          # 14 % of the light
    dark = {**no_snr, "projector_share": 0.9}
    assert refusal(_rec(dark), r, live_min) == "not_measured"
    assert refusal(_rec({**dark, "projector_speckle": 0.05, "projector_speckle_low": 0.0,
                         "projector_speckle_high": 0.4, "projector_pairs": 5.0}), r, live_min) == "interval"


def test_a_failed_challenge_decides_before_any_cue():
    assert refusal(_rec(MEASURED, passed=False), active_ramps(), load_thresholds(challenged=True).live_min) \
        == "challenge"


def test_the_condition_reads_the_light_and_the_planned_exposure():
    row = condition(_rec(DROWNED, notes=("IR exposure held at 783 us for the challenge (auto-exposure 313 us), "
                                         "from the skin's IR headroom",)))
    assert (row["light"], row["nir_share"], row["lux"], row["distance_mm"]) == ("halogen", 0.32, 2903.2, 358)
    assert row["exposure_ms"] == "0.78/0.31" and row["snr"] == 3.68 and row["one_sided"] == 7


def test_compare_lists_what_changed_and_which_way():
    before = [_rec(DROWNED, score=0.45), _rec(SHARP, key="field/bona_fide/live/1")]
    after = [{**_rec(MEASURED, score=1.0), "outcome": "accepted", "verdict": "live"},
             _rec(SHARP, key="field/bona_fide/live/1")]
    (row,) = compare(before, after)
    assert row["key"] == "field/bona_fide/live/0" and row["delta"] == pytest.approx(0.55)
    assert row["before"].endswith("(drowned)") and row["after"] == "live 1.0"


def test_the_nir_share_is_the_simulators_own_for_every_light_and_a_recording_has_none():
    # Every light of the simulator's table, and the family's light when the URI names none.
    fluorescent = {**_rec(DROWNED), "uri": "sim://?subject=live&family=train&identity=3&light=fluorescent&lux=300"}
    assert condition(fluorescent)["nir_share"] == 0.012
    unnamed = {**_rec(DROWNED), "uri": "sim://?subject=live&family=heldout&identity=3&lux=300"}
    assert condition(unnamed)["nir_share"] is not None
    recording = {**_rec(DROWNED), "uri": "realsense+file:///recordings/a.db3"}
    row = condition(recording)
    assert row["nir_share"] is None and row["light"] == "?" and row["camera"] == "?"
