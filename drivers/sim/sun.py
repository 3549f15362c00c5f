"""A hard shadow edge across a sunlit scene: the eighth family's half-sunlit faces.

Under direct sun at a wall ATM or a kiosk under a canopy, the edge of the canopy (or of the kiosk's
hood) casts a shadow whose boundary is a plane in space: the plane through the occluding edge that
contains the direction to the sun. On its sunlit side a surface gets all the light (direct beam, sky
and ground); on the other only the sky's and the ground's. The boundary is fixed in the world, so a
moving head moves through it, and the face's relief bends it (the nose's side, the brow).

The figures (the light on the face is ``scene.LIGHT_NIR_SHARE["direct_sun"]``'s mix, by luminance
65 % direct beam, 20 % sky, 15 % ground and planting): the shadowed side keeps 35 % of the lux; its
850 nm share is 0.127 per lux (the sky's 0.042, the pavement's and plants' light) against the whole
mix's 0.12, so it keeps 0.35 x 0.127 / 0.12 = 0.37 of the IR ambient (the arithmetic is in
tests/drivers/sim/test_eighth_family.py). The sun's disc (0.53°) blurs the edge over the occluder's
distance times 0.0093: 5-14 mm for a canopy or hood edge 0.5-1.5 m from the face.

Each session draws its own edge (``SunEdge.draw``, from the scene's own stream): a canopy's edge
(roughly horizontal, 60 %) or a hood's side (roughly vertical, 40 %), tilted up to 20°, the sun 25-60°
up and up to 50° to either side of the camera's axis, the boundary up to 50 mm (along its normal) either side of the
face's centre (so some faces are crossed by it, some wholly sunlit, some wholly in the shade), either
side shaded. Only the ambient light is shaded: the projector's dots and the kiosk screen's light are not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .optics import View
from .render import ViewMaps
from .sensor import illuminant_bgr

SHADE_LUX = 0.35            # the shadowed side's share of the lux (sky and ground, not the direct beam)
SHADE_NIR = 0.37            # its share of the 850 nm ambient (0.35 x 0.127 / 0.12)
EDGE_OFFSET_M = 0.05        # the boundary's distance from the face's centre (along its normal), drawn in +-this
PENUMBRA_M = (0.005, 0.014)  # the sun's 0.53° over an occluder 0.5-1.5 m away


@dataclass(frozen=True)
class SunEdge:
    """A shadow boundary in the depth-camera frame: ``normal . p - offset`` is the signed distance
    (metres) of a point p from the boundary plane, positive on the shaded side."""

    normal: tuple[float, float, float]
    offset: float
    penumbra_m: float

    @classmethod
    def draw(cls, rng: np.random.Generator, distance_m: float) -> SunEdge:
        canopy = bool(rng.random() < 0.6)
        tilt = np.deg2rad(rng.uniform(-20.0, 20.0))
        # The occluding edge's direction: along x (a canopy's front edge) or along y (a hood's side).
        edge = np.array([np.cos(tilt), np.sin(tilt), 0.0]) if canopy else np.array([np.sin(tilt), np.cos(tilt), 0.0])
        el, az = np.deg2rad(rng.uniform(25.0, 60.0)), np.deg2rad(rng.uniform(-50.0, 50.0))
        # From the face towards the sun: up (-y), toward the camera's side (-z), to one side (x).
        to_sun = np.array([np.sin(az) * np.cos(el), -np.sin(el), -np.cos(az) * np.cos(el)])
        n = np.cross(edge, to_sun)
        n /= np.linalg.norm(n)
        if rng.random() < 0.5:
            n = -n                                   # which side of the edge is in the shade
        centre = np.array([0.0, 0.0, distance_m])
        offset = float(n @ centre + rng.uniform(-EDGE_OFFSET_M, EDGE_OFFSET_M))
        return cls((float(n[0]), float(n[1]), float(n[2])), offset, float(rng.uniform(*PENUMBRA_M)))

    def sunlit(self, view: View, z: np.ndarray) -> np.ndarray:
        """(H, W) float32: how much of the sun's disc each pixel's surface sees (0 shaded .. 1 sunlit)."""
        R, T = view.depth_to_view.R, view.depth_to_view.t
        nv = R @ np.asarray(self.normal)            # the plane in the view's frame
        c = self.offset + float(nv @ T)
        rays = view.rays
        g = nv[0] * rays[..., 0] + nv[1] * rays[..., 1] + nv[2]
        zf = np.where(np.isfinite(z), z, 10.0)      # nothing: the far wall
        signed = zf * g - c                          # metres from the boundary, + in the shade
        return np.clip(0.5 - signed / self.penumbra_m, 0.0, 1.0).astype(np.float32)


def shade_ir(signal: np.ndarray, maps: ViewMaps, lux: float, share: float, sunlit: np.ndarray) -> np.ndarray:
    """Take the shadow's share of the ambient 850 nm light off ``signal`` (in place; the ambient as
    ``sensor.ir_signal`` computes it: lux x share x nir x (1 - specular) x (0.3 + 0.7 shade))."""
    ambient = lux * share * maps.nir * (1.0 - maps.specular) * (0.3 + 0.7 * maps.shade)
    signal -= ((1.0 - sunlit) * (1.0 - SHADE_NIR) * ambient).astype(np.float32)
    np.maximum(signal, 0.0, out=signal)
    return signal


def shade_color(irr: np.ndarray, maps: ViewMaps, lux: float, cct: float, sunlit: np.ndarray) -> np.ndarray:
    """Take the shadow's share of the ambient light off the colour irradiance (in place; the ambient
    as ``sensor.color_irradiance`` computes it; a display's own light and the screen's are kept)."""
    lost = (1.0 - sunlit) * (1.0 - SHADE_LUX) * (0.35 + 0.65 * maps.shade) * lux
    lost = np.where(maps.emissive, 0.0, lost)
    irr -= (lost[..., None] * illuminant_bgr(cct) * maps.albedo).astype(np.float32)
    np.maximum(irr, 0.0, out=irr)
    return irr


# The fourteenth family's light, "blinds": low sun through a window's venetian blinds. Horizontal slats
# (16-120 mm wide, 25 mm the common width: the blinds' trade descriptions, read as search excerpts in the
# twenty-fifth session) at a pitch of 0.85 of their width (recalled: 25 mm slats hang ~21 mm apart, so
# closed they overlap), tilted 0-40° from horizontal, cast a set of hard parallel stripes: each stripe's
# edges are planes through a slat's edge containing the direction to the sun, fixed in the world, so a
# head moving through them carries them over its face and the wall behind. With the sun's profile
# angle phi (its elevation seen in the plane across the slats) and the slats' tilt beta, a slat of width
# w hides w |sin(phi + beta)| of the beam's width s cos(phi) between two slat edges (flat slats of no
# thickness, the textbook geometry of a blind's cell):
#     open fraction f = max(0, 1 - w |sin(phi + beta)| / (s cos phi))
# and the stripes' period, measured along the planes' normal n, is s |n_y| (two slat edges s apart
# vertically). The sun's disc (0.53°) blurs each edge over the window's distance times 0.0093: a
# window 0.6-2.0 m from the face gives 6-19 mm, of the stripes' own width; the blur is exact (the
# periodic box convolved with the disc's box, ``stripe_sunlit``). Between the stripes the face keeps the
# room's diffuse light and what the slats reflect: 0.10-0.30 of the lux (an assumption; no source here
# measures it), at the beam's spectrum (the same share of the 850 nm ambient: the light the slats and
# the room return is the sun's). Low sun: 10-25° up (the hour when blinds stripe a lobby; lower, the
# beam is redder than the capture spec's 2300 K at hazy air: scene.LIGHT_NIR_SHARE), 0-60° to
# either side of the window's normal, the window facing the kiosk's camera within +-35° (the beam
# comes in from one side or behind the camera). The window is finite: its sill or one of its sides
# (half each) bounds the striped patch with the same kind of plane (through the frame's edge, holding
# the direction to the sun), placed up to 150 mm either side of the face's centre along its normal, so
# some faces are striped whole, most are crossed by the patch's edge and some stand outside it with
# the stripes on the wall and the body only (an assumption on where kiosks stand, as the eighth's edge).
BLIND_SLAT_MM = ((25.0, 0.7), (50.0, 0.3))     # slat width and its share
BLIND_PITCH = 0.85                             # slat pitch / slat width
BLIND_TILT_DEG = (0.0, 40.0)
BLIND_ELEVATION_DEG = (10.0, 25.0)
BLIND_AZIMUTH_DEG = 60.0                       # the sun's bearing off the window's normal, either side
BLIND_WINDOW_YAW_DEG = 35.0                    # the window's normal off the camera's axis, either side
BLIND_WINDOW_M = (0.6, 2.0)                    # the slats' distance from the face
BLIND_SHADE_LUX = (0.10, 0.30)
BLIND_MIN_OPEN = 0.2                           # a blind closed further passes too little sun to stripe
BLIND_FRAME_OFFSET_M = 0.15                    # the window frame's shadow edge from the face's centre
SUN_DISC_RAD = 0.0093                          # the sun's 0.53° disc


def open_fraction(w_m: float, s_m: float, beta_rad: float, phi_rad: float) -> float:
    """The share of the beam a blind of flat slats (width ``w_m``, pitch ``s_m``, tilt ``beta_rad``)
    passes at the sun's profile angle ``phi_rad`` (the closed form in the comment above)."""
    return float(max(0.0, 1.0 - w_m * abs(np.sin(phi_rad + beta_rad)) / (s_m * np.cos(phi_rad))))


def stripe_sunlit(d: np.ndarray, period: float, open_width: float, blur: float) -> np.ndarray:
    """How much of the sun's disc a point sees at signed distance ``d`` (metres, along the stripes'
    normal, 0 a stripe's centre): the periodic box of ``open_width`` in ``period`` averaged over a
    window of ``blur`` (exact for any blur: the difference of the box train's integral, in periods)."""
    f = np.float32(open_width / period)
    y = np.asarray(d, np.float32) * np.float32(1.0 / period) + np.float32(0.5 * f)
    half = np.float32(0.5 * blur / period)

    def integral(x: np.ndarray) -> np.ndarray:
        whole = np.floor(x)
        x -= whole                                   # the fraction of a period (in place)
        np.minimum(x, f, out=x)
        whole *= f
        whole += x
        return whole
    out = integral(y + half)
    out -= integral(y - half)
    out *= np.float32(period / blur)
    return out


@dataclass(frozen=True)
class Blinds:
    """Sun stripes through venetian blinds in the depth-camera frame (a ``SunEdge``'s interface:
    ``sunlit`` per pixel, ``shade_lux`` and ``shade_nir`` between the stripes)."""

    normal: tuple[float, float, float]       # the stripes' planes' unit normal
    phase: float                             # n . p of a stripe's centre
    period: float                            # metres along the normal
    open_width: float                        # metres of each period that the beam passes
    penumbra_m: float
    shade_lux: float
    shade_nir: float
    # The window frame's shadow edge: the striped patch is where frame_normal . p < frame_offset.
    frame_normal: tuple[float, float, float] = (0.0, 0.0, 1.0)
    frame_offset: float = float("inf")
    # Per view: the stripes' normal's component along each pixel's ray, and the phase in the view's
    # frame (the view object kept with them, so a key is never reused); fixed, so computed once.
    _rays: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def draw(cls, rng: np.random.Generator, distance_m: float) -> Blinds:
        widths, shares = zip(*BLIND_SLAT_MM, strict=True)
        w = float(rng.choice(widths, p=shares)) / 1000.0
        s = BLIND_PITCH * w
        yaw = np.deg2rad(rng.uniform(-BLIND_WINDOW_YAW_DEG, BLIND_WINDOW_YAW_DEG))
        el = np.deg2rad(rng.uniform(*BLIND_ELEVATION_DEG))
        az = np.deg2rad(rng.uniform(-BLIND_AZIMUTH_DEG, BLIND_AZIMUTH_DEG))
        # The slats run along the window (horizontal); the window's normal points from the glass into
        # the room, toward the camera's side (-z) turned by ``yaw``.
        edge = np.array([np.cos(yaw), 0.0, np.sin(yaw)])
        inward = np.array([np.sin(yaw), 0.0, -np.cos(yaw)])
        # From the face toward the sun: back out through the window (-inward), up (-y), to one side.
        to_sun = np.cos(el) * (np.cos(az) * -inward + np.sin(az) * edge) + np.sin(el) * np.array([0.0, -1.0, 0.0])
        phi = float(np.arctan2(np.sin(el), np.cos(el) * np.cos(az)))     # the profile angle
        f = 0.0
        beta = 0.0
        for _ in range(16):
            beta = float(np.deg2rad(rng.uniform(*BLIND_TILT_DEG)))
            f = open_fraction(w, s, beta, phi)
            if f >= BLIND_MIN_OPEN:
                break
        f = max(f, BLIND_MIN_OPEN)
        n = np.cross(edge, to_sun)
        n /= np.linalg.norm(n)
        period = s * abs(float(n[1]))
        phase = float(n @ np.array([0.0, 0.0, distance_m]) + rng.uniform(0.0, period))
        penumbra = float(rng.uniform(*BLIND_WINDOW_M)) * SUN_DISC_RAD
        shade = float(rng.uniform(*BLIND_SHADE_LUX))
        side = np.array([0.0, 1.0, 0.0]) if rng.random() < 0.5 else edge    # a side of the window, or its sill
        m = np.cross(side, to_sun)
        m /= np.linalg.norm(m)
        if rng.random() < 0.5:
            m = -m
        frame = float(m @ np.array([0.0, 0.0, distance_m]) + rng.uniform(-BLIND_FRAME_OFFSET_M, BLIND_FRAME_OFFSET_M))
        return cls((float(n[0]), float(n[1]), float(n[2])), phase, period, f * period, penumbra, shade, shade,
                   (float(m[0]), float(m[1]), float(m[2])), frame)

    def sunlit(self, view: View, z: np.ndarray) -> np.ndarray:
        """(H, W) float32: how much of the sun's disc each pixel's surface sees through the slats, inside
        the window frame's patch."""
        kept = self._rays.get(id(view))
        if kept is None or kept[0] is not view:
            R, T = view.depth_to_view.R, view.depth_to_view.t
            nv = R @ np.asarray(self.normal)
            rays = view.rays
            mv = R @ np.asarray(self.frame_normal)
            kept = (view, (nv[0] * rays[..., 0] + nv[1] * rays[..., 1] + nv[2]).astype(np.float32),
                    self.phase + float(nv @ T),
                    (mv[0] * rays[..., 0] + mv[1] * rays[..., 1] + mv[2]).astype(np.float32),
                    self.frame_offset + float(mv @ T))
            self._rays[id(view)] = kept
        _, g, c, gm, cm = kept
        zf = np.where(np.isfinite(z), z, np.float32(10.0))   # nothing: the far wall
        inside = zf * gm
        inside -= np.float32(cm)                              # metres past the frame's edge, + outside
        inside *= np.float32(-1.0 / self.penumbra_m)
        inside += np.float32(0.5)
        np.clip(inside, 0.0, 1.0, out=inside)
        zf *= g
        zf -= np.float32(c)
        lit = stripe_sunlit(zf, self.period, self.open_width, self.penumbra_m)
        lit *= inside
        return lit

    def ir(self, signal: np.ndarray, maps: ViewMaps, lux: float, share: float, sunlit: np.ndarray) -> np.ndarray:
        """``shade_ir`` between the stripes: the ambient 850 nm light less its (1 - ``shade_nir``) share
        where the beam does not reach (in place; float32 throughout)."""
        f32 = np.float32
        ambient = maps.shade * f32(0.7)
        ambient += f32(0.3)
        ambient *= f32(1.0) - maps.specular
        ambient *= maps.nir
        ambient *= f32(1.0) - sunlit
        ambient *= f32(lux * share * (1.0 - self.shade_nir))
        signal -= ambient
        np.maximum(signal, 0.0, out=signal)
        return signal

    def color(self, irr: np.ndarray, maps: ViewMaps, lux: float, cct: float, sunlit: np.ndarray) -> np.ndarray:
        """``shade_color`` between the stripes: the room's light less its (1 - ``shade_lux``) share where
        the beam does not reach (in place, float32; a display's own light and the screen's kept)."""
        f32 = np.float32
        lost = maps.shade * f32(0.65)
        lost += f32(0.35)
        lost *= f32(1.0) - sunlit
        lost *= f32(lux * (1.0 - self.shade_lux))
        lost[maps.emissive] = 0.0
        light = illuminant_bgr(cct)
        for ch in range(3):
            irr[..., ch] -= lost * maps.albedo[..., ch] * f32(light[ch])
        np.maximum(irr, 0.0, out=irr)
        return irr
