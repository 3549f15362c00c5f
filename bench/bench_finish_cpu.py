"""What the window's end costs the thread that waits for the verdict (issue 20): train-family live
presentations captured as pad-eval captures them, each fed to a judge on its threads as a camera
delivers it (each frameset measured and folded before the next comes), the last one followed at once
by ``finish``, as the worker does. CPU time throughout (``time.thread_time``/``process_time``), not
wall time: on this shared machine a span is mostly waiting for a core.

As a suite (``python -m bench finish_cpu``; ``BENCH_FINISH_SESSIONS`` presentations, default 6,
``train:live:0`` on), per session and reported as medians and p95s:

* the caller's thread's CPU in ``finish`` (the last frameset's fold and what is left of the fusion),
  against two references of the same session in the same process: the last frameset's own
  measurement on the judge threads (its inspection, alignment, quality gate and cues: what no
  judge can do before the last frame), and the same judge's ``finish`` when nothing is worked out
  beside the last measurement (the same measurements folded in order by a judge without threads,
  whose ``finish`` then verifies the challenges, reads the last pairs and the depth noise itself;
  its verdict must be the threaded one's to the bit, or the suite fails);
* the work done beside the last measurement (the face grids in the final box, the challenges'
  verification, the last on-off pairs, the depth noise), on the judge threads;
* the last frame to the verdict on a terminal with two idle cores, worked out from these CPU
  times: the judge thread that measures the last frameset (alignment, then, once the other has
  detected the face and run its landmark model, the rest of the gate and the cues) beside the one
  that inspects it and then does the work above, then ``finish``; no thread waits for a core or
  for the other's interpreter lock, so it is a lower bound. The upper bound is the process's CPU
  over the same span (every thread, as if on one core), reported beside it with the load average.
  Its reference: the same CPU times on the path as it was before the landmarks ran beside the
  alignment (the measuring thread ran them after it and waited for the whole inspection), the
  same sessions in the same process; the rows name it.

Each session is also judged six more times in the same process, the seven in an order rotated by the
session: without the face grids read ahead in the box guessed from the window's last frameset but
one (perf26; the row ``unguessed``): the grids beside the last measurement and the two-idle-cores
figure against it, and how often the guessed box was the window's; and without any lit frame's side
of the pattern fit worked out as it is measured (perf27; ``unpatterned``): the last pairs beside the
last measurement and the two-idle-cores figure against it, and how many of the patterns worked out
ahead a pair read; and with a pair lit by the last frameset read by ``finish`` on the caller's thread
(perf28; ``in_finish``): the caller's CPU and the two-idle-cores figure against it; and with the last
frameset's cues and material skin all read by its measuring thread (perf29; ``unshared``: the other
thread's share task does nothing): the measurement's end and the two-idle-cores figure against it; and
with the last frameset's work as before perf30 (``unshrunk``: its fold reads its grid again on the
caller's thread, and the depth noise is read by perf24-29's lines): the noise, the caller's CPU and the
two-idle-cores figure against it; and with the last frameset's work as before perf31 (``before31``: the
foreign flood's background levels summed from every IR frame by ``finish``, not from the sums taken as
each frameset came; the second landmark try after the colour landmarks, not ahead): the caller's CPU
and the two-idle-cores figure against it; and with the second landmark try as before perf32 (``before32``:
``relit_mesh_before32``, every step, the irises whatever the presence, the try ahead never stopped): the
try's CPU ahead and the two-idle-cores figure against it; and with the window's end as before perf33 (``before33``:
the flood floors frame by frame in Python, the last frameset's motion steps all in its fold).
The seven verdicts must be the same or the suite fails. In the two-idle-cores model a pair lit by the last
frameset is two tasks once the last measurement is done (its pattern predicted and warmed; the rest
of the pair, whose last part, from its first read of the pattern's side, waits for the warming).
In that model the last measurement's cues and skin are shared as the judge shares them once the
gate has the face (``two_threads``' ``shared``). The suite's first two sessions' pairs are also read
one by one (``pair_reading``).

As a script, per session to a JSON file (the verdict, score, detectors and cues as JSON, to compare
two trees' verdicts to the bit; no face data is written), both judgings of each session:

    nice -n 19 python -m bench.bench_finish_cpu OUT.json 0 22     # train:live:0 .. train:live:21
    nice -n 19 python -m bench.bench_finish_cpu OUT.json 0 22 unshared   # only that reference beside
    nice -n 19 python -m bench.bench_finish_cpu OUT.json 0 22 unshrunk   # perf30's reference
    nice -n 19 python -m bench.bench_finish_cpu OUT.json 0 12 before31   # perf31's reference
    nice -n 19 python -m bench.bench_finish_cpu OUT.json 0 12 before32   # perf32's reference
    nice -n 19 python -m bench.bench_finish_cpu OUT.json 0 12 before33   # perf33's reference

(the file is written again after each session, so a run cut short keeps what it measured).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.targets import issue20

FRAMES = 32


def _marked(marks: dict[str, float], fn: Any) -> Any:
    """``fn`` noting in ``marks`` the thread that runs it and its thread CPU time (s) at its end."""
    def marked(*args: Any) -> Any:
        marks["thread"] = threading.get_ident()
        try:
            return fn(*args)
        finally:
            marks["end"] = time.thread_time()
    return marked


def _same(a: Any, b: Any) -> bool:
    """Equal to the last bit, NaN equal to NaN, through dicts, lists and tuples."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _timed(log: dict[str, float], name: str, fn: Any) -> Any:
    """``fn`` adding its thread's CPU time (ms) to ``log[name]`` on whatever thread runs it."""
    def timed(*args: Any) -> Any:
        c = time.thread_time()
        try:
            return fn(*args)
        finally:
            log[name] = log.get(name, 0.0) + (time.thread_time() - c) * 1000
    return timed


def session(index: int, gate: Any, thresholds: Any, *, reference: bool = False, unguessed: bool = False,
            pairs: list | None = None, references: tuple[str, ...] | None = None) -> dict[str, Any]:
    """One presentation captured and judged (``judged``); with ``unguessed``, judged a second time
    in the same process without the grids guessed a frameset ahead (``unguessed`` in the row), the
    two in alternating order by the presentation's index."""
    import drivers
    from agent.session.offline import capture
    from hil.pad_enrolment import dot_reference_for
    from hil.pad_presentations import Presentation, presentation_nonce, presentation_uri
    p = Presentation("bona_fide", "live", "train", index, presentation_uri("train", "live", index))
    ref = dot_reference_for(p.uri)
    with drivers.open(p.uri) as cam:
        cap = capture(cam, FRAMES, presentation_nonce(p), gate, require_quality=True)
    if len(cap.sets) < FRAMES:
        return {"key": p.key, "outcome": "no window"}
    if not unguessed:
        return judged(p.key, cap, ref, gate, thresholds, reference=reference, pairs=pairs)
    # This tree, without the grids guessed ahead, without the patterns worked out ahead: in an order
    # rotated by the presentation's index.
    runs: dict[str, Any] = {
        "row": lambda: judged(p.key, cap, ref, gate, thresholds, reference=reference, pairs=pairs),
        "unguessed": lambda: judged(p.key, cap, ref, gate, thresholds, guess=False),
        "unpatterned": lambda: judged(p.key, cap, ref, gate, thresholds, patterns=False),
        "in_finish": lambda: judged(p.key, cap, ref, gate, thresholds, lit_last=False),
        "unshared": lambda: judged(p.key, cap, ref, gate, thresholds, share=False),
        "unshrunk": lambda: judged(p.key, cap, ref, gate, thresholds, shrunk=False),
        "before31": lambda: judged(p.key, cap, ref, gate, thresholds, perf31=False),
        "before32": lambda: judged(p.key, cap, ref, gate, thresholds, perf32=False),
        "before33": lambda: judged(p.key, cap, ref, gate, thresholds, perf33=False)}
    names = [name for name in runs if name == "row" or references is None or name in references]
    got = {name: runs[name]() for name in names[index % len(names):] + names[:index % len(names)]}
    row = got["row"]
    for name in (n for n in names if n != "row"):
        other = got[name]
        if not (_same(json.loads(row["detectors"]), json.loads(other["detectors"])) and row["score"] == other["score"]
                and row["challenge"] == other["challenge"] and row["verdict"] == other["verdict"]
                and row["cues"] == other["cues"]):
            raise RuntimeError(f"{p.key}: the verdict differs judged {name}")
    return {**row, **{name: got[name] for name in REFERENCES if name in got}}


# The same session judged again in the same process, each without one change (``judged``'s flags).
REFERENCES = ("unguessed", "unpatterned", "in_finish", "unshared", "unshrunk", "before31", "before32", "before33")


def judged(key: str, cap: Any, ref: Any, gate: Any, thresholds: Any, *, reference: bool = False,
           guess: bool = True, patterns: bool = True, lit_last: bool = True, share: bool = True,
           shrunk: bool = True, perf31: bool = True, perf32: bool = True, perf33: bool = True,
           pairs: list | None = None) -> dict[str, Any]:
    """The captured window ``cap`` fed to a judge on its threads as a camera delivers it, timed.
    ``guess``: False, the grids are not read ahead in the box guessed from the last frameset but one
    (the path before perf26: every grid the fold did not read in the final box is read beside the
    last measurement). ``patterns``: False, no lit frame's side of its pairs' pattern fit is worked
    out as it is measured (the path before perf27: every pair reads the predicted pattern itself).
    ``lit_last``: False, a pair lit by the last frameset is read by ``finish`` on the caller's thread
    (the path before perf28), not beside the last measurement. ``share``: False, the last frameset's
    cues and material skin are all the measuring thread's (the path before perf29: the other
    thread's share task does nothing). ``shrunk``: False, the last frameset's work as before perf30:
    its fold reads its grid again on the caller's thread (the grid read beside its measurement not
    taken), and the depth noise is read by perf24-29's lines (``depth_noise_masked``). ``perf31``: False,
    the window's end as before perf31: ``finish`` sums every IR frame's background itself
    (``background_levels`` without the judge's running sums) and the last frameset's second landmark try
    runs after its colour landmarks (``RELIT_AHEAD`` off). ``perf32``: False, the second landmark try as before
    perf32 (``relit_mesh_before32``: every step taken, the colour's light read first, the elliptic dilations
    by the element itself, the irises found whatever the presence, and the try ahead never stopped). ``perf33``:
    False, the window's end as before perf33: the foreign flood's floors frame by frame in Python
    (``flood_frames_before33``) and the last frameset's motion steps all measured by its fold on the caller's
    thread (``_final_steps`` does nothing).
    ``pairs``: each on-off pair's inputs the verdict read are added to it (``projector_light_on``'s
    arguments)."""
    from agent.liveness.judge import Judge, judge_pool
    j = Judge(gate, thresholds, challenge=cap.challenge, notes=cap.notes, pool=judge_pool(), dot_reference=ref)
    if not guess:
        j._grids_guessed = lambda *_: None          # type: ignore[method-assign]
    if not patterns:
        j._pattern_ahead = lambda *_: {}            # type: ignore[method-assign]
    if not lit_last:
        j._final_lit_last = lambda *_: {}           # type: ignore[method-assign]
        j._final_lit_last_fit = lambda *_: None     # type: ignore[method-assign]
    if not share:
        j._last_face_share = lambda *_: None        # type: ignore[method-assign]
    if not perf33:
        j._final_steps = lambda *_: None            # type: ignore[method-assign]
    import agent.liveness.judge as J
    noise, levels, relit_ahead, flood = J.depth_noise, J.background_levels, J.RELIT_AHEAD, J.flood_frames
    from tests.helpers.liveness_reference import depth_noise_masked
    if not shrunk:
        beside_grids = j._grids_beside
        j._grids_beside = lambda box, *, block: beside_grids(box, block=True) if block else None  # type: ignore[method-assign]
    ahead: dict[str, float] = {}                    # worked out ahead, while the last frameset is to come
    if hasattr(j, "_grids_guessed"):
        j._grids_guessed = _timed(ahead, "guessed_grids", j._grids_guessed)  # type: ignore[method-assign]
    if hasattr(j, "_pattern_ahead"):                # (a tree before perf27)
        j._pattern_ahead = _timed(ahead, "patterns", j._pattern_ahead)  # type: ignore[method-assign]
    drained: list[float] = []
    drain = j._drain

    def timed_drain(block: bool) -> None:
        c = time.thread_time()
        drain(block)
        if block:
            drained.append((time.thread_time() - c) * 1000)
    j._drain = timed_drain                          # type: ignore[method-assign]
    for fs in cap.sets[:-1]:
        j.add(fs)
        j._submitted[-1][1].result()
        j.fold_ready()
    # The last frameset's inspection and the work beside its measurement, timed on their threads.
    beside: dict[str, float] = {}
    seen: list[Any] = []
    inspect = j._inspect

    def inspected(fs: Any, *face: Any) -> Any:
        seen.append(inspect(fs, *face))
        return seen[-1]
    j._inspect = inspected                          # type: ignore[method-assign,assignment]
    for name in ("_final_grids", "_final_challenge", "_final_lights", "_final_noise", "_final_lit_last",
                 "_final_lit_last_fit", "_final_steps"):
        if hasattr(j, name):                        # (a tree before the challenge's verification beside it)
            setattr(j, name, _timed(beside, name.removeprefix("_final_"), getattr(j, name)))
    # The pair lit by the last frameset: its thread's CPU from its first read of the pattern's side
    # (where it waits for the other thread's ``PatternFit.warm``) to its end.
    marks: dict[str, float] = {}
    if hasattr(j, "_final_lit_last"):
        j._final_lit_last = _marked(marks, j._final_lit_last)  # type: ignore[method-assign]
    import agent.liveness.features as F
    reading = F._pattern_reading

    def first_read(*args: Any) -> Any:
        if threading.get_ident() == marks.get("thread") and "first" not in marks:
            marks["first"] = time.thread_time()
        return reading(*args)
    F._pattern_reading = first_read                 # type: ignore[assignment]
    try:
        if not shrunk:                              # (only the last frameset's add reads the noise)
            J.depth_noise = depth_noise_masked
        if not perf31:                              # (read by the last frameset's measurement and finish)
            J.background_levels = lambda sets, skins, sums=None: levels(sets, skins)
            J.RELIT_AHEAD = False
        if not perf33:                              # (read by finish)
            from tests.helpers.liveness_reference import flood_frames_before33
            J.flood_frames = flood_frames_before33
        if not perf32:                              # (the gate's own tries and the one ahead)
            from tests.helpers.quality_reference import relit_mesh_before32
            gate.relit_mesh = lambda a, d, check=None: relit_mesh_before32(a, d)
        j.add(cap.sets[-1])
        t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
        r = j.finish()
    finally:
        F._pattern_reading = reading
        J.depth_noise, J.background_levels, J.RELIT_AHEAD, J.flood_frames = noise, levels, relit_ahead, flood
        if not perf32:
            del gate.relit_mesh
    wall, cpu = (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000
    proc = (time.process_time() - p0) * 1000
    v = r.verdict
    row: dict[str, Any] = {
        "key": key, "verdict": v.verdict, "score": repr(v.score),
        "detectors": json.dumps(v.detectors, sort_keys=True), "cues": json.dumps(v.cues, sort_keys=True),
        "challenge": json.dumps(v.challenge, sort_keys=True), "notes": v.notes, "caller_cpu_ms": cpu,
        "caller_cpu_after_drain_ms": cpu - sum(drained), "process_cpu_ms": proc, "wall_ms": wall,
        "judge_finish_ms": r.timing_ms["finish"], "judge_cpu_finish_ms": r.timing_ms.get("cpu_finish"),
        "beside_ms": beside, "ahead_ms": ahead}
    guess_task = getattr(j, "_guessed_grids", None)      # (None: a tree before perf26)
    guessed = guess_task.result() if guess_task is not None else None
    box = (r.evidence or {}).get("face_box")
    row["guessed_box_right"] = guessed is not None and box is not None and list(guessed[0]) == box
    # The lit frames whose pattern was worked out ahead, and those of them a pair the verdict read
    # was lit by (the rest: CPU spent before the window's end for nothing).
    fits = sorted({k for f in getattr(j, "_patterns", {}).values() if f.done() and not f.cancelled()
                   for k in f.result()})
    row["patterns_ahead"], row["patterns_used"] = len(fits), sum(any(on == k for on, _, _ in j.lights) for k in fits)
    last = j._submitted[-1][1].result() if j._submitted else None
    if last is not None and len(seen) == 1:
        s = seen[0]
        mesh = getattr(s, "mesh_cpu_ms", 0.0)         # (0: a tree whose landmarks ran after the alignment)
        detect, inspection = s.detect_cpu_ms, s.detect_cpu_ms + mesh + s.rest_cpu_ms
        align = last.cpu_ms[0]
        # (the second landmark try worked out ahead, perf31: from the alignment's end, beside the landmarks)
        relit = getattr(last, "relit_cpu_ms", None) or 0.0
        gate_cpu, cues_skin = last.cpu_ms[1] - detect - mesh - relit, last.cpu_ms[2] - s.rest_cpu_ms
        rest = gate_cpu + cues_skin
        # The last frameset's measurement after the face, by part (perf29): the gate before it has
        # the main face and after (its checks), the cues and the material skin, and who read them.
        lf = getattr(j, "_last_face", None)         # (None: a tree before perf29, or no face)
        face_parts = {"to_face": lf.to_face_ms, "checks": gate_cpu - lf.to_face_ms, "cues": lf.cpu_ms[0],
                      "skin": lf.cpu_ms[1]} if lf is not None and lf.threads[0] is not None else None
        row["face_parts_ms"] = face_parts
        row["cues_by_other"] = lf is not None and lf.threads[0] is not None and lf.threads[0] != lf.measuring
        row["skin_by_other"] = lf is not None and lf.threads[1] is not None and lf.threads[1] != lf.measuring
        row["relit_ahead_ms"] = relit
        parts = {"detect": detect, "mesh": mesh, "energy_digest": s.rest_cpu_ms, "align": align, "rest": rest,
                 "relit_ahead": relit,
                 **{k: beside.get(k, 0.0) for k in ("grids", "challenge", "lights", "noise", "lit_last",
                                                    "lit_last_fit", "steps")},
                 "lit_last_after_fit": (marks["end"] - marks["first"]) * 1000 if "first" in marks else 0.0}
        # (a pair lit by the last frameset read beside its measurement waits for it; else the task
        # ends at the inspection)
        lit_task = getattr(j, "_lit_last", None)
        row["lit_last_pairs"] = len(lit_task.result() or {}) if lit_task is not None else 0
        row["lit_last_after_fit_ms"] = parts["lit_last_after_fit"]
        now = two_threads(parts, ("lights", "grids", "noise", "lit_last_fit", "lit_last", "challenge"),
                          mesh_beside=True, lit_last_read=row["lit_last_pairs"] > 0,
                          shared=face_parts if share else None, after=("steps",))
        if face_parts is not None and share:
            # The same CPU times with the cues and skin on the measuring thread (perf29's reference on
            # this very judging's times: no other run's noise in the ratio).
            alone = two_threads(parts, ("lights", "grids", "noise", "lit_last_fit", "lit_last", "challenge"),
                                mesh_beside=True, lit_last_read=row["lit_last_pairs"] > 0, after=("steps",))
            row.update(measuring_thread_unshared_ms=alone["measured"], two_idle_cores_unshared_ms=alone["end"] + cpu)
        row["parts_ms"] = parts
        row.update(last_measurement_cpu_ms=inspection + align + rest + relit, last_inspection_cpu_ms=inspection,
                   last_align_cpu_ms=align, last_mesh_cpu_ms=mesh, last_gate_cues_cpu_ms=rest,
                   measuring_thread_ms=now["measured"], two_idle_cores_ms=now["end"] + cpu)
        # The same CPU times on the path as it was before the landmarks ran beside the alignment
        # (the measuring thread ran them after it and waited for the whole inspection) and the work
        # beside the last measurement was queued grids first (and a pair lit by the last frameset was
        # read by ``finish``: its CPU on the caller's thread).
        before = two_threads(parts, ("grids", "challenge", "lights", "noise"), mesh_beside=False)
        row.update(measuring_thread_before_ms=before["measured"],
                   two_idle_cores_before_ms=before["end"] + cpu + parts["lit_last"] + parts["lit_last_fit"]
                   + parts["steps"])
    if reference:
        # The same measurements folded in order by a judge without threads: its ``finish`` does all
        # of the window's end itself. Its verdict must be the threaded judge's, to the bit.
        inputs = [(fs, fut.result()) for fs, fut in j._submitted]
        serial = Judge(gate, thresholds, challenge=cap.challenge, notes=cap.notes, dot_reference=ref)
        for fs, m in inputs:
            serial._fold(fs, m)
        c1 = time.thread_time()
        r2 = serial.finish()
        row["serial_finish_cpu_ms"] = (time.thread_time() - c1) * 1000
        row["same_as_serial"] = (_same(r2.verdict.to_dict(), v.to_dict()) and _same(r2.evidence, r.evidence)
                                 and r2.best_index == r.best_index)
    if pairs is not None:
        for on, off, same in j.lights:
            pairs.append((j.skins[on], j.aligned[on], j.sets[off],
                          (j.sets[same[0]], j.sets[same[1]]) if same is not None else None, ref))
    j.close()
    return row


def pair_reading(pairs: list, rounds: int = 3) -> list[tuple[float, float, float]]:
    """Thread CPU (ms) of ``projector_light_on`` on each of ``pairs``, the median of ``rounds`` each
    in rotated order: (the lit frame's side of the pattern fit worked out ahead, as the judge does
    near a window's end (``features.pattern_fit(...).warm()``, not timed); this tree without it;
    the reference, which fits the pair's difference to each shift of the predicted pattern on its
    own (``pattern_reading_alone``: before perf26, the difference's local mean and bands worked out
    again for every shift)). All must give the same reading to the bit, or this fails."""
    import agent.liveness.features as F
    from tests.helpers.liveness_reference import pattern_reading_alone
    mine = F._pattern_reading
    order = ("ahead", "mine", "alone")
    out = []
    try:
        for args in pairs:
            times: dict[str, list[float]] = {k: [] for k in order}
            got = {}
            for r in range(rounds):
                for which in order[r % 3:] + order[:r % 3]:
                    F._pattern_reading = pattern_reading_alone if which == "alone" else mine
                    given = list(args)
                    if which == "ahead" and args[4] is not None:
                        fit = F.pattern_fit(args[4], args[0], args[1])
                        given[4] = fit.warm() if fit is not None else args[4]
                    c = time.thread_time()
                    got[which] = F.projector_light_on(*given)
                    times[which].append((time.thread_time() - c) * 1000)
            if not repr(got["ahead"]) == repr(got["mine"]) == repr(got["alone"]):
                raise RuntimeError("a pair read with its pattern ahead, or its bands shared over the shifts, differs "
                                   "from the fits alone")
            out.append((statistics.median(times["ahead"]), statistics.median(times["mine"]),
                        statistics.median(times["alone"])))
    finally:
        F._pattern_reading = mine
    return out


def two_threads(cpu: dict[str, float], beside: tuple[str, ...], *, mesh_beside: bool, lit_last_read: bool = False,
                shared: dict[str, float] | None = None, after: tuple[str, ...] = ()) -> dict[str, float]:
    """When each of the last frameset's tasks ends (ms after it reaches the judge) on two idle
    cores, from their CPU times: the judge's two threads take the tasks in the order they were
    queued (the inspection, the measurement, then ``beside``), each thread the next task when it is
    free, and a task waits, holding its thread, for what it needs from a task queued before it (no
    thread waits for a core or for the other's interpreter lock: a lower bound). ``mesh_beside``:
    the landmarks run in the inspection and are handed over before its dot energy and digest (this
    tree); else the measurement runs them after the alignment, once the whole inspection is in.
    ``lit_last_read``: the task reading the pairs lit by the last frameset (``lit_last``) read one,
    so it and the one predicting its pattern (``lit_last_fit``) waited for the measurement (else
    they ended with the inspection); the reading, from its first read of the pattern's side
    (``lit_last_after_fit`` of its CPU), waits for the prediction to end. ``shared`` (the parts of
    the measurement after the face: ``to_face``, ``checks``, ``cues``, ``skin``): the cues and the skin
    are shared as the judge shares them (perf29): a task queued after ``beside`` takes the cues then
    the skin, each not yet taken, once the gate has the face (holding its thread till then), the
    measuring thread the skin then the cues after the checks; whichever thread is free first claims
    next (the other one at a tie); the measurement ends when both are done. A task of ``beside``
    that waits for the measurement (``lit_last``) waits for the measuring thread's whole of it. ``relit_ahead``
    (perf31): the second landmark try worked out by the measuring thread from the alignment's end (once the
    detection is in), before it takes the face. ``after``: tasks queued after the share (perf33: ``steps``, the
    last frameset's motion steps, once the inspection is done); ``finish`` starts once every task has ended (the
    caller does not wait for a step it does not need: an upper bound on that)."""
    free = [0.0, 0.0]
    end: dict[str, float] = {}

    def take() -> float:
        k = 0 if free[0] <= free[1] else 1
        return free[k]

    def run(name: str, start: float, finish: float) -> None:
        k = 0 if free[0] <= free[1] else 1
        assert free[k] == start
        free[k] = end[name] = finish

    t = take()
    face = t + cpu["detect"] + (cpu["mesh"] if mesh_beside else 0.0)
    run("inspected", t, face + cpu["energy_digest"])
    t = take()
    end["aligned"] = t + cpu["align"]
    relit = cpu.get("relit_ahead", 0.0)
    found = face - (cpu["mesh"] if mesh_beside else 0.0)     # the detection handed over
    waited = max(max(end["aligned"], found) + relit if relit else end["aligned"],
                 face if mesh_beside else end["inspected"])
    me = 0 if free[0] <= free[1] else 1             # the measuring thread
    if shared is None:
        run("measured", t, waited + cpu["rest"] + (0.0 if mesh_beside else cpu["mesh"]))
    else:
        seen = waited + shared["to_face"]
        alone = seen + shared["checks"] + shared["skin"] + shared["cues"]
        free[me] = math.inf                         # measuring, until the share says how long

    def measured_alone() -> None:
        """The measurement's end when the other thread took no part of it."""
        if shared is not None and "measured" not in end:
            free[me] = end["measured"] = alone
    needs = {"grids": ("inspected",), "challenge": ("inspected", "grids"), "lights": ("inspected",),
             "noise": ("aligned",), "steps": ("inspected",)}
    needs["lit_last"] = needs["lit_last_fit"] = ("inspected", "measured") if lit_last_read else ("inspected",)
    for name in (*beside, "share", *after) if shared is not None else (*beside, *after):
        if shared is not None and free[1 - me] >= alone:
            measured_alone()                        # done before the other thread was free
        if name == "share" and shared is not None:
            if "measured" in end:
                t = take()
                run("share", t, max(t, seen))
                continue
            clock = {"measuring": seen + shared["checks"], "other": max(free[1 - me], seen)}
            wants = {"measuring": ["skin", "cues"], "other": ["cues", "skin"]}
            took: dict[str, float] = {}
            while len(took) < 2:
                who = "other" if clock["other"] <= clock["measuring"] else "measuring"
                part = next(p for p in wants[who] if p not in took)
                clock[who] = took[part] = clock[who] + shared[part]
            free[me] = end["measured"] = max(clock["measuring"], *took.values())
            free[1 - me] = end["share"] = clock["other"]
            continue
        if "measured" in needs[name]:
            measured_alone()                        # (the other thread waits in this task meanwhile)
        t = take()
        done = max([t] + [end[n] for n in needs[name]]) + cpu[name]
        if name == "lit_last" and "lit_last_fit" in end:
            done = max(done, end["lit_last_fit"] + cpu.get("lit_last_after_fit", 0.0))
        run(name, t, done)
    end["end"] = max(free)
    return end


def _pct(v: list[float], q: float) -> float:
    return float(np.percentile(v, q))


def run() -> list[dict]:
    from agent.liveness.fusion import load_thresholds
    from agent.quality import QualityGate
    gate, thresholds = QualityGate(), load_thresholds("kiosk", challenged=True)
    n = max(1, int(os.environ.get("BENCH_FINISH_SESSIONS", 6)))
    session(n, gate, thresholds)                    # warms the models, the tables and the judge threads
    pairs: list = []                                # the first two sessions' on-off pairs (``pair_reading``)
    rows = [r for r in (session(i, gate, thresholds, reference=True, unguessed=True, pairs=pairs if i < 2 else None)
                        for i in range(n)) if "caller_cpu_ms" in r]
    if not rows:
        raise RuntimeError("no presentation gave a whole window")
    differs = [r["key"] for r in rows if not r["same_as_serial"]]
    if differs:
        raise RuntimeError(f"the threaded judge's verdict differs from the serial judge's: {differs}")
    k = len(rows)

    def col(name: str) -> list[float]:
        return [r[name] for r in rows]
    caller, last, serial = col("caller_cpu_ms"), col("last_measurement_cpu_ms"), col("serial_finish_cpu_ms")
    med = statistics.median
    out: list[dict] = [
        {"name": f"caller's thread CPU in finish, median of {k} train live sessions", "value": med(caller),
         "unit": "ms", "reference": med(last), "ratio": med(caller) / med(last),
         "note": "reference: the last frameset's own measurement CPU on the judge threads"},
        {"name": "caller's thread CPU in finish, p95", "value": _pct(caller, 95), "unit": "ms",
         "reference": _pct(last, 95), "ratio": _pct(caller, 95) / _pct(last, 95)},
        {"name": "  the same after the last fold (the fusion alone), median",
         "value": med(col("caller_cpu_after_drain_ms")), "unit": "ms"},
        {"name": "caller's thread CPU in finish vs a judge without threads' finish, median", "value": med(caller),
         "unit": "ms", "reference": med(serial), "ratio": med(caller) / med(serial)},
        {"name": "verdicts the same to the bit as the judge without threads", "value": float(k - len(differs)),
         "unit": f"of {k}"},
    ]
    for part in ("grids", "challenge", "lights", "noise"):
        v = [r["beside_ms"].get(part, 0.0) for r in rows]
        out.append({"name": f"  beside the last measurement (judge threads): {part}, median", "value": med(v),
                    "unit": "ms"})
    for name, part in (("inspection (detection, landmarks, dot energy, digest)", "last_inspection_cpu_ms"),
                       ("  of which the landmarks (face mesh and irises)", "last_mesh_cpu_ms"),
                       ("alignment", "last_align_cpu_ms"),
                       ("quality gate after the landmarks, and cues", "last_gate_cues_cpu_ms")):
        out.append({"name": f"  last frameset's CPU: {name}, median", "value": med(col(part)), "unit": "ms"})
    # Reference: the same session judged again in the same process without the grids read ahead in
    # the box guessed from the last frameset but one (perf26): the grids the fold did not read in the
    # final box are read beside the last measurement, as before.
    grids = [r["beside_ms"].get("grids", 0.0) for r in rows]
    grids_then = [r["unguessed"]["beside_ms"].get("grids", 0.0) for r in rows]
    idle_now, idle_then = col("two_idle_cores_ms"), [r["unguessed"]["two_idle_cores_ms"] for r in rows]
    out += [
        {"name": "  grids beside the last measurement, box guessed ahead vs not, median", "value": med(grids),
         "unit": "ms", "reference": med(grids_then), "ratio": med(grids) / med(grids_then),
         "note": "reference: the same session judged again, no grid read ahead in the guessed box"},
        {"name": "  the same, p95", "value": _pct(grids, 95), "unit": "ms", "reference": _pct(grids_then, 95),
         "ratio": _pct(grids, 95) / _pct(grids_then, 95)},
        {"name": "  grids read ahead in the guessed box (before the last frameset), median",
         "value": med([r["ahead_ms"].get("guessed_grids", 0.0) for r in rows]), "unit": "ms"},
        {"name": "  sessions whose guessed box was the window's",
         "value": float(sum(r["guessed_box_right"] for r in rows)), "unit": f"of {k}"},
        {"name": "last frameset to verdict, two idle cores, box guessed ahead vs not, p95", "value": _pct(idle_now, 95),
         "unit": "ms", "reference": _pct(idle_then, 95), "ratio": _pct(idle_now, 95) / _pct(idle_then, 95)},
    ]
    read = pair_reading(pairs)
    if read:
        ahead, mine, alone = ([r[i] for r in read] for i in range(3))
        each = [b / c for _, b, c in read]
        out.append({"name": f"  an on-off pair's reading, bands once for every shift, median of {len(read)}",
                    "value": med(mine), "unit": "ms", "reference": med(alone), "ratio": med(mine) / med(alone),
                    "note": f"reference: every shift's fit on its own (before perf26); per pair "
                            f"{min(each):.2f}-{max(each):.2f}"})
        each = [a / b for a, b, _ in read]
        out.append({"name": f"  an on-off pair's reading, the lit frame's pattern side worked out ahead, median of "
                            f"{len(read)}", "value": med(ahead), "unit": "ms", "reference": med(mine),
                    "ratio": med(ahead) / med(mine),
                    "note": f"reference: the same pair predicting its pattern itself (before perf27); per pair "
                            f"{min(each):.2f}-{max(each):.2f}"})
    # Reference: the same session judged again in the same process without any lit frame's pattern
    # worked out ahead (perf27): every pair, the last ones too, predicts its pattern itself.
    lights = [r["beside_ms"].get("lights", 0.0) for r in rows]
    lights_then = [r["unpatterned"]["beside_ms"].get("lights", 0.0) for r in rows]
    idle_unpatterned = [r["unpatterned"]["two_idle_cores_ms"] for r in rows]
    out += [
        {"name": "  the last pairs beside the last measurement, patterns ahead vs not, p95", "value": _pct(lights, 95),
         "unit": "ms", "reference": _pct(lights_then, 95), "ratio": _pct(lights, 95) / _pct(lights_then, 95),
         "note": "reference: the same session judged again, no lit frame's pattern worked out ahead"},
        {"name": "  lit frames' patterns worked out ahead (before the last frameset), median",
         "value": med([r["ahead_ms"].get("patterns", 0.0) for r in rows]), "unit": "ms",
         "note": f"{sum(r['patterns_used'] for r in rows)} of {sum(r['patterns_ahead'] for r in rows)} read by a pair"},
        {"name": "last frameset to verdict, two idle cores, patterns ahead vs not, p95", "value": _pct(idle_now, 95),
         "unit": "ms", "reference": _pct(idle_unpatterned, 95),
         "ratio": _pct(idle_now, 95) / _pct(idle_unpatterned, 95)},
    ]
    # Reference: the same session judged again in the same process with a pair lit by the last
    # frameset read by ``finish`` on the caller's thread (perf28).
    lit_rows = [r for r in rows if r.get("lit_last_pairs")]
    caller_then = [r["in_finish"]["caller_cpu_ms"] for r in rows]
    idle_in_finish = [r["in_finish"]["two_idle_cores_ms"] for r in rows]
    out += [
        {"name": f"  caller's thread CPU in finish, pairs lit by the last frameset beside vs in finish, in the "
                 f"{len(lit_rows)} of {k} sessions with one, median",
         "value": med([r["caller_cpu_ms"] for r in lit_rows]) if lit_rows else 0.0, "unit": "ms",
         "reference": med([r["in_finish"]["caller_cpu_ms"] for r in lit_rows]) if lit_rows else 0.0,
         "ratio": (med([r["caller_cpu_ms"] for r in lit_rows]) / med([r["in_finish"]["caller_cpu_ms"]
                                                                       for r in lit_rows])) if lit_rows else 1.0,
         "note": "reference: the same session judged again, the pair read by finish"},
        {"name": "  caller's thread CPU in finish, the same, p95 of every session", "value": _pct(caller, 95),
         "unit": "ms", "reference": _pct(caller_then, 95), "ratio": _pct(caller, 95) / _pct(caller_then, 95)},
        {"name": "last frameset to verdict, two idle cores, pairs lit by the last frameset beside vs in finish, p95",
         "value": _pct(idle_now, 95), "unit": "ms", "reference": _pct(idle_in_finish, 95),
         "ratio": _pct(idle_now, 95) / _pct(idle_in_finish, 95)},
        {"name": "  the same, median", "value": med(idle_now), "unit": "ms", "reference": med(idle_in_finish),
         "ratio": med(idle_now) / med(idle_in_finish)},
    ]
    # Reference: the same session judged again in the same process with the last frameset's cues and
    # material skin all on the measuring thread (perf29: the other thread's share does nothing).
    path_unshared = [r["unshared"]["measuring_thread_ms"] for r in rows]
    idle_unshared = [r["unshared"]["two_idle_cores_ms"] for r in rows]
    out += [
        {"name": "  the last measurement ends, cues and skin shared by both threads vs not, median",
         "value": med(col("measuring_thread_ms")), "unit": "ms", "reference": med(path_unshared),
         "ratio": med(col("measuring_thread_ms")) / med(path_unshared),
         "note": f"reference: the same session judged again, the share task stubbed; the other thread read "
                 f"the cues in {sum(bool(r.get('cues_by_other')) for r in rows)} of {k}"},
        {"name": "last frameset to verdict, two idle cores, cues and skin shared vs not, p95",
         "value": _pct(idle_now, 95), "unit": "ms", "reference": _pct(idle_unshared, 95),
         "ratio": _pct(idle_now, 95) / _pct(idle_unshared, 95)},
        {"name": "  the same, median", "value": med(idle_now), "unit": "ms", "reference": med(idle_unshared),
         "ratio": med(idle_now) / med(idle_unshared)},
    ]
    # Reference: the same session judged again in the same process with the last frameset's work as
    # before perf30 (its fold reads its grid again on the caller's thread; the depth noise by
    # perf24-29's lines).
    idle_unshrunk = [r["unshrunk"]["two_idle_cores_ms"] for r in rows]
    noise = [r["beside_ms"].get("noise", 0.0) for r in rows]
    noise_then = [r["unshrunk"]["beside_ms"].get("noise", 0.0) for r in rows]
    out += [
        {"name": "  the depth noise beside the last measurement, counted once vs masked twice, median",
         "value": med(noise), "unit": "ms", "reference": med(noise_then), "ratio": med(noise) / med(noise_then),
         "note": "reference: the same session judged again with perf24-29's depth noise and its fold's grid read"},
        {"name": "  caller's thread CPU in finish, the last grid taken vs read again, median", "value": med(caller),
         "unit": "ms", "reference": med([r["unshrunk"]["caller_cpu_ms"] for r in rows]),
         "ratio": med(caller) / med([r["unshrunk"]["caller_cpu_ms"] for r in rows])},
        {"name": "last frameset to verdict, two idle cores, perf30's shrinking vs not, p95",
         "value": _pct(idle_now, 95), "unit": "ms", "reference": _pct(idle_unshrunk, 95),
         "ratio": _pct(idle_now, 95) / _pct(idle_unshrunk, 95)},
        {"name": "  the same, median", "value": med(idle_now), "unit": "ms", "reference": med(idle_unshrunk),
         "ratio": med(idle_now) / med(idle_unshrunk)},
    ]
    # Reference: the same session judged again in the same process with the window's end as before perf31.
    idle_31 = [r["before31"]["two_idle_cores_ms"] for r in rows]
    caller_31 = [r["before31"]["caller_cpu_ms"] for r in rows]
    out += [
        {"name": "  caller's thread CPU in finish, background sums taken ahead vs not, median", "value": med(caller),
         "unit": "ms", "reference": med(caller_31), "ratio": med(caller) / med(caller_31),
         "note": "reference: the same session judged again with the background summed in finish and the second "
                 f"landmark try after the colour landmarks; that try ahead in "
                 f"{sum(bool(r.get('relit_ahead_ms')) for r in rows)} of {k}"},
        {"name": "last frameset to verdict, two idle cores, perf31 vs not, p95", "value": _pct(idle_now, 95),
         "unit": "ms", "reference": _pct(idle_31, 95), "ratio": _pct(idle_now, 95) / _pct(idle_31, 95)},
        {"name": "  the same, median", "value": med(idle_now), "unit": "ms", "reference": med(idle_31),
         "ratio": med(idle_now) / med(idle_31)},
    ]
    # Reference: the same session judged again in the same process with the second landmark try as before
    # perf32 (every step, the irises whatever the presence, the try ahead never stopped).
    if all("before32" in r for r in rows):
        idle_32 = [r["before32"]["two_idle_cores_ms"] for r in rows]
        tried = [r for r in rows if r.get("relit_ahead_ms") or r["before32"].get("relit_ahead_ms")]
        out += [
            {"name": f"  the second landmark try ahead, perf32 vs before, median of the {len(tried)} of {k} sessions "
                     "with one", "value": med([r.get("relit_ahead_ms", 0.0) for r in tried]) if tried else 0.0,
             "unit": "ms",
             "reference": med([r["before32"].get("relit_ahead_ms", 0.0) for r in tried]) if tried else 0.0,
             "note": "reference: the same session judged again with relit_mesh_before32"},
            {"name": "last frameset to verdict, two idle cores, perf32 vs not, p95", "value": _pct(idle_now, 95),
             "unit": "ms", "reference": _pct(idle_32, 95), "ratio": _pct(idle_now, 95) / _pct(idle_32, 95)},
            {"name": "  the same, median", "value": med(idle_now), "unit": "ms", "reference": med(idle_32),
             "ratio": med(idle_now) / med(idle_32)},
        ]
    # Reference: the same CPU times on the path as it was before the landmarks ran beside the
    # alignment (the measuring thread ran them after it), same sessions, same process.
    path, before = col("measuring_thread_ms"), col("measuring_thread_before_ms")
    idle_before = col("two_idle_cores_before_ms")
    out += [
        {"name": "  the measurement ends (alignment, face waited for, gate, cues), median", "value": med(path),
         "unit": "ms", "reference": med(before), "ratio": med(path) / med(before),
         "note": "reference: the same CPU times with the landmarks after the alignment (the path before)"},
        {"name": "  the measurement ends, p95", "value": _pct(path, 95), "unit": "ms",
         "reference": _pct(before, 95), "ratio": _pct(path, 95) / _pct(before, 95)},
        {"name": "last frameset to verdict, two idle cores, vs landmarks after alignment, p95",
         "value": _pct(col("two_idle_cores_ms"), 95), "unit": "ms", "reference": _pct(idle_before, 95),
         "ratio": _pct(col("two_idle_cores_ms"), 95) / _pct(idle_before, 95)},
    ]
    # Issue 20's target for the whole overhead, last frame to receipt: the verdict is a part of it (no
    # reference runs in this process for these rows; the rows above have theirs).
    idle, proc = col("two_idle_cores_ms"), col("process_cpu_ms")
    out += [
        issue20({"name": "last frameset to verdict, two idle cores (from CPU times, lower bound), p50",
                 "value": med(idle), "unit": "ms"}, "overhead", part=True),
        issue20({"name": "last frameset to verdict, two idle cores (from CPU times, lower bound), p95",
                 "value": _pct(idle, 95), "unit": "ms"}, "overhead", part=True),
        issue20({"name": "process CPU, last frameset to verdict (every thread: one core), p95", "value": _pct(proc, 95),
                 "unit": "ms"}, "overhead", part=True),
        {"name": "last frameset to verdict, wall on this machine, p95", "value": _pct(col("wall_ms"), 95),
         "unit": "ms"},
        {"name": "load average during the suite (1 min)", "value": os.getloadavg()[0], "unit": ""},
    ]
    return out


def main(argv: list[str]) -> None:
    from agent.liveness.fusion import load_thresholds
    from agent.quality import QualityGate
    out, first, stop = Path(argv[0]), int(argv[1]), int(argv[2])
    references = tuple(argv[3].split(",")) if len(argv) > 3 else None
    if references is not None and not set(references) <= set(REFERENCES):
        raise SystemExit(f"references: some of {','.join(REFERENCES)}")
    gate, thresholds = QualityGate(), load_thresholds("kiosk", challenged=True)
    session(stop, gate, thresholds)                 # warms the models, the tables and the judge threads
    rows = []
    for i in range(first, stop):
        row = session(i, gate, thresholds, unguessed=True, references=references)
        rows.append(row)
        out.write_text(json.dumps(rows, indent=1))
        print(json.dumps({k: row.get(k) for k in ("key", "verdict", "caller_cpu_after_drain_ms", "process_cpu_ms")}),
              flush=True)
    out.write_text(json.dumps(rows, indent=1))
    done = [r for r in rows if "caller_cpu_ms" in r]
    for name in ("caller_cpu_ms", "caller_cpu_after_drain_ms", "process_cpu_ms", "wall_ms", "judge_finish_ms",
                 "last_measurement_cpu_ms", "last_align_cpu_ms", "last_inspection_cpu_ms", "last_mesh_cpu_ms",
                 "last_gate_cues_cpu_ms", "measuring_thread_ms", "measuring_thread_before_ms",
                 "two_idle_cores_ms", "two_idle_cores_before_ms"):
        v = [r[name] for r in done if name in r]
        if v:
            print(f"{name:28} median {statistics.median(v):7.2f}  p95 {np.percentile(v, 95):7.2f}  (n={len(v)})")
        for other, label in (("unguessed", "no grids guessed ahead"), ("unpatterned", "no patterns ahead"),
                             ("in_finish", "lit-last pair in finish"), ("unshared", "cues, skin one thread"),
                             ("unshrunk", "noise, last grid as before"),
                             ("before31", "background, relit as before"),
                             ("before32", "relit try as before32"),
                             ("before33", "flood, last steps as before33")):
            w = [r[other][name] for r in done if name in r.get(other, {})]
            if w:
                print(f"  {label:26} median {statistics.median(w):7.2f}  p95 {np.percentile(w, 95):7.2f}")
    for name, v in (("grids beside, guessed box", [r["beside_ms"].get("grids", 0.0) for r in done]),
                    ("grids beside, no guess", [r["unguessed"]["beside_ms"].get("grids", 0.0) for r in done
                                                if "unguessed" in r]),
                    ("grids read ahead (guess)", [r["ahead_ms"].get("guessed_grids", 0.0) for r in done]),
                    ("lights beside, patterns", [r["beside_ms"].get("lights", 0.0) for r in done]),
                    ("lights beside, no patterns", [r["unpatterned"]["beside_ms"].get("lights", 0.0) for r in done
                                                    if "unpatterned" in r]),
                    ("patterns ahead", [r["ahead_ms"].get("patterns", 0.0) for r in done]),
                    ("lit-last pairs beside", [r["beside_ms"].get("lit_last", 0.0) for r in done]),
                    ("noise beside", [r["beside_ms"].get("noise", 0.0) for r in done]),
                    ("last steps beside", [r["beside_ms"].get("steps", 0.0) for r in done]),
                    ("noise beside, as before", [r["unshrunk"]["beside_ms"].get("noise", 0.0) for r in done
                                                 if "unshrunk" in r])):
        if v:
            print(f"{name:28} median {statistics.median(v):7.2f}  p95 {np.percentile(v, 95):7.2f}  (n={len(v)})")
    print(f"sessions with a pair lit by the last frameset: "
          f"{[r['key'].rsplit('/', 1)[-1] for r in done if r.get('lit_last_pairs')]}")
    print(f"guessed box right in {sum(r.get('guessed_box_right', False) for r in done)} of {len(done)}")
    parts = [r["face_parts_ms"] for r in done if r.get("face_parts_ms")]
    for part in ("to_face", "checks", "cues", "skin"):
        if parts:
            v = [p[part] for p in parts]
            print(f"last measurement after the face: {part:8} median {statistics.median(v):6.2f}  "
                  f"p95 {np.percentile(v, 95):6.2f}  (n={len(v)})")
    print(f"last frameset's cues read by the other thread in {sum(bool(r.get('cues_by_other')) for r in done)}, "
          f"its skin in {sum(bool(r.get('skin_by_other')) for r in done)}, of {len(parts)}")
    print(f"lit frames' patterns worked out ahead {sum(r.get('patterns_ahead', 0) for r in done)}, "
          f"read by a pair {sum(r.get('patterns_used', 0) for r in done)}")


if __name__ == "__main__":
    main(sys.argv[1:])
