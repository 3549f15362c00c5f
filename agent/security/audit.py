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

What may be logged is enforced here, not left to callers: ``data`` is a flat table of short
scalars (strings ≤ 256 characters, numbers, booleans, null) whose keys are not names of biometric
fields. Images, crops, landmarks and templates cannot pass, whatever a caller tries.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.security.keys import verify_signature
from drivers.errors import CaptureAgentError

GENESIS = "0" * 64
MAX_STRING = 256
FORBIDDEN_KEYS = frozenset({"pixels", "image", "images", "crop", "crops", "landmarks", "embedding", "template",
                            "frame", "frames", "depth", "ir", "color", "face", "iris", "payload", "plaintext"})


class AuditError(CaptureAgentError):
    code = "AUD_ERROR"


class AuditRefused(AuditError):
    """A caller tried to log something that is not a short scalar, or a biometric field."""

    code = "AUD_REFUSED"


class AuditCorrupt(AuditError):
    code = "AUD_CORRUPT"


def _canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def checkpoint_message(seq: int, head: str) -> bytes:
    return b"capture-agent/audit/v1\0" + struct.pack(">Q", seq) + bytes.fromhex(head)


def clean(data: dict[str, Any]) -> dict[str, Any]:
    """Validate one entry's data: flat, short scalars, no biometric field names."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if not isinstance(k, str) or not k or len(k) > 64:
            raise AuditRefused("audit field names must be non-empty strings of at most 64 characters")
        if k.lower() in FORBIDDEN_KEYS:
            raise AuditRefused(f"audit field {k!r} names biometric data, which is never logged")
        if isinstance(v, str):
            if len(v) > MAX_STRING:
                raise AuditRefused(f"audit field {k!r} is longer than {MAX_STRING} characters")
        elif not (v is None or isinstance(v, (bool, int, float))):
            raise AuditRefused(f"audit field {k!r} must be a string, number, boolean or null, "
                               f"not {type(v).__name__}")
        out[k] = v
    return out


class AuditLog:
    """Append-only, hash-chained audit log. Thread-safe; each entry is flushed and fsynced."""

    def __init__(self, path: str | os.PathLike[str], signer=None, *, checkpoint_every: int = 50,
                 checkpoint_interval_s: float = 300.0, clock=time.time):
        self.path = Path(path)
        self.signer = signer
        self.every, self.interval_s, self.clock = checkpoint_every, checkpoint_interval_s, clock
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._seq, self._head = self._resume()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._fh = os.fdopen(fd, "a", encoding="utf-8")
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._closed = False

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
        return int(entry["seq"]), entry["hash"]

    @property
    def head(self) -> tuple[int, str]:
        return self._seq, self._head

    def record(self, event: str, **data: Any) -> dict[str, Any]:
        if not isinstance(event, str) or not event or len(event) > 64:
            raise AuditRefused("audit event names are non-empty strings of at most 64 characters")
        body = clean(data)
        with self._lock:
            entry = self._append(event, body)
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
        return entry

    def _checkpoint(self) -> None:
        sig = self.signer.sign(checkpoint_message(self._seq, self._head))
        self._append("checkpoint", {"signed_seq": self._seq, "key_id": self.signer.key_id,
                                    "algorithm": self.signer.algorithm, "signature": base64.b64encode(sig).decode()})
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
    last_signed_seq: int          # the last entry a verified checkpoint covers; -1 when none
    unsigned_tail: int            # entries after it that no checkpoint covers yet

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def verify(path: str | os.PathLike[str], public_key=None) -> VerifyReport:
    """Check the chain of every line, and each checkpoint's signature when ``public_key`` is given.
    Raises AuditCorrupt at the first broken entry, naming its line."""
    prev, seq, checkpoints, last_signed, tail = GENESIS, -1, 0, -1, 0
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
                if public_key is not None:
                    d = e["data"]
                    try:
                        sig = base64.b64decode(d["signature"], validate=True)
                        ok = d["signed_seq"] == seq and verify_signature(
                            public_key, d["algorithm"], checkpoint_message(seq, prev), sig)
                    except (KeyError, ValueError, TypeError):
                        ok = False
                    if not ok:
                        raise AuditCorrupt(f"audit checkpoint at line {lineno} is not signed by this terminal's key")
                    last_signed, tail = seq, 0
            else:
                tail += 1
            prev, seq = e["hash"], e["seq"]
    return VerifyReport(seq + 1, checkpoints, last_signed, tail if public_key is not None else seq + 1)
