"""Lost framesets in the challenge window (issue 14, review 7's medium): pad-eval presentations
with the simulator dropping frames (``&drop=P``: each frame of each stream lost with probability P),
judged as ``pad-eval`` judges them (``hil.pad_records.run_presentation``: its thresholds, its nonce),
twice in this process:

* ``unchecked``: the window's gap check off (``WindowGaps.check`` answers None), i.e. the window
  judged as before ``SES_FRAMES_LOST`` existed: a lost frameset moves every later edge a frame early;
* ``checked``: as the code is: a gap ends the window as ``SES_FRAMES_LOST``.

Per presentation it prints both outcomes and whether the unchecked window had a gap
(``pipeline.gaps.first_gap`` over its framesets); then counts per species. A bona fide
presentation should be refused as ``attack`` only with the check off; an attack must not be
accepted in either mode (a frames-lost window is never accepted). ``--derive`` runs the unchecked
mode only and derives the checked outcome (half the time; the frames up to a gap are the same).

    .venv/bin/python -m bench.lost_frames --split train --live 12 --drop 0.03
    .venv/bin/python -m bench.lost_frames --split train --live 0 --species print,screen_video,mask \\
        --per-species 4 --drop 0.03
    .venv/bin/python -m bench.lost_frames --split train --live 0 --species splice,replay --injection 3 --drop 0.03

``--fast90 N``: the gap rule alone on matched streams, no judging: N windows of 32 framesets per
colour phase (0-11 ms after a depth tick, 0.5 ms apart), depth/IR at 90 fps matched into 30 fps
framesets by the agent's matcher (``pipeline/sync.FrameSetMatcher``, as ``FramesetReader`` runs it)
and, for reference, at 30 fps. The frames carry the simulator's timing (``drivers/sim/camera.py``:
tick ``k`` at ``k / fps`` plus Gaussian jitter of ``jitter_ms`` 0.3, colour ``color_offset_ms``
after the depth tick it coincides with, each frame of each stream dropped with probability
``--drop``) without its pixels, which the rule never reads (``--sim`` checks a rendered stream's
counters against the same rule). A window lost a frameset when its colour counter, the framesets'
clock, skips one (the simulator's counters are true). Counts: windows, windows that lost one, gaps
reported, false gaps (reported, none lost), missed (lost, none reported). Run it on main's code for
the rule before (the script only uses ``WindowGaps``)::

    .venv/bin/python -m bench.lost_frames --fast90 200 --drop 0
    .venv/bin/python -m bench.lost_frames --fast90 200 --drop 0.003

``--cost``: the time ``WindowGaps.check`` takes over a whole window (32, 48, 120 and 240
framesets, 90 fps depth and IR with 30 fps colour), against the way it worked before, in the same
process: :func:`pipeline.gaps.window_gap` over every prefix (the whole history on every frameset).

No face data: records hold outcomes, verdicts and scores only.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
import time
from typing import Any

import numpy as np

from agent.liveness.fusion import load_thresholds
from agent.pipeline import gaps as G
from agent.pipeline.sync import FrameSetMatcher
from agent.quality import QualityGate
from agent.session import offline
from drivers.frame import ClockDomain, Frame, FrameSet, Intrinsics, PixelFormat, StreamKind
from hil import pad_presentations, pad_records
from hil import padeval as P

FRAMES = 32


def _outcome(rec: dict[str, Any]) -> str:
    if rec.get("outcome") == "error":
        return str(rec.get("error"))
    if rec.get("outcome") == "not_acquired":
        return "not_acquired"
    return f"{rec.get('outcome')}:{rec.get('verdict')}"


def _run(p: pad_presentations.Presentation, gate: QualityGate, checked: bool) -> tuple[dict[str, Any], bool | None]:
    """One presentation; with ``checked`` false the window's gap check is off. Returns the record
    and, unchecked, whether the window it judged had a gap."""
    seen: dict[str, Any] = {}
    real_check, real_capture = G.WindowGaps.check, offline.capture

    def no_check(self: G.WindowGaps, fs: Any) -> None:
        return None

    def capture(*a: Any, **kw: Any) -> offline.OfflineCapture:
        c = real_capture(*a, **kw)
        seen["sets"] = c.sets
        return c

    if not checked:
        G.WindowGaps.check = no_check  # type: ignore[method-assign]
    pad_records.capture = capture
    try:
        rec = pad_records.run_presentation(p, frames=FRAMES, passive=False, gate=gate,
                                           thresholds=load_thresholds("kiosk", challenged=True))
    finally:
        G.WindowGaps.check = real_check  # type: ignore[method-assign]
        pad_records.capture = real_capture
    sets = seen.get("sets") or []
    gapped = None
    if not checked and sets:
        g = G.WindowGaps()
        gapped = any(g.check(fs) is not None for fs in sets)
    return rec, gapped


_PX = np.zeros((2, 2), np.uint8)
_INTR = Intrinsics(2, 2, 1.0, 1.0, 1.0, 1.0)
WARMUP = 8                     # framesets before the first window (the window opens mid-stream)


def matched_stream(depth_fps: float, phase_ms: float, framesets: int, drop: float, seed: int,
                   jitter_ms: float = 0.3) -> list[FrameSet]:
    """Framesets of a camera with the simulator's timing, matched as the agent matches them."""
    rng = np.random.default_rng(seed)
    frames: list[tuple[float, StreamKind, int]] = []
    for k in range(int((framesets + 4) * depth_fps / 30)):
        t = 1000.0 + k * 1000.0 / depth_fps + rng.normal(0.0, jitter_ms)
        frames += [(t, s, k) for s in (StreamKind.DEPTH, StreamKind.IR) if not rng.random() < drop]
    for k in range(framesets + 2):
        t = 1000.0 + phase_ms + k * 1000.0 / 30 + rng.normal(0.0, jitter_ms)
        if not rng.random() < drop:
            frames.append((t, StreamKind.COLOR, k))
    m = FrameSetMatcher([StreamKind.DEPTH, StreamKind.COLOR, StreamKind.IR], 30.0)
    out: list[FrameSet] = []
    for t, s, k in sorted(frames, key=lambda f: f[0]):
        out += m.push(Frame(s, _PX, PixelFormat.Y8, t, ClockDomain.HARDWARE, int((t + 3.0) * 1e6), k, _INTR))
    return out + m.flush()


def window_counts(sets: list[FrameSet]) -> collections.Counter[str]:
    c: collections.Counter[str] = collections.Counter()
    for w in range(WARMUP, len(sets) - FRAMES + 1, FRAMES):
        win = sets[w:w + FRAMES]
        g = G.WindowGaps()
        gapped = any(g.check(fs) is not None for fs in win)
        colour = [fs.color.frame_number for fs in win if fs.color is not None]
        lost = any(b - a != 1 for a, b in zip(colour, colour[1:], strict=False))
        c["windows"] += 1
        c["lost"] += lost
        c["gapped"] += gapped
        c["false_gap"] += gapped and not lost
        c["missed"] += lost and not gapped
    return c


def fast90(windows: int, drop: float) -> None:
    phases = [round(0.5 * i, 1) for i in range(23)]
    for fps in (90.0, 30.0):
        total: collections.Counter[str] = collections.Counter()
        by_phase = {}
        for i, ph in enumerate(phases):
            sets = matched_stream(fps, ph, WARMUP + windows * FRAMES, drop, seed=1000 * i + int(fps))
            c = window_counts(sets)
            by_phase[ph] = c["false_gap"]
            total += c
        counts = {k: total[k] for k in ("windows", "lost", "gapped", "false_gap", "missed")}
        print(json.dumps({"depth_fps": fps, "colour_fps": 30, "drop": drop, "framesets": FRAMES,
                          "phases_ms": [phases[0], phases[-1]], **counts,
                          "false_gaps_by_phase": {k: v for k, v in by_phase.items() if v}}), flush=True)


def cost(repeats: int = 5) -> None:
    sets = matched_stream(90.0, 5.6, 260, 0.0, seed=7)
    for n in (32, 48, 120, 240):
        win = sets[:n]
        names = sorted(k.value for k in win[0].frames)
        period_from = G.period_streams(names)

        def incremental(win: list[FrameSet] = win) -> None:
            g = G.WindowGaps()
            for fs in win:
                g.check(fs)

        def from_scratch(win: list[FrameSet] = win, names: list[str] = names,
                         period_from: frozenset[str] = period_from) -> None:
            for k in range(1, len(win) + 1):
                G.window_gap([(name, [fs.frames[StreamKind(name)].frame_number for fs in win[:k]],
                               [fs.frames[StreamKind(name)].timestamp_ms for fs in win[:k]], True)
                              for name in names], period_from=period_from)

        best = {}
        for label, fn in (("incremental", incremental), ("every_prefix", from_scratch)):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            best[label] = min(times)
        print(json.dumps({"framesets": n, "incremental_ms": round(1e3 * best["incremental"], 2),
                          "every_prefix_ms": round(1e3 * best["every_prefix"], 2),
                          "ratio": round(best["every_prefix"] / best["incremental"], 1)}), flush=True)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.lost_frames", description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="train", choices=P.SPLITS)
    ap.add_argument("--live", type=int, default=12)
    ap.add_argument("--species", default="", help="attack species, comma-separated (with --per-species)")
    ap.add_argument("--per-species", type=int, default=0)
    ap.add_argument("--injection", type=int, default=0, help="of each injection kind named in --species")
    ap.add_argument("--drop", type=float, default=0.03)
    ap.add_argument("--json", action="store_true", help="one JSON line per presentation")
    ap.add_argument("--derive", action="store_true",
                    help="run unchecked only; the checked outcome is SES_FRAMES_LOST where the window had a gap, "
                         "else the unchecked one (the frames before a gap are the same in both modes)")
    ap.add_argument("--fast90", type=int, default=0, metavar="N",
                    help="the gap rule alone on 90 fps (and 30 fps) matched streams: N windows per colour phase")
    ap.add_argument("--cost", action="store_true", help="WindowGaps.check's time against every prefix re-read")
    args = ap.parse_args(argv)
    if args.cost:
        cost()
        return 0
    if args.fast90:
        fast90(args.fast90, args.drop)
        return 0
    species = [s for s in args.species.split(",") if s]
    items = pad_presentations.presentations(args.split, live=args.live, per_species=args.per_species,
                                            injection=args.injection, species=[P.LIVE, *species])
    items = [dataclasses.replace(p, uri=f"{p.uri}&drop={args.drop:g}") if args.drop > 0 else p for p in items]
    gate = QualityGate()
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    t0 = time.monotonic()
    for p in items:
        before, gapped = _run(p, gate, checked=False)
        if args.derive:
            after = {"outcome": "error", "error": "SES_FRAMES_LOST"} if gapped else before
        else:
            after, _ = _run(p, gate, checked=True)
        b, a = _outcome(before), _outcome(after)
        counts[p.species][f"unchecked {b}"] += 1
        counts[p.species][f"checked {a}"] += 1
        counts[p.species][f"gapped {bool(gapped)}"] += 1
        if args.json:
            print(json.dumps({"key": p.key, "uri": p.uri, "unchecked": b, "unchecked_score": before.get("score"),
                              "gapped": gapped, "checked": a, "checked_message": after.get("message")}), flush=True)
        else:
            print(f"{p.key:<32} gap {'yes' if gapped else 'no ':<3}  unchecked {b:<22} score "
                  f"{before.get('score', float('nan')) if before.get('score') is not None else '-'!s:<6}  "
                  f"checked {a}", flush=True)
    print(f"\ndrop={args.drop:g}, {args.split}, {FRAMES} framesets, {len(items)} presentations, "
          f"{time.monotonic() - t0:.0f} s")
    for sp, c in counts.items():
        print(f"  {sp}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
