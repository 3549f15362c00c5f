"""The ingest server's own CPU per probe, in one process without sockets (``python -m bench ingest``).

The fleet bench (``bench/fleet.py``) measures the server as a bank runs it, over mutual TLS with a
fleet of terminals, on a machine whose cores the load generator shares. This one isolates the
servicer: the reference server's ``BeginCapture`` and ``SubmitProbe`` are called the way gRPC calls
them (``hil/ingest/fuzz.py``'s context with a real client certificate), on probes that meet their
challenges (``hil/fakes/evidence.py``, 32 framesets of evidence, projector and illumination), and
the process's CPU time is read around each call; building and sealing the probe is not counted.
Then each stage of ``SubmitProbe`` is timed on its own on the same probes (signature, HPKE open,
payload checks, reading the evidence, the evidence verification), and the store's part: the same
run against a private ``redis-server`` (``hil/redisproc.py``), with the store's round trips per
probe counted, and once more with the store holding other terminals' nonce records (the store's
size must not change the cost: every operation touches one terminal's keys).

The same servicer alternates, probe by probe, with one whose evidence check is the one before its
lags were worked out at once (``tests/helpers/evidence_reference.py``, the same verdicts): the ratio
of the two on one load.

Rows: CPU per probe (ms) with the target of ``bench/fleet.py`` (4 ms, the server's cost before it
re-verified the evidence) as the reference, and the 95 % bounds of the mean over the probes.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from agent.security.keys import verify_signature
from agent.uplink.seal import open_sealed, read_header, signed_bytes
from bench.fleet import TARGET_CPU_MS
from hil.ingest import evidence
from hil.ingest.checks import validate_payload
from hil.ingest.fuzz import World, _header, _payload, _seal, make_world
from hil.ingest.store import NonceRecord
from proto.capture_agent.v1 import ingest_pb2 as pb

PROBES = 300
OTHER_TERMINALS = 2500                 # x 8 nonce records each (the per-terminal cap) in the full store


def _mean_bounds(ms: list[float]) -> tuple[float, float, float]:
    a = np.asarray(ms)
    half = 1.96 * a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("nan")
    return float(a.mean()), float(a.mean() - half), float(a.mean() + half)


def _row(name: str, ms: list[float], target: float | None = None) -> dict[str, Any]:
    mean, lo, hi = _mean_bounds(ms)
    row: dict[str, Any] = {"name": name, "value": mean, "unit": "ms", "low": lo, "high": hi, "n": len(ms)}
    if target is not None:
        row.update(reference=target, ratio=mean / target)
    return row


def _cpu_ms(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    t0 = time.process_time()
    out = fn(*args)
    return 1000 * (time.process_time() - t0), out


def _probes(w: World, n: int, seed: int = 1):
    """``n`` times: a challenge from the server (its CPU timed) and a probe that meets it."""
    rng = random.Random(seed)
    for _ in range(n):
        begin_ms, ch = _cpu_ms(w.challenge)
        h = _header(w, ch)
        sealed = _seal(w, ch, h, _payload(rng, ch).SerializeToString())
        yield begin_ms, sealed.SerializeToString()


def _run(w: World, n: int) -> tuple[list[float], list[float], list[bytes]]:
    begin, submit, raws = [], [], []
    for begin_ms, raw in _probes(w, n):
        ms, receipt = _cpu_ms(w.ingest._submit_raw, raw, w.peer)
        if receipt.reason != "OK":
            raise RuntimeError(f"a valid probe was refused: {receipt.reason} {receipt.detail}")
        begin.append(begin_ms)
        submit.append(ms)
        raws.append(raw)
    return begin, submit, raws


def _against_previous(w: World, n: int) -> tuple[list[float], list[float]]:
    """``n`` probes through the server as it is and ``n`` through the server with the evidence check
    it had before its lags were worked out at once (``tests/helpers/evidence_reference.py``),
    alternating probe by probe so both see the same load: CPU per probe (BeginCapture +
    SubmitProbe) of each."""
    from tests.helpers import evidence_reference as ref
    now: list[float] = []
    before: list[float] = []
    for i, (begin_ms, raw) in enumerate(_probes(w, 2 * n, seed=7)):
        with (mock.patch("hil.ingest.evidence.verify", ref.verify) if i % 2 else contextlib.nullcontext()):
            ms, receipt = _cpu_ms(w.ingest._submit_raw, raw, w.peer)
        if receipt.reason != "OK":
            raise RuntimeError(f"a valid probe was refused: {receipt.reason} {receipt.detail}")
        (before if i % 2 else now).append(begin_ms + ms)
    return now, before


def _parse(raw: bytes) -> tuple[pb.SealedProbe, pb.ProbeHeader]:
    sealed = pb.SealedProbe.FromString(raw)
    return sealed, read_header(sealed)


def _stage_times(w: World, raw: bytes) -> dict[str, float]:
    """One accepted probe's SubmitProbe stages, each timed on its own."""
    out: dict[str, float] = {}
    out["parse and header"], (sealed, header) = _cpu_ms(_parse, raw)
    out["signature"], ok = _cpu_ms(verify_signature, w.signer.public_key(), header.signature_algorithm,
                                   signed_bytes(sealed.header, sealed.ciphertext), sealed.signature)
    assert ok
    out["HPKE open and parse"], payload = _cpu_ms(open_sealed, sealed, header, w.state.keys)
    out["payload checks"], lv = _cpu_ms(validate_payload, payload, header.hpke_suite)
    out["evidence read"], frames = _cpu_ms(evidence.check_shape, payload)
    kinds = frozenset(evidence.NAMES[c] for c in payload.evidence.challenges)
    out["evidence verification"], _ = _cpu_ms(evidence.verify, payload, lv, header.nonce, kinds,
                                               len(frames.digests), w.state.evidence, frames)
    return out


def _stages(w: World, raws: list[bytes]) -> list[dict[str, Any]]:
    """Each stage of SubmitProbe on its own, on probes the server has accepted."""
    times = [_stage_times(w, raw) for raw in raws]
    return [_row(f"ingest: SubmitProbe stage, {k}", [t[k] for t in times]) for k in times[0]]


class _RoundTrips:
    """Counts a redis-py client's round trips: commands (script calls included) and pipelines."""

    def __init__(self, client):
        self.n = 0
        run, pipeline = client.execute_command, client.pipeline

        def execute_command(*a, **k):
            self.n += 1
            return run(*a, **k)

        def make_pipeline(*a, **k):
            pipe = pipeline(*a, **k)
            send = pipe.execute

            def execute(*b, **kw):
                self.n += 1
                return send(*b, **kw)
            pipe.execute = execute
            return pipe
        client.execute_command, client.pipeline = execute_command, make_pipeline


def _fill(store, terminals: int, now_ms: int) -> None:
    for t in range(terminals):
        for _ in range(store.limits.nonces_per_terminal):
            store.add_nonce(os.urandom(32), NonceRecord(f"kiosk-other-{t:06d}", "s", pb.VERIFY, "k", now_ms,
                                                        now_ms + 60_000, challenges="illumination,projector",
                                                        frames=32), now_ms)


def run() -> list[dict[str, Any]]:
    from hil.fleet import cpu_seconds
    from hil.ingest.redis_store import RedisStore
    from hil.redisproc import start_redis

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as d:
        w = make_world(Path(d))
        _run(w, 20)                                                     # warm-up
        begin, submit, raws = _run(w, PROBES)
        total = [b + s for b, s in zip(begin, submit, strict=True)]
        rows += [_row(f"ingest: server CPU per probe, memory store (target {TARGET_CPU_MS:g} ms)", total,
                      TARGET_CPU_MS),
                 _row("ingest: BeginCapture, memory store", begin),
                 _row("ingest: SubmitProbe, memory store", submit)]
        rows += _stages(w, raws[:100])
        now, before = _against_previous(w, PROBES)
        rows += [{**_row("ingest: server CPU per probe vs the previous evidence check, alternating", now),
                  "reference": _mean_bounds(before)[0], "ratio": _mean_bounds(now)[0] / _mean_bounds(before)[0]},
                 _row("ingest: server CPU per probe with the previous evidence check, alternating", before)]

        rp = start_redis(Path(d) / "redis")
        try:
            store = RedisStore.from_url(rp.url, prefix="bench:")
            trips = _RoundTrips(store.r)
            w.state.store = store
            _run(w, 20)
            for label, other in (("empty", 0), (f"{OTHER_TERMINALS * 8:,} other records", OTHER_TERMINALS)):
                if other:
                    _fill(store, other, w.state.now_ms())
                keys = store.r.dbsize()
                trips.n, rcpu0 = 0, cpu_seconds(rp.proc.pid)
                begin, submit, _ = _run(w, PROBES)
                rcpu = cpu_seconds(rp.proc.pid) - rcpu0
                total = [b + s for b, s in zip(begin, submit, strict=True)]
                rows += [
                    _row(f"ingest: server CPU per probe, Redis store {label} (target {TARGET_CPU_MS:g} ms)", total,
                         TARGET_CPU_MS),
                    {"name": f"ingest: Redis round trips per probe, store {label}", "value": trips.n / PROBES,
                     "unit": "trips"},
                    {"name": f"ingest: Redis CPU per probe, store {label}", "value": 1000 * rcpu / PROBES,
                     "unit": "ms"},
                    {"name": f"ingest: Redis keys, store {label}", "value": float(keys), "unit": "keys"},
                ]
            store.close()
        finally:
            rp.stop()
    return rows
