"""review24's edge lamp, reproducible: an attacker who sees the projector's schedule moves a soft lamp
spot ON the projector's edges (between an on-off pair's two frames) and holds it still inside each run,
so every same-state (noise) pair is clean and the on-off difference carries the spot's move, whose
mid-band energy lowers a resin mask's dots' fine/mid ratio toward skin's. With attack B's even lamp
switched with the projector (resin's speckle in skin's range), the frame-level model of
tests/liveness/test_moving_light.py (its frames, ``judged`` and ``session_score``; every other cue
alive, as a mask with eye holes).

    PYTHONPATH=. nice -n 19 python -m bench.edge_lamp [--seeds 10] [--sweep]

Prints, per (spot DN, move px), how many of seeds x 2 nonces score >= live_min (0.5), the median
score and sharpness, the most pairs whose shape was not read (``ProjectorMeasure.unshaped``) and the
fewest whose shape was read in a window scoring >= live_min (review26: with a 19-23 DN lamp one pair
of 9 decides, the other 8 left unread by ``light_gone``: the median has no minimum count).
``--sweep``: also skin and resin under the same moves, 3 seeds each (review24's edge_lamp.py table).
Numbers only, no frames written."""

from __future__ import annotations

import argparse

import numpy as np

import tests.liveness.test_moving_light as T
from agent.liveness.features import ProjectorLight

LIVE_MIN = 0.5


def window_edges(scatter: float, step: float, synced: float = 0.0, seed: int = 0, nonce: bytes = b"\0" * 16,
                 n: int = 32, dn: float = 120.0) -> list[ProjectorLight]:
    """The judge's pairs over a window whose fleck (``dn`` DN, ``T.fleck``) moves by ``step`` px on every
    projector edge and stays still inside each run (``T.window``'s ``on_edges``); ``synced``: attack B's
    even lamp (DN) with the projector."""
    return T.window(scatter, step, synced=synced, seed=seed, nonce=nonce, n=n, on_edges=True, fleck_dn=dn)


def _dropped(m) -> int:
    """Pairs whose dots' shape was not read (fleck24's moving light, light gone, a stepped level)."""
    return int(m.unshaped)


def _read(lights: list[ProjectorLight]) -> int:
    """Two-sided measured pairs whose dots' shape was read: those ``ProjectorMeasure.sharpness`` is the
    median of (``pool``; its cheeks' rule aside, which these frames do not reach)."""
    return sum(1 for x in lights if np.isfinite(x.contrast2) and not x.one_sided and np.isfinite(x.sharpness))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--synced", type=float, nargs="*", default=[16.0],
                    help="attack B's lamp (DN) to try; a stronger one fills the move's dark side")
    a = ap.parse_args()
    cases = [(16.0, dn, step) for dn, step in ((140.0, 3.2), (140.0, 3.0), (120.0, 3.5), (100.0, 2.5), (140.0, 4.0))]
    cases += [(lamp, dn, step) for lamp in a.synced if lamp != 16.0 for dn, step in ((140.0, 3.2), (120.0, 3.5))]
    for lamp, dn, step in cases:
        got = []
        for seed in range(a.seeds):
            for nonce in (b"\0" * 16, b"\1" * 16):
                lights = window_edges(T.RESIN_SCATTER, step, lamp, seed=seed, dn=dn, nonce=nonce)
                m, s = T.judged(lights)
                got.append((T.session_score(s), float(m.sharpness), _dropped(m), m.pairs, _read(lights)))
        sc = sorted(g[0] for g in got)
        sh = sorted(g[1] for g in got if np.isfinite(g[1]))
        print(f"resin+B {lamp:.0f} DN, spot {dn:.0f} DN moved {step} px on each edge: score >= {LIVE_MIN} in "
              f"{sum(x >= LIVE_MIN for x in sc)} of {len(sc)}, median {sc[len(sc) // 2]:.2f} (max {sc[-1]:.2f}); "
              f"sharpness median {sh[len(sh) // 2] if sh else float('nan'):.2f} ({len(sh)} read); "
              f"pairs dropped max {max(g[2] for g in got)} of {max(g[3] for g in got)}; "
              f"fewest read when >= {LIVE_MIN}: {min((g[4] for g in got if g[0] >= LIVE_MIN), default='-')}",
              flush=True)
    if not a.sweep:
        return
    for name, scatter, synced in (("resin", T.RESIN_SCATTER, 0.0), ("resin+B", T.RESIN_SCATTER, 16.0),
                                  ("skin", T.SKIN_SCATTER, 0.0)):
        for step in (0.0, 0.5, 1.0, 2.0, 3.0):
            for dn in (30.0, 120.0):
                rows = []
                for seed in range(3):
                    m, s = T.judged(window_edges(scatter, step, synced, seed=seed, dn=dn))
                    rows.append((round(float(m.sharpness), 2), _dropped(m), s.material,
                                 round(T.session_score(s), 2)))
                print(f"{name:8s} move {step:3.1f} spot {dn:5.0f} DN: (sharpness, dropped, material, score) {rows}",
                      flush=True)


if __name__ == "__main__":
    main()
