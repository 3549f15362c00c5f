"""``capture-agent analyze URI [--json] [--frames N]``: one offline liveness session on any source.

sync → align → quality → liveness, then the verdict and every detector's score. A live camera is
challenged with a fresh random nonce, with every challenge it can take (the projector's, the
illumination's where the camera lights the kiosk itself); a recording cannot obey a challenge, so
presentation-attack detection runs without one and the output says so.
"""

from __future__ import annotations

import json
import os
import time

import drivers
from agent.errors import UsageError
from agent.liveness.fusion import load_thresholds
from agent.liveness.judge import MIN_FACE_FRAMES, judge
from agent.liveness.supervisor import LivenessSupervisor
from agent.quality import QualityGate, QualitySettings
from agent.quality.gate import require_stream_spec
from agent.session import offline


def register(sub) -> None:
    p = sub.add_parser("analyze", help="run sync, align, quality and liveness on one session from any source")
    p.add_argument("uri")
    p.add_argument("--frames", type=int, default=30, help="framesets to judge (default 30)")
    p.add_argument("--channel", default="kiosk", help="threshold channel: counter, kiosk, vtm, mobile")
    p.add_argument("--in-process", action="store_true",
                   help="judge in this process instead of the sandboxed liveness worker (debugging)")
    p.add_argument("--nonce", help="challenge nonce as hex (>= 16 bytes) instead of a fresh random one: "
                                   "the same live-camera session again, for reproducing a verdict")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def analyze(uri: str, frames: int, channel: str = "kiosk", *, isolated: bool = True,
            nonce: bytes | None = None) -> dict:
    t0 = time.perf_counter()
    nonce = nonce if nonce is not None else os.urandom(32)
    settings = QualitySettings(channel=channel)
    gate = QualityGate(settings)
    cam = drivers.open(uri)
    with cam:
        info = cam.info
        # A missing stream (§7.5 g: colour, depth and IR together) is refused before anything is judged.
        require_stream_spec(cam.profiles(), gate.thresholds)
        cap = offline.capture(cam, frames, nonce, gate)
    challenge, notes, sets = cap.challenge, cap.notes, cap.sets
    # No face, or no depth at all: an error, never a verdict.
    offline.check_input(sets, gate.detector, min_faces=MIN_FACE_FRAMES)
    thresholds = load_thresholds(channel, challenged=challenge is not None)
    if isolated:
        # The same judging code, in the sandboxed worker: frames through shared memory, the verdict
        # bound to their digests. A worker failure is a typed error, never a verdict.
        with LivenessSupervisor() as sup:
            r = sup.judge(sets, nonce=nonce if challenge is not None else None, thresholds=thresholds, notes=notes,
                          channel=channel, kinds=tuple(sorted(k.value for k in challenge.kinds)) if challenge else ())
        v, quality, timing = r.verdict, r.quality, dict(r.timing_ms)
        skew = r.max_skew_ms
        timing["to_worker_per_frameset"] = round(sum(r.transfer_ms) / max(len(r.transfer_ms), 1), 3)
    else:
        result = judge(sets, gate, thresholds, challenge=challenge, notes=notes)
        v, q, timing = result.verdict, result.quality, dict(result.timing_ms)
        skew = result.max_skew_ms
        quality = {"ok": gate.complete, "prompts": [] if gate.complete else (q.prompts if q else ["NO_FACE"]),
                   "progress": gate.progress, "metrics": q.to_dict()["metrics"] if q else {}}
    d = v.to_dict()
    return {
        "uri": uri,
        "device": {"backend": info.backend, "name": info.name, "serial": info.serial, "recording": info.is_recording},
        "liveness": {"verdict": v.verdict, "score": d["score"], "detectors": d["detectors"],
                     "challenge_used": v.challenge_used, "challenge": v.challenge, "injection": v.injection,
                     "notes": v.notes, "cues": d["cues"], "frame_digests": v.frame_digests,
                     "model_versions": v.model_versions, "isolated": isolated},
        "quality": quality,
        "quality_phase": cap.quality.to_dict(),
        "sync": {"framesets": len(sets), "max_skew_ms": round(skew, 3) if skew is not None and skew == skew else None},
        "timing_ms": {**{k: round(x, 2) for k, x in timing.items()},
                      "wall": round((time.perf_counter() - t0) * 1000, 1)},
    }


def run(args) -> int:
    if args.frames < 5:
        raise drivers.InvalidUri("--frames must be at least 5")
    nonce = None
    if args.nonce is not None:
        try:
            nonce = bytes.fromhex(args.nonce)
        except ValueError:
            raise UsageError("--nonce must be hex") from None
        if len(nonce) < 16:
            raise UsageError("--nonce must be at least 16 bytes (32 hex digits)")
    out = analyze(args.uri, args.frames, args.channel, isolated=not args.in_process, nonce=nonce)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    lv = out["liveness"]
    print(f"source: {out['uri']} ({out['device']['backend']}{', recording' if out['device']['recording'] else ''})")
    print(f"liveness: {lv['verdict'].upper()}  score {lv['score']}")
    for k, s in lv["detectors"].items():
        print(f"  {k:<16} {s}")
    if lv["challenge_used"]:
        ch = lv["challenge"]
        print(f"  challenge        {'passed' if ch['passed'] else 'FAILED'}")
        for kind in ch.get("kinds", []):
            r = ch[kind]
            print(f"    {kind:<14} {'passed' if r['passed'] else 'FAILED'} (lag {r['lag_frames']}, "
                  f"{r['mismatches']} of {r['checked']} frames disagree, separation {r['separation']})")
    for n in lv["notes"]:
        print(f"  note: {n}")
    print(f"quality: {'ok' if out['quality']['ok'] else 'not ok'}  prompts {out['quality']['prompts']}")
    print(f"sync: {out['sync']['framesets']} framesets, max skew {out['sync']['max_skew_ms']} ms")
    print(f"timing: {out['timing_ms']['per_frameset']} ms per frameset, {out['timing_ms']['wall']} ms wall")
    return 0
