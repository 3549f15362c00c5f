"""A camera claims only what it does: a backend that claims an imager's exposure lock
(``exposure_lock_ir`` / ``exposure_lock_color``) locks that imager when the window asks, and one
that claims none refuses, because the server is told the window's exposure is held from these claims.

Orbbec and UVC claimed the lock without the call; RealSense claimed one lock for both imagers and
refuses the colour one. Each time the window ran on auto-exposure while the server was told otherwise."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import drivers
from drivers.base import Camera, Capability, exposure_lock_capability, lockable_streams, parse_uri
from drivers.errors import CaptureAgentError
from drivers.frame import StreamKind
from drivers.usb import Sysfs
from drivers.uvc import UVCCamera
from hil.fakes.v4l2 import FakeUvcCamera, FakeV4L2Bus
from tests.helpers.realsense_sw import stereo_device_with_exposure_options

IMAGERS = (StreamKind.IR, StreamKind.COLOR)


def _implements_lock(cls: type[Camera]) -> bool:
    return cls.lock_exposure is not Camera.lock_exposure and cls.unlock_exposure is not Camera.unlock_exposure


def _locks(cam: Camera) -> dict[StreamKind, bool]:
    """Per imager, whether ``lock_exposure`` holds it (given back at once)."""
    out = {}
    for s in IMAGERS:
        try:
            cam.lock_exposure(s)
        except CaptureAgentError:
            out[s] = False
            continue
        cam.unlock_exposure(s)
        out[s] = True
    return out


def _claims(cam: Camera) -> dict[StreamKind, bool]:
    return {s: exposure_lock_capability(s) in cam.capabilities for s in IMAGERS}


def test_the_capability_names_the_imager():
    assert exposure_lock_capability(StreamKind.DEPTH) is Capability.EXPOSURE_LOCK_IR      # one imager
    assert lockable_streams(frozenset({Capability.EXPOSURE_LOCK_COLOR})) == {StreamKind.COLOR}
    with pytest.raises(drivers.InvalidSetting):
        exposure_lock_capability("color")                                                 # not a member


def test_a_uvc_device_claims_an_exposure_lock_only_with_the_call(tmp_path):
    bus = FakeV4L2Bus(tmp_path / "root")
    dev = bus.plug(FakeUvcCamera("ABC123"))
    with UVCCamera(parse_uri(f"uvc://{bus.by_id(dev)}"), node_factory=bus.open, sysfs=Sysfs(tmp_path / "root")) as cam:
        assert _claims(cam) == _locks(cam) == {StreamKind.IR: False, StreamKind.COLOR: False}


def test_an_orbbec_device_with_every_property_claims_an_exposure_lock_only_with_the_call():
    orbbec = pytest.importorskip("drivers.orbbec")
    every_property = SimpleNamespace(_has=lambda prop: True)        # a device that lists them all
    caps = orbbec.OrbbecCamera._probe(every_property)
    assert Capability.PROJECTOR_CONTROL in caps                     # the probe did read the list
    assert "IR exposure settable" in orbbec.OrbbecCamera._settable_note(every_property)   # said, not claimed
    assert not lockable_streams(caps) or _implements_lock(orbbec.OrbbecCamera)


def test_the_simulator_locks_each_imager_it_claims():
    cam = drivers.open("sim://?seed=4&realtime=0")
    with cam:
        cam.read(5.0)
        assert _claims(cam) == _locks(cam) == {StreamKind.IR: True, StreamKind.COLOR: True}


def test_a_realsense_device_claims_the_ir_lock_it_takes_and_not_the_colour_one_it_refuses(monkeypatch):
    # A librealsense software device (the SDK's own device, sensor and option objects) as a D435
    # with its stereo module's exposure options, opened by the real backend; the running pipeline
    # is the one thing stood in for (a software device does not stream through a pipeline here).
    rs = pytest.importorskip("pyrealsense2")
    from drivers import realsense
    dev, stereo = stereo_device_with_exposure_options(depth_units=0.001)
    dev.add_sensor("RGB Camera")
    dev.register_info(rs.camera_info.name, "Intel RealSense D435")
    dev.register_info(rs.camera_info.serial_number, "843112070001")
    monkeypatch.setattr(realsense, "_find_device", lambda serial, ctx=None: dev)
    cam = realsense.open_camera(parse_uri("realsense://843112070001"))
    cam._pipeline = SimpleNamespace(get_active_profile=lambda: SimpleNamespace(get_device=lambda: dev))
    assert _claims(cam) == _locks(cam) == {StreamKind.IR: True, StreamKind.COLOR: False}
    assert stereo.get_option(rs.option.enable_auto_exposure) == 1.0          # given back


def test_a_realsense_recording_claims_no_lock(tmp_path):
    pytest.importorskip("pyrealsense2")
    from drivers.realsense_record import record_camera
    path = tmp_path / "sim.db3"
    src = drivers.open("sim://?realtime=0&seed=6")
    src.start()
    record_camera(src, str(path), 3)
    src.stop()
    cam = drivers.open(f"realsense+file://{path}")
    with cam:
        assert _claims(cam) == _locks(cam) == {StreamKind.IR: False, StreamKind.COLOR: False}


def test_the_camera_host_forwards_each_claim_and_its_lock():
    from drivers.host import CameraHostPool, HostSettings
    pool = CameraHostPool(HostSettings(spare=False))
    try:
        cam = pool.open("sim://?fps=30&seed=3")
        cam.start()
        try:
            cam.read(5.0)
            assert _claims(cam) == _locks(cam) == {StreamKind.IR: True, StreamKind.COLOR: True}
        finally:
            cam.stop()
    finally:
        pool.close()

