"""The sim camera's scene settings, parsed and validated from the ``sim://`` URI query."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidUri

# Presentation-attack instrument species (ISO/IEC 30107-3): each a distinct way of making an attack.
ATTACKS = ("print", "print_curved", "print_cutout", "screen_still", "screen_video", "mask", "head_model",
           "mask_eyeholes", "silicone_mask", "paper_mask", "head_model_hand", "print_eyes", "glasses_print")
SUBJECTS = ("live", "none", "multi") + ATTACKS
# Older spellings of query keys, accepted at the door and never used inside.
ALIASES = {"emitter": "projector", "emitter_latency": "projector_latency", "emitter_jitter": "projector_jitter"}
# Scene and identity keys (SIM-SCENE): see docs/sim.md.
CAMERAS = ("d435", "d455", "d415", "d405", "astra", "gemini335", "gemini2", "gemini336l", "astra_mini_s",
           "gemini2l", "gemini335l", "gemini336", "d435f", "d455f", "d457", "d435i", "d456", "gemini335le",
           "gemini330", "d436", "gemini335lg", "gemini215", "gemini305", "gemini210", "d555",
           "d435if")
BACKGROUNDS = ("plain", "clutter", "moving")
LIGHTS = ("daylight", "fluorescent", "led", "incandescent", "mixed", "halogen", "led_cri95", "metal_halide",
          "north_sky_glass", "led_warm", "cfl", "open_shade", "screen_led", "lowe_glass", "street_led",
          "direct_sun", "shop_halogen", "cctv_ir", "flicker_led", "backlight", "passing_shade", "signage",
          "dappled_sun", "ring_light", "headlights", "pwm_led", "blinds", "ceiling_fan", "sodium",
          "failing_tube", "beacon", "occupancy_fade", "lightbar", "string_lights", "tof_counter",
          "phone_screen", "auto_door", "quartz_heater", "windscreen_glint", "floor_bounce", "phone_torch", "gobo",
          "lightning", "caustics", "mirrorball")
GLASSES = ("none", "clear", "tinted")
FAMILIES = ("any", "train", "heldout", "field", "fresh", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
            "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
            "seventeenth", "eighteenth", "nineteenth", "twentieth", "twentyfirst", "twentysecond",
            "twentythird")
SHADE_LIGHTS = ("direct_sun", "dappled_sun", "blinds")   # the lights whose direct sun ``shade=1`` takes off the face
# The keys that make one camera unit another (its projector's pattern and mounting): every unit of a
# profile renders the same scene, each with its own dots.
UNIT_KEYS = ("unit", "mount_dx", "mount_dy")
MAX_MOUNT_PX = 16     # a unit's projector mounted at most this far off the design's place, imager pixels
SCATTERS = ("fixed", "physical")    # the projector dots' subsurface scattering model (sensor.SCATTER_MODELS)


@dataclass(frozen=True)
class SimConfig:
    subject: str = "live"
    distance_mm: float = 500.0
    yaw: float = 0.0            # degrees, positive turns the face to the camera's right
    pitch: float = 0.0          # degrees, positive tilts the chin down
    roll: float = 0.0           # degrees, in-plane
    lux: float = 300.0          # illuminance on the face
    cct: float = 5000.0         # colour temperature of the ambient light, kelvin
    fps: float = 30.0
    seed: int = 0
    identity: int = 0           # face texture / geometry variant
    drop: float = 0.0           # per-frame drop probability, each stream independently
    jitter_ms: float = 0.3      # timestamp jitter (standard deviation)
    color_offset_ms: float = 4.1   # colour's trigger after the depth tick it coincides with (its phase)
    realtime: bool = True       # pace delivery in wall time like a real device
    # With ``realtime``, N > 0: the camera's clock does not wait for a late reader, as a device's does not:
    # up to N unread frames per stream wait in its queue (an SDK's frame queue: librealsense's pipeline
    # keeps 1 frameset), older ones are dropped (their frame counters jump), and a command lands on the
    # tick due at the wall clock when it is sent, so the queued frames were captured before it.
    # 0: the camera waits for its reader (each frame is produced when read, a command lands on it).
    stream: int = 0
    projector: bool = True      # IR projector initially on
    inject: str = "none"        # an injected stream (see injection.py): replay, splice or render
    prerender: int = 0          # render this many ticks (both projector states) at start, then play them
    # --- Scene, identity and camera profile (SIM-SCENE). ``None``: drawn from ``identity``/``family``.
    camera: str | None = None   # device profile (drivers/sim/profiles.py); None: d435, or the family's pick
    family: str = "any"         # train/.../twentysecond/twentythird: disjoint people, instruments,
    #                             lights, cameras
    skin: int | None = None     # Fitzpatrick type 1..6
    nose_mm: float | None = None     # nose relief over the cheek plane, 14..32
    ipd_mm: float | None = None      # interpupillary distance, 54..72
    face_width_mm: float | None = None   # bizygomatic width, 120..160
    brow_mm: float | None = None     # brow ridge relief, 0..10
    chin_mm: float | None = None     # chin projection, 0..14
    glasses: str | None = None  # none, clear or tinted
    beard: bool | None = None
    fringe: bool | None = None
    cap: bool | None = None          # 0: the person's cap taken off (the sixteenth family's caps); 1/None: as drawn
    torso: bool = True          # shoulders, torso and hair volume under the head (0: the old floating head)
    background: str = "plain"   # plain wall, clutter (shelves, posters) or moving (people passing)
    bystander: bool = False     # a second person 0.5-1 m behind the subject
    bystander_x_mm: float | None = None   # its face's offset to the subject's side (+: image right); None: drawn
    bystander_z_mm: float | None = None   # how far behind the subject's face; None: drawn
    light: str | None = None    # light source spectrum: sets the ambient NIR share (None: from cct)
    # Timing, screen light and stream modes (docs/sim.md). None: the camera profile's value.
    projector_latency: int | None = None     # frames before a projector command shows (0-3)
    projector_jitter: float | None = None    # chance that an edge lands one frame later
    projector_md_lag: int = 0                # frames the per-frame projector metadata trails (+) or leads (-)
    screen_nits: float = 300.0               # kiosk screen luminance at full white (0: no screen light)
    # The panel's luminance at full white with its backlight raised (``set_illumination(rgb, luminance)``:
    # a multiple of screen_nits, capped here); None: screen_nits, a panel with no headroom.
    screen_max_nits: float | None = None
    screen_latency: int = 1                  # colour frames before the panel shows a new colour
    depth_mode: str = ""                     # depth/IR "WxH@FPS"; empty: 640x480 at fps
    color_fps: float | None = None           # colour frame rate; None: fps
    color_mode: str = ""                     # colour "WxH@FPS"; empty: chosen as a RealSense driver would
    scatter: str = "fixed"      # dot scattering: fixed pixels per material, or "physical" (mm x fx / z)
    scatter_core: float = 0.3   # physical scattering: share of each dot's light left unscattered (0..1)
    # The scene's time-varying lights (passing shade, flicker, the lobby's) start at this scene time (s):
    # a session opened later in the same scene (pad-eval's retry after LIGHT_CHANGED). 0: as before.
    t0_s: float = 0.0
    # Visible light in the IR image of a camera whose stereo imagers have no IR-pass filter (leak.py).
    # Off by default (every earlier frame unchanged); refused on a camera with a filter. A family's
    # ``FamilyPool.ir_leak`` switches it on for that family's URIs.
    ir_leak: bool = False
    # The corneas' mirror images of the projector and the overhead lamp (cornea.py). Off by default
    # (every earlier frame unchanged). A family's ``FamilyPool.cornea`` switches it on for that family's URIs.
    cornea: bool = False
    # The person stands in shade, out of the direct sun: under ``direct_sun`` the whole face on the
    # shadow edge's shaded side (sun.py), under ``dappled_sun`` no sunfleck on it (lobby.py); the
    # scene's ``lux`` kept (pad-eval's person who follows TOO_BRIGHT_TO_VERIFY). Off: as before.
    shade: bool = False
    # The camera unit (docs/sim.md, "Camera units"): its projector's dot pattern is drawn with seed
    # ``PATTERN_SEED + unit`` (unit 0, every earlier URI's: seed 7), and the same pattern design mounted
    # ``mount_dx`` imager columns and ``mount_dy`` rows off (a replicated diffractive element placed a
    # little differently). Another unit of the same model is what pad-eval's ``other_unit`` and
    # ``other_mount`` injections stream into a terminal enrolled on unit 0.
    unit: int = 0
    mount_dx: int = 0
    mount_dy: int = 0

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> SimConfig:
        query = {ALIASES.get(k, k): v for k, v in query.items()}
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(query) - fields)
        if unknown:
            raise InvalidUri(f"unknown sim:// parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
        values: dict[str, Any] = {}
        for key, raw in query.items():
            values[key] = _convert(key, raw)
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        checks = [
            (self.subject in SUBJECTS, f"subject must be one of {', '.join(SUBJECTS)}"),
            (150 <= self.distance_mm <= 3000, "distance_mm must be within 150..3000"),
            (all(-60 <= a <= 60 for a in (self.yaw, self.pitch, self.roll)), "yaw/pitch/roll must be within ±60°"),
            (1 <= self.lux <= 100000, "lux must be within 1..100000 (direct sunlight)"),
            (1500 <= self.cct <= 10000, "cct must be within 1500..10000 K"),
            (1 <= self.fps <= 90, "fps must be within 1..90"),
            (0 <= self.drop < 1, "drop must be within [0, 1)"),
            (0 <= self.jitter_ms <= 10, "jitter_ms must be within 0..10"),
            (0 <= self.color_offset_ms < 100, "color_offset_ms must be within [0, 100)"),
            (0 <= self.identity < 1000, "identity must be within 0..999"),
            (self.inject in ("none", "replay", "splice", "render"), "inject must be none, replay, splice or render"),
            (0 <= self.prerender <= 300, "prerender must be within 0..300 ticks"),
            (self.camera is None or self.camera in CAMERAS, f"camera must be one of {', '.join(CAMERAS)}"),
            (self.family in FAMILIES, f"family must be one of {', '.join(FAMILIES)}"),
            (self.skin is None or 1 <= self.skin <= 6, "skin must be a Fitzpatrick type 1..6"),
            (self.nose_mm is None or 14 <= self.nose_mm <= 32, "nose_mm must be within 14..32"),
            (self.ipd_mm is None or 54 <= self.ipd_mm <= 72, "ipd_mm must be within 54..72"),
            (self.face_width_mm is None or 120 <= self.face_width_mm <= 160, "face_width_mm must be within 120..160"),
            (self.brow_mm is None or 0 <= self.brow_mm <= 10, "brow_mm must be within 0..10"),
            (self.chin_mm is None or 0 <= self.chin_mm <= 14, "chin_mm must be within 0..14"),
            (self.glasses is None or self.glasses in GLASSES, f"glasses must be one of {', '.join(GLASSES)}"),
            (self.background in BACKGROUNDS, f"background must be one of {', '.join(BACKGROUNDS)}"),
            (self.bystander_x_mm is None or -800 <= self.bystander_x_mm <= 800,
             "bystander_x_mm must be within -800..800"),
            (self.bystander_z_mm is None or 100 <= self.bystander_z_mm <= 1500,
             "bystander_z_mm must be within 100..1500"),
            (self.bystander or (self.bystander_x_mm is None and self.bystander_z_mm is None),
             "bystander_x_mm and bystander_z_mm place the bystander: they need bystander=1"),
            (self.light is None or self.light in LIGHTS, f"light must be one of {', '.join(LIGHTS)}"),
            (self.projector_latency is None or 0 <= self.projector_latency <= 3,
             "projector_latency must be within 0..3 frames"),
            (self.projector_jitter is None or 0 <= self.projector_jitter <= 1, "projector_jitter must be within 0..1"),
            (-1 <= self.projector_md_lag <= 1, "projector_md_lag must be -1, 0 or 1 frame"),
            (0 <= self.screen_nits <= 2000, "screen_nits must be within 0..2000"),
            (0 <= self.stream <= 64, "stream must be within 0..64 frames"),
            (self.stream == 0 or self.realtime, "stream (a camera that does not wait for its reader) needs realtime=1"),
            (self.screen_max_nits is None or self.screen_nits <= self.screen_max_nits <= 2000,
             "screen_max_nits must be within screen_nits..2000"),
            (0 <= self.screen_latency <= 3, "screen_latency must be within 0..3 frames"),
            (self.color_fps is None or 1 <= self.color_fps <= 90, "color_fps must be within 1..90"),
            (self.scatter in SCATTERS, f"scatter must be one of {', '.join(SCATTERS)}"),
            (0 <= self.scatter_core <= 1, "scatter_core must be within 0..1"),
            (0 <= self.t0_s <= 3600, "t0_s must be within 0..3600 s"),
            (0 <= self.unit <= 999, "unit must be within 0..999"),
            (all(-MAX_MOUNT_PX <= v <= MAX_MOUNT_PX for v in (self.mount_dx, self.mount_dy)),
             f"mount_dx/mount_dy must be within ±{MAX_MOUNT_PX} px"),
        ]
        for ok, msg in checks:
            if not ok:
                raise InvalidUri(f"sim://: {msg}")
        from .families import check
        leak = check(self.family, self.camera, self.light)
        if leak:
            raise InvalidUri(f"sim://: {leak}")
        if self.shade:
            from .families import light_for
            if light_for(self.family, self.identity, self.light) not in SHADE_LIGHTS:
                raise InvalidUri("sim://: shade=1 takes the face out of the direct sun: it needs light "
                                 f"{' or '.join(SHADE_LIGHTS)} (given or the family's)")
        if self.ir_leak_on:
            from .families import camera_for
            from .profiles import get_profile
            profile = get_profile(camera_for(self.family, self.identity, self.camera))
            if profile.visible_response is None:
                raise InvalidUri(f"sim://: ir_leak: the {profile.name}'s IR imagers see no visible light to render "
                                 "(an IR-pass, band-pass or IR-cut filter, or not known to lack one)")

    @property
    def ir_leak_on(self) -> bool:
        """Whether the IR image carries visible light: the URI's ``ir_leak`` or its family's flag."""
        if self.ir_leak:
            return True
        from .families import POOLS
        return self.family in POOLS and POOLS[self.family].ir_leak

    @property
    def cornea_on(self) -> bool:
        """Whether the eyes mirror the light sources (cornea.py): the URI's ``cornea`` or its family's flag."""
        if self.cornea:
            return True
        from .families import POOLS
        return self.family in POOLS and POOLS[self.family].cornea


_BOOLS = {"1": True, "true": True, "on": True, "yes": True, "0": False, "false": False, "off": False, "no": False}


def _convert(key: str, raw: str) -> Any:
    if key in ("subject", "inject", "camera", "family", "glasses", "background", "light", "depth_mode", "color_mode",
               "scatter"):
        return raw
    if key in ("realtime", "projector", "beard", "fringe", "cap", "torso", "bystander", "ir_leak", "cornea", "shade"):
        v = _BOOLS.get(raw.lower())
        if v is None:
            raise InvalidUri(f"sim://: {key} must be on/off (1/0), got {raw!r}")
        return v
    if key in ("seed", "identity", "prerender", "stream", "skin", "projector_latency", "projector_md_lag",
               "screen_latency", "unit", "mount_dx", "mount_dy"):
        try:
            return int(raw)
        except ValueError:
            raise InvalidUri(f"sim://: {key} must be an integer, got {raw!r}") from None
    try:
        num = float(raw)
    except ValueError:
        raise InvalidUri(f"sim://: {key} must be a number, got {raw!r}") from None
    if num != num or num in (float("inf"), float("-inf")):
        raise InvalidUri(f"sim://: {key} must be finite")
    return num
