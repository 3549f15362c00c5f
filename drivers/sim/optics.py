"""Views of the simulated device: intrinsics and pose per stream, with per-pixel viewing rays.

The left IR imager is the depth reference (depth and IR share intrinsics and geometry). The color
sensor has its own lens (Brown–Conrady distortion) and pose; the figures come from the camera profile
(``profiles.py``; the module-level constants are the default D435's). Per-pixel viewing rays are
computed once per profile here and reused by the renderer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..frame import DistortionModel, Extrinsics, Intrinsics
from .profiles import D435, CameraProfile

# The default profile's figures under their historical names (tests and align benchmarks use them);
# per-profile geometry lives in ``profiles.py`` and ``views_for()`` below.
DEPTH_INTRINSICS = D435.depth_intrinsics
COLOR_INTRINSICS = D435.color_intrinsics
STEREO_BASELINE_M = D435.stereo_baseline_m      # left to right imager
PROJECTOR_OFFSET_M = D435.projector_offset_m    # left imager to projector, along +x
DEPTH_SCALE = D435.depth_scale                  # metres per Z16 unit
DEPTH_MIN_M, DEPTH_MAX_M = D435.depth_range_m
# Subpixel disparity noise of the stereo matcher (pixels): sets sigma_z = z^2 * SIGMA_DISPARITY_PX / (f * B).
SIGMA_DISPARITY_PX = D435.sigma_disparity_px
DEPTH_TO_COLOR = D435.depth_to_color


def distort_brown_conrady(xn: np.ndarray, yn: np.ndarray, coeffs) -> tuple[np.ndarray, np.ndarray]:
    k1, k2, p1, p2, k3 = coeffs
    r2 = xn * xn + yn * yn
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = xn * radial + 2 * p1 * xn * yn + p2 * (r2 + 2 * xn * xn)
    yd = yn * radial + 2 * p2 * xn * yn + p1 * (r2 + 2 * yn * yn)
    return xd, yd


@dataclass(frozen=True)
class View:
    """A camera of the rig: intrinsics, pose in the depth frame, and cached unit-z viewing rays."""

    intrinsics: Intrinsics
    depth_to_view: Extrinsics

    @cached_property
    def rays(self) -> np.ndarray:
        """(H, W, 2) float32 normalised image coordinates (x/z, y/z) of each pixel's ray."""
        i = self.intrinsics
        u, v = np.meshgrid(np.arange(i.width, dtype=np.float64), np.arange(i.height, dtype=np.float64))
        xd, yd = (u - i.ppx) / i.fx, (v - i.ppy) / i.fy
        if i.model is DistortionModel.BROWN_CONRADY and any(i.coeffs):
            # Pixels are distorted images of rays: invert the distortion by fixed-point iteration.
            xn, yn = xd.copy(), yd.copy()
            for _ in range(8):
                xe, ye = distort_brown_conrady(xn, yn, i.coeffs)
                xn, yn = xn - (xe - xd), yn - (ye - yd)
            xd, yd = xn, yn
        return np.dstack([xd, yd]).astype(np.float32)

    @cached_property
    def ray_x(self) -> np.ndarray:
        return np.ascontiguousarray(self.rays[..., 0])

    @cached_property
    def ray_y(self) -> np.ndarray:
        return np.ascontiguousarray(self.rays[..., 1])

    @cached_property
    def ray_norm(self) -> np.ndarray:
        return np.sqrt(self.ray_x ** 2 + self.ray_y ** 2 + 1).astype(np.float32)

    def project(self, points_view: np.ndarray) -> np.ndarray:
        """Project (..., 3) points in this view's frame to (..., 2) pixel coordinates (with distortion)."""
        i = self.intrinsics
        xn, yn = points_view[..., 0] / points_view[..., 2], points_view[..., 1] / points_view[..., 2]
        if i.model is DistortionModel.BROWN_CONRADY and any(i.coeffs):
            xn, yn = distort_brown_conrady(xn, yn, i.coeffs)
        return np.stack([xn * i.fx + i.ppx, yn * i.fy + i.ppy], axis=-1)


DEPTH_VIEW = View(DEPTH_INTRINSICS, Extrinsics.identity())
COLOR_VIEW = View(COLOR_INTRINSICS, DEPTH_TO_COLOR)
_VIEWS: dict[str, tuple[View, View]] = {D435.name: (DEPTH_VIEW, COLOR_VIEW)}


def views_for(profile: CameraProfile) -> tuple[View, View]:
    """(depth view, colour view) of a profile; built once per process (rays are cached on them)."""
    hit = _VIEWS.get(profile.name)
    if hit is None:
        hit = _VIEWS[profile.name] = (View(profile.depth_intrinsics, Extrinsics.identity()),
                                      View(profile.color_intrinsics, profile.depth_to_color))
    return hit


def color_view_for(profile: CameraProfile, intrinsics: Intrinsics) -> View:
    """The colour view of a profile at a colour mode's intrinsics (the profile's own 640x480 view
    when they are its calibration); built once per process and mode."""
    if intrinsics == profile.color_intrinsics:
        return views_for(profile)[1]
    key = f"{profile.name}:color:{intrinsics.width}x{intrinsics.height}"
    hit = _COLOR_VIEWS.get(key)
    if hit is None or hit.intrinsics != intrinsics:
        hit = _COLOR_VIEWS[key] = View(intrinsics, profile.depth_to_color)
    return hit


_COLOR_VIEWS: dict[str, View] = {}
