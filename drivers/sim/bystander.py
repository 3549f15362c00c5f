"""The twenty-first family's lights: light the people around the customer make or take away.

``floor_bounce`` ("FloorBounce"): a glazed lobby by day (300-1500 lux of daylight on the face, 4500-6500
K, its 850 nm as "daylight") whose polished stone floor or counter in front of the terminal lies in the
sun: the sunlit patch throws daylight *up* onto the chin, the underside of the nose and the brows, from
20-60 degrees below the face (a fill no earlier family drew: every other source lights from the side,
above or the front; the nineteenth's phone lights from below without 850 nm). A patch at E_floor lux of
albedo rho, A m^2 at r m, seen at cosines c1, c2, gives the face ~ rho E_floor A c1 c2 / (pi r^2): with
direct sun through clear glazing on the floor at 5,000-40,000 lux (recalled: the sun's 50-100 klux, x
cos of its elevation, x the glass's 0.8), rho 0.3-0.7 (polished marble or terrazzo, recalled), A 0.5-2
m^2 at 1-1.6 m: 60-1,500 lux; drawn log-uniform in ``BOUNCE_LUX`` (60-800: the gloss's specular share,
thrown forward, not up, taken off). Its 850 nm is the sun's (0.12 per lux, "direct_sun"), stone's
reflectance at 850 nm taken as its visible's (recalled: marble is white into the near infrared). People
crossing the patch between the sun and the floor take its light away: each crossing dims the bounce to
``1 - depth`` (depth 0.4-0.9: a body's shadow covers most of a 1 m^2 patch, recalled geometry) for
0.5-2 s (a 0.7-1.5 m/s walk across 1 m), its shadow's edge moving in over 0.15-0.5 s; crossings come
every 3-15 s on average (a busy lobby to a quiet one; an assumption).

``phone_torch`` ("PhoneTorch"): a lobby's LED downlights (100-500 lux, 3000-4500 K, 0.002 of 850 nm
per lux, as "led") with another customer 1-2.5 m away, 30-110 degrees to a side, using their phone:
either its camera's flash (single pulses ``FLASH_S``, 100-200 ms, recalled: a phone's LED flash fires
for about one exposure, with a 200-400 ms pre-flash at a quarter of the level on some phones, drawn in
half the sessions) every 4-20 s, or its torch switched on for 3-15 s, off for 3-20 s, each switch a
step within one frame (a GPIO to the LED driver). A phone LED is a blue die under a phosphor, 5000-6500 K
(recalled): no 850 nm beyond "led"'s 0.002 per lux. The torch gives the face 10-150 lux (40-100 lm into
a 60-80 degree beam at 1-2.5 m, recalled), the flash 60-600 lux (the flash driver's 1 A against the
torch's 0.1-0.3 A, recalled).

Both cost one surface-normal map per frame (lobby.surface_normals) on every 2nd (640 wide) or 4th (1280
wide) pixel while lit (entrance.py's helpers), and nothing while the torch is off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .entrance import _add_light, _log_uniform
from .lobby import side_direction
from .optics import View
from .radiant import lit_share
from .render import ViewMaps
from .sensor import illuminant_bgr

# --- The floor's bounce -------------------------------------------------------------------------------
BOUNCE_LUX = (60.0, 800.0)
BOUNCE_CCT = (5000.0, 5800.0)
SUN_NIR_SHARE = 0.12               # scene.LIGHT_NIR_SHARE["direct_sun"]
BOUNCE_AZIMUTH_DEG = (0.0, 35.0)   # the patch in front of the terminal, a little to a side
BOUNCE_ELEVATION_DEG = (-60.0, -20.0)   # below the face
BOUNCE_DIFFUSE = (0.03, 0.08)
CROSS_DEPTH = (0.4, 0.9)
CROSS_S = (0.5, 2.0)
CROSS_EDGE_S = (0.15, 0.5)
CROSS_GAP_S = (3.0, 15.0)
N_CROSSINGS = 24

# --- The bystander's phone ----------------------------------------------------------------------------
TORCH_LUX = (10.0, 150.0)
FLASH_LUX = (60.0, 600.0)
PHONE_CCT = (5000.0, 6500.0)
LED_NIR_SHARE = 0.002              # scene.LIGHT_NIR_SHARE["led"]: a phosphor-white LED
PHONE_AZIMUTH_DEG = (30.0, 110.0)
PHONE_ELEVATION_DEG = (-20.0, 20.0)
PHONE_DIFFUSE = (0.02, 0.06)
FLASH_SHARE = 0.5                  # of sessions: the camera's flash (else the torch)
FLASH_S = (0.10, 0.20)
PREFLASH_SHARE = 0.5               # of flashing phones: a pre-flash before each flash
PREFLASH_S = (0.20, 0.40)
PREFLASH_LEVEL = 0.25
FLASH_GAP_S = (4.0, 20.0)
TORCH_ON_S = (3.0, 15.0)
TORCH_OFF_S = (3.0, 20.0)
N_EVENTS = 24


def _ramp(x: float) -> float:
    return min(1.0, max(0.0, x))


def _cycle(t: float, origin: float, period_s: float) -> float:
    """Scene time ``t`` on a light's own cycle: its drawn events repeat every ``period_s`` from ``origin`` (a
    session opened late, ``t0_s`` up to 3600 s, still sees them; as radiant.WindscreenGlint's passes)."""
    return origin + (t - origin) % period_s


@dataclass(frozen=True)
class FloorBounce:
    """Daylight thrown up from a sunlit polished floor, dimmed by people crossing it (module docstring)."""

    direction: tuple[float, float, float]   # from the face to the patch, depth camera's frame
    lux: float                              # at normal incidence, nobody crossing
    cct: float
    diffuse: float
    starts: tuple[float, ...]               # each crossing's shadow's arrival (scene time, s)
    durations: tuple[float, ...]
    edges: tuple[float, ...]
    depths: tuple[float, ...]
    period_s: float                         # the crossings repeat after this (the gaps' sum)

    @classmethod
    def draw(cls, rng: np.random.Generator) -> FloorBounce:
        d = side_direction(rng, BOUNCE_AZIMUTH_DEG, BOUNCE_ELEVATION_DEG)
        lux = _log_uniform(rng, *BOUNCE_LUX)
        cct = float(rng.uniform(*BOUNCE_CCT))
        diffuse = float(rng.uniform(*BOUNCE_DIFFUSE))
        gap = float(rng.uniform(*CROSS_GAP_S))
        gaps = rng.exponential(gap, N_CROSSINGS) + CROSS_S[1] + 2 * CROSS_EDGE_S[1]     # one crossing at a time
        starts = np.cumsum(gaps) - float(rng.uniform(0.0, gap))
        durations = rng.uniform(*CROSS_S, N_CROSSINGS)
        edges = rng.uniform(*CROSS_EDGE_S, N_CROSSINGS)
        depths = rng.uniform(*CROSS_DEPTH, N_CROSSINGS)
        return cls(d, lux, cct, diffuse, tuple(float(v) for v in starts), tuple(float(v) for v in durations),
                   tuple(float(v) for v in edges), tuple(float(v) for v in depths), float(gaps.sum()))

    def level(self, t: float) -> float:
        """0..1: the patch's light left at scene time ``t`` (on the crossings' cycle)."""
        t = _cycle(t, self.starts[0] - CROSS_EDGE_S[1], self.period_s)
        shade = 0.0
        for t0, dur, edge, depth in zip(self.starts, self.durations, self.edges, self.depths, strict=True):
            if t0 - edge < t < t0 + dur + edge:
                cover = min(_ramp((t - t0 + edge) / edge), _ramp((t0 + dur + edge - t) / edge))
                shade = max(shade, depth * cover)
        return 1.0 - shade

    def color(self, irr: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The colour irradiance with the floor's bounce at ``t``."""
        lux = self.lux * self.level(t)
        bgr = (lux * illuminant_bgr(self.cct)).astype(np.float32)
        return _add_light(irr, maps, lit_share(view, maps.z, self.direction, self.diffuse), bgr)

    def ir(self, signal: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The IR light with the bounce's 850 nm (the sun's share) at ``t``."""
        e = np.float32(self.lux * self.level(t) * SUN_NIR_SHARE)
        share = lit_share(view, maps.z, self.direction, self.diffuse)
        return (signal + share * e * maps.nir * (1.0 - maps.specular)).astype(np.float32)


@dataclass(frozen=True)
class PhoneTorch:
    """Another customer's phone: its camera's flash pulses or its torch switched on and off (module
    docstring)."""

    direction: tuple[float, float, float]   # from the face to the phone, depth camera's frame
    flash: bool                             # flash pulses (else the torch)
    lux: float                              # at normal incidence while lit (the flash's main pulse)
    cct: float
    diffuse: float
    starts: tuple[float, ...]               # each pulse's (or torch span's) start, scene time (s)
    durations: tuple[float, ...]
    preflash_s: float                       # 0: no pre-flash; else its length, before each pulse
    period_s: float                         # the events repeat after this (the gaps' sum)

    @classmethod
    def draw(cls, rng: np.random.Generator) -> PhoneTorch:
        d = side_direction(rng, PHONE_AZIMUTH_DEG, PHONE_ELEVATION_DEG)
        flash = bool(rng.random() < FLASH_SHARE)
        cct = float(rng.uniform(*PHONE_CCT))
        diffuse = float(rng.uniform(*PHONE_DIFFUSE))
        if flash:
            lux = _log_uniform(rng, *FLASH_LUX)
            gap = float(rng.uniform(*FLASH_GAP_S))
            # Apart by at least a pre-flash and a pulse: one flash at a time.
            gaps = rng.exponential(gap, N_EVENTS) + PREFLASH_S[1] + FLASH_S[1]
            starts = np.cumsum(gaps) - float(rng.uniform(0.0, gap))
            durations = rng.uniform(*FLASH_S, N_EVENTS)
            pre = float(rng.uniform(*PREFLASH_S)) if rng.random() < PREFLASH_SHARE else 0.0
            period = float(gaps.sum())
        else:
            lux = _log_uniform(rng, *TORCH_LUX)
            on = rng.uniform(*TORCH_ON_S, N_EVENTS)
            off = rng.uniform(*TORCH_OFF_S, N_EVENTS)
            starts = np.cumsum(on + off) - on - float(rng.uniform(0.0, float(on[0] + off[0])))
            durations = on
            pre = 0.0
            period = float((on + off).sum())
        return cls(d, flash, lux, cct, diffuse, tuple(float(v) for v in starts),
                   tuple(float(v) for v in durations), pre, period)

    def level(self, t0: float, t1: float) -> float:
        """The phone's mean output over the exposure ``t0``..``t1`` (scene time), 0..1 of ``lux``: a flash's
        100-200 ms pulse lights the frames whose exposure overlaps it, in proportion."""
        span = max(t1 - t0, 1e-6)
        t0 = _cycle(t0, self.starts[0] - PREFLASH_S[1], self.period_s)
        t1 = t0 + span
        lit = 0.0
        for s, dur in zip(self.starts, self.durations, strict=True):
            lit += max(0.0, min(t1, s + dur) - max(t0, s))
            if self.preflash_s > 0.0:
                p0 = s - self.preflash_s
                lit += PREFLASH_LEVEL * max(0.0, min(t1, s) - max(t0, p0))
        return min(1.0, lit / span)

    def _lux(self, t: float) -> float:
        # A frame's colour and IR are rendered at one instant; the flash is averaged over a 33 ms frame.
        return self.lux * self.level(t, t + 1.0 / 30.0)

    def color(self, irr: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The colour irradiance with the phone's light at ``t`` (nothing while it is dark)."""
        lux = self._lux(t)
        if lux <= 0.0:
            return irr
        bgr = (lux * illuminant_bgr(self.cct)).astype(np.float32)
        return _add_light(irr, maps, lit_share(view, maps.z, self.direction, self.diffuse), bgr)

    def ir(self, signal: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The IR light with the phone LED's little 850 nm at ``t``."""
        lux = self._lux(t)
        if lux <= 0.0:
            return signal
        share = lit_share(view, maps.z, self.direction, self.diffuse)
        return (signal + share * np.float32(lux * LED_NIR_SHARE) * maps.nir * (1.0 - maps.specular)).astype(
            np.float32)
