"""Lost framesets in the challenge window (issue 14, review 7's medium): pad-eval presentations
with the simulator dropping frames (``&drop=P``: each frame of each stream lost with probability P),
judged as ``pad-eval`` judges them (``hil.padeval.run_presentation``: its thresholds, its nonce),
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

from agent.liveness.fusion import load_thresholds
from agent.pipeline import gaps as G
from agent.quality import QualityGate
from agent.session import offline
from hil import padeval as P

FRAMES = 32


def _outcome(rec: dict[str, Any]) -> str:
    if rec.get("outcome") == "error":
        return str(rec.get("error"))
    if rec.get("outcome") == "not_acquired":
        return "not_acquired"
    return f"{rec.get('outcome')}:{rec.get('verdict')}"


def _run(p: P.Presentation, gate: QualityGate, checked: bool) -> tuple[dict[str, Any], bool | None]:
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
    P.capture = capture
    try:
        rec = P.run_presentation(p, frames=FRAMES, passive=False, gate=gate,
                                 thresholds=load_thresholds("kiosk", challenged=True))
    finally:
        G.WindowGaps.check = real_check  # type: ignore[method-assign]
        P.capture = real_capture
    sets = seen.get("sets") or []
    gapped = None
    if not checked and sets:
        g = G.WindowGaps()
        gapped = any(g.check(fs) is not None for fs in sets)
    return rec, gapped


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
    args = ap.parse_args(argv)
    species = [s for s in args.species.split(",") if s]
    items = P.presentations(args.split, live=args.live, per_species=args.per_species, injection=args.injection,
                            species=[P.LIVE, *species])
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
