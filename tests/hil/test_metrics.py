"""ISO/IEC 30107-3 figures: exact bounds, species kept apart, failures to acquire reported apart."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from hil import metrics
from hil.records import SessionRecord, outcome_of


def rec(species, outcome, score=None, kind=None, **kw):
    kind = kind or ("bona_fide" if species == "live" else "injection" if species.startswith("injection:")
                    else "attack")
    return SessionRecord(set="t", scenario=species, repetition=0, species=species, kind=kind, purpose="verify",
                         channel="kiosk", expected=["accepted"], outcome=outcome, score=score,
                         **{"conditions": {"lux_set": 300.0}, **kw})


@pytest.mark.parametrize("k, n", [(0, 1), (0, 30), (0, 3000), (1, 10), (5, 100), (30, 30)])
def test_clopper_pearson_matches_scipys_exact_interval(k, n):
    r = metrics.rate(k, n)
    ci = binomtest(k, n).proportion_ci(0.95, method="exact")
    assert r.lower == pytest.approx(ci.low, abs=1e-9) and r.upper == pytest.approx(ci.high, abs=1e-9)
    assert r.rate == k / n


def test_no_errors_gives_the_three_over_n_bound():
    for n in (30, 150, 3000):
        r = metrics.rate(0, n)
        assert r.upper_one_sided == pytest.approx(1 - 0.05 ** (1 / n))
        assert r.upper_one_sided == pytest.approx(3 / n, rel=0.05)
    assert math.isnan(metrics.rate(0, 0).rate)


def test_outcomes_as_the_kiosk_app_sees_them():
    assert outcome_of(True, "OK", "") == "accepted"
    assert outcome_of(False, "NOT_LIVE", "") == "not_live"
    assert outcome_of(False, "LIVENESS_MISMATCH", "") == "rejected"       # the server's own PAD decision
    assert outcome_of(False, "EXPIRED", "nonce expired before the probe arrived") == "error"   # not a PAD decision
    assert outcome_of(None, "SES_STAGE_TIMEOUT", "the capture spec was not met within 20 s") == "not_acquired"
    assert outcome_of(None, "SES_STAGE_TIMEOUT", "only 3 of 32 framesets arrived") == "error"
    assert outcome_of(None, "DRV_DEVICE_REFUSED", "") == "device_refused"
    assert outcome_of(None, "UPL_UNAVAILABLE", "") == "error"


def test_species_are_never_pooled_and_the_headline_is_the_worst():
    rs = ([rec("print", "not_live", 0.1)] * 9 + [rec("print", "accepted", 0.9)]
          + [rec("mask", "not_live", 0.2)] * 4 + [rec("mask", "not_acquired")] * 6
          + [rec("live", "accepted", 0.95)] * 8 + [rec("live", "not_live", 0.3), rec("live", "not_acquired"),
                                                   rec("live", "error", code="UPL_UNAVAILABLE")]
          + [rec("injection:usb_gadget", "accepted"), rec("injection:usb_gadget", "not_live")])
    t = metrics.presentation_table(rs)
    assert t["species"]["print"]["apcer"]["rate"] == 0.1 and t["species"]["print"]["apcer"]["n"] == 10
    # the mask's failures to acquire are APNRR, not part of its APCER's denominator
    assert t["species"]["mask"]["apcer"]["n"] == 4 and t["species"]["mask"]["apnrr"]["rate"] == 0.6
    assert t["max_apcer"]["species"] == "print"
    assert t["bpcer"]["errors"] == 1 and t["bpcer"]["n"] == 9          # error and not acquired left out
    assert t["bpnrr"]["errors"] == 1 and t["bpnrr"]["n"] == 11 and t["bona_fide_errors"] == 1
    assert "usb_gadget" not in t["species"]
    inj = metrics.injection_table(rs)["usb_gadget"]
    assert inj["accepted"]["errors"] == 1 and inj["how_refused"] == {"not_live": 1}


def test_bpcer_at_fixed_apcer_holds_every_species_at_the_target():
    rng = np.random.default_rng(1)
    rs = ([rec("live", "accepted", float(s)) for s in rng.uniform(0.4, 1.0, 200)]
          + [rec("print", "not_live", float(s)) for s in rng.uniform(0.0, 0.6, 100)]
          + [rec("mask", "not_live", float(s)) for s in rng.uniform(0.0, 0.5, 50)])
    live, attacks = metrics.scores(rs)
    for row in metrics.bpcer_at_apcer(rs):
        t = row["threshold"]
        for a in attacks.values():
            assert np.mean(a >= t) <= row["apcer_target"] + 1e-12
        assert row["bpcer"]["rate"] == pytest.approx(np.mean(live < t))
    rows = {r["apcer_target"]: r for r in metrics.bpcer_at_apcer(rs)}
    # 50 error-free masks show about 6 % at best: 10 % is supported, 5 % and 0.1 % are not
    assert rows[0.10]["supported"] and not rows[0.05]["supported"] and not rows[0.001]["supported"]
    assert rows[0.001]["bpcer"]["rate"] >= rows[0.10]["bpcer"]["rate"]


def test_det_points_run_from_everything_accepted_to_nothing_accepted():
    apcer, bpcer = metrics.det_points(np.array([0.6, 0.8, 0.9]), np.array([0.1, 0.7]))
    assert apcer[0] == 1.0 and bpcer[0] == 0.0 and apcer[-1] == 0.0 and bpcer[-1] == 1.0
    assert np.all(np.diff(apcer) <= 0) and np.all(np.diff(bpcer) >= 0)


def test_lux_sweep_latency_refusals_and_recovery():
    rs = [rec("live", "accepted", 0.9, conditions={"lux_set": 15.0, "lux_measured": 15.4},
              timings_ms={"total": 1500.0, "quality": 300.0}, budget_ms=2000.0),
          rec("live", "not_acquired", conditions={"lux_set": 15.0}, last_prompt="TOO_DARK"),
          rec("live", "accepted", 0.8, conditions={"lux_set": 7500.0}, timings_ms={"total": 2500.0}, budget_ms=2000.0),
          rec("live", "accepted", kind="unplug", unplug={"while_off": {"outcome": "error", "code": "DRV_DEVICE_LOST"},
                                                         "recovered_s": 3.5, "attempts": 2, "off_s": 2.0})]
    sweep = {r["lux"]: r for r in metrics.lux_sweep(rs)}
    assert sweep[15.0]["n"] == 2 and sweep[15.0]["not_acquired"] == 1 and sweep[15.0]["lux_measured"] == 15.4
    lat = metrics.latency(rs)["verify"]
    assert lat["n"] == 2 and lat["over_budget"]["errors"] == 1 and lat["stages_p50_ms"]["quality"] == 300.0
    assert metrics.quality_refusals(rs) == {"bona_fide": {"TOO_DARK": 1}}
    assert metrics.recovery(rs) == {"cycles": 1, "recovered": 1, "times_s": [3.5], "while_off": {"DRV_DEVICE_LOST": 1},
                                    "p50_s": 3.5, "max_s": 3.5}


def test_breakdown_by_condition_shows_where_things_fail():
    rs = ([rec("live", "accepted", 0.9, conditions={"lux_set": 300.0, "distance_mm": 500.0, "yaw": 0.0})] * 3
          + [rec("live", "not_acquired", conditions={"lux_set": 15.0, "distance_mm": 500.0, "yaw": 15.0})] * 2
          + [rec("mask", "accepted", 0.8, conditions={"lux_set": 15.0, "distance_mm": 800.0, "yaw": 0.0})])
    rows = {(r["dimension"], r["band"]): r for r in metrics.breakdown(rs)}
    dim = rows[("lux", "0–50 lux")]
    assert dim["bona_fide_not_acquired"] == 2 and dim["attacks_accepted"] == 1
    assert rows[("lux", "200–1000 lux")]["bona_fide_accepted"] == 3
    assert rows[("distance", "≥ 700 mm")]["attacks"] == 1 and rows[("yaw", "≥ 10 °")]["bona_fide"] == 2
    assert rows[("channel", "kiosk")]["bona_fide"] == 5


def test_a_tie_at_zero_names_the_least_tested_species():
    rs = [rec("print", "not_live", 0.1)] * 10 + [rec("mask", "not_live", 0.1)] * 3
    assert metrics.presentation_table(rs)["max_apcer"]["species"] == "mask"
