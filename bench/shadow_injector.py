"""An injector that sweeps a passer-by's shadow over its face on purpose (issue 14, docs/liveness.md,
*A shadow passing*): it obeys the projector, does not see the screen, and wants the illumination
verifier's tolerance for an uncommanded change of the room's light.

    python -m bench.shadow_injector N [FRAMES] [GAIN_OVER_NOISE]

Per trial a fresh nonce's sequence (``illumination_steps``) and one of these streams, each verified
with the room-light rule (``verify_illumination()``, today's verifier) and without it
(``ambient=False``, the verifier before it):

* ``blind`` — another nonce's sequence as a clean response (``bench.illum_bits.blind_face``: a face's
  own light plus 2 % per channel, noise chosen by the injector);
* ``blind+shadow`` — the same with a synthetic shadow swept over the face's own light: a smooth dip
  of 30-75 % lasting 6-30 frames (0.2-1 s at 30 fps) at a random time, all three channels together,
  as ``drivers/sim/street.py``'s passers-by;
* ``steady+shadow`` — no response to any screen (a still face) under the same shadow;
* ``genuine+shadow`` — the nonce's own sequence (what a camera that sees the screen shows) under the
  shadow: the case the rule is for (a relay that sees the screen is out of scope, as before);
* ``blind+pulse``, ``steady+pulse``, ``genuine+pulse`` — the same three under a lamp pulsing behind a
  ceiling fan's blades instead of a shadow (:func:`pulse`: the fifteenth family's fan, its blades
  crossing the lamp 7.5-29.2 times a second against 30 fps): what the rule's pulse
  (``PULSED_DETAIL``, docs/liveness.md, *A ceiling fan's pulses*) is for, and what an injector adding
  such a pulse to its own stream buys.
* ``blind+beacon``, ``steady+beacon``, ``genuine+beacon`` (review28) — the same three with an amber
  beacon's one-frame flashes added (:func:`beacon`: 1-3 flashes along a colour with no blue, screen27's
  ``_light_without_a_channel`` and ``_flashes``): what an injector that adds them buys. Drawn from a
  generator of their own (``seed + 1``), so the seven streams above keep their counts.

Printed per stream: windows passed with and without the rule (they must be equal: the rule never
passes a window), contradicted (``attack``) and not measurable with and without it, how many the
rule relabelled (a shadow's ``AMBIENT_DETAIL``, a pulse's ``PULSED_DETAIL`` and two room colours'
``COLOURS_DETAIL`` together, the pulse's apart) and the Clopper-Pearson upper 95 % bound of that share.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

from agent.liveness.challenge import (
    AMBIENT_DETAIL,
    COLOURS_DETAIL,
    PULSED_DETAIL,
    Challenge,
    Kind,
    illumination_steps,
    verify_illumination,
)
from bench.challenge_stats import clopper_pearson_upper
from bench.illum_bits import BLIND_GAIN, blind_face

STREAMS = ("blind", "blind+shadow", "steady+shadow", "genuine+shadow", "blind+pulse", "steady+pulse",
           "genuine+pulse", "blind+beacon", "steady+beacon", "genuine+beacon")


def shadow(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) the share of the room's light left on the face: 1, with one smooth dip (a raised cosine)
    of depth 0.3-0.75 lasting 6-30 frames, centred anywhere in the window."""
    depth = rng.uniform(0.3, 0.75)
    width = rng.uniform(6, 30)
    centre = rng.uniform(0, n)
    t = np.arange(n)
    u = np.clip((t - centre) / width * 2, -1, 1)
    return 1.0 - depth * (0.5 + 0.5 * np.cos(np.pi * u))


def pulse(n: int, rng: np.random.Generator, fps: float = 30.0) -> np.ndarray:
    """(n,) the share of the room's light left on the face under a lamp behind a turning ceiling fan:
    the fifteenth family's own fan (``drivers.sim.fan.CeilingFan.draw``: 3-5 blades at 150-350 rpm, the
    lamp 0.25-0.60 of the face's light, the blade's shadow over the lamp's disc in closed form) at the
    face's centre, each frame integrating it over an exposure of 2-20 ms (assumed: the colour imager's
    under 150-800 lux), frames at ``fps``."""
    from drivers.sim.fan import CeilingFan

    fan = CeilingFan.draw(rng, float(rng.uniform(0.35, 0.55)))
    exposure = float(rng.uniform(0.002, 0.020))
    return np.array([fan.factor(np.zeros(1), k / fps, exposure)[0] for k in range(n)], dtype=np.float64)


def beacon(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) an amber beacon's light added to the face: 1-3 flashes of one frame each at random frames,
    along (1, 0.32-0.44, 0) (the sixteenth family's beacon on the face, ``a`` = (0.91-0.95, 0.30-0.41,
    0.00): red and green, no blue; docs/liveness.md, screen27), each 0.5-3 times ``BLIND_GAIN`` along it
    (a flash that can flip a channel's decoding, and ones that cannot)."""
    out = np.zeros((n, 3))
    colour = np.array([1.0, float(rng.uniform(0.32, 0.44)), 0.0])
    colour /= np.linalg.norm(colour)
    for k in rng.choice(n, size=int(rng.integers(1, 4)), replace=False):
        out[k] += float(rng.uniform(0.5, 3.0)) * BLIND_GAIN * colour
    return out


def colours(steps, n: int) -> np.ndarray:
    return Challenge(b"", n, frozenset({Kind.ILLUMINATION}), (), tuple(steps)).colours()


def stream(kind: str, steps, n: int, rng: np.random.Generator, noise: float) -> np.ndarray:
    """(n, 3) the face's colour per frame an injector (or, ``genuine+shadow``, a camera) delivers."""
    base = np.array([0.2, 0.15, 0.1])
    if kind.startswith("genuine"):
        x = colours(steps, n)
    elif kind.startswith("steady"):
        x = np.zeros((n, 3))
    else:
        x = colours(illumination_steps(rng.bytes(32), n), n)
    y = blind_face(x, rng, noise)
    if kind.endswith("+shadow"):
        y = y + base * (shadow(n, rng) - 1.0)[:, None]       # the room's light dims, the screen's does not
    elif kind.endswith("+pulse"):
        y = y + base * (pulse(n, rng) - 1.0)[:, None]
    elif kind.endswith("+beacon"):
        y = y + beacon(n, rng)
    return y


def run(trials: int, frames: int = 32, gain_over_noise: float = 20.0, seed: int = 29) -> dict[str, dict[str, int]]:
    noise = BLIND_GAIN / gain_over_noise
    rng = np.random.default_rng(seed)
    own = np.random.default_rng(seed + 1)         # the beacon's streams (review28): the others' draws unchanged
    out = {k: {"passed_new": 0, "passed_old": 0, "attack_new": 0, "attack_old": 0, "unmeasurable_new": 0,
               "unmeasurable_old": 0, "ambient": 0, "pulsed": 0} for k in STREAMS}
    for _ in range(trials):
        steps = illumination_steps(rng.bytes(32), frames)
        for kind in STREAMS:
            y = stream(kind, steps, frames, own if kind.endswith("+beacon") else rng, noise)
            new, old = verify_illumination(steps, y), verify_illumination(steps, y, ambient=False)
            c = out[kind]
            for tag, r in (("new", new), ("old", old)):
                c["passed_" + tag] += r.passed
                c["attack_" + tag] += (not r.passed) and r.measurable
                c["unmeasurable_" + tag] += (not r.passed) and not r.measurable
            c["ambient"] += new.detail in (AMBIENT_DETAIL, PULSED_DETAIL, COLOURS_DETAIL)
            c["pulsed"] += new.detail == PULSED_DETAIL
    return out


def arguments(argv: list[str]) -> tuple[int, int, float] | None:
    """``TRIALS [FRAMES [GAIN/NOISE]]`` of this bench and ``bench.shadow_adaptive``; None if malformed."""
    if not 1 <= len(argv) <= 3:
        return None
    return int(argv[0]), int(argv[1]) if len(argv) > 1 else 32, float(argv[2]) if len(argv) > 2 else 20.0


def command_line(argv: list[str], doc: str | None, report: Callable[[int, int, float], None]) -> int:
    """The command line of this bench and of ``bench.shadow_adaptive``, ``bench.flicker_injector`` and
    ``bench.colours_injector``: ``report(TRIALS, FRAMES, GAIN/NOISE)`` (:func:`arguments`) and 0, or the usage
    ``doc`` printed and 2 when the arguments are malformed."""
    if (args := arguments(argv)) is None:
        print(doc)
        return 2
    report(*args)
    return 0


def _report(trials: int, frames: int, gn: float) -> None:
    for kind, c in run(trials, frames, gn).items():
        print(f"{kind:15s} {frames} fs gain/noise {gn:g}: passed {c['passed_new']}/{trials} "
              f"(before {c['passed_old']}), "
              f"attack {c['attack_new']} (before {c['attack_old']}), not measurable {c['unmeasurable_new']} "
              f"(before {c['unmeasurable_old']}; by the room-light rule {c['ambient']}, as a pulse "
              f"{c['pulsed']}, upper 95 % "
              f"{clopper_pearson_upper(c['ambient'], trials):.4f})")


def _main(argv: list[str]) -> int:
    return command_line(argv, __doc__, _report)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
