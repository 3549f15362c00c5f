"""The cases of tests/devices/test_manager_openni.py (each ``case_X`` is ``test_X`` there), run in a
child interpreter by tests/helpers/isolated.py: the device manager over the real OpenNI2 Dummy
device, with unplug simulated at the backend boundary. In a child because the Dummy driver's native
threads outlive the camera (docs/drivers.md): they are the child's, not the pytest worker's. Not
collected by pytest itself (no ``test_`` prefix)."""

import time

import pytest

import drivers
from agent.devices.manager import CaptureRig, SourceState
from agent.devices.policy import DeviceSettings
from drivers import StreamKind
from hil.fakes.cameras import FakeCable, FaultInjectingCamera

pytest.importorskip("drivers.openni")


def case_simulated_unplug_of_openni_dummy_recovers_after_replug():
    cable = FakeCable()
    # The unplug is a DeviceLost, seen at once: the stall watchdog has no part in this test, and a
    # short one fired on a starved run (a second recovery, by re-open, after the re-plug's).
    settings = DeviceSettings(allow_development_cameras=True,
                              stall_timeout_s=10.0, read_timeout_s=0.2, restart_timeout_s=0.5,
                              reset_timeout_s=0.5, replug_timeout_s=5.0, replug_poll_s=0.05)
    rig = CaptureRig(["openni://Dummy"], settings, lambda uri: FaultInjectingCamera(drivers.open(uri), cable))
    with rig:
        kinds = {rig.read(2.0).stream for _ in range(6)}
        assert kinds == {StreamKind.DEPTH, StreamKind.COLOR}
        src = rig.sources[0]
        t_unplug = time.monotonic()
        cable.unplug()
        while src.state is SourceState.ONLINE:
            assert time.monotonic() - t_unplug < settings.read_timeout_s + 10.0     # bounded; the code says how
            time.sleep(0.01)
        lost = src.history()[-1]
        assert lost.state is SourceState.RECONNECTING and lost.error == "DRV_DEVICE_LOST"
        # Past the re-open step (Dummy has no reset): waited for, not slept past (a loaded machine can
        # overrun a fixed sleep; the camera then comes back by the earlier step).
        while src.step != "re-plug":
            assert time.monotonic() - t_unplug < settings.restart_timeout_s + 30.0, src.step
            time.sleep(0.01)
        t_replug = time.monotonic()
        cable.replug()
        back = None
        while back is None:                                   # the recovery from this loss (the first)
            assert time.monotonic() - t_replug < settings.replug_timeout_s
            time.sleep(0.01)
            back = next((e for e in src.history() if e.state is SourceState.ONLINE and e.at > lost.at), None)
        assert back.step == "re-plug"
        print(f"OpenNI Dummy re-plug recovery: {(back.at - t_replug) * 1000:.0f} ms")
        f = rig.read(2.0)
        assert f.frame_number >= 1 and f.stream in (StreamKind.DEPTH, StreamKind.COLOR)
