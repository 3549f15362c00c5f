"""The local API's messages and the session's types, both ways: the one place they are mapped.

The service (``service.py``) turns requests into a ``CaptureRequest`` and events into
``CaptureEvent`` messages; the client (``client.py``) turns those messages back into events.
"""

from __future__ import annotations

from typing import cast

from agent.purpose import Purpose
from agent.quality.prompts import Prompt
from agent.session.events import CaptureEvent, Error, Illumination, Progress, Result
from agent.session.request import CaptureRequest
from proto.capture_agent.v1 import capture_pb2 as lpb

DEFAULT_CHANNEL = "kiosk"
MAX_DETAIL = 300
MAX_MESSAGE = 500


def request_from_proto(msg: lpb.CaptureRequest) -> CaptureRequest:
    """An unknown or unspecified purpose becomes None, which ``validate`` refuses with its code."""
    purpose = (Purpose.from_name(lpb.CapturePurpose.Name(msg.purpose)) if msg.purpose in lpb.CapturePurpose.values()
               else None)
    return CaptureRequest(purpose=purpose, channel=msg.channel or DEFAULT_CHANNEL, consent_ref=msg.consent_ref,
                          subject_ref=msg.subject_ref, business_ref=msg.business_ref)


def request_to_proto(req: CaptureRequest) -> lpb.CaptureRequest:
    # The stubs type EnumTypeWrapper.Value() as int; it is the CapturePurpose of that name.
    purpose = (cast("lpb.CapturePurpose", lpb.CapturePurpose.Value(req.purpose.name)) if req.purpose
               else lpb.CAPTURE_PURPOSE_UNSPECIFIED)
    return lpb.CaptureRequest(purpose=purpose, channel=req.channel, consent_ref=req.consent_ref,
                              subject_ref=req.subject_ref, business_ref=req.business_ref)


def event_to_proto(session_id: str, ev: CaptureEvent) -> lpb.CaptureEvent:
    out = lpb.CaptureEvent(session_id=session_id)
    if isinstance(ev, Prompt):
        out.prompt.CopyFrom(lpb.Prompt(code=ev.code, text_zh=ev.zh, text_en=ev.en))
    elif isinstance(ev, Progress):
        out.progress.CopyFrom(lpb.Progress(percent=ev.percent, stage=ev.stage))
    elif isinstance(ev, Result):
        out.result.CopyFrom(lpb.Result(accepted=ev.accepted, reason=ev.reason, probe_id=ev.probe_id,
                                       liveness_verdict=ev.liveness_verdict, detail=ev.detail[:MAX_DETAIL],
                                       timings_ms={k: float(v) for k, v in ev.timings_ms.items()}))
    elif isinstance(ev, Error):
        out.error.CopyFrom(lpb.Error(code=ev.code, message=ev.message[:MAX_MESSAGE]))
    elif isinstance(ev, Illumination):
        r, g, b = ev.rgb
        out.illumination.CopyFrom(lpb.Illumination(step=ev.step, red=r, green=g, blue=b, frame=ev.frame,
                                                   frames=ev.frames, frame_interval_ms=ev.frame_interval_ms,
                                                   end=ev.end, luminance=ev.luminance))
    else:
        raise TypeError(f"not a capture event: {type(ev).__name__}")
    return out


def event_from_proto(msg: lpb.CaptureEvent) -> CaptureEvent:
    kind = msg.WhichOneof("event")
    if kind == "prompt":
        return Prompt(msg.prompt.code, msg.prompt.text_zh, msg.prompt.text_en)
    if kind == "progress":
        return Progress(msg.progress.percent, msg.progress.stage)
    if kind == "result":
        r = msg.result
        return Result(r.accepted, r.reason, r.probe_id, r.liveness_verdict, r.detail, dict(r.timings_ms))
    if kind == "error":
        return Error(msg.error.code, msg.error.message)
    if kind == "illumination":
        i = msg.illumination
        return Illumination(i.step, (_unit(i.red), _unit(i.green), _unit(i.blue)), i.frame, i.frames,
                            i.frame_interval_ms, i.end, _luminance(i.luminance))
    return Error("LAPI_MALFORMED", "the agent sent an event of no known kind")


def _luminance(v: float) -> float:
    """The panel's luminance as the app may use it: a multiple of its everyday one within 1..8 (0, an
    older agent's, and anything else out of range, NaN included, is the everyday 1)."""
    return float(v) if v == v and 1.0 <= v <= 8.0 else 1.0


def _unit(v: float) -> float:
    """A screen channel as the app may use it: 0..1 (anything else, NaN included, is clamped)."""
    return min(max(float(v), 0.0), 1.0) if v == v else 0.0
