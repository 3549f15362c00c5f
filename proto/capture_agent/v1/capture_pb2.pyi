from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CapturePurpose(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAPTURE_PURPOSE_UNSPECIFIED: _ClassVar[CapturePurpose]
    ENROLL: _ClassVar[CapturePurpose]
    VERIFY: _ClassVar[CapturePurpose]
CAPTURE_PURPOSE_UNSPECIFIED: CapturePurpose
ENROLL: CapturePurpose
VERIFY: CapturePurpose

class CaptureRequest(_message.Message):
    __slots__ = ("purpose", "channel", "consent_ref", "subject_ref", "business_ref")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CONSENT_REF_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_REF_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_REF_FIELD_NUMBER: _ClassVar[int]
    purpose: CapturePurpose
    channel: str
    consent_ref: str
    subject_ref: str
    business_ref: str
    def __init__(self, purpose: _Optional[_Union[CapturePurpose, str]] = ..., channel: _Optional[str] = ..., consent_ref: _Optional[str] = ..., subject_ref: _Optional[str] = ..., business_ref: _Optional[str] = ...) -> None: ...

class Prompt(_message.Message):
    __slots__ = ("code", "text_zh", "text_en")
    CODE_FIELD_NUMBER: _ClassVar[int]
    TEXT_ZH_FIELD_NUMBER: _ClassVar[int]
    TEXT_EN_FIELD_NUMBER: _ClassVar[int]
    code: str
    text_zh: str
    text_en: str
    def __init__(self, code: _Optional[str] = ..., text_zh: _Optional[str] = ..., text_en: _Optional[str] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("percent", "stage")
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    percent: int
    stage: str
    def __init__(self, percent: _Optional[int] = ..., stage: _Optional[str] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("accepted", "reason", "probe_id", "liveness_verdict", "timings_ms", "detail")
    class TimingsMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_VERDICT_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_MS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    reason: str
    probe_id: str
    liveness_verdict: str
    timings_ms: _containers.ScalarMap[str, float]
    detail: str
    def __init__(self, accepted: _Optional[bool] = ..., reason: _Optional[str] = ..., probe_id: _Optional[str] = ..., liveness_verdict: _Optional[str] = ..., timings_ms: _Optional[_Mapping[str, float]] = ..., detail: _Optional[str] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Illumination(_message.Message):
    __slots__ = ("step", "red", "green", "blue", "frame", "frames", "frame_interval_ms", "end", "luminance")
    STEP_FIELD_NUMBER: _ClassVar[int]
    RED_FIELD_NUMBER: _ClassVar[int]
    GREEN_FIELD_NUMBER: _ClassVar[int]
    BLUE_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    FRAME_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    LUMINANCE_FIELD_NUMBER: _ClassVar[int]
    step: int
    red: float
    green: float
    blue: float
    frame: int
    frames: int
    frame_interval_ms: float
    end: bool
    luminance: float
    def __init__(self, step: _Optional[int] = ..., red: _Optional[float] = ..., green: _Optional[float] = ..., blue: _Optional[float] = ..., frame: _Optional[int] = ..., frames: _Optional[int] = ..., frame_interval_ms: _Optional[float] = ..., end: _Optional[bool] = ..., luminance: _Optional[float] = ...) -> None: ...

class CaptureEvent(_message.Message):
    __slots__ = ("session_id", "prompt", "progress", "result", "error", "illumination")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ILLUMINATION_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    prompt: Prompt
    progress: Progress
    result: Result
    error: Error
    illumination: Illumination
    def __init__(self, session_id: _Optional[str] = ..., prompt: _Optional[_Union[Prompt, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[Result, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., illumination: _Optional[_Union[Illumination, _Mapping]] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class CancelReply(_message.Message):
    __slots__ = ("cancelled",)
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    cancelled: bool
    def __init__(self, cancelled: _Optional[bool] = ...) -> None: ...
