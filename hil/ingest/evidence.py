"""The server's own view of a capture: which challenges it demands, whether the camera is the one it
registered, and whether the challenge window's evidence shows the challenges were met.

The terminal's verdict alone never accepts a probe. A terminal's signing key can be read by root on
the terminal, and a signed "live" is then worth nothing; what the server can still check is physics
the terminal has to have measured: the signed, sealed probe carries per-frameset, low-resolution
measurements of the challenge window (``ChallengeEvidence``) and the server re-derives both
sequences from the nonce it issued and verifies them itself, with its own thresholds:

* **Policy** (``ChannelPolicy``, per channel): the challenges the server demands. A terminal declares
  what its camera and screen can do (``CheckCapabilities``, before the person poses, and again in
  ``BeginCapture``); one that cannot meet the policy is refused with ``CAPABILITY_MISSING`` — never a
  failed presentation. A challenge demands every challenge the terminal declared, and at least the
  policy's.
* **Camera** (``CameraPin``): a terminal registered with its camera's serial, firmware and
  calibration digest must send probes from that camera (``UNKNOWN_CAMERA``); a probe from a
  recording is never evidence of a live capture. One registered with its camera's enrolled dot reference
  (``dot_reference_sha256``, pin34) must send probes its judge judged with that reference
  (``DOT_REFERENCE_MISSING``, ``DOT_REFERENCE_MISMATCH``: :func:`check_dot_reference`).
* **Evidence** (``verify``; failures are ``EVIDENCE_FAILED``): one entry per judged frameset, bound
  to the liveness report's frame digests in order, from the challenges demanded; frame counters and
  timestamps strictly increasing at a camera's rate, with no frameset lost (``agent.pipeline.gaps``);
  a face in most framesets (the ``face`` flags, which count; the colour is measured on every listed
  grid, as the terminal's judge does); the IR energies follow the projector schedule
  (``agent.liveness.challenge.verify_projector``); the face's colour follows the screen's sequence
  (``verify_illumination``); and the face grid of the frameset the crops came from is what the
  probe's own colour crop shows there (the crop is bound to its digest,
  so the evidence is tied to pixels the server holds).

What it cannot do: a terminal whose key and software an attacker controls can synthesise evidence
consistent with a crop it also supplies. Evidence raises the bar from "write 'live'" to "render a
physically consistent window for this nonce"; keys held in a TPM whose quote the server checks
(``attestation.py``) are what keep a rooted terminal from signing at all.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.liveness.challenge import (
    GRID,
    ILLUMINATION_MAX_LAG,
    ILLUMINATION_MIN_SEPARATION,
    PROJECTOR_MAX_LAG,
    PROJECTOR_MIN_SEPARATION,
    Challenge,
    ChallengeError,
    Kind,
    face_grid,
    face_response,
    kinds_from,
    verify_illumination,
    verify_projector,
)
from agent.pipeline.gaps import frameset_period, per_frameset, period_of, window_gap
from agent.uplink.seal import ProbeRejected
from proto.capture_agent.v1 import ingest_pb2 as pb

NAMES = {pb.PROJECTOR: Kind.PROJECTOR, pb.ILLUMINATION: Kind.ILLUMINATION}
VALUES = {v: k for k, v in NAMES.items()}


class CapabilityMissing(Exception):
    """The channel's policy demands a challenge the terminal cannot take."""


@dataclass(frozen=True)
class ChannelPolicy:
    """``[[challenge_policy]]`` in the server config: the challenges a channel demands.

    ``channel``: ``counter``, ``kiosk``, ``vtm``, ``mobile``, or ``*`` for every channel not named.
    ``require``: challenge names a terminal must be able to take (``projector``, ``illumination``);
    every other challenge it declares is demanded too. ``frames``: the window's framesets for this
    channel (0: the server's ``frames``)."""

    channel: str = "*"
    require: tuple[str, ...] = ("illumination",)
    frames: int = 0

    def __post_init__(self) -> None:
        try:
            kinds_from(self.require)
        except ChallengeError as exc:
            raise ValueError(f"challenge_policy {self.channel}: {exc.message}") from None
        if self.frames and not 8 <= self.frames <= 120:
            raise ValueError(f"challenge_policy {self.channel}: frames must be 0 or 8-120")
        if not self.channel or len(self.channel) > 32:
            raise ValueError("challenge_policy channel must be a channel name or \"*\"")


DEFAULT_POLICY = (ChannelPolicy(),)


def policy_for(policies: Iterable[ChannelPolicy], channel: str) -> ChannelPolicy:
    """The policy naming ``channel``, else the ``*`` one, else the default (illumination required)."""
    ps = list(policies) or list(DEFAULT_POLICY)
    return next((p for p in ps if p.channel == channel), next((p for p in ps if p.channel == "*"), DEFAULT_POLICY[0]))


def offered(caps: pb.ChallengeCapabilities) -> frozenset[Kind]:
    return frozenset(k for k, on in ((Kind.PROJECTOR, caps.projector), (Kind.ILLUMINATION, caps.illumination))
                     if on)


def demanded(policy: ChannelPolicy, caps: pb.ChallengeCapabilities) -> frozenset[Kind]:
    """Every challenge the terminal offers; ``CapabilityMissing`` if it lacks one the policy requires."""
    can = offered(caps)
    need = kinds_from(policy.require)
    missing = sorted(k.value for k in need - can)
    if missing:
        raise CapabilityMissing(f"channel {policy.channel!r} demands the {' and '.join(missing)} challenge"
                                f"{'s' if len(missing) > 1 else ''}, which this terminal's camera or screen "
                                "cannot take")
    out = can | need
    if not out:
        raise CapabilityMissing("this terminal can take no physical challenge (no projector control, no screen)")
    return out


def names(kinds: Iterable[Kind]) -> str:
    return ",".join(sorted(k.value for k in kinds))


def to_proto(kinds: Iterable[Kind]) -> list[pb.ChallengeKind]:
    return [VALUES[k] for k in sorted(kinds, key=lambda k: k.value)]


@dataclass(frozen=True)
class CameraPin:
    """The camera a terminal was provisioned with (``[terminals.camera]``); empty fields are not pinned.
    ``dot_reference_sha256`` (pin34): the SHA-256 of the projector dot reference the operator enrolled on it
    (``capture-agent projector-enrol`` prints it), pinned at registration, never learned from probes."""

    serial: str = ""
    firmware: str = ""
    calibration_sha256: str = ""
    dot_reference_sha256: str = ""

    def __post_init__(self) -> None:
        for name in ("calibration_sha256", "dot_reference_sha256"):
            c = getattr(self, name)
            if c and (len(c) != 64 or any(ch not in "0123456789abcdef" for ch in c)):
                raise ValueError(f"camera {name} must be 64 lowercase hex digits")

    @property
    def pinned(self) -> bool:
        return bool(self.serial or self.firmware or self.calibration_sha256 or self.dot_reference_sha256)


def check_camera(pin: CameraPin | None, device: pb.DeviceAttestation) -> None:
    """The probe's camera is the terminal's registered one (``UNKNOWN_CAMERA``)."""
    if pin is None or not pin.pinned:
        return
    for name, want, got in (("serial", pin.serial, device.serial), ("firmware", pin.firmware, device.firmware),
                            ("calibration", pin.calibration_sha256, device.calibration_sha256)):
        if want and got != want:
            raise ProbeRejected("UNKNOWN_CAMERA", f"the probe comes from another camera than the terminal's "
                                f"registered one (its {name} differs)")


DOT_REFERENCE_REASONS = ("DOT_REFERENCE_MISSING", "DOT_REFERENCE_MISMATCH")


def check_dot_reference(pin: CameraPin | None, lv: dict[str, Any]) -> None:
    """pin34: a terminal registered with its camera's dot reference (``CameraPin.dot_reference_sha256``) sends
    probes its judge judged with that reference: the liveness report's ``dot_reference_sha256`` (sealed and signed
    with the evidence) names it. Judged with none (the file emptied or removed, or a terminal from before pin34):
    ``DOT_REFERENCE_MISSING``; with another (the file swapped for one that passes another unit's stream):
    ``DOT_REFERENCE_MISMATCH``. Refused before judging (the nonce's charge stands). This checks what the terminal's
    daemon says: a rooted daemon patched to name the pinned digest while judging with another passes it; the
    binding against that is IMA's measurement of the file, quoted in PCR 10 (docs/keys.md)."""
    if pin is None or not pin.dot_reference_sha256:
        return
    got = lv.get("dot_reference_sha256")
    if got is None:
        raise ProbeRejected("DOT_REFERENCE_MISSING", "the terminal's liveness judge had no dot reference; this "
                            "terminal's camera is registered with one")
    if got != pin.dot_reference_sha256:
        raise ProbeRejected("DOT_REFERENCE_MISMATCH", "the terminal's liveness judge used another dot reference "
                            "than the one registered for its camera (re-enrol and re-register a replaced camera)")


@dataclass(frozen=True)
class EvidenceThresholds:
    """``[evidence]`` in the server config: the server's own thresholds (defaults: the agent's)."""

    projector_min_separation: float = PROJECTOR_MIN_SEPARATION
    illumination_min_separation: float = ILLUMINATION_MIN_SEPARATION
    projector_max_lag: int = PROJECTOR_MAX_LAG
    illumination_max_lag: int = ILLUMINATION_MAX_LAG
    min_face_share: float = 0.8          # of the window's framesets
    min_fps: float = 5.0
    max_fps: float = 120.0
    max_gap_frames: float = 4.0          # a gap between framesets at most this many frame periods
    crop_tolerance: float = 0.004        # linear colour units between the evidence's grid and the crop's

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"evidence.{f.name} must be a non-negative number")
        if not 0 < self.min_face_share <= 1 or self.min_fps >= self.max_fps:
            raise ValueError("evidence.min_face_share must be within (0, 1] and min_fps below max_fps")


class EvidenceFailed(Exception):
    """The evidence does not show the demanded challenges met: ``EVIDENCE_FAILED``."""


@dataclass(frozen=True)
class Frames:
    """The evidence's per-frameset fields as arrays, read from the message once (``check_shape``)
    and used by every later check: no per-frameset Python loop after that."""

    counters: np.ndarray          # (n,) IR/depth frame counters, float64
    stamps: np.ndarray            # (n,) their timestamps, ms
    color_counters: np.ndarray    # (n,) colour frame counters
    color_stamps: np.ndarray      # (n,) their timestamps, ms
    ir_energy: np.ndarray         # (n,) the IR frames' dot energy
    grids: np.ndarray             # (n, GRID*GRID, 3) grids in the evidence box; rows of NaN where none was listed
    digests: list[str]            # the framesets' digests, in order
    face: np.ndarray              # (n,) bool: the face detector found the face in that frameset

    @property
    def faces(self) -> int:
        """Framesets with a face (their ``face`` flag) and a grid."""
        return int((self.face & np.isfinite(self.grids[:, 0, 0])).sum())


_CELLS = 3 * GRID * GRID


def check_shape(payload: pb.ProbePayload) -> Frames | None:
    """Evidence that parses but cannot be read (non-finite numbers, grids of the wrong size, unknown
    challenges, too many frames) is ``MALFORMED``, like any other malformed payload field. Returns
    the evidence's frames as arrays (None when the probe carries no evidence)."""
    if not payload.HasField("evidence"):
        return None
    ev = payload.evidence
    if len(ev.frames) > 240 or len(ev.challenges) > 4:
        raise ProbeRejected("MALFORMED", "challenge evidence has too many frames or challenges")
    if any(c not in NAMES for c in ev.challenges) or len(ev.face_box) not in (0, 4):
        raise ProbeRejected("MALFORMED", "challenge evidence names an unknown challenge or a bad face box")
    frames = ev.frames
    n = len(frames)
    scalars = np.array([(f.frame_counter, f.timestamp_ms, f.color_frame_counter, f.color_timestamp_ms,
                         f.ir_energy, f.face) for f in frames], dtype=np.float64).reshape(n, 6)
    if not np.isfinite(scalars[:, (1, 3, 4)]).all():
        raise ProbeRejected("MALFORMED", "challenge evidence holds a non-finite number")
    raw = np.full((n, _CELLS), np.nan)
    for k, f in enumerate(frames):
        if len(f.face_grid):
            if len(f.face_grid) != _CELLS:
                raise ProbeRejected("MALFORMED", f"challenge evidence's face grid must be {_CELLS} finite values")
            raw[k] = np.asarray(f.face_grid, dtype=np.float64)
    with_grid = np.array([len(f.face_grid) == _CELLS for f in frames], dtype=bool).reshape(n)
    if not np.isfinite(raw[with_grid]).all():
        raise ProbeRejected("MALFORMED", f"challenge evidence's face grid must be {_CELLS} finite values")
    digests = [f.digest for f in frames]
    if any(len(d) != 64 for d in digests):
        raise ProbeRejected("MALFORMED", "challenge evidence's frame digest is not SHA-256 hex")
    # Every listed grid is measured, whatever its frameset's ``face`` flag: the terminal's judge reads
    # every frame's grid in the window's one box (``FrameSelection``), and the server must judge the
    # frames the terminal judged (review 12: with the flagged-faceless frames NaN, 19 of 300 honest
    # windows with 8 of 32 missed by the face detector were refused here and passed there). The
    # flags count the faces (``min_face_share``) and must be set on the crops' frameset; they buy
    # nothing against a rooted terminal, which writes them as it writes the grids.
    return Frames(scalars[:, 0], scalars[:, 1], scalars[:, 2], scalars[:, 3], scalars[:, 4],
                  raw.reshape(n, GRID * GRID, 3), digests, scalars[:, 5] != 0)


def verify(payload: pb.ProbePayload, liveness: dict[str, Any], nonce: bytes, challenges: Iterable[Kind],
           frames: int, t: EvidenceThresholds, read: Frames | None = None) -> dict[str, Any]:
    """Check the evidence of an authenticated, well-formed payload whose terminal said "live" under
    a passed challenge; returns the server's own challenge results, or raises ``EvidenceFailed``.
    ``read``: what ``check_shape`` returned for this payload (read again when not given)."""
    want = frozenset(challenges)
    if payload.device.recording:
        raise EvidenceFailed("the probe says it came from a recording: a recording cannot meet a live challenge")
    if not payload.HasField("evidence") or not payload.evidence.frames:
        raise EvidenceFailed("the probe carries no challenge evidence")
    ev = payload.evidence
    fr = read if read is not None else check_shape(payload)
    assert fr is not None                              # the payload has evidence
    got = frozenset(NAMES[c] for c in ev.challenges)
    if got != want:
        raise EvidenceFailed(f"the evidence is for the {names(got) or 'no'} challenge(s), the nonce demanded "
                             f"{names(want)}")
    digests = liveness.get("frame_digests") or []
    n = len(fr.digests)
    if frames and n != frames:
        raise EvidenceFailed(f"the evidence has {n} framesets, the challenge asked for {frames}")
    if fr.digests != list(digests):
        raise EvidenceFailed("the evidence's framesets are not the ones the liveness report judged")
    _check_timing(fr, t)
    faces = fr.faces
    if faces < t.min_face_share * n:
        raise EvidenceFailed(f"a face was measured in only {faces} of {n} framesets")
    challenge = Challenge.from_nonce(nonce, frames=n, kinds=want)
    results: dict[str, Any] = {}
    if Kind.PROJECTOR in want:
        r = verify_projector(challenge.schedule, fr.ir_energy, max_lag=t.projector_max_lag,
                             min_separation=t.projector_min_separation)
        results["projector"] = r.to_dict()
        if not r.passed:
            raise EvidenceFailed(f"projector: {r.detail} (server's check: {r.mismatches} of {r.checked} frames "
                                 f"disagree, separation {r.separation:.1f})")
    if Kind.ILLUMINATION in want:
        # ``ambient=False``: the terminal's room-light rule only relabels a refused window (not
        # measurable, a retry, instead of a contradiction; never a pass), and a probe reaches this
        # check only when the terminal said "live": any refusal here is a contradiction of the probe.
        r = verify_illumination(challenge.steps, face_response(fr.grids), max_lag=t.illumination_max_lag,
                                min_separation=t.illumination_min_separation, ambient=False)
        results["illumination"] = r.to_dict()
        if not r.passed:
            raise EvidenceFailed(f"illumination: {r.detail} (server's check: {r.mismatches} of {r.checked} frames "
                                 f"disagree, separation {r.separation:.1f})")
    _check_crop(payload, digests, fr, t)
    return results


def _check_timing(fr: Frames, t: EvidenceThresholds) -> None:
    streams = (("IR/depth", fr.counters, fr.stamps), ("colour", fr.color_counters, fr.color_stamps))
    # The framesets' period: the slower stream's own (agent/pipeline/gaps.py). A stream faster than
    # the framesets (90 fps depth matched at 30) steps by several of its frames a frameset, so its
    # gaps are counted in framesets' worth of its frames.
    periods = [period_of(c, s) for _, c, s in streams]
    frameset_ms = frameset_period(periods)
    for (what, c, s), (period, _) in zip(streams, periods, strict=True):
        dc, d = c[1:] - c[:-1], s[1:] - s[:-1]                 # np.diff's numbers
        if len(c) > 1 and ((dc <= 0).any() or (d <= 0).any()):
            raise EvidenceFailed(f"{what} frame counters or timestamps do not increase frame after frame")
        if len(s) > 2 and period is not None:
            # per counted frame (drops leave gaps): every step advanced, so this is their median
            if not 1000.0 / t.max_fps <= period <= 1000.0 / t.min_fps:
                raise EvidenceFailed(f"{what} frames arrive at {1000.0 / max(period, 1e-9):.1f} fps, not a camera's "
                                     "rate")
            r = max(1.0, per_frameset(frameset_ms, period)) if frameset_ms is not None else 1.0
            if d.max() > t.max_gap_frames * r * period:
                raise EvidenceFailed(f"{what} frames have a gap of {d.max():.0f} ms in the window")
    # A lost frameset (a counter advancing by a frameset's worth more than the framesets explain,
    # agent/pipeline/gaps.py): the agent ends such a window unjudged (SES_FRAMES_LOST), so one that
    # arrives comes from a terminal that did not; its framesets are compared with the schedule by
    # place, a frame off after the gap. The agent's rule on the same two streams, which set the
    # framesets' period there too; counters only: the server does not know whether a stream's
    # timestamps are the camera's clock or the host's arrival times, which jitter (the terminal
    # checks time on the camera's clock).
    if (gap := window_gap([(what, c, s, False) for what, c, s in streams])) is not None:
        raise EvidenceFailed(f"frames lost in the window: {gap.describe()}")


def _check_crop(payload: pb.ProbePayload, digests: list[str], fr: Frames, t: EvidenceThresholds) -> None:
    """The face grid of the crops' frameset (one with a face) must be what the colour crop shows in
    the evidence's box."""
    ev, crop, grids = payload.evidence, payload.color, fr.grids
    if payload.frame_digest not in digests:
        raise EvidenceFailed("the crops' frameset is not among the evidence's")
    k = digests.index(payload.frame_digest)
    if len(ev.face_box) != 4 or not fr.face[k] or not np.isfinite(grids[k]).all():
        raise EvidenceFailed("the evidence has no face grid for the frameset the crops came from")
    x0, y0, x1, y1 = (int(v) for v in ev.face_box)
    cx0, cy0 = x0 - crop.x, y0 - crop.y
    cx1, cy1 = x1 - crop.x, y1 - crop.y
    if crop.format != "bgr8" or cx0 < 0 or cy0 < 0 or cx1 > crop.width or cy1 > crop.height or cx1 - cx0 < GRID \
            or cy1 - cy0 < GRID:
        raise EvidenceFailed("the evidence's face box is not inside the probe's colour crop")
    px = np.frombuffer(crop.pixels, dtype=np.uint8).reshape(crop.height, crop.width, 3)
    mine = face_grid(px, (cx0, cy0, cx1, cy1)).reshape(GRID * GRID, 3)
    diff = float(np.max(np.abs(mine - grids[k])))
    if diff > t.crop_tolerance:
        raise EvidenceFailed(f"the evidence's face grid differs from the probe's own colour crop by {diff:.4f}")
