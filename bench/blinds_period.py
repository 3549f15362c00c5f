"""A diagnosis, not wired into the agent (docs/liveness.md, "Are the fourteenth family's blinds aliased in
the simulator?"): for fourteenth records that failed ``NO_FACE``, the blinds' stripe period in colour pixels
on the wall and on the face, from ``sun.Blinds``' closed form (the phase ``n . p / period`` per pixel, its
gradient in cycles per pixel), against the rendered frame (the peak of a column FFT of the luminance, the
stripes being near-horizontal); how far point-sampled stripes are from their average over each pixel's
footprint; and the plain ``FaceDetector`` on the frame as rendered, with the wall's stripes replaced by
their mean, and with everything nearer than the wall unstriped (the wall kept).

    PYTHONPATH=. nice -n 19 python -m bench.blinds_period [KEY ...]

Frames only (colour frameset 1 and 5 of each record's URI; no gate, no verdict). Nyquist is 0.5 cycles/px:
a closed-form frequency under it is rendered at its own period, not as an alias."""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from agent.face.detector import FaceDetector
from drivers.frame import StreamKind
from drivers.sim import camera as sim_camera
from drivers.sim.sun import Blinds, stripe_sunlit

RECORDS = "/work/fourteenth-records/live.jsonl"
KEYS = ("fourteenth/bona_fide/live/59", "fourteenth/bona_fide/live/74", "fourteenth/bona_fide/live/167",
        "fourteenth/bona_fide/live/182")
WALL_FROM_M = 1.2            # colour-view z beyond this is the wall (render.WALL_Z_M = 1.6)
MIN_RUN = {"wall": 128, "face": 96}   # rows of one label a column needs for its FFT

_seen: dict = {}
_mode = {"m": "asis"}
_plain_sunlit = Blinds.sunlit
_plain_shaded = sim_camera.SimCamera._shaded_color


def _sunlit(self: Blinds, view, z):
    lit = _plain_sunlit(self, view, z)
    if _mode["m"] == "asis":
        return lit
    mean = np.float32(self.open_width / self.period)
    _, _, _, gm, cm = self._rays[id(view)]
    zf = np.where(np.isfinite(z), z, np.float32(10.0))
    inside = np.clip(0.5 - (zf * gm - cm) / self.penumbra_m, 0.0, 1.0)
    wall = zf > WALL_FROM_M
    if _mode["m"] == "wall_mean":
        return np.where(wall, mean * inside, lit).astype(np.float32)
    return np.where(wall, lit, mean * inside).astype(np.float32)          # "near_mean"


def _shaded(self, irr, cmaps, view=None):
    if view is None or view is self._color_view:
        _seen.update(z=cmaps.z.copy(), oid=cmaps.object_id.copy(), view=self._color_view, edge=self._scene.sun_edge)
    return _plain_shaded(self, irr, cmaps, view)


def _frames(uri: str) -> list[np.ndarray]:
    from tests.helpers.sim import grab
    sets, cam = grab(uri, 6)
    cam.stop()
    return [np.ascontiguousarray(sets[i][StreamKind.COLOR].pixels) for i in (1, 5)]


def closed_form_frequency(edge: Blinds, view, z: np.ndarray) -> np.ndarray:
    """(H, W) cycles per pixel of the stripes' phase ``(n . p - phase) / period`` on the rendered surface."""
    R, T = view.depth_to_view.R, view.depth_to_view.t
    nv = R @ np.asarray(edge.normal)
    rays = view.rays
    g = nv[0] * rays[..., 0] + nv[1] * rays[..., 1] + nv[2]
    zf = np.where(np.isfinite(z), z, 10.0)
    ph = (zf * g - (edge.phase + float(nv @ T))) / edge.period
    gy, gx = np.gradient(ph.astype(np.float64))
    return np.asarray(np.hypot(gx, gy))


def footprint_error(edge: Blinds, view, z: np.ndarray) -> np.ndarray:
    """(H, W) |point-sampled stripes - their average over the pixel's footprint| (4x4 sub-pixel phases on
    the local phase gradient), the window's patch left out: what a pixel-area average would change."""
    _, g, c, _, _ = edge._rays[id(view)]
    d = np.where(np.isfinite(z), z, np.float32(10.0)) * g - np.float32(c)
    gy, gx = np.gradient(d)
    acc = np.zeros(d.shape, np.float32)
    for u in (-0.375, -0.125, 0.125, 0.375):
        for v in (-0.375, -0.125, 0.125, 0.375):
            acc += stripe_sunlit(d + u * gx + v * gy, edge.period, edge.open_width, edge.penumbra_m)
    return np.asarray(np.abs(acc / 16 - stripe_sunlit(d, edge.period, edge.open_width, edge.penumbra_m)))


def column_peak(luma: np.ndarray, mask: np.ndarray, rows: int) -> tuple[float, int]:
    """The peak frequency (cycles/px, above 0.015: the wall's texture and shading below) of the
    mean power spectrum of every 4th column's longest run of ``mask`` (first ``rows`` of it), and the
    number of columns used."""
    specs = []
    for c in range(0, luma.shape[1], 4):
        col = np.concatenate([[0], mask[:, c].astype(np.int8), [0]])
        starts, ends = np.flatnonzero(np.diff(col) == 1), np.flatnonzero(np.diff(col) == -1)
        if not len(starts):
            continue
        i = int(np.argmax(ends - starts))
        if ends[i] - starts[i] < rows:
            continue
        seg = luma[starts[i]:starts[i] + rows, c]
        specs.append(np.abs(np.fft.rfft((seg - seg.mean()) * np.hanning(rows))) ** 2)
    if not specs:
        return float("nan"), 0
    p, f = np.mean(specs, 0), np.fft.rfftfreq(rows)
    p[f < 0.015] = 0.0
    return float(f[int(np.argmax(p))]), len(specs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("keys", nargs="*", default=list(KEYS))
    a = ap.parse_args()
    Blinds.sunlit = _sunlit  # type: ignore[method-assign]
    sim_camera.SimCamera._shaded_color = _shaded  # type: ignore[method-assign]
    recs = {r["key"]: r for r in map(json.loads, open(RECORDS))}
    det = FaceDetector()
    for key in a.keys:
        uri = recs[key]["uri"]
        scores = {}
        for m in ("asis", "wall_mean", "near_mean"):
            _mode["m"] = m
            frames = _frames(uri)
            if m == "asis":
                img, z, oid, view, edge = frames[0], _seen["z"], _seen["oid"], _seen["view"], _seen["edge"]
            scores[m] = "/".join(f"{max((d.score for d in det.detect(f)), default=0.0):.2f}" for f in frames)
        k = closed_form_frequency(edge, view, z)
        luma = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float64)
        it = view.intrinsics
        print(f"{key}: slat pitch {edge.period / abs(edge.normal[1]) * 1000:.1f} mm, penumbra "
              f"{edge.penumbra_m * 1000:.1f} mm, open {edge.open_width / edge.period:.2f}, colour "
              f"{it.width}x{it.height} fy {it.fy:.0f}")
        _, _, _, gm, cm = edge._rays[id(view)]
        patch = (np.where(np.isfinite(z), z, 10.0) * gm - cm) < -edge.penumbra_m   # wholly inside the window's patch
        err = footprint_error(edge, view, z)
        for name, mask in (("wall", (oid == -1) & patch), ("face", (oid == 0) & patch)):
            kk = float(np.median(k[mask]))
            e = err[mask & (k < 0.5)]          # depth edges' phase jumps left out
            peak, n = column_peak(luma, mask, MIN_RUN[name])
            print(f"  {name}: z {float(np.median(z[mask])):.2f} m, closed form {kk:.3f} c/px ({1 / kk:.1f} px), "
                  f"rendered peak {peak:.3f} c/px ({n} columns); point vs footprint-averaged stripes "
                  f"rms {float(np.sqrt(np.mean(e ** 2))):.3f}, p99 {float(np.percentile(e, 99)):.3f}")
        print(f"  detector score, framesets 1/5: as rendered {scores['asis']}, wall's stripes at their mean "
              f"{scores['wall_mean']}, nearer than the wall at their mean {scores['near_mean']}", flush=True)


if __name__ == "__main__":
    main()
