"""An injector that adds a "room light" of the colour it chooses to its own stream (issue 14, docs/liveness.md,
*The screen read across the room's light*): it obeys the projector, does not see the screen, and wants the
illumination verifier's plane path (``ILLUMINATION_ROOM_PLANE``), which reads the face's colour across the
room light's one colour direction ``a`` and so ignores whatever moves along it. The injector controls ``a``.

    python -m bench.room_plane_injector N [FRAMES] [GAIN_OVER_NOISE]

Per trial a fresh nonce's sequence (``illumination_steps``) and these streams, each verified by
``verify_illumination()`` (today's verifier, the plane path on) and with ``room_plane=False`` (the verifier
before it), in the same process:

* ``blind+room`` — another nonce's sequence as a clean response (``bench.illum_bits.blind_face``), plus a
  room light along ONE direction that the injector tries from ``DIRECTIONS`` (every one, per trial: the
  window counts as passed when ANY direction passes, an upper bound on an injector that fixes its choice
  in advance, as it must without the nonce), stepping 1-3 times by 1-3 times the stream's gain at random
  frames, or pulsing every frame (a fan);
* ``steady+room`` — no response to any screen (a still face) under the same chosen lights;
* ``genuine+room`` — the nonce's own sequence (a camera that sees the screen) under one random light-like
  direction's steps: what the plane path is for.

``DIRECTIONS``: the screen's palette differences an injector would hide (white, yellow, cyan, magenta:
each the direction of the two-channel or three-channel confusions ``g o (c - c')`` with the blind stream's
own gains), near-white and near-amber variants of them, an amber beacon, a warm tube and a cool white.

Printed per stream: windows passed with and without the plane path (over every direction tried), and the
Clopper-Pearson upper 95 % bound of the pass share with it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from agent.liveness.challenge import PLANE_PASSED, Step, illumination_steps, verify_illumination
from bench.challenge_stats import clopper_pearson_upper
from bench.illum_bits import BLIND_GAIN, blind_face
from bench.shadow_injector import colours

_RAW = ((1.0, 1.0, 1.0), (1.0, 1.0, 0.0), (0.0, 1.0, 1.0), (1.0, 0.0, 1.0), (1.0, 0.95, 0.9), (0.9, 1.0, 1.05),
        (0.93, 0.36, 0.0), (0.82, 0.47, 0.32), (0.5, 0.55, 0.67), (1.0, 0.3, 0.05), (0.3, 1.0, 0.3),
        (0.3, 0.3, 1.0), (1.0, 0.6, 0.6))
DIRECTIONS = tuple(np.asarray(d) / np.linalg.norm(d) for d in _RAW)
STREAMS = ("blind+room", "steady+room", "genuine+room")


def room(n: int, rng: np.random.Generator, gain: float) -> np.ndarray:
    """(n,) the chosen light's level on the face: 1-3 steps of 1-3 times ``gain``, either sign, at random
    frames; or (a third of the time) a pulse every frame (a fan's blades), 1-3 times ``gain`` deep."""
    if rng.random() < 1 / 3:
        return rng.uniform(1, 3) * gain * rng.random(n)
    level = np.zeros(n)
    for _ in range(int(rng.integers(1, 4))):
        level[int(rng.integers(2, n - 2)):] += rng.choice([-1.0, 1.0]) * rng.uniform(1, 3) * gain
    return level


def run(trials: int, frames: int = 32, gain_over_noise: float = 20.0, seed: int = 31) -> dict[str, dict[str, int]]:
    noise = BLIND_GAIN / gain_over_noise
    rng = np.random.default_rng(seed)
    out = {k: {"passed_new": 0, "passed_old": 0, "plane": 0} for k in STREAMS}
    for _ in range(trials):
        steps = illumination_steps(rng.bytes(32), frames)
        other = colours(illumination_steps(rng.bytes(32), frames), frames)
        for kind in STREAMS:
            if kind == "genuine+room":
                a = rng.uniform(0.2, 1.0, 3)
                tries = [a / np.linalg.norm(a)]
                x = colours(steps, frames)
            else:
                tries = list(DIRECTIONS)
                x = other if kind == "blind+room" else np.zeros((frames, 3))
            face = blind_face(x, rng, noise)
            tally(out[kind], "plane", PLANE_PASSED, {"room_plane": False}, steps,
                  (face + room(frames, rng, BLIND_GAIN)[:, None] * a for a in tries))
    return out


def tally(c: dict[str, int], key: str, detail: str, before: dict[str, bool], steps: Sequence[Step],
          streams: Iterable[np.ndarray]) -> None:
    """One window's count in ``c``: ``passed_new`` if any of ``streams`` (an injector's tries, drawn one at a time)
    passes today's verifier, ``passed_old`` if any passes it with ``before`` (the rule switched off), ``key`` if
    any passes by the rule itself (its ``detail``)."""
    new = old = rule = False
    for y in streams:
        r = verify_illumination(steps, y)
        new |= r.passed
        rule |= r.detail == detail
        old |= verify_illumination(steps, y, **before).passed
    c["passed_new"] += new
    c["passed_old"] += old
    c[key] += rule


def main_of(argv: list[str], doc: str | None, trials_run: Callable[[int, int, float], dict[str, dict[str, int]]],
            key: str, words: str) -> int:
    """An injector bench's command line, ``N [FRAMES] [GAIN_OVER_NOISE]``: ``trials_run(N, FRAMES, GAIN)`` and per
    stream the windows passed with the rule and before it, those passed by it (``key``, named ``words``) and the
    Clopper-Pearson upper 95 % bound (this module's and ``bench.flash_injector``'s)."""
    if not 1 <= len(argv) <= 3:
        print(doc)
        return 2
    trials = int(argv[0])
    frames = int(argv[1]) if len(argv) > 1 else 32
    gn = float(argv[2]) if len(argv) > 2 else 20.0
    out = trials_run(trials, frames, gn)
    width = max(len(k) for k in out)
    for kind, c in out.items():
        print(f"{kind:{width}s} {frames} fs gain/noise {gn:g}: passed {c['passed_new']}/{trials} (before "
              f"{c['passed_old']}; {words} {c[key]}), upper 95 % "
              f"{clopper_pearson_upper(c['passed_new'], trials):.4f}", flush=True)
    return 0


def _main(argv: list[str]) -> int:
    return main_of(argv, __doc__, run, "plane", "by the plane path")


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
