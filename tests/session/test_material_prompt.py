"""The prompt after a verdict the room's light kept the material measure from deciding (issue 14, prompt25).

On main 529b3c4 the fourteenth family's five lives refused ``inconclusive`` at 0.45 because NIR light
with a fine pattern of its own (low sun through venetian blinds) lay on the face got no prompt: the
person was not told what to do. The cue numbers below are scalar summaries (no face data), those of
a record of that family (fourteenth/bona_fide/live/49) cut to the material's."""

from __future__ import annotations

from agent.liveness.detectors import evaluate
from agent.liveness.fusion import LivenessVerdict
from agent.session.events import LIGHT_CHANGED, TOO_BRIGHT_TO_VERIFY, material_prompt, verdict_prompt

LIVE_MIN = 0.5358
# One-sided pairs all under patterned NIR light (the blinds' stripes), the projector well above noise.
PATTERNED = {"speckle_contrast": 0.15421, "projector_clipped_floor": 0.1235, "projector_clipped_floor_low": 0.08633,
             "projector_clipped_pairs": 7.0, "projector_share": 0.76734, "projector_snr": 35.65544,
             "projector_clipped": 0.00086, "projector_patterned_pairs": 7.0, "projector_sharpness_floor": 0.98174,
             "projector_pattern_checked": 1.0}
OTHERS = {"depth_geometry": 1.0, "cross_modal": 1.0, "motion": 1.0, "eye_region": 1.0, "life_signs": 1.0}
PASSED = {"passed": True, "kinds": ["illumination", "projector"], "detail": "followed"}


def verdict(result: str, detectors: dict[str, float], cues: dict[str, float]) -> LivenessVerdict:
    return LivenessVerdict(result, 0.45, detectors, [], {}, True, PASSED, {}, [], cues)


def test_an_inconclusive_verdict_from_patterned_light_on_the_face_asks_for_less_light():
    s = evaluate(PATTERNED, challenged=True)
    assert s.material is None and s.unmeasured                        # the judge's own rule: not measurable
    assert any(n.startswith("NIR light with a fine pattern of its own") for n in s.notes)
    assert material_prompt("inconclusive", OTHERS, PATTERNED, LIVE_MIN) is TOO_BRIGHT_TO_VERIFY
    assert verdict_prompt(verdict("inconclusive", OTHERS, PATTERNED), LIVE_MIN) is TOO_BRIGHT_TO_VERIFY
    # Cues as the worker sends them across (None for a NaN, dropped by the supervisor) change nothing.
    assert material_prompt("inconclusive", OTHERS, {**PATTERNED, "projector_speckle": None}, LIVE_MIN) \
        is TOO_BRIGHT_TO_VERIFY


def test_an_attack_verdict_or_a_session_the_material_did_not_hold_back_gets_no_prompt():
    # An attack learns nothing (the prompt names the light, never the cue).
    assert material_prompt("attack", OTHERS, PATTERNED, LIVE_MIN) is None
    assert verdict_prompt(verdict("attack", OTHERS, PATTERNED), LIVE_MIN) is None
    # Another detector under the live threshold: the material is not what made it inconclusive.
    assert material_prompt("inconclusive", {**OTHERS, "depth_geometry": 0.3}, PATTERNED, LIVE_MIN) is None
    # The material measured (present among the detectors): not this prompt's business.
    assert material_prompt("inconclusive", {**OTHERS, "material": 0.4}, PATTERNED, LIVE_MIN) is None
    # Not the room's light: the projector's own dots clipping on the face, or too few pairs.
    assert material_prompt("inconclusive", OTHERS, {**PATTERNED, "projector_clipped": 0.5}, LIVE_MIN) is None
    few = {k: v for k, v in PATTERNED.items() if k not in ("projector_patterned_pairs", "projector_clipped_pairs")}
    assert material_prompt("inconclusive", OTHERS, {**few, "projector_snr": 35.0, "projector_pairs": 1.0},
                           LIVE_MIN) is None
    # A challenge that failed for the light keeps its own prompt; one that was contradicted, none.
    assert verdict_prompt(LivenessVerdict("inconclusive", 0.45, OTHERS, [], {}, True,
                                          {"passed": False, "kinds": ["projector"],
                                           "projector": {"passed": False, "measurable": True}}, {}, [], PATTERNED),
                          LIVE_MIN) is None


def test_light_moving_on_the_dots_shape_asks_to_hold_still_and_retry():
    # A speckle that could decide, but no two-sided pair's dots' shape read: light moved between frames.
    moved = {"speckle_contrast": 0.17264, "projector_speckle": 0.17707, "projector_speckle_low": 0.1625,
             "projector_speckle_high": 0.19053, "projector_pairs": 10.0, "projector_share": 0.55141,
             "projector_snr": 28.95578, "projector_pattern_checked": 1.0, "projector_unshaped_pairs": 4.0}
    s = evaluate(moved, challenged=True)
    assert s.material is None and any(n.startswith("light moved on the face") for n in s.notes)
    assert material_prompt("inconclusive", OTHERS, moved, LIVE_MIN) is LIGHT_CHANGED
    assert material_prompt("inconclusive", OTHERS, {**moved, "projector_unshaped_pairs": 0.0}, LIVE_MIN) is None
    assert material_prompt("attack", OTHERS, moved, LIVE_MIN) is None
