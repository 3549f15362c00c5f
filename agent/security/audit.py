"""Audit log of key operations (T/IIFAA 3001.1 §8.2.5): JSON lines, hash-chained, signed checkpoints.

Each line is one entry::

    {"seq": 7, "ts": "2026-12-02T10:00:00.123Z", "event": "result", "data": {...},
     "prev": "<hash of entry 6>", "hash": "<sha256 of this entry without 'hash'>"}

``hash`` is SHA-256 over the canonical JSON (sorted keys, no spaces) of the entry without its
``hash`` field, so changing, inserting, deleting or reordering any line breaks the chain from there
on. Every ``checkpoint_every`` entries (or ``checkpoint_interval_s``), and when the log is closed,
a ``checkpoint`` entry carries the terminal key's signature over ``seq || hash`` of the entry before
it: whoever holds the terminal's public key can tell that the chain up to there is the terminal's,
so an attacker who rewrites the whole file (recomputing hashes) is caught at the first checkpoint.

What a checkpoint cannot show is what came after it: entries cut off the end, or a log deleted and
started afresh. So checkpoints also leave the terminal: :meth:`AuditLog.anchor` (a fresh
checkpoint, its signature and the log's identity, the hash of its first entry) travels in every
probe's header, and the server keeps the last anchor per terminal (``hil/ingest/anchors.py``),
flagging a log that went backwards, was rewritten or replaced. ``verify`` requires checkpoints and
a signature on each, refuses a long unsigned tail, and with the server's anchors
(``audit-verify --anchor SEQ:HEAD``) refuses a log that does not contain them: removed
checkpoints, removed entries with the chain recomputed, and truncation all exit non-zero.

What anchors cannot show is a tail no probe carried yet (a terminal locked out sends no probes). Where a
TPM is configured (``counter``, sec29), each entry of the ``counted`` events (the lockout's) carries
``tpm_count``, the value of the TPM's NV counter after it: written first, then the counter advanced
(TPM2_NV_Increment), so a daemon stopped in between leaves the log one ahead (advanced at the next start),
never behind. At start (:attr:`AuditLog.counter_check`) and in ``verify(tpm_count=)`` the counts must run
without a gap to the counter: fewer is a cut (``AUD_COUNTER_CUT``; the daemon fails closed,
``agent.session.lockout``). Root can advance the counter but never take it back, nor redefine the index to
a lower count (a counter index starts at the highest count any counter of the TPM held): advancing it
only makes the next start read the log as cut, a lockout of his own making. Anchors carry the count too.

The counter binds the entries' number; since sec30 the TPM binds their content too (``docs/keys.md``): each counted
entry carries ``tpm_chain``, the TPM's NV extend index before it, and its hash is then extended into that index
(after the counter's advance), so at start (``FORGED``) and in ``verify(tpm_chain=)`` (``AUD_COUNTER_FORGED``) the
counted entries, hashed anew, must link and end at the index's value: an entry rewritten, or entries replaced by
others of the same counts, cannot. Root with the daemon's owner authorisation can still *append* entries of his
own. A log with counted entries opened without a counter refuses (``AUD_COUNTER_GONE``), as does a daemon without
one whose TPM holds a written audit index (:func:`refuse_uncounted_tpm`). A checkpoint's signature covers the
counter's value (``signed_count``, the v2 :func:`checkpoint_message`), so an anchor's count is signed, and ``verify``
holds it to the counted entries before it (sec31). Since sec31 an anchor made for a probe's nonce also carries the
attestation key's TPM2_NV_Certify of the counter and the chain (:attr:`AuditLog.certify`), which the server checks
against the indices' names it pinned (``hil/ingest/attestation.py``): the counter spec pointed at another TPM is
refused there, and so is the chain redefined when the count has not moved past one the server holds; root who also
counts one more entry passes (the server never sees entries), and ``verify(witnesses=)`` against every count and chain
the server held (their history, hist31) proves the rewrite of entries up to any witnessed count.

What may be logged is enforced here, not left to callers: ``data`` is a flat table of short
scalars (strings ≤ 256 characters, numbers, booleans, null) whose keys are not names of biometric
fields. Images, crops, landmarks and templates cannot pass, whatever a caller tries.

A record refused that way is not lost silently and does not fail its caller (misc25):
:meth:`AuditLog.record` writes in its place one fixed-size ``audit_refused`` entry (``code``
``AUD_REFUSED``, ``problem`` one of ``PROBLEMS``, the refused event's name, the offending field's
name, and the ``session_id`` when the record had a short one: never a refused value; a name or value
that is not UTF-8 text, a lone surrogate, is refused too, ``NOT_TEXT``), logs a warning
naming the same, counts it (:meth:`AuditLog.refusals`: the daemon's metrics export it) and returns.
So whatever a caller passes, the operation is audited (what happened, when, in which session), and a
session's verdict, its probe and its receipt go on exactly as if the record had been written: the
refusal is a defect of the caller's, never the person's, and never a way to end a session. The
diagnostics read the entries back (``observe.ledger``). Writing itself failing (a closed log, a full
disk) is not a refusal and still raises.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.security.keys import verify_signature
from drivers.errors import CaptureAgentError

log = logging.getLogger(__name__)

GENESIS = "0" * 64
MAX_STRING = 256
MAX_NAME = 64                      # event and field names
REFUSED_EVENT = "audit_refused"    # the entry written in place of a refused record
# Why a record was refused (``AuditRefused.problem``, the ``audit_refused`` entry's ``problem``): a
# closed set, so it can be a metric's label.
EVENT_NAME, FIELD_NAME, BIOMETRIC_FIELD, TOO_LONG, NOT_SCALAR, NOT_TEXT = (
    "EVENT_NAME", "FIELD_NAME", "BIOMETRIC_FIELD", "TOO_LONG", "NOT_SCALAR", "NOT_TEXT")
PROBLEMS = (EVENT_NAME, FIELD_NAME, BIOMETRIC_FIELD, TOO_LONG, NOT_SCALAR, NOT_TEXT)
FORBIDDEN_KEYS = frozenset({"pixels", "image", "images", "crop", "crops", "landmarks", "embedding", "template",
                            "frame", "frames", "depth", "ir", "color", "face", "iris", "payload", "plaintext"})


class AuditError(CaptureAgentError):
    code = "AUD_ERROR"


class AuditRefused(AuditError):
    """A caller tried to log something that is not a short scalar, or a biometric field.
    ``problem``: one of ``PROBLEMS``; ``field``: the offending field's name when it is one a record
    may carry (a valid name), else None."""

    code = "AUD_REFUSED"

    def __init__(self, message: str, problem: str, field: str | None = None):
        super().__init__(message)
        self.problem, self.field = problem, field


class AuditCorrupt(AuditError):
    code = "AUD_CORRUPT"


class AuditUnsigned(AuditCorrupt):
    """No signed checkpoint at all, or more entries after the last one than the cadence allows."""

    code = "AUD_UNSIGNED"


class AuditTruncated(AuditCorrupt):
    """The log does not contain a checkpoint the server holds as an anchor (cut or replaced)."""

    code = "AUD_TRUNCATED"


class AuditCounterCut(AuditTruncated):
    """The log's counted entries end below the TPM's NV counter, or skip counts: counted entries were cut
    (sec29)."""

    code = "AUD_COUNTER_CUT"


class AuditCounterForged(AuditCounterCut):
    """The counted entries' content does not hash to the TPM's NV extend index (sec30): a counted entry was
    rewritten, removed and replaced by one of the same count, or the chain index was redefined."""

    code = "AUD_COUNTER_FORGED"


class AuditCounterGone(AuditError):
    """The log holds counted entries, or the TPM holds a written audit counter, and no counter is configured
    (sec30): ``[audit] tpm_counter`` removed from the config. The daemon refuses to start."""

    code = "AUD_COUNTER_GONE"


# sec29: the entries that matter for lockout carry ``tpm_count``, the value the TPM's NV counter takes when
# they are written (``agent.security.tpm.TpmMonotonic``). A gap in those counts is allowed only just before
# the fail-closed lockout that reported it: a ``lockout_restored`` entry whose ``why`` is ``CUT_CODE`` and whose
# ``tpm_resync`` is the last count the log held then (-1: none).
COUNT_FIELD = "tpm_count"
CUT_CODE = "SES_AUDIT_CUT"
RESYNC_EVENT = "lockout_restored"
# sec30: each counted entry also carries ``tpm_chain``, the TPM's NV extend index before it (hex), and its hash is
# then extended into that index: the index's value is SHA-256(tpm_chain || the entry's hash) after it, so the chain
# of counted entries back to the first (``ZERO_CHAIN``) or to the last resync is the only content that reproduces it.
CHAIN_FIELD = "tpm_chain"
ZERO_CHAIN = "0" * 64


@dataclass(frozen=True)
class CounterCheck:
    """The log's counted entries against the TPM's counter, at start (:attr:`AuditLog.counter_check`).
    ``problem``: None (they agree), ``BEHIND`` (the log's last count is below the counter's: cut),
    ``GAP`` (a count skipped: entries cut from within, the log cut while the daemon ran), ``AHEAD`` (the
    log above the counter by more than one: the index redefined or the TPM cleared), ``MISSING`` (the log
    holds counts and the counter was never advanced: the index redefined), ``FORGED`` (sec30: the counted entries'
    content does not reproduce the TPM's extend index: an entry rewritten, or replaced by one of the same count)."""

    logged: int | None             # the log's last count (None: no counted entry)
    tpm: int | None                # the counter's value (None: never advanced)
    problem: str | None = None


def _count(e: dict[str, Any]) -> int | None:
    """An entry's TPM count (``COUNT_FIELD``), or None when it carries none (an uncounted entry)."""
    d = e.get("data")
    n = d.get(COUNT_FIELD) if isinstance(d, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def _count_of(line: bytes) -> int | None:
    """The TPM count of the entry on ``line`` (None: not JSON, or an uncounted entry)."""
    try:
        e = json.loads(line)
    except ValueError:
        return None
    return _count(e) if isinstance(e, dict) else None


def _is_resync(e: dict[str, Any]) -> bool:
    d = e.get("data") or {}
    return (e.get("event") == RESYNC_EVENT and d.get("why") == CUT_CODE and isinstance(d.get("tpm_resync"), int)
            and _count(e) is not None)


def _chain(e: dict[str, Any]) -> str | None:
    """An entry's ``tpm_chain`` (64 hex digits), or None (an entry written before sec30, or no chain)."""
    d = e.get("data")
    c = d.get(CHAIN_FIELD) if isinstance(d, dict) else None
    if not (isinstance(c, str) and len(c) == 64):
        return None
    try:
        bytes.fromhex(c)
    except ValueError:
        return None
    return c.lower()


def chain_after(chain: str, digest: str) -> str:
    """The extend index's value after TPM2_NV_Extend of ``digest`` (hex) onto ``chain`` (hex): SHA-256 of both."""
    return hashlib.sha256(bytes.fromhex(chain) + bytes.fromhex(digest)).hexdigest()


def _linked(earlier: dict[str, Any] | None, later: dict[str, Any]) -> bool:
    """Whether counted entry ``later``'s chain follows from the counted entry before it (None: it is the first):
    chained from its chain and hash (recomputed: a hash field left standing over changed content does not count),
    or, for the first chained entry (the first at all, or the first after entries written before sec30), from
    ``ZERO_CHAIN``. An entry without a chain may not follow one with a chain."""
    c = _chain(later)
    prior = _chain(earlier) if earlier is not None else None
    if c is None:
        return prior is None
    if prior is None:
        return c == ZERO_CHAIN
    assert earlier is not None
    return c == chain_after(prior, entry_hash(earlier))


def chain_end(e: dict[str, Any] | None) -> str:
    """What the TPM's extend index holds once the last counted entry ``e`` is extended (``ZERO_CHAIN`` for none,
    or one written before sec30)."""
    c = _chain(e) if e is not None else None
    return ZERO_CHAIN if c is None or e is None else chain_after(c, entry_hash(e))


@dataclass(frozen=True)
class CountedTail:
    """The log's counted entries read back from its end (:func:`counted_tail`)."""

    last: int | None                   # the last count (None: no counted entry)
    contiguous: bool                   # the counts run without a gap back to the first or the last resync
    chained: bool = True               # each counted entry's chain follows from the one before (sec30)
    entry: dict[str, Any] | None = None  # the last counted entry


def counted_tail(lines: Iterable[bytes]) -> CountedTail:
    """From the log's lines, last first: the last count, whether the counts run without a gap back to the first
    counted entry or to the last fail-closed lockout that reported one (``_is_resync``), and whether their chains
    (``tpm_chain``, sec30) link the same way."""
    last: dict[str, Any] | None = None
    later: dict[str, Any] | None = None
    for line in lines:
        if COUNT_FIELD.encode() not in line:
            continue
        try:
            e = json.loads(line)
        except ValueError:
            continue
        n = _count(e) if isinstance(e, dict) else None
        if n is None:
            continue
        if last is None:
            last = e
        if later is not None:
            if _count(later) != n + 1:
                return CountedTail(_count(last), False, True, last)
            if not _linked(e, later):
                return CountedTail(_count(last), True, False, last)
        if _is_resync(e):
            return CountedTail(_count(last), True, True, last)
        later = e
    return CountedTail(_count(last) if last else None, True, later is None or _linked(None, later), last)


@dataclass(frozen=True)
class Anchor:
    """A signed checkpoint as it leaves the terminal (``AuditAnchor`` in the probe header)."""

    seq: int              # the last entry the checkpoint covers
    head: str             # that entry's hash, hex
    signature: bytes      # the terminal key over checkpoint_message(seq, head)
    algorithm: str
    log_id: str           # the hash of the log's first entry, hex
    tpm_count: int = 0    # the TPM counter's value when the anchor was made (0: no counter; sec29), signed (sec30)
    # sec31: TPM2_NV_Certify of the counter and chain by the attestation key for the probe's nonce
    # (``pb.NvCertification``, ``agent.security.tpm.TpmAttestor.certify_counter``); () without an attestation key
    certificates: tuple[Any, ...] = ()


def _canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def checkpoint_message(seq: int, head: str, tpm_count: int | None = None) -> bytes:
    """What a checkpoint's signature covers: the entry's number and hash, and since sec30 the TPM counter's value
    then (``v2``; 0 without a counter), so that an anchor's count is the terminal key's word too. ``tpm_count``
    None: the ``v1`` message of checkpoints written before sec30 (they carry no ``signed_count``)."""
    if tpm_count is None:
        return b"capture-agent/audit/v1\0" + struct.pack(">Q", seq) + bytes.fromhex(head)
    return b"capture-agent/audit/v2\0" + struct.pack(">Q", seq) + bytes.fromhex(head) + struct.pack(">Q", tpm_count)


def _utf8(v: str) -> bool:
    """Whether ``v`` can be written to the log (UTF-8): a lone surrogate (a ``surrogateescape``d byte of
    a name read from the OS, a ``\\udc80`` escape in JSON) cannot (review26: it raised
    ``UnicodeEncodeError`` out of :meth:`AuditLog.record`, past the ``audit_refused`` entry)."""
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _name(k: Any) -> bool:
    return isinstance(k, str) and 0 < len(k) <= MAX_NAME and _utf8(k)


def clean(data: dict[str, Any]) -> dict[str, Any]:
    """Validate one entry's data: flat, short scalars, no biometric field names."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if not _name(k):
            raise AuditRefused(f"audit field names must be non-empty strings of at most {MAX_NAME} characters",
                               FIELD_NAME)
        if k.lower() in FORBIDDEN_KEYS:
            raise AuditRefused(f"audit field {k!r} names biometric data, which is never logged", BIOMETRIC_FIELD, k)
        if isinstance(v, str):
            if len(v) > MAX_STRING:
                raise AuditRefused(f"audit field {k!r} is longer than {MAX_STRING} characters", TOO_LONG, k)
            if not _utf8(v):
                raise AuditRefused(f"audit field {k!r} is not text the log can write (not UTF-8)", NOT_TEXT, k)
        elif not (v is None or isinstance(v, (bool, int, float))):
            raise AuditRefused(f"audit field {k!r} must be a string, number, boolean or null, "
                               f"not {type(v).__name__}", NOT_SCALAR, k)
        out[k] = v
    return out


def refused_entry(event: Any, data: dict[str, Any], exc: AuditRefused) -> dict[str, Any]:
    """The data of the ``audit_refused`` entry written in place of ``event``'s refused record: names
    and a stable code only, each at most ``MAX_NAME`` characters, never one of the refused values
    (a session id is an id the session made, kept when short so the refusal reads with its session)."""
    sid = data.get("session_id")
    return {"code": AuditRefused.code, "problem": exc.problem, "refused_event": event if _name(event) else None,
            "field": exc.field if _name(exc.field) else None,
            "session_id": sid if _name(sid) else None}


class AuditLog:
    """Append-only, hash-chained audit log. Thread-safe; each entry is flushed and fsynced."""

    def __init__(self, path: str | os.PathLike[str], signer=None, *, checkpoint_every: int = 50,
                 checkpoint_interval_s: float = 300.0, clock=time.time, counter=None,
                 counted: Iterable[str] = ()):
        """``counter``: the TPM's NV counter (``agent.security.tpm.TpmMonotonic``; sec29) advanced by each
        entry whose event is one of ``counted``, its value written in the entry (``tpm_count``), and checked
        against the log now (:attr:`counter_check`); None: no counted entries (a terminal without a TPM)."""
        self.path = Path(path)
        self.signer = signer
        self.counter, self.counted = counter, frozenset(counted)
        # sec31: nonce -> the TPM's certifications of the counter and chain (the daemon sets it where an attestation
        # key is configured beside the counter); taken under the log's lock with the anchor, so that both tell of
        # the same count
        self.certify: Callable[[bytes], tuple[Any, ...]] | None = None
        self.every, self.interval_s, self.clock = checkpoint_every, checkpoint_interval_s, clock
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._log_id = ""
        self._last_anchor: Anchor | None = None
        self._seq, self._head = self._resume()
        self._count: int | None = None
        self._chain = ZERO_CHAIN                    # the TPM's extend index as this log last left it (sec30)
        self._pending: dict[str, Any] | None = None  # a counted entry whose TPM steps failed (done before the next)
        self.counter_check: CounterCheck | None = None
        if counter is not None:
            self.counter_check = self._check_counter()
        elif self.path.exists():
            self._refuse_uncounted()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._fh = os.fdopen(fd, "a", encoding="utf-8")
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._closed = False
        self._refused: Counter[str] = Counter()

    def _resume(self) -> tuple[int, str]:
        """Continue an existing log: its last entry must be intact (a torn last line is an error,
        not something to paper over)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return -1, GENESIS
        with open(self.path, "rb") as fh:
            fh.seek(max(0, self.path.stat().st_size - 65536))
            last = fh.read().splitlines()[-1]
        try:
            entry = json.loads(last)
            ok = entry_hash(entry) == entry["hash"]
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise AuditCorrupt(f"the last entry of {self.path} is damaged; run 'capture-agent audit-verify' "
                               "and move the file aside before starting")
        with open(self.path, "rb") as fh:
            try:
                self._log_id = str(json.loads(fh.readline())["hash"])
            except (ValueError, KeyError, TypeError):
                raise AuditCorrupt(f"the first entry of {self.path} is damaged") from None
        return int(entry["seq"]), entry["hash"]

    def _refuse_uncounted(self) -> None:
        """A log with counted entries opened without a counter (sec30): the counter was in use and is gone from
        the config (root's edit, or a mistake): refused (``AUD_COUNTER_GONE``), never run uncounted (fail open)."""
        from agent.observe.ledger import lines_back
        last = next((n for line in lines_back(self.path) if COUNT_FIELD.encode() in line
                     for n in [_count_of(line)] if n is not None), None)
        if last is not None:
            raise AuditCounterGone(f"{self.path} holds lockout entries counted by a TPM (the last counts {last}) and "
                                   "no [audit] tpm_counter is configured: the counter that was in use is gone; put "
                                   "it back in the config (a log without its counter would fail open)")

    def _complete(self, e: dict[str, Any]) -> tuple[int | None, str]:
        """The TPM steps counted entry ``e``'s write leaves, done if they are not (the daemon stopped, or the TPM
        failed, between writing it and them): the counter advanced to its count, its hash extended into the chain.
        The counter's value and the chain's after."""
        n, c = _count(e), _chain(e)
        tpm = self.counter.count()
        if tpm is not None and n is not None and tpm == n - 1:
            tpm = self.counter.increment()
            log.warning("audit: the TPM counter was one behind the log's last counted entry (the daemon stopped "
                        "between the two): advanced")
        chain = self.counter.chain().hex()
        if c is not None and chain == c:
            self.counter.extend(bytes.fromhex(entry_hash(e)))
            chain = chain_after(c, entry_hash(e))
            log.warning("audit: the TPM's chain lacked the log's last counted entry (the daemon stopped between "
                        "the two): extended")
        return tpm, chain

    def _check_counter(self) -> CounterCheck:
        """The log's last count against the counter (sec29) and its counted entries' content against the chain
        (sec30). One ahead is a daemon stopped between writing a counted entry and its TPM steps: done now.
        Otherwise a disagreement is reported (the caller fails closed: ``agent.session.lockout``), and later entries
        count on from the counter and chain on from the chain."""
        from agent.observe.ledger import lines_back
        tail = counted_tail(lines_back(self.path)) if self.path.exists() else CountedTail(None, True)
        logged = tail.last
        if tail.entry is not None:
            tpm, chain = self._complete(tail.entry)
        else:
            tpm, chain = self.counter.count(), self.counter.chain().hex()
        problem = None
        if logged is None and tpm is not None or logged is not None and tpm is not None and logged < tpm:
            problem = "BEHIND"
        elif logged is not None and tpm is None:
            problem = "MISSING"
        elif logged is not None and tpm is not None and logged > tpm:
            problem = "AHEAD"
        elif not tail.contiguous:
            problem = "GAP"
        elif not tail.chained or chain != chain_end(tail.entry):
            problem = "FORGED"
        self._count, self._chain = tpm, chain
        if problem is not None:
            code = AuditCounterForged.code if problem == "FORGED" else AuditCounterCut.code
            log.error("audit: error[%s]: the log's counted entries do not match the TPM counter (%s: the log's "
                      "last count %s, the counter %s): entries were cut or rewritten", code, problem, logged, tpm)
        return CounterCheck(logged, tpm, problem)

    @property
    def head(self) -> tuple[int, str]:
        return self._seq, self._head

    @property
    def count(self) -> int | None:
        """The last count written or read at start (None without a counter, or before its first advance)."""
        return self._count

    @property
    def log_id(self) -> str:
        return self._log_id

    def anchor(self, nonce: bytes | None = None) -> Anchor | None:
        """The latest signed checkpoint, made now if entries were added since the last one (so it
        covers everything logged so far); None without a signer. With ``nonce`` and :attr:`certify` (sec31), it
        carries the TPM's certifications of the counter and chain for that nonce, made with it under the lock."""
        with self._lock:
            if self.signer is None:
                return None
            if self._last_anchor is None or self._since_checkpoint:
                self._checkpoint()
            assert self._last_anchor is not None
            if nonce is not None and self.certify is not None:
                return dataclasses.replace(self._last_anchor, certificates=self.certify(nonce))
            return self._last_anchor

    def refusals(self) -> dict[str, int]:
        """Records refused so far in this process, by ``problem`` (``audit_refused`` entries written)."""
        with self._lock:
            return dict(self._refused)

    def record(self, event: str, **data: Any) -> dict[str, Any]:
        """Append ``event`` with ``data`` (flat short scalars, ``clean``) and return the entry. A record
        that may not be logged is refused, and the ``audit_refused`` entry written in its place is
        returned instead (module docstring): this never raises ``AuditRefused``."""
        problem = None
        try:
            if not _name(event):
                raise AuditRefused(f"audit event names are non-empty strings of at most {MAX_NAME} characters",
                                   EVENT_NAME)
            body = clean(data)
        except AuditRefused as exc:
            event, body, problem = REFUSED_EVENT, refused_entry(event, data, exc), exc.problem
            log.warning("audit record %s refused (%s, field %s): %s entry written in its place",
                        body["refused_event"], problem, body["field"], REFUSED_EVENT)
        with self._lock:
            if self.counter is not None and event in self.counted:
                entry = self._append_counted(event, body)
            else:
                entry = self._append(event, body)
            if problem is not None:
                self._refused[problem] += 1
            self._since_checkpoint += 1
            due = self._since_checkpoint >= self.every or time.monotonic() - self._last_checkpoint >= self.interval_s
            if due and self.signer is not None:
                self._checkpoint()
            return entry

    def _append(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        if self._closed:
            raise AuditError("audit log is closed")
        ts = dt.datetime.fromtimestamp(self.clock(), dt.UTC).isoformat(timespec="milliseconds")
        entry: dict[str, Any] = {"seq": self._seq + 1, "ts": ts.replace("+00:00", "Z"), "event": event,
                                 "data": data, "prev": self._head}
        entry["hash"] = entry_hash(entry)
        self._fh.write(_canonical(entry).decode() + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._seq, self._head = entry["seq"], entry["hash"]
        if entry["seq"] == 0:
            self._log_id = entry["hash"]
        return entry

    def _append_counted(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """An entry that advances the TPM's counter, with the counter's value after (sec29), and whose hash is then
        extended into the TPM's chain, with the chain's value before (sec30): written first, then the counter
        advanced and the chain extended, so that a daemon stopped between leaves the log ahead (the steps done at
        the next start, :meth:`_complete`), never behind (which reads as a cut). A counter never advanced is
        advanced first (its first value cannot be known before)."""
        if self._pending is not None:               # the last entry's TPM steps failed: done first
            self._complete(self._pending)
            self._pending = None
        first = self._count is None
        if first:
            self._count = self.counter.increment()
        assert self._count is not None
        expected = self._count if first else self._count + 1
        entry = self._append(event, {**data, COUNT_FIELD: expected, CHAIN_FIELD: self._chain})
        after = chain_after(self._chain, entry["hash"])
        try:
            got = expected if first else self.counter.increment()
            self.counter.extend(bytes.fromhex(entry["hash"]))
        except BaseException:
            self._count, self._chain, self._pending = expected, after, entry
            raise
        if got != expected:
            log.error("audit: error[%s]: the TPM counter reads %d after entry %d, which counted %d: something else "
                      "advanced it (the next start reads the log as cut and fails closed)",
                      AuditCounterCut.code, got, entry["seq"], expected)
        self._count, self._chain = got, after
        return entry

    def _checkpoint(self) -> None:
        if self._seq < 0:
            self._append("log_start", {})             # a checkpoint signs an entry: there is one
        seq, head, count = self._seq, self._head, self._count or 0
        sig = self.signer.sign(checkpoint_message(seq, head, count))
        self._append("checkpoint", {"signed_seq": seq, "signed_count": count, "key_id": self.signer.key_id,
                                    "algorithm": self.signer.algorithm, "signature": base64.b64encode(sig).decode()})
        self._last_anchor = Anchor(seq, head, sig, self.signer.algorithm, self._log_id, count)
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()

    def checkpoint(self) -> None:
        with self._lock:
            if self.signer is not None and self._since_checkpoint:
                self._checkpoint()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self.signer is not None and self._since_checkpoint:
                self._checkpoint()
            self._closed = True
            self._fh.close()


def refuse_uncounted_tpm(tcti: str | None = None) -> None:
    """For a daemon configured without ``[audit] tpm_counter`` (sec30): the TPM at ``tcti`` (the kernel's resource
    manager by default; none there: nothing to check) holding an audit counter or chain that was ever written means
    the counter was in use and is gone from the config: refused (``AUD_COUNTER_GONE``), not run uncounted."""
    from agent.security.tpm import DEFAULT_TCTI, written_audit_indices
    found = written_audit_indices(tcti or DEFAULT_TCTI)
    if found:
        names = ", ".join(f"{i:#010x}" for i in found)
        raise AuditCounterGone(f"the TPM holds audit NV indices that were written ({names}) "
                               "and no [audit] tpm_counter is configured: the counter that was in use is gone; put "
                               "it back in the config (undefining the indices is the owner's deliberate act)")


@dataclass
class VerifyReport:
    entries: int
    checkpoints: int
    last_signed_seq: int          # the last entry a verified checkpoint covers
    unsigned_tail: int            # entries after it that no checkpoint covers yet
    log_id: str = ""              # the hash of the first entry
    anchors_checked: int = 0      # server-held anchors found in the log
    last_count: int | None = None  # the last counted entry's TPM count (sec29; None: no counted entry)
    cuts_reported: int = 0        # gaps in the counts the daemon reported and failed closed on (SES_AUDIT_CUT)

    def to_dict(self) -> dict[str, int | str]:
        return dict(self.__dict__)


DEFAULT_MAX_UNSIGNED = 50         # the daemon's default checkpoint_every


def parse_anchor(text: str) -> tuple[int, str]:
    """``SEQ:HEAD`` (as the server's anchor store shows it) -> (seq, head)."""
    seq, _, head = text.partition(":")
    try:
        if len(head) != 64:
            raise ValueError
        bytes.fromhex(head)
        return int(seq), head.lower()
    except ValueError:
        raise AuditError(f"an anchor is SEQ:HEAD (a number, a colon, 64 hex digits), not {text[:80]!r}") from None


def parse_witness(text: str) -> tuple[int, str]:
    """``COUNT:CHAIN`` (the server's :meth:`hil.ingest.attestation.WitnessStore.cli_witness`: a count and chain the
    TPM certified, sec31) -> (count, chain)."""
    count, _, chain = text.partition(":")
    try:
        if len(chain) != 64 or not count.isdigit():
            raise ValueError
        bytes.fromhex(chain)
        return int(count), chain.lower()
    except ValueError:
        raise AuditError(f"a TPM witness is COUNT:CHAIN (a count, a colon, 64 hex digits), not {text[:80]!r}") from None


def verify(path: str | os.PathLike[str], public_key, *, anchors: Iterable[tuple[int, str]] = (),
           max_unsigned_tail: int = DEFAULT_MAX_UNSIGNED, tpm_count: int | None = None,
           tpm_chain: str | None = None, witnesses: Iterable[tuple[int, str]] = ()) -> VerifyReport:
    """Check the chain of every line and every checkpoint's signature by ``public_key``; require at
    least one checkpoint, at most ``max_unsigned_tail`` entries after the last, and that every
    anchor ``(seq, head)`` the server holds is a checkpointed entry of this log. The counted entries'
    ``tpm_count`` must run without a gap, except just before a ``SES_AUDIT_CUT`` lockout that reported it
    (sec29); with ``tpm_count`` (the TPM's NV counter read now; 0: never advanced) the last must equal it (or
    be one above: the daemon stopped between writing the entry and advancing the counter; none at 0). Each counted
    entry's ``tpm_chain`` must follow from the counted entry before it (sec30, except after a resync as above), and
    with ``tpm_chain`` (the TPM's NV extend index read now, hex) the last counted entry's chain extended by its hash
    must equal it (or its chain alone: the daemon stopped before the extend). A checkpoint's signature covers its
    ``signed_count`` (sec30; one without it, written before, the v1 message), which must be the count of the last
    counted entry before it (0: none), or above it only where the next counted entry is the resync that reported
    the gap (sec31). Each of ``witnesses`` ``(count, chain)`` (what the TPM certified to the server, sec31) must be
    a counted entry of that count whose chain extended by its hash (or its chain alone, as above) is ``chain``.
    Raises ``AuditCorrupt`` (``AUD_CORRUPT``, ``AUD_UNSIGNED``, ``AUD_TRUNCATED``, ``AUD_COUNTER_CUT``,
    ``AUD_COUNTER_FORGED``) naming the first problem."""
    if public_key is None:
        raise AuditError("verifying an audit log needs the terminal's public key: without it anyone can "
                         "recompute the chain")
    prev, log_id = GENESIS, ""
    seq, checkpoints, last_signed, tail = -1, 0, -1, 0
    hashes: dict[int, str] = {}
    signed: set[int] = set()
    wanted = {int(s): h.lower() for s, h in anchors}
    last_count: int | None = None
    counted: dict[str, Any] | None = None          # the last counted entry
    resyncs = 0
    above: tuple[int, int] | None = None           # (a signed count above the entries', its line): a resync must follow
    by_count: dict[int, dict[str, Any]] = {}       # the counted entries by count (a TPM counter never repeats one)
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                e = json.loads(line)
                good = (e["prev"] == prev and e["seq"] == seq + 1 and entry_hash(e) == e["hash"])
            except (ValueError, KeyError, TypeError):
                good = False
            if not good:
                raise AuditCorrupt(f"audit log broken at line {lineno}: the entry was altered, inserted, "
                                   "removed or reordered")
            if e["event"] == "checkpoint":
                checkpoints += 1
                d = e["data"]
                try:
                    sig = base64.b64decode(d["signature"], validate=True)
                    signed_count = d.get("signed_count")
                    if signed_count is not None and (not isinstance(signed_count, int) or signed_count < 0):
                        raise ValueError("signed_count")
                    ok = d["signed_seq"] == seq and verify_signature(
                        public_key, d["algorithm"], checkpoint_message(seq, prev, signed_count), sig)
                except (KeyError, ValueError, TypeError, CaptureAgentError, struct.error):
                    ok = False
                if not ok:
                    raise AuditCorrupt(f"audit checkpoint at line {lineno} is not signed by this terminal's key")
                if signed_count is not None and signed_count < (last_count or 0):
                    raise AuditCounterCut(f"audit checkpoint at line {lineno} signs TPM count {signed_count}, below "
                                          f"the count {last_count} of the counted entry before it")
                if signed_count is not None and signed_count > (last_count or 0) and above is None:
                    above = (signed_count, lineno)
                last_signed, tail = seq, 0
                signed.add(seq)
            else:
                tail += 1
            if (n := _count(e)) is not None:
                if above is not None and not _is_resync(e):
                    raise AuditCounterCut(f"audit checkpoint at line {above[1]} signs TPM count {above[0]}, above the "
                                          "counted entries before it, and no reported cut follows: counted entries "
                                          "were cut before it")
                above = None
                by_count[n] = e
                if _is_resync(e):
                    resyncs += 1
                elif last_count is not None and n != last_count + 1:
                    raise AuditCounterCut(f"audit log entry {e['seq']} counts {n} after {last_count}: counted "
                                          "entries between them were cut")
                elif not _linked(counted, e):
                    raise AuditCounterForged(f"audit log entry {e['seq']}'s TPM chain does not follow from the counted "
                                             "entry before it: a counted entry was rewritten or replaced")
                last_count, counted = n, e
            if seq == -1:
                log_id = e["hash"]
            prev, seq = e["hash"], e["seq"]
            if seq in wanted:
                hashes[seq] = prev
    if above is not None:
        raise AuditCounterCut(f"audit checkpoint at line {above[1]} signs TPM count {above[0]}, above the counted "
                              "entries before it, and no reported cut follows: counted entries were cut before it")
    for n, chain in witnesses:
        e = by_count.get(n)
        if e is None:
            raise AuditCounterCut(f"the TPM certified count {n} to the server, and the log has no counted entry of "
                                  "that count: it was cut")
        if chain.lower() not in {chain_end(e), _chain(e)}:
            raise AuditCounterForged(f"the TPM certified chain {chain[:16]}... at count {n} to the server, and the "
                                     f"log's entry {e['seq']} of that count chains to {chain_end(e)[:16]}...: the "
                                     "counted entries up to it were rewritten (the chain index redefined)")
    if checkpoints == 0:
        raise AuditUnsigned("the audit log has no signed checkpoint: its entries cannot be told from a "
                            "recomputed chain (were the checkpoints removed?)")
    if tail > max_unsigned_tail:
        raise AuditUnsigned(f"{tail} entries follow the last signed checkpoint (at most {max_unsigned_tail} "
                            "expected): checkpoints were removed, or the daemon stopped without one")
    for s, h in sorted(wanted.items()):
        if s > seq:
            raise AuditTruncated(f"the server holds an anchor at entry {s}, but the log ends at entry {seq}: "
                                 "it was truncated or replaced")
        if hashes.get(s) != h or s not in signed:
            raise AuditTruncated(f"entry {s} is not the checkpointed entry the server holds as an anchor: "
                                 "the log was rewritten or replaced")
    if tpm_count is not None and not (last_count is None if tpm_count == 0 else
                                      last_count is not None and tpm_count <= last_count <= tpm_count + 1):
        raise AuditCounterCut(f"the log's last counted entry counts {last_count}, the TPM's counter {tpm_count}: "
                              + ("counted entries were cut off its end" if last_count is None or last_count < tpm_count
                                 else "the counter was redefined or the TPM cleared"))
    if tpm_chain is not None and tpm_chain.lower() not in {chain_end(counted), _chain(counted) if counted else None}:
        raise AuditCounterForged(f"the TPM's chain {tpm_chain[:16]}... is not what the log's counted entries extend "
                                 f"it to ({chain_end(counted)[:16]}...): a counted entry was rewritten or replaced, "
                                 "or the chain index redefined")
    return VerifyReport(seq + 1, checkpoints, last_signed, tail, log_id, len(wanted), last_count, resyncs)
