"""Uplink client: mutual TLS to the ingest server(s), deadlines, bounded retries, failover.

* TLS: the server must present a certificate from the pinned CA (``ca_pem``: only that CA is
  trusted, not the system store); the agent presents the terminal's certificate.
* Every call has a deadline. ``UNAVAILABLE`` and ``DEADLINE_EXCEEDED`` are retried up to ``retries``
  times with exponential backoff and full jitter, moving to the next endpoint each time (failover);
  anything else is final. ``SubmitProbe`` is idempotent by probe id, so a retry after a lost reply
  gets the original receipt.
* Nothing is queued to disk: when no server answers, the call fails with ``UPL_UNAVAILABLE`` and the
  session fails with it. The sealed probe dies with the session.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import cast

import grpc

from agent.purpose import Purpose
from agent.uplink.seal import SUITES, load_public_key
from drivers.errors import CaptureAgentError
from proto.capture_agent.v1 import ingest_pb2 as pb
from proto.capture_agent.v1 import ingest_pb2_grpc as pb_grpc

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class UplinkError(CaptureAgentError):
    code = "UPL_ERROR"


class UplinkUnavailable(UplinkError):
    code = "UPL_UNAVAILABLE"


class UplinkRefused(UplinkError):
    """The server answered with a non-retryable error (e.g. the terminal is not recognised)."""

    code = "UPL_REFUSED"


class ChallengeInvalid(UplinkError):
    code = "UPL_CHALLENGE_INVALID"


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
    server_name: str | None = None       # TLS name to verify, when endpoints are IP addresses


class UplinkClient:
    def __init__(self, s: UplinkConnection):
        if not s.endpoints:
            raise UplinkError("no uplink endpoints configured")
        self.s = s
        self._creds = grpc.ssl_channel_credentials(root_certificates=s.ca_pem, private_key=s.key_pem,
                                                   certificate_chain=s.cert_pem)
        self._channels: dict[str, grpc.Channel] = {}
        self._preferred = 0
        self._lock = threading.Lock()
        self.attempts = 0

    def _stub(self, endpoint: str) -> pb_grpc.ProbeIngestStub:
        with self._lock:
            ch = self._channels.get(endpoint)
            if ch is None:
                opts: list[tuple[str, int | str]] = [("grpc.max_send_message_length", 16 << 20),
                                                     ("grpc.max_receive_message_length", 1 << 20)]
                if self.s.server_name:
                    opts.append(("grpc.ssl_target_name_override", self.s.server_name))
                ch = grpc.secure_channel(endpoint, self._creds, options=opts)
                self._channels[endpoint] = ch
        return pb_grpc.ProbeIngestStub(ch)

    def _call(self, method: str, request):
        eps = self.s.endpoints
        last: grpc.RpcError | None = None
        for attempt in range(self.s.retries + 1):
            idx = (self._preferred + attempt) % len(eps)
            self.attempts += 1
            try:
                reply = getattr(self._stub(eps[idx]), method)(request, timeout=self.s.deadline_s)
                self._preferred = idx
                return reply
            except grpc.RpcError as exc:
                last = exc
                if exc.code() not in RETRYABLE:
                    raise UplinkRefused(f"{method} refused by {eps[idx]}: {exc.code().name}: {exc.details()}") from None
            if attempt < self.s.retries:
                cap = min(self.s.backoff_max_s, self.s.backoff_base_s * (2 ** attempt))
                time.sleep(random.uniform(0, cap))          # full jitter
        raise UplinkUnavailable(f"{method}: no ingest server answered after {self.s.retries + 1} attempts "
                                f"({last.code().name if last else '?'}); nothing was stored") from None

    def begin(self, session_id: str, purpose: Purpose) -> pb.Challenge:
        # The stubs type EnumTypeWrapper.Value() as int; it is the pb.Purpose of that name.
        value = cast("pb.Purpose", pb.Purpose.Value(purpose.name))
        ch = self._call("BeginCapture", pb.BeginCaptureRequest(terminal_id=self.s.terminal_id, session_id=session_id,
                                                               purpose=value))
        self.validate_challenge(ch)
        return ch

    @staticmethod
    def validate_challenge(ch: pb.Challenge) -> None:
        if len(ch.nonce) != 32:
            raise ChallengeInvalid("challenge nonce is not 32 bytes")
        if ch.expires_unix_ms <= int(time.time() * 1000):
            raise ChallengeInvalid("challenge already expired")
        if ch.hpke_suite not in SUITES or not ch.server_key_id:
            raise ChallengeInvalid(f"challenge names an unknown suite {ch.hpke_suite[:40]!r}")
        if not 8 <= ch.frames <= 120:
            raise ChallengeInvalid("challenge asks for an unreasonable number of frames")
        try:
            load_public_key(ch.hpke_suite, ch.server_public_key)
        except CaptureAgentError as exc:
            raise ChallengeInvalid(exc.message) from None

    def submit(self, sealed: pb.SealedProbe, probe_id: str) -> pb.Receipt:
        r = self._call("SubmitProbe", sealed)
        if r.probe_id != probe_id:
            raise UplinkError("receipt is for another probe")
        return r

    def close(self) -> None:
        with self._lock:
            for ch in self._channels.values():
                ch.close()
            self._channels.clear()
