"""``metrics.face_snr``: the face's signal-to-noise ratio in linear light at the 60 px-IPD scale."""

from __future__ import annotations

import numpy as np
import pytest

from agent.quality import metrics as M


def face(level: float, sigma: float, ipd: float, gradient: float = 0.0, seed: int = 1):
    """A 3-channel 8-bit sRGB picture of skin at linear ``level`` with Gaussian noise ``sigma``
    (linear) and a left-to-right shading ``gradient`` (linear per pixel), and landmarks whose skin
    discs lie on it, for a face ``ipd`` px across the pupils."""
    size = int(4 * ipd)
    rng = np.random.default_rng(seed)
    x = np.arange(size, dtype=np.float64)[None, :] - size / 2
    lin = level + gradient * x + rng.normal(0.0, sigma, (size, size))
    enc = (M_encode(np.clip(lin, 0, 1)) * 255 + 0.5).astype(np.uint8)
    bgr = np.repeat(enc[..., None], 3, axis=2)
    lm = np.zeros((478, 3))
    angles = np.linspace(0, 2 * np.pi, len(M.SKIN_POINTS), endpoint=False)
    for k, a in zip(M.SKIN_POINTS, angles, strict=True):
        lm[k, :2] = size / 2 + ipd * np.cos(a), size / 2 + 0.8 * ipd * np.sin(a)
    return bgr, lm


def M_encode(lin: np.ndarray) -> np.ndarray:
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.power(lin, 1 / 2.4) - 0.055)


@pytest.mark.parametrize("level, snr", [(0.18, 8.0), (0.05, 12.0), (0.30, 25.0)])
def test_the_ratio_is_the_pictures_own_at_the_judged_scale(level, snr):
    bgr, lm = face(level, level / snr, 60.0)
    assert M.face_snr(bgr, lm, 60.0) == pytest.approx(snr, rel=0.15)


def test_a_larger_face_is_judged_at_the_same_scale():
    # Twice the pixels across the face: the 60 px-IPD picture averages 2x2 of them, halving the noise.
    bgr, lm = face(0.18, 0.18 / 6, 60.0)
    small = M.face_snr(bgr, lm, 60.0)
    bgr, lm = face(0.18, 0.18 / 6, 120.0)
    assert M.face_snr(bgr, lm, 120.0) / small == pytest.approx(2.0, rel=0.15)


def test_shading_across_the_face_is_not_noise():
    # A smooth gradient (light from one side) leaves no residual to the 3x3 mean: only the
    # 8-bit quantisation bounds the ratio.
    bgr, lm = face(0.18, 0.0, 60.0, gradient=0.0015)
    assert M.face_snr(bgr, lm, 60.0) > 40
    noisy, _ = face(0.18, 0.18 / 8, 60.0, gradient=0.0015)
    assert M.face_snr(noisy, lm, 60.0) == pytest.approx(8.0, rel=0.15)


def test_too_little_skin_in_the_frame_is_not_measured():
    # The discs lie off the picture: no figure (NaN), so the gate judges the face on other checks.
    bgr, lm = face(0.18, 0.01, 60.0)
    lm[:, :2] += 10 * bgr.shape[0]
    assert np.isnan(M.face_snr(bgr, lm, 60.0))
