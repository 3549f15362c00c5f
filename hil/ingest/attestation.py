"""The server's check of a terminal's TPM quote (``ProbeHeader.platform_quote``).

A terminal registered with an attestation policy (its attestation key and the PCR values it must
report, from ``capture-agent keys tpm-enrol``) must send, in every probe header, a TPM2_Quote that

1. is signed (ECDSA P-256 / SHA-256) by the registered attestation key;
2. is a TPM-generated quote (magic ``TPM_GENERATED``, type ``TPM_ST_ATTEST_QUOTE``): the key is a
   restricted one, so the TPM signs no outside data that starts with that magic;
3. carries ``SHA-256("capture-agent/quote/v1\\0" || nonce)`` as its extraData: made for this challenge,
   not replayed from an earlier one;
4. covers exactly the registered PCR bank and indices, with a pcrDigest equal to the hash of the
   values sent alongside, and every value equal to the registered one.

Any failure is ``ATTESTATION_FAILED``; the detail names the PCR indices that differ (indices are not
secret, values are not echoed). The TPMS_ATTEST parser is strict and bounded: the quote arrives from
the network. A terminal registered without a policy is not asked for a quote (and one it sends is
ignored).

Trust: the attestation key is taken as registered. Proving that it lives in a genuine TPM (EK
certificate and credential activation) is enrolment's job and is not done by this reference server.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.security.tpm import quote_qualifier
from agent.uplink.seal import ProbeRejected
from proto.capture_agent.v1 import ingest_pb2 as pb

TPM_GENERATED = 0xFF544347
TPM_ST_ATTEST_QUOTE = 0x8018
BANK_ALG = {"sha1": 0x0004, "sha256": 0x000B, "sha384": 0x000C}
BANK_SIZE = {"sha1": 20, "sha256": 32, "sha384": 48}
MAX_ATTEST = 1024
MAX_PCRS = 24
REASON = "ATTESTATION_FAILED"


def _fail(message: str) -> ProbeRejected:
    return ProbeRejected(REASON, message)


@dataclass(frozen=True)
class AttestationPolicy:
    """What a registered terminal's quotes must show."""

    attestation_key: ec.EllipticCurvePublicKey
    bank: str
    expected: dict[int, bytes]                  # PCR index -> value

    @property
    def pcrs(self) -> tuple[int, ...]:
        return tuple(sorted(self.expected))

    @classmethod
    def from_registration(cls, doc: dict[str, Any]) -> AttestationPolicy:
        """From the ``registration`` document ``capture-agent keys tpm-enrol`` writes."""
        try:
            key = serialization.load_pem_public_key(doc["attestation_key"].encode())
            bank = doc["pcr_bank"]
            expected = {int(i): bytes.fromhex(v) for i, v in doc["pcrs"].items()}
        except (KeyError, ValueError, TypeError, AttributeError):
            raise ValueError("attestation registration needs attestation_key (PEM), pcr_bank and pcrs "
                             "{index: hex}") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("the attestation key must be ECDSA P-256")
        if bank not in BANK_ALG or not expected or not all(0 <= i < MAX_PCRS for i in expected) \
                or any(len(v) != BANK_SIZE[bank] for v in expected.values()):
            raise ValueError("attestation registration has a bad PCR bank, index or value length")
        return cls(key, bank, expected)

    @classmethod
    def load(cls, path: str | Path) -> AttestationPolicy:
        try:
            return cls.from_registration(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read attestation registration {path}: {exc}") from None


@dataclass(frozen=True)
class QuoteInfo:
    """The parts of a TPMS_ATTEST (quote) the check needs."""

    extra_data: bytes
    selection: tuple[tuple[int, bytes], ...]     # (hash algorithm id, select bitmap) per bank
    pcr_digest: bytes
    reset_count: int
    clock_ms: int


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise _fail("TPM quote is truncated")
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def u(self, fmt: str) -> int:
        return int(struct.unpack(">" + fmt, self.take(struct.calcsize(fmt)))[0])

    def sized(self, limit: int) -> bytes:
        n = self.u("H")
        if n > limit:
            raise _fail("TPM quote has an oversized field")
        return self.take(n)


def parse_quote(attest: bytes) -> QuoteInfo:
    """Parse a marshalled TPMS_ATTEST that must be a quote; strict (no trailing bytes)."""
    if not attest or len(attest) > MAX_ATTEST:
        raise _fail("TPM quote is missing or too large")
    r = _Reader(attest)
    if r.u("I") != TPM_GENERATED:
        raise _fail("TPM quote was not generated by a TPM (bad magic)")
    if r.u("H") != TPM_ST_ATTEST_QUOTE:
        raise _fail("TPM attestation is not a quote")
    r.sized(2 + 64)                                # qualifiedSigner (TPM2B_NAME)
    extra = r.sized(64)                            # extraData (TPM2B_DATA)
    clock, reset, _restart, _safe = r.u("Q"), r.u("I"), r.u("I"), r.u("B")
    r.u("Q")                                       # firmwareVersion
    count = r.u("I")
    if not 1 <= count <= 4:
        raise _fail("TPM quote selects no PCR bank or too many")
    selection = []
    for _ in range(count):
        alg, size = r.u("H"), r.u("B")
        if not 1 <= size <= 4:
            raise _fail("TPM quote has a bad PCR bitmap size")
        selection.append((alg, r.take(size)))
    digest = r.sized(64)
    if r.at != len(attest):
        raise _fail("TPM quote has trailing bytes")
    return QuoteInfo(extra, tuple(selection), digest, reset, clock)


def _bitmap(indices: tuple[int, ...]) -> bytes:
    out = bytearray(3)
    for i in indices:
        out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def check_quote(policy: AttestationPolicy, header: pb.ProbeHeader) -> QuoteInfo:
    """Raise ``ATTESTATION_FAILED`` unless the header's quote shows ``policy`` for this nonce."""
    if not header.HasField("platform_quote"):
        raise _fail("this terminal must send a TPM quote with every probe, and this probe has none")
    q = header.platform_quote
    if not 8 <= len(q.signature) <= 80:
        raise _fail("TPM quote signature is missing or malformed")
    try:
        policy.attestation_key.verify(q.signature, q.attest, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise _fail("TPM quote is not signed by this terminal's attestation key") from None
    info = parse_quote(q.attest)
    if info.extra_data != quote_qualifier(header.nonce):
        raise _fail("TPM quote was made for another challenge")
    if q.pcr_bank != policy.bank or tuple(q.pcrs) != policy.pcrs or len(q.pcr_values) != len(q.pcrs):
        raise _fail(f"TPM quote covers {q.pcr_bank[:10]}:{list(q.pcrs)[:MAX_PCRS]}, not the registered "
                    f"{policy.bank}:{list(policy.pcrs)}")
    if info.selection != ((BANK_ALG[policy.bank], _bitmap(policy.pcrs)),):
        raise _fail("the quoted PCR selection is not the one the probe names")
    if hashlib.sha256(b"".join(q.pcr_values)).digest() != info.pcr_digest:
        raise _fail("the PCR values sent do not match the quoted digest")
    differ = [i for i, v in zip(q.pcrs, q.pcr_values, strict=True) if v != policy.expected[i]]
    if differ:
        raise _fail(f"the terminal's measured state differs from its registration in PCR {differ}")
    return info
