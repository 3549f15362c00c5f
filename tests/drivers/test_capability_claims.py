"""A camera claims only what it does: a backend that declares ``exposure_control`` implements the
exposure lock (the session's window calls it, and the server is told the window's exposure is held).

Orbbec and UVC claimed the capability without the call; the call fell back to the base class,
which refuses it, and the window ran on auto-exposure while the probe said otherwise."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from drivers.base import Camera, Capability, parse_uri
from drivers.usb import Sysfs
from drivers.uvc import UVCCamera
from hil.fakes.v4l2 import FakeUvcCamera, FakeV4L2Bus


def _implements_lock(cls: type[Camera]) -> bool:
    return cls.lock_exposure is not Camera.lock_exposure and cls.unlock_exposure is not Camera.unlock_exposure


def test_a_uvc_device_claims_an_exposure_lock_only_with_the_call(tmp_path):
    bus = FakeV4L2Bus(tmp_path / "root")
    dev = bus.plug(FakeUvcCamera("ABC123"))
    with UVCCamera(parse_uri(f"uvc://{bus.by_id(dev)}"), node_factory=bus.open, sysfs=Sysfs(tmp_path / "root")) as cam:
        assert Capability.EXPOSURE_CONTROL not in cam.capabilities or _implements_lock(type(cam))


def test_an_orbbec_device_with_every_property_claims_an_exposure_lock_only_with_the_call():
    orbbec = pytest.importorskip("drivers.orbbec")
    every_property = SimpleNamespace(_has=lambda prop: True)        # a device that lists them all
    caps = orbbec.OrbbecCamera._probe(every_property)
    assert Capability.PROJECTOR_CONTROL in caps                     # the probe did read the list
    assert Capability.EXPOSURE_CONTROL not in caps or _implements_lock(orbbec.OrbbecCamera)


def test_the_backends_that_claim_the_lock_implement_it():
    from drivers.realsense import RealSenseCamera
    from drivers.sim.camera import SimCamera
    assert _implements_lock(RealSenseCamera) and _implements_lock(SimCamera)
