"""The quality gate's measurements as they were computed before the gate worked on the face's region
(whole-frame masks, a whole-frame gray and RGB conversion): the straightforward path that the
region-limited one in ``agent/quality`` and ``agent/face`` must match number for number
(``tests/quality/test_gate_equivalence.py``). Kept here, not in the package: nothing else runs it."""

from __future__ import annotations

import cv2
import numpy as np

from agent.face.detector import Detection
from agent.face.mesh import (
    EYELID_POINTS,
    IRIS_INPUT,
    IRIS_MODEL,
    IRIS_ROI_SCALE,
    LEFT_EYE_CORNERS,
    MESH_INPUT,
    MESH_MODEL,
    RIGHT_EYE_CORNERS,
    Mesh,
    _run,
    mesh_roi,
)
from agent.face.roi import roi_from_points
from agent.pipeline.align import AlignedFrameSet
from agent.pipeline.camera_model import deproject, project
from agent.quality.depth import (
    EXTENT_MIN_PX,
    EYE_POINTS,
    GLINT_DN,
    GLINT_REACH_PX,
    LOWER_LIDS,
    MOUTH_CENTRE,
    NOSE_TIP,
    OCCLUDER_MARGIN_MM,
    UPPER_LIDS,
    FaceDepth,
)
from agent.quality.metrics import _SRGB_LUT, CLIPPED_GRAY, CORE_POINTS, FACE_OVAL, SKIN_POINTS, FaceExposure
from drivers.frame import StreamKind


def polygon_mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    return m.astype(bool)


def discs_mask(shape: tuple[int, int], pts: np.ndarray, radius: float) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    r = max(1, int(round(radius)))
    for x, y in np.round(pts).astype(int):
        cv2.circle(m, (int(x), int(y)), r, 1, -1)
    return m.astype(bool)


def face_mesh(bgr: np.ndarray, det: Detection, *, with_iris: bool = True) -> Mesh:
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    roi = mesh_roi(det)
    crop = roi.extract(rgb, MESH_INPUT).astype(np.float32) / 255.0
    raw, flag = _run(MESH_MODEL, crop)
    landmarks = roi.to_image(raw.reshape(468, 3), MESH_INPUT)
    presence = float(1.0 / (1.0 + np.exp(-np.clip(flag.ravel()[0], -80, 80))))
    ir = il = openness = None
    if with_iris:
        ir, open_r = _iris(rgb, landmarks, RIGHT_EYE_CORNERS, flip=False)
        il, open_l = _iris(rgb, landmarks, LEFT_EYE_CORNERS, flip=True)
        openness = (open_r, open_l)
    return Mesh(landmarks, presence, ir, il, openness)


def _iris(rgb: np.ndarray, landmarks: np.ndarray, corners: tuple[int, int], *, flip: bool) -> tuple[np.ndarray, float]:
    p0, p1 = landmarks[corners[0], :2], landmarks[corners[1], :2]
    side = float(np.linalg.norm(p1 - p0)) * IRIS_ROI_SCALE
    roi = roi_from_points(p0, p1, (p0 + p1) / 2, side, flip=flip)
    crop = roi.extract(rgb, IRIS_INPUT).astype(np.float32) / 255.0
    contour, iris = _run(IRIS_MODEL, crop)
    lids = contour.reshape(-1, 3)[:EYELID_POINTS, :2]
    width = max(float(np.ptp(lids[:, 0])), 1e-6)
    return roi.to_image(iris.reshape(5, 3), IRIS_INPUT)[:, :2], float(np.ptp(lids[:, 1])) / width


def glint_mask(aligned: AlignedFrameSet, pixels: np.ndarray, z_m: float) -> np.ndarray:
    fs = aligned.frameset
    out = np.zeros(len(pixels), bool)
    if fs.ir is None or fs.depth is None or not len(pixels) or not np.isfinite(z_m):
        return out
    clipped = fs.ir.pixels >= GLINT_DN
    if not clipped.any():
        return out
    k = 2 * GLINT_REACH_PX + 1
    near = cv2.dilate(clipped.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    ci, di = aligned.color.intrinsics, fs.depth.intrinsics
    cam = deproject(pixels[:, 0].astype(np.float64), pixels[:, 1].astype(np.float64),
                    np.full(len(pixels), z_m), ci)
    uv = np.rint(project(fs.extrinsics_between(StreamKind.COLOR, StreamKind.DEPTH).apply(cam), di)).astype(int)
    h, w = near.shape
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    out[inside] = near[uv[inside, 1], uv[inside, 0]]
    return out


def face_depth(aligned: AlignedFrameSet, lm: np.ndarray, ipd: float) -> FaceDepth:
    valid, depth_m = aligned.valid, aligned.depth_m
    shape = valid.shape
    face = polygon_mask(shape, lm[list(FACE_OVAL), :2])
    core = discs_mask(shape, lm[list(CORE_POINTS), :2], 0.08 * ipd) & face
    on_face = depth_m[face & valid]
    z_face = float(np.median(on_face)) if on_face.size else float("nan")
    holes = face & ~valid
    explained = np.zeros(shape, bool)
    if holes.any():
        v, u = np.nonzero(holes)
        hit = glint_mask(aligned, np.c_[u, v], z_face)
        explained[v[hit], u[hit]] = True
    counted_face, counted_core = face & ~explained, core & ~explained
    f = float(valid[counted_face].mean()) if counted_face.any() else 0.0
    c = float(valid[counted_core].mean()) if counted_core.any() else 0.0
    near, far = (float(v) for v in np.percentile(on_face, [2, 98])) if on_face.size >= EXTENT_MIN_PX else (
        float("nan"), float("nan"))
    nose = discs_mask(shape, lm[[NOSE_TIP], :2], max(0.06 * ipd, 2.0)) & valid
    brim = over_eyes = 0.0
    if nose.sum() < 3 or not (face & valid).any():
        in_front = 0.0
    else:
        z_nose = float(np.median(depth_m[nose]))
        z = depth_m[face & valid]
        in_front = float((z < z_nose - OCCLUDER_MARGIN_MM / 1000).mean())
        front = face & valid & (np.nan_to_num(depth_m[...], nan=np.inf) < z_nose - OCCLUDER_MARGIN_MM / 1000)
        eyes = discs_mask(shape, lm[list(EYE_POINTS), :2], 0.08 * ipd)
        if in_front > 0 and not (front & eyes).any():
            brim = float((front & _above(shape, lm, UPPER_LIDS)).sum() / (face & valid).sum())
        elif in_front > 0:
            over_eyes = float((front & _above(shape, lm, LOWER_LIDS)).sum() / (face & valid).sum())
    return FaceDepth(f, c, int(explained.sum()), in_front, near, far, brim, over_eyes)


def _above(shape: tuple[int, int], lm: np.ndarray, lids: tuple[int, int]) -> np.ndarray:
    """Every pixel's side of the line through the lids' middles ``lids``, the mouth's side below."""
    p, q = lm[lids[0], :2].astype(np.float64), lm[lids[1], :2].astype(np.float64)
    normal = np.array([q[1] - p[1], p[0] - q[0]])
    up = -normal if float(np.dot(lm[MOUTH_CENTRE, :2] - (p + q) / 2, normal)) > 0 else normal
    ys, xs = np.mgrid[:shape[0], :shape[1]]
    return (xs - (p[0] + q[0]) / 2) * up[0] + (ys - (p[1] + q[1]) / 2) * up[1] > 0


def face_exposure(bgr: np.ndarray, lm: np.ndarray, low: float, high: float) -> FaceExposure:
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    face = polygon_mask(gray.shape, lm[list(FACE_OVAL), :2])
    vals = gray[face]
    h, w = gray.shape
    picture = float(gray[h // 4: 3 * h // 4: 4, w // 4: 3 * w // 4: 4].mean())
    if vals.size == 0:
        return FaceExposure(0.0, 0.0, 0.0, picture)
    return FaceExposure(float(((vals >= low) & (vals <= high)).mean()), float(vals.mean()),
                        float((vals >= CLIPPED_GRAY).mean()), picture)


def sharpness(bgr: np.ndarray, centre: np.ndarray, ipd: float) -> float:
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    half = 1.3 * ipd
    x0, y0 = int(max(centre[0] - half, 0)), int(max(centre[1] - half, 0))
    x1, y1 = int(min(centre[0] + half, gray.shape[1])), int(min(centre[1] + half, gray.shape[0]))
    crop = gray[y0:y1, x0:x1]
    if crop.size < 16:
        return 0.0
    s = 60.0 / max(ipd, 1e-6)
    crop = cv2.resize(crop, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return float(cv2.Laplacian(crop.astype(np.float32), cv2.CV_32F).var())


def skin_linear_level(bgr: np.ndarray, lm: np.ndarray, ipd: float) -> float:
    mask = discs_mask(bgr.shape[:2], lm[list(SKIN_POINTS), :2], 0.1 * ipd)
    return float(_SRGB_LUT[bgr[..., 1][mask]].mean()) if mask.any() else 0.0


def ir_relit_before32(bgr: np.ndarray, ir: np.ndarray, det: Detection) -> np.ndarray | None:
    """``agent.face.relit.ir_relit`` as it was before perf32: the colour's light read before the box's
    IR tests, every local maximum a dilation by the elliptic element itself."""
    from agent.face.relit import LIGHT_FLOOR, MIN_IR_PIXELS, SHADOW_SHARE, SHADOWED_AREA, _disc, ir_light_share

    def local_light(y: np.ndarray, k: int) -> np.ndarray:
        return cv2.GaussianBlur(cv2.dilate(y, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))), (0, 0), k / 2)

    h, w = bgr.shape[:2]
    k = _disc(h)
    roi = mesh_roi(det)
    reach = roi.size * 0.71 + 2 * k
    x0, y0 = max(int(roi.cx - reach), 0), max(int(roi.cy - reach), 0)
    x1, y1 = min(int(roi.cx + reach) + 1, w), min(int(roi.cy + reach) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    win = bgr[y0:y1, x0:x1]
    s = ir_light_share(ir[y0:y1, x0:x1], k, local_light)
    luma = cv2.cvtColor(win, cv2.COLOR_BGR2GRAY).astype(np.float32) + 1.0
    y = luma / local_light(luma, k)
    bx0, by0, bx1, by1 = (int(round(v)) for v in det.bbox)
    box = (slice(max(by0 - y0, 0), max(by1 - y0, 0)), slice(max(bx0 - x0, 0), max(bx1 - x0, 0)))
    have = ir[y0:y1, x0:x1][box] > 0
    if int(have.sum()) < MIN_IR_PIXELS:
        return None
    sb, yb = s[box][have], y[box][have]
    if float(np.mean(sb < SHADOW_SHARE)) < SHADOWED_AREA:
        return None
    c1, c0 = np.polyfit(sb.astype(np.float64), yb.astype(np.float64), 1)
    if not c1 > 0 or not c0 + c1 > 0:
        return None
    floor = float(np.clip(c0 / (c0 + c1), 0.0, 1.0))
    if floor >= SHADOW_SHARE:
        return None
    light = np.maximum(floor + (1.0 - floor) * s, LIGHT_FLOOR)
    out = bgr.copy()
    out[y0:y1, x0:x1] = np.clip(win.astype(np.float32) / light[..., None], 0, 255).astype(np.uint8)
    return out


def relit_mesh_before32(aligned: AlignedFrameSet, det: Detection) -> Mesh | None:
    """``QualityGate.relit_mesh`` as it was before perf32: ``ir_relit_before32``, then the mesh with its irises
    whatever its presence (and no stopping between the steps)."""
    from agent.face.mesh import face_mesh as mesh_now
    if aligned.ir is None:
        return None
    relit = ir_relit_before32(aligned.color.pixels, aligned.ir, det)
    return mesh_now(relit, det) if relit is not None else None
