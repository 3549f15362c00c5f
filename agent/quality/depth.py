"""Depth on the face: completeness (T/IIFAA 3001.1 §7.5 h) and evidence of something in front of it.

Two different things that the gate used to report as one (``FACE_OCCLUDED``):

- **completeness** is the camera's: how much of the face carries depth. Holes come from the sensor
  (little texture, a narrow stereo baseline, a structured-light pattern that misses thin parts),
  from mirror-like surfaces, or from distance; a person cannot fix them by uncovering their face.
  Holes that a *specular glint* explains are left out of the count: where a spectacle lens mirrors
  the projector back into the IR imager the pixels clip, and stereo finds nothing to match there.
  That is neither the camera's fault nor the person's, and the rest of the face carries the depth.
  The gate judges completeness over its window of framesets (``QualityGate``), never one frame.
- **an occluder** is a surface in front of the face: within ±20° of yaw nothing of a face stands
  nearer to the camera than its nose tip, so depth on the face oval that is markedly nearer than
  the nose tip is something else (a hand, a phone, a scarf held up). Only that is evidence for
  ``FACE_OCCLUDED``, save a cap's brim: depth in front of the nose tip that lies wholly above the
  upper eyelids, with the eyes' discs clear of it (``FaceDepth.brim``), leaves the eyes, nose, mouth
  and chin measured, and is left out of the evidence (docs/liveness.md, "A cap's brim is not an
  occluder").
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from agent.pipeline import inplace
from agent.pipeline.align import AlignedFrameSet, scratch, to_metres
from agent.pipeline.camera_model import deproject, project
from agent.quality.metrics import CORE_POINTS, FACE_OVAL, Region, discs_mask, polygon_mask
from drivers.frame import StreamKind

NOSE_TIP = 4
GLINT_DN = 250                 # an 8-bit IR pixel at or above this is clipped: a specular glint
GLINT_REACH_PX = 3             # a glint's hole spreads over the stereo matching window around it
# A face within ±20° yaw has nothing nearer to the camera than its nose tip; a near cheek comes
# within ~1 mm of it at 20° on a 14 mm nose. Margin for depth noise (~1-3 mm at 0.5 m).
OCCLUDER_MARGIN_MM = 15.0
# The upper eyelids' middles (right, left): a cap's brim in front of the face lies above the line
# through them. The eyes' discs (their corners and lids' middles, of ``CORE_POINTS``' radius) must hold
# no depth in front of the nose tip for it to be a brim that leaves the face measured.
UPPER_LIDS = (159, 386)
LOWER_LIDS = (145, 374)
EYE_POINTS = (33, 133, 159, 145, 263, 362, 386, 374)
MOUTH_CENTRE = 13
EXTENT_MIN_PX = 50             # depth pixels on the face needed to say where its depth begins and ends


@dataclass(frozen=True)
class FaceDepth:
    """One frameset's depth on the face."""

    face: float                # share of the face oval with depth (glint holes left out)
    core: float                # share of the eye/nose/mouth discs with depth (glint holes left out)
    glint_holes: int           # hole pixels explained by a clipped glint in the IR imager
    in_front: float            # share of the face oval's depth nearer than the nose tip by the margin
    # The nearest and furthest depth on the face oval (2nd and 98th percentiles, metres); NaN with
    # fewer than ``EXTENT_MIN_PX`` pixels of depth. A camera reports nothing outside its range, so a
    # face that reaches past a bound shows its depth ending at that bound (``distance.py``).
    nearest_m: float = float("nan")
    furthest_m: float = float("nan")
    # The part of ``in_front`` lying above the line through the upper eyelids when none of it lies in
    # the eyes' discs (a cap's brim over a face it leaves measured); 0 otherwise.
    brim: float = 0.0
    # When some of ``in_front`` lies in the eyes' discs: its part above the line through the lower
    # eyelids (a brim low over the eyes, or a hand over them); 0 otherwise.
    over_eyes: float = 0.0

    @property
    def occluding(self) -> float:
        """The share of the face oval's depth in front of the nose tip that is evidence of an occluder:
        ``in_front`` without a cap's brim (``brim``)."""
        return self.in_front - self.brim

    @property
    def below_eyes(self) -> float:
        """The share of the face oval's depth in front of the nose tip below the lower eyelids' line
        when something in front reaches the eyes (else all of ``occluding``): a brim pulled over the
        eyes leaves nothing there, a hand over the eyes and nose or a scarf does."""
        return self.in_front - self.over_eyes if self.over_eyes else self.occluding


def clipped_anywhere(ir: np.ndarray) -> bool:
    """Whether any pixel of an IR frame is clipped (a glint can explain holes only then)."""
    return bool(ir.size and ir.max() >= GLINT_DN)           # no frame-sized mask of comparisons


def glints_possible(aligned: AlignedFrameSet, z_m: float) -> bool:
    """Whether :func:`glint_mask` can find any hole a glint's: an IR and a depth frame, a finite
    depth to map at, and a clipped pixel somewhere in the IR frame. Without one no hole can be a
    glint's; checked before mapping the holes (most of a face's pixels in a frame the projector
    left unlit, each mapped through the lens's iterative undistortion) or even listing them: the
    answer is the same, at a fraction of the cost."""
    fs = aligned.frameset
    return fs.ir is not None and fs.depth is not None and bool(np.isfinite(z_m)) and clipped_anywhere(fs.ir.pixels)


def glint_mask(aligned: AlignedFrameSet, pixels: np.ndarray, z_m: float) -> np.ndarray:
    """For colour pixels (N, 2) without depth: does a clipped IR glint lie where they map to in the
    IR imager? They are mapped at ``z_m`` (the face's depth: a hole has none of its own; a few cm of
    error move the point by under a pixel at a colour-depth offset of ~15-60 mm). Only the IR
    imager's pixels within reach of where they land are looked at."""
    fs = aligned.frameset
    out = np.zeros(len(pixels), bool)
    if not len(pixels) or not glints_possible(aligned, z_m):
        return out
    assert fs.ir is not None and fs.depth is not None              # (``glints_possible``)
    ci, di = aligned.color.intrinsics, fs.depth.intrinsics
    cam = deproject(pixels[:, 0].astype(np.float64), pixels[:, 1].astype(np.float64),
                    np.full(len(pixels), z_m), ci)
    uv = np.rint(project(fs.extrinsics_between(StreamKind.COLOR, StreamKind.DEPTH).apply(cam), di)).astype(int)
    h, w = fs.ir.pixels.shape[:2]
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    if not inside.any():
        return out
    # "Within reach of a clipped pixel" is the clipped mask dilated by the reach; a dilation of the
    # IR around the landing points, grown by the reach, is the whole image's at those points.
    box = Region.around(uv[inside], GLINT_REACH_PX, (h, w))
    clipped = box.of(fs.ir.pixels) >= GLINT_DN
    if not clipped.any():
        return out
    k = 2 * GLINT_REACH_PX + 1
    near = cv2.dilate(clipped.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    out[inside] = near[uv[inside, 1] - box.y0, uv[inside, 0] - box.x0]
    return out


def face_depth(aligned: AlignedFrameSet, lm: np.ndarray, ipd: float) -> FaceDepth:
    """Completeness of the face's depth and the share of it standing in front of the nose tip.
    Everything is measured inside the face oval's box (with the nose tip's disc), never the frame."""
    oval = lm[list(FACE_OVAL), :2]
    nose_r = max(0.06 * ipd, 2.0)
    box = Region.around(np.vstack([oval, lm[[NOSE_TIP], :2]]), max(1, int(round(nose_r))) + 1,
                        aligned.depth_u16.shape)
    units = box.of(aligned.depth_u16)
    valid = units > 0
    shape = valid.shape
    face = polygon_mask(shape, oval, box.origin)
    core = discs_mask(shape, lm[list(CORE_POINTS), :2], 0.08 * ipd, box.origin) & face
    face_valid = face & valid
    # The face's depth values (``depth_m[face_valid]``) in the thread's kept array: its units
    # selected, then converted (all have depth, so none is NaN).
    on_face_units = inplace.select(aligned.depth_u16, face_valid, (box.x0, box.y0), "quality.face_depth.on_face_units")
    on_face = to_metres(on_face_units, aligned.depth_scale,
                        out=scratch("quality.face_depth.on_face", on_face_units.shape, np.float32))
    # Every use of ``on_face`` is of its values' order statistics or counts, never their order: the
    # median and the percentiles partition it in place (``overwrite_input``) instead of a copy each.
    z_face = float(np.median(on_face, overwrite_input=True)) if on_face.size else float("nan")
    holes = face & ~valid
    explained = np.zeros(shape, bool)
    if holes.any() and glints_possible(aligned, z_face):       # (else none is a glint's: not listed)
        v, u = np.nonzero(holes)
        hit = glint_mask(aligned, np.c_[u + box.x0, v + box.y0], z_face)
        explained[v[hit], u[hit]] = True
    counted_face, counted_core = face & ~explained, core & ~explained
    f = float(valid[counted_face].mean()) if counted_face.any() else 0.0
    c = float(valid[counted_core].mean()) if counted_core.any() else 0.0
    nose = discs_mask(shape, lm[[NOSE_TIP], :2], nose_r, box.origin) & valid
    near, far = ((float(v) for v in np.percentile(on_face, [2, 98], overwrite_input=True))
                 if on_face.size >= EXTENT_MIN_PX else (float("nan"), float("nan")))
    in_front, brim, over_eyes = _in_front(units, aligned.depth_scale, nose, face_valid, on_face, lm, ipd, box.origin)
    return FaceDepth(f, c, int(explained.sum()), in_front, near, far, brim, over_eyes)


def above_lids(shape: tuple[int, int], lm: np.ndarray, origin: tuple[int, int] = (0, 0),
               lids: tuple[int, int] = UPPER_LIDS) -> np.ndarray:
    """The pixels of a ``shape`` array (pixel (0, 0) is image pixel ``origin``) strictly above the line
    through the eyelids' middles ``lids`` (the upper lids', or ``LOWER_LIDS``), "above" meaning away
    from the mouth: the face's own up, whatever its roll."""
    p, q = lm[lids[0], :2].astype(np.float64), lm[lids[1], :2].astype(np.float64)
    mid = (p + q) / 2
    up = np.array([q[1] - p[1], p[0] - q[0]])                   # perpendicular to the lids' line
    if float(np.dot(lm[MOUTH_CENTRE, :2] - mid, up)) > 0:
        up = -up                                                 # pointing away from the mouth
    ys, xs = np.ogrid[:shape[0], :shape[1]]
    return (xs + origin[0] - mid[0]) * up[0] + (ys + origin[1] - mid[1]) * up[1] > 0


def _in_front(units: np.ndarray, depth_scale: float, nose: np.ndarray, face_valid: np.ndarray,
              on_face: np.ndarray, lm: np.ndarray, ipd: float, origin: tuple[int, int]
              ) -> tuple[float, float, float]:
    """The share of the face oval's depth in front of the nose tip, and of it a cap's brim's
    (``FaceDepth.brim``) and what lies over the eyes (``FaceDepth.over_eyes``). Where nothing stands
    in front (every face without one) no mask is made."""
    if nose.sum() < 3 or not face_valid.any():
        return 0.0, 0.0, 0.0             # no nose depth: nothing to compare with, no evidence
    z_nose = float(np.median(to_metres(units[nose], depth_scale)))       # the nose's metres only
    limit = z_nose - OCCLUDER_MARGIN_MM / 1000
    share = float((on_face < limit).mean())
    if share == 0.0:
        return share, 0.0, 0.0
    front = np.zeros(units.shape, bool)
    front[face_valid] = to_metres(units[face_valid], depth_scale) < limit
    eyes = discs_mask(units.shape, lm[list(EYE_POINTS), :2], 0.08 * ipd, origin)
    n = face_valid.sum()
    if (front & eyes).any():             # in front of the eyes: whatever it is, it hides the face
        return share, 0.0, float((front & above_lids(units.shape, lm, origin, LOWER_LIDS)).sum() / n)
    return share, float((front & above_lids(units.shape, lm, origin)).sum() / n), 0.0
