"""The server's copy of each terminal's audit-log anchor: the last signed checkpoint a probe
carried (``ProbeHeader.audit_anchor``, built by ``agent.security.audit.AuditLog.anchor``).

A terminal's audit log is hash-chained and its checkpoints are signed, but whoever holds the
terminal can still cut entries off the end or start a fresh log. The anchor leaves the terminal
with every probe, so the server knows how far the log had got. Per probe (authenticated and
fresh: after the signature and nonce checks) ``observe`` flags, and does not advance past:

* ``MISSING``     — the probe carries no anchor;
* ``FORGED``      — the anchor's signature is not the terminal key's over ``(seq, head, tpm_count)`` (sec30) or over
  ``(seq, head)`` alone (v1, a terminal from before: taken, its count vouched for only by the probe's signature,
  until the terminal has sent a v2 anchor; after that a v1 anchor carrying a count is FORGED);
* ``REPLACED``    — the log's identity (hash of its first entry) changed;
* ``ROLLED_BACK`` — the log is shorter than the anchor already held;
* ``REWRITTEN``   — same length as the anchor held, different head;
* ``COUNT_BACK``  — the TPM count the anchor carries (``tpm_count``, sec29: the NV counter the terminal's
  lockout entries advance) is below the one held: a TPM counter never goes back, so the terminal stopped
  counting (``[audit] tpm_counter`` removed from its config: 0) or the anchor is another TPM's. Only a LOWER
  count: another TPM advanced to the count held or past it (a software TPM that root points the counter
  spec's ``tcti`` at, whose counter he defines afresh and increments at will) is not flagged here; since sec31 the
  anchor's ``tpm_certify`` binds the count to the TPM that quotes, checked (and refused, ``NV_COUNT``) before this for
  a terminal whose registration pins its counter (``hil/ingest/attestation.py``, ``docs/keys.md``).

* ``WITNESS_UNFETCHED`` — raised by the TPM witness's check of the same probe (sec32, ``attestation.WitnessStore``):
  its history's bound dropped certified counts the bank had not fetched (``cli_witness``), the proof of a rewrite
  of the log up to them with it; since sec33 the same compare-and-set also keeps it in the shared store, which every
  server reads (``WitnessStore.unfetched``).

* ``ANCHOR_UNFETCHED`` — (anchor34) the anchor moved, but the one it replaced could not be kept: the terminal's anchor
  history holds ``ANCHOR_HISTORY`` (256) anchors the bank has not fetched (below); the detail names the one dropped.

Since sec34 the held anchor and the flags live in the store the servers share (``Store.anchor``/``swap_anchor``, Redis
``a:<terminal>``; ``Store.note_anchor_flag``/``anchor_flags``, Redis ``af:<terminal>``), beside the TPM witness. Before,
both were this process's memory: behind a balancer, a log cut back (or a rewound chain, a replaced log, a count
gone back) sent to a second server, or to the same one restarted, was taken there as the first anchor, unflagged,
and that server's ``cli_anchor`` was the cut log's own, which ``audit-verify`` then passed; the bank asking another
server than the one that flagged saw no flag. The anchor is replaced by compare-and-set against the record the probe
was checked against (two servers racing never move it back); each flag's count, first and last time (the store's
clock, never stepping back) and its first and latest probe are kept per terminal and reason (:meth:`flagged`), so a
flood of one reason (a terminal without a log sends ``MISSING`` with every probe) pushes no other out. A record
this server does not write is refused (:class:`AnchorUnreadable`: ``STORE_UNAVAILABLE``, nothing written; the
operator deletes it). ``flags`` stays this process's recent ones (for its log and tests).

Since anchor34 (review34a) the anchors the held one replaced are kept too, in the same compare-and-set (Redis
``ah:<terminal>``, a list, oldest first): before, only the latest was, so root who cut his log back past it and wrote
entries until it was longer again before the next probe had the cut log's anchor taken (same log, a later entry: no
flag) and the evidence replaced; ``audit-verify`` with the latest passed the rewritten log. :meth:`cli_anchor` returns
them all (one ``--anchor`` each), and the replaced one proves the cut (``AUD_TRUNCATED``). The cap: at most
``ANCHOR_HISTORY`` per terminal; the bank's fetch (:meth:`cli_anchor`, Redis ``ahf:<terminal>``) marks them fetched,
and only fetched ones make room; with none fetched the oldest stay (a terminal flooding probes pushes no earlier
evidence out) and the replaced one is dropped, flagged ``ANCHOR_UNFETCHED``. Every flag's detail names the anchor
held (``SEQ:HEAD``).

A flag does not refuse the probe (the person in front of the kiosk did nothing wrong); it is the
bank's signal to fetch the terminal's log and run ``capture-agent audit-verify --anchor SEQ:HEAD``
with :meth:`AnchorStore.cli_anchor`, which proves whether entries were removed.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from agent.security.audit import checkpoint_message
from agent.security.keys import verify_signature
from drivers.errors import CaptureAgentError
from hil.ingest.store import MemoryStore, Store, StoreUnavailable
from proto.capture_agent.v1 import ingest_pb2 as pb

log = logging.getLogger(__name__)
FLAGS = ("MISSING", "FORGED", "REPLACED", "ROLLED_BACK", "REWRITTEN", "COUNT_BACK", "WITNESS_UNFETCHED",
         "ANCHOR_UNFETCHED")
ANCHOR_VERSION = 1                # the held anchor's record in the store (sec34)
MAX_ANCHOR = 512                  # its bytes: more is not a record this server wrote
MAX_SEEN = 1024                   # a flag's probe record's bytes (probe id <= 64, detail <= 512 characters)
CAS_TRIES = 8                     # compare-and-set rounds against other servers' writes
ANCHOR_HISTORY = 256              # the anchors replaced that the store keeps per terminal until the bank fetches them
_HEX = re.compile(r"[0-9a-f]{0,128}")
_COUNT = re.compile(rb"([1-9]\d{0,14}) (0|[1-9]\d{0,17}) (0|[1-9]\d{0,17})")   # no leading zeros (review34a)


class AnchorUnreadable(StoreUnavailable):
    """The store holds an anchor or anchor-flag record this server does not write (sec34): the probe is not checked
    against nothing (``STORE_UNAVAILABLE``, nothing written; the operator deletes the record to start afresh)."""


def _uint(v: object) -> bool:
    return type(v) is int and 0 <= v < (1 << 64)


@dataclass(frozen=True)
class HeldAnchor:
    seq: int
    head: str                 # hex
    log_id: str               # hex
    received_unix_ms: int
    tpm_count: int = 0        # the terminal's TPM counter when the anchor was made (0: none; sec29)
    v2: bool = False          # the terminal has sent an anchor signed over its count (sec30's v2 message)

    def dump(self) -> bytes:
        """The record the shared store holds (sec34)."""
        return json.dumps({"v": ANCHOR_VERSION, "seq": self.seq, "head": self.head, "log_id": self.log_id,
                           "at": self.received_unix_ms, "tpm_count": self.tpm_count, "v2": self.v2},
                          separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def load(cls, raw: bytes) -> HeldAnchor:
        """A stored record, validated (bounded, every field typed and in range): :class:`AnchorUnreadable` otherwise."""
        try:
            if len(raw) > MAX_ANCHOR:
                raise ValueError("too long")
            d = json.loads(raw)
            if not isinstance(d, dict) or set(d) != {"v", "seq", "head", "log_id", "at", "tpm_count", "v2"} \
                    or d["v"] != ANCHOR_VERSION or type(d["v"]) is not int:
                raise ValueError("fields")
            if not (_uint(d["seq"]) and _uint(d["at"]) and _uint(d["tpm_count"]) and type(d["v2"]) is bool
                    and isinstance(d["head"], str) and len(d["head"]) == 64 and _HEX.fullmatch(d["head"])
                    and isinstance(d["log_id"], str) and _HEX.fullmatch(d["log_id"])):
                raise ValueError("values")
            return cls(d["seq"], d["head"], d["log_id"], d["at"], d["tpm_count"], d["v2"])
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise AnchorUnreadable(f"the anchor held is not a record this server writes ({exc})") from None


@dataclass(frozen=True)
class AnchorFlag:
    terminal_id: str
    reason: str               # one of FLAGS
    detail: str
    probe_id: str
    at_unix_ms: int


@dataclass(frozen=True)
class FlagRecord:
    """One reason's flags of a terminal in the shared store (sec34): how many, the first's and the latest's time (the
    store's clock) and their probe ids and details."""

    reason: str
    times: int
    first_ms: int
    last_ms: int
    first: tuple[str, str]    # (probe id, detail)
    last: tuple[str, str]

    @staticmethod
    def seen(probe_id: str, detail: str) -> bytes:
        return json.dumps([probe_id[:64], detail[:512]], separators=(",", ":")).encode()

    @classmethod
    def load_all(cls, fields: dict[bytes, bytes]) -> dict[str, FlagRecord]:
        """The fields ``Store.anchor_flags`` returns, by reason; :class:`AnchorUnreadable` for any field this server
        does not write."""
        def probe(raw: bytes | None) -> tuple[str, str]:
            if raw is None or len(raw) > MAX_SEEN:
                raise ValueError("probe")
            v = json.loads(raw)
            if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v)):
                raise ValueError("probe")
            return v[0], v[1]

        try:
            names = {k.split(b":")[0].decode() for k in fields}
            if not names <= set(FLAGS) or len(fields) != 3 * len(names):
                raise ValueError("fields")
            out = {}
            for r in sorted(names):
                m = _COUNT.fullmatch(fields.get(r.encode(), b""))
                if m is None or int(m[3]) < int(m[2]):
                    raise ValueError("count")
                out[r] = cls(r, int(m[1]), int(m[2]), int(m[3]), probe(fields.get(r.encode() + b":first")),
                             probe(fields.get(r.encode() + b":last")))
            return out
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise AnchorUnreadable(f"the anchor-flag record held is not a record this server writes ({exc})") from None


class AnchorStore:
    """Each terminal's held anchor and flags, in ``store`` (sec34: the store the servers share; a callable: the
    store it returns at each call, as ``ServerState.store`` may be replaced; None: a memory store of its own)."""

    def __init__(self, store: Store | Callable[[], Store] | None = None, max_flags: int = 1000, clock=time.time,
                 history: int = ANCHOR_HISTORY):
        self._store = store if store is not None else MemoryStore()
        self.history_cap = history              # anchors replaced kept per terminal until the bank fetches (anchor34)
        self.flags: deque[AnchorFlag] = deque(maxlen=max_flags)   # this process's recent flags (its log, tests)
        self._missing_told: set[str] = set()    # terminals whose missing anchors this process logged once
        self._lock = threading.Lock()
        self.clock = clock

    @property
    def store(self) -> Store:
        s = self._store
        return s() if callable(s) else s

    def held(self, terminal_id: str) -> HeldAnchor | None:
        raw = self.store.anchor(terminal_id)
        return HeldAnchor.load(raw) if raw is not None else None

    def flagged(self, terminal_id: str) -> dict[str, FlagRecord]:
        """The terminal's flags by reason, as every server holds them (sec34); {} : never flagged."""
        fields = self.store.anchor_flags(terminal_id)
        return FlagRecord.load_all(fields) if fields else {}

    def history(self, terminal_id: str) -> list[HeldAnchor]:
        """The anchors the held one replaced, oldest first (anchor34), as every server holds them."""
        return [HeldAnchor.load(raw) for raw in self.store.anchor_history(terminal_id)]

    def cli_anchor(self, terminal_id: str) -> list[str]:
        """Every anchor held for the terminal, oldest first: those the held one replaced (anchor34) and the held one,
        ``SEQ:HEAD`` each, one ``capture-agent audit-verify --anchor`` apiece; [] before any. Not only the latest
        (review34a): a log cut back and grown past the anchor held before its next probe replaced it unflagged (same
        log, a later entry), and the latest alone passed the rewritten log; the one it replaced does not. The bank's
        fetch: the store notes the anchors fetched up to the held one's entry, so that those may later make room."""
        held = self.held(terminal_id)            # read first: one it replaces meanwhile is in the history read next
        if held is None:
            return []
        out = [a for a in self.history(terminal_id) if (a.seq, a.head) != (held.seq, held.head)] + [held]
        self.store.note_anchors_fetched(terminal_id, held.seq)
        return [f"{a.seq}:{a.head}" for a in out]

    def observe(self, terminal_id: str, header: pb.ProbeHeader, public_key) -> str | None:
        """Check ``header``'s anchor against the one held for ``terminal_id``; keep it if it extends
        that one (compare-and-set in the shared store: checked again if another server moved it meanwhile).
        Returns the flag raised, or None."""
        now_ms = int(self.clock() * 1000)
        if not header.HasField("audit_anchor"):
            return self._flag(terminal_id, "MISSING", "the probe carries no audit anchor", header, now_ms)
        a = header.audit_anchor
        # The signature covers the anchor's TPM count (sec30, the v2 message). An anchor signed the v1 way (seq and
        # head only: a terminal from before sec30) is taken, its count covered only by the probe's own signature,
        # until the terminal has sent a v2 anchor: servers may be upgraded before terminals (the final read). After
        # a v2 anchor, a v1 one carrying a count is a downgrade of what vouches for the count: FORGED.
        v2 = None
        try:
            if len(a.head) == 32:
                for n, is_v2 in ((int(a.tpm_count), True), (None, False)):
                    if verify_signature(public_key, header.signature_algorithm,
                                        checkpoint_message(a.seq, a.head.hex(), n), a.signature):
                        v2 = is_v2
                        break
        except (CaptureAgentError, ValueError):
            v2 = None
        if v2 is None:
            return self._flag(terminal_id, "FORGED", "the anchor (with its TPM count) is not signed by the terminal's "
                              "key", header, now_ms)
        if len(a.log_id) > 64:
            return self._flag(terminal_id, "FORGED", "the anchor's log id is longer than any log's", header, now_ms)
        for _ in range(CAS_TRIES):
            raw = self.store.anchor(terminal_id)
            old = HeldAnchor.load(raw) if raw is not None else None
            if not v2 and a.tpm_count and old is not None and old.v2:
                return self._flag(terminal_id, "FORGED", "the anchor's TPM count is signed the v1 way (without its "
                                  "count) after the terminal sent v2 anchors", header, now_ms)
            new = HeldAnchor(int(a.seq), a.head.hex(), a.log_id.hex(), now_ms, int(a.tpm_count),
                             v2 or (old is not None and old.v2))
            why = None
            if old is not None:
                # Each detail names the anchor held, SEQ:HEAD (review34a: the flag is kept whatever the held one
                # becomes, and the bank verifies the log with it).
                held_at = f"{old.seq}:{old.head}"
                if new.log_id != old.log_id:
                    why = ("REPLACED", f"log {new.log_id[:16]} is not log {old.log_id[:16]} held at entry {held_at}")
                elif new.seq < old.seq:
                    why = ("ROLLED_BACK", f"the log reaches entry {new.seq}; entry {held_at} was anchored before")
                elif new.seq == old.seq and new.head != old.head:
                    why = ("REWRITTEN", f"entry {new.seq} has another hash than when it was anchored ({held_at})")
                elif new.tpm_count < old.tpm_count:
                    why = ("COUNT_BACK", f"the anchor's TPM count {new.tpm_count} is below {old.tpm_count}, held at "
                                         f"entry {held_at}: the terminal stopped counting, or this is another TPM")
            if why is not None:
                return self._flag(terminal_id, why[0], why[1], header, now_ms)
            kept = 1
            if old is None or new.seq > old.seq:
                kept = self.store.swap_anchor(terminal_id, raw, new.dump(), None if old is None else old.seq,
                                              self.history_cap)
                if not kept:
                    continue                        # another server moved it: checked against that one
            with self._lock:
                self._missing_told.discard(terminal_id)     # anchored again: a new gap is news
            if kept == 2 and old is not None:
                return self._flag(terminal_id, "ANCHOR_UNFETCHED", f"entry {old.seq}:{old.head} was replaced with "
                                  f"{self.history_cap} anchors held unfetched: not kept", header, now_ms)
            return None
        raise StoreUnavailable(f"the anchor of {terminal_id[:64]} kept changing under {CAS_TRIES} checks")

    def flag(self, terminal_id: str, reason: str, detail: str, header: pb.ProbeHeader, now_ms: int) -> str:
        """A flag raised by another check of the same probe (sec32: ``WITNESS_UNFETCHED``, the TPM witness's
        history dropping counts the bank had not fetched): kept and logged as the anchors' own."""
        return self._flag(terminal_id, reason, detail, header, now_ms)

    def _flag(self, terminal_id: str, reason: str, detail: str, header: pb.ProbeHeader, now_ms: int) -> str:
        flag = AnchorFlag(terminal_id, reason, detail, header.probe_id[:64], now_ms)
        self.store.note_anchor_flag(terminal_id, reason, FlagRecord.seen(flag.probe_id, detail))
        with self._lock:
            self.flags.append(flag)
            # Every flag is kept; the log warns of a terminal's missing anchors once until it anchors
            # again (a terminal without an audit log sends none with every probe), of the others always.
            repeat = reason == "MISSING" and terminal_id in self._missing_told
            if reason == "MISSING":
                self._missing_told.add(terminal_id)
        log.log(logging.DEBUG if repeat else logging.WARNING, "audit anchor of terminal %s: %s: %s",
                terminal_id, reason, detail)
        return reason
