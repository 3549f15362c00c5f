"""Lockout (§8.2.5 d) on a fake clock: failures within the window lock a key out for ``lockout_s``."""

from __future__ import annotations

import json
import logging

import pytest

from agent.config import SessionSettings
from agent.session.errors import LockedOut
from agent.session.lockout import Lockout, LockoutStateError


class FakeClock:
    """The system clock (``now``, which root sets at will) and the host's CLOCK_BOOTTIME (``boot_ms``, which
    only real time moves: :meth:`wait`)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.boot, self.boot_ms = "b00t-1", 50_000

    def __call__(self) -> float:
        return self.now

    def elapsed(self) -> tuple[str, int]:
        return self.boot, self.boot_ms

    def wait(self, s: float) -> None:
        """``s`` seconds of real time: both clocks move."""
        self.now += s
        self.boot_ms += int(s * 1000)


@pytest.fixture
def lock():
    clock = FakeClock()
    return Lockout(SessionSettings(max_failures=3, failure_window_s=60.0, lockout_s=300.0), clock=clock,
                   elapsed=clock.elapsed), clock


def test_the_third_failure_within_the_window_locks_until_the_lockout_ends(lock):
    lockout, clock = lock
    for _ in range(2):
        lockout.fail("terminal:t", "subject:s")
        clock.now += 10
    lockout.check("terminal:t", "subject:s")                  # two failures: still allowed
    lockout.fail("terminal:t", "subject:s")
    with pytest.raises(LockedOut, match="subject") as exc:
        lockout.check("subject:s")
    assert exc.value.code == "SES_LOCKED_OUT" and "300 s" in exc.value.message
    clock.now += 299.0
    with pytest.raises(LockedOut, match="1 s"):
        lockout.check("terminal:t")
    clock.now += 1.0
    lockout.check("terminal:t", "subject:s")                  # the lockout has ended


def test_failures_older_than_the_window_do_not_count(lock):
    lockout, clock = lock
    lockout.fail("subject:s")
    lockout.fail("subject:s")
    clock.wait(61.0)                                          # both fall out of the 60 s window
    lockout.fail("subject:s")
    lockout.check("subject:s")


def test_keys_are_independent_and_success_clears_a_key(lock):
    lockout, _ = lock
    for _ in range(3):
        lockout.fail("subject:a")
    lockout.check("subject:b")
    with pytest.raises(LockedOut):
        lockout.check("subject:a")
    lockout.fail("subject:b")
    lockout.fail("subject:b")
    lockout.succeed("subject:b")                              # an accepted capture forgets the strikes
    lockout.fail("subject:b")
    lockout.check("subject:b")


def test_a_new_strike_count_starts_after_a_lockout(lock):
    lockout, clock = lock
    for _ in range(3):
        lockout.fail("terminal:t")
    clock.now += 301.0
    lockout.fail("terminal:t")                                # the locked-out strikes were cleared
    lockout.check("terminal:t")


def on_disk(tmp_path, max_failures: int) -> tuple[SessionSettings, FakeClock, object]:
    """Settings, a clock and a state file for lockouts that restart (each ``Lockout(s, clock=clock,
    path=path)`` is the daemon started again)."""
    return (SessionSettings(max_failures=max_failures, failure_window_s=60.0, lockout_s=300.0), FakeClock(),
            tmp_path / "lockout.json")


def test_the_counts_survive_a_restart_in_a_private_file_without_references(tmp_path):
    s, clock, path = on_disk(tmp_path, 3)
    first = Lockout(s, clock=clock, path=path)
    first.fail("terminal:t", "subject:3f9a")
    first.fail("terminal:t", "subject:3f9a")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    restarted = Lockout(s, clock=clock, path=path)           # the daemon restarted
    restarted.fail("terminal:t", "subject:3f9a")
    with pytest.raises(LockedOut):
        Lockout(s, clock=clock, path=path).check("subject:3f9a")
    data = json.loads(path.read_text())
    assert set(data) == {"version", "fails", "until", "pending"} and set(data["until"]) == {"terminal:t",
                                                                                           "subject:3f9a"}
    clock.now += 301.0
    Lockout(s, clock=clock, path=path).check("terminal:t", "subject:3f9a")


def test_a_damaged_state_file_is_an_error_not_a_reset(tmp_path):
    path = tmp_path / "lockout.json"
    path.write_text("{not json")
    with pytest.raises(LockoutStateError) as exc:
        Lockout(SessionSettings(), path=path)
    assert exc.value.code == "SES_LOCKOUT_STATE"


def test_a_window_is_charged_until_a_verdict_settles_it(lock):
    # Review 8's high: a window ended early (frames stopped, camera lost, cancel) was no strike, so an
    # injector that saw it going badly could end it and try again with a new nonce for free.
    lockout, clock = lock
    lockout.begin("s1", "terminal:t", "subject:a")
    assert lockout.settle("s1") and not lockout.settle("s1")       # judged: no strike from the charge
    assert not lockout.forfeit("s1")
    for sid in ("s2", "s3", "s4"):
        lockout.begin(sid, "terminal:t", "subject:a")
        assert lockout.forfeit(sid)                                 # ended without a verdict: a strike
    with pytest.raises(LockedOut):
        lockout.check("terminal:t")
    with pytest.raises(LockedOut):
        lockout.check("subject:a")


def test_a_window_open_when_the_daemon_died_counts_at_its_next_start(tmp_path):
    s, clock, path = on_disk(tmp_path, 2)
    first = Lockout(s, clock=clock, path=path)
    first.fail("terminal:t")
    first.begin("s1", "terminal:t")                          # then SIGKILL: nothing settles it
    restarted = Lockout(s, clock=clock, path=path)
    with pytest.raises(LockedOut):
        restarted.check("terminal:t")
    assert json.loads(path.read_text())["pending"] == {}    # counted once, not again at the next start
    clock.now += 301.0
    Lockout(s, clock=clock, path=path).check("terminal:t")
    path.write_text(json.dumps({"version": 1, "fails": {}, "until": {}, "pending": {"s": "terminal:t"}}))
    with pytest.raises(LockoutStateError):
        Lockout(s, clock=clock, path=path)


# -- the lockout in the audit log (sec27, review 26) -----------------------------------------------------------

def _audited(tmp_path, clock):
    """A signed audit log on the lockout's clock, and a Lockout on it with a state file (the daemon's)."""
    from agent.security.audit import AuditLog
    from agent.security.keys import generate_file_key
    key = generate_file_key(tmp_path / "k.pem")
    log = AuditLog(tmp_path / "audit.jsonl", key, checkpoint_every=5, clock=clock)
    s = SessionSettings(max_failures=3, failure_window_s=60.0, lockout_s=300.0)
    return s, log, key, tmp_path / "lockout.json"


def _locked_out(tmp_path, *keys, clock=None):
    """``_audited``'s, with ``keys`` locked out by three failures at ``clock``'s time (1000 s by default)."""
    clock = clock or FakeClock()
    s, log, key, path = _audited(tmp_path, clock)
    lockout = Lockout(s, clock=clock, path=path, audit=log)
    for _ in range(3):
        lockout.fail(*keys)
    return s, log, key, path, lockout, clock


def _events(log, event):
    lines = [json.loads(x) for x in log.path.read_text().splitlines()]
    return [e["data"] for e in lines if e["event"] == event]


def test_a_lockout_s_start_and_end_are_chained_entries_of_the_audit_log(tmp_path):
    # Review 26: a lockout's start was written only to lockout.json. Now its start (key, end, the failures
    # that made it) and its end are audit entries, hash-chained and signed like the rest.
    from agent.security import audit
    _, log, key, _, lockout, clock = _locked_out(tmp_path, "terminal:t", "subject:3f9a")
    assert _events(log, "lockout_start") == [
        {"key": "terminal:t", "until": 1300.0, "failures": 3, "window_s": 60.0},
        {"key": "subject:3f9a", "until": 1300.0, "failures": 3, "window_s": 60.0}]
    assert _events(log, "lockout_end") == []
    clock.now += 300.0
    lockout.check("terminal:t", "subject:3f9a")                         # its end, seen at the next look
    assert _events(log, "lockout_end") == [{"key": "terminal:t", "until": 1300.0, "why": "EXPIRED"},
                                           {"key": "subject:3f9a", "until": 1300.0, "why": "EXPIRED"}]
    lockout.check("terminal:t")
    assert len(_events(log, "lockout_end")) == 2                        # once
    log.close()
    # the four, the six strikes (sec28: three per key) and two checkpoints (every 5, and at close)
    assert audit.verify(log.path, key.public_key()).entries == 12


def test_a_deleted_lockout_state_is_restored_from_the_audit_log(tmp_path):
    # The attack review 26 named: root on the terminal deletes lockout.json and restarts the daemon. Main:
    # the lockout was gone and nothing said so. Now it is restored from the log (fail closed), and the restore
    # is an entry of its own (SES_LOCKOUT_RESTORED, the state MISSING).
    s, log, _, path, _, clock = _locked_out(tmp_path, "terminal:t", "subject:3f9a")
    path.unlink()
    clock.now += 100.0
    restarted = Lockout(s, clock=clock, path=path, audit=log)
    for k in ("terminal:t", "subject:3f9a"):
        with pytest.raises(LockedOut, match="200 s"):                  # main: allowed
            restarted.check(k)
    assert [(d["key"], d["until"], d["why"], d["state"]) for d in _events(log, "lockout_restored")] == [
        ("terminal:t", 1300.0, "SES_LOCKOUT_RESTORED", "MISSING"),
        ("subject:3f9a", 1300.0, "SES_LOCKOUT_RESTORED", "MISSING")]
    assert set(json.loads(path.read_text())["until"]) == {"terminal:t", "subject:3f9a"}
    Lockout(s, clock=clock, path=path, audit=log)                       # the state holds them now: no restore
    assert len(_events(log, "lockout_restored")) == 2
    clock.now += 200.0
    Lockout(s, clock=clock, path=path, audit=log).check("terminal:t", "subject:3f9a")   # ended: not restored


def test_a_lockout_state_put_back_from_before_the_lockout_is_restored_from_the_audit_log(tmp_path):
    # The same attacker keeps a copy of lockout.json from before the third failure and puts it back (main: the
    # lockout gone, two strikes kept). The log's lockout is later than the state's: restored (state BEHIND).
    # Entries the attacker floods the log with afterwards do not hide it (the log is read back from its end
    # as far as a lockout lasts, not a byte tail).
    clock = FakeClock()
    s, log, _, path = _audited(tmp_path, clock)
    lockout = Lockout(s, clock=clock, path=path, audit=log)
    lockout.fail("subject:3f9a")
    lockout.fail("subject:3f9a")
    before = path.read_bytes()
    lockout.fail("subject:3f9a")
    for i in range(4000):                                               # ~600 kB: past diagnose's tail
        log.record("session_start", session_id=f"s-{i}", purpose="verify", channel="kiosk" + "x" * 100)
    path.write_bytes(before)
    restarted = Lockout(s, clock=clock, path=path, audit=log)
    with pytest.raises(LockedOut):
        restarted.check("subject:3f9a")                                 # main: allowed
    assert [(d["key"], d["state"]) for d in _events(log, "lockout_restored")] == [("subject:3f9a", "BEHIND")]


def test_an_audit_log_that_cannot_be_read_at_start_is_a_lockout_state_error(tmp_path):
    clock = FakeClock()
    s, log, _, path = _audited(tmp_path, clock)
    log.path.unlink()                                                   # (gone under a running log)
    with pytest.raises(LockoutStateError) as exc:
        Lockout(s, clock=clock, path=path, audit=log)
    assert exc.value.code == "SES_LOCKOUT_STATE"


def test_diagnose_shows_the_lockouts_by_kind_never_their_keys(tmp_path):
    import dataclasses

    from agent.commands.diagnose import Diagnosis
    from agent.config import Settings
    clock = FakeClock()
    clock.now = __import__("time").time()
    s, log, _, path, _, _ = _locked_out(tmp_path, "terminal:kiosk-q9z", "subject:5c0ffee1", clock=clock)
    path.unlink()
    Lockout(s, clock=clock, path=path, audit=log)
    log.close()
    settings = dataclasses.replace(Settings(), audit=dataclasses.replace(Settings().audit, path=str(log.path)))
    shown = Diagnosis("sim://", settings, True, 10).sessions()
    assert shown["lockouts"]["counts"] == {"lockout_start": 2, "lockout_end": 0, "lockout_restored": 2,
                                           "lockout_strike": 6, "lockout_cleared": 0, "strikes_restored": 0,
                                           "lockout_charge": 0, "lockout_settled": 0, "lockout_graced": 0}
    assert shown["lockouts"]["running"] == 2
    assert "2 started, 0 ended, 2 running, 2 restored from the audit log (SES_LOCKOUT_RESTORED" in shown["note"]
    assert "strikes short of a lockout: 6, 0 key(s) cleared" in shown["note"]
    assert [r["kind"] for r in shown["lockouts"]["last"]] == ["person", "terminal", "person", "terminal", "person"]
    assert "5c0ffee1" not in json.dumps(shown) and "q9z" not in json.dumps(shown)


# -- strikes short of a lockout in the audit log (sec28) ------------------------------------------------------

def _at(ts: float) -> list[object]:
    """A strike's stamps in the state file (strikes32), made at ``ts`` on FakeClock's boot: its CLOCK_BOOTTIME
    moved with the system clock from (1000 s, 50 000 ms)."""
    return [ts, "b00t-1", 50_000 + int((ts - 1000.0) * 1000), 60.0]          # its own failure window last (sec33)


def _lockout_on_log(tmp_path):
    """``_audited``'s, with the clock and the daemon's Lockout on them."""
    clock = FakeClock()
    s, log, key, path = _audited(tmp_path, clock)
    return clock, s, log, key, path, Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)


def test_each_strike_and_a_success_that_clears_them_are_chained_entries_of_the_audit_log(tmp_path):
    # sec27 left them in lockout.json alone. Now each strike (the key, when it leaves the window) and a success
    # clearing a key's strikes are entries, hash-chained and signed like the rest.
    from agent.security import audit
    clock, s, log, key, path, lockout = _lockout_on_log(tmp_path)
    lockout.fail("terminal:t", "subject:3f9a")
    clock.now += 5.0
    lockout.succeed("subject:3f9a", "subject:none")                     # a key with no strikes: no entry
    boot = {"boot": "b00t-1", "boot_ms": 50_000}                         # the host's CLOCK_BOOTTIME (strikes32)
    assert _events(log, "lockout_strike") == [
        {"key": "terminal:t", "until": 1060.0, "window_s": 60.0, **boot},
        {"key": "subject:3f9a", "until": 1060.0, "window_s": 60.0, **boot}]
    assert _events(log, "lockout_cleared") == [{"key": "subject:3f9a", "until": 1005.0}]
    log.close()
    assert audit.verify(log.path, key.public_key()).entries == 4        # the three, and the checkpoint at close


def test_strikes_short_of_a_lockout_are_restored_from_the_audit_log_when_the_state_is_deleted(tmp_path):
    # The attack sec27 left: root deletes lockout.json to reset its count of failures (two of three here), then
    # restarts the daemon. Main: two fresh tries before the lockout. Now the strikes come back from the log (MISSING)
    # and the next failure locks out.
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    lockout.fail("terminal:t", "subject:3f9a")
    clock.wait(10.0)
    lockout.fail("terminal:t", "subject:3f9a")
    path.unlink()
    clock.wait(10.0)
    restarted = Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)
    restarted.check("terminal:t", "subject:3f9a")                       # two strikes: still allowed
    assert [(d["key"], d["strikes"], d["why"], d["state"], d["until"]) for d in _events(log, "strikes_restored")] == [
        ("terminal:t", 2, "SES_STRIKES_RESTORED", "MISSING", 1070.0),
        ("subject:3f9a", 2, "SES_STRIKES_RESTORED", "MISSING", 1070.0)]
    two = [_at(1000.0), _at(1010.0)]                                    # each stamped (strikes32)
    assert json.loads(path.read_text())["fails"] == {"terminal:t": two, "subject:3f9a": two}
    Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)  # the state holds them now: no restore
    assert len(_events(log, "strikes_restored")) == 2
    restarted.fail("subject:3f9a")
    with pytest.raises(LockedOut):                                      # main: allowed (one strike of three)
        restarted.check("subject:3f9a")


def test_strikes_put_back_from_before_are_restored_and_cleared_ended_or_old_ones_are_not(tmp_path):
    # The state put back from after one strike (BEHIND: the second comes back); a key whose strikes a success
    # cleared, a key whose strikes made a lockout (restored as a lockout, not as strikes) and a strike past its
    # window are not brought back.
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    lockout.fail("subject:old")
    clock.wait(50.0)
    lockout.fail("subject:a", "subject:ok")
    before = path.read_bytes()
    clock.wait(5.0)
    lockout.fail("subject:a", "subject:ok")
    lockout.succeed("subject:ok")
    for _ in range(3):
        lockout.fail("subject:locked")
    clock.wait(20.0)                                                    # subject:old's strike has left its window
    path.write_bytes(before)
    restarted = Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)
    restored = [(d["key"], d["strikes"], d["state"]) for d in _events(log, "strikes_restored")]
    assert restored == [("subject:a", 1, "BEHIND")]
    assert [d["key"] for d in _events(log, "lockout_restored")] == ["subject:locked"]
    fails = json.loads(path.read_text())["fails"]
    assert fails["subject:a"] == [_at(1050.0), _at(1055.0)] and "subject:old" not in fails \
        and "subject:locked" not in fails
    assert fails.get("subject:ok") == [_at(1050.0)]                    # the state's own strike stays (the union)
    restarted.fail("subject:a")
    with pytest.raises(LockedOut):
        restarted.check("subject:a")


def test_a_window_charged_when_the_daemon_died_counts_from_the_audit_log_when_the_state_is_deleted(tmp_path):
    # The injector's way with a window going badly: kill the daemon in it, delete lockout.json (which held the
    # charge) and start again. Main: the charge was forgotten (a free try). The charge and its settling are audit
    # entries now (lockout_charge, lockout_settled, with the session id): an open one counts at start as a strike
    # (strikes_restored, charged), once; a settled one (a verdict, a worker fault) does not.
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    lockout.fail("subject:3f9a")
    lockout.begin("s-ok", "subject:3f9a")
    assert lockout.settle("s-ok")                                       # settled: never counted
    lockout.begin("s-1", "terminal:t", "subject:3f9a")                  # then SIGKILL, the state deleted
    path.unlink()
    restarted = Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)
    assert json.loads(path.read_text())["fails"] == {"subject:3f9a": [_at(1000.0), _at(1000.0)],
                                                     "terminal:t": [_at(1000.0)]}
    restarted.fail("subject:3f9a")                                      # the strike restored, the charge, this
    with pytest.raises(LockedOut):                                      # main: allowed (one strike of three)
        restarted.check("subject:3f9a")
    charged = [(d["key"], d["strikes"], d["charged"]) for d in _events(log, "strikes_restored") if d.get("charged")]
    assert charged == [("terminal:t", 1, True), ("subject:3f9a", 1, True)]
    assert [d["session_id"] for d in _events(log, "lockout_settled")] == ["s-ok", "s-1", "s-1"]
    Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)  # settled in the log now: not again
    assert json.loads(path.read_text())["fails"]["terminal:t"] == [_at(1000.0)]


# -- a window the terminal itself made late (late31) -------------------------------------------------------------

def test_a_host_late_window_is_graced_once_an_hour_per_key_and_then_counts(lock):
    # The allowance (host_late_grace_per_hour, 1 by default): the first host-late window settles its charge with no
    # strike; the next within the hour, on the terminal or for the subject, is not graced and counts when forfeit.
    lockout, clock = lock
    assert lockout.s.host_late_grace_per_hour == 1
    for sid in ("s-1", "s-2"):
        lockout.begin(sid, "terminal:t", "subject:a")
    assert lockout.grace("s-1", "SES_WINDOW_LATE") is True
    assert lockout.grace("s-1", "SES_WINDOW_LATE") is False               # no charge open any more
    assert lockout._fails == {}                                            # no strike
    assert lockout.grace("s-2", "SES_FRAMES_LOST") is False               # the hour's allowance spent
    assert lockout.forfeit("s-2") is True                                  # still open: counted as before
    assert [len(q) for q in lockout._fails.values()] == [1, 1]
    lockout.begin("s-3", "terminal:t", "subject:other")                    # the terminal's allowance is spent too
    assert lockout.grace("s-3", "SES_WINDOW_LATE") is False
    lockout.settle("s-3")
    clock.wait(3600.0)                                                     # an hour later: one more
    lockout.begin("s-4", "terminal:t", "subject:a")
    assert lockout.grace("s-4", "SES_WINDOW_LATE") is True


def test_no_grace_when_the_allowance_is_zero():
    lockout = Lockout(SessionSettings(max_failures=1, host_late_grace_per_hour=0), clock=FakeClock())
    lockout.begin("s-1", "terminal:t")
    assert lockout.grace("s-1", "SES_WINDOW_LATE") is False
    lockout.forfeit("s-1")
    with pytest.raises(LockedOut):
        lockout.check("terminal:t")
    with pytest.raises(ValueError, match="host_late_grace_per_hour"):
        SessionSettings(host_late_grace_per_hour=-1)


def test_graces_are_audited_and_a_deleted_state_file_does_not_renew_the_allowance(tmp_path, caplog):
    # Root who can make the host late (a CPU flood) turns its windows into graces, one an hour; deleting
    # lockout.json to renew the allowance does not work: the graces of the last hour come back from the log.
    clock, s, log, key, path, lockout = _lockout_on_log(tmp_path)
    lockout.begin("s-1", "terminal:t", "subject:3f9a")
    assert lockout.grace("s-1", "SES_WINDOW_LATE") is True
    boot = {"boot": "b00t-1", "boot_ms": 50_000}                           # the host's CLOCK_BOOTTIME (sec32)
    assert _events(log, "lockout_graced") == [
        {"key": "terminal:t", "until": 4600.0, "session_id": "s-1", "why": "SES_WINDOW_LATE", **boot},
        {"key": "subject:3f9a", "until": 4600.0, "session_id": "s-1", "why": "SES_WINDOW_LATE", **boot}]
    assert [d["session_id"] for d in _events(log, "lockout_settled")] == ["s-1", "s-1"]
    stamped = [1000.0, "b00t-1", 50_000]
    assert json.loads(path.read_text())["graced"] == {"terminal:t": [stamped], "subject:3f9a": [stamped]}
    path.unlink()
    clock.wait(60.0)
    with caplog.at_level(logging.ERROR, logger="agent.session.lockout"):
        again = Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)   # the daemon restarted
    # Its own code (mend31): SES_STRIKES_RESTORED is the strikes'.
    assert [r.getMessage() for r in caplog.records if "grace" in r.getMessage()] == [
        "lockout: error[SES_GRACES_RESTORED]: 2 host-late grace(s) of the last hour restored from the audit log (the "
        "state file did not hold them)"]
    again.begin("s-2", "terminal:t", "subject:new")
    assert again.grace("s-2", "SES_WINDOW_LATE") is False                  # the terminal's grace came back
    assert json.loads(path.read_text())["graced"]["terminal:t"] == [stamped]
    clock.wait(3600.0)
    third = Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)   # past the hour: none restored
    third.begin("s-3", "terminal:t")
    assert third.grace("s-3", "SES_WINDOW_LATE") is True


# -- the grace's hour against root's clock (sec32) -----------------------------------------------------------------

def _graced(lockout: Lockout, sid: str, *keys: str) -> bool:
    """A window of ``keys`` charged and then ended host-late: whether it was graced."""
    lockout.begin(sid, *keys)
    return lockout.grace(sid, "SES_WINDOW_LATE")


def test_a_system_clock_set_forward_buys_no_grace(tmp_path):
    # Root's way to free tries (sec32): make each window late (a CPU flood) and set the clock forward an hour before
    # the next. Main counted the hour on the system clock alone: 24 windows, 24 graces, no strike. The grace is
    # stamped with the host's CLOCK_BOOTTIME too, which nothing sets: the hour runs until that says so as well.
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    graced = 0
    for i in range(24):
        lockout.begin(f"s-{i}", "terminal:t", "subject:a")
        graced += lockout.grace(f"s-{i}", "SES_WINDOW_LATE")
        lockout.settle(f"s-{i}")
        clock.now += 3600.0                                                 # root: date -s '+1 hour'
    assert graced == 1
    restarted = Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)   # the state file kept
    assert _graced(restarted, "s-x", "terminal:t") is False
    restarted.settle("s-x")
    clock.boot_ms += 3_600_000                                              # a real hour (the clock already ahead)
    assert _graced(restarted, "s-y", "terminal:t") is True


def test_after_a_reboot_the_system_clock_alone_ages_a_grace_without_a_tpm(lock):
    # The residual without a TPM: CLOCK_BOOTTIME starts again at a reboot (another boot id), so a grace of the
    # last boot ages by the system clock alone (one grace per reboot and clock move; the server still counts).
    lockout, clock = lock
    assert _graced(lockout, "s-1", "terminal:t") is True
    clock.now += 3600.0
    clock.boot, clock.boot_ms = "b00t-2", 20_000
    assert _graced(lockout, "s-2", "terminal:t") is True


def test_graces_stripped_of_their_stamps_get_them_back_from_the_log(tmp_path):
    # Root edits lockout.json back to late31's bare times (the system clock alone would age them), restarts, and
    # sets the clock forward: the log's entries carry the stamps, and the restore puts them back.
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    assert _graced(lockout, "s-1", "terminal:t") is True
    data = json.loads(path.read_text())
    data["graced"] = {"terminal:t": [1000.0]}
    path.write_text(json.dumps(data))
    clock.wait(60.0)
    restarted = Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)
    assert json.loads(path.read_text())["graced"] == {"terminal:t": [[1000.0, "b00t-1", 50_000]]}
    clock.now += 7200.0                                                     # root: date -s '+2 hours'
    assert _graced(restarted, "s-2", "terminal:t") is False


def test_a_grace_older_than_the_lockout_s_window_still_comes_back_from_the_log(tmp_path):
    # late31 read the log back over max(lockout_s, failure_window_s) (15 min by default, 5 here): a grace of 20
    # minutes ago was not found, and deleting lockout.json then renewed the allowance. The reading covers the hour.
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    assert _graced(lockout, "s-1", "terminal:t") is True
    clock.wait(1200.0)
    path.unlink()
    restarted = Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)
    assert _graced(restarted, "s-2", "terminal:t") is False


def test_the_time_namespace_s_boottime_offset_is_taken_off(tmp_path):
    # Root starts the daemon in a time namespace whose CLOCK_BOOTTIME runs an hour ahead (unshare --time
    # --boottime 3600): every stamp of this boot would look an hour older. The offset is read and taken off.
    import subprocess
    import sys

    from agent.session.lockout import boottime_offset_ns
    f = tmp_path / "timens_offsets"
    f.write_text("monotonic           0         0\nboottime         3600       500\n")
    assert boottime_offset_ns(f) == 3_600_000_000_500
    f.write_text("boottime x 0\n")
    assert boottime_offset_ns(f) == 0
    assert boottime_offset_ns(tmp_path / "none") == 0
    code = "from agent.session.lockout import host_elapsed; print(*host_elapsed())"
    from agent.session.lockout import host_elapsed
    before = host_elapsed()                     # read around the child: its reading lies between, however slow
    try:
        inside = subprocess.run(["unshare", "--user", "--map-root-user", "--time", "--boottime", "3600",
                                 sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        pytest.skip("no unshare(1) here")
    if inside.returncode != 0:
        pytest.skip(f"time namespaces not permitted here: {inside.stderr.strip()[:120]}")
    boot, ms = inside.stdout.split()
    after = host_elapsed()
    assert boot == before[0]
    assert before[1] <= int(ms) <= after[1]      # the host's, not an hour (3.6e6 ms) ahead


def test_a_boot_id_forged_between_windows_buys_no_grace():
    # review32 D1: root mounts a new uuid over /proc/sys/kernel/random/boot_id before each late window and sets the
    # system clock an hour forward. Read on every call, the id never matched the grace's stamp, so the system clock
    # alone aged it: 24 graces of 24. It is read once per process now; the real CLOCK_BOOTTIME ages every stamp.
    import uuid

    from agent.session.lockout import HostElapsed
    reads: list[str] = []

    def forged() -> str:
        reads.append(str(uuid.uuid4()))
        return reads[-1]

    clock = FakeClock()
    lockout = Lockout(SessionSettings(max_failures=3, failure_window_s=60.0, lockout_s=300.0), clock=clock,
                      elapsed=HostElapsed(read_id=forged, read_offset=lambda: 0))
    graced = 0
    for i in range(24):
        graced += _graced(lockout, f"s-{i}", "terminal:t", "subject:a")
        lockout.forfeit(f"s-{i}")
        clock.now += 3600.0                                                 # root: date -s '+1 hour'
    assert graced == 1
    assert len(reads) == 1


def test_another_boot_id_is_a_reboot_only_when_clock_boottime_went_below_the_stamp(tmp_path):
    # Across a restart the id is read again: root forges it before restarting the daemon. Another id with
    # CLOCK_BOOTTIME at or past the stamp's is aged as the same boot (fail closed); below it, a reboot (the system
    # clock alone, test_after_a_reboot_the_system_clock_alone_ages_a_grace_without_a_tpm).
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    assert _graced(lockout, "s-1", "terminal:t") is True
    clock.wait(60.0)
    clock.now += 3600.0                                                     # root: date -s '+1 hour'
    clock.boot = "f0rged"                                                   # and a uuid mounted over boot_id
    restarted = Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)
    assert _graced(restarted, "s-2", "terminal:t") is False
    restarted.settle("s-2")
    clock.wait(3600.0)                                                      # a real hour: the grace has aged
    assert _graced(restarted, "s-4", "terminal:t") is True


def test_same_boot_rule():
    from agent.observe.ledger import BOOT_UNREAD, TpmStamp, same_boot
    assert same_boot("a", 5_000, "a", 1_000)                # one id: one boot (a negative age holds the stamp)
    assert same_boot("a", 5_000, "b", 5_000)                # another id, CLOCK_BOOTTIME not below: one boot
    assert not same_boot("a", 5_000, "b", 4_999)            # below: a reboot
    assert not same_boot("", 0, "a", 9_000)                 # late31's bare times carry no stamp
    assert not same_boot(BOOT_UNREAD, 5_000, BOOT_UNREAD, 4_000)   # two unread ids are not one boot
    assert same_boot(BOOT_UNREAD, 5_000, BOOT_UNREAD, 6_000)
    # The TPM's time bounded alike (sec29's bound on a TPM sped up): a forged id no longer lifts it.
    then = TpmStamp("1.0", 1_000, 10_000, "a", 5_000)
    assert then.age_ms(TpmStamp("1.0", 3_601_000, 3_610_000, "f0rged", 65_000)) == 60_000
    assert then.age_ms(TpmStamp("2.0", 0, 3_610_000, "b", 1_000)) == 3_600_000   # a reboot: TPM clock


def test_a_bind_mount_over_boot_id_buys_no_grace(tmp_path):
    # review32's attack itself, with the real host_elapsed: in a user and mount namespace the child mounts a new uuid
    # over /proc/sys/kernel/random/boot_id before each window and moves its system clock an hour. Then a restarted
    # daemon (another process, reading the forged id) on the state file gets no grace either.
    import subprocess
    import sys

    script = tmp_path / "attack.py"
    script.write_text(f'''
import subprocess, sys, uuid
from pathlib import Path
from agent.config import SessionSettings
from agent.session.lockout import Lockout, boot_id
class Clock:
    now = 1_000_000.0
    def __call__(self):
        return self.now
clock, tmp = Clock(), Path({str(tmp_path)!r})
s = SessionSettings(max_failures=3, failure_window_s=60.0, lockout_s=300.0)
def forge(i):
    f = tmp / f"boot{{i}}"
    f.write_text(str(uuid.uuid4()) + "\\n")
    subprocess.run(["mount", "--bind", str(f), "/proc/sys/kernel/random/boot_id"], check=True)
if sys.argv[1] == "windows":
    lock, graced, first = Lockout(s, clock=clock, path=tmp / "lockout.json"), 0, boot_id()
    for i in range(24):
        forge(i)
        lock.begin(f"s-{{i}}", "terminal:t")
        graced += lock.grace(f"s-{{i}}", "SES_WINDOW_LATE")
        lock.forfeit(f"s-{{i}}")
        clock.now += 3600.0
    print(graced, boot_id() != first)
else:
    clock.now += 30 * 3600.0
    forge(99)
    lock = Lockout(s, clock=clock, path=tmp / "lockout.json")
    lock.begin("s-x", "terminal:t")
    print(lock.grace("s-x", "SES_WINDOW_LATE"))
''')
    code = f"{sys.executable} {script} windows && {sys.executable} {script} restarted"
    try:
        out = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", code],
                             capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        pytest.skip("no unshare(1) here")
    if out.returncode != 0:
        pytest.skip(f"user and mount namespaces not permitted here: {out.stderr.strip()[-160:]}")
    assert out.stdout.split() == ["1", "True", "False"]


def test_a_clock_set_forward_and_a_deleted_state_file_buy_no_grace(tmp_path):
    # boot32 found and left it (without a TPM, the same boot id): the log was read back only to the first entry the
    # system clock called old, so a clock an hour forward and a deleted lockout.json renewed the allowance. Since
    # strikes32 only an entry CLOCK_BOOTTIME calls old stops the reading: the grace comes back from the log (docs33).
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    assert _graced(lockout, "s-0", "terminal:t") is True
    lockout.settle("s-0")
    for i in range(1, 4):
        clock.now += 3600.0                                                 # root: date -s '+1 hour'
        path.unlink()
        lockout = Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)   # restarted on no state
        assert _graced(lockout, f"s-{i}", "terminal:t") is False
        lockout.settle(f"s-{i}")
    clock.wait(3600.0)                                                      # a real hour: the allowance is back
    path.unlink()
    lockout = Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)
    assert _graced(lockout, "s-4", "terminal:t") is True


# -- strikes short of a lockout against root's clock (strikes32) -----------------------------------------------------

def _subject_lockouts(log) -> int:
    return sum(d["key"] == "subject:a" for d in _events(log, "lockout_start"))


@pytest.mark.parametrize("restart", ["kept", "deleted"])
def test_a_system_clock_set_forward_after_each_strike_ages_none(tmp_path, restart):
    # Root's way to free tries (sec32 left it): forfeit a window, set the clock forward by the failure window, and
    # try again. Main aged each strike on the system clock alone: 12 windows, 12 strikes, never a lockout (max 3).
    # Each strike is stamped with the host's CLOCK_BOOTTIME too (Stamp, as sec32's graces): 4 lockouts, as without
    # the clock's moves; and the same with lockout.json deleted before each restart (restored from the log, read back
    # past the entries the clock's moves made look old).
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    for i in range(12):
        lockout.begin(f"s-{i}", "terminal:t", "subject:a")
        assert lockout.forfeit(f"s-{i}")
        clock.now += s.failure_window_s                                     # root: date -s '+1 min'
        clock.boot_ms += 20_000                                             # the window's real 20 s
        if restart == "deleted":
            path.unlink()
            lockout = Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)
    assert _subject_lockouts(log) == 4
    strikes = _events(log, "lockout_strike")
    assert len(strikes) == 24 and all(d["boot"] == "b00t-1" for d in strikes)


def test_a_strike_leaves_its_window_once_every_clock_says_so(lock):
    # The window still ends: real time moves CLOCK_BOOTTIME with the system clock. A clock set back (root making
    # strikes look young) only keeps them longer: fail closed.
    lockout, clock = lock
    lockout.fail("subject:a")
    lockout.fail("subject:a")
    clock.now += 3600.0
    clock.boot_ms += 59_000                                                 # 59 s of real time: still in
    lockout.fail("subject:a")
    with pytest.raises(LockedOut):
        lockout.check("subject:a")
    lockout.fail("subject:b")
    lockout.fail("subject:b")
    clock.wait(61.0)                                                        # both clocks past the window
    lockout.fail("subject:b")
    lockout.check("subject:b")
    assert [len(q) for q in (lockout._fails["subject:b"],)] == [1]


def test_after_a_reboot_the_system_clock_alone_ages_a_strike_without_a_tpm(tmp_path):
    # The residual without a TPM (as sec32's graces): a reboot starts CLOCK_BOOTTIME again under another boot id, so
    # the last boot's strikes age by the system clock alone: a reboot and a clock move forget them (the server's
    # counts on the store's clock still stand: docs/uplink.md).
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    lockout.fail("subject:a")
    lockout.fail("subject:a")
    clock.now += 60.0
    clock.boot, clock.boot_ms = "b00t-2", 20_000                            # rebooted
    again = Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)
    again.fail("subject:a")
    again.check("subject:a")
    assert json.loads(path.read_text())["fails"] == {"subject:a": [[1060.0, "b00t-2", 20_000, 60.0]]}


def test_an_older_state_file_s_bare_strike_times_are_read_as_before(tmp_path):
    # The upgrade: lockout.json written before strikes32 holds each strike as a bare time. It is read, aged by the
    # system clock alone (as it was), and written back stamped from the next save on; a stamp that is not a time
    # nor a stamp's list is SES_LOCKOUT_STATE, as any damaged state.
    clock, s, path = FakeClock(), SessionSettings(max_failures=3, failure_window_s=60.0, lockout_s=300.0), \
        tmp_path / "lockout.json"
    path.write_text(json.dumps({"version": 1, "fails": {"subject:a": [990.0, 995.0], "subject:old": [900.0]},
                                "until": {}, "pending": {}}))
    lockout = Lockout(s, clock=clock, path=path, elapsed=clock.elapsed)
    lockout.fail("subject:old")                                             # its bare strike is past the window
    lockout.check("subject:old")
    bare = [[990.0, "", 0], [995.0, "", 0]]                                 # no clock but the system's, as before
    assert json.loads(path.read_text())["fails"] == {"subject:a": bare, "subject:old": [_at(1000.0)]}
    lockout.fail("subject:a")                                               # two old strikes and this: locked out
    with pytest.raises(LockedOut):
        lockout.check("subject:a")
    path.write_text(json.dumps({"version": 1, "fails": {"subject:a": [[990.0, "b"]]}, "until": {}, "pending": {}}))
    with pytest.raises(LockoutStateError):
        Lockout(s, clock=clock, path=path, elapsed=clock.elapsed)


@pytest.mark.parametrize("edited, restored", [
    ([1000.0, 1000.0], [(2, "BEHIND")]),
    ([[1000.0, "x", 2**62], [1000.0, "x", 2**62]], None),
    ([[1000.0, "b00t-1", 50_000], [1000.0, "b00t-1", 50_000]], []),
], ids=["stripped", "rewritten", "before_sec33"])
def test_strikes_whose_stamps_were_edited_get_the_logs_back(tmp_path, edited, restored):
    # Root edits lockout.json's strikes, restarts and sets the clock forward: back to bare times (stripped: the system
    # clock alone would age them), or with their stamps rewritten (review32c: another boot id, boot_ms far ahead, no
    # longer "this boot"). The log's lockout_strike entries carry the stamps (boot, boot_ms), which its chain binds,
    # and the restore puts them back whenever the file's lack them or read otherwise. before_sec33 (the upgrade): the
    # file's strikes without their window take their entries' quietly (no strikes_restored: nothing was lost).
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    lockout.fail("subject:a")
    lockout.fail("subject:a")
    data = json.loads(path.read_text())
    data["fails"] = {"subject:a": edited}
    path.write_text(json.dumps(data))
    clock.wait(10.0)
    restarted = Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)
    assert json.loads(path.read_text())["fails"] == {"subject:a": [_at(1000.0), _at(1000.0)]}
    if restored is not None:
        assert [(d["strikes"], d["state"]) for d in _events(log, "strikes_restored")] == restored
    clock.now += 7200.0                                                     # root: date -s '+2 hours'
    restarted.fail("subject:a")
    with pytest.raises(LockedOut):
        restarted.check("subject:a")


def test_a_charge_open_in_the_log_counts_after_a_clock_move_too(tmp_path):
    # The daemon killed in a window, lockout.json deleted, the clock set forward past the window before the restart:
    # the log's lockout_charge carries CLOCK_BOOTTIME too, so the open charge still counts as a strike.
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    lockout.begin("s-1", "subject:a")                                       # then SIGKILL
    path.unlink()
    clock.now += 3600.0
    clock.boot_ms += 5_000
    Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)
    assert json.loads(path.read_text())["fails"] == {"subject:a": [[4600.0, "b00t-1", 55_000, 60.0]]}


def test_the_log_is_read_back_past_entries_a_clock_move_made_old_but_not_past_the_upgrade(tmp_path):
    # lockout_entries with CLOCK_BOOTTIME (strikes32): entries that only the system clock calls old (unstamped ones,
    # the checkpoints among them) do not stop the reading; past a strike written before strikes32 (no boot stamp)
    # the system clock's rule stands again, so a log from before the upgrade is not read whole at each start.
    from agent.observe.ledger import lockout_entries
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    log.record("lockout_strike", key="subject:pre", until=1060.0, window_s=60.0)   # as written before strikes32
    clock.wait(120.0)
    log.record("other", note="x")
    lockout.fail("subject:a")                                                # at 1120 s, boot 170 000 ms
    for _ in range(6):
        log.record("other", note="x")                                        # checkpoints among them
    clock.now += 3600.0                                                      # root: date -s '+1 hour'
    since, window_ms = clock.now - 60.0, 60_000
    assert [e.key for e in lockout_entries(log.path, since)] == []           # the system clock's rule: hidden
    found = lockout_entries(log.path, since, None, window_ms, clock.elapsed())
    assert [(e.event, e.key) for e in found] == [("lockout_strike", "subject:a")]
    assert found[0].boot == "b00t-1" and found[0].boot_ms == 170_000
    # boot32 with strikes32: a boot id forged before the restart (CLOCK_BOOTTIME not below the strike's) is the same
    # boot, so the strike is still read back; a real reboot (CLOCK_BOOTTIME below it) ends the reading.
    forged = lockout_entries(log.path, since, None, window_ms, ("f0rged", clock.elapsed()[1]))
    assert [(e.event, e.key) for e in forged] == [("lockout_strike", "subject:a")]
    assert lockout_entries(log.path, since, None, window_ms, ("rebooted", 1_000)) == []


# -- the failure window a strike was struck under (sec33; review32c) ------------------------------------------------

def _restarted(clock, log, path, state, **settings):
    """The daemon restarted by root with ``settings`` changed in its config, ``lockout.json`` kept or deleted."""
    if state == "deleted":
        path.unlink()
    s = SessionSettings(**{"max_failures": 3, "failure_window_s": 60.0, "lockout_s": 300.0, **settings})
    return Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)


@pytest.mark.parametrize("state", ["kept", "deleted"])
def test_a_failure_window_lowered_in_the_config_forgets_no_strike(tmp_path, state):
    # review32c: the restore aged each logged strike on today's failure_window_s, not the window it was struck under.
    # Root lowers failure_window_s from 60 s to 5 s, restarts and sets the clock forward: main forgot both strikes of
    # 30 s ago (and the state file's were pruned on the new window too), so the next failure made one strike, not a
    # lockout. Each strike keeps its own window (the entry's window_s, the state file's stamp): the third locks.
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    lockout.fail("subject:a")
    lockout.fail("subject:a")
    clock.wait(30.0)
    restarted = _restarted(clock, log, path, state, failure_window_s=5.0)
    clock.now += 3600.0                                                     # root: date -s '+1 hour'
    restarted.fail("subject:a")
    with pytest.raises(LockedOut):
        restarted.check("subject:a")
    clock.wait(31.0)                                                        # their own 60 s over: they leave
    restarted.fail("subject:b")
    assert [len(restarted._fails[k]) for k in ("subject:a", "subject:b")] == [0, 1]


def test_a_failure_window_raised_in_the_config_counts_no_strike_twice(tmp_path):
    # The other direction: main placed each logged strike at until - today's window (60 s struck, 600 s now: 540 s
    # before the state file's own), matched none of the state file's and added it again: two strikes read as four,
    # a person locked out by a restart. Raising the window keeps them longer (fail closed), once each.
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    lockout.fail("subject:a")
    lockout.fail("subject:a")
    clock.wait(30.0)
    restarted = _restarted(clock, log, path, "kept", failure_window_s=600.0)
    restarted.check("subject:a")
    assert _events(log, "strikes_restored") == []
    assert len(restarted._fails["subject:a"]) == 2
    clock.wait(100.0)                                                       # past their 60 s, within today's 600 s
    restarted.fail("subject:a")
    with pytest.raises(LockedOut):
        restarted.check("subject:a")


def test_a_lockout_window_lowered_in_the_config_still_reads_the_running_lockout_back(tmp_path):
    # The restore read the log back as far as today's config said (lockout_s, failure_window_s, the grace's hour when
    # graces are on): root setting all three to a second and deleting lockout.json hid a lockout started 30 s before
    # behind another subject's strike of 20 s ago (a stamped entry older than the read-back stops it).
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    for _ in range(3):
        lockout.fail("subject:a")
    clock.wait(10.0)
    lockout.fail("subject:b")
    clock.wait(20.0)
    restarted = _restarted(clock, log, path, "deleted", failure_window_s=1.0, lockout_s=1.0,
                           host_late_grace_per_hour=0)
    with pytest.raises(LockedOut, match="270 s"):
        restarted.check("subject:a")


def test_a_logged_window_is_bounded(tmp_path):
    # The entry's window rules, bounded: a window_s beyond LOGGED_WINDOW_MAX_S (a day, how far back the restore reads)
    # lasts the bound; one that is not a positive finite number is none (today's window); a state file's window that
    # is not a finite non-negative number is SES_LOCKOUT_STATE.
    from agent.observe.ledger import lockout_entries
    from agent.session.lockout import LOGGED_WINDOW_MAX_S, Stamp
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    for i, w in enumerate([1e12, -5.0, True, "60", 30.0]):
        log.record("lockout_strike", key=f"subject:{i}", until=2000.0, window_s=w, boot="b00t-1", boot_ms=50_000)
    windows = [e.window_s for e in lockout_entries(log.path, 0.0)]
    assert windows == [1e12, 0.0, 0.0, 0.0, 30.0]
    assert [Stamp(0.0, window_s=w).lasts(60.0) for w in (1e12, 0.0, 30.0, 120.0)] == [LOGGED_WINDOW_MAX_S, 60.0,
                                                                                       60.0, 120.0]
    for bad in (float("nan"), -1.0, "x"):
        path.write_text(json.dumps({"version": 1, "fails": {"subject:a": [[990.0, "b", 1, bad]]}, "until": {},
                                    "pending": {}}))
        with pytest.raises(LockoutStateError):
            Lockout(s, clock=clock, path=path, elapsed=clock.elapsed)


def test_a_charge_open_in_the_log_keeps_its_window_when_the_config_s_is_lowered(tmp_path):
    # The daemon killed in a challenge window; root deletes lockout.json, lowers failure_window_s to 5 s, sets the
    # clock forward and restarts 30 s later. lockout_charge carried no window before sec33, so the restore aged it on
    # the 5 s and the charge never counted; it carries its 60 s now, and counts as a strike.
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    lockout.begin("s-1", "subject:a")                                       # then SIGKILL
    assert _events(log, "lockout_charge")[0]["window_s"] == 60.0
    clock.wait(30.0)
    clock.now += 3600.0
    restarted = _restarted(clock, log, path, "deleted", failure_window_s=5.0)
    assert len(restarted._fails["subject:a"]) == 1
    assert [d["charged"] for d in _events(log, "strikes_restored")] == [True]


@pytest.mark.parametrize("state", ["kept", "deleted", "rewritten"])
def test_a_charge_counted_at_start_keeps_the_window_it_was_charged_under(tmp_path, state):
    # review33b (2): a charge counted at the next start (the state file's pending, or the log's open charge when the
    # state file is deleted) was stamped with today's failure_window_s: root lowering it to 5 s made the strike leave
    # 5 s later. It keeps the 60 s it was charged under (the log's, where root rewrote the state file's to 5 s).
    clock, s, log, _, path, lockout = _lockout_on_log(tmp_path)
    lockout.begin("s-1", "subject:a")                                       # then SIGKILL
    assert json.loads(path.read_text())["charged"] == {"s-1": 60.0}
    if state == "rewritten":
        path.write_text(json.dumps({**json.loads(path.read_text()), "charged": {"s-1": 5.0}}))
    clock.wait(1.0)
    restarted = _restarted(clock, log, path, "deleted" if state == "deleted" else "kept", failure_window_s=5.0)
    assert len(_events(log, "lockout_settled")) == 1                       # counted once
    assert [g.window_s for g in restarted._fails["subject:a"]] == [60.0]
    assert _events(log, "lockout_strike")[-1]["window_s"] == 60.0
    clock.wait(6.0)
    restarted.fail("subject:b")                                             # prunes on save
    assert len(restarted._fails["subject:a"]) == 1
    assert "charged" not in json.loads(path.read_text())
    clock.wait(60.0)
    restarted.fail("subject:b")
    assert "subject:a" not in restarted._fails


def test_a_strike_logged_before_sec33_is_placed_at_its_own_time_when_the_window_is_raised(tmp_path):
    # review33b (3): an entry without window_s (a daemon before sec33) was placed at until - today's window: raised
    # from 60 s to 600 s it matched none of the state file's strikes and was added again (two strikes read as four).
    clock, s, log, _, path, _ = _lockout_on_log(tmp_path)
    fails = []
    for _ in range(2):
        log.record("lockout_strike", key="subject:a", until=clock.now + 60.0, boot=clock.boot, boot_ms=clock.boot_ms)
        fails.append([clock.now, clock.boot, clock.boot_ms])
        clock.wait(1.0)
    path.write_text(json.dumps({"version": 1, "fails": {"subject:a": fails}, "until": {}, "pending": {}}))
    clock.wait(28.0)
    restarted = _restarted(clock, log, path, "kept", failure_window_s=600.0, max_failures=4)
    assert [g.ts for g in restarted._fails["subject:a"]] == [1000.0, 1001.0]
    assert _events(log, "strikes_restored") == []
    restarted.fail("subject:a")
    restarted.check("subject:a")                                            # three, not five: no lockout


@pytest.mark.parametrize("bad", [10**400, "60", True, [1], None], ids=["huge", "string", "true", "list", "none"])
def test_a_state_file_window_that_is_no_finite_number_is_a_stable_error(tmp_path, bad):
    # review33b (4): a huge integer raised a raw OverflowError at start; a string or True was read as a window.
    clock, s, log, _, path, _ = _lockout_on_log(tmp_path)
    for data in ({"fails": {"subject:a": [[990.0, "b00t-1", 40_000, bad]]}, "pending": {}},
                 {"fails": {}, "pending": {"s-1": ["subject:a"]}, "charged": {"s-1": bad}}):
        path.write_text(json.dumps({"version": 1, "until": {}, **data}))
        with pytest.raises(LockoutStateError):
            Lockout(s, clock=clock, path=path, audit=log, elapsed=clock.elapsed)


def test_a_logged_window_or_end_past_a_float_s_range_is_none_not_a_crash(tmp_path):
    # review33b (4): the log's window_s or until as a huge integer raised a raw OverflowError at start.
    from agent.observe.ledger import lockout_entries
    clock, s, log, _, path, _ = _lockout_on_log(tmp_path)
    log.record("lockout_strike", key="subject:x", until=1060.0, window_s=10**400, boot="b00t-1", boot_ms=50_000)
    log.record("lockout_strike", key="subject:y", until=10**400, window_s=60.0, boot="b00t-1", boot_ms=50_000)
    assert [(e.key, e.window_s) for e in lockout_entries(log.path, 0.0)] == [("subject:x", 86_400.0)]   # sec34
    restarted = _restarted(clock, log, path, "kept")
    assert len(restarted._fails["subject:x"]) == 1 and "subject:y" not in restarted._fails
    with pytest.raises(ValueError, match="finite"):
        SessionSettings(failure_window_s=float("inf"))


@pytest.mark.parametrize("window", [10**400, float("inf"), 1e12])
def test_a_logged_window_past_a_float_s_range_reads_as_the_day_s_maximum_as_any_window_past_a_day(tmp_path, window):
    # sec34 decides fix33's choice: a logged window_s past a float's range (10**400, or JSON's Infinity) read as none,
    # today's window, while 1e12 read as the day's maximum: the larger number lasted shorter. The daemon writes
    # neither (a TOML float is finite, an integer 64-bit, failure_window_s = inf refused): it is an edited entry, and
    # root gains nothing from either reading he could not get by writing window_s = 1 without a TPM (with one, an
    # edited counted entry is FORGED). So the reading that fails closed stands: any window past a day, finite or not,
    # is the day's maximum. A strike so logged, restored 2 minutes later after root lowered nothing, still counts
    # (before: gone after today's 60 s, the third failure no lockout).
    from agent.observe.ledger import LOGGED_WINDOW_MAX_S, lockout_entries
    clock, s, log, _, path, _ = _lockout_on_log(tmp_path)
    for key in ("subject:x", "subject:y"):
        log.record("lockout_strike", key=key, until=clock.now + 60.0, window_s=window, boot=clock.boot,
                   boot_ms=clock.boot_ms)
    # As read, not wrapped in min(..., LOGGED_WINDOW_MAX_S) (review34a: that hid an unclamped inf): past a float's
    # range it reads as the maximum itself; a finite 1e12 reads as written and is bounded where a strike's stay is
    # reckoned (lockout.Strike.lasts), which the restore below checks.
    got = [e.window_s for e in lockout_entries(log.path, 0.0)]
    assert got == [window if window == 1e12 else LOGGED_WINDOW_MAX_S] * 2
    clock.wait(120.0)
    again = _restarted(clock, log, path, "kept")                          # (no lockout.json: the log alone)
    again.fail("subject:x")
    again.fail("subject:x")
    with pytest.raises(LockedOut):
        again.check("subject:x")
