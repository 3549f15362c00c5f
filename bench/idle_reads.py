"""The idle daemon's watchdog reads, full frames against headers, in one process.

    python -m bench.idle_reads            # CAPTURE_AGENT_IDLE_PHASE_S (30) x CAPTURE_AGENT_IDLE_ROUNDS (2) each way

``CAPTURE_AGENT_IDLE_ORDER`` (``full,header``) orders the phases of a round;
``CAPTURE_AGENT_IDLE_PER_CALL=0`` skips the first part, the CPU of one call each way.

First the reading thread's CPU per call, ``read`` against ``read_header``, on one hosted camera.
Then a ``DeviceManager`` as the daemon runs it (camera host, no frames kept, the idle pace) on the
simulated camera; phases alternate between the old watch read (``read_header`` copies the whole
frame out of the ring, as ``read`` does) and the header read. Per phase: the daemon process's CPU
time, its minor page faults (memory it touched anew: allocation churn) and its RSS range, per watch
read; the camera host's CPU alongside (its side did not change).
"""

from __future__ import annotations

import os
import resource
import time

from agent.devices.lease import DeviceManager
from agent.devices.policy import DeviceSettings
from drivers import FrameHeader
from drivers.host import CameraHostPool
from drivers.host.client import HostedCamera

PHASE_S = float(os.environ.get("CAPTURE_AGENT_IDLE_PHASE_S", "30"))
ROUNDS = int(os.environ.get("CAPTURE_AGENT_IDLE_ROUNDS", "2"))
URI = os.environ.get("CAPTURE_AGENT_IDLE_URI", "sim://?fps=30&seed=3")
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _full_read(self: HostedCamera, timeout_s: float = 1.0) -> FrameHeader:
    return FrameHeader.of(self.read(timeout_s))       # what the watch read was: the whole frame copied


def phase(mgr: DeviceManager, host_pid: int, full: bool) -> dict[str, float]:
    real = HostedCamera.read_header
    if full:
        HostedCamera.read_header = _full_read           # type: ignore[method-assign]
    try:
        src = mgr.rig.sources[0]
        time.sleep(2.0)                                 # the first reads of the mode before measuring
        n0, t0, h0 = src.frames, os.times(), _cpu_s(host_pid)
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        rss = [_rss_mib()]
        end = time.monotonic() + PHASE_S
        while time.monotonic() < end:
            time.sleep(0.5)
            rss.append(_rss_mib())
        t1 = os.times()
        reads = src.frames - n0
        return {"reads": reads, "cpu_ms": 1000 * (t1.user + t1.system - t0.user - t0.system),
                "minflt": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0,
                "rss_min": min(rss), "rss_max": max(rss), "host_cpu_ms": 1000 * (_cpu_s(host_pid) - h0)}
    finally:
        HostedCamera.read_header = real                 # type: ignore[method-assign]


def per_call(blocks: int = 6, n: int = 30) -> None:
    """CPU time of the reading thread per call, ``read`` against ``read_header``, on one hosted
    camera at full pace (blocks alternate): the copy itself, without the rest of the daemon."""
    with CameraHostPool() as pool:
        cam = pool.open(URI)
        cam.start()
        for _ in range(n):
            cam.read(10.0)
        cpu: dict[str, float] = {"read": 0.0, "read_header": 0.0}
        for b in range(blocks):
            for name in ("read", "read_header") if b % 2 == 0 else ("read_header", "read"):
                fn = getattr(cam, name)
                t0 = time.thread_time()
                for _ in range(n):
                    fn(10.0)
                cpu[name] += time.thread_time() - t0
        cam.stop()
    calls = blocks * n
    r, h = 1e6 * cpu["read"] / calls, 1e6 * cpu["read_header"] / calls
    print(f"reading thread's CPU per call over {calls} calls each: read {r:.0f} us, read_header {h:.0f} us "
          f"({h / r:.2f}x)", flush=True)


def main() -> None:
    if os.environ.get("CAPTURE_AGENT_IDLE_PER_CALL", "1") == "1":
        per_call()
    order = os.environ.get("CAPTURE_AGENT_IDLE_ORDER", "full,header").split(",")
    mgr = DeviceManager([URI], DeviceSettings(allow_development_cameras=True))
    mgr.start()
    try:
        deadline = time.monotonic() + 60
        while mgr.rig.sources[0].frames < 3:
            if time.monotonic() > deadline:
                raise SystemExit(f"no watch reads from {URI}: {mgr.rig.status()}")
            time.sleep(0.2)
        assert mgr.pool is not None
        host = mgr.pool.host(URI)
        assert host is not None
        runs: dict[str, list[dict[str, float]]] = {"full": [], "header": []}
        for _ in range(ROUNDS):
            for mode in order:
                r = phase(mgr, host.pid, mode == "full")
                runs[mode].append(r)
                print(f"{mode:6s} reads {r['reads']:4.0f}  daemon CPU {r['cpu_ms']:7.1f} ms "
                      f"({r['cpu_ms'] / max(r['reads'], 1):.3f} ms/read)  minor faults {r['minflt']:6.0f} "
                      f"({r['minflt'] / max(r['reads'], 1):.1f}/read)  RSS {r['rss_min']:.1f}-{r['rss_max']:.1f} MiB"
                      f"  host CPU {r['host_cpu_ms']:.0f} ms", flush=True)
        tot = {m: {k: sum(r[k] for r in rs) for k in ("reads", "cpu_ms", "minflt")} for m, rs in runs.items()}
        per = {m: (t["cpu_ms"] / t["reads"], t["minflt"] / t["reads"]) for m, t in tot.items()}
        print(f"per watch read, header/full: CPU {per['header'][0]:.3f}/{per['full'][0]:.3f} ms "
              f"({per['header'][0] / per['full'][0]:.2f}x), minor faults {per['header'][1]:.1f}/{per['full'][1]:.1f}")
    finally:
        mgr.stop()


if __name__ == "__main__":
    main()
