"""The plane path searched, not listed (review 29, issue 14; docs/liveness.md, *Review 29*): an injector on the camera
link that obeys the projector, does not see the screen, and adds a "room light" along a colour direction ``a`` with
a time course of its choosing, now choosing ``a`` PER WINDOW to make the plane path (``ILLUMINATION_ROOM_PLANE``,
``challenge._room_plane``) pass its blind stream. Review 28 and the coordinator tried 19 listed directions; here a
grid over every light-like direction and a local search per window.

    python -m bench.plane_search N [FRAMES] [SEED] [SEPARATION] [MIN_BITS] [FLOORS]

(``MIN_BITS``: ``ROOM_PLANE_MIN_BITS`` for the run, 15 to measure main 53f11c2's; the windows depend on SEED alone.
``FLOORS``, review 30: the screen's best direction read under that many more courses with flash groups and dark
frames, a pass by the plane path or bar29's step floors: ``window``.)

Per window a fresh nonce's sequence and one blind stream (alternately ``blind``: another nonce's sequence as a
clean response, ``bench.illum_bits.blind_face``; ``short``: 3-frame steps of random colours), then:

* the grid: every direction of ``grid()`` (points of a 600-point Fibonacci sphere that ``_room_direction`` takes
  for a light, and review 28's 19 listed ones: 97), screened at once (``screen``: the plane path's own fit and
  decoding with the injector's direction as the estimate; no course needed, the light along it vanishes there);
* the refinement, where the grid came within ``NEAR`` wrong decodes: ``REFINE`` directions around each of its
  ``BEST`` best, screened too;
* the read: every direction screened with no wrong decode (at most ``CONFIRM``) under ``COURSES`` courses
  (``bench.room_plane_injector.room``: 1-3 steps of 1-3 times the gain, or a fan's pulse every frame), each read by
  ``_room_plane`` at ``SEPARATION`` (default ``ROOM_PLANE_MIN_SEPARATION`` 5) and a pass confirmed by
  ``verify_illumination`` (detail ``PLANE_PASSED``; printed with the window's steps and stream).

The window counts as passed when any read passes (an upper bound on an injector that must fix its choice without the
nonce). Printed per stream: windows passed, footholds (a direction screened right), directions read, the windows by
the fewest wrong decodes screened, and the Clopper-Pearson upper 95 % bound.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from agent.liveness import challenge
from agent.liveness.challenge import (
    ILLUMINATION_CROSSTALK,
    ILLUMINATION_MAX_LAG,
    ILLUMINATION_NOISE_SPREAD,
    ILLUMINATION_STEP_NOISE,
    PLANE_PASSED,
    ROOM_PLANE_DRIFT_DEGREE,
    ROOM_PLANE_MIN_SEPARATION,
    ROOM_PLANE_PAIRS,
    SequenceResult,
    Step,
    _drift,
    _lag_windows,
    _light_without_a_channel,
    _room_plane,
    illumination_steps,
    verify_illumination,
)
from bench.challenge_stats import clopper_pearson_upper
from bench.illum_bits import BLIND_GAIN, blind_face
from bench.room_plane_injector import DIRECTIONS, room
from bench.shadow_injector import colours

STREAMS = ("blind", "short")
# The refinement runs where the grid's screen came within NEAR wrong decodes: REFINE directions around each of
# its BEST best; at most CONFIRM directions screened right are read by ``_room_plane``, COURSES courses each.
NEAR, BEST, REFINE, CONFIRM, COURSES = 3, 5, 40, 10, 20
# Review 28's six extra directions (a channel at zero), beside ``DIRECTIONS``: its 19 listed ones.
_EXTRA = ((1, 0.4, 0), (1, 1, 0), (0, 1, 1), (1, 0, 1), (0.4, 1, 0), (1, 0.27, 0))
_BITS = np.array([4, 2, 1])


def grid(points: int = 600) -> np.ndarray:
    """(k, 3) unit directions: a Fibonacci sphere of ``points`` kept where no component is below -0.02 (a light's
    colour: ``_room_direction`` takes no other), then review 28's 19 listed directions."""
    i = np.arange(points) + 0.5
    z = 1 - 2 * i / points
    phi = np.pi * (1 + 5 ** 0.5) * i
    r = np.sqrt(1 - z * z)
    pts = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    listed = [np.asarray(d, float) / np.linalg.norm(d) for d in _EXTRA]
    out = np.concatenate([pts[np.all(pts > -0.02, axis=1)], np.array(list(DIRECTIONS) + listed)])
    return out[[light(a) for a in out]]


def light(a: np.ndarray) -> bool:
    """Is ``a`` a direction ``_room_direction`` takes for a room light's (every component positive, or one at
    zero)?"""
    return bool(np.all(a > 0) or _light_without_a_channel(a))


def plane(steps: tuple[Step, ...], y: np.ndarray, separation: float) -> SequenceResult | None:
    """``_room_plane`` as ``verify_illumination`` calls it, at ``separation``."""
    return _room_plane(steps, y, ILLUMINATION_MAX_LAG, separation, ILLUMINATION_STEP_NOISE,
                       ILLUMINATION_NOISE_SPREAD, ILLUMINATION_CROSSTALK)


def plane_basis(dirs: np.ndarray) -> np.ndarray:
    """(D, 3, 2) an orthonormal basis of the plane across each unit direction of ``dirs``."""
    helper = np.where(np.abs(dirs[:, :1]) < 0.9, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]))
    u = np.cross(dirs, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return np.stack([u, np.cross(dirs, u)], axis=2)


def across(yl: np.ndarray, x: np.ndarray, idx: np.ndarray, basis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``challenge._across`` (degree ``ROOM_PLANE_DRIFT_DEGREE``) for many directions at once, in each plane's
    ``basis`` (D, 3, 2): (D, 3) the gains and (D, m, 2) the drift in the plane on every frame. The fit in full
    colour leaves the drift along the direction free (the minimum-norm solution sets it); the gains and the drift
    across it are the same least squares in the plane's two coordinates (normal equations, batched;
    ``tests/bench/test_plane_search.py`` holds it to ``_across``)."""
    m = len(yl)
    every = _drift(np.arange(m) / m, ROOM_PLANE_DRIFT_DEGREE)                       # (m, terms)
    f, terms = every[idx], every.shape[1]
    k, d = idx.size, len(basis)
    w = yl[idx] @ basis                                                            # (D, k, 2)
    rows = np.zeros((d, k, 2, 2 * terms + 3))
    for i in range(2):
        rows[:, :, i, i * terms:(i + 1) * terms] = f[None]
        rows[:, :, i, 2 * terms:] = basis[:, None, :, i] * x[idx][None]
    rows = rows.reshape(d, 2 * k, -1)
    rt = rows.transpose(0, 2, 1)
    coef = (np.linalg.pinv(rt @ rows, hermitian=True) @ (rt @ w.reshape(d, -1, 1)))[..., 0]  # pinv: a singular fit too
    base = every @ coef[:, :2 * terms].reshape(d, 2, terms).transpose(0, 2, 1)
    return coef[:, 2 * terms:], base


def screen(steps: tuple[Step, ...], face: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """(D,) per direction the fewest compared frames, over the lags ``_room_plane`` reads, that the plane across it
    decodes to another colour than the sequence's: the plane path's decoding with the room light's direction taken
    as the injector's own, which a course larger than the noise makes ``_room_direction``'s estimate (the light
    along it vanishes in the plane, so the screen needs no course). As ``_room_plane``: ``across``' fit (every gain
    positive, else all of the lag's frames wrong), the plane's axes the principal directions of the within-step
    changes across the direction, each axis in its own noise units (their RMS, at most ``ILLUMINATION_NOISE_SPREAD``
    times the noise their median implies), and each compared frame the nearest palette colour there; and the same
    with one noise for both axes, the larger (a course not quite along the direction leaks into the plane and moves
    the noise the path measures; the fewer wrong of the two)."""
    palette = ((np.arange(8)[:, None] & _BITS) > 0).astype(np.float64)
    basis = plane_basis(dirs)
    fewest = np.full(len(dirs), len(face))
    for _lag, yl, x, _s, care, pair in _lag_windows(steps, face, ILLUMINATION_MAX_LAG):
        if np.count_nonzero(pair) < ROOM_PLANE_PAIRS:
            continue
        idx = np.flatnonzero(care)
        gains, base = across(yl, x, idx, basis)
        w = (yl[1:] - yl[:-1])[pair] @ basis                                           # (D, p, 2)
        axes = np.linalg.eigh(w.transpose(0, 2, 1) @ w)[1]                             # (D, 2, 2) principal axes
        w = w @ axes
        rms = np.sqrt(np.mean(w * w, axis=1) / 2.0)
        med = 1.4826 * np.median(np.abs(w), axis=1) / np.sqrt(2.0)
        sigma = np.maximum(np.minimum(rms, ILLUMINATION_NOISE_SPREAD * med), 1e-12)   # (D, 2)
        one = np.repeat(sigma.max(axis=1, keepdims=True), 2, axis=1)
        for s in (sigma, one):
            scaled = (basis @ axes) / s[:, None, :]                                    # (D, 3, 2)
            pts = (gains[:, None, :] * palette[None]) @ scaled                         # (D, 8, 2)
            seen = ((yl[idx] @ basis - base[:, idx]) @ axes) / s[:, None, :]           # (D, k, 2)
            decoded = np.argmin(((seen[:, :, None] - pts[:, None]) ** 2).sum(axis=3), axis=2)
            wrong = np.count_nonzero(decoded != ((x[idx] > 0.5) @ _BITS)[None], axis=1)
            fewest = np.minimum(fewest, np.where(np.all(gains > 0, axis=1), wrong, idx.size))
    return fewest


def compared_steps(steps: tuple[Step, ...], n: int, lag: int) -> int:
    """How many steps have a settled frame among the first ``n - lag`` (the steps a lag compares)."""
    return sum(1 for st in steps if st.frames > 1 and st.start + 1 < n - lag)


def window(steps: tuple[Step, ...], face: np.ndarray, rng: np.random.Generator, separation: float,
           directions: np.ndarray, floors: int = 0) -> tuple[bool, int, int]:
    """One window searched: (passed at ``separation``, the fewest wrong decodes the screen reached, the directions
    ``_room_plane`` read). The grid screened; where it came within ``NEAR`` wrong decodes, ``REFINE`` directions
    around each of its ``BEST`` best screened again; every direction screened with no wrong decode (at most
    ``CONFIRM`` of them, best first) read by ``_room_plane`` under ``COURSES`` drawn courses.

    ``floors`` (review 30: the plane path and bar29's step floors together): the screen's best direction is read
    under ``floors`` more courses whatever it screened, each along it with a light bar's flash groups and, half of
    the time, dark frames (``bench.floor_search.course``'s, the direction fixed), and every read passes by either
    path (``_room_plane`` or ``_step_floor``, confirmed by ``verify_illumination``)."""
    from bench.floor_search import course, passes  # here: bench.floor_search imports this module

    wrong = screen(steps, face, directions)
    if wrong.min() <= NEAR:
        around = directions[np.argsort(wrong, kind="stable")[:BEST]]
        more = np.abs(np.repeat(around, REFINE, axis=0) + rng.normal(0, 0.08, (BEST * REFINE, 3)))
        more /= np.linalg.norm(more, axis=1, keepdims=True)
        more = more[[light(a) for a in more]]
        directions = np.concatenate([directions, more])
        wrong = np.concatenate([wrong, screen(steps, face, more)])
    read = 0
    reads = [(a, False) for a in directions[wrong == 0][:CONFIRM] for _ in range(COURSES)]
    reads += [(directions[int(np.argmin(wrong))], True)] * floors
    for a, flashed in reads:
        read += 1
        if flashed:
            y = course(face, rng, a[None])
            if passes(steps, y):
                print(f"  passed by the floors: direction {np.round(a, 3).tolist()}; steps "
                      f"{[(st.start, st.frames, st.rgb) for st in steps]}; stream {np.round(y, 6).tolist()}",
                      flush=True)
                return True, int(wrong.min()), read
        else:
            y = face + room(len(face), rng, BLIND_GAIN)[:, None] * a
        if plane(steps, y, separation) is not None:
            v = verify_illumination(steps, y)
            if v.passed and v.detail == PLANE_PASSED:
                print(f"  passed: direction {np.round(a, 3).tolist()}, lag {v.lag_frames}, {v.checked} frames and "
                      f"{compared_steps(steps, len(face), v.lag_frames)} steps compared, separation "
                      f"{v.separation:.2f}; steps {[(st.start, st.frames, st.rgb) for st in steps]}; stream "
                      f"{np.round(y, 6).tolist()}", flush=True)
                return True, int(wrong.min()), read
    return False, int(wrong.min()), read


@dataclass
class Tally:
    """One stream's counts: windows, passes, footholds (windows where some direction screened with no wrong
    decode), directions ``_room_plane`` read, and the windows by the fewest wrong decodes the screen reached."""

    windows: int = 0
    passed: int = 0
    footholds: int = 0
    read: int = 0
    wrong: list[int] = field(default_factory=lambda: [0] * 33)


def run(windows: int, frames: int = 32, seed: int = 29, separation: float = ROOM_PLANE_MIN_SEPARATION,
        floors: int = 0) -> dict[str, Tally]:
    """Every stream's counts over ``windows`` seeded windows (the streams alternate)."""
    rng = np.random.default_rng(seed)                 # the windows: the same whatever the search draws
    search = np.random.default_rng(seed + 1_000_003)  # the refinement's directions and the courses
    directions = grid()
    out = {k: Tally() for k in STREAMS}
    for w in range(windows):
        kind = STREAMS[w % 2]
        steps = illumination_steps(rng.bytes(32), frames)
        if kind == "blind":
            x = colours(illumination_steps(rng.bytes(32), frames), frames)
        else:
            x = np.repeat(((rng.integers(0, 8, (frames + 2) // 3)[:, None] & _BITS) > 0).astype(float), 3,
                          axis=0)[:frames]
        face = blind_face(x, rng, BLIND_GAIN / 20.0)
        hit, wrong, read = window(steps, face, search, separation, directions, floors)
        c = out[kind]
        c.windows += 1
        c.passed += hit
        c.footholds += wrong == 0
        c.read += read
        c.wrong[min(wrong, 32)] += 1
        if hit:
            print(f"hit: window {w} ({kind}), seed {seed}", flush=True)
        if (w + 1) % 1000 == 0:
            print(f"{w + 1} windows: " + ", ".join(f"{k} passed {t.passed} footholds {t.footholds}"
                                                  for k, t in out.items()), flush=True)
    return out


def _main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 6:
        print(__doc__)
        return 2
    windows = int(argv[0])
    frames = int(argv[1]) if len(argv) > 1 else 32
    seed = int(argv[2]) if len(argv) > 2 else 29
    separation = float(argv[3]) if len(argv) > 3 else ROOM_PLANE_MIN_SEPARATION
    if len(argv) > 4:
        challenge.ROOM_PLANE_MIN_BITS = int(argv[4])
    floors = int(argv[5]) if len(argv) > 5 else 0
    print(f"ROOM_PLANE_MIN_BITS {challenge.ROOM_PLANE_MIN_BITS}, step-floor courses {floors}", flush=True)
    print(f"{len(grid())} directions in the grid", flush=True)
    for kind, c in run(windows, frames, seed, separation, floors).items():
        near = {k: v for k, v in enumerate(c.wrong) if v}
        print(f"{kind:5s} {frames} fs seed {seed} separation {separation:g}: passed {c.passed}/{c.windows} "
              f"(footholds {c.footholds}, directions read by _room_plane {c.read}; windows by the fewest wrong "
              f"decodes screened {near}), upper 95 % {clopper_pearson_upper(c.passed, c.windows):.5f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
