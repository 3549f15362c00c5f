"""The verdict's reply from the worker to the daemon (issue 20): the face grids of the challenge
evidence and the probe's landmarks packed (``wire.pack_floats``, the landmarks rounded by
``wire.rounded``) against the JSON lists they were, on verdicts of train-family live presentations.

Each presentation (``BENCH_REPLY_SESSIONS``, default 4, from ``train:live:0``) is captured as
pad-eval captures it and judged in process (the worker's judge, on its threads); its ``JudgeResult``
is then turned into the worker's reply both ways, interleaved, ``BENCH_REPLY_RUNS`` times each
(default 200), CPU time of this thread (``time.thread_time``):

* the worker's side: the reply made (``best_face``, the evidence as it goes out) and encoded
  (``json.dumps``, as ``wire.send`` does);
* the daemon's side: decoded (``json.loads``, as ``wire.recv``) and the evidence and ``best``
  checked and rebuilt (``unpack_evidence``, ``unpack_best``; the reference: ``check_evidence``
  on the lists, and the index check that was all ``best`` had).

The reference is the path before, written out here as it was (``_lists_reply``). Both must give the
daemon the same evidence and ``best`` (the JSON of each the same text) or the suite fails.

Also the worker's end of the session, once per presentation, as the worker's judge loop does it
(the framesets go through a frame ring as the worker reads them, its alignment temporaries kept
per thread as the worker keeps them): the judge closed and dropped with its framesets and aligned
results, the temporaries released, the ring's frame copies and the gate's history let go. It came
before the verdict's reply until the twenty-second session and comes after it now, so the
worker's share from ``finish``'s result to the reply sent is the packed reply alone, against the
lists' reply plus that end on the path before (the same CPU times)."""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

import numpy as np

FRAMES = 32


def _lists_reply(r: Any) -> dict[str, Any]:
    """The verdict's arrays as the worker sent them before: lists, each landmark rounded by ``round``."""
    f = r.best_face
    best = None if r.best_index is None or f is None else {
        "index": r.best_index, "bbox": [round(float(v), 2) for v in f.detection.bbox],
        "landmarks": [[round(float(v), 2) for v in p] for p in f.mesh.landmarks]}
    return {"best": best, "evidence": r.evidence}


def _packed_reply(r: Any) -> dict[str, Any]:
    from agent.liveness.worker import best_face, pack_evidence
    return {"best": best_face(r), "evidence": pack_evidence(r.evidence)}


def _encode(reply: dict[str, Any], rest: dict[str, Any]) -> bytes:
    return json.dumps({**rest, **reply}, separators=(",", ":"), allow_nan=False).encode()


def _lists_check(data: bytes, digests: list[str], sent: int) -> tuple[Any, Any]:
    from agent.liveness.supervisor import check_evidence
    msg = json.loads(data)
    best, ev = msg["best"], msg["evidence"]
    if best is not None and not (isinstance(best, dict) and isinstance(best.get("index"), int)
                                 and 0 <= best["index"] < sent):
        raise RuntimeError("reference: best refused")
    if ev is not None and not check_evidence(ev, digests):
        raise RuntimeError("reference: evidence refused")
    return best, ev


def _packed_check(data: bytes, digests: list[str], sent: int) -> tuple[Any, Any]:
    from agent.liveness.supervisor import unpack_best, unpack_evidence
    msg = json.loads(data)
    best = None if msg["best"] is None else unpack_best(msg["best"], sent)
    ev = None if msg["evidence"] is None else unpack_evidence(msg["evidence"], digests)
    if (best is None) != (msg["best"] is None) or (ev is None) != (msg["evidence"] is None):
        raise RuntimeError("packed: refused")
    return best, ev


def session(index: int, gate: Any, thresholds: Any, runs: int) -> dict[str, Any] | None:
    import drivers
    from agent.liveness.judge import Judge, judge_pool
    from agent.liveness.wire import Ring
    from agent.liveness.worker import quality_summary
    from agent.pipeline.align import release_scratch
    from agent.session.offline import capture
    from hil.pad_presentations import Presentation, presentation_nonce, presentation_uri
    p = Presentation("bona_fide", "live", "train", index, presentation_uri("train", "live", index))
    with drivers.open(p.uri) as cam:
        cap = capture(cam, FRAMES, presentation_nonce(p), gate, require_quality=True)
    if len(cap.sets) < FRAMES or cap.challenge is None:
        return None
    ring = Ring(4, 16 << 20)
    try:
        j = Judge(gate, thresholds, challenge=cap.challenge, notes=cap.notes, pool=judge_pool())
        for k, fs in enumerate(cap.sets):            # through the ring, as the worker reads them
            j.add(ring.read(json.loads(json.dumps(ring.write(k % 4, fs)))))
        r = j.finish()
        rest = {"op": "verdict", "liveness": r.verdict.to_dict(), "quality": quality_summary(j.gate, r.quality),
                "timing_ms": {k: round(v, 3) for k, v in r.timing_ms.items()}, "framesets": r.framesets}
        # The session's end as the worker's loop does it (``end_session``; the result, which holds
        # none of the frames, is kept here for the replies below), timed once.
        c0 = time.thread_time()
        if not j.close(5.0):
            raise RuntimeError("a judge task did not end")
        del j
        release_scratch()
        ring.buffers.clear()
        gate.reset()
        end_ms = (time.thread_time() - c0) * 1000
    finally:
        ring.close()
    digests, sent = r.verdict.frame_digests, len(cap.sets)
    if r.evidence is None or r.best_face is None:
        return None
    old = _lists_check(_encode(_lists_reply(r), rest), digests, sent)
    new = _packed_check(_encode(_packed_reply(r), rest), digests, sent)
    if json.dumps(old) != json.dumps(new):
        raise RuntimeError(f"{p.key}: the packed reply gives the daemon other evidence or best than the lists")
    paths = {"lists": (_lists_reply, _lists_check), "packed": (_packed_reply, _packed_check)}
    cpu: dict[str, dict[str, list[float]]] = {k: {"worker": [], "daemon": []} for k in paths}
    sizes = {k: len(_encode(make(r), rest)) for k, (make, _) in paths.items()}
    for _ in range(runs):
        for name, (make, check) in paths.items():           # interleaved: the same load on both
            c0 = time.thread_time()
            data = _encode(make(r), rest)
            c1 = time.thread_time()
            check(data, digests, sent)
            c2 = time.thread_time()
            cpu[name]["worker"].append((c1 - c0) * 1000)
            cpu[name]["daemon"].append((c2 - c1) * 1000)
    med = statistics.median
    return {"key": p.key, "end_ms": end_ms,
            **{f"{k}_{side}_ms": med(v[side]) for k, v in cpu.items() for side in ("worker", "daemon")},
            **{f"{k}_bytes": n for k, n in sizes.items()}}


def run() -> list[dict]:
    from agent.liveness.fusion import load_thresholds
    from agent.quality import QualityGate
    n = max(1, int(os.environ.get("BENCH_REPLY_SESSIONS", 4)))
    runs = max(1, int(os.environ.get("BENCH_REPLY_RUNS", 200)))
    from agent.pipeline.align import keep_scratch, release_scratch
    gate = QualityGate()
    keep_scratch(True)                                    # as the worker keeps them (``warm_up``)
    try:
        got = [session(i, gate, load_thresholds("kiosk"), runs) for i in range(n)]
    finally:
        keep_scratch(False)
        release_scratch()
    rows = [r for r in got if r is not None]
    if not rows:
        raise RuntimeError("no presentation gave a challenged window with a face")
    k = len(rows)
    med = statistics.median

    def col(name: str) -> float:
        return med(float(r[name]) for r in rows)

    def total(path: str) -> float:
        return med(float(r[f"{path}_worker_ms"]) + float(r[f"{path}_daemon_ms"]) for r in rows)
    out = [{"name": f"verdict reply, worker + daemon CPU, median of {k} train live verdicts", "value": total("packed"),
            "unit": "ms", "reference": total("lists"), "ratio": total("packed") / total("lists"),
            "note": "reference: the grids and landmarks as JSON lists (the path before), interleaved, same process"}]
    for side, what in (("worker", "made and encoded"), ("daemon", "decoded, checked, rebuilt")):
        v, ref = col(f"packed_{side}_ms"), col(f"lists_{side}_ms")
        out.append({"name": f"  {side}: {what}", "value": v, "unit": "ms", "reference": ref, "ratio": v / ref})
    end = [float(r["end_ms"]) for r in rows]
    before = [float(r["lists_worker_ms"]) + float(r["end_ms"]) for r in rows]
    now = [float(r["packed_worker_ms"]) for r in rows]
    out += [
        {"name": "worker: finish's result to the reply sent, median", "value": med(now), "unit": "ms",
         "reference": med(before), "ratio": med(now) / med(before),
         "note": "reference: the lists' reply after the session's end (the path before), the same CPU times"},
        {"name": "  the same, p95", "value": float(np.percentile(now, 95)), "unit": "ms",
         "reference": float(np.percentile(before, 95)),
         "ratio": float(np.percentile(now, 95) / np.percentile(before, 95))},
        {"name": "  the session's end (now after the reply), median", "value": med(end), "unit": "ms"},
        {"name": "  the same, p95", "value": float(np.percentile(end, 95)), "unit": "ms"},
    ]
    out += [
        {"name": "  reply size", "value": col("packed_bytes"), "unit": "bytes", "reference": col("lists_bytes"),
         "ratio": col("packed_bytes") / col("lists_bytes")},
        {"name": "  evidence and best the same as the lists'", "value": float(k), "unit": f"of {k}"},
        {"name": "  load average during the suite (1 min)", "value": os.getloadavg()[0], "unit": ""},
    ]
    return out


if __name__ == "__main__":
    for row in run():
        print(json.dumps(row))
