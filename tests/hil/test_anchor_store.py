"""The server's audit anchors and their flags held in the store the servers share (sec34; ``hil/ingest/anchors.py``),
on a real, private redis-server: a second server behind the balancer, or one restarted, checks a terminal's next
anchor against what the first held, two racing never move it back, the flags are every server's, and a record the
server does not write is refused with nothing written."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
import redis

from agent.purpose import Purpose
from agent.security.audit import AuditLog
from agent.security.keys import generate_file_key
from agent.uplink.probe import build_header
from hil.ingest.anchors import AnchorStore, AnchorUnreadable, HeldAnchor
from hil.ingest.redis_store import RedisStore

TERMINAL = "kiosk-a"


@pytest.fixture
def prefix() -> str:
    return f"anc{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def terminal(tmp_path):
    """The terminal's signer, its audit log of 12 entries and ``header(anchor)``, a probe header carrying it."""
    signer = generate_file_key(tmp_path / "terminal.pem")
    log = AuditLog(tmp_path / "audit.jsonl", signer, checkpoint_every=5)
    for i in range(12):
        log.record("result", n=i)

    def header(anchor, probe_id: str = "p"):
        h = build_header(terminal_id=TERMINAL, session_id="s", counter=1, nonce=b"\0" * 32, server_key_id="k",
                         suite="x25519", signer=signer, purpose=Purpose.VERIFY, audit_anchor=anchor)
        h.probe_id = probe_id
        return h
    yield signer, log, header
    log.close()


def _server(url: str, prefix: str, **kw) -> AnchorStore:
    """One server process's anchors: its own Redis client on the shared store."""
    return AnchorStore(RedisStore.from_url(url, prefix=prefix), **kw)


def _anchor_args(anchors: list[str]) -> list[str]:
    """``audit-verify``'s arguments for every anchor ``cli_anchor`` returned."""
    return [f"--anchor={a}" for a in anchors]


def _audit_verify(path, signer, tmp_path, anchors: list[str]) -> subprocess.CompletedProcess:
    pub = tmp_path / "t.pub.pem"
    pub.write_bytes(signer.public_key_pem())
    return subprocess.run([sys.executable, "-m", "agent.cli", "audit-verify", str(path), "--public-key", str(pub),
                           *_anchor_args(anchors)], capture_output=True, text=True, timeout=60)


def _held_then_cut(terminal, tmp_path, redis_url, prefix):
    """Two servers on one store; server A holds the terminal's anchor at its log's end; root then cuts the log
    back to its first 6 entries. Returns the servers, the anchor A held, the cut log and its path."""
    signer, log, header = terminal
    a, b = _server(redis_url, prefix), _server(redis_url, prefix)
    first = log.anchor()
    assert a.observe(TERMINAL, header(first, "p1"), signer.public_key()) is None
    log.close()
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:6]))
    return a, b, first, AuditLog(path, signer, checkpoint_every=5), path


def test_a_log_cut_back_and_sent_to_a_second_server_is_flagged_there_and_audit_verify_proves_the_cut(
        terminal, tmp_path, redis_url, prefix):
    # Before sec34, each server held anchors in its own memory: the terminal's root cut the log back past an anchor
    # server A held and sent the next probe to server B (the balancer's choice, or his, by timing his retries), and B
    # took the cut log's anchor as the first: no flag anywhere B's operator looks, and B's cli_anchor was the cut
    # log's own, so `audit-verify --anchor` with it passed the cut log (exit 0). Now B checks against what A held.
    signer, log, header = terminal
    a, b, first, cut, path = _held_then_cut(terminal, tmp_path, redis_url, prefix)
    cut.record("result", n=99)
    assert b.observe(TERMINAL, header(cut.anchor(), "p2"), signer.public_key()) == "ROLLED_BACK"
    cut.close()
    assert b.cli_anchor(TERMINAL) == a.cli_anchor(TERMINAL) == [f"{first.seq}:{first.head}"]   # nothing moved back
    # The flag is every server's: the bank asking A (or a restarted server) sees B's flag, with its probe.
    restarted = _server(redis_url, prefix)
    got = restarted.flagged(TERMINAL)
    assert set(got) == {"ROLLED_BACK"} and got["ROLLED_BACK"].times == 1 and got["ROLLED_BACK"].first[0] == "p2"
    assert a.flagged(TERMINAL) == got and not a.flags         # (A's own memory saw nothing)
    pub = tmp_path / "t.pub.pem"
    pub.write_bytes(signer.public_key_pem())
    out = subprocess.run([sys.executable, "-m", "agent.cli", "audit-verify", str(path), "--public-key", str(pub),
                          *_anchor_args(restarted.cli_anchor(TERMINAL))], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "error[AUD_TRUNCATED]" in out.stderr, out.stdout + out.stderr
    # The v2 mark is shared too: after a v2 anchor on A, B refuses a v1-signed count (FORGED), as A would.
    import dataclasses

    from agent.security.audit import checkpoint_message
    held = restarted.held(TERMINAL)
    assert held is not None and held.v2                       # this terminal signs its anchors the v2 way
    log2 = AuditLog(path.with_name("grown.jsonl"), signer)
    for i in range(20):
        log2.record("x", n=i)
    v1 = dataclasses.replace(log2.anchor(), tpm_count=3)
    v1 = dataclasses.replace(v1, signature=signer.sign(checkpoint_message(v1.seq, v1.head, None)))
    assert b.observe(TERMINAL, header(v1, "p3"), signer.public_key()) == "FORGED"
    log2.close()
    for s in (a, b, restarted):
        s.store.close()


@pytest.mark.parametrize("probe_on_the_cut", [False, True])
def test_a_cut_log_grown_past_the_held_anchor_keeps_the_anchor_it_replaced_and_audit_verify_proves_the_cut(
        terminal, tmp_path, redis_url, prefix, probe_on_the_cut):
    # review34a (p1_regrow, p3_flagged_regrow): root cuts entries 7-12 (his strikes) after server A held entry 12's
    # anchor and writes new entries until the cut log is longer again before the next probe (or after one, flagged
    # ROLLED_BACK). Same log, a later entry: B took it, and only the latest anchor was held, so cli_anchor was the
    # rewritten log's own and audit-verify passed it (exit 0). Now the replaced anchor is kept (ah:) and returned.
    signer, log, header = terminal
    a, b, first, cut, path = _held_then_cut(terminal, tmp_path, redis_url, prefix)
    if probe_on_the_cut:
        cut.record("result", n=999)
        assert b.observe(TERMINAL, header(cut.anchor(), "pc"), signer.public_key()) == "ROLLED_BACK"
    for i in range(8):
        cut.record("result", n=1000 + i)
    grown = cut.anchor()
    assert grown.seq > first.seq and grown.log_id == first.log_id
    assert b.observe(TERMINAL, header(grown, "p2"), signer.public_key()) is None     # (it extends, as far as B sees)
    cut.close()
    restarted = _server(redis_url, prefix)
    held = restarted.cli_anchor(TERMINAL)
    assert held == [f"{first.seq}:{first.head}", f"{grown.seq}:{grown.head}"]
    out = _audit_verify(path, signer, tmp_path, held)
    assert out.returncode == 2 and "error[AUD_TRUNCATED]" in out.stderr, out.stdout + out.stderr
    assert _audit_verify(path, signer, tmp_path, held[-1:]).returncode == 0       # the latest alone passes the cut
    if probe_on_the_cut:           # the flag names the anchor held, whatever it became since
        rb = restarted.flagged(TERMINAL)["ROLLED_BACK"]
        assert f"entry {first.seq}:{first.head} was anchored before" in rb.first[1]
    else:
        assert restarted.flagged(TERMINAL) == {}
    for s in (a, b, restarted):
        s.store.close()


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_the_anchor_history_keeps_the_oldest_unfetched_and_flags_what_it_cannot_keep_until_the_bank_fetches(
        terminal, redis_url, prefix, kind):
    # The cap (anchor34): a terminal flooding probes must not push the evidence out. With the history full of anchors
    # the bank has not fetched, the oldest stay, the anchor still moves, and the one it replaced is dropped and
    # flagged ANCHOR_UNFETCHED (named in the detail); once the bank fetches (cli_anchor), fetched ones make room.
    from hil.ingest.store import MemoryStore
    signer, log, header = terminal
    store = MemoryStore() if kind == "memory" else RedisStore.from_url(redis_url, prefix=prefix)
    s = AnchorStore(store, history=3)
    seen = []
    for i in range(6):                                   # six anchors: five replaced, three kept
        log.record("result", n=200 + i)
        seen.append(log.anchor())
        want = None if i < 4 else "ANCHOR_UNFETCHED"
        assert s.observe(TERMINAL, header(seen[-1], f"q{i}"), signer.public_key()) == want
    assert [a.seq for a in s.history(TERMINAL)] == [a.seq for a in seen[:3]]
    got = s.flagged(TERMINAL)["ANCHOR_UNFETCHED"]
    assert got.times == 2 and f"entry {seen[3].seq}:{seen[3].head} " in got.first[1] and str(seen[4].seq) in got.last[1]
    fetched = s.cli_anchor(TERMINAL)
    assert fetched == [f"{a.seq}:{a.head}" for a in (*seen[:3], seen[5])]
    for i in range(3):                                   # the fetched make room, oldest first: no flag
        log.record("result", n=300 + i)
        seen.append(log.anchor())
        assert s.observe(TERMINAL, header(seen[-1], f"r{i}"), signer.public_key()) is None
    assert [a.seq for a in s.history(TERMINAL)] == [a.seq for a in seen[5:8]]
    assert s.flagged(TERMINAL)["ANCHOR_UNFETCHED"].times == 2
    store.close()


class _Racing:
    """A store through which one server's compare-and-set runs only after ``first`` (the other server's observe)."""

    def __init__(self, store, first):
        self.store, self.first = store, first

    def __getattr__(self, name):
        return getattr(self.store, name)

    def swap_anchor(self, terminal_id, expected, new, *rest):
        if self.first is not None:
            first, self.first = self.first, None
            first()
        return self.store.swap_anchor(terminal_id, expected, new, *rest)


def test_two_servers_racing_never_move_the_anchor_back_and_each_flag_reason_keeps_its_count(terminal, redis_url,
                                                                                             prefix):
    signer, log, header = terminal
    early = log.anchor()
    for i in range(6):
        log.record("result", n=100 + i)
    late = log.anchor()
    a, b = _server(redis_url, prefix), _server(redis_url, prefix)
    # B takes the later anchor between A's read and A's compare-and-set of the earlier one: A's write fails, A checks
    # again against B's and flags ROLLED_BACK (it did not extend it); the later anchor stays held.
    a._store = _Racing(a.store, lambda: b.observe(TERMINAL, header(late, "late"), signer.public_key()))
    assert a.observe(TERMINAL, header(early, "early"), signer.public_key()) == "ROLLED_BACK"
    assert b.held(TERMINAL).seq == late.seq
    # A terminal without an anchor sends MISSING with every probe: counted under its own reason, it pushes no other
    # flag out (first and latest probe kept).
    for k in range(50):
        assert b.observe(TERMINAL, header(None, f"m{k}"), signer.public_key()) == "MISSING"
    got = a.flagged(TERMINAL)
    assert (got["MISSING"].times, got["MISSING"].first[0], got["MISSING"].last[0]) == (50, "m0", "m49")
    assert got["ROLLED_BACK"].times == 1 and got["ROLLED_BACK"].first[0] == "early"
    assert got["MISSING"].first_ms <= got["MISSING"].last_ms
    a.store.close()
    b.store.close()


def test_records_the_server_does_not_write_are_refused_and_flag_times_never_step_back(terminal, tmp_path, prefix):
    from hil.redisproc import start_redis
    signer, log, header = terminal
    proc = start_redis(tmp_path / "clocked", clock=True)
    assert proc.clock is not None
    r = redis.Redis.from_url(proc.url)
    s = _server(proc.url, prefix)
    try:
        assert s.observe(TERMINAL, header(None, "m0"), signer.public_key()) == "MISSING"
        before = s.flagged(TERMINAL)["MISSING"]
        proc.clock.shift(-3_600_000)                      # Redis's clock steps back an hour (NTP, a failover)
        assert s.observe(TERMINAL, header(None, "m1"), signer.public_key()) == "MISSING"
        after = s.flagged(TERMINAL)["MISSING"]
        assert (after.times, after.first_ms, after.last_ms) == (2, before.first_ms, before.last_ms)
        proc.clock.real()
        a = log.anchor()
        assert s.observe(TERMINAL, header(a), signer.public_key()) is None
        good = r.get(f"{prefix}a:{TERMINAL}")
        assert HeldAnchor.load(good).seq == a.seq
        # A held anchor not this server's (another version, a field too many, a bad head, another type): refused,
        # the probe not checked against nothing, nothing written.
        import json
        doc = json.loads(good)
        for foreign in (json.dumps({**doc, "v": 2}), json.dumps({**doc, "x": 1}), json.dumps({**doc, "head": "zz"}),
                        b"\xff" * 10, {"a": "b"}):
            r.delete(f"{prefix}a:{TERMINAL}")
            if isinstance(foreign, dict):
                r.hset(f"{prefix}a:{TERMINAL}", mapping=foreign)
            else:
                r.set(f"{prefix}a:{TERMINAL}", foreign)
            with pytest.raises(AnchorUnreadable):
                s.observe(TERMINAL, header(a), signer.public_key())
            if not isinstance(foreign, dict):
                assert r.get(f"{prefix}a:{TERMINAL}") == (foreign.encode() if isinstance(foreign, str) else foreign)
        r.set(f"{prefix}a:{TERMINAL}", good)
        # A flag record not this server's: the Lua script refuses before any write; the reader refuses it too.
        for field, value in ((b"MISSING", b"2 9 5"), (b"MISSING", b"x 1 2"), (b"BOGUS", b"1 1 1")):
            r.delete(f"{prefix}af:{TERMINAL}")
            r.hset(f"{prefix}af:{TERMINAL}", mapping={field: value})
            with pytest.raises(AnchorUnreadable):
                s.flagged(TERMINAL)
            if field == b"MISSING":
                with pytest.raises(AnchorUnreadable):
                    s.observe(TERMINAL, header(None), signer.public_key())
                assert r.hgetall(f"{prefix}af:{TERMINAL}") == {field: value}
        # review34a (p2_flags): the script checked only the flagged reason's count, so it wrote to a record the reader
        # refuses (an unknown reason, a bad probe, a leading zero). Now the whole record is checked before any write.
        pair = b'["a",""]'
        for foreign in ({b"BOGUS": b"1 1 1"},
                        {b"MISSING": b"1 1 2", b"MISSING:first": b"junk", b"MISSING:last": b"junk"},
                        {b"MISSING": b"1 1 00", b"MISSING:first": pair, b"MISSING:last": pair},
                        {b"MISSING": b"01 1 2", b"MISSING:first": pair, b"MISSING:last": pair},
                        {b"MISSING": b"0 1 2", b"MISSING:first": pair, b"MISSING:last": pair},
                        {b"MISSING": b"1 1 2", b"MISSING:first": pair},
                        {b"MISSING": b"1 1 2", b"MISSING:first": pair, b"MISSING:last": pair,
                         b"MISSING:other": pair},
                        {b"MISSING": b"1 1 2", b"MISSING:first": b'["a","b","c"]', b"MISSING:last": pair},
                        {b"FORGED": b"1 1 2", b"FORGED:first": pair, b"FORGED:last": b'{"1":"a","2":"b"}'}):
            r.delete(f"{prefix}af:{TERMINAL}")
            r.hset(f"{prefix}af:{TERMINAL}", mapping=foreign)
            with pytest.raises(AnchorUnreadable):
                s.observe(TERMINAL, header(None), signer.public_key())
            assert r.hgetall(f"{prefix}af:{TERMINAL}") == foreign
            with pytest.raises(AnchorUnreadable):
                s.flagged(TERMINAL)
        # A history or fetched mark not this server's: the compare-and-set that would push to it refuses, unmoved.
        r.delete(f"{prefix}af:{TERMINAL}")
        log.record("result", n=500)
        for key, junk in (("ahf", b"x1"), ("ahf", b"007"), ("ah", None)):
            r.delete(f"{prefix}ahf:{TERMINAL}", f"{prefix}ah:{TERMINAL}")
            if junk is None:
                r.set(f"{prefix}ah:{TERMINAL}", b"a string")
            else:
                r.set(f"{prefix}{key}:{TERMINAL}", junk)
            with pytest.raises(AnchorUnreadable):
                s.observe(TERMINAL, header(log.anchor()), signer.public_key())
            assert r.get(f"{prefix}a:{TERMINAL}") == good
        r.delete(f"{prefix}ahf:{TERMINAL}", f"{prefix}ah:{TERMINAL}")
        r.set(f"{prefix}af:{TERMINAL}", b"a string")
        with pytest.raises(AnchorUnreadable):
            s.observe(TERMINAL, header(None), signer.public_key())
        with pytest.raises(AnchorUnreadable):
            s.flagged(TERMINAL)
    finally:
        s.store.close()
        r.close()
        proc.stop()


def test_the_server_s_anchors_are_held_in_its_store_whatever_store_it_is_given(ingest, redis_url, prefix,
                                                                                 monkeypatch):
    # ServerState.anchors reads ServerState.store at each call: a server configured with Redis (or a test or bench
    # that gives the state another store after building it) holds its anchors there, not in a memory of its own.
    state = ingest["state"]
    assert state.anchors.store is state.store
    shared = RedisStore.from_url(redis_url, prefix=prefix)
    monkeypatch.setattr(state, "store", shared)
    assert state.anchors.store is shared
    shared.close()
