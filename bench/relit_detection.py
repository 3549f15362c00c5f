"""An experiment, not wired into the agent (docs/liveness.md, "The face detector under the blinds'
stripes, relit"): does searching a faceless frame again with its illumination divided out find the
faces the fourteenth family's blinds hide, and does it invent faces where there are none?

    PYTHONPATH=. nice -n 19 python -m bench.relit_detection [--failing 20] [--accepted 20]

Frames only (colour, from the records' URIs; no gate, no verdict). Prints, per class of record, how
many frames the plain ``FaceDetector`` finds a face on and how many the relit fallback adds (kept only
where the box is at least ``SHADOWED_AREA`` in hard shadow), then the same on faceless frames: train
and fourteenth ``subject=none`` scenes and scikit-image's faceless photographs."""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from agent.face.detector import Detection, FaceDetector
from drivers.frame import StreamKind

RECORDS = "/work/fourteenth-records/live.jsonl"
RELIGHT_SCALE = 1 / 24       # max-filter disc, in frame heights (31 px at 720 rows)
SHADOW_SHARE = 0.5           # a pixel in hard shadow: below half its surroundings' light
SHADOWED_AREA = 0.1          # a relit box must be this much in hard shadow


def flatten_illumination(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The colour over its luminance's local maximum (disc of RELIGHT_SCALE of the height, blurred
    at half that), scaled so its 99.5th percentile is 255; and the luminance's share of that light."""
    k = max(3, int(round(bgr.shape[0] * RELIGHT_SCALE)) | 1)
    y = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) + 1.0
    light = cv2.GaussianBlur(cv2.dilate(y, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))), (0, 0), k / 2)
    out = bgr.astype(np.float32) / light[..., None]
    out *= 255.0 / max(float(np.percentile(out, 99.5)), 1e-6)
    return np.clip(out, 0, 255).astype(np.uint8), y / light


def relit(det: FaceDetector, bgr: np.ndarray) -> list[Detection]:
    img, share = flatten_illumination(bgr)
    out = []
    for d in det.detect(img):
        x0, y0, x1, y1 = (max(int(round(v)), 0) for v in d.bbox)
        box = share[y0:y1, x0:x1]
        if box.size and float(np.mean(box < SHADOW_SHARE)) >= SHADOWED_AREA:
            out.append(d)
    return out


def _colour(uri: str, picks: tuple[int, ...]) -> list[np.ndarray]:
    from tests.helpers.sim import grab
    sets, cam = grab(uri, max(picks) + 1)
    cam.stop()
    return [np.ascontiguousarray(sets[i][StreamKind.COLOR].pixels) for i in picks]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--failing", type=int, default=20)
    ap.add_argument("--accepted", type=int, default=20)
    a = ap.parse_args()
    det = FaceDetector()
    recs = [json.loads(line) for line in open(RECORDS)]
    reason = lambda r: (r.get("quality") or {}).get("reason") or r["outcome"]  # noqa: E731
    fail = [r for r in recs if reason(r) in ("NO_FACE", "FACE_INCOMPLETE")]
    acc = [r for r in recs if r["outcome"] == "accepted"]
    picks = fail[: a.failing] + acc[:: max(1, len(acc) // max(a.accepted, 1))][: a.accepted]
    counts: dict[str, list[int]] = {}
    for r in picks:
        for img in _colour(r["uri"], (1, 5)):
            plain = det.detect(img)
            c = counts.setdefault(reason(r), [0, 0, 0])
            c[0] += 1
            c[1] += bool(plain)
            c[2] += bool(plain) or bool(relit(det, img))
    for k, (n, p, f) in counts.items():
        print(f"{k}: {n} frames, plain finds a face on {p}, plain or relit {f}")
    faceless = []
    for fam in ("train", "fourteenth"):
        for seed, bg in ((1, "clutter"), (2, "moving"), (3, "clutter"), (4, "plain")):
            extra = "&camera=d456&light=blinds" if fam == "fourteenth" else ""
            faceless += _colour(f"sim://?subject=none&family={fam}&seed={seed}&background={bg}{extra}", (1, 3))
    from skimage import data
    for name in ("coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "coins",
                 "brick", "grass", "gravel", "cell"):
        img = getattr(data, name)()
        faceless.append(np.ascontiguousarray((np.stack([img] * 3, -1) if img.ndim == 2 else img)[:, :, ::-1]))
    p = sum(bool(det.detect(i)) for i in faceless)
    f = sum(bool(det.detect(i)) or bool(relit(det, i)) for i in faceless)
    print(f"faceless: {len(faceless)} frames (16 sim subject=none, 10 photos), "
          f"plain finds a face on {p}, plain or relit {f}")


if __name__ == "__main__":
    main()
