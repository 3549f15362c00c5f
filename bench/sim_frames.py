"""Fingerprints of the simulator's frames, to show that a change to the renderer left every frame as
it was: for each of a set of URIs spanning subjects, species, camera profiles, families, scenes and
light, with challenge commands on the way, the SHA-256 of every frame's pixels, timestamp and
metadata (and of the ground truth kept for it).

    python -m bench.sim_frames dump OUT.json [--framesets 60]   # with the code on PYTHONPATH
    python -m bench.sim_frames compare A.json B.json

Run ``dump`` once with the reference code (``git archive REF | tar -x -C DIR``, then
``PYTHONPATH=DIR``) and once with the changed code, then ``compare``. Not a benchmark: ``python -m
bench`` runs only the ``bench_*`` modules."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from typing import Any

import numpy as np

URIS = (
    # The profiled scene, with the liveness challenge's commands (projector, illumination, locks).
    "sim://?subject=live&lux=300&seed=21&identity=0",
    "sim://?subject=live&camera=d415&family=train&lux=60&seed=3&identity=4",
    "sim://?subject=live&camera=d455&family=heldout&seed=5&identity=11",
    "sim://?subject=print&camera=astra&family=heldout&lux=800&seed=6&identity=2",
    "sim://?subject=mask&camera=gemini335&family=field&seed=7&identity=3",
    "sim://?subject=screen_still&lux=300&seed=8",
    "sim://?subject=screen_video&family=field&seed=9&identity=8",
    "sim://?subject=silicone_mask&lux=15&seed=10&identity=5&light=incandescent",
    "sim://?subject=head_model_hand&lux=25000&light=daylight&seed=11",
    "sim://?subject=live&bystander=1&background=moving&light=incandescent&seed=12&identity=9",
    "sim://?subject=mask_eyeholes&background=clutter&glasses=tinted&identity=7&seed=13",
    "sim://?subject=print_curved&family=train&seed=14&identity=6",
    "sim://?subject=paper_mask&camera=d435&seed=15&identity=12&glasses=clear",
    "sim://?subject=print_cutout&seed=16&yaw=15&pitch=-8",
    "sim://?subject=glasses_print&seed=17&identity=21",
    "sim://?subject=print_eyes&seed=18&lux=3&cct=2800",
    "sim://?subject=head_model&camera=d405&seed=19",
    "sim://?subject=multi&seed=20&distance_mm=700",
    "sim://?subject=live&depth_mode=848x480@90&color_fps=30&seed=22&identity=13",
    "sim://?subject=live&inject=splice&seed=23",
    "sim://?subject=live&drop=0.1&projector_md_lag=1&camera=d435&seed=24&identity=1&beard=1&fringe=1",
    "sim://?subject=none&background=moving&seed=25",
    "sim://?subject=live&prerender=8&seed=26&identity=14",
)


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()


def _array_bytes(a: np.ndarray) -> bytes:
    return f"{a.dtype.str}{a.shape}".encode() + np.ascontiguousarray(a).tobytes()


def _commands(cam, k: int) -> None:
    """The challenge's kind of commands at frameset ``k`` (only what the profile's device can do)."""
    from drivers.base import Capability
    from drivers.frame import StreamKind

    caps = cam.capabilities
    if Capability.PROJECTOR_CONTROL in caps and k % 7 == 3:
        cam.set_projector(k % 14 != 3)
    if Capability.PROJECTOR_POWER in caps and k == 40:
        cam.set_projector_power(240.0)
    if k in (10, 20, 30, 50):
        cam.set_illumination({10: (1.0, 0.0, 0.0), 20: (0.0, 1.0, 0.4), 30: (0.2, 0.3, 1.0), 50: (0.0, 0.0, 0.0)}[k])
    if k == 15:
        ci = [p for p in cam.profiles() if p.kind is StreamKind.COLOR][0]
        cam.set_exposure_region(StreamKind.COLOR, (ci.width // 3, ci.height // 4, 2 * ci.width // 3, ci.height // 2))
    if k == 25:
        cam.lock_exposure(StreamKind.IR)
        cam.lock_exposure(StreamKind.COLOR)
    if k == 45:
        cam.unlock_exposure(StreamKind.IR)
        cam.unlock_exposure(StreamKind.COLOR)
        cam.set_exposure_region(StreamKind.COLOR, None)


def dump(framesets: int) -> dict:
    import drivers
    from drivers.frame import StreamKind

    out: dict = {"code": drivers.__file__, "uris": {}}
    for uri in URIS:
        cam: Any = drivers.open(uri + "&realtime=0")       # a SimCamera: ground truth and scene
        frames: list[str] = []
        t0 = time.process_time()
        with cam:
            for k in range(framesets):
                _commands(cam, k)
                for _ in range(3):
                    f = cam.read()
                    md = {fl.name: getattr(f.metadata, fl.name) for fl in dataclasses.fields(f.metadata)}
                    md["extra"] = sorted(dict(f.metadata.extra).items())
                    gt = cam.ground_truth(f.stream, f.frame_number)
                    meta = repr((f.stream.value, f.format.value, f.timestamp_ms, f.clock_domain.value, f.frame_number,
                                 f.intrinsics, f.index, f.device_serial, f.depth_scale, md,
                                 f.stream is StreamKind.COLOR and cam.scene))
                    frames.append(_digest(_array_bytes(f.pixels), meta.encode(), _array_bytes(gt)))
        out["uris"][uri] = {"frames": frames, "cpu_s": time.process_time() - t0}
        print(f"{len(frames):4d} frames  {time.process_time() - t0:6.1f} s cpu  {uri}", file=sys.stderr)
    return out


def compare(a: dict, b: dict) -> int:
    n = bad = 0
    for uri, ra in a["uris"].items():
        fa, fb = ra["frames"], b["uris"].get(uri, {}).get("frames", [])
        n += len(fa)
        common = min(len(fa), len(fb))
        diff = [i for i in range(common) if fa[i] != fb[i]] + list(range(common, len(fa)))
        bad += len(diff)
        status = "identical" if not diff else f"{len(diff)} differ, first at frame {diff[0]}"
        cpu_b = b["uris"].get(uri, {}).get("cpu_s", 0.0)
        print(f"{len(fa):4d} frames {status:<28} cpu {ra['cpu_s']:6.1f} -> {cpu_b:6.1f} s  {uri}")
    print(f"{n} frames over {len(a['uris'])} URIs compared, {n - bad} identical, {bad} differ")
    return 1 if bad or set(a["uris"]) != set(b["uris"]) else 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sim_frames")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out")
    d.add_argument("--framesets", type=int, default=60)
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    args = ap.parse_args(argv)
    if args.cmd == "dump":
        with open(args.out, "w") as fh:
            json.dump(dump(args.framesets), fh)
        return 0
    with open(args.a) as fa, open(args.b) as fb:
        return compare(json.load(fa), json.load(fb))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
