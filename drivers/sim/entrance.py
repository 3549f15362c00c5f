"""The nineteenth family's two lights: the customer's own phone under the chin, and the vestibule's door.

``PhoneScreen`` ("phone_screen"): a branch's vestibule lit by LED downlights (30-300 lux on the face,
3000-4500 K, 0.002 of 850 nm per lux as "led") where the customer holds their own phone below the face,
reading a one-time code from it. The screen is a small Lambertian source (``SCREEN_AREA_M2``, a 6.1-6.7 inch
phone's 85-105 cm^2, recalled) of luminance L: its illuminance at a point r away is L x A x cos / r^2
(the screen's own obliquity taken as 1: it is turned to the eyes), so a white page at 200-800 cd/m^2 (an
auto-brightness range indoors, recalled) 0.20-0.35 m from the chin lights it with ~15-200 lux, from below
(the first light in any family from under the face: the chin's, the nostrils' and the brows' undersides
lit, the lids' creases lit from below). Its position is drawn 0.18-0.32 m below the chin, 0.08-0.20 m
towards the kiosk and up to 0.08 m to one side; each pixel's distance and cosine to it come from the
rendered depth (no cast shadows: the simulator's lights cast none, sensor.color_irradiance). A phone's
screen emits nothing at 850 nm (an LCD's white-LED backlight or an OLED's emitters: lobby.py's argument),
so the IR image does not see it; the colour image does. The session's page is white (70 %) or dark mode
(``DARK_LEVEL``, 0.06-0.15 of the white page's mean luminance: light text on black; an assumption), its
colour the D65 white point (6500 K) or a night-time warm shift (30 %, 3400-4500 K); scrolling changes the
page's mean luminance (``SCROLL_LEVEL``, 0.6-1.15 of it, every 0.8-3 s, each change over 0.15-0.5 s: a
flick); auto-brightness moves the whole screen once, 0.75-1.3 x over 1-4 s from 0.5-5 s into the scene
(phones adapt over seconds, recalled); and 60 % of customers lower the phone 0.5-6 s into the scene (the
light gone over 0.3-1.0 s as the screen turns away and locks), half of those raising it again 1-4 s later
to check the code (back over 0.3-1.0 s).

``AutoDoor`` ("auto_door"): a branch's lobby (LED downlights, 100-500 lux, 3000-4000 K, 0.002) whose
automatic sliding door, 1.5-4 m behind and beside the kiosk's customer, opens as people come and go.
While it is closed the daylight outside reaches the face only as the room's own light (``lux``); when
it opens, daylight through the opening adds ``DOOR_LUX`` (300-3000 lux at normal incidence on surfaces
facing the opening: an overcast or shaded street's vertical illuminance of some thousands of lux,
reduced by the vestibule's depth; an estimate, recalled), 5000-7500 K, with daylight's 850 nm (0.09 per
lux, ``scene.LIGHT_NIR_SHARE["daylight"]``: unglazed, where a coated door's glass had cut it): a level,
colour-temperature and near-infrared step on the face's side and the background towards the door, plus
a diffuse share (0.05-0.15 of it, off the vestibule's floor and walls) on everything. The opening comes
from behind and to one side (100-160° off the camera's axis, 0-20° up). Each cycle: the door opens in
0.5-2 s (a sliding door's leaves at 0.5-1 m/s, recalled), stays open 1.5-6 s (the sensor's hold-open
time after the last person, EN 16005's minimum 1.5 s recalled, not read) and closes in 1-3 s, then stays
closed; the cycles repeat every 8-30 s (people arriving) from a drawn phase, so a session sees the door
opening, open, closing or closed. The light follows the opening's width (linear in time during the
ramps: the sliding leaves' uncovered area). The colour and IR frames each take the level at their own
time (the ramps last 0.5-3 s, much longer than an exposure).

Both cost one surface-normal map per frame (lobby.surface_normals) and, for the phone, a distance map, on
every 2nd (640 wide) or 4th (1280 wide) pixel, scaled back up (as keylight.Headlights).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .lobby import side_direction, surface_normals
from .optics import View
from .render import ViewMaps
from .sensor import illuminant_bgr

# --- The phone ----------------------------------------------------------------------------------------
SCREEN_NITS = (200.0, 800.0)       # a white page's luminance, cd/m^2, log-uniform
SCREEN_AREA_M2 = (0.0085, 0.0105)
PHONE_BELOW_M = (0.18, 0.32)       # below the chin
PHONE_FORWARD_M = (0.08, 0.20)     # towards the kiosk, from the face's front
PHONE_SIDE_M = 0.08                # either side, at most
DARK_MODE_SHARE = 0.30
DARK_LEVEL = (0.06, 0.15)
WARM_SHARE = 0.30
WARM_CCT = (3400.0, 4500.0)
WHITE_CCT = 6500.0
SCROLL_LEVEL = (0.6, 1.15)
SCROLL_S = (0.8, 3.0)
FLICK_S = (0.15, 0.5)
N_PAGES = 12
AUTO_LEVEL = (0.75, 1.3)
AUTO_START_S = (0.5, 5.0)
AUTO_RAMP_S = (1.0, 4.0)
LOWER_SHARE = 0.60
LOWER_AT_S = (0.5, 6.0)
LOWER_S = (0.3, 1.0)
RAISE_SHARE = 0.50                 # of those who lower it
RAISE_AFTER_S = (1.0, 4.0)
CHIN_BELOW_NOSE_M = 0.07           # the chin below the nose tip, a typical adult's (the portrait's ~0.07 m)

# --- The door -----------------------------------------------------------------------------------------
DOOR_LUX = (300.0, 3000.0)         # at normal incidence, the door fully open; log-uniform
DOOR_CCT = (5000.0, 7500.0)
DAYLIGHT_NIR_SHARE = 0.09          # scene.LIGHT_NIR_SHARE["daylight"]
DIFFUSE = (0.05, 0.15)
DOOR_AZIMUTH_DEG = (100.0, 160.0)  # off the camera's axis, either side: behind and beside the customer
DOOR_ELEVATION_DEG = (0.0, 20.0)
OPEN_S = (0.5, 2.0)
HOLD_S = (1.5, 6.0)
CLOSE_S = (1.0, 3.0)
CYCLE_S = (8.0, 30.0)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _stride(z: np.ndarray) -> int:
    """The geometry varies slowly over the image: normals, distances and cosines on every ``stride``-th
    pixel (2 at 640 wide, 4 at 1280), scaled back up (as keylight.Headlights and night.py's flood)."""
    return max(2, z.shape[1] // 320)


def _add_light(irr: np.ndarray, maps: ViewMaps, e: np.ndarray, bgr: np.ndarray) -> np.ndarray:
    """``irr`` plus a light of ``e`` (H, W) lux in colour ``bgr`` (3,) on ``maps``' surfaces (x their albedo;
    a display's own light is kept as it is, as lobby.Signage)."""
    g = cv2.merge([e * np.float32(c) for c in bgr])
    if maps.emissive.any():
        np.copyto(g, np.float32(0.0), where=maps.emissive[..., None])
    cv2.multiply(g, maps.albedo, dst=g)
    return cv2.add(g, irr.astype(np.float32, copy=False), dst=g)


def _up(a: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``a`` (computed on every ``_stride``-th pixel) at ``z``'s size, 0 where nothing is rendered."""
    h, w = z.shape
    up = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(np.isfinite(z), up, np.float32(0.0)).astype(np.float32)


@dataclass(frozen=True)
class PhoneScreen:
    """The customer's phone below the chin (module docstring): ``position`` in the depth camera's frame."""

    position: tuple[float, float, float]
    peak_lux_m2: float                  # L x A of a white page at full brightness (lux x m^2: / r^2 gives lux)
    bgr: tuple[float, float, float]     # the screen's colour, linear B, G, R (G = 1, as sensor.illuminant_bgr)
    dark_mode: float                    # the page's mean luminance over a white page's (1.0: white mode)
    pages: tuple[float, ...]            # each scrolled page's mean luminance over the session's page
    page_s: tuple[float, ...]
    flick_s: tuple[float, ...]
    page_phase_s: float
    auto: tuple[float, float, float]    # auto-brightness: its start, its ramp, the level it goes to
    held: tuple[tuple[float, float], ...]   # (time, 0..1) breakpoints: the phone held up (1) or lowered (0)

    @classmethod
    def draw(cls, rng: np.random.Generator, distance_m: float) -> PhoneScreen:
        below, forward = float(rng.uniform(*PHONE_BELOW_M)), float(rng.uniform(*PHONE_FORWARD_M))
        side = float(rng.uniform(-PHONE_SIDE_M, PHONE_SIDE_M))
        # x right, y down, z away from the camera; the nose tip at (0, 0, distance).
        position = (side, CHIN_BELOW_NOSE_M + below, distance_m - forward)
        la = _log_uniform(rng, *SCREEN_NITS) * float(rng.uniform(*SCREEN_AREA_M2))
        dark = float(rng.uniform(*DARK_LEVEL)) if rng.random() < DARK_MODE_SHARE else 1.0
        cct = float(rng.uniform(*WARM_CCT)) if rng.random() < WARM_SHARE else WHITE_CCT
        c = illuminant_bgr(cct)
        pages = tuple(float(v) for v in rng.uniform(*SCROLL_LEVEL, N_PAGES))
        page_s = tuple(float(v) for v in rng.uniform(*SCROLL_S, N_PAGES))
        flick_s = tuple(float(v) for v in rng.uniform(*FLICK_S, N_PAGES))
        phase = float(rng.uniform(0.0, sum(page_s)))
        auto = (float(rng.uniform(*AUTO_START_S)), float(rng.uniform(*AUTO_RAMP_S)), float(rng.uniform(*AUTO_LEVEL)))
        held: list[tuple[float, float]] = [(0.0, 1.0)]
        lower, lower_s = float(rng.uniform(*LOWER_AT_S)), float(rng.uniform(*LOWER_S))
        again, after, raise_s = rng.random(), float(rng.uniform(*RAISE_AFTER_S)), float(rng.uniform(*LOWER_S))
        if rng.random() < LOWER_SHARE:
            held += [(lower, 1.0), (lower + lower_s, 0.0)]
            if again < RAISE_SHARE:
                up = lower + lower_s + after
                held += [(up, 0.0), (up + raise_s, 1.0)]
        return cls(position, la, (float(c[0]), float(c[1]), float(c[2])), dark, pages, page_s, flick_s, phase,
                   auto, tuple(held))

    def level(self, t: float) -> float:
        """The screen's mean luminance at scene time ``t`` over a white page's at the drawn brightness, times
        whether it is held up (0 once lowered)."""
        times, values = zip(*self.held, strict=True)
        held = float(np.interp(t, times, values))
        if held <= 0.0:
            return 0.0
        start, ramp, to = self.auto
        auto = float(np.interp(t, (start, start + ramp), (1.0, to)))
        # The page on screen: each page's level after a flick from the previous one's.
        tau = (t + self.page_phase_s) % sum(self.page_s)
        i = 0
        while i < len(self.page_s) - 1 and tau >= self.page_s[i]:
            tau -= self.page_s[i]
            i += 1
        w = min(tau / self.flick_s[i], 1.0)
        page = (1.0 - w) * self.pages[i - 1] + w * self.pages[i]
        return held * auto * self.dark_mode * page

    def irradiance(self, view: View, z: np.ndarray, t: float) -> np.ndarray:
        """(H, W) float32: the screen's illuminance on each pixel's surface at time ``t`` (lux), 0 where
        nothing is rendered or the surface faces away."""
        level = self.level(t)
        if level <= 0.0:
            return np.zeros(z.shape, np.float32)
        src = (view.depth_to_view.R @ np.asarray(self.position) + view.depth_to_view.t).astype(np.float32)
        k = _stride(z)
        zs = np.ascontiguousarray(z[::k, ::k])
        rays = view.rays[::k, ::k]
        zf = np.where(np.isfinite(zs), zs, 0.0).astype(np.float32)
        d = np.stack([src[0] - rays[..., 0] * zf, src[1] - rays[..., 1] * zf, src[2] - zf], axis=-1)
        r2 = np.maximum((d * d).sum(axis=-1), np.float32(1e-4))
        cos = (surface_normals(view, zs, k) * d).sum(axis=-1) / np.sqrt(r2)
        return _up((np.clip(cos, 0.0, 1.0) * np.float32(self.peak_lux_m2 * level) / r2).astype(np.float32), z)

    def color(self, irr: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The colour irradiance with the screen's light (a display's own light is kept as it is)."""
        if self.level(t) <= 0.0:
            return irr
        return _add_light(irr, maps, self.irradiance(view, maps.z, t), np.asarray(self.bgr, np.float32))


@dataclass(frozen=True)
class AutoDoor:
    """The vestibule's automatic door behind and beside the customer (module docstring)."""

    direction: tuple[float, float, float]   # from the face to the opening, depth camera's frame
    lux: float                              # at normal incidence, fully open
    cct: float
    diffuse: float
    ramps: tuple[float, float, float]       # opening, open, closing (s)
    cycle_s: float
    phase_s: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> AutoDoor:
        d = side_direction(rng, DOOR_AZIMUTH_DEG, DOOR_ELEVATION_DEG)
        ramps = (float(rng.uniform(*OPEN_S)), float(rng.uniform(*HOLD_S)), float(rng.uniform(*CLOSE_S)))
        cycle = max(float(rng.uniform(*CYCLE_S)), sum(ramps) + 1.0)
        return cls(d, _log_uniform(rng, *DOOR_LUX),
                   float(rng.uniform(*DOOR_CCT)), float(rng.uniform(*DIFFUSE)), ramps, cycle,
                   float(rng.uniform(0.0, cycle)))

    def opening(self, t: float) -> float:
        """0 (closed) .. 1 (fully open) at scene time ``t``."""
        up, hold, down = self.ramps
        tau = (t + self.phase_s) % self.cycle_s
        return float(np.interp(tau, (0.0, up, up + hold, up + hold + down), (0.0, 1.0, 1.0, 0.0)))

    def share(self, view: View, z: np.ndarray, t: float) -> np.ndarray | None:
        """(H, W) float32: the door's light on each pixel's surface over ``lux`` at time ``t`` (its cosine
        to the opening plus the diffuse share, x the opening); None while it is closed."""
        o = self.opening(t)
        if o <= 0.0:
            return None
        d = (view.depth_to_view.R @ np.asarray(self.direction)).astype(np.float32)
        k = _stride(z)
        cos = np.clip(surface_normals(view, np.ascontiguousarray(z[::k, ::k]), k) @ d, 0.0, 1.0)
        return _up((np.float32(o) * (cos + np.float32(self.diffuse))).astype(np.float32), z)

    def color(self, irr: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The colour irradiance with the daylight through the door (a display's own light kept)."""
        s = self.share(view, maps.z, t)
        if s is None:
            return irr
        return _add_light(irr, maps, s, (self.lux * illuminant_bgr(self.cct)).astype(np.float32))

    def ir(self, signal: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The IR light with the daylight's 850 nm through the door."""
        s = self.share(view, maps.z, t)
        if s is None:
            return signal
        return (signal + s * np.float32(self.lux * DAYLIGHT_NIR_SHARE) * maps.nir
                * (1.0 - maps.specular)).astype(np.float32)
