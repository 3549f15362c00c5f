"""The IR exposure planned from the skin's headroom (``projector.ExposurePlan``): when the projector's
power cannot bring clipped dots down (a Gemini 335 has no power setting), a shorter IR exposure,
held through the challenge window, gives the material measure two-sided pairs; dots drowned by
ambient NIR get a longer exposure, up to a ceiling; a scene whose dots neither clip nor drown, and a
camera that cannot lock its IR exposure, run exactly as before; a cut never lengthens the exposure
and a raise never passes the ceiling nor the target; the probe's quality report carries the planned
value."""

from __future__ import annotations

import hashlib

import pytest

import drivers
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import judge
from agent.purpose import Purpose
from agent.quality import QualityGate
from agent.session import capture as daemon
from agent.session.capture import run_capture
from agent.session.errors import ExposureNotHeld
from agent.session.events import as_dict
from agent.session.offline import capture
from agent.session.projector import (
    FILL_BELOW_DN,
    LOWER_ABOVE_DN,
    MAX_RAISED_EXPOSURE_US,
    MAX_STEP_UP,
    MIN_EXPOSURE_SHARE,
    RAISE_BELOW_DN,
    SATURATED_DN,
    TARGET_DN,
    ExposurePlan,
    Projector,
)
from agent.session.request import CaptureRequest
from agent.session.window import ExposureHold
from drivers.base import CameraWrapper, Capability, ExposureSetting
from drivers.errors import CapabilityUnsupported
from drivers.frame import StreamKind
from tests.helpers.live import until_accepted

IR = StreamKind.IR
NONCE = bytes(range(32))
# Field live #36 of pad-eval: a Gemini 335 at 36 cm in dim halogen light; at the auto-exposure 7 of
# its 8 pairs clip on more than 2 % of the skin, and the material measure is not measurable.
CLIPS = ("sim://?subject=live&family=field&identity=714&seed=1186091344&camera=gemini335&light=halogen"
         "&cct=3012&lux=21.7&distance_mm=359&yaw=-10.5&pitch=-8.2&background=plain&realtime=0")
CALM = "sim://?subject=live&camera=gemini335&identity=4&seed=3&lux=300&distance_mm=600&realtime=0"


class Uvc(CameraWrapper):
    """The simulator as a camera that switches its projector but has neither a power setting nor an
    IR exposure lock (a UVC-like device); every lock call written down."""

    def __init__(self, inner):
        super().__init__(inner)
        self.capabilities = inner.capabilities - {Capability.PROJECTOR_POWER, Capability.EXPOSURE_LOCK_IR}
        self.locks: list[tuple[StreamKind, ExposureSetting | None]] = []

    def lock_exposure(self, stream, setting=None):
        self.locks.append((stream, setting))
        return super().lock_exposure(stream, setting)


def _capture(uri, monkeypatch=None, *, plan=True, wrap=None):
    if not plan:
        monkeypatch.setattr(ExposurePlan, "observe", lambda self, aligned, face, depth_sparse=False: None)
    cam = drivers.open(uri)
    cam = wrap(cam) if wrap else cam
    with cam:
        gate = QualityGate()
        c = capture(cam, 32, NONCE, gate)
        r = judge(c.sets, gate, VerdictThresholds(), challenge=c.challenge, notes=c.notes)
    if not plan:
        monkeypatch.undo()
    return c, r, cam


def _digest(sets) -> str:
    h = hashlib.sha256()
    for fs in sets:
        for f in (fs.depth, fs.ir, fs.color):
            if f is not None:
                h.update(f.pixels.tobytes())
                h.update(repr((f.frame_number, f.timestamp_ms, f.metadata)).encode())
    return h.hexdigest()


def test_clipped_dots_get_a_shorter_ir_exposure_and_the_pairs_become_two_sided(monkeypatch):
    before, r0, _ = _capture(CLIPS, monkeypatch, plan=False)
    after, r1, _ = _capture(CLIPS)
    auto = {fs.ir.metadata.exposure_us for fs in before.sets}
    held = {fs.ir.metadata.exposure_us for fs in after.sets}
    assert len(auto) == 1 and len(held) == 1            # one exposure through each window
    (a,), (h,) = auto, held
    assert a * MIN_EXPOSURE_SHARE <= h < 0.9 * a
    assert any("IR exposure held at" in n for n in after.notes)
    # Before: most pairs clipped, too few two-sided ones to show skin; after: two-sided pairs.
    c0, c1 = r0.verdict.cues, r1.verdict.cues
    assert c0.get("projector_pairs", 0) < 3 and c0.get("projector_clipped_pairs", 0) >= 5
    assert c1.get("projector_pairs", 0) >= 3 and c1.get("projector_pairs", 0) > c1.get("projector_clipped_pairs", 0)
    assert "material" not in r0.verdict.detectors and "material" in r1.verdict.detectors   # measurable now


# Field live #7 of pad-eval: a Gemini 335 at 52 cm under 1,200 lux of halogen light; its auto-exposure
# is short for the ambient NIR, and at it the projector's dots stand 4.1 noise deviations above the
# difference's noise: every pair one-sided, material not measurable, the person refused.
DROWNED = ("sim://?subject=live&family=field&identity=741&seed=1856788334&camera=gemini335&light=halogen"
           "&cct=3159&lux=1201.4&distance_mm=520&yaw=7.3&pitch=5.1&background=clutter&realtime=0")


def test_dim_dots_under_ambient_nir_get_a_longer_ir_exposure_up_to_the_ceiling():
    # The skin's bright end under half the range, on a camera with no power to raise: the plan
    # lengthens the IR exposure (ambient and dots alike), locks it, and the next frames report it;
    # never past MAX_RAISED_EXPOSURE_US, never with the bright end past TARGET_DN.
    with drivers.open(DROWNED) as cam:
        cam.start()
        p = Projector(cam)
        p.begin()
        plan = ExposurePlan(cam, p)
        assert plan.active and not p.plans_power
        def lit_ir():
            while (f := cam.read(5.0)).stream is not IR or f.metadata.projector_on is False:
                pass
            return f

        ir = lit_ir()
        auto = ir.metadata.exposure_us
        assert auto < MAX_RAISED_EXPOSURE_US / 2           # the auto-exposure shortened it for the ambient
        plan.observe_skin(ir, True, lambda: 60.0)
        assert plan.setting is not None and not plan.settled
        assert plan.setting.exposure_us == pytest.approx(auto * min(TARGET_DN / 60.0, MAX_STEP_UP), rel=0.02)
        for _ in range(3):
            ir = lit_ir()
        assert ir.metadata.exposure_us == pytest.approx(plan.setting.exposure_us, rel=0.02)
        # A raise under way fills the range: at 150 DN (past RAISE_BELOW_DN, under FILL_BELOW_DN) the
        # plan goes on to TARGET_DN (the first step had stopped at MAX_STEP_UP).
        first = plan.setting.exposure_us
        plan.observe_skin(ir, True, lambda: 150.0)
        assert not plan.settled
        assert plan.setting.exposure_us == pytest.approx(first * TARGET_DN / 150.0, rel=0.02)
        for _ in range(3):
            ir = lit_ir()
        assert ir.metadata.exposure_us == pytest.approx(plan.setting.exposure_us, rel=0.02)
        # At the longer exposure the bright end is where it was asked for: steady.
        plan.observe_skin(ir, True, lambda: TARGET_DN - 5)
        assert plan.settled
        plan.end()
        p.end()


def test_a_scene_whose_dots_do_not_clip_runs_bit_identical(monkeypatch):
    before, _, _ = _capture(CALM, monkeypatch, plan=False)
    after, _, _ = _capture(CALM)
    assert not any("IR exposure" in n for n in after.notes)
    assert _digest(before.sets) == _digest(after.sets)


def test_a_camera_without_power_and_without_an_ir_lock_is_unchanged(monkeypatch):
    before, _, cam0 = _capture(CLIPS, monkeypatch, plan=False, wrap=Uvc)
    after, _, cam1 = _capture(CLIPS, wrap=Uvc)
    assert cam0.locks == cam1.locks and all(s is None for _, s in cam1.locks)
    assert IR not in {k for k, _ in cam1.locks}
    assert _digest(before.sets) == _digest(after.sets)


def test_a_cut_never_lengthens_and_a_raise_never_passes_the_ceiling_nor_the_target():
    # Whatever the skin's bright end (a lamp an attacker holds up, a dim mask): a cut (above the
    # headroom) is never above the exposure it was measured at, nor above the auto-exposure's, nor
    # below the floor; a raise (under RAISE_BELOW_DN) is never above MAX_RAISED_EXPOSURE_US (the
    # exposure of any session in dim light) and never puts the bright end above TARGET_DN (all the
    # skin's light grows with the exposure); between the two nothing changes.
    with drivers.open(CLIPS) as cam:
        plan = ExposurePlan(cam, Projector(cam))
        assert plan.active
        for auto in (8000.0, 2000.0):
            plan.auto = ExposureSetting(auto, 1.0)
            for current in (auto, auto * 0.6, auto * 0.34, auto * 1.5, 8400.0):
                for bright in range(256):
                    new = plan.propose(float(bright), current)
                    if bright > LOWER_ABOVE_DN:
                        assert new <= current and new <= auto
                        assert new >= min(current, auto * MIN_EXPOSURE_SHARE)
                        if bright >= SATURATED_DN and current * 0.7 >= auto * MIN_EXPOSURE_SHARE \
                                and current <= auto:
                            assert new == pytest.approx(current * 0.7)
                    elif bright < RAISE_BELOW_DN or (current > auto * 1.01 and bright < FILL_BELOW_DN):
                        assert current <= new <= max(current, MAX_RAISED_EXPOSURE_US)
                        assert bright * new / current <= max(TARGET_DN, bright) + 1e-9
                        assert new <= current * MAX_STEP_UP
                    else:
                        assert new == current


def test_a_camera_that_plans_power_plans_no_exposure_until_the_power_is_at_its_floor_or_ceiling():
    with drivers.open("sim://?subject=live&realtime=0&seed=3") as cam:      # a D435: power 0-360 mW
        cam.start()
        p = Projector(cam)
        p.begin()
        assert p.plans_power and not p.at_floor and not p.at_ceiling
        plan = ExposurePlan(cam, p)
        assert not plan._needed(250.0) and not plan._needed(60.0)
        p._apply(p.range.snap(p.range.default / 3))
        p._steady = True
        assert p.at_floor and plan._needed(250.0) and not plan._needed(60.0)
        p._apply(p.range.maximum)
        p._steady = True
        assert p.at_ceiling and plan._needed(60.0) and not plan._needed(250.0) and not plan._needed(150.0)


def test_the_probes_quality_report_holds_the_planned_ir_exposure(make_deps, monkeypatch):
    seen: list[dict] = []
    planned: list[dict] = []
    real = daemon.build_payload

    def spy(*a, **kw):
        seen.append(kw["quality"])
        return real(*a, **kw)
    monkeypatch.setattr(daemon, "build_payload", spy)
    deps = make_deps(CLIPS)
    record = deps.record

    def rec(event, **data):
        if event == "ir_exposure":
            planned.append(data)
        record(event, **data)
    monkeypatch.setattr(deps, "record", rec)
    req = CaptureRequest(Purpose.VERIFY, "kiosk", "CONSENT-T-0001", subject_ref="cust-planned")
    evs = until_accepted(lambda k: [as_dict(e) for e in run_capture(deps, req)])[-1]
    assert evs[-1]["result"]["accepted"], evs[-1]
    lock = seen[-1]["exposure_lock"]
    assert lock["declared"] is True and lock["planned"] == ["ir"]
    assert planned and planned[-1]["exposure_us"] < planned[-1]["auto_exposure_us"]
    assert lock["held"]["ir"]["exposure_us"] == pytest.approx(planned[-1]["exposure_us"], abs=0.1)


class RefusesSetExposure(CameraWrapper):
    """A device that takes a lock where its auto-exposure is and refuses one at a given exposure (an
    option write refused); every lock call written down."""

    def __init__(self, inner):
        super().__init__(inner)
        self.calls: list[tuple[str, StreamKind]] = []

    def lock_exposure(self, stream, setting=None):
        self.calls.append(("lock", stream))
        if setting is not None:
            raise CapabilityUnsupported("the camera refused the exposure setting")
        return super().lock_exposure(stream)

    def unlock_exposure(self, stream):
        self.calls.append(("unlock", stream))
        super().unlock_exposure(stream)


def test_a_refused_planned_lock_under_a_declared_lock_is_exposure_not_held():
    planned = {IR: ExposureSetting(4000.0, 1.0)}
    with RefusesSetExposure(drivers.open(CLIPS)) as cam:
        # Declared: the window does not run on auto-exposure; what was taken is given back.
        with pytest.raises(ExposureNotHeld):
            ExposureHold(cam, (IR, StreamKind.COLOR), required=True, planned=planned)
        assert cam.calls == [("lock", IR), ("lock", StreamKind.COLOR), ("unlock", StreamKind.COLOR)]
        # Not declared: the window runs with the IR imager unlocked, and the report says so.
        hold = ExposureHold(cam, (IR,), planned=planned)
        assert hold.to_dict()["unlocked"] == ["ir"] and hold.to_dict()["planned"] == []
        hold.release()


def test_the_note_says_fixed_when_the_camera_kept_its_exposure_and_held_when_it_moved_either_way():
    # An Astra's IR exposure does not move (8.5 ms, fixed): a lock at the plan's shorter exposure
    # comes back at 8.5 ms, and the note says the exposure is fixed, not "held" as if planned. A
    # longer exposure (ambient NIR) is held too, and says why; bench.material_refusals reads both.
    from agent.session.offline import exposure_note

    auto = ExposureSetting(8500.0, 1.0)
    assert exposure_note(ExposureSetting(8500.0, 1.0), auto).startswith("IR exposure fixed at 8500 us")
    held = exposure_note(ExposureSetting(5950.0, 1.0), auto)
    assert held == ("IR exposure held at 5950 us for the challenge (auto-exposure 8500 us), "
                    "from the skin's IR headroom")
    raised = exposure_note(ExposureSetting(1620.0, 1.0), ExposureSetting(650.0, 1.0))
    assert raised == ("IR exposure held at 1620 us for the challenge (auto-exposure 650 us), "
                      "lengthened: ambient NIR drowned the projector's dots")


def test_a_raise_under_way_fills_the_skin_to_the_target_not_to_the_band():
    # Eighth live/139 (direct sun, 5,147 lux, a Gemini 335L: no laser power setting): the auto-exposure
    # left the skin's bright end at 46 DN; the first raise stops at MAX_STEP_UP (about 115 DN), in the
    # band where an unraised session is left alone. A raise under way goes on to TARGET_DN: the dots'
    # share does not depend on the exposure, their shot-noise ratio grows as its root. A session never
    # raised keeps the band (150 DN at the auto-exposure: no change), and a fill never passes the
    # ceiling nor the target.
    with drivers.open(CLIPS) as cam:
        plan = ExposurePlan(cam, Projector(cam))
        plan.auto = ExposureSetting(525.0, 1.0)
        first = plan.propose(46.0, 525.0)
        assert first == pytest.approx(525.0 * MAX_STEP_UP)
        assert RAISE_BELOW_DN <= 46.0 * MAX_STEP_UP < FILL_BELOW_DN
        second = plan.propose(117.0, first)
        assert second == pytest.approx(first * TARGET_DN / 117.0)
        assert plan.propose(TARGET_DN - 5, second) == second            # filled: steady
        assert plan.propose(150.0, 525.0) == 525.0                      # never raised: the band holds
        assert plan.propose(100.0, 8000.0) == MAX_RAISED_EXPOSURE_US    # the ceiling
