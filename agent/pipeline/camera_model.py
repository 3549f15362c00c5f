"""Projection and deprojection with lens distortion, vectorised, with librealsense's conventions.

``BROWN_CONRADY`` and ``MODIFIED_BROWN_CONRADY`` distort when projecting (a point's ideal image
position is pushed through the polynomial), so deprojecting them needs an iterative inverse.
``INVERSE_BROWN_CONRADY`` is the opposite: its coefficients undistort, so deprojection is direct and
projection iterates. ``KANNALA_BRANDT4`` is the fisheye model on the angle from the axis.
Pure functions: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np

from drivers.frame import DistortionModel, Intrinsics

_ITERATIONS = 10


def _poly(x, y, c, *, tangential_on_scaled: bool):
    k1, k2, p1, p2, k3 = c
    r2 = x * x + y * y
    f = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xf, yf = x * f, y * f
    tx, ty = (xf, yf) if tangential_on_scaled else (x, y)
    return (xf + 2 * p1 * tx * ty + p2 * (r2 + 2 * tx * tx),
            yf + 2 * p2 * tx * ty + p1 * (r2 + 2 * ty * ty))


def _invert_poly(xd, yd, c, *, tangential_on_scaled: bool):
    """Solve poly(x, y) = (xd, yd) by fixed-point iteration (the distortions here are mild)."""
    x, y = xd.copy(), yd.copy()
    for _ in range(_ITERATIONS):
        ex, ey = _poly(x, y, c, tangential_on_scaled=tangential_on_scaled)
        x, y = x - (ex - xd), y - (ey - yd)
    return x, y


def _kb4(theta, c):
    k1, k2, k3, k4, _ = c
    t2 = theta * theta
    return theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))


def distort_normalized(x: np.ndarray, y: np.ndarray, intr: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Ideal normalised coordinates (X/Z, Y/Z) to the normalised coordinates of the pixel hit."""
    m, c = intr.model, intr.coeffs
    if m is DistortionModel.NONE or not any(c):
        return x, y
    if m is DistortionModel.BROWN_CONRADY:
        return _poly(x, y, c, tangential_on_scaled=False)
    if m is DistortionModel.MODIFIED_BROWN_CONRADY:
        return _poly(x, y, c, tangential_on_scaled=True)
    if m is DistortionModel.INVERSE_BROWN_CONRADY:
        return _invert_poly(x, y, c, tangential_on_scaled=False)
    if m is DistortionModel.KANNALA_BRANDT4:
        r = np.sqrt(x * x + y * y)
        rd = _kb4(np.arctan(r), c)
        s = np.where(r > 1e-12, rd / np.maximum(r, 1e-12), 1.0)
        return x * s, y * s
    raise ValueError(f"unsupported distortion model {m}")


def undistort_normalized(xd: np.ndarray, yd: np.ndarray, intr: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`distort_normalized`: a pixel's normalised coordinates to its ray (X/Z, Y/Z)."""
    m, c = intr.model, intr.coeffs
    if m is DistortionModel.NONE or not any(c):
        return xd, yd
    if m is DistortionModel.BROWN_CONRADY:
        return _invert_poly(xd, yd, c, tangential_on_scaled=False)
    if m is DistortionModel.MODIFIED_BROWN_CONRADY:
        return _invert_poly(xd, yd, c, tangential_on_scaled=True)
    if m is DistortionModel.INVERSE_BROWN_CONRADY:
        return _poly(xd, yd, c, tangential_on_scaled=False)
    if m is DistortionModel.KANNALA_BRANDT4:
        rd = np.sqrt(xd * xd + yd * yd)
        theta = rd.copy()
        for _ in range(_ITERATIONS):
            k1, k2, k3, k4, _ = c
            t2 = theta * theta
            f = _kb4(theta, c) - rd
            df = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + 9 * k4 * t2)))
            theta = theta - f / df
        s = np.where(rd > 1e-12, np.tan(theta) / np.maximum(rd, 1e-12), 1.0)
        return xd * s, yd * s
    raise ValueError(f"unsupported distortion model {m}")


def project(points: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """(..., 3) points in the camera frame to (..., 2) pixel coordinates."""
    z = points[..., 2]
    x, y = distort_normalized(points[..., 0] / z, points[..., 1] / z, intr)
    return np.stack([x * intr.fx + intr.ppx, y * intr.fy + intr.ppy], axis=-1)


def pixel_rays(intr: Intrinsics, u: np.ndarray | None = None,
               v: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Normalised ray coordinates (X/Z, Y/Z) of pixels (default: every pixel centre of the image)."""
    if u is None or v is None:
        u, v = np.meshgrid(np.arange(intr.width, dtype=np.float64), np.arange(intr.height, dtype=np.float64))
    return undistort_normalized((u - intr.ppx) / intr.fx, (v - intr.ppy) / intr.fy, intr)


def deproject(u: np.ndarray, v: np.ndarray, z: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Pixels with depth (metres along the optical axis) to (..., 3) points in the camera frame."""
    x, y = pixel_rays(intr, u, v)
    return np.stack([x * z, y * z, z], axis=-1)
