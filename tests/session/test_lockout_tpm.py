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
from tests.helpers.swtpm import swtpm

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

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        self.counter.close()


@pytest.fixture
def terminal(tmp_path):
    with swtpm() as tcti:
        t = Terminal(tmp_path, tcti)
        try:
            yield t
        finally:
            t.close()


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
    lockout = terminal.start()
    for _ in range(2):
        lockout.fail(TERMINAL, SUBJECT)                                      # counts 1-4, short of a lockout
    terminal.log.close()
    terminal.log = None
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


@pytest.mark.parametrize("survived", [False, True])
def test_a_daemon_stopped_between_an_entry_and_the_counter_is_not_a_cut(terminal, survived):
    lockout = terminal.start()
    lockout.fail(SUBJECT)
    real = terminal.counter.increment

    class Killed(Exception):
        pass

    def killed() -> int:                        # the daemon dies after the entry is written, before the advance
        raise Killed
    terminal.counter.increment = killed
    with pytest.raises(Killed):
        lockout.fail(SUBJECT)
    terminal.counter.increment = real
    logged = [e["data"]["tpm_count"] for e in terminal.entries() if "tpm_count" in e["data"]]
    assert logged[-1] == terminal.counter.count() + 1
    if survived:                                # the advance failed and the daemon went on: the next entry mends it
        lockout.fail(SUBJECT)
        logged = [e["data"]["tpm_count"] for e in terminal.entries() if "tpm_count" in e["data"]]
        assert logged == list(range(1, len(logged) + 1)) and logged[-1] == terminal.counter.count()
    terminal.log = None                         # (its file handle dies with the daemon)
    terminal.start()
    assert terminal.log.counter_check is not None and terminal.log.counter_check.problem is None
    assert terminal.counter.count() == logged[-1] and _cut_codes(terminal) == []


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
    lockout = terminal.start()
    for _ in range(3):
        lockout.fail(TERMINAL, SUBJECT)
    terminal.log.close()
    terminal.log = None
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

    from agent.security.tpm import TpmConnection, TpmCounterError, load_monotonic
    with swtpm() as tcti:
        conn = TpmConnection.get(tcti)
        try:                                    # root's ordinary index, which can be written back at will
            with conn.lock:
                conn.esapi.nv_define_space(TPM2B_AUTH(b""), TPM2B_NV_PUBLIC(nvPublic=TPMS_NV_PUBLIC(
                    nvIndex=0x018C0A29, nameAlg=TPM2_ALG.SHA256, dataSize=8,
                    attributes=TPMA_NV.OWNERWRITE | TPMA_NV.AUTHREAD | TPMA_NV.NO_DA)), ESYS_TR.OWNER)
        finally:
            conn.release()
        with pytest.raises(TpmCounterError, match="not a TPM counter") as exc:
            load_monotonic(f"tpm:nv=0x018C0A29;tcti={tcti}")
        assert exc.value.code == "KEY_TPM_COUNTER"
        with pytest.raises(TpmCounterError, match="no NV index"):
            load_monotonic(f"tpm:nv=0x018C0A2A;tcti={tcti}")


def test_the_counted_tail_reads_gaps_only_before_the_lockout_that_reported_them():
    def line(n: int, event: str = "lockout_strike", **extra) -> bytes:
        return json.dumps({"event": event, "data": {"tpm_count": n, **extra}}).encode()
    resync = line(9, "lockout_restored", why="SES_AUDIT_CUT", tpm_resync=4)
    assert audit_mod.counted_tail([line(11), line(10), resync, line(4), line(2)]) == (11, True)
    assert audit_mod.counted_tail([line(11), line(9)]) == (11, False)
    assert audit_mod.counted_tail([b'{"event": "agent_start", "data": {}}']) == (None, True)


def test_keys_tpm_counter_and_audit_verify_tpm_counter_from_the_cli(tmp_path, capsys):
    from agent.cli import main
    with swtpm() as tcti:
        assert main(["keys", "tpm-counter", "--tcti", tcti]) == 0
        spec = json.loads(capsys.readouterr().out)["tpm_counter"]
        assert spec == f"tpm:nv=0x018c0a29;tcti={tcti}"
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
        counter.increment()                                                         # a counted entry gone
        counter.close()
        assert main(args) == 2
        assert "AUD_COUNTER_CUT" in capsys.readouterr().err
