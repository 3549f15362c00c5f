"""The maintenance window: one lock over the camera, shared by capture sessions, held alone by an update.

A file lock (``flock``) in the state directory, so that it holds across processes: the daemon owns
it and takes it *shared* for every capture session; ``capture-agent firmware update`` (a separate
process, run by an operator) takes it *exclusively* for the whole update. So a session that starts
while an update runs is refused with ``FW_MAINTENANCE``, and an update that starts while a session
runs is refused with ``FW_CAMERA_BUSY``: neither waits, neither can slip in between a check and the
work, and the kernel drops the lock of a process that dies (its journal then tells what was left).
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from firmware.errors import CameraBusy, FirmwareError, MaintenanceActive

LOCK_NAME = "camera-maintenance.lock"


class MaintenanceLock:
    def __init__(self, state_dir: str | os.PathLike[str]):
        self.path = Path(state_dir) / LOCK_NAME

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Read-only suffices for flock; 0640 in the 0750 state directory: the agent's user and group.
            return os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise FirmwareError(f"cannot open the maintenance lock {self.path}: {exc.strerror}") from None

    @contextmanager
    def _hold(self, mode: int, busy: FirmwareError) -> Iterator[None]:
        fd = self._open()
        try:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise busy from None
                raise
            yield
        finally:
            os.close(fd)            # closing the descriptor releases the lock

    def session(self) -> AbstractContextManager[None]:
        """Held by a capture session while it uses the camera."""
        return self._hold(fcntl.LOCK_SH, MaintenanceActive(
            "a camera firmware update is running: captures are refused until it ends"))

    def update(self) -> AbstractContextManager[None]:
        """Held by a firmware update (or backup) from start to end."""
        return self._hold(fcntl.LOCK_EX, CameraBusy(
            "a capture session is using the camera: an update never starts during a capture; try again "
            "when it has ended"))

    def update_running(self) -> bool:
        """Whether some process holds the lock exclusively (an update is running now)."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return True
            raise
        finally:
            os.close(fd)

