"""Firmware policy at device open: is this camera running firmware the bank approved?

:class:`FirmwareGate` is called once per opened camera (``agent.devices.policy.check_policy``). It
refuses a camera, whatever the configured mode, when its last update did not finish (the journal
has an entry for it: unknown state). Otherwise it finds the camera's model in the signed manifest
and checks the running version; an unknown model or an unapproved version is refused
(``on_unapproved = "refuse"``, the default) or let through with an alert in the audit log and a
note on the device (``"alert"``). Recordings and the simulator run no firmware and are not judged
here (the USB policy decides whether they may be used at all).

:class:`ManifestSource` re-verifies the manifest when its file changes; if the new file does not
verify, every camera is refused until a good one is in place (fail closed).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drivers.base import DeviceInfo
from firmware import manifest as mf
from firmware.errors import FirmwareError, ModelUnknown, UpdateInterrupted, VersionUnapproved
from firmware.journal import Journal

Alert = Callable[..., object]        # audit.record(event, **data)
NOT_JUDGED_BACKENDS = frozenset({"sim"})


class ManifestSource:
    """The current verified manifest, re-read when the file's identity (inode, size, mtime) changes."""

    def __init__(self, path: str | os.PathLike[str], public_key: Ed25519PublicKey,
                 floor: mf.SequenceFloor | None = None):
        self.path, self.public_key, self.floor = Path(path), public_key, floor
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._manifest: mf.Manifest | None = None
        self._error: FirmwareError | None = None
        self.current()                                   # fail fast at start-up

    def _file_stamp(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except OSError:
            return (0, 0, 0)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def current(self) -> mf.Manifest:
        with self._lock:
            stamp = self._file_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._manifest, self._error = mf.load(self.path, self.public_key, self.floor), None
                except FirmwareError as exc:
                    self._manifest, self._error = None, exc
            if self._error is not None:
                raise self._error
            assert self._manifest is not None
            return self._manifest


@dataclass(frozen=True)
class Verdict:
    approved: bool
    model: str             # manifest model id, "" when unknown
    version: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"approved": self.approved, "model": self.model, "version": self.version, "detail": self.detail}


def judge(manifest: mf.Manifest, *, backend: str, name: str, firmware: str, vendor_id: int = 0,
          product_id: int = 0) -> Verdict:
    """Whether ``manifest`` approves this device's firmware: a pure function, the same on the
    terminal and on the server (which re-judges the firmware the probe's attestation carries)."""
    model = manifest.model_for(backend=backend, name=name, vendor_id=vendor_id, product_id=product_id)
    if model is None:
        usb = f" (USB {vendor_id:04x}:{product_id:04x})" if vendor_id else ""
        return Verdict(False, "", firmware, f"{backend} camera {name!r}{usb} is not a model the manifest lists")
    try:
        model.require_approved(firmware, f"{model.vendor} {model.model}")
    except VersionUnapproved as exc:
        return Verdict(False, model.id, firmware, exc.message)
    return Verdict(True, model.id, firmware, f"{model.vendor} {model.model} firmware {firmware} is approved")


class FirmwareGate:
    def __init__(self, source: ManifestSource, journal: Journal,
                 on_unapproved: Literal["refuse", "alert"] = "refuse", alert: Alert | None = None):
        if on_unapproved not in ("refuse", "alert"):
            raise ValueError("on_unapproved must be 'refuse' or 'alert'")
        self.source, self.journal, self.mode, self.alert = source, journal, on_unapproved, alert

    def check(self, info: DeviceInfo) -> DeviceInfo:
        """``info`` (with a note when only alerted), or FW_UPDATE_INTERRUPTED / FW_MODEL_UNKNOWN /
        FW_VERSION_UNAPPROVED / a manifest error."""
        if info.is_recording or info.backend in NOT_JUDGED_BACKENDS:
            return info
        serials = {s for s in (info.serial, info.usb.serial if info.usb else "") if s}
        for s in serials:
            entry = self.journal.find(serial=s)
            if entry is not None:
                raise UpdateInterrupted(f"camera {s}: {entry.describe()}; it is not used until "
                                        "'capture-agent firmware update' resumes it or 'firmware check' proves it good")
        manifest = self.source.current()
        usb = info.usb
        verdict = judge(manifest, backend=info.backend, name=info.name, firmware=info.firmware,
                        vendor_id=usb.vendor_id if usb else 0, product_id=usb.product_id if usb else 0)
        if verdict.approved:
            return info
        error: FirmwareError = (VersionUnapproved if verdict.model else ModelUnknown)(verdict.detail)
        if self.mode == "refuse":
            raise error
        if self.alert is not None:
            self.alert("firmware_alert", code=error.code, device=info.uri[:200], serial=info.serial[:64],
                       model=verdict.model or None, firmware=info.firmware[:64], manifest_sequence=manifest.sequence)
        note = f"firmware alert {error.code}: {verdict.detail}"
        return replace(info, note=f"{info.note}; {note}" if info.note else note)
