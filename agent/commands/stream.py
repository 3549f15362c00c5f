"""``capture-agent stream URI --frames N``: open any source and report what each stream delivers."""

from __future__ import annotations

import json
import time

import drivers
from agent.pipeline.streamstats import StreamStats
from drivers.errors import FrameTimeout


def register(sub) -> None:
    p = sub.add_parser("stream", help="open a source and report per-stream frames, resolution, fps, drops")
    p.add_argument("uri", help="device URI, e.g. sim:// or realsense+file://rec.db3")
    p.add_argument("--frames", type=int, default=30, help="frames to collect per stream (default 30)")
    p.add_argument("--timeout", type=float, default=10.0, help="overall deadline in seconds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def collect(uri: str, frames: int, timeout_s: float) -> tuple[drivers.DeviceInfo, dict[str, StreamStats]]:
    """Read until every active stream has ``frames`` frames, the source ends, or the deadline passes."""
    stats: dict[str, StreamStats] = {}
    deadline = time.monotonic() + timeout_s
    with drivers.open(uri) as cam:
        info = cam.info
        for prof in cam.profiles():
            stats.setdefault(prof.kind.value, StreamStats(prof.kind.value))
        while time.monotonic() < deadline:
            if stats and all(s.count >= frames for s in stats.values()):
                break
            try:
                f = cam.read(timeout_s=min(1.0, max(0.01, deadline - time.monotonic())))
            except FrameTimeout:
                if info.is_recording:
                    break   # a recording that stops delivering has ended
                continue
            stats.setdefault(f.stream.value, StreamStats(f.stream.value)).add(f)
    return info, stats


def run(args) -> int:
    if args.frames <= 0:
        raise drivers.InvalidUri("--frames must be positive")  # stable code for bad input
    info, stats = collect(args.uri, args.frames, args.timeout)
    if args.json:
        print(json.dumps({"device": info.to_dict(), "streams": {k: s.to_dict() for k, s in stats.items()}}, indent=2))
        return 0
    print(f"{info.name} ({info.backend}, serial {info.serial or '-'})")
    if info.note:
        print(f"note: {info.note}")             # e.g. the colour mode the camera chose, and why
    print(f"{'STREAM':<7} {'FRAMES':>6} {'RESOLUTION':>11} {'FPS':>7} {'DROPPED':>7}  CLOCK")
    for s in stats.values():
        d = s.to_dict()
        print(f"{d['stream']:<7} {d['frames']:>6} {d['resolution']:>11} {d['fps']:>7.2f} {d['dropped']:>7}  "
              f"{d['clock_domain']}")
    return 0
