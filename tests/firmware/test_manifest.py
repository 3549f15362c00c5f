"""The signed manifest: verified at load, strict schema, no replay of an older one; version order."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from firmware import manifest as mf
from firmware.errors import ManifestInvalid, ManifestRollback, ManifestSignature
from firmware.version import Version
from tests.helpers.firmware import body


def test_a_signed_manifest_verifies_and_finds_models_by_usb_id_or_name(release_key):
    m = mf.verify(mf.sign(body(), release_key), release_key.public_key())
    assert m.sequence == 5 and len(m.sha256) == 64 and m.key_id == mf.key_id(release_key.public_key())
    assert m.model_for(vendor_id=0x8086, product_id=0x0B07).id == "intel-d435"
    assert m.model_for(vendor_id=0x8086, product_id=0x0ADB).id == "intel-d435"       # its recovery PID
    assert m.model_for(backend="orbbec", name="Orbbec Gemini 335").id == "orbbec-gemini335"
    assert m.model_for(backend="realsense", name="Orbbec Gemini 335") is None
    d435 = m.model_for(vendor_id=0x8086, product_id=0x0B07)
    assert d435.approves(Version.parse("5.16.0.1")) and not d435.approves(Version.parse("5.15.0.0"))


def _tamper(raw: bytes, change) -> bytes:
    env = json.loads(raw)
    payload = json.loads(base64.b64decode(env["payload"]))
    change(payload)
    env["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    return json.dumps(env).encode()


def test_a_tampered_manifest_is_refused(release_key):
    raw = mf.sign(body(), release_key)

    def approve_old(p):
        p["models"][1]["allowed_versions"].append("5.0.0.0")
    with pytest.raises(ManifestSignature) as e:
        mf.verify(_tamper(raw, approve_old), release_key.public_key())
    assert e.value.code == "FW_MANIFEST_SIGNATURE"


def test_a_manifest_signed_by_another_key_is_refused(release_key):
    other = Ed25519PrivateKey.generate()
    raw = mf.sign(body(), other)
    with pytest.raises(ManifestSignature, match="not the configured release key"):
        mf.verify(raw, release_key.public_key())
    # Same key id claimed, signature from the other key: the signature check catches it.
    env = json.loads(raw)
    env["signature"]["key_id"] = mf.key_id(release_key.public_key())
    with pytest.raises(ManifestSignature, match="does not verify"):
        mf.verify(json.dumps(env).encode(), release_key.public_key())


def test_sm2_and_unknown_algorithms_are_refused_not_skipped(release_key):
    env = json.loads(mf.sign(body(), release_key))
    for alg in ("sm2", "none", "ed448"):
        env["signature"]["algorithm"] = alg
        with pytest.raises(ManifestSignature):
            mf.verify(json.dumps(env).encode(), release_key.public_key())


@pytest.mark.parametrize("change, why", [
    (lambda b: b.update(extra=1), "unknown field"),
    (lambda b: b["models"][0].update(minimum_version="2.05"), "below the minimum"),
    (lambda b: b["models"][0].update(usb_ids=["2BDF:0102"]), "wrong form"),
    (lambda b: b["models"][1].update(usb_ids=["2bdf:0102"]), "belongs to both"),
    (lambda b: b["models"][0]["images"][0].update(sha256="ab" * 31), "64 lower-case hex"),
    (lambda b: b["models"][0].update(allowed_versions=["1.02", "latest"]), "not a firmware version"),
    (lambda b: b.update(sequence=-1), "non-negative"),
    (lambda b: b.update(models=[]), "1-256"),
])
def test_schema_violations_are_manifest_invalid(release_key, change, why):
    b = body()
    change(b)
    with pytest.raises(ManifestInvalid, match=why) as e:
        mf.verify(mf.sign(b, release_key), release_key.public_key())
    assert e.value.code == "FW_MANIFEST_INVALID"


def test_envelope_problems_are_manifest_invalid(release_key):
    for raw in (b"\xff\xfe", b"[]", b'{"format": "other"}', json.dumps(
            {"format": mf.FORMAT, "payload": "!!", "signature": {"algorithm": "ed25519", "key_id": "x",
                                                                  "value": "AA=="}}).encode()):
        with pytest.raises(ManifestInvalid):
            mf.verify(raw, release_key.public_key())


def test_an_older_manifest_is_refused_after_a_newer_one_was_accepted(tmp_path, release_key):
    floor = mf.SequenceFloor(tmp_path / "floor")
    path = tmp_path / "m.json"
    path.write_bytes(mf.sign(body(sequence=7), release_key))
    assert mf.load(path, release_key.public_key(), floor).sequence == 7
    assert floor.read() == 7
    path.write_bytes(mf.sign(body(sequence=6), release_key))          # validly signed, but replayed
    with pytest.raises(ManifestRollback) as e:
        mf.load(path, release_key.public_key(), floor)
    assert e.value.code == "FW_MANIFEST_ROLLBACK"
    path.write_bytes(mf.sign(body(sequence=7), release_key))          # the same one again is fine
    mf.load(path, release_key.public_key(), floor)


def test_the_release_key_must_be_an_ed25519_pem(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec
    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ManifestSignature, match="not an Ed25519"):
        mf.load_public_key(pem)
    with pytest.raises(ManifestSignature):
        mf.load_public_key(b"not a key")


@given(st.lists(st.integers(0, 999), min_size=1, max_size=4), st.lists(st.integers(0, 999), min_size=1, max_size=4))
def test_versions_order_like_their_numbers_padded_with_zeros(a, b):
    va, vb = Version.parse(".".join(map(str, a))), Version.parse(".".join(map(str, b)))
    pad = lambda x: tuple(x) + (0,) * (6 - len(x))  # noqa: E731
    assert (va < vb) == (pad(a) < pad(b)) and (va == vb) == (pad(a) == pad(b))


@pytest.mark.parametrize("text", ["", "5.x", "1..2", "1.2.3.4.5.6.7", "123456", " ", "5.13-beta"])
def test_unparseable_versions_are_refused(text):
    with pytest.raises(ValueError):
        Version.parse(text)
