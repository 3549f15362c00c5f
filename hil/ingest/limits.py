"""Server-side failure limits (T/IIFAA §8.2.5 d): too many failed or unsettled challenges from one
terminal, or for one subject, within a window, and the server stops issuing challenges to it until
the window has moved on.

**A challenge is charged when it is issued.** ``BeginCapture`` charges the terminal's key and, when
the request names a subject, the subject's, in the same atomic store step that checks both against
``max_failures`` (so several server processes cannot issue past the limit together). The charge is
there from that moment because the server cannot see what the terminal does with a challenge: root
on a terminal can skip the terminal's own lockout, ask for challenges without end, run each window
through the terminal's liveness (which it controls and can read), and submit only the windows it
expects to pass. Counting only probes judged ``NOT_LIVE`` gave it unlimited tries against a
subject; charging issues gives it ``max_failures`` per window. An honest terminal asks for its nonce
only after the quality loop, right before the window opens (``agent/session/capture.py``), so an
honest issue is an honest try, charged on the terminal too (``agent/session/lockout.py``).

How a charge is settled, by the one probe that uses its nonce (``Store.use_nonce``, atomically with
the use; the charge's member is the nonce, so a settlement touches that charge and no other):

* judged and accepted (``OK``): taken back. The only refund, and it needs a probe that passed
  every check, including the server's own check of the challenge evidence;
* judged and refused (``NOT_LIVE``, ``EVIDENCE_FAILED``): kept, as the presentation failure, one
  failure and not two (the member is re-timed to the judgement);
* never used (the nonce expires, is evicted by the terminal's newer challenges, or no probe comes):
  kept. An honest outage between issue and submit therefore costs one strike, as it does on the
  terminal (whose window is charged when it opens); a challenge the terminal refuses
  (``UPL_CHALLENGE_INVALID``) costs one. A ``BeginCapture`` reply lost costs that one charge and no
  more: the client repeats the call (to the next endpoint), and a repeat with the same terminal,
  session id, purpose, subject, channel, capabilities, offered key and policy, while the nonce is unused
  and unexpired, gets the same challenge back, uncharged, its expiry and its charge's time unchanged
  (``Store.issue_nonce``, atomic with the charge). A repeat is no new try: the same nonce is one
  window, used by one probe; a new session id, another subject, or a used or expired nonce is a
  new challenge, charged;
* refused before judging (``MALFORMED``, ``TAMPERED``, ``UNKNOWN_TERMINAL``, ``REVOKED``,
  ``EXPIRED``, ``UNBOUND``, ``WRONG_KEY``, ``ATTESTATION_FAILED``, ``UNKNOWN_CAMERA``, and
  ``REPLAYED`` for a counter that did not increase): kept, since such a probe leaves the nonce unused
  (a signed but malformed probe cannot burn it). Anything an attacker can send without passing
  the checks therefore settles nothing: the charge stands until a probe under that nonce is
  accepted, which is the attack succeeding, not a refund. A terminal's genuine probe can still be
  accepted under the nonce afterwards (its retry after a refused copy), and then the charge is taken
  back;
* a retry of the probe that used the nonce, or another probe under a used nonce (``REPLAYED``):
  nothing; the nonce was settled by its first use, and a nonce is used once.

A presentation judged a failure that then loses its nonce to a race (another probe used it first,
or its counter went stale) counts on its own (:meth:`FailureLimits.record`, member nonce and probe
digest): the winner may be accepted and take the nonce's charge back, and racing attacks against a
second probe must not judge them for free. One that finds its nonce expired or evicted counts
nothing more: its charge is still held.

Keys are strings: ``terminal:<id>``, and ``subject:<SHA-256 of the bank's subject reference>`` when
the terminal's ``BeginCapture`` named one (the subject is counted across terminals; the terminal
keeps its own lockout too, but a terminal that was reset or tampered with must not hold the only
count). The window (``window_s``) applies to charges as to failures: each leaves the count
``window_s`` after it was made (a failure: after its judgement).

What a terminal's root still gets: ``max_failures`` tries per ``window_s`` per terminal, and per
subject across all terminals when the subject is named; a terminal that names no subject is
counted on its own key only, so N rooted terminals get N times the tries against an unnamed
subject (a bank that wants the subject counted must require ``subject_ref``, and match the probe
against the subject it named). An accepted probe takes its charge back: this server judges
liveness, not identity, so a genuine live face (an accomplice's) under a challenge issued for a
victim's subject is accepted and refunded here; the bank's matcher must count that non-match
against the subject. ``max_failures`` is at most ``MAX_FAILURES_KEPT`` (64), the charges a store
keeps per key (a higher limit would never be reached: no lockout at all); 0 turns the limits off
(no charge, no lockout: load generators, HIL red-team runs and benches, never a bank).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from hil.ingest.store import MAX_FAILURES_KEPT, Charge, Settle, Store


@dataclass(frozen=True)
class FailureLimits:
    max_failures: int = 5                 # challenges failed or unsettled ... (0: no limits)
    window_s: float = 600.0               # ... within this window refuse new challenges

    def __post_init__(self) -> None:
        if not 0 <= self.max_failures <= MAX_FAILURES_KEPT or not self.window_s > 0:
            raise ValueError(f"max_failures must be within 1..{MAX_FAILURES_KEPT} (the charges a store keeps per "
                             "key), or 0 for no limits, and failure_window_s positive")

    @property
    def off(self) -> bool:
        return self.max_failures == 0

    @property
    def window_ms(self) -> int:
        return int(self.window_s * 1000)

    def charge(self, keys: Iterable[str]) -> Charge | None:
        """What issuing a challenge charges (``Store.add_nonce``): each named key, at this limit."""
        return None if self.off else Charge(tuple(k for k in keys if k), self.max_failures, self.window_ms)

    def settle(self, keys: Iterable[str], *, accepted: bool) -> Settle | None:
        """How the probe that uses a nonce settles its charge (``Store.use_nonce``)."""
        return None if self.off else Settle(tuple(k for k in keys if k), self.window_ms, refund=accepted)

    def locked(self, store: Store, keys: Iterable[str], now_ms: int) -> str | None:
        """The first key at its limit, or None (a read; ``BeginCapture`` checks in ``add_nonce``)."""
        if self.off:
            return None
        for key in keys:
            if key and store.failures(key, now_ms, self.window_ms) >= self.max_failures:
                return key
        return None

    def record(self, store: Store, keys: Iterable[str], now_ms: int, member: str = "") -> None:
        """A failure outside a nonce's own settlement (``member`` names it; the same twice counts once)."""
        if self.off:
            return
        for key in keys:
            if key:
                store.add_failure(key, now_ms, self.window_ms, member)


def terminal_key(terminal_id: str) -> str:
    return f"terminal:{terminal_id}"


def subject_key(subject_ref: str) -> str:
    """The subject's failure key ("" when the request named no subject: nothing is counted)."""
    return "subject:" + hashlib.sha256(subject_ref.encode()).hexdigest() if subject_ref else ""
