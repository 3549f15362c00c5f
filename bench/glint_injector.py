"""A windscreen's glint on the projector challenge, and injectors that draw a glint of their own (issue 14,
docs/liveness.md, *A windscreen's glint*): the swept-run rule (``agent.liveness.challenge._swept_run``,
through ``explain_flicker``, after the flicker and unlit-light rules) against synthetic windows built as the
judge reads them: the dot energy per frame, the registered IR in the face box's 4x4 cells, the frames the
camera reports lit.

    python -m bench.glint_injector N [FRAMES] [SEED] [STREAM,...]

The light (the twentieth family's ``drivers/sim/radiant.WindscreenGlint`` as glint31 read its refusals): the
sun's 850 nm crossing the face once, a hump of 3-15 frames (0.1-0.5 s) whose centre lies anywhere from 6
frames before the window to 6 after it (so a window often holds only a flank), its height 1-4x the dots'
step on the unlit frames' energy (the skin's texture lit by it) and 0.3-0.8 of that on the lit frames'; its
level on the IR cells small (2-8 DN, 0.3-1.0 of it per cell: the glint shows in the high-pass, hardly in the
level). The dots' step 1-8 on an unlit floor of 0.3-2, noise 0.05-0.15; the camera's lag 0-1 frame. Per
trial a fresh nonce and one of these streams:

* ``genuine+glint`` — the camera obeys the schedule under the glint (what the rule is for);
* ``genuine+steady`` — the same without the glint (nothing may change);
* ``replay+glint`` — a camera's genuine glinted window for ANOTHER nonce;
* ``blind+hump`` / ``blind+hump_fixed`` — a blind stream (``challenge_stats.blind_projector_stream``,
  ``rhythm`` / ``fixed``) with a glint of its own drawn on it (glint31's candidate's bench);
* ``blind+drifting_hump`` — a blind stream whose dots barely step (0.3 on 8) under its own hump;
* ``informed`` — an injector that sees every command and follows the schedule, under a glint: it passes
  or not on its own; the rule never passes anything (asserted), so it gains nothing from it.
* ``adaptive`` — review32's D2: an injector that sees every command, follows them a frame late and misses
  one edge (drawn among those from frame 5 to the window's last 8) by 4 frames more (beyond
  ``PROJECTOR_MAX_LAG``), then draws a hump of its own over the miss: 9 frames from 2 before the missed
  edge, its height and lit share drawn as the glint's. Each window is also judged without its hump (the
  same draws): ``miss alone attack`` counts those, ``masked`` those the hump turned from ``attack`` into
  ``PROJECTOR_GLINT`` (never a pass: the terminal still strikes it; the audit keeps the contradiction,
  ``challenge_relabelled_from``).
* ``adaptive+bright`` — the same injector drawing its hump in the face's IR level too, 2-4x the projector's flood
  in every cell at its peak (as bright as the twentieth's glints on the face): what an injector who knows the
  rule's flood test (``SWEEP_LEVEL``, glint33) draws; it needs no knowledge of the schedule beyond its own miss.

Printed per stream: windows passed (the rule never passes: asserted), contradictions (``attack``) before and
after the rules, not measurable, relabelled ``PROJECTOR_GLINT``, with the Clopper-Pearson upper 95 % of passes
and of glint relabels. Nothing of a face is involved.
"""

from __future__ import annotations

import sys

import numpy as np

from agent.liveness.challenge import (
    PROJECTOR_GLINT_DETAIL,
    PROJECTOR_MAX_LAG,
    PROJECTOR_MIN_SEPARATION,
    Challenge,
    Kind,
    _swept_run,
)
from bench.challenge_stats import blind_projector_stream, clopper_pearson_upper
from bench.pwm_injector import _shifted, judge, tally  # the camera's lag 0-1; the judge's projector path with no face

STREAMS = ("genuine+glint", "genuine+steady", "replay+glint", "blind+hump", "blind+hump_fixed",
           "blind+drifting_hump", "informed", "adaptive", "adaptive+bright")
CELLS = 16


def glint(frames: int, rng: np.random.Generator) -> np.ndarray:
    """One sweep's shape over the window, peak 1: a raised cosine 3-15 frames wide, its centre from 6
    frames before the window to 6 after it."""
    w = float(rng.uniform(3, 15))
    c = float(rng.uniform(-6, frames + 6))
    t = (np.arange(frames) - c) / (w / 2)
    return np.where(np.abs(t) < 1, 0.5 * (1 + np.cos(np.pi * t)), 0.0)


def camera_window(lit: np.ndarray, rng: np.random.Generator, sweep: np.ndarray, *, step: float | None = None,
                  floor: float | None = None, bright: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(energies, IR cells (n, 16), lit) of a camera whose frames are lit as ``lit``, under ``sweep``; ``bright``:
    the sweep lifts the face's IR level by 2-4x the projector's flood (in every cell) at its peak, not 0.5-2 DN."""
    n = len(lit)
    dots = rng.uniform(1, 8) if step is None else step
    base = rng.uniform(0.3, 2) if floor is None else floor
    height = rng.uniform(1, 4) * dots
    on_lit = rng.uniform(0.3, 0.8)
    energies = base + np.where(lit, dots + on_lit * height * sweep, height * sweep) + rng.normal(
        0, rng.uniform(0.05, 0.15) * (dots if step is None else 1.0) / 4, n)
    level = rng.uniform(0.5, 2) * sweep
    gain, ambient, flood, share = (rng.uniform(0.7, 1.3, CELLS), rng.uniform(5, 40), rng.uniform(20, 60),
                                   rng.uniform(0.3, 1.0, CELLS))
    if bright:
        level = rng.uniform(2, 4) * flood * sweep * float(np.max(gain / share))
    cells = gain[None] * (ambient + flood * lit[:, None]) + share[None] * level[:, None] + \
        rng.normal(0, 0.5, (n, CELLS))
    return np.abs(energies), np.maximum(cells, 0.0), lit.astype(bool)


def missed_edge(schedule: tuple[bool, ...], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The ``adaptive`` injector's lit frames (the commands a frame late, one edge from frame 5 to the window's
    last 8 missed by 4 frames more) and its own hump's shape over the miss (9 frames from 2 before the edge,
    peak 1); no miss and no hump when the schedule has no such edge."""
    s = np.asarray(schedule, dtype=bool)
    n = len(s)
    lit = np.r_[s[:1], s[:-1]]
    edges = np.flatnonzero(s[1:] != s[:-1]) + 1
    edges = edges[(edges > 4) & (edges < n - 8)]
    if not len(edges):
        return lit, np.zeros(n)
    e0 = int(rng.choice(edges))
    lit[e0 + 1:e0 + 5] = s[e0 - 1]
    t = np.arange(n) - (e0 - 2)
    return lit, np.where((t >= 0) & (t < 9), 0.5 * (1 - np.cos(2 * np.pi * (t + 0.5) / 9)), 0.0)


def window(kind: str, ch: Challenge, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = ch.frames
    if kind in ("adaptive", "adaptive+bright"):
        lit, hump = missed_edge(ch.schedule, rng)
        return camera_window(lit, rng, hump, bright=kind == "adaptive+bright")
    sweep = np.zeros(n) if kind == "genuine+steady" else glint(n, rng)
    if kind in ("genuine+glint", "genuine+steady", "informed"):
        return camera_window(_shifted(ch.schedule, rng), rng, sweep)
    if kind == "replay+glint":
        other = Challenge.from_nonce(rng.bytes(32), n, (Kind.PROJECTOR,))
        return camera_window(_shifted(other.schedule, rng), rng, sweep)
    lit = blind_projector_stream(n, rng, "fixed" if kind == "blind+hump_fixed" else "rhythm").astype(bool)
    if kind == "blind+drifting_hump":
        return camera_window(lit, rng, sweep, step=0.3, floor=8.0)
    return camera_window(lit, rng, sweep)


def run(trials: int, frames: int = 32, seed: int = 32, streams: tuple[str, ...] = STREAMS) -> dict[str, dict[str, int]]:
    rng = np.random.default_rng(seed)
    out = {}
    for kind in streams:
        c = dict.fromkeys(("passed", "attack_before", "attack", "unmeasurable", "glint", "swept", "miss_attack",
                           "masked"), 0)
        for _ in range(trials):
            ch = Challenge.from_nonce(rng.bytes(32), frames, (Kind.PROJECTOR,))
            state = rng.bit_generator.state
            e, ir, lit = window(kind, ch, rng)
            if kind.startswith("adaptive"):         # the same window without its hump: the same draws
                resume = rng.bit_generator.state
                rng.bit_generator.state = state
                lit0, _ = missed_edge(ch.schedule, rng)
                miss = judge(ch, *camera_window(lit0, rng, np.zeros(frames),
                                                bright=kind == "adaptive+bright"))[1].get(Kind.PROJECTOR)
                rng.bit_generator.state = resume
                miss_attack = miss is not None and not miss.passed and miss.measurable
                c["miss_attack"] += miss_attack
            before, after = judge(ch, e, ir, lit)
            a, b = tally(c, kind, before, after), before.get(Kind.PROJECTOR)
            c["glint"] += a.detail == PROJECTOR_GLINT_DETAIL
            if kind.startswith("adaptive"):
                c["masked"] += miss_attack and a.detail == PROJECTOR_GLINT_DETAIL
            # The rule alone, on every contradiction (whether or not a rule before it took the window).
            c["swept"] += not b.passed and b.measurable and _swept_run(ch.schedule, e, PROJECTOR_MAX_LAG,
                                                                       PROJECTOR_MIN_SEPARATION, ir)
        out[kind] = c
    return out


def _main(argv: list[str]) -> int:
    trials = int(argv[0]) if argv else 200
    frames = int(argv[1]) if len(argv) > 1 else 32
    seed = int(argv[2]) if len(argv) > 2 else 32
    streams = tuple(argv[3].split(",")) if len(argv) > 3 else STREAMS
    if not set(streams) <= set(STREAMS):
        raise SystemExit(f"streams: some of {','.join(STREAMS)}")
    for kind, c in run(trials, frames, seed, streams).items():
        up, ug = clopper_pearson_upper(c["passed"], trials), clopper_pearson_upper(c["glint"], trials)
        print(f"{kind:20s} passed {c['passed']}/{trials} (upper 95 % {up:.4f}); attack {c['attack_before']} -> "
              f"{c['attack']}; not measurable {c['unmeasurable']}; relabelled glint {c['glint']} "
              f"(upper 95 % {ug:.4f}); the rule alone on the contradictions {c['swept']} "
              f"(upper 95 % {clopper_pearson_upper(c['swept'], trials):.4f})"
              + (f"; miss alone attack {c['miss_attack']}, masked as glint {c['masked']}"
                 if kind.startswith("adaptive") else ""),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
