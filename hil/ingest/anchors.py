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
  of the log up to them with it. Here it is one server's memory, as every flag; since sec33 the same compare-and-set
  also keeps it in the shared store, which every server reads (``WitnessStore.unfetched``).

A flag does not refuse the probe (the person in front of the kiosk did nothing wrong); it is the
bank's signal to fetch the terminal's log and run ``capture-agent audit-verify --anchor SEQ:HEAD``
with :meth:`AnchorStore.cli_anchor`, which proves whether entries were removed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from agent.security.audit import checkpoint_message
from agent.security.keys import verify_signature
from drivers.errors import CaptureAgentError
from proto.capture_agent.v1 import ingest_pb2 as pb

log = logging.getLogger(__name__)
FLAGS = ("MISSING", "FORGED", "REPLACED", "ROLLED_BACK", "REWRITTEN", "COUNT_BACK", "WITNESS_UNFETCHED")


@dataclass(frozen=True)
class HeldAnchor:
    seq: int
    head: str                 # hex
    log_id: str               # hex
    received_unix_ms: int
    tpm_count: int = 0        # the terminal's TPM counter when the anchor was made (0: none; sec29)
    v2: bool = False          # the terminal has sent an anchor signed over its count (sec30's v2 message)


@dataclass(frozen=True)
class AnchorFlag:
    terminal_id: str
    reason: str               # one of FLAGS
    detail: str
    probe_id: str
    at_unix_ms: int


class AnchorStore:
    def __init__(self, max_flags: int = 1000, clock=time.time):
        self._held: dict[str, HeldAnchor] = {}
        self.flags: deque[AnchorFlag] = deque(maxlen=max_flags)
        self._missing_told: set[str] = set()    # terminals whose missing anchors were logged once
        self._lock = threading.Lock()
        self.clock = clock

    def held(self, terminal_id: str) -> HeldAnchor | None:
        with self._lock:
            return self._held.get(terminal_id)

    def cli_anchor(self, terminal_id: str) -> str | None:
        """``SEQ:HEAD`` for ``capture-agent audit-verify --anchor``."""
        a = self.held(terminal_id)
        return f"{a.seq}:{a.head}" if a else None

    def observe(self, terminal_id: str, header: pb.ProbeHeader, public_key) -> str | None:
        """Check ``header``'s anchor against the one held for ``terminal_id``; keep it if it extends
        that one. Returns the flag raised, or None."""
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
        held = self.held(terminal_id)
        if not v2 and a.tpm_count and held is not None and held.v2:
            return self._flag(terminal_id, "FORGED", "the anchor's TPM count is signed the v1 way (without its count) "
                              "after the terminal sent v2 anchors", header, now_ms)
        new = HeldAnchor(int(a.seq), a.head.hex(), a.log_id.hex(), now_ms, int(a.tpm_count),
                         v2 or (held is not None and held.v2))
        with self._lock:
            old = self._held.get(terminal_id)
            why = None
            if old is not None:
                if new.log_id != old.log_id:
                    why = ("REPLACED", f"log {new.log_id[:16]} is not log {old.log_id[:16]} held at entry {old.seq}")
                elif new.seq < old.seq:
                    why = ("ROLLED_BACK", f"the log reaches entry {new.seq}; entry {old.seq} was anchored before")
                elif new.seq == old.seq and new.head != old.head:
                    why = ("REWRITTEN", f"entry {new.seq} has another hash than when it was anchored")
                elif new.tpm_count < old.tpm_count:
                    why = ("COUNT_BACK", f"the anchor's TPM count {new.tpm_count} is below {old.tpm_count}, held at "
                                         f"entry {old.seq}: the terminal stopped counting, or this is another TPM")
            if why is None:
                self._missing_told.discard(terminal_id)     # anchored again: a new gap is news
                if old is None or new.seq > old.seq:
                    self._held[terminal_id] = new
                return None
        return self._flag(terminal_id, why[0], why[1], header, now_ms)

    def flag(self, terminal_id: str, reason: str, detail: str, header: pb.ProbeHeader, now_ms: int) -> str:
        """A flag raised by another check of the same probe (sec32: ``WITNESS_UNFETCHED``, the TPM witness's
        history dropping counts the bank had not fetched): kept and logged as the anchors' own."""
        return self._flag(terminal_id, reason, detail, header, now_ms)

    def _flag(self, terminal_id: str, reason: str, detail: str, header: pb.ProbeHeader, now_ms: int) -> str:
        flag = AnchorFlag(terminal_id, reason, detail, header.probe_id[:64], now_ms)
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
