"""Does searching a faceless colour image again with its illumination divided out find the faces the
fourteenth family's blinds hide, and does it invent faces where there are none? (docs/liveness.md, "The
face detector under the blinds' stripes, relit" and "... a second try kept where the depth holds a head")

    PYTHONPATH=. nice -n 19 python -m bench.relit_detection --records R [--failing 20] [--accepted 20]
        [--attacks 2]

Frames only (framesets 1 and 5 of the records' URIs, aligned; no gate, no verdict). Per class of record
(the reason it was refused, or ``accepted``), how many frames the plain ``FaceDetector`` finds a face on,
the plain or the relit detector (``agent.face.relit``), and the plain or the relit kept where the depth
holds a head (``agent.quality.faces.head_in_depth``: what the quality gate does). Then the same on
faceless frames: train and fourteenth ``subject=none`` scenes, and scikit-image's faceless photographs
as a print held at 0.45 m (their colour over a train scene's geometry, the depth a flat plane at 0.45 m:
a photograph has no depth of its own). ``--attacks N``: N presentations of each attack species on train
and the fourteenth, the frames the second try finds a face on where the plain detector finds none."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import cv2
import numpy as np

import drivers
from agent.face.detector import FaceDetector
from agent.face.relit import relit_detections
from agent.pipeline.align import AlignedFrameSet, align_frameset
from agent.pipeline.frames import framesets
from agent.quality.faces import head_in_depth
from drivers.sim.config import ATTACKS
from hil.pad_presentations import presentation_uri

RECORDS = "/work/fourteenth-records/live.jsonl"
COST: list[float] = []       # the second try's time over the first's, frame by frame where it ran


def _aligned(uri: str, picks: tuple[int, ...]) -> list[AlignedFrameSet]:
    cam = drivers.open(uri)
    with cam:
        sets = list(framesets(cam, max(picks) + 1, per_frameset=True))
    return [align_frameset(sets[i]) for i in picks]


def _tally(det: FaceDetector, frames: list[AlignedFrameSet], c: list[int], label: str = "") -> None:
    """Add to ``c`` (frames, plain, plain or relit, plain or relit with a head in depth)."""
    for a in frames:
        img = np.ascontiguousarray(a.color.pixels)
        t0 = time.perf_counter()
        plain = det.detect(img)
        t1 = time.perf_counter()
        relit = [] if plain else relit_detections(det, img)
        kept = [d for d in relit if head_in_depth(d, a).is_head]
        if not plain:
            COST.append((time.perf_counter() - t1) / (t1 - t0))
        c[0] += 1
        c[1] += bool(plain)
        c[2] += bool(plain or relit)
        c[3] += bool(plain or kept)
        if label and relit:
            print(f"  {label}: relit " + ", ".join(
                f"{d.score:.2f} ({head_in_depth(d, a).why})" for d in relit))


def _line(what: str, c: list[int]) -> str:
    return (f"{what}: {c[0]} frames, plain finds a face on {c[1]}, plain or relit {c[2]}, "
            f"plain or relit with a head {c[3]}")


def flat_print(a: AlignedFrameSet, rgb: np.ndarray, z_m: float = 0.45) -> AlignedFrameSet:
    """``rgb`` (a photograph) filling ``a``'s colour frame, on a flat plane ``z_m`` from the camera."""
    h, w = a.color.pixels.shape[:2]
    img = cv2.resize(np.ascontiguousarray(rgb[:, :, ::-1]), (w, h), interpolation=cv2.INTER_AREA)
    depth = np.full((h, w), round(z_m / a.depth_scale), np.uint16)
    return dataclasses.replace(a, color=dataclasses.replace(a.color, pixels=img), depth_u16=depth)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", default=RECORDS)
    ap.add_argument("--failing", type=int, default=20)
    ap.add_argument("--accepted", type=int, default=20)
    ap.add_argument("--attacks", type=int, default=0)
    a = ap.parse_args()
    det = FaceDetector()
    recs = [json.loads(line) for line in open(a.records)]
    reason = lambda r: (r.get("quality") or {}).get("reason") or r["outcome"]  # noqa: E731
    fail = [r for r in recs if reason(r) in ("NO_FACE", "FACE_INCOMPLETE")]
    acc = [r for r in recs if r["outcome"] == "accepted"]
    picks = fail[: a.failing] + acc[:: max(1, len(acc) // max(a.accepted, 1))][: a.accepted]
    counts: dict[str, list[int]] = {}
    for r in picks:
        _tally(det, _aligned(r["uri"], (1, 5)), counts.setdefault(reason(r), [0, 0, 0, 0]), r["key"])
    for k, c in counts.items():
        print(_line(k, c), flush=True)
    sim, photos = [0, 0, 0, 0], [0, 0, 0, 0]
    for fam in ("train", "fourteenth"):
        for seed, bg in ((1, "clutter"), (2, "moving"), (3, "clutter"), (4, "plain")):
            extra = "&camera=d456&light=blinds" if fam == "fourteenth" else ""
            uri = f"sim://?subject=none&family={fam}&seed={seed}&background={bg}{extra}"
            _tally(det, _aligned(uri, (1, 3)), sim, uri)
    print(_line("faceless sim (16 subject=none frames)", sim), flush=True)
    from skimage import data
    geometry = _aligned("sim://?subject=none&family=train&seed=4&background=plain", (1,))[0]
    for name in ("coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "coins",
                 "brick", "grass", "gravel", "cell"):
        img = getattr(data, name)()
        _tally(det, [flat_print(geometry, np.stack([img] * 3, -1) if img.ndim == 2 else img)], photos, name)
    print(_line("faceless photographs (10, flat at 0.45 m)", photos), flush=True)
    print(f"the second try (relit search and depth check) against the first (the plain search) on the {len(COST)} "
          f"frames it ran on: median {np.median(COST):.2f}x, max {max(COST):.2f}x", flush=True)
    for fam in ("train", "fourteenth") if a.attacks else ():
        for species in ATTACKS:
            c = [0, 0, 0, 0]
            for i in range(a.attacks):
                uri = presentation_uri(fam, species, i)
                _tally(det, _aligned(uri, (1, 5)), c, f"{fam}/{species}/{i}")
            print(_line(f"{fam} {species}", c), flush=True)


if __name__ == "__main__":
    main()
