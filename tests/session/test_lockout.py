"""Lockout (§8.2.5 d) on a fake clock: failures within the window lock a key out for ``lockout_s``."""

from __future__ import annotations

import pytest

from agent.config import SessionSettings
from agent.session.errors import LockedOut
from agent.session.lockout import Lockout


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
