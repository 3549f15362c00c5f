"""Why a genuine face fails the illumination challenge: per frame and channel, which test refused it
and by how much (docs/liveness.md, *Bright light: why genuine faces fail the illumination challenge*).

``python -m bench.illum_diag PART ...``:

* ``field SPLIT INDEX...`` — pad-eval's live presentations (``hil.padeval``: the same URI, nonce and
  capture, quality phase included), their window's face colour per frame (the judge's evidence, the
  numbers the server receives), the colour imager's exposure and gain per frame, the share of the
  image's middle third clipped (any channel at 255), the brightest face cell, the simulator's truth
  at the frame's time (eyes closed, pose), and the verifier's refusals laid out at every lag (and,
  where the late-blend retry applies, on the shifted sequence), all with the face measured as the
  diagnosis read it (``face_response(..., "frame")``: the middle half of the cells ranked on every
  frame); then the same for the face measured as every cell's mean, as the window's steadiest half of
  the cells (:func:`steady_cells`) and as ``face_response``'s window-wide choice (``"window"``);
* ``lux MIN_LUX [N] [FILE] [blend=P] [clean=1]`` — the lux sweep's genuine windows (``bench.step_noise lux``'s
  seeds: ``illum_bits.genuine_trial``), each refused window's refusals counted by test (decode, step
  check within a step, step check across an edge, blend), by the tolerance that applied (half the gain
  or ``ILLUMINATION_STEP_NOISE`` sqrt(2) sigma), and by how far past it, in gains; ``clean=1``: each
  session model stored before ``challenge_stats.model_from_evidence`` took the ghosts of its own
  sequence's edges out of its face's own light, with them taken out (:func:`ghost_free`).

Nothing here changes the verifier: :func:`refusals` recomputes the quantities
``agent.liveness.challenge._illumination`` and ``_unsteady`` decide on, at one lag, and the
verifier's own result is printed beside them (``lux`` counts the refused windows whose refusals it
lays out at the verifier's lag: all of them on the sweep).
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from agent.liveness import challenge as C
from agent.liveness.challenge import Step, _settled, face_response, step_layout, verify_illumination


def _masks(steps: Sequence[Step], n: int, lag: int, y: np.ndarray):
    expected, sid = step_layout(steps)
    n = min(n, len(expected))
    m = n - lag
    k = np.arange(n)
    inside = k < m
    at = np.minimum(lag + k, n - 1)
    finite = np.all(np.isfinite(y[:n]), axis=1)
    care = _settled(expected)[:n] & inside & finite[at]
    return expected[:n], sid[:n], care, y[at], m


def refusals(steps: Sequence[Step], y: np.ndarray, lag: int, *, crosstalk: float = C.ILLUMINATION_CROSSTALK,
             step_noise: float = C.ILLUMINATION_STEP_NOISE, spread: float = C.ILLUMINATION_NOISE_SPREAD,
             blend_steps: tuple[int, ...] = ()) -> dict[str, Any]:
    """The verifier's quantities at one lag (``steps`` already shifted for late blends, if any): the
    gains (drift fit, the decode's) and the step check's gains, the noises, the tolerance per channel
    and which of them applied, and each refused (frame, channel) with its test and excess."""
    y = np.asarray(y, float).reshape(-1, 3)
    x, sid, care, yy, m = _masks(steps, len(y), lag, y)
    n = len(x)
    pair = care[1:] & care[:-1] & (sid[1:] == sid[:-1])
    dy = (yy[1:] - yy[:-1])[pair]
    noise = np.sqrt((dy * dy).sum(axis=0) / max(len(dy), 1) / 2.0)
    med = np.median(np.abs(dy), axis=0) if len(dy) else np.zeros(3)
    sigma = np.minimum(noise, spread * 1.4826 * med / math.sqrt(2.0))
    kk = np.arange(n)
    drift = C._drift((kk / m)[None], C.DRIFT_TERMS)[0]
    coefs = C._fit_channels(yy[:m][care[:m]], drift[:m][care[:m]], x[:m][care[:m]])
    fit_gain = coefs[:, -1]
    resid = np.full((n, 3), np.nan)
    for ch in range(3):
        resid[:m, ch] = yy[:m, ch] - drift[:m] @ coefs[ch, :-1]
    out: list[dict[str, Any]] = []
    for k in np.flatnonzero(care):
        on = resid[k] > fit_gain / 2
        for ch in range(3):
            if bool(on[ch]) != bool(x[k, ch] > 0.5):
                out.append({"frame": int(k), "camera_frame": int(k + lag), "channel": "RGB"[ch], "test": "decode",
                            "level_over_gain": float(resid[k, ch] / fit_gain[ch]), "commanded": float(x[k, ch])})
    idx = np.flatnonzero(care)
    ddy = yy[idx[1:]] - yy[idx[:-1]]
    ddx = x[idx[1:]] - x[idx[:-1]]
    g = C._change_gains(care, yy, x)      # the step check's own gains
    rise, fall = np.maximum(ddx, 0.0), np.minimum(ddx, 0.0)
    up = np.stack([np.maximum(rise[:, 1], rise[:, 2]), np.maximum(rise[:, 0], rise[:, 2]),
                   np.maximum(rise[:, 0], rise[:, 1])], axis=1)
    down = np.stack([np.minimum(fall[:, 1], fall[:, 2]), np.minimum(fall[:, 0], fall[:, 2]),
                     np.minimum(fall[:, 0], fall[:, 1])], axis=1)
    own = ddy - g * ddx
    half = g / 2
    noisy = step_noise * math.sqrt(2.0) * sigma
    tol = np.maximum(half, noisy)
    beyond = np.maximum(own - crosstalk * g * up, crosstalk * g * down - own)
    for p in range(len(idx) - 1):
        for ch in range(3):
            if not beyond[p, ch] <= tol[ch] and g[ch] > 0:
                a, b = int(idx[p]), int(idx[p + 1])
                across = bool(np.any(ddx[p] != 0))
                out.append({"frame": b, "camera_frame": b + lag, "from_frame": a, "channel": "RGB"[ch],
                            "test": "step across an edge" if across else "step within a step",
                            "commanded_change": ddx[p].tolist(), "change_over_gain": float(ddy[p, ch] / g[ch]),
                            "excess_over_gain": float(beyond[p, ch] / g[ch]),
                            "tolerance_over_gain": float(tol[ch] / g[ch]),
                            "tolerance": "noise" if noisy[ch] > half[ch] else "half gain",
                            "past_by_over_gain": float((beyond[p, ch] - tol[ch]) / g[ch])})
    if blend_steps:
        first = np.zeros(n, bool)
        first[[steps[j].start for j in blend_steps if steps[j].start < n]] = True
        finite = np.all(np.isfinite(yy), axis=1)
        mid = np.flatnonzero(first & (kk < m) & finite)
        bad = C._unblended(idx, mid, yy, sid, half)
        for fb in np.flatnonzero(bad).tolist():
            out.append({"frame": fb, "camera_frame": fb + lag, "channel": "?", "test": "blend"})
    return {"lag": lag, "checked": int(care.sum()), "fit_gain": fit_gain.tolist(), "step_gain": g.tolist(),
            "noise_rms": noise.tolist(), "sigma": sigma.tolist(),
            "gain_over_sigma": (g / np.maximum(sigma, 1e-12)).tolist(),
            "tolerance_over_gain": (tol / np.where(g > 0, g, np.nan)).tolist(), "pairs": int(pair.sum()),
            "refusals": out}


def diagnose(steps: Sequence[Step], y: np.ndarray) -> dict[str, Any]:
    """The verifier's result and, at its lag (and every lag for reference), :func:`refusals`; where
    the late-blend retry applies at a lag, the shifted sequence's refusals too."""
    y = np.asarray(y, float).reshape(-1, 3)
    r = verify_illumination(steps, y)
    frames = steps[-1].start + steps[-1].frames
    n = min(len(y), frames)
    lags = {}
    for lag in range(0, C.ILLUMINATION_MAX_LAG + 1):
        if n - lag < C.MIN_COMPARED:
            continue
        d = refusals(steps, y, lag)
        _, _, _, yy, m = _masks(steps, len(y), lag, y)
        gains = np.asarray(d["fit_gain"])
        if np.all(gains > 0):
            hit = C._late_edges(steps, yy, m, gains)
            d["late_share_edges"] = list(hit)
            if 0 < len(hit) <= (C.ILLUMINATION_LATE_BLENDS or 0):
                d["shifted"] = refusals(C._shifted(steps, hit), y, lag, blend_steps=hit)
        lags[lag] = d
    return {"passed": r.passed, "lag": r.lag_frames, "checked": r.checked, "mismatches": r.mismatches,
            "separation": r.separation, "lags": lags}


# -- pad-eval's field presentations -------------------------------------------------------------------------

def field(split: str, indices: Sequence[int]) -> None:
    import drivers
    from agent.liveness.fusion import VerdictThresholds
    from agent.liveness.judge import judge
    from agent.quality import QualityGate
    from agent.session.offline import capture
    from hil.pad_presentations import Presentation, presentation_nonce, presentation_uri
    from hil.padeval import LIVE

    for i in indices:
        p = Presentation("bona_fide", LIVE, split, i, presentation_uri(split, LIVE, i))
        gate = QualityGate()
        with drivers.open(p.uri) as cam:
            cap = capture(cam, 32, presentation_nonce(p), gate, require_quality=True)
        # The simulator's truth at each colour frame's time (its own scene model; a diagnosis only).
        scene, fps = getattr(cam, "_scene", None), getattr(cam, "_color_fps", None)
        r = judge(cap.sets, gate, VerdictThresholds(), challenge=cap.challenge, notes=cap.notes)
        ev = r.evidence
        if ev is None or cap.challenge is None:
            print(f"== {p.key}: no challenged window ({r.verdict.verdict})")
            continue
        grids = np.array([f["face_grid"] if f["face_grid"] else [np.nan] * 48 for f in ev["frames"]])
        y = face_response(grids.reshape(len(grids), 16, 3), "frame")     # the measure the diagnosis read
        steps = cap.challenge.steps
        print(f"== {p.key}  {p.uri}")
        print("   recorded illumination:", (r.verdict.challenge or {}).get("illumination"))
        for k, fs in enumerate(cap.sets):
            md = fs.color.metadata if fs.color is not None else None
            clip, top = float("nan"), float("nan")
            if fs.color is not None:
                # The image's middle third (the face at 350-520 mm): share of pixels with a channel at 255.
                img = np.asarray(fs.color.pixels)
                h, w = img.shape[:2]
                reg = img[h // 3:2 * h // 3, w // 3:2 * w // 3]
                clip = float(np.mean(np.any(reg >= 255, axis=-1)))
            cells = grids[k].reshape(16, 3)
            if np.all(np.isfinite(cells)):
                top = float(cells.max())
            truth = ""
            if scene is not None and fps and fs.color is not None:
                t = fs.color.frame_number / fps
                _, tr, (yaw, pitch, _) = scene.pose(t, rigid_static=False)
                truth = (f"  [sim t {t:.3f} s eyes closed {scene.eyes_closed(t):.2f} yaw {yaw:.3f} pitch {pitch:.3f} "
                         f"xyz mm {np.array2string(tr * 1000, precision=2)}]")
            print(f"   frame {k:2d}  rgb {np.array2string(y[k], precision=4)}  "
                  f"exp {getattr(md, 'exposure_us', None)} gain {getattr(md, 'gain', None)} "
                  f"wb {getattr(md, 'white_balance_k', None)}  centre clipped {clip:.4f}  "
                  f"brightest cell {top:.3f}{truth}")
        _print_diag(steps, y)
        # The same frames measured as every cell's mean (no interquartile selection of the cells).
        plain = np.nanmean(grids.reshape(len(grids), 16, 3), axis=1)
        print("   every cell's mean, frame to frame change over the interquartile mean's:")
        for k in range(1, len(y)):
            print(f"   frame {k:2d}  d(mean) {np.array2string((plain[k] - plain[k - 1]) * 1e4, precision=1)}  "
                  f"d(iqm) {np.array2string((y[k] - y[k - 1]) * 1e4, precision=1)}  (x 1e-4)")
        _print_diag(steps, plain)
        fixed = steady_cells(grids.reshape(len(grids), 16, 3))
        print("   the steadiest half of the cells, the same cells on every frame (no per-frame ranking):")
        _print_diag(steps, fixed)
        print("   face_response's window-wide choice (the half of the cells nearest the cells' median):")
        _print_diag(steps, face_response(grids.reshape(len(grids), 16, 3), "window"))


def steady_cells(g: np.ndarray) -> np.ndarray:
    """(n, 3) per channel the mean of the half of the cells whose light, relative to its own window
    mean, varies least over the window: one selection for the whole window, where
    ``face_response(..., "frame")`` ranks the cells afresh on every frame (the first candidate, measured
    here, not used: it favours cells that do not answer the screen; ``face_response``'s ``"window"``
    choice keeps the cells nearest the cells' median instead)."""
    level = np.nanmean(g, axis=0)                                  # (cells, 3)
    rel = g / np.where(level > 1e-9, level, np.nan)[None]
    spread = np.nanstd(rel, axis=0)                                # (cells, 3)
    keep = np.argsort(spread, axis=0)[: g.shape[1] // 2]           # (cells / 2, 3)
    out = np.empty((g.shape[0], 3))
    for ch in range(3):
        out[:, ch] = np.mean(rel[:, keep[:, ch], ch], axis=1) * np.nanmean(level[:, ch])
    return out


def _print_diag(steps: Sequence[Step], y: np.ndarray) -> None:
    d = diagnose(steps, y)
    print(f"   verifier: passed {d['passed']} lag {d['lag']} checked {d['checked']} mismatches {d['mismatches']} "
          f"separation {d['separation']:.2f}")
    print("   steps:", [(s.start, s.frames, s.rgb) for s in steps])
    for lag, L in d["lags"].items():
        for name, D in (("", L), (" shifted", L.get("shifted"))):
            if D is None:
                continue
            print(f"   lag {lag}{name}: checked {D['checked']} pairs {D['pairs']} fit gain "
                  f"{np.round(D['fit_gain'], 4).tolist()} step gain {np.round(D['step_gain'], 4).tolist()} "
                  f"sigma {np.round(D['sigma'], 5).tolist()} gain/sigma {np.round(D['gain_over_sigma'], 1).tolist()} "
                  f"tol/gain {np.round(D['tolerance_over_gain'], 3).tolist()} "
                  f"late-share edges {L.get('late_share_edges')}")
            for f in D["refusals"]:
                print("      ", {k: (round(v, 3) if isinstance(v, float) else v) for k, v in f.items()})


# -- the lux sweep ------------------------------------------------------------------------------------------

def ghost_free(m, info: dict[str, Any]):
    """A session model stored before ``challenge_stats.model_from_evidence`` took the ghosts of its
    own sequence's edges out of ``base`` (the face's own light), with them taken out as it now does
    (``challenge_stats._own_light``): the measured colour is ``base`` plus the response to the
    commanded colour at the model's lag, on every frame."""
    from agent.liveness.challenge import Challenge, Kind
    from bench import challenge_stats as cs

    ch = Challenge.from_nonce(cs.nonce_for(info["query"]), 32, (Kind.PROJECTOR, Kind.ILLUMINATION))
    x = ch.colours()
    if len(m.base) != 32 - int(info["illumination_lag"]):
        return m                                       # frames without a face: not aligned, left as is
    xx = x[:len(m.base)]
    y = m.base + xx @ m.response.T
    return cs.SessionModel(m.query, m.energy_on, m.energy_off, cs._own_light(y, xx, m.response), m.response)


def lux(min_lux: float, n: int, path: str, blend: float = 0.0, clean: bool = False) -> None:
    from bench import challenge_stats as cs
    from bench import illum_bits as ib

    ms = [m for m in ib.load_models([path]) if ib.lux_of(m[1]["query"]) >= min_lux]
    if clean:
        ms = [(ghost_free(m, info), info) for m, info in ms]
    by_lux: dict[float, list] = {}
    for m, info in ms:
        by_lux.setdefault(ib.lux_of(info["query"]), []).append((m, info))
    v = ib.variant("today")
    lag_s, jit = ib.SCREEN_TIMING[-1]
    for lx in sorted(by_lux):
        models = by_lux[lx]
        rng = np.random.default_rng(17)
        blend_rng = np.random.default_rng([17, 1])
        tests: Counter = Counter()
        refused = 0
        agree = 0
        per_scene: Counter = Counter()
        past: list[float] = []
        ch_count: Counter = Counter()
        windows: Counter = Counter()
        for t in range(n):
            m, info = models[t % len(models)]
            steps = v.steps_for(rng.bytes(32), 32)
            x = v.colours(steps, 32)
            src = cs._landings(x, lag_s, jit, rng)
            shown = np.where((src < 0)[:, None], 0.0, x[np.maximum(src, 0)])
            if blend > 0:
                shown = cs.blend_frames(shown, src, blend, blend_rng)
            own = m.base[cs._ping_pong(np.arange(32) + int(rng.integers(0, 2 * len(m.base))), len(m.base))]
            y = own + shown @ m.response.T
            d = diagnose(steps, y)
            if d["passed"]:
                continue
            refused += 1
            per_scene[info["query"][:60]] += 1
            L = d["lags"][d["lag"]]
            D = L.get("shifted") or L
            agree += int(len(D["refusals"]) > 0)
            kinds = sorted({"step" if f["test"].startswith("step") else f["test"] for f in D["refusals"]})
            windows["+".join(kinds) or "none laid out"] += 1
            for f in D["refusals"]:
                key = f["test"] + (f" ({f['tolerance']} tolerance)" if "tolerance" in f else "")
                tests[key] += 1
                ch_count[f["channel"]] += 1
                if "past_by_over_gain" in f and np.isfinite(f["past_by_over_gain"]):
                    past.append(f["past_by_over_gain"])
        print(f"{lx:6.0f} lux: {refused} of {n} refused; refusals laid out at the verifier's lag in {agree}; "
              f"windows by the tests refusing them {dict(windows)}; refusals by test {dict(tests)}; "
              f"by channel {dict(ch_count)}; per scene {dict(per_scene)}")
        if past:
            q = np.percentile(past, [10, 50, 90])
            print(f"        step refusals past their tolerance by (gains) p10/p50/p90 {np.round(q, 3).tolist()}")
        for m, info in models:
            print(f"        scene {info['query'][:90]} gain/noise {info.get('gain_over_noise')} "
                  f"response diag {np.round(np.diag(m.response), 4).tolist()} base mean "
                  f"{np.round(m.base.mean(axis=0), 4).tolist()}")


def _main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    part, rest = argv[0], argv[1:]
    if part == "field":
        field(rest[0], [int(a) for a in rest[1:]])
    elif part == "lux":
        kw = [a for a in rest if "=" in a]
        pos = [a for a in rest if "=" not in a]
        opts = dict(a.split("=", 1) for a in kw)
        lux(float(pos[0]), int(pos[1]) if len(pos) > 1 else 200,
            pos[2] if len(pos) > 2 else "/tmp/illumharden/sweep.json", float(opts.get("blend", 0.0)),
            opts.get("clean", "0") == "1")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
