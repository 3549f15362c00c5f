"""Memory of the daemon and its liveness worker over many capture sessions.

The daemon's session code (``agent/session/capture.py``) runs in this process, as in the daemon,
against the reference server on loopback mTLS, with liveness in the sandboxed worker; the sim camera
runs unpaced (``realtime=0``); a session still takes about 5 s here (the simulator renders every
frame), so the default count is modest. Figures:

* RSS, PSS and private memory (``/proc/PID/smaps_rollup``) of this process (the daemon's side) and
  of the worker, after a warm-up session and after the last one;
* growth over the sessions after the warm-up (target 0 within noise), for both processes;
* ``tracemalloc`` in the daemon's process over the same sessions: growth of traced Python and numpy
  allocations, and the three call sites that grew most (where to look, not a verdict);
* where each process's resident memory is at the end (``/proc/PID/smaps``, by mapping: the
  allocator's ``[heap]``, anonymous mappings (large numpy buffers, the face models' interpreter
  arenas), and each shared library), the largest five.

``SESSIONS`` (env ``CAPTURE_AGENT_BENCH_SESSIONS``, default 40) sets the count; for the issue's
1,000 sessions: ``CAPTURE_AGENT_BENCH_SESSIONS=1000 nice -n 10 python -m bench memory`` (about 90 min).
"""

from __future__ import annotations

import os
import tempfile
import time
import tracemalloc
from pathlib import Path

from agent.devices.policy import DeviceSettings
from agent.liveness.supervisor import LivenessSupervisor
from agent.purpose import Purpose
from agent.session.capture import SessionDeps, run_capture
from agent.session.events import Result
from agent.session.request import CaptureRequest
from bench import local_terminal
from hil.ingest.limits import FailureLimits

CAMERA = "sim://?realtime=0&seed=21&lux=300"
SESSIONS = int(os.environ.get("CAPTURE_AGENT_BENCH_SESSIONS", "40"))
WARM = 5


def smaps(pid: int | str = "self") -> dict[str, float]:
    """MiB by field of ``/proc/PID/smaps_rollup`` (Rss, Pss, Private_Clean + Private_Dirty)."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) / 1024
    out["Private"] = out.get("Private_Clean", 0.0) + out.get("Private_Dirty", 0.0)
    return out


def rss_by_mapping(pid: int | str = "self") -> dict[str, float]:
    """MiB resident per mapping of ``/proc/PID/smaps``, summed by name: ``[heap]``, ``[anon]`` (no
    name), ``[stack]``, memfd names, and libraries by package and file (``cv2:cv2.abi3.so``)."""
    out: dict[str, float] = {}
    name = "[anon]"
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            if not parts[0].endswith(":") and "-" in parts[0]:        # a mapping's header line
                path = " ".join(parts[5:]) or "[anon]"
                name = path.rsplit("/", 1)[-1]
                if "site-packages/" in path:
                    name = path.split("site-packages/", 1)[1].split("/", 1)[0] + ":" + name
            elif parts[0] == "Rss:":
                out[name] = out.get(name, 0.0) + int(parts[1]) / 1024
    return out


def run() -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t = local_terminal.start(tmp, limits=FailureLimits(max_failures=1_000_000))
        accepted = 0
        try:
            with LivenessSupervisor() as sup:
                deps = SessionDeps(terminal_id=local_terminal.TERMINAL_ID, camera_uri=CAMERA, uplink=t.uplink,
                                   signer=t.signer, supervisor=sup,
                                   devices=DeviceSettings(allow_development_cameras=True))      # sim://
                deps.gate("kiosk")

                def session(i: int) -> None:
                    nonlocal accepted
                    last = list(run_capture(deps, CaptureRequest(Purpose.VERIFY, "kiosk", f"CONSENT-MEM-{i:05d}")))[-1]
                    accepted += isinstance(last, Result) and last.accepted
                for i in range(WARM):
                    session(i)
                worker_pid = sup.pid
                d0, w0 = smaps(), smaps(worker_pid) if worker_pid else {}
                tracemalloc.start(8)
                snap0 = tracemalloc.take_snapshot()
                t0 = time.perf_counter()
                for i in range(WARM, WARM + SESSIONS):
                    session(i)
                elapsed = time.perf_counter() - t0
                snap1 = tracemalloc.take_snapshot()
                tracemalloc.stop()
                d1 = smaps()
                same_worker = sup.pid == worker_pid
                w1 = smaps(sup.pid) if sup.pid else {}
                maps = {"daemon": rss_by_mapping(), "worker": rss_by_mapping(sup.pid) if sup.pid else {}}
        finally:
            t.close()
    stats = snap1.compare_to(snap0, "lineno")
    growth = sum(s.size_diff for s in stats) / 2**20
    rows = [
        {"name": f"sessions run (unpaced sim; accepted {accepted} of {WARM + SESSIONS})", "value": float(SESSIONS),
         "unit": "sessions"},
        {"name": "session, mean wall time (tracemalloc on)", "value": 1000 * elapsed / SESSIONS, "unit": "ms"},
    ]
    for who, a, b in (("daemon", d0, d1), ("worker", w0, w1)):
        if not a or not b:
            continue
        rows += [
            {"name": f"{who} RSS after warm-up", "value": a["Rss"], "unit": "MiB"},
            {"name": f"{who} RSS after {SESSIONS} more sessions", "value": b["Rss"], "unit": "MiB"},
            {"name": f"{who} PSS / private after {SESSIONS} more sessions", "value": b["Pss"], "unit": "MiB",
             "reference": b["Private"]},
            {"name": f"{who} RSS growth over {SESSIONS} sessions", "value": b["Rss"] - a["Rss"], "unit": "MiB"},
        ]
    if not same_worker:
        rows.append({"name": "worker was restarted during the run (growth figures not comparable)",
                     "value": 1.0, "unit": ""})
    rows.append({"name": "daemon+worker RSS together (target 300 MiB)", "value": d1["Rss"] + w1.get("Rss", 0.0),
                 "unit": "MiB", "reference": 300.0, "ratio": (d1["Rss"] + w1.get("Rss", 0.0)) / 300.0})
    for who, m in maps.items():
        for name, mib in sorted(m.items(), key=lambda kv: -kv[1])[:5]:
            rows.append({"name": f"{who} resident in {name}", "value": mib, "unit": "MiB"})
    rows.append({"name": f"daemon traced allocations growth over {SESSIONS} sessions", "value": growth,
                 "unit": "MiB"})
    for s in stats[:3]:
        frame = s.traceback[0]
        rows.append({"name": f"  grew most: {Path(frame.filename).name}:{frame.lineno}", "value": s.size_diff / 1024,
                     "unit": "KiB"})
    return rows
