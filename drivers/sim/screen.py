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

import threading
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


@dataclass(frozen=True)
class _Panel:
    """The panel's patches in a view's frame, as float32 scalars (what the per-pixel loops use)."""

    centres: tuple[tuple[np.float32, np.float32, np.float32], ...]
    normal: tuple[np.float32, np.float32, np.float32]
    power: np.float32                       # nits * patch area


@lru_cache(maxsize=16)
def _panel(geometry: ScreenGeometry, to_view: Extrinsics, nits: float) -> _Panel:
    centres, normal, area = geometry.patches()
    c = to_view.apply(centres).astype(np.float32)
    n = (to_view.R @ normal).astype(np.float32)
    return _Panel(tuple((q[0], q[1], q[2]) for q in c), (n[0], n[1], n[2]), np.float32(nits * area))


def _field(panel: _Panel, px: np.ndarray, py: np.ndarray, pz: np.ndarray, z_only: bool = False
           ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """The vector field V (x, y, z planes, float32) of the panel at full white on points given as
    x, y, z planes of one shape: a surface with unit normal n there receives n . V lux.

    Per patch q, with d = q - p: V += P * max(-(d . n_panel) / |d|, 0) / |d|³ * d. Each plane is
    worked on separately and in place (the same float32 operations in the same order as on (N, 3)
    rows, so the same bits). ``z_only`` leaves out the x and y planes (None)."""
    shape = px.shape
    fx = None if z_only else np.zeros(shape, np.float32)
    fy = None if z_only else np.zeros(shape, np.float32)
    fz = np.zeros(shape, np.float32)
    dx, dy, dz = (np.empty(shape, np.float32) for _ in range(3))
    inv, cos, tmp = (np.empty(shape, np.float32) for _ in range(3))
    nx, ny, nz = panel.normal
    for qx, qy, qz in panel.centres:
        np.subtract(qx, px, out=dx)                             # surface -> patch
        np.subtract(qy, py, out=dy)
        np.subtract(qz, pz, out=dz)
        np.multiply(dx, dx, out=inv)                            # |d|²: (x² + y²) + z²
        np.multiply(dy, dy, out=tmp)
        inv += tmp
        np.multiply(dz, dz, out=tmp)
        inv += tmp
        np.maximum(inv, 1e-6, out=inv)
        np.sqrt(inv, out=inv)
        np.divide(1.0, inv, out=inv)                            # 1 / |d|
        np.multiply(dx, nx, out=cos)                            # d . n_panel: (x + y) + z
        np.multiply(dy, ny, out=tmp)
        cos += tmp
        np.multiply(dz, nz, out=tmp)
        cos += tmp
        np.negative(cos, out=cos)                               # the patch emits along +normal
        cos *= inv
        np.maximum(cos, 0.0, out=cos)
        np.multiply(inv, inv, out=tmp)                          # 1 / |d|³
        tmp *= inv
        cos *= panel.power                                      # w = (P cos) / |d|³
        cos *= tmp
        if fx is not None and fy is not None:
            dx *= cos
            fx += dx
            dy *= cos
            fy += dy
        dz *= cos
        fz += dz
    return fx, fy, fz


def white_lux_field(points: np.ndarray, normals: np.ndarray, nits: float, geometry: ScreenGeometry,
                    to_view: Extrinsics) -> np.ndarray:
    """Illuminance (lux) from the panel at full white on surface points with unit normals, both
    (..., 3) in the view's frame. Zero where the surface faces away from the panel."""
    pts = np.asarray(points, np.float32)
    nrm = np.asarray(normals, np.float32)
    px, py, pz = (np.ascontiguousarray(pts[..., k]) for k in range(3))
    fx, fy, fz = _field(_panel(geometry, to_view, nits), px, py, pz)
    assert fx is not None and fy is not None
    return _lux(nrm[..., 0], nrm[..., 1], nrm[..., 2], fx, fy, fz)


def _lux(nx: np.ndarray, ny: np.ndarray, nz: np.ndarray, fx: np.ndarray, fy: np.ndarray, fz: np.ndarray
         ) -> np.ndarray:
    """max(n . V, 0), summed (x + y) + z; overwrites ``fx``."""
    tmp = np.multiply(ny, fy)
    fx *= nx
    fx += tmp
    np.multiply(nz, fz, out=tmp)
    fx += tmp
    return np.maximum(fx, 0.0, out=fx)


def _steps(p: np.ndarray, axis: int) -> np.ndarray:
    """p[i + 1] - p[i] along ``axis``, wrapping around at the end (as np.roll would)."""
    out = np.empty_like(p)
    a = [slice(None)] * p.ndim
    b = [slice(None)] * p.ndim
    a[axis], b[axis] = slice(0, -1), slice(1, None)
    np.subtract(p[tuple(b)], p[tuple(a)], out=out[tuple(a)])
    last, first = [slice(None)] * p.ndim, [slice(None)] * p.ndim
    last[axis], first[axis] = slice(-1, None), slice(0, 1)
    np.subtract(p[tuple(first)], p[tuple(last)], out=out[tuple(last)])
    return out


def _normal_planes(px: np.ndarray, py: np.ndarray, pz: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``surface_normals`` on x, y, z planes of an organised point map: (nx, ny, nz) float32."""
    def diff(axis: int) -> tuple[np.ndarray, ...]:
        # The backward difference at i is the forward one at i - 1, the same subtraction.
        fwd = [_steps(p, axis) for p in (px, py, pz)]
        step_z = np.abs(fwd[2])
        pick_bwd = step_z >= np.roll(step_z, 1, axis=axis)
        for f in fwd:
            np.copyto(f, np.roll(f, 1, axis=axis), where=pick_bwd)
        return tuple(fwd)

    ux, uy, uz = diff(1)
    vx, vy, vz = diff(0)
    # n = dv x du (y down, x right: toward -z), each component a*b - c*d as np.cross does it.
    nx = vy * uz
    nx -= vz * uy
    ny = vz * ux
    ny -= vx * uz
    nz = vx * uy
    nz -= vy * ux
    norm = nx * nx                                              # |n|: sqrt((x² + y²) + z²)
    norm += ny * ny
    norm += nz * nz
    np.sqrt(norm, out=norm)
    np.maximum(norm, 1e-12, out=norm)
    away = nz > 0                                               # always face the camera
    for c in (nx, ny, nz):
        c /= norm
        np.negative(c, out=c, where=away)
    return nx, ny, nz


def surface_normals(points: np.ndarray) -> np.ndarray:
    """Unit normals (pointing toward the camera) of an organised (H, W, 3) point map.

    Differences are one-sided on the side with the smaller depth step, so silhouettes (a face in
    front of a wall) do not mix the two surfaces."""
    pts = np.asarray(points, np.float32)
    px, py, pz = (np.ascontiguousarray(pts[..., k]) for k in range(3))
    return np.stack(_normal_planes(px, py, pz), axis=-1)


class ScreenLight:
    """The screen's light on one view, frame after frame (one per camera: it keeps the background
    wall's coarse field and recomputes it only where the wall's depth changed)."""

    _STEP = 4                                                   # the wall's coarse grid, in pixels

    def __init__(self, view: View, nits: float, geometry: ScreenGeometry, device_to_view: Extrinsics):
        self.view, self.nits, self.geometry, self.device_to_view = view, nits, geometry, device_to_view
        self._panel = _panel(geometry, device_to_view, nits)
        s = self._STEP
        self._rx, self._ry = view.ray_x, view.ray_y
        self._crx, self._cry = view.ray_x[::s, ::s].copy(), view.ray_y[::s, ::s].copy()
        self._wall_z = np.full(self._crx.shape, np.nan, np.float32)   # NaN: not computed yet
        self._wall_lux = np.zeros(self._crx.shape, np.float32)
        self._lock = threading.Lock()

    def irradiance(self, z: np.ndarray, rgb: tuple[float, float, float],
                   region: tuple[int, int, int, int] | None = None) -> np.ndarray | None:
        """(H, W, 3) B, G, R lux-equivalent light from the screen showing ``rgb``; see
        ``screen_irradiance``."""
        if self.nits <= 0 or max(rgb) <= 0:
            return None
        h, w = z.shape
        if region is None:
            region = (0, 0, w, h)
        u0, v0, u1, v1 = region
        a0, b0, a1, b1 = max(u0 - 1, 0), max(v0 - 1, 0), min(u1 + 1, w), min(v1 + 1, h)
        has_objects = u1 > u0 and v1 > v0
        s = self._STEP
        with self._lock:
            # Background: a wall facing the camera (the renderer's), lit by the panel at its own
            # distance, on a coarse grid (it is smooth there). Only cells whose depth changed and
            # whose block shows outside the objects' box are computed again.
            zc = z[::s, ::s]
            zc = np.where(np.isfinite(zc), zc, 10.0).astype(np.float32)
            todo = zc != self._wall_z
            if has_objects:
                hidden = np.zeros(zc.shape, bool)               # block wholly inside the box
                hidden[-(-b0 // s):b1 // s, -(-a0 // s):a1 // s] = True
                if b1 == h:
                    hidden[-(-b0 // s):, -(-a0 // s):a1 // s if a1 < w else None] = True
                if a1 == w:
                    hidden[-(-b0 // s):b1 // s if b1 < h else None, -(-a0 // s):] = True
                todo &= ~hidden
            if todo.any():
                pz = zc[todo]
                _, _, fz = _field(self._panel, self._crx[todo] * pz, self._cry[todo] * pz, pz, z_only=True)
                # n = (0, 0, -1): n . V = -V_z exactly (V_z < 0 on a wall in front of the panel).
                self._wall_lux[todo] = np.maximum(np.negative(fz, out=fz), 0.0, out=fz)
                self._wall_z[todo] = zc[todo]
            out = np.repeat(np.repeat(self._wall_lux, s, axis=0), s, axis=1)[:h, :w]
        if has_objects:
            # Objects: exact per pixel, with normals from the depth (one pixel of margin for the differences).
            zr = z[b0:b1, a0:a1]
            pz = np.where(np.isfinite(zr), zr, 10.0).astype(np.float32)
            px, py = self._rx[b0:b1, a0:a1] * pz, self._ry[b0:b1, a0:a1] * pz
            fx, fy, fz = _field(self._panel, px, py, pz)
            assert fx is not None and fy is not None
            out[b0:b1, a0:a1] = _lux(*_normal_planes(px, py, pz), fx, fy, fz)
        # Channel by channel: the same products as out[..., None] * response, several times faster.
        bgr = np.empty((h, w, 3), np.float32)
        for c, gain in enumerate(camera_response(rgb)):
            np.multiply(out, gain, out=bgr[..., c])
        return bgr


def screen_irradiance(z: np.ndarray, view: View, rgb: tuple[float, float, float], nits: float,
                      geometry: ScreenGeometry, device_to_view: Extrinsics,
                      region: tuple[int, int, int, int] | None = None) -> np.ndarray | None:
    """(H, W, 3) B, G, R lux-equivalent light from the screen showing ``rgb`` (0..1 of full white)
    on every visible surface of a view, or None when the screen adds nothing (black, or no screen).

    ``z`` is the view's depth along its optical axis (metres, inf where nothing). ``region``
    (u0, v0, u1, v1) limits the exact per-pixel work to where objects are; outside it the surface
    is taken as the flat background wall the renderer draws, lit the same way. A camera rendering
    frame after frame keeps a ``ScreenLight`` instead, which reuses the wall's field."""
    return ScreenLight(view, nits, geometry, device_to_view).irradiance(z, rgb, region)
