"""Sync and align: our registration against librealsense's ``rs.align`` on the same frames, in the
same process; alignment accuracy against the simulator's ground truth; matcher throughput against
librealsense's ``rs.syncer`` on the same frames, in the same process, and added latency."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import numpy as np

import drivers
from agent.pipeline.align import align_depth_to_color, align_frameset
from agent.pipeline.frames import framesets
from agent.pipeline.sync import FrameSetMatcher
from bench.targets import issue20
from drivers.frame import StreamKind

D, C = StreamKind.DEPTH, StreamKind.COLOR


def _sim_sets(n: int, query: str = ""):
    cam = drivers.open("sim://?realtime=0&seed=11" + query)
    cam.start()
    sets = list(framesets(cam, n, per_frameset=True))   # unpaced: bounded by frames, not the clock
    return cam, sets


def _timeit(fn, repeat: int) -> float:
    fn()
    best = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        best.append((time.perf_counter() - t0) / repeat * 1000)
    return min(best)


def _rs_align(aligner, composite) -> np.ndarray:
    """librealsense's registration of one depth+color composite (a view of its buffer)."""
    return np.asanyarray(aligner.process(composite).get_depth_frame().get_data())


def _interleaved(ref, ours, n: int = 150) -> tuple[float, float]:
    """Median ms of each, measured alternately so that both see the same machine (ours are shared
    VMs: a neighbour's load shifts both, not one)."""
    ref()
    ours()
    a, b = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        ref()
        t1 = time.perf_counter()
        ours()
        t2 = time.perf_counter()
        a.append(t1 - t0)
        b.append(t2 - t1)
    return float(np.median(a)) * 1000, float(np.median(b)) * 1000


def align_vs_librealsense() -> list[dict]:
    import pyrealsense2 as rs

    from hil.realsense_rig import make_rig

    cam, sets = _sim_sets(4)
    fs = sets[-1]
    d, c = fs.depth, fs.color
    e = fs.extrinsics_between(D, C)
    rig = make_rig(d.intrinsics, c.intrinsics, e, d.depth_scale)
    aligner = rs.align(rs.stream.color)
    rows = []
    try:
        gt = cam.ground_truth(D, d.frame_number)
        clean = np.where(np.isfinite(gt), np.round(gt / d.depth_scale), 0).astype(np.uint16)
        for label, depth in (("sim depth", d.pixels), ("noise-free depth", clean)):
            composite = rig.pair(depth, c.pixels)
            ref_ms, ours_ms = _interleaved(
                partial(_rs_align, aligner, composite),
                partial(align_depth_to_color, depth, d.depth_scale, d.intrinsics, c.intrinsics, e, depth_axis=True))
            ref = _rs_align(aligner, composite).copy()
            ours = align_depth_to_color(depth, d.depth_scale, d.intrinsics, c.intrinsics, e, depth_axis=True)
            both = (ours > 0) & (ref > 0)
            disagree = float((np.abs(ours.astype(int) - ref.astype(int))[both] > 1).mean())
            rows += [
                issue20({"name": f"align 640x480 ({label})", "value": ours_ms, "unit": "ms", "reference": ref_ms,
                         "ratio": ours_ms / ref_ms}, "align"),
                {"name": f"pixels disagreeing >1mm with rs.align ({label})", "value": 100 * disagree, "unit": "%"},
                {"name": f"valid aligned pixels ours/rs ({label})", "value": 100 * float((ours > 0).mean()),
                 "unit": "%", "reference": 100 * float((ref > 0).mean())},
            ]
    finally:
        rig.close()
    with_ir_ms = _timeit(lambda: align_frameset(fs), 10)
    rows.append({"name": "align_frameset (depth + IR carried)", "value": with_ir_ms, "unit": "ms"})
    cam.stop()
    return rows


def accuracy_on_sim() -> list[dict]:
    rows = []
    for label, query in (("live 500 mm", ""), ("live 800 mm yaw 15", "&distance_mm=800&yaw=15"),
                         ("curved print", "&subject=print_curved")):
        cam, sets = _sim_sets(3, query)
        errs, valid_share, face_errs = [], [], []
        for fs in sets:
            a = align_frameset(fs)
            truth = cam.ground_truth(C, fs.color.frame_number)
            seen = np.isfinite(truth)
            m = a.valid & seen
            err = np.abs(a.depth_m[m] - truth[m]) * 1000
            errs.append(err)
            valid_share.append(float(a.valid[seen].mean()))
            face = m & (truth < 0.05 + np.nanmin(truth) + 0.15)
            face_errs.append(np.abs(a.depth_m[face] - truth[face]) * 1000)
        err = np.concatenate(errs)
        ferr = np.concatenate(face_errs)
        rows += [
            {"name": f"aligned depth error mean ({label})", "value": float(err.mean()), "unit": "mm"},
            {"name": f"aligned depth error p95 ({label})", "value": float(np.percentile(err, 95)), "unit": "mm"},
            {"name": f"aligned face error p95 ({label})", "value": float(np.percentile(ferr, 95)), "unit": "mm"},
            {"name": f"aligned valid share of visible ({label})", "value": 100 * float(np.mean(valid_share)),
             "unit": "%"},
        ]
        cam.stop()
    return rows


def _rs_syncer(frames: list) -> tuple[Callable[[], None], dict[int, int]]:
    """librealsense's own matcher (``rs.syncer`` behind a ``software_device`` with the D4xx layout:
    depth and IR on one sensor, colour on another, 2x2 frames as the generator's) fed ``frames``
    in their arrival order, with their timestamps and frame numbers. Returns the run (every frame
    pushed, the syncer polled after each, as a device's callback thread would hand them over) and
    the count of framesets it emitted by size (it emits incomplete ones; the matcher does not).
    The software frames are built beforehand, as our frames are: only the matching is timed."""
    import pyrealsense2 as rs

    from hil.realsense_rig import rs_intrinsics

    dev = rs.software_device()
    dev.create_matcher(rs.matchers.default)
    stereo, rgb = dev.add_sensor("Stereo Module"), dev.add_sensor("RGB Camera")

    def profile(sensor, kind, index, uid, fmt, bpp, f):
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid = kind, index, uid
        vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = f.intrinsics.width, f.intrinsics.height, 30, bpp, fmt
        vs.intrinsics = rs_intrinsics(f.intrinsics)
        return sensor.add_video_stream(vs).as_video_stream_profile()

    IR = StreamKind.IR
    first = {f.stream: f for f in reversed(frames)}
    layout = {D: (stereo, profile(stereo, rs.stream.depth, 0, 1, rs.format.z16, 2, first[D]), 2),
              IR: (stereo, profile(stereo, rs.stream.infrared, 1, 2, rs.format.y8, 1, first[IR]), 1),
              C: (rgb, profile(rgb, rs.stream.color, 0, 3, rs.format.bgr8, 3, first[C]), 3)}
    sink = rs.syncer(100)
    stereo.open([layout[D][1], layout[IR][1]])
    rgb.open(layout[C][1])
    stereo.start(sink)
    rgb.start(sink)
    pushes = []
    for f in frames:
        sensor, prof, bpp = layout[f.stream]
        sf = rs.software_video_frame()
        sf.pixels = bytearray(f.intrinsics.width * f.intrinsics.height * bpp)
        sf.stride, sf.bpp = f.intrinsics.width * bpp, bpp
        sf.timestamp, sf.domain = f.timestamp_ms, rs.timestamp_domain.hardware_clock
        sf.frame_number, sf.profile = f.frame_number, prof
        pushes.append((sensor.on_video_frame, sf))
    sizes: dict[int, int] = {}

    def run() -> None:
        try:
            for push, sf in pushes:
                push(sf)
                while out := sink.poll_for_frame():
                    n = rs.composite_frame(out).size()
                    sizes[n] = sizes.get(n, 0) + 1
        finally:
            for sensor in (stereo, rgb):
                sensor.stop()
                sensor.close()
    return run, sizes


def sync_throughput(ticks: int = 3000, repeats: int = 3) -> list[dict]:
    """The matcher's throughput on ``ticks`` ticks of three streams (jitter, drops, duplicates,
    reordering), against librealsense's ``rs.syncer`` on the same frames in the same process (runs
    alternated, the median of ``repeats`` each: a neighbour's load shifts both)."""
    from hil.sync_scenarios import generate  # the same generator the property tests use

    frames, _ = generate(30.0, ticks, 3.0, {D: 0.0, StreamKind.IR: 0.0, C: 4.0}, 0.02, 0.01, 20.0, 7)
    ours_s, ref_s = [], []
    for _ in range(repeats):
        m = FrameSetMatcher([D, StreamKind.IR, C], 30.0)
        latencies = []
        t0 = time.perf_counter()
        for f in frames:
            for s in m.push(f):
                members = max(x.host_time_ns for x in s.frames.values())
                latencies.append((f.host_time_ns - members) / 1e6)
        ours_s.append(time.perf_counter() - t0)
        ref_run, ref_sizes = _rs_syncer(frames)
        t0 = time.perf_counter()
        ref_run()
        ref_s.append(time.perf_counter() - t0)
    ours, ref = len(frames) / float(np.median(ours_s)), len(frames) / float(np.median(ref_s))
    lat = np.array(latencies)
    return [
        {"name": "sync throughput (3 streams; ref rs.syncer, ratio ours/ref)", "value": ours,
         "unit": "frames/s", "reference": ref, "ratio": ours / ref},
        {"name": "sync framesets of all 3 streams (ref: rs.syncer's)", "value": m.stats.emitted, "unit": "sets",
         "reference": ref_sizes.get(3, 0)},
        {"name": "rs.syncer framesets missing a stream", "value": sum(n for k, n in ref_sizes.items() if k < 3),
         "unit": "sets"},
        {"name": "rs.syncer frames handed out (ref: frames pushed)", "value": sum(k * n for k, n in ref_sizes.items()),
         "unit": "frames", "reference": len(frames)},
        {"name": "sync added latency p50", "value": float(np.percentile(lat, 50)), "unit": "ms"},
        {"name": "sync added latency p95", "value": float(np.percentile(lat, 95)), "unit": "ms"},
        {"name": "sync max skew", "value": m.stats.max_skew_ms, "unit": "ms"},
    ]


def run() -> list[dict]:
    return align_vs_librealsense() + accuracy_on_sim() + sync_throughput()
