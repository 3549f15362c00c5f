"""The simulated camera: scene motion, active controls, timing, and delivery through the Camera API.

Two clocks drive it: depth/IR ticks at the depth mode's rate and colour frames at the colour rate,
both stamped on one hardware clock (colour triggered ``color_offset_ms``, 4.1 ms by default, after a
depth tick it coincides with).
Controls are commands on timelines (``timing.py``): the projector's land after the configured
latency and jitter, the screen's after the panel's latency; an injector (``injection.py``) replaces
what the pixels show and what the metadata claims.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import numbers
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..base import Camera, Capability, DepthRange, DeviceInfo, ExposureSetting, ProjectorPowerRange
from ..errors import CapabilityUnsupported, FrameTimeout, InvalidSetting, StreamClosed
from ..frame import ClockDomain, Extrinsics, Frame, FrameMetadata, PixelFormat, StreamKind, StreamProfile
from .beacon import AMBER_BGR
from .config import SimConfig
from .exposure import ExposureLimits, IrAutoExposure
from .families import camera_for
from .injection import BLACK, Injector, ProjectorState, Rgb, make_injector
from .leak import band_gains, visible_in_ir
from .modes import color_mode, depth_intrinsics, depth_mode
from .night import SKIN_NIR_TOLERANCE, IrFlood, ambient_ir
from .optics import View, color_view_for, views_for
from .profiles import CameraProfile, get_profile
from .pwm import READOUT_FRACTION as PWM_READOUT_FRACTION
from .pwm import PwmLight
from .render import Canvas, Lights, Placed, ViewMaps, render_view
from .scene import LAMP_DIR, LAMP_RADIUS_RAD, LAMP_SHARE, Scene, ambient_nir_share
from .screen import ScreenGeometry, ScreenLight
from .sensor import (
    PROJECTOR_POWER_MW,
    AutoExposure,
    DotPattern,
    NoiseBank,
    color_irradiance,
    depth_image,
    expose_color,
    expose_ir,
    illuminant_bgr,
    ir_exposure_s,
    ir_signal,
    metered_level,
)
from .sun import Blinds, shade_color, shade_ir
from .timing import Timeline
from .vestibule import Fade

SERIAL = "SIM0000000001"      # unit 0's (every URI without ``unit``)
FIRMWARE = "sim-1.0.0"
COLOR_LATENCY_MS = 9.0
DEPTH_LATENCY_MS = 6.0
GT_KEEP = 12
SCREEN = ScreenGeometry()


def serial_for(unit: int) -> str:
    """The serial a sim camera unit reports (``unit=N``, docs/sim.md *Camera units*): unit 0's is ``SERIAL``, each
    other unit's its own (``SIM`` and unit + 1 in ten digits), as each real camera has one (fix34)."""
    return f"SIM{int(unit) + 1:010d}"


def named_profile(cfg: SimConfig) -> CameraProfile | None:
    """The profile the URI names with ``camera=``, or None when it names none (the D435-class
    default, or a family's pick, then runs with no actuation latency, as the simulator always did)."""
    name = getattr(cfg, "camera", None)
    return get_profile(name) if name else None


@dataclass(frozen=True)
class SceneState:
    """What is really in front of the camera (for tests and benchmarks): the pose at the latest
    frame, the projector state its IR pixels show and the screen colour its colour pixels were lit
    by (both can differ from commands and metadata: latency, injection)."""

    subject: str
    distance_m: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    eyes_closed: float               # 0 open .. 1 closed
    projector_on: bool
    illumination: Rgb


@dataclass
class _DepthTick:
    """One depth/IR tick for one projector state: the IR imager's light before exposure (so any
    exposure can be applied later), the depth it gave, and the truth."""

    ir_signal: np.ndarray
    depth_u16: np.ndarray
    depth_truth: np.ndarray
    state: SceneState
    dots_signal: np.ndarray | None = None    # the projector's part of the light (structured light)
    ambient: np.ndarray | None = None        # the ambient part of the light, under a flickering light (night.py)
    fan_sweep: np.ndarray | None = None      # each pixel's coordinate along a ceiling fan's blades' motion (fan.py)
    beacon_ir: np.ndarray | None = None      # an amber beacon's IR at the flash's peak (beacon.py)
    pulsed_ir: tuple[np.ndarray, ...] = ()   # the eighteenth family's pulsed lights' IR per unit weight (holiday.py)


@dataclass
class _ColorFrame:
    color: np.ndarray
    color_truth: np.ndarray
    state: SceneState
    exposure_us: float
    gain: float


@dataclass
class _ClipColor:
    """A prerendered colour frame: its light before exposure (half floats), exposed when it is played."""
    light: np.ndarray
    color_truth: np.ndarray
    state: SceneState


_PRERENDERED: dict = {}
_PRERENDER_LOCK = threading.Lock()
_HALF_MAX = float(np.finfo(np.float16).max)         # a prerendered colour light past it would be inf


def _freeze(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.flags.writeable = False


def _ping_pong(k: int, n: int) -> int:
    """0, 1, ..., n-1, n-2, ..., 1, 0, 1, ...: a clip played back and forth, so motion never jumps."""
    j = k % max(2 * n - 2, 1)
    return j if j < n else 2 * n - 2 - j


class SimCamera(Camera):
    # A D435's projector: 0-360 mW in 30 mW steps, 150 mW by default (a profile may say otherwise).
    POWER_RANGE = ProjectorPowerRange(0.0, 360.0, 30.0, PROJECTOR_POWER_MW)
    read_may_hang = False        # Python throughout: a read returns or raises FrameTimeout in time

    def __init__(self, cfg: SimConfig, uri: str = "sim://"):
        self.cfg = cfg
        self.serial = serial_for(cfg.unit)
        self.renders_on_read = not cfg.realtime     # unpaced: each frame rendered when read, at its own timing
        self.waits_for_reader = not (cfg.realtime and cfg.stream > 0)     # ``stream``: a device's clock
        self._uri = uri
        # The camera profile decides geometry, noise, projector and what the device can be asked to do.
        named = named_profile(cfg)
        self.profile = get_profile(camera_for(cfg.family, cfg.identity, cfg.camera))
        depth_view, _ = views_for(self.profile)
        caps = {Capability.ILLUMINATION_CONTROL, Capability.EXPOSURE_LOCK_IR, Capability.EXPOSURE_LOCK_COLOR,
                Capability.EXPOSURE_REGION}
        if self.profile.has_projector:
            caps.add(Capability.PROJECTOR_CONTROL)
            if self.profile.projector_power is not None:
                caps.add(Capability.PROJECTOR_POWER)
                self.POWER_RANGE = self.profile.projector_power
        self.capabilities = frozenset(caps)
        self._scene = Scene(cfg)
        self._nir_share = ambient_nir_share(cfg)
        # ``ir_leak``: what visible light the IR imagers add per channel of the colour model's
        # irradiance (leak.py); None: the IR image is the 850 nm band alone (every camera by default).
        self._leak_gains = band_gains(self.profile, cfg.cct) if cfg.ir_leak_on else None
        self._lights = Lights(
            projector_pos=np.array([self.profile.projector_offset_m, 0.0, 0.0]) if self.profile.has_projector else None,
            lamp_dir=LAMP_DIR, lamp_radius_rad=LAMP_RADIUS_RAD, lamp_share=LAMP_SHARE)
        # Stream modes: the depth/IR mode renders through a view (and a profile) with its intrinsics.
        self._mode = depth_mode(cfg.depth_mode, cfg.fps, self.profile)
        self._depth_fps = self._mode.fps
        # Colour: the mode a RealSense/Orbbec driver would choose for the face (or the URI's), rendered
        # through a view with that mode's intrinsics.
        self._color = color_mode(cfg.color_mode, cfg.color_fps, cfg.fps, self.profile)
        self._color_fps = self._color.mode.fps
        self._color_view = color_view_for(self.profile, self._color.intrinsics)
        # The kiosk screen's light on the colour view (keeps the background wall's field between frames).
        self._screen_light = ScreenLight(self._color_view, cfg.screen_nits, SCREEN, self.profile.depth_to_color)
        # How far the panel's backlight may raise its everyday luminance (``set_illumination``).
        self._screen_headroom = (cfg.screen_max_nits / cfg.screen_nits
                                 if cfg.screen_max_nits is not None and cfg.screen_nits > 0 else 1.0)
        self._screen_light_ir: ScreenLight | None = None    # the same on the IR view, under ``ir_leak`` (lazily)
        self._depth_intr = depth_intrinsics(self.profile, self._mode)
        if self._depth_intr == depth_view.intrinsics:
            self._depth_view, self._sensing = depth_view, self.profile
        else:
            self._depth_view = View(self._depth_intr, Extrinsics.identity())
            self._sensing = dataclasses.replace(self.profile, depth_intrinsics=self._depth_intr)
        self._rng = np.random.default_rng(cfg.seed)
        # This unit's projector (``unit``, ``mount_dx``/``mount_dy``; unit 0 in place: ``DotPattern.make``'s).
        self._dots = DotPattern.for_unit(self._depth_intr.width, self._depth_intr.height, cfg.unit,
                                         (cfg.mount_dx, cfg.mount_dy), fx=self._depth_intr.fx)
        self._lock = threading.Lock()
        self._queue: collections.deque[Frame] = collections.deque()
        self._started = False
        self._closed = False
        self._depth_tick = 0                 # next depth/IR tick to produce
        self._color_tick = 0                 # next colour frame to produce
        self._t0_wall = 0.0
        self._t0_host_ns = 0                 # host clock at start (the unpaced camera's arrival times)
        # ``stream=N``: a device's clock, which its own capture does not slow: the wall time this process
        # spends making frames (rendering, exposing) is taken out of it (``_produce_streamed``), so that
        # only the reader's own delays leave it behind, as they do a device's reader.
        self._streams = bool(cfg.realtime and cfg.stream > 0)
        self._producing_since_ns: int | None = None
        self._t0_hw_ms = float(self._rng.uniform(1e5, 9e5))
        # Controls: the last command, and when each command reaches the hardware.
        # URI keys override; a named camera brings its typical latency and jitter; none: 0.
        latency = cfg.projector_latency if cfg.projector_latency is not None else \
            (named.projector_latency_frames if named else 0)
        jitter = cfg.projector_jitter if cfg.projector_jitter is not None else \
            (named.projector_jitter if named else 0.0)
        self._commanded: ProjectorState = (cfg.projector and self.profile.has_projector, self.POWER_RANGE.default)
        self._projector: Timeline[ProjectorState] = Timeline(
            self._commanded, latency, jitter, np.random.default_rng(cfg.seed + 31))
        self._screen: Timeline[Rgb] = Timeline(BLACK, cfg.screen_latency, 0.0)
        default_mw = self.POWER_RANGE.default
        self._injector: Injector | None = make_injector(cfg.inject, self._commanded, latency, default_mw, cfg.seed)
        # Exposure: colour AE and white balance, IR AE; a lock freezes them (and is what metadata claims).
        self._ae = AutoExposure(spec=self.profile.color_ae)
        self._awb = np.ones(3, np.float32)
        self._color_lock: ExposureSetting | None = None
        self._ae_region: tuple[int, int, int, int] | None = None     # colour metering region (None: centre)
        # Imagers behind an IR-cut filter (D405) meter visible light: skin's luminance (~0.35) stands in
        # for its 850 nm reflectance (0.58) as a share of ~0.6.
        start_s = ir_exposure_s(cfg.lux, cfg.cct, share=0.6 if self.profile.ir_band == "visible" else self._nir_share)
        self._ir_ae = IrAutoExposure(ExposureLimits.of(self.profile).for_fps(self._depth_fps), start_s)
        self._ir_lock: ExposureSetting | None = None
        # What a manual IR lock may set: the imager's whole exposure range (not the AE's ceiling)
        # within the frame period; the gain stays the profile's (the simulator models no IR gain control).
        g = self.profile.ir_gain_default
        self._ir_manual = ExposureLimits(self.profile.ir_exposure_range_s, (g, g)).for_fps(self._depth_fps)
        self._noise = NoiseBank.for_seed(cfg.seed + 3)
        self._gt: collections.OrderedDict[tuple[StreamKind, int], np.ndarray] = collections.OrderedDict()
        self._scene_cache: tuple[float, list[Placed], tuple[list, list], SceneState] | None = None
        # Each view renders into its own canvas: a render's maps live until that view's next render.
        self._canvases = {"color": Canvas(), "depth": Canvas()}
        self.scene: SceneState | None = None
        self._pre_depth: list[dict[bool, _DepthTick]] | None = None
        self._pre_color: list[_ClipColor] | None = None
        # ``select_streams`` without colour: its frames are not made (projector-enrol reads IR and depth), their
        # random draws still taken, so that the IR and depth frames are the ones a camera with colour gives.
        self._color_on = True

    # --- Camera API --------------------------------------------------------------------------
    @property
    def scene_time_s(self) -> float:
        """The scene time (s from the session's start, before ``t0_s``) of the depth ticks produced
        so far: how long this session held the person before the camera (pad-eval's retry model)."""
        return self._depth_tick / self._depth_fps

    @property
    def info(self) -> DeviceInfo:
        return DeviceInfo(uri=self._uri, backend="sim", name=f"Simulated RGB-IR-depth camera ({self.profile.model})",
                          serial=self.serial, firmware=FIRMWARE, streams=("color", "depth", "ir"),
                          note=f"camera profile {self.profile.name}; colour {self._color.mode}: {self._color.why}")

    def profiles(self) -> list[StreamProfile]:
        d, ci = self._depth_intr, self._color_view.intrinsics
        color = [StreamProfile(StreamKind.COLOR, ci.width, ci.height, self._color_fps, PixelFormat.BGR8, 0, ci)]
        return (color if self._color_on else []) + [
            StreamProfile(StreamKind.DEPTH, d.width, d.height, self._depth_fps, PixelFormat.Z16, 0, d),
            StreamProfile(StreamKind.IR, d.width, d.height, self._depth_fps, PixelFormat.Y8, 1, d),
        ]

    def select_streams(self, kinds: Iterable[StreamKind]) -> None:
        """Before ``start``: colour, or not. Depth and IR come from one imager, rendered together, and always
        come; a selection without colour makes no colour frame (``_skip_color``)."""
        wanted = set(kinds)
        if not wanted or not wanted <= {StreamKind.COLOR, StreamKind.DEPTH, StreamKind.IR}:
            raise InvalidSetting(f"the simulator streams colour, depth and IR, not {sorted(k.value for k in wanted)}")
        with self._lock:
            if self._started:
                raise InvalidSetting("streams are selected before start()")
            self._color_on = StreamKind.COLOR in wanted

    def extrinsics(self, src: StreamKind, dst: StreamKind) -> Extrinsics:
        geo = {StreamKind.DEPTH: Extrinsics.identity(), StreamKind.IR: Extrinsics.identity(),
               StreamKind.COLOR: self.profile.depth_to_color}
        # p_dst = E_dst @ E_src^-1 @ p_src, with E_x mapping the depth frame to stream x.
        return geo[src].inverse().then(geo[dst])

    def start(self) -> None:
        with self._lock:
            if self._closed:
                raise StreamClosed("sim camera was stopped; open a new one")
            if not self._started:
                self._started = True
                self._init_auto_exposure()
                if self.cfg.prerender:
                    self._prerender()
                self._t0_host_ns = time.monotonic_ns()
                self._t0_wall = self._t0_host_ns / 1e9

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            self._queue.clear()

    def read(self, timeout_s: float = 1.0) -> Frame:
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while True:
            with self._lock:
                if self._closed:
                    raise StreamClosed("sim camera is stopped")
                if not self._started:
                    raise StreamClosed("sim camera not started; call start() first")
                if self._queue:
                    return self._queue.popleft()
                due = self._t0_wall + self._next_event_s()
            if self.cfg.realtime:
                wait = due - time.monotonic()
                if wait > 0:
                    if time.monotonic() + wait > deadline:
                        time.sleep(max(0.0, deadline - time.monotonic()))
                        raise FrameTimeout(f"no sim frame within {timeout_s:.3f} s")
                    time.sleep(wait)
            with self._lock:
                if self._closed:
                    raise StreamClosed("sim camera is stopped")
                if not self._queue:
                    self._drop_unread()
                    if self._streams:
                        self._produce_streamed()
                    else:
                        self._produce_next()

    def set_projector(self, on: bool) -> None:
        self._require_projector(power=False)
        with self._lock:
            self._command_projector((bool(on), self._commanded[1]))

    def projector_power_range(self) -> ProjectorPowerRange:
        self._require_projector(power=True)
        return self.POWER_RANGE

    def depth_range(self) -> DepthRange:
        """The profiled device's range: the simulated stereo matcher finds nothing outside it
        (``sensor.py``), as the real device's disparity search does."""
        lo, hi = self.profile.depth_range_m
        return DepthRange(lo, hi, f"simulated {self.profile.model}")

    def set_projector_power(self, mw: float) -> float:
        self._require_projector(power=True)
        v = self.POWER_RANGE.snap(mw)
        with self._lock:
            self._command_projector((self._commanded[0], v))
        return v

    def _require_projector(self, *, power: bool) -> None:
        """Refuse what the profiled device cannot do, as its SDK does (no laser options on a D405,
        on/off only on an Astra)."""
        cap = Capability.PROJECTOR_POWER if power else Capability.PROJECTOR_CONTROL
        if cap not in self.capabilities:
            what = "settable projector power" if power else "projector"
            raise CapabilityUnsupported(f"{self.profile.model} has no {what}")

    def set_illumination(self, rgb: tuple[float, float, float], luminance: float = 1.0) -> None:
        """The colour the kiosk screen shows from now on, each channel 0..1 of full white, at
        ``luminance`` times the panel's everyday luminance (``screen_nits``; its backlight raised, up to
        ``screen_max_nits``). The panel shows it ``screen_latency`` colour frames after the next one."""
        if isinstance(rgb, (str, bytes)) or not hasattr(rgb, "__len__") or len(rgb) != 3:
            raise InvalidSetting(f"illumination is an (r, g, b) colour, each 0..1, not {rgb!r}")
        if (isinstance(luminance, bool) or not isinstance(luminance, numbers.Real) or not math.isfinite(luminance)
                or not 1 <= luminance <= 8):
            raise InvalidSetting(f"the screen's luminance must be a number within 1..8, not {luminance!r}")
        vals: list[float] = []
        for v in rgb:
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or not 0 <= v <= 1:
                raise InvalidSetting(f"illumination channels must be numbers within 0..1, not {rgb!r}")
            vals.append(float(v))
        # The screen's light is linear in each channel's drive: a raised backlight scales the colour.
        gain = min(float(luminance), self._screen_headroom)
        with self._lock:
            self._screen.command((vals[0] * gain, vals[1] * gain, vals[2] * gain),
                                 self._issued_at(self._color_tick, self._color_fps))

    def lock_exposure(self, stream: StreamKind, setting: ExposureSetting | None = None) -> ExposureSetting:
        """Freeze the auto-exposure of the imager behind ``stream`` (IR and depth share one) at its
        current exposure and gain, or at ``setting`` clamped to the imager's range (IR only: its
        exposure range up to the frame period; the gain is held at the profile's), from the next
        frame on; returns what was applied. Locking the colour imager holds its white balance too."""
        with self._lock:
            if self._imager(stream) == "ir":
                if setting is not None:
                    (emin, emax), (gmin, gmax) = self._ir_manual.exposure_s, self._ir_manual.gain
                    exposure_us = min(max(float(setting.exposure_us), emin * 1e6), emax * 1e6)
                    gain = min(max(float(setting.gain), gmin), gmax)
                    self._ir_lock = ExposureSetting(exposure_us, gain)
                    if self._injector is None or self._injector.obeys_exposure_lock:
                        self._ir_ae.exposure_s, self._ir_ae.gain = exposure_us * 1e-6, gain
                        self._ir_ae.locked = True
                elif self._ir_lock is None:
                    exposure_s, gain = self._ir_ae.setting
                    self._ir_lock = ExposureSetting(exposure_s * 1e6, gain)
                    if self._injector is None or self._injector.obeys_exposure_lock:
                        self._ir_ae.locked = True
                return self._ir_lock
            if setting is not None:
                raise CapabilityUnsupported("sim: the colour imager is locked where its auto-exposure is")
            if self._color_lock is None:
                self._color_lock = ExposureSetting(self._ae.exposure_s * 1e6, self._ae.gain)
            return self._color_lock

    def unlock_exposure(self, stream: StreamKind) -> None:
        """Let the auto-exposure of the imager behind ``stream`` run again."""
        with self._lock:
            if self._imager(stream) == "ir":
                self._ir_lock = None
                self._ir_ae.locked = self._injector is not None and self._injector.fixed_ir_exposure
            else:
                self._color_lock = None

    def set_exposure_region(self, stream: StreamKind, region: tuple[int, int, int, int] | None) -> None:
        """Meter the colour auto-exposure on ``region`` (x0, y0, x1, y1, colour pixels) from the next
        frame on, or on the centre half again with None. The IR imager keeps metering its whole
        image (the challenge's exposure behaviour is modelled on that)."""
        if self._imager(stream) != "color":
            raise CapabilityUnsupported("sim: an exposure region is offered for the colour imager only")
        if region is not None:
            w, h = self._color_view.intrinsics.width, self._color_view.intrinsics.height
            try:
                x0, y0, x1, y1 = (int(v) for v in region)
            except (TypeError, ValueError):
                raise InvalidSetting(f"exposure region is (x0, y0, x1, y1), not {region!r}") from None
            if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
                raise InvalidSetting(f"exposure region {region!r} is not inside the {w}x{h} colour image")
            region = (x0, y0, x1, y1)
        with self._lock:
            self._ae_region = region

    @staticmethod
    def _imager(stream: StreamKind) -> str:
        if not isinstance(stream, StreamKind):
            raise InvalidSetting(f"not a stream: {stream!r}")
        return "color" if stream is StreamKind.COLOR else "ir"

    def ground_truth(self, stream: StreamKind, frame_number: int) -> np.ndarray:
        """True depth in metres in the stream's geometry for a recent frame (NaN: no surface)."""
        key = (StreamKind.DEPTH if stream is StreamKind.IR else stream, frame_number)
        with self._lock:
            if key not in self._gt:
                raise KeyError(f"no ground truth kept for {stream.value} frame {frame_number}")
            return self._gt[key]

    # --- Controls --------------------------------------------------------------------------------
    def _command_projector(self, state: ProjectorState) -> None:
        # Issued at the next depth tick (``stream``: the tick due now); the timeline adds the device's
        # latency and jitter.
        self._commanded = state
        issued = self._issued_at(self._depth_tick, self._depth_fps)
        self._projector.command(state, issued)
        if self._injector is not None:
            self._injector.command(state, issued)

    def _issued_at(self, next_tick: int, fps: float) -> int:
        """The tick a command sent now is issued at: the next one to be produced, or with ``stream``
        (a camera whose clock does not wait for its reader) the first one due after now when the reader
        is behind, so the frames captured meanwhile and not yet read do not show it."""
        if not (self.cfg.stream > 0 and self.cfg.realtime and self._started):
            return next_tick
        due = int((time.monotonic() - self._t0_wall) * fps) + 1
        return max(next_tick, due)

    def _projector_at(self, tick: int) -> tuple[ProjectorState, ProjectorState]:
        """(state the IR/depth pixels show, state the frame's metadata reports) at a depth tick."""
        if self._injector is not None:
            shown = self._injector.shown(tick)
            return shown.pixels, shown.claimed
        # A D4xx reports what its projector did, except that the report can be a frame off.
        return self._projector.state_at(tick), self._projector.state_at(tick - self.cfg.projector_md_lag)

    def _screen_at(self, color_tick: int) -> Rgb:
        """The screen colour lighting the colour pixels of a colour frame."""
        if self._injector is not None:
            return self._injector.screen(color_tick)
        return self._screen.state_at(color_tick)

    # --- Scene -----------------------------------------------------------------------------------
    def _objects(self, t: float) -> tuple[list[Placed], tuple[list, list], SceneState]:
        objs, static, moving, p = self._scene.objects(t)
        return objs, (static, moving), SceneState(p.subject, p.distance_m, p.yaw_deg, p.pitch_deg, p.roll_deg,
                                                  p.eyes_closed, False, BLACK)

    def _scene_at(self, t: float) -> tuple[list[Placed], tuple[list, list], SceneState]:
        """The scene at time ``t`` (s), shared by the depth tick and colour frame of one instant."""
        hit = self._scene_cache
        if hit is None or abs(hit[0] - t) > 1e-9:
            objs, planes, state = self._objects(t)
            hit = self._scene_cache = (t, objs, planes, state)
        return hit[1], hit[2], hit[3]

    def _render(self, view: View, objs: list[Placed], planes: tuple[list, list], projector: bool = True) -> ViewMaps:
        static, moving = planes
        lights = self._lights if projector else Lights(None, self._lights.lamp_dir, self._lights.lamp_radius_rad,
                                                       self._lights.lamp_share)
        return render_view(view, objs, planes=moving, static_planes=static,
                           static_key=(self.cfg.background, self._scene.scene_seed), lights=lights,
                           canvas=self._canvases["color" if view is self._color_view else "depth"])

    # --- Sensors ---------------------------------------------------------------------------------
    def _init_auto_exposure(self) -> None:
        c = self.cfg
        objs, planes, _ = self._objects(0.0)
        if self._color_on:                  # a camera without colour (``select_streams``) has no colour AE to settle
            cmaps = self._render(self._color_view, objs, planes, projector=False)
            lit = color_irradiance(cmaps, c.lux, c.cct, None, self._scene.panel_lux)
            irr = self._street_color(self._shaded_color(lit, cmaps), cmaps, c.lux, 0.0)
            for _ in range(6):
                self._ae.update(metered_level(irr, self._ae), rate=1.0)
            self._update_awb(rate=1.0)
        # The IR auto-exposure starts settled on what the imager sees at start (a spliced stream
        # was recorded at the exposure the camera settles on with its projector on).
        pixels_on = True if self._injector is not None and self._injector.fixed_ir_exposure \
            else self._projector_at(0)[0][0]
        dmaps = self._render(self._depth_view, objs, planes)
        signal, _ = ir_signal(dmaps, c.lux, c.cct, pixels_on, self._dots,
                              self.POWER_RANGE.default, profile=self._sensing, share=self._nir_share,
                              scatter=c.scatter, scatter_core=c.scatter_core)
        signal = self._street_ir(self._flooded_ir(self._shaded_ir(signal, dmaps), dmaps), dmaps, 0.0)
        visible = self._visible_ir(dmaps, 0.0)
        if visible is not None:
            signal = signal + visible
        for _ in range(12):
            self._ir_ae.update(expose_ir(signal, *self._ir_ae.setting, None)[0], rate=1.0)
        self._ir_ae.locked = self._injector is not None and self._injector.fixed_ir_exposure

    def _shaded_ir(self, signal: np.ndarray, dmaps: ViewMaps) -> np.ndarray:
        """The IR light with the direct sun's shadow edge or a blind's stripes (sun.py), if the scene has
        one (``_sunlit``)."""
        edge = self._scene.sun_edge
        if edge is None or self.profile.ir_band != "nir" or self._nir_share is None:
            return signal
        sunlit = self._sunlit(self._depth_view, dmaps.z)
        if isinstance(edge, Blinds):
            return edge.ir(signal, dmaps, self.cfg.lux, self._nir_share, sunlit)
        return shade_ir(signal, dmaps, self.cfg.lux, self._nir_share, sunlit)

    def _flooded_ir(self, signal: np.ndarray, dmaps: ViewMaps) -> np.ndarray:
        """The IR light with a CCTV camera's 850 nm flood (night.py), if the scene has one; a live
        subject's skin (its 850 nm reflectance within ``SKIN_NIR_TOLERANCE`` of theirs) shows its sheen."""
        flood = self._scene.ir_flood
        if flood is None or self.profile.ir_band != "nir":
            return signal
        return signal + self._flood_signal(flood, dmaps)

    def _flood_signal(self, flood: IrFlood, dmaps: ViewMaps) -> np.ndarray:
        """A point-like 850 nm source's light on the IR imager (night.IrFlood: the ninth's CCTV flood, the
        eighteenth's time-of-flight counter at its pulse's peak), with a live subject's skin sheen."""
        sheen = None
        ident = self._scene.identity
        if self.cfg.subject in ("live", "multi") and ident.skin_sheen > 0:
            skin = (dmaps.object_id == 0) & (np.abs(dmaps.nir - ident.skin_nir) < SKIN_NIR_TOLERANCE)
            sheen = np.where(skin, np.float32(ident.skin_sheen), np.float32(0.0))
        return flood.signal(self._depth_view, dmaps, sheen)

    def _street_ir(self, signal: np.ndarray, dmaps: ViewMaps, t: float) -> np.ndarray:
        """The IR light with the tenth family's street (street.py): a bright street behind the head, or
        passers-by's shadows at time ``t``, if the scene has one; or the eleventh's sunflecks (lobby.py); or
        the twelfth's ring light or headlamps (keylight.py); or the nineteenth's door (entrance.py); or the
        twentieth's heater or windscreen glints (radiant.py); or the twenty-first's floor bounce or bystander's
        phone (bystander.py); or the twenty-second's gobo or lightning (atrium.py); or the twenty-third's caustics
        or mirror ball (reflected.py).
        The lights run on the scene's clock from ``t0_s`` (a session opened later in the same scene)."""
        t = t + self.cfg.t0_s
        bl, sh = self._scene.backlight, self._scene.shadows
        if self._scene.dapple is not None and self.profile.ir_band == "nir":
            # The eleventh family's sunflecks (lobby.py); its signage adds nothing at 850 nm.
            signal = self._scene.dapple.ir(signal, self._depth_view, dmaps, t)
        if self._scene.door is not None and self.profile.ir_band == "nir":
            # The nineteenth family's door (entrance.py); its phone's screen adds nothing at 850 nm.
            signal = self._scene.door.ir(signal, self._depth_view, dmaps, t)
        if self.profile.ir_band == "nir":
            # The twentieth family's lights (radiant.py): the heater's filament, or the cars' glints.
            if self._scene.heater is not None:
                signal = self._scene.heater.ir(signal, self._depth_view, dmaps, t)
            if self._scene.glint is not None:
                signal = self._scene.glint.ir(signal, self._depth_view, dmaps, t)
            # The twenty-first family's lights (bystander.py): the floor's bounce, or the bystander's phone.
            if self._scene.bounce is not None:
                signal = self._scene.bounce.ir(signal, self._depth_view, dmaps, t)
            if self._scene.torch is not None:
                signal = self._scene.torch.ir(signal, self._depth_view, dmaps, t)
            # The twenty-second family's lights (atrium.py): the gobo's cut-outs, or the storm's strokes.
            if self._scene.gobo is not None:
                signal = self._scene.gobo.ir(signal, self._depth_view, dmaps, t)
            if self._scene.lightning is not None:
                signal = self._scene.lightning.ir(signal, self._depth_view, dmaps, t)
            # The twenty-third family's lights (reflected.py): the fountain's caustics, or the mirror ball's spots.
            if self._scene.caustics is not None:
                signal = self._scene.caustics.ir(signal, self._depth_view, dmaps, t)
            if self._scene.mirrorball is not None:
                signal = self._scene.mirrorball.ir(signal, self._depth_view, dmaps, t)
        if self.profile.ir_band == "nir":
            # The twelfth family's lights (keylight.py): the kiosk's ring light, or cars' headlamps.
            if self._scene.ring is not None:
                signal = self._scene.ring.ir(signal, self._depth_view, dmaps)
            if self._scene.headlights is not None:
                signal = self._scene.headlights.ir(signal, self._depth_view, dmaps, t)
        if (bl is None and sh is None) or self.profile.ir_band != "nir" or self._nir_share is None:
            return signal
        if bl is not None:
            return bl.ir(signal, self._depth_view, dmaps, self.cfg.lux, self._nir_share)
        assert sh is not None
        return sh.ir(signal, self._depth_view, dmaps, self.cfg.lux, self._nir_share, t)

    def _street_color(self, irr: np.ndarray, cmaps: ViewMaps, lux: float, t: float,
                      view: View | None = None) -> np.ndarray:
        """The colour light with the tenth family's street (street.py), the eleventh's signage or
        sunflecks at time ``t`` (lobby.py), the twelfth's ring light or headlamps (keylight.py) or the
        nineteenth's phone or door (entrance.py) or the twentieth's heater or glints (radiant.py) or the
        twenty-first's floor bounce or bystander's phone (bystander.py) or the twenty-second's gobo or lightning
        (atrium.py) or the twenty-third's caustics or mirror ball (reflected.py), if the scene has one (from
        ``t0_s``, as ``_street_ir``);
        ``view``: the view ``cmaps`` was rendered in (None: the colour view)."""
        t = t + self.cfg.t0_s
        view = self._color_view if view is None else view
        bl, sh = self._scene.backlight, self._scene.shadows
        if self._scene.phone is not None:
            # The nineteenth family's lights (entrance.py): the customer's phone, or the door's daylight.
            return self._scene.phone.color(irr, view, cmaps, t)
        if self._scene.door is not None:
            return self._scene.door.color(irr, view, cmaps, t)
        if self._scene.heater is not None:
            # The twentieth family's lights (radiant.py): the heater's glow, or the cars' glints.
            return self._scene.heater.color(irr, view, cmaps, t)
        if self._scene.glint is not None:
            return self._scene.glint.color(irr, view, cmaps, t)
        if self._scene.bounce is not None:
            # The twenty-first family's lights (bystander.py): the floor's bounce, or the bystander's phone.
            return self._scene.bounce.color(irr, view, cmaps, t)
        if self._scene.torch is not None:
            return self._scene.torch.color(irr, view, cmaps, t)
        if self._scene.gobo is not None:
            # The twenty-second family's lights (atrium.py): the gobo's cut-outs, or the storm's strokes.
            return self._scene.gobo.color(irr, view, cmaps, t)
        if self._scene.lightning is not None:
            return self._scene.lightning.color(irr, view, cmaps, t)
        if self._scene.caustics is not None:
            # The twenty-third family's lights (reflected.py): the fountain's caustics, or the mirror ball's spots.
            return self._scene.caustics.color(irr, view, cmaps, t)
        if self._scene.mirrorball is not None:
            return self._scene.mirrorball.color(irr, view, cmaps, t)
        if self._scene.signage is not None:
            # The eleventh family's lights (lobby.py): a panel beside the kiosk, or sunflecks.
            return self._scene.signage.color(irr, view, cmaps, t)
        if self._scene.dapple is not None:
            return self._scene.dapple.color(irr, view, cmaps, t)
        if self._scene.ring is not None:
            # The twelfth family's lights (keylight.py): the kiosk's ring light, or cars' headlamps.
            return self._scene.ring.color(irr, view, cmaps)
        if self._scene.headlights is not None:
            return self._scene.headlights.color(irr, view, cmaps, t)
        if bl is not None:
            return bl.color(irr, view, cmaps, lux, self.cfg.cct)
        if sh is not None:
            return sh.color(irr, view, cmaps, lux, self.cfg.cct, t)
        return irr

    def _flicker(self, t_s: float, exposure_s: float) -> float:
        """The flickering light's mean over an exposure starting at ``t_s`` (1.0 for a steady light),
        on the scene's clock from ``t0_s`` (as ``_street_ir``)."""
        f = self._scene.flicker
        return 1.0 if f is None else f.factor(t_s + self.cfg.t0_s, exposure_s)

    def _shaded_color(self, irr: np.ndarray, cmaps: ViewMaps, view: View | None = None) -> np.ndarray:
        """The colour light with the direct sun's shadow edge or a blind's stripes (sun.py), if the scene
        has one; ``view``:
        the view ``cmaps`` was rendered in (None: the colour view)."""
        edge = self._scene.sun_edge
        if edge is None:
            return irr
        view = self._color_view if view is None else view
        if isinstance(edge, Blinds):
            return edge.color(irr, cmaps, self.cfg.lux, self.cfg.cct, self._sunlit(view, cmaps.z))
        return shade_color(irr, cmaps, self.cfg.lux, self.cfg.cct, self._sunlit(view, cmaps.z))

    def _sunlit(self, view: View, z: np.ndarray) -> np.ndarray:
        """How much of the sun's disc each pixel sees (sun.py); none when the person stands in the
        shade (``shade=1``: the whole face on the edge's shaded side, ``sun.SHADE_LUX`` of the lux)."""
        edge = self._scene.sun_edge
        assert edge is not None
        if self.cfg.shade:
            return np.zeros(z.shape, np.float32)
        return edge.sunlit(view, z)

    def _visible_ir(self, dmaps: ViewMaps, t: float) -> np.ndarray | None:
        """The visible light the IR imagers add under ``ir_leak`` (leak.py), None without it: the colour
        model's irradiance on the IR view's surfaces (a display's own light included), with the room's
        lights as the colour image has them at time ``t`` (the sun's shadow edge, the street, signage,
        sunflecks), through the profile's band gains. The kiosk screen's own light is ``_screen_ir``'s."""
        if self._leak_gains is None:
            return None
        c = self.cfg
        irr = color_irradiance(dmaps, c.lux, c.cct, None, self._scene.panel_lux)
        irr = self._street_color(self._shaded_color(irr, dmaps, self._depth_view), dmaps, c.lux, t, self._depth_view)
        return visible_in_ir(irr, self._leak_gains)

    def _screen_ir(self, dmaps: ViewMaps) -> np.ndarray | None:
        """The kiosk screen's visible light in the IR image under ``ir_leak`` (leak.py), None without
        it or while the screen is dark: the colour the panel shows now (the next colour frame's),
        thrown on the IR view's surfaces as the colour model throws it (``ScreenLight``; a display's
        glass returns 4 %), through the same band gains as the room's light. Not flickered with the
        room's lights (its own backlight is steady here)."""
        if self._leak_gains is None or self.cfg.screen_nits <= 0:
            return None
        rgb = self._screen_at(self._color_tick)
        if max(rgb) <= 0:
            return None
        seen = dmaps.object_id >= 0
        rows, cols = np.nonzero(np.any(seen, axis=1))[0], np.nonzero(np.any(seen, axis=0))[0]
        region = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1) if rows.size else (0, 0, 0, 0)
        if self._screen_light_ir is None:
            self._screen_light_ir = ScreenLight(self._depth_view, self.cfg.screen_nits, SCREEN, Extrinsics.identity())
        screen = self._screen_light_ir.irradiance(dmaps.z, rgb, region)
        if screen is None:
            return None
        reflect = np.where(dmaps.emissive[..., None], np.float32(0.04), dmaps.albedo)
        return visible_in_ir(np.multiply(reflect, screen, dtype=np.float32), self._leak_gains)

    def _update_awb(self, rate: float) -> None:
        # White balance that corrects 85 % of the light's cast, as consumer modules do.
        light = illuminant_bgr(self.cfg.cct)
        target = (1.0 / light) ** 0.85
        target = target / target[1]
        self._awb = (self._awb * (1 - rate) + target * rate).astype(np.float32)

    def _render_depth(self, t: float, on: bool, power_mw: float) -> tuple[_DepthTick, ViewMaps]:
        """A depth tick's light and scene (depth is computed once the exposure is known)."""
        objs, planes, state = self._scene_at(t)
        dmaps = self._render(self._depth_view, objs, planes)
        signal, dots = ir_signal(dmaps, self.cfg.lux, self.cfg.cct, on, self._dots, power_mw,
                                 profile=self._sensing, share=self._nir_share, scatter=self.cfg.scatter,
                                 scatter_core=self.cfg.scatter_core)
        signal = self._street_ir(self._flooded_ir(self._shaded_ir(signal, dmaps), dmaps), dmaps, t)
        visible = self._visible_ir(dmaps, t)
        if visible is not None:
            signal = signal + visible
            screen_ir = self._screen_ir(dmaps)
            if screen_ir is not None:
                signal = signal + screen_ir
        ambient = sweep = None
        modulated = self._scene.flicker is not None or self._scene.fan is not None
        if modulated and self.profile.ir_band == "nir" and self._nir_share is not None:
            ambient = ambient_ir(dmaps, self.cfg.lux, self._nir_share)
            if visible is not None:
                ambient = ambient + visible          # the room's visible light flickers as its NIR does
            if self._scene.fan is not None:
                sweep = self._scene.fan.sweep(self._depth_view, dmaps.z)
        return _DepthTick(signal, np.empty(0, np.uint16), np.empty(0, np.float32), state, dots,
                          ambient=ambient, fan_sweep=sweep, beacon_ir=self._beacon_ir(dmaps),
                          pulsed_ir=self._pulsed_ir(dmaps)), dmaps

    def _pulsed_ir(self, dmaps: ViewMaps) -> tuple[np.ndarray, ...]:
        """The eighteenth family's pulsed lights on the IR imager per unit of their ``ir_weights`` (holiday.py):
        a time-of-flight counter's flood at its peak; the string lights' two channels' visible light through
        the band gains without an IR-pass filter (``ir_leak``). Empty without either."""
        if self.profile.ir_band != "nir":
            return ()
        if self._scene.tof is not None:
            return (self._flood_signal(self._scene.tof.flood, dmaps),)
        strings = self._scene.strings
        if strings is not None and self._leak_gains is not None:
            return tuple(visible_in_ir(self._coloured_light(dmaps, 1.0, bgr), self._leak_gains)
                         for bgr in strings.colours)
        return ()

    def _beacon_light(self, maps: ViewMaps) -> np.ndarray:
        """An amber beacon's colour light at its flash's peak on ``maps``' surfaces (beacon.py): the colour
        model's with the room lamp's shading, tinted amber (``AMBER_BGR`` over the street light's own colour)."""
        beacon = self._scene.beacon
        assert beacon is not None
        return self._coloured_light(maps, beacon.peak_lux, AMBER_BGR)

    def _coloured_light(self, maps: ViewMaps, lux: float, bgr: np.ndarray) -> np.ndarray:
        """A coloured light of ``lux`` on ``maps``' surfaces with the room lamp's shading: the colour model's
        irradiance with its B, G, R per lux ``bgr`` in place of the room light's own colour (the sixteenth's
        beacon, the seventeenth's light bar)."""
        cct = self.cfg.cct
        irr = color_irradiance(maps, lux, cct, None, 0.0)
        irr *= bgr / illuminant_bgr(cct)
        return irr

    def _beacon_ir(self, dmaps: ViewMaps) -> np.ndarray | None:
        """An amber beacon's IR at its flash's peak (beacon.py), None without one: its own 850 nm (a
        halogen lamp's under the dome; none from LEDs) and, without an IR-pass filter (``ir_leak``), its
        visible light through the room's band gains."""
        beacon = self._scene.beacon
        if beacon is None or self.profile.ir_band != "nir":
            return None
        ir = ambient_ir(dmaps, beacon.peak_lux, beacon.nir_share)
        if self._leak_gains is not None:
            ir += visible_in_ir(self._beacon_light(dmaps), self._leak_gains)
        return ir

    def _depth(self, dmaps: ViewMaps, tick: _DepthTick, electrons: np.ndarray, exposure_s: float
               ) -> tuple[np.ndarray, np.ndarray]:
        """Depth from the exposed IR (structured light matches only the projector's own pattern)."""
        pattern = None
        if self.profile.structured_light and tick.dots_signal is not None:
            pattern = tick.dots_signal.astype(np.float32) * np.float32(9000.0 * exposure_s)
        return depth_image(dmaps, electrons, self._noise, profile=self._sensing, pattern_e=pattern)

    def _render_color(self, t: float, rgb: Rgb, update_ae: bool) -> _ColorFrame:
        irr, truth, state = self._color_light(t, rgb)
        return self._expose_color(irr, truth, state, update_ae)

    def _color_light(self, t: float, rgb: Rgb) -> tuple[np.ndarray, np.ndarray, SceneState]:
        """Colour frame ``t``'s light on the sensor before exposure (float32 irradiance), its depth truth
        and the scene's state."""
        c = self.cfg
        objs, planes, state = self._scene_at(t)
        cmaps = self._render(self._color_view, objs, planes, projector=False)
        screen = None
        if c.screen_nits > 0 and max(rgb) > 0:
            seen = cmaps.object_id >= 0
            rows, cols = np.nonzero(np.any(seen, axis=1))[0], np.nonzero(np.any(seen, axis=0))[0]
            region = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1) if rows.size else None
            screen = self._screen_light.irradiance(cmaps.z, rgb, region if region is not None else (0, 0, 0, 0))
        f = self._scene.flicker
        banded = isinstance(f, PwmLight) and self.profile.color_shutter == "rolling"
        lux = c.lux if banded else c.lux * self._flicker(t + c.color_offset_ms / 1000.0, self._ae.exposure_s)
        irr = self._street_color(self._shaded_color(color_irradiance(cmaps, lux, c.cct, screen, self._scene.panel_lux),
                                                    cmaps), cmaps, lux, t)
        if banded:
            irr = self._banded(irr, cmaps, t)
        if self._scene.fan is not None:
            irr = self._fanned(irr, cmaps, t)
        if isinstance(f, Fade):
            # Dim-to-warm downlights fading (vestibule.py): the room's light at this exposure's CCT.
            tint = f.tint(t + c.color_offset_ms / 1000.0 + c.t0_s, self._ae.exposure_s, c.cct)
            irr += color_irradiance(cmaps, lux, c.cct, None, 0.0) * (tint - np.float32(1.0))
        for coloured in (self._scene.lightbar, self._scene.strings):
            if coloured is None:
                continue
            # A light bar's red and blue flash groups (vestibule.py), or holiday string lights' two channels
            # (holiday.py): each colour's share of this exposure.
            bgr = coloured.bgr(t + c.color_offset_ms / 1000.0 + c.t0_s, self._ae.exposure_s)
            if float(bgr.max()) > 0.0:
                irr += self._coloured_light(cmaps, 1.0, bgr)
        beacon = self._scene.beacon
        if beacon is not None:
            # An amber beacon's flashes (beacon.py): their share of this frame's exposure (a rolling
            # shutter's rows alike: a flash is 7-80 ms, the readout's skew not modelled).
            on = beacon.factor(t + c.color_offset_ms / 1000.0 + c.t0_s, self._ae.exposure_s)
            if on > 0.0:
                irr += np.float32(on) * self._beacon_light(cmaps)
        truth = np.where(np.isfinite(cmaps.z) & (cmaps.z <= self.profile.depth_range_m[1]), cmaps.z,
                         np.nan).astype(np.float32, copy=False)
        return irr, truth, state

    def _expose_color(self, irr: np.ndarray, truth: np.ndarray, state: SceneState, update_ae: bool) -> _ColorFrame:
        """Light ``irr`` exposed at the colour imager's current exposure, gain and white balance, then (when
        ``update_ae``: not locked) the auto-exposure and white balance moved by what it metered."""
        color = expose_color(irr, self._ae, self._noise, self._awb)
        exposure_us, gain = self._ae.exposure_s * 1e6, self._ae.gain
        if update_ae:
            self._ae.update(metered_level(irr, self._ae, self._ae_region),
                            rate=self.profile.color_ae.speed)                             # over a few frames
            self._update_awb(rate=0.2)
        return _ColorFrame(color, truth, state, exposure_us, gain)

    def _banded(self, irr: np.ndarray, cmaps: ViewMaps, t: float) -> np.ndarray:
        """The colour light under PWM-dimmed LEDs on a rolling shutter (pwm.py): each row's share of
        the room's light over its own exposure window, the rows read out over 90 % of the frame time
        (the kiosk screen's light and a display's own stay steady)."""
        f = self._scene.flicker
        assert isinstance(f, PwmLight)
        c = self.cfg
        h = irr.shape[0]
        rows = f.rows(t + c.color_offset_ms / 1000.0 + c.t0_s, self._ae.exposure_s,
                      PWM_READOUT_FRACTION / self._color_fps, h)
        room = color_irradiance(cmaps, c.lux, c.cct, None, 0.0)
        irr += (rows - np.float32(1.0))[:, None, None] * room
        return irr

    def _fanned(self, irr: np.ndarray, cmaps: ViewMaps, t: float) -> np.ndarray:
        """The colour light under a ceiling fan's blades (fan.py): the lamp's share they hide over this
        frame's exposure (a global shutter), pixel by pixel; the screen's and a display's light stay."""
        fan = self._scene.fan
        assert fan is not None
        c = self.cfg
        f = fan.factor(fan.sweep(self._color_view, cmaps.z), t + c.color_offset_ms / 1000.0 + c.t0_s,
                       self._ae.exposure_s)
        room = color_irradiance(cmaps, c.lux, c.cct, None, 0.0)
        f -= np.float32(1.0)
        room *= f[..., None]
        irr += room
        np.maximum(irr, 0.0, out=irr)
        return irr

    def _prerender(self) -> None:
        """``prerender=N``: render N depth ticks for both projector states (and the colour frames
        of the same span) before streaming, then play them back and forth (0..N-1..0, so motion
        never jumps): a camera whose pixels cost the host nothing, as a real one's do. IR and colour
        keep their light before exposure (colour in half floats) and are exposed when played, so the
        auto-exposure, a lock and the sensor's noise act on what is played as on a camera's frames. Kept
        per process for the same scene."""
        c = self.cfg
        key = (dataclasses.replace(c, realtime=True, prerender=0, inject="none"), c.prerender)
        with _PRERENDER_LOCK:
            hit = _PRERENDERED.get(key)
            if hit is None:
                n_color = max(1, round(c.prerender * self._color_fps / self._depth_fps))
                depth, color = [], []
                exposure_s, gain = self._ir_ae.setting
                for k in range(c.prerender):
                    tick: dict[bool, _DepthTick] = {}
                    for on in (True, False):
                        d, dmaps = self._render_depth(k / self._depth_fps, on, self.POWER_RANGE.default)
                        _, electrons = expose_ir(d.ir_signal, exposure_s, gain, None)
                        d.depth_u16, d.depth_truth = self._depth(dmaps, d, electrons, exposure_s)
                        if not on:
                            d.depth_truth = tick[True].depth_truth      # the truth does not see the projector
                        d.ir_signal = d.ir_signal.astype(np.float16)    # light, not pixels: half the bytes
                        if d.ambient is not None:
                            d.ambient = d.ambient.astype(np.float16)
                        d.dots_signal = None                            # depth is already made
                        _freeze(d.ir_signal, d.depth_u16, d.depth_truth)
                        tick[on] = d
                    depth.append(tick)
                for k in range(n_color):
                    irr, truth, state = self._color_light(k / self._color_fps, BLACK)
                    self._expose_color(irr, truth, state, update_ae=True)    # the auto-exposure settles as before
                    clip = _ClipColor(np.minimum(irr, _HALF_MAX).astype(np.float16), truth, state)
                    _freeze(clip.light, clip.color_truth)
                    color.append(clip)
                _PRERENDERED.clear()                       # one scene at a time: bounded memory
                _PRERENDERED[key] = hit = (depth, color)
        self._pre_depth, self._pre_color = hit

    # --- Delivery --------------------------------------------------------------------------------
    def _next_event_s(self) -> float:
        return min(self._depth_tick / self._depth_fps, self._color_tick / self._color_fps)

    def _drop_unread(self) -> None:
        """``stream=N``: the frames a streaming camera captured while its reader was away and that no
        longer fit its queue of N per stream are gone: their ticks pass unread (their frame counters
        jump, as a device's do)."""
        n = self.cfg.stream
        if n <= 0 or not self.cfg.realtime:
            return
        now_s = time.monotonic() - self._t0_wall
        while self._depth_tick + n < now_s * self._depth_fps:
            self._depth_tick += 1
        while self._color_tick + n < now_s * self._color_fps:
            self._color_tick += 1

    def _produce_streamed(self) -> None:
        """``stream=N``: :meth:`_produce_next` on a clock that stops while this process makes the frames.
        A device's frames cost its reader nothing: the host's load does not slow its capture. The
        simulator makes each frame in its reader's thread, at the machine's speed (a lit colour frame
        costs about 0.1 s at load 8, over a second at load 30, three to thirty frame intervals), so on
        the wall clock a loaded machine's reader would fall further behind with every frame read and the
        queue of N would overflow (late29: the flake of ``tests/session/test_window_late.py``, counters
        jumping after the stall). The time spent here moves the camera's start, its clock and its frames'
        arrival times alike, later; the reader's own waits (a stall, the judge, the gate) still count."""
        start = self._producing_since_ns = time.monotonic_ns()
        try:
            self._produce_next()
        finally:
            self._producing_since_ns = None
            spent = time.monotonic_ns() - start
            self._t0_host_ns += spent
            self._t0_wall += spent / 1e9

    def _produce_next(self) -> None:
        """Produce the next event(s) in hardware time: a depth tick, a colour frame, or both when
        they fall on the same instant."""
        td, tc = self._depth_tick / self._depth_fps, self._color_tick / self._color_fps
        if td <= tc + 1e-9:
            self._produce_depth()
        if tc <= td + 1e-9:
            self._produce_color()

    def _host_time_ns(self, ts: float, latency_ms: float) -> int:
        """When the host receives a frame captured at hardware time ``ts`` (ms). Paced
        (``realtime=1``): now plus the link's latency, as a camera's frames arrive. Unpaced: when a
        camera streaming since ``start()`` would have delivered it (start + the frame's hardware
        time + latency), not when the renderer finished it, so that what reads arrival times (the
        frameset matcher's latency bound) sees the camera's timing whatever the machine's load."""
        if self.cfg.realtime and self.cfg.stream <= 0:
            return time.monotonic_ns() + int(latency_ms * 1e6)
        # ``stream``: the time spent making this tick's frames so far is not the camera's (``_produce_streamed``).
        making = 0 if self._producing_since_ns is None else time.monotonic_ns() - self._producing_since_ns
        return self._t0_host_ns + making + int(round((ts - self._t0_hw_ms + latency_ms) * 1e6))

    def _deliver(self, kind: StreamKind, px: np.ndarray, fmt: PixelFormat, ts: float, latency_ms: float,
                 number: int, md: FrameMetadata, intr, index: int = 0, scale: float = 0.0) -> None:
        if self.cfg.drop > 0 and self._rng.random() < self.cfg.drop:
            return
        self._queue.append(Frame(
            stream=kind, pixels=px, format=fmt, timestamp_ms=float(ts), clock_domain=ClockDomain.HARDWARE,
            host_time_ns=self._host_time_ns(ts, latency_ms), frame_number=number, intrinsics=intr,
            index=index, device_serial=self.serial, depth_scale=scale, metadata=md))

    def _produce_depth(self) -> None:
        c = self.cfg
        k = self._depth_tick
        self._depth_tick += 1
        (on, power), (claimed_on, claimed_power) = self._projector_at(k)
        exposure_s, gain = self._ir_ae.setting
        pre = None
        if self._pre_depth is not None and (not on or power == self.POWER_RANGE.default):
            pre = self._pre_depth[_ping_pong(k, len(self._pre_depth))][on]
        if pre is not None:
            tick = pre
            ir_y8, _ = expose_ir(self._flickered(pre, k, exposure_s), exposure_s, gain, self._noise)
            depth_u16, truth = pre.depth_u16, pre.depth_truth
        else:
            t = (_ping_pong(k, len(self._pre_depth)) if self._pre_depth else k) / self._depth_fps
            tick, dmaps = self._render_depth(t, on, power)
            ir_y8, electrons = expose_ir(self._flickered(tick, k, exposure_s), exposure_s, gain, self._noise)
            depth_u16, truth = self._depth(dmaps, tick, electrons, exposure_s)
        self._ir_ae.update(ir_y8)
        self._projector.forget_before(k - 2)
        if self._injector is not None:
            self._injector.forget_before(k - 2)
        st = tick.state
        illum = self.scene.illumination if self.scene is not None else BLACK
        self.scene = dataclasses.replace(st, projector_on=on, illumination=illum)
        self._remember(StreamKind.DEPTH, k, truth)

        jitter = self._rng.normal(0.0, c.jitter_ms) if c.jitter_ms > 0 else 0.0
        ts = self._t0_hw_ms + k * 1000.0 / self._depth_fps + jitter
        claim = self._ir_lock or ExposureSetting(exposure_s * 1e6, gain)
        md = FrameMetadata(exposure_us=claim.exposure_us, gain=claim.gain, projector_on=claimed_on,
                           projector_power_mw=claimed_power if claimed_on else 0.0,
                           frame_counter=k, sensor_timestamp_us=int(ts * 1000))
        self._deliver(StreamKind.DEPTH, depth_u16, PixelFormat.Z16, ts, DEPTH_LATENCY_MS, k,
                      self.depth_range().stamp(md), self._depth_intr,
                      scale=self.profile.depth_scale)
        self._deliver(StreamKind.IR, ir_y8, PixelFormat.Y8, ts, DEPTH_LATENCY_MS, k, md, self._depth_intr, index=1)

    def _flickered(self, tick: _DepthTick, k: int, exposure_s: float) -> np.ndarray:
        """A tick's IR light with its ambient part scaled by the flicker over this exposure (the lamp
        keeps the hardware clock: tick ``k`` starts at k / fps, also when ticks are played back)."""
        beacon = self._scene.beacon
        if beacon is not None and tick.beacon_ir is not None:
            # An amber beacon's flashes (beacon.py): their share of this exposure, over the street's steady light.
            on = beacon.factor(k / self._depth_fps + self.cfg.t0_s, exposure_s)
            return (tick.ir_signal + np.float32(on) * tick.beacon_ir).astype(np.float32)
        pulsed = self._scene.tof or self._scene.strings
        if pulsed is not None and tick.pulsed_ir:
            # The eighteenth family's pulsed lights (holiday.py): each part's weight over this exposure.
            out = tick.ir_signal
            weights = pulsed.ir_weights(k / self._depth_fps + self.cfg.t0_s, exposure_s)
            for w, part in zip(weights, tick.pulsed_ir, strict=True):
                if w > 0.0:
                    out = out + np.float32(w) * part
            return out.astype(np.float32)
        if tick.ambient is None:
            return tick.ir_signal
        fan = self._scene.fan
        if fan is not None and tick.fan_sweep is not None:
            # A ceiling fan's blades (fan.py): the lamp's share hidden over this exposure, pixel by pixel.
            light = fan.factor(tick.fan_sweep, k / self._depth_fps + self.cfg.t0_s, exposure_s)
            return (tick.ir_signal + (light - np.float32(1.0)) * tick.ambient.astype(np.float32)).astype(np.float32)
        f = self._flicker(k / self._depth_fps, exposure_s)
        return (tick.ir_signal + np.float32(f - 1.0) * tick.ambient.astype(np.float32)).astype(np.float32)

    def _produce_color(self) -> None:
        c = self.cfg
        k = self._color_tick
        if not self._color_on:
            self._skip_color()
            return
        self._color_tick += 1
        rgb = self._screen_at(k)
        lit = c.screen_nits > 0 and max(rgb) > 0
        if self._pre_color is not None and not lit:
            # The clip's light exposed now, as the imager is set now (late29's lead, bench30: played as rendered,
            # its pixels kept the clip's exposure under a lock taken at another, a step no camera makes).
            clip = self._pre_color[_ping_pong(k, len(self._pre_color))]
            f = self._expose_color(clip.light.astype(np.float32), clip.color_truth, clip.state,
                                   update_ae=self._color_lock is None)
        else:
            t = (_ping_pong(k, len(self._pre_color)) if self._pre_color else k) / self._color_fps
            f = self._render_color(t, rgb, update_ae=self._color_lock is None)
        self._screen.forget_before(k - 1)
        projector_on = self.scene.projector_on if self.scene is not None else False
        self.scene = dataclasses.replace(f.state, projector_on=projector_on, illumination=rgb)
        self._remember(StreamKind.COLOR, k, f.color_truth)

        ts = (self._t0_hw_ms + k * 1000.0 / self._color_fps + c.color_offset_ms
              + (self._rng.normal(0.0, c.jitter_ms) if c.jitter_ms > 0 else 0.0))
        wb_k = float(c.cct * (1 + self._rng.normal(0, 0.02)))
        claim = self._color_lock or ExposureSetting(f.exposure_us, f.gain)
        md = FrameMetadata(exposure_us=claim.exposure_us, gain=claim.gain, frame_counter=k, white_balance_k=wb_k,
                           sensor_timestamp_us=int(ts * 1000))
        self._deliver(StreamKind.COLOR, f.color, PixelFormat.BGR8, ts, COLOR_LATENCY_MS, k, md,
                      self._color_view.intrinsics)

    def _skip_color(self) -> None:
        """A colour frame not made (colour not selected): its tick passes, the screen's timeline moves on,
        and its draws are taken as :meth:`_produce_color` takes them (the exposure's noise window, the
        timestamp's jitter, the white balance's wobble, a drop), so the IR and depth frames after it
        are bit for bit a camera's with colour. The colour auto-exposure stays where it was."""
        c = self.cfg
        k = self._color_tick
        self._color_tick += 1
        rgb = self._screen_at(k)
        self._screen.forget_before(k - 1)
        if self.scene is not None:
            self.scene = dataclasses.replace(self.scene, illumination=rgb)
        ci = self._color_view.intrinsics
        self._noise.skip((ci.height, ci.width, 3))
        if c.jitter_ms > 0:
            self._rng.normal(0.0, c.jitter_ms)
        self._rng.normal(0, 0.02)
        if c.drop > 0:
            self._rng.random()

    def _remember(self, kind: StreamKind, k: int, truth: np.ndarray) -> None:
        self._gt[(kind, k)] = truth
        while len(self._gt) > 2 * GT_KEEP:
            self._gt.popitem(last=False)
