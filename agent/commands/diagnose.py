"""``capture-agent diagnose [URI] [--config FILE] [--web]``: what an installer needs to see.

Without ``--web``: the camera's identity, USB link, metadata and firmware, doctor's checklist with
the next steps, and the last sessions' outcomes and timings and the last day's lockouts (their starts,
ends and restores, by kind: terminal or person; from the audit log of ``--config``), printed once.
With ``--web``: the same, live, on a page on loopback (``agent/observe/web.py``) with the aligned
colour, depth and IR streams under the quality overlay; the one-time link is printed on stdout
(only there: it is never logged) and the page stops after ``--minutes``.

The camera is the URI given, or the config's first ``[camera] uris``. A camera has one owner: stop
the daemon (``systemctl stop capture-agent``) before commissioning a real one.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any

import drivers
from agent.commands import doctor
from agent.config import Settings, load
from agent.devices.policy import check_policy
from agent.errors import UsageError
from agent.localapi.service import SERVICE
from agent.observe.device import device_facts
from agent.observe.health import probe_local_api
from agent.observe.ledger import audit_refusals, last_sessions, lockout_summary
from agent.observe.live import LiveView
from agent.observe.web import Checklist, DiagnosticsServer
from agent.session.events import IR_FLOOD_CANNOT_VERIFY
from agent.session.lockout import RESTORED, STRIKES_RESTORED
from drivers.errors import CaptureAgentError

_STATE_LOST = "the lockout state file was deleted or put back from before them"
LOCKOUTS_SINCE_S = 86_400.0         # the lockout entries the diagnostics count: the last day's


def register(sub) -> None:
    p = sub.add_parser("diagnose", help="the camera, its checklist and the last sessions; --web: a live page")
    p.add_argument("uri", nargs="?", help="camera URI (default: the config's first [camera] uris)")
    p.add_argument("--config", help="the agent's config: camera, quality settings, firmware policy, audit log, socket")
    p.add_argument("--web", action="store_true", help="serve the live diagnostics page on loopback")
    p.add_argument("--listen", default="127.0.0.1:0", help="loopback HOST:PORT for --web (default: a free port)")
    p.add_argument("--minutes", type=float, default=30.0, help="--web stops after this long (default 30)")
    p.add_argument("--frames", type=int, default=45, help="framesets doctor's checks measure (default 45)")
    p.add_argument("--flat-target", action="store_true", help="a flat board stands 50 cm in front of the camera")
    p.add_argument("--sessions", type=int, default=10, help="last sessions to show (default 10)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


class Diagnosis:
    """Everything the page and the printout show, gathered from the camera, the config and the daemon."""

    def __init__(self, uri: str, settings: Settings, config_given: bool, sessions: int):
        self.uri, self.settings, self.config_given, self.n_sessions = uri, settings, config_given, sessions

    def open_camera(self) -> drivers.Camera:
        return drivers.open(self.uri)

    def device(self) -> dict[str, Any]:
        s = self.settings
        try:
            cam = self.open_camera()
        except CaptureAgentError as exc:
            return {"error": {"code": exc.code, "message": exc.message[:300]}}
        with cam:
            info = cam.info
        facts = device_facts(info, s.firmware if self.config_given else None, s.path(s.state_dir), s.path)
        try:
            check_policy(info, s.devices)
            facts["policy"] = {"text": "allowed by [devices]", "ok": True}
        except CaptureAgentError as exc:
            facts["policy"] = {"text": f"{exc.code}: {exc.message[:200]}", "ok": False}
        return facts

    def sessions(self) -> dict[str, Any]:
        if not self.config_given:
            return {"note": "no --config: no audit log to read", "rows": []}
        path = self.settings.path(self.settings.audit.path)
        try:
            rows = [r.to_dict() for r in last_sessions(path, self.n_sessions)]
            refused = audit_refusals(path)
            now = time.time()
            lockouts = lockout_summary(path, now, now - LOCKOUTS_SINCE_S)
        except FileNotFoundError:
            return {"note": f"no audit log at {path} yet", "rows": []}
        except OSError as exc:
            return {"note": f"cannot read the audit log {path}: {exc.strerror}", "rows": []}
        note = f"from {path} (read, not verified: capture-agent audit-verify)"
        flooded = sum(r["prompt"] == IR_FLOOD_CANNOT_VERIFY.code for r in rows)
        if flooded:
            # The person could do nothing about it: the installation can (docs/liveness.md, misc26). Not
            # proof of a CCTV flood: a hand-held 850 nm lamp reads the same (review26b), and an attacker who
            # gets a site's night camera's illuminator switched off has won something.
            note += (f"; {flooded} of these sessions refused under an infrared flood ({IR_FLOOD_CANNOT_VERIFY.code}): "
                     f"near-infrared light the face's visible light cannot explain, such as a CCTV camera's IR "
                     f"illuminator, hid the projector's dots; find the source before changing anything: a lamp "
                     f"held by someone at the kiosk makes the same refusal (an attacker can provoke it), so "
                     f"shield or re-aim a camera's illuminator only if it is the source, never switch it off")
        if refused["count"]:
            # Each one a record the audit log would not take (a defect of the agent's, to report):
            # the note is what the page and the printout both show.
            last = refused["last"][-1]
            note += (f"; {refused['count']} audit record(s) refused (audit_refused), the last: "
                     f"{last['refused_event'] or '?'} ({last['problem'] or '?'}, field {last['field'] or '?'}, "
                     f"{last['ts']})")
        counts = lockouts["counts"]
        if any(counts.values()):
            # (sec27) Kinds and times only: no terminal id, no subject's pseudonym.
            last = lockouts["last"][-1]
            note += (f"; lockouts in the last day: {counts['lockout_start']} started, {counts['lockout_end']} ended, "
                     f"{lockouts['running']} running"
                     + (f", {counts['lockout_restored']} restored from the audit log ({RESTORED}: {_STATE_LOST})"
                        if counts["lockout_restored"] else "")
                     + f"; strikes short of a lockout: {counts['lockout_strike']}, {counts['lockout_cleared']} "
                       f"key(s) cleared by a success"
                     + (f", {counts['strikes_restored']} key(s)' strikes restored from the audit log "
                        f"({STRIKES_RESTORED}: {_STATE_LOST})"
                        if counts["strikes_restored"] else "")
                     + f"; the last: {last['event']} ({last['kind']}, until {last['until']}, {last['ts']})")
        return {"note": note, "rows": rows, "audit_refused": refused, "lockouts": lockouts}

    def agent(self) -> dict[str, Any]:
        if not self.config_given:
            return {"daemon": {"text": "not asked (no --config names its socket)", "ok": None}}
        out = probe_local_api(str(self.settings.path(self.settings.local_api.socket)), SERVICE)
        if self.settings.metrics.enabled and out.get("daemon", {}).get("ok") is not None:
            # Why a camera is down (health has a status only): its recovery, from the daemon's metrics.
            from agent.observe.metrics import probe_recovery
            out["camera recovery (daemon)"] = probe_recovery(self.settings.metrics.listen)
        return out


def _checklist(uri: str, frames: int, flat_target: bool) -> list[dict[str, Any]]:
    try:
        rows = doctor.checklist(uri, frames, flat_target)
    except CaptureAgentError as exc:
        rows = [doctor.open_failure(exc)]
    return [r.to_dict() for r in rows]


def _fact(v: Any) -> str:
    if isinstance(v, dict) and "text" in v:
        return str(v["text"])
    if isinstance(v, dict) and "verdict" in v:
        return f"{v['version']}: {v['verdict']}" + (f" ({v['detail']})" if v.get("detail") else "")
    if isinstance(v, dict) and "code" in v:
        return f"error[{v['code']}]: {v.get('message', '')}"
    return ", ".join(v) if isinstance(v, list) else str(v)


def run(args) -> int:
    if args.frames < 5:
        raise UsageError("--frames must be at least 5")
    settings = load(args.config) if args.config else Settings()
    uri = args.uri or (settings.camera.uris[0] if args.config and settings.camera.uris else None)
    if not uri:
        raise UsageError("name a camera URI, or a --config whose [camera] uris has one")
    d = Diagnosis(uri, settings, bool(args.config), args.sessions)
    if args.web:
        return serve(d, args)
    device = d.device()
    rows = _checklist(uri, args.frames, args.flat_target)
    sessions, agent = d.sessions(), d.agent()
    failed = any(r["result"] == "FAIL" for r in rows)
    if args.json:
        print(json.dumps({"uri": uri, "ok": not failed, "device": device, "checks": rows, "sessions": sessions,
                          "agent": agent}, indent=2))
        return 1 if failed else 0
    print(f"capture-agent diagnose {uri}")
    for k, v in device.items():
        print(f"  {k:<10} {_fact(v)}")
    print("checklist:")
    doctor.print_checklist([doctor.Row(**r) for r in rows])
    for k, v in agent.items():
        print(f"  {k}: {v['text']}")
    print(f"last sessions ({sessions['note']}):")
    for r in sessions["rows"]:
        print(f"  {r['started']}  {r['purpose']:<7} {r['outcome']:<9} {r['reason'] or '-':<22} "
              f"{r['verdict'] or '-':<12} {r['challenge'] or '-':<20} {r['prompt'] or '-':<22} "
              f"total {r['timings_ms'].get('total', r['timings_ms'].get('elapsed', 0)):.0f} ms"
              + (f"  unrecorded: {', '.join(r['unrecorded'])}" if r["unrecorded"] else ""))
    return 1 if failed else 0


def serve(d: Diagnosis, args) -> int:
    s = d.settings
    live = LiveView(d.open_camera, quality=s.quality, read_timeout_s=s.camera.read_timeout_s)
    checklist = Checklist(lambda: _checklist(d.uri, args.frames, args.flat_target), live)
    device: dict[str, Any] = {}

    def status() -> dict[str, Any]:
        return {"uri": d.uri, "device": device or None, "sessions": d.sessions(), "agent": d.agent()}

    server = DiagnosticsServer(live, checklist, status, args.listen)
    device.update(d.device())
    live.start()
    checklist.start()
    server.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # The link goes to this terminal only: stdout, never the log.
    print(f"diagnostics: open {server.url()}\n"
          f"  (works once, from this machine; stops in {args.minutes:g} min or on Ctrl-C)", flush=True)
    stop.wait(args.minutes * 60)
    server.stop()
    live.stop()
    checklist.wait(120)
    print("diagnostics: stopped", flush=True)
    return 0

