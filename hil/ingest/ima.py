"""The server's replay of a terminal's IMA measurement list (pin34): the dot reference measured, not reported.

The server pin (``evidence.check_dot_reference``) checks the digest the terminal's daemon *says* its judge used; a
daemon patched by root says the pinned one. The kernel's Integrity Measurement Architecture measures a file when it
is opened for reading under its policy: it appends an entry to its measurement list
(``/sys/kernel/security/ima/binary_runtime_measurements``) and extends PCR 10 with the entry's template digest. Root
can extend PCR 10 itself, but cannot take the kernel's entry for a swapped file out of the PCR. Given the list and a
quoted PCR 10 (a TPM2_Quote by the registered attestation key, ``attestation.check_quote``), this module

1. parses the list strictly (:func:`parse_list`; the ``ima-ng`` template only, bounded: it comes from the network):
   per entry a little-endian u32 PCR index, the 20-byte SHA-1 template digest, u32 template name length and name,
   u32 template data length and the data: the fields ``d-ng`` (u32 length, ``<algo>:\\0`` and the file digest) and
   ``n-ng`` (u32 length, the path and a NUL), each as the kernel's ``ima_measurements_show`` writes them; a
   violation (a file read while open for writing, or the reverse) has an all-zero template digest;
2. replays PCR 10 of the SHA-256 bank (:func:`replay`): zeros, extended per entry with SHA-256 of its template data
   (kernels since 5.8 hash the template data with each bank's algorithm), or with 0xFF bytes for a violation; the
   list is read after the quote, so the entries up to the first prefix that replays to the quoted value are the
   attested ones (:func:`quoted_prefix`); a list none of whose prefixes does was edited (``ATTESTATION_FAILED``,
   ``IMA_REPLAY``);
3. checks the registered reference path's entries (:func:`check_reference`): at least one (the daemon read it since
   boot: else ``DOT_REFERENCE_MISSING``), none a violation, every one the pinned SHA-256 (else
   ``DOT_REFERENCE_MISMATCH``): a swapped file is a second entry with another digest, whatever the daemon reports.

The terminal's attestation key quotes PCR 10 beside its registered PCRs (``keys tpm-enrol --ima-reference``), the
probe's sealed payload carries the list (``ProbePayload.ima_log``), and the server checks it after decryption,
before judging (``server._check_payload``; docs/keys.md, "The dot reference against root").
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from agent.uplink.seal import ProbeRejected

IMA_PCR = 10
TEMPLATE = b"ima-ng"
MAX_LIST = 4 << 20                     # bytes of a measurement list (agent.security.tpm.MAX_IMA_LIST)
MAX_DATA = 8192                        # one entry's template data (a path is at most 4096 bytes)
DIGEST_SIZES = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}
SHA1_ZERO = bytes(20)
CHECKS = ("IMA_MALFORMED", "IMA_REPLAY")


class ImaFailed(ProbeRejected):
    """The list does not parse or does not replay to the quoted PCR 10: ``ATTESTATION_FAILED``, the detail starting
    with ``check`` (one of ``CHECKS``)."""

    def __init__(self, check: str, message: str):
        assert check in CHECKS
        super().__init__("ATTESTATION_FAILED", f"{check}: {message}")
        self.check = check


@dataclass(frozen=True)
class Measurement:
    """One ``ima-ng`` entry: its PCR, template digest (SHA-1), template data, and the file's digest and path."""

    pcr: int
    template_digest: bytes
    template_data: bytes
    algo: str
    digest: bytes
    path: bytes

    @property
    def violation(self) -> bool:
        return self.template_digest == SHA1_ZERO


def _field(data: bytes, at: int) -> tuple[bytes, int]:
    if at + 4 > len(data):
        raise ImaFailed("IMA_MALFORMED", "a template field is truncated")
    n = struct.unpack_from("<I", data, at)[0]
    if at + 4 + n > len(data):
        raise ImaFailed("IMA_MALFORMED", "a template field is longer than its entry")
    return data[at + 4:at + 4 + n], at + 4 + n


def _ima_ng(pcr: int, tdigest: bytes, data: bytes) -> Measurement:
    d, at = _field(data, 0)
    n, at = _field(data, at)
    if at != len(data):
        raise ImaFailed("IMA_MALFORMED", "an ima-ng entry has more than its two fields")
    sep = d.find(b":\0")
    algo = d[:sep].decode("ascii", "replace") if sep > 0 else ""
    if algo not in DIGEST_SIZES or len(d) != sep + 2 + DIGEST_SIZES[algo]:
        raise ImaFailed("IMA_MALFORMED", "an ima-ng entry's d-ng field is not <algo>:\\0<digest>")
    if not n or n[-1] != 0 or 0 in n[:-1]:
        raise ImaFailed("IMA_MALFORMED", "an ima-ng entry's n-ng field is not a NUL-terminated name")
    m = Measurement(pcr, tdigest, data, algo, d[sep + 2:], n[:-1])
    if not m.violation and hashlib.sha1(data).digest() != tdigest:
        raise ImaFailed("IMA_MALFORMED", "an entry's template digest is not the SHA-1 of its template data")
    return m


def parse_list(raw: bytes) -> list[Measurement]:
    """``binary_runtime_measurements`` (little-endian, ``ima-ng`` entries only), strictly: ``IMA_MALFORMED``."""
    if len(raw) > MAX_LIST:
        raise ImaFailed("IMA_MALFORMED", "the measurement list is too long")
    out: list[Measurement] = []
    at = 0
    while at < len(raw):
        if at + 28 > len(raw):
            raise ImaFailed("IMA_MALFORMED", "an entry's header is truncated")
        pcr = struct.unpack_from("<I", raw, at)[0]
        tdigest = raw[at + 4:at + 24]
        namelen = struct.unpack_from("<I", raw, at + 24)[0]
        at += 28
        if raw[at:at + namelen] != TEMPLATE:
            raise ImaFailed("IMA_MALFORMED", "an entry is not of the ima-ng template")
        at += namelen
        if at + 4 > len(raw):
            raise ImaFailed("IMA_MALFORMED", "an entry's template data length is truncated")
        size = struct.unpack_from("<I", raw, at)[0]
        if size > MAX_DATA or at + 4 + size > len(raw):
            raise ImaFailed("IMA_MALFORMED", "an entry's template data is too long or truncated")
        out.append(_ima_ng(pcr, tdigest, raw[at + 4:at + 4 + size]))
        at += 4 + size
    return out


def replay(entries: Iterable[Measurement], pcr: int = IMA_PCR) -> bytes:
    """PCR ``pcr`` of the SHA-256 bank as the list's entries extended it from zeros."""
    value = bytes(32)
    for e in entries:
        if e.pcr == pcr:
            value = _extended(value, e)
    return value


def _extended(value: bytes, e: Measurement) -> bytes:
    """A SHA-256 PCR ``value`` after the kernel's extend for ``e``: its template data's SHA-256, or 0xFF bytes for a
    violation (``ima_add_violation``)."""
    return hashlib.sha256(value + (b"\xff" * 32 if e.violation else hashlib.sha256(e.template_data).digest())).digest()


def quoted_prefix(entries: list[Measurement], quoted_pcr10: bytes, pcr: int = IMA_PCR) -> list[Measurement]:
    """The entries up to the first point where PCR ``pcr`` replays to the quoted value: the list is read after the
    quote, so the kernel may have appended entries the quote does not cover (they are not attested, and dropped).
    ``IMA_REPLAY`` when no prefix replays to it: entries were removed, changed or inserted, or PCR 10 extended by
    someone other than the kernel."""
    value = bytes(32)
    if value == quoted_pcr10:
        return []
    for i, e in enumerate(entries):
        if e.pcr == pcr:
            value = _extended(value, e)
            if value == quoted_pcr10:
                return entries[:i + 1]
    raise ImaFailed("IMA_REPLAY", "the measurement list does not replay to the quoted PCR 10: entries were removed, "
                                  "changed or inserted, or PCR 10 was extended by someone other than the kernel")


def check_reference(raw: bytes, quoted_pcr10: bytes, path: str, pinned_sha256: str) -> list[Measurement]:
    """The list ``raw`` (read after the quote) against the quoted PCR 10 (SHA-256 bank; the quote checked by the
    caller) and the registered reference ``path`` and digest: ``ATTESTATION_FAILED`` (``IMA_*``),
    ``DOT_REFERENCE_MISSING`` or ``DOT_REFERENCE_MISMATCH``; the reference's entries the quote covers otherwise."""
    entries = quoted_prefix(parse_list(raw), quoted_pcr10)
    name = path.encode()
    mine = [e for e in entries if e.pcr == IMA_PCR and e.path == name]
    if not mine:
        raise ProbeRejected("DOT_REFERENCE_MISSING", "measured: the kernel measured no read of the registered dot "
                                                     "reference since boot")
    if any(e.violation for e in mine):
        raise ProbeRejected("DOT_REFERENCE_MISMATCH", "measured: the dot reference was read while open for writing "
                                                      "(an IMA violation): its content is unknown")
    pinned = bytes.fromhex(pinned_sha256)
    if any(e.algo != "sha256" or e.digest != pinned for e in mine):
        raise ProbeRejected("DOT_REFERENCE_MISMATCH", "measured: the kernel measured the dot reference with another "
                                                      "digest than the registered one since boot")
    return mine
