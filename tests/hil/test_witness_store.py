"""The server's TPM witness (sec31's last certified count and chain per terminal) held in the store the servers share
(witness31), on a real, private redis-server (``redis_url``) and a real software TPM (swtpm): a restarted server or
another host checks the next probe against it, two hosts' checks racing never move it back (compare-and-set), a
record that is not the server's is refused on read, and the certifications' clock info must not go back
(``NV_CLOCK``)."""

from __future__ import annotations

import json
import uuid

import pytest
import redis

from hil.ingest.attestation import (
    MAX_WITNESS,
    WITNESS_HISTORY,
    ClockInfo,
    CounterAttestationFailed,
    Witness,
    WitnessStore,
    WitnessUnreadable,
    check_clock,
)
from hil.ingest.redis_store import RedisStore
from hil.ingest.store import MemoryStore, StoreUnavailable
from tests.helpers.swtpm import on_swtpm
from tests.hil.test_counter_attestation import Kiosk

TERMINAL = "kiosk-1"


def _host(redis_url: str, prefix: str) -> WitnessStore:
    """One server host's view of the shared store: its own Redis client."""
    return WitnessStore(RedisStore.from_url(redis_url, prefix=prefix))


@pytest.fixture
def prefix() -> str:
    return f"wit{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def kiosk(tmp_path, redis_url, prefix):
    with on_swtpm(lambda tcti: Kiosk(tmp_path, tcti)) as k:
        k.server = _host(redis_url, prefix)
        yield k


def test_a_restarted_server_and_another_host_check_against_the_witness_held(kiosk, redis_url, prefix):
    kiosk.strike(2)
    w = kiosk.submit()
    assert w is not None and w.clock is not None and w.count == kiosk.counter.count()
    kiosk.server.store.close()
    kiosk.server = _host(redis_url, prefix)                 # the server restarted (a new process, a new client)
    assert kiosk.server.held(TERMINAL) == w                 # before witness31: None, the next probe taken as first
    assert kiosk.server.cli_witness(TERMINAL) == [w.cli()]
    # A witness held at a clock later than the TPM's now, in the same epoch: this probe's certification is not a
    # later one than the witness (the check a restart forgot before, with the count and chain ones).
    ahead = Witness(w.count, w.chain, ClockInfo(w.clock.clock + 10**9, w.clock.reset, w.clock.restart, True))
    assert kiosk.server.store.swap_witness(TERMINAL, w.dump(), ahead.dump())
    other = _host(redis_url, prefix)                        # another host of the fleet
    kiosk.server = other
    assert kiosk.refused() == "NV_CLOCK"
    assert other.held(TERMINAL) == ahead                    # a refusal writes nothing
    assert other.store.swap_witness(TERMINAL, ahead.dump(), w.dump())
    kiosk.strike()
    w2 = kiosk.submit()
    assert w2 is not None and w2.count == w.count + 1 and w2.clock.clock >= w.clock.clock
    assert _host(redis_url, prefix).held(TERMINAL) == w2


class _Interleaved:
    """A store through which one host's compare-and-set runs only after ``first`` (the other host's whole check)."""

    def __init__(self, store, first):
        self.store, self.first = store, first

    def witness(self, terminal_id):
        return self.store.witness(terminal_id)

    def swap_witness(self, terminal_id, expected, new, drops=None, drops_lo=None):
        if self.first is not None:
            first, self.first = self.first, None
            first()
        return self.store.swap_witness(terminal_id, expected, new, drops, drops_lo)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_two_hosts_racing_two_probes_of_one_terminal_never_move_the_witness_back(tmp_path, redis_url, prefix, kind):
    shared = MemoryStore() if kind == "memory" else None
    with on_swtpm(lambda tcti: Kiosk(tmp_path, tcti)) as k:
        def host() -> WitnessStore:
            return WitnessStore(shared) if shared is not None else _host(redis_url, prefix)
        k.strike()
        early = k.probe()                                    # certified at count 1
        k.strike()
        late = k.probe()                                     # certified at count 2, later
        b = host()
        a = host()
        # Host A checks the earlier probe against nothing held; before its write, host B checks and holds the later.
        a.store = _Interleaved(a.store, lambda: b.check(TERMINAL, k.policy, late))
        with pytest.raises(CounterAttestationFailed) as exc:
            a.check(TERMINAL, k.policy, early)
        assert exc.value.check == "NV_BACK"                  # checked again against B's witness, not written over it
        held = host().held(TERMINAL)
        assert held is not None and held.count == 2
        # The other order: A checks the later probe while B holds the earlier one first; A's write lands after.
        k.strike()
        early = k.probe()                                    # count 3
        k.strike()
        late = k.probe()                                     # count 4
        a.store = _Interleaved(a.store.store, lambda: b.check(TERMINAL, k.policy, early))
        assert a.check(TERMINAL, k.policy, late).count == 4
        assert host().held(TERMINAL).count == 4


def test_a_witness_record_that_is_not_the_server_s_is_refused_on_read(redis_url, prefix):
    admin = redis.Redis.from_url(redis_url)
    host = _host(redis_url, prefix)
    good = Witness(3, b"\x11" * 32, ClockInfo(5000, 2, 0, True))
    assert host.store.swap_witness(TERMINAL, None, good.dump())
    assert not host.store.swap_witness(TERMINAL, None, good.dump())          # not what it read: nothing written
    assert Witness.load(admin.get(f"{prefix}w:{TERMINAL}")) == good
    bad = [b"", b"{", b"[]", b'{"v":2,"count":3,"chain":null,"clock":null}',
           b'{"v":1,"count":-1,"chain":null,"clock":null}', b'{"v":1,"count":true,"chain":null,"clock":null}',
           b'{"v":1,"count":3,"chain":"11","clock":null}',
           b'{"v":1,"count":3,"chain":"' + b"zz" * 32 + b'","clock":null}',
           b'{"v":1,"count":3,"chain":null,"clock":[1,2,3]}',
           b'{"v":1,"count":3,"chain":null,"clock":[1,2,4294967296,1]}',
           b'{"v":1,"count":3,"chain":null,"clock":[1,2,3,2]}', b'{"v":1,"count":3,"chain":null,"clock":null,"x":1}',
           b" " * 600, b"\xff\xfe", b'{"v":true,"count":3,"chain":null,"clock":null}',
           _v2(3, "11" * 32, [[3, "22" * 32]]),                             # the history's last is not the witness
           _v2(3, "11" * 32, [[3, "11" * 32], [2, "22" * 32]]),             # counts not rising
           _v2(3, "11" * 32, [[2, "22" * 32]]),                             # the witness missing from it
           _v2(3, None, [[4, "22" * 32]]),                                  # a count above the witness's
           _v2(3, "11" * 32, [[3, "11" * 32, 0]]), _v2(3, "11" * 32, [[3, "AB" * 32]]),
           _v2(3, "11" * 32, {"3": "11" * 32}),
           _v2(300, "11" * 32, [[n, "11" * 32] for n in range(WITNESS_HISTORY + 1)])]    # beyond the bound
    for raw in bad:
        admin.set(f"{prefix}w:{TERMINAL}", raw)
        with pytest.raises(WitnessUnreadable):
            host.held(TERMINAL)
        assert isinstance(WitnessUnreadable("x"), StoreUnavailable)          # the server's STORE_UNAVAILABLE
    admin.set(f"{prefix}w:{TERMINAL}", Witness(3, None).dump())              # (sec31's witness: no clock yet)
    assert host.held(TERMINAL) == Witness(3, None, None)
    # a witness31 record (v1, no history): read with its own count and chain as the history's start
    admin.set(f"{prefix}w:{TERMINAL}", b'{"v":1,"count":3,"chain":"' + b"11" * 32 + b'","clock":null}')
    assert host.cli_witness(TERMINAL) == ["3:" + "11" * 32]


def _v2(count: int, chain: str | None, history: object) -> bytes:
    return json.dumps({"v": 2, "count": count, "chain": chain, "clock": None, "history": history}).encode()


def test_the_clock_rule():
    held = ClockInfo(10_000, 7, 1, True)
    later = ClockInfo(10_500, 7, 1, True)
    assert check_clock(None, [later]) == later
    assert check_clock(held, []) == held                                      # nothing certified: the held one kept
    assert check_clock(held, [ClockInfo(10_200, 7, 1, True), later]) == later  # the latest of the probe's two
    assert check_clock(held, [ClockInfo(10_000, 7, 1, True)]) == ClockInfo(10_000, 7, 1, True)
    refused = [
        [ClockInfo(9_999, 7, 1, True)],                  # back within one epoch
        [ClockInfo(9_999, 7, 1, False)],                 # ... whatever safe says
        [ClockInfo(4_000, 8, 0, True)],                  # back across a reset the TPM calls safe
        [ClockInfo(10_600, 8, 0, True), later],          # two epochs in one probe
    ]
    for got in refused:
        with pytest.raises(CounterAttestationFailed) as exc:
            check_clock(held, got)
        assert exc.value.check == "NV_CLOCK" and str(exc.value).startswith("NV_CLOCK")
    # A reset after a shutdown that did not save the clock: the clock may be behind what was reported, and the TPM
    # says so (safe cleared): taken, and held from there.
    unsaved = ClockInfo(9_000, 8, 0, False)
    assert check_clock(held, [unsaved]) == unsaved


def test_the_history_keeps_the_first_witness_at_each_count_and_the_last_bound_of_them():
    store = MemoryStore()
    host = WitnessStore(store)
    held = None
    for n in range(1, WITNESS_HISTORY + 11):                # 10 counts beyond the bound
        w = Witness(n, n.to_bytes(32, "big"), ClockInfo(1000 * n, 1, 0, True)).after(held)
        assert store.swap_witness(TERMINAL, held.dump() if held else None, w.dump())
        held = host.held(TERMINAL)
        if n == 5:                                           # the same count at a later clock: the history unchanged
            later = Witness(5, held.chain, ClockInfo(5500, 1, 0, True)).after(held)
            assert later.history == held.history
    assert held is not None and len(held.history) == WITNESS_HISTORY
    assert [n for n, _ in held.history] == list(range(11, WITNESS_HISTORY + 11))   # the lowest counts went
    cli = host.cli_witness(TERMINAL)
    assert cli[-1] == held.cli() and cli[0] == f"11:{(11).to_bytes(32, 'big').hex()}"
    assert len(held.dump()) <= MAX_WITNESS                   # the bound's record fits what a read accepts
    assert Witness(3, None).after(None).history == ()        # a chain never written: nothing to witness


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_counts_dropped_from_the_history_before_the_bank_fetched_them_are_flagged(kind, request, prefix, caplog):
    # hist31's bound, read as root (sec32): after rewriting the chain he has WITNESS_HISTORY more counts certified,
    # and the last pre-rewrite witness leaves the record, the proof with it, silently. The server cannot stop the
    # counts (each is a probe under a nonce it issued), but it knows what the bank has fetched (cli_witness): a count
    # dropped above that is flagged WITNESS_UNFETCHED in the same compare-and-set (the probe is not refused).
    import logging
    store = MemoryStore() if kind == "memory" else RedisStore.from_url(request.getfixturevalue("redis_url"),
                                                                     prefix=prefix)
    host, flagged = WitnessStore(store), []
    try:
        def count_to(last: int) -> None:
            raw = store.witness(TERMINAL)
            held = Witness.load(raw) if raw is not None else None
            for n in range(held.count + 1 if held else 1, last + 1):
                w = Witness(n, n.to_bytes(32, "big"), ClockInfo(1000 * n, 1, 0, True))
                assert host.advance(TERMINAL, raw, held, w, flagged.append)
                raw = store.witness(TERMINAL)
                held = Witness.load(raw)

        count_to(WITNESS_HISTORY)                                   # full, nothing dropped yet
        assert flagged == []
        with caplog.at_level(logging.WARNING, logger="hil.ingest.attestation"):
            count_to(WITNESS_HISTORY + 1)                           # count 1 dropped, never fetched
        assert flagged == [f"counts 1-1 certified and dropped from the witness history (the last {WITNESS_HISTORY}) "
                           "before the bank fetched them: a rewrite of the log up to them can no longer be proven"]
        assert "WITNESS_UNFETCHED" in caplog.text
        assert len(host.cli_witness(TERMINAL)) == WITNESS_HISTORY   # the bank fetches: up to this count
        count_to(2 * WITNESS_HISTORY + 1)                           # every count it drops now was fetched
        assert len(flagged) == 1
        count_to(2 * WITNESS_HISTORY + 2)                           # the first one it had not
        assert len(flagged) == 2 and flagged[-1].startswith(f"counts {WITNESS_HISTORY + 2}-{WITNESS_HISTORY + 2} ")
        # The fetched count is never lowered, and a lost compare-and-set writes and flags nothing.
        store.note_witness_fetched(TERMINAL, 3)
        raw = store.witness(TERMINAL)
        held = Witness.load(raw)
        n = held.count + 1
        assert not host.advance(TERMINAL, b"not what is held", held, Witness(n, n.to_bytes(32, "big")), flagged.append)
        assert store.witness(TERMINAL) == raw and len(flagged) == 2
        host.cli_witness(TERMINAL)
        assert host.advance(TERMINAL, raw, held, Witness(n, n.to_bytes(32, "big")), flagged.append)
        assert len(flagged) == 2
    finally:
        store.close()


def _count_to(host: WitnessStore, last: int) -> None:
    """The terminal's witness advanced one certified count at a time up to ``last`` on ``host``."""
    raw = host.store.witness(TERMINAL)
    held = Witness.load(raw) if raw is not None else None
    for n in range(held.count + 1 if held else 1, last + 1):
        assert host.advance(TERMINAL, raw, held, Witness(n, n.to_bytes(32, "big"), ClockInfo(1000 * n, 1, 0, True)))
        raw = host.store.witness(TERMINAL)
        assert raw is not None
        held = Witness.load(raw)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_an_unfetched_drop_stays_flagged_in_the_shared_store_for_every_server(kind, request, prefix):
    # sec32 raised WITNESS_UNFETCHED once, in the memory of the server whose compare-and-set dropped the counts
    # (AnchorStore.flags): a second server, or the same one restarted, knew nothing of it, and the bank asking there
    # saw no flag. Now the compare-and-set that returns 2 notes the dropped counts in the same step in the shared
    # store (Redis "wu:<terminal>", beside "w:"): every server reads it (WitnessStore.unfetched), the bank's fetch does
    # not clear it (the evidence is gone for good), and further drops widen it.
    redis_url = request.getfixturevalue("redis_url") if kind == "redis" else None
    first = MemoryStore() if redis_url is None else RedisStore.from_url(redis_url, prefix=prefix)
    second = first if redis_url is None else RedisStore.from_url(redis_url, prefix=prefix)   # another server
    a, b = WitnessStore(first), WitnessStore(second)
    try:
        _count_to(a, WITNESS_HISTORY)
        assert a.unfetched(TERMINAL) is None and b.unfetched(TERMINAL) is None
        t0 = first.now_ms()
        _count_to(a, WITNESS_HISTORY + 2)                           # counts 1 and 2 dropped, never fetched (two probes)
        u = b.unfetched(TERMINAL)                                   # read on the other server
        assert u is not None and (u.lo, u.hi, u.times) == (1, 2, 2)
        assert t0 - 1000 <= u.first_ms <= u.last_ms <= second.now_ms() + 1000
        assert len(b.cli_witness(TERMINAL)) == WITNESS_HISTORY      # the bank fetches (on the other server) ...
        assert b.unfetched(TERMINAL) == u                           # ... and the flag stays
        _count_to(b, 2 * WITNESS_HISTORY + 3)                        # drops up to the fetch are no news; one past it is
        got = a.unfetched(TERMINAL)
        assert got is not None and (got.lo, got.hi, got.times) == (1, 2 * WITNESS_HISTORY + 3 - WITNESS_HISTORY, 3)
        if redis_url is not None:
            # A server process started afresh (not this test's clients) reads the same flag.
            import subprocess
            import sys
            code = ("import sys; from hil.ingest.attestation import WitnessStore; from hil.ingest.redis_store import "
                    "RedisStore; u = WitnessStore(RedisStore.from_url(sys.argv[1], prefix=sys.argv[2])).unfetched("
                    "sys.argv[3]); print(u.lo, u.hi, u.times)")
            out = subprocess.run([sys.executable, "-c", code, redis_url, prefix, TERMINAL], capture_output=True,
                                 text=True, timeout=60, check=True)
            assert out.stdout.split() == ["1", str(WITNESS_HISTORY + 3), "3"]
            # A record this server does not write: refused.
            redis.Redis.from_url(redis_url).set(f"{prefix}wu:{TERMINAL}", b"1 2 x")
            with pytest.raises(WitnessUnreadable):
                b.unfetched(TERMINAL)
    finally:
        first.close()
        second.close()


def test_the_unfetched_record_stays_readable_when_redis_s_clock_steps_back_and_a_foreign_one_moves_no_witness(
        tmp_path, prefix):
    # review33b (1): the compare-and-set wrote the record's last time from Redis's TIME as it read it; a step back of
    # Redis's clock (NTP, a failover to a replica behind) made last < first, which the reader refuses: the flag
    # unreadable for good. The last time is never below the one held. (5): the script set the witness before it read
    # the unfetched record: one of another type raised after the witness moved (a raw ResponseError, UNKNOWN), a
    # malformed one was replaced silently. Now every read and check comes first: WitnessUnreadable, nothing moved.
    from hil.redisproc import start_redis
    proc = start_redis(tmp_path / "clocked", clock=True)
    assert proc.clock is not None
    store = RedisStore.from_url(proc.url, prefix=prefix)
    w, r = WitnessStore(store), redis.Redis.from_url(proc.url)
    try:
        _count_to(w, WITNESS_HISTORY + 1)
        u = w.unfetched(TERMINAL)
        assert u is not None
        proc.clock.shift(-60_000)
        _count_to(w, WITNESS_HISTORY + 2)
        got = w.unfetched(TERMINAL)
        assert got is not None and (got.times, got.first_ms, got.last_ms) == (2, u.first_ms, u.last_ms)
        proc.clock.real()
        for foreign in (b"1 999 7 100 50x", b"5 1 1 1 1", b"1 2 1 200 100", {"a": "b"}):
            r.delete(f"{prefix}wu:{TERMINAL}")
            if isinstance(foreign, dict):
                r.hset(f"{prefix}wu:{TERMINAL}", mapping=foreign)
            else:
                r.set(f"{prefix}wu:{TERMINAL}", foreign)
            before = store.witness(TERMINAL)
            with pytest.raises(WitnessUnreadable):
                _count_to(w, Witness.load(before or b"").count + 1)
            assert store.witness(TERMINAL) == before                # the witness did not move
            if not isinstance(foreign, dict):
                assert r.get(f"{prefix}wu:{TERMINAL}") == foreign   # nor was the record replaced
    finally:
        store.close()
        proc.stop()
