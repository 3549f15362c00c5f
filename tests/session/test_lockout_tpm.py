"""The lockout against root on the terminal where a TPM is configured (sec29), on a real software TPM (swtpm,
started per test): the lockout entries advance the TPM's NV counter, so a log cut back past them is found at
start and the terminal is locked out (fail closed); a lockout's end is judged on the TPM's clock too, so a
system clock set forward does not end it. A terminal without a TPM keeps today's behaviour (the last test)."""

from __future__ import annotations

import json
import time

import pytest

from agent.config import SessionSettings
from agent.observe.ledger import LOCKOUT_EVENTS
from agent.security import audit as audit_mod
from agent.security.audit import AuditCounterCut, AuditLog, verify
from agent.security.keys import generate_file_key
from agent.session.errors import LockedOut
from agent.session.lockout import Lockout
from tests.helpers.audit_rewrite import rewrite_log
from tests.helpers.swtpm import on_swtpm, swtpm

TERMINAL = "terminal:t"
SUBJECT = "subject:3f9a"
S = SessionSettings(max_failures=3, failure_window_s=60.0, lockout_s=300.0)


class FakeClock:
    """The system clock, which root sets at will."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Terminal:
    """A terminal's audit log, lockout state and TPM; :meth:`start` is the daemon (re)started."""

    def __init__(self, tmp_path, tcti: str):
        from agent.security.tpm import define_counter, load_monotonic
        define_counter(tcti=tcti)
        self.spec = f"tpm:nv=0x018C0A29;tcti={tcti}"
        self.key = generate_file_key(tmp_path / "k.pem")
        self.log_path, self.state = tmp_path / "audit.jsonl", tmp_path / "lockout.json"
        self.clock = FakeClock()
        self.counter = load_monotonic(self.spec)
        self.log: AuditLog | None = None

    def start(self, *, tpm: bool = True, s: SessionSettings = S) -> Lockout:
        if self.log is not None:
            self.log.close()
        self.log = AuditLog(self.log_path, self.key, checkpoint_every=5, clock=self.clock,
                            counter=self.counter if tpm else None, counted=LOCKOUT_EVENTS)
        return Lockout(s, clock=self.clock, path=self.state, audit=self.log, tpm=self.counter if tpm else None,
                       terminal_key=TERMINAL)

    def entries(self) -> list[dict]:
        return [json.loads(x) for x in self.log_path.read_text().splitlines()]

    def fail_and_stop(self, n: int) -> None:
        """The daemon started, ``n`` failed presentations of ``SUBJECT``, the daemon stopped."""
        lockout = self.start()
        for _ in range(n):
            lockout.fail(TERMINAL, SUBJECT)
        assert self.log is not None
        self.log.close()
        self.log = None

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        self.counter.close()


@pytest.fixture
def terminal(tmp_path):
    with on_swtpm(lambda tcti: Terminal(tmp_path, tcti)) as t:
        yield t


def _cut_codes(t: Terminal) -> list[dict]:
    return [e["data"] for e in t.entries() if e["event"] == "lockout_restored" and e["data"]["why"] == "SES_AUDIT_CUT"]


def test_a_normal_run_counts_each_lockout_entry_and_restarts_clean(terminal):
    lockout = terminal.start()
    lockout.fail(TERMINAL, SUBJECT)
    lockout.succeed(TERMINAL, SUBJECT)
    for _ in range(3):
        lockout.fail(SUBJECT)
    with pytest.raises(LockedOut):
        lockout.check(SUBJECT)
    counted = [e for e in terminal.entries() if "tpm_count" in e["data"]]
    assert {e["event"] for e in counted} == {"lockout_strike", "lockout_cleared", "lockout_start"}
    assert all(e["event"] in LOCKOUT_EVENTS for e in counted)
    counts = [e["data"]["tpm_count"] for e in counted]
    assert counts == list(range(counts[0], counts[0] + len(counts)))            # one each, no gap
    assert counts[-1] == terminal.counter.count() and counts[0] == 1             # the first advanced the counter
    assert all(e["data"]["tpm_epoch"] == "1.0" for e in counted)
    assert not any("tpm_count" in e["data"] for e in terminal.entries() if e["event"] not in LOCKOUT_EVENTS)
    anchor = terminal.log.anchor()
    assert anchor is not None and anchor.tpm_count == counts[-1]

    restarted = terminal.start()                                             # the daemon started again
    assert terminal.log.counter_check is not None and terminal.log.counter_check.problem is None
    assert _cut_codes(terminal) == []
    restarted.check(TERMINAL)                                                # not locked: nothing was cut
    with pytest.raises(LockedOut):
        restarted.check(SUBJECT)
    terminal.log.close()
    rep = verify(terminal.log_path, terminal.key.public_key(), max_unsigned_tail=0,
                 tpm_count=terminal.counter.count())
    assert rep.last_count == terminal.counter.count() and rep.cuts_reported == 0


def test_the_log_cut_back_past_unanchored_strikes_is_found_at_start_and_fails_closed(terminal):
    lockout = terminal.start()
    lockout.fail(TERMINAL, SUBJECT)
    terminal.log.checkpoint()
    kept = terminal.log_path.read_bytes()                                    # what root will cut back to
    lockout.fail(TERMINAL, SUBJECT)
    lockout.fail(TERMINAL, SUBJECT)                                          # the third: both locked out
    terminal.log.close()
    terminal.log = None
    behind = terminal.counter.count()
    # Root: the tail no anchor covered cut off (at a line boundary, the last entry intact), lockout.json deleted.
    terminal.log_path.write_bytes(kept)
    terminal.state.unlink()
    with pytest.raises(AuditCounterCut, match="cut off its end") as exc:
        verify(terminal.log_path, terminal.key.public_key(), max_unsigned_tail=0, tpm_count=behind)
    assert exc.value.code == "AUD_COUNTER_CUT"

    restarted = terminal.start()
    check = terminal.log.counter_check
    assert check is not None and check.problem == "BEHIND" and check.tpm == behind and check.logged < behind
    with pytest.raises(LockedOut):
        restarted.check(TERMINAL)                                            # fail closed: the terminal's key
    restarted.check(SUBJECT)            # (which subjects the cut entries held cannot be known; the server counts)
    [cut] = _cut_codes(terminal)
    assert cut["key"] == TERMINAL and cut["state"] == "BEHIND" and cut["tpm_resync"] == check.logged
    assert cut["until"] == terminal.clock.now + max(S.lockout_s, S.failure_window_s)
    assert cut["tpm_count"] == behind + 1                    # right after the gap it reports; then the strike kept
    assert [e["event"] for e in terminal.entries() if e["data"].get("tpm_count", 0) > behind + 1] == \
        ["strikes_restored", "strikes_restored"]

    # Reported once: the next start finds the counts in step again, and the lockout is kept (state, or log).
    terminal.state.unlink()
    again = terminal.start()
    assert terminal.log.counter_check is not None and terminal.log.counter_check.problem is None
    assert len(_cut_codes(terminal)) == 1
    with pytest.raises(LockedOut):
        again.check(TERMINAL)
    terminal.log.close()
    rep = verify(terminal.log_path, terminal.key.public_key(), max_unsigned_tail=0,
                 tpm_count=terminal.counter.count())
    assert rep.cuts_reported == 1


@pytest.mark.parametrize("cut", ["everything", "a counted entry within", "counter advanced by root"])
def test_every_other_way_the_counts_and_the_counter_part_is_found_too(terminal, cut):
    terminal.fail_and_stop(2)                                      # counts 1-4, short of a lockout
    if cut == "everything":                     # the log deleted: a counter advanced and no counted entry
        terminal.log_path.unlink()
        problem = "BEHIND"
    elif cut == "a counted entry within":       # a strike removed from the middle (the last one kept)
        lines = terminal.log_path.read_bytes().splitlines(keepends=True)
        second = [i for i, x in enumerate(lines) if b'"lockout_strike"' in x][1]
        terminal.log_path.write_bytes(b"".join(lines[:second] + lines[second + 1:]))
        problem = "GAP"
    else:                                       # root can advance the counter, never take it back: self-inflicted
        terminal.counter.increment()
        problem = "BEHIND"
    terminal.state.unlink()
    restarted = terminal.start()
    assert terminal.log.counter_check is not None and terminal.log.counter_check.problem == problem
    with pytest.raises(LockedOut):
        restarted.check(TERMINAL)
    assert [c["state"] for c in _cut_codes(terminal)] == [problem]


@pytest.mark.parametrize("step", ["increment", "extend"])
@pytest.mark.parametrize("survived", [False, True])
def test_a_daemon_stopped_between_an_entry_and_the_counter_is_not_a_cut(terminal, survived, step):
    # The entry is written first, then the counter advanced, then its hash extended into the chain (sec30): the
    # daemon dying before either step leaves the log ahead, which the next entry or the next start makes good.
    from agent.security.audit import chain_end
    lockout = terminal.start()
    lockout.fail(SUBJECT)
    real = getattr(terminal.counter, step)

    class Killed(Exception):
        pass

    def killed(*_args) -> int:                  # the daemon dies after the entry is written, before this step
        raise Killed
    setattr(terminal.counter, step, killed)
    with pytest.raises(Killed):
        lockout.fail(SUBJECT)
    setattr(terminal.counter, step, real)
    counted = [e for e in terminal.entries() if "tpm_count" in e["data"]]
    logged = [e["data"]["tpm_count"] for e in counted]
    assert logged[-1] == terminal.counter.count() + (1 if step == "increment" else 0)
    assert terminal.counter.chain().hex() == counted[-1]["data"]["tpm_chain"]      # not extended either way
    if survived:                                # the step failed and the daemon went on: the next entry mends it
        lockout.fail(SUBJECT)
        counted = [e for e in terminal.entries() if "tpm_count" in e["data"]]
        logged = [e["data"]["tpm_count"] for e in counted]
        assert logged == list(range(1, len(logged) + 1)) and logged[-1] == terminal.counter.count()
        assert terminal.counter.chain().hex() == chain_end(counted[-1])
    terminal.log = None                         # (its file handle dies with the daemon)
    terminal.start()
    assert terminal.log.counter_check is not None and terminal.log.counter_check.problem is None
    assert terminal.counter.count() == logged[-1] and _cut_codes(terminal) == []
    assert terminal.counter.chain().hex() == chain_end(counted[-1])


def test_a_system_clock_set_forward_two_hours_does_not_end_the_lockout(terminal):
    lockout = terminal.start()
    for _ in range(3):
        lockout.fail(TERMINAL, SUBJECT)
    terminal.clock.now += 7200.0                                             # root: date -s '+2 hours'
    with pytest.raises(LockedOut, match=r"try again in 29\d s"):             # the TPM's clock: ~300 s left
        lockout.check(TERMINAL)
    with pytest.raises(LockedOut):
        terminal.start().check(SUBJECT)                                      # restarted, the state file kept
    terminal.state.unlink()
    restored = terminal.start()                                              # ... and with it deleted
    with pytest.raises(LockedOut):
        restored.check(TERMINAL)
    [*_, last] = [e["data"] for e in terminal.entries() if e["event"] == "lockout_restored"]
    assert last["why"] == "SES_LOCKOUT_RESTORED" and last["until"] > terminal.clock.now + 290
    assert not [e for e in terminal.entries() if e["event"] == "lockout_end"]


def test_a_state_file_stripped_of_its_tpm_stamps_gets_them_back_from_the_log(terminal):
    # Root deletes the "tpm" stamps from lockout.json and restarts: the system clock's time left then equals
    # the log's, but without a stamp a clock set forward would end the lockout (the final read, sec29).
    terminal.fail_and_stop(3)
    data = json.loads(terminal.state.read_text())
    assert data["tpm"]
    data["tpm"] = {}
    terminal.state.write_text(json.dumps(data))
    restored = terminal.start()
    assert [e["data"]["state"] for e in terminal.entries() if e["event"] == "lockout_restored"] == ["UNSTAMPED"] * 2
    terminal.clock.now += 7200.0                                             # root: date -s '+2 hours'
    with pytest.raises(LockedOut, match=r"try again in 29\d s"):
        restored.check(TERMINAL)


def test_the_tpm_s_clock_moved_forward_or_sped_up_by_its_owner_does_not_end_the_lockout(terminal):
    # Root holds the owner authorisation the daemon uses: TPM2_ClockSet moves `clock` forward (never `time`),
    # and on swtpm a stream of TPM2_ClockRateAdjust makes `time` run ~16 times too fast; CLOCK_BOOTTIME, which
    # nothing sets, bounds the lockout's age within one boot.
    from tpm2_pytss.constants import ESYS_TR, TPM2_CLOCK
    short = SessionSettings(max_failures=1, failure_window_s=60.0, lockout_s=30.0)
    booted_s = time.clock_gettime(time.CLOCK_BOOTTIME)
    lockout = terminal.start(s=short)
    lockout.fail(SUBJECT)
    terminal.clock.now += 7200.0
    esapi, start = terminal.counter.conn.esapi, terminal.counter.now()
    with terminal.counter.conn.lock:
        esapi.clock_set(start.clock_ms + 7_200_000, ESYS_TR.OWNER)
        while esapi.read_clock().time - start.time_ms < 35_000:             # the TPM says 35 s have passed
            for _ in range(500):
                esapi.clock_rate_adjust(TPM2_CLOCK.COARSE_FASTER, ESYS_TR.OWNER)
    moved = terminal.counter.now()
    assert moved.epoch == start.epoch and moved.time_ms - start.time_ms >= 35_000
    assert moved.clock_ms - start.clock_ms >= 7_200_000
    if time.clock_gettime(time.CLOCK_BOOTTIME) - booted_s > 25.0:
        pytest.skip("the machine took most of the 30 s lockout to speed the TPM up: nothing left to judge")
    with pytest.raises(LockedOut):
        lockout.check(SUBJECT)
    with pytest.raises(LockedOut):
        terminal.start(s=short).check(SUBJECT)                               # restarted: from the state file


def test_the_lockout_ends_once_the_tpm_s_clock_has_run_its_length(terminal):
    short = SessionSettings(max_failures=1, failure_window_s=1.0, lockout_s=1.0)
    lockout = terminal.start(s=short)
    lockout.fail(SUBJECT)
    terminal.clock.now += 3600.0                                             # the system clock says long over
    with pytest.raises(LockedOut):
        lockout.check(SUBJECT)
    start = terminal.counter.now()
    deadline = time.monotonic() + 60                                         # a bound, not a timing
    while terminal.counter.now().time_ms - start.time_ms < 1100 and time.monotonic() < deadline:
        time.sleep(0.05)
    lockout.check(SUBJECT)                                                   # the TPM's clock: over too
    [end] = [e["data"] for e in terminal.entries() if e["event"] == "lockout_end"]
    assert end["key"] == SUBJECT and end["why"] == "EXPIRED"


def test_a_terminal_without_a_tpm_behaves_as_before(terminal):
    lockout = terminal.start(tpm=False)
    for _ in range(3):
        lockout.fail(TERMINAL)
    assert not any("tpm_count" in e["data"] or "tpm_ms" in e["data"] for e in terminal.entries())
    assert set(json.loads(terminal.state.read_text())) == {"version", "fails", "until", "pending"}
    assert terminal.log.counter_check is None
    terminal.clock.now += 7200.0
    lockout.check(TERMINAL)                 # the system clock set forward ends it: the hole a TPM closes
    assert terminal.log.anchor().tpm_count == 0


def test_an_nv_index_that_is_not_a_counter_is_refused(tmp_path):
    from tpm2_pytss.constants import ESYS_TR, TPM2_ALG, TPMA_NV
    from tpm2_pytss.types import TPM2B_AUTH, TPM2B_NV_PUBLIC, TPMS_NV_PUBLIC

    from agent.security.tpm import TpmConnection, TpmCounterError, define_counter, load_monotonic
    with swtpm() as tcti:
        conn = TpmConnection.get(tcti)
        try:                                    # root's ordinary index, which can be written back at will
            with conn.lock:
                conn.esapi.nv_define_space(TPM2B_AUTH(b""), TPM2B_NV_PUBLIC(nvPublic=TPMS_NV_PUBLIC(
                    nvIndex=0x018C0A29, nameAlg=TPM2_ALG.SHA256, dataSize=8,
                    attributes=TPMA_NV.OWNERWRITE | TPMA_NV.AUTHREAD | TPMA_NV.NO_DA)), ESYS_TR.OWNER)
        finally:
            conn.release()
        with pytest.raises(TpmCounterError, match="lacks NV index") as exc:
            load_monotonic(f"tpm:nv=0x018C0A29;tcti={tcti}")                # (no chain at 0x018C0A2A yet)
        assert exc.value.code == "KEY_TPM_COUNTER"
        define_counter(tcti=tcti)                                            # defines the missing chain only
        with pytest.raises(TpmCounterError, match="not a TPM counter") as exc:
            load_monotonic(f"tpm:nv=0x018C0A29;tcti={tcti}")
        assert exc.value.code == "KEY_TPM_COUNTER"
        with pytest.raises(TpmCounterError, match="lacks NV index"):
            load_monotonic(f"tpm:nv=0x018C0A2B;tcti={tcti}")
        # ... and as the chain (sec30): an ordinary index can be written back to any value, an extend index cannot.
        define_counter(tcti=tcti, index=0x018C0A40, chain=0x018C0A29)        # (the counter; the chain exists)
        with pytest.raises(TpmCounterError, match="not a SHA-256 extend index"):
            load_monotonic(f"tpm:nv=0x018C0A40;chain=0x018C0A29;tcti={tcti}")


def test_the_counted_tail_reads_gaps_only_before_the_lockout_that_reported_them():
    def line(n: int, event: str = "lockout_strike", **extra) -> bytes:
        return json.dumps({"event": event, "data": {"tpm_count": n, **extra}}).encode()
    resync = line(9, "lockout_restored", why="SES_AUDIT_CUT", tpm_resync=4)
    def tail(lines):
        t = audit_mod.counted_tail(lines)
        return t.last, t.contiguous
    assert tail([line(11), line(10), resync, line(4), line(2)]) == (11, True)
    assert tail([line(11), line(9)]) == (11, False)
    assert tail([b'{"event": "agent_start", "data": {}}']) == (None, True)


def test_keys_tpm_counter_and_audit_verify_tpm_counter_from_the_cli(tmp_path, capsys):
    from agent.cli import main
    with swtpm() as tcti:
        assert main(["keys", "tpm-counter", "--tcti", tcti]) == 0
        spec = json.loads(capsys.readouterr().out)["tpm_counter"]
        assert spec == f"tpm:nv=0x018c0a29;chain=0x018c0a2a;tcti={tcti}"
        assert main(["keys", "tpm-counter", "--tcti", tcti]) == 2                   # never redefined
        assert "already defined" in capsys.readouterr().err
        assert main(["keys", "tpm-counter", "--tcti", tcti, "--nv", "0x01C00002"]) == 2   # the TCG's EK range
        from agent.security.tpm import load_monotonic
        counter = load_monotonic(spec)
        key = generate_file_key(tmp_path / "k.pem")
        (tmp_path / "pub.pem").write_bytes(key.public_key_pem())
        log = AuditLog(tmp_path / "audit.jsonl", key, counter=counter, counted=LOCKOUT_EVENTS)
        log.record("lockout_strike", key=SUBJECT, until=1.0)
        log.record("agent_stop")
        log.close()
        args = ["audit-verify", str(tmp_path / "audit.jsonl"), "--public-key", str(tmp_path / "pub.pem"),
                "--max-unsigned", "0", "--tpm-counter", spec]
        assert main(args) == 0
        assert "counted through 1" in capsys.readouterr().out
        offline = args[:-2] + ["--tpm-count", "1", "--tpm-chain"]                   # (sec30) the values given
        assert main(offline + [counter.chain().hex()]) == 0
        capsys.readouterr()
        assert main(offline + ["11" * 32]) == 2                                     # not what the entries hash to
        assert "AUD_COUNTER_FORGED" in capsys.readouterr().err
        assert main(offline + ["zz"]) == 2                                          # a usage error
        capsys.readouterr()
        counter.increment()                                                         # a counted entry gone
        counter.close()
        assert main(args) == 2
        assert "AUD_COUNTER_CUT" in capsys.readouterr().err


# --- sec30: the counter binds the entries' content, and a counter that was in use cannot be configured away --------


@pytest.mark.parametrize("rechain", [False, True], ids=["chains-kept", "chains-recomputed"])
def test_lockout_entries_rewritten_into_harmless_ones_of_the_same_counts_are_found_and_fail_closed(terminal, rechain):
    # The twenty-ninth session's hole: the counter bound the entries' number, not their content. Root rewrites every
    # lockout entry of the subject into one of another key whose time is long past (same events, same counts), the
    # chain recomputed and the checkpoints signed again, and deletes lockout.json. Before sec30 the start found the
    # counts in step and the subject walked free; now the entries do not hash to the TPM's chain.
    from agent.security.audit import AuditCounterForged
    terminal.fail_and_stop(3)

    def harmless(e: dict) -> None:
        if e["event"] in LOCKOUT_EVENTS:
            e["data"].update(key="subject:0000", until=1.0)
    rewrite_log(terminal, harmless, rechain=rechain)
    terminal.state.unlink()
    if rechain:                                 # hash chain, signatures, counts and links hold: only the TPM tells
        verify(terminal.log_path, terminal.key.public_key(), max_unsigned_tail=0, tpm_count=terminal.counter.count())
    else:                                       # the links alone show it
        with pytest.raises(AuditCounterForged, match="does not follow"):
            verify(terminal.log_path, terminal.key.public_key(), max_unsigned_tail=0)
    with pytest.raises(AuditCounterForged, match="rewritten") as exc:
        verify(terminal.log_path, terminal.key.public_key(), max_unsigned_tail=0,
               tpm_count=terminal.counter.count(), tpm_chain=terminal.counter.chain().hex())
    assert exc.value.code == "AUD_COUNTER_FORGED"

    restarted = terminal.start()
    check = terminal.log.counter_check
    assert check is not None and check.problem == "FORGED" and check.logged == check.tpm   # the counts agree
    with pytest.raises(LockedOut):
        restarted.check(TERMINAL)                                           # fail closed: a lockout, not a fresh start
    [cut] = _cut_codes(terminal)
    assert cut["state"] == "FORGED" and cut["tpm_resync"] == check.logged
    terminal.state.unlink()                                                 # reported once, kept in the log
    again = terminal.start()
    assert terminal.log.counter_check is not None and terminal.log.counter_check.problem is None
    with pytest.raises(LockedOut):
        again.check(TERMINAL)
    terminal.log.close()
    args = dict(max_unsigned_tail=0, tpm_count=terminal.counter.count(), tpm_chain=terminal.counter.chain().hex())
    if rechain:                                 # the forged entries end at the reported resync: the rest holds
        assert verify(terminal.log_path, terminal.key.public_key(), **args).cuts_reported == 1
    else:                                       # broken links inside stay broken for audit-verify
        with pytest.raises(AuditCounterForged, match="does not follow"):
            verify(terminal.log_path, terminal.key.public_key(), **args)


def test_an_entry_whose_content_changed_under_its_old_hash_is_found(terminal):
    # Root edits a strike's key and leaves its recorded hash (and every later one) standing: the start's backward
    # read does not check the file's hash chain, so it hashes each counted entry itself.
    lockout = terminal.start()
    lockout.fail(SUBJECT)
    lockout.fail(SUBJECT)
    terminal.log.close()
    terminal.log = None
    lines = terminal.log_path.read_text().splitlines(keepends=True)
    i = next(i for i, x in enumerate(lines) if '"lockout_strike"' in x)
    lines[i] = lines[i].replace(SUBJECT, "subject:0000")
    terminal.log_path.write_text("".join(lines))
    terminal.state.unlink()
    terminal.start()
    assert terminal.log.counter_check is not None and terminal.log.counter_check.problem == "FORGED"


def test_a_counter_that_was_in_use_gone_from_the_config_refuses_the_start(terminal, tmp_path, monkeypatch):
    from agent.config import AuditSettings, DeviceSettings, KeySettings, Settings
    from agent.daemon import Daemon
    from agent.security import tpm as tpm_mod
    from agent.security.audit import AuditCounterGone, refuse_uncounted_tpm
    tcti = terminal.spec.split("tcti=")[1]
    refuse_uncounted_tpm(tcti)                          # defined, never written: a terminal not yet counting
    lockout = terminal.start()
    lockout.fail(SUBJECT)
    terminal.log.close()
    terminal.log = None
    # Root removes [audit] tpm_counter from the config: the log's counted entries refuse the start ...
    with pytest.raises(AuditCounterGone, match="tpm_counter") as exc:
        AuditLog(terminal.log_path, terminal.key, counter=None, counted=LOCKOUT_EVENTS)
    assert exc.value.code == "AUD_COUNTER_GONE"
    # ... and with the log deleted too, the TPM's written indices do (the daemon probes the kernel's TPM).
    terminal.log_path.unlink()
    with pytest.raises(AuditCounterGone, match="0x018c0a29, 0x018c0a2a"):
        refuse_uncounted_tpm(tcti)
    refuse_uncounted_tpm("device:/nonexistent/tpmrm0")  # a terminal without a TPM: nothing to check
    monkeypatch.setattr(tpm_mod, "DEFAULT_TCTI", tcti)
    (tmp_path / "state").mkdir()
    s = Settings(state_dir=str(tmp_path / "state"), devices=DeviceSettings(allow_development_cameras=True),
                 keys=KeySettings(signing_key=f"file:{tmp_path / 'k.pem'}"),
                 audit=AuditSettings(path=str(tmp_path / "daemon-audit.jsonl")))
    with pytest.raises(AuditCounterGone):
        Daemon(s).start()
    assert not (tmp_path / "daemon-audit.jsonl").exists()                  # refused before the log was opened


def test_a_checkpoint_s_signed_count_edited_breaks_its_signature(terminal):
    lockout = terminal.start()
    lockout.fail(SUBJECT)
    terminal.log.checkpoint()
    terminal.log.close()
    terminal.log = None
    entries = terminal.entries()
    assert all(e["data"]["signed_count"] == 0 or e["data"]["signed_count"] >= 1
               for e in entries if e["event"] == "checkpoint")
    last = [e for e in entries if e["event"] == "checkpoint"][-1]
    assert last["data"]["signed_count"] == terminal.counter.count()
    lines = terminal.log_path.read_text().splitlines(keepends=True)
    edited = dict(last, data=dict(last["data"], signed_count=last["data"]["signed_count"] + 5))
    from agent.security.audit import AuditCorrupt, entry_hash
    edited["hash"] = entry_hash(edited)
    lines[last["seq"]] = json.dumps(edited, sort_keys=True, separators=(",", ":")) + "\n"
    terminal.log_path.write_text("".join(lines[:last["seq"] + 1]))
    with pytest.raises(AuditCorrupt, match="not signed"):
        verify(terminal.log_path, terminal.key.public_key(), max_unsigned_tail=0)


def test_the_log_deleted_and_the_counter_redefined_is_no_fresh_terminal_while_the_chain_stands(terminal):
    # The twenty-ninth session's gap: a log cut back past its first counted entry with the counter index undefined
    # and defined again (unwritten: it cannot be read) looked like a fresh terminal. The chain still holds the
    # extends: FORGED. (Root who undefines the chain as well is back at a fresh terminal: docs/keys.md.)
    from tpm2_pytss.constants import ESYS_TR

    from agent.security.tpm import define_counter, load_monotonic
    lockout = terminal.start()
    lockout.fail(SUBJECT)
    terminal.log.close()
    terminal.log = None
    terminal.log_path.unlink()
    terminal.state.unlink()
    conn = terminal.counter.conn
    with conn.lock:
        conn.esapi.nv_undefine_space(conn.esapi.tr_from_tpmpublic(0x018C0A29), ESYS_TR.OWNER)
    define_counter(tcti=terminal.spec.split("tcti=")[1])                    # the missing counter only
    terminal.counter.close()
    terminal.counter = load_monotonic(terminal.spec)
    assert terminal.counter.count() is None
    restarted = terminal.start()
    assert terminal.log.counter_check is not None and terminal.log.counter_check.problem == "FORGED"
    with pytest.raises(LockedOut):
        restarted.check(TERMINAL)


def test_a_checkpoint_signing_a_count_its_entries_do_not_reach_is_a_cut(terminal):
    # final30: verify did not compare a checkpoint's signed_count with the counted entries before it. Root cuts the
    # last counted entry before the closing checkpoint, renumbers the log, recomputes the hash chain and signs the
    # checkpoints again (he can use the key), their signed counts kept: the counts still run without a gap and the
    # TPM chain's links hold (the cut entry was the last), so before sec31 the log verified without the TPM's count.
    from agent.security.audit import AuditCounterCut
    terminal.fail_and_stop(2)
    entries = terminal.entries()
    cut = max(i for i, e in enumerate(entries) if "tpm_count" in e["data"])
    assert any(e["event"] == "checkpoint" for e in entries[cut:])
    kept = entries[:cut] + entries[cut + 1:]
    for seq, e in enumerate(kept):
        e["seq"] = seq
        if e["event"] == "checkpoint":
            e["data"]["signed_seq"] = seq - 1
    terminal.log_path.write_text("".join(json.dumps(e) + "\n" for e in kept))
    rewrite_log(terminal, lambda e: None)
    with pytest.raises(AuditCounterCut, match="signs TPM count") as exc:
        verify(terminal.log_path, terminal.key.public_key(), max_unsigned_tail=0)
    assert exc.value.code == "AUD_COUNTER_CUT"


def test_a_system_clock_set_forward_buys_no_grace_on_the_tpm_s_clock(terminal):
    # sec32: root makes each window late and sets the clock forward an hour before the next. Main aged the grace on
    # the system clock (a new grace each hour moved); now the TPM's clock (bounded by CLOCK_BOOTTIME) holds it too,
    # in the state file and in the log's entry, so neither a restart nor the state file deleted renews it.
    lockout = terminal.start()
    lockout.begin("s-1", TERMINAL, SUBJECT)
    assert lockout.grace("s-1", "SES_WINDOW_LATE") is True
    [graced] = [json.loads(x)["data"] for x in terminal.log_path.read_text().splitlines()
                if json.loads(x)["event"] == "lockout_graced" and json.loads(x)["data"]["key"] == TERMINAL]
    assert graced["tpm_epoch"] == "1.0" and graced["boot"] == graced["tpm_boot"]
    for i in range(3):
        terminal.clock.now += 3600.0                                         # root: date -s '+1 hour'
        lockout.begin(f"s-{i + 2}", TERMINAL)
        assert lockout.grace(f"s-{i + 2}", "SES_WINDOW_LATE") is False
        lockout.settle(f"s-{i + 2}")
    assert len(json.loads(terminal.state.read_text())["graced"][TERMINAL][0]) == 6      # the TPM's stamp kept
    terminal.state.unlink()
    restored = terminal.start()                                              # restarted, the state file deleted
    restored.begin("s-9", TERMINAL)
    assert restored.grace("s-9", "SES_WINDOW_LATE") is False                 # read back past the clock's move


def test_strikes_short_of_a_lockout_hold_on_the_tpm_s_clock_across_a_clock_move_and_a_reboot(terminal):
    # strikes32: root forfeits a window, sets the clock forward by the failure window and tries again. Each strike is
    # stamped with the TPM's clock as well as CLOCK_BOOTTIME, so even when CLOCK_BOOTTIME started again (another boot
    # id: a reboot) the TPM's clock keeps it in its window; with the state file deleted, the log's entries do.
    lockout = terminal.start()
    lockout.fail(TERMINAL, SUBJECT)
    lockout.fail(TERMINAL, SUBJECT)
    [strike, *_] = [e["data"] for e in terminal.entries() if e["event"] == "lockout_strike"]
    assert strike["tpm_epoch"] and strike["boot"] == strike["tpm_boot"]
    assert len(json.loads(terminal.state.read_text())["fails"][SUBJECT][0]) == 7     # the TPM's stamp, the window
    terminal.clock.now += 3600.0                                             # root: date -s '+1 hour'
    terminal.state.unlink()
    assert terminal.log is not None
    terminal.log.close()
    terminal.log = AuditLog(terminal.log_path, terminal.key, checkpoint_every=5, clock=terminal.clock,
                            counter=terminal.counter, counted=LOCKOUT_EVENTS)
    rebooted = Lockout(S, clock=terminal.clock, path=terminal.state, audit=terminal.log, tpm=terminal.counter,
                       terminal_key=TERMINAL, elapsed=lambda: ("another-boot", 5_000))
    rebooted.fail(SUBJECT)
    with pytest.raises(LockedOut):                                           # main: one strike of three
        rebooted.check(SUBJECT)
