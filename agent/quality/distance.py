"""Is the face inside the distances the depth camera measures?

A stereo camera finds depth only between its minimum Z (nearer, the match falls outside its
disparity search) and the far end of its range; a structured-light camera likewise. Issue 14 saw a
D455 refuse faces at 352-378 mm, nearer than its 0.40 m minimum, as ``DEPTH_SPARSE`` ("hold still and
face the camera"), which nobody can act on: the person must move back.

A face nearer than the minimum still has depth where it is far enough: a camera reports nothing
nearer than its minimum, so the face's depth *ends* at the minimum (its nearest depth sits there)
while its nearest parts, nose and brow, are holes. That is the evidence used: the nearest depth on
the face within ``RANGE_EDGE_M`` of the minimum (``FaceDepth.nearest_m``), and likewise the furthest
at the maximum. A face with too little depth to say (``EXTENT_MIN_PX``) is placed from the colour
image: the pupils are ``IPD_MEAN_M`` apart and the nose tip stands ``EYES_BEHIND_NOSE_M`` in front of
them. That estimate is only as good as the person's IPD is average (54-72 mm: about ±14 %), and on
the simulator it reads ~15 % far (its faces measure ~85 % of the pixel IPD their 63 mm implies), so
it decides only when the face has no depth to go by. The camera's range comes with its depth frames
(``FrameMetadata.depth_min_m``/``depth_max_m``, from ``Camera.depth_range``); a camera that states
none is not judged.

Only a face whose depth falls short of §7.5 h in this frameset is told it is out of range: a face
whose depth is complete is being measured. A face short of depth away from both bounds keeps
``DEPTH_SPARSE`` (the camera's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from agent.pipeline.align import AlignedFrameSet
from agent.quality.depth import FaceDepth
from drivers import DepthRange
from drivers.errors import InvalidSetting

IPD_MEAN_M = 0.063            # adult mean interpupillary distance
EYES_BEHIND_NOSE_M = 0.02     # eye plane behind the nose tip (noses stand 14-32 mm proud of the face)
# Depth this close to a bound reaches it: stereo noise at 0.4 m is 1-3 mm, and a face whose nearest
# depth sits within 2 cm of the minimum has its nose (14-32 mm proud of the cheeks) nearer than that.
RANGE_EDGE_M = 0.02


def stated_range(aligned: AlignedFrameSet) -> DepthRange | None:
    """The range on this frameset's depth frame; None when the camera states none. A range that is
    not one (from a bad frame description) is not stated: ``DepthRange`` refuses it."""
    depth = aligned.frameset.depth
    if depth is None:
        return None
    lo, hi = depth.metadata.depth_min_m, depth.metadata.depth_max_m
    if lo is None and hi is None:
        return None
    try:
        return DepthRange(lo, hi)
    except InvalidSetting:
        return None


def nose_distance_from_colour(ipd_frontal_px: float, fx_px: float) -> float:
    """Camera to nose tip, in metres, from the frontal-equivalent pupil distance in colour pixels."""
    if not (ipd_frontal_px > 0 and fx_px > 0):
        return math.nan
    return fx_px * IPD_MEAN_M / ipd_frontal_px - EYES_BEHIND_NOSE_M


@dataclass(frozen=True)
class RangeJudgement:
    near: bool                 # the face reaches nearer than the camera's minimum depth
    far: bool                  # the face reaches beyond its maximum
    evidence: str              # "depth" (where the face's depth ends) or "colour" (IPD) or "" (not judged)


def judge_range(rng: DepthRange, depth: FaceDepth, colour_nose_m: float, short: bool) -> RangeJudgement:
    """Where the face stands against the camera's range, when its depth falls short (``short``)."""
    if not short:
        return RangeJudgement(False, False, "")
    if math.isfinite(depth.nearest_m) and math.isfinite(depth.furthest_m):
        near = rng.min_m is not None and depth.nearest_m < rng.min_m + RANGE_EDGE_M
        far = rng.max_m is not None and depth.furthest_m > rng.max_m - RANGE_EDGE_M
        return RangeJudgement(near, far and not near, "depth")
    if not math.isfinite(colour_nose_m):
        return RangeJudgement(False, False, "")
    near = rng.min_m is not None and colour_nose_m < rng.min_m
    far = rng.max_m is not None and colour_nose_m > rng.max_m
    return RangeJudgement(near, far, "colour")
