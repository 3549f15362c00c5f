"""The server is told the challenge window's exposure is held (``exposure_lock``) only when the camera
claims a lock for every imager the offered challenges need (projector -> IR, illumination -> colour);
a window run under that declaration holds them or ends the session (``SES_EXPOSURE_NOT_HELD``, no
strike); what was held reaches the probe's quality report."""

from __future__ import annotations

import pytest

import drivers
from agent.liveness.challenge import Challenge, Kind
from agent.pipeline.frames import FramesetReader
from agent.purpose import Purpose
from agent.session import capture
from agent.session.capture import _capabilities_proto, run_capture
from agent.session.errors import ExposureNotHeld
from agent.session.events import as_dict
from agent.session.projector import Projector
from agent.session.request import CaptureRequest
from agent.session.window import ExposureHold, run
from drivers.base import CameraWrapper, Capability
from drivers.errors import CapabilityUnsupported
from drivers.frame import StreamKind
from tests.helpers.live import until_accepted

IR, COLOR = StreamKind.IR, StreamKind.COLOR
LOCKS = frozenset({Capability.EXPOSURE_LOCK_IR, Capability.EXPOSURE_LOCK_COLOR})
BOTH = frozenset({Kind.PROJECTOR, Kind.ILLUMINATION})


class Device(CameraWrapper):
    """The simulator as a device that claims the exposure locks ``claims`` and, at run time, refuses
    those in ``refuses`` (as a device refuses an option write); every lock call written down."""

    def __init__(self, inner, *, claims=LOCKS, refuses=()):
        super().__init__(inner)
        self.capabilities = (inner.capabilities - LOCKS) | frozenset(claims)
        self.refuses = set(refuses)
        self.calls: list[tuple[str, StreamKind]] = []

    def lock_exposure(self, stream, setting=None):
        self.calls.append(("lock", stream))
        if stream in self.refuses or drivers.base.exposure_lock_capability(stream) not in self.capabilities:
            raise CapabilityUnsupported(f"the camera refused the {stream.value} exposure lock")
        return super().lock_exposure(stream, setting)

    def unlock_exposure(self, stream):
        self.calls.append(("unlock", stream))
        super().unlock_exposure(stream)


def _device(uri: str = "sim://?realtime=0&seed=3&subject=none", **kw) -> Device:
    return Device(drivers.open(uri), **kw)


@pytest.mark.parametrize("claims, offered, declared", [
    (LOCKS, BOTH, True),
    (LOCKS, {Kind.ILLUMINATION}, True),
    ({Capability.EXPOSURE_LOCK_IR}, BOTH, False),                    # RealSense: colour refused
    ({Capability.EXPOSURE_LOCK_IR}, {Kind.PROJECTOR}, True),
    ({Capability.EXPOSURE_LOCK_IR}, {Kind.ILLUMINATION}, False),
    ({Capability.EXPOSURE_LOCK_COLOR}, BOTH, False),
    (set(), BOTH, False),                                             # Orbbec, UVC
    (LOCKS, set(), False),                                            # nothing to hold
])
def test_the_server_is_told_the_exposure_is_held_only_for_imagers_the_camera_claims(claims, offered, declared):
    cam = _device(claims=claims)
    with cam:
        assert _capabilities_proto(cam, frozenset(offered)).exposure_lock is declared


def test_a_recording_is_never_declared_held():
    cam = _device()
    cam.capabilities = cam.capabilities | {Capability.RECORDING}
    with cam:
        assert not _capabilities_proto(cam, BOTH).exposure_lock
        assert ExposureHold(cam, (IR, COLOR)).held == [] and cam.calls == []


def _window(cam, kinds, n=8, **kw):
    ch = Challenge.from_nonce(b"e" * 32, n, tuple(kinds))
    holds: list[ExposureHold] = []
    gen = run(FramesetReader(cam), n, ch, Projector(cam), on_exposure=holds.append, **kw)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value, holds


def test_a_claimed_lock_refused_under_the_declaration_ends_the_window_before_any_frame():
    cam = _device(refuses={COLOR})
    read = []
    cam.read = lambda timeout_s=1.0: read.append(1) or CameraWrapper.read(cam, timeout_s)
    with cam, pytest.raises(ExposureNotHeld) as ei:
        _window(cam, BOTH, exposure_required=True)
    assert ei.value.code == "SES_EXPOSURE_NOT_HELD" and "color" in ei.value.message
    assert cam.calls == [("lock", IR), ("lock", COLOR), ("unlock", IR)]      # what was taken, given back
    assert read == []


def test_without_the_declaration_the_window_runs_with_what_was_held_and_says_so():
    cam = _device(claims={Capability.EXPOSURE_LOCK_IR})                     # as a RealSense claims
    with cam:
        sets, holds = _window(cam, BOTH)
    assert len(sets) == 8
    assert cam.calls == [("lock", IR), ("unlock", IR)]                       # colour not even asked
    report = holds[0].to_dict()
    assert report["declared"] is False and report["unlocked"] == ["color"]
    assert set(report["held"]) == {"ir"} and report["held"]["ir"]["exposure_us"] > 0
    cam = _device(refuses={COLOR})                                          # claimed, refused, not declared
    with cam:
        sets, holds = _window(cam, BOTH)
    assert len(sets) == 8 and holds[0].refused == {"color": "DRV_CAPABILITY_UNSUPPORTED"}
    assert holds[0].to_dict()["unlocked"] == ["color"]


def _run(deps, subject):
    req = CaptureRequest(Purpose.VERIFY, "kiosk", "CONSENT-T-0001", subject_ref=subject)
    return [as_dict(e) for e in run_capture(deps, req)]


def test_a_session_whose_camera_refuses_a_declared_lock_ends_typed_and_is_no_strike(make_deps):
    deps = make_deps(max_failures=1)
    cams: list[Device] = []
    deps.open_camera = lambda: cams.append(_device(deps.camera_uri, refuses={COLOR})) or cams[-1]

    evs = _run(deps, "cust-unlocked")
    assert evs[-1]["error"]["code"] == "SES_EXPOSURE_NOT_HELD", evs[-1]
    assert ("unlock", IR) in cams[0].calls
    deps.lockout.check(f"terminal:{deps.terminal_id}", deps.pseudonym("subject", "cust-unlocked"))   # no strike


def test_the_probes_quality_report_says_which_imagers_were_held(make_deps, monkeypatch):
    seen: list[dict] = []
    real = capture.build_payload

    def spy(*a, **kw):
        seen.append(kw["quality"])
        return real(*a, **kw)
    monkeypatch.setattr(capture, "build_payload", spy)
    deps = make_deps()
    # (A live face judged inconclusive is asked again, as the kiosk app does: tests/helpers/live.py;
    # the probe's payload is built for the accepted session only.)
    evs = until_accepted(lambda k: _run(deps, "cust-held"))[-1]
    assert evs[-1]["result"]["accepted"], evs[-1]
    assert len(seen) == 1
    lock = seen[0]["exposure_lock"]
    assert lock["declared"] is True and lock["unlocked"] == [] and set(lock["held"]) == {"ir", "color"}
    assert all(v["exposure_us"] > 0 and v["gain"] > 0 for v in lock["held"].values())
