"""Pixels between the eyes per simulated camera: the colour mode the driver rule chooses, and the most
any offered colour mode gives, across the capture envelope (issue 14: T/IIFAA 3001.1 §7.4 asks >= 60 px).

    python -m bench.ipd_modes [--fps 30] [--measure N]

Nominal figures: the mode's focal length (``drivers.sim.modes.color_intrinsics``, the device's per-mode
calibration) times a 63 mm inter-pupil distance over the distance to the face. ``--measure N`` also
renders N framesets of a live face (family ``any``, identity 1, frontal) at each distance on each
camera and reports the median IPD the quality gate's landmarks measure: people's eyes are not all
63 mm apart and lie behind the face's front, so the measure runs below the nominal figure (docs/quality.md).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from drivers.modes import IPD_M, MIN_IPD_PX
from drivers.sim import modes as sim_modes
from drivers.sim.families import ENVELOPE
from drivers.sim.profiles import PROFILES

DISTANCES_MM = (350.0, 435.0, 520.0)       # the envelope's near end, middle and far end


def nominal_ipd_px(fx: float, distance_mm: float) -> float:
    return fx * IPD_M / (distance_mm / 1000.0)


def rows(fps: float) -> list[dict]:
    """Per profile: its colour lens's field across the native colour calibration, the chosen colour
    mode at ``fps`` and the offered mode (at >= ``fps``) with the longest focal length, with nominal
    IPD px at ``DISTANCES_MM``."""
    out = []
    for name, p in PROFILES.items():
        chosen = sim_modes.color_mode("", None, fps, p)
        offered = sim_modes.offered_color_modes(p)
        fast = [(w, h) for (w, h), rates in offered.items() if max(rates) >= fps]
        best = max(fast, key=lambda wh: (sim_modes.color_intrinsics(p, *wh).fx, -wh[0] * wh[1]))
        best_fx = sim_modes.color_intrinsics(p, *best).fx
        fx = chosen.intrinsics.fx
        native = sim_modes.color_intrinsics(p, *sim_modes.COLOR_NATIVE_SIZE.get(name, (640, 480)))
        hfov = float(np.degrees(2 * np.arctan(native.width / 2 / native.fx)))
        out.append({"profile": name, "hfov": hfov, "native": f"{native.width}x{native.height}",
                    "chosen": str(chosen.mode), "fx": fx,
                    "ipd": [nominal_ipd_px(fx, d) for d in DISTANCES_MM],
                    "best": f"{best[0]}x{best[1]}", "best_fx": best_fx,
                    "best_ipd_far": nominal_ipd_px(best_fx, DISTANCES_MM[-1])})
    return out


def measured_ipd_px(profile: str, distance_mm: float, n: int) -> float:
    """Median IPD the gate measures on ``n`` framesets of a frontal live face at ``distance_mm``."""
    import drivers
    from agent.pipeline.align import align_frameset
    from agent.pipeline.frames import framesets
    from agent.quality import QualityGate

    gate = QualityGate()
    uri = (f"sim://?camera={profile}&distance_mm={distance_mm:g}&identity=1&seed=1&lux=300&realtime=0"
           f"&background=plain")
    cam = drivers.open(uri)
    ipds = []
    with cam:
        for fs in framesets(cam, n, timeout_s=240):
            r = gate.evaluate(align_frameset(fs))
            if r.face is not None:
                ipds.append(r.face.mesh.ipd_px)
    return float(np.median(ipds)) if ipds else float("nan")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ipd_modes", description=__doc__.split("\n\n")[0])
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--measure", type=int, default=0, metavar="N", help="framesets rendered per distance (0: none)")
    args = ap.parse_args(argv)
    lo, hi = ENVELOPE["distance_mm"]
    print(f"nominal IPD px ({IPD_M * 1000:g} mm eyes) at {', '.join(f'{d:g}' for d in DISTANCES_MM)} mm "
          f"(envelope {lo:g}-{hi:g} mm; §7.4 needs {MIN_IPD_PX:g}); colour at {args.fps:g} fps")
    print(f"{'PROFILE':<11} {'HFOV':>5} {'NATIVE':<10} {'CHOSEN':<15} {'FX':>7} "
          + " ".join(f"{d:>6g}" for d in DISTANCES_MM) + f"  {'MOST-PX MODE':<12} {'FX':>7} {DISTANCES_MM[-1]:>6g}"
          + ("  measured" if args.measure else ""))
    for r in rows(args.fps):
        line = (f"{r['profile']:<11} {r['hfov']:>5.1f} {r['native']:<10} {r['chosen']:<15} {r['fx']:>7.1f} "
                + " ".join(f"{v:>6.1f}" for v in r["ipd"])
                + f"  {r['best']:<12} {r['best_fx']:>7.1f} {r['best_ipd_far']:>6.1f}")
        if args.measure:
            line += "  " + " ".join(f"{measured_ipd_px(r['profile'], d, args.measure):6.1f}" for d in DISTANCES_MM)
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
