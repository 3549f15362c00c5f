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

* ``cells RECORDS.jsonl [--tiles RxC] KEY ...`` (gobo34) — each record's last window run again, its IR images
  cut into ``TILES`` (or R x C) cells: per pair of frames the cells no cut-out's edge crossed (:func:`crossed`:
  the cell's level moved unlike the frame's other cells, the projector's own step per cell left out), and the
  projector's schedule checked on the whole image's dot energy (the judge's read), on the energy stitched from the still
  cells pair by pair (:func:`stitched`) and on the cells crossed in few pairs (:func:`steady_read`).
  Levels and energies only, nothing of a face.
* ``adversary TRIALS [CELLS READS,...]`` (gobo34) — an injector drawing moving edges over all cells (48, or
  CELLS) but a few it leaves to be read (0, 4, 8, 24, or READS; :func:`attacker_cells`), blind to the schedule
  (one stream or two) or told it: how often the whole image's check passes, how often a cell read passes where
  the whole image's was not measurable.

Records of a family in ``hil.padeval.UNSEEN_SPLITS`` are refused, as ``bench.rerun_records`` refuses them.
"""

from __future__ import annotations

import collections
import json
import sys
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
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


def _rerun(old: dict[str, Any]) -> tuple[Any, Any, Any] | None:
    """The record's last window captured again (its ``final_uri`` and the nonce pad-eval drew for it, the
    kiosk's gate) and judged on this checkout's judge with the terminal's enrolled dot reference: (capture,
    judgement, gate), or None (the reason printed) when the window was not acquired."""
    import drivers
    from agent.liveness.fusion import load_thresholds
    from agent.liveness.judge import judge
    from agent.session.offline import capture
    from hil.pad_enrolment import dot_reference_for
    from hil.pad_presentations import Presentation, presentation_nonce, terminal_uri
    from hil.pad_records import kiosk_gate

    uri = old.get("final_uri") or old["uri"]
    p = Presentation(old["kind"], old["species"], old["split"], old["index"], uri)
    gate = kiosk_gate()
    ref = dot_reference_for(terminal_uri(p))         # the terminal's unit's, as pad-eval enrols it
    with drivers.open(uri) as cam:
        cap = capture(cam, 32, presentation_nonce(p), gate, require_quality=True)
    if not cap.quality.complete or cap.challenge is None:
        print(json.dumps({"key": old["key"], "not_acquired": cap.quality.reason}), flush=True)
        return None
    v = judge(cap.sets, gate, load_thresholds("kiosk", challenged=True), challenge=cap.challenge,
              notes=cap.notes, dot_reference=ref)
    return cap, v, gate


def _reruns(path: str, keys: Sequence[str]) -> Iterator[tuple[str, dict[str, Any], Any, Any]]:
    """(key, record, capture, judgement) of each record's window run again (:func:`_rerun`), those acquired."""
    recs = {r["key"]: r for r in read(path)}
    for key in keys:
        got = _rerun(recs[key])
        if got is not None:
            yield key, recs[key], got[0], got[1]


def frames(path: str, keys: Sequence[str]) -> None:
    """Per frame of each record's window run again: the face's and the wall's IR and colour levels (module
    docstring), one JSON line per record."""
    for key, old, cap, v in _reruns(path, keys):
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


TILES = (6, 8)            # the IR image cut into rows x columns of cells for ``cells``
CROSSED_SHARE = 0.15      # a cell's level changed this much more than the frame's median cell: an edge crossed it
STEADY_CROSSED = 0.1      # of the pairs: a cell crossed in no more is read on every frame (``steady``)
MIN_STEADY = 4            # cells, at least, for the steady read
MIN_STILL = 0.5           # of the cells, still in a pair for the pair to be read at all


def tile_series(irs: Sequence[np.ndarray], tiles: tuple[int, int] = TILES) -> tuple[np.ndarray, np.ndarray]:
    """(energy, level), each (frames, cells): per cell of each IR image its dot energy (the standard
    deviation of the image less its Gaussian blur at 2 px, as :func:`agent.liveness.challenge.dot_energy`)
    and its blurred level's mean (the ambient's and the dots' light, without the dots' texture)."""
    import cv2

    en, lv = [], []
    for ir in irs:
        x = np.asarray(ir, dtype=np.float32)
        blur = cv2.GaussianBlur(x, (0, 0), 2.0)
        hp = x - blur
        h, w = x.shape[:2]
        rows = np.linspace(0, h, tiles[0] + 1).astype(int)
        cols = np.linspace(0, w, tiles[1] + 1).astype(int)
        en.append([float(np.std(hp[rows[i]:rows[i + 1], cols[j]:cols[j + 1]]))
                   for i in range(tiles[0]) for j in range(tiles[1])])
        lv.append([float(np.mean(blur[rows[i]:rows[i + 1], cols[j]:cols[j + 1]]))
                   for i in range(tiles[0]) for j in range(tiles[1])])
    return np.asarray(en), np.asarray(lv)


def crossed(level: np.ndarray, lit: Sequence[bool] | np.ndarray, share: float = CROSSED_SHARE) -> np.ndarray:
    """(frames - 1, cells): did an edge cross the cell between frame k - 1 and k? Each cell's level's
    relative change less the projector's own step in that cell (the median of its change across the
    frames ``lit`` switches, signed), departing from the frame's median cell's by more than ``share``
    (a flood's swell moves every cell alike; a cut-out's edge the cells it crosses). ``lit`` is the
    energies' own split (``projector_states``), not the schedule."""
    lv = np.maximum(np.asarray(level, dtype=np.float64), 1.0)
    r = np.log(lv[1:] / lv[:-1])
    on = np.asarray(lit, dtype=np.float64)[:len(lv)]
    d = on[1:] - on[:-1]                                   # +1 the dots came on, -1 went off
    if np.any(d != 0):
        step = np.median(r[d != 0] * d[d != 0][:, None], axis=0)
        r = r - d[:, None] * step[None]
    return np.abs(r - np.median(r, axis=1, keepdims=True)) > share


def stitched(energy: np.ndarray, moved: np.ndarray, min_still: float = MIN_STILL,
             max_skipped: float = 0.25) -> tuple[np.ndarray, int]:
    """((frames,), pairs skipped): the window's dot energy read only in still cells: frame k's is frame
    k - 1's plus the mean change, between the two, of the cells no edge crossed in that pair; a pair with
    fewer than ``min_still`` of the cells still is skipped (frame k's as frame k - 1's). All NaN (then
    :func:`verify_projector` finds it not measured) past ``max_skipped`` of the pairs skipped."""
    e = np.asarray(energy, dtype=np.float64)
    out = np.empty(len(e))
    out[0] = float(np.mean(e[0]))
    skipped = 0
    for k in range(1, len(e)):
        still = ~moved[k - 1]
        if np.count_nonzero(still) < min_still * still.size:
            out[k], skipped = out[k - 1], skipped + 1
            continue
        out[k] = out[k - 1] + float(np.mean(e[k, still] - e[k - 1, still]))
    if skipped > max_skipped * max(1, len(e) - 1):
        out[:] = np.nan
    return out, skipped


def _brief(r: Any) -> list[Any]:
    """A projector check's result in short: passed, measurable, the detail's start, d', lag, mismatches."""
    return [r.passed, r.measurable, r.detail.split(":")[0][:40], round(r.separation, 2), r.lag_frames, r.mismatches]


def cells(path: str, keys: Sequence[str], tiles: tuple[int, int] = TILES) -> None:
    """Each record's window run again; its projector check on the whole image's dot energy (as the judge
    reads it) and on the energy read only in the cells no edge crossed per pair (:func:`stitched`), with
    the share of cells still per pair."""
    from agent.liveness.challenge import dot_energy, projector_states, verify_projector

    for key, old, cap, v in _reruns(path, keys):
        irs = [np.asarray(fs.ir.pixels) for fs in cap.sets if fs.ir is not None]
        sched = cap.challenge.schedule
        if len(irs) != len(cap.sets) or not sched:
            print(json.dumps({"key": key, "no_ir_or_schedule": True}), flush=True)
            continue
        whole = [dot_energy(ir) for ir in irs]
        en, lv = tile_series(irs, tiles)
        moved = crossed(lv, projector_states(whole))
        st, skipped = stitched(en, moved)
        steady = moved.mean(axis=0) <= STEADY_CROSSED      # the cells an edge crossed in few pairs
        held = steady_read(en, moved)
        a, b, c = verify_projector(sched, whole), verify_projector(sched, st), verify_projector(sched, held)
        ch = v.verdict.challenge or {}
        print(json.dumps({
            "key": key, "light": light_of(old), "old": [old.get("verdict"), old.get("prompt")],
            "verdict": v.verdict.verdict, "prompt": getattr(v.verdict, "prompt", None),
            "failed": failed_details({"challenge": ch}),
            "still": [round(1 - float(m.mean()), 2) for m in moved], "skipped": skipped,
            "whole": _brief(a), "cells": _brief(b), "steady_cells": int(np.count_nonzero(steady)),
            "steady": _brief(c)}),
            flush=True)


def steady_read(energy: np.ndarray, moved: np.ndarray, crossed_share: float = STEADY_CROSSED,
                min_cells: int = MIN_STEADY) -> np.ndarray:
    """(frames,) the dot energy of the cells an edge crossed in no more than ``crossed_share`` of the
    pairs, their mean per frame; all NaN with fewer than ``min_cells`` such cells."""
    steady = moved.mean(axis=0) <= crossed_share
    if np.count_nonzero(steady) < min_cells:
        return np.full(len(energy), np.nan)
    return np.asarray(energy, dtype=np.float64)[:, steady].mean(axis=1)


def attacker_cells(schedule: Sequence[bool], rng: np.random.Generator, read: int, mode: str,
                   cells: int = TILES[0] * TILES[1]) -> tuple[np.ndarray, np.ndarray]:
    """(energy, level), each (frames, cells), of an injected stream that draws sharp moving edges over
    every cell but ``read`` of them (a cut-out's edge over another part of the cell every frame: its level
    x 1-2, its texture's energy 0-40 over the dots' 4 -> 12, drawn per frame: the whole image's energy
    drowned, so a fallback read would be asked). ``mode``: ``blind`` (the read cells show a
    stream of another nonce's rhythm, the crossed ones the same: one stream), ``two`` (the read cells one
    blind stream, the crossed cells another: two tries in one window), ``told`` (the read cells follow
    ``schedule`` itself: an injector that sees the commands, against which the schedule is no proof and
    the unit's dot pattern is; here as the ceiling)."""
    from bench.challenge_stats import blind_projector_stream

    n = len(schedule)
    a = blind_projector_stream(n, rng, "rhythm")
    if mode == "told":
        a = np.asarray(schedule, dtype=bool)
    b = blind_projector_stream(n, rng, "rhythm") if mode == "two" else a
    energy = np.empty((n, cells))
    level = np.empty((n, cells))
    for c in range(cells):
        s = a if c < read else b
        energy[:, c] = np.where(s, 12.0, 4.0) + rng.normal(0, 0.1, n)
        level[:, c] = np.where(s, 60.0, 50.0) * (1 + rng.normal(0, 0.01, n))
        if c >= read:                       # a cut-out's edge over this cell, another part of it every frame
            level[:, c] *= 1.0 + rng.uniform(0.0, 1.0, n)
            energy[:, c] += rng.uniform(0.0, 40.0, n)
    return energy, level


def adversary(trials: int, reads: Sequence[int] = (0, 4, 8, 24), frames_n: int = 32, seed: int = 34,
              cells: int = TILES[0] * TILES[1]) -> dict[str, dict[str, int]]:
    """Per attacker mode and number of cells left read: of ``trials`` fresh nonces, how often the window's
    projector check passes on the whole image's energy (the cells' mean: the judge's read), how often
    on the cell reads (steady, stitched) where the whole image's check failed not measurable (a fallback
    rule's extra passes), and how often the whole image's check failed measurable (contradicted: an attack)."""
    from agent.liveness.challenge import Challenge, Kind, projector_states, verify_projector

    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, int]] = {}
    for mode in ("blind", "two", "told"):
        for read in reads:
            got = {"whole_pass": 0, "contradicted": 0, "steady_extra": 0, "stitched_extra": 0}
            for _ in range(trials):
                ch = Challenge.from_nonce(rng.bytes(32), frames_n, (Kind.PROJECTOR,))
                en, lv = attacker_cells(ch.schedule, rng, read, mode, cells)
                whole = en.mean(axis=1)
                r = verify_projector(ch.schedule, whole)
                got["whole_pass"] += r.passed
                got["contradicted"] += (not r.passed) and r.measurable
                if r.passed or r.measurable:
                    continue
                moved = crossed(lv, projector_states(whole))
                got["steady_extra"] += verify_projector(ch.schedule, steady_read(en, moved)).passed
                got["stitched_extra"] += verify_projector(ch.schedule, stitched(en, moved)[0]).passed
            out[f"{mode}/{read}"] = got
    return out


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
    if len(argv) >= 2 and argv[0] == "adversary":
        cells_n = int(argv[2]) if len(argv) > 3 else TILES[0] * TILES[1]
        reads = tuple(int(x) for x in argv[3].split(",")) if len(argv) > 3 else (0, 4, 8, 24)
        for k, got in adversary(int(argv[1]), reads, cells=cells_n).items():
            print(f"  {k:10s} {got}")
        return 0
    if len(argv) >= 3 and argv[0] == "cells":
        if argv[2] == "--tiles" and len(argv) >= 5:
            rows, cols = (int(x) for x in argv[3].split("x"))
            cells(argv[1], argv[4:], (rows, cols))
        else:
            cells(argv[1], argv[2:])
        return 0
    if len(argv) >= 3 and argv[0] == "frames":
        frames(argv[1], argv[2:])
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
