"""The illumination challenge against two attackers the random blind streams of ``bench.illum_bits``
do not model (review 7, issue 20; docs/liveness.md "Injectors that see the room" and "More bits per
frameset, measured").

``searched FRAMES K TRAIN TEST``: a blind injector that picks its stream. K candidate streams (each a
random ``rhythm`` stream) are scored on TRAIN nonces by how often the production verifier finds at
most 2 mismatches (or by SCORE below); the best is then played, unchanged, against TEST fresh nonces, beside random
``rhythm`` streams on the same nonces. Training and test nonces are apart.

``follower TRIALS``: an injector that sees the genuine camera's colour frames (a hooked SDK, root on
the terminal): it reads the screen's colour from each real frame (the screen's light lands through
the bench's timing model, lag and jitter) and lights its injected face with it, in the same frame or
one later; verified by the production verifier.

    nice -n 19 python -m bench.illum_adversary searched 32 60 1000 60000 [RULE [SCORE]]   (~13 min here)

RULE (``illum_bits.RULES``, not ``clean``): the verifier's options the search and the test run
under; ``verifier`` (the default) is ``verify_illumination``'s defaults (with the step check),
``nosteps`` the verifier before the step check (review 7's run). SCORE: ``near2`` (the default,
review 7's: the share of training nonces within 2 mismatches) or ``agree`` (the mean share of
compared frames right: a score for every candidate where none comes within 2 mismatches).

    nice -n 19 python -m bench.illum_adversary follower 300
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from agent.liveness.challenge import verify_illumination
from bench import challenge_stats as cs
from bench import illum_bits as ib

FOLLOWER_ROWS = (("today", 32), ("today", 16), ("steps24", 16), ("levels3", 16), ("steps24x3", 12))
SCREEN_TIMINGS = ((1, 0.0), (2, 0.2), (3, 0.3))


def near_pass(v: ib.Variant, x: np.ndarray, train: Sequence, face_rng: np.random.Generator,
              rule: str = "verifier", score: str = "near2") -> float:
    """The search's score of blind stream ``x``: the share of training sequences the verifier (under
    ``rule``, ``illum_bits.rule_options``) finds at most 2 mismatches in (``near2``: a smoother figure
    than the pass itself, which is rare), or, smoother still, the mean share of compared frames it
    finds right (``agree``: every candidate gets a score even where none comes within 2 mismatches)."""
    opts = ib.rule_options(rule)
    rs = [verify_illumination(s, ib.blind_face(x, face_rng), **opts) for s in train]
    if score == "agree":
        return float(np.mean([r.agreement for r in rs]))
    if score != "near2":
        raise ValueError(f"unknown search score {score!r}")
    return float(np.mean([r.mismatches <= 2 for r in rs]))


def searched(frames: int, k: int, n_train: int, n_test: int, seed: int = 91, face_seed: int = 6,
             variant: str = "today", rule: str = "verifier", score: str = "near2") -> dict[str, float | int | str]:
    """The search and its test, the verifier run under ``rule`` for both (the injector searches
    against the verifier it meets); the same seeds whatever the rule, so every rule meets the same
    candidates, training and test nonces."""
    v = ib.variant(variant)
    opts = ib.rule_options(rule)
    rng, face_rng = np.random.default_rng(seed), np.random.default_rng(face_seed)
    train = [v.steps_for(rng.bytes(32), frames) for _ in range(n_train)]
    cands = [ib.blind_stream(v, frames, rng, "rhythm") for _ in range(k)]
    scores = [near_pass(v, x, train, face_rng, rule, score) for x in cands]
    best = cands[int(np.argsort(scores)[::-1][0])]     # review 7's choice among ties, so its run repeats
    _progress(f"trained: best score {max(scores)}")
    passed = rnd = 0
    for j in range(n_test):
        s = v.steps_for(rng.bytes(32), frames)
        passed += verify_illumination(s, ib.blind_face(best, face_rng), **opts).passed
        rnd += verify_illumination(s, ib.blind_face(ib.blind_stream(v, frames, rng, "rhythm"), face_rng),
                                   **opts).passed
        if (j + 1) % 5000 == 0:
            _progress(f"tested {j + 1}: searched {passed}, random {rnd}")
    return {"frames": frames, "rule": rule, "score": score, "candidates": k, "train": n_train, "test": n_test,
            "best_score": max(scores), "searched_passed": passed,
            "searched_upper95": cs.clopper_pearson_upper(passed, n_test),
            "random_passed": rnd, "random_upper95": cs.clopper_pearson_upper(rnd, n_test)}


def _progress(what: str) -> None:
    print(what, file=sys.stderr, flush=True)


def follower_rate(v: ib.Variant, frames: int, lag: int, jitter: float, delay: int, trials: int, seed: int = 1,
                  noise: float = 3e-4, relay_other: bool = False) -> float:
    """Share of windows an injector relaying the screen's colour ``delay`` frames late passes.
    ``relay_other``: it relays another session's screen instead (a control: must fail)."""
    rng = np.random.default_rng(seed)
    ok = 0
    for _ in range(trials):
        steps = v.steps_for(rng.bytes(32), frames)
        relayed = v.steps_for(rng.bytes(32), frames) if relay_other else steps
        x = v.colours(relayed, frames)
        src = cs._landings(x, lag, jitter, rng)
        shown = np.where((src < 0)[:, None], 0.0, x[np.maximum(src, 0)])   # the screen in the real frame
        seen = shown + rng.normal(0, 0.01, shown.shape)                     # read off a card or a cheek
        est = np.vstack([np.zeros((delay, 3)), seen[:frames - delay]])
        if v.levels > 2:
            est = np.clip(np.rint(est * (v.levels - 1)), 0, v.levels - 1) / (v.levels - 1)
        else:
            est = (est > 0.5).astype(float)
        face = np.array([0.2, 0.15, 0.1]) + 0.02 * est + rng.normal(0, noise, est.shape)
        ok += verify_illumination(steps, face, levels=v.levels).passed
    return ok / trials


def _main(argv: list[str]) -> int:
    if argv[:1] == ["searched"] and len(argv) in (5, 6, 7):
        frames, k, n_train, n_test = (int(a) for a in argv[1:5])
        print(searched(frames, k, n_train, n_test, rule=argv[5] if len(argv) >= 6 else "verifier",
                       score=argv[6] if len(argv) == 7 else "near2"), flush=True)
        return 0
    if argv[:1] == ["follower"] and len(argv) <= 2:
        trials = int(argv[1]) if len(argv) == 2 else 300
        for name, frames in FOLLOWER_ROWS:
            v = ib.variant(name)
            for lag, jitter in SCREEN_TIMINGS:
                for delay in (0, 1):
                    r = follower_rate(v, frames, lag, jitter, delay, trials)
                    print(f"{name:10s} {frames:2d} fs  screen lag {lag} / {jitter:.0%}  relay delay {delay}: "
                          f"pass {r:.3f} of {trials} (lower 95 % "
                          f"{100 * cs.clopper_pearson_lower(round(r * trials), trials):.1f} %)", flush=True)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
