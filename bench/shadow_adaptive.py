"""Review 22 (issue 14): shadow injectors that choose the shadow's colour and timing, blind to the screen,
against the illumination verifier's room-light rule (``verify_illumination(ambient=True)``,
docs/liveness.md, *A shadow passing*).

    python -m bench.shadow_adaptive N [FRAMES] [GAIN_OVER_NOISE]

``bench.shadow_injector`` sweeps a passer-by's shadow of the face's own colour at a random time. An
injector on the camera link can do better on two counts: the colour (along the stream's own gain,
every channel alike, so that across it the screen's black and white fall together and one of the
verifier's three dimensions carries nothing) and the timing (it sees the projector's commands, so it
knows the window's frames; the screen's steps are drawn from another stream of the nonce,
``illumination_steps``, so they tell it nothing of the colours). Per trial: a fresh nonce, a blind
response to another nonce's sequence (``bench.illum_bits.blind_face``'s face and 2 % gain), under

* ``gain_mid`` — a dip along the gain (all channels equal) over the window's middle, 6-16 frames wide;
* ``gain_ramp`` — a ramp along the gain over the whole window (every within-step change along it);
* ``face_arch`` — a slow arch in the face's own colour over the whole window;
* ``gain_twice`` — two dips along the gain (sin^2 over the window);
* ``gain_waves`` — three dips along the gain (sin^2 of 3 pi t / frames, at a random phase), 2-6 times
  the gain deep: the one that passes (review 22: 0.14 % of blind windows at 32 framesets and
  gain/noise 20, the same streams without it 0; the rule plays no part, passes are equal with
  ``ambient=False``);

the first four 0.5-3 times the gain deep. Printed: windows relabelled not measurable by the rule
(``AMBIENT_DETAIL``), passed with and without it, and refused as a contradiction. Relabelling buys
the injector nothing in any case (every refused window is a lockout strike, ``agent/session/capture.py``,
and the server's charge is taken at the nonce's issue, ``hil/ingest/limits.py``): the question is only
whether the rule's conditions can be met without seeing the screen."""

from __future__ import annotations

import sys

import numpy as np

from agent.liveness.challenge import AMBIENT_DETAIL, illumination_steps, verify_illumination
from bench.illum_bits import BLIND_GAIN
from bench.shadow_injector import colours, command_line

STRATEGIES = ("gain_mid", "gain_ramp", "face_arch", "gain_twice", "gain_waves")
FACE = np.array([0.2, 0.15, 0.1])


def shade(strategy: str, frames: int, rng: np.random.Generator) -> np.ndarray:
    """(frames, 3) the light the injector takes off its stream (the shadow)."""
    t = np.arange(frames)
    if strategy == "gain_mid":
        s = np.clip((t - frames / 2) / rng.uniform(6, 16), -1, 1)
        profile = 0.5 + 0.5 * np.cos(np.pi * s)
    elif strategy == "gain_ramp":
        profile = t / frames
    elif strategy == "face_arch":
        profile = np.sin(np.pi * t / frames)
    elif strategy == "gain_twice":
        profile = np.sin(2 * np.pi * t / frames) ** 2
    else:
        profile = np.sin(3 * np.pi * t / frames + rng.uniform(0, np.pi)) ** 2
    colour = FACE / np.linalg.norm(FACE) if strategy == "face_arch" else np.ones(3)
    depth = rng.uniform(2.0, 6.0) if strategy == "gain_waves" else rng.uniform(0.5, 3.0)
    return depth * BLIND_GAIN * profile[:, None] * colour[None, :]


def run(trials: int, frames: int = 32, gain_over_noise: float = 20.0, seed: int = 5) -> dict[str, dict[str, int]]:
    rng = np.random.default_rng(seed)
    noise = BLIND_GAIN / gain_over_noise
    out = {}
    for strategy in STRATEGIES:
        c = {"relabelled": 0, "passed": 0, "passed_before": 0, "attack": 0}
        for _ in range(trials):
            steps = illumination_steps(rng.bytes(32), frames)
            guess = colours(illumination_steps(rng.bytes(32), frames), frames)
            y = FACE + BLIND_GAIN * guess + rng.normal(0, noise, guess.shape) - shade(strategy, frames, rng)
            new, old = verify_illumination(steps, y), verify_illumination(steps, y, ambient=False)
            c["relabelled"] += new.detail == AMBIENT_DETAIL
            c["passed"] += new.passed
            c["passed_before"] += old.passed
            c["attack"] += (not new.passed) and new.measurable
        out[strategy] = c
    return out


def _report(trials: int, frames: int, gn: float) -> None:
    for strategy, c in run(trials, frames, gn).items():
        print(f"{strategy:10s} {frames} fs gain/noise {gn:g}: relabelled {c['relabelled']}/{trials}, passed "
              f"{c['passed']} (without the rule {c['passed_before']}), attack {c['attack']}")


def _main(argv: list[str]) -> int:
    return command_line(argv, __doc__, _report)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
