"""Native threads kept per OpenNI2 open/start/read/stop cycle of the real Dummy device.

Rows: the threads this process gains over N cycles through ``drivers.open`` (in-process, as in the
tests and with ``camera_host = false``), and over N re-opens of one live camera host (production:
the device manager re-opens a flapping camera in the same host while it lives), for the host and for
the daemon's side. Threads are tasks in ``/proc/<pid>/task``, counted once a cycle has returned;
the reference is the count before the cycles, so a ratio of 1 means flat. Linux only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import drivers
from drivers.host import CameraHostPool, HostSettings

CYCLES = 20
URI = "openni://Dummy?streams=depth"


def _tasks(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _cycle(opener: Callable[[str], drivers.Camera]) -> None:
    cam = opener(URI)
    cam.start()
    cam.read(5.0)
    cam.stop()


def _rows(label: str, before: int, after: int, t: float) -> list[dict]:
    return [{"name": f"{label}: tasks after {CYCLES} cycles", "value": after, "unit": "tasks",
             "reference": before, "ratio": after / before},
            {"name": f"{label}: time per cycle", "value": t / CYCLES * 1000, "unit": "ms"}]


def run() -> list[dict]:
    try:
        _cycle(drivers.open)                          # OpenNI2's own threads start once
    except drivers.BackendUnavailable:
        return []
    rows: list[dict] = []
    before, t0 = _tasks(), time.perf_counter()
    for _ in range(CYCLES):
        _cycle(drivers.open)
    rows += _rows("in-process Dummy", before, _tasks(), time.perf_counter() - t0)
    with CameraHostPool(HostSettings(spare=False)) as pool:
        cam = pool.open(URI)
        cam.start()
        cam.read(5.0)
        cam.stop()
        pid = cam.host_pid
        host0, own0, t0 = _tasks(pid), _tasks(), time.perf_counter()
        for _ in range(CYCLES):
            _cycle(pool.open)
        t = time.perf_counter() - t0
        rows += _rows("camera host, one live host", host0, _tasks(pid), t)
        rows += [{"name": f"camera host, daemon side: tasks after {CYCLES} re-opens", "value": _tasks(),
                  "unit": "tasks", "reference": own0, "ratio": _tasks() / own0}]
    return rows
