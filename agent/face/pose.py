"""Head pose (yaw, pitch, roll in degrees) from landmarks, cross-checked against measured depth.

Conventions: yaw > 0 when the face turns toward the camera's right, pitch > 0 when the chin drops,
roll > 0 when the face tilts clockwise in the image.

Two independent yaw measurements:

- **landmarks**: the plane through FaceMesh's own 3D landmarks. Needs no depth, but FaceMesh's z
  is the model's guess of a face's shape, and it misjudges turned heads whose shape differs from
  its average face (by up to ~8° in the simulator).
- **depth**: mirrored landmark pairs (cheek and cheek, eye corner and eye corner, ...) measured in
  the aligned depth. For a head turned by θ, a pair at ±a across the face's midline and at any
  depth d on the face differs by Δz/Δx = tan θ: the face's shape (nose relief, face width, brow)
  cancels, so the estimate cannot fold into a wrong solution on a head unlike ours, as a plane fit
  to the face surface can (issue 14: ~82° reported for heads turned 9-20°).

The two must agree (``POSE_AGREEMENT_DEG``). When they do, depth's yaw is used (it is the
measurement); when they do not, or depth's pairs disagree among themselves, the pose is not known
for this frameset: yaw is NaN and the source says why, so the gate measures again on the next
frameset instead of acting on a wrong value. Pitch comes from the landmarks (the face's vertical
profile has no mirror symmetry to cancel its shape); roll from the line between the pupils.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from drivers.frame import Intrinsics

if TYPE_CHECKING:
    from agent.pipeline.align import Metres

# Landmarks on the face's broad, near-planar front: forehead, cheeks, temples, chin and mouth area.
PLANE_LANDMARKS = [10, 109, 338, 67, 297, 50, 280, 205, 425, 123, 352, 152, 175, 18, 200, 101, 330]

# Mirrored pairs of the 468-point mesh (subject's right, subject's left), on the cheeks, temples,
# forehead, eye corners and mouth: regions that stay in view within the ±20° of §7.4. Checked on
# frontal faces: each pair's points sit level (|Δy| ≈ 1 px) and mirrored about the midline.
MIRROR_PAIRS = ((93, 323), (132, 361), (58, 288), (50, 280), (205, 425), (123, 352), (117, 346),
                (147, 376), (187, 411), (192, 416), (21, 251), (54, 284), (103, 332), (67, 297),
                (109, 338), (33, 263), (61, 291), (206, 426), (36, 266), (101, 330), (100, 329),
                (111, 340), (116, 345), (118, 347), (119, 348), (129, 358), (142, 371), (203, 423),
                (207, 427), (212, 432), (214, 434), (216, 436), (133, 362), (130, 359))
MIN_PAIRS = 8                       # pairs with depth on both points needed for a depth yaw
# Depth and landmark yaw must agree within this many degrees. Landmark yaw errs by up to ~8° on
# simulated heads of other shapes; depth yaw is within ~2° of the truth on them.
POSE_AGREEMENT_DEG = 12.0
# The pairs' own spread (inter-quartile range, degrees) above which depth yaw is not trusted:
# pairs on an occluder, a silhouette or a hole give scattered angles.
PAIR_SPREAD_MAX_DEG = 12.0


@dataclass(frozen=True)
class Pose:
    """One frameset's head pose. ``yaw`` is NaN when the measurements disagree (``agreed`` False)."""

    yaw: float
    pitch: float
    roll: float
    source: str                     # "depth+landmarks", "landmarks" (no depth), or why it is unknown
    landmark_yaw: float
    depth_yaw: float                # NaN without enough depth
    agreed: bool


def roll_from_eyes(right_eye: np.ndarray, left_eye: np.ndarray) -> float:
    d = left_eye - right_eye
    return float(np.degrees(np.arctan2(d[1], d[0])))


def pose_from_mesh(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) of the plane through FaceMesh's own 3D landmarks (no depth sensor needed)."""
    p = landmarks[PLANE_LANDMARKS].astype(np.float64)
    normal = np.linalg.svd(p - p.mean(axis=0), full_matrices=False)[2][-1]
    if normal[2] > 0:
        normal = -normal                      # the direction the face looks: toward the camera
    yaw = float(np.degrees(np.arctan2(normal[0], -normal[2])))
    pitch = float(np.degrees(np.arctan2(normal[1], -normal[2])))
    return yaw, pitch


def depth_at(points: np.ndarray, depth_m: np.ndarray | Metres) -> np.ndarray:
    """Median of the valid depth in the 3x3 patch around each point (NaN where there is none).
    ``depth_m``: metres, or an aligned frameset's ``depth_m`` (only the patches are converted)."""
    h, w = depth_m.shape
    uv = np.rint(points[:, :2]).astype(int)
    inside = (uv[:, 0] >= 1) & (uv[:, 0] < w - 1) & (uv[:, 1] >= 1) & (uv[:, 1] < h - 1)
    z = np.full(len(points), np.nan)
    if not inside.any():
        return z
    u, v = uv[inside, 0], uv[inside, 1]
    off = np.arange(-1, 2)
    patches = depth_m[v[:, None, None] + off[None, :, None], u[:, None, None] + off[None, None, :]].reshape(len(u), 9)
    # nanmedian per patch without its all-NaN warning (not thread-safe to silence): NaNs sort last.
    srt = np.sort(patches, axis=1)
    n = np.isfinite(patches).sum(axis=1)
    rows = np.arange(len(u))
    lo, hi = np.maximum(n - 1, 0) // 2, np.maximum(n, 1) // 2
    z[inside] = np.where(n > 0, (srt[rows, lo] + srt[rows, hi]) / 2, np.nan)
    return z


def yaw_from_depth(landmarks: np.ndarray, depth_m: np.ndarray | Metres, intr: Intrinsics) -> tuple[float, float, int]:
    """(yaw, spread, pairs): the median over mirrored pairs of atan(Δz/Δx) in camera space, the
    inter-quartile range of the pairs' angles, and how many pairs had depth on both points."""
    idx = np.array(MIRROR_PAIRS)
    pts = landmarks[idx.ravel(), :2].astype(np.float64)
    z = depth_at(pts, depth_m)
    x = (pts[:, 0] - intr.ppx) / intr.fx * z
    x, z = x.reshape(-1, 2), z.reshape(-1, 2)
    good = np.isfinite(z).all(axis=1) & (np.abs(x[:, 1] - x[:, 0]) > 1e-3)
    if good.sum() < MIN_PAIRS:
        return float("nan"), float("nan"), int(good.sum())
    # Subject's left minus right: a face turned toward the camera's right (yaw > 0) takes its left
    # side away from the camera, so Δz > 0 over Δx > 0.
    ang = np.degrees(np.arctan2(z[good, 1] - z[good, 0], x[good, 1] - x[good, 0]))
    q1, q3 = np.percentile(ang, [25, 75])
    return float(np.median(ang)), float(q3 - q1), int(good.sum())


def head_pose(landmarks: np.ndarray, pupils: tuple[np.ndarray, np.ndarray], depth_m: np.ndarray | Metres | None,
              intr: Intrinsics) -> Pose:
    """The pose of one face: landmark yaw cross-checked against depth yaw (see the module's doc)."""
    mesh_yaw, pitch = pose_from_mesh(landmarks)
    roll = roll_from_eyes(*pupils)
    nan = float("nan")
    if depth_m is None:
        return Pose(mesh_yaw, pitch, roll, "landmarks", mesh_yaw, nan, True)
    dyaw, spread, pairs = yaw_from_depth(landmarks, depth_m, intr)
    if not np.isfinite(dyaw):
        # Too little depth on the face to measure it: the landmarks alone (the depth checks of
        # the gate say why depth is missing).
        return Pose(mesh_yaw, pitch, roll, "landmarks", mesh_yaw, nan, True)
    if spread > PAIR_SPREAD_MAX_DEG:
        return Pose(nan, pitch, roll, "depth pairs scattered", mesh_yaw, dyaw, False)
    if abs(dyaw - mesh_yaw) > POSE_AGREEMENT_DEG:
        return Pose(nan, pitch, roll, "depth and landmarks disagree", mesh_yaw, dyaw, False)
    return Pose(dyaw, pitch, roll, "depth+landmarks", mesh_yaw, dyaw, True)
