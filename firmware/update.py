"""Checking, backing up and updating a camera's firmware: the policy around a ``FirmwareTarget``.

An update, in order (each step audited, and journaled before it starts):

1. maintenance window: the camera lock exclusively (``FW_CAMERA_BUSY`` while a session runs), and the
   camera handed over by the daemon's device manager (``firmware/maintenance.py``; ``FW_CAMERA_BUSY``
   when it does not let go within ``handover_timeout_s``: the device is not touched);
2. the device: found through its update API; an open journal entry for it makes this a resume;
3. the image: read once (these bytes are hashed, checked and flashed; the file is not read again),
   its SHA-256 must be an image the signed manifest lists for this model (``FW_IMAGE_HASH_MISMATCH``),
   its version approved (``FW_VERSION_UNAPPROVED``), not below the minimum (``FW_DOWNGRADE_REFUSED``),
   not older than the running version unless asked (``FW_DOWNGRADE_NOT_REQUESTED``) and within the
   camera's downgrade budget (``FW_DOWNGRADE_BUDGET``); then the SDK's own check
   (``FW_IMAGE_INCOMPATIBLE``);
4. backup of the flash where the SDK can (kept in the backup directory, mode 0600);
5. flash through the SDK (entering the update state and re-enumeration included);
6. verification: the camera is back in service, reports the image's version (``FW_VERIFY_VERSION``)
   and is the same camera: same serial, same ``update_id``, same calibration (``FW_IDENTITY_MISMATCH``);
7. only then the journal entry is closed and the camera returns to service.

A failure at 5 or 6 leaves the journal entry with the error code: the daemon refuses the camera
(``FW_UPDATE_INTERRUPTED``) until ``update`` is run again (it resumes: a camera found in its
recovery/DFU mode is flashed with the journaled image, one found already on the new version is
verified) or ``check`` proves it good.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from drivers.update import FirmwareIdentity, FirmwareTarget, Progress, no_progress, open_target
from firmware import manifest as mf
from firmware.errors import (
    DowngradeBudget,
    DowngradeNotRequested,
    DowngradeRefused,
    FirmwareError,
    IdentityMismatch,
    ImageHashMismatch,
    ImageInvalid,
    ModelUnknown,
    UpdateInterrupted,
    VersionMismatch,
    VersionUnapproved,
)
from firmware.journal import History, Journal, JournalEntry
from firmware.maintenance import MaintenanceLock
from firmware.version import Version

Audit = Callable[..., object]                 # audit.record(event, **data)
Opener = Callable[..., FirmwareTarget]


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int = 64 << 20
    max_downgrades: int = 3                  # D4xx allow ~20 in their life; keep most in reserve
    backup_dir: str = ""                     # "" = no backup kept on disk
    handover_timeout_s: float = 5.0          # wait this long for the daemon to release the camera


@dataclass(frozen=True)
class Image:
    data: bytes
    sha256: str
    path: str

    @classmethod
    def read(cls, path: str | os.PathLike[str], max_bytes: int) -> Image:
        try:
            with open(path, "rb") as fh:
                data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise ImageInvalid(f"cannot read the firmware image {path}: {exc.strerror}") from None
        if not data:
            raise ImageInvalid(f"the firmware image {path} is empty")
        if len(data) > max_bytes:
            raise ImageInvalid(f"the firmware image {path} is larger than {max_bytes} bytes")
        return cls(data, hashlib.sha256(data).hexdigest(), str(Path(path).resolve()))


@dataclass(frozen=True)
class Plan:
    model: mf.ModelEntry
    image: mf.ImageEntry
    running: Version | None
    downgrade: bool
    current: bool                            # the camera already runs this version

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.id, "to_version": str(self.image.version),
                "from_version": str(self.running) if self.running else None, "downgrade": self.downgrade,
                "already_current": self.current, "image_sha256": self.image.sha256}


def model_of(manifest: mf.Manifest, ident: FirmwareIdentity) -> mf.ModelEntry:
    model = manifest.model_for(backend=ident.backend, name=ident.name, vendor_id=ident.vendor_id,
                               product_id=ident.product_id)
    if model is None:
        raise ModelUnknown(f"{ident.backend} camera {ident.name!r} (USB {ident.vendor_id:04x}:{ident.product_id:04x}) "
                           "is not a model the firmware manifest lists")
    return model


def plan(manifest: mf.Manifest, ident: FirmwareIdentity, image: Image, *, running: str, allow_downgrade: bool,
         downgrades_used: int, limits: Limits) -> Plan:
    """Every check an image must pass before the device is touched (pure: no I/O)."""
    model = model_of(manifest, ident)
    entry = model.image_by_hash(image.sha256)
    if entry is None:
        raise ImageHashMismatch(f"image {image.sha256[:16]}… is not an image the manifest lists for "
                                f"{model.vendor} {model.model}: altered, or not released by the bank")
    if entry.size != len(image.data):
        raise ImageHashMismatch(f"image size {len(image.data)} differs from the manifest's {entry.size}")
    if entry.version < model.minimum_version:
        raise DowngradeRefused(f"image version {entry.version} is below {model.vendor} {model.model}'s minimum "
                               f"{model.minimum_version}")
    if entry.version not in model.allowed_versions:
        raise VersionUnapproved(f"image version {entry.version} is not an approved version for "
                                f"{model.vendor} {model.model}")
    run: Version | None = None
    if running:
        try:
            run = Version.parse(running)
        except ValueError:
            run = None
    downgrade = run is not None and entry.version < run
    if downgrade:
        if not allow_downgrade:
            raise DowngradeNotRequested(f"image version {entry.version} is older than the running {run}; "
                                        "pass --allow-downgrade to return to it")
        if downgrades_used >= limits.max_downgrades:
            raise DowngradeBudget(f"this camera has had {downgrades_used} downgrade(s), the most this terminal "
                                  f"allows ([firmware] max_downgrades = {limits.max_downgrades})")
    return Plan(model, entry, run, downgrade, run is not None and entry.version == run and not ident.recovery)


class FirmwareService:
    """``check``, ``backup`` and ``update`` of one camera, given the terminal's firmware state."""

    def __init__(self, manifest: mf.Manifest, state_dir: str | os.PathLike[str], *, audit: Audit | None = None,
                 limits: Limits | None = None, opener: Opener = open_target,
                 target_options: dict[str, Any] | None = None):
        self.manifest = manifest
        self.journal = Journal(state_dir)
        self.history = History(state_dir)
        self.limits = limits or Limits()
        self.lock = MaintenanceLock(state_dir, handover_timeout_s=self.limits.handover_timeout_s)
        self._audit = audit
        self._open = opener
        self._options = dict(target_options or {})

    def record(self, event: str, **data: Any) -> None:
        if self._audit is not None:
            self._audit(event, **data)

    def _target(self, uri: str, entry: JournalEntry | None = None) -> FirmwareTarget:
        return self._open(uri, update_id=entry.update_id if entry else "", **self._options)

    def _entry_for(self, uri: str, ident: FirmwareIdentity) -> JournalEntry | None:
        by_device = next((e for e in self.journal.entries() if e.device == uri), None)
        return by_device or self.journal.find(serial=ident.serial, update_id=ident.update_id)

    # -- check -----------------------------------------------------------------------------------
    def check(self, uri: str, image_path: str | None = None) -> dict[str, Any]:
        """The camera's identity and firmware verdict; with an image, whether it could be flashed.
        A journal entry is reported as FW_UPDATE_INTERRUPTED, unless the camera is found already
        verified on the journaled version (then the entry is closed: the update had finished)."""
        entry = self._journal_entry_for_uri(uri)
        with self._target(uri, entry) as target:
            ident = target.identity()
            entry = entry or self._entry_for(uri, ident)
            out: dict[str, Any] = {"device": uri, "identity": ident.to_dict(),
                                   "manifest_sequence": self.manifest.sequence}
            if entry is not None:
                try:
                    self._verify(ident, entry)
                except FirmwareError:
                    self.record("firmware_interrupted_seen", device=uri[:200], serial=entry.serial[:64],
                                step=entry.step, error=entry.error or None)
                    raise UpdateInterrupted(entry.describe() + "; run 'capture-agent firmware update' with the same "
                                            "image to resume it") from None
                self.journal.close(entry)
                self.history.record(entry.serial, entry.from_version, entry.to_version, False, entry.image_sha256)
                self.record("firmware_update_done", device=uri[:200], serial=entry.serial[:64],
                            version=ident.firmware[:64], resumed=True, how="verified by check")
                out["resumed"] = "the interrupted update had completed; verified and closed"
            model = model_of(self.manifest, ident)
            out["model"] = model.id
            if ident.recovery:
                out["verdict"] = {"approved": False,
                                  "detail": "the camera is in recovery/DFU mode (no firmware running)"}
            else:
                try:
                    model.require_approved(ident.firmware, f"{model.vendor} {model.model}")
                    out["verdict"] = {"approved": True, "detail": f"firmware {ident.firmware} is approved"}
                except VersionUnapproved as exc:
                    out["verdict"] = {"approved": False, "code": exc.code, "detail": exc.message}
            if image_path:
                image = Image.read(image_path, self.limits.max_image_bytes)
                p = plan(self.manifest, ident, image, running=ident.firmware, allow_downgrade=True,
                         downgrades_used=self.history.downgrades(ident.serial), limits=self.limits)
                target.check_image(image.data)
                out["image"] = p.to_dict()
            self.record("firmware_check", device=uri[:200], serial=ident.serial[:64], firmware=ident.firmware[:64],
                        approved=bool(out["verdict"]["approved"]),
                        image_sha256=(out.get("image") or {}).get("image_sha256"))
            return out

    def _journal_entry_for_uri(self, uri: str) -> JournalEntry | None:
        return next((e for e in self.journal.entries() if e.device == uri), None)

    # -- backup ----------------------------------------------------------------------------------
    def backup(self, uri: str, out_path: str | None = None, progress: Progress = no_progress) -> dict[str, Any]:
        with self.lock.update(uri), self._target(uri) as target:
            ident = target.identity()
            self.record("firmware_backup_begin", device=uri[:200], serial=ident.serial[:64],
                        firmware=ident.firmware[:64])
            try:
                path = self._backup(target, ident, out_path, progress)
            except FirmwareError as exc:
                self.record("firmware_backup_failed", device=uri[:200], code=exc.code, message=exc.message[:200])
                raise
            return {"device": uri, "identity": ident.to_dict(), "backup": path}

    def _backup(self, target: FirmwareTarget, ident: FirmwareIdentity, out_path: str | None,
                progress: Progress) -> dict[str, Any]:
        data = target.backup(progress)
        sha = hashlib.sha256(data).hexdigest()
        if out_path is None:
            if not self.limits.backup_dir:
                raise FirmwareError("no backup directory is configured ([firmware] backup_dir)",
                                    code="FW_BACKUP_FAILED")
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in (ident.serial or ident.update_id))[:64]
            out_path = str(Path(self.limits.backup_dir) / f"{safe}-{ident.firmware or 'recovery'}-{stamp}.bin")
        p = Path(out_path)
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        self.record("firmware_backup", serial=ident.serial[:64], path=str(p)[:200], sha256=sha, size=len(data))
        return {"path": str(p), "sha256": sha, "size": len(data)}

    # -- update ----------------------------------------------------------------------------------
    def update(self, uri: str, image_path: str, *, allow_downgrade: bool = False,
               progress: Progress = no_progress) -> dict[str, Any]:
        with self.lock.update(uri):
            handover_ms = round((self.lock.handover_s or 0.0) * 1000, 1)
            self.record("firmware_maintenance_begin", device=uri[:200], handover_ms=handover_ms)
            try:
                image = Image.read(image_path, self.limits.max_image_bytes)
                return {**self._update(uri, image, allow_downgrade, progress), "handover_ms": handover_ms}
            except FirmwareError as exc:
                self.record("firmware_update_failed", device=uri[:200], code=exc.code, message=exc.message[:200])
                raise
            finally:
                self.record("firmware_maintenance_end", device=uri[:200])

    def _update(self, uri: str, image: Image, allow_downgrade: bool, progress: Progress) -> dict[str, Any]:
        entry = self._journal_entry_for_uri(uri)
        with self._target(uri, entry) as target:
            before = target.identity()
            entry = entry or self._entry_for(uri, before)
            if entry is not None and entry.image_sha256 != image.sha256:
                raise UpdateInterrupted(entry.describe() + f"; resume it with the same image (SHA-256 "
                                        f"{entry.image_sha256[:16]}…), not another one")
            if before.recovery and entry is None:
                self.record("firmware_recovery_found", device=uri[:200], update_id=before.update_id[:64])
            running = entry.from_version if entry is not None and before.recovery else before.firmware
            serial = entry.serial if entry is not None else before.serial
            p = plan(self.manifest, before, image, running=running, allow_downgrade=allow_downgrade or bool(entry),
                     downgrades_used=self.history.downgrades(serial), limits=self.limits)
            self.record("firmware_update_begin", device=uri[:200], serial=serial[:64], model=p.model.id,
                        from_version=running[:64] or None, to_version=str(p.image.version), image_sha256=image.sha256,
                        downgrade=p.downgrade, resume=entry is not None, recovery=before.recovery,
                        manifest_sequence=self.manifest.sequence)
            if entry is not None and not before.recovery:
                # A resumed entry whose camera is in service: done already, or never flashed.
                try:
                    self._verify(before, entry)
                    return self._finish(uri, entry, before, p, resumed=True)
                except FirmwareError:
                    pass
            if p.current and entry is None:
                self.record("firmware_update_skipped", device=uri[:200], serial=serial[:64],
                            version=before.firmware[:64])
                return {"device": uri, "result": "already_current", "plan": p.to_dict(), "identity": before.to_dict()}
            target.check_image(image.data)
            progress("verified", 1.0)
            if entry is None:
                entry = self.journal.write(JournalEntry(
                    device=uri, serial=before.serial, update_id=before.update_id, model=p.model.id,
                    backend=before.backend,
                    from_version=before.firmware, to_version=str(p.image.version), image_sha256=image.sha256,
                    image_path=image.path, calibration_sha256=before.calibration_sha256))
            if target.can_backup and not before.recovery and self.limits.backup_dir:
                entry = self.journal.step(entry, "backup")
                saved = self._backup(target, before, None, progress)
                entry = self.journal.write(replace(entry, backup_path=saved["path"]))
            entry = self.journal.step(entry, "flashing")
            self.record("firmware_flash_begin", serial=entry.serial[:64], to_version=entry.to_version)
            try:
                target.install(image.data, progress)
            except FirmwareError as exc:
                self.journal.fail(entry, exc.code)
                raise
            entry = self.journal.step(entry, "verifying")
            progress("verify", 0.0)
            after = target.identity()
            try:
                self._verify(after, entry)
            except FirmwareError as exc:
                self.journal.fail(entry, exc.code)
                raise
            progress("verify", 1.0)
            return self._finish(uri, entry, after, p, resumed=False)

    def _verify(self, after: FirmwareIdentity, entry: JournalEntry) -> None:
        """The camera is back in service, on the journaled version, and is the camera we updated."""
        if after.recovery:
            raise VersionMismatch(f"camera {entry.serial} is still in recovery/DFU mode after the update")
        try:
            same = Version.parse(after.firmware) == Version.parse(entry.to_version)
        except ValueError:
            same = False
        if not same:
            raise VersionMismatch(f"camera {entry.serial} reports firmware {after.firmware!r} after the update, "
                                  f"not {entry.to_version}")
        problems = []
        if entry.serial and after.serial != entry.serial:
            problems.append(f"serial {after.serial!r} (was {entry.serial!r})")
        if entry.update_id and after.update_id != entry.update_id:
            problems.append(f"update id {after.update_id!r} (was {entry.update_id!r})")
        if entry.calibration_sha256 and after.calibration_sha256 != entry.calibration_sha256:
            problems.append("calibration differs from before the update")
        if problems:
            raise IdentityMismatch(f"after the update the camera is not the one updated: {'; '.join(problems)}")

    def _finish(self, uri: str, entry: JournalEntry, after: FirmwareIdentity, p: Plan, resumed: bool) -> dict[str, Any]:
        downgrade = bool(entry.from_version) and _older(entry.to_version, entry.from_version)
        self.history.record(entry.serial, entry.from_version, entry.to_version, downgrade, entry.image_sha256)
        self.journal.close(entry)
        self.record("firmware_update_done", device=uri[:200], serial=entry.serial[:64], version=after.firmware[:64],
                    calibration_sha256=after.calibration_sha256 or None, resumed=resumed, downgrade=downgrade)
        return {"device": uri, "result": "updated", "resumed": resumed, "plan": p.to_dict(),
                "identity": after.to_dict(), "backup": entry.backup_path or None}


def _older(a: str, b: str) -> bool:
    try:
        return Version.parse(a) < Version.parse(b)
    except ValueError:
        return False
