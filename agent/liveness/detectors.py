"""Detectors: each turns physical cues into evidence of a live face, 0 (attack-like) .. 1 (live-like).

Thresholds are named constants with the physics they encode; ramps (not steps) keep the fused
score informative near a boundary. Which attack each detector answers:

| detector | answers |
|---|---|
| depth_geometry | prints (flat, curved, with holes), screens: no nose relief, plane or cylinder fits |
| cross_modal | screens, video replays: no depth or IR face where RGB shows one; face not life-size |
| material | masks, head models: resin and plaster keep projected dots sharp (no subsurface scattering) |
| motion | head models and still images on a stand: a living face never holds perfectly still |
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agent.liveness.features import MAX_CLIPPED_SHARE, FrameCues, ProjectorLight, motion_cues


def ramp(x: float, lo: float, hi: float) -> float:
    """0 at or below ``lo``, 1 at or above ``hi`` (reversed if lo > hi); NaN counts as no evidence (0)."""
    if x is None or not np.isfinite(x):
        return 0.0
    t = (x - lo) / (hi - lo)
    return float(np.clip(t, 0.0, 1.0))


# Depth geometry: adult nose tips stand 15–30 mm out of the cheek plane; sensor noise on a flat
# sheet gives a few mm at most.
NOSE_FLAT_MM, NOSE_FACE_MM = 7.0, 15.0
CYLINDER_FLAT_MM, CYLINDER_FACE_MM = 1.5, 3.0
# Cross-modal: depth on most of the face, and a face brighter in IR than its surroundings.
DEPTH_SHARE_MIN, DEPTH_SHARE_OK = 0.5, 0.8
IR_CONTRAST_MIN, IR_CONTRAST_OK = 0.08, 0.25     # face IR relative to the frame's bright end
SCALE_LOW = (0.6, 0.72)         # eyes measured much nearer than a life-size face would be
SCALE_HIGH = (1.6, 1.35)
# Material: speckle contrast of the projected dots on skin vs hard surfaces.
# Tuned with margin toward skin: a live face with sharper dots than our skin model still passes.
# Without a challenge the measure is the dots' sharpness: fine-band (sigma 0.7-2 px) over
# coarse-band (2-5 px) energy on the skin. It does not depend on the light level, only on how
# much the surface spreads each dot; ambient texture lowers it a little (toward skin).
DOT_SHARPNESS_SKIN, DOT_SHARPNESS_HARD = 0.97, 1.10
# Under a challenge: speckle contrast of the projector-only (on minus off) image, in the IR
# imager's own pixels with shot noise and the skin's own NIR texture removed; on its own, because
# it holds still across light (40-2500 lux, 3000-6500 K in the simulator: skin 0.17-0.24, resin
# masks 0.24-0.33, plaster heads 0.27-0.36), while dot sharpness swings with ambient NIR and
# overlaps (live 0.64-1.18 vs masks 0.92-1.47). Skin and resin touch at the edges: the ramp
# stays soft and pad-eval's calibration fits the fused threshold above every attack it saw.
PROJECTOR_SPECKLE_SKIN, PROJECTOR_SPECKLE_HARD = 0.235, 0.250
# Beside it, a veto on dot sharpness placed above every live face seen (<= 1.18 across light):
# (hard, skin) ends of its ramp.
CHALLENGE_DOT_SHARPNESS_VETO = (1.30, 1.20)
# Motion: median landmark displacement per IPD over the window.
MOTION_STATIC, MOTION_ALIVE = 0.003, 0.006


@dataclass(frozen=True)
class DetectorScores:
    depth_geometry: float
    cross_modal: float
    material: float | None          # None: not measurable (no IR stream, projector off or drowned)
    motion: float
    cues: dict[str, float]
    notes: tuple[str, ...] = ()
    material_drowned: bool = False  # IR and projector present, but sunlight swamped the dots

    def as_dict(self) -> dict[str, float]:
        out = {"depth_geometry": self.depth_geometry, "cross_modal": self.cross_modal, "motion": self.motion}
        if self.material is not None:
            out["material"] = self.material
        return out


def _median(cues: list[FrameCues], name: str) -> float:
    vals = np.array([getattr(c, name) for c in cues], dtype=np.float64)
    return float(np.nanmedian(vals)) if np.isfinite(vals).any() else float("nan")


def score(cues: list[FrameCues], *, projector_on: list[bool] | None = None, projector_seen: bool = True,
          projector: ProjectorLight | None = None,
          motion: dict[str, float] | None = None) -> DetectorScores:
    """Scores over a window of frames. Material and depth cues use projector-on frames only.

    Without an IR stream, or when the projector was off (reported by the device), the material
    detector cannot measure anything: it is left out and the verdict says so — it never turns a
    missing measurement into evidence either way."""
    lit = cues if projector_on is None else [c for c, on in zip(cues, projector_on, strict=True) if on]
    lit = lit or cues
    m = {k: _median(lit, k) for k in ("plane_rms_mm", "cylinder_rms_mm", "nose_prominence_mm", "scale_ratio",
                                       "depth_share", "ir_face_level", "ir_face_contrast", "speckle_contrast",
                                       "dot_sharpness", "eye_recess_mm", "eye_dot_sharpness")}
    m.update(motion if motion is not None else motion_cues(cues))
    geometry = min(ramp(m["nose_prominence_mm"], NOSE_FLAT_MM, NOSE_FACE_MM),
                   ramp(m["cylinder_rms_mm"], CYLINDER_FLAT_MM, CYLINDER_FACE_MM))
    scale = m["scale_ratio"]
    cross = min(ramp(m["depth_share"], DEPTH_SHARE_MIN, DEPTH_SHARE_OK),
                ramp(m["ir_face_contrast"], IR_CONTRAST_MIN, IR_CONTRAST_OK),
                ramp(scale, *SCALE_LOW), ramp(scale, *SCALE_HIGH))
    notes = []
    drowned = False
    has_ir = np.isfinite(m["speckle_contrast"])
    if not has_ir:
        material = None
        notes.append("no IR stream: the material detector did not run, masks are only checked by motion")
        cross = min(ramp(m["depth_share"], DEPTH_SHARE_MIN, DEPTH_SHARE_OK), ramp(scale, *SCALE_LOW),
                    ramp(scale, *SCALE_HIGH))
    elif not projector_seen:
        material = None
        notes.append("projector off: no projected dots, the material detector did not run")
    elif projector is not None and np.isfinite(projector.speckle):
        # The on-off difference holds only the projector's light: the cleanest material measure.
        m["projector_speckle"] = projector.speckle
        if np.isfinite(projector.snr):
            m["projector_snr"] = projector.snr
        # Dot sharpness vetoes what is clearly hard: skin and resin touch in speckle contrast in some
        # scenes where the resin's dots are still plainly sharper than any skin's.
        material = min(ramp(projector.speckle, PROJECTOR_SPECKLE_HARD, PROJECTOR_SPECKLE_SKIN),
                       ramp(m["dot_sharpness"], *CHALLENGE_DOT_SHARPNESS_VETO))
    elif projector is not None and np.isfinite(projector.share):
        # Under a challenge, but the projector's light on the skin could not be measured.
        material, drowned = None, True
        m["projector_share"] = projector.share
        if projector.clipped > MAX_CLIPPED_SHARE:
            m["projector_clipped"] = projector.clipped
            notes.append(f"the projector's dots saturate the IR image on the face ({projector.clipped:.0%} of "
                         "the skin clipped): material not measurable, the verdict cannot be live")
        else:
            seen = f"it lights {projector.share:.0%} of the skin"
            if np.isfinite(projector.snr):
                m["projector_snr"] = projector.snr
                seen += f", {projector.snr:.1f} noise deviations"
            notes.append(f"ambient NIR drowns the projector ({seen}): "
                         "material not measurable, the verdict cannot be live")
    else:
        material = ramp(m["dot_sharpness"], DOT_SHARPNESS_HARD, DOT_SHARPNESS_SKIN)
    motion_score = ramp(m["motion"], MOTION_STATIC, MOTION_ALIVE)
    return DetectorScores(geometry, cross, material, motion_score, m, tuple(notes), drowned)
