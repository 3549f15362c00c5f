"""Uplink client: mutual TLS to the ingest server(s), deadlines, bounded retries, failover.

* TLS: the server must present a certificate from the pinned CA (``ca_pem``: only that CA is
  trusted, not the system store) whose SANs name the server: the endpoint's host, or
  ``server_name`` when endpoints are addresses (sent as the call's authority and TLS server name,
  and verified against the certificate; never by turning name checking off). The agent presents
  the terminal's certificate, with its key from a file or held by a PKCS#11 token or TPM
  (``client_key``; ``tls.py``).
* The challenge is checked before anything is captured under it: a 32-byte nonce, one of the HPKE
  suites this terminal allows (``suites``; a server offering another is refused, not obeyed), a
  valid public key for it, a sane frame count, and a lifetime that covers what the session still
  has to do (the challenge window, liveness and the submit with its retries).
* Keepalive: the client never pings an idle connection and pings a busy one at most every
  ``KEEPALIVE_S`` (above the server's minimum, so the server never cuts it off for pinging);
  a dead server is noticed by the call's deadline, and the server's own keepalive and idle timeout
  close connections a terminal left behind.
* Every call has a deadline. ``UNAVAILABLE`` and ``DEADLINE_EXCEEDED`` are retried up to ``retries``
  times with exponential backoff and full jitter, moving to the next endpoint each time (failover);
  anything else is final. ``SubmitProbe`` is idempotent by probe id, so a retry after a lost reply
  gets the original receipt. ``BeginCapture`` is idempotent by terminal and session: the server
  charges every challenge it issues against the terminal's and the subject's failure limits
  (``hil/ingest/limits.py``), and answers a repeat of the same request (session, purpose, subject,
  channel, capabilities) with the same challenge, charged once, while its nonce is unused and
  unexpired; so one that ran out of its deadline is repeated and failed over like any call, and
  the next server sharing the store hands out the same nonce. The repeat's challenge has lived
  while the client waited: the lifetime the session needs is checked with that wait added.
* ``SubmitProbe`` answered ``UNAVAILABLE`` ``PROBE_IN_PROGRESS`` (the server holds identical copies
  of this sealed probe being judged: e.g. two earlier attempts whose server died or stalled while
  judging) is waited out, not counted against ``retries``: the same sealed bytes are sent again (never
  re-sealed: a new probe id under the nonce would be a second judgement) with jittered backoff, on
  the endpoint that answered, until the holds' lease lapses and a copy is judged. The wait is bounded
  by the lease (the server's ``ca-claim-lease-ms`` trailer; ``claim_lease_s``, mirroring the server's
  setting, when an older server does not send it) plus ``in_progress_margin_s``, counted from the
  first such answer, and never past the nonce's own deadline (``nonce_deadline``). Past that the
  call fails with ``UPL_PROBE_IN_PROGRESS``. Any other ``UNAVAILABLE`` is retried as above. Each
  wait is announced (``submitting`` yields an ``InProgressWait``), so the session tells the person
  at the terminal to wait (the prompt ``PLEASE_WAIT``, ``agent/session/events.py``).
* Nothing is queued to disk: when no server answers, the call fails with ``UPL_UNAVAILABLE`` and the
  session fails with it. The sealed probe dies with the session.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, cast

import grpc

from agent.purpose import Purpose
from agent.security.keys import Signer
from agent.uplink.seal import STANDARD_SUITES, SUITES, load_public_key
from agent.uplink.tls import client_credentials
from drivers.errors import CaptureAgentError
from proto.capture_agent.v1 import ingest_pb2 as pb
from proto.capture_agent.v1 import ingest_pb2_grpc as pb_grpc

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
IN_PROGRESS = "PROBE_IN_PROGRESS:"    # SubmitProbe's UNAVAILABLE detail: identical copies are being judged
# What an unanswered call may have left at the server (sec19: the text said "nothing was stored" for
# every call, untrue when a server stored the call's effect and its reply was lost: a timeout, a store
# that answered after the server gave up on it, a server that died before replying). No attempt's
# answer tells that nothing was stored (UNAVAILABLE, DEADLINE_EXCEEDED come after the request was sent
# as well as before), so each says what may have happened, and what the terminal does about it.
UNSURE = {
    "CheckCapabilities": "the call stores nothing",
    "BeginCapture": "a challenge may have been issued and charged before the failure (its reply lost): the "
                    "charge stands unless the same session id asks again while the challenge is unused",
    "SubmitProbe": "the probe may have been judged and recorded before the failure (its receipt, its failure "
                   "count; the reply lost), or may yet be by a copy the server still holds: sending the same "
                   "sealed bytes again gets its receipt; this terminal keeps nothing",
}
LEASE_TRAILER = "ca-claim-lease-ms"   # the server's claim_lease_s, in ms, sent with that answer
MAX_LEASE_MS = 3_600_000              # the server's own bound on claim_lease_s; a larger or garbled value is ignored
KEEPALIVE_S = 30.0          # the reference server refuses pings closer than 20 s (hil/ingest/server.py)


class UplinkError(CaptureAgentError):
    code = "UPL_ERROR"


class UplinkUnavailable(UplinkError):
    code = "UPL_UNAVAILABLE"


@dataclass(frozen=True)
class InProgressWait:
    """``SubmitProbe`` was answered ``PROBE_IN_PROGRESS``: the client waits (up to ``left_s``) and sends
    the same bytes again. The ``n``-th such wait of the call."""

    n: int
    left_s: float


class ProbeInProgress(UplinkUnavailable):
    """``SubmitProbe`` was still answered ``PROBE_IN_PROGRESS`` when the wait for the server's claim
    lease (plus the margin, or the nonce's deadline, whichever came first) was over."""

    code = "UPL_PROBE_IN_PROGRESS"


class UplinkRefused(UplinkError):
    """The server answered with a non-retryable error (e.g. the terminal is not recognised)."""

    code = "UPL_REFUSED"


class UplinkLockedOut(UplinkRefused):
    """The server refused a challenge because the subject or the terminal is locked out by its own
    failure count (``LOCKED_OUT`` in the status details)."""

    code = "UPL_LOCKED_OUT"


class ChallengeInvalid(UplinkError):
    code = "UPL_CHALLENGE_INVALID"


class ReceiptInvalid(UplinkError):
    """The server's receipt is not the shape a receipt has (a reason that is not a code, a verdict that
    is not one, an over-long or control-character detail): network input, refused before the session
    counts it, records it or shows it to the kiosk app."""

    code = "UPL_RECEIPT_INVALID"


class CapabilityRefused(UplinkRefused):
    """The server's policy for this channel demands a challenge this terminal's camera or screen
    cannot take (``CAPABILITY_MISSING`` in the status details): refused before the person poses,
    never a failed presentation."""

    code = "UPL_CAPABILITY_REFUSED"


@dataclass(frozen=True)
class UplinkConnection:
    endpoints: tuple[str, ...]
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    terminal_id: str
    deadline_s: float = 2.0
    retries: int = 3
    backoff_base_s: float = 0.05
    backoff_max_s: float = 1.0
    server_name: str | None = None       # the name the server certificate must carry, when endpoints are addresses
    client_key: Signer | None = None     # the mTLS key held by PKCS#11 or a TPM (then key_pem is empty)
    suites: tuple[str, ...] = STANDARD_SUITES  # suites this terminal accepts in a challenge ([keys] profile)
    claim_lease_s: float = 5.0           # the server's claim lease, when it does not say it (older servers)
    in_progress_margin_s: float = 1.0    # waited beyond the lease for a PROBE_IN_PROGRESS probe's copy to be judged


class UplinkClient:
    def __init__(self, s: UplinkConnection):
        if not s.endpoints:
            raise UplinkError("no uplink endpoints configured")
        if not s.suites or any(x not in SUITES for x in s.suites):
            raise UplinkError(f"uplink suites must be one or more of {', '.join(SUITES)}")
        self.s = s
        self._creds, self._handshake = client_credentials(s.ca_pem, s.cert_pem, s.client_key or s.key_pem)
        self._channels: dict[str, grpc.Channel] = {}
        self._preferred = 0
        self._lock = threading.Lock()
        self.attempts = 0

    def _stub(self, endpoint: str) -> pb_grpc.ProbeIngestStub:
        with self._lock:
            ch = self._channels.get(endpoint)
            if ch is None:
                opts: list[tuple[str, int | str]] = [
                    ("grpc.max_send_message_length", 16 << 20), ("grpc.max_receive_message_length", 1 << 20),
                    ("grpc.keepalive_time_ms", int(KEEPALIVE_S * 1000)),
                    ("grpc.keepalive_timeout_ms", int(max(self.s.deadline_s, 1.0) * 1000)),
                    ("grpc.keepalive_permit_without_calls", 0)]
                if self.s.server_name:
                    # The authority (HTTP/2 :authority, TLS SNI) the certificate is verified against.
                    opts.append(("grpc.default_authority", self.s.server_name))
                ch = grpc.secure_channel(endpoint, self._creds, options=opts)
                self._channels[endpoint] = ch
        return pb_grpc.ProbeIngestStub(ch)

    def _lease_s(self, exc: grpc.RpcError) -> float:
        """The claim lease the server said with its ``PROBE_IN_PROGRESS`` answer, else the configured one."""
        for key, value in getattr(exc, "trailing_metadata", lambda: None)() or ():
            if key == LEASE_TRAILER and isinstance(value, str) and value.isascii() and value.isdigit() \
                    and len(value) <= 8 and 1 <= int(value) <= MAX_LEASE_MS:
                return int(value) / 1000
        return self.s.claim_lease_s

    def _call(self, method: str, request, not_after: float | None = None):
        """``not_after``: a ``time.monotonic()`` past which no ``PROBE_IN_PROGRESS`` retry is sent (the
        nonce's deadline, ``SubmitProbe`` only)."""
        steps = self._calling(method, request, not_after)
        while True:
            try:
                next(steps)                                    # a wait notice: nobody to tell here
            except StopIteration as done:
                return done.value

    def _calling(self, method: str, request, not_after: float | None = None) -> Generator[InProgressWait, None, Any]:
        """``_call`` as a generator: before each wait for a ``PROBE_IN_PROGRESS`` probe's claim lease it
        yields an :class:`InProgressWait` (so the session can tell the person), and it returns the reply."""
        eps = self.s.endpoints
        if self._handshake is not None:
            self._handshake.last_error = None
        last: grpc.RpcError | None = None
        idx, failed, waits = self._preferred, 0, 0
        wait_until: float | None = None      # the end of the wait for a claim's lease (first PROBE_IN_PROGRESS)
        waited_from = 0.0
        while True:
            self.attempts += 1
            try:
                reply = getattr(self._stub(eps[idx]), method)(request, timeout=self.s.deadline_s)
                self._preferred = idx
                return reply
            except grpc.RpcError as exc:
                last = exc
                details = exc.details() or ""
                if exc.code() not in RETRYABLE:
                    if details.startswith("LOCKED_OUT:"):
                        raise UplinkLockedOut(f"{method}: {details[:300]}") from None
                    if details.startswith("CAPABILITY_MISSING:"):
                        raise CapabilityRefused(f"{method}: {details[:300]}") from None
                    raise UplinkRefused(f"{method} refused by {eps[idx]}: {exc.code().name}: {exc.details()}") from None
                if method == "SubmitProbe" and exc.code() == grpc.StatusCode.UNAVAILABLE \
                        and details.startswith(IN_PROGRESS):
                    # Copies of these very bytes are held by judges that died or stalled: wait for their
                    # lease to lapse, sending the same bytes again (never re-sealed), on this endpoint.
                    now = time.monotonic()
                    if wait_until is None:
                        waited_from = now
                        wait_until = now + self._lease_s(exc) + self.s.in_progress_margin_s
                        if not_after is not None:
                            wait_until = min(wait_until, not_after)
                    if now >= wait_until:
                        raise ProbeInProgress(f"{method}: copies of this probe were still being judged after "
                                              f"{now - waited_from:.1f} s and {waits + 1} answers; gave up at the "
                                              f"server's claim lease (or the nonce's deadline); {UNSURE[method]}"
                                              ) from None
                    cap = min(self.s.backoff_max_s, self.s.backoff_base_s * (2 ** min(waits, 30)))
                    waits += 1
                    yield InProgressWait(waits, max(0.0, wait_until - now))
                    time.sleep(min(random.uniform(cap / 2, cap), max(0.0, wait_until - now)))   # equal jitter
                    if not_after is not None and time.monotonic() >= not_after:
                        raise ProbeInProgress(f"{method}: copies of this probe were still being judged at the "
                                              f"nonce's deadline; {UNSURE[method]}") from None
                    continue
            if failed >= self.s.retries:
                break
            cap = min(self.s.backoff_max_s, self.s.backoff_base_s * (2 ** failed))
            failed += 1
            idx = (idx + 1) % len(eps)
            time.sleep(random.uniform(0, cap))          # full jitter
        if self._handshake is not None and self._handshake.last_error is not None:
            raise self._handshake.last_error                # the held key refused: say why, not just "unavailable"
        raise UplinkUnavailable(f"{method}: no ingest server answered after {failed + 1} attempts "
                                f"({last.code().name if last else '?'}); {UNSURE[method]}") from None

    def check_capabilities(self, channel: str, capabilities: pb.ChallengeCapabilities) -> tuple[str, ...]:
        """Before the person poses: the challenges the server will demand on ``channel`` of a terminal
        with these capabilities (names, e.g. ``("illumination", "projector")``); ``CapabilityRefused``
        when its policy demands one the terminal cannot take."""
        reply = self._call("CheckCapabilities", pb.CapabilityCheck(terminal_id=self.s.terminal_id, channel=channel,
                                                                   capabilities=capabilities))
        return challenge_names(reply.challenges)

    def begin(self, session_id: str, purpose: Purpose, min_lifetime_s: float = 0.0,
              subject_ref: str = "", capabilities: pb.ChallengeCapabilities | None = None,
              channel: str = "") -> pb.Challenge:
        """A challenge for this session. ``min_lifetime_s``: how long the session needs the nonce
        before it submits (challenge window and liveness); the submit's own deadlines and retries
        are added here. ``subject_ref`` (keyed pseudonym) lets the server apply its failure limits
        per subject. ``capabilities`` and ``channel``: what the terminal can be challenged with and
        the channel whose policy applies; the challenge's ``challenges`` must be among them."""
        # The stubs type EnumTypeWrapper.Value() as int; it is the pb.Purpose of that name.
        value = cast("pb.Purpose", pb.Purpose.Value(purpose.name))
        t0 = time.monotonic()
        ch = self._call("BeginCapture", pb.BeginCaptureRequest(terminal_id=self.s.terminal_id, session_id=session_id,
                                                               purpose=value, subject_ref=subject_ref,
                                                               capabilities=capabilities, channel=channel))
        # A repeated request gets the challenge issued to the first, which aged while this waited.
        waited_s = time.monotonic() - t0
        self.validate_challenge(ch, min_lifetime_s + self.submit_allowance_s() + waited_s, capabilities)
        return ch

    def submit_allowance_s(self) -> float:
        """The longest a submit can take: every attempt to its deadline, every backoff at its cap."""
        return (self.s.retries + 1) * self.s.deadline_s + self.s.retries * self.s.backoff_max_s

    def validate_challenge(self, ch: pb.Challenge, min_lifetime_s: float = 0.0,
                           capabilities: pb.ChallengeCapabilities | None = None) -> None:
        if len(ch.nonce) != 32:
            raise ChallengeInvalid("challenge nonce is not 32 bytes")
        names = challenge_names(ch.challenges)
        if not names:
            raise ChallengeInvalid("challenge names no physical challenge to run")
        if capabilities is not None:
            can = {"projector": capabilities.projector, "illumination": capabilities.illumination}
            missing = [n for n in names if not can.get(n)]
            if missing:
                raise ChallengeInvalid(f"challenge demands {', '.join(missing)}, which this terminal did not offer")
        now_ms = int(time.time() * 1000)
        if ch.expires_unix_ms <= now_ms:
            raise ChallengeInvalid("challenge already expired")
        if ch.hpke_suite not in self.s.suites or not ch.server_key_id:
            raise ChallengeInvalid(f"challenge names the suite {ch.hpke_suite[:40]!r}; this terminal accepts "
                                   f"{', '.join(self.s.suites)}")
        if not 8 <= ch.frames <= 120:
            raise ChallengeInvalid("challenge asks for an unreasonable number of frames")
        # The lifetime by the server's own clock when it says when it issued the nonce (no skew).
        lifetime_ms = ch.expires_unix_ms - (ch.issued_unix_ms or now_ms)
        if lifetime_ms < min_lifetime_s * 1000:
            raise ChallengeInvalid(f"challenge lives {lifetime_ms / 1000:g} s; this session needs "
                                   f"{min_lifetime_s:.1f} s to capture, judge and submit under it "
                                   "(raise the server's nonce_ttl_s)")
        try:
            load_public_key(ch.hpke_suite, ch.server_public_key)
        except CaptureAgentError as exc:
            raise ChallengeInvalid(exc.message) from None

    @staticmethod
    def nonce_deadline(ch: pb.Challenge, asked_at: float) -> float:
        """The ``time.monotonic()`` until which the challenge's nonce certainly lives: its lifetime (by
        the server's clock, ``expires - issued``; ``expires`` against this clock when the server does
        not say when it issued it) counted from ``asked_at``, the monotonic time the ``BeginCapture``
        call started (the nonce was issued after it, so this is never later than its expiry)."""
        now_ms = int(time.time() * 1000)
        lifetime_ms = ch.expires_unix_ms - (ch.issued_unix_ms or now_ms)
        if not ch.issued_unix_ms:
            return time.monotonic() + max(0, lifetime_ms) / 1000
        return asked_at + max(0, lifetime_ms) / 1000

    def submit(self, sealed: pb.SealedProbe, probe_id: str, not_after: float | None = None) -> pb.Receipt:
        """The receipt for this sealed probe. ``not_after``: the nonce's deadline (``nonce_deadline``),
        past which a ``PROBE_IN_PROGRESS`` answer is not waited out."""
        steps = self.submitting(sealed, probe_id, not_after)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    def submitting(self, sealed: pb.SealedProbe, probe_id: str,
                   not_after: float | None = None) -> Generator[InProgressWait, None, pb.Receipt]:
        """``submit`` as a generator: it yields an :class:`InProgressWait` before each wait for copies of
        the probe the server is still judging (``PROBE_IN_PROGRESS``), so the session can tell the
        person at the terminal to wait (``events.PLEASE_WAIT``), and returns the receipt."""
        r = yield from self._calling("SubmitProbe", sealed, not_after=not_after)
        if r.probe_id != probe_id:
            raise UplinkError("receipt is for another probe")
        check_receipt(r)
        return r

    def close(self) -> None:
        with self._lock:
            for ch in self._channels.values():
                ch.close()
            self._channels.clear()
        if self._handshake is not None:
            self._handshake.close()


RECEIPT_REASON = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
RECEIPT_VERDICTS = frozenset({"", "live", "attack", "inconclusive"})
MAX_RECEIPT_DETAIL = 1024              # the reference server sends at most 300 characters


def check_receipt(r: pb.Receipt) -> None:
    """Refuse a receipt whose reason is not a code (capitals, digits, ``_``; at most 64), whose
    liveness verdict is not one, or whose detail is longer than ``MAX_RECEIPT_DETAIL`` characters or
    holds control characters other than tabs and line breaks (a terminal escape; :class:`ReceiptInvalid`).
    Its values are never quoted in the error."""
    if not RECEIPT_REASON.fullmatch(r.reason):
        raise ReceiptInvalid("the server's receipt has a reason that is not a code")
    if r.liveness_verdict not in RECEIPT_VERDICTS:
        raise ReceiptInvalid("the server's receipt has a liveness verdict that is not one")
    if len(r.detail) > MAX_RECEIPT_DETAIL or any((ord(c) < 32 and c not in "\t\n") or 127 <= ord(c) < 160
                                                  for c in r.detail):
        raise ReceiptInvalid(f"the server's receipt has a detail over {MAX_RECEIPT_DETAIL} characters or with "
                             "control characters")


def challenge_names(kinds) -> tuple[str, ...]:
    """``ChallengeKind`` values as the names ``agent.liveness.challenge.Kind`` uses; an unknown value is
    ``ChallengeInvalid`` (a server asking for a challenge this agent does not know is not obeyed)."""
    out = []
    for k in kinds:
        if k not in (pb.PROJECTOR, pb.ILLUMINATION):
            raise ChallengeInvalid(f"the server demands an unknown challenge ({int(k)})")
        out.append(pb.ChallengeKind.Name(k).lower())
    return tuple(sorted(set(out)))


def capabilities_to_proto(kinds, *, exposure_lock: bool = False, depth_fps: float = 0.0,
                          color_fps: float = 0.0) -> pb.ChallengeCapabilities:
    """What a terminal can be challenged with, as ``CheckCapabilities`` and ``BeginCapture`` carry it
    (``kinds``: challenge names)."""
    names = {str(getattr(k, "value", k)) for k in kinds}
    return pb.ChallengeCapabilities(projector="projector" in names, illumination="illumination" in names,
                                    exposure_lock=exposure_lock, depth_fps=depth_fps, color_fps=color_fps)
