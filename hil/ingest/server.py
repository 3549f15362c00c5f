"""Reference probe ingest server (tests, the demo, HIL rigs) — and the specification, in code, of
what a bank's server must check before it believes a probe (``docs/uplink.md``).

``BeginCapture``: the caller's client certificate must be a registered terminal's (its key pinned,
its name the terminal's, not revoked; ``identity.py``), asking for itself, for a session id and a
purpose; a terminal, a subject, or a subject at this terminal at its failure limit is refused
(``limits.py``). The challenge's nonce is remembered with the terminal, session, purpose and the
HPKE key offered (``store.py``), and charged against the terminal's failure count and, when a
subject is named, the subject's and the subject's at this terminal, in the same atomic step: every
challenge issued is a try until a probe under it is accepted. The same request repeated (a reply
lost to the client's deadline) while its nonce is unused and unexpired gets the same challenge,
charged once (``request_digest``, ``Store.issue_nonce``).

``SubmitProbe``, in order, each failure with its own receipt reason:

1. the message and its header parse, version 1, every field well formed (``MALFORMED``);
2. the caller is a registered, unrevoked terminal (``UNKNOWN_TERMINAL``, ``REVOKED``) and the
   header names it;
3. the header names one of the terminal's registered signing keys (the current one, or the previous
   one until its rotation ends) with that key's algorithm, and the signature over header and
   ciphertext verifies (``TAMPERED``). Nothing before this point is remembered: unauthenticated
   input costs the server no memory and cannot claim another terminal's probe id;
4. the nonce was issued to this terminal and is unexpired (``EXPIRED``). If it was used already,
   the same probe (id and bytes) within ``retry_window_s`` gets its first receipt back, anything
   else is ``REPLAYED``; so is a probe id this terminal used before (read with the nonce and the
   counter, refused unjudged: no judgement, no failure, no verdict by reply time), and one that
   another probe with other bytes claimed under this nonce (the read claims the id atomically, so
   probes racing one id are judged once; a probe refused before judging gives its claim back; a
   copy's hold is a lease of ``claim_lease_s`` by the store's clock, so a server that died judging
   does not block the retry, and a judge past it whose hold was taken over cannot use the nonce;
   ``Store.read_and_claim``). It must have
   been issued for this session and purpose (``UNBOUND``), the probe must be sealed to the key
   that challenge offered (``WRONG_KEY``), created within its lifetime (``UNBOUND``),
   and carry a counter above the terminal's last (``REPLAYED``);
5. a terminal registered with an attestation policy carries a TPM quote of its registered PCR
   values made for this nonce (``ATTESTATION_FAILED``, ``hil/ingest/attestation.py``), and where the policy pins
   the audit counter and chain, their certification by the same key for this nonce (sec31, ``ATTESTATION_FAILED``
   with an ``NV_*`` check; the witness it is checked against is held in the shared store, witness31);
   the ciphertext decrypts with the header bound (``TAMPERED``, ``WRONG_KEY``) and the payload is
   well formed (``MALFORMED``; a crop that does not match its digest — SHA-256, or SM3 under the GM
   suite — is ``TAMPERED``); the liveness report judged the crops' frameset under this nonce (``UNBOUND``);
6. the verdict: ``live`` under a passed challenge whose evidence the server verified itself
   (``evidence.py``: the challenges demanded, the schedule and the screen's sequence from the
   nonce, bound to the frames and the crop; ``EVIDENCE_FAILED`` otherwise) is ``OK``; anything else
   ``NOT_LIVE``. The probe's camera must be the terminal's registered one (``UNKNOWN_CAMERA``), and where its
   dot reference is registered, judged with that reference (``DOT_REFERENCE_MISSING``, ``DOT_REFERENCE_MISMATCH``;
   pin34, ``evidence.check_dot_reference``).
   A judged receipt, and an accepted probe's summary, carry the keyed hash of the subject its
   challenge named (``subject_mac``: HMAC-SHA256 under the server's subject key), for the bank to
   match exactly against the one it named;
7. only now is the nonce used, atomically, together with the receipt, the terminal's counter and the
   settlement of the nonce's charge: ``OK`` takes it back, anything else judged keeps it as the
   failure. A probe stopped at steps 1-5 leaves its nonce unused and its charge standing; a retry
   settles nothing; a failure judged while its nonce was used by another probe, or expired or was
   evicted, counts on its own, on the terminal's own keys only (``limits.py`` lists every case).
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError

from agent.liveness.challenge import Kind, kinds_from, window_frames
from agent.security.keys import algorithm_of, verify_signature
from agent.session.request import REF_RE
from agent.uplink.client import LEASE_TRAILER
from agent.uplink.seal import ProbeRejected, ServerKey, open_sealed, read_header, signed_bytes
from hil.ingest import evidence
from hil.ingest.anchors import AnchorStore
from hil.ingest.attestation import UNFETCHED, WitnessStore, check_quote
from hil.ingest.checks import IDENT, PROBE_ID, PURPOSES, check_header, validate_payload
from hil.ingest.health import add_health
from hil.ingest.identity import PeerRefused, Registry, Terminal
from hil.ingest.ima import check_reference
from hil.ingest.limits import LOCKED_OUT_REPLY, SUBJECT_KEY_BYTES, FailureLimits, subject_mac
from hil.ingest.store import (
    CLAIM_LEASE_MS,
    MAX_COPIES_PER_CLAIM,
    MAX_PROBES_PER_NONCE,
    Claim,
    MemoryStore,
    NonceRecord,
    Outcome,
    PinResult,
    Store,
    StoreClockDeferred,
    StoreUnavailable,
    StoreUnchecked,
    failure_member,
)
from hil.ingest.subject_keys import SubjectKey, SubjectKeys
from proto.capture_agent.v1 import ingest_pb2 as pb

if TYPE_CHECKING:
    from hil.ingest.config import StoreWatch

__all__ = ["Ingest", "ServeOptions", "ServerState", "ServerTLS", "Terminal", "serve", "validate_payload"]

log = logging.getLogger(__name__)
MAX_MESSAGE = 16 << 20
SERVICE = "capture_agent.v1.ProbeIngest"


@dataclass
class ServerState:
    registry: Registry
    keys: dict[str, ServerKey]                 # by key id
    current_key_id: str                        # the key challenges offer
    store: Store = field(default_factory=MemoryStore)
    nonce_ttl_s: float = 60.0                  # covers the session's stages after the quality loop
    frames: int = 0                            # framesets per window; 0: what the challenges demanded need
    retry_window_s: float = 10.0               # an identical resubmit within this gets the first receipt
    clock_skew_s: float = 120.0                # tolerated difference between terminal and server clocks
    claim_lease_s: float = CLAIM_LEASE_MS / 1000   # a copy's hold on its probe id's claim: how long it counts
                                               # as a live judge's (store.CLAIM_LEASE_MS says why 5 s)
    limits: FailureLimits = field(default_factory=FailureLimits)
    keep_sealed: int = 0                       # HIL/demo: keep the last N accepted sealed probes (ciphertext)
    clock: Callable[[], float] = time.time
    accepted: deque = field(default_factory=lambda: deque(maxlen=1000))   # non-biometric summaries
    sealed: deque = field(init=False)
    # Audit-log anchors and their flags per terminal, in ``store`` (sec34: the store the servers share; whatever
    # ``store`` is at each call). A test may set its own.
    anchors: AnchorStore = field(default=None)  # type: ignore[assignment]
    policies: tuple[evidence.ChannelPolicy, ...] = evidence.DEFAULT_POLICY   # challenges demanded per channel
    evidence: evidence.EvidenceThresholds = field(default_factory=evidence.EvidenceThresholds)
    # The subject key (HMAC-SHA256 of subject references: the store's subject keys, Receipt.subject_mac).
    # Servers sharing a store, and the bank's matcher, need the same one (``subject_key_file``); the
    # default, a random key per process, suits a server with its own memory store and no bank (tests).
    subject_key: bytes = field(default_factory=lambda: os.urandom(SUBJECT_KEY_BYTES), repr=False)
    # The keys in use: ``subject_key`` as the current one and, during a rotation, the previous one
    # (``subject_key_previous_file``). Read once per call; a reload replaces it in one assignment.
    subject_keys: SubjectKeys | None = None
    # A Redis store's checks, bound to the Redis they ran on (``config.StoreWatch``, sec18): a charge
    # on a Redis that restarted or failed over since is refused until they pass again. None: a store
    # nobody checks (memory; the tests' rigs).
    store_watch: StoreWatch | None = None

    def __post_init__(self) -> None:
        if len(self.subject_key) != SUBJECT_KEY_BYTES:
            raise ValueError(f"subject_key must be {SUBJECT_KEY_BYTES} bytes")
        if self.subject_keys is None:
            self.subject_keys = SubjectKeys(SubjectKey(self.subject_key))
        elif self.subject_keys.current.secret != self.subject_key:
            raise ValueError("subject_keys.current must be subject_key")
        self.sealed = deque(maxlen=max(self.keep_sealed, 1))
        if self.anchors is None:
            self.anchors = AnchorStore(lambda: self.store)
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    @property
    def witnesses(self) -> WitnessStore:
        """The TPM-certified counts and chains per terminal (sec31), held in the store the servers share
        (witness31): a restart or another host reads the same ones."""
        return WitnessStore(self.store)

    def note_accepted(self, summary: dict[str, Any], raw: bytes | None) -> None:
        with self._lock:
            self.accepted.append(summary)
            if self.keep_sealed and raw is not None:
                self.sealed.append(raw)


class ProbeBusy(Exception):
    """``MAX_COPIES_PER_CLAIM`` identical copies of this probe are being judged (within their lease),
    or this copy's hold was taken over while it was judged: answered UNAVAILABLE (retried; the retry
    gets the judging copy's receipt once its nonce is used)."""


def probe_digest(sealed: pb.SealedProbe) -> bytes:
    """SHA-256 of a probe's exact bytes: an identical resubmit has the same digest."""
    h = hashlib.sha256(struct.pack(">III", len(sealed.header), len(sealed.ciphertext), len(sealed.signature)))
    for part in (sealed.header, sealed.ciphertext, sealed.signature):
        h.update(part)
    return h.digest()


def request_digest(request: pb.BeginCaptureRequest, key_id: str, challenges: str, frames: int,
                   subject: str) -> bytes:
    """What a challenge depends on, as one SHA-256: the terminal, session, purpose, subject (by its
    keyed hash, ``subject``: the digest is kept in the store beside the session's other fields, so
    over the plain reference it could be reversed by enumerating references), channel,
    capabilities, and what the server's config makes of them (the HPKE key offered, the challenges
    and the frames). A ``BeginCapture`` repeated with the same digest while its nonce is unused and
    unexpired gets the same challenge, charged once (``Store.issue_nonce``); any difference (another
    subject, channel or capability, a rotated key, a reloaded policy) is a new, charged one."""
    parts = (request.terminal_id.encode(), request.session_id.encode(), str(int(request.purpose)).encode(),
             subject.encode(), request.channel.encode(),
             request.capabilities.SerializeToString(deterministic=True), key_id.encode(), challenges.encode(),
             str(frames).encode())
    h = hashlib.sha256(b"capture-agent begin v1")
    for part in parts:
        h.update(struct.pack(">I", len(part)) + part)
    return h.digest()


class RefusalLog:
    """When a ``LOCKED_OUT`` is worth a warning line: the first for a terminal and key, then at most
    one per ``interval_ms``, that line saying how many refusals went unsaid since. A refusal charges
    nothing, so a rooted terminal at its limit can call ``BeginCapture`` without end; a line per
    call let it fill the server's log for free (review 11). At most ``max_keys`` pairs are
    remembered (the least recent leaves: its next refusal is said again)."""

    def __init__(self, interval_ms: int = 60_000, max_keys: int = 4096):
        self.interval_ms, self.max_keys = interval_ms, max_keys
        self._said: OrderedDict[tuple[str, str], list[int]] = OrderedDict()   # -> [last said (ms), unsaid]
        self._lock = threading.Lock()

    def due(self, terminal_id: str, key: str, now_ms: int) -> int | None:
        """None: not to be said now (counted); otherwise the refusals left unsaid since the last line."""
        with self._lock:
            pair = (terminal_id, key)
            got = self._said.get(pair)
            if got is not None and 0 <= now_ms - got[0] < self.interval_ms:
                got[1] += 1
                return None
            self._said[pair] = [now_ms, 0]
            self._said.move_to_end(pair)
            while len(self._said) > self.max_keys:
                self._said.popitem(last=False)
            return got[1] if got is not None else 0


PIN_RECHECK_MS = 60_000        # a SUBJECT_KEY_STALE refusal re-checks the store's pin at most this often


class Ingest:
    """Servicer; requests arrive as bytes and are parsed here (see ``handler``)."""

    def __init__(self, state: ServerState):
        self.s = state
        self.refusals = RefusalLog()
        self._pin_checked_ms: int | None = None       # when a stale refusal last re-checked the store's pin
        self._pin_lock = threading.Lock()

    def _recheck_pin(self, names: SubjectKeys, overlap_ms: int, now_ms: int) -> bool:
        """After a ``SUBJECT_KEY_STALE`` refusal, at most once per ``PIN_RECHECK_MS``: this server's
        keys against the store's pin again, as a start or reload checks them (``Store.pin_subject_keys``,
        the same rules). A store flushed mid-rotation is re-pinned by the first server to charge,
        perhaps one still on the old key alone, and a server started while the store was down never
        checked its pair: here the rotation (re)begins (``ROTATED``) or the store takes this server's
        keys (``PINNED``), without a SIGHUP. A key the store refuses (another key, a retired one, a
        rotation still open) changes nothing. True when the store now takes this server's charges.
        A terminal can cause the refusal at will, so the rate bounds what it costs: one store
        transaction a minute."""
        with self._pin_lock:
            last = self._pin_checked_ms
            if last is not None and 0 <= now_ms - last < PIN_RECHECK_MS:
                return False
            self._pin_checked_ms = now_ms
        previous = names.previous.check if names.previous is not None else ""
        try:
            result, _ = self.s.store.pin_subject_keys(names.current.check, previous, overlap_ms)
        except StoreUnavailable:
            return False
        if result not in (PinResult.PINNED, PinResult.ROTATED, PinResult.ENDED):
            return False
        log.warning("subject key: the store %s takes this server's key id %s%s again (%s, re-checked after a "
                    "SUBJECT_KEY_STALE refusal)", type(self.s.store).__name__, names.current.key_id,
                    f", previous {names.previous.key_id}" if names.previous is not None else "", result.value)
        return True

    def handler(self) -> grpc.GenericRpcHandler:
        ser = lambda m: m.SerializeToString()  # noqa: E731
        return grpc.method_handlers_generic_handler(SERVICE, {
            "BeginCapture": grpc.unary_unary_rpc_method_handler(self._begin_raw, response_serializer=ser),
            "SubmitProbe": grpc.unary_unary_rpc_method_handler(self._submit_raw, response_serializer=ser),
            "CheckCapabilities": grpc.unary_unary_rpc_method_handler(self._capabilities_raw,
                                                                      response_serializer=ser),
        })

    @staticmethod
    def _skip_if_gone(context) -> None:
        """A call whose client has gone (its deadline passed while it waited for a worker, or it was
        cancelled) gets no work: no answer can reach it, and under overload the work would only
        push the calls behind it past their deadlines too. Nothing is remembered for it, so the
        terminal's retry of the same probe is judged in full."""
        if not context.is_active():
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the call ended before the server reached it")

    def _begin_raw(self, raw: bytes, context):
        self._skip_if_gone(context)
        try:
            request = pb.BeginCaptureRequest.FromString(raw)
        except DecodeError:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED: not a BeginCaptureRequest")
        return self.BeginCapture(request, context)

    def _capabilities_raw(self, raw: bytes, context):
        try:
            request = pb.CapabilityCheck.FromString(raw)
        except DecodeError:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED: not a CapabilityCheck")
        return self.CheckCapabilities(request, context)

    def _submit_raw(self, raw: bytes, context):
        self._skip_if_gone(context)
        try:
            request = pb.SealedProbe.FromString(raw)
        except DecodeError:
            return pb.Receipt(accepted=False, reason="MALFORMED", detail="not a SealedProbe",
                              received_unix_ms=self.s.now_ms())
        return self.SubmitProbe(request, context)

    # -- CheckCapabilities ---------------------------------------------------------------------------

    def _demanded(self, channel: str, caps: pb.ChallengeCapabilities, context) -> tuple[evidence.ChannelPolicy,
                                                                                         frozenset]:
        if len(channel) > 32 or not all(c.isalnum() or c in "_-" for c in channel):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED: channel must be 0-32 letters, digits, _ or -")
        policy = evidence.policy_for(self.s.policies, channel or "kiosk")
        try:
            return policy, evidence.demanded(policy, caps)
        except evidence.CapabilityMissing as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"CAPABILITY_MISSING: {exc}")
            raise                                                  # not reached: abort raises

    def CheckCapabilities(self, request: pb.CapabilityCheck, context) -> pb.CapabilityVerdict:
        """Before the person poses: the challenges a session on this channel will be asked for."""
        try:
            term = self.s.registry.identify(context.auth_context())
        except PeerRefused as exc:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{exc.reason}: {exc.message}")
        if request.terminal_id != term.terminal_id:
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          "UNKNOWN_TERMINAL: the client certificate does not name this registered terminal")
        _, kinds = self._demanded(request.channel, request.capabilities, context)
        return pb.CapabilityVerdict(challenges=evidence.to_proto(kinds))

    # -- BeginCapture ------------------------------------------------------------------------------

    def BeginCapture(self, request: pb.BeginCaptureRequest, context) -> pb.Challenge:
        try:
            term = self.s.registry.identify(context.auth_context())
        except PeerRefused as exc:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{exc.reason}: {exc.message}")
        if request.terminal_id != term.terminal_id:
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          "UNKNOWN_TERMINAL: the client certificate does not name this registered terminal")
        if not IDENT.fullmatch(request.session_id):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "MALFORMED: session_id must be 1-64 printable ASCII characters")
        if request.purpose not in PURPOSES:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED: purpose must be ENROLL or VERIFY")
        now_ms = self.s.now_ms()
        if not REF_RE.fullmatch(request.subject_ref):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED: subject_ref must be at most 128 characters "
                          "of letters, digits, . _ : / -")
        policy, kinds = self._demanded(request.channel, request.capabilities, context)
        frames = policy.frames or self.s.frames or window_frames(kinds)
        key = self.s.keys[self.s.current_key_id]
        nonce = os.urandom(32)
        names = self.s.subject_keys                 # one reading: a reload may rotate it meanwhile
        assert names is not None                    # (set by ServerState.__post_init__)
        subject = names.current.name(request.subject_ref)
        record = NonceRecord(term.terminal_id, request.session_id, request.purpose, key.key_id, now_ms,
                             now_ms + int(self.s.nonce_ttl_s * 1000), subject=subject,
                             challenges=evidence.names(kinds), frames=frames,
                             subject_key_id=names.current.key_id if subject else "")
        limits = self.s.limits                      # one reading: a reload may replace it meanwhile
        # During a rotation the subject's counts under the previous key's name add to its own; the
        # store refuses the charge unless it pins this server's key (a server left on a rotated key).
        # So does it while the store pins a previous key this server does not read, in the overlap.
        overlap = limits.window_ms + int(self.s.nonce_ttl_s * 1000)
        charge = limits.charge(term.terminal_id, subject, names.previous_name(request.subject_ref),
                               key_check=names.current.check if subject else "",
                               previous_check=names.previous.check if names.previous is not None else "",
                               overlap_ms=overlap, store_clock=True)
        digest = request_digest(request, key.key_id, record.challenges, frames, subject)
        watch = self.s.store_watch
        if watch is not None:
            watch.keep_checked(now_ms)              # the store's settings read again, once a minute
        try:                                        # the limit checked, then charged; a repeat gets the first
            try:
                issued = self.s.store.issue_nonce(nonce, record, now_ms, charge, digest)
            except StoreUnchecked:
                # Redis restarted or failed over since its checks (or never passed them): nothing was
                # charged; checked again (rate-limited), the charge is tried once more if they pass.
                if watch is None or not watch.recheck(now_ms):
                    raise
                issued = self.s.store.issue_nonce(nonce, record, now_ms, charge, digest)
            if issued.stale_key and self._recheck_pin(names, overlap, now_ms):
                issued = self.s.store.issue_nonce(nonce, record, now_ms, charge, digest)
        except StoreUnavailable as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"STORE_UNAVAILABLE: {exc}")
            raise                                                  # not reached: abort raises
        if issued.stale_key:
            # Another server rotated the store's subject key past this one's: this server must not
            # count subjects under a name the others no longer read. The terminal retries elsewhere.
            if self.refusals.due("*", "subject-key", now_ms) is not None:
                log.error("SUBJECT_KEY_STALE: the store %s counts subjects under another subject key than this "
                          "server's (key id %s%s), or is rotating from a previous key this server does not read: "
                          "reload this server with the store's subject_key_file and subject_key_previous_file",
                          type(self.s.store).__name__, names.current.key_id,
                          f", previous {names.previous.key_id}" if names.previous is not None else "")
            context.abort(grpc.StatusCode.UNAVAILABLE, "SUBJECT_KEY_STALE: this server's subject key was rotated "
                          "away; try another endpoint")
        if issued.locked:
            # The terminal gets one reply whatever key is at its limit; the log keeps which (at most
            # a line per terminal and key a minute: a refusal is free to ask for).
            unsaid = self.refusals.due(term.terminal_id, issued.locked, now_ms)
            if unsaid is not None:
                log.warning("LOCKED_OUT: terminal %s: %s%s", term.terminal_id,
                            limits.refusal(term.terminal_id, subject, issued.locked),
                            f" ({unsaid} more refused since)" if unsaid else "")
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, LOCKED_OUT_REPLY)
        rec = issued.record if issued.record is not None else record
        if issued.repeated:
            # The first issue's record, as stored: its key is the one this request's digest names
            # (the current one), and its challenges, frames, issue time and expiry are the first
            # reply's, so the repeat gets the same challenge, byte for byte.
            kinds = kinds_from(n for n in rec.challenges.split(",") if n)
        return pb.Challenge(nonce=issued.nonce, expires_unix_ms=rec.expires_ms, server_key_id=key.key_id,
                            server_public_key=key.public_bytes, hpke_suite=key.suite, frames=rec.frames,
                            issued_unix_ms=rec.issued_ms, challenges=evidence.to_proto(kinds))

    # -- SubmitProbe -------------------------------------------------------------------------------

    def SubmitProbe(self, request: pb.SealedProbe, context) -> pb.Receipt:
        now_ms = self.s.now_ms()
        probe_id = ""
        try:
            header = read_header(request)
            probe_id = header.probe_id if PROBE_ID.fullmatch(header.probe_id) else ""
            check_header(header)
            term = self._authenticate(request, header, context, now_ms)
            return self._judge(request, header, term, now_ms)
        except ProbeRejected as exc:
            log.debug("probe rejected: %s", exc.reason)
            return pb.Receipt(probe_id=probe_id, accepted=False, reason=exc.reason, detail=exc.message[:300],
                              received_unix_ms=now_ms)
        except StoreUnavailable as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"STORE_UNAVAILABLE: {exc}")
            raise                                                  # not reached: abort raises
        except ProbeBusy:
            # The lease, so the terminal knows how long to wait the holds out (agent/uplink/client.py;
            # a trailer: older clients ignore it and retry as before).
            context.set_trailing_metadata(((LEASE_TRAILER, str(int(self.s.claim_lease_s * 1000))),))
            context.abort(grpc.StatusCode.UNAVAILABLE, f"PROBE_IN_PROGRESS: {MAX_COPIES_PER_CLAIM} identical copies "
                          "of this probe are being judged; retry for its receipt")
            raise                                                  # not reached: abort raises

    def _authenticate(self, request: pb.SealedProbe, header: pb.ProbeHeader, context, now_ms: int) -> Terminal:
        """Steps 2-3: the caller is the header's terminal and its registered key signed the probe."""
        try:
            term = self.s.registry.identify(context.auth_context())
        except PeerRefused as exc:
            raise ProbeRejected(exc.reason, exc.message) from None
        if header.terminal_id != term.terminal_id:
            raise ProbeRejected("UNKNOWN_TERMINAL", "the header names another terminal than the client certificate")
        key = term.signing_key(header.signer_key_id, now_ms)
        if key is None:
            raise ProbeRejected("TAMPERED", "probe names a signing key the terminal is not registered with "
                                "(or one whose rotation has ended)")
        if header.signature_algorithm != algorithm_of(key):
            raise ProbeRejected("TAMPERED", "probe names another signature algorithm than its key's")
        if not verify_signature(key, header.signature_algorithm, signed_bytes(request.header, request.ciphertext),
                                request.signature):
            raise ProbeRejected("TAMPERED", "terminal signature does not verify over header and ciphertext")
        return term

    def _judge(self, request: pb.SealedProbe, header: pb.ProbeHeader, term: Terminal, now_ms: int) -> pb.Receipt:
        """Steps 4-7, for an authenticated probe."""
        store, digest = self.s.store, probe_digest(request)
        # The read and, atomically with it, this probe's claim of its id on the nonce: of probes
        # racing one id under one nonce only the first (and its identical copies: the terminal's
        # retry) is opened and judged, the others are refused unjudged (no verdict by reply time).
        # This copy's hold is a lease: a token of its own, timed by the store; if this server dies
        # while judging, a copy arriving after the lease takes the hold over (the terminal's retry is
        # judged, not refused PROBE_IN_PROGRESS until the nonce expires), and if this server was only
        # slow, its use then finds its token gone (LAPSED): one judgement of the probe id is used.
        hold = os.urandom(16).hex()
        lease_ms = int(self.s.claim_lease_s * 1000)
        try:
            rec, last_counter, claim = store.read_and_claim(header.nonce, term.terminal_id, header.probe_id, digest,
                                                            now_ms, hold=hold, lease_ms=lease_ms)
        except StoreClockDeferred:
            # sec28: charged before this server's host had a reading of Redis's clock, and not yet vouched for
            # by a host with a live one: not judged here (STORE_UNAVAILABLE: the terminal tries again, another
            # server judges it), unless the deferral's bound has passed, when it is retired and read again.
            watch = self.s.store_watch
            if watch is None or not watch.deferral_due():
                raise
            rec, last_counter, claim = store.read_and_claim(header.nonce, term.terminal_id, header.probe_id, digest,
                                                            now_ms, hold=hold, lease_ms=lease_ms)
        except StoreUnchecked:
            # Redis's clock is behind what this server's elapsed time allows (back21): a step back, which
            # the store's check measures and marks (the nonces charged before it then expire when they
            # would have on the old clock), before the read is made again. Nothing was read or claimed.
            watch = self.s.store_watch
            if watch is None:
                raise
            watch.recheck(now_ms)               # (its result is about charges: a held server still judges)
            rec, last_counter, claim = store.read_and_claim(header.nonce, term.terminal_id, header.probe_id, digest,
                                                            now_ms, hold=hold, lease_ms=lease_ms)
        if rec is None or rec.terminal_id != term.terminal_id:
            raise ProbeRejected("EXPIRED", "nonce was not issued to this terminal, has expired or was purged")
        if rec.used:
            return self._again(rec, header, digest, now_ms)
        if claim is Claim.USED:    # refused unjudged: use_nonce would refuse it after judging, nonce unused
            raise ProbeRejected("REPLAYED", "probe id already used by this terminal")
        if claim is Claim.TAKEN:
            raise ProbeRejected("REPLAYED", "probe id already claimed under this nonce by a probe with other content")
        if claim is Claim.FULL:
            raise ProbeRejected("REPLAYED", f"{MAX_PROBES_PER_NONCE} other probes already claimed this nonce")
        if claim is Claim.BUSY:
            # Identical copies of a probe being judged: the first (and the terminal's one retry) are
            # judged, more copies would buy judgements (CPU) of one nonce for nothing. Retryable: by
            # the retry the nonce is used and the copy gets the first receipt (``_again``).
            raise ProbeBusy()
        if claim is not Claim.HELD:                # not reached: an unused, unexpired nonce of this terminal
            raise ProbeRejected("EXPIRED", "nonce was not issued to this terminal, has expired or was purged")
        try:                       # refused before judging: the claim is given back (another probe may try)
            payload = self._open(request, header, term, rec, now_ms, last_counter)
        except ProbeRejected:
            store.release_claim(header.nonce, term.terminal_id, header.probe_id, digest, hold=hold)
            raise
        except StoreUnavailable:
            # sec32: the store failed before judging (the TPM witness unreadable, WitnessUnreadable, or its
            # compare-and-set lost; sec34: the anchor's alike, AnchorUnreadable): nothing was judged and the nonce
            # was not used, so this copy's hold goes back (best effort) and the terminal's retry is judged at
            # once, not PROBE_IN_PROGRESS for the lease. The nonce is still spent once: only use_nonce uses it,
            # under a live hold of its own; the witness's check of the same certification again is idempotent
            # (held, not swapped twice), and so is the anchor's (an anchor held is not written again).
            self._give_back(header, term, digest, hold)
            raise
        named = subject_mac(rec.subject)           # the subject the challenge was issued for ("" : none) ...
        named_by = rec.subject_key_id if named else ""   # ... and the subject key that names it
        try:
            try:
                lv, frames = self._check_payload(payload, header, term)
            except ProbeRejected:
                store.release_claim(header.nonce, term.terminal_id, header.probe_id, digest, hold=hold)
                raise
            challenge = lv.get("challenge")
            passed = bool(challenge and challenge["passed"])
            if lv["verdict"] == "live" and lv.get("challenge_used") is True and passed:
                # The terminal says live; the server believes only what it can check itself.
                try:
                    evidence.verify(payload, lv, header.nonce, _kinds(rec.challenges), rec.frames, self.s.evidence,
                                    frames)
                    receipt = pb.Receipt(probe_id=header.probe_id, accepted=True, reason="OK",
                                         received_unix_ms=now_ms, liveness_verdict="live",
                                         subject_mac=named, subject_key_id=named_by)
                except evidence.EvidenceFailed as exc:
                    receipt = pb.Receipt(probe_id=header.probe_id, accepted=False, reason="EVIDENCE_FAILED",
                                         received_unix_ms=now_ms, liveness_verdict="live", detail=str(exc)[:300],
                                         subject_mac=named, subject_key_id=named_by)
            else:
                receipt = pb.Receipt(probe_id=header.probe_id, accepted=False, reason="NOT_LIVE",
                                     received_unix_ms=now_ms, liveness_verdict=lv["verdict"], subject_mac=named,
                                     subject_key_id=named_by,
                                     detail=f"liveness verdict {lv['verdict']!r}"
                                            f"{'' if passed else ', challenge not passed'}"[:300])
            summary = {"probe_id": header.probe_id, "terminal_id": term.terminal_id, "session_id": header.session_id,
                       "counter": header.counter, "purpose": pb.Purpose.Name(header.purpose),
                       "subject_mac": named,            # the bank matches exactly the subject it named
                       "subject_key_id": named_by,      # under the subject key with this id
                       "device": payload.device.backend[:64],
                       "color_crop": [payload.color.width, payload.color.height]}
        finally:
            payload.Clear()
        limits = self.s.limits
        # Used, the nonce's charge is settled in the same step: taken back if accepted, kept as the
        # presentation failure (on each key it was charged to) if not.
        try:
            use = store.use_nonce(header.nonce, terminal_id=term.terminal_id, probe_id=header.probe_id, digest=digest,
                                  counter=header.counter, receipt=receipt.SerializeToString(), now_ms=now_ms,
                                  settle=limits.settle(term.terminal_id, rec.subject, accepted=receipt.accepted,
                                                       store_clock=True),
                                  hold=hold)
        except StoreUnavailable:
            # The use did not happen (or its reply was lost): the nonce may be unused, so this copy's
            # hold goes back, or two such attempts (a blip, a failover) left the claim full and every
            # retry PROBE_IN_PROGRESS until the nonce expired (review 13). Best effort: the store may
            # still be down (then the retry's read fails first and holds nothing).
            self._give_back(header, term, digest, hold)
            raise
        if use.outcome is Outcome.LAPSED:
            # Judged past this copy's lease, and another copy took the hold over: that copy's judgement
            # is the one used (this one's is dropped: no use, no receipt, no failure counted). The
            # terminal's retry gets that copy's receipt once its nonce is used.
            log.warning("probe judged after its claim's lease (%.1f s): another copy took it over; "
                        "this judgement is dropped", self.s.claim_lease_s)
            raise ProbeBusy()
        if use.outcome is Outcome.USED:
            if receipt.accepted:
                self.s.note_accepted(summary, request.SerializeToString() if self.s.keep_sealed else None)
            return receipt
        if use.outcome is Outcome.SAME_PROBE and use.record is not None:
            return pb.Receipt.FromString(use.record.receipt)          # a retry that overtook the first call
        if not receipt.accepted:
            # A presentation judged a failure counts even when another probe got its nonce (or a higher
            # counter) first: that probe may be accepted and take the nonce's charge back, and a
            # terminal's key holder must not try attacks for free by racing each against a second
            # probe. Nor when its nonce expired or was evicted while it was judged (UNKNOWN): K probes
            # racing the expiry count K. Counted once per probe (its digest names the failure, so an
            # identical retry adds nothing); a gone nonce's own charge, if no probe settled it, is
            # replaced by this failure, not added to (one presentation, one failure). On the
            # terminal's own keys only: never the subject's across terminals (record's docstring).
            gone = use.outcome is Outcome.UNKNOWN
            limits.record(store, term.terminal_id, rec.subject, None, member=failure_member(header.nonce, digest),
                          replaces=header.nonce.hex() if gone else "")
        if use.outcome is Outcome.STALE_COUNTER:
            raise ProbeRejected("REPLAYED", "the terminal's probe counter did not increase")
        if use.outcome is Outcome.REPLAYED:
            raise ProbeRejected("REPLAYED", "nonce or probe id already used by another probe")
        raise ProbeRejected("EXPIRED", "nonce expired before the probe arrived")

    def _give_back(self, header: pb.ProbeHeader, term: Terminal, digest: bytes, hold: str) -> None:
        """This copy's hold on its probe id's claim released, best effort: a store still down keeps it for its lease
        (``claim_lease_s``), as a server that died would."""
        try:
            self.s.store.release_claim(header.nonce, term.terminal_id, header.probe_id, digest, hold=hold)
        except StoreUnavailable:
            pass

    def _open(self, request: pb.SealedProbe, header: pb.ProbeHeader, term: Terminal, rec: NonceRecord, now_ms: int,
              last_counter: int) -> pb.ProbePayload:
        """Step 4's bindings, step 5's quote and the decryption: every refusal here is before judging."""
        if rec.session_id != header.session_id:
            raise ProbeRejected("UNBOUND", "the nonce was issued for another capture session")
        if rec.purpose != header.purpose:
            raise ProbeRejected("UNBOUND", "the nonce was issued for another purpose")
        if header.server_key_id != rec.server_key_id:
            raise ProbeRejected("WRONG_KEY", "probe is sealed to another key than the one its challenge offered")
        skew_ms = int(self.s.clock_skew_s * 1000)
        if not rec.issued_ms - skew_ms <= header.created_unix_ms <= now_ms + skew_ms:
            raise ProbeRejected("UNBOUND", "probe's creation time is outside its challenge's lifetime "
                                "(or the terminal's clock is off by more than the server allows)")
        if header.counter <= last_counter:
            raise ProbeRejected("REPLAYED", "the terminal's probe counter did not increase")
        if term.attestation is not None:           # the terminal's measured state, quoted for this nonce
            check_quote(term.attestation, header)
            # sec31: its audit counter and chain, certified by the same key for this nonce (where pinned)
            self.s.witnesses.check(term.terminal_id, term.attestation, header, on_unfetched=lambda detail: (
                self.s.anchors.flag(term.terminal_id, UNFETCHED, detail, header, now_ms)))
        # The terminal's audit log, anchored off the terminal: a log that does not extend the last
        # anchor is flagged for the bank (never a refusal: the probe itself may be genuine).
        self.s.anchors.observe(term.terminal_id, header, self.s.registry.terminals[term.terminal_id].public_key)
        return open_sealed(request, header, self.s.keys)

    def _check_payload(self, payload: pb.ProbePayload, header: pb.ProbeHeader,
                       term: Terminal) -> tuple[dict[str, Any], Any]:
        """Step 5's payload checks (before judging): well formed, made under this nonce, the registered camera."""
        lv = validate_payload(payload, header.hpke_suite)
        frames = evidence.check_shape(payload)
        challenge = lv.get("challenge")
        if challenge is not None and challenge["nonce_sha256"] != hashlib.sha256(header.nonce).hexdigest():
            raise ProbeRejected("UNBOUND", "liveness ran under another challenge than this probe's nonce")
        evidence.check_camera(term.camera, payload.device)
        try:
            evidence.check_dot_reference(term.camera, lv)  # pin34: judged with the registered reference, it says ...
            if term.attestation is not None and term.attestation.ima_reference is not None and term.camera is not None:
                # ... and the kernel measured (IMA): the list sealed in the payload replayed into the quoted PCR 10
                q = header.platform_quote              # checked in _open: it quotes PCRs 0-10
                check_reference(payload.ima_log, dict(zip(q.pcrs, q.pcr_values, strict=True)),
                                term.attestation.ima_reference, term.camera.dot_reference_sha256,
                                term.attestation.ima_allowlist)
        except ProbeRejected as exc:
            log.warning("terminal %s: %s: %s", term.terminal_id[:64], exc.reason, exc)
            raise
        return lv, frames

    def _again(self, rec: NonceRecord, header: pb.ProbeHeader, digest: bytes, now_ms: int) -> pb.Receipt:
        """A nonce already used: the identical probe's retry gets its receipt, anything else is a replay."""
        if rec.probe_id != header.probe_id:
            raise ProbeRejected("REPLAYED", "nonce already used by another probe")
        if rec.digest != digest:
            raise ProbeRejected("REPLAYED", "probe id already used with different content")
        if now_ms - rec.used_ms > int(self.s.retry_window_s * 1000):
            raise ProbeRejected("REPLAYED", "this probe was submitted before (outside the retry window)")
        return pb.Receipt.FromString(rec.receipt)


def _kinds(names: str) -> frozenset[Kind]:
    """The challenges a nonce record demands (records written before there were policies: the
    projector's, which every challenge then ran)."""
    return kinds_from(n for n in names.split(",") if n) if names else kinds_from(["projector"])


@dataclass
class ServerTLS:
    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: bytes


@dataclass(frozen=True)
class ServeOptions:
    """gRPC transport policy. Concurrency is bounded (excess calls get ``RESOURCE_EXHAUSTED`` instead
    of queueing without limit); idle and old connections are closed so a restarted or added server
    gets its share; the server pings quiet connections to find dead terminals, and a client that
    pings more often than ``min_client_ping_interval_s`` without calls is disconnected."""

    workers: int = 8
    max_concurrent_rpcs: int = 64
    keepalive_time_s: float = 60.0
    keepalive_timeout_s: float = 20.0
    min_client_ping_interval_s: float = 20.0
    max_ping_strikes: int = 2
    max_connection_idle_s: float = 300.0
    max_connection_age_s: float = 3600.0
    max_connection_age_grace_s: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= 256 or self.max_concurrent_rpcs < self.workers:
            raise ValueError("workers must be 1-256 and max_concurrent_rpcs at least workers")
        for name in ("keepalive_time_s", "keepalive_timeout_s", "min_client_ping_interval_s",
                     "max_connection_idle_s", "max_connection_age_s", "max_connection_age_grace_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")

    def grpc_options(self) -> list[tuple[str, int]]:
        ms = lambda s: int(s * 1000)  # noqa: E731
        return [("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", 1 << 20),
                ("grpc.keepalive_time_ms", ms(self.keepalive_time_s)),
                ("grpc.keepalive_timeout_ms", ms(self.keepalive_timeout_s)),
                ("grpc.http2.min_recv_ping_interval_without_data_ms", ms(self.min_client_ping_interval_s)),
                ("grpc.http2.max_ping_strikes", self.max_ping_strikes),
                ("grpc.max_connection_idle_ms", ms(self.max_connection_idle_s)),
                ("grpc.max_connection_age_ms", ms(self.max_connection_age_s)),
                ("grpc.max_connection_age_grace_ms", ms(self.max_connection_age_grace_s))]


def serve(state: ServerState, tls: ServerTLS, address: str = "127.0.0.1:0", options: ServeOptions | None = None):
    """Start the server; returns ``(server, port)``. Mutual TLS is required; there is no plaintext port."""
    o = options or ServeOptions()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=o.workers), options=o.grpc_options(),
                         maximum_concurrent_rpcs=o.max_concurrent_rpcs)
    server.add_generic_rpc_handlers((Ingest(state).handler(),))
    add_health(server, state, SERVICE)            # SERVING while the store answers (hil/ingest/health.py)
    creds = grpc.ssl_server_credentials([(tls.key_pem, tls.cert_pem)], root_certificates=tls.client_ca_pem,
                                        require_client_auth=True)
    port = server.add_secure_port(address, creds)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    return server, port
