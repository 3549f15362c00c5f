"""Issue 14, defect 2 (the sixth family's open shade): a camera whose IR skin clips.

The Astra Mini S Pro's IR exposure is the host's to set (Orbbec SDK v2, OpenNI2: drivers/sim/
profiles.py [AMS-IR]) while its own stays fixed; the exposure plan meters the skin the material
measure reads; a cut that starves the structured-light depth is undone; and skin that stays clipped
after every cure the camera allows is a prompt the person can act on (``IR_TOO_BRIGHT``), not a
silent inconclusive."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import drivers
from agent.liveness.features import ir_skin, material_skin
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import framesets
from agent.pipeline.sync import SyncTimeout
from agent.quality import QualityGate
from agent.quality.prompts import BY_CODE
from agent.session import capture as daemon
from agent.session.errors import StageTimeout
from agent.session.projector import (
    BRIGHT_PERCENTILE,
    CLIP_PERSIST,
    SPARSE_BACKOFF,
    STEP_DOWN_SATURATED,
    ClippedSkin,
    ExposurePlan,
    Projector,
    skin_bright_end,
)
from drivers.base import ExposureSetting
from drivers.frame import StreamKind

IR = StreamKind.IR
# Open shade's light level on the sixth family's camera, without the family's people.
MINI_S = ("sim://?subject=live&camera=astra_mini_s&lux=2400&cct=6500&distance_mm=420&seed=5&realtime=0"
          "&color_mode=640x480@30")


def _lit_ir(cam):
    while (f := cam.read(5.0)).stream is not IR or f.metadata.projector_on is False:
        pass
    return f


def test_an_astra_mini_s_takes_the_ir_exposure_the_host_sets_and_holds_its_own_fixed():
    with drivers.open(MINI_S) as cam:
        cam.start()
        assert _lit_ir(cam).metadata.exposure_us == pytest.approx(6600, abs=1)   # its own: fixed
        got = cam.lock_exposure(IR, ExposureSetting(2200.0, 1.0))
        assert got.exposure_us == pytest.approx(2200.0)
        for _ in range(3):
            f = _lit_ir(cam)
        assert f.metadata.exposure_us == pytest.approx(2200, abs=1)
        cam.unlock_exposure(IR)


def test_the_plan_meters_the_skin_the_material_measure_reads():
    gate = QualityGate()
    with drivers.open(MINI_S) as cam:
        a = align_frameset(next(framesets(cam, 1, per_frameset=True)))
    face = gate.measure(a).face
    assert face is not None
    region, patches = material_skin(a, face), ir_skin(a, face)
    assert region is not None and patches is not None and region.mask.sum() > patches.mask.sum()
    px = a.frameset.ir.pixels
    assert skin_bright_end(a, face) == float(np.percentile(px[region.box][region.mask], BRIGHT_PERCENTILE))


def test_a_cut_that_leaves_the_depth_sparse_is_undone_and_becomes_the_floor():
    with drivers.open(MINI_S) as cam:
        cam.start()
        p = Projector(cam)
        p.begin()
        plan = ExposurePlan(cam, p)
        assert plan.active and not p.plans_power
        ir = _lit_ir(cam)
        auto = ir.metadata.exposure_us
        plan.observe_skin(ir, True, lambda: 255.0)               # clipped: a step down
        assert plan.setting.exposure_us == pytest.approx(auto * STEP_DOWN_SATURATED, rel=0.01)
        for _ in range(3):
            ir = _lit_ir(cam)
        assert ir.metadata.exposure_us == pytest.approx(plan.setting.exposure_us, rel=0.02)
        for _ in range(SPARSE_BACKOFF):                          # the gate finds the face's depth sparse
            assert plan.floor_us is None
            plan.observe_skin(ir, True, lambda: 255.0, depth_sparse=True)
        assert plan.floor_us == pytest.approx(auto) and plan.setting.exposure_us == pytest.approx(auto)
        for _ in range(3):
            ir = _lit_ir(cam)
        assert ir.metadata.exposure_us == pytest.approx(auto, abs=1)
        plan.observe_skin(ir, True, lambda: 255.0)               # still clipped, but no cut below the floor
        assert plan.settled and plan.setting.exposure_us == pytest.approx(auto)
        plan.end()
        p.end()


def _frame(on: bool | None = True):
    return SimpleNamespace(metadata=SimpleNamespace(projector_on=on))


def _clipped(*, power: bool = False, floor: bool = True, settled: bool = True) -> ClippedSkin:
    projector = SimpleNamespace(switchable=True, plans_power=power, at_floor=floor, settled=True)
    return ClippedSkin(projector, SimpleNamespace(settled=settled))  # type: ignore[arg-type]  # the two attributes read


def test_skin_clipped_after_every_cure_on_consecutive_lit_frames_is_uncured():
    c = _clipped()
    for _ in range(CLIP_PERSIST):
        assert not c.uncured
        c.observe_skin(_frame(), True, lambda: 252.0)
    assert c.uncured
    c.observe_skin(_frame(False), True, lambda: 100.0)            # unlit: not evidence either way
    assert c.uncured
    c.observe_skin(_frame(), True, lambda: 240.0)                 # under saturation: cured
    assert not c.uncured and c.streak == 0


def test_clipped_skin_counts_only_once_the_cures_have_done_what_they_can():
    moving = _clipped(settled=False)                   # the exposure plan still moving
    powered = _clipped(power=True, floor=False)        # the power can still come down
    for c in (moving, powered):
        for _ in range(CLIP_PERSIST + 2):
            c.observe_skin(_frame(), True, lambda: 255.0)
        assert not c.uncured and c.streak == 0
    at_floor = _clipped(power=True, floor=True)
    no_face = _clipped()
    for _ in range(CLIP_PERSIST):
        at_floor.observe_skin(_frame(), True, lambda: 255.0)
        no_face.observe_skin(_frame(), False, lambda: 255.0)
    assert at_floor.uncured and not no_face.uncured
    fixed = ClippedSkin(SimpleNamespace(switchable=False, plans_power=False, at_floor=False,
                                        settled=True), SimpleNamespace(settled=True))
    for _ in range(CLIP_PERSIST):
        fixed.observe_skin(_frame(), True, lambda: 255.0)
    assert not fixed.uncured                           # no projector challenge: no material measure at stake


class _Reader:
    def __init__(self, n: int):
        self.n = n

    def stream(self, *, timeout_s, cancelled=None, per_frameset=False, own_time=False):   # FramesetReader's
        yield from range(self.n)
        raise SyncTimeout("no frameset in time")


def test_the_daemons_quality_loop_waits_while_the_session_holds_it_and_says_why_on_timeout():
    deps = SimpleNamespace(settings=SimpleNamespace(quality_timeout_s=1.0))
    gate = SimpleNamespace(evaluate=lambda fs, face_metered: SimpleNamespace(prompt=None, complete=True))
    metering = SimpleNamespace(active=False)
    held = iter(["IR_TOO_BRIGHT", "IR_TOO_BRIGHT"])
    seen = [fs for fs, _ in daemon._quality_loop(deps, _Reader(10), gate, metering, SimpleNamespace(is_set=bool),
                                                  hold=lambda: next(held, None))]
    assert seen == [0, 1, 2]                           # complete from the first, held for two
    with pytest.raises(StageTimeout, match="last prompt: IR_TOO_BRIGHT"):
        list(daemon._quality_loop(deps, _Reader(4), gate, metering, SimpleNamespace(is_set=bool),
                                  hold=lambda: "IR_TOO_BRIGHT"))


@pytest.mark.parametrize("gate_says, shown", [(None, "IR_TOO_BRIGHT"), ("DEPTH_SPARSE", "IR_TOO_BRIGHT"),
                                               ("OPEN_EYES", "OPEN_EYES")])
def test_the_sessions_prompt_is_shown_unless_the_gate_has_a_more_urgent_one(gate_says, shown):
    # DEPTH_SPARSE is the camera's, last in priority: what the person can change is asked first.
    a = SimpleNamespace(prompt=BY_CODE[gate_says] if gate_says else None, progress=100)
    events = [e for e in daemon._Prompter().events(a, BY_CODE["IR_TOO_BRIGHT"]) if hasattr(e, "code")]
    assert [e.code for e in events] == [shown]
