"""The aligned depth's metres made where read (``AlignedFrameSet.depth_m``), against the whole
frame's made at alignment as before (``python -m bench.metres_reads``).

Per frameset: what the old align_frameset did for metres (the whole frame: multiply, mask, NaN
copy) plus the old reads from it (the cues' ROI copy, face_depth's selection of the face's metres),
against the new reads (the ROI converted into its kept array; the face's units selected, then
converted). Same process, alternating, kept temporaries on (the worker), process CPU time. The
old side is the two lines ``align_frameset`` ran before, here as the reference."""

from __future__ import annotations

import time

import numpy as np

from agent.pipeline import align, inplace
from agent.pipeline.align import align_frameset, scratch, to_metres
from agent.quality import QualityGate
from agent.quality.metrics import FACE_OVAL, Region, polygon_mask
from bench.windows import challenged_window


def main() -> None:
    align.keep_scratch(True)
    _, sets = challenged_window("sim://?realtime=0&seed=21&identity=3&skin=3&lux=150", 12, bytes(range(32)))
    gate = QualityGate()
    items = []
    for fs in sets:
        a = align_frameset(fs)
        q = gate.evaluate(a)
        if q.face is None:
            continue
        lm = q.face.mesh.landmarks
        ipd = q.face.mesh.ipd_px
        m = max(24, int(0.25 * ipd))
        x0, y0 = (int(max(np.floor(v) - m, 0)) for v in lm[:, :2].min(axis=0))
        h, w = a.depth_u16.shape
        x1, y1 = int(min(np.ceil(lm[:, 0].max()) + m + 1, w)), int(min(np.ceil(lm[:, 1].max()) + m + 1, h))
        oval = lm[list(FACE_OVAL), :2]
        box = Region.around(np.vstack([oval, lm[[4], :2]]), 3, (h, w))
        fv = polygon_mask(box.of(a.depth_u16).shape, oval, box.origin) & (box.of(a.depth_u16) > 0)
        items.append((a, (slice(y0, y1), slice(x0, x1)), box, np.ascontiguousarray(fv)))
    print(len(items), "framesets; ROI", items[0][1], "box", items[0][2])
    old_full = np.empty(items[0][0].depth_u16.shape, np.float32)

    def old(a, roi, box, fv):
        u = a.depth_u16
        d = np.multiply(u, np.float32(a.depth_scale), out=old_full)
        np.copyto(d, np.float32(np.nan), where=np.equal(u, 0, out=scratch("no_depth", u.shape, np.bool_)))
        r = scratch("roi", d[roi].shape, np.float32)
        np.copyto(r, d[roi])
        inplace.select(d, fv, (box.x0, box.y0), "on_face")

    def new(a, roi, box, fv):
        a.depth_m.into(roi, scratch("roi", a.depth_u16[roi].shape, np.float32))
        un = inplace.select(a.depth_u16, fv, (box.x0, box.y0), "on_face_units")
        to_metres(un, a.depth_scale, out=scratch("on_face", un.shape, np.float32))

    res: dict[str, list[float]] = {"old": [], "new": []}
    for rnd in range(30):
        for name, fn in (("old", old), ("new", new)) if rnd % 2 else (("new", new), ("old", old)):
            t = time.process_time()
            for _ in range(5):
                for it in items:
                    fn(*it)
            res[name].append((time.process_time() - t) / (5 * len(items)) * 1000)
    o, n = np.median(res["old"]), np.median(res["new"])
    print(f"old: metres made for the whole frame + ROI copy + face selection: {o:.3f} ms per frameset (median of 30)")
    print(f"new: ROI converted + face units selected and converted: {n:.3f} ms per frameset; ratio {n / o:.2f}")


if __name__ == "__main__":
    main()
