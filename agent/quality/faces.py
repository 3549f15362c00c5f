"""Is another detection a face? The multi-face rule's evidence (T/IIFAA 3001.1 §6.1.1).

The rule exists for a person behind or beside the subject. It used to count every detection above
the detector's score as a face, while the main face had to pass the landmark model and the capture
checks. On a D455's 1280x720 frames the detector also searches square tiles at ~1.8x the whole
frame's scale (``agent/face/detector.py``), and there a poster on a textured wall 1.6 m away scored
0.57-0.59 as a face (the whole-frame pass gives that region nothing at all) and refused a live person
``MULTIPLE_FACES`` (issue 14). A second face must now be one by the same evidence as the first:

- **size**: large enough to matter (``second_face_area_ratio`` of the main face, as before);
- **landmarks**: FaceMesh finds a face in it (presence >= ``presence_min``, the main face's limit);
- **a surface at a face's distance with a face's relief**, where the camera measured depth on it:
  at its measured depth the detector's box is as wide as a face's (``FACE_BOX_WIDTH_M``; the wall's
  box was 0.31 m wide), and the nose tip stands nearer than the sides of the face by
  ``FACE_RELIEF_MIN_MM`` (a wall: ±4 mm; people: 24-50 mm, the bystander included). Without depth on
  it, size and landmarks decide.

A genuine person behind the subject passes all three (the simulator's bystander: presence 1.0, box
0.13-0.15 m wide at 0.9-1.0 m, relief 24-38 mm), so the rule still refuses them.

Evidence can only set a detection aside when it is unambiguous. A person half hidden behind the
subject's head (a coercer looking over a shoulder) has a box whose depth is partly the subject's:
its median would make it too narrow, its sides nearer than its nose, and FaceMesh may not find the
half face. So a box whose depth lies at more than one distance (``SINGLE_SURFACE_SPREAD_M``) counts
as a face whatever its landmarks say if it can be a face hidden behind the nearer surface: at least
``HIDDEN_FACE_SHARE_MIN`` of its depth lies behind that surface (more than ``NEAR_SURFACE_DEPTH_M``
beyond the box's 10th percentile) and no farther than where the detector's loosest box on the
largest face (``HIDDEN_FACE_BOX_MAX_M``) would fill the box. A hidden face's box is that face's (or
its visible part's, narrower), so the face lies within that distance whatever its size; a child's,
smaller, is allowed farther. Otherwise the box is judged as any other detection. Only a relief near
zero (a flat surface) sets a face aside; a negative relief is something in front of it, not a wall.

That condition is issue 14's second false face (eighteenth session). On the fifth family's cluttered
backgrounds a tile found a "face" (score 0.53-0.55, FaceMesh presence 0.00) whose 169-275 px box
took in the subject's head at 0.43 m, or a poster at 1.43-1.46 m, and the wall at 1.6 m. A face
filling those boxes would lie within 0.65-1.05 m; at most 0.2 % of either box does (beyond its
nearer surface), so it is no hidden face and, without landmarks, no face. The least margin seen:
fifth/live 228, a 136 px box on a poster at 1.42 m, reach 1.32 m. The simulator's bystander
moved partly behind the subject's head leaves 59-88 % of its box there, and synthetic heads covering
30-70 % of its box from either side or above, 0.15 or 0.5 m in front of it, 31-70 %
(``tests/quality/test_second_face.py``; docs/quality.md, *One face*, has the attacker's review).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agent.face import Detection, face_mesh
from agent.pipeline.align import AlignedFrameSet, Metres

# The detector's box spans a face from brow to chin and cheek to cheek: 0.11-0.15 m on the
# simulator's adults at 0.45-1.0 m. Generous bounds: children and large heads are still faces.
FACE_BOX_WIDTH_M = (0.07, 0.22)
# A nose tip stands 14-32 mm proud of the cheeks, and the sides of the face further back still;
# a flat surface (wall, poster) measures within the depth noise (±4 mm at 1.6 m).
FACE_RELIEF_MIN_MM = 10.0
DEPTH_EVIDENCE_MIN = 0.5            # share of the box with depth for depth to count as evidence
# A face's own depth within its box spans ~0.05-0.08 m (nose tip to cheeks); a wall far less. A box
# whose 10th-90th percentile depths differ by more straddles two surfaces: perhaps a face partly
# hidden behind the nearer one.
SINGLE_SURFACE_SPREAD_M = 0.10
# Such a box is a face partly hidden only if enough of it lies behind the nearer surface (more than
# a head's own front-to-cheek depth behind it) at a distance where a face fills the box's width. The
# width allowed is the detector's loosest box on the largest face, not FACE_BOX_WIDTH_M's: a loose
# box (face and hair) is up to 1.75x the tight one (review14: 209-223 px against 127 px), and the
# tight box is 0.11-0.15 m on adults (0.26 m loose); a hidden face may be boxed either way.
HIDDEN_FACE_BOX_MAX_M = 0.30
NEAR_SURFACE_DEPTH_M = 0.05
HIDDEN_FACE_SHARE_MIN = 0.10
# A box found on the relit image (``agent.face.relit``, only where the colour image gave none) is a
# face only where its depth holds a head: the sides of the box (at the height of its middle) stand
# back from the nearest part of its centre as a face's temples and cheeks do from the nose tip.
# Regions in shares of the box's width and height; a side beyond a head's own depth behind the tip
# (the background past a turned head) counts as that depth.
HEAD_SIDES = ((0.05, 0.20), (0.80, 0.95))
HEAD_ROWS = (0.35, 0.65)
HEAD_CENTRE = ((0.35, 0.65), (0.35, 0.75))
HEAD_TIP_PERCENTILE = 5
HEAD_DEPTH_M = 0.10
NOSE_TIP = 4
FACE_SIDES = (234, 454, 93, 323)    # FaceMesh points at the sides of the face, level with the nose
PATCH_PX = 2                        # half-size of the window depth is read from at a landmark


@dataclass(frozen=True)
class HeadEvidence:
    is_head: bool
    coverage: float                 # share of the box with depth
    width_m: float                  # the box's width at its median depth; NaN without depth
    relief_mm: float                # the box's sides behind its centre's nearest part; NaN without depth there
    why: str


@dataclass(frozen=True)
class FaceEvidence:
    is_face: bool
    presence: float                 # FaceMesh's face presence
    width_m: float                  # the box's width at its measured depth; NaN without depth
    relief_mm: float                # face sides behind the nose tip; NaN without depth there
    why: str                        # what decided it


def _depth_at(depth_m: Metres, pts: np.ndarray) -> list[float]:
    h, w = depth_m.shape
    out = []
    for u, v in np.rint(pts[:, :2]).astype(int):
        if 0 <= v < h and 0 <= u < w:
            win = depth_m[max(v - PATCH_PX, 0):v + PATCH_PX + 1, max(u - PATCH_PX, 0):u + PATCH_PX + 1]
            if np.isfinite(win).any():
                out.append(float(np.nanmedian(win)))
    return out


def face_evidence(bgr: np.ndarray, det: Detection, aligned: AlignedFrameSet, presence_min: float) -> FaceEvidence:
    """Whether ``det`` (a detection other than the main face) is a face: landmarks, and where depth
    exists on it, a face's size at its distance and a face's relief."""
    mesh = face_mesh(bgr, det, with_iris=False)
    depth_m = aligned.depth_m
    x0, y0, x1, y1 = (int(round(v)) for v in det.bbox)
    box = depth_m[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)]
    has_depth = box.size > 0 and np.isfinite(box).mean() >= DEPTH_EVIDENCE_MIN
    straddles = ""
    if has_depth:
        near, far = np.nanpercentile(box, [10, 90])
        if far - near > SINGLE_SURFACE_SPREAD_M:
            # Where would a face hidden behind the nearer surface be? Beyond that surface, and no
            # farther than where the loosest box on the largest face would fill this box.
            z_max = HIDDEN_FACE_BOX_MAX_M * aligned.color.intrinsics.fx / max(det.width, 1.0)
            behind = float(((box > near + NEAR_SURFACE_DEPTH_M) & (box <= z_max)).sum() / np.isfinite(box).sum())
            if behind >= HIDDEN_FACE_SHARE_MIN:
                return FaceEvidence(True, mesh.presence, math.nan, math.nan,
                                    f"depth at {near:.2f} and {far:.2f} m, {behind:.0%} of it behind the nearer "
                                    f"surface within {z_max:.2f} m: partly hidden, counted")
            straddles = (f" (depth at {near:.2f} and {far:.2f} m, {behind:.0%} of it behind the nearer surface "
                         f"within {z_max:.2f} m, where a face would fill the box)")
    if mesh.presence < presence_min:
        return FaceEvidence(False, mesh.presence, math.nan, math.nan, "no face landmarks" + straddles)
    if not has_depth:
        return FaceEvidence(True, mesh.presence, math.nan, math.nan, "landmarks; no depth on it")
    z = float(np.nanmedian(box))
    width_m = det.width * z / aligned.color.intrinsics.fx
    if not FACE_BOX_WIDTH_M[0] <= width_m <= FACE_BOX_WIDTH_M[1]:
        return FaceEvidence(False, mesh.presence, width_m, math.nan, f"{width_m:.2f} m wide at {z:.2f} m")
    lm = mesh.landmarks
    nose, sides = _depth_at(depth_m, lm[[NOSE_TIP]]), _depth_at(depth_m, lm[list(FACE_SIDES)])
    if not nose or len(sides) < 2:
        return FaceEvidence(True, mesh.presence, width_m, math.nan, "landmarks and size; no depth at the nose")
    relief_mm = (float(np.median(sides)) - nose[0]) * 1000
    if abs(relief_mm) < FACE_RELIEF_MIN_MM:
        return FaceEvidence(False, mesh.presence, width_m, relief_mm, f"flat ({relief_mm:.0f} mm relief)")
    return FaceEvidence(True, mesh.presence, width_m, relief_mm, "landmarks, size and relief")


def head_in_depth(det: Detection, aligned: AlignedFrameSet) -> HeadEvidence:
    """Whether the aligned depth inside ``det``'s box holds a head: depth on at least
    ``DEPTH_EVIDENCE_MIN`` of the box, a face's width at its distance (``FACE_BOX_WIDTH_M``) and its
    sides at least ``FACE_RELIEF_MIN_MM`` behind its centre's nearest part (a wall, a poster, a
    screen: within the depth noise). Read from the box alone, without landmarks: it judges boxes the
    colour image could not be trusted for (the relit second try). No depth is no head."""
    depth_m = aligned.depth_m
    x0, y0, x1, y1 = det.bbox
    w, h = x1 - x0, y1 - y0

    def region(cols: tuple[float, float], rows: tuple[float, float]) -> np.ndarray:
        r = depth_m[max(int(y0 + rows[0] * h), 0):max(int(y0 + rows[1] * h), 0),
                    max(int(x0 + cols[0] * w), 0):max(int(x0 + cols[1] * w), 0)]
        return r[np.isfinite(r)]

    box = depth_m[max(int(round(y0)), 0):max(int(round(y1)), 0), max(int(round(x0)), 0):max(int(round(x1)), 0)]
    coverage = float(np.isfinite(box).mean()) if box.size else 0.0
    if coverage < DEPTH_EVIDENCE_MIN:
        return HeadEvidence(False, coverage, math.nan, math.nan, f"depth on {coverage:.0%} of the box")
    z = float(np.nanmedian(box))
    width_m = w * z / aligned.color.intrinsics.fx
    if not FACE_BOX_WIDTH_M[0] <= width_m <= FACE_BOX_WIDTH_M[1]:
        return HeadEvidence(False, coverage, width_m, math.nan, f"{width_m:.2f} m wide at {z:.2f} m")
    centre = region(*HEAD_CENTRE)
    sides = [s for s in (region(c, HEAD_ROWS) for c in HEAD_SIDES) if s.size]
    if not centre.size or len(sides) < 2:
        return HeadEvidence(False, coverage, width_m, math.nan, "no depth at the centre or a side")
    tip = float(np.percentile(centre, HEAD_TIP_PERCENTILE))
    relief_mm = float(np.mean([min(float(np.median(s)) - tip, HEAD_DEPTH_M) for s in sides])) * 1000
    if relief_mm < FACE_RELIEF_MIN_MM:
        return HeadEvidence(False, coverage, width_m, relief_mm, f"flat ({relief_mm:.0f} mm relief)")
    return HeadEvidence(True, coverage, width_m, relief_mm, f"a head: {width_m:.2f} m wide, {relief_mm:.0f} mm relief")
