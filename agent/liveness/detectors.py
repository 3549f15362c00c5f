"""Detectors: each turns physical cues into evidence of a live face, 0 (attack-like) .. 1 (live-like).

Every threshold is a :class:`Ramp` between an attack-like and a live-like value of one cue (ramps,
not steps, keep the fused score informative near a boundary). The values are fitted on the
simulator's *training* family (``pad-eval --split train --write-calibration`` stores them in
``calibration.json``; ``fit_ramps`` is the rule) and reported on the held-out family. The defaults
below are what the fit gave, and apply when the file has none. Which attack each detector answers:

| detector | answers |
|---|---|
| depth_geometry | prints (flat, curved, with holes), paper masks: no nose relief, plane or cylinder fits |
| cross_modal | screens, video replays: no depth or IR face where RGB shows one; face not life-size |
| material | masks, head models: resin and plaster keep projected dots sharp (no subsurface scattering) |
| motion | head models on a stand: a face drifts beyond its landmarks' jitter, or moves within (lids, lips) |
| eye_region | printed eye bands, spectacles with printed eyes: a surface in front of the eyes |
| life_signs | rigid masks and head models (painted eyes): no blink in the window and dots sharper than skin's |

Under a challenge every reading of the dots comes from the projector's on-off pairs
(``features.ProjectorMeasure``), never from the lit frames alone: an attacker's steady NIR light
is in the lit frames and cancels in the difference. Skin needs both the speckle contrast and the
dots' sharpness of the difference (their shape, which light without the dots cannot move) to say
so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from agent.liveness.fusion import load_calibration
from agent.liveness.power import MAX_CLIPPED_SHARE, MIN_PROJECTOR_SHARE, MIN_PROJECTOR_SNR
from agent.pipeline import inplace

if TYPE_CHECKING:
    # Not at run time: ``features`` imports OpenCV, and the daemon imports this module for the ramps
    # and ``material_light`` (its NOT_LIVE prompt) without the face work (issue 20, growth28).
    from agent.liveness.features import FrameCues, ProjectorMeasure


def ramp(x: float, lo: float, hi: float) -> float:
    """0 at or below ``lo``, 1 at or above ``hi`` (reversed if lo > hi); NaN counts as no evidence (0)."""
    if x is None or not np.isfinite(x):
        return 0.0
    t = (x - lo) / (hi - lo)
    return float(np.clip(t, 0.0, 1.0))


@dataclass(frozen=True)
class Ramp:
    """Evidence of life from one cue: 0 at ``attack`` (or beyond it), 1 at ``live`` (or beyond)."""

    cue: str
    attack: float
    live: float
    answers: tuple[str, ...] = ()          # the species it is meant to stop (the fit reads these)

    def __call__(self, m: Mapping[str, float]) -> float:
        return ramp(m.get(self.cue, float("nan")), self.attack, self.live)


# The ramps, by name. Physical meaning of each cue in ``features.py``; the numbers are train-family
# fits (see the module doc) and are replaced by ``calibration.json``'s ``ramps`` when it has them.
PRINTS = ("print", "print_curved", "print_cutout", "paper_mask")
SCREENS = ("screen_still", "screen_video")
HARD_3D = ("mask", "mask_eyeholes", "head_model", "head_model_hand")
RIGID_NO_BLINK = ("mask", "head_model", "head_model_hand")
PRINTED_EYES = ("print_eyes", "glasses_print")
RAMPS: dict[str, Ramp] = {
    # Depth geometry: adult nose tips stand 15-30 mm out of the cheek plane; a sheet has none.
    "nose": Ramp("nose_prominence_mm", 7.0, 15.0, PRINTS),
    "cylinder": Ramp("cylinder_rms_mm", 1.5, 3.0, ("print", "print_curved")),
    # Cross-modal: depth on most of the face, a face bright in IR, and life-size.
    "depth_share": Ramp("depth_share", 0.5, 0.8, SCREENS),
    "ir_contrast": Ramp("ir_face_contrast", 0.08, 0.25, SCREENS),
    "scale_low": Ramp("scale_ratio", 0.6, 0.72, SCREENS),
    "scale_high": Ramp("scale_ratio", 1.6, 1.35, SCREENS),
    # Material without a challenge: the dots' sharpness on the skin (fine over coarse band energy),
    # aligned to colour and in the IR imager's own pixels (their errors differ: both must pass).
    "dot_sharpness": Ramp("dot_sharpness", 1.10, 0.97, HARD_3D),
    "ir_dot_sharpness": Ramp("ir_dot_sharpness", 1.55, 1.45, HARD_3D),
    # Under a challenge: speckle contrast of the projector-only (on minus off) image, and the dots'
    # sharpness on it (fine over mid band energy, ``features.dot_shape``): both must say skin (the
    # contrast divides by the difference's mean, which an even light switched with the projector
    # raises; the sharpness is the dots' shape alone).
    "projector_speckle": Ramp("projector_speckle", 0.250, 0.235, HARD_3D),
    "projector_sharpness": Ramp("projector_sharpness", 1.36, 1.34, HARD_3D),
    # Motion: the face moves as a whole by more than its landmarks' own jitter could (``motion_snr``,
    # a ratio: about 1 for an object that holds still, in any light) or within itself (non-rigid
    # residual per IPD, 90th percentile over the window): either is a living face. (The displacement
    # itself, ``motion``, is reported, not scored: a head model's jitter in dim light is as large
    # as a still person's drift in bright light.)
    "motion_snr": Ramp("motion_snr", 2.0, 4.0, ("head_model",)),
    "nonrigid": Ramp("nonrigid_peak", 0.012, 0.020, ("head_model",)),
    # Eye region: eyes sit behind the bridge of the nose; a band or printed lenses do not. (The dots'
    # sharpness over the eyes in the lit frames alone, ``eye_dot_sharpness``, is reported, not scored:
    # on the training family printed eyes showed no sharper dots there than live eyes, 0.79-1.36
    # against 0.81-1.36; on the on-off pairs it separates them: ``eye_dots`` below.)
    "eye_recess": Ramp("eye_recess_mm", 4.0, 8.0, PRINTED_EYES),
    # Under a challenge, the projector's dots on discs over the eyes themselves (``features.EYE_PATCHES``,
    # on the on-off difference): paper and ink leave them as sharp as on a print, living eyes and lids
    # spread them. A printed band pressed onto the face keeps the wearer's own eye recess (docs/liveness.md,
    # "A printed eye band pressed onto the face"). Unread (no two-sided pair): the recess alone decides;
    # unread because light moved on the discs (``features.dot_shape_read``): not measurable (``evaluate``).
    # Fitted (``hil.pad_fit.fit_ramp``, "all": separable) on the discs at 0.12 eye spacings: 55 train
    # lives 0.346-1.320 (99th percentile 1.312), 20 train printed eyes 1.325-2.033 (pad-eval's
    # print_eyes and glasses_print, 4 each; pressed bands, full, narrow and cut at the lower lid, 4 each;
    # docs/liveness.md, "The eye discs at 0.12"). Kept with the unlit texture taken out of the dots'
    # shape (``features.texture_out``): no train live but live/29 (1.320 -> 1.429, refused before it too)
    # came over its live end (docs/liveness.md, "Attack B on textured surfaces").
    "eye_dots": Ramp("projector_sharpness_eyes", 1.32522, 1.31185, PRINTED_EYES),
    # Life signs: a blink in the window, or dots on the skin as soft as skin makes them. A rigid
    # instrument (painted eyes) shows neither; a person who does not blink in the window still has
    # skin (a stricter dot threshold than the material detector's, which must pass every face).
    "blink": Ramp("blink_drop", 0.2, 0.3, RIGID_NO_BLINK),
    "soft_dots": Ramp("dot_sharpness", 1.14, 1.11, RIGID_NO_BLINK),
    # The same under a challenge, on the on-off difference (a steady lamp with a coarse pattern
    # lowers the lit frames' dot sharpness and cancels in the difference).
    "challenge_soft_dots": Ramp("projector_sharpness", 1.36, 1.27, RIGID_NO_BLINK),
}
# How each detector combines its ramps: "all" (the weakest decides: every cue must look alive) or
# "any" (the strongest decides: one sign of life is enough), and for "any" the share of its training
# attacks each cue's attack end must lie beyond (``hil.pad_fit.fit_ramp``). Motion stops head models
# on a stand; the few of them whose landmarks jitter like a drifting face are life_signs' (no blink,
# sharp dots) to stop, so its ends may leave 10 % of them.
DETECTORS: dict[str, tuple[str, tuple[str, ...], float]] = {
    "depth_geometry": ("all", ("nose", "cylinder"), 1.0),
    "cross_modal": ("all", ("depth_share", "ir_contrast", "scale_low", "scale_high"), 1.0),
    "material": ("all", ("dot_sharpness", "ir_dot_sharpness"), 1.0),
    "challenge_material": ("all", ("projector_speckle", "projector_sharpness"), 1.0),
    "motion": ("any", ("motion_snr", "nonrigid"), 0.9),
    "eye_region": ("all", ("eye_recess", "eye_dots"), 1.0),
    "life_signs": ("any", ("blink", "soft_dots", "challenge_soft_dots"), 1.0),
}


def ramps(overrides: Mapping[str, Any] | None = None) -> dict[str, Ramp]:
    """The ramps with ``overrides`` (name -> [attack, live]) applied: ``calibration.json``'s fit."""
    out = dict(RAMPS)
    for name, (attack, live) in (overrides or {}).items():
        if name in out:
            r = out[name]
            out[name] = Ramp(r.cue, float(attack), float(live), r.answers)
    return out


_ACTIVE: dict[str, Ramp] | None = None


def active_ramps(*, refresh: bool = False) -> dict[str, Ramp]:
    """The ramps this process judges with: the defaults, with ``calibration.json``'s fit applied
    (read once; ``refresh`` reads the file again, after a bench has written it)."""
    global _ACTIVE
    if _ACTIVE is None or refresh:
        _ACTIVE = ramps(load_calibration().get("ramps"))
    return _ACTIVE


@dataclass(frozen=True)
class DetectorScores:
    depth_geometry: float
    cross_modal: float
    material: float | None          # None: not measurable (no IR stream, projector off or drowned)
    motion: float
    cues: dict[str, float]
    notes: tuple[str, ...] = ()
    material_drowned: bool = False  # under a challenge, the projector's light could not tell skin from resin
    eye_region: float | None = None
    life_signs: float | None = None
    # The most life a session whose material was not measurable may show (1: no bound): an
    # uncertain measure may lower the fused score, never raise it. The judge caps the score with it.
    material_bound: float = 1.0
    # Under a challenge, the dots over the eyes could not be read on any two-sided pair because light
    # moved in the noise pairs (``features.dot_shape_read``): the eye region rests on the recess alone,
    # which a printed band pressed onto the face keeps, so the verdict cannot be live (``unmeasured``).
    eyes_unmeasured: bool = False

    @property
    def unmeasured(self) -> bool:
        """Some evidence a live verdict needs could not be measured (``material_drowned``,
        ``eyes_unmeasured``): the judge caps the score below any live threshold, and the verdict is
        inconclusive unless the score already says attack."""
        return self.material_drowned or self.eyes_unmeasured

    def as_dict(self) -> dict[str, float]:
        out = {"depth_geometry": self.depth_geometry, "cross_modal": self.cross_modal, "motion": self.motion}
        for name in ("material", "eye_region", "life_signs"):
            v = getattr(self, name)
            if v is not None:
                out[name] = v
        return out


CUE_MEDIANS = ("plane_rms_mm", "cylinder_rms_mm", "nose_prominence_mm", "scale_ratio", "depth_share",
               "ir_face_level", "ir_face_contrast", "speckle_contrast", "dot_sharpness", "ir_dot_sharpness",
               "eye_recess_mm", "eye_dot_sharpness")


def _median(cues: list[FrameCues], name: str) -> float:
    vals = np.array([getattr(c, name) for c in cues], dtype=np.float64)
    return float(inplace.nanmedian(vals)) if np.isfinite(vals).any() else float("nan")


def cue_summary(cues: list[FrameCues], *, projector_on: list[bool] | None = None,
                projector: ProjectorMeasure | None = None, motion: dict[str, float] | None = None) -> dict[str, float]:
    """A session's cues: per-frame cues as medians over the frames that carry them (projector-lit
    frames under a challenge), motion over the window, and the projector's own light when measured."""
    lit = cues if projector_on is None else [c for c, on in zip(cues, projector_on, strict=True) if on]
    lit = lit or cues
    m = {k: _median(lit, k) for k in CUE_MEDIANS}
    if motion is None:
        from agent.liveness.features import motion_cues  # the worker's (OpenCV: see the imports)
        motion = motion_cues(cues)
    m.update(motion)
    if projector is not None:
        # The two-sided pairs' speckle with its 95 % interval, the one-sided (clipped) pairs' floor,
        # and the share of the skin's light always (under a challenge it marks the session as
        # challenged).
        if np.isfinite(projector.speckle):
            m["projector_speckle"] = projector.speckle
            m["projector_speckle_low"] = projector.low
            m["projector_speckle_high"] = projector.high
            m["projector_pairs"] = float(projector.pairs)
        if np.isfinite(projector.floor):
            # The floor's median and the lower end of its 95 % interval: only the latter is evidence.
            m["projector_clipped_floor"] = projector.floor
            m["projector_clipped_floor_low"] = projector.floor_low
            m["projector_clipped_pairs"] = float(projector.floor_pairs)
        if np.isfinite(projector.share):
            m["projector_share"] = projector.share
        if np.isfinite(projector.snr):
            m["projector_snr"] = projector.snr
        if projector.floor_pairs or (np.isfinite(projector.clipped) and projector.clipped > MAX_CLIPPED_SHARE):
            m["projector_clipped"] = projector.clipped
        if projector.patterned:
            m["projector_patterned_pairs"] = float(projector.patterned)
        # The dots' sharpness on the difference: the two-sided pairs' median, the one-sided pairs'
        # (a floor), and how many pairs had light coarser than the dots switched with the projector.
        if np.isfinite(projector.sharpness):
            m["projector_sharpness"] = projector.sharpness
        if np.isfinite(projector.sharpness_floor):
            m["projector_sharpness_floor"] = projector.sharpness_floor
        # The same over the recorded pattern's own reading on the same skin pixels (with a dot
        # reference): reported, not scored (docs/liveness.md, "A session's dots").
        if np.isfinite(projector.sharpness_ratio):
            m["projector_sharpness_ratio"] = projector.sharpness_ratio
        if np.isfinite(projector.sharpness_ratio_floor):
            m["projector_sharpness_ratio_floor"] = projector.sharpness_ratio_floor
        # The dots' sharpness with the projector's shading on the lit frame's depth taken out of each
        # pair's reading (``ProjectorLight.shading_gain``: only ever harder), and the ratio over the
        # shaded pattern (with a dot reference). Scored in place of ``projector_sharpness`` only when
        # ``features.SHADED_REFERENCE`` (docs/liveness.md, "The dots' shading taken out of the reference").
        for key, v in (("projector_sharpness_shaded", projector.sharpness_shaded),
                       ("projector_sharpness_shaded_floor", projector.sharpness_shaded_floor),
                       ("projector_sharpness_ratio_shaded", projector.sharpness_ratio_shaded)):
            if np.isfinite(v):
                m[key] = v
        if projector.coarse:
            m["projector_coarse_pairs"] = float(projector.coarse)
        # The fit to the projector's recorded pattern (``dotref``): whether every pair had it, the
        # pairs' median band energy off it over the energy on it. Reported, not scored.
        m["projector_pattern_checked"] = 1.0 if projector.pattern_checked else 0.0
        if np.isfinite(projector.unmatched):
            m["projector_unmatched"] = projector.unmatched
        if projector.untestable:
            m["projector_untestable_pairs"] = float(projector.untestable)
        if projector.pattern_pairs:      # how many pairs the unit check reads (``challenge.unit_status``)
            m["projector_pattern_pairs"] = float(projector.pattern_pairs)
        # Pairs whose speckle was read on the cheeks alone, the forehead's reading harder than
        # theirs (a fringe or a spectacle frame there; ``features.pair_light``). Reported.
        if projector.forehead_dropped:
            m["projector_forehead_dropped_pairs"] = float(projector.forehead_dropped)
        if np.isfinite(projector.forehead) and np.isfinite(projector.cheeks):
            m["projector_speckle_forehead"] = projector.forehead
            m["projector_speckle_cheeks"] = projector.cheeks
        if projector.rims_dropped:
            m["projector_rims_dropped_pairs"] = float(projector.rims_dropped)
        if np.isfinite(projector.upper) and np.isfinite(projector.lower):
            m["projector_speckle_upper"] = projector.upper
            m["projector_speckle_lower"] = projector.lower
        if np.isfinite(projector.lower_sharpness):
            m["projector_sharpness_lower"] = projector.lower_sharpness
        # Pairs whose lower cheeks' discs were read without the pixels near a thin line standing off the
        # face in the depth (a spectacle rim with the chin down; ``features.clear_of_rims``). Reported.
        if projector.lower_rims:
            m["projector_lower_rims_pairs"] = float(projector.lower_rims)
        # Pairs whose speckle was read without the pixels whose unlit texture the albedo does not
        # explain (a directional flood's lit strands, rims and their shadows: ``features.clear_of_shading``).
        if projector.shading_dropped:
            m["projector_shading_dropped_pairs"] = float(projector.shading_dropped)
        if np.isfinite(projector.eyes_sharpness):
            m["projector_sharpness_eyes"] = projector.eyes_sharpness
        # The same over the recorded pattern's own reading on the discs' pixels (with a dot reference):
        # reported, not scored (docs/liveness.md, "The eye discs' reference reading").
        if np.isfinite(projector.eyes_sharpness_ratio):
            m["projector_sharpness_eyes_ratio"] = projector.eyes_sharpness_ratio
        # Pairs whose dots' shape was not read, on the skin and on the discs over the eyes: light moved
        # between the noise pair's frames (``features.dot_shape_read``). What ``evaluate`` reads as not
        # measurable when no pair's shape was left.
        if projector.unshaped:
            m["projector_unshaped_pairs"] = float(projector.unshaped)
        if projector.eyes_unshaped or projector.flood_edges:
            m["projector_eyes_unshaped_pairs"] = float(projector.eyes_unshaped)
            m["projector_eyes_read_pairs"] = float(projector.eyes_read)
        # Edges whose frames a foreign flood lit (``judge.flood_pairs``): their pairs were read on other
        # frames or not at all, and the discs over the eyes then decide from ``MIN_EYE_READINGS`` at least.
        if projector.flood_edges:
            m["projector_flood_edges"] = float(projector.flood_edges)
        if np.isfinite(projector.forehead_sharpness) and np.isfinite(projector.cheeks_sharpness):
            m["projector_sharpness_forehead"] = projector.forehead_sharpness
            m["projector_sharpness_cheeks"] = projector.cheeks_sharpness
    return m


# Deciding material toward skin takes at least this many two-sided pairs: their scatter is the
# interval's check on what photon noise alone claims (one or two pairs cannot show it).
MIN_PROJECTOR_PAIRS = 3
# The discs over the eyes decide from this many two-sided pairs' readings at least when light moving on
# them left others unread (``projector_eyes_unshaped_pairs``): fewer are not measurable, as none are. Without
# unshaped pairs a window's eye reading is its pairs' median whatever their number, as before: train's
# rooms hold no moving light and never meet this rule (fleck26, docs/liveness.md).
MIN_EYE_READINGS = 3
# No skin reads a projector speckle under this: the train family's live faces read 0.135 at the
# lowest (39 sessions, pad-eval) and 0.109 (12 challenged at 36 cm, bench.material_sweep clip, on
# main's measure); the floor leaves a margin under both. Lower is no surface the simulator models
# (skin ~0.17, resin ~0.34) but a noise estimate subtracted too large: not measured, never skin
# (docs/liveness.md).
SKIN_SPECKLE_FLOOR = 0.10


def measurable(m: Mapping[str, float], speckle: Ramp) -> bool:
    """Whether the projector speckle (``projector_speckle``) may decide material: its interval
    ``separates``, it comes from at least ``MIN_PROJECTOR_PAIRS`` two-sided pairs
    (``projector_pairs``; a summary with an interval but no count has none), and it is not under
    ``SKIN_SPECKLE_FLOOR``. (A summary without an interval, from before it was measured, is
    measurable as it was then.)"""
    est = m.get("projector_speckle", float("nan"))
    if not np.isfinite(est) or est < SKIN_SPECKLE_FLOOR or not separates(m, speckle):
        return False
    if not np.isfinite(m.get("projector_speckle_low", float("nan"))):
        return True
    return bool(m.get("projector_pairs", 0.0) >= MIN_PROJECTOR_PAIRS)


def separates(m: Mapping[str, float], speckle: Ramp) -> bool:
    """Whether the projector speckle's 95 % interval (``projector_speckle_low``..``_high``) can tell
    skin from the attack materials: it must not reach both the ramp's live end and its attack end.
    An interval wholly on the skin side, wholly on the hard side, or inside the ramp decides; one
    that spans the ramp could be either. (A summary without an interval, from before it was
    measured, separates.)"""
    low, high = m.get("projector_speckle_low", float("nan")), m.get("projector_speckle_high", float("nan"))
    if not (np.isfinite(low) and np.isfinite(high)):
        return True
    lo_end, hi_end = sorted((speckle.live, speckle.attack))
    return not (low <= lo_end and high >= hi_end)


def clipped_floor(m: Mapping[str, float]) -> float:
    """What the one-sided pairs say the surface's speckle is at least, with 95 % confidence: the lower
    end of their floor's interval (``projector_clipped_floor_low``), never its median
    (``projector_clipped_floor``), which pairs at a few noise deviations can lift far above the
    surface's own. A summary with a floor but no bound, from before the bound was recorded, has
    its median, as it was then. NaN without one-sided pairs."""
    floor = m.get("projector_clipped_floor", float("nan"))
    if not np.isfinite(floor):
        return float("nan")
    return float(m.get("projector_clipped_floor_low", floor))


def clipped_floor_basis(m: Mapping[str, float]) -> str:
    """What :func:`clipped_floor` gave for ``m``, for the verdict's notes: the 95 % bound, or the
    median of a summary recorded before the bound was."""
    return "95 %" if "projector_clipped_floor_low" in m else "the median; recorded before its 95 % bound"


def clipped_cap(m: Mapping[str, float], speckle: Ramp) -> float:
    """The most life the one-sided pairs allow: the surface is at least as hard as their floor's
    lower bound (``clipped_floor``), so the speckle ramp there (1 without one-sided pairs). It can
    only lower the material evidence: a floor says "hard", never "soft"."""
    floor = clipped_floor(m)
    return ramp(floor, speckle.attack, speckle.live) if np.isfinite(floor) else 1.0


def sharpness_cap(m: Mapping[str, float], sharpness: Ramp) -> float:
    """The most life the one-sided pairs' dot sharpness allows (``projector_sharpness_floor``): what
    made them one-sided (clipped peaks, noise subtracted in excess, coarse light switched with the
    projector) only lowers a sharpness, so the surface's dots are at least that sharp (1 without
    such pairs). It can only lower the material evidence."""
    floor = m.get("projector_sharpness_floor", float("nan"))
    return ramp(floor, sharpness.attack, sharpness.live) if np.isfinite(floor) else 1.0


def drowned(m: Mapping[str, float]) -> bool:
    """Whether ambient NIR drowned the projector's light on the face: under ``MIN_PROJECTOR_SNR``
    deviations of the noise measured on a same-state pair; with no SNR at all (no pair's noise
    measured: no two frames in one projector state near it, or under ``MIN_PROJECTOR_LEVEL_DN`` of
    its light, as in direct sunlight), a projector's share of the skin's IR light under
    ``MIN_PROJECTOR_SHARE``, the share a pair without a noise pair needs to count. Neither (no SNR
    and a projector carrying most of the light, or no pair at all) is not measured, not drowned."""
    snr = m.get("projector_snr", float("nan"))
    if np.isfinite(snr):
        return bool(snr < MIN_PROJECTOR_SNR)
    share = m.get("projector_share", float("nan"))
    return bool(np.isfinite(share) and share < MIN_PROJECTOR_SHARE)


# Why the projector's material measure could not decide, by code (``unmeasured_cause``), in the verdict's
# words (``unmeasured_note``).
UNMEASURED_CAUSES = {
    "dots_clipped": "the projector's dots saturate the IR image on the face",
    "coarse_light": "NIR light coarser than the projector's dots changes with it on the face",
    "patterned_light": "NIR light with a fine pattern of its own lies on the face",
    "drowned": "ambient NIR drowns the projector",
    "few_pairs": "too few of the projector's on-off pairs in the window",
    "moved_light": "light moved on the face between frames, so too few of the projector's on-off pairs were read",
    "not_measured": "the projector's light on the face was not measured against its noise",
    "noise_estimate": "the noise estimate takes more than the projector's speckle on the face",
    "interval_spans": "the projector's light on the face was measured, but its interval spans both skin's and a mask's",
}

# The causes a person can change by where they stand (issue 14, prompt25): light that is not the
# projector's lying on the face (sun through blinds or leaves, a lamp) or drowning the dots asks for less
# light ("bright": ``TOO_BRIGHT_TO_VERIFY``); light that moved on the face between frames ("moved",
# ``unshaped_note``'s pairs, or ``moved_light``: too few pairs left read) asks for a retry while holding
# still (``LIGHT_CHANGED``). Clipped dots, too
# few pairs, a noise estimate or an interval too wide are not the room's light: no prompt names it.
CAUSE_LIGHT = {"coarse_light": "bright", "patterned_light": "bright", "drowned": "bright", "moved_light": "moved"}


def unmeasured_cause(m: Mapping[str, float], speckle_ramp: Ramp | None = None) -> str:
    """Why the projector's material measure could not decide (a key of ``UNMEASURED_CAUSES``): the
    first that holds of clipped dots, coarse or patterned NIR light on most one-sided pairs, a drowned
    projector, too few pairs (because light moved on the face: ``moved_light``), a noise estimate larger
    than the speckle, an interval spanning skin and a mask. Too few pairs with more of them lost to light
    moving than made one-sided by a pattern is ``moved_light`` even where patterned pairs are most of the
    one-sided ones: the person is asked to hold still, not for less light (a heater-lit spectacle frame
    moving with the head, docs/liveness.md, "A spectacle frame lit and moving")."""
    snr = m.get("projector_snr", float("nan"))
    clipped = m.get("projector_clipped", float("nan"))
    # A session whose pairs were mostly clipped is turned away by the clipping, not by the light;
    # one whose one-sided pairs were mostly lit by a patterned NIR light (features.albedo_texture),
    # by that light.
    patterned = m.get("projector_patterned_pairs", 0.0)
    coarse = m.get("projector_coarse_pairs", 0.0)
    if np.isfinite(clipped) and clipped > MAX_CLIPPED_SHARE:
        return "dots_clipped"
    if coarse > 0 and 2 * coarse >= m.get("projector_clipped_pairs", 0.0):
        return "coarse_light"
    moved = m.get("projector_unshaped_pairs", 0.0)
    few = m.get("projector_pairs", 0.0) < MIN_PROJECTOR_PAIRS
    if patterned > 0 and 2 * patterned >= m.get("projector_clipped_pairs", 0.0) and not (few and moved > patterned):
        return "patterned_light"
    if drowned(m):
        return "drowned"
    if few:
        # Pairs whose dots' shape moving light kept unread give no speckle either (``features.speckled``).
        if moved > 0:
            return "moved_light"
        return "few_pairs" if np.isfinite(snr) else "not_measured"
    if np.isfinite(snr) and np.isfinite(speckle_est := m.get("projector_speckle", float("nan"))) \
            and speckle_est < SKIN_SPECKLE_FLOOR:
        # The light stood well above the noise: what is wrong is the noise estimate, not the light.
        return "noise_estimate"
    if speckle_ramp is not None and not separates(m, speckle_ramp):
        # Enough pairs, well above the noise, but their scatter leaves skin and a mask both possible.
        return "interval_spans"
    return "drowned" if np.isfinite(snr) else "not_measured"


def material_light(cues: Mapping[str, Any], r: Mapping[str, Ramp] | None = None) -> str | None:
    """What light kept a challenged session's material from being measured, from its cue summary (the
    verdict's ``cues``; None or missing is NaN): "bright" (light not the projector's on the face, or
    drowning it: ``CAUSE_LIGHT``), "moved" (a speckle that could decide but whose dots' shape light moving
    between frames kept from being read), or None (the material was measured, had no IR or projector
    pairs to go on, or failed for a reason that is not the room's light). The branches are
    ``evaluate``'s, so the answer is the cause its note gives."""
    m = {k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else float("nan")
         for k, v in cues.items()}
    r = r or active_ramps()
    if not np.isfinite(m.get("speckle_contrast", float("nan"))):
        return None
    if measurable(m, r["projector_speckle"]):
        if np.isfinite(m.get("projector_sharpness", float("nan"))):
            return None
        return "moved" if m.get("projector_unshaped_pairs", 0.0) > 0 else None
    if clipped_cap(m, r["projector_speckle"]) == 0.0:
        return None
    if not any(np.isfinite(m.get(k, float("nan")))
               for k in ("projector_speckle", "projector_share", "projector_clipped_floor")):
        return None
    return CAUSE_LIGHT.get(unmeasured_cause(m, r["projector_speckle"]))


def unmeasured_note(m: Mapping[str, float], speckle_ramp: Ramp | None = None) -> str:
    """Why the projector's material measure could not decide, in the verdict's words (the projector
    speckle's ramp tells an interval too wide from a light too weak)."""
    seen = []
    if np.isfinite(share := m.get("projector_share", float("nan"))):
        seen.append(f"it lights {share:.0%} of the skin")
    if np.isfinite(snr := m.get("projector_snr", float("nan"))):
        seen.append(f"{snr:.1f} noise deviations per pixel")
    if np.isfinite(speckle := m.get("projector_speckle", float("nan"))):
        pairs = int(m.get("projector_pairs", 0))
        seen.append(f"speckle {speckle:.3f}, 95 % interval {m.get('projector_speckle_low', float('nan')):.3f}"
                    f"-{m.get('projector_speckle_high', float('nan')):.3f} over {pairs} pairs")
        if pairs < MIN_PROJECTOR_PAIRS:
            seen.append(f"fewer than {MIN_PROJECTOR_PAIRS} pairs measured both ways")
        if speckle < SKIN_SPECKLE_FLOOR:
            seen.append(f"under any skin's ({SKIN_SPECKLE_FLOOR:.2f}): too much noise subtracted")
    clipped = m.get("projector_clipped", float("nan"))
    if np.isfinite(clipped):
        seen.append(f"{clipped:.1%} of the skin clipped")
    if np.isfinite(floor := clipped_floor(m)):
        seen.append(f"pairs clipped, under {MIN_PROJECTOR_SNR:.0f} noise deviations or under patterned NIR light: "
                    f"at least {floor:.3f} ({clipped_floor_basis(m)}; median {m['projector_clipped_floor']:.3f}), "
                    f"which says only how hard a surface is")
    code = unmeasured_cause(m, speckle_ramp)
    if code == "coarse_light":
        seen.append(f"{m.get('projector_coarse_pairs', 0.0):.0f} pairs with coarse NIR light that changes with "
                    f"the projector")
    elif code == "patterned_light":
        seen.append(f"{m.get('projector_patterned_pairs', 0.0):.0f} pairs under NIR light with a pattern of its own")
    elif code == "moved_light":
        seen.append(f"{m.get('projector_unshaped_pairs', 0.0):.0f} pairs with neither the dots' shape nor their "
                    f"speckle read")
    cause = UNMEASURED_CAUSES[code]
    return f"{cause} ({'; '.join(seen)}): material not measurable, the verdict cannot be live"


def unshaped_note(m: Mapping[str, float]) -> str:
    """Why a measurable speckle was not enough, in the verdict's words: no two-sided pair's dots'
    shape (``projector_sharpness``) was read."""
    moved = m.get("projector_unshaped_pairs", 0.0)
    cause = (f"light moved on the face between frames ({moved:.0f} pairs), so the projector's dots' shape could "
             f"not be read" if moved > 0 else "the projector's dots' shape could not be read on any pair "
             "measured both ways (no mid-band energy left once the noise was removed)")
    return f"{cause}: material not measurable, the verdict cannot be live"


def evaluate(m: Mapping[str, float], *, challenged: bool, projector_seen: bool = True,
             r: Mapping[str, Ramp] | None = None) -> DetectorScores:
    """Detector evidence from a session's cue summary (``cue_summary``): a pure function of the
    numbers, so a bench can score stored summaries again under other ramps."""
    r = r or active_ramps()
    m = dict(m)
    geometry = min(r["nose"](m), r["cylinder"](m))
    cross = min(r["depth_share"](m), r["ir_contrast"](m), r["scale_low"](m), r["scale_high"](m))
    notes = []
    drowned = False
    bound = 1.0
    material: float | None
    has_ir = np.isfinite(m.get("speckle_contrast", float("nan")))
    if challenged and has_ir and projector_seen and m.get("projector_pattern_checked") == 0.0:
        if m.get("projector_untestable_pairs", 0.0) > 0:
            # A reference is configured, but some pairs' dots could not be predicted on it (review33a).
            notes.append(f"projector pattern check incomplete: {m['projector_untestable_pairs']:.0f} on-off pairs "
                         "could not be tested against this camera's dot reference")
        else:
            notes.append("projector pattern check absent: no dot reference for this camera, so light at the dots' "
                         "scale switched with the projector is not told from the projector's own")
    if not has_ir:
        # Missing data is never evidence of life: without the material measure (the one detector
        # that answers masks) the session is unmeasured, capped below any live threshold.
        material, drowned = None, True
        notes.append("no IR stream: the material detector did not run, material not measurable, the verdict "
                     "cannot be live")
        cross = min(r["depth_share"](m), r["scale_low"](m), r["scale_high"](m))
    elif not projector_seen:
        # The frames say the projector was off throughout (an injector on the camera link can write
        # that into every frame's metadata): unmeasured, never a reason to leave material out.
        material, drowned = None, True
        notes.append("projector off: no projected dots, material not measurable, the verdict cannot be live")
    elif challenged and measurable(m, r["projector_speckle"]) \
            and not np.isfinite(m.get("projector_sharpness", float("nan"))):
        # A speckle that could decide, but no two-sided pair's dots' shape was read (light that moved
        # in the noise pairs, ``features.dot_shape_read``, or a mid band emptied by the noise taken
        # out): the shape is the half of the material measure that light without the dots cannot
        # move, so without it nothing says skin. Not measurable, never 0 by a NaN (a sunfleck is
        # not a mask) and never live; what the pairs did show may still hold the score down.
        material, drowned = None, True
        notes.append(unshaped_note(m))
        bound = min(r["projector_speckle"](m), clipped_cap(m, r["projector_speckle"]),
                    sharpness_cap(m, r["projector_sharpness"]))
        if bound < 1.0:
            notes.append(f"what the projector's light did show leans hard: the score is held at {bound:.2f} at most")
    elif challenged and measurable(m, r["projector_speckle"]):
        # The on-off difference holds only the light that changes with the projector: the cleanest
        # material measure, scored when its interval can tell skin from resin. Its contrast divides
        # by the difference's mean, which light switched with the projector but carrying none of
        # its dots raises, so the dots' sharpness on the same pairs must say skin too (it also holds
        # resin whose contrast touches skin's, clipping a little, say), and one-sided pairs already
        # harder than skin hold the session down.
        material = min(r["projector_speckle"](m), r["projector_sharpness"](m),
                       clipped_cap(m, r["projector_speckle"]), sharpness_cap(m, r["projector_sharpness"]))
    elif challenged and clipped_cap(m, r["projector_speckle"]) == 0.0:
        # Clipped pairs whose contrast, with the clipped peaks kept, is already harder than the
        # ramp's attack end: the surface is at least that hard, whatever the other pairs say.
        material = 0.0
        notes.append(f"the projector's dots clip on the face, and are sharper than skin's even so "
                     f"(at least {clipped_floor(m):.3f}, {clipped_floor_basis(m)})")
    elif challenged and any(np.isfinite(m.get(k, float("nan")))
                            for k in ("projector_speckle", "projector_share", "projector_clipped_floor")):
        # Under a challenge, but the projector's light on the skin was not measured precisely
        # enough to tell skin from a mask, or only on clipped pairs (which can only say "hard"):
        # no evidence of life; at most a bound toward an attack (below).
        material, drowned = None, True
        notes.append(unmeasured_note(m, r["projector_speckle"]))
        # What could not show skin may still lean hard: the speckle's and the dots' sharpness's own
        # estimates and the one-sided pairs' floors of both bound the session's score from above.
        bound = min(clipped_cap(m, r["projector_speckle"]), sharpness_cap(m, r["projector_sharpness"]))
        if np.isfinite(m.get("projector_sharpness", float("nan"))):
            bound = min(bound, r["projector_sharpness"](m))
        if np.isfinite(m.get("projector_speckle", float("nan"))):
            bound = min(bound, r["projector_speckle"](m))
        if bound < 1.0:
            notes.append(f"what the projector's light did show leans hard: the score is held at {bound:.2f} at most")
    elif challenged and m.get("projector_flood_edges", 0.0) > 0:
        # A foreign flood's bursts left no pair of the projector's to read (``judge.flood_pairs``): what the
        # projector would have shown is not measured, and the dots' sharpness on single frames (the path of a
        # window without a challenge) is no answer an attacker who floods the frames he likes may choose.
        material, drowned = None, True
        notes.append(f"a foreign NIR light's bursts left none of the projector's on-off pairs to read "
                     f"({m['projector_flood_edges']:.0f} touched): material not measurable, the verdict cannot be live")
    else:
        material = min(r["dot_sharpness"](m), r["ir_dot_sharpness"](m))
    # No depth at the eyes (a screen, say) is no evidence of eyes behind the bridge: 0, like any NaN.
    eye_region = r["eye_recess"](m)
    eyes_unmeasured = False
    unshaped_eyes = m.get("projector_eyes_unshaped_pairs", 0.0)
    # Pairs a foreign flood's bursts kept out or moved to other frames (``judge.flood_pairs``) count as
    # unshaped here: leaving them out never lets fewer readings decide than reading them would have.
    unshaped_eyes += m.get("projector_flood_edges", 0.0)
    # Beside discs whose shape light moving on them kept unread, fewer than ``MIN_EYE_READINGS`` read
    # ones are one or two pairs' scatter, not the eyes' reading (the eleventh's live/90: one pair at
    # 1.364 beside four unshaped, the ramp's attack end 1.325; fleck26, docs/liveness.md): as none.
    few_eyes = unshaped_eyes > 0 and m.get("projector_eyes_read_pairs", float("inf")) < MIN_EYE_READINGS
    if challenged and projector_seen and np.isfinite(m.get("projector_sharpness_eyes", float("nan"))) \
            and not few_eyes:
        eye_region = min(eye_region, r["eye_dots"](m))
    elif challenged and projector_seen and has_ir and unshaped_eyes > 0:
        # The discs over the eyes were there but light moving on them kept every two-sided pair's shape
        # from being read: the recess alone cannot answer a printed band pressed onto the face (it keeps
        # the wearer's recess), so the eye region is not measurable and the verdict cannot be live.
        # A recess that already says "no eyes behind" still does.
        eyes_unmeasured = True
        read = (f"; {m['projector_eyes_read_pairs']:.0f} read, fewer than {MIN_EYE_READINGS}" if few_eyes
                and np.isfinite(m.get("projector_sharpness_eyes", float("nan"))) else "")
        flood = m.get("projector_flood_edges", 0.0)
        flood_note = f", {flood:.0f} of them a foreign flood's" if flood > 0 else ""
        notes.append(f"the projector's dots over the eyes could not be read: light moved on them between frames "
                     f"({unshaped_eyes:.0f} pairs{flood_note}{read}), eye region not measurable, the verdict "
                     f"cannot be live")
    if not (has_ir and projector_seen):
        life = r["blink"](m)
    elif challenged:
        # Soft dots on the projector's own pairs (NaN, none two-sided: no evidence), never softer
        # than the one-sided pairs' floor allows.
        soft = min(r["challenge_soft_dots"](m), sharpness_cap(m, r["challenge_soft_dots"]))
        life = max(r["blink"](m), soft)
    else:
        life = max(r["blink"](m), r["soft_dots"](m))
    motion = max(r["motion_snr"](m), r["nonrigid"](m))
    return DetectorScores(geometry, cross, material, motion, m, tuple(notes), drowned, eye_region, life, bound,
                          eyes_unmeasured)


def score(cues: list[FrameCues], *, projector_on: list[bool] | None = None, projector_seen: bool = True,
          projector: ProjectorMeasure | None = None, motion: dict[str, float] | None = None,
          r: Mapping[str, Ramp] | None = None) -> DetectorScores:
    """Scores over a window of frames. Material and depth cues use projector-on frames only.

    Without an IR stream, or when the projector was off (reported by the device), the material
    detector cannot measure anything: it is left out, the session is unmeasured (never live) and
    the verdict says so — a missing measurement is never evidence either way."""
    m = cue_summary(cues, projector_on=projector_on, projector=projector, motion=motion)
    return evaluate(m, challenged=projector is not None, projector_seen=projector_seen, r=r)
