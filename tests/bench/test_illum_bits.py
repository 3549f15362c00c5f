"""The illumination-bits bench (``bench/illum_bits.py``, issue 20): its sequences are the ones it
names (``today`` is the challenge's own), its level decoding and fit check decide what they should,
its blind streams and bounds follow their rules, and the projector power levels' decoder tells a
level from its neighbour."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from agent.liveness.challenge import PALETTE, Challenge, ChallengeError, Kind, verify_illumination
from bench import illum_bits as ib


def response(x: np.ndarray, rng: np.random.Generator, lag: int = 1, gain: float = 0.02, sd: float = 2e-4
             ) -> np.ndarray:
    """A face's colour: room light drifting a little, plus the screen's colours ``lag`` frames late."""
    n = len(x)
    shown = np.vstack([np.zeros((lag, 3)), x[:n - lag]])
    drift = 0.002 * np.linspace(0, 1, n)[:, None]
    return np.array([0.2, 0.15, 0.1]) + drift + gain * shown + rng.normal(0, sd, (n, 3))


def test_today_is_the_challenges_own_sequence_and_three_levels_make_27_colours():
    nonce = b"n" * 32
    today = ib.variant("today")
    assert today.palette == PALETTE
    assert today.steps_for(nonce, 32) == Challenge.from_nonce(nonce, 32, (Kind.ILLUMINATION,)).steps
    pal = ib.variant("levels3").palette
    assert len(pal) == 27 and len(set(pal)) == 27 and pal[0] == (0.0, 0.0, 0.0)
    assert {c for rgb in pal for c in rgb} == {0.0, 0.5, 1.0}
    steps = ib.variant("steps24x3").steps_for(nonce, 16)
    assert all(2 <= st.frames <= 4 for st in steps[:-1]) and steps[0].rgb != pal[0]
    assert all(a.rgb != b.rgb for a, b in pairwise(steps))
    assert any(0.5 in st.rgb for st in ib.variant("levels3").steps_for(b"m" * 32, 32))


def test_three_levels_are_decoded_by_level():
    v = ib.variant("levels3")
    steps = v.steps_for(b"h" * 32, 20)
    x = v.colours(steps, 20)
    rng = np.random.default_rng(3)
    y = response(x, rng)
    assert verify_illumination(steps, y, levels=3).passed
    # The same face read with two levels: a half step is neither on nor off.
    assert not verify_illumination(steps, y, levels=2).passed
    # One settled frame's green a level off (full shown where half was commanded, in the middle of
    # the six-frameset step (1, 0.5, 1) at frames 3-8; the face shows frame 6 at frame 7): refused.
    assert np.all(x[3:9] == (1.0, 0.5, 1.0))
    wrong = y.copy()
    wrong[7, 1] += 0.01
    assert not verify_illumination(steps, wrong, levels=3).passed
    with pytest.raises(ChallengeError):
        verify_illumination(steps, y, levels=1)


def bent_blind_stream():
    """Today's sequence over 16 framesets and another nonce's (seed 35 of the bench's blind streams),
    which the verifier's cubic drift bends into it."""
    v = ib.variant("today")
    rng = np.random.default_rng(35)
    steps = v.steps_for(rng.bytes(32), 16)
    return v, steps, ib.blind_face(ib.blind_stream(v, 16, rng, "rhythm"), rng)


def test_the_fit_check_refuses_a_blind_stream_the_drift_bends_into_the_sequence():
    # A 16-frameset window and another nonce's sequence (seed 35 of the bench's blind streams): the
    # verifier's cubic drift absorbs the differences; the fit's residual shows them.
    v, steps, y = bent_blind_stream()
    assert verify_illumination(steps, y).passed
    assert not verify_illumination(steps, y, fit_check=ib.FIT_CHECK).passed
    # A face that follows the sequence passes with it.
    live = response(v.colours(steps, 16), np.random.default_rng(4))
    assert verify_illumination(steps, live, fit_check=ib.FIT_CHECK).passed
    # A straight-line drift does not refuse this stream either: the drift's freedom is its size
    # (as large as the screen's response), not its degree.
    assert verify_illumination(steps, y, **ib.rule_options("linear")).passed
    assert verify_illumination(steps, live, **ib.rule_options("linear")).passed
    with pytest.raises(ChallengeError):
        verify_illumination(steps, y, drift_terms=4)
    with pytest.raises(ValueError):
        ib.rule_options("clean")


def test_the_drift_bound_refuses_the_bent_blind_stream_and_keeps_a_drifting_face():
    # The same blind stream as above (seed 35, 16 framesets): the verifier's cubic absorbs its
    # differences from the sequence with a drift about twice the fitted gain; bounded to
    # DRIFT_BOUND times the gain, the drift cannot, and the stream is refused.
    v, steps, y = bent_blind_stream()
    assert verify_illumination(steps, y).passed
    assert not verify_illumination(steps, y, **ib.rule_options("bound")).passed
    assert verify_illumination(steps, y, drift_bound=8.0).passed       # a loose bound binds nothing
    # A live face whose own light drifts over the window by as much as the screen's response (a
    # sway, a cloud) passes with the bound, and is refused only by a bound tighter than its drift.
    x = v.colours(steps, 16)
    drifting = response(x, np.random.default_rng(4)) + 0.02 * np.linspace(0, 1, 16)[:, None] ** 2
    assert verify_illumination(steps, drifting, **ib.rule_options("bound")).passed
    assert not verify_illumination(steps, drifting, drift_bound=0.5).passed
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ChallengeError):
            verify_illumination(steps, drifting, drift_bound=bad)


def test_blind_streams_and_rates_follow_their_rules():
    v = ib.variant("steps24x3")
    rng = np.random.default_rng(1)
    x = ib.blind_stream(v, 40, rng, "fixed")
    change = np.flatnonzero(np.any(x[1:] != x[:-1], axis=1)) + 1
    assert np.all(np.diff(change) == 3)                # one length, the range's middle
    assert all(tuple(c) in v.palette for c in x)
    with pytest.raises(ValueError):
        ib.blind_stream(v, 16, rng, "guess")
    with pytest.raises(ValueError):
        ib.blind_rate(v, 16, 1, "fixed", rule="lenient")
    # The clean rule and the verifier agree on a stream that is the sequence itself.
    assert ib.blind_agreement(v, 16, 4)[0] >= 1


def test_the_bound_falls_with_shorter_steps_and_more_levels():
    b = {name: ib.blind_bound(ib.variant(name), 16, samples=40) for name in ("today", "steps24", "levels3",
                                                                            "steps24x3")}
    assert b["steps24x3"] < b["steps24"] < b["today"]
    assert b["steps24x3"] < b["levels3"] < b["today"]
    # One lag's term for a two-step sequence of 8 colours: the first colour 1/7, the second step
    # 1/2 (timing, lengths 3-6) x 1/7.
    assert ib.blind_bound(ib.variant("today"), 8, samples=20) <= 5 * (1 / 7) + 1e-9


def test_projector_power_levels_decode_and_refuse_a_level_off():
    sched = ib.power_schedule(b"p" * 32, 20)
    assert set(sched) <= set(ib.POWER_LEVELS)
    lengths = [len(list(g)) for g in np.split(sched, np.flatnonzero(np.diff(sched)) + 1)]
    assert all(2 <= n <= 6 for n in lengths[:-1])
    rng = np.random.default_rng(7)
    on, off = rng.normal(12.0, 0.2, 20), rng.normal(4.0, 0.2, 20)
    shown = np.r_[1.0, sched[:-1]]                     # one frame late, full power before
    e = ib.power_energy(shown, on, off)
    assert ib.power_energy(np.array([0.0, 1.0]), np.array([12.0, 12.0]), np.array([4.0, 4.0])) == pytest.approx(
        [4.0, 12.0])
    assert ib.verify_power(sched, e)
    settled = [k for k in range(2, 20) if sched[k - 1] == 0.5 and sched[k - 2] == 0.5]
    wrong = e.copy()
    wrong[settled[0]] = ib.power_energy(np.array([1.0]), on[:1], off[:1])[0]
    assert not ib.verify_power(sched, wrong)
