"""Scene objects: a 3D head built around a real face photo, and presentation-attack instruments.

Every object is a textured height field in its own frame (metres; x right, y down, z away from the
camera): the visible surface is ``z = -S(x, y)``, so ``S`` is how far a point stands out toward the
camera. ``S = MISS`` marks "no surface" (outside the silhouette, or a hole cut in a print). Height
fields are exact for the near-frontal poses a kiosk sees and render quickly by ray marching.

The face texture is ``skimage.data.astronaut()`` (a public-domain NASA portrait that ships inside
scikit-image). Its key points were measured once by eye and are data here: left eye (200, 102),
right eye (247, 103), nose tip (225, 125), mouth centre (224, 146), chin (225, 181), in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

MISS = -1.0                     # height value meaning "no surface here"
GRID_RES_M = 0.00075            # height-field sample spacing
PHOTO_EYES = ((200.0, 102.0), (247.0, 103.0))
PHOTO_NOSE = (225.0, 125.0)
PHOTO_MOUTH = (224.0, 146.0)
PHOTO_ORIGIN = (224.0, 115.0)   # photo pixel at the head frame's origin (between eyes and nose tip)
IPD_M = 0.063
PHOTO_PITCH_DEG = 9.5           # the portrait's head is pitched down by about this much
PHOTO_ROLL_DEG = 3.0            # and tilted clockwise by about this much (the eye line)
PHOTO_M_PER_PX = IPD_M / (PHOTO_EYES[1][0] - PHOTO_EYES[0][0])


@dataclass(frozen=True)
class Material:
    """How a surface answers the sensors.

    ``dot_blur_px``: subsurface scattering spreads each projected laser dot (skin does, paper and
    resin hardly). ``specular``: share of projector light mirrored away instead of diffused back
    (screen glass). ``emissive``: the surface shines by itself (a display), independent of ambient.
    """

    name: str
    dot_blur_px: float
    specular: float = 0.0
    emissive: bool = False


SKIN = Material("skin", dot_blur_px=0.9)
PAPER = Material("paper", dot_blur_px=0.35)
SCREEN = Material("screen", dot_blur_px=0.3, specular=0.93, emissive=True)
RESIN = Material("resin", dot_blur_px=0.55)
PLASTER = Material("plaster", dot_blur_px=0.4)
WALL = Material("wall", dot_blur_px=0.5)


@dataclass(frozen=True)
class Surface:
    """A textured height field sampled on a regular grid in the object's frame."""

    height: np.ndarray          # (gh, gw) float32 metres toward the camera, MISS where absent
    albedo: np.ndarray          # (gh, gw, 3) float32 visible reflectance, BGR, linear
    nir: np.ndarray             # (gh, gw) float32 reflectance at 850 nm
    x0: float
    y0: float
    material: Material
    albedo_closed: np.ndarray | None = None   # texture with the eyes closed (blinks), if it can blink
    eye_weight: np.ndarray | None = None      # (gh, gw) 0..1, where eyelids move
    mouth_weight: np.ndarray | None = None    # (gh, gw) 0..1, where the jaw moves the surface
    res: float = GRID_RES_M

    @property
    def valid(self) -> np.ndarray:
        return self.height > MISS / 2

    @property
    def max_height(self) -> float:
        h = self.height[self.valid]
        return float(h.max()) if h.size else 0.0

    @property
    def extent(self) -> tuple[float, float, float, float]:
        gh, gw = self.height.shape
        return self.x0, self.x0 + (gw - 1) * self.res, self.y0, self.y0 + (gh - 1) * self.res


def _grid(x_range: tuple[float, float], y_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    xs = np.arange(x_range[0], x_range[1] + 1e-9, GRID_RES_M, dtype=np.float32)
    ys = np.arange(y_range[0], y_range[1] + 1e-9, GRID_RES_M, dtype=np.float32)
    return np.meshgrid(xs, ys)


def _srgb_to_linear(img_u8: np.ndarray) -> np.ndarray:
    c = img_u8.astype(np.float32) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


@lru_cache(maxsize=1)
def _photo_bgr() -> np.ndarray:
    from skimage import data
    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def _ellipse_mask(shape, center, axes) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    cv2.ellipse(m, (int(round(center[0])), int(round(center[1]))), (int(axes[0]), int(axes[1])), 0, 0, 360, 255, -1)
    return m


@lru_cache(maxsize=1)
def photo_textures() -> tuple[np.ndarray, np.ndarray]:
    """(eyes open, eyes closed) BGR uint8 versions of the photo with a neutral, closed mouth.

    The portrait smiles with teeth showing; the capture spec wants a neutral expression, so the
    teeth are painted over with lip colour. The closed-eye version paints skin-coloured lids with a
    dark lash line over each eye.
    """
    img = _photo_bgr().copy()
    mx, my = PHOTO_MOUTH
    mouth = img[int(my) - 9:int(my) + 9, int(mx) - 24:int(mx) + 24]
    hsv = cv2.cvtColor(mouth, cv2.COLOR_BGR2HSV)
    teeth = ((hsv[..., 1] < 70) & (hsv[..., 2] > 120)).astype(np.uint8) * 255
    teeth = cv2.dilate(teeth, np.ones((3, 3), np.uint8))
    full = np.zeros(img.shape[:2], np.uint8)
    full[int(my) - 9:int(my) + 9, int(mx) - 24:int(mx) + 24] = teeth
    img = cv2.inpaint(img, full, 5, cv2.INPAINT_TELEA)
    lip_line = np.zeros_like(full)
    cv2.line(lip_line, (int(mx) - 17, int(my) - 1), (int(mx) + 17, int(my) - 2), 255, 1)
    img[lip_line > 0] = (img[lip_line > 0] * 0.55).astype(np.uint8)

    closed = img.copy()
    lids = np.zeros_like(full)
    for ex, ey in PHOTO_EYES:
        lids |= _ellipse_mask(img.shape, (ex, ey), (11, 6))
    closed = cv2.inpaint(closed, lids, 7, cv2.INPAINT_TELEA)
    for ex, ey in PHOTO_EYES:
        cv2.ellipse(closed, (int(ex), int(ey) + 1), (10, 3), 0, 10, 170, (40, 45, 60), 1, cv2.LINE_AA)
    return img, closed


@dataclass(frozen=True)
class Identity:
    """A face variant: skin tone, head size, nose prominence and mirroring differ per identity."""

    tone: tuple[float, float, float]
    scale: float
    nose_m: float
    mirror: bool

    @classmethod
    def from_index(cls, index: int) -> "Identity":
        if index == 0:
            return cls((1.0, 1.0, 1.0), 1.0, 0.024, False)
        rng = np.random.default_rng(10_000 + index)
        darkness = rng.uniform(0.45, 1.15)
        tone = tuple(float(darkness * rng.uniform(0.92, 1.08)) for _ in range(3))
        return cls(tone, float(rng.uniform(0.92, 1.08)), float(rng.uniform(0.018, 0.030)), bool(index % 2))


def _sample_photo(tex_bgr: np.ndarray, gx: np.ndarray, gy: np.ndarray, ident: Identity, scale_m_per_px: float) -> np.ndarray:
    ox, oy = PHOTO_ORIGIN
    sx = -gx if ident.mirror else gx
    map_x = (ox + sx / scale_m_per_px).astype(np.float32)
    map_y = (oy + gy / scale_m_per_px).astype(np.float32)
    return cv2.remap(tex_bgr, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _photo_point(px: tuple[float, float], ident: Identity) -> tuple[float, float]:
    s = PHOTO_M_PER_PX * ident.scale
    x = (px[0] - PHOTO_ORIGIN[0]) * s
    return (-x if ident.mirror else x), (px[1] - PHOTO_ORIGIN[1]) * s


def _gauss(gx, gy, cx, cy, sx, sy):
    return np.exp(-0.5 * (((gx - cx) / sx) ** 2 + ((gy - cy) / sy) ** 2)).astype(np.float32)


def _face_textures(ident: Identity, gx: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    open_u8, closed_u8 = photo_textures()
    s = PHOTO_M_PER_PX * ident.scale
    tone = np.array(ident.tone, np.float32)
    albedo = np.clip(_srgb_to_linear(_sample_photo(open_u8, gx, gy, ident, s)) * 0.9 * tone, 0, 1)
    closed = np.clip(_srgb_to_linear(_sample_photo(closed_u8, gx, gy, ident, s)) * 0.9 * tone, 0, 1)
    lum = albedo @ np.array([0.11, 0.59, 0.30], np.float32)
    # Skin is bright and smooth at 850 nm whatever its visible tone; hair, brows and pupils stay darker.
    nir = 0.58 * (0.72 + 0.28 * np.clip(lum / max(float(np.percentile(lum, 90)), 1e-3), 0, 1.3))
    return albedo.astype(np.float32), closed.astype(np.float32), nir.astype(np.float32)


def head_height(gx: np.ndarray, gy: np.ndarray, ident: Identity, *, with_neck: bool = True) -> np.ndarray:
    """Front surface of a head: a flattened ellipsoid plus facial relief, in metres."""
    k = ident.scale
    a, b, c, yc = 0.077 * k, 0.112 * k, 0.090 * k, -0.020 * k
    u = np.abs(gx / a) ** 2.3 + np.abs((gy - yc) / b) ** 2
    dome = np.where(u < 1, c * np.power(np.clip(1 - u, 0, 1), 1 / 2.3), MISS).astype(np.float32)
    (lx, ly), (rx, ry) = _photo_point(PHOTO_EYES[0], ident), _photo_point(PHOTO_EYES[1], ident)
    nx, ny = _photo_point(PHOTO_NOSE, ident)
    mx, my = _photo_point(PHOTO_MOUTH, ident)
    eye_y = 0.5 * (ly + ry)
    relief = (
        ident.nose_m * _gauss(gx, gy, nx, ny - 0.002 * k, 0.0085 * k, 0.011 * k)              # nose tip
        + 0.55 * ident.nose_m * _gauss(gx, gy, nx, 0.5 * (ny + eye_y), 0.0055 * k, 0.016 * k)  # bridge
        - 0.011 * (_gauss(gx, gy, lx, ly, 0.013 * k, 0.009 * k) + _gauss(gx, gy, rx, ry, 0.013 * k, 0.009 * k))
        + 0.004 * _gauss(gx, gy, 0.0, eye_y - 0.019 * k, 0.035 * k, 0.006 * k)                # brow ridge
        + 0.006 * (_gauss(gx, gy, -0.040 * k, ny, 0.014 * k, 0.016 * k)
                   + _gauss(gx, gy, 0.040 * k, ny, 0.014 * k, 0.016 * k))                      # cheeks
        + 0.004 * _gauss(gx, gy, mx, my, 0.013 * k, 0.006 * k)                                  # lips
        + 0.005 * _gauss(gx, gy, mx, my + 0.040 * k, 0.014 * k, 0.010 * k)                      # chin
    )
    h = np.where(dome > MISS / 2, dome + relief * np.clip((1 - u) * 4, 0, 1), MISS)
    if with_neck:
        r = 0.055 * k
        neck = np.where((np.abs(gx) < r) & (gy > 0.05 * k), np.sqrt(np.clip(r * r - gx * gx, 0, None)) - 0.035, MISS)
        h = np.maximum(h, neck)
    return h.astype(np.float32)


def _eye_mouth_weights(gx, gy, ident: Identity) -> tuple[np.ndarray, np.ndarray]:
    k = ident.scale
    (lx, ly), (rx, ry) = _photo_point(PHOTO_EYES[0], ident), _photo_point(PHOTO_EYES[1], ident)
    mx, my = _photo_point(PHOTO_MOUTH, ident)
    eye = np.clip(_gauss(gx, gy, lx, ly, 0.012 * k, 0.007 * k) + _gauss(gx, gy, rx, ry, 0.012 * k, 0.007 * k), 0, 1)
    eye = np.clip(eye * 2.2, 0, 1)
    mouth = _gauss(gx, gy, mx, my + 0.012 * k, 0.022 * k, 0.014 * k)
    return eye.astype(np.float32), mouth.astype(np.float32)


@lru_cache(maxsize=16)
def live_head(identity: int = 0) -> Surface:
    ident = Identity.from_index(identity)
    gx, gy = _grid((-0.095, 0.095), (-0.150, 0.200))
    height = head_height(gx, gy, ident)
    albedo, closed, nir = _face_textures(ident, gx, gy)
    eye, mouth = _eye_mouth_weights(gx, gy, ident)
    return Surface(height, albedo, nir, float(gx[0, 0]), float(gy[0, 0]), SKIN, closed, eye, mouth)


def _print_texture(albedo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ink on paper: a compressed, slightly desaturated gamut; at 850 nm colour inks are nearly
    transparent, so only the dark (carbon) share of the image shows in NIR."""
    lum = albedo @ np.array([0.11, 0.59, 0.30], np.float32)
    printed = 0.04 + 0.82 * (0.85 * albedo + 0.15 * lum[..., None])
    black_ink = np.clip(1.0 - albedo.max(axis=2) / 0.35, 0, 1)
    nir = 0.78 * (1.0 - 0.55 * black_ink)
    return printed.astype(np.float32), nir.astype(np.float32)


@lru_cache(maxsize=16)
def printed_photo(identity: int = 0, shape: str = "flat") -> Surface:
    """A life-size print of the face. ``shape``: flat, curved (around a vertical axis) or cutout."""
    ident = Identity.from_index(identity)
    gx, gy = _grid((-0.090, 0.090), (-0.125, 0.150))
    albedo, _, _ = _face_textures(ident, gx, gy)
    printed, nir = _print_texture(albedo)
    if shape == "curved":
        rc = 0.10
        height = (np.sqrt(np.clip(rc * rc - gx * gx, 0, None)) - rc).astype(np.float32)
    else:
        height = np.zeros_like(gx, dtype=np.float32)
    if shape == "cutout":
        (lx, ly), (rx, ry) = _photo_point(PHOTO_EYES[0], ident), _photo_point(PHOTO_EYES[1], ident)
        mx, my = _photo_point(PHOTO_MOUTH, ident)
        holes = (((gx - lx) / 0.013) ** 2 + ((gy - ly) / 0.0075) ** 2 < 1) | \
                (((gx - rx) / 0.013) ** 2 + ((gy - ry) / 0.0075) ** 2 < 1) | \
                (((gx - mx) / 0.022) ** 2 + ((gy - my) / 0.008) ** 2 < 1)
        height = np.where(holes, MISS, height).astype(np.float32)
    return Surface(height, printed, nir, float(gx[0, 0]), float(gy[0, 0]), PAPER)


@lru_cache(maxsize=16)
def screen(identity: int = 0) -> Surface:
    """A tablet showing the face. ``albedo`` holds the displayed image (emitted, gamma-encoded by the
    panel); LCD backlights emit no NIR and the glass returns almost no diffuse NIR."""
    ident = Identity.from_index(identity)
    gx, gy = _grid((-0.075, 0.075), (-0.105, 0.105))
    display_scale = 0.8       # the face appears a little smaller than life on a 10" tablet
    albedo, closed, _ = _face_textures(ident, gx / display_scale, gy / display_scale)
    eye, _ = _eye_mouth_weights(gx / display_scale, gy / display_scale, ident)
    # Panel gamma differs from the scene's: displayed = content^(1.25) and a raised black level.
    disp = (0.02 + 0.95 * np.power(albedo / 0.9, 1.25)).astype(np.float32)
    disp_closed = (0.02 + 0.95 * np.power(closed / 0.9, 1.25)).astype(np.float32)
    bezel = (np.abs(gx) > 0.068) | (np.abs(gy) > 0.098)
    disp[bezel] = 0.01
    disp_closed[bezel] = 0.01
    nir = np.full(gx.shape, 0.03, np.float32)
    return Surface(np.zeros_like(gx, dtype=np.float32), disp, nir, float(gx[0, 0]), float(gy[0, 0]), SCREEN,
                   disp_closed, eye, None)


@lru_cache(maxsize=16)
def rigid_head(identity: int = 0, kind: str = "mask") -> Surface:
    """A rigid 3D mask (worn: face only, no neck) or a head model on a stand (plaster, with neck).

    The painted face is the same photo; the eyes are painted open. In NIR the paint is nearly
    transparent, so the base material shows: resin (mask) or plaster (head model)."""
    ident = Identity.from_index(identity)
    gx, gy = _grid((-0.095, 0.095), (-0.150, 0.200))
    height = head_height(gx, gy, ident, with_neck=(kind == "head_model"))
    if kind == "mask":
        # A mask covers the face, not the hair and ears: cut it to the face oval.
        face = ((gx / 0.070) ** 2 + ((gy - 0.005) / 0.105) ** 2) < 1
        height = np.where(face, height, MISS).astype(np.float32)
    albedo, _, _ = _face_textures(ident, gx, gy)
    lum = albedo @ np.array([0.11, 0.59, 0.30], np.float32)
    base = 0.50 if kind == "mask" else 0.80
    nir = (base * (0.88 + 0.12 * np.clip(lum / 0.5, 0, 1))).astype(np.float32)
    return Surface(height, albedo, nir, float(gx[0, 0]), float(gy[0, 0]), RESIN if kind == "mask" else PLASTER)
