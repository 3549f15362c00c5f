"""Measurements of one face in one aligned frameset: pure functions over pixels and landmarks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from agent.pipeline import inplace
from agent.pipeline.align import scratch
from agent.pipeline.camera_model import distort_normalized
from drivers.frame import DistortionModel, Intrinsics

if TYPE_CHECKING:
    from agent.quality.settings import QualityThresholds

# Mesh landmark sets.
RIGHT_EYE = (33, 133, 159, 145, 158, 153)     # outer, inner, upper1, lower1, upper2, lower2
LEFT_EYE = (263, 362, 386, 374, 385, 380)
MOUTH = (61, 291, 13, 14, 0, 17)              # corners, inner upper/lower, outer upper/lower
CORE_POINTS = (33, 133, 159, 145, 263, 362, 386, 374, 1, 4, 5, 195, 197, 2, 13, 14, 61, 291, 0, 17)
SKIN_POINTS = (50, 280, 205, 425, 123, 352, 151, 9, 108, 337)     # cheeks and forehead
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


def eye_aspect_ratio(lm: np.ndarray, eye: tuple[int, ...]) -> float:
    p = lm[:, :2]
    o, i, u1, l1, u2, l2 = (p[k] for k in eye)
    width = float(np.linalg.norm(o - i))
    return float((np.linalg.norm(u1 - l1) + np.linalg.norm(u2 - l2)) / (2 * max(width, 1e-6)))


def mouth_open_ratio(lm: np.ndarray) -> float:
    p = lm[:, :2]
    width = float(np.linalg.norm(p[MOUTH[0]] - p[MOUTH[1]]))
    return float(np.linalg.norm(p[MOUTH[2]] - p[MOUTH[3]]) / max(width, 1e-6))


def smile_index(lm: np.ndarray, roll_deg: float, ipd: float) -> float:
    """How far the mouth corners sit above the lip centre, in the face's upright frame, per IPD."""
    p = lm[:, :2]
    a = np.deg2rad(-roll_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = (p[[MOUTH[0], MOUTH[1]]] @ rot.T)[:, 1].mean()
    centre = (p[[MOUTH[2], MOUTH[3]]] @ rot.T)[:, 1].mean()
    return float((centre - corners) / max(ipd, 1e-6))


def polygon_mask(shape: tuple[int, int], pts: np.ndarray, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The filled polygon through image points ``pts`` on a ``shape`` array whose pixel (0, 0) is
    image pixel ``origin`` (x, y). The points are rounded in image coordinates before the shift, so
    a region's mask is exactly the same pixels as the whole image's."""
    m = np.zeros(shape, np.uint8)
    if m.size:
        cv2.fillPoly(m, [np.round(pts).astype(np.int32) - np.array(origin, np.int32)], 1)
    return m.astype(bool)


def discs_mask(shape: tuple[int, int], pts: np.ndarray, radius: float,
               origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Filled discs of ``radius`` around image points ``pts``; ``origin`` as for ``polygon_mask``."""
    m = np.zeros(shape, np.uint8)
    r = max(1, int(round(radius)))
    ox, oy = origin
    for x, y in np.round(pts).astype(int) if m.size else ():
        cv2.circle(m, (int(x) - ox, int(y) - oy), r, 1, -1)
    return m.astype(bool)


@dataclass(frozen=True)
class Region:
    """A rectangle of the image, x0 <= x < x1 and y0 <= y < y1, inside it: where the face's
    measurements look, so that masks, conversions and searches cost the face's size, not the
    frame's (a 1280x720 frame is 11x a face at 0.5 m)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def around(cls, pts: np.ndarray, pad: float, image_shape: tuple[int, ...]) -> Region:
        """The rounded points' bounding box grown by ``pad`` px and clipped to the image (possibly
        empty when every point lies outside it)."""
        h, w = image_shape[:2]
        p = np.round(np.asarray(pts, np.float64)[:, :2])
        lo, hi = np.floor(p.min(axis=0) - pad), np.ceil(p.max(axis=0) + pad) + 1
        x0, y0 = int(min(max(lo[0], 0), w)), int(min(max(lo[1], 0), h))
        x1, y1 = int(min(max(hi[0], x0), w)), int(min(max(hi[1], y0), h))
        return cls(x0, y0, x1, y1)

    @property
    def origin(self) -> tuple[int, int]:
        return self.x0, self.y0

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0

    def of(self, image: np.ndarray) -> np.ndarray:
        """This region of ``image`` (a view)."""
        return image[self.y0:self.y1, self.x0:self.x1]


CLIPPED_GRAY = 250             # an 8-bit colour level at or above this has lost the face's detail


@dataclass(frozen=True)
class FaceExposure:
    share: float          # face-oval pixels with gray level inside the band
    mean: float           # mean gray of the face oval
    clipped: float        # face-oval pixels at full scale
    picture: float        # mean gray of the picture's centre half (what a camera meters by default)


def gray(bgr: np.ndarray) -> np.ndarray:
    """8-bit gray of a BGR image or of a view into one (a region, a strided grid). A view is first
    copied into the thread's temporary (``align.scratch``), not a new array."""
    if not bgr.flags.c_contiguous:
        src = scratch("quality.gray.src", bgr.shape, bgr.dtype)
        np.copyto(src, bgr)
        bgr = src
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def face_exposure(bgr: np.ndarray, lm: np.ndarray, low: float, high: float) -> FaceExposure:
    """The face's exposure as the image shows it, and the picture's around it. Gray levels are
    converted only where they are read: the face oval's box and every 4th pixel of the centre half."""
    pts = lm[list(FACE_OVAL), :2]
    box = Region.around(pts, 1, bgr.shape)
    vals = gray(box.of(bgr))[polygon_mask(box.shape, pts, box.origin)]
    h, w = bgr.shape[:2]
    picture = float(gray(bgr[h // 4: 3 * h // 4: 4, w // 4: 3 * w // 4: 4]).mean())
    if vals.size == 0:
        return FaceExposure(0.0, 0.0, 0.0, picture)
    return FaceExposure(float(((vals >= low) & (vals <= high)).mean()), float(vals.mean()),
                        float((vals >= CLIPPED_GRAY).mean()), picture)


def exposure_prompt(e: FaceExposure, t: QualityThresholds, face_metered: bool) -> str:
    """What to ask for when the face's exposure fails, judged from the image.

    With the camera's auto-exposure metering the face (``agent.quality.metering``), a face that stays
    out of band is one the camera has no exposure or gain left for: too little light
    (``FACE_TOO_DARK``) or too much (``FACE_TOO_BRIGHT``); a transient while it converges lasts a
    frame or two, under the prompt selector's persistence. Metering the picture instead, an auto-
    exposure with headroom brings the picture to its target: a dark face in a dark picture means it
    ran out of exposure (``FACE_TOO_DARK``), a bright or clipped one in a bright picture that it
    cannot shorten it (``FACE_TOO_BRIGHT``); a face out of band in a well-exposed picture is lit
    unlike its surroundings (a window behind, a lamp to one side), and ``POOR_EXPOSURE`` asks the
    person to change position."""
    dark = e.mean < t.gray_low
    bright = e.mean > t.gray_high or e.clipped > t.face_clipped_max
    if face_metered:
        return "FACE_TOO_DARK" if dark else "FACE_TOO_BRIGHT" if bright else "POOR_EXPOSURE"
    if dark and e.picture < t.dark_picture_gray:
        return "FACE_TOO_DARK"
    if bright and e.picture > t.bright_picture_gray:
        return "FACE_TOO_BRIGHT"
    return "POOR_EXPOSURE"


def sharpness(bgr: np.ndarray, centre: np.ndarray, ipd: float) -> float:
    """Laplacian variance of the face scaled to a fixed 60 px IPD, so size does not count as detail."""
    half = 1.3 * ipd
    x0, y0 = int(max(centre[0] - half, 0)), int(max(centre[1] - half, 0))
    x1, y1 = int(min(centre[0] + half, bgr.shape[1])), int(min(centre[1] + half, bgr.shape[0]))
    region = bgr[y0:y1, x0:x1]
    if region.shape[0] * region.shape[1] < 16:
        return 0.0
    crop = gray(region)
    s = 60.0 / max(ipd, 1e-6)
    crop = cv2.resize(crop, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    # The crop as float32, its Laplacian and the variance's deviations in the thread's temporaries
    # (``align.scratch``), as ``Laplacian(crop.astype(np.float32), CV_32F).var()`` computes them.
    as_float = scratch("quality.sharpness.crop", crop.shape, np.float32)
    np.copyto(as_float, crop, casting="unsafe")
    lap = cv2.Laplacian(as_float, cv2.CV_32F, dst=scratch("quality.sharpness.laplacian", crop.shape, np.float32))
    return float(inplace.var(lap, as_float))


_SRGB_LUT = np.where(np.arange(256) / 255.0 <= 0.04045, np.arange(256) / 255.0 / 12.92,
                     ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4).astype(np.float32)


def skin_linear_level(bgr: np.ndarray, lm: np.ndarray, ipd: float) -> float:
    """Mean linear-light green level (0..1) over cheek and forehead patches."""
    pts = lm[list(SKIN_POINTS), :2]
    box = Region.around(pts, max(1, int(round(0.1 * ipd))) + 1, bgr.shape)
    mask = discs_mask(box.shape, pts, 0.1 * ipd, box.origin)
    return float(_SRGB_LUT[box.of(bgr)[..., 1][mask]].mean()) if mask.any() else 0.0


# The scale the face's detail is judged at (``sharpness`` too): its pupils 60 px apart.
FACE_SCALE_IPD_PX = 60.0


def face_snr(bgr: np.ndarray, lm: np.ndarray, ipd: float) -> float:
    """The face's signal-to-noise ratio in linear light, at the 60 px-IPD scale detail is judged at.

    Over the cheek and forehead discs (``SKIN_POINTS``): the mean linear luminance (Rec. 709
    weights, as ISO 12232 measures a camera's SNR) over the noise's standard deviation. The noise is
    each pixel's residual to its 3x3 neighbourhood mean (what a smooth skin patch leaves is noise;
    skin texture adds to it, so the ratio errs low), from the residuals' median absolute deviation
    (robust to a pore, a hair, an edge), divided by sqrt(8/9), the residual's own gain on white
    noise. A face more than 60 px across the pupils is judged as if scaled down to it: each judged
    pixel averages (IPD / 60)^2 of the camera's, dividing white noise by IPD / 60 (a smaller face is
    not scaled up: its own pixels are all it has). Photon shot noise and read noise amplified by
    gain are what this sees on a dark face: unlike the gray level, which gain raises, it says how
    much the picture of the face holds. Noise the camera's processing has smoothed across pixels
    (demosaicing, noise reduction) reads lower than it is. NaN when too little skin is in the
    frame to measure (a face running off it: other checks say so)."""
    pts = lm[list(SKIN_POINTS), :2]
    r = 0.1 * ipd
    box = Region.around(pts, max(1, int(round(r))) + 1, bgr.shape)
    if box.shape[0] < 3 or box.shape[1] < 3:
        return float("nan")
    px = box.of(bgr)
    # lin = 0.0722 B + 0.7152 G + 0.2126 R in linear light (float32, in this order), and its residual
    # to the 3x3 mean, in the thread's temporaries (``align.scratch``: no face-sized allocation per
    # frameset in the liveness worker).
    linear = cv2.LUT(px, _SRGB_LUT, dst=scratch("quality.face_snr.linear", (*box.shape, 3), np.float32))
    lin = scratch("quality.face_snr.lin", box.shape, np.float32)
    part = scratch("quality.face_snr.part", box.shape, np.float32)
    np.multiply(np.float32(0.0722), linear[..., 0], out=lin)
    for ch, w in ((1, 0.7152), (2, 0.2126)):
        np.multiply(np.float32(w), linear[..., ch], out=part)
        np.add(lin, part, out=lin)
    resid = cv2.blur(lin, (3, 3), dst=scratch("quality.face_snr.resid", box.shape, np.float32),
                     borderType=cv2.BORDER_REFLECT)
    np.subtract(lin, resid, out=resid)
    # Only pixels whose whole 3x3 neighbourhood lies on skin.
    inner = cv2.erode(discs_mask(box.shape, pts, r, box.origin).astype(np.uint8), np.ones((3, 3), np.uint8),
                      borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    if inner.sum() < 16:
        return float("nan")
    res = resid[inner]
    sigma = 1.4826 * float(np.median(np.abs(res - np.median(res)))) / np.sqrt(8 / 9)
    signal = float(lin[inner].mean())
    # An 8-bit level's own quantisation noise (1/sqrt(12) of a step, a gray level's) bounds the ratio
    # of a flat patch.
    level = min(int(np.searchsorted(_SRGB_LUT, signal)), 254)
    q = float(_SRGB_LUT[level + 1] - _SRGB_LUT[level]) / np.sqrt(12)
    return signal / max(float(np.hypot(sigma, q)), 1e-9) * max(ipd / FACE_SCALE_IPD_PX, 1.0)


def estimate_lux(level: float, exposure_us: float | None, gain: float | None, k: float) -> float | None:
    """Illuminance from the sensor's response: lux = k * level / (exposure x gain).

    ``k`` is the device's calibration constant (measured once per camera model against a lux meter,
    with a mid-reflectance skin reference). Without exposure metadata there is no estimate."""
    if not exposure_us or not gain or level <= 0:
        return None
    return k * level / (exposure_us * 1e-6 * gain)


def lens_distortion(intr: Intrinsics, bbox: tuple[float, float, float, float]) -> float:
    """Largest displacement lens distortion causes at the face box corners, relative to face size."""
    if intr.model is DistortionModel.NONE or not any(intr.coeffs):
        return 0.0
    x0, y0, x1, y1 = bbox
    u = np.array([x0, x1, x0, x1, (x0 + x1) / 2])
    v = np.array([y0, y0, y1, y1, (y0 + y1) / 2])
    xn, yn = (u - intr.ppx) / intr.fx, (v - intr.ppy) / intr.fy
    if intr.model in (DistortionModel.BROWN_CONRADY, DistortionModel.MODIFIED_BROWN_CONRADY,
                      DistortionModel.KANNALA_BRANDT4):
        xd, yd = distort_normalized(xn, yn, intr)
        shift = np.hypot((xd - xn) * intr.fx, (yd - yn) * intr.fy)
    else:
        return 0.0   # inverse models describe rectified streams
    return float(shift.max() / max(x1 - x0, y1 - y0, 1e-6))
