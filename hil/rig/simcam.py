"""``rigsim://?dir=DIR``: the simulated rig's camera, a real sim camera behind a rig-controlled plug.

A physical rig changes the world in front of a camera the agent keeps using: a lamp dims, a
turntable brings a mask round, a hub port loses power. The simulated rig does the same to a
``sim://`` camera without touching the agent: :class:`hil.rig.sim.SimRig` writes the scene into
``DIR`` and this camera reads it each time the agent opens it.

``DIR`` holds (written atomically by the rig, read here):

* ``scene.json``: ``{"uri": "sim://?...", "device": {...}}`` — the sim URI of the scene (opened with
  ``drivers.open``, so the simulator validates it) and the USB identity the camera presents: the
  genuine camera's, or a red-team device's (a virtual camera has no bus path, an HDMI grabber its
  own VID:PID and colour only);
* ``plugged``: present while the port has power; ``enumeration``: bumped at every re-plug. This is
  the marker layout of ``hil/fakes/usbcam.py``'s fake bus, so the fake ``uhubctl`` drives both.

Like a real device: opening an unplugged camera is ``DRV_DEVICE_NOT_FOUND``; a read after the plug
went, or after it came back (a handle from before a re-plug is dead), is ``DRV_DEVICE_LOST``. An open
camera follows a new scene from its next frame; a new device identity loses it.
The agent's daemon sees this backend only when started by the HIL runner (``hil.rig.agentproc``);
the production daemon never registers it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import drivers
from drivers import Camera, Capability, DeviceInfo, ExposureSetting, Frame, StreamKind, UsbIdentity
from drivers.base import ParsedUri, exposure_lock_capability
from drivers.errors import CapabilityUnsupported, DeviceLost, DeviceNotFound, InvalidUri, StreamClosed
from drivers.frame import Extrinsics, StreamProfile

SCHEME = "rigsim"
_PROJECTOR = frozenset({Capability.PROJECTOR_CONTROL, Capability.PROJECTOR_POWER})


def register() -> None:
    """Add the ``rigsim`` scheme to this process's driver registry (HIL daemons and tests only)."""
    drivers.register_backend(SCHEME, __name__, (SCHEME,), "HIL simulated rig: a sim camera behind a rig's plug")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)              # the camera never reads half a file


class Plug:
    """The rig side of the plug markers in ``DIR``."""

    def __init__(self, directory: Path):
        self.dir = directory

    @property
    def plugged(self) -> bool:
        return (self.dir / "plugged").exists()

    @property
    def enumeration(self) -> int:
        try:
            return int((self.dir / "enumeration").read_text() or "0")
        except (OSError, ValueError):
            return 0

    def unplug(self) -> None:
        (self.dir / "plugged").unlink(missing_ok=True)

    def plug(self) -> None:
        if not self.plugged:
            write_atomic(self.dir / "enumeration", str(self.enumeration + 1))
            (self.dir / "plugged").touch()


class RigSimCamera(Camera):
    def __init__(self, parsed: ParsedUri):
        d = parsed.query.get("dir", "")
        if not d or parsed.target not in ("", "/"):
            raise InvalidUri(f"{SCHEME}:// takes only ?dir=DIR (got {parsed.raw!r})")
        self._uri = parsed.raw
        self._plug = Plug(Path(d))
        if not self._plug.plugged:
            raise DeviceNotFound(f"{self._uri}: no device (the rig's USB port is off)")
        self._enumeration = self._plug.enumeration
        scene = self._read_scene()
        dev: dict[str, Any] = scene.get("device") or {}
        self._device = dev
        self._streams = tuple(dev.get("streams") or ("color", "depth", "ir"))
        self._inner = drivers.open(scene["uri"])
        inner_info = self._inner.info
        usb = None
        if dev.get("vendor_id") is not None:
            usb = UsbIdentity(int(dev["vendor_id"]), int(dev["product_id"]), str(dev.get("serial", "")),
                              int(dev.get("bcd_device", 0)), str(dev.get("bus_path", "")))
        self._info = DeviceInfo(uri=self._uri, backend=SCHEME, name=str(dev.get("name", inner_info.name)),
                                serial=str(dev.get("serial", inner_info.serial)),
                                firmware=str(dev.get("firmware", inner_info.firmware)), usb=usb,
                                streams=self._streams)
        caps = self._inner.capabilities
        if "ir" not in self._streams:             # a colour-only device (an HDMI grabber) has no projector
            caps = caps - _PROJECTOR
        if "ir" not in self._streams and "depth" not in self._streams:
            caps = caps - {Capability.EXPOSURE_LOCK_IR}
        if "color" not in self._streams:           # nor an IR/depth-only one a colour imager
            caps = caps - {Capability.EXPOSURE_LOCK_COLOR, Capability.EXPOSURE_REGION}
        self.capabilities = caps

    def _read_scene(self) -> dict[str, Any]:
        path = self._plug.dir / "scene.json"
        try:
            self._scene_mtime = path.stat().st_mtime_ns
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DeviceNotFound(f"{self._uri}: the rig has set no scene ({exc})") from None

    def _follow_scene(self) -> None:
        """The rig changed the scene in front of an open camera (a caller that keeps its camera open
        between sessions): the new scene from the next frame on, as a lamp or a turntable acts on a
        live camera. A different device identity is a different device: the old one is lost."""
        try:
            changed = (self._plug.dir / "scene.json").stat().st_mtime_ns != self._scene_mtime
        except OSError:
            changed = False
        if not changed:
            return
        scene = self._read_scene()
        if (scene.get("device") or {}) != self._device:
            raise DeviceLost(f"{self._uri}: another device is on the rig's port now")
        inner = drivers.open(scene["uri"])
        inner.start()
        old, self._inner = self._inner, inner
        old.stop()

    @property
    def info(self) -> DeviceInfo:
        return self._info

    @property
    def waits_for_reader(self) -> bool:  # type: ignore[override]
        """Its simulator's (``Camera.waits_for_reader``): the rig's port and scene do not change when it
        captures (a ``realtime=0`` scene waits for its reader; late29's lateness check must not read it as a
        streaming camera)."""
        return bool(getattr(self._inner, "waits_for_reader", False))

    def profiles(self) -> list[StreamProfile]:
        return [p for p in self._inner.profiles() if p.kind.value in self._streams]

    def extrinsics(self, src: StreamKind, dst: StreamKind) -> Extrinsics:
        return self._inner.extrinsics(src, dst)

    def _check_plug(self) -> None:
        if not self._plug.plugged or self._plug.enumeration != self._enumeration:
            time.sleep(0.05)                  # a real SDK's wait returns nothing first
            raise DeviceLost(f"{self._uri}: device unplugged")

    def start(self) -> None:
        self._check_plug()
        self._inner.start()

    def read(self, timeout_s: float = 1.0) -> Frame:
        deadline = time.monotonic() + timeout_s
        while True:
            self._check_plug()
            self._follow_scene()
            f = self._inner.read(max(0.01, deadline - time.monotonic()))
            if f.stream.value in self._streams:
                return f

    def stop(self) -> None:
        self._inner.stop()

    def _need(self, cap: Capability) -> None:
        if cap not in self.capabilities:
            raise CapabilityUnsupported(f"{self._info.name} has no {cap.value}")

    def set_projector(self, on: bool) -> None:
        self._need(Capability.PROJECTOR_CONTROL)
        self._inner.set_projector(on)

    def set_illumination(self, rgb: tuple[float, float, float], luminance: float = 1.0) -> None:
        self._need(Capability.ILLUMINATION_CONTROL)
        self._inner.set_illumination(rgb, luminance)

    def projector_power_range(self):
        self._need(Capability.PROJECTOR_POWER)
        return self._inner.projector_power_range()

    def depth_range(self):
        return self._inner.depth_range() if "depth" in self._streams else None

    def set_projector_power(self, mw: float) -> float:
        self._need(Capability.PROJECTOR_POWER)
        return self._inner.set_projector_power(mw)

    def set_exposure_region(self, stream: StreamKind, region: tuple[int, int, int, int] | None) -> None:
        self._need(Capability.EXPOSURE_REGION)
        self._inner.set_exposure_region(stream, region)

    def lock_exposure(self, stream: StreamKind, setting: ExposureSetting | None = None) -> ExposureSetting:
        self._need(exposure_lock_capability(stream))
        return self._inner.lock_exposure(stream, setting)

    def unlock_exposure(self, stream: StreamKind) -> None:
        self._need(exposure_lock_capability(stream))
        self._inner.unlock_exposure(stream)

    def hardware_reset(self) -> None:
        raise CapabilityUnsupported("the simulated rig's camera has no hardware reset")

    def __getattr__(self, name: str) -> Any:
        # Attributes the Camera contract does not declare pass through unchanged (a declared control
        # never reaches here: it is forwarded above, or refused by ``Camera``).
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._inner, name)


def open_camera(parsed: ParsedUri) -> Camera:
    if parsed.scheme != SCHEME:
        raise StreamClosed(f"not a {SCHEME} URI")
    return RigSimCamera(parsed)


def list_devices() -> list[DeviceInfo]:
    return []                                # the rig names its camera directly
