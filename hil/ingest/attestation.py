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

A registration that also pins the audit counter and chain (``nv_counter`` and ``nv_chain``: their handles and
written names, from ``capture-agent keys tpm-counter``; sec31) makes :func:`check_counter` read the anchor's
``tpm_certify``: TPM2_NV_Certify of each index by the same attestation key, qualified by
``SHA-256("capture-agent/nv-certify/v1\\0" || nonce)``. It refuses (``ATTESTATION_FAILED``, the detail starting
with one of ``COUNTER_CHECKS``): a certification not signed by the AK, not an NV certification, or malformed
(``NV_SIGNATURE``, ``NV_MALFORMED``); made for another nonce (``NV_NONCE``: a replay); of an index whose name is not
the pinned one (``NV_NAME``: another handle, or an index redefined with other attributes, e.g. by the owner where
the platform defined it); a count other than the anchor's (``NV_COUNT``: the counter spec pointed at another
TPM, whose counts the AK cannot certify); none where the terminal counted before or its anchor carries a count
(``NV_MISSING``); a count below the one held (``NV_BACK``); at the held count a chain other than the held one
(``NV_CHAIN``: the chain redefined and extended anew); a count moved on with the chain unmoved (``NV_STALLED``:
``tpm_chain`` stripped, the chain left as it was); a certification whose TPM clock went back (``NV_CLOCK``, witness31:
:func:`check_clock`). The last count, chain and clock certified are kept per terminal (:class:`WitnessStore`, in the
store the servers share since witness31, updated by compare-and-set); ``capture-agent audit-verify --tpm-witness
COUNT:CHAIN`` proves with them that the log's counted entries up to that count are the ones the TPM saw.

Trust: the attestation key is taken as registered. Proving that it lives in a genuine TPM (EK
certificate and credential activation) is enrolment's job and is not done by this reference server.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.security.tpm import nv_certify_qualifier, quote_qualifier
from agent.uplink.seal import ProbeRejected
from hil.ingest.ima import BOOT_PCRS, IMA_PCR, canonical_path
from hil.ingest.store import MemoryStore, Store, StoreUnavailable
from proto.capture_agent.v1 import ingest_pb2 as pb

log = logging.getLogger(__name__)

TPM_GENERATED = 0xFF544347
TPM_ST_ATTEST_QUOTE = 0x8018
TPM_ST_ATTEST_NV = 0x8014
NV_SIZES = {"nv_counter": 8, "nv_chain": 32}      # a counter's 8 bytes, the chain's SHA-256 (agent/security/tpm.py)
COUNTER_CHECKS = ("NV_SIGNATURE", "NV_MALFORMED", "NV_NONCE", "NV_NAME", "NV_COUNT", "NV_MISSING", "NV_BACK",
                  "NV_CHAIN", "NV_STALLED", "NV_CLOCK")
WITNESS_VERSION = 2                               # the held witness's record in the store (2: with its history, hist31)
UNFETCHED = "WITNESS_UNFETCHED"                   # certified evidence dropped before the bank fetched it (sec32)
WITNESS_HISTORY = 256                             # the distinct certified counts a record keeps (hist31; the lowest go)
MAX_WITNESS = 512 + 96 * WITNESS_HISTORY          # its bytes: more is not a record this server wrote
CAS_TRIES = 8                                     # compare-and-set rounds against other hosts' writes
BANK_ALG = {"sha1": 0x0004, "sha256": 0x000B, "sha384": 0x000C}
BANK_SIZE = {"sha1": 20, "sha256": 32, "sha384": 48}
MAX_ATTEST = 1024
MAX_PCRS = 24
REASON = "ATTESTATION_FAILED"


def _fail(message: str) -> ProbeRejected:
    return ProbeRejected(REASON, message)


class CounterAttestationFailed(ProbeRejected):
    """The anchor's certification of the audit counter and chain failed (sec31); ``check``: one of
    ``COUNTER_CHECKS``, also the detail's first word."""

    def __init__(self, check: str, message: str):
        assert check in COUNTER_CHECKS
        super().__init__(REASON, f"{check}: {message}")
        self.check = check


@dataclass(frozen=True)
class PinnedNv:
    """An NV index the server pinned at enrolment (sec31): its handle and its name once written."""

    index: int
    name: bytes


@dataclass(frozen=True)
class AttestationPolicy:
    """What a registered terminal's quotes must show."""

    attestation_key: ec.EllipticCurvePublicKey
    bank: str
    expected: dict[int, bytes]                  # PCR index -> value
    nv: dict[str, PinnedNv] | None = None       # "nv_counter", "nv_chain" (sec31); None: not pinned
    # pin34: the dot reference's path on the terminal, measured by the kernel's IMA into PCR 10, which the quote
    # covers too and the server replays from the probe's list (hil/ingest/ima.py); None: no IMA
    ima_reference: str | None = None
    # ima34: the release's allowlist of SHA-256 file digests every attested IMA entry must be on (IMA_UNLISTED);
    # None: only the reference's path is checked (a swap read under another name passes: docs/keys.md)
    ima_allowlist: frozenset[bytes] | None = None

    @property
    def pcrs(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.expected) | ({IMA_PCR} if self.ima_reference is not None else set())))

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
        return cls(key, bank, expected, _pinned(doc), *_ima(doc, bank, expected))

    @classmethod
    def load(cls, path: str | Path) -> AttestationPolicy:
        try:
            return cls.from_registration(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read attestation registration {path}: {exc}") from None


MAX_ALLOWLIST = 1 << 20                 # digests in a registration's IMA allowlist


def _ima(doc: dict[str, Any], bank: str, expected: dict[int, bytes]) -> tuple[str | None, frozenset[bytes] | None]:
    """The registration's ``ima`` (pin34, ima34): ``{"pcr": 10, "dot_reference": "/canonical/path"[, "allowlist":
    [sha256 hex, ...]]}``; PCR 10 not pinned, PCRs 0-9 pinned (the list's ``boot_aggregate`` is checked against them,
    and 8-9 hold the kernel and its command line: a boot without IMA must move them)."""
    ima = doc.get("ima")
    if ima is None:
        return None, None
    if not (isinstance(ima, dict) and {"pcr", "dot_reference"} <= set(ima) <= {"pcr", "dot_reference", "allowlist"}
            and ima["pcr"] == IMA_PCR and isinstance(ima["dot_reference"], str) and bank == "sha256"
            and IMA_PCR not in expected):
        raise ValueError("attestation registration's ima needs pcr 10 (sha256 bank, not among pcrs) and the dot "
                         "reference's absolute path, as capture-agent keys tpm-enrol --ima-reference writes it")
    if not canonical_path(ima["dot_reference"]):
        raise ValueError("attestation registration's ima dot_reference is not a canonical absolute path (no '.', "
                         "'..', '//' or trailing '/'): the kernel names the file canonically")
    if not set(BOOT_PCRS) <= set(expected):
        raise ValueError("attestation registration's ima needs PCRs 0-9 registered (IMA_PCRS: boot_aggregate covers "
                         "them; 8-9 hold the kernel and its command line): enrol with --pcrs sha256:0,...,9")
    allow = ima.get("allowlist")
    if allow is None:
        return ima["dot_reference"], None
    if not (isinstance(allow, list) and 0 < len(allow) <= MAX_ALLOWLIST
            and all(isinstance(h, str) and len(h) == 64 and all(c in "0123456789abcdef" for c in h) for h in allow)):
        raise ValueError("attestation registration's ima allowlist is not a list of SHA-256 hex digests")
    return ima["dot_reference"], frozenset(bytes.fromhex(h) for h in allow)


def _pinned(doc: dict[str, Any]) -> dict[str, PinnedNv] | None:
    """The registration's ``nv_counter`` and ``nv_chain`` (both or neither; sec31)."""
    if "nv_counter" not in doc and "nv_chain" not in doc:
        return None
    try:
        out = {k: PinnedNv(int(doc[k]["index"], 16), bytes.fromhex(doc[k]["name"])) for k in NV_SIZES}
    except (KeyError, ValueError, TypeError, AttributeError):
        raise ValueError("attestation registration's nv_counter and nv_chain each need index (hex) and name (hex), "
                         "as capture-agent keys tpm-counter prints them") from None
    if any(len(p.name) != 34 or p.name[:2] != b"\x00\x0b" for p in out.values()) \
            or out["nv_counter"].index == out["nv_chain"].index:
        raise ValueError("attestation registration's NV names must be SHA-256 names of two indices")
    return out


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


@dataclass(frozen=True)
class ClockInfo:
    """A certification's TPMS_CLOCK_INFO (TPM 2.0 Part 2, 10.11.1): ``clock`` (ms the TPM has been powered, kept in
    NV; only ever advanced, by time or TPM2_ClockSet), ``reset``/``restart`` (resetCount, restartCount: obfuscated by
    a constant per key when the signing key is not in the endorsement or platform hierarchy, so only their equality
    means anything here) and ``safe`` (no clock greater than this one was ever reported: cleared by a shutdown that
    did not save the clock)."""

    clock: int
    reset: int
    restart: int
    safe: bool

    @property
    def epoch(self) -> tuple[int, int]:
        return self.reset, self.restart


def _attest_head(attest: bytes, kind: int, what: str) -> tuple[_Reader, bytes, ClockInfo]:
    """A marshalled TPMS_ATTEST's common part, which must be of ``kind``: the reader at its attested part,
    extraData and the clock info."""
    if not attest or len(attest) > MAX_ATTEST:
        raise _fail(f"TPM {what} is missing or too large")
    r = _Reader(attest)
    if r.u("I") != TPM_GENERATED:
        raise _fail(f"TPM {what} was not generated by a TPM (bad magic)")
    if r.u("H") != kind:
        raise _fail(f"TPM attestation is not a {what}")
    r.sized(2 + 64)                                # qualifiedSigner (TPM2B_NAME)
    extra = r.sized(64)                            # extraData (TPM2B_DATA)
    clock, reset, restart, safe = r.u("Q"), r.u("I"), r.u("I"), r.u("B")
    if safe > 1:
        raise _fail(f"TPM {what} has a bad clock info")
    r.u("Q")                                       # firmwareVersion
    return r, extra, ClockInfo(clock, reset, restart, bool(safe))


def parse_quote(attest: bytes) -> QuoteInfo:
    """Parse a marshalled TPMS_ATTEST that must be a quote; strict (no trailing bytes)."""
    r, extra, clock = _attest_head(attest, TPM_ST_ATTEST_QUOTE, "quote")
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
    return QuoteInfo(extra, tuple(selection), digest, clock.reset, clock.clock)


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
    # PCR 10 under IMA (pin34) is replayed from the list, not registered (server: ima.check_reference)
    differ = [i for i, v in zip(q.pcrs, q.pcr_values, strict=True) if i in policy.expected and v != policy.expected[i]]
    if differ:
        raise _fail(f"the terminal's measured state differs from its registration in PCR {differ}")
    return info


# --- the audit counter and chain, certified by the attestation key (sec31) ------------------------

@dataclass(frozen=True)
class NvInfo:
    """The parts of a TPMS_ATTEST (NV certification) the check needs."""

    extra_data: bytes
    index_name: bytes
    offset: int
    contents: bytes
    clock: ClockInfo


def parse_nv_certify(attest: bytes) -> NvInfo:
    """Parse a marshalled TPMS_ATTEST that must be an NV certification (TPMS_NV_CERTIFY_INFO); strict."""
    r, extra, clock = _attest_head(attest, TPM_ST_ATTEST_NV, "NV certification")
    name = r.sized(2 + 64)
    offset = r.u("H")
    contents = r.sized(64)
    if r.at != len(attest):
        raise _fail("TPM NV certification has trailing bytes")
    return NvInfo(extra, name, offset, contents, clock)


@dataclass(frozen=True)
class Witness:
    """The last audit counter and chain the TPM certified for a terminal (sec31); ``chain`` None: never written;
    ``clock``: the latest clock info of that probe's certifications (witness31; None in a witness from before).
    ``history`` (hist31): every ``(count, chain)`` certified before and this one, the first at each count, counts
    rising, the last ``WITNESS_HISTORY``; not part of equality (a probe's check returns the latest alone)."""

    count: int
    chain: bytes | None
    clock: ClockInfo | None = None
    history: tuple[tuple[int, bytes], ...] = field(default=(), compare=False)

    def cli(self) -> str | None:
        """``COUNT:CHAIN`` for ``capture-agent audit-verify --tpm-witness`` (None before the chain's first write)."""
        return f"{self.count}:{self.chain.hex()}" if self.chain is not None else None

    def cli_all(self) -> list[str]:
        """Every held ``COUNT:CHAIN``, oldest first, each for one ``--tpm-witness`` (hist31)."""
        return [f"{n}:{c.hex()}" for n, c in self.history]

    def after(self, held: Witness | None) -> Witness:
        """This witness with the history of ``held`` kept and itself added (the first chain at each count stays;
        the lowest counts go beyond ``WITNESS_HISTORY``): what the store holds next (hist31)."""
        return replace(self, history=self._ending(held.history if held is not None else ()))

    def _ending(self, past: tuple[tuple[int, bytes], ...]) -> tuple[tuple[int, bytes], ...]:
        if self.chain is not None and (not past or past[-1][0] < self.count):
            past = (past + ((self.count, self.chain),))[-WITNESS_HISTORY:]
        return past

    def dump(self) -> bytes:
        """The record the store holds (compact JSON, ``WITNESS_VERSION``)."""
        c = self.clock
        doc: dict[str, Any] = {"v": WITNESS_VERSION, "count": self.count,
                               "chain": self.chain.hex() if self.chain is not None else None,
                               "clock": None if c is None else [c.clock, c.reset, c.restart, int(c.safe)],
                               "history": [[n, h.hex()] for n, h in self._ending(self.history)]}
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def load(cls, raw: bytes) -> Witness:
        """A stored record, validated (bounded, every field typed and in range): ``WitnessUnreadable`` otherwise."""
        try:
            if len(raw) > MAX_WITNESS:
                raise ValueError("too long")
            doc = json.loads(raw)
            fields = {"v", "count", "chain", "clock"}
            if not isinstance(doc, dict) or type(doc.get("v")) is not int or doc["v"] not in (1, WITNESS_VERSION) \
                    or set(doc) != (fields if doc["v"] == 1 else fields | {"history"}):
                raise ValueError("fields")
            count, chain, clock = doc["count"], doc["chain"], doc["clock"]
            if not _uint(count, 64) or not (chain is None or _hex32(chain)):
                raise ValueError("count or chain")
            c = None
            if clock is not None:
                if not (isinstance(clock, list) and len(clock) == 4 and _uint(clock[0], 64)
                        and _uint(clock[1], 32) and _uint(clock[2], 32) and clock[3] in (0, 1)):
                    raise ValueError("clock")
                c = ClockInfo(clock[0], clock[1], clock[2], bool(clock[3]))
            # a witness31 record (v1) had no history: its own count and chain start one
            hist = doc.get("history", [[count, chain]] if chain is not None else [])
            if not (isinstance(hist, list) and len(hist) <= WITNESS_HISTORY
                    and all(isinstance(x, list) and len(x) == 2 and _uint(x[0], 64) and _hex32(x[1]) for x in hist)
                    and all(a[0] < b[0] for a, b in zip(hist, hist[1:], strict=False))):
                raise ValueError("history")
            if (chain is not None and (not hist or hist[-1] != [count, chain])) or any(x[0] > count for x in hist):
                raise ValueError("history does not end at the witness")
            return cls(count, bytes.fromhex(chain) if chain is not None else None, c,
                       tuple((n, bytes.fromhex(h)) for n, h in hist))
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise WitnessUnreadable(f"the witness held is not a record this server writes ({exc})") from None


def _uint(v: object, bits: int) -> bool:
    return type(v) is int and 0 <= v < (1 << bits)


_HEX32 = re.compile(r"[0-9a-f]{64}")


def _hex32(v: object) -> bool:
    return isinstance(v, str) and _HEX32.fullmatch(v) is not None


class WitnessUnreadable(StoreUnavailable):
    """The store holds a witness record that does not parse (written by something else than this server): the
    probe is not judged against nothing (``STORE_UNAVAILABLE``; the operator deletes the record to start afresh)."""


@dataclass(frozen=True)
class Unfetched:
    """A terminal's unfetched record (sec33, ``Store.witness_unfetched``): certified counts ``lo``..``hi`` were dropped
    from its witness history before the bank fetched them, by ``times`` compare-and-sets, the first and the last at
    ``first_ms`` and ``last_ms`` (the store's clock). Kept in the shared store: every server reads it, a restart
    forgets nothing, a fetch does not clear it."""

    lo: int
    hi: int
    times: int
    first_ms: int
    last_ms: int

    @classmethod
    def load(cls, raw: bytes) -> Unfetched:
        """``WitnessUnreadable`` for a record this server does not write."""
        parts = raw.split(b" ") if len(raw) <= 128 else []
        if len(parts) != 5 or not all(p.isdigit() and len(p) <= 20 for p in parts):
            raise WitnessUnreadable("the unfetched record held is not a record this server writes")
        u = cls(*(int(p) for p in parts))
        if not (u.lo <= u.hi and u.times >= 1 and u.first_ms <= u.last_ms):
            raise WitnessUnreadable("the unfetched record held is not a record this server writes")
        return u


class WitnessStore:
    """The server's copy of each terminal's certified counters and chains: the last and, since hist31, the history
    (:attr:`Witness.history`, in the same record: one compare-and-set writes both), held in the store servers share
    (witness31, ``Store.witness``/``swap_witness``; before, in this process's memory, forgotten at a restart and
    apart per host). Each update is a compare-and-set against the record this check read: two hosts checking probes
    of one terminal at once cannot move it back (the loser checks again against the winner's)."""

    def __init__(self, store: Store | None = None) -> None:
        self.store: Store = store if store is not None else MemoryStore()

    def held(self, terminal_id: str) -> Witness | None:
        raw = self.store.witness(terminal_id)
        return Witness.load(raw) if raw is not None else None

    def cli_witness(self, terminal_id: str) -> list[str]:
        """Every count and chain held for the terminal, oldest first (``COUNT:CHAIN`` each, one ``--tpm-witness``
        apiece; hist31: not only the last, which a redefined chain counted on replaces); [] before any. The bank's
        fetch: the store notes the history fetched up to its last count (sec32), so that the bound dropping a count
        above it later is flagged ``WITNESS_UNFETCHED`` (:meth:`advance`)."""
        w = self.held(terminal_id)
        if w is None:
            return []
        if w.history:
            self.store.note_witness_fetched(terminal_id, w.history[-1][0])
        return w.cli_all()

    def unfetched(self, terminal_id: str) -> Unfetched | None:
        """The counts ever dropped from the terminal's witness history before the bank fetched them (sec33: kept in
        the shared store in the compare-and-set that dropped them, where sec32 flagged them in one server's memory
        only); None: none. The bank reads it from any server, with :meth:`cli_witness`."""
        raw = self.store.witness_unfetched(terminal_id)
        return Unfetched.load(raw) if raw is not None else None

    def check(self, terminal_id: str, policy: AttestationPolicy, header: pb.ProbeHeader,
              on_unfetched: Callable[[str], object] | None = None) -> Witness | None:
        """:func:`check_counter` against the witness held, which it replaces when the probe passes (compare-and-set:
        if another host replaced it meanwhile, checked again against that one); ``on_unfetched``: :meth:`advance`'s."""
        if policy.nv is None:
            return None
        for _ in range(CAS_TRIES):
            raw = self.store.witness(terminal_id)
            held = Witness.load(raw) if raw is not None else None
            w = check_counter(policy, header, held)
            if w is None or w == held:
                return w
            if self.advance(terminal_id, raw, held, w, on_unfetched):
                return w
        raise StoreUnavailable(f"the witness of {terminal_id[:64]} kept changing under {CAS_TRIES} checks")

    def advance(self, terminal_id: str, raw: bytes | None, held: Witness | None, w: Witness,
                on_unfetched: Callable[[str], object] | None = None) -> bool:
        """``w`` held next, with ``held``'s history (compare-and-set against ``raw``, the record ``held`` was read
        from); False if another host replaced it meanwhile. Where the history's bound drops a count above the one the
        bank fetched up to (:meth:`cli_witness`), or before any fetch, in the same step (sec32): certified evidence
        is gone before the bank had it (root flushing a rewrite out with ``WITNESS_HISTORY`` more certified counts,
        or a bank that fetches less often than the bound needs): logged ``WITNESS_UNFETCHED`` and
        ``on_unfetched(detail)`` called (the server flags it beside the anchors' flags); the probe is not refused."""
        new = w.after(held)
        floor = new.history[0][0] if new.history else 0
        dropped = [n for n, _ in (held.history if held is not None else ()) if n < floor]
        got = self.store.swap_witness(terminal_id, raw, new.dump(), max(dropped) if dropped else None,
                                      min(dropped) if dropped else None)
        if got == 2:
            detail = (f"counts {min(dropped)}-{max(dropped)} certified and dropped from the witness history "
                      f"(the last {WITNESS_HISTORY}) before the bank fetched them: a rewrite of the log up to them can "
                      "no longer be proven")
            log.warning("witness of terminal %s: %s: %s", terminal_id[:64], UNFETCHED, detail)
            if on_unfetched is not None:
                on_unfetched(detail)
        return bool(got)


def _certified(policy: AttestationPolicy, header: pb.ProbeHeader) -> tuple[dict[str, bytes], list[ClockInfo]]:
    """The anchor's certifications checked one by one: pinned index -> its certified contents; their clock infos."""
    assert policy.nv is not None
    by_index = {p.index: k for k, p in policy.nv.items()}
    out: dict[str, bytes] = {}
    clocks: list[ClockInfo] = []
    certs = header.audit_anchor.tpm_certify if header.HasField("audit_anchor") else ()
    if len(certs) > len(by_index):
        raise CounterAttestationFailed("NV_MALFORMED", "the anchor carries more NV certifications than are pinned")
    for c in certs:
        key = by_index.get(c.nv_index)
        if key is None or key in out:
            raise CounterAttestationFailed("NV_NAME", f"the anchor certifies NV index {c.nv_index:#010x}, not a "
                                                      "pinned one (or one twice)")
        if not 8 <= len(c.signature) <= 80:
            raise CounterAttestationFailed("NV_SIGNATURE", "an NV certification's signature is missing or malformed")
        try:
            policy.attestation_key.verify(c.signature, c.attest, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            raise CounterAttestationFailed("NV_SIGNATURE", "an NV certification is not signed by this terminal's "
                                                           "attestation key") from None
        try:
            info = parse_nv_certify(c.attest)
        except ProbeRejected as exc:
            raise CounterAttestationFailed("NV_MALFORMED", str(exc)) from None
        if info.extra_data != nv_certify_qualifier(header.nonce):
            raise CounterAttestationFailed("NV_NONCE", "an NV certification was made for another challenge")
        if info.index_name != policy.nv[key].name:
            raise CounterAttestationFailed("NV_NAME", f"NV index {c.nv_index:#010x} is not the index pinned at "
                                                      "enrolment (redefined with other attributes or policy)")
        if info.offset != 0 or len(info.contents) != NV_SIZES[key]:
            raise CounterAttestationFailed("NV_MALFORMED", f"the certification of NV index {c.nv_index:#010x} "
                                                           "does not cover the whole index")
        out[key] = info.contents
        clocks.append(info.clock)
    return out, clocks


def check_clock(held: ClockInfo | None, got: list[ClockInfo]) -> ClockInfo | None:
    """The clock infos of one probe's certifications against the one held (witness31): ``NV_CLOCK`` where the TPM's
    clock went back within one resetCount/restartCount (the clock only advances while the TPM runs), went back while
    the TPM says it is ``safe`` (no greater clock was ever reported: only a shutdown that did not save the clock lets
    it go back, and that clears ``safe``), or where the probe's certifications are of two TPM epochs (made in one
    session of the AK: a reset between them ends it). The latest clock info to hold (None: none held or given)."""
    if not got:
        return held
    if len({c.epoch for c in got}) > 1:
        raise CounterAttestationFailed("NV_CLOCK", "the probe's NV certifications are of two TPM resets or restarts")
    latest = max(got, key=lambda c: c.clock)
    if held is not None:
        for c in got:
            if c.clock < held.clock and (c.epoch == held.epoch or c.safe):
                why = "within one TPM reset and restart" if c.epoch == held.epoch else "though the TPM reports it safe"
                raise CounterAttestationFailed("NV_CLOCK", f"the TPM's clock went back from {held.clock} to {c.clock} "
                                                           f"ms {why}: not a later certification than the one held")
    return latest


def check_counter(policy: AttestationPolicy, header: pb.ProbeHeader, held: Witness | None) -> Witness | None:
    """Raise ``ATTESTATION_FAILED`` (:class:`CounterAttestationFailed`) unless the anchor's certifications show the
    pinned counter at the anchor's count and a chain that follows from ``held``; the witness to hold now (None: the
    policy pins no counter, or the counter was never advanced)."""
    if policy.nv is None:
        return None
    got, clocks = _certified(policy, header)
    anchored = header.audit_anchor.tpm_count if header.HasField("audit_anchor") else 0
    if "nv_counter" not in got:
        if held is not None or anchored or "nv_chain" in got:
            raise CounterAttestationFailed("NV_MISSING", "the probe carries no certification of the TPM counter, "
                                                         "which " + ("was certified before" if held is not None
                                                                     else "the anchor counts"))
        return None
    count, chain = int.from_bytes(got["nv_counter"], "big"), got.get("nv_chain")
    if count != anchored:
        raise CounterAttestationFailed("NV_COUNT", f"the TPM certifies count {count}, the anchor carries {anchored}: "
                                                   "the log is not counted by this TPM")
    if held is not None:
        if count < held.count:
            raise CounterAttestationFailed("NV_BACK", f"the TPM certifies count {count}, below {held.count} held")
        if held.chain is not None and chain is None:
            raise CounterAttestationFailed("NV_MISSING", "the probe carries no certification of the TPM chain, "
                                                         "which was certified before")
        if count == held.count and chain != held.chain:
            raise CounterAttestationFailed("NV_CHAIN", f"at count {count} the TPM's chain is not the one certified "
                                                       "before: the chain index was redefined and extended anew")
        if count > held.count and chain == held.chain:
            raise CounterAttestationFailed("NV_STALLED", f"the count moved from {held.count} to {count} and the chain "
                                                         "did not: counted entries were not extended into it")
    return Witness(count, chain, check_clock(held.clock if held is not None else None, clocks))
