"""``python -m hil run SCENARIOS... --report out.html [--rig sim|serial]`` and ``python -m hil report``.

``run`` checks every scenario against the rig before anything starts, provisions a terminal, starts
the reference ingest server and the agent's daemon, drives every session through the local API
with a progress bar, writes the sessions (JSON lines) as they complete and, at the end, the HTML
report. Exit status: 0 when every session came out as its scenario documents, 1 when one did not,
2 on an error (``error[CODE]: message``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from drivers.errors import CaptureAgentError
from hil import records, report, runner
from hil.agentrun import AgentOptions, AgentUnderTest
from hil.errors import RigConfigInvalid
from hil.progress import ProgressBar
from hil.rig.base import Rig
from hil.scenario import ScenarioSet, load_set, resolve, with_repetitions


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m hil", description="hardware-in-loop runs of capture-agent")
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run scenario sets on a rig and write the report")
    r.add_argument("scenarios", nargs="+", help="scenario files, or shipped sets: smoke, ibeta, lux-sweep, redteam")
    r.add_argument("--report", required=True, type=Path, help="the HTML report to write")
    r.add_argument("--rig", choices=("sim", "serial"), default="sim")
    r.add_argument("--rig-file", type=Path, help="the serial rig's TOML (ports, camera, instruments)")
    r.add_argument("--operator", action="store_true",
                   help="serial rig: ask on the terminal for what needs hands (a subject seated, a fixture moved)")
    r.add_argument("--sessions", type=Path, help="sessions as JSON lines (default: next to the report)")
    r.add_argument("--repetitions", type=int, help="override every scenario's repetitions (dry runs)")
    r.add_argument("--frames", type=int, default=32, help="framesets the server's challenge asks for (default 32)")
    r.add_argument("--challenge-window-s", type=float, help="the agent's [session] challenge_window_s")
    r.add_argument("--quality-timeout-s", type=float, help="the agent's [session] quality_timeout_s")
    r.add_argument("--sim", action="append", default=[], metavar="KEY=VALUE",
                   help="sim rig: a sim:// key every scene gets unless its scenario sets it (e.g. realtime=0)")
    r.add_argument("--sim-dir", type=Path, help="sim rig: the directory its camera reads the scene and plug from")
    r.add_argument("--usb-port", metavar="LOCATION:PORT",
                   help="sim rig: cycle this uhubctl hub port for unplug cycles (default: the rig's own plug)")
    r.add_argument("--record-dir", type=Path, help="lab only: record every session's raw frames here")
    r.add_argument("--record-format", choices=("db3", "oni"), default="db3")
    r.add_argument("--keep", action="store_true", help="keep the provisioned terminal (keys, configs, audit log)")
    r.set_defaults(func=cmd_run)
    p = sub.add_parser("report", help="write the HTML report of recorded sessions again")
    p.add_argument("sessions", type=Path)
    p.add_argument("--report", required=True, type=Path)
    p.add_argument("--title", default="capture-agent HIL report")
    p.set_defaults(func=cmd_report)
    return ap


def _sim_defaults(pairs: list[str]) -> dict[str, str]:
    out = {}
    for kv in pairs:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            raise RigConfigInvalid(f"--sim wants KEY=VALUE, got {kv!r}")
        out[k] = v
    return out


def make_rig(args: argparse.Namespace) -> Rig:
    if args.rig == "sim":
        from hil.rig.sim import SimRig
        usb = None
        if args.usb_port:
            from hil.rig.usbpower import UhubctlPower
            loc, sep, port = args.usb_port.rpartition(":")
            if not sep or not port.isdigit():
                raise RigConfigInvalid(f"--usb-port wants LOCATION:PORT (e.g. 1-1:2), got {args.usb_port!r}")
            usb = UhubctlPower(loc, int(port))
        return SimRig(args.sim_dir, defaults=_sim_defaults(args.sim), usb=usb)
    if args.rig_file is None:
        raise RigConfigInvalid("--rig serial needs --rig-file (ports, camera, instruments)")
    from hil.rig.serialrig import SerialRig, load_rig_file

    def ask(message: str) -> None:
        input(f"\noperator: {message}. Press Enter when done. ")

    return SerialRig(load_rig_file(args.rig_file), operator=ask if args.operator else None)


def cmd_run(args: argparse.Namespace) -> int:
    rig_species: tuple[str, ...] = ()
    sets: list[ScenarioSet] = []
    rig = make_rig(args)
    agent = None
    try:
        rig_species = rig.species()
        for name in args.scenarios:
            sset = load_set(resolve(name), rig_species)
            sets.append(with_repetitions(sset, args.repetitions) if args.repetitions else sset)
        runner.preflight(sets, rig)
        sessions_path = args.sessions or args.report.with_suffix(".sessions.jsonl")
        total = sum(s.sessions for s in sets)
        print(f"hil: {total} sessions from {', '.join(s.name for s in sets)} on the {rig.name} rig", file=sys.stderr)
        options = AgentOptions(frames=args.frames, challenge_window_s=args.challenge_window_s,
                               quality_timeout_s=args.quality_timeout_s, record_dir=args.record_dir,
                               record_format=args.record_format)
        agent = AgentUnderTest(rig, options)
        agent.start()
        bar = ProgressBar(total)
        bar.update(0, "agent ready")
        result = runner.run(sets, rig, agent, progress=lambda i, n, r: bar.update(i, f"{r.scenario}: {r.outcome}"),
                            out_jsonl=sessions_path)
        agent.stop()
        result.audit = agent.verify_audit()
        runner.attach_scores(result, agent.audit_path)
        records.write(result.sessions, sessions_path)
    finally:
        if agent is not None:
            agent.stop()
            if not args.keep:
                shutil.rmtree(agent.workdir, ignore_errors=True)
        rig.close()
    info = {"rig": rig.name, "scenario sets": ", ".join(f"{s.name} ({s.source})" for s in sets),
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(result.started_at)),
            "duration": f"{result.finished_at - result.started_at:.0f} s",
            "challenge frames": args.frames,
            "audit log": json.dumps(result.audit),
            "raw recordings": str(args.record_dir) if args.record_dir else "off"}
    args.report.write_text(report.render(result.sessions, title="capture-agent HIL report", run_info=info))
    bad = [r for r in result.sessions if not r.as_expected]
    print(f"hil: report {args.report}; sessions {sessions_path}; {len(result.sessions) - len(bad)}/"
          f"{len(result.sessions)} as expected" + ("" if result.audit.get("ok") else "; AUDIT LOG NOT VERIFIED"),
          file=sys.stderr)
    return 0 if not bad and result.audit.get("ok") else 1


def cmd_report(args: argparse.Namespace) -> int:
    recs = records.read(args.sessions)
    args.report.write_text(report.render(recs, title=args.title, run_info={"sessions file": str(args.sessions)}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CaptureAgentError as exc:
        print(f"error[{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
