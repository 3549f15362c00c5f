"""Issue 20's targets on the ``make bench`` rows (``bench/targets.py``): stated apart from the same-process
reference, judged per run, never faked where the row has nothing to judge it by."""

from __future__ import annotations

import pytest

from bench.__main__ import write_results
from bench.targets import ISSUE20, issue20, target_cell


def test_a_value_target_is_judged_on_the_value_and_keeps_the_rows_own_reference():
    row = issue20({"name": "verify p95", "value": 1100.0, "unit": "ms", "limit": 2000.0}, "verify")
    assert row["target"] == 500.0 and row["vs_target"] == pytest.approx(2.2) and row["target_met"] is False
    assert "reference" not in row and row["limit"] == 2000.0        # the spec's limit is no reference
    assert row["target_source"].startswith("issue 20: verify end to end")
    ok = issue20({"name": "gate", "value": 23.1, "unit": "ms"}, "quality")
    assert ok["target_met"] is True and target_cell(ok) == "<=70 met"


def test_a_ratio_target_is_judged_on_the_same_process_ratio_only():
    row = issue20({"name": "align", "value": 1.0, "unit": "ms", "reference": 2.1, "ratio": 1.0 / 2.1}, "align")
    assert row["target_ratio"] == 0.5 and row["target_met"] is True and target_cell(row) == "<=0.5x met"
    assert "target" not in row and row["reference"] == 2.1
    # No ratio on the row (no reference ran): not met, never assumed.
    assert issue20({"name": "w", "value": 30.0, "unit": "ms"}, "worker")["target_met"] is False


def test_growth_is_met_only_when_its_interval_cannot_tell_it_from_none():
    flat = issue20({"name": "g", "value": 0.02, "unit": "MiB/sess", "ci95": [-0.01, 0.05]}, "growth")
    grows = issue20({"name": "g", "value": 0.2, "unit": "MiB/sess", "ci95": [0.1, 0.3]}, "growth")
    assert flat["target"] == 0.0 and flat["target_met"] is True and grows["target_met"] is False
    assert "vs_target" not in flat and "ratio" not in flat          # no ratio to a target of 0


def test_a_part_of_a_figure_states_the_target_but_meets_nothing():
    row = issue20({"name": "verdict", "value": 24.0, "unit": "ms"}, "overhead", part=True)
    assert row["target"] == 30.0 and row["target_met"] is None and target_cell(row) == "<=30 part"
    assert row["target_source"].endswith("(this row: a part of it)")


def test_every_figure_of_the_issues_table_has_a_target_and_the_table_prints_it(tmp_path, monkeypatch, capsys):
    assert set(ISSUE20) == {"verify", "overhead", "quality", "worker", "align", "rss", "growth"}
    monkeypatch.chdir(tmp_path)
    rows = [{"suite": "x", **issue20({"name": "rss", "value": 279.0, "unit": "MiB"}, "rss")},
            {"suite": "x", "name": "plain", "value": 1.0, "unit": "ms"}]
    assert write_results(rows, []) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].rstrip().endswith("<=300 met") and "<=" not in out[2]
