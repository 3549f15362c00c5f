"""review 29's searches (``bench.plane_search``, ``bench.flash_search``): their parts held to the verifier's own."""

from __future__ import annotations

import numpy as np

from agent.liveness import challenge as C
from bench import flash_search as F
from bench import plane_search as P
from bench.illum_bits import BLIND_GAIN, blind_face
from bench.shadow_injector import colours


def _window(seed: int, own: bool = False) -> tuple[tuple[C.Step, ...], np.ndarray]:
    rng = np.random.default_rng(seed)
    steps = C.illumination_steps(rng.bytes(32), 32)
    shown = steps if own else C.illumination_steps(rng.bytes(32), 32)
    return steps, blind_face(colours(shown, 32), rng, BLIND_GAIN / 20.0)


def test_the_batched_fit_is_the_plane_paths_fit():
    """``across`` (every direction at once, in the plane's coordinates) gives ``_across``' gains and its drift
    across the direction, to rounding."""
    steps, y = _window(3)
    dirs = P.grid()[::9]
    basis = P.plane_basis(dirs)
    lags = 0
    for _lag, yl, x, _s, care, _pair in C._lag_windows(steps, y, C.ILLUMINATION_MAX_LAG):
        idx = np.flatnonzero(care)
        gains, base = P.across(yl, x, idx, basis)
        for i, a in enumerate(dirs):
            _, _, g, b = C._across(yl, x, idx, a, C.ROOM_PLANE_DRIFT_DEGREE)
            np.testing.assert_allclose(gains[i], g, rtol=0, atol=1e-12)
            np.testing.assert_allclose(base[i], b @ basis[i], rtol=0, atol=1e-12)
        lags += 1
    assert lags == C.ILLUMINATION_MAX_LAG + 1


def test_the_grid_holds_only_directions_the_plane_path_takes_for_a_light():
    dirs = P.grid()
    assert len(dirs) > 19
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0)
    for a in dirs:
        assert np.all(a > 0) or C._light_without_a_channel(a)


def test_the_screen_finds_a_genuine_window_right_and_a_blind_one_wrong():
    """The nonce's own sequence decodes right across a light-like direction; another nonce's does not."""
    white = np.array([[1.0, 0.9, 0.8]]) / np.linalg.norm([1.0, 0.9, 0.8])
    steps, y = _window(4, own=True)
    assert P.screen(steps, y, white)[0] == 0
    steps, y = _window(4)
    assert P.screen(steps, y, white)[0] > 0


def test_the_flashes_are_the_frames_the_rule_leaves_out():
    """``flash`` makes each chosen run a bump the rule finds, and only those, on a blind stream."""
    rng = np.random.default_rng(5)
    tried = 0
    for seed in range(20):
        _, y = _window(seed)
        chosen = F.random_runs(len(y), rng)
        if not chosen.size:
            continue                                  # a draw whose first run did not fit its cap: no try
        assert F.flashable(chosen, len(y))
        np.testing.assert_array_equal(np.flatnonzero(C._flash_frames(F.flash(y, chosen, rng))), chosen)
        tried += 1
    assert tried >= 10


def test_what_the_rule_can_leave_out():
    n = 32
    assert F.flashable(np.array([1, 2, 4, 10, 11, 20, 22, 30]), n)
    assert not F.flashable(np.array([], dtype=np.intp), n)                       # at least one
    assert not F.flashable(np.arange(1, 19, 2), n)                               # 9 > 32 // 4
    assert not F.flashable(np.array([3, 4, 5]), n)                               # a run of 3
    assert not F.flashable(np.array([0, 5]), n) and not F.flashable(np.array([31]), n)   # the window's ends


def test_the_oracle_reads_the_frames_a_stream_got_wrong():
    """The nonce's own sequence is wrong nowhere; a stream with one step's colour changed is wrong on that step's
    settled frames at lag 0."""
    steps, _ = _window(6, own=True)
    x = colours(steps, 32)
    assert F.wrong_frames(x, steps, 32).size == 0
    st = steps[2]
    x[st.start:st.start + st.frames] = 1.0 - x[st.start:st.start + st.frames]
    np.testing.assert_array_equal(F.wrong_frames(x, steps, 32), np.arange(st.start + 1, st.start + st.frames))
