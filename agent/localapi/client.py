"""A client of the local API, for the kiosk app's developers, the demo and tests.

``LocalClient(socket).capture(CaptureRequest(...))`` returns a :class:`CaptureCall`: iterate it
for the agent's typed events (``agent.session.events``); its ``session_id`` is known from the first
event on (for ``cancel``). A refused call raises :class:`LocalApiError` with the agent's stable code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import grpc

from agent.localapi.convert import event_from_proto, request_to_proto
from agent.session.events import CaptureEvent
from agent.session.request import CaptureRequest
from drivers.errors import CaptureAgentError
from proto.capture_agent.v1 import capture_pb2 as lpb
from proto.capture_agent.v1 import capture_pb2_grpc as lpb_grpc


class LocalApiError(CaptureAgentError):
    code = "LAPI_ERROR"
    status: grpc.StatusCode | None = None          # the call's gRPC status


def error_from_rpc(exc: grpc.RpcError) -> LocalApiError:
    # A client's RpcError is also the failed grpc.Call: its trailing metadata is (key, value) pairs
    # (types-grpcio describes RpcError.trailing_metadata() otherwise).
    metadata = dict(cast(grpc.Call, exc).trailing_metadata() or ()) if hasattr(exc, "trailing_metadata") else {}
    code = metadata.get("ca-error-code")
    details = exc.details() or ""
    if not isinstance(code, str):                  # absent (a binary value is never sent)
        code = f"LAPI_{exc.code().name}"          # transport-level: unreachable socket, size limit, ...
    elif details.startswith(code + ": "):
        details = details[len(code) + 2:]
    err = LocalApiError(details or exc.code().name, code=code)
    err.status = exc.code()
    return err


class CaptureCall:
    """One ``Capture`` call: iterate for its events."""

    def __init__(self, stream):
        self._stream = stream
        self.session_id = ""

    def __iter__(self) -> Iterator[CaptureEvent]:
        try:
            for msg in self._stream:
                self.session_id = msg.session_id
                yield event_from_proto(msg)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    def cancel(self) -> None:
        """Hang up: the agent cancels the capture."""
        self._stream.cancel()


class LocalClient:
    def __init__(self, socket_path: str, timeout_s: float = 60.0):
        self.channel = grpc.insecure_channel(f"unix:{socket_path}")
        self.stub = lpb_grpc.CaptureServiceStub(self.channel)
        self.timeout_s = timeout_s

    def capture(self, req: CaptureRequest) -> CaptureCall:
        return CaptureCall(self.stub.Capture(request_to_proto(req), timeout=self.timeout_s))

    def cancel(self, session_id: str) -> bool:
        try:
            return self.stub.Cancel(lpb.CancelRequest(session_id=session_id), timeout=5).cancelled
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> LocalClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
