"""The challenge window: ``n`` framesets read while the projector and the kiosk screen follow the
nonce's sequences.

For the window the camera's exposure is held (``lock_exposure``): the IR imager's, so that its
auto-exposure does not chase the projector's on/off (a D4xx meters the lit image and keeps running),
and the colour imager's (with its white balance), so that the screen's colours are not corrected
away. Both are given back on every way out of the window, errors included. Only the imagers a
challenge needs are held (projector -> IR, illumination -> colour), and only those the camera claims
(``Capability.EXPOSURE_LOCK_IR`` / ``EXPOSURE_LOCK_COLOR``). The server was told ``exposure_lock``
true only when every imager the offered challenges need is claimed (:func:`exposure_lock_declared`);
then a lock the camera refuses at run time ends the session (``SES_EXPOSURE_NOT_HELD``) instead of
running the window on auto-exposure under that declaration. What was held is reported
(:meth:`ExposureHold.to_dict`, in the probe's quality report).

Commands for frameset ``k`` are sent as soon as frameset ``k - 1`` has arrived, and only when
something changes there: the projector's state at each edge of its schedule (one control transfer
per edge, not per frame), and when an illumination step begins at ``k``, the screen's colour: an
``Illumination`` event for the kiosk app (yielded to the session, which streams it on the local
API) and, on a camera that controls the kiosk's light itself (the simulator), ``set_illumination``.
A device streams at its own rate: when a command is due and the frameset it follows arrived more than
``READER_MAX_BEHIND_FRAMES`` frame intervals ago, the reader is behind and the command would land late, so
the window ends unjudged (``WindowLate``, ``SES_WINDOW_LATE``, handled as lost frames), never judged.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Generator, Iterable
from typing import Any

from agent.liveness.challenge import Challenge, Kind
from agent.pipeline.frames import FramesetReader
from agent.pipeline.gaps import WindowGaps
from agent.pipeline.sync import SyncTimeout
from agent.session.errors import ExposureNotHeld, FramesLost, WindowLate
from agent.session.events import Illumination
from agent.session.projector import Projector
from drivers.base import Camera, Capability, ExposureSetting, lockable_streams
from drivers.errors import CaptureAgentError
from drivers.frame import FrameSet, StreamKind

log = logging.getLogger(__name__)
BLACK = (0.0, 0.0, 0.0)

# How long after the frameset a command follows arrived (frame intervals) the command may be sent. A
# device streams at its own rate whatever the daemon's load: a reader that is behind sends frameset
# k's command while frames after k - 1 are already captured, and it lands that many frames late. The
# verifiers search lags up to ``PROJECTOR_MAX_LAG`` 3 / ``ILLUMINATION_MAX_LAG`` 4 frames, of which the
# pipeline itself spends about 2 (the frameset matcher sees the next tick's frame before it hands over
# k - 1, and the device's or panel's own latency: measured 2 colour frames on the simulator's screen):
# one frame interval of the reader's own delay is what is left.
READER_MAX_BEHIND_FRAMES = 1.0
# A late or lost window is the terminal's own doing (``host_late``) when the frameset it ended at was on the
# host (a frame of it) before the reader asked for it and the reader had been away from the camera (its own work, the
# session's, waiting for a CPU: the time between getting one frameset and asking for the next) for at least
# this share of the time it was late by (a late window: since it was last on time; lost frames: the frames'
# missing span). The half leaves room for the reader's time inside its reads (a loaded host there too).
HOST_LATE_SHARE = 0.5
# Framesets that began to arrive on the host less than this share of a frame interval apart are a burst: frames
# held and let go on the camera link (or a camera host that read its device late: inside the reader's reads, where
# the daemon cannot tell it from the link). A late or lost window with a burst since the reader was last on time
# is never the terminal's own (late31: before a ``host_late`` window may be graced, the final read's burst).
BURST_SHARE = 0.5
BUSY = " (the terminal was busy)"           # in a late or lost window's message when it was the terminal's
# A camera that streams at its own rate (every device; the simulator with ``stream``) may hold framesets
# captured before the window's first projector command returned (its queue, the frameset matcher's, the link):
# they cannot show it, and read as the window's framesets 0 and 1 they put the first state a frame or two later
# than every later edge, which the verifier's single lag cannot follow (stream32: frame 1 still lit under an
# "off" first state, one mismatch of 0 allowed, ``PROJECTOR_CONTRADICTED``). Those that began to arrive on the
# host before the command returned are read and left out of the window, at most this many (a queue of one, the
# matcher's frameset, one on the link); the window's frame 0 is the first that arrived after it.
MAX_STALE_FRAMESETS = 3


# The imager whose exposure each challenge needs held: the IR imager sees the projector's on/off,
# the colour imager the screen's colours.
LOCK_FOR = {Kind.PROJECTOR: StreamKind.IR, Kind.ILLUMINATION: StreamKind.COLOR}


def streams_to_lock(kinds: Iterable[Kind]) -> tuple[StreamKind, ...]:
    """The imagers (IR stands for IR/depth) these challenges need held, IR first."""
    ks = set(kinds)
    return tuple(s for k, s in LOCK_FOR.items() if k in ks)


def lockable(cam: Camera) -> frozenset[StreamKind]:
    """The imagers whose exposure this camera claims it can hold through a window: none for a
    recording (its exposure went wherever its own camera took it)."""
    if cam.info.is_recording or Capability.RECORDING in cam.capabilities:
        return frozenset()
    return lockable_streams(cam.capabilities)


def exposure_lock_declared(cam: Camera, kinds: Iterable[Kind]) -> bool:
    """What the server is told as ``exposure_lock``: true only if this camera claims a lock for every
    imager the challenges ``kinds`` need (and they need one)."""
    need = streams_to_lock(kinds)
    return bool(need) and set(need) <= lockable(cam)


class ExposureHold:
    """The imagers' exposures held through a window and given back after (idempotent).

    Each of ``streams`` the camera claims a lock for is locked; one it does not claim is left on
    auto-exposure (``unclaimed``). A claimed lock the camera refuses is ``refused``: with
    ``required`` (the server was told the exposure is held) that raises ``ExposureNotHeld`` after
    giving back what was taken; without it the window runs with that imager unlocked (logged)."""

    def __init__(self, cam: Camera, streams: tuple[StreamKind, ...], *, required: bool = False,
                 planned: dict[StreamKind, ExposureSetting] | None = None):
        self.cam = cam
        self.required = required
        self.planned = {s: v for s, v in (planned or {}).items() if s in streams}
        self.held: list[StreamKind] = []
        self.settings: dict[str, dict[str, float]] = {}
        self.refused: dict[str, str] = {}
        can = lockable(cam)
        self.unclaimed = [s for s in streams if s not in can]
        for s in streams:
            if s not in can:
                continue
            try:
                got = cam.lock_exposure(s, self.planned.get(s))        # None: where its auto-exposure is
            except CaptureAgentError as exc:
                log.warning("%s exposure not locked: %s", s.value, exc.code)
                self.refused[s.value] = exc.code
                continue
            self.held.append(s)
            self.settings[s.value] = {"exposure_us": float(got.exposure_us), "gain": float(got.gain)}
        if required and (self.refused or self.unclaimed):
            self.release()
            missing = sorted([*self.refused, *(s.value for s in self.unclaimed)])
            raise ExposureNotHeld(f"the server was told the exposure is held, and the camera did not lock the "
                                  f"{' and '.join(missing)} imager{'s' if len(missing) > 1 else ''}"
                                  + (f" ({', '.join(sorted(set(self.refused.values())))})" if self.refused else ""))

    def to_dict(self) -> dict[str, Any]:
        """For the probe's quality report: whether the server was told the exposure is held, the
        exposure (us) and gain each held imager was locked at, the imagers locked at a planned
        exposure rather than where their auto-exposure was (``planned``: the IR imager's, from the
        skin's headroom, ``projector.ExposurePlan``), and the imagers that ran on auto-exposure
        (``unlocked``: not claimed, or refused)."""
        return {"declared": self.required,
                "held": {k: {"exposure_us": round(v["exposure_us"], 1), "gain": round(v["gain"], 3)}
                         for k, v in self.settings.items()},
                "planned": sorted(s.value for s in self.planned if s.value in self.settings),
                "unlocked": sorted([*self.refused, *(s.value for s in self.unclaimed)])}

    def release(self) -> None:
        while self.held:
            s = self.held.pop()
            try:
                self.cam.unlock_exposure(s)
            except CaptureAgentError as exc:       # a lost camera keeps nothing: the next session reopens it
                log.warning("%s exposure not given back: %s", s.value, exc.code)


# A face illuminance the window's plan reads as none known (no lux calibration, no face measured).
UNKNOWN_LUX = float("nan")


def screen_luminance(lux: float | None, boost: float, from_lux: float) -> float:
    """The screen's luminance for a window, a multiple of the panel's everyday luminance: ``boost`` when
    the face's illuminance measured before the window (``lux``: the quality gate's estimate) is at
    least ``from_lux``, else 1. The screen's gain on the face against its own noise falls as the
    room's light rises (the exposure is set by the room), and in bright light the face's own drift
    outweighs it (docs/liveness.md, *The price in bright light, diagnosed*): more of the screen's light
    is the remedy that needs no longer window. An unknown illuminance (None, NaN: a camera without a lux
    calibration) keeps the everyday luminance. Nothing of the sequence changes (its colours, steps and
    window are the nonce's, as the server derives them), so the verifier is the same; the boost is not
    seen by a stream injected on the camera link, which never sees the screen."""
    if lux is None or not math.isfinite(lux) or lux < from_lux:
        return 1.0
    return float(boost)


class Screen:
    """The kiosk screen during the illumination challenge: events for the app and, on a camera that
    lights the kiosk itself (``Capability.ILLUMINATION_CONTROL``), the camera's own control.
    ``luminance``: the panel's luminance for the sequence, a multiple of its everyday one
    (:func:`screen_luminance`), carried by every event and given to the camera's control."""

    def __init__(self, cam: Camera, challenge: Challenge, frame_interval_ms: float, luminance: float = 1.0):
        self.cam, self.challenge, self.interval = cam, challenge, frame_interval_ms
        self.luminance = float(luminance)
        self.drives_camera = Capability.ILLUMINATION_CONTROL in cam.capabilities
        self.starts = {st.start: (j, st) for j, st in enumerate(challenge.steps)}
        self.shown = False

    def at(self, k: int) -> Illumination | None:
        """The command for frameset ``k``, if a step begins there."""
        hit = self.starts.get(k)
        if hit is None:
            return None
        j, st = hit
        if self.drives_camera:
            if self.luminance == 1.0:
                self.cam.set_illumination(st.rgb)
            else:
                self.cam.set_illumination(st.rgb, self.luminance)
        self.shown = True
        return Illumination(j, st.rgb, st.start, st.frames, self.interval, luminance=self.luminance)

    def end(self) -> Illumination | None:
        """The screen back to the app (and the simulated kiosk's to black)."""
        if not self.shown:
            return None
        self.shown = False
        if self.drives_camera:
            try:
                self.cam.set_illumination(BLACK)
            except CaptureAgentError as exc:
                log.warning("screen not switched off: %s", exc.code)
        return Illumination(len(self.challenge.steps), BLACK, self.challenge.frames, 0, self.interval, end=True)


def frames_behind(fs: FrameSet, interval_ms: float, now_ns: int | None = None) -> float:
    """How many frame intervals ago the last of ``fs``'s frames arrived on the host (``Frame.host_time_ns``,
    monotonic): how far the reader is behind the camera when it acts on ``fs`` now."""
    if not fs.frames:
        raise ValueError("a frameset with no frames has no arrival time")   # run() ends such a window first
    arrived = max(f.host_time_ns for f in fs.frames.values())
    now = time.monotonic_ns() if now_ns is None else now_ns
    return max(0.0, (now - arrived) / 1e6 / interval_ms)


def host_late(arrived_ns: int, asked_ns: int, away_ms: float, late_ms: float) -> bool:
    """Was a late read the terminal's own doing? ``arrived_ns``: when the frameset the window ended at
    began to arrive on the host (its frames' first ``host_time_ns``: a frameset the reader came back to may
    be completed by a frame made after it asked); ``asked_ns``: when the reader asked for it;
    ``away_ms``: the reader's time away from the camera, less its commands to the camera (the projector's,
    the screen's on a camera that lights the kiosk: a command an injector holds is the link's time,
    review31 B); ``late_ms``: how late it was (or the lost frames'
    span). The host stamps arrival times, not the camera link. **Not proof against an injector** (the final
    read): one that holds frames and lets them go in a burst has only the burst's first frameset arrive after
    the reader asked; the rest are waiting when it asks, and the reader working through them is "away" at
    nearly the rate it falls behind, so a drop or an edge inside the burst can read as the host's: :func:`run`
    makes it False after a burst (framesets arriving less than ``BURST_SHARE`` of an interval apart since the
    reader was last on time, late31). What it says is graced by the lockout within an allowance
    (``host_late_grace_per_hour``: ``FramesLost.host_late``/``WindowLate.host_late``, ``Lockout.grace``).
    False when nothing was late (not measurable is not the host's)."""
    return late_ms > 0 and arrived_ns <= asked_ns and away_ms >= HOST_LATE_SHARE * late_ms


def _missing_ms(gap: Any) -> float:
    """The span of a gap's missing frames (ms): its timestamps' span less what the counted frames explain,
    or (no period known) the whole span."""
    period = float(gap.period_ms or 0.0)
    return max(0.0, float(gap.ms) - float(gap.expected) * period) if period > 0 else max(0.0, float(gap.ms))


def _screen_end(screen: Screen | None) -> Generator[Illumination, None, None]:
    """The screen's end event, if it showed anything (a window ending early: the app's screen back)."""
    if screen is not None and (ev := screen.end()) is not None:
        yield ev


def frame_interval_ms(cam: Camera) -> float:
    fps = [p.fps for p in cam.profiles() if p.kind in (StreamKind.DEPTH, StreamKind.IR, StreamKind.COLOR)]
    return 1000.0 / min(fps) if fps and min(fps) > 0 else 0.0


def run(reader: FramesetReader, n: int, challenge: Challenge | None, projector: Projector | None, *,
        timeout_s: float = 30.0, cancelled: Callable[[], bool] | None = None,
        on_frameset: Callable[[FrameSet], None] | None = None,
        per_frameset: bool = False, exposure_required: bool = False,
        on_exposure: Callable[[ExposureHold], None] | None = None,
        ir_exposure: ExposureSetting | None = None, own_time: bool = False, screen_luminance: float = 1.0
        ) -> Generator[Illumination, None, list[FrameSet]]:
    """Read ``n`` framesets, driving the projector and the screen by the challenge; yields the
    screen's ``Illumination`` events as each step should begin, returns the framesets.

    Stops early, with what it has, when ``cancelled()`` turns true or ``timeout_s`` passes (with
    ``per_frameset``: passes without a new frameset; with ``own_time``, of a camera that renders on
    read, ``timeout_s`` of the camera's own time: ``FramesetReader.stream``); the caller decides
    whether that is enough.
    A camera that fails after the first frameset (a recording that ends, a device lost) also ends
    the window early; one that fails before it raises.
    ``on_frameset`` sees each frameset as it is matched (to stream it to the liveness worker); what
    it raises ends the window and reaches the caller. ``exposure_required``: the server was told
    the exposure is held, so a lock the camera refuses raises ``ExposureNotHeld`` before any frame
    is read; ``on_exposure`` sees the locks as taken. ``ir_exposure``: the IR imager is held at this
    planned exposure (``projector.ExposurePlan``) instead of where its auto-exposure is.
    ``screen_luminance``: the screen's luminance for the sequence (:func:`screen_luminance`).

    A challenged window that loses a frameset (a frame counter or timestamp jumps in a stream,
    ``pipeline.gaps``) ends there: the screen's end event is yielded and ``FramesLost`` raised; the
    frameset after the gap does not reach ``on_frameset``. Its framesets would be compared with the
    challenge by their place, every edge after the gap a frame early.
    On a camera that streams at its own rate, framesets that began to arrive before the first state's command
    returned are read and left out (at most ``MAX_STALE_FRAMESETS``): they cannot show it (stream32). On every
    camera, a window with commands leaves out the framesets with a frame the reader had read before its first
    commands (``FramesetReader.read_before``: a reader's frames are finite, so is this; fix34)."""
    out: list[FrameSet] = []
    gaps = WindowGaps() if challenge is not None else None
    cam = reader.camera
    kinds = challenge.kinds if challenge is not None else frozenset()
    schedule = challenge.schedule if challenge is not None and projector is not None else ()
    interval = frame_interval_ms(cam)
    screen = (Screen(cam, challenge, interval, screen_luminance)
              if challenge is not None and challenge.steps else None)
    # A camera whose clock waits for its reader (the simulator unless ``stream``) lands every command on
    # the next frame read: only one that streams at its own rate (every device) can leave a reader behind.
    paced = challenge is not None and interval > 0 and not getattr(cam, "waits_for_reader", False)
    held = ExposureHold(cam, streams_to_lock(kinds), required=exposure_required,
                        planned={StreamKind.IR: ir_exposure} if ir_exposure is not None else None)
    try:
        if on_exposure is not None:
            on_exposure(held)
        first_shown: int | None = None             # when the first state's command returned (a streaming camera)
        # What the reader had read before the window's first commands cannot show them (fix34).
        commands_from = reader.frames_read if schedule or screen is not None else None
        if schedule and projector is not None:
            projector.show(schedule[0])          # whatever the quality loop left it at
            first_shown = time.monotonic_ns() if paced else None
        stale = 0                                  # framesets left out: captured before the first command
        if screen is not None and (ev := screen.at(0)) is not None:
            yield ev
        frames = reader.stream(timeout_s=timeout_s, cancelled=cancelled, per_frameset=per_frameset, own_time=own_time)
        got_ns: int | None = None                  # when the reader got its last frameset
        away_ms = 0.0                              # its time away from the camera since it was last on time
        link_ns = 0                                # its time in commands to the camera since it last got one
        last_arrived: int | None = None            # when the last frameset began to arrive on the host
        burst = False                              # framesets came in a burst since the reader was last on time
        while len(out) < n:
            asked_ns = time.monotonic_ns()
            if got_ns is not None:
                # The camera's commands (projector, screen) are the link's time, never the terminal's: an injector
                # on the link that holds one's completion must not make the frames it lost read as the host's
                # (review31 B).
                away_ms += max(0, asked_ns - got_ns - link_ns) / 1e6
            link_ns = 0
            try:
                fs = next(frames)
            except StopIteration:
                break
            except SyncTimeout:
                break
            except CaptureAgentError:
                if not out:
                    raise
                break                                  # the camera ended the window early
            got_ns = time.monotonic_ns()
            if not fs.frames:
                # Nothing to measure, nor to time (final30: ``min`` of no arrival times raised ValueError): the
                # window ends unjudged as lost frames, counted, never the terminal's.
                log.warning("challenge window ended after %d of %d framesets: a frameset with no frames", len(out), n)
                yield from _screen_end(screen)
                raise FramesLost(f"frames lost in the challenge window: frameset {len(out)} of the window has no "
                                 f"frames; please try again")
            if commands_from is not None and not out and reader.read_before(fs, commands_from):
                # The frame that completed the last stage's frameset completed this one too (``FramesetReader``'s
                # hand-over), or one of its frames was read before the commands: on a camera that waits for its
                # reader, it was rendered before them (fix34: the window's frame 0 lit under an "off" first state).
                log.debug("challenge window: a frameset read before its first command left out")
                continue
            arrived_ns = min(f.host_time_ns for f in fs.frames.values())     # its first frame on the host
            if first_shown is not None and not out and arrived_ns < first_shown and stale < MAX_STALE_FRAMESETS:
                stale += 1                         # on the host before the first state was commanded: not the window's
                continue
            if last_arrived is not None and arrived_ns - last_arrived < BURST_SHARE * interval * 1e6:
                burst = True
            last_arrived = arrived_ns
            if gaps is not None and (gap := gaps.check(fs)) is not None:
                mine = paced and not burst and host_late(arrived_ns, asked_ns, away_ms, _missing_ms(gap))
                lost = FramesLost(f"frames lost in the challenge window{BUSY if mine else ''}: {gap.describe()}; "
                                  f"please try again")
                lost.host_late = mine
                log.warning("challenge window ended after %d of %d framesets: %s (the reader away %.0f ms, the "
                            "terminal's own: %s)", len(out), n, gap.describe(), away_ms, lost.host_late)
                yield from _screen_end(screen)
                raise lost
            out.append(fs)
            k = len(out)
            if k < n:
                edge = projector is not None and k < len(schedule) and schedule[k] != schedule[k - 1]
                step = screen is not None and k in screen.starts
                if (edge or step) and paced and (behind := frames_behind(fs, interval)) > READER_MAX_BEHIND_FRAMES:
                    mine = not burst and host_late(arrived_ns, asked_ns, away_ms, behind * interval)
                    late = WindowLate(f"the challenge window's frames were read {behind:.1f} frame intervals late"
                                      f"{BUSY if mine else ''}; please try again")
                    late.host_late = mine
                    log.warning("challenge window ended after %d of %d framesets: its reader %.1f frame intervals "
                                "behind the camera (away %.0f ms, the terminal's own: %s)", k, n, behind, away_ms,
                                late.host_late)
                    yield from _screen_end(screen)
                    raise late
                if edge and projector is not None:
                    sent = time.monotonic_ns()
                    projector.show(schedule[k])
                    link_ns += time.monotonic_ns() - sent
                if step and screen is not None:
                    sent = time.monotonic_ns()
                    ev = screen.at(k)                  # the camera's own screen command, if it lights the kiosk
                    link_ns += time.monotonic_ns() - sent
                    if ev is not None:
                        yield ev                       # the app's time showing it is the terminal's
            if paced and frames_behind(fs, interval, got_ns) <= READER_MAX_BEHIND_FRAMES:
                away_ms, burst = 0.0, False            # on time when it got this frameset: lateness starts again
            if on_frameset is not None:
                on_frameset(fs)                        # its own errors (the worker's) are the caller's
        yield from _screen_end(screen)
    finally:
        if screen is not None:
            screen.end()
        held.release()
    return out


def collect(reader: FramesetReader, n: int, challenge: Challenge | None, projector: Projector | None, *,
            timeout_s: float = 30.0, cancelled: Callable[[], bool] | None = None,
            on_frameset: Callable[[FrameSet], None] | None = None, per_frameset: bool = False,
            ir_exposure: ExposureSetting | None = None, screen_luminance: float = 1.0) -> list[FrameSet]:
    """:func:`run` without a kiosk app to show the screen's events (offline analysis, benches)."""
    gen = run(reader, n, challenge, projector, timeout_s=timeout_s, cancelled=cancelled, on_frameset=on_frameset,
              per_frameset=per_frameset, ir_exposure=ir_exposure, screen_luminance=screen_luminance)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return list(stop.value)
