"""The session's challenge window and what surrounds it (issue 15): exposures held through the window
and given back on every way out, projector commands at the schedule's edges only, the screen's
Illumination events as each step begins, capabilities refused before anyone poses (never a lockout
strike), and production configs that refuse simulated cameras and recordings."""

from __future__ import annotations

import dataclasses
from typing import cast

import pytest

import drivers
from agent.config import Settings
from agent.daemon import Daemon
from agent.devices.policy import DeviceSettings, check_policy, is_development_uri
from agent.errors import ConfigError
from agent.liveness.challenge import Challenge, Kind
from agent.pipeline.frames import FramesetReader
from agent.purpose import Purpose
from agent.session.capabilities import capabilities
from agent.session.capture import run_capture
from agent.session.errors import FramesLost
from agent.session.events import Illumination, as_dict
from agent.session.projector import Projector
from agent.session.request import CaptureRequest
from agent.session.window import run
from agent.uplink.probe import calibration_digest, camera_identity
from drivers.base import Camera, Capability, DeviceInfo
from drivers.errors import CaptureAgentError, DeviceRefused
from drivers.frame import StreamKind
from drivers.sim import camera as simcam
from hil.ingest.evidence import ChannelPolicy

BOTH = (Kind.PROJECTOR, Kind.ILLUMINATION)


class Spy:
    """A real sim camera, every control call written down (nothing faked: the calls reach it)."""

    def __init__(self, uri: str):
        self.cam = drivers.open(uri)
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        attr = getattr(self.cam, name)
        if name in ("lock_exposure", "unlock_exposure", "set_illumination", "set_projector"):
            def call(*a):
                self.calls.append((name, *a))
                return attr(*a)
            return call
        return attr


def window(spy: Spy, challenge: Challenge, n: int, on_frameset=None):
    """Run the window; returns (framesets, events)."""
    cam = cast(Camera, spy)                  # duck-typed: every attribute is the real camera's
    gen = run(FramesetReader(cam), n, challenge, Projector(cam), on_frameset=on_frameset)
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return stop.value, events


def test_the_window_holds_both_exposures_drives_projector_and_screen_and_gives_everything_back():
    spy = Spy("sim://?realtime=0&seed=3&subject=none")
    ch = Challenge.from_nonce(b"w" * 32, 16, BOTH)
    with spy.cam:
        sets, events = window(spy, ch, 16)
    assert len(sets) == 16
    names = [c[0] for c in spy.calls]
    assert names[:2] == ["lock_exposure", "lock_exposure"]
    assert {c[1] for c in spy.calls if c[0] == "lock_exposure"} == {StreamKind.IR, StreamKind.COLOR}
    assert sorted(c[1].value for c in spy.calls if c[0] == "unlock_exposure") == ["color", "ir"]
    assert names.index("unlock_exposure") > max(i for i, n in enumerate(names) if n == "set_projector")
    # One projector command per edge of the schedule (plus the first), not one per frame.
    edges = sum(a != b for a, b in zip(ch.schedule, ch.schedule[1:], strict=False))
    assert names.count("set_projector") == edges + 1
    # An Illumination event as each step begins, its colour set on the simulated kiosk's screen, then
    # the end of the sequence (the screen back to black).
    steps = [e for e in events if not e.end]
    assert [(e.step, e.rgb, e.frame, e.frames) for e in steps] == [(j, s.rgb, s.start, s.frames)
                                                                  for j, s in enumerate(ch.steps)]
    assert events[-1].end and all(isinstance(e, Illumination) for e in events)
    assert [c[1] for c in spy.calls if c[0] == "set_illumination"] == [s.rgb for s in ch.steps] + [(0.0, 0.0, 0.0)]
    assert steps[0].frame_interval_ms == pytest.approx(1000 / 30)


def test_exposures_are_given_back_when_the_window_fails():
    spy = Spy("sim://?realtime=0&seed=3&subject=none")
    ch = Challenge.from_nonce(b"v" * 32, 16, BOTH)

    def fail(fs):
        if fs.depth.frame_number >= 4:
            raise CaptureAgentError("the worker went away", code="LIV_WORKER_CRASHED")
    with spy.cam, pytest.raises(CaptureAgentError):
        window(spy, ch, 16, on_frameset=fail)
    assert sorted(c[1].value for c in spy.calls if c[0] == "unlock_exposure") == ["color", "ir"]
    assert spy.calls[-1] in (("set_illumination", (0.0, 0.0, 0.0)), ("unlock_exposure", StreamKind.IR),
                             ("unlock_exposure", StreamKind.COLOR))
    assert ("set_illumination", (0.0, 0.0, 0.0)) in spy.calls


def lose(monkeypatch, stream: StreamKind, number: int) -> None:
    """The sim camera loses its ``stream`` frame ``number`` on the way to the host (as a USB drop)."""
    deliver = simcam.SimCamera._deliver

    def losing(self, kind, *a, **kw):
        if kind is stream and a[4] == number:          # (px, fmt, ts, latency_ms, number, ...)
            return
        deliver(self, kind, *a, **kw)
    monkeypatch.setattr(simcam.SimCamera, "_deliver", losing)


@pytest.mark.parametrize("stream", [StreamKind.COLOR, StreamKind.IR])
def test_a_frameset_lost_inside_a_challenged_window_ends_it_as_frames_lost(monkeypatch, stream):
    # One frame lost makes the matcher give its tick up: every later frameset would be compared with
    # the challenge a frame early (judged attack before). The window ends there instead, the screen
    # is given back and the exposures too, and the frameset after the gap goes nowhere.
    lose(monkeypatch, stream, 6)
    spy = Spy("sim://?realtime=0&seed=3&subject=none")
    ch = Challenge.from_nonce(b"g" * 32, 16, BOTH)
    seen = []
    gen = run(FramesetReader(cast(Camera, spy)), 16, ch, Projector(cast(Camera, spy)), on_frameset=seen.append)
    events = []
    with spy.cam, pytest.raises(FramesLost) as exc:
        for ev in gen:
            events.append(ev)
    assert exc.value.code == "SES_FRAMES_LOST"
    assert "advanced by 2 between framesets 5 and 6" in exc.value.message, exc.value.message
    assert [fs.depth.frame_number for fs in seen] == [0, 1, 2, 3, 4, 5]
    assert events[-1].end and not any(e.end for e in events[:-1])
    assert sorted(c[1].value for c in spy.calls if c[0] == "unlock_exposure") == ["color", "ir"]
    assert ("set_illumination", (0.0, 0.0, 0.0)) in spy.calls
    # Only inside a challenged window: unchallenged (a recording, a passive read) nothing is compared
    # by place, and a frame lost before the window (in the quality loop) moves no edge of it.
    spy = Spy("sim://?realtime=0&seed=3&subject=none")
    with spy.cam:
        sets, _ = window(spy, None, 8)
    assert [fs.depth.frame_number for fs in sets] == [0, 1, 2, 3, 4, 5, 7, 8]
    spy = Spy("sim://?realtime=0&seed=3&subject=none")
    with spy.cam:
        reader = FramesetReader(cast(Camera, spy))
        before = list(reader.take(6))                           # ticks 0-5, then tick 6 is lost
        gen = run(reader, 8, Challenge.from_nonce(b"h" * 32, 8, BOTH), Projector(cast(Camera, spy)))
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                sets = stop.value
                break
    assert len(before) == 6 and [fs.depth.frame_number for fs in sets] == list(range(7, 15))


def test_what_a_camera_can_be_challenged_with():
    def kinds(uri: str, screen: bool = False):
        cam = drivers.open(uri)
        return capabilities(cam, kiosk_screen=screen)
    assert kinds("sim://?realtime=0") == set(BOTH)                     # the simulated kiosk lights itself
    assert kinds("sim://?realtime=0&camera=d405") == {Kind.ILLUMINATION}   # no projector
    cam = drivers.open("sim://?realtime=0&camera=d405")
    cam.capabilities = cam.capabilities - {Capability.ILLUMINATION_CONTROL}
    assert capabilities(cam) == frozenset() and capabilities(cam, kiosk_screen=True) == {Kind.ILLUMINATION}


def test_a_camera_the_channels_policy_refuses_is_refused_before_anyone_poses_and_is_no_strike(make_deps, ingest):
    state = ingest["state"]
    saved = state.policies
    state.policies = (ChannelPolicy("counter", ("projector", "illumination")), ChannelPolicy("*", ("illumination",)))
    try:
        deps = make_deps("sim://?seed=3&camera=d405", max_failures=1)
        issued = len(state.store)
        for _ in range(3):
            req = CaptureRequest(Purpose.VERIFY, "counter", "CONSENT-T-0001", subject_ref="cust-d405")
            evs = [as_dict(e) for e in run_capture(deps, req)]
            assert evs[-1]["error"]["code"] == "UPL_CAPABILITY_REFUSED" and "projector" in evs[-1]["error"]["message"]
            assert not any("prompt" in e for e in evs)                 # nobody was asked to pose
        assert len(state.store) == issued                              # no nonce was issued
        deps.lockout.check(f"terminal:{deps.terminal_id}", deps.pseudonym("subject", "cust-d405"))   # no strike
    finally:
        state.policies = saved


def test_production_configs_refuse_simulated_cameras_and_recordings():
    for uri, dev in (("sim://", True), ("realsense+file:///r.db3", True), ("openni+file:///r.oni", True),
                     ("realsense://123", False), ("uvc:///dev/video0", False)):
        assert is_development_uri(uri) is dev
    with pytest.raises(ConfigError) as ei:
        Daemon(Settings()).start()                                     # the built-in camera is sim://
    assert ei.value.code == "AGT_CONFIG_INVALID" and "allow_development_cameras" in ei.value.message
    sim = DeviceInfo(uri="sim://", backend="sim", name="sim")
    recording = DeviceInfo(uri="realsense+file:///r.db3", backend="realsense", name="rec", is_recording=True)
    for info in (sim, recording):
        with pytest.raises(DeviceRefused):
            check_policy(info, DeviceSettings())
        assert check_policy(info, DeviceSettings(allow_development_cameras=True)).allowed is None
    assert dataclasses.replace(Settings(), devices=DeviceSettings(allow_development_cameras=True))


def test_the_calibration_digest_names_a_camera_and_its_mode():
    def digest(uri: str) -> str:
        cam = drivers.open(uri)
        with cam:
            return calibration_digest(cam)
    d435 = digest("sim://?realtime=0&camera=d435")
    assert d435 == digest("sim://?realtime=0&camera=d435&seed=9") and len(d435) == 64
    assert d435 != digest("sim://?realtime=0&camera=d455")
    assert d435 != digest("sim://?realtime=0&camera=d435&depth_mode=848x480@30")
    cam = drivers.open("sim://?realtime=0")
    with cam:
        ident = camera_identity(cam)
    assert ident["serial"] == cam.info.serial and ident["firmware"] == cam.info.firmware


def test_dev_provisioning_pins_the_camera_and_allows_only_its_own_simulated_camera(tmp_path):
    from agent import config
    from hil.ingest.config import build_registry, load_server_config
    from hil.provision import provision_dev
    p = provision_dev(tmp_path / "dev", camera_uri="sim://?realtime=0&camera=d435")
    cfg, base = load_server_config(p.server_config)
    pin = build_registry(cfg, base).terminals[p.terminal_id].camera
    cam = drivers.open("sim://?realtime=0&camera=d435")
    with cam:
        # dev provisioning enrols no dot reference, so it pins none (pin34: '' is "not pinned")
        assert pin is not None and dataclasses.asdict(pin) == {**camera_identity(cam), "dot_reference_sha256": ""}
    assert config.load(p.agent_config).devices.allow_development_cameras


def test_dev_provisioning_gives_a_simulators_camera_host_the_time_a_render_takes(tmp_path):
    # A render inside the daemon's camera host is CPU work: at load 13-14 one outlasted the host's 1.5 s
    # read-hang limit, the host was killed as hung and the camera's health said NOT_SERVING (docs/sim.md).
    from agent import config
    from agent.devices.policy import DeviceSettings
    from drivers.sim import SIM_DEVICE_LIMITS
    from hil.provision import devices_table, provision_dev
    p = provision_dev(tmp_path / "dev", camera_uri="sim://?realtime=0&camera=d435")
    devices = config.load(p.agent_config).devices
    assert {k: getattr(devices, k) for k in SIM_DEVICE_LIMITS} == SIM_DEVICE_LIMITS
    assert all(v > getattr(DeviceSettings(), k) for k, v in SIM_DEVICE_LIMITS.items())     # longer, never shorter
    assert devices.allow_development_cameras and devices.camera_host                        # still in its host
    # A recording is no render: it keeps the hang limits a device has.
    assert "allow_development_cameras" in devices_table("realsense+file:///r.db3")
    assert not any(k in devices_table("realsense+file:///r.db3") for k in SIM_DEVICE_LIMITS)
