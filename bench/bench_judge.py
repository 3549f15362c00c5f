"""The liveness judge's CPU per frameset, by part, and whether the sandboxed worker keeps up with a
window delivered at 30 fps (issue 20).

One recorded 32-frameset window under both challenges (the uplink bench's subject, ``sim://`` not
in real time) is used throughout:

* **CPU by part**: each frameset measured as the judge's two tasks do it (the face detection, the
  projector's dot energy and the digest; the alignment; the quality gate's measure, with FaceMesh
  and Iris; the cues), then folded in order, one part after another on this thread, timed by the
  process's CPU time (``time.process_time``: the machine's load does not count, OpenCV's own
  threads do). ``BENCH_JUDGE_REPEATS`` passes over the window (default 3), median per part. The
  face models' inference (``invoke``) is timed inside the detection and the gate as well.
* **30 fps replay**: the same window fed to the sandboxed worker at 30 fps, as a camera delivers
  it, ``BENCH_JUDGE_REPLAYS`` times (default 5) after one unmeasured window: the framesets still
  unmeasured at the last frame (``backlog``), the wait for them (``drain``), the last frame to the
  verdict, and the worker process's CPU per frameset (``/proc``, every thread). The worker keeps up
  when the backlog is the one frameset in flight; how far it falls behind on a busy machine depends
  on the CPU it gets, which the CPU per frameset sets against the 2 x 33 ms two judge threads have.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from agent.liveness.challenge import Challenge, dot_energy
from agent.liveness.features import measure_frame
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import JUDGE_THREADS, Judge, _Measured, frameset_digest
from agent.pipeline.align import align_frameset
from agent.quality import QualityGate
from bench.windows import challenged_window
from drivers.frame import FrameSet

SCENE = "sim://?realtime=0&seed=21&identity=3&skin=3&lux=150"
FRAMES = 32
FPS = 30.0
NONCE = bytes(range(32))


def _env(name: str, default: int) -> int:
    return max(1, int(os.environ.get(name, default)))


def window() -> tuple[Challenge, list[FrameSet]]:
    challenge, sets = challenged_window(SCENE, FRAMES, NONCE)
    if len(sets) != FRAMES:
        raise RuntimeError(f"the simulator delivered {len(sets)} of {FRAMES} framesets")
    return challenge, sets


class _Invokes:
    """CPU time spent in the face models' ``invoke`` on this thread, while installed."""

    def __init__(self) -> None:
        from ai_edge_litert.interpreter import Interpreter
        self.cls, self.real, self.s = Interpreter, Interpreter.invoke, 0.0

    def __enter__(self) -> _Invokes:
        real = self.real

        def invoke(it: Any) -> None:
            t0 = time.process_time()
            try:
                real(it)
            finally:
                self.s += time.process_time() - t0
        self.cls.invoke = invoke
        return self

    def __exit__(self, *exc: object) -> None:
        self.cls.invoke = self.real


class _Parts:
    """CPU time per named part (seconds), summed over calls."""

    def __init__(self) -> None:
        self.spent = dict.fromkeys(("detection", "energy + digest", "alignment", "quality gate", "cues", "fold"), 0.0)

    def __call__(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        t0 = time.process_time()
        out = fn(*args)
        self.spent[name] += time.process_time() - t0
        return out


def _energy_digest(fs: FrameSet) -> tuple[float | None, str]:
    return (dot_energy(fs.ir.pixels) if fs.ir is not None else None), frameset_digest(fs)


def _cues(a: Any, m: Any) -> tuple[Any, Any]:
    return measure_frame(a, m.face) if m.face is not None else (None, None)


def cpu_by_part(challenge: Challenge, sets: list[FrameSet], gate: QualityGate, repeats: int) -> dict[str, float]:
    """Median over ``repeats`` passes of each part's CPU per frameset (ms)."""
    passes: list[dict[str, float]] = []
    for k in range(repeats + 1):                   # the first pass warms the models and the tables
        part = _Parts()
        judge = Judge(gate, VerdictThresholds(), challenge=challenge)
        with _Invokes() as models:
            for fs in sets:
                assert fs.color is not None
                dets = part("detection", gate.detector.detect, fs.color.pixels)
                energy, digest = part("energy + digest", _energy_digest, fs)
                a = part("alignment", align_frameset, fs)
                m = part("quality gate", gate.measure, a, dets)
                cues, skin = part("cues", _cues, a, m)
                part("fold", judge._fold, fs, _Measured(a, m, cues, skin, energy, digest, (0.0, 0.0, 0.0)))
        if k:
            passes.append({**{name: s * 1000 / len(sets) for name, s in part.spent.items()},
                           "face models' inference (in detection and gate)": models.s * 1000 / len(sets)})
    return {name: statistics.median(p[name] for p in passes) for name in passes[0]}


def _process_cpu_ms(pid: int) -> float:
    """User + system CPU time of every thread of process ``pid`` so far (ms)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def replay(challenge: Challenge, sets: list[FrameSet], replays: int) -> list[dict[str, float]]:
    """The window fed to the sandboxed worker at ``FPS``: per replay, backlog, drain, last frame to
    verdict (ms), and the worker's CPU per frameset (ms)."""
    from agent.liveness.supervisor import LivenessSupervisor
    out = []
    with LivenessSupervisor() as sup:
        for k in range(replays + 1):
            pid = sup.pid
            assert pid is not None
            c0 = _process_cpu_ms(pid)
            with sup.open_judge(frames=len(sets), nonce=challenge.nonce,
                                kinds=tuple(sorted(x.value for x in challenge.kinds))) as worker:
                t0 = time.perf_counter()
                for i, fs in enumerate(sets):
                    due = t0 + i / FPS
                    while (wait := due - time.perf_counter()) > 0:
                        time.sleep(wait)
                    worker.add(fs)
                last = time.perf_counter()
                r = worker.finish()
                after = (time.perf_counter() - last) * 1000
            if r.verdict.verdict != "live":
                raise RuntimeError(f"the replayed window was judged {r.verdict.verdict}: {r.verdict.notes}")
            if k:                                   # the first warms the worker's threads and tables
                t = r.timing_ms
                out.append({"backlog": t["backlog"], "drain": t["drain"], "verdict": after,
                            "cpu": (_process_cpu_ms(pid) - c0) / len(sets),
                            # The judge threads' own spans per frameset (waiting for a core
                            # included) and their CPU time (NaN from a judge that does not report it).
                            "spans": (t["align"] + t["quality"] + t["liveness"] - t["ahead"] - t["finish"]) / len(sets),
                            "thread_cpu": t.get("cpu_per_frameset", float("nan"))})
    return out


def run() -> list[dict]:
    challenge, sets = window()
    gate = QualityGate()
    parts = cpu_by_part(challenge, sets, gate, _env("BENCH_JUDGE_REPEATS", 3))
    budget = JUDGE_THREADS * 1000 / FPS            # the judge threads' CPU between two framesets at 30 fps
    total = sum(v for k, v in parts.items() if not k.startswith("face models"))
    rows: list[dict] = [{"name": f"judge CPU per frameset, one thread, {FRAMES}-frameset window (median of passes)",
                         "value": total, "unit": "ms", "reference": budget, "ratio": total / budget}]
    rows += [{"name": f"  of which {name}", "value": v, "unit": "ms"} for name, v in parts.items()]
    runs = replay(challenge, sets, _env("BENCH_JUDGE_REPLAYS", 5))
    backlog = [r["backlog"] for r in runs]
    drain = [r["drain"] for r in runs]
    verdict = [r["verdict"] for r in runs]
    cpu = statistics.median(r["cpu"] for r in runs)
    n = len(runs)
    rows += [
        {"name": f"worker at 30 fps: framesets unmeasured at the last frame, median of {n}",
         "value": statistics.median(backlog), "unit": "framesets", "reference": 1.0,
         "ratio": statistics.median(backlog), "max": max(backlog)},
        {"name": "worker at 30 fps: wait for them (drain), p50", "value": float(np.percentile(drain, 50)),
         "unit": "ms"},
        {"name": "worker at 30 fps: wait for them (drain), p95", "value": float(np.percentile(drain, 95)),
         "unit": "ms"},
        {"name": "worker at 30 fps: last frame to verdict, p50", "value": float(np.percentile(verdict, 50)),
         "unit": "ms"},
        {"name": "worker at 30 fps: last frame to verdict, p95", "value": float(np.percentile(verdict, 95)),
         "unit": "ms"},
        {"name": "worker at 30 fps: its process's CPU per frameset (every thread), median", "value": cpu,
         "unit": "ms", "reference": budget, "ratio": cpu / budget},
        {"name": "worker at 30 fps: judge threads' spans per frameset (align+quality+cues), median",
         "value": statistics.median(r["spans"] for r in runs), "unit": "ms"},
        {"name": "worker at 30 fps: judge threads' CPU per frameset (the same parts), median",
         "value": statistics.median(r["thread_cpu"] for r in runs), "unit": "ms"},
        {"name": "load average during the bench (1 min)", "value": os.getloadavg()[0], "unit": ""},
    ]
    return rows
