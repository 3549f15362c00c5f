"""Presentations of earlier ``pad-eval`` records run again, by key, on this checkout's code.

A defect found on a family's records (the sixth family's open-shade clipped skin, issue 14) is
measured on the very presentations that showed it: each record's presentation (its own URI, hence
its scene and nonce) is run as ``pad-eval`` runs it (``hil.pad_records.run_presentation``, following
distance prompts up to ``--follow-prompts`` times as ``run_following`` does), and the new record is
written with the old outcome beside it (``old``). Nothing of a face is written.

    python -m bench.rerun_records RECORDS.jsonl --keys KEYS.txt --out NEW.jsonl [--follow-prompts 2]

``KEYS.txt``: one record key a line (``sixth/bona_fide/live/5``). Never on a family that may not
be looked at (``hil.padeval.UNSEEN_SPLITS``, the family being built for a session's unseen
evaluation): refused, before anything runs. ``seventh`` and ``eighth`` were evaluated once (sessions
18 and 19) and are development sets since.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

from agent.liveness.fusion import load_thresholds
from hil import pad_presentations, pad_prompts, pad_records
from hil import padeval as P


def label(rec: dict) -> str:
    """``live``/``attack``/``inconclusive``, or ``not_acquired:REASON``/``error:CODE``."""
    if rec.get("verdict"):
        return str(rec["verdict"])
    return f"{rec['outcome']}:{rec.get('reason') or rec.get('error')}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", type=Path)
    ap.add_argument("--keys", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--follow-prompts", type=int, default=0)
    args = ap.parse_args(argv)
    keys = [k.strip() for k in args.keys.read_text().splitlines() if k.strip()]
    recs = {r["key"]: r for r in pad_records.read_records(args.records)}
    refused = sorted({k for k in keys if k.split("/", 1)[0] in P.UNSEEN_SPLITS
                      or (k in recs and recs[k]["split"] in P.UNSEEN_SPLITS)})
    if refused:
        raise SystemExit(f"{', '.join(refused)}: a family that is not to be run")
    gate = pad_records.kiosk_gate()
    thresholds = load_thresholds("kiosk", challenged=True)

    def attempt(p: pad_presentations.Presentation) -> dict:
        return pad_records.run_presentation(p, frames=32, passive=False, gate=gate, thresholds=thresholds)

    before: collections.Counter[str] = collections.Counter()
    after: collections.Counter[str] = collections.Counter()
    with args.out.open("w") as fh:
        for k in keys:
            old = recs[k]
            p = pad_presentations.Presentation(old["kind"], old["species"], old["split"], old["index"], old["uri"])
            new = pad_prompts.run_following(p, args.follow_prompts, attempt) if args.follow_prompts else attempt(p)
            new["old"] = {"outcome": old["outcome"], "verdict": old.get("verdict"), "reason": old.get("reason")}
            fh.write(json.dumps(new) + "\n")
            fh.flush()
            before[label(old)] += 1
            after[label(new)] += 1
            print(k, label(old), "->", label(new), flush=True)
    print(json.dumps({"before": dict(before), "after": dict(after)}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
