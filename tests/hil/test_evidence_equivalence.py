"""The server's evidence check works out every lag of a challenge at once; it must refuse and accept
exactly what the check before it did (``tests/helpers/evidence_reference.py``), in the same process
on the same evidence, and say so in the same words and numbers.

Windows: evidence that meets its nonce (8-120 framesets, both challenges and each alone, lags 0-4),
and the same evidence noisy, shuffled, replaced by random numbers, partly or mostly faceless (half the
faceless framesets with their grid, half without), quantised, shifted past the largest lag, with its
colour channels in the wrong order, with non-finite numbers, cut short, with broken timing or a crop
that differs, lit by nothing, or with a response close to its noise; each through ``check_shape`` and
``verify`` under the default thresholds and under others. Asserted identical: the outcome (accepted,
``MALFORMED`` or ``EVIDENCE_FAILED``), the refusal's text and each challenge's result, every field to
the bit (the separation too: windows whose response is rounding noise, where the separation is ~1e-13
and decides which lag is reported, are among them), with the illumination's step check off (the check
before had none). With it on, as the server runs, the outcome changes only from accepted to refused,
and never for evidence that meets its nonce."""

from __future__ import annotations

import functools
import os
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent.liveness import challenge as new
from agent.liveness.challenge import GRID, Challenge, Kind, Step, face_response
from agent.uplink.seal import ProbeRejected
from hil.fakes.evidence import valid_evidence
from hil.ingest import evidence
from hil.ingest.evidence import EvidenceFailed, EvidenceThresholds
from proto.capture_agent.v1 import ingest_pb2 as pb
from tests.helpers import evidence_reference as ref

KINDS = (frozenset({Kind.PROJECTOR, Kind.ILLUMINATION}), frozenset({Kind.ILLUMINATION}),
         frozenset({Kind.PROJECTOR}))
VARIANTS = ("valid", "noisy", "shuffled", "random", "faceless", "mostly_faceless", "quantised", "lag_shifted",
            "bgr", "nan", "inf", "truncated", "timing", "crop", "flat", "dim")
OTHER = EvidenceThresholds(projector_min_separation=1.5, illumination_min_separation=6.0, projector_max_lag=1,
                           illumination_max_lag=6, min_face_share=0.5)


def _payload(nonce: bytes, kinds: frozenset[Kind], frames: int, lag: int, seed: int,
             variant: str) -> tuple[pb.ProbePayload, dict]:
    syn = valid_evidence(nonce, kinds, frames, lag=lag, seed=seed)
    p = pb.ProbePayload(frame_digest=syn.frame_digest)
    p.evidence.CopyFrom(syn.evidence)
    p.color.CopyFrom(syn.color)
    rng = np.random.default_rng(seed)
    fs = p.evidence.frames
    grids = np.array([f.face_grid for f in fs]).reshape(frames, GRID * GRID, 3)
    energy = np.array([f.ir_energy for f in fs])
    faces = np.ones(frames, bool)
    if variant == "noisy":
        grids = grids * (1 + rng.normal(0, rng.choice([0.01, 0.05, 0.2]), grids.shape))
        energy = energy + rng.normal(0, rng.choice([1.0, 3.0, 6.0]), frames)
    elif variant == "shuffled":
        grids, energy = grids[rng.permutation(frames)], energy[rng.permutation(frames)]
    elif variant == "random":
        grids, energy = rng.random(grids.shape), rng.random(frames) * 20
    elif variant in ("faceless", "mostly_faceless"):
        faces = rng.random(frames) >= (0.15 if variant == "faceless" else 0.6)
    elif variant == "quantised":
        grids = np.round(grids * rng.choice([20, 50, 255])) / 255
        energy = np.round(energy)
    elif variant == "lag_shifted":
        k = int(rng.integers(5, 9))
        grids, energy = np.roll(grids, k, axis=0), np.roll(energy, k)
    elif variant == "bgr":
        grids = grids[:, :, ::-1]
    elif variant == "flat":                                # the screen never reached the face
        grids = np.repeat(grids[:1], frames, axis=0) * (1 + rng.normal(0, 0.002, grids.shape))
        energy = np.full(frames, 8.0) + rng.normal(0, 0.1, frames)
    elif variant == "dim":                                  # a response close to the noise
        mean = grids.mean(axis=0, keepdims=True)
        grids = mean + (grids - mean) * rng.choice([0.02, 0.05, 0.1]) + rng.normal(0, 0.003, grids.shape)
        energy = 8.0 + (energy - 8.0) * 0.1 + rng.normal(0, 0.3, frames)
    for k, f in enumerate(fs):
        f.ir_energy = float(energy[k])
        f.face = bool(faces[k]) or k == syn.best
        del f.face_grid[:]
        f.face_grid.extend(float(v) for v in grids[k].reshape(-1))
        if not f.face and k % 2:
            # Half the faceless framesets without a grid (no colour frame): rows of NaN, the rest
            # measured as listed (the server judges the frames the terminal judged).
            del f.face_grid[:]
    if variant in ("nan", "inf"):
        bad = float("nan") if variant == "nan" else float("inf")
        k = int(rng.integers(0, frames))
        if rng.random() < 0.5:
            fs[k].ir_energy = bad
        else:
            fs[k].face_grid[int(rng.integers(0, GRID * GRID * 3))] = bad
    elif variant == "truncated":
        del fs[int(rng.integers(1, frames)):]
    elif variant == "timing":
        k = int(rng.integers(1, frames))
        fs[k].timestamp_ms = fs[k - 1].timestamp_ms + rng.choice([0.0, 400.0])
    elif variant == "crop":
        px = bytearray(p.color.pixels)
        px[int(rng.integers(0, len(px)))] ^= 0xFF
        p.color.pixels = bytes(px)
    return p, {"frame_digests": syn.digests}


def _outcome(verify, p: pb.ProbePayload, lv: dict, nonce: bytes, kinds, frames: int, t: EvidenceThresholds):
    try:
        read = evidence.check_shape(p)
    except ProbeRejected as exc:
        return ("MALFORMED", exc.message, None)
    try:
        return ("OK", "", verify(p, lv, nonce, kinds, frames, t, read))
    except EvidenceFailed as exc:
        return ("EVIDENCE_FAILED", str(exc), None)


def _same(p, lv, nonce, kinds, frames, t) -> str:
    """The outcome, asserted to the bit the same as the check before (for evidence that meets its
    nonce, which the step check does not change)."""
    old = _outcome(ref.verify, p, lv, nonce, kinds, frames, t)
    now = _outcome(evidence.verify, p, lv, nonce, kinds, frames, t)
    assert repr(now) == repr(old)               # repr: floats to the bit, NaN equal to NaN
    return now[0]


def _corpus():
    rng = np.random.default_rng(20)
    for seed in range(60):
        nonce = rng.bytes(32)
        kinds = KINDS[seed % 3]
        frames = int(rng.choice([8, 12, 20, 32, 32, 48, 90, 120]))
        lag = int(rng.integers(0, 5))
        for variant in VARIANTS:
            p, lv = _payload(nonce, kinds, frames, lag, seed, variant)
            for t in (EvidenceThresholds(), OTHER):
                yield variant, (p, lv, nonce, kinds, frames, t)


def test_the_server_refuses_and_accepts_what_it_did_before(monkeypatch):
    # The check before the lag search was vectorised had no step check (``verify_illumination``'s
    # ``step_check``, on by default since): with it off, every outcome to the bit as before.
    # With it on, as the server runs: evidence that meets its nonce (``valid``) has the outcome it
    # had; any other outcome is either the one it had or an illumination refusal where the check
    # before accepted or refused too (a window whose colour jumps within the screen's steps: noise of
    # 5-20 % per frame, shuffled frames, a response near its noise; a refusal before by a check the
    # server makes after the challenges, which a refusal now does not reach). Never the other way.
    unchecked = functools.partial(new.verify_illumination, step_check=None)
    seen: dict[str, set[str]] = {}
    changed: dict[str, int] = {}
    windows = loosened = recounted = 0
    for variant, (p, lv, nonce, kinds, frames, t) in _corpus():
        old = _outcome(ref.verify, p, lv, nonce, kinds, frames, t)
        with monkeypatch.context() as m:
            m.setattr(evidence, "verify_illumination", unchecked)
            before = _outcome(evidence.verify, p, lv, nonce, kinds, frames, t)
        assert repr(before) == repr(old)               # repr: floats to the bit, NaN equal to NaN
        seen.setdefault(variant, set()).add(before[0])
        windows += 1
        now = _outcome(evidence.verify, p, lv, nonce, kinds, frames, t)
        if repr(now) != repr(old):
            if variant == "valid" and old[0] == now[0] == "EVIDENCE_FAILED" and frames == 8:
                # wave22: with one drift shape for the three channels an 8-frameset window (6 frames
                # compared) that meets its nonce is refused as an illumination contradiction with and
                # without the step check (as the cubic per channel refused it), the step check
                # counting more frames wrong. Refused either way; no outcome changes.
                assert old[1].startswith("illumination") and now[1].startswith("illumination"), (old, now)
                recounted += 1
                continue
            assert variant != "valid", (frames, old, now)
            assert old[0] in ("OK", "EVIDENCE_FAILED"), (old, now)
            if not (now[0] == "EVIDENCE_FAILED" and now[1].startswith("illumination")):
                # The late-blend retry (after the check before) can pass the illumination of a window
                # the check before refused as such; a later check refuses it (with the window-wide
                # face measure: two dim / noisy windows of the corpus). Still refused, never accepted,
                # and without the retry an illumination refusal as before.
                assert now[0] == "EVIDENCE_FAILED" and old[0] == "EVIDENCE_FAILED", (old, now)
                assert old[1].startswith("illumination"), (old, now)
                with monkeypatch.context() as m:
                    m.setattr(evidence, "verify_illumination",
                              functools.partial(new.verify_illumination, late_blends=None))
                    plain = _outcome(evidence.verify, p, lv, nonce, kinds, frames, t)
                assert plain[0] == "EVIDENCE_FAILED" and plain[1].startswith("illumination"), (old, plain)
                # Review 12: the later check is the crop's (the only one after the challenges), and what
                # the retry passed is what the reference passes with those edges one frame late.
                assert "colour crop" in now[1], now
                read = evidence.check_shape(p)
                assert read is not None
                ch = Challenge.from_nonce(nonce, frames=len(read.digests), kinds=kinds)
                kw = {"max_lag": t.illumination_max_lag, "min_separation": t.illumination_min_separation}
                rgb = face_response(read.grids)
                _step_check_refuses_only_more(ch, rgb, ref.verify_illumination(ch.steps, rgb, **kw), **kw)
                loosened += 1
            changed[variant] = changed.get(variant, 0) + 1
    assert windows == 60 * len(VARIANTS) * 2
    assert loosened <= 4, loosened                 # two windows of the corpus (review 12: noisy 32, dim 20)
    assert recounted <= 2, recounted               # one window, under both thresholds
    # Some spoiled evidence the check before accepted is refused now; none that meets its nonce.
    assert changed and "valid" not in changed
    # The corpus reaches every outcome: evidence accepted, refused and unreadable.
    assert "OK" in seen["valid"] and seen["nan"] == {"MALFORMED"} and seen["inf"] == {"MALFORMED"}
    assert {"EVIDENCE_FAILED"} <= seen["random"] and {"EVIDENCE_FAILED"} <= seen["crop"]
    assert {"OK", "EVIDENCE_FAILED"} <= set().union(*seen.values())


def _same_sequence(now: new.SequenceResult, old: new.SequenceResult) -> None:
    assert repr(now) == repr(old)               # every field, the separation to the bit


def _windows(nonce: bytes, frames: int, seed: int):
    """A window's measurements that meet the nonce, and the same spoiled in each way."""
    both = frozenset({Kind.PROJECTOR, Kind.ILLUMINATION})
    syn = valid_evidence(nonce, both, frames, lag=seed % 5, seed=seed)
    rng = np.random.default_rng(seed)
    g = np.array([f.face_grid for f in syn.evidence.frames]).reshape(frames, GRID * GRID, 3)
    e = np.array([f.ir_energy for f in syn.evidence.frames])
    gf = g.copy()
    gf[rng.random(frames) < 0.3] = np.nan
    gm = g.copy()
    gm[rng.random(frames) < 0.7] = np.nan
    yield g, e
    yield g * (1 + rng.normal(0, 0.05, g.shape)), e + rng.normal(0, 3, frames)
    yield g[rng.permutation(frames)], e[rng.permutation(frames)]
    yield rng.random(g.shape), rng.random(frames)
    yield gf, e
    yield gm, np.where(rng.random(frames) < 0.1, np.nan, e)
    yield np.round(g * 50) / 50, np.round(e)
    yield np.round(g * 12) / 12, np.round(e / 4) * 4
    yield np.roll(g, 6, axis=0), np.roll(e, 6)
    yield g[:, :, ::-1], -e
    yield g[: frames // 2], e[: frames // 2]
    yield np.repeat(g[:1], frames, axis=0), np.full(frames, 5.0)
    # Energies of two or three exact levels that ignore the schedule: d' of rounding size decides the lag.
    yield np.round(g * 4) / 4, np.where(rng.random(frames) < 0.5, 1 / 3, 1.0)
    yield g, np.round(rng.random(frames) * 2) / 3 * 7.7
    # Numbers at the ends of the range: overflowing sums, an infinite colour, vanishing energies.
    big = g * 1e300
    big[int(rng.integers(0, frames))] = np.inf
    yield big, e * 1e-300
    yield -g, np.where(rng.random(frames) < 0.2, -np.inf, e)


def _late(steps, late) -> list[Step]:
    """The sequence with each step of ``late`` starting one frame later, the step before it one frame
    longer (written here, not taken from the agent, so that a change of the agent's shift shows)."""
    out = list(steps)
    for j in late:
        if j:
            out[j - 1] = Step(out[j - 1].start, out[j - 1].frames + 1, out[j - 1].rgb)
        out[j] = Step(out[j].start + 1, out[j].frames - 1, out[j].rgb)
    return out


def _step_check_refuses_only_more(ch, rgb, old, bound: bool = True, **kw) -> None:
    """The step check (without late blends) passes a window only where the reference passed it;
    late blends (the default since ``blend2``) pass more by design (edges whose second frame blends
    the two colours, taken one frame late), and never refuse what the step check alone passed.
    What they pass beyond the reference, the reference passes with those edges taken one frame late
    (review 12: before, nothing bounded it, so a late-blend rule that passed any window was not seen).
    Hypothesis found the old one-line form false: at noise 0.2 of the gain, 1.5 % of windows pass
    with late blends that the reference refuses (gain 1, generator seeds 0-299, 16-40 frames, lags 0-6:
    8,016 against 7,917 of 9,600 windows within the lag bound, 1,819 against 1,678 of 7,200 past it)."""
    plain = new.verify_illumination(ch.steps, rgb, late_blends=None, **kw)
    assert old.passed or not plain.passed
    if not bound:                      # (the retry is the costly part: only where the bound is checked)
        assert not plain.passed or new.verify_illumination(ch.steps, rgb, **kw).passed
        return
    tried: list[tuple[int, ...]] = []

    real = new._shifted

    def shifted(steps, late):
        tried.append(tuple(late))
        return real(steps, late)
    with mock.patch.object(new, "_shifted", shifted):
        blended = new.verify_illumination(ch.steps, rgb, **kw)
    assert not plain.passed or blended.passed
    if blended.passed and not plain.passed:
        # What late blends pass beyond the reference is bounded by the reference itself (review 12):
        # the window passes the check before with the edges taken late (each one frame longer old
        # colour), at most ``ILLUMINATION_LATE_BLENDS`` of them and not the first step's, at the same
        # lag. A late-blend rule that passed more (say every window) fails here.
        late = tried[-1]
        assert 0 < len(late) <= new.ILLUMINATION_LATE_BLENDS, late
        assert any(j not in late for j in range(1, len(ch.steps))), late        # one edge on time at least
        again = ref.verify_illumination(_late(ch.steps, late), rgb, **kw)
        assert again.passed and again.lag_frames == blended.lag_frames, (late, again, blended)


def _room_colours_only_relabel(ch, rgb, before, **kw) -> bool:
    """steps30's two-room-colours rule (on the terminal; the reference has none) changes a verdict only from a
    contradiction to not measurable (``SCREEN_ROOM_COLOURS``), never to a pass. The colour channels in the wrong
    order (a relayed genuine face, red and blue swapped) are among the windows it relabels."""
    after = new.verify_illumination(ch.steps, rgb, step_check=None, **kw)
    if after == before:
        return False
    assert not after.passed and not after.measurable and after.detail == new.COLOURS_DETAIL, (after, before)
    assert not before.passed and before.measurable, (after, before)
    return True


@pytest.mark.filterwarnings("ignore::RuntimeWarning")        # overflow and inf - inf, in both versions
def test_each_challenges_verdict_is_what_it_was_at_every_lag_bound():
    rng = np.random.default_rng(21)
    results = relabelled = 0
    for seed in range(24):
        nonce = rng.bytes(32)
        frames = int(rng.choice([8, 9, 10, 16, 32, 32, 60, 120]))
        ch = Challenge.from_nonce(nonce, frames, (Kind.PROJECTOR, Kind.ILLUMINATION))
        assert ch == ref.challenge_from_nonce(nonce, frames, frozenset(ch.kinds))
        for g, e in _windows(nonce, frames, seed):
            rgb = face_response(g)
            for max_lag in (0, 2, 4, 7):
                for sep in (3.0, 0.0):
                    old = ref.verify_illumination(ch.steps, rgb, max_lag=max_lag, min_separation=sep)
                    before = new.verify_illumination(ch.steps, rgb, max_lag=max_lag, min_separation=sep,
                                                     step_check=None, room_colours=False)
                    _same_sequence(before, old)
                    relabelled += _room_colours_only_relabel(ch, rgb, before, max_lag=max_lag, min_separation=sep)
                    _step_check_refuses_only_more(ch, rgb, old, bound=max_lag in (2, 4) and sep > 0,
                                                  max_lag=max_lag, min_separation=sep)
                    _same_sequence(new.verify_projector(ch.schedule, e, max_lag=max_lag, min_separation=sep),
                                   ref.verify_projector(ch.schedule, e, max_lag=max_lag, min_separation=sep))
                    results += 2
    assert results == 24 * 16 * 4 * 2 * 2
    assert relabelled == 5                       # the channel-swapped windows of seeds 2 (three lags) and 9 (two)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.integers(8, 40), lag=st.integers(0, 6), seed=st.integers(0, 2**31),
       scale=st.sampled_from([0.0, 1e-6, 0.01, 0.3, 1.0]), noise=st.sampled_from([0.0, 1e-4, 0.01, 0.2]),
       faceless=st.floats(0.0, 0.9), step=st.sampled_from([0.0, 1 / 255, 0.05]))
@example(frames=22, lag=3, seed=0, scale=1.0, noise=0.2, faceless=0.0, step=0.0)   # passes only with late blends
def test_illumination_and_projector_verdicts_match_on_arbitrary_windows(frames, lag, seed, scale, noise, faceless,
                                                                         step):
    """Any gain (none, tiny, full), any noise, lost faces and quantisation, against the nonce's
    sequences at any lag: the same verdicts."""
    rng = np.random.default_rng(seed)
    nonce = rng.bytes(32)
    ch = Challenge.from_nonce(nonce, frames, (Kind.PROJECTOR, Kind.ILLUMINATION))
    shown = np.roll(ch.colours(), lag, axis=0)
    rgb = 0.3 + scale * shown + rng.normal(0, noise, (frames, 3)) + 0.05 * np.linspace(0, 1, frames)[:, None]
    if step:
        rgb = np.round(rgb / step) * step
    rgb[rng.random(frames) < faceless] = np.nan
    e = 4 + 8 * scale * np.roll(np.asarray(ch.schedule, float), lag) + rng.normal(0, noise * 10 + 1e-9, frames)
    if step:
        e = np.round(e / (step * 100)) * step * 100
    for max_lag in (2, 4):
        old = ref.verify_illumination(ch.steps, rgb, max_lag=max_lag)
        _same_sequence(new.verify_illumination(ch.steps, rgb, max_lag=max_lag, step_check=None), old)
        _step_check_refuses_only_more(ch, rgb, old, max_lag=max_lag)
        _same_sequence(new.verify_projector(ch.schedule, e, max_lag=max_lag),
                       ref.verify_projector(ch.schedule, e, max_lag=max_lag))


def test_the_projector_split_is_numpys_percentile_to_the_last_bit():
    rng = np.random.default_rng(22)
    for k in range(3000):
        e = rng.random(int(rng.integers(1, 130))) * 10.0 ** int(rng.integers(-3, 4))
        if k % 3 == 0:
            e = np.round(e)
        if k % 5 == 0:
            e[rng.random(e.size) < 0.3] = np.nan
        if k % 7 == 0:
            e[:] = e[0]
        assert np.array_equal(new.projector_states(e), ref.projector_states(e))
        f = np.sort(e[np.isfinite(e)])
        if f.size:
            for q in (0, 10, 50, 90, 100):
                assert new._percentile(f, q) == np.percentile(f, q)


@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")
def test_the_faces_response_is_what_it_was_to_the_last_bit():
    rng = np.random.default_rng(23)
    for k in range(400):
        n = int(rng.integers(1, 60))
        g = rng.random((n, GRID * GRID, 3)) * 10.0 ** int(rng.integers(-4, 2))
        if k % 2:
            g[rng.random(n) < 0.4] = np.nan                       # frames without a face
        if k % 5 == 0:
            g[rng.random(g.shape) < 0.05] = np.nan                # lone cells
        if k % 7 == 0:
            g[:, int(rng.integers(0, GRID * GRID))] = np.nan      # a cell never measured
        if k % 11 == 0:
            g[:] = np.nan
        np.testing.assert_array_equal(face_response(g), ref.face_response(g))
        assert face_response(g).tobytes() == ref.face_response(g).tobytes()


def test_the_nonces_sequences_are_what_they_were():
    for k in range(1500):
        nonce = os.urandom(32 if k % 2 else 16)
        frames = 8 + k % 113
        kinds = KINDS[k % 3]
        assert Challenge.from_nonce(nonce, frames, kinds) == ref.challenge_from_nonce(nonce, frames, kinds)


def test_a_window_that_lost_a_frameset_is_refused_and_nothing_refused_before_is_accepted():
    # The one deliberate change from the check before (review 7's medium): a window whose frame
    # counters jump (a frameset lost, agent/pipeline/gaps.py) is refused, EVIDENCE_FAILED, even
    # when its energies and colours meet the nonce by place; whatever the check before refused
    # stays refused. The agent ends such a window itself (SES_FRAMES_LOST); one that arrives came
    # from a terminal that did not.
    rng = np.random.default_rng(14)
    refused_now = 0
    for seed in range(9):
        nonce = rng.bytes(32)
        kinds = KINDS[seed % 3]
        frames = int(rng.choice([12, 32]))
        for variant in ("valid", "noisy", "random", "lag_shifted"):
            p, lv = _payload(nonce, kinds, frames, int(rng.integers(0, 5)), seed, variant)
            k = int(rng.integers(1, frames))
            which = rng.choice(["both", "ir", "colour"])
            for f in p.evidence.frames[k:]:                   # a frameset lost before frame k
                if which in ("both", "ir"):
                    f.frame_counter += 1
                    f.timestamp_ms += 1000 / 30
                if which in ("both", "colour"):
                    f.color_frame_counter += 1
                    f.color_timestamp_ms += 1000 / 30
            for t in (EvidenceThresholds(), OTHER):
                old = _outcome(ref.verify, p, lv, nonce, kinds, frames, t)
                now = _outcome(evidence.verify, p, lv, nonce, kinds, frames, t)
                assert now[0] == "EVIDENCE_FAILED", (variant, which, k, old, now)
                if old[0] == "OK":
                    assert "frames lost in the window" in now[1], now
                    refused_now += 1
    assert refused_now > 0                     # the corpus has windows the check before accepted
    # A timestamp step with even counters is not the server's to judge (host arrival times jitter):
    # judged as before.
    nonce = rng.bytes(32)
    p, lv = _payload(nonce, KINDS[0], 32, 2, 3, "valid")
    for f in p.evidence.frames[10:]:
        f.timestamp_ms += 1000 / 30
        f.color_timestamp_ms += 1000 / 30
    assert _same(p, lv, nonce, KINDS[0], 32, EvidenceThresholds()) == "OK"
