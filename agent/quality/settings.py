"""Quality thresholds: every number is a named setting with its clause of T/IIFAA 3001.1-2021.

``[quality]`` in the config picks the channel and may override any threshold per channel (§6.3 e:
different thresholds for counter, self-service and electronic channels).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from agent.errors import ConfigError

CHANNELS = ("counter", "kiosk", "vtm", "mobile")


@dataclass(frozen=True)
class QualityThresholds:
    ipd_min_px: float = 60.0              # §7.4: inter-pupil distance >= 60 px
    ipd_preferred_px: float = 90.0        # §7.4: preferably > 90 px (reported, not enforced)
    ipd_max_px: float = 220.0             # too close: the face overflows the frame and distorts
    max_yaw_deg: float = 20.0             # §7.4: yaw within ±20°
    max_pitch_deg: float = 20.0           # §7.4: pitch within ±20°
    max_roll_deg: float = 20.0            # §7.4: roll within ±20°
    gray_low: float = 85.0                # §7.4: face gray levels mostly within 85–200 (of 256)
    gray_high: float = 200.0
    gray_share_min: float = 0.60          # "mostly": share of face pixels inside the band
    face_clipped_max: float = 0.10        # §7.4: face pixels at full scale (clipped highlights)
    # The face's signal-to-noise ratio (linear light, cheeks and forehead, at the 60 px-IPD scale
    # detail is judged at: ``metrics.face_snr``) every face must reach: ISO 12232's "acceptable"
    # image (SNR 10; 40 is its "excellent"). It, not the gray level, decides whether a face darker
    # than the 85-200 band holds enough of a picture: gain raises the gray level and the noise alike.
    face_snr_min: float = 10.0
    # Uncalibrated cameras: the picture's centre-half mean gray below which an under-exposed face
    # means the camera ran out of exposure (FACE_TOO_DARK), above which an over-exposed one means it
    # cannot shorten it (FACE_TOO_BRIGHT); between, the face is lit unlike the scene (POOR_EXPOSURE).
    dark_picture_gray: float = 60.0
    bright_picture_gray: float = 200.0
    lux_min: float = 15.0                 # §7.5 d: face illuminance 15–7500 lux (calibrated cameras only)
    lux_max: float = 7500.0
    cct_min: float = 2300.0               # §7.5 d: colour temperature 2300–7500 K
    cct_max: float = 7500.0
    depth_face_completeness_min: float = 0.80   # §7.5 h: > 80 % of the face region
    depth_core_completeness_min: float = 0.95   # §7.5 h: > 95 % near eyes, nose and mouth
    depth_window: int = 6                 # §7.5 h judged on the median of this many framesets with a face
    occluder_share_max: float = 0.03      # §6.1.1: face depth nearer than the nose tip (a surface in front)
    distortion_max: float = 0.10          # §7.4: geometric distortion <= 10 %
    sharpness_min: float = 20.0           # Laplacian variance on an IPD-normalised face crop (blur)
    # §7.4 eyes open: the eyelid opening (of the eye's width) against this person's own open eyes
    # (the 90th percentile over the last framesets; people's open eyes measure 0.16-0.45, less
    # looking down at a camera from above), never under an absolute floor (closed ~0.1).
    eye_open_min: float = 0.13
    eye_open_relative: float = 0.6
    mouth_open_max: float = 0.30          # §7.4: mouth closed or slightly open (inner-lip ratio)
    smile_max: float = 0.14               # §7.4: neutral expression (mouth-corner lift / IPD)
    presence_min: float = 0.5             # landmark model's face-presence probability
    second_face_area_ratio: float = 0.35  # §6.1.1: another face this large relative to the main one
    depth_min_width: int = 640            # §7.5 h: depth >= 640x400
    depth_min_height: int = 400
    depth_min_fps: float = 10.0           # §7.5 h: >= 10 fps
    color_min_width: int = 640            # §7.4: panorama >= 640x480
    color_min_height: int = 480
    good_frames_required: int = 5         # framesets that must pass before the capture is complete


@dataclass(frozen=True)
class QualitySettings:
    channel: str = "kiosk"
    thresholds: dict[str, float] = field(default_factory=dict)              # overrides for every channel
    channels: dict[str, dict[str, float]] = field(default_factory=dict)     # per-channel overrides
    # Per-device lux calibration: device serial or model name -> lux per (linear level / exposure s x gain).
    lux_calibration: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ConfigError(f"quality.channel must be one of {', '.join(CHANNELS)}, got {self.channel!r}")
        for ch in self.channels:
            if ch not in CHANNELS:
                raise ConfigError(f"quality.channels.{ch}: unknown channel; known: {', '.join(CHANNELS)}")
        for ch in CHANNELS:
            self.thresholds_for(ch)           # reject unknown keys and bad values at load time

    def thresholds_for(self, channel: str | None = None) -> QualityThresholds:
        ch = channel or self.channel
        if ch not in CHANNELS:
            raise ConfigError(f"unknown channel {ch!r}; known: {', '.join(CHANNELS)}")
        merged = {**self.thresholds, **self.channels.get(ch, {})}
        names = {f.name: f.type for f in dataclasses.fields(QualityThresholds)}
        unknown = sorted(set(merged) - set(names))
        if unknown:
            raise ConfigError(f"unknown quality threshold(s) {', '.join(unknown)}")
        values: dict[str, Any] = {}               # each value converted to its field's type below
        for k, v in merged.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"quality threshold {k} must be a number, got {v!r}")
            values[k] = int(v) if names[k] in (int, "int") else float(v)
        return QualityThresholds(**values)
