"""What stands in front of the simulated camera at time t: people, instruments, background, light.

``Scene(cfg)`` resolves the URI's identity keys into an ``Identity`` and builds, per tick, the posed
objects the renderer draws: the subject (a live person, or an attack instrument and whoever holds or
wears it) with shoulders and torso, an optional bystander, and the background (a plain wall, clutter
in front of it, or clutter with people walking past). Light sources set the ambient NIR share.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from . import body, cornea, head, species
from .atrium import GoboSpot, Lightning
from .beacon import Beacon, FailingTube
from .bystander import FloorBounce, PhoneTorch
from .config import SimConfig
from .entrance import AutoDoor, PhoneScreen
from .families import ENVELOPE, light_for
from .fan import CeilingFan, sodium_flicker
from .holiday import StringLights, TofCounter
from .identity import BLINK_S, Identity, family_salt
from .keylight import Headlights, RingLight
from .lobby import DappledSun, Signage
from .night import Flicker, IrFlood
from .profiles import rotation
from .pwm import PwmLight
from .radiant import QuartzHeater, WindscreenGlint
from .reflected import Caustics, MirrorBall
from .render import Placed, PlacedPlane, Plane
from .street import Backlight, PassingShadows
from .subject import PHOTO_PITCH_DEG, PHOTO_ROLL_DEG, Surface, value_noise
from .sun import Blinds, SunEdge
from .vestibule import Fade, LightBar

# Ambient NIR (850 nm band) per visible lux, by light source, on the scale of ``sensor.nir_share``
# (which gives 0.35 for 3000 K). Black-body ratios of 850 nm radiance to luminance (Planck):
# 2856 K : 5800 K = 1.25 : 0.28, so incandescent 0.40 and daylight 0.09. Phosphor-converted white
# LEDs emit essentially nothing beyond ~780 nm; triphosphor fluorescent tubes add only weak argon and
# mercury lines near 810-850 nm. "mixed" is LED ceiling light with a third of daylight from a window.
# "halogen" (tungsten-halogen spots, 2900-3300 K) is a black body too: Planck at 3100 K on the same
# scale (the 2856 K ratio mapped to 0.40; 5800 K then comes out at 0.089, the daylight value) gives
# 0.32. "led_cri95" is a high-CRI LED panel: a nitride red phosphor (peak ~650 nm) added to the YAG
# one for CRI >= 95 lifts the 850 nm tail 1.4-1.7x over a YAG-only white LED (each emitter a Gaussian
# band in photon energy, ratio of 850 nm radiance to luminance, over the red shares tried; the upper
# end taken), so 0.002 x 1.66 = 0.0033.
# The fresh family's two sources, on the same scale (share = k x mean spectral radiance over 830-870 nm
# / luminance, k set by 2856 K -> 0.40; that k gives 5800 K 0.089 and 3100 K 0.317, the values above):
# - "metal_halide": ceramic metal-halide lamps (atrium and high-ceiling lobby light, 3000-4200 K, the
#   lamps' two standard colours). The visible light is the metal iodides' lines and molecular
#   quasi-continuum (Na, Tl, Dy, Ca...), on a black-body-like envelope at the lamp's CCT; past 700 nm
#   the arc is optically thin and the continuum falls away: lamp spectra put ~12 % of the visible mean
#   at 850 nm (the argon 842 nm buffer-gas line and the tail of the sodium 819 nm doublet included;
#   the arc tube's own thermal glow at ~1300 K is negligible at 850 nm). A black-body envelope to
#   700 nm with a log-linear fall to 0.12 at 850 nm gives 0.017 at every CCT in the range (0.012 at
#   0.08, 0.023 at 0.16): like a fluorescent tube, a fifth of a halogen spot's per lux.
# - "north_sky_glass": north-sky daylight (no direct sun) through tinted solar-control glazing, as in
#   a glass-fronted branch. Skylight is sunlight (5800 K) scattered with a lambda^-1.5..-2 weighting
#   (Rayleigh's lambda^-4 softened by aerosols and multiple scattering: a CCT of 7000-10000 K), which
#   alone gives 0.047-0.038 (0.042 at lambda^-1.75). Green-tinted solar-control float glass absorbs in
#   its ferrous-iron band (centred near 1050 nm and ~500 nm wide): it passes ~75 % of visible light
#   but ~40 % at 850 nm, a ratio of 0.55, so 0.042 x 0.55 = 0.023, a quarter of open daylight's. The
#   glass's green tint takes a little red, so the light stays at 6500-9500 K; the family draws only
#   the 6500-7500 K the capture spec admits (families.LIGHT_CCT).
# The fifth family's two sources, on the same scale:
# - "led_warm": warm-white LED downlights (2700-3000 K, CRI ~80; a low-ceilinged lobby's recessed
#   lights). A blue pump, a garnet (YAG-type) phosphor and an orange-red nitride phosphor (~620 nm,
#   narrower than the garnet's band) that takes 30-40 % of the radiant power to pull the light down to
#   2700-3000 K. In the band model that gives led_cri95 its 1.4-1.7x (each emitter a Gaussian band in
#   photon energy: blue 450 nm / 20 nm wide, garnet 560 / 115 nm, red 620 / 80 nm, or 650 / 90 nm for
#   the high-CRI red, which comes out at 1.40-1.58x at 3250-3600 K; CCT from the CIE 1931 observer,
#   multi-lobe fit of Wyman, Sloan and Shirley 2013, and McCamy's formula) the 850 nm radiance per lux
#   of the warm white is 0.72-0.80 of a 6000 K garnet-only white's: the narrow red adds lumens but
#   almost no tail, and takes power from the garnet whose wide band makes the tail. 0.002 x 0.76 =
#   0.0015, the least NIR of any light here (the arithmetic is in tests/drivers/sim/test_fifth_family.py).
# - "cfl": compact fluorescent lamps (2700-4100 K, the lamps' common colours; an older branch's
#   vestibule). The same mercury-argon discharge and rare-earth triphosphor as the tubes ("fluorescent"
#   0.012), whose argon lines at 842.5 and 852.1 nm fall in the band: the NIR is the lines', a similar
#   share of the arc's power in both. A CFL with its ballast in the base gives ~60 lm/W against ~90 lm/W
#   for a triphosphor T8 tube on an electronic ballast (typical catalogue figures), so it makes 1.5x the
#   tube's NIR per lux: 0.012 x 1.5 = 0.018. An estimate from efficacy, not a measured CFL spectrum.
# The sixth family's two sources, on the same scale (the arithmetic is in tests/drivers/sim/test_sixth_family.py):
# - "open_shade": a through-the-wall ATM or video teller by day, the face in the open shade of the
#   kiosk's canopy (no direct sun on it): lit by the sky beside the canopy and by the sunlit ground in
#   front. By luminance 45 % skylight (sun at 5800 K x lambda^-1.75, 0.043, ~9400 K), 45 % sunlight
#   off grey pavement (reflectance 0.28 at 450 nm rising to 0.36 at 850 nm, typical of concrete:
#   0.107) and 10 % off planting (a green bump and the red edge at ~715 nm, 0.45 at 850 nm: 0.51)
#   gives 0.118 at ~6700 K; 0.075 without planting, 0.16 with 20 %. Taken at 0.12: more NIR per lux
#   than open daylight, as shade is lit by what the ground sends back. CCT drawn at 6500-7500 K.
# - "screen_led": a dim vestibule at night lit mostly by the terminal's own screen and a cool-white LED
#   strip (5000-6500 K). The strip is a garnet-only white LED: 0.002 (the "led" value; within 1 % at
#   5000-6500 K in the band model). The screen is an LCD on a white-LED backlight: its panel passes
#   ~5 % of the backlight's visible light (polarisers and colour filters; typical 4-8 %), but at 850 nm
#   iodine-PVA polarisers no longer polarise and colour-filter pigments are clear, so ~50 % of the
#   backlight's tail comes through: ~10x the NIR per lux of the bare LED (6-12x over those ranges).
#   With 60 % of the light from the screen: 0.6 x 0.002 x 10 + 0.4 x 0.002 = 0.013. (The simulator's
#   separate kiosk-screen term, screen_nits, is the challenge's colour light and is left as it is.)
# The seventh family's two sources, on the same scale (the arithmetic is in tests/drivers/sim/test_seventh_family.py):
# - "lowe_glass": a branch lobby by day lit through spectrally selective low-emissivity glazing (a
#   double-silver coating in an insulating glass unit): daylight (5800 K, 0.09) whose visible light the
#   glass passes at ~0.70 while the coating reflects the near infrared, down to ~0.25 at 850 nm
#   (typical double-silver figures, recalled; single-silver ~0.45, triple-silver ~0.12), the
#   transmittance falling log-linearly from 650 nm: 0.032 (0.017 behind triple-silver, 0.054 behind
#   single-silver; 0.028-0.041 over 6500-5000 K daylight). CCT drawn at 5000-6500 K.
# - "street_led": an outdoor wall ATM at night, lit by LED street lamps (4000-5000 K) and the kiosk's
#   own backlit advertising panel (white LEDs behind a printed translucent film). The street lamps'
#   phosphor LEDs: 0.002 (the "led" value; within 2 % at 4500-5000 K in the band model). The panel's
#   print passes ~30 % of its backlight's visible light (typical 20-40 %), but process inks are clear
#   at 850 nm, so ~70 % of its tail comes through (60-80 %: the film and diffuser): 2.3x the NIR per lux
#   of the bare LED. With 40 % of the light on the face from the panel: 0.002 x (0.6 + 0.4 x 2.33) = 0.0031.
# The eighth family's two sources, both carrying real 850 nm light, on the same scale (the arithmetic
# is in tests/drivers/sim/test_eighth_family.py):
# - "direct_sun": a face in direct or hazy sun at a wall ATM or a kiosk under a canopy. The direct beam
#   is the 5800 K sun through air mass 1.5 (a sun ~48° up) with Rayleigh scattering (optical depth
#   0.0088 lambda^-4.05, lambda in µm, the usual approximation) and aerosol (Ångström's law, turbidity
#   beta 0.1, alpha 1.3: a clear-to-hazy sky); the blue it loses raises its 850 nm per lux to 0.116
#   (0.108 at beta 0.05, 0.15 at beta 0.3; 0.13-0.25 with the sun lower, air mass 3), at ~4650 K.
#   By luminance on a face turned to the sun: 65 % direct beam, 20 % skylight (sun x lambda^-1.75,
#   0.042, as the open shade's), 10 % sunlit grey pavement and 5 % planting (the open shade's reflectance
#   models): 0.12 at ~5350 K (0.10 with no planting and a brighter sky share, 0.14 under hazy sun at
#   air mass 2 with planting). So the same NIR per lux as the sixth family's open shade (which gets its
#   0.12 from the ground's and the plants' light) and more than open daylight's 0.09; what is new is the
#   illuminance (2000-7500 lux on the face, families.LIGHT_LUX): up to 900 lux-equivalents of 850 nm,
#   the most of any light here (the Planck figures and the Rayleigh and Ångström forms as recalled from
#   the atmospheric optics literature, e.g. Iqbal, An Introduction to Solar Radiation (1983): not read here).
#   CCT drawn at 4800-5800 K.
# - "shop_halogen": a kiosk inside a shop lit by low-voltage halogen spots (3000 K black body, 0.35 on
#   this scale) with daylight (0.09) from the shop window, 60 % of the light on the face from the spots:
#   0.6 x 0.35 + 0.4 x 0.09 = 0.24 per lux at ~3800 K (0.22-0.27 for 50-70 % halogen, 3600-4100 K). It
#   carries more 850 nm per lux than any light here but incandescent and halogen, at 150-800 lux.
#   CCT drawn at 3500-4100 K. (High-pressure sodium street lamps, the brief's other candidate, are
#   2000-2200 K: outside the 2300-7500 K the capture spec admits, so not used.)
# The ninth family's two sources (drivers/sim/night.py): "cctv_ir", a lobby at night under dimmed
#   phosphor-white LEDs (3000-4000 K, 15-150 lux; a white LED's 0.002, as "led") whose 850 nm comes
#   mostly from a CCTV dome's IR flood, which night.IrFlood adds independently of the lux; and
#   "flicker_led", LED panels on cheap drivers (4000-5000 K, 100-1000 lux, 0.002) whose light is
#   modulated at twice the mains frequency (night.Flicker).
# The tenth family's two sources (drivers/sim/street.py): "backlight", the room's warm-white LEDs on the
#   face (3000-4000 K, 80-400 lux, 0.002 as "led") with a bright street behind the head through the
#   glazing (street.Backlight: its own daylight and 850 nm on the background and a rim on the
#   silhouette); and "passing_shade", daylight through a street window with the room's LEDs (75 % / 25 %
#   of the lux: 0.75 x 0.09 + 0.25 x 0.002 = 0.068) crossed by passers-by's shadows (street.PassingShadows).
# The eleventh family's two sources (drivers/sim/lobby.py): "signage", a lobby's ceiling LEDs (0.002 as
#   "led") with an RGB LED advertising panel beside the kiosk lighting one side of the face in colours
#   that change between adverts (lobby.Signage: narrow-band emitters, nothing at 850 nm, so the share
#   is the room's); and "dappled_sun", the shade under a tree (0.20: the canopy scatters about half of
#   the near infrared and absorbs most of the visible, about twice daylight's 0.09, recalled) crossed by
#   sunflecks carrying the direct sun's 0.12 per lux (lobby.DappledSun, added on top).
# The twelfth family's two sources (drivers/sim/keylight.py): "ring_light", a lobby's ceiling LEDs (0.002
#   as "led") with the kiosk's own LED ring light around its camera (keylight.RingLight, added on top:
#   0.002 per lux too); and "headlights", a forecourt canopy's LEDs at night (0.002) swept by passing
#   cars' headlamps (keylight.Headlights, added on top: halogen 0.32 per lux, LED 0.002).
# The thirteenth family's source (drivers/sim/pwm.py): "pwm_led", a lobby lit by LED panels dimmed by
#   pulse-width modulation (0.002 per lux as "led"; its pulses band a rolling-shutter colour image).
LIGHT_NIR_SHARE = {"daylight": 0.09, "fluorescent": 0.012, "led": 0.002, "incandescent": 0.40, "mixed": 0.032,
                   "halogen": 0.32, "led_cri95": 0.0033, "metal_halide": 0.017, "north_sky_glass": 0.023,
                   "led_warm": 0.0015, "cfl": 0.018, "open_shade": 0.12, "screen_led": 0.013,
                   "lowe_glass": 0.032, "street_led": 0.0031, "direct_sun": 0.12, "shop_halogen": 0.24,
                   "cctv_ir": 0.002, "flicker_led": 0.002, "backlight": 0.002, "passing_shade": 0.068,
                   "signage": 0.002, "dappled_sun": 0.20, "ring_light": 0.002, "headlights": 0.002,
                   "pwm_led": 0.002, "blinds": 0.17, "ceiling_fan": 0.32, "sodium": 0.029,
                   "failing_tube": 0.012, "beacon": 0.003, "occupancy_fade": 0.002, "lightbar": 0.003,
                   "string_lights": 0.002, "tof_counter": 0.002, "phone_screen": 0.002, "auto_door": 0.002,
                   "quartz_heater": 0.002, "windscreen_glint": 0.09, "floor_bounce": 0.09, "phone_torch": 0.002,
                   "gobo": 0.017, "lightning": 0.09, "caustics": 0.09, "mirrorball": 0.002}
# The fourteenth family's source (drivers/sim/sun.py, ``Blinds``): "blinds", low sun (10-25° up) through
#   clear glazing and a window's venetian blinds, striping the face and the wall: the direct beam alone
#   on the eighth family's model (the 5800 K sun through Rayleigh and Ångström aerosol extinction,
#   tests/drivers/sim/test_eighth_family.py) at 15° (air mass 3.8, Kasten-Young) and beta 0.1: 0.17 per
#   lux, ~3650 K; over 10-25° and beta 0.05-0.1, 0.12-0.23 and 3150-4450 K (LIGHT_CCT 3200-4500). Clear
#   float glass is taken as neutral between the visible and 850 nm (recalled); the stripes' shade keeps
#   the same share (sun.py).
# The fifteenth family's sources (drivers/sim/fan.py): "ceiling_fan", halogen downlights (a black body at
#   2800-3200 K, 0.32 as "halogen") under a turning ceiling fan whose blades' shadows pulse on the face at
#   7.5-29 Hz (fan.CeilingFan); "sodium", high-pressure sodium street lights at night (the 819 nm doublet:
#   0.04 per lux, recalled) with the ATM's LED fascia (0.3 of the lux at 0.002): 0.029, flickering at
#   twice the mains frequency (fan.sodium_flicker).
# The sixteenth family's sources (drivers/sim/beacon.py): "failing_tube", fluorescent troffers (0.012 as
#   "fluorescent") one of whose tubes blinks on and off at random (beacon.FailingTube); "beacon", a night
#   street's LED lights and the ATM's fascia (0.003, about "street_led"'s) with an amber warning beacon's
#   flashes on top, whose own 850 nm is the beacon's (beacon.BEACON_NIR: a halogen lamp's under an amber
#   dome 0.9, an amber LED's none).
# The seventeenth family's sources (drivers/sim/vestibule.py): "occupancy_fade", a vestibule's dim-to-warm LED
#   downlights (0.002 as "led") that fade up or down once during the session (vestibule.Fade); "lightbar", a
#   night street's LED lights and the ATM's fascia (0.003, as "beacon") with an emergency vehicle's red and
#   blue LED flash groups on top (vestibule.LightBar; LEDs: no 850 nm of their own).
# The eighteenth family's sources (drivers/sim/holiday.py): "string_lights", a lobby's warm LED downlights
#   (0.002 as "led") with multicoloured holiday string lights flickering at the mains frequency under their
#   controller's pattern (holiday.StringLights; LEDs: no 850 nm of their own); "tof_counter", a vestibule's LED
#   downlights (0.002) watched by a ceiling time-of-flight people counter whose pulsed 850 nm flood is its own
#   (holiday.TofCounter), not tied to the lux.
# The nineteenth family's sources (drivers/sim/entrance.py): "phone_screen", a vestibule's LED downlights (0.002
#   as "led") with the customer's own phone lighting the face from below (entrance.PhoneScreen; a screen: no
#   850 nm); "auto_door", a lobby's LED downlights (0.002) with daylight through an automatic door opening
#   and closing behind the customer, its own 850 nm (0.09 per lux, as "daylight") on top (entrance.AutoDoor).
# The twentieth family's sources (drivers/sim/radiant.py): "quartz_heater", a winter vestibule's LED downlights
#   (0.002 as "led") with a quartz infrared heater whose filament's orange glow and 850 nm (Planck's law at its
#   temperature, radiant.nir_per_lux) follow a thermostat's switching with seconds-long warm-up and cool-down
#   (radiant.QuartzHeater); "windscreen_glint", daylight through a glazed lobby's clear glass (0.09 as
#   "daylight") with sunlight mirrored off passing cars' glass sweeping a patch across the face in 0.1-0.5 s,
#   its own 850 nm (0.12 per lux, as "direct_sun") on top (radiant.WindscreenGlint).
# The twenty-first family's sources (drivers/sim/bystander.py): "floor_bounce", daylight through a glazed lobby's
#   clear glass (0.09 as "daylight") with the sun on its polished floor throwing light up onto the face from
#   below, its own 850 nm (0.12 per lux, as "direct_sun"), dimmed while people cross the sunlit patch
#   (bystander.FloorBounce); "phone_torch", a lobby's LED downlights (0.002 as "led") with another customer's
#   phone beside the terminal firing its camera's flash or switching its torch on and off (a phosphor-white
#   LED: 0.002 per lux; bystander.PhoneTorch).
# The twenty-second family's sources (drivers/sim/atrium.py): "gobo", a mall atrium's base light (0.017 as
#   "metal_halide") with a gobo projector's rotating snowflakes or stars swept over the face and the wall, its
#   own 850 nm on top (a halogen's 0.32 per lux or a discharge lamp's 0.05, through a blue dichroic's 0.9 in
#   half the scenes; atrium.GoboSpot); "lightning", grey daylight through a branch's glass front (0.09 as
#   "daylight") with a storm's flashes of 2-6 return strokes from one side, their O I and N I lines' 850 nm on
#   top (0.25 per lux; atrium.Lightning).
# The twenty-third family's sources (drivers/sim/reflected.py): "caustics", a glazed lobby's daylight (0.09 as
#   "daylight") with the sun off a fountain's pool thrown up onto the face and the wall as a swimming caustic
#   network, its own 850 nm on top (0.12 per lux as "direct_sun"; reflected.Caustics); "mirrorball", an event's
#   dimmed LED downlights (0.002 as "led") with a mirror ball's spots under a halogen pin spot sweeping the face
#   and the wall, their 850 nm on top (0.32 per lux as "halogen"; reflected.MirrorBall).
# Overhead lamp as seen from the subject: 35° above the line to the camera, ~6° across; it gives a
# third of the light on the face. Spectacle lenses mirror it (glints).
LAMP_DIR = np.array([0.0, -np.sin(np.deg2rad(35.0)), -np.cos(np.deg2rad(35.0))])
LAMP_RADIUS_RAD = 0.10
LAMP_SHARE = 0.3

# Subjects whose geometry carries the portrait's own head pitch and roll (see ``_pose``).
_PHOTO_POSED = (frozenset({"live", "multi", "mask", "head_model", "print_cutout", "head_model_hand"})
                | frozenset(species.WORN))


def ambient_nir_share(cfg: SimConfig) -> float | None:
    """NIR share of the ambient light, or None to derive it from the colour temperature."""
    light = light_for(cfg.family, cfg.identity, cfg.light)
    return LIGHT_NIR_SHARE[light] if light else None


def resolve_identity(cfg: SimConfig) -> Identity:
    return Identity.draw(cfg.identity, cfg.family).with_overrides(
        skin=cfg.skin, nose_mm=cfg.nose_mm, ipd_mm=cfg.ipd_mm, face_width_mm=cfg.face_width_mm,
        brow_mm=cfg.brow_mm, chin_mm=cfg.chin_mm, glasses=cfg.glasses, beard=cfg.beard, fringe=cfg.fringe,
        cap=cfg.cap)


class Motion:
    """Smooth pseudo-random motion: sums of incommensurate sinusoids with random phases."""

    def __init__(self, rng: np.random.Generator, n: int = 3):
        self.freqs = rng.uniform(0.15, 1.1, (6, n))
        self.phases = rng.uniform(0, 2 * np.pi, (6, n))

    def value(self, t: float, channel: int) -> float:
        return float(np.mean(np.sin(2 * np.pi * self.freqs[channel] * t + self.phases[channel])) * np.sqrt(2))


def blink_schedule(seed: int, per_min: float | None = None) -> list[float]:
    """Blink start times over an hour. ``per_min`` None: the schedule everyone had (first blink at
    0.4-1.2 s, then every 2-5 s); else a person's own rate (identity.BLINK_FAMILIES): intervals at
    0.57-1.43 times the mean 60 / per_min (the same spread), the first anywhere in one interval after 0.4 s."""
    rng = np.random.default_rng(seed)
    if per_min is None:
        first, lo, hi = (0.4, 1.2), 2.0, 5.0
    else:
        mean = 60.0 / per_min
        first, lo, hi = (0.4, 0.4 + mean), mean * 2.0 / 3.5, mean * 5.0 / 3.5
    t, out = float(rng.uniform(*first)), []
    while t < 3600:
        out.append(t)
        t += float(rng.uniform(lo, hi))
    return out


def eyes_closed_at(blinks: list[float], t: float, duration_s: float = BLINK_S) -> float:
    """How closed the eyes are at ``t`` (0 open .. 1 shut): each blink closes over 8/30 of its
    duration, stays shut for 6/30 and opens over 16/30 (80, 60 and 160 ms of the 300 ms blink)."""
    i = bisect.bisect_right(blinks, t) - 1
    if i < 0:
        return 0.0
    dt = t - blinks[i]
    k = duration_s / BLINK_S                    # 1.0 exactly for the 300 ms blink: the same arithmetic
    closing, shut, opening, end = 0.08 * k, 0.14 * k, 0.16 * k, 0.30 * k
    if dt < closing:
        return dt / closing
    if dt < shut:
        return 1.0
    if dt < end:
        return 1.0 - (dt - shut) / opening
    return 0.0


@dataclass(frozen=True)
class Posed:
    """The subject's true state at one tick."""

    subject: str
    distance_m: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    eyes_closed: float


# --- Background ------------------------------------------------------------------------------------
def _poster(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    img = np.full((h, w, 3), rng.uniform(0.1, 0.7, 3), np.float32)
    for _ in range(int(rng.integers(3, 8))):
        x0, y0 = int(rng.integers(0, w - 4)), int(rng.integers(0, h - 4))
        x1, y1 = int(rng.integers(x0 + 2, w)), int(rng.integers(y0 + 2, h))
        img[y0:y1, x0:x1] = rng.uniform(0.02, 0.8, 3)
    for _ in range(int(rng.integers(2, 6))):          # lines of "text"
        y = int(rng.integers(0, h - 3))
        img[y:y + 2, int(0.1 * w):int(rng.uniform(0.3, 0.9) * w)] = rng.uniform(0.0, 0.1)
    # Printing inks are transparent in NIR: a poster is paper-bright except for black ink.
    nir = 0.75 - 0.5 * np.clip(1 - img.max(axis=2) / 0.3, 0, 1)
    return img, nir.astype(np.float32)


def _shelf(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    grain = 1 + 0.1 * value_noise((h, w), 2, int(rng.integers(1 << 30)))
    wood = np.array([0.10, 0.18, 0.28], np.float32) * grain[..., None]
    img = np.ascontiguousarray(wood)
    nir = np.full((h, w), 0.55, np.float32)
    for shelf_y in np.linspace(0.05, 0.95, 5)[:-1]:
        y = int(shelf_y * h)
        x = 2
        while x < w - 4:
            bw = int(rng.integers(3, 12))
            bh = int(rng.integers(h // 10, h // 5))
            colour = rng.uniform(0.03, 0.7, 3)
            img[max(y + h // 4 - bh, 0):y + h // 4, x:x + bw] = colour
            nir[max(y + h // 4 - bh, 0):y + h // 4, x:x + bw] = rng.uniform(0.2, 0.8)
            x += bw + int(rng.integers(0, 3))
        img[y + h // 4:y + h // 4 + 2] = 0.08
    return img, nir


def _walker_texture(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A person seen from the side (walking past), 0.5 x 1.8 m at 5 mm per texel: alpha, colour, NIR."""
    w, h = 100, 360
    alpha = np.zeros((h, w), np.uint8)
    cv2.ellipse(alpha, (50, 22), (17, 22), 0, 0, 360, 255, -1)              # head
    cv2.rectangle(alpha, (42, 40), (58, 56), 255, -1)                       # neck
    cv2.ellipse(alpha, (50, 110), (26, 60), 0, 0, 360, 255, -1)             # torso
    cv2.rectangle(alpha, (30, 160), (70, 350), 255, -1)                     # legs
    cloth = rng.uniform(0.03, 0.6, 3).astype(np.float32)
    skin = np.array(rng.choice([(0.33, 0.39, 0.55), (0.14, 0.19, 0.31), (0.06, 0.08, 0.13)]), np.float32)
    hair = np.array(rng.choice([(0.015, 0.016, 0.02), (0.05, 0.07, 0.11)]), np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = cloth
    img[:56] = skin
    img[:30, :] = hair
    img[:45, 50:] = np.where(np.arange(45)[:, None, None] < 14, hair, skin)   # hair on top, face in profile
    img[160:] = cloth * 0.5
    nir = np.where(np.arange(h)[:, None] < 56, 0.5, float(rng.uniform(0.2, 0.7))) * np.ones((h, w))
    return (alpha > 0).astype(np.float32), img, nir.astype(np.float32)


@lru_cache(maxsize=4)
def clutter_planes(seed: int) -> tuple[tuple[Plane, np.ndarray, np.ndarray], ...]:
    """Static clutter in front of the wall: posters, a shelf, a door. (plane, R, T) in the depth frame."""
    rng = np.random.default_rng([seed, 77])
    out = []
    for k in range(int(rng.integers(3, 6))):
        kind = "shelf" if k == 0 else "poster"
        res = 0.01
        if kind == "shelf":
            w, h = int(rng.uniform(60, 100)), int(rng.uniform(100, 160))
            img, nir = _shelf(rng, w, h)
            z = float(rng.uniform(1.20, 1.45))
        else:
            w, h = int(rng.uniform(30, 60)), int(rng.uniform(40, 90))
            img, nir = _poster(rng, w, h)
            z = float(rng.uniform(1.40, 1.58))
        x = float(rng.uniform(-0.9, 0.9))
        y = float(rng.uniform(-0.6, 0.3))
        # Keep clutter out from behind the subject's face so the scene stays a kiosk, not a wall of faces.
        if abs(x) < 0.25:
            x = np.sign(x or 1.0) * float(rng.uniform(0.3, 0.9))
        plane = Plane(np.ones((h, w), np.float32), img.astype(np.float32), nir, res, -w * res / 2, -h * res / 2)
        R = rotation(0.0, np.deg2rad(float(rng.uniform(-25, 25))), 0.0)
        out.append((plane, R, np.array([x, y, z])))
    return tuple(out)


@lru_cache(maxsize=4)
def walkers(seed: int) -> tuple[tuple[Plane, float, float, float, float], ...]:
    """People walking past behind the subject: (plane, depth, speed m/s, phase s, period s)."""
    rng = np.random.default_rng([seed, 78])
    out = []
    for _ in range(2):
        alpha, img, nir = _walker_texture(rng)
        plane = Plane(alpha, img, nir, 0.005, -0.25, -0.05)
        out.append((plane, float(rng.uniform(1.15, 1.5)), float(rng.uniform(0.6, 1.3)) * float(rng.choice([-1, 1])),
                    float(rng.uniform(0, 8)), float(rng.uniform(6, 12))))
    return tuple(out)


# --- The scene ------------------------------------------------------------------------------------
class Scene:
    """Posed objects per tick for one ``SimConfig``."""

    def __init__(self, cfg: SimConfig):
        self.cfg = cfg
        self.identity = resolve_identity(cfg)
        self._motion = Motion(np.random.default_rng(cfg.seed + 1))
        # Whose blinks the scene shows: the person's (also the face a video replays), or the eyes of
        # whoever wears or holds the instrument (their own blink rate and duration in the seventh family).
        blinker = self.identity if cfg.subject in ("live", "multi", "none", "screen_video") \
            else species.wearer_of(self.identity)
        self._blinks = blink_schedule(cfg.seed + 2, blinker.blink_per_min)
        self._blink_s = blinker.blink_s
        self._scene_rng_seed = family_salt(cfg.family) + cfg.seed
        # Direct sun: the session's shadow edge (sun.py), from its own stream (nothing else drawn changes).
        self.sun_edge: SunEdge | Blinds | None = \
            SunEdge.draw(np.random.default_rng([self._scene_rng_seed, 97]), cfg.distance_mm / 1000.0) \
            if light_for(cfg.family, cfg.identity, cfg.light) == "direct_sun" else None
        if light_for(cfg.family, cfg.identity, cfg.light) == "blinds":
            # The fourteenth family's low sun through venetian blinds (sun.Blinds), from its own stream.
            self.sun_edge = Blinds.draw(np.random.default_rng([self._scene_rng_seed, 109]), cfg.distance_mm / 1000.0)
        # The ninth family's lights (night.py), each from its own stream (nothing else drawn changes).
        light = light_for(cfg.family, cfg.identity, cfg.light)
        self.ir_flood = IrFlood.draw(np.random.default_rng([self._scene_rng_seed, 98]), cfg.distance_mm / 1000.0) \
            if light == "cctv_ir" else None
        self.flicker: Flicker | PwmLight | FailingTube | Fade | None = \
            Flicker.draw(np.random.default_rng([self._scene_rng_seed, 99])) if light == "flicker_led" else None
        if light == "pwm_led":
            # The thirteenth family's PWM-dimmed LED panels (pwm.py), from their own stream.
            self.flicker = PwmLight.draw(np.random.default_rng([self._scene_rng_seed, 107]))
        # The fifteenth family's lights (fan.py), each from its own stream (nothing else drawn changes).
        self.fan = CeilingFan.draw(np.random.default_rng([self._scene_rng_seed, 111]), cfg.distance_mm / 1000.0) \
            if light == "ceiling_fan" else None
        if light == "sodium":
            self.flicker = sodium_flicker(np.random.default_rng([self._scene_rng_seed, 113]))
        # The sixteenth family's lights (beacon.py), each from its own stream (nothing else drawn changes).
        if light == "failing_tube":
            self.flicker = FailingTube.draw(np.random.default_rng([self._scene_rng_seed, 115]))
        self.beacon = Beacon.draw(np.random.default_rng([self._scene_rng_seed, 117])) if light == "beacon" else None
        # The seventeenth family's lights (vestibule.py), each from its own stream (nothing else drawn changes).
        if light == "occupancy_fade":
            self.flicker = Fade.draw(np.random.default_rng([self._scene_rng_seed, 119]))
        self.lightbar = LightBar.draw(np.random.default_rng([self._scene_rng_seed, 121])) \
            if light == "lightbar" else None
        # The eighteenth family's lights (holiday.py), each from its own stream (nothing else drawn changes).
        self.strings = StringLights.draw(np.random.default_rng([self._scene_rng_seed, 123])) \
            if light == "string_lights" else None
        self.tof = TofCounter.draw(np.random.default_rng([self._scene_rng_seed, 125]), cfg.distance_mm / 1000.0) \
            if light == "tof_counter" else None
        # The nineteenth family's lights (entrance.py), each from its own stream (nothing else drawn changes).
        self.phone = PhoneScreen.draw(np.random.default_rng([self._scene_rng_seed, 127]), cfg.distance_mm / 1000.0) \
            if light == "phone_screen" else None
        self.door = AutoDoor.draw(np.random.default_rng([self._scene_rng_seed, 129])) if light == "auto_door" else None
        # The twentieth family's lights (radiant.py), each from its own stream (nothing else drawn changes).
        self.heater = QuartzHeater.draw(np.random.default_rng([self._scene_rng_seed, 131])) \
            if light == "quartz_heater" else None
        self.glint = WindscreenGlint.draw(np.random.default_rng([self._scene_rng_seed, 133])) \
            if light == "windscreen_glint" else None
        # The twenty-first family's lights (bystander.py), each from its own stream (nothing else drawn changes).
        self.bounce = FloorBounce.draw(np.random.default_rng([self._scene_rng_seed, 137])) \
            if light == "floor_bounce" else None
        self.torch = PhoneTorch.draw(np.random.default_rng([self._scene_rng_seed, 139])) \
            if light == "phone_torch" else None
        # The twenty-second family's lights (atrium.py), each from its own stream (nothing else drawn changes).
        self.gobo = GoboSpot.draw(np.random.default_rng([self._scene_rng_seed, 149])) if light == "gobo" else None
        self.lightning = Lightning.draw(np.random.default_rng([self._scene_rng_seed, 151])) \
            if light == "lightning" else None
        # The twenty-third family's lights (reflected.py), each from its own stream (nothing else drawn changes).
        self.caustics = Caustics.draw(np.random.default_rng([self._scene_rng_seed, 157])) \
            if light == "caustics" else None
        self.mirrorball = MirrorBall.draw(np.random.default_rng([self._scene_rng_seed, 163])) \
            if light == "mirrorball" else None
        # The tenth family's lights (street.py), each from its own stream (nothing else drawn changes).
        self.backlight = Backlight.draw(np.random.default_rng([self._scene_rng_seed, 101])) \
            if light == "backlight" else None
        self.shadows = PassingShadows.draw(np.random.default_rng([self._scene_rng_seed, 102]),
                                           cfg.distance_mm / 1000.0) if light == "passing_shade" else None
        # The eleventh family's lights (lobby.py), each from its own stream (nothing else drawn changes).
        self.signage = Signage.draw(np.random.default_rng([self._scene_rng_seed, 103])) \
            if light == "signage" else None
        # In shade (``shade=1``) no gap above passes the sun: no flecks (the canopy's light, ``lux``, kept).
        self.dapple = DappledSun.draw(np.random.default_rng([self._scene_rng_seed, 104])) \
            if light == "dappled_sun" and not cfg.shade else None
        # The twelfth family's lights (keylight.py), each from its own stream (nothing else drawn changes).
        self.ring = RingLight.draw(np.random.default_rng([self._scene_rng_seed, 105])) \
            if light == "ring_light" else None
        self.headlights = Headlights.draw(np.random.default_rng([self._scene_rng_seed, 106])) \
            if light == "headlights" else None
        rng = np.random.default_rng([self._scene_rng_seed, 91])
        side = float(rng.choice([-1.0, 1.0]))
        self._bystander = (Identity.draw(cfg.identity + 53, cfg.family),
                           # Beside and behind the subject, clear of their head (queueing, or looking on).
                           np.array([side * rng.uniform(0.32, 0.48), rng.uniform(-0.04, 0.04), rng.uniform(0.35, 0.8)]),
                           -side * float(rng.uniform(2, 8)))      # turned a little toward the kiosk
        if cfg.bystander_x_mm is not None or cfg.bystander_z_mm is not None:
            # Placed (the multi-face rule's tests: a person partly behind the subject's head).
            b_ident, offset, b_yaw = self._bystander
            x = offset[0] if cfg.bystander_x_mm is None else cfg.bystander_x_mm / 1000.0
            z = offset[2] if cfg.bystander_z_mm is None else cfg.bystander_z_mm / 1000.0
            self._bystander = (b_ident, np.array([x, offset[1], z]), -float(np.sign(x) or 1.0) * abs(b_yaw))
        self._hand = Motion(np.random.default_rng(cfg.seed + 5))
        self._instance = cfg.identity
        # An attack display's own luminance and sway (species.screen_instrument: drawn per instrument in
        # the thirteenth family; 260 lux-eq hand-held at 0.8 in every other).
        self.panel_lux, self._screen_sway = species.screen_instrument(self.identity, cfg.subject, self._instance) \
            if cfg.subject in ("screen_still", "screen_video") else (species.SCREEN_LUMINANCE_LUX, None)
        # Whose breathing moves the subject: the person, or whoever holds or wears the instrument.
        breather = self.identity if cfg.subject in ("live", "multi", "none") else species.wearer_of(self.identity)
        self._breath = (2 * np.pi * breather.breath_hz, breather.breath_phase)

    def eyes_closed(self, t: float) -> float:
        return eyes_closed_at(self._blinks, t, self._blink_s)

    def pose(self, t: float, *, rigid_static: bool, amplitude: float = 1.0,
             hand: bool = False) -> tuple[np.ndarray, np.ndarray, tuple]:
        c = self.cfg
        m = self._motion
        if rigid_static:
            dyaw = dpitch = droll = dx = dy = dz = 0.0
        elif hand:
            # A head model held in a hand: no breathing, slow drift of the arm and physiological
            # tremor (8-12 Hz, a few tenths of a millimetre).
            h = self._hand
            tremor = np.sin(2 * np.pi * np.array([9.1, 10.3, 8.7]) * t + np.array([0.3, 1.9, 4.1]))
            dyaw, dpitch, droll = 1.5 * h.value(t, 0), 1.2 * h.value(t, 1), 1.0 * h.value(t, 2)
            dyaw, dpitch, droll = dyaw + 0.15 * tremor[0], dpitch + 0.15 * tremor[1], droll + 0.1 * tremor[2]
            dx = 0.004 * h.value(t, 3) + 0.0003 * tremor[0]
            dy = 0.004 * h.value(t, 4) + 0.0003 * tremor[1]
            dz = 0.005 * h.value(t, 5) + 0.0003 * tremor[2]
        else:
            dyaw, dpitch, droll = 0.6 * m.value(t, 0), 0.5 * m.value(t, 1), 0.3 * m.value(t, 2)
            dx = 0.0012 * m.value(t, 3)
            # Breathing: 15 breaths/min in phase for everyone, except in the families that draw a rate
            # and phase per person (identity.PER_PERSON_FAMILIES; the same arithmetic for the others).
            omega, phase = self._breath
            dy = 0.0015 * np.sin(omega * t + phase) + 0.0006 * m.value(t, 4)
            dz = 0.0010 * np.sin(omega * t + (phase + 1.0)) + 0.0015 * m.value(t, 5)
            dyaw, dpitch, droll, dx, dy, dz = (v * amplitude for v in (dyaw, dpitch, droll, dx, dy, dz))
        yaw, pitch, roll = c.yaw + dyaw, c.pitch + dpitch, c.roll + droll
        seat = self.identity.seated
        if seat is not None:
            # The twenty-third family's seated users (identity.SEATED_*): the head tilted back (negative pitch),
            # held inside the envelope, and the face lower (+y). Drawn per person, so an attack presented for a
            # seated person's index comes as low and tilted back: being seated is no cue of life.
            pitch = max(c.pitch - seat[0], ENVELOPE["pitch"][0]) + dpitch
            dy = dy + seat[1] / 1000.0
        # The face looks along -z. Positive yaw turns it toward the camera's right (+x), positive
        # pitch drops the chin (the face looks toward +y, down in the image), positive roll tilts it
        # clockwise in the image.
        # The portrait's subject looks ~9.5° down and tilts ~3° (FaceMesh reads that on the photo
        # itself), so the head geometry compensates: the URI pose is the pose a face model perceives.
        posed = c.subject in _PHOTO_POSED
        geo_pitch = pitch - PHOTO_PITCH_DEG if posed else pitch
        geo_roll = roll - PHOTO_ROLL_DEG if posed else roll
        R = rotation(np.deg2rad(geo_pitch), np.deg2rad(-yaw), np.deg2rad(geo_roll))
        T = np.array([dx, dy, c.distance_mm / 1000.0 + dz])
        return R, T, (yaw, pitch, roll)

    # --- Pieces ----------------------------------------------------------------------------------
    def _blinking(self, surf: Surface, ec: float) -> np.ndarray:
        if ec <= 0 or surf.albedo_closed is None or surf.eye_weight is None:
            return surf.albedo
        return (surf.albedo + (surf.albedo_closed - surf.albedo) * (ec * surf.eye_weight)[..., None]).astype(np.float32)

    def _person(self, ident: Identity, R, T, oid: int, t: float, t_shift: float = 0.0,
                surf: Surface | None = None, face_front: bool = True) -> tuple[list[Placed], float]:
        """A head (or a worn instrument on one) and its torso. ``T`` puts the face front at its z."""
        surf = surf or head.live_head(ident)
        T_head = T + np.array([0.0, 0.0, surf.front_height if face_front else 0.0])
        ec = self.eyes_closed(t + t_shift)
        jaw = 0.0007 * (1 + np.sin(2 * np.pi * 0.7 * (t + t_shift) + 0.3))    # small non-rigid jaw/lip motion
        self._torso(ident, R, T_head, oid)
        # The thirteenth family's narrower eyes rest part-way to the closed lid (identity.lid_rest); the
        # truth's ``eyes_closed`` stays the blink's (a narrow eye is open).
        rest = ident.lid_rest
        shown = ec if rest == 0.0 else rest + (1.0 - rest) * ec
        eyes: tuple = ()
        if self.cfg.cornea_on:
            shape = {} if ident.cornea_radius_mm is None or ident.cornea_diameter_mm is None else \
                {"radius_m": ident.cornea_radius_mm / 1000.0, "limbus_m": ident.cornea_diameter_mm / 2000.0}
            eyes = cornea.eyes_for(head.head_layers(ident), surf.eye_weight, surf.x0, surf.y0, surf.res, ident.glasses,
                                   **shape)
        return [Placed(surf, R, T_head, self._blinking(surf, shown), oid, jaw_m=float(jaw), eyes=eyes,
                       eyes_closed=shown)], ec

    def _torso(self, ident: Identity, R_head, T_head, oid: int, bent: bool = True) -> None:
        """Add a torso under a head posed at (R_head, T_head) to this tick's planes."""
        if not self.cfg.torso:
            return
        tor = body.torso(ident, bent)
        # The torso follows the head's translation and a fifth of its turn (the neck takes the rest).
        yaw = np.arctan2(R_head[0, 2], R_head[2, 2])
        R_t = rotation(0.0, 0.2 * yaw, 0.0)
        self._tick_planes.append(PlacedPlane(tor, R_t, T_head + R_t @ np.array([0.0, 0.0, -body.CHEST_FRONT_M]), oid))

    @property
    def scene_seed(self) -> int:
        return self._scene_rng_seed

    def objects(self, t: float) -> tuple[list[Placed], list[PlacedPlane], list[PlacedPlane], Posed]:
        """(posed objects, static background planes, moving background planes, the subject's state)."""
        c = self.cfg
        s = c.subject
        ident = self.identity
        closed = 0.0
        objs: list[Placed] = []
        self._tick_planes: list[PlacedPlane] = []
        if s in ("live", "multi"):
            R, T, _ = self.pose(t, rigid_static=False)
            placed, closed = self._person(ident, R, T, 0, t)
            objs += placed
            if s == "multi":
                R2 = rotation(0.0, np.deg2rad(8.0), 0.0)
                objs += self._person(Identity.draw(c.identity + 1, c.family), R2, T + np.array([0.21, 0.02, 0.25]),
                                     1, t, t_shift=1.7)[0]
        elif s in ("print", "print_curved", "print_cutout"):
            shape = {"print": "flat", "print_curved": "curved", "print_cutout": "cutout"}[s]
            R, T, _ = self.pose(t, rigid_static=False, amplitude=1.6)     # hand-held sway
            self._tick_planes.append(PlacedPlane(species.printed_photo(ident, shape), R, T, 0))
            Rb, Tb, _ = self.pose(t + 0.37, rigid_static=False)
            holder = species.wearer_of(ident)
            if s == "print_cutout":
                # The attacker's own face, 2 cm behind the paper, shows through the holes.
                objs += self._person(holder, Rb, Tb + np.array([0, 0, 0.020]), 1, t)[0]
                closed = self.eyes_closed(t)
            else:
                # Whoever holds the print stands behind it: their head is hidden, their body is not.
                self._torso(holder, Rb, Tb + np.array([0, 0, 0.35 + 0.11]), 1, bent=False)
        elif s in ("screen_still", "screen_video"):
            sway = self._screen_sway
            R, T, _ = self.pose(t, rigid_static=sway is None, amplitude=sway if sway is not None else 1.0)
            scr = species.screen(ident)
            albedo = None
            if s == "screen_video":
                closed = self.eyes_closed(t)
                if closed > 0 and scr.albedo_closed is not None and scr.eye_weight is not None:
                    albedo = (scr.albedo + (scr.albedo_closed - scr.albedo) * (closed * scr.eye_weight)[..., None]
                              ).astype(np.float32)
            self._tick_planes.append(PlacedPlane(scr, R, T, 0, albedo))
            Rb, Tb, _ = self.pose(t + 0.37, rigid_static=False)
            self._torso(species.wearer_of(ident), Rb, Tb + np.array([0, 0, 0.35 + 0.11]), 1, bent=False)
        elif s == "mask":
            R, T, _ = self.pose(t, rigid_static=False)
            surf = species.worn_rigid_mask(ident, self._instance)
            objs += self._person(species.wearer_of(ident), R, T, 0, t, surf=surf, face_front=True)[0]
        elif s in ("head_model", "head_model_hand"):
            hand = s == "head_model_hand"
            R, T, _ = self.pose(t, rigid_static=not hand, hand=hand)
            base = species.head_model_nir(ident, self._instance) if hand else None
            surf = species.rigid_head(ident, "head_model", base)
            objs.append(Placed(surf, R, T + np.array([0.0, 0.0, surf.max_height]), surf.albedo, 0))
        elif s in species.WORN:
            R, T, _ = self.pose(t, rigid_static=False)
            surf = species.NEW_WORN[s](ident, self._instance)
            placed, ec = self._person(species.wearer_of(ident), R, T, 0, t, surf=surf)
            objs += placed
            # Eyes are "closed" in the ground truth only where a real eye can be seen closing.
            closed = ec if surf.eye_weight is not None and float(surf.eye_weight.max()) > 0.5 else 0.0
        if c.bystander and s != "none":
            b_ident, offset, b_yaw = self._bystander
            Rb = rotation(0.0, np.deg2rad(b_yaw), 0.0)
            _, T0, _ = self.pose(t + 2.3, rigid_static=False)
            if ident.seated is not None:
                T0 = T0 - np.array([0.0, ident.seated[1] / 1000.0, 0.0])     # the bystander stands
            objs += self._person(b_ident, Rb, T0 + offset, 2, t, t_shift=3.1)[0]
        static, moving = self._background(t)
        moving = moving + self._tick_planes
        still = s == "head_model" or (s in ("screen_still", "screen_video") and self._screen_sway is None)
        _, _, (yaw, pitch, roll) = self.pose(t, rigid_static=still, hand=s == "head_model_hand")
        dist = c.distance_mm / 1000.0 if s != "none" else float("nan")
        return objs, static, moving, Posed(s, dist, yaw, pitch, roll, closed)

    def _background(self, t: float) -> tuple[list[PlacedPlane], list[PlacedPlane]]:
        bg = self.cfg.background
        if bg == "plain":
            return [], []
        static = [PlacedPlane(p, R, T, -1) for p, R, T in clutter_planes(self._scene_rng_seed)]
        out: list[PlacedPlane] = []
        if bg == "moving":
            for p, z, v, phase, period in walkers(self._scene_rng_seed):
                # Each walker crosses the field of view once per period and is off-screen otherwise.
                span = 2.2 * z
                x = -np.sign(v) * span / 2 + v * ((t + phase) % period)
                bob = 0.015 * np.sin(2 * np.pi * 1.8 * (t + phase))
                out.append(PlacedPlane(p, np.eye(3), np.array([x, -0.12 + bob, z]), -1))
        return static, out

