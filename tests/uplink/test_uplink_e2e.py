"""Uplink end to end over real sockets: mutual TLS with test certificates (the shared ``ingest``
fixture), a sim capture under the server's challenge, the probe sealed with HPKE and signed, and
every rejection reason."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import drivers
from agent.liveness.challenge import Challenge
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import frameset_digest, judge
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import FramesetReader
from agent.purpose import Purpose
from agent.session.projector import Projector
from agent.session.window import collect
from agent.uplink.client import UplinkRefused, UplinkUnavailable, challenge_names
from agent.uplink.probe import build_payload, seal_probe
from agent.uplink.seal import ServerKey
from proto.capture_agent.v1 import ingest_pb2 as pb
from tests.helpers.live import ATTEMPTS
from tests.helpers.net import refusing_endpoint
from tests.helpers.terminals import CAPS, OTHER_TERMINAL, TERMINAL


def capture(ingest, gate, subject="live", begin=None):
    """A sim session under a fresh server challenge; returns (challenge, sets, judged result). A live
    face judged inconclusive is asked again under a new challenge, as the kiosk app does
    (tests/helpers/live.py)."""
    for _ in range(ATTEMPTS):
        c = ingest["uplink"]()
        ch = begin or c.begin("sess-1", Purpose.VERIFY, capabilities=CAPS)
        cam = drivers.open(f"sim://?realtime=0&seed=21&identity=3&lux=150&subject={subject}")
        with cam:
            challenge = Challenge.from_nonce(ch.nonce, ch.frames, kinds=challenge_names(ch.challenges))
            sets = collect(FramesetReader(cam), ch.frames, challenge, Projector(cam), per_frameset=True)
        r = judge(sets, gate, VerdictThresholds(), challenge=challenge)
        if subject != "live" or begin is not None or r.verdict.verdict != "inconclusive":
            break
        c.close()
    return c, ch, sets, r


def probe(ingest, ch, sets, r, counter=None, signer=None, session_id="sess-1"):
    best = {"index": r.best_index, "bbox": list(r.best_face.detection.bbox),
            "landmarks": r.best_face.mesh.landmarks.tolist()}
    payload = build_payload(align_frameset(sets[r.best_index]), best, quality={"ok": True},
                            liveness=r.verdict.to_dict(),
                            device=drivers.open("sim://?realtime=0").info, timings_ms={"capture": 1.0},
                            frame_digest=frameset_digest(sets[r.best_index]), evidence=r.evidence)
    counter = counter if counter is not None else ingest["counter"].next()
    return seal_probe(ch, payload, terminal_id=TERMINAL, session_id=session_id, counter=counter,
                      signer=signer or ingest["signer"], purpose=Purpose.VERIFY).message


def header_of(sealed) -> pb.ProbeHeader:
    h = pb.ProbeHeader()
    h.ParseFromString(sealed.header)
    return h


def test_live_probe_is_accepted_and_retries_are_idempotent(ingest, gate):
    c, ch, sets, r = capture(ingest, gate)
    assert r.verdict.verdict == "live"
    sealed = probe(ingest, ch, sets, r)
    pid = header_of(sealed).probe_id
    rec = c.submit(sealed, pid)
    assert rec.accepted and rec.reason == "OK" and rec.liveness_verdict == "live"
    again = c.submit(sealed, pid)                            # a retry after a lost reply
    assert again == rec
    mine = [a for a in ingest["state"].accepted if a["probe_id"] == pid]      # the server is shared
    assert len(mine) == 1 and mine[0]["terminal_id"] == TERMINAL and mine[0]["purpose"] == "VERIFY"


def test_hybrid_post_quantum_suite(ingest, gate):
    st = ingest["state"]
    st.current_key_id = ingest["hybrid"].key_id
    try:
        c, ch, sets, r = capture(ingest, gate)
        assert ch.hpke_suite == "mlkem768-x25519" and len(ch.server_public_key) == 1216
        sealed = probe(ingest, ch, sets, r)
        assert c.submit(sealed, header_of(sealed).probe_id).accepted
    finally:
        st.current_key_id = ingest["key"].key_id


def test_replayed_nonce_with_a_new_probe_id_is_rejected(ingest, gate):
    c, ch, sets, r = capture(ingest, gate)
    first = probe(ingest, ch, sets, r)
    assert c.submit(first, header_of(first).probe_id).accepted
    second = probe(ingest, ch, sets, r)                       # same nonce, new probe id
    rec = c.submit(second, header_of(second).probe_id)
    assert not rec.accepted and rec.reason == "REPLAYED"


def test_presentation_attack_is_not_live(ingest, gate):
    c, ch, sets, r = capture(ingest, gate, subject="print")
    assert r.best_index is not None
    sealed = probe(ingest, ch, sets, r)
    rec = c.submit(sealed, header_of(sealed).probe_id)
    assert not rec.accepted and rec.reason == "NOT_LIVE"


@pytest.fixture(scope="module")
def live_session(ingest, gate):
    return capture(ingest, gate)


def fresh(ingest, live_session, **kw):
    """A correctly sealed probe under a fresh (unused) nonce, reusing one captured session. Its own
    session id: a BeginCapture repeating the captured session's id while its nonce is unused is that
    session asked again and gets the same nonce back (run alone, a test then sealed under the very
    nonce the liveness report names)."""
    c, _, sets, r = live_session
    sid = f"sess-{uuid.uuid4().hex[:12]}"
    ch = c.begin(sid, Purpose.VERIFY, capabilities=CAPS)
    return c, ch, probe(ingest, ch, sets, r, session_id=sid, **kw)


def resign(ingest, sealed, header=None, ciphertext=None):
    from agent.uplink.seal import signed_bytes
    hdr = header if header is not None else sealed.header
    ct = ciphertext if ciphertext is not None else sealed.ciphertext
    return pb.SealedProbe(header=hdr, ciphertext=ct, signature=ingest["signer"].sign(signed_bytes(hdr, ct)))


@pytest.mark.parametrize("how, reason", [
    ("flip_ciphertext", "TAMPERED"),
    ("flip_signature", "TAMPERED"),
    ("flip_header", "TAMPERED"),
    ("header_resigned", "TAMPERED"),      # header altered and re-signed: HPKE info binding catches it
    ("ciphertext_resigned", "TAMPERED"),  # ciphertext altered and re-signed: AEAD catches it
    ("wrong_server_key", "WRONG_KEY"),
    ("foreign_signer", "TAMPERED"),
    ("garbage_header", "MALFORMED"),
])
def test_tampering_gets_its_reason_code(ingest, live_session, how, reason):
    c, ch, sealed = fresh(ingest, live_session)
    hdr = header_of(sealed)
    if how == "flip_ciphertext":
        ct = bytearray(sealed.ciphertext)
        ct[len(ct) // 2] ^= 1
        sealed = pb.SealedProbe(header=sealed.header, ciphertext=bytes(ct), signature=sealed.signature)
    elif how == "flip_signature":
        sig = bytearray(sealed.signature)
        sig[-1] ^= 1
        sealed = pb.SealedProbe(header=sealed.header, ciphertext=sealed.ciphertext, signature=bytes(sig))
    elif how in ("flip_header", "header_resigned"):
        hdr.counter += 1000
        new = hdr.SerializeToString(deterministic=True)
        sealed = resign(ingest, sealed, header=new) if how == "header_resigned" else \
            pb.SealedProbe(header=new, ciphertext=sealed.ciphertext, signature=sealed.signature)
    elif how == "ciphertext_resigned":
        ct = bytearray(sealed.ciphertext)
        ct[-5] ^= 0x40
        sealed = resign(ingest, sealed, ciphertext=bytes(ct))
    elif how == "wrong_server_key":
        other = ServerKey.generate("x25519")
        ch2 = pb.Challenge()
        ch2.CopyFrom(ch)
        ch2.server_key_id, ch2.server_public_key = other.key_id, other.public_bytes
        sealed = probe(ingest, ch2, live_session[2], live_session[3], session_id=hdr.session_id)
        hdr = header_of(sealed)
    elif how == "foreign_signer":
        sealed = probe(ingest, ch, live_session[2], live_session[3], signer=ingest["other_signer"],
                       session_id=hdr.session_id)
        hdr = header_of(sealed)
    elif how == "garbage_header":
        sealed = pb.SealedProbe(header=b"\xff" * 40, ciphertext=sealed.ciphertext, signature=sealed.signature)
    rec = c.submit(sealed, hdr.probe_id if how != "garbage_header" else "")
    assert not rec.accepted and rec.reason == reason, rec.detail


def test_expired_nonce(ingest, live_session):
    st = ingest["state"]
    c, ch, sealed = fresh(ingest, live_session)
    real, store_real = st.clock, st.store._clock
    st.clock = lambda: real() + 3600                   # an hour on, by the server's clock and the store's
    st.store._clock = lambda: store_real() + 3600      # (the memory store decides expiry by its own)
    try:
        rec = c.submit(sealed, header_of(sealed).probe_id)
    finally:
        st.clock, st.store._clock = real, store_real
    assert not rec.accepted and rec.reason == "EXPIRED"


def test_another_terminals_certificate_cannot_submit_for_this_terminal(ingest, live_session):
    _, ch, sealed = fresh(ingest, live_session)
    other = ingest["uplink"](cert=ingest["other_cert"], terminal=OTHER_TERMINAL)
    rec = other.submit(sealed, header_of(sealed).probe_id)
    assert not rec.accepted and rec.reason == "UNKNOWN_TERMINAL"
    with pytest.raises(UplinkRefused, match="PERMISSION_DENIED"):
        ingest["uplink"](cert=ingest["other_cert"], terminal=TERMINAL).begin("s", Purpose.VERIFY, capabilities=CAPS)


def test_certificate_from_another_ca_cannot_connect(ingest):
    c = ingest["uplink"](cert=ingest["rogue_cert"], retries=0, deadline_s=2.0)
    with pytest.raises((UplinkUnavailable, UplinkRefused)):
        c.begin("s", Purpose.VERIFY, capabilities=CAPS)


def test_oversized_message_is_refused_by_the_server(ingest):
    c = ingest["uplink"](retries=0)
    huge = pb.SealedProbe(header=b"x", ciphertext=b"\0" * (17 << 20), signature=b"")
    with pytest.raises(UplinkRefused, match="RESOURCE_EXHAUSTED"):
        c.submit(huge, "")


def test_failover_to_the_second_endpoint_and_unavailable_when_none_answers(ingest):
    with refusing_endpoint() as dead:                    # nothing listens there
        c = ingest["uplink"](endpoints=(dead, f"127.0.0.1:{ingest['port']}"), deadline_s=1.0)
        ch = c.begin("s", Purpose.VERIFY, capabilities=CAPS)
        assert len(ch.nonce) == 32 and c.attempts >= 2
        c2 = ingest["uplink"](endpoints=(dead,), retries=2, deadline_s=0.5)
        t0 = time.monotonic()
        with pytest.raises(UplinkUnavailable) as exc:
            c2.begin("s", Purpose.VERIFY, capabilities=CAPS)
    assert exc.value.code == "UPL_UNAVAILABLE" and time.monotonic() - t0 < 5


def test_a_challenge_that_ran_out_of_its_deadline_is_asked_again_and_charged_once(ingest, monkeypatch):
    # The server charges every challenge it issues (hil/ingest/limits.py) and answers a repeat of
    # the same request with the same challenge while its nonce is unused: the client repeats a
    # BeginCapture whose reply came too late, gets the first challenge, and the session is charged once.
    store = ingest["state"].store
    real_issue, lock = store.issue_nonce, threading.Lock()
    issued: list[tuple[bytes, bool]] = []
    slow, retried, recorded = threading.Event(), threading.Event(), threading.Event()

    def slow_first(*args, **kw):
        with lock:
            first = not slow.is_set()
            slow.set()
        got = real_issue(*args, **kw)
        with lock:
            issued.append((got.nonce, got.repeated))
        if first:                                         # issued and charged, then held past the deadline
            recorded.set()
            assert retried.wait(30), "the client did not repeat the call"
        else:
            retried.set()
        return got
    c = ingest["uplink"](retries=3, deadline_s=1.0, backoff_base_s=0.01, backoff_max_s=0.02)
    c.check_capabilities("", CAPS)                        # connected first: the deadline is the server's alone
    before = c.attempts
    monkeypatch.setattr(store, "issue_nonce", slow_first)
    ch = c.begin("sess-slow", Purpose.VERIFY, capabilities=CAPS)   # main: UPL_UNAVAILABLE after one attempt
    assert c.attempts >= before + 2 and recorded.wait(30)
    with lock:                                            # one issue; every repeat got its nonce
        assert [r for _, r in issued].count(False) == 1 and {n for n, _ in issued} == {ch.nonce}
    rec = store.get_nonce(ch.nonce, ingest["state"].now_ms())
    assert rec is not None and rec.session_id == "sess-slow" and not rec.used


def test_health_service_over_mtls(ingest):
    c = ingest["uplink"]()
    ch = c._stub(c.s.endpoints[0])   # opens the mTLS channel
    channel = c._channels[c.s.endpoints[0]]
    resp = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="capture_agent.v1.ProbeIngest"), timeout=2)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING and ch is not None


def test_liveness_under_another_nonce_is_unbound(ingest, live_session):
    # The captured session's liveness report names the nonce it ran under; a probe that carries
    # it under a different, fresh nonce is refused even though everything else is valid.
    c, ch, sealed = fresh(ingest, live_session)
    rec = c.submit(sealed, header_of(sealed).probe_id)
    assert not rec.accepted and rec.reason == "UNBOUND"
    lv_nonce = live_session[3].verdict.challenge["nonce_sha256"]
    assert lv_nonce != hashlib.sha256(ch.nonce).hexdigest()


def test_garbage_bytes_over_the_wire_get_a_malformed_receipt(ingest):
    c = ingest["uplink"]()
    c._stub(c.s.endpoints[0])
    channel = c._channels[c.s.endpoints[0]]
    call = channel.unary_unary("/capture_agent.v1.ProbeIngest/SubmitProbe", request_serializer=lambda b: b,
                               response_deserializer=pb.Receipt.FromString)
    rec = call(b"\xff\xff\xff\x07garbage", timeout=5)
    assert not rec.accepted and rec.reason == "MALFORMED"
    begin = channel.unary_unary("/capture_agent.v1.ProbeIngest/BeginCapture", request_serializer=lambda b: b,
                                response_deserializer=pb.Challenge.FromString)
    with pytest.raises(grpc.RpcError) as exc:
        begin(b"\xff\xff", timeout=5)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "MALFORMED" in exc.value.details()


def test_identical_resubmit_after_the_retry_window_is_a_replay(ingest, gate, live_session):
    st = ingest["state"]
    gate.reset()
    c, ch, sets, r = capture(ingest, gate)
    sealed = probe(ingest, ch, sets, r)
    pid = header_of(sealed).probe_id
    assert c.submit(sealed, pid).accepted
    real = st.retry_window_s
    st.retry_window_s = 0.0
    try:
        time.sleep(0.05)
        rec = c.submit(sealed, pid)
    finally:
        st.retry_window_s = real
    assert not rec.accepted and rec.reason == "REPLAYED"


def test_a_nonce_is_bound_to_the_session_it_was_issued_for(ingest, live_session):
    c, _, sets, r = live_session
    ch = c.begin("another-session", Purpose.VERIFY, capabilities=CAPS)
    sealed = probe(ingest, ch, sets, r)                 # the header says session "sess-1"
    rec = c.submit(sealed, header_of(sealed).probe_id)
    assert not rec.accepted and rec.reason == "UNBOUND" and "session" in rec.detail
