"""The twelfth family's two lights: a kiosk's own ring light, and car headlights sweeping a walk-up ATM.

``RingLight`` ("ring_light"): a video teller machine or a kiosk with its own key light, an LED ring
around its camera window (the selfie-ring and booth-photo lighting that gives an even, frontal light).
Every earlier light is far from the face (a lamp overhead, a window, the sun: one irradiance for the
whole head, or one direction); this one sits where the camera is, 0.35-0.52 m from the face, so the
face is lit in the near field: the irradiance falls with the distance from the ring, the nose's tip
(20-30 mm nearer) gets more than the cheeks and the ears, a face at 350 mm ~2x what it gets at 520 mm,
and the light comes from the camera's own direction (flat, shadowless: the shading that tells a face
from a print under an overhead light is gone). A ring of radius ``a`` whose elements emit as
Lambertian surfaces (``I`` cd in all towards its axis) lights a surface on its axis, at distance ``z``
and facing it, with ``E = I z^2 / (z^2 + a^2)^2`` (each element is at sqrt(z^2 + a^2), seen at
cos = z / sqrt(z^2 + a^2) from its own axis and from the surface's normal); off the axis the simulator
takes ``z`` as the distance to the ring's centre and the incidence as the angle to the camera (the ring
surrounds it: ``maps.shade``). ``I`` is drawn so a surface on the axis at 0.45 m gets 150-800
lux (log-uniform; a selfie ring light of 25-45 cm gives several hundred to ~1,000 lux at half a metre
at full power, a kiosk's runs dimmer so as not to dazzle: typical, recalled), on top of the lobby's own
100-500 lux (ceiling LEDs, 0.002 of 850 nm per lux as "led"); its radius 50-120 mm (a 10-24 cm ring
around the window), its colour 4000-6500 K (its own, not the room's). A white LED ring has (as "led")
0.002 lux-equivalents of 850 nm per lux: its IR is computed the same way (in the IR imager's view, from
the IR imager's position, ~6 cm from the ring's centre: a 0.2 % part, where that error does not show).

``Headlights`` ("headlights"): a walk-up ATM or a drive-through kiosk on a forecourt at night, lit by
its canopy's LEDs (15-80 lux on the face, 3500-5000 K, 0.002 NIR per lux), beside a road: the
headlamps of passing or turning cars sweep across the face. A sweep is a pass of the beam's edge over
the face: its time profile is a Gaussian in time, ``peak * exp(-(t - t_c)^2 / (2 s^2))``, its full
width at half maximum 0.5-2 s (s = FWHM / 2.355); passes follow each other every 2-6 s (a busy road
beside the kiosk: ~600-1,800 vehicles an hour, recalled; a cycle of ``N_PASSES`` passes repeats). Each
car's headlamps are drawn: halogen (half of them; 2900-3300 K, and a filament's 850 nm, 0.32 per lux as
"halogen") or LED (5500-6500 K, 0.002 per lux: nothing at 850 nm to speak of); dipped (80 %) or main
beam (20 %). A face 1.5 m up, 5-20 m from headlamps 0.6 m up, is 2.5-10° above the lamps' axis: above
a dipped beam's cut-off, where UN ECE Regulation 112 caps the intensity at a few hundred to ~1,000 cd
(its glare points: recalled), so 3-30 lux at the face (log-uniform); a main beam's 20,000-100,000 cd
(recalled) give 30-300 lux. The beam comes from the road's side: 30-80° off the camera's axis (either
side), 0-6° below the face; the light on each surface goes as the cosine between its normal and the
direction to the car (the normals from the rendered depth, ``lobby.surface_normals`` on a coarser
grid), colour and IR.
The profile is sampled at the frame's time (an exposure of <= 33 ms against a sweep's s >= 0.21 s
changes it by < 1 %). Between sweeps nothing is computed (a pass adding under 0.1 lux is dark).

Both are cheap per frame: the ring is a few array operations on the rendered distance and shade; the
headlights a sum of Gaussians per frame and, while a car sweeps, the surface normals once per view at
a quarter or half resolution (the light varies slowly over the image; scaled back up, as night.py's
flood).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .lobby import _in_view, surface_normals
from .optics import View
from .render import ViewMaps
from .sensor import illuminant_bgr

# Ring light
RING_LUX = (150.0, 800.0)          # on the face's centre at REF_M, log-uniform
REF_M = 0.45
RING_RADIUS_M = (0.05, 0.12)
RING_CCT = (4000.0, 6500.0)
RING_NIR_SHARE = 0.002             # scene.LIGHT_NIR_SHARE["led"]
# Headlights
N_PASSES = 8
PASS_GAP_S = (2.0, 6.0)            # between one pass's centre and the next
PASS_FWHM_S = (0.5, 2.0)
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))   # 2.3548
DIPPED_LUX = (3.0, 30.0)           # log-uniform
MAIN_BEAM_LUX = (30.0, 300.0)
MAIN_BEAM_SHARE = 0.20
HALOGEN_SHARE = 0.5
HALOGEN_CCT = (2900.0, 3300.0)
LED_CCT = (5500.0, 6500.0)
HALOGEN_NIR = 0.32                 # scene.LIGHT_NIR_SHARE["halogen"]
LED_NIR = 0.002                    # scene.LIGHT_NIR_SHARE["led"]
CAR_AZIMUTH_DEG = (30.0, 80.0)
CAR_BELOW_DEG = (0.0, 6.0)
DARK_LUX = 0.1                     # a pass adding less than this (<= 0.7 % of the canopy's 15+ lux) is dark


@dataclass(frozen=True)
class RingLight:
    intensity_cd: float               # I: E = I z^2 / (z^2 + a^2)^2 on the axis
    radius_m: float
    cct: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> RingLight:
        ref = float(np.exp(rng.uniform(np.log(RING_LUX[0]), np.log(RING_LUX[1]))))
        a = float(rng.uniform(*RING_RADIUS_M))
        return cls(ref * (REF_M ** 2 + a ** 2) ** 2 / REF_M ** 2, a, float(rng.uniform(*RING_CCT)))

    def on_axis(self, z: np.ndarray | float) -> np.ndarray:
        """The irradiance (lux) on a surface facing the ring on its axis at distance ``z`` metres."""
        z2 = np.asarray(z, np.float64) ** 2
        return self.intensity_cd * z2 / (z2 + self.radius_m ** 2) ** 2

    def irradiance(self, view: View, maps: ViewMaps) -> np.ndarray:
        """(H, W) float32 lux on each pixel's surface: ``on_axis`` at its distance from the camera,
        times the cosine of its incidence (``maps.shade``); 0 where nothing is rendered."""
        # In place, float32: r^2 = (z |ray|)^2, e = I r^2 / (r^2 + a^2)^2 x shade.
        r2 = np.multiply(maps.z, view.ray_norm, dtype=np.float32)
        r2 *= r2
        d = r2 + np.float32(self.radius_m ** 2)
        d *= d
        with np.errstate(invalid="ignore"):
            r2 /= d                                 # inf / inf where nothing is rendered: set to 0 below
        r2 *= np.float32(self.intensity_cd)
        r2 *= maps.shade
        finite = np.isfinite(maps.z)
        if not finite.all():
            np.copyto(r2, np.float32(0.0), where=~finite)
        return r2

    def color(self, irr: np.ndarray, view: View, maps: ViewMaps) -> np.ndarray:
        """The colour irradiance with the ring's light (a display's own light kept)."""
        e = self.irradiance(view, maps)
        if maps.emissive.any():
            np.copyto(e, np.float32(0.0), where=maps.emissive)
        light = illuminant_bgr(self.cct).astype(np.float32)
        # irr + albedo x (e x light), channel by channel in OpenCV (~40 % less time than numpy's broadcast).
        lit = cv2.merge([e * light[0], e * light[1], e * light[2]])
        out = cv2.multiply(maps.albedo, lit)
        return cv2.add(out, irr.astype(np.float32, copy=False), dst=out)

    def ir(self, signal: np.ndarray, view: View, maps: ViewMaps) -> np.ndarray:
        """The IR light with the ring's 850 nm (a white LED's 0.002 per lux)."""
        e = self.irradiance(view, maps)
        e *= np.float32(RING_NIR_SHARE)
        e *= maps.nir
        e *= 1.0 - maps.specular
        e += signal
        return e


@dataclass(frozen=True)
class Headlights:
    # Per pass: (centre s, sigma s, peak lux at normal incidence, cct K, 850 nm per lux, and the direction
    # x, y, z from the face to the car in the depth-camera frame).
    passes: tuple[tuple[float, ...], ...]
    period_s: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Headlights:
        passes, t = [], 0.0
        for _ in range(N_PASSES):
            t += float(rng.uniform(*PASS_GAP_S))
            sigma = float(rng.uniform(*PASS_FWHM_S)) / FWHM_PER_SIGMA
            main = bool(rng.random() < MAIN_BEAM_SHARE)
            lo, hi = MAIN_BEAM_LUX if main else DIPPED_LUX
            peak = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            halogen = bool(rng.random() < HALOGEN_SHARE)
            cct = float(rng.uniform(*(HALOGEN_CCT if halogen else LED_CCT)))
            az = np.deg2rad(rng.uniform(*CAR_AZIMUTH_DEG)) * float(rng.choice([-1.0, 1.0]))
            below = np.deg2rad(rng.uniform(*CAR_BELOW_DEG))
            d = (np.sin(az) * np.cos(below), np.sin(below), -np.cos(az) * np.cos(below))
            passes.append((t, sigma, peak, cct, HALOGEN_NIR if halogen else LED_NIR) + tuple(float(v) for v in d))
        period = t + float(rng.uniform(*PASS_GAP_S))
        # The cycle starts anywhere: shift every centre by the same drawn phase.
        phase = float(rng.uniform(0.0, period))
        return cls(tuple((p[0] - phase,) + p[1:] for p in passes), period)

    def levels(self, t: float) -> list[tuple[float, float, float, np.ndarray]]:
        """The passes lit at time ``t``: (lux at normal incidence, cct, NIR per lux, direction), each
        pass's nearest repeat in the cycle; passes adding under ``DARK_LUX`` left out."""
        out = []
        for c, sigma, peak, cct, nir, dx, dy, dz in self.passes:
            # The nearest repeat of this pass (the cycle is >= 8 x 2 s, a Gaussian's s <= 0.85 s).
            dt = (t - c + self.period_s / 2.0) % self.period_s - self.period_s / 2.0
            g = float(np.exp(-0.5 * (dt / sigma) ** 2))
            if peak * g >= DARK_LUX:
                out.append((peak * g, cct, nir, np.array([dx, dy, dz])))
        return out

    def gain(self, view: View, z: np.ndarray, t: float, channels: np.ndarray) -> np.ndarray | None:
        """(H, W, K) float32: the sum over the lit passes of lux x cos(normal, direction to the car) x
        ``channels[k]`` (a (K,) row per pass), or None when no pass is lit. The geometry varies slowly
        over the image: normals and cosines on every ``stride``-th pixel (2 at 640 wide, 4 at 1280),
        scaled back up (as night.py's flood)."""
        lit = self.levels(t)
        if not lit:
            return None
        h, w = z.shape
        stride = max(2, w // 320)
        zs = np.ascontiguousarray(z[::stride, ::stride])
        n = surface_normals(view, zs, stride)
        acc = np.zeros(zs.shape + (channels.shape[1],), np.float32)
        for k, (lux, _, _, d) in enumerate(lit):
            cos = np.clip(n @ _in_view(view, d).astype(np.float32), 0.0, 1.0)
            acc += cos[..., None] * (np.float32(lux) * channels[k].astype(np.float32))
        up = cv2.resize(acc, (w, h), interpolation=cv2.INTER_LINEAR)
        return up.reshape(h, w, -1)

    def color(self, irr: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The colour irradiance with the headlamps' light at time ``t`` (a display's own light kept)."""
        lit = self.levels(t)
        g = self.gain(view, maps.z, t, np.array([illuminant_bgr(cct) for _, cct, _, _ in lit]).reshape(-1, 3))
        if g is None:
            return irr
        if maps.emissive.any():
            np.copyto(g, np.float32(0.0), where=maps.emissive[..., None])
        cv2.multiply(g, maps.albedo, dst=g)
        return cv2.add(g, irr.astype(np.float32, copy=False), dst=g)

    def ir(self, signal: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The IR light with the headlamps' 850 nm at time ``t``."""
        lit = self.levels(t)
        g = self.gain(view, maps.z, t, np.array([[nir] for _, _, nir, _ in lit]).reshape(-1, 1))
        if g is None:
            return signal
        out = np.subtract(1.0, maps.specular, dtype=np.float32)
        out *= maps.nir
        out *= g[..., 0]
        out += signal
        return out
