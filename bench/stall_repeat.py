"""Issue 14: does a pad-eval presentation give the same record when the process stalls? One
presentation (``hil.pad_records.run_presentation``, the CLI's thresholds and nonce) run twice in this
process: as is, and with a real 0.2 s sleep between the depth and IR deliveries of one depth tick
(the process descheduled there on a loaded machine: more than the frameset matcher's 4-frame
latency bound at 30 fps). Prints both outcomes, the projector schedule check of each and whether
the two records are identical.

    .venv/bin/python -m bench.stall_repeat field:30 [--stall-tick 20] [--stall-s 0.2]

No face data: records hold cues and scores only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from agent.liveness.fusion import load_thresholds
from agent.quality import QualityGate
from drivers.frame import StreamKind
from drivers.sim import camera as simcam
from hil import pad_presentations, pad_records
from hil import padeval as P


def _run(p: pad_presentations.Presentation, stall_tick: int | None, stall_s: float) -> dict[str, Any]:
    deliver = simcam.SimCamera._deliver

    def stalling(self: simcam.SimCamera, kind: StreamKind, *a: Any, **kw: Any) -> None:
        if stall_tick is not None and kind is StreamKind.IR and self._depth_tick - 1 == stall_tick:
            time.sleep(stall_s)
        deliver(self, kind, *a, **kw)

    simcam.SimCamera._deliver = stalling  # type: ignore[method-assign]
    try:
        return pad_records.run_presentation(p, frames=32, passive=False, gate=QualityGate(),
                                            thresholds=load_thresholds("kiosk", challenged=True))
    finally:
        simcam.SimCamera._deliver = deliver  # type: ignore[method-assign]


def _line(label: str, rec: dict[str, Any]) -> str:
    proj = (rec.get("challenge") or {}).get("projector")
    check = proj
    if isinstance(proj, dict):
        check = {k: proj.get(k) for k in ("passed", "checked", "mismatches", "late_edges")}
    return f"{label:<8} {rec.get('outcome')} score {rec.get('score')}  projector schedule check {json.dumps(check)}"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.stall_repeat", description=__doc__.split("\n\n")[0])
    ap.add_argument("presentation", help="SPLIT:INDEX of a bona fide presentation, e.g. field:30")
    ap.add_argument("--stall-tick", type=int, default=20, help="depth tick whose IR delivery is delayed")
    ap.add_argument("--stall-s", type=float, default=0.2)
    args = ap.parse_args(argv)
    split, _, index = args.presentation.partition(":")
    i = int(index)
    p = pad_presentations.presentations(split, live=i + 1, per_species=0, injection=0, species=[P.LIVE])[i]
    calm = _run(p, None, args.stall_s)
    stalled = _run(p, args.stall_tick, args.stall_s)
    print(p.key)
    print(_line("as is", calm))
    print(_line(f"stalled {args.stall_s:g} s at tick {args.stall_tick}", stalled))
    print("records identical:", calm == stalled)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
