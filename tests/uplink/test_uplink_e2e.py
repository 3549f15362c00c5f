"""Uplink end to end over real sockets: mutual TLS with certificates made here, a sim capture under
the server's challenge, the probe sealed with HPKE and signed, and every rejection reason."""

from __future__ import annotations

import hashlib
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import drivers
from agent.keys import generate_file_key
from agent.liveness.challenge import Challenge
from agent.liveness.fusion import Thresholds
from agent.liveness.session import collect, frameset_digest, judge
from agent.quality import QualityGate
from agent.uplink import pki
from agent.uplink.client import UplinkClient, UplinkRefused, UplinkSettings, UplinkUnavailable
from agent.uplink.probe import build_payload, seal_probe
from agent.uplink.seal import ServerKey
from agent.uplink.server import ServerState, ServerTLS, Terminal, serve
from proto.capture_agent.v1 import ingest_pb2 as pb

TERMINAL = "kiosk-0001"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = pki.make_ca()
    server_cert = pki.issue(ca, "ingest.test", server=True)
    term_cert = pki.issue(ca, TERMINAL, server=False)
    other_cert = pki.issue(ca, "kiosk-0002", server=False)
    rogue_ca = pki.make_ca("rogue CA")
    rogue_cert = pki.issue(rogue_ca, TERMINAL, server=False)
    signer = generate_file_key(d / "terminal.pem")
    other_signer = generate_file_key(d / "other.pem", "ecdsa-p256-sha256")
    key = ServerKey.generate("x25519")
    hybrid = ServerKey.generate("mlkem768-x25519")
    state = ServerState(terminals={TERMINAL: Terminal(TERMINAL, signer.public_key()),
                                   "kiosk-0002": Terminal("kiosk-0002", other_signer.public_key())},
                        keys={key.key_id: key, hybrid.key_id: hybrid}, current_key_id=key.key_id, frames=12)
    server, port = serve(state, ServerTLS(server_cert.cert_pem, server_cert.key_pem, ca.cert_pem))

    def client(cert=term_cert, terminal=TERMINAL, endpoints=None, **kw):
        return UplinkClient(UplinkSettings(endpoints or (f"127.0.0.1:{port}",), ca.cert_pem, cert.cert_pem,
                                           cert.key_pem, terminal, server_name="localhost", **kw))
    yield {"state": state, "port": port, "client": client, "signer": signer, "other_signer": other_signer,
           "other_cert": other_cert, "rogue_cert": rogue_cert, "ca": ca, "key": key, "hybrid": hybrid}
    server.stop(0)


@pytest.fixture(scope="module")
def gate():
    return QualityGate()


def capture(world, gate, subject="live", begin=None):
    """A sim session under a fresh server challenge; returns (challenge, sets, judged result)."""
    c = world["client"]()
    ch = begin or c.begin("sess-1", pb.VERIFY)
    cam = drivers.open(f"sim://?realtime=0&seed=21&identity=3&lux=150&subject={subject}")
    with cam:
        challenge = Challenge.from_nonce(ch.nonce, ch.frames)
        sets = collect(cam, ch.frames, challenge)
    r = judge(sets, gate, Thresholds(), challenge=challenge)
    return c, ch, sets, r


def probe(world, ch, sets, r, counter=1, signer=None):
    best = {"index": r.best_index, "bbox": list(r.best_face.detection.bbox),
            "landmarks": r.best_face.mesh.landmarks.tolist()}
    payload = build_payload(sets[r.best_index], best, quality={"ok": True}, liveness=r.verdict.to_dict(),
                            device=drivers.open("sim://?realtime=0").info, timings_ms={"capture": 1.0},
                            frame_digest=frameset_digest(sets[r.best_index]))
    return seal_probe(ch, payload, terminal_id=TERMINAL, session_id="sess-1", counter=counter,
                      signer=signer or world["signer"], purpose="verify")


def header_of(sealed) -> pb.ProbeHeader:
    h = pb.ProbeHeader()
    h.ParseFromString(sealed.header)
    return h


def test_live_probe_is_accepted_and_retries_are_idempotent(world, gate):
    c, ch, sets, r = capture(world, gate)
    assert r.verdict.verdict == "live"
    sealed = probe(world, ch, sets, r)
    pid = header_of(sealed).probe_id
    rec = c.submit(sealed, pid)
    assert rec.accepted and rec.reason == "OK" and rec.liveness_verdict == "live"
    again = c.submit(sealed, pid)                            # a retry after a lost reply
    assert again == rec
    summary = world["state"].accepted[-1]
    assert summary["terminal_id"] == TERMINAL and summary["purpose"] == "VERIFY"


def test_hybrid_post_quantum_suite(world, gate):
    st = world["state"]
    st.current_key_id = world["hybrid"].key_id
    try:
        c, ch, sets, r = capture(world, gate)
        assert ch.hpke_suite == "mlkem768-x25519" and len(ch.server_public_key) == 1216
        sealed = probe(world, ch, sets, r)
        assert c.submit(sealed, header_of(sealed).probe_id).accepted
    finally:
        st.current_key_id = world["key"].key_id


def test_replayed_nonce_with_a_new_probe_id_is_rejected(world, gate):
    c, ch, sets, r = capture(world, gate)
    first = probe(world, ch, sets, r)
    assert c.submit(first, header_of(first).probe_id).accepted
    second = probe(world, ch, sets, r, counter=2)            # same nonce, new probe id
    rec = c.submit(second, header_of(second).probe_id)
    assert not rec.accepted and rec.reason == "REPLAYED"


def test_presentation_attack_is_not_live(world, gate):
    c, ch, sets, r = capture(world, gate, subject="print")
    assert r.best_index is not None
    sealed = probe(world, ch, sets, r)
    rec = c.submit(sealed, header_of(sealed).probe_id)
    assert not rec.accepted and rec.reason == "NOT_LIVE"


@pytest.fixture(scope="module")
def live_session(world, gate):
    return capture(world, gate)


def fresh(world, live_session, **kw):
    """A correctly sealed probe under a fresh (unused) nonce, reusing one captured session."""
    c, _, sets, r = live_session
    ch = c.begin("sess-1", pb.VERIFY)
    return c, ch, probe(world, ch, sets, r, **kw)


def resign(world, sealed, header=None, ciphertext=None):
    from agent.uplink.seal import signed_bytes
    hdr = header if header is not None else sealed.header
    ct = ciphertext if ciphertext is not None else sealed.ciphertext
    return pb.SealedProbe(header=hdr, ciphertext=ct, signature=world["signer"].sign(signed_bytes(hdr, ct)))


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
def test_tampering_gets_its_reason_code(world, live_session, how, reason):
    c, ch, sealed = fresh(world, live_session)
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
        sealed = resign(world, sealed, header=new) if how == "header_resigned" else \
            pb.SealedProbe(header=new, ciphertext=sealed.ciphertext, signature=sealed.signature)
    elif how == "ciphertext_resigned":
        ct = bytearray(sealed.ciphertext)
        ct[-5] ^= 0x40
        sealed = resign(world, sealed, ciphertext=bytes(ct))
    elif how == "wrong_server_key":
        other = ServerKey.generate("x25519")
        ch2 = pb.Challenge()
        ch2.CopyFrom(ch)
        ch2.server_key_id, ch2.server_public_key = other.key_id, other.public_bytes
        sealed = probe(world, ch2, live_session[2], live_session[3])
        hdr = header_of(sealed)
    elif how == "foreign_signer":
        sealed = probe(world, ch, live_session[2], live_session[3], signer=world["other_signer"])
        hdr = header_of(sealed)
    elif how == "garbage_header":
        sealed = pb.SealedProbe(header=b"\xff" * 40, ciphertext=sealed.ciphertext, signature=sealed.signature)
    rec = c.submit(sealed, hdr.probe_id if how != "garbage_header" else "")
    assert not rec.accepted and rec.reason == reason, rec.detail


def test_expired_nonce(world, live_session):
    st = world["state"]
    c, ch, sealed = fresh(world, live_session)
    real = st.nonces.clock
    st.nonces.clock = lambda: real() + 3600
    try:
        rec = c.submit(sealed, header_of(sealed).probe_id)
    finally:
        st.nonces.clock = real
    assert not rec.accepted and rec.reason == "EXPIRED"


def test_another_terminals_certificate_cannot_submit_for_this_terminal(world, live_session):
    _, ch, sealed = fresh(world, live_session)
    other = world["client"](cert=world["other_cert"], terminal="kiosk-0002")
    rec = other.submit(sealed, header_of(sealed).probe_id)
    assert not rec.accepted and rec.reason == "UNKNOWN_TERMINAL"
    with pytest.raises(UplinkRefused, match="PERMISSION_DENIED"):
        world["client"](cert=world["other_cert"], terminal=TERMINAL).begin("s", pb.VERIFY)


def test_certificate_from_another_ca_cannot_connect(world):
    c = world["client"](cert=world["rogue_cert"], retries=0, deadline_s=2.0)
    with pytest.raises((UplinkUnavailable, UplinkRefused)):
        c.begin("s", pb.VERIFY)


def test_oversized_message_is_refused_by_the_server(world):
    c = world["client"](retries=0)
    huge = pb.SealedProbe(header=b"x", ciphertext=b"\0" * (17 << 20), signature=b"")
    with pytest.raises(UplinkRefused, match="RESOURCE_EXHAUSTED"):
        c.submit(huge, "")


def test_failover_to_the_second_endpoint_and_unavailable_when_none_answers(world):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"127.0.0.1:{s.getsockname()[1]}"
    s.close()                                            # nothing listens there
    c = world["client"](endpoints=(dead, f"127.0.0.1:{world['port']}"), deadline_s=1.0)
    ch = c.begin("s", pb.VERIFY)
    assert len(ch.nonce) == 32 and c.attempts >= 2
    c2 = world["client"](endpoints=(dead,), retries=2, deadline_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(UplinkUnavailable) as exc:
        c2.begin("s", pb.VERIFY)
    assert exc.value.code == "UPL_UNAVAILABLE" and time.monotonic() - t0 < 5


def test_health_service_over_mtls(world):
    c = world["client"]()
    ch = c._stub(c.s.endpoints[0])   # opens the mTLS channel
    channel = c._channels[c.s.endpoints[0]]
    resp = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="capture_agent.v1.ProbeIngest"),
                                                    timeout=2)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING and ch is not None


def test_liveness_under_another_nonce_is_unbound(world, live_session):
    # The captured session's liveness report names the nonce it ran under; a probe that carries
    # it under a different, fresh nonce is refused even though everything else is valid.
    c, ch, sealed = fresh(world, live_session)
    rec = c.submit(sealed, header_of(sealed).probe_id)
    assert not rec.accepted and rec.reason == "UNBOUND"
    lv_nonce = live_session[3].verdict.challenge["nonce_sha256"]
    assert lv_nonce != hashlib.sha256(ch.nonce).hexdigest()


def test_garbage_bytes_over_the_wire_get_a_malformed_receipt(world):
    c = world["client"]()
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


def test_identical_resubmit_after_the_retry_window_is_a_replay(world, live_session):
    st = world["state"]
    c, ch, sets, r = capture(world, QualityGate())
    sealed = probe(world, ch, sets, r)
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


def test_a_nonce_is_bound_to_the_session_it_was_issued_for(world, live_session):
    c, _, sets, r = live_session
    ch = c.begin("another-session", pb.VERIFY)
    sealed = probe(world, ch, sets, r)                 # the header says session "sess-1"
    rec = c.submit(sealed, header_of(sealed).probe_id)
    assert not rec.accepted and rec.reason == "UNBOUND" and "session" in rec.detail
