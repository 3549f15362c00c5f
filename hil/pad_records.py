"""pad-eval's records: each presentation run as the daemon would run it, one JSON object per line.

``run_presentation`` presents one simulator presentation (the quality phase, then the challenge
window judged in this process) and ``run_recorded`` one genuine RealSense recording of it, judged by
``analyze``; each returns a record with no face data in it (version ``RECORD_VERSION``). ``run`` runs a
list of them, appending to a JSONL file and resuming from it; ``read_records`` reads one back and
``select`` keeps the records of one run's kind (split, window, source, mode, prompts, rendering).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

import drivers
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import judge
from agent.quality import QualityGate
from agent.quality.gate import SIM_LUX_K
from agent.quality.settings import QualitySettings
from agent.session.events import verdict_prompt
from agent.session.offline import capture
from drivers.errors import CaptureAgentError
from hil.pad_enrolment import dot_reference_for
from hil.pad_presentations import Presentation, presentation_nonce, terminal_uri
from hil.pad_prompts import _SIM_LUX, run_following

RECORD_VERSION = 2
IPD_ENVELOPE_PX = 60.0                      # §7.4: the capture envelope's lower bound on the IPD


def record_rendered_with(rec: Mapping[str, Any], key: str) -> bool:
    """Whether a record's presentation was rendered with ``key=1`` (``ir_leak``, ``cornea``): such
    records are reported apart from the others."""
    query = rec.get("uri", "").split("?", 1)
    return len(query) == 2 and f"{key}=1" in query[1].split("&")


def _clean(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return round(v, 5) if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def kiosk_gate() -> QualityGate:
    """pad-eval's quality gate: the default one, with the simulator's lux calibration (``SIM_LUX_K``) so the
    face's illuminance is estimated as on a kiosk whose camera has one (the prompt after a refused verdict
    reads it: ``events.verdict_prompt``), and its illuminance checks open (0 lux up), so acquisition is as
    with the uncalibrated gate pad-eval ran before (a sim family draws its lux inside the envelope)."""
    return QualityGate(QualitySettings(lux_calibration={"default": SIM_LUX_K},
                                       thresholds={"lux_min": 0.0, "lux_max": float(_SIM_LUX[1])}))


def run_presentation(p: Presentation, *, frames: int, passive: bool, gate: QualityGate,
                     thresholds: VerdictThresholds, dot_reference: bool = True) -> dict[str, Any]:
    """One presentation, as the daemon would run it; a record with no face data in it. With
    ``dot_reference`` (challenged sessions) the camera's projector pattern is enrolled first
    (:func:`dot_reference_for` of the terminal's camera, :func:`terminal_uri`) and every on-off pair is
    tested against it."""
    rec: dict[str, Any] = {"v": RECORD_VERSION, "key": p.key, "split": p.split, "kind": p.kind,
                           "species": p.species, "index": p.index, "uri": p.uri, "passive": passive,
                           "frames": frames, "source": "sim", "dot_reference": dot_reference and not passive}
    ref = None
    try:
        if dot_reference and not passive:
            ref = dot_reference_for(terminal_uri(p))      # the terminal's unit's (another unit's stream: not its own)
            rec["dot_reference_sha256"] = hashlib.sha256(ref.to_bytes()).hexdigest()
        cam = drivers.open(p.uri)
        with cam:
            cap = capture(cam, frames, None if passive else presentation_nonce(p), gate, require_quality=True)
            elapsed = getattr(cam, "scene_time_s", None)          # the simulator's: a retry's start (followed_uri)
    except CaptureAgentError as exc:
        return {**rec, "outcome": "error", "error": exc.code, "message": str(exc)}
    q = cap.quality
    if isinstance(elapsed, float):
        rec["camera_s"] = round(elapsed, 3)
    rec["quality"] = q.to_dict()
    if math.isfinite(q.lux):
        rec["face_lux"] = round(q.lux, 1)                       # the gate's estimate (kiosk_gate): the prompt's
    rec["in_envelope"] = not (q.ipd_px == q.ipd_px and q.ipd_px < IPD_ENVELOPE_PX)
    if not q.complete:
        return _clean({**rec, "outcome": "not_acquired", "reason": q.reason})
    if len(cap.sets) < frames:           # a stalled source: never silently a shorter window
        return _clean({**rec, "outcome": "error", "error": "SYN_TIMEOUT",
                       "message": f"only {len(cap.sets)} of {frames} framesets in the window"})
    r = judge(cap.sets, gate, thresholds, challenge=cap.challenge, notes=cap.notes, dot_reference=ref)
    v = r.verdict
    reported = [fs.ir.metadata.projector_on for fs in cap.sets if fs.ir is not None]
    claimed_off = bool(reported) and all(x is False for x in reported)
    projector_checked = "projector" in (v.challenge or {})     # then the dots decide, as in the judge
    rec.update(outcome="accepted" if v.verdict == "live" else "rejected", verdict=v.verdict, score=v.score,
               detectors=v.detectors, cues=v.cues, notes=v.notes,
               challenge=v.challenge, injection_signals=v.injection,
               projector_seen=projector_checked or not claimed_off, projector_claimed_off=claimed_off)
    told = verdict_prompt(v, thresholds.live_min, q.lux)
    if told is not None:
        rec["prompt"] = told.code                               # what the daemon tells the person (capture.py)
    return _clean(rec)


RECORD_SETTLE_SETS = 10          # framesets the recording rig lets the exposure settle on the face first


def record_presentation(p: Presentation, path: Path, frames: int) -> int:
    """A genuine RealSense recording of ``p`` (librealsense's own recorder through
    ``rs.software_device``, ``drivers/realsense_record.py``), made as the agent's lab record mode
    would make it: the colour exposure metered on the face, the projector left on (nothing to
    challenge), the framesets after the exposure settled. Returns the framesets written."""
    from agent.pipeline.align import align_frameset
    from agent.pipeline.frames import FramesetReader
    from agent.quality.metering import FaceMetering
    from drivers.realsense_record import Recorder

    gate = QualityGate()
    cam = drivers.open(p.uri)
    written = 0
    with cam:
        reader = FramesetReader(cam)
        metering = FaceMetering(cam)
        rec = Recorder(cam, str(path))
        try:
            for k, fs in enumerate(reader.stream(timeout_s=30.0, per_frameset=True)):
                if k < RECORD_SETTLE_SETS:
                    a = align_frameset(fs)
                    metering.observe(gate.evaluate(a).face, a.color.width, a.color.height)
                    continue
                for f in fs.frames.values():
                    rec.write(f)
                written += 1
                if written >= frames + 2:          # a little more than analyze reads
                    break
        finally:
            rec.close()
            metering.end()
    return written


def run_recorded(p: Presentation, *, frames: int, workdir: Path) -> dict[str, Any]:
    """``p`` recorded to a ``.db3`` and judged by ``capture-agent analyze realsense+file://...``
    (in this process: the same judging code as the sandboxed worker). The file is deleted after."""
    from agent.commands.analyze import analyze

    rec: dict[str, Any] = {"v": RECORD_VERSION, "key": p.key, "split": p.split, "kind": p.kind,
                           "species": p.species, "index": p.index, "uri": p.uri, "passive": True,
                           "frames": frames, "source": "db3"}
    path = workdir / f"{p.split}-{p.species}-{p.index}.db3"
    try:
        record_presentation(p, path, frames)
        out = analyze(f"realsense+file://{path}", frames, isolated=False)
    except CaptureAgentError as exc:
        # Bad input refused by analyze (no face, empty depth, a missing stream) or a source error:
        # an error with its code, never a verdict.
        return _clean({**rec, "outcome": "error", "error": exc.code, "message": str(exc)})
    finally:
        path.unlink(missing_ok=True)
    q = out["quality"]
    lv = out["liveness"]
    rec["quality"] = {"complete": bool(q["ok"]), "prompts": q.get("prompts", [])}
    rec["in_envelope"] = True
    ipd = (q.get("metrics") or {}).get("ipd_px")
    if ipd is not None:
        rec["in_envelope"] = ipd >= IPD_ENVELOPE_PX
    if not q["ok"]:
        return _clean({**rec, "outcome": "not_acquired", "reason": (q.get("prompts") or ["NO_FACE"])[0]})
    rec.update(outcome="accepted" if lv["verdict"] == "live" else "rejected", verdict=lv["verdict"],
               score=lv["score"], detectors=lv["detectors"], cues=lv["cues"], notes=lv["notes"],
               challenge=None, injection_signals=lv["injection"], projector_seen=True)
    return _clean(rec)


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            if r.get("v") == RECORD_VERSION:
                out.append(r)
    return out


def run(items: list[Presentation], *, frames: int, passive: bool, thresholds: VerdictThresholds,
        records: Path | None = None, progress: Callable[[int, int, dict], None] | None = None,
        recordings: Path | None = None, dot_reference: bool = True, follow_prompts: int = 0
        ) -> list[dict[str, Any]]:
    """Run ``items`` in order. With ``records``, each record is appended to that JSONL file as it
    is made, and presentations already in it (same key, mode, source, window and ``follow_prompts``)
    are not run again: a long evaluation can be split across several invocations and resumed. With
    ``recordings`` (a directory for the temporary ``.db3`` files) each presentation is recorded and
    judged from the recording (passive by nature). With ``follow_prompts`` N > 0 a presentation
    refused with a distance prompt is presented again, moved as told, up to N times (``run_following``;
    simulator presentations only)."""
    if follow_prompts < 0 or (follow_prompts and recordings is not None):
        raise ValueError("follow_prompts must be >= 0, and applies to simulator presentations only")
    source = "db3" if recordings is not None else "sim"
    done: dict[tuple[str, str], dict[str, Any]] = {}      # by key and URI (ir_leak=1 runs share keys)
    if records is not None:
        for r in read_records(records):
            if r["passive"] == passive and r["frames"] == frames and r.get("source", "sim") == source \
                    and r.get("dot_reference", False) == (dot_reference and not passive and recordings is None) \
                    and r.get("follow_prompts", 0) == follow_prompts:
                done[(r["key"], r.get("uri", ""))] = r
    gate = kiosk_gate()

    def attempt(p: Presentation) -> dict[str, Any]:
        return run_presentation(p, frames=frames, passive=passive, gate=gate, thresholds=thresholds,
                                dot_reference=dot_reference)

    out = []
    for k, p in enumerate(items):
        rec = done.get((p.key, p.uri))
        if rec is None:
            if recordings is not None:
                rec = run_recorded(p, frames=frames, workdir=recordings)
            elif follow_prompts:
                rec = run_following(p, follow_prompts, attempt)
            else:
                rec = attempt(p)
            if records is not None:
                with records.open("a") as fh:
                    fh.write(json.dumps(rec) + "\n")
        out.append(rec)
        if progress is not None:
            progress(k + 1, len(items), rec)
    return out


def select(records: list[dict[str, Any]], *, split: str, frames: int, source: str = "sim",
           passive: bool | None = None, follow_prompts: int = 0, ir_leak: bool = False,
           cornea: bool = False) -> list[dict[str, Any]]:
    return [r for r in records if r["split"] == split and r["frames"] == frames
            and r.get("source", "sim") == source and (passive is None or r["passive"] == passive)
            and r.get("follow_prompts", 0) == follow_prompts and record_rendered_with(r, "ir_leak") == ir_leak
            and record_rendered_with(r, "cornea") == cornea]
