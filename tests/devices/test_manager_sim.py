"""The device manager over the simulated camera (sim://) and OpenNI2's Dummy, unplug simulated at the boundary."""

import time

import pytest

import drivers
from agent.devices.manager import CaptureRig, SourceState
from agent.devices.policy import DeviceSettings
from drivers import StreamKind
from hil.fakes.cameras import FakeCable, FaultInjectingCamera

pytest.importorskip("drivers.sim")

# The unplug is a DeviceLost, seen at once: no stall watchdog here (a short one can fire on a starved
# run, and the loss seen would be its FRAME_TIMEOUT).
SETTINGS = DeviceSettings(allow_development_cameras=True,
                          stall_timeout_s=10.0, read_timeout_s=0.2, restart_timeout_s=0.5, reset_timeout_s=0.5,
                          replug_timeout_s=5.0, replug_poll_s=0.05)


def test_simulated_unplug_of_sim_camera_typed_loss_and_recovery():
    cable = FakeCable()
    rig = CaptureRig(["sim://?fps=30"], SETTINGS, lambda uri: FaultInjectingCamera(drivers.open(uri), cable))
    with rig:
        assert {rig.read(2.0).stream for _ in range(9)} == {StreamKind.COLOR, StreamKind.DEPTH, StreamKind.IR}
        src = rig.sources[0]
        t0 = time.monotonic()
        cable.unplug()
        while src.state is SourceState.ONLINE:
            assert time.monotonic() - t0 < SETTINGS.read_timeout_s + 10.0     # bounded; the code says how
            time.sleep(0.01)
        lost = src.history()[-1]
        assert lost.error == "DRV_DEVICE_LOST"
        time.sleep(0.2)
        t1 = time.monotonic()
        cable.replug()
        while not (src.state is SourceState.ONLINE and src.history()[-1].at > lost.at):
            assert time.monotonic() - t1 < SETTINGS.replug_timeout_s
            time.sleep(0.01)
        print(f"sim re-plug recovery: {(src.history()[-1].at - t1) * 1000:.0f} ms")
        assert rig.read(2.0).stream in (StreamKind.COLOR, StreamKind.DEPTH, StreamKind.IR)


def test_rig_composes_openni_depth_with_sim_color_and_ir():
    pytest.importorskip("drivers.openni")
    settings = DeviceSettings(allow_development_cameras=True, required_streams=("depth", "ir", "color"))
    with CaptureRig(["openni://Dummy?streams=depth", "sim://?fps=30"], settings) as rig:
        owners = rig.status().owners
        assert owners[StreamKind.DEPTH] == "openni://Dummy?streams=depth"
        assert owners[StreamKind.COLOR] == owners[StreamKind.IR] == "sim://?fps=30"
        got = {}
        while len(got) < 3:
            f = rig.read(2.0)
            got[f.stream] = f
        assert got[StreamKind.DEPTH].pixels.shape == (240, 320)        # from OpenNI, not sim's 640x480
        assert got[StreamKind.COLOR].pixels.shape == (480, 640, 3)


@pytest.mark.parametrize("camera_host", [False, True])
def test_a_lease_meters_the_face_and_locks_exposure_on_the_camera_that_owns_the_stream(camera_host):
    from agent.devices.lease import DeviceManager
    from drivers import Capability
    m = DeviceManager(["sim://?seed=21&identity=3&lux=150"],
                      DeviceSettings(allow_development_cameras=True, camera_host=camera_host))
    m.start()
    try:
        cam = m.lease()
        with cam:
            cam.read(5.0)
            assert {Capability.EXPOSURE_REGION, Capability.EXPOSURE_LOCK_IR,
                    Capability.EXPOSURE_LOCK_COLOR} <= cam.capabilities
            cam.set_exposure_region(StreamKind.COLOR, (200, 120, 440, 360))
            cam.set_exposure_region(StreamKind.COLOR, None)
            for kind in (StreamKind.IR, StreamKind.COLOR):
                assert cam.lock_exposure(kind).exposure_us > 0
                cam.unlock_exposure(kind)
    finally:
        m.stop()


@pytest.mark.parametrize(("uris", "waits"), [(["sim://?seed=21"], True),
                                             (["sim://?seed=21&stream=2"], False),
                                             (["openni://Dummy?streams=depth", "sim://?seed=21"], False)])
def test_a_lease_waits_for_its_reader_only_when_every_camera_it_reads_does(uris, waits):
    # late29: the lease (what the daemon's session reads) said False for every camera, so the window's
    # lateness check ran on the daemon's simulators, whose clock waits for their reader, and ended
    # their windows SES_WINDOW_LATE under load. OpenNI's Dummy streams on its own clock.
    from agent.devices.lease import DeviceManager
    if any(u.startswith("openni://") for u in uris):
        pytest.importorskip("drivers.openni")
    m = DeviceManager(uris, DeviceSettings(allow_development_cameras=True, required_streams=("depth", "ir", "color")))
    m.start()
    try:
        cam = m.lease()
        with cam:
            cam.read(5.0)
            assert cam.waits_for_reader is waits
    finally:
        m.stop()
