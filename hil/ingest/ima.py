"""The server's replay of a terminal's IMA measurement list (pin34; ima34 after review34b): the dot reference measured,
not reported.

The server pin (``evidence.check_dot_reference``) checks the digest the terminal's daemon *says* its judge used; a
daemon patched by root says the pinned one. The kernel's Integrity Measurement Architecture measures a file when it
is opened for reading under its policy: it appends an entry to its measurement list
(``/sys/kernel/security/ima/binary_runtime_measurements``) and extends PCR 10 with the entry's template digest. Root
can extend PCR 10 itself, but cannot take the kernel's entry for a file back out of the PCR. Given the list and the
quoted PCRs 0-10 (a TPM2_Quote by the registered attestation key, ``attestation.check_quote``, PCRs 0-9 pinned),
this module

1. parses the list strictly (:func:`parse_list`; bounded: it comes from the network): per entry a little-endian u32
   PCR index, the 20-byte SHA-1 template digest, u32 template name length and name, u32 template data length and the
   data. Templates ``ima-ng`` (fields ``d-ng``: u32 length, ``<algo>:\\0`` and the file digest; ``n-ng``: u32 length,
   the path and a NUL) and ``ima-buf`` (``d-ng``, ``n-ng`` and ``buf``: a buffer the kernel measured, e.g.
   ``kexec-cmdline``; its digest must be the buffer's); any other ``IMA_MALFORMED``. A violation (a file read while
   open for writing, or the reverse) has an all-zero template digest and an all-zero ``d-ng`` digest of 20 bytes
   (older kernels' ``ima_eventdigest_init_common``) or of its algorithm's size (later ones);
2. replays PCR 10 of the SHA-256 bank (:func:`replay`): zeros, extended per entry with SHA-256 of its template data
   (kernels since 5.8 hash the template data with each bank's algorithm), or with 0xFF bytes for a violation; the
   list is read after the quote, so the entries up to the first prefix that replays to the quoted value are the
   attested ones (:func:`quoted_prefix`); a list none of whose prefixes does was edited (``ATTESTATION_FAILED``,
   ``IMA_REPLAY``);
3. checks the attested prefix (:func:`check_reference`): its first entry is the kernel's ``boot_aggregate``, SHA-256
   of the quoted PCRs 0-9 (``IMA_BOOT_AGGREGATE``: else root booted without IMA, extended PCR 10 himself and wrote
   the list; PCRs 8-9, the kernel and its command line under GRUB, are pinned so that such a boot is refused anyway);
   no entry is a violation, whatever its path (``IMA_VIOLATION``: a violation's path is covered by neither digest,
   so root could rename it); the registered reference path's ``ima-ng`` entries: at least one (the daemon read it
   since boot: else ``DOT_REFERENCE_MISSING``), every one the pinned SHA-256 (else ``DOT_REFERENCE_MISMATCH``); with
   an allowlist registered, every entry after ``boot_aggregate`` (``ima-buf`` ones too) has a SHA-256 on it or the
   pinned reference's (``IMA_UNLISTED``: content the release does not hold was read, e.g. the swapped reference
   under another name). Entries on other PCRs than 10 are not replayed and not checked.

Without an allowlist only the registered path is checked: the swapped file read through another name (a hardlink, a
bind mount, another path) passes. docs/keys.md ("The dot reference against root") says what passes either way.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from agent.security.tpm import BOOT_PCRS, IMA_PCR, canonical_path
from agent.uplink.seal import ProbeRejected

__all__ = ["BOOT_PCRS", "IMA_PCR", "canonical_path"]
TEMPLATES = {b"ima-ng": 2, b"ima-buf": 3}     # the templates parsed and their field counts
MAX_LIST = 4 << 20                     # bytes of a measurement list (agent.security.tpm.MAX_IMA_LIST)
MAX_DATA = 8192                        # one entry's template data (a path is at most 4096 bytes)
DIGEST_SIZES = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}
SHA1_ZERO = bytes(20)
CHECKS = ("IMA_MALFORMED", "IMA_REPLAY", "IMA_BOOT_AGGREGATE", "IMA_VIOLATION", "IMA_UNLISTED")


class ImaFailed(ProbeRejected):
    """The list does not parse, does not replay to the quoted PCR 10, or shows what the registration refuses:
    ``ATTESTATION_FAILED``, the detail starting with ``check`` (one of ``CHECKS``)."""

    def __init__(self, check: str, message: str):
        assert check in CHECKS
        super().__init__("ATTESTATION_FAILED", f"{check}: {message}")
        self.check = check


@dataclass(frozen=True)
class Measurement:
    """One entry: its PCR, template digest (SHA-1), template name and data, the digest and its algorithm, and the
    path (``ima-ng``) or the buffer's name (``ima-buf``)."""

    pcr: int
    template_digest: bytes
    template_data: bytes
    algo: str
    digest: bytes
    path: bytes
    template: bytes = b"ima-ng"

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


def _entry(pcr: int, tdigest: bytes, template: bytes, data: bytes) -> Measurement:
    fields: list[bytes] = []
    at = 0
    for _ in range(TEMPLATES[template]):
        f, at = _field(data, at)
        fields.append(f)
    if at != len(data):
        raise ImaFailed("IMA_MALFORMED", f"an {template.decode()} entry has more than its {len(fields)} fields")
    d, n = fields[0], fields[1]
    violation = tdigest == SHA1_ZERO
    sep = d.find(b":\0")
    algo = d[:sep].decode("ascii", "replace") if sep > 0 else ""
    size = len(d) - sep - 2
    if algo not in DIGEST_SIZES or (size != DIGEST_SIZES[algo] and not (violation and size == 20)):
        raise ImaFailed("IMA_MALFORMED", "an entry's d-ng field is not <algo>:\\0<digest>")
    digest = d[sep + 2:]
    if violation and any(digest):
        raise ImaFailed("IMA_MALFORMED", "a violation's d-ng digest is not zeros")
    if not n or n[-1] != 0 or 0 in n[:-1]:
        raise ImaFailed("IMA_MALFORMED", "an entry's n-ng field is not a NUL-terminated name")
    if not violation and hashlib.sha1(data).digest() != tdigest:
        raise ImaFailed("IMA_MALFORMED", "an entry's template digest is not the SHA-1 of its template data")
    if template == b"ima-buf" and not violation and hashlib.new(algo, fields[2]).digest() != digest:
        raise ImaFailed("IMA_MALFORMED", "an ima-buf entry's digest is not its buffer's")
    return Measurement(pcr, tdigest, data, algo, digest, n[:-1], template)


def parse_list(raw: bytes) -> list[Measurement]:
    """``binary_runtime_measurements`` (little-endian; ``ima-ng`` and ``ima-buf`` entries), strictly:
    ``IMA_MALFORMED``."""
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
        template = raw[at:at + namelen]
        if template not in TEMPLATES:
            raise ImaFailed("IMA_MALFORMED", "an entry is of neither the ima-ng nor the ima-buf template")
        at += namelen
        if at + 4 > len(raw):
            raise ImaFailed("IMA_MALFORMED", "an entry's template data length is truncated")
        size = struct.unpack_from("<I", raw, at)[0]
        if size > MAX_DATA or at + 4 + size > len(raw):
            raise ImaFailed("IMA_MALFORMED", "an entry's template data is too long or truncated")
        out.append(_entry(pcr, tdigest, template, raw[at + 4:at + 4 + size]))
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


def boot_aggregate(quoted: Mapping[int, bytes]) -> bytes:
    """The kernel's ``boot_aggregate`` for the SHA-256 bank: SHA-256 of PCRs 0-9 (``ima_calc_boot_aggregate``:
    PCRs 8 and 9 are included for every bank but SHA-1)."""
    return hashlib.sha256(b"".join(quoted[i] for i in BOOT_PCRS)).digest()


def check_reference(raw: bytes, quoted: Mapping[int, bytes], path: str, pinned_sha256: str,
                    allowlist: frozenset[bytes] | None = None) -> list[Measurement]:
    """The list ``raw`` (read after the quote) against the quoted PCRs 0-10 (SHA-256 bank; the quote checked by the
    caller, PCRs 0-9 pinned by the registration), the registered reference ``path`` and digest, and the release's
    ``allowlist`` of SHA-256 digests (None: not registered): ``ATTESTATION_FAILED`` (``IMA_*``),
    ``DOT_REFERENCE_MISSING`` or ``DOT_REFERENCE_MISMATCH``; the reference's entries the quote covers otherwise."""
    entries = quoted_prefix(parse_list(raw), quoted[IMA_PCR])
    mine10 = [e for e in entries if e.pcr == IMA_PCR]
    first = mine10[0] if mine10 else None
    if first is None or not all(i in quoted for i in BOOT_PCRS) or first.template != b"ima-ng" \
            or first.path != b"boot_aggregate" or first.violation or first.algo != "sha256" \
            or first.digest != boot_aggregate(quoted):
        raise ImaFailed("IMA_BOOT_AGGREGATE", "the attested list does not start with the kernel's boot_aggregate of "
                                              "the quoted PCRs 0-9 (sha256): IMA was not on from boot")
    if any(e.violation for e in mine10):
        raise ImaFailed("IMA_VIOLATION", "the kernel recorded a violation (a file read while open for writing, or "
                                         "opened for writing while read): what was read is unknown")
    pinned = bytes.fromhex(pinned_sha256)
    name = path.encode()
    mine = [e for e in mine10 if e.template == b"ima-ng" and e.path == name]
    if not mine:
        raise ProbeRejected("DOT_REFERENCE_MISSING", "measured: the kernel measured no read of the registered dot "
                                                     "reference since boot")
    if any(e.algo != "sha256" or e.digest != pinned for e in mine):
        raise ProbeRejected("DOT_REFERENCE_MISMATCH", "measured: the kernel measured the dot reference with another "
                                                      "digest than the registered one since boot")
    if allowlist is not None:
        unlisted = [e for e in mine10[1:] if e.algo != "sha256" or (e.digest not in allowlist and e.digest != pinned)]
        if unlisted:
            raise ImaFailed("IMA_UNLISTED", f"{len(unlisted)} attested measurement(s) of content the release's "
                                            "allowlist does not hold (a file the agent's uid read, or a buffer)")
    return mine
