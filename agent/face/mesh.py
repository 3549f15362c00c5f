"""FaceMesh (468 landmarks) and Iris on LiteRT, from a detection's rotated ROI."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from agent.face.detector import Detection
from agent.face.models import interpreter, tensor_indices
from agent.face.roi import Roi, roi_from_points
from agent.pipeline.align import scratch

MESH_MODEL = "face_landmark.tflite"
IRIS_MODEL = "iris_landmark.tflite"
MESH_INPUT = 192
IRIS_INPUT = 64
MESH_ROI_SCALE = 1.5
IRIS_ROI_SCALE = 2.3
# Eye corners in the 468-point mesh (subject's right eye = image left for a frontal face).
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)
EYELID_POINTS = 16                 # the iris model's eye contour starts with 16 eyelid points
EYES_OPEN_FOR_PUPILS = 0.12


@dataclass(frozen=True)
class Mesh:
    landmarks: np.ndarray          # (468, 3) image px; z is relative depth in the same px scale
    presence: float                # the model's face-presence probability
    iris_right: np.ndarray | None  # (5, 2) centre + 4 boundary points, image px
    iris_left: np.ndarray | None
    openness: tuple[float, float] | None = None   # eyelid opening / eye width, right and left eye

    @property
    def eyes_open(self) -> bool:
        return self.openness is None or min(self.openness) >= EYES_OPEN_FOR_PUPILS

    @property
    def pupils(self) -> tuple[np.ndarray, np.ndarray]:
        # Iris centres are precise while the eyes are open; during a blink use the eye corners.
        if self.iris_right is not None and self.iris_left is not None and self.eyes_open:
            return self.iris_right[0], self.iris_left[0]
        lm = self.landmarks[:, :2]
        return lm[list(RIGHT_EYE_CORNERS)].mean(0), lm[list(LEFT_EYE_CORNERS)].mean(0)

    @property
    def ipd_px(self) -> float:
        right, left = self.pupils
        return float(np.linalg.norm(left - right))


def _run(name: str, crop_rgb01: np.ndarray) -> list[np.ndarray]:
    it = interpreter(name)
    inp, outs = tensor_indices(name)
    it.set_tensor(inp, crop_rgb01[None])            # float32 already (``_rgb01``): copied in once
    it.invoke()
    return [it.get_tensor(i) for i in outs]


def _rgb01(bgr_crop: np.ndarray) -> np.ndarray:
    """A model's input from a BGR crop: RGB in 0..1. The crop is taken from the BGR frame and only
    then reordered: sampling works on each channel alone, so this equals cropping an RGB copy of
    the whole frame, without making one. The RGB crop and the input are the thread's temporaries
    (``align.scratch``; ``_run`` copies the input into the interpreter), computed as
    ``astype(np.float32) / 255.0`` computes them."""
    side = bgr_crop.shape[0]
    rgb = cv2.cvtColor(bgr_crop, cv2.COLOR_BGR2RGB, dst=scratch(f"face.rgb.{side}", bgr_crop.shape, np.uint8))
    out = scratch(f"face.rgb01.{side}", bgr_crop.shape, np.float32)
    np.copyto(out, rgb, casting="unsafe")
    return np.divide(out, 255.0, out=out)


def _crop(bgr: np.ndarray, roi: Roi, side: int) -> np.ndarray:
    """``roi.extract(bgr, side)``, into the thread's temporary for crops of that side."""
    return roi.extract(bgr, side, dst=scratch(f"face.crop.{side}", (side, side, bgr.shape[2]), bgr.dtype))


def mesh_roi(det: Detection) -> Roi:
    side = max(det.width, det.height) * MESH_ROI_SCALE
    return roi_from_points(det.keypoints[0], det.keypoints[1], det.centre, side)


def face_mesh(bgr: np.ndarray, det: Detection, *, with_iris: bool = True) -> Mesh:
    roi = mesh_roi(det)
    crop = _rgb01(_crop(bgr, roi, MESH_INPUT))
    raw, flag = _run(MESH_MODEL, crop)
    pts = raw.reshape(468, 3)
    landmarks = roi.to_image(pts, MESH_INPUT)
    presence = float(1.0 / (1.0 + np.exp(-np.clip(flag.ravel()[0], -80, 80))))
    mesh = Mesh(landmarks, presence, None, None)
    return with_irises(bgr, mesh) if with_iris else mesh


def with_irises(bgr: np.ndarray, mesh: Mesh) -> Mesh:
    """``mesh`` (``face_mesh`` without its irises) with the irises and eyelid openings found on ``bgr`` from
    its landmarks: ``face_mesh(bgr, det)`` to the bit, for a caller that reads the presence first."""
    ir, open_r = _iris(bgr, mesh.landmarks, RIGHT_EYE_CORNERS, flip=False)
    il, open_l = _iris(bgr, mesh.landmarks, LEFT_EYE_CORNERS, flip=True)
    return Mesh(mesh.landmarks, mesh.presence, ir, il, (open_r, open_l))


def _iris(bgr: np.ndarray, landmarks: np.ndarray, corners: tuple[int, int], *, flip: bool) -> tuple[np.ndarray, float]:
    """(iris points in image px, eyelid opening / eye width). The crop is aligned with the eye
    corners, so in crop coordinates the opening is simply the contour's vertical extent."""
    p0, p1 = landmarks[corners[0], :2], landmarks[corners[1], :2]
    side = float(np.linalg.norm(p1 - p0)) * IRIS_ROI_SCALE
    roi = roi_from_points(p0, p1, (p0 + p1) / 2, side, flip=flip)
    crop = _rgb01(_crop(bgr, roi, IRIS_INPUT))
    contour, iris = _run(IRIS_MODEL, crop)
    lids = contour.reshape(-1, 3)[:EYELID_POINTS, :2]
    width = max(float(np.ptp(lids[:, 0])), 1e-6)
    openness = float(np.ptp(lids[:, 1])) / width
    return roi.to_image(iris.reshape(5, 3), IRIS_INPUT)[:, :2], openness
