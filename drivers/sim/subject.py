"""Scene objects' common parts: materials, textured height fields, and the face photo.

People are built in ``head.py`` and ``body.py``, presentation-attack instruments in ``species.py``.

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
from functools import cached_property, lru_cache

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
    resin hardly), in IR pixels, the same on every camera and at every distance (the default
    ``scatter=fixed`` model). ``scatter_mm``: the same scattering as a width on the surface (the
    standard deviation of a Gaussian, millimetres at 850 nm), which ``scatter=physical`` turns into
    pixels with the camera's focal length and each pixel's distance (``sensor.scatter_sigma_px``).
    ``specular``: share of projector light mirrored away instead of diffused back (screen glass).
    ``emissive``: the surface shines by itself (a display), independent of ambient.
    """

    name: str
    dot_blur_px: float
    scatter_mm: float = 0.2
    specular: float = 0.0
    emissive: bool = False


# Dot blur: how far subsurface (or fibre) scattering spreads a laser dot. Skin scatters 850 nm light
# millimetres deep (Anderson & Parrish 1981), hair and fabric scatter among fibres, paper, resin and
# plaster return it from their surface. Silicone for masks is made translucent on purpose to look
# like skin, and at 850 nm it scatters like skin too: that is why NIR-only PAD struggles with it and
# multispectral systems go to SWIR (Steiner et al., "Reliable face anti-spoofing using multispectral
# SWIR imaging", ICB 2016).
#
# Scattering widths in millimetres (``scatter_mm``, used only by ``scatter=physical``) are
# ASSUMPTIONS, order-of-magnitude values, not measurements. Skin: a reduced scattering coefficient
# of about 2 /mm and absorption of about 0.03 /mm at 850 nm (the power laws fitted over many
# studies in Jacques, "Optical properties of biological tissues: a review", Phys. Med. Biol. 58,
# R37, 2013) give, in the diffusion (dipole) model of a point source's diffuse reflectance (Farrell,
# Patterson & Wilson, Med. Phys. 19, 879, 1992), a spread of a millimetre or two: 1.5 mm taken.
# Silicone made to look like skin: somewhat less, 1.3 mm. Hair and cloth scatter among fibres
# (0.8, 0.6 mm); paint, paper, resin and plaster return light within a few tenths of a millimetre.
# The real profile is peaked with a long tail, not a Gaussian: ``sensor.SCATTER_CORE`` keeps a share
# of each dot unscattered (surface reflection and shallow scattering near the entry point).
SKIN = Material("skin", dot_blur_px=0.9, scatter_mm=1.5)
HAIR = Material("hair", dot_blur_px=0.7, scatter_mm=0.8)
CLOTH = Material("cloth", dot_blur_px=0.6, scatter_mm=0.6)
PAPER = Material("paper", dot_blur_px=0.35, scatter_mm=0.15)
SCREEN = Material("screen", dot_blur_px=0.3, scatter_mm=0.05, specular=0.93, emissive=True)
RESIN = Material("resin", dot_blur_px=0.55, scatter_mm=0.25)
PLASTER = Material("plaster", dot_blur_px=0.4, scatter_mm=0.2)
SILICONE = Material("silicone", dot_blur_px=0.85, scatter_mm=1.3)
FRAME = Material("frame", dot_blur_px=0.4, scatter_mm=0.2)        # spectacle frames: acetate or metal
WALL = Material("wall", dot_blur_px=0.5, scatter_mm=0.2)
MATERIALS = (SKIN, HAIR, CLOTH, PAPER, SCREEN, RESIN, PLASTER, SILICONE, FRAME, WALL)


def scatter_mm_table() -> tuple[np.ndarray, np.ndarray]:
    """(dot blur in pixels, scattering width in mm) of every material, by increasing pixel blur.

    The rendered maps carry each pixel's ``dot_blur_px`` (per cell where an object is made of
    several materials, blended at hairlines, drawn per silicone mask); ``scatter=physical`` reads
    that value as the material's key and maps it to millimetres through this table, interpolating
    between neighbouring materials' keys as the maps interpolate between materials. Materials that
    share a pixel value share a width (``tests/drivers`` checks it)."""
    by_px: dict[float, float] = {}
    for m in MATERIALS:
        by_px.setdefault(m.dot_blur_px, m.scatter_mm)
    keys = sorted(by_px)
    return np.array(keys, np.float32), np.array([by_px[k] for k in keys], np.float32)


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
    # Per-cell material where one object is made of several (hair on skin, a mask over a face):
    dot_blur: np.ndarray | None = None        # (gh, gw) dot blur in pixels, overrides material.dot_blur_px
    # Glossy transparent layers (spectacle lenses): specular reflectance and the layer's own slopes
    # (dS/dx, dS/dy), which decide where light sources are mirrored into the camera (glints).
    gloss: np.ndarray | None = None           # (gh, gw) 0..1, 0 where not glossy
    gloss_slope: np.ndarray | None = None     # (gh, gw, 2)
    gloss_nir_ratio: float = 1.0              # the glossy layer's 850 nm reflectance / its visible one
    # The glossy layer mirrors the projector dot by dot (a film pressed onto a face: what it mirrors at a
    # point is the pattern's light there, cornea.py); False: as one uniform source (spectacle lenses).
    gloss_dots: bool = False
    march_steps: tuple[int, int] = (7, 4)     # bracket steps and refinements (smooth large surfaces need fewer)
    front: float | None = None                # height of the point ``distance_mm`` is measured to (None: max)

    @cached_property
    def valid(self) -> np.ndarray:
        return self.height > MISS / 2

    @cached_property
    def valid_f32(self) -> np.ndarray:
        return self.valid.astype(np.float32)

    @property
    def front_height(self) -> float:
        return self.max_height if self.front is None else self.front

    @cached_property
    def max_height(self) -> float:
        h = self.height[self.valid]
        return float(h.max()) if h.size else 0.0

    @cached_property
    def min_height(self) -> float:
        h = self.height[self.valid]
        return float(h.min()) if h.size else 0.0

    @property
    def extent(self) -> tuple[float, float, float, float]:
        gh, gw = self.height.shape
        return self.x0, self.x0 + (gw - 1) * self.res, self.y0, self.y0 + (gh - 1) * self.res


def grid(x_range: tuple[float, float], y_range: tuple[float, float],
         res: float = GRID_RES_M) -> tuple[np.ndarray, np.ndarray]:
    xs = np.arange(x_range[0], x_range[1] + 1e-9, res, dtype=np.float32)
    ys = np.arange(y_range[0], y_range[1] + 1e-9, res, dtype=np.float32)
    return np.meshgrid(xs, ys)


def srgb_to_linear(img_u8: np.ndarray) -> np.ndarray:
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
    bright = ((hsv[..., 1] < 70) & (hsv[..., 2] > 120)).astype(np.uint8) * 255
    teeth = cv2.dilate(bright, np.ones((3, 3), np.uint8))
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



# The photo's face core (eyes, brows, nose, mouth, cheeks), in photo pixels: kept as photographed.
PHOTO_CORE = ((224.0, 132.0), (37.0, 50.0))


@lru_cache(maxsize=1)
def bald_textures() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The photo with everything but skin replaced by skin, as linear float BGR (open, closed eyes),
    plus the photo's relative luminance (1 = its mean skin) and a 0..1 map of where the photo shows
    the face core.

    Outside the face core, hair, helmet and background give way to a smooth continuation of the
    person's own skin (normalised convolution of the skin pixels), so a head of any shape, hairline
    or hair style can be textured from one portrait; hair, beards and fringes are painted on top.
    """
    open_u8, closed_u8 = photo_textures()
    ycc = cv2.cvtColor(open_u8, cv2.COLOR_BGR2YCrCb).astype(np.int32)
    h, w = ycc.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    (cx, cy), (ax, ay) = PHOTO_CORE
    core = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 < 1
    skin = ((ycc[..., 1] >= 146) & (ycc[..., 0] > 110) & (ycc[..., 2] > 100)) | core
    sk = skin.astype(np.float32)
    alpha = cv2.GaussianBlur(sk, (0, 0), 1.5)[..., None]

    def blur(a: np.ndarray, sigma: float) -> np.ndarray:
        # Wide blurs of smooth fields: on a quarter-size image, then back (a fraction of the cost).
        small = cv2.resize(a, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
        out = cv2.resize(cv2.GaussianBlur(small, (0, 0), sigma / 4), (w, h), interpolation=cv2.INTER_LINEAR)
        return out.reshape(a.shape)

    f_open = srgb_to_linear(open_u8)
    weighted = f_open * sk[..., None]
    near_d = blur(sk, 10)[..., None]
    far_d = blur(sk, 30)[..., None]
    wgt = np.clip(near_d / 0.3, 0, 1)
    # The skin continuation comes from the open-eye photo for both textures (the eyes are in the core).
    smooth = (blur(weighted, 10) / np.maximum(near_d, 1e-3) * wgt
              + blur(weighted, 30) / np.maximum(far_d, 1e-3) * (1 - wgt))
    bald_open = (f_open * alpha + smooth * (1 - alpha)).astype(np.float32)
    bald_closed = (srgb_to_linear(closed_u8) * alpha + smooth * (1 - alpha)).astype(np.float32)
    lum = bald_open @ np.array([0.11, 0.59, 0.30], np.float32)
    cheeks = core & skin & (np.abs(yy - 125) < 12) & (np.abs(np.abs(xx - cx) - 24) < 8)
    rel = (lum / float(lum[cheeks].mean())).astype(np.float32)
    core_w = np.clip(1.0 - (((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 - 0.7) / 0.3, 0, 1).astype(np.float32)
    return bald_open, bald_closed, rel, core_w


@lru_cache(maxsize=1)
def photo_skin_bgr() -> np.ndarray:
    """Mean linear BGR of the portrait's cheek skin (the reference for recolouring to another tone)."""
    open_lin = srgb_to_linear(photo_textures()[0])
    (cx, _), _ = PHOTO_CORE
    patch = np.concatenate([open_lin[118:132, int(cx) - 32:int(cx) - 16].reshape(-1, 3),
                            open_lin[118:132, int(cx) + 16:int(cx) + 32].reshape(-1, 3)])
    return patch.mean(axis=0).astype(np.float32)


def gauss(gx, gy, cx, cy, sx, sy) -> np.ndarray:
    return np.exp(-0.5 * (((gx - cx) / sx) ** 2 + ((gy - cy) / sy) ** 2)).astype(np.float32)


def print_texture(albedo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ink on paper: a compressed, slightly desaturated gamut; at 850 nm colour inks are nearly
    transparent, so only the dark (carbon) share of the image shows in NIR."""
    lum = albedo @ np.array([0.11, 0.59, 0.30], np.float32)
    printed = 0.04 + 0.82 * (0.85 * albedo + 0.15 * lum[..., None])
    black_ink = np.clip(1.0 - albedo.max(axis=2) / 0.35, 0, 1)
    nir = 0.78 * (1.0 - 0.55 * black_ink)
    return printed.astype(np.float32), nir.astype(np.float32)


def value_noise(shape: tuple[int, int], sigma: float, seed: int) -> np.ndarray:
    """Smooth zero-mean unit-variance noise with correlation length ``sigma`` cells."""
    rng = np.random.default_rng(seed)
    n = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), max(sigma, 0.3))
    return (n / (n.std() + 1e-6)).astype(np.float32)
