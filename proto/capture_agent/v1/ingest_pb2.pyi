from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Purpose(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PURPOSE_UNSPECIFIED: _ClassVar[Purpose]
    ENROLL: _ClassVar[Purpose]
    VERIFY: _ClassVar[Purpose]

class ChallengeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHALLENGE_KIND_UNSPECIFIED: _ClassVar[ChallengeKind]
    PROJECTOR: _ClassVar[ChallengeKind]
    ILLUMINATION: _ClassVar[ChallengeKind]
PURPOSE_UNSPECIFIED: Purpose
ENROLL: Purpose
VERIFY: Purpose
CHALLENGE_KIND_UNSPECIFIED: ChallengeKind
PROJECTOR: ChallengeKind
ILLUMINATION: ChallengeKind

class BeginCaptureRequest(_message.Message):
    __slots__ = ("terminal_id", "session_id", "purpose", "subject_ref", "capabilities", "channel")
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_REF_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    terminal_id: str
    session_id: str
    purpose: Purpose
    subject_ref: str
    capabilities: ChallengeCapabilities
    channel: str
    def __init__(self, terminal_id: _Optional[str] = ..., session_id: _Optional[str] = ..., purpose: _Optional[_Union[Purpose, str]] = ..., subject_ref: _Optional[str] = ..., capabilities: _Optional[_Union[ChallengeCapabilities, _Mapping]] = ..., channel: _Optional[str] = ...) -> None: ...

class ChallengeCapabilities(_message.Message):
    __slots__ = ("projector", "illumination", "exposure_lock", "depth_fps", "color_fps")
    PROJECTOR_FIELD_NUMBER: _ClassVar[int]
    ILLUMINATION_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_LOCK_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FPS_FIELD_NUMBER: _ClassVar[int]
    COLOR_FPS_FIELD_NUMBER: _ClassVar[int]
    projector: bool
    illumination: bool
    exposure_lock: bool
    depth_fps: float
    color_fps: float
    def __init__(self, projector: _Optional[bool] = ..., illumination: _Optional[bool] = ..., exposure_lock: _Optional[bool] = ..., depth_fps: _Optional[float] = ..., color_fps: _Optional[float] = ...) -> None: ...

class CapabilityCheck(_message.Message):
    __slots__ = ("terminal_id", "channel", "capabilities")
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    terminal_id: str
    channel: str
    capabilities: ChallengeCapabilities
    def __init__(self, terminal_id: _Optional[str] = ..., channel: _Optional[str] = ..., capabilities: _Optional[_Union[ChallengeCapabilities, _Mapping]] = ...) -> None: ...

class CapabilityVerdict(_message.Message):
    __slots__ = ("challenges",)
    CHALLENGES_FIELD_NUMBER: _ClassVar[int]
    challenges: _containers.RepeatedScalarFieldContainer[ChallengeKind]
    def __init__(self, challenges: _Optional[_Iterable[_Union[ChallengeKind, str]]] = ...) -> None: ...

class Challenge(_message.Message):
    __slots__ = ("nonce", "expires_unix_ms", "server_key_id", "server_public_key", "hpke_suite", "frames", "issued_unix_ms", "challenges")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SERVER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    HPKE_SUITE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    ISSUED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    CHALLENGES_FIELD_NUMBER: _ClassVar[int]
    nonce: bytes
    expires_unix_ms: int
    server_key_id: str
    server_public_key: bytes
    hpke_suite: str
    frames: int
    issued_unix_ms: int
    challenges: _containers.RepeatedScalarFieldContainer[ChallengeKind]
    def __init__(self, nonce: _Optional[bytes] = ..., expires_unix_ms: _Optional[int] = ..., server_key_id: _Optional[str] = ..., server_public_key: _Optional[bytes] = ..., hpke_suite: _Optional[str] = ..., frames: _Optional[int] = ..., issued_unix_ms: _Optional[int] = ..., challenges: _Optional[_Iterable[_Union[ChallengeKind, str]]] = ...) -> None: ...

class ProbeHeader(_message.Message):
    __slots__ = ("version", "probe_id", "terminal_id", "session_id", "counter", "nonce", "server_key_id", "hpke_suite", "created_unix_ms", "signer_key_id", "signature_algorithm", "purpose", "audit_anchor", "platform_quote")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SERVER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    HPKE_SUITE_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SIGNER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    AUDIT_ANCHOR_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_QUOTE_FIELD_NUMBER: _ClassVar[int]
    version: int
    probe_id: str
    terminal_id: str
    session_id: str
    counter: int
    nonce: bytes
    server_key_id: str
    hpke_suite: str
    created_unix_ms: int
    signer_key_id: str
    signature_algorithm: str
    purpose: Purpose
    audit_anchor: AuditAnchor
    platform_quote: PlatformQuote
    def __init__(self, version: _Optional[int] = ..., probe_id: _Optional[str] = ..., terminal_id: _Optional[str] = ..., session_id: _Optional[str] = ..., counter: _Optional[int] = ..., nonce: _Optional[bytes] = ..., server_key_id: _Optional[str] = ..., hpke_suite: _Optional[str] = ..., created_unix_ms: _Optional[int] = ..., signer_key_id: _Optional[str] = ..., signature_algorithm: _Optional[str] = ..., purpose: _Optional[_Union[Purpose, str]] = ..., audit_anchor: _Optional[_Union[AuditAnchor, _Mapping]] = ..., platform_quote: _Optional[_Union[PlatformQuote, _Mapping]] = ...) -> None: ...

class PlatformQuote(_message.Message):
    __slots__ = ("attest", "signature", "pcr_bank", "pcrs", "pcr_values")
    ATTEST_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PCR_BANK_FIELD_NUMBER: _ClassVar[int]
    PCRS_FIELD_NUMBER: _ClassVar[int]
    PCR_VALUES_FIELD_NUMBER: _ClassVar[int]
    attest: bytes
    signature: bytes
    pcr_bank: str
    pcrs: _containers.RepeatedScalarFieldContainer[int]
    pcr_values: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, attest: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., pcr_bank: _Optional[str] = ..., pcrs: _Optional[_Iterable[int]] = ..., pcr_values: _Optional[_Iterable[bytes]] = ...) -> None: ...

class AuditAnchor(_message.Message):
    __slots__ = ("seq", "head", "signature", "log_id", "tpm_count", "tpm_certify")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    TPM_COUNT_FIELD_NUMBER: _ClassVar[int]
    TPM_CERTIFY_FIELD_NUMBER: _ClassVar[int]
    seq: int
    head: bytes
    signature: bytes
    log_id: bytes
    tpm_count: int
    tpm_certify: _containers.RepeatedCompositeFieldContainer[NvCertification]
    def __init__(self, seq: _Optional[int] = ..., head: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., log_id: _Optional[bytes] = ..., tpm_count: _Optional[int] = ..., tpm_certify: _Optional[_Iterable[_Union[NvCertification, _Mapping]]] = ...) -> None: ...

class NvCertification(_message.Message):
    __slots__ = ("nv_index", "attest", "signature")
    NV_INDEX_FIELD_NUMBER: _ClassVar[int]
    ATTEST_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    nv_index: int
    attest: bytes
    signature: bytes
    def __init__(self, nv_index: _Optional[int] = ..., attest: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class SealedProbe(_message.Message):
    __slots__ = ("header", "ciphertext", "signature")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    header: bytes
    ciphertext: bytes
    signature: bytes
    def __init__(self, header: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Crop(_message.Message):
    __slots__ = ("width", "height", "format", "pixels", "x", "y", "sha256", "depth_scale", "sm3")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    PIXELS_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DEPTH_SCALE_FIELD_NUMBER: _ClassVar[int]
    SM3_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    format: str
    pixels: bytes
    x: int
    y: int
    sha256: bytes
    depth_scale: float
    sm3: bytes
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., format: _Optional[str] = ..., pixels: _Optional[bytes] = ..., x: _Optional[int] = ..., y: _Optional[int] = ..., sha256: _Optional[bytes] = ..., depth_scale: _Optional[float] = ..., sm3: _Optional[bytes] = ...) -> None: ...

class DeviceAttestation(_message.Message):
    __slots__ = ("backend", "model", "serial", "usb_id", "usb_bus", "firmware", "recording", "calibration_sha256")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    USB_ID_FIELD_NUMBER: _ClassVar[int]
    USB_BUS_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_FIELD_NUMBER: _ClassVar[int]
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_SHA256_FIELD_NUMBER: _ClassVar[int]
    backend: str
    model: str
    serial: str
    usb_id: str
    usb_bus: str
    firmware: str
    recording: bool
    calibration_sha256: str
    def __init__(self, backend: _Optional[str] = ..., model: _Optional[str] = ..., serial: _Optional[str] = ..., usb_id: _Optional[str] = ..., usb_bus: _Optional[str] = ..., firmware: _Optional[str] = ..., recording: _Optional[bool] = ..., calibration_sha256: _Optional[str] = ...) -> None: ...

class FrameEvidence(_message.Message):
    __slots__ = ("frame_counter", "timestamp_ms", "color_frame_counter", "color_timestamp_ms", "ir_energy", "face_grid", "digest", "face")
    FRAME_COUNTER_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    COLOR_FRAME_COUNTER_FIELD_NUMBER: _ClassVar[int]
    COLOR_TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    IR_ENERGY_FIELD_NUMBER: _ClassVar[int]
    FACE_GRID_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    FACE_FIELD_NUMBER: _ClassVar[int]
    frame_counter: int
    timestamp_ms: float
    color_frame_counter: int
    color_timestamp_ms: float
    ir_energy: float
    face_grid: _containers.RepeatedScalarFieldContainer[float]
    digest: str
    face: bool
    def __init__(self, frame_counter: _Optional[int] = ..., timestamp_ms: _Optional[float] = ..., color_frame_counter: _Optional[int] = ..., color_timestamp_ms: _Optional[float] = ..., ir_energy: _Optional[float] = ..., face_grid: _Optional[_Iterable[float]] = ..., digest: _Optional[str] = ..., face: _Optional[bool] = ...) -> None: ...

class ChallengeEvidence(_message.Message):
    __slots__ = ("challenges", "face_box", "frames")
    CHALLENGES_FIELD_NUMBER: _ClassVar[int]
    FACE_BOX_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    challenges: _containers.RepeatedScalarFieldContainer[ChallengeKind]
    face_box: _containers.RepeatedScalarFieldContainer[int]
    frames: _containers.RepeatedCompositeFieldContainer[FrameEvidence]
    def __init__(self, challenges: _Optional[_Iterable[_Union[ChallengeKind, str]]] = ..., face_box: _Optional[_Iterable[int]] = ..., frames: _Optional[_Iterable[_Union[FrameEvidence, _Mapping]]] = ...) -> None: ...

class ProbePayload(_message.Message):
    __slots__ = ("color", "depth", "ir", "landmarks", "quality_json", "liveness_json", "device", "timings_ms", "frame_digest", "evidence", "ima_log")
    class TimingsMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    COLOR_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    IR_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS_FIELD_NUMBER: _ClassVar[int]
    QUALITY_JSON_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_JSON_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_MS_FIELD_NUMBER: _ClassVar[int]
    FRAME_DIGEST_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    IMA_LOG_FIELD_NUMBER: _ClassVar[int]
    color: Crop
    depth: Crop
    ir: Crop
    landmarks: _containers.RepeatedScalarFieldContainer[float]
    quality_json: str
    liveness_json: str
    device: DeviceAttestation
    timings_ms: _containers.ScalarMap[str, float]
    frame_digest: str
    evidence: ChallengeEvidence
    ima_log: bytes
    def __init__(self, color: _Optional[_Union[Crop, _Mapping]] = ..., depth: _Optional[_Union[Crop, _Mapping]] = ..., ir: _Optional[_Union[Crop, _Mapping]] = ..., landmarks: _Optional[_Iterable[float]] = ..., quality_json: _Optional[str] = ..., liveness_json: _Optional[str] = ..., device: _Optional[_Union[DeviceAttestation, _Mapping]] = ..., timings_ms: _Optional[_Mapping[str, float]] = ..., frame_digest: _Optional[str] = ..., evidence: _Optional[_Union[ChallengeEvidence, _Mapping]] = ..., ima_log: _Optional[bytes] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("probe_id", "accepted", "reason", "detail", "received_unix_ms", "liveness_verdict", "subject_sha256", "subject_mac", "subject_key_id")
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_VERDICT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_SHA256_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_MAC_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    probe_id: str
    accepted: bool
    reason: str
    detail: str
    received_unix_ms: int
    liveness_verdict: str
    subject_sha256: str
    subject_mac: str
    subject_key_id: str
    def __init__(self, probe_id: _Optional[str] = ..., accepted: _Optional[bool] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ..., received_unix_ms: _Optional[int] = ..., liveness_verdict: _Optional[str] = ..., subject_sha256: _Optional[str] = ..., subject_mac: _Optional[str] = ..., subject_key_id: _Optional[str] = ...) -> None: ...
