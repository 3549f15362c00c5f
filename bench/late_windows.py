"""Late and lost challenge windows of a streaming camera through the daemon, at a controlled load (issue 14, late31).

bench30 ran the memory bench's daemon on a streaming simulator at load 33-41 and saw every session end unjudged
(``SES_FRAMES_LOST``/``SES_WINDOW_LATE``). This runs the same daemon (``capture-agent run`` in its own process, as
provisioned for development, the reference server in another, this process the kiosk app on the local API; the
camera ``sim://?prerender=30&...&stream=1``: 30 fps on its own clock with a D435 pipeline's queue of one frameset)
under one of these loads, the bench in the caller's autogroup:

* ``idle``: nothing added (what else runs on the machine is reported as ``load1`` per session, not controlled);
* ``core``: one CPU-bound process (``BURNERS``, default 1) in an autogroup of its own at nice 19, as many shares
  as the bench's, for the whole run: "one busy core" of the kiosk (its app, an update);
* ``b2b``: sessions back to back, the next one asked for as soon as the previous result is back (no
  ``SETTLE_S`` gap): the worker's after-verdict work and the daemon's uplink overlap the next session's start.

``--no-screen``: the projector's challenge alone (the kiosk app without a screen, the server demanding the projector),
played from the clip: a lit screen is rendered live, 40 ms of thread CPU a colour tick (docs/liveness.md, late31).

The terminal has the camera's enrolled dot reference (``[camera] dot_reference``, stream32: enrolled once with
``projector-enrol``'s code from a board and a wall, :func:`enrolment_scenes`, cached as pad-eval's are), so its verdicts
are a kiosk's judge's; ``--no-dot-reference`` runs without it, as before. A refused session's line carries the
daemon's audit ``result`` entry (``audit``: the verdict, ``challenge_detail``, the detectors' scores); ``--daemon-log``
writes the daemon's whole output (its processes') to a file.

Per session: the outcome (``ACCEPTED``, a refusal's reason, or the error code) and, for a late or lost window,
whether its message said the terminal was busy (``host_late``); the daemon's log lines of the windows it ended
(where, the reader's time away); and the scheduler's account of the daemon's processes over the session
(:func:`sched_account`, stream31): the time their threads waited on a run queue, runnable and not run
(``/proc/PID/task/TID/schedstat``'s second field), the camera host's apart (``cam_host_wait_ms``: the simulator's
streaming clock runs on while its reader waits there, so every frame interval of that wait beyond its queue of
one is a frame lost, inside the daemon's reads, where the reader's "time away" does not see it), and the
autogroup's nice value the daemon runs under (``/proc/PID/autogroup``; this machine's etiquette puts the bench's,
and so the daemon's, at 19 against other runs' 0). Printed: the count of each, and the unjudged
(late or lost) rate with its exact (Clopper-Pearson) 95 % interval; ``--log`` appends a JSON line a session.
No face data: outcomes, codes and messages only (the messages carry no biometric data).

    echo 19 > /proc/self/autogroup
    timeout 900 /work/main/.venv/bin/python -m bench.late_windows --load idle --sessions 40 --log /tmp/x.jsonl
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from agent.session.window import BUSY
from bench.bench_memory import _verify, provision_unlimited
from hil.metrics import rate

CAMERA = "sim://?prerender=30&subject=live&lux=300&distance_mm=500&seed=21&stream=1"
UNJUDGED = ("SES_FRAMES_LOST", "SES_WINDOW_LATE")
SETTLE_S = 1.0                     # a kiosk's gap between customers (bench_memory's), but for ``b2b``
# One CPU-bound loop in a session (and so an autogroup) of its own at nice 19, as the bench's own autogroup is.
BURNER = "open('/proc/self/autogroup', 'w').write('19')\nwhile True:\n    pass\n"


def exact_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of a rate seen ``k`` times in ``n`` (``hil.metrics.rate``'s); of nothing seen
    (``n`` 0) the whole range, 0-1, where ``rate`` says NaN (the bench's JSON keeps numbers)."""
    if n == 0:
        return 0.0, 1.0
    r = rate(k, n, level)
    return r.lower, r.upper


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (``/proc/PID/task/TID/children``), parents first."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        out.append(p)
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                todo.extend(int(c) for c in Path(f"/proc/{p}/task/{t}/children").read_text().split())
            except (OSError, ValueError):
                pass
    return out


def sched_account(pid: int) -> dict[str, float]:
    """The scheduler's totals (ms) over the live threads of ``pid`` and its descendants: ``cpu_ms`` run, ``wait_ms``
    runnable on a run queue and not run, and the same two of the camera host (``python -m drivers.host``) apart.
    Threads that have ended are not counted (differences of two accounts are lower bounds)."""
    acc = {"cpu_ms": 0.0, "wait_ms": 0.0, "cam_host_cpu_ms": 0.0, "cam_host_wait_ms": 0.0}
    for p in _descendants(pid):
        try:
            host = b"drivers.host" in Path(f"/proc/{p}/cmdline").read_bytes()
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                cpu_ns, wait_ns, _ = (int(v) for v in Path(f"/proc/{p}/task/{t}/schedstat").read_text().split())
            except (OSError, ValueError):
                continue
            acc["cpu_ms"] += cpu_ns / 1e6
            acc["wait_ms"] += wait_ns / 1e6
            if host:
                acc["cam_host_cpu_ms"] += cpu_ns / 1e6
                acc["cam_host_wait_ms"] += wait_ns / 1e6
    return acc


def autogroup_nice(pid: int) -> int | None:
    """The nice value of ``pid``'s autogroup (``/autogroup-N nice V``), or None where the kernel has none."""
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def burners(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", BURNER], start_new_session=True) for _ in range(n)]


def without_screen(p: Any) -> None:
    """The terminal's kiosk app shows no screen (``[challenge] kiosk_screen = false``) and the server demands the
    projector's challenge alone: a window the simulator plays from its clip, no colour frame rendered live."""
    with open(p.agent_config, "a") as fh:
        fh.write("\n[challenge]\nkiosk_screen = false\n")
    with open(p.server_config, "a") as fh:
        fh.write('\n[[challenge_policy]]\nchannel = "*"\nrequire = ["projector"]\n')


def enrolment_scenes(camera: str) -> list[str]:
    """The scenes a kiosk's installer enrols ``camera`` from (``projector-enrol``'s board at 0.45 m and 0.65 m,
    then the bare wall; pad-eval's light and lux, ``hil.pad_enrolment``): the same sim camera (its profile keys
    kept, no family added: the bench's camera names none, and a family's camera has another IR mode), unpaced."""
    from hil.pad_enrolment import board_and_wall
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(camera).query))
    return board_and_wall({k: q[k] for k in ("family", "camera", "depth_mode", "scatter", "scatter_core", "ir_leak")
                           if k in q})


def with_dot_reference(p: Any, camera: str) -> str:
    """The terminal's ``[camera] dot_reference``: the camera's projector pattern enrolled once with
    ``projector-enrol``'s code from a board and a wall (:func:`enrolment_scenes`, cached between runs as
    pad-eval's are: ``hil.pad_enrolment.dot_reference_from``), written beside the agent's config as a kiosk's
    installer leaves it; returns the file's SHA-256 (the daemon's ``agent_start`` records the same)."""
    import hashlib

    from hil.pad_enrolment import dot_reference_from
    raw = dot_reference_from(enrolment_scenes(camera)).to_bytes()
    path = Path(p.agent_config).parent / "dot-reference.npz"
    path.write_bytes(raw)
    text = Path(p.agent_config).read_text()
    Path(p.agent_config).write_text(re.sub(r"^\[camera\]\n", f"[camera]\ndot_reference = {json.dumps(str(path))}\n",
                                           text, count=1, flags=re.M))
    return hashlib.sha256(raw).hexdigest()


def refusal_record(audit: Path, start: int) -> tuple[dict[str, Any] | None, int]:
    """The last ``result`` entry the daemon's audit log gained from byte ``start`` on (a session's: its verdict,
    score, whether the challenge passed and its ``challenge_detail`` code, the detectors' scores; scalars, no face
    data), and where the log ends now."""
    try:
        with open(audit, "rb") as fh:
            fh.seek(start)
            new = fh.read()
    except OSError:
        return None, start
    last = None
    for ln in new.splitlines():
        try:
            e = json.loads(ln)
        except ValueError:
            continue
        if e.get("event") == "result":
            last = e.get("data")
    return last, start + len(new)


def run(load: str, sessions: int, warm: int, log_path: str, camera: str, n_burners: int,
        no_screen: bool = False, dot_reference: bool = True, daemon_log: str = "") -> dict[str, Any]:
    from hil.devproc import start_daemon, start_dev_server
    outcomes: collections.Counter[str] = collections.Counter()
    ended: list[str] = []
    busy = 0
    loads: list[float] = []
    waits: list[tuple[bool, float]] = []         # (unjudged, the camera host's run-queue wait a second of session)
    nice: int | None = None
    hogs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as d:
        p = provision_unlimited(Path(d) / "terminal", camera)
        if no_screen:
            without_screen(p)
        ref_sha = with_dot_reference(p, camera) if dot_reference else None
        server, p = start_dev_server(p)
        daemon = None
        try:
            daemon = start_daemon(p.agent_config)
            for i in range(warm):
                _verify(p.socket, i, collections.Counter())
            if load == "core":
                hogs = burners(n_burners)
            dpid = daemon.proc.pid
            nice = autogroup_nice(dpid)
            _, audited = refusal_record(p.audit, 0)
            for i in range(warm, warm + sessions):
                t0 = time.perf_counter()
                before = sched_account(dpid)
                got = _verify(p.socket, i, outcomes)
                wall = time.perf_counter() - t0
                after = sched_account(dpid)
                sched = {k: round(max(0.0, after[k] - before[k]), 1) for k in after}
                waits.append((got["outcome"] in UNJUDGED, sched["cam_host_wait_ms"] / max(wall, 1e-9) / 1e3))
                audit, audited = refusal_record(p.audit, audited)
                if audit is not None and not got.get("accepted"):
                    got["audit"] = audit             # why a judged session was refused (the challenge's code)
                mine = got["outcome"] in UNJUDGED and BUSY in str(got.get("detail", ""))
                busy += mine
                loads.append(os.getloadavg()[0])
                line = {"load": load, "session": i, "wall_s": round(wall, 2), "load1": loads[-1],
                        "host_late": mine, "autogroup_nice": nice, "sched_ms": sched, **got}
                print(json.dumps(line), file=sys.stderr, flush=True)
                if log_path:
                    with open(log_path, "a") as fh:
                        fh.write(json.dumps(line) + "\n")
                if load != "b2b":
                    time.sleep(SETTLE_S)
            ended = [ln.strip()[-300:] for ln in daemon.lines if "challenge window ended" in ln]
        finally:
            if daemon_log and daemon is not None:
                Path(daemon_log).write_text("".join(daemon.lines))
            for h in hogs:
                h.kill()
                h.wait()
            if daemon is not None:
                daemon.stop()
            server.stop()
    n = sum(outcomes.values())
    k = sum(outcomes[c] for c in UNJUDGED)
    lo, hi = exact_interval(k, n)
    blo, bhi = exact_interval(busy, k)
    return {"load": load, "screen": not no_screen, "dot_reference_sha256": ref_sha, "sessions": n,
            "outcomes": dict(outcomes), "unjudged": k,
            "rate": k / n if n else None, "ci95": [round(lo, 4), round(hi, 4)], "host_late": busy,
            "host_late_share_ci95": [round(blo, 4), round(bhi, 4)],
            "load1_min_median_max": [min(loads), sorted(loads)[len(loads) // 2], max(loads)] if loads else None,
            "autogroup_nice": nice,
            "cam_host_wait_share_unjudged_judged": [_median([w for u, w in waits if u]),
                                                    _median([w for u, w in waits if not u])],
            "daemon_window_lines": ended}


def _median(v: list[float]) -> float | None:
    return round(float(sorted(v)[len(v) // 2]), 4) if v else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--load", choices=("idle", "core", "b2b"), required=True)
    ap.add_argument("--sessions", type=int, default=40)
    ap.add_argument("--warm", type=int, default=2)
    ap.add_argument("--burners", type=int, default=1, help="CPU-bound processes under --load core")
    ap.add_argument("--camera", default=CAMERA)
    ap.add_argument("--log", default="", help="append a JSON line a session here")
    ap.add_argument("--no-screen", action="store_true",
                    help="the projector's challenge alone (no screen: no colour frame rendered live)")
    ap.add_argument("--daemon-log", default="", help="write the daemon's whole log (its processes' output) here")
    ap.add_argument("--no-dot-reference", action="store_true",
                    help="configure no [camera] dot_reference (the judge's pattern check absent, as before stream32)")
    a = ap.parse_args(argv)
    print(json.dumps(run(a.load, a.sessions, a.warm, a.log, a.camera, a.burners, a.no_screen,
                         not a.no_dot_reference, a.daemon_log)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
