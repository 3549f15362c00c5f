"""The twenty-third family's lights: hard light thrown back by something that moves, in a sunlit lobby and at an event.

``caustics`` ("Caustics"): a kiosk in a glazed lobby beside a fountain's pool (the lobby's base light 300-1500
lux of daylight through its glazing, 5000-6500 K, 0.09 of 850 nm per lux as "daylight"), the sun on the pool
thrown up onto the customer's face and the wall behind as a caustic network: a water surface's ripples are an
array of weak lenses and mirrors, and the light they redirect gathers along caustic curves, a net of bright,
sharp-edged lines over a dimmer floor that swims as the ripples run (recalled: the familiar pattern on a pool's
floor and on walls near water; M. V. Berry and J. F. Nye's catastrophe optics, caustic lines as the envelopes of
the ray field, sharp to the sun's 0.5° disc). Physics, recalled, not read here: direct sun 50,000-100,000 lux at
the ground, its spectrum a 5800 K black body through the air, so 850 nm-rich (0.12 per lux as "direct_sun"); water
reflects 2-10 % of it at 0-70° from its normal (Fresnel, n = 1.33, the same at 850 nm as in the visible to
1 %), so the reflected beam's mean is 1,000-6,000 lux, concentrated along the caustics to several times that and
dimmed between. Drawn: the lines' peak 1,500-12,000 lux at normal incidence (log-uniform), the floor between
them 0.1-0.3 of it; the pool below and in front, so the light comes up at 10-40° from below the face and up to
70° to a side (the sun's reflection off a pool lights the underside of the face, as the twenty-first's floor
bounce, but hard). The network: the sum of 4 ripple trains (their lengths 0.8-1.25 x the cell, their directions
spread around the circle) whose zero line is the net, its lines' half-width 0.08-0.2 of the sum's spread
(0.5-4 mm on the face: the sun's disc blurs a caustic over ~1 mm at 10 cm from the focus, recalled, so the lines
stay sharp); its cells 2-6 cm across on the face, close to the projector's dot spacing at 0.45 m (the brief's
figure, asserted: a pool's ripples a few cm long, focused and thrown a few metres), each train running at its
own 0.5-3 Hz either way (the brief's ripple rate; a 0.5 Hz wave on deep water is ~6 m long, so the few-cm net
is the caustics of short ripples riding longer waves: its rate is what is drawn, not a dispersion relation).
The sun is a distant source: the network is the same on every plane across the beam (parallel projection, as the
twenty-second's gobo), its lines move between two frames (0.5-3 Hz: 6-36° of phase a frame at 30 fps).

``mirrorball`` ("MirrorBall"): a mall's or a branch's event (a product launch, a holiday party) with the room's
LED downlights dimmed to 50-300 lux (2700-4000 K, 0.002 of 850 nm per lux as "led") and a mirror ball under a
halogen pin spot turning on its motor over the floor: dozens of small bright spots sweeping across the face and
the wall. Physics, recalled, not read here: a ball of 20-100 cm is tiled with 10-25 mm mirror facets in rows of
latitude; each facet throws its own beam, the spots' angular spacing twice a facet's angle at the ball's centre
(2 x 10 mm / 250 mm = 0.08 rad on a 50 cm ball with 10 mm tiles, 0.04 on a 1 m ball); a spot's size is the facet
plus the lamp's aperture seen from the ball spread over the distance (a pin spot's small lens 1.5-2 m from the
ball: spots of a few cm at 2-5 m); a pin spot's 50-100 W halogen (MR16/PAR36: 2900-3200 K, 0.32 of 850 nm per lux
as "halogen") lights the ball at thousands of lux and each facet returns ~85 % of its share; ball motors turn at
0.5-3 rpm. Drawn: the ball 2-5 m from the face, 15-45° above it and up to 70° to a side; the spots' angular
spacing 0.03-0.08 rad (6-40 cm apart at the face: dozens of spots over the wall behind) in rows of latitude that
far apart, each row's spots as far apart along it, each row started at its own offset and each spot tilted off
its place by up to 0.15 of the spacing (as real tiling is); each spot 30-80 mm across at the face's distance from
the ball (its angular size fixed, so larger on the wall behind; at most 0.6 of the spacing, so spots stay apart),
its edge a quarter of its radius soft, each facet's return 0.6-1.0 (tarnish and tile tilts); a spot's peak
200-2,000 lux at normal incidence (log-uniform); the ball turning at 0.5-3 rpm either way, the spots sweeping
about its vertical axis (exact for a spot lighting the ball along its axis, an approximation otherwise: they move
at about the ball's rate), so a spot moves 2-50 mm between two frames on the face. The spots diverge from the
ball: their spacing and size grow with the distance from it (unlike the sun's caustics or the gobo's parallel
beam).

Both lights' cosines to each surface come from ``radiant.lit_share`` (every 2nd or 4th pixel); their patterns are
computed on every pixel (their edges are a few mm). Neither is shadowed (as the gobo's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .atrium import FACE_AT, beam_axes
from .bystander import lit_share
from .entrance import _add_light, _log_uniform
from .lobby import side_direction
from .optics import View
from .render import ViewMaps
from .sensor import illuminant_bgr

# --- The fountain's caustics ---------------------------------------------------------------------------------
CAUSTIC_PEAK_LUX = (1500.0, 12000.0)   # on the lines, at normal incidence
CAUSTIC_FLOOR = (0.1, 0.3)             # between the lines, x the peak
CAUSTIC_CCT = (4800.0, 5800.0)         # the sun's (families.LIGHT_CCT["direct_sun"])
CAUSTIC_NIR_SHARE = 0.12               # scene.LIGHT_NIR_SHARE["direct_sun"]
CAUSTIC_AZIMUTH_DEG = (0.0, 70.0)      # off the line to the camera, either side
CAUSTIC_BELOW_DEG = (10.0, 40.0)       # below the face: up from the pool
CAUSTIC_CELL_M = (0.02, 0.06)          # the ripple trains' length on the pattern's plane
CAUSTIC_WAVES = 4
CAUSTIC_WAVE_SPREAD = (0.8, 1.25)      # each train's length x the cell
CAUSTIC_HZ = (0.5, 3.0)                # each train's rate
CAUSTIC_LINE = (0.08, 0.2)             # the lines' half-width x the sum's spread

# --- The mirror ball -----------------------------------------------------------------------------------------
BALL_SPOT_LUX = (200.0, 2000.0)        # a spot's peak at the face, at normal incidence
BALL_CCT = (2900.0, 3200.0)            # a halogen pin spot
BALL_NIR_SHARE = 0.32                  # scene.LIGHT_NIR_SHARE["halogen"]
BALL_DISTANCE_M = (2.0, 5.0)
BALL_AZIMUTH_DEG = (0.0, 70.0)
BALL_ELEVATION_DEG = (15.0, 45.0)
BALL_RPM = (0.5, 3.0)
BALL_SPACING_RAD = (0.03, 0.08)
BALL_SPOT_M = (0.03, 0.08)             # a spot's diameter at the face's distance from the ball
BALL_MAX_RADIUS = 0.3                  # a spot's angular radius at most x the spacing
BALL_EDGE = 0.25                       # a spot's soft edge x its radius
BALL_JITTER = 0.15                     # a spot's tilt off its lattice place x the spacing
BALL_RETURN = (0.6, 1.0)               # each facet's return
BALL_TILE_BITS = 8                     # the facets' draws: 256 along a row (> 2 pi at the finest spacing), 256 rows
BALL_TILE = 1 << BALL_TILE_BITS


def _beam_basis(direction: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three unit vectors (depth camera's frame): across the beam horizontally, across it vertically, and
    ``direction`` (from the face to the source) itself."""
    d = np.asarray(direction, np.float64)
    e1 = np.cross(d, np.array([0.0, 1.0, 0.0]))
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(d, e1), d


@dataclass(frozen=True)
class _Thrown:
    """A light whose pattern (0..1 per pixel, ``_pattern_at``) times its cosine to each surface falls on the face
    and the wall at ``peak`` lux (normal incidence), in colour ``cct`` with ``nir_share`` of 850 nm per lux."""

    direction: tuple[float, float, float]   # from the face to the source, depth camera's frame
    peak: float
    cct: float
    nir_share: float
    # Per view: each pixel's beam coordinates' (g, c) (``atrium.beam_axes``) and the last light computed (the IR
    # frame and the leak's visible light read the same depth view at one t).
    _kept: dict = field(default_factory=dict, compare=False, repr=False)

    def coords(self, view: View, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each pixel's point from ``atrium.FACE_AT`` along ``_beam_basis`` (m): across (u, v) and toward the
        source (w)."""
        kept = self._kept.get(id(view))
        if kept is None or kept[0] is not view:
            kept = (view, beam_axes(view, _beam_basis(self.direction), FACE_AT))
            self._kept[id(view)] = kept
        (g1, c1), (g2, c2), (g3, c3) = kept[1]
        return z * g1 - np.float32(c1), z * g2 - np.float32(c2), z * g3 - np.float32(c3)

    def _pattern_at(self, u: np.ndarray, v: np.ndarray, w: np.ndarray, t: float) -> np.ndarray:
        raise NotImplementedError

    def light(self, view: View, z: np.ndarray, t: float) -> np.ndarray:
        """(H, W) float32: the light on each pixel at ``t``, x ``peak`` (the pattern x the cosine)."""
        last = self._kept.get(("light", id(view)))
        if last is not None and last[0] is view and last[1] is z and last[2] == t:
            return last[3]
        u, v, w = self.coords(view, z)
        ok = np.isfinite(u)
        zero = np.float32(0.0)
        pat = self._pattern_at(np.where(ok, u, zero), np.where(ok, v, zero), np.where(ok, w, zero), t) * ok
        light = (pat * lit_share(view, z, self.direction, 0.0)).astype(np.float32)
        self._kept[("light", id(view))] = (view, z, t, light)
        return light

    def color(self, irr: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The colour irradiance with the pattern at ``t``."""
        return _add_light(irr, maps, self.light(view, maps.z, t), (self.peak * illuminant_bgr(self.cct)).astype(
            np.float32))

    def ir(self, signal: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The IR light with the pattern's 850 nm at ``t``."""
        e = np.float32(self.peak * self.nir_share)
        return (signal + self.light(view, maps.z, t) * e * maps.nir * (1.0 - maps.specular)).astype(np.float32)


@dataclass(frozen=True)
class Caustics(_Thrown):
    """The sun off a fountain's pool: a caustic network swimming over the face and the wall (module docstring)."""

    floor: float = 0.2                       # between the lines, x the peak
    cell_m: float = 0.04
    # Each ripple train: (k_u, k_v (rad/m), omega (rad/s, signed), phase (rad)).
    waves: tuple[tuple[float, float, float, float], ...] = ()
    line: float = 0.1                        # the lines' half-width x the sum's spread

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Caustics:
        x, y, z = side_direction(rng, CAUSTIC_AZIMUTH_DEG, CAUSTIC_BELOW_DEG)
        direction = (x, -y, z)                  # below the face, not above
        peak = _log_uniform(rng, *CAUSTIC_PEAK_LUX)
        cct = float(rng.uniform(*CAUSTIC_CCT))
        floor = float(rng.uniform(*CAUSTIC_FLOOR))
        cell = float(rng.uniform(*CAUSTIC_CELL_M))
        start = float(rng.uniform(0.0, np.pi))
        waves = []
        for k in range(CAUSTIC_WAVES):
            a = start + np.pi * (k + float(rng.uniform(-0.3, 0.3))) / CAUSTIC_WAVES
            kk = 2.0 * np.pi / (cell * float(rng.uniform(*CAUSTIC_WAVE_SPREAD)))
            omega = 2.0 * np.pi * float(rng.uniform(*CAUSTIC_HZ)) * float(rng.choice([-1.0, 1.0]))
            waves.append((float(kk * np.cos(a)), float(kk * np.sin(a)), omega, float(rng.uniform(0.0, 2.0 * np.pi))))
        line = float(rng.uniform(*CAUSTIC_LINE))
        return cls(direction, peak, cct, CAUSTIC_NIR_SHARE, floor=floor, cell_m=cell, waves=tuple(waves), line=line)

    def ripple(self, u: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
        """The ripple trains' sum at pattern-plane points (u, v) at ``t`` (each of amplitude 1 / the trains)."""
        s = np.zeros(np.shape(u), np.float32)
        for ku, kv, omega, phase in self.waves:
            s += np.sin(np.float32(ku) * u + np.float32(kv) * v + np.float32(phase - omega * t))
        return s * np.float32(1.0 / len(self.waves))

    def pattern(self, u: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
        """(H, W) float32 floor..1: the network's light at pattern-plane points (u, v) at ``t`` (1 on a line)."""
        spread = np.float32(self.line * np.sqrt(0.5 / len(self.waves)))     # the sum's standard deviation x line
        near = np.clip(np.float32(1.0) - np.abs(self.ripple(u, v, t)) / spread, 0.0, 1.0)
        return np.float32(self.floor) + np.float32(1.0 - self.floor) * near * near

    def _pattern_at(self, u, v, w, t):
        return self.pattern(u, v, t)


@dataclass(frozen=True)
class MirrorBall(_Thrown):
    """A mirror ball's spots under a halogen pin spot sweeping the face and the wall (module docstring)."""

    distance_m: float = 3.0                 # from the face to the ball
    rev_s: float = 0.02                     # the ball's turns per second, signed
    spacing: float = 0.08                   # the spots' angular spacing (rad)
    radius: float = 0.01                    # a spot's angular radius (rad)
    phase: float = 0.0                      # the ball's angle at scene time 0 (rad)
    seed: int = 1

    @classmethod
    def draw(cls, rng: np.random.Generator) -> MirrorBall:
        direction = side_direction(rng, BALL_AZIMUTH_DEG, BALL_ELEVATION_DEG)
        peak = _log_uniform(rng, *BALL_SPOT_LUX)
        cct = float(rng.uniform(*BALL_CCT))
        distance = float(rng.uniform(*BALL_DISTANCE_M))
        rev = float(rng.uniform(*BALL_RPM)) / 60.0 * float(rng.choice([-1.0, 1.0]))
        spacing = float(rng.uniform(*BALL_SPACING_RAD))
        spot = float(rng.uniform(*BALL_SPOT_M))
        phase = float(rng.uniform(0.0, 2.0 * np.pi))
        seed = int(rng.integers(1, 2**31 - 1))
        return cls(direction, peak, cct, BALL_NIR_SHARE, distance_m=distance, rev_s=rev, spacing=spacing,
                   radius=min(0.5 * spot / distance, BALL_MAX_RADIUS * spacing), phase=phase, seed=seed)

    @property
    def elevation(self) -> float:
        """The ball's elevation seen from the face (rad)."""
        return float(np.arcsin(-self.direction[1]))

    def angle(self, t: float) -> float:
        """The ball's angle (rad) at scene time ``t``."""
        return self.phase + 2.0 * np.pi * self.rev_s * t

    def _facets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each row's offset (x the spacing), each facet's tilt off its place across and along (x the spacing,
        -1..1) and its return, flattened ``BALL_TILE`` x ``BALL_TILE``, drawn from ``seed``."""
        kept = self._kept.get("facets")
        if kept is None:
            r = np.random.default_rng(self.seed).random((4, BALL_TILE * BALL_TILE))
            kept = (r[0][:BALL_TILE].astype(np.float32), (2 * r[1] - 1).astype(np.float32),
                    (2 * r[2] - 1).astype(np.float32),
                    (BALL_RETURN[0] + (BALL_RETURN[1] - BALL_RETURN[0]) * r[3]).astype(np.float32))
            self._kept["facets"] = kept
        return kept

    def spots(self, u: np.ndarray, v: np.ndarray, w: np.ndarray, t: float) -> np.ndarray:
        """(H, W) float32 0..1: the spots' light at points (u, v) across the ball's direction and ``w`` toward
        it (m, from the face's point) at ``t``."""
        far = np.float32(self.distance_m) - w                      # each point's distance from the ball
        s = np.float32(self.spacing)
        # Angles seen from the ball; turning about its vertical axis moves the spots along the horizontal one.
        a = u / far + np.float32(self.angle(t) * np.cos(self.elevation))
        b = v / far
        offset, jx, jy, ret = self._facets()
        fj = np.floor(b / s + np.float32(0.5))
        row = fj.astype(np.int32) & (BALL_TILE - 1)
        shift = np.take(offset, row) * s
        fi = np.floor((a - shift) / s + np.float32(0.5))
        k = ((fi.astype(np.int32) & (BALL_TILE - 1)) << BALL_TILE_BITS) | row
        jmax = np.float32(BALL_JITTER) * s
        da = a - (fi * s + shift + np.take(jx, k) * jmax)
        db = b - (fj * s + np.take(jy, k) * jmax)
        rho = np.float32(self.radius)
        inside = np.clip((rho - np.hypot(da, db)) / np.float32(BALL_EDGE * self.radius) + np.float32(0.5), 0.0, 1.0)
        return inside * np.take(ret, k)

    def _pattern_at(self, u, v, w, t):
        return self.spots(u, v, w, t)
