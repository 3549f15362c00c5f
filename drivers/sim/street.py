"""A branch's glazed street front: the tenth family's two lights.

``Backlight`` ("backlight"): the kiosk faces the glazing, so the person stands with a bright street
behind them. The face gets the room's light (80-400 lux, ``families.LIGHT_LUX``; warm-white LED
downlights, 3000-4000 K, 0.002 of 850 nm per lux as "led"); what the camera sees behind the head
(the render's wall, ``object_id == -1``: the glazing at 1.6 m) is the street by day, whose luminance
is given as the illuminance that would make the wall's own albedo that bright: 5,000-30,000 lux-
equivalent (an overcast to a sunlit street seen through clear glass; recalled orders of magnitude:
overcast daylight 5,000-20,000 lux, a sunlit facade 20,000-50,000 lux x its reflectance), daylight
5500-6500 K, 0.09 of 850 nm per lux (``scene.LIGHT_NIR_SHARE["daylight"]``). The colour and the IR
auto-exposure of the camera meter a scene whose background is 12-375 times brighter than the face.
Light from the glazing also reaches the head from behind at grazing incidence: a rim along the
silhouette (hair, ears, shoulders) where the head borders the bright background, ``rim`` (4-15 %) of
the street's lux-equivalent at the silhouette falling off as exp(-d / ``rim_width_m``) (3-8 mm) with
the distance d behind the silhouette, in colour (the daylight's colour) and at 850 nm (its NIR share).
The rim is drawn all along the silhouette because the glazing is an extended source behind the person
(a wall of light, not a sun). The projector's dots still land where the wall is (a simplification:
through real glass they would mostly go on into the street and be lost).

``PassingShadows`` ("passing_shade"): a branch lit by daylight through its street window (300-2000
lux, 4500-6000 K); 75 % of the lux on the face comes through the window, 25 % from the room's LEDs
(typical), so the 850 nm share per lux is 0.75 x 0.09 + 0.25 x 0.002 = 0.068, 99.3 % of it the
window's. People walk past outside (or a bus pulls by): each pass is a shadow band, a slab between two
parallel planes in the depth camera's frame, crossing the face sideways (its normal within 20° of the
camera's x axis). Inside the band the window light is blocked by ``depth`` (40-100 %), so the face
loses ``depth`` x 0.75 of its lux (30-75 %) and ``depth`` x 0.993 of its 850 nm ambient; the band's
edges are soft (``penumbra_m`` 30-100 mm: the sky through the window is an extended source; the sun's
disc alone would give 0.0093 x the 3-6 m to the walker, 28-56 mm). The band is 0.3-0.6 m wide at the
face (a passer-by), its edge sweeps the face's 0.16 m in 0.2-1.0 s, and passes follow each other with
0.5-3 s of unshadowed light between them (a busy street; typical), starting at a drawn phase. The
band's position follows the scene's time ``t`` (as the head's motion does), so a colour frame and a
depth frame at the same instant see the same shadow. Only the ambient light is shaded: the projector's
dots and the kiosk screen's light are not.

Both are cheap per frame: a distance transform of the background mask (backlight) and one plane
distance per pixel (shadows).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .optics import View
from .render import ViewMaps
from .sensor import illuminant_bgr

# Backlight
STREET_LUX = (5000.0, 30000.0)    # the street seen behind the head, lux-equivalent on the wall's albedo
STREET_CCT = (5500.0, 6500.0)
STREET_NIR_SHARE = 0.09           # daylight's 850 nm per lux (scene.LIGHT_NIR_SHARE["daylight"])
RIM = (0.04, 0.15)                # the rim's share of the street's lux-equivalent at the silhouette
RIM_WIDTH_M = (0.003, 0.008)      # its fall-off behind the silhouette
# Passing shadows
WINDOW_LUX = 0.75                 # the window's share of the lux on the face (the rest the room's LEDs)
WINDOW_NIR = 0.75 * 0.09 / (0.75 * 0.09 + 0.25 * 0.002)   # its share of the 850 nm ambient: 0.993
PASSING_NIR_SHARE = 0.75 * 0.09 + 0.25 * 0.002            # 0.068 per lux
SHADOW_DEPTH = (0.4, 1.0)         # how much of the window light the passer blocks in the band
BAND_M = (0.3, 0.6)               # the band's width at the face
SHADOW_PENUMBRA_M = (0.03, 0.10)
SWEEP_S = (0.2, 1.0)              # the edge crossing the face
FACE_M = 0.16                     # the face's width the sweep is timed on
GAP_S = (0.5, 3.0)                # unshadowed light between passes
LEAD_M = 0.2                      # a pass starts and ends this far beyond the face's centre (+ half band)


def _behind(maps: ViewMaps) -> np.ndarray:
    return maps.object_id == -1


@dataclass(frozen=True)
class Backlight:
    street_lux: float
    street_cct: float
    rim: float
    rim_width_m: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Backlight:
        lux = float(np.exp(rng.uniform(np.log(STREET_LUX[0]), np.log(STREET_LUX[1]))))
        return cls(lux, float(rng.uniform(*STREET_CCT)), float(rng.uniform(*RIM)), float(rng.uniform(*RIM_WIDTH_M)))

    def rim_lux(self, view: View, maps: ViewMaps) -> np.ndarray:
        """(H, W) float32: the rim's lux-equivalent on everything in front of the glazing (0 on it)."""
        behind = _behind(maps)
        if not behind.any() or behind.all():
            return np.zeros(maps.z.shape, np.float32)
        d_px = cv2.distanceTransform((~behind).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        z = np.where(np.isfinite(maps.z), maps.z, 0.0)
        d_m = d_px * z / np.float32(view.intrinsics.fx)
        rim = self.rim * self.street_lux * np.exp(-d_m / self.rim_width_m)
        return np.where(behind, 0.0, rim).astype(np.float32)

    def color(self, irr: np.ndarray, view: View, maps: ViewMaps, lux: float, cct: float) -> np.ndarray:
        """The colour irradiance with the street behind (replacing the room's light on the glazing, as
        ``sensor.color_irradiance`` computes it) and the rim on the silhouette."""
        day = illuminant_bgr(self.street_cct)
        street = ((0.35 + 0.65 * maps.shade) * self.street_lux)[..., None] * day * maps.albedo
        out = np.where(_behind(maps)[..., None], street, irr)
        rim = np.where(maps.emissive, 0.0, self.rim_lux(view, maps))
        return (out + rim[..., None] * day * maps.albedo).astype(np.float32)

    def ir(self, signal: np.ndarray, view: View, maps: ViewMaps, lux: float, share: float) -> np.ndarray:
        """The IR light with the street's 850 nm on the glazing (instead of the room's ambient there,
        as ``sensor.ir_signal`` computes it) and the rim's."""
        diffuse = maps.nir * (1.0 - maps.specular)
        extra = (self.street_lux * STREET_NIR_SHARE - lux * share) * diffuse * (0.3 + 0.7 * maps.shade)
        out = signal + np.where(_behind(maps), extra, 0.0)
        out = out + self.rim_lux(view, maps) * STREET_NIR_SHARE * diffuse
        return np.maximum(out, 0.0).astype(np.float32)


@dataclass(frozen=True)
class PassingShadows:
    """Shadow bands sweeping sideways across the face, one pass after another. ``normal . p`` (metres,
    depth-camera frame) is a point's coordinate across the band; the band's centre is at ``centre_m``
    + the pass's travel at time t."""

    normal: tuple[float, float, float]
    centre_m: float
    speed_mps: float           # signed: which way the passer walks
    band_m: float
    penumbra_m: float
    depth: float
    gap_s: float
    phase_s: float

    @classmethod
    def draw(cls, rng: np.random.Generator, distance_m: float) -> PassingShadows:
        tilt = np.deg2rad(rng.uniform(-20.0, 20.0))
        n = np.array([np.cos(tilt), np.sin(tilt), 0.0])
        speed = FACE_M / float(rng.uniform(*SWEEP_S)) * float(rng.choice([-1.0, 1.0]))
        band = float(rng.uniform(*BAND_M))
        gap = float(rng.uniform(*GAP_S))
        period = (band + 2 * LEAD_M) / abs(speed) + gap
        return cls((float(n[0]), float(n[1]), float(n[2])), float(n @ np.array([0.0, 0.0, distance_m])), speed,
                   band, float(rng.uniform(*SHADOW_PENUMBRA_M)), float(rng.uniform(*SHADOW_DEPTH)), gap,
                   float(rng.uniform(0.0, period)))

    @property
    def period_s(self) -> float:
        return (self.band_m + 2 * LEAD_M) / abs(self.speed_mps) + self.gap_s

    def band_centre(self, t: float) -> float | None:
        """Where the band's centre is at time ``t`` (along the normal, relative to ``centre_m``), or
        None between passes."""
        tau = (t + self.phase_s) % self.period_s
        travel = self.band_m / 2 + LEAD_M
        pos = -travel + abs(self.speed_mps) * tau
        if pos > travel:
            return None
        return pos if self.speed_mps > 0 else -pos

    def shadow(self, view: View, z: np.ndarray, t: float) -> np.ndarray:
        """(H, W) float32: how deep in the band each pixel's surface is (0 outside .. 1 in the umbra)."""
        c = self.band_centre(t)
        if c is None:
            return np.zeros(z.shape, np.float32)
        R, T = view.depth_to_view.R, view.depth_to_view.t
        nv = R @ np.asarray(self.normal)
        centre = self.centre_m + c + float(nv @ T)
        rays = view.rays
        g = nv[0] * rays[..., 0] + nv[1] * rays[..., 1] + nv[2]
        zf = np.where(np.isfinite(z), z, 10.0)
        outside = np.abs(zf * g - centre) - self.band_m / 2     # metres outside the band's edge
        return np.clip(0.5 - outside / self.penumbra_m, 0.0, 1.0).astype(np.float32)

    def color(self, irr: np.ndarray, view: View, maps: ViewMaps, lux: float, cct: float, t: float) -> np.ndarray:
        """Take the band's share of the ambient off the colour irradiance (in place; a display's own
        light and the screen's are kept)."""
        s = self.shadow(view, maps.z, t)
        if not s.any():
            return irr
        lost = s * (self.depth * WINDOW_LUX) * (0.35 + 0.65 * maps.shade) * lux
        lost = np.where(maps.emissive, 0.0, lost)
        irr -= (lost[..., None] * illuminant_bgr(cct) * maps.albedo).astype(np.float32)
        np.maximum(irr, 0.0, out=irr)
        return irr

    def ir(self, signal: np.ndarray, view: View, maps: ViewMaps, lux: float, share: float, t: float) -> np.ndarray:
        """Take the band's share of the 850 nm ambient off ``signal`` (in place)."""
        s = self.shadow(view, maps.z, t)
        if not s.any():
            return signal
        ambient = lux * share * maps.nir * (1.0 - maps.specular) * (0.3 + 0.7 * maps.shade)
        signal -= (s * (self.depth * WINDOW_NIR) * ambient).astype(np.float32)
        np.maximum(signal, 0.0, out=signal)
        return signal
