"""Visible light in the IR image of a camera whose stereo imagers have no IR-pass filter (``ir_leak=1``).

A silicon imager with no filter in front of it ("all pass", librealsense #1999 on the D435's stereo
imagers; realsense-ros #2703: the D435i "is not equipped with an infrared-blocking filter ... It can
see all light frequencies in the visible to near-infrared range") collects visible light as well as
the 850 nm band. The D435f/D455f add a 750 nm long-pass film (CLAREX NIR-75N, librealsense #10560)
precisely to remove it; the Gemini 336/336L add an IR-pass cover to the 335/335L. The simulator's IR
image (``sensor.ir_signal``) is the 850 nm part alone; this module adds what such a filter removes.

Units. The IR light is on the scale of the ambient NIR share (``scene.LIGHT_NIR_SHARE``): a light of
1 lux contributes ``share = k * B(850 nm) / L_v`` per unit of 850 nm reflectance, ``k`` set so that a
2856 K black body gives 0.40. Read as the imager's response, that is ``QE(850) * B(850) * W`` with
``W = integral over 750-1100 nm of QE(l)/QE(850) * l/850 dl`` (a spectrum flat around 850 nm; photons,
hence l/850): the NIR band the unit stands for, 218 nm for the curve below. The visible part of the
same light (380-750 nm, what a 750 nm long-pass removes) then adds, per lux and per unit of visible
reflectance in band c (blue 380-490, green 490-580, red 580-750 nm),

    kappa_c(T) = k * integral_c QE(l)/QE(850) * l/850 * B(l, T) dl / (W * L_v(T))

for a black body at the light's colour temperature T (an approximation for LEDs and fluorescent
tubes in the visible). The colour model's irradiance in channel c is ``lux * illuminant_bgr(T)_c *
albedo_c * shading``, so the IR imager adds ``sum_c irr_c * kappa_c(T) / illuminant_bgr(T)_c``
(``band_gains``). Everything the colour model lights (a display's own light included) then reaches
the IR image through the same gains: a uniform visible patch of channel irradiance ``E_c`` adds
``sum_c gains_c * E_c``.

The relative QE curve is a RECALLED, typical front-illuminated monochrome global-shutter CMOS's
(peak ~2x its 850 nm QE around 550-600 nm, falling to ~0.2x at 1000 nm): OmniVision's OV9282 curve
(the D435's stereo imagers) is not published (librealsense #6094: under NDA), nor the Gemini 335's.
Imagers that are colour sensors read as Y8 (the D415's and D455's stereo pair: librealsense #1999
"the d415 has Bayer pattern filters", #7260 "the D455 is actually a color sensor") see each visible
band only through the pixels of its own dye in a 2x2 RGGB cell, so their visible response is the
monochrome one times (0.25, 0.5, 0.25) for (B, G, R), while all four dyes pass 850 nm (recalled,
typical of Bayer dyes; cross-band leakage ignored). The profile's ``visible_response`` carries
those factors (None: the imagers are filtered, or whether they are is not known here).
"""

from __future__ import annotations

import functools

import numpy as np

from .profiles import CameraProfile
from .sensor import illuminant_bgr

# Relative QE (QE / QE at 850 nm) of a front-illuminated monochrome global-shutter CMOS imager, by
# wavelength (nm): a recalled, typical curve, not a datasheet's (module docstring).
QE_CURVE_NM = (380, 400, 450, 500, 550, 600, 650, 700, 750, 800, 850, 900, 950, 1000, 1050, 1100)
QE_CURVE_REL = (0.5, 0.9, 1.6, 1.9, 2.0, 1.95, 1.8, 1.6, 1.4, 1.2, 1.0, 0.75, 0.45, 0.2, 0.05, 0.0)
# The visible bands of the colour model's B, G, R channels (nm) and the long-pass filter's edge.
BANDS_NM = ((380.0, 490.0), (490.0, 580.0), (580.0, 750.0))
IR_PASS_EDGE_NM = 750.0
REFERENCE_K = 2856.0            # the NIR share's anchor: a 2856 K black body gives 0.40 per lux
REFERENCE_SHARE = 0.40
MONO = (1.0, 1.0, 1.0)
BAYER = (0.25, 0.5, 0.25)       # B, G, R: each band through its own dye's pixels of an RGGB cell

_LAMBDA = np.arange(380.0, 1101.0, 1.0)


def _planck(lam_nm: np.ndarray, t_k: float) -> np.ndarray:
    lam = lam_nm * 1e-9
    return 1.0 / (lam ** 5 * np.expm1(1.4388e-2 / (lam * t_k)))


def _luminance(t_k: float) -> float:
    # CIE photopic V(lambda) as a Gaussian in micrometres (a common fit: 1.019 exp(-285.4 (l - 0.559)^2)).
    v = 1.019 * np.exp(-285.4 * (_LAMBDA / 1000.0 - 0.559) ** 2)
    return float(683.0 * np.sum(v * _planck(_LAMBDA, t_k)))


def nir_band_nm() -> float:
    """W: the width (nm) of the 850 nm band the IR light's unit stands for (module docstring)."""
    qe = np.interp(_LAMBDA, QE_CURVE_NM, QE_CURVE_REL)
    nir = _LAMBDA >= IR_PASS_EDGE_NM
    return float(np.sum(qe[nir] * _LAMBDA[nir] / 850.0))


def _k() -> float:
    return REFERENCE_SHARE * _luminance(REFERENCE_K) / float(_planck(np.array([850.0]), REFERENCE_K)[0])


@functools.lru_cache(maxsize=64)
def band_kappa(cct: float, response: tuple[float, float, float] = MONO) -> tuple[float, float, float]:
    """kappa_c (B, G, R): the IR light a black body at ``cct`` adds per lux and per unit of visible
    reflectance in each band, on the NIR share's scale (module docstring)."""
    qe = np.interp(_LAMBDA, QE_CURVE_NM, QE_CURVE_REL)
    spectral = qe * _LAMBDA / 850.0 * _planck(_LAMBDA, cct)
    scale = _k() / (nir_band_nm() * _luminance(cct))
    out = []
    for (lo, hi), r in zip(BANDS_NM, response, strict=True):
        band = (_LAMBDA >= lo) & (_LAMBDA < hi)
        out.append(float(r * scale * np.sum(spectral[band])))
    return out[0], out[1], out[2]


def band_gains(profile: CameraProfile, cct: float) -> np.ndarray:
    """Per channel (B, G, R) of the colour model's irradiance, the IR light it adds on ``profile``'s
    imagers: ``kappa_c / illuminant_bgr(cct)_c``. ``ValueError`` for a profile whose imagers are
    filtered (``visible_response`` None)."""
    if profile.visible_response is None:
        raise ValueError(f"{profile.name}: its IR imagers see no visible light to add (IR-pass filter, or unknown)")
    kappa = np.array(band_kappa(float(cct), tuple(profile.visible_response)), np.float64)
    return (kappa / illuminant_bgr(cct).astype(np.float64)).astype(np.float32)


def visible_in_ir(irr_bgr: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """The IR light (H, W) that visible irradiance ``irr_bgr`` (H, W, 3, the colour model's, seen
    from the IR imager) adds through ``gains`` (``band_gains``)."""
    out = np.multiply(irr_bgr[..., 0], gains[0], dtype=np.float32)
    out += np.multiply(irr_bgr[..., 1], gains[1], dtype=np.float32)
    out += np.multiply(irr_bgr[..., 2], gains[2], dtype=np.float32)
    return out
