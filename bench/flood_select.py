"""counter30: does leaving a foreign flood's frames out of the projector's pairs (``judge.flood_frames``,
``judge.flood_pairs``) give an attacker a selection power? Frames whose background a burst lifted are read in no
pair, and the pairs are read on the clear frames nearest each edge instead; an injector on the camera link (or an
attacker's own pulsed 850 nm lamp lighting the wall) chooses which frames those are. Can the pairs left carry a
mask, attack B's lamp over a mask or a printed eye band over the ramps?

The frame model of tests/liveness/test_foreign_flood.py (``T.frames_of``: the simulator's dots, photon noise, a
wall around the face; ``T.judged``, ``T.session_score``: every other cue alive, as a mask with eye holes). A frame
the attacker floods is only left out: every pair ``flood_pairs`` can read is read once on the window drawn without
a flood (what a flooded frame adds is never read), so any set of flooded frames costs a lookup, and the search is
an upper bound on the attacker (it needs no light that really passes the 2 DN rise). Searched per window: every
frame's set of every k-th frame (k 2-4, each phase), every lit or every unlit frame, ``--random`` random sets
(10-70 % of the frames), and a greedy search from no flood that floods, one frame at a time, the frame whose
leaving out raises the session's score most (then the pairs' softest dots), until nothing raises it.

    PYTHONPATH=. python -m bench.flood_select [--seeds 2] [--random 2000]

Prints, per surface and seed: the score as drawn (main's pairs, no flood), the best score over the sets tried and
its set, how many sets leave at least ``MIN_PROJECTOR_PAIRS`` pairs and ``MIN_EYE_READINGS`` eye readings, and
how many score >= ``LIVE_MIN`` (asserted 0 for the attacks; a live face's window for contrast). Numbers only,
no frames written."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

import tests.liveness.test_foreign_flood as T
from agent.liveness.detectors import MIN_EYE_READINGS, MIN_PROJECTOR_PAIRS
from agent.liveness.features import ProjectorLight
from agent.liveness.judge import flood_pairs

LIVE_MIN = 0.5
SURFACES = {
    "skin (a live face)": dict(skin=T.SKIN_SCATTER, eyes=T.SKIN_SCATTER, synced=0.0),
    "resin (a mask)": dict(skin=T.RESIN_SCATTER, eyes=T.RESIN_SCATTER, synced=0.0),
    "resin + attack B's lamp 16 DN": dict(skin=T.RESIN_SCATTER, eyes=T.RESIN_SCATTER, synced=16.0),
    "resin + attack B's lamp 40 DN": dict(skin=T.RESIN_SCATTER, eyes=T.RESIN_SCATTER, synced=40.0),
    "a printed eye band on skin": dict(skin=T.SKIN_SCATTER, eyes=T.RESIN_SCATTER, synced=0.0),
}


class Window:
    """One drawn window and its pairs' readings, each read once when first asked for."""

    def __init__(self, skin: float, eyes: float, synced: float, seed: int):
        self.lit, self.frames = T.frames_of(skin, [0.0] * 32, eyes_scatter=eyes, seed=seed, synced=synced)
        self.cache: dict[tuple, ProjectorLight] = {}

    def score(self, flooded: list[bool]) -> tuple[float, int, int]:
        pairs, touched = flood_pairs(self.lit, flooded)
        for p in pairs:
            if p not in self.cache:
                self.cache[p] = T.read(self.lit, self.frames, [p], eyes=True)[0]
        m, s = T.judged([self.cache[p] for p in pairs], touched)
        return T.session_score(s), m.pairs, m.eyes_read


def candidate_sets(n: int, lit: list[bool], rng: np.random.Generator, randoms: int,
                   periods: tuple[int, ...] = (2, 3, 4)) -> list[list[bool]]:
    """No flood, every k-th frame (each phase), every lit or unlit frame, ``randoms`` random sets (10-70 %)."""
    out = [[False] * n]
    for every in periods:
        for phase in range(every):
            out.append([(k - phase) % every == 0 for k in range(n)])
    out.append(list(lit))
    out.append([not x for x in lit])
    for _ in range(randoms):
        out.append(list(rng.random(n) < rng.uniform(0.1, 0.7)))
    return out


def rounded_score(w: Window, flooded: list[bool]) -> float:
    return round(w.score(flooded)[0], 9)


def greedy(value: Callable[[list[bool]], Any], n: int) -> tuple[Any, list[bool]]:
    """From no flood, flood one frame at a time, the frame that raises ``value`` (of a flooded set) most,
    until none raises it: (the value reached, the set)."""
    flooded = [False] * n
    best = value(flooded)
    while True:
        step = None
        for k in range(n):
            if flooded[k]:
                continue
            trial = list(flooded)
            trial[k] = True
            got = value(trial)
            if got > best:
                best, step = got, k
        if step is None:
            return best, flooded
        flooded[step] = True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--random", type=int, default=2000)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(3030)
    failed = False
    for name, surface in SURFACES.items():
        for seed in range(args.seeds):
            w = Window(surface["skin"], surface["eyes"], surface["synced"], seed)
            n = len(w.lit)
            drawn = w.score([False] * n)[0]
            sets = candidate_sets(n, w.lit, rng, args.random)
            scores = [w.score(f) for f in sets]
            g_best, g_set = greedy(functools.partial(rounded_score, w), n)
            best = max([s[0] for s in scores] + [g_best])
            measuring = sum(p >= MIN_PROJECTOR_PAIRS and e >= MIN_EYE_READINGS for _, p, e in scores)
            passing = sum(s >= LIVE_MIN for s, _, _ in scores) + (g_best >= LIVE_MIN)
            where = "".join("x" if f else "." for f in g_set)
            print(f"{name:<32} seed {seed}: drawn {drawn:.3f}; best {best:.3f} over {len(sets) + 1} sets "
                  f"(greedy {g_best:.3f}, flooded {where}); {measuring} sets still measure; "
                  f"{passing} score >= {LIVE_MIN}; {len(w.cache)} pairs read", flush=True)
            if not name.startswith("skin") and passing:
                failed = True
    print("FAILED: an attack passed" if failed else "no attack set passed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
