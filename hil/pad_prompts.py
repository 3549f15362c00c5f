"""pad-eval's people who follow prompts (``--follow-prompts N``; see ``hil.padeval``'s docstring).

A presentation refused with a prompt the presenter can answer is presented again as they answered
it: ``followed_uri`` is the same scene with only what the answer changes (the distance, the lux or
shade, the scene's time, the cap); ``run_following`` presents it until it is not refused with such a
prompt or the re-attempts run out. The report's side of it (``light_prompts``, ``prompts_followed``)
is in ``hil.pad_report``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from agent.session.events import IR_FLOOD_CANNOT_VERIFY, LIGHT_CHANGED
from drivers.sim.families import light_for
from hil.pad_presentations import Presentation

# The prompts a person answers by stepping along the camera's axis, and the direction (mm, + away).
# IR_TOO_BRIGHT ("step back a little or move out of direct light"), in the quality phase: the simulated
# person steps back (the projector's dots dim with the square of the distance; the ambient light on
# the face does not change). After a judged window, TOO_BRIGHT_TO_VERIFY: into shade (LIGHT_PROMPTS);
# LIGHT_CHANGED: the same place and light, a few seconds later (RETRY_PROMPTS).
DISTANCE_PROMPTS = {"MOVE_CLOSER": -1.0, "MOVE_BACK": 1.0, "IR_TOO_BRIGHT": 1.0}
# One answer to "please move a little closer": the head comes forward by a lean or a half step, not
# a stride. The step the gate needs at the envelope's far end is about 50 mm (on the fifth family's
# Gemini 336L the faces refused MOVE_CLOSER measured 50-60 px at 464-520 mm, 60 px is reached near
# 470 mm: docs/liveness.md); a lean of the trunk moves the head 50-100 mm and a half step about as
# much, so the mean step is 70 mm with a standard deviation of 25 mm, clipped to 20-150 mm: some
# people barely move (the same prompt then comes again), some overshoot (and may hear MOVE_BACK).
# TOO_BRIGHT_TO_VERIFY ("move out of the bright light", after a challenge the ambient light left
# unmeasurable: ``agent.session.events.challenge_unmeasurable``, as the daemon decides it): the person
# steps into shade, a model, not a measurement: the light on the face, ``lux`` and with it the
# ambient NIR (the simulator's is proportional to it), falls by ``SHADE_FACTOR``; from open shade
# (1,000-7,000 lux in the sixth family) under an awning or a lobby's overhang, a quarter of it. Every
# other key is kept: the same light source and colour temperature, the same distance.
LIGHT_PROMPTS = {"TOO_BRIGHT_TO_VERIFY": 4.0}
SHADE_FACTOR = LIGHT_PROMPTS["TOO_BRIGHT_TO_VERIFY"]
# Where the bright light is not the room's ``lux`` (issue 14, twenty-fourth session), the step into shade
# is what takes the face out of that light, not a dimmer room:
# - in direct sun (``direct_sun``: the beam is 65 % of the lux, sun.py) or under a tree's sunflecks
#   (``dappled_sun``: 2,000-10,000 lux of direct sun on top of the canopy's 200-1,500, lobby.py), the
#   person steps a pace into the shadow of the canopy, the kiosk's hood or the denser foliage, out of the
#   sun: ``shade=1`` (the simulator: the whole face on the edge's shaded side, 0.35 of the lux; or no
#   fleck, the canopy's lux kept, for the gaps' sun is what was bright). Striped by low sun through
#   venetian blinds (``blinds``, the fourteenth family: sun.Blinds), the person steps aside out of the
#   stripes: ``shade=1``, the whole face in the blind's shade (0.10-0.30 of the lux). Already in that shade
#   (``shade=1``), a further prompt finds no more sun to leave: the open-shade answer above.
# - at night under a forecourt's canopy with passing cars' headlamps (``headlights``): the canopy's
#   15-80 lux are not what was bright, and no step takes a face out of a beam that sweeps the whole
#   forecourt from the road; by the time the prompt is read the car has passed: the person stays where
#   they are and tries again (``RETRY_PROMPTS``'s answer: the same light, the scene's lights later).
SUN_LIGHTS = frozenset({"direct_sun", "dappled_sun", "blinds"})
SWEPT_LIGHTS = frozenset({"headlights"})
# LIGHT_CHANGED ("the light on your face changed during the check: hold still and try again", after a
# window a passing shadow or another uncommanded change of the room's light left unmeasurable): the
# person stays where they are, in the same light, and tries again a little later. The simulator starts
# every session at scene time 0, so the retry starts the scene's lights at ``t0_s`` = the previous
# attempt's start + its camera time (``camera_s``) + ``RETRY_PAUSE_S``: reading the prompt (20
# characters, about 1 s at a reading speed of ~300 Chinese characters a minute) and the app's
# restart of the session (a tap or its own retry, about 1-2 s); 3 s, a model. Nothing else changes.
RETRY_PROMPTS = frozenset({LIGHT_CHANGED.code})
# IR_FLOOD_CANNOT_VERIFY ("infrared light here keeps the check from working: please ask staff", after a window
# whose projector a light the person cannot see hid on a dim face: a CCTV dome's flood, ``cctv_ir``): nothing
# the person can do takes the face out of it (the dome is on the camera's side, 1-3 m away, so a pace moves
# the face a little within the flood, and the face must stay towards the camera), so the person does as
# told and tries no more here: the presentation ends refused. (Before misc26 the prompt was
# TOO_BRIGHT_TO_VERIFY, answered by a quarter of the lux, which dims the lobby's LEDs but not the flood.)
STOP_PROMPTS = frozenset({IR_FLOOD_CANNOT_VERIFY.code})
# An attacker is not bound by that "ask staff" (review 27): the prompt comes after the strike, the kiosk lets
# any presenter start a new session while the lockout leaves tries, and nothing in the terminal changes
# with the prompt. pad-eval's attacker (``kind`` not ``bona_fide``) answers it as the retry prompts: the
# same place and light, a few seconds later (``t0_s``). Before, it stopped as the person does, and the
# after-prompts APCER counted refused what a real attacker would have tried again.
_LIGHT_OR_RETRY = frozenset(LIGHT_PROMPTS) | RETRY_PROMPTS
# FACE_HEADWEAR ("please take off your hat or cap": something in front of the eyes, nothing below them, as a
# brim pulled over them) refuses the quality phase; the person takes the cap off and tries again (``cap=0``,
# added at the end when absent: the sixteenth family's caps, drivers/sim/identity.CAP_*), an attacker as well
# (a mask or a print under a cap is presented without it). Answered as the distance prompts are.
HEADWEAR_PROMPTS = frozenset({"FACE_HEADWEAR"})
RETRY_PAUSE_S = 3.0
_SIM_T0_S = 3600.0                           # what a sim:// URI accepts (drivers/sim/config.py)
_SIM_LUX = (1.0, 100000.0)                   # what a sim:// URI accepts (drivers/sim/config.py)
PROMPT_STEP_MM = 70.0
PROMPT_STEP_SD_MM = 25.0
PROMPT_STEP_RANGE_MM = (20.0, 150.0)
_SIM_DISTANCE_MM = (150.0, 3000.0)           # what a sim:// URI accepts (drivers/sim/config.py)
_FOLLOW_SALT = 0x70F0                       # the step's own stream, apart from the scene's draws


def prompt_step_mm(seed: int, attempt: int) -> float:
    """How far the person of presentation seed ``seed`` moves answering the prompt before attempt
    ``attempt`` (1 = the first re-presentation): deterministic in both."""
    rng = np.random.default_rng([int(seed), int(attempt), _FOLLOW_SALT])
    return float(np.clip(rng.normal(PROMPT_STEP_MM, PROMPT_STEP_SD_MM), *PROMPT_STEP_RANGE_MM))


def followed_uri(uri: str, reason: str, attempt: int, camera_s: float = 0.0) -> str:
    """The presentation ``uri`` again after its person answered the distance prompt ``reason``
    (``DISTANCE_PROMPTS``): only ``distance_mm`` changes, by :func:`prompt_step_mm` of the URI's own
    seed; or the light prompt ``reason`` (``LIGHT_PROMPTS``): only ``lux`` changes, divided by its
    factor, save where the bright light is the sun's (``SUN_LIGHTS``: only ``shade=1`` is set, added at
    the end when absent) or a passing headlamp's (``SWEPT_LIGHTS``: the retry's answer); or the retry
    prompt ``reason`` (``RETRY_PROMPTS``): only ``t0_s`` changes (added at the end when absent),
    advanced by the previous attempt's camera time ``camera_s`` and ``RETRY_PAUSE_S``; a stop prompt
    (``STOP_PROMPTS``, which only an attacker answers) as a retry prompt; or ``FACE_HEADWEAR``
    (``HEADWEAR_PROMPTS``): only ``cap`` changes, to 0 (added at the end when absent).
    Every other key (identity, light, pose, background, seed) is kept, in its order."""
    base, query = uri.split("?", 1)
    pairs = [kv.split("=", 1) for kv in query.split("&")]
    q = dict(pairs)
    if reason in HEADWEAR_PROMPTS:
        if "cap" not in q:
            return f"{uri}&cap=0"
        return base + "?" + "&".join(f"{k}={'0' if k == 'cap' else v}" for k, v in pairs)
    if reason in LIGHT_PROMPTS:
        light = light_for(q.get("family", "any"), int(q.get("identity", "0")), q.get("light"))
        if light in SUN_LIGHTS and q.get("shade", "0") in ("0", "false", "off", "no"):
            if "shade" not in q:
                return f"{uri}&shade=1"
            return base + "?" + "&".join(f"{k}={'1' if k == 'shade' else v}" for k, v in pairs)
        if light in SWEPT_LIGHTS:
            reason = LIGHT_CHANGED.code
    if reason in RETRY_PROMPTS or reason in STOP_PROMPTS:
        if not (math.isfinite(camera_s) and camera_s >= 0):
            raise ValueError(f"camera_s must be a finite time >= 0, got {camera_s!r}")
        t0 = str(round(min(float(q.get("t0_s", "0")) + camera_s + RETRY_PAUSE_S, _SIM_T0_S), 3))
        if "t0_s" not in q:
            return f"{uri}&t0_s={t0}"
        return base + "?" + "&".join(f"{k}={t0 if k == 't0_s' else v}" for k, v in pairs)
    if reason in LIGHT_PROMPTS:
        lux = str(round(min(max(float(q["lux"]) / LIGHT_PROMPTS[reason], _SIM_LUX[0]), _SIM_LUX[1]), 1))
        return base + "?" + "&".join(f"{k}={lux if k == 'lux' else v}" for k, v in pairs)
    step = prompt_step_mm(int(q.get("seed", "0")), attempt)
    d = float(q["distance_mm"]) + DISTANCE_PROMPTS[reason] * step
    moved = str(round(min(max(d, _SIM_DISTANCE_MM[0]), _SIM_DISTANCE_MM[1])))
    return base + "?" + "&".join(f"{k}={moved if k == 'distance_mm' else v}" for k, v in pairs)


def _prompt_to_follow(rec: dict[str, Any]) -> str | None:
    """The prompt a person acts on after this attempt: a distance prompt or ``FACE_HEADWEAR`` that
    refused the quality phase, or ``TOO_BRIGHT_TO_VERIFY`` or ``LIGHT_CHANGED`` after a judged window
    (``prompt``, as the daemon emits it). After ``STOP_PROMPTS`` None for a bona fide person (no step answers them); an
    attacker or injector tries again (:func:`followed_uri`: the retry's answer)."""
    if rec["outcome"] == "not_acquired" and (rec.get("reason") in DISTANCE_PROMPTS
                                             or rec.get("reason") in HEADWEAR_PROMPTS):
        return str(rec["reason"])
    if rec["outcome"] == "rejected" and rec.get("prompt") in _answered(rec.get("kind")):
        return str(rec["prompt"])
    return None


def _answered(kind: Any) -> frozenset[str]:
    """The prompts after a judged window that a presenter of ``kind`` answers with another attempt: the
    light and retry prompts, and for anyone not ``bona_fide`` the stop prompts too (an attacker is not
    bound by "ask staff")."""
    return _LIGHT_OR_RETRY if kind == "bona_fide" else _LIGHT_OR_RETRY | STOP_PROMPTS


def run_following(p: Presentation, follow_prompts: int, attempt: Callable[[Presentation], dict[str, Any]]
                  ) -> dict[str, Any]:
    """``p`` presented by ``attempt``, and again while it is refused with a distance prompt, its
    person moved as told (:func:`followed_uri`), at most ``follow_prompts`` more times. The record is
    the last attempt's with the presentation's own ``uri`` (its drawn conditions), ``final_uri``,
    ``follow_prompts`` and every attempt's record in ``attempts`` (the first is the record the
    presentation gets without following prompts)."""
    attempts = [attempt(p)]
    while len(attempts) <= follow_prompts and (told := _prompt_to_follow(attempts[-1])) is not None:
        moved = dataclasses.replace(p, uri=followed_uri(attempts[-1]["uri"], told, len(attempts),
                                                        float(attempts[-1].get("camera_s") or 0.0)))
        attempts.append(attempt(moved))
    last = attempts[-1]
    return {**last, "key": p.key, "uri": p.uri, "final_uri": last["uri"], "follow_prompts": follow_prompts,
            "attempts": attempts}
