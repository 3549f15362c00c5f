"""Two-colour flashes against the illumination verifier's flash frames (issue 14, docs/liveness.md, *Flash frames
left out*): an injector that obeys the projector, does not see the screen, and adds flashes of two colours of its
choice to its own stream, 1-2 frames each, wherever it likes, hoping that the frames the verifier leaves out as a
flashing light's (``ILLUMINATION_FLASH_FRAMES``, ``challenge._flash_frames``) are the ones its stream got wrong.

    python -m bench.flash_injector N [FRAMES] [GAIN_OVER_NOISE]

Per trial a fresh nonce's sequence (``illumination_steps``) and these streams, each verified by
``verify_illumination()`` (today's verifier) and with ``flash_frames=False`` (the verifier before it), in the
same process:

* ``blind+flashes`` — another nonce's sequence as a clean response (``bench.illum_bits.blind_face``) plus 2-8
  flashes of 1-2 frames, each 1-3 times the stream's gain, alternating between two colours: per trial every
  pair of ``COLOURS`` (the light bar's red and blue, the screen's primaries and secondaries, white); the window
  counts as passed when ANY pair passes (an upper bound: the injector must fix its choice without the nonce);
* ``blind+dense`` — the same with a flash at every other frame (as many as the verifier's cap allows and more);
* ``steady+flashes`` — no response to any screen (a still face) under the same flashes;
* ``genuine+flashes`` — the nonce's own sequence under the light bar's red and blue flashes (what the rule is
  for).

Printed per stream: windows passed with and without the flash frames left out (by the flash rule), and the
Clopper-Pearson upper 95 % bound of the pass share with it.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np

from agent.liveness.challenge import FLASH_PASSED, illumination_steps
from bench.illum_bits import BLIND_GAIN, blind_face
from bench.room_plane_injector import main_of, tally
from bench.shadow_injector import colours

_RAW = ((1.0, 0.0, 0.0), (0.0, 0.026, 1.0), (0.0, 1.0, 0.0), (1.0, 1.0, 0.0), (0.0, 1.0, 1.0), (1.0, 0.0, 1.0),
        (1.0, 1.0, 1.0))
COLOURS = tuple(np.asarray(c) / np.linalg.norm(c) for c in _RAW)
PAIRS = tuple(itertools.combinations(range(len(COLOURS)), 2))
STREAMS = ("blind+flashes", "blind+dense", "steady+flashes", "genuine+flashes")


def flashes(n: int, rng: np.random.Generator, gain: float, pair: tuple[np.ndarray, np.ndarray],
            dense: bool = False) -> np.ndarray:
    """(n, 3) the flashes' light: 2-8 runs of 1-2 frames at random frames (``dense``: one at every other frame),
    alternating between the two colours of ``pair``, each 1-3 times ``gain``."""
    out = np.zeros((n, 3))
    starts = range(1, n - 1, 2) if dense else sorted(rng.choice(np.arange(1, n - 2), int(rng.integers(2, 9)),
                                                                replace=False))
    for i, k in enumerate(starts):
        length = 1 if dense else int(rng.integers(1, 3))
        out[k:k + length] += rng.uniform(1, 3) * gain * pair[i % 2]
    return out


def run(trials: int, frames: int = 32, gain_over_noise: float = 20.0, seed: int = 28) -> dict[str, dict[str, int]]:
    noise = BLIND_GAIN / gain_over_noise
    rng = np.random.default_rng(seed)
    out = {k: {"passed_new": 0, "passed_old": 0, "flash": 0} for k in STREAMS}
    bar = (COLOURS[0], COLOURS[1])
    for _ in range(trials):
        steps = illumination_steps(rng.bytes(32), frames)
        other = colours(illumination_steps(rng.bytes(32), frames), frames)
        for kind in STREAMS:
            if kind == "genuine+flashes":
                tries = [bar]
                x = colours(steps, frames)
            else:
                tries = [(COLOURS[i], COLOURS[j]) for i, j in PAIRS]
                x = np.zeros((frames, 3)) if kind.startswith("steady") else other
            face = blind_face(x, rng, noise)
            tally(out[kind], "flash", FLASH_PASSED, {"flash_frames": False}, steps,
                  (face + flashes(frames, rng, BLIND_GAIN, pair, dense=kind == "blind+dense") for pair in tries))
    return out


def _main(argv: list[str]) -> int:
    return main_of(argv, __doc__, run, "flash", "by the flash rule")


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
