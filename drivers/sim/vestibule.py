"""The seventeenth family's two lights: a vestibule's occupancy-controlled dim-to-warm LED downlights fading
during the session, and an emergency vehicle's red and blue light bar at a walk-up ATM at night.

``Fade`` ("occupancy_fade"): an ATM vestibule or a self-service lobby lit by LED downlights on an occupancy
(PIR) sensor and a DALI dimming driver, as energy codes ask of rooms used now and then (recalled: ASHRAE
90.1 and EN 15193 give occupancy control for such spaces; no survey of bank vestibules read). The lights
change level *during* a capture in two common ways (drawn per session, half each):

- ``up``: the vestibule stood at its standby level and the sensor switches the lights to full a moment
  after the customer is in front of the kiosk (a PIR's detection lag as the person walks in);
- ``down``: the sensor's hold time runs out while the customer stands still at the kiosk (a PIR sees
  motion, not presence; a still person at a screen is the textbook false "vacancy"), and the lights fade
  to standby.

The fade starts at a time drawn uniformly in ``FADE_START_S`` (0.3-5 s of scene time, the session's
clock from ``t0_s``) and runs linearly in light output for one of the DALI standard fade times
``FADE_TIMES_S`` (0.7-4.0 s; IEC 62386-102's fade-time table, recalled, not read); the standby level is
``STANDBY`` (0.25-0.5) of full. The drivers are dim-to-warm (the light's colour follows its level as an
incandescent lamp's does): 3000 K at full (``LIGHT_CCT``: 2900-3100 K, the URI's ``cct``) to 2200 K at
10 % (recalled from makers' "warm dim" product lines), log-linear in the level: at standby 2450-2800 K,
inside the capture spec. ``lux`` is the face's light at full (150-600 lux); at standby 38-300 lux. So the
face's light changes in level *and chromaticity* over 0.7-4 s, monotonically, once, inside the capture
window: not a flicker (periodic), not a random step (the sixteenth's tube), not a sweep of shadow (the
tenth's passers-by, the fifteenth's fan), nor a light that comes and goes again (headlamps, beacons).
A frame's level is the mean over its exposure (closed form, ``factor``); its colour the CCT at the
exposure's middle (a 33 ms exposure sees at most 5 % of the fastest fade). LEDs: 0.002 of 850 nm per lux
(``scene.LIGHT_NIR_SHARE``, as "led"), so the IR barely moves. The camera's white balance stays on the
full level's CCT (the URI's ``cct``, as every family's does), so a dimmed frame reads warmer.

``LightBar`` ("lightbar"): a walk-up ATM or a glazed kiosk lobby on a street at night (15-80 lux of LED
street light and the ATM's fascia on the face, 3500-5000 K, 0.003 of 850 nm per lux as "street_led")
with a police car's or an ambulance's light bar flashing at the kerb (an incident, a patrol's stop;
recalled as common at street ATMs, no survey read). Its LED modules flash in groups that alternate
between the bar's red and blue halves (the "wig-wag" of European and North American bars): a group of
1-4 flashes of 30-60 ms, 30-50 ms apart, on one colour, the same on the other colour half a cycle later,
a cycle every 0.5-1.2 s (lengthened where a long group needs it, so that each colour's group
ends before the other's starts; 60-120 groups a minute per colour, inside ECE R65's 2-4 Hz for blue lamps when
counted per flash group; recalled). The red (625 nm) and blue (465 nm) LEDs' light on the face: red 5-60
lux at the peak (log-uniform), blue at 0.28 of red's lux (the two halves taken as equal radiant power:
V(465 nm) / V(625 nm) = 0.091 / 0.321, CIE 1931, recalled). Each colour is the linear sRGB of its
wavelength (CIE 1931 colour matching functions through the sRGB matrix, negative parts clipped,
normalised to a luminance of 1 per lux; recalled values, ``RED_BGR``, ``BLUE_BGR``). So the face's light
swings between red and blue within a second, changing chromaticity in opposite directions, where the
sixteenth's amber beacon only added red and green. Each colour's flashes are ``beacon.Beacon`` pulse
trains (the same closed-form exposure share), one with the red half's phase and one half a cycle later.
LEDs have no 850 nm of their own; the seventeenth family's camera (the RealSense D436) is rendered with an
IR-pass filter, so the bar does not reach its IR frames (with a broadband camera under ``ir_leak`` its
visible light in IR is not modelled).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .beacon import Beacon
from .sensor import illuminant_bgr

# --- The occupancy fade ------------------------------------------------------------------------------------
FADE_DIRECTIONS = ("up", "down")
FADE_START_S = (0.3, 5.0)                       # the fade's start on the scene's clock
FADE_TIMES_S = (0.7, 1.0, 1.4, 2.0, 2.8, 4.0)  # DALI fade times (IEC 62386-102's table, recalled)
STANDBY = (0.25, 0.50)                          # the standby level, of full
WARM_AT_10PCT_K = 2200.0                        # a dim-to-warm driver's CCT at 10 % (recalled)

# --- The light bar -----------------------------------------------------------------------------------------
BAR_FLASHES = (1, 4)                # flashes in a group
BAR_FLASH_S = (0.030, 0.060)
BAR_GAP_S = (0.030, 0.050)
BAR_PERIOD_S = (0.5, 1.2)           # a red group and a blue group a cycle
BAR_GROUP_SHARE = 0.45              # a group lasts at most this share of the cycle (the colours alternate)
BAR_RED_PEAK_LUX = (5.0, 60.0)      # log-uniform
BLUE_LUX_PER_RED = 0.091 / 0.321    # equal radiant power: V(465 nm) / V(625 nm)
# CIE 1931 (x, y, z)-bar at 625 nm (0.748, 0.321, 0.000) and 465 nm (0.195, 0.091, 1.288), through the
# sRGB matrix, negatives clipped, scaled to a luminance (0.2126 R + 0.7152 G + 0.0722 B) of 1 per lux.
RED_BGR = np.array([0.0, 0.0, 1.0 / 0.2126], np.float32)
BLUE_BGR = (np.array([1.353, 0.035, 0.0]) / (0.7152 * 0.035 + 0.0722 * 1.353)).astype(np.float32)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


@dataclass(frozen=True)
class Fade:
    """A vestibule's lights fading once, linearly in output, from ``start_level`` to ``end_level`` (of
    full) over [``start_s``, ``start_s`` + ``length_s``] of scene time (module docstring)."""

    direction: str
    start_s: float
    length_s: float
    standby: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Fade:
        direction = FADE_DIRECTIONS[int(rng.integers(0, 2))]
        start = float(rng.uniform(*FADE_START_S))
        length = float(FADE_TIMES_S[int(rng.integers(0, len(FADE_TIMES_S)))])
        return cls(direction, start, length, float(rng.uniform(*STANDBY)))

    @property
    def start_level(self) -> float:
        return self.standby if self.direction == "up" else 1.0

    @property
    def end_level(self) -> float:
        return 1.0 if self.direction == "up" else self.standby

    def level(self, t_s: float) -> float:
        """The light's output at ``t_s``, of full."""
        x = (t_s - self.start_s) / self.length_s
        if x <= 0.0 or x >= 1.0:
            return self.start_level if x <= 0.0 else self.end_level
        return self.start_level + (self.end_level - self.start_level) * x

    def _integral(self, t_s: float) -> float:
        """The integral of the level over [0, t] (t >= 0): piecewise linear, in closed form."""
        a, b = self.start_s, self.start_s + self.length_s
        before = min(t_s, a) * self.start_level
        x = float(np.clip(t_s, a, b)) - a
        ramp = x * self.start_level + (self.end_level - self.start_level) * x * x / (2.0 * self.length_s)
        return before + ramp + max(t_s - b, 0.0) * self.end_level

    def factor(self, t0_s: float, exposure_s: float) -> float:
        """The light's mean over [t0, t0 + exposure] relative to the light at full (the URI's ``lux``)."""
        if exposure_s < 1e-6:
            return self.level(t0_s)
        return (self._integral(t0_s + exposure_s) - self._integral(t0_s)) / exposure_s

    def cct(self, t_s: float, full_cct: float) -> float:
        """The dim-to-warm CCT at ``t_s``: ``full_cct`` at full, 2200 K at 10 %, log-linear in the level."""
        return full_cct * (WARM_AT_10PCT_K / full_cct) ** float(np.log10(1.0 / self.level(t_s)))

    def tint(self, t0_s: float, exposure_s: float, full_cct: float) -> np.ndarray:
        """The room light's colour over an exposure (at its middle) against its colour at full (B, G, R)."""
        return (illuminant_bgr(self.cct(t0_s + exposure_s / 2.0, full_cct)) / illuminant_bgr(full_cct)
                ).astype(np.float32)


@dataclass(frozen=True)
class LightBar:
    """An emergency vehicle's red and blue flash groups (module docstring): two ``Beacon`` pulse trains of
    the same cycle, the blue half a cycle after the red."""

    red: Beacon
    blue: Beacon

    @classmethod
    def draw(cls, rng: np.random.Generator) -> LightBar:
        n = int(rng.integers(BAR_FLASHES[0], BAR_FLASHES[1] + 1))
        flash, gap = float(rng.uniform(*BAR_FLASH_S)), float(rng.uniform(*BAR_GAP_S))
        period = float(rng.uniform(*BAR_PERIOD_S))
        group = n * flash + (n - 1) * gap
        period = max(period, group / BAR_GROUP_SHARE)      # a colour's group ends before the other's starts
        red_lux = _log_uniform(rng, *BAR_RED_PEAK_LUX)
        phase = float(rng.uniform(0.0, period))
        starts = tuple(i * (flash + gap) for i in range(n))
        lengths = (flash,) * n
        red = Beacon("led_flash", red_lux, period, starts, lengths, phase)
        blue = Beacon("led_flash", red_lux * BLUE_LUX_PER_RED, period, starts, lengths,
                      (phase + period / 2.0) % period)
        return cls(red, blue)

    def bgr(self, t0_s: float, exposure_s: float) -> np.ndarray:
        """The bar's light on the face over an exposure, per unit of the room lamp's shading: each colour's
        peak lux x its share of the exposure x its B, G, R per lux."""
        return (self.red.peak_lux * self.red.factor(t0_s, exposure_s) * RED_BGR
                + self.blue.peak_lux * self.blue.factor(t0_s, exposure_s) * BLUE_BGR).astype(np.float32)
