"""The kiosk screen as a light source: what its colour adds to the light on the subject.

The illumination challenge shows colours full-screen; the face reflects them into the colour camera.
The screen is a flat Lambertian panel below the camera, facing the user. Each patch ``dA`` of
luminance ``L`` (cd/m², "nits") lights a surface point at distance ``d`` with illuminance
``L * cos(a_screen) * cos(a_surface) / d**2 * dA`` (lux): inverse square and cosine at both ends.
Summed over the panel, this is ``n . V(P)`` with ``V`` a vector field that depends on the position
only, so one pass per patch gives the whole image. Surface normals come from the rendered depth.

Screens emit no near-infrared worth counting (LED backlights are phosphor-white), so this light
reaches the colour image only; the IR imager never sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..frame import Extrinsics
from .optics import View

# Camera response (B, G, R rows) to each panel primary (R, G, B columns) at full drive, normalised
# so that full white has the colour of a D65 panel white with G = 1 (sRGB-like primaries seen
# through a typical Bayer filter: each primary leaks a little into the neighbouring channels).
_PANEL_TO_CAMERA_BGR = np.array([
    [0.02, 0.10, 0.88],     # camera B from panel R, G, B
    [0.08, 0.84, 0.08],     # camera G
    [0.78, 0.17, 0.02],     # camera R
], np.float32)


@dataclass(frozen=True)
class ScreenGeometry:
    """The panel's active area in the device frame (the depth camera's: x right, y down, z out).

    Default: a 19-inch 16:9 kiosk panel (420 x 236 mm) centred under the camera, its top edge 30 mm
    below the lens, in the camera's plane and facing the user, as on most self-service terminals.
    """

    width_m: float = 0.420
    height_m: float = 0.236
    top_below_camera_m: float = 0.030
    # 3 x 2 patches of 14 x 12 cm: on a face at 0.5 m the light differs from an 8 x 6 subdivision
    # by ~1 % (median; 1.7 % at the 99th percentile), and the error falls as (size / distance)^2.
    patches_x: int = 3
    patches_y: int = 2

    def patches(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(centres (N, 3), normal (3,), area of one patch in m²) in the device frame."""
        xs = (np.arange(self.patches_x) + 0.5) / self.patches_x * self.width_m - self.width_m / 2
        ys = self.top_below_camera_m + (np.arange(self.patches_y) + 0.5) / self.patches_y * self.height_m
        cx, cy = np.meshgrid(xs, ys)
        centres = np.stack([cx.ravel(), cy.ravel(), np.zeros(cx.size)], axis=1)
        area = self.width_m * self.height_m / (self.patches_x * self.patches_y)
        return centres, np.array([0.0, 0.0, 1.0]), float(area)


def camera_response(rgb: tuple[float, float, float]) -> np.ndarray:
    """Relative (B, G, R) light reaching the colour sensor per lux of full-white panel light."""
    return (_PANEL_TO_CAMERA_BGR @ np.asarray(rgb, np.float32)).astype(np.float32)


def white_lux_field(points: np.ndarray, normals: np.ndarray, nits: float, geometry: ScreenGeometry,
                    to_view: Extrinsics) -> np.ndarray:
    """Illuminance (lux) from the panel at full white on surface points with unit normals, both
    (..., 3) in the view's frame. Zero where the surface faces away from the panel."""
    centres, normal, area = geometry.patches()
    centres = to_view.apply(centres).astype(np.float32)
    normal = (to_view.R @ normal).astype(np.float32)
    pts = points.reshape(-1, 3).astype(np.float32)
    field = np.zeros(pts.shape, np.float32)
    for q in centres:
        d = q[None, :] - pts                                    # surface -> patch
        inv_d = 1.0 / np.sqrt(np.maximum(np.einsum("ij,ij->i", d, d), 1e-6))
        cos_screen = np.maximum(-(d @ normal) * inv_d, 0.0)     # the patch emits along +normal
        w = np.float32(nits * area) * cos_screen * (inv_d * inv_d * inv_d)
        field += w[:, None] * d
    lux = np.einsum("...k,...k->...", normals, field.reshape(points.shape))
    return np.maximum(lux, 0.0).astype(np.float32)


def surface_normals(points: np.ndarray) -> np.ndarray:
    """Unit normals (pointing toward the camera) of an organised (H, W, 3) point map.

    Differences are one-sided on the side with the smaller depth step, so silhouettes (a face in
    front of a wall) do not mix the two surfaces."""
    def diff(axis: int) -> np.ndarray:
        fwd = np.roll(points, -1, axis=axis) - points
        bwd = points - np.roll(points, 1, axis=axis)
        pick_fwd = np.abs(fwd[..., 2]) < np.abs(bwd[..., 2])
        return np.where(pick_fwd[..., None], fwd, bwd)

    du, dv = diff(1), diff(0)
    n = np.cross(dv, du)                                        # y down x right: toward -z
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    n = n / np.maximum(norm, 1e-12)
    n[n[..., 2] > 0] *= -1                                      # always face the camera
    return n.astype(np.float32)


@lru_cache(maxsize=4)
def _pixel_rays(view: View) -> np.ndarray:
    return np.dstack([view.ray_x, view.ray_y, np.ones_like(view.ray_x)]).astype(np.float32)


def screen_irradiance(z: np.ndarray, view: View, rgb: tuple[float, float, float], nits: float,
                      geometry: ScreenGeometry, device_to_view: Extrinsics,
                      region: tuple[int, int, int, int] | None = None) -> np.ndarray | None:
    """(H, W, 3) B, G, R lux-equivalent light from the screen showing ``rgb`` (0..1 of full white)
    on every visible surface of a view, or None when the screen adds nothing (black, or no screen).

    ``z`` is the view's depth along its optical axis (metres, inf where nothing). ``region``
    (u0, v0, u1, v1) limits the exact per-pixel work to where objects are; outside it the surface
    is taken as the flat background wall the renderer draws, lit the same way.
    """
    if nits <= 0 or max(rgb) <= 0:
        return None
    h, w = z.shape
    rays = _pixel_rays(view)
    zf = np.where(np.isfinite(z), z, 10.0).astype(np.float32)
    if region is None:
        region = (0, 0, w, h)
    u0, v0, u1, v1 = region
    # Background: a wall facing the camera (the renderer's), lit by the panel at its own distance,
    # on a coarse grid (it is smooth there).
    step = 4
    coarse_pts = rays[::step, ::step] * zf[::step, ::step, None]
    wall_normal = np.broadcast_to(np.array([0.0, 0.0, -1.0], np.float32), coarse_pts.shape)
    coarse = white_lux_field(coarse_pts, wall_normal, nits, geometry, device_to_view)
    out = np.repeat(np.repeat(coarse, step, axis=0), step, axis=1)[:h, :w]
    if u1 > u0 and v1 > v0:
        # Objects: exact per pixel, with normals from the depth (one pixel of margin for the differences).
        a0, b0, a1, b1 = max(u0 - 1, 0), max(v0 - 1, 0), min(u1 + 1, w), min(v1 + 1, h)
        pts = rays[b0:b1, a0:a1] * zf[b0:b1, a0:a1, None]
        out[b0:b1, a0:a1] = white_lux_field(pts, surface_normals(pts), nits, geometry, device_to_view)
    return out[..., None] * camera_response(rgb)[None, None, :]
