"""bench.unit_pattern's arithmetic: the separation report and the moved reference (no camera, no judge)."""

import numpy as np

from agent.liveness.dotref import DotReference
from bench.unit_pattern import separation, shifted_reference


def test_separation_counts_both_errors_at_the_best_threshold():
    s = separation([0.1, 0.2, 0.5], [0.4, 3.0, 9.0])
    assert s["auc"] == round(8 / 9, 4)           # 0.4 beats 0.1 and 0.2 only
    assert s["threshold"] == 0.2 and s["genuine_refused"] == "1/3" and s["other_passed"] == "0/3"
    assert s["margin"] == -0.1
    lo, hi = s["genuine_refused_95"]
    assert 0.0 < lo < 1 / 3 < hi < 1.0


def test_shifted_reference_moves_the_pattern_and_uncovers_the_edge():
    pat = np.arange(20, dtype=np.float32).reshape(4, 5)
    ref = DotReference(pat, np.ones((4, 5), bool), 10.0, -2, 600.0)
    moved = shifted_reference(ref, 2, -1)
    assert moved.pattern[0, 2] == pat[1, 0] and moved.pattern[2, 4] == pat[3, 2]
    assert not moved.covered[:, :2].any() and not moved.covered[3].any() and moved.covered[:3, 2:].all()
    assert (moved.parallax_px_m, moved.origin_u, moved.fx) == (10.0, -2, 600.0)


def test_records_are_read_by_the_unit_check_with_this_builds_thresholds():
    from agent.liveness.challenge import UNIT_MIN_PAIRS, UNIT_UNMATCHED_OTHER, UNIT_UNMATCHED_UNSURE
    from bench.unit_pattern import unit_rows

    def rec(species, unmatched, pairs=8, outcome="accepted", split="train"):
        return {"split": split, "species": species, "outcome": outcome, "passive": False,
                "cues": {"projector_unmatched": unmatched, "projector_pattern_pairs": pairs}}
    records = [rec("live", 0.3), rec("live", UNIT_UNMATCHED_UNSURE + 0.1), rec("live", 0.2, pairs=UNIT_MIN_PAIRS - 1),
               rec("live", 0.2, outcome="not_acquired"),
               rec("other_unit", UNIT_UNMATCHED_OTHER * 10), rec("other_unit", None, outcome="rejected")]
    rows = {r["species"]: r for r in unit_rows(records)}
    live, other = rows["live"], rows["other_unit"]
    assert live["n"] == 3 and live["status"] == {"own": 1, "unsure": 1, "other": 0, "unmeasured": 1}
    assert live["refused"]["n"] == 1 and live["other"]["n"] == 0
    assert live["unmatched_range"] == [0.2, UNIT_UNMATCHED_UNSURE + 0.1]
    assert other["status"]["other"] == 2 and other["other"]["95"][0] > 0.1      # a None (not finite) reading: other
