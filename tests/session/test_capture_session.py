"""The capture state machine (agent/session/capture.py) end to end on the sim camera: consent, the server's
challenge over mutual TLS, the quality loop's prompts and progress, liveness in the sandboxed worker,
the sealed probe, the receipt; and each way a session can fail, with its stable code."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from agent.devices.policy import DeviceSettings
from agent.liveness.supervisor import LivenessSupervisor, SupervisorSettings
from agent.purpose import Purpose
from agent.security.audit import AuditLog, clean, verify
from agent.session.capture import run_capture
from agent.session.events import TOO_BRIGHT_TO_VERIFY, as_dict
from agent.session.request import CaptureRequest
from tests.helpers.live import until_accepted
from tests.helpers.net import refusing_endpoint


def events(deps, purpose="verify", consent="CONSENT-T-0001", subject="cust-1", cancel=None, **kw):
    """The session's typed events, as the JSON dicts ``capture --json`` prints."""
    req = CaptureRequest(Purpose.from_name(purpose), kw.pop("channel", "kiosk"), consent, subject_ref=subject)
    return [as_dict(e) for e in run_capture(deps, req, cancel)]


def result(evs):
    assert "result" in evs[-1] or "error" in evs[-1], evs[-1]
    return evs[-1]


def live(deps, **kw):
    """``events`` of a live face's session, asked again (same consent) while it is judged
    inconclusive, as the kiosk app does (tests/helpers/live.py)."""
    return until_accepted(lambda k: events(deps, **kw))[-1]


def test_live_verification_is_accepted_with_prompts_progress_and_timings(make_deps, ingest, tmp_path):
    deps = make_deps()
    deps.audit = AuditLog(tmp_path / "audit.jsonl", ingest["signer"])
    evs = live(deps)
    r = result(evs)["result"]
    assert r["accepted"] and r["reason"] == "OK" and r["liveness_verdict"] == "live", r
    percents = [e["progress"]["percent"] for e in evs if "progress" in e]
    assert percents[0] == 0 and percents[-1] == 100 and percents == sorted(percents)
    stages = [e["progress"]["stage"] for e in evs if "progress" in e]
    assert stages.index("capture") < stages.index("liveness") < stages.index("seal") < stages.index("submit")
    t = r["timings_ms"]
    for k in ("challenge", "camera_open", "quality", "challenge_window", "liveness", "probe", "seal", "submit",
              "after_last_frame", "total", "budget", "liveness_fusion", "liveness_drain"):
        assert k in t and t[k] >= 0, k
    assert t["budget"] == 2000.0
    # The worker's fusion and its wait for the last measurements are parts of the liveness stage.
    assert t["liveness_fusion"] + t["liveness_drain"] <= t["liveness"]
    mine = [a for a in ingest["state"].accepted if a["probe_id"] == r["probe_id"]]   # the server is shared
    assert len(mine) == 1 and mine[0]["purpose"] == "VERIFY"
    # The audit log has the session's key operations, chained and signed, and nothing biometric.
    deps.audit.close()
    rep = verify(tmp_path / "audit.jsonl", ingest["signer"].public_key())
    assert rep.unsigned_tail == 0
    text = (tmp_path / "audit.jsonl").read_text()
    for needed in ('"event":"session_start"', '"event":"consent"', '"event":"result"', '"event":"session_end"',
                   r["probe_id"], f'"consent_ref":"{deps.pseudonym("consent", "CONSENT-T-0001")}"',
                   f'"subject":"{deps.pseudonym("subject", "cust-1")}"'):
        assert needed in text, needed
    # References only as keyed pseudonyms: not in the clear, and not as the unkeyed digest that
    # anyone could recompute from a guess.
    assert "cust-1" not in text and "CONSENT-T-0001" not in text
    assert __import__("hashlib").sha256(b"cust-1").hexdigest()[:16] not in text


def test_the_nonce_is_asked_for_after_the_quality_loop_with_the_lifetime_the_session_needs(make_deps, monkeypatch):
    # However long the person takes to pose, the nonce's lifetime is spent only on the challenge
    # window, liveness and the submit: it is asked for once the quality loop is done.
    deps = make_deps()
    order = []
    asked = {}
    from agent.liveness.supervisor import RemoteGate
    uplink = deps.uplink
    real_evaluate, real_begin = RemoteGate.evaluate, uplink.begin

    def evaluate(self, fs, **kw):
        order.append("quality")
        return real_evaluate(self, fs, **kw)

    def begin(*args, **kwargs):
        order.append("begin")
        asked.update(kwargs)
        return real_begin(*args, **kwargs)
    monkeypatch.setattr(RemoteGate, "evaluate", evaluate)
    uplink.begin = begin

    def attempt(k):
        order.clear()
        asked.clear()
        return events(deps)
    r = result(until_accepted(attempt)[-1])["result"]
    assert r["accepted"], r
    assert order.count("begin") == 1 and order[-1] == "begin" and order.count("quality") >= 1
    assert asked["min_lifetime_s"] >= deps.settings.challenge_window_s


def test_enrolment_has_its_own_budget_and_the_counter_is_monotonic(make_deps, ingest):
    deps = make_deps()
    first = result(live(deps, purpose="enroll"))["result"]
    second = result(live(deps, purpose="enroll"))["result"]
    assert first["accepted"] and second["accepted"]
    assert first["timings_ms"]["budget"] == 3000.0
    counters = [a["counter"] for a in list(ingest["state"].accepted)[-2:]]
    assert counters[1] == counters[0] + 1 and counters[0] >= 1


def test_presentation_attack_is_refused_and_failures_lock_out(make_deps):
    # Unpaced: a paced camera in a starved process can lose a frameset to the matcher's latency bound,
    # and a window that lost one ends SES_FRAMES_LOST, not judged (this test's subject is the verdict).
    deps = make_deps("sim://?seed=4&subject=print&lux=150&realtime=0", max_failures=2)
    seen: list[dict] = []
    deps.observer = lambda event, data: seen.append(data) if event == "result" else None
    for _ in range(2):
        r = result(events(deps, subject="cust-attacked"))["result"]
        assert not r["accepted"] and r["reason"] == "NOT_LIVE" and r["liveness_verdict"] == "attack"
    # The audit says which cue refused, as scores only, and at least one of them is an attack's.
    assert [d["reason"] for d in seen] == ["NOT_LIVE", "NOT_LIVE"]
    for d in seen:
        scores = {k: x for k, x in d.items() if k.startswith("detector_")}
        assert scores and all(isinstance(x, float) for x in scores.values())
        assert min(scores.values()) == d["score"]
        clean(d)                                  # flat scalars the audit log takes
    e = result(events(deps, subject="cust-attacked"))
    assert e["error"]["code"] == "SES_LOCKED_OUT"
    # The lockout holds the terminal too (§8.2.5 d): a different subject is refused as well.
    assert result(events(deps, subject="someone-else"))["error"]["code"] == "SES_LOCKED_OUT"


def _lose_a_colour_frame_in_the_window(monkeypatch) -> None:
    """Each simulated camera loses one colour frame four ticks after its exposure is first locked (a few
    framesets into the challenge window, which starts when its exposures are locked)."""
    from drivers.frame import StreamKind
    from drivers.sim import camera as simcam
    lock, deliver = simcam.SimCamera.lock_exposure, simcam.SimCamera._deliver
    lost: dict[int, int] = {}

    def locking(self, stream, setting=None):
        lost.setdefault(id(self), self._color_tick + 4)
        return lock(self, stream, setting)

    def losing(self, kind, *a, **kw):
        if kind is StreamKind.COLOR and a[4] == lost.get(id(self)):
            return
        deliver(self, kind, *a, **kw)
    monkeypatch.setattr(simcam.SimCamera, "lock_exposure", locking)
    monkeypatch.setattr(simcam.SimCamera, "_deliver", losing)


def test_a_lost_frameset_in_the_window_is_frames_lost_and_counts_like_a_failed_attempt(make_deps, monkeypatch):
    # A live face whose camera loses one colour frame a few framesets into the challenge window (the
    # window starts when its exposures are locked). Before, the window was judged with every later
    # edge a frame early; now it ends there: SES_FRAMES_LOST, the person asked to try again, and a
    # strike, so that two such windows lock out as two failed presentations do.
    _lose_a_colour_frame_in_the_window(monkeypatch)
    deps = make_deps(max_failures=2)
    seen: list[tuple[str, dict]] = []
    deps.observer = lambda event, data: seen.append((event, data)) if event in ("error", "result") else None
    for _ in range(2):
        evs = events(deps, subject="cust-gaps")
        assert result(evs)["error"]["code"] == "SES_FRAMES_LOST", evs[-1]
        assert "frames lost in the challenge window" in evs[-1]["error"]["message"]
        assert evs[-2]["prompt"]["code"] == "FRAMES_LOST" and evs[-2]["prompt"]["en"]
        # The kiosk app had the screen back before the error (the illumination's end).
        assert evs[-3]["illumination"]["end"]
    assert [(e, d["code"], d["counted"]) for e, d in seen] == [("error", "SES_FRAMES_LOST", True)] * 2
    assert result(events(deps, subject="cust-gaps"))["error"]["code"] == "SES_LOCKED_OUT"
    assert result(events(deps, subject="someone-else"))["error"]["code"] == "SES_LOCKED_OUT"


def test_a_window_the_terminal_made_late_is_graced_once_and_then_counts(make_deps, monkeypatch):
    # late31: a window lost while the terminal itself was busy (``FramesLost.host_late``, the window's finding,
    # tests/session/test_window_late.py) is not the person's: its charge is settled, no strike, audited
    # ``graced``, within the lockout's allowance (one an hour per terminal and subject); the next one counts.
    # The window's finding is forced here (the unpaced camera's windows are never the terminal's).
    from agent.session import window as window_module
    from agent.session.errors import FramesLost

    class Busy(FramesLost):
        host_late = property(lambda self: True, lambda self, v: None)   # the terminal's, whatever the window says
    monkeypatch.setattr(window_module, "FramesLost", Busy)
    _lose_a_colour_frame_in_the_window(monkeypatch)
    deps = make_deps(max_failures=1)
    seen: list[tuple[str, dict]] = []
    deps.observer = lambda event, data: seen.append((event, data)) if event == "error" else None
    for _ in range(2):
        assert result(events(deps, subject="cust-busy"))["error"]["code"] == "SES_FRAMES_LOST"
    assert [(d["code"], d.get("graced"), d.get("counted")) for _, d in seen] == [
        ("SES_FRAMES_LOST", True, None), ("SES_FRAMES_LOST", None, True)]
    assert result(events(deps, subject="cust-busy"))["error"]["code"] == "SES_LOCKED_OUT"   # the second counted


def test_consent_is_required_before_anything_happens(make_deps, ingest):
    deps = make_deps()
    issued = len(ingest["state"].store)
    for bad in ("", "x", "has space", "ü" * 10):
        e = result(events(deps, consent=bad))
        assert e["error"]["code"] == "SES_CONSENT_REQUIRED"
    assert len(ingest["state"].store) == issued           # no challenge was even asked for
    assert result(events(deps, purpose="delete"))["error"]["code"] == "SES_BAD_REQUEST"
    assert result(events(deps, channel="atm"))["error"]["code"] == "SES_BAD_REQUEST"


def test_no_face_times_out_with_the_last_prompt(make_deps):
    # Unpaced: the quality stage's 0.5 s are the camera's own (15 framesets, ``own_time``), not the
    # clock's, which a loaded machine spent before the worker had judged one frameset (once at load
    # ~11: no NO_FACE yet). The wall-clock bound of a paced camera: tests/pipeline/test_frameset_deadlines.py.
    deps = make_deps("sim://?seed=2&subject=none&realtime=0", quality_timeout_s=0.5)
    evs = events(deps)
    assert any(e.get("prompt", {}).get("code") == "NO_FACE" for e in evs)
    e = result(evs)["error"]
    assert e["code"] == "SES_STAGE_TIMEOUT" and "NO_FACE" in e["message"]


def test_cancel_stops_the_capture(make_deps):
    deps = make_deps("sim://?seed=2&subject=none", quality_timeout_s=30)
    cancel = threading.Event()
    out = []
    req = CaptureRequest(Purpose.VERIFY, "kiosk", "CONSENT-T-0002")
    for ev in run_capture(deps, req, cancel):
        out.append(as_dict(ev))
        if "prompt" in out[-1]:
            cancel.set()
    assert out[-1]["error"]["code"] == "SES_CANCELLED"


def test_a_camera_below_the_capture_spec_is_refused(make_deps):
    deps = make_deps("sim://?seed=2&fps=8")                      # §7.5 h: depth >= 10 fps
    e = result(events(deps))["error"]
    assert e["code"] == "AGT_SPEC_VIOLATION" and "depth_fps" in e["message"]


def test_a_camera_the_policy_refuses_is_not_used(make_deps):
    deps = make_deps()
    deps.devices = DeviceSettings(allow_development_cameras=False)
    e = result(events(deps))["error"]
    assert e["code"] == "DRV_DEVICE_REFUSED"


def test_unreachable_server_fails_cleanly_and_nothing_is_kept(make_deps, ingest):
    with refusing_endpoint() as dead:
        deps = make_deps(uplink=ingest["uplink"](endpoints=(dead,), retries=1, deadline_s=0.5))
        e = result(events(deps))["error"]
    # sec19: each call says what it may have left at the server (before, "nothing was stored" for every
    # one, untrue for a BeginCapture or SubmitProbe whose reply was lost after the server stored its
    # effect: tests/hil/test_ingest_server.py::test_begin_capture_unavailable_says_a_challenge_...); the
    # session stops at its first call, CheckCapabilities, which stores nothing
    assert e["code"] == "UPL_UNAVAILABLE" and "CheckCapabilities" in e["message"]
    assert "the call stores nothing" in e["message"]


@pytest.mark.slow                              # two fresh worker processes
def test_outages_and_worker_faults_are_not_the_persons_failures(make_deps, ingest):
    with refusing_endpoint() as dead:
        deps = make_deps(uplink=ingest["uplink"](endpoints=(dead,), retries=0, deadline_s=0.3), max_failures=2)
        for _ in range(3):
            assert result(events(deps, subject="cust-outage"))["error"]["code"] == "UPL_UNAVAILABLE"
    with LivenessSupervisor(SupervisorSettings(judge_timeout_s=0.001, judge_per_frameset_s=0.0)) as hung:
        deps.uplink, deps.supervisor = ingest["uplink"](), hung
        for _ in range(2):
            assert result(events(deps, subject="cust-outage"))["error"]["code"] in ("LIV_WORKER_TIMEOUT",
                                                                                    "LIV_WORKER_CRASHED")
    deps.lockout.check(f"terminal:{deps.terminal_id}", deps.pseudonym("subject", "cust-outage"))   # no strike
    deps.supervisor = make_deps().supervisor
    assert result(live(deps, subject="the-next-person"))["result"]["accepted"]


def test_frames_that_stop_in_the_challenge_window_count_like_a_failed_presentation(make_deps, monkeypatch):
    # Review 8's high: an injector on the camera link that sees the window going badly stops sending
    # frames (or fakes an unplug); that ended SES_STAGE_TIMEOUT with no strike, a free try with a new
    # nonce every time. The window is charged from its start; only a verdict or a worker fault settles it.
    from drivers.errors import FrameTimeout
    from drivers.sim import camera as simcam
    lock, read = simcam.SimCamera.lock_exposure, simcam.SimCamera.read
    stop_at: dict[int, int] = {}

    def locking(self, stream, setting=None):                  # the exposure is locked for the window
        stop_at.setdefault(id(self), self._color_tick + 4)
        return lock(self, stream, setting)

    def stalling(self, *a, **kw):
        if id(self) in stop_at and self._color_tick >= stop_at[id(self)]:
            raise FrameTimeout("the injector stops sending")
        return read(self, *a, **kw)
    monkeypatch.setattr(simcam.SimCamera, "lock_exposure", locking)
    monkeypatch.setattr(simcam.SimCamera, "read", stalling)
    deps = make_deps(max_failures=2, challenge_window_s=3.0)
    seen: list[dict] = []
    deps.observer = lambda event, data: seen.append(dict(data)) if event == "error" else None
    for _ in range(2):
        stop_at.clear()
        assert result(events(deps, subject="cust-stall"))["error"]["code"] == "SES_STAGE_TIMEOUT"
    assert [d.get("counted") for d in seen] == [True, True]
    assert result(events(deps, subject="cust-stall"))["error"]["code"] == "SES_LOCKED_OUT"


def test_the_liveness_stage_parts_take_only_numbers_from_the_worker():
    # Whole milliseconds within the stage's own time as the daemon measured it: the worker's numbers
    # reach the audit log and the probe, and must not be a wide channel out of the sandbox.
    from agent.session.capture import _liveness_parts
    assert _liveness_parts({"finish": 12.345, "worker_finish": 40.0}, 50.0) == {"liveness_fusion": 12.0,
                                                                               "liveness_drain": 28.0}
    assert _liveness_parts({"finish": 12.0}, 50.0) == {"liveness_fusion": 12.0}
    for bad in ({"finish": "12"}, {"finish": float("nan")}, {"finish": True}, {"finish": -1.0}, {"finish": 1e12},
                {"finish": 50.5}, {}):
        assert _liveness_parts(bad, 50.0) == {}, bad
    assert _liveness_parts({"finish": 30.0, "worker_finish": 10.0}, 50.0) == {"liveness_fusion": 30.0}
    assert _liveness_parts({"finish": 30.0, "worker_finish": 60.0}, 50.0) == {"liveness_fusion": 30.0}


def test_the_quality_loop_runs_in_the_worker_not_in_the_daemon(make_deps, monkeypatch):
    # The daemon loads no face model (issue 20: one copy of the face work, in the worker): a gate
    # evaluated in this process fails the test; the session still prompts and makes progress from
    # the worker's assessments, and its projector planning gets the worker's IR skin levels.
    from agent.liveness.supervisor import RemoteGate
    from agent.quality.gate import QualityGate

    def not_here(self, *a, **kw):
        raise AssertionError("the quality gate ran in the daemon's process")
    monkeypatch.setattr(QualityGate, "evaluate", not_here)
    monkeypatch.setattr(QualityGate, "measure", not_here)
    seen = []
    real = RemoteGate.evaluate

    def recording(self, fs, **kw):
        a = real(self, fs, **kw)
        seen.append(a)
        return a
    monkeypatch.setattr(RemoteGate, "evaluate", recording)
    evs = live(make_deps())
    assert result(evs)["result"]["accepted"]
    assert seen and seen[-1].complete and seen[-1].ok and seen[-1].face is not None
    assert any(a.ir_bright_end is not None and 0 < a.ir_bright_end <= 255 for a in seen)


# Bright sun on a camera whose projector power cannot be set (as on OpenNI devices): even the IR
# exposure the session plans leaves the dots within their own noise, and the screen's light is lost
# in the room's. 16 framesets (the server's window, shortened: at 8 the motion cues call a still
# live face an attack).
SUNLIT = "sim://?subject=live&seed=34&lux=100000&realtime=0"
SHORT_WINDOW = 16


def _fixed_power(deps, uri: str = SUNLIT):
    """``deps`` opening ``uri`` as a camera whose projector runs at its default power only."""
    import drivers
    from drivers.base import Capability

    def opened():
        cam = drivers.open(uri)
        cam.capabilities = cam.capabilities - {Capability.PROJECTOR_POWER}
        return cam
    deps.open_camera = opened
    return deps


def _challenges(monkeypatch) -> list[dict]:
    """Each judged window's ``challenge`` dict, as the worker sent it to the session."""
    from agent.liveness.supervisor import RemoteJudge
    seen: list[dict] = []
    finish = RemoteJudge.finish

    def recorded(self, **kw):
        r = finish(self, **kw)
        seen.append(r.verdict.challenge)
        return r
    monkeypatch.setattr(RemoteJudge, "finish", recorded)
    return seen


def test_a_window_the_light_hid_tells_the_person_too_bright_and_counts(make_deps, ingest, monkeypatch):
    # Issue 14, end to end: the daemon's capture, the server's nonce, the judge in the worker. The
    # projector's dots drowned and the screen too weak on the face: inconclusive, the person asked to
    # move out of the bright light just before the result, and the attempt counted (an injector can
    # fake an unmeasurable stream at will). (On this active-stereo camera the verdict does not hang on
    # the judge reading a drowned window's cues on the frames the metadata says were lit: with
    # ``lit_when_drowned`` disabled this test still passes.)
    from agent.liveness.challenge import (
        CLIPPED_DETAIL,
        DROWNED_DETAIL,
        WEAK_SCREEN_DETAIL,
        detail_code,
        failed_for_light,
        relabelled_code,
    )
    monkeypatch.setattr(ingest["state"], "frames", SHORT_WINDOW)
    challenges = _challenges(monkeypatch)
    deps = _fixed_power(make_deps(max_failures=1))
    audited: list[dict] = []
    deps.observer = lambda event, data: audited.append(data) if event == "result" else None
    evs = events(deps, subject="cust-sunlit")
    r = result(evs)["result"]
    assert not r["accepted"] and r["reason"] == "NOT_LIVE" and r["liveness_verdict"] == "inconclusive", r
    assert evs[-2] == {"prompt": as_dict(TOO_BRIGHT_TO_VERIFY)["prompt"]}
    assert [e["prompt"]["code"] for e in evs if "prompt" in e].count("TOO_BRIGHT_TO_VERIFY") == 1
    # Which way the light hid the dots depends on the nonce's schedule (exploratory daemon sessions of
    # this scene, random nonces: at 16 framesets drowned in 6 of 6; at 12, 4 drowned, 2 clipped and
    # 1 followed, each inconclusive with the prompt); never a contradiction, and the screen's light
    # too weak in every one.
    (ch,) = challenges
    assert ch["illumination"]["detail"] == WEAK_SCREEN_DETAIL and failed_for_light(ch), ch
    assert ch["projector"]["passed"] or ch["projector"]["detail"] in (DROWNED_DETAIL, CLIPPED_DETAIL), ch
    assert [(d["reason"], d["verdict"]) for d in audited] == [("NOT_LIVE", "inconclusive")]
    # The audit record says why by a stable code (review 23), the worker's challenge's own.
    assert audited[0]["challenge_detail"] == detail_code(ch) and \
        audited[0]["challenge_detail"].startswith("SCREEN_WEAK"), audited
    # And what a rule of the room's light relabelled, if any (review32 D2; a weak screen is not relabelled).
    assert audited[0]["challenge_relabelled_from"] == relabelled_code(ch), audited
    # And what the person was told (misc26): the operator reads an infrared flood's code there.
    assert audited[0]["prompt"] == "TOO_BRIGHT_TO_VERIFY", audited
    # Counted: with a limit of one failure the terminal and the subject are locked out.
    assert result(events(deps, subject="cust-sunlit"))["error"]["code"] == "SES_LOCKED_OUT"
    assert result(events(deps, subject="someone-else"))["error"]["code"] == "SES_LOCKED_OUT"


def test_a_window_whose_face_went_missing_is_not_blamed_on_the_light(make_deps, ingest, monkeypatch):
    # review19, end to end: the same sunlit window, but the person walks out of the picture as the
    # window's exposures are locked (its colour exposure is locked for the window only). No frame of
    # the window has a face: the illumination is not measurable for want of one, not for the light.
    # Inconclusive and counted as before, and no TOO_BRIGHT_TO_VERIFY (less light would not help).
    # (A person who leaves a few framesets later is no such case: the judge reads the screen's light
    # in the window's face box on every frame, and the wall behind him contradicts the sequence.)
    from agent.liveness.challenge import FEW_FACES_DETAIL, failed_for_light, failed_unmeasurable
    from drivers.frame import StreamKind
    from drivers.sim import camera as simcam
    monkeypatch.setattr(ingest["state"], "frames", SHORT_WINDOW)
    challenges = _challenges(monkeypatch)
    lock, objects = simcam.SimCamera.lock_exposure, simcam.SimCamera._objects
    gone: dict[int, float] = {}

    def locking(self, stream, setting=None):           # the colour exposure is locked for the window only
        if stream is StreamKind.COLOR:
            gone.setdefault(id(self), self._color_tick / self._color_fps)
        return lock(self, stream, setting)

    def leaving(self, t):
        objs, planes, state = objects(self, t)
        if t >= gone.get(id(self), float("inf")):
            return [], planes, dataclasses.replace(state, subject="none")
        return objs, planes, state
    monkeypatch.setattr(simcam.SimCamera, "lock_exposure", locking)
    monkeypatch.setattr(simcam.SimCamera, "_objects", leaving)
    deps = _fixed_power(make_deps(max_failures=1))
    evs = events(deps, subject="cust-left")
    r = result(evs)["result"]
    assert not r["accepted"] and r["reason"] == "NOT_LIVE" and r["liveness_verdict"] == "inconclusive", r
    # Not measurable (the judge's rule, which an earlier prompt rule read as the light's doing), but
    # for want of a face: the prompt's rule says no.
    (ch,) = challenges
    assert ch["illumination"]["detail"] == FEW_FACES_DETAIL and ch["illumination"]["measurable"] is False
    assert failed_unmeasurable(ch) and not failed_for_light(ch), ch
    assert "TOO_BRIGHT_TO_VERIFY" not in [e["prompt"]["code"] for e in evs if "prompt" in e]
    assert result(events(deps, subject="cust-left"))["error"]["code"] == "SES_LOCKED_OUT"


@pytest.mark.slow                              # a whole session on the rendered face
def test_a_bright_room_raises_the_screen_for_the_window_and_says_so(make_deps, tmp_path, ingest):
    # The face in 7,500 lux on a camera with a lux calibration (this dark skin reads ~1,050: the
    # estimate is a reference skin's): over ``screen_boost_lux``, so every Illumination event asks for
    # the panel at ``screen_boost``, the simulated panel (with the headroom) lights the face so, and
    # the audit says why.
    from agent.config import ChallengeSettings
    from agent.quality.gate import SIM_LUX_K
    from agent.quality.settings import QualitySettings
    deps = make_deps("sim://?seed=21&identity=3&lux=7500&subject=live&realtime=0&screen_max_nits=600")
    deps.quality = QualitySettings(lux_calibration={"default": SIM_LUX_K})
    deps.challenge = ChallengeSettings(screen_boost=2.0)
    deps.audit = AuditLog(tmp_path / "audit.jsonl", ingest["signer"])
    evs = events(deps)
    shown = [e["illumination"] for e in evs if "illumination" in e]
    assert shown and all(s["luminance"] == 2.0 for s in shown if not s["end"]) and shown[-1]["end"]
    deps.audit.close()
    text = (tmp_path / "audit.jsonl").read_text()
    assert '"event":"screen"' in text and '"luminance":2.0' in text
    # The same room without a lux calibration: nothing is known of the light, the everyday panel.
    deps.quality = QualitySettings()
    deps.audit = None
    shown = [e["illumination"] for e in events(deps) if "illumination" in e]
    assert shown and all(s["luminance"] == 1.0 for s in shown)


def test_a_result_record_the_audit_log_refuses_changes_nothing_the_person_sees(make_deps, ingest, tmp_path,
                                                                              monkeypatch):
    # misc25, review24's finding, end to end: the NOT_LIVE result record refused by the audit log (as review24's
    # repeated challenge kinds once made its detail code 275 characters, over MAX_STRING). Before, the
    # refusal (AUD_REFUSED) ended the session in an error after the verdict: the person was told of an
    # error, not the verdict, and the record was lost. Now the verdict is delivered and counted, the
    # observer hears the result, and the audit log holds an audit_refused entry in its place (names
    # and codes only), which the diagnostics' ledger shows.
    from agent.observe.ledger import last_sessions
    from agent.session import capture as capture_mod
    monkeypatch.setattr(ingest["state"], "frames", SHORT_WINDOW)
    over_long = "+".join(["PROJECTOR_DROWNED"] * 16)               # 287 characters
    monkeypatch.setattr(capture_mod, "detail_code", lambda ch: over_long)
    deps = make_deps("sim://?seed=4&subject=print&lux=150&realtime=0", max_failures=1)
    deps.audit = AuditLog(tmp_path / "audit.jsonl", ingest["signer"])
    heard: list[dict] = []
    deps.observer = lambda event, data: heard.append(data) if event == "result" else None
    r = result(events(deps, subject="cust-refused-record"))["result"]
    assert not r["accepted"] and r["reason"] == "NOT_LIVE" and r["liveness_verdict"] == "attack", r
    assert [d["challenge_detail"] for d in heard] == [over_long]
    # Counted as the verdict says: with a limit of one failure the subject is locked out.
    assert result(events(deps, subject="cust-refused-record"))["error"]["code"] == "SES_LOCKED_OUT"
    deps.audit.close()
    verify(tmp_path / "audit.jsonl", ingest["signer"].public_key(), max_unsigned_tail=0)
    text = (tmp_path / "audit.jsonl").read_text()
    assert over_long not in text and '"event":"result"' not in text
    import json
    refused = [e["data"] for e in map(json.loads, text.splitlines()) if e["event"] == "audit_refused"]
    assert len(refused) == 1 and refused[0]["refused_event"] == "result" and refused[0]["field"] == "challenge_detail"
    assert refused[0]["problem"] == "TOO_LONG" and refused[0]["code"] == "AUD_REFUSED"
    (row,) = last_sessions(tmp_path / "audit.jsonl", 1)
    assert (row.outcome, row.reason, row.unrecorded) == ("unrecorded", "AUD_REFUSED", ["result"])
    assert deps.audit.refusals() == {"TOO_LONG": 1}
