"""Server-side failure limits (T/IIFAA §8.2.5 d): too many failed or unsettled challenges from one
terminal, or for one subject, within a window, and the server stops issuing challenges to it until
the window has moved on.

**Three keys, each with its own limit** (all counted within ``failure_window_s``, 600 s, which
must be at least ``nonce_ttl_s``: a config error otherwise, since a charge could leave the window
before its probe is judged, and the two stores then disagree on what settling it does):

* ``terminal:<id>``, at ``max_terminal_failures`` (15): every challenge the terminal is issued;
* ``subject:<HMAC-SHA256 of the bank's subject reference under the server's subject key>``
  (``subject_key``; keyed, so a reader of the store cannot reverse it by enumerating references;
  during a subject key rotation the subject's counts under the previous key's name add to these
  two keys', ``hil/ingest/subject_keys.py``), at ``max_subject_failures`` (10): the
  subject's challenges on every terminal, when the ``BeginCapture`` named one;
* ``subject:<HMAC>:terminal:<id>``, at ``max_failures`` (5): the subject's challenges at this
  terminal (the customer's tries at one kiosk, as the terminal's own lockout counts them).

**A challenge is charged when it is issued.** ``BeginCapture`` charges each key it counts on in
the same atomic store step that checks every one of them against its own limit (``Charge``: all
checked, then all charged; several server processes cannot issue past a limit together) and is
refused ``LOCKED_OUT`` otherwise (the same reply whatever key is at its limit; the server's log
names the key, ``FailureLimits.refusal``). The charge is there from
that moment because the server cannot see what the terminal does with a challenge: root on a
terminal can skip the terminal's own lockout, ask for challenges without end, run each window
through the terminal's liveness (which it controls and can read), and submit only the windows it
expects to pass. Counting only probes judged ``NOT_LIVE`` gave it unlimited tries against a
subject; charging issues bounds them. An honest terminal asks for its nonce only after the quality
loop, right before the window opens (``agent/session/capture.py``), so an honest issue is an honest
try, charged on the terminal too (``agent/session/lockout.py``).

How a charge is settled, by the one probe that uses its nonce (``Store.use_nonce``, atomically with
the use; the charge's member is the nonce, so a settlement touches that charge and no other):

* judged and accepted (``OK``): taken back. The only refund, and it needs a probe that passed
  every check, including the server's own check of the challenge evidence;
* judged and refused (``NOT_LIVE``, ``EVIDENCE_FAILED``): kept, as the presentation failure, one
  failure and not two (the charge becomes the probe's failure, ``store.failure_member``, timed at
  the judgement);
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
  nothing; the nonce was settled by its first use, and a nonce is used once;
* a probe whose id this terminal already used (``REPLAYED``): refused before it is judged
  (``Store.read_and_claim`` reads the probe id with the nonce and the counter), so nothing:
  no judgement, no verdict by reply time, no failure, the nonce still unused (review 10: judged and
  recorded on every key, it let one charge buy unlimited failures on the subject's fleet-wide key);
  and so is a probe whose id another probe with other bytes has claimed under the nonce, or a fifth
  id on a nonce (``Store.read_and_claim``: the read claims the id atomically, so probes racing one id
  are judged once, not K times).

A presentation judged a failure that then cannot use its nonce counts on its own
(:meth:`FailureLimits.record`, member nonce and probe digest, so an identical retry of it counts
once): when another probe used the nonce (or its probe id) first or its counter went stale (the
winner may be accepted and take the nonce's charge back, and racing attacks against a second probe
must not judge them for free), and when the nonce expired or was evicted while it was judged (K
probes racing the expiry are K failures). Such a failure goes **on the terminal's own keys only**
(``terminal:<id>`` and ``subject:<hmac>:terminal:<id>``), never on the subject's fleet-wide key:
it is not bounded by the charges the terminal was issued (a race can be repeated), and nothing one
terminal does beyond its charges may reach other terminals. In the second case the nonce's charge,
if no probe settled it, is replaced by the failure in the same step on those keys rather than added
to (on the fleet-wide key the charge stays), so the terminal's one presentation whose nonce ran out
while it was judged costs one strike, as one judged in time.

Settling is always on: a reload that turns a limit off (or all of them, ``max_failures = 0``)
stops charging and checking, not settling, so an accepted probe still takes back a charge made
before the reload; and a settlement never charges (a key that holds no charge for the nonce, since
it was issued while its limit was off, is left as it is).

**What each attacker gets**, per window (defaults in brackets; before these three keys there was one
limit of 5 on the terminal's key and 5 on the subject's across terminals):

* root on one terminal: ``max_failures`` [5] tries against any one named subject (its key at this
  terminal; as before), ``max_terminal_failures`` [15] in all, so 15 against subjects it does not
  name (before: 5). It cannot lock a subject out for other terminals: its charges fill at most
  ``max_failures`` of the subject's ``max_subject_failures``, leaving the subject
  ``max_subject_failures - max_failures`` [5] tries on the other terminals together (before: none);
* the keys of k terminals: min(k × ``max_failures``, ``max_subject_failures``) [10 from k = 2]
  tries against a named subject (before: 5), and k × ``max_terminal_failures`` against unnamed
  ones; two terminals' keys can lock a subject out on every terminal;
* a presentation attacker at honest kiosks (each with its own lockout): ``max_failures`` [5] per
  kiosk and ``max_subject_failures`` [10] across kiosks against one subject (before: 5); failing
  at two kiosks locks the subject out on every one (before: at one);
* an honest customer: ``max_failures`` [5] non-accepted challenges at one kiosk, then another kiosk
  gets the rest of ``max_subject_failures``.

So ``max_subject_failures`` must exceed ``max_failures`` (config error otherwise): at or under it,
one terminal's charges lock the subject out everywhere. In the server's config, left out,
``max_terminal_failures`` is 3 × and ``max_subject_failures`` 2 × ``max_failures``, each at most
64 (``hil/ingest/config.py``; 5 gives the defaults, 15 and 10), so tightening or raising
``max_failures`` moves them along; ``max_failures`` = 64 then leaves no room and is a config error
unless ``max_subject_failures`` is set. Twice ``max_failures`` leaves the victim
as many tries elsewhere as one kiosk allows, at the price of twice the tries for two colluding
terminals' keys and for a presentation attacker walking between kiosks.

**Why 15 for the terminal.** The terminal's key counts what no accepted probe took back: failed
presentations, abandoned challenges, liveness worker faults, refused exposure locks, submit
outages, all of them across every customer, while an accepted probe takes back only its own
charge. At 5 a busy kiosk locked itself (and every customer after) on five unlucky sessions in ten
minutes. A simulated session takes 20-35 s on the development machine (``docs/liveness.md``, the
memory bench), one with a person in front of a kiosk longer; at 20 s a session, back to back, 30
fit in a window (the upper bound; about 20 at 30 s). If each of 30 independently ends without
acceptance with probability p, 15 or more do with probability 2.3e-4 at p = 0.2, 0.017 at p = 0.3
and 0.57 at p = 0.5 (of 20: 1.8e-7, 4.3e-5 and 0.021; at a limit of 5, of 30: 0.74, 0.97 and 1.0;
binomial tails, not measured kiosk rates): a kiosk busy back to back where half the sessions fail
does lock itself at 15, and such a bank raises ``max_terminal_failures``. The price is what a rooted terminal
gains against unnamed subjects: 15 tries per window instead of 5, three times as many; against a
named subject it still gets ``max_failures``. A bank that wants the tighter bound requires
``subject_ref`` (and matches against the subject it named), or sets ``max_terminal_failures``
lower and accepts the lockouts.

Other limits of the limits: a terminal that names no subject is counted on its own key only; an
accepted probe takes its charge back, and this server judges liveness, not identity, so a genuine
live face (an accomplice's) under a challenge issued for a victim's subject is accepted and
refunded here: the bank's matcher must count that non-match against the subject. Nor does the
server normalise ``subject_ref`` (the bank's reference is canonical): a rooted terminal naming its
victim otherwise ("CUST-VICTIM", "cust-victim.") lands in fresh keys, bounded only by the
terminal's own limit. So a judged receipt (``Receipt.subject_mac``) and the accepted probe's
summary the bank's feed gets carry the keyed hash of the subject the challenge was issued for (never
the reference; the bank holds the subject key and computes it), and the bank must match an
accepted probe against exactly the subject it named,
counting a mismatch as a failure for its real subject. Each limit is at
most ``MAX_FAILURES_KEPT`` (64), the charges a store keeps per key (a higher limit would never be
reached: no lockout at all). 0 in ``max_failures`` turns every limit off (no charge, no check, no
lockout: load generators, HIL red-team runs and benches, never a bank); 0 in
``max_terminal_failures`` or ``max_subject_failures`` leaves that key uncounted (the terminal's:
unlimited tries against unnamed subjects; the subject's across terminals: k terminals get k ×
``max_failures`` against it), which the server's start and reload lines say.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from hil.ingest.store import MAX_FAILURES_KEPT, Charge, Settle, Store


@dataclass(frozen=True)
class FailureLimits:
    max_failures: int = 5                 # per subject at one terminal (0: no limits at all) ...
    window_s: float = 600.0               # ... and every limit counts within this window
    max_terminal_failures: int = 15       # per terminal, whatever the subject (0: the terminal's key not counted)
    max_subject_failures: int = 10        # per subject across terminals (0: not counted); > max_failures

    def __post_init__(self) -> None:
        for name in ("max_failures", "max_terminal_failures", "max_subject_failures"):
            if not 0 <= getattr(self, name) <= MAX_FAILURES_KEPT:
                raise ValueError(f"{name} must be within 1..{MAX_FAILURES_KEPT} (the charges a store keeps per "
                                 "key), or 0 (see hil/ingest/limits.py)")
        if not self.window_s > 0:
            raise ValueError("failure_window_s must be positive")
        if self.max_failures and self.max_subject_failures and self.max_subject_failures <= self.max_failures:
            raise ValueError("max_subject_failures must exceed max_failures (or be 0): at or under it one "
                             "terminal's charges lock the subject out on every terminal")

    @property
    def off(self) -> bool:
        return self.max_failures == 0

    @property
    def window_ms(self) -> int:
        return int(self.window_s * 1000)

    def keys(self, terminal_id: str, subject: str) -> tuple[tuple[str, int], ...]:
        """The failure keys a challenge for this terminal and subject (``subject_key``; "" for none)
        counts on, each with its limit (0: that key is not counted): the terminal's, the subject's
        across terminals, and the subject's at this terminal (a refusal names the first at its limit)."""
        keys = [(terminal_key(terminal_id), self.max_terminal_failures)]
        if subject:
            keys += [(subject, self.max_subject_failures),
                     (subject_at_terminal_key(subject, terminal_id), self.max_failures)]
        return tuple(keys)

    def _counted(self, terminal_id: str, subject: str) -> tuple[tuple[str, int], ...]:
        return () if self.off else tuple((k, n) for k, n in self.keys(terminal_id, subject) if n)

    def charge(self, terminal_id: str, subject: str, previous: str = "", key_check: str = "",
               previous_check: str = "", overlap_ms: int = 0, store_clock: bool = False) -> Charge | None:
        """What issuing a challenge charges (``Store.issue_nonce``): each counted key, at its own limit.
        During a subject key rotation ``previous`` is the same subject's key under the previous subject
        key: each subject key's count under that name adds to its own (``Charge.also``). ``key_check``
        is the check value of the subject key ``subject`` is named under (the store refuses the charge
        unless it pins that key; "" : not checked); ``previous_check`` the previous subject key's and
        ``overlap_ms`` the rotation's overlap (``Charge``: the store refuses a charge that does not read
        the previous key it pins while the overlap lasts). ``store_clock``: timed by the store's clock
        (``Charge.store_clock``; the server's choice, always). None when nothing is counted and no key
        is checked; with the limits off and a ``key_check``, a charge of no keys that only checks it."""
        counted = self._counted(terminal_id, subject)
        if not counted:
            # Nothing counted (the limits off): a subject is still named under the server's key, which
            # the store must still pin (sec17: main issued under a rotated-away key with the limits off).
            if not key_check:
                return None
            return Charge((), (), self.window_ms, key_check=key_check, previous_check=previous_check,
                          overlap_ms=overlap_ms, store_clock=store_clock)
        also: tuple[str, ...] = ()
        if previous and subject:
            before = {subject: previous,
                      subject_at_terminal_key(subject, terminal_id): subject_at_terminal_key(previous, terminal_id)}
            also = tuple(before.get(k, "") for k, _ in counted)
        return Charge(tuple(k for k, _ in counted), tuple(n for _, n in counted), self.window_ms, also=also,
                      key_check=key_check, previous_check=previous_check if key_check else "",
                      overlap_ms=overlap_ms if key_check else 0, store_clock=store_clock)

    def settle(self, terminal_id: str, subject: str, *, accepted: bool, store_clock: bool = False) -> Settle:
        """How the probe that uses a nonce settles its charge (``Store.use_nonce``): always, on every
        key, whatever the limits are now (a key that holds no charge for the nonce is left as it is)."""
        return Settle(tuple(k for k, _ in self.keys(terminal_id, subject)), self.window_ms, refund=accepted,
                      store_clock=store_clock)

    def record(self, store: Store, terminal_id: str, subject: str, now_ms: int | None, member: str = "",
               replaces: str = "") -> None:
        """A failure outside a nonce's own settlement (``member`` names it: the same twice counts
        once), on the terminal's own counted keys only (``terminal:<id>`` and the subject's at this
        terminal), never the subject's fleet-wide key: nothing a terminal does beyond its charges
        reaches other terminals. ``replaces`` names a charge it takes the place of, in the same step
        per key (the nonce's unsettled charge, when its nonce is gone; on the fleet-wide key that
        charge stays as it is). ``now_ms`` None: timed by the store's clock (the server's choice)."""
        for key, _ in self._counted(terminal_id, subject):
            if key != subject:
                store.add_failure(key, now_ms, self.window_ms, member, replaces)

    def said(self) -> str:
        """The limits as the server's start and reload lines say them."""
        if self.off:
            return "FAILURE LIMITS OFF (max_failures = 0: no lockout, never for a bank)"
        n = lambda limit: str(limit) if limit else "OFF (not counted)"  # noqa: E731
        return (f"failure limits per {self.window_s:g} s: terminal {n(self.max_terminal_failures)}, "
                f"subject {n(self.max_subject_failures)}, subject at one terminal {self.max_failures}")

    def refusal(self, terminal_id: str, subject: str, key: str) -> str:
        """Which key is at its limit (``issue_nonce``'s ``locked``), for the server's own log only: it
        names the key (a subject by its keyed hash, never its reference). The terminal is told
        ``LOCKED_OUT_REPLY``, the same for every key."""
        limit = dict(self.keys(terminal_id, subject)).get(key, 0)
        if key == terminal_key(terminal_id):
            who = "this terminal gets no challenge"
        elif subject and key == subject_at_terminal_key(subject, terminal_id):
            who = "this subject gets no challenge at this terminal"
        else:
            who = "this subject gets no challenge on any terminal"
        return f"{key} at its limit, {limit} challenges failed or not settled within {self.window_s:g} s: {who}"


# What a terminal at any failure limit is told: one reply whatever key is at its limit, and no
# number (each key has its own limit, so the number would name the key). Naming the key was a free
# oracle of the lock state: a rooted terminal learnt whether a subject was locked out on every
# terminal or only at itself. The server's log says which (``FailureLimits.refusal``).
LOCKED_OUT_REPLY = "LOCKED_OUT: too many challenges failed or not settled; no challenge for now"


def terminal_key(terminal_id: str) -> str:
    return f"terminal:{terminal_id}"


SUBJECT_KEY_BYTES = 32


def subject_key(subject_ref: str, secret: bytes) -> str:
    """The subject's failure key ("" when the request named no subject: nothing is counted): the
    HMAC-SHA256 (hex) of the reference under the server's subject key (``subject_key_file``). A
    plain SHA-256 of a guessable reference (an account number) was reversible by enumeration by
    anyone reading the store; keyed, only a holder of the secret can compute or test one."""
    if len(secret) != SUBJECT_KEY_BYTES:
        raise ValueError(f"the subject key must be {SUBJECT_KEY_BYTES} bytes")
    return "subject:" + hmac.new(secret, subject_ref.encode(), hashlib.sha256).hexdigest() if subject_ref else ""


def subject_mac(subject: str) -> str:
    """The keyed hash (hex) of the subject reference a ``subject_key`` names ("" for none): what a
    judged probe's receipt (``Receipt.subject_mac``) and an accepted probe's summary carry, so the
    bank, which holds the subject key, can match the probe against exactly the subject it named."""
    return subject.removeprefix("subject:")


def subject_at_terminal_key(subject: str, terminal_id: str) -> str:
    """The subject's failure key at one terminal (``subject`` is ``subject_key``'s; the digest is of
    fixed length, so this never reads as another subject's key)."""
    return f"{subject}:terminal:{terminal_id}"
