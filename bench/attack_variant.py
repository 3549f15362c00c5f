"""What the benches that render pad-eval's own attack presentations with a changed instrument share
(``bench.fringe_attack``: a fringe lying on it; ``bench.conformal_band``: a printed eye band pressed onto
the face): the split guard, the presentations judged as pad-eval judges them, and one printed row each.
Records hold cues and verdicts only; no face is written."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from agent.liveness.fusion import load_thresholds
from agent.quality import QualityGate
from hil import pad_presentations, pad_prompts, pad_records
from hil import padeval as P


def refuse_unseen(split: str) -> None:
    """Exit when ``split`` is not a family, or is the one being built unseen (``P.UNSEEN_SPLITS``)."""
    if split in P.UNSEEN_SPLITS or split not in P.SPLITS:
        raise SystemExit(f"{split}: a family that is not to be run")


def run(split: str, items: Iterable[tuple[str, int]], follow_prompts: int, out: Path | None,
        tag: dict[str, object], cues: tuple[str, ...]) -> None:
    """Each (species, index) presentation of ``split`` judged as pad-eval does (challenged, 32 frames,
    up to ``follow_prompts`` prompts followed); its record, with ``tag`` added, appended to ``out``."""
    gate = QualityGate()
    thresholds = load_thresholds("kiosk", challenged=True)

    def attempt(p: pad_presentations.Presentation) -> dict:
        return pad_records.run_presentation(p, frames=32, passive=False, gate=gate, thresholds=thresholds)

    sink = out.open("a") if out else None
    for sp, i in items:
        p = pad_presentations.Presentation("attack", sp, split, i, pad_presentations.presentation_uri(split, sp, i))
        rec = pad_prompts.run_following(p, follow_prompts, attempt)
        rec.update(tag)
        if sink:
            sink.write(json.dumps(rec) + "\n")
            sink.flush()
        shown = rec.get("cues") or {}
        det = rec.get("detectors") or {}
        print(p.key, rec.get("verdict") or f"{rec['outcome']}:{rec.get('reason')}", f"score={rec.get('score')}",
              " ".join(f"{k}={v:.2f}" for k, v in det.items()),
              " ".join(f"{k.removeprefix('projector_')}={shown[k]:.3f}" for k in cues if k in shown), flush=True)
    if sink:
        sink.close()
