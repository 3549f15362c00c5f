"""The eighteenth family's two lights: a branch's multicoloured holiday string lights on an 8-function
controller beside the kiosk, and a ceiling time-of-flight people counter's pulsed 850 nm flood.

``StringLights`` ("string_lights"): a branch lobby in the evening under warm LED downlights (100-400 lux on
the face, 2700-3500 K, 0.002 of 850 nm per lux as "led") with a string of multicoloured mini LEDs hung
round the kiosk or the window beside it for the holidays (recalled as common in December; no survey of
branches read). Such strings (recalled from the common 8-function controllers' wiring, not read in a
schematic) carry two channels of LEDs wired in anti-parallel along the string, every other bulb: one
channel conducts on the mains' positive half-cycles, the other on its negative ones, with no smoothing, so
each channel is lit only while the mains exceeds its LEDs' summed forward voltage, a share ``CONDUCTION``
(0.55-0.85) of its half-cycle; the two channels flicker in antiphase at the mains frequency itself (50 or
60 Hz, 100 % deep), where every earlier flicker was at twice the mains frequency and in one colour. The
bulbs' colours repeat red, green, blue, amber along the string, so one channel holds the red and blue bulbs
(magenta) and the other the green and amber ones (yellow-green): the face's light swings between two
chromaticities at the mains frequency and with the controller's pattern. The controller's pattern
(``MODES``, drawn per session; recalled from the 8-function controllers' menus): ``steady`` (both
channels on), ``sequential`` (the channels take turns, 0.4-1.0 s a step), ``chasing`` (the same, 0.08-0.25
s a step: at and near the frame rate), ``waves`` (the channels cross-fade sinusoidally, 1.5-4 s a cycle)
and ``slo_glo`` (both fade up and down together, 2-6 s a cycle). The string's light on the face averaged
over a mains cycle at full is 3-30 lux per channel (``STRING_LUX``, log-uniform; a 100-bulb string's
~50-100 lm at 0.3-1.5 m, an assumption), split evenly between its two colours. Each colour is the linear
sRGB of its LED's dominant wavelength (625 nm red and 465 nm blue as the seventeenth's light bar; 525 nm
green, 590 nm amber: CIE 1931 through the sRGB matrix, negatives clipped, 1 luminance per lux; recalled).
A frame collects each channel's conduction share of its exposure (closed form: ``beacon.Beacon``'s pulse
train, one pulse a mains cycle) times the pattern's level at the exposure's middle (a pattern step is at
least 80 ms, an exposure at most 33 ms). LEDs have no 850 nm of their own; the family's camera (the Gemini
335Lg) has no IR-pass filter, so under ``ir_leak`` the string's visible light reaches its IR frames too,
through the room's band gains (``leak.py``), with the same flicker and pattern.

``TofCounter`` ("tof_counter"): an ATM vestibule or a branch's entrance at night under LED downlights (50-300
lux, 3000-4500 K, 0.002 as "led") watched by a ceiling-mounted time-of-flight people counter or occupancy
sensor (queue management, a vestibule's one-person check; recalled as installed in banks, no survey read).
Its VCSEL flood (850 nm; recalled: many such sensors emit at 850 nm, others at 940 nm) is pulsed: each of
its frames (5-30 fps, its own crystal, 0.2 % off nominal at most, so it drifts against the kiosk's camera)
takes 4 or 8 phase sub-frames (one or two modulation frequencies) of 0.2-1.0 ms light each, 0.5-2.0 ms of
readout apart, and stays dark for the rest of the frame. The kiosk's IR frames (global shutter, 0.1-33 ms)
collect 0 to all of a burst depending on where it falls against their exposure: a light in the projector's
band that switches on and off near the frame rate, uncorrelated with the agent's projector commands; the
colour camera's IR-cut filter removes it. Geometry: the sensor 1.0-1.6 m above the face and 0.3-1.5 m from
it horizontally, anywhere within 120° either side of the line to the kiosk (so behind the customer too,
where it lights mostly the hair and the walls); its radiant intensity towards the face 300-1500 mW/sr at
the pulse's peak (log-uniform; a 1-4 W peak VCSEL array over a ~100° field, recalled), on ``night.IrFlood``'s
model (inverse square, the surface's cosine, 10 % fill, cast shadows, the skin's sheen; its geometry sampled
every 4th pixel, the CCTV flood's every 2nd, to keep a frameset within its CPU budget): 14-300
lux-equivalents at the peak on the simulator's 850 nm scale, where the projector's dots give ~300.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .beacon import Beacon
from .night import IrFlood, irradiance_lux_eq
from .vestibule import BLUE_BGR, RED_BGR

# --- The string lights -----------------------------------------------------------------------------------
MODES = ("steady", "sequential", "chasing", "waves", "slo_glo")
MODE_STEP_S = {"sequential": (0.4, 1.0), "chasing": (0.08, 0.25), "waves": (1.5, 4.0), "slo_glo": (2.0, 6.0)}
MAINS_HZ = (50.0, 60.0)
GRID_DEVIATION = 0.001             # the mains frequency's relative deviation, drawn in +-this (as night.py)
CONDUCTION = (0.55, 0.85)          # the share of its half-cycle a channel's LEDs conduct
STRING_LUX = (3.0, 30.0)           # each channel's light on the face over a mains cycle at full, log-uniform
# CIE 1931 (x, y, z)-bar at 525 nm (0.114, 0.786, 0.060) and 590 nm (1.026, 0.757, 0.001) through the sRGB
# matrix, negatives clipped, scaled to a luminance (0.2126 R + 0.7152 G + 0.0722 B) of 1 per lux.
GREEN_BGR = np.array([0.0, 1.0 / 0.7152, 0.0], np.float32)
AMBER_590_BGR = (np.array([0.0, 0.426, 2.162]) / (0.7152 * 0.426 + 0.2126 * 2.162)).astype(np.float32)
# The two channels' colours per lux: red and blue bulbs on one, green and amber on the other, half each.
CHANNEL_BGR = ((0.5 * (RED_BGR + BLUE_BGR)).astype(np.float32), (0.5 * (GREEN_BGR + AMBER_590_BGR)).astype(np.float32))

# --- The time-of-flight counter ------------------------------------------------------------------------
TOF_FPS = (5.0, 10.0, 15.0, 20.0, 30.0)
TOF_CLOCK = 0.002                  # its frame clock's relative offset from nominal, drawn in +-this
TOF_SUBFRAMES = (4, 8)
TOF_PULSE_S = (0.0002, 0.0010)
TOF_READOUT_S = (0.0005, 0.0020)
TOF_MW_SR = (300.0, 1500.0)        # radiant intensity towards the face at the pulse's peak, log-uniform
TOF_RISE_M = (1.0, 1.6)            # the sensor above the face
TOF_OFFSET_M = (0.3, 1.5)          # and from it horizontally
TOF_BEARING_DEG = 120.0            # within this either side of the line from the face to the kiosk
TOF_STRIDE = 4                     # the flood's geometry every 4th pixel (night.IrFlood.stride; the cost budget)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


@dataclass(frozen=True)
class StringLights:
    """Two anti-parallel channels of holiday lights (module docstring): each a pulse a mains cycle (its
    conduction), the second half a cycle after the first, under the controller's pattern."""

    mode: str
    step_s: float                 # the pattern's step or cycle (0 for steady)
    pattern_phase_s: float
    channels: tuple[Beacon, Beacon]
    lux: float                    # each channel's light over a mains cycle at full

    @classmethod
    def draw(cls, rng: np.random.Generator) -> StringLights:
        mode = MODES[int(rng.integers(0, len(MODES)))]
        step = float(rng.uniform(*MODE_STEP_S[mode])) if mode in MODE_STEP_S else 0.0
        hz = float(MAINS_HZ[int(rng.integers(0, 2))]) * (1.0 + float(rng.uniform(-GRID_DEVIATION, GRID_DEVIATION)))
        period = 1.0 / hz
        conduction = float(rng.uniform(*CONDUCTION))
        lit = conduction * period / 2.0
        start = (period / 2.0 - lit) / 2.0
        phase = float(rng.uniform(0.0, period))
        lux = _log_uniform(rng, *STRING_LUX)
        peak = lux / (conduction / 2.0)          # the light while a channel conducts
        first = Beacon("string", peak, period, (start,), (lit,), phase)
        second = Beacon("string", peak, period, (start + period / 2.0,), (lit,), phase)
        return cls(mode, step, float(rng.uniform(0.0, max(step, 1e-3) * 2.0)), (first, second), lux)

    def levels(self, t_s: float) -> tuple[float, float]:
        """The controller's level for each channel at ``t_s`` (0..1)."""
        if self.mode == "steady":
            return 1.0, 1.0
        x = (t_s + self.pattern_phase_s) / self.step_s
        if self.mode in ("sequential", "chasing"):
            first = float(int(np.floor(x)) % 2 == 0)
            return first, 1.0 - first
        wave = 0.5 + 0.5 * float(np.sin(2.0 * np.pi * x))
        return (wave, 1.0 - wave) if self.mode == "waves" else (wave, wave)

    def ir_weights(self, t0_s: float, exposure_s: float) -> tuple[float, float]:
        """Each channel's light on the face over [t0, t0 + exposure] (lux of its ``CHANNEL_BGR``): its peak x
        its conduction's share of the exposure x the pattern's level at the exposure's middle."""
        levels = self.levels(t0_s + exposure_s / 2.0)
        return tuple(level * ch.peak_lux * ch.factor(t0_s, exposure_s)   # type: ignore[return-value]
                     for level, ch in zip(levels, self.channels, strict=True))

    @property
    def colours(self) -> tuple[np.ndarray, np.ndarray]:
        return CHANNEL_BGR

    def bgr(self, t0_s: float, exposure_s: float) -> np.ndarray:
        """The string's light on the face over an exposure, per unit of the room lamp's shading (B, G, R)."""
        a, b = self.ir_weights(t0_s, exposure_s)
        return (a * CHANNEL_BGR[0] + b * CHANNEL_BGR[1]).astype(np.float32)


@dataclass(frozen=True)
class TofCounter:
    """A ceiling time-of-flight sensor's pulsed 850 nm flood (module docstring): ``flood`` at the pulse's peak,
    ``pulses`` its bursts (one a sensor frame)."""

    flood: IrFlood
    pulses: Beacon

    @classmethod
    def draw(cls, rng: np.random.Generator, distance_m: float) -> TofCounter:
        intensity = _log_uniform(rng, *TOF_MW_SR)
        rise, offset = float(rng.uniform(*TOF_RISE_M)), float(rng.uniform(*TOF_OFFSET_M))
        bearing = np.deg2rad(rng.uniform(-TOF_BEARING_DEG, TOF_BEARING_DEG))
        # From the face: up (-y), to one side (x), towards the kiosk (-z) at bearing 0.
        d = float(np.hypot(rise, offset))
        centre = np.array([0.0, 0.0, distance_m])
        pos = centre + np.array([offset * np.sin(bearing), -rise, -offset * np.cos(bearing)])
        flood = IrFlood(tuple(float(v) for v in pos), (0.0, 0.0, distance_m),   # type: ignore[arg-type]
                        irradiance_lux_eq(intensity, d), stride=TOF_STRIDE)
        fps = float(TOF_FPS[int(rng.integers(0, len(TOF_FPS)))]) * (1.0 + float(rng.uniform(-TOF_CLOCK, TOF_CLOCK)))
        n = int(TOF_SUBFRAMES[int(rng.integers(0, len(TOF_SUBFRAMES)))])
        pulse, readout = float(rng.uniform(*TOF_PULSE_S)), float(rng.uniform(*TOF_READOUT_S))
        period = 1.0 / fps
        starts = tuple(i * (pulse + readout) for i in range(n))
        pulses = Beacon("tof", 1.0, period, starts, (pulse,) * n, float(rng.uniform(0.0, period)))
        return cls(flood, pulses)

    def ir_weights(self, t0_s: float, exposure_s: float) -> tuple[float]:
        """The flood's share of [t0, t0 + exposure] (its light on the face is ``flood``'s peak times it)."""
        return (self.pulses.factor(t0_s, exposure_s),)
