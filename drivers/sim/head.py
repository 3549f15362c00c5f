"""A person's head, built from an ``Identity``: shape, skin, hair, beard, fringe and glasses.

Geometry is a height field in the head frame (metres; x right, y down, origin between the eyes and
the nose tip; the visible surface is ``z = -S(x, y)``): a flattened ellipsoid as wide as the face,
with nose, eye sockets, brow, cheeks, lips and chin whose sizes come from the identity, a hair shell
for the style, and a neck. The face texture is the one portrait we may ship
(``skimage.data.astronaut()``, public domain), warped so its eyes land at the identity's IPD and its
cheeks at the identity's face width, recoloured to the identity's Fitzpatrick type, and given
per-person skin detail; everything outside the face core (hair, helmet, background) is replaced by
the person's own skin and then painted with procedural hair, beard, fringe and spectacles.

What a single portrait cannot give: truly different facial features (eye shape, lips, the bone
structure of another person) — identities differ in proportions, relief, tone and accessories, not
in who they are. ``docs/sim.md`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from scipy.interpolate import PchipInterpolator

from .identity import (
    AGE_FOREHEAD_LINES,
    CLOTHING,
    HAIR_COLOURS,
    LIPSTICKS,
    MASKS,
    METALS,
    SCARVES,
    Identity,
    age_severity,
)
from .subject import (
    FRAME,
    GRID_RES_M,
    HAIR,
    MISS,
    PHOTO_EYES,
    PHOTO_M_PER_PX,
    PHOTO_MOUTH,
    PHOTO_NOSE,
    RESIN,
    SKIN,
    Surface,
    bald_textures,
    gauss,
    grid,
    photo_skin_bgr,
    value_noise,
)

HEAD_X = (-0.115, 0.115)
HEAD_Y = (-0.180, 0.215)
REF_IPD_M = 0.063
REF_WIDTH_M = 0.154
_PHOTO_EYE_MID = (0.5 * (PHOTO_EYES[0][0] + PHOTO_EYES[1][0]), 0.5 * (PHOTO_EYES[0][1] + PHOTO_EYES[1][1]))
_PHOTO_Y0 = 115.0          # photo row at the head frame's y = 0


@dataclass(frozen=True)
class Landmarks:
    """Key points of one head in its own frame (metres), after mirroring."""

    eyes: tuple[tuple[float, float], tuple[float, float]]
    nose: tuple[float, float]
    mouth: tuple[float, float]
    chin_y: float
    face_top_y: float
    lens_centres: tuple[tuple[float, float], tuple[float, float]] | None = None


@dataclass(frozen=True, eq=False)
class HeadLayers:
    """Everything known about one identity's head on the common head grid."""

    gx: np.ndarray
    gy: np.ndarray
    height: np.ndarray          # final surface (hair, beard, frames included), MISS outside
    face_height: np.ndarray     # skin surface only (dome, relief, neck): what a mask is fitted over
    albedo: np.ndarray
    closed: np.ndarray
    nir: np.ndarray
    eye_weight: np.ndarray
    mouth_weight: np.ndarray
    dot_blur: np.ndarray
    gloss: np.ndarray | None
    gloss_slope: np.ndarray | None
    landmarks: Landmarks
    identity: Identity
    gloss_nir_ratio: float = 1.0  # the lenses' 850 nm reflectance over their visible one (twelfth family)


def head_grid() -> tuple[np.ndarray, np.ndarray]:
    return grid(HEAD_X, HEAD_Y)


def landmarks(ident: Identity) -> Landmarks:
    L = ident.length
    m = PHOTO_M_PER_PX * L
    eye_y = (_PHOTO_EYE_MID[1] - _PHOTO_Y0) * m
    nose = (0.0, (PHOTO_NOSE[1] - _PHOTO_Y0) * m)
    mouth = (0.0, (PHOTO_MOUTH[1] - _PHOTO_Y0) * m)
    half = ident.ipd_m / 2
    return Landmarks(((-half, eye_y), (half, eye_y)), nose, mouth, chin_y=(181.0 - _PHOTO_Y0) * m,
                     face_top_y=eye_y - (0.036 + 0.022 * ident.hairline) * L)


def _photo_map(ident: Identity, gx: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Photo pixel coordinates for head-frame points: the photo's eyes land at the identity's IPD and
    its cheeks at the identity's face width, with a smooth monotone warp in between."""
    w_half, ref_w_half = ident.face_width_m / 2, REF_WIDTH_M / 2
    knots_x = [0.0, ident.ipd_m / 2, w_half, w_half + 0.06]
    knots_p = [0.0, REF_IPD_M / 2, ref_w_half, ref_w_half + 0.06 * ref_w_half / w_half]
    warp = PchipInterpolator(knots_x, knots_p, extrapolate=True)
    sx = -gx if ident.mirror else gx
    px = _PHOTO_EYE_MID[0] + np.sign(sx) * warp(np.abs(sx)) / PHOTO_M_PER_PX
    py = _PHOTO_Y0 + gy / (PHOTO_M_PER_PX * ident.length)
    return px.astype(np.float32), py.astype(np.float32)


def _sample(img: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    return cv2.remap(img, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def dome(ident: Identity, gx: np.ndarray, gy: np.ndarray, grow: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(height, u) of the head's base ellipsoid, optionally grown by ``grow`` metres; u < 1 inside."""
    L = ident.length
    a = ident.face_width_m / 2 + grow
    b, c, yc = 0.112 * L + grow, 0.090 * (ident.face_width_m / REF_WIDTH_M) ** 0.5 + grow, -0.020 * L
    u = np.abs(gx / a) ** 2.3 + np.abs((gy - yc) / b) ** 2
    return np.where(u < 1, c * np.power(np.clip(1 - u, 0, 1), 1 / 2.3), MISS).astype(np.float32), u


def face_height(ident: Identity, gx: np.ndarray, gy: np.ndarray, *, with_neck: bool = True) -> np.ndarray:
    """Skin surface: the ellipsoid plus facial relief sized by the identity, and the neck."""
    k = ident.face_width_m / REF_WIDTH_M
    L = ident.length
    lm = landmarks(ident)
    (lx, ly), (rx, ry) = lm.eyes
    nx, ny = lm.nose
    mx, my = lm.mouth
    eye_y = ly
    base, u = dome(ident, gx, gy)
    # nose_m is the tip's relief over the base shape: the tip term plus the bridge's tail there.
    tip_y, bridge_y = ny - 0.002 * L, 0.5 * (ny + eye_y)
    amp = ident.nose_m / (1 + 0.55 * float(np.exp(-0.5 * ((tip_y - bridge_y) / (0.016 * L)) ** 2)))
    relief = (
        amp * gauss(gx, gy, nx, tip_y, 0.0085, 0.011 * L)                                  # nose tip
        + 0.55 * amp * gauss(gx, gy, nx, bridge_y, 0.0055, 0.016 * L)                      # bridge
        - ident.socket_m * (gauss(gx, gy, lx, ly, 0.013, 0.009) + gauss(gx, gy, rx, ry, 0.013, 0.009))  # sockets
        + ident.brow_m * gauss(gx, gy, 0.0, eye_y - 0.019 * L, 0.035 * k, 0.006)          # brow ridge
        + 0.006 * (gauss(gx, gy, -0.040 * k, ny, 0.014, 0.016) + gauss(gx, gy, 0.040 * k, ny, 0.014, 0.016))
        + 0.004 * gauss(gx, gy, mx, my, 0.013, 0.006)                                       # lips
        + ident.chin_m * gauss(gx, gy, mx, my + 0.040 * L, 0.014, 0.010)                   # chin
    )
    if ident.age_years is not None:
        relief = relief - aged_relief(ident, gx, gy)
    # Relief fades out toward the silhouette, late enough that the chin keeps its full projection.
    h = np.where(base > MISS / 2, base + relief * np.clip((1 - u) * 8, 0, 1), MISS)
    if with_neck:
        r = 0.055 * k
        # The neck runs down into the collar (the torso covers it from ~0.13 m below the eyes).
        neck = np.where((np.abs(gx) < r) & (gy > 0.05 * L) & (gy < 0.165 * L),
                        np.sqrt(np.clip(r * r - gx * gx, 0, None)) - 0.035, MISS)
        h = np.maximum(h, neck)
    return h.astype(np.float32)


def _groove(d: np.ndarray, depth_m: float, sigma_m: float) -> np.ndarray:
    """A line's groove across its perpendicular distance ``d``: Gaussian, ``depth_m`` at its bottom."""
    return depth_m * np.exp(-0.5 * (d / sigma_m) ** 2)


def _segment(gx, gy, x0: float, y0: float, x1: float, y1: float) -> tuple[np.ndarray, np.ndarray]:
    """(distance from the segment (x0, y0)-(x1, y1), position along it 0..1, unclipped) for every point."""
    dx, dy = x1 - x0, y1 - y0
    n = float(np.hypot(dx, dy))
    along = ((gx - x0) * dx + (gy - y0) * dy) / (n * n)
    across = ((gx - x0) * dy - (gy - y0) * dx) / n
    return np.abs(across), along


def _ends(along: np.ndarray) -> np.ndarray:
    """A line's depth along it: full in its middle, fading over its first and last fifth (0 outside)."""
    return np.clip(np.minimum(along, 1.0 - along) * 5.0, 0.0, 1.0)


def aged_relief(ident: Identity, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """The eighteenth family's older face (identity.AGE_*): what its ageing takes off the skin's height
    (metres, positive inwards): forehead lines, crow's feet, nasolabial folds, the cheeks' lost fullness
    and the hollow under the cheekbones. The lines' count, spacing, tilt and waviness from the person's
    texture seed; their depths from the age's severity times the photo-ageing factor."""
    assert ident.age_years is not None
    s, p = age_severity(ident.age_years), ident.age_photo
    k, L = ident.face_width_m / REF_WIDTH_M, ident.length
    lm = landmarks(ident)
    (lx, ly), (rx, _ry) = lm.eyes
    nx, ny = lm.nose
    mx, my = lm.mouth
    rng = np.random.default_rng([ident.texture_seed, 18])
    out = np.zeros(gx.shape, np.float32)
    # Forehead lines: 3-5 furrows from 12 mm above the brows upwards, each gently arched and wavy.
    lines = int(rng.integers(AGE_FOREHEAD_LINES[0], AGE_FOREHEAD_LINES[1] + 1))
    brow_y = ly - 0.019 * L
    y = brow_y - 0.012
    width = 0.040 * k
    for _ in range(lines):
        arch, wave, phase = rng.uniform(2.0, 6.0), rng.uniform(0.0004, 0.0012), rng.uniform(0.0, 2 * np.pi)
        centre = y + arch * gx * gx + wave * np.sin(gx / 0.012 + phase)
        envelope = np.exp(-0.5 * (gx / width) ** 4)
        out += _groove(gy - centre, (0.00015 + 0.00030 * s) * p * float(rng.uniform(0.7, 1.0)), 0.0008) * envelope
        y -= float(rng.uniform(0.006, 0.010))
    # Crow's feet: 3 lines fanning out from each eye's outer corner (12-16 mm from the eye's centre).
    for ex, side in ((lx, -1.0), (rx, 1.0)):
        cx = ex + side * 0.016
        for angle in (-0.45, 0.0, 0.45):
            a = angle + float(rng.uniform(-0.12, 0.12))
            length = float(rng.uniform(0.008, 0.014))
            d, along = _segment(gx, gy, cx, ly, cx + side * length * np.cos(a), ly + length * np.sin(a))
            out += _groove(d, (0.00010 + 0.00020 * s) * p, 0.0006) * _ends(along)
    # Nasolabial folds: beside each nostril down to beside the mouth's corner.
    for side in (-1.0, 1.0):
        d, along = _segment(gx, gy, nx + side * 0.018 * k, ny, mx + side * 0.030 * k, my + 0.004 * L)
        out += _groove(d, (0.0005 + 0.0010 * s) * p, 0.0015) * _ends(along)
    # Thinner cheeks: part of the cheeks' 6 mm fullness (face_height) gone, and a hollow under the cheekbones.
    loss = 0.2 + 0.3 * s
    hollow = 0.0005 + 0.0015 * s
    for side in (-1.0, 1.0):
        out += 0.006 * loss * gauss(gx, gy, side * 0.040 * k, ny, 0.014, 0.016)
        out += hollow * gauss(gx, gy, side * 0.046 * k, ny + 0.018 * L, 0.010, 0.010)
    return out.astype(np.float32)


def eye_mouth_weights(ident: Identity, gx: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lm = landmarks(ident)
    (lx, ly), (rx, ry) = lm.eyes
    mx, my = lm.mouth
    eye = np.clip(gauss(gx, gy, lx, ly, 0.012, 0.007) + gauss(gx, gy, rx, ry, 0.012, 0.007), 0, 1)
    eye = np.clip(eye * 2.2, 0, 1)
    mouth = gauss(gx, gy, mx, my + 0.012 * ident.length, 0.022, 0.014)
    return eye.astype(np.float32), mouth.astype(np.float32)


@lru_cache(maxsize=1)
def _strand_noise() -> np.ndarray:
    """Noise stretched along one axis: sampled along a hair's direction it looks like strands."""
    rng = np.random.default_rng(4242)
    # Long along the rows: drawn on an eighth of the rows and stretched (the same statistics, cheaper).
    fine = cv2.GaussianBlur(rng.standard_normal((128, 1024)).astype(np.float32), (0, 0), sigmaX=0.9, sigmaY=5)
    clumps = cv2.GaussianBlur(rng.standard_normal((128, 1024)).astype(np.float32), (0, 0), sigmaX=6, sigmaY=7.5)
    fine = cv2.resize(fine, (1024, 1024), interpolation=cv2.INTER_LINEAR)
    clumps = cv2.resize(clumps, (1024, 1024), interpolation=cv2.INTER_LINEAR)
    n = fine / (fine.std() + 1e-6) + 0.8 * clumps / (clumps.std() + 1e-6)
    return np.clip(0.5 + 0.17 * n, 0, 1).astype(np.float32)


def _strands(u: np.ndarray, v: np.ndarray, seed: int) -> np.ndarray:
    """Strand texture: ``u`` across the hair (cells), ``v`` along it (cells)."""
    n = _strand_noise()
    off = np.random.default_rng(seed).uniform(0, 400, 2).astype(np.float32)
    return cv2.remap(n, (u + off[0]).astype(np.float32), (v + off[1]).astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_WRAP)


def _soft_superellipse(gx, gy, cx, cy, ax, ay, p, edge) -> np.ndarray:
    r = (np.abs((gx - cx) / ax) ** p + np.abs((gy - cy) / ay) ** p) ** (1 / p)
    return np.clip((1 - r) / edge, 0, 1).astype(np.float32)


def _skin_detail(ident: Identity, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-person skin variation: (visible factor, NIR factor). Melanin spots (freckles, moles)
    that are obvious in the visible all but vanish at 850 nm."""
    rng = np.random.default_rng(ident.texture_seed + 11)
    mottle = 1 + 0.035 * value_noise(shape, 14, ident.texture_seed + 12)
    spots = np.zeros(shape, np.float32)
    n_freckles = int(rng.integers(150, 500)) if ident.skin <= 2 and rng.random() < 0.5 else 0
    n_moles = int(rng.integers(0, 4))
    for n, r_rng, depth in ((n_freckles, (0.6, 1.4), 0.18), (n_moles, (1.6, 2.6), 0.55)):
        if n:
            ys, xs = rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)
            for y, x, r in zip(ys, xs, rng.uniform(*r_rng, n), strict=True):
                cv2.circle(spots, (int(x), int(y)), max(int(round(r)), 1), float(depth), -1, cv2.LINE_AA)
    soft = cv2.GaussianBlur(spots, (0, 0), 0.7)
    return (mottle * (1 - soft)).astype(np.float32), (1 + 0.2 * (mottle - 1)) * (1 - 0.08 * soft)


def _hair_layers(ident: Identity, gx, gy, face_h, lm: Landmarks):
    """(alpha, height, strand value) of scalp hair, fringe and beard; alpha 0..1."""
    L = ident.length
    k = ident.face_width_m / REF_WIDTH_M
    res_inv = 1.0 / GRID_RES_M
    nx, ny = lm.nose
    mx, my = lm.mouth
    eye_y = lm.eyes[0][1]
    rng = np.random.default_rng(ident.texture_seed + 21)
    # Face oval: where the photo's skin shows; hair everywhere else on the skull above the ears.
    top = lm.face_top_y
    bottom = lm.chin_y + 0.01
    face = _soft_superellipse(gx, gy, 0.0, 0.5 * (top + bottom), 0.43 * ident.face_width_m, 0.5 * (bottom - top),
                              2.4, 0.06)
    thick = {"short": (0.007, 0.006), "medium": (0.014, 0.012), "long": (0.018, 0.016)}[ident.hair_style]
    ear_y = ny + {"short": 0.0, "medium": 0.035, "long": 0.20}[ident.hair_style] * L
    ragged = 0.004 * value_noise(gx.shape, 6, ident.texture_seed + 22)
    below = np.clip((ear_y + ragged - gy) / 0.008, 0, 1)
    sides = np.clip((np.abs(gx) - 0.30 * ident.face_width_m) / 0.01, 0, 1)
    scalp_alpha = (1 - face) * np.where(gy < eye_y, 1.0, below * sides)
    shell, _ = dome(ident, gx, gy, grow=thick[1])
    base, _ = dome(ident, gx, gy)
    long_curtain = np.zeros_like(gx)
    if ident.hair_style == "long":
        # Hair falling beside the face and neck to the shoulders, about as far forward as the cheeks.
        lat = np.clip((np.abs(gx) - 0.36 * ident.face_width_m) / 0.01, 0, 1) * \
            np.clip((ident.face_width_m / 2 + thick[1] - np.abs(gx)) / 0.008, 0, 1)
        long_curtain = lat * np.clip((0.20 - gy) / 0.02, 0, 1) * (gy > 0).astype(np.float32)
        scalp_alpha = np.maximum(scalp_alpha, long_curtain)
    scalp_h = np.where(base > MISS / 2, base + thick[0], MISS)
    scalp_h = np.maximum(scalp_h, shell)
    scalp_h = np.where(long_curtain > 0, np.maximum(scalp_h, 0.018 + 0.01 * (1 - np.abs(gx) / 0.1)), scalp_h)
    scalp_h = np.maximum(scalp_h, face_h)
    # Strands flow outward and down from the crown.
    crown = (0.0, top - 0.05 * L)
    theta = np.arctan2(gx - crown[0], gy - crown[1])
    rad = np.hypot(gx - crown[0], gy - crown[1])
    scalp_s = _strands(theta * 900.0, rad * res_inv, ident.texture_seed + 23)

    fringe_alpha = np.zeros_like(gx)
    if ident.fringe:
        edge_y = eye_y - (0.020 + 0.008 * rng.random()) * L + 0.003 * value_noise(gx.shape, 3, ident.texture_seed + 24)
        fringe_alpha = np.clip((edge_y - gy) / 0.002, 0, 1) * np.clip((gy - (top - 0.03)) / 0.005, 0, 1) * \
            np.clip((0.40 * ident.face_width_m - np.abs(gx)) / 0.006, 0, 1) * (face_h > MISS / 2)
    fringe_s = _strands(gx * res_inv, gy * res_inv * 0.3, ident.texture_seed + 25)

    beard_alpha = np.zeros_like(gx)
    if ident.beard:
        density = float(rng.uniform(0.55, 0.97))
        if ident.beard_density is not None:
            density = ident.beard_density            # the tenth family's own (identity.py)
        lips = _soft_superellipse(gx, gy, mx, my, 0.026 * k, 0.0075 * L, 2.0, 0.3)
        jaw = np.clip((gy - (ny + 0.010 * L)) / 0.006, 0, 1) * np.clip((lm.chin_y + 0.025 - gy) / 0.01, 0, 1)
        cheek_edge = np.clip((gy - (ny - 0.004)) / 0.02, 0, 1)
        if ident.beard_rise_mm != 0.0:
            # The tenth family's cheek line: the beard's upper edge raised on the cheeks (not over the
            # nose and mouth: the lift fades in from 25 to 45 mm off the face's midline).
            lift = ident.beard_rise_mm / 1000.0 * np.clip((np.abs(gx) - 0.025) / 0.02, 0, 1)
            jaw = np.clip((gy - (ny + 0.010 * L - lift)) / 0.006, 0, 1) * np.clip((lm.chin_y + 0.025 - gy) / 0.01, 0, 1)
            cheek_edge = np.clip((gy - (ny - 0.004 - lift)) / 0.02, 0, 1)
        inside = np.clip((0.47 * ident.face_width_m - np.abs(gx)) / 0.008, 0, 1)
        patchy = np.clip(0.5 + 0.8 * value_noise(gx.shape, 4, ident.texture_seed + 26), 0, 1)
        beard_alpha = density * jaw * cheek_edge * inside * (1 - lips) * (0.6 + 0.4 * patchy)
        beard_alpha = np.where(gy > 0.05 * L, beard_alpha * (np.abs(gx) < 0.06), beard_alpha)
    beard_s = _strands(gx * res_inv, gy * res_inv * 0.5, ident.texture_seed + 27)
    return scalp_alpha.astype(np.float32), scalp_h, scalp_s, fringe_alpha.astype(np.float32), fringe_s, \
        beard_alpha.astype(np.float32), beard_s


def glasses_layers(ident: Identity, gx, gy, face_h, lm: Landmarks):
    """Spectacles: (frame mask, frame height, lens mask, lens height, lens slopes, optics)."""
    rng = np.random.default_rng(ident.texture_seed + 31)
    round_frame = rng.random() < 0.35
    lw, lh = (0.021, 0.020) if round_frame else (float(rng.uniform(0.023, 0.027)), float(rng.uniform(0.015, 0.020)))
    p = 2.0 if round_frame else 4.0
    eye_y = lm.eyes[0][1]
    cy = eye_y + 0.002
    centres = ((-ident.ipd_m / 2 - 0.001, cy), (ident.ipd_m / 2 + 0.001, cy))
    # The lens plane sits a little in front of the nose bridge, wrapped 6° around the face and
    # tilted 8° (pantoscopic: the lower rim nearer the cheeks), each lens a sphere of ~100 mm radius.
    j, i = int(round((eye_y - HEAD_Y[0]) / GRID_RES_M)), int(round(-HEAD_X[0] / GRID_RES_M))
    h_bridge = float(face_h[j, i])
    wrap, panto, radius = np.tan(np.deg2rad(6.0)), np.tan(np.deg2rad(8.0)), 0.10
    lens = np.zeros_like(gx)
    rim = np.zeros_like(gx)
    h_lens = np.full_like(gx, MISS)
    slope = np.zeros(gx.shape + (2,), np.float32)
    for cx, cyy in centres:
        r = (np.abs((gx - cx) / lw) ** p + np.abs((gy - cyy) / lh) ** p) ** (1 / p)
        inside = r < 1.0
        ring = (r >= 1.0) & (r < 1.12)
        dx, dy = gx - cx, gy - cyy
        h = h_bridge + 0.004 - wrap * np.abs(gx) - panto * dy - (dx * dx + dy * dy) / (2 * radius)
        sel = inside | ring
        h_lens = np.where(sel, h, h_lens)
        lens = np.where(inside, 1.0, lens)
        rim = np.where(ring, 1.0, rim)
        slope[..., 0] = np.where(inside, -wrap * np.sign(gx) - dx / radius, slope[..., 0])
        slope[..., 1] = np.where(inside, -panto - dy / radius, slope[..., 1])
    bridge = (np.abs(gx) < ident.ipd_m / 2 - lw + 0.002) & (np.abs(gy - (eye_y - 0.005)) < 0.0018)
    temples = (np.abs(gx) > ident.ipd_m / 2 + lw) & (np.abs(gy - (eye_y - 0.003)) < 0.0015) & \
        (np.abs(gx) < ident.face_width_m / 2 + 0.004)
    frame = (rim > 0) | bridge | temples
    frame_h = np.where(rim > 0, h_lens + 0.0015, MISS)
    frame_h = np.where(bridge, h_bridge + 0.0045, frame_h)
    frame_h = np.where(temples, face_h + 0.004, frame_h)
    tinted = ident.glasses == "tinted"
    optics = {
        # Dyed (CR-39 / polycarbonate) sunglass tints block most visible light but pass most 850 nm
        # light; clear lenses pass ~92 % of both. Uncoated lenses mirror ~4 % per surface, coated ~0.8 %.
        "t_vis": np.array(rng.choice([(0.20, 0.22, 0.24), (0.14, 0.22, 0.30), (0.16, 0.26, 0.20)]), np.float32)
        if tinted else np.full(3, 0.92, np.float32),
        "t_nir": float(rng.uniform(0.75, 0.92)) if tinted else 0.92,
        "gloss": 0.016 if rng.random() < 0.5 else 0.08,
        "frame_bgr": np.array(rng.choice([(0.02, 0.02, 0.02), (0.03, 0.05, 0.09), (0.30, 0.30, 0.32)]), np.float32),
        "frame_nir": float(rng.uniform(0.10, 0.60)),
    }
    optics["gloss_nir"] = optics["gloss"]
    if ident.lens_r_vis is not None and ident.lens_r_nir is not None:
        # The twelfth family's own lenses (identity.LENS_*): two surfaces' reflectance, visible and 850 nm.
        optics["gloss"], optics["gloss_nir"] = 2.0 * ident.lens_r_vis, 2.0 * ident.lens_r_nir
    return frame, frame_h.astype(np.float32), lens, h_lens.astype(np.float32), slope, optics, centres


def scarf_alpha(ident: Identity, gx: np.ndarray, gy: np.ndarray, lm: Landmarks) -> np.ndarray:
    """0..1: where the eleventh family's headscarf covers the head (everything but the face's oval: its
    top ``scarf_brow_mm`` below the face's top, its half width ``scarf_open`` x the face width, down to
    under the chin)."""
    top = lm.face_top_y + ident.scarf_brow_mm / 1000.0
    bottom = lm.chin_y + 0.02
    opening = _soft_superellipse(gx, gy, 0.0, 0.5 * (top + bottom), ident.scarf_open * ident.face_width_m,
                                 0.5 * (bottom - top), 2.4, 0.04)
    return (1.0 - opening).astype(np.float32)


def _fabric_over(alpha, bgr, fabric_nir: float, folds, tone: tuple[float, float], albedo, closed, nir, dot_blur):
    """A fabric (identity.SCARVES' colour ``bgr`` and 850 nm ``fabric_nir``) laid over the layers where ``alpha``:
    its colour x (tone[0] + tone[1] x folds), its 850 nm x (0.9 + 0.1 x folds), the dots blurred as by hair."""
    a3 = alpha[..., None]
    tex = np.array(bgr, np.float32) * (tone[0] + tone[1] * folds[..., None])
    albedo = albedo * (1 - a3) + tex * a3
    closed = closed * (1 - a3) + tex * a3
    nir = nir * (1 - alpha) + fabric_nir * (0.9 + 0.1 * folds) * alpha
    dot_blur = dot_blur * (1 - alpha) + HAIR.dot_blur_px * alpha
    return albedo, closed, nir, dot_blur


def _scarf_layer(ident: Identity, gx, gy, skin_h, lm: Landmarks, albedo, closed, nir, dot_blur, height):
    """The headscarf over skin and hair: its fabric's colour and 850 nm reflectance (identity.SCARVES),
    soft folds, standing ``scarf_standoff_mm`` off the skin (or on the hair where that is higher)."""
    assert ident.scarf is not None
    _, bgr, fabric_nir = SCARVES[ident.scarf]
    alpha = scarf_alpha(ident, gx, gy, lm) * (height > MISS / 2)
    folds = np.clip(value_noise(gx.shape, 5, ident.texture_seed + 41), -1.0, 1.0)
    albedo, closed, nir, dot_blur = _fabric_over(alpha, bgr, fabric_nir, folds, (0.85, 0.15), albedo, closed, nir,
                                                 dot_blur)
    raised = np.where(skin_h > MISS / 2, skin_h + (ident.scarf_standoff_mm / 1000.0 + 0.002 * folds)
                      * np.clip(alpha * 1.5, 0, 1), MISS)
    height = np.where(alpha > 0.05, np.maximum(height, raised), height)
    return albedo, closed, nir, dot_blur, height


WINTER_UNDER_CHIN_M = 0.005   # a winter scarf's lowest edge: under the chin's tip
WINTER_LOWER_LIP_M = 0.008    # its highest: the lower lip's middle, below the mouth's line (the portrait's)
WINTER_EDGE_M = 0.003         # the edge's softness and its waviness (+-)
WINTER_ROLL_M = 0.010         # the fabric's roll: its standoff reached this far below the edge


def winter_scarf_alpha(ident: Identity, gx: np.ndarray, gy: np.ndarray, lm: Landmarks) -> np.ndarray:
    """0..1: where the nineteenth family's winter scarf covers the head (identity.WINTER_*): everything
    below its wavy top edge, which lies ``winter_reach`` of the way from under the chin to the lower lip."""
    low, lip = lm.chin_y + WINTER_UNDER_CHIN_M, lm.mouth[1] + WINTER_LOWER_LIP_M
    edge = low + (lip - low) * ident.winter_reach
    wave = WINTER_EDGE_M * np.clip(value_noise(gx.shape, 6, ident.texture_seed + 43), -1.0, 1.0)
    return np.clip((gy - edge - wave) / WINTER_EDGE_M + 0.5, 0.0, 1.0).astype(np.float32)


def _winter_scarf_layer(ident: Identity, gx, gy, skin_h, lm: Landmarks, albedo, closed, nir, dot_blur, height):
    """The winter scarf over skin, beard and collar: its wool's colour and 850 nm reflectance
    (identity.SCARVES), knitted folds, standing ``winter_standoff_mm`` off the skin past its roll."""
    assert ident.winter_scarf is not None
    _, bgr, fabric_nir = SCARVES[ident.winter_scarf]
    alpha = winter_scarf_alpha(ident, gx, gy, lm) * (height > MISS / 2)
    folds = np.clip(value_noise(gx.shape, 4, ident.texture_seed + 47), -1.0, 1.0)
    albedo, closed, nir, dot_blur = _fabric_over(alpha, bgr, fabric_nir, folds, (0.8, 0.2), albedo, closed, nir,
                                                 dot_blur)
    low, lip = lm.chin_y + WINTER_UNDER_CHIN_M, lm.mouth[1] + WINTER_LOWER_LIP_M
    roll = np.clip((gy - (low + (lip - low) * ident.winter_reach)) / WINTER_ROLL_M, 0.0, 1.0)
    raised = np.where(skin_h > MISS / 2,
                      skin_h + (ident.winter_standoff_mm / 1000.0 * np.sqrt(roll) + 0.003 * folds) * alpha, MISS)
    height = np.where(alpha > 0.05, np.maximum(height, raised), height)
    return albedo, closed, nir, dot_blur, height


MASK_CHIN_TIP_M = 0.002       # a chin mask's lowest top edge: just over the chin's tip (reach 0)
MASK_UNDER_MOUTH_M = 0.014    # its highest: the labiomental fold, under the mouth's line (reach 1)
MASK_UNDER_JAW_M = 0.06       # its lower edge, on the neck under the jaw
MASK_EDGE_M = 0.002           # its edges' softness
MASK_CORNER_RISE_M = 0.008    # its top edge rises this much to its corners (the loops pull it up)
MASK_PLEAT_PITCH_M = 0.012    # the folded pleats' spacing
MASK_STANDOFF_M = 0.001       # the fabric on the skin
LOOP_THICK_M = 0.0012         # an ear loop's elastic cord on the cheek (recalled: ~1 mm)


def chin_mask_parts(ident: Identity, gx: np.ndarray, gy: np.ndarray,
                    lm: Landmarks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The twenty-first family's mask under the chin (identity.MASK_*) on the head grid: (fabric alpha 0..1,
    ear loops' alpha 0..1, the pleats' relief -1..1 under the fabric)."""
    assert ident.chin_mask is not None
    _, reach, width, _, loop_mm = ident.chin_mask
    half = 0.5 * ident.face_width_m * width
    low, fold = lm.chin_y - MASK_CHIN_TIP_M, lm.mouth[1] + MASK_UNDER_MOUTH_M
    top = low + (fold - low) * reach - MASK_CORNER_RISE_M * np.clip(gx / half, -1.0, 1.0) ** 2
    e = MASK_EDGE_M
    fabric = np.clip((gy - top) / e + 0.5, 0.0, 1.0) * np.clip((half - np.abs(gx)) / e + 0.5, 0.0, 1.0) * \
        np.clip((lm.chin_y + MASK_UNDER_JAW_M - gy) / e + 0.5, 0.0, 1.0)
    pleats = np.cos(2.0 * np.pi * (gy - top) / MASK_PLEAT_PITCH_M)
    corner_y = low + (fold - low) * reach - MASK_CORNER_RISE_M
    ear_x, ear_y = 0.5 * ident.face_width_m + 0.004, lm.nose[1]
    loops = np.zeros_like(gx)
    for side in (-1.0, 1.0):
        d, along = _segment(gx, gy, side * half, corner_y, side * ear_x, ear_y)
        on = (along >= 0.0) & (along <= 1.0)
        loops = np.maximum(loops, np.where(on, np.clip((0.5 * loop_mm / 1000.0 - d) / 0.0005 + 0.5, 0.0, 1.0), 0.0))
    return fabric.astype(np.float32), (loops * (1.0 - fabric)).astype(np.float32), pleats.astype(np.float32)


def _chin_mask_layer(ident: Identity, gx, gy, skin_h, lm: Landmarks, albedo, closed, nir, dot_blur, height):
    """The mask under the chin over skin and beard: its fabric's colour and 850 nm reflectance (identity.MASKS),
    pleats ``pleat_mm`` proud, and its elastic loops across the cheeks on the skin."""
    assert ident.chin_mask is not None
    fabric_i, _, _, pleat_mm, _ = ident.chin_mask
    _, bgr, fabric_nir = MASKS[fabric_i]
    alpha, loops, pleats = chin_mask_parts(ident, gx, gy, lm)
    on_head = height > MISS / 2
    alpha, loops = alpha * on_head, loops * on_head
    for a, tone in ((alpha, (0.85, 0.15)), (loops, (0.9, 0.0))):
        albedo, closed, nir, dot_blur = _fabric_over(a, bgr, fabric_nir, pleats, tone, albedo, closed, nir, dot_blur)
    raised = np.where(skin_h > MISS / 2, skin_h + MASK_STANDOFF_M + 0.5 * pleat_mm / 1000.0 * (1.0 + pleats), MISS)
    height = np.where(alpha > 0.05, np.maximum(height, raised), height)
    on_loop = np.where(skin_h > MISS / 2, skin_h + np.float32(LOOP_THICK_M), MISS)
    height = np.where(loops > 0.5, np.maximum(height, on_loop), height)
    return albedo, closed, nir, dot_blur, height


BROW_ABOVE_EYE_M = 0.016      # the brows above the pupils' line (typical, recalled)
BANGS_EDGE_M = 0.0015         # the bangs' edge's softness
BANGS_CLUMP_M = 0.006         # the clumps along the edge (their tips' spacing)
BANGS_TIPS_M = 0.0015         # how far the clumps' tips hang below the edge between them
BANGS_WISP_M = 0.010          # the edge's last 10 mm thinned by ``wisp``
BANGS_HALF_WIDTH = 0.42       # x the face's width: across the forehead to the temples


def bangs_parts(ident: Identity, gx: np.ndarray, gy: np.ndarray, lm: Landmarks) -> tuple[np.ndarray, np.ndarray]:
    """The twenty-second family's bangs (identity.BANGS_*) on the head grid: (alpha 0..1 over the forehead and the
    brows, the edge's line: each column's lowest y the hair reaches, before its tips and gaps)."""
    assert ident.bangs is not None
    reach_mm, sweep_mm, wisp, _ = ident.bangs
    half = BANGS_HALF_WIDTH * ident.face_width_m
    brow_y = 0.5 * (lm.eyes[0][1] + lm.eyes[1][1]) - BROW_ABOVE_EYE_M
    # Swept: the edge drops ``|sweep|`` from the side it is combed from to the middle and on to the other side.
    edge = brow_y + reach_mm / 1000.0 + 0.5 * sweep_mm / 1000.0 * np.clip(gx / half, -1.0, 1.0)
    tips = BANGS_TIPS_M * np.abs(np.sin(np.pi * gx / BANGS_CLUMP_M))
    alpha = np.clip((edge + tips - gy) / BANGS_EDGE_M + 0.5, 0.0, 1.0) * \
        np.clip((gy - (lm.face_top_y - 0.03)) / 0.005, 0.0, 1.0) * np.clip((half - np.abs(gx)) / 0.006, 0.0, 1.0)
    if wisp > 0.0:
        clumps = _strands(gx / 0.0008, gy / 0.004, ident.texture_seed + 61)
        near = np.clip((gy - (edge - BANGS_WISP_M)) / BANGS_WISP_M, 0.0, 1.0)
        alpha = alpha * (1.0 - wisp * near * (clumps < 0.5))
    return alpha.astype(np.float32), edge.astype(np.float32)


def _hair_over(alpha, strand, hair_bgr, hair_nir: float, albedo, closed, nir, dot_blur):
    """Hair of colour ``hair_bgr`` and 850 nm ``hair_nir`` laid over the layers where ``alpha``, textured by
    ``strand``, the dots blurred as by hair (the scalp's, the fringe's, the beard's and the bangs')."""
    a3 = alpha[..., None]
    tex = hair_bgr * (0.35 + 1.3 * strand[..., None])
    albedo = albedo * (1 - a3) + tex * a3
    closed = closed * (1 - a3) + tex * a3
    nir = nir * (1 - alpha) + hair_nir * (0.6 + 0.8 * strand) * alpha
    dot_blur = dot_blur * (1 - alpha) + HAIR.dot_blur_px * alpha
    return albedo, closed, nir, dot_blur


def _bangs_layer(ident: Identity, gx, gy, skin_h, lm: Landmarks, hair_bgr, hair_nir, albedo, closed, nir, dot_blur,
                 height):
    """The bangs over the forehead and the brows in the person's hair colour (texture, 850 nm and the dots' blur
    as the fringe's), ``standoff`` mm off the skin."""
    assert ident.bangs is not None
    alpha, _ = bangs_parts(ident, gx, gy, lm)
    alpha = alpha * (skin_h > MISS / 2)
    strand = _strands(gx / GRID_RES_M, gy / GRID_RES_M * 0.3, ident.texture_seed + 62)
    albedo, closed, nir, dot_blur = _hair_over(alpha, strand, hair_bgr, hair_nir, albedo, closed, nir, dot_blur)
    raised = np.where(skin_h > MISS / 2, skin_h + ident.bangs[3] / 1000.0 * np.clip(alpha * 1.5, 0, 1), MISS)
    height = np.where(alpha > 0.05, np.maximum(height, raised), height)
    return alpha, albedo, closed, nir, dot_blur, height
# The twentieth family's piercings (identity.PIERCING_*): where each site's jewellery sits on the head grid,
# from the landmarks (typical adult placements, recalled): a nostril's on the ala beside the nose tip, an
# eyebrow's at the brow's outer end, a labret's under the lower lip, a septum's under the columella.
NOSTRIL_X_M = 0.014           # the ala's side, off the midline
NOSTRIL_BELOW_TIP_M = 0.003
BROW_OUTER_M = 0.012          # the brow's outer end beyond the pupil
BARBELL_HALF_M = 0.0045       # an eyebrow barbell's balls, each this far above and below the brow
LABRET_X_M = 0.006
LABRET_BELOW_MOUTH_M = 0.010  # a labret stud under the lower lip; a lip ring on the lip's edge (4 mm)
SEPTUM_BELOW_TIP_M = 0.006
SEPTUM_STANDOFF_M = 0.004     # a septum ring hangs in front of the upper lip
MIRROR_AMBIENT = 0.6          # a polished convex metal's look under diffuse room light: its reflectance x this
RING_GAP_RAD = np.pi / 2      # the quarter of a ring that passes through the tissue, hidden
LID_ABOVE_EYE_M = 0.008       # the open upper lid's fold above it: a cap's brim ends above this
CAP_STANDOFF_M = 0.003        # the crown's fabric off the skin or hair
HEAD_RADIUS_M = 0.085         # the forehead's curvature across (a head's half breadth, typical): the brim's root


def cap_geometry(ident: Identity, lm: Landmarks) -> tuple[float, float, float]:
    """The sixteenth family's cap: its brim's root (head-grid y), its tilt (radians) after the limit that
    keeps its front edge above the upper lid, and its length (m)."""
    eye_y = lm.eyes[0][1]
    root_y = eye_y - BROW_ABOVE_EYE_M - ident.cap_root_mm / 1000.0
    length = ident.cap_brim_mm / 1000.0
    room = max(eye_y - LID_ABOVE_EYE_M - root_y, 0.0)
    tilt = min(np.deg2rad(ident.cap_tilt_deg), float(np.arcsin(min(room / length, 1.0))))
    return root_y, tilt, length


def _cap_layer(ident: Identity, gx, gy, lm: Landmarks, albedo, closed, nir, dot_blur, height):
    """The cap over skin and hair (identity.CAP_*): its crown's fabric above the brim's root, and the brim,
    the frontmost surface from the root forward and down (its top seen from in front: a half-elliptic
    planform ``cap_width_mm`` across and ``cap_brim_mm`` long, ``cap_tilt_deg`` down)."""
    assert ident.cap is not None
    _, bgr, fabric_nir = SCARVES[ident.cap]
    root_y, tilt, length = cap_geometry(ident, lm)
    weave = np.clip(value_noise(gx.shape, 7, ident.texture_seed + 43), -1.0, 1.0)
    tex = np.array(bgr, np.float32) * (0.9 + 0.1 * weave[..., None])
    fabric_ir = fabric_nir * (0.95 + 0.05 * weave)
    # The crown: the head above the root, the fabric a few millimetres off it.
    crown = (gy < root_y) & (height > MISS / 2)
    # The brim: at depth d along it (d = (y - root) / sin tilt), up to its half-ellipse's edge.
    rows = np.abs(gy[:, 0] - root_y).argmin()
    h_c = float(height[rows, np.abs(gx[0]).argmin()])
    h_root = h_c - gx * gx / (2 * HEAD_RADIUS_M)
    d = (gy - root_y) / max(float(np.sin(tilt)), 1e-3)
    reach = length * np.sqrt(np.clip(1.0 - (2.0 * gx / (ident.cap_width_mm / 1000.0)) ** 2, 0.0, 1.0))
    brim_h = h_root + d * float(np.cos(tilt))
    brim = (gy >= root_y) & (d <= reach) & (brim_h > height)
    cover = crown | brim
    c3 = cover[..., None]
    albedo = np.where(c3, tex, albedo)
    closed = np.where(c3, tex, closed)
    nir = np.where(cover, fabric_ir, nir)
    dot_blur = np.where(cover, HAIR.dot_blur_px, dot_blur)
    height = np.where(crown, height + CAP_STANDOFF_M, height)
    height = np.where(brim, brim_h, height)
    return albedo, closed, nir, dot_blur, height


def piercing_parts(ident: Identity, lm: Landmarks) -> list[tuple[str, float, float, float, float, float]]:
    """Each piercing's drawn parts on the head grid: ("ball", x, y, radius, 0, 0) for a stud's or a
    barbell's ball, ("ring", x, y, mid radius, wire radius, gap angle) for a ring (its hidden quarter
    centred on the gap angle, atan2(dy, dx) on the grid), in metres."""
    parts: list[tuple[str, float, float, float, float, float]] = []
    eye_y = lm.eyes[0][1]
    for site, side, kind, size_mm, wire_mm, _ in ident.piercings:
        size, wire = size_mm / 1000.0, wire_mm / 1000.0
        if site == "brow":
            x, y = side * (ident.ipd_m / 2 + BROW_OUTER_M), eye_y - BROW_ABOVE_EYE_M
            parts += [("ball", x, y - BARBELL_HALF_M, size / 2, 0.0, 0.0),
                      ("ball", x, y + BARBELL_HALF_M, size / 2, 0.0, 0.0)]
            continue
        if site == "nostril":
            x, y, gap = side * NOSTRIL_X_M, lm.nose[1] + NOSTRIL_BELOW_TIP_M, (0.0 if side < 0 else np.pi)
        elif site == "labret":
            below = LABRET_BELOW_MOUTH_M if kind == "stud" else 0.4 * LABRET_BELOW_MOUTH_M
            x, y, gap = side * LABRET_X_M, lm.mouth[1] + below, -np.pi / 2
        else:   # septum
            x, y, gap = 0.0, lm.nose[1] + SEPTUM_BELOW_TIP_M, -np.pi / 2
        if kind == "stud":
            parts.append(("ball", x, y, size / 2, 0.0, 0.0))
        else:
            mid = (size - wire) / 2
            # The ring's centre off its piercing, away from the gap: the piercing on the ring's hidden quarter.
            cx, cy = x - 0.6 * mid * np.cos(gap), y - 0.6 * mid * np.sin(gap)
            parts.append(("ring", float(cx), float(cy), mid, wire / 2, float(gap)))
    return parts


def _piercing_layer(ident: Identity, gx, gy, skin_h, lm: Landmarks, albedo, closed, nir, dot_blur, height):
    """Metal studs and rings on the skin (identity.PIERCING_*): their mirrored room as colour and 850 nm
    (``MIRROR_AMBIENT`` x the metal's reflectance), their height off the skin, and a gloss layer with the
    metal's surface slopes so the lamp and the projector are mirrored (render._glints). Returns the five
    layers plus the gloss map and its slopes."""
    _, bgr, r_nir = METALS[ident.piercings[0][5]]
    metal = np.zeros(gx.shape, bool)
    top = np.full(gx.shape, MISS, np.float32)
    slope = np.zeros(gx.shape + (2,), np.float32)
    for kind, x, y, r, a, gap in piercing_parts(ident, lm):
        dx, dy = gx - x, gy - y
        if kind == "ball":
            d2 = dx * dx + dy * dy
            on = (d2 < r * r) & (skin_h > MISS / 2)
            cap = np.sqrt(np.maximum(r * r - d2, (0.15 * r) ** 2))
            h = skin_h + r + cap
            sx, sy = -dx / cap, -dy / cap
        else:
            rho = np.sqrt(dx * dx + dy * dy)
            e = rho - r
            ang = np.angle(np.exp(1j * (np.arctan2(dy, dx) - gap)))
            on = (np.abs(e) < a) & (np.abs(ang) > RING_GAP_RAD / 2) & (skin_h > MISS / 2)
            cap = np.sqrt(np.maximum(a * a - e * e, (0.15 * a) ** 2))
            stand = SEPTUM_STANDOFF_M if gap == -np.pi / 2 and abs(x) < 1e-6 else 0.0
            h = skin_h + stand + a + cap
            rho_safe = np.maximum(rho, 1e-6)
            sx, sy = -e / cap * dx / rho_safe, -e / cap * dy / rho_safe
        on &= h > top
        top = np.where(on, h, top).astype(np.float32)
        slope[..., 0] = np.where(on, sx, slope[..., 0])
        slope[..., 1] = np.where(on, sy, slope[..., 1])
        metal |= on
    np.clip(slope, -6.0, 6.0, out=slope)
    m3 = metal[..., None]
    look = np.float32(MIRROR_AMBIENT) * np.array(bgr, np.float32)
    albedo = np.where(m3, look, albedo)
    closed = np.where(m3, look, closed)
    nir = np.where(metal, np.float32(MIRROR_AMBIENT * r_nir), nir)
    dot_blur = np.where(metal, FRAME.dot_blur_px, dot_blur)
    height = np.where(metal, np.maximum(height, top), height)
    gloss = np.where(metal, np.float32(float(np.mean(bgr))), np.float32(0.0)).astype(np.float32)
    return albedo, closed, nir, dot_blur, height, gloss, slope


def makeup_alpha(ident: Identity, gx: np.ndarray, gy: np.ndarray, lm: Landmarks) -> np.ndarray:
    """0..1: where the seventeenth family's foundation replaces the skin's own look (identity.MAKEUP_*): its
    coverage over the face's oval from the hairline to the jaw, less the eyes, the brows and the lips."""
    (lx, ly), (rx, ry) = lm.eyes
    top, bottom = lm.face_top_y, lm.chin_y
    face = _soft_superellipse(gx, gy, 0.0, 0.5 * (top + bottom), 0.43 * ident.face_width_m, 0.5 * (bottom - top),
                              2.4, 0.04)
    eyes = gauss(gx, gy, lx, ly, 0.013, 0.008) + gauss(gx, gy, rx, ry, 0.013, 0.008)
    brows = (gauss(gx, gy, lx, ly - BROW_ABOVE_EYE_M, 0.020, 0.004)
             + gauss(gx, gy, rx, ry - BROW_ABOVE_EYE_M, 0.020, 0.004))
    spared = np.clip(2.0 * (eyes + brows + lips_alpha(ident, gx, gy, lm)), 0.0, 1.0)
    return (ident.makeup_cover * face * (1.0 - spared)).astype(np.float32)


def lips_alpha(ident: Identity, gx: np.ndarray, gy: np.ndarray, lm: Landmarks) -> np.ndarray:
    """0..1: the lips (where lipstick goes)."""
    mx, my = lm.mouth
    return _soft_superellipse(gx, gy, mx, my, 0.024, 0.0075 * ident.length, 2.0, 0.3)


def _makeup_layer(ident: Identity, gx, gy, lm: Landmarks, rel_s, albedo, closed, nir, dot_blur):
    """Foundation and lipstick on the skin (identity.MAKEUP_*, LIPSTICKS), under hair, scarf, cap and glasses:
    the film's even colour (``makeup_shade`` x the skin's tone, no freckles or mottling), its 850 nm
    (``makeup_nir`` x the skin's, the face's shading kept, the skin's NIR detail covered) and the dots'
    blur taken ``makeup_sharpen`` of the way towards a resin mask's, each in proportion to the coverage."""
    alpha = makeup_alpha(ident, gx, gy, lm)
    a3 = alpha[..., None]
    film = (ident.skin_bgr * np.array(ident.makeup_shade, np.float32)).astype(np.float32)
    albedo = albedo * (1 - a3) + film * a3
    closed = closed * (1 - a3) + film * a3
    film_nir = ident.skin_nir * ident.makeup_nir * np.clip(0.72 + 0.28 * rel_s, 0.15, 1.15)
    nir = nir * (1 - alpha) + film_nir * alpha
    dot_blur = dot_blur - alpha * ident.makeup_sharpen * (SKIN.dot_blur_px - RESIN.dot_blur_px)
    if ident.lipstick is not None:
        _, bgr = LIPSTICKS[ident.lipstick]
        l3 = (0.9 * lips_alpha(ident, gx, gy, lm))[..., None]
        albedo = albedo * (1 - l3) + np.array(bgr, np.float32) * l3
        closed = closed * (1 - l3) + np.array(bgr, np.float32) * l3
    return albedo, closed, nir, dot_blur


@lru_cache(maxsize=8)
def head_layers(ident: Identity) -> HeadLayers:
    gx, gy = head_grid()
    lm = landmarks(ident)
    skin_h = face_height(ident, gx, gy)
    px, py = _photo_map(ident, gx, gy)
    bald_open, bald_closed, rel, _ = bald_textures()
    eye_w, mouth_w = eye_mouth_weights(ident, gx, gy)

    # Skin recoloured to the identity's tone; the whites of the eyes keep their own colour.
    ratio = ident.skin_bgr / photo_skin_bgr()
    sclera = np.clip(gauss(gx, gy, lm.eyes[0][0], lm.eyes[0][1], 0.009, 0.004)
                     + gauss(gx, gy, lm.eyes[1][0], lm.eyes[1][1], 0.009, 0.004), 0, 1)[..., None] * 0.8
    ratio_map = ratio[None, None, :] * (1 - sclera) + sclera
    vis_detail, nir_detail = _skin_detail(ident, gx.shape)
    albedo = np.clip(_sample(bald_open, px, py) * ratio_map * vis_detail[..., None], 0, 1)
    closed = np.clip(_sample(bald_closed, px, py) * ratio_map * vis_detail[..., None], 0, 1)
    rel_s = _sample(rel, px, py)
    nir = ident.skin_nir * np.clip(0.72 + 0.28 * rel_s, 0.15, 1.15) * nir_detail
    dot_blur = np.full(gx.shape, SKIN.dot_blur_px, np.float32)
    height = skin_h.copy()
    if ident.makeup_cover > 0.0:
        albedo, closed, nir, dot_blur = _makeup_layer(ident, gx, gy, lm, rel_s, albedo, closed, nir, dot_blur)

    # Hair, fringe and beard on top of the skin.
    hair_tone, hair_nir = HAIR_COLOURS[ident.hair_colour]
    hair_bgr = np.array(hair_tone, np.float32)
    scalp_a, scalp_h, scalp_s, fringe_a, fringe_s, beard_a, beard_s = _hair_layers(ident, gx, gy, skin_h, lm)
    layers = ((scalp_a, scalp_s, None), (fringe_a, fringe_s, 0.004), (beard_a, beard_s, ident.beard_standoff_m))
    for alpha, strand, dh in layers:
        if not alpha.any():
            continue
        albedo, closed, nir, dot_blur = _hair_over(alpha, strand, hair_bgr, hair_nir, albedo, closed, nir, dot_blur)
        if dh is None:
            height = np.where(alpha > 0.02, np.maximum(height, scalp_h), height)
        else:
            raised = np.where(skin_h > MISS / 2, skin_h + dh * np.clip(alpha * 1.5, 0, 1), MISS)
            height = np.where(alpha > 0.05, np.maximum(height, raised), height)
    eye_w = eye_w * (1 - np.clip(fringe_a * 2, 0, 1))
    if ident.bangs is not None:
        bangs_a, albedo, closed, nir, dot_blur, height = _bangs_layer(ident, gx, gy, skin_h, lm, hair_bgr, hair_nir,
                                                                      albedo, closed, nir, dot_blur, height)
        eye_w = eye_w * (1 - np.clip(bangs_a * 2, 0, 1))
    if ident.scarf is not None:
        albedo, closed, nir, dot_blur, height = _scarf_layer(ident, gx, gy, skin_h, lm, albedo, closed, nir,
                                                             dot_blur, height)
    if ident.winter_scarf is not None:
        albedo, closed, nir, dot_blur, height = _winter_scarf_layer(ident, gx, gy, skin_h, lm, albedo, closed, nir,
                                                                    dot_blur, height)
    if ident.cap is not None:
        albedo, closed, nir, dot_blur, height = _cap_layer(ident, gx, gy, lm, albedo, closed, nir, dot_blur, height)
    if ident.chin_mask is not None:
        albedo, closed, nir, dot_blur, height = _chin_mask_layer(ident, gx, gy, skin_h, lm, albedo, closed, nir,
                                                                 dot_blur, height)

    gloss = gloss_slope = None
    gloss_nir_ratio = 1.0
    lens_centres = None
    if ident.piercings:
        albedo, closed, nir, dot_blur, height, gloss, gloss_slope = _piercing_layer(
            ident, gx, gy, skin_h, lm, albedo, closed, nir, dot_blur, height)
        _, _, r_nir = METALS[ident.piercings[0][5]]
        gloss_nir_ratio = r_nir / float(gloss.max())
    if ident.glasses != "none":
        frame, frame_h, lens, _, slope, optics, lens_centres = glasses_layers(ident, gx, gy, skin_h, lm)
        l3 = lens[..., None]
        # Through the lens and back: the eye region is seen at T^2, plus the room mirrored in the lens.
        albedo = albedo * (1 - l3) + (albedo * optics["t_vis"] ** 2 + 0.6 * optics["gloss"]) * l3
        closed = closed * (1 - l3) + (closed * optics["t_vis"] ** 2 + 0.6 * optics["gloss"]) * l3
        nir = nir * (1 - lens) + (nir * optics["t_nir"] ** 2 + 0.6 * optics["gloss_nir"]) * lens
        lens_gloss = (lens * optics["gloss"]).astype(np.float32)
        if gloss is not None and gloss_slope is not None:
            # Piercings too: each pixel mirrors as its own layer (one 850 nm ratio for the surface: the
            # lenses', 1.0 outside the twelfth family, so the metal mirrors the projector at its visible
            # reflectance where a person wears both).
            gloss = np.where(lens > 0, lens_gloss, gloss).astype(np.float32)
            gloss_slope = np.where((lens > 0)[..., None], slope, gloss_slope).astype(np.float32)
        else:
            gloss, gloss_slope = lens_gloss, slope
        gloss_nir_ratio = float(optics["gloss_nir"] / optics["gloss"])
        f3 = frame[..., None]
        albedo = np.where(f3, optics["frame_bgr"], albedo)
        closed = np.where(f3, optics["frame_bgr"], closed)
        nir = np.where(frame, optics["frame_nir"], nir)
        dot_blur = np.where(frame, FRAME.dot_blur_px, dot_blur)
        height = np.where(frame & (frame_h > MISS / 2), np.maximum(height, frame_h), height)
    lm = Landmarks(lm.eyes, lm.nose, lm.mouth, lm.chin_y, lm.face_top_y, lens_centres)
    return HeadLayers(gx, gy, height.astype(np.float32), skin_h, albedo.astype(np.float32),
                      closed.astype(np.float32), nir.astype(np.float32), eye_w.astype(np.float32),
                      mouth_w, dot_blur.astype(np.float32), gloss, gloss_slope, lm, ident, gloss_nir_ratio)


def _crop(*arrays: np.ndarray, height: np.ndarray, margin: int = 3) -> tuple[slice, slice]:
    rows = np.nonzero((height > MISS / 2).any(axis=1))[0]
    cols = np.nonzero((height > MISS / 2).any(axis=0))[0]
    r0, r1 = max(rows[0] - margin, 0), min(rows[-1] + margin + 1, height.shape[0])
    c0, c1 = max(cols[0] - margin, 0), min(cols[-1] + margin + 1, height.shape[1])
    return slice(r0, r1), slice(c0, c1)


def surface_from_layers(layers: HeadLayers, material=SKIN, *, height: np.ndarray | None = None,
                        albedo: np.ndarray | None = None, closed: np.ndarray | None = None,
                        nir: np.ndarray | None = None, eye_weight: np.ndarray | None = None,
                        mouth_weight: np.ndarray | None = None, dot_blur: np.ndarray | None = None,
                        gloss: np.ndarray | None = None, gloss_slope: np.ndarray | None = None,
                        blinks: bool = True, front_is_face: bool = False) -> Surface:
    """A renderable Surface from head-grid layers (any of them replaced), cropped to what exists."""
    h = layers.height if height is None else height
    rs, cs = _crop(height=h)
    gloss = layers.gloss if gloss is None else gloss
    gloss_slope = layers.gloss_slope if gloss_slope is None else gloss_slope

    def c(a):
        return None if a is None else np.ascontiguousarray(a[rs, cs])
    gx, gy = layers.gx, layers.gy
    return Surface(c(h), c(layers.albedo if albedo is None else albedo),
                   c(layers.nir if nir is None else nir), float(gx[0, cs.start]), float(gy[rs.start, 0]), material,
                   c(layers.closed if closed is None else closed) if blinks else None,
                   c(layers.eye_weight if eye_weight is None else eye_weight) if blinks else None,
                   c(layers.mouth_weight if mouth_weight is None else mouth_weight),
                   dot_blur=c(layers.dot_blur if dot_blur is None else dot_blur),
                   gloss=c(gloss) if gloss is not None and np.any(gloss) else None,
                   gloss_slope=c(gloss_slope) if gloss is not None and np.any(gloss) else None,
                   gloss_nir_ratio=layers.gloss_nir_ratio,
                   front=float(layers.face_height.max()) if front_is_face else None)


@lru_cache(maxsize=8)
def live_head(ident: Identity) -> Surface:
    # distance_mm is measured to the face (the nose tip), not to spectacle frames or a beard.
    return surface_from_layers(head_layers(ident), front_is_face=True)


def clothing(ident: Identity) -> tuple[np.ndarray, float, str]:
    name, bgr, nir = CLOTHING[ident.clothing]
    return np.array(bgr, np.float32), nir, name
