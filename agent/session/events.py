"""What a capture session tells the kiosk app, as typed events.

``run_capture`` yields them; the local API turns them into ``CaptureEvent`` messages and its client
turns those back into these (``agent.localapi.convert``): one mapping, both ways.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeAlias

from agent.quality.prompts import Prompt


@dataclass(frozen=True)
class Progress:
    percent: int                      # 0..100 across the whole capture
    stage: str                        # consent | capture | liveness | seal | submit | done


@dataclass(frozen=True)
class Result:
    """The capture's outcome: the server's receipt, or ``NOT_LIVE`` judged on the terminal."""

    accepted: bool
    reason: str
    probe_id: str
    liveness_verdict: str
    detail: str = ""                  # why, when not accepted (never biometric)
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Error:
    """The capture failed before it had a result (stable code, human message)."""

    code: str
    message: str


@dataclass(frozen=True)
class Illumination:
    """The illumination challenge: the kiosk app shows ``rgb`` full screen from now until the next
    event. Sent when the step should begin; ``end`` gives the screen back to the app."""

    step: int
    rgb: tuple[float, float, float]   # each channel 0..1 of full white
    frame: int                        # the challenge window's frameset the step is meant for
    frames: int                       # how many framesets it lasts
    frame_interval_ms: float          # the camera's frame period
    end: bool = False
    # The panel's luminance for the sequence, a multiple of its everyday one (its backlight raised in a
    # bright room: ``window.screen_luminance``); the app gives the panel its everyday luminance at ``end``.
    luminance: float = 1.0


# The prompt of a challenge window that lost frames (``SES_FRAMES_LOST``): the person did nothing
# wrong and is asked to try again; the app starts a new session (a new nonce, a new challenge).
FRAMES_LOST = Prompt("FRAMES_LOST", "画面中断，请重新验证", "The camera missed some frames: please try again")

# While the server says copies of this session's sealed probe are still being judged
# (``PROBE_IN_PROGRESS``: an earlier attempt's server died or stalled while judging), the terminal
# resends the same probe until their lease lapses, a few seconds: the person is told to wait, once,
# rather than left before a screen that says nothing (the result, or an error, follows).
PLEASE_WAIT = Prompt("PLEASE_WAIT", "正在确认结果，请稍候", "Confirming the result: please wait")

# A challenge that could not be measured (``ChallengeResult.unmeasurable``: the projector's dots drowned
# or clipped by ambient infrared, or the screen's light too weak against the room's): the verdict is
# inconclusive and the person is asked to move out of the bright light and try again (a new session).
# Not "move closer": in a clipped IR image the projector's added light is lost however close the face
# is, while less ambient light helps both the projector and the screen (docs/liveness.md, *A drowned
# projector*).
TOO_BRIGHT_TO_VERIFY = Prompt("TOO_BRIGHT_TO_VERIFY", "环境光太强，无法完成验证，请避开强光后重试",
                              "Too much light to complete the check: please move out of the bright light and try again")


# A challenge that could not be measured because the room's light on the face changed during the
# illumination sequence (``AMBIENT_DETAIL``: a shadow passing, a door's light swinging) and nothing else
# hid it: the person is not in bright light, and moving would not help; they are asked to hold still and
# try again (a new session, a few seconds later: the shadow has gone). Counted like every refusal.
LIGHT_CHANGED = Prompt("LIGHT_CHANGED", "验证时面部光线发生变化，请保持不动后重试",
                       "The light on your face changed during the check: please hold still and try again")


# A light the person cannot see (issue 14, misc26): a CCTV dome's 850 nm flood at night (the ninth family)
# drowns or patterns the projector's dots on a face its visible light leaves dim. "Move out of the bright
# light" is wrong advice there: no light looks bright, a pace aside leaves the face in the flood (the dome is
# 1-3 m away, 20-70 degrees off the camera's axis on the camera's side: drivers/sim/night.py), and the face
# must stay towards the camera, so it cannot be turned to put the flood behind it. Nothing the person can
# do helps: the terminal says so, with a stable code for the kiosk app (offer staff or another channel)
# and the operator (the audit ``result`` record's ``prompt``, shown by ``diagnose``), who can turn the
# camera's illuminator away from the kiosk or shield it. Counted like every refusal (an injector can fake
# an unmeasurable stream at will).
IR_FLOOD_CANNOT_VERIFY = Prompt("IR_FLOOD_CANNOT_VERIFY",
                                "此处的红外光（如监控摄像头的补光灯）干扰验证，无法在此完成，请联系工作人员",
                                "Infrared light here (such as a security camera's) keeps the check from "
                                "working: please ask a member of staff for help")

# The face's illuminance (the quality gate's estimate, a camera with a lux calibration) under which no
# visible light carries the near infrared that hides the projector, so what hid it is a light the person
# cannot see. The richest 850 nm per lux of any light the capture spec admits is a 2300 K black body's
# (the gate refuses a colour temperature under 2300 K): 0.81 lux-equivalents per lux on the simulator's
# NIR scale, 2.31 times a 3000 K black body's 0.35 (Planck and the CIE photopic curve, as
# drivers/sim/night.py's scale is derived; tests/session/test_ir_flood_prompt.py). The projector's dots
# bring ~300 lux-equivalents to a face at 0.5 m (night.py), and the judge counts a pair without a noise
# pair only while the projector carries at least ``features.MIN_PROJECTOR_SHARE`` (half) of the skin's IR
# light: visible light drowns the dots so from 300 / 0.81 = 370 lux up. 200 leaves a factor 1.85 for the
# estimate's own error. The estimate is calibrated on a mid-reflectance skin, and a darker skin reads a lower
# lux, down to ~1/7 (tests/session/test_capture_session.py: identity 3 reads ~1,050 at 7,500 lux). Sunlight
# carries at most 0.20 lux-equivalents per lux (``dappled_sun``'s canopy; direct sun 0.12), so sun that drowns
# the dots is at least 1,500 lux, which the darkest skin still reads over 200. Not covered: NIR-rich lamps
# (halogen, incandescent) at 370-1,400 lux on a dark skin (told IR_FLOOD_CANNOT_VERIFY: infrared light, but a
# lamp's), and patterned light below the drowning level (blinds' stripes, sunflecks) on a dark skin read
# under 200 lux, which would be told IR_FLOOD_CANNOT_VERIFY instead of stepping out of the sun: not measured
# (docs/liveness.md, misc26). Not fitted: train's lights (fluorescent, LED) carry almost no 850 nm.
IR_FLOOD_MAX_LUX = 200.0


def invisible_light(lux: float | None) -> bool:
    """Whether the face's illuminance ``lux`` (None or NaN: not measured, a camera without a lux
    calibration) is too dim for any visible light to carry the near infrared that hid the projector
    (``IR_FLOOD_MAX_LUX``)."""
    return lux is not None and math.isfinite(lux) and 0.0 <= lux < IR_FLOOD_MAX_LUX


def challenge_unmeasurable(verdict: str, challenge: Any) -> bool:
    """Whether an ``inconclusive`` verdict's challenge (its ``challenge`` dict, as the liveness worker
    sent it) failed only because the light kept it from being measured (``failed_for_light``; not a
    window whose face was missing from too many frames, which is not measurable either)."""
    from agent.liveness.challenge import failed_for_light

    return verdict == "inconclusive" and failed_for_light(challenge)


def unmeasurable_prompt(verdict: str, challenge: Any) -> Prompt | None:
    """The prompt after an ``inconclusive`` verdict whose challenge the light kept from being measured
    (:func:`challenge_unmeasurable`): ``LIGHT_CHANGED`` when every failed challenge says the room's
    light changed during it (``AMBIENT_DETAIL``; the projector's ``SWEPT_DETAIL``: a passing light's
    drift, not its level, hid the dots; ``PROJECTOR_GLINT_DETAIL``: a windscreen's glint crossed the
    face), else ``TOO_BRIGHT_TO_VERIFY`` (less light helps a
    drowned, clipped or drifting projector and a screen too weak on the face; a lamp pulsing behind a
    fan's blades, ``PULSED_DETAIL``, keeps pulsing while the person holds still: out of its light
    helps); None otherwise."""
    from agent.liveness.challenge import AMBIENT_DETAIL, PROJECTOR_GLINT_DETAIL, SWEPT_DETAIL

    if not challenge_unmeasurable(verdict, challenge):
        return None
    failed = [challenge.get(k) for k in challenge["kinds"]]
    if all(r.get("detail") in (AMBIENT_DETAIL, SWEPT_DETAIL, PROJECTOR_GLINT_DETAIL)
           for r in failed if r.get("passed") is not True):
        return LIGHT_CHANGED
    return TOO_BRIGHT_TO_VERIFY


def material_prompt(verdict: str, detectors: Mapping[str, Any], cues: Mapping[str, Any],
                    live_min: float) -> Prompt | None:
    """The prompt after an ``inconclusive`` verdict that the material's measure, kept from deciding by
    the room's light, made inconclusive (issue 14, prompt25): the material detector left out (not
    measurable) while every other detector reached ``live_min``, and its cause a light the person can
    change (``detectors.material_light``: sun through blinds or a lamp's pattern on the face, ambient
    NIR drowning the projector: ``TOO_BRIGHT_TO_VERIFY``; light moving on the face between frames:
    ``LIGHT_CHANGED``). None otherwise, and always on an ``attack`` (the prompt names the light, never
    the cue, and an attacker is told nothing)."""
    from agent.liveness.detectors import material_light

    if verdict != "inconclusive" or "material" in detectors:
        return None
    others = [float(x) for x in detectors.values() if isinstance(x, (int, float)) and not isinstance(x, bool)]
    if not others or len(others) != len(detectors) or min(others) < live_min:
        return None
    light = material_light(cues)
    return TOO_BRIGHT_TO_VERIFY if light == "bright" else LIGHT_CHANGED if light == "moved" else None


def _projector_only(challenge: Any) -> bool:
    """Whether every challenge that failed in ``challenge`` (the verdict's dict) is the projector's: an
    infrared light hides the dots, never the screen's colours (a screen too weak on the face is the
    visible room's light, which ``TOO_BRIGHT_TO_VERIFY`` names rightly)."""
    if not isinstance(challenge, dict) or challenge.get("passed") is True:
        return True
    kinds = challenge.get("kinds")
    failed = [k for k in kinds if isinstance(challenge.get(k), dict) and challenge[k].get("passed") is not True] \
        if isinstance(kinds, list) else None
    return failed is not None and all(k == "projector" for k in failed)


def verdict_prompt(verdict: Any, live_min: float, lux: float | None = None) -> Prompt | None:
    """The prompt a refused verdict (``LivenessVerdict``) gets, if any: the challenge's light first
    (:func:`unmeasurable_prompt`), else the material's (:func:`material_prompt`). ``TOO_BRIGHT_TO_VERIFY``
    becomes ``IR_FLOOD_CANNOT_VERIFY`` when the face's illuminance ``lux`` (the quality gate's estimate
    before the window; None or NaN when the camera has no lux calibration: unchanged) is too dim for
    visible light to have hidden the projector (:func:`invisible_light`) and only the projector's
    challenge, or its material measure, failed for the light."""
    told = unmeasurable_prompt(verdict.verdict, verdict.challenge)
    ch, cues = verdict.challenge, verdict.cues
    if told is None and (ch is None or (isinstance(ch, dict) and ch.get("passed") is True)) \
            and isinstance(cues, Mapping):
        told = material_prompt(verdict.verdict, verdict.detectors, cues, live_min)
    if told is TOO_BRIGHT_TO_VERIFY and invisible_light(lux) and _projector_only(ch):
        return IR_FLOOD_CANNOT_VERIFY
    return told


# One prompt at a time for the person at the terminal (``Prompt``: code, Chinese and English text).
CaptureEvent: TypeAlias = Prompt | Progress | Result | Error | Illumination
KINDS: dict[type, str] = {Prompt: "prompt", Progress: "progress", Result: "result", Error: "error",
                          Illumination: "illumination"}


def as_dict(event: CaptureEvent) -> dict[str, Any]:
    """``{"prompt": {...}}`` and so on: the JSON form ``capture --json`` prints."""
    return {KINDS[type(event)]: asdict(event)}
