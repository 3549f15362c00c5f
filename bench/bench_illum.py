"""More challenge bits per frameset (issue 20, ``bench/illum_bits.py``): blind pass and genuine pass of
illumination sequences with shorter steps and more levels per channel, at 16 framesets (533 ms at
30 fps), beside today's sequence; the projector power levels as a secondary row.

Sizes (environment): ``BENCH_ILLUM_BLIND_TRIALS`` nonces per blind row (default 2000: the figures in
docs/liveness.md come from 20,000, with the commands written there), ``BENCH_GENUINE_MODELS``
rendered sessions (4), ``BENCH_ILLUM_GENUINE_TRIALS`` simulated windows per genuine row (1000)."""

from __future__ import annotations


def run() -> list[dict]:
    from bench import challenge_stats as cs
    from bench import illum_bits as ib
    trials = cs.env_int("BENCH_ILLUM_BLIND_TRIALS", 2000)
    rows = ib.blind_rows(trials, windows=(16,), agreement=min(400, max(trials // 10, 40)))
    models = ib.render_models(cs.env_int("BENCH_GENUINE_MODELS", 4), seed=1)
    rows.append({"name": "illumination bits: rendered sessions modelled", "value": len(models), "unit": "sessions"})
    gtrials = cs.env_int("BENCH_ILLUM_GENUINE_TRIALS", 1000)
    rows += ib.genuine_rows([m for m, _ in models], gtrials, windows=(16,), timing=(ib.SCREEN_TIMING[-1],),
                            rules=("verifier", "nosteps", "fit3", "bound"))
    rows += ib.power_rows(models, trials, gtrials, windows=(16,))
    return rows
