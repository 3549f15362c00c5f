"""Memory of the daemon, its liveness worker and its camera host over many capture sessions.

Three parts:

* **The daemon as it runs** (``daemon_rows``): ``capture-agent run`` in a process of its own, as
  provisioned for development (``hil.provision``), with the reference server in another process
  (``capture-agent server``) and this process as the kiosk app driving verifications through the
  local API. The daemon runs its camera's SDK in camera host processes (``drivers/host``), so the
  simulated camera renders there, not in the daemon; the daemon's figures are its own (session
  code, uplink; no face model: the worker runs the quality loop's too), the worker's its own. Figures: RSS, PSS and
  private memory (``/proc/PID/smaps_rollup``) of the daemon, the worker and the camera host(s) after
  a warm-up, after the last session and at rest (``REST_S`` later: a kiosk's daemon between
  customers, its cameras read at the idle pace); growth; daemon + worker against the target (300
  MiB), RSS and, at rest, PSS; where the daemon's and the worker's resident memory is after the
  last session and at rest (``breakdown``: ``/proc/PID/smaps`` by library package, malloc arenas,
  Python's object arenas, thread stacks, other anonymous memory, frame rings; RSS, PSS and private
  each; thread counts); whether SciPy (which only the simulator uses) is mapped into the daemon or
  worker, and whether OpenCV or LiteRT (the worker's face work) is mapped into the daemon.

  A RealSense recording cannot be this camera: a recording cannot obey a live challenge, so it
  offers none, and the server refuses a terminal that can take no challenge
  (``UPL_CAPABILITY_REFUSED``, ``hil/ingest/evidence.py``) before the quality loop. The simulator
  in its camera host is the nearest thing that runs whole sessions; its SDK memory is the host's.

* **The session code in this process** (``in_process_rows``): the daemon's session code
  (``agent/session/capture.py``) run here against the reference server on loopback mTLS, liveness
  in the sandboxed worker, the sim camera unpaced (``realtime=0``); the server and the simulator
  share this process, so its RSS is not the daemon's. It gives ``tracemalloc``: growth of traced
  Python and numpy allocations over the sessions, and the three call sites that grew most (where
  to look, not a verdict).

* **Frame-sized allocations per frameset** (``allocation_rows``): numpy allocations of at least
  64 KiB, counted as they happen (``bench/allocations.py``: a hook on numpy's data allocator, not
  ``tracemalloc``, whose snapshots miss an array made and dropped within a frameset), by process
  and call site, per frameset in the steady state: ``ALLOC_SESSIONS`` (env
  ``CAPTURE_AGENT_BENCH_ALLOC_SESSIONS``, default 3) verification sessions after ``ALLOC_WARM``,
  the daemon's session code with its camera in a camera host (its device manager, as the daemon
  has it) and the worker's serving code on threads of this process (``InProcessWorker``: the hook
  cannot reach into the sandboxed worker), against the reference server. Rows: allocations and
  bytes per frameset of the daemon and of the worker (target 0; the bytes as a ratio to one
  frameset's pixels) and the sites that allocate most; every site on stderr.

In the daemon part, the daemon's and the worker's RSS and PSS are sampled after every session; the
rows ``... growth per 1,000 sessions, steady state`` fit their slope over the sessions after the
warm-up (``bench/slope.py``: least squares with an autocorrelation-robust 95 % interval, since the
allocator's steps make consecutive samples alike) and state it, and its interval, times 1,000 (marked
``extrapolated`` when fewer sessions were fitted), with target 0, the slope per session, the whole
series (``series``), the warm-up's own growth and the interval's bound over 1,000 sessions. Beside
them, where a session's time goes: the CPU seconds per session of the daemon, the worker and the
camera host(s) (``/proc/PID/stat``), and the session's wall time.

The daemon's camera is the simulator with ``prerender=30`` (``DAEMON_CAMERA``, or the URI in
``CAPTURE_AGENT_BENCH_DAEMON_CAMERA``): its pixels are
rendered once when the camera host opens it and played back and forth at 30 fps, paced as a device
delivers (``realtime`` stays 1), IR and colour exposed again and their noise drawn again every frame; a lit screen
(the illumination challenge) and a projector power other than the default are rendered live as
before. A real camera's pixels cost the host nothing; live rendering cost the camera host 3.0-3.4 CPU
seconds a session, twice what the prerendered camera costs (1.4-1.9), beside the worker's 1.5 and the
daemon's 0.35. The daemon and the worker are given the same frames through the same camera host and
ring (shapes, formats, metadata, timing), and run the same code (session, matcher, probe, uplink, the
worker's gate and judge): nothing they keep memory in is skipped. The clip (about 170 MiB more RSS)
is the camera host's, reported as its own. Unpaced (``realtime=0``) saves no time: a session's time
here is CPU on a shared machine, not the bench's waits. The clip played back and forth costs about a
tenth of the live subject's verifications: a challenge window centred on one of its turns sees no drift
and the motion detector refuses it (6 of the cycle's 58 phases, ``python -m bench.prerender_motion``;
none rendered live), so ``NOT_LIVE`` is among the outcomes, and the daemon's refusal path is exercised.

``SESSIONS`` (env ``CAPTURE_AGENT_BENCH_SESSIONS``, default 40) sets the count of each part after
``WARM`` warm-up sessions (``CAPTURE_AGENT_BENCH_WARM``, default 5); in the daemon part
``CAPTURE_AGENT_BENCH_SECONDS`` stops starting sessions after that many seconds of steady state (a
run sized to the time there is); ``CAPTURE_AGENT_BENCH_SERIES_LOG`` appends each session's sample
(RSS, PSS, CPU seconds, wall time, load) and its outcome (accepted or the reason, the liveness
verdict, the result's detail and timings) to a file as a JSON line, for a run that may not end;
``CAPTURE_AGENT_BENCH_MAPS_LOG`` appends, after each of the first ``CAPTURE_AGENT_BENCH_MAPS_SESSIONS``
(default 60) sessions, every resident mapping of the daemon and the worker and their thread names
(``mapping_log``), to diff one session against the next when RSS steps (growth28 named the daemon's
one-off 17.6 MiB step so: OpenCV imported by the first ``NOT_LIVE`` whose challenge passed, now not;
growth31 the worker's steps: its two malloc arenas' resident pages, frame-sized blocks carved from them once
glibc's sliding mmap threshold rose, now fixed for the worker, ``agent/allocator.py``);
``REST_S`` (``CAPTURE_AGENT_BENCH_REST_S``, default 30) the wait before the at-rest figures;
``CAPTURE_AGENT_BENCH_MEMORY_PARTS`` (``daemon,in-process``) which parts run. For the issue's 1,000
sessions: ``CAPTURE_AGENT_BENCH_SESSIONS=1000 CAPTURE_AGENT_BENCH_MEMORY_PARTS=daemon nice -n 19
python -m bench memory`` plus ``CAPTURE_AGENT_BENCH_SERIES_LOG``: a session costs about 3.5 CPU
seconds (the three processes together), 1,000 about an hour of both cores; on this shared machine
a session took 10-20 s of wall time at load 30-45 one hour and 2-5 s (median 3.1) at load 17-39 the
next (691 sessions in 41 minutes, ``docs/liveness.md``).
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import socket
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from agent.devices.policy import DeviceSettings
from agent.liveness.supervisor import LivenessSupervisor
from agent.purpose import Purpose
from agent.session.capture import SessionDeps, run_capture
from agent.session.events import Result
from agent.session.request import CaptureRequest
from bench import local_terminal, slope
from bench.targets import issue20
from hil.ingest.limits import FailureLimits

CAMERA = "sim://?realtime=0&seed=21&lux=300"
# ``CAPTURE_AGENT_BENCH_DAEMON_CAMERA`` another (late29: ``...&stream=1``, a camera that streams on its own
# clock with a D435 pipeline's queue of one frameset, to count windows ended ``SES_WINDOW_LATE`` under load).
DAEMON_CAMERA = os.environ.get("CAPTURE_AGENT_BENCH_DAEMON_CAMERA",
                               "sim://?prerender=30&subject=live&lux=300&distance_mm=500&seed=21")
SESSIONS = int(os.environ.get("CAPTURE_AGENT_BENCH_SESSIONS", "40"))
WARM = int(os.environ.get("CAPTURE_AGENT_BENCH_WARM", "5"))
PARTS = os.environ.get("CAPTURE_AGENT_BENCH_MEMORY_PARTS", "daemon,in-process,allocations").split(",")
ALLOC_SESSIONS = int(os.environ.get("CAPTURE_AGENT_BENCH_ALLOC_SESSIONS", "3"))
ALLOC_WARM = 2                    # sessions before counting: every table built, every pool started
ALLOC_SITES = 8                   # call sites listed per process and phase
PHASES = ("quality loop", "window")
SERIES_LOG = os.environ.get("CAPTURE_AGENT_BENCH_SERIES_LOG", "")   # a JSON line a session (a run may not end)
# Every mapping of the daemon and the worker after each of the first MAPS_SESSIONS sessions, a JSON line each
# (``mapping_log``): which mapping a one-off step of RSS is in (the daemon's 17.6 MiB near session 36, growth27).
MAPS_LOG = os.environ.get("CAPTURE_AGENT_BENCH_MAPS_LOG", "")
MAPS_SESSIONS = int(os.environ.get("CAPTURE_AGENT_BENCH_MAPS_SESSIONS", "60"))
# Each sample waits this long after its session: the worker's RSS climbs to ~300 MiB in a session and its
# ``malloc_trim`` after the verdict gives it back (to ~141 MiB within 0.25 s, polled at load 40), but a sample
# taken as the result came back caught the worker before or during that trim in 12 of 53 sessions (8-92 MiB
# above the median), noise that made the worker's slope interval -98..+491 MiB per 1,000 sessions.
# A kiosk's gap between customers is longer than this.
SETTLE_S = float(os.environ.get("CAPTURE_AGENT_BENCH_SETTLE_S", "1.0"))
# The daemon part starts no session after this many seconds of steady state (a run sized to the time there is).
BUDGET_S = float(os.environ.get("CAPTURE_AGENT_BENCH_SECONDS", "inf"))
REST_S = float(os.environ.get("CAPTURE_AGENT_BENCH_REST_S", "30"))
NO_LOCKOUT = 1_000_000            # failed sessions must not lock the bench's terminal out (the terminal's limit;
SERVER_LIMITS_OFF = 0             # the server's limits are off, max_failures = 0: hil/ingest/limits.py)
TARGET_MIB = 300.0


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


ARENA_HEAP = 64 << 20             # glibc's non-main arenas are heaps at 64 MiB-aligned addresses
THREAD_STACK = 8 << 20            # a thread's stack: the default 8 MiB (its guard page apart)
PYMALLOC_ARENA = 1 << 20          # CPython 3.10+ takes its small objects from 1 MiB mmapped arenas
# Libraries by the package that ships them (a wheel's bundled ``.libs`` with its package).
PACKAGES = {"opencv_python_headless.libs": "cv2", "numpy.libs": "numpy", "cryptography": "cryptography",
            "_cffi_backend": "cryptography", "ai_edge_litert": "ai_edge_litert", "grpc": "grpc",
            "google": "protobuf"}


def _category(path: str, start: int, size: int, perms: str) -> str:
    """Where a mapping of ``/proc/PID/smaps`` belongs in :func:`breakdown`."""
    if path == "[heap]":
        return "malloc: main arena ([heap])"
    if path == "[anon]":
        if start % ARENA_HEAP == 0 and size <= ARENA_HEAP:
            return "malloc: other arenas (64 MiB-aligned heaps)"
        if size == PYMALLOC_ARENA:
            return "Python objects (1 MiB pymalloc arenas)"
        if size in (THREAD_STACK, THREAD_STACK - 4096) and "w" in perms:
            return "thread stacks"
        return "anonymous: other (mmapped chunks, library buffers)"
    if path.startswith(("memfd:", "/memfd:")):
        return "frame rings (memfd, shared with the peer)"
    if path == "[stack]":
        return "thread stacks"
    if "site-packages/" in path:
        top = path.split("site-packages/", 1)[1].split("/", 1)[0]
        pkg = PACKAGES.get(top) or PACKAGES.get(top.split(".", 1)[0]) or top.split(".", 1)[0]
        return f"libraries: {pkg}"
    if path.startswith("/"):
        return "libraries: Python and system (libpython, libc, libcrypto, ...)" if ".so" in path \
            else "other files (locale, ...)"
    return f"other ({path})"


def _mappings(pid: int | str) -> Iterator[tuple[int, int, str, str, dict[str, int]]]:
    """Each mapping of ``/proc/PID/smaps`` as it is read (a generator: reading a process's own
    mappings into a list first would grow the heap it is measuring): its start, size (bytes),
    permissions, path (``[anon]`` for none) and its kB fields (``Rss``, ``Pss``, ``Anonymous``, ...)."""
    head: tuple[int, int, str, str] | None = None
    kb: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            if not parts[0].endswith(":") and "-" in parts[0]:        # a mapping's header line
                if head is not None:
                    yield (*head, kb)
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                head, kb = (lo, hi - lo, parts[1], " ".join(parts[5:]) or "[anon]"), {}
            elif head is not None and len(parts) == 3 and parts[2] == "kB":
                kb[parts[0].rstrip(":")] = int(parts[1])
    if head is not None:
        yield (*head, kb)


def breakdown(pid: int | str = "self") -> dict[str, dict[str, float]]:
    """RSS, PSS and private MiB of ``pid`` by what its mappings hold (``/proc/PID/smaps``): each
    library package, malloc's main arena and its other arenas, Python's small-object arenas, thread
    stacks, other anonymous memory (large mmapped chunks, library buffers), the frame rings; and the
    thread count (``threads``, its RSS = the count). The anonymous categories are read from the
    mappings' shapes (see the constants above), so they are where memory is, not who allocated it."""
    out: dict[str, dict[str, float]] = collections.defaultdict(lambda: {"Rss": 0.0, "Pss": 0.0, "Private": 0.0})
    for start, size, perms, path, kb in _mappings(pid):
        cat = out[_category(path, start, size, perms)]
        cat["Rss"] += kb.get("Rss", 0) / 1024
        cat["Pss"] += kb.get("Pss", 0) / 1024
        cat["Private"] += (kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)) / 1024
    threads = float(len(os.listdir(f"/proc/{pid}/task")))
    out["threads"] = {"Rss": threads, "Pss": threads, "Private": threads}
    return dict(out)


def mapping_log(pid: int) -> dict[str, Any]:
    """What ``CAPTURE_AGENT_BENCH_MAPS_LOG`` records of ``pid`` after a session: every mapping with
    resident pages (start, size in KiB, permissions, path, RSS and anonymous KiB, its
    :func:`_category`) and its threads' names (``/proc/PID/task/*/comm``), to diff one session's
    against the next's (which mapping a step of RSS is in, and whether a thread came with it)."""
    maps = [[f"{start:x}", size >> 10, perms, path, kb.get("Rss", 0), kb.get("Anonymous", 0),
             _category(path, start, size, perms)]
            for start, size, perms, path, kb in _mappings(pid) if kb.get("Rss", 0)]
    names = []
    for t in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        try:
            with open(f"/proc/{pid}/task/{t}/comm") as fh:
                names.append(fh.read().strip())
        except FileNotFoundError:
            pass                                                        # ended meanwhile
    return {"maps": maps, "threads": names}


def breakdown_rows(who: str, when: str, b: dict[str, dict[str, float]]) -> list[dict]:
    """One row per category of :func:`breakdown`, largest first; PSS and private beside the RSS."""
    rows = []
    cats = sorted((k for k in b if k != "threads"), key=lambda k: -b[k]["Rss"])
    for k in cats:
        if b[k]["Rss"] < 0.05:
            continue
        rows.append({"name": f"{who} {when}: {k}", "value": b[k]["Rss"], "unit": "MiB RSS",
                     "pss_mib": round(b[k]["Pss"], 2), "private_mib": round(b[k]["Private"], 2)})
    if "threads" in b:
        rows.append({"name": f"{who} {when}: threads", "value": b["threads"]["Rss"], "unit": "threads"})
    return rows


def run() -> list[dict]:
    return ((daemon_rows() if "daemon" in PARTS else [])
            + (in_process_rows() if "in-process" in PARTS else [])
            + (allocation_rows() if "allocations" in PARTS else []))


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (``/proc/PID/task/*/children``)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as fh:
                    kids = [int(x) for x in fh.read().split()]
            except FileNotFoundError:
                continue
            out += kids
            todo += kids
    return out


def daemon_processes(daemon_pid: int) -> dict[str, list[int]]:
    """The daemon, its liveness worker and its camera host(s), by their command lines."""
    out: dict[str, list[int]] = {"daemon": [daemon_pid], "worker": [], "camera host": []}
    for pid in children(daemon_pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().split(b"\0")
        except FileNotFoundError:
            continue
        if b"agent.liveness.worker" in cmd:
            out["worker"].append(pid)
        elif b"drivers.host" in cmd:
            out["camera host"].append(pid)
    return out


def sample(procs: dict[str, list[int]]) -> dict[str, list[dict[str, float]]]:
    """``smaps`` of each process; one that ended meanwhile (a camera host replaced) is left out."""
    out: dict[str, list[dict[str, float]]] = {}
    for who, pids in procs.items():
        out[who] = []
        for pid in pids:
            try:
                out[who].append(smaps(pid))
            except (ProcessLookupError, FileNotFoundError):
                pass
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used (``/proc/PID/stat``); 0 for one that has ended."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (ProcessLookupError, FileNotFoundError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")     # utime, stime


def maps_package(pid: int, package: str) -> bool:
    """A package's shared libraries mapped into ``pid`` (``site-packages/PACKAGE``, its ``.libs`` too)."""
    try:
        with open(f"/proc/{pid}/maps") as fh:
            return any(f"site-packages/{package}" in line for line in fh)
    except (ProcessLookupError, FileNotFoundError):
        return False                                                    # ended meanwhile


def maps_scipy(pid: int) -> bool:
    """SciPy's shared libraries mapped into ``pid`` (only the simulator imports SciPy)."""
    return maps_package(pid, "scipy")


def _verify(sock: Path, i: int, outcomes: collections.Counter[str]) -> dict[str, Any]:
    """One verification through the local API; its outcome (``ACCEPTED``, the reason, or the error
    code) is counted in ``outcomes`` and returned with the result's liveness verdict, its detail
    (the refusing cue's codes, or an error's message; never biometric) and the session's timings
    (``accepted``, ``outcome``, ``verdict``, ``detail``, ``timings_ms``; the series log's)."""
    from agent.localapi.client import LocalApiError, LocalClient
    from agent.session.events import Error
    req = CaptureRequest(Purpose.VERIFY, "kiosk", f"CONSENT-MEM-{i:05d}")
    try:
        with LocalClient(str(sock)) as c:
            events = list(c.capture(req))
    except LocalApiError as exc:
        outcomes[exc.code] += 1
        return {"accepted": False, "outcome": exc.code}
    last = events[-1] if events else None
    if isinstance(last, Result):
        outcome = "ACCEPTED" if last.accepted else last.reason
        outcomes[outcome] += 1
        return {"accepted": last.accepted, "outcome": outcome, "verdict": last.liveness_verdict,
                "detail": last.detail, "timings_ms": {k: round(v, 1) for k, v in last.timings_ms.items()}}
    outcome = last.code if isinstance(last, Error) else "NO_RESULT"
    outcomes[outcome] += 1
    # An error's message (the person's prompt: a late or lost window's says whether the terminal was busy).
    detail = {"detail": last.message[:200]} if isinstance(last, Error) else {}
    return {"accepted": False, "outcome": outcome, **detail}


def provision_unlimited(root: Path, camera_uri: str) -> Any:
    """A development terminal (``hil.provision.Provisioned``) at ``root`` on ``camera_uri`` with the terminal's
    lockout and the server's failure limits off: a bench's failed sessions must not lock it out. Port 0: the
    server binds a port the kernel picks, and the agent's config is pointed at it when it is started
    (``start_dev_server``; a port found free beforehand could be taken before the server binds it)."""
    from hil.provision import provision_dev
    p = provision_dev(root, port=0, camera_uri=camera_uri, retry_window_s=1.0, session={"max_failures": NO_LOCKOUT})
    text = p.server_config.read_text()
    p.server_config.write_text(re.sub(r"^(keep_sealed = .*)$", rf"\1\nmax_failures = {SERVER_LIMITS_OFF}", text,
                                      count=1, flags=re.M))
    return p


def daemon_rows() -> list[dict]:
    from hil.devproc import start_daemon, start_dev_server
    with tempfile.TemporaryDirectory() as d:
        server, p = start_dev_server(provision_unlimited(Path(d) / "terminal", DAEMON_CAMERA))
        daemon = None
        try:
            daemon = start_daemon(p.agent_config)
            outcomes: collections.Counter[str] = collections.Counter()
            series = Series()
            accepted = 0

            def one(i: int) -> None:
                """Session ``i``: verified, settled, sampled into the series."""
                nonlocal accepted
                t_s = time.perf_counter()
                got = _verify(p.socket, i, outcomes)
                accepted += got["accepted"]
                wall_s = time.perf_counter() - t_s
                time.sleep(SETTLE_S)
                series.sample(daemon_processes(daemon.proc.pid), wall_s, got)

            for i in range(WARM):
                one(i)
            procs = daemon_processes(daemon.proc.pid)
            before = sample(procs)
            t0 = time.perf_counter()
            ran = 0
            for i in range(WARM, WARM + SESSIONS):
                if time.perf_counter() - t0 > BUDGET_S:
                    break                                       # the time allowed is up: as many as fitted
                ran += 1
                one(i)
            elapsed = time.perf_counter() - t0
            procs_after = daemon_processes(daemon.proc.pid)
            after = sample(procs_after)
            maps = {"after the last session": breakdowns(procs_after)}
            scipy = {who: any(maps_scipy(pid) for pid in pids) for who, pids in procs_after.items()}
            # The face work is the worker's alone: OpenCV and LiteRT are not the daemon's.
            face_libs = {name: any(maps_package(pid, package) for pid in procs_after["daemon"])
                         for name, package in (("OpenCV", "cv2"), ("LiteRT", "ai_edge_litert"))}
            # At rest: what a kiosk's daemon holds while it waits for the next customer (its cameras
            # are read at the idle pace meanwhile).
            time.sleep(REST_S)
            procs_rest = daemon_processes(daemon.proc.pid)
            rest = sample(procs_rest)
            maps[f"at rest ({REST_S:g} s after)"] = breakdowns(procs_rest)
        finally:
            if daemon is not None:
                daemon.stop()
            server.stop()
    rows: list[dict] = [
        {"name": f"daemon (own process): verifications accepted of {WARM + ran}", "value": float(accepted),
         "unit": "sessions", "outcomes": dict(outcomes)},
        {"name": "daemon (own process): verification, mean wall time", "value": 1000 * elapsed / max(ran, 1),
         "unit": "ms"},
    ]
    total, total_rest = {}, {}
    for who in ("daemon", "worker", "camera host"):
        a, b, c = before.get(who, []), after.get(who, []), rest.get(who, [])
        if not b:
            continue
        rss_a, rss_b = sum(x["Rss"] for x in a), sum(x["Rss"] for x in b)
        n = f" ({len(b)} processes)" if len(b) > 1 else ""
        total[who] = rss_b
        rows += [
            {"name": f"{who}{n} RSS after {WARM} sessions", "value": rss_a, "unit": "MiB"},
            {"name": f"{who}{n} RSS after {ran} more sessions", "value": rss_b, "unit": "MiB"},
            {"name": f"{who}{n} PSS / private after {ran} more sessions", "value": sum(x["Pss"] for x in b),
             "unit": "MiB", "reference": sum(x["Private"] for x in b)},
            {"name": f"{who}{n} RSS growth over {ran} sessions", "value": rss_b - rss_a, "unit": "MiB"},
        ]
        if c:
            total_rest[who] = sum(x["Rss"] for x in c)
            rows += [
                {"name": f"{who}{n} RSS at rest, {REST_S:g} s after the last session", "value": total_rest[who],
                 "unit": "MiB"},
                {"name": f"{who}{n} PSS / private at rest", "value": sum(x["Pss"] for x in c), "unit": "MiB",
                 "reference": sum(x["Private"] for x in c)},
            ]
        rows.append({"name": f"{who} maps SciPy (the simulator's)", "value": float(scipy.get(who, False)), "unit": "",
                     **({"reference": 0.0} if who != "camera host" else {})})
    for name, mapped in face_libs.items():
        rows.append({"name": f"daemon maps {name} (the worker's face work)", "value": float(mapped), "unit": "",
                     "reference": 0.0})
    if procs["worker"] != procs_after["worker"]:
        rows.append({"name": "worker was restarted during the run (growth figures not comparable)", "value": 1.0,
                     "unit": ""})
    both = total.get("daemon", 0.0) + total.get("worker", 0.0)
    rows.append(issue20({"name": f"daemon+worker RSS together (target {TARGET_MIB:g} MiB)", "value": both,
                         "unit": "MiB"}, "rss"))
    if "daemon" in total_rest and "worker" in total_rest:
        both_rest = total_rest["daemon"] + total_rest["worker"]
        rows.append(issue20({"name": f"daemon+worker RSS together at rest (target {TARGET_MIB:g} MiB)",
                             "value": both_rest, "unit": "MiB"}, "rss"))
        pss = sum(x["Pss"] for who in ("daemon", "worker") for x in rest[who])
        rows.append(issue20({"name": "daemon+worker PSS together at rest (shared pages counted once between them "
                                     "and the camera hosts)", "value": pss, "unit": "MiB"}, "rss"))
    if "camera host" in total:
        rows.append(issue20({"name": "daemon+worker+camera host RSS together", "value": both + total["camera host"],
                             "unit": "MiB"}, "rss"))
    rows += series.rows()
    for when, by_who in maps.items():
        for who, parts in by_who.items():
            rows += breakdown_rows(who, when, parts)
    return rows


def breakdowns(procs: dict[str, list[int]]) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`breakdown` of the daemon and its worker (one that ended meanwhile is left out)."""
    out = {}
    for who in ("daemon", "worker"):
        try:
            if procs[who]:
                out[who] = breakdown(procs[who][0])
        except (ProcessLookupError, FileNotFoundError):
            pass                                                        # restarted meanwhile
    return out


class Series:
    """RSS and PSS of the daemon and its worker after every session, and their growth per session in
    the steady state (the sessions after the ``WARM`` warm-up), fitted with an interval that allows
    for the allocator's steps (``bench/slope.py``). A worker restarted mid-run makes its samples
    (and the sum's) incomparable: the fit then covers the daemon only."""

    WHO = ("daemon", "worker")
    CPU_OF = ("daemon", "worker", "camera host")

    def __init__(self) -> None:
        self.cpu: dict[str, list[float]] = {who: [] for who in self.CPU_OF}
        self._cpu_last: dict[str, float] = {}
        self.wall: list[float] = []
        self.values: dict[str, list[float]] = {f"{who} {f}": [] for who in self.WHO for f in ("RSS", "PSS")}
        self.values["daemon+worker RSS"] = []
        self.pids: list[tuple[int | None, int | None]] = []

    def sample(self, procs: dict[str, list[int]], wall_s: float = math.nan,
               outcome: dict[str, Any] | None = None) -> None:
        """RSS and PSS of the daemon and the worker now, after the session that took ``wall_s`` and
        ended in ``outcome`` (:func:`_verify`'s); the CPU seconds each process (the camera hosts
        together) spent since the last sample go to ``cpu``; with ``SERIES_LOG`` set, the sample and
        the outcome are appended there as one JSON line, and with ``MAPS_LOG`` set, for the first
        ``MAPS_SESSIONS`` samples, the daemon's and the worker's mappings (:func:`mapping_log`)."""
        cpu = {who: sum(cpu_seconds(pid) for pid in procs[who]) for who in self.CPU_OF}
        for who in self.CPU_OF:
            # A process replaced meanwhile (a camera host) restarts its count: its whole count is this session's.
            spent = cpu[who] - self._cpu_last.get(who, 0.0)
            self.cpu[who].append(spent if spent >= 0 else cpu[who])
        self._cpu_last = cpu
        self.wall.append(wall_s)
        got = {}
        for who in self.WHO:
            pid = procs[who][0] if procs[who] else None
            try:
                got[who] = smaps(pid) if pid is not None else None
            except (ProcessLookupError, FileNotFoundError):
                got[who] = None                                         # ended meanwhile
        self.pids.append(tuple(procs[w][0] if procs[w] else None for w in self.WHO))   # type: ignore[arg-type]
        for who in self.WHO:
            m = got[who]
            self.values[f"{who} RSS"].append(m["Rss"] if m else math.nan)
            self.values[f"{who} PSS"].append(m["Pss"] if m else math.nan)
        d, w = got["daemon"], got["worker"]
        self.values["daemon+worker RSS"].append(d["Rss"] + w["Rss"] if d and w else math.nan)
        # Progress of a run that takes hours, and its series should it not end.
        print(f"[memory] session {len(self.pids)}: RSS daemon {self.values['daemon RSS'][-1]:.1f}, "
              f"worker {self.values['worker RSS'][-1]:.1f} MiB; wall {wall_s:.1f} s, CPU "
              + ", ".join(f"{who} {self.cpu[who][-1]:.2f}" for who in self.CPU_OF) + " s",
              file=sys.stderr, flush=True)
        if SERIES_LOG:
            with open(SERIES_LOG, "a") as fh:
                fh.write(json.dumps({"session": len(self.pids), "pids": self.pids[-1], "wall_s": wall_s,
                                     "load1": os.getloadavg()[0],
                                     **{k: v[-1] for k, v in self.values.items()},
                                     **{f"{who} CPU s": self.cpu[who][-1] for who in self.CPU_OF},
                                     **(outcome or {})}) + "\n")
        if MAPS_LOG and len(self.pids) <= MAPS_SESSIONS:
            entry: dict[str, Any] = {"session": len(self.pids)}
            for who in self.WHO:
                try:
                    entry[who] = mapping_log(procs[who][0]) if procs[who] else None
                except (ProcessLookupError, FileNotFoundError):
                    entry[who] = None                                   # ended meanwhile
            with open(MAPS_LOG, "a") as fh:
                fh.write(json.dumps(entry) + "\n")

    def rows(self) -> list[dict]:
        steady = slice(WARM, None)
        same_worker = len({p[1] for p in self.pids[steady]}) == 1
        out = []
        for name, values in self.values.items():
            ys = values[steady]
            if ("worker" in name and not same_worker) or len(ys) < 4 or not all(math.isfinite(y) for y in ys):
                continue
            s = slope.fit(ys)
            # Issue 20's figure is the growth over 1,000 sessions: the fitted slope times 1,000, an
            # extrapolation (so marked) when fewer were run.
            k = 1000
            short = "" if s.n >= k else f", extrapolated from {s.n}"
            out.append(issue20({"name": f"{name} growth per 1,000 sessions, steady state (sessions {WARM + 1}-"
                                        f"{len(values)}{short}; 95% interval {k * s.low:+.1f}..{k * s.high:+.1f})",
                                "value": k * s.per_session, "unit": "MiB/1000s",
                                "ci95": [k * s.low, k * s.high], "extrapolated": s.n < k,
                                "per_session_mib": s.per_session, "ci95_per_session": [s.low, s.high],
                                "n": s.n, "newey_west_lag": s.lag,
                                "bound_over_1000_sessions_mib": s.bound(1000),
                                "warm_up_growth_mib": values[WARM - 1] - values[0] if WARM >= 2 else None,
                                "series": [round(v, 2) for v in values]}, "growth"))
        # Where a session's time goes: CPU seconds per session of each process, beside its wall time
        # (the wall time is the shared machine's load's; the CPU seconds much less so).
        for who, spent in self.cpu.items():
            ys = [y for y in spent[steady] if math.isfinite(y)]
            if ys:
                out.append({"name": f"{who} CPU per session, steady state (median of {len(ys)})",
                            "value": float(np.median(ys)), "unit": "s", "mean": sum(ys) / len(ys)})
        walls = [y for y in self.wall[steady] if math.isfinite(y)]
        if walls:
            out.append({"name": f"session wall time, steady state (median of {len(walls)}; load "
                                f"{os.getloadavg()[0]:.0f} at the end)", "value": float(np.median(walls)), "unit": "s"})
        return out


def in_process_rows() -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t = local_terminal.start(tmp, limits=FailureLimits(max_failures=0))
        accepted = 0
        try:
            with LivenessSupervisor() as sup:
                deps = SessionDeps(terminal_id=local_terminal.TERMINAL_ID, camera_uri=CAMERA, uplink=t.uplink,
                                   signer=t.signer, supervisor=sup,
                                   devices=DeviceSettings(allow_development_cameras=True))      # sim://

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
        finally:
            t.close()
    stats = snap1.compare_to(snap0, "lineno")
    growth = sum(s.size_diff for s in stats) / 2**20
    rows = [
        {"name": f"in-process: sessions run (unpaced sim; accepted {accepted} of {WARM + SESSIONS})",
         "value": float(SESSIONS), "unit": "sessions"},
        {"name": "in-process: session, mean wall time (tracemalloc on)", "value": 1000 * elapsed / SESSIONS,
         "unit": "ms"},
    ]
    for who, a, b in (("in-process: session code + server + sim", d0, d1), ("in-process: worker", w0, w1)):
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
        rows.append({"name": "in-process: worker was restarted during the run (growth figures not comparable)",
                     "value": 1.0, "unit": ""})
    rows.append({"name": f"in-process: traced allocations growth over {SESSIONS} sessions", "value": growth,
                 "unit": "MiB"})
    for s in stats[:3]:
        frame = s.traceback[0]
        rows.append({"name": f"  grew most: {Path(frame.filename).name}:{frame.lineno}", "value": s.size_diff / 1024,
                     "unit": "KiB"})
    return rows


class InProcessWorker(LivenessSupervisor):
    """The liveness worker's serving code (``agent.liveness.worker.serve``: its reader, its judge
    loop, its judge pool) on threads of this process instead of in a sandboxed process of its own,
    so that one allocation hook sees both sides; the daemon's side (``RemoteGate``, ``RemoteJudge``,
    the ring) is the supervisor's own. The worker's threads are the ones named ``liveness-*``. It
    counts the framesets it sends (``sent``: ``assess`` and ``frameset``)."""

    def __init__(self) -> None:
        super().__init__()
        self._thread: threading.Thread | None = None
        self._gate: Any = None
        self.sent: collections.Counter[str] = collections.Counter()
        self.frameset_bytes = 0                         # pixels of the last frameset sent
        # Which part of a session runs: the quality loop (from ``quality``) or the challenge window
        # and what follows it up to the next session's quality loop (from ``begin``).
        self.phase = PHASES[0]

    @property
    def pid(self) -> int | None:
        return os.getpid() if self._thread is not None else None

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _start_locked(self) -> None:
        if self.alive() and self._sock is not None:
            return
        self._teardown()
        from agent.liveness import worker
        from agent.liveness.wire import Ring
        from agent.quality import QualityGate
        if self._gate is None:
            self._gate = QualityGate()
            worker.warm_up(self._gate)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ring = Ring(self.s.slots, self.s.slot_bytes)
        peer = Ring(self.s.slots, self.s.slot_bytes, fd=os.dup(ring.fd), writable=False)

        def serve() -> None:
            try:
                worker.serve(child, peer, self._gate, {})
            finally:
                child.close()
                peer.close()
        self._sock, self._ring = parent, ring
        self._thread = threading.Thread(target=serve, name="liveness-worker", daemon=True)
        self._thread.start()

    def _teardown(self) -> None:
        super()._teardown()                             # its socket closed: the worker's reader sees EOF
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _send(self, msg: dict[str, Any]) -> None:
        if msg.get("op") in ("quality", "begin"):
            self.phase = PHASES[msg["op"] == "begin"]
        if msg.get("op") in ("assess", "frameset"):
            self.sent[msg["op"]] += 1
            self.frameset_bytes = sum(math.prod(f["shape"]) * (2 if f["dtype"] == "uint16" else 1)
                                      for f in msg["frames"])
        super()._send(msg)


def thread_role(name: str) -> str:
    """Whose a thread of the ``allocations`` part is: the worker's (``liveness-*``), the daemon's
    (the session's thread, the camera hosts' receivers, the device sources) or neither (the
    reference server's)."""
    if name.startswith("liveness-"):
        return "worker"
    if name == "MainThread" or name.startswith(("camera-host", "source", "maintenance")):
        return "daemon"
    return "other"


def allocation_rows() -> list[dict]:
    """Frame-sized numpy allocations (``bench/allocations.py``: a counting hook, every allocation of
    at least 64 KiB as it happens, by thread and call site) per frameset in the steady state: whole
    verification sessions (``run_capture``, the daemon's session code) with the camera in a camera
    host process (as the daemon has it, through its device manager) and the worker's serving code
    on threads of this process (:class:`InProcessWorker`), counted over ``ALLOC_SESSIONS`` sessions
    after ``ALLOC_WARM``. Per frameset: the daemon's over the framesets its reader matched, the
    worker's over the framesets sent to it (quality loop and challenge window). Everything a
    session allocates once (the probe's crops, the verdict) is in the totals too, spread over the
    session's framesets; the sites say which is which."""
    from agent.devices.lease import DeviceManager
    from bench.allocations import FRAME_SIZED, AllocationCounter, Counts

    sup = InProcessWorker()
    counter = AllocationCounter(lambda name: f"{thread_role(name)}: {sup.phase}")
    counter.counting = False
    framesets = 0
    outcomes: collections.Counter[str] = collections.Counter()
    settings = DeviceSettings(allow_development_cameras=True)

    def observe(event: str, data: dict[str, Any]) -> None:
        nonlocal framesets
        if event == "session_streams" and counter.counting:
            framesets += int(data.get("framesets", 0))

    with tempfile.TemporaryDirectory() as d:
        t = local_terminal.start(Path(d), limits=FailureLimits(max_failures=SERVER_LIMITS_OFF))
        cameras = DeviceManager([CAMERA], settings)
        cameras.start()
        try:
            with sup, counter:
                deps = SessionDeps(terminal_id=local_terminal.TERMINAL_ID, camera_uri=CAMERA, uplink=t.uplink,
                                   signer=t.signer, supervisor=sup, devices=settings, cameras=cameras,
                                   observer=observe)
                for i in range(ALLOC_WARM + ALLOC_SESSIONS):
                    counter.counting = i >= ALLOC_WARM
                    if i == ALLOC_WARM:
                        sup.sent.clear()
                    req = CaptureRequest(Purpose.VERIFY, "kiosk", f"CONSENT-ALLOC-{i:05d}")
                    last = list(run_capture(deps, req))[-1]
                    if counter.counting:
                        outcomes[str("ACCEPTED" if isinstance(last, Result) and last.accepted
                                     else getattr(last, "reason", None) or getattr(last, "code", "?"))] += 1
                counter.counting = False
                sent = dict(sup.sent)
                frameset_bytes = sup.frameset_bytes
        finally:
            cameras.stop()
            t.close()
    n_quality, n_window = sent.get("assess", 0), sent.get("frameset", 0)
    rows: list[dict] = [{"name": f"allocations: sessions counted (after {ALLOC_WARM}; unpaced sim in a camera host)",
                         "value": float(ALLOC_SESSIONS), "unit": "sessions", "outcomes": dict(outcomes),
                         "framesets_daemon_read": framesets, "framesets_quality_loop": n_quality,
                         "framesets_window": n_window}]
    print(f"[memory] frame-sized (>= {FRAME_SIZED >> 10} KiB) numpy allocations over {ALLOC_SESSIONS} sessions: "
          f"the daemon read {framesets} framesets, sent {n_quality} in quality loops and {n_window} in windows",
          file=sys.stderr)
    for role in ("daemon", "worker"):
        # The whole: per frameset the daemon read (the worker's: per frameset it was sent).
        whole = Counts()
        for phase in PHASES:
            for (r, where), k in counter.counts.count.items():
                if r == f"{role}: {phase}":
                    whole.add(role, where, counter.counts.nbytes[r, where], k)
        parts = [(role, whole, framesets if role == "daemon" else n_quality + n_window, "frameset")]
        parts += [(f"{role}: {PHASES[0]}", counter.counts, n_quality, "frameset assessed"),
                  (f"{role}: {PHASES[1]}", counter.counts, n_window, "frameset of the window")]
        for key, counts, n_sets, what in parts:
            n, nbytes = counts.total(key)
            per = max(n_sets, 1)
            rows += [
                {"name": f"allocations: {key}, frame-sized numpy allocations per {what} (target 0)",
                 "value": n / per, "unit": "allocs", "reference": 0.0, "count": n, "framesets": n_sets},
                {"name": f"allocations: {key}, frame-sized bytes per {what} (ratio: in framesets' pixels)",
                 "value": nbytes / per / 2**10, "unit": "KiB", "reference": frameset_bytes / 2**10,
                 "ratio": nbytes / per / frameset_bytes if frameset_bytes else None},
            ]
            if counts is not whole:
                for where, k, b in counts.sites(key)[:ALLOC_SITES]:
                    rows.append({"name": f"allocations: {key} site {where}", "value": k / per, "unit": "allocs",
                                 "kib_per_frameset": round(b / per / 2**10, 1)})
            print(f"[memory] {key}: {n / per:.2f} allocations, {nbytes / per / 2**10:.0f} KiB per {what} "
                  f"({n_sets})", file=sys.stderr)
            if counts is not whole:
                for where, k, b in counts.sites(key):
                    print(f"    {k / per:7.2f}  {b / per / 2**10:9.0f} KiB  {where}", file=sys.stderr)
    other = [x for phase in PHASES for x in counter.counts.sites(f"other: {phase}")]
    if other:
        print("[memory] other threads (the reference server's), not counted above:", file=sys.stderr)
        for where, k, b in other[:ALLOC_SITES]:
            print(f"    {k:7d}  {b / 2**10:9.0f} KiB  {where}", file=sys.stderr)
    return rows

