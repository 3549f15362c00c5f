"""The flash rule as an injector's tool, searched (review 29, issue 14; docs/liveness.md, *Review 29*): an injector
on the camera link that obeys the projector, does not see the screen, and adds up to ``32 // FLASH_SHARE`` (8)
one- or two-frame bright bumps to its own blind stream, so that the illumination verifier, finding the full path
refused, reads the window again with those frames left out (``ILLUMINATION_FLASH_FRAMES``,
``challenge._flash_frames``). The rule leaves out a frame exactly as a frame with no face, so the question is how
often a blind full window passes with up to 8 frames of the injector's choosing not compared.

    python -m bench.flash_search N [FRAMES] [SEED]

Per window a fresh nonce's sequence and these injectors (a window counts for an injector when ANY of its tries passes
the flash rule: the full-colour path with the frames the rule finds as frames with no face, then confirmed by
``verify_illumination()``, today's verifier; the flashed stream's other paths are the other benches'):

* ``oracle`` — an upper bound no injector reaches: another nonce's sequence as a clean response
  (``bench.illum_bits.blind_face``), and the frames it got wrong, read off the TRUE sequence at the lag where
  they are fewest, flashed (when there are 1-8 of them in runs of 1-2 frames apart from each other);
* ``edges`` — the injector's own model: its guessed sequence's edges are where a misplaced edge shows, so it
  flashes the two frames after each of its own edges (runs of 2, one frame apart at least), up to 8;
* ``random`` (only with ``run(injectors=ALL)``: the command line leaves it out, for time) — ``TRIES`` patterns of
  1-8 random runs of 1-2 frames on the guessed sequence (``bench.flash_injector``'s flashes are random too);
* ``short`` — a stream of 3-frame steps of random colours (the most edges: the most chances for a lag to
  line up) with its steps' last two frames flashed, every other step, up to 8.

Each flash is a colour of ``bench.flash_injector.COLOURS`` (drawn) 1-3 times the stream's gain on top of the
brighter of the frames either side, so the rule finds exactly the frames chosen (counted: ``found``).
Printed per injector: windows passed, those passed by the flash rule, tries whose flashes the rule found
exactly, and the Clopper-Pearson upper 95 % bound of the pass share; for the oracle, the windows where the guessed
stream was wrong on at most 8 settled frames at some lag, and the fewest wrong frames over the windows.
"""

from __future__ import annotations

import sys

import numpy as np

from agent.liveness.challenge import (
    FLASH_LONGEST,
    FLASH_PASSED,
    FLASH_SHARE,
    ILLUMINATION_MAX_LAG,
    _flash_frames,
    _settled,
    illumination_steps,
    verify_illumination,
)
from bench.challenge_stats import clopper_pearson_upper
from bench.flash_injector import COLOURS
from bench.illum_bits import BLIND_GAIN, blind_face
from bench.shadow_injector import colours

INJECTORS = ("oracle", "edges", "short")
# ``random`` (``TRIES`` random patterns) is measured on request: ``run(..., injectors=ALL)``.
ALL = ("oracle", "edges", "random", "short")
TRIES = 2
_BITS = np.array([4, 2, 1])


def runs_of(frames: np.ndarray) -> list[list[int]]:
    """The sorted frame indices grouped into runs of consecutive frames."""
    out: list[list[int]] = []
    for k in sorted(int(f) for f in frames):
        if out and k == out[-1][-1] + 1:
            out[-1].append(k)
        else:
            out.append([k])
    return out


def flashable(frames: np.ndarray, n: int) -> bool:
    """Can the rule leave out exactly ``frames`` in a window of ``n``: 1 to ``n // FLASH_SHARE`` of them, in runs
    of 1 to ``FLASH_LONGEST`` frames, none at the window's ends, each run a frame at least from the next."""
    if not 0 < len(frames) <= n // FLASH_SHARE:
        return False
    runs = runs_of(frames)
    return (all(len(r) <= FLASH_LONGEST and r[0] >= 1 and r[-1] <= n - 2 for r in runs)
            and all(b[0] - a[-1] >= 2 for a, b in zip(runs, runs[1:], strict=False)))


def flash(face: np.ndarray, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``face`` with each run of ``frames`` replaced by the brighter (per channel) of the frames either side plus a
    drawn colour of ``COLOURS`` at 1-3 times the stream's gain: a bump the rule finds whatever the stream shows."""
    y = face.copy()
    for r in runs_of(frames):
        top = np.maximum(face[r[0] - 1], face[r[-1] + 1])
        y[r] = top + rng.uniform(1, 3) * BLIND_GAIN * COLOURS[int(rng.integers(len(COLOURS)))]
    return y


def wrong_frames(x_face: np.ndarray, steps, n: int) -> np.ndarray:
    """The oracle's choice: the face frames whose colour differs from the true sequence's on a settled frame, at
    the lag (0..``ILLUMINATION_MAX_LAG``) where they are fewest."""
    truth = colours(steps, n)
    settled = _settled(truth)
    best = np.arange(n)
    for lag in range(ILLUMINATION_MAX_LAG + 1):
        k = np.arange(n - lag)
        bad = k[settled[k] & ((x_face[lag + k] > 0.5) @ _BITS != (truth[k] > 0.5) @ _BITS)] + lag
        if len(bad) < len(best):
            best = bad
    return best


def own_edges(x_face: np.ndarray, n: int, skip: int = 1) -> np.ndarray:
    """The two frames after every ``skip``-th edge of the injector's own stream, runs a frame apart, up to
    ``n // FLASH_SHARE``."""
    edges = np.flatnonzero(np.any(x_face[1:] != x_face[:-1], axis=1)) + 1
    chosen: list[int] = []
    for e in edges[::skip]:
        run = [k for k in (e, e + 1) if 1 <= k <= n - 2]
        if chosen and run and run[0] - chosen[-1] < 2:
            continue
        if len(chosen) + len(run) > n // FLASH_SHARE:
            break
        chosen += run
    return np.array(chosen, dtype=np.intp)


def random_runs(n: int, rng: np.random.Generator) -> np.ndarray:
    """1-8 frames in random runs of 1-2, apart from each other (fewer when they do not fit)."""
    chosen: list[int] = []
    for k in rng.permutation(np.arange(1, n - 2)):
        length = int(rng.integers(1, FLASH_LONGEST + 1))
        run = list(range(int(k), min(int(k) + length, n - 1)))
        if len(chosen) + len(run) > int(rng.integers(1, n // FLASH_SHARE + 1)):
            break
        if all(abs(r - c) >= 2 for r in run for c in chosen):
            chosen += run
    return np.array(sorted(chosen), dtype=np.intp)


def run(windows: int, frames: int = 32, seed: int = 29, injectors: tuple[str, ...] = INJECTORS
        ) -> dict[str, dict[str, int]]:
    """Every injector's counts over ``windows`` seeded windows: ``passed``, ``flash`` (passed by the flash rule),
    ``tries``, ``found`` (tries whose flashes the rule found exactly); the oracle's ``reach`` (windows whose guessed
    stream was wrong on at most 8 settled frames at some lag) and ``fewest`` (the fewest wrong frames of any window)."""
    rng = np.random.default_rng(seed)
    out = {k: {"passed": 0, "flash": 0, "tries": 0, "found": 0} for k in injectors}
    out["oracle"].update(reach=0, fewest=frames)
    noise = BLIND_GAIN / 20.0
    for w in range(windows):
        if w and w % 1000 == 0:
            print(f"{w} windows: " + ", ".join(f"{k} passed {c['passed']}" for k, c in out.items()), flush=True)
        steps = illumination_steps(rng.bytes(32), frames)
        guess = colours(illumination_steps(rng.bytes(32), frames), frames)
        short = np.repeat(((rng.integers(0, 8, (frames + 2) // 3)[:, None] & _BITS) > 0).astype(float), 3,
                          axis=0)[:frames]
        for kind in injectors:
            x = short if kind == "short" else guess
            face = blind_face(x, rng, noise)
            if kind == "oracle":
                choices = [wrong_frames(x, steps, frames)]
                out[kind]["reach"] += len(choices[0]) <= frames // FLASH_SHARE
                out[kind]["fewest"] = min(out[kind]["fewest"], len(choices[0]))
            elif kind == "edges":
                choices = [own_edges(x, frames)]
            elif kind == "short":
                choices = [own_edges(x, frames, skip=2)]
            else:
                choices = [random_runs(frames, rng) for _ in range(TRIES)]
            passed = by_rule = False
            for chosen in choices:
                if not flashable(chosen, frames):
                    continue
                y = flash(face, chosen, rng)
                out[kind]["tries"] += 1
                lit = _flash_frames(y)
                out[kind]["found"] += bool(np.array_equal(np.flatnonzero(lit), chosen))
                # The rule passes a window only when the full path passes it with the lit frames as frames
                # with no face; that read alone first, the whole verifier where it passes (a sixth of the cost).
                z = y.copy()
                z[lit] = np.nan
                if not verify_illumination(steps, z, room_plane=False, flash_frames=False, ambient=False).passed:
                    continue
                r = verify_illumination(steps, y)
                passed |= r.passed
                by_rule |= r.detail == FLASH_PASSED
            out[kind]["passed"] += passed
            out[kind]["flash"] += by_rule
    return out


def _main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 3:
        print(__doc__)
        return 2
    windows = int(argv[0])
    frames = int(argv[1]) if len(argv) > 1 else 32
    seed = int(argv[2]) if len(argv) > 2 else 29
    for kind, c in run(windows, frames, seed).items():
        print(f"{kind:6s} {frames} fs seed {seed}: passed {c['passed']}/{windows} (by the flash rule {c['flash']}; "
              f"tries {c['tries']}, flashes found exactly {c['found']}), upper 95 % "
              f"{clopper_pearson_upper(c['passed'], windows):.5f}"
              + (f"; wrong on <= 8 frames at some lag {c['reach']}, fewest {c['fewest']}" if "reach" in c else ""),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
