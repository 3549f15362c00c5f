"""Two room colours stepping in turns against the illumination verifier's two-colour relabel (issue 14,
docs/liveness.md, *A room light stepping between two colours*): an injector that obeys the projector, does not see
the screen, and adds to its own stream a "room light" that steps between two colours of its choice, as the
eighteenth family's string lights do under their controller's sequential and chasing patterns, hoping its
contradiction is relabelled not measurable (``COLOURS_DETAIL``, ``challenge._room_colours``).

    python -m bench.colours_injector N [FRAMES] [GAIN_OVER_NOISE]

Per trial a fresh nonce's sequence (``illumination_steps``) and these streams, each verified by
``verify_illumination()`` (today's verifier) and with ``room_colours=False`` (the verifier before it), in the same
process:

* ``blind+colours`` — another nonce's sequence as a clean response (``bench.illum_bits.blind_face``) plus a light
  stepping between two colours (:func:`turns`: steps of 2-30 frames, each frame's level 0.8-1.2 of its step's,
  0.5-3 times the stream's gain): per trial the string lights' two colours and every pair of ``COLOURS`` (the
  screen's primaries, secondaries and white, and the light bar's blue); the window counts as relabelled when ANY
  pair is (an upper bound: the injector must fix its choice without the nonce);
* ``steady+colours`` — no response to any screen (a still face) under the same lights;
* ``genuine+colours`` — the nonce's own sequence under the string lights' two colours (what the rule is for).

Printed per stream: windows passed today and before (they must be equal: the rule never passes), refused as a
contradiction (``attack``) today and before, relabelled by the rule, and the Clopper-Pearson upper 95 % bound of
the relabelled share.
"""

from __future__ import annotations

import sys

import numpy as np

from agent.liveness.challenge import COLOURS_DETAIL, illumination_steps, verify_illumination
from bench.challenge_stats import clopper_pearson_upper
from bench.flash_injector import COLOURS, PAIRS
from bench.illum_bits import BLIND_GAIN, blind_face
from bench.shadow_injector import colours, command_line
from drivers.sim.holiday import CHANNEL_BGR

STREAMS = ("blind+colours", "steady+colours", "genuine+colours")
SKIN = np.array([1.0, 0.72, 0.6])          # a face's reflectance per channel, relative to red (assumed)
# The string lights' two channels on a face (red and blue bulbs; green and amber ones), unit length.
STRING = tuple(c[::-1].astype(np.float64) * SKIN / np.linalg.norm(c[::-1] * SKIN) for c in CHANNEL_BGR)


def turns(n: int, rng: np.random.Generator, gain: float, pair: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(n, 3) a light whose two colours take turns: steps of 2-30 frames (the controller's chasing 0.08-0.25 s and
    sequential 0.4-1 s at 30 fps) from a random phase, each colour 0.5-3 times ``gain`` (drawn once a window), each
    frame's level 0.8-1.2 of it (the mains' conduction share of an exposure)."""
    step = float(rng.uniform(2.0, 30.0))
    k = np.arange(n) + rng.uniform(0.0, 2.0 * step)
    first = (np.floor(k / step) % 2 == 0).astype(np.float64)
    level = rng.uniform(0.8, 1.2, (n, 2)) * rng.uniform(0.5, 3.0, 2) * gain
    return (first * level[:, 0])[:, None] * pair[0] + ((1.0 - first) * level[:, 1])[:, None] * pair[1]


def run(trials: int, frames: int = 32, gain_over_noise: float = 20.0, seed: int = 30) -> dict[str, dict[str, int]]:
    noise = BLIND_GAIN / gain_over_noise
    rng = np.random.default_rng(seed)
    out = {k: {"passed_new": 0, "passed_old": 0, "attack_new": 0, "attack_old": 0, "colours": 0} for k in STREAMS}
    tries_blind = [STRING] + [(COLOURS[i], COLOURS[j]) for i, j in PAIRS]
    for _ in range(trials):
        steps = illumination_steps(rng.bytes(32), frames)
        other = colours(illumination_steps(rng.bytes(32), frames), frames)
        for kind in STREAMS:
            if kind.startswith("genuine"):
                tries, x = [STRING], colours(steps, frames)
            else:
                tries, x = tries_blind, (np.zeros((frames, 3)) if kind.startswith("steady") else other)
            face = blind_face(x, rng, noise)
            flags = {"passed_new": False, "passed_old": False, "attack_new": False, "attack_old": False,
                     "colours": False}
            for pair in tries:
                y = face + turns(frames, rng, BLIND_GAIN, pair)
                for tag, r in (("new", verify_illumination(steps, y)),
                               ("old", verify_illumination(steps, y, room_colours=False))):
                    flags["passed_" + tag] |= r.passed
                    flags["attack_" + tag] |= (not r.passed) and r.measurable
                    if tag == "new":
                        flags["colours"] |= r.detail == COLOURS_DETAIL
            for key, hit in flags.items():
                out[kind][key] += hit
    return out


def _report(trials: int, frames: int, gn: float) -> None:
    for kind, c in run(trials, frames, gn).items():
        print(f"{kind:15s} {frames} fs gain/noise {gn:g}: passed {c['passed_new']}/{trials} (before "
              f"{c['passed_old']}), some try attack {c['attack_new']} (before {c['attack_old']}), relabelled by "
              f"the two-colour rule {c['colours']}, upper 95 % {clopper_pearson_upper(c['colours'], trials):.4f}",
              flush=True)


def _main(argv: list[str]) -> int:
    return command_line(argv, __doc__, _report)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
