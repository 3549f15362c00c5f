"""The twentieth family's two lights: a winter vestibule's quartz infrared heater, and sunlight mirrored off
passing cars' windscreens.

``QuartzHeater`` ("quartz_heater"): a branch's vestibule in winter, lit by LED downlights (50-300 lux on the
face, 3000-4000 K, 0.002 of 850 nm per lux as "led"), with a short-wave quartz infrared heater on the wall or
the ceiling 1.5-3 m from the customer (``HEATER_AZIMUTH_DEG`` off the camera's axis, either side, and
``HEATER_ELEVATION_DEG`` up). Its tungsten filament runs at ``FILAMENT_K`` (1900-2400 K at full power: a
short-wave heater's filament, recalled, not read), a black body whose light is orange and whose 850 nm is
far more per lux than any lamp's: the 850 nm radiance per lux is Planck's law at 850 nm over the black
body's luminance (the CIE photopic curve, approximated by a Gaussian at 555 nm, sigma 42 nm; recalled),
relative to the same ratio at 2856 K (CIE illuminant A) times the simulator's incandescent share
(``scene.LIGHT_NIR_SHARE["incandescent"]``, 0.40): ``nir_per_lux``. The visible light on the face at full
power is ``HEATER_LUX`` (30-300 lux at normal incidence, log-uniform: a 1.5-2 kW tube behind its
reflector 1.5-3 m away; an estimate, recalled); half the heaters have a low-glare tube (a ruby or gold
coating) passing ``LOW_GLARE_VISIBLE`` (0.3-0.5) of the visible and all of the 850 nm (recalled). A share
``DIFFUSE`` (0.05-0.12) of it reaches every surface off the walls. A thermostat (a time-proportioning
controller, ``CYCLE_S`` 10-40 s, on for ``DUTY`` 0.3-0.8 of it, from a drawn phase) switches the tube; the
filament's temperature follows the switching as a first-order lag, ``WARM_S`` (0.4-2.0 s) heating and
``COOL_S`` (0.8-3.0 s) cooling (a quartz tube's "instant" heat of a second or so, recalled), the periodic
steady state solved in closed form. So the light's level *and its colour and its 850 nm per lux* move
together over seconds at each switching: at 1500 K the filament gives 0.5 % of its full-power visible
light but 2.8 % of its 850 nm (2200 K full power; 850 nm per lux 5.1 at 1500 K, 0.96 at 2200 K, 0.40 at
2856 K), the first light in any family whose IR-to-visible ratio changes in time by a factor of five.
Colour and IR frames each take the filament's temperature at their own time. The heater stands outside the
colour gate's 2300-7500 K (the room's LEDs set the session's ``cct``; the filament's light is added on top,
its own colour at its own temperature).

``WindscreenGlint`` ("windscreen_glint"): a kiosk in a branch's glazed lobby beside the shop-front by day
(daylight through clear glazing, 300-1500 lux on the face, 4500-6500 K, 0.09 of 850 nm per lux as
"daylight"), the street to the customer's side. Sunlight mirrored off a passing car's windscreen or side
window sweeps a bright patch across the room: the direct sun (70-100 klux) x the glass's Fresnel
reflectance at 55-80° incidence (0.06-0.35, unpolarised) x the windscreen's curvature spreading the beam
(0.05-0.5) x the lobby's clear glazing (0.85): ``GLINT_LUX`` 300-6000 lux at normal incidence
(log-uniform; an estimate from those recalled factors), the sun's colour (``GLINT_CCT`` 5000-5800 K) and
its 850 nm (0.12 per lux, ``scene.LIGHT_NIR_SHARE["direct_sun"]``; the outer glass surface's reflectance
is flat in wavelength). The patch comes from the street's side (``GLINT_AZIMUTH_DEG`` 40-100° off the
camera's axis, either side; ``GLINT_ELEVATION_DEG`` -5-15°), ``GLINT_WIDTH_M`` (0.3-1.5 m) wide along its
sweep, with soft edges (``GLINT_EDGE_M`` 0.03-0.15 m: the sun's 0.53° disc at 5-25 m and the glass's
waviness) and unbounded across it (the car's height of glass, larger than a head); it sweeps horizontally
(tilted up to ``SWEEP_TILT_DEG``, 15°, either way), in either direction, lighting any one point for
``GLINT_PASS_S`` (0.1-0.5 s: a car at 3-15 m/s). Passes follow one another at exponential intervals of a
mean ``GLINT_GAP_S`` (3-12 s, drawn per session: the traffic; ``N_PASSES`` of them from a drawn phase,
repeating after the last),
each its own level, width and duration. Each frame takes the patch at its own time (the exposure's
motion blur of the edge is not drawn).

Both cost one surface-normal map per frame (lobby.surface_normals) on every 2nd (640 wide) or 4th (1280
wide) pixel, scaled back up (entrance.py's helpers), and nothing while the heater is cold or no patch
is near the face.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .entrance import _add_light, _log_uniform, _stride, _up
from .lobby import side_direction, surface_normals
from .optics import View
from .render import ViewMaps
from .sensor import illuminant_bgr

# --- The heater ---------------------------------------------------------------------------------------
FILAMENT_K = (1900.0, 2400.0)
ROOM_K = 290.0
HEATER_LUX = (30.0, 300.0)
LOW_GLARE_SHARE = 0.5
LOW_GLARE_VISIBLE = (0.3, 0.5)
HEATER_AZIMUTH_DEG = (20.0, 110.0)
HEATER_ELEVATION_DEG = (20.0, 50.0)
DIFFUSE = (0.05, 0.12)
CYCLE_S = (10.0, 40.0)
DUTY = (0.3, 0.8)
WARM_S = (0.4, 2.0)
COOL_S = (0.8, 3.0)
INCANDESCENT_K = 2856.0            # CIE illuminant A: the simulator's "incandescent" share's lamp
INCANDESCENT_NIR_SHARE = 0.40      # scene.LIGHT_NIR_SHARE["incandescent"]
DARK_K = 800.0                     # below this the filament's light is taken as none (a dull red glow)

# --- The glint ----------------------------------------------------------------------------------------
GLINT_LUX = (300.0, 6000.0)
GLINT_CCT = (5000.0, 5800.0)
SUN_NIR_SHARE = 0.12               # scene.LIGHT_NIR_SHARE["direct_sun"]
GLINT_AZIMUTH_DEG = (40.0, 100.0)
GLINT_ELEVATION_DEG = (-5.0, 15.0)
GLINT_WIDTH_M = (0.3, 1.5)
GLINT_EDGE_M = (0.03, 0.15)
GLINT_PASS_S = (0.1, 0.5)
GLINT_GAP_S = (3.0, 12.0)
SWEEP_TILT_DEG = 15.0
N_PASSES = 16

_C2 = 1.4388e-2                    # second radiation constant, m K


def planck(wavelength_m: np.ndarray | float, kelvin: float) -> np.ndarray:
    """A black body's spectral radiance at ``wavelength_m`` and ``kelvin``, up to a constant factor."""
    lam = np.asarray(wavelength_m, np.float64)
    return 1.0 / (lam ** 5 * np.expm1(_C2 / (lam * kelvin)))


_VIS_NM = np.arange(380.0, 781.0, 5.0)
_V = np.exp(-0.5 * ((_VIS_NM - 555.0) / 42.0) ** 2)      # CIE photopic, approximated (module docstring)


@lru_cache(maxsize=4096)
def _luminance(kelvin: float) -> float:
    """A black body's luminance at ``kelvin`` (the same constant factor as ``planck``)."""
    return float((planck(_VIS_NM * 1e-9, kelvin) * _V).sum())


def nir_per_lux(kelvin: float) -> float:
    """The 850 nm a black body at ``kelvin`` gives per lux, in the simulator's share units (the
    incandescent lamp's 0.40 at 2856 K)."""
    ratio = float(planck(850e-9, kelvin)) / _luminance(kelvin)
    ref = float(planck(850e-9, INCANDESCENT_K)) / _luminance(INCANDESCENT_K)
    return INCANDESCENT_NIR_SHARE * ratio / ref


def lit_share(view: View, z: np.ndarray, direction: tuple[float, float, float], diffuse: float) -> np.ndarray:
    """(H, W) float32: each pixel's cosine to a distant source in ``direction`` (from the face, the depth
    camera's frame) plus ``diffuse``, on every ``_stride``-th pixel scaled back up, 0 where nothing is."""
    d = (view.depth_to_view.R @ np.asarray(direction)).astype(np.float32)
    k = _stride(z)
    cos = np.clip(surface_normals(view, np.ascontiguousarray(z[::k, ::k]), k) @ d, 0.0, 1.0)
    return _up((cos + np.float32(diffuse)).astype(np.float32), z)


@dataclass(frozen=True)
class QuartzHeater:
    """The vestibule's quartz infrared heater (module docstring): ``direction`` from the face to it."""

    direction: tuple[float, float, float]
    lux: float                  # visible, at normal incidence, at full power, through a clear tube
    glare: float                # the tube's visible transmission (a low-glare coating's; 1.0 clear)
    filament_k: float
    diffuse: float
    cycle_s: float
    on_s: float
    phase_s: float
    warm_s: float
    cool_s: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> QuartzHeater:
        d = side_direction(rng, HEATER_AZIMUTH_DEG, HEATER_ELEVATION_DEG)
        lux = _log_uniform(rng, *HEATER_LUX)
        glare = float(rng.uniform(*LOW_GLARE_VISIBLE))
        if rng.random() >= LOW_GLARE_SHARE:
            glare = 1.0
        cycle = float(rng.uniform(*CYCLE_S))
        return cls(d, lux, glare, float(rng.uniform(*FILAMENT_K)), float(rng.uniform(*DIFFUSE)), cycle,
                   cycle * float(rng.uniform(*DUTY)), float(rng.uniform(0.0, cycle)),
                   float(rng.uniform(*WARM_S)), float(rng.uniform(*COOL_S)))

    def heat(self, t: float) -> float:
        """0 (cold) .. 1 (at full temperature): the filament's first-order lag behind the thermostat's
        switching at scene time ``t``, in the cycle's periodic steady state."""
        off = self.cycle_s - self.on_s
        e_on, e_off = np.exp(-self.on_s / self.warm_s), np.exp(-off / self.cool_s)
        start = (1.0 - e_on) * e_off / (1.0 - e_on * e_off)     # at the switch-on, every cycle
        tau = (t + self.phase_s) % self.cycle_s
        if tau < self.on_s:
            return float(1.0 - (1.0 - start) * np.exp(-tau / self.warm_s))
        top = 1.0 - (1.0 - start) * e_on
        return float(top * np.exp(-(tau - self.on_s) / self.cool_s))

    def kelvin(self, t: float) -> float:
        return ROOM_K + (self.filament_k - ROOM_K) * self.heat(t)

    def visible(self, t: float) -> float:
        """Lux at normal incidence at scene time ``t`` (0 below ``DARK_K``)."""
        k = self.kelvin(t)
        return 0.0 if k < DARK_K else self.lux * self.glare * _luminance(k) / _luminance(self.filament_k)

    def nir(self, t: float) -> float:
        """850 nm at normal incidence at ``t``, in the simulator's share units (x lux): the clear tube's
        full-power share, scaled by Planck's law at 850 nm; a low-glare coating passes all of it."""
        k = self.kelvin(t)
        if k < DARK_K:
            return 0.0
        scale = float(planck(850e-9, k) / planck(850e-9, self.filament_k))
        return self.lux * nir_per_lux(self.filament_k) * scale

    def share(self, view: View, z: np.ndarray) -> np.ndarray:
        """(H, W) float32: each pixel's cosine to the heater plus the diffuse share."""
        return lit_share(view, z, self.direction, self.diffuse)

    def color(self, irr: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The colour irradiance with the heater's glow at its filament's temperature at ``t``."""
        lux = self.visible(t)
        if lux <= 0.0:
            return irr
        bgr = (lux * illuminant_bgr(self.kelvin(t))).astype(np.float32)
        return _add_light(irr, maps, self.share(view, maps.z), bgr)

    def ir(self, signal: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The IR light with the filament's 850 nm at ``t``."""
        e = self.nir(t)
        if e <= 0.0:
            return signal
        return (signal + self.share(view, maps.z) * np.float32(e) * maps.nir * (1.0 - maps.specular)).astype(np.float32)


@dataclass(frozen=True)
class WindscreenGlint:
    """Sunlight mirrored off passing cars' glass, sweeping the lobby (module docstring)."""

    direction: tuple[float, float, float]   # from the face towards the street (depth camera's frame)
    sweep: tuple[float, float, float]       # the patch's sweep axis, unit, in the depth camera's frame
    cct: float
    starts: tuple[float, ...]               # each pass's centre crossing x = 0, the face (scene time, s)
    speeds: tuple[float, ...]               # m/s along ``sweep`` (signed: the car's direction)
    widths: tuple[float, ...]
    edges: tuple[float, ...]
    levels: tuple[float, ...]               # lux at normal incidence
    period_s: float                         # the passes repeat after this (the gaps' sum), for late ``t0_s``

    @classmethod
    def draw(cls, rng: np.random.Generator) -> WindscreenGlint:
        d = side_direction(rng, GLINT_AZIMUTH_DEG, GLINT_ELEVATION_DEG)
        tilt = np.deg2rad(rng.uniform(-SWEEP_TILT_DEG, SWEEP_TILT_DEG))
        # Horizontal across the face (x), tilted in the image plane; the street's side sets nothing more.
        sweep = (float(np.cos(tilt)), float(np.sin(tilt)), 0.0)
        cct = float(rng.uniform(*GLINT_CCT))
        gap = float(rng.uniform(*GLINT_GAP_S))
        gaps = rng.exponential(gap, N_PASSES)
        starts = np.cumsum(gaps) - float(rng.uniform(0.0, gap))
        widths = rng.uniform(*GLINT_WIDTH_M, N_PASSES)
        durations = rng.uniform(*GLINT_PASS_S, N_PASSES)
        signs = rng.choice([-1.0, 1.0], N_PASSES)
        edges = rng.uniform(*GLINT_EDGE_M, N_PASSES)
        levels = np.exp(rng.uniform(np.log(GLINT_LUX[0]), np.log(GLINT_LUX[1]), N_PASSES))
        return cls(d, sweep, cct, tuple(float(v) for v in starts),
                   tuple(float(s * w / p) for s, w, p in zip(signs, widths, durations, strict=True)),
                   tuple(float(v) for v in widths), tuple(float(v) for v in edges),
                   tuple(float(v) for v in levels), float(gaps.sum()))

    def _clock(self, t: float) -> float:
        """Scene time ``t`` on the passes' own cycle (they repeat every ``period_s``, from 1 s before the first's
        centre crosses the face: its approach kept whole)."""
        origin = self.starts[0] - 1.0
        return origin + (t - origin) % self.period_s

    def passing(self, t: float) -> int | None:
        """The pass whose patch is within reach of the face (+-1 m of its centre) at ``t`` (on the passes'
        cycle, ``_clock``), or None."""
        t = self._clock(t)
        for i, (t0, v, w) in enumerate(zip(self.starts, self.speeds, self.widths, strict=True)):
            if abs(v * (t - t0)) < 0.5 * w + 1.0:
                return i
        return None

    def share(self, view: View, z: np.ndarray, t: float) -> tuple[np.ndarray, float] | None:
        """(H, W) float32 lit fraction x cosine to the street, and the pass's lux; None with no patch near."""
        t = self._clock(t)
        i = self.passing(t)
        if i is None:
            return None
        k = _stride(z)
        zs = np.ascontiguousarray(z[::k, ::k])
        rays = view.rays[::k, ::k]
        zf = np.where(np.isfinite(zs), zs, np.float32(0.0)).astype(np.float32)
        # Each point's position along the sweep in the depth camera's frame: p_d = R^T (p_view - T), so
        # p_d . sweep = (p_view - T) . (R sweep).
        R, T = view.depth_to_view.R, view.depth_to_view.t
        u = (R @ np.asarray(self.sweep)).astype(np.float32)
        along = (rays[..., 0] * u[0] + rays[..., 1] * u[1] + np.float32(u[2])) * zf - np.float32(T @ u)
        centre = self.speeds[i] * (t - self.starts[i])
        inside = np.clip((0.5 * self.widths[i] - np.abs(along - centre)) / self.edges[i] + 0.5, 0.0, 1.0)
        if not inside.any():
            return None
        d = (R @ np.asarray(self.direction)).astype(np.float32)
        cos = np.clip(surface_normals(view, zs, k) @ d, 0.0, 1.0)
        return _up((inside * cos).astype(np.float32), z), self.levels[i]

    def color(self, irr: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The colour irradiance with the glint's patch at ``t``."""
        s = self.share(view, maps.z, t)
        if s is None:
            return irr
        e, lux = s
        return _add_light(irr, maps, e, (lux * illuminant_bgr(self.cct)).astype(np.float32))

    def ir(self, signal: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The IR light with the sun's 850 nm in the glint's patch at ``t``."""
        s = self.share(view, maps.z, t)
        if s is None:
            return signal
        e, lux = s
        return (signal + e * np.float32(lux * SUN_NIR_SHARE) * maps.nir * (1.0 - maps.specular)).astype(np.float32)
