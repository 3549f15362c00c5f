"""Issue 14, field #27: what each on-off pair of one pad-eval presentation read, with and without
the projector's glints taken out (``features.without_glints``), and where the brightest light beside
the skin patches was: its ratio to the patches' brightest and its distance from them (px).

One bona fide presentation (``hil.pad_records.run_presentation``, the CLI's thresholds and nonce),
rendered once per pose, optionally with URI keys changed (``--set camera=d435``: a camera of
another family needs ``--set family=any``, which skips the projector enrolment; ``--yaws``: one
run per yaw). For each pair: the contrast and dot sharpness as the judge read them, the same pair
read with the glints left in (main's readings before the fix), and ``*`` for a one-sided pair.

    .venv/bin/python -m bench.pair_glints field:27 [--yaws -14.2,-7,0,7,14] [--set KEY=VALUE ...]

No face data: it prints numbers only.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

import cv2
import numpy as np

from agent.liveness import features as F
from agent.liveness import judge as J
from agent.liveness.detectors import active_ramps, cue_summary
from agent.liveness.fusion import decide, load_thresholds
from agent.quality import QualityGate
from hil import pad_fit, pad_presentations, pad_records
from hil import padeval as P


def with_keys(uri: str, keys: dict[str, str]) -> str:
    """``uri`` with each of ``keys`` set (replaced where present, appended where not)."""
    for k, v in keys.items():
        if re.search(rf"[?&]{re.escape(k)}=", uri):
            uri = re.sub(rf"([?&]){re.escape(k)}=[^&]*", rf"\g<1>{k}={v}", uri)
        else:
            uri += f"&{k}={v}"
    return uri


def beside(on: np.ndarray, off: np.ndarray, skin: np.ndarray) -> tuple[float, float]:
    """The brightest on-off difference outside ``skin`` over the brightest on it, and its distance
    from ``skin`` (px)."""
    diff = on - off
    outside = ~skin
    if not outside.any() or not skin.any():
        return float("nan"), float("nan")
    at = np.unravel_index(int(np.argmax(np.where(outside, diff, -np.inf))), diff.shape)
    dist = cv2.distanceTransform(outside.astype(np.uint8), cv2.DIST_L2, 5)[at]
    top = float(diff[skin].max())
    return (float(diff[at]) / top if top > 0 else float("inf")), float(dist)


def run(split: str, index: int, keys: dict[str, str]) -> dict[str, Any]:
    """One presentation, with each of its pairs read with and without the glints taken out."""
    p = pad_presentations.presentations(split, live=index + 1, per_species=0, injection=0, species=[P.LIVE])[index]
    p = pad_presentations.Presentation(p.kind, p.species, p.split, p.index, with_keys(p.uri, keys))
    kept: dict[str, Any] = {}
    finish, pool = J.Judge.finish, F.ProjectorMeasure.pool

    def finish_kept(self: J.Judge) -> J.JudgeResult:
        kept["judge"] = self
        return finish(self)

    def pool_kept(lights: list[F.ProjectorLight]) -> F.ProjectorMeasure:
        kept["lights"] = list(lights)
        return pool(lights)

    thresholds = load_thresholds("kiosk", challenged=True)
    J.Judge.finish = finish_kept  # type: ignore[method-assign]
    F.ProjectorMeasure.pool = pool_kept  # type: ignore[method-assign]
    try:
        rec = pad_records.run_presentation(p, frames=32, passive=False, gate=QualityGate(), thresholds=thresholds,
                                           dot_reference=keys.get("family") != "any")
    finally:
        J.Judge.finish = finish  # type: ignore[method-assign]
        F.ProjectorMeasure.pool = pool  # type: ignore[method-assign]
    out: dict[str, Any] = {"uri": p.uri, "outcome": rec.get("outcome"), "verdict": rec.get("verdict"),
                           "score": rec.get("score"), "reason": rec.get("reason"),
                           "cues": {k: v for k, v in (rec.get("cues") or {}).items() if k.startswith("projector_")},
                           "pairs": []}
    j = kept.get("judge")
    if j is None:
        return out
    by_id = {id(v): k for k, v in j.lights.items()}
    a = j.aligned
    left_in_lights = []
    for light in kept.get("lights", []):
        key = by_id.get(id(light))
        skin = j.skins[key[0]] if key is not None else None
        if key is None or skin is None:
            left_in_lights.append(light)
            continue
        on, off, noise = key
        frames = skin.of(a[on]), skin.of(a[off])
        same = (skin.of(a[noise[0]]), skin.of(a[noise[1]])) if noise is not None else None
        glints = F.without_glints(*frames, skin.mask, same)[4]
        real = F.without_glints
        F.without_glints = lambda on, off, skin, same=None: (on, off, skin, same, 0)
        try:
            left_in = F.pair_light(*frames, skin.mask, same)
        finally:
            F.without_glints = real
        left_in_lights.append(left_in)
        ratio, dist = beside(*frames, skin.mask)
        out["pairs"].append({"on": on, "off": off, "contrast": F._root(light.contrast2), "sharpness": light.sharpness,
                             "one_sided": light.one_sided, "snr": light.snr, "pixels": light.pixels,
                             "glint_pixels": glints, "left_in_contrast": F._root(left_in.contrast2),
                             "left_in_sharpness": left_in.sharpness, "left_in_one_sided": left_in.one_sided,
                             "brightest_beside": ratio, "beside_px": dist})
    if left_in_lights and rec.get("detectors"):
        # The session as main scored it: its cues with the projector's taken from the pairs read
        # with the glints left in (the pairs themselves are chosen by the frames' energies, not by
        # their readings), scored by the judge's own rules (``pad_fit.rescore``).
        m = F.ProjectorMeasure.pool(left_in_lights)
        cues = {k: v for k, v in (rec.get("cues") or {}).items() if not k.startswith("projector_")}
        cues.update({k: v for k, v in cue_summary([], projector=m, motion={}).items() if k.startswith("projector_")})
        score = pad_fit.rescore({**rec, "cues": cues}, active_ramps())
        out["left_in"] = {"score": round(score, 4), "verdict": decide(score, thresholds),
                          "floor": round(m.floor, 3), "floor_low": round(m.floor_low, 3),
                          "sharpness_floor": round(m.sharpness_floor, 3), "pairs": m.pairs, "one_sided": m.floor_pairs}
    return out


def lines(out: dict[str, Any]) -> list[str]:
    c = out["cues"]

    def g(k: str) -> str:
        v = c.get(k)
        return "-" if v is None else f"{v:.3f}"

    rows = [f"{out['uri']}", f"  {out['outcome']} {out['verdict']} score {out['score']} {out['reason'] or ''}  "
            f"speckle {g('projector_speckle')} (low {g('projector_speckle_low')}) "
            f"sharpness {g('projector_sharpness')}  "
            f"floor {g('projector_clipped_floor')} (low {g('projector_clipped_floor_low')}) "
            f"sharpness floor {g('projector_sharpness_floor')}  noise dev. {g('projector_snr')}"]
    if "left_in" in out:
        b = out["left_in"]
        rows.append(f"  glints left in: {b['verdict']} score {b['score']}  two-sided {b['pairs']}, one-sided "
                    f"{b['one_sided']}, floor {b['floor']} (low {b['floor_low']}) "
                    f"sharpness floor {b['sharpness_floor']}")
    for p in out["pairs"]:
        side = "*" if p["one_sided"] else " "
        rows.append(f"  pair {p['on']:>2}-{p['off']:<2} {p['contrast']:.3f} / {p['sharpness']:.2f}{side}"
                    f"  glints left in: {p['left_in_contrast']:.3f} / {p['left_in_sharpness']:.2f}"
                    f"{'*' if p['left_in_one_sided'] else ' '}  brightest beside {p['brightest_beside']:.1f}x"
                    f" at {p['beside_px']:.0f} px, {p['glint_pixels']} px taken out, {p['pixels']} skin px")
    return rows


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pair_glints", description=__doc__.split("\n\n")[0])
    ap.add_argument("presentation", help="SPLIT:INDEX of a bona fide presentation, e.g. field:27")
    ap.add_argument("--yaws", default=None, help="comma-separated yaws (degrees), one run each")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a URI key to change")
    args = ap.parse_args(argv)
    split, _, index = args.presentation.partition(":")
    keys = dict(kv.split("=", 1) for kv in args.set)
    for yaw in (args.yaws.split(",") if args.yaws else [None]):
        out = run(split, int(index), {**keys, **({"yaw": yaw} if yaw is not None else {})})
        print("\n".join(lines(out)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
