"""National (GM, 国密) algorithms for deployments that require them: SM2, SM3, SM4.

* SM3 (GB/T 32905-2016, GM/T 0004) and SM4 (GB/T 32907-2016, GM/T 0002) come from ``cryptography``
  (its OpenSSL has both); SM4 is used in GCM mode (the AEAD of RFC 8998), 12-byte IV, 16-byte tag.
* SM2 (GB/T 32918-2016, GM/T 0003) comes from ``gmssl_pyx`` (GmSSL 3, statically linked), because
  ``cryptography`` has no SM2 curve. Signatures are SM2 with SM3 over ``Z || M``, where Z hashes the
  signer ID; the ID is the GM/T 0009 default ``1234567812345678`` (what OpenSSL calls ``distid``):
  signer and verifier must agree on it or every signature fails. Encryption is GM/T 0003.4 with the
  GM/T 0009 C1C3C2 DER encoding, for at most 255 bytes (a wrapped SM4 key here).
* Key files: PKCS#8 PEM as ``openssl genpkey -algorithm SM2`` writes them (id-ecPublicKey with the
  curve OID 1.2.156.10197.1.301); public keys as SubjectPublicKeyInfo PEM, as ``openssl pkey
  -pubout`` writes them. The private key file must carry its public key (OpenSSL's always does):
  deriving it would need a scalar multiplication no maintained library here exposes.

Public points that arrive from outside (a challenge, a config file) are checked to lie on the curve
before use. Private key bytes are held as Python ``bytes`` (GmSSL's API takes them so) and are never
logged or put in a repr.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from drivers.errors import CaptureAgentError

SM2_ID = b"1234567812345678"                 # GM/T 0009 default signer ID
SM2_CURVE_OID = "1.2.156.10197.1.301"
EC_PUBLIC_KEY_OID = "1.2.840.10045.2.1"
# sm2p256v1 (GB/T 32918.5-2016): y^2 = x^3 + a x + b over F_p, prime order n, cofactor 1.
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = P - 3
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0
# SubjectPublicKeyInfo DER up to the 65-byte point: SEQUENCE { SEQUENCE { id-ecPublicKey, sm2 }, BIT STRING }
SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")
SM4_KEY, GCM_IV, GCM_TAG = 16, 12, 16


class GmError(CaptureAgentError):
    code = "KEY_UNSUPPORTED"


def _gmssl() -> Any:
    try:
        import gmssl_pyx
    except ImportError:
        raise GmError("the GM profile needs gmssl_pyx (pip install 'capture-agent[gm]')") from None
    return gmssl_pyx


def sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def sm4_gcm_encrypt(key: bytes, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """SM4-GCM: ciphertext || 16-byte tag."""
    if len(key) != SM4_KEY or len(iv) != GCM_IV:
        raise GmError("SM4-GCM needs a 16-byte key and a 12-byte IV")
    enc = Cipher(algorithms.SM4(key), modes.GCM(iv)).encryptor()
    enc.authenticate_additional_data(aad)
    ct = enc.update(plaintext) + enc.finalize()
    return ct + enc.tag


def sm4_gcm_decrypt(key: bytes, iv: bytes, data: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`sm4_gcm_encrypt`; raises ``cryptography.exceptions.InvalidTag`` on any change."""
    if len(key) != SM4_KEY or len(iv) != GCM_IV or len(data) < GCM_TAG:
        raise InvalidTag()
    dec = Cipher(algorithms.SM4(key), modes.GCM(iv, data[-GCM_TAG:])).decryptor()
    dec.authenticate_additional_data(aad)
    return dec.update(data[:-GCM_TAG]) + dec.finalize()


def on_curve(x: int, y: int) -> bool:
    """The affine point lies on sm2p256v1 (public data: plain integer arithmetic is fine)."""
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


class Sm2PublicKey:
    """An SM2 public key (the uncompressed point ``04 || X || Y``), checked to lie on the curve."""

    def __init__(self, point: bytes):
        if len(point) != 65 or point[0] != 0x04:
            raise GmError("an SM2 public key is a 65-byte uncompressed point (04 || X || Y)")
        x, y = int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big")
        if not on_curve(x, y):
            raise GmError("SM2 public key is not a point on the SM2 curve")
        self.point = bytes(point)

    @classmethod
    def from_spki_der(cls, der: bytes) -> Sm2PublicKey:
        if len(der) != len(SPKI_PREFIX) + 65 or not der.startswith(SPKI_PREFIX):
            raise GmError("not an SM2 SubjectPublicKeyInfo (id-ecPublicKey on curve 1.2.156.10197.1.301)")
        return cls(der[len(SPKI_PREFIX):])

    @classmethod
    def from_pem(cls, data: bytes) -> Sm2PublicKey:
        from asn1crypto import pem
        try:
            kind, _, der = pem.unarmor(data)
        except ValueError:
            raise GmError("not a PEM public key") from None
        if kind != "PUBLIC KEY":
            raise GmError(f"expected a PEM PUBLIC KEY, got {kind[:40]!r}")
        return cls.from_spki_der(der)

    def spki_der(self) -> bytes:
        return SPKI_PREFIX + self.point

    def public_bytes(self, encoding: serialization.Encoding, format: serialization.PublicFormat) -> bytes:
        """SubjectPublicKeyInfo as DER or PEM (the part of cryptography's interface the agent uses)."""
        if format is not serialization.PublicFormat.SubjectPublicKeyInfo:
            raise GmError("SM2 public keys are written as SubjectPublicKeyInfo only")
        if encoding is serialization.Encoding.DER:
            return self.spki_der()
        if encoding is serialization.Encoding.PEM:
            from asn1crypto import pem
            return pem.armor("PUBLIC KEY", self.spki_der())
        raise GmError("SM2 public keys are written as DER or PEM only")

    def verify(self, signature: bytes, data: bytes) -> bool:
        """SM2 with SM3 and the default ID; False for any bad or malformed signature."""
        if not 8 <= len(signature) <= 72:
            return False
        g = _gmssl()
        try:
            return bool(g.sm2_verify(self.point[1:], data, signature, SM2_ID))
        except (g.GmsslInnerError, ValueError, TypeError):
            return False

    def encrypt(self, plaintext: bytes) -> bytes:
        """GM/T 0003.4 encryption to this key, C1C3C2 DER (GM/T 0009); 1-255 bytes."""
        if not 1 <= len(plaintext) <= 255:
            raise GmError("SM2 encrypts 1-255 bytes")
        return bytes(_gmssl().sm2_encrypt(self.point[1:], plaintext))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sm2PublicKey) and other.point == self.point

    def __hash__(self) -> int:
        return hash(self.point)

    def __repr__(self) -> str:
        return f"Sm2PublicKey({self.point[1:9].hex()}...)"


class Sm2PrivateKey:
    """An SM2 private key with its public key. Never printed."""

    def __init__(self, secret: bytes, public: Sm2PublicKey):
        d = int.from_bytes(secret, "big") if len(secret) == 32 else 0
        if not 1 <= d <= N - 2:                        # GB/T 32918.1: d in [1, n-2]
            raise GmError("an SM2 private key is 32 bytes in [1, n-2]")
        self._secret = bytes(secret)
        self._public = public
        # A key file could pair a private key with someone else's public key: prove they match.
        probe = os.urandom(16)
        if not public.verify(self.sign(probe), probe):
            raise GmError("the SM2 private key does not match the public key stored with it")

    @classmethod
    def generate(cls) -> Sm2PrivateKey:
        pub, secret = _gmssl().sm2_key_generate()
        return cls(bytes(secret), Sm2PublicKey(b"\x04" + bytes(pub)))

    def public_key(self) -> Sm2PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        """SM2 signature with SM3 over Z(ID, key) || data; DER SEQUENCE { r, s }."""
        return bytes(_gmssl().sm2_sign(self._secret, self._public.point[1:], data, SM2_ID))

    def decrypt(self, ciphertext: bytes) -> bytes:
        g = _gmssl()
        if not 45 <= len(ciphertext) <= 366:
            raise GmError("SM2 ciphertext has an impossible length")
        try:
            return bytes(g.sm2_decrypt(self._secret, ciphertext))
        except (g.GmsslInnerError, ValueError, TypeError):
            raise GmError("SM2 ciphertext does not decrypt") from None

    def private_bytes_raw(self) -> bytes:
        """The 32-byte scalar (for a 0600 key file; never logged)."""
        return self._secret

    def pkcs8_pem(self) -> bytes:
        """PKCS#8 PEM as OpenSSL writes SM2 keys (the public key included)."""
        from asn1crypto import pem
        keys = _asn1_keys()
        ec = keys.ECPrivateKey({"version": "ecPrivkeyVer1", "private_key": int.from_bytes(self._secret, "big"),
                                "public_key": self._public.point})
        info = keys.PrivateKeyInfo({
            "version": 0,
            "private_key_algorithm": {"algorithm": "ec", "parameters": ("named", SM2_CURVE_OID)},
            "private_key": ec,
        })
        return pem.armor("PRIVATE KEY", info.dump())

    @classmethod
    def from_pkcs8_pem(cls, data: bytes) -> Sm2PrivateKey:
        from asn1crypto import pem
        keys = _asn1_keys()
        try:
            kind, _, der = pem.unarmor(data)
            if kind != "PRIVATE KEY":
                raise ValueError(kind)
            info = keys.PrivateKeyInfo.load(der, strict=True)
            alg = info["private_key_algorithm"]
            if alg["algorithm"].dotted != EC_PUBLIC_KEY_OID or alg["parameters"].chosen.dotted != SM2_CURVE_OID:
                raise GmError("key file does not hold an SM2 key")
            ec = info["private_key"].parsed
            secret = int(ec["private_key"].native).to_bytes(32, "big")
            point = ec["public_key"].native
        except GmError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            raise GmError("not a PKCS#8 PEM SM2 private key") from None
        if not point:
            raise GmError("the SM2 key file lacks its public key (write it with openssl genpkey -algorithm SM2)")
        return cls(secret, Sm2PublicKey(bytes(point)))

    def __repr__(self) -> str:
        return f"Sm2PrivateKey(public={self._public!r})"


def _asn1_keys() -> Any:
    """asn1crypto's key module with the SM2 curve registered (it needs the key size to encode)."""
    from asn1crypto import keys
    if SM2_CURVE_OID not in keys.NamedCurve._map:
        keys.NamedCurve.register("sm2p256v1", SM2_CURVE_OID, 32)
    return keys


def is_sm2_pem(data: bytes) -> bool:
    """True if ``data`` is a PEM key (private or public) on the SM2 curve, without parsing it fully."""
    from asn1crypto import pem
    try:
        kind, _, der = pem.unarmor(data)
    except (ValueError, TypeError):
        return False
    oid = bytes.fromhex("06082a811ccf5501822d")            # OBJECT IDENTIFIER 1.2.156.10197.1.301
    return kind in ("PRIVATE KEY", "PUBLIC KEY") and oid in der[:40]
