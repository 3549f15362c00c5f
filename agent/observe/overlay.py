"""Pictures for the diagnostics page: colour with the quality overlay, depth as a colour map, IR.

All three have the colour image's geometry (depth and IR aligned to colour), so one face box fits
all of them. Drawn in memory and handed out as JPEG bytes; nothing here touches a disk.
"""

from __future__ import annotations

import cv2
import numpy as np

from agent.pipeline.align import AlignedFrameSet
from agent.quality import QualityReport

MAX_WIDTH = 640                       # the page shows three side by side; larger costs CPU for nothing
DEPTH_NEAR_M, DEPTH_FAR_M = 0.25, 1.5  # the colour map's range: a kiosk's working distances
OK_BGR, BAD_BGR, MARK_BGR = (80, 200, 60), (40, 160, 250), (255, 255, 255)
JPEG_QUALITY = 80


def _scale(width: int) -> float:
    return min(1.0, MAX_WIDTH / width)


def _resize(img: np.ndarray, s: float) -> np.ndarray:
    if s >= 1.0:
        return img
    h, w = img.shape[:2]
    return cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def _box(img: np.ndarray, report: QualityReport | None, s: float) -> None:
    if report is None or report.face is None:
        return
    x0, y0, x1, y1 = (int(round(v * s)) for v in report.face.bbox)
    cv2.rectangle(img, (x0, y0), (x1, y1), OK_BGR if report.ok else BAD_BGR, 2)


def color_view(aligned: AlignedFrameSet, report: QualityReport | None) -> np.ndarray:
    """Colour with the face box (green: this frameset passes the gate), the 468 landmarks and the
    line between the pupils (the IPD the gate measures)."""
    s = _scale(aligned.color.width)
    img = _resize(aligned.color.pixels, s).copy()
    _box(img, report, s)
    if report is not None and report.face is not None:
        mesh = report.face.mesh
        for x, y in (mesh.landmarks[:, :2] * s).astype(np.int32):
            img[max(0, min(y, img.shape[0] - 1)), max(0, min(x, img.shape[1] - 1))] = MARK_BGR
        right, left = (tuple(int(round(c * s)) for c in p[:2]) for p in mesh.pupils)
        cv2.line(img, right, left, OK_BGR, 1)
        for p in (right, left):
            cv2.circle(img, p, 3, OK_BGR, 1)
    return img


def depth_view(aligned: AlignedFrameSet, report: QualityReport | None) -> np.ndarray:
    """Aligned depth as a colour map (near warm, far cool over 0.25-1.5 m), holes black."""
    s = _scale(aligned.color.width)
    d = _resize(aligned.depth_m[...], s)
    norm = np.clip((d - DEPTH_NEAR_M) / (DEPTH_FAR_M - DEPTH_NEAR_M), 0.0, 1.0)
    u8 = (255 * (1.0 - np.nan_to_num(norm, nan=1.0))).astype(np.uint8)
    img = cv2.applyColorMap(u8, cv2.COLORMAP_TURBO)
    img[~np.isfinite(d)] = 0
    _box(img, report, s)
    return img


def ir_view(aligned: AlignedFrameSet, report: QualityReport | None) -> np.ndarray:
    """Aligned IR, stretched to its own 1st-99th percentiles (the projector's dots show)."""
    s = _scale(aligned.color.width)
    if aligned.ir is None:
        img = np.zeros((round(aligned.color.height * s), round(aligned.color.width * s), 3), np.uint8)
        cv2.putText(img, "no IR stream", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, MARK_BGR, 2)
        return img
    ir = _resize(aligned.ir.astype(np.float32), s)
    lit = ir[::4, ::4][ir[::4, ::4] > 0]          # percentiles of a 1-in-16 sample: the same stretch, 10x cheaper
    lo, hi = (np.percentile(lit, (1, 99)) if lit.size else (0.0, 1.0))
    u8 = np.clip((ir - np.float32(lo)) * np.float32(255.0 / max(float(hi - lo), 1e-6)), 0, 255).astype(np.uint8)
    view: np.ndarray = cv2.cvtColor(u8, cv2.COLOR_GRAY2BGR)
    _box(view, report, s)
    return view


def jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
