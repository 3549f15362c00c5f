"""The update journal: what an update was doing, on disk before each step, so that an update cut off
by power loss, an unplug or a crash is found at the next start and the camera is never used in an
unknown state.

``firmware-journal.json`` in the state directory maps a camera's serial to its open update: device
URI, identity before the update (serial, ``update_id``, calibration digest), versions, the image's
SHA-256 and path, the step it reached, and the error code if it failed. The entry is written
(atomically: temporary file, fsync, rename, fsync of the directory) *before* each step starts and
removed only after the camera has been verified on its new firmware. Any entry present at a start
is therefore an update that did not verify, whatever the reason.

``firmware-history.json`` keeps per camera the updates that completed (for the downgrade budget:
D4xx cameras accept only about 20 returns to an older version in their life).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from firmware.errors import FirmwareError

JOURNAL_NAME = "firmware-journal.json"
HISTORY_NAME = "firmware-history.json"
STEPS = ("verified", "backup", "flashing", "verifying")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _write_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise FirmwareError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(raw)
    except ValueError:
        # A damaged journal means we no longer know what an update left: that is itself an
        # interrupted update of unknown cameras, so refuse rather than start afresh.
        raise FirmwareError(f"{path} is damaged; check the cameras with 'capture-agent firmware check' and "
                            "move the file aside", code="FW_JOURNAL_DAMAGED") from None
    if not isinstance(data, dict):
        raise FirmwareError(f"{path} is damaged", code="FW_JOURNAL_DAMAGED")
    return data


@dataclass(frozen=True)
class JournalEntry:
    device: str                    # the URI the update was started with
    serial: str                    # the camera's serial before the update (the journal's key)
    update_id: str                 # what finds it in recovery mode (RealSense firmware_update_id, DFU serial)
    model: str                     # manifest model id
    backend: str
    from_version: str
    to_version: str
    image_sha256: str
    image_path: str
    calibration_sha256: str = ""
    step: str = "verified"
    started: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)
    pid: int = field(default_factory=os.getpid)
    error: str = ""                # the error code of a failed step ("" while running, or after a crash)
    backup_path: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JournalEntry:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        what = f"failed ({self.error})" if self.error else "stopped without finishing (power loss, unplug or crash)"
        return (f"the update of {self.serial or self.update_id} from {self.from_version or '?'} to {self.to_version} "
                f"{what} at step {self.step!r}, started {self.started}")


class Journal:
    def __init__(self, state_dir: str | os.PathLike[str]):
        self.path = Path(state_dir) / JOURNAL_NAME

    def entries(self) -> list[JournalEntry]:
        return [JournalEntry.from_dict(v) for v in _read(self.path).values() if isinstance(v, dict)]

    def find(self, *, serial: str = "", update_id: str = "") -> JournalEntry | None:
        for e in self.entries():
            if (serial and serial in (e.serial, e.update_id)) or (update_id and update_id in (e.update_id, e.serial)):
                return e
        return None

    def write(self, entry: JournalEntry) -> JournalEntry:
        data = _read(self.path)
        entry = replace(entry, updated=_now(), pid=os.getpid())
        data[entry.serial or entry.update_id] = entry.to_dict()
        _write_atomic(self.path, data)
        return entry

    def step(self, entry: JournalEntry, step: str, **changes: Any) -> JournalEntry:
        assert step in STEPS, step
        return self.write(replace(entry, step=step, error="", **changes))

    def fail(self, entry: JournalEntry, code: str) -> JournalEntry:
        return self.write(replace(entry, error=code))

    def close(self, entry: JournalEntry) -> None:
        data = _read(self.path)
        data.pop(entry.serial or entry.update_id, None)
        _write_atomic(self.path, data)


class History:
    """Completed updates per camera serial (newest last), for the downgrade budget."""

    def __init__(self, state_dir: str | os.PathLike[str]):
        self.path = Path(state_dir) / HISTORY_NAME

    def of(self, serial: str) -> list[dict[str, Any]]:
        items = _read(self.path).get(serial, [])
        return items if isinstance(items, list) else []

    def downgrades(self, serial: str) -> int:
        return sum(1 for h in self.of(serial) if isinstance(h, dict) and h.get("downgrade"))

    def record(self, serial: str, from_version: str, to_version: str, downgrade: bool, image_sha256: str) -> None:
        data = _read(self.path)
        old = data.get(serial)
        items: list[Any] = old if isinstance(old, list) else []
        items.append({"at": _now(), "from": from_version, "to": to_version, "downgrade": downgrade,
                      "image_sha256": image_sha256})
        data[serial] = items[-200:]
        _write_atomic(self.path, data)
