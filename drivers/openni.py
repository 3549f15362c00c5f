"""OpenNI2 backend (Orbbec, PrimeSense, ...) over the ``openni`` package: ``openni://URI``, ``openni+file://PATH.oni``.

Query keys (all optional): ``streams`` (comma list of depth, ir, color; default: all the device
has), ``width``/``height``/``fps`` (mode wanted for every stream; a device without it raises
UnsupportedMode), ``registration`` (1 default: depth→color where supported), ``hfov``/``vfov``
(degrees; used only when the device does not report its field of view).

Loading libOpenNI2: ``openni2.initialize(dir)`` wants a dir holding ``libOpenNI2.so`` and the
core looks for drivers as ``<dir>/OpenNI2/Drivers/lib*.so.0``. Debian ships only
``libOpenNI2.so.0``, so we build a private dir of symlinks under the user's runtime/cache dir.
A vendor redistribution can be named with ``CAPTURE_AGENT_OPENNI2_REDIST`` or :func:`configure`.

OpenNI2 is initialised once per process and never unloaded: after a Recorder was used,
``oniShutdown`` segfaults (seen with Debian's build), so recording belongs in a child process.
"""

from __future__ import annotations

import atexit
import ctypes
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import overload

import numpy as np

from .base import Camera, Capability, DepthRange, DeviceInfo, ParsedUri, UsbIdentity
from .errors import (
    BackendUnavailable,
    DeviceLost,
    DeviceNotFound,
    FrameTimeout,
    InvalidSetting,
    InvalidUri,
    RecordingInvalid,
    StreamClosed,
    UnsupportedMode,
)
from .frame import ClockDomain, Extrinsics, Frame, FrameMetadata, Intrinsics, PixelFormat, StreamKind, StreamProfile

try:
    from openni import _openni2 as c_api
    from openni import openni2
    from openni.utils import OpenNIError
except ImportError as exc:  # guarded: a missing SDK disables this backend only
    raise BackendUnavailable(f"the openni package is not installed: {exc}") from None

SYSTEM_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib")
# PrimeSense Carmine / Orbbec Astra nominal FOV, used only when a device does not report its own.
DEFAULT_HFOV_DEG, DEFAULT_VFOV_DEG = 58.0, 45.0
_WAIT_SLICE_S = 0.05               # how often a blocked read checks for disconnect/stop
# ``openni://SERIAL`` (letters and digits) rather than a bus-address URI such as ``2bc5/0401@1/5``.
_SERIAL = re.compile(r"^[A-Za-z0-9_-]{4,64}$")

# Software devices whose driver never joins its frame threads (Debian's DummyDevice; OpenNI2 2.2's
# DummyDevice.cpp): a stream's start() spawns a producer thread that sets the stream's running flag
# as its first act, stop() only clears that flag, and destroying the stream deletes it at once. So a
# stop before the producer ran is undone (it runs on for the life of the process), and a destroy
# before it left makes it segfault in freed memory a moment later. Their streams are stopped only
# once a frame shows the producer running, and destroyed only once the threads their start made
# are gone from /proc/self/task (see _Producers); a handle whose threads do not leave within
# SOFT_STOP_S is parked here for the life of the process instead (never destroyed: that could crash).
_JOIN_BY_TASKS = frozenset({b"Dummy"})
SOFT_STOP_S = 5.0
_parked: list = []
# After the recorded streams stop, how long a frame already inside the driver's callback is given to
# finish before the Recorder is destroyed (libOpenNI2 deadlocks on its locks otherwise; record mode only).
RECORDER_DRAIN_S = 0.1

_redist: Path | None = None
_init_lock = threading.Lock()
_initialized_from: Path | None = None
_listener = None


def _task_ids() -> set[int] | None:
    """This process's native threads (kernel task ids); None when /proc cannot tell."""
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except (OSError, ValueError):
        return None


def _tasks_gone(tids: set[int], deadline: float) -> bool:
    """Wait (polling, until ``deadline``) until none of ``tids`` is a live thread of this process."""
    while True:
        alive = {t for t in tids if os.path.exists(f"/proc/self/task/{t}")}
        if not alive:
            return True
        if time.monotonic() >= deadline:
            return False
        tids = alive
        time.sleep(0.002)


class _Producers:
    """The producer threads a software driver's stream start made, per (device URI, sensor type).

    OpenNI2 shares one driver stream per sensor between all handles of a device: the driver's
    stream starts with the first of them and stops with the last, and is deleted with the last
    one destroyed. So the threads belong to the sensor, and only the handle that stops it last has
    to see them leave before it is destroyed (a handle destroyed while others are started or alive
    does not reach the driver). Threads that appear while ``start`` runs are taken as the driver's:
    another thread of this process made in that instant is waited for too, and a wait that does not
    end parks the handle, which is safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[tuple[bytes, int], int] = {}
        self._threads: dict[tuple[bytes, int], set[int] | None] = {}

    def start(self, key: tuple[bytes, int], st) -> None:
        with self._lock:
            before = _task_ids()
            st.start()
            after = _task_ids()
            self._running[key] = self._running.get(key, 0) + 1
            had = self._threads.get(key, set())
            self._threads[key] = None if before is None or after is None or had is None else had | (after - before)

    def stop(self, key: tuple[bytes, int], st) -> set[int] | None:
        """Stop ``st``; the threads to see leave before it may be destroyed (empty while other
        handles keep the sensor started; None: unknown, so it must not be destroyed)."""
        with self._lock:
            try:
                st.stop()
            except Exception:
                pass
            left = self._running.get(key, 1) - 1
            if left > 0:
                self._running[key] = left
                return set()
            self._running.pop(key, None)
            return self._threads.pop(key, set())


_producers = _Producers()


def configure(redist_dir: str | os.PathLike[str] | None) -> None:
    """Use a vendor OpenNI2 redistribution (a dir with ``libOpenNI2.so`` and ``OpenNI2/Drivers``)."""
    global _redist
    _redist = Path(redist_dir) if redist_dir else None


class UnsafeLibraryDir(BackendUnavailable):
    """The directory OpenNI2 would be loaded from is not private to this user (planted by another
    uid, writable by others, or a symlink): loading a library from it would run their code."""

    code = "DRV_UNSAFE_LIBRARY_DIR"


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _check_private(fd: int, shown: str) -> None:
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        raise UnsafeLibraryDir(f"{shown} belongs to uid {st.st_uid}, not to this process (uid {os.geteuid()}); "
                               "refusing to load OpenNI2 from it (remove it, or set XDG_RUNTIME_DIR)")
    if st.st_mode & 0o022:
        raise UnsafeLibraryDir(f"{shown} has mode {st.st_mode & 0o777:04o}; refusing to load OpenNI2 from a "
                               "directory others can write (it must be 0700)")
    if st.st_mode & 0o077:
        os.fchmod(fd, 0o700)                       # ours and unchanged by others, only too open: tighten


def _private_dir(trusted: Path, names: tuple[str, ...]) -> tuple[Path, int]:
    """``trusted/names[0]/names[1]/...``, each created 0700 if absent and each checked through an
    open descriptor: a directory (``O_NOFOLLOW``: not a symlink), owned by us, no access for group
    or others. ``trusted`` itself is taken as it is (``/tmp``: root's and sticky, so no one else can
    rename or replace what we own in it). Returns the path and an open descriptor of the last one."""
    fd = os.open(trusted, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    path = trusted
    try:
        for name in names:
            path = path / name
            try:
                os.mkdir(name, 0o700, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:                     # ELOOP: a symlink; ENOTDIR: a file
                raise UnsafeLibraryDir(f"{path} is not a directory of ours ({exc.strerror}); refusing to load "
                                       "OpenNI2 from it") from None
            os.close(fd)
            fd = child
            _check_private(fd, str(path))
    except BaseException:
        os.close(fd)
        raise
    return path, fd


def _runtime_dir() -> tuple[Path, tuple[str, ...]]:
    """Where the link directory lives: ``$XDG_RUNTIME_DIR/openni2`` when that is ours and private,
    else ``<tmp>/capture-agent-<uid>/openni2``."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        try:
            st = os.stat(xdg)
            if st.st_uid == os.geteuid() and not st.st_mode & 0o077 and os.path.isdir(xdg):
                return Path(xdg), ("openni2",)
        except OSError:
            pass
    return Path(tempfile.gettempdir()), (f"capture-agent-{os.getuid()}", "openni2")


def _check_redist(redist: Path) -> None:
    """A vendor redistribution is loaded as it is: it must be root's or ours, and no one else's to change."""
    for p in (redist, redist / "libOpenNI2.so"):
        st = os.stat(p)
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            raise UnsafeLibraryDir(f"{p} is owned by uid {st.st_uid} with mode {st.st_mode & 0o777:04o}; an OpenNI2 "
                                   "redistribution must belong to root or this user and not be writable by others")


def prepare_library_dir(redist: Path | None = None, lib_dirs: tuple[str, ...] = SYSTEM_LIB_DIRS,
                        runtime_dir: Path | None = None) -> Path:
    """A dir that ``openni2.initialize`` accepts: the vendor redist, or symlinks to the system lib
    in a private directory (``runtime_dir``: created there, its parent trusted; default
    :func:`_runtime_dir`). A directory another uid made, or one others may write, is refused with
    ``DRV_UNSAFE_LIBRARY_DIR``: ``dlopen`` would run whatever library it holds."""
    if redist is not None:
        if not (redist / "libOpenNI2.so").exists():
            raise BackendUnavailable(f"OpenNI2 redistribution {redist} has no libOpenNI2.so")
        _check_redist(redist)
        return redist
    for d in lib_dirs:
        lib = Path(d) / "libOpenNI2.so.0"
        drivers = Path(d) / "OpenNI2" / "Drivers"
        if lib.exists() and drivers.is_dir():
            break
    else:
        raise BackendUnavailable("libOpenNI2.so.0 not found (install Debian's libopenni2-0 or set "
                                 "CAPTURE_AGENT_OPENNI2_REDIST to a vendor redistribution)")
    trusted, names = (runtime_dir.parent, (runtime_dir.name,)) if runtime_dir is not None else _runtime_dir()
    out, fd = _private_dir(trusted, names)
    try:
        for name, target in (("libOpenNI2.so", lib), ("OpenNI2", Path(d) / "OpenNI2")):
            try:
                if os.readlink(name, dir_fd=fd) == str(target):
                    continue
            except OSError:
                pass                                   # absent, or not a link: replaced below
            tmp = f".{name}.{os.getpid()}"
            try:
                os.unlink(tmp, dir_fd=fd)
            except FileNotFoundError:
                pass
            os.symlink(target, tmp, dir_fd=fd)
            os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)   # atomic: concurrent agents never see half a link
    finally:
        os.close(fd)
    return out


def ensure_initialized() -> Path:
    global _initialized_from, _listener
    with _init_lock:
        if _initialized_from is None:
            env = os.environ.get("CAPTURE_AGENT_OPENNI2_REDIST")
            d = prepare_library_dir(_redist or (Path(env) if env else None))
            try:
                openni2.initialize(str(d))
            except Exception as exc:
                raise BackendUnavailable(f"OpenNI2 could not be loaded from {d}: {exc}") from None
            _initialized_from = d
            _listener = _Listener()
            atexit.register(_skip_shutdown)   # runs before openni2's own atexit unload (LIFO)
        return _initialized_from


def _skip_shutdown() -> None:
    # Never run oniShutdown: it segfaults after a Recorder was used and at exit buys nothing.
    # openni2.unload and every handle's close() check this flag and then skip the C calls.
    openni2._openni2_initialized = False


class _Listener(openni2.DeviceListener):
    """OpenNI2 connect/disconnect callbacks, fanned out to open cameras by device URI."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._cameras: dict[bytes, set] = {}

    def watch(self, uri: bytes, cam: OpenNICamera) -> None:
        with self._lock:
            self._cameras.setdefault(uri, set()).add(cam)

    def unwatch(self, uri: bytes, cam: OpenNICamera) -> None:
        with self._lock:
            self._cameras.get(uri, set()).discard(cam)

    def on_disconnected(self, devinfo) -> None:
        with self._lock:
            cams = list(self._cameras.get(bytes(devinfo.uri), ()))
        for cam in cams:
            cam._mark_lost("OpenNI2 reported the device disconnected")

    def on_connected(self, devinfo) -> None:  # hot-plug is observed by the device manager's re-open
        pass

    def on_state_changed(self, devinfo, state) -> None:
        if state == c_api.OniDeviceState.ONI_DEVICE_STATE_ERROR:
            self.on_disconnected(devinfo)


_SENSORS = {StreamKind.DEPTH: openni2.SENSOR_DEPTH, StreamKind.IR: openni2.SENSOR_IR,
            StreamKind.COLOR: openni2.SENSOR_COLOR}
_PF = c_api.OniPixelFormat
# OpenNI pixel format -> (our format, bytes per pixel, depth scale in metres per unit)
_FORMATS = {
    _PF.ONI_PIXEL_FORMAT_DEPTH_1_MM: (PixelFormat.Z16, 2, 0.001),
    _PF.ONI_PIXEL_FORMAT_DEPTH_100_UM: (PixelFormat.Z16, 2, 0.0001),
    _PF.ONI_PIXEL_FORMAT_RGB888: (PixelFormat.BGR8, 3, 0.0),
    _PF.ONI_PIXEL_FORMAT_GRAY8: (PixelFormat.Y8, 1, 0.0),
    _PF.ONI_PIXEL_FORMAT_GRAY16: (PixelFormat.Y16, 2, 0.0),
}


def _same_mode(a, b) -> bool:
    return (a.pixelFormat, a.resolutionX, a.resolutionY, a.fps) == (b.pixelFormat, b.resolutionX, b.resolutionY, b.fps)


def intrinsics_from_fov(width: int, height: int, hfov_rad: float, vfov_rad: float) -> Intrinsics:
    """Pinhole intrinsics from OpenNI's fields of view (OpenNI reports no distortion)."""
    if not (0 < hfov_rad < math.pi and 0 < vfov_rad < math.pi):
        raise ValueError(f"field of view out of range: {hfov_rad}, {vfov_rad} rad")
    fx = (width / 2.0) / math.tan(hfov_rad / 2.0)
    fy = (height / 2.0) / math.tan(vfov_rad / 2.0)
    return Intrinsics(width, height, fx, fy, (width - 1) / 2.0, (height - 1) / 2.0)


@overload
def _q_float(parsed: ParsedUri, key: str, default: float) -> float: ...
@overload
def _q_float(parsed: ParsedUri, key: str, default: None) -> float | None: ...
def _q_float(parsed: ParsedUri, key: str, default: float | None) -> float | None:
    if key not in parsed.query:
        return default
    try:
        return float(parsed.query[key])
    except ValueError:
        raise InvalidUri(f"{key}={parsed.query[key]!r} is not a number in {parsed.raw!r}") from None


class OpenNICamera(Camera):
    def __init__(self, parsed: ParsedUri):
        ensure_initialized()
        self._parsed = parsed
        self._is_file = parsed.scheme == "openni+file"
        unknown = set(parsed.query) - {"streams", "width", "height", "fps", "registration", "hfov", "vfov"}
        if unknown:
            raise InvalidUri(f"unknown openni URI keys {sorted(unknown)} in {parsed.raw!r}")
        self._want = self._wanted_streams(parsed)
        self._mode = tuple(None if v is None else (int(v) if v == int(v) else v)
                           for v in (_q_float(parsed, k, None) for k in ("width", "height", "fps")))
        self._registration = parsed.query.get("registration", "1") not in ("0", "false", "off")
        self._fov = (math.radians(_q_float(parsed, "hfov", DEFAULT_HFOV_DEG)),
                     math.radians(_q_float(parsed, "vfov", DEFAULT_VFOV_DEG)))
        self._device = self._open_device()
        try:
            self._uri_bytes = bytes(self._device.get_device_info().uri)
        except BaseException:
            self._device.close()
            raise
        self._soft = self._uri_bytes in _JOIN_BY_TASKS
        self._streams: dict[StreamKind, openni2.VideoStream] = {}
        self._running: set[StreamKind] = set()          # streams started (and not yet stopped)
        self._framed: set[StreamKind] = set()           # ... of which a frame was read since
        self._parked_any = False
        self._waits: set[int] | None = set()            # producer threads to see leave before destroying
        self._profiles: dict[StreamKind, StreamProfile] = {}
        self._notes: list[str] = []
        self._registered = False
        self._lost: str | None = None
        self._closed = False
        self._started = False
        self._frames_left: dict[StreamKind, int] = {}
        self._depth_range: DepthRange | None = None
        # Held around every SDK call on the streams, so stop() from another thread never destroys a
        # stream under a wait or read (that crashes the C library). Waits are 50 ms slices.
        self._io = threading.Lock()
        dev = self._device.get_device_info()
        # No projector control and no IR exposure lock. An Astra on Orbbec's own OpenNI2 build takes its
        # laser, IR exposure and IR gain as device properties (OBEXTENSION_ID_LASER_EN, _IR_EXP,
        # _IR_GAIN; Orbbec's ros2_astra_camera sets them so), but the stock OpenNI2 this backend loads
        # has no such properties, their units are unpublished, and nothing documents when a laser
        # write lands: a session on this backend runs the illumination challenge alone.
        self.capabilities = frozenset({Capability.RECORDING}) if self._is_file else frozenset()
        self._usb = None
        if dev.usbVendorId:
            self._usb = UsbIdentity(int(dev.usbVendorId), int(dev.usbProductId))
        self._name = f"{dev.vendor.decode(errors='replace')} {dev.name.decode(errors='replace')}".strip()

    # -- opening --------------------------------------------------------------------------
    @staticmethod
    def _wanted_streams(parsed: ParsedUri) -> tuple[StreamKind, ...] | None:
        if "streams" not in parsed.query:
            return None
        out = []
        for s in parsed.query["streams"].split(","):
            try:
                out.append(StreamKind(s.strip().lower()))
            except ValueError:
                raise InvalidUri(f"unknown stream {s!r} in {parsed.raw!r} (depth, ir, color)") from None
        return tuple(out)

    def _open_device(self):
        target = self._parsed.target
        if self._is_file:
            path = Path(target)
            if not path.is_file():
                raise RecordingInvalid(f"OpenNI recording {path} does not exist")
            try:
                with path.open("rb") as fh:
                    magic = fh.read(4)
            except OSError as exc:
                raise RecordingInvalid(f"cannot read OpenNI recording {path}: {exc.strerror}") from None
            if magic != b"NI10":   # checked before the SDK sees it: its parser trusts the file
                raise RecordingInvalid(f"{path} is not an OpenNI recording (bad header)")
            try:
                return openni2.Device.open_file(str(path).encode())
            except OpenNIError as exc:
                raise RecordingInvalid(f"OpenNI cannot open recording {path}: {exc}") from None
        if not target:
            raise InvalidUri("openni:// needs a serial or a device URI (e.g. openni://Dummy); "
                             "see `capture-agent devices`")
        if _SERIAL.match(target) and target != "Dummy":
            return self._open_by_serial(target)
        try:
            return openni2.Device(target.encode())
        except OpenNIError as exc:
            raise DeviceNotFound(f"OpenNI device {target!r} cannot be opened: {exc}") from None

    @staticmethod
    def _open_by_serial(serial: str):
        """The connected device with this serial. OpenNI names devices by bus address
        (``2bc5/0401@1/5``), which changes on re-plug; the serial does not, but OpenNI tells it only
        once a device is open, so each candidate is opened and asked."""
        for uri in _device_uris():
            if b"@" not in uri:
                continue                     # not a USB device (Dummy, an open recording)
            try:
                dev = openni2.Device(uri)
            except OpenNIError:
                continue                     # busy or gone since it was listed
            if _serial_of(dev) == serial:
                return dev
            try:
                dev.close()
            except Exception:
                pass
        raise DeviceNotFound(f"no OpenNI device with serial {serial!r} is connected")

    # -- Camera ----------------------------------------------------------------------------
    @property
    def info(self) -> DeviceInfo:
        kinds = tuple(k.value for k in self._profiles) if self._profiles else (
            () if self._closed else tuple(k.value for k in self._available()))
        return DeviceInfo(uri=self._parsed.raw, backend="openni", name=self._name or "OpenNI device",
                          serial=self._serial(), usb=self._usb, streams=kinds, is_recording=self._is_file,
                          note="; ".join(self._notes))

    def _serial(self) -> str:
        return _serial_of(self._device)

    def _available(self) -> list[StreamKind]:
        return [k for k, s in _SENSORS.items() if self._device.has_sensor(s)]

    def profiles(self) -> list[StreamProfile]:
        return list(self._profiles.values())

    def extrinsics(self, src: StreamKind, dst: StreamKind) -> Extrinsics:
        # Depth and IR come from the same imager. With depth→color registration on, the device has
        # already re-projected depth into color's geometry. OpenNI2 exposes no calibration otherwise.
        if src == dst or {src, dst} <= {StreamKind.DEPTH, StreamKind.IR} or self._registered:
            return Extrinsics.identity()
        raise UnsupportedMode(f"OpenNI2 reports no {src.value}→{dst.value} calibration without registration")

    def _pick_mode(self, kind: StreamKind, sensor, like=None):
        """The mode for one stream. Depth: the URI's mode, else one that meets §7.5 h (≥ 640×400,
        ≥ 10 fps) at the highest rate up to 30 fps and the smallest size (the largest mode is often
        a slow one: an Embedded S gives depth at 7 fps in its largest); a device with none gets its
        best and a note. The other streams (``like`` = depth's mode): depth's size and rate where
        offered, so registration and the matcher work on equal frames."""
        modes = [m for m in self._device.get_sensor_info(sensor).videoModes if m.pixelFormat in _FORMATS]
        w, h, fps = self._mode
        ok = [m for m in modes if (w is None or m.resolutionX == w) and (h is None or m.resolutionY == h)
              and (fps is None or m.fps == fps)]
        if not ok:
            offered = ", ".join(f"{m.resolutionX}x{m.resolutionY}@{m.fps}" for m in modes) or "none"
            raise UnsupportedMode(f"OpenNI {kind.value} has no mode {w}x{h}@{fps} (offered: {offered})")
        if like is not None:
            same = [m for m in ok if (m.resolutionX, m.resolutionY, m.fps) == (like.resolutionX, like.resolutionY,
                                                                                like.fps)]
            if same:
                return same[0]
            rate = [m for m in ok if m.fps == like.fps] or ok
            pick = min(rate, key=lambda m: abs(m.resolutionX * m.resolutionY - like.resolutionX * like.resolutionY))
            self._notes.append(f"{kind.value} {pick.resolutionX}x{pick.resolutionY}@{pick.fps} differs from depth's "
                               f"{like.resolutionX}x{like.resolutionY}@{like.fps}")
            return pick
        spec = [m for m in ok if m.resolutionX >= 640 and m.resolutionY >= 400 and m.fps >= 10]
        if spec:
            return min(spec, key=lambda m: (-min(m.fps, 30), m.resolutionX * m.resolutionY))
        best = max(ok, key=lambda m: (m.fps >= 10, m.resolutionX * m.resolutionY, m.fps))
        self._notes.append(f"no {kind.value} mode meets 640x400 at 10 fps (§7.5 h); using "
                           f"{best.resolutionX}x{best.resolutionY}@{best.fps}")
        return best

    def start(self) -> None:
        if self._closed:
            raise StreamClosed("OpenNI camera was stopped; open it again")
        if self._started:
            return
        kinds = self._available() if self._want is None else list(self._want)
        kinds.sort(key=lambda k: k is not StreamKind.DEPTH)         # depth's mode sets the others'
        for k in kinds:
            if not self._device.has_sensor(_SENSORS[k]):
                raise UnsupportedMode(f"OpenNI device {self._name!r} has no {k.value} sensor")
        depth_mode = None
        try:
            for k in kinds:
                sensor = _SENSORS[k]
                mode = None if self._is_file else self._pick_mode(k, sensor, like=depth_mode)
                if k is StreamKind.DEPTH:
                    depth_mode = mode
                st = self._device.create_stream(sensor)
                # Listed as soon as it exists: a failure from here on (a mode the device refuses)
                # destroys it with the others in ``_teardown``. Listed after ``set_video_mode``, a
                # refused mode left it undestroyed, and its OpenNI frame thread, for the process's life.
                self._streams[k] = st
                if mode is not None and not _same_mode(st.get_video_mode(), mode):
                    st.set_video_mode(mode)
                self._try(partial(st.set_mirroring_enabled, False), f"{k.value}: mirroring cannot be switched off")
            if self._registration and StreamKind.DEPTH in self._streams and StreamKind.COLOR in self._streams:
                mode = c_api.OniImageRegistrationMode.ONI_IMAGE_REGISTRATION_DEPTH_TO_COLOR
                if self._device.is_image_registration_mode_supported(mode):
                    self._registered = self._try(lambda: self._device.set_image_registration_mode(mode),
                                                 "depth→color registration failed")
                else:
                    self._notes.append("depth→color registration not supported by the device")
                self._try(lambda: self._device.set_depth_color_sync_enabled(True), "depth-color sync not supported")
            if self._is_file:
                self._device.playback.set_repeat_enabled(False)
            for k, st in self._streams.items():
                if self._soft:
                    _producers.start((self._uri_bytes, int(_SENSORS[k])), st)
                else:
                    st.start()
                self._running.add(k)
                self._profiles[k] = self._profile(k, st)
                if k is StreamKind.DEPTH:
                    self._depth_range = self._ask_depth_range(st)
                if self._is_file:
                    self._frames_left[k] = st.get_number_of_frames()
        except OpenNIError as exc:
            self._abandon_start()
            both = "" if not {StreamKind.IR, StreamKind.COLOR} <= set(kinds) else (
                "; Astra-class devices cannot stream IR and colour together: use streams=depth,ir and a separate "
                "colour camera in [camera] uris (Astra Pro colour is a UVC camera)")
            raise UnsupportedMode(f"OpenNI cannot start streams {[k.value for k in kinds]}: {exc}{both}") from None
        except BaseException:
            self._abandon_start()               # e.g. an unsupported pixel format: no stream left running
            raise
        assert _listener is not None            # made by ensure_initialized(), which __init__ called
        _listener.watch(self._uri_bytes, self)
        self._started = True

    def record_to(self, path: str) -> Callable[[], None]:
        """Record the started streams into an ``.oni`` file with OpenNI's own Recorder (the agent's
        lab-only record mode); returns the function that finishes the file. After a Recorder was
        used oniShutdown segfaults here: this module never runs it."""
        if not self._started:
            raise StreamClosed("start the OpenNI camera before recording it")
        rec = openni2.Recorder(path.encode())
        with self._io:
            for st in self._streams.values():
                rec.attach(st)
            rec.start()

        def finish() -> None:
            with self._io:
                # The streams stop first and frames in flight drain: libOpenNI2 deadlocked in
                # oniRecorderDestroy (its lock against a frame callback's) about one time in six.
                self._halt()
                time.sleep(RECORDER_DRAIN_S)
                rec.stop()
                rec.close()
        return finish

    def _try(self, fn, note: str) -> bool:
        try:
            fn()
            return True
        except OpenNIError:
            self._notes.append(note)
            return False

    def _profile(self, kind: StreamKind, st) -> StreamProfile:
        vm = st.get_video_mode()
        if vm.pixelFormat not in _FORMATS:
            raise UnsupportedMode(f"OpenNI {kind.value} pixel format {vm.pixelFormat} is not supported")
        fmt = _FORMATS[vm.pixelFormat][0]
        try:
            hfov, vfov = st.get_horizontal_fov(), st.get_vertical_fov()
            intr = intrinsics_from_fov(vm.resolutionX, vm.resolutionY, hfov, vfov)
        except (OpenNIError, ValueError):
            intr = intrinsics_from_fov(vm.resolutionX, vm.resolutionY, *self._fov)
            self._notes.append(f"{kind.value}: device reports no field of view; nominal FOV used")
        return StreamProfile(kind, vm.resolutionX, vm.resolutionY, float(vm.fps), fmt, 0, intr)

    def depth_range(self) -> DepthRange | None:
        """The depth stream's pixel value range (``getMinPixelValue``/``getMaxPixelValue``) in
        metres; None when the driver does not report it (the Dummy device, some recordings)."""
        return self._depth_range

    @staticmethod
    def _ask_depth_range(st) -> DepthRange | None:
        try:
            fmt = _FORMATS.get(st.get_video_mode().pixelFormat)
            lo, hi = int(st.get_min_pixel_value()), int(st.get_max_pixel_value())
        except OpenNIError:
            return None                          # ONI_STATUS_NOT_IMPLEMENTED on drivers that do not say
        if fmt is None or fmt[0] is not PixelFormat.Z16:
            return None
        scale = fmt[2]
        try:
            # 0 is "no depth" in OpenNI, not a distance: a minimum of 0 states nothing.
            return DepthRange(lo * scale if lo > 0 else None, hi * scale if hi > lo else None,
                              "OpenNI depth stream's min/max pixel value")
        except InvalidSetting:
            return None

    def _mark_lost(self, why: str) -> None:
        self._lost = why

    def read(self, timeout_s: float = 1.0) -> Frame:
        if self._closed:
            raise StreamClosed("OpenNI camera is stopped")
        if not self._started:
            raise StreamClosed("OpenNI camera not started")
        deadline = time.monotonic() + max(0.0, timeout_s)
        live = [(k, s) for k, s in self._streams.items() if self._frames_left.get(k, 1) > 0]
        if not live:
            raise StreamClosed(f"end of OpenNI recording {self._parsed.target}")
        streams = [s for _, s in live]
        while True:
            if self._lost:
                raise DeviceLost(f"OpenNI device {self._uri_bytes.decode(errors='replace')}: {self._lost}")
            if self._closed:
                raise StreamClosed("OpenNI camera was stopped during read")
            left = deadline - time.monotonic()
            if left <= 0:
                raise FrameTimeout(f"no OpenNI frame within {timeout_s:.3f} s")
            with self._io:
                if self._closed:
                    raise StreamClosed("OpenNI camera was stopped during read")
                try:
                    ready = openni2.wait_for_any_stream(streams, min(left, _WAIT_SLICE_S))
                except OpenNIError as exc:
                    raise DeviceLost(f"OpenNI wait failed: {exc}") from None
                if ready is not None:
                    kind = next(k for k, s in live if s is ready)
                    return self._convert(kind, ready)

    def _convert(self, kind: StreamKind, st) -> Frame:
        try:
            of = st.read_frame()
        except OpenNIError as exc:
            raise DeviceLost(f"OpenNI {kind.value} read failed: {exc}") from None
        try:
            fmt, bpp, scale = _FORMATS[of.videoMode.pixelFormat]
            w, h, stride = of.width, of.height, of.stride
            raw = np.frombuffer(of.get_buffer_as_uint8(), dtype=np.uint8, count=h * stride)
            rows = raw.reshape(h, stride)[:, : w * bpp]
            px: np.ndarray
            if bpp == 2:
                px = rows.copy().view(np.uint16).reshape(h, w)
            elif bpp == 3:
                px = rows.reshape(h, w, 3)[:, :, ::-1].copy()   # OpenNI RGB888 → our BGR8
            else:
                px = rows.copy()
            ts_us, index = int(of.timestamp), int(of.frameIndex)
        finally:
            of.close()   # hand the SDK buffer back at once; our pixels are a copy
        self._framed.add(kind)
        if kind in self._frames_left:
            self._frames_left[kind] -= 1
        prof = self._profiles[kind]
        assert prof.intrinsics is not None      # _profile() gives every stream its intrinsics
        intr = prof.intrinsics if (prof.width, prof.height) == (w, h) else prof.intrinsics.scaled(w, h)
        md = FrameMetadata(frame_counter=index, sensor_timestamp_us=ts_us)
        if kind is StreamKind.DEPTH and self._depth_range is not None:
            md = self._depth_range.stamp(md)
        return Frame(stream=kind, pixels=px, format=fmt, timestamp_ms=ts_us / 1000.0,
                     clock_domain=ClockDomain.HARDWARE, host_time_ns=time.monotonic_ns(), frame_number=index,
                     intrinsics=intr, device_serial=self._serial(), depth_scale=scale, metadata=md)

    def _halt(self) -> None:
        """oniStreamStop on every stream. A software driver's (``_JOIN_BY_TASKS``) started streams
        are stopped only once each has had a frame (its producer has set its running flag; stopped
        before that, the Dummy's producer ran on in 38 of 40 tries), and the producer threads the
        last stop ends are kept in ``_waits`` for ``_teardown``."""
        if not self._soft:
            for st in self._streams.values():
                try:
                    st.stop()
                except Exception:
                    pass
            self._running.clear()
            return
        deadline = time.monotonic() + SOFT_STOP_S
        started = [(k, st) for k, st in self._streams.items() if k in self._running]
        for k, st in started:
            if k in self._framed:
                continue
            try:
                openni2.wait_for_any_stream([st], max(0.0, deadline - time.monotonic()))
            except OpenNIError:
                pass
        for k, st in started:
            tids = _producers.stop((self._uri_bytes, int(_SENSORS[k])), st)
            self._waits = None if tids is None or self._waits is None else self._waits | tids
        self._running.clear()
        self._framed.clear()

    def _abandon_start(self) -> None:
        """A ``start()`` that failed part-way: its streams torn down, and nothing it listed for them
        (profiles, depth range, a recording's frame counts) left to say they stream."""
        self._teardown()
        self._profiles.clear()
        self._frames_left.clear()
        self._depth_range = None

    def _teardown(self) -> None:
        """Stop every stream, then destroy it (oniStreamStop, then oniStreamDestroy; ``stop``
        closes the device after). A software driver's streams are destroyed only once its producer
        threads have left this process, else parked for its life (destroying them could crash)."""
        self._halt()
        waits, self._waits = self._waits, set()
        if self._soft and self._streams and (waits is None or not _tasks_gone(waits, time.monotonic() + SOFT_STOP_S)):
            _parked.extend(self._streams.values())
            self._parked_any = True
        else:
            for st in self._streams.values():
                try:
                    st.close()
                except Exception:
                    pass
        self._streams.clear()

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        if _listener is not None:
            _listener.unwatch(self._uri_bytes, self)
        with self._io:
            self._teardown()
        if self._parked_any:
            _parked.append(self._device)        # a parked stream keeps its device open
            return
        try:
            self._device.close()
        except Exception:
            pass


def _serial_of(dev) -> str:
    try:
        buf = dev.get_property(c_api.ONI_DEVICE_PROPERTY_SERIAL_NUMBER, (ctypes.c_char * 64))
        return bytes(buf).split(b"\0", 1)[0].decode(errors="replace")
    except Exception:  # Dummy and file devices have no serial
        return ""


def _device_uris() -> list[bytes]:
    pdevs = ctypes.POINTER(c_api.OniDeviceInfo)()
    count = ctypes.c_int()
    c_api.oniGetDeviceList(ctypes.byref(pdevs), ctypes.byref(count))
    try:
        return [bytes(pdevs[i].uri) for i in range(count.value)]
    finally:
        c_api.oniReleaseDeviceList(pdevs)


def open_camera(parsed: ParsedUri) -> Camera:
    return OpenNICamera(parsed)


def list_devices() -> list[DeviceInfo]:
    ensure_initialized()
    pdevs = ctypes.POINTER(c_api.OniDeviceInfo)()
    count = ctypes.c_int()
    c_api.oniGetDeviceList(ctypes.byref(pdevs), ctypes.byref(count))
    out = []
    try:
        for i in range(count.value):
            d = pdevs[i]
            uri = bytes(d.uri).decode(errors="replace")
            usb = UsbIdentity(int(d.usbVendorId), int(d.usbProductId)) if d.usbVendorId else None
            name = f"{bytes(d.vendor).decode(errors='replace')} {bytes(d.name).decode(errors='replace')}".strip()
            out.append(DeviceInfo(uri=f"openni://{uri}", backend="openni", name=name or uri, usb=usb,
                                  note="streams known once opened"))
    finally:
        c_api.oniReleaseDeviceList(pdevs)
    return out
