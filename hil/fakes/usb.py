"""A simulated USB bus behind pyusb's real core: what cannot exist on a machine without USB. Its
devices answer descriptor and string requests as real cameras do, so the agent's USB identity,
allowlist and virtual-camera checks run unchanged against it (tests, benches, HIL dry runs)."""

from __future__ import annotations

import array
from dataclasses import dataclass, field

import usb.backend


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
    return SimulatedUsbDevice(0x8086, 0x0B07, 2, (1, 3), 0xEF, (0x0E, 0x0E, 0x0E),
                              "Intel(R) RealSense(TM) Depth Camera 435", "Intel(R) RealSense(TM) Depth Camera 435",
                              kw.get("serial", "843112070001"), 0x5010)


def orbbec_astra(**kw):
    # Orbbec's depth interface is vendor-specific (0xFF): found by its VID, not by class.
    return SimulatedUsbDevice(0x2BC5, 0x0401, 1, (4,), 0x00, (0xFF,), "Orbbec", "Astra",
                              kw.get("serial", "17122730022"), 0x0001)


def uvc_webcam(**kw):
    return SimulatedUsbDevice(0x046D, 0x0825, 1, (2, 1), 0xEF, (0x0E, 0x0E, 0x01), "Logitech", "Webcam C270",
                              kw.get("serial", "A1B2C3D4"), 0x0012)


def usb_keyboard():
    return SimulatedUsbDevice(0x04D9, 0x1603, 1, (3,), 0x00, (0x03,), "Holtek", "Keyboard", "", 0x0100)


# -- fake camera with a plug, for the device manager's watchdog tests ----------------------
