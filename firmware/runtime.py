"""Building the firmware policy from ``[firmware]`` settings, for the daemon and the command line.

Paths in the settings are resolved by the caller's ``resolve`` (the agent resolves them against the
config file's directory); terminal state (sequence floor, journal, history, maintenance lock) lives
in the state directory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware import manifest as mf
from firmware.errors import FirmwareNotConfigured, ManifestSignature
from firmware.journal import Journal, JournalEntry
from firmware.maintenance import MaintenanceLock
from firmware.policy import Alert, FirmwareGate, ManifestSource
from firmware.settings import FirmwareSettings
from firmware.update import Limits

SEQUENCE_FLOOR_NAME = "firmware-manifest-sequence"


@dataclass(frozen=True)
class FirmwarePaths:
    manifest: Path
    release_key: Path
    state_dir: Path
    backup_dir: Path
    audit: Path


def paths(settings: FirmwareSettings, state_dir: Path, resolve: Callable[[str], Path]) -> FirmwarePaths:
    if not settings.enabled:
        raise FirmwareNotConfigured("no firmware manifest is configured ([firmware] manifest and release_key)")
    return FirmwarePaths(resolve(settings.manifest), resolve(settings.release_key), state_dir,
                         resolve(settings.backup_dir) if settings.backup_dir else state_dir / "firmware-backups",
                         resolve(settings.audit) if settings.audit else state_dir / "firmware-audit.jsonl")


def load_manifest_source(p: FirmwarePaths) -> ManifestSource:
    try:
        pem = p.release_key.read_bytes()
    except OSError as exc:
        raise ManifestSignature(f"cannot read the release key {p.release_key}: {exc.strerror}") from None
    return ManifestSource(p.manifest, mf.load_public_key(pem), mf.SequenceFloor(p.state_dir / SEQUENCE_FLOOR_NAME))


def build_gate(settings: FirmwareSettings, state_dir: Path, resolve: Callable[[str], Path],
               alert: Alert | None = None) -> FirmwareGate | None:
    """The device-open gate, or None when no manifest is configured (development)."""
    if not settings.enabled:
        return None
    p = paths(settings, state_dir, resolve)
    return FirmwareGate(load_manifest_source(p), Journal(state_dir), settings.on_unapproved, alert)


def limits(settings: FirmwareSettings, p: FirmwarePaths) -> Limits:
    return Limits(max_image_bytes=settings.max_image_bytes, max_downgrades=settings.max_downgrades,
                  backup_dir=str(p.backup_dir), handover_timeout_s=settings.handover_timeout_s)


def interrupted(state_dir: Path) -> list[JournalEntry]:
    """Updates that did not finish, unless one is running right now (it holds the maintenance lock)."""
    if MaintenanceLock(state_dir).update_running():
        return []
    return Journal(state_dir).entries()


def report_interrupted(state_dir: Path, record: Callable[..., Any]) -> list[JournalEntry]:
    """At start: every unfinished update goes into the audit log (the gate refuses those cameras)."""
    found = interrupted(state_dir)
    for e in found:
        record("firmware_update_interrupted", device=e.device[:200], serial=e.serial[:64], step=e.step,
               error=e.error or None, from_version=e.from_version[:64] or None, to_version=e.to_version[:64],
               started=e.started)
    return found
