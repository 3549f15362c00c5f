"""Why lives under a moving light were refused (gobo33, issue 14: the twenty-second family's gobo).

``python -m bench.gobo_refusals PART ...``:

* ``classify RECORDS.jsonl [LIGHT]`` — every refused live record (of the scenes under ``light=LIGHT``;
  all lights without it) by the rule that refused it: an ``attack`` by what held its score at the attack
  threshold (a challenge that contradicted its sequence while measurable, a detector at or under
  ``attack_max``, the material's hard lean); an ``inconclusive`` by its failed challenges' details and the
  prompt it got (``IR_FLOOD_CANNOT_VERIFY`` is ``TOO_BRIGHT_TO_VERIFY`` on a face the gate read under
  ``IR_FLOOD_MAX_LUX`` with only the projector failed). Then what the person's retry after each prompt
  came to (the record's ``attempts``: a judged window followed by another judged window).
* ``frames RECORDS.jsonl KEY ...`` — each record's last window run again (its ``final_uri`` and the nonce
  pad-eval drew for it, the kiosk's gate and the terminal's enrolled dot reference, on this checkout's judge),
  and per frame the IR and colour levels of the face's middle
  and of the wall beside and above the head (outside the face box by 0.6 of its width), with the
  projector's schedule; summed up as the ambient's relative change between consecutive projector-off
  frames on the face and on the wall (the gobo's cut-outs move over both; a static flood over neither).
  Nothing of a face is written: levels only.
* ``retry RECORDS.jsonl PROMPT KEY ...`` — each record's last window answered as ``PROMPT`` (``LIGHT_CHANGED``:
  the same place and light, a few seconds later) up to twice while refused with a prompt, on this checkout's
  judge as pad-eval runs it (``hil.pad_records.run_presentation``): what a retry instead of "ask staff" would
  recover.

Records of a family in ``hil.padeval.UNSEEN_SPLITS`` are refused, as ``bench.rerun_records`` refuses them.
"""

from __future__ import annotations

import collections
import json
import sys
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from bench.challenge_records import _value

ATTACK_MAX = 0.2          # the kiosk's attack threshold (agent/liveness/fusion.py's default; load_thresholds)
LIVE_MIN = 0.5            # the kiosk's live threshold (fusion's default)
HARD_LEAN = "leans hard"  # the material note that holds the score at 0 (``detectors``)
DETECTORS = ("depth_geometry", "cross_modal", "motion", "material", "eye_region", "life_signs")


def light_of(rec: dict[str, Any]) -> str | None:
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(rec.get("final_uri") or rec["uri"]).query))
    return q.get("light")


def attack_causes(rec: dict[str, Any], attack_max: float = ATTACK_MAX) -> list[str]:
    """What held an ``attack`` verdict's score at the attack threshold: each challenge that failed while
    measurable (``<kind>_contradicted``), each detector at or under ``attack_max``, the material's hard lean."""
    ch = _value(rec.get("challenge")) or {}
    out = [f"{k}_contradicted" for k in ("projector", "illumination")
           if isinstance(ch.get(k), dict) and ch[k].get("passed") is False and ch[k].get("measurable", True)]
    out += [k for k, v in (rec.get("detectors") or {}).items()
            if isinstance(v, (int, float)) and v <= attack_max]
    if any(HARD_LEAN in str(n) for n in rec.get("notes") or ()):
        out.append("material_hard_lean")
    return out


def failed_details(rec: dict[str, Any]) -> tuple[str, ...]:
    """``kind: detail`` of each challenge that did not pass, the detail cut at its first colon."""
    ch = _value(rec.get("challenge")) or {}
    return tuple(f"{k}: {str(ch[k].get('detail', '')).split(':')[0]}" for k in ("projector", "illumination")
                 if isinstance(ch.get(k), dict) and ch[k].get("passed") is not True)


def undecided(rec: dict[str, Any], live_min: float = LIVE_MIN) -> tuple[str, ...]:
    """The detectors an ``inconclusive`` verdict left out (not measurable: ``<name>?``) or held under
    ``live_min`` (``<name><``)."""
    d = rec.get("detectors") or {}
    return tuple([f"{k}?" for k in DETECTORS if k not in d]
                 + [f"{k}<" for k, v in d.items() if isinstance(v, (int, float)) and v < live_min])


def classify(recs: Iterable[dict[str, Any]], light: str | None = None) -> dict[str, collections.Counter]:
    """Counters of the refused lives: ``attack`` (by cause, one count per cause), ``attack_records`` (by
    the tuple of causes), ``inconclusive`` (by prompt and failed challenges' details, or
    where every challenge passed, the detectors left out or under ``live_min``) and ``retries``
    (a judged window's prompt and the next judged window's verdict, over every record's attempts)."""
    out: dict[str, collections.Counter] = {k: collections.Counter()
                                           for k in ("attack", "attack_records", "inconclusive", "retries")}
    for r in recs:
        if r.get("species") != "live" or (light is not None and light_of(r) != light):
            continue
        judged = [a for a in (_value(r.get("attempts")) or [r]) if isinstance(a, dict) and a.get("verdict")]
        for a, b in zip(judged, judged[1:], strict=False):
            out["retries"][(a.get("prompt"), b["verdict"])] += 1
        if r.get("outcome") != "rejected":
            continue
        if r.get("verdict") == "attack":
            causes = attack_causes(r)
            out["attack_records"][tuple(causes)] += 1
            out["attack"].update(causes or ["unexplained"])
        else:
            out["inconclusive"][(r.get("prompt"), failed_details(r) or undecided(r))] += 1
    return out


def _refuse_unseen(recs: Sequence[dict[str, Any]]) -> None:
    from hil import padeval as P

    bad = sorted({r["key"] for r in recs if r.get("split") in P.UNSEEN_SPLITS})
    if bad:
        raise SystemExit(f"{', '.join(bad[:3])}: a family that is not to be run or read")


def read(path: str) -> list[dict[str, Any]]:
    with open(path) as fh:
        recs = [json.loads(line) for line in fh if line.strip()]
    _refuse_unseen(recs)
    return recs


def regions(shape: tuple[int, ...], box: Sequence[float], color_shape: tuple[int, ...]
            ) -> tuple[tuple[slice, slice], ...]:
    """The face's middle (the box less a fifth each side) and the wall left and right of the head at its
    height (from 0.3 of the box's height above it to its middle, beyond 0.6 of its width from it), in an
    image of ``shape``; ``box`` in the colour image's pixels (``color_shape``), scaled to the image."""
    h, w = shape[:2]
    sy, sx = h / color_shape[0], w / color_shape[1]
    x0, y0, x1, y1 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
    bw, bh = x1 - x0, y1 - y0
    face = (slice(int(y0 + .2 * bh), int(y1 - .2 * bh)), slice(int(x0 + .2 * bw), int(x1 - .2 * bw)))
    rows = slice(max(0, int(y0 - .3 * bh)), max(1, int(y0 + .5 * bh)))
    left = (rows, slice(0, max(1, int(x0 - .6 * bw))))
    right = (rows, slice(min(w - 1, int(x1 + .6 * bw)), w))
    return face, left, right


def level(img: np.ndarray, region: tuple[slice, slice]) -> float:
    """Mean level over ``region`` (the sum of the channels' means for a colour image)."""
    a = np.asarray(img[region], dtype=np.float64)
    return float(a.reshape(-1, a.shape[-1]).mean(0).sum()) if a.ndim == 3 else float(a.mean())


def off_motion(levels: Sequence[float] | np.ndarray, lit: Sequence[bool] | np.ndarray) -> float:
    """Median relative change of ``levels`` between consecutive unlit (projector off) frames: the
    ambient's own motion, the projector's step left out (NaN with fewer than two unlit frames)."""
    x = np.asarray(levels, dtype=np.float64)[~np.asarray(lit, dtype=bool)]
    if len(x) < 2:
        return float("nan")
    return float(np.median(np.abs(np.diff(x)) / np.maximum(1.0, 0.5 * (x[1:] + x[:-1]))))


def lit_frames(schedule: Sequence[bool], lag: int) -> np.ndarray:
    """Per frame of the stream: was the projector on (the schedule shown ``lag`` frames late; the first
    ``lag`` frames as the schedule's first)."""
    s = np.asarray(schedule, dtype=bool)
    return np.concatenate([np.repeat(s[:1], lag), s[:len(s) - lag]]) if lag else s


def frames(path: str, keys: Sequence[str]) -> None:
    import drivers
    from agent.liveness.fusion import load_thresholds
    from agent.liveness.judge import judge
    from agent.session.offline import capture
    from hil.pad_enrolment import dot_reference_for
    from hil.pad_presentations import Presentation, presentation_nonce, terminal_uri
    from hil.pad_records import kiosk_gate

    recs = {r["key"]: r for r in read(path)}
    th = load_thresholds("kiosk", challenged=True)
    for key in keys:
        old = recs[key]
        uri = old.get("final_uri") or old["uri"]
        p = Presentation(old["kind"], old["species"], old["split"], old["index"], uri)
        gate = kiosk_gate()
        ref = dot_reference_for(terminal_uri(p))         # the terminal's unit's, as pad-eval enrols it
        with drivers.open(uri) as cam:
            cap = capture(cam, 32, presentation_nonce(p), gate, require_quality=True)
        if not cap.quality.complete or cap.challenge is None:
            print(json.dumps({"key": key, "not_acquired": cap.quality.reason}), flush=True)
            continue
        v = judge(cap.sets, gate, th, challenge=cap.challenge, notes=cap.notes, dot_reference=ref)
        box = (v.evidence or {}).get("face_box")
        if not box:
            print(json.dumps({"key": key, "verdict": v.verdict.verdict, "no_face_box": True}), flush=True)
            continue
        cshape = np.asarray(cap.sets[0].color.pixels).shape if cap.sets[0].color is not None else None
        rows: dict[str, list[float]] = {k: [] for k in ("ir_face", "ir_wall", "co_face", "co_wall")}
        for fs in cap.sets:
            for name, fr in (("ir", fs.ir), ("co", fs.color)):
                img = np.asarray(fr.pixels) if fr is not None else None
                if img is None or cshape is None:
                    rows[f"{name}_face"].append(float("nan"))
                    rows[f"{name}_wall"].append(float("nan"))
                    continue
                face, left, right = regions(img.shape, box, cshape)
                rows[f"{name}_face"].append(level(img, face))
                rows[f"{name}_wall"].append(0.5 * (level(img, left) + level(img, right)))
        ch = v.verdict.challenge or {}
        proj = ch.get("projector")
        proj = proj if isinstance(proj, dict) else {}
        lit = lit_frames(cap.challenge.schedule, int(proj.get("lag_frames") or 0)) if cap.challenge.schedule \
            else np.zeros(len(cap.sets), dtype=bool)
        n = min(len(lit), len(cap.sets))
        out = {"key": key, "light": light_of(old), "old": old.get("verdict"), "verdict": v.verdict.verdict,
               "ir_face_motion": off_motion(rows["ir_face"][:n], lit[:n]),
               "ir_wall_motion": off_motion(rows["ir_wall"][:n], lit[:n]),
               "co_face_motion": off_motion(rows["co_face"][:n], lit[:n]),
               "co_wall_motion": off_motion(rows["co_wall"][:n], lit[:n]),
               "failed": failed_details({"challenge": ch}), **{k: [round(x, 2) for x in r] for k, r in rows.items()},
               "lit": [bool(x) for x in lit[:n]]}
        print(json.dumps(out), flush=True)


def retry(path: str, prompt: str, keys: Sequence[str], times: int = 2) -> None:
    """Each record's last attempt answered as ``prompt`` (a ``hil.pad_prompts`` light or retry prompt:
    ``LIGHT_CHANGED``, the same place and light a few seconds later) up to ``times`` times while it is
    refused with a prompt, run on this checkout's judge as pad-eval runs it; prints each attempt's verdict."""
    import dataclasses

    from agent.liveness.fusion import load_thresholds
    from hil.pad_presentations import Presentation
    from hil.pad_prompts import followed_uri
    from hil.pad_records import kiosk_gate, run_presentation

    recs = {r["key"]: r for r in read(path)}
    gate, th = kiosk_gate(), load_thresholds("kiosk", challenged=True)
    for key in keys:
        old = recs[key]
        last = (_value(old.get("attempts")) or [old])[-1]
        p = Presentation(old["kind"], old["species"], old["split"], old["index"], last["uri"])
        camera_s, n, got = float(last.get("camera_s") or 0.0), len(_value(old.get("attempts")) or [old]), []
        for _ in range(times):
            p = dataclasses.replace(p, uri=followed_uri(p.uri, prompt, n, camera_s))
            r = run_presentation(p, frames=32, passive=False, gate=gate, thresholds=th)
            got.append((r.get("verdict") or r["outcome"], r.get("prompt") or r.get("reason")))
            camera_s, n = float(r.get("camera_s") or 0.0), n + 1
            if r.get("verdict") == "live" or r.get("outcome") != "rejected" or not r.get("prompt"):
                break
        print(json.dumps({"key": key, "old": [old.get("verdict"), old.get("prompt")], "retries": got}), flush=True)


def _main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "classify":
        c = classify(read(argv[1]), argv[2] if len(argv) > 2 else None)
        for part, counts in c.items():
            print(f"== {part} ({sum(counts.values())})")
            for k, n in counts.most_common():
                print(f"  {n:3d}  {k}")
        return 0
    if len(argv) >= 4 and argv[0] == "retry":
        retry(argv[1], argv[2], argv[3:])
        return 0
    if len(argv) >= 3 and argv[0] == "frames":
        frames(argv[1], argv[2:])
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
