"""The hand-over of the daemon's cameras to a firmware update, and back (``firmware/maintenance.py``).

Through the daemon's ``DeviceManager`` with its default ``maintenance_poll_s`` (0.2 s), a real camera
host process, real ``flock``s, and the fake USB camera (``hil/fakes/usbcam.py``: no USB bus here; it
refuses a second open while claimed and re-enumerates after a flash, ``hil/fakes/usbcam_fw.py``).
``CAPTURE_AGENT_HANDOVER_CYCLES`` (20) cycles of: an update takes the maintenance lock and writes its
request (``MaintenanceLock.update``), waits for the cameras, opens the device through its update path
and flashes it; then the manager reopens and a lease reads a frame.

Rows: the update's wait for the cameras (reference: the poll period, so the ratio is in polls), the
manager's release (stop the camera, close its host), update end → camera online again, update end →
a lease's first frame; the daemon side's fds, threads and child processes before and after.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import drivers
from agent.devices.lease import DeviceManager
from agent.devices.manager import SourceState
from agent.devices.policy import DeviceSettings
from bench.bench_devicefaults import process_stats
from firmware.maintenance import MaintenanceLock
from hil.fakes import usbcam, usbcam_fw

CYCLES = int(os.environ.get("CAPTURE_AGENT_HANDOVER_CYCLES", "20"))
SETTINGS = DeviceSettings()                     # the daemon's defaults: maintenance_poll_s 0.2 s
LIMIT_S = 15.0


def _until(pred, what: str) -> float:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > LIMIT_S:
            raise RuntimeError(f"{what} did not happen within {LIMIT_S:g} s")
        time.sleep(0.002)
    return time.monotonic()


def _pcts(name: str, values: list[float], unit: str = "ms", reference: float | None = None) -> list[dict]:
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    rows = []
    for label, v in (("p50", statistics.median(values)), ("p95", p95), ("max", values[-1])):
        row: dict = {"name": f"{name} {label}", "value": v, "unit": unit}
        if reference:
            row.update(reference=reference, ratio=v / reference)
        rows.append(row)
    return rows


def run() -> list[dict]:
    usbcam_fw.register()
    with tempfile.TemporaryDirectory(prefix="handover-") as d:
        state = Path(d) / "state"
        state.mkdir(mode=0o700)
        dev = usbcam.FakeUsbDevice(Path(d) / "bus", "HANDOVER1", fps=30)
        released: list[dict] = []
        m = DeviceManager([dev.uri], SETTINGS, maintenance=MaintenanceLock(state),
                          on_maintenance=lambda e, **data: released.append(data) if e.endswith("for_update") else None)
        m.start()
        waits, releases, online, first = [], [], [], []
        try:
            _until(lambda: m.rig.sources[0].state is SourceState.ONLINE, "start")
            before = process_stats()
            for i in range(CYCLES):
                lock = MaintenanceLock(state, handover_timeout_s=5.0)
                with lock.update(dev.uri):
                    waits.append((lock.handover_s or 0.0) * 1000)
                    target = usbcam_fw.open_update_target(drivers.base.parse_uri(dev.uri), reenumerate_s=0.05)
                    with target:
                        target.install(usbcam_fw.fake_image(f"1.{i + 1}.0"))
                t_end = time.monotonic()
                online.append((_until(lambda: not m.in_maintenance and m.rig.sources[0].state is SourceState.ONLINE,
                                      "reopen") - t_end) * 1000)
                cam = m.lease()
                cam.start()
                try:
                    cam.read(2.0)
                    first.append((time.monotonic() - t_end) * 1000)
                    assert cam.info.firmware == f"1.{i + 1}.0", cam.info.firmware
                finally:
                    cam.stop()
            releases = [float(r["release_ms"]) for r in released]
            after = process_stats()
        finally:
            m.stop()
    poll_ms = SETTINGS.maintenance_poll_s * 1000
    rows = [{"name": "cycles", "value": CYCLES, "unit": "count"}]
    rows += _pcts("update's wait for the cameras", waits, reference=poll_ms)
    rows += _pcts("manager's release (camera + host closed)", releases)
    rows += _pcts("update end → camera online", online)
    rows += _pcts("update end → a lease's first frame", first)
    rows += [{"name": f"{k} before→after", "value": before[k], "unit": "count", "reference": after[k],
              "ratio": before[k] / after[k] if after[k] else 0.0} for k in ("fds", "threads", "children")]
    print(json.dumps({"handover_waits_ms": [round(w, 1) for w in waits]}))
    return rows
