"""A simulated UVC camera module with a USB DFU 1.1 bootloader, behind pyusb's real core.

What cannot exist on a machine without USB: the bus. Everything above it (pyusb's core, our DFU
code) runs unchanged. The device follows DFU 1.1's state machine and refuses what a device
refuses: a request it does not expect in its state, a status poll before the ``bwPollTimeout`` it
asked for while it programs (it stalls into ``dfuERROR``), a block out of sequence or over
``wTransferSize``, a transfer to a handle of a device that has since re-enumerated (``ENODEV``).

The camera keeps its firmware in a simulated flash. A detach or reset takes it off the bus and
brings it back after ``reenumerate_s`` as a *new* USB device (new address; old handles dead): in
DFU mode under ``dfu_pid`` after a detach, in service after a reset with a valid image in flash,
or in DFU mode again when the flash holds no valid image (an interrupted or corrupt update), as a
bootloader does.

Image format the simulated bootloader accepts (so that "the version after the update" is read
from what was flashed, not set by the test): ``b"SIMFW" + u16le bcdDevice + body + u32le crc32``
of everything before the CRC.

Faults to inject: ``fail_at_block`` (status ``fail_status`` on that block's poll: the flash is then
partly written), ``unplug_at_block`` (power lost in the middle: the device leaves the bus during
the transfer and returns in DFU mode), ``refuse_detach``, ``never_return`` (gone for good after
the next reset).
"""

from __future__ import annotations

import array
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import usb.core

from drivers.dfu import ABORT, CLRSTATUS, DETACH, DNLOAD, GETSTATE, GETSTATUS, UPLOAD, State, Status
from hil.fakes.usb import SimulatedUsbBackend, _Desc

MAGIC = b"SIMFW"


def sim_image(bcd_device: int, body: bytes) -> bytes:
    """A firmware image the simulated bootloader accepts, reporting ``bcd_device`` once running."""
    head = MAGIC + struct.pack("<H", bcd_device) + body
    return head + struct.pack("<I", zlib.crc32(head))


def image_version(image: bytes) -> int | None:
    """The bcdDevice inside a valid simulated image, or None when the image is not valid."""
    if len(image) < 11 or not image.startswith(MAGIC):
        return None
    if struct.unpack("<I", image[-4:])[0] != zlib.crc32(image[:-4]):
        return None
    return int(struct.unpack_from("<H", image, 5)[0])


def _gone() -> usb.core.USBError:
    return usb.core.USBError("No such device (it may have been disconnected)", -4, 19)


def _stall() -> usb.core.USBError:
    return usb.core.USBError("Pipe error", -9, 32)


@dataclass
class _Presence:
    """One enumeration of the camera on the bus (a USB device instance; dead once it leaves)."""

    camera: SimulatedDfuCamera
    dfu_mode: bool
    address: int
    alive: bool = True


@dataclass
class SimulatedDfuCamera:
    vid: int = 0x2BDF
    pid: int = 0x0102
    dfu_pid: int = 0x0F02
    bus: int = 1
    ports: tuple[int, ...] = (5,)
    manufacturer: str = "Acme Imaging"
    product: str = "IR Face Module"
    serial: str = "AIM0001234"
    flash: bytes = b""                    # the image in flash (see the module docstring)
    transfer_size: int = 256
    can_upload: bool = True
    manifestation_tolerant: bool = False
    will_detach: bool = False
    detach_timeout_ms: int = 1000
    poll_timeout_ms: int = 2              # bwPollTimeout while programming a block
    manifest_poll_ms: int = 5
    reenumerate_s: float = 0.02
    # faults
    fail_at_block: int | None = None
    fail_status: int = Status.ERR_WRITE
    unplug_at_block: int | None = None
    refuse_detach: bool = False
    never_return: bool = False
    # observed (for tests)
    log: list[str] = field(default_factory=list)
    state: int = State.APP_IDLE
    status: int = Status.OK
    _busy_until: float = 0.0
    _programmed: bool = False
    _manifested: bool = False
    _failing: bool = False
    _next_block: int = 0
    _received: bytearray = field(default_factory=bytearray)
    _upload_offset: int = 0

    @property
    def running_version(self) -> int | None:
        return image_version(self.flash)


class SimulatedDfuBus(SimulatedUsbBackend):
    """A pyusb backend holding ordinary simulated devices and DFU cameras (which come and go)."""

    def __init__(self, devices=(), cameras=()):
        super().__init__(devices)
        self.cameras: list[SimulatedDfuCamera] = list(cameras)
        self._lock = threading.RLock()
        self._present: dict[int, _Presence] = {}       # id(camera) -> current presence
        self._back_at: dict[int, tuple[float, bool]] = {}
        self._next_address = 40
        for cam in self.cameras:
            cam.state = State.APP_IDLE if cam.running_version is not None else State.DFU_IDLE
            self._plug(cam, dfu_mode=cam.running_version is None)

    # -- the camera leaving and coming back ------------------------------------------------------
    def _plug(self, cam: SimulatedDfuCamera, dfu_mode: bool) -> None:
        self._next_address += 1
        self._present[id(cam)] = _Presence(cam, dfu_mode, self._next_address)
        cam.state = State.DFU_IDLE if dfu_mode else State.APP_IDLE
        cam.status = Status.OK
        cam._next_block, cam._received, cam._upload_offset = 0, bytearray(), 0
        cam.log.append("enumerated in " + ("DFU mode" if dfu_mode else "service"))

    def _unplug(self, cam: SimulatedDfuCamera, come_back_in_dfu: bool) -> None:
        p = self._present.pop(id(cam), None)
        if p is not None:
            p.alive = False
        cam.log.append("left the bus")
        if not cam.never_return:
            self._back_at[id(cam)] = (time.monotonic() + cam.reenumerate_s, come_back_in_dfu)

    def _tick(self) -> None:
        now = time.monotonic()
        for cam in self.cameras:
            due = self._back_at.get(id(cam))
            if due is not None and now >= due[0]:
                del self._back_at[id(cam)]
                self._plug(cam, due[1])

    def power_cycle(self, cam: SimulatedDfuCamera) -> None:
        """Unplug and re-plug (or power loss): comes back in service only with a valid image."""
        with self._lock:
            self._unplug(cam, come_back_in_dfu=cam.running_version is None)

    # -- pyusb backend ------------------------------------------------------------------------
    def enumerate_devices(self):
        with self._lock:
            self._tick()
            return iter(list(self.devices) + list(self._present.values()))

    def get_device_descriptor(self, d):
        if not isinstance(d, _Presence):
            return super().get_device_descriptor(d)
        cam = d.camera
        bcd = 0x0001 if d.dfu_mode else (cam.running_version or 0)
        return _Desc(bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0x00 if d.dfu_mode else 0xEF,
                     bDeviceSubClass=0, bDeviceProtocol=0, bMaxPacketSize0=64, idVendor=cam.vid,
                     idProduct=cam.dfu_pid if d.dfu_mode else cam.pid, bcdDevice=bcd, iManufacturer=1,
                     iProduct=2, iSerialNumber=3, bNumConfigurations=1, address=d.address, bus=cam.bus,
                     port_number=cam.ports[-1], port_numbers=cam.ports, speed=3)

    def _interfaces(self, d: _Presence) -> list[tuple[int, int, int]]:
        if d.dfu_mode:
            return [(0xFE, 0x01, 0x02)]
        return [(0x0E, 0x01, 0x00), (0x0E, 0x02, 0x00), (0xFE, 0x01, 0x01)]

    def get_configuration_descriptor(self, d, config):
        if not isinstance(d, _Presence):
            return super().get_configuration_descriptor(d, config)
        return _Desc(bLength=9, bDescriptorType=2, wTotalLength=9, bNumInterfaces=len(self._interfaces(d)),
                     bConfigurationValue=1, iConfiguration=0, bmAttributes=0x80, bMaxPower=250, extra_descriptors=[])

    def _functional(self, cam: SimulatedDfuCamera) -> list[int]:
        attrs = 1 | (2 if cam.can_upload else 0) | (4 if cam.manifestation_tolerant else 0) | (
            8 if cam.will_detach else 0)
        return list(struct.pack("<BBBHHH", 9, 0x21, attrs, cam.detach_timeout_ms, cam.transfer_size, 0x0110))

    def get_interface_descriptor(self, d, intf, alt, config):
        if not isinstance(d, _Presence):
            return super().get_interface_descriptor(d, intf, alt, config)
        ifs = self._interfaces(d)
        if intf >= len(ifs) or alt != 0:
            raise IndexError(intf)
        cls, sub, proto = ifs[intf]
        return _Desc(bLength=9, bDescriptorType=4, bInterfaceNumber=intf, bAlternateSetting=0, bNumEndpoints=0,
                     bInterfaceClass=cls, bInterfaceSubClass=sub, bInterfaceProtocol=proto, iInterface=0,
                     extra_descriptors=self._functional(d.camera) if cls == 0xFE else [])

    def open_device(self, d):
        if isinstance(d, _Presence) and not d.alive:
            raise _gone()
        return d

    def claim_interface(self, handle, intf):
        if isinstance(handle, _Presence) and not handle.alive:
            raise _gone()

    def release_interface(self, handle, intf):
        pass

    def set_configuration(self, handle, config):
        pass

    def is_kernel_driver_active(self, handle, intf):
        return False

    def reset_device(self, handle):
        if not isinstance(handle, _Presence):
            return
        with self._lock:
            if not handle.alive:
                raise _gone()
            cam = handle.camera
            cam.log.append("USB reset")
            if handle.dfu_mode:
                # Leaving DFU mode: the bootloader starts the application only if it is valid.
                self._unplug(cam, come_back_in_dfu=cam.running_version is None)
            elif cam.state == State.APP_DETACH:
                self._unplug(cam, come_back_in_dfu=True)
            else:
                self._unplug(cam, come_back_in_dfu=False)
            # libusb reports a device that re-enumerates during the reset as not found.
            raise usb.core.USBError("Entity not found", -5, 2)

    def ctrl_transfer(self, handle, bmRequestType, bRequest, wValue, wIndex, data, timeout):
        if not isinstance(handle, _Presence):
            return super().ctrl_transfer(handle, bmRequestType, bRequest, wValue, wIndex, data, timeout)
        with self._lock:
            if not handle.alive:
                raise _gone()
            if bmRequestType & 0x60 == 0:                          # standard request: strings
                return self._standard(handle, bRequest, wValue, data)
            if bmRequestType not in (0x21, 0xA1):
                raise _stall()
            return self._dfu(handle, bRequest, wValue, data)

    def _standard(self, handle: _Presence, bRequest: int, wValue: int, data: Any) -> int:
        if bRequest != 0x06 or (wValue >> 8) != 3:
            raise _stall()
        cam = handle.camera
        strings = ["", cam.manufacturer, cam.product + (" (DFU)" if handle.dfu_mode else ""), cam.serial]
        index = wValue & 0xFF
        payload = bytes([4, 3, 0x09, 0x04]) if index == 0 else (
            lambda t: bytes([2 + len(t), 3]) + t)(strings[index].encode("utf-16-le"))
        n = min(len(payload), len(data))
        data[:n] = array.array("B", payload[:n])
        return n

    # -- the DFU state machine -------------------------------------------------------------------
    def _error(self, cam: SimulatedDfuCamera, status: int) -> usb.core.USBError:
        cam.state, cam.status = State.DFU_ERROR, status
        cam.log.append(f"dfuERROR {Status(status).name}")
        return _stall()

    def _dfu(self, handle: _Presence, req: int, value: int, data: Any) -> int:
        cam = handle.camera
        now = time.monotonic()
        if not handle.dfu_mode:                                      # run-time interface
            if req == GETSTATUS:
                return self._answer_status(cam, data, 0)
            if req == GETSTATE:
                data[0] = cam.state
                return 1
            if req == DETACH and not cam.refuse_detach:
                cam.state = State.APP_DETACH
                cam.log.append(f"DFU_DETACH ({value} ms)")
                if cam.will_detach:
                    self._unplug(cam, come_back_in_dfu=True)
                return 0
            raise _stall()
        if cam.state in (State.DFU_DNBUSY, State.DFU_MANIFEST):
            if now < cam._busy_until:
                # Asked again before the bwPollTimeout it gave: a real device stalls.
                raise self._error(cam, Status.ERR_STALLEDPKT)
            if cam.state == State.DFU_DNBUSY:
                cam.state, cam._programmed = State.DFU_DNLOAD_SYNC, True
            else:
                self._manifest(cam)
        if req == GETSTATUS:
            return self._getstatus(cam, data)
        if req == GETSTATE:
            data[0] = cam.state
            return 1
        if req == CLRSTATUS and cam.state == State.DFU_ERROR:
            cam.state, cam.status = State.DFU_IDLE, Status.OK
            cam._next_block, cam._received = 0, bytearray()
            return 0
        if req == ABORT and cam.state in (State.DFU_IDLE, State.DFU_DNLOAD_IDLE, State.DFU_UPLOAD_IDLE):
            cam.state, cam._next_block, cam._received, cam._upload_offset = State.DFU_IDLE, 0, bytearray(), 0
            return 0
        if req == DNLOAD and cam.state in (State.DFU_IDLE, State.DFU_DNLOAD_IDLE):
            return self._dnload(cam, value, bytes(data))
        if req == UPLOAD and cam.state in (State.DFU_IDLE, State.DFU_UPLOAD_IDLE) and cam.can_upload:
            return self._upload(cam, value, data)
        raise self._error(cam, Status.ERR_STALLEDPKT)

    def _dnload(self, cam: SimulatedDfuCamera, block: int, payload: bytes) -> int:
        if not payload:
            if cam.state != State.DFU_DNLOAD_IDLE:
                raise self._error(cam, Status.ERR_NOTDONE)
            cam.state, cam._manifested = State.DFU_MANIFEST_SYNC, False
            cam.log.append(f"end of image after {cam._next_block} blocks")
            return 0
        if len(payload) > cam.transfer_size or block != (cam._next_block & 0xFFFF):
            raise self._error(cam, Status.ERR_STALLEDPKT)
        if cam._next_block == 0:
            cam.flash = b""                     # the first block erases the application
            cam.log.append("flash erased")
        if cam.unplug_at_block == block:
            cam.unplug_at_block = None
            self._unplug(cam, come_back_in_dfu=True)              # power lost mid-transfer
            raise _gone()
        cam._received += payload
        cam._failing = cam.fail_at_block == block
        cam._next_block += 1
        cam.state, cam._programmed = State.DFU_DNLOAD_SYNC, False
        return len(payload)

    def _getstatus(self, cam: SimulatedDfuCamera, data: Any) -> int:
        poll = 0
        if cam.state == State.DFU_DNLOAD_SYNC:
            if cam._failing:
                cam._failing, cam.fail_at_block = False, None
                cam.state, cam.status = State.DFU_ERROR, cam.fail_status
                cam.log.append(f"block {cam._next_block - 1} failed: {Status(cam.fail_status).name}")
            elif cam._programmed:
                cam.state = State.DFU_DNLOAD_IDLE
            else:
                cam.state, poll = State.DFU_DNBUSY, cam.poll_timeout_ms
                cam._busy_until = time.monotonic() + poll / 1000
        elif cam.state == State.DFU_MANIFEST_SYNC:
            if cam._manifested:
                cam.state = State.DFU_IDLE                    # manifestation-tolerant: back to idle
            else:
                cam.state, poll = State.DFU_MANIFEST, cam.manifest_poll_ms
                cam._busy_until = time.monotonic() + poll / 1000
        return self._answer_status(cam, data, poll)

    def _answer_status(self, cam: SimulatedDfuCamera, data: Any, poll_ms: int) -> int:
        raw = bytes([cam.status, poll_ms & 0xFF, (poll_ms >> 8) & 0xFF, (poll_ms >> 16) & 0xFF, cam.state, 0])
        n = min(6, len(data))
        data[:n] = array.array("B", raw[:n])
        return n

    def _manifest(self, cam: SimulatedDfuCamera) -> None:
        image = bytes(cam._received)
        if image_version(image) is None:
            cam.flash = b""
            cam.state, cam.status = State.DFU_ERROR, Status.ERR_FIRMWARE
            cam.log.append("manifestation failed: image not valid")
            return
        cam.flash = image
        cam._manifested = True
        cam.log.append(f"manifested version {image_version(image):04x}")
        cam.state = State.DFU_MANIFEST_SYNC if cam.manifestation_tolerant else State.DFU_MANIFEST_WAIT_RESET

    def _upload(self, cam: SimulatedDfuCamera, block: int, data: Any) -> int:
        if block != (cam._next_block & 0xFFFF):
            raise self._error(cam, Status.ERR_STALLEDPKT)
        n = min(len(data), cam.transfer_size)
        chunk = cam.flash[cam._upload_offset:cam._upload_offset + n]
        data[:len(chunk)] = array.array("B", chunk)
        cam._upload_offset += len(chunk)
        cam._next_block += 1
        if len(chunk) < n:
            cam.state, cam._next_block, cam._upload_offset = State.DFU_IDLE, 0, 0      # short frame: done
        else:
            cam.state = State.DFU_UPLOAD_IDLE
        return len(chunk)


def dfu_module(**kw: Any) -> SimulatedDfuCamera:
    """A UVC IR module running firmware 1.02, with a DFU bootloader."""
    kw.setdefault("flash", sim_image(0x0102, bytes(range(256)) * 20))
    return SimulatedDfuCamera(**kw)
