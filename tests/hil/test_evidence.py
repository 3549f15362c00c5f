"""The server's own view of a capture (hil/ingest/evidence.py), over real gRPC with mutual TLS: the
challenge evidence it re-verifies before ``OK``, the challenges it demands per channel, the camera
it pinned. Probes are synthetic (``tests/helpers/probes.py``, evidence from ``hil/fakes/evidence.py``);
real captures go through the same checks in tests/uplink/test_uplink_e2e.py."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable

import numpy as np
import pytest

from agent.errors import ConfigError
from agent.liveness.challenge import Challenge, Kind, verify
from agent.liveness.judge import FrameSelection
from agent.purpose import Purpose
from agent.uplink.client import CapabilityRefused
from agent.uplink.seal import ProbeRejected
from hil.fakes.evidence import for_challenge, skin_crop
from hil.ingest import evidence
from hil.ingest.evidence import CameraPin, ChannelPolicy
from hil.ingest.identity import Registry, Terminal
from proto.capture_agent.v1 import ingest_pb2 as pb
from tests.helpers.terminals import CAPS
from tests.hil.test_ingest_server import A, Rig, submit

ILLUMINATION_ONLY = pb.ChallengeCapabilities(illumination=True)


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def test_the_forged_live_probe_of_the_issue_is_refused(rig):
    # Exactly the probe of issue 15: random-noise crops, a hand-written "live" with the challenge
    # "passed", recording=True, purpose ENROLL under a VERIFY nonce, counter 0, signed with the
    # terminal's file key (root can read it).
    c = rig.client()
    ch = c.begin("sess-1", Purpose.VERIFY, capabilities=CAPS)

    def forged(**kw):
        args = dict(purpose=pb.ENROLL, counter=0, evidence=False,
                    payload=lambda p: setattr(p.device, "recording", True))
        args.update(kw)
        return rig.probe(ch, **args)
    rec = submit(c, forged())
    assert not rec.accepted and rec.reason == "MALFORMED"              # counter 0, the first check it fails
    rec = submit(c, forged(counter=None))
    assert not rec.accepted and rec.reason == "UNBOUND"                # ENROLL on a VERIFY nonce
    # With the header made right, what is left is the hand-written verdict: the server believes only
    # evidence it checks itself, and there is none.
    rec = submit(c, forged(counter=None, purpose=pb.VERIFY))
    assert not rec.accepted and rec.reason == "EVIDENCE_FAILED" and rec.liveness_verdict == "live"
    assert "recording" in rec.detail
    ch2 = c.begin("sess-1", Purpose.VERIFY, capabilities=CAPS)
    rec = submit(c, rig.probe(ch2, evidence=False))                   # not a recording, still no evidence
    assert rec.reason == "EVIDENCE_FAILED" and "no challenge evidence" in rec.detail
    # The server's judgement uses the nonce, like NOT_LIVE (no retrying the same nonce with better lies).
    assert rig.state.store.get_nonce(ch2.nonce, rig.state.now_ms()).used
    ch3 = c.begin("sess-1", Purpose.VERIFY, capabilities=CAPS)
    assert submit(c, rig.probe(ch3)).reason == "OK"                   # control: evidence that meets it


def mutated(ch: pb.Challenge, change) -> Callable[[pb.ProbePayload], None]:
    def payload(p: pb.ProbePayload) -> None:
        change(p.evidence, p)
    return payload


def flip_energies(ev, p):
    for f in ev.frames:
        f.ir_energy = 20.0 - f.ir_energy                              # every frame the other state


def replay_colours(ev, p):
    other = for_challenge(pb.Challenge(nonce=b"o" * 32, frames=len(ev.frames), challenges=list(ev.challenges)))
    best = next(k for k, f in enumerate(ev.frames) if f.digest == p.frame_digest)
    for k, f in enumerate(ev.frames):
        if k != best:
            f.ClearField("face_grid")
            f.face_grid.extend(other.evidence.frames[k].face_grid)


def flat_colours(ev, p):
    rng = np.random.default_rng(1)
    best = next(k for k, f in enumerate(ev.frames) if f.digest == p.frame_digest)
    grid = np.array(ev.frames[best].face_grid)
    for k, f in enumerate(ev.frames):
        if k != best:                                                 # the crop's frame keeps its own
            f.ClearField("face_grid")
            f.face_grid.extend(grid * (1 + rng.normal(0, 0.002)))


def another_colour_crop(ev, p):
    px = skin_crop(seed=9).tobytes()                                  # a crop the evidence was not taken from
    p.color.pixels, p.color.sha256 = px, hashlib.sha256(px).digest()


def stamps_back(ev, p):
    ev.frames[5].timestamp_ms = ev.frames[4].timestamp_ms - 1


def frames_at_200_fps(ev, p):
    for k, f in enumerate(ev.frames):
        f.timestamp_ms = 1e6 + 5 * k


def a_digest_swapped(ev, p):
    ev.frames[3].digest = "0" * 64


def one_frame_less(ev, p):
    del ev.frames[-1]


def projector_left_out(ev, p):
    ev.ClearField("challenges")
    ev.challenges.append(pb.ILLUMINATION)


def box_outside_the_crop(ev, p):
    ev.ClearField("face_box")
    ev.face_box.extend([0, 0, 40, 40])


def few_faces(ev, p):
    for f in ev.frames[:len(ev.frames) // 2]:
        f.face = False


EVIDENCE_FAILS = {
    "IR energies against the schedule": flip_energies, "colours of another sequence": replay_colours,
    "no screen response": flat_colours, "grid unlike the colour crop": another_colour_crop,
    "timestamps going back": stamps_back, "a camera at 200 fps": frames_at_200_fps,
    "frames not the judged ones": a_digest_swapped, "a frameset missing": one_frame_less,
    "a demanded challenge missing": projector_left_out, "face box outside the crop": box_outside_the_crop,
    "a face in half the frames": few_faces,
}


@pytest.mark.parametrize("case", sorted(EVIDENCE_FAILS))
def test_evidence_that_does_not_show_the_challenge_met_is_refused(rig, case):
    # A 32-frameset window: a stream that ignores the nonce passes it far less than once in 10^5
    # (python -m bench liveness), so each refusal here is the check's, not chance's.
    rig.state.frames = 32
    c = rig.client()
    ch = c.begin("sess-1", Purpose.VERIFY, capabilities=CAPS)
    assert set(ch.challenges) == {pb.PROJECTOR, pb.ILLUMINATION}
    rec = submit(c, rig.probe(ch, payload=mutated(ch, EVIDENCE_FAILS[case])))
    assert not rec.accepted and rec.reason == "EVIDENCE_FAILED", (rec.reason, rec.detail)


@pytest.mark.parametrize("bad", ["nan energy", "short grid", "unknown challenge", "three box values"])
def test_unreadable_evidence_is_malformed_and_leaves_the_nonce_unused(rig, bad):
    def change(ev, p):
        if bad == "nan energy":
            ev.frames[2].ir_energy = float("nan")
        elif bad == "short grid":
            del ev.frames[2].face_grid[-1]
        elif bad == "unknown challenge":
            ev.challenges.append(7)
        else:
            del ev.face_box[-1]
    c = rig.client()
    ch = c.begin("sess-1", Purpose.VERIFY, capabilities=CAPS)
    rec = submit(c, rig.probe(ch, payload=mutated(ch, change)))
    assert rec.reason == "MALFORMED", rec.detail
    assert not rig.state.store.get_nonce(ch.nonce, rig.state.now_ms()).used
    assert submit(c, rig.probe(ch)).reason == "OK"


def test_the_server_uses_its_own_thresholds(rig):
    c = rig.client()
    ch = c.begin("sess-1", Purpose.VERIFY, capabilities=CAPS)
    # The synthetic screen response is ~150 noise deviations; a server demanding more refuses it.
    rig.state.evidence = evidence.EvidenceThresholds(illumination_min_separation=1e6)
    rec = submit(c, rig.probe(ch))
    assert rec.reason == "EVIDENCE_FAILED" and "illumination" in rec.detail
    assert re.search(r"server's check: \d+ of \d+ frames disagree", rec.detail), rec.detail   # frames, not steps


def test_a_camera_that_cannot_meet_the_channels_policy_is_refused_before_anyone_poses(rig):
    rig.state.policies = (ChannelPolicy("counter", ("projector", "illumination")), ChannelPolicy("*", ()))
    c = rig.client()
    # A camera without projector control (a UVC module, a D405): the counter channel refuses it up
    # front with a code of its own; the kiosk channel takes it and demands what it offers.
    with pytest.raises(CapabilityRefused) as ei:
        c.check_capabilities("counter", ILLUMINATION_ONLY)
    assert ei.value.code == "UPL_CAPABILITY_REFUSED" and "projector" in ei.value.message
    with pytest.raises(CapabilityRefused):
        c.begin("sess-1", Purpose.VERIFY, capabilities=ILLUMINATION_ONLY, channel="counter")
    assert c.check_capabilities("kiosk", ILLUMINATION_ONLY) == ("illumination",)
    assert c.check_capabilities("counter", CAPS) == ("illumination", "projector")
    ch = c.begin("sess-1", Purpose.VERIFY, capabilities=ILLUMINATION_ONLY, channel="kiosk")
    assert list(ch.challenges) == [pb.ILLUMINATION] and ch.frames == 12
    assert submit(c, rig.probe(ch)).reason == "OK"
    # A terminal that can take no challenge at all is refused whatever the policy.
    with pytest.raises(CapabilityRefused):
        c.check_capabilities("kiosk", pb.ChallengeCapabilities())


def test_the_window_follows_the_challenges_demanded_when_the_server_sets_none(rig):
    rig.state.frames = 0
    c = rig.client()
    assert c.begin("s", Purpose.VERIFY, capabilities=CAPS).frames == 32
    rig.state.policies = (ChannelPolicy("*", ("projector",)),)
    assert c.begin("s", Purpose.VERIFY, capabilities=pb.ChallengeCapabilities(projector=True)).frames == 48
    rig.state.policies = (ChannelPolicy("*", ("projector",), frames=40),)
    assert c.begin("s", Purpose.VERIFY, capabilities=pb.ChallengeCapabilities(projector=True)).frames == 40


def test_a_probe_from_another_camera_than_the_registered_one_is_refused(rig):
    pin = CameraPin("SIM0000000001", "sim-1.0.0", "a" * 64)
    old = rig.state.registry.terminals[A]
    rig.state.registry = Registry([Terminal(A, old.public_key, old.spki_sha256, camera=pin)])
    c = rig.client()

    def camera(serial: str, calibration: str):
        def change(p: pb.ProbePayload) -> None:
            p.device.serial, p.device.firmware, p.device.calibration_sha256 = serial, "sim-1.0.0", calibration
        return change
    for serial, calibration in (("SIM0000000002", "a" * 64), ("SIM0000000001", "b" * 64)):
        ch = c.begin("sess-1", Purpose.VERIFY, capabilities=CAPS)
        rec = submit(c, rig.probe(ch, payload=camera(serial, calibration)))
        assert rec.reason == "UNKNOWN_CAMERA", rec.detail
        assert not rig.state.store.get_nonce(ch.nonce, rig.state.now_ms()).used
    ch = c.begin("sess-1", Purpose.VERIFY, capabilities=CAPS)
    assert submit(c, rig.probe(ch, payload=camera("SIM0000000001", "a" * 64))).reason == "OK"


def test_policy_and_camera_pins_in_the_server_config(tmp_path):
    from agent.config import from_dict
    from hil.ingest.config import ServerConfig
    cfg = from_dict(ServerConfig, {"challenge_policy": [{"channel": "counter", "require": ["projector"], "frames": 48}],
                                   "terminals": [{"id": "k1", "camera": {"serial": "S1",
                                                                         "calibration_sha256": "c" * 64,
                                                                         "dot_reference_sha256": "d" * 64}}]})
    assert evidence.policy_for(cfg.challenge_policy, "counter").frames == 48
    assert evidence.policy_for(cfg.challenge_policy, "kiosk").require == ("illumination",)      # the default
    assert cfg.terminals[0].camera == CameraPin("S1", "", "c" * 64, "d" * 64)
    for bad in ({"challenge_policy": [{"require": ["laser"]}]},
                {"challenge_policy": [{"channel": "kiosk"}, {"channel": "kiosk"}]},
                {"challenge_policy": [{"frames": 4}]},
                {"terminals": [{"id": "k1", "camera": {"calibration_sha256": "xyz"}}]},
                {"terminals": [{"id": "k1", "camera": {"dot_reference_sha256": "D" * 64}}]}):
        with pytest.raises(ConfigError):
            from_dict(ServerConfig, bad)


def test_synthetic_evidence_meets_the_servers_check_and_its_own_challenge_only():
    ch = pb.Challenge(nonce=b"n" * 32, frames=24, challenges=[pb.PROJECTOR, pb.ILLUMINATION])
    syn = for_challenge(ch)
    p = pb.ProbePayload(color=syn.color, evidence=syn.evidence, frame_digest=syn.frame_digest)
    lv = {"frame_digests": syn.digests}
    kinds = {Kind.PROJECTOR, Kind.ILLUMINATION}
    assert set(evidence.verify(p, lv, ch.nonce, kinds, 24, evidence.EvidenceThresholds())) == {"projector",
                                                                                                "illumination"}
    with pytest.raises(evidence.EvidenceFailed):
        evidence.verify(p, lv, b"m" * 32, kinds, 24, evidence.EvidenceThresholds())
    # The evidence's numbers are what the judge measures: IR energy high where the schedule lit.
    sched = np.array(Challenge.from_nonce(ch.nonce, 24, kinds).schedule)
    e = np.array([f.ir_energy for f in syn.evidence.frames])
    assert np.all((e[1:] > 8) == sched[:-1])
    assert json.loads(json.dumps(lv)) == lv


def test_the_evidence_is_read_once_into_arrays_that_say_what_the_frames_say():
    """``check_shape`` returns the frames as arrays (``Frames``) and ``verify`` judges the same with
    them as when it reads the message itself; a frameset without a grid has a row of NaN, and a grid
    sent for a frameset that says it found no face is read as sent (the terminal judged it) but the
    frameset is not counted as a face."""
    ch = pb.Challenge(nonce=b"r" * 32, frames=24, challenges=[pb.PROJECTOR, pb.ILLUMINATION])
    syn = for_challenge(ch)
    p = pb.ProbePayload(color=syn.color, evidence=syn.evidence, frame_digest=syn.frame_digest)
    p.evidence.frames[3].face = False                              # a grid, but no face: not counted
    p.evidence.frames[5].ClearField("face_grid")
    p.evidence.frames[5].face = False
    p.evidence.frames[6].ClearField("face_grid")                   # a face, but no grid: not counted
    fr = evidence.check_shape(p)
    assert fr is not None and fr.grids.shape == (24, 16, 3) and fr.faces == 21
    assert fr.face.tolist() == [k not in (3, 5) for k in range(24)]
    assert fr.grids[3].reshape(-1).tolist() == list(p.evidence.frames[3].face_grid)
    assert np.isnan(fr.grids[[5, 6]]).all() and np.isfinite(np.delete(fr.grids, [5, 6], axis=0)).all()
    assert fr.digests == syn.digests and fr.ir_energy.tolist() == [f.ir_energy for f in p.evidence.frames]
    assert fr.color_stamps.tolist() == [f.color_timestamp_ms for f in p.evidence.frames]
    lv = {"frame_digests": syn.digests}
    kinds = {Kind.PROJECTOR, Kind.ILLUMINATION}
    t = evidence.EvidenceThresholds()
    assert evidence.verify(p, lv, ch.nonce, kinds, 24, t, fr) == evidence.verify(p, lv, ch.nonce, kinds, 24, t)
    assert evidence.check_shape(pb.ProbePayload()) is None
    p.evidence.frames[7].face_grid[4] = float("nan")              # a grid of a faceless frameset is still read
    p.evidence.frames[7].face = False
    with pytest.raises(ProbeRejected) as exc:
        evidence.check_shape(p)
    assert exc.value.reason == "MALFORMED"


def test_frames_the_face_detector_missed_are_judged_by_the_server_as_the_terminal_judges_them():
    """Review 12: the terminal's judge measures the illumination on every frame's grid in the window's
    box (``FrameSelection``), whether or not the face detector found the face in that frame; the
    server used to set the grids of framesets flagged ``face: false`` to NaN, and so refused honest
    windows the terminal passed (here: the detector missed the face on every frame of one of the
    screen's steps, 3-4 of 32, within ``min_face_share``). It judges the listed grids now; the flags
    still count the faces, and the crops' frameset must have one."""
    kinds = {Kind.PROJECTOR, Kind.ILLUMINATION}
    t = evidence.EvidenceThresholds()
    for nonce in (b"f" * 32, b"g" * 32, b"h" * 32):
        ch = pb.Challenge(nonce=nonce, frames=32, challenges=[pb.PROJECTOR, pb.ILLUMINATION])
        syn = for_challenge(ch, lag=1)
        c = Challenge.from_nonce(nonce, frames=32, kinds=kinds)
        step = min((s for s in c.steps[1:-1] if not s.start + 1 <= syn.best < s.start + 1 + s.frames),
                   key=lambda s: s.frames)
        missed = list(range(step.start + 1, step.start + 1 + step.frames))      # the step's frames, at lag 1
        assert 3 <= len(missed) <= 6
        p = pb.ProbePayload(color=syn.color, evidence=syn.evidence, frame_digest=syn.frame_digest)
        for k in missed:
            p.evidence.frames[k].face = False
        lv = {"frame_digests": syn.digests}
        # The terminal's own measure of this window: every frame's grid, the challenge passed.
        grids = [np.asarray(f.face_grid).reshape(-1, 3) for f in p.evidence.frames]
        energies = [f.ir_energy for f in p.evidence.frames]
        terminal = verify(c, energies, FrameSelection(tuple(int(v) for v in p.evidence.face_box), grids, energies).rgb)
        assert terminal.passed, terminal.to_dict()
        got = evidence.verify(p, lv, nonce, kinds, 32, t)            # refused on main: "illumination: ..."
        assert got["illumination"]["passed"] and got["illumination"]["checked"] >= 24
        assert got["illumination"]["lag_frames"] == terminal.get(Kind.ILLUMINATION).lag_frames == 1
        # The flags still bound the missed faces (0.8 of 32: 26 needed) ...
        assert syn.best < 25
        for k in range(32):
            p.evidence.frames[k].face = k < 26
        assert evidence.verify(p, lv, nonce, kinds, 32, t)
        p.evidence.frames[25].face = False
        with pytest.raises(evidence.EvidenceFailed, match="a face was measured in only 25 of 32"):
            evidence.verify(p, lv, nonce, kinds, 32, t)
        # ... and the crops must come from a frameset with a face.
        for f in p.evidence.frames:
            f.face = True
        p.evidence.frames[syn.best].face = False
        with pytest.raises(evidence.EvidenceFailed, match="no face grid for the frameset the crops came from"):
            evidence.verify(p, lv, nonce, kinds, 32, t)


def test_a_90_fps_depth_stream_matched_at_30_is_accepted_as_the_terminal_passes_it_and_a_lost_frameset_refused():
    """Depth/IR at 90 fps matched into 30 fps framesets (agent/pipeline/gaps.py): the matcher's pick
    flips between ticks near some colour phases (steps 2/3/4, a 4-tick step 44 ms: over 4 of the
    stream's own periods), and the terminal's gap check passes the window; the server applies the
    same rule to the same counters, so it accepts it, and still refuses a lost frameset."""
    from agent.pipeline.gaps import window_gap

    ch = pb.Challenge(nonce=b"9" * 32, frames=32, challenges=[pb.PROJECTOR, pb.ILLUMINATION])
    kinds = {Kind.PROJECTOR, Kind.ILLUMINATION}
    t = evidence.EvidenceThresholds()
    rng = np.random.default_rng(90)
    steps = [3, 3, 2, 4, 3, 3, 3, 4, 2, 3, 4, 2, 4, 2, 3, 3, 3, 2, 4, 3, 3, 3, 3, 4, 2, 3, 2, 4, 3, 3, 3]
    ticks = 15000 + np.concatenate([[0], np.cumsum(steps)])

    def window(lost_at: int | None = None) -> tuple[pb.ProbePayload, dict]:
        syn = for_challenge(ch)
        p = pb.ProbePayload(color=syn.color, evidence=syn.evidence, frame_digest=syn.frame_digest)
        for k, f in enumerate(p.evidence.frames):
            late = 1 if lost_at is not None and k >= lost_at else 0      # a frameset lost before k
            f.frame_counter = int(ticks[k] + 3 * late)
            f.timestamp_ms = 1.0e6 + f.frame_counter * 1000 / 90 + float(rng.normal(0, 0.3))
            f.color_frame_counter += late
            f.color_timestamp_ms += late * 1000 / 30
        return p, {"frame_digests": syn.digests}

    p, lv = window()
    fs = p.evidence.frames
    depth = ("depth", [f.frame_counter for f in fs], [f.timestamp_ms for f in fs], True)
    colour = ("color", [f.color_frame_counter for f in fs], [f.color_timestamp_ms for f in fs], True)
    assert window_gap([depth, colour]) is None                 # what the terminal's check answers
    assert max(np.diff(depth[2])) > 4 * 1000 / 90
    assert set(evidence.verify(p, lv, ch.nonce, kinds, 32, t)) == {"projector", "illumination"}
    for k in (5, 17, 30):
        p, lv = window(lost_at=k)
        with pytest.raises(evidence.EvidenceFailed, match="frames lost in the window: .* frame counter advanced"):
            evidence.verify(p, lv, ch.nonce, kinds, 32, t)


def test_the_server_refuses_a_matched_window_exactly_when_the_terminals_check_sees_a_counter_gap():
    """Windows the agent's matcher forms (90 and 30 fps depth, colour phases across the flip, frames
    dropped): the server's verdict on the evidence's counters is the terminal's on the same streams."""
    from agent.pipeline.gaps import WindowGaps
    from tests.pipeline.test_gaps import matched

    ch = pb.Challenge(nonce=b"m" * 32, frames=32, challenges=[pb.PROJECTOR, pb.ILLUMINATION])
    kinds = {Kind.PROJECTOR, Kind.ILLUMINATION}
    t = evidence.EvidenceThresholds()
    seen = {"accepted": 0, "refused": 0}
    for seed, (fps, phase, lost) in enumerate([(90.0, 5.6, ()), (90.0, 5.0, (12,)), (90.0, 6.0, ()),
                                               (90.0, 16.7, (3, 20)), (30.0, 4.1, ()), (30.0, 4.1, (25,)),
                                               (90.0, 27.8, ())]):
        sets = matched(phase, 40, seed, depth_fps=fps, lost_colour=lost)[4:36]
        g = WindowGaps()
        terminal = next((gap for fs in sets if (gap := g.check(fs)) is not None), None)
        syn = for_challenge(ch)
        p = pb.ProbePayload(color=syn.color, evidence=syn.evidence, frame_digest=syn.frame_digest)
        for f, fs in zip(p.evidence.frames, sets, strict=True):
            f.frame_counter, f.timestamp_ms = fs.depth.frame_number, fs.depth.timestamp_ms
            f.color_frame_counter, f.color_timestamp_ms = fs.color.frame_number, fs.color.timestamp_ms
        lv = {"frame_digests": syn.digests}
        if terminal is None:
            evidence.verify(p, lv, ch.nonce, kinds, 32, t)
            seen["accepted"] += 1
        else:
            assert terminal.counter and terminal.stream in ("depth", "color"), terminal
            with pytest.raises(evidence.EvidenceFailed, match="frames lost in the window"):
                evidence.verify(p, lv, ch.nonce, kinds, 32, t)
            seen["refused"] += 1
    assert seen == {"accepted": 4, "refused": 3}
