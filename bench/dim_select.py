"""review28: does fanmat27 give a synced dimmer a selection power? A pair whose room light fell in its lit
frame gives no speckle and no shape (``features.speckled``, ``ProjectorLight.fell``); an injector that sees
every command, and reads each pair's frames as they pass, can dim the room's light in the lit frames of the
pairs that read hardest and keep those that read softest. Can the pairs it keeps carry a mask, a print or
attack B's lamp over the ramps, or move the pair count over its minimum?

The frame model of tests/liveness/test_moving_light.py (``T.window``, ``T.judged``, ``T.session_score``: every
other cue alive, as a mask with eye holes) and the surfaces of bench.edge_lamp and bench.eye_lamp. Each window
is read once, pair by pair; then every subset of its pairs (all of them: a window of 32 frames holds 7-12
pairs) is marked fallen (``without_shape`` and ``fell``: what ``level_steps`` makes of a lit frame the room's
light fell in) and pooled. That is an upper bound on the attacker: a real dim also moves the window's
projector level (``level_steps``' medians) and can mark the pairs whose noise pair holds the dimmed frame
``moved``; it never gives a pair back a reading. ``--check`` re-renders the best subset's window with the
room's light at ``DIM`` in those pairs' lit frames (the windows ``T.window`` draws) and judges it.

    PYTHONPATH=. python -m bench.dim_select [--seeds 2] [--check] [--only TEXT]

Prints, per surface: windows scoring >= ``LIVE_MIN`` as drawn and with the best subset dropped, the best
score, the pairs that subset keeps, the subsets tried and how many of them pass, and the softest dots'
sharpness a subset that still measures (``MIN_PROJECTOR_PAIRS``) reads (``projector_sharpness``' ramp:
attack 1.489, live 1.208). Numbers only, no frames
written."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import numpy as np

import tests.liveness.test_moving_light as T
from agent.liveness.challenge import projector_schedule
from agent.liveness.detectors import MIN_PROJECTOR_PAIRS
from agent.liveness.features import ProjectorLight, without_shape
from agent.liveness.judge import _edges
from bench.edge_lamp import window_edges
from bench.eye_lamp import dot_print, eye_band, painted

LIVE_MIN = 0.5
DIM = 0.5                        # the room's light in a dimmed lit frame (x the window's)
PRINT_SCATTER = 0.08             # bench.fan_pairs' assumption: paper spreads the dots no more than resin
Window = Callable[[int, bytes], list[ProjectorLight]]


def fallen(lights: list[ProjectorLight], drop: tuple[int, ...]) -> list[ProjectorLight]:
    """``lights`` with the pairs ``drop`` marked as a lit frame the room's light fell in leaves them."""
    return [replace(without_shape(x), fell=True) if i in drop else x for i, x in enumerate(lights)]


def score(lights: list[ProjectorLight]) -> float:
    return T.session_score(T.judged(lights)[1])


def best_drop(lights: list[ProjectorLight]) -> tuple[float, tuple[int, ...], int, int, float]:
    """(best score, its dropped pairs, subsets tried, subsets scoring >= ``LIVE_MIN``, the softest
    ``projector_sharpness`` of a subset that still measures, ``MIN_PROJECTOR_PAIRS`` pairs at least) over
    every proper subset of the pairs dropped."""
    best, arg, tried, passed, soft = -1.0, tuple[int, ...](), 0, 0, float("inf")
    for r in range(len(lights)):
        for drop in itertools.combinations(range(len(lights)), r):
            m, d = T.judged(fallen(lights, drop))
            s = T.session_score(d)
            tried += 1
            passed += s >= LIVE_MIN
            if m.pairs >= MIN_PROJECTOR_PAIRS and np.isfinite(m.sharpness):
                soft = min(soft, float(m.sharpness))
            if s > best:
                best, arg = s, drop
    return best, arg, tried, passed, soft


def dimmed(make: Callable[..., list[ProjectorLight]], drop: tuple[int, ...], seed: int, nonce: bytes,
           room: float = 1.0) -> list[ProjectorLight]:
    """The window ``make`` draws (a ``T.window``-like with a ``dimmer``) rendered again with the room's
    light at ``DIM`` in the lit frames of the pairs ``drop``."""
    edges = _edges(list(projector_schedule(nonce, 32)))
    dimmer = [room] * 32
    for i in drop:
        dimmer[edges[i][1]] = room * DIM
    return make(seed=seed, nonce=nonce, dimmer=dimmer)


def _by_keywords(make: Callable[..., list[ProjectorLight]], seed: int, nonce: bytes) -> list[ProjectorLight]:
    return make(seed=seed, nonce=nonce)


def surfaces() -> list[tuple[str, Window, Callable[..., list[ProjectorLight]] | None]]:
    """(label, window(seed, nonce), a ``dimmer``-taking renderer of the same window or None)."""
    out: list[tuple[str, Window, Callable[..., list[ProjectorLight]] | None]] = []
    for name, scatter in (("resin", T.RESIN_SCATTER), ("print", PRINT_SCATTER)):
        for lamp in (0.0, 16.0, 24.0, 40.0):
            still = partial(T.window, scatter, 0.0, fleck_dn=0.0, synced=lamp)
            out.append((f"{name} + attack B {lamp:.0f} DN", partial(_by_keywords, still), still))
    for lamp, dn, step in ((16.0, 140.0, 3.2), (16.0, 120.0, 3.5), (16.0, 100.0, 2.5), (24.0, 140.0, 3.2)):
        edge = partial(T.window, T.RESIN_SCATTER, step, synced=lamp, on_edges=True, fleck_dn=dn)
        out.append((f"resin + B {lamp:.0f} DN, edge lamp {dn:.0f} DN {step} px",
                    partial(_by_keywords, partial(window_edges, T.RESIN_SCATTER, step, lamp, dn=dn)), edge))
    for paint in (0.1, 0.3):
        for lamp in (16.0, 40.0):
            out.append((f"resin painted {paint:.1f}, lamp {lamp:.0f} DN",
                        partial(painted, T.RESIN_SCATTER, lamp, paint), None))
    for shape in ("soft", "box"):
        for ink_amp in (0.0, 0.3):
            for lamp in (0.0, 16.0, 40.0):
                out.append((f"eye band, ink {ink_amp:.1f}, {shape} lamp {lamp:.0f} DN on the band",
                            partial(eye_band, lamp, shape, ink_amp), None))
    for amp, blur in ((0.1, 2.0), (0.3, 1.0), (0.3, 4.0), (0.6, 2.0)):
        for lamp in (16.0, 24.0):
            out.append((f"resin printed with the dots {amp:.1f}, blur {blur:.0f} px, lamp {lamp:.0f} DN",
                        partial(dot_print, T.RESIN_SCATTER, lamp, amp, blur), None))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--check", action="store_true", help="re-render the best subset's window dimmed")
    ap.add_argument("--only", default="", help="the surfaces whose label holds this text")
    a = ap.parse_args()
    nonces = (b"\0" * 16, b"\1" * 16)
    print("surface | windows >= live_min as drawn -> best subset dropped (windows) | best score as drawn -> "
          "dropped | pairs kept by the best | subsets passing (tried) | the softest dots' sharpness any subset of "
          "3 pairs or more reads | re-rendered dimmed: scores")
    for label, make, render in surfaces():
        if a.only not in label:
            continue
        drawn, picked, tried, passing, kept, checked, soft = [], [], 0, 0, [], [], []
        for seed in range(a.seeds):
            for nonce in nonces:
                lights = make(seed, nonce)
                drawn.append(score(lights))
                best, drop, t, p, low = best_drop(lights)
                soft.append(low)
                picked.append(best)
                tried += t
                passing += p
                kept.append(len(lights) - len(drop))
                if a.check and render is not None:
                    checked.append(round(score(dimmed(render, drop, seed, nonce)), 2))
        print(f"{label} | {sum(s >= LIVE_MIN for s in drawn)} -> {sum(s >= LIVE_MIN for s in picked)} ({len(drawn)}) | "
              f"{max(drawn):.2f} -> {max(picked):.2f} | kept {kept} | {passing} ({tried}) | "
              f"softest sharpness measured {min(soft):.3f}"
              + (f" | {checked}" if checked else ""), flush=True)


if __name__ == "__main__":
    main()
