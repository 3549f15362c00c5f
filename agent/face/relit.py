"""A second search for a face on a colour image where ``FaceDetector`` found none: the image over a
large-scale estimate of its own light, so hard stripes of light (low sun through venetian blinds, the
fourteenth family) divide out and the reflectance stays (docs/liveness.md, "The face detector under
the blinds' stripes, relit" and "... second try, kept where the depth holds a head").

The relit image also makes faces of things that are none (a photograph of a coffee cup, a rocket; a
passer-by's featureless head): its detections are candidates only. The quality gate keeps one only
where the aligned depth holds a head (``agent.quality.faces.head_in_depth``).

The stripes also defeat FaceMesh on a face the detector does find (its presence 0.00-0.54). Relit by
the colour's own light the mesh does no better (the light estimate cannot follow a stripe's edge), but
the sun's stripes cross the IR image where they cross the colour one, and the IR (the projector's dots
blurred out) says where each stripe is: ``ir_relit`` divides the colour by that light, for a second
landmark try on the detected face ("FaceMesh under the blinds' stripes, relit by the IR")."""

from __future__ import annotations

import functools
from collections.abc import Callable

import cv2
import numpy as np

from agent.face.detector import Detection, FaceDetector
from agent.face.mesh import mesh_roi

RELIGHT_SCALE = 1 / 24       # max-filter disc, in frame heights (31 px at 720 rows)
SHADOW_SHARE = 0.5           # a pixel in hard shadow: below half its surroundings' light
SHADOWED_AREA = 0.1          # a relit box must be this much in hard shadow
IR_DOTS_SIGMA_PX = 3.0       # the projector's dots blurred out of the IR before it is read as light (stripes: 12+ px)
# The least light ``ir_relit`` divides by: 8-bit colour at 1/20 of a face's lit level keeps about a dozen
# levels, below that there is no reflectance left to restore, only noise to amplify.
LIGHT_FLOOR = 0.05
MIN_IR_PIXELS = 100          # IR on fewer of the face box's pixels: no second landmark try


def _disc(rows: int) -> int:
    return max(3, int(round(rows * RELIGHT_SCALE)) | 1)


@functools.lru_cache(maxsize=8)
def _disc_rects(k: int) -> tuple[tuple[int, int], ...] | None:
    """OpenCV's ``k`` x ``k`` elliptic structuring element as the union of centred rectangles (rows, columns),
    one per row width it has (each as tall as the rows at least that wide); None where it is not such a
    union (then ``_disc_max`` dilates with the element itself)."""
    el = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    widths = el.sum(axis=1)
    rects = tuple(sorted({(int((widths >= w).sum()), int(w)) for w in widths if w > 0}))
    union = np.zeros_like(el)
    for h, w in rects:
        if h % 2 == 0 or w % 2 == 0:
            return None
        union[(k - h) // 2:(k + h) // 2, (k - w) // 2:(k + w) // 2] = 1
    return rects if np.array_equal(union, el) else None


def _disc_max(y: np.ndarray, k: int) -> np.ndarray:
    """``cv2.dilate`` of ``y`` by the ``k`` px elliptic element, to the bit (a maximum is exact in any order):
    the largest of its rectangles' dilations (``_disc_rects``), each separable, ~0.65 of the element's own
    cost at ``k`` 21 (perf32)."""
    rects = _disc_rects(k)
    if rects is None:
        return cv2.dilate(y, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    out = cv2.dilate(y, np.ones(rects[0], np.uint8))
    for rect in rects[1:]:
        np.maximum(out, cv2.dilate(y, np.ones(rect, np.uint8)), out=out)
    return out


def _local_light(y: np.ndarray, k: int) -> np.ndarray:
    """A large-scale estimate of the light on ``y``: its maximum over a disc of ``k`` px, blurred at
    half that (a stripe's lit neighbours set the light of its shadow)."""
    return cv2.GaussianBlur(_disc_max(y, k), (0, 0), k / 2)


def flatten_illumination(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The colour over its luminance's local maximum (disc of RELIGHT_SCALE of the height, blurred
    at half that), scaled so its 99.5th percentile is 255; and the luminance's share of that light."""
    y = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) + 1.0
    light = _local_light(y, _disc(bgr.shape[0]))
    out = bgr.astype(np.float32) / light[..., None]
    out *= 255.0 / max(float(np.percentile(out, 99.5)), 1e-6)
    return np.clip(out, 0, 255).astype(np.uint8), y / light


def relit_detections(det: FaceDetector, bgr: np.ndarray) -> list[Detection]:
    """``det``'s detections on the relit image whose box is at least ``SHADOWED_AREA`` in hard
    shadow (a face the stripes could have hidden), in the image's pixels."""
    img, share = flatten_illumination(bgr)
    out = []
    for d in det.detect(img):
        x0, y0, x1, y1 = (max(int(round(v)), 0) for v in d.bbox)
        box = share[y0:y1, x0:x1]
        if box.size and float(np.mean(box < SHADOW_SHARE)) >= SHADOWED_AREA:
            out.append(d)
    return out


def ir_light_share(ir: np.ndarray, k: int,
                   local_light: Callable[[np.ndarray, int], np.ndarray] = _local_light) -> np.ndarray:
    """Each pixel's share of its local light read off aligned IR (0 where no depth carried it): the
    dots blurred out by a blur normalised over the pixels that have IR, over its local maximum
    (``local_light``, disc ``k``: ``_local_light``; the reference before perf32 passes its own); 1 (no
    shadow known) where no IR is near."""
    have = (ir > 0).astype(np.float32)
    num = cv2.GaussianBlur(ir.astype(np.float32), (0, 0), IR_DOTS_SIGMA_PX)
    den = cv2.GaussianBlur(have, (0, 0), IR_DOTS_SIGMA_PX)
    x = np.where(den > 0.05, num / np.maximum(den, 1e-6), 0.0).astype(np.float32)
    top = local_light(x, k)
    return np.where(top > 0, np.clip(x / np.maximum(top, 1e-6), 0.0, 1.0), 1.0).astype(np.float32)


def ir_relit(bgr: np.ndarray, ir: np.ndarray, det: Detection,
             check: Callable[[], None] | None = None) -> np.ndarray | None:
    """The colour image with the light the aligned IR shows divided out around ``det``'s face (the
    mesh's crop and the filters' reach; elsewhere a copy), for a second FaceMesh try; None where the
    IR shows no hard stripes on the face (under ``SHADOWED_AREA`` of the box's IR pixels below
    ``SHADOW_SHARE`` of their light) or the colour's light does not fall with the IR's to a hard
    shadow too (the fitted floor below, at least ``SHADOW_SHARE``): not one light.

    Sunlight crosses both bands, the room's light (the colour's shade level) and the projector and
    flood (the IR's) differ: in the box the colour's share of its light ``y`` is fitted as
    ``c0 + c1 s`` on the IR's share ``s``; ``c0 / (c0 + c1)`` is the colour light's floor between
    the stripes, and the colour is divided by ``floor + (1 - floor) s`` (at least ``LIGHT_FLOOR``).

    ``check``: called between the steps (a caller that may no longer need the result raises from it to
    stop). The tests that need less come first (the box's IR pixels, then its share in shadow, before
    the colour's light is read: perf32), the result the same to the bit."""
    h, w = bgr.shape[:2]
    k = _disc(h)
    roi = mesh_roi(det)
    reach = roi.size * 0.71 + 2 * k                  # the rotated crop's half-diagonal and the filters'
    x0, y0 = max(int(roi.cx - reach), 0), max(int(roi.cy - reach), 0)
    x1, y1 = min(int(roi.cx + reach) + 1, w), min(int(roi.cy + reach) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    win = bgr[y0:y1, x0:x1]
    bx0, by0, bx1, by1 = (int(round(v)) for v in det.bbox)
    box = (slice(max(by0 - y0, 0), max(by1 - y0, 0)), slice(max(bx0 - x0, 0), max(bx1 - x0, 0)))
    have = ir[y0:y1, x0:x1][box] > 0
    if int(have.sum()) < MIN_IR_PIXELS:
        return None
    s = ir_light_share(ir[y0:y1, x0:x1], k)
    sb = s[box][have]
    if float(np.mean(sb < SHADOW_SHARE)) < SHADOWED_AREA:
        return None
    if check is not None:
        check()
    luma = cv2.cvtColor(win, cv2.COLOR_BGR2GRAY).astype(np.float32) + 1.0
    y = luma / _local_light(luma, k)
    yb = y[box][have]
    c1, c0 = np.polyfit(sb.astype(np.float64), yb.astype(np.float64), 1)
    if not c1 > 0 or not c0 + c1 > 0:
        return None
    floor = float(np.clip(c0 / (c0 + c1), 0.0, 1.0))
    if floor >= SHADOW_SHARE:
        return None                                  # the colour not in hard shadow where the IR is
    if check is not None:
        check()
    light = np.maximum(floor + (1.0 - floor) * s, LIGHT_FLOOR)
    out = bgr.copy()
    out[y0:y1, x0:x1] = np.clip(win.astype(np.float32) / light[..., None], 0, 255).astype(np.uint8)
    return out
