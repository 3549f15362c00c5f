"""Typed errors with stable codes.

Every error the agent can surface to a person or a calling program derives from
:class:`CaptureAgentError` and carries a ``code`` that never changes between releases:
scripts, kiosk apps and the server match on the code, people read the message.
Driver codes start with ``DRV_``; the agent adds its own families (``AGT_``, ``QLT_`` ...).
"""

from __future__ import annotations


class CaptureAgentError(Exception):
    """Base class: a clear message plus a stable machine-readable code."""

    code = "CA_ERROR"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class DriverError(CaptureAgentError):
    code = "DRV_ERROR"


class InvalidUri(DriverError):
    """The device URI cannot be parsed, or a query parameter is out of range."""

    code = "DRV_INVALID_URI"


class UnknownScheme(DriverError):
    code = "DRV_UNKNOWN_SCHEME"


class BackendUnavailable(DriverError):
    """The backend's vendor SDK or system library is not installed on this machine."""

    code = "DRV_BACKEND_UNAVAILABLE"


class DeviceNotFound(DriverError):
    code = "DRV_DEVICE_NOT_FOUND"


class DeviceBusy(DriverError):
    """The device is claimed by another handle or process (``LIBUSB_ERROR_BUSY``, ``EBUSY``): a USB
    camera has one owner at a time."""

    code = "DRV_DEVICE_BUSY"


class DeviceLost(DriverError):
    """The device vanished or stopped delivering while streaming (unplug, USB reset)."""

    code = "DRV_DEVICE_LOST"


class FrameTimeout(DriverError):
    """No frame arrived within the caller's deadline; the device may still be present."""

    code = "DRV_FRAME_TIMEOUT"


class UnsupportedMode(DriverError):
    """The requested resolution, rate or format is not offered by the device."""

    code = "DRV_UNSUPPORTED_MODE"


class RecordingInvalid(DriverError):
    """A recording file is missing, unreadable, corrupt or lacks required streams."""

    code = "DRV_RECORDING_INVALID"


class DeviceRefused(DriverError):
    """Policy refused the device: not on the allowlist, or a virtual camera."""

    code = "DRV_DEVICE_REFUSED"


class CapabilityUnsupported(DriverError):
    """The device cannot do what was asked (for example projector control on a UVC camera)."""

    code = "DRV_CAPABILITY_UNSUPPORTED"


class InvalidSetting(DriverError):
    """A control value that is not a number the device can take (NaN, infinite, wrong type)."""

    code = "DRV_INVALID_SETTING"


class StreamClosed(DriverError):
    """The camera was used after ``stop()`` or ``close()``."""

    code = "DRV_STREAM_CLOSED"


class CameraHostCrashed(DeviceLost):
    """The camera host process (which owns the vendor SDK) died; the device manager replaces it."""

    code = "DRV_HOST_CRASHED"


class CameraHostHung(DeviceLost):
    """The camera host process missed a deadline (no heartbeat, or an SDK call that did not return
    in time) and was killed; the device manager replaces it."""

    code = "DRV_HOST_HUNG"


class CameraHostProtocol(DeviceLost):
    """The camera host process sent something that is not a valid message or frame description; it
    was killed (a compromised or corrupted SDK process is never trusted further)."""

    code = "DRV_HOST_PROTOCOL"
