"""The GM profile's algorithms: known-answer vectors from the standards, interoperability with
OpenSSL's SM2 (the ``openssl`` command line, with the GM/T 0009 default ID), SM2 key files, and
the sm2-sm4-gcm envelope."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from agent.security import gm
from agent.security.keys import (
    SM2,
    FileSigner,
    KeyPermissionError,
    KeyUnsupported,
    generate_file_key,
    load_public_key_pem,
    load_signer,
    public_key_id,
    verify_signature,
)
from agent.uplink.seal import INFO_PREFIX, ProbeRejected, ServerKey, gm_open, gm_seal, load_public_key

# GM/T 0003.5-2012 / GB/T 32918.5-2017 Annex A, on the recommended curve sm2p256v1.
KAT_D = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
KAT_P = bytes.fromhex("04" "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
                      "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
KAT_R = 0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3
KAT_S = 0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA
# The same annex's encryption of "encryption standard" to that key, in GM/T 0009 C1C3C2 DER.
KAT_CT = bytes.fromhex(
    "307c022004EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73022100E858F9D81E5430A57B36DAAB8F950A3C"
    "64E6EE6A63094D99283AFF767E124DF0042059983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766041321886C"
    "A989CA9C7D58087307CA93092D651EFA")


def test_sm3_known_answers():
    # GB/T 32905-2016 Annex A, examples 1 and 2.
    assert gm.sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert gm.sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_sm4_known_answers():
    # GB/T 32907-2016 Annex A example 1 (the block cipher) and RFC 8998 A.1 (SM4-GCM, as sealing uses it).
    k = bytes.fromhex("0123456789abcdeffedcba9876543210")
    enc = Cipher(algorithms.SM4(k), modes.ECB()).encryptor()
    assert (enc.update(k) + enc.finalize()).hex() == "681edf34d206965e86b3e94f536e4246"
    iv = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    pt = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
                       "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA")
    out = gm.sm4_gcm_encrypt(k, iv, pt, aad)
    assert out.hex().upper() == ("17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
                                 "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
                                 "83DE3541E4C2B58177E065A9BF7B62EC")
    assert gm.sm4_gcm_decrypt(k, iv, out, aad) == pt
    for i in (0, 40, len(out) - 1):
        bad = bytearray(out)
        bad[i] ^= 1
        with pytest.raises(InvalidTag):
            gm.sm4_gcm_decrypt(k, iv, bytes(bad), aad)
    with pytest.raises(InvalidTag):
        gm.sm4_gcm_decrypt(k, iv, out, aad + b"x")


def test_sm2_known_answers():
    pub = gm.Sm2PublicKey(KAT_P)
    sig = encode_dss_signature(KAT_R, KAT_S)
    assert pub.verify(sig, b"message digest")
    assert not pub.verify(sig, b"message digesT")
    key = gm.Sm2PrivateKey(KAT_D, pub)                      # also proves the pair matches
    assert key.decrypt(KAT_CT) == b"encryption standard"
    other = gm.Sm2PrivateKey.generate()
    with pytest.raises(gm.GmError):
        other.decrypt(KAT_CT)


def test_sm2_sign_verify_encrypt_round_trip():
    key = gm.Sm2PrivateKey.generate()
    sig = key.sign(b"header||ciphertext")
    assert key.public_key().verify(sig, b"header||ciphertext")
    assert not key.public_key().verify(sig, b"header||ciphertexT")
    assert not gm.Sm2PrivateKey.generate().public_key().verify(sig, b"header||ciphertext")
    assert not key.public_key().verify(b"\x30\x00", b"header||ciphertext")
    assert key.decrypt(key.public_key().encrypt(b"k" * 16)) == b"k" * 16


def test_points_off_the_curve_and_bad_scalars_are_refused():
    bad = bytearray(KAT_P)
    bad[-1] ^= 1
    with pytest.raises(gm.GmError, match="not a point"):
        gm.Sm2PublicKey(bytes(bad))
    with pytest.raises(gm.GmError):
        gm.Sm2PublicKey(KAT_P[1:])
    with pytest.raises(gm.GmError):
        gm.Sm2PrivateKey(b"\0" * 32, gm.Sm2PublicKey(KAT_P))
    with pytest.raises(gm.GmError, match="does not match"):
        gm.Sm2PrivateKey(KAT_D, gm.Sm2PrivateKey.generate().public_key())
    with pytest.raises(ProbeRejected, match="not a valid"):
        load_public_key("sm2-sm4-gcm", bytes(bad))


def test_sm2_file_key_round_trip_and_permissions(tmp_path):
    s = generate_file_key(tmp_path / "sm2.pem", SM2)
    assert (os.stat(tmp_path / "sm2.pem").st_mode & 0o777) == 0o600
    again = load_signer(f"file:{tmp_path / 'sm2.pem'}")
    assert again.algorithm == SM2 and again.key_id == s.key_id
    sig = again.sign(b"probe")
    assert verify_signature(s.public_key(), SM2, b"probe", sig)
    assert not verify_signature(s.public_key(), SM2, b"probf", sig)
    assert not verify_signature(s.public_key(), "ed25519", b"probe", sig)
    pem = s.public_key_pem()
    assert load_public_key_pem(pem) == s.public_key() and public_key_id(load_public_key_pem(pem)) == s.key_id
    secret = (tmp_path / "sm2.pem").read_text().splitlines()[1]
    assert secret not in repr(s) and secret not in repr(s.public_key())
    os.chmod(tmp_path / "sm2.pem", 0o644)
    with pytest.raises(KeyPermissionError):
        FileSigner(tmp_path / "sm2.pem")


@pytest.fixture
def openssl(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (make setup installs it)")

    def run(*args, check=True):
        return subprocess.run(["openssl", *map(str, args)], cwd=tmp_path, capture_output=True, check=check)
    return run


def test_interoperates_with_openssl_sm2(tmp_path, openssl):
    # OpenSSL's key file loads; our signatures verify in OpenSSL with the default ID and OpenSSL's in ours.
    openssl("genpkey", "-algorithm", "SM2", "-out", "k.pem")
    os.chmod(tmp_path / "k.pem", 0o600)
    openssl("pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem")
    signer = FileSigner(tmp_path / "k.pem")
    assert signer.algorithm == SM2
    assert load_public_key_pem((tmp_path / "pub.pem").read_bytes()) == signer.public_key()
    (tmp_path / "msg").write_bytes(b"header||ciphertext")
    (tmp_path / "ours.der").write_bytes(signer.sign(b"header||ciphertext"))
    ok = openssl("pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg", "-digest", "sm3",
                 "-sigfile", "ours.der", "-pkeyopt", "distid:1234567812345678", check=False)
    assert ok.returncode == 0 and b"Signature Verified Successfully" in ok.stdout
    openssl("pkeyutl", "-sign", "-inkey", "k.pem", "-rawin", "-in", "msg", "-digest", "sm3",
            "-pkeyopt", "distid:1234567812345678", "-out", "theirs.der")
    assert signer.public_key().verify((tmp_path / "theirs.der").read_bytes(), b"header||ciphertext")
    # Without the agreed ID the signature is another one: refused (the profile fixes the ID).
    openssl("pkeyutl", "-sign", "-inkey", "k.pem", "-rawin", "-in", "msg", "-digest", "sm3", "-out", "noid.der")
    assert not signer.public_key().verify((tmp_path / "noid.der").read_bytes(), b"header||ciphertext")
    # Our key file is OpenSSL's format; SM2 encryption goes both ways (the envelope's key wrap).
    ours = generate_file_key(tmp_path / "ours.pem", SM2)
    pub = openssl("pkey", "-in", "ours.pem", "-pubout").stdout
    assert load_public_key_pem(pub) == ours.public_key()
    (tmp_path / "wrapped.der").write_bytes(ours.public_key().encrypt(b"\x01" * 16))
    assert openssl("pkeyutl", "-decrypt", "-inkey", "ours.pem", "-in", "wrapped.der").stdout == b"\x01" * 16
    (tmp_path / "key16").write_bytes(b"\x02" * 16)
    (tmp_path / "ourspub.pem").write_bytes(pub)
    openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", "ourspub.pem", "-in", "key16", "-out", "theirs.ct")
    theirs = gm.Sm2PrivateKey.from_pkcs8_pem((tmp_path / "ours.pem").read_bytes())
    assert theirs.decrypt((tmp_path / "theirs.ct").read_bytes()) == b"\x02" * 16


def test_key_file_without_its_public_key_is_refused(tmp_path, openssl):
    # An EC private key without the optional public key field (what some tools write).
    from asn1crypto import keys, pem
    key = gm.Sm2PrivateKey.generate()
    der = pem.unarmor(key.pkcs8_pem())[2]
    info = keys.PrivateKeyInfo.load(der)
    ec = info["private_key"].parsed
    stripped = keys.ECPrivateKey({"version": "ecPrivkeyVer1", "private_key": ec["private_key"].native})
    info2 = keys.PrivateKeyInfo({"version": 0, "private_key_algorithm": info["private_key_algorithm"],
                                 "private_key": stripped})
    path = tmp_path / "nopub.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, pem.armor("PRIVATE KEY", info2.dump()))
    os.close(fd)
    with pytest.raises(KeyUnsupported, match="lacks its public key"):
        FileSigner(path)


OPEN_FAILS = (ValueError, gm.GmError, InvalidTag)       # malformed, key unwrap refused, GCM tag wrong


def test_envelope_round_trip_and_every_alteration_fails():
    server = ServerKey.generate("sm2-sm4-gcm")
    assert len(server.public_bytes) == 65 and server.public_bytes[0] == 4
    restored = ServerKey.from_private_bytes("sm2-sm4-gcm", server.private_bytes())
    assert restored.key_id == server.key_id
    info = INFO_PREFIX + b"header bytes"
    payload = os.urandom(5000)
    ct = gm_seal(payload, load_public_key("sm2-sm4-gcm", server.public_bytes), info)
    assert restored.decrypt(ct, info) == payload
    with pytest.raises(OPEN_FAILS):
        server.decrypt(ct, INFO_PREFIX + b"header byteS")           # the header is bound
    for i in (0, 1, 5, 60, 140, len(ct) - 20, len(ct) - 1):        # length, wrapped key, iv, body, tag
        bad = bytearray(ct)
        bad[i] ^= 0x40
        with pytest.raises(OPEN_FAILS):
            server.decrypt(bytes(bad), info)
    with pytest.raises(OPEN_FAILS):
        ServerKey.generate("sm2-sm4-gcm").decrypt(ct, info)         # another server key
    with pytest.raises(OPEN_FAILS):
        gm_open(ct[:30], server._private, info)                      # truncated
