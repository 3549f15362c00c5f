"""bench.gobo_refusals: refused lives by the rule that refused them, and what each prompt's retry came to
(docs/liveness.md, *Why the gobo defeats the judge*)."""

from __future__ import annotations

import math

import pytest

from bench import gobo_refusals as g

FLOODED = {"passed": False, "measurable": False,
           "detail": "the IR frames' dot energy did not switch above its own noise: the projector's dots"}
CONTRADICTED = {"passed": False, "measurable": True,
                "detail": "the face's colour does not follow the screen's illumination sequence: injected"}
PASSED = {"passed": True, "measurable": True, "detail": "IR frames follow the projector schedule"}
ALL = {k: 1.0 for k in g.DETECTORS}


def rec(i: int, light: str, verdict: str, challenge: dict | str, detectors: dict, **kw) -> dict:
    r = {"key": f"fam/bona_fide/live/{i}", "split": "fam", "kind": "bona_fide", "species": "live", "index": i,
         "uri": f"sim://?subject=live&light={light}&realtime=0", "verdict": verdict,
         "outcome": "accepted" if verdict == "live" else "rejected", "challenge": challenge,
         "detectors": detectors, "notes": []}
    r.update(kw)
    return r


def records() -> list[dict]:
    lit = {"kinds": ["illumination", "projector"]}
    return [
        rec(0, "gobo", "attack", {**lit, "projector": PASSED, "illumination": CONTRADICTED}, ALL),
        rec(1, "gobo", "attack", {**lit, "projector": PASSED, "illumination": PASSED}, {**ALL, "cross_modal": 0.0}),
        # as pad-eval may write it: the challenge as a Python repr
        rec(2, "gobo", "inconclusive", str({**lit, "projector": FLOODED, "illumination": PASSED}), ALL,
            prompt="IR_FLOOD_CANNOT_VERIFY",
            attempts=[{"verdict": "inconclusive", "prompt": "LIGHT_CHANGED"}, {"outcome": "not_acquired"},
                      {"verdict": "inconclusive", "prompt": "IR_FLOOD_CANNOT_VERIFY"}]),
        rec(3, "gobo", "inconclusive", {**lit, "projector": PASSED, "illumination": PASSED},
            {k: v for k, v in ALL.items() if k != "material"}, prompt="LIGHT_CHANGED"),
        rec(4, "gobo", "live", {**lit, "projector": PASSED, "illumination": PASSED}, ALL,
            attempts=[{"verdict": "inconclusive", "prompt": "LIGHT_CHANGED"}, {"verdict": "live"}]),
        rec(5, "lightning", "attack", {**lit, "projector": PASSED, "illumination": PASSED},
            {**ALL, "eye_region": 0.1}),
    ]


def test_attacks_are_counted_by_what_held_their_score_and_other_lights_are_left_out():
    c = g.classify(records(), "gobo")
    assert c["attack"] == {"illumination_contradicted": 1, "cross_modal": 1}
    assert c["attack_records"] == {("illumination_contradicted",): 1, ("cross_modal",): 1}
    assert g.classify(records(), "lightning")["attack"] == {"eye_region": 1}
    assert sum(g.classify(records())["attack_records"].values()) == 3


def test_inconclusives_by_prompt_and_failed_challenge_or_left_out_detector():
    c = g.classify(records(), "gobo")["inconclusive"]
    assert c == {("IR_FLOOD_CANNOT_VERIFY", ("projector: the IR frames' dot energy did not switch above its own "
                                             "noise",)): 1,
                 ("LIGHT_CHANGED", ("material?",)): 1}


def test_retries_pair_each_judged_window_with_the_next_judged_one():
    c = g.classify(records(), "gobo")["retries"]
    assert c == {("LIGHT_CHANGED", "inconclusive"): 1, ("LIGHT_CHANGED", "live"): 1}


def test_material_hard_lean_counts_as_an_attack_cause():
    r = rec(9, "gobo", "attack", {"projector": PASSED}, ALL,
            notes=["what the projector's light did show leans hard: the score is held at 0.00 at most"])
    assert g.attack_causes(r) == ["material_hard_lean"]


def test_off_motion_leaves_the_projector_step_out():
    lit = [i % 2 == 0 for i in range(12)]
    steady = [200.0 if on else 50.0 for on in lit]                 # the projector's step alone
    assert g.off_motion(steady, lit) == 0.0
    moving = [200.0 if on else (50.0 if i % 4 == 1 else 100.0) for i, on in enumerate(lit)]
    assert g.off_motion(moving, lit) == pytest.approx(50.0 / 75.0)
    assert math.isnan(g.off_motion([1.0, 2.0], [True, True]))


def test_lit_frames_shift_the_schedule_by_the_lag():
    assert g.lit_frames([True, False, False, True], 1).tolist() == [True, True, False, False]
    assert g.lit_frames([True, False], 0).tolist() == [True, False]


def test_regions_scale_the_colour_box_and_keep_the_wall_outside_it():
    face, left, right = g.regions((400, 640), (200, 100, 300, 250), (800, 1280))
    assert face == (slice(65, 110), slice(110, 140))
    assert left[1].stop <= 100 - 30 and right[1].start >= 150 + 30


def test_unseen_families_are_refused(monkeypatch):
    from hil import padeval

    monkeypatch.setattr(padeval, "UNSEEN_SPLITS", frozenset({"fam"}))
    with pytest.raises(SystemExit, match="not to be run"):
        g._refuse_unseen(records())


def test_retry_answers_the_last_attempt_and_stops_on_a_live_verdict(tmp_path, monkeypatch, capsys):
    import json

    from hil import pad_records

    last = {"verdict": "inconclusive", "prompt": "IR_FLOOD_CANNOT_VERIFY", "outcome": "rejected", "camera_s": 1.5,
            "uri": "sim://?subject=live&family=fam&identity=1&seed=5&light=gobo&lux=300.0&distance_mm=450"}
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(rec(7, "gobo", "inconclusive", {}, ALL, attempts=[last])) + "\n")
    seen: list[str] = []
    replies = iter([{"verdict": "inconclusive", "outcome": "rejected", "prompt": "LIGHT_CHANGED", "camera_s": 1.0},
                    {"verdict": "live", "outcome": "accepted", "camera_s": 1.0},
                    {"verdict": "live", "outcome": "accepted"}])

    def run(p, **kw):
        seen.append(p.uri)
        return next(replies)

    monkeypatch.setattr(pad_records, "run_presentation", run)
    monkeypatch.setattr(pad_records, "kiosk_gate", lambda: None)
    g.retry(str(path), "LIGHT_CHANGED", ["fam/bona_fide/live/7"], times=3)
    out = json.loads(capsys.readouterr().out)
    assert out["retries"] == [["inconclusive", "LIGHT_CHANGED"], ["live", None]]
    assert len(seen) == 2                                   # stopped at the live verdict
    assert all("lux=300.0" in u and "distance_mm=450" in u for u in seen)    # same place, same light
    t0 = [float(u.rsplit("t0_s=", 1)[1]) for u in seen]
    assert 1.5 < t0[0] < t0[1]                              # later each time


def test_crossed_leaves_the_projectors_step_and_a_common_swell_and_finds_an_edge():
    import numpy as np

    lit = np.array([False, False, True, True, False, False, True, True])
    # 6 cells; the dots add 50 % on cell 0 (the face, near) and 10 % elsewhere; the whole room swells 20 % at
    # frame 5; an edge crosses cell 3 between frames 3 and 4 only.
    gain = np.array([1.5, 1.1, 1.1, 1.1, 1.1, 1.1])
    level = np.where(lit[:, None], gain[None], 1.0) * 100.0
    level[5:] *= 1.2
    level[4:, 3] *= 1.6
    moved = g.crossed(level, lit)
    assert moved.shape == (7, 6)
    assert moved[3, 3] and np.count_nonzero(moved) == 1


def test_stitched_follows_the_still_cells_and_gives_up_past_too_many_skipped_pairs():
    import numpy as np

    energy = np.array([[4.0, 4.0, 30.0], [12.0, 12.0, 5.0], [12.0, 12.0, 40.0], [4.0, 4.0, 2.0]])
    moved = np.zeros((3, 3), dtype=bool)
    moved[:, 2] = True                                       # the third cell crossed in every pair
    out, skipped = g.stitched(energy, moved, min_still=0.5)
    assert skipped == 0
    assert np.allclose(np.diff(out), [8.0, 0.0, -8.0])       # the dots' step, the crossed cell left out
    moved[1, :2] = True                                      # one pair with a single still cell of three
    out, skipped = g.stitched(energy, moved, min_still=0.5, max_skipped=0.5)
    assert skipped == 1 and out[2] == out[1]
    out, skipped = g.stitched(energy, moved, min_still=0.5, max_skipped=0.25)
    assert np.all(np.isnan(out))


def test_steady_read_needs_enough_cells():
    import numpy as np

    energy = np.arange(12.0).reshape(3, 4)
    moved = np.array([[False, True, False, True], [False, True, False, False]])
    assert np.allclose(g.steady_read(energy, moved, crossed_share=0.0, min_cells=2), energy[:, [0, 2]].mean(1))
    assert np.all(np.isnan(g.steady_read(energy, moved, crossed_share=0.0, min_cells=3)))


def test_adversary_counts_cell_reads_only_where_the_whole_image_was_not_measurable():
    got = g.adversary(12, reads=(4,))
    assert set(got) == {"blind/4", "two/4", "told/4"}
    for counts in got.values():
        asked = 12 - counts["whole_pass"] - counts["contradicted"]        # the whole image not measurable
        assert 0 <= counts["steady_extra"] <= asked and 0 <= counts["stitched_extra"] <= asked
    assert got["blind/4"]["whole_pass"] == 0 and got["two/4"]["whole_pass"] == 0
    assert got["told/4"]["whole_pass"] >= 6                 # the schedule's follower passes regardless
    # Its drowned windows (edges over all but 4 cells) read on the 4 it left: the fallback passes some.
    assert got["told/4"]["steady_extra"] > 0
