"""A material lost to light moving, not to a pattern, is named so and asks to hold still (issue 14, cause32).

On main acce21d the twentieth family's (development) quartz-heater lives /10 and /130 wear spectacles whose
frame the heater lights at its own angle; the frame moves with the head, so 5 of 7 pairs' noise pairs carry
it (``moving`` over ``MAX_SAME_STATE_MID_SHARE``) and 1-2 pairs are left. Those moved pairs' unlit frames
also hold the frame's shading, so they were counted as patterned too, and the note named "NIR light with a
fine pattern of its own" with the prompt ``TOO_BRIGHT_TO_VERIFY``: the person was told to find less light
when what would help is to hold still (docs/liveness.md, "A spectacle frame lit and moving"). The cue
numbers are scalar summaries (no face data), those records' own material cues."""

from __future__ import annotations

import pytest

from agent.liveness.detectors import evaluate, material_light, unmeasured_cause
from agent.liveness.features import MAX_SAME_STATE_MID_SHARE, MAX_UNEXPLAINED_TEXTURE, ProjectorLight, ProjectorMeasure
from agent.session.events import LIGHT_CHANGED, TOO_BRIGHT_TO_VERIFY, material_prompt

LIVE_MIN = 0.5358
OTHERS = {"depth_geometry": 1.0, "cross_modal": 1.0, "motion": 1.0, "eye_region": 1.0, "life_signs": 1.0}
# twentieth/bona_fide/live/130's material cues as acce21d's judge reports them: 2 two-sided pairs, none one-sided,
# 5 moved (the patterned count as this change reports it: none of the pairs read was patterned).
LIVE_130 = {"speckle_contrast": 0.2, "projector_speckle": 0.20513, "projector_speckle_low": 0.0,
            "projector_speckle_high": 0.39534, "projector_pairs": 2.0, "projector_share": 0.57644,
            "projector_snr": 25.36423, "projector_sharpness": 1.16036, "projector_pattern_checked": 1.0,
            "projector_unshaped_pairs": 5.0}
# The same as acce21d's judge recorded it, counting the 3 moved pairs whose unlit frames held the frame's shading as
# patterned too: the moved pairs still outnumber them.
LIVE_130_RECORDED = {**LIVE_130, "projector_patterned_pairs": 3.0}
# twentieth/bona_fide/live/10's: 1 two-sided pair, 1 one-sided (patterned), 5 moved.
LIVE_10 = {"speckle_contrast": 0.2, "projector_speckle": 0.22423, "projector_speckle_low": 0.22084,
           "projector_speckle_high": 0.22758, "projector_pairs": 1.0, "projector_clipped_floor": 0.0,
           "projector_clipped_floor_low": 0.0, "projector_clipped_pairs": 1.0, "projector_share": 0.79144,
           "projector_snr": 35.99726, "projector_clipped": 0.00068, "projector_patterned_pairs": 1.0,
           "projector_sharpness": 1.36873, "projector_sharpness_floor": 1.27746, "projector_pattern_checked": 1.0,
           "projector_unshaped_pairs": 5.0}


@pytest.mark.parametrize("cues", [LIVE_130, LIVE_130_RECORDED, LIVE_10], ids=["live130", "live130rec", "live10"])
def test_too_few_pairs_because_light_moved_is_named_moved_and_asks_to_hold_still(cues):
    assert unmeasured_cause(cues) == "moved_light"
    s = evaluate(cues, challenged=True)
    assert s.material is None and s.unmeasured
    assert any(n.startswith("light moved on the face between frames, so too few") for n in s.notes), s.notes
    assert not any(n.startswith("NIR light with a fine pattern") for n in s.notes)
    assert material_light(cues) == "moved"
    assert material_prompt("inconclusive", OTHERS, cues, LIVE_MIN) is LIGHT_CHANGED
    assert material_prompt("attack", OTHERS, cues, LIVE_MIN) is None      # an attack still learns nothing


def test_a_pattern_that_took_as_many_pairs_as_moving_light_is_still_named_the_pattern():
    # The same window with the pattern on as many read pairs as light moved in (a tie goes to the pattern, as
    # before: less light is what a patterned lamp needs), or with enough pairs (moving light did not make it few).
    tie = {**LIVE_10, "projector_clipped_pairs": 5.0, "projector_patterned_pairs": 5.0}
    assert unmeasured_cause(tie) == "patterned_light"
    assert material_prompt("inconclusive", OTHERS, tie, LIVE_MIN) is TOO_BRIGHT_TO_VERIFY
    assert unmeasured_cause({**LIVE_10, "projector_patterned_pairs": 1.0, "projector_unshaped_pairs": 1.0}) \
        == "patterned_light"
    enough = {**LIVE_10, "projector_pairs": 3.0, "projector_speckle_low": 0.0, "projector_speckle_high": 0.4}
    assert unmeasured_cause(enough) == "patterned_light"
    # No moved pair at all: the pattern, as on main.
    still = {k: v for k, v in LIVE_10.items() if k != "projector_unshaped_pairs"}
    assert unmeasured_cause(still) == "patterned_light"
    assert material_prompt("inconclusive", OTHERS, still, LIVE_MIN) is TOO_BRIGHT_TO_VERIFY


def _pair(unexplained: float, moving: float) -> ProjectorLight:
    # A pair read at 30 noise deviations (two-sided unless its unlit texture is unexplained), its noise pair's
    # mid band ``moving`` beyond white noise's.
    return ProjectorLight(0.22 ** 2, 60.0, 4.0, 1800, 0.6, unexplained=unexplained, sharpness=1.1, moving=moving)


def test_a_pair_light_moved_in_is_not_counted_as_patterned():
    lit = 2.5 * MAX_UNEXPLAINED_TEXTURE
    moved, still = 1.5 * MAX_SAME_STATE_MID_SHARE, 0.1 * MAX_SAME_STATE_MID_SHARE
    # live/10's shape: 5 moved pairs (2 of them with the frame's unexplained shading), 1 patterned still, 1 clean.
    lights = [_pair(lit, moved), _pair(lit, moved), _pair(0.0, moved), _pair(0.0, moved), _pair(0.0, moved),
              _pair(lit, still), _pair(0.0, still)]
    m = ProjectorMeasure.pool(lights)
    assert (m.patterned, m.floor_pairs, m.pairs, m.unshaped) == (1, 1, 1, 5)
    # Nothing moved: every patterned pair is counted, as before.
    m = ProjectorMeasure.pool([_pair(lit, still)] * 3 + [_pair(0.0, still)] * 4)
    assert (m.patterned, m.floor_pairs, m.pairs, m.unshaped) == (3, 3, 4, 0)
