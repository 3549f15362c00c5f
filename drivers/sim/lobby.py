"""The eleventh family's two lights: an LED advertising panel beside the kiosk, and sun through a tree.

``Signage`` ("signage"): a bank lobby or a mall lit by its ceiling LEDs (100-500 lux on the face,
3000-4500 K, 0.002 of 850 nm per lux as "led") with an LED advertising panel 0.5-2 m beside the kiosk.
The panel lights one side of the face: it sits 35-75° off the camera's axis (either side, 0-15° above
the face), so the light on each surface goes as the cosine between its normal and the direction to the
panel (a far-field approximation of a panel 0.5-2 m away), ``peak_lux`` (20-300 lux, log-uniform) at
normal incidence times the advert's own brightness (0.3-1.0). Its colour changes between adverts: a
cycle of ``N_ADVERTS`` adverts, each 2-8 s on screen, each with its own colour mixed from the panel's
red, green and blue emitters (a saturated or a pale mix), entering by a hard cut (half of them) or a
0.3-1.0 s linear fade from the previous one; a capture of 1-3 s therefore often straddles a change. An
RGB LED panel's emitters are narrow-band (typical peaks: red 625 nm, green 500-525 nm, blue 440-470 nm,
lightcolourvision.org's LED definition; an AlGaInP red's FWHM ~20 nm, recalled), so at 850 nm, more
than ten widths beyond the red's peak, it emits nothing measurable: the panel adds colour light only,
none at 850 nm (the IR image does not see it; the colour image does). The panel's colour is given
as linear B, G, R normalised to unit luminance (Rec. 709 weights), so its lux are lux.

``DappledSun`` ("dappled_sun"): a walk-up ATM under a tree. The face is in the canopy's shade (the
family's lux, 200-1500, 5000-6500 K; its 850 nm share 0.20 per lux: leaves absorb most of the visible
and scatter about half of the near infrared, reflecting or transmitting it, the "red edge", recalled;
so the light under a canopy carries about twice daylight's 0.09 of 850 nm per lux), crossed by
sunflecks: the gaps between the leaves are pinholes that image the sun's disc (0.53°, 0.0093 rad) on
the face, so a gap 3-8 m up gives a fleck 28-74 mm across (the pinhole ellipses of Phys. Teach. 61,
716: patch size = the sun's angular diameter x the distance to the gap). The flecks carry direct sun,
``fleck_lux`` (2,000-10,000 lux at normal incidence, log-uniform: a small gap passes a partial image of
the sun, a few to 15 % of full sun's ~70,000-100,000 lux; typical, recalled), with the sun's colour
(4800-5800 K) and its 850 nm (0.12 per lux, ``scene.LIGHT_NIR_SHARE["direct_sun"]``), on surfaces
facing the sun (cosine law; the sun 25-65° up, up to 50° either side of the camera's axis). The
pattern is a sum of ``N_WAVES`` cosines over the plane across the sun's beam (wavelengths 60-150 mm,
directions and phases drawn), thresholded so flecks cover 10-40 % of the area, with soft edges; wind
moves the leaves, so each wave's phase runs at its own 0.3-3 Hz: flecks drift and flicker across the
face between frames. The pattern follows the scene's time ``t`` (as the head's motion does), so a
colour frame and a depth frame at the same instant see the same flecks. Only the ambient light is
changed: the projector's dots and the kiosk screen's light are not.

Both are cheap per frame: surface normals from the rendered depth (two finite differences and a cross
product) and, for the flecks, a few cosines per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from .optics import View
from .render import ViewMaps
from .sensor import illuminant_bgr

# Signage
PANEL_LUX = (20.0, 300.0)          # at normal incidence, the brightest advert; log-uniform
ADVERT_LEVEL = (0.3, 1.0)          # each advert's brightness relative to that
PANEL_AZIMUTH_DEG = (35.0, 75.0)   # off the camera's axis, either side
PANEL_ELEVATION_DEG = (0.0, 15.0)  # above the face
N_ADVERTS = 8
ADVERT_S = (2.0, 8.0)
FADE_S = (0.3, 1.0)                # a fade's length (half the adverts enter by a hard cut)
REC709_BGR = np.array([0.0722, 0.7152, 0.2126])   # luminance of linear B, G, R
# Dappled sun
FLECK_LUX = (2000.0, 10000.0)      # the direct sun a fleck carries at normal incidence; log-uniform
FLECK_CCT = (4800.0, 5800.0)
SUN_NIR_SHARE = 0.12               # scene.LIGHT_NIR_SHARE["direct_sun"]
CANOPY_NIR_SHARE = 0.20            # the shade's own (scene.LIGHT_NIR_SHARE["dappled_sun"])
SUN_ELEVATION_DEG = (25.0, 65.0)
SUN_AZIMUTH_DEG = (-50.0, 50.0)
N_WAVES = 5
WAVELENGTH_M = (0.06, 0.15)
FLUTTER_HZ = (0.3, 3.0)
COVER = (0.10, 0.40)               # the share of the area in a fleck
EDGE = 0.35                        # the soft edge, in units of the field's standard deviation


def surface_normals(view: View, z: np.ndarray, stride: int = 1) -> np.ndarray:
    """(H, W, 3) float32 unit surface normals in ``view``'s frame, facing the camera (n_z <= 0), from
    the rendered depth by central differences of the back-projected points; (0, 0, -1) where nothing is
    rendered or a neighbour is missing. ``z`` may be the depth sampled at every ``stride``-th pixel of
    ``view`` (rows and columns; the twelfth's headlamps, keylight.py)."""
    rays = view.rays[::stride, ::stride]
    finite = np.isfinite(z)
    zf = np.where(finite, z, 0.0).astype(np.float32)
    x, y = rays[..., 0].astype(np.float32) * zf, rays[..., 1].astype(np.float32) * zf
    h, w = z.shape
    # Central differences along u (columns) and v (rows) of the points (x, y, z); edges left at 0.
    ux, uy, uz = (np.zeros((h, w), np.float32) for _ in range(3))
    vx, vy, vz = (np.zeros((h, w), np.float32) for _ in range(3))
    for a, out in ((x, ux), (y, uy), (zf, uz)):
        np.subtract(a[:, 2:], a[:, :-2], out=out[:, 1:-1])
    for a, out in ((x, vx), (y, vy), (zf, vz)):
        np.subtract(a[2:], a[:-2], out=out[1:-1])
    n = np.empty((h, w, 3), np.float32)
    n[..., 0] = uy * vz - uz * vy
    n[..., 1] = uz * vx - ux * vz
    n[..., 2] = ux * vy - uy * vx
    norm = np.sqrt((n * n).sum(axis=-1))
    ok = finite & (norm > 0)
    ok[:, 1:-1] &= finite[:, 2:] & finite[:, :-2]
    ok[1:-1] &= finite[2:] & finite[:-2]
    ok[:, [0, -1]] = False
    ok[[0, -1]] = False
    n /= np.where(norm > 0, norm, 1.0)[..., None]
    n *= np.where(n[..., 2] > 0, -1.0, 1.0).astype(np.float32)[..., None]
    n[~ok] = (0.0, 0.0, -1.0)
    return n


def side_direction(rng: np.random.Generator, azimuth_deg: tuple[float, float],
                   elevation_deg: tuple[float, float]) -> tuple[float, float, float]:
    """A unit direction from the face (depth camera's frame: x right, y down, z away from the camera), drawn
    on either side, ``azimuth_deg`` off the line towards the camera and ``elevation_deg`` above the face."""
    side = float(rng.choice([-1.0, 1.0]))
    az, el = np.deg2rad(rng.uniform(*azimuth_deg)), np.deg2rad(rng.uniform(*elevation_deg))
    return (float(side * np.sin(az) * np.cos(el)), float(-np.sin(el)), float(-np.cos(az) * np.cos(el)))


def _in_view(view: View, d: np.ndarray) -> np.ndarray:
    return view.depth_to_view.R @ d


@dataclass(frozen=True)
class Signage:
    direction: tuple[float, float, float]      # from the face to the panel, depth-camera frame
    peak_lux: float
    colours: tuple[tuple[float, float, float], ...]   # per advert, linear B, G, R of unit luminance
    levels: tuple[float, ...]
    durations_s: tuple[float, ...]
    fades_s: tuple[float, ...]                 # 0.0: a hard cut into the advert
    phase_s: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Signage:
        d = side_direction(rng, PANEL_AZIMUTH_DEG, PANEL_ELEVATION_DEG)
        peak = float(np.exp(rng.uniform(np.log(PANEL_LUX[0]), np.log(PANEL_LUX[1]))))
        colours, levels, durations, fades = [], [], [], []
        for _ in range(N_ADVERTS):
            mix = rng.uniform(0.0, 1.0, 3) ** float(rng.choice([1.0, 3.0]))   # pale or saturated
            mix = np.maximum(mix, 0.02)
            mix = mix / float(mix @ REC709_BGR)
            colours.append((float(mix[0]), float(mix[1]), float(mix[2])))
            levels.append(float(rng.uniform(*ADVERT_LEVEL)))
            durations.append(float(rng.uniform(*ADVERT_S)))
            fades.append(float(rng.uniform(*FADE_S)) if rng.random() < 0.5 else 0.0)
        period = float(sum(durations))
        return cls(d, peak, tuple(colours), tuple(levels), tuple(durations),
                   tuple(fades), float(rng.uniform(0.0, period)))

    @property
    def period_s(self) -> float:
        return float(sum(self.durations_s))

    def light(self, t: float) -> np.ndarray:
        """(3,) the panel's B, G, R irradiance at normal incidence at time ``t`` (lux-equivalent)."""
        tau = (t + self.phase_s) % self.period_s
        i = 0
        while i < len(self.durations_s) - 1 and tau >= self.durations_s[i]:
            tau -= self.durations_s[i]
            i += 1
        now = np.array(self.colours[i]) * self.levels[i]
        fade = self.fades_s[i]
        if fade > 0.0 and tau < fade:
            j = i - 1   # -1: the cycle's last advert
            before = np.array(self.colours[j]) * self.levels[j]
            w = tau / fade
            now = (1.0 - w) * before + w * now
        return (self.peak_lux * now).astype(np.float32)

    def cosine(self, view: View, z: np.ndarray) -> np.ndarray:
        """(H, W) the cosine between each surface's normal and the direction to the panel (0 facing away)."""
        d = _in_view(view, np.asarray(self.direction))
        return np.clip(surface_normals(view, z) @ d.astype(np.float32), 0.0, 1.0)

    def color(self, irr: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The colour irradiance with the panel's light (a display's own light is kept as it is)."""
        c = np.where(maps.emissive, 0.0, self.cosine(view, maps.z))
        return (irr + (c[..., None] * self.light(t)) * maps.albedo).astype(np.float32)


@dataclass(frozen=True)
class DappledSun:
    sun: tuple[float, float, float]            # from the face to the sun, depth-camera frame
    fleck_lux: float
    fleck_cct: float
    waves: tuple[tuple[float, float, float, float], ...]   # (kx, ky per metre across the beam, phase, Hz)
    threshold: float                           # in units of the field's standard deviation

    @classmethod
    def draw(cls, rng: np.random.Generator) -> DappledSun:
        el, az = np.deg2rad(rng.uniform(*SUN_ELEVATION_DEG)), np.deg2rad(rng.uniform(*SUN_AZIMUTH_DEG))
        s = (np.sin(az) * np.cos(el), -np.sin(el), -np.cos(az) * np.cos(el))
        lux = float(np.exp(rng.uniform(np.log(FLECK_LUX[0]), np.log(FLECK_LUX[1]))))
        cct = float(rng.uniform(*FLECK_CCT))
        waves = []
        for _ in range(N_WAVES):
            ang = rng.uniform(0.0, np.pi)
            k = 2 * np.pi / rng.uniform(*WAVELENGTH_M)
            waves.append((float(k * np.cos(ang)), float(k * np.sin(ang)), float(rng.uniform(0, 2 * np.pi)),
                          float(rng.uniform(*FLUTTER_HZ)) * float(rng.choice([-1.0, 1.0]))))
        cover = float(rng.uniform(*COVER))
        return cls((float(s[0]), float(s[1]), float(s[2])), lux, cct, tuple(waves), float(ndtri(1.0 - cover)))

    def basis(self) -> tuple[np.ndarray, np.ndarray]:
        """Two unit vectors across the sun's beam (depth-camera frame)."""
        s = np.asarray(self.sun)
        e1 = np.cross(s, [0.0, 1.0, 0.0])
        e1 = e1 / np.linalg.norm(e1)
        return e1, np.cross(s, e1)

    def field(self, a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
        """The pattern at across-beam coordinates (a, b) metres at time t, of unit standard deviation."""
        a32, b32 = np.asarray(a, np.float32), np.asarray(b, np.float32)
        f = np.zeros(np.shape(a), np.float32)
        for kx, ky, ph, hz in self.waves:
            arg = a32 * np.float32(kx)
            arg += b32 * np.float32(ky)
            arg += np.float32((ph + 2 * np.pi * hz * t) % (2 * np.pi))
            f += np.cos(arg)
        return f * np.float32(np.sqrt(2.0 / len(self.waves)))

    def fleck_at(self, a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
        """0..1: how far a point at across-beam coordinates (a, b) is inside a fleck at time t."""
        return np.clip((self.field(a, b, t) - self.threshold) / EDGE + 0.5, 0.0, 1.0).astype(np.float32)

    def fleck(self, view: View, z: np.ndarray, t: float) -> np.ndarray:
        """(H, W) float32: each pixel's surface's fleck (0 in the shade .. 1 in the sun) times its cosine
        to the sun."""
        R, T = view.depth_to_view.R, view.depth_to_view.t
        rays = view.rays
        finite = np.isfinite(z)
        zf = np.where(finite, z, 0.0).astype(np.float32)
        # Back to the depth camera's frame, where the pattern is fixed: p_depth = R^T (p_view - T), so
        # a = e1 . p_depth = (R e1) . p_view - (R e1) . T.
        e1, e2 = self.basis()
        x, y = rays[..., 0].astype(np.float32) * zf, rays[..., 1].astype(np.float32) * zf

        def across(e: np.ndarray) -> np.ndarray:
            r = R @ e
            out = x * np.float32(r[0])
            out += y * np.float32(r[1])
            out += zf * np.float32(r[2])
            out -= np.float32(r @ T)
            return out

        a, b = across(e1), across(e2)
        cos = np.clip(surface_normals(view, z) @ _in_view(view, np.asarray(self.sun)).astype(np.float32), 0, 1)
        return np.where(finite, self.fleck_at(a, b, t) * cos, 0.0).astype(np.float32)

    def color(self, irr: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The colour irradiance with the flecks' direct sun (a display's own light kept)."""
        f = np.where(maps.emissive, 0.0, self.fleck(view, maps.z, t))
        sun = (self.fleck_lux * illuminant_bgr(self.fleck_cct)).astype(np.float32)
        return (irr + (f[..., None] * sun) * maps.albedo).astype(np.float32)

    def ir(self, signal: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The IR light with the flecks' 850 nm."""
        f = self.fleck(view, maps.z, t)
        return (signal + f * (self.fleck_lux * SUN_NIR_SHARE) * maps.nir * (1.0 - maps.specular)).astype(np.float32)
