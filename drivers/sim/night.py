"""The ninth family's two lights: a CCTV camera's 850 nm flood, and a light that flickers.

``cctv_ir``: a bank lobby or vestibule at night, dimmed LED light (15-150 lux on the face), watched by
a ceiling dome camera 1-3 m from the face whose own 850 nm IR LEDs are on. A security camera switches
to night mode (IR-cut filter out, IR LEDs on) when its own scene falls below a few lux (typical
day/night thresholds, recalled from camera manuals: ~1-10 lux at its sensor, adjustable, or a schedule).
The dome looks at the door and the floor, far darker than the kiosk's lit face (the face's 15-150 lux
is vertical illuminance from the kiosk's own downlight), so its IR is on while the face is lit: the
first light here whose near infrared is not tied to its lux. The flood comes from one direction, fixed
per session (``IrFlood.draw``): the dome 25-65° above the face and 20-70° to either side of the
kiosk camera's axis, 1-3 m away. Its radiant intensity towards the face is 150-1200 mW/sr (log-uniform):
a dome's one or two 850 nm high-power SMD emitters, each of which gives about 0.3-1 W/sr at 1 A on its
axis (figures recalled from emitter datasheets such as Osram's SFH 4715AS, not read here), run below
their maximum current and spread over a wide lens's field, with the face off the beam's axis. The
irradiance at the face is I / d^2: 17-1200 mW/m^2.

On the simulator's NIR scale (``scene.LIGHT_NIR_SHARE``: a 3000 K black body gives 0.35 per lux), one
lux-equivalent stands for the black body's 850 nm spectral irradiance per lux over a 50 nm band
(the band the sim calls 850 nm: an 850 nm LED's output, ~30-40 nm wide, lies inside it): Planck at
3000 K with the CIE photopic curve (its Gaussian approximation) gives 1.59 mW/m^2 per lux in that band,
so 4.54 mW/m^2 per lux-equivalent (``MW_M2_PER_LUX_EQ``; the arithmetic is in
tests/drivers/sim/test_ninth_family.py). The flood brings 4-260 lux-equivalents to the face (the
projector's dots: 300 at 0.5 m), where the dimmed LED's own ambient brings 0.03-0.3.

Each pixel gets the flood by its distance to the dome (inverse square) and the cosine between its
surface normal (from the depth map's gradients) and the direction to the dome, plus 10 % of it as
fill (the vestibule's walls). What lies between a surface and the dome casts its shadow there, leaving
the fill alone (``cast_shadow``: spectacle rims on the cheeks, the nose, a fringe, the chin on the
neck, on the side away from the dome; a screen-space march on the depth map, so an occluder is taken
as solid for 5 cm behind the face the camera sees of it).
Skin also mirrors a point-like source: a live person's skin sheen
(``identity.SKIN_SHEEN``, drawn per person in this family only) adds a highlight where the surface's
normal is near the half-way vector between the dome and the camera. The colour camera's IR-cut filter
removes the flood entirely.

``flicker_led``: a branch lit (100-1000 lux) by LED panels on cheap drivers (no or too little
smoothing capacitance), whose light follows the rectified mains: modulated at twice the mains
frequency, 100 Hz (50 Hz mains) or 120 Hz (60 Hz mains), per session. Published measurements (the
US DOE CALiPER and PNNL surveys of LED products, IEEE 1789-2015's annexes; as recalled, not read here)
find LED products from ~0 to 100 % percent flicker, ((max - min) / (max + min)), with AC-LED and
capacitor-less drivers at 60-100 %; magnetic-ballast fluorescent lamps at ~20-40 %. IEEE 1789's
low-risk limit at 100-120 Hz is 0.08 x f = 8-9.6 % (no observable effect: 3.3-4 %). A session draws the
modulation depth m in 30-100 % (``FLICKER_DEPTH``). The light is modelled as 1 + m cos(2 pi f t + phi)
(the fundamental at 2 x mains with the measured percent flicker; a rectified sine's harmonics are left
out), its frequency off nominal by up to 0.1 % (grid frequency, recalled), its phase per session.

A frame's exposure of length T starting at t collects the light's mean over [t, t + T]:
1 + m (sin(w (t + T) + phi) - sin(w t + phi)) / (w T), w = 2 pi f (``Flicker.factor``). A short exposure
sees nearly the whole of m; an exposure of a whole number of periods (10 ms at 100 Hz) sees none. The
colour and IR exposures differ, so each stream sees its own depth. It applies to the ambient light only
(the lux in the colour image, the ambient NIR in IR), not the projector's dots or the screen's light.
The LED's NIR share is the cool-white LED's (0.002, as ``led``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .optics import View
from .render import ViewMaps

MW_M2_PER_LUX_EQ = 4.54            # 850 nm irradiance (mW/m^2 in the 50 nm band) one lux-equivalent stands for
FLOOD_MW_SR = (150.0, 1200.0)      # the dome's radiant intensity towards the face, log-uniform
FLOOD_DISTANCE_M = (1.0, 3.0)      # from the dome to the face
FLOOD_ELEVATION_DEG = (25.0, 65.0)  # above the face
FLOOD_AZIMUTH_DEG = (20.0, 70.0)   # to either side of the camera's axis
FLOOD_FILL = 0.10                  # the flood's share that reaches every surface from the walls
NEAR_M = 2.0                       # surfaces nearer than this get their own normals (the subject, the kiosk)
SHADOW_STEP_M = 0.002             # cast shadows: the march towards the lamp, in steps of about a half-resolution pixel
SHADOW_REACH_M = 0.040             # far enough for a nose's (20-25 mm high) or a spectacle rim's (10-15 mm) shadow
SHADOW_BIAS_M = 0.002              # a surface's own curvature between steps is not an occluder
SHADOW_THICKNESS_M = 0.05          # an occluder seen by the camera is taken as solid this far behind its face
SHEEN_ROUGHNESS_RAD = 0.35         # the highlight's angular width (skin's microfacet roughness, typical)
SKIN_NIR_TOLERANCE = 0.10          # a pixel of the live subject is skin when its 850 nm reflectance is this close
FLICKER_DEPTH = (0.30, 1.00)       # percent flicker, per session
MAINS_HZ = (50.0, 60.0)
GRID_DEVIATION = 0.001             # the mains frequency's relative deviation, drawn in +-this


@dataclass(frozen=True)
class IrFlood:
    """A point-like 850 nm source in the depth-camera frame (metres), with its irradiance (lux-equivalent)
    at the face's centre ``centre``."""

    position: tuple[float, float, float]
    centre: tuple[float, float, float]
    lux_eq: float
    # The geometry's sampling (every ``stride``-th pixel; the surface's reflectance at full resolution): 2 for
    # the CCTV flood; 4 for the eighteenth family's time-of-flight counter (holiday.py), whose flood is computed
    # every depth tick within the frameset's CPU budget.
    stride: int = 2

    @classmethod
    def draw(cls, rng: np.random.Generator, distance_m: float) -> IrFlood:
        intensity_mw_sr = float(np.exp(rng.uniform(*np.log(FLOOD_MW_SR))))
        d = float(rng.uniform(*FLOOD_DISTANCE_M))
        el = np.deg2rad(rng.uniform(*FLOOD_ELEVATION_DEG))
        az = np.deg2rad(rng.uniform(*FLOOD_AZIMUTH_DEG)) * float(rng.choice([-1.0, 1.0]))
        # From the face towards the dome: up (-y), to one side (x), towards the camera's side (-z).
        u = np.array([np.sin(az) * np.cos(el), -np.sin(el), -np.cos(az) * np.cos(el)])
        centre = np.array([0.0, 0.0, distance_m])
        pos = centre + d * u
        return cls(tuple(float(v) for v in pos), (0.0, 0.0, distance_m),   # type: ignore[arg-type]
                   irradiance_lux_eq(intensity_mw_sr, d))

    def signal(self, view: View, maps: ViewMaps, sheen: np.ndarray | None = None) -> np.ndarray:
        """(H, W) float32: the flood's light on the IR imager (lux-equivalent, as ``sensor.ir_signal``'s
        ambient): irradiance x 850 nm reflectance x (fill + (1 - fill) cos) x (1 - specular), plus the
        skin's highlight where ``sheen`` (per pixel, 0 elsewhere) is given. Surfaces beyond ``NEAR_M``
        (the room's far wall) are taken as facing the camera."""
        R, T = view.depth_to_view.R, view.depth_to_view.t
        lamp = (R @ np.asarray(self.position) + T).astype(np.float32)
        centre = R @ np.asarray(self.centre) + T
        k = np.float32(self.lux_eq * float(np.linalg.norm(lamp - centre)) ** 2)
        # The geometry (distance, normals, highlight) varies slowly over the image: computed at half (or
        # ``stride``) resolution and scaled up; the surface's own reflectance at full resolution.
        h, w = maps.z.shape
        st = self.stride
        z_full = maps.z[::st, ::st]
        z = np.where(np.isfinite(z_full), np.minimum(z_full, 10.0), 10.0).astype(np.float32)
        rays = view.rays[::st, ::st]
        sheen_half = None if sheen is None else sheen[::st, ::st]
        # Far surfaces: a wall facing the camera (normal -z), the inverse square from the lamp.
        px, py = rays[..., 0] * z, rays[..., 1] * z
        vx, vy, vz = lamp[0] - px, lamp[1] - py, lamp[2] - z
        r2 = vx * vx + vy * vy + vz * vz
        cos = np.clip(-vz / np.sqrt(r2), 0.0, 1.0)
        near = z < NEAR_M
        rows, cols = np.nonzero(near.any(axis=1))[0], np.nonzero(near.any(axis=0))[0]
        highlight = np.zeros(z.shape, np.float32)
        if rows.size:
            sl = (slice(max(int(rows[0]) - 1, 0), int(rows[-1]) + 2),
                  slice(max(int(cols[0]) - 1, 0), int(cols[-1]) + 2))
            x, y, zz = px[sl], py[sl], z[sl]
            nx, ny, nz = surface_normals(x, y, zz)
            r = np.sqrt(r2[sl])
            lx, ly, lz = vx[sl] / r, vy[sl] / r, vz[sl] / r
            c = np.clip(nx * lx + ny * ly + nz * lz, 0.0, 1.0)
            c = np.where(cast_shadow(view, z, (x, y, zz), (lx, ly, lz), near[sl] & (c > 0), st), 0.0, c)
            cos[sl] = np.where(near[sl], c, cos[sl])
            if sheen_half is not None and sheen_half[sl].any():
                # The highlight around the half-way vector between the lamp and the camera.
                d = np.sqrt(x * x + y * y + zz * zz)
                hx, hy, hz = lx - x / d, ly - y / d, lz - zz / d
                hn = np.sqrt(hx * hx + hy * hy + hz * hz)
                ch = np.clip((nx * hx + ny * hy + nz * hz) / hn, -1.0, 1.0)
                highlight[sl] = np.exp(-(np.arccos(ch) / SHEEN_ROUGHNESS_RAD) ** 2) * (c > 0)
        diffuse = cv2.resize((k / r2) * (FLOOD_FILL + (1.0 - FLOOD_FILL) * cos), (w, h),
                             interpolation=cv2.INTER_LINEAR)
        out = diffuse * maps.nir * (1.0 - maps.specular)
        if sheen is not None and highlight.any():
            out += cv2.resize((k / r2) * highlight, (w, h), interpolation=cv2.INTER_LINEAR) * sheen
        return out.astype(np.float32)


def cast_shadow(view: View, z: np.ndarray, points: tuple[np.ndarray, np.ndarray, np.ndarray],
                to_lamp: tuple[np.ndarray, np.ndarray, np.ndarray], lit: np.ndarray, stride: int = 2) -> np.ndarray:
    """Which of the ``lit`` points (view frame, metres; pixels of the half-resolution, or 1/``stride``, depth map
    ``z``) something nearer the camera hides from the lamp: each is stepped towards the lamp
    (``to_lamp``, unit) by ``SHADOW_STEP_M`` up to ``SHADOW_REACH_M``, and a step is in shadow where the
    depth map, read there (bilinear), lies more than ``SHADOW_BIAS_M`` and less than
    ``SHADOW_THICKNESS_M`` in front of it (a screen-space test: what the camera cannot see behind an
    occluder counts as solid for ``SHADOW_THICKNESS_M``)."""
    shadow = np.zeros(lit.shape, bool)
    idx = np.nonzero(lit)
    if not idx[0].size:
        return shadow
    p = np.stack([a[idx] for a in points], axis=-1).astype(np.float32)
    d = np.stack([a[idx] for a in to_lamp], axis=-1).astype(np.float32)
    zmap = np.asarray(z, dtype=np.float32)
    todo = np.arange(p.shape[0])             # the points no step has found hidden yet
    for t in np.arange(SHADOW_STEP_M, SHADOW_REACH_M + 1e-9, SHADOW_STEP_M, dtype=np.float32):
        q = p[todo] + t * d[todo]
        uv = view.project(q) / float(stride)   # full-resolution pixels to the reduced map's
        gap = q[:, 2] - _bilinear(zmap, uv[:, 0], uv[:, 1])
        hit = (gap > SHADOW_BIAS_M) & (gap < SHADOW_THICKNESS_M)
        shadow[idx[0][todo[hit]], idx[1][todo[hit]]] = True
        todo = todo[~hit]
        if not todo.size:
            break
    return shadow


def _bilinear(img: np.ndarray, u: np.ndarray, v: np.ndarray, outside: float = 10.0) -> np.ndarray:
    """``img`` read at (column ``u``, row ``v``) by bilinear interpolation; ``outside`` off the image."""
    h, w = img.shape
    inside = (u >= 0) & (v >= 0) & (u <= w - 1) & (v <= h - 1)
    uc, vc = np.clip(u, 0, w - 1), np.clip(v, 0, h - 1)
    u0, v0 = np.minimum(uc.astype(np.intp), w - 2), np.minimum(vc.astype(np.intp), h - 2)
    fu, fv = uc - u0, vc - v0
    top = img[v0, u0] * (1 - fu) + img[v0, u0 + 1] * fu
    bottom = img[v0 + 1, u0] * (1 - fu) + img[v0 + 1, u0 + 1] * fu
    return np.where(inside, top * (1 - fv) + bottom * fv, outside)


def irradiance_lux_eq(intensity_mw_sr: float, distance_m: float) -> float:
    """A point source's 850 nm irradiance (I / d^2) on the sim's scale."""
    return intensity_mw_sr / distance_m ** 2 / MW_M2_PER_LUX_EQ


def surface_normals(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit normals (x, y, z components) of a point map, turned towards the camera (-z)."""
    xu, yu, zu = np.gradient(x, axis=1), np.gradient(y, axis=1), np.gradient(z, axis=1)
    xv, yv, zv = np.gradient(x, axis=0), np.gradient(y, axis=0), np.gradient(z, axis=0)
    nx, ny, nz = yu * zv - zu * yv, zu * xv - xu * zv, xu * yv - yu * xv
    norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    norm = np.where(nz > 0, -norm, norm)
    norm = np.where(norm == 0, np.float32(-1.0), norm)
    return nx / norm, ny / norm, nz / norm


@dataclass(frozen=True)
class Flicker:
    """Light that follows 1 + depth cos(2 pi hz t + phase) (t in seconds)."""

    hz: float
    depth: float
    phase: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Flicker:
        mains = float(rng.choice(MAINS_HZ))
        hz = 2.0 * mains * (1.0 + float(rng.uniform(-GRID_DEVIATION, GRID_DEVIATION)))
        return cls(hz, float(rng.uniform(*FLICKER_DEPTH)), float(rng.uniform(0.0, 2 * np.pi)))

    def factor(self, t0_s: float, exposure_s: float) -> float:
        """The light's mean over an exposure [t0, t0 + exposure], relative to its average."""
        w = 2 * np.pi * self.hz
        if exposure_s * w < 1e-6:
            return 1.0 + self.depth * float(np.cos(w * t0_s + self.phase))
        return 1.0 + self.depth * float(np.sin(w * (t0_s + exposure_s) + self.phase)
                                        - np.sin(w * t0_s + self.phase)) / (w * exposure_s)


def ambient_ir(maps: ViewMaps, lux: float, share: float) -> np.ndarray:
    """The ambient part of ``sensor.ir_signal``: lux x share x nir x (1 - specular) x (0.3 + 0.7 shade)."""
    return (lux * share * maps.nir * (1.0 - maps.specular) * (0.3 + 0.7 * maps.shade)).astype(np.float32)
