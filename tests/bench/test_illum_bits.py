"""The illumination-bits bench (``bench/illum_bits.py``, issue 20): its sequences are the ones it
names (``today`` is the challenge's own), its level decoding, fit check, shared drift and the
challenge's step check decide what they should, its blind streams and bounds follow their rules,
and the projector power levels' decoder tells a level from its neighbour."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from agent.liveness.challenge import PALETTE, Challenge, ChallengeError, Kind, verify_illumination
from bench import challenge_stats as cs
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
    # verifier's cubic drift absorbs the differences; the fit's residual shows them. (Without the step
    # check these tests run the verifier before it, whose drift was a cubic per channel: rule ``nosteps``.)
    v, steps, y = bent_blind_stream()
    assert verify_illumination(steps, y, step_check=None, shared_drift=False).passed
    assert not verify_illumination(steps, y, fit_check=ib.FIT_CHECK, step_check=None, shared_drift=False).passed
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
    assert verify_illumination(steps, y, step_check=None, shared_drift=False).passed
    assert not verify_illumination(steps, y, **ib.rule_options("bound")).passed
    # A loose bound binds nothing.
    assert verify_illumination(steps, y, drift_bound=8.0, step_check=None, shared_drift=False).passed
    # A live face whose own light drifts over the window by as much as the screen's response (a
    # sway, a cloud) passes with the bound, and is refused only by a bound tighter than its drift.
    x = v.colours(steps, 16)
    drifting = response(x, np.random.default_rng(4)) + 0.02 * np.linspace(0, 1, 16)[:, None] ** 2
    assert verify_illumination(steps, drifting, **ib.rule_options("bound")).passed
    assert not verify_illumination(steps, drifting, drift_bound=0.5, step_check=None, shared_drift=False).passed
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ChallengeError):
            verify_illumination(steps, drifting, drift_bound=bad)


def test_one_drift_shape_for_the_three_channels_refuses_the_bent_stream_but_not_every_one():
    # The face's own light as one shape shared by the channels (rule ``shared``, not used): the seed-35
    # stream needs its channels bent differently and is refused; a face drifting in all three
    # channels together passes; seed 42's blind stream (16 framesets) still passes, as it does
    # without the shared shape: a free scale per channel still bends a channel.
    v, steps, y = bent_blind_stream()
    assert not verify_illumination(steps, y, **ib.rule_options("shared")).passed
    x = v.colours(steps, 16)
    drifting = response(x, np.random.default_rng(4)) + 0.02 * np.linspace(0, 1, 16)[:, None] ** 2
    assert verify_illumination(steps, drifting, **ib.rule_options("shared")).passed
    rng = np.random.default_rng(42)
    steps42 = v.steps_for(rng.bytes(32), 16)
    y42 = ib.blind_face(ib.blind_stream(v, 16, rng, "rhythm"), rng)
    assert verify_illumination(steps42, y42, **ib.rule_options("shared")).passed
    assert verify_illumination(steps42, y42, **ib.rule_options("nosteps")).passed
    assert not verify_illumination(steps42, y42).passed                     # the step check refuses it


def test_the_step_check_refuses_the_bent_blind_stream_at_the_challenges_defaults():
    # The seed-35 stream above passes the verifier without the step check with no mismatch; at the
    # challenge's defaults its own edges inside the sequence's steps are changes the screen did not
    # command, and it is refused (an outright contradiction, not "too weak to tell").
    v, steps, y = bent_blind_stream()
    before = verify_illumination(steps, y, step_check=None, shared_drift=False)
    assert before.passed and before.mismatches == 0
    r = verify_illumination(steps, y)
    assert not r.passed and r.measurable and r.mismatches > 0
    assert not verify_illumination(steps, y, **ib.rule_options("steps")).passed
    # At the production window: the first of 40,000 seeded blind streams (another nonce's sequence,
    # seeds 0..39,999) the verifier without the step check passes (22,144; the next is 28,207).
    rng = np.random.default_rng(22144)
    steps32 = v.steps_for(rng.bytes(32), 32)
    y32 = ib.blind_face(ib.blind_stream(v, 32, rng, "rhythm"), rng)
    before = verify_illumination(steps32, y32, step_check=None, shared_drift=False)
    assert before.passed and before.mismatches == 0
    r = verify_illumination(steps32, y32)
    assert not r.passed and r.measurable and r.mismatches > 0
    for bad in (-0.1, 1.0, float("nan"), float("inf"), "0.25"):
        with pytest.raises(ChallengeError):
            verify_illumination(steps, y, step_check=bad)


def test_the_step_check_keeps_drifting_faces_whose_screen_lands_through_the_timing_model():
    # Live faces as the bench renders them: the screen's colours land through the simulator's timing
    # model (lag 3, one frame more at 30 % of the edges), the face answers with the simulated panel's
    # crosstalk between channels (challenge_stats.CROSSTALK, up to 0.22 of a channel's own gain), and
    # its own light drifts in all three channels together by about one screen step over the window
    # (breathing and a sway) with a little noise. Every window passes at the challenge's defaults.
    v = ib.variant("today")
    rng = np.random.default_rng(8)
    level = np.array([0.2, 0.15, 0.1])
    response = 0.02 * cs.CROSSTALK
    for _ in range(12):
        steps = v.steps_for(rng.bytes(32), 32)
        x = v.colours(steps, 32)
        src = cs._landings(x, 3, 0.3, rng)
        shown = np.where((src < 0)[:, None], 0.0, x[np.maximum(src, 0)])
        t = np.arange(32) / 32
        # A cloud or a sway (10 % of the room's light over the window, either way) and breathing.
        own = 0.1 * rng.choice([-1, 1]) * t ** 2 + 0.01 * np.sin(2 * np.pi * 0.3 * t * 32 / 30 + rng.uniform(0, 7))
        y = level * (1 + own)[:, None] + shown @ response.T + rng.normal(0, 2e-4, (32, 3))
        assert np.ptp(level[0] * own) >= 0.5 * 0.02             # red's own light moves by ~ its gain
        r = verify_illumination(steps, y)
        assert r.passed and r.mismatches == 0, r


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


def late_window(steps, late, rng: np.random.Generator, gain: float = 0.02, sd: float = 5e-4) -> np.ndarray:
    """A face's colour under the screen at lag 1, each edge landing in a blended frame: one frame late
    where ``late[j]`` (its blend, 0.05-0.45 of the new colour, on the step's second frame), on time
    otherwise (0.55-0.95, on its first)."""
    n = steps[-1].start + steps[-1].frames
    shown = np.zeros((n, 3))
    for j, st in enumerate(steps):
        at = st.start + 1 + int(late[j])
        if at < n:
            share = rng.uniform(0.05, 0.45) if late[j] else rng.uniform(0.55, 0.95)
            prev = np.asarray(steps[j - 1].rgb) if j else np.zeros(3)
            shown[at:] = st.rgb
            shown[at] = share * np.asarray(st.rgb) + (1 - share) * prev
    return np.array([0.25, 0.18, 0.15]) + gain * shown + rng.normal(0, sd, (n, 3))


def test_the_lower_late_blend_caps_refuse_a_window_with_more_late_edges_than_they_allow():
    # Rules ``late4`` and ``late3`` (the verifier with at most 4 or 3 late blends a window, measured at
    # 24 framesets): a 24-frameset window whose edges after the first land late on 4 steps and on time
    # on the rest passes the verifier (5) and ``late4``, not ``late3``; with 3 late edges all three pass.
    c = next(c for c in (Challenge.from_nonce(bytes([i]) * 32, 24, (Kind.ILLUMINATION,)) for i in range(200))
             if sum(1 for st in c.steps[1:] if st.start + 3 < 24) >= 5)
    inside = [j for j, st in enumerate(c.steps) if j and st.start + 3 < 24]
    for count, passing in ((4, {"verifier", "late4"}), (3, {"verifier", "late4", "late3"})):
        late = np.zeros(len(c.steps), bool)
        late[inside[:count]] = True
        y = late_window(c.steps, late, np.random.default_rng(count))
        assert not verify_illumination(c.steps, y, late_blends=None).passed
        got = {rule for rule in ("verifier", "late4", "late3") if verify_illumination(c.steps, y,
                                                                                      **ib.rule_options(rule)).passed}
        assert got == passing, (count, got)
    assert ib.rule_options("late4") == {"late_blends": 4} and ib.rule_options("late3") == {"late_blends": 3}


def test_the_caps_counted_on_the_fewest_verifications_are_the_verifiers_at_each_cap():
    # ``late_cap_passes`` verifies a window once without late blends and, when that refuses it, from
    # the highest cap down until one refuses: the same answers as verifying at every cap, on windows
    # with 0-5 late edges and on blind streams.
    c = next(c for c in (Challenge.from_nonce(bytes([i]) * 32, 24, (Kind.ILLUMINATION,)) for i in range(200))
             if sum(1 for st in c.steps[1:] if st.start + 3 < 24) >= 5)
    inside = [j for j, st in enumerate(c.steps) if j and st.start + 3 < 24]
    rng = np.random.default_rng(3)
    windows = []
    for count in range(6):
        late = np.zeros(len(c.steps), bool)
        late[inside[:count]] = True
        windows.append((c.steps, late_window(c.steps, late, rng)))
    v = ib.variant("today")
    windows += [(c.steps, response(ib.blind_stream(v, 24, rng, "rhythm"), rng)) for _ in range(4)]
    needed = set()
    for steps, y in windows:
        got, need = ib.late_cap_passes(steps, y)
        assert got == {k: verify_illumination(steps, y, late_blends=k).passed for k in ib.LATE_CAPS}
        assert need == (not verify_illumination(steps, y, late_blends=None).passed)
        needed.add((need, got[5], got[3]))
    assert {(False, True, True), (True, True, True), (True, True, False), (True, False, False)} <= needed, needed
