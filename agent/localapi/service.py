"""The local API: ``capture_agent.v1.local.CaptureService`` for the kiosk's business app, over a
Unix socket guarded by peer credentials (``peergate.py``).

The servicer only converts protobuf ⇄ domain types (``convert.py``) and calls
``agent.session.capture.run_capture``; no capture logic lives here. Requests are parsed here, not
by gRPC, so that a malformed message gets our own stable code. Every refusal carries its code twice:
as the prefix of the status details (``"SES_CONSENT_REQUIRED: ..."``) and as the trailing metadata
``ca-error-code``.

| situation | gRPC status | code |
|---|---|---|
| peer not in the allowlist | PERMISSION_DENIED | ``LAPI_PEER_NOT_ALLOWED`` |
| bytes that are not a request | INVALID_ARGUMENT | ``LAPI_MALFORMED`` |
| request larger than ``max_message_bytes`` | RESOURCE_EXHAUSTED | (gRPC's own limit) |
| no or malformed ``consent_ref`` | FAILED_PRECONDITION | ``SES_CONSENT_REQUIRED`` |
| bad purpose, channel or reference | INVALID_ARGUMENT | ``SES_BAD_REQUEST`` |
| a capture is already running | RESOURCE_EXHAUSTED | ``SES_BUSY`` |
| the agent is shutting down | UNAVAILABLE | ``SES_SHUTTING_DOWN`` |

Once a capture has started, its failures arrive as an ``error`` event in the stream (codes from
``agent.session``, the uplink ``UPL_*``, the liveness worker ``LIV_*`` and the drivers ``DRV_*``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from concurrent import futures

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from agent import allocator
from agent.localapi.convert import event_to_proto, request_from_proto
from agent.localapi.peergate import GateLimits, PeerGate, PeerPolicy, RateLimitedLog, resolve_group
from agent.session.capture import SessionDeps, run_capture
from agent.session.errors import BadRequest, Busy, ConsentRequired
from agent.session.request import validate
from drivers.errors import CaptureAgentError
from proto.capture_agent.v1 import capture_pb2 as lpb

SERVICE = "capture_agent.v1.local.CaptureService"
STATUS: dict[type[CaptureAgentError], grpc.StatusCode] = {
    ConsentRequired: grpc.StatusCode.FAILED_PRECONDITION, BadRequest: grpc.StatusCode.INVALID_ARGUMENT,
    Busy: grpc.StatusCode.RESOURCE_EXHAUSTED}


def abort(context, status: grpc.StatusCode, code: str, message: str):
    context.set_trailing_metadata((("ca-error-code", code),))
    context.abort(status, f"{code}: {message}")


def _parse(message_cls, raw: bytes, context):
    try:
        return message_cls.FromString(raw)
    except (DecodeError, RuntimeError):
        abort(context, grpc.StatusCode.INVALID_ARGUMENT, "LAPI_MALFORMED", f"not a valid {message_cls.__name__}")


class CaptureService:
    """Servicer: one capture at a time; ``Cancel`` by session id; a caller who hangs up cancels."""

    def __init__(self, deps: SessionDeps):
        self.deps = deps
        self._busy = threading.Lock()
        self._running: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.closing = False

    def Capture(self, raw: bytes, context):
        msg = _parse(lpb.CaptureRequest, raw, context)
        req = request_from_proto(msg)
        if self.closing:
            abort(context, grpc.StatusCode.UNAVAILABLE, "SES_SHUTTING_DOWN", "the agent is stopping")
        try:
            validate(req)
        except CaptureAgentError as exc:
            self.deps.record("request_refused", code=exc.code)
            abort(context, STATUS.get(type(exc), grpc.StatusCode.INVALID_ARGUMENT), exc.code, exc.message)
        if not self._busy.acquire(blocking=False):
            abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, Busy.code,
                  "another capture is running on this terminal")
        sid = str(uuid.uuid4())
        cancel = threading.Event()
        context.add_callback(cancel.set)               # the caller hung up or its deadline passed
        with self._lock:
            self._running[sid] = cancel
        try:
            for ev in run_capture(self.deps, req, cancel, session_id=sid):
                yield event_to_proto(sid, ev)
        finally:
            with self._lock:
                self._running.pop(sid, None)
            self._busy.release()
            # The session's peak (its challenge window's framesets) is free now; without this the
            # allocator keeps it resident, and each arena a later session lands in adds its own.
            # After the release: a next capture need not wait the few milliseconds this takes.
            allocator.trim()

    def Cancel(self, raw: bytes, context):
        msg = _parse(lpb.CancelRequest, raw, context)
        with self._lock:
            ev = self._running.get(msg.session_id)
        if ev is not None:
            ev.set()
        return lpb.CancelReply(cancelled=ev is not None)

    def cancel_all(self) -> None:
        self.closing = True
        with self._lock:
            for ev in self._running.values():
                ev.set()

    def handler(self) -> grpc.GenericRpcHandler:
        ser = lambda m: m.SerializeToString()  # noqa: E731
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Capture": grpc.unary_stream_rpc_method_handler(self.Capture, response_serializer=ser),
            "Cancel": grpc.unary_unary_rpc_method_handler(self.Cancel, response_serializer=ser),
        })


class _Refuse(grpc.GenericRpcHandler):
    """Every method of every service: PERMISSION_DENIED with a stable code."""

    def service(self, handler_call_details):
        def deny(_request_iterator, context):
            abort(context, grpc.StatusCode.PERMISSION_DENIED, "LAPI_PEER_NOT_ALLOWED",
                  "this user is not allowed to use the capture agent (local_api.allowed_uids / allowed_groups)")
        return grpc.stream_stream_rpc_method_handler(deny)


class LocalApiServer:
    """Owns the public socket (via the gate), the two private gRPC servers, and ``stop(grace)``."""

    def __init__(self, deps: SessionDeps, socket_path: str, *, allowed_uids=(), allowed_groups=(), mode: int = 0o660,
                 group: str = "", max_message_bytes: int = 65536, max_connections: int = 16,
                 max_connections_per_uid: int = 8, idle_timeout_s: float = 300.0,
                 record: Callable[..., object] | None = None, health_servicer: health.HealthServicer | None = None):
        self.service = CaptureService(deps)
        self._dir = tempfile.mkdtemp(prefix="ca-lapi-")        # 0700: only the agent reaches the backends
        opts = [("grpc.max_receive_message_length", max_message_bytes), ("grpc.max_send_message_length", 1 << 20)]
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="local-api"),
                                   options=opts, maximum_concurrent_rpcs=32)
        self._server.add_generic_rpc_handlers((self.service.handler(),))
        # The daemon's servicer reports readiness and the camera (agent/observe/health.py); without
        # one, the API says SERVING while it runs.
        self.health = health_servicer or health.HealthServicer()
        if health_servicer is None:
            self.health.set("", health_pb2.HealthCheckResponse.SERVING)
            self.health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        allowed = os.path.join(self._dir, "allowed.sock")
        refused = os.path.join(self._dir, "refused.sock")
        self._server.add_insecure_port(f"unix:{allowed}")
        self._refuser = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=opts)
        self._refuser.add_generic_rpc_handlers((_Refuse(),))
        self._refuser.add_insecure_port(f"unix:{refused}")
        policy = PeerPolicy.from_settings(allowed_uids, allowed_groups)
        on_refused = RateLimitedLog(record) if record is not None else None
        self._gate = PeerGate(socket_path, allowed, refused, policy, mode=mode,
                              group=resolve_group(group) if group else None, on_refused=on_refused,
                              limits=GateLimits(max_connections=max_connections,
                                                max_per_uid=min(max_connections_per_uid, max_connections),
                                                idle_timeout_s=idle_timeout_s))
        self.socket_path = socket_path

    def start(self) -> None:
        self._server.start()
        self._refuser.start()
        self._gate.start()

    def stop(self, grace: float = 5.0) -> None:
        """Stop taking calls, cancel running captures, let them report, then close."""
        self.health.enter_graceful_shutdown()
        self._gate.close_listener()
        self.service.cancel_all()
        if self.service._busy.acquire(timeout=grace):     # the running capture has sent its last event
            self.service._busy.release()
        self._server.stop(grace).wait(grace + 1)
        self._gate.stop()
        self._refuser.stop(0)
        shutil.rmtree(self._dir, ignore_errors=True)
