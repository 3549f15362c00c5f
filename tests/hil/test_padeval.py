"""pad-eval: the 30107-3 report's arithmetic on made-up records, and a few real presentations."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import urllib.parse

import pytest

from agent.cli import main
from agent.liveness.detectors import active_ramps
from agent.liveness.dotref import DotReference
from agent.liveness.fusion import VerdictThresholds
from agent.quality import QualityGate
from drivers.sim import ATTACKS
from drivers.sim.families import POOLS
from hil import pad_enrolment, pad_fit, pad_prompts, pad_records, pad_report
from hil import padeval as P
from hil.pad_presentations import Presentation, presentation_nonce, presentation_uri, presentations


def rec(kind: str, species: str, outcome: str, score: float | None = None, reason: str | None = None,
        split: str = "heldout", **extra) -> dict:
    uri = ("sim://?subject=x&camera=d455&light=daylight&lux=300&distance_mm=450&yaw=3&background=plain")
    return {"v": pad_records.RECORD_VERSION, "key": f"{split}/{kind}/{species}/{len(extra)}", "split": split,
            "kind": kind, "species": species, "uri": uri, "passive": False, "frames": 32, "outcome": outcome,
            "score": score, "reason": reason, **extra}


def test_report_keys_bounds_and_apart_counts():
    records = ([rec("bona_fide", "live", "accepted", 0.9) for _ in range(148)]
               + [rec("bona_fide", "live", "rejected", 0.3) for _ in range(2)]
               + [rec("bona_fide", "live", "not_acquired", reason="FACE_TOO_DARK") for _ in range(3)]
               + [rec("attack", "mask", "rejected", 0.1) for _ in range(30)]
               + [rec("attack", "print", "rejected", 0.0) for _ in range(29)]
               + [rec("attack", "print", "accepted", 0.8)]
               + [rec("attack", "screen_still", "not_acquired", reason="DEPTH_SPARSE") for _ in range(30)]
               + [rec("injection", "splice", "rejected", 0.0) for _ in range(30)])
    out = pad_report.report(records, split="heldout", passive=False, live_min=0.6, threshold_source="test", frames=32)
    assert out["split"] == "heldout"
    for key in ("bpcer", "bpcer_upper95", "fta", "species"):
        assert key in out
    by = {s["name"]: s for s in out["species"]}
    assert set(by["mask"]) >= {"name", "apcer", "apcer_upper95", "n"}
    assert by["mask"]["apcer"] == 0.0 and by["mask"]["n"] == 30
    assert by["mask"]["apcer_upper95"] == pytest.approx(1 - 0.05 ** (1 / 30), abs=1e-4)   # ~3/n
    assert by["print"]["apcer"] == pytest.approx(1 / 30, abs=1e-4)
    assert out["species"][0]["name"] == "print"                                    # worst first
    # Refused by the gate: APNRR apart, never inside APCER.
    assert by["screen_still"]["n"] == 0 and by["screen_still"]["apnrr"] == 1.0
    assert by["screen_still"]["apnrr_by_reason"] == {"DEPTH_SPARSE": 30}
    # FTA apart from BPCER, by reason.
    assert out["bpcer"] == pytest.approx(2 / 150, abs=1e-4) and out["bpcer_n"] == 150
    assert out["fta"] == pytest.approx(3 / 153, abs=1e-4) and out["fta_by_reason"] == {"FACE_TOO_DARK": 3}
    assert out["injection"][0]["name"] == "splice" and out["injection"][0]["apcer"] == 0.0
    assert out["bpcer_at_apcer_0.1pct"]["threshold_fixed_on"] == "train"
    assert out["conditions"]["camera"][0]["value"] == "d455"


def test_attack_non_response_has_a_lower_bound_and_its_counts_in_the_text_table(capsys):
    # A species the gate refuses every time (the screens on every family, docs/liveness.md, *Why the
    # tenth's cut-out prints and screens were never acquired*): its APNRR upper bound is 1.0 and says
    # nothing; the lower bound says how sure "refused" is, and the text table shows of how many.
    from scipy.stats import beta

    from hil.commands.pad_eval import _print

    records = ([rec("attack", "screen_still", "not_acquired", reason="DEPTH_SPARSE") for _ in range(10)]
               + [rec("attack", "print_cutout", "not_acquired", reason="FACE_OCCLUDED") for _ in range(3)]
               + [rec("attack", "print_cutout", "rejected", 0.0) for _ in range(7)]
               + [rec("attack", "mask", "rejected", 0.0) for _ in range(10)]
               + [rec("bona_fide", "live", "accepted", 0.9) for _ in range(5)])
    out = pad_report.report(records, split="heldout", passive=False, live_min=0.6, threshold_source="test", frames=32)
    by = {s["name"]: s for s in out["species"]}
    # One-sided 95 % Clopper-Pearson lower bounds: 0.05^(1/10) with none acquired; beta(0.05; k, n-k+1).
    assert by["screen_still"]["apnrr_lower95"] == pytest.approx(0.05 ** 0.1, abs=1e-4)          # 0.741
    assert by["print_cutout"]["apnrr_lower95"] == pytest.approx(beta.ppf(0.05, 3, 8), abs=1e-4)  # 0.087
    assert by["mask"]["apnrr_lower95"] == 0.0
    assert by["print_cutout"]["apnrr"] == pytest.approx(0.3) and by["print_cutout"]["n"] == 7
    out["threshold"] = {"live_min": 0.6, "source": "test"}
    _print(out)
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines() if ln.split()}
    assert "LOWER95" in lines["SPECIES"] and "REFUSED" in lines["SPECIES"]
    assert "100.0%" in lines["screen_still"] and "74.1%" in lines["screen_still"] and " 10/10 " in lines["screen_still"]
    assert "8.7%" in lines["print_cutout"] and " 3/10 " in lines["print_cutout"]


def test_fta_and_bpcer_are_broken_down_by_fitzpatrick_type():
    # A gate that refuses the darkest skin must show in the report, whatever its average.
    from drivers.sim.identity import Identity
    by_skin: dict[int, int] = {}
    for i in range(1, 200):
        by_skin.setdefault(Identity.draw(i, "train").skin, i)
        if len(by_skin) == 6:
            break
    base = "sim://?subject=live&camera=d435&light=daylight&lux=30&distance_mm=450&yaw=3&background=plain"
    records = []
    for skin, ident in by_skin.items():
        uri = f"{base}&family=train&identity={ident}"
        for k in range(4):
            refused = skin == 6 and k < 3
            records.append({**rec("bona_fide", "live", "not_acquired" if refused else "accepted",
                                  None if refused else 0.9, reason="FACE_TOO_DARK" if refused else None,
                                  split="train"), "uri": uri})
    records.append({**rec("bona_fide", "live", "accepted", 0.9, split="train"), "uri": base + "&skin=1"})
    rows = {r["value"]: r for r in pad_report.report(records, split="train", passive=False, live_min=0.6,
                                                     threshold_source="test", frames=32)["conditions"]["skin"]}
    assert sorted(rows) == [f"Fitzpatrick {t}" for t in range(1, 7)]
    assert rows["Fitzpatrick 6"]["fta"]["errors"] == 3 and rows["Fitzpatrick 6"]["fta"]["n"] == 4
    assert rows["Fitzpatrick 1"]["fta"]["errors"] == 0 and rows["Fitzpatrick 1"]["fta"]["n"] == 5   # the URI's skin=
    assert all(rows[f"Fitzpatrick {t}"]["fta"]["errors"] == 0 for t in range(1, 6))


def test_thresholds_are_fitted_above_every_training_attack():
    records = ([rec("bona_fide", "live", "accepted", s, split="train") for s in (0.9, 0.8, 0.7)]
               + [rec("attack", "mask", "rejected", s, split="train") for s in (0.1, 0.55, 0.2)]
               + [rec("attack", "print", "rejected", 0.0, split="train")])
    fit = pad_fit.fit_thresholds(records)
    assert fit["live_min"] == pytest.approx(0.57, abs=1e-3)          # above the worst attack, margin 0.02
    assert fit["attack_max"] < fit["live_min"]
    assert pad_fit.threshold_for_apcer({"a": [0.1, 0.3]}, 0.001) == pytest.approx(0.3, abs=1e-5)


def _query(uri: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in uri.split("?", 1)[1].split("&"))


def test_a_person_told_to_move_steps_along_the_axis_by_their_own_seed():
    uri = presentation_uri("fifth", "live", 3)
    q = _query(uri)
    closer, back = pad_prompts.followed_uri(uri, "MOVE_CLOSER", 1), pad_prompts.followed_uri(uri, "MOVE_BACK", 1)
    step = float(q["distance_mm"]) - float(_query(closer)["distance_mm"])
    lo, hi = pad_prompts.PROMPT_STEP_RANGE_MM
    assert lo - 0.5 <= step <= hi + 0.5
    assert float(_query(back)["distance_mm"]) - float(q["distance_mm"]) == pytest.approx(step, abs=1)
    for moved in (closer, back):                    # the same person, light, pose, background and seed stream
        assert {k: v for k, v in _query(moved).items() if k != "distance_mm"} == \
               {k: v for k, v in q.items() if k != "distance_mm"}
    assert pad_prompts.followed_uri(uri, "MOVE_CLOSER", 1) == closer                  # reproducible
    assert pad_prompts.followed_uri(uri, "MOVE_CLOSER", 2) != closer                  # each attempt its own step
    steps = [pad_prompts.prompt_step_mm(seed, 1) for seed in range(200)]
    assert min(steps) >= lo and max(steps) <= hi and len(set(steps)) > 150
    assert abs(sum(steps) / len(steps) - pad_prompts.PROMPT_STEP_MM) < 5


def test_a_person_told_the_light_is_too_bright_steps_into_shade():
    uri = presentation_uri("sixth", "live", 0)
    q = _query(uri)
    shade = pad_prompts.followed_uri(uri, "TOO_BRIGHT_TO_VERIFY", 1)
    assert float(_query(shade)["lux"]) == pytest.approx(float(q["lux"]) / pad_prompts.SHADE_FACTOR, abs=0.05)
    assert {k: v for k, v in _query(shade).items() if k != "lux"} == {k: v for k, v in q.items() if k != "lux"}
    assert list(_query(shade)) == list(q)                                   # the keys in their order
    dim = uri.replace(f"lux={q['lux']}", "lux=2")
    dimmer = pad_prompts.followed_uri(dim, "TOO_BRIGHT_TO_VERIFY", 1)
    assert float(_query(dimmer)["lux"]) == 1.0   # the simulator's least


def test_a_person_told_too_bright_steps_out_of_the_light_that_is_bright():
    # Issue 14: where the bright light is not the room's lux, dimming the lux moves no one out of it.
    from drivers.sim.config import SimConfig
    from drivers.sim.scene import Scene

    keys = {"eighth": "direct_sun", "eleventh": "dappled_sun", "twelfth": "headlights"}
    for family, light in keys.items():
        uri = next(u for i in range(40) if f"light={light}&" in (u := presentation_uri(family, "live", i)))
        q = _query(uri)
        told = pad_prompts.followed_uri(uri, "TOO_BRIGHT_TO_VERIFY", 1, 2.0)
        if light == "headlights":
            # No step leaves a headlamp's sweep; the car has passed: the retry's answer, lux kept.
            later = f"{uri}&t0_s={2.0 + pad_prompts.RETRY_PAUSE_S}"
            assert told == pad_prompts.followed_uri(uri, "LIGHT_CHANGED", 1, 2.0) == later
            continue
        # Out of the sun, into the shade: the lux kept, only shade=1 added; the simulator takes the sun off.
        assert told == f"{uri}&shade=1"
        cfg = SimConfig.from_query(_query(told))
        assert cfg.shade and cfg.lux == float(q["lux"])
        if light == "dappled_sun":
            assert Scene(SimConfig.from_query(q)).dapple is not None and Scene(cfg).dapple is None
        # Already in the shade: a further prompt is the open-shade answer (a quarter of the lux).
        deeper = pad_prompts.followed_uri(told, "TOO_BRIGHT_TO_VERIFY", 2, 2.0)
        assert float(_query(deeper)["lux"]) == pytest.approx(float(q["lux"]) / pad_prompts.SHADE_FACTOR, abs=0.05)
        assert _query(deeper)["shade"] == "1"
    # Every other light as before (the sixth's open shade and street: test above; the ring light too).
    ring = next(u for i in range(40) if "light=ring_light&" in (u := presentation_uri("twelfth", "live", i)))
    assert float(_query(pad_prompts.followed_uri(ring, "TOO_BRIGHT_TO_VERIFY", 1))["lux"]) == \
        pytest.approx(float(_query(ring)["lux"]) / pad_prompts.SHADE_FACTOR, abs=0.05)


def test_following_prompts_steps_into_shade_after_an_unmeasurable_challenge_only(monkeypatch):
    # The daemon says TOO_BRIGHT_TO_VERIFY after a window judged inconclusive because every failed
    # challenge was unmeasurable; pad-eval's record carries it and the person moves out of the light.
    # A contradiction (attack) or any other inconclusive is no prompt: nothing to follow.
    calls: list[str] = []
    unmeasurable = {"passed": False, "projector": {"passed": False, "measurable": False}}
    contradicted = {"passed": False, "projector": {"passed": False, "measurable": True}}

    def judged(p, *, frames, passive, gate, thresholds, dot_reference=True):
        calls.append(p.uri)
        lux = float(_query(p.uri)["lux"])
        base = {"v": pad_records.RECORD_VERSION, "key": p.key, "split": p.split, "kind": p.kind, "species": p.species,
                "index": p.index, "uri": p.uri, "passive": passive, "frames": frames, "source": "sim",
                "quality": {"complete": True, "framesets": 6}}
        if p.index == 1:
            return {**base, "outcome": "rejected", "verdict": "attack", "score": 0.0, "challenge": contradicted}
        if lux > 1000:
            rec = {**base, "outcome": "rejected", "verdict": "inconclusive", "score": 0.3, "challenge": unmeasurable}
            return {**rec, "prompt": "TOO_BRIGHT_TO_VERIFY"} if p.index != 2 else rec
        return {**base, "outcome": "accepted", "verdict": "live", "score": 0.9, "challenge": {"passed": True}}

    monkeypatch.setattr(pad_records, "run_presentation", judged)
    bright = "sim://?subject=live&seed=7&camera=astra_mini_s&light=open_shade&lux=6000&distance_mm=420"
    items = [Presentation("bona_fide", "live", "sixth", i, bright) for i in range(3)]
    out = pad_records.run(items, frames=32, passive=False, thresholds=VerdictThresholds(), follow_prompts=2)
    assert [float(_query(a["uri"])["lux"]) for a in out[0]["attempts"]] == [6000.0, 1500.0, 375.0]
    assert out[0]["outcome"] == "accepted" and out[0]["final_uri"].endswith("lux=375.0&distance_mm=420")
    assert len(out[1]["attempts"]) == 1 and out[1]["verdict"] == "attack"          # contradicted: no prompt
    assert len(out[2]["attempts"]) == 1 and out[2]["verdict"] == "inconclusive"    # no prompt given: none followed
    assert len(calls) == 5


def _fake_presentation(calls: list[str], far_mm: float = 470.0):
    """A stand-in for ``run_presentation``: a face beyond ``far_mm`` is refused MOVE_CLOSER, nearer
    ones are acquired and judged live."""

    def run_presentation(p, *, frames, passive, gate, thresholds, dot_reference=True):
        calls.append(p.uri)
        base = {"v": pad_records.RECORD_VERSION, "key": p.key, "split": p.split, "kind": p.kind, "species": p.species,
                "index": p.index, "uri": p.uri, "passive": passive, "frames": frames, "source": "sim",
                "dot_reference": dot_reference and not passive, "in_envelope": True}
        if float(_query(p.uri)["distance_mm"]) > far_mm:
            return {**base, "outcome": "not_acquired", "reason": "MOVE_CLOSER",
                    "quality": {"complete": False, "framesets": 30}}
        return {**base, "outcome": "accepted", "verdict": "live", "score": 0.9,
                "quality": {"complete": True, "framesets": 6}}

    return run_presentation


def test_people_who_follow_prompts_keep_every_attempt_and_both_rates_are_reported(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(pad_records, "run_presentation", _fake_presentation(calls))
    items = presentations("fifth", live=40, per_species=0, injection=0, species=["live"])
    far = [p for p in items if float(_query(p.uri)["distance_mm"]) > 470]
    assert 5 <= len(far) < len(items)
    path = tmp_path / "records.jsonl"
    out = pad_records.run(items, frames=32, passive=False, thresholds=VerdictThresholds(), records=path,
                          follow_prompts=2)
    assert len(calls) > len(items)                  # the far ones were presented again
    for p, r in zip(items, out, strict=True):
        assert r["uri"] == p.uri and r["attempts"][0]["uri"] == p.uri and r["final_uri"] == r["attempts"][-1]["uri"]
        assert 1 <= len(r["attempts"]) <= 3
        assert (len(r["attempts"]) > 1) == (p in far)
        assert r["outcome"] == r["attempts"][-1]["outcome"]
        distances = [float(_query(a["uri"])["distance_mm"]) for a in r["attempts"]]
        assert distances == sorted(distances, reverse=True)     # each MOVE_CLOSER brought the face nearer
    rep = pad_report.report(pad_records.read_records(path), split="fifth", passive=False, live_min=0.5,
                            threshold_source="test", frames=32, follow_prompts=2)
    first = rep["first_attempt"]
    assert first["fta_n"] == rep["fta_n"] == len(items)
    assert first["fta"] == pytest.approx(len(far) / len(items))
    assert first["fta_by_reason"] == {"MOVE_CLOSER": len(far)}
    still = sum(r["outcome"] == "not_acquired" for r in out)
    assert rep["fta"] == pytest.approx(still / len(items)) and still < len(far)
    pf = rep["prompts_followed"]["bona_fide"]
    assert pf["acquired_after_a_prompt"] == len(far) - still
    assert sum(pf["attempts"].values()) == len(items) and pf["attempts"]["1"] == len(items) - len(far)
    # Camera time: 30 framesets a refused quality phase, 6 an acquired one and the 32-frameset window, at 30 fps.
    longest = max(sum(30 if a["outcome"] == "not_acquired" else 6 + 32 for a in r["attempts"]) for r in out) / 30
    assert pf["camera_seconds"]["max"] == pytest.approx(longest, abs=1e-4) and longest > 38 / 30
    # Resumed: nothing is presented again; a run without following is kept apart and sees the first attempts.
    n = len(calls)
    pad_records.run(items, frames=32, passive=False, thresholds=VerdictThresholds(), records=path, follow_prompts=2)
    assert len(calls) == n
    pad_records.run(items, frames=32, passive=False, thresholds=VerdictThresholds(), records=path)
    assert len(calls) == n + len(items)
    plain = pad_report.report(pad_records.read_records(path), split="fifth", passive=False, live_min=0.5,
                              threshold_source="test", frames=32)
    assert plain["fta"] == first["fta"] and "first_attempt" not in plain
    again = pad_records.run(items, frames=32, passive=False, thresholds=VerdictThresholds(), follow_prompts=2)
    assert again == out                             # the same seeds give the same attempts


@pytest.fixture(scope="module", autouse=True)
def enrolment_cache(tmp_path_factory):
    """Enrolled references go to a fresh directory: every run of this module enrols as a first run would."""
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("cache")
    mp.setenv("CAPTURE_AGENT_CACHE", str(path))
    pad_enrolment._DOT_REFERENCES.clear()
    yield path / "dot-references"
    pad_enrolment._DOT_REFERENCES.clear()
    mp.undo()


@pytest.fixture(scope="module")
def presented(enrolment_cache):
    gate = QualityGate()
    items = presentations("train", live=1, per_species=1, injection=1, species=["live", "print", "replay"])
    return items, [pad_records.run_presentation(p, frames=8, passive=False, gate=gate, thresholds=VerdictThresholds())
                   for p in items]


def test_presentations_are_reproducible_for_their_seed(presented):
    items, records = presented
    again = pad_records.run_presentation(items[0], frames=8, passive=False, gate=QualityGate(),
                                         thresholds=VerdictThresholds())
    assert again == records[0]                      # the same scene, nonce and folding order: the same record


def test_stored_cues_score_as_the_judge_scored_them(presented):
    _, records = presented
    judged = [r for r in records if r["outcome"] in ("accepted", "rejected")]
    assert judged
    for r in judged:
        assert pad_fit.rescore(r, active_ramps()) == pytest.approx(r["score"], abs=1e-3)


def test_challenged_presentations_are_fitted_to_their_cameras_enrolled_pattern(presented):
    # Each camera is enrolled once (projector-enrol's code on its own frames) and every pair tested.
    _, records = presented
    judged = [r for r in records if r["outcome"] in ("accepted", "rejected") and r["kind"] != "injection"]
    assert judged
    for r in judged:
        assert r["dot_reference"] is True and len(r["dot_reference_sha256"]) == 64
        assert r["cues"]["projector_pattern_checked"] == 1.0 and r["cues"]["projector_unmatched"] >= 0.0
        assert not any("pattern check absent" in n for n in r["notes"])
    uri = judged[0]["uri"]
    assert pad_enrolment.dot_reference_for(uri) is pad_enrolment.dot_reference_for(uri)    # cached per camera and mode


def test_enrolled_references_are_kept_on_disk_for_their_code_and_unit(presented, enrolment_cache, monkeypatch):
    _, records = presented
    uri = next(r["uri"] for r in records if r.get("dot_reference_sha256"))
    ref = pad_enrolment.dot_reference_for(uri)
    files = sorted(enrolment_cache.glob("*.npz"))
    assert files and all(f.stat().st_size > 0 for f in files) and not list(enrolment_cache.glob("*.tmp"))
    mine = next(f for f in files if DotReference.load(f).digest == hashlib.sha256(ref.to_bytes()).hexdigest())
    enrolled: list[str] = []

    def enrol(uris, pairs):
        enrolled.append(uris[0])
        return ref

    monkeypatch.setattr(pad_enrolment, "enrol_uris", enrol)
    monkeypatch.setattr(pad_enrolment, "_DOT_REFERENCES", {})
    again = pad_enrolment.dot_reference_for(uri)                  # a new process: read back, not enrolled again
    assert enrolled == [] and again.to_bytes() == ref.to_bytes() and again.parallax_px_m == ref.parallax_px_m
    mine.write_bytes(b"not a reference")             # a damaged file is enrolled again and replaced
    monkeypatch.setattr(pad_enrolment, "_DOT_REFERENCES", {})
    pad_enrolment.dot_reference_for(uri)
    assert len(enrolled) == 1 and DotReference.load(mine).parallax_px_m == ref.parallax_px_m
    # Another enrolment code or simulator: another file, enrolled afresh.
    monkeypatch.setattr(pad_enrolment, "enrolment_version", lambda: "another")
    monkeypatch.setattr(pad_enrolment, "_DOT_REFERENCES", {})
    pad_enrolment.dot_reference_for(uri)
    assert len(enrolled) == 2 and len(list(enrolment_cache.glob("*.npz"))) == len(files) + 1
    monkeypatch.setenv("CAPTURE_AGENT_CACHE", "off")
    monkeypatch.setattr(pad_enrolment, "_DOT_REFERENCES", {})
    pad_enrolment.dot_reference_for(uri)
    assert len(enrolled) == 3 and pad_enrolment.enrolment_cache_dir() is None


def test_injected_replay_is_rejected(presented):
    _, records = presented
    inj = next(r for r in records if r["kind"] == "injection")
    assert inj["species"] == "replay" and "inject=replay" in inj["uri"]
    assert inj["outcome"] != "accepted"


@pytest.mark.slow
def test_pad_eval_command_writes_a_resumable_record_file(tmp_path, capsys):
    f = tmp_path / "records.jsonl"
    args = ["pad-eval", "--split", "train", "--live", "1", "--per-species", "1", "--injection", "0",
            "--species", "live,mask", "--frames", "8", "--records", str(f), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["split"] == "train" and [s["name"] for s in first["species"]] == ["mask"]
    assert len(f.read_text().splitlines()) == 2
    assert main(args) == 0                           # resumed: nothing new is run
    assert len(f.read_text().splitlines()) == 2 and json.loads(capsys.readouterr().out) == first


def test_sixth_split_is_accepted_and_lists_its_own_pools_without_being_run():
    # The unseen family: its split parses and its presentations are listed; nothing is presented.
    import argparse

    from drivers.sim.families import LIGHT_LUX, POOLS
    from hil.commands import pad_eval

    parser = argparse.ArgumentParser()
    pad_eval.register(parser.add_subparsers())
    assert parser.parse_args(["pad-eval", "--split", "sixth"]).split == "sixth"
    items = presentations("sixth", live=4, per_species=1, injection=1)
    assert len(items) == 4 + len(ATTACKS) + len(P.INJECTIONS)
    assert all(p.key.startswith("sixth/") and "family=sixth" in p.uri for p in items)
    assert {p.uri.split("camera=")[1].split("&")[0] for p in items} == {"astra_mini_s"}
    for p in items:
        light = p.uri.split("light=")[1].split("&")[0]
        lux = float(p.uri.split("lux=")[1].split("&")[0])
        assert light in POOLS["sixth"].lights and LIGHT_LUX[light][0] <= lux <= LIGHT_LUX[light][1]
    assert not {p.uri for p in items} & {p.uri for f in ("train", "heldout", "field", "fresh", "fifth")
                                         for p in presentations(f, live=4, per_species=1, injection=1)}


def test_seventh_split_is_accepted_and_lists_its_own_pools_without_being_run():
    # The unseen family: its split parses and its presentations are listed; nothing is presented.
    import argparse

    from drivers.sim.families import LIGHT_LUX, POOLS
    from hil.commands import pad_eval

    parser = argparse.ArgumentParser()
    pad_eval.register(parser.add_subparsers())
    assert parser.parse_args(["pad-eval", "--split", "seventh"]).split == "seventh"
    items = presentations("seventh", live=4, per_species=1, injection=1)
    assert len(items) == 4 + len(ATTACKS) + len(P.INJECTIONS)
    assert all(p.key.startswith("seventh/") and "family=seventh" in p.uri for p in items)
    assert {p.uri.split("camera=")[1].split("&")[0] for p in items} == {"gemini2l"}
    for p in items:
        light = p.uri.split("light=")[1].split("&")[0]
        lux = float(p.uri.split("lux=")[1].split("&")[0])
        assert light in POOLS["seventh"].lights and LIGHT_LUX[light][0] <= lux <= LIGHT_LUX[light][1]
    assert not {p.uri for p in items} & {p.uri for f in ("train", "heldout", "field", "fresh", "fifth", "sixth")
                                         for p in presentations(f, live=4, per_species=1, injection=1)}


def test_eighth_split_is_accepted_and_lists_its_own_pools_without_being_run():
    # The unseen family: its split parses and its presentations are listed; nothing is presented.
    import argparse

    from drivers.sim.families import LIGHT_LUX, POOLS
    from hil.commands import pad_eval

    parser = argparse.ArgumentParser()
    pad_eval.register(parser.add_subparsers())
    assert parser.parse_args(["pad-eval", "--split", "eighth"]).split == "eighth"
    items = presentations("eighth", live=4, per_species=1, injection=1)
    assert len(items) == 4 + len(ATTACKS) + len(P.INJECTIONS)
    assert all(p.key.startswith("eighth/") and "family=eighth" in p.uri for p in items)
    assert {p.uri.split("camera=")[1].split("&")[0] for p in items} == {"gemini335l"}
    for p in items:
        light = p.uri.split("light=")[1].split("&")[0]
        lux = float(p.uri.split("lux=")[1].split("&")[0])
        assert light in POOLS["eighth"].lights and LIGHT_LUX[light][0] <= lux <= LIGHT_LUX[light][1]
    assert not {p.uri for p in items} & {p.uri for f in ("train", "heldout", "field", "fresh", "fifth", "sixth",
                                                          "seventh")
                                         for p in presentations(f, live=4, per_species=1, injection=1)}


def test_ninth_split_is_accepted_listed_and_named_unseen_without_being_run():
    # The ninth family (unseen until its one evaluation): its split parses, its presentations are listed.
    import argparse

    from drivers.sim.families import LIGHT_LUX, POOLS
    from hil.commands import pad_eval

    parser = argparse.ArgumentParser()
    pad_eval.register(parser.add_subparsers())
    assert parser.parse_args(["pad-eval", "--split", "ninth"]).split == "ninth"
    items = presentations("ninth", live=4, per_species=1, injection=1)
    assert len(items) == 4 + len(ATTACKS) + len(P.INJECTIONS)
    assert all(p.key.startswith("ninth/") and "family=ninth" in p.uri for p in items)
    assert {p.uri.split("camera=")[1].split("&")[0] for p in items} == {"gemini336"}
    for p in items:
        light = p.uri.split("light=")[1].split("&")[0]
        lux = float(p.uri.split("lux=")[1].split("&")[0])
        assert light in POOLS["ninth"].lights and LIGHT_LUX[light][0] <= lux <= LIGHT_LUX[light][1]
    assert not {p.uri for p in items} & {p.uri for f in P.SPLITS if f != "ninth"
                                         for p in presentations(f, live=4, per_species=1, injection=1)}


def test_tenth_split_is_accepted_and_lists_its_own_pools_without_being_run():
    # The tenth family (unseen until its one evaluation): its split parses, its presentations are listed.
    import argparse

    from drivers.sim.families import LIGHT_LUX, POOLS
    from hil.commands import pad_eval

    parser = argparse.ArgumentParser()
    pad_eval.register(parser.add_subparsers())
    assert parser.parse_args(["pad-eval", "--split", "tenth"]).split == "tenth"
    assert "tenth" in P.SPLITS
    items = presentations("tenth", live=4, per_species=1, injection=1)
    assert len(items) == 4 + len(ATTACKS) + len(P.INJECTIONS)
    assert all(p.key.startswith("tenth/") and "family=tenth" in p.uri for p in items)
    assert {p.uri.split("camera=")[1].split("&")[0] for p in items} == {"d435f"}
    for p in items:
        light = p.uri.split("light=")[1].split("&")[0]
        lux = float(p.uri.split("lux=")[1].split("&")[0])
        assert light in POOLS["tenth"].lights and LIGHT_LUX[light][0] <= lux <= LIGHT_LUX[light][1]
    assert not {p.uri for p in items} & {p.uri for f in P.SPLITS if f != "tenth"
                                         for p in presentations(f, live=4, per_species=1, injection=1)}


def test_eleventh_split_is_accepted_and_lists_its_own_pools_without_being_run():
    # The eleventh family (evaluated once in the twenty-second session): its split parses, its
    # presentations are listed.
    import argparse

    from drivers.sim.families import LIGHT_LUX, POOLS
    from hil.commands import pad_eval

    parser = argparse.ArgumentParser()
    pad_eval.register(parser.add_subparsers())
    assert parser.parse_args(["pad-eval", "--split", "eleventh"]).split == "eleventh"
    assert "eleventh" in P.SPLITS
    items = presentations("eleventh", live=4, per_species=1, injection=1)
    assert len(items) == 4 + len(ATTACKS) + len(P.INJECTIONS)
    assert all(p.key.startswith("eleventh/") and "family=eleventh" in p.uri for p in items)
    assert {p.uri.split("camera=")[1].split("&")[0] for p in items} == {"d455f"}
    for p in items:
        light = p.uri.split("light=")[1].split("&")[0]
        lux = float(p.uri.split("lux=")[1].split("&")[0])
        assert light in POOLS["eleventh"].lights and LIGHT_LUX[light][0] <= lux <= LIGHT_LUX[light][1]
    assert not {p.uri for p in items} & {p.uri for f in P.SPLITS if f != "eleventh"
                                         for p in presentations(f, live=4, per_species=1, injection=1)}


@pytest.mark.slow
def test_each_eleventh_camera_enrols_its_projector_under_the_familys_enrolment_light():
    # Enrolment is outside the judge: the tenth's first evaluation was voided by enrolments that could
    # not succeed under its light. Each camera of the eleventh's pool enrols (a board at 0.45 and
    # 0.65 m, then the wall) under the family's first light with a wall: the signage panel's lobby.
    assert pad_enrolment.enrolment_light("eleventh") == "signage" and "signage" not in pad_enrolment.NO_WALL_LIGHTS
    for cam in POOLS["eleventh"].cameras:
        uri = f"sim://?family=eleventh&camera={cam}&distance_mm=450"
        ref = pad_enrolment.dot_reference_for(uri)
        assert isinstance(ref, DotReference) and len(ref.to_bytes()) > 0 and abs(ref.parallax_px_m) > 0


def test_twelfth_split_is_accepted_and_lists_its_own_pools():
    # The twelfth family (built and evaluated once in the twenty-third session): its split parses and
    # its presentations are listed (nothing is presented).
    import argparse

    from drivers.sim.families import LIGHT_LUX, POOLS
    from hil.commands import pad_eval

    parser = argparse.ArgumentParser()
    pad_eval.register(parser.add_subparsers())
    assert parser.parse_args(["pad-eval", "--split", "twelfth"]).split == "twelfth"
    assert P.SPLITS[-12:] == ("twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
                              "eighteenth", "nineteenth", "twentieth", "twentyfirst", "twentysecond", "twentythird")
    items = presentations("twelfth", live=4, per_species=1, injection=1)
    assert len(items) == 4 + len(ATTACKS) + len(P.INJECTIONS)
    assert all(p.key.startswith("twelfth/") and "family=twelfth" in p.uri for p in items)
    assert {p.uri.split("camera=")[1].split("&")[0] for p in items} == {"d457"}
    for p in items:
        light = p.uri.split("light=")[1].split("&")[0]
        lux = float(p.uri.split("lux=")[1].split("&")[0])
        assert light in POOLS["twelfth"].lights and LIGHT_LUX[light][0] <= lux <= LIGHT_LUX[light][1]
    assert not {p.uri for p in items} & {p.uri for f in P.SPLITS if f != "twelfth"
                                         for p in presentations(f, live=4, per_species=1, injection=1)}


@pytest.mark.slow
def test_each_twelfth_camera_enrols_its_projector_under_the_familys_enrolment_light():
    # Each camera of the twelfth's pool enrols (a board at 0.45 and 0.65 m, then the wall) under the
    # family's first light with a wall: the lobby with the kiosk's ring light.
    assert pad_enrolment.enrolment_light("twelfth") == "ring_light" and "ring_light" not in pad_enrolment.NO_WALL_LIGHTS
    for cam in POOLS["twelfth"].cameras:
        uri = f"sim://?family=twelfth&camera={cam}&distance_mm=450"
        ref = pad_enrolment.dot_reference_for(uri)
        assert isinstance(ref, DotReference) and len(ref.to_bytes()) > 0 and abs(ref.parallax_px_m) > 0


def test_fifth_split_presents_its_own_pools_at_the_train_threshold(tmp_path, capsys):
    from agent.liveness.fusion import load_thresholds
    from drivers.sim.families import POOLS

    items = presentations("fifth", live=3, per_species=1, injection=1)
    assert items and all(p.key.startswith("fifth/") and "family=fifth" in p.uri for p in items)
    assert {p.uri.split("camera=")[1].split("&")[0] for p in items} == {"gemini336l"}
    assert {p.uri.split("light=")[1].split("&")[0] for p in items} <= set(POOLS["fifth"].lights)
    assert not {p.uri for p in items} & {p.uri for f in ("train", "heldout", "field", "fresh")
                                         for p in presentations(f, live=3, per_species=1, injection=1)}
    f = tmp_path / "fifth.jsonl"
    recs = [rec("bona_fide", "live", "rejected", 0.1, split="fifth"),
            rec("attack", "print", "rejected", 0.0, split="fifth", x=1),
            rec("attack", "print", "rejected", 0.0, split="fresh", x=2)]
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert main(["pad-eval", "--split", "fifth", "--report-only", "--records", str(f), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "fifth"
    assert out["threshold"]["live_min"] == load_thresholds("kiosk", challenged=True).live_min
    assert out["counts"]["attacks"] == 1 and out["bpcer_n"] == 1     # the fresh record is not fifth's


def test_fresh_split_presents_its_own_pools_at_the_train_threshold(tmp_path, capsys):
    from agent.liveness.fusion import load_thresholds
    from drivers.sim.families import POOLS

    items = presentations("fresh", live=3, per_species=1, injection=1)
    assert items and all(p.key.startswith("fresh/") and "family=fresh" in p.uri for p in items)
    assert {p.uri.split("camera=")[1].split("&")[0] for p in items} == {"gemini2"}
    assert {p.uri.split("light=")[1].split("&")[0] for p in items} <= set(POOLS["fresh"].lights)
    assert not {p.uri for p in items} & {p.uri for f in ("train", "heldout", "field")
                                         for p in presentations(f, live=3, per_species=1, injection=1)}
    f = tmp_path / "fresh.jsonl"
    recs = [rec("bona_fide", "live", "rejected", 0.1, split="fresh"),
            rec("attack", "print", "rejected", 0.0, split="fresh", x=1),
            rec("attack", "print", "rejected", 0.0, split="field", x=2)]
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert main(["pad-eval", "--split", "fresh", "--report-only", "--records", str(f), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "fresh"
    assert out["threshold"]["live_min"] == load_thresholds("kiosk", challenged=True).live_min
    assert out["counts"]["attacks"] == 1 and out["bpcer_n"] == 1     # the field record is not fresh's


def test_field_split_presents_its_own_pools_at_the_train_threshold(tmp_path, capsys):
    from agent.liveness.fusion import load_thresholds
    from drivers.sim.families import POOLS

    assert "field" in P.SPLITS
    items = presentations("field", live=3, per_species=1, injection=1)
    assert items and all(p.key.startswith("field/") and "family=field" in p.uri for p in items)
    assert {p.uri.split("camera=")[1].split("&")[0] for p in items} <= set(POOLS["field"].cameras)
    assert [p.uri for p in items] == [p.uri for p in presentations("field", live=3, per_species=1, injection=1)]
    # Reported at the threshold calibration.json holds (fitted on train), never one fitted on field.
    f = tmp_path / "field.jsonl"
    recs = [rec("bona_fide", "live", "not_acquired", reason="MOVE_CLOSER", split="field"),
            rec("attack", "print", "rejected", 0.0, split="field", x=1)]
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert main(["pad-eval", "--split", "field", "--report-only", "--records", str(f), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "field" and out["fta_by_reason"] == {"MOVE_CLOSER": 1}
    assert out["threshold"]["live_min"] == load_thresholds("kiosk", challenged=True).live_min
    assert "fitted on train" in out["threshold"]["source"]


def test_a_camera_is_enrolled_under_the_presentations_scattering_model():
    # A presentation on the physical scattering model (docs/sim.md, ``scatter``) enrols its camera's
    # board and wall under the same model; without the key the enrolment scenes are as before.
    phys = pad_enrolment.enrolment_uris("sim://?family=train&camera=d415&scatter=physical&distance_mm=400")
    plain = pad_enrolment.enrolment_uris("sim://?family=train&camera=d415&distance_mm=400")
    assert len(phys) == len(plain) == 3
    assert all("scatter=physical" in u for u in phys) and not any("scatter" in u for u in plain)
    assert [u.replace("&scatter=physical", "") for u in phys] == plain
    cored = pad_enrolment.enrolment_uris("sim://?family=train&camera=d415&scatter=physical&scatter_core=0&distance_mm=400")
    assert all("scatter=physical&scatter_core=0" in u for u in cored)


def test_a_camera_is_enrolled_facing_a_wall_never_a_sunlit_street():
    # The tenth family's backlight puts a sunlit street behind glazing where the enrolment's wall
    # should be: its near infrared drowns the dots and every enrolment under it failed
    # (LIV_DOT_ENROLMENT_FAILED, the tenth's first evaluation). Enrolment takes the family's first
    # light with a wall; families whose first light has one are enrolled as before.
    for family, pool in POOLS.items():
        uris = pad_enrolment.enrolment_uris(f"sim://?family={family}&distance_mm=400")
        lights = {dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(u).query))["light"] for u in uris}
        assert lights == {pad_enrolment.enrolment_light(family)} and lights <= set(pool.lights)
        assert not lights & pad_enrolment.NO_WALL_LIGHTS
        if pool.lights[0] not in pad_enrolment.NO_WALL_LIGHTS:
            assert lights == {pool.lights[0]}
    assert "backlight" in POOLS["tenth"].lights and pad_enrolment.enrolment_light("tenth") != "backlight"


def test_a_person_told_the_light_changed_tries_again_later_in_the_same_scene():
    # LIGHT_CHANGED (a passing shadow left the window unmeasurable): the person stays where they are;
    # the retry starts the scene's lights at the previous start + its camera time + RETRY_PAUSE_S.
    uri = presentation_uri("sixth", "live", 0)
    q = _query(uri)
    again = pad_prompts.followed_uri(uri, "LIGHT_CHANGED", 1, 4.2)
    assert again == f"{uri}&t0_s={4.2 + pad_prompts.RETRY_PAUSE_S}"                  # only t0_s, added at the end
    third = pad_prompts.followed_uri(again, "LIGHT_CHANGED", 2, 1.5)
    assert {k: v for k, v in _query(third).items() if k != "t0_s"} == q and list(_query(third)) == list(_query(again))
    assert float(_query(third)["t0_s"]) == pytest.approx(4.2 + 1.5 + 2 * pad_prompts.RETRY_PAUSE_S)
    with pytest.raises(ValueError):
        pad_prompts.followed_uri(uri, "LIGHT_CHANGED", 1, float("nan"))
    # The other prompts never add it: every URI they make is as before.
    for told in ("TOO_BRIGHT_TO_VERIFY", "MOVE_CLOSER", "MOVE_BACK"):
        assert "t0_s" not in pad_prompts.followed_uri(uri, told, 1)


def test_following_light_changed_retries_with_the_previous_attempts_camera_time(monkeypatch):
    unmeasurable = {"passed": False, "illumination": {"passed": False, "measurable": False}}

    def judged(p, *, frames, passive, gate, thresholds, dot_reference=True):
        t0 = float(_query(p.uri).get("t0_s", "0"))
        base = {"v": pad_records.RECORD_VERSION, "key": p.key, "split": p.split, "kind": p.kind, "species": p.species,
                "index": p.index, "uri": p.uri, "passive": passive, "frames": frames, "source": "sim",
                "quality": {"complete": True, "framesets": 6}, "camera_s": 2.5}
        if t0 < 6:                                   # the shadow passes during the first two sessions
            return {**base, "outcome": "rejected", "verdict": "inconclusive", "score": 0.3,
                    "challenge": unmeasurable, "prompt": "LIGHT_CHANGED"}
        return {**base, "outcome": "accepted", "verdict": "live", "score": 0.9, "challenge": {"passed": True}}

    monkeypatch.setattr(pad_records, "run_presentation", judged)
    uri = "sim://?subject=live&seed=7&camera=d435f&light=passing_shade&lux=900&distance_mm=420"
    out = pad_records.run([Presentation("bona_fide", "live", "tenth", 0, uri)], frames=32, passive=False,
                          thresholds=VerdictThresholds(), follow_prompts=2)
    assert [_query(a["uri"]).get("t0_s") for a in out[0]["attempts"]] == [None, "5.5", "11.0"]
    assert out[0]["outcome"] == "accepted" and out[0]["final_uri"] == uri + "&t0_s=11.0"
    assert all(_query(a["uri"])["lux"] == "900" for a in out[0]["attempts"])      # no shade: the same light


def _assert_reported_apart(capsys, records, split: str, key: str, *, keyed: str, plain: str) -> None:
    """``records`` holds a ``plain`` attack, a ``keyed`` attack and a live one rendered with ``key=1``:
    the report with ``--key`` counts only the keyed two, the report without it only the plain one."""
    flag = "--" + key.replace("_", "-")
    for with_key in (True, False):
        argv = ["pad-eval", "--split", split, "--report-only", "--records", str(records), "--json"]
        assert main(argv + [flag] * with_key) == 0
        out = json.loads(capsys.readouterr().out)
        by = {s["name"]: s for s in out["species"]}
        assert out[key] is with_key and out["bpcer_n"] == int(with_key)
        assert by.get(keyed, {}).get("presented", 0) == int(with_key)
        assert by.get(plain, {}).get("presented", 0) == int(not with_key)


def test_ir_leak_runs_are_rendered_with_the_key_enrolled_alike_and_reported_apart(tmp_path, capsys):
    # pad-eval --ir-leak (docs/sim.md, *Visible light in broadband IR imagers*): every presentation
    # and its camera's enrolment carry ir_leak=1, the same scenes otherwise; records with and without
    # the key are never pooled; a split with a filtered camera is refused before anything runs.
    from agent.errors import UsageError

    plain = presentations("eighth", live=2, per_species=1, injection=1)
    leaky = presentations("eighth", live=2, per_species=1, injection=1, ir_leak=True)
    assert [p.key for p in leaky] == [p.key for p in plain]
    assert [p.uri for p in leaky] == [p.uri + "&ir_leak=1" for p in plain]
    assert all("ir_leak=1" in u.split("?", 1)[1].split("&") for u in pad_enrolment.enrolment_uris(leaky[0].uri))
    assert not any("ir_leak" in u for u in pad_enrolment.enrolment_uris(plain[0].uri))
    # (The thirteenth family's D435i, the fifteenth's Gemini 335Le, the sixteenth's Gemini 330, the
    # eighteenth's Gemini 335Lg, the twentieth's Gemini 305 and the twenty-second's D555 lack the filter too; those
    # families render the leak on every URI.)
    assert P.ir_leak_splits() == ("train", "field", "eighth", "thirteenth", "fifteenth", "sixteenth", "eighteenth",
                                  "twentieth", "twentysecond")
    f = tmp_path / "eighth.jsonl"
    base = rec("attack", "screen_still", "rejected", 0.1, split="eighth")
    recs = [base, {**rec("attack", "screen_video", "rejected", 0.0, split="eighth", x=1),
                   "uri": base["uri"] + "&ir_leak=1"},
            {**rec("bona_fide", "live", "accepted", 0.9, split="eighth", x=2), "uri": base["uri"] + "&ir_leak=1"}]
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    _assert_reported_apart(capsys, f, "eighth", "ir_leak", keyed="screen_video", plain="screen_still")
    for split in ("tenth", "eleventh", "ninth", "heldout"):
        assert main(["pad-eval", "--split", split, "--ir-leak", "--live", "1", "--per-species", "0",
                     "--injection", "0", "--records", str(f)]) == 2
        assert f"error[{UsageError.code}]: --ir-leak" in capsys.readouterr().err
    assert len(f.read_text().splitlines()) == 3                     # nothing was run


def test_cornea_runs_are_rendered_with_the_key_under_the_plain_runs_nonces_and_reported_apart(tmp_path, capsys):
    # pad-eval --cornea (docs/sim.md, *The corneas' glints*; docs/liveness.md, eyecue25): every
    # presentation carries cornea=1 and keeps the nonce of the same presentation without it (after a
    # followed prompt too), so a run with and one without differ by the glints alone; records with and
    # without the key are never pooled; recordings and calibration are refused.
    from agent.errors import UsageError

    plain = presentations("train", live=2, per_species=1, injection=1)
    glinting = presentations("train", live=2, per_species=1, injection=1, cornea=True)
    assert [p.key for p in glinting] == [p.key for p in plain]
    assert [p.uri for p in glinting] == [p.uri + "&cornea=1" for p in plain]
    assert [presentation_nonce(p) for p in glinting] == [presentation_nonce(p) for p in plain]
    moved = [dataclasses.replace(p, uri=pad_prompts.followed_uri(p.uri, "MOVE_CLOSER", 1))
             for p in (plain[0], glinting[0])]
    assert moved[1].uri != moved[0].uri and presentation_nonce(moved[1]) == presentation_nonce(moved[0])
    assert presentation_nonce(plain[0]) != presentation_nonce(plain[1])
    f = tmp_path / "heldout.jsonl"
    base = rec("attack", "print_eyes", "rejected", 0.1)
    recs = [base, {**rec("attack", "glasses_print", "rejected", 0.0, x=1), "uri": base["uri"] + "&cornea=1"},
            {**rec("bona_fide", "live", "accepted", 0.9, x=2), "uri": base["uri"] + "&cornea=1"}]
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    _assert_reported_apart(capsys, f, "heldout", "cornea", keyed="glasses_print", plain="print_eyes")
    assert main(["pad-eval", "--split", "train", "--cornea", "--write-calibration", "--records", str(f)]) == 2
    assert f"error[{UsageError.code}]: --cornea" in capsys.readouterr().err
    assert len(f.read_text().splitlines()) == 3                     # nothing was run


def test_thirteenth_split_is_accepted_and_lists_its_own_pools():
    # The thirteenth family (evaluated once in the twenty-fourth session): its split parses and its
    # presentations are listed (nothing is presented).
    import argparse

    from drivers.sim.families import LIGHT_LUX, POOLS
    from hil.commands import pad_eval

    parser = argparse.ArgumentParser()
    pad_eval.register(parser.add_subparsers())
    assert parser.parse_args(["pad-eval", "--split", "thirteenth"]).split == "thirteenth"
    assert P.SPLITS[-11:] == ("thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth",
                              "nineteenth", "twentieth", "twentyfirst", "twentysecond", "twentythird")
    items = presentations("thirteenth", live=4, per_species=1, injection=1)
    assert len(items) == 4 + len(ATTACKS) + len(P.INJECTIONS)
    assert all(p.key.startswith("thirteenth/") and "family=thirteenth" in p.uri for p in items)
    assert {p.uri.split("camera=")[1].split("&")[0] for p in items} == {"d435i"}
    for p in items:
        light = p.uri.split("light=")[1].split("&")[0]
        lux = float(p.uri.split("lux=")[1].split("&")[0])
        assert light in POOLS["thirteenth"].lights and LIGHT_LUX[light][0] <= lux <= LIGHT_LUX[light][1]
    assert not {p.uri for p in items} & {p.uri for f in P.SPLITS if f != "thirteenth"
                                         for p in presentations(f, live=4, per_species=1, injection=1)}


@pytest.mark.slow
def test_each_thirteenth_camera_enrols_its_projector_under_the_familys_enrolment_light():
    # Each camera of the thirteenth's pool enrols (a board at 0.45 and 0.65 m, then the wall) under the
    # family's enrolment light, the PWM-dimmed lobby, with the family's ir_leak on (its visible light in
    # the IR image, the dots on top).
    assert pad_enrolment.enrolment_light("thirteenth") == "pwm_led" and "pwm_led" not in pad_enrolment.NO_WALL_LIGHTS
    for cam in POOLS["thirteenth"].cameras:
        uri = f"sim://?family=thirteenth&camera={cam}&distance_mm=450"
        assert all("family=thirteenth" in u for u in pad_enrolment.enrolment_uris(uri))
        ref = pad_enrolment.dot_reference_for(uri)
        assert isinstance(ref, DotReference) and len(ref.to_bytes()) > 0 and abs(ref.parallax_px_m) > 0


def _assert_split_lists_its_own_pools(family: str, camera: str, live: int) -> list:
    """The split parses; its presentations (listed, nothing presented) are its own, on its camera, under
    its lights at their illuminances, and none is another split's."""
    import argparse

    from drivers.sim.families import LIGHT_LUX, POOLS
    from hil.commands import pad_eval

    parser = argparse.ArgumentParser()
    pad_eval.register(parser.add_subparsers())
    assert parser.parse_args(["pad-eval", "--split", family]).split == family
    items = presentations(family, live=live, per_species=1, injection=1)
    assert len(items) == live + len(ATTACKS) + len(P.INJECTIONS)
    assert all(p.key.startswith(f"{family}/") and f"family={family}" in p.uri for p in items)
    assert {p.uri.split("camera=")[1].split("&")[0] for p in items} == {camera}
    for p in items:
        light = p.uri.split("light=")[1].split("&")[0]
        lux = float(p.uri.split("lux=")[1].split("&")[0])
        assert light in POOLS[family].lights and LIGHT_LUX[light][0] <= lux <= LIGHT_LUX[light][1]
    assert not {p.uri for p in items} & {p.uri for f in P.SPLITS if f != family
                                         for p in presentations(f, live=live, per_species=1, injection=1)}
    return items


def test_fourteenth_split_is_accepted_and_lists_its_own_pools():
    # The fourteenth family (evaluated once, whole, in the twenty-fifth session): its split parses and its
    # presentations are listed (nothing is presented).
    assert P.SPLITS[-10:] == ("fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth",
                             "twentieth", "twentyfirst", "twentysecond", "twentythird")
    assert "fourteenth" not in P.ir_leak_splits()
    items = _assert_split_lists_its_own_pools("fourteenth", "d456", live=4)
    # Striped by the blinds, TOO_BRIGHT_TO_VERIFY steps the person aside out of the sun (shade=1).
    assert pad_prompts.followed_uri(items[0].uri, "TOO_BRIGHT_TO_VERIFY", 1) == items[0].uri + "&shade=1"


def _assert_each_camera_enrols(family: str, light: str) -> None:
    """Each camera of the family's pool enrols its projector (a board at 0.45 and 0.65 m, then the wall)
    under ``light``, the family's enrolment light."""
    assert pad_enrolment.enrolment_light(family) == light and light not in pad_enrolment.NO_WALL_LIGHTS
    for cam in POOLS[family].cameras:
        uri = f"sim://?family={family}&camera={cam}&distance_mm=450"
        assert all(f"family={family}" in u and f"light={light}" in u for u in pad_enrolment.enrolment_uris(uri))
        ref = pad_enrolment.dot_reference_for(uri)
        assert isinstance(ref, DotReference) and len(ref.to_bytes()) > 0 and abs(ref.parallax_px_m) > 0


@pytest.mark.slow
def test_each_fourteenth_camera_enrols_its_projector_under_the_familys_enrolment_light():
    # Each camera of the fourteenth's pool enrols (a board at 0.45 and 0.65 m, then the wall) under the
    # family's enrolment light, the blinds' low sun (the board and the wall striped; 150 lux in the
    # stripes), with the family's cornea on (a board has none).
    _assert_each_camera_enrols("fourteenth", "blinds")


def test_fifteenth_split_is_accepted_and_lists_its_own_pools():
    # The fifteenth family (evaluated once, whole, in the twenty-sixth session): its split parses and its
    # presentations are listed (nothing is presented).
    assert P.SPLITS[-9:] == ("fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth", "twentieth",
                             "twentyfirst", "twentysecond", "twentythird")
    assert "fifteenth" in P.ir_leak_splits()
    _assert_split_lists_its_own_pools("fifteenth", "gemini335le", live=8)


@pytest.mark.slow
def test_each_fifteenth_camera_enrols_its_projector_under_the_familys_enrolment_light():
    # Each camera of the fifteenth's pool enrols (a board at 0.45 and 0.65 m, then the wall) under the
    # family's enrolment light, the halogen downlights under the turning fan (the board's and the wall's
    # light pulsing with the blades), with the family's visible light in IR and cornea on.
    _assert_each_camera_enrols("fifteenth", "ceiling_fan")


def test_sixteenth_split_is_accepted_and_lists_its_own_pools():
    # The sixteenth family (evaluated once, whole, in the twenty-seventh session): its split parses and its
    # presentations are listed (nothing is presented).
    assert P.SPLITS[-8:] == ("sixteenth", "seventeenth", "eighteenth", "nineteenth", "twentieth", "twentyfirst",
                             "twentysecond", "twentythird")
    assert "sixteenth" in P.ir_leak_splits()
    _assert_split_lists_its_own_pools("sixteenth", "gemini330", live=8)


@pytest.mark.slow
def test_each_sixteenth_camera_enrols_its_projector_under_the_familys_enrolment_light():
    # Each camera of the sixteenth's pool enrols (a board at 0.45 and 0.65 m, then the wall) under the
    # family's enrolment light, the troffers with their failing tube (the board's and the wall's light
    # stepping as the tube blinks), with the family's visible light in IR and cornea on.
    _assert_each_camera_enrols("sixteenth", "failing_tube")


def test_seventeenth_split_is_accepted_and_lists_its_own_pools():
    # The seventeenth family (evaluated once, whole, in the twenty-eighth session): its split parses, its
    # presentations are listed (nothing is presented), and its RealSense D436 is rendered with an IR-pass filter.
    assert P.SPLITS[-7:] == ("seventeenth", "eighteenth", "nineteenth", "twentieth", "twentyfirst", "twentysecond",
                             "twentythird")
    assert "seventeenth" not in P.ir_leak_splits()
    _assert_split_lists_its_own_pools("seventeenth", "d436", live=8)


@pytest.mark.slow
def test_each_seventeenth_camera_enrols_its_projector_under_the_familys_enrolment_light():
    # Each camera of the seventeenth's pool enrols (a board at 0.45 and 0.65 m, then the wall) under the
    # family's enrolment light, the vestibule's downlights fading once (the board's and the wall's light
    # and colour changing over 0.7-4 s), with the family's cornea on.
    _assert_each_camera_enrols("seventeenth", "occupancy_fade")


def test_eighteenth_split_is_accepted_and_lists_its_own_pools():
    # The eighteenth family (evaluated once, whole, in the twenty-ninth session): its split parses, its
    # presentations are listed (nothing is presented), and its Gemini 335Lg has no IR-pass filter (--ir-leak
    # allowed; the family renders the leak on every URI anyway).
    assert P.SPLITS[-6:] == ("eighteenth", "nineteenth", "twentieth", "twentyfirst", "twentysecond", "twentythird")
    assert "eighteenth" in P.ir_leak_splits()
    _assert_split_lists_its_own_pools("eighteenth", "gemini335lg", live=8)


@pytest.mark.slow
def test_each_eighteenth_camera_enrols_its_projector_under_the_familys_enrolment_light():
    # Each camera of the eighteenth's pool enrols (a board at 0.45 and 0.65 m, then the wall) under the
    # family's enrolment light, the holiday string lights (the board's and the wall's colour flickering at the
    # mains frequency and changing with the controller's pattern, their visible light in the IR without an
    # IR-pass filter), with the family's cornea and visible light in IR on.
    _assert_each_camera_enrols("eighteenth", "string_lights")


def test_nineteenth_split_is_accepted_and_lists_its_own_pools():
    # The nineteenth family (evaluated once, whole, in the thirtieth session): its split parses, its presentations
    # are listed (nothing is presented), and its Gemini 215 is rendered with an IR-pass filter (--ir-leak refused).
    assert P.SPLITS[-5:] == ("nineteenth", "twentieth", "twentyfirst", "twentysecond", "twentythird")
    assert "nineteenth" not in P.ir_leak_splits()
    _assert_split_lists_its_own_pools("nineteenth", "gemini215", live=8)


@pytest.mark.slow
def test_each_nineteenth_camera_enrols_its_projector_under_the_familys_enrolment_light():
    # Each camera of the nineteenth's pool enrols (a board at 0.45 and 0.65 m, then the wall) under the
    # family's enrolment light, the vestibule with a phone's screen lighting the board from below (its level
    # changing as the page scrolls, the phone lowered in some scenes), with the family's cornea on.
    _assert_each_camera_enrols("nineteenth", "phone_screen")


def test_twentieth_split_is_accepted_and_lists_its_own_pools():
    # The twentieth family (evaluated once, whole, in the thirty-first session): its split parses, its
    # presentations are listed (nothing is presented), and its Gemini 305 has no IR-pass filter (--ir-leak
    # allowed; the family renders the leak on every URI anyway).
    assert P.SPLITS[-4:] == ("twentieth", "twentyfirst", "twentysecond", "twentythird")
    assert "twentieth" in P.ir_leak_splits()
    _assert_split_lists_its_own_pools("twentieth", "gemini305", live=8)


@pytest.mark.slow
def test_each_twentieth_camera_enrols_its_projector_under_the_familys_enrolment_light():
    # Each camera of the twentieth's pool enrols (a board at 0.45 and 0.65 m, then the wall) under the
    # family's enrolment light, the winter vestibule with the quartz heater cycling on and off (its filament's
    # 850 nm on the board and the wall while hot), with the family's cornea and visible light in IR on.
    _assert_each_camera_enrols("twentieth", "quartz_heater")


def test_twentyfirst_split_is_accepted_and_lists_its_own_pools():
    # The twenty-first family (evaluated once, whole, in the thirty-second session): its split parses, its
    # presentations are listed (nothing is presented), and its Gemini 210 is rendered with an IR-pass filter
    # (--ir-leak refused).
    assert P.SPLITS[-3:] == ("twentyfirst", "twentysecond", "twentythird") and "twentyfirst" not in P.ir_leak_splits()
    _assert_split_lists_its_own_pools("twentyfirst", "gemini210", live=8)


@pytest.mark.slow
def test_each_twentyfirst_camera_enrols_its_projector_under_the_familys_enrolment_light():
    # Each camera of the twenty-first's pool enrols (a board at 0.45 and 0.65 m, then the wall) under the
    # family's enrolment light, the glazed lobby with the sunlit floor throwing daylight and its 850 nm up onto
    # the board and the wall (dimmed while people cross it), with the family's cornea on.
    _assert_each_camera_enrols("twentyfirst", "floor_bounce")


def test_twentysecond_split_is_accepted_and_lists_its_own_pools():
    # The twenty-second family (evaluated once, whole, in the thirty-third session): its split parses, its
    # presentations are listed (nothing is presented), and its D555 has no IR-pass filter (--ir-leak allowed; the
    # family renders the leak on every URI anyway).
    assert P.SPLITS[-2:] == ("twentysecond", "twentythird") and "twentysecond" in P.ir_leak_splits()
    _assert_split_lists_its_own_pools("twentysecond", "d555", live=8)


@pytest.mark.slow
def test_each_twentysecond_camera_enrols_its_projector_under_the_familys_enrolment_light():
    # Each camera of the twenty-second's pool enrols (a board at 0.45 and 0.65 m, then the wall) under the
    # family's enrolment light, the mall atrium with the gobo's snowflakes or stars and their 850 nm swept over
    # the board and the wall, with the family's leak and cornea on.
    _assert_each_camera_enrols("twentysecond", "gobo")


def test_twentythird_split_is_accepted_and_lists_its_own_pools():
    # The twenty-third family (evaluated once, whole, in the thirty-fourth session): its split parses, its
    # presentations are listed (nothing is presented), and its D435if carries an IR-pass filter (--ir-leak refused).
    assert P.SPLITS[-1] == "twentythird" and "twentythird" not in P.ir_leak_splits()
    _assert_split_lists_its_own_pools("twentythird", "d435if", live=8)


@pytest.mark.slow
def test_each_twentythird_camera_enrols_its_projector_under_the_familys_enrolment_light():
    # Each camera of the twenty-third's pool enrols (a board at 0.45 and 0.65 m, then the wall) under the
    # family's enrolment light, the event's dimmed downlights with the mirror ball's spots and their 850 nm sweeping
    # the board and the wall, with the family's cornea on; not under the fountain's caustics, whose swimming 850 nm
    # network drowns the dots' on-off difference (no technician enrols with the sun on the pool).
    assert POOLS["twentythird"].lights[0] == "caustics" and "caustics" in pad_enrolment.NO_WALL_LIGHTS
    _assert_each_camera_enrols("twentythird", "mirrorball")


def test_acceptances_that_came_only_after_a_light_prompt_are_counted_in_the_report(monkeypatch, capsys):
    # Issue 14 (twenty-fifth session, misc25): a person told TOO_BRIGHT_TO_VERIFY under sunflecks was
    # refused, stepped into shade (shade=1) and was accepted: the after-prompts BPCER counts one accepted
    # transaction, and nothing said that it took a refusal, a prompt and a second window. Now the report
    # counts the presentations accepted only after a light prompt, and after the shade step apart.
    from hil.commands.pad_eval import _print
    uris = [u for i in range(60) if "light=dappled_sun&" in (u := presentation_uri("eleventh", "live", i))][:4]
    assert len(uris) == 4

    def judged(p, *, frames, passive, gate, thresholds, dot_reference=True):
        q = _query(p.uri)
        base = {"v": pad_records.RECORD_VERSION, "key": p.key, "split": p.split, "kind": p.kind, "species": p.species,
                "index": p.index, "uri": p.uri, "passive": passive, "frames": frames, "source": "sim",
                "in_envelope": True, "quality": {"complete": True, "framesets": 6}}
        refused = {**base, "outcome": "rejected", "verdict": "inconclusive", "score": 0.3}
        live = {**base, "outcome": "accepted", "verdict": "live", "score": 0.9}
        if p.index == 0:
            return live                                                   # no prompt at all
        if p.index == 1:                                                  # accepted in the shade
            return live if q.get("shade") == "1" else {**refused, "prompt": "TOO_BRIGHT_TO_VERIFY"}
        if p.index == 2:                                                  # still inconclusive in the shade
            return {**refused, "prompt": "TOO_BRIGHT_TO_VERIFY"} if "t0_s" not in q else refused
        return live if "t0_s" in q else {**refused, "prompt": "LIGHT_CHANGED"}   # accepted on a later try

    monkeypatch.setattr(pad_records, "run_presentation", judged)
    items = [Presentation("bona_fide", "live", "eleventh", i, u) for i, u in enumerate(uris)]
    out = pad_records.run(items, frames=32, passive=False, thresholds=VerdictThresholds(), follow_prompts=2)
    assert [len(r["attempts"]) for r in out] == [1, 2, 3, 2]
    rep = pad_report.report(out, split="eleventh", passive=False, live_min=0.5, threshold_source="test", frames=32,
                            follow_prompts=2)
    assert rep["bpcer"] == pytest.approx(1 / 4) and rep["first_attempt"]["bpcer"] == pytest.approx(3 / 4)
    lp = rep["prompts_followed"]["bona_fide"]["light_prompts"]
    assert lp == {"retried": 3, "answers": {"dimmer": 1, "retry": 1, "shade": 2}, "accepted_only_after_one": 2,
                  "accepted_only_after_shade": 1, "after_shade": {"accepted": 1, "inconclusive": 1}, "stopped": {}}
    _print(rep)
    text = capsys.readouterr().out
    assert "retried after a light prompt 3" in text and "accepted only after one 2" in text
    assert "after stepping into shade 1" in text


def test_a_person_told_to_take_off_their_cap_does_and_tries_again():
    # FACE_HEADWEAR (a brim over the eyes): the cap comes off (``cap=0``), nothing else of the
    # presentation changes; a URI that already names ``cap`` has it set to 0 in its place.
    uri = presentation_uri("sixteenth", "live", 10)
    off = pad_prompts.followed_uri(uri, "FACE_HEADWEAR", 1)
    assert off == f"{uri}&cap=0"
    assert pad_prompts.followed_uri(off, "FACE_HEADWEAR", 2) == off
    assert pad_prompts.followed_uri(uri + "&cap=1&seed=3", "FACE_HEADWEAR", 1) == uri + "&cap=0&seed=3"
    calls: list[str] = []

    def attempt(p):
        calls.append(p.uri)
        base = {"key": p.key, "kind": p.kind, "uri": p.uri, "camera_s": 1.0}
        if "cap=0" not in p.uri:
            return {**base, "outcome": "not_acquired", "reason": "FACE_HEADWEAR"}
        return {**base, "outcome": "accepted", "verdict": "live"}

    for kind, species in (("bona_fide", "live"), ("attack", "mask")):     # an attacker takes it off too
        calls.clear()
        out = pad_prompts.run_following(Presentation(kind, species, "sixteenth", 10, uri), 2, attempt)
        assert [a["outcome"] for a in out["attempts"]] == ["not_acquired", "accepted"]
        assert calls == [uri, off] and out["final_uri"] == off
    # FACE_OCCLUDED is no prompt a step answers: nothing followed.
    calls.clear()
    assert len(pad_prompts.run_following(Presentation("bona_fide", "live", "sixteenth", 10, uri), 2,
                                         lambda p: {"key": p.key, "kind": p.kind, "uri": p.uri,
                                                    "outcome": "not_acquired", "reason": "FACE_OCCLUDED"}
                                         )["attempts"]) == 1
