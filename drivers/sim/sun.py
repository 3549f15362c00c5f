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

from dataclasses import dataclass

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
