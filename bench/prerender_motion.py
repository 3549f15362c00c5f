"""The motion cue on the memory bench's camera: a prerendered clip played back and forth, against the
same scene rendered live (issue 20, growth28).

``bench_memory``'s daemon camera (``DAEMON_CAMERA``: ``prerender=30``) plays 30 rendered ticks
0..29..0, a 58-tick cycle. A challenge window centred on a turn sees the face in its first third where
it is in its last, so ``features.motion_snr`` (drift between the thirds over the landmarks' jitter)
finds no drift. This reads the judge's face detector and mesh on the camera's own colour frames and
gives ``motion_snr`` of a ``W``-frameset window (the judge's thirds) starting at each phase of the
cycle, and at as many starts of the same scene rendered live. Scalars only; no frame is kept.

    python -m bench.prerender_motion [W]        # W: the window's framesets (32, the challenge's)
"""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import numpy as np

SCENE = "sim://?subject=live&lux=300&distance_mm=500&seed=21&realtime=0"    # bench_memory.DAEMON_CAMERA's scene
CYCLE = 58                                                                   # prerender=30 played 0..29..0


def landmarks(uri: str, n: int) -> list[Any]:
    """The main face's mesh landmarks (and IPD) of the first ``n`` colour frames; None where the
    detector did not find exactly one face."""
    import drivers
    from agent.face import FaceDetector, face_mesh
    from drivers.frame import StreamKind

    det = FaceDetector()
    out: list[Any] = []
    cam: Any = drivers.open(uri)
    with cam:
        while len(out) < n:
            f = cam.read()
            if f.stream is not StreamKind.COLOR:
                continue
            found = det.detect(f.pixels)
            if len(found) != 1:
                out.append(None)
                continue
            m = face_mesh(f.pixels, found[0])
            out.append(SimpleNamespace(landmarks=m.landmarks[:, :2].copy(), ipd_px=m.ipd_px))
    return out


def sweep(frames: list[Any], window: int, starts: range) -> np.ndarray:
    """``motion_snr`` of the window starting at each of ``starts`` (one with a frame without its face: left out)."""
    from agent.liveness.features import motion_snr, one_light_runs

    out = []
    for s in starts:
        cues = frames[s:s + window]
        if len(cues) == window and all(c is not None for c in cues):
            out.append(motion_snr(cues, one_light_runs(list(range(window)), window), window))
    return np.array(out)


def main(argv: list[str]) -> int:
    from agent.liveness.detectors import active_ramps

    window = int(argv[0]) if argv else 32
    ramp = active_ramps()["motion_snr"]
    for name, uri in (("prerender=30, back and forth", SCENE + "&prerender=30"), ("rendered live", SCENE)):
        x = sweep(landmarks(uri, CYCLE + window), window, range(CYCLE))
        print(f"{name}: {len(x)} window starts, motion_snr under the ramp's live end {ramp.live:.2f}: "
              f"{int(np.sum(x < ramp.live))} ({np.mean(x < ramp.live):.1%}), under its attack end {ramp.attack:.2f}: "
              f"{int(np.sum(x < ramp.attack))}; lowest {x.min():.1f}, median {np.median(x):.1f}")
        print("  by start:", " ".join(f"{v:.1f}" for v in x), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
