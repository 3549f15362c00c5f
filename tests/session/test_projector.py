"""The projector power planner: headroom rules, and what it will not count as evidence."""

from __future__ import annotations

import pytest

import drivers
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import framesets
from agent.quality import QualityGate
from agent.session.projector import (
    LOWER_ABOVE_DN,
    MAX_STEP_UP,
    RAISE_BELOW_DN,
    TARGET_DN,
    Projector,
    skin_bright_end,
)
from drivers.base import Capability


@pytest.fixture()
def planner():
    cam = drivers.open("sim://?realtime=0&seed=8")
    p = Projector(cam)
    cam.start()
    p.begin()
    yield p
    cam.stop()


def test_headroom_rules(planner):
    assert planner.plans_power and planner.power == 150.0
    # Dim skin: raised toward the target, never more than MAX_STEP_UP at once, never past the range.
    assert planner.propose(100.0) == 300.0                       # 150 x 200/100
    assert planner.propose(20.0) == 360.0                        # capped by the range
    planner.power = 60.0
    assert planner.propose(20.0) == 60.0 * MAX_STEP_UP
    planner.power = 150.0
    # Within the band: left alone.
    assert planner.propose(RAISE_BELOW_DN + 1) == 150.0 and planner.propose(LOWER_ABOVE_DN - 1) == 150.0
    # Bright: lowered to put the bright end at the target; clipped: a fixed step down.
    assert planner.propose(245.0) == 120.0                       # 150 x 200/245 = 122 -> 120
    assert planner.propose(105.0) == 270.0                       # 150 x 200/105 = 286 -> 270, under the target
    assert planner.propose(255.0) == 90.0                        # 150 x 0.7 = 105 -> 90 (rounded down)
    # Never below a third of the default: the depth stream needs its texture.
    planner.power = 60.0
    assert planner.propose(255.0) == 60.0
    assert TARGET_DN < LOWER_ABOVE_DN


def test_observation_steers_the_camera_and_skips_stale_frames():
    cam = drivers.open("sim://?realtime=0&seed=8&lux=2400&cct=3300")
    gate = QualityGate()
    p = Projector(cam)
    with cam:
        p.begin()
        fs = next(framesets(cam, 1, per_frameset=True))
        a = align_frameset(fs)
        face = gate.measure(a).face
        bright = skin_bright_end(a, face)
        assert bright < RAISE_BELOW_DN                            # warm bright light: dim dots
        p.observe(a, face)
        assert p.power == 360.0 and p.changes == 1               # one raise
        # The same frame again was taken at 150 mW, not the power now set: not evidence.
        p.observe(a, face)
        assert p.observations == 1
        later = [align_frameset(f) for f in framesets(cam, 3, per_frameset=True)]
        assert later[-1].frameset.ir.metadata.projector_power_mw == 360.0
        p.observe(later[-1], gate.measure(later[-1]).face)
        assert p.settled and p.power == 360.0
        p.end()
        assert p.power == 150.0
        # An unlit frame says nothing about the dots.
        cam.set_projector(False)
        dark = [align_frameset(f) for f in framesets(cam, 3, per_frameset=True)][-1]
        n = p.observations
        p.observe(dark, gate.measure(dark).face)
        assert p.observations == n


def test_cameras_without_power_control_are_left_alone():
    cam = drivers.open("sim://?realtime=0&seed=8")
    cam.capabilities = cam.capabilities - {Capability.PROJECTOR_POWER}
    p = Projector(cam)
    assert not p.plans_power
    p.begin()
    p.end()
    assert p.power is None and p.to_dict()["changes"] == 0
