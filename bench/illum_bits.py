"""Issue 20: more challenge bits per frameset, so that the window can shrink. A measurement only:
the challenge, the daemon and the server keep today's sequence and window.

Today's illumination sequence (``agent/liveness/challenge.py``): steps of 3-6 framesets, each one of
the 8 colours whose channels are fully on or off. The variants measured here, each at windows of
12, 16 and 20 framesets at 30 fps:

* ``steps24`` / ``steps25`` — shorter steps (2-4 or 2-5 framesets), the same one-frame edge tolerance;
* ``levels3`` — three levels per channel (off, half, full: 27 colours, 26 choices a step), the
  face's gain fitted per channel as today and each settled frame decoded to the nearest level
  (``verify_illumination(levels=3)``: the separation required is one level's step, half the gain,
  over the noise);
* ``steps24x3`` / ``steps25x3`` — both.

``today`` is the production sequence (``illumination_steps``' defaults), through the same code.

Figures (the verifiers themselves, ``challenge_stats``' machinery):

* **blind pass** — clean blind streams (another nonce's sequence of the variant: ``rhythm``; steps
  of one length, random colours of the variant's palette: ``fixed``), decided several ways
  (``RULES``): by ``verify_illumination`` as the challenge runs it (``verifier``: with its step
  check, ``step_check=ILLUMINATION_CROSSTALK``; ``steps`` names the same explicitly), by it without
  the step check (``nosteps``: the verifier before it, which the rules below modify), with the fit's
  residual checked against one frame's noise (``fit3``: ``fit_check=3``), with a straight-line
  drift (``linear``: ``drift_terms=1``), with the drift's excursion bounded by the gain (``bound``:
  ``drift_bound=DRIFT_BOUND``) or with one drift shape shared by the channels (``shared``:
  ``shared_drift=True``; these four tried here, not used by the challenge), and by the clean rule
  (``clean``, ``challenge_stats._clean_pass``: every settled frame matches at some lag), with the
  derived bound (per step: its length on one of two values, its colour one of the palette's
  others); ``agreement`` counts where the rule and the verifier agree. Below 32 framesets the
  verifier without the step check passes blind streams the rule refuses (docs/liveness.md, *More
  bits per frameset*).
* **genuine pass** — rendered 30 fps sessions (``models``: both challenges' measurements of a
  32-frameset window, the face's own light and its response to the screen), resampled into windows
  of the variant whose edges land through ``drivers.sim.timing.Timeline`` (screen lag and jitter),
  verified (``verifier`` and ``fit3``). A half level is half the panel's light (the simulated
  panel is linear in its drive; a real one needs its gamma undone).
* **projector power levels** (secondary) — runs of 2-6 framesets at off / half / full power:
  blind pass by the clean rule and its bound, genuine pass with the rendered sessions' lit and
  unlit dot energies (a half-power frame's energy ``sqrt(off^2 + (on^2 - off^2) / 4)``: the dots'
  high-pass signal halves, the sensor's noise does not) and a level decoder of this bench's. An
  injector on the camera link sees the power commands: these bits count against replay only.

``python -m bench.illum_bits PART ...`` prints JSON lines:

* ``models OUT.json N SEED [EXTRA|sweep]`` — render N sessions (``challenge_stats.scene(i, SEED)``, the
  query keys EXTRA appended, e.g. ``&lux=15``; ``sweep``: each scene at every lux of ``LUX_SWEEP``) and
  write their models to OUT.json;
* ``blind N [VARIANTS|all] [WINDOWS] [RULES]`` — blind pass per variant, window and rule (N nonces
  per row; comma-separated lists);
* ``genuine N [rules=R,...] [variants=V,...] [windows=W,...] [boost=B] FILE...`` — genuine pass per variant,
  screen timing and rule (default ``verifier,fit3``) at 16 framesets, and at 12 and 20 with the
  hardest timing (N windows per row), over the models in FILE... (``windows=``: those windows at
  every timing instead; ``boost=``: the screen as the daemon's plan lights each scene with
  ``[challenge] screen_boost = B`` at the default ``screen_boost_lux``, :func:`boosted`);
* ``caps N FRAMES FILE...`` — genuine pass at FRAMES framesets with at most 5, 4, 3, 2, 1 late blends a
  window (``late_blends``), screen 3 frames with 20 % and 30 % one frame late, blend 0.5 and 1, N
  windows a row (the ``genuine`` part's seeds), each window verified as few times as the caps need
  (:func:`late_cap_passes`);
* ``lux N FILE...`` — genuine pass per scene light (the models grouped by lux), 16 framesets, the
  hardest screen timing;
* ``power N FILE...`` — the projector power levels' rows.

``rows(...)`` returns the figures as ``bench-results.json`` rows (``python -m bench illum``).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.config import ChallengeSettings
from agent.liveness.challenge import (
    FRAMES_PER_ALLOWED_MISMATCH,
    ILLUMINATION_CROSSTALK,
    ILLUMINATION_LATE_BLENDS,
    ILLUMINATION_MAX_LAG,
    ILLUMINATION_NOISE_SPREAD,
    MIN_COMPARED,
    PALETTE,
    PROJECTOR_MAX_LAG,
    PROJECTOR_MIN_SEPARATION,
    Challenge,
    Kind,
    Rgb,
    Step,
    _dprime,
    _settled,
    _Stream,
    illumination_steps,
    verify_illumination,
)
from agent.session.window import screen_luminance
from bench import challenge_stats as cs

WINDOWS = (12, 16, 20)
BLIND_TARGET_PCT = 0.03         # issue 15: blind pass (upper 95 %)
GENUINE_TARGET_PCT = 99.5       # issue 15: genuine pass (lower 95 %)
# Screen lag (colour frames) and the chance of one frame more: challenge_stats' genuine table.
SCREEN_TIMING = ((1, 0.0), (2, 0.2), (3, 0.2), (3, 0.3))
# The verifier's lag for the simulator's panel (``screen_latency=1``: shown one colour frame after
# the next): the lag every passing rendered session was judged at.
SIM_SCREEN_LAG = 1
LUX_SWEEP = (15, 40, 150, 600, 2500, 5000, 7500)
# Blind and genuine pass under: the verifier as the challenge has it, the verifier with its fit's
# residual checked (``verify_illumination(fit_check=3)``, measured here, not used), the clean rule.
RULES = ("verifier", "nosteps", "halfgain", "rmsnoise", "robust", "oneframe", "blend", "late", "late4", "late3",
         "noisecap", "percubic", "fit3", "linear", "bound", "shared", "steps", "clean")
# The rules a blind table shows by default (``steps`` and ``robust`` are the challenge's default,
# ``verifier``, named).
ROW_RULES = tuple(r for r in RULES if r not in ("steps", "robust", "oneframe", "blend", "late", "late4", "late3",
                                                  "noisecap"))
FIT_CHECK = 3.0
# ``noisecap``: windows under this many framesets may not pass where the noise sets the step
# check's tolerance (``verify_illumination(noise_frames=...)``).
NOISE_FRAMES = 32
# ``bound``: the fitted drift's excursion within DRIFT_BOUND times the channel's gain
# (``verify_illumination(drift_bound=...)``). Chosen on genuine training scenes only (seed 8's ten
# rendered sessions, ``challenge_stats.scene(i, 8)``): the largest excursion-to-gain ratio any of
# their windows needed (4,000 windows a window length, 16/24/32 framesets, every screen timing),
# rounded up to the next half (docs/liveness.md, *More bits per frameset, measured*).
DRIFT_BOUND = 2.0


def rule_options(rule: str) -> dict[str, Any]:
    """``verify_illumination``'s keywords for a rule: ``verifier`` the challenge's (its defaults),
    ``steps`` the step check at ``ILLUMINATION_CROSSTALK`` (the default, named), ``nosteps`` without
    the step check (the verifier before it); without the step check too: ``fit3`` with the fit's
    residual checked (``fit_check=FIT_CHECK``), ``linear`` with the face's own light drifting as a
    straight line in time (``drift_terms=1``, not a cubic), ``bound`` with the drift's excursion
    bounded by the gain (``drift_bound=DRIFT_BOUND``), ``shared`` with one drift shape for the three
    channels (``shared_drift=True``). With the step check: ``halfgain`` its tolerance half the gain
    alone (``step_noise=None``), ``rmsnoise`` its noise the root mean square of the within-step
    changes alone (``step_spread=None``, the verifier before the robust noise), ``robust`` that noise
    at most ``ILLUMINATION_NOISE_SPREAD`` times the median-based one (the verifier's default, named).
    ``oneframe``: one unsettled frame per edge and no late blends (``edge_frames=1, late_blends=None``,
    the rule before blended frames were modelled; every rule above is measured so too); ``blend``: two,
    the second a blend of its neighbours (``edge_frames=2``); ``late``: one, and on up to
    ``ILLUMINATION_LATE_BLENDS`` edges a late edge's blend on the step's second frame (the verifier's
    default since the fourteenth session, named); ``late4`` and ``late3``: the verifier's defaults with
    at most that many late blends a window instead of ``ILLUMINATION_LATE_BLENDS`` (a lower cap for
    short windows, measured at 24 framesets: docs/liveness.md, *A lower late-blend cap for short
    windows*). ``noisecap``: the verifier's defaults, and windows of under 32 framesets do not pass
    where the noise sets the step check's tolerance (inconclusive instead; ``noise_frames=NOISE_FRAMES``).
    ``percubic``: the verifier's defaults but the face's own light a cubic per channel
    (``shared_drift=False``: the verifier before the twenty-second session's wave22; ``verifier`` and
    ``shared`` fit one drift shape for the three channels, ``shared`` without the step check).
    ``clean`` is not the verifier."""
    if rule not in RULES or rule == "clean":
        raise ValueError(f"unknown verifier rule {rule!r}")
    one = {"edge_frames": 1, "late_blends": None}  # every rule measured before blends: one unsettled frame
    # The rules without the step check are the verifier before it, whose drift was a cubic per channel.
    off = {"step_check": None, "shared_drift": False, **one}
    options: dict[str, dict[str, Any]] = {"fit3": {"fit_check": FIT_CHECK, **off}, "linear": {"drift_terms": 1, **off},
                                          "bound": {"drift_bound": DRIFT_BOUND, **off},
                                          "shared": {**off, "shared_drift": True}, "nosteps": off,
                                          "halfgain": {"step_noise": None, **one},
                                          "rmsnoise": {"step_spread": None, **one},
                                          "robust": {"step_spread": ILLUMINATION_NOISE_SPREAD, **one},
                                          "steps": {"step_check": ILLUMINATION_CROSSTALK, **one},
                                          "oneframe": one, "blend": {"edge_frames": 2},
                                          "late": {"edge_frames": 1, "late_blends": ILLUMINATION_LATE_BLENDS},
                                          "late4": {"late_blends": 4}, "late3": {"late_blends": 3},
                                          "noisecap": {"noise_frames": NOISE_FRAMES},
                                          "percubic": {"shared_drift": False}}
    return options.get(rule, {})


@dataclass(frozen=True)
class Variant:
    """An illumination sequence: steps of ``steps`` framesets (uniform), ``levels`` per channel."""

    name: str
    steps: tuple[int, int]
    levels: int

    @property
    def palette(self) -> tuple[Rgb, ...]:
        """Black first (a window never starts on it), then every other colour; with 2 levels the
        challenge's own ``PALETTE``, in its order (so ``today`` draws the production sequence)."""
        if self.levels == 2:
            return PALETTE
        v = [i / (self.levels - 1) for i in range(self.levels)]
        return tuple((r, g, b) for r, g, b in itertools.product(v, repeat=3))

    def steps_for(self, nonce: bytes, frames: int) -> tuple[Step, ...]:
        return illumination_steps(nonce, frames, step_frames=self.steps, palette=self.palette)

    def colours(self, steps: Sequence[Step], frames: int) -> np.ndarray:
        return Challenge(b"", frames, frozenset({Kind.ILLUMINATION}), (), tuple(steps)).colours()


VARIANTS = (Variant("today", (3, 6), 2), Variant("steps24", (2, 4), 2), Variant("steps25", (2, 5), 2),
            Variant("levels3", (3, 6), 3), Variant("steps24x3", (2, 4), 3), Variant("steps25x3", (2, 5), 3))


def variant(name: str) -> Variant:
    for v in VARIANTS:
        if v.name == name:
            return v
    raise KeyError(name)


# -- blind streams -----------------------------------------------------------------------------------

def blind_stream(v: Variant, n: int, rng: np.random.Generator, strategy: str) -> np.ndarray:
    """(n, 3) colours a stream that does not know the nonce shows: another nonce's sequence of the
    variant (``rhythm``), or steps of one length (the middle of the range, a random phase) with random
    colours of the variant's palette, each unlike the last (``fixed``)."""
    if strategy == "rhythm":
        return v.colours(v.steps_for(rng.bytes(32), n), n)
    if strategy != "fixed":
        raise ValueError(f"unknown blind strategy {strategy!r}")
    return cs.fixed_steps(n, (v.steps[0] + v.steps[1]) // 2, v.palette, rng, first=1)


BLIND_GAIN = 0.02


def blind_face(x: np.ndarray, rng: np.random.Generator, noise: float = 1e-4) -> np.ndarray:
    """A clean response to the colours ``x`` a blind stream shows: a face's own light plus
    ``BLIND_GAIN`` (2 %) per channel, with a little noise (the verifier's separation test then sees a
    physical-looking stream; ``noise``: its standard deviation per frame and channel, which an
    injector chooses: ``BLIND_GAIN / noise`` is the stream's gain over its noise)."""
    return np.array([0.2, 0.15, 0.1]) + BLIND_GAIN * x + rng.normal(0, noise, x.shape)


def blind_rate(v: Variant, frames: int, trials: int, strategy: str, seed: int = 11,
               rule: str = "verifier", noise: float = 1e-4) -> float:
    """Share of ``trials`` fresh nonces a blind stream passes: decided by ``verify_illumination``
    itself on a clean response (``rule="verifier"``), by it with the fit's residual checked
    (``"fit3"``: ``fit_check=FIT_CHECK``), or by the clean rule (``"clean"``: every settled frame shows
    its colour at some lag; fast, but at 12-24 framesets the verifier is more lenient than it:
    ``blind_agreement``)."""
    opts = {} if rule == "clean" else rule_options(rule)
    rng = np.random.default_rng(seed)
    passed = 0
    for _ in range(trials):
        steps = v.steps_for(rng.bytes(32), frames)
        x = blind_stream(v, frames, rng, strategy)
        if rule == "clean":
            passed += cs._clean_pass(x, v.colours(steps, frames), ILLUMINATION_MAX_LAG)
        else:
            passed += verify_illumination(steps, blind_face(x, rng, noise), levels=v.levels, **opts).passed
    return passed / trials


def blind_agreement(v: Variant, frames: int, trials: int, seed: int = 5) -> tuple[int, int]:
    """(agreeing, trials): the clean rule against ``verify_illumination(levels=...)`` on clean blind
    streams with a little noise (so the verifier's separation test sees a physical-looking stream).
    Half the streams are the nonce's own sequence (which both must pass), so the check is not only
    of failures."""
    rng = np.random.default_rng(seed)
    agree = 0
    for i in range(trials):
        steps = v.steps_for(rng.bytes(32), frames)
        expected = v.colours(steps, frames)
        x = expected if i % 4 == 0 else blind_stream(v, frames, rng, ("rhythm", "fixed")[i % 2])
        fast = cs._clean_pass(x, expected, ILLUMINATION_MAX_LAG)
        slow = verify_illumination(steps, blind_face(x, rng), levels=v.levels).passed
        agree += fast == slow
    return agree, trials


def blind_bound(v: Variant, frames: int, samples: int = 2000, seed: int = 3, late: int = 0) -> float:
    """The derived bound (docs/liveness.md, ``challenge_stats.blind_bound``), for the variant: the
    sum over lags of the first colour (1 of the palette's others) times, per further compared step,
    its length on one of two values (2 of the range's lengths) and its colour (1 of the others; the
    repeated last step 1). ``late``: on that many steps (the most favourable to the stream) the
    length may fall on one of THREE values (``verify_illumination(late_blends=...)``: an edge may
    land two frames after the lag, its second frame a blend of share 0)."""
    rng = np.random.default_rng(seed)
    lo, hi = v.steps
    timing = min(2 / (hi - lo + 1), 1.0)
    slack = min(3 / (hi - lo + 1), 1.0)
    colour = 1 / (len(v.palette) - 1)
    total = 0.0
    for _ in range(samples):
        steps = v.steps_for(rng.bytes(32), frames)
        b = 0.0
        for lag in range(ILLUMINATION_MAX_LAG + 1):
            if frames - lag < MIN_COMPARED:
                break
            seen = [st for st in steps if st.frames >= 2 and st.start + 1 < frames - lag]
            p = colour if seen else 1.0
            for j, st in enumerate(seen[1:], 1):
                repeat = j == len(seen) - 1 and st.rgb == seen[0].rgb and len(seen) >= 3
                p *= (slack if j <= late else timing) * (1.0 if repeat else colour)
            b += p
        total += min(b, 1.0)
    return total / samples


# -- genuine cameras -----------------------------------------------------------------------------------

def session_model(query: str, r, ch: Challenge, selection: str = "window"
                  ) -> tuple[cs.SessionModel | None, dict[str, Any]]:
    """A rendered session's model (``challenge_stats.SessionModel``) and what it was: the verdict, the
    illumination's outcome and separation, the lag used. Sessions whose illumination failed (too dim,
    too bright) are modelled too, at the simulator's screen lag (``SIM_SCREEN_LAG``: where every
    passing session put it; a drowned response cannot show its own lag)."""
    info: dict[str, Any] = {"query": query, "verdict": r.verdict.verdict}
    if not r.evidence:
        return None, info
    res = cs.challenge_result(r, ch, selection)
    ill = res.get(Kind.ILLUMINATION)
    info.update(illumination_passed=bool(ill and ill.passed),
                illumination_separation=round(ill.separation, 2) if ill else None,
                projector_passed=bool(res.get(Kind.PROJECTOR) and res.get(Kind.PROJECTOR).passed))
    lag = SIM_SCREEN_LAG if ill is not None and not ill.passed else None
    info["illumination_lag"] = lag if lag is not None else (ill.lag_frames if ill else None)
    m = cs.model_from_evidence(query, r.evidence, ch, res, illumination_lag=lag, selection=selection)
    if m is not None:
        # The face's colour noise per frame (consecutive frames' differences of its own light) against
        # the response: the full level's and the half level's separation per channel.
        noise = np.std(np.diff(m.base, axis=0), axis=0) / np.sqrt(2)
        info["gain_over_noise"] = [round(float(g), 2) for g in m.gain / np.maximum(noise, 1e-12)]
    return m, info


def model_to_json(m: cs.SessionModel, info: dict[str, Any]) -> dict[str, Any]:
    return {**info, "energy_on": m.energy_on.tolist(), "energy_off": m.energy_off.tolist(),
            "base": m.base.tolist(), "response": m.response.tolist()}


def load_models(paths: Sequence[str]) -> list[tuple[cs.SessionModel, dict[str, Any]]]:
    out = []
    for p in paths:
        with open(p) as fh:
            for row in json.load(fh):
                m = cs.SessionModel(row["query"], np.array(row["energy_on"]), np.array(row["energy_off"]),
                                    np.array(row["base"]).reshape(-1, 3), np.array(row["response"]))
                info = {k: v for k, v in row.items() if k not in ("energy_on", "energy_off", "base", "response")}
                out.append((m, info))
    return out


def boosted(models: Sequence[tuple[cs.SessionModel, dict[str, Any]]], boost: float,
            from_lux: float = ChallengeSettings.screen_boost_lux) -> list[tuple[cs.SessionModel, dict[str, Any]]]:
    """The models as the daemon's plan would light them (``window.screen_luminance``, from each scene's
    lux: ``[challenge] screen_boost``, ``screen_boost_lux``): the face's response to the screen times
    the luminance planned (the simulated panel is linear in its light), its own light unchanged."""
    out = []
    for m, info in models:
        k = screen_luminance(lux_of(info["query"]), boost, from_lux)
        out.append((cs.SessionModel(m.query, m.energy_on, m.energy_off, m.base, m.response * k),
                    {**info, "screen_luminance": k}))
    return out


def lux_of(query: str) -> float:
    """The scene's lux (the last ``lux=`` of the query: appended keys override the scene's)."""
    vals = [float(kv.split("=", 1)[1]) for kv in query.split("&") if kv.startswith("lux=")]
    return vals[-1] if vals else float("nan")


def genuine_window(v: Variant, m: cs.SessionModel, frames: int, screen_lag: int, screen_jitter: float,
                   rng: np.random.Generator, blend: float = 0.0,
                   blend_rng: np.random.Generator | None = None) -> tuple[tuple[Step, ...], np.ndarray]:
    """One window of the variant on a modelled face, (steps, the face's light per frame): the steps
    land through the simulator's timing model (``challenge_stats._landings``), the face shows its own
    light (a stretch of the session's, played back and forth) plus its response to what the screen
    shows. ``blend``: the chance that the frame an edge lands in shows a blend
    (``challenge_stats.blend_frames``), drawn from ``blend_rng`` (so ``rng`` draws the same windows
    whatever ``blend``)."""
    steps = v.steps_for(rng.bytes(32), frames)
    x = v.colours(steps, frames)
    src = cs._landings(x, screen_lag, screen_jitter, rng)
    shown = np.where((src < 0)[:, None], 0.0, x[np.maximum(src, 0)])       # the app's own screen: dark
    if blend > 0:
        assert blend_rng is not None
        shown = cs.blend_frames(shown, src, blend, blend_rng)
    own = m.base[cs._ping_pong(np.arange(frames) + int(rng.integers(0, 2 * len(m.base))), len(m.base))]
    return steps, own + shown @ m.response.T


def genuine_trial(v: Variant, m: cs.SessionModel, frames: int, screen_lag: int, screen_jitter: float,
                  rng: np.random.Generator, rule: str = "verifier", blend: float = 0.0,
                  blend_rng: np.random.Generator | None = None) -> bool:
    """:func:`genuine_window`, verified under ``rule``."""
    steps, y = genuine_window(v, m, frames, screen_lag, screen_jitter, rng, blend, blend_rng)
    return verify_illumination(steps, y, levels=v.levels, **rule_options(rule)).passed


def genuine_rate(v: Variant, models: Sequence[cs.SessionModel], frames: int, screen_lag: int,
                 screen_jitter: float, trials: int, seed: int = 17, rule: str = "verifier",
                 blend: float = 0.0) -> float:
    rng = np.random.default_rng(seed)
    blend_rng = np.random.default_rng([seed, 1])
    return sum(genuine_trial(v, models[i % len(models)], frames, screen_lag, screen_jitter, rng, rule, blend, blend_rng)
               for i in range(trials)) / trials


LATE_CAPS = (5, 4, 3, 2, 1)


def late_cap_passes(steps: Sequence[Step], y: np.ndarray, caps: Sequence[int] = LATE_CAPS
                    ) -> tuple[dict[int, bool], bool]:
    """Whether the verifier (its defaults otherwise) passes a window with at most ``cap`` late blends,
    for each cap, on the fewest verifications: a window that passes without late blends
    (``late_blends=None``) passes at every cap (the late-blend retry runs only when no lag passed
    without it), and one refused at a cap is refused at every lower cap (the cap is the retry's only
    use of it: the lags it retries at a lower cap are a subset of those at a higher one, each retried
    alike); and whether the window needed late blends (refused without them).
    ``tests/bench/test_illum_bits.py`` checks this against verifying at every cap."""
    if verify_illumination(steps, y, late_blends=None).passed:
        return dict.fromkeys(caps, True), False
    out: dict[int, bool] = {}
    ok = True
    for cap in sorted(caps, reverse=True):
        ok = ok and verify_illumination(steps, y, late_blends=cap).passed
        out[cap] = ok
    return out, True


def late_cap_rows(models: Sequence[cs.SessionModel], trials: int, frames: int,
                  timing: Sequence[tuple[int, float]] = SCREEN_TIMING[2:], blends: Sequence[float] = (0.5, 1.0),
                  caps: Sequence[int] = LATE_CAPS, seed: int = 17) -> list[dict[str, Any]]:
    """Genuine pass per cap on late blends (``late_blends``), per screen timing and blend, on the same
    windows as :func:`genuine_rate` (its seeds: a cap of ``ILLUMINATION_LATE_BLENDS`` is the
    ``genuine`` part's ``verifier`` row), and how many windows needed the late-blend retry."""
    v = variant("today")
    rows: list[dict[str, Any]] = []
    for (lag, jit), blend in itertools.product(timing, blends):
        rng = np.random.default_rng(seed)
        blend_rng = np.random.default_rng([seed, 1])
        passed = dict.fromkeys(caps, 0)
        retried = 0
        for i in range(trials):
            steps, y = genuine_window(v, models[i % len(models)], frames, lag, jit, rng, blend, blend_rng)
            got, needed = late_cap_passes(steps, y, caps)
            retried += needed
            for cap in caps:
                passed[cap] += got[cap]
        for cap in caps:
            rows.append({"name": f"genuine pass, at most {cap} late blends, {frames} framesets, screen {lag} "
                                 f"frames / {jit:.0%} one more, blend {blend:g}, {len(models)} sessions",
                         "frames": frames, "late_blends": cap, "screen_lag": lag, "screen_jitter": jit,
                         "blend": blend, "value": 100 * passed[cap] / trials, "unit": "%",
                         "lower95_pct": 100 * cs.clopper_pearson_lower(passed[cap], trials),
                         "reference": GENUINE_TARGET_PCT, "trials": trials, "needed_late_blends": retried})
    return rows


# -- projector power levels (secondary) -----------------------------------------------------------------

POWER_LEVELS = (0.0, 0.5, 1.0)
POWER_RUNS = (2, 6)


def power_schedule(nonce: bytes, frames: int, levels: Sequence[float] = POWER_LEVELS,
                   runs: tuple[int, int] = POWER_RUNS) -> np.ndarray:
    """Runs of ``runs`` framesets, each at a power level unlike the run before (HMAC stream as the
    challenges', its own label)."""
    s = _Stream(nonce, b"projector-power")
    lo, hi = runs
    out: list[float] = []
    level = s.below(len(levels))
    while len(out) < frames:
        out.extend([levels[level]] * (lo + s.below(hi - lo + 1)))
        level = (level + 1 + s.below(len(levels) - 1)) % len(levels)
    return np.array(out[:frames])


def blind_power_stream(n: int, rng: np.random.Generator, strategy: str,
                       levels: Sequence[float] = POWER_LEVELS) -> np.ndarray:
    if strategy == "rhythm":
        return power_schedule(rng.bytes(32), n, levels)
    return cs.fixed_steps(n, sum(POWER_RUNS) // 2, levels, rng)


def blind_power_rate(frames: int, trials: int, strategy: str, seed: int = 13) -> float:
    rng = np.random.default_rng(seed)
    passed = 0
    for _ in range(trials):
        sched = power_schedule(rng.bytes(32), frames)
        passed += cs._clean_pass(blind_power_stream(frames, rng, strategy), sched, PROJECTOR_MAX_LAG)
    return passed / trials


def power_bound(frames: int, samples: int = 2000, seed: int = 3) -> float:
    """Per lag: the first level (1 of 3) times, per edge compared, its run length on one of two values
    (2/5) and its level (1 of the 2 others)."""
    rng = np.random.default_rng(seed)
    q = 2 / (POWER_RUNS[1] - POWER_RUNS[0] + 1) / (len(POWER_LEVELS) - 1)
    total = 0.0
    for _ in range(samples):
        sched = power_schedule(rng.bytes(32), frames)
        edges = np.nonzero(sched[1:] != sched[:-1])[0] + 1
        b = sum(q ** int(np.sum(edges + 1 < frames - lag)) / len(POWER_LEVELS)
                for lag in range(PROJECTOR_MAX_LAG + 1) if frames - lag >= MIN_COMPARED)
        total += min(b, 1.0)
    return total / samples


def power_energy(p: np.ndarray, on: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Dot energy (the IR image's high-pass standard deviation) at power share ``p``: the dots' part
    of the variance scales with the power squared, the sensor's noise stays."""
    return np.sqrt(off ** 2 + p ** 2 * np.maximum(on ** 2 - off ** 2, 0.0))


def verify_power(schedule: np.ndarray, energies: np.ndarray, levels: Sequence[float] = POWER_LEVELS,
                 max_lag: int = PROJECTOR_MAX_LAG) -> bool:
    """This bench's level decoder (not the agent's): the frames' squared energies placed between
    their own 10th and 90th percentiles (nothing of the schedule enters), each decoded to the nearest
    level's power squared; passed when, at some lag, every settled frame shows its level (one
    mismatch per ``FRAMES_PER_ALLOWED_MISMATCH``) and each pair of adjacent levels, grouped by the
    schedule, is ``PROJECTOR_MIN_SEPARATION`` pooled deviations apart."""
    e2 = np.asarray(energies, dtype=np.float64) ** 2
    n = min(len(e2), len(schedule))
    lo, hi = np.percentile(e2[:n], 10), np.percentile(e2[:n], 90)
    u = (e2[:n] - lo) / max(hi - lo, 1e-12)
    lv = np.asarray(levels, dtype=np.float64)
    decoded = lv[np.argmin(np.abs(u[:, None] - lv[None, :] ** 2), axis=1)]
    for lag in range(max_lag + 1):
        m = n - lag
        if m < MIN_COMPARED:
            break
        p, o, e = schedule[:m], decoded[lag:lag + m], e2[lag:lag + m]
        care = _settled(p)
        if np.sum((o != p) & care) > int(care.sum()) // FRAMES_PER_ALLOWED_MISMATCH:
            continue
        if all(_dprime(e[care & (p == b)], e[care & (p == a)]) >= PROJECTOR_MIN_SEPARATION
               for a, b in itertools.pairwise(lv)):
            return True
    return False


def power_genuine_rate(models: Sequence[cs.SessionModel], frames: int, latency: int, jitter: float,
                       trials: int, seed: int = 19) -> float:
    rng = np.random.default_rng(seed)
    passed = 0
    for i in range(trials):
        m = models[i % len(models)]
        sched = power_schedule(rng.bytes(32), frames)
        src = cs._landings(sched, latency, jitter, rng)
        shown = np.where(src < 0, 1.0, sched[np.maximum(src, 0)])         # full power before the window
        e = power_energy(shown, rng.choice(m.energy_on, frames), rng.choice(m.energy_off, frames))
        passed += verify_power(sched, e)
    return passed / trials


# -- rows ---------------------------------------------------------------------------------------------

def blind_rows(trials: int, variants: Sequence[Variant] = VARIANTS, windows: Sequence[int] = WINDOWS,
               agreement: int = 400, seed: int = 0, rules: Sequence[str] = ROW_RULES) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for v in variants:
        agree, n = blind_agreement(v, 16, agreement)
        rows.append({"name": f"illumination {v.name}: clean rule agrees with verify_illumination (16 framesets)",
                     "variant": v.name, "value": agree / n, "unit": f"of {n}"})
        for frames, rule in itertools.product(windows, rules):
            rates = {s: blind_rate(v, frames, trials, s, seed=11 + seed, rule=rule) for s in ("rhythm", "fixed")}
            worst = max(rates.values())
            upper = 100 * cs.clopper_pearson_upper(round(worst * trials), trials)
            rows.append({"name": f"blind pass ({rule}), illumination {v.name} (steps {v.steps[0]}-{v.steps[1]}, "
                                 f"{v.levels} levels), {frames} framesets ({frames * cs.FRAME_MS:.0f} ms)",
                         "variant": v.name, "frames": frames, "rule": rule, "value": 100 * worst, "unit": "%",
                         "rhythm_pct": 100 * rates["rhythm"], "fixed_pct": 100 * rates["fixed"],
                         "upper95_pct": upper, "reference": BLIND_TARGET_PCT, "ratio": upper / BLIND_TARGET_PCT,
                         "bound_pct": 100 * blind_bound(v, frames), "trials": trials})
    return rows


def genuine_rows(models: Sequence[cs.SessionModel], trials: int, variants: Sequence[Variant] = VARIANTS,
                 windows: Sequence[int] = WINDOWS, timing: Sequence[tuple[int, float]] = SCREEN_TIMING,
                 rules: Sequence[str] = ("verifier", "fit3"), blends: Sequence[float] = (0.0,)) -> list[dict[str, Any]]:
    """Per variant, window, screen timing, blend and rule, over every model (the sessions take turns)."""
    rows: list[dict[str, Any]] = []
    if not models:
        return rows
    for v, frames, (lag, jit), blend, rule in itertools.product(variants, windows, timing, blends, rules):
        g = genuine_rate(v, models, frames, lag, jit, trials, rule=rule, blend=blend)
        lower = 100 * cs.clopper_pearson_lower(round(g * trials), trials)
        rows.append({"name": f"genuine pass ({rule}), illumination {v.name}, {frames} framesets, screen {lag} "
                             f"frames / {jit:.0%} one more, blend {blend:g}, {len(models)} sessions",
                     "variant": v.name, "frames": frames, "rule": rule, "screen_lag": lag, "screen_jitter": jit,
                     "blend": blend,
                     "value": 100 * g, "unit": "%", "lower95_pct": lower, "reference": GENUINE_TARGET_PCT,
                     "ratio": lower / GENUINE_TARGET_PCT, "trials": trials, "sessions": len(models)})
    return rows


def lux_rows(models: Sequence[tuple[cs.SessionModel, dict[str, Any]]], trials: int,
             variants: Sequence[Variant] = VARIANTS, windows: Sequence[int] = (16,),
             timing: tuple[int, float] = SCREEN_TIMING[-1], rule: str = "verifier",
             blend: float = 0.0) -> list[dict[str, Any]]:
    """Per scene light (the models grouped by their lux), at one screen timing: where the half
    level stops being decodable (the colour noise in dim light, the screen drowned in bright)."""
    by_lux: dict[float, list[cs.SessionModel]] = {}
    sep: dict[float, list[float]] = {}
    for m, info in models:
        by_lux.setdefault(lux_of(info["query"]), []).append(m)
        sep.setdefault(lux_of(info["query"]), []).append(min(info.get("gain_over_noise") or [float("nan")]))
    rows: list[dict[str, Any]] = []
    lag, jit = timing
    for lux, v, frames in itertools.product(sorted(by_lux), variants, windows):
        g = genuine_rate(v, by_lux[lux], frames, lag, jit, trials, rule=rule, blend=blend)
        rows.append({"name": f"genuine pass ({rule}), illumination {v.name}, {frames} framesets, screen {lag} "
                             f"/ {jit:.0%}, blend {blend:g}, scenes at {lux:.0f} lux ({len(by_lux[lux])})",
                     "blend": blend,
                     "variant": v.name, "frames": frames, "lux": lux, "rule": rule, "screen_lag": lag,
                     "screen_jitter": jit, "value": 100 * g, "unit": "%", "trials": trials,
                     "lower95_pct": 100 * cs.clopper_pearson_lower(round(g * trials), trials),
                     "sessions": len(by_lux[lux]), "weakest_gain_over_noise": sorted(sep[lux])})
    return rows


def power_rows(models: Sequence[tuple[cs.SessionModel, dict[str, Any]]], trials: int, genuine_trials: int,
               windows: Sequence[int] = WINDOWS) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    ms = [m for m, _ in models]
    for frames in windows:
        rates = {s: blind_power_rate(frames, trials, s) for s in ("rhythm", "fixed")}
        worst = max(rates.values())
        rows.append({"name": f"blind pass, projector power levels (off/half/full, runs 2-6), {frames} framesets "
                             "(against replay only: an injector sees the commands)",
                     "frames": frames, "value": 100 * worst, "unit": "%", "rhythm_pct": 100 * rates["rhythm"],
                     "fixed_pct": 100 * rates["fixed"], "trials": trials,
                     "upper95_pct": 100 * cs.clopper_pearson_upper(round(worst * trials), trials),
                     "bound_pct": 100 * power_bound(frames)})
        if not ms:
            continue
        for latency, jitter in ((1, 0.2), (2, 0.0), (2, 0.3)):
            g = power_genuine_rate(ms, frames, latency, jitter, genuine_trials)
            lower = 100 * cs.clopper_pearson_lower(round(g * genuine_trials), genuine_trials)
            rows.append({"name": f"genuine pass, projector power levels, {frames} framesets, emitter {latency} "
                                 f"frames / {jitter:.0%} one more", "frames": frames, "value": 100 * g, "unit": "%",
                         "lower95_pct": lower, "reference": GENUINE_TARGET_PCT, "ratio": lower / GENUINE_TARGET_PCT,
                         "trials": genuine_trials})
    return rows


def render_models(n: int, seed: int, extra: str = "") -> list[tuple[cs.SessionModel, dict[str, Any]]]:
    from agent.quality import QualityGate
    gate = QualityGate()
    out = []
    for i in range(n):
        q = cs.scene(i, seed=seed) + extra
        r, ch = cs.run_session(q, 32, gate)
        m, info = session_model(q, r, ch)
        if m is not None:
            out.append((m, info))
    return out


def _main(argv: list[str]) -> int:
    t0 = time.time()

    def out(row: dict[str, Any]) -> None:
        print(json.dumps({**row, "elapsed_s": round(time.time() - t0, 1)}), flush=True)
    part = argv[0] if argv else "blind"
    if part == "models":
        path, n, seed = argv[1], int(argv[2]), int(argv[3])
        extras = [argv[4]] if len(argv) > 4 and argv[4] != "sweep" else [""]
        if len(argv) > 4 and argv[4] == "sweep":
            extras = [f"&lux={lux}" for lux in LUX_SWEEP]
        from agent.quality import QualityGate
        gate = QualityGate()
        saved = []
        for i, extra in itertools.product(range(n), extras):
            q = cs.scene(i, seed=seed) + extra
            r, ch = cs.run_session(q, 32, gate)
            m, info = session_model(q, r, ch)
            out({**info, "modelled": m is not None})
            if m is not None:
                saved.append(model_to_json(m, info))
        with open(path, "w") as fh:
            json.dump(saved, fh)
        return 0
    if part == "blind":
        n = int(argv[1]) if len(argv) > 1 else 20000
        names = argv[2].split(",") if len(argv) > 2 and argv[2] != "all" else [v.name for v in VARIANTS]
        windows = tuple(int(w) for w in argv[3].split(",")) if len(argv) > 3 else WINDOWS
        for row in blind_rows(n, [variant(x) for x in names], windows,
                              rules=argv[4].split(",") if len(argv) > 4 else ROW_RULES):
            out(row)
        return 0
    if part == "genuine":
        n = int(argv[1])
        rules: Sequence[str] = ("verifier", "fit3")
        chosen: Sequence[str] = [v.name for v in VARIANTS]
        every: tuple[int, ...] = (16,)
        hardest: tuple[int, ...] = (12, 20)
        blends: tuple[float, ...] = (0.0,)
        boost = 1.0
        while argv[2].split("=", 1)[0] in ("rules", "variants", "windows", "blends", "boost"):
            key, val = argv[2].split("=", 1)
            if key == "boost":
                boost = float(val)
            elif key == "rules":
                rules = val.split(",")
            elif key == "blends":
                blends = tuple(float(b) for b in val.split(","))
            elif key == "variants":
                chosen = val.split(",")
            else:
                every, hardest = tuple(int(w) for w in val.split(",")), ()
            argv = argv[:2] + argv[3:]
        models = boosted(load_models(argv[2:]), boost)
        out({"name": "genuine models", "value": len(models), "queries": [i["query"] for _, i in models],
             "screen_luminance": [i["screen_luminance"] for _, i in models]})
        ms = [m for m, _ in models]
        vs = [variant(x) for x in chosen]
        # 16 framesets (or windows=...) at every screen timing; 12 and 20 at the hardest.
        for row in [*genuine_rows(ms, n, vs, windows=every, rules=rules, blends=blends),
                    *genuine_rows(ms, n, vs, windows=hardest, timing=(SCREEN_TIMING[-1],), rules=rules,
                                  blends=blends)]:
            out(row)
        return 0
    if part == "caps":
        n, frames = int(argv[1]), int(argv[2])
        for row in late_cap_rows([m for m, _ in load_models(argv[3:])], n, frames):
            out(row)
        return 0
    if part == "lux":
        n = int(argv[1])
        for rule in ("verifier", "fit3"):
            for row in lux_rows(load_models(argv[2:]), n, rule=rule):
                out(row)
        return 0
    if part == "power":
        n = int(argv[1])
        for row in power_rows(load_models(argv[2:]), n, max(n // 5, 200)):
            out(row)
        return 0
    raise SystemExit(f"unknown part {part!r}")


if __name__ == "__main__":
    import sys
    raise SystemExit(_main(sys.argv[1:]))
