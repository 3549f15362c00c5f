"""How visible the corneas' projector glints are (``cornea=1``, drivers/sim/cornea.py), on a family's
presentations as pad-eval draws them (issue 14, eye24).

For each presentation the scene is rendered at a few instants with the projector on, and each corneal glint
the renderer found is read in the projector's own light (``dots_signal``, noiseless): its brightest pixel
over the 95th percentile of the projector's light on the 15x15 pixels around it (the glint's own 5x5
excluded). A ratio over 2 is a spot brighter than every dot near it; under 1 it is lost among them.
Presentations with no glint are counted by why (lids, the glint off the cornea, something in front:
``cornea.glints`` drops them). Nothing of a face is written; never on a family that may not be looked at.

    python -m bench.cornea_glint --split train --species live --first 0 --count 24 [--times 0,0.7,1.4]
    python -m bench.cornea_glint --split train --species print_eyes --count 4 --pressed --soft --gloss 0.05

Also, per eye, what a detector that is not told where the glint is would read (``disc_reading``): the
brightest projector light on the cornea's disc (from the head's eye landmarks) over the 95th percentile
of the ring around it. ``--pressed [--soft] [--gloss R]``: ``print_eyes`` as review 22's narrow band cut
5 mm under the eye line (``bench.conformal_band``), optionally a soft glossy film.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

import drivers
from bench import attack_variant
from drivers.sim import species
from drivers.sim.camera import SimCamera
from drivers.sim.cornea import LIMBUS_M
from drivers.sim.families import presentation_query
from drivers.sim.head import head_layers
from drivers.sim.identity import Identity
from drivers.sim.subject import GRID_RES_M


def contrast(dots: np.ndarray, u: float, v: float) -> float:
    """The glint's brightest pixel over the 95th percentile of the 15x15 around it, its 5x5 left out."""
    iu, iv = int(round(u)), int(round(v))
    h, w = dots.shape
    win = dots[max(iv - 7, 0):min(iv + 8, h), max(iu - 7, 0):min(iu + 8, w)].copy()
    core = dots[max(iv - 2, 0):min(iv + 3, h), max(iu - 2, 0):min(iu + 3, w)]
    mask = np.ones(win.shape, bool)
    r0, c0 = max(iv - 2, 0) - max(iv - 7, 0), max(iu - 2, 0) - max(iu - 7, 0)
    mask[r0:r0 + core.shape[0], c0:c0 + core.shape[1]] = False
    return float(core.max() / max(np.percentile(win[mask], 95), 1e-9))


def eye_discs(cam: SimCamera, subject: str, t: float) -> list[tuple[float, float, float]]:
    """(u, v, radius px) of each eye's cornea in the depth view, from the head's own eye landmarks (the
    wearer's under a worn instrument): where a glint detector given FaceMesh's irises would look."""
    ident = cam._scene.identity if subject == "live" else species.wearer_of(cam._scene.identity)
    lay = head_layers(ident)
    head = cam._scene_at(t)[0][0]
    view = cam._depth_view
    out = []
    for ex, ey in lay.landmarks.eyes:
        j, i = int(round((ey - lay.gy[0, 0]) / GRID_RES_M)), int(round((ex - lay.gx[0, 0]) / GRID_RES_M))
        p = view.depth_to_view.apply((head.R @ np.array([ex, ey, -float(lay.face_height[j, i])]) + head.T)[None])[0]
        f = view.intrinsics.fx
        out.append((f * p[0] / p[2] + view.intrinsics.ppx, view.intrinsics.fy * p[1] / p[2] + view.intrinsics.ppy,
                    LIMBUS_M * f / p[2]))
    return out


def disc_reading(dots: np.ndarray, u: float, v: float, r: float) -> float:
    """The brightest projector light on the cornea's disc over the 95th percentile of the ring out to
    twice its radius (lids, sclera, skin): what a detector that does not know where the glint is reads."""
    h, w = dots.shape
    yy, xx = np.mgrid[0:h, 0:w]
    d2 = (xx - u) ** 2 + (yy - v) ** 2
    disc, ring = d2 <= r * r, (d2 > r * r) & (d2 <= 4 * r * r)
    return float(dots[disc].max() / max(np.percentile(dots[ring], 95), 1e-9))


def measure(query: dict[str, str], times: list[float]) -> dict:
    uri = "sim://?" + "&".join(f"{k}={v}" for k, v in query.items()) + "&cornea=1"
    cam = drivers.open(uri)
    assert isinstance(cam, SimCamera)
    cam.start()
    try:
        out: list[list[float]] = []
        discs: list[list[float]] = []
        for t in times:
            tick, maps = cam._render_depth(t, True, cam.POWER_RANGE.default)
            assert tick.dots_signal is not None
            row = [contrast(tick.dots_signal, g.u, g.v) for g in (maps.corneal or [])]
            out.append(row)
            discs.append([disc_reading(tick.dots_signal, *d) for d in eye_discs(cam, query["subject"], t)])
    finally:
        cam.stop()
    ident = Identity.draw(int(query["identity"]), query["family"])
    return {"distance_mm": int(query["distance_mm"]), "yaw": float(query["yaw"]), "camera": query["camera"],
            "glasses": ident.glasses, "contrast": out, "disc": discs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="train")
    ap.add_argument("--species", default="live")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--times", default="0,0.7,1.4")
    ap.add_argument("--pressed", action="store_true", help="print_eyes pressed onto the face (bench.conformal_band)")
    ap.add_argument("--soft", action="store_true", help="with --pressed: a film whose dots spread like silicone's")
    ap.add_argument("--gloss", type=float, default=0.0, help="with --pressed: the film's specular reflectance")
    args = ap.parse_args(argv)
    attack_variant.refuse_unseen(args.split)
    if args.pressed:
        from bench import conformal_band
        conformal_band.install(0.0004, args.soft, True, 0.005, args.gloss)
    times = [float(x) for x in args.times.split(",")]
    all_c: list[float] = []
    all_d: list[float] = []
    seen = frames = 0
    for i in range(args.first, args.first + args.count):
        rec = measure(presentation_query(args.split, args.species, i), times)
        rec["index"] = i
        print(json.dumps(rec), flush=True)
        all_d += [x for row in rec["disc"] for x in row]
        for row in rec["contrast"]:
            frames += 1
            seen += bool(row)
            all_c += row
    d = np.array(all_d)
    print(f"disc readings {d.size}: min {d.min():.2f} p10 {np.percentile(d, 10):.2f} median {np.median(d):.2f} "
          f"p90 {np.percentile(d, 90):.2f} max {d.max():.2f}", flush=True)
    c = np.array(all_c)
    if c.size:
        print(f"glints {c.size} in {frames} frames ({seen} frames with one or more); contrast min {c.min():.2f} "
              f"p10 {np.percentile(c, 10):.2f} median {np.median(c):.2f}; over 2: {(c > 2).mean():.2f}, "
              f"under 1: {(c < 1).mean():.2f}", flush=True)
    else:
        print(f"no glint in {frames} frames", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
