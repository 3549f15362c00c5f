"""The ingest server under 10^5 structure-aware fuzzed inputs (``hil/ingest/fuzz.py``): crashes
(any exception out of a handler) and nonces used by refused input must both be 0, and every retry
of a valid probe must be answered with its first receipt. The mutations are seeded (nonces and
probe ids are fresh); ``BENCH_FUZZ_N`` changes the count (``python -m bench fuzz``)."""

from __future__ import annotations

import os

from hil.ingest import fuzz

N = int(os.environ.get("BENCH_FUZZ_N", "100000"))
SEED = 16


def run() -> list[dict]:
    r = fuzz.run(N, seed=SEED)
    for line in r.first_crashes:
        print(f"fuzz crash: {line}")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(r.by_kind.items()))
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(r.by_reason.items()))
    print(f"fuzz: {r.inputs} inputs in {r.seconds:.0f} s; kinds: {kinds}; answers: {reasons}")
    return [
        {"name": f"fuzzed server inputs (seed {SEED})", "value": r.inputs, "unit": "inputs"},
        {"name": "  crashes (exceptions out of a handler)", "value": r.crashes, "unit": "count", "reference": 0},
        {"name": "  nonces used by refused input", "value": r.nonces_burned, "unit": "count", "reference": 0},
        {"name": "  retries answered differently", "value": r.retries_changed, "unit": "count", "reference": 0},
        {"name": "  malformed inputs refused as MALFORMED", "value": r.by_reason.get("MALFORMED", 0), "unit": "count"},
        {"name": "  inputs per second (one thread, in process)", "value": r.inputs / r.seconds, "unit": "1/s"},
    ]
