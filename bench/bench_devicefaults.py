"""Fault bench of the camera layer (issue 17): unplug/re-plug cycles, SDK hangs and crashes, killed
and stopped camera hosts, against the daemon's real device manager and camera host processes.

Two paths, ``CAPTURE_AGENT_FAULT_CYCLES`` (default 1000) unplug/re-plug cycles each:

* fake-USB: the fake USB camera (``hil/fakes/usbcam.py``: the bus is a directory; the only fake is
  the USB device itself) in a camera host;
* sim: the simulated camera behind the same fake plug, in a camera host (``prerender`` keeps its
  re-open cheap, as a real device's is).

Then ``CAPTURE_AGENT_FAULT_KILLS`` (default 20) cycles each of: SIGSTOP of the camera host, SIGKILL
of it, an SDK read that hangs holding the interpreter lock, and a segmentation fault in the SDK
(each after the pool's warm spare host is ready again: faults are rare, a bench is not). Recovery
there is fault to a replacement host online: detection (heartbeat deadline, EOF) + the device's
open in the spare + two frames; on the sim path the sim's first open in a new process (its scene
and prerendered frames) dominates.

Every 100 unplug cycles a session-sized lease reads framesets, so recovery is checked end to end.
Reported: hangs (a cycle not recovered within ``HANG_LIMIT_S``), source threads that died, recovery
p50/p95 (re-plug to online; fault to a replacement host online), and the bench process's (the
daemon's side) fds, threads and RSS, and the number of host processes, before and after (after a
warm-up, so the spare host and the caches are in both).
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path

from agent.devices.lease import DeviceManager
from agent.devices.manager import SourceState
from agent.devices.policy import DeviceSettings
from agent.pipeline.frames import FramesetReader
from hil.fakes import usbcam

CYCLES = int(os.environ.get("CAPTURE_AGENT_FAULT_CYCLES", "1000"))
KILLS = int(os.environ.get("CAPTURE_AGENT_FAULT_KILLS", "20"))
WARMUP = 10
HANG_LIMIT_S = 15.0
SETTINGS = DeviceSettings(allow_development_cameras=True,
                          stall_timeout_s=0.5, read_timeout_s=0.05, restart_timeout_s=1.0, reset_timeout_s=1.0,
                          replug_timeout_s=HANG_LIMIT_S, replug_poll_s=0.02, host_heartbeat_timeout_s=1.0,
                          host_read_hang_s=1.5, lease_wait_s=3.0, idle_period_s=0.05)


def process_stats() -> dict[str, float]:
    status = Path("/proc/self/status").read_text()
    field = {line.split(":")[0]: line.split(":")[1].strip() for line in status.splitlines() if ":" in line}
    me = str(os.getpid())
    children = 0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:
                children += 1
    return {"fds": len(os.listdir("/proc/self/fd")), "threads": int(field["Threads"]),
            "rss_mb": int(field["VmRSS"].split()[0]) / 1024, "python_threads": threading.active_count(),
            "children": children}


def _wait(pred, limit_s: float) -> bool:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > limit_s:
            return False
        time.sleep(0.002)
    return True


def _session(m: DeviceManager) -> None:
    cam = m.lease()
    cam.start()
    try:
        list(FramesetReader(cam, read_timeout_s=0.5).take(2, timeout_s=10.0))
    finally:
        cam.stop()


class Tally:
    def __init__(self) -> None:
        self.recovery_ms: list[float] = []
        self.detect_ms: list[float] = []
        self.hangs = 0
        self.session_failures = 0


def _unplug_cycle(m: DeviceManager, dev: usbcam.FakeUsbDevice, tally: Tally) -> None:
    src = m.rig.sources[0]
    epoch = src.epoch
    t0 = time.monotonic()
    dev.unplug()
    if not _wait(lambda: src.state is not SourceState.ONLINE, HANG_LIMIT_S):
        tally.hangs += 1
        dev.plug()
        return
    tally.detect_ms.append((time.monotonic() - t0) * 1000)
    t1 = time.monotonic()
    dev.plug()
    if not _wait(lambda: src.state is SourceState.ONLINE and src.epoch > epoch, HANG_LIMIT_S):
        tally.hangs += 1
        return
    tally.recovery_ms.append((src.history()[-1].at - t1) * 1000)


def _spare_ready(m: DeviceManager, uri: str) -> bool:
    """Real faults are rare: by the next one the pool has its warm spare again. Wait for it, so a
    cycle measures the replacement of a host, not a bench that kills faster than hosts start."""
    return _wait(lambda: m.pool is not None and uri in m.pool._spares, 30.0)


def _fault_cycle(m: DeviceManager, dev: usbcam.FakeUsbDevice, fault: str, tally: Tally) -> None:
    src = m.rig.sources[0]
    _spare_ready(m, src.uri)
    epoch = src.epoch
    cam = src.camera
    pid = getattr(cam, "host_pid", None)
    if pid is None:
        tally.hangs += 1
        return
    t0 = time.monotonic()
    if fault == "sigstop":
        os.kill(pid, signal.SIGSTOP)
    elif fault == "sigkill":
        os.kill(pid, signal.SIGKILL)
    else:
        dev.fault(**{fault: True})
    # The replacement host opens the same device: clear the SDK fault once the old host is gone.
    if fault not in ("sigstop", "sigkill"):
        if not _wait(lambda: src.state is not SourceState.ONLINE, HANG_LIMIT_S):
            tally.hangs += 1
        dev.clear()
    if not _wait(lambda: src.state is SourceState.ONLINE and src.epoch > epoch, HANG_LIMIT_S):
        tally.hangs += 1
        return
    tally.recovery_ms.append((src.history()[-1].at - t0) * 1000)


def _pct(v: list[float], q: float) -> float:
    if not v:
        return float("nan")
    s = sorted(v)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _rows(label: str, tally: Tally, n: int, died: int) -> list[dict]:
    rows = [{"name": f"{label}: cycles", "value": n, "unit": "count"},
            {"name": f"{label}: hangs (not recovered in {HANG_LIMIT_S:g} s)", "value": tally.hangs, "unit": "count"},
            {"name": f"{label}: source threads died", "value": died, "unit": "count"},
            {"name": f"{label}: sessions failed", "value": tally.session_failures, "unit": "count"},
            {"name": f"{label}: recovery p50", "value": _pct(tally.recovery_ms, 0.5), "unit": "ms"},
            {"name": f"{label}: recovery p95", "value": _pct(tally.recovery_ms, 0.95), "unit": "ms"},
            {"name": f"{label}: recovery max", "value": max(tally.recovery_ms, default=float("nan")), "unit": "ms"}]
    if tally.detect_ms:
        rows.append({"name": f"{label}: unplug→detected p95", "value": _pct(tally.detect_ms, 0.95), "unit": "ms"})
    return rows


def _stat_rows(label: str, before: dict, after: dict) -> list[dict]:
    return [{"name": f"{label}: {k} before→after", "value": after[k], "unit": k.split("_")[-1] if "_" in k else "count",
             "reference": before[k], "ratio": (after[k] / before[k]) if before[k] else float("nan")}
            for k in ("fds", "threads", "python_threads", "rss_mb", "children")]


def _run_path(label: str, uri_of, dev: usbcam.FakeUsbDevice) -> list[dict]:
    m = DeviceManager([uri_of(dev)], SETTINGS)
    m.start()
    try:
        warm = Tally()
        for _ in range(WARMUP):
            _unplug_cycle(m, dev, warm)
        _session(m)
        time.sleep(0.5)                            # the spare host has started
        before = process_stats()
        tally = Tally()
        t0 = time.monotonic()
        for i in range(CYCLES):
            _unplug_cycle(m, dev, tally)
            if i % 100 == 99:
                try:
                    _session(m)
                except Exception:
                    tally.session_failures += 1
        took = time.monotonic() - t0
        rows = _rows(f"{label} unplug/re-plug", tally, CYCLES, sum(not s.thread_alive for s in m.rig.sources))
        for fault in ("sigstop", "sigkill", "hang_read_gil", "crash_read"):
            k = Tally()
            for _ in range(KILLS):
                _fault_cycle(m, dev, fault, k)
            rows += _rows(f"{label} {fault}", k, KILLS, sum(not s.thread_alive for s in m.rig.sources))
        _session(m)
        time.sleep(0.5)
        after = process_stats()
        rows += _stat_rows(label, before, after)
        rows.append({"name": f"{label}: wall time of the unplug cycles", "value": took, "unit": "s"})
        return rows
    finally:
        m.stop()


def run() -> list[dict]:
    usbcam.register()
    with tempfile.TemporaryDirectory(prefix="faultbench-") as d:
        fake = usbcam.FakeUsbDevice(Path(d) / "bus", "FAULT0001", fps=60)
        rows = _run_path("fake-USB", lambda dev: dev.uri, fake)
        sim = usbcam.FakeUsbDevice(Path(d) / "bus", "FAULTSIM1", fps=30)
        rows += _run_path("sim", lambda dev: dev.behind("sim://?fps=30&prerender=4&seed=5"), sim)
    return rows
