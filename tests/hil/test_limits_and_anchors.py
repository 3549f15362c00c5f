"""The reference server's own failure limits per subject and per terminal (``hil/ingest/limits.py``)
and its copy of each terminal's audit anchor (``hil/ingest/anchors.py``), over the real mTLS
server of the shared ``ingest`` fixture with sealed, signed probes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import drivers
from agent.liveness.challenge import Challenge
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import frameset_digest, judge
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import FramesetReader
from agent.purpose import Purpose
from agent.security.audit import AuditLog
from agent.security.keys import generate_file_key
from agent.session.projector import Projector
from agent.session.window import collect
from agent.uplink.client import challenge_names
from agent.uplink.probe import build_header, build_payload, seal_probe
from hil.ingest import limits as limits_mod
from hil.ingest.anchors import AnchorStore
from hil.ingest.limits import FailureLimits, subject_at_terminal_key, terminal_key
from hil.ingest.store import MemoryStore, NonceRecord
from tests.helpers.live import ATTEMPTS
from tests.helpers.lockout import locked_out
from tests.helpers.terminals import CAPS, OTHER_TERMINAL, TERMINAL


def subject_key(ref: str) -> str:
    return limits_mod.subject_key(ref, b"k" * 32)


def test_limits_off_charge_and_lock_nothing_and_a_limit_a_store_cannot_count_to_is_refused():
    store, off, now = MemoryStore(), FailureLimits(max_failures=0), 1_000_000_000
    assert off.charge("t1", subject_key("c")) is None
    off.record(store, "t1", subject_key("c"), now)
    assert store.failures(terminal_key("t1"), now, off.window_ms) == 0
    assert _charge(store, off, "t1", subject_key("c"), now) is None    # issued, and nothing counted
    assert store.failures(subject_key("c"), now, off.window_ms) == 0
    # Off, a use still settles what was charged before (a reload to 0): every key, refund or keep.
    assert off.settle("t1", subject_key("c"), accepted=True).keys == (
        terminal_key("t1"), subject_key("c"), subject_at_terminal_key(subject_key("c"), "t1"))
    for bad in ({"max_failures": 65}, {"max_terminal_failures": 65}, {"max_subject_failures": 65}):
        with pytest.raises(ValueError, match="1..64"):
            FailureLimits(**bad)                         # the store keeps 64 per key: never reached, no lockout
    with pytest.raises(ValueError, match="exceed max_failures"):
        FailureLimits(max_failures=5, max_subject_failures=5)   # one terminal would lock the subject everywhere


def _charge(store: MemoryStore, lim: FailureLimits, terminal: str, subject: str, now: int) -> str | None:
    """Issue one challenge as ``BeginCapture`` does (``Store.issue_nonce``: checked, then charged, in
    one step); the key at its limit (nothing charged), or None (charged)."""
    rec = NonceRecord(terminal, "s", 2, "k", now, now + 60_000, subject=subject)
    return store.issue_nonce(os.urandom(32), rec, now, lim.charge(terminal, subject), os.urandom(32)).locked


def test_limits_count_per_terminal_per_subject_and_per_subject_at_a_terminal():
    store = MemoryStore()
    lim = FailureLimits(max_failures=2, window_s=60, max_terminal_failures=3, max_subject_failures=3)
    now = 1_000_000_000
    cust9 = subject_key("cust-9")
    assert cust9.startswith("subject:") and "cust-9" not in cust9       # a digest, not the reference
    assert subject_key("") == ""                                        # no subject named: the terminal only
    assert [k for k, _ in lim.keys("t1", "")] == [terminal_key("t1")]
    for k in range(2):
        assert _charge(store, lim, "t1", cust9, now + k) is None
    assert _charge(store, lim, "t1", cust9, now + 2) == subject_at_terminal_key(cust9, "t1")  # refused, uncharged
    assert store.failures(subject_at_terminal_key(cust9, "t1"), now + 2, lim.window_ms) == 2
    assert _charge(store, lim, "t1", "", now + 2) is None                # others at t1 are served
    assert _charge(store, lim, "t1", "", now + 3) == terminal_key("t1")
    # A failure outside a settlement (record) counts on the terminal's own keys, never the subject's
    # fleet-wide one (review 10): t2's recorded failures do not lock the subject out elsewhere ...
    for k in range(5):
        lim.record(store, "t2", cust9, now + 3, member=f"m{k}")
    assert store.failures(terminal_key("t2"), now + 3, lim.window_ms) == 5
    assert store.failures(subject_at_terminal_key(cust9, "t2"), now + 3, lim.window_ms) == 5
    assert store.failures(cust9, now + 3, lim.window_ms) == 2
    assert _charge(store, lim, "t3", cust9, now + 3) is None             # ... a second terminal's charge ...
    assert _charge(store, lim, "t4", cust9, now + 4) == cust9            # ... locks it on every terminal
    assert _charge(store, lim, "t4", subject_key("cust-10"), now + 4) is None
    assert _charge(store, lim, "t1", cust9, now + 61_000) is None        # the window has moved on


def capture(ingest, gate, subject, begin):
    cam = drivers.open(f"sim://?realtime=0&seed=21&identity=3&lux=150&subject={subject}")
    with cam:
        challenge = Challenge.from_nonce(begin.nonce, begin.frames, kinds=challenge_names(begin.challenges))
        sets = collect(FramesetReader(cam), begin.frames, challenge, Projector(cam), per_frameset=True)
    return sets, judge(sets, gate, VerdictThresholds(), challenge=challenge)


def sealed(ingest, ch, sets, r, session_id, *, signer=None, anchor=None, terminal=TERMINAL):
    best = {"index": r.best_index, "bbox": list(r.best_face.detection.bbox),
            "landmarks": r.best_face.mesh.landmarks.tolist()}
    payload = build_payload(align_frameset(sets[r.best_index]), best, quality={"ok": True},
                            liveness=r.verdict.to_dict(), device=drivers.open("sim://?realtime=0").info,
                            timings_ms={"capture": 1.0}, frame_digest=frameset_digest(sets[r.best_index]),
                            evidence=r.evidence)
    return seal_probe(ch, payload, terminal_id=terminal, session_id=session_id, counter=ingest["counter"].next(),
                      signer=signer or ingest["signer"], purpose=Purpose.VERIFY, audit_anchor=anchor)


@pytest.fixture
def strict_limits(ingest):
    # A store of its own too: the failures counted here must not lock the shared test terminal later.
    state = ingest["state"]
    saved = state.limits, state.store
    state.limits, state.store = FailureLimits(max_failures=2, window_s=600, max_subject_failures=3), MemoryStore()
    yield state.limits
    state.limits, state.store = saved


@pytest.mark.slow                 # three sim captures judged and sealed: 9-13 s in CI, 46 s at load 10
def test_the_server_locks_out_a_subject_after_failed_presentations_over_mtls(ingest, gate, strict_limits, caplog):
    c = ingest["uplink"]()
    for k in range(2):
        ch = c.begin(f"lim-{k}", Purpose.VERIFY, capabilities=CAPS, subject_ref="cust-attacked")
        sets, r = capture(ingest, gate, "print", ch)
        p = sealed(ingest, ch, sets, r, f"lim-{k}")
        assert c.submit(p.message, p.probe_id).reason == "NOT_LIVE"
    said = locked_out(caplog, lambda: c.begin("lim-2", Purpose.VERIFY, capabilities=CAPS, subject_ref="cust-attacked"))
    assert "this subject gets no challenge at this terminal" in said
    # Another terminal is served (one terminal alone cannot lock the subject out everywhere) until
    # the subject's count across terminals (3 here) is reached: then on every terminal.
    other = ingest["uplink"](cert=ingest["other_cert"], terminal=OTHER_TERMINAL)
    assert other.begin("lim-3", Purpose.VERIFY, capabilities=CAPS, subject_ref="cust-attacked").nonce
    said = locked_out(caplog, lambda: other.begin("lim-3b", Purpose.VERIFY, capabilities=CAPS,
                                                  subject_ref="cust-attacked"))
    assert "this subject gets no challenge on any terminal" in said
    assert other.begin("lim-4", Purpose.VERIFY, capabilities=CAPS, subject_ref="cust-other").nonce   # others are served
    c.close()
    other.close()


def test_root_s_lockout_edits_on_the_terminal_do_not_move_the_server_s_count(ingest, strict_limits, tmp_path,
                                                                               caplog):
    # Issue 16 (sec33's "Left"): root on the terminal lowers [session] failure_window_s and raises max_failures for
    # his future strikes; the terminal's own lockout obeys (it reads its config). The server's charges do not: its
    # FailureLimits are its own config, per terminal, subject and subject at the terminal, counted on the store's
    # clock; nothing the terminal sends names a policy (no field of BeginCaptureRequest or ProbeHeader), and every
    # challenge is charged when issued (an attempt root abandons keeps its charge, a judged attack keeps it as a
    # failure; only an accepted probe refunds). So the server still locks at its count, whatever the terminal says.
    from agent.config import load
    from agent.session.lockout import Lockout
    from proto.capture_agent.v1 import ingest_pb2 as pb
    for msg in (pb.BeginCaptureRequest, pb.ProbeHeader):
        named = {f.name for f in msg.DESCRIPTOR.fields}
        assert not {n for n in named if "failure" in n or "window" in n or "lockout" in n or n.startswith("max_")}
    cfg = tmp_path / "agent.toml"
    cfg.write_text("[session]\nmax_failures = 64\nfailure_window_s = 1\n")     # root's edit
    settings = load(cfg).session
    assert (settings.max_failures, settings.failure_window_s) == (64, 1.0)
    now = [1_000_000.0]                                  # the terminal's clocks, which root moves too
    book = Lockout(settings, clock=lambda: now[0], elapsed=lambda: ("boot", int(now[0] * 1000)))
    c = ingest["uplink"]()
    keys = (f"terminal:{TERMINAL}", "subject:cust-root")

    def attempt(session_id: str, subject: str) -> None:
        book.check(*keys)                                # the terminal's own lockout lets it try
        ch = c.begin(session_id, Purpose.VERIFY, capabilities=CAPS, subject_ref=subject)
        assert ch.nonce                                  # (the attack fails, or root abandons it: no probe)
        book.fail(*keys)                                 # a strike on the terminal, under root's policy
        now[0] += 2.0                                    # past the terminal's 1 s window: its strikes age out

    for k in range(strict_limits.max_failures):
        attempt(f"root-{k}", "cust-root")
    book.check(*keys)                                    # the terminal would try again ...
    said = locked_out(caplog, lambda: c.begin("root-x", Purpose.VERIFY, capabilities=CAPS, subject_ref="cust-root"))
    assert "this subject gets no challenge at this terminal" in said        # ... the server says no
    # Another subject each time: the subject keys stay under their limits, the terminal's own key binds.
    for k in range(strict_limits.max_terminal_failures - strict_limits.max_failures):
        attempt(f"root-s{k}", f"cust-{k}")
    book.check(*keys)
    said = locked_out(caplog, lambda: c.begin("root-y", Purpose.VERIFY, capabilities=CAPS, subject_ref="cust-new"))
    assert "this terminal gets no challenge" in said
    c.close()


@pytest.mark.slow                 # two or more sim captures judged and sealed: 45 s at load 10
def test_an_anchor_that_goes_back_is_flagged_and_audit_verify_proves_the_cut(ingest, gate, tmp_path, monkeypatch):
    # The session's server is shared: another test's probes may have left this terminal an anchor
    # from another log (REPLACED); this test starts from a store that holds none.
    store = AnchorStore()
    monkeypatch.setattr(ingest["state"], "anchors", store)
    log = AuditLog(tmp_path / "audit.jsonl", ingest["signer"], checkpoint_every=5)
    c = ingest["uplink"]()

    def submit(session_id, anchor):
        # A still live face is now and then inconclusive (tests/helpers/live.py): asked again in a
        # new session, as a kiosk does; an attack verdict is never asked again.
        for attempt in range(ATTEMPTS):
            ch = c.begin(f"{session_id}-{attempt}", Purpose.VERIFY, capabilities=CAPS)
            sets, r = capture(ingest, gate, "live", ch)
            if r.verdict.verdict != "inconclusive":
                break
        p = sealed(ingest, ch, sets, r, f"{session_id}-{attempt}", anchor=anchor)
        return c.submit(p.message, p.probe_id)

    for i in range(12):
        log.record("result", n=i)
    first = log.anchor()
    flags_before = len(store.flags)
    assert submit("anc-1", first).accepted                        # a flag never refuses the probe
    assert store.cli_anchor(TERMINAL) == [f"{first.seq}:{first.head}"] and len(store.flags) == flags_before
    # The log is cut back before the anchor and goes on from there (the rewritten entries are
    # signed with the terminal's key: whoever did it held the terminal).
    log.close()
    lines = (tmp_path / "audit.jsonl").read_text().splitlines(keepends=True)[:6]
    (tmp_path / "audit.jsonl").write_text("".join(lines))
    cut = AuditLog(tmp_path / "audit.jsonl", ingest["signer"], checkpoint_every=5)
    cut.record("result", n=99)
    assert submit("anc-2", cut.anchor()).accepted
    assert store.flags[-1].reason == "ROLLED_BACK" and store.flags[-1].terminal_id == TERMINAL
    cut.close()
    pub = tmp_path / "t.pub.pem"
    pub.write_bytes(ingest["signer"].public_key_pem())
    out = subprocess.run([sys.executable, "-m", "agent.cli", "audit-verify", str(tmp_path / "audit.jsonl"),
                          "--public-key", str(pub), *(f"--anchor={a}" for a in store.cli_anchor(TERMINAL))],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "error[AUD_TRUNCATED]" in out.stderr, out.stdout + out.stderr
    c.close()


def anchor_header(signer, anchor):
    """A probe header of ``TERMINAL``'s carrying ``anchor`` (None: none), signed by ``signer``."""
    return build_header(terminal_id=TERMINAL, session_id="s", counter=1, nonce=b"\0" * 32, server_key_id="k",
                        suite="x25519", signer=signer, purpose=Purpose.VERIFY, audit_anchor=anchor)


def one_entry_log(ingest, tmp_path):
    """An anchor store, the terminal's signer, its audit log with one entry, and ``anchor_header`` by that signer."""
    signer = ingest["signer"]
    log = AuditLog(tmp_path / "a.jsonl", signer)
    log.record("x")
    return AnchorStore(), signer, log, lambda anchor: anchor_header(signer, anchor)


def test_anchor_flags_for_missing_forged_replaced_and_rewritten(ingest, tmp_path):
    store = AnchorStore()
    signer = ingest["signer"]
    log = AuditLog(tmp_path / "a.jsonl", signer)
    log.record("x")
    log.record("y")

    def header(anchor, signer_=signer):
        return anchor_header(signer_, anchor)
    assert store.observe(TERMINAL, header(None), signer.public_key()) == "MISSING"
    a = log.anchor()
    assert store.observe(TERMINAL, header(a), signer.public_key()) is None
    # The same log (same first entry) rewritten from entry 1: same length, another head.
    (tmp_path / "r.jsonl").write_text((tmp_path / "a.jsonl").read_text().splitlines(keepends=True)[0])
    rewritten = AuditLog(tmp_path / "r.jsonl", signer)
    rewritten.record("not y")
    r = rewritten.anchor()
    assert (r.seq, r.log_id) == (a.seq, a.log_id) and r.head != a.head
    assert store.observe(TERMINAL, header(r), signer.public_key()) == "REWRITTEN"
    stranger = generate_file_key(tmp_path / "stranger.pem")
    forged = AuditLog(tmp_path / "f.jsonl", stranger)
    forged.record("x")
    fa = forged.anchor()
    assert store.observe(TERMINAL, header(fa), signer.public_key()) == "FORGED"
    other = AuditLog(tmp_path / "b.jsonl", signer)               # a second log, same key
    for i in range(5):
        other.record("y", n=i)
    assert store.observe(TERMINAL, header(other.anchor()), signer.public_key()) == "REPLACED"
    tampered = type(a)(a.seq, "ab" * 32, a.signature, a.algorithm, a.log_id)
    assert store.observe(TERMINAL, header(tampered), signer.public_key()) == "FORGED"
    assert store.held(TERMINAL).seq == a.seq                      # nothing flagged was taken


def signed_count(signer, anchor, count: int, *, v1: bool = False):
    """``anchor`` with ``tpm_count`` ``count``, signed by ``signer`` over it (sec30's v2 message) or, ``v1``, over
    ``(seq, head)`` alone (a terminal from before sec30)."""
    import dataclasses

    from agent.security.audit import checkpoint_message
    msg = checkpoint_message(anchor.seq, anchor.head, None if v1 else count)
    return dataclasses.replace(anchor, tpm_count=count, signature=signer.sign(msg))


def test_an_anchor_whose_tpm_count_went_back_is_flagged(ingest, tmp_path):
    # sec29: the TPM counter the terminal's lockout entries advance never goes back; an anchor below the held
    # count (0: [audit] tpm_counter removed from the terminal's config) is flagged, and not taken.
    store, signer, log, header = one_entry_log(ingest, tmp_path)
    counted = signed_count(signer, log.anchor(), 7)
    assert store.observe(TERMINAL, header(counted), signer.public_key()) is None
    assert store.held(TERMINAL).tpm_count == 7
    log.record("y")
    later = log.anchor()
    assert later.seq > counted.seq and later.tpm_count == 0
    assert store.observe(TERMINAL, header(later), signer.public_key()) == "COUNT_BACK"
    assert store.held(TERMINAL).seq == counted.seq
    assert store.observe(TERMINAL, header(signed_count(signer, later, 9)), signer.public_key()) is None


def test_an_anchor_s_tpm_count_is_signed(ingest, tmp_path):
    # sec30: the count is in the checkpoint's signature. Edited in transit (or by root, after the daemon signed)
    # it is FORGED, not taken. An anchor of a terminal from before sec30 (v1: seq and head only) is taken, count and
    # all, until that terminal sends a v2 anchor (servers upgraded before terminals: the final read); after one, a
    # v1 anchor with a count is FORGED.
    import dataclasses
    store, signer, log, header = one_entry_log(ingest, tmp_path)
    a = log.anchor()
    assert a.tpm_count == 0
    assert store.observe(TERMINAL, header(dataclasses.replace(a, tpm_count=7)), signer.public_key()) == "FORGED"
    assert store.held(TERMINAL) is None
    assert store.observe(TERMINAL, header(signed_count(signer, a, 7, v1=True)), signer.public_key()) is None
    assert store.held(TERMINAL).tpm_count == 7 and not store.held(TERMINAL).v2
    log.record("y")
    b = log.anchor()
    assert store.observe(TERMINAL, header(signed_count(signer, b, 8)), signer.public_key()) is None
    assert store.held(TERMINAL).v2
    log.record("z")
    c = log.anchor()
    assert store.observe(TERMINAL, header(signed_count(signer, c, 9, v1=True)), signer.public_key()) == "FORGED"
    assert store.held(TERMINAL).seq == b.seq
    assert store.observe(TERMINAL, header(signed_count(signer, c, 9)), signer.public_key()) is None


def test_missing_anchors_are_all_flagged_but_warned_once_until_the_terminal_anchors_again(ingest, tmp_path, caplog):
    store, signer, log, header = one_entry_log(ingest, tmp_path)

    def warnings() -> int:
        return sum(r.levelname == "WARNING" and "MISSING" in r.getMessage() for r in caplog.records)

    with caplog.at_level("DEBUG", logger="hil.ingest.anchors"):
        for _ in range(3):
            assert store.observe(TERMINAL, header(None), signer.public_key()) == "MISSING"
        assert warnings() == 1 and [f.reason for f in store.flags] == ["MISSING"] * 3
        assert store.observe(TERMINAL, header(log.anchor()), signer.public_key()) is None
        assert store.observe(TERMINAL, header(None), signer.public_key()) == "MISSING"
        assert warnings() == 2                       # a gap after anchoring again is news
        assert store.observe("another-terminal", header(None), signer.public_key()) == "MISSING"
        assert warnings() == 3
