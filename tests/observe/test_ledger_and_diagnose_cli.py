"""The last sessions read back from a real audit log (agent/observe/ledger.py): outcomes and stage
timings, nothing that ties a row to a person; and ``capture-agent diagnose`` without ``--web``."""

from __future__ import annotations

import dataclasses
import json

from agent.cli import main
from agent.observe.ledger import last_sessions
from agent.security.audit import AuditLog
from agent.security.keys import generate_file_key


def write_sessions(path, n: int) -> None:
    log = AuditLog(path, generate_file_key(path.parent / "k.pem"))
    for i in range(n):
        sid = f"5e551011-0000-0000-0000-{i:012d}"
        log.record("session_start", session_id=sid, purpose="verify", channel="kiosk", subject="subj:ab12",
                   business_ref=None)
        log.record("consent", session_id=sid, consent_ref="consent:cd34")
        if i % 3 == 0:
            log.record("result", session_id=sid, accepted=True, reason="OK", probe_id=f"probe-{i}", counter=i,
                       verdict="live", score=0.93, total_ms=1500.0, within_budget=True)
            log.record("session_end", session_id=sid, stage="submit", elapsed_ms=1501.0, quality_ms=400.0,
                       liveness_ms=50.0, total_ms=1500.0)
        elif i % 3 == 1:
            log.record("error", session_id=sid, stage="challenge", code="UPL_UNAVAILABLE", message="down")
            log.record("session_end", session_id=sid, stage="challenge", elapsed_ms=900.0, quality_ms=450.0)
        else:
            log.record("session_end", session_id=sid, stage="capture", elapsed_ms=20.0)    # the caller hung up
    log.close()


def test_outcomes_and_timings_newest_first_and_nothing_personal(tmp_path):
    path = tmp_path / "audit.jsonl"
    write_sessions(path, 7)
    rows = last_sessions(path, 5)
    assert len(rows) == 5
    assert [r.outcome for r in rows] == ["accepted", "abandoned", "error", "accepted", "abandoned"]
    assert rows[0].reason == "OK" and rows[0].verdict == "live" and rows[0].within_budget is True
    assert rows[0].timings_ms == {"elapsed": 1501.0, "quality": 400.0, "liveness": 50.0, "total": 1500.0}
    assert rows[2].reason == "UPL_UNAVAILABLE" and rows[2].ended_in == "challenge"
    text = json.dumps([r.to_dict() for r in rows])
    for secret in ("subj:", "consent:", "probe-", "5e551011", "0.93"):
        assert secret not in text


def test_a_refused_sessions_challenge_code_is_shown_and_nothing_else_of_it(tmp_path):
    # Review 23: why the challenge failed, as the result record's stable code; the log is read, not
    # verified, so anything that is not such a code (free text, a number) is dropped.
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, generate_file_key(tmp_path / "k.pem"))
    written = ["SCREEN_FLICKER", "SCREEN_WEAK+PROJECTOR_DROWNED", None, "the face: looked like Bob", 7]
    for i, code in enumerate(written):
        sid = f"5e551011-0000-0000-0000-{i:012d}"
        log.record("session_start", session_id=sid, purpose="verify", channel="kiosk")
        log.record("result", session_id=sid, accepted=False, reason="NOT_LIVE", verdict="inconclusive", score=0.4,
                   challenge_passed=False, challenge_detail=code)
        log.record("session_end", session_id=sid, stage="liveness", elapsed_ms=900.0)
    log.close()
    rows = last_sessions(path, 10)
    assert [r.challenge for r in reversed(rows)] == ["SCREEN_FLICKER", "SCREEN_WEAK+PROJECTOR_DROWNED", "", "", ""]
    assert "Bob" not in json.dumps([r.to_dict() for r in rows])


def test_a_tail_that_cuts_a_session_drops_it(tmp_path):
    path = tmp_path / "audit.jsonl"
    write_sessions(path, 30)
    full = last_sessions(path, 100)
    cut = last_sessions(path, 100, max_bytes=4000)
    assert len(full) == 30 and 0 < len(cut) < 30
    assert [r.to_dict() for r in cut] == [r.to_dict() for r in full[:len(cut)]]


def test_diagnose_prints_device_checklist_and_sessions(tmp_path, capsys):
    write_sessions(tmp_path / "audit.jsonl", 2)
    (tmp_path / "agent.toml").write_text('[camera]\nuris = ["sim://?seed=21&identity=0&lux=300"]\n'
                                         '[audit]\npath = "audit.jsonl"\n[local_api]\nsocket = "none.sock"\n')
    assert main(["diagnose", "--config", str(tmp_path / "agent.toml"), "--frames", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["uri"].startswith("sim://") and out["device"]["serial"] == "SIM0000000001"
    checks = {c["check"] for c in out["checks"]}
    # without a measured lux calibration, §7.5 d is judged as the face's exposure (docs/quality.md)
    assert checks >= {"depth_fps", "rgb_depth_sync", "lux_calibration", "exposure_response_300"}
    assert [r["outcome"] for r in out["sessions"]["rows"]] == ["error", "accepted"]
    assert out["agent"]["daemon"]["text"].startswith("not running")
    assert main(["diagnose", "--config", str(tmp_path / "agent.toml"), "--frames", "5"]) == 0
    text = capsys.readouterr().out
    assert "[x] PASS" in text and "last sessions" in text and "UPL_UNAVAILABLE" in text


def test_diagnose_needs_a_camera(capsys):
    assert main(["diagnose"]) == 2
    assert "error[AGT_USAGE]" in capsys.readouterr().err


def test_a_refused_record_shows_in_its_sessions_row_and_in_the_logs_count(tmp_path):
    # misc25, review24's finding: a record the audit log refused stands as an audit_refused entry; the installer
    # sees it: the session whose result was refused reads "unrecorded" (before: "abandoned", as if the
    # caller had hung up), and the refusals are counted over the tail, the daemon's own included.
    from agent.commands.diagnose import Diagnosis
    from agent.config import Settings
    from agent.observe.ledger import audit_refusals
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, generate_file_key(tmp_path / "k.pem"))
    log.record("agent_start", camera="sim://" + "x" * 300)
    for i, reason in enumerate(["OK", "R" * 300]):
        sid = f"5e551011-0000-0000-0000-{i:012d}"
        log.record("session_start", session_id=sid, purpose="verify", channel="kiosk")
        log.record("result", session_id=sid, accepted=True, reason=reason, verdict="live")
        log.record("session_end", session_id=sid, stage="submit", elapsed_ms=900.0)
    log.close()
    refused, ok = last_sessions(path, 10)
    assert (ok.outcome, ok.reason, ok.unrecorded) == ("accepted", "OK", [])
    assert (refused.outcome, refused.reason, refused.unrecorded) == ("unrecorded", "AUD_REFUSED", ["result"])
    counted = audit_refusals(path)
    assert counted["count"] == 2
    assert [(r["refused_event"], r["field"], r["problem"]) for r in counted["last"]] == [
        ("agent_start", "camera", "TOO_LONG"), ("result", "reason", "TOO_LONG")]
    s = dataclasses.replace(Settings(), audit=dataclasses.replace(Settings().audit, path=str(path)))
    shown = Diagnosis("sim://", s, True, 10).sessions()
    assert "2 audit record(s) refused" in shown["note"] and shown["audit_refused"]["count"] == 2
    assert "RRRR" not in json.dumps(shown) and "xxxx" not in json.dumps(shown)
