"""The camera host process: owns one camera's vendor SDK, so that a hang or crash inside the SDK
takes down this process and not the daemon.

Started by :class:`drivers.host.client.CameraHost` as ``python -m drivers.host``, with the control
channel and the frame ring passed as inherited descriptors. Three threads:

* the main thread runs the daemon's commands (``open``, ``start``, ``stop``, forwarded calls such as
  ``set_projector``) one at a time, and answers each;
* the reader thread reads frames while the camera streams, writes each into a free ring slot and
  announces it; a live camera's frame is dropped (and counted) when the daemon holds every slot, a
  recording waits instead, so playback loses nothing;
* the heartbeat thread tells the daemon every ``--heartbeat`` seconds that the process runs and how
  long the SDK has been inside the current read. The daemon kills the process when heartbeats stop
  (a hang that holds the interpreter, SIGSTOP) or a read or command overruns its deadline.

The process dies with the daemon (``PR_SET_PDEATHSIG``) and when the channel closes.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

import drivers
from drivers.base import Camera, Capability
from drivers.errors import CaptureAgentError, DeviceLost, DriverError, FrameTimeout, StreamClosed

from . import codec
from .channel import Channel
from .ring import FrameRing

READ_SLICE_S = 0.2               # one SDK read; the daemon's hang deadline is measured against it
# The camera methods the daemon may call through ``call``; nothing else is reachable.
CALLS = frozenset({"set_projector", "set_projector_power", "projector_power_range", "set_illumination",
                   "hardware_reset", "lock_exposure", "unlock_exposure",
                   "set_exposure_region", "depth_range"})
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:          # the parent died before prctl took effect
        os._exit(0)


class Host:
    def __init__(self, chan: Channel, ring: FrameRing, heartbeat_s: float):
        self.chan, self.ring, self.heartbeat_s = chan, ring, heartbeat_s
        self.cam: Camera | None = None
        self.gen = 0                              # one per opened handle: frames say which
        self._free = set(range(ring.slots))
        self._slots = threading.Condition()
        self._reader: threading.Thread | None = None
        self._reading = threading.Event()
        self._read_since: float | None = None
        self._call: tuple[str, float] | None = None
        self._quit = threading.Event()
        self._pace = threading.Event()            # set: the pace changed, wake an idle reader
        self.idle_period_s: float | None = None
        # Demand mode (a session's lease): one frame per "want" from the daemon, so the frame a
        # session reads is taken when it asks, never read ahead (a simulated camera renders it
        # then, with the projector state just set; a device's SDK hands over its newest).
        self.demand = False
        self._credits = 0
        self.frames = 0
        self.dropped = 0

    # -- main loop ----------------------------------------------------------------------------------
    def serve(self) -> None:
        self.chan.send({"op": "hello", "pid": os.getpid()})
        threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()
        while not self._quit.is_set():
            try:
                msg = self.chan.recv(None)
            except (EOFError, OSError, CaptureAgentError):
                break                             # the daemon is gone or talks garbage: leave
            op = msg["op"]
            if op == "free":
                self._release(msg.get("slot"))
                continue
            if op == "want":
                with self._slots:
                    self._credits = min(self._credits + 1, self.ring.slots)
                    self._slots.notify_all()
                continue
            if op == "quit":
                break
            self._command(msg)
        self._shutdown()

    def _command(self, msg: dict[str, Any]) -> None:
        op, ident = msg["op"], msg.get("id")
        self._call = (op, time.monotonic())
        try:
            value = getattr(self, f"_op_{op}")(msg) if op in ("register", "open", "start", "stop", "call", "warm",
                                                             "pace") \
                else self._unknown(op)
            self.chan.send({"op": "result", "id": ident, "value": value})
        except CaptureAgentError as exc:
            self.chan.send({"op": "error", "id": ident, "code": exc.code, "message": exc.message[:1000]})
        except Exception as exc:                  # an SDK failure must reach the daemon typed
            self.chan.send({"op": "error", "id": ident, "code": DeviceLost.code,
                            "message": f"unexpected {type(exc).__name__} in {op}: {exc}"[:1000]})
        finally:
            self._call = None

    @staticmethod
    def _unknown(op: str) -> None:
        raise DriverError(f"camera host: unknown command {op!r}")

    # -- commands ---------------------------------------------------------------------------------
    def _op_register(self, msg: dict[str, Any]) -> None:
        """Backends registered in the daemon (tests add fakes that way) exist here too."""
        for name, module, schemes, description in msg.get("backends", []):
            drivers.register_backend(str(name), str(module), tuple(str(s) for s in schemes), str(description))

    def _op_warm(self, msg: dict[str, Any]) -> None:
        """Import the backend of ``scheme`` now, so a spare host opens its device without delay."""
        scheme = str(msg.get("scheme", ""))
        be = drivers.base._SCHEMES.get(scheme)
        if be is not None:
            importlib.import_module(be.module)

    def _op_open(self, msg: dict[str, Any]) -> dict[str, Any]:
        self._close_camera()
        self.cam = drivers.open(str(msg.get("uri", "")))
        self.gen += 1
        return self._describe_camera()

    def _describe_camera(self) -> dict[str, Any]:
        cam = self._camera()
        return {"gen": self.gen, "info": codec.info_to(cam.info),
                "capabilities": sorted(c.value for c in cam.capabilities),
                "waits_for_reader": bool(getattr(cam, "waits_for_reader", False))}

    def _op_start(self, msg: dict[str, Any]) -> dict[str, Any]:
        cam = self._camera()
        cam.start()
        profiles = cam.profiles()
        ext = []
        for (a, b), e in cam.all_extrinsics().items():
            ext.append([a.value, b.value, codec.extrinsics_to(e)])
        self._start_reader(cam, recording=Capability.RECORDING in cam.capabilities)
        return {**self._describe_camera(), "profiles": [codec.profile_to(p) for p in profiles], "extrinsics": ext}

    def _op_stop(self, msg: dict[str, Any]) -> None:
        self._close_camera()

    def _op_pace(self, msg: dict[str, Any]) -> None:
        """``idle_period_s``: read one frame of each stream per period (between sessions: the
        device keeps streaming, unread frames are dropped by the SDK or driver, and the daemon's
        watchdog still sees every stream advance); ``None``: every frame."""
        v = msg.get("idle_period_s")
        self.idle_period_s = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None
        with self._slots:
            self.demand = msg.get("demand") is True
            self._credits = 0
            self._slots.notify_all()
        self._pace.set()

    def _op_call(self, msg: dict[str, Any]) -> Any:
        method = msg.get("method")
        if method not in CALLS:
            raise DriverError(f"camera host: {method!r} cannot be called")
        args = [codec.value_from(a) for a in msg.get("args", [])]
        return codec.value_to(getattr(self._camera(), str(method))(*args))

    def _camera(self) -> Camera:
        if self.cam is None:
            raise StreamClosed("camera host: no camera is open")
        return self.cam

    # -- streaming ----------------------------------------------------------------------------------
    def _start_reader(self, cam: Camera, recording: bool) -> None:
        self._reading.set()
        self._reader = threading.Thread(target=self._read_loop, args=(cam, self.gen, recording), name="reader",
                                        daemon=True)
        self._reader.start()

    def _read_loop(self, cam: Camera, gen: int, recording: bool) -> None:
        streams = max(1, len(cam.profiles()))
        burst = 0
        period_start = time.monotonic()
        while self._reading.is_set():
            if self.demand and not self._wait_credit():
                continue
            idle = self.idle_period_s
            if not self.demand and idle is not None and burst >= streams:
                self._pace.clear()
                self._pace.wait(max(0.0, period_start + idle - time.monotonic()))
                burst = 0
                period_start = time.monotonic()
                continue
            self._read_since = time.monotonic()
            asked = self.demand
            try:
                frame = cam.read(READ_SLICE_S)
            except FrameTimeout:
                continue
            except CaptureAgentError as exc:
                self._end(gen, exc.code, exc.message)
                return
            except Exception as exc:
                self._end(gen, DeviceLost.code, f"unexpected {type(exc).__name__} in read: {exc}")
                return
            finally:
                self._read_since = None
            if self.demand and not asked:
                continue                          # read before demand began: not what was asked for
            slot = self._take_slot(wait=recording)
            if slot is None:
                self.dropped += 1                 # the daemon holds every slot: it is behind
                continue
            try:
                desc = self.ring.write(slot, frame)
            except ValueError as exc:
                self._release(slot)
                self._end(gen, "DRV_UNSUPPORTED_MODE", str(exc))
                return
            # Checked and sent under the lock ``_op_pace`` changes the pace under: a frame read before
            # demand began is either on the channel before the pace's answer (the daemon drops what
            # it queued then) or not sent at all, never handed to a lease as one it asked for. Only a
            # frame read for a "want" spends its credit.
            with self._slots:
                stale = self.demand and not asked
                if not stale:
                    if asked:
                        self._credits = max(0, self._credits - 1)
                    self.frames += 1
                    burst += 1
                    try:
                        self.chan.send({"op": "frame", "gen": gen, **desc})
                    except OSError:
                        return
            if stale:
                self._release(slot)

    def _wait_credit(self) -> bool:
        with self._slots:
            if self._credits <= 0 and self.demand and self._reading.is_set():
                self._slots.wait(0.1)
            return self._credits > 0 or not self.demand

    def _end(self, gen: int, code: str, message: str) -> None:
        try:
            self.chan.send({"op": "end", "gen": gen, "code": code, "message": message[:1000]})
        except OSError:
            pass

    def _take_slot(self, wait: bool) -> int | None:
        with self._slots:
            while not self._free:
                if not wait or not self._reading.is_set():
                    return None
                self._slots.wait(0.1)
            return self._free.pop()

    def _release(self, slot: Any) -> None:
        if isinstance(slot, int) and 0 <= slot < self.ring.slots:
            with self._slots:
                self._free.add(slot)
                self._slots.notify_all()

    def _close_camera(self) -> None:
        self._reading.clear()
        with self._slots:
            self._slots.notify_all()
        cam, self.cam = self.cam, None
        if cam is not None:
            cam.stop()                            # bounded by the Camera contract; else we get killed
        if self._reader is not None:
            self._reader.join(timeout=2.0)
            self._reader = None

    # -- heartbeat ----------------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        seq = 0
        while not self._quit.is_set():
            now = time.monotonic()
            since, call = self._read_since, self._call
            seq += 1
            try:
                self.chan.send({"op": "hb", "seq": seq, "read_s": None if since is None else now - since,
                                "call": None if call is None else [call[0], now - call[1]],
                                "frames": self.frames, "dropped": self.dropped})
            except OSError:
                return
            self._quit.wait(self.heartbeat_s)

    def _shutdown(self) -> None:
        self._quit.set()
        try:
            self._close_camera()
        except Exception:
            pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.host", description=__doc__)
    ap.add_argument("--ctrl-fd", type=int, required=True)
    ap.add_argument("--ring-fd", type=int, required=True)
    ap.add_argument("--slots", type=int, required=True)
    ap.add_argument("--slot-bytes", type=int, required=True)
    ap.add_argument("--parent-pid", type=int, required=True)
    ap.add_argument("--heartbeat", type=float, default=0.1)
    a = ap.parse_args(argv)
    _die_with_parent(a.parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # the daemon's Ctrl-C is the daemon's to handle
    sock = socket.socket(fileno=a.ctrl_fd)
    ring = FrameRing(a.slots, a.slot_bytes, a.ring_fd, writable=True)
    Host(Channel(sock), ring, a.heartbeat).serve()
    # Leave without running interpreter teardown: some SDKs crash in their atexit/unload paths
    # (OpenNI2's oniShutdown after a recorder), and nothing here needs flushing.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
