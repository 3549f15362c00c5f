"""The firmware family's typed errors (``FW_*``). Device-side failures are defined next to the update
paths in ``drivers/update.py`` and re-exported here, so callers find every code in one place."""

from __future__ import annotations

from drivers.update import (
    BackupFailed,
    EnterUpdateFailed,
    FirmwareError,
    FlashFailed,
    ImageIncompatible,
    ReenumerationTimeout,
    TargetNotFound,
    UpdateUnsupported,
)

__all__ = [
    "BackupFailed", "CameraBusy", "DowngradeBudget", "DowngradeNotRequested", "DowngradeRefused",
    "EnterUpdateFailed", "FirmwareError", "FirmwareNotConfigured", "FlashFailed", "IdentityMismatch",
    "ImageHashMismatch", "ImageIncompatible", "ImageInvalid", "MaintenanceActive", "MaintenanceNotPermitted",
    "ManifestInvalid", "ManifestRollback", "ManifestSignature", "ModelUnknown", "ReenumerationTimeout",
    "TargetNotFound",
    "UpdateInterrupted", "UpdateUnsupported", "VersionMismatch", "VersionUnapproved",
]


class FirmwareNotConfigured(FirmwareError):
    """No manifest or no release key is configured (``[firmware]``)."""

    code = "FW_NOT_CONFIGURED"


class ManifestInvalid(FirmwareError):
    """The manifest file is missing, unreadable, not JSON, or breaks the schema."""

    code = "FW_MANIFEST_INVALID"


class ManifestSignature(FirmwareError):
    """The manifest is not signed by the bank's release key (tampered, wrong key, unknown algorithm)."""

    code = "FW_MANIFEST_SIGNATURE"


class ManifestRollback(FirmwareError):
    """A validly signed but older manifest than one already accepted on this terminal (replayed)."""

    code = "FW_MANIFEST_ROLLBACK"


class ModelUnknown(FirmwareError):
    """The camera's model has no entry in the manifest."""

    code = "FW_MODEL_UNKNOWN"


class VersionUnapproved(FirmwareError):
    """The camera runs (or the image carries) a firmware version the manifest does not approve."""

    code = "FW_VERSION_UNAPPROVED"


class ImageInvalid(FirmwareError):
    """The image file is missing, unreadable, empty or too large."""

    code = "FW_IMAGE_INVALID"


class ImageHashMismatch(FirmwareError):
    """The image's SHA-256 is not one the manifest lists for this model (altered or unknown image)."""

    code = "FW_IMAGE_HASH_MISMATCH"


class DowngradeRefused(FirmwareError):
    """The image is older than the model's minimum version."""

    code = "FW_DOWNGRADE_REFUSED"


class DowngradeNotRequested(FirmwareError):
    """The image is older than the running firmware and ``--allow-downgrade`` was not given."""

    code = "FW_DOWNGRADE_NOT_REQUESTED"


class DowngradeBudget(FirmwareError):
    """This camera has used up the downgrades the terminal allows it (D4xx accept only about 20 in
    their life; ``[firmware] max_downgrades`` keeps well below)."""

    code = "FW_DOWNGRADE_BUDGET"


class MaintenanceActive(FirmwareError):
    """A firmware update is running: captures are refused until it ends."""

    code = "FW_MAINTENANCE"


class CameraBusy(FirmwareError):
    """A capture session holds the camera (an update never starts during a capture), or the daemon did
    not release it to the update in time."""

    code = "FW_CAMERA_BUSY"


class VersionMismatch(FirmwareError):
    """After the update the camera does not report the version that was flashed."""

    code = "FW_VERIFY_VERSION"


class IdentityMismatch(FirmwareError):
    """After the update the camera's serial or calibration differs: it is not the camera we updated."""

    code = "FW_IDENTITY_MISMATCH"


class UpdateInterrupted(FirmwareError):
    """An earlier update of this camera did not finish (power loss, unplug, crash): the camera is in an
    unknown state and is not used until ``capture-agent firmware update`` resumes it or
    ``firmware check`` proves it good."""

    code = "FW_UPDATE_INTERRUPTED"


class MaintenanceNotPermitted(FirmwareError):
    """Camera maintenance (update, backup) run by a user other than the agent's or root."""

    code = "FW_NOT_PERMITTED"
