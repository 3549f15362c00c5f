"""The unit check (issue 14/15, unit33): a window's projector dots read against this unit's enrolled
pattern; another unit's dots fail it as PROJECTOR_NOT_THIS_UNIT, too few pairs leave it not measurable."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from agent.liveness.challenge import (
    PROJECTOR_NOT_THIS_UNIT_DETAIL,
    UNIT_MIN_PAIRS,
    UNIT_UNMATCHED_OTHER,
    UNIT_UNMATCHED_UNSURE,
    ChallengeResult,
    Kind,
    SequenceResult,
    detail_code,
    failed_unmeasurable,
    projector_schedule,
    unit_checked,
    unit_status,
)
from agent.liveness.features import NOTHING_EXPLAINED, ProjectorMeasure, _pattern_reading, pair_light
from agent.liveness.judge import _edges, _noise_pair
from tests.liveness.test_projector_measure import SKIN_SCATTER, Projected, dot_points, summary


def cues(unmatched: float, pairs: float) -> dict[str, float]:
    return {"projector_pattern_checked": 1.0, "projector_unmatched": unmatched, "projector_pattern_pairs": pairs}


def test_the_rule_passes_the_own_pattern_and_refuses_another_units_or_a_reading_that_is_not_finite():
    assert unit_status(cues(0.4, 8)) == "own"
    assert unit_status(cues(UNIT_UNMATCHED_UNSURE, 8)) == "own"                 # at the bound: still this unit's
    assert unit_status(cues(UNIT_UNMATCHED_UNSURE + 0.01, 8)) == "unsure"
    assert unit_status(cues(UNIT_UNMATCHED_OTHER + 0.01, 8)) == "other"
    assert unit_status(cues(NOTHING_EXPLAINED, 8)) == "other"
    for bad in (math.inf, math.nan):
        assert unit_status(cues(bad, 8)) == "other"
    no_reading = cues(0.4, 8)
    del no_reading["projector_unmatched"]                                        # tested pairs, no median sent
    assert unit_status(no_reading) == "other"


@pytest.mark.parametrize("unmatched", [0.4, 50.0, NOTHING_EXPLAINED, math.nan])
def test_too_few_pairs_leave_the_check_not_measurable_whatever_they_read(unmatched):
    assert unit_status(cues(unmatched, UNIT_MIN_PAIRS - 1)) == "unmeasured"
    assert unit_status({"projector_unmatched": unmatched}) == "unmeasured"      # no pair tested (no reference)


@pytest.mark.parametrize("unmatched", [0.4, 1.0])
def test_pairs_the_material_read_but_the_pattern_could_not_test_leave_the_unit_unverified(unmatched):
    # review33a: an injector who writes the skin's depth so the predicted dots fall off the enrolled coverage on
    # all but two pairs' lit frames keeps the material's reading (9 pairs) and tested only 2 against the pattern:
    # the check must not switch off (it was a note only, and the verdict live).
    attacked = {**cues(unmatched, UNIT_MIN_PAIRS - 1), "projector_untestable_pairs": 7.0, "projector_pairs": 9.0}
    assert unit_status(attacked) == "unsure"
    assert unit_status({**cues(unmatched, UNIT_MIN_PAIRS - 1), "projector_pairs": 9.0}) == "unsure"
    # Enough tested, but one pair the pattern could not test: not verified as this unit's either.
    assert unit_status({**cues(unmatched, 8), "projector_untestable_pairs": 1.0, "projector_pairs": 9.0}) == "unsure"
    # Another unit's reading still says so, whatever else is untestable.
    assert unit_status({**cues(50.0, 8), "projector_untestable_pairs": 1.0, "projector_pairs": 9.0}) == "other"
    # A window whose material read fewer than UNIT_MIN_PAIRS pairs says nothing of the unit.
    few = {**cues(unmatched, 1), "projector_untestable_pairs": 1.0, "projector_pairs": 2.0}
    assert unit_status(few) == "unmeasured"


def projector(passed: bool = True) -> SequenceResult:
    return SequenceResult(Kind.PROJECTOR, passed, 1, 30, 0 if passed else 9, 0, 6.0,
                          "IR frames follow the projector schedule" if passed else "contradicted")


def test_another_units_dots_fail_the_projector_challenge_with_a_stable_code():
    screen = SequenceResult(Kind.ILLUMINATION, True, 2, 30, 0, 0, 5.0, "follows")
    ok = ChallengeResult((projector(), screen))
    other = unit_checked(ok, "other")
    assert not other.passed and not other.unmeasurable                            # a contradiction: an attack
    assert other.get(Kind.PROJECTOR).detail == PROJECTOR_NOT_THIS_UNIT_DETAIL
    assert other.get(Kind.ILLUMINATION) is screen
    assert detail_code(other.to_dict()) == "PROJECTOR_NOT_THIS_UNIT"
    unsure = unit_checked(ok, "unsure")
    assert not unsure.passed and unsure.unmeasurable and failed_unmeasurable(unsure.to_dict())
    assert detail_code(unsure.to_dict()) == "PROJECTOR_UNIT_UNSURE"
    for status in ("own", "unmeasured"):
        assert unit_checked(ok, status) is ok
    failed = ChallengeResult((projector(passed=False), screen))                  # its own failure stands
    assert unit_checked(failed, "other") is failed


def window(pattern_seed: int | None) -> list:
    """A skin window's pairs (``Projected``: the projector's dots drawn with seed 1) read against a
    reference whose dots are drawn with ``pattern_seed`` (1: this projector's; another: another unit's)."""
    scene = Projected(20, 40, SKIN_SCATTER, 80, extra=0, switching="steady")
    lit = list(projector_schedule(b"\0" * 16, 32))
    frames = [scene.frame_at(k, lit[k], False) for k in range(32)]
    predicted = (dot_points(scene.mask.shape, seed=pattern_seed), np.ones(scene.mask.shape, bool)) \
        if pattern_seed is not None else None
    lights = []
    for k, on, off in _edges(lit):
        p = _noise_pair(lit, k, 32)
        lights.append(pair_light(frames[on], frames[off], scene.mask,
                                 (frames[p[0]], frames[p[1]]) if p is not None else None,
                                 predicted=predicted, checked=True))
    return lights


def test_a_window_read_against_another_units_pattern_reads_as_another_unit():
    own = ProjectorMeasure.pool(window(1))
    assert own.pattern_checked and own.pattern_pairs == 9 and unit_status(summary(own)) == "own"
    for seed in (2, 3):
        other = ProjectorMeasure.pool(window(seed))
        assert other.pattern_checked and other.pattern_pairs == 9
        assert other.unmatched > 10 * UNIT_UNMATCHED_OTHER and unit_status(summary(other)) == "other"
    untestable = ProjectorMeasure.pool(window(None))                             # no prediction: not tested
    assert not untestable.pattern_checked and untestable.pattern_pairs == 0 and untestable.untestable == 9
    assert unit_status(summary(untestable)) == "unsure"             # a reference that tests none: not verified


def test_a_fit_that_explains_nothing_is_a_reading_and_untestable_stays_untestable():
    rng = np.random.default_rng(5)
    diff = rng.normal(size=(60, 60)).astype(np.float32) + 40.0
    skin = np.zeros(diff.shape, bool)
    skin[8:-8, 8:-8] = True
    covered = np.ones(diff.shape, bool)
    # A pattern with no dots on the skin: the non-negative fit's weights are all 0, nothing explained.
    assert _pattern_reading(diff, skin, (np.zeros(diff.shape, np.float32), covered), None, 0.0) == NOTHING_EXPLAINED
    assert _pattern_reading(diff, skin, None, None, 0.0) == math.inf                  # no prediction
    assert _pattern_reading(diff, skin, (np.zeros(diff.shape, np.float32), ~covered), None, 0.0) == math.inf
    # Pooled: a pair that explained nothing is tested, and the median says how far off the session is.
    lights = window(1)
    nothing = [replace(x, unmatched=NOTHING_EXPLAINED) if i < 5 else x for i, x in enumerate(lights)]
    m = ProjectorMeasure.pool(nothing)
    assert m.pattern_checked and m.pattern_pairs == 9 and m.unmatched == NOTHING_EXPLAINED
    assert unit_status(summary(m)) == "other"
    few = [replace(x, unmatched=math.inf) if i >= UNIT_MIN_PAIRS - 1 else replace(x, unmatched=NOTHING_EXPLAINED)
           for i, x in enumerate(lights)]
    m = ProjectorMeasure.pool(few)
    assert not m.pattern_checked and m.pattern_pairs == UNIT_MIN_PAIRS - 1 and unit_status(summary(m)) == "unsure"
