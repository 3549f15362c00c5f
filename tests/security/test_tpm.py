"""TPM 2.0 keys on a real software TPM (swtpm, started by the test): enrolment, PCR-bound signing,
the policy refusing the key after the measured state changes, quotes, blobs tied to their TPM."""

from __future__ import annotations

import os

import pytest

from agent.security.keys import KeyStoreError, load_signer, verify_signature
from agent.security.tpm import (
    KeyBlob,
    PcrPolicyRefused,
    PcrSelection,
    TpmError,
    enrol,
    load_attestor,
    load_tpm_signer,
    quote_qualifier,
)
from tests.helpers.swtpm import extend_pcr16, reset_pcr16, swtpm

PCRS = "sha256:0,1,2,3,4,5,6,7,16"


@pytest.fixture(scope="module")
def tpm(tmp_path_factory):
    with swtpm() as tcti:
        d = tmp_path_factory.mktemp("tpm")
        yield tcti, enrol(d, tcti=tcti, pcrs=PCRS)


def test_enrolment_writes_private_blobs_and_a_registration(tpm, tmp_path):
    tcti, e = tpm
    for p in (e.signing, e.mtls, e.attestation):
        assert (os.stat(p).st_mode & 0o777) == 0o600
    reg = e.registration
    assert reg["pcr_bank"] == "sha256" and sorted(map(int, reg["pcrs"])) == [0, 1, 2, 3, 4, 5, 6, 7, 16]
    assert reg["attestation_key"].startswith("-----BEGIN PUBLIC KEY-----")
    with pytest.raises(KeyStoreError, match="already exists"):
        enrol(e.signing.parent, tcti=tcti, pcrs=PCRS)


def test_signing_key_signs_and_verifies_and_is_not_the_mtls_key(tpm):
    tcti, e = tpm
    s = load_signer(f"tpm:key={e.signing};tcti={tcti}")
    m = load_tpm_signer(f"tpm:key={e.mtls};tcti={tcti}")
    try:
        assert s.algorithm == "ecdsa-p256-sha256" and s.key_id != m.key_id
        sig = s.sign(b"header||ciphertext")
        assert verify_signature(s.public_key(), s.algorithm, b"header||ciphertext", sig)
        assert not verify_signature(s.public_key(), s.algorithm, b"header||ciphertexT", sig)
        assert not verify_signature(m.public_key(), m.algorithm, b"header||ciphertext", sig)
    finally:
        s.close()
        m.close()


def test_the_tpm_refuses_the_key_once_the_measured_state_changes(tpm):
    tcti, e = tpm
    s = load_tpm_signer(f"tpm:key={e.signing};tcti={tcti}")
    try:
        s.sign(b"before")
        extend_pcr16(tcti)
        with pytest.raises(PcrPolicyRefused) as exc:
            s.sign(b"after")
        assert exc.value.code == "KEY_PCR_MISMATCH" and "sha256:0,1,2,3,4,5,6,7,16" in exc.value.message
        reset_pcr16(tcti)                          # the enrolled state again: the key works again
        assert verify_signature(s.public_key(), s.algorithm, b"again", s.sign(b"again"))
    finally:
        reset_pcr16(tcti)
        s.close()


def test_quote_carries_the_nonce_and_the_pcr_values(tpm):
    tcti, e = tpm
    a = load_attestor(f"tpm:key={e.attestation};tcti={tcti}")
    try:
        q = a.quote(b"\x07" * 32)
        from tpm2_pytss.types import TPMS_ATTEST
        att, _ = TPMS_ATTEST.unmarshal(q.attest)
        assert bytes(att.extraData) == quote_qualifier(b"\x07" * 32)
        assert list(q.pcrs) == [0, 1, 2, 3, 4, 5, 6, 7, 16] and len(q.pcr_values) == 9
        assert [v.hex() for v in q.pcr_values] == [e.registration["pcrs"][str(i)] for i in q.pcrs]
    finally:
        a.close()


def test_keys_are_used_for_their_own_purpose_only(tpm):
    tcti, e = tpm
    with pytest.raises(KeyStoreError, match="attestation key, not a signing key"):
        load_tpm_signer(f"tpm:key={e.attestation};tcti={tcti}")
    with pytest.raises(KeyStoreError, match="signing key, not an attestation key"):
        load_attestor(f"tpm:key={e.signing};tcti={tcti}")


def test_a_blob_does_not_load_on_another_tpm(tpm):
    _, e = tpm
    with swtpm() as other:
        with pytest.raises(TpmError) as exc:
            load_tpm_signer(f"tpm:key={e.signing};tcti={other}")
        assert exc.value.code == "KEY_TPM" and "another TPM" in exc.value.message


def test_blob_files_are_checked_before_use(tpm, tmp_path):
    tcti, e = tpm
    blob = KeyBlob.read(e.signing)
    readable = tmp_path / "readable.tpmkey"
    blob.write(readable)
    os.chmod(readable, 0o644)
    with pytest.raises(KeyStoreError) as exc:
        load_tpm_signer(f"tpm:key={readable};tcti={tcti}")
    assert exc.value.code == "KEY_PERMISSIONS"
    junk = tmp_path / "junk.tpmkey"
    fd = os.open(junk, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b'{"format": "something else"}')
    os.close(fd)
    with pytest.raises(KeyStoreError, match="not a capture-agent TPM key blob"):
        load_tpm_signer(f"tpm:key={junk};tcti={tcti}")
    with pytest.raises(KeyStoreError, match="does not exist"):
        load_tpm_signer(f"tpm:key={tmp_path / 'none'};tcti={tcti}")
    with pytest.raises(KeyStoreError, match="unknown: pin"):
        load_tpm_signer(f"tpm:key={e.signing};pin=1234")


def test_owner_authorisation_comes_from_the_environment_only(tmp_path, monkeypatch):
    with swtpm() as tcti:
        from tpm2_pytss.constants import ESYS_TR

        from agent.security.tpm import TpmConnection
        conn = TpmConnection.get(tcti)
        with conn.lock:
            conn.esapi.hierarchy_change_auth(ESYS_TR.OWNER, b"owner-secret")
        conn.release()
        with pytest.raises(TpmError) as exc:
            enrol(tmp_path, tcti=tcti, pcrs="sha256:16")
        assert "owner-secret" not in exc.value.message
        e = enrol(tmp_path, tcti=tcti, pcrs="sha256:16", owner_auth="owner-secret")
        monkeypatch.setenv("CA_TEST_OWNER_AUTH", "owner-secret")
        s = load_tpm_signer(f"tpm:key={e.signing};tcti={tcti};owner-auth-env=CA_TEST_OWNER_AUTH")
        try:
            assert verify_signature(s.public_key(), s.algorithm, b"x", s.sign(b"x"))
            assert "owner-secret" not in repr(s)
        finally:
            s.close()


@pytest.mark.parametrize("bad", ["sha256", "sha256:", "md5:0", "sha256:24", "sha256:a,b", ":1"])
def test_pcr_selection_is_validated(bad):
    with pytest.raises(KeyStoreError):
        PcrSelection.parse(bad)
    assert str(PcrSelection.parse("sha256:7,0,7")) == "sha256:0,7"
