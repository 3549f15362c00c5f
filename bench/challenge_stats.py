"""The challenges' statistics (issue 15): how often a stream that does not know the nonce passes
(blind pass), how often a genuine camera with actuation latency and jitter passes (genuine pass),
and how often injected streams are accepted, each beside the window's length.

* **Blind pass.** A blind stream shows a clean response (two-level IR energy, a clean colour step
  response) to sequences it guesses: the nonce's own rhythm with random states (``rhythm``), or
  one fixed run length (``fixed``: the best single guess against uniform run lengths). Checked with
  the verifiers themselves on a sample and, for the millions of trials the small rates need, with
  the same rule vectorised (a clean stream passes exactly when every settled frame matches at some
  lag); ``blind_agreement`` checks the two agree. Beside it, the bound derived in docs/liveness.md:
  a blind stream keeps each projector edge at the lag or one frame later with probability at most
  2/5 (runs uniform on 2..6), each illumination step at most 1/2 x 1/7 (timing, colour), over four
  or five lags.
* **Genuine pass.** Measured per-frame energies and face colours of rendered sessions
  (``measure_sessions``) are resampled into thousands of windows whose edges land through the
  simulator's own timing model (``drivers.sim.timing.Timeline``: latency, and a chance per edge of
  one frame more), then verified; ``rendered_sessions`` confirms on whole sessions of the simulator
  (``realtime=0``) with ``camera=d435`` and the latency and jitter asked for.
* **Injection.** ``inject=replay|splice|render`` sessions through ``capture_and_judge`` (what
  ``analyze`` runs), accepted or not, with a Clopper-Pearson bound.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.liveness.challenge import (
    ILLUMINATION_MAX_LAG,
    ILLUMINATION_STEPS,
    PALETTE,
    PROJECTOR_MAX_LAG,
    PROJECTOR_RUNS,
    Challenge,
    Kind,
    _settled,
    allowed_mismatches,
    face_response,
    verify,
    verify_illumination,
    verify_projector,
)
from drivers.sim.timing import Timeline

FRAME_MS = 1000.0 / 30
# The simulated panel's crosstalk (drivers/sim/screen.py), R, G, B rows (camera channel) over R, G, B
# columns (screen channel), each row divided by its own channel's response.
CROSSTALK = np.array([[1.0, 0.17 / 0.78, 0.02 / 0.78],
                      [0.08 / 0.84, 1.0, 0.08 / 0.84],
                      [0.02 / 0.88, 0.10 / 0.88, 1.0]])


# -- blind streams ---------------------------------------------------------------------------------

def _runs(n: int, rng: np.random.Generator, lo: int, hi: int, fixed: int | None) -> np.ndarray:
    out: list[bool] = []
    s = bool(rng.integers(2))
    first = True
    while len(out) < n + 8:
        r = fixed if fixed is not None else int(rng.integers(lo, hi + 1))
        if first and fixed is not None:
            r = int(rng.integers(1, fixed + 1))            # a random phase
        out.extend([s] * r)
        s, first = not s, False
    return np.array(out[:n])


def blind_projector_stream(n: int, rng: np.random.Generator, strategy: str) -> np.ndarray:
    lo, hi = PROJECTOR_RUNS
    return _runs(n, rng, lo, hi, (lo + hi) // 2 if strategy == "fixed" else None)


def blind_illumination_stream(n: int, rng: np.random.Generator, strategy: str) -> np.ndarray:
    """(n, 3) colours a blind stream shows: another nonce's sequence (``rhythm``), or steps of one
    length with random colours, each unlike the last (``fixed``)."""
    if strategy == "rhythm":
        return Challenge.from_nonce(rng.bytes(32), n, (Kind.ILLUMINATION,)).colours()
    lo, hi = ILLUMINATION_STEPS
    return fixed_steps(n, (lo + hi) // 2, PALETTE, rng, first=1)


def fixed_steps(n: int, step: int, values, rng: np.random.Generator, first: int = 0) -> np.ndarray:
    """The ``fixed`` blind strategy: ``n`` frames in steps of ``step`` (a random phase), each step one
    of ``values`` unlike the last, the first drawn from ``values[first:]`` (colours skip black)."""
    values = np.asarray(values, dtype=float)
    out = np.zeros((n, *values.shape[1:]))
    c = int(rng.integers(first, len(values)))
    k = -int(rng.integers(0, step))
    while k < n:
        out[max(k, 0):k + step] = values[c]
        k += step
        c = (c + 1 + int(rng.integers(0, len(values) - 1))) % len(values)
    return out


def _clean_pass(observed: np.ndarray, expected: np.ndarray, max_lag: int) -> bool:
    """What the verifiers decide on a clean stream: every settled frame matches at some lag."""
    n = len(expected)
    for lag in range(max_lag + 1):
        m = n - lag
        if m < 6:
            break
        p, o = expected[:m], observed[lag:]
        care = _settled(p)
        same = (o == p) if p.ndim == 1 else np.all(o == p, axis=1)
        if np.sum(~same & care) <= allowed_mismatches(int(care.sum())):
            return True
    return False


def blind_rate(kind: Kind, frames: int, trials: int, strategy: str, seed: int = 11) -> float:
    """Share of ``trials`` fresh nonces a clean blind stream passes (vectorised rule)."""
    rng = np.random.default_rng(seed)
    passed = 0
    for _ in range(trials):
        ch = Challenge.from_nonce(rng.bytes(32), frames, (kind,))
        if kind is Kind.PROJECTOR:
            ok = _clean_pass(blind_projector_stream(frames, rng, strategy), np.array(ch.schedule), PROJECTOR_MAX_LAG)
        else:
            ok = _clean_pass(blind_illumination_stream(frames, rng, strategy), ch.colours(), ILLUMINATION_MAX_LAG)
        passed += ok
    return passed / trials


def blind_agreement(kind: Kind, frames: int, trials: int, seed: int = 5) -> tuple[int, int]:
    """(agreeing, trials): the vectorised rule against the verifier itself on clean blind streams
    (noise added so the verifier's separation test sees a physical-looking stream)."""
    rng = np.random.default_rng(seed)
    agree = 0
    for i in range(trials):
        strategy = ("rhythm", "fixed")[i % 2]
        ch = Challenge.from_nonce(rng.bytes(32), frames, (kind,))
        if kind is Kind.PROJECTOR:
            s = blind_projector_stream(frames, rng, strategy)
            fast = _clean_pass(s, np.array(ch.schedule), PROJECTOR_MAX_LAG)
            slow = verify_projector(ch.schedule, np.where(s, 12.0, 4.0) + rng.normal(0, 0.1, frames)).passed
        else:
            x = blind_illumination_stream(frames, rng, strategy)
            fast = _clean_pass(x, ch.colours(), ILLUMINATION_MAX_LAG)
            y = np.array([0.2, 0.15, 0.1]) + 0.02 * x + rng.normal(0, 1e-4, (frames, 3))
            slow = verify_illumination(ch.steps, y).passed
        agree += fast == slow
    return agree, trials


# What a blind projector stream shows (``blind_projector_outcomes``): the IR energies of a camera's dots
# (``dots``: lit frames high), the same inverted (``clipped``: lit frames low, as a clipped IR image
# shows them: an injector claiming bright light), or nothing switching at all (``flat``: an injector
# claiming drowned dots), or the dots' small step on a slow wander as large as it (``drifting``: direct
# sun's window, eighth/bona_fide/live/34; an injector claiming it). Levels and noise as
# ``blind_agreement``'s but for ``drifting``'s own.
BLIND_PROJECTOR_SHOWS = ("dots", "clipped", "flat", "drifting")


def blind_projector_outcomes(frames: int, trials: int, seed: int = 13) -> dict[str, dict[str, int]]:
    """Per blind stream (``BLIND_PROJECTOR_SHOWS`` x strategy ``rhythm``/``fixed``; ``flat`` has none),
    how many of ``trials`` fresh nonces :func:`verify_projector` passes, finds not measurable (the
    judge's inconclusive, never live) or finds contradicted (attack)."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, int]] = {}
    for shows in BLIND_PROJECTOR_SHOWS:
        for strategy in (("rhythm", "fixed") if shows != "flat" else ("none",)):
            got = {"passed": 0, "unmeasurable": 0, "contradicted": 0}
            for _ in range(trials):
                ch = Challenge.from_nonce(rng.bytes(32), frames, (Kind.PROJECTOR,))
                noise = rng.normal(0, 0.1, frames)
                if shows == "flat":
                    e = 8.0 + noise
                elif shows == "drifting":
                    # Direct sun's window (eighth/bona_fide/live/34): the dots' step 0.3 on 8, a third
                    # of the noise, under a slow wander of the ambient's own energy as large as the step.
                    s = blind_projector_stream(frames, rng, strategy)
                    t = np.arange(frames) / float(rng.uniform(16, 64))
                    wander = rng.uniform(0.15, 0.4) * np.sin(2 * np.pi * t + rng.uniform(0, 2 * np.pi))
                    e = 8.0 + np.where(s, 0.3, 0.0) + wander + noise / 3
                else:
                    s = blind_projector_stream(frames, rng, strategy)
                    e = (np.where(s, 12.0, 4.0) if shows == "dots" else np.where(s, 4.0, 12.0)) + noise
                r = verify_projector(ch.schedule, e)
                got["passed" if r.passed else "contradicted" if r.measurable else "unmeasurable"] += 1
            out[f"{shows}/{strategy}"] = got
    return out


def blind_bound(kind: Kind, frames: int, samples: int = 4000, seed: int = 3) -> float:
    """The derived bound (docs/liveness.md), averaged over the nonce's sequences: the sum over lags of
    (initial state or first colour) x per edge (projector 2/5) or per step (1/2 x 1/7; the step that
    repeats the first colour 1/2) for every edge whose settled frames are compared at that lag."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(samples):
        ch = Challenge.from_nonce(rng.bytes(32), frames, (kind,))
        b = 0.0
        if kind is Kind.PROJECTOR:
            lo, hi = PROJECTOR_RUNS
            q = 2 / (hi - lo + 1)
            sched = np.array(ch.schedule)
            edges = np.nonzero(sched[1:] != sched[:-1])[0] + 1
            for lag in range(PROJECTOR_MAX_LAG + 1):
                k = int(np.sum(edges + 1 < frames - lag))        # edges whose second frame is compared
                b += 0.5 * q ** k
        else:
            lo, hi = ILLUMINATION_STEPS
            timing = 2 / (hi - lo + 1)
            for lag in range(ILLUMINATION_MAX_LAG + 1):
                steps = [st for st in ch.steps if st.frames >= 2 and st.start + 1 < frames - lag]
                p = 1 / (len(PALETTE) - 1) if steps else 1.0            # the first colour (never black)
                for j, st in enumerate(steps[1:], 1):
                    repeat = j == len(steps) - 1 and st.rgb == steps[0].rgb and len(steps) >= 3
                    p *= timing * (1.0 if repeat else 1 / (len(PALETTE) - 1))
                b += p
        total += min(b, 1.0)
    return total / samples


# -- genuine cameras ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SessionModel:
    """One rendered session's measurements: IR energies of lit and unlit settled frames, and the
    face's colour as its own light over time (``base``: the measured colour less the screen's part,
    in time order, so a person's drift and blinks stay as they were) plus the response ``A`` (3 x 3,
    colour channel from screen channel) to what the screen shows."""

    query: str
    energy_on: np.ndarray
    energy_off: np.ndarray
    base: np.ndarray            # (m, 3) R, G, B per frame, in time order
    response: np.ndarray        # (3, 3)

    @property
    def gain(self) -> np.ndarray:
        return np.diag(self.response)


def face_measure(grids: np.ndarray, selection: str) -> np.ndarray:
    """``face_response(grids, selection)``, or one of ``bench.face_measure``'s own measures that are not
    the judge's (``standardised``, ``hybrid``, ``snr``; docs/liveness.md, *A face half in direct sun*)."""
    if selection in ("standardised", "hybrid", "snr"):
        # bench.face_measure imports this module, so it is imported here, when first needed
        from bench.face_measure import measure
        return measure(grids, selection)
    return face_response(grids, selection)


def model_from_evidence(query: str, ev: dict[str, Any], challenge: Challenge, result, *,
                        illumination_lag: int | None = None, selection: str = "window") -> SessionModel | None:
    """A session model from a judged window's evidence (the same numbers the server receives).
    With ``illumination_lag`` the screen's lag is given (``bench.illum_bits``: scenes too dim or too
    bright for the illumination challenge are modelled too) and only the projector must have passed.
    ``selection``: the face measure's choice of cells (``face_response``)."""
    p, ill = result.get(Kind.PROJECTOR), result.get(Kind.ILLUMINATION)
    if p is None or ill is None or not p.passed or (illumination_lag is None and not ill.passed):
        return None
    frames = ev["frames"]
    e = np.array([f["ir_energy"] for f in frames])
    sched = np.array(challenge.schedule)
    lag = p.lag_frames
    exp = sched[:len(e) - lag]
    care = _settled(exp)
    on, off = e[lag:][care & exp], e[lag:][care & ~exp]
    grids = np.array([f["face_grid"] if f["face_grid"] else [np.nan] * 48 for f in frames]).reshape(len(frames), 16, 3)
    y = face_measure(grids, selection)
    x = challenge.colours()
    lag = ill.lag_frames if illumination_lag is None else illumination_lag
    xx, yy = x[:len(y) - lag], y[lag:]
    ok = np.all(np.isfinite(yy), axis=1)
    care = _settled(xx) & ok
    # The response is the skin's reflectance per camera channel times the panel's mixing of its
    # primaries into the channels (the simulator's, CROSSTALK): one gain per channel, fitted with the
    # face's own light drifting as a cubic in time. A window's few colours cannot pin down a free
    # 3 x 3 response, and a wrong one would leave a ghost of this session's sequence in ``base``.
    t = 2 * np.arange(len(yy), dtype=np.float64) / len(yy) - 1
    mixed = xx @ CROSSTALK.T
    drift = np.c_[np.ones(care.sum()), t[care], t[care] ** 2, t[care] ** 3]
    gains = np.array([np.linalg.lstsq(np.c_[drift, mixed[care, c]], yy[care, c], rcond=None)[0][-1]
                      for c in range(3)])
    response = gains[:, None] * CROSSTALK
    return SessionModel(query, on, off, _own_light(yy, xx, response)[ok], response)


def _own_light(yy: np.ndarray, xx: np.ndarray, response: np.ndarray) -> np.ndarray:
    """(frames, 3) the face's own light: the measured colour ``yy`` less the response to the commanded
    colour ``xx`` (aligned at the model's lag), where each step's first frame is taken as showing the
    step's colour or the one before, whichever leaves its own light nearer the mean of its neighbours'.

    An edge can land a frame after the lag (the screen's timing: 20-30 % of edges), or the whole
    session can be modelled at a lag other than its own (the verifier passes a clean window at two
    neighbouring lags, since a step's first frame is not compared, and ``bench.illum_bits`` models a
    failed window at ``SIM_SCREEN_LAG``). Subtracting the commanded colour on such a frame leaves a
    spike of one gain in the own light (a ghost of this session's sequence), which the bench then
    replays inside the new sequences' steps (docs/liveness.md, *A bench artefact in the sweep's
    5,000 lux row*). The window's first frame counts as an edge from the dark screen before it; an
    edge is judged against the neighbours it has with a face (one at the window's ends), and left as
    it is without any. Every other frame is the commanded colour's, as before."""
    base = yy - xx @ response.T
    before = np.vstack([np.zeros((1, 3)), xx[:-1]])               # the app's screen is dark before the first
    for k in np.flatnonzero(np.any(xx != before, axis=1)):
        near = [base[j] for j in (k - 1, k + 1) if 0 <= j < len(base) and np.all(np.isfinite(base[j]))]
        if not near or not np.all(np.isfinite(base[k])):
            continue
        mid = np.mean(near, axis=0)
        old = base[k] + (xx[k] - before[k]) @ response.T           # the frame showed the colour before
        if np.sum((old - mid) ** 2) < np.sum((base[k] - mid) ** 2):
            base[k] = old
    return base


def _ping_pong(k: np.ndarray, n: int) -> np.ndarray:
    j = k % max(2 * n - 2, 1)
    return np.where(j < n, j, 2 * n - 2 - j)


def _landings(states: np.ndarray, latency: int, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """Per frame, the commanded state (index into ``states``'s frames) the device shows: commands at
    each edge, landing through the simulator's timeline; before the first lands, frame -1 (the
    state before the window)."""
    n = len(states)
    tl: Timeline[int] = Timeline(-1, latency, jitter, rng)
    tl.command(0, 0)
    for k in range(1, n):
        if np.any(states[k] != states[k - 1]):
            tl.command(k, k)
    return np.array([tl.state_at(k) for k in range(n)])


def blend_frames(shown: np.ndarray, src: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """``shown`` (frames, 3: what the screen shows in each colour frame, one state each, landing as
    ``src``) with the frame each change lands in blended, with probability ``p`` per change: a share
    a of the new colour and 1 - a of the old, a uniform on 0..1, the next frame the new colour.

    Why so: a colour frame integrates the face's light over its exposure, e (10-33 ms of the 33 ms
    frame), and the screen's change at an unsynchronised time t (60 Hz refresh, LCD response 5-10
    ms). In the timing model a change lands in the first frame whose exposure ends after t; that
    frame's exposure holds t with probability e over the frame time (plus the panel's response time),
    and then shows the new colour for a share uniform on 0..1. So ``p`` is (exposure + response) over
    the frame time, ~0.45 at 10 ms, 1 at 33 ms (capped): a real kiosk blends most edges. A transition
    longer than a frame (a slow panel at a long exposure) would blend two frames; not modelled."""
    out = shown.copy()
    for k in np.flatnonzero(src[1:] != src[:-1]) + 1:
        if rng.random() < p:
            a = rng.random()
            out[k] = a * shown[k] + (1.0 - a) * shown[k - 1]
    return out


def genuine_trial(model: SessionModel, frames: int, latency: int, jitter: float, screen_lag: int,
                  screen_jitter: float, rng: np.random.Generator, kinds=(Kind.PROJECTOR, Kind.ILLUMINATION),
                  blend: float = 0.0, blend_rng: np.random.Generator | None = None):
    ch = Challenge.from_nonce(rng.bytes(32), frames, kinds)
    energies = rgb = None
    if Kind.PROJECTOR in ch.kinds:
        sched = np.array(ch.schedule)
        src = _landings(sched, latency, jitter, rng)
        lit = np.where(src < 0, True, sched[np.maximum(src, 0)])            # on before the window
        energies = np.where(lit, rng.choice(model.energy_on, frames), rng.choice(model.energy_off, frames))
    if Kind.ILLUMINATION in ch.kinds:
        x = ch.colours()
        src = _landings(x, screen_lag, screen_jitter, rng)
        shown = np.where((src < 0)[:, None], 0.0, x[np.maximum(src, 0)])     # the app's own screen: dark
        if blend > 0:                                                       # blended frames at the edges
            assert blend_rng is not None
            shown = blend_frames(shown, src, blend, blend_rng)
        own = model.base[_ping_pong(np.arange(frames) + int(rng.integers(0, 2 * len(model.base))),
                                    len(model.base))]
        rgb = own + shown @ model.response.T
    return verify(ch, energies, rgb)


def genuine_rate(models: list[SessionModel], frames: int, latency: int, jitter: float, trials: int, *,
                 screen_lag: int = 1, screen_jitter: float = 0.0, kinds=(Kind.PROJECTOR, Kind.ILLUMINATION),
                 seed: int = 17, blend: float = 0.0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    blend_rng = np.random.default_rng([seed, 1])
    counts = {"projector": 0, "illumination": 0, "both": 0}
    for i in range(trials):
        r = genuine_trial(models[i % len(models)], frames, latency, jitter, screen_lag, screen_jitter, rng, kinds,
                          blend, blend_rng)
        p, ill = r.get(Kind.PROJECTOR), r.get(Kind.ILLUMINATION)
        counts["projector"] += bool(p and p.passed)
        counts["illumination"] += bool(ill and ill.passed)
        counts["both"] += r.passed
    return {k: v / trials for k, v in counts.items()}


# -- rendered sessions -------------------------------------------------------------------------------

def scene(i: int, seed: int = 0) -> str:
    """A live scene of the capture envelope (pad-eval's ranges: 40-2500 lux, 420-600 mm, yaw ±12°,
    pitch ±10°, 3000-6500 K), every identity family."""
    rng = np.random.default_rng(10_000 * seed + i)
    q = {"subject": "live", "seed": 500_000 + 131 * i + seed, "identity": int(rng.integers(0, 400)),
         "yaw": round(float(rng.uniform(-12, 12)), 1), "pitch": round(float(rng.uniform(-10, 10)), 1),
         "lux": round(float(np.exp(rng.uniform(np.log(40), np.log(2500)))), 0),
         "distance_mm": round(float(rng.uniform(420, 600)), 0), "cct": round(float(rng.uniform(3000, 6500)), 0)}
    return "&".join(f"{k}={v}" for k, v in q.items())


def nonce_for(query: str) -> bytes:
    return hashlib.sha256(b"capture-agent/bench/challenge\0" + query.encode()).digest()


def run_session(query: str, frames: int, gate=None):
    """One analyze-style session (capture, then judge in this process): (challenge result, judge result,
    challenge)."""
    import drivers
    from agent.liveness.fusion import VerdictThresholds
    from agent.liveness.judge import judge
    from agent.quality import QualityGate
    from agent.session.offline import capture
    gate = gate or QualityGate()
    cam = drivers.open("sim://?realtime=0&" + query)
    with cam:
        c = capture(cam, frames, nonce_for(query), gate)
    r = judge(c.sets, gate, VerdictThresholds(), challenge=c.challenge, notes=c.notes)
    return r, c.challenge


def challenge_result(r, ch: Challenge, selection: str = "window"):
    """The judge's challenge verdict, recomputed from its own evidence (identical numbers with the
    judge's own face measure; ``selection``: another choice of the face's cells, ``face_response``)."""
    ev = r.evidence
    grids = np.array([f["face_grid"] if f["face_grid"] else [np.nan] * 48 for f in ev["frames"]])
    return verify(ch, [f["ir_energy"] for f in ev["frames"]],
                  face_measure(grids.reshape(len(grids), 16, 3), selection))


def clopper_pearson_upper(errors: int, n: int, confidence: float = 0.95) -> float:
    """Two-sided 95 % upper bound of a rate (as pad-eval reports ``apcer_upper95``)."""
    from scipy.stats import beta
    if n == 0:
        return float("nan")
    return 1.0 if errors == n else float(beta.ppf(1 - (1 - confidence) / 2, errors + 1, n - errors))


def clopper_pearson_lower(successes: int, n: int, confidence: float = 0.95) -> float:
    from scipy.stats import beta
    if n == 0:
        return float("nan")
    return 0.0 if successes == 0 else float(beta.ppf((1 - confidence) / 2, successes, n - successes + 1))


def env_int(name: str, default: int) -> int:
    try:
        return max(0, int(os.environ.get(name, default)))
    except ValueError:
        return default


def _main(argv: list[str]) -> int:
    """``python -m bench.challenge_stats PART [N] [SEED]``: one part of the figures at a size of its own,
    as JSON lines (the long runs behind docs/liveness.md; ``python -m bench liveness`` runs all parts
    small). PART: ``blind`` (N nonces per row), ``blind-outcomes`` (N nonces per blind projector stream
    and window: passed, not measurable, contradicted), ``genuine`` (N measured sessions, 4000 simulated
    windows per condition), ``rendered-jitter`` / ``rendered-latency2`` (N whole sessions),
    ``replay`` / ``splice`` / ``render`` (N injected sessions). SEED shifts the scenes; for ``genuine``
    a fourth argument adds query keys to every scene (``&lux=5000``)."""
    import json
    import time

    from agent.liveness.challenge import window_frames
    from agent.quality import QualityGate
    part, n = argv[0], int(argv[1]) if len(argv) > 1 else 100
    seed = int(argv[2]) if len(argv) > 2 else 0
    t0 = time.time()

    def out(**row: Any) -> None:
        print(json.dumps({**row, "elapsed_s": round(time.time() - t0, 1)}), flush=True)
    if part == "blind":
        for kind in (Kind.PROJECTOR, Kind.ILLUMINATION):
            agree = blind_agreement(kind, 24, 1000)
            out(kind=kind.value, verifier_agreement=list(agree))
            for frames in (16, 20, 24, 32, 40, 48):
                rates = {s: blind_rate(kind, frames, n, s, seed=11 + seed) for s in ("rhythm", "fixed")}
                worst = max(rates.values())
                out(kind=kind.value, frames=frames, ms=round(frames * FRAME_MS), trials=n, rates=rates,
                    upper95=clopper_pearson_upper(round(worst * n), n), bound=blind_bound(kind, frames, 4000))
        return 0
    if part == "blind-outcomes":
        for frames in (16, 24, 32, 48):
            outcomes = blind_projector_outcomes(frames, n, seed=13 + seed)
            out(kind="projector", frames=frames, trials=n, outcomes=outcomes)
        return 0
    gate = QualityGate()
    if part == "genuine":
        models = []
        for i in range(n):
            q = scene(i, seed=1 + seed) + (argv[3] if len(argv) > 3 else "")
            r, ch = run_session(q, 32, gate)
            m = model_from_evidence(q, r.evidence, ch, challenge_result(r, ch)) if r.evidence else None
            out(session=i, query=q, live=r.verdict.verdict, modelled=m is not None)
            if m is not None:
                models.append(m)
        for frames in (window_frames(["projector", "illumination"]), 32, 48):
            for latency, jitter, sl, sj in ((0, 0.0, 1, 0.0), (1, 0.2, 1, 0.0), (2, 0.0, 2, 0.0), (2, 0.2, 2, 0.2),
                                            (1, 0.2, 3, 0.2), (2, 0.3, 3, 0.3)):
                got = genuine_rate(models, frames, latency, jitter, 4000, screen_lag=sl, screen_jitter=sj)
                out(frames=frames, projector_latency=latency, projector_jitter=jitter, screen_lag=sl,
                    screen_jitter=sj, trials=4000, models=len(models), pass_rates=got,
                    lower95={k: clopper_pearson_lower(round(v * 4000), 4000) for k, v in got.items()})
        return 0
    if part.startswith("rendered"):
        extra = ("camera=d435&projector_jitter=0.2" if part == "rendered-jitter"
                 else "camera=d435&projector_latency=2&projector_jitter=0")
        frames = window_frames(["projector", "illumination"])
        passed = live = 0
        for i in range(n):
            q = scene(i, seed=2 + seed) + "&" + extra
            r, ch = run_session(q, frames, gate)
            c = r.verdict.challenge or {}
            passed += bool(c.get("passed"))
            live += r.verdict.verdict == "live"
            out(session=i, query=q, challenge_passed=c.get("passed"), verdict=r.verdict.verdict,
                projector=c.get("projector"), illumination=c.get("illumination"))
        out(summary=part, frames=frames, sessions=n, challenge_passed=passed, judged_live=live,
            pass_rate=passed / max(n, 1), lower95=clopper_pearson_lower(passed, n))
        return 0
    if part in ("replay", "splice", "render"):
        frames = window_frames(["projector", "illumination"])
        accepted = 0
        for i in range(n):
            q = scene(i, seed=3 + seed) + f"&inject={part}"
            r, ch = run_session(q, frames, gate)
            c = r.verdict.challenge or {}
            accepted += r.verdict.verdict == "live"
            out(session=i, query=q, verdict=r.verdict.verdict, challenge_passed=c.get("passed"),
                projector=(c.get("projector") or {}).get("passed"), illumination=(c.get("illumination") or {}).get(
                    "passed"))
        out(summary=part, name=part, frames=frames, n=n, accepted=accepted, apcer=accepted / max(n, 1),
            apcer_upper95=clopper_pearson_upper(accepted, n))
        return 0
    raise SystemExit(f"unknown part {part!r}")


if __name__ == "__main__":
    import sys
    raise SystemExit(_main(sys.argv[1:]))
