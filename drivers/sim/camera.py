"""The simulated camera: scene motion, active controls, timing, and delivery through the Camera API."""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from dataclasses import dataclass

import numpy as np

from ..base import Camera, Capability, DeviceInfo, ProjectorPowerRange
from ..errors import CapabilityUnsupported, FrameTimeout, StreamClosed
from ..frame import (ClockDomain, Extrinsics, Frame, FrameMetadata, PixelFormat, StreamKind,
                     StreamProfile)
from .config import SimConfig
from .optics import views_for
from .families import camera_for
from .profiles import get_profile
from .render import Lights, Placed, render_view
from .scene import LAMP_DIR, LAMP_RADIUS_RAD, LAMP_SHARE, Scene, ambient_nir_share
from .sensor import (PROJECTOR_POWER_MW, AutoExposure, DotPattern, NoiseBank, ir_exposure_s, color_irradiance, depth_image,
                     expose_color, illuminant_bgr, ir_image, metered_level)

SERIAL = "SIM0000000001"
FIRMWARE = "sim-1.0.0"
COLOR_CLOCK_OFFSET_MS = 4.1         # color is a separate sensor: triggered 4.1 ms after depth
COLOR_LATENCY_MS = 9.0
DEPTH_LATENCY_MS = 6.0
GT_KEEP = 12


@dataclass(frozen=True)
class SceneState:
    """What is really in front of the camera at one tick (for tests and benchmarks)."""

    subject: str
    distance_m: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    eyes_closed: float               # 0 open .. 1 closed
    projector_on: bool                 # physically on (differs from metadata under inject=replay)
    illumination: float


@dataclass
class _Rendered:
    """One tick's pixels for one projector state, and what produced them."""

    depth_u16: np.ndarray
    ir_y8: np.ndarray
    color: np.ndarray
    depth_truth: np.ndarray
    color_truth: np.ndarray
    state: "SceneState"
    exposure_us: float
    gain: float

    def freeze(self) -> None:
        for a in (self.depth_u16, self.ir_y8, self.color, self.depth_truth, self.color_truth):
            a.flags.writeable = False


_PRERENDERED: dict = {}
_PRERENDER_LOCK = threading.Lock()


class SimCamera(Camera):
    capabilities = frozenset({Capability.PROJECTOR_CONTROL, Capability.ILLUMINATION_CONTROL,
                              Capability.EXPOSURE_CONTROL, Capability.PROJECTOR_POWER})
    # A D435's projector: 0-360 mW in 30 mW steps, 150 mW by default.
    POWER_RANGE = ProjectorPowerRange(0.0, 360.0, 30.0, PROJECTOR_POWER_MW)

    def __init__(self, cfg: SimConfig, uri: str = "sim://"):
        self.cfg = cfg
        self._uri = uri
        # The camera profile decides geometry, noise, projector and what the device can be asked to do.
        self.profile = get_profile(camera_for(cfg.family, cfg.identity, cfg.camera))
        self._depth_view, self._color_view = views_for(self.profile)
        caps = {Capability.ILLUMINATION_CONTROL, Capability.EXPOSURE_CONTROL}
        if self.profile.has_projector:
            caps.add(Capability.PROJECTOR_CONTROL)
            if self.profile.projector_power is not None:
                caps.add(Capability.PROJECTOR_POWER)
                self.POWER_RANGE = self.profile.projector_power
        self.capabilities = frozenset(caps)
        self._scene = Scene(cfg)
        self._nir_share = ambient_nir_share(cfg)
        self._lights = Lights(
            projector_pos=np.array([self.profile.projector_offset_m, 0.0, 0.0]) if self.profile.has_projector else None,
            lamp_dir=LAMP_DIR, lamp_radius_rad=LAMP_RADIUS_RAD, lamp_share=LAMP_SHARE)
        self._rng = np.random.default_rng(cfg.seed)
        di = self.profile.depth_intrinsics
        self._dots = DotPattern.make(di.width, di.height)
        self._lock = threading.Lock()
        self._queue: collections.deque[Frame] = collections.deque()
        self._started = False
        self._closed = False
        self._tick = 0
        self._t0_wall = 0.0
        self._t0_hw_ms = float(self._rng.uniform(1e5, 9e5))
        self._counters = {k: 0 for k in StreamKind}
        self._projector_cmd = cfg.projector
        self._power_cmd = PROJECTOR_POWER_MW
        self._illum_cmd = 0.0
        self._replay_rng = np.random.default_rng(cfg.seed + 7777)
        self._replay_projector = True
        self._replay_illum = 0.0
        self._ae = AutoExposure(spec=self.profile.color_ae)
        self._noise = NoiseBank.for_seed(cfg.seed + 3)
        # Imagers behind an IR-cut filter (D405) meter visible light: skin's luminance (~0.35) stands in
        # for its 850 nm reflectance (0.58) as a share of ~0.6.
        self._ir_exposure = ir_exposure_s(cfg.lux, cfg.cct,
                                          share=0.6 if self.profile.ir_band == "visible" else self._nir_share)
        self._awb = np.ones(3, np.float32)
        self._gt: collections.OrderedDict[tuple[StreamKind, int], np.ndarray] = collections.OrderedDict()
        self.scene: SceneState | None = None
        self._prerendered: list | None = None

    # --- Camera API --------------------------------------------------------------------------
    @property
    def info(self) -> DeviceInfo:
        return DeviceInfo(uri=self._uri, backend="sim", name=f"Simulated RGB-IR-depth camera ({self.profile.model})",
                          serial=SERIAL, firmware=FIRMWARE, streams=("color", "depth", "ir"),
                          note=f"camera profile {self.profile.name}")

    def profiles(self) -> list[StreamProfile]:
        ci, di = self._color_view.intrinsics, self._depth_view.intrinsics
        return [
            StreamProfile(StreamKind.COLOR, ci.width, ci.height, self.cfg.fps, PixelFormat.BGR8, 0, ci),
            StreamProfile(StreamKind.DEPTH, di.width, di.height, self.cfg.fps, PixelFormat.Z16, 0, di),
            StreamProfile(StreamKind.IR, di.width, di.height, self.cfg.fps, PixelFormat.Y8, 1, di),
        ]

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
                self._t0_wall = time.monotonic()

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
                due = self._t0_wall + self._tick / self.cfg.fps
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
                    self._produce_tick()

    def set_projector(self, on: bool) -> None:
        self._require_projector(power=False)
        with self._lock:
            self._projector_cmd = bool(on)

    def projector_power_range(self) -> ProjectorPowerRange:
        self._require_projector(power=True)
        return self.POWER_RANGE

    def set_projector_power(self, mw: float) -> float:
        self._require_projector(power=True)
        v = self.POWER_RANGE.snap(mw)
        with self._lock:
            self._power_cmd = v
        return v

    def _require_projector(self, *, power: bool) -> None:
        """Refuse what the profiled device cannot do, as its SDK does (no laser options on a D405,
        on/off only on an Astra)."""
        cap = Capability.PROJECTOR_POWER if power else Capability.PROJECTOR_CONTROL
        if cap not in self.capabilities:
            raise CapabilityUnsupported(f"{self.profile.model} has no {'settable projector power' if power else 'projector'}")

    def set_illumination(self, level: float) -> None:
        if not 0.0 <= level <= 1.0:
            raise ValueError("illumination level must be within 0..1")
        with self._lock:
            self._illum_cmd = float(level)

    def ground_truth(self, stream: StreamKind, frame_number: int) -> np.ndarray:
        """True depth in metres in the stream's geometry for a recent frame (NaN: no surface)."""
        key = (StreamKind.DEPTH if stream is StreamKind.IR else stream, frame_number)
        with self._lock:
            if key not in self._gt:
                raise KeyError(f"no ground truth kept for {stream.value} frame {frame_number}")
            return self._gt[key]

    # --- Scene -----------------------------------------------------------------------------------
    def _objects(self, t: float) -> tuple[list[Placed], tuple[list, list], SceneState]:
        objs, static, moving, p = self._scene.objects(t)
        return objs, (static, moving), SceneState(p.subject, p.distance_m, p.yaw_deg, p.pitch_deg, p.roll_deg,
                                                  p.eyes_closed, False, 0.0)

    def _render(self, view, objs: list[Placed], planes: tuple[list, list], projector: bool = True):
        static, moving = planes
        lights = self._lights if projector else Lights(None, self._lights.lamp_dir, self._lights.lamp_radius_rad,
                                                       self._lights.lamp_share)
        return render_view(view, objs, planes=moving, static_planes=static,
                           static_key=(self.cfg.background, self._scene.scene_seed), lights=lights)

    # --- Sensors and delivery ------------------------------------------------------------------------
    def _init_auto_exposure(self) -> None:
        objs, planes, _ = self._objects(0.0)
        maps = self._render(self._color_view, objs, planes, projector=False)
        irr = color_irradiance(maps, self.cfg.lux, self.cfg.cct, 0.0)
        for _ in range(6):
            self._ae.update(metered_level(irr, self._ae), rate=1.0)
        self._update_awb(irr, rate=1.0)

    def _update_awb(self, irr: np.ndarray, rate: float) -> None:
        # Gray-world white balance that corrects 85 % of the cast, as consumer modules do.
        light = illuminant_bgr(self.cfg.cct)
        target = (1.0 / light) ** 0.85
        target = target / target[1]
        self._awb = (self._awb * (1 - rate) + target * rate).astype(np.float32)

    def _physical_controls(self) -> tuple[bool, float, float]:
        """(projector on, illumination level, projector power mW) as the sensor experiences them."""
        if self.cfg.inject == "replay":
            # A replayed stream follows whatever pattern was recorded, not today's commands.
            if self._tick % 3 == 0:
                self._replay_projector = bool(self._replay_rng.random() < 0.6)
                self._replay_illum = float(self._replay_rng.choice([0.0, 0.0, 1.0]))
            return self._replay_projector, self._replay_illum, PROJECTOR_POWER_MW
        return self._projector_cmd, self._illum_cmd, self._power_cmd

    def _render_tick(self, k: int, states: tuple[bool, ...], illum: float,
                     power_mw: float = PROJECTOR_POWER_MW) -> dict[bool, "_Rendered"]:
        """Render tick ``k``: the scene once, the IR imager and depth for each projector state asked
        for (the noise is drawn in the same order as a single render, so seeds reproduce)."""
        c = self.cfg
        objs, planes, state = self._objects(k / c.fps)
        dmaps = self._render(self._depth_view, objs, planes)
        cmaps = self._render(self._color_view, objs, planes, projector=False)
        sensed = {}
        for e in states:
            pattern: list | None = [] if self.profile.structured_light else None
            ir_y8, ir_e = ir_image(dmaps, c.lux, c.cct, e, self._dots, self._noise, power_mw=power_mw,
                                   exposure_s=self._ir_exposure, profile=self.profile, share=self._nir_share,
                                   pattern_out=pattern)
            sensed[e] = (ir_y8, *depth_image(dmaps, ir_e, self._noise, profile=self.profile,
                                             pattern_e=pattern[0] if pattern else None))
        irr = color_irradiance(cmaps, c.lux, c.cct, illum)
        color = expose_color(irr, self._ae, self._noise, self._awb)
        exposure_us, gain = self._ae.exposure_s * 1e6, self._ae.gain
        self._ae.update(metered_level(irr, self._ae), rate=self.profile.color_ae.speed)   # AE reacts over a few frames
        self._update_awb(irr, rate=0.2)
        color_truth = np.where(np.isfinite(cmaps.z) & (cmaps.z <= self.profile.depth_range_m[1]), cmaps.z,
                               np.nan).astype(np.float32)
        return {e: _Rendered(depth_u16, ir_y8, color, depth_truth, color_truth, state, exposure_us, gain)
                for e, (ir_y8, depth_u16, depth_truth) in sensed.items()}

    def _prerender(self) -> None:
        """``prerender=N``: render N ticks for both projector states before streaming, then play them
        back and forth (0..N-1..0, so motion never jumps) at the frame rate: a camera whose pixels
        cost the host nothing, as a real one's do. Kept per process for the same scene."""
        key = dataclasses.replace(self.cfg, realtime=True, prerender=0)
        with _PRERENDER_LOCK:
            hit = _PRERENDERED.get(key)
            if hit is None:
                ticks = []
                for k in range(self.cfg.prerender):
                    r = self._render_tick(k, (True, False), 0.0)
                    for v in r.values():
                        v.freeze()
                    ticks.append(r)
                _PRERENDERED.clear()                       # one scene at a time: bounded memory
                _PRERENDERED[key] = hit = ticks
        self._prerendered = hit

    def _produce_tick(self) -> None:
        c = self.cfg
        k = self._tick
        self._tick += 1
        period_ms = 1000.0 / c.fps
        projector_on, illum, power = self._physical_controls()
        if self._prerendered is not None and illum == 0.0 and power == PROJECTOR_POWER_MW:
            n = len(self._prerendered)
            j = k % max(2 * n - 2, 1)
            r = self._prerendered[j if j < n else 2 * n - 2 - j][projector_on]
        else:
            r = self._render_tick(k, (projector_on,), illum, power)[projector_on]
        state = r.state
        self.scene = SceneState(state.subject, state.distance_m, state.yaw_deg, state.pitch_deg, state.roll_deg,
                                state.eyes_closed, projector_on, illum)
        depth_u16, ir_y8, color = r.depth_u16, r.ir_y8, r.color
        exposure_us, gain = r.exposure_us, r.gain

        host_now = time.monotonic_ns()
        base_hw = self._t0_hw_ms + k * period_ms
        jitter = self._rng.normal(0.0, c.jitter_ms, 2) if c.jitter_ms > 0 else np.zeros(2)
        wb_k = float(c.cct * (1 + self._rng.normal(0, 0.02)))
        claimed_projector = self._projector_cmd          # metadata reports the command (an injector lies)
        power_mw = self._power_cmd if claimed_projector else 0.0

        self._remember(StreamKind.DEPTH, k, r.depth_truth)
        self._remember(StreamKind.COLOR, k, r.color_truth)

        def deliver(kind, px, fmt, ts, latency_ms, md, index=0, scale=0.0, intr=self._depth_view.intrinsics):
            self._counters[kind] += 1
            if c.drop > 0 and self._rng.random() < c.drop:
                return
            self._queue.append(Frame(
                stream=kind, pixels=px, format=fmt, timestamp_ms=float(ts), clock_domain=ClockDomain.HARDWARE,
                host_time_ns=host_now + int(latency_ms * 1e6), frame_number=k, intrinsics=intr, index=index,
                device_serial=SERIAL, depth_scale=scale, metadata=md))

        depth_md = FrameMetadata(exposure_us=self._ir_exposure * 1e6, gain=1.0, projector_on=claimed_projector, projector_power_mw=power_mw,
                                 frame_counter=k, sensor_timestamp_us=int((base_hw + jitter[0]) * 1000))
        deliver(StreamKind.DEPTH, depth_u16, PixelFormat.Z16, base_hw + jitter[0], DEPTH_LATENCY_MS, depth_md,
                scale=self.profile.depth_scale)
        deliver(StreamKind.IR, ir_y8, PixelFormat.Y8, base_hw + jitter[0], DEPTH_LATENCY_MS, depth_md, index=1)
        color_md = FrameMetadata(exposure_us=exposure_us, gain=gain, frame_counter=k, white_balance_k=wb_k,
                                 sensor_timestamp_us=int((base_hw + COLOR_CLOCK_OFFSET_MS + jitter[1]) * 1000),
                                 extra={"illumination": illum if c.inject == "none" else self._illum_cmd})
        deliver(StreamKind.COLOR, color, PixelFormat.BGR8, base_hw + COLOR_CLOCK_OFFSET_MS + jitter[1],
                COLOR_LATENCY_MS, color_md, intr=self._color_view.intrinsics)

    def _remember(self, kind: StreamKind, k: int, truth: np.ndarray) -> None:
        self._gt[(kind, k)] = truth
        while len(self._gt) > 2 * GT_KEEP:
            self._gt.popitem(last=False)
