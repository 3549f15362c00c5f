"""On-off pairs whose room light a ceiling fan (or an attacker's lamp) stepped: do skin, a mask or a print
gain from ``features.speckled`` leaving out the speckle of pairs whose level fell under the window's
(``ProjectorLight.fell``, fanmat27)?

The frame model of tests/liveness/test_moving_light.py (``T.window``: the simulator's projected dots at
16 DN spread by the surface, the room's light times each frame's factor, photon noise, 8 bits; every
other cue alive, as a mask with eye holes: ``T.judged``, ``T.session_score``). Each window is read once,
pair by pair, and pooled twice in the same process: with ``features.speckled`` as it is, and as main
f5d8786 had it (pairs whose level stepped off the window's kept their speckle, a one-sided one as a floor).
The fan's lives under it: ``tests/liveness/test_moving_light.py``'s ``_fan_window``.

- ``blind``: the fifteenth family's own fan (``bench.shadow_injector.pulse``: ``drivers.sim.fan.CeilingFan``,
  3-5 blades at 150-350 rpm, the lamp 0.25-0.60 of the face's light) on a room of 2-5 times the
  projector's light (the fan's lives: unlit skin 65-150 DN against 25-40 DN of dots), for attacks with
  attack B's even lamp switched with the projector (0-40 DN, drawn).
- ``searched``: an attacker who sees every command sets the room's light frame by frame: the lit (or
  unlit) frames of a chosen set of pairs dimmed or brightened by a factor (0.3-2), on a room of 1 or 3
  times the dots, with attack B's lamp at 0, 16 or 40 DN; a window passes when any of its settings
  scores at least ``LIVE_MIN``. Resin (a mask) and a print (paper, scattering less than resin: an
  assumption of this bench) must never pass; skin is the fan's life.

    PYTHONPATH=. python -m bench.fan_pairs [--blind 200] [--seeds 3]

Numbers only, no frames written."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable

import numpy as np

import tests.liveness.test_moving_light as T
from agent.liveness import features
from agent.liveness.challenge import projector_schedule
from agent.liveness.features import ProjectorLight
from agent.liveness.judge import _edges
from bench.shadow_injector import pulse
from tests.liveness.test_projector_measure import RESIN_SCATTER, SKIN_SCATTER

LIVE_MIN = 0.5
PRINT_SCATTER = 0.08            # assumed: paper and ink spread the dots no more than resin does
SURFACES = {"skin": SKIN_SCATTER, "mask": RESIN_SCATTER, "print": PRINT_SCATTER}


def main_speckled(lights: list[ProjectorLight]) -> list[ProjectorLight]:
    """``features.speckled`` as main f5d8786 had it: a stepped pair's speckle kept."""
    return [x for x in lights if not x.moved]


def scores(lights: list[ProjectorLight]) -> tuple[float, float]:
    """The window's fused score as main read it and as this tree reads it (the same pairs)."""
    now = T.session_score(T.judged(lights)[1])
    keep: Callable[[list[ProjectorLight]], list[ProjectorLight]] = features.speckled
    setattr(features, "speckled", main_speckled)        # noqa: B010 (a module function swapped for a reading)
    try:
        before = T.session_score(T.judged(lights)[1])
    finally:
        setattr(features, "speckled", keep)              # noqa: B010
    return before, now


def blind(surface: str, n: int, seed0: int = 0) -> tuple[int, int, int]:
    """(passed on main, passed here, windows) of ``n`` fan windows drawn for ``surface``."""
    passed = [0, 0]
    for k in range(n):
        rng = np.random.default_rng(seed0 + k)
        room = float(rng.uniform(2.0, 5.0)) * 16.0 / 20.0        # T.window's room is 20 DN times the factor
        factors = list(room * pulse(32, rng))
        synced = 0.0 if surface == "skin" else float(rng.uniform(0.0, 40.0))
        nonce = rng.bytes(16)
        lights = T.window(SURFACES[surface], 0.0, dimmer=factors, fleck_dn=0.0, synced=synced, seed=seed0 + k,
                          nonce=nonce)
        for i, s in enumerate(scores(lights)):
            passed[i] += s >= LIVE_MIN
    return passed[0], passed[1], n


def settings(n_pairs: int) -> list[tuple[str, tuple[int, ...], float, float, float]]:
    """The searched attacker's settings: (frame, pairs, factor, room, lamp)."""
    sets = {"every other": tuple(range(0, n_pairs, 2)), "one in three": tuple(range(0, n_pairs, 3)),
            "first half": tuple(range(n_pairs // 2)), "all but two": tuple(range(n_pairs - 2))}
    return [(frame, pairs, f, room, lamp)
            for frame, pairs, f, room, lamp in itertools.product(("lit", "unlit"), sets.values(),
                                                                 (0.3, 0.5, 0.7, 1.3, 2.0), (0.8, 2.4),
                                                                 (0.0, 16.0, 40.0))]


def searched(surface: str, seeds: int) -> tuple[list[int], list[int], int, int, list[float]]:
    """Over ``seeds`` nonces: windows passing on main and here (a window passes when any setting scores
    at least ``LIVE_MIN``), settings passing on main and here, windows, settings tried, and the best
    score on main and here."""
    won = [0, 0]
    hits = [0, 0]
    tried = 0
    best = [0.0, 0.0]
    for seed in range(seeds):
        nonce = bytes([seed]) * 16
        lit = list(projector_schedule(nonce, 32))
        edges = _edges(lit)
        top = [0.0, 0.0]
        for frame, pairs, f, room, lamp in settings(len(edges)):
            if surface == "skin" and lamp:
                continue
            tried += 1
            dimmer = [room] * 32
            for i in pairs:
                dimmer[edges[i][1] if frame == "lit" else edges[i][2]] = room * f
            lights = T.window(SURFACES[surface], 0.0, dimmer=dimmer, fleck_dn=0.0, synced=lamp, seed=seed,
                              nonce=nonce)
            for i, s in enumerate(scores(lights)):
                top[i] = max(top[i], s)
                hits[i] += s >= LIVE_MIN
        for i in range(2):
            won[i] += top[i] >= LIVE_MIN
            best[i] = max(best[i], top[i])
    return won, hits, seeds, tried, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blind", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    print("surface | blind: passed main -> here (windows) | searched: windows passed main -> here (windows), "
          "settings passed main -> here (tried), best score main -> here")
    for surface in SURFACES:
        b0, b1, n = blind(surface, a.blind)
        won, hits, m, tried, best = searched(surface, a.seeds)
        print(f"{surface} | {b0} -> {b1} ({n}) | {won[0]} -> {won[1]} ({m}), {hits[0]} -> {hits[1]} ({tried}), "
              f"{best[0]:.2f} -> {best[1]:.2f}", flush=True)


if __name__ == "__main__":
    main()
