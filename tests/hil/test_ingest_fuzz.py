"""The server's probe parser under fuzzing: Hypothesis (arbitrary bytes, fields, payloads) and the
structure-aware fuzzer of ``hil/ingest/fuzz.py`` (hostile header fields re-signed, 100k-deep JSON,
wrong JSON types, bad crops, flipped ciphertexts, identical retries). Every input must end in a
receipt with a reason code; none may raise; none that is refused may use its nonce. The servicer
is called as gRPC calls it, with the real client certificate in its auth context (``TlsPeer``);
the transport itself is exercised in the e2e tests. 10^5 inputs: ``python -m bench fuzz``."""

from __future__ import annotations

import hashlib
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.uplink.seal import HPKE_SUITES, INFO_PREFIX, load_public_key, signed_bytes
from hil.ingest import fuzz
from proto.capture_agent.v1 import ingest_pb2 as pb

W = fuzz.make_world()
COUNT = {"inputs": 0}


def submit(sealed: pb.SealedProbe) -> pb.Receipt:
    COUNT["inputs"] += 1
    r = W.ingest.SubmitProbe(sealed, W.peer)
    assert r.reason in fuzz.REASONS
    return r


def unused(nonce: bytes) -> bool:
    rec = W.state.store.get_nonce(nonce, W.state.now_ms())
    return rec is not None and not rec.used


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_as_a_probe(data):
    # The wire bytes go through the server's own parser (gRPC hands it raw bytes).
    COUNT["inputs"] += 1
    r = W.ingest._submit_raw(data, W.peer)
    assert r.reason in fuzz.REASONS and not r.accepted


@given(header=st.binary(max_size=600), ct=st.binary(max_size=600), sig=st.binary(max_size=100))
def test_arbitrary_fields(header, ct, sig):
    assert not submit(pb.SealedProbe(header=header, ciphertext=ct, signature=sig)).accepted


def _sealed(plain: bytes, ch: pb.Challenge) -> pb.SealedProbe:
    h = pb.ProbeHeader(version=1, probe_id=hashlib.sha256(plain + os.urandom(8)).hexdigest()[:36],
                       terminal_id=fuzz.TERMINAL, session_id="fuzz-session", counter=W.next_counter(), nonce=ch.nonce,
                       server_key_id=ch.server_key_id, hpke_suite=ch.hpke_suite,
                       created_unix_ms=W.state.now_ms(), signer_key_id=W.signer.key_id,
                       signature_algorithm=W.signer.algorithm, purpose=pb.VERIFY).SerializeToString()
    ct = HPKE_SUITES["x25519"].encrypt(plain, load_public_key("x25519", ch.server_public_key), info=INFO_PREFIX + h)
    return pb.SealedProbe(header=h, ciphertext=ct, signature=W.signer.sign(signed_bytes(h, ct)))


@given(st.binary(max_size=4096))
def test_validly_sealed_and_signed_garbage_payloads(plain):
    # Past signature and decryption: the payload parser and validator get arbitrary bytes.
    ch = W.challenge()
    r = submit(_sealed(plain, ch))
    assert not r.accepted and r.reason in {"MALFORMED", "TAMPERED", "UNBOUND", "NOT_LIVE"}
    assert r.reason == "NOT_LIVE" or unused(ch.nonce)


crops = st.builds(pb.Crop, width=st.integers(0, 40), height=st.integers(0, 40),
                  format=st.sampled_from(["bgr8", "z16", "y8", "rgb", ""]), pixels=st.binary(max_size=300),
                  sha256=st.binary(max_size=32))


@given(color=crops, depth=crops, lm=st.lists(st.floats(allow_nan=True), max_size=20),
       lv=st.one_of(st.just('{"verdict":"live","frame_digests":["a"]}'), st.text(max_size=60)),
       fd=st.sampled_from(["a", "b", ""]))
def test_structured_payloads(color, depth, lm, lv, fd):
    ch = W.challenge()
    payload = pb.ProbePayload(color=color, depth=depth, landmarks=lm, liveness_json=lv, frame_digest=fd)
    r = submit(_sealed(payload.SerializeToString(), ch))
    assert not r.accepted and unused(ch.nonce)


def test_structure_aware_fuzzing_finds_no_crash_and_burns_no_nonce():
    # 320 inputs by default, 3,200 under CI=true: every kind of input, in seconds. The campaign is
    # `python -m bench fuzz` (10^5 inputs, docs/uplink.md).
    n = 8 * settings.default.max_examples
    report = fuzz.run(n, seed=16)
    COUNT["inputs"] += report.inputs
    assert report.crashes == 0, report.first_crashes
    assert report.nonces_burned == 0 and report.retries_changed == 0
    # Every kind of input ran, and the hostile ones were told why.
    assert set(report.by_kind) == set(fuzz.KINDS)
    assert report.by_reason.get("MALFORMED", 0) > n // 10 and report.by_reason.get("OK", 0) > 0


def test_report_fuzz_count():
    # Runs last in this module: the number of inputs the parser took without raising.
    print(f"\nserver parser fuzz: {COUNT['inputs']} inputs, none raised")
    assert COUNT["inputs"] >= 3 * settings.default.max_examples
