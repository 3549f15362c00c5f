"""review 30's search of bar29's step floors (``bench.floor_search``): its parts held to ``_step_floor`` itself."""

from __future__ import annotations

import numpy as np
import pytest

from agent.liveness import challenge as C
from bench import floor_search as F
from bench import plane_search as P
from bench.illum_bits import BLIND_GAIN, blind_face
from bench.shadow_injector import colours

_BITS = np.array([4, 2, 1])


def _flashed(seed: int, own: bool = True) -> tuple[tuple[C.Step, ...], np.ndarray]:
    """A full window and a clean response (to its own sequence, or another nonce's) one frame late, with a white
    flash of three gains on the third frame of the first two steps of four frames or more (never a step's only
    compared frame: its floor stays the screen's; two, so that the noise from the median change is the stream's)."""
    rng = np.random.default_rng(seed)
    steps = C.illumination_steps(rng.bytes(32), 32)
    shown = steps if own else C.illumination_steps(rng.bytes(32), 32)
    y = blind_face(np.vstack([np.zeros((1, 3)), colours(shown, 32)[:-1]]), rng, BLIND_GAIN / 20.0)
    for st in [st for st in steps if st.frames >= 4 and st.start + 3 < 32][:2]:
        y[st.start + 3] += 3 * BLIND_GAIN
    return steps, y


def _coloured(steps: tuple[C.Step, ...], ids: np.ndarray, code: np.ndarray) -> tuple[C.Step, ...]:
    """``steps``' timing with the steps ``ids`` coloured ``code`` (4 R + 2 G + B), the others as they were."""
    out = list(steps)
    for j, c in zip(ids, code, strict=True):
        r, g, b = (float(v) for v in (int(c) & _BITS) > 0)
        out[j] = C.Step(steps[j].start, steps[j].frames, (r, g, b))
    return tuple(out)


@pytest.mark.parametrize("seed", range(4))
def test_the_colourings_listed_are_those_the_rule_passes(seed):
    """Every colouring ``labellings`` lists for a stream passes ``_step_floor`` when it is the nonce's; the nonce's own
    colouring, which passes, is listed; and a colouring changed in one listed step's colour (to one still unlike its
    neighbours) no longer passes at that lag unless it is listed there too."""
    steps, y = _flashed(seed)
    assert C._step_floor(steps, y, C.ILLUMINATION_MAX_LAG, C.ROOM_PLANE_MIN_SEPARATION) is not None
    listed = list(F.labellings(steps, y))
    assert listed
    own = {lag for lag, ids, code in listed
           if np.array_equal(code, (np.array([steps[j].rgb for j in ids]) > 0.5) @ _BITS)}
    assert own
    rng = np.random.default_rng(seed + 40)
    at = {(lag, tuple(ids), tuple(code)) for lag, ids, code in listed}
    for lag, ids, code in listed[:: max(1, len(listed) // 12)]:
        coloured = _coloured(steps, ids, code)
        r = C._step_floor(coloured, y, C.ILLUMINATION_MAX_LAG, C.ROOM_PLANE_MIN_SEPARATION)
        assert r is not None and r.lag_frames <= lag
        j = int(rng.integers(1, len(ids) - 1))
        other = code.copy()
        other[j] = next(c for c in range(8) if c not in (code[j - 1], code[j], code[j + 1]))
        if (lag, tuple(ids), tuple(other)) not in at:
            r = C._step_floor(_coloured(steps, ids, other), y, lag, C.ROOM_PLANE_MIN_SEPARATION)
            assert r is None or r.lag_frames < lag or (r.lag_frames, tuple(ids), tuple(other)) in at


def test_a_blind_stream_is_far_from_the_rule_and_its_chance_small():
    """Another nonce's sequence, flashed alike: never passes, some floor decoded wrong at every lag, and the chance
    that a fresh colouring of the window's timing passes it is far below one in a thousand."""
    total = 0.0
    for seed in range(12):
        steps, y = _flashed(seed, own=False)
        assert not F.passes(steps, y)
        assert F.wrong_floors(steps, y) > 0
        total += F.chance(steps, y)
    assert total / 12 < 1e-3


def test_a_genuine_window_decodes_with_no_wrong_floor():
    """(Two flashes: bar28's flash frames pass it before the floors are read, so ``passes``, which counts the
    floors' passes alone, is False.)"""
    steps, y = _flashed(2)
    assert F.wrong_floors(steps, y) == 0
    assert C._step_floor(steps, y, C.ILLUMINATION_MAX_LAG, C.ROOM_PLANE_MIN_SEPARATION) is not None
    assert C.verify_illumination(steps, y).passed and not F.passes(steps, y)


def test_the_plane_search_reads_the_step_floors_courses_beside_its_own():
    """``plane_search.window(floors=N)`` reads N more courses (flash groups, dark frames) along the screen's best
    direction, by both paths: a blind window with no foothold reads exactly N."""
    steps, y = _flashed(5, own=False)
    dirs = P.grid()
    assert P.screen(steps, y, dirs).min() > 0
    passed, _wrong, read = P.window(steps, y, np.random.default_rng(1), C.ROOM_PLANE_MIN_SEPARATION, dirs, floors=3)
    assert not passed and read == 3
    assert P.window(steps, y, np.random.default_rng(1), C.ROOM_PLANE_MIN_SEPARATION, dirs)[2] == 0
