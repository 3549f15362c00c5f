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

The session feeds ``observe_skin`` with lit framesets of the quality phase (the daemon, with the
skin's bright end the liveness worker measured: the daemon runs no face work) or ``observe`` with
those of a short pre-roll (offline analysis, which measures it itself); the power then stays
fixed through the challenge window, so every on/off pair of the challenge sees one power.

Exposure (:class:`ExposurePlan`). Some cameras have no power setting (a Gemini 335 switches its
projector on and off only), and a planned power stops at its floor. When the dots still clip there,
the other physical cure is a shorter IR exposure: the pixel's charge is (ambient + projector) light
times exposure, so a shorter exposure brings the bright end down exactly in proportion, dots and
ambient alike. The auto-exposure cannot be left to find it: it meters the whole image's mean (a
D4xx's setpoint), which a face near the camera barely moves, and it must be held through the
window anyway. So the plan is the power rule on the exposure: from the lit quality-phase frames
with a face, ``exposure x TARGET_DN / bright_end`` (``x STEP_DOWN_SATURATED`` while the bright end
is clipped), applied as an exposure lock and checked again on the next lit frame taken at it, at
the gain the auto-exposure had; the challenge window then holds the IR imager at the planned value
instead of where its auto-exposure was. A cut never goes below ``MIN_EXPOSURE_SHARE`` of the
auto-exposure's value: the bright end was above ``LOWER_ABOVE_DN`` (235 DN) to be planned at all, so
at the floor the brightest dots still stand near 80 DN and the dimmer ones, which give the depth
matcher its texture, at a third of what the auto-exposure gave them — the share the power planning
also allows (``MIN_POWER_SHARE``: a third of the power is a third of the dots' charge, as a third of
the exposure is).

The other way (issue 14, the field family's halogen light): strong ambient NIR makes the
auto-exposure short (it meters the whole image's mean), and the projector's dots then stand only a
few shot-noise deviations above the on-off difference's noise, too few for the material measure to
trust a pair (``features.MIN_PROJECTOR_SNR``): the person is refused for light he cannot see. When
the power cannot be raised (no power setting, or at the device's maximum) and the skin's bright end
is under ``RAISE_BELOW_DN``, the plan lengthens the exposure by ``TARGET_DN / bright_end`` (at most
``MAX_STEP_UP`` per step). All the skin's light grows with the exposure, ambient and dots alike, so
the bright end lands at ``TARGET_DN`` at most and nothing clips; the dots' charge grows in
proportion and the shot noise as its root, so the pair's signal-to-noise ratio grows as the root of
the factor. It never goes above ``MAX_RAISED_EXPOSURE_US``, the exposure every session in dim light
already runs at: an attacker who adds NIR light to get a longer exposure gets no more motion blur on
his dots than any dim-lit session has, and the material measure's rules (two-sided pairs, the
interval, the floors) are the same at either exposure. Light an attacker adds still cannot make the
agent over-expose a surface: the bright end is held under ``TARGET_DN`` either way. A session whose
bright end is between ``RAISE_BELOW_DN`` and ``LOWER_ABOVE_DN``, or whose auto-exposure already
sits at the ceiling (dim light), is not touched: the window locks where the auto-exposure is.

Filled (issue 14, the eighth family's direct sun). The dots' share of the skin's light does not
depend on the exposure (a continuous projector and the sun fill the same exposure), so under sun
the one cure the exposure has is photons: the shot-noise ratio grows as the root of the charge,
and the charge is limited by clipping alone. A raise used to stop after its first step whenever
the bright end had crossed ``RAISE_BELOW_DN``: with ``MAX_STEP_UP`` 2.5 a bright end of 46 DN
(eighth live/139 at 5,147 lux) landed at about 115, and the window ran with the skin at half the
range. A raise under way now goes on while the bright end is under ``FILL_BELOW_DN``, to
``TARGET_DN`` (the same ceiling, the same target, the same step limit; a session that was never
raised keeps the band where nothing changes). The Gemini 335L has no laser power setting (its SDK
switches the laser on and off), so this is all its exposure can do; the rest of the cure (pooling
frames) is the material measure's, not the exposure's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from agent.liveness.power import SATURATED_DN, same_power
from drivers.base import Camera, Capability, ExposureSetting, ProjectorPowerRange
from drivers.errors import CapabilityUnsupported, CaptureAgentError
from drivers.frame import Frame, FrameSet, StreamKind

if TYPE_CHECKING:
    from agent.pipeline.align import AlignedFrameSet
    from agent.quality.gate import FaceObservation

log = logging.getLogger(__name__)

BRIGHT_PERCENTILE = 99.0
TARGET_DN = 200.0            # where the skin's bright end is put (of 255; clipping starts at 250)
RAISE_BELOW_DN = 110.0       # dimmer than this: the dots are using less than half the range
LOWER_ABOVE_DN = 235.0       # brighter than this: the brightest dots are about to clip
MAX_STEP_UP = 2.5            # per observation, so one odd frame cannot jump to full power
STEP_DOWN_SATURATED = 0.7    # when the bright end is clipped its true level is unknown
MIN_POWER_SHARE = 1 / 3      # of the default: below it the depth stream loses its texture
SETTLE_FRAMES = 2            # frames to skip after a change when frames do not report the power
MIN_EXPOSURE_SHARE = 1 / 3   # of the auto-exposure's IR exposure: the floor of a planned one (module doc)
# The longest IR exposure a plan raises to (us): a D4xx depth auto-exposure's ceiling, its default
# exposure, where every session in dim light already runs (module doc): a raise adds no motion blur
# to the dots that an ordinary session does not have. An assumption for other makers' cameras.
MAX_RAISED_EXPOSURE_US = 8500.0
# A raise under way (the plan already holds the exposure above the auto-exposure's) goes on while the
# skin's bright end is under this: the first step stops at ``MAX_STEP_UP``, which under direct sun
# (issue 14, the eighth family) left the bright end at 110-170 DN, in the band where nothing is
# changed, and the dots' shot-noise ratio at 1.2-1.35x less than filling to ``TARGET_DN`` gives
# (the module doc, "Filled"). Not fitted: 0.9 of the target, so a step of under 11 % is not taken.
FILL_BELOW_DN = 0.9 * TARGET_DN


def skin_bright_end(aligned: AlignedFrameSet, face: FaceObservation) -> float | None:
    """The ``BRIGHT_PERCENTILE`` of the skin the projector's material measure reads
    (``features.material_skin``: discs of 0.2 eye spacings inside the face's oval inset by 0.1) in
    the IR imager's own pixels (DN): the clipping the plans cure is the clipping that measure counts
    (until session 18 they metered the smaller skin patches of ``features.ir_skin``, which dots17
    had left behind). Where the face work runs (the liveness worker, offline analysis): the daemon
    gets it in the worker's assessment."""
    from agent.liveness.features import material_skin  # OpenCV: not in the daemon (see the module doc)

    patch, ir = material_skin(aligned, face), aligned.frameset.ir
    if patch is None or ir is None:           # (a patch is only found on an IR frame)
        return None
    return float(np.percentile(ir.pixels[patch.box][patch.mask], BRIGHT_PERCENTILE))


SPARSE_BACKOFF = 2           # lit frames at a cut exposure with sparse depth before the cut is undone
CLIP_PERSIST = 3             # lit frames clipped beyond every cure before the person is asked to act


def headroom_cut(bright_end: float) -> float | None:
    """The factor the dots' light is cut by to bring the skin's bright end back under ``TARGET_DN``
    (projector power or IR exposure alike): ``STEP_DOWN_SATURATED`` when it is clipped (its true
    level unknown), ``TARGET_DN / bright_end`` above ``LOWER_ABOVE_DN``; None when it needs no cut."""
    if bright_end >= SATURATED_DN:
        return STEP_DOWN_SATURATED
    if bright_end > LOWER_ABOVE_DN:
        return TARGET_DN / bright_end
    return None


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

    @property
    def at_floor(self) -> bool:
        """Planning power, and at the lowest power it may plan."""
        r = self.range
        return r is not None and self.power is not None and self.power <= r.snap(r.default * MIN_POWER_SHARE)

    @property
    def at_ceiling(self) -> bool:
        """Planning power, and at the device's highest power."""
        r = self.range
        return r is not None and self.power is not None and self.power >= r.snap(r.maximum, down=True)

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
        cut = headroom_cut(bright_end)
        if cut is not None:
            new = p * cut
        elif bright_end < RAISE_BELOW_DN:
            new = p * min(TARGET_DN / max(bright_end, 1.0), MAX_STEP_UP)
        else:
            return p
        # Rounded down to the device's step: a raise stays under the target, a cut is a real cut.
        return max(r.snap(new, down=True), r.snap(r.default * MIN_POWER_SHARE))

    def observe(self, aligned: AlignedFrameSet, face: FaceObservation | None) -> None:
        """One lit frameset before the challenge (see ``observe_skin``), measured here."""
        self.observe_skin(aligned.frameset.ir, face is not None,
                          lambda: skin_bright_end(aligned, face) if face is not None else None)

    def observe_skin(self, ir: Frame | None, face: bool, bright_end: Callable[[], float | None]) -> None:
        """One lit frameset before the challenge: its IR frame, whether the gate found a face, and
        the skin's bright end on the IR imager (``skin_bright_end``; called only when needed, None
        without skin patches). Unlit frames, frames taken at an earlier power and frames without a
        face on the IR imager are not evidence and are skipped."""
        if not self.plans_power or self.power is None or not face:
            return
        if ir is None or ir.metadata.projector_on is False:
            return
        reported = ir.metadata.projector_power_mw
        if reported is not None:
            if not same_power(reported, self.power):
                return
        elif self._skip > 0:
            self._skip -= 1
            return
        bright = bright_end()
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


def _same_exposure(reported_us: float, planned_us: float) -> bool:
    """A frame's reported exposure is the planned one (within a device's rounding)."""
    return abs(reported_us - planned_us) <= max(1.0, 0.02 * planned_us)


class ExposurePlan:
    """The IR imager's exposure for the challenge window, planned from the skin's headroom when the
    projector's power cannot bring clipped dots down, or dots drowned by ambient NIR up (see the
    module doc).

    Active only on a live camera whose projector the challenge switches and whose IR exposure it
    claims it can lock. ``setting`` is the planned lock once one is applied (None: the window locks
    where the auto-exposure is, as without planning); ``end`` gives the auto-exposure back."""

    def __init__(self, cam: Camera, projector: Projector):
        self.cam, self.projector = cam, projector
        self.active = (projector.switchable and Capability.EXPOSURE_LOCK_IR in cam.capabilities
                       and Capability.RECORDING not in cam.capabilities)
        self.auto: ExposureSetting | None = None      # the auto-exposure's, when the first plan was made
        self.setting: ExposureSetting | None = None
        self.observations = 0
        self.changes = 0
        self._steady = False
        self._locked = False
        self.floor_us: float | None = None              # a cut starved the depth: none below this
        self._sparse = 0

    @property
    def settled(self) -> bool:
        """Nothing planned, or the last lit frame taken at the planned exposure asked for no change."""
        return not self.active or self.setting is None or self._steady

    def _power_done(self) -> bool:
        """The projector's power has done what it can: the camera sets none, or it is settled."""
        p = self.projector
        return not p.plans_power or p.settled

    def _needed(self, bright_end: float) -> bool:
        """The exposure, not the power, must act on this bright end: clipped dots with the power at
        its floor (or none to set), or dots using under half the range (``RAISE_BELOW_DN``: ambient
        NIR shortened the auto-exposure) with the power at the device's maximum (or none to set)."""
        p = self.projector
        if headroom_cut(bright_end) is not None:
            return not p.plans_power or (p.at_floor and p.settled)
        if bright_end < RAISE_BELOW_DN:
            return not p.plans_power or (p.at_ceiling and p.settled)
        return False

    def propose(self, bright_end: float, exposure_us: float) -> float:
        """The exposure (us) to use next, given the skin's bright end at ``exposure_us``;
        ``exposure_us`` itself when no change is asked for. A cut (bright end above
        ``LOWER_ABOVE_DN``) is never above the exposure nor the auto-exposure's, never below
        ``MIN_EXPOSURE_SHARE`` of the auto-exposure's. A raise (under ``RAISE_BELOW_DN``, or under
        ``FILL_BELOW_DN`` once the exposure is already above the auto-exposure's: a raise under way
        fills the range) scales by ``TARGET_DN / bright_end`` (all the skin's light grows with the
        exposure, ambient and dots alike, so the bright end lands at ``TARGET_DN`` at most), at most
        ``MAX_STEP_UP`` per step, never above ``MAX_RAISED_EXPOSURE_US`` nor below the exposure it
        was measured at."""
        assert self.auto is not None
        cut = headroom_cut(bright_end)
        if cut is not None:
            new = exposure_us * cut
            lo = max(self.auto.exposure_us * MIN_EXPOSURE_SHARE, self.floor_us or 0.0)
            return min(max(new, lo), exposure_us, self.auto.exposure_us)
        raising = exposure_us > self.auto.exposure_us * 1.01
        if bright_end < RAISE_BELOW_DN or (raising and bright_end < FILL_BELOW_DN):
            new = exposure_us * min(TARGET_DN / max(bright_end, 1.0), MAX_STEP_UP)
            return max(min(new, MAX_RAISED_EXPOSURE_US), exposure_us)
        return exposure_us

    def observe(self, aligned: AlignedFrameSet, face: FaceObservation | None, depth_sparse: bool = False) -> None:
        """One frameset of the quality phase (see ``observe_skin``), measured here."""
        self.observe_skin(aligned.frameset.ir, face is not None,
                          lambda: skin_bright_end(aligned, face) if face is not None else None, depth_sparse)

    def observe_skin(self, ir: Frame | None, face: bool, bright_end: Callable[[], float | None],
                     depth_sparse: bool = False) -> None:
        """One frameset of the quality phase, as ``Projector.observe_skin`` takes it, and whether the
        gate found the face's depth sparse on it (``DEPTH_SPARSE`` among its failing checks). Unlit
        frames, frames without a face on the IR imager, frames that report no exposure, frames taken
        before the planned exposure applied and frames taken while the power is still being planned
        are not evidence and are skipped.

        A cut that starves the depth is undone (issue 14, the sixth family): a structured-light
        camera matches only its own pattern, whose contrast against the shot noise of all the light
        falls as the root of the exposure, so under strong ambient NIR a shorter exposure can leave
        the face without depth (the gate's ``DEPTH_SPARSE`` on every frame, the session never
        acquired). ``SPARSE_BACKOFF`` lit frames at a cut exposure with sparse depth put the
        exposure back at the auto-exposure's and make it the plan's floor (no cut at all); the skin
        may then stay clipped, and ``ClippedSkin`` asks the person to act."""
        if not self.active or not face or not self._power_done():
            return
        if ir is None or ir.metadata.projector_on is False:
            return
        md = ir.metadata
        if md.exposure_us is None or md.gain is None or md.exposure_us <= 0:
            return
        if self.setting is not None and not _same_exposure(md.exposure_us, self.setting.exposure_us):
            return
        if self._undo_starving_cut(depth_sparse):
            return
        bright = bright_end()
        if bright is None:
            return
        if self.auto is None and not self._needed(bright):
            if self.projector.plans_power and not (self.projector.at_floor or self.projector.at_ceiling):
                return                                 # the power acts (or has nothing to do): not ours
            self.observations += 1
            self._steady = True
            return
        self.observations += 1
        if self.auto is None:
            self.auto = ExposureSetting(float(md.exposure_us), float(md.gain))
        new = self.propose(bright, float(md.exposure_us))
        if abs(new - md.exposure_us) <= md.exposure_us * 0.01:      # within the headroom, or at a bound
            self._steady = True
            return
        try:
            got = self.cam.lock_exposure(StreamKind.IR, ExposureSetting(new, self.auto.gain))
        except CaptureAgentError as exc:
            log.warning("IR exposure not planned: %s", exc.code)
            self.active = False
            return
        self._locked = True
        if got.exposure_us > max(new, self.auto.exposure_us) * 1.01:   # a device that set more than asked
            log.warning("IR exposure not planned: the camera set %.0f us, above the %.0f us planned",
                        got.exposure_us, max(new, self.auto.exposure_us))
            self.end()
            self.active, self.setting = False, None
            return
        log.debug("IR exposure %.0f -> %.0f us (skin bright end %.0f DN)", md.exposure_us, got.exposure_us, bright)
        self.setting = got
        self.changes += 1
        self._steady = abs(got.exposure_us - md.exposure_us) <= md.exposure_us * 0.01   # the device did not move

    def _undo_starving_cut(self, depth_sparse: bool) -> bool:
        """On a lit frame at the planned exposure: count the frames with sparse depth at a cut (no
        further cut is made on them), and after ``SPARSE_BACKOFF`` of them lock the auto-exposure's
        exposure again, as the floor (see ``observe_skin``). True when the frame was one of them.

        Back to the auto-exposure's, not to the last step: the gate judges the depth on the median
        of its last framesets, so it says sparse a few frames after the cut that did it, when the
        plan may have cut again; the auto-exposure's is the one exposure the depth was seen at."""
        prev, planned = self.auto, self.setting
        if prev is None or planned is None or planned.exposure_us >= prev.exposure_us or not depth_sparse:
            self._sparse = 0
            return False
        self._sparse += 1
        if self._sparse < SPARSE_BACKOFF:
            return True
        self._sparse = 0
        self.floor_us = prev.exposure_us
        try:
            got = self.cam.lock_exposure(StreamKind.IR, prev)
        except CaptureAgentError as exc:
            log.warning("IR exposure not planned: %s", exc.code)
            self.end()
            self.active, self.setting = False, None
            return True
        log.debug("IR exposure %.0f -> %.0f us: the cut left the face's depth sparse", planned.exposure_us,
                  got.exposure_us)
        self.setting = got
        self.changes += 1
        self._steady = False
        return True

    def wait_applied(self, sets: Iterable[FrameSet]) -> None:
        """Read framesets from ``sets`` until one's IR frame reports the planned exposure (nothing
        to wait for without a plan, or when the last lit frame already showed it), so the challenge
        window sees it from its first frame."""
        if not self.active or self.setting is None or self._steady:
            return
        for fs in sets:
            md = fs.ir.metadata if fs.ir is not None else None
            if md is None or md.exposure_us is None or _same_exposure(md.exposure_us, self.setting.exposure_us):
                return

    def end(self) -> None:
        """The IR auto-exposure back, if a plan took it (safe on any path out of a session)."""
        if not self._locked:
            return
        self._locked = False
        try:
            self.cam.unlock_exposure(StreamKind.IR)
        except CaptureAgentError as exc:
            log.warning("IR exposure not given back: %s", exc.code)

    def to_dict(self) -> dict:
        return {"exposure_us": round(self.setting.exposure_us, 1) if self.setting else None,
                "auto_exposure_us": round(self.auto.exposure_us, 1) if self.auto else None,
                "floor_us": round(self.floor_us, 1) if self.floor_us is not None else None,
                "changes": self.changes, "observations": self.observations}


class ClippedSkin:
    """Whether the skin's IR stays clipped after every cure the camera allows (issue 14, the sixth
    family): the projector's power at its floor or not settable, and the IR exposure plan settled
    (at its floor, kept by a camera that would not move it, or not plannable on this camera), and
    still the skin's bright end at saturation on ``CLIP_PERSIST`` lit frames in a row. The material
    measure would then call the window not measurable (``features.MAX_CLIPPED_SHARE``): an
    inconclusive the person could do nothing about. Instead the session asks him to act
    (``IR_TOO_BRIGHT``: step back, which dims the projector's dots with the square of the distance,
    or out of direct light, which dims the ambient NIR) and waits, as for any other prompt.

    Fed with the same lit frames as ``Projector.observe_skin`` and ``ExposurePlan.observe_skin``,
    after them; frames taken while either plan is still moving are not evidence."""

    def __init__(self, projector: Projector, exposure: ExposurePlan):
        self.projector, self.exposure = projector, exposure
        self.streak = 0
        self.seen = 0                # lit frames with a face that counted

    @property
    def uncured(self) -> bool:
        return self.streak >= CLIP_PERSIST

    def _cures_done(self) -> bool:
        p = self.projector
        power_done = not p.plans_power or (p.at_floor and p.settled)
        return power_done and self.exposure.settled

    def observe_skin(self, ir: Frame | None, face: bool, bright_end: Callable[[], float | None]) -> None:
        """One frameset of the quality phase, as ``ExposurePlan.observe_skin`` takes it. Only on a
        camera whose projector the challenge switches: without the projector challenge no material
        measure is at stake."""
        if not self.projector.switchable or ir is None or ir.metadata.projector_on is False:
            return
        if not face or not self._cures_done():
            self.streak = 0
            return
        bright = bright_end()
        if bright is None:
            return
        self.seen += 1
        self.streak = self.streak + 1 if bright >= SATURATED_DN else 0

    def observe(self, aligned: AlignedFrameSet, face: FaceObservation | None) -> None:
        self.observe_skin(aligned.frameset.ir, face is not None,
                          lambda: skin_bright_end(aligned, face) if face is not None else None)
