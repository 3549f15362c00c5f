"""Ray-marching renderer for height-field objects, per camera view.

For each pixel ray ``p = t * (x, y, 1)`` (t is the depth along the optical axis) the renderer finds
the first ``t`` where the ray passes behind an object's surface, refines it by bisection and a final
secant step, and looks the textures up at the hit. Only pixels inside an object's projected bounding
box are marched. The result is, per view, exact z, reflectance and material maps: the "world" that
the sensor models in ``sensor.py`` turn into pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .optics import View
from .subject import MISS, Material, Surface

N_STEPS = 7
N_BISECT = 4
WALL_Z_M = 1.6


@dataclass
class Placed:
    """An object posed in the depth camera's frame for one tick: p_depth = R @ p_obj + T."""

    surface: Surface
    R: np.ndarray
    T: np.ndarray
    albedo: np.ndarray          # this tick's texture (blinks applied)
    object_id: int
    jaw_m: float = 0.0          # non-rigid jaw/lip displacement this tick (moves the mouth region back)


@dataclass
class ViewMaps:
    z: np.ndarray               # (H, W) float32 metres along the optical axis; inf where nothing
    albedo: np.ndarray          # (H, W, 3) float32 reflectance (or displayed radiance for emissive)
    nir: np.ndarray             # (H, W) float32
    shade: np.ndarray           # (H, W) float32 cosine between surface normal and viewing ray
    object_id: np.ndarray       # (H, W) int8; -1 = wall
    dot_blur: np.ndarray        # (H, W) float32 material dot blur
    specular: np.ndarray        # (H, W) float32
    emissive: np.ndarray        # (H, W) bool


def _wall_texture(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(12345)
    base = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 9)
    base = 0.42 + 0.08 * base / (base.std() + 1e-6)
    albedo = np.dstack([base * 0.92, base * 0.98, base * 1.05]).astype(np.float32)
    return albedo, (0.5 + 0.5 * (base - 0.42)).astype(np.float32)


_WALL_CACHE: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _project_bbox(view: View, placed: Placed) -> tuple[int, int, int, int] | None:
    s = placed.surface
    x0, x1, y0, y1 = s.extent
    corners = np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (-s.max_height - 0.01, 0.12)])
    pts = corners @ placed.R.T + placed.T
    pts = view.depth_to_view.apply(pts)
    if np.any(pts[:, 2] <= 0.05):
        return None
    uv = view.project(pts)
    i = view.intrinsics
    u0, v0 = np.floor(uv.min(axis=0)).astype(int) - 2
    u1, v1 = np.ceil(uv.max(axis=0)).astype(int) + 2
    u0, v0, u1, v1 = max(u0, 0), max(v0, 0), min(u1, i.width), min(v1, i.height)
    if u1 <= u0 or v1 <= v0:
        return None
    return u0, v0, u1, v1


def _sample(grid: np.ndarray, mx: np.ndarray, my: np.ndarray, border: float, interp=cv2.INTER_LINEAR) -> np.ndarray:
    return cv2.remap(grid, mx, my, interp, borderMode=cv2.BORDER_CONSTANT, borderValue=border)


_GRADIENTS: dict[int, tuple[Surface, np.ndarray, np.ndarray]] = {}


def _gradients(s: Surface) -> tuple[np.ndarray, np.ndarray]:
    """Height-field slopes, computed once per surface (surfaces are immutable and cached)."""
    hit = _GRADIENTS.get(id(s))
    if hit is None or hit[0] is not s:
        gy, gx = np.gradient(s.height, s.res)
        gx = np.where(s.valid, gx, 0).astype(np.float32)
        gy = np.where(s.valid, gy, 0).astype(np.float32)
        hit = (s, gx, gy)
        _GRADIENTS[id(s)] = hit
    return hit[1], hit[2]


def render_view(view: View, objects: list[Placed]) -> ViewMaps:
    i = view.intrinsics
    h, w = i.height, i.width
    rays = view.rays
    if (h, w) not in _WALL_CACHE:
        _WALL_CACHE[(h, w)] = _wall_texture(h, w)
    wall_albedo, wall_nir = _WALL_CACHE[(h, w)]

    # The wall: a plane z_depth = WALL_Z_M behind the subject.
    e_inv = view.depth_to_view.inverse()
    rd = rays[..., 0:1] * e_inv.R[2, 0] + rays[..., 1:2] * e_inv.R[2, 1] + e_inv.R[2, 2]
    t_wall = ((WALL_Z_M - e_inv.t[2]) / rd[..., 0]).astype(np.float32)
    maps = ViewMaps(
        z=t_wall, albedo=wall_albedo.copy(), nir=wall_nir.copy(), shade=np.full((h, w), 0.9, np.float32),
        object_id=np.full((h, w), -1, np.int8), dot_blur=np.full((h, w), 0.5, np.float32),
        specular=np.zeros((h, w), np.float32), emissive=np.zeros((h, w), bool))

    for obj in objects:
        bbox = _project_bbox(view, obj)
        if bbox is None:
            continue
        _march(view, obj, bbox, maps)
    return maps


def _march(view: View, obj: Placed, bbox: tuple[int, int, int, int], maps: ViewMaps) -> None:
    u0, v0, u1, v1 = bbox
    s = obj.surface
    rx, ry = view.ray_x[v0:v1, u0:u1], view.ray_y[v0:v1, u0:u1]
    # Object pose in this view's frame.
    R = view.depth_to_view.R @ obj.R
    T = view.depth_to_view.R @ obj.T + view.depth_to_view.t
    Rt = R.T.astype(np.float32)
    # q(t) = t * A + B in object coordinates.
    ax = Rt[0, 0] * rx + Rt[0, 1] * ry + Rt[0, 2]
    ay = Rt[1, 0] * rx + Rt[1, 1] * ry + Rt[1, 2]
    az = Rt[2, 0] * rx + Rt[2, 1] * ry + Rt[2, 2]
    b = -(Rt @ T).astype(np.float32)
    inv_res = np.float32(1.0 / s.res)
    height = s.height
    # Grid coordinates along the ray are affine in t: m = t * a' + b'.
    axr, ayr = ax * inv_res, ay * inv_res
    bxr, byr = np.float32((b[0] - s.x0) * inv_res), np.float32((b[1] - s.y0) * inv_res)
    bz = np.float32(b[2])

    def f(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mx = t * axr + bxr
        my = t * ayr + byr
        return t * az + bz + _sample(height, mx, my, MISS), mx, my

    dist = float(np.linalg.norm(T))
    t_near = max(dist - s.max_height - 0.03, 0.05)
    t_far = dist + 0.09
    ts = np.linspace(t_near, t_far, N_STEPS + 1, dtype=np.float32)
    shape = rx.shape
    lo = np.full(shape, ts[0], np.float32)
    hi = np.full(shape, ts[1], np.float32)
    f_lo = np.zeros(shape, np.float32)
    f_hi = np.zeros(shape, np.float32)
    f_prev, _, _ = f(np.full(shape, ts[0], np.float32))
    found = np.zeros(shape, bool)
    for k in range(1, N_STEPS + 1):
        fk, _, _ = f(np.full(shape, ts[k], np.float32))
        cross = (f_prev < 0) & (fk >= 0) & ~found
        np.copyto(lo, ts[k - 1], where=cross)
        np.copyto(hi, ts[k], where=cross)
        np.copyto(f_lo, f_prev, where=cross)
        np.copyto(f_hi, fk, where=cross)
        found |= cross
        f_prev = fk
    if not found.any():
        return
    # Refine inside the bracket by regula falsi (Illinois variant): the surface is smooth and
    # nearly perpendicular to the rays, so a few steps reach sub-0.1 mm.
    side = np.zeros(shape, np.int8)
    for _ in range(N_BISECT):
        denom = np.where(f_hi - f_lo > 1e-9, f_hi - f_lo, np.float32(1.0))
        mid = np.clip(lo - f_lo * (hi - lo) / denom, lo, hi)
        fm, _, _ = f(mid)
        behind = fm >= 0
        hi = np.where(behind, mid, hi)
        f_hi = np.where(behind, fm, np.where(side == 1, f_hi * np.float32(0.5), f_hi))
        lo = np.where(behind, lo, mid)
        f_lo = np.where(behind, np.where(side == -1, f_lo * np.float32(0.5), f_lo), fm)
        side = np.where(behind, np.int8(-1), np.int8(1)).astype(np.int8)
    denom = np.where(f_hi - f_lo > 1e-9, f_hi - f_lo, np.float32(1.0))
    t_hit = np.clip(lo - f_lo * (hi - lo) / denom, lo, hi).astype(np.float32)
    _, mx, my = f(t_hit)
    # Reject hits on the interpolation skirt at silhouette edges and hole rims.
    valid = _sample(s.valid.astype(np.float32), mx, my, 0.0) > 0.999
    hit = found & valid
    region = maps.z[v0:v1, u0:u1]
    nearer = hit & (t_hit < region)
    if not nearer.any():
        return
    if obj.jaw_m and s.mouth_weight is not None:
        t_hit = t_hit + np.float32(obj.jaw_m) * _sample(s.mouth_weight, mx, my, 0.0) / np.maximum(az, 0.1)
    gx_, gy_ = _gradients(s)
    sx = _sample(gx_, mx, my, 0.0)
    sy = _sample(gy_, mx, my, 0.0)
    # Outward normal in object frame is -(Sx, Sy, 1)/n; the ray in object frame is A = R^T r, so
    # cos(normal, ray) = (Sx*Ax + Sy*Ay + Az) / (n * |r|).
    cos = (sx * ax + sy * ay + az) / (np.sqrt(1 + sx * sx + sy * sy) * view.ray_norm[v0:v1, u0:u1])
    albedo = cv2.remap(obj.albedo, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    nir = _sample(s.nir, mx, my, 0.0)
    np.copyto(region, t_hit, where=nearer)
    np.copyto(maps.albedo[v0:v1, u0:u1], albedo, where=nearer[..., None])
    np.copyto(maps.nir[v0:v1, u0:u1], nir, where=nearer)
    np.copyto(maps.shade[v0:v1, u0:u1], np.clip(cos, 0.0, 1.0), where=nearer)
    m: Material = s.material
    maps.object_id[v0:v1, u0:u1][nearer] = obj.object_id
    maps.dot_blur[v0:v1, u0:u1][nearer] = m.dot_blur_px
    maps.specular[v0:v1, u0:u1][nearer] = m.specular
    maps.emissive[v0:v1, u0:u1][nearer] = m.emissive
