"""``audit-verify`` against the ways a log is doctored by someone who can rewrite the file but not
sign with the terminal's key: checkpoints removed, entries removed with the chain recomputed, the
end cut off, the whole log replaced. Each exits non-zero with its code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from agent.security import audit
from agent.security.audit import GENESIS, AuditLog, entry_hash
from agent.security.keys import generate_file_key


@pytest.fixture
def signed_log(tmp_path):
    """A log of 40 entries with a checkpoint every 10, closed (so it ends with a checkpoint)."""
    signer = generate_file_key(tmp_path / "terminal.pem")
    log = AuditLog(tmp_path / "audit.jsonl", signer, checkpoint_every=10)
    anchors = []
    for i in range(40):
        log.record("error" if i % 7 == 3 else "result", n=i)
        if i == 24:
            anchors.append(log.anchor())                  # as a probe would carry it
    log.close()
    pub = tmp_path / "terminal.pub.pem"
    pub.write_bytes(signer.public_key_pem())
    return tmp_path / "audit.jsonl", signer, pub, anchors


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def rewrite(path, entries) -> None:
    """What an attacker without the key can do: re-number, re-chain and re-hash every entry."""
    prev = GENESIS
    out = []
    for seq, e in enumerate(entries):
        e = {k: v for k, v in e.items() if k != "hash"}
        e["seq"], e["prev"] = seq, prev
        e["hash"] = prev = entry_hash(e)
        out.append(json.dumps(e, sort_keys=True, separators=(",", ":")))
    path.write_text("\n".join(out) + "\n")


def cli(path, pub, *extra):
    return subprocess.run([sys.executable, "-m", "agent.cli", "audit-verify", str(path), "--public-key", str(pub),
                           *extra], capture_output=True, text=True, timeout=60)


def test_an_intact_log_verifies_with_its_anchor(signed_log):
    path, signer, pub, anchors = signed_log
    a = anchors[0]
    rep = audit.verify(path, signer.public_key(), anchors=[(a.seq, a.head)], max_unsigned_tail=0)
    assert rep.checkpoints >= 4 and rep.unsigned_tail == 0 and rep.anchors_checked == 1
    assert rep.log_id == lines(path)[0]["hash"] == a.log_id
    out = cli(path, pub, "--anchor", f"{a.seq}:{a.head}", "--max-unsigned", "0")
    assert out.returncode == 0 and "audit log intact" in out.stdout, out.stderr


def test_checkpoints_and_errors_removed_with_the_chain_recomputed(signed_log):
    path, signer, pub, _ = signed_log
    rewrite(path, [e for e in lines(path) if e["event"] not in ("checkpoint", "error")])
    out = cli(path, pub)
    assert out.returncode == 2 and "error[AUD_UNSIGNED]" in out.stderr, out.stdout + out.stderr
    with pytest.raises(audit.AuditUnsigned):
        audit.verify(path, signer.public_key())


def test_entries_removed_with_the_chain_recomputed_and_checkpoints_kept(signed_log):
    path, _, pub, _ = signed_log
    rewrite(path, [e for e in lines(path) if e["event"] != "error"])
    out = cli(path, pub)
    assert out.returncode == 2 and "error[AUD_CORRUPT]" in out.stderr and "not signed" in out.stderr


def test_the_end_cut_off_is_caught_by_the_servers_anchor(signed_log):
    path, signer, pub, anchors = signed_log
    a = anchors[0]
    kept = lines(path)[: a.seq - 3]                     # cut before the anchored entry
    path.write_text("".join(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n" for e in kept))
    out = cli(path, pub, "--anchor", f"{a.seq}:{a.head}")
    assert out.returncode == 2 and "error[AUD_TRUNCATED]" in out.stderr, out.stdout + out.stderr
    # Without the anchor only the unsigned tail gives it away, and only beyond the allowed length.
    with pytest.raises(audit.AuditUnsigned):
        audit.verify(path, signer.public_key(), max_unsigned_tail=0)


def test_a_replaced_log_does_not_hold_the_anchor(signed_log, tmp_path):
    path, signer, pub, anchors = signed_log
    path.unlink()
    fresh = AuditLog(path, signer, checkpoint_every=10)      # started afresh, signed with the real key
    for i in range(40):
        fresh.record("result", n=i)
    fresh.close()
    a = anchors[0]
    assert audit.verify(path, signer.public_key()).log_id != a.log_id
    out = cli(path, pub, "--anchor", f"{a.seq}:{a.head}")
    assert out.returncode == 2 and "error[AUD_TRUNCATED]" in out.stderr


def test_a_long_unsigned_tail_and_a_missing_key_are_refused(signed_log, tmp_path):
    path, signer, pub, _ = signed_log
    log = AuditLog(path, None)                             # entries appended without a signer
    for i in range(5):
        log.record("result", n=i)
    log.close()
    assert audit.verify(path, signer.public_key()).unsigned_tail == 5
    out = cli(path, pub, "--max-unsigned", "4")
    assert out.returncode == 2 and "error[AUD_UNSIGNED]" in out.stderr
    out = subprocess.run([sys.executable, "-m", "agent.cli", "audit-verify", str(path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "--public-key" in out.stderr       # a chain alone proves nothing
    out = cli(path, pub, "--anchor", "12:nothex")
    assert out.returncode == 2 and "error[AUD_ERROR]" in out.stderr


def test_an_anchor_covers_everything_logged_so_far(tmp_path):
    signer = generate_file_key(tmp_path / "k.pem")
    log = AuditLog(tmp_path / "a.jsonl", signer, checkpoint_every=1000)
    assert log.anchor().seq == 0                            # an empty log gets a first entry to sign
    log.record("session_start", session_id="s")
    a = log.anchor()
    assert (a.seq, a.head) == (2, lines(tmp_path / "a.jsonl")[2]["hash"])
    assert log.anchor() == a                                # nothing new: the same checkpoint
    log.close()
    resumed = AuditLog(tmp_path / "a.jsonl", signer)
    assert resumed.log_id == a.log_id and resumed.anchor().seq > a.seq
    resumed.close()


def test_a_refused_record_is_written_as_a_fixed_size_audit_refused_entry_and_never_raises(tmp_path, caplog):
    # misc25, review24's finding: a record the audit log may not take (a string over MAX_STRING, a biometric
    # field, a nested value, a bad name) raised AUD_REFUSED to its caller, which lost the record and,
    # in a session, turned a delivered verdict into an error. Now an audit_refused entry (names and
    # codes only, never a refused value) is written in its place, counted, and the caller goes on.
    signer = generate_file_key(tmp_path / "terminal.pem")
    log = AuditLog(tmp_path / "audit.jsonl", signer, checkpoint_every=4)
    sid = "5e551011-0000-0000-0000-000000000001"
    secret = "SECRET-" + "x" * 300
    calls = [
        (("result",), {"session_id": sid, "accepted": True, "reason": secret}, "TOO_LONG", "result", "reason", sid),
        (("frame_seen",), {"session_id": sid, "pixels": "SECRET-pixels"}, "BIOMETRIC_FIELD", "frame_seen", "pixels",
         sid),
        (("projector",), {"session_id": sid, "plan": {"SECRET-nested": 1}}, "NOT_SCALAR", "projector", "plan", sid),
        (("e" * 65,), {"session_id": sid}, "EVENT_NAME", None, None, sid),
        (("consent",), {"SECRET-" + "k" * 65: 1, "session_id": sid}, "FIELD_NAME", "consent", None, sid),
        (("result",), {"session_id": "SECRET-" + "s" * 300}, "TOO_LONG", "result", "session_id", None),
    ]
    for args, data, problem, event, field, kept_sid in calls:
        entry = log.record(*args, **data)                 # never raises
        assert entry["event"] == audit.REFUSED_EVENT
        assert entry["data"] == {"code": "AUD_REFUSED", "problem": problem, "refused_event": event, "field": field,
                                 "session_id": kept_sid}
    assert log.record("result", session_id=sid, accepted=True, reason="OK")["event"] == "result"
    assert log.refusals() == {"TOO_LONG": 2, "BIOMETRIC_FIELD": 1, "NOT_SCALAR": 1, "EVENT_NAME": 1, "FIELD_NAME": 1}
    log.close()
    pub = tmp_path / "terminal.pub.pem"
    pub.write_bytes(signer.public_key_pem())
    rep = audit.verify(tmp_path / "audit.jsonl", signer.public_key(), max_unsigned_tail=0)   # chained and signed
    assert rep.entries == len(calls) + 1 + rep.checkpoints
    text = (tmp_path / "audit.jsonl").read_text()
    assert "SECRET" not in text and "SECRET" not in caplog.text      # nothing refused reaches the file or the log
    assert max(len(json.dumps(e["data"])) for e in lines(tmp_path / "audit.jsonl")
               if e["event"] == audit.REFUSED_EVENT) < 5 * audit.MAX_NAME + 100    # fixed size



def test_a_value_or_name_that_is_not_utf8_text_is_refused_not_raised(tmp_path):
    # review26: a string holding a lone surrogate (what Python makes of an undecodable byte in a name
    # read from the OS, or of a "\\udc80" escape in JSON) passed ``clean`` and then raised
    # UnicodeEncodeError as the entry was written: out of ``record``, past misc25's audit_refused entry
    # (in a session: out of run_capture's handler, as its ``error`` record quoted an exception's message,
    # in place of the Error event). Now it is refused like any other, NOT_TEXT, and nothing of it is written.
    sid = "5e551011-0000-0000-0000-000000000002"
    signer = generate_file_key(tmp_path / "terminal.pem")
    log = AuditLog(tmp_path / "audit.jsonl", signer)
    entry = log.record("error", session_id=sid, code="DEV_LOST", message="camera \udc80\udcff lost")
    assert entry["data"] == {"code": "AUD_REFUSED", "problem": "NOT_TEXT", "refused_event": "error",
                             "field": "message", "session_id": sid}
    # A name that is not text is not repeated in the entry either (it would raise there in turn).
    entry = log.record("error", **{"message\udc80": "x", "session_id": sid})
    assert entry["data"]["problem"] == "FIELD_NAME" and entry["data"]["field"] is None
    entry = log.record("result\udc80", session_id="s\udc80")
    assert entry["data"]["refused_event"] is None and entry["data"]["session_id"] is None
    assert log.refusals() == {"NOT_TEXT": 1, "FIELD_NAME": 1, "EVENT_NAME": 1}
    log.close()
    audit.verify(tmp_path / "audit.jsonl", signer.public_key(), max_unsigned_tail=0)   # chained and signed
    assert "\\udc" not in (tmp_path / "audit.jsonl").read_text()
