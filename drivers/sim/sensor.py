"""Sensor models: how the rendered world becomes color, IR and depth pixels.

Color: irradiance (lux) x reflectance, colour of the light from its temperature, auto-exposure and
gain, photon shot noise and read noise in electrons, partial auto white balance, sRGB-like encoding.
IR: 850 nm reflectance x (ambient NIR + the projector's dot pattern, which shifts with depth by the
projector parallax and is blurred by subsurface scattering in skin), at the exposure and gain the
IR auto-exposure (``exposure.py``) or a lock sets. (The visible light a broadband imager also
collects is added by the camera under ``ir_leak=1``: ``leak.py``.) The scattering is a fixed width in pixels per
material (``scatter=fixed``, the default) or a width in millimetres on the surface seen through the
camera's focal length at each pixel's distance (``scatter=physical``, ``scattered_pattern``).
Depth: stereo noise sigma_z = z^2 * sigma_d / (f * B); holes where the stereo matcher has no texture
(low IR contrast: dark or specular surfaces, projector off in dim light), at occlusion bands beside
silhouettes (seen by one imager only), and outside the working range.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from scipy.ndimage import maximum_filter1d

from .profiles import D435, AutoExposureSpec, CameraProfile
from .render import ViewMaps
from .subject import scatter_mm_table

FULL_WELL_E = 9000.0
READ_NOISE_E = 4.0
# Electrons per (lux x reflectance x second): 300 lux on skin at ~10 ms sits mid-range.
QE_SCALE = 1500.0
# The default colour auto-exposure (D435 profile): 50 µs-33 ms, then gain 1-16, target linear 0.18
# (~118 after encoding). Other profiles carry their own (``profiles.AutoExposureSpec``).
EXPOSURE_RANGE_S = D435.color_ae.exposure_range_s
GAIN_RANGE = D435.color_ae.gain_range
AE_TARGET = D435.color_ae.target
SCREEN_LUMINANCE_LUX = 260.0    # a tablet at typical brightness, as lux-equivalent on the sensor
IR_EXPOSURE_S = 0.0085
PROJECTOR_POWER_MW = 150.0
DOT_IRRADIANCE = 300.0         # projector dot irradiance at 0.5 m, lux-equivalent in the NIR band
SCATTER_MODELS = ("fixed", "physical")
# ``scatter=physical``: the share of each dot's light returned where it entered (surface reflection
# and shallow scattering: the peak of the diffusion profile), the rest spread as a Gaussian of the
# material's ``scatter_mm``. An assumption (docs/sim.md), as are the widths.
SCATTER_CORE = 0.3
# Gaussian widths (px, added to the dot image's own spots) pre-blurred once a frame; a pixel's width
# is interpolated between the two levels around it, linearly in variance (a mixture of two
# Gaussians has the mixed variance). Wider than the last level is held at it.
SCATTER_LEVELS_PX = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.5, 6.5)


class NoiseBank:
    """Unit Gaussian noise served as random windows of one large pre-drawn buffer.

    Drawing ~1.5 M normals per tick costs more than rendering; windows at random offsets of a
    16 M-sample buffer are, for every statistic the pipeline looks at, independent draws.
    """

    SIZE = 1 << 24
    _CACHE: collections.OrderedDict[int, tuple[np.ndarray, Mapping[str, Any]]] = collections.OrderedDict()

    def __init__(self, rng: np.random.Generator):
        self._rng = rng
        self._buf = rng.standard_normal(self.SIZE + 1_000_000, dtype=np.float32)

    @classmethod
    def for_seed(cls, seed: int) -> NoiseBank:
        """The bank ``NoiseBank(np.random.default_rng(seed))`` would make, draw for draw; the
        68 MB buffer is kept for the last two seeds (the daemon reopens its camera every session)."""
        hit = cls._CACHE.get(seed)
        if hit is None:
            bank = cls(np.random.default_rng(seed))
            bank._buf.flags.writeable = False
            cls._CACHE[seed] = (bank._buf, bank._rng.bit_generator.state)
            while len(cls._CACHE) > 2:
                cls._CACHE.popitem(last=False)
            return bank
        cls._CACHE.move_to_end(seed)
        bank = cls.__new__(cls)
        bank._buf = hit[0]
        bank._rng = np.random.default_rng()
        bank._rng.bit_generator.state = hit[1]
        return bank

    def normal(self, shape: tuple[int, ...]) -> np.ndarray:
        n = int(np.prod(shape))
        off = int(self._rng.integers(0, self.SIZE + 1_000_000 - n))
        return self._buf[off:off + n].reshape(shape)

    def skip(self, shape: tuple[int, ...]) -> None:
        """Advance as :meth:`normal` would for a window of ``shape``, taking nothing (a frame not made:
        the draws after it are the ones they would have been)."""
        n = int(np.prod(shape))
        self._rng.integers(0, self.SIZE + 1_000_000 - n)


def illuminant_bgr(cct: float) -> np.ndarray:
    """Relative B, G, R content of a black-body-like source (normalised to G = 1)."""
    t = cct / 100.0
    r = 255.0 if t <= 66 else 329.7 * (t - 60) ** -0.1332
    g = 99.47 * np.log(t) - 161.12 if t <= 66 else 288.12 * (t - 60) ** -0.0755
    bl = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.52 * np.log(t - 10) - 305.04)
    rgb = np.clip(np.array([r, g, bl]), 1.0, 255.0) / 255.0
    rgb = rgb ** 2.2                       # the formula fits display values; go back to linear light
    return (rgb[::-1] / rgb[1]).astype(np.float32)


def nir_share(cct: float) -> float:
    """Ambient NIR relative to visible lux: warm (incandescent-like) light carries far more NIR."""
    return float(np.clip(0.35 * (3000.0 / cct) ** 3, 0.03, 1.2))


@dataclass
class AutoExposure:
    exposure_s: float = 0.01
    gain: float = 1.0
    spec: AutoExposureSpec = D435.color_ae       # the camera profile's limits, target and speed

    @property
    def product(self) -> float:
        return self.exposure_s * self.gain

    def set_product(self, p: float) -> None:
        emin, emax = self.spec.exposure_range_s
        gmin, gmax = self.spec.gain_range
        p = float(np.clip(p, emin * gmin, emax * gmax))
        if p <= emax * gmin:
            self.exposure_s, self.gain = max(p, emin), gmin
        else:
            self.exposure_s, self.gain = emax, p / emax

    def update(self, metered_linear: float, rate: float) -> None:
        """Move the exposure toward the target; ``rate`` 1 converges in one step."""
        if metered_linear <= 1e-6:
            self.set_product(self.product * 4)
            return
        self.set_product(self.product * (self.spec.target / metered_linear) ** rate)


def srgb_encode(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0.0, 1.0)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.power(lin, 1 / 2.4) - 0.055)


_LUT_LEVELS = 8192
# Linear [0, 1] in 1/8192 steps to encoded 8-bit: finer than the sensor's noise, far cheaper than pow().
_ENCODE_LUT = (srgb_encode(np.arange(_LUT_LEVELS, dtype=np.float64) / (_LUT_LEVELS - 1)) * 255 + 0.5).astype(np.uint8)


def _times_channels(a: np.ndarray, gains: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a[..., None] * gains`` for a (H, W) ``a`` (or ``a * gains`` for an (H, W, C) one, in place
    with ``out=a``): the same products, one strided pass per channel, because numpy's broadcasting
    over a last axis of 3 runs its inner loop three elements at a time."""
    gains = np.asarray(gains)
    if out is None:
        out = np.empty(a.shape[:2] + gains.shape, np.result_type(a, gains))
    for k in range(gains.shape[0]):
        np.multiply(a if a.ndim == 2 else a[..., k], gains[k], out=out[..., k])
    return out


_BAND_PIXELS = 16384


def _bands(h: int, w: int) -> Iterator[slice]:
    """Row slices of about ``_BAND_PIXELS`` pixels: per-pixel arithmetic done band by band keeps its
    temporaries small and in cache (a frame-sized temporary costs more to allocate than to fill)."""
    step = max(1, _BAND_PIXELS // max(w, 1))
    return (slice(r, min(r + step, h)) for r in range(0, h, step))


def color_irradiance(maps: ViewMaps, lux: float, cct: float, screen_bgr: np.ndarray | None = None,
                     panel_lux: float = SCREEN_LUMINANCE_LUX) -> np.ndarray:
    """Per-pixel, per-channel irradiance on the color sensor (lux-equivalent).

    ``screen_bgr`` is the kiosk screen's light on each pixel's surface (``screen.screen_irradiance``:
    it carries its own distance and angle terms), or None when the screen adds nothing. ``panel_lux``:
    an attack display's own luminance as lux-equivalent (pi x cd/m^2; the thirteenth family draws each
    panel's, ``species.screen_instrument``), ``SCREEN_LUMINANCE_LUX`` for every other family."""
    light = illuminant_bgr(cct)
    lit = lux * light
    h, w = maps.shade.shape
    parts = (maps.shade, maps.albedo, lit) + (() if screen_bgr is None else (screen_bgr,))
    if any(a.dtype != np.float32 for a in parts):
        irr = maps.albedo * ((0.35 + 0.65 * maps.shade)[..., None] * lit)
        if screen_bgr is not None:
            irr = irr + maps.albedo * screen_bgr
    else:
        # Band by band, the operations of albedo * ((0.35 + 0.65 shade) * (lux * light)) (+ albedo * screen).
        irr = np.empty((h, w, 3), np.float32)
        for rows in _bands(h, w):
            shade = np.multiply(maps.shade[rows], 0.65)
            shade += 0.35
            band = _times_channels(shade, lit, out=irr[rows])
            band *= maps.albedo[rows]
            if screen_bgr is not None:
                band += np.multiply(maps.albedo[rows], screen_bgr[rows])
    if maps.emissive.any():
        # A display shines by itself; its glass only reflects a few percent of the room light.
        e = maps.emissive
        room = lux * light + (screen_bgr[e] if screen_bgr is not None else 0.0)
        irr[e] = maps.albedo[e] * panel_lux + 0.04 * room
    return irr.astype(np.float32, copy=False)


def expose_color(irr: np.ndarray, ae: AutoExposure, noise_bank: NoiseBank, awb_gains: np.ndarray) -> np.ndarray:
    k_e = np.float32(QE_SCALE * ae.exposure_s)
    noise = noise_bank.normal(irr.shape)
    gains = np.float32(ae.gain * (_LUT_LEVELS - 1) / FULL_WELL_E) * awb_gains
    out = np.empty(irr.shape, np.uint8)
    for rows in _bands(*irr.shape[:2]):
        electrons = irr[rows] * k_e
        # In place, in the same order of operations as electrons + noise * sqrt(max(e, 0) + r^2).
        shot = np.maximum(electrons, 0)
        shot += READ_NOISE_E ** 2
        np.sqrt(shot, out=shot)
        shot *= noise[rows]
        electrons += shot
        _times_channels(electrons, gains, out=electrons)
        np.clip(electrons, 0, _LUT_LEVELS - 1, out=electrons)
        # Truncated to the LUT's index (always inside it, so "clip" mode only skips a check).
        np.take(_ENCODE_LUT, electrons.astype(np.intp), out=out[rows], mode="clip")
    return out


def metered_level(irr: np.ndarray, ae: AutoExposure, region: tuple[int, int, int, int] | None = None) -> float:
    """Linear level the auto-exposure sees: the centre half of the frame, or ``region``
    (x0, y0, x1, y1) when the host set one (``Camera.set_exposure_region``)."""
    h, w = irr.shape[:2]
    if region is not None:
        x0, y0, x1, y1 = region
        c = irr[y0:y1:2, x0:x1:2, 1]
    else:
        c = irr[h // 4: 3 * h // 4: 4, w // 4: 3 * w // 4: 4, 1]
    return float(c.mean()) * QE_SCALE * ae.product / FULL_WELL_E


PATTERN_SEED = 7      # the seed unit 0's projector pattern is drawn with (every sim camera's until unit33)


@dataclass(frozen=True)
class DotPattern:
    """The projector's pseudo-random dot pattern, in projector pixel coordinates (= IR geometry)."""

    image: np.ndarray

    @classmethod
    def make(cls, width: int, height: int, seed: int = PATTERN_SEED,
             fx: float = D435.depth_intrinsics.fx) -> DotPattern:
        """The pattern as the left imager sees it at focal length ``fx``: the projector sends a fixed
        number of dots into a fixed angle, so a longer focal length spreads them over more pixels."""
        rng = np.random.default_rng(seed)
        img = np.zeros((height, width), np.float32)
        n = int(width * height * 0.055 * (D435.depth_intrinsics.fx / fx) ** 2)
        ys, xs = rng.integers(0, height, n), rng.integers(0, width, n)
        img[ys, xs] = rng.uniform(0.6, 1.0, n).astype(np.float32)
        blurred = cv2.GaussianBlur(img, (0, 0), 0.55)
        return cls((blurred / blurred.max()).astype(np.float32))

    @classmethod
    def for_unit(cls, width: int, height: int, unit: int = 0, mount: tuple[int, int] = (0, 0),
                 fx: float = D435.depth_intrinsics.fx) -> DotPattern:
        """Camera unit ``unit``'s pattern (``SimConfig.unit``): drawn with seed ``PATTERN_SEED + unit``
        (unit 0: :meth:`make`'s own, bit for bit), then moved ``mount`` = (columns, rows) on the imager,
        the same design mounted off its place (what moves in from the edge carries no dots)."""
        p = cls.make(width, height, PATTERN_SEED + unit, fx=fx)
        dx, dy = mount
        if dx == 0 and dy == 0:
            return p
        moved = np.zeros_like(p.image)
        h, w = moved.shape
        moved[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            p.image[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
        return cls(moved)


def ir_exposure_s(lux: float, cct: float, *, share: float | None = None) -> float:
    """Starting point of the IR auto-exposure: shorten the exposure so ambient NIR on skin stays near
    40 DN (of 255), leaving headroom for the projector's dots, as D4xx cameras do in daylight.
    ``share``: the ambient NIR share when the light source sets it (``light=``), else from ``cct``."""
    share = nir_share(cct) if share is None else share
    ambient_dn = lux * share * 0.58 * 0.9 * 9000.0 * IR_EXPOSURE_S * 255.0 / FULL_WELL_E
    return IR_EXPOSURE_S * min(1.0, 40.0 / max(ambient_dn, 1e-6))


@functools.lru_cache(maxsize=4)
def _row_grid(h: int, w: int) -> np.ndarray:
    g = np.ascontiguousarray(np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w)))
    g.flags.writeable = False
    return g



def scatter_sigma_px(dot_blur: np.ndarray, z: np.ndarray, fx: float) -> np.ndarray:
    """Each pixel's scattering width in IR pixels under ``scatter=physical``: the material's width in
    mm (``subject.scatter_mm_table``, keyed by the maps' ``dot_blur``) times ``fx / z``."""
    keys, mm = scatter_mm_table()
    sigma_mm = np.interp(dot_blur, keys, mm).astype(np.float32)
    return np.asarray(sigma_mm * np.float32(fx * 1e-3) / np.maximum(z, np.float32(0.05)), np.float32)


def scattered_pattern(sharp: np.ndarray, dot_blur: np.ndarray, z: np.ndarray, fx: float,
                      core: float = SCATTER_CORE) -> np.ndarray:
    """The dot pattern on the surface under ``scatter=physical``: ``core`` of each dot where
    it landed, the rest spread by a Gaussian of ``scatter_sigma_px`` (energy kept: every level is a
    normalised blur of ``sharp``). Levels are blurred only up to the widest width in the frame."""
    sigma = scatter_sigma_px(dot_blur, z, fx)
    levels = np.array(SCATTER_LEVELS_PX, np.float32)
    var = np.minimum(sigma * sigma, levels[-1] ** 2)
    k = np.clip(np.searchsorted(levels * levels, var, side="right") - 1, 0, len(levels) - 2)
    lo, hi = levels[k] ** 2, levels[k + 1] ** 2
    w = np.clip((var - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)      # weight of the wider level
    narrow = np.subtract(np.float32(1.0), w)
    spread = np.zeros_like(sharp)
    weight = np.empty_like(sharp)
    for i in range(int(k.min()), int(k.max()) + 2):
        weight.fill(0.0)
        np.copyto(weight, narrow, where=k == i)
        np.copyto(weight, w, where=k == i - 1)
        level = sharp if levels[i] == 0 else cv2.GaussianBlur(sharp, (0, 0), float(levels[i]))
        weight *= level
        spread += weight
    out = np.multiply(sharp, np.float32(core))
    out += np.float32(1.0 - core) * spread
    return out


def ir_signal(maps: ViewMaps, lux: float, cct: float, projector_on: bool, dots: DotPattern,
              power_mw: float = PROJECTOR_POWER_MW, *, profile: CameraProfile = D435,
              share: float | None = None, scatter: str = "fixed", scatter_core: float = SCATTER_CORE
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """(light on the left IR imager, the projector's part of it or None), noiseless, lux-equivalent
    before exposure: ambient NIR plus, with the projector on, its dots shifted by the projector
    parallax. The exposure (``expose_ir``) comes later, so any auto-exposure can act on it.

    ``share``: ambient NIR per lux (None: from ``cct``). A profile whose imagers have an IR-cut
    filter (``ir_band == "visible"``, D405) sees visible luminance and no NIR at all (no dots,
    whatever projects them). ``scatter``: ``SCATTER_MODELS`` (module docstring); ``scatter_core``:
    the physical model's unscattered share."""
    if scatter not in SCATTER_MODELS:
        raise ValueError(f"scatter must be one of {', '.join(SCATTER_MODELS)}, got {scatter!r}")
    # Float32 throughout, computed in place where the order of operations allows it (the same
    # products and sums as the expressions in the comments, so the same pixels).
    visible = profile.ir_band == "visible"
    banded = _ir_signal_banded(maps, lux, cct, projector_on, dots, power_mw, profile, share, scatter, scatter_core)
    if banded is not None:
        return banded
    z = np.minimum(maps.z, 10.0)
    shade = np.multiply(maps.shade, 0.7)
    shade += 0.3                                        # 0.3 + 0.7 * shade
    if visible:
        diffuse = (maps.albedo @ np.array([0.11, 0.59, 0.30], np.float32)) * (1.0 - maps.specular)
        ambient = lux * diffuse * shade
    else:
        diffuse = np.subtract(1.0, maps.specular)
        diffuse *= maps.nir                             # nir * (1 - specular)
        ambient = np.multiply(diffuse, lux * (nir_share(cct) if share is None else share))
        ambient *= shade                                # lux * share * diffuse * shade
    signal = ambient
    dots_signal = None
    if projector_on and profile.has_projector and not visible:
        f = profile.depth_intrinsics.fx
        h, w = z.shape
        # A dot leaving the projector at column u lands, seen from the left imager, at u + f*b/z.
        u = np.divide(np.float32(f * profile.projector_offset_m), z)
        np.subtract(np.arange(w, dtype=np.float32)[None, :], u, out=u)
        sharp = cv2.remap(dots.image, u, _row_grid(h, w), cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        if scatter == "physical":
            pattern = scattered_pattern(sharp, maps.dot_blur, maps.z, f, scatter_core)
        else:
            soft: np.ndarray = cv2.GaussianBlur(sharp, (0, 0), 1.6)
            mix = np.subtract(maps.dot_blur, 0.35)
            mix /= (1.6 - 0.35)
            np.clip(mix, 0, 1, out=mix)
            # Scattering spreads, not removes, energy: pattern = sharp * (1 - mix) + (soft * 1.9) * mix.
            pattern = np.subtract(1, mix)
            pattern *= sharp
            soft *= 1.9
            soft *= mix
            pattern += soft
        scale = DOT_IRRADIANCE * (power_mw / PROJECTOR_POWER_MW)
        power = np.divide(0.5, z, out=z)                # z is not needed after this
        power **= 2
        if type(scale) is float:
            power *= scale                              # scale * (0.5 / z) ** 2, in float32
        else:
            power = scale * power                       # a numpy scalar keeps its own precision
        # dots = diffuse * shade * power * (0.25 + pattern)
        dots_signal = diffuse * shade
        dots_signal = np.multiply(dots_signal, power, out=dots_signal if power.dtype == np.float32 else None)
        pattern += 0.25
        dots_signal *= pattern
        if maps.glint is not None:
            # The projector mirrored in a spectacle lens: a spot far brighter than any skin.
            dots_signal = dots_signal + maps.glint * power
        if maps.glint_dots is not None:
            # A film's mirror image of the projector: at each pixel, the pattern's light there.
            dots_signal = dots_signal + maps.glint_dots * power * (0.25 + sharp)
        if maps.corneal:
            _add_corneal(dots_signal, maps.corneal, sharp, scale)
        signal = np.add(signal, dots_signal, out=signal if dots_signal.dtype == signal.dtype else None)
    dots_f32 = None if dots_signal is None else dots_signal.astype(np.float32, copy=False)
    return signal.astype(np.float32, copy=False), dots_f32


def _ir_signal_banded(maps: ViewMaps, lux: float, cct: float, projector_on: bool, dots: DotPattern,
                      power_mw: float, profile: CameraProfile, share: float | None, scatter: str = "fixed",
                      scatter_core: float = SCATTER_CORE) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``ir_signal`` for the usual case (NIR imager, float32 maps, Python-float light and power):
    the dot pattern's remap and blur over the whole image, then the per-pixel arithmetic band by band
    (the same operations in the same order). None for any other case."""
    if profile.ir_band == "visible":
        return None
    k_ambient = lux * (nir_share(cct) if share is None else share)
    scale = DOT_IRRADIANCE * (power_mw / PROJECTOR_POWER_MW)
    fields = (maps.z, maps.shade, maps.nir, maps.specular, maps.dot_blur) + \
        (() if maps.glint is None else (maps.glint,)) + (() if maps.glint_dots is None else (maps.glint_dots,))
    if type(k_ambient) is not float or type(scale) is not float or any(a.dtype != np.float32 for a in fields):
        return None
    h, w = maps.z.shape
    z = np.minimum(maps.z, 10.0)
    signal = np.empty((h, w), np.float32)
    dots_signal = None
    if projector_on and profile.has_projector:
        f = profile.depth_intrinsics.fx
        # A dot leaving the projector at column u lands, seen from the left imager, at u + f*b/z.
        u = np.divide(np.float32(f * profile.projector_offset_m), z)
        np.subtract(np.arange(w, dtype=np.float32)[None, :], u, out=u)
        sharp = cv2.remap(dots.image, u, _row_grid(h, w), cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        physical = scattered_pattern(sharp, maps.dot_blur, maps.z, f, scatter_core) if scatter == "physical" else None
        soft = cv2.GaussianBlur(sharp, (0, 0), 1.6) if physical is None else sharp   # (soft unused then)
        dots_signal = np.empty((h, w), np.float32)
    for rows in _bands(h, w):
        shade = np.multiply(maps.shade[rows], 0.7)
        shade += 0.3                                    # 0.3 + 0.7 * shade
        diffuse = np.subtract(1.0, maps.specular[rows])
        diffuse *= maps.nir[rows]                       # nir * (1 - specular)
        ambient = np.multiply(diffuse, k_ambient, out=signal[rows])
        ambient *= shade                                # lux * share * diffuse * shade
        if dots_signal is None:
            continue
        if physical is not None:
            pattern = physical[rows].copy()
        else:
            mix = np.subtract(maps.dot_blur[rows], 0.35)
            mix /= (1.6 - 0.35)
            np.clip(mix, 0, 1, out=mix)
            # Scattering spreads, not removes, energy: pattern = sharp * (1 - mix) + (soft * 1.9) * mix.
            pattern = np.subtract(1, mix)
            pattern *= sharp[rows]
            spread = np.multiply(soft[rows], 1.9)
            spread *= mix
            pattern += spread
        power = np.divide(0.5, z[rows])
        power **= 2
        power *= scale                                  # scale * (0.5 / z) ** 2
        band = np.multiply(diffuse, shade, out=dots_signal[rows])
        band *= power                                   # diffuse * shade * power * (0.25 + pattern)
        pattern += 0.25
        band *= pattern
        if maps.glint is not None:
            # The projector mirrored in a spectacle lens: a spot far brighter than any skin.
            band += np.multiply(maps.glint[rows], power)
        if maps.glint_dots is not None:
            band += maps.glint_dots[rows] * power * (0.25 + sharp[rows])
        ambient += band
    if dots_signal is not None and maps.corneal:
        before = dots_signal.copy()
        _add_corneal(dots_signal, maps.corneal, sharp, scale)
        signal += dots_signal - before
    return signal, dots_signal


def _add_corneal(dots_signal: np.ndarray, corneal: list, sharp: np.ndarray, scale: float) -> None:
    """The projector mirrored in the corneas (cornea.py): each glint's equivalent albedo times the
    projector's irradiance at its depth and the pattern's at its point (the flood floor 0.25 plus the dot
    landing there, sampled on the sharp pattern), spread over the lens's blur."""
    from . import cornea as _cornea
    h, w = sharp.shape
    for g in corneal:
        x, y = min(max(g.u, 0.0), w - 1.0), min(max(g.v, 0.0), h - 1.0)
        x0, y0 = int(x), int(y)
        x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
        fx, fy = x - x0, y - y0
        at = (sharp[y0, x0] * (1 - fx) + sharp[y0, x1] * fx) * (1 - fy) + \
            (sharp[y1, x0] * (1 - fx) + sharp[y1, x1] * fx) * fy
        irradiance = scale * (0.5 / g.z) ** 2 * (0.25 + float(at))
        _cornea.add_splat(dots_signal, g.u, g.v, g.albedo * irradiance)


def expose_ir(signal: np.ndarray, exposure_s: float, gain: float, noise_bank: NoiseBank | None
              ) -> tuple[np.ndarray, np.ndarray]:
    """(Y8 image, noiseless signal in electrons) of the IR imager at an exposure and gain; without
    a noise bank the image is noiseless (for metering)."""
    electrons = signal.astype(np.float32, copy=False) * np.float32(9000.0 * exposure_s)
    noise = None if noise_bank is None else noise_bank.normal(electrons.shape)
    k_gain = np.float32(gain * 255.0 / FULL_WELL_E)
    y8 = np.empty(electrons.shape, np.uint8)
    # Band by band: electrons + noise * sqrt(electrons + r^2), then the gain, as the same operations.
    for rows in _bands(*electrons.shape[:2]):
        e = electrons[rows]
        if noise is None:
            noisy = np.multiply(e, k_gain)
        else:
            noisy = np.add(e, READ_NOISE_E ** 2)
            np.sqrt(noisy, out=noisy)
            noisy *= noise[rows]
            noisy += e
            noisy *= k_gain
        np.clip(noisy, 0, 255, out=noisy)
        y8[rows] = noisy                                # float to uint8 truncates, as astype does
    return y8, electrons


def ir_image(maps: ViewMaps, lux: float, cct: float, projector_on: bool, dots: DotPattern,
             noise_bank: NoiseBank, power_mw: float = PROJECTOR_POWER_MW,
             exposure_s: float = IR_EXPOSURE_S, *, gain: float = 1.0, profile: CameraProfile = D435,
             share: float | None = None, pattern_out: list | None = None, scatter: str = "fixed",
             scatter_core: float = SCATTER_CORE) -> tuple[np.ndarray, np.ndarray]:
    """(Y8 image, noiseless signal in electrons) of the left IR imager: ``ir_signal`` exposed.
    ``pattern_out``: if given, the projector's share of the signal (electrons, or None) is appended
    to it (structured-light depth needs it)."""
    signal, dots_signal = ir_signal(maps, lux, cct, projector_on, dots, power_mw, profile=profile, share=share,
                                    scatter=scatter, scatter_core=scatter_core)
    if pattern_out is not None:
        pattern_out.append(None if dots_signal is None else dots_signal * np.float32(9000.0 * exposure_s))
    return expose_ir(signal, exposure_s, gain, noise_bank)


def depth_image(maps: ViewMaps, ir_electrons: np.ndarray, noise_bank: NoiseBank, *,
                profile: CameraProfile = D435, pattern_e: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(Z16 depth in the profile's units, noiseless ground-truth metres with NaN where the sensor
    cannot see).

    Active stereo (D4xx) matches any texture, the projector's or the scene's; structured light
    (``profile.structured_light``) matches only its own pattern, so it needs ``pattern_e`` (the
    projector's electrons, None when the projector is off: no depth at all)."""
    z = maps.z.astype(np.float32, copy=False)         # read only
    f, b = profile.depth_intrinsics.fx, profile.stereo_baseline_m
    e = ir_electrons
    mean = cv2.boxFilter(e, -1, (7, 7))
    if profile.structured_light:
        # Pattern contrast against all the light's shot noise in a 7x7 window.
        if pattern_e is None:
            snr = np.zeros_like(e)
        else:
            pm = cv2.boxFilter(pattern_e, -1, (7, 7))
            pvar = np.maximum(cv2.boxFilter(pattern_e * pattern_e, -1, (7, 7)) - pm * pm, 0)
            snr = np.sqrt(pvar) / np.sqrt(mean + READ_NOISE_E ** 2)
    else:
        # Stereo matching needs local texture well above the noise in a 7x7 window.
        # snr = sqrt(max(box(e^2) - mean^2, 0)) / sqrt(mean + r^2), in place.
        var = cv2.boxFilter(e * e, -1, (7, 7))
        var -= mean * mean
        np.maximum(var, 0, out=var)
        snr = np.sqrt(var, out=var)
        den = np.add(mean, READ_NOISE_E ** 2)
        snr /= np.sqrt(den, out=den)
    textured = snr > 1.2
    if maps.glint is not None:
        # A mirrored light source is in a different place for each imager (or for projector and
        # camera): nothing to match where it clips.
        glint_clip = (e >= FULL_WELL_E) & (maps.glint > 0.5)
        textured &= ~(cv2.dilate(glint_clip.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    if maps.glint_dots is not None:
        film_clip = (e >= FULL_WELL_E) & (maps.glint_dots > 0.5)
        textured &= ~(cv2.dilate(film_clip.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    # Occlusion: a pixel is hidden from the right imager (or, for structured light, from the
    # projector) if a nearer pixel to its right covers it.
    disp = np.float32(f * b) / z
    cols = np.arange(z.shape[1], dtype=np.float32)[None, :]
    g = disp - cols                                     # pixel x lands at column x - disp in the right view
    window = int(min(max(np.ceil(f * b / profile.depth_range_m[0]) + 1, 96), 255))   # the largest disparity
    right_max = maximum_filter1d(g[:, ::-1], size=window, axis=1, origin=(window - 1) // 2, mode="constant",
                                 cval=-1e9)[:, ::-1]
    g += 0.5
    occluded = right_max > g                            # right_max > g + 0.5
    # Columns whose match would fall left of the right imager's field of view have no depth.
    occluded |= (cols - disp) < 0
    zmin, zmax = profile.depth_range_m
    in_range = (z >= zmin) & (z <= zmax)
    valid = textured & ~occluded & in_range
    truth = np.where(in_range & ~occluded, z, np.nan).astype(np.float32, copy=False)
    # Matching noise: correlated over the matching window; worse where texture is marginal.
    noise: np.ndarray = cv2.GaussianBlur(noise_bank.normal(z.shape), (0, 0), 0.8, dst=mean)   # mean is free now
    sigma_px, scale = profile.sigma_disparity_px, profile.depth_scale
    if type(sigma_px) is not float or type(scale) is not float or z.dtype != np.float32 or snr.dtype != np.float32:
        noise *= np.float32(2.2)
        sigma_d = profile.sigma_disparity_px * np.clip(3.0 / np.maximum(snr, 1e-3), 1.0, 2.5)
        zn = z + z * z * sigma_d / np.float32(f * b) * noise
        return np.where(valid, np.round(zn / scale), 0).clip(0, 65535).astype(np.uint16), truth
    out = np.empty(z.shape, np.uint16)
    fb = np.float32(f * b)
    for rows in _bands(*z.shape):
        # sigma_d = sigma * clip(3 / max(snr, 1e-3), 1, 2.5); zn = z + z * z * sigma_d / (f b) * (noise * 2.2)
        sigma_d = np.maximum(snr[rows], 1e-3)
        np.divide(3.0, sigma_d, out=sigma_d)
        np.clip(sigma_d, 1.0, 2.5, out=sigma_d)
        sigma_d *= sigma_px
        zr = z[rows]
        zn = np.multiply(zr, zr)
        zn *= sigma_d
        zn /= fb
        zn *= np.multiply(noise[rows], np.float32(2.2), out=sigma_d)
        zn += zr
        # round(zn / scale) where valid, else 0, clipped to Z16.
        zn /= scale
        np.round(zn, out=zn)
        zn[~valid[rows]] = 0
        np.clip(zn, 0, 65535, out=zn)
        out[rows] = zn
    return out, truth
