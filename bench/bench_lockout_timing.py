"""LOCKED_OUT's time, by the key at its limit (review 11): whether a refusal's duration says which key.

A refusal charges nothing, so a rooted terminal at its limit may ask without end and average the
reply times. The Redis issue script returned at the first key at its limit (terminal, the subject
across terminals, the subject at this terminal, in that order), so a refusal on a later key did
more work. Rows: the median time of ``RedisStore.issue_nonce`` refused on the subject's key at this
terminal, against the same call refused on the terminal's key (the reference), interleaved in one
process on a private redis-server (the same number of keys and arguments in both calls).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from hil.ingest.limits import FailureLimits, subject_key
from hil.ingest.redis_store import RedisStore
from hil.ingest.store import NonceRecord, StoreLimits
from hil.redisproc import start_redis

N = 4000


def run() -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-lockout-"))
    rp = start_redis(tmp / "redis")
    try:
        store = RedisStore.from_url(rp.url, StoreLimits(), prefix=f"bl{uuid.uuid4().hex[:6]}:")
        limits = FailureLimits(5, 600, max_terminal_failures=15, max_subject_failures=10)
        key, now = os.urandom(32), int(time.time() * 1000)

        def issue(terminal: str, ref: str, session: str):
            sub = subject_key(ref, key)
            rec = NonceRecord(terminal, session, 2, "k", now, now + 60_000, subject=sub)
            return store.issue_nonce(os.urandom(32), rec, now, limits.charge(terminal, sub), os.urandom(32))

        for k in range(15):
            issue("T1", f"cust-{k}", f"a{k}")          # T1: its own key at its limit
        for k in range(5):
            issue("T2", "victim", f"b{k}")             # T2: the victim at this terminal at its limit
        assert issue("T1", "cust-x", "z").locked == "terminal:T1"
        assert str(issue("T2", "victim", "z").locked).endswith(":terminal:T2")
        times: dict[str, list[float]] = {"terminal": [], "subject_at_terminal": []}
        for _ in range(N):
            for name, (t, who) in (("terminal", ("T1", "cust-x")), ("subject_at_terminal", ("T2", "victim"))):
                t0 = time.perf_counter()
                issue(t, who, "z")
                times[name].append((time.perf_counter() - t0) * 1e6)
        store.close()
    finally:
        rp.stop()
    ref = statistics.median(times["terminal"])
    value = statistics.median(times["subject_at_terminal"])
    return [{"name": "LOCKED_OUT on the subject-at-terminal key (issue_nonce, Redis)", "value": value, "unit": "us",
             "reference": ref, "ratio": value / ref, "reference_name": "LOCKED_OUT on the terminal's key",
             "difference_us": value - ref}]
