"""Reference probe ingest server (tests, the demo, HIL rigs) — and the specification, in code, of
what a bank's server must check before it believes a probe.

Per ``SubmitProbe``, in order, each failure with its own receipt reason:

0. the message parses at all (``MALFORMED``: parsed here, not by gRPC, so garbage gets a receipt);
1. the header parses and is version 1 (``MALFORMED``); a probe id seen before returns the same
   receipt if the bytes are identical and it comes within ``retry_window_s`` of the first
   (idempotent retries after a lost reply), and ``REPLAYED`` otherwise;
2. the mTLS client certificate's common name is a registered terminal and equals the header's
   terminal id (``UNKNOWN_TERMINAL``);
3. the terminal's signature over header and ciphertext verifies with its registered key (``TAMPERED``);
4. the nonce was issued by this server to this terminal (``EXPIRED`` if unknown or past its expiry)
   for this session (``UNBOUND``) and has not been used (``REPLAYED``); it is consumed now;
5. the probe is sealed to a server key this server holds (``WRONG_KEY``) and decrypts with the header
   bound (``TAMPERED``);
6. the payload parses and is well formed: crop sizes, crop SHA-256s, 468 landmarks, a liveness
   report whose frame digests include the crops' frameset (``MALFORMED`` / ``UNBOUND``);
7. the liveness verdict is ``live`` under a passed challenge (``NOT_LIVE`` otherwise).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import deque
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from agent.security.keys import public_key_id, verify_signature
from agent.uplink.seal import ProbeRejected, ServerKey, open_sealed, read_header, signed_bytes
from proto.capture_agent.v1 import ingest_pb2 as pb

MAX_MESSAGE = 16 << 20
FORMATS = {"bgr8": 3, "z16": 2, "y8": 1}
LANDMARKS = 468


@dataclass
class Terminal:
    terminal_id: str
    public_key: Any                 # the terminal's signing key (cryptography public key)


@dataclass
class _Nonce:
    terminal_id: str
    session_id: str
    expires: float
    used_by: str | None = None


class NonceStore:
    """Issued nonces with expiry; each can be consumed once (anti-replay)."""

    def __init__(self, ttl_s: float, clock=time.time):
        self.ttl_s, self.clock = ttl_s, clock
        self._items: dict[bytes, _Nonce] = {}
        self._lock = threading.Lock()

    def issue(self, terminal_id: str, session_id: str = "") -> tuple[bytes, float]:
        nonce = os.urandom(32)
        with self._lock:
            self._prune()
            exp = self.clock() + self.ttl_s
            self._items[nonce] = _Nonce(terminal_id, session_id, exp)
        return nonce, exp

    def consume(self, nonce: bytes, terminal_id: str, probe_id: str, session_id: str = "") -> None:
        with self._lock:
            item = self._items.get(nonce)
            if item is None or item.terminal_id != terminal_id:
                raise ProbeRejected("EXPIRED", "nonce was not issued to this terminal or has been purged")
            if item.used_by is not None:
                raise ProbeRejected("REPLAYED", "nonce already used by another probe")
            if self.clock() > item.expires:
                raise ProbeRejected("EXPIRED", "nonce expired before the probe arrived")
            if item.session_id != session_id:
                raise ProbeRejected("UNBOUND", "the nonce was issued for another capture session")
            item.used_by = probe_id

    def __len__(self) -> int:
        return len(self._items)

    def _prune(self) -> None:
        now = self.clock()
        # Keep used nonces until long after expiry so a replay is told REPLAYED, not EXPIRED.
        for k in [k for k, v in self._items.items() if now > v.expires + 10 * self.ttl_s]:
            del self._items[k]


@dataclass
class ServerState:
    terminals: dict[str, Terminal]
    keys: dict[str, ServerKey]                 # by key id
    current_key_id: str
    nonce_ttl_s: float = 30.0
    frames: int = 32
    retry_window_s: float = 10.0               # identical resubmits within this get the first receipt
    keep_sealed: int = 0                       # HIL/demo: keep the last N accepted sealed probes (ciphertext)
    nonces: NonceStore = field(init=False)
    receipts: dict[str, tuple[bytes, pb.Receipt, float]] = field(default_factory=dict)
    accepted: deque = field(default_factory=lambda: deque(maxlen=1000))   # non-biometric summaries
    sealed: deque = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.nonces = NonceStore(self.nonce_ttl_s)
        self.sealed = deque(maxlen=max(self.keep_sealed, 1))

    def prune_receipts(self, now: float) -> None:
        # Receipts outlive their nonces by far, so a late replay is still told REPLAYED.
        horizon = now - 10 * max(self.nonce_ttl_s, self.retry_window_s)
        for k in [k for k, v in self.receipts.items() if v[2] < horizon]:
            del self.receipts[k]


def peer_terminal(context) -> str | None:
    names = context.auth_context().get("x509_common_name") or []
    return names[0].decode() if names else None


def validate_payload(payload: pb.ProbePayload) -> dict[str, Any]:
    """Schema and binding checks of a decrypted payload; returns the liveness report."""
    for name in ("color", "depth", "ir"):
        c = getattr(payload, name)
        if not payload.HasField(name):
            if name == "ir":
                continue
            raise ProbeRejected("MALFORMED", f"probe has no {name} crop")
        if c.format not in FORMATS or not (8 <= c.width <= 4096 and 8 <= c.height <= 4096):
            raise ProbeRejected("MALFORMED", f"{name} crop has a bad format or size")
        if len(c.pixels) != c.width * c.height * FORMATS[c.format]:
            raise ProbeRejected("MALFORMED", f"{name} crop pixel count does not match its size")
        if hashlib.sha256(c.pixels).digest() != c.sha256:
            raise ProbeRejected("TAMPERED", f"{name} crop does not match its digest")
    if (payload.depth.width, payload.depth.height) != (payload.color.width, payload.color.height):
        raise ProbeRejected("MALFORMED", "depth crop is not aligned to the colour crop")
    if len(payload.landmarks) != 3 * LANDMARKS:
        raise ProbeRejected("MALFORMED", f"probe needs {LANDMARKS} landmarks")
    try:
        lv = json.loads(payload.liveness_json)
        json.loads(payload.quality_json or "{}")
        digests = lv["frame_digests"]
        ok = isinstance(lv["verdict"], str) and isinstance(digests, list) and all(isinstance(d, str) for d in digests)
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise ProbeRejected("MALFORMED", "liveness report is missing or malformed")
    if payload.frame_digest not in digests:
        raise ProbeRejected("UNBOUND", "the crops' frameset is not among the frames liveness judged")
    return lv


SERVICE = "capture_agent.v1.ProbeIngest"


class Ingest:
    """Servicer; requests arrive as bytes and are parsed here (see ``handler``)."""

    def __init__(self, state: ServerState):
        self.s = state

    def handler(self) -> grpc.GenericRpcHandler:
        ser = lambda m: m.SerializeToString()  # noqa: E731
        return grpc.method_handlers_generic_handler(SERVICE, {
            "BeginCapture": grpc.unary_unary_rpc_method_handler(self._begin_raw, response_serializer=ser),
            "SubmitProbe": grpc.unary_unary_rpc_method_handler(self._submit_raw, response_serializer=ser),
        })

    def _begin_raw(self, raw: bytes, context):
        try:
            request = pb.BeginCaptureRequest.FromString(raw)
        except DecodeError:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED: not a BeginCaptureRequest")
        return self.BeginCapture(request, context)

    def _submit_raw(self, raw: bytes, context):
        try:
            request = pb.SealedProbe.FromString(raw)
        except DecodeError:
            return pb.Receipt(accepted=False, reason="MALFORMED", detail="not a SealedProbe",
                              received_unix_ms=int(time.time() * 1000))
        return self.SubmitProbe(request, context)

    def BeginCapture(self, request, context):
        peer = peer_terminal(context)
        if peer is None or peer not in self.s.terminals or peer != request.terminal_id:
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          "UNKNOWN_TERMINAL: the client certificate does not name this registered terminal")
        if not request.session_id or len(request.session_id) > 64:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED: session_id must be 1-64 characters")
        nonce, exp = self.s.nonces.issue(peer, request.session_id)
        key = self.s.keys[self.s.current_key_id]
        return pb.Challenge(nonce=nonce, expires_unix_ms=int(exp * 1000), server_key_id=key.key_id,
                            server_public_key=key.public_bytes, hpke_suite=key.suite, frames=self.s.frames)

    def SubmitProbe(self, request, context):
        now = time.time()
        now_ms = int(now * 1000)
        raw = request.SerializeToString(deterministic=True)
        digest = hashlib.sha256(raw).digest()
        probe_id = ""
        try:
            header = read_header(request)
            probe_id = header.probe_id
            with self.s.lock:
                seen = self.s.receipts.get(probe_id)
            if seen is not None:
                if seen[0] == digest and now - seen[2] <= self.s.retry_window_s:
                    return seen[1]                      # idempotent retry after a lost reply
                raise ProbeRejected("REPLAYED", "this probe was submitted before" if seen[0] == digest
                                    else "probe id already used with different content")
            peer = peer_terminal(context)
            term = self.s.terminals.get(header.terminal_id)
            if term is None or peer != header.terminal_id:
                raise ProbeRejected("UNKNOWN_TERMINAL", "terminal is not registered or is not the certificate's")
            if header.signer_key_id != public_key_id(term.public_key):
                raise ProbeRejected("TAMPERED", "probe names a signing key the terminal is not registered with")
            # Signature before the nonce, so garbage cannot burn nonces; the nonce before decryption.
            if not verify_signature(term.public_key, header.signature_algorithm,
                                    signed_bytes(request.header, request.ciphertext), request.signature):
                raise ProbeRejected("TAMPERED", "terminal signature does not verify over header and ciphertext")
            self.s.nonces.consume(header.nonce, header.terminal_id, probe_id, header.session_id)
            payload = open_sealed(request, header, self.s.keys)
            lv = validate_payload(payload)
            challenge = lv.get("challenge") or {}
            if challenge and challenge.get("nonce_sha256") != hashlib.sha256(header.nonce).hexdigest():
                raise ProbeRejected("UNBOUND", "liveness ran under another challenge than this probe's nonce")
            if lv["verdict"] != "live" or not lv.get("challenge_used") or not challenge.get("passed"):
                raise ProbeRejected("NOT_LIVE", f"liveness verdict {lv['verdict']!r}"
                                    f"{'' if challenge.get('passed') else ', challenge not passed'}")
            receipt = pb.Receipt(probe_id=probe_id, accepted=True, reason="OK", received_unix_ms=now_ms,
                                 liveness_verdict=lv["verdict"])
            with self.s.lock:
                self.s.accepted.append({"probe_id": probe_id, "terminal_id": header.terminal_id,
                                        "session_id": header.session_id, "counter": header.counter,
                                        "purpose": pb.Purpose.Name(header.purpose), "device": payload.device.backend,
                                        "color_crop": [payload.color.width, payload.color.height]})
                if self.s.keep_sealed:
                    self.s.sealed.append(raw)
            payload.Clear()
        except ProbeRejected as exc:
            receipt = pb.Receipt(probe_id=probe_id, accepted=False, reason=exc.reason, detail=exc.message[:300],
                                 received_unix_ms=now_ms)
        if probe_id:
            with self.s.lock:
                self.s.prune_receipts(now)
                self.s.receipts.setdefault(probe_id, (digest, receipt, now))
        return receipt


@dataclass
class ServerTLS:
    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: bytes


def serve(state: ServerState, tls: ServerTLS, address: str = "127.0.0.1:0", workers: int = 8):
    """Start the server; returns ``(server, port)``. Mutual TLS is required; there is no plaintext port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                  ("grpc.max_send_message_length", 1 << 20)])
    server.add_generic_rpc_handlers((Ingest(state).handler(),))
    hs = health.HealthServicer()
    hs.set("", health_pb2.HealthCheckResponse.SERVING)
    hs.set("capture_agent.v1.ProbeIngest", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    creds = grpc.ssl_server_credentials([(tls.key_pem, tls.cert_pem)], root_certificates=tls.client_ca_pem,
                                        require_client_auth=True)
    port = server.add_secure_port(address, creds)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    return server, port
