"""What the ingest server remembers between calls: issued nonces (each with the receipt of the one
probe that used it), the last probe counter per terminal, and failure counters.

One interface (:class:`Store`), two implementations: :class:`MemoryStore` here (one server
process, tests) and :class:`hil.ingest.redis_store.RedisStore` (several server processes sharing
state). Every method is atomic, so two processes that receive the same nonce at once cannot both
use it.

Failure counts are charges (``hil/ingest/limits.py``): issuing a nonce charges the terminal's key
(and, when a subject is named, the subject's at that terminal and the subject's across terminals)
in the same atomic step that checks each of them against its own limit, with the nonce as the
charge's member; using the nonce settles it in the same step as the use, by removing exactly that
member (accepted) or turning it into the probe's failure (judged not live: ``failure_member``,
where a key holds the charge; never added where it does not). A member names one nonce, so a
settlement cannot remove another challenge's charge, and a second settlement of the same nonce
cannot happen (a nonce is used once).

A receipt is stored with the nonce its probe used, and only then: a probe that never got that far
(not authenticated, malformed, unbound) is not remembered, so junk costs the server nothing to
keep. What the store holds is bounded by count, not by traffic:

* nonces: at most ``nonces_per_terminal`` per terminal, used or not (issuing one more evicts that
  terminal's oldest); unused ones leave at expiry, used ones ``keep_used_s`` after use (they answer
  an identical retry with its first receipt and anything else with ``REPLAYED``);
* sessions: at most one entry per unused nonce (``issue_nonce``: the session's latest request
  digest and nonce), leaving when that nonce is used, expires or is evicted;
* probe ids: one per used nonce, with it; and claims (``read_and_claim``): at most
  ``MAX_PROBES_PER_NONCE`` per unused nonce, each with at most ``MAX_COPIES_PER_CLAIM`` holds (a
  token and the store's time), dropped with it (used, expired or evicted);
* counters: one integer per terminal that ever had a probe accepted or judged;
* failures: at most ``max_failures_kept`` charges and failures per key (the oldest leave first), at
  most ``max_failure_keys`` keys; a key whose charges were all taken back is dropped.

Pruning walks only what has expired: records sit in lists ordered by expiry (one nonce lifetime per
store; one retention for used nonces), so each prune pops from the front until it meets a record
still alive.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class StoreUnavailable(Exception):
    """The store cannot be reached (a shared store's server is down): the call is answered
    ``UNAVAILABLE`` so the terminal retries, perhaps at another server."""


class StoreUnchecked(StoreUnavailable):
    """Redis is not the one the server checked (``redis_store.RedisStore.checked_run``): it restarted or failed
    over since (another ``run_id``), or was never checked (unreachable at start). The nonce's script
    refused the charge whole; the server checks the store again (``config.StoreWatch``) and, until it
    passes, answers ``STORE_UNAVAILABLE``."""


class StoreClockDeferred(StoreUnavailable):
    """The probe's nonce was charged before this server's host had a reading of Redis's clock (its first
    check after a reboot, sec28: ``config.StoreWatch._defer``), and no host with a live reading has vouched
    since that no step back of Redis's clock went unmarked: this server does not judge it (nor retire it).
    ``STORE_UNAVAILABLE`` to the terminal, which tries again (another server judges it)."""


MAX_FAILURES_KEPT = 64     # charges and failures kept per key: the highest failure limit a store can count to
MAX_PROBES_PER_NONCE = 4   # probe ids that may hold a claim on one unused nonce at once (``Store.read_and_claim``)
MAX_COPIES_PER_CLAIM = 2   # identical copies one claim admits to be judged (the probe and the terminal's retry)
# How long a hold on a claim counts as a live judge's (``read_and_claim``'s ``lease_ms``), by the
# store's clock. The judging budget it is derived from: a copy is judged between its claim and its use
# in CPU milliseconds (~4 ms, up to 8 workers sharing the GIL: ~30 ms) plus the use's round trip,
# which the Redis client abandons after its 2 s socket timeout (``redis_store.connect_url``), and
# the terminal waits one attempt's deadline (the agent's ``deadline_s``, 2 s) for the answer: a live
# judge is done within ~2.1 s of its claim, or nobody is waiting for it. 5 s is that with more than
# 2x to spare; a judge slower still is not trusted to be alive, but cannot be judged twice either: a
# copy that takes its hold over makes its use fail (``Outcome.LAPSED``).
CLAIM_LEASE_MS = 5_000


@dataclass(frozen=True)
class StoreLimits:
    nonces_per_terminal: int = 8            # a terminal runs one capture at a time; a few spare for retries
    keep_used_s: float = 600.0              # a used nonce (and its receipt) is remembered this long after use
    max_failures_kept: int = MAX_FAILURES_KEPT   # per key: enough for any sane limit, bounded for an insane one
    max_failure_keys: int = 100_000         # terminals (and, later, subjects) with recent failures

    def __post_init__(self) -> None:
        if not 1 <= self.nonces_per_terminal <= 1024:
            raise ValueError("nonces_per_terminal must be 1-1024")
        if not self.keep_used_s > 0 or self.max_failures_kept < 1 or self.max_failure_keys < 1:
            raise ValueError("keep_used_s, max_failures_kept and max_failure_keys must be positive")


@dataclass(frozen=True)
class NonceRecord:
    """A nonce as issued (the first six fields never change) and, once used, by which probe."""

    terminal_id: str
    session_id: str
    purpose: int                  # capture_agent.v1.Purpose value
    server_key_id: str            # the HPKE key the challenge offered
    issued_ms: int
    expires_ms: int
    probe_id: str = ""            # set when a probe uses the nonce ...
    digest: bytes = b""           # ... the SHA-256 of that probe's SealedProbe bytes ...
    receipt: bytes = b""          # ... the serialized Receipt it got ...
    used_ms: int = 0              # ... and when
    subject: str = ""             # the subject's failure key (limits.subject_key), "" when none was named
    challenges: str = ""          # the challenges demanded, comma-separated names ("illumination,projector")
    frames: int = 0               # the framesets the challenge asked for
    subject_key_id: str = ""      # the id of the subject key ``subject`` is named under ("" : none named, or
                                  # a record written before key ids)

    @property
    def used(self) -> bool:
        return bool(self.probe_id)


@dataclass(frozen=True)
class Charge:
    """What issuing a nonce charges: one member (the nonce) in each key's failure set, unless one of
    them already holds its own limit (``limits[i]`` for ``keys[i]``) within the last ``window_ms``
    (then nothing is stored). Every key is checked before any is charged, in one atomic step.

    During a subject key rotation, ``also[i]`` names the same subject's key under the previous
    subject key ("" : none): its count within the window adds to ``keys[i]``'s against
    ``limits[i]`` (it is read, never charged), so failures under the old name still lock out.
    ``key_check``, when set, is the check value of the subject key the keys are named under: the
    store refuses the charge (``Issued.stale_key``) unless it is the one the store pins, so a server
    left on a key the store has rotated away from cannot count a subject under a name the others no
    longer read. ``previous_check`` is the check value of the server's previous subject key ("" :
    none) and ``overlap_ms`` its ``failure_window_s + nonce_ttl_s``: while the store pins a previous
    key and less than ``overlap_ms`` has passed since the rotation began (by the store's clock, as
    the start was written), a charge whose previous
    key is not that one is refused too, so a server that does not read the old names (started with
    the new key alone while the store was unreachable, so never checked) cannot count a subject
    whose failures under the old name already lock it out (review 13). With no ``keys`` (the
    limits off) a charge only checks ``key_check`` (and ``previous_check``): nothing is counted, but
    a server the store says is stale still names no subject under its key (sec17).

    ``store_clock``: the charge's time, and the window every key's count is taken over, is the store's
    clock (Redis ``TIME``, ``MemoryStore``'s clock), read in the same step, not ``now_ms`` (the
    issuing server's clock, which still times the nonce). The server always sets it: servers sharing
    a store then agree on every window whatever their clocks say (sec17: one whose clock ran ahead
    saw, and pruned, the others' charges as out of the window)."""

    keys: tuple[str, ...]          # failure keys (``FailureLimits.keys``), none empty
    limits: tuple[int, ...]        # each key's limit, in the same order
    window_ms: int
    also: tuple[str, ...] = ()     # () or one per key: the key whose count adds to it ("" : none)
    key_check: str = ""            # the subject key's check value ("" : not checked)
    previous_check: str = ""       # the previous subject key's check value ("" : none), with key_check only
    overlap_ms: int = 0            # how long after a rotation began its previous key must be read
    store_clock: bool = False      # the charge's time (and its window) is the store's clock, not ``now_ms``

    def __post_init__(self) -> None:
        if ((not self.keys and not self.key_check) or not all(self.keys) or len(self.limits) != len(self.keys)
                or min(self.limits, default=1) < 1 or self.window_ms < 1):
            raise ValueError("a charge needs non-empty keys (or none, with a key_check only), a limit of at least 1 "
                             "for each and a positive window")
        if self.also and (len(self.also) != len(self.keys) or set(self.also) & set(self.keys)):
            raise ValueError("a charge's also keys are one per key, and none of its own keys")


def failure_member(nonce: bytes, digest: bytes) -> str:
    """The member a judged failure is counted under: the nonce and the probe's digest, so the same
    probe (an identical retry) counts once, and another probe under the same nonce on its own."""
    return f"{nonce.hex()}:{digest.hex()[:32]}"


@dataclass(frozen=True)
class Settle:
    """How using a nonce settles its charge: ``refund`` removes the nonce's member from each key (the
    probe was accepted); otherwise the charge becomes the probe's failure (``failure_member``, timed
    at the use) in the same step: one failure, not two. A key that does not hold the nonce's member
    (the nonce was issued while the limits, or that key's limit, were off) is left as it is: a
    settlement never charges. The nonce's own member therefore always means a charge no probe has
    settled, which is what :meth:`FailureLimits.record` may replace."""

    keys: tuple[str, ...]
    window_ms: int
    refund: bool
    store_clock: bool = False      # the failure's time is the store's clock, not the use's ``now_ms``


class Outcome(enum.Enum):
    USED = "used"                      # this probe now holds the nonce; its receipt is stored
    SAME_PROBE = "same_probe"          # the same probe (id and bytes) used it before: ``record.receipt``
    REPLAYED = "replayed"              # another probe used it, or this probe id was used under another nonce
    UNKNOWN = "unknown"                # not issued to this terminal, expired, or evicted
    STALE_COUNTER = "stale_counter"    # the terminal's probe counter did not increase
    LAPSED = "lapsed"                  # this copy's hold lapsed and another copy took it over: that one judges


@dataclass(frozen=True)
class Use:
    outcome: Outcome
    record: NonceRecord | None = None


class Claim(enum.Enum):
    """What :meth:`Store.read_and_claim` did with the probe's id under an unused, unexpired nonce of
    this terminal (``NONE`` when the nonce is not that: gone, another terminal's, or used)."""

    HELD = "held"          # this probe holds its id's claim (new, or the same bytes as the holder's)
    USED = "used"          # the probe id already used a nonce of this terminal
    TAKEN = "taken"        # a probe with this id and other bytes holds the claim: not to be judged
    FULL = "full"          # MAX_PROBES_PER_NONCE other probe ids hold claims on this nonce
    BUSY = "busy"          # MAX_COPIES_PER_CLAIM identical copies hold the claim within their lease: being
                           # judged, try again
    NONE = "none"          # no claim made


@dataclass(frozen=True)
class Issued:
    """What :meth:`Store.issue_nonce` did: ``locked`` names the key at its limit (nothing stored);
    otherwise ``nonce`` and ``record`` are the session's challenge, ``repeated`` when it is the one
    issued (and charged) before for the same request, returned unchanged and charged nothing more."""

    locked: str | None
    nonce: bytes = b""
    record: NonceRecord | None = None
    repeated: bool = False
    stale_key: bool = False        # refused: the charge's key_check is not the store's pinned subject key (or,
                                   # in a rotation's overlap, its previous_check not the pinned previous key)


class PinResult(enum.Enum):
    PINNED = "pinned"              # the store counts under this server's key (and its previous, if any)
    ROTATED = "rotated"            # the store was on this server's previous key: the rotation begins now
    ENDED = "ended"                # the overlap had passed: the store forgot the previous key
    MISMATCH = "mismatch"          # the store counts under another key: refused
    OPEN = "open"                  # a rotation's overlap has not passed: the previous key cannot go yet
    RETIRED = "retired"            # a rotation back to a key the store has rotated away from: refused


@dataclass(frozen=True)
class KeyPin:
    """The subject key check values a store pins: the current one and, from a rotation's start
    (``since_ms``) until a server ends it, the previous one."""

    current: str = ""
    previous: str = ""
    since_ms: int = 0


def decide_pin(pinned: KeyPin, current: str, previous: str, now_ms: int,
               overlap_ms: int, retired: frozenset[str] = frozenset()) -> tuple[PinResult, KeyPin]:
    """What ``Store.pin_subject_keys`` does (both stores run this, atomically): given what the store
    pins and a server's keys (check values; ``previous`` "" when it has none), the result and what
    the store pins afterwards. A rotation begins when a server whose previous key is the store's
    current one arrives; its previous key may be dropped (ended, or rotated again) only
    ``overlap_ms`` after it began, since until then failures under the old name are still within
    the window and only servers that read both names count them. ``retired`` are the check values
    the store has pinned as a previous key (it adds each ``after.previous``): a rotation back to one
    is ``RETIRED`` (review 13: a reload with the two files swapped after the overlap took the store
    back to the retired key and left every other server SUBJECT_KEY_STALE)."""
    if not pinned.current:                                    # a fresh store
        return PinResult.PINNED, KeyPin(current, previous, now_ms if previous else 0)
    open_ = bool(pinned.previous) and now_ms < pinned.since_ms + overlap_ms
    if pinned.current == current:
        if not pinned.previous or previous == pinned.previous:
            return PinResult.PINNED, pinned
        if previous:                                          # another previous than the store's
            return PinResult.MISMATCH, pinned
        if open_:
            return PinResult.OPEN, pinned
        return PinResult.ENDED, KeyPin(current)
    if previous and pinned.current == previous:               # the store's key is this server's previous
        if current in retired:                                # ... and its new key one the store retired
            return PinResult.RETIRED, pinned
        if open_:                                             # a rotation still in its overlap: not again
            return PinResult.OPEN, pinned
        return PinResult.ROTATED, KeyPin(current, previous, now_ms)
    return PinResult.MISMATCH, pinned


class Store(Protocol):
    limits: StoreLimits

    def add_nonce(self, nonce: bytes, record: NonceRecord, now_ms: int, charge: Charge | None = None) -> str | None:
        """Remember an issued nonce (evicting the terminal's oldest past the per-terminal cap) and,
        atomically with it, charge it (the nonce's hex as the member in each of ``charge.keys``).
        Returns the first key already at ``charge.limit``, and then stores and charges nothing.
        (Tests and benches; a charge with a ``key_check`` is ``issue_nonce``'s.)"""

    def issue_nonce(self, nonce: bytes, record: NonceRecord, now_ms: int, charge: Charge | None,
                    request: bytes) -> Issued:
        """``BeginCapture``'s step, atomically: if this terminal's session (``record.terminal_id``,
        ``record.session_id``) was issued a nonce for the same ``request`` (a digest of everything the
        challenge depends on) and that nonce is still unused and unexpired, return it and its record
        as stored (``repeated``: nothing charged, its expiry and its charge's time unchanged).
        Otherwise ``add_nonce`` (the limit checked, then charged) and remember this nonce as the
        session's, replacing any earlier one: one entry per terminal and session id, dropped when its
        nonce is used, expires or is evicted."""

    def get_nonce(self, nonce: bytes, now_ms: int) -> NonceRecord | None:
        """The record if the nonce is unused and unexpired, or used and still remembered."""

    def use_nonce(self, nonce: bytes, *, terminal_id: str, probe_id: str, digest: bytes, counter: int,
                  receipt: bytes, now_ms: int, settle: Settle | None = None, hold: str = "") -> Use:
        """Atomically: if the nonce is this terminal's, unused and unexpired, the probe id is new
        for the terminal, ``hold`` ("" : not checked) is still one of the probe id's holds on the
        nonce (``read_and_claim``; ``LAPSED`` when another copy took it over after its lease) and
        ``counter`` exceeds the terminal's last, mark it used by this probe with this receipt,
        advance the counter and settle the nonce's charge (``USED``). Otherwise say why, without
        changing anything."""

    def last_counter(self, terminal_id: str) -> int:
        """The highest probe counter that used a nonce for this terminal (0 if none)."""

    def nonce_and_counter(self, nonce: bytes, terminal_id: str, now_ms: int) -> tuple[NonceRecord | None, int]:
        """``get_nonce`` and ``last_counter`` as one snapshot (a shared store answers both in one round trip)."""

    def read_and_claim(self, nonce: bytes, terminal_id: str, probe_id: str, digest: bytes,
                       now_ms: int, *, hold: str, lease_ms: int = CLAIM_LEASE_MS) -> tuple[NonceRecord | None, int,
                                                                                          Claim]:
        """What ``SubmitProbe`` reads before it judges a probe: ``nonce_and_counter``'s snapshot and
        whether ``probe_id`` already used a nonce of this terminal (``USED``: a reused probe id is
        refused unjudged), and, in the same atomic step, when the nonce is this
        terminal's, unused and unexpired and the probe id unused: a claim of the probe id on the
        nonce for this probe (``digest``), so that of probes racing one id under one nonce only one
        (and its identical copies) is opened and judged; the others are ``TAKEN``. At most
        ``MAX_PROBES_PER_NONCE`` ids hold claims on a nonce (``FULL`` beyond), and at most
        ``MAX_COPIES_PER_CLAIM`` identical copies hold one claim (``BUSY`` beyond: judged by then,
        the copy gets the first receipt). Each copy's hold is ``hold`` (a token the caller draws)
        with the store's time; a hold older than ``lease_ms`` is a judge that died (or stalled): it
        does not make a copy ``BUSY``, and the copy takes its place (the oldest such), so the holder's
        ``use_nonce`` with that token is ``LAPSED`` and one judgement of the copies is ever used. A
        claim (its id bound to its digest) lives with its nonce, whatever its holds' age (dropped
        when the nonce is used, expires or is evicted), unless released. A Redis store raises
        :class:`StoreUnchecked` (nothing read) when Redis's clock is behind what the server's elapsed
        time since its check allows (back21: a step back, which the check measures and marks)."""

    def pin_subject_keys(self, current: str, previous: str, overlap_ms: int) -> tuple[PinResult, KeyPin]:
        """Check (and, for a fresh store, a rotation's start or end, set) the subject key check values
        the store pins, atomically (:func:`decide_pin`): every server sharing a store must name
        subjects under the same key, and during a rotation read the previous one too
        (``hil/ingest/subject_keys.py``); never back to a key it pinned as a previous one
        (``RETIRED``). The rotation's start and the overlap are timed by the store's clock
        (``now_ms``), never a server's: one server's clock writes the start and another's would
        compare it, and their skew shortened the overlap. Returns the result and what the store pins
        now."""

    def now_ms(self) -> int:
        """The store's clock (Redis: ``TIME``), in ms: what pins and leases are timed by."""

    def release_claim(self, nonce: bytes, terminal_id: str, probe_id: str, digest: bytes, *, hold: str) -> None:
        """Give back the hold ``hold`` of a claim ``read_and_claim`` granted, for a probe refused before
        it was judged: the id (and the slot) is free again once no identical copy holds it. A judged
        probe never releases its claim. A hold taken over (``LAPSED``) is no longer there to give."""

    def add_failure(self, key: str, now_ms: int | None, window_ms: int, member: str = "", replaces: str = "") -> int:
        """Count one failure for ``key`` (``member`` names it: the same member twice counts once;
        "" for a new one), removing the member ``replaces`` in the same step (a charge this failure
        takes the place of; nothing when it is not held); return the failures within the last
        ``window_ms``. ``now_ms`` None: timed by the store's clock (``now_ms()``, read in the same
        step), as the server times every failure."""

    def failures(self, key: str, now_ms: int | None, window_ms: int) -> int:
        """Charges and failures of ``key`` within the last ``window_ms`` (``now_ms`` None: by the store's clock)."""

    def witness(self, terminal_id: str) -> bytes | None:
        """The terminal's TPM witness record (``attestation.Witness.dump``; witness31), None: none held. Never
        expires: a terminal's certified count and chain outlive any server (``attestation.WitnessStore``)."""

    def swap_witness(self, terminal_id: str, expected: bytes | None, new: bytes, drops: int | None = None,
                     drops_lo: int | None = None) -> int:
        """Compare-and-set: hold ``new`` as the terminal's witness record if the one held is still ``expected``
        (None: none held), in one step; 0 (nothing written, falsy) if another server replaced it meanwhile, else 1.
        ``drops`` (sec32): the highest count of the history that ``new`` no longer holds (None: none dropped),
        compared in the same step with the count the bank fetched the history up to (:meth:`note_witness_fetched`):
        2 (written) when it is above it or nothing was fetched: certified evidence dropped before the bank had it.
        Then, in the same step (sec33), the dropped counts (``drops_lo``, the lowest, to ``drops``) are noted in the
        terminal's unfetched record (:meth:`witness_unfetched`), which every server reads."""

    def note_witness_fetched(self, terminal_id: str, count: int) -> None:
        """The bank fetched the terminal's witness history up to ``count`` (``WitnessStore.cli_witness``); kept as
        the highest so far (sec32), never lowered."""

    def witness_unfetched(self, terminal_id: str) -> bytes | None:
        """The terminal's unfetched record (sec33): ``b"LO HI N FIRST_MS LAST_MS"``, the lowest and highest count
        ever dropped from its witness history before the bank fetched it, how many compare-and-sets dropped such
        counts, and the first's and the last's time by the store's clock; None: never. Never expires and is never
        cleared by a fetch (the evidence is gone for good; the operator deletes it, ``docs/keys.md``)."""

    def anchor(self, terminal_id: str) -> bytes | None:
        """The terminal's held audit anchor (``anchors.HeldAnchor.dump``; sec34), None: none held. Never expires."""

    def swap_anchor(self, terminal_id: str, expected: bytes | None, new: bytes, expected_seq: int | None = None,
                    cap: int = 256) -> int:
        """Compare-and-set (sec34): hold ``new`` as the terminal's anchor if the one held is still ``expected`` (None:
        none held), in one step; 0 (nothing written, falsy) if another server replaced it meanwhile. In the same step
        (anchor34) the replaced record (``expected``, its entry ``expected_seq``) joins the terminal's anchor history
        (:meth:`anchor_history`), oldest first, at most ``cap`` records: when full, the oldest the bank has fetched
        (:meth:`note_anchors_fetched`: entry at or below the one fetched) make room; when none has, ``expected`` is not
        kept and 2 is returned (written, evidence dropped: the caller flags it), else 1."""

    def anchor_history(self, terminal_id: str) -> list[bytes]:
        """The anchors the terminal's held one replaced (anchor34), oldest first, as :meth:`swap_anchor` kept them;
        [] : none. Never expires; the bank's fetch marks them fetched, and only fetched ones ever make room."""

    def note_anchors_fetched(self, terminal_id: str, seq: int) -> None:
        """The bank fetched the terminal's anchors up to entry ``seq`` (``AnchorStore.cli_anchor``, anchor34); kept as
        the highest so far, never lowered."""

    def note_anchor_flag(self, terminal_id: str, reason: str, seen: bytes) -> None:
        """One more anchor flag ``reason`` for the terminal (sec34), in one step: its count, the first and the last
        time (the store's clock, never stepping back) and ``seen`` (``anchors.FlagRecord``'s JSON of the probe id and
        the detail) as the first (if none) and the last. Never expires; the operator deletes it."""

    def anchor_flags(self, terminal_id: str) -> dict[bytes, bytes] | None:
        """The terminal's anchor-flag record as the fields :meth:`note_anchor_flag` writes (``REASON`` ->
        ``b"N FIRST_MS LAST_MS"``, ``REASON:first``/``REASON:last`` -> the JSON); None: never flagged."""

    def close(self) -> None:
        """Release connections (nothing for the in-memory store)."""


def steady_clock() -> Callable[[], float]:
    """A clock (seconds) that reads the wall time at its making and then runs on elapsed time
    (``CLOCK_BOOTTIME``, as ``StoreWatch``'s: a step of the wall clock does not move it, a suspend does;
    ``time.monotonic`` where there is none)."""
    clock_id = getattr(time, "CLOCK_BOOTTIME", None)
    elapsed = (lambda: time.clock_gettime(clock_id)) if clock_id is not None else time.monotonic
    base = time.time() - elapsed()
    return lambda: base + elapsed()


class MemoryStore:
    """The store of one server process. One lock; every operation is O(1) plus what it prunes.
    ``clock`` (seconds) is the store's own (tests replace it): it times pins, claim holds, the failure
    windows and, as Redis's clock does for a shared store (sec21), every nonce decision: an unused
    nonce is unexpired its lifetime (``expires_ms - issued_ms``) after its charge, a used one kept
    ``keep_used_s`` after its use, and a record's ``used_ms`` is told on the caller's clock as
    ``now_ms`` less the use's age, so the retry window is the store's too. By default the clock runs
    on elapsed time (:func:`steady_clock`): a step of the server's wall clock (an NTP step, a
    ``date -s``) moves no nonce's deadline, no count's window and no hold (before, the caller's
    ``now_ms`` decided each nonce, so a step back of J kept every unused nonce J longer)."""

    def __init__(self, limits: StoreLimits | None = None, clock: Callable[[], float] | None = None):
        self.limits = limits or StoreLimits()
        self._clock = clock if clock is not None else steady_clock()
        self._lock = threading.Lock()
        # Issue order is expiry order (one lifetime per server), use order is retention order.
        self._unused: OrderedDict[bytes, NonceRecord] = OrderedDict()
        self._used: OrderedDict[bytes, NonceRecord] = OrderedDict()
        self._per_terminal: dict[str, OrderedDict[bytes, None]] = {}
        self._probe_ids: dict[tuple[str, str], bytes] = {}
        self._counters: dict[str, int] = {}
        # key -> (member -> time, oldest first; window), most recently charged key last
        self._failures: OrderedDict[str, tuple[dict[str, int], int]] = OrderedDict()
        self._members = itertools.count()
        # (terminal, session id) -> (request digest, nonce): the session's latest unused challenge
        self._sessions: dict[tuple[str, str], tuple[bytes, bytes]] = {}
        # unused nonce -> probe id -> (digest, {hold token: store time (ms)}): the probes claimed (being
        # judged, or judged), each with its copies' holds
        self._claims: dict[bytes, dict[str, tuple[bytes, dict[str, int]]]] = {}
        self._key_pin = KeyPin()            # the subject key's check values (pin_subject_keys)
        self._retired: set[str] = set()     # the check values it pinned as a previous key (one per rotation)
        # By the store's clock (ms): an unused nonce's end (its lifetime after its charge), a used one's use
        self._until: dict[bytes, int] = {}
        self._used_at: dict[bytes, int] = {}
        self._witnesses: dict[str, bytes] = {}     # terminal -> its TPM witness record (witness31)
        self._fetched: dict[str, int] = {}         # terminal -> the count the bank fetched its history up to (sec32)
        self._unfetched: dict[str, tuple[int, int, int, int, int]] = {}   # terminal -> its unfetched record (sec33)
        self._anchors: dict[str, bytes] = {}       # terminal -> its held audit anchor (sec34)
        self._anchor_flags: dict[str, dict[bytes, bytes]] = {}   # terminal -> its anchor-flag record (sec34)
        self._anchor_history: dict[str, list[tuple[int, bytes]]] = {}   # terminal -> anchors replaced (anchor34)
        self._anchors_fetched: dict[str, int] = {}    # terminal -> the entry the bank fetched its anchors up to

    # -- nonces ----------------------------------------------------------------------------------

    def add_nonce(self, nonce: bytes, record: NonceRecord, now_ms: int, charge: Charge | None = None) -> str | None:
        if charge is not None and charge.key_check:
            raise ValueError("add_nonce does not check a subject key: issue_nonce does")
        with self._lock:
            self._prune()
            return self._add(nonce, record, now_ms, charge)

    def issue_nonce(self, nonce: bytes, record: NonceRecord, now_ms: int, charge: Charge | None,
                    request: bytes) -> Issued:
        if not request:
            raise ValueError("issue_nonce needs the request's digest")
        session = (record.terminal_id, record.session_id)
        with self._lock:
            self._prune()
            entry = self._sessions.get(session)
            if entry is not None and entry[0] == request:
                old = self._unused.get(entry[1])
                if old is not None and old.terminal_id == record.terminal_id and not self._expired(entry[1]):
                    return Issued(None, entry[1], old, repeated=True)
            if charge is not None and charge.key_check:        # as the shared store's script: pinned if none
                if not self._key_pin.current:
                    self._key_pin = KeyPin(charge.key_check)
                elif charge.key_check != self._key_pin.current or self._reads_not_pinned_previous(charge):
                    return Issued(None, stale_key=True)
            locked = self._add(nonce, record, now_ms, charge)
            if locked:
                return Issued(locked)
            self._sessions[session] = (request, nonce)
            return Issued(None, nonce, record)

    def _reads_not_pinned_previous(self, charge: Charge) -> bool:
        """During a rotation's overlap (by the store's clock), the charge's server does not read the
        previous key's names."""
        pin = self._key_pin
        return (bool(pin.previous) and charge.previous_check != pin.previous
                and self._now() < pin.since_ms + charge.overlap_ms)

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def now_ms(self) -> int:
        return self._now()

    def _add(self, nonce: bytes, record: NonceRecord, now_ms: int, charge: Charge | None) -> str | None:
        if charge is not None:
            at = self._now() if charge.store_clock else now_ms    # the failure sets' time
            self._prune_failures(at)
            # every key counted before the first at its limit is named (the same work whichever it is)
            also = charge.also or ("",) * len(charge.keys)
            full = [key for key, limit, old in zip(charge.keys, charge.limits, also, strict=True)
                    if self._count(key, at, charge.window_ms)
                    + (self._count(old, at, charge.window_ms) if old else 0) >= limit]
            if full:
                return full[0]
            for key in charge.keys:
                self._add_member(key, nonce.hex(), at, charge.window_ms)
        self._forget(nonce)
        self._unused[nonce] = record
        self._until[nonce] = self._now() + max(record.expires_ms - record.issued_ms, 0)
        mine = self._per_terminal.setdefault(record.terminal_id, OrderedDict())
        mine[nonce] = None
        while len(mine) > self.limits.nonces_per_terminal:
            self._forget(next(iter(mine)))
        return None

    def get_nonce(self, nonce: bytes, now_ms: int) -> NonceRecord | None:
        with self._lock:
            self._prune()
            rec = self._used.get(nonce) or self._unused.get(nonce)
            if rec is None or (not rec.used and self._expired(nonce)):
                return None
            return self._told(nonce, rec, now_ms)

    def _expired(self, nonce: bytes) -> bool:
        """An unused nonce past its lifetime after its charge, by the store's clock."""
        return self._now() > self._until.get(nonce, 0)

    def _told(self, nonce: bytes, rec: NonceRecord, now_ms: int) -> NonceRecord:
        """``rec`` as a caller at ``now_ms`` reads it: a used one's ``used_ms`` its use's age (by the
        store's clock) before ``now_ms``."""
        if not rec.used or nonce not in self._used_at:
            return rec
        return dataclasses.replace(rec, used_ms=now_ms - max(self._now() - self._used_at[nonce], 0))

    def use_nonce(self, nonce: bytes, *, terminal_id: str, probe_id: str, digest: bytes, counter: int,
                  receipt: bytes, now_ms: int, settle: Settle | None = None, hold: str = "") -> Use:
        with self._lock:
            self._prune()
            used = self._used.get(nonce)
            if used is not None:
                if used.terminal_id != terminal_id:
                    return Use(Outcome.UNKNOWN)
                same = used.probe_id == probe_id and used.digest == digest
                return Use(Outcome.SAME_PROBE if same else Outcome.REPLAYED, self._told(nonce, used, now_ms))
            rec = self._unused.get(nonce)
            if rec is None or rec.terminal_id != terminal_id or self._expired(nonce):
                return Use(Outcome.UNKNOWN)
            if (terminal_id, probe_id) in self._probe_ids:
                return Use(Outcome.REPLAYED, rec)
            if hold and hold not in self._claims.get(nonce, {}).get(probe_id, (b"", {}))[1]:
                return Use(Outcome.LAPSED, rec)
            if counter <= self._counters.get(terminal_id, 0):
                return Use(Outcome.STALE_COUNTER, rec)
            done = dataclasses.replace(rec, probe_id=probe_id, digest=digest, receipt=receipt, used_ms=now_ms)
            del self._unused[nonce]
            self._until.pop(nonce, None)
            self._drop_session(rec, nonce)
            self._claims.pop(nonce, None)
            self._used[nonce] = done
            self._used_at[nonce] = self._now()
            self._probe_ids[(terminal_id, probe_id)] = nonce
            self._counters[terminal_id] = counter
            if settle is not None:
                at = self._now() if settle.store_clock else now_ms
                for key in settle.keys:
                    if settle.refund:
                        self._remove_member(key, nonce.hex())
                    elif nonce.hex() in self._failures.get(key, ({}, 0))[0]:
                        self._remove_member(key, nonce.hex())
                        self._add_member(key, failure_member(nonce, digest), at, settle.window_ms)
            return Use(Outcome.USED, done)

    def last_counter(self, terminal_id: str) -> int:
        with self._lock:
            return self._counters.get(terminal_id, 0)

    def witness(self, terminal_id: str) -> bytes | None:
        with self._lock:
            return self._witnesses.get(terminal_id)

    def swap_witness(self, terminal_id: str, expected: bytes | None, new: bytes, drops: int | None = None,
                     drops_lo: int | None = None) -> int:
        with self._lock:
            if self._witnesses.get(terminal_id) != expected:
                return 0
            self._witnesses[terminal_id] = new
            if drops is None or drops <= self._fetched.get(terminal_id, -1):
                return 1
            lo, now, u = drops if drops_lo is None else drops_lo, self._now(), self._unfetched.get(terminal_id)
            self._unfetched[terminal_id] = ((lo, drops, 1, now, now) if u is None
                                            else (min(u[0], lo), max(u[1], drops), u[2] + 1, u[3], max(now, u[4])))
            return 2

    def witness_unfetched(self, terminal_id: str) -> bytes | None:
        with self._lock:
            u = self._unfetched.get(terminal_id)
        return " ".join(map(str, u)).encode() if u is not None else None

    def note_witness_fetched(self, terminal_id: str, count: int) -> None:
        with self._lock:
            self._fetched[terminal_id] = max(count, self._fetched.get(terminal_id, -1))

    def anchor(self, terminal_id: str) -> bytes | None:
        with self._lock:
            return self._anchors.get(terminal_id)

    def swap_anchor(self, terminal_id: str, expected: bytes | None, new: bytes, expected_seq: int | None = None,
                    cap: int = 256) -> int:
        with self._lock:
            if self._anchors.get(terminal_id) != expected:
                return 0
            self._anchors[terminal_id] = new
            if expected is None:
                return 1
            if expected_seq is None:
                raise ValueError("a replaced anchor's entry is needed to keep it")
            hist = self._anchor_history.setdefault(terminal_id, [])
            fetched = self._anchors_fetched.get(terminal_id, -1)
            while len(hist) >= cap and hist and hist[0][0] <= fetched:
                hist.pop(0)
            if len(hist) >= cap:
                return 2
            hist.append((expected_seq, expected))
            return 1

    def anchor_history(self, terminal_id: str) -> list[bytes]:
        with self._lock:
            return [r for _, r in self._anchor_history.get(terminal_id, [])]

    def note_anchors_fetched(self, terminal_id: str, seq: int) -> None:
        with self._lock:
            self._anchors_fetched[terminal_id] = max(seq, self._anchors_fetched.get(terminal_id, -1))

    def note_anchor_flag(self, terminal_id: str, reason: str, seen: bytes) -> None:
        with self._lock:
            rec = self._anchor_flags.setdefault(terminal_id, {})
            key, now = reason.encode(), self._now()
            held = rec.get(key)
            n, first, last = (int(p) for p in held.split()) if held is not None else (0, now, now)
            rec[key] = f"{n + 1} {first} {max(now, last)}".encode()
            rec.setdefault(key + b":first", seen)
            rec[key + b":last"] = seen

    def anchor_flags(self, terminal_id: str) -> dict[bytes, bytes] | None:
        with self._lock:
            rec = self._anchor_flags.get(terminal_id)
            return dict(rec) if rec is not None else None

    def nonce_and_counter(self, nonce: bytes, terminal_id: str, now_ms: int) -> tuple[NonceRecord | None, int]:
        with self._lock:                                  # one snapshot, as the shared store's MULTI/EXEC
            self._prune()
            rec = self._used.get(nonce) or self._unused.get(nonce)
            if rec is not None and not rec.used and self._expired(nonce):
                rec = None
            return (self._told(nonce, rec, now_ms) if rec is not None else None), self._counters.get(terminal_id, 0)

    def read_and_claim(self, nonce: bytes, terminal_id: str, probe_id: str, digest: bytes,
                       now_ms: int, *, hold: str, lease_ms: int = CLAIM_LEASE_MS) -> tuple[NonceRecord | None, int,
                                                                                          Claim]:
        if not hold:
            raise ValueError("a claim's hold needs a token")
        with self._lock:
            self._prune()
            rec = self._used.get(nonce) or self._unused.get(nonce)
            if rec is not None and not rec.used and self._expired(nonce):
                rec = None
            counter = self._counters.get(terminal_id, 0)
            if rec is None or rec.used or rec.terminal_id != terminal_id:
                return (self._told(nonce, rec, now_ms) if rec is not None else None), counter, Claim.NONE
            if (terminal_id, probe_id) in self._probe_ids:
                return rec, counter, Claim.USED
            claims = self._claims.setdefault(nonce, {})
            held = claims.get(probe_id)
            store_now = self._now()
            if held is not None:
                if held[0] != digest:
                    return rec, counter, Claim.TAKEN
                holds = held[1]
                if len(holds) >= MAX_COPIES_PER_CLAIM:
                    oldest = min(holds, key=holds.__getitem__)
                    if store_now - holds[oldest] < lease_ms:       # every hold within its lease
                        return rec, counter, Claim.BUSY
                    del holds[oldest]                               # a judge gone (or stalled): taken over
                holds[hold] = store_now
                return rec, counter, Claim.HELD
            if len(claims) >= MAX_PROBES_PER_NONCE:
                return rec, counter, Claim.FULL
            claims[probe_id] = (digest, {hold: store_now})
            return rec, counter, Claim.HELD

    def pin_subject_keys(self, current: str, previous: str, overlap_ms: int) -> tuple[PinResult, KeyPin]:
        with self._lock:
            result, self._key_pin = decide_pin(self._key_pin, current, previous, self._now(), overlap_ms,
                                               frozenset(self._retired))
            if self._key_pin.previous:
                self._retired.add(self._key_pin.previous)
            return result, self._key_pin

    def release_claim(self, nonce: bytes, terminal_id: str, probe_id: str, digest: bytes, *, hold: str) -> None:
        with self._lock:
            rec = self._unused.get(nonce)
            claims = self._claims.get(nonce)
            if rec is None or rec.terminal_id != terminal_id or not claims:
                return
            held = claims.get(probe_id)
            if held is None or held[0] != digest or held[1].pop(hold, None) is None:
                return
            if not held[1]:
                del claims[probe_id]
                if not claims:
                    del self._claims[nonce]

    def nonce_count(self, terminal_id: str) -> int:
        """Nonce records held for a terminal, as of the last operation's pruning (tests)."""
        with self._lock:
            return len(self._per_terminal.get(terminal_id, ()))

    def claims_held(self, nonce: bytes) -> int:
        """Probe ids holding a claim on the nonce (tests)."""
        with self._lock:
            return len(self._claims.get(nonce, {}))

    def __len__(self) -> int:
        """Nonce records held (used and unused)."""
        with self._lock:
            return len(self._unused) + len(self._used)

    def _forget(self, nonce: bytes) -> None:
        self._claims.pop(nonce, None)
        self._until.pop(nonce, None)
        self._used_at.pop(nonce, None)
        rec = self._unused.pop(nonce, None) or self._used.pop(nonce, None)
        if rec is None:
            return
        self._drop_session(rec, nonce)
        mine = self._per_terminal.get(rec.terminal_id)
        if mine is not None:
            mine.pop(nonce, None)
            if not mine:
                del self._per_terminal[rec.terminal_id]
        if rec.used:
            self._probe_ids.pop((rec.terminal_id, rec.probe_id), None)

    def _drop_session(self, rec: NonceRecord, nonce: bytes) -> None:
        """The session's entry goes with its nonce (used, expired or evicted), not with another's."""
        session = (rec.terminal_id, rec.session_id)
        entry = self._sessions.get(session)
        if entry is not None and entry[1] == nonce:
            del self._sessions[session]

    def _prune(self) -> None:
        """Forget what has expired by the store's clock, oldest first, reading no further."""
        now = self._now()
        keep_ms = int(self.limits.keep_used_s * 1000)
        while self._unused:
            nonce = next(iter(self._unused))
            if self._until[nonce] >= now:
                break
            self._forget(nonce)
        while self._used:
            nonce = next(iter(self._used))
            if self._used_at[nonce] + keep_ms >= now:
                break
            self._forget(nonce)

    # -- failures ------------------------------------------------------------------------------------

    def add_failure(self, key: str, now_ms: int | None, window_ms: int, member: str = "", replaces: str = "") -> int:
        with self._lock:
            at = self._now() if now_ms is None else now_ms
            self._prune_failures(at)
            if replaces:
                self._remove_member(key, replaces)
            self._add_member(key, member or f"f{next(self._members)}", at, window_ms)
            return self._count(key, at, window_ms)

    def failures(self, key: str, now_ms: int | None, window_ms: int) -> int:
        with self._lock:
            return self._count(key, self._now() if now_ms is None else now_ms, window_ms)

    def _count(self, key: str, now_ms: int, window_ms: int) -> int:
        members, _ = self._failures.get(key, ({}, 0))
        return sum(1 for t in members.values() if t > now_ms - window_ms)

    def _add_member(self, key: str, member: str, now_ms: int, window_ms: int) -> None:
        """Add (or re-time) one member; the key moves to the end (most recently charged)."""
        members, _ = self._failures.pop(key, ({}, window_ms))
        members.pop(member, None)
        members[member] = now_ms                            # insertion order is time order
        while len(members) > self.limits.max_failures_kept:
            del members[next(iter(members))]
        self._failures[key] = (members, window_ms)
        while len(self._failures) > self.limits.max_failure_keys:
            self._failures.popitem(last=False)

    def _remove_member(self, key: str, member: str) -> None:
        entry = self._failures.get(key)
        if entry is not None and entry[0].pop(member, None) is not None and not entry[0]:
            del self._failures[key]

    def _prune_failures(self, now_ms: int) -> None:
        while self._failures:
            members, window = next(iter(self._failures.values()))
            if members and max(members.values()) > now_ms - window:
                break
            self._failures.popitem(last=False)

    def close(self) -> None:
        pass
