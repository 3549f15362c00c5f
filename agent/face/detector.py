"""BlazeFace (MediaPipe short-range face detector) on LiteRT: anchors, decoding, weighted NMS.

The model sees a 128x128 square. A frame is letterboxed into it whole, so a wide frame shrinks every
face by its width: at 1280x720 a face at 0.5 m from a D455 (about 190 px wide) comes out ~19 px in
the model's input, below what the short-range model finds, while the same face in a 4:3 frame from
a D435 is ~37 px. Frames wider than 4:3 are therefore also searched in square tiles of their height
(left, centre, right, overlapping), where faces keep the scale they have in a 4:3 frame of the same
height; detections of every pass are merged by one weighted NMS. 4:3 and narrower frames are searched
whole, once, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import cv2
import numpy as np

from agent.face.models import interpreter, verify
from agent.pipeline.align import scratch

MODEL = "face_detection_short_range.tflite"
INPUT = 128
STRIDES = (8, 16, 16, 16)
RAW_SCORE_CLIP = 80.0
TILE_ASPECT = 4 / 3          # frames wider than this are also searched in square tiles of their height
EDGE_PX = 2.0                # a tile's detection this close to its inner edge is a cut face


@dataclass(frozen=True)
class Detection:
    bbox: tuple[float, float, float, float]      # x0, y0, x1, y1 in image pixels
    score: float
    keypoints: np.ndarray                          # (6, 2): right eye, left eye, nose, mouth, right ear, left ear

    @property
    def width(self) -> float:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> float:
        return self.bbox[3] - self.bbox[1]

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.bbox[0] + self.bbox[2]) / 2, (self.bbox[1] + self.bbox[3]) / 2])


@lru_cache(maxsize=1)
def anchors() -> np.ndarray:
    """SSD anchor centres (normalised) for the 128x128 model: 16x16x2 + 8x8x6 = 896."""
    out = []
    i = 0
    while i < len(STRIDES):
        stride = STRIDES[i]
        repeats = 0
        while i < len(STRIDES) and STRIDES[i] == stride:
            repeats += 2
            i += 1
        n = INPUT // stride
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(grid, repeats, axis=0))
    return np.concatenate(out).astype(np.float32)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


@cache
def _tensors() -> tuple[int, int, int]:
    """BlazeFace's input, box and score tensor indices: the same in every interpreter of the model
    (``tensor_indices``), read once, from the interpreter of the first thread that runs it."""
    it = interpreter(MODEL)
    outs = {d["name"]: d["index"] for d in it.get_output_details()}
    return it.get_input_details()[0]["index"], outs["regressors"], outs["classificators"]


class FaceDetector:
    def __init__(self, min_score: float = 0.5, nms_iou: float = 0.3):
        self.min_score = min_score
        self.nms_iou = nms_iou
        # The model is verified now (a missing or tampered file fails here), but no interpreter is
        # built: each thread that runs the model builds its own on first use, and the thread that
        # makes a detector (the daemon's main thread, at start) may never run it (3.7 MiB idle there).
        verify(MODEL)

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        h, w = bgr.shape[:2]
        passes = [self._raw(bgr, 0, 0)]
        if w > h * TILE_ASPECT:
            # Square tiles of the frame's height, evenly spread, overlapping by at least a third of
            # a tile: a face that fits in a third of the height lies wholly inside one of them.
            n = max(2, int(np.ceil((w - h) / (h * 2 / 3))) + 1)
            for x0 in np.linspace(0, w - h, n).round().astype(int):
                b, k, sc = self._raw(bgr[:, x0:x0 + h], int(x0), 0)
                # A face cut by a tile's inner edge is whole in its neighbour (or in the full frame):
                # a half face must not count as a second one.
                inside = ((x0 == 0) | (b[:, 0] > x0 + EDGE_PX)) & ((x0 + h == w) | (b[:, 2] < x0 + h - EDGE_PX))
                passes.append((b[inside], k[inside], sc[inside]))
        boxes = np.concatenate([p[0] for p in passes])
        if boxes.size == 0:
            return []
        kps = np.concatenate([p[1] for p in passes])
        scores = np.concatenate([p[2] for p in passes])
        return self._weighted_nms(boxes, kps, scores)

    def _raw(self, bgr: np.ndarray, ox: int, oy: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (N, 4), keypoints (N, 6, 2) and scores (N,) above ``min_score`` on one image (the
        whole frame or a tile at ``ox``, ``oy``), in frame pixels, before NMS."""
        h, w = bgr.shape[:2]
        # Letterbox to a square, keeping the aspect ratio, as the model was trained.
        scale = INPUT / max(h, w)
        nw, nh = int(round(w * scale)), int(round(h * scale))
        px, py = (INPUT - nw) // 2, (INPUT - nh) // 2
        # The model's input and the resized frame are the thread's temporaries (``align.scratch``;
        # ``set_tensor`` copies the input), filled as ``astype(np.float32) / 127.5 - 1.0`` fills them.
        canvas = scratch("face.detector.canvas", (INPUT, INPUT, 3), np.float32)
        canvas.fill(0.0)
        small = cv2.resize(bgr, (nw, nh), dst=scratch("face.detector.small", (nh, nw, 3), np.uint8),
                           interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB, dst=scratch("face.detector.rgb", (nh, nw, 3), np.uint8))
        inner = canvas[py:py + nh, px:px + nw]
        np.copyto(inner, rgb, casting="unsafe")
        np.divide(inner, 127.5, out=inner)
        np.subtract(inner, 1.0, out=inner)
        it = interpreter(MODEL)
        inp, box_out, score_out = _tensors()
        it.set_tensor(inp, canvas[None])
        it.invoke()
        raw = it.get_tensor(box_out)[0]
        logits = np.clip(it.get_tensor(score_out)[0, :, 0], -RAW_SCORE_CLIP, RAW_SCORE_CLIP)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = np.nonzero(scores >= self.min_score)[0]
        if keep.size == 0:
            return np.empty((0, 4)), np.empty((0, 6, 2)), np.empty(0)
        a = anchors()[keep]
        r = raw[keep] / INPUT
        cx, cy = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1]
        bw, bh = r[:, 2], r[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        kps = r[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]
        # Back from the letterboxed square to image pixels.
        boxes = (boxes * INPUT - np.array([px, py, px, py])) / scale + np.array([ox, oy, ox, oy])
        kps = (kps * INPUT - np.array([px, py])) / scale + np.array([ox, oy])
        return boxes, kps, scores[keep]

    def _weighted_nms(self, boxes, kps, scores) -> list[Detection]:
        order = np.argsort(-scores)
        boxes, kps, scores = boxes[order], kps[order], scores[order]
        used = np.zeros(len(scores), bool)
        out: list[Detection] = []
        for i in range(len(scores)):
            if used[i]:
                continue
            group = (~used) & (_iou(boxes[i], boxes) > self.nms_iou)
            group[i] = True
            used |= group
            wts = scores[group][:, None]
            box = (boxes[group] * wts).sum(0) / wts.sum()
            kp = (kps[group] * wts[:, :, None]).sum(0) / wts.sum()
            x0, y0, x1, y1 = (float(v) for v in box)
            if x1 > x0 and y1 > y0:
                out.append(Detection((x0, y0, x1, y1), float(scores[i]), kp))
        return out
