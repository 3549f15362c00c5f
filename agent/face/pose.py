"""Head pose (yaw, pitch, roll in degrees) from landmarks, and from depth where it is available.

Conventions: yaw > 0 when the face turns toward the camera's right, pitch > 0 when the chin drops,
roll > 0 when the face tilts clockwise in the image. Landmark pose fits a plane to FaceMesh's own
3D landmarks; depth pose fits a plane to the 3D face points around the eyes, cheeks and mouth, which
does not depend on the person's face shape.
"""

from __future__ import annotations

import numpy as np

from drivers.frame import Intrinsics

# Landmarks on the face's broad, near-planar front: forehead, cheeks, temples, chin and mouth area.
PLANE_LANDMARKS = [10, 109, 338, 67, 297, 50, 280, 205, 425, 123, 352, 152, 175, 18, 200, 101, 330]


def roll_from_eyes(right_eye: np.ndarray, left_eye: np.ndarray) -> float:
    d = left_eye - right_eye
    return float(np.degrees(np.arctan2(d[1], d[0])))


def _angles(facing: np.ndarray, right: np.ndarray | None) -> tuple[float, float, float]:
    """Yaw and pitch of the direction the face looks along; roll of its left-to-right axis."""
    yaw = float(np.degrees(np.arctan2(facing[0], -facing[2])))
    pitch = float(np.degrees(np.arctan2(facing[1], -facing[2])))
    roll = float(np.degrees(np.arctan2(right[1], right[0]))) if right is not None else float("nan")
    return yaw, pitch, roll


def pose_from_mesh(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) of the plane through FaceMesh's own 3D landmarks (no depth sensor needed)."""
    p = landmarks[PLANE_LANDMARKS].astype(np.float64)
    normal = np.linalg.svd(p - p.mean(axis=0), full_matrices=False)[2][-1]
    if normal[2] > 0:
        normal = -normal
    yaw, pitch, _ = _angles(normal, None)
    return yaw, pitch


def head_pose(landmarks: np.ndarray, pupils: tuple[np.ndarray, np.ndarray], depth_m: np.ndarray | None,
              intr: Intrinsics) -> tuple[float, float, float, str]:
    """(yaw, pitch, roll, source). Yaw from the measured face surface where depth covers it (it is
    symmetric and needs no face model); pitch from the landmark mesh (the face's vertical profile
    is too uneven for a plane fit on depth); roll from the line between the pupils."""
    mesh_yaw, pitch = pose_from_mesh(landmarks)
    roll = roll_from_eyes(*pupils)
    if depth_m is not None:
        d = pose_from_depth(landmarks, depth_m, intr)
        if d is not None:
            return d[0], pitch, roll, "depth+landmarks"
    return mesh_yaw, pitch, roll, "landmarks"


def pose_from_depth(landmarks: np.ndarray, depth_m: np.ndarray, intr: Intrinsics) -> tuple[float, float] | None:
    """(yaw, pitch) of the face plane fitted to depth at the plane landmarks, or None if too few."""
    # The 3x3 depth patch around every plane landmark at once; the median of its valid values.
    h, w = depth_m.shape
    uv = np.rint(landmarks[list(PLANE_LANDMARKS), :2]).astype(int)
    inside = (uv[:, 0] >= 1) & (uv[:, 0] < w - 1) & (uv[:, 1] >= 1) & (uv[:, 1] < h - 1)
    u, v = uv[inside, 0], uv[inside, 1]
    off = np.arange(-1, 2)
    patches = depth_m[v[:, None, None] + off[None, :, None], u[:, None, None] + off[None, None, :]].reshape(len(u), 9)
    # nanmedian per patch without its all-NaN warning (not thread-safe to silence): NaNs sort last.
    srt = np.sort(patches, axis=1)
    n = np.isfinite(patches).sum(axis=1)
    rows = np.arange(len(u))
    lo, hi = np.maximum(n - 1, 0) // 2, np.maximum(n, 1) // 2
    z = np.where(n > 0, (srt[rows, lo] + srt[rows, hi]) / 2, np.nan)
    good = np.isfinite(z)
    u, v, z = u[good], v[good], z[good]
    pts = np.c_[(u - intr.ppx) / intr.fx * z, (v - intr.ppy) / intr.fy * z, z]
    if len(pts) < 8:
        return None
    p = np.array(pts)
    centred = p - p.mean(axis=0)
    normal = np.linalg.svd(centred, full_matrices=False)[2][-1]
    if normal[2] > 0:
        normal = -normal                      # the direction the face looks: toward the camera
    yaw, pitch, _ = _angles(normal, None)
    return yaw, pitch
