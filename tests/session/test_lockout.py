"""Lockout (§8.2.5 d) on a fake clock: failures within the window lock a key out for ``lockout_s``."""

from __future__ import annotations

import json

import pytest

from agent.config import SessionSettings
from agent.session.errors import LockedOut
from agent.session.lockout import Lockout, LockoutStateError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lock():
    clock = FakeClock()
    return Lockout(SessionSettings(max_failures=3, failure_window_s=60.0, lockout_s=300.0), clock=clock), clock


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
    clock.now += 61.0                                         # both fall out of the 60 s window
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
