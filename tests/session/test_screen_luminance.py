"""The screen's luminance for the illumination challenge: planned from the face's illuminance before
the window (docs/liveness.md, *The screen brighter in bright light*), carried by every Illumination
event, given to a camera that lights the kiosk itself, and capped by the panel's headroom."""

from __future__ import annotations

import math
from typing import cast

import pytest

import drivers
from agent.config import ChallengeSettings
from agent.liveness.challenge import Challenge, Kind
from agent.liveness.supervisor import check_assessment
from agent.localapi.convert import event_from_proto, event_to_proto
from agent.session.capture import _FaceLux
from agent.session.events import Illumination
from agent.session.window import UNKNOWN_LUX, Screen, screen_luminance
from drivers.base import Camera
from drivers.errors import InvalidSetting
from tests.session.test_challenge_window import Spy


def test_the_plan_raises_the_screen_only_in_a_bright_room_and_only_with_headroom():
    assert screen_luminance(600.0, 2.0, 600.0) == 2.0            # at the threshold: brighter
    assert screen_luminance(7500.0, 1.5, 600.0) == 1.5
    assert screen_luminance(599.0, 2.0, 600.0) == 1.0            # below it: the everyday luminance
    assert screen_luminance(150.0, 2.0, 600.0) == 1.0
    assert screen_luminance(None, 2.0, 600.0) == 1.0              # no lux calibration: nothing known
    assert screen_luminance(UNKNOWN_LUX, 2.0, 600.0) == 1.0
    assert screen_luminance(7500.0, 1.0, 600.0) == 1.0            # a panel without headroom


def test_the_face_lux_is_the_median_of_the_last_estimates_and_unknown_without_one():
    lux = _FaceLux(keep=3)
    assert math.isnan(lux.value())
    for v in (100.0, None, float("nan"), 6000.0, 5000.0, 5500.0):
        lux.observe(v)
    assert lux.value() == 5500.0                                   # 6000, 5000, 5500: the early 100 is gone
    lux.observe(90000.0)
    assert lux.value() == 5500.0                                   # one wild estimate does not move it


def test_settings_refuse_a_boost_below_one_or_beyond_the_panel_range():
    assert ChallengeSettings().screen_boost == 1.0                 # by default nothing changes
    for bad in ({"screen_boost": 0.5}, {"screen_boost": 9.0}, {"screen_boost": float("nan")},
                {"screen_boost_lux": 0.0}, {"screen_boost_lux": float("inf")}):
        with pytest.raises(ValueError):
            ChallengeSettings(**bad)


def sequence(spy: Spy, challenge: Challenge, luminance: float) -> list[Illumination]:
    """The window's screen commands, step by step, without reading frames (``window.run`` sends these
    at each step's first frameset: tests/session/test_challenge_window.py), then the end."""
    screen = Screen(cast(Camera, spy), challenge, 33.3, luminance)
    events = [ev for k in range(challenge.frames) if (ev := screen.at(k)) is not None]
    end = screen.end()
    assert end is not None
    return [*events, end]


def test_a_brighter_window_tells_the_app_and_the_simulated_panel_and_the_panel_caps_it():
    ch = Challenge.from_nonce(b"b" * 32, 32, (Kind.ILLUMINATION,))
    spy = Spy("sim://?realtime=0&seed=3&subject=none&screen_max_nits=450")
    events = sequence(spy, ch, 2.0)
    steps = [e for e in events if not e.end]
    assert [e.luminance for e in steps] == [2.0] * len(ch.steps) and events[-1].end
    assert events[-1].luminance == 1.0                             # the app's own screen at its own luminance
    shown = [c for c in spy.calls if c[0] == "set_illumination"]
    assert shown[:-1] == [("set_illumination", st.rgb, 2.0) for st in ch.steps]
    assert shown[-1] == ("set_illumination", (0.0, 0.0, 0.0))
    # The panel goes 1.5 times its everyday 300 nits at most: each colour landed at that.
    assert [x.state for x in spy.cam._screen.landings] == [tuple(1.5 * v for v in st.rgb) for st in ch.steps] \
        + [(0.0, 0.0, 0.0)]


def test_the_everyday_window_drives_the_panel_as_before():
    ch = Challenge.from_nonce(b"e" * 32, 32, (Kind.ILLUMINATION,))
    spy = Spy("sim://?realtime=0&seed=3&subject=none&screen_max_nits=600")
    events = sequence(spy, ch, 1.0)
    assert all(e.luminance == 1.0 for e in events)
    assert [c[1:] for c in spy.calls if c[0] == "set_illumination"] == [(st.rgb,) for st in ch.steps] + [((0.0,) * 3,)]
    assert [x.state for x in spy.cam._screen.landings] == [st.rgb for st in ch.steps] + [(0.0, 0.0, 0.0)]


def test_the_simulated_panel_refuses_a_luminance_outside_its_range():
    cam = drivers.open("sim://?realtime=0&seed=3&subject=none")
    for bad in (0.5, 9.0, float("nan"), True, "2"):
        with pytest.raises(InvalidSetting):
            cam.set_illumination((1.0, 0.0, 0.0), bad)
    with pytest.raises(drivers.errors.InvalidUri):
        drivers.open("sim://?realtime=0&screen_nits=300&screen_max_nits=200")


def test_the_luminance_crosses_the_local_api_and_an_older_agents_zero_is_everyday():
    ev = Illumination(1, (0.0, 1.0, 1.0), 4, 5, 33.25, luminance=2.0)
    msg = event_to_proto("sid", ev)
    assert event_from_proto(msg) == ev
    for sent in (0.0, float("nan"), 100.0, -1.0):
        msg.illumination.luminance = sent
        assert event_from_proto(msg).luminance == 1.0


GOOD = {"op": "assessment", "ok": False, "complete": False, "progress": 40, "prompt": "HOLD_STILL",
        "prompts": ["HOLD_STILL"], "faces_found": 1, "face": {"bbox": [200.5, 120.0, 420.0, 380.0]},
        "ir_bright_end": 180.25, "timing_ms": 21.5}


def test_the_workers_lux_reaches_the_daemon_only_checked():
    assert check_assessment({**GOOD, "lux": 5120.5}, 640, 480).lux == 5120.5
    assert check_assessment({**GOOD, "lux": None}, 640, 480).lux is None
    assert check_assessment(dict(GOOD), 640, 480).lux is None      # a worker that sends none
    for bad in (-1.0, float("inf"), float("nan"), 2e6, "5000", True):
        assert check_assessment({**GOOD, "lux": bad}, 640, 480) is None
    assert check_assessment({**GOOD, "face": None, "ir_bright_end": None, "lux": 300.0}, 640, 480) is None
