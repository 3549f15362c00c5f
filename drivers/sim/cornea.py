"""The cornea's mirror images of the projector and the overhead lamp (the first Purkinje image), ``cornea=1``.

Without this module the simulator draws an eye as skin: no light source is mirrored in it. A real
cornea is a tear-coated sphere of ~7.8 mm radius (anterior corneal surface; refractive index 1.376, the
schematic eye's constants, e.g. the "constants of the eye" table in Millodot's Dictionary of Optometry), so
a light source far away is mirrored as an erect virtual image at the sphere's focal point, r/2 = 3.9 mm
behind its surface (the corneal light reflex "is subcorneal in position and is 3 to 4 mm behind the
anterior surface of the cornea", Arch Ophthalmol 2007;125(7):996; Schwartz, *Geometrical and Visual
Optics*, ch. 14: Purkinje image I at +3.90 mm for r = 7.80 mm). The image is tiny (a source of angular
radius θ gives one of θ r / 2: 0.4 mm for a lamp of 0.1 rad, 0.02 mm for a 5 mm projector window at
0.4 m), far under a pixel at a kiosk's 350-520 mm, so it is drawn in closed form as a point spread over
the lens's blur, not ray-marched.

Closed forms used (tests/sim/test_cornea.py checks each):

* Fresnel at normal incidence, ((n - 1) / (n + 1))^2 = 0.0250 for n = 1.376; at incidence i the
  unpolarised Fresnel reflectance (``fresnel``).
* A specular sphere of radius a under a distant source of irradiance E mirrors an intensity
  I = R E a^2 / 4 (W/sr) into every direction. A Lambertian patch of albedo 1 seen at depth z through a
  pixel of footprint (z / f)^2 sends E (z / f)^2 / π the same way, so the glint's *equivalent albedo*,
  summed over the pixels it spreads into, is π R a^2 f^2 / (4 z^2): 1.09 for a 640x480 D435 (f 383 px)
  at 400 mm, 2.63 for a D415 (f 593 px). A projector dot on white paper is 1 (x the dot's own value).
* Where the glint sits: the point of the sphere whose normal bisects the directions from the centre of
  curvature to the source and to the camera (exact for sources far beyond a; both are 50-1000x a).
* The projector is a dot pattern, not a lamp: seen from the eye its window is bright only when the eye
  stands in a dot, so the projector's glint is the pattern's irradiance at the glint's point (the
  flood floor 0.25 plus whatever dot lands there; ``sensor.ir_signal`` samples it). A lamp is always on.

Where the glint can be seen: on the cornea (the glint's normal within 48.6° of the eye's axis, asin of
the 5.85 mm limbus radius over 7.8 mm), between the lids (upper lid 4.5 mm over the corneal centre,
lower 5 mm under it, the upper lid closing with the blink), and not behind anything nearer (nose,
frames: the rendered depth at its pixel). Through a spectacle lens it is dimmed by the lens's
transmission twice. The eyes look at the camera (the kiosk's screen sits just below it; a gaze model is
not part of this key). The cornea is not added to the height field: active stereo sees through it, the
projector's dots and the texture it matches lying on the iris, whose image through the cornea (the
entrance pupil) sits ~3.0 mm behind the corneal apex, about where the limbus plane is (the schematic eye:
iris plane 3.6 mm behind the apex, seen 1.13x magnified at ~3.0 mm). Sources, docs/sim.md *The cornea*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_CORNEA = 1.376
RADIUS_M = 0.0078           # anterior corneal surface
LIMBUS_M = 0.00585          # half the visible iris diameter (11.7 mm)
APEX_TO_ROTATION_M = 0.0135  # corneal apex to the eye's centre of rotation
APEX_OVER_SKIN_M = 0.003    # corneal apex in front of the rendered eye surface (the iris's image)
UPPER_LID_M = 0.0045        # lids' margins above / below the corneal centre, eyes open
LOWER_LID_M = 0.005
GLINT_PSF_PX = 0.5          # the lens's blur: the point image spread over ~3x3 pixels
MAX_ANGLE_RAD = float(np.arcsin(LIMBUS_M / RADIUS_M))


def fresnel(cos_i: float | np.ndarray, n: float = N_CORNEA) -> float | np.ndarray:
    """Unpolarised Fresnel reflectance of a dielectric of index ``n`` from air at incidence cos ``cos_i``."""
    c = np.clip(cos_i, 1e-6, 1.0)
    s = np.sqrt(np.maximum(n * n - 1.0 + c * c, 0.0))
    rs = ((c - s) / (c + s)) ** 2
    rp = ((n * n * c - s) / (n * n * c + s)) ** 2
    return 0.5 * (rs + rp)


def sphere_glint_albedo(reflectance: float, radius_m: float, fx: float, z_m: float) -> float:
    """Equivalent albedo (summed over pixels) of a specular sphere's mirror image of a distant source."""
    return float(np.pi * reflectance * radius_m ** 2 * fx * fx / (4.0 * z_m * z_m))


@dataclass(frozen=True)
class Eye:
    """One eye in its head's object frame (x right, y down, z away from the camera; metres)."""

    apex: tuple[float, float, float]    # the corneal apex with the eye looking straight ahead (-z)
    lens_t2_nir: float = 1.0            # a spectacle lens's transmission, squared (there and back)
    lens_t2_vis: float = 1.0
    radius_m: float = RADIUS_M          # the person's anterior corneal radius (the fourteenth family's own)
    limbus_m: float = LIMBUS_M          # half their visible corneal diameter


@dataclass(frozen=True)
class Glint:
    """A corneal glint in one view: image position, depth, and its equivalent albedo summed over pixels."""

    u: float
    v: float
    z: float
    albedo: float


def eyes_for(layers, eye_weight: np.ndarray | None, x0: float, y0: float, res: float,
             glasses: str, radius_m: float = RADIUS_M, limbus_m: float = LIMBUS_M) -> tuple[Eye, ...]:
    """The eyes of a head (``head.HeadLayers``) that a surface shows: those whose landmark cell keeps an
    eye weight (a worn instrument over the eye sets it to 0; a surface that cannot blink has none);
    ``radius_m``, ``limbus_m``: the person's cornea (the schematic eye's unless drawn, identity.py)."""
    if eye_weight is None:
        return ()
    out = []
    t2 = {"none": (1.0, 1.0), "clear": (0.92 ** 2, 0.92 ** 2), "tinted": (0.83 ** 2, 0.22 ** 2)}[glasses]
    for ex, ey in layers.landmarks.eyes:
        j, i = int(round((ey - y0) / res)), int(round((ex - x0) / res))
        if not (0 <= j < eye_weight.shape[0] and 0 <= i < eye_weight.shape[1]) or eye_weight[j, i] < 0.5:
            continue
        gj, gi = int(round((ey - layers.gy[0, 0]) / res)), int(round((ex - layers.gx[0, 0]) / res))
        h = float(layers.face_height[gj, gi])
        out.append(Eye((float(ex), float(ey), -(h + APEX_OVER_SKIN_M)), t2[0], t2[1], radius_m, limbus_m))
    return tuple(out)


def _glint_point(centre: np.ndarray, axis: np.ndarray, to_src: np.ndarray, to_cam: np.ndarray,
                 radius_m: float = RADIUS_M, max_angle: float = MAX_ANGLE_RAD
                 ) -> tuple[np.ndarray, float, np.ndarray] | None:
    """(point, cos of incidence, normal) of the sphere's glint, or None off the cornea."""
    n = to_src + to_cam
    n /= np.linalg.norm(n)
    if float(n @ axis) < np.cos(max_angle):
        return None
    return centre + radius_m * n, float(n @ to_cam), n


def glints(view, R: np.ndarray, T: np.ndarray, eyes: tuple[Eye, ...], eyes_closed: float, z_map: np.ndarray,
           source: np.ndarray | None, direction: np.ndarray | None, share: float, nir: bool) -> list[Glint]:
    """Glints of one light in ``view`` for a head posed at (R, T) (depth frame). ``source``: a point
    light's position (the projector, depth frame), or ``direction``: a distant one's unit vector (the lamp,
    depth frame) with ``share`` of the ambient irradiance. ``z_map``: the view's rendered depth, for
    occlusion."""
    out: list[Glint] = []
    if not eyes or eyes_closed >= 1.0:
        return out
    Rv = view.depth_to_view.R @ R
    Tv = view.depth_to_view.R @ T + view.depth_to_view.t
    intr = view.intrinsics
    for eye in eyes:
        rot_c = Rv @ (np.array(eye.apex) + np.array([0.0, 0.0, APEX_TO_ROTATION_M])) + Tv
        # The eye turns about its centre of rotation to look at the camera (the view's origin).
        gaze = -rot_c / np.linalg.norm(rot_c)
        r = eye.radius_m
        centre = rot_c + gaze * (APEX_TO_ROTATION_M - r)
        to_cam = -centre / np.linalg.norm(centre)
        if source is not None:
            src = view.depth_to_view.apply(source[None, :])[0]
            to_src = (src - centre) / np.linalg.norm(src - centre)
        else:
            assert direction is not None
            to_src = view.depth_to_view.R @ direction
        max_angle = MAX_ANGLE_RAD if (r == RADIUS_M and eye.limbus_m == LIMBUS_M) \
            else float(np.arcsin(min(eye.limbus_m / r, 1.0)))
        hit = _glint_point(centre, gaze, to_src, to_cam, r, max_angle)
        if hit is None:
            continue
        p, cos_i, _ = hit
        # The lids, in the head's frame: the glint's height over the corneal centre's.
        dy = float((Rv.T @ (p - centre))[1])
        upper = -UPPER_LID_M + eyes_closed * (UPPER_LID_M + LOWER_LID_M)
        if not (upper < dy < LOWER_LID_M):
            continue
        u = intr.fx * p[0] / p[2] + intr.ppx
        v = intr.fy * p[1] / p[2] + intr.ppy
        iu, iv = int(round(u)), int(round(v))
        if not (0 <= iu < intr.width and 0 <= iv < intr.height):
            continue
        if float(z_map[iv, iu]) < p[2] - APEX_OVER_SKIN_M - 0.0015:
            continue                                    # something nearer covers it
        t2 = eye.lens_t2_nir if nir else eye.lens_t2_vis
        albedo = sphere_glint_albedo(float(fresnel(cos_i)), r, intr.fx, float(p[2])) * share * t2
        out.append(Glint(float(u), float(v), float(p[2]), albedo))
    return out


def splat_weights(u: float, v: float, sigma: float = GLINT_PSF_PX) -> tuple[int, int, np.ndarray]:
    """(row0, col0, 5x5 weights summing to 1) of a point image at (u, v) blurred by the lens."""
    c0, r0 = int(round(u)) - 2, int(round(v)) - 2
    xs = np.arange(c0, c0 + 5) - u
    ys = np.arange(r0, r0 + 5) - v
    w = np.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma * sigma))
    return r0, c0, (w / w.sum()).astype(np.float32)


def add_splat(img: np.ndarray, u: float, v: float, amount: float | np.ndarray) -> None:
    """``img`` += ``amount`` x the point's 5x5 weights (clipped at the image's edge). ``amount``: a scalar
    or a 5x5 array (per-pixel factors)."""
    r0, c0, w = splat_weights(u, v)
    h, wd = img.shape[:2]
    ra, rb, ca, cb = max(r0, 0), min(r0 + 5, h), max(c0, 0), min(c0 + 5, wd)
    if ra >= rb or ca >= cb:
        return
    add = (w * amount)[ra - r0:rb - r0, ca - c0:cb - c0]
    if img.ndim == 3:
        img[ra:rb, ca:cb] += add[..., None].astype(img.dtype)
    else:
        img[ra:rb, ca:cb] += add.astype(img.dtype)
