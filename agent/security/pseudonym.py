"""Keyed pseudonyms for identifiers the audit log and lockout must not hold in the clear.

A subject reference, a consent record's reference and a business reference are linkable data: a
plain (even truncated) SHA-256 of ``CUST-42`` is found by hashing candidates. Here each becomes
``KIND:`` + HMAC-SHA256(key, KIND || 0 || value), truncated to 128 bits, under a secret of this
terminal: the same reference gives the same pseudonym on this terminal (lockout and audit can
count and correlate), nobody without the key can test a guess, and two terminals' pseudonyms of the
same subject do not match. The key is 32 random bytes in ``<state_dir>/audit-hmac.key``, mode 0600,
made once (``O_EXCL``) and checked like any key file before it is read (owner, mode, regular file).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from agent.security.keys import KeyStoreError, check_private_file

KEY_FILE = "audit-hmac.key"
KEY_BYTES = 32


class Pseudonymizer:
    def __init__(self, key: bytes):
        if len(key) < KEY_BYTES:
            raise KeyStoreError(f"a pseudonym key has at least {KEY_BYTES} bytes")
        self._key = bytes(key)

    @classmethod
    def ephemeral(cls) -> Pseudonymizer:
        """A key that lives as long as this process (tests, tools without a state directory)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def load_or_create(cls, state_dir: str | os.PathLike[str]) -> Pseudonymizer:
        path = Path(state_dir) / KEY_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(KEY_BYTES) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        check_private_file(path)
        try:
            key = bytes.fromhex(path.read_text().strip())
        except ValueError:
            raise KeyStoreError(f"{path} is not a hex-encoded key; move it aside to make a new one "
                                "(pseudonyms in the audit log then change)") from None
        return cls(key)

    def __call__(self, kind: str, value: str) -> str:
        mac = hmac.new(self._key, kind.encode() + b"\0" + value.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{kind}:{mac}"

    def __repr__(self) -> str:
        return "Pseudonymizer(key=<hidden>)"
