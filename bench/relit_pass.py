"""The second landmark try's CPU (issue 20, perf32): ``QualityGate.relit_mesh`` against
``relit_mesh_before32`` (the same try before perf32) on every frameset of train live presentations
whose colour landmarks are under the presence limit (where the gate makes the try), the two timed in
the same process in alternating order, ``ROUNDS`` times each, thread CPU (``time.thread_time``). The
landmarks and presence must be the same to the bit (the irises too where the presence reaches the
limit), or this fails. No face data is written.

    python -m bench.relit_pass 0 12        # train:live:0 .. train:live:11
"""

from __future__ import annotations

import statistics
import sys
import time

ROUNDS = 5
FRAMES = 32


def framesets(index: int, gate):
    """The captured window's framesets of train:live:``index`` whose colour landmarks need the second try:
    (aligned frameset, its single detection)."""
    import drivers
    from agent.face import face_mesh
    from agent.pipeline.align import align_frameset
    from agent.session.offline import capture
    from hil.pad_presentations import Presentation, presentation_nonce, presentation_uri
    p = Presentation("bona_fide", "live", "train", index, presentation_uri("train", "live", index))
    with drivers.open(p.uri) as cam:
        cap = capture(cam, FRAMES, presentation_nonce(p), gate, require_quality=True)
    for fs in cap.sets:
        if fs.color is None:
            continue
        dets = gate.detector.detect(fs.color.pixels)
        if len(dets) == 1 and face_mesh(fs.color.pixels, dets[0]).presence < gate.thresholds.presence_min:
            yield align_frameset(fs), dets[0]


def main(argv: list[str]) -> None:
    import os

    from agent.quality import QualityGate
    from tests.helpers.quality_reference import relit_mesh_before32
    first, stop = int(argv[0]), int(argv[1])
    gate = QualityGate()
    now_ms: list[float] = []
    then_ms: list[float] = []
    kept = 0
    for i in range(first, stop):
        for a, d in framesets(i, gate):
            times: dict[str, list[float]] = {"now": [], "then": []}
            got = {}
            for r in range(ROUNDS):
                for which in (("now", "then") if r % 2 == 0 else ("then", "now")):
                    c = time.thread_time()
                    got[which] = gate.relit_mesh(a, d) if which == "now" else relit_mesh_before32(a, d)
                    times[which].append((time.thread_time() - c) * 1000)
            m, before = got["now"], got["then"]
            if (m is None) != (before is None) or (m is not None and before is not None and (
                    m.landmarks.tobytes() != before.landmarks.tobytes() or m.presence != before.presence
                    or (m.presence >= gate.thresholds.presence_min and m.openness != before.openness))):
                raise RuntimeError(f"train:live:{i}: the relit landmarks differ from before perf32's")
            kept += m is not None and m.presence >= gate.thresholds.presence_min
            now_ms.append(statistics.median(times["now"]))
            then_ms.append(statistics.median(times["then"]))
            print(f"train:live:{i} {now_ms[-1]:6.2f} ms vs {then_ms[-1]:6.2f} ms "
                  f"({'none' if m is None else f'presence {m.presence:.3f}'})", flush=True)
    if not now_ms:
        raise SystemExit("no frameset needed the second try")
    ratios = sorted(a / b for a, b in zip(now_ms, then_ms, strict=True))
    print(f"{len(now_ms)} framesets ({kept} relit landmarks kept): median {statistics.median(now_ms):.2f} vs "
          f"{statistics.median(then_ms):.2f} ms, ratio median {statistics.median(ratios):.2f} "
          f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}); load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
