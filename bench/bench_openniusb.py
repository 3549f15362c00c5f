"""Recovery times of the device manager after a simulated unplug/re-plug (fake cable at the backend boundary).

Rows: time from re-plug to the source being ONLINE again, and from unplug to the typed DeviceLost
being seen, for a fake camera, the simulated camera (sim://) and the real OpenNI2 Dummy device, the
latter two behind a fault-injecting wrapper.
"""

from __future__ import annotations

import statistics
import time

import drivers
from agent.devices.manager import CaptureRig, SourceState
from agent.devices.policy import DeviceSettings
from hil.fakes.cameras import FakeCable, FakeCamera, FaultInjectingCamera

SETTINGS = DeviceSettings(allow_development_cameras=True,
                          stall_timeout_s=0.5, read_timeout_s=0.2, restart_timeout_s=0.5, reset_timeout_s=0.5,
                          replug_timeout_s=5.0, replug_poll_s=0.05)


def _cycle(rig: CaptureRig, cable: FakeCable) -> tuple[float, float]:
    src = rig.sources[0]
    for _ in range(3):
        rig.read(2.0)
    t0 = time.monotonic()
    cable.unplug()
    while src.state is SourceState.ONLINE:
        time.sleep(0.002)
    lost_at = src.history()[-1].at
    time.sleep(0.2)
    t1 = time.monotonic()
    cable.replug()
    while not (src.state is SourceState.ONLINE and src.history()[-1].at > lost_at):
        if time.monotonic() - t1 > SETTINGS.replug_timeout_s:
            raise RuntimeError("did not recover")
        time.sleep(0.002)
    return lost_at - t0, src.history()[-1].at - t1


def _measure(name: str, opener, cable: FakeCable, n: int = 5) -> list[dict]:
    with CaptureRig([name], SETTINGS, opener) as rig:
        runs = [_cycle(rig, cable) for _ in range(n)]
    lost = [r[0] * 1000 for r in runs]
    back = [r[1] * 1000 for r in runs]
    label = name.split(":")[0]  # fake | sim | openni
    return [
        {"name": f"{label} unplug→DeviceLost median", "value": statistics.median(lost), "unit": "ms",
         "reference": SETTINGS.read_timeout_s * 1000,
         "ratio": statistics.median(lost) / (SETTINGS.read_timeout_s * 1000)},
        {"name": f"{label} re-plug→online median", "value": statistics.median(back), "unit": "ms"},
        {"name": f"{label} re-plug→online max", "value": max(back), "unit": "ms"},
    ]


def run() -> list[dict]:
    fake = FakeCable()
    rows = _measure("fake://depth", lambda uri: FakeCamera(fake, uri, fps=30.0), fake)
    sim = FakeCable()
    rows += _measure("sim://?fps=30", lambda uri: FaultInjectingCamera(drivers.open(uri), sim), sim)
    try:
        oni = FakeCable()
        rows += _measure("openni://Dummy", lambda uri: FaultInjectingCamera(drivers.open(uri), oni), oni)
    except drivers.BackendUnavailable:
        pass
    return rows
