"""The face measure bench's own measures (``bench/face_measure.py``): the sixteenth session's hybrid
(``hybrid_response``, measured, not the judge's: docs/liveness.md, *A face half in direct sun: the
hybrid measured, not adopted*) does what the bench's figures say of it, and the session models reach it."""

from __future__ import annotations

import numpy as np

from agent.liveness.challenge import Challenge, Kind, face_response, verify_illumination
from bench import challenge_stats as cs
from bench import face_measure as fm


def sunlit_face(c: Challenge, rng: np.random.Generator, sunlit: int, sd: float = 0.0005) -> np.ndarray:
    """(32, 16, 3) ``bench.face_measure sun``'s face: the screen 0.4 % of the light, 8 times less on
    ``sunlit`` random cells, each cell its own albedo, noise ``sd``."""
    x = c.colours()
    shown = np.vstack([np.zeros((1, 3)), x[:-1]])
    s = np.full((1, 16, 1), 0.004)
    s[:, rng.permutation(16)[:sunlit]] = 0.004 / 8
    rel = 1 + s * shown[:, None, :] + rng.normal(0, sd, (len(x), 16, 3))
    return rng.uniform(0.5, 1.5, (1, 16, 1)) * np.array([0.3, 0.22, 0.15]) * rel


def test_the_hybrid_keeps_a_face_mostly_in_the_sun_that_the_window_choice_loses():
    hybrid = window = 0
    for i in range(6):
        c = Challenge.from_nonce(bytes([60 + i]) * 32, 32, (Kind.ILLUMINATION,))
        g = sunlit_face(c, np.random.default_rng(60 + i), sunlit=11)
        hybrid += verify_illumination(c.steps, fm.hybrid_response(g)).passed
        window += verify_illumination(c.steps, face_response(g, "window")).passed
    assert hybrid == 6 and window <= 2, (hybrid, window)


def test_the_hybrid_leaves_out_cells_past_the_raw_bound_and_is_the_window_choice_when_most_are():
    c = Challenge.from_nonce(b"h" * 32, 32, (Kind.ILLUMINATION,))
    g = sunlit_face(c, np.random.default_rng(7), sunlit=0)
    # A 30 % dip on one cell for 8 frames (a hand): past the bound, out, so a further change of that
    # cell alone moves only the cells' level (the output's scale), not its shape.
    dipped = g.copy()
    dipped[10:18, 3] *= 0.7
    y = fm.hybrid_response(dipped)
    assert verify_illumination(c.steps, y).passed
    moved = dipped.copy()
    moved[20, 3] *= 1.001
    ratio = fm.hybrid_response(moved) / y
    assert np.ptp(ratio, axis=0).max() < 1e-12
    # The same change on every cell does move the shape (the check can fail).
    inside = dipped.copy()
    inside[20] *= 1.001
    assert np.ptp(fm.hybrid_response(inside) / y, axis=0).max() > 1e-4
    # 10 of 16 cells each with its own large change: at most 8 are left out, the 8 that depart least
    # kept, which is the window choice.
    rng = np.random.default_rng(8)
    wild = g * (1 + 0.05 * rng.normal(size=(32, 16, 1)) * (np.arange(16) < 10)[None, :, None])
    np.testing.assert_allclose(fm.hybrid_response(wild), face_response(wild, "window"), rtol=1e-12)
    holes = g.copy()
    holes[[0, 5]] = np.nan
    y = fm.hybrid_response(holes)
    assert np.all(np.isnan(y[[0, 5]])) and np.all(np.isfinite(np.delete(y, [0, 5], axis=0)))


def test_the_session_models_reach_the_benchs_own_measures():
    g = sunlit_face(Challenge.from_nonce(b"m" * 32, 32, (Kind.ILLUMINATION,)), np.random.default_rng(9), sunlit=10)
    assert cs.face_measure(g, "hybrid").tobytes() == fm.hybrid_response(g).tobytes()
    assert cs.face_measure(g, "snr").tobytes() == fm.snr_response(g).tobytes()
    assert cs.face_measure(g, "standardised").tobytes() == fm.standardised_response(g).tobytes()
    assert cs.face_measure(g, "window").tobytes() == face_response(g, "window").tobytes()


def test_the_snr_choice_keeps_a_face_mostly_in_the_sun_that_the_window_choice_loses():
    snr = window = 0
    for i in range(6):
        c = Challenge.from_nonce(bytes([70 + i]) * 32, 32, (Kind.ILLUMINATION,))
        g = sunlit_face(c, np.random.default_rng(70 + i), sunlit=11)
        snr += verify_illumination(c.steps, fm.snr_response(g)).passed
        window += verify_illumination(c.steps, face_response(g, "window")).passed
    assert snr == 6 and window <= 2, (snr, window)


def test_the_snr_choice_leaves_out_blinking_and_screen_blind_cells():
    c = Challenge.from_nonce(b"s" * 32, 32, (Kind.ILLUMINATION,))
    rng = np.random.default_rng(11)
    x = c.colours()
    shown = np.vstack([np.zeros((1, 3)), x[:-1]])
    t = np.linspace(-1, 1, 32)[:, None, None]
    share = np.full((1, 16, 1), 0.005)
    share[:, 12:] = 0.0                                            # 4 cells do not answer the screen
    rel = 1 + 0.01 * rng.normal(size=(1, 16, 1)) * t + share * shown[:, None, :] + rng.normal(0, 0.0005, (32, 16, 3))
    rel[10:18, 3:6] *= 0.9                                         # 3 cells blink, 10 % for 8 frames
    g = rng.uniform(0.5, 1.5, (1, 16, 1)) * np.array([0.3, 0.22, 0.15]) * rel
    y = fm.snr_response(g)
    assert verify_illumination(c.steps, y).passed
    level = g.mean(axis=0)
    keep = fm.snr_choice(g / level, np.arange(32) / 31, 8)
    assert not set(keep.ravel().tolist()) & {3, 4, 5, 12, 13, 14, 15}, keep
    # a cell outside the choice moved alone moves only the cells' level (the output's scale)
    moved = g.copy()
    moved[20, 4] *= 1.001
    assert np.ptp(fm.snr_response(moved) / y, axis=0).max() < 1e-12
    inside = g.copy()
    inside[20] *= 1.001
    assert np.ptp(fm.snr_response(inside) / y, axis=0).max() > 1e-4


def test_the_snr_choice_keeps_frames_without_a_face_empty_and_short_windows_to_the_window_choice():
    c = Challenge.from_nonce(b"n" * 32, 32, (Kind.ILLUMINATION,))
    g = sunlit_face(c, np.random.default_rng(12), sunlit=3)
    holes = g.copy()
    holes[[0, 7, 8]] = np.nan
    y = fm.snr_response(holes)
    assert np.all(np.isnan(y[[0, 7, 8]])) and np.all(np.isfinite(np.delete(y, [0, 7, 8], axis=0)))
    assert fm.snr_response(g).tobytes() == fm.snr_response(g.copy()).tobytes()
    # Too few frames with a face for a residual after the drift: the window choice's cells.
    few = g.copy()
    few[6:] = np.nan
    np.testing.assert_allclose(fm.snr_response(few), face_response(few, "window"), rtol=1e-12, equal_nan=True)
    assert np.all(np.isnan(fm.snr_response(np.full((5, 16, 3), np.nan))))
    assert fm.snr_response(np.zeros((0, 16, 3))).shape == (0, 3)
    # A cell never measured (dark) is never chosen over a measured one.
    dark = g.copy()
    dark[:, 2] = 0.0
    keep = fm.snr_choice(dark / np.where(dark.mean(axis=0) > 1e-9, dark.mean(axis=0), np.nan), np.arange(32) / 31, 8)
    assert 2 not in keep.ravel()
    assert np.all(np.isfinite(fm.snr_response(dark)))
