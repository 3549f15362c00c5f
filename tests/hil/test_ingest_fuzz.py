"""The server's probe parser under hypothesis: arbitrary bytes, mutated headers, and well-signed,
well-sealed payloads with arbitrary content. Every input must end in a receipt with a reason code;
none may raise. The in-process call stands in for gRPC's transport (exercised in the e2e tests);
the context supplies the mTLS peer name as grpc would."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.security.keys import generate_file_key
from agent.uplink.seal import INFO_PREFIX, SUITES, ServerKey, signed_bytes
from hil.ingest.server import Ingest, ServerState, Terminal
from proto.capture_agent.v1 import ingest_pb2 as pb

REASONS = {"OK", "TAMPERED", "EXPIRED", "REPLAYED", "WRONG_KEY", "UNKNOWN_TERMINAL", "MALFORMED", "NOT_LIVE", "UNBOUND"}
COUNT = {"inputs": 0}


class PeerContext:
    def __init__(self, cn: str):
        self.cn = cn

    def auth_context(self):
        return {"x509_common_name": [self.cn.encode()]}

    def abort(self, code, details):
        raise AssertionError(f"abort {code} {details}")


def make_world(tmp_path_factory=None):
    import tempfile
    from pathlib import Path
    d = Path(tempfile.mkdtemp())
    signer = generate_file_key(d / "t.pem")
    key = ServerKey.generate("x25519")
    state = ServerState(terminals={"t1": Terminal("t1", signer.public_key())}, keys={key.key_id: key},
                        current_key_id=key.key_id)
    return state, Ingest(state), signer, key


STATE, INGEST, SIGNER, KEY = make_world()
CTX = PeerContext("t1")


def submit(sealed: pb.SealedProbe) -> pb.Receipt:
    COUNT["inputs"] += 1
    r = INGEST.SubmitProbe(sealed, CTX)
    assert r.reason in REASONS
    return r


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_as_a_probe(data):
    # The wire bytes go through the server's own parser (gRPC hands it raw bytes).
    COUNT["inputs"] += 1
    r = INGEST._submit_raw(data, CTX)
    assert r.reason in REASONS and not r.accepted


@given(header=st.binary(max_size=600), ct=st.binary(max_size=600), sig=st.binary(max_size=100))
def test_arbitrary_fields(header, ct, sig):
    assert not submit(pb.SealedProbe(header=header, ciphertext=ct, signature=sig)).accepted


def _header(nonce: bytes, pid: str) -> pb.ProbeHeader:
    return pb.ProbeHeader(version=1, probe_id=pid, terminal_id="t1", session_id="s", counter=1, nonce=nonce,
                          server_key_id=KEY.key_id, hpke_suite="x25519", created_unix_ms=1,
                          signer_key_id=SIGNER.key_id, signature_algorithm=SIGNER.algorithm, purpose=pb.VERIFY)


@given(st.binary(max_size=4096), st.integers(0, 2**31))
def test_validly_sealed_and_signed_garbage_payloads(plain, salt):
    # Past signature, nonce and decryption: the payload parser and validator get arbitrary bytes.
    nonce, _ = STATE.nonces.issue("t1", "s")
    h = _header(nonce, hashlib.sha256(plain + salt.to_bytes(8, "big")).hexdigest()).SerializeToString()
    ct = SUITES["x25519"].encrypt(plain, _pub(), info=INFO_PREFIX + h)
    r = submit(pb.SealedProbe(header=h, ciphertext=ct, signature=SIGNER.sign(signed_bytes(h, ct))))
    assert not r.accepted and r.reason in {"MALFORMED", "TAMPERED", "UNBOUND", "NOT_LIVE"}


crops = st.builds(pb.Crop, width=st.integers(0, 40), height=st.integers(0, 40),
                  format=st.sampled_from(["bgr8", "z16", "y8", "rgb", ""]), pixels=st.binary(max_size=300),
                  sha256=st.binary(max_size=32))


@given(color=crops, depth=crops, lm=st.lists(st.floats(allow_nan=True), max_size=20),
       lv=st.one_of(st.just('{"verdict":"live","frame_digests":["a"]}'), st.text(max_size=60)),
       fd=st.sampled_from(["a", "b", ""]))
def test_structured_payloads(color, depth, lm, lv, fd):
    nonce, _ = STATE.nonces.issue("t1", "s")
    payload = pb.ProbePayload(color=color, depth=depth, landmarks=lm, liveness_json=lv, frame_digest=fd)
    plain = payload.SerializeToString()
    h = _header(nonce, hashlib.sha256(plain + nonce).hexdigest()).SerializeToString()
    ct = SUITES["x25519"].encrypt(plain, _pub(), info=INFO_PREFIX + h)
    r = submit(pb.SealedProbe(header=h, ciphertext=ct, signature=SIGNER.sign(signed_bytes(h, ct))))
    assert not r.accepted


def _pub():
    from agent.uplink.seal import load_public_key
    return load_public_key("x25519", KEY.public_bytes)


def test_report_fuzz_count():
    # Runs last in this module: the number of inputs the parser took without raising.
    print(f"\nserver parser fuzz: {COUNT['inputs']} inputs, none raised")
    # Four fuzzed tests ran before this one, each with the profile's examples (few by default, many
    # under CI=true: tests/conftest.py).
    assert COUNT["inputs"] >= 3 * settings.default.max_examples
