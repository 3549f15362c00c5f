"""A cornea's glint on the eye discs (issue 14, twenty-fifth session, eyecue25): a living eye's cornea
mirrors the projector as one unspread point per eye (drivers/sim/cornea.py), as bright as the brightest
dots there, which the dots' sharpness over the eyes (``projector_sharpness_eyes``) read as paper's kind
of dot. Each eye's brightest compact spot is taken out of the discs (``without_eye_glints``); a printed
eye keeps its dozens of sharp dots, a painted glint or not (docs/liveness.md, "A cornea's glint on the
eye discs, taken out").

Synthetic images, as ``test_eye_discs``: a sparse dot pattern (spots of 0.55 px), skin spreading part of
each dot, paper none, on the eight discs of an eye 72 px from the other (a D415 at 400 mm); a glint is
a point through the lens (0.5 px) at each pupil, twice the eye's brightest dots."""

from __future__ import annotations

import cv2
import numpy as np

from agent.liveness.features import EYE_RADIUS_IPD, EYE_SPOT_MAX_PX, pair_light, without_eye_glints
from agent.quality.metrics import discs_mask

IPD_PX = 72.0
SHAPE = (110, 170)
SKIN_MIX = 0.44                      # the simulator's share of each dot skin spreads (docs/sim.md)


def eye_discs() -> np.ndarray:
    cy, cx = SHAPE[0] / 2, SHAPE[1] / 2
    pts = []
    for side in (-1, 1):
        ex = cx + side * IPD_PX / 2
        pts += [(ex - 0.23 * IPD_PX, cy), (ex + 0.23 * IPD_PX, cy),
                (ex, cy - 0.045 * IPD_PX), (ex, cy + 0.045 * IPD_PX)]
    return discs_mask(SHAPE, np.array(pts), EYE_RADIUS_IPD * IPD_PX)


def pair(seed: int, surface: str, glint: float) -> tuple[np.ndarray, np.ndarray]:
    """(lit, unlit) frames: the dots on ``surface`` and, at each pupil, a point ``glint`` times the
    discs' brightest dots (their 99.5th percentile)."""
    h, w = SHAPE
    rng = np.random.default_rng(seed)
    img = np.zeros(SHAPE, np.float32)
    n = int(h * w * 0.055)
    img[rng.integers(0, h, n), rng.integers(0, w, n)] = rng.uniform(0.6, 1.0, n)
    sharp = cv2.GaussianBlur(img, (0, 0), 0.55)
    lit = sharp * (1 - SKIN_MIX) + 1.9 * SKIN_MIX * cv2.GaussianBlur(sharp, (0, 0), 1.6) if surface == "skin" \
        else sharp
    brightest = float(np.percentile(lit[eye_discs()], 99.5))
    point = np.zeros(SHAPE, np.float32)
    for side in (-1, 1):
        point[h // 2 + 1, int(w / 2 + side * IPD_PX / 2) + 1] = 1.0
    spot = cv2.GaussianBlur(point, (0, 0), 0.5)
    lit = lit + 0.25 + glint * brightest * spot / spot.max()
    return (10 + 150 * lit).astype(np.float32), np.full(SHAPE, 10, np.float32)


def eyes_reading(seed: int, surface: str, glint: float) -> float:
    skin = np.zeros(SHAPE, bool)
    skin[2:14, 10:160] = True
    return pair_light(*pair(seed, surface, glint), skin, eyes=eye_discs()).eyes_sharpness


def test_a_glint_on_a_living_eye_does_not_move_it_toward_paper_and_a_painted_one_leaves_paper_paper() -> None:
    # Without the spot taken out the glints raised every face's reading by 0.04-0.10 (the cue's
    # live end is 1.312, its attack end 1.325); with it, no face reads sharper for its glints.
    for seed in range(6):
        plain, glinted = eyes_reading(seed, "skin", 0.0), eyes_reading(seed, "skin", 2.0)
        assert glinted <= plain + 0.02, (seed, plain, glinted)
        # An attacker's printed eye with a bright dot painted at each pupil is still paper's.
        assert eyes_reading(seed, "paper", 2.0) > 2.0


def test_only_each_eyes_one_compact_spot_is_taken_out() -> None:
    on, off = pair(0, "paper", 2.0)
    eyes = eye_discs()
    _, _, kept, _, taken = without_eye_glints(on, off, eyes)
    # One point and its rim per eye, at the pupils; paper's other sharp dots all stay.
    assert 0 < taken <= 2 * (EYE_SPOT_MAX_PX + 9)
    gone = eyes & ~kept
    assert gone[SHAPE[0] // 2 + 1, int(SHAPE[1] / 2 - IPD_PX / 2) + 1]
    assert gone[SHAPE[0] // 2 + 1, int(SHAPE[1] / 2 + IPD_PX / 2) + 1]
    # A bright patch wider than a point (a lid's highlight, a lens's broad reflection) is not a glint.
    wide = on.copy()
    wide[eyes] = 10 + 150 * 0.3
    wide[50:58, 40:50] = 240.0
    _, _, kept, _, taken = without_eye_glints(wide, off, eyes)
    assert kept[50:58, 40:50][eyes[50:58, 40:50]].all()
