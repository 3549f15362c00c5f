"""Terminal signing keys: 0600 file keys and PKCS#11 keys on a real SoftHSM2 token."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.security.keys import (
    FileSigner,
    KeyNotFound,
    KeyPermissionError,
    KeyStoreError,
    KeyUnsupported,
    Pkcs11Signer,
    check_private_file,
    generate_file_key,
    generate_pkcs11_key,
    load_signer,
    read_private_file,
    verify_signature,
)

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"      # the shared token: tests/conftest.py ``softhsm``


@pytest.mark.parametrize("alg", ["ed25519", "ecdsa-p256-sha256"])
def test_file_key_round_trip(tmp_path, alg):
    s = generate_file_key(tmp_path / "k.pem", alg)
    assert (os.stat(tmp_path / "k.pem").st_mode & 0o777) == 0o600
    sig = s.sign(b"probe")
    assert verify_signature(s.public_key(), alg, b"probe", sig)
    assert not verify_signature(s.public_key(), alg, b"probf", sig)
    again = load_signer(f"file:{tmp_path / 'k.pem'}")
    assert again.key_id == s.key_id and again.algorithm == alg
    pem = (tmp_path / "k.pem").read_text()
    body = pem.splitlines()[1]
    assert body not in repr(s) and body not in str(s)


def test_readable_key_file_is_refused_before_reading(tmp_path):
    generate_file_key(tmp_path / "k.pem")
    os.chmod(tmp_path / "k.pem", 0o644)
    with pytest.raises(KeyPermissionError) as exc:
        FileSigner(tmp_path / "k.pem")
    assert exc.value.code == "KEY_PERMISSIONS" and "0644" in exc.value.message


def test_a_key_file_reached_through_a_symbolic_link_is_refused(tmp_path):
    generate_file_key(tmp_path / "real.pem")
    (tmp_path / "link.pem").symlink_to(tmp_path / "real.pem")
    with pytest.raises(KeyStoreError, match="symbolic link"):
        FileSigner(tmp_path / "link.pem")
    with pytest.raises(KeyStoreError, match="symbolic link"):
        check_private_file(tmp_path / "link.pem")


def test_a_fifo_in_place_of_a_key_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "k.pem", 0o600)                   # opening it for reading would wait for a writer
    with pytest.raises(KeyStoreError, match="not a regular file"):
        read_private_file(tmp_path / "k.pem")


def test_the_key_read_is_the_file_that_was_checked(tmp_path, monkeypatch):
    # Someone swaps the key file right after it passed its checks: what is loaded must still be the
    # file that was checked (read from the same descriptor), not the swapped-in one.
    key = tmp_path / "k.pem"
    mine = generate_file_key(key)
    theirs = generate_file_key(tmp_path / "theirs.pem")
    real_stat, real_fstat, swapped = os.stat, os.fstat, []

    def swap_after(real):
        def call(*args, **kwargs):
            result = real(*args, **kwargs)
            if not swapped:
                swapped.append(True)
                os.replace(tmp_path / "theirs.pem", key)
            return result
        return call
    monkeypatch.setattr(os, "stat", swap_after(real_stat))
    monkeypatch.setattr(os, "fstat", swap_after(real_fstat))
    loaded = FileSigner(key)
    assert swapped and loaded.key_id == mine.key_id != theirs.key_id


def test_missing_unsupported_and_no_overwrite(tmp_path):
    with pytest.raises(KeyNotFound):
        FileSigner(tmp_path / "none.pem")
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(tmp_path / "rsa.pem", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, rsa_pem)
    os.close(fd)
    with pytest.raises(KeyUnsupported):
        FileSigner(tmp_path / "rsa.pem")
    generate_file_key(tmp_path / "k.pem")
    with pytest.raises(KeyStoreError, match="already exists"):
        generate_file_key(tmp_path / "k.pem")
    with pytest.raises(KeyUnsupported):
        verify_signature(None, "rsa-pss", b"", b"")


@pytest.fixture(scope="module")
def token(softhsm):
    module, label, pin = softhsm
    generate_pkcs11_key(module, label, "terminal-p256", pin, "ecdsa-p256-sha256")
    generate_pkcs11_key(module, label, "terminal-ed25519", pin, "ed25519")
    return label


def test_wrong_pin_is_a_typed_error_without_the_pin(token):
    with pytest.raises(KeyStoreError) as exc:
        Pkcs11Signer(SOFTHSM, token, "terminal-p256", "987654")
    assert "987654" not in exc.value.message and "PIN" in exc.value.message


@pytest.mark.parametrize("label, alg", [("terminal-p256", "ecdsa-p256-sha256"), ("terminal-ed25519", "ed25519")])
def test_pkcs11_key_signs_and_verifies(token, label, alg, monkeypatch):
    monkeypatch.setenv("CA_TEST_PIN", "1234")
    s = load_signer(f"pkcs11:module={SOFTHSM};token={token};object={label};pin-env=CA_TEST_PIN")
    assert s.algorithm == alg
    sig = s.sign(b"header||ciphertext")
    assert verify_signature(s.public_key(), alg, b"header||ciphertext", sig)
    assert not verify_signature(s.public_key(), alg, b"header||ciphertexT", sig)
    assert s.key_id == Pkcs11Signer(SOFTHSM, token, label, "1234").key_id


def test_missing_key_and_bad_specs(token):
    with pytest.raises(KeyNotFound):
        Pkcs11Signer(SOFTHSM, token, "no-such-key", "1234")
    with pytest.raises(KeyNotFound):
        Pkcs11Signer(SOFTHSM, "no-such-token", "terminal-p256", "1234")
    with pytest.raises(KeyStoreError):
        load_signer("pkcs11:module=x;token=y")
    with pytest.raises(KeyStoreError):
        load_signer(f"pkcs11:module={SOFTHSM};token={token};object=terminal-p256")   # no PIN source


def test_pin_comes_from_a_private_file_or_the_environment_only(token, tmp_path, monkeypatch):
    pin = tmp_path / "pin"
    fd = os.open(pin, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"1234\n")
    os.close(fd)
    s = load_signer(f"pkcs11:module={SOFTHSM};token={token};object=terminal-p256;pin-file={pin}")
    assert "1234" not in repr(s)
    os.chmod(pin, 0o640)
    with pytest.raises(KeyPermissionError):
        load_signer(f"pkcs11:module={SOFTHSM};token={token};object=terminal-p256;pin-file={pin}")
    monkeypatch.delenv("CA_TEST_NO_PIN", raising=False)
    with pytest.raises(KeyStoreError, match="CA_TEST_NO_PIN is not set"):
        load_signer(f"pkcs11:module={SOFTHSM};token={token};object=terminal-p256;pin-env=CA_TEST_NO_PIN")
