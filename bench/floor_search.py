"""bar29's step floors searched by an informed injector (review 30, issue 14; docs/liveness.md, *Review 30*): an
injector on the camera link that knows the rule (``ILLUMINATION_STEP_FLOOR``, ``challenge._step_floor``), obeys the
projector, does not see the screen's colours, and adds any room light course it likes (a light along a colour
direction of its choosing stepping up and down, a light bar's flash groups, dark frames pulling channels down).

    python -m bench.floor_search N [FRAMES] [SEED] [STREAMS] [COURSES]

(``STREAMS``: a comma-separated subset of ``STREAMS``, default all, alternating window by window; ``COURSES``: courses
read per window beside the bare stream, default ``COURSES``.)

Per window a fresh nonce's sequence and one blind stream:

* ``other``: another nonce's sequence as a clean response (``bench.illum_bits.blind_face``, gain over noise 20);
* ``levels``: steps of 3-6 frames of CONTINUOUS levels per channel (uniform, gain over noise 200): the floors'
  levels are the medians of the steps commanded off and on, so any split of a channel's floors into a lower and an
  upper group can be read, not only the injector's own two levels (at most ``k - 1`` splits of ``k`` floors instead
  of one: the rule's one data-chosen threshold per channel);
* ``short``: 3-frame steps of random colours (the plane search's).

Each bare stream's :func:`chance` (the rule's pass chance under a nonce of the window's timing and fresh colours,
every lag, counted exactly from the floors) is summed: a rate where the count of passes is 0. The window is screened
(the fewest (step, channel) floors decoded to another level than commanded, over the lags the
rule reads, ``wrong``) and read by ``_step_floor`` bare and under ``COURSES`` drawn courses: each the stream plus a
room light along a light-like direction of ``bench.plane_search.grid()`` (``bench.room_plane_injector.room``: 1-3
steps of 1-3 times the gain either sign, or a fan's pulse), a light bar's flash groups of a random pair of colours
(``bench.flash_injector.groups``) and, half of the time, dark frames (1 in 6 frames, a random non-empty set of
channels pulled to the stream's least value: per-step floors pulled down). The window counts as passed when any read
passes (confirmed by ``verify_illumination``, detail ``FLOOR_PASSED``): an upper bound on an injector that fixes its
course without the nonce. Printed per stream: windows passed, the windows by the fewest wrong floors, and the
Clopper-Pearson upper 95 % bound.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from agent.liveness.challenge import (
    FLOOR_PASSED,
    ILLUMINATION_MAX_LAG,
    ROOM_PLANE_MIN_BITS,
    ROOM_PLANE_MIN_SEPARATION,
    ROOM_PLANE_PAIRS,
    Step,
    _full_window,
    _lag_windows,
    _step_floor,
    floor_levels,
    illumination_steps,
    step_floors,
    verify_illumination,
)
from bench.challenge_stats import clopper_pearson_upper
from bench.flash_injector import COLOURS, PAIRS, groups
from bench.illum_bits import BLIND_GAIN, blind_face
from bench.plane_search import grid
from bench.room_plane_injector import room
from bench.shadow_injector import colours

STREAMS = ("other", "levels", "short")
COURSES = 4
DARK_SHARE = 1 / 6
_BITS = np.array([4, 2, 1])


def stream(kind: str, frames: int, rng: np.random.Generator) -> np.ndarray:
    """(frames, 3) one blind stream of ``kind`` (``STREAMS``)."""
    if kind == "other":
        return blind_face(colours(illumination_steps(rng.bytes(32), frames), frames), rng, BLIND_GAIN / 20.0)
    if kind == "short":
        x = np.repeat(((rng.integers(0, 8, (frames + 2) // 3)[:, None] & _BITS) > 0).astype(float), 3,
                      axis=0)[:frames]
        return blind_face(x, rng, BLIND_GAIN / 20.0)
    if kind != "levels":
        raise ValueError(f"unknown stream {kind!r}")
    x = np.zeros((frames, 3))
    k = 0
    while k < frames:
        n = int(rng.integers(3, 7))
        x[k:k + n] = rng.uniform(0.0, 1.0, 3)
        k += n
    return blind_face(x, rng, BLIND_GAIN / 200.0)


def course(face: np.ndarray, rng: np.random.Generator, directions: np.ndarray) -> np.ndarray:
    """The stream under one drawn course: a room light along a drawn direction, a light bar's flash groups and, half
    of the time, dark frames."""
    n = len(face)
    a = directions[int(rng.integers(len(directions)))]
    i, j = PAIRS[int(rng.integers(len(PAIRS)))]
    y = face + room(n, rng, BLIND_GAIN)[:, None] * a + groups(n, rng, BLIND_GAIN, (COLOURS[i], COLOURS[j]))
    if rng.random() < 0.5:
        low = y.min(axis=0)
        for k in np.flatnonzero(rng.random(n) < DARK_SHARE):
            ch = rng.random(3) < 0.5
            ch[int(rng.integers(3))] = True
            y[k, ch] = low[ch]
    return y


def wrong_floors(steps: tuple[Step, ...], y: np.ndarray, max_lag: int = ILLUMINATION_MAX_LAG) -> int:
    """The fewest (step, channel) floors, over the lags ``_step_floor`` reads (a full window, ``ROOM_PLANE_MIN_BITS``
    bits, every channel switched), not within half a gain of their commanded level (a channel whose gain is not
    positive: all of its steps); 99 when no lag is read."""
    if not _full_window(steps, y):
        return 99
    fewest = 99
    for _lag, yl, x, s, care, pair in _lag_windows(steps, y, max_lag):
        member, floor, _sigma = step_floors(yl, s, care, pair)
        cmd = x[np.argmax(member, axis=1)] > 0.5
        levels = floor_levels(floor, cmd)
        if levels is None or 3 * len(floor) < ROOM_PLANE_MIN_BITS:
            continue
        off, on = levels
        gain = on - off
        bad = ~(np.abs(floor - np.where(cmd, on, off)) < gain / 2) | (gain <= 0)
        fewest = min(fewest, int(np.count_nonzero(bad)))
    return fewest


def _splits(f: np.ndarray, sigma: float, separation: float) -> list[tuple[np.ndarray, float]]:
    """Every labelling of one channel's step floors ``f`` (k,) that ``_step_floor`` reads as decoded: the floors
    split into a lower (off) and an upper (on) group, both non-empty, each floor within half a gain of its group's
    median (the gain the medians' difference, at least ``separation`` times ``sigma``). Per split (the labels (k,)
    bool, the gain). The levels are the medians of the floors a NONCE commands off and on, so any such split may be
    the nonce's: one threshold per channel chosen by the data, not the injector's two levels."""
    out = []
    order = np.sort(f)
    for j in range(1, len(f)):
        if order[j - 1] == order[j]:
            continue                                            # a tie across the split: never strictly decoded
        on = f > order[j - 1]
        lo, hi = float(np.median(f[~on])), float(np.median(f[on]))
        gain = hi - lo
        if gain > 0 and gain >= separation * sigma and np.all(np.abs(f - np.where(on, hi, lo)) < gain / 2):
            out.append((on, gain))
    return out


def labellings(steps: tuple[Step, ...], y: np.ndarray, separation: float = ROOM_PLANE_MIN_SEPARATION,
               max_lag: int = ILLUMINATION_MAX_LAG) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """The colourings of ``steps``' timing under which ``_step_floor`` passes the stream ``y``: per lag it reads (a
    full window, ``ROOM_PLANE_MIN_BITS`` bits, ``ROOM_PLANE_PAIRS`` pairs, every step compared with a face), every
    joint labelling of the compared steps' floors it would decode (:func:`_splits` per channel) that is a sequence
    a nonce can draw (each step's colour unlike the one before, the window's first step not black) and that leaves
    some frame lit above its step's floor by half a gain: (the lag, the compared steps' indices, their colours coded
    4 R + 2 G + B). Only ``steps``' timing is read, not their colours."""
    if not _full_window(steps, y):
        return
    for lag, yl, _x, s, care, pair in _lag_windows(steps, y, max_lag):
        ids = np.unique(s[care])
        if 3 * ids.size < ROOM_PLANE_MIN_BITS or np.count_nonzero(pair) < ROOM_PLANE_PAIRS:
            continue
        member, floor, sigma = step_floors(yl, s, care, pair)
        per = [_splits(floor[:, ch], float(sigma[ch]), separation) for ch in range(3)]
        if not all(per):
            continue
        top = np.max(np.where(member[:, :, None], yl[None], -np.inf), axis=1) - floor      # (steps, 3)
        for r, g, b in itertools.product(*per):
            code = 4 * r[0] + 2 * g[0] + b[0]
            if np.any(code[1:] == code[:-1]) or (ids[0] == 0 and code[0] == 0):
                continue
            if np.any(top >= np.array([r[1], g[1], b[1]]) / 2):
                yield int(lag), ids, code


def chance(steps: tuple[Step, ...], y: np.ndarray, separation: float = ROOM_PLANE_MIN_SEPARATION,
           max_lag: int = ILLUMINATION_MAX_LAG) -> float:
    """The chance that ``_step_floor`` passes the stream ``y`` under a nonce of ``steps``' timing but colours drawn
    afresh, summed over the lags (a union bound): every colouring :func:`labellings` lists weighed 7^-k (k compared
    steps: each colour one of 7 given the one before). The nonce's own colours are not read, so where the count of
    passes is 0 this gives a rate. Not weighed: the sequence's redraw until its first colour shows again near the
    end (``illumination_steps``), which favours a stream that repeats its own first colour there by up to 7."""
    return float(sum(7.0 ** -ids.size for _lag, ids, _code in labellings(steps, y, separation, max_lag)))


def passes(steps: tuple[Step, ...], y: np.ndarray) -> bool:
    """Does ``_step_floor`` pass ``y``, confirmed by ``verify_illumination`` (detail ``FLOOR_PASSED``)?"""
    if _step_floor(steps, y, ILLUMINATION_MAX_LAG, ROOM_PLANE_MIN_SEPARATION) is None:
        return False
    v = verify_illumination(steps, y)
    return v.passed and v.detail == FLOOR_PASSED


@dataclass
class Tally:
    """One stream's counts: windows, passes, reads, the bare streams' :func:`chance` summed, and the windows by the
    fewest wrong floors of the bare stream."""

    windows: int = 0
    passed: int = 0
    read: int = 0
    chance: float = 0.0
    wrong: dict[int, int] = field(default_factory=dict)


def run(windows: int, frames: int = 32, seed: int = 30, kinds: tuple[str, ...] = STREAMS,
        courses: int = COURSES) -> dict[str, Tally]:
    """Every stream's counts over ``windows`` seeded windows (the streams alternate)."""
    rng = np.random.default_rng(seed)                 # the windows: the same whatever the courses draw
    drawn = np.random.default_rng(seed + 1_000_003)   # the courses
    directions = grid()
    out = {k: Tally() for k in kinds}
    for w in range(windows):
        kind = kinds[w % len(kinds)]
        steps = illumination_steps(rng.bytes(32), frames)
        face = stream(kind, frames, rng)
        c = out[kind]
        c.windows += 1
        fewest = wrong_floors(steps, face)
        c.wrong[fewest] = c.wrong.get(fewest, 0) + 1
        c.chance += chance(steps, face)
        for y in [face] + [course(face, drawn, directions) for _ in range(courses)]:
            c.read += 1
            if passes(steps, y):
                c.passed += 1
                print(f"hit: window {w} ({kind}), seed {seed}; steps {[(st.start, st.frames, st.rgb) for st in steps]};"
                      f" stream {np.round(y, 6).tolist()}", flush=True)
                break
        if (w + 1) % 1000 == 0:
            print(f"{w + 1} windows: " + ", ".join(f"{k} passed {t.passed} of {t.windows}, chance a window "
                                                  f"{t.chance / max(t.windows, 1):.2e}" for k, t in out.items()),
                  flush=True)
    return out


def _main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 5:
        print(__doc__)
        return 2
    windows = int(argv[0])
    frames = int(argv[1]) if len(argv) > 1 else 32
    seed = int(argv[2]) if len(argv) > 2 else 30
    kinds = tuple(argv[3].split(",")) if len(argv) > 3 else STREAMS
    courses = int(argv[4]) if len(argv) > 4 else COURSES
    for kind, c in run(windows, frames, seed, kinds, courses).items():
        print(f"{kind:6s} {frames} fs seed {seed}: passed {c.passed}/{c.windows} ({c.read} reads by _step_floor; "
              f"windows by the fewest wrong floors {dict(sorted(c.wrong.items()))}), upper 95 % "
              f"{clopper_pearson_upper(c.passed, c.windows):.6f}; the bare streams' chance a window "
              f"{c.chance / max(c.windows, 1):.2e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
