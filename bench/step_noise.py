"""The illumination step check's noise (docs/liveness.md, *The step check's noise*): the figures that
chose ``ILLUMINATION_NOISE_SPREAD``, rules side by side on the same seeds (``illum_bits.RULES``:
``rmsnoise`` the step check's noise as the root mean square of the within-step changes alone,
``robust`` that noise at most ``ILLUMINATION_NOISE_SPREAD`` times the median-based one, now the
verifier's default, ``halfgain`` half the gain alone, ``nosteps`` no step check).

``python -m bench.step_noise PART ...`` prints one line per row:

* ``blind N RULES GAINS WINDOW`` — blind pass of random blind streams (``illum_bits.blind_rate``,
  strategies ``rhythm`` and ``fixed``, N windows each) with the injector choosing its stream's noise:
  per gain-over-noise r of GAINS (comma-separated; 0: the default 1e-4), ``noise = BLIND_GAIN / r``;
  counts with their upper 95 % Clopper-Pearson bound;
* ``lux MIN_LUX RULES [N] [FILE] [blend=P] [window=W]`` — genuine pass on the lux sweep's sessions at
  MIN_LUX and above (``illum_bits.lux_rows``, ``today``, W framesets, 32 by default, the hardest screen
  timing, N windows a row, 200 by default), with the lower 95 % bound; ``blend=P``: the frame each
  screen change lands in blended with probability P (``challenge_stats.blend_frames``; 0 by default);
* ``ratio N WINDOW BLEND FILE...`` — the step check's gain over its noise on genuine windows (the
  models in FILE..., per lux, the hardest screen timing, N windows per lux, blended edges with
  probability BLEND): at the lag the verifier (its defaults) chose, the weakest channel's gain (the
  step check's, on the changes) over the step check's noise, its percentiles, and the share of
  windows under 2 x sqrt(2) x ``ILLUMINATION_STEP_NOISE`` (11.3: the noise sets the tolerance) among
  all, and the windows the verifier passed under 11.3, 7.5, 5 and 4 (at the verifier's lag on the
  sequence as commanded: a window passed by late blends was measured again on a shifted sequence,
  whose noise leaves the blended frames out);
* ``sigma N WINDOW GAINS [FILE...]`` — the inflation itself: the step check's noise at the lag the
  verifier chose over the stream's true noise (blind: per r of GAINS, N rhythm windows), or over the
  median-based noise (genuine windows of the models in FILE..., the hardest screen timing);
* ``truenoise N GAINS WINDOW`` — blind pass as ``blind`` with the step check's noise the stream's true
  noise (a floor for any estimate of it; the verifier cannot know it);
* ``cost [N] [RULES]`` — CPU per window of the verifier with the robust noise and with the root mean
  square alone (or under RULES), interleaved in one process (N blind windows, 200 by default).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence

import numpy as np
from scipy.stats import beta

from agent.liveness.challenge import (
    ILLUMINATION_NOISE_SPREAD,
    ILLUMINATION_STEP_NOISE,
    _change_gains,
    _settled,
    verify_illumination,
)
from bench import illum_bits as ib

SWEEP = "/tmp/illumharden/sweep.json"


def upper95(k: int, n: int) -> float:
    return float(beta.ppf(0.95, k + 1, n - k)) if k < n else 1.0


def blind(n: int, rules: Sequence[str], gains: Sequence[float], frames: int) -> None:
    v = ib.variant("today")
    for gn in gains:
        noise = ib.BLIND_GAIN / gn if gn > 0 else 1e-4
        for rule in rules:
            res = {}
            for s in ("rhythm", "fixed"):
                k = round(ib.blind_rate(v, frames, n, s, rule=rule, noise=noise) * n)
                res[s] = (k, upper95(k, n))
            print(f"{frames} fs gain/noise {gn:5.1f} {rule:9s} "
                  + "  ".join(f"{s}: {k}/{n} (upper95 {u * 100:.3f} %)" for s, (k, u) in res.items()), flush=True)


def lux(min_lux: float, rules: Sequence[str], n: int, path: str, blend: float = 0.0, window: int = 32) -> None:
    ms = [m for m in ib.load_models([path]) if ib.lux_of(m[1]["query"]) >= min_lux]
    today = [ib.variant("today")]
    for rule in rules:
        for r in ib.lux_rows(ms, n, variants=today, windows=(window,), rule=rule, blend=blend):
            weakest = [f"{x:.1f}" for x in r["weakest_gain_over_noise"]]
            print(f"{rule:9s} {window} fs {r['lux']:6.0f} lux  blend {blend:g}  gain/noise {weakest}  "
                  f"pass {r['value']:5.1f} % (lower95 {r['lower95_pct']:.1f} %)", flush=True)


def _within_step(steps, y: np.ndarray, lag: int, frames: int) -> np.ndarray:
    """The within-step changes the verifier measures its noise on, at ``lag`` (a clean stream: every
    frame has a face)."""
    v = ib.variant("today")
    x = v.colours(steps, frames)
    sid = np.zeros(frames, int)
    for j, st in enumerate(steps):
        sid[st.start:st.start + st.frames] = j
    m = frames - lag
    care = _settled(x)[:m]
    yy = y[lag:lag + m]
    pair = care[1:] & care[:-1] & (sid[1:m] == sid[:m - 1])
    return (yy[1:] - yy[:-1])[pair]


def _sigmas(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rms = np.sqrt((d * d).mean(axis=0) / 2)
    mad = 1.4826 * np.median(np.abs(d), axis=0) / math.sqrt(2)
    return rms, mad


def sigma(n: int, frames: int, gains: Sequence[float], paths: Sequence[str]) -> None:
    v = ib.variant("today")
    rng = np.random.default_rng(11)
    for gn in gains:
        noise = ib.BLIND_GAIN / gn
        rows = []
        for _ in range(n):
            steps = v.steps_for(rng.bytes(32), frames)
            y = ib.blind_face(ib.blind_stream(v, frames, rng, "rhythm"), rng, noise)
            res = verify_illumination(steps, y)
            rms, mad = _sigmas(_within_step(steps, y, res.lag_frames, frames))
            rows.append((np.median(rms / noise), np.median(mad / noise)))
        a = np.array(rows)
        print(f"blind {frames} fs, gain/noise {gn:g}: the noise the step check measures over the true noise "
              f"(median channel): RMS median {np.median(a[:, 0]):.2f} (p90 {np.percentile(a[:, 0], 90):.2f}), "
              f"median-based {np.median(a[:, 1]):.2f} (p90 {np.percentile(a[:, 1], 90):.2f}), {n} windows", flush=True)
    if not paths:
        return
    ms = [m for m, _ in ib.load_models(paths)]
    lag, jit = ib.SCREEN_TIMING[-1]
    ratios = []
    for i in range(n):
        steps, y = ib.genuine_window(v, ms[i % len(ms)], frames, lag, jit, rng)
        res = verify_illumination(steps, y)
        rms, mad = _sigmas(_within_step(steps, y, res.lag_frames, frames))
        ratios.append(np.max(rms / np.maximum(mad, 1e-12)))
    r = np.array(ratios)
    print(f"genuine {frames} fs ({len(ms)} sessions): RMS over median-based noise, the largest channel: median "
          f"{np.median(r):.2f}, p90 {np.percentile(r, 90):.2f}, p99 {np.percentile(r, 99):.2f}, share over "
          f"2: {np.mean(r > 2) * 100:.1f} %, {n} windows", flush=True)


def _step_ratio(steps, y: np.ndarray, lag: int, frames: int) -> float:
    """The weakest channel's step-check gain over the step check's noise at ``lag`` (as
    ``challenge._illumination`` computes them: the gain by least squares on the changes between
    consecutive compared frames, the noise the within-step changes' RMS capped at
    ``ILLUMINATION_NOISE_SPREAD`` times their median-based value; a clean stream, every frame a face)."""
    v = ib.variant("today")
    x = v.colours(steps, frames)
    m = frames - lag
    care = _settled(x)[:m]
    g = _change_gains(care, y[lag:lag + m], x[:m])
    rms, mad = _sigmas(_within_step(steps, y, lag, frames))
    sig = np.minimum(rms, ILLUMINATION_NOISE_SPREAD * mad)
    return float(np.min(g / np.maximum(sig, 1e-12)))


def ratio(n: int, frames: int, blend: float, paths: Sequence[str]) -> None:
    v = ib.variant("today")
    lag, jit = ib.SCREEN_TIMING[-1]
    bound = 2 * math.sqrt(2) * ILLUMINATION_STEP_NOISE
    by_lux: dict[float, list] = {}
    for m, info in ib.load_models(paths):
        by_lux.setdefault(ib.lux_of(info["query"]), []).append(m)
    groups = sorted(by_lux.items())
    if len(groups) > 8:                                        # the train family: every lux its own; pool them
        groups = [(float("nan"), [m for _, ms in groups for m in ms])]
    for lux, ms in groups:
        rng = np.random.default_rng(17)
        blend_rng = np.random.default_rng([17, 1])
        rs, passed = [], []
        for i in range(n):
            steps, y = ib.genuine_window(v, ms[i % len(ms)], frames, lag, jit, rng, blend, blend_rng)
            res = verify_illumination(steps, y)
            rs.append(_step_ratio(steps, y, res.lag_frames, frames))
            passed.append(res.passed)
        r, ok = np.array(rs), np.array(passed)
        where = "train, every lux" if np.isnan(lux) else f"{lux:6.0f} lux"
        print(f"genuine {frames} fs, {where} ({len(ms)} sessions), screen {lag} / {jit:.0%}, blend {blend:g}: "
              f"step-check gain over its noise, weakest channel: p1 {np.percentile(r, 1):.1f}, "
              f"p10 {np.percentile(r, 10):.1f}, "
              f"median {np.median(r):.1f}; under {bound:.1f}: {np.mean(r < bound) * 100:.1f} % of {n} windows, "
              f"{np.sum((r < bound) & ok)} of the {np.sum(ok)} passed; passed and under 7.5 (the tolerance past "
              f"an uncommanded full step's 0.75 gain): {np.sum((r < 7.5) & ok)}, under 5: {np.sum((r < 5) & ok)}, "
              f"under 4: {np.sum((r < 4) & ok)}", flush=True)


def cost(n: int, frames: int = 32, repeats: int = 3, rules: Sequence[str] = ("robust", "rmsnoise")) -> None:
    """CPU per window of ``verify_illumination`` under ``rules`` (by default with the robust noise and
    with the root mean square alone), on the same ``n`` rhythm blind windows, each way ``repeats``
    times interleaved in one process (a ratio, on a shared machine)."""
    v = ib.variant("today")
    rng = np.random.default_rng(5)
    wins = []
    for _ in range(n):
        steps = v.steps_for(rng.bytes(32), frames)
        wins.append((steps, ib.blind_face(ib.blind_stream(v, frames, rng, "rhythm"), rng)))
    out: dict[str, list[float]] = {rule: [] for rule in rules}
    for _ in range(repeats):
        for rule in out:
            opts = ib.rule_options(rule)
            t = time.process_time()
            for steps, y in wins:
                verify_illumination(steps, y, **opts)
            out[rule].append((time.process_time() - t) / n * 1e3)
    print(f"verify_illumination, {frames} framesets, ms of CPU per window over {n} windows: "
          + "  ".join(f"{rule} {', '.join(f'{x:.3f}' for x in xs)}" for rule, xs in out.items()), flush=True)


def truenoise(n: int, gains: Sequence[float], frames: int) -> None:
    """Blind pass with the step check's noise replaced by the stream's TRUE noise (which the verifier
    cannot know): the floor any estimate of the noise can reach, as long as the tolerance is scaled
    by the noise. ``challenge._unsteady`` is wrapped for the run and restored."""
    import agent.liveness.challenge as ch
    v = ib.variant("today")
    orig = ch._unsteady
    try:
        for gn in gains:
            true = ib.BLIND_GAIN / gn

            def fixed(care, yy, x, levels, crosstalk, noise=None, step_noise=None, blended=None, sid=None, _t=true):
                return orig(care, yy, x, levels, crosstalk, None if noise is None else np.full_like(noise, _t),
                            step_noise, blended, sid)
            ch._unsteady = fixed
            res = {s: round(ib.blind_rate(v, frames, n, s, noise=true) * n) for s in ("rhythm", "fixed")}
            counts = "  ".join(f"{s}: {k}/{n} (upper95 {upper95(k, n) * 100:.3f} %)" for s, k in res.items())
            print(f"{frames} fs gain/noise {gn:5.1f} true noise  {counts}", flush=True)
    finally:
        ch._unsteady = orig


def _main(argv: list[str]) -> int:
    part = argv[0] if argv else ""
    if part == "blind" and len(argv) == 5:
        blind(int(argv[1]), argv[2].split(","), [float(a) for a in argv[3].split(",")], int(argv[4]))
        return 0
    if part == "ratio" and len(argv) >= 5:
        ratio(int(argv[1]), int(argv[2]), float(argv[3]), argv[4:])
        return 0
    if part == "lux" and len(argv) >= 3:
        opts = dict(a.split("=", 1) for a in argv[3:] if "=" in a)
        argv = [a for a in argv if "=" not in a]
        if len(argv) in (3, 4, 5):
            lux(float(argv[1]), argv[2].split(","), int(argv[3]) if len(argv) > 3 else 200,
                argv[4] if len(argv) > 4 else SWEEP, float(opts.get("blend", 0.0)), int(opts.get("window", 32)))
            return 0
    if part == "sigma" and len(argv) >= 4:
        sigma(int(argv[1]), int(argv[2]), [float(a) for a in argv[3].split(",")], argv[4:])
        return 0
    if part == "truenoise" and len(argv) == 4:
        truenoise(int(argv[1]), [float(a) for a in argv[2].split(",")], int(argv[3]))
        return 0
    if part == "cost" and len(argv) in (1, 2, 3):
        cost(int(argv[1]) if len(argv) > 1 else 200,
             rules=argv[2].split(",") if len(argv) > 2 else ("robust", "rmsnoise"))
        return 0
    raise SystemExit(__doc__)


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
