"""The quality phase alone, as pad-eval runs it, on a family's live presentations: how many complete
(FTA is the rest) and after how many framesets, without the challenge window or the judge.

    python -m bench.quality_phase --split sixth --live 60 [--json OUT]

Each presentation runs ``agent.session.offline.capture`` itself, ended after its quality phase
(``window=False``: projector power plan, IR exposure plan, face metering, at most ``QUALITY_MAX_SETS``
framesets, as with pad-eval's ``require_quality``) on pad-eval's URI and nonce for it. To compare
two versions of the gate, run this file by path under each one's ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from agent.quality import QualityGate


def run_one(uri: str, nonce: bytes, gate: QualityGate) -> dict:
    """One presentation's quality phase: ``capture`` with pad-eval's patience (``require_quality``)
    ended before the window, so the set-up measured is the one pad-eval and ``analyze`` run."""
    import drivers
    from agent.session.offline import capture

    with drivers.open(uri) as cam:
        q = capture(cam, 32, nonce, gate, require_quality=True, window=False).quality
    return {"uri": uri, "complete": q.complete, "framesets": q.framesets, "reason": q.reason}


def main(argv: list[str] | None = None) -> int:
    from agent.quality import QualityGate
    from hil.pad_presentations import presentation_nonce, presentations
    from hil.padeval import UNSEEN_SPLITS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", required=True)
    p.add_argument("--live", type=int, default=60)
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    if a.split in UNSEEN_SPLITS:
        p.error(f"{a.split} is the unseen test family: not run here")
    gate = QualityGate()                # one gate (and face models) for the run; reset per phase
    rows = [run_one(x.uri, presentation_nonce(x), gate)
            for x in presentations(a.split, live=a.live, per_species=0, injection=0, species=["live"])]
    done = [r["framesets"] for r in rows if r["complete"]]
    summary = {"split": a.split, "live": len(rows), "complete": len(done), "fta": len(rows) - len(done),
               "fta_reasons": dict(Counter(r["reason"] for r in rows if not r["complete"])),
               "framesets_to_complete": {"mean": round(float(np.mean(done)), 2) if done else None,
                                         "median": float(np.median(done)) if done else None,
                                         "counts": {str(k): v for k, v in sorted(Counter(done).items())}}}
    print(json.dumps(summary))
    if a.json is not None:
        a.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
