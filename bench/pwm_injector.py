"""A PWM dimmer's pulses on the projector challenge, and injectors that add pulses on purpose (issue 14,
docs/liveness.md, *A PWM dimmer's pulses on the unlit frames*): the unlit-light rule
(``agent.liveness.challenge._projector_unlit_light``, through ``explain_flicker``) against synthetic
windows built as the judge reads them: the dot energy per frame, the registered IR in the face box's
4x4 cells, the frames the camera reports lit.

    python -m bench.pwm_injector N [FRAMES]

The light: a PWM dimmer of 100-400 Hz, duty 0.25-0.85, seen by an IR exposure of 0.1-0.9 of its period
(the thirteenth's projector refusals: 0.17-0.9), so a frame's ambient is the share of its exposure the
light was on over the duty (0 up to 1/duty; mean 1), the phase walking frame to frame. The face's
ambient infrared 5-40 DN (its mean), the projector's light on it 20-60 DN, each cell its own albedo
(0.7-1.3) and noise 0.5 DN; the dot energy on an unlit frame the skin's texture in the ambient
(0.05-0.3 x the ambient level), on a lit frame that and the dots (1.5-10) added in quadrature; noise
0.03. The camera's lag 0-1 frame. Per trial a fresh nonce and one of these streams:

* ``genuine+pulses`` — the camera obeys the schedule under the pulses (what the rule is for);
* ``genuine+steady`` — the same, the light held at its mean (nothing may change);
* ``replay+pulses`` — a camera's genuine pulsed window for ANOTHER nonce (schedule and metadata its own);
* ``blind+pulses`` — a blind stream (``challenge_stats.blind_projector_stream``, the bench's blind
  runs) lit under the pulses, the metadata its own;
* ``blind+ir_follows`` — the injector's infrared level follows its own energy on every frame, all
  frames reported unlit (the fit then takes any energy out of any frame it likes);
* ``blind+big_pulses`` — the blind stream with its unlit frames lifted at random up to its lit level,
  the infrared following: the injector's best effort at looking like the thirteenth's refusals.

Printed per stream: windows passed before and after the rule (the rule never passes: asserted),
contradictions (``attack``) before and after, not measurable, relabelled ``PROJECTOR_UNLIT_LIGHT``, with the
Clopper-Pearson upper 95 % of passes and of relabels. Nothing of a face is involved.
"""

from __future__ import annotations

import sys

import numpy as np

from agent.liveness.challenge import (
    PROJECTOR_UNLIT_LIGHT_DETAIL,
    Challenge,
    Kind,
    explain_flicker,
    verify,
)
from bench.challenge_stats import blind_projector_stream, clopper_pearson_upper

STREAMS = ("genuine+pulses", "genuine+steady", "replay+pulses", "blind+pulses", "blind+ir_follows",
           "blind+big_pulses")
FPS = 30.0
CELLS = 16


def pwm_factors(frames: int, rng: np.random.Generator, steady: bool = False) -> np.ndarray:
    """Each frame's ambient over its mean: the share of an exposure of 0.1-0.9 dimmer periods that the
    light (100-400 Hz, duty 0.25-0.85) was on, over the duty."""
    if steady:
        return np.ones(frames)
    hz, duty, periods = rng.uniform(100, 400), rng.uniform(0.25, 0.85), rng.uniform(0.1, 0.9)
    t0 = rng.uniform(0, 1 / hz)
    grid = np.linspace(0.0, periods / hz, 64)
    t = t0 + np.arange(frames)[:, None] / FPS + grid[None]
    return np.mean(((t * hz) % 1.0) < duty, axis=1) / duty


def camera_window(lit: np.ndarray, rng: np.random.Generator, factors: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(energies, IR cells (n, 16), lit) of a camera whose frames are lit as ``lit``, under ``factors``."""
    n = len(lit)
    amb = rng.uniform(5, 40) * factors
    proj, dots, tex = rng.uniform(20, 60), rng.uniform(1.5, 10), rng.uniform(0.05, 0.3)
    albedo = rng.uniform(0.7, 1.3, CELLS)
    cells = albedo[None] * (amb[:, None] + proj * lit[:, None]) + rng.normal(0, 0.5, (n, CELLS))
    skin = tex * amb
    energies = np.where(lit, np.sqrt(dots ** 2 + skin ** 2), skin) + rng.normal(0, 0.03, n)
    return np.abs(energies), np.maximum(cells, 0.0), lit.astype(bool)


def _shifted(schedule: tuple[bool, ...], rng: np.random.Generator) -> np.ndarray:
    lag = int(rng.integers(0, 2))
    s = np.asarray(schedule, dtype=bool)
    return np.r_[np.full(lag, s[0]), s[:len(s) - lag]] if lag else s


def window(kind: str, ch: Challenge, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = ch.frames
    f = pwm_factors(n, rng, steady=kind == "genuine+steady")
    if kind in ("genuine+pulses", "genuine+steady"):
        return camera_window(_shifted(ch.schedule, rng), rng, f)
    if kind == "replay+pulses":
        other = Challenge.from_nonce(rng.bytes(32), n, (Kind.PROJECTOR,))
        return camera_window(_shifted(other.schedule, rng), rng, f)
    lit = blind_projector_stream(n, rng, "rhythm").astype(bool)
    e, cells, lit = camera_window(lit, rng, f)
    if kind == "blind+ir_follows":
        level = e / max(float(np.max(e)), 1e-6) * 40.0
        cells = level[:, None] * rng.uniform(0.7, 1.3, CELLS)[None]
        return e, cells, np.zeros(n, bool)
    if kind == "blind+big_pulses":
        top = float(np.median(e[lit])) if np.any(lit) else 5.0
        lift = rng.uniform(0, 1, n) * top * (rng.uniform(0, 1, n) < 0.5)
        e = np.where(lit, e, e + lift)
        cells = cells + (lift / max(top, 1e-6) * 30.0)[:, None] * (~lit)[:, None]
        return e, cells, lit
    return e, cells, lit                                                  # blind+pulses


def judge(ch: Challenge, energies: np.ndarray, ir: np.ndarray, lit: np.ndarray):
    before = verify(ch, energies, None)
    cells = np.full((len(ir), CELLS, 3), np.nan)                          # the projector only
    return before, explain_flicker(ch, before, cells, ir, lit, energies)


def tally(c: dict[str, int], kind: str, before, after):
    """Count a window's projector result before and after the relabels into ``c`` (passed, attack_before,
    attack, unmeasurable); asserts the relabels never changed a pass. Returns the result after."""
    b, a = before.get(Kind.PROJECTOR), after.get(Kind.PROJECTOR)
    assert b is not None and a is not None and a.passed == b.passed, (kind, b, a)    # never a pass
    c["passed"] += a.passed
    c["attack_before"] += not b.passed and b.measurable
    c["attack"] += not a.passed and a.measurable
    c["unmeasurable"] += not a.passed and not a.measurable
    return a


def run(trials: int, frames: int = 32, seed: int = 25) -> dict[str, dict[str, int]]:
    rng = np.random.default_rng(seed)
    out = {}
    for kind in STREAMS:
        c = dict.fromkeys(("passed", "attack_before", "attack", "unmeasurable", "relabelled"), 0)
        for _ in range(trials):
            ch = Challenge.from_nonce(rng.bytes(32), frames, (Kind.PROJECTOR,))
            before, after = judge(ch, *window(kind, ch, rng))
            a = tally(c, kind, before, after)
            c["relabelled"] += a.detail == PROJECTOR_UNLIT_LIGHT_DETAIL
        out[kind] = c
    return out


def _main(argv: list[str]) -> int:
    trials = int(argv[0]) if argv else 200
    frames = int(argv[1]) if len(argv) > 1 else 32
    for kind, c in run(trials, frames).items():
        up, ur = clopper_pearson_upper(c["passed"], trials), clopper_pearson_upper(c["relabelled"], trials)
        print(f"{kind:18s} passed {c['passed']}/{trials} (upper 95 % {up:.4f}); attack {c['attack_before']} -> "
              f"{c['attack']}; not measurable {c['unmeasurable']}; relabelled unlit-light {c['relabelled']} "
              f"(upper 95 % {ur:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
