"""Which cameras may capture: the ``[devices]`` settings, the USB allowlist applied to an opened
camera (T/IIFAA 3001.1 §8.2.2: approved physical devices only, virtual cameras refused), and the
device inventory ``capture-agent devices`` shows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import drivers
from drivers import DeviceInfo, StreamKind
from drivers import usb as usbmod
from drivers.errors import DeviceRefused, DriverError
from drivers.host.client import HostSettings
from drivers.usb import UsbPolicy
from firmware.policy import FirmwareGate


@dataclass(frozen=True)
class DeviceSettings:
    """``[devices]`` section. Times are seconds on the monotonic clock."""

    stall_timeout_s: float = 2.0        # frame counter not advancing this long = stalled stream
    read_timeout_s: float = 0.5         # one read from a camera
    restart_timeout_s: float = 3.0      # step 1: stream restart must yield a frame within this
    reset_timeout_s: float = 8.0        # step 2: hardware reset + re-open must yield a frame within this
    replug_timeout_s: float = 60.0      # step 3: wait this long for the device to come back
    replug_poll_s: float = 0.25         # how often to retry opening while waiting for re-plug
    # A re-open whose camera host was killed or died (it cost a process and was thrown away) doubles
    # the wait before the next re-open, from replug_poll_s up to this; back to replug_poll_s once the
    # camera is online. A re-open that finds no device waits replug_poll_s as before.
    recovery_backoff_max_s: float = 30.0
    queue_frames: int = 64              # bounded hand-off from reader threads to a rig that keeps frames
    # USB policy (T/IIFAA 3001.1 §8.2.2: capture only from approved physical devices).
    usb_allow: tuple[str, ...] = ()     # "VID:PID" or "VID:PID:SERIAL" in hex; empty = any physical camera
    refuse_virtual: bool = True         # refuse cameras with no physical USB parent (v4l2loopback, OBS)
    # sim://, recordings and software devices (no USB identity): development, tests and the demo only.
    # Off by default: a production config refuses them (at daemon start and at every camera open).
    allow_development_cameras: bool = False
    required_streams: tuple[str, ...] = ()  # e.g. ["depth", "ir", "color"]; empty = whatever the rig has
    # Camera host processes (drivers/host): each camera's SDK runs in a process of its own, killed
    # and replaced when it misses a deadline.
    camera_host: bool = True            # false: SDKs inside the daemon (debugging only)
    host_heartbeat_timeout_s: float = 1.0   # no heartbeat this long: the host is hung (or stopped)
    host_read_hang_s: float = 1.5       # one SDK read may take this long
    host_open_timeout_s: float = 10.0   # open/start a device (SDK load, firmware handshake)
    host_spare: bool = True             # keep a warm spare host per camera (faster replacement)
    lease_wait_s: float = 3.0           # a session waits this long for a reconnecting camera
    # Between sessions a camera host reads one frame per stream per this period, at most half of
    # stall_timeout_s (the device keeps streaming; the watchdog still sees every stream advance);
    # 0: every frame, always.
    idle_period_s: float = 1.0
    # How often the daemon's device manager looks for a firmware update asking for the cameras (a stat
    # of the request file; firmware/maintenance.py). Well inside the update's wait ([firmware]
    # handover_timeout_s, 5 s), cheap enough to run all day.
    maintenance_poll_s: float = 0.2

    def __post_init__(self) -> None:
        for name in ("stall_timeout_s", "read_timeout_s", "restart_timeout_s", "reset_timeout_s",
                     "replug_timeout_s", "replug_poll_s", "recovery_backoff_max_s", "host_heartbeat_timeout_s",
                     "host_read_hang_s", "host_open_timeout_s", "lease_wait_s", "maintenance_poll_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if not self.idle_period_s >= 0:
            raise ValueError("idle_period_s must be 0 or more")
        if self.queue_frames < 1:
            raise ValueError("queue_frames must be at least 1")
        self.policy()  # validates allowlist entries
        self.host_settings()
        for s in self.required_streams:
            StreamKind(s)

    def policy(self) -> UsbPolicy:
        return UsbPolicy.from_strings(self.usb_allow, self.refuse_virtual)

    def host_settings(self) -> HostSettings:
        return HostSettings(heartbeat_timeout_s=self.host_heartbeat_timeout_s, read_hang_s=self.host_read_hang_s,
                            open_timeout_s=self.host_open_timeout_s, spare=self.host_spare)


def check_policy(info: DeviceInfo, settings: DeviceSettings,
                 usb_lookup: Callable[[], list] | None = None, firmware: FirmwareGate | None = None) -> DeviceInfo:
    """Apply the USB policy to an opened camera; raise DeviceRefused or return info with ``allowed``.

    A camera that knows only its VID/PID (OpenNI reports no bus path) is tied to the enumerated
    USB device first; one that cannot be tied to a physical USB device is treated as virtual.
    Then ``firmware`` (the signed manifest's verdict on the running firmware, firmware/policy.py).
    """
    if info.usb is None or info.is_recording or is_development_uri(info.uri):
        # sim://, recordings and software devices (OpenNI's Dummy): nothing a person stands in front of.
        if settings.allow_development_cameras:
            return _firmware(replace(info, allowed=None), firmware)
        raise DeviceRefused(f"{info.uri[:200]} is a simulated camera, a recording or a device with no USB "
                            "identity; only physical USB cameras are allowed "
                            "(devices.allow_development_cameras = false)")
    ident = info.usb
    if not ident.bus_path:
        devs = (usb_lookup or usbmod.enumerate_video_devices)()
        tied = usbmod.find_identity(ident.vendor_id, ident.product_id, ident.serial or info.serial, devs)
        if tied is not None:
            ident = tied
            info = replace(info, usb=tied)
    settings.policy().enforce(ident)
    return _firmware(replace(info, allowed=True), firmware)


DEVELOPMENT_SCHEMES = ("sim",)      # and every recording scheme (``<backend>+file``)


def is_development_uri(uri: str) -> bool:
    """A URI that opens no physical camera: the simulator or a recording (``realsense+file://``...)."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    return scheme in DEVELOPMENT_SCHEMES or scheme.endswith("+file")


def _firmware(info: DeviceInfo, gate: FirmwareGate | None) -> DeviceInfo:
    return gate.check(info) if gate is not None else info


def annotate_devices(found: list[DeviceInfo], settings: DeviceSettings) -> list[DeviceInfo]:
    """Set ``allowed`` on listed devices by the USB policy (for ``capture-agent devices``)."""
    policy = settings.policy()
    return [replace(d, allowed=policy.allows(d.usb)) if d.usb is not None else d for d in found]


def inventory(settings: DeviceSettings, usb_backend=None, sysfs=None) -> tuple[list[DeviceInfo], dict[str, str]]:
    """Every backend's devices, plus USB cameras and /dev/video nodes, with identity and allowlist verdict.

    Backend entries that know their VID/PID are tied to the enumerated USB identity (serial, bus
    path). USB video devices no backend listed, and video nodes, are shown too: a virtual camera
    must be visible as refused, not silently absent.
    """
    found, problems = drivers.list_devices()
    try:
        usb_devs = usbmod.enumerate_video_devices(usb_backend)
    except DriverError as exc:
        usb_devs = []
        problems["usb"] = exc.message
    tied: set[tuple[int, int, str]] = set()
    out: list[DeviceInfo] = []
    for d in found:
        if d.usb is not None and not d.usb.bus_path:
            ident = usbmod.find_identity(d.usb.vendor_id, d.usb.product_id, d.serial, usb_devs)
            if ident is not None:
                d = replace(d, usb=ident)
        if d.usb is not None:
            tied.add((d.usb.vendor_id, d.usb.product_id, d.usb.serial))
        out.append(d)
    for u in usb_devs:
        i = u.identity
        if (i.vendor_id, i.product_id, i.serial) not in tied:
            out.append(DeviceInfo(uri=f"usb://{i.bus_path}", backend="usb",
                                  name=u.product or u.manufacturer or "USB camera",
                                  serial=i.serial, usb=i, note=u.reason))
    fs = sysfs or usbmod.Sysfs()
    listed = {d.uri for d in out}
    for node in fs.video_nodes():
        if f"uvc:///dev/{node.name}" in listed:
            continue                      # the uvc backend listed it already
        note = "virtual camera (refused)" if node.is_virtual else f"driver {node.driver or '-'}"
        info = DeviceInfo(uri=f"uvc:///dev/{node.name}", backend="v4l2", name=node.card or node.name,
                          usb=node.usb, note=note)
        out.append(replace(info, allowed=False) if node.is_virtual and settings.refuse_virtual else info)
    return [d if d.allowed is False else annotate_devices([d], settings)[0] for d in out], problems
