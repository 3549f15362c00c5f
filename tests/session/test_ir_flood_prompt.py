"""The prompt after a verdict an infrared light the person cannot see kept from live (issue 14, misc26).

On main 4d96aa7 a face at night under a CCTV dome's 850 nm flood (the ninth family) whose material the
flood's pattern kept from being measured was told ``TOO_BRIGHT_TO_VERIFY`` ("move out of the bright
light"): wrong advice on a face lit by 15-150 lux, where nothing looks bright and no step leaves the flood.
Now the face's illuminance (the gate's estimate, a calibrated camera) says when no visible light can have
hidden the projector: ``IR_FLOOD_CANNOT_VERIFY``, which the person cannot act on and the operator can."""

from __future__ import annotations

import json

import pytest

from agent.liveness.challenge import DROWNED_DETAIL, SWEPT_DETAIL, WEAK_SCREEN_DETAIL
from agent.liveness.features import MIN_PROJECTOR_SHARE
from agent.liveness.fusion import LivenessVerdict
from agent.observe.ledger import last_sessions
from agent.quality.settings import QualityThresholds
from agent.session.events import (
    IR_FLOOD_CANNOT_VERIFY,
    IR_FLOOD_MAX_LUX,
    LIGHT_CHANGED,
    TOO_BRIGHT_TO_VERIFY,
    invisible_light,
    verdict_prompt,
)
from drivers.sim.sensor import DOT_IRRADIANCE
from hil import pad_presentations, pad_prompts, pad_records, pad_report
from tests.helpers.blackbody import nir_mw_per_lux
from tests.session.test_material_prompt import LIVE_MIN, OTHERS, PATTERNED, verdict


def test_under_the_threshold_no_visible_light_the_spec_admits_can_drown_the_dots():
    # The richest 850 nm per lux the gate lets through: a black body at its lowest colour temperature.
    cct_min = QualityThresholds().cct_min
    share = 0.35 * nir_mw_per_lux(cct_min) / nir_mw_per_lux(3000.0)        # the sim's scale: 3000 K is 0.35
    assert cct_min == 2300.0 and share == pytest.approx(0.81, abs=0.01)
    # Ambient NIR at the projector's own level (its share of the skin's IR light at MIN_PROJECTOR_SHARE)
    # needs this much visible light; the threshold keeps a margin under it for the estimate's error.
    drowning_lux = DOT_IRRADIANCE * (1 - MIN_PROJECTOR_SHARE) / MIN_PROJECTOR_SHARE / share
    assert drowning_lux == pytest.approx(370, abs=5)
    assert IR_FLOOD_MAX_LUX * 1.8 < drowning_lux
    # Not a dark scene the gate would refuse: every face in the capture envelope (15 lux up) can be one.
    assert QualityThresholds().lux_min < IR_FLOOD_MAX_LUX


def test_a_dim_face_whose_material_the_light_hid_is_told_the_terminal_cannot_verify_here():
    v = verdict("inconclusive", OTHERS, PATTERNED)
    assert verdict_prompt(v, LIVE_MIN, 60.0) is IR_FLOOD_CANNOT_VERIFY
    assert verdict_prompt(v, LIVE_MIN, IR_FLOOD_MAX_LUX - 1) is IR_FLOOD_CANNOT_VERIFY
    # Bright enough for a visible light to be the cause (blinds, sun): move out of it, as before.
    assert verdict_prompt(v, LIVE_MIN, IR_FLOOD_MAX_LUX) is TOO_BRIGHT_TO_VERIFY
    assert verdict_prompt(v, LIVE_MIN, 1500.0) is TOO_BRIGHT_TO_VERIFY
    # A camera without a lux calibration measures none: unchanged (the prompt prompt25 gave).
    for unknown in (None, float("nan"), float("inf"), -5.0):
        assert not invisible_light(unknown)
        assert verdict_prompt(v, LIVE_MIN, unknown) is TOO_BRIGHT_TO_VERIFY
    assert verdict_prompt(v, LIVE_MIN) is TOO_BRIGHT_TO_VERIFY
    # An attack is told nothing, dim or not; light that moved keeps LIGHT_CHANGED (a retry helps there).
    assert verdict_prompt(verdict("attack", OTHERS, PATTERNED), LIVE_MIN, 60.0) is None
    moved = {"speckle_contrast": 0.17264, "projector_speckle": 0.17707, "projector_speckle_low": 0.1625,
             "projector_speckle_high": 0.19053, "projector_pairs": 10.0, "projector_share": 0.55141,
             "projector_snr": 28.95578, "projector_pattern_checked": 1.0, "projector_unshaped_pairs": 4.0}
    assert verdict_prompt(verdict("inconclusive", OTHERS, moved), LIVE_MIN, 60.0) is LIGHT_CHANGED
    assert IR_FLOOD_CANNOT_VERIFY.code == "IR_FLOOD_CANNOT_VERIFY" and "staff" in IR_FLOOD_CANNOT_VERIFY.en


def test_a_challenge_the_light_left_unmeasurable_on_a_dim_face():
    # The projector's dots drowned (not measurable), the screen's colours followed: an infrared light.
    drowned = {"passed": False, "kinds": ["illumination", "projector"], "illumination": {"passed": True},
               "projector": {"passed": False, "measurable": False, "detail": DROWNED_DETAIL}}

    def v(challenge):
        return LivenessVerdict("inconclusive", 0.45, OTHERS, [], {}, True, challenge, {}, [], {})
    assert verdict_prompt(v(drowned), LIVE_MIN, 1500.0) is TOO_BRIGHT_TO_VERIFY
    assert verdict_prompt(v(drowned), LIVE_MIN, 40.0) is IR_FLOOD_CANNOT_VERIFY
    assert verdict_prompt(v(drowned), LIVE_MIN, float("nan")) is TOO_BRIGHT_TO_VERIFY
    # The screen's challenge too weak on the face as well: the visible room's light (an infrared light
    # never weakens the screen's colours), TOO_BRIGHT_TO_VERIFY whatever the lux.
    both = {**drowned, "illumination": {"passed": False, "measurable": False, "detail": WEAK_SCREEN_DETAIL}}
    assert verdict_prompt(v(both), LIVE_MIN, 40.0) is TOO_BRIGHT_TO_VERIFY
    # A passing light's drift keeps LIGHT_CHANGED (the person waits; the flood does not pass).
    swept = {**drowned, "projector": {**drowned["projector"], "detail": SWEPT_DETAIL}}
    assert verdict_prompt(v(swept), LIVE_MIN, 40.0) is LIGHT_CHANGED
    # A contradiction, dim or not, is told nothing.
    contradicted = {**drowned, "projector": {"passed": False, "measurable": True, "detail": "x"}}
    assert verdict_prompt(v(contradicted), LIVE_MIN, 40.0) is None


def test_pad_evals_person_told_so_tries_no_more_and_is_counted():
    rec = {"outcome": "rejected", "prompt": IR_FLOOD_CANNOT_VERIFY.code, "kind": "bona_fide", "verdict": "inconclusive",
           "score": 0.45, "uri": "sim://?family=train&lux=60", "attempts": [{}]}
    assert pad_prompts._prompt_to_follow(rec) is None
    tries = []

    def attempt(p):
        tries.append(p.uri)
        return {**rec, "uri": p.uri}
    p = pad_presentations.Presentation(kind="bona_fide", species="live", split="train", index=0, uri=rec["uri"])
    out = pad_prompts.run_following(p, 2, attempt)
    assert len(tries) == 1 and len(out["attempts"]) == 1
    assert pad_report.light_prompts([out], LIVE_MIN)["stopped"] == {IR_FLOOD_CANNOT_VERIFY.code: 1}
    # pad-eval's gate estimates the face's lux as a calibrated kiosk's would, and refuses none for it.
    gate = pad_records.kiosk_gate()
    assert gate.lux_k("any-serial") is not None
    t = gate.settings.thresholds_for()
    assert t.lux_min == 0.0 and t.lux_max >= 100000.0


def test_pad_evals_attacker_told_so_tries_again_as_the_lockout_allows():
    # review 27: "ask staff" binds a customer, not an attacker. The prompt comes after the strike and the
    # kiosk starts a new session for anyone the lockout leaves tries, so pad-eval's attacker presses retry
    # (the same place and light, later); on main it stopped as the person does, and the after-prompts
    # APCER counted refused the attempts a real attacker would still make.
    for kind, species in (("attack", "silicone_mask"), ("injection", "splice")):
        rec = {"outcome": "rejected", "prompt": IR_FLOOD_CANNOT_VERIFY.code, "kind": kind, "verdict": "inconclusive",
               "score": 0.45, "uri": "sim://?family=ninth&light=cctv_ir&lux=60", "camera_s": 1.5, "attempts": [{}]}
        assert pad_prompts._prompt_to_follow(rec) == IR_FLOOD_CANNOT_VERIFY.code
        tries: list[str] = []

        def attempt(p, rec=rec, tries=tries):
            tries.append(p.uri)
            return {**rec, "uri": p.uri}
        p = pad_presentations.Presentation(kind=kind, species=species, split="ninth", index=0, uri=rec["uri"])
        out = pad_prompts.run_following(p, 2, attempt)
        assert len(tries) == 3 and len(out["attempts"]) == 3
        assert tries[1] == rec["uri"] + "&t0_s=4.5" and tries[2] == rec["uri"] + "&t0_s=9.0"   # retried, not moved
        told = pad_report.light_prompts([out], LIVE_MIN)
        assert told["stopped"] == {} and told["answers"] == {"retry": 2} and told["retried"] == 1


def test_the_operator_sees_the_prompt_in_the_audit_tail(tmp_path):
    log = tmp_path / "audit.jsonl"
    entries = [
        {"event": "session_start", "ts": "2026-12-06T20:00:00Z", "data": {"session_id": "s1", "purpose": "verify",
                                                                          "channel": "kiosk"}},
        {"event": "result", "data": {"session_id": "s1", "accepted": False, "reason": "NOT_LIVE",
                                     "verdict": "inconclusive", "prompt": IR_FLOOD_CANNOT_VERIFY.code}},
        {"event": "session_start", "ts": "2026-12-06T20:01:00Z", "data": {"session_id": "s2", "purpose": "verify",
                                                                          "channel": "kiosk"}},
        {"event": "result", "data": {"session_id": "s2", "accepted": False, "reason": "NOT_LIVE",
                                     "verdict": "inconclusive", "prompt": "please call 555-0100"}},
    ]
    log.write_text("".join(json.dumps(e) + "\n" for e in entries))
    rows = last_sessions(log)
    assert [r.prompt for r in rows] == ["", IR_FLOOD_CANNOT_VERIFY.code]     # free text is never carried on


def test_diagnose_never_advises_switching_an_illuminator_off(tmp_path):
    # review26b: an attacker's own 850 nm lamp on a dim face reads as a CCTV flood; the operator's advice
    # must not have him switch the site's night camera's illuminator off on the refusals' word.
    import dataclasses

    from agent.commands.diagnose import Diagnosis
    from agent.config import Settings
    from agent.security.audit import AuditLog
    from agent.security.keys import generate_file_key
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, generate_file_key(tmp_path / "k.pem"))
    sid = "5e551011-0000-0000-0000-000000000001"
    log.record("session_start", session_id=sid, purpose="verify", channel="kiosk")
    log.record("result", session_id=sid, accepted=False, reason="NOT_LIVE", verdict="inconclusive",
               prompt=IR_FLOOD_CANNOT_VERIFY.code)
    log.record("session_end", session_id=sid, stage="liveness", elapsed_ms=900.0)
    log.close()
    s = dataclasses.replace(Settings(), audit=dataclasses.replace(Settings().audit, path=str(path)))
    note = Diagnosis("sim://", s, True, 10).sessions()["note"]
    assert "1 of these sessions refused under an infrared flood" in note
    assert "a lamp held by someone at the kiosk makes the same refusal" in note and "never switch it off" in note
