"""A second search for a face on a colour image where ``FaceDetector`` found none: the image over a
large-scale estimate of its own light, so hard stripes of light (low sun through venetian blinds, the
fourteenth family) divide out and the reflectance stays (docs/liveness.md, "The face detector under
the blinds' stripes, relit" and "... second try, kept where the depth holds a head").

The relit image also makes faces of things that are none (a photograph of a coffee cup, a rocket; a
passer-by's featureless head): its detections are candidates only. The quality gate keeps one only
where the aligned depth holds a head (``agent.quality.faces.head_in_depth``)."""

from __future__ import annotations

import cv2
import numpy as np

from agent.face.detector import Detection, FaceDetector

RELIGHT_SCALE = 1 / 24       # max-filter disc, in frame heights (31 px at 720 rows)
SHADOW_SHARE = 0.5           # a pixel in hard shadow: below half its surroundings' light
SHADOWED_AREA = 0.1          # a relit box must be this much in hard shadow


def flatten_illumination(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The colour over its luminance's local maximum (disc of RELIGHT_SCALE of the height, blurred
    at half that), scaled so its 99.5th percentile is 255; and the luminance's share of that light."""
    k = max(3, int(round(bgr.shape[0] * RELIGHT_SCALE)) | 1)
    y = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) + 1.0
    light = cv2.GaussianBlur(cv2.dilate(y, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))), (0, 0), k / 2)
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
