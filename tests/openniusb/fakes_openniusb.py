"""Test-only fakes. Only what cannot exist here is faked: the USB bus and the act of unplugging."""

from __future__ import annotations

import array
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import usb.backend

from drivers import Camera, Capability, DeviceInfo, Frame, FrameMetadata, Intrinsics, PixelFormat, StreamKind
from drivers.base import Extrinsics, StreamProfile, UsbIdentity
from drivers.errors import DeviceLost, DeviceNotFound, FrameTimeout, StreamClosed
from drivers.frame import ClockDomain


# -- simulated USB bus behind pyusb's real core ---------------------------------------------
class _Desc:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@dataclass
class SimulatedUsbDevice:
    vid: int
    pid: int
    bus: int
    ports: tuple[int, ...]
    device_class: int = 0xEF            # miscellaneous (IAD), like most UVC cameras
    interface_classes: tuple[int, ...] = (0x0E, 0x0E)
    manufacturer: str = ""
    product: str = ""
    serial: str = ""
    bcd_device: int = 0x0100
    address: int = 0
    strings: list = field(default_factory=list)

    def __post_init__(self):
        self.strings = ["", self.manufacturer, self.product, self.serial]


class SimulatedUsbBackend(usb.backend.IBackend):
    """Presents :class:`SimulatedUsbDevice` objects to pyusb's core (descriptors + string requests)."""

    def __init__(self, devices):
        self.devices = list(devices)
        for i, d in enumerate(self.devices):
            d.address = i + 2

    def enumerate_devices(self):
        return iter(self.devices)

    def get_device_descriptor(self, d):
        return _Desc(bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=d.device_class,
                     bDeviceSubClass=0, bDeviceProtocol=0, bMaxPacketSize0=64, idVendor=d.vid, idProduct=d.pid,
                     bcdDevice=d.bcd_device, iManufacturer=1 if d.manufacturer else 0,
                     iProduct=2 if d.product else 0, iSerialNumber=3 if d.serial else 0, bNumConfigurations=1,
                     address=d.address, bus=d.bus, port_number=d.ports[-1] if d.ports else None,
                     port_numbers=d.ports, speed=3)

    def get_configuration_descriptor(self, d, config):
        return _Desc(bLength=9, bDescriptorType=2, wTotalLength=9, bNumInterfaces=len(d.interface_classes),
                     bConfigurationValue=1, iConfiguration=0, bmAttributes=0x80, bMaxPower=250,
                     extra_descriptors=[])

    def get_interface_descriptor(self, d, intf, alt, config):
        if intf >= len(d.interface_classes) or alt != 0:
            raise IndexError(intf)
        return _Desc(bLength=9, bDescriptorType=4, bInterfaceNumber=intf, bAlternateSetting=0, bNumEndpoints=0,
                     bInterfaceClass=d.interface_classes[intf], bInterfaceSubClass=1 + intf,
                     bInterfaceProtocol=0, iInterface=0, extra_descriptors=[])

    def get_endpoint_descriptor(self, d, ep, intf, alt, config):
        raise IndexError(ep)

    def open_device(self, d):
        return d

    def close_device(self, handle):
        pass

    def get_configuration(self, handle):
        return 1

    def ctrl_transfer(self, handle, bmRequestType, bRequest, wValue, wIndex, data, timeout):
        if bRequest != 0x06 or (wValue >> 8) != 3:   # only GET_DESCRIPTOR(STRING)
            raise usb.core.USBError("request not supported by the simulated device")
        index = wValue & 0xFF
        if index == 0:
            payload = bytes([4, 3, 0x09, 0x04])       # LANGID en-US
        else:
            text = handle.strings[index].encode("utf-16-le")
            payload = bytes([2 + len(text), 3]) + text
        n = min(len(payload), len(data))
        data[:n] = array.array("B", payload[:n])
        return n


def realsense_d435(**kw):
    return SimulatedUsbDevice(0x8086, 0x0B07, 2, (1, 3), 0xEF, (0x0E, 0x0E, 0x0E), "Intel(R) RealSense(TM) Depth Camera 435",
                              "Intel(R) RealSense(TM) Depth Camera 435", kw.get("serial", "843112070001"), 0x5010)


def orbbec_astra(**kw):
    # Orbbec's depth interface is vendor-specific (0xFF): found by its VID, not by class.
    return SimulatedUsbDevice(0x2BC5, 0x0401, 1, (4,), 0x00, (0xFF,), "Orbbec", "Astra", kw.get("serial", "17122730022"), 0x0001)


def uvc_webcam(**kw):
    return SimulatedUsbDevice(0x046D, 0x0825, 1, (2, 1), 0xEF, (0x0E, 0x0E, 0x01), "Logitech", "Webcam C270",
                              kw.get("serial", "A1B2C3D4"), 0x0012)


def usb_keyboard():
    return SimulatedUsbDevice(0x04D9, 0x1603, 1, (3,), 0x00, (0x03,), "Holtek", "Keyboard", "", 0x0100)


# -- fake camera with a plug, for the device manager's watchdog tests ----------------------
class FakeCable:
    """Whether the fake device is plugged in; shared by every fake camera opened on it."""

    def __init__(self):
        self.plugged = threading.Event()
        self.plugged.set()
        self.frozen = False              # frames keep arriving with a stuck counter
        self.dead_kinds: set = set()     # streams that stop delivering while others go on
        self.opens = 0
        self.resets = 0


class FakeCamera(Camera):
    """Fake depth camera: 64x48 Z16 frames at ``fps``; unplugging the cable makes read() lose it."""

    def __init__(self, cable: FakeCable, uri: str = "fake://depth", fps: float = 60.0, kind=StreamKind.DEPTH,
                 resettable: bool = True, usb: UsbIdentity | None = None, extra_kind=None):
        if not cable.plugged.is_set():
            raise DeviceNotFound(f"{uri}: not plugged in")
        cable.opens += 1
        self.cable, self.uri, self.fps, self.kind = cable, uri, fps, kind
        self.kinds = [kind] + ([extra_kind] if extra_kind is not None else [])
        self.capabilities = frozenset({Capability.HARDWARE_RESET}) if resettable else frozenset()
        self._usb = usb
        self._n = 0
        self._started = False
        self._closed = False
        self._next = 0.0
        self._intr = Intrinsics(64, 48, 60.0, 60.0, 31.5, 23.5)

    @property
    def info(self) -> DeviceInfo:
        return DeviceInfo(self.uri, "fake", "fake camera", usb=self._usb, streams=(self.kind.value,))

    def profiles(self):
        return [StreamProfile(k, 64, 48, self.fps, PixelFormat.Z16 if k is StreamKind.DEPTH else PixelFormat.Y8,
                              0, self._intr) for k in self.kinds]

    def extrinsics(self, src, dst):
        return Extrinsics.identity()

    def start(self):
        if self._closed:
            raise StreamClosed("stopped")
        if not self.cable.plugged.is_set():
            raise DeviceLost(f"{self.uri}: gone")
        self._started = True
        self._next = time.monotonic()

    def stop(self):
        self._started = False

    def hardware_reset(self):
        self.cable.resets += 1

    def read(self, timeout_s=1.0):
        if not self._started:
            raise StreamClosed("not started")
        deadline = time.monotonic() + timeout_s
        while True:
            if not self.cable.plugged.is_set():
                raise DeviceLost(f"{self.uri}: device unplugged")
            now = time.monotonic()
            if now >= self._next:
                break
            if now >= deadline:
                raise FrameTimeout("no frame")
            time.sleep(min(self._next, deadline) - now)
        self._next += 1.0 / self.fps
        if not self.cable.frozen:
            self._n += 1
        live = [k for k in self.kinds if k not in self.cable.dead_kinds] or [None]
        kind = live[self._n % len(live)]
        if kind is None:
            raise FrameTimeout("all streams dead")
        if kind is StreamKind.DEPTH:
            px, fmt, scale = np.full((48, 64), 500, np.uint16), PixelFormat.Z16, 0.001
        else:
            px, fmt, scale = np.full((48, 64), 80, np.uint8), PixelFormat.Y8, 0.0
        return Frame(kind, px, fmt, self._n * 1000.0 / self.fps, ClockDomain.HARDWARE, time.monotonic_ns(),
                     self._n, self._intr, depth_scale=scale, metadata=FrameMetadata(frame_counter=self._n))


class FaultInjectingCamera(Camera):
    """Wraps a real camera; ``unplug()`` makes it behave as a vanished device at the backend boundary."""

    def __init__(self, inner: Camera, cable: FakeCable):
        if not cable.plugged.is_set():
            inner.stop()
            raise DeviceNotFound("device not plugged in")
        self.inner, self.cable = inner, cable
        self.capabilities = inner.capabilities

    @property
    def info(self):
        return self.inner.info

    def profiles(self):
        return self.inner.profiles()

    def extrinsics(self, src, dst):
        return self.inner.extrinsics(src, dst)

    def start(self):
        if not self.cable.plugged.is_set():
            raise DeviceLost("gone")
        self.inner.start()

    def stop(self):
        self.inner.stop()

    def read(self, timeout_s=1.0):
        if not self.cable.plugged.is_set():
            # what a real unplug looks like: the SDK's wait returns nothing, then the device is lost
            time.sleep(min(timeout_s, 0.05))
            raise DeviceLost("device unplugged (simulated)")
        return self.inner.read(timeout_s)
