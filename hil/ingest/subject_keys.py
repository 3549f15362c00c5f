"""The server's subject key (``subject_key_file``): its check value, its key id, what makes one too
weak to use, and the pair a rotation runs on.

Subjects are named by HMAC-SHA256 of the bank's reference under this key (``limits.subject_key``):
in the store's failure keys and in receipts (``Receipt.subject_mac``). The key itself never leaves
the server's and the bank's hands; what does:

* the **check value**, HMAC-SHA256 of a fixed label (``CHECK_LABEL``), 64 hex: pinned in the store
  so servers sharing it name subjects under one key (``Store.pin_subject_keys``);
* the **key id**, the check value's first 16 hex: in nonce records and in judged receipts
  (``Receipt.subject_key_id``), so the bank's matcher knows which of its keys made ``subject_mac``
  during a rotation. Both are outputs of the keyed PRF on a label the attacker knows, so they say
  nothing of the key: a rooted terminal that sees receipts still cannot compute or test a
  ``subject_mac`` for a reference it guesses.

**Rotation** (``subject_key_previous_file``): the server names every new challenge's subject under
the current key and, while a previous key is configured, counts the subject's failures under both
names against each limit (a charge's ``also`` keys: the counts add), so failures under the old key
still lock out. The store pins the pair and the time the rotation began (by its own clock, as it
times the overlap: never a server's, whose skew from another's shortened it); a server may drop the
previous key only once ``failure_window_s + nonce_ttl_s`` have passed since (every charge under the
old name has left the window by then: the last old-key nonce is judged at most ``nonce_ttl_s``
after the rotation began, its failure timed then), and a server still on the old key alone is
refused at start and has its charges refused by the store (``Charge.key_check``), as has, until
the overlap has passed, one without the store's previous key (``Charge.previous_check``: it started
while the store was unreachable), so no server counts a subject under one name while another counts
it under the other. The store never rotates back to a key it pinned as a previous one
(``PinResult.RETIRED``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from hil.ingest.limits import SUBJECT_KEY_BYTES, subject_key

CHECK_LABEL = b"capture-agent subject key check v1"
KEY_ID_HEX = 16                 # the key id: the check value's first 16 hex digits (64 bits)
MIN_DISTINCT_BYTES = 20         # 32 random bytes have ~30 distinct values; <= 19 happens with p ~ 1.4e-10


def key_check(secret: bytes) -> str:
    """The check value the store pins: HMAC-SHA256 of a fixed label under the key (says nothing of it)."""
    return hmac.new(secret, CHECK_LABEL, hashlib.sha256).hexdigest()


def weakness(secret: bytes) -> str | None:
    """Why ``secret`` cannot be a subject key, or None. A key that is all zero, one repeated byte, a
    short pattern repeated, a counting sequence or printable text has far less than 32 bytes of
    entropy: whoever guesses it computes every ``subject_mac`` in the receipts and the store's
    subject names, and reverses them by enumerating references. Each test refuses a uniformly random
    key with probability under 1e-9 (``docs/uplink.md`` gives the numbers)."""
    if len(secret) != SUBJECT_KEY_BYTES:
        return f"it must hold {SUBJECT_KEY_BYTES} bytes"
    distinct = len(set(secret))
    if distinct < MIN_DISTINCT_BYTES:
        return (f"it has {distinct} distinct byte values (random bytes have about 30): a repeated byte or "
                "a repeated short pattern")
    if len({(b - a) & 0xFF for a, b in zip(secret, secret[1:], strict=False)}) == 1:
        return "it is a counting sequence"
    if all(0x20 <= b < 0x7F for b in secret):
        return "it is printable text (a passphrase), not random bytes"
    return None


@dataclass(frozen=True)
class SubjectKey:
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != SUBJECT_KEY_BYTES:
            raise ValueError(f"a subject key must be {SUBJECT_KEY_BYTES} bytes")

    @property
    def check(self) -> str:
        return key_check(self.secret)

    @property
    def key_id(self) -> str:
        return self.check[:KEY_ID_HEX]

    def name(self, subject_ref: str) -> str:
        """The subject's failure key under this key ("" when no subject is named)."""
        return subject_key(subject_ref, self.secret)


@dataclass(frozen=True)
class SubjectKeys:
    """The key new challenges name subjects under and, during a rotation, the one before it (whose
    names' counts still add to the current names' against every limit)."""

    current: SubjectKey
    previous: SubjectKey | None = None

    def __post_init__(self) -> None:
        if self.previous is not None and self.previous.secret == self.current.secret:
            raise ValueError("the previous subject key is the current one")

    def same_as(self, other: SubjectKeys) -> bool:
        """The same pair (a reload that changes neither key)."""
        def pair(k: SubjectKeys) -> bytes:           # 32 bytes, or 64 with a previous key
            return k.current.secret + (k.previous.secret if k.previous is not None else b"")
        return hmac.compare_digest(pair(self), pair(other))

    def previous_name(self, subject_ref: str) -> str:
        """The subject's failure key under the previous key ("" outside a rotation or with no subject)."""
        return self.previous.name(subject_ref) if self.previous is not None else ""
