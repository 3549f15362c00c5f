"""Sealing and opening probes: HPKE (RFC 9180) to the server's key, signed by the terminal's key.

Wire format (``SealedProbe`` in ``proto/capture_agent/v1/ingest.proto``):

* ``header``: a serialized ``ProbeHeader`` (probe id, terminal, session, counter, nonce, server key
  id, suite, time, signer key id and algorithm, purpose);
* ``ciphertext``: HPKE single-shot ``enc || ct`` of a serialized ``ProbePayload``, with
  ``info = INFO_PREFIX || header``: the header is bound into the key schedule, so changing one byte
  of it makes decryption fail (cryptography's one-shot HPKE API exposes ``info``, not a separate
  AAD; binding through ``info`` gives the same integrity guarantee for the header);
* ``signature``: the terminal key over ``u32be(len(header)) || header || ciphertext``.

Suites: ``x25519`` = DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM (the RFC 9180 default
profile); ``mlkem768-x25519`` = the ML-KEM-768 + X25519 hybrid KEM, HKDF-SHA256, AES-256-GCM, for
face data that must stay secret after large quantum computers exist (harvest now, decrypt later).

``sm2-sm4-gcm`` is the GM profile's suite, for deployments that must use national algorithms. There
is no standardised HPKE with SM2 (no SM2 KEM or SM4 AEAD in the HPKE registry, and no maintained
Python library exposes SM2 key agreement), so it is a GM/T 0010-style digital envelope instead:
a fresh 16-byte SM4 key is SM2-encrypted to the server's SM2 key (GM/T 0003.4, C1C3C2 DER) and the
payload is SM4-GCM under it with ``aad = INFO_PREFIX || header || wrapped key``. The ciphertext is
``u16be(len(wrapped)) || wrapped || iv(12) || SM4-GCM ciphertext || tag(16)``. As with HPKE's base
mode, a probe stays secret as long as the server's private key does. The crop digests in the
payload are SM3 (``Crop.sm3``) under this suite, and the terminal signs with SM2-with-SM3
(``agent/security/gm.py``); the mTLS transport stays ECDSA P-256 (gRPC's BoringSSL has no SM suites).

The server opens a probe in this order, and each failure has its own reason code: parse header
(``MALFORMED``) → terminal known (``UNKNOWN_TERMINAL``) → signature (``TAMPERED``) → server key id
(``WRONG_KEY``) → decrypt (``TAMPERED``) → parse payload (``MALFORMED``).
"""

from __future__ import annotations

import hashlib
import os
import struct

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from google.protobuf.message import DecodeError

from agent.security import gm
from drivers.errors import CaptureAgentError
from proto.capture_agent.v1 import ingest_pb2 as pb

INFO_PREFIX = b"capture-agent/probe/v1\x00"
HPKE_SUITES = {
    "x25519": hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM),
    "mlkem768-x25519": hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
}
GM_SUITE = "sm2-sm4-gcm"
STANDARD_SUITES = tuple(HPKE_SUITES)             # what a terminal of the standard profile accepts
GM_SUITES = (GM_SUITE,)                          # ... and of the GM profile
SUITES = STANDARD_SUITES + GM_SUITES
PROFILE_SUITES = {"standard": STANDARD_SUITES, "gm": GM_SUITES}     # [keys] profile -> accepted suites
MAX_HEADER = 4096
MAX_CIPHERTEXT = 8 << 20


class ProbeRejected(CaptureAgentError):
    """A probe failed a check; ``reason`` is the receipt's reason code."""

    code = "PRB_REJECTED"

    def __init__(self, reason: str, message: str):
        super().__init__(message, code=f"PRB_{reason}")
        self.reason = reason


class ServerKey:
    """The server's key pair for one suite; ``key_id`` names it in challenges and headers.

    ``parts`` holds the private keys: one X25519 key, (ML-KEM-768, X25519) for the hybrid, or one
    SM2 key (``gm.Sm2PrivateKey``) for the GM suite."""

    def __init__(self, suite: str, parts: tuple):
        self._private: object
        if suite == "x25519" and len(parts) == 1:
            self._private = parts[0]
            self.public_bytes = parts[0].public_key().public_bytes_raw()
        elif suite == "mlkem768-x25519" and len(parts) == 2:
            self._private = hpke.MLKEM768X25519PrivateKey(parts[0], parts[1])
            self.public_bytes = parts[0].public_key().public_bytes_raw() + parts[1].public_key().public_bytes_raw()
        elif suite == GM_SUITE and len(parts) == 1 and isinstance(parts[0], gm.Sm2PrivateKey):
            self._private = parts[0]
            self.public_bytes = parts[0].public_key().point          # 04 || X || Y
        else:
            raise ProbeRejected("WRONG_KEY", f"unknown HPKE suite {suite!r}")
        self.suite, self._parts = suite, parts
        self.key_id = hashlib.sha256(suite.encode() + b"\0" + self.public_bytes).hexdigest()[:16]

    @classmethod
    def generate(cls, suite: str = "x25519") -> ServerKey:
        if suite == "x25519":
            return cls(suite, (X25519PrivateKey.generate(),))
        if suite == "mlkem768-x25519":
            return cls(suite, (MLKEM768PrivateKey.generate(), X25519PrivateKey.generate()))
        if suite == GM_SUITE:
            return cls(suite, (gm.Sm2PrivateKey.generate(),))
        raise ProbeRejected("WRONG_KEY", f"unknown HPKE suite {suite!r}")

    def private_bytes(self) -> bytes:
        """Raw private key material (for the server's 0600 key file; never logged). For SM2 the
        public point follows the scalar: it cannot be derived here."""
        if self.suite == GM_SUITE:
            return self._parts[0].private_bytes_raw() + self.public_bytes
        return b"".join(p.private_bytes_raw() for p in self._parts)

    @classmethod
    def from_private_bytes(cls, suite: str, raw: bytes) -> ServerKey:
        if suite == "x25519" and len(raw) == 32:
            return cls(suite, (X25519PrivateKey.from_private_bytes(raw),))
        if suite == "mlkem768-x25519" and len(raw) == 96:
            return cls(suite, (MLKEM768PrivateKey.from_seed_bytes(raw[:64]),
                               X25519PrivateKey.from_private_bytes(raw[64:])))
        if suite == GM_SUITE and len(raw) == 32 + 65:
            try:
                return cls(suite, (gm.Sm2PrivateKey(raw[:32], gm.Sm2PublicKey(raw[32:])),))
            except gm.GmError:
                pass
        raise ProbeRejected("WRONG_KEY", f"bad private key for suite {suite!r}")

    def decrypt(self, ciphertext: bytes, info: bytes) -> bytes:
        if self.suite == GM_SUITE:
            assert isinstance(self._private, gm.Sm2PrivateKey)
            return gm_open(ciphertext, self._private, info)
        return HPKE_SUITES[self.suite].decrypt(ciphertext, self._private, info=info)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"ServerKey(suite={self.suite!r}, key_id={self.key_id!r})"


def load_public_key(suite: str, raw: bytes):
    """The public key object for ``raw`` bytes from a challenge (validated length; an SM2 point must
    lie on the curve)."""
    try:
        if suite == GM_SUITE:
            return gm.Sm2PublicKey(raw)
        if suite == "x25519" and len(raw) == 32:
            return X25519PublicKey.from_public_bytes(raw)
        if suite == "mlkem768-x25519" and len(raw) == 1184 + 32:
            return hpke.MLKEM768X25519PublicKey(MLKEM768PublicKey.from_public_bytes(raw[:1184]),
                                                X25519PublicKey.from_public_bytes(raw[1184:]))
    except (ValueError, gm.GmError):
        pass
    raise ProbeRejected("WRONG_KEY", f"server public key is not a valid {suite!r} key")


def gm_seal(plaintext: bytes, server_key: gm.Sm2PublicKey, info: bytes) -> bytes:
    """The GM suite's envelope (see the module docstring)."""
    key, iv = os.urandom(gm.SM4_KEY), os.urandom(gm.GCM_IV)
    wrapped = server_key.encrypt(key)
    return struct.pack(">H", len(wrapped)) + wrapped + iv + gm.sm4_gcm_encrypt(key, iv, plaintext, info + wrapped)


def gm_open(ciphertext: bytes, private_key: gm.Sm2PrivateKey, info: bytes) -> bytes:
    """Inverse of :func:`gm_seal`; raises on any malformed or altered byte."""
    if len(ciphertext) < 2:
        raise ValueError("GM envelope too short")
    (n,) = struct.unpack(">H", ciphertext[:2])
    wrapped, rest = ciphertext[2:2 + n], ciphertext[2 + n:]
    if len(wrapped) != n or len(rest) < gm.GCM_IV + gm.GCM_TAG:
        raise ValueError("GM envelope truncated")
    key = private_key.decrypt(wrapped)
    if len(key) != gm.SM4_KEY:
        raise ValueError("GM envelope wraps a key of the wrong size")
    return gm.sm4_gcm_decrypt(key, rest[:gm.GCM_IV], rest[gm.GCM_IV:], info + wrapped)


def digest_field(suite: str) -> str:
    """The ``Crop`` field that carries the crops' digests under ``suite``: SM3 in the GM profile."""
    return "sm3" if suite in GM_SUITES else "sha256"


def crop_digest(suite: str, pixels: bytes) -> bytes:
    return gm.sm3(pixels) if suite in GM_SUITES else hashlib.sha256(pixels).digest()


def crop_digest_matches(crop: pb.Crop, suite: str) -> bool:
    """The crop carries the digest ``suite`` calls for, and it is its pixels' (and no other digest field)."""
    field, other = ("sm3", "sha256") if suite in GM_SUITES else ("sha256", "sm3")
    return not getattr(crop, other) and getattr(crop, field) == crop_digest(suite, crop.pixels)


def signed_bytes(header: bytes, ciphertext: bytes) -> bytes:
    return struct.pack(">I", len(header)) + header + ciphertext


def seal(header: pb.ProbeHeader, payload: bytearray, server_public_key, signer) -> pb.SealedProbe:
    """Encrypt ``payload`` (a serialized ProbePayload, in a bytearray that is zeroed afterwards) to
    the server and sign; ``header`` must already name the suite, server key and signer."""
    if header.hpke_suite not in SUITES:
        raise ProbeRejected("WRONG_KEY", f"unknown HPKE suite {header.hpke_suite!r}")
    hdr = header.SerializeToString(deterministic=True)
    try:
        if header.hpke_suite == GM_SUITE:
            ct = gm_seal(bytes(payload), server_public_key, INFO_PREFIX + hdr)
        else:
            ct = HPKE_SUITES[header.hpke_suite].encrypt(bytes(payload), server_public_key, info=INFO_PREFIX + hdr)
    finally:
        wipe(payload)
    sig = signer.sign(signed_bytes(hdr, ct))
    return pb.SealedProbe(header=hdr, ciphertext=ct, signature=sig)


def wipe(buf: bytearray) -> None:
    """Overwrite a buffer that held face data (best effort in Python: the bytearray itself)."""
    buf[:] = b"\0" * len(buf)


def read_header(sealed: pb.SealedProbe) -> pb.ProbeHeader:
    if not sealed.header or len(sealed.header) > MAX_HEADER:
        raise ProbeRejected("MALFORMED", "probe header missing or too large")
    if not sealed.ciphertext or len(sealed.ciphertext) > MAX_CIPHERTEXT:
        raise ProbeRejected("MALFORMED", "probe ciphertext missing or too large")
    h = pb.ProbeHeader()
    try:
        h.ParseFromString(sealed.header)
    except DecodeError:
        raise ProbeRejected("MALFORMED", "probe header does not parse") from None
    if h.version != 1 or not h.probe_id or not h.terminal_id or len(h.nonce) != 32:
        raise ProbeRejected("MALFORMED", "probe header lacks version 1, probe id, terminal id or a 32-byte nonce")
    if h.hpke_suite not in SUITES:
        raise ProbeRejected("WRONG_KEY", f"unknown HPKE suite {h.hpke_suite[:40]!r}")
    return h


def open_sealed(sealed: pb.SealedProbe, header: pb.ProbeHeader, server_keys: dict[str, ServerKey]) -> pb.ProbePayload:
    """Pick the server key, decrypt with the header bound, parse. The caller has already verified
    the terminal's signature (see the module docstring for the order)."""
    key = server_keys.get(header.server_key_id)
    if key is None or key.suite != header.hpke_suite:
        raise ProbeRejected("WRONG_KEY", "probe is sealed to a server key this server does not hold")
    try:
        plain = key.decrypt(sealed.ciphertext, INFO_PREFIX + sealed.header)
    except Exception:
        raise ProbeRejected("TAMPERED", "probe does not decrypt (ciphertext or header altered, or wrong key)") from None
    payload = pb.ProbePayload()
    try:
        payload.ParseFromString(plain)
    except DecodeError:
        raise ProbeRejected("MALFORMED", "probe payload does not parse") from None
    return payload
