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
import datetime as dt
import hashlib
import json
import logging
import os
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterable
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


# sec29: the entries that matter for lockout carry ``tpm_count``, the value the TPM's NV counter takes when
# they are written (``agent.security.tpm.TpmMonotonic``). A gap in those counts is allowed only just before
# the fail-closed lockout that reported it: a ``lockout_restored`` entry whose ``why`` is ``CUT_CODE`` and whose
# ``tpm_resync`` is the last count the log held then (-1: none).
COUNT_FIELD = "tpm_count"
CUT_CODE = "SES_AUDIT_CUT"
RESYNC_EVENT = "lockout_restored"


@dataclass(frozen=True)
class CounterCheck:
    """The log's counted entries against the TPM's counter, at start (:attr:`AuditLog.counter_check`).
    ``problem``: None (they agree), ``BEHIND`` (the log's last count is below the counter's: cut),
    ``GAP`` (a count skipped: entries cut from within, the log cut while the daemon ran), ``AHEAD`` (the
    log above the counter by more than one: the index redefined or the TPM cleared), ``MISSING`` (the log
    holds counts and the counter was never advanced: the index redefined)."""

    logged: int | None             # the log's last count (None: no counted entry)
    tpm: int | None                # the counter's value (None: never advanced)
    problem: str | None = None


def _count(e: dict[str, Any]) -> int | None:
    """An entry's TPM count (``COUNT_FIELD``), or None when it carries none (an uncounted entry)."""
    d = e.get("data")
    n = d.get(COUNT_FIELD) if isinstance(d, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def _is_resync(e: dict[str, Any]) -> bool:
    d = e.get("data") or {}
    return (e.get("event") == RESYNC_EVENT and d.get("why") == CUT_CODE and isinstance(d.get("tpm_resync"), int)
            and _count(e) is not None)


def counted_tail(lines: Iterable[bytes]) -> tuple[int | None, bool]:
    """From the log's lines, last first: the last count, and whether the counts run without a gap back to
    the first counted entry or to the last fail-closed lockout that reported one (``_is_resync``)."""
    last: int | None = None
    later: int | None = None
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
            last = n
        if later is not None and later != n + 1:
            return last, False
        if _is_resync(e):
            return last, True
        later = n
    return last, True


@dataclass(frozen=True)
class Anchor:
    """A signed checkpoint as it leaves the terminal (``AuditAnchor`` in the probe header)."""

    seq: int              # the last entry the checkpoint covers
    head: str             # that entry's hash, hex
    signature: bytes      # the terminal key over checkpoint_message(seq, head)
    algorithm: str
    log_id: str           # the hash of the log's first entry, hex
    tpm_count: int = 0    # the TPM counter's value when the anchor was made (0: no counter; sec29)


def _canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def checkpoint_message(seq: int, head: str) -> bytes:
    return b"capture-agent/audit/v1\0" + struct.pack(">Q", seq) + bytes.fromhex(head)


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
        self.every, self.interval_s, self.clock = checkpoint_every, checkpoint_interval_s, clock
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._log_id = ""
        self._last_anchor: Anchor | None = None
        self._seq, self._head = self._resume()
        self._count: int | None = None
        self._lagging = False
        self.counter_check: CounterCheck | None = None
        if counter is not None:
            self.counter_check = self._check_counter()
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

    def _check_counter(self) -> CounterCheck:
        """The log's last count against the counter (sec29). One ahead is a daemon stopped between writing a
        counted entry and advancing the counter: advanced now. Otherwise a disagreement is reported (the
        caller fails closed: ``agent.session.lockout``), and later entries count on from the counter."""
        from agent.observe.ledger import lines_back
        logged, contiguous = counted_tail(lines_back(self.path)) if self.path.exists() else (None, True)
        tpm = self.counter.count()
        problem = None
        if logged is not None and tpm is not None and logged == tpm + 1:
            tpm = self.counter.increment()
            log.warning("audit: the TPM counter was one behind the log's last counted entry (the daemon stopped "
                        "between the two): advanced")
        if logged is None and tpm is not None or logged is not None and tpm is not None and logged < tpm:
            problem = "BEHIND"
        elif logged is not None and tpm is None:
            problem = "MISSING"
        elif logged is not None and tpm is not None and logged > tpm:
            problem = "AHEAD"
        elif not contiguous:
            problem = "GAP"
        self._count = tpm
        if problem is not None:
            log.error("audit: error[%s]: the log's counted entries do not match the TPM counter (%s: the log's "
                      "last count %s, the counter %s): entries were cut", AuditCounterCut.code, problem,
                      logged, tpm)
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

    def anchor(self) -> Anchor | None:
        """The latest signed checkpoint, made now if entries were added since the last one (so it
        covers everything logged so far); None without a signer."""
        with self._lock:
            if self.signer is None:
                return None
            if self._last_anchor is None or self._since_checkpoint:
                self._checkpoint()
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
        """An entry that advances the TPM's counter, with the counter's value after (sec29): written first, then
        the counter advanced, so that a daemon stopped between the two leaves the log one ahead (advanced at
        the next start), never behind (which reads as a cut). A counter never advanced is advanced first (its
        first value cannot be known before)."""
        if self._count is None:
            self._count = self.counter.increment()
            return self._append(event, {**data, COUNT_FIELD: self._count})
        expected = self._count + 1
        if self._lagging:                       # the last advance failed: the counter is one behind the log
            self.counter.increment()
            self._lagging = False
        entry = self._append(event, {**data, COUNT_FIELD: expected})
        try:
            got = self.counter.increment()
        except BaseException:
            self._count, self._lagging = expected, True
            raise
        if got != expected:
            log.error("audit: error[%s]: the TPM counter reads %d after entry %d, which counted %d: something else "
                      "advanced it (the next start reads the log as cut and fails closed)",
                      AuditCounterCut.code, got, entry["seq"], expected)
        self._count = got
        return entry

    def _checkpoint(self) -> None:
        if self._seq < 0:
            self._append("log_start", {})             # a checkpoint signs an entry: there is one
        seq, head = self._seq, self._head
        sig = self.signer.sign(checkpoint_message(seq, head))
        self._append("checkpoint", {"signed_seq": seq, "key_id": self.signer.key_id,
                                    "algorithm": self.signer.algorithm, "signature": base64.b64encode(sig).decode()})
        self._last_anchor = Anchor(seq, head, sig, self.signer.algorithm, self._log_id, self._count or 0)
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


def verify(path: str | os.PathLike[str], public_key, *, anchors: Iterable[tuple[int, str]] = (),
           max_unsigned_tail: int = DEFAULT_MAX_UNSIGNED, tpm_count: int | None = None) -> VerifyReport:
    """Check the chain of every line and every checkpoint's signature by ``public_key``; require at
    least one checkpoint, at most ``max_unsigned_tail`` entries after the last, and that every
    anchor ``(seq, head)`` the server holds is a checkpointed entry of this log. The counted entries'
    ``tpm_count`` must run without a gap, except just before a ``SES_AUDIT_CUT`` lockout that reported it
    (sec29); with ``tpm_count`` (the TPM's NV counter read now; 0: never advanced) the last must equal it (or
    be one above: the daemon stopped between writing the entry and advancing the counter; none at 0).
    Raises ``AuditCorrupt`` (``AUD_CORRUPT``, ``AUD_UNSIGNED``, ``AUD_TRUNCATED``, ``AUD_COUNTER_CUT``) naming
    the first problem."""
    if public_key is None:
        raise AuditError("verifying an audit log needs the terminal's public key: without it anyone can "
                         "recompute the chain")
    prev, log_id = GENESIS, ""
    seq, checkpoints, last_signed, tail = -1, 0, -1, 0
    hashes: dict[int, str] = {}
    signed: set[int] = set()
    wanted = {int(s): h.lower() for s, h in anchors}
    last_count: int | None = None
    resyncs = 0
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
                    ok = d["signed_seq"] == seq and verify_signature(
                        public_key, d["algorithm"], checkpoint_message(seq, prev), sig)
                except (KeyError, ValueError, TypeError, CaptureAgentError):
                    ok = False
                if not ok:
                    raise AuditCorrupt(f"audit checkpoint at line {lineno} is not signed by this terminal's key")
                last_signed, tail = seq, 0
                signed.add(seq)
            else:
                tail += 1
            if (n := _count(e)) is not None:
                if _is_resync(e):
                    resyncs += 1
                elif last_count is not None and n != last_count + 1:
                    raise AuditCounterCut(f"audit log entry {e['seq']} counts {n} after {last_count}: counted "
                                          "entries between them were cut")
                last_count = n
            if seq == -1:
                log_id = e["hash"]
            prev, seq = e["hash"], e["seq"]
            if seq in wanted:
                hashes[seq] = prev
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
    return VerifyReport(seq + 1, checkpoints, last_signed, tail, log_id, len(wanted), last_count, resyncs)
