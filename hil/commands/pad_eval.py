"""``capture-agent pad-eval [--json]``: presentation-attack bench on simulated presentations."""

from __future__ import annotations

import json
import sys

from agent.errors import UsageError
from agent.liveness.fusion import CALIBRATION_PATH
from hil.padeval import evaluate


def register(sub) -> None:
    p = sub.add_parser("pad-eval", help="APCER per attack species, BPCER, BPCER at APCER 0.1 %%, injection rejection")
    p.add_argument("--per-species", type=int, default=6, help="sessions per attack species per split (default 6)")
    p.add_argument("--live", type=int, default=12, help="live sessions per split (default 12)")
    p.add_argument("--frames", type=int, default=32, help="framesets per session (default 32, as the server asks)")
    p.add_argument("--injection", type=int, default=4, help="injected-replay sessions (default 4)")
    p.add_argument("--write-calibration", action="store_true",
                   help=f"store the fitted thresholds in {CALIBRATION_PATH.name} for every channel")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    if min(args.per_species, args.live, args.frames) < 1 or args.frames < 8:
        raise UsageError("--per-species and --live must be >= 1, --frames >= 8")

    def progress(k, n, p, v):
        print(f"[{k}/{n}] {p.species:<13} {v.verdict:<12} score {v.score:.2f}", file=sys.stderr)

    out = evaluate(args.per_species, args.live, args.frames, args.injection, None if args.json else progress)
    if args.write_calibration:
        th = out["thresholds"]
        entry = {"live_min": th["live_min"], "attack_max": th["attack_max"]}
        CALIBRATION_PATH.write_text(json.dumps({
            "note": "fitted by `capture-agent pad-eval --write-calibration` on the simulator's calibration split",
            "default": entry, "channels": {c: entry for c in ("counter", "kiosk", "vtm", "mobile")}}, indent=2) + "\n")
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    t = out["test"]
    print(f"thresholds: live >= {out['thresholds']['live_min']:.3f}, attack <= {out['thresholds']['attack_max']:.3f}")
    print(f"{'SPECIES':<14} {'APCER':>7} {'N':>4}")
    for sp, v in t["apcer_by_species"].items():
        print(f"{sp:<14} {v['apcer']:>7.1%} {v['n']:>4}")
    print(f"BPCER {t['bpcer']:.1%} (n={t['counts']['live']}); BPCER at APCER 0.1 % {t['bpcer_at_apcer_0.1pct']:.1%}; "
          f"max APCER {t['max_apcer']:.1%} (n={t['counts']['attacks']})")
    inj = out["injection"]
    print(f"injection (replay ignoring the challenge): {inj['rejected']}/{inj['n']} rejected")
    return 0
