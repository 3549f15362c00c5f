"""The cost of a strike on a terminal with a TPM (sec30): each counted lockout entry's hash is now also extended
into the TPM's NV extend index (TPM2_NV_Extend), on top of sec29's counter advance (TPM2_NV_Increment, then a read).

Rows, in one process on swtpm (a software TPM on this CPU; a discrete TPM is slower per command, by 10-100x, so
the TPM rows are a floor): the median time of ``Lockout.fail(terminal, subject)`` (two ``lockout_strike`` entries,
each with the TPM's clock, written and fsynced) and the TPM commands it sends, with the chain (today) against the
same call with the extend skipped (sec29's path), interleaved; and the same call without a TPM for scale.

sec31 rows: an anchor (a probe's, after one counted entry: a fresh checkpoint signed by a file key) carrying the
attestation key's TPM2_NV_Certify of the counter and the chain for the probe's nonce, against the same anchor without
them (the strike itself is unchanged: nothing is certified per entry), interleaved; and the server's check of those
certifications (``hil.ingest.attestation.check_counter``: two ECDSA verifications, two parses) against its check of
the probe's quote (``check_quote``), in the same process.

witness31 rows: the server's check as it runs now (``WitnessStore.check``: the held witness read from the store,
checked, written back by compare-and-set) on the memory store and on a private redis-server (Unix socket), against
sec31's ``check_counter`` with the held witness passed in, interleaved in the same process.

hist31 rows: the store's part of that check with the witness history full (``WITNESS_HISTORY`` counts: the record
read, validated, the next count appended, written back by compare-and-set) against the same with a history of one
count (witness31's record size), on the private redis-server, interleaved; and the full record's bytes.
"""

from __future__ import annotations

import functools
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config import SessionSettings
from agent.observe.ledger import LOCKOUT_EVENTS
from agent.security.audit import AuditLog
from agent.security.keys import generate_file_key
from agent.security.tpm import define_counter, load_monotonic
from agent.session.lockout import Lockout
from hil.swtpmproc import swtpm

N = 150
S = SessionSettings(max_failures=10**9, failure_window_s=3600.0, lockout_s=300.0)   # strikes only, no lockout


class _Counting:
    """The ESAPI context (one per TCTI, shared by both counters), counting the TPM commands sent through it under
    ``label``."""

    def __init__(self, esapi):
        self.esapi, self.label, self.calls = esapi, "", Counter()

    def __getattr__(self, name):
        attr = getattr(self.esapi, name)
        if not callable(attr):
            return attr

        def call(*a, **k):
            self.calls[self.label] += 1
            return attr(*a, **k)
        return call


class _Sec29:
    """The counter as sec29 used it: the chain's extend skipped (the reference path)."""

    def __init__(self, counter):
        self._counter = counter

    def __getattr__(self, name):
        return getattr(self._counter, name)

    def extend(self, digest: bytes) -> None:
        pass


def run() -> list[dict]:
    times: dict[str, list[float]] = {"chain": [], "counter": [], "none": []}
    with tempfile.TemporaryDirectory() as d, swtpm() as tcti:
        tmp = Path(d)
        key = generate_file_key(tmp / "k.pem")
        lockouts = {}
        counters = []
        for name, index in (("chain", 0x018C0A29), ("counter", 0x018C0A31)):
            define_counter(tcti=tcti, index=index)
            real = load_monotonic(f"tpm:nv={index:#010x};tcti={tcti}")
            counters.append(real)
            counter = _Sec29(real) if name == "counter" else real      # sec29's path: no extend
            log = AuditLog(tmp / f"{name}.jsonl", key, counter=counter, counted=LOCKOUT_EVENTS)
            lockouts[name] = Lockout(S, path=tmp / f"{name}.json", audit=log, tpm=counter, terminal_key="terminal:t")
        plain = AuditLog(tmp / "none.jsonl", key, counted=LOCKOUT_EVENTS)
        lockouts["none"] = Lockout(S, path=tmp / "none.json", audit=plain, terminal_key="terminal:t")
        conn = counters[0].conn
        counting = conn.esapi = _Counting(conn.esapi)
        for i in range(N):
            for name, lockout in lockouts.items():
                counting.label = name if i else "first"       # (the first strike advances a fresh counter first)
                t0 = time.perf_counter()
                lockout.fail("terminal:t", f"subject:{i:04x}")
                times[name].append((time.perf_counter() - t0) * 1000)
        conn.esapi = counting.esapi
        per = {name: counting.calls[name] / (N - 1) for name in ("chain", "counter")}
        for lockout in lockouts.values():
            assert lockout.audit is not None
            lockout.audit.close()
        for counter in counters:
            counter.close()
        anchor_rows = _anchor_rows(tcti, tmp, key) + _history_rows(tmp)
    med = {name: statistics.median(v) for name, v in times.items()}
    return anchor_rows + [
        {"name": "strike (2 counted entries), TPM counter + chain (sec30), swtpm", "value": med["chain"], "unit": "ms",
         "reference": med["counter"], "ratio": med["chain"] / med["counter"],
         "reference_name": "the same with the counter only (sec29)", "tpm_commands": per["chain"],
         "reference_tpm_commands": per["counter"]},
        {"name": "strike (2 counted entries), no TPM", "value": med["none"], "unit": "ms"},
    ]


def _anchor_rows(tcti: str, tmp: Path, key) -> list[dict]:
    """sec31: the anchor with the counter and chain certified against the same without; the server's check of them
    against its check of the quote."""
    import os

    from agent.purpose import Purpose
    from agent.security.tpm import counter_registration, enrol, load_attestor
    from agent.uplink.probe import build_header
    from hil.ingest.attestation import AttestationPolicy, WitnessStore, check_counter, check_quote
    from hil.ingest.redis_store import RedisStore
    from hil.ingest.store import MemoryStore
    from hil.redisproc import start_redis

    index = 0x018C0A41
    define_counter(tcti=tcti, index=index)
    e = enrol(tmp, tcti=tcti, pcrs="sha256:0,7")
    policy = AttestationPolicy.from_registration({**e.registration, **counter_registration(tcti=tcti, index=index)})
    ak = load_attestor(f"tpm:key={e.attestation};tcti={tcti}")
    counter = load_monotonic(f"tpm:nv={index:#010x};tcti={tcti}")
    log = AuditLog(tmp / "anchor.jsonl", key, counter=counter, counted=LOCKOUT_EVENTS)
    times: dict[str, list[float]] = {"certified": [], "plain": [], "check_counter": [], "check_quote": [],
                                     "witness_memory": [], "witness_redis": []}
    redis_proc = start_redis(tmp / "redis")
    stores = {"witness_memory": WitnessStore(MemoryStore()),
              "witness_redis": WitnessStore(RedisStore.from_url(redis_proc.url, prefix="bench:"))}
    held = None
    try:
        for i in range(N // 3):
            for name in ("certified", "plain"):
                log.record("lockout_strike", key=f"subject:{i:04x}", failures=1)
                nonce = os.urandom(32)
                log.certify = (lambda n: ak.certify_counter(n, counter)) if name == "certified" else None
                t0 = time.perf_counter()
                anchor = log.anchor(nonce)
                times[name].append((time.perf_counter() - t0) * 1000)
            header = build_header(terminal_id="t", session_id="s", counter=1, nonce=nonce, server_key_id="k",
                                  suite="x25519", signer=key, purpose=Purpose.VERIFY, audit_anchor=anchor,
                                  quote=ak.quote(nonce))
            header.audit_anchor.tpm_certify.extend(ak.certify_counter(nonce, counter))
            checks: list[tuple[str, Callable[[], Any]]] = [
                ("check_counter", functools.partial(check_counter, policy, header, held)),
                ("check_quote", functools.partial(check_quote, policy, header)),
                *((n, functools.partial(w.check, "t", policy, header)) for n, w in stores.items())]
            for name, check in checks:
                t0 = time.perf_counter()
                got = check()
                times[name].append((time.perf_counter() - t0) * 1000)
                if name == "check_counter":
                    held = got
    finally:
        stores["witness_redis"].store.close()
        redis_proc.stop()
        log.close()
        ak.close()
        counter.close()
    med = {name: statistics.median(v) for name, v in times.items()}
    return [
        {"name": "anchor with counter + chain NV_Certify by the AK (sec31), swtpm", "value": med["certified"],
         "unit": "ms", "reference": med["plain"], "ratio": med["certified"] / med["plain"],
         "reference_name": "the same anchor without (sec30)"},
        {"name": "server: check of the two NV certifications (sec31)", "value": med["check_counter"], "unit": "ms",
         "reference": med["check_quote"], "ratio": med["check_counter"] / med["check_quote"],
         "reference_name": "its check of the probe's quote"},
        *({"name": f"server: the same check with the witness in the {where} store, compare-and-set (witness31)",
           "value": med[f"witness_{where}"], "unit": "ms", "reference": med["check_counter"],
           "ratio": med[f"witness_{where}"] / med["check_counter"],
           "reference_name": "check_counter with the witness held passed in (sec31)"}
          for where in ("memory", "redis")),
    ]


def _history_rows(tmp: Path) -> list[dict]:
    """hist31: one witness update (read, ``Witness.load``, ``after``, ``dump``, compare-and-set) on Redis with a full
    history against one with a single count held; the record's size."""
    import os

    from hil.ingest.attestation import WITNESS_HISTORY, ClockInfo, Witness
    from hil.ingest.redis_store import RedisStore
    from hil.redisproc import start_redis

    redis_proc = start_redis(tmp / "redis-history")
    store = RedisStore.from_url(redis_proc.url, prefix=f"hist{os.urandom(4).hex()}:")
    times: dict[str, list[float]] = {"full": [], "one": []}
    start = 10**6                                        # a terminal's count after years of strikes
    seed = {"full": WITNESS_HISTORY, "one": 1}
    try:
        for name, n in seed.items():
            held: Witness | None = None
            for c in range(start - n, start):
                held = Witness(c, os.urandom(32), ClockInfo(c, 1, 0, True)).after(held)
            assert held is not None and len(held.history) == n and store.swap_witness(name, None, held.dump())
        size = len(store.witness("full") or b"")
        for i in range(N):
            for name in seed:
                w = Witness(start + i, os.urandom(32), ClockInfo(start + i, 1, 0, True))
                t0 = time.perf_counter()
                raw = store.witness(name)
                held = Witness.load(raw) if raw is not None else None
                assert store.swap_witness(name, raw, w.after(held).dump())
                times[name].append((time.perf_counter() - t0) * 1000)
        assert len(Witness.load(store.witness("full") or b"").history) == WITNESS_HISTORY
    finally:
        store.close()
        redis_proc.stop()
    med = {name: statistics.median(v) for name, v in times.items()}
    return [
        {"name": f"server: witness record update with a full history ({WITNESS_HISTORY} counts) on Redis (hist31)",
         "value": med["full"], "unit": "ms", "reference": med["one"], "ratio": med["full"] / med["one"],
         "reference_name": "the same with one count held (witness31's record)", "record_bytes": size},
    ]
