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


@dataclass(frozen=True)
class Anchor:
    """A signed checkpoint as it leaves the terminal (``AuditAnchor`` in the probe header)."""

    seq: int              # the last entry the checkpoint covers
    head: str             # that entry's hash, hex
    signature: bytes      # the terminal key over checkpoint_message(seq, head)
    algorithm: str
    log_id: str           # the hash of the log's first entry, hex


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
                 checkpoint_interval_s: float = 300.0, clock=time.time):
        self.path = Path(path)
        self.signer = signer
        self.every, self.interval_s, self.clock = checkpoint_every, checkpoint_interval_s, clock
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._log_id = ""
        self._last_anchor: Anchor | None = None
        self._seq, self._head = self._resume()
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

    @property
    def head(self) -> tuple[int, str]:
        return self._seq, self._head

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

    def _checkpoint(self) -> None:
        if self._seq < 0:
            self._append("log_start", {})             # a checkpoint signs an entry: there is one
        seq, head = self._seq, self._head
        sig = self.signer.sign(checkpoint_message(seq, head))
        self._append("checkpoint", {"signed_seq": seq, "key_id": self.signer.key_id,
                                    "algorithm": self.signer.algorithm, "signature": base64.b64encode(sig).decode()})
        self._last_anchor = Anchor(seq, head, sig, self.signer.algorithm, self._log_id)
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
           max_unsigned_tail: int = DEFAULT_MAX_UNSIGNED) -> VerifyReport:
    """Check the chain of every line and every checkpoint's signature by ``public_key``; require at
    least one checkpoint, at most ``max_unsigned_tail`` entries after the last, and that every
    anchor ``(seq, head)`` the server holds is a checkpointed entry of this log. Raises
    ``AuditCorrupt`` (``AUD_CORRUPT``, ``AUD_UNSIGNED``, ``AUD_TRUNCATED``) naming the first problem."""
    if public_key is None:
        raise AuditError("verifying an audit log needs the terminal's public key: without it anyone can "
                         "recompute the chain")
    prev, log_id = GENESIS, ""
    seq, checkpoints, last_signed, tail = -1, 0, -1, 0
    hashes: dict[int, str] = {}
    signed: set[int] = set()
    wanted = {int(s): h.lower() for s, h in anchors}
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
    return VerifyReport(seq + 1, checkpoints, last_signed, tail, log_id, len(wanted))
