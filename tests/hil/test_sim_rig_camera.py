"""The simulated rig's camera (``rigsim://``): a real sim camera behind the rig's plug, presenting the
identity the rig sets, following scene changes, and lost when its port loses power."""

from __future__ import annotations

import pytest

import drivers
from drivers.base import exposure_lock_capability
from drivers.errors import CapabilityUnsupported, DeviceLost, DeviceNotFound
from drivers.frame import StreamKind
from hil.rig import simcam
from hil.rig.sim import SimRig
from hil.scenario import parse_set

simcam.register()


def scenario(**kw):
    return parse_set({"set": {"name": "t"}, "scenario": [{"name": "s", "expect": ["accepted"], **kw}]}).scenarios[0]


def _claims_and_locks(cam) -> dict[str, tuple[bool, bool]]:
    """Per imager: (claimed, locked when asked)."""
    out = {}
    for s in (StreamKind.IR, StreamKind.COLOR):
        try:
            cam.lock_exposure(s)
            cam.unlock_exposure(s)
            locked = True
        except CapabilityUnsupported:
            locked = False
        out[s.value] = (exposure_lock_capability(s) in cam.capabilities, locked)
    return out


def test_its_exposure_locks_are_the_genuine_cameras_for_the_streams_it_has(tmp_path):
    rig = SimRig(tmp_path, defaults={"realtime": 0})
    rig.prepare(scenario(), 0)
    with drivers.open(rig.camera_uri) as cam:
        assert _claims_and_locks(cam) == {"ir": (True, True), "color": (True, True)}
    rig.prepare(scenario(injection="hdmi_grabber"), 0)
    with drivers.open(rig.camera_uri) as cam:
        assert _claims_and_locks(cam) == {"ir": (False, False), "color": (True, True)}


def test_presents_the_genuine_camera_and_follows_the_rigs_scene(tmp_path):
    rig = SimRig(tmp_path, defaults={"realtime": 0})
    rig.prepare(scenario(lux=300), 0)
    with drivers.open(rig.camera_uri) as cam:
        assert cam.info.usb is not None and cam.info.usb.bus_path == "2-1.3" and cam.info.backend == "rigsim"
        assert cam.depth_range() == cam._inner.depth_range()     # the genuine camera's range
        cam.read(5.0)
        assert cam._inner.cfg.lux == 300
        rig.prepare(scenario(lux=40, subject="print"), 0)         # the lamp dims, a print comes round
        cam.read(5.0)
        assert cam._inner.cfg.lux == 40 and cam._inner.cfg.subject == "print"
        rig.prepare(scenario(injection="virtual_camera"), 0)      # another device on the port
        with pytest.raises(DeviceLost, match="another device"):
            cam.read(5.0)


def test_an_hdmi_grabber_has_colour_only_and_no_projector(tmp_path):
    rig = SimRig(tmp_path, defaults={"realtime": 0})
    rig.prepare(scenario(injection="hdmi_grabber"), 0)
    with drivers.open(rig.camera_uri) as cam:
        assert [p.kind.value for p in cam.profiles()] == ["color"]
        assert {cam.read(5.0).stream.value for _ in range(4)} == {"color"}
        assert not any(c.value.startswith("projector") for c in cam.capabilities)
        assert cam.depth_range() is None                         # no depth stream: no range


def test_unplugged_it_is_not_found_and_an_open_handle_is_lost_even_after_replug(tmp_path):
    rig = SimRig(tmp_path, defaults={"realtime": 0})
    rig.prepare(scenario(), 0)
    cam = drivers.open(rig.camera_uri)
    cam.start()
    cam.read(5.0)
    rig.usb.power(False)
    with pytest.raises(DeviceLost):
        cam.read(1.0)
    with pytest.raises(DeviceNotFound):
        drivers.open(rig.camera_uri)
    rig.usb.power(True)
    with pytest.raises(DeviceLost):                               # a handle from before the re-plug is dead
        cam.read(1.0)
    cam.stop()
    with drivers.open(rig.camera_uri) as again:
        again.read(5.0)
