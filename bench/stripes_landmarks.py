"""FaceMesh under the fourteenth family's blinds, against the simulator's own geometry (docs/liveness.md,
"FaceMesh under the blinds' stripes, relit by the IR"). The measurement behind the gate's second landmark try.

    PYTHONPATH=. python -m bench.stripes_landmarks --records R [--keys K ...] [--accepted N]
    PYTHONPATH=. python -m bench.stripes_landmarks --attacks N [--families train,fourteenth]
    PYTHONPATH=. python -m bench.stripes_landmarks --cost N --keys K

For each record (a fourteenth blinds live), colour framesets 1 and 5 of its URI, aligned, rendered twice:
as the family renders them, and with everything nearer than the wall at the stripes' mean light
(``bench.blinds_period``'s "near_mean": the same scene, the same light on average, no stripes on the
face). The truth is the renderer's: the head's landmarks (``drivers.sim.head.landmarks``: the eyes, the
nose, the mouth in the head frame) on its height field, posed by the ``Placed`` the renderer drew that
colour frame with, projected by the colour view. Per frame: the plain detector and the relit second try
(``agent.face.relit``); FaceMesh's presence and its error (the eyes' iris centres, the nose tip (mesh
point 1), the mouth's centre (13/14); each in px over the true interpupillary distance, averaged: NME)
on the input variants ``VARIANTS`` from the striped frame's detection (or, where it has none, the
unstriped frame's: "oracle box", to measure the mesh alone); and on the unstriped frame itself, and
each variant's mean landmark distance from that (all 468 points over the true IPD: "deviation", what
the stripes alone move, whatever each point's definition). ``--attacks``: the quality gate itself on
attack presentations and photographs, the frames whose landmarks come from the second try.
``--cost``: the second landmark try's time against the first's, same process."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import cv2
import numpy as np

import drivers
from agent.face.detector import Detection, FaceDetector
from agent.face.mesh import Mesh, face_mesh
from agent.face.relit import flatten_illumination, ir_relit, relit_detections
from agent.pipeline.align import AlignedFrameSet, align_frameset
from agent.pipeline.frames import framesets
from bench import blinds_period
from drivers.sim import camera as sim_camera
from drivers.sim import scene as sim_scene
from drivers.sim.head import landmarks
from drivers.sim.identity import Identity
from drivers.sim.render import Placed
from drivers.sim.sun import Blinds

RECORDS = "/tmp/detect26-14-main.jsonl"
PICKS = (1, 5)
_placed: dict[float, tuple[Placed, Identity]] = {}
_plain_objects = sim_scene.Scene.objects


def _objects(self, t):
    out = _plain_objects(self, t)
    heads = [o for o in out[0] if o.object_id == 0]
    if heads:
        _placed[round(float(t), 6)] = (heads[0], self.identity)
    return out


def truth_points(cam: sim_camera.SimCamera, k: int) -> np.ndarray | None:
    """(4, 2) colour px: the two eyes, the nose, the mouth of colour frame ``k`` (None: no head drawn)."""
    pre = cam._pre_color
    t = (sim_camera._ping_pong(k, len(pre)) if pre else k) / cam._color_fps
    hit = _placed.get(round(t, 6))
    if hit is None:
        return None
    p, ident = hit
    lm = landmarks(ident)
    s = p.surface
    pts = []
    for x, y in (*lm.eyes, lm.nose, lm.mouth):
        mx = np.full((1, 1), (x - s.x0) / s.res, np.float32)
        my = np.full((1, 1), (y - s.y0) / s.res, np.float32)
        h = cv2.remap(s.height, mx, my, cv2.INTER_LINEAR)[0, 0]
        q = p.R @ np.array([x, y, -float(h)]) + p.T                          # depth camera frame
        v = cam._color_view.depth_to_view
        pts.append(v.R @ q + v.t)
    return cam._color_view.project(np.array(pts))


def mesh_points(m: Mesh) -> np.ndarray:
    lm = m.landmarks[:, :2]
    r, left = m.pupils
    return np.array([r, left, lm[1], (lm[13] + lm[14]) / 2])


def nme(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean point error over the true interpupillary distance; the eyes paired either way (the
    nearer pairing), the head frame's x and the mesh's right/left need not agree."""
    ipd = float(np.linalg.norm(gt[0] - gt[1]))
    swap = pred[[1, 0, 2, 3]]
    e = min(np.linalg.norm(pred - gt, axis=1).mean(), np.linalg.norm(swap - gt, axis=1).mean())
    return float(e) / ipd


def deviation(m: Mesh, ref: Mesh, gt: np.ndarray) -> float:
    """The mean distance of ``m``'s 468 landmarks from ``ref``'s (the same instant unstriped) over the
    true interpupillary distance: what the stripes alone move, the definitions of the points aside."""
    d = np.linalg.norm(m.landmarks[:, :2] - ref.landmarks[:, :2], axis=1).mean()
    return float(d) / float(np.linalg.norm(gt[0] - gt[1]))


def ir_bgr(a: AlignedFrameSet) -> np.ndarray | None:
    """The aligned IR as a grey BGR image (8 bit, the projector's dots blurred out at 1.5 px)."""
    if a.ir is None:
        return None
    ir = cv2.GaussianBlur(a.ir.astype(np.float32), (0, 0), 1.5)
    top = max(float(np.percentile(ir[ir > 0], 99.5)), 1.0) if (ir > 0).any() else 1.0
    g = np.clip(ir * (255.0 / top), 0, 255).astype(np.uint8)
    return cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)


VARIANTS: dict[str, Callable[[np.ndarray, AlignedFrameSet, Detection], np.ndarray | None]] = {
    "as rendered": lambda bgr, a, box: bgr,
    "relit": lambda bgr, a, box: flatten_illumination(bgr)[0],
    "ir": lambda bgr, a, box: ir_bgr(a),
    "ir-relit": lambda bgr, a, box: ir_relit(bgr, a.ir, box) if a.ir is not None else None,
}


def attacks(families: list[str], n: int) -> None:
    """The quality gate (``QualityGate.measure``, as the agent runs it) on N presentations of every
    attack species of each family and on faceless photographs held flat (``bench.relit_detection``),
    frames 1 and 5: on how many frames a detected face's landmarks come from the IR-relit second try
    (``mesh_relit``: landmarks the frame did not have), of how many with a face under ``presence_min``."""
    from agent.quality.gate import QualityGate
    from bench.relit_detection import _aligned, flat_print
    from drivers.sim.config import ATTACKS
    from hil.pad_presentations import presentation_uri

    gate = QualityGate()

    def tally(frames: list[AlignedFrameSet], c: list[int], label: str) -> None:
        for fa in frames:
            m = gate.measure(fa)
            low = m.face is not None and m.face.mesh.presence < gate.thresholds.presence_min
            gained = bool(m.values.get("mesh_relit"))
            c[0] += 1
            c[1] += m.face is not None
            c[2] += low or gained
            c[3] += gained
            if gained and m.face is not None:
                print(f"  {label}: landmarks gained, presence {m.face.mesh.presence:.2f}", flush=True)

    line = "{}: {} frames, a face on {}, its first mesh under presence_min on {}, landmarks gained on {}"
    for fam in families:
        for species in ATTACKS:
            c = [0, 0, 0, 0]
            for i in range(n):
                tally(_aligned(presentation_uri(fam, species, i), PICKS), c, f"{fam}/{species}/{i}")
            print(line.format(f"{fam} {species}", *c), flush=True)
    from skimage import data
    geometry = _aligned("sim://?subject=none&family=train&seed=4&background=plain", (1,))[0]
    c = [0, 0, 0, 0]
    for name in ("astronaut", "coffee", "rocket", "coins", "brick", "grass"):
        img = getattr(data, name)()
        tally([flat_print(geometry, np.stack([img] * 3, -1) if img.ndim == 2 else img)], c, name)
    print(line.format("photographs held flat at 0.45 m", *c), flush=True)


def frames(uri: str, mode: str) -> tuple[list[AlignedFrameSet], list[np.ndarray | None]]:
    blinds_period._mode["m"] = mode
    cam = drivers.open(uri)
    assert isinstance(cam, sim_camera.SimCamera)
    with cam:
        sets = list(framesets(cam, max(PICKS) + 1, per_frameset=True))
        out = [align_frameset(sets[i]) for i in PICKS]
        gts = [truth_points(cam, a.color.frame_number) for a in out]
    return out, gts


def best(dets: list[Detection]) -> Detection | None:
    return max(dets, key=lambda d: d.width * d.height) if dets else None


def cost(uri: str, repeats: int) -> None:
    """The second landmark try (``QualityGate.relit_mesh``: the IR-relit image and FaceMesh with the
    irises again) against the first (``face_mesh`` on the colour), alternated on one striped frame in
    this process; the median of the per-pair ratios."""
    from agent.quality.gate import QualityGate
    gate = QualityGate()
    a = frames(uri, "asis")[0][0]
    bgr = np.ascontiguousarray(a.color.pixels)
    d = gate.detector.detect(bgr)[0]
    ratios: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        face_mesh(bgr, d)
        t1 = time.perf_counter()
        gate.relit_mesh(a, d)
        ratios.append((time.perf_counter() - t1) / (t1 - t0))
    q = np.percentile(ratios, [10, 50, 90])
    print(f"second landmark try / first, {repeats} pairs: median {q[1]:.2f}x (10th-90th {q[0]:.2f}-{q[2]:.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", default=RECORDS)
    ap.add_argument("--keys", nargs="*", default=None)
    ap.add_argument("--accepted", type=int, default=6)
    ap.add_argument("--attacks", type=int, default=0, help="instead: N presentations of each attack species")
    ap.add_argument("--families", default="train")
    ap.add_argument("--cost", type=int, default=0, help="instead: time the second try on --keys' first record")
    a = ap.parse_args()
    if a.cost:
        cost(next(r["uri"] for r in map(json.loads, open(a.records)) if r["key"] == a.keys[0]), a.cost)
        return
    if a.attacks:
        attacks(a.families.split(","), a.attacks)
        return
    sim_scene.Scene.objects = _objects  # type: ignore[method-assign]
    Blinds.sunlit = blinds_period._sunlit  # type: ignore[method-assign]
    recs = [json.loads(line) for line in open(a.records)]
    reason = lambda r: (r.get("quality") or {}).get("reason") or r["outcome"]  # noqa: E731
    if a.keys:
        picks = [r for r in recs if r["key"] in a.keys]
    else:
        acc = [r for r in recs if r["outcome"] == "accepted"]
        picks = [r for r in recs if reason(r) in ("NO_FACE", "FACE_INCOMPLETE")] + \
            acc[:: max(1, len(acc) // max(a.accepted, 1))][: a.accepted]
    det = FaceDetector()
    table: dict[str, list[float]] = {}
    for r in picks:
        striped, gts = frames(r["uri"], "asis")
        flat, _ = frames(r["uri"], "near_mean")
        for j, (s, f, gt) in enumerate(zip(striped, flat, gts, strict=True)):
            if gt is None:
                print(f"{r['key']} f{PICKS[j]}: no truth", flush=True)
                continue
            bgr, fbgr = np.ascontiguousarray(s.color.pixels), np.ascontiguousarray(f.color.pixels)
            plain = best(det.detect(bgr))
            relit = None if plain else best(relit_detections(det, bgr))
            fdet = best(det.detect(fbgr))
            box = plain or relit or fdet
            src = "plain" if plain else "relit" if relit else "oracle" if fdet else "none"
            cells = [f"{r['key'].rsplit('/', 1)[1]:>4} f{PICKS[j]} {reason(r)[:8]:<8} box {src:<6}"]
            ref = None
            if fdet is not None:
                ref = face_mesh(fbgr, fdet)
                e = nme(mesh_points(ref), gt)
                table.setdefault("unstriped", []).append(e)
                cells.append(f"unstriped {ref.presence:.2f}/{e:.3f}")
            for name, fn in VARIANTS.items():
                if box is None:
                    break
                img = fn(bgr, s, box)
                if img is None:
                    continue
                m = face_mesh(img, box)
                e = nme(mesh_points(m), gt)
                table.setdefault(name, []).append(e)
                table.setdefault(name + " presence", []).append(m.presence)
                dev = deviation(m, ref, gt) if ref is not None else float("nan")
                table.setdefault(name + " deviation", []).append(dev)
                cells.append(f"{name} {m.presence:.2f}/{e:.3f}/{dev:.3f}")
            print("  ".join(cells), flush=True)
    for k, v in table.items():
        v_ = np.array(v)[np.isfinite(v)]
        print(f"{k:<22} n={len(v_):3d} median {np.median(v_):.3f} mean {v_.mean():.3f} "
              f"share<0.10 {np.mean(v_ < 0.10):.2f}" if "presence" not in k else
              f"{k:<22} n={len(v_):3d} median {np.median(v_):.2f} share>=0.5 {np.mean(v_ >= 0.5):.2f}")


if __name__ == "__main__":
    main()
