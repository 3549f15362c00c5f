"""``capture-agent pad-eval``: an ISO/IEC 30107-3 report on a simulator family (train, heldout, field,
fresh, fifth, sixth, seventh, eighth, ninth, tenth, eleventh, twelfth, thirteenth, fourteenth,
fifteenth, sixteenth, seventeenth, eighteenth, nineteenth, twentieth, twentyfirst, twentysecond,
twentythird)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agent.errors import UsageError
from agent.liveness.detectors import active_ramps, ramps
from agent.liveness.fusion import CALIBRATION_PATH, load_calibration, load_thresholds
from drivers.sim import ATTACKS
from hil import pad_fit, pad_presentations, pad_records, pad_report
from hil import padeval as P


def register(sub) -> None:
    p = sub.add_parser("pad-eval", help="ISO/IEC 30107-3 report: APCER per species with bounds, BPCER, "
                                        "BPCER at APCER 0.1 %% (threshold fixed on train), FTA by reason, injection")
    p.add_argument("--split", choices=P.SPLITS, default="heldout",
                   help="family to present (default heldout; field: added after tuning; fresh: added after the judge "
                        "was fixed, since diagnosed; fifth: added after that, evaluated once; sixth: added after that, "
                        "evaluated once; seventh: added after that, evaluated once; eighth: added after that, "
                        "evaluated once; ninth: added after that, evaluated once; tenth: added after that, "
                        "evaluated once; eleventh: added after that, evaluated once in part; twelfth: added after "
                        "that, evaluated once; thirteenth: added after that, evaluated once; fourteenth: added after "
                        "that, evaluated once; fifteenth: added after that, evaluated once; sixteenth: added after "
                        "that, evaluated once; seventeenth: added after that, evaluated once; eighteenth: added after "
                        "that, evaluated once; nineteenth: added after that, evaluated once; twentieth: added after "
                        "that, evaluated once; twentyfirst: added after that, evaluated once; twentysecond: added "
                        "after that, evaluated once; twentythird: added after that, evaluated once); "
                        "thresholds are fitted on train")
    p.add_argument("--per-species", type=int, default=P.DEFAULT_PER_SPECIES,
                   help=f"presentations per attack species (default {P.DEFAULT_PER_SPECIES})")
    p.add_argument("--live", type=int, default=P.DEFAULT_LIVE,
                   help=f"bona fide presentations (default {P.DEFAULT_LIVE})")
    p.add_argument("--injection", type=int, default=P.DEFAULT_INJECTION,
                   help=f"presentations per injection kind: {', '.join(P.INJECTIONS)} (default {P.DEFAULT_INJECTION}); "
                        f"{', '.join(P.NAMED_INJECTIONS)} only when --species names it")
    p.add_argument("--species", help="comma-separated subset to run: live, attack species, injection kinds")
    p.add_argument("--frames", type=int, default=32, help="framesets per challenge window (default 32)")
    p.add_argument("--passive", action="store_true",
                   help="no challenge: judge as a recording or a camera without projector control is judged")
    p.add_argument("--recordings", type=Path, metavar="DIR",
                   help="record each presentation to a genuine RealSense .db3 in DIR (deleted after) and judge "
                        "it with analyze realsense+file://: the passive path on recordings, reported apart")
    p.add_argument("--records", type=Path,
                   help="append each presentation's record (no face data) to this JSONL file and skip the ones "
                        "already in it; the report covers every record of the split there")
    p.add_argument("--report-only", action="store_true", help="run nothing: report the --records file")
    p.add_argument("--write-calibration", action="store_true",
                   help=f"(--split train) store the fitted thresholds in {CALIBRATION_PATH.name}")
    p.add_argument("--no-dot-reference", action="store_true",
                   help="challenged sessions without the projector pattern check (by default each camera profile "
                        "is enrolled first with projector-enrol's code, once per run, and every pair tested)")
    p.add_argument("--follow-prompts", type=int, default=0, metavar="N",
                   help="a presentation refused with MOVE_CLOSER or MOVE_BACK is presented again, its person (or "
                        "attacker) moved as told by one step (mean 70 mm), up to N more times; the report gives "
                        "every rate at the first attempt and after the prompts (default 0: nobody moves); one told "
                        "TOO_BRIGHT_TO_VERIFY steps into shade (lux / 4, a model); one told LIGHT_CHANGED stays and "
                        "tries again 3 s after the last attempt ended (its camera time + 3 s later)")
    p.add_argument("--ir-leak", action="store_true",
                   help="render every presentation with ir_leak=1: the visible light (room and displays) that IR "
                        "imagers without an IR-pass filter see (docs/sim.md); only on splits whose every camera lacks "
                        "one (train, field, eighth; the thirteenth, fifteenth, sixteenth and eighteenth render it "
                        "always); "
                        "reported apart "
                        "from runs without")
    p.add_argument("--cornea", action="store_true",
                   help="render every presentation with cornea=1: the corneas' mirror images of the projector and "
                        "the lamp (docs/sim.md), under the nonce of the same presentation without it; reported apart "
                        "from runs without")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    if min(args.per_species, args.live) < 0 or args.injection < 0 or args.frames < 8:
        raise UsageError("--per-species, --live and --injection must be >= 0, --frames >= 8")
    if args.follow_prompts < 0:
        raise UsageError("--follow-prompts must be >= 0")
    if args.follow_prompts and (args.recordings is not None or args.write_calibration):
        raise UsageError("--follow-prompts applies to simulator presentations, not to --recordings or "
                         "--write-calibration")
    if args.write_calibration and args.split != "train":
        raise UsageError("--write-calibration fits on the train split only (--split train)")
    if args.write_calibration and args.recordings is not None:
        raise UsageError("--write-calibration fits on live simulator presentations, not on recordings")
    if args.write_calibration and args.records is None:
        raise UsageError("--write-calibration fits on a --records file's train records")
    if args.report_only and args.records is None:
        raise UsageError("--report-only needs --records FILE")
    ir_leak = bool(getattr(args, "ir_leak", False))
    if ir_leak and args.split not in P.ir_leak_splits():
        raise UsageError(f"--ir-leak: the {args.split} family has a camera whose IR imagers see no visible light "
                         f"(an IR-pass or band-pass filter, or not known); splits it runs on: "
                         f"{', '.join(P.ir_leak_splits())}")
    if ir_leak and (args.recordings is not None or args.write_calibration):
        raise UsageError("--ir-leak applies to simulator presentations, not to --recordings or --write-calibration")
    cornea = bool(getattr(args, "cornea", False))
    if cornea and (args.recordings is not None or args.write_calibration):
        raise UsageError("--cornea applies to simulator presentations, not to --recordings or --write-calibration")
    species = None
    if args.species:
        species = [s.strip() for s in args.species.split(",") if s.strip()]
        known = {P.LIVE, *ATTACKS, *P.INJECTIONS, *P.NAMED_INJECTIONS}
        unknown = sorted(set(species) - known)
        if unknown:
            raise UsageError(f"unknown species {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if args.recordings is not None:
        args.passive = True                     # a recording cannot obey a challenge
        args.recordings.mkdir(mode=0o700, parents=True, exist_ok=True)
    source = "db3" if args.recordings is not None else "sim"
    mode = "passive" if args.passive else "challenged"
    thresholds = load_thresholds("kiosk", challenged=not args.passive)

    def progress(k: int, n: int, rec: dict) -> None:
        score = rec.get("score")
        what = rec["outcome"] + (f" ({rec['reason']})" if rec.get("reason") else "")
        print(f"[{k}/{n}] {rec['species']:<15} {what:<32} score {score if score is not None else '-'}",
              file=sys.stderr)

    items = pad_presentations.presentations(args.split, live=args.live, per_species=args.per_species,
                                            injection=0 if args.passive else args.injection, species=species,
                                            ir_leak=ir_leak, cornea=cornea)
    if args.report_only:
        records = pad_records.read_records(args.records)
    else:
        made = pad_records.run(items, frames=args.frames, passive=args.passive, thresholds=thresholds,
                               records=args.records, progress=None if args.json else progress,
                               recordings=args.recordings, dot_reference=not args.no_dot_reference,
                               follow_prompts=args.follow_prompts)
        records = pad_records.read_records(args.records) if args.records is not None else made
    if args.write_calibration:
        # Every ramp and both modes' thresholds, from this file's train records (passive ones for
        # the per-frame cues, challenged ones for the projector's speckle).
        write_calibration(records, args.frames)
    # Scores as the current calibration's ramps give them (records keep the score of their run).
    records = pad_fit.rescored(records, active_ramps(refresh=True))
    if args.split == "train":
        fit = pad_fit.fit_thresholds(pad_records.select(records, split="train", passive=args.passive,
                                                        frames=args.frames, source=source,
                                                        follow_prompts=args.follow_prompts, ir_leak=ir_leak,
                                                        cornea=cornea))
        live_min = fit["live_min"]
        threshold_source = ("fitted on this train split (APCER <= 0.1 % per species, margin 0.02; "
                            f"not held: {', '.join(fit['not_held']) or 'none'})")
    else:
        live_min = load_thresholds("kiosk", challenged=not args.passive).live_min
        threshold_source = f"{CALIBRATION_PATH.name} ({mode}), fitted on train"
    out = pad_report.report(records, split=args.split, passive=args.passive, live_min=live_min,
                            threshold_source=threshold_source, frames=args.frames, source=source,
                            follow_prompts=args.follow_prompts, ir_leak=ir_leak, cornea=cornea)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    _print(out)
    return 0


def write_calibration(records: list[dict], frames: int) -> None:
    train = pad_records.select(records, split="train", frames=frames, source="sim")
    passive = [r for r in train if r["passive"]]
    challenged = [r for r in train if not r["passive"]]
    if not passive:
        raise UsageError("--write-calibration needs the train family's passive records (pad-eval --split train "
                         "--passive --records FILE) to fit the cues on")
    fitted = pad_fit.fit_ramps(passive, challenged)
    r = ramps(fitted["ramps"])
    cal = {k: v for k, v in load_calibration().items() if k not in ("ramps", "ramps_fit")}
    cal["note"] = ("fitted by `capture-agent pad-eval --split train --write-calibration` on the simulator's "
                   "train family only; the held-out family is reported at these values")
    cal["ramps"], cal["ramps_fit"] = fitted["ramps"], fitted["notes"]
    for mode, recs in (("passive", passive), ("challenged", challenged)):
        if recs:
            fit = pad_fit.fit_thresholds(pad_fit.rescored(recs, r))
            cal = pad_fit.with_mode(cal, mode, fit, {"split": "train", "frames": frames})
    CALIBRATION_PATH.write_text(json.dumps(cal, indent=2) + "\n")


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _print(out: dict) -> None:
    leak = ", ir_leak=1 (broadband IR imagers' visible light rendered)" if out.get("ir_leak") else ""
    leak += ", cornea=1 (the corneas' glints rendered)" if out.get("cornea") else ""
    print(f"split {out['split']}{leak}, {out['mode']}, {out['source']}, {out['frames_per_session']} framesets per "
          "window; "
          f"live threshold {out['threshold']['live_min']:.3f} ({out['threshold']['source']})")
    print(f"{'SPECIES':<16} {'APCER':>7} {'UPPER95':>8} {'N':>4} {'APNRR':>7} {'LOWER95':>8} {'REFUSED':>8}"
          "  not acquired by reason")
    for s in out["species"] + out["injection"]:
        refused = f"{s['presented'] - s['n']}/{s['presented']}"
        print(f"{s['name']:<16} {_pct(s['apcer']):>7} {_pct(s['apcer_upper95']):>8} {s['n']:>4} "
              f"{_pct(s['apnrr']):>7} {_pct(s.get('apnrr_lower95')):>8} {refused:>8}  {s['apnrr_by_reason'] or ''}")
    print(f"BPCER {_pct(out['bpcer'])} (upper95 {_pct(out['bpcer_upper95'])}, n={out['bpcer_n']}); "
          f"at APCER <= 0.1 % with the train threshold: max APCER {_pct(out['max_apcer'])}")
    print(f"FTA {_pct(out['fta'])} (upper95 {_pct(out['fta_upper95'])}, n={out['fta_n']}); inside the envelope "
          f"{_pct(out['fta_in_envelope'])} (n={out['fta_in_envelope_n']}); by reason {out['fta_by_reason']}")
    if "first_attempt" in out:
        f, pf = out["first_attempt"], out["prompts_followed"]
        print(f"(rates above: {out['rates']})")
        print(f"first attempt: FTA {_pct(f['fta'])} (upper95 {_pct(f['fta_upper95'])}, n={f['fta_n']}) by reason "
              f"{f['fta_by_reason']}; BPCER {_pct(f['bpcer'])} (n={f['bpcer_n']}); max APCER {_pct(f['max_apcer'])}")
        for kind in ("bona_fide", "attack", "injection"):
            if kind in pf:
                k = pf[kind]
                print(f"{kind}: attempts {k['attempts']}, acquired after a prompt {k['acquired_after_a_prompt']}, "
                      f"camera seconds median {k['camera_seconds']['median']} p90 {k['camera_seconds']['p90']}")
                lp = k["light_prompts"]
                if lp["retried"]:
                    # Refused with the prompt first, then presented again: counted accepted above.
                    print(f"{kind}: retried after a light prompt {lp['retried']} {lp['answers']}, accepted only "
                          f"after one {lp['accepted_only_after_one']} (after stepping into shade "
                          f"{lp['accepted_only_after_shade']}; every shade step ended {lp['after_shade']})")
                if lp["stopped"]:
                    # A prompt no step answers (an infrared flood): the person tried no more.
                    print(f"{kind}: ended on a prompt no step answers {lp['stopped']}")
    if out["counts"]["errors"]:
        print(f"errors (in no rate): {out['counts']['errors']}")
