"""Ray-marching renderer for height-field objects, per camera view.

For each pixel ray ``p = t * (x, y, 1)`` (t is the depth along the optical axis) the renderer finds
the first ``t`` where the ray passes behind an object's surface, refines it by bisection and a final
secant step, and looks the textures up at the hit. Only pixels inside an object's projected bounding
box are marched. The result is, per view, exact z, reflectance and material maps: the "world" that
the sensor models in ``sensor.py`` turn into pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from . import cornea as _cornea
from .optics import View
from .subject import MISS, Material, Surface  # noqa: F401  (Surface in annotations)

WALL_Z_M = 1.6
_PACK = 512                     # row length of packed per-ray arrays in the march
# Glints: a spectacle lens mirrors a light source into the camera where its normal bisects the
# directions to the source and to the camera. The projector is small: its mirror image is a spot of
# ~2° (the lens' curvature spreads it); an overhead lamp is ~6° across.
PROJECTOR_GLINT_SIGMA_RAD = 0.03


@dataclass
class Placed:
    """An object posed in the depth camera's frame for one tick: p_depth = R @ p_obj + T."""

    surface: Surface
    R: np.ndarray
    T: np.ndarray
    albedo: np.ndarray          # this tick's texture (blinks applied)
    object_id: int
    jaw_m: float = 0.0          # non-rigid jaw/lip displacement this tick (moves the mouth region back)
    eyes: tuple = ()            # cornea.Eye per eye that mirrors light sources (``cornea=1``); () none
    eyes_closed: float = 0.0    # this tick's blink (0 open .. 1 closed), for the lids over the corneas


@dataclass(frozen=True, eq=False)
class Plane:
    """A textured cut-out, flat or bent around a vertical axis (poster, shelf, a torso, a person
    walking past far behind): drawn in closed form, so cheap. Exact for flat things; a torso becomes an
    elliptic cylinder with the outline of shoulders and arms. Texel (0, 0) sits at (x0, y0).

    Bent (``bend_a`` > 0): the surface is z = c (1 - sqrt(1 - x^2 / a^2)) in the object frame (z away
    from the camera), the front half of an elliptic cylinder with half-width a and depth c."""

    alpha: np.ndarray           # (h, w) float32, > 0.5 where the plane exists
    albedo: np.ndarray          # (h, w, 3) float32
    nir: np.ndarray             # (h, w) float32
    res: float                  # metres per texel
    x0: float
    y0: float
    dot_blur_px: float = 0.5
    bend_a: float = 0.0
    bend_c: float = 0.0
    shade: np.ndarray | None = None   # (h, w) cosine to the camera axis per texel (bent planes), precomputed
    specular: float = 0.0
    emissive: bool = False
    albedo_closed: np.ndarray | None = None   # a displayed face that can blink (screen_video)
    eye_weight: np.ndarray | None = None


@dataclass
class PlacedPlane:
    plane: Plane
    R: np.ndarray
    T: np.ndarray
    object_id: int
    albedo: np.ndarray | None = None    # this tick's texture when it changes (a blinking displayed face)


@dataclass(frozen=True)
class Lights:
    """Where the light sources are that spectacle lenses can mirror (depth-camera frame)."""

    projector_pos: np.ndarray | None = None      # the projector's position (None: no projector)
    lamp_dir: np.ndarray | None = None           # unit vector from the scene toward an overhead lamp
    lamp_radius_rad: float = 0.1
    lamp_share: float = 0.3                      # share of the ambient light the lamp gives


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
    # Projector glint as an equivalent albedo (None: nothing glossy in view). Lamp glints are already
    # added to ``albedo`` and ``nir``.
    glint: np.ndarray | None = None
    # The corneas' mirror images of the projector (cornea.Glint; None: none drawn): the sensor weighs
    # each by the dot pattern's irradiance at its point. The lamp's are already added to albedo and nir.
    corneal: list | None = None
    # The projector mirrored by glossy layers that mirror it dot by dot (``Surface.gloss_dots``), as an
    # equivalent albedo the sensor weighs by the pattern at each pixel.
    glint_dots: np.ndarray | None = None


def _wall_texture(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(12345)
    base = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 9)
    base = 0.42 + 0.08 * base / (base.std() + 1e-6)
    albedo = np.dstack([base * 0.92, base * 0.98, base * 1.05]).astype(np.float32)
    return albedo, (0.5 + 0.5 * (base - 0.42)).astype(np.float32)


_WALL_CACHE: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _project_bbox(view: View, placed: Placed) -> tuple[int, int, int, int, float, float] | None:
    """The object's bounding box in this view: pixel box (u0, v0, u1, v1) and its depth range."""
    s = placed.surface
    x0, x1, y0, y1 = s.extent
    z_front, z_back = -s.max_height - 0.01, max(0.12, 0.01 - s.min_height)
    corners = np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z_front, z_back)])
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
    return u0, v0, u1, v1, float(pts[:, 2].min()), float(pts[:, 2].max())


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


# Textures sampled at the same coordinates, stacked as channels of one image: OpenCV's remap gives each
# channel of a 3- or 4-channel float32 image exactly what it gives that channel alone (with its own
# border value), at about a third of the cost. (Not 2 channels: that path rounds differently.)
_STACKS: dict[tuple[int, str], tuple[object, np.ndarray]] = {}


def _sample_channels(owner: object, what: str, channels: Sequence[np.ndarray], borders: Sequence[float],
                     mx: np.ndarray, my: np.ndarray) -> list[np.ndarray]:
    """``[_sample(c, mx, my, b) for c, b in zip(channels, borders)]``, in one remap of the channels
    stacked (built once per immutable ``owner``, a surface or a plane) when there are 3 or 4 of them,
    all float32; one remap each otherwise."""
    if len(channels) not in (3, 4) or any(c.dtype != np.float32 for c in channels):
        return [_sample(c, mx, my, b) for c, b in zip(channels, borders, strict=True)]
    key = (id(owner), what)
    hit = _STACKS.get(key)
    if hit is None or hit[0] is not owner:
        hit = (owner, np.ascontiguousarray(np.dstack(channels)))
        hit[1].flags.writeable = False
        _STACKS[key] = hit
        while len(_STACKS) > 32:             # a busy scene stacks ~13 textures; bounded memory
            _STACKS.pop(next(iter(_STACKS)))
    st = cv2.remap(hit[1], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(borders))
    return [st[..., k] for k in range(len(channels))]


def _shading_samples(s: Surface, mx: np.ndarray, my: np.ndarray) -> list[np.ndarray]:
    """valid, dS/dx, dS/dy and nir of a surface at grid coordinates (mx, my)."""
    gx, gy = _gradients(s)
    return _sample_channels(s, "shading", (s.valid_f32, gx, gy, s.nir), (0.0, 0.0, 0.0, 0.0), mx, my)


def _material_samples(s: Surface, mx: np.ndarray, my: np.ndarray, jaw: bool
                      ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(dot blur, mouth weight) at the hits, each None where the surface has none (or no jaw moves)."""
    blur, mouth = s.dot_blur, s.mouth_weight if jaw else None
    if blur is not None and mouth is not None:
        b, m, _ = _sample_channels(s, "material", (blur, mouth, mouth), (s.material.dot_blur_px, 0.0, 0.0), mx, my)
        return b, m
    return (None if blur is None else _sample(blur, mx, my, s.material.dot_blur_px),
            None if mouth is None else _sample(mouth, mx, my, 0.0))


_BACKGROUND_CACHE: dict[tuple, tuple] = {}
_MAP_FIELDS = ("z", "albedo", "nir", "shade", "object_id", "dot_blur", "specular", "emissive")
Box = tuple[int, int, int, int]          # (v0, v1, u0, u1): rows and columns a render drew into


class Canvas:
    """One camera's maps of one view, kept from render to render: the next render restores only the
    boxes the last one drew into from the cached background, instead of copying all of it. The maps a
    render returns are valid until the next render on the same canvas."""

    def __init__(self) -> None:
        self.maps: ViewMaps | None = None
        self.clean: ViewMaps | None = None      # the cached background ``maps`` started from
        self.dirty: list[Box] = []

    def reset_to(self, clean: ViewMaps) -> ViewMaps:
        if self.maps is None or self.clean is not clean:
            self.maps = ViewMaps(*(getattr(clean, f).copy() for f in _MAP_FIELDS))
            self.clean = clean
        else:
            for v0, v1, u0, u1 in self.dirty:
                for f in _MAP_FIELDS:
                    getattr(self.maps, f)[v0:v1, u0:u1] = getattr(clean, f)[v0:v1, u0:u1]
            self.maps.glint = None
            self.maps.corneal = None
            self.maps.glint_dots = None
        self.dirty = []
        return self.maps


def _background(view: View, planes: list[PlacedPlane], static_key: tuple | None,
                canvas: Canvas | None = None) -> ViewMaps:
    """The wall (and any static planes in front of it): cached per view and scene when static."""
    key = (id(view), view.intrinsics, static_key) if static_key is not None else None
    hit = _BACKGROUND_CACHE.get(key) if key is not None else None
    if hit is None or hit[0] is not view:
        i = view.intrinsics
        h, w = i.height, i.width
        if (h, w) not in _WALL_CACHE:
            _WALL_CACHE[(h, w)] = _wall_texture(h, w)
        wall_albedo, wall_nir = _WALL_CACHE[(h, w)]
        # The wall: a plane z_depth = WALL_Z_M behind the subject.
        e_inv = view.depth_to_view.inverse()
        rays = view.rays
        rd = rays[..., 0:1] * e_inv.R[2, 0] + rays[..., 1:2] * e_inv.R[2, 1] + e_inv.R[2, 2]
        t_wall = ((WALL_Z_M - e_inv.t[2]) / rd[..., 0]).astype(np.float32)
        maps = ViewMaps(
            z=t_wall, albedo=wall_albedo.copy(), nir=wall_nir.copy(), shade=np.full((h, w), 0.9, np.float32),
            object_id=np.full((h, w), -1, np.int8), dot_blur=np.full((h, w), 0.5, np.float32),
            specular=np.zeros((h, w), np.float32), emissive=np.zeros((h, w), bool))
        for p in planes:
            _draw_plane(view, p, maps)
        if key is None:
            return maps
        hit = (view, maps)
        _BACKGROUND_CACHE[key] = hit
        while len(_BACKGROUND_CACHE) > 8:
            _BACKGROUND_CACHE.pop(next(iter(_BACKGROUND_CACHE)))
    m = hit[1]
    if canvas is not None:
        return canvas.reset_to(m)
    return ViewMaps(*(getattr(m, f).copy() for f in _MAP_FIELDS))


def render_view(view: View, objects: Sequence[Placed], planes: Sequence[PlacedPlane] = (),
                static_planes: Sequence[PlacedPlane] = (), static_key: tuple | None = ("plain",),
                lights: Lights | None = None, canvas: Canvas | None = None) -> ViewMaps:
    """Exact z, reflectance and material per pixel of ``view``. ``static_planes`` never move (they are
    drawn once per ``static_key`` and cached with the wall); ``planes`` are drawn every call.
    ``canvas``: draw into that canvas's maps (valid until its next render) instead of new ones."""
    maps = _background(view, list(static_planes), static_key, canvas)
    drawn: list[Box] = []
    for p in planes:
        box = _draw_plane(view, p, maps)
        if box is not None:
            drawn.append(box)
    for obj in objects:
        bbox = _project_bbox(view, obj)
        if bbox is None:
            continue
        u0, v0, u1, v1 = bbox[:4]
        drawn.append((v0, v1, u0, u1))
        _march(view, obj, bbox, maps, lights)
    if lights is not None:
        for obj in objects:
            if obj.eyes:
                _corneal_glints(view, obj, maps, lights)
    if canvas is not None and canvas.maps is maps:
        canvas.dirty = drawn
    return maps


def _corneal_glints(view: View, obj: Placed, maps: ViewMaps, lights: Lights) -> None:
    """The corneas' glints (cornea.py): the lamp's added to albedo and nir (as the ambient light's share
    ``lamp_share`` it is, divided by the shading the sensor applies to ambient light at the glint's pixel),
    the projector's listed for the sensor."""
    if lights.lamp_dir is not None:
        for nir in (True, False):
            for g in _cornea.glints(view, obj.R, obj.T, obj.eyes, obj.eyes_closed, maps.z, None, lights.lamp_dir,
                                    lights.lamp_share, nir):
                iu = min(max(int(round(g.u)), 0), maps.z.shape[1] - 1)
                iv = min(max(int(round(g.v)), 0), maps.z.shape[0] - 1)
                k = (1.0 - float(maps.specular[iv, iu])) * (0.3 + 0.7 * float(maps.shade[iv, iu]))
                _cornea.add_splat(maps.nir if nir else maps.albedo, g.u, g.v, g.albedo / max(k, 0.05))
    if lights.projector_pos is not None:
        found = _cornea.glints(view, obj.R, obj.T, obj.eyes, obj.eyes_closed, maps.z, lights.projector_pos, None,
                               1.0, True)
        if found:
            maps.corneal = (maps.corneal or []) + found


def _draw_plane(view: View, p: PlacedPlane, maps: ViewMaps) -> Box | None:
    """Closed-form ray-plane intersection over the plane's projected bounding box; the box it drew
    into (None: nothing drawn)."""
    pl = p.plane
    h, w = pl.alpha.shape
    corners = np.array([[pl.x0 + a * w * pl.res, pl.y0 + b * h * pl.res, z] for a in (0, 1) for b in (0, 1)
                        for z in (0.0, pl.bend_c)])
    pts = view.depth_to_view.apply(corners @ p.R.T + p.T)
    if np.any(pts[:, 2] <= 0.05):
        return None
    uv = view.project(pts)
    i = view.intrinsics
    u0, v0 = np.floor(uv.min(axis=0)).astype(int) - 2
    u1, v1 = np.ceil(uv.max(axis=0)).astype(int) + 2
    u0, v0, u1, v1 = max(u0, 0), max(v0, 0), min(u1, i.width), min(v1, i.height)
    if u1 <= u0 or v1 <= v0:
        return None
    R = view.depth_to_view.R @ p.R
    T = view.depth_to_view.R @ p.T + view.depth_to_view.t
    Rt = R.T.astype(np.float32)
    rx, ry = view.ray_x[v0:v1, u0:u1], view.ray_y[v0:v1, u0:u1]
    # The expressions in the comments, evaluated in place with one scratch array (the same operations).
    tmp = np.empty_like(rx)

    def ray(k: int) -> np.ndarray:              # Rt[k, 0] * rx + Rt[k, 1] * ry + Rt[k, 2]
        a = np.multiply(rx, Rt[k, 0])
        a += np.multiply(ry, Rt[k, 1], out=tmp)
        a += Rt[k, 2]
        return a
    ax, ay, az = ray(0), ray(1), ray(2)
    b = -(Rt @ T).astype(np.float32)
    if pl.bend_a > 0:
        # ((t az + bz - c) / c)^2 + ((t ax + bx) / a)^2 = 1, nearest root: qa t^2 + 2 qh t + qc = 0.
        ia2, ic2 = np.float32(1.0 / pl.bend_a ** 2), np.float32(1.0 / pl.bend_c ** 2)
        bzc = b[2] - np.float32(pl.bend_c)
        qa = np.multiply(az, az)                # az * az * ic2 + ax * ax * ia2
        qa *= ic2
        np.multiply(ax, ax, out=tmp)
        tmp *= ia2
        qa += tmp
        qh = np.multiply(az, bzc * ic2)         # az * (bzc * ic2) + ax * (b[0] * ia2)
        qh += np.multiply(ax, b[0] * ia2, out=tmp)
        qc = bzc * bzc * ic2 + b[0] * b[0] * ia2 - 1
        disc = np.multiply(qh, qh)              # qh * qh - qa * qc
        disc -= np.multiply(qa, qc, out=tmp)
        root = np.maximum(disc, 0, out=tmp)     # t = (-qh - sqrt(max(disc, 0))) / qa
        np.sqrt(root, out=root)
        t = np.negative(qh, out=qh)
        t -= root
        t /= qa
        t[disc < 0] = -1.0
    else:
        t = -b[2] / np.where(np.abs(az) > 1e-6, az, np.float32(1e-6))
    if all(type(v) is float for v in (pl.x0, pl.y0, pl.res)):
        mx = np.multiply(t, ax)                 # (t * ax + b[0] - x0) / res, in float32
        mx += b[0]
        mx -= pl.x0
        mx /= pl.res
        my = np.multiply(t, ay)
        my += b[1]
        my -= pl.y0
        my /= pl.res
    else:                                       # numpy scalars keep their own precision
        mx = ((t * ax + b[0] - pl.x0) / pl.res).astype(np.float32)
        my = ((t * ay + b[1] - pl.y0) / pl.res).astype(np.float32)
    alpha_s, nir_s, shade_s = _sample_channels(pl, "plane", (pl.alpha, pl.nir, pl.alpha if pl.shade is None
                                                             else pl.shade), (0.0, 0.0, 0.0), mx, my)
    inside = (alpha_s > 0.5) & (t > 0.05)
    region = maps.z[v0:v1, u0:u1]
    nearer = inside & (t < region)
    if not nearer.any():
        return None
    np.copyto(region, t, where=nearer)
    albedo = cv2.remap(pl.albedo if p.albedo is None else p.albedo, mx, my, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    np.copyto(maps.albedo[v0:v1, u0:u1], albedo, where=nearer[..., None])
    np.copyto(maps.nir[v0:v1, u0:u1], nir_s, where=nearer)
    if pl.shade is not None:
        # Bent planes may carry their shading per texel (the normal against the object's axis; the
        # rays' own slant and the object's turn, a few degrees on a torso, are left out).
        cos = shade_s
    elif pl.bend_a > 0:
        # Normal of the cylinder in the object frame: (qx / a^2, 0, (qz - c) / c^2), toward the camera.
        qx = t * ax + b[0]
        qz = t * az + b[2] - np.float32(pl.bend_c)
        nx, nz = qx / np.float32(pl.bend_a ** 2), qz / np.float32(pl.bend_c ** 2)
        cos = np.abs(nx * ax + nz * az) / (np.sqrt(nx * nx + nz * nz) * view.ray_norm[v0:v1, u0:u1])
    else:
        cos = np.abs(az) / view.ray_norm[v0:v1, u0:u1]
    np.copyto(maps.shade[v0:v1, u0:u1], cos, where=nearer)
    np.copyto(maps.object_id[v0:v1, u0:u1], p.object_id, where=nearer)
    np.copyto(maps.dot_blur[v0:v1, u0:u1], pl.dot_blur_px, where=nearer)
    np.copyto(maps.specular[v0:v1, u0:u1], pl.specular, where=nearer)
    np.copyto(maps.emissive[v0:v1, u0:u1], pl.emissive, where=nearer)
    return v0, v1, u0, u1


def _march(view: View, obj: Placed, bbox: tuple[int, int, int, int, float, float], maps: ViewMaps,
           lights: Lights | None = None) -> None:
    u0, v0, u1, v1, z_min, z_max = bbox
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

    # t is depth along the optical axis: march through the object's box in depth (off-axis
    # objects are nearer in depth than in distance).
    n_steps, n_refine = s.march_steps
    ts = np.linspace(max(z_min - 0.01, 0.05), z_max, n_steps + 1, dtype=np.float32)

    found, lo, hi, f_lo, f_hi = _bracket(height, ts, axr, ayr, az, bxr, byr, bz)
    if not found.any():
        return
    if found.sum() < 0.75 * found.size:
        _refine_and_shade_packed(view, obj, s, R, (v0, v1, u0, u1), maps, lights, found, lo, hi, f_lo, f_hi,
                                 axr, ayr, az, ax, ay, bxr, byr, bz, rx, ry)
        return
    # Most of the box hit: refine and shade the box as a whole.

    def f(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mx = t * axr + bxr
        my = t * ayr + byr
        return t * az + bz + _sample(height, mx, my, MISS), mx, my

    t_hit = _regula_falsi(f, lo, hi, f_lo, f_hi, n_refine)
    _, mx, my = f(t_hit)
    valid_s, sx, sy, nir = _shading_samples(s, mx, my)
    # Reject hits on the interpolation skirt at silhouette edges and hole rims.
    valid = valid_s > 0.999
    hit = found & valid
    region = maps.z[v0:v1, u0:u1]
    nearer = hit & (t_hit < region)
    if not nearer.any():
        return
    blur, mouth = _material_samples(s, mx, my, bool(obj.jaw_m))
    if mouth is not None:
        t_hit = t_hit + np.float32(obj.jaw_m) * mouth / np.maximum(az, 0.1)
    # Outward normal in object frame is -(Sx, Sy, 1)/n; the ray in object frame is A = R^T r, so
    # cos(normal, ray) = (Sx*Ax + Sy*Ay + Az) / (n * |r|).
    cos = (sx * ax + sy * ay + az) / (np.sqrt(1 + sx * sx + sy * sy) * view.ray_norm[v0:v1, u0:u1])
    albedo = cv2.remap(obj.albedo, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    np.copyto(region, t_hit, where=nearer)
    np.copyto(maps.albedo[v0:v1, u0:u1], albedo, where=nearer[..., None])
    np.copyto(maps.nir[v0:v1, u0:u1], nir, where=nearer)
    np.copyto(maps.shade[v0:v1, u0:u1], np.clip(cos, 0.0, 1.0), where=nearer)
    m: Material = s.material
    np.copyto(maps.object_id[v0:v1, u0:u1], obj.object_id, where=nearer)
    if blur is not None:
        np.copyto(maps.dot_blur[v0:v1, u0:u1], blur, where=nearer)
    else:
        np.copyto(maps.dot_blur[v0:v1, u0:u1], m.dot_blur_px, where=nearer)
    np.copyto(maps.specular[v0:v1, u0:u1], m.specular, where=nearer)
    np.copyto(maps.emissive[v0:v1, u0:u1], m.emissive, where=nearer)
    if s.gloss is not None and lights is not None:
        rows, cols = np.nonzero(nearer)
        _glints(view, s, R, mx[rows, cols], my[rows, cols], rx[rows, cols], ry[rows, cols], t_hit[rows, cols],
                (rows, cols), (v0, v1, u0, u1), maps, lights)


def _first_crossing(height, ts, axr, ayr, az, bxr, byr, bz) -> tuple[np.ndarray, np.ndarray]:
    """(first step k whose sample is behind the surface while step k-1's is in front, 0 if none;
    the samples f at every step). Arrays of any shape (a box, or packed rays)."""
    first = np.zeros(axr.shape, np.uint8)
    fs = np.empty((len(ts),) + axr.shape, np.float32)
    behind_prev = np.zeros(axr.shape, bool)
    for k, t in enumerate(ts):
        fs[k] = t * az + bz + _sample(height, t * axr + bxr, t * ayr + byr, MISS)
        behind = fs[k] >= 0
        if k:
            np.copyto(first, np.uint8(k), where=behind & ~behind_prev & (first == 0))
        behind_prev = behind
    return first, fs


def _bracket(height, ts, axr, ayr, az, bxr, byr, bz):
    """Per ray of a box: (found, lo, hi, f_lo, f_hi), the first step of ``ts`` that passes behind the
    surface. Large boxes search every other ray in each direction first and hand each ray its
    neighbour's step, checked by sampling that step's two ends; rays whose check fails (silhouettes,
    hole rims) are searched in full. Small boxes are searched in full."""
    h, w = axr.shape
    if h * w < 20000 or h < 8 or w < 8:
        first, fs = _first_crossing(height, ts, axr, ayr, az, bxr, byr, bz)
        found = first > 0
        kk = np.maximum(first, 1).astype(np.intp)[None]
        return (found, ts[kk[0] - 1], ts[kk[0]], np.take_along_axis(fs, kk - 1, axis=0)[0],
                np.take_along_axis(fs, kk, axis=0)[0])
    first_c, _ = _first_crossing(height, ts, np.ascontiguousarray(axr[::2, ::2]), np.ascontiguousarray(ayr[::2, ::2]),
                                 np.ascontiguousarray(az[::2, ::2]), bxr, byr, bz)
    near = cv2.dilate((first_c > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    k_f = first_c.repeat(2, axis=0).repeat(2, axis=1)[:h, :w]
    cand = near.repeat(2, axis=0).repeat(2, axis=1)[:h, :w]
    # Every ray checks its neighbour's step: the two ends sampled over the whole box (cheaper than
    # packing when, as usual, most of the box has a neighbour that hit).
    has = cand & (k_f > 0)
    k = np.maximum(k_f, 1).astype(np.intp)
    lo, hi = ts[k - 1], ts[k]
    f_lo = lo * az + bz + _sample(height, lo * axr + bxr, lo * ayr + byr, MISS)
    f_hi = hi * az + bz + _sample(height, hi * axr + bxr, hi * ayr + byr, MISS)
    found = has & (f_lo < 0) & (f_hi >= 0)
    rest = np.nonzero(cand & ~found)
    if rest[0].size:
        pack, unpack = _packer(rest)
        first, fs = _first_crossing(height, ts, pack(axr), pack(ayr), pack(az), bxr, byr, bz)
        kk = np.maximum(first, 1).astype(np.intp)[None]
        hit = unpack(first) > 0
        sel = (rest[0][hit], rest[1][hit])
        found[sel] = True
        lo[sel], hi[sel] = unpack(ts[kk[0] - 1])[hit], unpack(ts[kk[0]])[hit]
        f_lo[sel] = unpack(np.take_along_axis(fs, kk - 1, axis=0)[0])[hit]
        f_hi[sel] = unpack(np.take_along_axis(fs, kk, axis=0)[0])[hit]
    return found, lo, hi, f_lo, f_hi


def _secant(lo, hi, f_lo, f_hi) -> np.ndarray:
    """clip(lo - f_lo * (hi - lo) / denom, lo, hi), denom = f_hi - f_lo where above 1e-9, else 1."""
    denom = np.subtract(f_hi, f_lo)
    np.copyto(denom, np.float32(1.0), where=~(denom > 1e-9))
    mid = np.subtract(hi, lo)
    mid *= f_lo
    mid /= denom
    np.subtract(lo, mid, out=mid)
    return np.clip(mid, lo, hi, out=mid)


def _regula_falsi(f, lo, hi, f_lo, f_hi, n_refine: int) -> np.ndarray:
    """Refine inside the bracket by regula falsi (Illinois variant): the surface is smooth and
    nearly perpendicular to the rays, so a few steps reach sub-0.1 mm. Overwrites its float32
    bracket arrays (each caller passes arrays of its own)."""
    side = np.zeros(lo.shape, np.int8)
    half = np.float32(0.5)
    for _ in range(n_refine):
        mid = _secant(lo, hi, f_lo, f_hi)
        fm, _, _ = f(mid)
        behind = fm >= 0
        ahead = ~behind
        # Behind the surface: mid becomes hi (and f_lo is halved if lo was kept last time too);
        # in front: mid becomes lo (and f_hi is halved if hi was kept last time too).
        np.copyto(hi, mid, where=behind)
        np.multiply(f_hi, half, out=f_hi, where=ahead & (side == 1))
        np.copyto(f_hi, fm, where=behind)
        np.copyto(lo, mid, where=ahead)
        np.multiply(f_lo, half, out=f_lo, where=behind & (side == -1))
        np.copyto(f_lo, fm, where=ahead)
        side = np.where(behind, np.int8(-1), np.int8(1)).astype(np.int8)
    return _secant(lo, hi, f_lo, f_hi).astype(np.float32, copy=False)


def _packer(idx: tuple[np.ndarray, ...]):
    """(pack, unpack) for the elements ``idx`` of an array (box pixels, or a subset of packed rays):
    per-ray arrays as (rows, 512) (OpenCV's remap takes at most 32767 columns), padded with the last ray."""
    n = idx[0].size
    pad = (-n) % _PACK
    flat: dict[tuple[int, ...], np.ndarray] = {}     # per array shape: the elements' flat indices, padded

    def pack(a: np.ndarray) -> np.ndarray:
        f = flat.get(a.shape)
        if f is None:
            f = np.ravel_multi_index(idx, a.shape) if len(idx) > 1 else idx[0]
            if pad:
                f = np.concatenate([f, np.repeat(f[-1:], pad)])
            flat[a.shape] = f
        return np.take(a, f).reshape(-1, _PACK)

    def unpack(a: np.ndarray) -> np.ndarray:
        return a.reshape(-1, *a.shape[2:])[:n]
    return pack, unpack


def _flat(a: np.ndarray) -> np.ndarray:
    """A view of an image (H, W[, C]) as (H * W[, C]) pixels; refuses (raises) rather than copy."""
    v = a.view()
    v.shape = (-1,) + a.shape[2:]
    return v


def _refine_and_shade_packed(view: View, obj: Placed, s: Surface, R, box, maps: ViewMaps, lights, found,
                             lo, hi, f_lo, f_hi, axr, ayr, az, ax, ay, bxr, byr, bz, rx, ry) -> None:
    """The march's second half for boxes the object covers only partly (heads: corners, hair gaps):
    only the rays that found a bracket, packed; the same arithmetic per ray as the box path."""
    v0, v1, u0, u1 = box
    sel = np.nonzero(found)
    pack, unpack = _packer(sel)
    axr_s, ayr_s, az_s = pack(axr), pack(ayr), pack(az)
    height = s.height

    def f(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mx = t * axr_s + bxr
        my = t * ayr_s + byr
        return t * az_s + bz + _sample(height, mx, my, MISS), mx, my

    t_hit = _regula_falsi(f, pack(lo), pack(hi), pack(f_lo), pack(f_hi), s.march_steps[1])
    _, mx, my = f(t_hit)
    # Box pixels as flat indices, into the box's arrays and into the whole image's (maps, rays).
    w_img = maps.z.shape[1]
    img_sel = (sel[0] + v0) * w_img + (sel[1] + u0)
    shading = _shading_samples(s, mx, my)               # valid, sx, sy, nir at every bracketed ray
    keep = (unpack(shading[0]) > 0.999) & (unpack(t_hit) < _flat(maps.z)[img_sel])
    if not keep.any():
        return
    k1 = np.nonzero(keep)[0]
    rows, cols = sel[0][k1], sel[1][k1]
    at_box = rows * (u1 - u0) + cols
    at_img = img_sel[k1]
    pack2, unpack2 = _packer((k1,))
    t_hit, mx, my, az_k = (pack2(unpack(a)) for a in (t_hit, mx, my, az_s))
    blur, mouth = _material_samples(s, mx, my, bool(obj.jaw_m))
    if mouth is not None:
        t_hit = t_hit + np.float32(obj.jaw_m) * mouth / np.maximum(az_k, 0.1)
    _, sx, sy, nir = (unpack(a)[k1] for a in shading)  # at the kept hits
    cos = (sx * np.take(ax, at_box) + sy * np.take(ay, at_box) + np.take(az, at_box)) / \
        (np.sqrt(1 + sx * sx + sy * sy) * np.take(view.ray_norm, at_img))
    _flat(maps.z)[at_img] = unpack2(t_hit)
    _flat(maps.albedo)[at_img] = unpack2(cv2.remap(obj.albedo, mx, my, cv2.INTER_LINEAR,
                                                   borderMode=cv2.BORDER_REFLECT))
    _flat(maps.nir)[at_img] = nir
    _flat(maps.shade)[at_img] = np.clip(cos, 0.0, 1.0)
    m: Material = s.material
    _flat(maps.object_id)[at_img] = obj.object_id
    _flat(maps.dot_blur)[at_img] = unpack2(blur) if blur is not None else m.dot_blur_px
    _flat(maps.specular)[at_img] = m.specular
    _flat(maps.emissive)[at_img] = m.emissive
    if s.gloss is not None and lights is not None:
        _glints(view, s, R, unpack2(mx), unpack2(my), rx[rows, cols], ry[rows, cols], unpack2(t_hit), (rows, cols),
                box, maps, lights)


def _glints(view: View, s: Surface, R: np.ndarray, mx, my, rx, ry, t_hit, hits, box, maps: ViewMaps,
            lights: Lights) -> None:
    """Mirror images of the projector and the overhead lamp in glossy layers (spectacle lenses).
    ``mx``, ``my``: (N,) grid coordinates of the N hit pixels ``hits`` (rows, cols in ``box``)."""
    pack, unpack = _packer((np.arange(mx.size),))
    mx, my = pack(mx), pack(my)
    assert s.gloss is not None and s.gloss_slope is not None
    gloss = unpack(_sample(s.gloss, mx, my, 0.0))
    on = np.nonzero(gloss > 0)[0]
    if not on.size:
        return
    v0, v1, u0, u1 = box
    idx = (hits[0][on], hits[1][on])
    g = gloss[on]
    sx = unpack(_sample(np.ascontiguousarray(s.gloss_slope[..., 0]), mx, my, 0.0))[on]
    sy = unpack(_sample(np.ascontiguousarray(s.gloss_slope[..., 1]), mx, my, 0.0))[on]
    rx, ry, t_hit = rx[on], ry[on], t_hit[on]
    # Outward normal of the glossy layer in the object frame is -(Sx, Sy, 1)/n; into this view.
    n = -(np.stack([sx, sy, np.ones_like(sx)], axis=1) @ R.T)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    p = np.stack([rx, ry, np.ones_like(sx)], axis=1) * t_hit[:, None]
    to_cam = -p / np.linalg.norm(p, axis=1, keepdims=True)

    def lobe(to_light: np.ndarray, sigma: float) -> np.ndarray:
        h = to_light + to_cam
        h /= np.linalg.norm(h, axis=1, keepdims=True)
        cos = np.clip(np.sum(n * h, axis=1), -1, 1)
        return np.exp(-(1 - cos) / (sigma * sigma))   # ~ exp(-theta^2 / (2 sigma^2))

    e_inv_R = view.depth_to_view.R
    if lights.lamp_dir is not None:
        d = e_inv_R @ lights.lamp_dir
        # Equivalent albedo of the lamp's mirror image: R x (lamp radiance) / (face radiance per unit albedo).
        to_lamp = np.broadcast_to(d, p.shape)
        eq = g * lights.lamp_share / lights.lamp_radius_rad ** 2 * lobe(to_lamp, lights.lamp_radius_rad / 2)
        a = maps.albedo[v0:v1, u0:u1]
        a[idx] += eq[:, None].astype(np.float32)
        maps.nir[v0:v1, u0:u1][idx] += (eq if s.gloss_nir_ratio == 1.0 else eq * s.gloss_nir_ratio).astype(np.float32)
    if lights.projector_pos is not None:
        src = view.depth_to_view.apply(lights.projector_pos[None, :])[0]
        to_src = src - p
        to_src /= np.linalg.norm(to_src, axis=1, keepdims=True)
        eq = g / (4 * PROJECTOR_GLINT_SIGMA_RAD ** 2) * lobe(to_src, PROJECTOR_GLINT_SIGMA_RAD)
        if s.gloss_nir_ratio != 1.0:
            eq = eq * s.gloss_nir_ratio            # the projector's 850 nm, mirrored at the lens's 850 nm
        if s.gloss_dots:
            if maps.glint_dots is None:
                maps.glint_dots = np.zeros(maps.z.shape, np.float32)
            maps.glint_dots[v0:v1, u0:u1][idx] = eq.astype(np.float32)
            return
        if maps.glint is None:
            maps.glint = np.zeros(maps.z.shape, np.float32)
        maps.glint[v0:v1, u0:u1][idx] = eq.astype(np.float32)
