"""A person's shoulders and torso under the head, in clothing: what a kiosk camera sees below a face.

The torso is drawn as a cut-out bent around a vertical axis (``render.Plane`` with a bend): an
elliptic cylinder as wide as the shoulders whose outline is the neck base, the trapezius slope and
the rounded deltoids, standing a few centimetres ahead of the neck. It is large and smooth and far
from the face, so the closed-form cylinder replaces ray marching (a marched torso cost more than the
whole face); what it leaves out: the shoulder tops do not curve away in depth.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .head import clothing
from .identity import Identity
from .render import Plane
from .subject import CLOTH, MISS, grid, value_noise

TORSO_RES_M = 0.0015
TORSO_X = (-0.27, 0.27)
TORSO_Y = (0.10, 0.62)


def torso_height(ident: Identity, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    k = ident.face_width_m / 0.154
    L = ident.length
    half = 0.205 * k                         # half the shoulder breadth (deltoids)
    neck_base = 0.128 * L
    ax = np.abs(gx)
    # Upper outline: neck base, then the trapezius slope, then the rounded deltoid.
    top = neck_base + 0.26 * np.clip(ax - 0.05, 0, None)
    top = np.where(ax > half - 0.03, top + (ax - (half - 0.03)) ** 2 / 0.05, top)
    body = 0.02 + 0.035 * np.clip((gy - neck_base) / 0.12, 0, 1) - 1.1 * gx * gx
    # The collar wraps the neck closely; the shoulder tops round off over 5 cm.
    r_top = np.where(ax < 0.07, 0.015, 0.05)
    d = np.clip((gy - top) / r_top, 0, 1)
    rounded = body - r_top * (1 - np.sqrt(np.clip(1 - (1 - d) ** 2, 0, 1)))
    side = half + 0.02 - ax                   # arms hang a little outside the deltoids
    r_side = 0.035
    e = np.clip(side / r_side, 0, 1)
    rounded = rounded - r_side * (1 - np.sqrt(np.clip(1 - (1 - e) ** 2, 0, 1)))
    inside = (gy >= top) & (side > 0)
    return np.where(inside, rounded, MISS).astype(np.float32)


# Chest: the cylinder's front stands this far ahead of the head frame's z = 0 plane and curves back
# by BEND_C at the arms (the head frame's face front is ~0.11 m ahead of z = 0).
CHEST_FRONT_M = 0.045
BEND_C = 0.09


@lru_cache(maxsize=8)
def torso(ident: Identity) -> Plane:
    gx, gy = grid(TORSO_X, TORSO_Y, TORSO_RES_M)
    h = torso_height(ident, gx, gy)
    bgr, nir_base, name = clothing(ident)
    fabric = value_noise(gx.shape, 1.2, ident.texture_seed + 41)
    folds = value_noise(gx.shape, 18, ident.texture_seed + 42)
    shade = 1 + 0.03 * fabric + 0.10 * folds
    albedo = bgr[None, None, :] * shade[..., None]
    nir = nir_base * (1 + 0.02 * fabric + 0.06 * folds)
    if "suit" in name:
        # A jacket open over a white shirt: the V narrows toward the neck.
        neck_base = 0.128 * ident.length
        v = np.abs(gx) < 0.07 * np.clip((gy - neck_base) / 0.16, 0.15, 1)
        albedo = np.where(v[..., None], np.array([0.68, 0.70, 0.69], np.float32) * shade[..., None], albedo)
        nir = np.where(v, 0.80, nir)
    alpha = (h > MISS / 2).astype(np.float32)
    return Plane(alpha, albedo.astype(np.float32), nir.astype(np.float32), TORSO_RES_M,
                 float(gx[0, 0]), float(gy[0, 0]), CLOTH.dot_blur_px,
                 bend_a=float(-TORSO_X[0]), bend_c=BEND_C)
