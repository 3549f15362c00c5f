"""The daemon's sandboxed judge takes the camera's dot reference (``[camera] dot_reference``): the
daemon checks the file and hands its bytes to the worker in ring slot 0 at each start; the worker
(which opens no file for it) checks their digest, parses them and every session's judge tests the
on-off pairs against it, as pad-eval's in-process judge does (``hil.pad_records.run_presentation``).

Needs the worker to import this checkout: ``PYTHONPATH`` set to it when run from a worktree."""

from __future__ import annotations

import hashlib
import json
import types

import numpy as np
import pytest

import drivers
from agent.daemon import load_dot_reference
from agent.liveness.dotref_file import ReferenceInvalid, ReferenceMismatch
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import judge
from agent.liveness.supervisor import LivenessSupervisor, LivenessWorkerError, SupervisorSettings
from agent.session.capture import liveness_report
from agent.session.offline import capture
from hil.pad_enrolment import dot_reference_for
from hil.pad_presentations import presentation_nonce, presentations
from hil.pad_records import kiosk_gate

FRAMES = 16


@pytest.fixture(scope="module")
def sessions():
    """Two train lives and one train rigid mask, captured as pad-eval captures them (challenged),
    with the camera's enrolled reference: (presentation, capture, reference)."""
    items = (presentations("train", live=2, per_species=0, injection=0)[:2]
             + presentations("train", live=0, per_species=1, injection=0, species=["mask"])[:1])
    gate = kiosk_gate()
    out = []
    for p in items:
        ref = dot_reference_for(p.uri)
        with drivers.open(p.uri) as cam:
            cap = capture(cam, FRAMES, presentation_nonce(p), gate, require_quality=True)
        assert cap.quality.complete and len(cap.sets) == FRAMES, p.key
        out.append((p, cap, ref))
    return out


@pytest.fixture(scope="module")
def workers(sessions):
    """A worker judging with the sessions' camera's reference, one judging without it."""
    refs = {ref.to_bytes() for _, _, ref in sessions}
    assert len(refs) == 1                                # one sim camera profile: one pattern
    with_ref = LivenessSupervisor(SupervisorSettings(frame_timeout_s=5.0, dot_reference=sessions[0][2].to_bytes()))
    without = LivenessSupervisor(SupervisorSettings(frame_timeout_s=5.0))
    with_ref.start()
    without.start()
    yield with_ref, without
    with_ref.stop()
    without.stop()


def _same_verdict(got, want, key: str) -> None:
    """The worker's verdict is the in-process one (the wire carries 4 decimals)."""
    a, b = json.loads(json.dumps(got.to_dict())), json.loads(json.dumps(want.to_dict()))
    assert a["verdict"] == b["verdict"], key
    assert a["score"] == pytest.approx(b["score"], abs=1e-4), key
    for part in ("detectors", "cues"):
        assert a[part] == pytest.approx(b[part], abs=1e-4, nan_ok=True), (key, part)
    assert (a["challenge"] or {}).get("passed") == (b["challenge"] or {}).get("passed"), key


def test_the_worker_judges_as_pad_eval_does_with_and_without_the_reference(sessions, workers):
    with_ref, without = workers
    unmatched = {True: [], False: []}
    for p, cap, ref in sessions:
        kinds = tuple(k.value for k in cap.challenge.kinds)
        for sup, dot_reference in ((with_ref, ref), (without, None)):
            # hil.pad_records.run_presentation's judge call, in this process:
            whole = judge(cap.sets, kiosk_gate(), VerdictThresholds(), challenge=cap.challenge, notes=cap.notes,
                          dot_reference=dot_reference)
            got = sup.judge(cap.sets, nonce=presentation_nonce(p), notes=cap.notes, kinds=kinds)
            _same_verdict(got.verdict, whole.verdict, p.key)
            # pin34: the probe's report names the reference the worker judged with (its hello), for the server
            report = liveness_report(got.verdict, sup)
            assert report["dot_reference_sha256"] == sup.hello["dot_reference_sha256"], p.key
            assert {k: v for k, v in report.items() if k != "dot_reference_sha256"} == got.verdict.to_dict()
            unmatched[dot_reference is not None].append(whole.verdict.cues.get("projector_unmatched"))
    # The reference is read: the pairs' fit to the predicted pattern is finite with it, absent without.
    assert all(u is not None and np.isfinite(u) for u in unmatched[True]), unmatched
    assert all(u is None or not np.isfinite(u) for u in unmatched[False]), unmatched
    assert with_ref.hello["dot_reference_sha256"] == hashlib.sha256(sessions[0][2].to_bytes()).hexdigest()
    assert without.hello["dot_reference_sha256"] is None


def test_the_sandbox_is_the_same_with_the_reference(workers, sessions):
    with_ref, without = workers
    p, cap, _ = sessions[0]
    with_ref.judge(cap.sets, nonce=presentation_nonce(p), kinds=tuple(k.value for k in cap.challenge.kinds))
    a, b = with_ref.selftest(), without.selftest()
    assert a["imported_after_warm_up"] == [] and a["simulator_modules"] == []
    # No descriptor more (no file opened): the same kinds of descriptor (numbers and inodes differ).
    kinds = [sorted(str(t).split("[")[0].split(" (")[0] for t in x["open_fds"].values()) for x in (a, b)]
    assert kinds[0] == kinds[1]
    for key in ("uid", "gid", "seccomp", "landlock_abi", "no_new_privs", "dumpable", "limits", "environ",
                "file_write", "socket", "exec", "fork"):
        assert a[key] == b[key], key
    assert a["file_write"].startswith("refused")


def test_a_bad_reference_refuses_the_workers_start_with_its_code():
    sup = LivenessSupervisor(SupervisorSettings(dot_reference=b"PK\x03\x04 not a reference"))
    with pytest.raises(LivenessWorkerError) as exc:
        sup.start()
    assert exc.value.code == "LIV_DOT_REFERENCE_INVALID"
    assert not sup.alive()
    sup.stop()


def _camera(uri: str) -> types.SimpleNamespace:
    """What ``load_dot_reference`` reads of the daemon's device manager: its sources' stream profiles
    (here a sim camera's own)."""
    with drivers.open(uri) as cam:
        profiles = cam.profiles()
    return types.SimpleNamespace(rig=types.SimpleNamespace(sources=[types.SimpleNamespace(profiles=profiles)]))


def test_the_daemon_refuses_a_bad_or_another_cameras_reference_with_its_code(tmp_path, sessions):
    p, _, ref = sessions[0]
    good = tmp_path / "good.npz"
    ref.save(good)
    raw, loaded = load_dot_reference(good, _camera(p.uri))
    assert raw == good.read_bytes() and loaded.digest == hashlib.sha256(raw).hexdigest()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(ReferenceInvalid) as e1:
        load_dot_reference(bad, _camera(p.uri))
    assert e1.value.code == "LIV_DOT_REFERENCE_INVALID"
    with pytest.raises(ReferenceInvalid):
        load_dot_reference(tmp_path / "absent.npz", _camera(p.uri))
    other = type(ref)(ref.pattern[:-8], ref.covered[:-8], ref.parallax_px_m, ref.origin_u, ref.fx)
    other.save(tmp_path / "other.npz")
    with pytest.raises(ReferenceMismatch) as e2:
        load_dot_reference(tmp_path / "other.npz", _camera(p.uri))
    assert e2.value.code == "LIV_DOT_REFERENCE_MISMATCH"
    # A camera not open yet (no profiles): the file is checked, the IR mode by the judge per pair.
    none_open = types.SimpleNamespace(rig=types.SimpleNamespace(sources=[types.SimpleNamespace(profiles=[])]))
    assert load_dot_reference(tmp_path / "other.npz", none_open)[1].digest
