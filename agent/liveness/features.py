"""Physical liveness cues, measured on aligned framesets and the face found by the quality gate.

Every cue is a quantity with a physical meaning, so it can be recalibrated on real sensors:

- **depth geometry** — how far the measured face surface departs from a plane and from a vertical
  cylinder (a flat or curved print), and how far the nose stands out of the cheek plane (a face's
  relief is 15–35 mm; paper has none).
- **scale consistency** — the distance implied by the pupils' spacing in the image (adult IPD
  ≈ 63 mm) against the measured depth at the eyes: a face shown smaller or larger than life (a
  screen, a printed photo) disagrees.
- **IR material** — skin is bright at 850 nm and scatters the projector's dots under the
  surface (softer dots, lower speckle contrast); paper, resin and plaster keep them sharp; screens
  return almost nothing. Measured on the IR image carried with the depth.
- **cross-modal** — the RGB face must coincide with a depth surface and a bright IR face.
- **motion** — living faces never hold still (breathing, micro-saccades) and blink; prints, masks
  and head models move rigidly or not at all.
- **sensor noise** — a physical stereo sensor has depth noise; a synthetic/injected stream is often
  noiseless or too smooth.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np

from agent.liveness.dotref import DotReference, PairBands, PatternBands, match_pattern
from agent.liveness.power import MAX_CLIPPED_SHARE, MIN_PROJECTOR_SHARE, MIN_PROJECTOR_SNR, SATURATED_DN
from agent.pipeline import inplace
from agent.pipeline.align import AlignedFrameSet, scratch, to_metres
from agent.pipeline.camera_model import deproject, project
from agent.quality.depth import OCCLUDER_MARGIN_MM
from agent.quality.gate import FaceObservation
from agent.quality.metrics import FACE_OVAL, discs_mask, polygon_mask
from drivers.frame import FrameSet, Intrinsics, StreamKind

NOSE_TIP = 4
NOSE_BRIDGE = 168              # between the eyes, on the bridge of the nose
CHEEKS = (50, 280, 117, 346, 123, 352, 205, 425)
EYE_CENTRES = (468, 473)       # not in the 468 mesh: we use the irises instead
IPD_MEAN_M = 0.063
SKIN_PATCHES = (50, 280, 205, 425, 151, 9, 108, 337)
# The skin patches on the forehead (mid forehead, between the brows, above each brow): where a
# fringe falls and a spectacle frame's bridge and brow bar lie (``pair_light``'s ``forehead``).
FOREHEAD_PATCHES = (151, 9, 108, 337)
# The skin patches beside the nose, under the cheekbones: out of a spectacle frame's reach (its lower
# rim and nose pads end at the upper cheek discs, 50 and 280; ``pair_light``'s ``lower``), but with the
# chin down, when the lower rim slides over their upper rows: those pixels are left out of them
# (``clear_of_rims``).
LOWER_PATCHES = (205, 425)
# Discs over the eyes themselves (each eye's corners and its lids' middles), where a printed eye band
# lies whatever its shape: the projector's dots are read there too under a challenge
# (``pair_light``'s ``eyes``, the cue ``projector_sharpness_eyes``). A band pressed onto the face keeps
# the wearer's own eye recess, and the material region's discs never reach it (docs/liveness.md,
# "A printed eye band pressed onto the face").
# Their radius: 0.12 eye spacings (7.6 mm at 63 mm). At 0.08 the discs held 211-375 px on the D435s and
# Gemini 2s, a few dozen dots, and which dots fell there moved a face's reading by +-0.3-0.4 (train's
# lives and printed eyes overlapped); at 0.12 they hold about twice the pixels and the train family
# separates again. They reach about 12 mm below the eye line; a band cut at the lower lid (5 mm below)
# still reads sharp on them (docs/liveness.md, "The eye discs at 0.12").
EYE_PATCHES = (33, 133, 159, 145, 362, 263, 386, 374)
EYE_RADIUS_IPD = 0.12
SKIN_RADIUS_IPD = 0.1           # the skin patches' radius, times the eyes' spacing
# The projector material measure's own skin region (``material_skin``): the same landmarks' discs at
# twice the radius, kept this far inside the face's oval (a turned head brings the cheeks' discs to
# the face's edge). About three times the skin patches' pixels, so three times the dots: which dots
# fell on the skin moves a session's reading less (docs/liveness.md, "More dots per session").
MATERIAL_RADIUS_IPD = 0.2
MATERIAL_INSET_IPD = 0.1


@dataclass(frozen=True)
class FrameCues:
    plane_rms_mm: float
    cylinder_rms_mm: float
    nose_prominence_mm: float
    scale_ratio: float            # depth at the eyes / distance implied by the IPD
    depth_share: float            # face oval with depth
    ir_face_level: float          # mean IR on skin patches, distance-compensated (x z^2)
    ir_face_contrast: float       # IR on the face / the frame's bright end (99th percentile)
    speckle_contrast: float       # high-pass IR energy / mean on skin patches
    dot_sharpness: float          # fine-band / coarse-band IR energy on skin patches (aligned to colour)
    ir_dot_sharpness: float       # the same in the IR imager's own pixels (no resampling)
    eye_openness: float
    eye_recess_mm: float          # how far the eyes sit behind the nose bridge (NaN without depth there)
    eye_dot_sharpness: float      # dot sharpness over the eye region (a printed band, printed lenses)
    landmarks: np.ndarray         # (468, 2) for motion across frames (kept in memory only)
    ipd_px: float
    face_depth_m: float


@dataclass(frozen=True)
class FaceRoi:
    """The face's neighbourhood in an aligned frameset: every cue is measured inside it. Its margin
    exceeds the widest Gaussian kernel used here (σ 5 → radius 20 px), so filtered values on the
    face are the same as on the whole frame, at a fraction of the cost.

    ``valid`` and ``depth_m`` are the ROI's own copies (C-contiguous; in the liveness worker the
    judge thread's kept temporaries, ``align.scratch``: a ``FaceRoi`` lives only within the call
    that made it), ``ir`` a view into the aligned IR."""

    x0: int
    y0: int
    valid: np.ndarray
    depth_m: np.ndarray
    ir: np.ndarray | None
    ppx: float                    # color intrinsics, shifted to the ROI
    ppy: float
    fx: float
    fy: float

    @property
    def shape(self) -> tuple[int, int]:
        return self.valid.shape

    def local(self, pts: np.ndarray) -> np.ndarray:
        return pts - np.array([self.x0, self.y0], dtype=pts.dtype)


ROI_MARGIN_PX = 24


def face_roi(aligned: AlignedFrameSet, face: FaceObservation) -> FaceRoi:
    lm = face.mesh.landmarks[:, :2]
    h, w = aligned.depth_m.shape
    margin = max(ROI_MARGIN_PX, int(0.25 * face.mesh.ipd_px))
    x0, y0 = (int(max(np.floor(v) - margin, 0)) for v in lm.min(axis=0))
    x1 = int(min(np.ceil(lm[:, 0].max()) + margin + 1, w))
    y1 = int(min(np.ceil(lm[:, 1].max()) + margin + 1, h))
    i = aligned.color.intrinsics
    # ``aligned.valid`` would be a new whole-frame mask; only the ROI's is needed.
    units = aligned.depth_u16[y0:y1, x0:x1]
    shape = units.shape
    valid = np.greater(units, 0, out=scratch("features.roi.valid", shape, np.bool_))
    # The ROI's metres, converted from its units here (the aligned frameset holds only the units).
    depth_m = aligned.depth_m.into((slice(y0, y1), slice(x0, x1)),
                                   scratch("features.roi.depth_m", shape, np.float32))
    return FaceRoi(x0, y0, valid, depth_m,
                   aligned.ir[y0:y1, x0:x1] if aligned.ir is not None else None,
                   i.ppx - x0, i.ppy - y0, i.fx, i.fy)


def leave_out_in_front(roi: FaceRoi, nose: np.ndarray, ipd: float) -> int:
    """Marks the pixels of ``roi`` standing in front of the nose tip (at ``nose``, ROI pixels) by the
    quality gate's ``OCCLUDER_MARGIN_MM`` as without depth (``roi.valid``), so that no cue reads them
    as the face: within the capture's yaw nothing of a face stands there, and the gate lets one such
    thing through, a cap's brim above the eyes (``agent.quality.depth.FaceDepth.brim``). The nose
    tip's depth is the median over its disc of 0.06 eye spacings (at least 2 px), as the gate's;
    with fewer than 3 pixels of depth there nothing is left out (the gate has no evidence then
    either). A face with nothing in front of it keeps every pixel. Returns how many were left out."""
    disc = discs_mask(roi.shape, nose[None, :], max(0.06 * ipd, 2.0)) & roi.valid
    if disc.sum() < 3:
        return 0
    limit = np.float32(float(np.median(roi.depth_m[disc])) - OCCLUDER_MARGIN_MM / 1000)
    before = int(np.count_nonzero(roi.valid))
    keep = np.greater_equal(roi.depth_m, limit, out=scratch("features.roi.behind_nose", roi.shape, np.bool_))
    np.logical_and(roi.valid, keep, out=roi.valid)
    return before - int(np.count_nonzero(roi.valid))


def _points(roi: FaceRoi, mask: np.ndarray, name: str) -> np.ndarray:
    """(N, 3) points (m) of ``mask``'s pixels with depth, in row-major order: what
    ``np.nonzero``, fancy indexing and ``np.c_`` give, made in the thread's temporaries (``name``
    tells a caller's sets apart; the points are valid until the next call with that name)."""
    h, w = roi.shape
    sel = np.logical_and(mask, roi.valid, out=scratch("features.points.sel", (h, w), np.bool_))
    n = int(np.count_nonzero(sel))
    p = scratch(f"features.points.{name}", (n, 3), np.float64)
    # The selected pixels' columns and rows, in the order ``np.nonzero`` lists them (row-major), by
    # OpenCV into a kept array (numpy selects only into new arrays: ``nonzero``, ``compress``).
    xy = scratch("features.points.xy", (n, 1, 2), np.int32)
    if n:
        xy = cv2.findNonZero(sel.view(np.uint8), xy)
    # Each one's column and row as float64 (exact: the arithmetic is ``(u - ppx) / fx * z`` as it
    # was on the integer indices), then its depth, through its flat index.
    u, v = scratch("features.points.u", (n,), np.float64), scratch("features.points.v", (n,), np.float64)
    np.copyto(u, xy[:, 0, 0])
    np.copyto(v, xy[:, 0, 1])
    flat = scratch("features.points.flat", (n,), np.intp)
    np.copyto(flat, xy[:, 0, 1])
    np.add(np.multiply(flat, w, out=flat), xy[:, 0, 0], out=flat)
    z32 = np.take(roi.depth_m.ravel(), flat, out=scratch("features.points.z32", (n,), np.float32), mode="clip")
    z = p[:, 2]
    np.copyto(z, z32)
    for coord, pp, f, out in ((u, roi.ppx, roi.fx, p[:, 0]), (v, roi.ppy, roi.fy, p[:, 1])):
        np.subtract(coord, pp, out=coord)
        np.divide(coord, f, out=coord)
        np.multiply(coord, z, out=out)
    return p


def _fit_rms(a: np.ndarray, z: np.ndarray) -> float:
    """RMS residual of the least-squares fit of ``z`` by ``a``'s columns (``(a @ coef - z) ** 2``'s
    mean, its residuals in the thread's temporaries)."""
    coef, *_ = np.linalg.lstsq(a, z, rcond=None)
    r = np.matmul(a, coef, out=scratch("features.fit_rms.r", (len(z),), np.float64))
    np.subtract(r, z, out=r)
    np.square(r, out=r)
    return float(np.sqrt(np.mean(r)))


def _geometry(roi: FaceRoi, face: FaceObservation, p: np.ndarray) -> tuple[float, ...]:
    """Plane and cylinder fit RMS (m), nose prominence (mm), scale ratio and eye depth (m)."""
    lm = roi.local(face.mesh.landmarks[:, :2])
    ipd = face.mesh.ipd_px
    shape = roi.shape
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    n = len(p)
    # The design matrices np.c_[x, y, 1] and np.c_[x'^2, x', y', 1], built in the thread's temporaries.
    design = scratch("features.geometry.plane", (n, 3), np.float64)
    design[:, 0], design[:, 1], design[:, 2] = x, y, 1.0
    plane = _fit_rms(design, z)
    # Cylinder about the face's vertical axis (rotate by roll first): z quadratic in x'.
    a = np.deg2rad(face.roll)
    cos_a, sin_a = np.cos(a), np.sin(a)
    design = scratch("features.geometry.cylinder", (n, 4), np.float64)
    t = scratch("features.geometry.t", (n,), np.float64)
    xr, yr = design[:, 1], design[:, 2]
    np.add(np.multiply(cos_a, x, out=xr), np.multiply(sin_a, y, out=t), out=xr)      # cos a x + sin a y
    np.add(np.multiply(-sin_a, x, out=yr), np.multiply(cos_a, y, out=t), out=yr)     # -sin a x + cos a y
    np.multiply(xr, xr, out=design[:, 0])
    design[:, 3] = 1.0
    cylinder = _fit_rms(design, z)
    # Nose prominence: nose tip against the plane through the cheeks, in mm.
    cheek = _points(roi, discs_mask(shape, lm[list(CHEEKS)], 0.12 * ipd), "cheek")
    nose = _points(roi, discs_mask(shape, lm[[NOSE_TIP]], 0.06 * ipd), "nose")
    if len(cheek) >= 10 and len(nose) >= 1:
        ca = np.c_[cheek[:, 0], cheek[:, 1], np.ones(len(cheek))]
        coef, *_ = np.linalg.lstsq(ca, cheek[:, 2], rcond=None)
        nz = np.array([nose[:, 0].mean(), nose[:, 1].mean(), 1.0]) @ coef
        prominence = float((nz - inplace.median(nose[:, 2])) * 1000)
    else:
        prominence = float("nan")
    # Scale: where the eyes really are vs where a life-size face with this IPD would be.
    pupils = roi.local(np.array(face.mesh.pupils, dtype=np.float64))
    eye_mask = discs_mask(shape, pupils, 0.15 * ipd)
    eye_z = roi.depth_m[eye_mask & roi.valid]
    face_depth = float(np.median(eye_z)) if eye_z.size else float(inplace.median(z))
    z_from_ipd = roi.fx * IPD_MEAN_M / max(ipd, 1e-6)
    scale_ratio = face_depth / z_from_ipd
    return plane, cylinder, prominence, scale_ratio, face_depth


def bright_end(ir: np.ndarray, valid: np.ndarray, q: float = 99.0) -> float:
    """``np.percentile(ir[valid], q)`` (linear interpolation), from a histogram: IR is integer.
    8-bit IR under a C-contiguous mask is counted by OpenCV's histogram (exact counts) without
    selecting the values, which would make two frame-sized arrays (the values, then as intp)."""
    if ir.dtype == np.uint8 and valid.dtype == np.bool_ and valid.shape == ir.shape and valid.flags.c_contiguous:
        counts = cv2.calcHist([ir], [0], valid.view(np.uint8), [256], [0, 256]).ravel().astype(np.int64)
        n = int(counts.sum())
    else:
        vals = ir[valid]
        n = vals.size
        if n == 0:
            return 0.0
        counts = np.bincount(vals.ravel(), minlength=1)
    if n == 0:
        return 0.0
    cum = np.cumsum(counts)
    pos = q / 100.0 * (n - 1)
    lo, frac = int(np.floor(pos)), pos - np.floor(pos)
    a = int(np.searchsorted(cum, lo + 1))           # value of the lo-th order statistic (0-based)
    b = int(np.searchsorted(cum, min(lo + 2, n)))
    return float(a + (b - a) * frac)


def measure_frame(aligned: AlignedFrameSet, face: FaceObservation) -> tuple[FrameCues, IrSkin | None]:
    """One frame's cues (:func:`frame_cues`) and the material measure's skin region
    (:func:`material_skin`), on which the projector's light on the skin is measured when the frame
    is the lit one of an on-off pair (:func:`projector_light_on`). The two read nothing of each
    other (the judge reads a window's last frameset's two on two threads, ``judge._LastFace``)."""
    return frame_cues(aligned, face), material_skin(aligned, face)


def frame_cues(aligned: AlignedFrameSet, face: FaceObservation) -> FrameCues:
    """One frame's cues (geometry, IR on skin; the skin patches in the IR imager's pixels,
    :func:`ir_skin`, for its native dot sharpness). Reads ``aligned`` and ``face``, changes
    neither (its region's depth and mask are its thread's own copies, ``face_roi``)."""
    roi = face_roi(aligned, face)
    lm = roi.local(face.mesh.landmarks[:, :2])
    ipd = face.mesh.ipd_px
    shape = roi.shape
    leave_out_in_front(roi, lm[NOSE_TIP], ipd)
    oval = polygon_mask(shape, lm[list(FACE_OVAL)])
    # Inner face: shrink the oval so silhouette edges and hair do not count.
    inner = cv2.erode(oval.astype(np.uint8), np.ones((5, 5), np.uint8), iterations=max(1, int(ipd / 20))) > 0
    depth_share = float(roi.valid[oval].mean()) if oval.any() else 0.0
    p = _points(roi, inner, "inner")
    nan = float("nan")
    plane = cylinder = prominence = scale_ratio = face_depth = nan
    if len(p) >= 50:
        plane, cylinder, prominence, scale_ratio, face_depth = _geometry(roi, face, p)
    # else: a face in colour with (almost) no depth behind it — a screen's glass, say. That is
    # evidence in itself (low depth_share); geometry stays NaN and counts as no relief.
    # IR on skin.
    ir_level = ir_contrast = speckle = sharpness = eye_sharpness = float("nan")
    if roi.ir is not None:
        # The ROI's IR as float32, its three blurs and each band (a difference of two) are the
        # thread's temporaries; the arithmetic is as it was (``ir - g2`` into ``band``, say).
        ir = scratch("features.frame.ir", roi.ir.shape, np.float32)
        np.copyto(ir, roi.ir, casting="unsafe")
        band = scratch("features.frame.band", roi.ir.shape, np.float32)
        skin = discs_mask(shape, lm[list(SKIN_PATCHES)], 0.1 * ipd) & roi.valid
        if skin.sum() > 20:
            level = float(ir[skin].mean())
            ir_level = level * face_depth ** 2 / 0.25          # as if at 0.5 m
            # Skin near the projector is among the brightest things in the IR image; a display
            # (no NIR from its backlight, dots mirrored away by the glass) is among the darkest.
            assert aligned.ir is not None                      # roi.ir is cut from it
            # (``aligned.valid`` would be a new whole-frame mask at each use.)
            valid = np.greater(aligned.depth_u16, 0,
                               out=scratch("features.frame.valid", aligned.depth_u16.shape, np.bool_))
            bright = bright_end(aligned.ir, valid) if valid.any() else 0.0
            ir_contrast = level / max(bright, 1.0)
            g07, g2, g5 = (cv2.GaussianBlur(ir, (0, 0), s, dst=scratch(f"features.frame.g{k}", ir.shape, np.float32))
                           for k, s in enumerate((0.7, 2.0, 5.0)))
            speckle = float(np.std(np.subtract(ir, g2, out=band)[skin]) / max(level, 1.0))
            coarse = float(np.std(np.subtract(g2, g5, out=band)[skin]))
            sharpness = float(np.std(np.subtract(g07, g2, out=band)[skin]) / coarse) if coarse > 1e-3 else float("nan")
            eye_sharpness = _eye_dot_sharpness(roi, face, ir, (g07, g2, g5), band)
    openness = min(face.mesh.openness) if face.mesh.openness is not None else float("nan")
    return FrameCues(plane * 1000, cylinder * 1000, prominence, scale_ratio, depth_share, ir_level, ir_contrast,
                     speckle, sharpness, _native_dot_sharpness(aligned, ir_skin(aligned, face)), openness,
                     eye_recess(roi, face), eye_sharpness, face.mesh.landmarks[:, :2].copy(), ipd,
                     face_depth)


def native_dot_sharpness(aligned: AlignedFrameSet, face: FaceObservation) -> float:
    """Dot sharpness on the skin patches in the IR imager's own pixels. Aligned to colour, each IR
    pixel is splatted over the colour pixels its depth pixel covers (1.6 of them on a D435, 1.03 on
    a D415), which blurs the dots by the camera's geometry; in the imager's pixels the dots are as
    the surface returned them. Clipped pixels (glints) left out."""
    return _native_dot_sharpness(aligned, ir_skin(aligned, face))


def _native_dot_sharpness(aligned: AlignedFrameSet, patch: IrSkin | None) -> float:
    if patch is None:
        return float("nan")
    ir = patch.of(aligned)
    mask = patch.mask & (ir < SATURATED_DN)
    if mask.sum() < 20:
        return float("nan")
    g07, g2, g5 = (cv2.GaussianBlur(ir, (0, 0), s) for s in (0.7, 2.0, 5.0))
    coarse = float(np.std((g2 - g5)[mask]))
    return float(np.std((g07 - g2)[mask]) / coarse) if coarse > 1e-3 else float("nan")


def eye_recess(roi: FaceRoi, face: FaceObservation) -> float:
    """How far (mm) the eyes sit behind the bridge of the nose: the median depth on small discs at
    the pupils minus the depth at the bridge between them. A face's eyes sit in their sockets behind
    the bridge; a band or spectacle inserts with printed eyes put a surface in front of them, level
    with the bridge or nearer. Clear lenses pass the projector's light to the eye behind them."""
    ipd = face.mesh.ipd_px
    pupils = roi.local(np.array(face.mesh.pupils, dtype=np.float64))
    eyes = discs_mask(roi.shape, pupils, 0.12 * ipd) & roi.valid
    bridge = discs_mask(roi.shape, roi.local(face.mesh.landmarks[[NOSE_BRIDGE], :2]), 0.08 * ipd) & roi.valid
    if eyes.sum() < 6 or bridge.sum() < 3:
        return float("nan")
    return float((np.median(roi.depth_m[eyes]) - np.median(roi.depth_m[bridge])) * 1000)


def _eye_dot_sharpness(roi: FaceRoi, face: FaceObservation, ir: np.ndarray,
                       bands: tuple[np.ndarray, np.ndarray, np.ndarray], work: np.ndarray | None = None) -> float:
    """Dot sharpness (fine over coarse band energy, as on the skin) over discs around both eyes,
    clipped glints left out. ``bands``: the IR blurred at σ 0.7, 2 and 5 px; ``work``: an array of
    their shape the band differences may be written into (else new ones)."""
    ipd = face.mesh.ipd_px
    pupils = roi.local(np.array(face.mesh.pupils, dtype=np.float64))
    region = discs_mask(roi.shape, pupils, 0.3 * ipd) & roi.valid & (ir < SATURATED_DN)
    if region.sum() < 30:
        return float("nan")
    g07, g2, g5 = bands
    coarse = float(np.std(np.subtract(g2, g5, out=work)[region]))
    return float(np.std(np.subtract(g07, g2, out=work)[region]) / coarse) if coarse > 1e-3 else float("nan")


# MIN_PROJECTOR_SNR and MIN_PROJECTOR_SHARE (when a pair's projector light counts) are defined in
# ``agent.liveness.power``, which the daemon can import without OpenCV (imported at the top).
# A pair whose projector light is at most this (DN, mean over the skin) measures nothing.
MIN_PROJECTOR_LEVEL_DN = 2.0
# The surface's own NIR texture is measured on the unlit frame only when it has at least this much
# ambient light (DN, mean over the skin); in the dark there is none to see and none is subtracted.
MIN_ALBEDO_LEVEL_DN = 2.0
# The albedo texture subtracted is never more than this (squared contrast in the speckle's band, as
# ``albedo_texture`` measures it): about twice the most any simulated live face showed (0.011 in one
# pair; session medians up to 0.007, train family). Real skin (brows, moles, freckles) is to be
# measured; a higher value lets a lamp copying the projector's pattern take more off a mask.
MAX_ALBEDO_TEXTURE = 0.02
# Unlit texture (squared contrast) beyond what the albedo explains, above which a pair is one-sided:
# simulated live faces stay within -0.005..0.006 per pair (noise of the two estimates); a lamp
# pattern adds its own squared contrast (the review's 8-12 DN lamps on 20 DN of ambient light:
# 0.05-0.09).
MAX_UNEXPLAINED_TEXTURE = 0.02
# The dots' shape on the on-off difference (``dot_shape``): Gaussian blurs (sigma, px, in the IR
# imager's own pixels) whose differences are the three bands. The fine band (periods of about
# 3-9 px) holds the dots' own spots; skin's subsurface scattering (a millimetre or two, 1-2 px at
# kiosk range) takes it out and leaves the mid band (6-18 px); the low band (12-35 px) holds what is
# coarser than any dot.
SHAPE_SIGMAS = (0.7, 1.4, 2.8, 5.6)
# A pair whose difference has more energy in the low band than this times its mid band's is
# one-sided (``ProjectorLight.one_sided``): light coarser than the dots changes with the projector
# (an attacker's lamp with a coarse pattern switched with it) and adds to the mid band, which only
# lowers the sharpness. Simulated live faces' pairs read up to 1.47 (train, 87 pairs of 12
# sessions), masks' up to 0.92; blurred dots alone read 0.25 (points) to 0.42 (sigma 1 px).
MAX_COARSE_ENERGY = 2.0
# Photon noise is white, and white noise through ``SHAPE_SIGMAS``' blurs puts this much energy in the
# mid band per unit in the fine band (0.2349 on a 2000x2000 field of independent normal pixels; the
# train family's same-state pairs, scaled, read 0.239: median of 1,790 readings of 58 sessions).
WHITE_MID_OVER_FINE = 0.235
# A reading whose same-state pair, scaled to the on-off pair, holds more mid-band energy than white
# noise makes (beyond ``WHITE_MID_OVER_FINE`` times its fine band's) by more than this share of the
# on-off difference's mid band has no dot shape to read (``dot_shape_read``; ``ProjectorLight.unshaped``):
# that energy is light that moved between the pair's two frames (a sunfleck, a waved lamp), caught at
# another moment than the on-off pair holds it, and subtracted as noise it takes the mid band, the
# ratio's denominator: the ratio climbs toward a hard surface's or empties to NaN (docs/liveness.md,
# "Sunflecks and the dots' sharpness", and fleck24's section at its end). Fitted on train: its live
# readings at most 0.033 (99th percentile 0.0018; 1,104 readings of 28 sessions), its attacks' 99 %
# under 0.016 (1,215 of 30; the 5 over 0.05 all one glasses_print window's noise-only pairs, still
# refused); 0.05, half as high again as any train live reading, is where the energy so subtracted
# can move the ratio by about 5 % (1 / (1 - 0.05)), under the scatter of one train face's readings
# between its pairs (relative standard deviation, median over 25 train lives, 8 %).
MAX_SAME_STATE_MID_SHARE = 0.05
# The projector only adds light: where the on-off difference, blurred over the dots (``SHAPE_SIGMAS``'
# 1.4 px), is darker than ``GONE_NOISE_DEVIATIONS`` of that blur's noise (the noise pair's, scaled)
# below 0, light that is not the dots went away between the unlit and the lit frame: a lamp moved
# on the projector's edges (review24's edge lamp: its move is in the difference, its noise pairs
# are clean) or a dimmer's level lower in the lit frame than in the unlit one (the thirteenth's eye
# refusals, eyes24). ``light_gone`` is that negative part's energy, doubled (what moved came
# somewhere as well), over the difference's mid band; over ``MAX_GONE_SHARE`` the reading has no
# shape (``ProjectorLight.unshaped``), as for ``MAX_SAME_STATE_MID_SHARE``. Train (pairs25, docs/liveness.md:
# lives 0-19 and four printed-eye, glasses and mask presentations): no reading over 0 at 3 deviations;
# review24's edge lamp on resin 0.2-0.5; so any small share is light gone, 0.02 a margin for real noise.
GONE_NOISE_DEVIATIONS = 3.0
MAX_GONE_SHARE = 0.02
# Attack B on a textured surface (review 25, ``bench.eye_lamp``): an even lamp switched with the
# projector puts the lamp times the surface's own NIR albedo into the on-off difference, and an ink or
# paint texture's mid band lowers the dots' fine/mid ratio toward skin's with nothing moving. The unlit
# frame shows that albedo under the room's light: its band between these blurs (sigma, px), scaled by
# the local on-off over unlit level (the last blur's), is what the difference carries of it
# (``unlit_texture``), and the dots' sharpness is read with its fitted share taken out
# (``dot_shape_read``). The band's lower edge keeps the unlit frame's pixel noise out (its whole
# high-pass, sigma 0 - 8, turned train live/0 and /2 into attacks in review 25: noise times a ratio
# over 1 in a dim room); its upper edge is where the ratio is read.
TEXTURE_SIGMAS = (2.0, 8.0)
# Off in the judge (measured, not adopted): taking the texture out raises the eye discs' sharpness on
# lives too, and the eye ramp has no margin: a field live at 21.7 lux (tests/session/test_exposure_plan.py's
# CLIPS) read its eye discs 1.246 -> 1.387 and was judged attack. On again only with the eye ramp refitted
# on train with it (docs/liveness.md, texture26 and the coordinator's note after it).
TEXTURE_OUT = False
# A dimmer (PWM light) that the IR exposure samples at another phase in a pair's lit frame than in
# its unlit one leaves ``(f_on - f_off)`` times the room's image in the difference: on the discs over
# the eyes the eye's own texture, read as paper's sharp dots (eyes24). From the pair alone a level
# that rose is an even light switched with the projector (attack B) and cannot be told apart; across
# a window it can: the projector's light on a face is the same in every pair, the dimmer's share is
# not, and a free-running dimmer's phase is drawn alike for lit and unlit frames, so the lit frames'
# median skin level less the unlit frames' median is the projector's own (``level_steps``). A pair
# whose level (its skin's mean on-off difference) is further than ``MAX_LEVEL_STEP`` of that from it
# has no shape read (``ProjectorMeasure.pool``: ``ProjectorLight.stepped``), and under it no speckle
# either (``fell``, ``speckled``, fanmat27: its mean lost light its high band did not; as the pairs over
# ``MAX_SAME_STATE_MID_SHARE`` or ``MAX_GONE_SHARE`` give none). Only with
# ``MIN_STEP_PAIRS`` pairs at least (medians of fewer say little). Train's steady rooms (lives 0-19):
# every pair within 0.098 of it (live/10; the others 0.082 at most, 18 of 20 under 0.03), so 0.15 is
# half as much again (pairs25, docs/liveness.md).
MAX_LEVEL_STEP = 0.15
MIN_STEP_PAIRS = 4
# A pair whose speckle is read on a part of the region (the lower cheeks clear of the rims, ``lower_only``;
# the skin clear of the flood's shading, ``clear_only``; the cheeks, ``cheeks_only``) is dropped from the
# speckle for light that moved on *that part* (``ProjectorLight.speckle_moved``), not on the whole region:
# a spectacle frame a heater lights at its own angle moves with the head, and its rims' edges fill the
# whole region's noise pair (``moving`` 0.05-0.68) where the lower cheeks' and the clear skin's read
# 0.000-0.016 (the twentieth's heater lives, development; docs/liveness.md, "A spectacle frame lit and
# moving"). The part is the one the speckle already stands on for the pairs nothing moved in; a part whose
# own movement was not read (no noise pair, no shape read there) keeps the whole region's.
PART_MOVED = False
# Variance (DN^2) of the difference of two 8-bit frames from their rounding alone (2 x 1/12): the
# least noise a pair's precision is computed with (two unlit frames in the dark differ by 0).
QUANTISATION_VAR = 1.0 / 6.0
# Two-sided 95 % normal quantile: the material measure's confidence interval is this many
# standard errors either side of its estimate.
CI_Z = 1.96
# The standard error of a median of normal estimates is this much larger than their mean's.
MEDIAN_SE_FACTOR = 1.2533
# Student's t, two-sided 95 %, for 1..30 degrees of freedom (beyond: the value at 30, a little wide).
# A table, not SciPy: the sandboxed liveness worker does not load SciPy.
T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.306, 2.2622, 2.2281, 2.201, 2.1788,
        2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.093, 2.086, 2.0796, 2.0739, 2.0687, 2.0639,
        2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)


@dataclass(frozen=True)
class ProjectorLight:
    """The projector's own light on the skin, from one on-off pair of consecutive IR frames, with
    what its precision depends on (``variance``).

    Two readings of the surface: the speckle contrast (``contrast2``: the difference's high-pass
    energy over its squared mean) and the dots' sharpness (``sharpness``: the difference's fine-band
    over mid-band energy, ``dot_shape``). Only the second comes from the shape of the dots alone:
    light that changes with the projector but carries no dots (an attacker's even NIR lamp switched
    with it) raises the mean and lowers the contrast, and leaves the sharpness as it was.

    A pair with more than ``MAX_CLIPPED_SHARE`` of its skin pixels at saturation, whose light
    stands under ``MIN_PROJECTOR_SNR`` noise deviations, whose unlit frame has more texture than
    the surface's albedo explains (``albedo_texture``), or whose difference has more coarse energy
    than dots make (``MAX_COARSE_ENERGY``), is *one-sided*: clipping only lowers the brightest
    values of the dots, an inflated noise estimate only lowers the contrast it is subtracted from,
    and so does the unlit frame's whole texture, subtracted as the albedo's, and coarse light adds
    to the mid band and the mean, lowering both readings; so its readings are floors under the
    surface's own, evidence that a surface is hard and never that it is soft
    (``ProjectorMeasure``)."""
    contrast2: float      # speckle contrast squared, noise and albedo texture removed (may be < 0); NaN if not measured
    level: float          # mean on-off difference on the skin (DN)
    noise: float          # per-pixel variance of the difference's noise after the high-pass (DN^2)
    pixels: int           # skin pixels measured
    share: float          # the projector's share of all the IR light on the skin
    clipped: float = 0.0  # share of the skin's pixels at saturation in the lit or the unlit frame
    albedo: float = 0.0   # squared contrast of the skin's own NIR texture (removed from ``contrast2``;
                          # a one-sided pair under patterned light: the unlit frame's whole texture)
    noise_measured: bool = True   # False: no same-state pair; ``noise`` is the whole high-pass variance
    unexplained: float = 0.0      # the unlit frame's texture (squared contrast) the albedo does not explain
    sharpness: float = float("nan")   # the difference's fine- over mid-band energy, noise removed (``dot_shape``)
    coarse: float = float("nan")      # the difference's low- over mid-band energy, noise removed
    moving: float = float("nan")      # the noise pair's scaled mid-band energy beyond white noise's over the
                                      # difference's (``dot_shape_read``; NaN: no noise pair or no shape read)
    gone: float = float("nan")        # the difference's negative part's energy over its mid band (``light_gone``;
                                      # NaN: no noise pair or no shape read)
    off_level: float = float("nan")   # mean of the unlit frame on the skin (DN; NaN: not measured)
    stepped: bool = False             # the shape not read: the pair's level off the window's (``level_steps``)
    fell: bool = False                # ... stepped under it: no speckle either (``speckled``)
    unmatched: float = float("nan")   # band energy not on the projector's predicted pattern over the energy
                                      # on it (``dotref.match_pattern``); NaN: no reference, inf: not testable,
                                      # ``NOTHING_EXPLAINED``: tested, none of it on the pattern
    reference_sharpness: float = float("nan")   # ``dot_shape`` of the projector's recorded pattern where it
                                      # falls on these skin pixels (``reference_dot_shape``); NaN: no reference
    shaded_reference_sharpness: float = float("nan")   # ... of the pattern shaded by the projector's incidence
                                      # on the lit frame's depth (``shaded_reference_dot_shape``); NaN: no shading
    forehead_dropped: bool = False    # the speckle's readings are the cheeks' alone (``ProjectorMeasure.pool``)
    forehead_contrast2: float = float("nan")   # the forehead's discs' ``contrast2`` alone (NaN: not read apart)
    cheeks_contrast2: float = float("nan")     # the other discs' (the cheeks')
    forehead_sharpness: float = float("nan")   # the dots' sharpness on each group alone (both guard
                                               # the drop: ``ProjectorMeasure.pool``)
    cheeks_sharpness: float = float("nan")
    cheeks: ProjectorLight | None = None       # the pair read on the cheeks' discs alone (``pair_light``)
    rims_dropped: bool = False        # the speckle's readings are the lower cheeks' alone (``ProjectorMeasure.pool``)
    upper_contrast2: float = float("nan")      # ``contrast2`` on what a spectacle frame can reach: the region
                                      # but the lower cheeks' discs (the cheeks' upper discs alone when the
                                      # forehead is dropped: ``cheeks.upper_contrast2``)
    lower_contrast2: float = float("nan")      # ... and on the lower cheeks' discs alone
    lower_sharpness: float = float("nan")      # the dots' sharpness on the lower cheeks' discs alone
    lower: ProjectorLight | None = None        # the pair read on the lower cheeks' discs alone (``pair_light``)
    lower_rims: int = 0               # the lower cheeks' discs' pixels left out near a raised line (``IrSkin``)
    eyes_sharpness: float = float("nan")       # the dots' sharpness on the discs over the eyes (``pair_light``)
    eyes_unshaped: bool = False       # ... not read there: light moved in the noise pair (``unshaped``)
    eyes_reference_sharpness: float = float("nan")   # ``reference_dot_shape`` on the discs over the eyes' pixels
                                      # read (``pair_light``); NaN: no reference, or not read there
    clear: ProjectorLight | None = None        # the pair read without the pixels whose unlit texture the
                                      # albedo does not explain (``clear_of_shading``; None: not read so)
    shading_out: int = 0              # the skin pixels ``clear`` leaves out
    shading_dropped: bool = False     # the speckle's readings are ``clear``'s (``ProjectorMeasure.pool``)
    part_moved: bool | None = None    # light moved on the part the speckle's readings are (``_speckle_of``:
                                      # the part's ``moved``; None: the whole region's, or not read there)

    def cheeks_only(self) -> ProjectorLight:
        """This pair with the speckle's readings (contrast, level, noise, pixels, share, albedo) the
        cheeks' alone; the dots' sharpness, coarse light, clipped share and pattern stay the whole
        region's (itself when the cheeks were not read apart)."""
        return self._speckle_of(self.cheeks, forehead=True)

    def lower_only(self) -> ProjectorLight:
        """This pair with the speckle's readings the lower cheeks' alone (``cheeks_only`` for them);
        itself when they were not read apart."""
        return self._speckle_of(self.lower, rims=True)

    def clear_only(self) -> ProjectorLight:
        """This pair with the speckle's readings those of its skin clear of the flood's shading
        (``clear_of_shading``), marked ``shading_dropped``; the dots' sharpness, coarse light, clipped
        share and pattern stay the whole region's (itself when it was not read so)."""
        if self.clear is None:
            return self
        return replace(self._speckle_of(self.clear), shading_dropped=True)

    def _speckle_of(self, part: ProjectorLight | None, forehead: bool = False, rims: bool = False) -> ProjectorLight:
        """This pair with the speckle's readings ``part``'s, marked as read without the forehead or
        without what the rims reach."""
        if part is None:
            return self
        read = np.isfinite(part.moving) and np.isfinite(part.gone)
        return replace(self, contrast2=part.contrast2, level=part.level, noise=part.noise, pixels=part.pixels,
                       share=part.share, albedo=part.albedo, noise_measured=part.noise_measured,
                       unexplained=part.unexplained, forehead_dropped=self.forehead_dropped or forehead,
                       rims_dropped=self.rims_dropped or rims, part_moved=part.moved if read else None)

    @property
    def one_sided(self) -> bool:
        """The contrast is only a floor: more than ``MAX_CLIPPED_SHARE`` of the skin clipped, or the
        projector's light under ``MIN_PROJECTOR_SNR`` noise deviations (the subtracted noise
        estimate then moves the contrast more than skin and resin differ, and only an honest
        estimate, never an inflated one, leaves it unbiased), or more than
        ``MAX_UNEXPLAINED_TEXTURE`` of the unlit frame's texture unexplained by the albedo (light
        with a pattern of its own: the whole texture was subtracted), or more coarse energy in the
        difference than ``MAX_COARSE_ENERGY`` times its mid band's (light coarser than any dot
        switched with the projector)."""
        # The noise as measured, not floored as ``snr`` reports it: a floor would make one-sided the
        # pairs of 2.0-2.04 DN measured under the rounding's noise, a change to the judge's rule.
        measured = self.noise_measured and np.isfinite(self.noise) and np.isfinite(self.level) and self.noise > 0
        return (self.clipped > MAX_CLIPPED_SHARE
                or bool(measured and self.level / np.sqrt(self.noise) < MIN_PROJECTOR_SNR)
                or self.unexplained > MAX_UNEXPLAINED_TEXTURE or self.coarse_light)

    @property
    def unshaped(self) -> bool:
        """The dots' shape was not read: the noise pair carried light that moved between its frames
        (``moving`` over ``MAX_SAME_STATE_MID_SHARE``, ``dot_shape_read``), or light went away between
        the pair's own unlit and lit frames (``gone`` over ``MAX_GONE_SHARE``, ``light_gone``), or its
        level stepped off the window's (``stepped``, ``level_steps``)."""
        return bool(self.moved or self.stepped)

    @property
    def moved(self) -> bool:
        """Light moved between the frames of this pair's noise pair (``moving``) or went away between its
        own unlit and lit frames (``gone``): the pair's difference or its noise estimate holds light
        that is not the dots', and neither its shape nor its speckle is read (``speckled``)."""
        return bool(self.moving > MAX_SAME_STATE_MID_SHARE or self.gone > MAX_GONE_SHARE)

    @property
    def speckle_moved(self) -> bool:
        """Light moved where this pair's speckle is read: on the part it is read on when ``PART_MOVED`` and
        that part's movement was read (``part_moved``), else on the whole region (``moved``)."""
        return self.part_moved if PART_MOVED and self.part_moved is not None else self.moved

    @property
    def shading_gain(self) -> float:
        """The recorded pattern's reading over its reading shaded by the projector's incidence on
        this frame's depth (``reference_sharpness / shaded_reference_sharpness``), never under 1; 1
        when either was not read. The dots' sharpness times it is the reading with the shading's
        mid band taken out (``ProjectorMeasure.sharpness_shaded``). A true shading on a smooth
        surface adds mid-band energy and lowers the pattern's reading (a gain over 1); a forged
        depth's shading that raised it (the fine band of pixel-scale facets, or dots weighted by
        where they fell) would flatter a hard surface, and is never taken: the gain can only
        harden a reading (docs/liveness.md, "The dots' shading taken out of the reference")."""
        ref, shaded = self.reference_sharpness, self.shaded_reference_sharpness
        if not (np.isfinite(ref) and np.isfinite(shaded) and shaded > 0 and ref > 0):
            return 1.0
        return max(1.0, ref / shaded)

    @property
    def coarse_light(self) -> bool:
        """More energy in the difference's low band than ``MAX_COARSE_ENERGY`` times its mid band's."""
        return bool(np.isfinite(self.coarse) and self.coarse > MAX_COARSE_ENERGY)

    @property
    def snr(self) -> float:
        """The projector's light over the per-pixel noise of the difference (NaN without a noise pair),
        the noise never taken under the 8-bit rounding's (``QUANTISATION_VAR``, as ``variance`` takes
        it). Two same-state frames in the dark (ambient NIR under 1 DN: warm LED light) differ by
        nothing, or by a photon beside the skin that the high-pass barely carries onto it: a noise of
        0, or of 1e-9 DN^2, read infinite, or hundreds of thousands of deviations (the fifth family's
        record #148: 823,761), and pairs read infinite left a session's median without a pair (NaN)."""
        if not self.noise_measured or not np.isfinite(self.noise) or not np.isfinite(self.level):
            return float("nan")
        return self.level / float(np.sqrt(max(self.noise, QUANTISATION_VAR)))

    def variance(self, contrast2: float) -> float:
        """Variance of this pair's ``contrast2`` from photon noise alone, for a surface whose squared
        contrast is ``contrast2`` (inf when the pair measured nothing).

        With per-pixel noise variance n after the high-pass (never under the 8-bit rounding's), the
        dots' own variance s and N pixels: the high-pass variance of the difference scatters by
        (4sn + 2n^2)/N, the noise measured on the same-state pair by 2n^2/N, and the level by n/N
        (which moves the contrast by -2 contrast2/level per DN). So a weaker projector is measured
        as well as a strong one given more pixels or more pairs: the precision, not a ratio, decides."""
        n, level, npix = max(self.noise, QUANTISATION_VAR), self.level, self.pixels
        if not (np.isfinite(n) and np.isfinite(level) and level > 0 and npix > 0 and np.isfinite(self.contrast2)):
            return float("inf")
        s = level ** 2 * (max(contrast2, 0.0) * (1.0 + self.albedo) + self.albedo)
        excess = (4.0 * s * n + 4.0 * n * n) / npix / level ** 4
        through_level = 4.0 * (s / level ** 2) ** 2 * (n / npix) / level ** 2
        return (excess + through_level) / (1.0 + self.albedo) ** 2


def _pooled(lights: list[ProjectorLight]) -> tuple[float, float, int]:
    """A session's pairs pooled: the speckle contrast (the median of the pairs' contrasts, as a
    single pair's reading would be), the 95 % half-width of its square, and the pairs used.

    The half-width is the larger of two: photon noise alone (the pairs pooled by inverse variance,
    each pair's variance taken at the pairs' median contrast so a pair is not trusted more for
    reading low; the weighted mean's standard error times ``MEDIAN_SE_FACTOR``), and the pairs' own
    scatter (their standard deviation over the root of their number, times the same factor, with
    Student's t for their number). Pairs differ by more than photon noise (the face moves, the dots
    fall on other skin), so photon noise alone would claim a precision the pairs do not have."""
    used = [x for x in lights if np.isfinite(x.contrast2)]
    if not used:
        return float("nan"), float("nan"), 0
    ref = float(inplace.median([x.contrast2 for x in used]))
    var = np.array([x.variance(ref) for x in used])
    keep = np.isfinite(var) & (var > 0)
    if not keep.any():
        return float("nan"), float("nan"), 0
    c2 = np.array([x.contrast2 for x in used])[keep]
    est = float(inplace.median(np.sqrt(np.maximum(c2, 0.0))))
    half = CI_Z * MEDIAN_SE_FACTOR / float(np.sqrt((1.0 / var[keep]).sum()))
    k = len(c2)
    if k >= 2:
        t = T975[min(k - 1, len(T975)) - 1]
        half = max(half, t * MEDIAN_SE_FACTOR * float(np.std(c2, ddof=1)) / np.sqrt(k))
    return est, half, k


@dataclass(frozen=True)
class ProjectorMeasure:
    """A session's material measure from its on-off pairs.

    ``speckle`` and its 95 % confidence interval ``low``..``high`` come from the two-sided pairs
    (at most ``MAX_CLIPPED_SHARE`` of the skin clipped, at least ``MIN_PROJECTOR_SNR`` noise
    deviations, the unlit frame's texture explained by the albedo), NaN when none measured
    anything. ``floor`` is the one-sided pairs' median contrast (clipped pixels kept, the noise
    estimate and the unlit frame's whole texture subtracted): clipping and an inflated noise or
    texture estimate only lower the contrast, so the surface is at least as hard as what these pairs
    read (NaN without such pairs). The median of noisy readings is not that bound: ``floor_low`` is
    the floor's lower 95 % bound (its square less the half-width, as ``low`` is for ``speckle``),
    the only figure the floor may be evidence with (``detectors.clipped_cap``). ``clipped`` is the
    median share of clipped skin pixels over all pairs; ``patterned`` how many of the pairs whose speckle
    is read (``speckled``) had more unlit texture than the albedo explains (NIR light with a pattern of
    its own on the face): a pair light moved in is lost to that, not to the pattern (a spectacle frame lit
    by a heater and moving with the head, cause32).
    ``sharpness`` is the two-sided pairs' median dot sharpness (``dot_shape``), ``sharpness_floor``
    the one-sided pairs' (each only lowered by what made its pair one-sided: clipped peaks,
    over-subtracted noise, coarse light; a median still, with no interval); ``coarse`` how many pairs had more coarse
    energy in the difference than dots make (light switched with the projector that carries none
    of its dots). ``sharpness_ratio`` (``sharpness_ratio_floor``) is the two-sided (one-sided)
    pairs' median of each pair's sharpness over the recorded pattern's own reading on the same skin
    pixels (``reference_dot_shape``; NaN when any of those pairs has no such reading): the surface's
    part of the reading, without the part set by which few dozen dots fell on the patches (reported, not scored: on the
    fresh family's Gemini 2 skin reads higher on it than on train's cameras, docs/liveness.md,
    "A session's dots"). ``sharpness_shaded`` (``_floor``) is the same pairs' median sharpness times
    each pair's ``ProjectorLight.shading_gain`` (the pattern shaded by the projector's incidence on the
    lit frame's depth: never softer than ``sharpness``), ``sharpness_ratio_shaded`` the ratio times the
    same clipped gain (not the ratio over the shaded pattern where that reads harder); NaN where no
    shading was read; ``sharpness`` is the shaded one only when
    ``SHADED_REFERENCE`` (off: docs/liveness.md, "The dots' shading taken out of the reference").
    With the projector's pattern recorded (``dotref``), ``unmatched`` is the pairs' median band energy
    off it over the energy on it (measured and reported; it decides nothing yet, docs/liveness.md),
    ``untestable`` counts
    the pairs it could not be tested on, and ``pattern_checked`` says every pair was. ``unshaped``
    (``eyes_unshaped``) counts the pairs whose dots' shape was not read on the skin (on the discs over
    the eyes) because light moved in their noise pair (``ProjectorLight.unshaped``): they are in
    neither ``sharpness`` nor its floor (``eyes_sharpness``), nor in ``speckle`` or its floor (``speckled``:
    light moved in them, ``ProjectorLight.moved``, or their level fell off the window's, ``fell``), and a session left
    without a shape reading is not measurable (``detectors.evaluate``). ``eyes_read`` counts the
    two-sided pairs read on the discs over the eyes; ``eyes_sharpness_ratio`` is their median of each
    pair's sharpness there over the recorded pattern's own reading on the same pixels (NaN when any of
    them has none: ``sharpness_ratio``'s rule; reported, not scored: docs/liveness.md, "The eye discs'
    reference reading")."""
    speckle: float
    low: float
    high: float
    share: float
    snr: float
    clipped: float
    pairs: int
    floor: float = float("nan")
    floor_pairs: int = 0
    floor_low: float = float("nan")   # the floor's lower 95 % bound (NaN without one-sided pairs)
    patterned: int = 0
    sharpness: float = float("nan")
    sharpness_floor: float = float("nan")
    sharpness_ratio: float = float("nan")        # two-sided pairs' median sharpness over the pattern's own
    sharpness_ratio_floor: float = float("nan")  # the one-sided pairs' (a floor, as ``sharpness_floor``)
    sharpness_shaded: float = float("nan")       # ``sharpness`` with each pair's ``shading_gain`` (the reading's
    sharpness_shaded_floor: float = float("nan")  # shading taken out; scored in its place when SHADED_REFERENCE)
    sharpness_ratio_shaded: float = float("nan")  # ``sharpness_ratio`` times the clipped shading gain (reported)
    coarse: int = 0
    untestable: int = 0               # pairs a configured reference could not test (another mode, no depth)
    unmatched: float = float("nan")   # the pairs' median ``ProjectorLight.unmatched`` (NaN: no reference)
    pattern_checked: bool = False     # every pair was tested against the projector's recorded pattern
    pattern_pairs: int = 0            # pairs tested against it (a finite reading, ``NOTHING_EXPLAINED`` included)
    forehead_dropped: int = 0         # pairs whose speckle is the cheeks' alone (``pool``)
    forehead: float = float("nan")    # the two-sided pairs' median speckle on the forehead's discs alone
    cheeks: float = float("nan")      # ... and on the cheeks' (the forehead dropped when over
                                      # ``FOREHEAD_OVER_CHEEKS`` times this)
    forehead_sharpness: float = float("nan")   # the same pairs' median sharpness on each group (reported)
    cheeks_sharpness: float = float("nan")
    rims_dropped: int = 0             # pairs whose speckle is the lower cheeks' alone (``pool``)
    upper: float = float("nan")       # the two-sided pairs' median speckle on what a spectacle frame can
                                      # reach (``ProjectorLight.upper_contrast2``, after the forehead rule)
    lower: float = float("nan")       # ... and on the lower cheeks' discs (the speckle is theirs alone when
                                      # ``upper`` is over ``RIMS_OVER_LOWER`` times this)
    lower_sharpness: float = float("nan")      # the same pairs' median sharpness on the lower cheeks' discs
    lower_rims: int = 0               # pairs whose lower cheeks' discs lost pixels near a raised line (a rim:
                                      # ``clear_of_rims``)
    eyes_sharpness: float = float("nan")       # the two-sided pairs' median sharpness on the discs over the eyes
    shading_dropped: int = 0          # pairs whose speckle is read clear of the flood's shading (``pool``,
                                      # ``clear_of_shading``)
    unshaped: int = 0                 # measured pairs whose dots' shape was not read (``ProjectorLight.unshaped``:
                                      # light moved in the noise pair); neither ``sharpness`` nor its floor has them
    eyes_unshaped: int = 0            # two-sided pairs whose discs over the eyes were not read so
    eyes_read: int = 0                # two-sided pairs whose discs over the eyes were read (``eyes_sharpness``'s)
    eyes_sharpness_ratio: float = float("nan")  # those pairs' median sharpness on the discs over the eyes over
                                      # the pattern's own reading there (``sharpness_ratio``'s rule; reported)
    flood_edges: int = 0              # the window's projector edges whose pair or noise pair a foreign flood lit
                                      # (``judge.flood_pairs``: read on other frames or not at all)

    @classmethod
    def pool(cls, lights: list[ProjectorLight]) -> ProjectorMeasure:
        def med(v: list[float]) -> float:
            a = np.array(v, dtype=np.float64)
            return float(inplace.median(a[np.isfinite(a)])) if np.isfinite(a).any() else float("nan")
        # The forehead's discs and the cheeks' read apart (``pair_light``'s ``forehead``), over the
        # pairs that measured both: a face whose forehead reads over FOREHEAD_OVER_CHEEKS times its
        # cheeks' has something other than skin there (a fringe, a spectacle frame), and the session's
        # speckle is the cheeks' alone, on every pair (a fringe does not come and go between pairs).
        # The dots' sharpness stays the whole region's. Not when the forehead's own dots read as sharp
        # as a hard surface's (``FOREHEAD_SHARP_DOTS``): hair and skin spread them, paper and resin
        # do not, so that is an instrument there (a printed eye band reaching the brows), not a fringe.
        # Nor when the cheeks' own dots read that sharp (or could not be read): the cheeks are then
        # what would stand alone, and they are not skin's. A fringe combed over a rigid mask raises
        # its forehead and softens the whole region's dots, while a mask's cheeks alone read as soft
        # as skin's in speckle (0.22-0.25): the speckle is then the whole region's, and the dots'
        # sharpness the cheeks' alone, each pair's (the fringe's soft dots are not the mask's: a mask
        # with eye holes under a fringe read 1.36 whole, 1.85 on its cheeks; docs/liveness.md,
        # "The forehead rule, attacked").
        lights = level_steps(lights, med)
        lights, shaded = _unshaded_part(lights, med)
        # A pair light moved in (``ProjectorLight.moved``: in its noise pair, or away between its own
        # frames), or whose level fell under the window's (``fell``), gives no speckle either
        # (``speckled``), neither here nor in the pool below.
        apart = [x for x in speckled(lights) if np.isfinite(x.contrast2) and not x.one_sided and x.cheeks is not None]
        if shaded:
            apart = []                    # the part the flood leaves alone stands; no rule below moves it
        forehead = med([_root(x.forehead_contrast2) for x in apart])
        cheeks = med([_root(x.cheeks_contrast2) for x in apart])
        forehead_sharpness = med([x.forehead_sharpness for x in apart])
        cheeks_sharpness = med([x.cheeks_sharpness for x in apart])
        fringe = forehead > FOREHEAD_OVER_CHEEKS * cheeks and not forehead_sharpness >= FOREHEAD_SHARP_DOTS
        # Cheeks whose dots read as a hard surface's are not skin's with or without a fringe above them
        # (train's 59 live cheeks 0.63-1.48): each pair's dots' sharpness is then never read softer than
        # theirs, so a forehead that reads soft on the same hard surface cannot carry the session under
        # the ramp. A rigid mask with its chin up reads its forehead's dots as soft as skin's (the
        # sixteenth's mask_eyeholes/3, accepted: forehead 0.96-1.10, cheeks 1.50-1.69, whole 1.30;
        # docs/liveness.md, "A chin-up mask's soft forehead"). Under a fringe the cheeks' alone, as before.
        hard_cheeks = bool(cheeks_sharpness >= FOREHEAD_SHARP_DOTS)
        dropped = bool(fringe and cheeks_sharpness < FOREHEAD_SHARP_DOTS)
        if dropped:
            lights = [x.cheeks_only() for x in lights]
        # Then what a spectacle frame can reach (the region but the lower cheeks' discs; the upper
        # cheeks' alone when the forehead is already out) against the lower cheeks' discs, beside the
        # nose, which no frame reaches (with the chin down the lower rim does: its pixels are already out
        # of the lower discs, ``clear_of_rims``): a rim or a nose pad crossing the upper discs is a hard,
        # thin line of its own NIR albedo on the dots (seventh's refused spectacle wearers live/3, /33,
        # /71, /171, /184: 0.29-0.38 there, 0.24-0.25 on the lower cheeks; docs/liveness.md). Only when
        # the lower cheeks' own dots read as skin's (under ``FOREHEAD_SHARP_DOTS``, NaN: not): a mask,
        # head model or paper is hard there too, and is never read on its lower cheeks alone.
        reach = [(x.cheeks if dropped else x) for x in apart]
        upper = med([_root(y.upper_contrast2) for y in reach if y is not None])
        lower = med([_root(x.lower_contrast2) for x in apart])
        lower_sharpness = med([x.lower_sharpness for x in apart])
        if upper > RIMS_OVER_LOWER * lower and lower_sharpness < FOREHEAD_SHARP_DOTS:
            lights = [x.lower_only() for x in lights]

        def sharp(x: ProjectorLight, shaded: bool = SHADED_REFERENCE) -> float:
            whole = x.sharpness * x.shading_gain if shaded else x.sharpness
            if not (hard_cheeks and np.isfinite(x.cheeks_sharpness)):
                return whole
            return x.cheeks_sharpness if fringe else float(np.fmax(x.cheeks_sharpness, whole))
        share, snr, clipped = (med([getattr(x, k) for x in lights]) for k in ("share", "snr", "clipped"))
        est, half, pairs = _pooled([x for x in speckled(lights) if not x.one_sided])
        # The one-sided pairs' floor keeps its half-width: only its lower bound is a floor with 95 %
        # confidence (a median of pairs at 1-5 noise deviations can read far above the surface's own).
        floor, f_half, f_pairs = _pooled([x for x in speckled(lights) if x.one_sided])
        nan = float("nan")
        speckle, low, high = ((est, _root(est ** 2 - half), _root(est ** 2 + half)) if pairs else (nan, nan, nan))
        floor_low = _root(floor ** 2 - f_half) if f_pairs else nan
        # Counted over the pairs whose speckle is read: a pair light moved in gives none whatever its unlit
        # texture, so it says why the material was lost as a moved pair (``unshaped``), not as a patterned one
        # (docs/liveness.md, "A spectacle frame lit and moving").
        patterned = sum(x.unexplained > MAX_UNEXPLAINED_TEXTURE for x in speckled(lights) if np.isfinite(x.contrast2))
        # The sharpness of the same pairs the speckle and its floor come from; with the shading's
        # mid band taken out (``ProjectorLight.shading_gain``) as well, scored when SHADED_REFERENCE.
        two_sided = [x for x in lights if np.isfinite(x.contrast2) and not x.one_sided]
        one_sided = [x for x in lights if np.isfinite(x.contrast2) and x.one_sided]
        sharpness, sharpness_floor = med([sharp(x) for x in two_sided]), med([sharp(x) for x in one_sided])
        shading_read = any(np.isfinite(x.shaded_reference_sharpness) for x in two_sided + one_sided)
        shaded_sharpness = med([sharp(x, True) for x in two_sided]) if shading_read else nan
        shaded_floor = med([sharp(x, True) for x in one_sided]) if shading_read else nan
        # The same pairs' sharpness over what the recorded pattern reads with the very dots that fell
        # on the patches (``reference_dot_shape``): which dots landed there moves a session's absolute
        # reading by +-0.3-0.4 (docs/liveness.md, "A session's dots"). Reported, not scored.
        # A pair whose pattern gave no reading on its skin (no depth, under ``MIN_REFERENCE_COVER``)
        # leaves the session without a ratio: the rest would be a median the injector who took that
        # pair's depth away chose (docs/liveness.md, "The ratio gated by the pattern's fit").
        def ratio(x: ProjectorLight, eyes: bool = False) -> float:
            read, ref = (x.eyes_sharpness, x.eyes_reference_sharpness) if eyes else (x.sharpness, x.reference_sharpness)
            ok = np.isfinite(ref) and ref > 0
            return read / ref if ok else float("nan")

        def every_ratio(xs: list[ProjectorLight], eyes: bool = False) -> float:
            v = [ratio(x, eyes) for x in xs]
            return med(v) if all(np.isfinite(v)) else nan
        sharpness_ratio = every_ratio(two_sided)
        sharpness_ratio_floor = every_ratio(one_sided)
        shaded_ratio = med([ratio(x) * x.shading_gain for x in two_sided]) if shading_read else nan
        coarse = sum(x.coarse_light for x in lights if np.isfinite(x.contrast2))
        measured = [x for x in lights if np.isfinite(x.contrast2)]
        eyes = [x.eyes_sharpness for x in measured if not x.one_sided]
        # The discs over the eyes likewise, on the two-sided pairs read there (``eyes_sharpness``'s).
        eyes_ratio = every_ratio([x for x in measured if not x.one_sided and np.isfinite(x.eyes_sharpness)],
                                 eyes=True)
        untestable = sum(x.unmatched == float("inf") for x in measured)
        unmatched = [x.unmatched for x in measured if np.isfinite(x.unmatched)]
        checked = bool(measured) and len(unmatched) == len(measured)
        return cls(speckle, low, high, share, snr, clipped, pairs, floor if f_pairs else nan, f_pairs,
                   floor_low=floor_low, patterned=patterned, sharpness=sharpness,
                   sharpness_floor=sharpness_floor, sharpness_ratio=sharpness_ratio,
                   sharpness_ratio_floor=sharpness_ratio_floor, sharpness_shaded=shaded_sharpness,
                   sharpness_shaded_floor=shaded_floor, sharpness_ratio_shaded=shaded_ratio,
                   coarse=coarse, untestable=untestable,
                   unmatched=float(inplace.median(unmatched)) if unmatched else nan, pattern_checked=checked,
                   pattern_pairs=len(unmatched),
                   forehead_dropped=sum(x.forehead_dropped for x in measured),
                   forehead=forehead, cheeks=cheeks,
                   forehead_sharpness=forehead_sharpness, cheeks_sharpness=cheeks_sharpness,
                   rims_dropped=sum(x.rims_dropped for x in measured), upper=upper, lower=lower,
                   lower_sharpness=lower_sharpness, lower_rims=sum(x.lower_rims > 0 for x in measured),
                   shading_dropped=sum(x.shading_dropped for x in measured),
                   unshaped=sum(x.unshaped for x in measured),
                   eyes_unshaped=sum(x.eyes_unshaped for x in measured if not x.one_sided),
                   eyes_sharpness=med(eyes), eyes_read=sum(bool(np.isfinite(e)) for e in eyes),
                   eyes_sharpness_ratio=eyes_ratio)


def speckled(lights: list[ProjectorLight]) -> list[ProjectorLight]:
    """The pairs whose speckle the session's material measure reads: all but those light moved in
    (``ProjectorLight.moved``) and those whose level fell off the window's (``ProjectorLight.fell``). Light that
    moved in a pair's noise pair is subtracted as noise from its
    on-off difference's high band (the speckle reads soft); light that went away between its unlit and
    lit frames leaves its edges in that high band as if they were dots (the speckle reads hard: the
    eleventh's live/52, /103, /122 at 0.32-0.39 on one such pair, fleck25; a fleck 60 DN dimmer in the lit
    frame than in the unlit one reads skin at 0.34): neither an estimate nor a floor (fleck26,
    docs/liveness.md). Nor those whose level stepped *under* the window's (``fell``, ``level_steps``):
    the contrast is the difference's high-band energy over its squared mean, and that mean is the
    projector's light only when the room's light was the same in both frames. Light that changed
    between them by d DN (a ceiling fan's blades, a dimmer's phase) puts d in the mean and almost
    nothing in the dots' high band, so the pair reads (level / (level + d))^2 times too hard when
    d < 0; and a fall that leaves the pair under ``MIN_PROJECTOR_SNR`` made it a one-sided "floor",
    which then said hard of skin (the fifteenth family's fan lives, fanmat27: one pair's squared
    contrast at 0.36-0.67 against their steady pairs' 0.03-0.06 held the material at 0;
    docs/liveness.md). A level that fell because the projector's own light did (a switch caught
    mid-exposure) lowers both alike and leaves nothing to lose. A pair stepped *over* the window's
    keeps its speckle, as pairs25 left it: light added to the mean only softens its contrast, so as a
    floor it still errs soft (a nearer face's clipped hard pairs stay a floor:
    ``test_clipped_pairs_cap_what_unclipped_pairs_say``), and as an estimate it is main's. Train's
    lives have no stepped pair (fleck24, pairs25), so nothing changes there."""
    return [x for x in lights if not (x.speckle_moved or x.fell)]


def level_steps(lights: list[ProjectorLight], med: Callable[[list[float]], float]) -> list[ProjectorLight]:
    """A window's pairs with the shape of those whose level is further than ``MAX_LEVEL_STEP`` of the
    projector's own from it not read (``without_shape``): light whose level changed between a pair's
    two frames (a dimmer's phase) is in its difference as if it were the projector's. The projector's
    own level is the pairs' median lit-frame skin level less their median unlit one (a dimmer's phase
    is drawn alike for both, and moves neither median far), over every pair with its frames' levels,
    those too faint to measure among them (a level a dimmer took under ``MIN_PROJECTOR_LEVEL_DN``). They
    give no speckle either when under it (``fell``, ``speckled``: the mean a contrast divides by lost light
    the dots' high band did not). None changes with fewer than ``MIN_STEP_PAIRS`` such pairs, or no positive level."""
    levelled = [x for x in lights if np.isfinite(x.level) and np.isfinite(x.off_level)]
    if len(levelled) < MIN_STEP_PAIRS:
        return lights
    ref = med([x.level + x.off_level for x in levelled]) - med([x.off_level for x in levelled])
    if not ref > 0:
        return lights
    off = {id(x) for x in levelled if np.isfinite(x.contrast2) and abs(x.level - ref) > MAX_LEVEL_STEP * ref}
    return [replace(without_shape(x), fell=bool(x.level < ref)) if id(x) in off else x for x in lights]


def without_shape(x: ProjectorLight) -> ProjectorLight:
    """``x`` marked ``stepped`` with no dots' shape read on any of its regions (the discs over the eyes
    marked unread when they were read); its speckle and coarse-light check as they were."""
    nan = float("nan")

    def unread(part: ProjectorLight | None) -> ProjectorLight | None:
        return None if part is None else replace(part, sharpness=nan, lower_sharpness=nan)
    return replace(x, sharpness=nan, forehead_sharpness=nan, cheeks_sharpness=nan, lower_sharpness=nan,
                   eyes_sharpness=nan, eyes_reference_sharpness=nan,
                   eyes_unshaped=x.eyes_unshaped or bool(np.isfinite(x.eyes_sharpness)),
                   stepped=True, cheeks=unread(x.cheeks), lower=unread(x.lower), clear=unread(x.clear))


def _root(contrast2: float) -> float:
    """A contrast from its square's estimate (which noise may push below 0)."""
    return float(np.sqrt(max(contrast2, 0.0)))


# The pixels around a point whose depth places it (``depth_around``): 7 x 7, centred on it.
_AROUND = np.arange(-3, 4)


def depth_around(aligned: AlignedFrameSet, pts: np.ndarray) -> np.ndarray:
    """Per colour-image point (N, 2: x, y), the median aligned depth (m, float64) of the pixels with
    depth among the 7 x 7 around its rounded position, clipped to the image; NaN where none has.

    Every point at once: the windows' depth units are gathered into one (N, 7, 7) array, converted
    as ``depth_m`` converts them, and each window's finite values sorted; the median is the middle
    value, or the float32 mean of the middle two, as ``np.nanmedian`` of the window gives it. Per
    point, ``nanmedian`` cost about 20 us, and the material measure's region places 44 points a
    frame (the skin patches and the face's oval, ``material_skin``); ``tests/liveness/
    test_material_region.py`` holds it to the window-by-window loop, to the bit. A point more than
    4 px left of or above the image is read as that loop read it (its window's slice then ends
    before the image's last row or column, not before the image)."""
    units, depth_scale = aligned.depth_u16, aligned.depth_scale
    h, w = units.shape
    xy = np.round(pts).astype(int)
    z = np.full(len(pts), np.nan)
    odd = (xy[:, 0] < -4) | (xy[:, 1] < -4)
    for n in np.flatnonzero(odd):
        x, y = (int(v) for v in xy[n])
        win = aligned.depth_m[max(y - 3, 0):min(y + 4, h), max(x - 3, 0):min(x + 4, w)]
        if np.isfinite(win).any():
            z[n] = np.nanmedian(win)
    rest = np.flatnonzero(~odd)
    if not len(rest):
        return z
    xs = xy[rest, 0][:, None, None] + _AROUND[None, None, :]
    ys = xy[rest, 1][:, None, None] + _AROUND[None, :, None]
    inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    win = to_metres(units[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)], depth_scale)
    win[~inside] = np.nan
    flat = np.sort(win.reshape(len(rest), -1), axis=1)          # NaN last
    count = np.isfinite(flat).sum(axis=1)
    has = count > 0
    rows = np.arange(len(rest))
    low, high = flat[rows, np.maximum(count - 1, 0) // 2], flat[rows, count // 2]
    z[rest[has]] = ((low + high) / np.float32(2))[has]
    return z


def to_ir_pixels(aligned: AlignedFrameSet, pts: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Color-image points (N, 2) to the IR imager's own pixels, through the aligned depth there.

    IR shares depth's imager, so two IR frames are registered pixel for pixel in that geometry;
    after alignment to color they are not (each frame is carried by its own noisy depth, and
    where a frame has no depth its IR has no place at all). Returns the points and the pixel
    scale from color to IR, or None when the points have no depth around them."""
    fs = aligned.frameset
    if fs.ir is None or fs.depth is None:
        return None
    z = depth_around(aligned, pts)
    if not np.isfinite(z).any():
        return None
    z = np.where(np.isfinite(z), z, inplace.nanmedian(z))
    ci, di = aligned.color.intrinsics, fs.depth.intrinsics
    cam = deproject(pts[:, 0].astype(np.float64), pts[:, 1].astype(np.float64), z, ci)
    native = project(fs.extrinsics_between(StreamKind.COLOR, StreamKind.DEPTH).apply(cam), di)
    return native, di.fx / ci.fx


# MAX_CLIPPED_SHARE (above it a pair's speckle is only a floor) is defined in ``agent.liveness.power``
# beside the two above, for the same reason.


@dataclass(frozen=True)
class IrSkin:
    """The skin patches of a face in the IR imager's own pixels: a box and a mask inside it, and
    (the material region's, ``material_skin``) the part of the mask on the forehead's patches."""
    box: tuple[slice, slice]
    mask: np.ndarray
    forehead: np.ndarray | None = None
    lower: np.ndarray | None = None       # ... and on the lower cheeks' patches (``LOWER_PATCHES``), but
                                          # within ``RIM_REACH_PX`` of a raised line (``clear_of_rims``)
    eyes: np.ndarray | None = None        # discs over the eyes (``EYE_PATCHES``), in the same box, not skin
    lower_rims: int = 0                   # the lower cheeks' patches' pixels left out near a raised line

    def of(self, fs: AlignedFrameSet | FrameSet) -> np.ndarray:
        ir = _raw(fs).ir
        assert ir is not None                 # callers pass framesets with an IR frame only
        return ir.pixels[self.box].astype(np.float32)


def _raw(fs: AlignedFrameSet | FrameSet) -> FrameSet:
    """The camera's frameset (an aligned one's own)."""
    return fs.frameset if isinstance(fs, AlignedFrameSet) else fs


def skin_region(shape: tuple[int, int], centres: np.ndarray, radius: float,
                inside: tuple[np.ndarray, float] | None = None) -> np.ndarray:
    """Discs of ``radius`` (px) around ``centres`` (N, 2: x, y) on a ``shape`` array; with ``inside``
    (the face oval's points and an inset in px), only their pixels inside the oval shrunk by the
    inset."""
    mask = discs_mask(shape, centres, radius)
    if inside is not None:
        oval, inset_px = inside
        keep = polygon_mask(shape, oval).astype(np.uint8)
        inset = int(round(inset_px))
        if inset > 0:
            disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inset + 1, 2 * inset + 1))
            keep = np.asarray(cv2.erode(keep, disc), dtype=np.uint8)
        mask &= keep > 0
    return mask


def ir_skin(aligned: AlignedFrameSet, face: FaceObservation, points: tuple[int, ...] = SKIN_PATCHES,
            radius_ipd: float = SKIN_RADIUS_IPD, inset_ipd: float | None = None,
            forehead: tuple[int, ...] = (), lower: tuple[int, ...] = (), eyes: tuple[int, ...] = ()
            ) -> IrSkin | None:
    """Where the face's skin patches (cheeks, forehead) are in the IR imager's pixels, with room
    around them for the band-pass filters; only pixels with depth in this frame count. The patches
    are discs of ``radius_ipd`` times the eyes' spacing around the mesh landmarks ``points``; with
    ``inset_ipd``, only their pixels inside the face's oval shrunk by that much (away from the
    face's edge, which a turned head brings near the cheeks). ``forehead``, a subset of ``points``:
    the mask's pixels in their discs are also kept apart (``IrSkin.forehead``); ``lower`` likewise
    (``IrSkin.lower``), but for the pixels near a thin line standing off the face in this frame's depth
    (a spectacle rim: ``clear_of_rims``). ``eyes``: landmarks around which discs of ``EYE_RADIUS_IPD`` (pixels with
    depth, in the same box, whether or not the box reaches all of them) are kept as ``IrSkin.eyes``."""
    ir, depth = aligned.frameset.ir, aligned.frameset.depth
    if ir is None or depth is None:           # (to_ir_pixels needs both as well)
        return None
    n = len(points)
    lm = face.mesh.landmarks[list(points) + list(eyes) + [NOSE_TIP]
                             + (list(FACE_OVAL) if inset_ipd is not None else []), :2]
    mapped = to_ir_pixels(aligned, lm)
    if mapped is None:
        return None
    centres, scale = mapped
    eye_centres = centres[n:n + len(eyes)]
    nose_at = centres[n + len(eyes)]
    oval = centres[n + len(eyes) + 1:]
    centres = centres[:n]
    radius = max(radius_ipd * face.mesh.ipd_px * scale, 2.0)
    h, w = ir.pixels.shape
    pad = radius + 12                     # room for the sigma-5 band-pass around the patches
    x0, y0 = (int(max(np.floor(v - pad), 0)) for v in centres.min(axis=0))
    x1, y1 = int(min(np.ceil(centres[:, 0].max() + pad) + 1, w)), int(min(np.ceil(centres[:, 1].max() + pad) + 1, h))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    box = (slice(y0, y1), slice(x0, x1))
    origin = np.array([x0, y0])
    mask = skin_region((y1 - y0, x1 - x0), centres - origin, radius,
                       None if inset_ipd is None else (oval - origin, inset_ipd * face.mesh.ipd_px * scale))
    units = depth.pixels[box]
    mask &= units > 0
    behind = behind_nose_tip(depth.pixels, depth.depth_scale, nose_at, max(0.06 * face.mesh.ipd_px * scale, 2.0), box)
    if behind is not None:
        mask &= behind
    if mask.sum() < 20:
        return None
    upper = None
    if forehead:
        upper = mask & discs_mask(mask.shape, centres[[points.index(p) for p in forehead]] - origin, radius)
    below, rims = None, 0
    if lower:
        low_centres = centres[[points.index(p) for p in lower]] - origin
        below = mask & discs_mask(mask.shape, low_centres, radius)
        before = int(below.sum())
        below = clear_of_rims(depth.pixels[box], depth.depth_scale, below, low_centres, radius)
        rims = before - int(below.sum())
    over_eyes = None
    if eyes:
        e_radius = max(EYE_RADIUS_IPD * face.mesh.ipd_px * scale, 2.0)
        over_eyes = discs_mask(mask.shape, eye_centres - origin, e_radius) & (units > 0)
        if behind is not None:
            over_eyes &= behind
    return IrSkin(box, mask, upper, below, over_eyes, lower_rims=rims)


def behind_nose_tip(units: np.ndarray, depth_scale: float, nose: np.ndarray, radius: float,
                    box: tuple[slice, slice]) -> np.ndarray | None:
    """The pixels of ``box`` of a depth frame ``units`` (the IR imager's) not standing in front of the
    nose tip at ``nose`` (x, y) by ``OCCLUDER_MARGIN_MM`` (the quality gate's occluder margin): within
    the capture's yaw nothing of a face does, so those pixels are something else (a cap's brim above
    the eyes, which the gate lets through: ``agent.quality.depth.FaceDepth.brim``; a hand or a mask's
    prop), never the face's skin or eyes. None (nothing left out) when the nose tip's disc of
    ``radius`` holds fewer than 3 pixels of depth, as the gate has no evidence then either. A face
    with nothing in front of it loses no pixel."""
    h, w = units.shape
    cx, cy = float(nose[0]), float(nose[1])
    r = int(np.ceil(radius))
    x0, x1, y0, y1 = max(int(cx) - r - 1, 0), min(int(cx) + r + 2, w), max(int(cy) - r - 1, 0), min(int(cy) + r + 2, h)
    if x1 <= x0 or y1 <= y0:
        return None
    near = units[y0:y1, x0:x1]
    disc = discs_mask(near.shape, np.array([[cx - x0, cy - y0]]), radius) & (near > 0)
    if disc.sum() < 3:
        return None
    z_nose = float(np.median(near[disc])) * depth_scale
    limit = (z_nose - OCCLUDER_MARGIN_MM / 1000) / depth_scale          # in the frame's units
    region = units[box]
    return ~((region > 0) & (region < limit))


# A spectacle frame's rim stands off the cheek (its lower rim 15-20 mm in front of the cheek behind it,
# ``drivers/sim/head.glasses_layers``), a line 2-3 mm thick: a pixel of the aligned depth standing more
# than ``RIM_RAISED_M`` nearer than both of its neighbours ``RIM_SPANS_PX`` away along a row, a column or a
# diagonal lies on such a line (``raised_lines``). Skin has no such relief at this scale: over 6 px
# (6-8 mm at the cameras' working distances) a cheek curving with a radius of 50 mm or more stands
# well under 1 mm off its neighbours, and the nose, the one narrow ridge of a face, is far from the lower
# cheeks' discs. Measured on the simulator's frames (docs/liveness.md, "Spectacle rims over the lower
# cheek discs"): the lower rims over the lower discs stand 5-14 mm off their neighbours there, bare lower
# cheeks at most 4 mm (the depth's own noise).
RIM_RAISED_M = 0.005
RIM_SPANS_PX = (2, 3, 4, 5, 6)
# ... and a line: raised pixels in a connected group (8-neighbours) of fewer than this many are the
# depth's noise, not a frame. A rim crossing a disc is a line tens of pixels long: the groups reaching
# the lower discs held 35-708 pixels in the frames of ninth live/266 and train live/36 and /44 with their
# spectacles, the noise's 1-10 in those and in bare faces' (train live/3: one of 8 at the face's turned
# edge; /tmp/rim21/dump2.py's frames, docs/liveness.md).
RIM_MIN_PIXELS = 20
# How far from a raised line a pixel is left out of the lower cheeks' reading: the reach of the
# speckle's high-pass (``_highpass``, sigma 2 px: 2 sigma), which carries the line's own albedo step
# and hard dots (and the lens's edge beside it) into the pixels around it.
RIM_REACH_PX = 4


def raised_lines(z: np.ndarray) -> np.ndarray:
    """The pixels of a depth image ``z`` (metres, NaN: no depth) standing more than ``RIM_RAISED_M``
    nearer than both of their neighbours ``d`` pixels away, for some ``d`` in ``RIM_SPANS_PX``, along a
    row, a column or a diagonal, in a connected group of at least ``RIM_MIN_PIXELS``: a thin structure (a
    spectacle rim) in front of the surface behind it. A slope or a step has one neighbour nearer, never
    both farther; pixels without depth, or whose neighbours have none, are not raised; a lone pixel
    raised by the depth's noise is not a line."""
    h, w = z.shape
    out = np.zeros(z.shape, bool)
    for d in RIM_SPANS_PX:
        if 2 * d >= min(h, w):
            break
        for dy, dx in ((0, d), (d, 0), (d, d), (d, -d)):
            ax = abs(dx)
            centre = z[dy:h - dy, ax:w - ax]
            near = np.minimum(z[:h - 2 * dy, ax - dx:w - ax - dx], z[2 * dy:, ax + dx:w - ax + dx]) - centre
            out[dy:h - dy, ax:w - ax] |= near > RIM_RAISED_M
    if not out.any():
        return out
    n, labels, stats, _ = cv2.connectedComponentsWithStats(out.view(np.uint8), connectivity=8)
    lines = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= RIM_MIN_PIXELS)
    return np.isin(labels, lines[lines > 0])


def clear_of_rims(units: np.ndarray, depth_scale: float, lower: np.ndarray, centres: np.ndarray,
                  radius: float) -> np.ndarray:
    """The lower cheeks' discs ``lower`` (a mask on the depth units ``units``, the same pixels) without
    their pixels within ``RIM_REACH_PX`` of a raised line (``raised_lines``) around each of the discs'
    ``centres`` (px, in ``lower``'s frame; discs of ``radius``).

    The lower cheek discs (``LOWER_PATCHES``) are read apart on the premise that no spectacle frame
    reaches them (``ProjectorMeasure.pool``). With the chin down the lower rim, 15-20 mm in front of the
    cheek, slides over their upper halves (ninth live/266: 0.32-0.38 there, 0.24-0.26 below), a line of
    the frame's own NIR albedo with hard dots and the lens's edge beside it, which nothing subtracts
    in the dark; the premise holds again on what is left. The depth finds the rim whatever its albedo
    and whatever the ambient light. What is left out is only ever pixels: a mask or a print still reads
    as what is left of it (a flat print has no raised line and reads as before, a rigid mask with a
    raised ridge reads its resin beside the ridge), and too few left (``MIN_GROUP_PIXELS``) leaves the
    lower cheeks unread (``pair_light``), as before rims20's rule."""
    if not lower.any():
        return lower
    h, w = lower.shape
    pad = int(np.ceil(radius)) + RIM_REACH_PX + max(RIM_SPANS_PX) + 1
    out = lower.copy()
    for cx, cy in np.round(centres).astype(int):
        y0, y1, x0, x1 = max(cy - pad, 0), min(cy + pad + 1, h), max(cx - pad, 0), min(cx + pad + 1, w)
        if y1 <= y0 or x1 <= x0 or not lower[y0:y1, x0:x1].any():
            continue
        lines = raised_lines(to_metres(units[y0:y1, x0:x1], depth_scale))
        if not lines.any():
            continue
        size = 2 * RIM_REACH_PX + 1
        near = cv2.dilate(lines.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
        out[y0:y1, x0:x1] &= near == 0
    return out


def material_region(shape: tuple[int, int], centres: np.ndarray, oval: np.ndarray, ipd_px: float) -> np.ndarray:
    """The material measure's skin region on a ``shape`` array (``skin_region``): discs of
    ``MATERIAL_RADIUS_IPD`` around the skin patches' landmarks ``centres``, inside the face ``oval``
    shrunk by ``MATERIAL_INSET_IPD`` (both in eye spacings, ``ipd_px`` in these pixels)."""
    return skin_region(shape, centres, max(MATERIAL_RADIUS_IPD * ipd_px, 2.0), (oval, MATERIAL_INSET_IPD * ipd_px))


def material_skin(aligned: AlignedFrameSet, face: FaceObservation) -> IrSkin | None:
    """The projector material measure's skin in the IR imager's pixels (``material_region`` through
    :func:`ir_skin`): every reading of an on-off pair (the speckle, its interval, the dots'
    sharpness, the clipped share, the recorded pattern's own reading) is read on these pixels.

    The skin patches alone (``SKIN_RADIUS_IPD``) hold a few dozen dots, and every pair of a session
    sees the same ones, so which dots fell there moved a session's sharpness by +-0.3-0.4 on every
    camera (docs/liveness.md, "A session's dots"); this region holds about three times as many."""
    return ir_skin(aligned, face, SKIN_PATCHES, MATERIAL_RADIUS_IPD, MATERIAL_INSET_IPD, FOREHEAD_PATCHES,
                   LOWER_PATCHES, EYE_PATCHES)


def projector_light(lit: AlignedFrameSet, dark: AlignedFrameSet, face: FaceObservation,
                    same: tuple[AlignedFrameSet, AlignedFrameSet] | None = None) -> ProjectorLight:
    """Speckle contrast of the projector's own light on the skin from one on-off pair, with what
    its precision depends on (``ProjectorLight.variance``; a session's pairs are pooled by
    ``ProjectorMeasure.pool``, which decides what they can say).

    IR with the projector on minus IR with it off (consecutive frames, in the IR imager's own
    pixels) cancels ambient NIR, leaving the projector's dots as the skin returned them: skin scatters
    them under the surface (soft, low contrast), resin and plaster don't. The difference also
    carries the shot noise of everything both frames saw, which inflates the contrast once
    ambient NIR is strong. ``same`` — two consecutive frames with the projector in one state —
    measures that noise on the same skin, with the same filter; it is scaled to the on-off pair
    by the photon-transfer law (variance proportional to signal) and removed."""
    return projector_light_on(material_skin(lit, face) if dark.frameset.ir is not None else None, lit, dark, same)


def projector_light_on(patch: IrSkin | None, lit: AlignedFrameSet, dark: AlignedFrameSet | FrameSet,
                       same: tuple[AlignedFrameSet | FrameSet, AlignedFrameSet | FrameSet] | None = None,
                       reference: DotReference | PatternFit | None = None) -> ProjectorLight:
    """:func:`projector_light` on the lit frame's skin as :func:`material_skin` found it (None:
    none found): the judge has them from measuring that frame's cues. With the projector's
    ``reference`` pattern, the pair is also tested against it (:func:`predicted_pattern`); the
    reference may be given as its prediction on the lit frame with the pattern's side of the
    reading worked out ahead (:func:`pattern_fit`, :meth:`PatternFit.warm`): taken when predicted
    for this very skin and lit frame, else predicted here from its reference. Of the
    unlit frame and the noise pair only the IR imager's own pixels are read: they may be the
    camera's framesets, not yet aligned (the judge reads a window's last pairs while its last
    frameset is still being aligned and measured)."""
    nan = float("nan")
    if _raw(dark).ir is None or patch is None:
        return ProjectorLight(nan, nan, nan, 0, nan)
    ir = patch.of
    quiet = None
    if same is not None and _raw(same[0]).ir is not None and _raw(same[1]).ir is not None:
        quiet = (ir(same[0]), ir(same[1]))
    if isinstance(reference, PatternFit) and not reference.of(patch, lit):
        if reference.reference is None:
            raise ValueError("a pattern worked out ahead without its reference, for another frame")
        reference = reference.reference          # predicted for another skin or frame: predicted here again
    predicted = reference if isinstance(reference, PatternFit) else (
        None if reference is None else pattern_fit(reference, patch, lit))
    light = pair_light(ir(lit), ir(dark), patch.mask, quiet, predicted=predicted, checked=reference is not None,
                       forehead=patch.forehead, lower=patch.lower, eyes=patch.eyes)
    return replace(light, lower_rims=patch.lower_rims) if patch.lower_rims else light


# The measure's small search along the rows (px) for the predicted pattern: a real projector's
# pattern drifts a little with temperature and the enrolled f·b is known to a fraction of a pixel.
PATTERN_SHIFTS = (-1.0, -0.5, 0.0, 0.5, 1.0)


def predicted_pattern(reference: DotReference, patch: IrSkin, lit: AlignedFrameSet
                      ) -> tuple[np.ndarray, np.ndarray] | None:
    """Where the projector's dots must fall on ``patch`` of the lit frame, from the frame's own depth
    there (``reference.predict``): ``(pattern, covered)`` (:func:`pair_light` also tries it moved by
    each of ``PATTERN_SHIFTS``). None when the reference was recorded for another imager mode or
    the patch has no depth."""
    depth = _patch_depth(reference, patch, lit)
    if depth is None:
        return None
    raw, good = depth
    z = np.where(good, raw, np.float32(np.median(raw[good])))
    y0, x0 = patch.box[0].start or 0, patch.box[1].start or 0
    return reference.predict(x0, y0, z)


def _patch_depth(reference: DotReference, patch: IrSkin, lit: AlignedFrameSet
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """The lit frame's depth on ``patch``'s box (metres, 0 where none) and where it has depth; None
    when the reference was recorded for another imager mode or the box holds under 20 depth pixels."""
    fs = lit.frameset
    if fs.ir is None or fs.depth is None:
        return None
    ir = fs.ir
    if not reference.fits(ir.intrinsics.width, ir.intrinsics.height, ir.intrinsics.fx):
        return None
    raw = fs.depth.pixels[patch.box].astype(np.float32) * np.float32(fs.depth.depth_scale)
    good = raw > 0
    if good.sum() < 20:
        return None
    return raw, good


# The projector's light on a surface, as the reference's reading is shaded (``incidence_shading``):
# ``SHADING_FLOOR + (1 - SHADING_FLOOR) * cos`` over the squared distance, the cosine between the
# surface's normal and the ray from the projector. A real projector's irradiance on a diffuse
# surface is ``cos / r**2`` (floor 0); the simulator shades its dots by ``0.3 + 0.7 * cos`` (its
# ambient's convention, ``drivers/sim/sensor.py``) times ``(0.5 / z)**2``. The floor is the
# simulator's: on a real camera the term then under-corrects (a chin-up forehead keeps part of its
# softness), it never over-corrects; and it bounds the weight any cosine can give one dot against
# another to 1 / 0.3 (docs/liveness.md, "The dots' shading taken out of the reference").
SHADING_FLOOR = 0.3
# The depth is smoothed at the mid band's outer scale (``SHAPE_SIGMAS[2]``) before its normals are
# taken: a depth map's pixel noise (or a forged depth's facets finer than that) makes no shading of
# its own in the fine band, which is all the reading's numerator.
SHADING_SIGMA_PX = SHAPE_SIGMAS[2]
# ``ProjectorMeasure`` scores the dots' sharpness times each pair's shading gain (``ProjectorLight.
# shading_gain``, never under 1) when True; False: the shaded reading decides nothing.
SHADED_REFERENCE = False
# The shaded reading is worked out (one shading field and four blurs per pair, on the judge's threads) only when
# it is scored or this is True (measuring it: ``bench.shading_injector``, a pad-eval run for the records); off,
# it is NaN and costs nothing (issue 20's overhead budget). Both are read at each call.
SHADED_REFERENCE_READ = False


def patch_shading(reference: DotReference, patch: IrSkin, lit: AlignedFrameSet) -> np.ndarray | None:
    """:func:`incidence_shading` on ``patch``'s box of the lit frame from the depth on the skin's own
    pixels (the box's other pixels, hair, ears, the background, are other surfaces: a depth edge
    smoothed into the skin would tilt its normals), the projector at the enrolled ``f·b`` over
    ``fx`` along the baseline (the reference's own, measured on this camera at its enrolment: no
    profile's nominal baseline is read), or None (under 20 skin pixels with depth)."""
    depth = _patch_depth(reference, patch, lit)
    ir = lit.frameset.ir
    if depth is None or ir is None:
        return None
    z, good = depth
    on_skin = good & patch.mask
    if on_skin.sum() < 20:
        return None
    y0, x0 = patch.box[0].start or 0, patch.box[1].start or 0
    return incidence_shading(z, on_skin, (x0, y0), ir.intrinsics, reference.parallax_px_m / reference.fx)


def incidence_shading(z: np.ndarray, good: np.ndarray, origin: tuple[int, int], intrinsics: Intrinsics,
                      baseline_m: float) -> np.ndarray:
    """The projector's relative irradiance on each pixel of a depth box (``z`` metres where ``good``,
    its top-left pixel ``origin`` (x, y) of the imager, pinhole ``intrinsics``): ``SHADING_FLOOR +
    (1 - SHADING_FLOOR) * cos`` over the squared distance to the projector, ``cos`` between the
    normal of the depth smoothed at ``SHADING_SIGMA_PX`` (a normalised convolution: pixels without
    depth take their neighbours') and the ray to the projector at ``(baseline_m, 0, 0)`` in the
    imager's frame (``dotref``: ``u = u_p + f·b/z``). Normalised to a median of 1 on ``good``."""
    sigma = float(SHADING_SIGMA_PX)
    w8 = cv2.GaussianBlur(good.astype(np.float32), (0, 0), sigma)
    zs = cv2.GaussianBlur(np.where(good, z, np.float32(0.0)), (0, 0), sigma)
    fill = np.float32(np.median(z[good]))
    zs = np.where(w8 > 1e-3, zs / np.maximum(w8, np.float32(1e-3)), fill).astype(np.float32)
    h, w = z.shape
    u = np.arange(origin[0], origin[0] + w, dtype=np.float32)[None, :]
    v = np.arange(origin[1], origin[1] + h, dtype=np.float32)[:, None]
    p = np.stack([(u - np.float32(intrinsics.ppx)) * zs / np.float32(intrinsics.fx),
                  (v - np.float32(intrinsics.ppy)) * zs / np.float32(intrinsics.fy), zs])
    n = np.cross(np.gradient(p, axis=2), np.gradient(p, axis=1), axis=0)
    n *= np.where(np.einsum("kij,kij->ij", n, p) > 0, np.float32(-1.0), np.float32(1.0))   # toward the camera
    ray = np.array([baseline_m, 0.0, 0.0], np.float32)[:, None, None] - p
    r2 = np.einsum("kij,kij->ij", ray, ray)
    cos = np.einsum("kij,kij->ij", n, ray) / np.maximum(np.sqrt(np.einsum("kij,kij->ij", n, n) * r2), 1e-12)
    shade = (SHADING_FLOOR + (1.0 - SHADING_FLOOR) * np.clip(cos, 0.0, 1.0)) / np.maximum(r2, 1e-6)
    return (shade / np.median(shade[good])).astype(np.float32)


class PatternFit:
    """The predicted pattern's side of a pair's reading (:func:`predicted_pattern`), whatever the
    pair's difference: the pattern at each of ``PATTERN_SHIFTS`` with its coverage and its fit's bases
    (``dotref.PatternBands``: 35 of the fit's 38 blurs), and the pattern's ``_blurs``
    (:func:`reference_dot_shape`). It depends on the lit frame alone (its depth and skin), so the
    judge works it out once that frame is measured, before the pair's unlit frame or noise pair
    comes (:meth:`warm`); else each part is worked out when first read. The numbers are the same
    either way. ``reference`` and ``source`` (the skin and lit frame): what it was predicted from
    (:func:`pattern_fit`; ``of``).

    One thread may :meth:`warm` it while another reads the same pair (the judge's pair lit by a
    window's last frameset: the reading goes on with the difference's side meanwhile): a reader
    waits at its first read of the pattern's side until the warming is done; once a reader has
    begun, :meth:`warm` does nothing (the reader works out what it reads; no part is worked out by
    two threads)."""

    def __init__(self, pattern: np.ndarray, covered: np.ndarray, reference: DotReference | None = None,
                 source: tuple[IrSkin, AlignedFrameSet] | None = None, shading: np.ndarray | None = None):
        self.pattern, self.covered, self.reference, self.source = pattern, covered, reference, source
        self.shading = shading                   # the projector's light model on the patch (``incidence_shading``)
        self._shifts: list[tuple[PatternBands, np.ndarray]] | None = None
        self._blurs: list[np.ndarray] | None = None
        self._shaded_blurs: list[np.ndarray] | None = None
        self._lock = threading.Lock()
        self._read = False

    @classmethod
    def of_predicted(cls, predicted: tuple[np.ndarray, np.ndarray] | PatternFit) -> PatternFit:
        return predicted if isinstance(predicted, PatternFit) else cls(*predicted)

    def of(self, patch: IrSkin | None, lit: AlignedFrameSet) -> bool:
        """Predicted for this very skin and lit frame."""
        return self.source is not None and self.source[0] is patch and self.source[1] is lit

    def shifts(self) -> list[tuple[PatternBands, np.ndarray]]:
        """The pattern's fit bases and coverage at each of ``PATTERN_SHIFTS`` (:func:`shifted_patterns`)."""
        with self._lock:
            self._read = True
            return self._shifts_now()

    def _shifts_now(self) -> list[tuple[PatternBands, np.ndarray]]:
        if self._shifts is None:
            self._shifts = [(PatternBands(p), c) for p, c in shifted_patterns(self.pattern, self.covered)]
        return self._shifts

    def blurs(self) -> list[np.ndarray]:
        """The pattern's ``_blurs`` (``SHAPE_SIGMAS``)."""
        with self._lock:
            self._read = True
            return self._blurs_now()

    def _blurs_now(self) -> list[np.ndarray]:
        if self._blurs is None:
            self._blurs = _blurs(self.pattern)
        return self._blurs

    def shaded_blurs(self) -> list[np.ndarray] | None:
        """The ``_blurs`` of the pattern times its ``shading`` (None without one)."""
        with self._lock:
            self._read = True
            return self._shaded_blurs_now()

    def _shaded_blurs_now(self) -> list[np.ndarray] | None:
        if self._shaded_blurs is None and self.shading is not None:
            self._shaded_blurs = _blurs(self.pattern * self.shading)
        return self._shaded_blurs

    def warm(self) -> PatternFit:
        """Every part worked out now (then read from any thread), unless a reader has begun."""
        with self._lock:
            if not self._read:
                for bands, _ in self._shifts_now():
                    bands.bases()
                self._blurs_now()
                self._shaded_blurs_now()
        return self


# A predicted pattern as ``pair_light`` takes it: ``(pattern, covered)`` or worked out ahead.
_Predicted = tuple[np.ndarray, np.ndarray] | PatternFit
# A pair's pattern readings: ``(unmatched, reference_sharpness, shaded_reference_sharpness)``.
_PatternFields = tuple[float, float, float]


def pattern_fit(reference: DotReference, patch: IrSkin, lit: AlignedFrameSet) -> PatternFit | None:
    """:func:`predicted_pattern` as a :class:`PatternFit` (nothing worked out yet) with the
    projector's light model on the patch (:func:`patch_shading`; only when ``SHADED_REFERENCE`` or
    ``SHADED_REFERENCE_READ``, else None and the shaded reading NaN), or None."""
    predicted = predicted_pattern(reference, patch, lit)
    if predicted is None:
        return None
    shading = patch_shading(reference, patch, lit) if SHADED_REFERENCE or SHADED_REFERENCE_READ else None
    return PatternFit(*predicted, reference, (patch, lit), shading=shading)


def shifted_patterns(pattern: np.ndarray, covered: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The predicted pattern and its coverage moved along the rows by each of ``PATTERN_SHIFTS`` pixels
    (the enrolment's parallax error), the unshifted pair as it is."""
    for shift in PATTERN_SHIFTS:
        if shift == 0.0:
            yield pattern, covered
            continue
        move = np.array([[1, 0, shift], [0, 1, 0]], np.float32)
        size = (pattern.shape[1], pattern.shape[0])
        yield (np.asarray(cv2.warpAffine(pattern, move, size, flags=cv2.INTER_LINEAR)),
               np.asarray(cv2.warpAffine(covered.astype(np.float32), move, size)) > 0.999)


# A pair's reading when the fit to the projector's pattern explained none of its band energy at every
# shift it could be tested at (``dotref.match_pattern``'s inf: the non-negative fit's weights all 0, the
# dots on the skin not the pattern's, as another unit's are): the ratio is unbounded, and read as 1e300 (over
# any ratio a fit explaining anything reads; the mean of two stays finite in a median), so the pair counts as
# tested (``pattern_checked``) and the session's median as far off the pattern as it is (unit33; before, such
# a pair was "untestable" and left the session unchecked).
NOTHING_EXPLAINED = 1e300


def _pattern_reading(diff: np.ndarray, skin: np.ndarray, predicted: _Predicted | None,
                     noise_diff: np.ndarray | None, noise_scale: float) -> float:
    """The band energy of ``diff`` off the projector's predicted pattern over the energy on it
    (``dotref.match_pattern``), at the best-fitting of ``PATTERN_SHIFTS``; ``NOTHING_EXPLAINED`` when
    the fit explained nothing at every shift tested; inf when untestable (no prediction, or too little
    of the skin covered or lit at every shift)."""
    if predicted is None:
        return float("inf")
    best = None
    nothing = False
    pair = PairBands(diff, noise_diff)          # the difference's part of the fit, once for every shift
    for p, c in PatternFit.of_predicted(predicted).shifts():   # the pattern's, once for every difference
        match = match_pattern(pair, skin, p, c, noise_scale=noise_scale)
        if np.isfinite(match.unmatched) and (best is None or match.unmatched < best.unmatched):
            best = match
        nothing |= match.unmatched == float("inf")
    if best is not None:
        return best.unmatched
    return NOTHING_EXPLAINED if nothing else float("inf")


# A pixel beside the skin patches whose on-off difference is more than this many times the patches'
# brightest is a glint: the projector mirrored by a smooth surface (a spectacle lens), light no
# diffuse surface returns. A diffuse neighbour under the same dots returns at most its albedo over
# the skin's (a white surface against the darkest skin's NIR albedo, about 0.25: 4x) times the
# skin's own brightest; the simulator's faces, masks and head models read at most 1.34x beside
# their patches (train), spectacle glints 8-13x (field #27 and its pose on a D435).
GLINT_OVER_SKIN = 4.0


def without_glints(on: np.ndarray, off: np.ndarray, skin: np.ndarray,
                   same: tuple[np.ndarray, np.ndarray] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None, int]:
    """A pair's frames with the projector's glints taken out: ``(on, off, skin, same, pixels)``.

    Every reading of a pair is a band-pass of the difference read on the skin's pixels, and the
    band-passes reach 4 sigma (22 px at the widest, ``SHAPE_SIGMAS``) past them. A glint near the
    patches (the projector mirrored by a spectacle lens, tens of times the skin's dots) then puts
    its own energy into the skin's readings: the mid and low bands' most (the dots' sharpness falls
    to 0.1-0.2, as no skin reads) and the speckle's high-pass (the contrast rises toward a hard
    surface's). That is light off the skin, not the skin's dots (field #27, docs/liveness.md).

    A glint is found where the difference outside the skin stands over ``GLINT_OVER_SKIN`` times
    the skin's brightest, and takes with it every pixel connected to it that is brighter than the
    skin's brightest, plus one pixel around (the spot's rim). Those pixels are set, in each frame,
    to that frame's mean over the rest of the box: no dots there and the surroundings' average
    light, so the difference there is flat at the skin's level and adds next to nothing to any
    band. Skin pixels under such a spot leave the mask. With no glint the frames are returned as
    they are (the readings do not change). A glint on the skin's own pixels is not found (the
    skin's brightest is then the glint): its pixels clip and count toward ``MAX_CLIPPED_SHARE``."""
    npix = int(skin.sum())
    if npix == 0:
        return on, off, skin, same, 0
    diff = on - off
    brightest = float(diff[skin].max())
    if not brightest > 0:
        return on, off, skin, same, 0
    core = (diff > GLINT_OVER_SKIN * brightest) & ~skin
    if not core.any():
        return on, off, skin, same, 0
    _, labels = cv2.connectedComponents((diff > brightest).astype(np.uint8), connectivity=8)
    glint = np.isin(labels, np.unique(labels[core]))
    glint = cv2.dilate(glint.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)

    def filled(x: np.ndarray) -> np.ndarray:
        return np.where(glint, np.float32(x[~glint].mean()), x).astype(np.float32)

    same = None if same is None else (filled(same[0]), filled(same[1]))
    return filled(on), filled(off), skin & ~glint, same, int(glint.sum())


# Dark fine structures over sunlit skin (hair strands, lashes, a brow's edge, a fringe's tips): a pixel
# of an unlit frame under this share of its 5 x 5 neighbourhood's median is one (skin's own NIR texture,
# pores and freckles, is a few per cent; shot noise at 118 DN is 2 DN).
DARK_EDGE_SHARE = 0.6
# The measure keeps off the pixels within this many (px) of one: the structure's sway between two
# frames 33 ms apart moves its edges by a fraction of a pixel to a pixel or two, and the speckle's
# high-pass (sigma 2 px) and the finest shape bands (``SHAPE_SIGMAS`` 0.7-1.4) reach about as far.
DARK_EDGE_REACH = 2
# Only where the ambient light on the skin (the unlit frame's mean) is at least this many times the
# projector's (the on-off difference's mean): an edge of the ambient's image moving by a fraction d of
# a pixel changes its pixels by d x its contrast x the ambient level, which is then more than d x the
# contrast x twice the dots' level, the dots' own fine amplitude at most. Elsewhere the dots dominate
# and the measure reads every skin pixel as before: the recorded sessions with a projector share of a
# third or less (ambient twice the dots) are all in direct sun (eighth: 86 of 300 lives, 32 of 145
# attacks; ninth, its CCTV flood's included: none). In direct sun (eighth live/139: ambient 6x the
# dots) the ambient's moving edges are what reads hard (docs/liveness.md, "Direct sun").
AMBIENT_OVER_DOTS = 2.0
# At most this share of the skin is left out; a region with more dark structure than that (not a few
# strands over skin) is read whole, as before, its motion erring hard.
MAX_DARK_EDGE_SHARE = 0.5
# ... and only when the pixels left out hold no more of the projector's light (the on-off difference's
# mean) than this times the pixels kept. A dark structure of the ambient's image (a strand, a lash, a
# shadow) takes no more of the dots than the skin beside it (a strand's low albedo takes less; its moved
# edges read + and - and cancel in the mean): only dark structures that follow the dots can. An ambient
# light dark where the dots fall (an attacker's lamp with holes, or an injected stream: the same dark
# spots in the lit and the unlit frames, the difference left exactly the camera's) would otherwise hand
# the measure the valleys between a hard surface's dots (review21: eighth mask/6 with such spots at its
# difference's finest 3 % read 1.585 -> 1.197 sharp, speckle 0.300 -> 0.198). Left out / kept per pair:
# eighth's direct-sun lives 0.75-1.05, those spots 1.14-1.33 (docs/liveness.md, "Direct sun and the
# CCTV flood's shading, attacked").
MAX_DARK_EDGE_DOTS = 1.15


def without_dark_edges(on: np.ndarray, off: np.ndarray, skin: np.ndarray,
                       same: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, int]:
    """The skin mask of a pair without the pixels near dark fine structures, when the ambient light
    drowns the dots: ``(skin, pixels left out)``.

    In direct sun the skin's ambient NIR is several times the dots' light, and a hair strand, a
    lash or a brow's edge over sunlit skin is a dark line of a pixel or two at that level. The face's
    sway moves it between frames 33 ms apart; in the on-off difference its moved edge reads as a
    sharp, bright feature (the dots' sharpness and the speckle both harder than skin's), and the
    nearest same-state pair, taken at another moment of the sway, subtracts another amount of it.
    eighth live/139 (5,147 lux): 1 % of the skin's pixels hold 64-76 % of a same-state pair's
    high-pass energy where the face moved; no translation of the frames (registration) removes
    it. Read off those structures the pairs of its window read 1.04-1.26 sharp (1.15 pooled) and
    speckle 0.225, as the same face at 1,500 lux does (1.135, 0.222), instead of 0.68-1.54 (1.39).

    The structures are found in the unlit frames (the pair's own and the noise pair's when it is
    unlit: the dots are not in them, so no dot is ever taken for one), as pixels under
    ``DARK_EDGE_SHARE`` of their neighbourhood's median; every skin pixel within
    ``DARK_EDGE_REACH`` of one leaves the mask (the frames are not changed: every reading of the
    pair, its noise pair's included, is then read on the same fewer pixels). Only when the unlit
    frame's mean on the skin is at least ``AMBIENT_OVER_DOTS`` times the difference's; never more
    than ``MAX_DARK_EDGE_SHARE`` of the skin (then nothing is left out), and never when the pixels left
    out hold over ``MAX_DARK_EDGE_DOTS`` times the kept pixels' mean of the difference (dark structures
    that follow the dots select the valleys between them: then nothing is left out either). A moved
    print or screen keeps its dots on the pixels left, as sharp as they were: only the moving ambient
    image is read less."""
    npix = int(skin.sum())
    if npix == 0:
        return skin, 0
    m_off = float(off[skin].mean())
    if not m_off >= AMBIENT_OVER_DOTS * float((on - off)[skin].mean()):
        return skin, 0
    unlit = [off]
    if same is not None and float((same[0][skin].mean() + same[1][skin].mean()) / 2) < \
            (float(on[skin].mean()) + m_off) / 2:
        unlit += [same[0], same[1]]
    dark = np.zeros(skin.shape, bool)
    for x in unlit:
        x = np.ascontiguousarray(x, dtype=np.float32)
        dark |= x < DARK_EDGE_SHARE * cv2.medianBlur(x, 5)
    size = 2 * DARK_EDGE_REACH + 1
    near = cv2.dilate(dark.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool) & skin
    out = int(near.sum())
    if out == 0 or out > MAX_DARK_EDGE_SHARE * npix:
        return skin, 0
    diff = on - off
    if float(diff[near].mean()) > MAX_DARK_EDGE_DOTS * max(float(diff[skin & ~near].mean()), 0.0):
        return skin, 0
    return skin & ~near, out


# The least a group of the material region's discs (the forehead's, the cheeks') must keep to be read
# apart (px; a disc of 0.2 eye spacings at 60 px between the eyes is ~450).
MIN_GROUP_PIXELS = 100
# How much harder (speckle contrast, a ratio of the pairs' medians) a session's forehead discs must
# read than its cheeks' for its speckle to be the cheeks' alone. One surface reads alike on both
# groups but for which dots fell where: on a synthetic field of one material the two halves differ
# by up to 15 % (a photon-noise margin alone dropped the forehead on every pair, the softer half
# chosen each time: a mask's reading fell 0.326 -> 0.309, tests/liveness/test_forehead_occluder.py),
# train's bare live faces up to 1.25x (docs/liveness.md). A fringe or a spectacle frame adds its own
# texture: seventh's refused live faces read 0.37-0.47 on the forehead, 0.19-0.27 on the cheeks.
FOREHEAD_OVER_CHEEKS = 1.25
# ... unless the forehead's own dots are this sharp (``dot_shape``): the attack end of the train fit
# of ``projector_sharpness`` (calibration.json, 1.4893; with the unlit texture taken out of the dots'
# shape no train live's forehead or lower cheeks crossed it, one live's cheeks did, 1.27 -> 1.56, its
# verdict the same; docs/liveness.md, "Attack B on textured surfaces"), where hard surfaces' dots
# begin. Train's live
# foreheads read 0.62-1.28 (16 faces), seventh's with a fringe or spectacles 0.47-1.56; the masks',
# head models' and paper masks' 1.57-2.49, seventh's printed eye bands 1.32-2.25 (docs/liveness.md).
# The cheeks' dots must read under it too for the forehead to be dropped: train's 59 live cheeks read
# 0.63-1.48, its masks' and head models' 1.6-2.4 (docs/liveness.md, "The forehead rule, attacked").
FOREHEAD_SHARP_DOTS = 1.4893
# How much harder (the pairs' median speckle contrast) what a spectacle frame can reach (the region but
# the lower cheeks' discs, or the upper cheeks' when the forehead is out) must read than the lower
# cheeks' discs for the session's speckle to be the lower cheeks' alone (``ProjectorMeasure.pool``).
# Chosen on train (/tmp/rims20/probe3.py, run_presentation as pad-eval, docs/liveness.md): its hard
# attacks read 0.94-1.08 (mask/0, /1, head_model/0, head_model_hand/0, paper_mask/0, their lower
# cheeks' dots 1.64-2.49 sharp: the guard holds them anyway), glasses_print/0 1.11 (its lower cheeks
# the wearer's skin); train lives drawn with spectacles 0.91-1.29; seventh's refused spectacle
# wearers 1.24 (live/3). Bare faces may cross it by which dots fell where: skin read on skin.
RIMS_OVER_LOWER = 1.15


def _unshaded_part(lights: list[ProjectorLight],
                   med: Callable[[list[float]], float]) -> tuple[list[ProjectorLight], bool]:
    """A session's pairs read on the part of the region whose unlit frames' texture the albedo explains,
    when the whole region's does not (``ProjectorMeasure.pool``): ``(lights, True)`` with every pair's
    speckle the cheeks' alone (``cheeks_only``) when the pairs' median ``unexplained`` is over
    ``MAX_UNEXPLAINED_TEXTURE`` on the whole region and within it on the cheeks' discs, else the lower
    cheeks' alone (``lower_only``) when within it there; ``(lights, False)`` unchanged otherwise.

    A point-like NIR source off the camera's axis (a CCTV dome's 850 nm flood) shades whatever stands
    out of the skin at its own angle: a fringe's strands, a spectacle frame's rims and the shadows they
    cast, a beard. That shading lies in the unlit frame only (the projector beside the camera lights the
    same relief head-on), so the albedo cannot explain it, and the depth camera, at a millimetre or so,
    does not resolve what casts it (docs/liveness.md, "The CCTV flood's shading"). It lies where the
    relief is, over the forehead and the upper cheeks, and an attacker's patterned lamp lies wherever
    the lamp reaches. Reading the part where the unlit frame is explained is an honest reading (a lamp
    not there changes nothing there): a lamp over the whole face, as over a flat print or a screen,
    leaves no part explained and the pairs one-sided as before; a lamp kept off the cheeks only hands
    the measure the cheeks' own dots. Only when that part's own dots read as skin's (its median
    sharpness under ``FOREHEAD_SHARP_DOTS``): a mask's cheeks can read as soft as skin's in speckle, not
    in the dots' shape (the forehead rule's guard, which a fringe over a mask already meets). The part
    keeps ``MIN_GROUP_PIXELS`` at least (``pair_light`` reads it apart only then)."""
    read = [x for x in lights if np.isfinite(x.contrast2) and x.cheeks is not None]
    if read and med([x.unexplained for x in read]) > MAX_UNEXPLAINED_TEXTURE:
        for parts, only in (([x.cheeks for x in read], ProjectorLight.cheeks_only),
                            ([x.lower for x in read], ProjectorLight.lower_only)):
            got = [p for p in parts if p is not None and np.isfinite(p.contrast2)]
            if len(got) * 2 > len(read) and med([p.unexplained for p in got]) <= MAX_UNEXPLAINED_TEXTURE \
                    and med([p.sharpness for p in got]) < FOREHEAD_SHARP_DOTS:
                return [only(x) for x in lights], True
    # Else every pair's skin clear of the shading, pixel by pixel (``clear_of_shading``): a fringe's
    # strands and a frame's rims over the cheeks too. Only when the whole region's dots read as skin's
    # (the pixels are chosen from the unlit frame, which an injector controls; the whole region's dots
    # are not moved by which pixels the speckle is read on) and the part's own do.
    measured = [x for x in lights if np.isfinite(x.contrast2)]
    if not measured or not med([x.unexplained for x in measured]) > MAX_UNEXPLAINED_TEXTURE:
        return lights, False
    clear = [x.clear for x in measured if x.clear is not None and np.isfinite(x.clear.contrast2)]
    if len(clear) * 2 > len(measured) and med([p.unexplained for p in clear]) <= MAX_UNEXPLAINED_TEXTURE \
            and med([p.sharpness for p in clear]) < FOREHEAD_SHARP_DOTS \
            and med([x.sharpness for x in measured]) < FOREHEAD_SHARP_DOTS:
        return [x.clear_only() for x in lights], True
    return lights, False


# The flood's shading is found per pixel (``clear_of_shading``) as ``albedo_texture`` finds it on a
# region: the unlit frame's high-pass energy beyond its covariance with the difference's, here averaged
# over a Gaussian of this sigma (px: the speckle high-pass's own, ``_highpass``) on the skin's pixels.
SHADING_BLUR_PX = 2.0
# At most this share of the skin is left out as shaded: a region with more (an attacker's lamp over all
# of it) is read whole, one-sided, as before. A choice, not a fit (train has no flood): ninth live/10 (a
# fringe, spectacles, a flood 1.4 times the dots) leaves out 0.72, live/0 and /15 0.6; live/32 and /48
# 0.78-0.88, not read (docs/liveness.md, "The flood's shading, pixel by pixel").
MAX_SHADED_SHARE = 0.75
# Shaded pixels are grown by this much (px) before they leave: the speckle high-pass's sigma, which
# carries a lit strand's edge into the pixels beside it (as ``DARK_EDGE_REACH``).
SHADING_REACH_PX = 2


def clear_of_shading(img: _PairImages, skin: np.ndarray) -> tuple[np.ndarray, int]:
    """The skin mask of a pair without the pixels whose unlit texture the albedo does not explain:
    ``(skin, pixels left out)``.

    A directional NIR flood (a CCTV dome's 850 nm) lights what stands out of the skin at its own angle
    (strands of a fringe, a spectacle frame's rims) and shades what lies behind it; the projector
    beside the camera lights the same relief head-on. That shading is in the unlit frame only, and
    the depth camera does not resolve what casts it (docs/liveness.md, "The CCTV flood's shading").
    Per pixel, as ``albedo_texture`` does for a region: the unlit frame's high-pass over its mean
    (``x``) against the difference's over its mean (``y``), ``x (x - y)`` averaged over
    ``SHADING_BLUR_PX`` on the skin, its noise terms removed; where that is over
    ``MAX_UNEXPLAINED_TEXTURE`` the pixel, and every pixel within ``SHADING_REACH_PX`` of it, leaves
    the mask. Nothing is left out when none is so, when
    more than ``MAX_SHADED_SHARE`` of the skin would go or fewer than ``MIN_GROUP_PIXELS`` stay, nor when
    the pixels left out hold over ``MAX_DARK_EDGE_DOTS`` times the kept pixels' mean of the difference
    (an unlit texture that follows the dots would select the valleys between them, review 21). The
    pixels are chosen from the unlit frame alone, which an injector controls: the reading on what is
    left is the same surface's speckle on fewer pixels, and the session is read so only when the whole
    region's dots read as skin's (``_unshaded_part``), which no choice of pixels moves."""
    npix = int(skin.sum())
    if img.same is None or img.same_diff is None or npix == 0:
        return skin, 0
    level = float(img.diff[skin].mean())
    m_off = float(img.off[skin].mean())
    if not (m_off > MIN_ALBEDO_LEVEL_DN and level > MIN_PROJECTOR_LEVEL_DN):
        return skin, 0
    a, b = img.same
    m_same = float((a[skin].mean() + b[skin].mean()) / 2)
    off_noise = float(np.var(img.hp_same[skin])) / 2 * m_off / max(m_same, 1.0)
    x = img.hp_off / m_off
    y = img.hp_diff / level
    w = skin.astype(np.float32)
    num = cv2.GaussianBlur((x * (x - y) * w).astype(np.float32), (0, 0), SHADING_BLUR_PX)
    den = cv2.GaussianBlur(w, (0, 0), SHADING_BLUR_PX)
    local = num / np.maximum(den, 1e-6) - off_noise / m_off ** 2 - off_noise / (m_off * level)
    out = local > MAX_UNEXPLAINED_TEXTURE
    if SHADING_REACH_PX:
        size = 2 * SHADING_REACH_PX + 1
        out = cv2.dilate(out.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)
    out &= skin
    n_out = int(out.sum())
    if n_out == 0 or n_out > MAX_SHADED_SHARE * npix or npix - n_out < MIN_GROUP_PIXELS:
        return skin, 0
    if float(img.diff[out].mean()) > MAX_DARK_EDGE_DOTS * max(float(img.diff[skin & ~out].mean()), 0.0):
        return skin, 0
    return skin & ~out, n_out


def pair_light(on: np.ndarray, off: np.ndarray, skin: np.ndarray,
               same: tuple[np.ndarray, np.ndarray] | None = None, *,
               predicted: _Predicted | None = None, checked: bool = False,
               forehead: np.ndarray | None = None, lower: np.ndarray | None = None,
               eyes: np.ndarray | None = None) -> ProjectorLight:
    """:func:`projector_light` on the IR pixels themselves: a lit and an unlit frame (float arrays
    of one shape), the ``skin`` mask on them, and optionally two frames in one projector state.
    Every skin pixel counts, clipped ones at their clipped values; the share clipped in either
    frame is reported (above ``MAX_CLIPPED_SHARE`` the contrast is a floor only).

    ``checked``: the camera's projector pattern is recorded, and ``predicted`` is where it falls on
    these pixels (``predicted_pattern``; None: it could not be predicted, and the pair reads as
    untestable). The difference is then fitted to the pattern (``dotref.match_pattern``) and the band
    energy off it is recorded with the pair (``unmatched``). It is measured, not yet scored: in the simulator skin's
    own NIR texture under the projector's light is off the pattern as an attacker's light is
    (docs/liveness.md, "Review 4").

    ``forehead`` (the part of ``skin`` on the forehead's patches, ``IrSkin.forehead``): the pair is
    also read on the forehead's pixels and on the rest (the cheeks') apart (``forehead_contrast2``,
    ``cheeks``), and when a session's forehead reads over ``FOREHEAD_OVER_CHEEKS`` times its
    cheeks' (``ProjectorMeasure.pool``), its speckle is the cheeks' alone. A fringe, a spectacle
    frame's bridge or brow bar lies on the forehead only and adds its own hard NIR texture to the
    dots (the seventh family: forehead 0.37-0.47,
    cheeks 0.19-0.27 on refused live faces, docs/liveness.md); a mask or a print is hard
    everywhere, so its cheeks read hard on their own. The dots' sharpness, coarse light, the
    clipped share and the pattern are read on the whole region either way: the shape of the dots
    keeps every pixel it had, so an instrument on the forehead alone (a printed eye band reaching
    the brows) still sharpens them as it did. Except when the cheeks' own dots read as a hard
    surface's under such a forehead (a fringe over a mask): then nothing is dropped and the session's
    dots' sharpness is the cheeks' (``ProjectorMeasure.pool``).

    ``lower`` (the part of ``skin`` on the lower cheeks' patches, ``IrSkin.lower``; only with
    ``forehead``): the pair is also read on them alone (``lower``, ``lower_contrast2``,
    ``lower_sharpness``) and on the rest (``upper_contrast2``; the cheeks' reading likewise on the
    upper cheeks' discs), what a spectacle frame's rims, bridge and nose pads can reach; when a
    session's rest reads over ``RIMS_OVER_LOWER`` times the lower cheeks' and their dots are soft
    (``ProjectorMeasure.pool``), its speckle is the lower cheeks' alone.

    ``eyes`` (discs over the eyes, ``IrSkin.eyes``; not skin): the dots' sharpness there as well
    (``eyes_sharpness``), glints near them taken out as near the skin. Paper and ink spread the dots
    no more than resin does, a living eye and its lids do (docs/liveness.md, "A printed eye band
    pressed onto the face"). With ``checked``, the recorded pattern's own reading on the discs' pixels
    read (``eyes_reference_sharpness``: :func:`reference_dot_shape`, as on the skin; reported only).

    The pattern's readings (``unmatched``, ``reference_sharpness``, ``shaded_reference_sharpness``) are
    worked out last, after every
    region's: the rest needs nothing of ``predicted``, so a ``PatternFit`` another thread is still
    warming (the judge's pair lit by a window's last frameset) is waited for only then."""
    later: list[Callable[[], _PatternFields]] = []
    eyes_read: list[np.ndarray] = []
    light = _regions_read(on, off, skin, same, predicted, checked, forehead, lower, eyes, later, eyes_read)
    if later:
        unmatched, reference_sharpness, shaded = later[0]()
        light = replace(light, unmatched=unmatched, reference_sharpness=reference_sharpness,
                        shaded_reference_sharpness=shaded)
    if eyes_read and checked and np.isfinite(light.eyes_sharpness):
        light = replace(light, eyes_reference_sharpness=reference_dot_shape(predicted, eyes_read[0]))
    return light


def _regions_read(on: np.ndarray, off: np.ndarray, skin: np.ndarray, same: tuple[np.ndarray, np.ndarray] | None,
                  predicted: _Predicted | None, checked: bool, forehead: np.ndarray | None,
                  lower: np.ndarray | None, eyes: np.ndarray | None,
                  later: list[Callable[[], _PatternFields]], eyes_read: list[np.ndarray]) -> ProjectorLight:
    """:func:`pair_light` but its pattern's readings: the whole skin's reading appends them to
    ``later`` (NaN in what this returns), the discs over the eyes their pixels read to ``eyes_read``."""
    eyes_sharpness, eyes_unshaped = float("nan"), False
    if eyes is not None and eyes.sum() >= MIN_GROUP_PIXELS:
        e_on, e_off, e_mask, e_same, _ = without_glints(on, off, eyes, same)
        if e_mask.sum() >= MIN_GROUP_PIXELS:
            e_read = _pair_reading(_PairImages(e_on, e_off, e_same), e_mask, None, False)
            eyes_sharpness, eyes_unshaped = e_read.sharpness, e_read.unshaped
            eyes_read.append(e_mask)
    on, off, skin, same, _ = without_glints(on, off, skin, same)
    skin, _ = without_dark_edges(on, off, skin, same)
    img = _PairImages(on, off, same)        # filtered once for every region the pair is read on
    whole = replace(_pair_reading(img, skin, predicted, checked, later=later), eyes_sharpness=eyes_sharpness,
                    eyes_unshaped=eyes_unshaped)
    if np.isfinite(whole.contrast2) and whole.unexplained > MAX_UNEXPLAINED_TEXTURE:
        kept, shaded = clear_of_shading(img, skin)
        if shaded:
            clear = _pair_reading(img, kept, None, False)
            if np.isfinite(clear.contrast2):
                whole = replace(whole, clear=clear, shading_out=shaded)
    if forehead is None or not np.isfinite(whole.contrast2):
        return whole
    top_mask, rest = skin & forehead, skin & ~forehead
    if top_mask.sum() < MIN_GROUP_PIXELS or rest.sum() < MIN_GROUP_PIXELS:
        return whole
    top, cheeks = (_pair_reading(img, m, None, False) for m in (top_mask, rest))
    if not (np.isfinite(top.contrast2) and np.isfinite(cheeks.contrast2)):
        return whole
    out = replace(whole, forehead_contrast2=top.contrast2, cheeks_contrast2=cheeks.contrast2,
                  forehead_sharpness=top.sharpness, cheeks_sharpness=cheeks.sharpness, cheeks=cheeks)
    if lower is None:
        return out
    low, reach, reach_cheeks = skin & lower, skin & ~lower, rest & ~lower
    if min(low.sum(), reach.sum(), reach_cheeks.sum()) < MIN_GROUP_PIXELS:
        return out
    below = _pair_reading(img, low, None, False)
    above, above_cheeks = (_pair_reading(img, m, None, False, shape=False) for m in (reach, reach_cheeks))
    if not (np.isfinite(below.contrast2) and np.isfinite(above.contrast2) and np.isfinite(above_cheeks.contrast2)):
        return out
    return replace(out, upper_contrast2=above.contrast2, lower_contrast2=below.contrast2,
                   lower_sharpness=below.sharpness, lower=below,
                   cheeks=replace(cheeks, upper_contrast2=above_cheeks.contrast2))


class _PairImages:
    """An on-off pair (and its same-state noise pair), glints out, with the filterings every reading
    of it takes: all are of whole images and only then masked, so :func:`pair_light` works each out
    once however many regions (the whole, the forehead's, the cheeks', the lower cheeks') it reads."""

    def __init__(self, on: np.ndarray, off: np.ndarray, same: tuple[np.ndarray, np.ndarray] | None):
        self.on, self.off, self.same = on, off, same
        self.diff = on - off
        self.same_diff = same[0] - same[1] if same is not None else None

    @functools.cached_property
    def hp_diff(self) -> np.ndarray:
        return _highpass(self.diff)

    @functools.cached_property
    def hp_off(self) -> np.ndarray:
        return _highpass(self.off)

    @functools.cached_property
    def hp_same(self) -> np.ndarray:
        assert self.same_diff is not None
        return _highpass(self.same_diff)

    @functools.cached_property
    def blurs(self) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """``SHAPE_SIGMAS`` blurs of the difference and of the noise pair's (``dot_shape``)."""
        return _blurs(self.diff), (_blurs(self.same_diff) if self.same_diff is not None else None)

    @functools.cached_property
    def texture(self) -> list[np.ndarray] | None:
        """``SHAPE_SIGMAS`` blurs of the unlit frame's texture as the difference carries it
        (``unlit_texture``; ``dot_shape_read`` takes its fitted share out per region); None while
        ``TEXTURE_OUT`` is off (the difference's shape read as it is)."""
        return _blurs(unlit_texture(self.diff, self.off)) if TEXTURE_OUT else None


def _pair_reading(img: _PairImages, skin: np.ndarray, predicted: _Predicted | None,
                  checked: bool, shape: bool = True,
                  later: list[Callable[[], _PatternFields]] | None = None) -> ProjectorLight:
    """:func:`pair_light` on one mask, the glints already out; ``shape=False``: the speckle's
    readings only (no sharpness, coarse light or pattern). ``later``: the pattern's readings
    (``_pattern_fields``) are appended to it, not read here."""
    on, off, same, diff = img.on, img.off, img.same, img.diff
    nan = float("nan")
    npix = int(skin.sum())
    if npix == 0:
        return ProjectorLight(nan, nan, nan, 0, nan)
    clipped = float(((on >= SATURATED_DN) | (off >= SATURATED_DN))[skin].mean())
    level = float(diff[skin].mean())
    m_on, m_off = float(on[skin].mean()), float(off[skin].mean())
    share = level / max(m_on, 1.0)
    if level <= MIN_PROJECTOR_LEVEL_DN:
        return ProjectorLight(nan, level, nan, npix, share, clipped, off_level=m_off)
    hp = float(np.var(img.hp_diff[skin]))
    if same is not None and img.same_diff is not None:
        a, b = same
        same_diff = img.same_diff
        m_same = float((a[skin].mean() + b[skin].mean()) / 2)
        pair = float(np.var(img.hp_same[skin]))
        scale = (m_on + m_off) / max(2.0 * m_same, 1.0)
        noise = pair * scale
        # The unlit frame's own noise (half the pair's, at the unlit level).
        off_noise = pair / 2 * m_off / max(m_same, 1.0)
        albedo, unexplained = albedo_texture(on, off, skin, off_noise, highpassed=(img.hp_off, img.hp_diff)) \
            if m_off > MIN_ALBEDO_LEVEL_DN else (0.0, 0.0)
        contrast2 = ((hp - noise) / level ** 2 - albedo) / (1.0 + albedo)
        sharpness, coarse, moving = dot_shape_read(diff, skin, same_diff, scale, blurs=img.blurs,
                                                   texture=img.texture) if shape \
            else (nan, nan, nan)
        gone = light_gone(img, skin, scale) if shape and np.isfinite(sharpness) else nan
        if gone > MAX_GONE_SHARE:
            sharpness, coarse = nan, nan
        unmatched, reference_sharpness, shaded = _pattern_fields(diff, skin, predicted, same_diff, scale, checked,
                                                                 later)
        return ProjectorLight(contrast2, level, noise, npix, share, clipped, albedo, unexplained=unexplained,
                              off_level=m_off,
                              sharpness=sharpness, coarse=coarse, moving=moving, gone=gone, unmatched=unmatched,
                              reference_sharpness=reference_sharpness, shaded_reference_sharpness=shaded)
    if share < MIN_PROJECTOR_SHARE:
        return ProjectorLight(nan, level, nan, npix, share, clipped, noise_measured=False)
    # No noise pair: the noise stays in the contrast and the fine band (both err toward hard) and
    # is all the contrast's variance.
    sharpness, coarse = dot_shape(diff, skin, blurs=img.blurs, texture=img.texture) if shape else (nan, nan)
    unmatched, reference_sharpness, shaded = _pattern_fields(diff, skin, predicted, None, 0.0, checked, later)
    return ProjectorLight(hp / level ** 2, level, hp, npix, share, clipped, noise_measured=False, off_level=m_off,
                          sharpness=sharpness, coarse=coarse, unmatched=unmatched,
                          reference_sharpness=reference_sharpness, shaded_reference_sharpness=shaded)


def _pattern_fields(diff: np.ndarray, skin: np.ndarray, predicted: _Predicted | None, noise_diff: np.ndarray | None,
                    noise_scale: float, checked: bool, later: list[Callable[[], _PatternFields]] | None
                    ) -> _PatternFields:
    """A reading's ``(unmatched, reference_sharpness, shaded_reference_sharpness)``
    (:func:`_pattern_reading`, :func:`reference_dot_shape`, :func:`shaded_reference_dot_shape`), NaN
    all unless ``checked``; with ``later``, NaN now and the three worked out by what is appended to it."""
    nan = float("nan")
    if not checked:
        return nan, nan, nan

    def read() -> _PatternFields:
        return (_pattern_reading(diff, skin, predicted, noise_diff, noise_scale),
                reference_dot_shape(predicted, skin), shaded_reference_dot_shape(predicted, skin))
    if later is None:
        return read()
    later.append(read)
    return nan, nan, nan


# The recorded pattern must cover this share of a pair's skin pixels for its reading there to stand
# for the dots that fell on them.
MIN_REFERENCE_COVER = 0.9


def reference_dot_shape(predicted: _Predicted | None, skin: np.ndarray) -> float:
    """:func:`dot_shape` of the projector's recorded pattern where it falls on ``skin``
    (``predicted_pattern``: warped by the lit frame's own depth): the reading a hard matte surface
    (the enrolment's board and wall) would give with the very dots that landed on these pixels.

    A session's skin patches hold a few dozen dots (five discs of 50-100 px). The fine-over-mid ratio
    of so few depends on where each one fell against the patches' rims (a core inside, a halo only)
    nearly as much as on how the surface spread them: the same face under another dot pattern reads
    0.74-1.70 (fresh #24, ``bench.sharpness_sampling``), while the pattern's own reading on the same
    pixels follows it (correlation 0.96). Dividing by it leaves the surface's part
    (``ProjectorMeasure.sharpness_ratio``; reported, not scored). NaN without a prediction, or when
    the pattern covers under ``MIN_REFERENCE_COVER`` of the skin."""
    if predicted is None:
        return float("nan")
    fit = PatternFit.of_predicted(predicted)
    on = _reference_pixels(fit, skin)
    return dot_shape(fit.pattern, on, blurs=(fit.blurs(), None))[0] if on is not None else float("nan")


def shaded_reference_dot_shape(predicted: _Predicted | None, skin: np.ndarray) -> float:
    """:func:`reference_dot_shape` of the pattern times the projector's light on the surface
    (``PatternFit.shading``, :func:`incidence_shading`): the reading a hard matte surface of this
    frame's shape would give with these dots. The cosine of the dots' incidence changes within a
    few rows near a brow ridge, and that change is mid-band energy the plain pattern does not have
    (docs/liveness.md, resin28). NaN without a shading or where ``reference_dot_shape`` is."""
    if predicted is None:
        return float("nan")
    fit = PatternFit.of_predicted(predicted)
    on = _reference_pixels(fit, skin)
    shaded, shading = fit.shaded_blurs(), fit.shading
    if on is None or shaded is None or shading is None:
        return float("nan")
    return dot_shape(fit.pattern * shading, on, blurs=(shaded, None))[0]


def _reference_pixels(fit: PatternFit, skin: np.ndarray) -> np.ndarray | None:
    """``skin``'s pixels the pattern covers, or None when it covers under ``MIN_REFERENCE_COVER``."""
    npix = int(skin.sum())
    on = skin & fit.covered
    return on if npix and on.sum() >= MIN_REFERENCE_COVER * npix else None


def _blurs(x: np.ndarray) -> list[np.ndarray]:
    """``x`` blurred at each of ``SHAPE_SIGMAS``."""
    return [cv2.GaussianBlur(x, (0, 0), s) for s in SHAPE_SIGMAS]


def _band_vars(x: np.ndarray, mask: np.ndarray, g: list[np.ndarray] | None = None) -> np.ndarray:
    """Variances on ``mask`` of ``x``'s three ``SHAPE_SIGMAS`` bands (fine, mid, low); ``g``: its
    blurs (``_blurs``) when already worked out."""
    g = _blurs(x) if g is None else g
    return np.array([float(np.var((g[i] - g[i + 1])[mask])) for i in range(3)])


def dot_shape(diff: np.ndarray, skin: np.ndarray, noise_diff: np.ndarray | None = None,
              noise_scale: float = 0.0,
              blurs: tuple[list[np.ndarray], list[np.ndarray] | None] | None = None,
              texture: list[np.ndarray] | None = None) -> tuple[float, float]:
    """:func:`dot_shape_read` without the same-state pair's mid-band share."""
    sharpness, coarse, _ = dot_shape_read(diff, skin, noise_diff, noise_scale, blurs, texture)
    return sharpness, coarse


def dot_shape_read(diff: np.ndarray, skin: np.ndarray, noise_diff: np.ndarray | None = None,
                   noise_scale: float = 0.0,
                   blurs: tuple[list[np.ndarray], list[np.ndarray] | None] | None = None,
                   texture: list[np.ndarray] | None = None
                   ) -> tuple[float, float, float]:
    """How sharp the projector's dots are in an on-off difference, from their shape alone: the
    difference's fine-band over mid-band energy (``sharpness``), and its low-band over mid-band
    energy (``coarse``), each band's noise removed (``noise_diff``: the difference of two frames in
    one projector state, its band energies times ``noise_scale`` as the photon-transfer law scales
    them to the on-off pair; without one the noise stays, in the fine band most, erring hard).

    The projector's dots are spots a pixel or so wide, a few pixels apart, in random places: their
    energy spectrum is flat at low frequencies and falls off past the spots' size, so the fine band
    (``SHAPE_SIGMAS``) over the mid band, about 4 for points, falls as the spots spread. Skin
    scatters each dot under the surface over a millimetre or two and spreads it (the simulator's
    train family: live faces 0.69-1.37, median 0.99; resin masks 1.36-2.05, head models up to 2.5).
    A ratio of two bands of the difference is moved neither by ambient light (cancelled in the
    difference) nor by the level: an even light switched with the projector raises the difference's
    mean, which the speckle contrast divides by, and adds to the bands only the surface's own NIR
    texture it lights (as the projector's light between its dots does; a strongly textured mask
    under a strong synced light still moves toward skin, docs/liveness.md). Light coarser than the
    dots switched with it adds to the low band most and to the mid band some, lowering the ratio
    toward skin's; the low band over the mid band shows it (dots alone about 0.25-0.45, the
    simulator's live faces up to 1.5, with the face's own shading and NIR texture): over
    ``MAX_COARSE_ENERGY`` the pair is one-sided. Light with a pattern as fine as skin-blurred dots,
    switched with the projector, is not told apart.

    The third value (``moving``) is the noise pair's mid-band energy beyond what white noise makes
    (``WHITE_MID_OVER_FINE`` times its fine band's), scaled, over the difference's mid band (NaN
    without a noise pair): photon noise leaves about 0 there, light that moved between the noise
    pair's two frames (a sunfleck) far more, and what is subtracted then is not noise but light
    caught at another moment than the on-off pair's. Over ``MAX_SAME_STATE_MID_SHARE`` the
    shape is not read: sharpness and coarse NaN (never a floor either: the premise that the noise
    removed can only lower the ratio fails with it).

    ``texture``: the ``_blurs`` of the unlit frame's texture as the difference carries it
    (``unlit_texture``, ``TEXTURE_SIGMAS``): the sharpness is then read with that texture's share of
    the difference taken out (``texture_out``), so an even light switched with the projector on a
    textured surface (attack B on an ink or paint texture) no longer lowers it. The coarse light and
    the noise pair's mid-band share stay the difference's as it is: what is taken out can only lower
    the mid band, never hide a coarse light or a moving one.

    NaN when the mid band has no energy left once the noise is removed. ``blurs``: the two
    images' ``_blurs`` when already worked out (``_PairImages``)."""
    nan = float("nan")
    g, g_noise = blurs if blurs is not None else (None, None)
    g = _blurs(diff) if g is None else g
    v = _band_vars(diff, skin, g)
    shaped = _band_vars(diff, skin, texture_out(g, texture, skin)) if texture is not None else v
    moving = nan
    if noise_diff is not None:
        noise = noise_scale * _band_vars(noise_diff, skin, g_noise)
        beyond = float(noise[1] - WHITE_MID_OVER_FINE * noise[0])
        moving = beyond / float(v[1]) if v[1] > 0 else (float("inf") if beyond > 0 else nan)
        if moving > MAX_SAME_STATE_MID_SHARE:
            return nan, nan, moving
        v, shaped = v - noise, shaped - noise
    if not (v[1] > 1e-6 and shaped[1] > 1e-6):
        return nan, nan, moving
    return float(max(shaped[0], 0.0) / shaped[1]), float(max(v[2], 0.0) / v[1]), moving


def unlit_texture(diff: np.ndarray, off: np.ndarray) -> np.ndarray:
    """What an on-off difference carries of the surface's own NIR texture, from the unlit frame
    (``TEXTURE_SIGMAS``): the unlit frame's band (its fine blur less its coarse one) times the local
    on-off over unlit level (each blurred at the coarse sigma; the unlit level at least
    ``MIN_ALBEDO_LEVEL_DN``). The albedo multiplies the room's light and whatever the projector
    switches (its dots, a lamp switched with it) alike, so where the unlit frame shows it, the
    difference holds it times that ratio."""
    lo, hi = TEXTURE_SIGMAS
    g_hi = cv2.GaussianBlur(off, (0, 0), hi)
    ratio = np.maximum(cv2.GaussianBlur(diff, (0, 0), hi), 0.0) / np.maximum(g_hi, MIN_ALBEDO_LEVEL_DN)
    return np.asarray((cv2.GaussianBlur(off, (0, 0), lo) - g_hi) * ratio, np.float32)


def texture_out(g: list[np.ndarray], texture: list[np.ndarray], mask: np.ndarray) -> list[np.ndarray]:
    """The difference's ``_blurs`` ``g`` with the unlit texture's (``texture``, the ``_blurs`` of
    ``unlit_texture``) taken out at the gain that best fits the difference's mid band on ``mask``
    (least squares, held to 0..1). Fitted, the mid band can only lose energy, so whatever the unlit
    frame shows that the difference does not carry (a steady lamp's pattern, never switched) is not
    written into it; held at 1, no more than the model's share is taken: an unlit texture the
    attacker adds cannot lower the sharpness, only fail to raise it."""
    dm = (g[1] - g[2])[mask]
    tm = (texture[1] - texture[2])[mask]
    dm, tm = dm - dm.mean(), tm - tm.mean()
    tt = float(np.dot(tm, tm))
    gain = float(np.clip(float(np.dot(dm, tm)) / tt, 0.0, 1.0)) if tt > 0 else 0.0
    return [a - gain * b for a, b in zip(g, texture, strict=True)] if gain > 0 else g


def light_gone(img: _PairImages, skin: np.ndarray, noise_scale: float) -> float:
    """Light that went away between a pair's unlit and lit frames, which no projector makes: the
    on-off difference blurred at ``SHAPE_SIGMAS[1]`` (over the dots: they only add, so the blur is
    at least 0 but for noise), its part under ``-GONE_NOISE_DEVIATIONS`` times that blur's noise
    (the noise pair's, ``noise_scale`` scaled as for ``dot_shape_read``), squared and doubled, over
    the difference's mid band (NaN without a noise pair or a mid band).

    A lamp moved on the projector's edges leaves the difference a dipole, as much light come as gone:
    the part that came lowers the dots' fine/mid ratio toward skin's, the part that went shows it.
    A dimmer whose lit frame caught less of it than the unlit one leaves the room's image
    (the eyes' own texture on the discs over them) negative between the dots. An even light that
    rose with the projector (attack B, a dimmer higher in the lit frame) leaves nothing negative:
    not read here."""
    g, g_noise = img.blurs
    if g_noise is None:
        return float("nan")
    mid = float(np.var((g[1] - g[2])[skin]))
    sd = float(np.sqrt(max(noise_scale, 0.0) * np.var(g_noise[1][skin])))
    neg = np.minimum(g[1][skin] + GONE_NOISE_DEVIATIONS * sd, 0.0)
    return 2.0 * float(np.mean(neg * neg)) / mid if mid > 0 else float("nan")


def _highpass(x: np.ndarray) -> np.ndarray:
    """``x`` minus its sigma-2 px Gaussian blur: the band the speckle contrast is measured in."""
    return np.asarray(x - cv2.GaussianBlur(x, (0, 0), 2.0))


def albedo_texture(on: np.ndarray, off: np.ndarray, skin: np.ndarray, off_noise: float,
                   highpassed: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, float]:
    """The surface's own NIR texture in a pair (squared contrast, subtracted from the dots'), and
    the unlit frame's texture it does not explain.

    The projector's light on the skin is the skin's NIR albedo times the dots, so the albedo's own
    texture (pores, brows, freckles) is in the on-off difference as well as the dots' and must come
    out of the contrast. The unlit frame shows that texture too, under ambient light, but it also
    shows whatever else the ambient light has: an even lamp shows the albedo alone, a lamp with its
    own fine pattern (an attacker's second dot projector or a diffuser, on all the time) adds that
    pattern, which cancels in the difference and in the same-state noise pair. So the albedo is
    measured as what the two images *share*: the covariance of the unlit frame's and the
    difference's high-passes, each divided by its mean level. The albedo multiplies both, so it is
    in the covariance in full; a steady lamp pattern is in the unlit frame only and adds nothing on
    average, whatever its strength (nor do the dots, which are not in the unlit frame). The unlit frame's
    noise is in the difference with the opposite sign: its variance (``off_noise``, DN^2 after the
    high-pass) is added back.

    Returns the albedo texture, at most ``MAX_ALBEDO_TEXTURE`` (no skin has more; a lamp that copied
    the projector's own pattern, the one thing that could share texture with the difference, can
    then take off no more than skin's own texture), and the unlit frame's texture beyond the
    covariance (its whole high-pass variance, noise removed, per squared mean, minus the
    covariance). That excess is light the difference does not carry. It also blurs the
    covariance (its product with the dots averages to zero only over many pixels), so above
    ``MAX_UNEXPLAINED_TEXTURE`` the pair is one-sided (``ProjectorLight.one_sided``) and subtracts
    the unlit frame's whole texture instead: never less than the surface's own, so its contrast is
    a floor. (A session whose whole region is so lit but whose cheeks, or lower cheeks, are not is
    read on them: ``_unshaded_part``, the relief a directional flood shades.)"""
    m_off = float(off[skin].mean())
    level = float((on - off)[skin].mean())
    hp_off, hp_diff = highpassed if highpassed is not None else (_highpass(off), _highpass(on - off))
    x = hp_off[skin] / m_off
    y = hp_diff[skin] / level
    shared = float(np.mean((x - x.mean()) * (y - y.mean()))) + off_noise / (m_off * level)
    whole = max(float(np.var(x)) - off_noise / m_off ** 2, 0.0)
    unexplained = whole - max(shared, 0.0)
    if unexplained > MAX_UNEXPLAINED_TEXTURE:
        return whole, unexplained
    return float(np.clip(shared, 0.0, MAX_ALBEDO_TEXTURE)), unexplained


def motion_step(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Landmark motion from ``ref`` to ``cur`` in pixels: overall (median displacement) and
    non-rigid (90th percentile residual after the best similarity transform; NaN if none fits)."""
    motion = float(inplace.median(np.linalg.norm(cur - ref, axis=1)))
    m, _ = cv2.estimateAffinePartial2D(ref.astype(np.float32), cur.astype(np.float32), method=cv2.LMEDS)
    if m is None:
        return motion, float("nan")
    pred = ref @ m[:, :2].T + m[:, 2]
    return motion, float(np.percentile(np.linalg.norm(cur - pred, axis=1), 90))


def motion_from_steps(cues: list[FrameCues], steps: list[tuple[float, float]]) -> dict[str, float]:
    """Across frames, from the steps of every frame against the first (see :func:`motion_step`):

    - ``motion``: median landmark displacement per IPD (a face never holds perfectly still);
    - ``nonrigid``: median, and ``nonrigid_peak`` the 90th percentile over frames, of the landmarks'
      departure from a rigid (similarity) motion per IPD: lids, jaw and lips move within the face,
      a print, a rigid mask or a head model only as a whole;
    - ``blink``: the eyelid opening's range over the window, and ``blink_drop`` how far it fell
      below its usual (median) opening, 0 (never) to 1 (shut): a blink in the window. Painted or
      printed eyes never close."""
    nan = float("nan")
    if len(cues) < 3:
        return {"motion": nan, "nonrigid": nan, "nonrigid_peak": nan, "blink": nan, "blink_drop": nan}
    ipd = float(np.median([c.ipd_px for c in cues]))
    motion = [m / ipd for m, _ in steps]
    nonrigid = [n / ipd for _, n in steps if n == n]
    op = np.array([c.eye_openness for c in cues])
    blink = drop = nan
    if np.isfinite(op).sum() >= 3:
        usual = float(inplace.nanmedian(op))
        blink = float(np.nanmax(op) - np.nanmin(op))
        drop = float(np.clip(1.0 - np.nanmin(op) / usual, 0.0, 1.0)) if usual > 1e-3 else nan
    return {"motion": float(inplace.median(motion)),
            "nonrigid": float(inplace.median(nonrigid)) if nonrigid else nan,
            "nonrigid_peak": float(np.percentile(nonrigid, 90)) if nonrigid else nan,
            "blink": blink, "blink_drop": drop}


def motion_cues(cues: list[FrameCues], frames: list[int] | None = None, window: int | None = None
                ) -> dict[str, float]:
    """Across frames: overall motion and non-rigid motion of the landmarks (per IPD), blinks, and
    the motion's significance (``motion_snr``) with the whole window under one light. ``frames``
    are the frameset indices of ``cues`` (default: consecutive), ``window`` the window's length."""
    frames = list(range(len(cues))) if frames is None else frames
    window = (frames[-1] + 1 if frames else 0) if window is None else window
    steps = [motion_step(cues[0].landmarks, c.landmarks) for c in cues[1:]] if len(cues) >= 3 else []
    out = motion_from_steps(cues, steps)
    out["motion_snr"] = motion_snr(cues, one_light_runs(frames, window), window)
    return out


# A run: frames measured one after the other under one light, as (cue index, frameset index)
# pairs with consecutive frameset indices, and that light's code (runs of one code may be compared).
Run = tuple[int, list[tuple[int, int]]]
# The face models' landmark jitter between consecutive frames is never below this (per IPD): a
# window too steady for it (a still image, an injected render) gives no evidence, not a huge ratio.
MIN_JITTER_IPD = 0.001
MIN_JITTER_PAIRS = 3


def one_light_runs(frames: list[int], window: int) -> list[Run]:
    """The runs of a window under one light (no illumination sequence): its first and last thirds."""
    first = [(i, k) for i, k in enumerate(frames) if 3 * k < window]
    last = [(i, k) for i, k in enumerate(frames) if 3 * k >= 2 * window]
    return [(0, part) for part in (first, last) if part]


def _median_shift(a: np.ndarray, b: np.ndarray) -> float:
    return float(inplace.median(np.linalg.norm(b - a, axis=1)))


def motion_snr(cues: list[FrameCues], runs: list[Run], window: int) -> float:
    """How far the face moved between two moments under one light, in units of what the session's
    own landmark jitter could make of a face that did not move (NaN if the window cannot say).

    A still living face drifts slowly (breathing, postural sway), while the face models' landmark
    jitter changes from frame to frame, and grows tenfold from bright light to dim (a head model
    on a stand "moves" 0.002 IPD at 500 lux and 0.009 at 35 lux; a still person may move 0.007
    in a window). So the drift is measured on landmarks averaged over each run (frames in a row
    under one light: the screen's colour moves the landmarks a little, so only runs of one colour
    are compared), between runs at least a third of the window apart (median displacement per
    IPD), and divided by what jitter alone would give for those two averages: the median
    frame-to-frame displacement within runs, scaled by sqrt((1/n_a + 1/n_b) / 2). About 1 for
    an object that holds still at any light; several for a face that drifts by more than its
    landmarks jitter. The median over such run pairs."""
    nan = float("nan")
    if len(cues) < 3:
        return nan
    ipd = float(np.median([c.ipd_px for c in cues]))
    if not ipd > 0:
        return nan
    jitter = [_median_shift(cues[a].landmarks, cues[b].landmarks)
              for _, members in runs for (a, ka), (b, kb) in zip(members, members[1:], strict=False) if kb == ka + 1]
    if len(jitter) < MIN_JITTER_PAIRS:
        return nan
    step = max(float(inplace.median(jitter)) / ipd, MIN_JITTER_IPD)
    ratios = []
    for x, (light_a, a) in enumerate(runs):
        for light_b, b in runs[x + 1:]:
            if light_a != light_b or 3 * (np.mean([k for _, k in b]) - np.mean([k for _, k in a])) < window:
                continue
            mean_a = np.mean([cues[i].landmarks for i, _ in a], axis=0)
            mean_b = np.mean([cues[i].landmarks for i, _ in b], axis=0)
            floor = step * np.sqrt((1 / len(a) + 1 / len(b)) / 2)
            ratios.append(_median_shift(mean_a, mean_b) / ipd / floor)
    return float(inplace.median(ratios)) if ratios else nan


def depth_noise(aligned_frames: list[AlignedFrameSet]) -> float:
    """Temporal depth noise (mm) on the static background, normalised to 1 m by the z^2 law.

    Of the last two framesets' whole aligned depth. Read on their depth units, not their metres:
    a pixel has depth in metres where its units are not 0 (``to_metres``), and the metres are
    units times a float32 scale, which never decreases as the units grow, so "more than the
    threshold in metres" is "at least the fewest units whose metres exceed it" (found on the 65,536
    units' metres, ``_unit_metres``). Only the pixels used are converted (the median's subsample,
    the background), so the value is the one read on the two whole frames' metres, to the bit
    (``tests/liveness/test_depth_noise.py``), without converting them."""
    if len(aligned_frames) < 2:
        return float("nan")
    fa, fb = aligned_frames[-2], aligned_frames[-1]
    ua, ub, both = _depth_in_both(fa, fb)
    # The pixels read are counted once each (``count_nonzero``: a mask's ``sum`` converts it to
    # integers first), and found once (``flatnonzero``) for both frames' metres (perf30).
    far, count = both, int(np.count_nonzero(both))
    if count:
        # "Background": 20 cm behind the scene's median depth (a subsample is plenty for a median).
        threshold = np.median(to_metres(ua[both][::7], fa.depth_scale)) + 0.2
        above = np.flatnonzero(_unit_metres(fa.depth_scale) > threshold)
        far = scratch("features.depth_noise.far", ua.shape, np.bool_)
        counted = 0
        if above.size:
            np.greater_equal(ua, np.uint16(above[0]), out=far)
            far &= both
            counted = int(np.count_nonzero(far))
        if counted >= 200:
            count = counted
        else:
            far = both
    if count < 50:
        return float("nan")
    # The same pixels in the same order as indexing each frame's metres with the mask.
    read = np.flatnonzero(far)
    z = to_metres(ua.reshape(-1)[read], fa.depth_scale)
    d = (z - to_metres(ub.reshape(-1)[read], fb.depth_scale)) / np.sqrt(2)
    return float(np.std(d / (z * z)) * 1000)


def _depth_in_both(fa: AlignedFrameSet, fb: AlignedFrameSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two framesets' depth units and where both have depth (the thread's kept temporary)."""
    ua, ub = fa.depth_u16, fb.depth_u16
    both = np.not_equal(ua, 0, out=scratch("features.depth_noise.both", ua.shape, np.bool_))
    both &= np.not_equal(ub, 0, out=scratch("features.depth_noise.b_valid", ub.shape, np.bool_))
    return ua, ub, both


@functools.lru_cache(maxsize=4)
def _unit_metres(depth_scale: float) -> np.ndarray:
    """Every depth unit's metres (``to_metres`` of 0-65535: NaN at 0), read only."""
    m = to_metres(np.arange(65536, dtype=np.uint16), depth_scale, out=np.empty(65536, np.float32))
    m.setflags(write=False)
    return m
