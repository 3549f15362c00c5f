"""A client of the local API, for the kiosk app's developers, the demo and tests.

``capture(socket_path, purpose=..., consent_ref=...)`` yields the agent's events as plain dicts;
a refused call raises :class:`LocalApiError` with the agent's stable code.
"""

from __future__ import annotations

from typing import Iterator

import grpc

from drivers.errors import CaptureAgentError
from proto.capture_agent.v1 import capture_pb2 as lpb
from proto.capture_agent.v1 import capture_pb2_grpc as lpb_grpc

PURPOSES = {"enroll": lpb.ENROLL, "verify": lpb.VERIFY}


class LocalApiError(CaptureAgentError):
    code = "LAPI_ERROR"


def error_from_rpc(exc: grpc.RpcError) -> LocalApiError:
    code = dict(exc.trailing_metadata() or ()).get("ca-error-code") if hasattr(exc, "trailing_metadata") else None
    details = exc.details() or ""
    if code is None:
        code = f"LAPI_{exc.code().name}"          # transport-level: unreachable socket, size limit, ...
    elif details.startswith(code + ": "):
        details = details[len(code) + 2:]
    err = LocalApiError(details or exc.code().name, code=code)
    err.status = exc.code()
    return err


def event_dict(ev: lpb.CaptureEvent) -> dict:
    kind = ev.WhichOneof("event")
    body = getattr(ev, kind)
    if kind == "prompt":
        d = {"code": body.code, "zh": body.text_zh, "en": body.text_en}
    elif kind == "progress":
        d = {"percent": body.percent, "stage": body.stage}
    elif kind == "result":
        d = {"accepted": body.accepted, "reason": body.reason, "probe_id": body.probe_id,
             "liveness_verdict": body.liveness_verdict, "detail": body.detail, "timings_ms": dict(body.timings_ms)}
    else:
        d = {"code": body.code, "message": body.message}
    return {"session_id": ev.session_id, kind: d}


class LocalClient:
    def __init__(self, socket_path: str, timeout_s: float = 60.0):
        self.channel = grpc.insecure_channel(f"unix:{socket_path}")
        self.stub = lpb_grpc.CaptureServiceStub(self.channel)
        self.timeout_s = timeout_s

    def capture(self, purpose: str, consent_ref: str, channel: str = "kiosk", subject_ref: str = "",
                business_ref: str = "") -> Iterator[dict]:
        req = lpb.CaptureRequest(purpose=PURPOSES.get(purpose, lpb.CAPTURE_PURPOSE_UNSPECIFIED), channel=channel,
                                 consent_ref=consent_ref, subject_ref=subject_ref, business_ref=business_ref)
        try:
            for ev in self.stub.Capture(req, timeout=self.timeout_s):
                yield event_dict(ev)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    def cancel(self, session_id: str) -> bool:
        try:
            return self.stub.Cancel(lpb.CancelRequest(session_id=session_id), timeout=5).cancelled
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "LocalClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
