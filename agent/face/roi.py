"""Rotated square crops: image <-> model-input coordinates, as 2x3 affine matrices."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Roi:
    """A square region of the image: centre, side (px), rotation (radians, counter-clockwise)."""

    cx: float
    cy: float
    size: float
    angle: float = 0.0
    flip: bool = False                # mirror horizontally inside the crop (MediaPipe's right eye)

    def crop_to_image(self, out: int) -> np.ndarray:
        """Affine A (2x3): image_xy = A @ [crop_x, crop_y, 1] for a crop of ``out`` x ``out`` px."""
        s = self.size / out
        c, si = np.cos(self.angle), np.sin(self.angle)
        fx = -1.0 if self.flip else 1.0
        # crop pixel -> centred, scaled, optionally mirrored -> rotated -> image
        lin = np.array([[c * s * fx, -si * s], [si * s * fx, c * s]])
        centre = np.array([(out - 1) / 2.0, (out - 1) / 2.0])
        t = np.array([self.cx, self.cy]) - lin @ centre
        return np.hstack([lin, t[:, None]])

    def extract(self, image: np.ndarray, out: int, dst: np.ndarray | None = None) -> np.ndarray:
        """The ``out`` x ``out`` crop (written into ``dst`` when it is an array of the crop's shape
        and dtype: every pixel is written, the border's too)."""
        a = self.crop_to_image(out)
        return cv2.warpAffine(image, a, (out, out), dst=dst, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def to_image(self, pts: np.ndarray, out: int) -> np.ndarray:
        """Map (N, 2+) crop coordinates to image coordinates (extra columns scaled by the crop scale)."""
        a = self.crop_to_image(out)
        xy = pts[:, :2] @ a[:, :2].T + a[:, 2]
        if pts.shape[1] > 2:
            return np.hstack([xy, pts[:, 2:] * (self.size / out)])
        return xy


def roi_from_points(p0: np.ndarray, p1: np.ndarray, centre: np.ndarray, side: float, *, flip: bool = False) -> Roi:
    """A square ROI of ``side`` px around ``centre``, rotated so that p0 -> p1 is horizontal."""
    angle = float(np.arctan2(p1[1] - p0[1], p1[0] - p0[0]))
    return Roi(float(centre[0]), float(centre[1]), float(side), angle, flip)
