"""The maintenance window: one lock over the camera, shared by capture sessions, held alone by an update;
and the hand-over of the camera from the daemon's device manager to an update.

A file lock (``flock``) in the state directory, so that it holds across processes: the daemon owns
it and takes it *shared* for every capture session; ``capture-agent firmware update`` (a separate
process, run by an operator) takes it *exclusively* for the whole update. So a session that starts
while an update runs is refused with ``FW_MAINTENANCE``, and an update that starts while a session
runs is refused with ``FW_CAMERA_BUSY``: neither waits, neither can slip in between a check and the
work, and the kernel drops the lock of a process that dies (its journal then tells what was left).

The hand-over. The daemon keeps its cameras open between sessions, and a USB camera has one owner at
a time, so an update must first get the camera back from the daemon:

1. the update takes the lock exclusively, then writes a *request* next to it
   (``camera-maintenance.request``: its pid, the device, when);
2. every process holding a camera open holds ``camera-holder.lock`` *shared* while it does (the
   device manager: from before it opens its cameras until after it has closed all of them);
3. the daemon's device manager sees the request (a ``stat`` every ``[devices] maintenance_poll_s``)
   while the exclusive lock is held, closes its cameras and releases the holder lock;
4. the update waits, bounded (``[firmware] handover_timeout_s``), until nobody holds the holder lock
   (probed with a non-blocking exclusive ``flock``), and only then touches the device; still held at
   the deadline: ``FW_CAMERA_BUSY``, nothing written to the camera;
5. at its end the update removes the request and drops the lock; the device manager opens its cameras
   again (fresh handles, the firmware gate on the new version).

No daemon running: nobody holds the holder lock, the update goes on at once. An update that dies:
the kernel drops its lock and the device manager reopens (a request left behind means nothing
without the lock). Who may do this: only the agent's user and root. The files are 0600 (a lock
file created by root is given to the state directory's owner, so that the daemon can open it), the
request counts only if it is a regular file of root or the daemon's own user that nobody else can
write, and the update refuses to run as anyone else (``FW_NOT_PERMITTED``). The state directory
(0700 under systemd, never writable by its group) is what keeps other users from writing a request;
a user who can open the lock file could only refuse captures, never make the daemon drop its camera.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from firmware.errors import CameraBusy, FirmwareError, MaintenanceActive, MaintenanceNotPermitted

LOCK_NAME = "camera-maintenance.lock"
REQUEST_NAME = "camera-maintenance.request"
HOLDER_NAME = "camera-holder.lock"
HANDOVER_POLL_S = 0.05              # how often an update looks whether the daemon let go of the camera
MAX_REQUEST_BYTES = 4096


def try_lock(fd: int, mode: int) -> bool:
    """``flock`` ``fd`` in ``mode`` without waiting: False when another descriptor's lock is in the way."""
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise


class MaintenanceLock:
    def __init__(self, state_dir: str | os.PathLike[str], *, handover_timeout_s: float = 5.0):
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / LOCK_NAME
        self.request_path = self.state_dir / REQUEST_NAME
        self.holder_path = self.state_dir / HOLDER_NAME
        self.handover_timeout_s = handover_timeout_s
        self.handover_s: float | None = None      # how long the last update waited for the cameras

    def _open(self, path: Path | None = None) -> int:
        path = path or self.path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            # Read-only suffices for flock. 0600: a user who can open the file can hold the lock.
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise FirmwareError(f"cannot open the maintenance lock {path}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            euid = os.geteuid()
            if euid == 0 and st.st_uid == 0:
                # Made by root (an operator's update): the daemon's user must be able to open it too.
                owner = os.stat(path.parent)
                if owner.st_uid != 0:
                    os.fchown(fd, owner.st_uid, owner.st_gid)
            if st.st_uid == euid and st.st_mode & 0o077:
                os.fchmod(fd, 0o600)          # a file from before (0640): nobody but the owner
        except OSError:
            pass                              # not ours to change; the lock works all the same
        return fd

    @contextmanager
    def _hold(self, mode: int, busy: FirmwareError, path: Path | None = None) -> Iterator[int]:
        fd = self._open(path)
        try:
            if not try_lock(fd, mode):
                raise busy
            yield fd
        finally:
            os.close(fd)            # closing the descriptor releases the lock

    def session(self) -> AbstractContextManager[Any]:
        """Held by a capture session while it uses the camera."""
        return self._hold(fcntl.LOCK_SH, MaintenanceActive(
            "a camera firmware update is running: captures are refused until it ends"))

    @contextmanager
    def update(self, device: str = "") -> Iterator[None]:
        """Held by a firmware update (or backup) from start to end: the lock exclusively, the request
        to the daemon, and the wait (bounded) until no process holds the camera."""
        self.check_operator()
        with self._hold(fcntl.LOCK_EX, CameraBusy(
                "a capture session is using the camera: an update never starts during a capture; try again "
                "when it has ended")):
            self._write_request(device)
            try:
                self.handover_s = self.wait_released(self.handover_timeout_s)
                yield
            finally:
                self._remove_request()

    def check_operator(self) -> None:
        """Only the agent's user (the state directory's owner) and root may run an update."""
        euid = os.geteuid()
        try:
            owner = os.stat(self.state_dir).st_uid
        except OSError:
            owner = euid                      # made below, by this user
        if euid not in (0, owner):
            raise MaintenanceNotPermitted(f"camera maintenance runs as the agent's user (uid {owner}) or root, "
                                          f"not uid {euid}")

    def _conflicts(self, path: Path, mode: int) -> bool:
        """Whether another process holds ``path``'s lock so that ``mode`` cannot be had now (probed
        without waiting, and let go at once)."""
        fd = self._open(path)
        try:
            return not try_lock(fd, mode)
        finally:
            os.close(fd)

    def update_running(self) -> bool:
        """Whether some process holds the lock exclusively (an update is running now)."""
        return self._conflicts(self.path, fcntl.LOCK_SH)

    # -- the hand-over: the update's side ----------------------------------------------------------
    def _write_request(self, device: str) -> None:
        # Any request already there is stale (its update is gone: we hold the lock now).
        self._remove_request()
        body = json.dumps({"pid": os.getpid(), "device": device[:200], "started": time.time()}).encode()
        try:
            fd = os.open(self.request_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise FirmwareError(f"cannot write the maintenance request {self.request_path}: {exc.strerror}") from None
        try:
            os.write(fd, body)
        finally:
            os.close(fd)

    def _remove_request(self) -> None:
        try:
            self.request_path.unlink()
        except FileNotFoundError:
            pass

    def cameras_held(self) -> bool:
        """Whether some process (the daemon's device manager) holds a camera open now."""
        return self._conflicts(self.holder_path, fcntl.LOCK_EX)

    def wait_released(self, timeout_s: float) -> float:
        """Wait until no process holds a camera; the seconds it took. ``FW_CAMERA_BUSY`` at the deadline."""
        t0 = time.monotonic()
        while self.cameras_held():
            if time.monotonic() - t0 >= timeout_s:
                raise CameraBusy(f"the capture daemon did not release the camera within {timeout_s:g} s "
                                 "([firmware] handover_timeout_s); nothing was written to the camera. Is the "
                                 "daemon stuck, or another program holding the camera?")
            time.sleep(HANDOVER_POLL_S)
        return time.monotonic() - t0

    # -- the hand-over: the daemon's side ------------------------------------------------------------
    def handover_requested(self) -> dict[str, Any] | None:
        """The running update's request (pid, device, started), or None. Counts only while the lock is
        held exclusively, and only a regular file of root or this process's user nobody else may write."""
        try:
            st = os.lstat(self.request_path)
        except OSError:
            return None
        if (not stat.S_ISREG(st.st_mode) or st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022
                or st.st_size > MAX_REQUEST_BYTES):
            return None
        if not self.update_running():
            return None                        # left behind by an update that died: the lock is free
        try:
            fd = os.open(self.request_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                data = json.loads(os.read(fd, MAX_REQUEST_BYTES) or b"{}")
            finally:
                os.close(fd)
        except (OSError, ValueError):
            data = {}
        return data if isinstance(data, dict) else {}

    def hold_cameras(self) -> CameraHold | None:
        """The holder lock, shared, for a process that opens cameras; None while an update probes it."""
        fd = self._open(self.holder_path)
        try:
            if not try_lock(fd, fcntl.LOCK_SH):
                os.close(fd)
                return None
        except OSError:
            os.close(fd)
            raise
        return CameraHold(fd)


class CameraHold:
    """The holder lock of a process with cameras open; :meth:`release` once every camera is closed."""

    def __init__(self, fd: int):
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
