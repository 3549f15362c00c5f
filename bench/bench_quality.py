"""Face analysis + quality gate cost per frameset (budget: 10 ms), on sim framesets."""

from __future__ import annotations

import time

import drivers
from agent.face import FaceDetector, face_mesh
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import framesets
from agent.quality import QualityGate


def run() -> list[dict]:
    cam = drivers.open("sim://?realtime=0&seed=5")
    cam.start()
    aligned = [align_frameset(fs) for fs in framesets(cam, 12)]
    cam.stop()
    gate = QualityGate()
    det = FaceDetector()
    img = aligned[0].color.pixels
    d = det.detect(img)[0]
    gate.evaluate(aligned[0])

    def per_call(fn, n=30):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        return (time.perf_counter() - t0) * 1000 / n

    return [
        {"name": "face detection (BlazeFace)", "value": per_call(lambda i: det.detect(img)), "unit": "ms"},
        {"name": "landmarks + irises (FaceMesh, Iris)", "value": per_call(lambda i: face_mesh(img, d)), "unit": "ms"},
        {"name": "face analysis + quality gate per frameset", "value":
         per_call(lambda i: gate.evaluate(aligned[i % len(aligned)])), "unit": "ms", "reference": 10.0,
         "ratio": per_call(lambda i: gate.evaluate(aligned[i % len(aligned)])) / 10.0},
    ]
