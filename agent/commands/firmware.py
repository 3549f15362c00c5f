"""``capture-agent firmware check|update|backup --device URI [--image FILE] [--json]``.

Runs as its own process, by an operator (as the agent's user or root: ``FW_NOT_PERMITTED`` otherwise),
next to a running daemon or not: the maintenance lock in the state directory keeps updates and capture
sessions apart (``FW_CAMERA_BUSY`` / ``FW_MAINTENANCE``), and the running daemon hands its cameras over
to an update and takes them back after it (``firmware/maintenance.py``).
It needs ``[firmware] manifest`` and ``release_key`` (``--config``). Every step goes to the firmware
audit log (``[firmware] audit``, hash-chained and signed like the daemon's, verifiable with
``capture-agent audit-verify``; a separate file because an audit chain has one writer).

``check``  the camera's identity, running firmware and the manifest's verdict; with ``--image`` also
           whether that image may be flashed (hash, version, downgrade rules, the SDK's own check).
           An interrupted update is reported (exit 2, ``FW_UPDATE_INTERRUPTED``), or closed when the
           camera is found verified on the journaled version.
``update`` the whole update (``firmware/update.py``); resumes an interrupted one.
``backup`` the camera's flash backup into ``--output`` or the backup directory.

Progress: a bar on a terminal; JSON events (one object per line) when ``--json`` is given or
stdout is not a terminal; the last line is the result.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from agent import config
from agent.security.audit import AuditLog
from agent.security.keys import load_signer
from drivers.update import open_target
from firmware import runtime
from firmware.maintenance import MaintenanceLock
from firmware.progress import ProgressPrinter
from firmware.update import FirmwareService

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("firmware", help="check, back up or update a camera's firmware (signed manifest)")
    p.add_argument("action", choices=["check", "update", "backup"])
    p.add_argument("--device", required=True, help="realsense://SERIAL, orbbec://SERIAL, dfu://VID:PID[/SERIAL], "
                                                   "usb://BUS-PORT or uvc:///dev/videoN")
    p.add_argument("--image", help="firmware image (update; check: whether it may be flashed)")
    p.add_argument("--output", help="backup: where to write the flash backup (default: the backup directory)")
    p.add_argument("--allow-downgrade", action="store_true", help="update: allow an older approved version")
    p.add_argument("--config", default=None, help="settings file ([firmware], state_dir, [keys])")
    p.add_argument("--json", action="store_true", help="JSON events and result")
    p.set_defaults(func=run)


def _audit(settings: config.Settings, path) -> AuditLog:
    spec = settings.keys.signing_key
    signer = None
    if spec:
        from agent.daemon import signer_spec
        signer = load_signer(signer_spec(settings))
    else:
        log.warning("no [keys] signing_key: the firmware audit log is hash-chained but not signed")
    a = settings.audit
    return AuditLog(path, signer, checkpoint_every=a.checkpoint_every, checkpoint_interval_s=a.checkpoint_interval_s)


def run(args) -> int:
    from agent.errors import UsageError
    if args.action == "update" and not args.image:
        raise UsageError("firmware update needs --image FILE")
    settings = config.load(args.config)
    state = settings.path(settings.state_dir)
    # The agent's user or root only: the tool writes the terminal's firmware state and audit chain, and
    # an update takes the cameras from the running daemon (FW_NOT_PERMITTED for anyone else).
    MaintenanceLock(state).check_operator()
    paths = runtime.paths(settings.firmware, state, settings.path)
    source = runtime.load_manifest_source(paths)
    json_events = bool(args.json) or not sys.stdout.isatty()
    printer = ProgressPrinter(json_events=json_events)
    audit = _audit(settings, paths.audit)
    try:
        audit.record("firmware_tool_start", action=args.action, device=args.device[:200],
                     manifest_sequence=source.current().sequence, manifest_sha256=source.current().sha256)
        for e in runtime.report_interrupted(state, audit.record):
            printer.event("interrupted_update", device=e.device, serial=e.serial, step=e.step, error=e.error or None)
        service = FirmwareService(source.current(), state, audit=audit.record,
                                  limits=runtime.limits(settings.firmware, paths), opener=open_target,
                                  target_options={"reenumerate_timeout_s": settings.firmware.reenumerate_timeout_s})
        result: dict[str, Any]
        if args.action == "check":
            result = service.check(args.device, args.image)
        elif args.action == "backup":
            result = service.backup(args.device, args.output, progress=printer)
        else:
            result = service.update(args.device, args.image, allow_downgrade=args.allow_downgrade, progress=printer)
        audit.record("firmware_tool_end", action=args.action, result=str(result.get("result", "ok"))[:64])
    except Exception as exc:
        code = getattr(exc, "code", type(exc).__name__)
        audit.record("firmware_tool_end", action=args.action, error=str(code)[:64])
        raise
    finally:
        audit.close()
    _print(result, json_events)
    return 0


def _print(result: dict[str, Any], json_events: bool) -> None:
    if json_events:
        print(json.dumps({"event": "result", **result}, default=str), flush=True)
        return
    ident = result.get("identity") or {}
    print(f"device   {result.get('device')}")
    print(f"camera   {ident.get('name')} serial {ident.get('serial') or '-'} firmware {ident.get('firmware') or '-'}"
          + (" (recovery mode)" if ident.get("recovery") else ""))
    if "verdict" in result:
        v = result["verdict"]
        print(f"verdict  {'approved' if v.get('approved') else 'NOT APPROVED'}: {v.get('detail')}")
    if "image" in result:
        i = result["image"]
        print(f"image    version {i['to_version']} ({'downgrade' if i['downgrade'] else 'ok'}); may be flashed")
    if "result" in result:
        print(f"result   {result['result']}" + (" (resumed)" if result.get("resumed") else ""))
    if result.get("backup"):
        b = result["backup"]
        print(f"backup   {b['path'] if isinstance(b, dict) else b}")
