"""Does a light prompt tell a presenter which detector nearly failed? (review 27, issue 14).

The prompt after a refused verdict (``events.verdict_prompt``) is shown on the kiosk's screen, so an
attacker who varies a mask or a lamp across retries reads it each time. fan26 added the screen's pulse
(``PULSED_DETAIL``, prompt ``TOO_BRIGHT_TO_VERIFY``) and misc26 ``IR_FLOOD_CANNOT_VERIFY`` (a dim face, only
the projector or the material failed for the light). Read here as such an oracle: the prompt is a function
of the verdict's label, which challenge failed and why, the face's lux band, and (prompt25's one bit) whether
the material alone was left unmeasured with every other detector at ``live_min``; never of which other
detector was low, nor of how low."""

from __future__ import annotations

import itertools

from agent.liveness.challenge import (
    AMBIENT_DETAIL,
    DROWNED_DETAIL,
    PULSED_DETAIL,
    WEAK_SCREEN_DETAIL,
)
from agent.liveness.fusion import LivenessVerdict
from agent.session.events import IR_FLOOD_CANNOT_VERIFY, LIGHT_CHANGED, TOO_BRIGHT_TO_VERIFY, verdict_prompt
from tests.session.test_material_prompt import LIVE_MIN, OTHERS, PATTERNED

PASSED = {"passed": True, "measurable": True, "detail": "followed"}


def _failed(detail: str) -> dict[str, object]:
    return {"passed": False, "measurable": False, "detail": detail}


# The challenge's outcomes a verdict can carry to the prompt: both passed, or one or both not measurable
# for the light (a contradiction is an attack: told nothing, below).
CHALLENGES = {
    "passed": (PASSED, PASSED),
    "screen pulsed": (_failed(PULSED_DETAIL), PASSED),
    "screen weak": (_failed(WEAK_SCREEN_DETAIL), PASSED),
    "screen shadow": (_failed(AMBIENT_DETAIL), PASSED),
    "dots drowned": (PASSED, _failed(DROWNED_DETAIL)),
    "screen pulsed, dots drowned": (_failed(PULSED_DETAIL), _failed(DROWNED_DETAIL)),
}
LUX = (40.0, 199.0, 200.0, 1500.0, None)


def _challenge(name: str) -> dict[str, object]:
    screen, dots = CHALLENGES[name]
    passed = screen["passed"] is True and dots["passed"] is True
    return {"passed": passed, "kinds": ["illumination", "projector"], "illumination": screen, "projector": dots,
            "detail": "x"}


def _prompt(label: str, challenge: str, detectors: dict[str, float], lux: float | None) -> str | None:
    v = LivenessVerdict(label, 0.45, detectors, [], {}, True, _challenge(challenge), {}, [], PATTERNED)
    told = verdict_prompt(v, LIVE_MIN, lux)
    return None if told is None else told.code


def test_no_prompt_says_which_other_detector_was_low_or_how_low():
    for challenge, lux, material in itertools.product(CHALLENGES, LUX, (None, 0.3, 1.0)):
        base = {**OTHERS, **({} if material is None else {"material": material})}
        seen = {_prompt("inconclusive", challenge, {**base, low: value}, lux)
                for low in OTHERS for value in (0.05, 0.3, LIVE_MIN - 0.01)}
        assert len(seen) == 1, (challenge, lux, material, seen)       # one prompt whichever and however low
        # Every other detector live and the material unmeasured: prompt25's one bit (the material), no more.
        if material is None and challenge == "passed":
            assert _prompt("inconclusive", challenge, base, lux) in (TOO_BRIGHT_TO_VERIFY.code,
                                                                      IR_FLOOD_CANNOT_VERIFY.code)
            assert seen == {None}


def test_the_pulse_and_the_flood_name_the_light_never_a_detector_and_an_attack_is_told_nothing():
    for lux in LUX:
        # A pulsing lamp on the screen's colours is the visible room's light: never the flood's prompt.
        assert _prompt("inconclusive", "screen pulsed", OTHERS, lux) == TOO_BRIGHT_TO_VERIFY.code
        assert _prompt("inconclusive", "screen pulsed, dots drowned", OTHERS, lux) == TOO_BRIGHT_TO_VERIFY.code
        assert _prompt("inconclusive", "screen shadow", OTHERS, lux) == LIGHT_CHANGED.code
        dim = lux is not None and lux < 200.0
        flood = IR_FLOOD_CANNOT_VERIFY.code if dim else TOO_BRIGHT_TO_VERIFY.code
        assert _prompt("inconclusive", "dots drowned", OTHERS, lux) == flood
        # An attack learns nothing, whatever hid the challenge and whatever the detectors said.
        for challenge in CHALLENGES:
            for low in (None, *OTHERS):
                dets = OTHERS if low is None else {**OTHERS, low: 0.0}
                assert _prompt("attack", challenge, dets, lux) is None
