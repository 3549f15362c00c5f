"""bench.challenge_records: each challenge's outcome per judged window of pad-eval's records, earlier
attempts included, and the windows where none was measurable (docs/liveness.md, *Both challenges
unmeasurable*)."""

from __future__ import annotations

import json

import pytest

from bench import challenge_records as cr


def challenge(projector: dict, illumination: dict) -> dict:
    passed = projector.get("passed") is True and illumination.get("passed") is True
    return {"passed": passed, "kinds": ["illumination", "projector"], "detail": "",
            "projector": projector, "illumination": illumination}


P = {"passed": True, "measurable": True}
U = {"passed": False, "measurable": False}
F = {"passed": False, "measurable": True}


def records() -> list[dict]:
    return [
        # as pad-eval writes them: the challenge and the attempts as Python reprs, the last attempt the
        # record's own window (counted once)
        {"key": "fam/bona_fide/live/0", "split": "fam", "verdict": "live", "challenge": str(challenge(P, P)),
         "attempts": str([{"key": "fam/bona_fide/live/0", "verdict": "inconclusive",
                           "challenge": str(challenge(U, U))},
                          {"key": "fam/bona_fide/live/0", "verdict": "live", "challenge": str(challenge(P, P))}])},
        {"key": "fam/attack/print/1", "split": "fam", "verdict": "attack", "challenge": challenge(U, F)},
        {"key": "fam/attack/replay/2", "split": "fam", "verdict": None, "challenge": None},     # not judged
        {"key": "fam/bona_fide/live/3", "split": "fam", "verdict": "live", "challenge": str(challenge(U, P)),
         "uri": "sim://?subject=live&family=fam&light=direct_sun&lux=4000"},
    ]


def test_every_window_s_outcomes_are_counted_and_the_blind_and_unpassed_ones_named():
    s = cr.summary(cr.windows(records()))
    assert s["windows"] == 4                                      # two of record 0, records 1 and 3
    assert s["counts"] == {("illumination:P,projector:P", "live"): 1,
                           ("illumination:U,projector:U", "inconclusive"): 1,
                           ("illumination:F,projector:U", "attack"): 1,
                           ("illumination:P,projector:U", "live"): 1}
    assert s["all_unmeasurable"] == [("fam/bona_fide/live/0", "inconclusive")]
    assert s["live_with_a_challenge_not_passed"] == ["fam/bona_fide/live/3"]
    by_light = cr.summary(cr.windows(records(), by="light"))
    assert by_light["counts"][("illumination:P,projector:U", "direct_sun live")] == 1
    assert by_light["counts"][("illumination:F,projector:U", "? attack")] == 1      # (no URI)
    assert by_light["live_with_a_challenge_not_passed"] == ["fam/bona_fide/live/3"]


def test_an_unseen_family_s_records_are_refused(monkeypatch):
    import hil.padeval
    monkeypatch.setattr(hil.padeval, "UNSEEN_SPLITS", frozenset({"fam"}))
    with pytest.raises(SystemExit, match="unseen family"):
        list(cr.windows(records()))


def test_the_command_reads_a_records_file(tmp_path, capsys):
    path = tmp_path / "live.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records()))
    assert cr._main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "4 windows judged under a challenge" in out
    assert "every challenge not measurable: 1" in out and "live with a challenge not passed: 1" in out
