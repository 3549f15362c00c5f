"""The eye discs' size (issue 14, twenty-second session, eye22): the dots' sharpness over the eyes
(``projector_sharpness_eyes``) is read on eight discs around the eyes' corners and lids' middles. At
0.08 eye spacings they held a few dozen dots on the smaller faces (211-375 px on the D435s and the
Gemini 2s), and which dots fell there moved a face's reading as much as its surface did: train's
lives and printed eyes overlapped. At ``EYE_RADIUS_IPD`` (0.12) the train family separates again
(docs/liveness.md, "The eye discs at 0.12").

Synthetic images, as ``test_dot_sampling``: a sparse dot pattern (Gaussian spots of 0.55 px), a
surface spreading part of each dot (skin's share of a sigma-1.6 px blur), read on the eight discs
placed as the mesh places them on an eye 36 px from the other (seventh live/0's, a Gemini 2 at
0.5 m, in the IR imager's pixels)."""

from __future__ import annotations

import cv2
import numpy as np

from agent.liveness.detectors import evaluate
from agent.liveness.features import EYE_RADIUS_IPD, dot_shape
from agent.quality.metrics import discs_mask

SKIN_MIX = 0.44                      # the simulator's share of each dot skin spreads (docs/sim.md)
IPD_PX = 36.0


def eye_discs(shape: tuple[int, int], radius_ipd: float) -> np.ndarray:
    """Both eyes' corners (0.23 eye spacings either side of the pupil) and lids' middles (0.045 above
    and below), discs of ``radius_ipd`` eye spacings."""
    cy, cx = shape[0] / 2, shape[1] / 2
    pts = []
    for side in (-1, 1):
        ex = cx + side * IPD_PX / 2
        pts += [(ex - 0.23 * IPD_PX, cy), (ex + 0.23 * IPD_PX, cy),
                (ex, cy - 0.045 * IPD_PX), (ex, cy + 0.045 * IPD_PX)]
    return discs_mask(shape, np.array(pts), radius_ipd * IPD_PX)


def skin_reading(seed: int, radius_ipd: float) -> float:
    rng = np.random.default_rng(seed)
    h, w = 60, 90
    img = np.zeros((h, w), np.float32)
    n = int(h * w * 0.055)
    img[rng.integers(0, h, n), rng.integers(0, w, n)] = rng.uniform(0.6, 1.0, n)
    sharp = cv2.GaussianBlur(img, (0, 0), 0.55)
    surface = sharp * (1 - SKIN_MIX) + 1.9 * SKIN_MIX * cv2.GaussianBlur(sharp, (0, 0), 1.6) + 0.25
    return dot_shape(surface, eye_discs((h, w), radius_ipd))[0]


def test_the_eye_discs_hold_enough_dots_that_their_arrangement_moves_the_reading_less() -> None:
    # The same surface under 24 arrangements of its dots: on the judge's discs the reading spreads
    # less than on 0.08's (coefficient of variation 0.20 against 0.25 here).
    cv = lambda a: float(np.std(a) / np.mean(a))  # noqa: E731
    judged = np.array([skin_reading(k, EYE_RADIUS_IPD) for k in range(24)])
    small = np.array([skin_reading(k, 0.08) for k in range(24)])
    assert eye_discs((60, 90), EYE_RADIUS_IPD).sum() >= 1.5 * eye_discs((60, 90), 0.08).sum()
    assert cv(judged) < 0.225 < cv(small)


def _summary(eyes_sharpness: float) -> dict[str, float]:
    # A face with its own eye recess (a live one, or a band pressed onto it): the dots decide.
    return {"eye_recess_mm": 15.0, "projector_sharpness_eyes": eyes_sharpness}


def test_the_eye_dots_ramp_is_fitted_on_the_wider_discs() -> None:
    # Train's lives on the 0.12 discs read up to 1.320 (55 lives), their 99th percentile 1.312; its
    # printed eyes from 1.325 (a pressed band cut at the lower lid; pad-eval's and the pressed bands
    # from 1.328): fit_ramp's "separable".
    assert evaluate(_summary(1.311), challenged=True).eye_region == 1.0
    highest = evaluate(_summary(1.320), challenged=True).eye_region
    assert highest is not None and 0.0 < highest < 1.0
    assert evaluate(_summary(1.3253), challenged=True).eye_region == 0.0
