"""Issue 14, per-camera dot sharpness: does the camera's own hard-surface sharpness, measured in its
projector enrolment, make skin's ``projector_sharpness`` comparable across cameras?

``scenes``: each camera's pad-eval enrolment scenes (``hil.pad_enrolment.enrolment_uris``: a flat print at
0.45 m and 0.65 m, the bare wall at 1.6 m), the projector switched every 4 frames as
``projector-enrol`` switches it; on every on-off pair the measure the judge takes on skin
(``features.dot_shape``: fine over mid band energy of the difference, the noise of two consecutive
unlit frames removed by the photon-transfer scale, as ``features.pair_light`` does) on the scene's
surface (the board: depth within 4 cm of its distance; the wall: beyond 1.2 m; eroded 6 px from its
edges). Clipped pixels are kept, as the judge keeps them, and their share is reported. One JSON line
per scene::

    nice -n 19 .venv/bin/python -m bench.enrol_sharpness scenes OUT.jsonl train:d435 train:d415

``compare``: pad-eval records (``--records``) scored on ``projector_sharpness`` as it is (absolute)
and divided by (ratio) or less (difference) a per-camera hard-surface value, JSON ``{"d435": 2.02,
...}``: per camera and species the values, and for the live faces against the hard masks and head
models (``detectors.HARD_3D``) what an ``all`` ramp fitted by ``hil.pad_fit.fit_ramp`` would see,
and how far apart the cameras' live medians lie (in units of the live faces' interquartile range,
so the forms compare)::

    .venv/bin/python -m bench.enrol_sharpness compare RECORDS.jsonl '{"d435": 2.017, "d415": 1.774}'

Nothing here is used by the agent; it measures whether the idea holds (docs/liveness.md, "The
camera's own hard-surface sharpness").
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

import drivers
from agent.commands.projector_enrol import RUN_FRAMES, collect_framesets
from agent.liveness.challenge import dot_energy, projector_states
from agent.liveness.detectors import HARD_3D
from agent.liveness.features import SATURATED_DN, dot_shape
from hil.pad_enrolment import enrolment_uris
from hil.pad_fit import fit_ramp

PAIRS = 6                    # on-off cycles a scene (each gives two pairs)
BOARD_DEPTH_M = 0.04
WALL_MIN_M = 1.2
EDGE_PX = 6


def _frames(uri: str) -> list[Any]:
    with drivers.open(uri) as cam:
        return collect_framesets(cam, PAIRS * 2 * RUN_FRAMES + 2 * RUN_FRAMES)


def scene_pairs(uri: str) -> list[dict[str, float]]:
    """Every on-off pair of one enrolment scene: its sharpness (noise removed), level, clipped share."""
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(uri).query))
    board = q.get("subject") != "none"
    sets = _frames(uri)
    ir = [fs.ir.pixels.astype(np.float32) for fs in sets]
    lit = projector_states([dot_energy(fs.ir.pixels) for fs in sets])
    out = []
    for i in range(1, len(sets)):
        if lit[i] == lit[i - 1]:
            continue
        a, b = (i, i - 1) if lit[i] else (i - 1, i)
        same = next(((ir[b], ir[c]) for c in (b - 1, b + 1) if 0 <= c < len(sets) and not lit[c]), None)
        if same is None:
            continue
        z = sets[a].depth.pixels.astype(np.float32) * np.float32(sets[a].depth.depth_scale)
        if board:
            region = (z > 0) & (np.abs(z - float(q["distance_mm"]) / 1000.0) < BOARD_DEPTH_M)
        else:
            region = z > WALL_MIN_M
        k = 2 * EDGE_PX + 1
        region = cv2.erode(region.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
        if region.sum() < 2000:
            continue
        on, off = ir[a], ir[b]
        m_on, m_off = float(on[region].mean()), float(off[region].mean())
        m_same = float((same[0][region].mean() + same[1][region].mean()) / 2)
        scale = (m_on + m_off) / max(2.0 * m_same, 1.0)
        sharp, coarse = dot_shape(on - off, region, same[0] - same[1], scale)
        out.append({"sharpness": sharp, "coarse": coarse, "level": m_on - m_off, "pixels": int(region.sum()),
                    "clipped": float(((on >= SATURATED_DN) | (off >= SATURATED_DN))[region].mean())})
    return out


def scenes(out_path: str, cameras: list[str]) -> None:
    with open(out_path, "a") as out:
        for spec in cameras:
            family, _, camera = spec.partition(":")
            for uri in enrolment_uris(f"sim://?family={family}&camera={camera}"):
                pairs = scene_pairs(uri)
                s = [p["sharpness"] for p in pairs if np.isfinite(p["sharpness"])]
                row = {"camera": camera, "family": family, "uri": uri, "pairs": len(s),
                       "sharpness_median": float(np.median(s)) if s else None,
                       "sharpness_range": [min(s), max(s)] if s else None,
                       "clipped_median": float(np.median([p["clipped"] for p in pairs])) if pairs else None,
                       "level_median": float(np.median([p["level"] for p in pairs])) if pairs else None}
                out.write(json.dumps(row) + "\n")
                out.flush()
                print(json.dumps(row))


def compare(records_path: str, reference: dict[str, float]) -> None:
    rows: dict[tuple[str, str], list[float]] = defaultdict(list)
    with open(records_path) as fh:
        for line in fh:
            r = json.loads(line)
            s = (r.get("cues") or {}).get("projector_sharpness")
            if r.get("outcome") not in ("accepted", "rejected") or s is None:
                continue
            cam = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r["uri"]).query))["camera"]
            if cam in reference:
                rows[(cam, r["species"])].append(float(s))
    forms: dict[str, Callable[[str, float], float]] = {
        "absolute": lambda c, s: s, "ratio": lambda c, s: s / reference[c], "difference": lambda c, s: s - reference[c]}
    for name, f in forms.items():
        live = np.array([f(c, s) for (c, sp), v in rows.items() if sp == "live" for s in v])
        hard = np.array([f(c, s) for (c, sp), v in rows.items() if sp in HARD_3D for s in v])
        attack_end, live_end, how = fit_ramp("all", live, hard)
        per_camera = {c: {"live_median": float(np.median([f(c, s) for s in rows[(c, "live")]])),
                          "hard_median": float(np.median([f(c, s) for sp in HARD_3D for s in rows.get((c, sp), [])]))}
                      for c in reference if rows.get((c, "live"))}
        meds = [v["live_median"] for v in per_camera.values()]
        iqr = float(np.quantile(live, 0.75) - np.quantile(live, 0.25))
        print(json.dumps({
            "form": name, "live": int(live.size), "hard": int(hard.size), "ramp": [attack_end, live_end], "fit": how,
            "live_beyond_most_live_like_hard": int((live >= hard.min()).sum()),
            "hard_within_live_99pct": int((hard <= live_end).sum()),
            # unit-free, so the three forms compare: in units of the pooled live faces' interquartile range
            "gap_over_live_iqr": (float(hard.min()) - live_end) / iqr,
            "camera_live_median_spread_over_live_iqr": (max(meds) - min(meds)) / iqr if meds else None,
            "per_camera": per_camera}))


def main(argv: list[str]) -> None:
    if len(argv) >= 2 and argv[0] == "scenes":
        scenes(argv[1], argv[2:] or ["train:d435", "train:d415"])
    elif len(argv) == 3 and argv[0] == "compare":
        compare(argv[1], {k: float(v) for k, v in json.loads(argv[2]).items()})
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
