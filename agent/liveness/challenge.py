"""The challenges: a server nonce decides, frame by frame, what a live camera must see.

Two challenges, each derived from the nonce through HMAC-SHA256 with its own label (the server
derives the same, ``hil/ingest/evidence.py``):

* **projector** — when the IR projector is on: runs of ``PROJECTOR_RUNS`` framesets. The dots
  show in the IR image exactly when scheduled. A recording or a stream fed from elsewhere cannot
  know the schedule; an injector on the camera link sees every projector command, though, and can
  obey it (``inject=splice|render`` in the simulator).
* **illumination** — what the kiosk screen shows, full screen: steps of ``ILLUMINATION_STEPS``
  framesets, each one of the eight colours whose channels are fully on or off (``PALETTE``),
  never the colour before it. The face reflects the screen into the colour camera; an injector on
  the camera link never sees the screen. Cameras without projector control get this challenge
  alone.

**Timing.** A command reaches the device some frames later (a D4xx projector 1–2 frames, not
always the same: librealsense #9450; a screen the kiosk app paints, a few frames). Each session's
lag is estimated (0..``max_lag``) and every edge of a sequence may land at that lag or one frame
later: the first frame of each run or step (at the lag) is not compared. Every other frame must
show the commanded state. That tolerance costs information: a stream that does not know the nonce
but copies the sequence's rhythm passes more often than under an exact rule, which is why the runs
are longer (2–6, not 2–4) and why ``python -m bench liveness`` states the blind pass rate beside
the window length for each challenge and for both together.
"""

from __future__ import annotations

import enum
import hmac
import itertools
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from drivers.errors import CaptureAgentError

LABEL = b"capture-agent/challenge/v2/"
Rgb = tuple[float, float, float]

# Black, red, green, blue, yellow, magenta, cyan, white: each channel fully on or off, so each step
# carries three independent bits besides its timing.
PALETTE: tuple[Rgb, ...] = ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0),
                            (1.0, 1.0, 0.0), (1.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 1.0))
PROJECTOR_RUNS = (2, 6)           # framesets per projector run, uniform
ILLUMINATION_STEPS = (3, 6)       # framesets per colour step, uniform
MIN_FRAMES = 8
MIN_COMPARED = 6                  # frames compared at a lag (the window less the lag)
PROJECTOR_MAX_LAG = 3             # frames between a command and the first frame showing it
ILLUMINATION_MAX_LAG = 4          # the kiosk app paints the screen after it receives the event
ILLUMINATION_TYPICAL_LAG = 2
# Per-frame separation required: projector energies grouped by the schedule (d'), and the face's
# response to each screen channel over the residual noise of that channel.
PROJECTOR_MIN_SEPARATION = 3.0
ILLUMINATION_MIN_SEPARATION = 3.0
# The screen's crosstalk between channels the illumination's step check allows: the other screen
# channels together may reach a camera channel at up to this share of that channel's own gain
# (``verify_illumination(step_check=...)``; the simulated panel's largest, into the camera's red,
# is (0.17 + 0.02) / 0.78 = 0.24, drivers/sim/screen.py).
ILLUMINATION_CROSSTALK = 0.25
# The step check's tolerance in units of the noise of a difference of two frames (sqrt(2) times one
# frame's noise), where that is wider than half a level's step of the gain
# (``verify_illumination(step_noise=...)``). From the Gaussian tail, not fitted: a 32-frameset window
# compares ~28 frames x 3 channels at its lag, ~84 differences, and under 40 compared frames allows no
# mismatch; for pure noise to refuse at most ~1 % of genuine windows each difference may exceed the
# tolerance with probability ~1.2e-4 (two-sided), i.e. 3.85 of its noise; 4 (6.3e-5 each, 0.5 % of
# windows) leaves room for the noise being estimated from ~20 pairs.
ILLUMINATION_STEP_NOISE = 4.0
# The step check's noise is the root mean square of the within-step changes (a face's own light has
# heavier tails than a Gaussian, which the RMS follows), but at most this many times the noise their
# median implies (1.4826 x the median absolute change, over sqrt(2)): a blind stream's own edges
# inside the sequence's steps are a minority of those changes, each a full step of the gain, and
# raise the RMS far beyond its median-based noise (one full step among P pairs alone: gain /
# sqrt(2 P)), which they do not move. Not fitted: the RMS of Gaussian noise exceeds twice its
# median-based estimate in 1.6 % of channels at 10 pairs, 0.3 % at 20, and then by little; a rendered
# face's own changes do so more often (29.5 % of train windows on some channel), at gains 40-400 times
# the noise, where half the gain sets the tolerance (``verify_illumination(step_spread=...)``;
# docs/liveness.md, *The step check's noise*).
ILLUMINATION_NOISE_SPREAD = 2.0
# Frames at the start of each illumination step the decoder does not settle: the first (an edge may
# land one frame late) and, with 2, the second, which may hold a BLEND of the two colours. A colour
# camera's exposure (10-33 ms) straddles the screen's change (60 Hz refresh, LCD response 5-10 ms),
# so the frame the change lands in shows a share of the new colour and the rest of the old; when the
# edge lands one frame late that frame is the step's second. It is not decoded and not in the noise;
# the step check compares the frames either side of it (the whole commanded change), and it must lie
# between them: one share of the change on every channel (:func:`_unblended`;
# ``verify_illumination(edge_frames=...)``; docs/liveness.md, *Blended frames at the edges*). Still 1
# by default: with 2 a blind injector that chooses its noise passed 2 of 10,000 at 32 framesets (0
# with 1), short windows (12 framesets at some lags) keep too few compared frames to verify, and an
# edge may land up to two frames after the lag; measured, not adopted. Late edges' blends are taken
# by ``late_blends`` instead (below).
ILLUMINATION_EDGE_FRAMES = 1
# Edges per window whose change may land one frame late with a BLEND on the step's second frame
# (``verify_illumination(late_blends=...)``; docs/liveness.md, *Late blends*). Not fitted on any blind
# figure: a genuine edge needs it when it lands late (the screen's share of late edges, s, at most
# 0.3 in the timing model) AND its landing frame blends (p = (exposure + panel response) / frame time,
# at most 1) with the second frame's share below LATE_SHARE (3/4 of uniform shares): q = 0.3 x 1 x
# 0.75 = 0.225 per edge; a 32-frameset window compares 4-8 edges at a lag (6 or fewer in 9 of 10
# windows), and the chance that more than 5 need it is 1.3e-04 with 6 (Binomial(6, 0.225)), 7.3e-04
# with 7, 2.4e-03 with 8 (under 1 % of windows): well inside the genuine target's 0.5 %. The same at
# every window length: a lower cap (4 or 3) for 24 framesets was measured and does not close their
# blind leak (docs/liveness.md, *A lower late-blend cap for short windows*).
ILLUMINATION_LATE_BLENDS = 5
# Windows shorter than this many framesets may not pass at a lag where the step check's tolerance
# is set by the noise (``ILLUMINATION_STEP_NOISE`` x sqrt(2) x the step check's noise above half a
# level's step of the gain on some channel: gain over noise under 2 x sqrt(2) x 4 = 11.3); such a
# window that would pass there is not measurable (inconclusive: retry out of bright light)
# (``verify_illumination(noise_frames=...)``; docs/liveness.md, *The step check's noise in short
# windows*). Off (None) by default: measured, not adopted.
ILLUMINATION_NOISE_FRAMES: int | None = None
# A contradiction that an uncommanded change of the room's light explains is not measurable, not an
# attack (``verify_illumination(ambient=...)``; docs/liveness.md, *A shadow passing*).
ILLUMINATION_AMBIENT = True
# The face's own light over a window fitted as ONE drift shape for the three channels (each with its
# own scale), not a cubic per channel (``verify_illumination(shared_drift=...)``, :func:`_fit_shared`):
# a room light moves the three channels together, in its colour; the screen moves them independently.
# A cubic per channel bent a blind stream with common-mode waves onto another nonce's sequence
# (review22's ``gain_waves``, ~0.14 % of windows; docs/liveness.md, *One drift shape for the three channels, adopted*).
ILLUMINATION_SHARED_DRIFT = True
# A window the full-colour verifier refused may PASS when the face's colour follows the sequence in the
# plane across the room's light: each frame projected onto the plane orthogonal to the room light's
# colour direction ``a`` on the face (estimated from the changes within the screen's steps), where that
# light vanishes whatever its time course (a failing tube's steps, a fan's pulses, a beacon's flashes)
# and the screen's steps remain (:func:`_room_plane`; docs/liveness.md, *The screen read across the
# room's light*). One switch: False is the verifier before it. The terminal and the server alike (one
# code path: ``hil/ingest/evidence.py`` verifies with the default).
ILLUMINATION_ROOM_PLANE = True
# The plane path needs at least this many bits decoded over the window: 3 per compared step (every
# step's commanded colour separated, in the plane, from each other palette colour). A 32-frameset
# window (``window_frames``' for the illumination) compares at least 28 frames at the largest lag
# (``ILLUMINATION_MAX_LAG`` 4), its steps at most ``ILLUMINATION_STEPS[1]`` 6 framesets long: at least
# ceil(28 / 6) = 5 steps, 15 bits. So the plane path never decodes less than the full path's shortest
# 32-frameset window does (docs/liveness.md, *The screen read across the room's light*). Raised to 21 (7 compared
# steps) by review 29: an injector that chooses the light's direction AND its course per window passed blind full
# windows at 15 and 18 bits (review 28's warm window, 5 steps, under 28 of 200 courses; ``bench.plane_search``'s
# window 1722 of seed 2911, 6 steps, separation 7.9); the fit's freedom in the plane (the direction, the noise per
# axis, a gain per channel, a straight drift, five lags) spends more than 18 bits. Cost: 3 of the 34 development
# windows screen28 caught (tube, beacon, fan one each) and 12 of 200 synthetic genuine windows under one light
# (docs/liveness.md, *Review 29*).
ROOM_PLANE_MIN_BITS = 21
# ... and only in a window of at least this many framesets (the kiosk's: ``window_frames`` with the
# illumination). Counting bits did not hold alone: review 28 found a blind 16-frameset window (11 frames
# compared, 5 steps, exactly 15 bits, no mismatch) that the plane passed under a magenta "room light" the
# injector chose (1 of 2,000; the fit's own freedom, a straight drift and a gain per channel, the direction
# and five lags, spends part of the bits). At 32 framesets no blind window passed (docs/liveness.md,
# *The plane path only in a full window*); shorter windows (offline analysis, research benches) are read
# by the full-colour verifier alone.
ROOM_PLANE_MIN_FRAMES = 32
# Every compared step's commanded colour this many noise units, at least, from each other palette colour in the
# plane (the full path's ``ILLUMINATION_MIN_SEPARATION`` is 3). At 3 a full window still let blind streams through:
# 2 of 15,000 under 19 chosen directions (a warm tube's colour and a near-white; with the gains the fit chooses
# per channel a palette colour stood 3-5 noise units from another in the plane, so a step carried less than its
# 3 bits); at 5, 0 of 15,000 other windows, while every development window screen28 caught still passes
# (the sixteenth's tube 15 of 15, beacon 9 of 9, the fifteenth's fan 10 of 10) and ``bench.room_plane_injector
# 200 32 20``'s genuine windows under one light pass 150 of 200 (165 at 3, 14 without the plane path)
# (docs/liveness.md, *The plane path only in a full window*).
ROOM_PLANE_MIN_SEPARATION = 5.0
# The face's own light across ``a`` over the window, fitted per channel as a polynomial of this degree in
# time (``_drift``): a person moving under the room's one light changes the face's light along that light's
# colour, which the plane takes out, so little is left across it. A cubic per channel there (12 terms, the
# relabel's ``_ambient_explained``) bent a blind stream under a shadow onto another nonce's sequence
# (``bench.shadow_injector 500``'s blind+shadow trial 98: 1 pass of 500); the full path fits one shape for
# the three channels for the same reason (``ILLUMINATION_SHARED_DRIFT``).
ROOM_PLANE_DRIFT_DEGREE = 1
# Within-step changes (pairs of consecutive compared frames of one step) the room light's direction is
# estimated from, at least.
ROOM_PLANE_PAIRS = 6
# A window the full-colour verifier and the plane path refused may PASS when the full-colour verifier passes it
# with the frames a flashing light lit left out (:func:`_flash_frames`; an emergency vehicle's red and blue light
# bar: 30-60 ms flashes, each lighting 1-2 frames, in the screen's own primaries' colours, so no plane across
# them keeps 3 bits a step; docs/liveness.md, *Flash frames left out*). Which frames are left out is decided from
# the face's colour stream alone, never from the sequence, the lag or a fit: an injector could blank those
# frames itself (a frame with no face), so leaving them out gives it nothing it does not already have, and the
# window keeps every minimum of the full path (every step compared, ``MIN_COMPARED`` frames, the separation).
# One switch: False is the verifier before it; the terminal and the server alike.
ILLUMINATION_FLASH_FRAMES = True
FLASH_LONGEST = 2                 # a flash's run of frames, at most (a 60 ms flash straddles 2 frames at 30 fps)
FLASH_RISE = 6.0                  # the run above both frames either side, on some channel, in noise units, at least
FLASH_DIP = 3.0                   # ... and below neither by more than this on any channel (a light adds light)
FLASH_SHARE = 4                   # at most 1 frame in this many left out (and only in a full window)
FLASH_PASSED = ("the face's colour follows the screen's illumination sequence with the frames a flashing light "
                "lit left out")
# A full window the rules above refused may PASS when each screen step's DARKEST compared frame follows the sequence
# (:func:`_step_floor`): a light adds light, so whatever a flashing light does inside a step (an emergency vehicle's
# red and blue bar: groups of 1-4 flashes lighting 3-12 frames, straddling the screen's edges, more than one frame
# in ``FLASH_SHARE``), the frame it lit least carries the screen's colour and the room's steady light, on every
# channel. Each step then decodes to the channel-wise darkest of its frames, which for any stream is ONE palette
# colour: a stream that does not know the nonce matches a step's colour only by chance (at most 1 in 7 with the
# previous step's colour known), whatever it shows inside the step; at least ``ROOM_PLANE_MIN_BITS`` bits (3 per
# compared step), every channel's gain ``ROOM_PLANE_MIN_SEPARATION`` noise units, only in a full window
# (docs/liveness.md, *Each step's darkest frame*). One switch: False is the verifier before it; the terminal and the
# server alike.
ILLUMINATION_STEP_FLOOR = True
FLOOR_PASSED = ("the face's colour follows the screen's illumination sequence in each step's darkest frame (a "
                "flashing light adds light)")
PLANE_PASSED = ("the face's colour follows the screen's illumination sequence across the room's changing "
                "light (read in the colours the room's one light cannot reach)")
NOISY_DETAIL = ("the screen's light on the face was too weak against the face's own noise to verify the "
                "illumination sequence in a window this short")
# A step's second frame showing less than this share of its edge's change is taken for a late edge's
# blend (the step check accepts a second frame within half the gain of the new colour, a share above
# ~1/2; 3/4 overlaps that by a quarter of the gain, for the noise).
LATE_SHARE = 0.75
# Why a projector challenge that failed was not measurable (``SequenceResult.measurable`` False: the
# verdict is inconclusive, never live; docs/liveness.md, *A drowned projector*).
CLIPPED_DETAIL = ("the IR frames' dot energy fell when the projector was scheduled on: the IR image is clipped "
                  "by ambient light and the projector's dots cannot be seen")
DROWNED_DETAIL = ("the IR frames' dot energy did not switch above its own noise: the projector's dots were "
                  "too weak against ambient light to verify the projector schedule")
DRIFTED_DETAIL = ("the IR frames' dot energy stepped on the projector schedule, but the ambient light's own energy "
                  "drifted over the window by as much as the dots' step: the projector's dots were too weak "
                  "against ambient light to verify the projector schedule")
# ``DRIFTED_DETAIL``'s window whose unlit frames' mean energy (the ambient's own level) is under
# ``SWEPT_LEVEL_SHARE`` of the dots' median step: not too bright for the dots, the ambient moved (a
# car's headlamps sweeping the face at night): prompted ``LIGHT_CHANGED``, not ``TOO_BRIGHT_TO_VERIFY``;
# measurable False and the verdict as for ``DRIFTED_DETAIL`` (docs/liveness.md, *A passing headlamp*).
SWEPT_DETAIL = ("the IR frames' dot energy stepped on the projector schedule, but a passing light moved the "
                "ambient's own energy over the window by as much as the dots' step (its level well under the "
                "step): the projector schedule could not be verified against it")
SWEPT_LEVEL_SHARE = 1.0
# Why an illumination challenge that failed was not measurable: the screen's light too weak on the
# face (against the room's light), or too few frames with a face to compare at all.
WEAK_SCREEN_DETAIL = ("the screen's light on the face was too weak to measure against the room's light "
                      "(or the face did not reflect it)")
FEW_FACES_DETAIL = "too few frames with a face to verify the illumination challenge"
# Why an illumination challenge whose face contradicted the sequence is nevertheless not measurable:
# the room's light changed inside the window, all three channels together (a passer-by's shadow, a
# cloud), by enough to flip the decoding, while the face's colour across that change still followed
# the screen's sequence (``verify_illumination(ambient=...)``, :func:`_ambient_explained`;
# docs/liveness.md, *A shadow passing*).
AMBIENT_DETAIL = ("the room's light on the face changed during the illumination sequence (a shadow passing): "
                  "the screen's light could not be verified against it")
# The same, when the room's light along its own colour moved in many jumps between frames rather than
# over several frames: a lamp's light pulsing on the face (a ceiling fan's blades under it, 7.5-29 Hz
# against 30 fps; :func:`_ambient_explained`'s pulse; docs/liveness.md, *A ceiling fan's pulses*).
PULSE_CHANGES = 3                 # within-step changes along the room's colour, at least half the largest
# A room light's colour direction may hold a channel at zero (an amber beacon adds no blue): its component
# there is then the estimate's noise around 0, either sign; below -this it is a colour change, not a light
# (:func:`_light_without_a_channel`).
LIGHT_CHANNEL_FLOOR = 0.05
PULSED_DETAIL = ("the room's light on the face pulsed during the illumination sequence (a fan's blades under a "
                 "lamp, a flashing beacon): the screen's light could not be verified against it")
# The same, when the room's light inside the screen's steps changed in two colours at once, neither the other's
# shade (holiday string lights whose two channels, red and blue bulbs and green and amber ones, take turns under
# a controller's pattern, as a screen's steps do): the face's colour along the one axis across both still
# follows the sequence, with at least ``ROOM_COLOURS_MIN_BITS`` bits against a stream that does not know the
# nonce (:func:`_room_colours`; docs/liveness.md, *A room light stepping between two colours*). Not measurable,
# never a pass (the plane is chosen from the window's own changes, so the bits overstate the evidence: at 9 bits
# blind streams whose own edges inside the steps made the plane were relabelled, 10 of 1,500 in
# ``bench.shadow_injector 500`` with 9-16 bits; at 18, none).
ILLUMINATION_ROOM_COLOURS = True
ROOM_COLOURS_MIN_BITS = 18.0
COLOURS_DETAIL = ("the room's light on the face stepped between two colours during the illumination sequence "
                  "(coloured lights under a controller beside the kiosk): the screen's light could not be verified "
                  "against it")
# A contradiction that a flickering, patchy bright ambient explains (sunflecks through leaves) is not
# measurable, not an attack (:func:`explain_flicker`; docs/liveness.md, *Sunflecks*). The terminal's
# rule; the server verifies without it, as it does without ``ILLUMINATION_AMBIENT``.
FLICKER = True
# The share of the face's own light changes (between consecutive compared frames of one screen step)
# that the infrared's ambient changes must explain, cell by cell, for the flicker rule to apply: the
# window's own light is then mostly the flicker (half: the flicker is the larger part of it).
FLICKER_EXPLAINED = 0.5
# The colour's gain on a cell's ambient infrared may be fitted cell by cell as well as one for the face
# (``_flicker_gains``: the sun's colour over the shade's differs from its infrared over the shade's under
# foliage, and each cell's own share of the flecks sets its gain; fleck26, docs/liveness.md).
FLICKER_CELL_GAINS = True
FLICKER_DETAIL = ("patchy bright light flickered on the face during the illumination sequence (sunlight through "
                  "leaves): the screen's light could not be verified against it")
PROJECTOR_FLICKER_DETAIL = ("the IR frames' dot energy moved with the ambient infrared flickering on the face "
                            "(sunlight through leaves): the projector's dots could not be verified against it")
# A projector window that failed (a contradiction, or dots that "did not switch") because the room's
# infrared on the face moved its unlit frames' dot energy: a PWM-dimmed light whose pulses an IR
# exposure shorter than one dimmer period catches or misses frame by frame (the thirteenth family),
# so the unlit frames' energy is the skin's texture in that light, not the dots
# (:func:`_projector_unlit_light`; docs/liveness.md, *A PWM dimmer's pulses on the unlit frames*).
# Not measurable, never live. The terminal's rule, as ``FLICKER``: the server verifies without it.
UNLIT_LIGHT = True
UNLIT_LIGHT_FRAMES = 6            # unlit frames with an infrared level, at least, for the fit
PROJECTOR_UNLIT_LIGHT_DETAIL = ("the room's infrared on the face moved the unlit IR frames' dot energy (a dimmed "
                                "light's pulses caught by a short exposure, or flickering sunlight): with it taken "
                                "out the dots followed the projector schedule, but the schedule could not be "
                                "verified against it")
# A projector window that failed as a contradiction because a bright 850 nm source swept the face for a moment (a
# windscreen's glint: the sun's infrared crossing the face in 0.1-0.5 s, the twentieth family): one run of
# ``SWEEP_RUNS`` frames, left out of the split, the count and d', leaves the rest PASSING
# :func:`verify_projector`'s own thresholds at some lag, and inside that run the light only added (every settled
# frame left out at or above the lowest kept frame of its commanded state, each state's frames rising and falling
# once; in the face's IR level, linear in light, the projector's flood kept on every settled frame the schedule has
# lit: ``SWEEP_LEVEL``) while the dots still switched (every schedule edge touching the run, the one just before it
# too, steps the commanded way; :func:`_swept_run`; docs/liveness.md, *A windscreen's glint* and *sched32's glint
# relabel against an adaptive injector*). Not measurable, never live: a blind stream that draws a hump of its own
# still has to match the schedule's edges inside it; an injector that missed an edge and drew a hump over it has to
# draw the flood there too (a hump brighter than the flood in the face's level does: docs/liveness.md). The
# terminal's rule, as ``FLICKER``: the server verifies without it.
SWEPT_RUN = True
SWEEP_RUNS = (3, 15)              # frames a sweep covers at a point: 0.1-0.5 s at 30 fps
SWEEP_WIGGLE = 0.1                # changes inside the run under this share of the kept dots' step are noise
SWEEP_LEVEL = True                # the run's lit frames keep the projector's flood in the face's IR level (_flood_kept)
PROJECTOR_GLINT_DETAIL = ("a bright infrared light swept the face for a moment (a windscreen's glint): outside it "
                          "the IR frames' dot energy followed the projector schedule, but the schedule could not be "
                          "verified across it")
# Why a challenge failed otherwise: a contradiction (the judge's attack), or nothing to verify.
PROJECTOR_CONTRADICTED_DETAIL = "IR frames do not follow the projector schedule: replayed, injected or not this camera"
PROJECTOR_UNMEASURED_DETAIL = "too few measured frames to verify the projector challenge"
# The projector's dots followed the schedule but are not this unit's: its on-off pairs read against the
# unit's enrolled dot reference (``unit_status``) fit it worse than any genuine camera's do (the judge's
# attack), or worse than train's genuine sessions but not far enough to say so (not measurable).
PROJECTOR_NOT_THIS_UNIT_DETAIL = ("the IR frames' dots follow the projector schedule but are not this unit's "
                                  "projector: they do not fit its enrolled dot pattern (another camera's stream)")
PROJECTOR_UNIT_UNSURE_DETAIL = ("the IR frames' dots fit this unit's enrolled dot pattern worse than a genuine "
                                "session's: the projector is not verified as this unit's")
PROJECTOR_FEW_FRAMES_DETAIL = "too few frames to verify the projector challenge"
SCREEN_CONTRADICTED_DETAIL = ("the face's colour does not follow the screen's illumination sequence: injected or "
                              "not live")
NO_SEQUENCE_DETAIL = "no illumination sequence to verify"
# Frames whose state may disagree with the projector schedule (beyond an edge's uncertain frame),
# per this many frames compared: none in a window of under 40 compared frames.
FRAMES_PER_ALLOWED_MISMATCH = 40


def window_frames(kinds: Iterable[str | Kind]) -> int:
    """The window a set of challenges needs so that a stream that does not know the nonce passes at
    most ~0.03 % of the time (``python -m bench liveness``, docs/liveness.md: measured with clean
    blind streams, and the bound derived there): the projector alone 48 framesets (edges tolerated
    a frame late leave 2/5 per edge), the illumination sequence alone or with the projector 24 would
    do by the clean rule (``verify_illumination`` before its step check let 0.26 % of blind windows
    through at 24, with it 0 of 4,000: ``python -m bench.illum_bits``). With the illumination it is
    32 nonetheless: the motion cues need the longer window (in 24 framesets, 0.8 s at 30 fps, a live
    person's breathing can sit at a turning point and the motion detector fall below the live
    threshold), and the detectors are fitted on 32-frameset windows."""
    return 32 if Kind.ILLUMINATION in kinds_from(kinds) else 48


class ChallengeError(CaptureAgentError):
    code = "LIV_CHALLENGE_INVALID"


class Kind(str, enum.Enum):
    PROJECTOR = "projector"
    ILLUMINATION = "illumination"


def kinds_from(names: Iterable[str | Kind]) -> frozenset[Kind]:
    """Challenge kinds by name; an unknown name is a ``ChallengeError``."""
    out = set()
    for n in names:
        try:
            out.add(Kind(n))
        except ValueError:
            raise ChallengeError(f"unknown challenge {str(n)[:32]!r}") from None
    return frozenset(out)


@dataclass(frozen=True)
class Step:
    """One colour of the illumination sequence: framesets ``start`` .. ``start + frames - 1``."""

    start: int
    frames: int
    rgb: Rgb


class _Stream:
    """Bytes from HMAC-SHA256(nonce, label || counter), counter 0, 1, 2, ..., drawn one at a time
    (an iterator over the blocks' bytes: the server derives the sequences for every probe)."""

    def __init__(self, nonce: bytes, label: bytes):
        key, prefix = bytes(nonce), LABEL + label
        self._bytes = itertools.chain.from_iterable(
            hmac.digest(key, prefix + c.to_bytes(4, "big"), "sha256") for c in itertools.count())

    def below(self, n: int) -> int:
        """Uniform in 0..n-1 (rejection sampling: no modulo bias)."""
        limit = 256 - 256 % n
        for b in self._bytes:
            if b < limit:
                return b % n
        raise AssertionError("the stream of bytes is endless")


def projector_schedule(nonce: bytes, frames: int) -> tuple[bool, ...]:
    s = _Stream(nonce, b"projector")
    lo, hi = PROJECTOR_RUNS
    out: list[bool] = []
    state = bool(s.below(2))
    while len(out) < frames:
        out.extend([state] * (lo + s.below(hi - lo + 1)))
        state = not state
    return tuple(out[:frames])


def _compared(steps: list[tuple[int, int, Rgb]], frames: int, lag: int) -> list[Rgb]:
    """The colours of the steps (start, framesets, colour) that keep a settled frame at ``lag``:
    their second frame is still compared."""
    return [rgb for start, n, rgb in steps if n >= 2 and start + 1 < frames - lag]


def illumination_steps(nonce: bytes, frames: int, *, step_frames: tuple[int, int] = ILLUMINATION_STEPS,
                       palette: Sequence[Rgb] = PALETTE) -> tuple[Step, ...]:
    """Steps of ``ILLUMINATION_STEPS`` framesets, each colour unlike the one before. Drawn again
    (further along the same stream) until, among the steps still compared at the largest lag
    (``ILLUMINATION_MAX_LAG``), every screen channel is both on and off (so the face's response to
    each can be measured), and at a typical lag at least three steps are compared and the last of
    them shows the first step's colour again (so landmarks can be compared across the window under
    one light: the liveness judge's motion cue). Windows too short for that (under 10 framesets)
    drop the second condition, and windows too short to compare two steps the first.

    ``step_frames`` and ``palette`` (its first colour black) are for measuring other sequences
    (``python -m bench.illum_bits``: shorter steps, more levels per channel); the challenge, the
    daemon and the server use the defaults."""
    below = _Stream(nonce, b"illumination").below
    lo, hi = step_frames
    others, lengths = len(palette) - 1, hi - lo + 1
    # Plain tuples while drawing (the server derives the sequence for every probe it checks).
    while True:
        out: list[tuple[int, int, Rgb]] = []
        colour = 1 + below(others)                  # the first step is never black: it must change the screen
        start = 0
        while start < frames:
            n = min(lo + below(lengths), frames - start)
            out.append((start, n, palette[colour]))
            start += n
            colour = (colour + 1 + below(others)) % len(palette)      # any other colour
        shown = _compared(out, frames, ILLUMINATION_TYPICAL_LAG)
        if not ((len(shown) >= 3 and shown[-1] == shown[0]) or frames - ILLUMINATION_TYPICAL_LAG < 2 * lo + 2):
            continue                                   # no repeat of the first colour (checked first: cheaper)
        seen = _compared(out, frames, ILLUMINATION_MAX_LAG)
        if len(seen) < 2 or all(len({rgb[c] for rgb in seen}) > 1 for c in range(3)):
            return tuple(Step(*st) for st in out)


@dataclass(frozen=True)
class Challenge:
    """What the nonce asks of one challenge window of ``frames`` framesets. ``schedule`` is empty
    without the projector challenge, ``steps`` without the illumination challenge."""

    nonce: bytes
    frames: int
    kinds: frozenset[Kind]
    schedule: tuple[bool, ...]       # per frameset: projector on?
    steps: tuple[Step, ...]          # the illumination sequence

    @classmethod
    def from_nonce(cls, nonce: bytes, frames: int = 32,
                   kinds: Iterable[str | Kind] = (Kind.PROJECTOR,)) -> Challenge:
        if not isinstance(nonce, (bytes, bytearray)) or len(nonce) < 16:
            raise ChallengeError("challenge nonce must be at least 16 random bytes")
        if not isinstance(frames, int) or frames < MIN_FRAMES:
            raise ChallengeError(f"a challenge needs at least {MIN_FRAMES} frames")
        ks = kinds_from(kinds)
        if not ks:
            raise ChallengeError("a challenge needs at least one kind (projector, illumination)")
        return cls(bytes(nonce), frames, ks,
                   projector_schedule(nonce, frames) if Kind.PROJECTOR in ks else (),
                   illumination_steps(nonce, frames) if Kind.ILLUMINATION in ks else ())

    def colour_at(self, k: int) -> Rgb | None:
        """The screen colour commanded for frameset ``k`` (None without the illumination challenge)."""
        for st in self.steps:
            if st.start <= k < st.start + st.frames:
                return st.rgb
        return None

    def colours(self) -> np.ndarray:
        """(frames, 3) commanded screen colour per frameset, R, G, B (0 or 1)."""
        out = np.zeros((self.frames, 3))
        for st in self.steps:
            out[st.start:st.start + st.frames] = st.rgb
        return out


def dot_energy(ir: np.ndarray, mask: np.ndarray | None = None) -> float:
    """High-frequency energy of an IR image (DN): the projected dots dominate it when present."""
    import cv2  # here: the daemon schedules challenges and must not load OpenCV for it

    from agent.pipeline import inplace
    from agent.pipeline.align import scratch

    # The worker measures every frameset of a window: the image, its blur and the high-pass are the
    # thread's kept temporaries there (``scratch``), with the same operations as
    # ``x - GaussianBlur(x)`` and ``np.std`` (``inplace.std``), so the same bits.
    x = scratch("challenge.dot_energy.x", ir.shape, np.float32)
    np.copyto(x, ir, casting="unsafe")
    blur = cv2.GaussianBlur(x, (0, 0), 2.0, dst=scratch("challenge.dot_energy.blur", ir.shape, np.float32))
    np.subtract(x, blur, out=blur)
    if mask is not None:
        return float(np.std(blur[mask]))
    return float(inplace.std(blur, x))


@dataclass(frozen=True)
class SequenceResult:
    """One challenge's verdict. ``checked``: frames compared; ``late_edges``: edges that landed one
    frame after the lag; ``separation``: d' of the projector's energies, or the weakest screen
    channel's response over its noise; ``measurable``: false when the response was too weak to tell
    (strong ambient light), as opposed to a response that contradicts the sequence."""

    kind: Kind
    passed: bool
    lag_frames: int
    checked: int
    mismatches: int
    late_edges: int
    separation: float
    detail: str
    measurable: bool = True
    # The projector's energies followed the schedule the wrong way round (a clipped IR image: its
    # lit frames are the low ones); not in ``to_dict``, the detail says it.
    inverted: bool = False
    # The detail before a rule of the room's light relabelled this failure (``explain_flicker``): "contradicted,
    # then relabelled as a glint" stays in the verdict's evidence and the audit record (``relabelled_code``);
    # an injector that draws its own hump over a missed edge changes the label, never the contradiction's record.
    relabelled_from: str = ""

    @property
    def agreement(self) -> float:
        return 1.0 - self.mismatches / self.checked if self.checked else 0.0

    def to_dict(self) -> dict[str, Any]:
        sep = round(self.separation, 2) if np.isfinite(self.separation) else None
        return {"passed": self.passed, "agreement": round(self.agreement, 3), "lag_frames": self.lag_frames,
                "checked": self.checked, "mismatches": self.mismatches, "late_edges": self.late_edges,
                "separation": sep, "measurable": self.measurable, "detail": self.detail,
                **({"relabelled_from": self.relabelled_from} if self.relabelled_from else {})}

    def relabelled(self, detail: str) -> SequenceResult:
        """This failure relabelled not measurable as ``detail``, its own detail kept as ``relabelled_from``."""
        return replace(self, detail=detail, measurable=False, inverted=False,
                       relabelled_from=self.relabelled_from or self.detail)


def _settled(expected: np.ndarray, edge_frames: int = 1) -> np.ndarray:
    """Frames whose expected state is certain: not the first frame (the state before the window is
    unknown) and not the first ``edge_frames`` frames of a run or step: the first, where the edge may
    still be one frame late; with 2 (the illumination's ``ILLUMINATION_EDGE_FRAMES``) the second too,
    where a late edge's frame may hold a blend of the two states (:func:`_unblended`)."""
    care = np.ones(len(expected), bool)
    if not len(expected):
        return care
    if expected.ndim == 1:
        edge = np.r_[True, expected[1:] != expected[:-1]]
    else:
        edge = np.r_[True, np.any(expected[1:] != expected[:-1], axis=1)]      # the window's start is one
    for d in range(edge_frames):
        care[d:] &= ~edge[:len(edge) - d]
    return care


def allowed_mismatches(checked: int) -> int:
    return checked // FRAMES_PER_ALLOWED_MISMATCH


def _dprime(a: np.ndarray, b: np.ndarray) -> float:
    """(mean of ``a`` - mean of ``b``) over the pooled standard deviation of the groups that have one
    (a short window may hold a single settled frame of one state): ``np.mean`` and ``np.var(ddof=1)``
    worked out with their own sums (the same numbers, to the bit), without their machinery."""
    na, nb = a.size, b.size
    if na < 1 or nb < 1 or na + nb < 4:
        return 0.0
    ma, mb = np.add.reduce(a) / na, np.add.reduce(b) / nb
    spreads = [np.add.reduce(np.square(g - m)) / (k - 1) for g, m, k in ((a, ma, na), (b, mb, nb)) if k >= 2]
    pooled = np.sqrt(np.add.reduce(np.asarray(spreads)) / len(spreads))
    # A floor on the spread: a perfectly repeatable energy (no sensor noise) must not divide by ~0.
    pooled = max(pooled, 1e-3 * max(abs(ma), abs(mb), 1e-6))
    return float((ma - mb) / pooled)


def _lags(max_lag: int, n: int) -> np.ndarray:
    """The lags compared: 0..``max_lag`` while ``MIN_COMPARED`` frames are left."""
    return np.array([lag for lag in range(max_lag + 1) if n - lag >= MIN_COMPARED], dtype=np.intp)


def verify_projector(schedule: Sequence[bool], energies: Sequence[float] | np.ndarray, *,
                     max_lag: int = PROJECTOR_MAX_LAG,
                     min_separation: float = PROJECTOR_MIN_SEPARATION) -> SequenceResult:
    """Did the IR frames follow the projector schedule? ``energies[k]`` is frame k's dot energy.

    The frames are split on/off by their own energies (at the geometric middle of the 10th and
    90th percentiles, in a dark window of the levels around each frame: :func:`projector_states`; no
    knowledge of the schedule goes into the split). At the best lag every
    settled frame (see :func:`_settled`) must agree with the schedule, but for one per
    ``FRAMES_PER_ALLOWED_MISMATCH``, and the energies grouped by the schedule must differ by
    ``min_separation`` pooled standard deviations. In sunlight the dots add little energy but add
    it on every scheduled frame, so d' stays large; a stream that ignores the schedule gives d' near
    0 whatever its brightness.

    A window that fails is ``measurable`` (a contradiction: the judge's attack) unless the ambient
    light hid the dots (not measurable: inconclusive, never live, whatever the stream): the energies
    follow the schedule the wrong way round (lit frames lower: a clipped IR image, ``CLIPPED_DETAIL``;
    :func:`_inverse_mismatches`), or they do not switch above their own noise at all, schedule or
    not (``DROWNED_DETAIL``; :func:`_changes`, the illumination's test), or they change on the
    schedule's edges and nowhere else while their levels drift by as much as the dots' step (direct
    sun, ``DRIFTED_DETAIL``; :func:`_steps_follow`). The pass rule does not look at any of them
    (docs/liveness.md, *A drowned projector*, *Dots stepping under the sun's drift*).

    Every lag is worked out at once (the server runs this for every probe): row ``l`` of the
    (lags, frames) arrays holds frame ``lag + k`` of the stream against frame ``k`` of the
    schedule, for the ``n - lag`` frames compared at that lag; the frames after them are masked.
    Only d' is summed lag by lag, on each lag's own groups (:func:`_dprime`)."""
    kind = Kind.PROJECTOR
    e = np.asarray(energies, dtype=np.float64)
    n = min(len(e), len(schedule))
    if n < MIN_FRAMES or not np.all(np.isfinite(e[:n])):
        return SequenceResult(kind, False, 0, 0, 0, 0, 0.0, PROJECTOR_UNMEASURED_DETAIL)
    e = e[:n]
    lags = _lags(max_lag, n)
    if not lags.size:
        return SequenceResult(kind, False, 0, 0, 0, 0, 0.0, PROJECTOR_FEW_FRAMES_DETAIL)
    sched = np.asarray(schedule[:n], dtype=bool)
    k = np.arange(n)
    inside = k < (n - lags)[:, None]                  # (lags, n): frame k of the schedule is compared
    at = np.minimum(lags[:, None] + k, n - 1)
    o, el = projector_states(e)[at], e[at]            # the stream's frame shown against frame k
    care = _settled(sched) & inside                   # settledness looks only backwards: a prefix per lag
    mism = np.count_nonzero((o != sched) & care, axis=1)
    checked = np.count_nonzero(care, axis=1)
    # Edges (frame k unlike k - 1) whose frame still showed the old state: landed one frame late.
    late = np.count_nonzero((sched[1:] != sched[:-1]) & inside[:, 1:] & (o[:, 1:] == sched[:-1]), axis=1)
    on, off = care & sched, care & ~sched
    sep = np.array([_dprime(el[i][on[i]], el[i][off[i]]) for i in range(lags.size)])
    ok = (mism <= checked // FRAMES_PER_ALLOWED_MISMATCH) & (sep >= min_separation)
    # The lag that has the edges on time is the lag (the first of equal keys).
    keys = [(bool(ok[i]), -int(mism[i]), -int(late[i]), float(sep[i])) for i in range(lags.size)]
    i = max(range(lags.size), key=lambda j: (keys[j], -j))
    passed = keys[i][0]
    measurable, inverted = True, False
    if passed:
        detail = "IR frames follow the projector schedule"
    elif np.any((_inverse_mismatches(e, o, sched, at, care) <= checked // FRAMES_PER_ALLOWED_MISMATCH)
                & (sep <= -min_separation)):
        # The schedule followed the wrong way round at some lag: every settled frame clearly in the
        # other state, the energies grouped by the schedule as far apart as a pass needs. The
        # projector's light took dot energy away, which only an IR image clipped by ambient light
        # does (the added light saturates what texture was left): the camera obeyed, its dots
        # cannot be seen. Inconclusive, never live (docs/liveness.md, *A drowned projector*).
        measurable, inverted, detail = False, True, CLIPPED_DETAIL
    elif not _changes(e[:, None], min_separation):
        measurable, detail = False, DROWNED_DETAIL
    elif stepped := [int(lag) for lag in lags if _steps_follow(e, sched, int(lag), min_separation)]:
        # The energies step at every edge of the schedule, the right way, and nowhere else, but the
        # levels drift (a face swaying under a shadow edge in direct sun): the camera obeyed, the
        # dots' step is no larger than the ambient's own wander, so the levels cannot be split.
        # Where the ambient's own level is well under the dots' step, its drift (not its level) hid
        # them: a passing light, which a pause and a retry outlast (``SWEPT_DETAIL``; prompt only).
        measurable = False
        detail = SWEPT_DETAIL if _ambient_under_step(e, sched, stepped[0]) else DRIFTED_DETAIL
    else:
        detail = PROJECTOR_CONTRADICTED_DETAIL
    return SequenceResult(kind, passed, int(lags[i]), int(checked[i]), int(mism[i]), int(late[i]), float(sep[i]),
                          detail, measurable, inverted)


def _steps_follow(e: np.ndarray, sched: np.ndarray, lag: int, min_separation: float) -> bool:
    """Do the energies' *changes* follow the schedule at ``lag``, whatever their levels do? Every
    edge of the schedule (its first frame at the lag, or one frame late, as the pass allows) must
    change the energy the commanded way by at least half the window's median edge step (the change
    across the edge's uncertain frame: from the frame before it to the frame after it), every
    change between two consecutive settled frames of one run must stay under that half step, and
    the median step must stand ``2 * min_separation`` noise deviations above the changes within
    runs (the noise as :func:`_changes` reads it, from their median). One violation per
    ``FRAMES_PER_ALLOWED_MISMATCH`` compared frames, as the pass allows. A stream that does not know
    the schedule puts its own changes inside the runs or misses the edges: this holds for it about
    as often as the pass (``python -m bench.challenge_stats blind-outcomes``). Only a failed window
    is asked: it makes the window not measurable, never passed."""
    n = len(e) - lag
    s, x = sched[:n], e[lag:lag + n]
    edges = np.flatnonzero(s[1:] != s[:-1]) + 1                      # frame k of the schedule unlike k - 1
    care = _settled(s)
    within = np.flatnonzero(care[1:] & care[:-1]) + 1                 # k and k - 1 both settled: one run
    if edges.size < 2 or within.size < 2:
        return False
    after = np.minimum(edges + 1, n - 1)
    step = (x[after] - x[edges - 1]) * np.where(s[edges], 1.0, -1.0)  # positive when the commanded way
    d = np.abs(x[within] - x[within - 1])
    half = float(np.median(step)) / 2
    noise = 1.4826 * float(np.median(d)) / np.sqrt(2.0)
    if not half > 0 or not 2 * half > 2 * min_separation * max(noise, 1e-6 * float(np.mean(np.abs(x)))):
        return False
    wrong = np.count_nonzero(step < half) + np.count_nonzero(d >= half)
    return bool(wrong <= allowed_mismatches(int(np.count_nonzero(care))))


def _ambient_under_step(e: np.ndarray, sched: np.ndarray, lag: int,
                        share: float = SWEPT_LEVEL_SHARE) -> bool:
    """In a window :func:`_steps_follow` holds for at ``lag``: is the unlit frames' mean energy (the
    ambient's own level, settled frames) under ``share`` of the dots' median edge step (the change
    across each edge, from the frame before it to the frame after it, the commanded way)? Direct
    sun: the dots step ~0.3 on ~8 (eighth/bona_fide/live/34), no; a car's headlamps at night: they
    step ~5.4 on unlit frames at 0-0.4 (twelfth/bona_fide/live/95), yes."""
    n = len(e) - lag
    s, x = sched[:n], e[lag:lag + n]
    edges = np.flatnonzero(s[1:] != s[:-1]) + 1
    unlit = _settled(s) & ~s
    if not edges.size or not np.any(unlit):
        return False
    after = np.minimum(edges + 1, n - 1)
    step = float(np.median((x[after] - x[edges - 1]) * np.where(s[edges], 1.0, -1.0)))
    return bool(step > 0 and float(np.mean(x[unlit])) < share * step)


def _inverse_mismatches(e: np.ndarray, o: np.ndarray, sched: np.ndarray, at: np.ndarray,
                        care: np.ndarray) -> np.ndarray:
    """Per lag (the rows of ``o``, ``at`` and ``care`` in :func:`verify_projector`), the settled
    frames that contradict the schedule read the wrong way round (lit frames low): frames whose
    state ``o`` equals the schedule's, counted only where the energy lies clearly at one level,
    within a quarter of the span between the 10th and 90th percentiles from either end. Frames in
    the middle half of the span (an exposure settling between the levels) are not counted: a clean
    two-level stream has none there, so a blind stream matches the schedule inverted about as
    often as it passes (``python -m bench.challenge_stats blind-outcomes``)."""
    f = np.sort(e)
    lo, hi = _percentile(f, 10), _percentile(f, 90)
    quarter = (hi - lo) / 4
    clear = (e <= lo + quarter) | (e >= hi - quarter)
    return np.count_nonzero((o == sched) & care & clear[at], axis=1)


DRIFT_TERMS = 3                   # the face's own light over the window: a cubic in time


def _drift(t: np.ndarray, terms: int = DRIFT_TERMS) -> np.ndarray:
    """Columns 1, t, t^2, t^3 (t in -1..1; a row of ``t`` per lag gives a stack): the room light on
    a face that moves, slowly."""
    u = 2 * t - 1
    return np.stack([u ** p for p in range(terms + 1)], axis=-1)


_EPS = float(np.finfo(np.float64).eps)


def _fit_channels(y: np.ndarray, drift: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Least squares ``y[:, c] ~ drift + g x[:, c]`` for the three channels at once, on the settled
    frames (``drift``: their rows of :func:`_drift`): (3, terms) rows of the drift coefficients, then
    g. The minimum-norm solution, singular values at or below ``eps * max(rows, terms)`` of the largest
    dropped: what ``np.linalg.lstsq(rcond=None)`` returns per channel, from one stacked SVD."""
    k, d = drift.shape
    a = np.empty((3, k, d + 1))
    a[:, :, :d] = drift
    a[:, :, d] = x.T
    u, sv, vt = np.linalg.svd(a, full_matrices=False)
    keep = sv > _EPS * max(k, d + 1) * sv[:, :1]
    inv = np.divide(1.0, sv, out=np.zeros_like(sv), where=keep)
    uty = np.einsum("cki,kc->ci", u, y)
    return np.einsum("cij,ci->cj", vt, inv * uty)


def _fit_shared(y: np.ndarray, drift: np.ndarray, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The face's own light as ONE drift shape shared by the three channels, each with its own scale,
    plus a gain per channel times its commanded channel, on the settled frames (``drift``: their rows
    of :func:`_drift`): (3, terms) rows of [offset, scale x the shape's coefficients], then the gain, in
    :func:`_fit_channels`' layout.

    The shape: the channels' variation that the commanded colours (all three, so the panel's crosstalk
    between channels does not enter it) and the offsets leave, each channel in units of its own noise
    (``scale``), fitted by the drift's terms and cut to its best rank-one part (a reduced-rank
    regression: the first right singular vector of the fitted values). Then per channel, least
    squares of the offset, the shape's scale and the gain (``np.linalg.lstsq``, minimum norm)."""
    k, d = drift.shape
    z = np.empty((k, 4))
    z[:, 0] = 1.0
    z[:, 1:] = x
    p = drift[:, 1:]

    def partial(a: np.ndarray) -> np.ndarray:
        return a - z @ np.linalg.lstsq(z, a, rcond=None)[0]
    yt, pt = partial(y / scale[None, :]), partial(p)
    b = np.linalg.lstsq(pt, yt, rcond=None)[0]                    # (terms - 1, 3)
    v = np.linalg.svd(pt @ b, full_matrices=False)[2][0]           # the shared direction across channels
    shape = b @ v                                                  # the shape's coefficients on the terms
    out = np.zeros((3, d + 1))
    cols = np.empty((k, 3))
    cols[:, 0] = 1.0
    cols[:, 1] = p @ shape
    for ch in range(3):
        cols[:, 2] = x[:, ch]
        a, s, g = np.linalg.lstsq(cols, y[:, ch], rcond=None)[0]
        out[ch, 0], out[ch, 1:d], out[ch, d] = a, s * shape, g
    return out


def _change_gains(care: np.ndarray, yy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(3,) the step check's gain per channel at one lag (:func:`_unsteady`): least squares of the
    face's change on the commanded channel's change between consecutive compared frames."""
    idx = np.flatnonzero(care)
    if idx.size < 2:
        return np.zeros(3)
    dy = yy[idx[1:]] - yy[idx[:-1]]
    dx = x[idx[1:]] - x[idx[:-1]]
    moved = np.einsum("kc,kc->c", dx, dx)
    return np.divide(np.einsum("kc,kc->c", dy, dx), moved, out=np.zeros(3), where=moved > 0)


def _unsteady(care: np.ndarray, yy: np.ndarray, x: np.ndarray, levels: int, crosstalk: float,
              noise: np.ndarray | None = None, step_noise: float | None = None,
              blended: np.ndarray | None = None, sid: np.ndarray | None = None,
              blend_fixed: bool = False) -> np.ndarray:
    """(lags, frames): compared frames (settled, with a face) whose change of colour since the
    compared frame before them (frames between not compared: an edge's uncertain frame, no face) is
    not the commanded change.

    Per lag and channel the gain is measured on the changes themselves: least squares of the face's
    change on the commanded channel's change over the lag's pairs (the face's own light moves little
    between frames one or two apart, so no drift is fitted and none can bend the steps). A frame
    fails when on some channel the change into it lies outside the gain times the commanded change,
    widened by the panel's crosstalk (the other screen channels' changes reaching this camera channel
    together at 0 to ``crosstalk`` times its gain per unit of their largest change, in that change's
    direction), by more than half a level's step of the gain, or, where wider, ``step_noise`` times
    the noise of a difference of two frames (``noise``: the lag's one-frame noise per channel, times
    sqrt(2)). So a full step of change where none was commanded, or none where one was, is refused
    whatever the other channels did, as long as the gain is at least ``2 * sqrt(2) * step_noise``
    times the noise; below that (bright light) noise alone does not refuse a genuine frame. Every
    compared frame but the first of a lag whose gains are not all positive fails.

    ``blended`` (lags, frames; with ``sid``, each frame's step): frames not compared that may hold a
    blend of the two steps either side of an edge (:func:`_unblended`), checked here with the same
    tolerance (``blend_fixed``: half a level's step of the gain alone, whatever the noise); a failure
    counts on the compared frame after it."""
    nl, n = care.shape
    out = np.zeros((nl, n), bool)
    for i in range(nl):
        idx = np.flatnonzero(care[i])
        if idx.size < 2:
            continue
        dy = yy[i, idx[1:]] - yy[i, idx[:-1]]
        dx = x[idx[1:]] - x[idx[:-1]]
        moved = np.einsum("kc,kc->c", dx, dx)
        g = np.divide(np.einsum("kc,kc->c", dy, dx), moved, out=np.zeros(3), where=moved > 0)
        if not np.all(g > 0):
            out[i, idx[1:]] = True
            continue
        # The largest rise and fall among the other channels (their crosstalk together is at most
        # ``crosstalk`` of this channel's gain per unit of change).
        rise, fall = np.maximum(dx, 0.0), np.minimum(dx, 0.0)
        up = np.stack([np.maximum(rise[:, 1], rise[:, 2]), np.maximum(rise[:, 0], rise[:, 2]),
                       np.maximum(rise[:, 0], rise[:, 1])], axis=1)
        down = np.stack([np.minimum(fall[:, 1], fall[:, 2]), np.minimum(fall[:, 0], fall[:, 2]),
                         np.minimum(fall[:, 0], fall[:, 1])], axis=1)
        own = dy - g * dx
        half = tol = g / (levels - 1) / 2
        if noise is not None and step_noise is not None:
            tol = np.maximum(tol, step_noise * math.sqrt(2.0) * noise[i])
        with np.errstate(invalid="ignore"):
            beyond = np.maximum(own - crosstalk * g * up, crosstalk * g * down - own)
            out[i, idx[1:]] = np.any(~(beyond <= tol), axis=1)
        if blended is not None and sid is not None:
            out[i] |= _unblended(idx, np.flatnonzero(blended[i]), yy[i], sid, half if blend_fixed else tol)
    return out


def _unblended(idx: np.ndarray, mid: np.ndarray, y: np.ndarray, sid: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """(frames,): the compared frame after each frame of ``mid`` (an edge's second frame, which may
    hold a blend) that is not a blend of its neighbours. A colour camera's exposure straddling the
    screen's change sees a share a of the new colour and 1 - a of the old, the same share on every
    channel; so the change from the compared frame before it (the old step) to it must be a in 0..1
    times the change from there to the compared frame after it (the new step), within ``tol`` per
    channel (a from least squares, clipped to 0..1). Judged only where those neighbours are the steps
    either side of the edge; the whole change between them is the step check's."""
    out = np.zeros(len(sid), bool)
    if idx.size < 2 or not mid.size:
        return out
    pos = np.searchsorted(idx, mid)                          # idx[pos - 1] < mid < idx[pos]
    ok = (pos > 0) & (pos < idx.size)
    mid, pos = mid[ok], pos[ok]
    a, c = idx[pos - 1], idx[pos]
    ok = (sid[a] == sid[mid] - 1) & (sid[c] == sid[mid])
    mid, a, c = mid[ok], a[ok], c[ok]
    if not mid.size:
        return out
    whole, part = y[c] - y[a], y[mid] - y[a]
    size = np.einsum("kc,kc->k", whole, whole)
    share = np.clip(np.divide(np.einsum("kc,kc->k", part, whole), size, out=np.zeros(len(mid)), where=size > 0),
                    0.0, 1.0)
    with np.errstate(invalid="ignore"):
        bad = np.any(~(np.abs(part - share[:, None] * whole) <= tol), axis=1)
    out[c[bad]] = True
    return out


def _changes(y: np.ndarray, min_separation: float) -> bool:
    """Did the face's colour jump from frame to frame well beyond its noise, whatever the sequence?
    A screen's edge is a jump between two frames; a person moving changes the colour slowly. The
    90th percentile of a channel's frame-to-frame change (edges are a fifth of the frames) against
    twice the separation required, in units of one frame's noise (from the median change, which the
    edges do not move; pure noise reaches ~2.3 of them). A stream the screen never reached does not
    jump; a replay lit by another sequence does."""
    if len(y) < MIN_FRAMES:
        return False
    d = np.abs(np.diff(y, axis=0))
    noise = 1.4826 * np.median(d, axis=0) / np.sqrt(2.0)
    jumps = np.percentile(d, 90, axis=0)
    return bool(np.any(jumps > 2 * min_separation * np.maximum(noise, 1e-6 * np.abs(np.mean(y, axis=0)))))


_BITS = np.array([4, 2, 1])


def step_layout(steps: Sequence[Step]) -> tuple[np.ndarray, np.ndarray]:
    """The sequence frame by frame: each frame's commanded (R, G, B) and the index of its step."""
    frames = steps[-1].start + steps[-1].frames
    expected = np.zeros((frames, 3))
    step_of = np.zeros(frames, int)
    for j, st in enumerate(steps):
        expected[st.start:st.start + st.frames] = st.rgb
        step_of[st.start:st.start + st.frames] = j
    return expected, step_of


def _late_edges(steps: Sequence[Step], y: np.ndarray, m: int, gains: np.ndarray) -> tuple[int, ...]:
    """The steps whose edge may have landed one frame late with a BLEND on the step's second frame, at
    one lag (``y``: the face's colour against the sequence's frames, the first ``m`` compared;
    ``gains``: the lag's fitted gain per channel): a step whose second frame shows less than
    ``LATE_SHARE`` of the change from the frame before the step (the old colour; the window's first
    frame for the first step, the state before the window) to its third frame (the new colour; where
    the window ends on the second frame, the old colour plus the gains times the commanded change),
    where that change is at least half the gain on some channel (a change the screen made). A
    genuine edge on time has its blend, if any, on the step's first frame and its second frame new;
    one frame late, the first frame old and the second the blend."""
    hit: list[int] = []
    for j, st in enumerate(steps):
        s = st.start
        if st.frames < 2 or s + 1 >= m or (s + 2 >= m and not j):
            continue
        old, mid = y[s - 1 if j else 0], y[s + 1]
        if s + 2 < m and st.frames >= 3:
            whole = y[s + 2] - old
        else:       # the window ends on the step's second frame: the new colour by the gains
            whole = gains * (np.asarray(st.rgb) - np.asarray(steps[j - 1].rgb))
        if not (np.all(np.isfinite(whole)) and np.all(np.isfinite(mid))) or not np.any(np.abs(whole) >= gains / 2):
            continue
        if float(np.dot(mid - old, whole)) < LATE_SHARE * float(np.dot(whole, whole)):
            hit.append(j)
    return tuple(hit)


def _shifted(steps: Sequence[Step], late: tuple[int, ...]) -> tuple[Step, ...]:
    """The sequence with each step of ``late`` starting one frame later (the step before it one
    frame longer): its edge's first frame is then the old colour's, its second the edge's own."""
    out = list(steps)
    for j in late:
        st = out[j]
        if j:
            prev = out[j - 1]
            out[j - 1] = Step(prev.start, prev.frames + 1, prev.rgb)
        out[j] = Step(st.start + 1, st.frames - 1, st.rgb)
    return tuple(out)


def _light_without_a_channel(a: np.ndarray) -> bool:
    """Is the unit direction ``a`` a room light's colour with one channel at zero (an amber beacon: red
    and green, no blue)? Every component above ``-LIGHT_CHANNEL_FLOOR`` (the zero channel's estimate
    is noise around 0), and its second-largest component more than ``ILLUMINATION_CROSSTALK`` times its
    largest: one screen channel's step reaches the others by at most that share (the panel's
    crosstalk), so a direction within it (a red lamp alone) may be the screen's and stays a
    contradiction (docs/liveness.md, *A beacon's flashes and a failing tube's steps*)."""
    top = np.sort(a)[::-1]
    return bool(np.all(a > -LIGHT_CHANNEL_FLOOR) and top[1] > ILLUMINATION_CROSSTALK * top[0])


def _flashes(steps: np.ndarray, inside: np.ndarray, floor: float) -> bool:
    """A flash of the room's light inside one screen step: a frame whose room light (``steps``: its
    change between consecutive compared frames; ``inside``: those of one screen step, the frames
    adjacent) jumped by ``floor`` or more and came back by ``floor`` or more at the next frame, to
    within half the smaller jump of where it was. The screen holds every colour for at least
    ``ILLUMINATION_STEPS[0]`` (3) framesets, so a one-frame excursion inside a step is not a screen's
    edge, a blind stream's own included (an amber beacon's 7-35 ms flash; docs/liveness.md, *A
    beacon's flashes and a failing tube's steps*)."""
    a, b = steps[:-1], steps[1:]
    both = inside[:-1] & inside[1:]
    return bool(np.any(both & (a * b < 0) & (np.minimum(np.abs(a), np.abs(b)) >= floor)
                       & (np.abs(a + b) < np.minimum(np.abs(a), np.abs(b)) / 2)))


def _room_direction(d: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The room light's colour direction on the face from ``d``, the face's changes between consecutive
    compared frames of one screen step (the screen's colour the same in both): the changes' first right
    singular vector, its sign making the channels' sum positive, when it is a light's (every component
    positive, or one at zero: :func:`_light_without_a_channel`); else None. With it the (3, 3) right
    singular vectors (rows: the first, then the plane across it)."""
    _, _, vt = np.linalg.svd(d, full_matrices=False)
    vt = vt * (1.0 if vt[0].sum() >= 0 else -1.0)
    a = vt[0]
    return (a if np.all(a > 0) or _light_without_a_channel(a) else None), vt


def _across(yl: np.ndarray, x: np.ndarray, idx: np.ndarray, a: np.ndarray, degree: int = DRIFT_TERMS
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The face's colour across the unit direction ``a`` (each frame free to hold any amount of the room's
    light along it; or across the plane of ``a``'s two orthonormal rows, :func:`_room_colours`), fitted on
    the compared frames ``idx`` as a drift per channel (of ``degree`` in time: a cubic by default) plus a
    gain per channel times the commanded channel (``x``): least squares of ``P (o(t_k) + G x_k)``,
    ``P = I - a a^T``. Returns ``P``, every frame projected (``yl @ P``), the gains (3,) and the drift
    ``o(t_k)`` (m, 3) on every frame, in full colour."""
    m = len(yl)
    u = np.atleast_2d(a)                                        # (1, 3), or (2, 3): a plane of two room colours
    proj = np.eye(3) - u.T @ u
    z = yl @ proj
    every = _drift(np.arange(m) / m, degree)                    # (m, terms)
    drift = every[idx]                                          # (k, terms)
    terms = drift.shape[1]
    # z_k = P (o(t_k) + G * x_k): unknowns, the drift's terms per channel then the gains.
    rows = np.zeros((idx.size, 3, 3 * terms + 3))
    for ch in range(3):
        rows[:, :, ch * terms:(ch + 1) * terms] = proj[None, :, ch, None] * drift[:, None, :]
        rows[:, :, 3 * terms + ch] = proj[None, :, ch] * x[idx, ch][:, None]
    coef = np.linalg.lstsq(rows.reshape(-1, 3 * terms + 3), z[idx].reshape(-1), rcond=None)[0]
    base = np.einsum("kt,ct->kc", every, coef[:3 * terms].reshape(3, terms))       # (m, 3) o(t_k)
    return proj, z, coef[3 * terms:], base


_LagWindow = tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _lag_windows(steps: Sequence[Step], y: np.ndarray, max_lag: int) -> Iterator[_LagWindow]:
    """The lags the room-light rules compare (:func:`_ambient_explained`, :func:`_room_plane`): per lag with
    ``MIN_COMPARED`` settled frames with a face and every step so settled with one, (lag, the face's
    colour from the lag on, the commanded colours, each frame's step, the compared frames, the pairs of
    consecutive compared frames of one step)."""
    expected, sid = step_layout(steps)
    n = min(len(y), len(expected))
    if n < MIN_FRAMES:
        return
    settled = _settled(expected)[:n]
    finite = np.all(np.isfinite(y[:n]), axis=1)
    member = sid[:n, None] == np.arange(len(steps))
    for lag in _lags(max_lag, n):
        m = n - int(lag)
        yl, x, s = y[lag:lag + m], expected[:m], sid[:m]
        care = settled[:m] & finite[lag:lag + m]
        if np.count_nonzero(care) < MIN_COMPARED or np.any((settled[:m] @ member[:m] > 0) & (care @ member[:m] == 0)):
            continue                                            # a step with no face compared
        yield int(lag), yl, x, s, care, care[1:] & care[:-1] & (s[1:] == s[:-1])


def _full_window(steps: Sequence[Step], y: np.ndarray) -> bool:
    """Does the window hold at least ``ROOM_PLANE_MIN_FRAMES`` framesets of the sequence (the kiosk's full window:
    the plane path and the flash frames read no shorter one)?"""
    return min(len(y), sum(st.frames for st in steps)) >= ROOM_PLANE_MIN_FRAMES


def _room_plane(steps: Sequence[Step], y: np.ndarray, max_lag: int, min_separation: float, step_noise: float,
                step_spread: float, crosstalk: float) -> SequenceResult | None:
    """The screen read in the plane across the room's light (``ILLUMINATION_ROOM_PLANE``): a passing
    result, or None. At some lag:

    * a window of at least ``ROOM_PLANE_MIN_FRAMES`` framesets (the kiosk's; None for a shorter one);
    * the room light's direction ``a`` from the face's changes within the screen's steps
      (:func:`_room_direction`, at least ``ROOM_PLANE_PAIRS`` of them), and the face's colour fitted
      across it (:func:`_across`): every gain positive;
    * the plane's noise per direction (its two axes: the within-step changes' second and third singular
      directions) from the within-step changes across ``a``: their RMS, at most ``step_spread`` times the
      noise their median implies (the full path's step-check noise); every distance below in those units;
    * every compared step's commanded colour separated, in the plane, from each other palette colour by
      ``min_separation`` (with ``a`` near the screen's white, black and white coincide; near a primary,
      that channel is lost: such a step carries less than its 3 bits and the lag does not pass), and
      at least ``ROOM_PLANE_MIN_BITS`` bits (3 per compared step);
    * every compared frame decoded (nearest palette colour in the plane) to its commanded colour, and
      every change between consecutive compared frames the commanded change in the plane, within half
      the smallest separation or ``step_noise`` x sqrt(2) of the noise (the wider), widened at an edge by
      the panel's ``crosstalk``: but for one frame per ``FRAMES_PER_ALLOWED_MISMATCH``, every step with
      a compared face;
    * the room's light along ``a`` moved over the compared frames by at least half the gain on some
      channel (a real excursion: what made the full-colour verifier refuse)."""
    if not _full_window(steps, y):
        return None                                             # a short window: the full path alone
    palette = ((np.arange(8)[:, None] & _BITS) > 0).astype(np.float64)      # row c: the colour coded c
    finite = np.all(np.isfinite(y), axis=1)
    found: list[tuple[int, int, int, SequenceResult]] = []
    for lag, yl, x, s, care, pair in _lag_windows(steps, y, max_lag):
        m = len(yl)
        checked = int(np.count_nonzero(care))
        if 3 * len(np.unique(s[care])) < ROOM_PLANE_MIN_BITS:
            continue
        if np.count_nonzero(pair) < ROOM_PLANE_PAIRS:
            continue
        d = (yl[1:] - yl[:-1])[pair]
        a, vt = _room_direction(d)
        if a is None:
            continue
        idx = np.flatnonzero(care)
        proj, _, gains, base = _across(yl, x, idx, a, ROOM_PLANE_DRIFT_DEGREE)
        if not np.all(gains > 0):
            continue
        basis = vt[1:].T                                        # (3, 2): the plane across a
        w = d @ basis
        rms = np.sqrt(np.mean(w * w, axis=0) / 2.0)
        med = 1.4826 * np.median(np.abs(w), axis=0) / math.sqrt(2.0)
        level = float(np.linalg.norm(np.mean(yl[idx], axis=0)))
        sigma = np.maximum(np.minimum(rms, step_spread * med), 1e-6 * max(level, 1e-6))
        pts = ((gains * palette) @ basis) / sigma               # (8, 2) the palette in the plane, noise units
        dist = np.linalg.norm(pts[:, None] - pts[None], axis=2) + np.diag(np.full(8, np.inf))
        code = (x[idx] > 0.5) @ _BITS
        sep = float(np.min(dist[np.unique(code)]))
        if sep < min_separation:
            continue                                            # a step's colour not told from another
        every = ((yl - base) @ basis) / sigma                   # the face less its drift, in the plane
        decoded = np.argmin(np.linalg.norm(every[:, None] - pts[None], axis=2), axis=1)
        obs = every[idx]
        wrong = decoded[idx] != code
        # Edges whose first frame still shows the old colour (as the full path's ``late``): the lag
        # where the edges land on time is preferred.
        starts = np.array([st.start for st in steps[1:] if st.start < m], dtype=np.intp)
        coded = (x > 0.5) @ _BITS
        late = int(np.count_nonzero(finite[lag + starts] & (decoded[starts] == coded[starts - 1]))) if starts.size \
            else 0
        moved = np.diff(obs, axis=0)
        want = pts[code[1:]] - pts[code[:-1]]
        dx = x[idx[1:]] - x[idx[:-1]]
        other = np.stack([np.any(dx[:, [1, 2]] != 0, axis=1), np.any(dx[:, [0, 2]] != 0, axis=1),
                          np.any(dx[:, [0, 1]] != 0, axis=1)], axis=1)       # another channel changed
        widen = crosstalk * ((other * gains) @ np.abs(basis)) / sigma
        tol = max(sep / 2, step_noise * math.sqrt(2.0))
        unsteady = np.any(np.abs(moved - want) > tol + widen, axis=1)
        bad = wrong.copy()
        bad[1:] |= unsteady
        allowed = checked // FRAMES_PER_ALLOWED_MISMATCH
        room = (yl[idx] - gains * x[idx]) @ a                   # the room's light along a
        real = bool(np.any(float(np.ptp(room)) * a >= gains / 2))
        if int(np.count_nonzero(bad)) <= allowed and real:
            found.append((int(np.count_nonzero(bad)), late, int(lag),
                          SequenceResult(Kind.ILLUMINATION, True, int(lag), checked, int(np.count_nonzero(bad)), late,
                                         sep, PLANE_PASSED)))
    return min(found, key=lambda f: (f[0], f[1], f[2]))[3] if found else None


def _median_noise(d: np.ndarray, level: float) -> np.ndarray:
    """(3,) one frame's noise per channel from ``d``, absolute changes between pairs of frames (k, 3): 1.4826 x
    their median, over sqrt 2 (a few large changes, a flash's or an edge's, do not move it); at least 1e-6 of
    ``level``."""
    return np.maximum(1.4826 * np.median(d, axis=0) / math.sqrt(2.0), 1e-6 * max(level, 1e-6))


def _flash_frames(y: np.ndarray) -> np.ndarray:
    """(n,) the frames a flashing light lit: runs of 1..``FLASH_LONGEST`` frames with a face, each frame of the
    run brighter than BOTH frames either side (with faces) by ``FLASH_RISE`` times the noise on some channel
    and darker than neither by more than ``FLASH_DIP`` times it on any: light added for a frame or two and
    taken away (a screen holds every colour for at least ``ILLUMINATION_STEPS[0]`` framesets, so its edge is
    no such bump). The noise per channel from the stream alone: 1.4826 x the median absolute change between
    consecutive frames, over sqrt(2). A function of the face's colours only (not of the sequence, a lag or a
    fit): see ``ILLUMINATION_FLASH_FRAMES``."""
    n = len(y)
    out = np.zeros(n, bool)
    finite = np.all(np.isfinite(y), axis=1)
    both = finite[1:] & finite[:-1]
    if n < 3 or not np.any(both):
        return out
    sigma = _median_noise(np.abs(y[1:] - y[:-1])[both], float(np.mean(np.abs(y[finite]))))
    for r in range(1, FLASH_LONGEST + 1):
        for k in range(1, n - r):
            if not np.all(finite[k - 1:k + r + 1]):
                continue
            top = np.maximum(y[k - 1], y[k + r])
            run = y[k:k + r]
            if np.all(run >= top - FLASH_DIP * sigma) and np.all(np.any(run > top + FLASH_RISE * sigma, axis=1)):
                out[k:k + r] = True
    return out


def step_floors(yl: np.ndarray, s: np.ndarray, care: np.ndarray, pair: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One lag's step floors (:func:`_step_floor`; ``yl``, ``s``, ``care``, ``pair`` as :func:`_lag_windows` yields
    them): the compared frames of each compared step (steps, frames) bool, each step's floor (steps, 3: per channel
    the least value over them) and the noise (3,) per channel (:func:`_median_noise` of the changes between
    consecutive compared frames of one step). ``bench.floor_search`` reads them too."""
    ids = np.unique(s[care])
    member = care[None, :] & (s[None, :] == ids[:, None])                   # (steps, frames)
    floor = np.min(np.where(member[:, :, None], yl[None], np.inf), axis=1)   # (steps, 3)
    sigma = _median_noise(np.abs(yl[1:] - yl[:-1])[pair], float(np.linalg.norm(np.mean(yl[care], axis=0))))
    return member, floor, sigma


def floor_levels(floor: np.ndarray, cmd: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The off and on levels (3,) each of the step floors ``floor`` (steps, 3) commanded ``cmd`` (steps, 3) bool:
    per channel the medians of the floors commanded off and on; None when a channel is never both."""
    if not np.all(np.any(cmd, axis=0) & np.any(~cmd, axis=0)):
        return None
    return (np.array([np.median(floor[~cmd[:, ch], ch]) for ch in range(3)]),
            np.array([np.median(floor[cmd[:, ch], ch]) for ch in range(3)]))


def _step_floor(steps: Sequence[Step], y: np.ndarray, max_lag: int, min_separation: float) -> SequenceResult | None:
    """The screen read in each step's darkest frame (``ILLUMINATION_STEP_FLOOR``): a passing result, or None. At
    some lag (the smallest that passes):

    * a window of at least ``ROOM_PLANE_MIN_FRAMES`` framesets (None for a shorter one), every step compared
      with a face (:func:`_lag_windows`), at least ``ROOM_PLANE_MIN_BITS`` bits (3 per compared step) and
      ``ROOM_PLANE_PAIRS`` pairs of consecutive compared frames of one step;
    * each compared step's floor: per channel the least value over its compared frames (a flash only adds
      light, so the floor is the screen's colour plus the room's steady light);
    * per channel, the off and on levels: the medians of the floors of the steps commanded off and on (both
      must occur), the gain their difference, at least ``min_separation`` times the channel's noise (1.4826 x
      the median absolute change between consecutive compared frames of one step, over sqrt 2: flashes inside
      the steps only raise it, the strict side);
    * every step's floor within half the gain of its commanded level on every channel (decoded to the
      commanded colour, and no floor beyond its level by half a gain: the step check at the steps' scale, every
      edge's change the commanded one within a gain), no mismatch allowed;
    * a light that flashed: some compared frame above its step's floor by half the gain on some channel (what
      made the full-colour verifier refuse)."""
    if not _full_window(steps, y):
        return None
    for lag, yl, x, s, care, pair in _lag_windows(steps, y, max_lag):
        ids = np.unique(s[care])
        if 3 * ids.size < ROOM_PLANE_MIN_BITS or np.count_nonzero(pair) < ROOM_PLANE_PAIRS:
            continue
        member, floor, sigma = step_floors(yl, s, care, pair)
        cmd = x[np.argmax(member, axis=1)] > 0.5                                 # (steps, 3)
        levels = floor_levels(floor, cmd)
        if levels is None:
            continue                                            # a channel never switched: its level unknown
        off, on = levels
        gain = on - off
        sep = gain / sigma
        if not np.all(sep >= min_separation):
            continue
        if np.any(np.abs(floor - np.where(cmd, on, off)) >= gain / 2):
            continue                                            # a step's floor is not its commanded colour
        lit = np.where(member[:, :, None], yl[None] - floor[:, None, :], 0.0)
        if not np.any(lit >= gain / 2):
            continue                                            # no flash: nothing for this rule to read past
        return SequenceResult(Kind.ILLUMINATION, True, int(lag), int(np.count_nonzero(care)), 0, 0,
                              float(np.min(sep)), FLOOR_PASSED)
    return None


def _ambient_explained(steps: Sequence[Step], y: np.ndarray, max_lag: int, min_separation: float) -> str | None:
    """Does an uncommanded change of the room's light explain why the face's colour contradicted the
    sequence? At some lag:

    * the face's changes between consecutive compared frames of one step (the screen's colour the same
      in both) lie mostly along one colour direction ``a`` with all three channels of one sign: the
      room's light on the face growing or falling in its own colour (a shadow passing dims every
      channel together), not a screen's colour;
    * with ``a`` removed from every frame (each frame free to have any amount of the room's light),
      the rest follows the sequence: least squares of the face's colour, across ``a``, on a cubic
      drift per channel plus a gain per channel times the commanded channel; every gain positive, each
      channel's commanded change across ``a`` at least ``min_separation`` times the noise (from the
      same within-step changes, across ``a``), and every compared frame decoded (nearest of the eight
      palette colours, across ``a``) to its commanded colour (but for one per
      ``FRAMES_PER_ALLOWED_MISMATCH``), every step with a compared face;
    * the room's light along ``a`` (the face's colour along it, less the commanded colours' share)
      moved by at least half the gain on some channel over the compared frames: enough to flip a
      channel's decoding, which is what made the verifier refuse; and over several frames: no change
      between consecutive compared frames carries more than half of that excursion (a shadow sweeps
      the face in 0.2-1 s, 6-30 frames; a screen's edge, a stream's own white or grey step included,
      is one frame's jump): ``AMBIENT_DETAIL``. Or, a pulse, ``PULSED_DETAIL``: the room's light along
      ``a`` changed, between consecutive compared frames of one step (the screen's colour the same in
      both), by at least half its largest such change and by enough to flip a channel's decoding (half
      its gain) at least ``PULSE_CHANGES`` times (a lamp under a
      fan's blades, aliased against the frame rate, moves every frame; a screen's edge, a stream's own
      white or grey one included, is one jump per edge, and a blind stream's own edges inside the
      sequence's steps are the ones or twos a search of blind streams finds: docs/liveness.md,
      *A ceiling fan's pulses*).
    A shadow at some lag is named before a pulse at another; None when nothing explains it.

    Nothing passes here: the window stays refused, as not measurable instead of as a contradiction.
    A stream that does not see the screen cannot follow the sequence across ``a`` any better than it
    follows it at all, whatever room light it adds (docs/liveness.md, *A shadow passing*)."""
    palette = np.array(PALETTE)
    why = None
    for _, yl, x, _s, care, pair in _lag_windows(steps, y, max_lag):
        checked = int(np.count_nonzero(care))
        if np.count_nonzero(pair) < 3:
            continue
        a = _room_direction((yl[1:] - yl[:-1])[pair])[0]
        if a is None:
            continue                                            # not the channels together
        idx = np.flatnonzero(care)
        proj, z, gains, base = _across(yl, x, idx, a)
        if not np.all(gains > 0):
            continue
        dz = (z[1:] - z[:-1])[pair]
        sigma = math.sqrt(float(np.sum(dz * dz)) / (2.0 * 2.0 * dz.shape[0]))   # one frame, per dimension across a
        across = gains * np.linalg.norm(proj, axis=0)           # each channel's commanded change across a
        if not np.all(across >= min_separation * max(sigma, 1e-12)):
            continue
        cand = (base[idx, None, :] + gains[None, None, :] * palette[None]) @ proj   # (k, 8, 3)
        dist = np.sum(np.square(z[idx][:, None, :] - cand), axis=2)
        code = np.array([PALETTE.index(tuple(float(v) for v in c)) for c in x[idx]])
        wrong = int(np.count_nonzero(np.argmin(dist, axis=1) != code))
        if wrong > checked // FRAMES_PER_ALLOWED_MISMATCH:
            continue
        room = yl[idx] @ a - (gains * x[idx]) @ a                # the room's light along a
        spread = float(np.ptp(room))
        if not np.any(spread * a >= gains / 2):
            continue
        jumps = np.abs(np.diff(room))
        if np.max(jumps) <= spread / 2:
            return AMBIENT_DETAIL                               # over several frames: a shadow passing
        inside = (np.diff(idx) == 1) & pair[idx[:-1]]            # consecutive compared frames of one step
        within = jumps[inside]
        # Each big enough to flip a channel's decoding on its own, and at least half the largest.
        floor = max(float(np.max(within, initial=0.0)) / 2, float(np.min(gains / (2 * a))))
        if np.count_nonzero(within >= floor) >= PULSE_CHANGES or _flashes(np.diff(room), inside, floor):
            why = PULSED_DETAIL                                 # many jumps, or a flash, inside the steps: a pulse
    return why                                                  # a shadow at any lag named first


def _room_colours(steps: Sequence[Step], y: np.ndarray, max_lag: int, min_separation: float) -> str | None:
    """Do two room lights of two colours explain why the face's colour contradicted the sequence, where one
    (:func:`_ambient_explained`) did not? ``COLOURS_DETAIL`` when, at some lag:

    * at least ``ROOM_PLANE_PAIRS`` pairs of consecutive compared frames of one step (the screen's colour the same
      in both), whose changes span a plane (their first two right singular vectors) that holds two lights'
      colours: the plane's normal ``n`` not of one sign on every channel beyond ``LIGHT_CHANNEL_FLOOR`` (a plane
      whose normal is meets no light's colour but at zero);
    * the face's colour along ``n`` (each frame free to hold any amount of both lights: :func:`_across` across the
      plane, a straight drift) fitted with every gain positive on the channels ``n`` reaches;
    * the palette's colours along ``n`` (in units of the within-step changes' noise along it): each compared
      step's commanded colour told from the palette colours at least twice ``min_separation`` from it, the
      steps together at least ``ROOM_COLOURS_MIN_BITS`` bits (log2 of 8 over the colours not told from it, a
      step);
    * every compared frame nearer its commanded colour's value than half the way to any colour told from it,
      and every change between consecutive compared frames the commanded change along ``n`` within
      max(half ``min_separation``, ``ILLUMINATION_STEP_NOISE`` x sqrt 2) noise units, widened at an edge by the
      panel's crosstalk: but for one frame per ``FRAMES_PER_ALLOWED_MISMATCH``;
    * the room's light in the plane moved over the compared frames by at least half the gain on some channel
      ``n`` reaches (what made the full-colour verifier refuse).

    Nothing passes here: the window stays refused, not measurable instead of a contradiction, a lockout strike
    as an ``attack`` is (docs/liveness.md, review27: the relabel buys a label, not a try). A stream that does not
    see the screen matches a step's value along ``n`` only by chance, but its own edges inside the steps can make
    the plane, so the bits asked are many (``ROOM_COLOURS_MIN_BITS``)."""
    palette = ((np.arange(8)[:, None] & _BITS) > 0).astype(np.float64)
    for _, yl, x, s, care, pair in _lag_windows(steps, y, max_lag):
        checked = int(np.count_nonzero(care))
        if np.count_nonzero(pair) < ROOM_PLANE_PAIRS:
            continue
        d = (yl[1:] - yl[:-1])[pair]
        vt = np.linalg.svd(d, full_matrices=False)[2]
        n = vt[2] * (1.0 if vt[2].sum() >= 0 else -1.0)
        if np.all(n > LIGHT_CHANNEL_FLOOR):
            continue                                            # a grey normal: no light's colour in the plane
        reach = np.abs(n) >= LIGHT_CHANNEL_FLOOR                # the channels the axis across the plane reads
        idx = np.flatnonzero(care)
        _, _, gains, base = _across(yl, x, idx, vt[:2], ROOM_PLANE_DRIFT_DEGREE)
        if not np.all(gains[reach] > 0):
            continue
        level = float(np.linalg.norm(np.mean(yl[idx], axis=0)))
        sigma = max(math.sqrt(float(np.mean(np.square(d @ n))) / 2.0), 1e-6 * max(level, 1e-6))
        h = np.where(reach, gains * n, 0.0)                     # each channel's gain along n
        values = palette @ h / sigma                            # (8,) each colour along n, in noise units
        code = (x[idx] > 0.5) @ _BITS
        gap = np.abs(values[:, None] - values[None])            # (8, 8)
        told = gap >= 2 * min_separation                        # told apart: each decodes within min_separation
        first = np.unique(s[idx], return_index=True)[1]         # each compared step's first compared frame
        bits = float(np.sum(np.log2(8 / (8 - np.count_nonzero(told[code[first]], axis=1)))))
        if bits < ROOM_COLOURS_MIN_BITS:
            continue
        w = ((yl - base) @ n) / sigma                           # the face less its drift, along n
        half = np.array([np.min(gap[c][told[c]], initial=np.inf) / 2 for c in range(8)])
        bad = np.abs(w[idx] - values[code]) >= half[code]
        dx = x[idx[1:]] - x[idx[:-1]]
        other = np.stack([np.any(dx[:, [1, 2]] != 0, axis=1), np.any(dx[:, [0, 2]] != 0, axis=1),
                          np.any(dx[:, [0, 1]] != 0, axis=1)], axis=1)       # another channel changed
        widen = ILLUMINATION_CROSSTALK * (other @ np.abs(h)) / sigma
        tol = max(min_separation / 2, ILLUMINATION_STEP_NOISE * math.sqrt(2.0))
        bad[1:] |= np.abs(np.diff(w[idx]) - np.diff(values[code])) > tol + widen
        if int(np.count_nonzero(bad)) > checked // FRAMES_PER_ALLOWED_MISMATCH:
            continue
        room = (yl[idx] - np.where(reach, gains, 0.0) * x[idx]) @ (vt[:2].T @ vt[:2])   # the room's light in the plane
        if np.any(reach & (np.ptp(room, axis=0) >= gains / 2)):
            return COLOURS_DETAIL
    return None


def verify_illumination(steps: Sequence[Step], rgb: Sequence[Sequence[float]] | np.ndarray, *,
                        max_lag: int = ILLUMINATION_MAX_LAG,
                        min_separation: float = ILLUMINATION_MIN_SEPARATION, levels: int = 2,
                        fit_check: float | None = None, drift_terms: int = DRIFT_TERMS,
                        drift_bound: float | None = None, shared_drift: bool = ILLUMINATION_SHARED_DRIFT,
                        step_check: float | None = ILLUMINATION_CROSSTALK,
                        step_noise: float | None = ILLUMINATION_STEP_NOISE,
                        step_spread: float | None = ILLUMINATION_NOISE_SPREAD,
                        edge_frames: int = ILLUMINATION_EDGE_FRAMES,
                        late_blends: int | None = ILLUMINATION_LATE_BLENDS,
                        noise_frames: int | None = ILLUMINATION_NOISE_FRAMES,
                        ambient: bool = ILLUMINATION_AMBIENT,
                        room_plane: bool | None = None, flash_frames: bool | None = None,
                        step_floor: bool | None = None, room_colours: bool | None = None) -> SequenceResult:
    """Did the face's colour follow the screen? ``rgb[k]``: frame k's mean linear (R, G, B) over the
    face (NaN where no face was measured), with the colour camera's exposure and white balance
    locked.

    At each lag, the settled frames are fitted as room light with a slow drift (one shape in time, a
    cubic, that every channel follows by its own amount: the person moving under the room's light;
    ``shared_drift``) plus per channel a gain times the commanded channel: the gain over one frame's noise
    (measured between consecutive frames of one step, so the screen's crosstalk between channels
    does not count as noise) is the channel's separation. Then each settled frame, drift removed, is
    decoded to one of the ``PALETTE`` colours (a channel is on above half its gain). Passed: every
    settled frame shows its commanded colour (but for one per ``FRAMES_PER_ALLOWED_MISMATCH``, as for
    the projector; a frame whose change from the compared frame before it is not the commanded
    change counts as one too: ``step_check`` below), every step not cut off by the window's end has a
    face in a settled frame, and every channel's separation is at least ``min_separation``. A face
    whose colour did not change beyond its noise (ambient light swamping a 300-nit screen, or a
    stream the screen never reached) is reported as not measurable; one that changed otherwise
    contradicts the sequence.

    Every lag is worked out at once (the server runs this for every probe), as in
    :func:`verify_projector`: row ``l`` of the (lags, frames) arrays holds frame ``lag + k`` of the
    face against frame ``k`` of the sequence; the frames a lag does not compare (after its
    ``n - lag``, and unsettled or faceless ones) are masked. Only the fit and the step check run
    lag by lag.

    ``levels`` (for measuring sequences with more levels per channel, ``python -m bench.illum_bits``;
    the challenge has 2): a channel's commanded values are 0, 1/(levels-1), ..., 1; each settled
    frame's channel is decoded to the nearest level of its gain, and the separation is one level's
    step (the gain over ``levels - 1``) over the noise. With 2 the rule above, bit for bit.

    ``fit_check`` (measured by ``bench.illum_bits``, not used by the challenge): a lag also needs the
    fit's residual (drift and gain times the commanded channel removed), root mean square over the
    settled frames, within ``fit_check`` times one frame's noise on every channel. In short windows
    the cubic drift has few settled frames per term and can bend a blind stream's steps into the
    sequence's; what it bends leaves a residual far above the noise.

    ``drift_terms`` (measured by ``bench.illum_bits``, not used by the challenge): the degree of the
    drift in time (1: a straight line; the challenge's ``DRIFT_TERMS``, a cubic).

    ``drift_bound`` (measured by ``bench.illum_bits``, rule ``bound``; off by default, as the challenge
    and the server run it): a lag also needs, on every channel, the fitted drift's excursion over the
    compared frames (its largest value less its smallest, on the settled frames with a face) within
    ``drift_bound`` times that channel's fitted gain. The face's own light moves slowly and little in
    a window with exposure and white balance locked (breathing, a sway, a cloud); the screen's steps
    are what the gain measures. A drift as large as the gain is what bends a blind stream's steps
    into the sequence's, whatever its degree.

    ``shared_drift`` (the challenge's and the server's ``ILLUMINATION_SHARED_DRIFT``, True since
    wave22; False: a cubic per channel, the verifier before, ``bench.illum_bits``' rule ``percubic``):
    the face's own light as one drift shape shared by the three channels, each with its own scale
    (:func:`_fit_shared`), instead of a cubic per channel. Physically so (one room light moving on
    the face changes every channel together, in its colour; the screen moves them independently).
    Without the step check it cut the blind pass at 16 framesets only from 5.9 % to 3.7 % (a free
    scale per channel can still bend one channel, or several the same way); with it, it closes
    review 22's common-mode waves, which a cubic per channel bent onto another nonce's sequence
    (docs/liveness.md, *One drift shape for the three channels, adopted*).

    ``step_check`` (the crosstalk allowed; the challenge's and the server's ``ILLUMINATION_CROSSTALK``;
    None: no step check, the verifier before it, measured as ``bench.illum_bits``' rule ``nosteps``): every
    compared frame must also have CHANGED from the compared frame before it by the commanded change
    (:func:`_unsteady`): within a step by nothing, across an edge by the gain times the change of each
    channel (the panel's crosstalk from the other channels allowed for), each within half a level's
    step of the gain (or, where wider, ``step_noise`` times the noise: below), measured on the
    changes alone. Between frames one or two apart the face's own
    light barely moves (breathing, a sway, a cloud take seconds), so no drift enters the comparison
    and none can bend it; a frame failing it counts as a mismatch. A stream that does not know the
    nonce shows its own edges inside the sequence's steps or misses the sequence's edges, whatever
    its levels: this is the clean rule's decision (``bench.challenge_stats._clean_pass``), on the
    changes (docs/liveness.md, *The step check*: at 32 framesets 0 of 20,000 random and 0 of 60,000
    searched blind windows, against 1 and 33 without it; every genuine window kept; measured with
    half the gain alone, before ``step_noise``).

    ``step_noise`` (the challenge's ``ILLUMINATION_STEP_NOISE``; None: half a level's step of the gain
    alone, the step check as first merged, ``bench.illum_bits``' rule ``halfgain``): the step check's
    tolerance per channel is the wider of half a level's step of the gain and ``step_noise`` times
    the noise of a difference of two frames (sqrt(2) times the lag's one-frame noise). In bright light
    the screen's gain is small against one frame's noise and half of it alone refused genuine windows
    (docs/liveness.md, *The step check*).

    ``step_spread`` (the challenge's ``ILLUMINATION_NOISE_SPREAD``; None: the noise as the root mean
    square alone, the rule before it, ``bench.illum_bits``' rule ``rmsnoise``): the step check's noise
    is the root mean square of the lag's within-step changes (over sqrt(2)), but at most ``step_spread``
    times the noise their median absolute change implies (1.4826 x it, over sqrt(2)). A blind stream's
    own edges inside the sequence's steps are among those changes, each a full step of the gain: a
    few raise the root mean square (one among P pairs to at least the gain over sqrt(2 P)) and with
    it the tolerance until it covers them, but do not move the median (docs/liveness.md, *The step
    check's noise*). The separation test keeps the root mean square (a larger noise is the strict
    side there).

    ``edge_frames`` (the challenge's ``ILLUMINATION_EDGE_FRAMES``, 1, ``bench.illum_bits``' rule
    ``oneframe``; 2 is rule ``blend``, measured, not the default): the frames at each step's start that are not
    settled (:func:`_settled`). With 2 the step's second frame is not decoded and not in the noise (a
    late edge's frame may hold a blend of the two colours); with the step check it must be such a
    blend of the compared frames either side (:func:`_unblended`), and the step check compares those
    two across the whole commanded change.

    ``late_blends`` (the challenge's ``ILLUMINATION_LATE_BLENDS``, 5, ``bench.illum_bits``' rule
    ``late``; None: none, rule ``oneframe``, the default before): a colour camera's exposure straddles
    the screen's change, so the frame an edge lands in may show a blend (a share of the new colour,
    the rest of the old, the same share on every channel); when the edge lands one frame late that
    frame is the step's second, which one unsettled frame per edge decodes and step-checks as the new
    colour. When no lag passes, each lag is tried once more with the edges whose second frame shows
    less than ``LATE_SHARE`` of the change (:func:`_late_edges`; at most ``late_blends`` of them)
    taken as one frame late: the step's first frame is then compared as the OLD colour (decoded, and
    step-checked against the frame before: no change), its second is the edge's uncertain frame, which
    must be a blend of the compared frames either side (one share in 0..1 on every channel, within
    half a level's step of the gain whatever the noise: an injector chooses its noise), and its third
    is compared as the new colour across the whole change. One blended frame per edge; every frame
    compared before is compared after (the first frame replaces the second; in the window's first
    step, whose first frame is never compared, one frame fewer).

    ``noise_frames`` (the challenge's ``ILLUMINATION_NOISE_FRAMES``, None: off; ``bench.illum_bits``'
    rule ``noisecap`` sets 32): in a window of fewer framesets than this, a lag whose step check's
    tolerance is set by the noise on some channel (``step_noise`` x sqrt(2) x its noise above half a
    level's step of its gain) does not pass; when such a lag is all that would have passed (late
    blends included) the face is reported as not measurable (inconclusive), not as contradicting the
    sequence. An injector chooses its stream's noise, and a noise-scaled tolerance widens with it
    (docs/liveness.md, *The step check's noise in short windows*).

    ``ambient`` (the challenge's ``ILLUMINATION_AMBIENT``, True; False: the verifier before it, every
    contradiction an attack): a window that contradicts the sequence is reported as not measurable
    (``AMBIENT_DETAIL``, or ``PULSED_DETAIL`` for a pulsing lamp; inconclusive, never live, a lockout
    strike as every refusal) instead of as a contradiction when an uncommanded change of the room's
    light explains it (:func:`_ambient_explained`). It never makes a window pass: what passes is decided above, with
    every threshold as before.

    ``room_plane`` (None: the challenge's and the server's ``ILLUMINATION_ROOM_PLANE``, read at the call,
    True; False: the verifier before it): a window the rules above refused (at 2 levels) passes when the face's colour
    follows the sequence in the plane across the room light's one colour direction (:func:`_room_plane`:
    every step's colour told from each other palette colour there, ``ROOM_PLANE_MIN_BITS`` bits, the
    decoding and the step check there, a real excursion of that light), ``PLANE_PASSED``. Where two
    room lights moved inside the steps (only a line left across them: one bit a frame) it does not pass,
    and the window is what the rules above make it.

    ``flash_frames`` (None: ``ILLUMINATION_FLASH_FRAMES``, read at the call, True; False: the verifier before it):
    a full window (``ROOM_PLANE_MIN_FRAMES`` framesets) still refused passes when the rules above (the plane
    path aside) pass it with the frames a flashing light lit (:func:`_flash_frames`, from the face's colours
    alone; at least one, at most one in ``FLASH_SHARE``) taken as frames with no face, ``FLASH_PASSED``.

    ``step_floor`` (None: ``ILLUMINATION_STEP_FLOOR``, read at the call, True; False: the verifier before it): a full
    window still refused passes when each step's darkest compared frame, channel by channel, follows the sequence
    (:func:`_step_floor`: a flashing light only adds light), ``FLOOR_PASSED``.

    ``room_colours`` (None: ``ILLUMINATION_ROOM_COLOURS``, read at the call, True; False: the verifier before it):
    with ``ambient``, a contradiction that two room lights of two colours explain (:func:`_room_colours`: the face
    follows the sequence along the one axis across both) is not measurable, ``COLOURS_DETAIL``; never a pass."""
    if not isinstance(levels, int) or levels < 2:
        raise ChallengeError("an illumination sequence needs at least 2 levels per channel")
    if drift_bound is not None and not (isinstance(drift_bound, (int, float)) and drift_bound >= 0
                                        and math.isfinite(drift_bound)):
        raise ChallengeError("the drift bound must be a finite number at or above 0")
    if step_check is not None and not (isinstance(step_check, (int, float)) and 0 <= step_check < 1
                                       and math.isfinite(step_check)):
        raise ChallengeError("the step check's crosstalk must be a number in 0..1 (or None: no step check)")
    if step_noise is not None and not (isinstance(step_noise, (int, float)) and 0 <= step_noise
                                       and math.isfinite(step_noise)):
        raise ChallengeError("the step check's noise factor must be a finite number at or above 0 (or None)")
    if step_spread is not None and not (isinstance(step_spread, (int, float)) and 0 <= step_spread
                                        and math.isfinite(step_spread)):
        raise ChallengeError("the step check's noise spread must be a finite number at or above 0 (or None)")
    if edge_frames not in (1, 2):
        raise ChallengeError("an illumination edge leaves 1 or 2 frames unsettled")
    if late_blends is not None and not (isinstance(late_blends, int) and late_blends >= 0):
        raise ChallengeError("the late blends allowed per window must be a whole number at or above 0 (or None)")
    if not isinstance(drift_terms, int) or not 0 <= drift_terms <= DRIFT_TERMS:
        raise ChallengeError(f"the drift's degree must be within 0..{DRIFT_TERMS}")
    if noise_frames is not None and not (isinstance(noise_frames, int) and noise_frames >= 0):
        raise ChallengeError("the noise-limited window length must be a whole number at or above 0 (or None)")
    y = np.asarray(rgb, dtype=np.float64).reshape(-1, 3)
    r = _illumination(steps, y, max_lag, min_separation, levels, fit_check, drift_terms, drift_bound, shared_drift,
                      step_check, step_noise, step_spread, edge_frames, late_blends, noise_frames=noise_frames)
    if room_plane is None:
        room_plane = ILLUMINATION_ROOM_PLANE
    if room_plane and not r.passed and levels == 2 and r.detail != FEW_FACES_DETAIL and steps:
        plane = _room_plane(steps, y, max_lag, max(min_separation, ROOM_PLANE_MIN_SEPARATION),
                                    ILLUMINATION_STEP_NOISE if step_noise is None else step_noise,
                                    ILLUMINATION_NOISE_SPREAD if step_spread is None else step_spread,
                                    ILLUMINATION_CROSSTALK if step_check is None else step_check)
        if plane is not None:
            return plane
    if flash_frames is None:
        flash_frames = ILLUMINATION_FLASH_FRAMES
    if flash_frames and not r.passed and levels == 2 and r.detail != FEW_FACES_DETAIL and steps \
            and _full_window(steps, y):
        lit = _flash_frames(y)
        if 0 < np.count_nonzero(lit) <= len(y) // FLASH_SHARE:
            z = y.copy()
            z[lit] = np.nan                                     # as a frame with no face
            f = _illumination(steps, z, max_lag, min_separation, levels, fit_check, drift_terms, drift_bound,
                              shared_drift, step_check, step_noise, step_spread, edge_frames, late_blends,
                              noise_frames=noise_frames)
            if f.passed:
                return SequenceResult(f.kind, True, f.lag_frames, f.checked, f.mismatches, f.late_edges,
                                      f.separation, FLASH_PASSED)
    if step_floor is None:
        step_floor = ILLUMINATION_STEP_FLOOR
    if step_floor and not r.passed and levels == 2 and r.detail != FEW_FACES_DETAIL and steps:
        low = _step_floor(steps, y, max_lag, max(min_separation, ROOM_PLANE_MIN_SEPARATION))
        if low is not None:
            return low
    if ambient and not r.passed and r.measurable and levels == 2 and (
            why := _ambient_explained(steps, y, max_lag, min_separation)
            or (_room_colours(steps, y, max_lag, min_separation)
                if (ILLUMINATION_ROOM_COLOURS if room_colours is None else room_colours) else None)) is not None:
        return r.relabelled(why)
    return r


def _illumination(steps: Sequence[Step], y: np.ndarray, max_lag: int, min_separation: float, levels: int,
                  fit_check: float | None, drift_terms: int, drift_bound: float | None, shared_drift: bool,
                  step_check: float | None, step_noise: float | None, step_spread: float | None,
                  edge_frames: int, late_blends: int | None, only_lag: int | None = None,
                  blend_steps: tuple[int, ...] = (), noise_frames: int | None = None) -> SequenceResult:
    """:func:`verify_illumination` on validated options; ``only_lag``: that lag alone; ``blend_steps``:
    steps (of a sequence with late edges shifted, :func:`_shifted`) whose first frame must be a blend
    of its neighbours within half a level's step of the gain (:func:`_unsteady`)."""
    kind = Kind.ILLUMINATION
    if not steps:
        return SequenceResult(kind, False, 0, 0, 0, 0, 0.0, NO_SEQUENCE_DETAIL)
    expected, step_of = step_layout(steps)
    n = min(len(y), len(expected))
    lags = _lags(max_lag, n)
    if only_lag is not None:
        lags = lags[lags == only_lag]
    if lags.size:
        finite_y = np.all(np.isfinite(y[:n]), axis=1)
        k = np.arange(n)
        m = n - lags
        inside = k < m[:, None]                                    # (lags, n)
        at = np.minimum(lags[:, None] + k, n - 1)
        settled = _settled(expected, edge_frames)[:n] & inside
        care = settled & finite_y[at]
        used = np.count_nonzero(care, axis=1) >= MIN_COMPARED     # a lag with too few faces is skipped
        lags, m, inside, at, settled, care = lags[used], m[used], inside[used], at[used], settled[used], care[used]
    if not lags.size:
        return SequenceResult(kind, False, 0, 0, 0, 0, 0.0, FEW_FACES_DETAIL, measurable=False)
    nl = lags.size
    x, sid, yy = expected[:n], step_of[:n], y[at]                  # yy: (lags, n, 3)
    checked = np.count_nonzero(care, axis=1)
    drift = _drift(k / m[:, None], drift_terms)                                 # (lags, n, terms): t = k / m per lag
    # Per lag, the drift and the commanded channels fitted on the settled frames with a face, and
    # the residuals, on each lag's own arrays: the same numbers as the lag alone gives, to the bit
    # (a screen that did not reach the face leaves gains of rounding size, whose signs then decide
    # the counts: a stacked fit would round them differently).
    coefs = np.empty((nl, 3, drift_terms + 2))
    resid = np.zeros((nl, n, 3))
    excursion = np.zeros((nl, 3))                                  # the drift's range on the compared frames
    # One frame's noise per channel: differences of consecutive settled frames of one step (the
    # screen's colour is the same in both, and slow drift cancels); 0 where there are none.
    pair = care[:, 1:] & care[:, :-1] & (sid[1:] == sid[:-1])
    pairs = np.count_nonzero(pair, axis=1)
    dy = np.where(pair[:, :, None], yy[:, 1:] - yy[:, :-1], 0.0)
    noise = np.sqrt((dy * dy).sum(axis=1) / np.maximum(pairs, 1)[:, None] / 2.0)
    # The step check's noise: the same RMS, at most ``step_spread`` times the noise the pairs' median
    # absolute change implies (a blind stream's own edges inside the steps raise the one, not the other).
    step_sigma = noise
    if step_check is not None and step_noise is not None and step_spread is not None:
        # The median of each lag's pairs per channel: the pairs sorted first (the rest after them,
        # as infinities), the middle one or the mean of the middle two; 0 where there are none.
        ordered = np.sort(np.where(pair[:, :, None], np.abs(dy), np.inf), axis=1)
        lo = np.maximum(pairs - 1, 0) // 2
        hi = np.maximum(pairs // 2, lo)
        mid = (np.take_along_axis(ordered, lo[:, None, None], axis=1)[:, 0]
               + np.take_along_axis(ordered, hi[:, None, None], axis=1)[:, 0]) / 2.0
        mid = np.where((pairs > 0)[:, None], mid, 0.0)
        step_sigma = np.minimum(noise, step_spread * 1.4826 * mid / math.sqrt(2.0))
    for i in range(nl):
        mi = int(m[i])
        c, d, yl = care[i, :mi], drift[i, :mi], yy[i, :mi]
        if shared_drift and drift_terms > 0:
            level = np.abs(np.mean(yl[c], axis=0))
            coefs[i] = _fit_shared(yl[c], d[c], x[:mi][c], np.maximum(noise[i], 1e-9 * np.maximum(level, 1e-9)))
        else:
            coefs[i] = _fit_channels(yl[c], d[c], x[:mi][c])
        for ch in range(3):
            own = d @ coefs[i, ch, :-1]
            resid[i, :mi, ch] = yl[:, ch] - own
            if drift_bound is not None:
                excursion[i, ch] = np.ptp(own[c])
    gains = coefs[:, :, -1]                                        # (lags, 3)
    seps = gains / np.maximum(noise, 1e-6 * np.maximum(np.abs(coefs[:, :, 0]), 1e-6))
    if levels > 2:
        seps = seps / (levels - 1)                                 # one level's step over the noise
    sep = seps.min(axis=1)
    # Every settled frame decoded on its own (a channel is on above half its gain) must show the
    # commanded colour: the same rule as the projector's, so an edge may land at the lag or one
    # frame later, never earlier, whatever the response's noise.
    finite = np.all(np.isfinite(resid), axis=2) & inside
    if levels == 2:
        with np.errstate(invalid="ignore"):
            on = resid > gains[:, None, :] / 2
        observed = np.where(finite, on @ _BITS, -1)
        code = (x > 0.5) @ _BITS
    else:
        top = levels - 1
        digits = levels ** np.arange(2, -1, -1)
        with np.errstate(invalid="ignore", divide="ignore"):
            level = np.clip(np.rint(resid / gains[:, None, :] * top), 0, top)
        observed = np.where(finite, np.nan_to_num(level).astype(np.intp) @ digits, -1)
        code = np.clip(np.rint(x * top), 0, top).astype(np.intp) @ digits
    miss = observed != code
    if step_check is not None:
        blended = None
        if edge_frames > 1:
            second = _settled(expected, 1)[:n] & ~_settled(expected, edge_frames)[:n]
            blended = second[None, :] & inside & finite_y[at]
        elif blend_steps:
            first = np.zeros(n, bool)
            first[[steps[j].start for j in blend_steps if steps[j].start < n]] = True
            blended = first[None, :] & inside & finite_y[at]
        miss = miss | _unsteady(care, yy, x, levels, step_check, step_sigma, step_noise, blended, sid,
                                blend_fixed=bool(blend_steps))
    wrong = np.where(np.all(gains > 0, axis=1), np.count_nonzero(miss & care, axis=1), checked)
    late = np.count_nonzero((code[1:] != code[:-1]) & inside[:, 1:] & (observed[:, 1:] == code[:-1]), axis=1)
    # A step the window's end cuts to its uncertain frame is not compared; every other step must
    # have a frame with a face.
    member = sid[:, None] == np.arange(len(steps))                 # (n, steps)
    unseen = np.count_nonzero(((settled @ member) > 0) & ((care @ member) == 0), axis=1)
    ok = (wrong <= checked // FRAMES_PER_ALLOWED_MISMATCH) & (unseen == 0) & (sep >= min_separation)
    if fit_check is not None:
        misfit = np.where(care[:, :, None], resid - gains[:, None, :] * x[None], 0.0)
        rms = np.sqrt((misfit * misfit).sum(axis=1) / np.maximum(checked, 1)[:, None])
        ok &= np.all(rms <= fit_check * noise, axis=1)
    if drift_bound is not None:
        ok &= np.all(excursion <= drift_bound * gains, axis=1)
    # A short window's lag whose step check's tolerance the noise sets does not pass (``noise_frames``).
    held = np.zeros(nl, bool)
    if noise_frames is not None and n < noise_frames and step_check is not None and step_noise is not None:
        for i in range(nl):
            g = _change_gains(care[i], yy[i], x)
            held[i] = ok[i] and bool(np.any(step_noise * math.sqrt(2.0) * step_sigma[i] > g / (levels - 1) / 2))
        ok &= ~held
    keys = [(bool(ok[i]), -int(wrong[i] + unseen[i]), -int(late[i]), float(sep[i])) for i in range(nl)]
    if late_blends and not np.any(ok) and step_check is not None and edge_frames == 1 and only_lag is None:
        for i in sorted(range(nl), key=lambda j: (keys[j], -j), reverse=True):
            if not np.all(gains[i] > 0):
                continue
            hit = _late_edges(steps, yy[i], int(m[i]), gains[i])
            # At most ``late_blends``, and never every edge the lag compares: one edge at least (not
            # the first step's, whose old colour is the state before the window), its second frame
            # compared with a face, must land at the lag or one frame after it, so the lag bound
            # holds (a window whose edges all land two frames late, a stream past the bound, would
            # otherwise pass a lag early).
            witnesses = sum(1 for j, st in enumerate(steps) if j and j not in hit and st.start + 1 < m[i]
                            and np.all(np.isfinite(yy[i, st.start + 1])))
            if not 0 < len(hit) <= late_blends or not witnesses:
                continue
            r = _illumination(_shifted(steps, hit), y, max_lag, min_separation, levels, fit_check, drift_terms,
                              drift_bound, shared_drift, step_check, step_noise, step_spread, 1, None,
                              only_lag=int(lags[i]), blend_steps=hit, noise_frames=noise_frames)
            if r.passed:
                return r
            if r.detail == NOISY_DETAIL:
                held[i] = True
    i = max(range(nl), key=lambda j: (keys[j], -j))
    passed = keys[i][0]
    if not passed and np.any(held):
        i = int(np.flatnonzero(held)[0])
        return SequenceResult(kind, False, int(lags[i]), int(checked[i]), int(wrong[i] + unseen[i]), int(late[i]),
                              float(sep[i]), NOISY_DETAIL, measurable=False)
    measurable = passed or _changes(y[np.all(np.isfinite(y), axis=1)], min_separation)
    if passed:
        detail = "the face's colour follows the screen's illumination sequence"
    elif not measurable:
        detail = WEAK_SCREEN_DETAIL
    else:
        detail = SCREEN_CONTRADICTED_DETAIL
    return SequenceResult(kind, passed, int(lags[i]), int(checked[i]), int(wrong[i] + unseen[i]), int(late[i]),
                          float(sep[i]), detail, measurable)


@dataclass(frozen=True)
class ChallengeResult:
    """Every challenge of a window; passed only when each passed."""

    results: tuple[SequenceResult, ...]

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    def get(self, kind: Kind) -> SequenceResult | None:
        return next((r for r in self.results if r.kind is kind), None)

    @property
    def lag_frames(self) -> int:
        """The projector's lag (what the pairing of lit and unlit frames needs), else 0."""
        p = self.get(Kind.PROJECTOR)
        return p.lag_frames if p is not None else 0

    @property
    def detail(self) -> str:
        failed = [r for r in self.results if not r.passed]
        return "; ".join(r.detail for r in (failed or self.results))

    @property
    def unmeasurable(self) -> bool:
        """Failed only because a response was too weak to measure (never an outright contradiction)."""
        failed = [r for r in self.results if not r.passed]
        return bool(failed) and all(not r.measurable for r in failed)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"passed": self.passed, "kinds": sorted(r.kind.value for r in self.results),
                               "detail": self.detail}
        for r in self.results:
            out[r.kind.value] = r.to_dict()
        return out


def failed_unmeasurable(challenge: Any) -> bool:
    """:attr:`ChallengeResult.unmeasurable` read from a verdict's ``challenge`` dict
    (:meth:`ChallengeResult.to_dict`, as the liveness worker sends it): failed, and every challenge
    that failed was not measurable. Anything malformed is false."""
    if not isinstance(challenge, dict) or challenge.get("passed") is not False:
        return False
    kinds = challenge.get("kinds")
    if not isinstance(kinds, list) or not kinds:
        return False
    results = [challenge.get(k) if isinstance(k, str) else None for k in kinds]
    failed = [r for r in results if not (isinstance(r, dict) and r.get("passed") is True)]
    return bool(failed) and all(isinstance(r, dict) and r.get("measurable") is False for r in failed)


# The details of a challenge not measurable because of the light (the projector's dots drowned or
# clipped by ambient infrared, the screen's light too weak on the face): what ``TOO_BRIGHT_TO_VERIFY``
# asks the person to change. ``FEW_FACES_DETAIL`` is not one: no face to measure is not the light's doing.
LIGHT_DETAILS = frozenset({CLIPPED_DETAIL, DROWNED_DETAIL, DRIFTED_DETAIL, SWEPT_DETAIL, WEAK_SCREEN_DETAIL,
                           NOISY_DETAIL, AMBIENT_DETAIL, PULSED_DETAIL, COLOURS_DETAIL, FLICKER_DETAIL,
                           PROJECTOR_FLICKER_DETAIL, PROJECTOR_UNLIT_LIGHT_DETAIL, PROJECTOR_GLINT_DETAIL})


# A stable code for each reason a challenge can fail (its ``detail`` is free text, for people): the
# audit ``result`` record's ``challenge_detail`` (:func:`detail_code`) and ``diagnose``'s last sessions,
# so an operator tells a flicker relabel, a swept light, a drowned projector and a weak screen apart
# where the verdict is the same ``inconclusive``. Never changed once used; a new reason gets a new code.
DETAIL_CODES: dict[str, str] = {
    CLIPPED_DETAIL: "PROJECTOR_CLIPPED", DROWNED_DETAIL: "PROJECTOR_DROWNED", DRIFTED_DETAIL: "PROJECTOR_DRIFTED",
    SWEPT_DETAIL: "PROJECTOR_SWEPT", PROJECTOR_FLICKER_DETAIL: "PROJECTOR_FLICKER",
    PROJECTOR_UNLIT_LIGHT_DETAIL: "PROJECTOR_UNLIT_LIGHT", PROJECTOR_GLINT_DETAIL: "PROJECTOR_GLINT",
    PROJECTOR_CONTRADICTED_DETAIL: "PROJECTOR_CONTRADICTED", PROJECTOR_UNMEASURED_DETAIL: "PROJECTOR_UNMEASURED",
    PROJECTOR_FEW_FRAMES_DETAIL: "PROJECTOR_FEW_FRAMES", PROJECTOR_NOT_THIS_UNIT_DETAIL: "PROJECTOR_NOT_THIS_UNIT",
    PROJECTOR_UNIT_UNSURE_DETAIL: "PROJECTOR_UNIT_UNSURE",
    WEAK_SCREEN_DETAIL: "SCREEN_WEAK", NOISY_DETAIL: "SCREEN_NOISY", AMBIENT_DETAIL: "SCREEN_LIGHT_CHANGED",
    PULSED_DETAIL: "SCREEN_LIGHT_PULSED", COLOURS_DETAIL: "SCREEN_ROOM_COLOURS",
    FLICKER_DETAIL: "SCREEN_FLICKER", FEW_FACES_DETAIL: "SCREEN_FEW_FACES",
    SCREEN_CONTRADICTED_DETAIL: "SCREEN_CONTRADICTED", NO_SEQUENCE_DETAIL: "SCREEN_NO_SEQUENCE",
}
OTHER_DETAIL_CODE = "OTHER"       # a detail this build does not know (never the text itself)
_KIND_NAMES = frozenset(k.value for k in Kind)     # the names ``kinds`` may hold, each once (``detail_code``)


def detail_code(challenge: Any) -> str | None:
    """The stable code of why a verdict's ``challenge`` (:meth:`ChallengeResult.to_dict`, as the
    liveness worker sends it) failed: each failed challenge's ``DETAIL_CODES`` entry, in the order of
    ``kinds``, joined by ``+`` (``PROJECTOR_DROWNED+SCREEN_WEAK``); ``OTHER`` for a detail not in the
    table or a malformed one. None when there is no challenge or it passed. Never free text, and never
    longer than one code per kind (review24): ``kinds`` that are not distinct kind names (``Kind``) are
    malformed, ``OTHER``. Before, a worker's ``kinds`` of 12 "projector" entries made a code over the audit log's
    ``MAX_STRING`` (256), so the NOT_LIVE ``result`` record was refused (``AUD_REFUSED``) and not written,
    and more than 4 codes read as none in the ledger (``observe.ledger._code``)."""
    if not isinstance(challenge, dict) or challenge.get("passed") is not False:
        return None
    kinds = challenge.get("kinds")
    if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) and k in _KIND_NAMES for k in kinds) \
            or len(set(kinds)) != len(kinds):
        return OTHER_DETAIL_CODE
    codes = []
    for k in kinds:
        r = challenge.get(k) if isinstance(k, str) else None
        if isinstance(r, dict) and r.get("passed") is True:
            continue
        d = r.get("detail") if isinstance(r, dict) else None
        codes.append(DETAIL_CODES.get(d, OTHER_DETAIL_CODE) if isinstance(d, str) else OTHER_DETAIL_CODE)
    return "+".join(codes) if codes else OTHER_DETAIL_CODE


def relabelled_code(challenge: Any) -> str | None:
    """The stable codes (``DETAIL_CODES``) of what each failed challenge of a verdict's ``challenge`` said
    before a rule of the room's light relabelled it (``SequenceResult.relabelled_from``; each code names its
    kind), in the order of ``kinds`` joined by ``+``; None when nothing was relabelled, or the dict is
    malformed (``detail_code`` says ``OTHER`` then). A ``result`` record then reads
    ``challenge_detail=PROJECTOR_GLINT``, ``challenge_relabelled_from=PROJECTOR_CONTRADICTED``: contradicted,
    then relabelled as a glint."""
    if detail_code(challenge) in (None, OTHER_DETAIL_CODE):
        return None
    froms = [r.get("relabelled_from") for r in (challenge.get(k) for k in challenge["kinds"])
             if isinstance(r, dict) and r.get("passed") is not True]
    codes = [DETAIL_CODES.get(d, OTHER_DETAIL_CODE) if isinstance(d, str) else OTHER_DETAIL_CODE
             for d in froms if d is not None and d != ""]
    return "+".join(codes) if codes else None


# The unit check (issue 14/15, unit33): a challenged window's on-off pairs read against this unit's enrolled
# dot reference (``features.ProjectorMeasure``: ``projector_unmatched``, the pairs' median band energy off the
# pattern over the energy on it; ``projector_pattern_pairs``, how many pairs were tested). Another unit's
# projector draws other dots, which the fit explains nothing or little of (docs/liveness.md, "The enrolled
# dot pattern as proof of this unit"). Fitted on train's genuine sessions only (23 acquired lives read
# 0.090-1.363), with margin: twice and ten times their largest (another pattern's units read 120 and up there).
UNIT_CHECK = True
UNIT_MIN_PAIRS = 3               # fewer pairs tested: the check says nothing (unsure if the material read more)
UNIT_UNMATCHED_UNSURE = 2.75     # above: not verified as this unit's (inconclusive, never live)
UNIT_UNMATCHED_OTHER = 14.0      # above, or not finite: another unit's projector (attack)


def unit_status(cues: dict[str, float]) -> str:
    """What a window's cues (``detectors.cue_summary``, judged with this unit's dot reference) say of
    the projector's unit: ``"other"`` when at least ``UNIT_MIN_PAIRS`` pairs were tested and
    ``projector_unmatched`` is over ``UNIT_UNMATCHED_OTHER`` or not finite; ``"unsure"`` over
    ``UNIT_UNMATCHED_UNSURE``, or when any pair the material read could not be tested against the pattern
    (``projector_untestable_pairs``), or when under ``UNIT_MIN_PAIRS`` were tested while the material read
    at least that many (review33a: an injector who moves the predicted dots off the enrolled coverage on
    all but two pairs' lit frames kept the material's reading and switched the check off; genuine
    sessions on train, the twentieth and twenty-first families had no untestable pair, the twenty-second
    one in 286, already refused); ``"unmeasured"`` when fewer than ``UNIT_MIN_PAIRS`` pairs were read at all;
    ``"own"`` otherwise."""
    def count(key: str) -> float:
        v = cues.get(key, 0.0)
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else 0.0
    tested, untestable, read = (count("projector_pattern_pairs"), count("projector_untestable_pairs"),
                                count("projector_pairs"))
    if tested < UNIT_MIN_PAIRS:
        return "unsure" if max(read, tested + untestable) >= UNIT_MIN_PAIRS else "unmeasured"
    u = cues.get("projector_unmatched", float("nan"))
    if not math.isfinite(u) or u > UNIT_UNMATCHED_OTHER:
        return "other"
    return "unsure" if u > UNIT_UNMATCHED_UNSURE or untestable > 0 else "own"


def unit_checked(result: ChallengeResult, status: str) -> ChallengeResult:
    """``result`` with its projector challenge failed for the unit check's ``status`` (:func:`unit_status`):
    ``"other"`` as ``PROJECTOR_NOT_THIS_UNIT_DETAIL`` (a contradiction: the judge's attack), ``"unsure"`` as
    ``PROJECTOR_UNIT_UNSURE_DETAIL`` (not measurable: never live, never an attack by itself); else, or
    when the projector's challenge did not pass (its own failure stands), as it was."""
    p = result.get(Kind.PROJECTOR)
    if p is None or not p.passed or status not in ("other", "unsure"):
        return result
    failed = replace(p, passed=False, measurable=status != "unsure",
                     detail=PROJECTOR_NOT_THIS_UNIT_DETAIL if status == "other" else PROJECTOR_UNIT_UNSURE_DETAIL)
    return ChallengeResult(tuple(failed if r is p else r for r in result.results))


def failed_for_light(challenge: Any) -> bool:
    """:func:`failed_unmeasurable`, and every challenge that failed says the light hid its response
    (its detail is one of ``LIGHT_DETAILS``): a window whose face was missing from the frames the
    screen's colours are read on is not measurable either, but less light would not help it."""
    if not failed_unmeasurable(challenge):
        return False
    results = [challenge.get(k) for k in challenge["kinds"]]
    return all(r.get("detail") in LIGHT_DETAILS for r in results if r.get("passed") is not True)


# The illumination verifier's own options, as the challenge runs it (the flicker rule verifies the
# face's light with the ambient taken out under the very same rule).
_DEFAULTS: dict[str, Any] = dict(levels=2, fit_check=None, drift_terms=DRIFT_TERMS, drift_bound=None,
                                 shared_drift=ILLUMINATION_SHARED_DRIFT, step_check=ILLUMINATION_CROSSTALK,
                                 step_noise=ILLUMINATION_STEP_NOISE, step_spread=ILLUMINATION_NOISE_SPREAD,
                                 edge_frames=ILLUMINATION_EDGE_FRAMES, late_blends=ILLUMINATION_LATE_BLENDS,
                                 noise_frames=ILLUMINATION_NOISE_FRAMES)


def ir_grid(ir: np.ndarray, box: Sequence[int]) -> np.ndarray:
    """(GRID, GRID) mean IR (DN) of ``box`` (x0, y0, x1, y1, colour pixels) in an IR image registered to
    the colour image (``AlignedFrameSet.ir``: 0 where a pixel has no depth, left out), cut into the same
    cells as :func:`face_grid`; NaN for a cell with no pixel."""
    x0, y0, x1, y1 = (int(v) for v in box)
    region = np.asarray(ir)[y0:y1, x0:x1]
    rows, cols = _split_bounds(region.shape[0], GRID), _split_bounds(region.shape[1], GRID)
    out = np.full((GRID, GRID), np.nan)
    for i in range(GRID):
        for j in range(GRID):
            c = region[rows[i]:rows[i + 1], cols[j]:cols[j + 1]]
            v = c[c > 0]
            if v.size:
                out[i, j] = float(np.mean(v, dtype=np.float64))
    return out


def ambient_ir(ir_cells: np.ndarray | Sequence, lit: Sequence[bool] | np.ndarray | None) -> np.ndarray:
    """(n, cells) each cell's ambient infrared per frame, relative to its own mean over the window: the
    IR cells (:func:`ir_grid`, NaN unmeasured) less the projector's light, a step per cell on the frames
    ``lit`` (the median of the cell's change across the projector's edges, signed: the dots add light
    when they come on; none without ``lit``). Sunlight is rich at 850 nm, the screen emits none, and
    the projector's part is a known on/off pattern: what is left is the room's (the sun's) own."""
    r = np.asarray(ir_cells, dtype=np.float64)
    r = r.reshape(r.shape[0], -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if lit is not None and len(lit) >= r.shape[0] and r.shape[0] > 1:
            on = np.asarray(lit[:r.shape[0]], dtype=bool)
            edge = np.flatnonzero(on[1:] != on[:-1]) + 1
            if edge.size:
                step = (r[edge] - r[edge - 1]) * np.where(on[edge], 1.0, -1.0)[:, None]
                p = np.nan_to_num(np.nanmedian(step, axis=0))
                r = r - np.maximum(p, 0.0)[None] * on[:, None]
        level = np.nanmean(r, axis=0)
    return r / np.where(level > 1e-9, level, np.nan)[None]


def _flicker_explained(steps: Sequence[Step], cells: np.ndarray, amb: np.ndarray, max_lag: int,
                       min_separation: float, options: dict[str, Any]) -> bool:
    """Does the room's light, as the infrared sees it cell by cell, explain why the face's colour
    contradicted the sequence? At some lag:

    * the face's changes between consecutive compared frames of one step (the screen's colour the same
      in both), each cell relative to its own mean, are fitted as ONE colour ``v`` times that cell's
      change of ambient infrared (:func:`ambient_ir`): sunlight's colour over the shade's, relative to
      its infrared over the shade's, is the same on every cell whatever its albedo (both are ratios
      on one surface), so patchy flecks moving over the cells need three numbers, not one per cell.
      ``v`` positive on every channel (bright light adds to all three), and the fit explains at least
      ``FLICKER_EXPLAINED`` of those changes (the window's own light is mostly the flicker);
    * with ``v`` times each cell's ambient infrared taken out of its colour on every frame, the face's
      light (:func:`face_response`) no longer contradicts the sequence at that lag: the verifier, every
      threshold its own, passes it, or finds the screen's light too weak against what is left (the
      flicker's remainder: not measurable, as a still face always was).

    Nothing passes here: the window stays refused, as not measurable. A stream that does not see the
    screen has nothing of the sequence to uncover by taking its own infrared out of its colour: its
    own steps stay a contradiction, and without steps it was not measurable before (a still face)."""
    expected, sid = step_layout(steps)
    g = np.asarray(cells, dtype=np.float64)
    g = g.reshape(g.shape[0], -1, 3)
    a = np.asarray(amb, dtype=np.float64).reshape(amb.shape[0], -1)
    n = min(len(g), len(a), len(expected))
    if n < MIN_FRAMES or a.shape[1] != g.shape[1]:
        return False
    g, a = g[:n], a[:n]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        level = np.nanmean(g, axis=0)                                # (cells, 3)
    if not np.any(np.isfinite(level)):
        return False
    rel = g / np.where(level > 1e-9, level, np.nan)[None]
    settled = _settled(expected)[:n]
    face = np.any(np.isfinite(rel).all(axis=2), axis=1)
    for lag in _lags(max_lag, n):
        m = n - int(lag)
        yl, al = rel[lag:lag + m], a[lag:lag + m]
        care = settled[:m] & face[lag:lag + m]
        pair = care[1:] & care[:-1] & (sid[1:m] == sid[:m - 1])
        if np.count_nonzero(pair) < 3:
            continue
        dy = (yl[1:] - yl[:-1])[pair]                                 # (pairs, cells, 3)
        da = (al[1:] - al[:-1])[pair]                                 # (pairs, cells)
        ok = np.isfinite(da) & np.all(np.isfinite(dy), axis=2)
        if np.count_nonzero(ok) < 3 * g.shape[1]:
            continue
        dy, da = np.where(ok[..., None], dy, 0.0), np.where(ok, da, 0.0)
        total = float(np.sum(dy * dy))
        if not total > 0:
            continue
        centred = a - np.nanmean(a, axis=0)[None]
        for v in _flicker_gains(dy, da, ok):
            if float(np.sum(np.square(dy - da[..., None] * v))) > (1 - FLICKER_EXPLAINED) * total:
                continue
            clean = g - level[None] * v * centred[..., None]
            r = _illumination(steps, face_response(clean), max_lag, min_separation, only_lag=int(lag), **options)
            # Passing, or the screen's light too weak (or too noisy) against what is left: not "too few
            # faces", which the IR's own holes give (a cell without depth is NaN, and so is its corrected
            # colour): a window emptied of faces by the correction says nothing (review23).
            if r.passed or (not r.measurable and r.detail in (WEAK_SCREEN_DETAIL, NOISY_DETAIL)):
                return True
    return False


def _flicker_gains(dy: np.ndarray, da: np.ndarray, ok: np.ndarray) -> list[np.ndarray]:
    """The colour gains on the ambient infrared that :func:`_flicker_explained` tries, each (1 or cells,
    3) to multiply a (pairs, cells) change of ambient infrared: ONE colour for the face, and one per cell
    (``FLICKER_CELL_GAINS``), each fitted by least squares on ``dy`` (pairs, cells, 3) over ``da`` (pairs,
    cells) where ``ok``, and kept only when positive on every channel (and every cell fitted): bright
    light adds to all three. A cell moved in fewer than 3 pairs is not corrected (gain 0).

    Why one per cell: relative to a cell's own mean, a fleck of sun whose colour over the shade's is
    ``rho_c`` and whose infrared over the shade's is ``rho_i`` moves the colour by ``(rho_c / rho_i) (1 +
    f rho_i) / (1 + f rho_c)`` times the infrared, ``f`` the cell's mean share of the fleck over the
    window. The albedos cancel; ``f`` cancels only when ``rho_c`` = ``rho_i``, and foliage's shade is
    rich in 850 nm (leaves pass and reflect it) where its visible light is not: a cell the flecks seldom
    reach moves its colour more per unit of its infrared than one they often cover (the eleventh's
    live/86: 1.26-1.28 on cells whose infrared fell to 0.63-0.72 of its mean, 1.07-1.10 on cells it fell
    to 0.20-0.26 of it; flicker23's one colour left 2-4 of 23 frames off the sequence with the screen
    standing 3-8 deviations clear: fleck26, docs/liveness.md)."""
    out = []
    moved = float(np.sum(da * da))
    if moved > 0:
        v = np.einsum("pc,pck->k", da, dy) / moved
        if np.all(v > 0):
            out.append(v[None])
    if FLICKER_CELL_GAINS:
        per = np.sum(da * da, axis=0)                                 # (cells,)
        fitted = (np.count_nonzero(ok, axis=0) >= 3) & (per > 0)
        if fitted.any():
            vc = np.einsum("pc,pck->ck", da, dy) / np.where(fitted, per, 1.0)[:, None]
            vc[~fitted] = 0.0
            if np.all(vc[fitted] > 0):
                out.append(vc)
    return out


def _light_gain(light: np.ndarray, energy: np.ndarray) -> float | None:
    """The gain ``c`` of ``energy ≈ c · light`` (a fit through the origin: both already changes or
    deviations), when ``c`` is positive and explains at least ``FLICKER_EXPLAINED`` of the energy's
    variance; else None (the light did not move, or does not explain the dots' energy)."""
    moved, total = float(np.dot(light, light)), float(np.dot(energy, energy))
    if not moved > 0 or not total > 0:
        return None
    c = float(np.dot(light, energy)) / moved
    if not c > 0 or float(np.sum(np.square(energy - c * light))) > (1 - FLICKER_EXPLAINED) * total:
        return None
    return c


def _projector_flicker_explained(schedule: Sequence[bool], energies: np.ndarray, amb: np.ndarray, max_lag: int,
                                 min_separation: float) -> bool:
    """Does the ambient infrared flickering on the face explain why the IR frames' dot energy
    contradicted the projector schedule? At some lag: the energy's changes between consecutive settled
    frames of one run (the projector's state the same in both) are fitted as ``c`` times the change of
    the face's mean ambient infrared (:func:`ambient_ir`, averaged over the cells), ``c`` positive (more
    light, more texture in the high-pass: the skin's own and the flecks' edges), explaining at least
    ``FLICKER_EXPLAINED`` of those changes; and with ``c`` times the ambient taken out of every frame,
    the energies PASS :func:`verify_projector`, every threshold its own. Nothing passes here."""
    e = np.asarray(energies, dtype=np.float64)
    sched = np.asarray(schedule, dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        f = np.nanmean(np.asarray(amb, dtype=np.float64).reshape(len(amb), -1), axis=1)
    n = min(len(e), len(sched), len(f))
    if n < MIN_FRAMES or not np.all(np.isfinite(e[:n])) or not np.all(np.isfinite(f[:n])):
        return False
    e, sched, f = e[:n], sched[:n], f[:n]
    care = _settled(sched)
    for lag in _lags(max_lag, n):
        m = n - int(lag)
        el, fl, c = e[lag:lag + m], f[lag:lag + m], care[:m]
        pair = c[1:] & c[:-1]
        if np.count_nonzero(pair) < 3:
            continue
        de, df = (el[1:] - el[:-1])[pair], (fl[1:] - fl[:-1])[pair]
        k = _light_gain(df, de)
        if k is None:
            continue
        clean = e - k * (f - float(np.mean(f)))
        r = verify_projector(schedule[:n], clean, max_lag=max_lag, min_separation=min_separation)
        if r.passed and r.lag_frames == int(lag):
            return True
    return False


def _projector_unlit_light(schedule: Sequence[bool], energies: np.ndarray, ir_cells: np.ndarray | Sequence,
                           lit: Sequence[bool] | np.ndarray, max_lag: int, min_separation: float) -> bool:
    """Did the room's infrared on the unlit frames, not the stream, make the projector window fail? On
    the frames the camera reports unlit (``lit``; an injector writes its own, which decides only attack
    or not measurable) the dot energy is fitted as ``a + c`` x the face's infrared level (the mean of
    ``ir_cells``, :func:`ir_grid`), ``c`` positive explaining at least ``FLICKER_EXPLAINED`` of its
    variance (no dots lit: the skin's texture in the room's light; a PWM dimmer under a short exposure
    moves both together frame by frame, R² 0.98-1.0 in the thirteenth's refusals), and with ``c`` x the
    level's change from its mean (or from its lowest) taken out of the unlit frames' energies (each
    unlit frame then at the unlit frames' mean energy, or their lowest, give or take the fit's
    residual) the window PASSES
    :func:`verify_projector`, every threshold its own: the dots followed the schedule and the light
    hid them. Nothing passes here. A stream whose dots do not follow the schedule keeps them off it
    whatever its unlit frames are cleaned of (``python -m bench.pwm_injector``)."""
    e = np.asarray(energies, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = np.asarray(ir_cells, dtype=np.float64)
        f = np.nanmean(r.reshape(r.shape[0], -1), axis=1) if r.size else np.zeros(0)
    on = np.asarray(lit, dtype=bool)
    n = min(len(e), len(schedule), len(f), len(on))
    if n < MIN_FRAMES or not np.all(np.isfinite(e[:n])):
        return False
    e, f, on = e[:n], f[:n], on[:n]
    unlit = ~on & np.isfinite(f)
    if np.count_nonzero(unlit) < UNLIT_LIGHT_FRAMES:
        return False
    fu, eu = f[unlit], e[unlit]
    fc, ec = fu - float(np.mean(fu)), eu - float(np.mean(eu))
    c = _light_gain(fc, ec)
    if c is None:
        return False
    # Each unlit frame's energy brought to what it would read at the unlit frames' mean level, or at
    # their lowest (near 0 in a dark window, where the fit's residual can cross the split's floor:
    # ``DARK_FLOOR``; at the mean, weak dots may not stand clear of the lifted floor): either passing.
    for anchor in (0.0, float(np.min(fc))):
        clean = e.copy()
        clean[unlit] = eu - c * (fc - anchor)
        if verify_projector(schedule[:n], clean, max_lag=max_lag, min_separation=min_separation).passed:
            return True
    return False


def _kept_passes(sched: np.ndarray, e: np.ndarray, keep: np.ndarray, states: np.ndarray, lag: int,
                 min_separation: float) -> bool:
    """Do the stream's frames ``keep`` (the others left out of the split, the count and d') pass
    :func:`verify_projector`'s own thresholds at ``lag``: ``states`` split by the kept frames' own energies
    (:func:`projector_states`), mismatches at most one per ``FRAMES_PER_ALLOWED_MISMATCH`` of at least
    ``MIN_FRAMES`` settled kept frames, d' at least ``min_separation``?"""
    m = len(e) - lag
    s, o, x = sched[:m], states[lag:lag + m], e[lag:lag + m]
    care = _settled(s) & keep[lag:lag + m]
    checked = int(np.count_nonzero(care))
    return bool(checked >= MIN_FRAMES and np.count_nonzero((o != s) & care) <= allowed_mismatches(checked)
                and _dprime(x[care & s], x[care & ~s]) >= min_separation)


def _swept_run(schedule: Sequence[bool], energies: np.ndarray, max_lag: int, min_separation: float,
               ir_cells: np.ndarray | Sequence | None = None) -> bool:
    """Did a bright light sweeping the face for one run of frames (``SWEEP_RUNS``), not the stream, make
    the projector window fail? Some run of consecutive frames and lag where: the frames outside the run
    pass :func:`verify_projector`'s thresholds (:func:`_kept_passes`); every settled frame inside it stands
    at or above the lowest kept settled frame of its commanded state (a light adds light to lit and unlit
    frames alike), and each state's frames there rise and then fall once (one sweep; changes under
    ``SWEEP_WIGGLE`` of the kept dots' step not counted); every schedule edge touching the run (its
    change, from the frame before the edge to the frame after it, reaching into the run: an edge on the
    run's first frame or the frame just before it too) steps the commanded way (the dots still switched
    under the light); and with ``SWEEP_LEVEL`` the face's IR level (the mean of ``ir_cells``, :func:`ir_grid`;
    none, or a frame unmeasured: no run qualifies) keeps the projector's flood on the run's lit frames
    (:func:`_flood_kept`). A stream that does not know the schedule may draw a hump, but matches the edges
    inside it only by chance (``python -m bench.glint_injector``). Nothing passes here."""
    e = np.asarray(energies, dtype=np.float64)
    n = min(len(e), len(schedule))
    if n < MIN_FRAMES or not np.all(np.isfinite(e[:n])):
        return False
    e, sched = e[:n], np.asarray(schedule[:n], dtype=bool)
    level = _ir_level(ir_cells, n) if SWEEP_LEVEL else None
    if SWEEP_LEVEL and level is None:
        return False
    lo, hi = SWEEP_RUNS
    for a in range(n):
        for b in range(a + lo, min(n, a + hi) + 1):
            keep = np.ones(n, bool)
            keep[a:b] = False
            states = np.zeros(n, bool)
            states[keep] = projector_states(e[keep])
            for lag in (int(x) for x in _lags(max_lag, n)):
                if _kept_passes(sched, e, keep, states, lag, min_separation) and \
                        _lifted_and_stepping(sched, e, a, b, lag) and \
                        (level is None or _flood_kept(sched, level, keep, a, b, lag, min_separation)):
                    return True
    return False


def _ir_level(ir_cells: np.ndarray | Sequence | None, n: int) -> np.ndarray | None:
    """The face's mean IR per frame (the mean of the frame's measured cells, :func:`ir_grid`), the first ``n``
    frames; None without cells or with a frame unmeasured."""
    if ir_cells is None:
        return None
    r = np.asarray(ir_cells, dtype=np.float64)
    if r.ndim < 2 or r.shape[0] < n:
        return None
    r = r[:n].reshape(n, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        f = np.nanmean(r, axis=1)
    return f if np.all(np.isfinite(f)) else None


def _flood_kept(sched: np.ndarray, level: np.ndarray, keep: np.ndarray, a: int, b: int, lag: int,
                min_separation: float) -> bool:
    """:func:`_swept_run`'s test of the run ``a`` .. ``b - 1`` (``keep``: the frames outside it) in the face's IR
    level, linear in light where the dot energy is not: the kept frames' level follows the schedule as their dot
    energy must (:func:`_kept_passes` on the level, split by its own values: the projector's flood shows in it
    and switched on every kept frame), and every settled frame inside the run the schedule has lit stands at or
    above the lowest kept settled lit frame's level, give or take ``SWEEP_WIGGLE`` of the kept frames' flood step
    (lit minus unlit means). A light adds to the projector's flood, never takes it away: a frame the schedule has
    lit that reads the unlit level under a hump did not switch."""
    states = np.zeros(len(level), bool)
    states[keep] = projector_states(level[keep])
    if not _kept_passes(sched, level, keep, states, lag, min_separation):
        return False
    s, y, left, care, _, _ = _run_view(sched, level, a, b, lag)
    kept_on, kept_off, lifted = y[~left & care & s], y[~left & care & ~s], y[left & care & s]
    if not lifted.size:
        return True
    tol = SWEEP_WIGGLE * abs(float(np.mean(kept_on)) - float(np.mean(kept_off)))
    return bool(float(np.min(lifted)) >= float(np.min(kept_on)) - tol)


def _run_view(sched: np.ndarray, series: np.ndarray, a: int, b: int, lag: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """The schedule and ``series`` (one value per stream frame) aligned at ``lag``, with the run of stream frames
    ``a`` .. ``b - 1`` in schedule frames: ``(s, y, left, care, sa, sb)``; ``left`` marks the run, ``care`` the
    settled frames (:func:`_settled`)."""
    m = len(series) - lag
    s, y = sched[:m], series[lag:lag + m]
    sa, sb = max(a - lag, 0), min(b - lag, m)
    left = np.zeros(m, bool)
    left[sa:sb] = True
    return s, y, left, _settled(s), sa, sb


def _lifted_and_stepping(sched: np.ndarray, e: np.ndarray, a: int, b: int, lag: int) -> bool:
    """:func:`_swept_run`'s test of the run of stream frames ``a`` .. ``b - 1`` at ``lag``: the light only
    added, in one sweep, and the schedule's edges touching the run step the commanded way."""
    s, x, left, care, sa, sb = _run_view(sched, e, a, b, lag)
    m = len(s)
    edges = np.flatnonzero(s[1:] != s[:-1]) + 1
    edges = edges[(edges >= sa - 1) & (edges <= sb)]
    after = np.minimum(edges + 1, m - 1)
    if np.any((x[after] - x[edges - 1]) * np.where(s[edges], 1.0, -1.0) <= 0):
        return False
    kept_on, kept_off = x[~left & care & s], x[~left & care & ~s]
    tol = SWEEP_WIGGLE * abs(float(np.mean(kept_on)) - float(np.mean(kept_off))) if kept_on.size and kept_off.size \
        else 0.0
    for state in (True, False):
        kept, lifted = x[~left & care & (s == state)], x[left & care & (s == state)]
        if kept.size and lifted.size and float(np.min(lifted)) < float(np.min(kept)):
            return False
        # One sweep: the run's frames of one commanded state rise and then fall, once (a change under ``tol``
        # not counted); a stream whose dots are on where the schedule has them off goes up and down inside it.
        d = np.diff(lifted)
        d = d[np.abs(d) > tol]
        if d.size and np.any(d[np.argmax(d < 0):] > 0) and np.any(d < 0):
            return False
    return True


def relabelable(r: SequenceResult) -> bool:
    """A failed challenge a rule of the room's light may relabel: a contradiction, or the projector's
    dots that "did not switch" (``DROWNED_DETAIL``: already not measurable, :func:`_projector_unlit_light`
    names the light that drowned them)."""
    return not r.passed and (r.measurable or (r.kind is Kind.PROJECTOR and r.detail == DROWNED_DETAIL))


def explain_flicker(challenge: Challenge, result: ChallengeResult, cells: np.ndarray | Sequence | None,
                    ir_cells: np.ndarray | Sequence | None, lit: Sequence[bool] | np.ndarray | None,
                    energies: Sequence[float] | np.ndarray | None = None) -> ChallengeResult:
    """``result`` with each challenge that failed as a contradiction relabelled not measurable
    (``FLICKER_DETAIL``, ``PROJECTOR_FLICKER_DETAIL``) where a flickering bright ambient, as the IR
    frames see it cell by cell, explains the contradiction (:func:`_flicker_explained`,
    :func:`_projector_flicker_explained`). ``cells``: (n, GRID*GRID, 3) the face grids the colours were
    read from (NaN rows without a face); ``ir_cells``: (n, GRID*GRID) the registered IR in the same
    cells (:func:`ir_grid`); ``lit``: the frames the projector lit, as the camera reports them (an
    injector writes its own: this decides only attack or not measurable, never live). A projector
    window that failed as a contradiction or "did not switch" (``DROWNED_DETAIL``) is relabelled
    ``PROJECTOR_UNLIT_LIGHT_DETAIL`` where the room's infrared on the unlit frames explains it
    (:func:`_projector_unlit_light`).
    Nothing that passed changes; no window passes here."""
    if cells is None or ir_cells is None or not any(relabelable(r) for r in result.results):
        return result
    amb = ambient_ir(ir_cells, lit)
    out = []
    for r in result.results:
        if r.kind is Kind.PROJECTOR and not r.passed and not r.measurable and r.detail == DROWNED_DETAIL:
            if UNLIT_LIGHT and energies is not None and lit is not None and _projector_unlit_light(
                    challenge.schedule, np.asarray(energies, dtype=np.float64), ir_cells, lit, PROJECTOR_MAX_LAG,
                    PROJECTOR_MIN_SEPARATION):
                r = r.relabelled(PROJECTOR_UNLIT_LIGHT_DETAIL)
        elif not r.passed and r.measurable:
            if r.kind is Kind.ILLUMINATION and challenge.steps and _flicker_explained(
                    challenge.steps, np.asarray(cells, dtype=np.float64), amb, ILLUMINATION_MAX_LAG,
                    ILLUMINATION_MIN_SEPARATION, _DEFAULTS):
                r = r.relabelled(FLICKER_DETAIL)
            elif r.kind is Kind.PROJECTOR and energies is not None and _projector_flicker_explained(
                    challenge.schedule, np.asarray(energies, dtype=np.float64), amb, PROJECTOR_MAX_LAG,
                    PROJECTOR_MIN_SEPARATION):
                r = r.relabelled(PROJECTOR_FLICKER_DETAIL)
            elif r.kind is Kind.PROJECTOR and UNLIT_LIGHT and energies is not None and lit is not None and \
                    _projector_unlit_light(challenge.schedule, np.asarray(energies, dtype=np.float64), ir_cells, lit,
                                      PROJECTOR_MAX_LAG, PROJECTOR_MIN_SEPARATION):
                r = r.relabelled(PROJECTOR_UNLIT_LIGHT_DETAIL)
            elif r.kind is Kind.PROJECTOR and SWEPT_RUN and energies is not None and _swept_run(
                    challenge.schedule, np.asarray(energies, dtype=np.float64), PROJECTOR_MAX_LAG,
                    PROJECTOR_MIN_SEPARATION, ir_cells):
                r = r.relabelled(PROJECTOR_GLINT_DETAIL)
        out.append(r)
    return ChallengeResult(tuple(out))


def verify(challenge: Challenge, energies: Sequence[float] | np.ndarray | None = None,
           rgb: Sequence[Sequence[float]] | np.ndarray | None = None) -> ChallengeResult:
    """Verify each challenge of ``challenge`` on its measurements (energies for the projector,
    face colours for the illumination)."""
    out = []
    if Kind.PROJECTOR in challenge.kinds:
        out.append(verify_projector(challenge.schedule, [] if energies is None else list(energies)))
    if Kind.ILLUMINATION in challenge.kinds:
        out.append(verify_illumination(challenge.steps, rgb if rgb is not None else np.zeros((0, 3))))
    return ChallengeResult(tuple(out))


def projector_states(energies: Sequence[float] | np.ndarray) -> np.ndarray:
    """Each frame's projector state as its own IR shows it (the split :func:`verify_projector` uses;
    no knowledge of the schedule goes into it): energy above the geometric middle of the levels
    around the frame. The window's levels are its 10th and 90th percentiles; in a dark window (its
    10th under ``DARK_WINDOW_SHARE`` of its 90th) of at least ``LOCAL_FRAMES`` frames each frame's
    low level is raised to the lowest energy of the ``LOCAL_FRAMES`` consecutive frames around it
    (centred on it, kept inside the window) and its high level lowered to their highest, so an
    ambient that moves during the window (a passing headlamp at night) moves the split with it; the
    low level is taken as at least ``DARK_FLOOR`` of the high one. Unmeasured frames are off."""
    e = np.asarray(energies, dtype=np.float64)
    if e.size == 0 or not np.isfinite(e).any():
        return np.zeros(e.size, bool)
    f = np.sort(e[np.isfinite(e)])
    lo, hi = _percentile(f, 10), _percentile(f, 90)
    x = np.nan_to_num(e, nan=0.0)
    if e.size < LOCAL_FRAMES or not lo < DARK_WINDOW_SHARE * hi:
        return x > np.sqrt(max(lo, DARK_FLOOR * hi, 1e-6) * max(hi, 1e-6))
    runs = np.lib.stride_tricks.sliding_window_view(x, LOCAL_FRAMES)     # row j: frames j .. j + LOCAL_FRAMES - 1
    row = np.clip(np.arange(e.size) - LOCAL_FRAMES // 2, 0, e.size - LOCAL_FRAMES)
    high = np.minimum(np.max(runs, axis=1)[row], hi)
    low = np.maximum(np.min(runs, axis=1)[row], lo)
    return x > np.sqrt(np.maximum(np.maximum(low, DARK_FLOOR * high), 1e-6) * np.maximum(high, 1e-6))


# The unlit frames' energy the split assumes at least, as a share of the lit frames' (the 90th
# percentile, or the highest around the frame). A dark room's unlit IR frames are black but for a
# stray DN: with a tenth of them at exactly 0 the geometric middle fell to noise level and their
# sub-DN differences decided the split (the ninth family's live/262 under a 100 Hz flickering LED:
# lit 7.25, unlit 0.0-0.02 with the flicker's 3-frame beat, 8 unlit frames read lit;
# docs/liveness.md, *The ninth family*). The split then sits at ~3 % of the lit level. Only frames
# whose low level is under this share change.
DARK_FLOOR = 1e-3
# The consecutive frames around each frame whose lowest and highest energies are its levels in the
# split (:func:`projector_states`): enough that every run of them holds frames of both states in any
# window of a camera that obeys the schedule: the longest run (``PROJECTOR_RUNS``' 6) and one frame
# more for a late edge, and at the window's start up to ``PROJECTOR_MAX_LAG`` frames still showing
# the state before the window, which may be the first run's: 3 + 6 + 1 frames of one state, then
# one of the other. Why: a car's headlamp passing at night (the twelfth family's headlights, 0.5-2 s
# at half height) lifts the unlit frames from 0 to ~0.4 against lit ~5.4 for a second; the window's
# own 10th percentile stays 0 and its split (``DARK_FLOOR``: ~3 % of the lit level) under them, so
# they read lit (docs/liveness.md, *A passing headlamp, split*).
LOCAL_FRAMES = PROJECTOR_MAX_LAG + PROJECTOR_RUNS[1] + 2
# The windows split frame by frame (:func:`projector_states`): the dark ones, whose unlit tenth (the
# 10th percentile) is under this share of the lit level (the 90th), so that their split sits under
# half the lit level. There the unlit frames hold little but the room's own infrared, and a light
# that moves lifts them by many times their level. In a brighter window the ambient would have to
# move by half the lit level to cross the split: direct sun's drift (``DRIFTED_DETAIL``); split
# frame by frame, a blind stream that wanders as the sun does was read more faithfully and passed
# more often (``python -m bench.challenge_stats blind-outcomes 2000``, ``drifting``, 16 and 24
# framesets: 137 -> 159 and 9 -> 14 of 4000, never above the clean blind stream's 328 and 54). Those
# keep the window's levels: every row of that bench as before.
DARK_WINDOW_SHARE = 0.25


def _percentile(s: np.ndarray, q: float) -> float:
    """``np.percentile(s, q)`` of a sorted, finite, non-empty vector, to the last bit: the linear
    method's index ``(n - 1) * q / 100`` and its interpolation (``numpy``'s ``_lerp``), without the
    general machinery (this runs for every probe the server checks)."""
    v = (len(s) - 1) * (q / 100)
    lo = min(math.floor(v), len(s) - 1)
    hi = min(lo + 1, len(s) - 1)
    a, b, g = float(s[lo]), float(s[hi]), v - lo
    d = b - a
    return b - d * (1 - g) if g >= 0.5 else a + d * g


# sRGB-like decoding of 8-bit colour to light on the sensor (up to exposure and gains).
_LINEAR = np.where(np.arange(256) / 255.0 <= 0.04045, np.arange(256) / 255.0 / 12.92,
                   ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4).astype(np.float32)
GRID = 4
# The part of a face box that is skin on most faces: below the hairline, inside the cheeks' edges.
BOX_INSET = (0.18, 0.2, 0.18, 0.08)       # left, top, right, bottom shares of the face box


def evidence_box(boxes: Sequence[Sequence[float]], shape: tuple[int, ...] | None) -> tuple[int, int, int, int] | None:
    """One box for a whole window (x0, y0, x1, y1, colour pixels): the median of the face boxes,
    inset to the skin, clipped to the image; None when no face was found."""
    if not boxes or shape is None:
        return None
    x0, y0, x1, y1 = np.median(np.asarray(boxes, dtype=np.float64), axis=0)
    w, h = x1 - x0, y1 - y0
    l_, t_, r_, b_ = BOX_INSET
    bx0, by0 = int(round(x0 + l_ * w)), int(round(y0 + t_ * h))
    bx1, by1 = int(round(x1 - r_ * w)), int(round(y1 - b_ * h))
    bx0, by0 = max(bx0, 0), max(by0, 0)
    bx1, by1 = min(bx1, shape[1]), min(by1, shape[0])
    if bx1 - bx0 < 2 * GRID or by1 - by0 < 2 * GRID:
        return None
    return bx0, by0, bx1, by1


def face_grid(bgr: np.ndarray, box: Sequence[int]) -> np.ndarray:
    """(GRID, GRID, 3) mean linear R, G, B of ``box`` (x0, y0, x1, y1) in an 8-bit BGR image, cut
    into GRID x GRID cells (``np.array_split`` along each axis).

    Each cell's mean is what ``cell.reshape(-1, 3).mean(axis=0)`` gives, to the last bit: a float32
    sum over the cell's pixels in row-major order, divided by their count. The cells are summed
    side by side instead of one at a time (the judge computes a grid for every frame of a window,
    the server for each probe): each is laid out in a column of one array, rows and columns of a
    shorter cell padded with black, whose linear value 0.0 leaves a float32 sum unchanged, and the
    columns are reduced together, in the same order a cell's own sum takes."""
    x0, y0, x1, y1 = (int(v) for v in box)
    region = bgr[y0:y1, x0:x1]
    rows, cols = _split_bounds(region.shape[0], GRID), _split_bounds(region.shape[1], GRID)
    tall, wide = rows[1] - rows[0], cols[1] - cols[0]          # the largest cell (array_split's first)
    from agent.pipeline.align import scratch

    # The padded cells and their linear values: the thread's kept temporaries in the worker.
    cells = scratch("challenge.face_grid.cells", (tall, wide, GRID, GRID, 3), np.uint8)
    cells.fill(0)
    counts = np.empty((GRID, GRID, 1), np.intp)
    # A pixel's three bytes copied as one item (numpy's void of 3 bytes): the same bytes as copying
    # its channels, without an inner loop of 3 per pixel (perf25: about half the copies' time).
    by_pixel = region.dtype == np.uint8 and region.ndim == 3 and region.shape[2] == 3 and region.strides[2] == 1
    src, dst = (region.view("V3")[..., 0], cells.view("V3")[..., 0]) if by_pixel else (region, cells)
    for i in range(GRID):
        for j in range(GRID):
            h, w = rows[i + 1] - rows[i], cols[j + 1] - cols[j]
            dst[:h, :w, i, j] = src[rows[i]:rows[i + 1], cols[j]:cols[j + 1]]
            counts[i, j] = h * w
    # _LINEAR[cells] by OpenCV's table lookup (numpy's indexing would first make the indices intp:
    # another array eight times the cells' size).
    import cv2  # here, as in ``dot_energy``: the daemon imports this module without OpenCV

    flat = cells.reshape(tall * wide, GRID * GRID * 3)
    linear = cv2.LUT(flat, _LINEAR, dst=scratch("challenge.face_grid.linear", flat.shape, np.float32))
    sums = np.add.reduce(linear, axis=0).reshape(GRID, GRID, 3)
    # As ``mean`` divides: the float32 sum by the integer count, into float32.
    np.true_divide(sums, counts, out=sums, casting="unsafe")
    return sums[:, :, ::-1].astype(np.float64)


def _split_bounds(n: int, parts: int) -> list[int]:
    """Where ``np.array_split`` cuts ``n`` items into ``parts``: the first ``n % parts`` sections
    one longer than the rest."""
    size, extra = divmod(n, parts)
    bounds = [0]
    for k in range(parts):
        bounds.append(bounds[-1] + size + (k < extra))
    return bounds


FACE_SELECTIONS = ("window", "frame")


def face_response(grids: np.ndarray | Sequence, selection: str = "window") -> np.ndarray:
    """(n, 3) the face's light per frame, R, G, B, from (n, GRID*GRID, 3) cell grids (rows of NaN
    where a frame has none): each cell relative to its own mean over the window, then per channel the
    mean of half of the cells, times the cells' overall level.

    Skin cells answer the screen in proportion (one light, each cell's own albedo): their relative
    light is one curve. A blink, the jaw or a strand of hair moves a few cells for part of the window,
    and a cell that is not skin (hair, background) does not answer the screen. ``"window"`` (the
    default): ONE choice of cells for the whole window, per channel the half whose relative light
    departs least from the cells' median on each frame (mean square over the window's frames with a
    face; ties to the lower cell index): the cells that move together, the screen's response
    included; a cell that moved on its own, or did not answer the screen, departs from the median and
    is left out on every frame. ``"frame"`` (the measure before, kept for the bench's comparison): the
    middle half of the cells ranked afresh on every frame (an interquartile mean); which cells are in
    it can change from one frame to the next, and in bright light that change alone is a whole gain
    of the screen (docs/liveness.md, *The face measure: one choice of cells for the window*)."""
    if selection not in FACE_SELECTIONS:
        raise ValueError(f"unknown face cell selection {selection!r}")
    g = np.asarray(grids, dtype=np.float64)
    if g.size == 0:
        return np.zeros((0, 3))
    g = g.reshape(g.shape[0], -1, 3)
    if not np.isfinite(g).any():
        return np.full((g.shape[0], 3), np.nan)
    # np.nanmean is np.mean when nothing is NaN (the same sum and division): the server's grids
    # usually have a face in every frame, so the NaN handling is skipped then.
    faceless = bool(np.isnan(g).any())
    cells = g.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)        # all-NaN frames and cells: NaN, as meant
        level = np.nanmean(g, axis=0) if faceless else g.mean(axis=0)  # (cells, 3) each cell's mean
    rel = g / np.where(level > 1e-9, level, np.nan)[None]
    overall = np.nanmean(level, axis=0) if np.isnan(level).any() else level.mean(axis=0)
    if selection == "frame":
        srt = np.sort(rel, axis=1)                             # NaN rows stay NaN (sorted last)
        q = cells // 4
        return np.mean(srt[:, q:cells - q], axis=1) * overall[None]
    half = cells // 2
    if faceless or not np.all(level > 1e-9):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            dev = np.square(rel - np.nanmedian(rel, axis=1)[:, None])
            score = np.nanmean(dev, axis=0)                    # (cells, 3); NaN: a cell never measured
            keep = np.argsort(np.where(np.isfinite(score), score, np.inf), axis=0, kind="stable")[:half]
            mean = np.nanmean(rel[:, keep, np.arange(3)], axis=1)
    else:
        srt = np.sort(rel, axis=1)
        centre = srt[:, half] if cells % 2 else (srt[:, half - 1] + srt[:, half]) / 2   # the median, (n, 3)
        score = np.square(rel - centre[:, None]).mean(axis=0)                           # (cells, 3)
        keep = np.argsort(score, axis=0, kind="stable")[:half]                          # (cells / 2, 3)
        mean = rel[:, keep, np.arange(3)].mean(axis=1)
    return mean * overall[None]
