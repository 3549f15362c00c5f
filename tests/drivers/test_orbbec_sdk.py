"""The Orbbec backend against the real Orbbec SDK v2 (pyorbbecsdk2) as far as it runs without a
device: the SDK loads, enumerates none, refuses an unknown serial and unreadable recordings with its
own errors, and its calibration structures convert. Streaming needs a device (docs/drivers.md)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import drivers
from drivers.errors import DeviceNotFound, InvalidUri, RecordingInvalid
from drivers.frame import DistortionModel

orbbec = pytest.importorskip("drivers.orbbec")
ob = orbbec.ob


def test_sdk_loads_and_enumerates_no_device_without_writing_a_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert orbbec.list_devices() == []
    found, problems = drivers.list_devices()
    assert "orbbec" not in problems
    assert not (tmp_path / "Log").exists()          # the SDK's default ./Log/OrbbecSDK.log.txt is off


def test_import_prints_nothing_on_stdout():
    out = subprocess.run([sys.executable, "-c", "import drivers.orbbec"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == ""


def test_unknown_serial_is_not_found_by_the_sdk():
    with pytest.raises(DeviceNotFound, match="serial"):
        drivers.open("orbbec://CP1E54200025")
    with pytest.raises(InvalidUri):
        drivers.open("orbbec://")


@pytest.mark.parametrize("query", ["?d2c=sw", "?streams=depth,thermal", "?bogus=1", "?distance_m=9"])
def test_bad_queries_are_typed(query):
    with pytest.raises(InvalidUri):
        drivers.open(f"orbbec://CP1E54200025{query}")


def test_recordings_that_are_not_orbbec_bags_are_refused(tmp_path):
    with pytest.raises(RecordingInvalid, match="does not exist"):
        drivers.open(f"orbbec+file://{tmp_path}/none.bag")
    junk = tmp_path / "junk.bag"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(RecordingInvalid, match="ROS bag"):
        drivers.open(f"orbbec+file://{junk}")
    torn = tmp_path / "torn.bag"                      # right header, body the SDK cannot read
    torn.write_bytes(b"#ROSBAG V2.0\n" + bytes(range(256)) * 20)
    with pytest.raises(RecordingInvalid, match="Orbbec SDK cannot play"):
        drivers.open(f"orbbec+file://{torn}")


def test_factory_calibration_structures_convert():
    i = ob.OBCameraIntrinsic()
    i.fx, i.fy, i.cx, i.cy, i.width, i.height = 500.0, 501.0, 320.5, 240.5, 640, 480
    d = ob.OBCameraDistortion()
    d.k1, d.k2, d.p1, d.p2, d.k3 = 0.1, -0.2, 0.001, -0.002, 0.05
    d.model = ob.OBCameraDistortionModel.BROWN_CONRADY
    intr = orbbec.intrinsics_from(i, d)
    assert (intr.width, intr.height, intr.fx, intr.ppy) == (640, 480, 500.0, 240.5)
    assert intr.model is DistortionModel.BROWN_CONRADY
    assert np.allclose(intr.coeffs, (0.1, -0.2, 0.001, -0.002, 0.05), atol=1e-6)   # k1 k2 p1 p2 k3
    e = ob.OBExtrinsic()
    e.rot = np.eye(3)
    e.transform = np.array([25.0, -1.0, 0.5])        # millimetres in the SDK
    ext = orbbec.extrinsics_from(e)
    assert np.allclose(ext.t, (0.025, -0.001, 0.0005)) and np.allclose(ext.R, np.eye(3))


def test_unknown_serial_through_a_camera_host_keeps_its_type():
    from drivers.host import CameraHostPool, HostSettings
    with CameraHostPool(HostSettings(spare=False)) as pool:
        with pytest.raises(DeviceNotFound):
            pool.open("orbbec://CP1E54200025")


@pytest.mark.parametrize("name, hfov", [("Orbbec Gemini 336L", 94.0), ("Orbbec Gemini 335L", 94.0),
                                        ("Orbbec Gemini 335Lg", 94.0), ("Orbbec Gemini 336", 86.0),
                                        ("Orbbec Gemini 335", 86.0), ("Orbbec Gemini 2", 86.0),
                                        ("Orbbec Femto Bolt", 80.0), ("Orbbec Astra Mini S Pro", 63.0),
                                        ("Orbbec Something New", 70.0)])
def test_the_colour_field_of_a_device_is_its_most_specific_models(name, hfov):
    # "Gemini 336L" also contains "Gemini 33": the long-baseline model's 94° lens must win over the series'.
    assert orbbec.color_hfov_deg(name) == hfov
