"""Lab-only raw session recording: refused by a production config; in a lab config every session's
frames become a genuine RealSense recording (``.db3``, played back by librealsense) or an OpenNI
``.oni`` (OpenNI's Recorder on an ``openni://`` device), private to the agent's user."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import drivers
from agent import config
from agent.config import RecordSettings
from agent.errors import ConfigError
from agent.purpose import Purpose
from agent.session.capture import run_capture
from agent.session.events import Result, as_dict
from agent.session.request import CaptureRequest
from drivers import StreamKind
from tests.helpers.live import ATTEMPTS, until_accepted
from tests.helpers.terminals import LIVE

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, text: str) -> Path:
    p = tmp_path / "agent.toml"
    p.write_text(text)
    return p


def test_a_production_config_refuses_record_mode(tmp_path):
    with pytest.raises(ConfigError, match="a production config refuses it"):
        config.load(write(tmp_path, '[record]\ndir = "rec"\n'))
    with pytest.raises(ConfigError, match="a production config refuses it"):
        config.load(write(tmp_path, 'lab = false\n[record]\ndir = "rec"\nformat = "db3"\n'))
    with pytest.raises(ConfigError, match="records OpenNI devices only"):
        config.load(write(tmp_path, 'lab = true\n[camera]\nuris = ["sim://"]\n[record]\ndir = "rec"\nformat = "oni"\n'))
    with pytest.raises(ConfigError, match="is not one of"):
        config.load(write(tmp_path, 'lab = true\n[record]\ndir = "rec"\nformat = "mp4"\n'))
    s = config.load(write(tmp_path, 'lab = true\n[record]\ndir = "rec"\n'))
    assert s.lab and s.record == RecordSettings("rec", "db3") and s.path(s.record.dir) == tmp_path / "rec"
    assert config.load(write(tmp_path, "lab = true\n")).record.dir == ""     # a lab config need not record


@pytest.mark.slow
def test_a_lab_session_is_recorded_as_a_genuine_realsense_file(make_deps, tmp_path):
    rec_dir = tmp_path / "rec"
    # The paced face: the recorder wraps the camera and, like every wrapper, does not pass on the
    # simulator's renders_on_read, so the session's bounds stay on the wall clock (misc23 found the
    # unpaced face recorded that way at load 14 running out of its window; passing the attribute on
    # left hung-read waits cut short: not adopted, see the closing note).
    deps = dataclasses.replace(make_deps(LIVE), recording=RecordSettings(str(rec_dir), "db3"))
    req = CaptureRequest(Purpose.VERIFY, "kiosk", "CONSENT-REC-0001", subject_ref="cust-rec")
    # (A live face judged inconclusive is asked again, as the kiosk app does: tests/helpers/live.py;
    # each attempt is a session of its own, recorded under its id.)
    sids = [f"11111111-2222-3333-4444-55555555555{k}" for k in range(ATTEMPTS)]
    typed: list[list] = []

    def attempt(k: int) -> list[dict]:
        typed.append(list(run_capture(deps, req, session_id=sids[k])))
        return [as_dict(e) for e in typed[-1]]
    runs = until_accepted(attempt)
    events = typed[-1]
    assert isinstance(events[-1], Result) and events[-1].accepted, events[-1]
    path = rec_dir / f"{sids[len(runs) - 1]}.db3"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(rec_dir.stat().st_mode) == 0o700
    names = {p.name for p in rec_dir.iterdir()}
    assert path.name in names and names <= {f"{sid}.db3" for sid in sids[:len(runs)]}, names
    with drivers.open(f"realsense+file://{path}") as cam:           # librealsense's own playback
        kinds = {p.kind for p in cam.profiles()}
        assert kinds == {StreamKind.DEPTH, StreamKind.IR, StreamKind.COLOR}
        seen = {cam.read(5.0).stream for _ in range(12)}
        assert StreamKind.DEPTH in seen and StreamKind.COLOR in seen


def test_without_record_mode_the_session_writes_no_file(make_deps, tmp_path, monkeypatch):
    from agent.session import record
    deps = make_deps("sim://?subject=print&realtime=0")
    opened = []
    real = record.RecordingCamera
    monkeypatch.setattr(record, "RecordingCamera", lambda *a: opened.append(a) or real(*a))
    req = CaptureRequest(Purpose.VERIFY, "kiosk", "CONSENT-REC-0002", subject_ref="cust-rec")
    list(run_capture(deps, req))
    assert opened == []


_ONI = textwrap.dedent("""
    import os, sys
    import drivers
    from agent.config import RecordSettings
    from agent.session.record import open_recording
    cam = open_recording(drivers.open("openni://Dummy"), RecordSettings(sys.argv[1], "oni"), "sess-oni")
    cam.start()
    kinds = set()
    for _ in range(10):
        kinds.add(cam.read(2.0).stream.value)
    cam.stop()
    print(sorted(kinds), flush=True)
    os._exit(0)          # oniShutdown after a Recorder segfaults (Debian build): never run it
""")


def test_an_openni_session_is_recorded_by_openni_itself(tmp_path):
    out = subprocess.run([sys.executable, "-c", _ONI, str(tmp_path / "rec")], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().replace("'", '"'))
    path = tmp_path / "rec" / "sess-oni.oni"
    assert path.read_bytes()[:4] == b"NI10" and stat.S_IMODE(path.stat().st_mode) == 0o600
