import os
from itertools import pairwise

import numpy as np
import pytest

from agent.liveness.challenge import Challenge, ChallengeError, verify


def test_schedule_is_deterministic_per_nonce_and_differs_between_nonces():
    a = Challenge.from_nonce(b"n" * 32, 24)
    assert a.schedule == Challenge.from_nonce(b"n" * 32, 24).schedule
    others = {Challenge.from_nonce(os.urandom(32), 24).schedule for _ in range(20)}
    assert len(others) > 15
    # Runs of 2..4 frames, both states present.
    runs, cur = [], 1
    for x, y in pairwise(a.schedule):
        if x == y:
            cur += 1
        else:
            runs.append(cur)
            cur = 1
    assert all(2 <= r <= 4 for r in runs) and any(a.schedule) and not all(a.schedule)


def test_bad_nonces_are_rejected():
    with pytest.raises(ChallengeError) as ei:
        Challenge.from_nonce(b"short", 24)
    assert ei.value.code == "LIV_CHALLENGE_INVALID"
    with pytest.raises(ChallengeError):
        Challenge.from_nonce(b"x" * 32, 4)


def test_verify_accepts_obedient_frames_with_latency_and_rejects_others():
    c = Challenge.from_nonce(b"k" * 32, 24)
    sched = np.array(c.schedule, float)
    rng = np.random.default_rng(0)
    obedient = np.r_[[2.0], 2 + 14 * sched[:-1]] + rng.normal(0, 0.3, 24)      # one frame late
    assert verify(c, list(obedient)).passed
    other = Challenge.from_nonce(b"z" * 32, 24)
    replay = 2 + 14 * np.array(other.schedule, float) + rng.normal(0, 0.3, 24)
    r = verify(c, list(replay))
    assert not r.passed and r.agreement < 0.9
    flat = 10 + rng.normal(0, 0.3, 24)                                          # projector ignored
    assert not verify(c, list(flat)).passed
    assert not verify(c, [1.0] * 5).passed                                     # too short


def test_sunlight_small_but_consistent_projector_contribution_still_passes():
    # In sunlight the dots add ~12% to the IR high-pass energy: a weak ratio, but on every
    # scheduled frame. Grouped by the schedule that is many standard deviations apart.
    c = Challenge.from_nonce(b"s" * 32, 12)
    sched = np.array(c.schedule, float)
    rng = np.random.default_rng(1)
    sunny = 40 * (1 + 0.12 * sched) + rng.normal(0, 0.6, 12)
    r = verify(c, list(sunny))
    assert r.passed and r.separation > 3


def test_random_energies_rarely_pass():
    # A stream that ignores the schedule: energies independent of it, at any brightness.
    rng = np.random.default_rng(7)
    passes = 0
    for k in range(2000):
        c = Challenge.from_nonce(k.to_bytes(4, "big") * 8, 12)
        e = rng.lognormal(3.0, rng.uniform(0.05, 1.0), 12)
        passes += verify(c, list(e)).passed
    assert passes / 2000 < 0.005


def test_one_disagreeing_frame_per_32_and_no_more():
    # At most one frame per 32 compared may show the other state: a 32-frame window forgives one
    # flipped frame, not two; a 24-frame window forgives none.
    rng = np.random.default_rng(3)
    for n, flips, ok in ((32, 0, True), (32, 1, True), (32, 2, False), (24, 1, False), (24, 0, True)):
        c = Challenge.from_nonce(b"m" * 32, n)
        state = np.array(c.schedule, bool)
        for k in rng.choice(np.arange(4, n - 4), flips, replace=False):
            state[k] = not state[k]
        e = 2 + 14 * state + rng.normal(0, 0.3, n)
        assert verify(c, list(e), max_lag=0).passed is ok, (n, flips)


def test_a_blind_stream_with_the_schedules_own_rhythm_rarely_passes_32_frames():
    # The best a stream without the nonce can do: runs of 2-4 frames like the schedule's, clean
    # two-level energies. Against the server's 32-frame window it must pass well under 0.1 %.
    from bench.bench_liveness import blind_challenge_pass_rate
    assert blind_challenge_pass_rate(32, trials=3000, seed=5) < 0.001
    assert blind_challenge_pass_rate(16, trials=3000, seed=5) > 0.002    # why the window is long
