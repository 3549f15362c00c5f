"""A camera wrapped to add something (record it, cut its cable, edit its streams) keeps every control
its camera has: a wrapper that fell back to ``Camera``'s refusing defaults once left the challenge
window's exposure unlocked in record mode, and the colour response judged a live face an attack."""

from __future__ import annotations

import inspect

import pytest

import drivers
from agent.config import RecordSettings
from agent.session.record import open_recording
from drivers import StreamKind
from drivers.base import Camera, CameraWrapper, ExposureSetting
from drivers.errors import DeviceLost
from hil.fakes.cameras import FakeCable, FaultInjectingCamera


def test_the_wrapper_forwards_every_method_a_camera_has():
    own = [n for n, v in vars(Camera).items() if inspect.isfunction(v) and not n.startswith("_")]
    conveniences = {"all_extrinsics"}                    # built on the others, in Camera itself
    missing = [n for n in own if n not in conveniences and n not in vars(CameraWrapper)]
    assert own and missing == [], f"CameraWrapper does not forward {missing}"


def test_a_recording_camera_locks_the_exposure_of_the_camera_it_records(tmp_path):
    cam = open_recording(drivers.open("sim://?realtime=0"), RecordSettings(str(tmp_path / "rec"), "db3"), "s1")
    assert isinstance(cam, CameraWrapper)
    with cam:
        assert cam.capabilities == cam.inner.capabilities
        for kind in (StreamKind.IR, StreamKind.COLOR):
            assert isinstance(cam.lock_exposure(kind), ExposureSetting)
            cam.unlock_exposure(kind)
        cam.set_exposure_region(StreamKind.COLOR, (10, 10, 50, 50))
        cam.read(2.0)


def test_an_unplugged_wrapped_camera_loses_its_controls_too():
    cable = FakeCable()
    cam = FaultInjectingCamera(drivers.open("sim://?realtime=0"), cable)
    with cam:
        assert isinstance(cam.lock_exposure(StreamKind.IR), ExposureSetting)
        cable.unplug()
        with pytest.raises(DeviceLost):
            cam.lock_exposure(StreamKind.IR)
        with pytest.raises(DeviceLost):
            cam.set_projector(True)


def test_a_wrapper_that_adds_to_reading_sees_its_header_reads_and_a_plain_one_forwards_them():
    from drivers import FrameHeader
    from drivers.base import CameraWrapper

    class Inner(CameraWrapper):
        headers = 0

        def read_header(self, timeout_s=1.0):
            type(self).headers += 1
            return super().read_header(timeout_s)

    cable = FakeCable()
    inner = Inner(drivers.open("sim://?realtime=0"))
    plain = CameraWrapper(inner)
    with plain:
        h = plain.read_header(2.0)
        assert isinstance(h, FrameHeader) and Inner.headers == 1        # forwarded to the camera's own
    cam = FaultInjectingCamera(Inner(drivers.open("sim://?realtime=0")), cable)
    with cam:
        assert isinstance(cam.read_header(2.0), FrameHeader) and Inner.headers == 1   # through its read
        cable.unplug()
        with pytest.raises(DeviceLost):
            cam.read_header(1.0)
