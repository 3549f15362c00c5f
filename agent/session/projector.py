"""The one owner of a camera's projector during a session: on/off, power, and putting both back.

Two things drive the projector in a session, and both go through :class:`Projector`:

* the challenge: during the challenge window the projector follows the nonce's schedule
  (``show``), frame by frame;
* its power, chosen from the IR image's headroom on the skin (below).

``begin`` puts the projector at its default power and on (a failed earlier session may have left it
elsewhere); ``end`` puts it back the same way and is safe on every way out of a session.

Power. Under a challenge the material detector measures the projector's own light on the skin (on
minus off). When ambient NIR is strong — warm indoor light of a couple of thousand lux — the IR
exposure is short and the dots stand only a few shot-noise deviations above the difference's noise.
The dots' signal grows with the projector's power while the ambient's noise does not, so the cure is
physical: more power. Near the camera in dim light the opposite happens: the dots fill the IR range
and clip, and less power brings them back.

Without an unlit frame (the quality phase keeps the projector on) the split between ambient and
projector is unknown, so the rule is the worst case: all the skin's IR light is the projector's.
Scaling the power by ``TARGET_DN / bright_end`` then never pushes the skin's bright end above
``TARGET_DN`` — ambient light does not grow with the power. Between ``RAISE_BELOW_DN`` and
``LOWER_ABOVE_DN`` the power is left alone: the dots already use the range well, and every change
also changes the depth stream's texture (and a real camera's auto-exposure would chase it).

The session feeds ``observe`` with lit framesets of the quality phase (the daemon) or of a short
pre-roll (offline analysis); the power then stays fixed through the challenge window, so every
on/off pair of the challenge sees one power.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np

from agent.liveness.features import SATURATED_DN, ir_skin, same_power
from agent.pipeline.align import AlignedFrameSet
from agent.quality.gate import FaceObservation
from drivers.base import Camera, Capability, ProjectorPowerRange
from drivers.errors import CapabilityUnsupported, CaptureAgentError
from drivers.frame import FrameSet

log = logging.getLogger(__name__)

BRIGHT_PERCENTILE = 99.0
TARGET_DN = 200.0            # where the skin's bright end is put (of 255; clipping starts at 250)
RAISE_BELOW_DN = 110.0       # dimmer than this: the dots are using less than half the range
LOWER_ABOVE_DN = 235.0       # brighter than this: the brightest dots are about to clip
MAX_STEP_UP = 2.5            # per observation, so one odd frame cannot jump to full power
STEP_DOWN_SATURATED = 0.7    # when the bright end is clipped its true level is unknown
MIN_POWER_SHARE = 1 / 3      # of the default: below it the depth stream loses its texture
SETTLE_FRAMES = 2            # frames to skip after a change when frames do not report the power


def skin_bright_end(aligned: AlignedFrameSet, face: FaceObservation) -> float | None:
    """The ``BRIGHT_PERCENTILE`` of the face's skin patches in the IR imager's own pixels (DN)."""
    patch, ir = ir_skin(aligned, face), aligned.frameset.ir
    if patch is None or ir is None:           # (a patch is only found on an IR frame)
        return None
    return float(np.percentile(ir.pixels[patch.box][patch.mask], BRIGHT_PERCENTILE))


class Projector:
    """A camera's projector, owned by one session (see the module doc).

    ``switchable``: the camera can switch it frame by frame (the challenge needs this).
    ``plans_power``: the camera can set its power; false for cameras that cannot (OpenNI, UVC) and
    for recordings, and then every power method is a no-op and the challenge runs at whatever power
    the device has."""

    def __init__(self, cam: Camera):
        self.cam = cam
        live = not cam.info.is_recording
        self.switchable = Capability.PROJECTOR_CONTROL in cam.capabilities and live
        self.range: ProjectorPowerRange | None = None
        self.power: float | None = None
        self.observations = 0
        self.changes = 0
        self._skip = 0
        self._steady = False
        if Capability.PROJECTOR_POWER in cam.capabilities and live:
            try:
                self.range = cam.projector_power_range()
            except CapabilityUnsupported:      # a model of a family that has the option, without it
                self.range = None

    @property
    def plans_power(self) -> bool:
        return self.range is not None

    @property
    def settled(self) -> bool:
        """The last observation, taken at the current power, asked for no change."""
        return self._steady

    # --- lifecycle ----------------------------------------------------------------------------
    def begin(self) -> None:
        """Default power, projector on: where every session starts."""
        if self.range is not None:               # plans_power
            self._apply(self.range.default)
            self.changes = 0
        if self.switchable:
            self.cam.set_projector(True)

    def end(self) -> None:
        """Back to the default power with the projector on; safe on any path out of a session (a
        lost or stopped camera is left as it is: the next session starts from ``begin`` anyway)."""
        try:
            if self.range is not None and self.power is not None and self.power != self.range.default:
                self._apply(self.range.default)
            if self.switchable:
                self.cam.set_projector(True)
        except CaptureAgentError as exc:
            log.warning("projector not restored: %s", exc.code)

    # --- the challenge's schedule -------------------------------------------------------------------
    def show(self, on: bool) -> None:
        """Switch the projector for the coming frames (the challenge window's schedule)."""
        self.cam.set_projector(on)

    # --- power ----------------------------------------------------------------------------------------
    def _apply(self, mw: float) -> None:
        try:
            self.power = self.cam.set_projector_power(mw)
        except CapabilityUnsupported:
            self.range, self.power = None, None      # the device refused: run at its own power
            return
        self._skip = SETTLE_FRAMES
        self._steady = False
        self.changes += 1

    def wait_applied(self, sets: Iterable[FrameSet]) -> None:
        """Read framesets from ``sets`` until one shows the current power: a lit IR frame that
        reports it, or ``SETTLE_FRAMES`` framesets when frames do not report power. So that the
        challenge window that follows sees one power from its first frame."""
        if not self.plans_power or self.power is None or self._steady:
            return
        for n, fs in enumerate(sets, 1):
            md = fs.ir.metadata if fs.ir is not None else None
            if md is not None and md.projector_power_mw is not None and md.projector_on is not False:
                if same_power(md.projector_power_mw, self.power):
                    return
            elif n >= SETTLE_FRAMES and (md is None or md.projector_power_mw is None):
                return

    def propose(self, bright_end: float) -> float:
        """The power to use next, given the skin's bright end at the current power."""
        p, r = self.power, self.range
        assert p is not None and r is not None     # only called while planning power (observe checks)
        if bright_end >= SATURATED_DN:
            new = p * STEP_DOWN_SATURATED
        elif bright_end > LOWER_ABOVE_DN:
            new = p * TARGET_DN / bright_end
        elif bright_end < RAISE_BELOW_DN:
            new = p * min(TARGET_DN / max(bright_end, 1.0), MAX_STEP_UP)
        else:
            return p
        # Rounded down to the device's step: a raise stays under the target, a cut is a real cut.
        return max(r.snap(new, down=True), r.snap(r.default * MIN_POWER_SHARE))

    def observe(self, aligned: AlignedFrameSet, face: FaceObservation | None) -> None:
        """One lit frameset before the challenge. Unlit frames, frames taken at an earlier power and
        frames without a face on the IR imager are not evidence and are skipped."""
        if not self.plans_power or self.power is None or face is None:
            return
        ir = aligned.frameset.ir
        if ir is None or ir.metadata.projector_on is False:
            return
        reported = ir.metadata.projector_power_mw
        if reported is not None:
            if not same_power(reported, self.power):
                return
        elif self._skip > 0:
            self._skip -= 1
            return
        bright = skin_bright_end(aligned, face)
        if bright is None:
            return
        self.observations += 1
        new = self.propose(bright)
        if new != self.power:
            log.debug("projector power %.0f -> %.0f mW (skin bright end %.0f DN)", self.power, new, bright)
            self._apply(new)
        else:
            self._steady = True

    def to_dict(self) -> dict:
        return {"power_mw": self.power, "default_mw": self.range.default if self.range else None,
                "changes": self.changes, "observations": self.observations}
