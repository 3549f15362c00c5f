"""Where the last frameset's ``frame_cues`` spends its CPU (issue 20, perf34): train-family live presentations
captured and judged as ``bench.bench_finish_cpu`` judges them; the last frameset the judge measured (its aligned
frames and face, kept in memory only) is then measured again ``ROUNDS`` times on this thread, timed by thread CPU, with
each named part of ``agent.liveness.features`` timed inside it (``lstsq``: every ``np.linalg.lstsq`` call of the three
fits, plane, cylinder and cheeks; ``_fit_rms`` includes the first two). Then the plane and cylinder fits on that
frameset's face-oval points with OpenBLAS at one thread and at two, interleaved: the CPU of the whole process and
whether the fits are the same to the bit (does the BLAS's threading cost the other judge thread's core?).

    nice -n 19 python -m bench.frame_cues_parts 8 10 11          # train:live:8, 10, 11

perf34, two runs (loads 17-26 and 21-23; at that load one frameset's CPU scatters +-30 %, live/10 4.99 vs 8.94 ms):
``frame_cues`` median 7.87-8.05 / 4.99-8.94 / 7.14-7.40 ms CPU (live/8, 10, 11); of it ``lstsq`` 1.47-1.57 /
0.37-0.58 / 1.24-1.33 ms and the two RMS fits with their residuals 1.84-2.00 / 0.41-0.69 / 1.63-1.70 ms (22,694 /
4,171 / 19,496 oval points). OpenBLAS's threads take no part in these fits: one thread and two cost the same process
CPU (1.71 vs 1.72, 0.58 vs 0.55, 1.45 vs 1.45 ms) with the same bits. The "5-7 ms" perf33 left was the whole of
``frame_cues``; a cheaper fit (normal equations: not bit-identical) could save at most ~1-1.5 ms of it.
"""

from __future__ import annotations

import ctypes
import glob
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

ROUNDS = 15
PARTS = ("face_roi", "leave_out_in_front", "_points", "_geometry", "_fit_rms", "ir_skin", "bright_end", "eye_recess")


def _openblas_threads() -> Callable[[int], None] | None:
    """numpy's own OpenBLAS's thread count setter, or None when numpy is built otherwise."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "libscipy_openblas64_*.so"))
    if not libs:
        return None
    fn = ctypes.CDLL(libs[0]).scipy_openblas_set_num_threads64_
    fn.argtypes = [ctypes.c_int]
    return fn


def _timing(into: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*a: Any, **kw: Any) -> Any:
        t0 = time.thread_time()
        try:
            return fn(*a, **kw)
        finally:
            into[name] = into.get(name, 0.0) + time.thread_time() - t0
    return timed


def last_measured(index: int) -> tuple[Any, Any]:
    """train:live:``index`` judged as bench_finish_cpu judges it; the last frameset's (aligned, face) it measured."""
    from agent.liveness import judge as judge_mod
    from agent.liveness.fusion import load_thresholds
    from agent.quality.gate import QualityGate
    from bench import bench_finish_cpu
    seen: list[tuple[Any, Any]] = []
    cues, measure = judge_mod.frame_cues, judge_mod.measure_frame

    def seen_cues(a: Any, f: Any) -> Any:
        seen.append((a, f))
        return cues(a, f)

    def seen_measure(a: Any, f: Any) -> Any:
        seen.append((a, f))
        return measure(a, f)
    judge_mod.frame_cues = seen_cues                      # type: ignore[assignment]
    judge_mod.measure_frame = seen_measure                # type: ignore[assignment]
    try:
        row = bench_finish_cpu.session(index, QualityGate(), load_thresholds("kiosk", challenged=True))
    finally:
        judge_mod.frame_cues, judge_mod.measure_frame = cues, measure
    if not seen or row.get("outcome") == "no window":
        raise RuntimeError(f"train:live:{index}: no window judged")
    return seen[-1]


def parts(aligned: Any, face: Any) -> dict[str, float]:
    """``frame_cues`` on one frameset ``ROUNDS`` times: its median CPU and each part's mean (ms)."""
    from agent.liveness import features
    spent: dict[str, float] = {}
    saved = {name: getattr(features, name) for name in PARTS}
    lstsq = np.linalg.lstsq
    try:
        for name in PARTS:
            setattr(features, name, _timing(spent, name, saved[name]))
        np.linalg.lstsq = _timing(spent, "lstsq", lstsq)
        whole = []
        for _ in range(ROUNDS):
            t0 = time.thread_time()
            features.frame_cues(aligned, face)
            whole.append(time.thread_time() - t0)
    finally:
        np.linalg.lstsq = lstsq
        for name, fn in saved.items():
            setattr(features, name, fn)
    return {"frame_cues": statistics.median(whole) * 1000, **{k: v / ROUNDS * 1000 for k, v in spent.items()}}


def blas_threads(aligned: Any, face: Any, rounds: int = 40) -> dict[str, Any] | None:
    """The plane and cylinder fits on this frameset's face-oval points at OpenBLAS 1 and 2 threads, interleaved:
    process CPU per pair of fits (ms) and whether every result is the same to the bit."""
    from agent.liveness import features
    setter = _openblas_threads()
    if setter is None:
        return None
    roi = features.face_roi(aligned, face)
    lm = roi.local(face.mesh.landmarks[:, :2])
    features.leave_out_in_front(roi, lm[features.NOSE_TIP], face.mesh.ipd_px)
    inner = features.polygon_mask(roi.shape, lm[list(features.FACE_OVAL)])
    p = features._points(roi, inner, "inner").copy()
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    designs = (np.c_[x, y, np.ones(len(p))], np.c_[x * x, x, y, np.ones(len(p))])
    cpu = {1: 0.0, 2: 0.0}
    same = True
    try:
        for r in range(rounds):
            got = {}
            for k in ((1, 2) if r % 2 else (2, 1)):
                setter(k)
                t0 = time.process_time()
                got[k] = [np.linalg.lstsq(d, z, rcond=None)[0] for d in designs]
                cpu[k] += time.process_time() - t0
            same &= all(np.array_equal(a, b) for a, b in zip(got[1], got[2], strict=True))
    finally:
        setter(os.cpu_count() or 1)
    return {"points": len(p), "one_thread_ms": cpu[1] / rounds * 1000, "two_threads_ms": cpu[2] / rounds * 1000,
            "same_bits": same}


def main(argv: list[str]) -> None:
    for index in map(int, argv or ["8", "10", "11"]):
        aligned, face = last_measured(index)
        load = os.getloadavg()[0]
        row = {k: round(v, 2) for k, v in parts(aligned, face).items()}
        print(f"train:live:{index} (load {load:.1f}): {row}; blas {blas_threads(aligned, face)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
