"""``doctor`` as a checklist (agent/commands/doctor.py): every item with its clause and result, and
for each that failed or could not run, the next step an installer takes; a camera that does not
open is one failed item with its next step before ``error[CODE]``."""

from __future__ import annotations

import json

import numpy as np
import pytest

import drivers
from agent.cli import main
from agent.commands.doctor import NEXT_STEPS, Row, dot_reference_row, next_step
from agent.liveness.dotref import MARGIN_PX, DotReference
from drivers.frame import StreamKind
from drivers.realsense_record import record_camera


def test_a_failing_check_is_marked_and_followed_by_its_next_step(capsys):
    assert main(["doctor", "sim://?fps=8", "--frames", "6"]) == 1
    lines = capsys.readouterr().out.splitlines()
    fps = next(i for i, line in enumerate(lines) if " depth_fps " in line)
    assert lines[fps].startswith("[!] FAIL") and "§7.5 h" in lines[fps]
    assert lines[fps + 1].strip().startswith("next: ") and "USB 3" in lines[fps + 1]
    passed = next(line for line in lines if " depth_resolution " in line)
    assert passed.startswith("[x] PASS")
    assert "next:" not in lines[lines.index(passed) + 1]
    assert lines[-1].startswith("RESULT: FAIL (1 check(s))")


def test_json_items_carry_their_next_step(capsys):
    assert main(["doctor", "sim://?fps=8", "--frames", "6", "--json"]) == 1
    checks = {c["check"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["depth_fps"]["next_step"] == NEXT_STEPS["depth_fps"][0]
    assert all(c["next_step"] == "" for c in checks.values() if c["result"] == "PASS")


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("rs") / "sim.db3"
    src = drivers.open("sim://?realtime=0&seed=6&identity=0&lux=300")
    with src:
        record_camera(src, str(path), 12)
    return path


def test_what_cannot_run_on_a_real_camera_says_how_to_run_it(recording, capsys):
    main(["doctor", f"realsense+file://{recording}", "--frames", "6"])
    lines = capsys.readouterr().out.splitlines()
    for check, hint in (("depth_accuracy_50cm", "--flat-target"), ("lux_response", "lux-sweep")):
        i = next(i for i, line in enumerate(lines) if f" {check} " in line)
        assert lines[i].startswith("[ ] NOT RUN"), lines[i]
        assert lines[i + 1].strip().startswith("next: ") and hint in lines[i + 1]
    not_run = sum(line.startswith("[ ] NOT RUN") for line in lines)
    assert not_run >= 2 and f", {not_run} not run" in lines[-1]


def test_a_camera_that_does_not_open_is_one_failed_item_then_its_error(capsys):
    assert main(["doctor", "realsense+file:///nonexistent/rec.db3"]) == 2
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines[1].startswith("[!] FAIL") and " camera_open " in lines[1] and "DRV_RECORDING_INVALID" in lines[1]
    assert "next: the recording is missing or damaged" in lines[2]
    assert "error[DRV_RECORDING_INVALID]" in out.err


@pytest.mark.parametrize("result, value, words", [
    ("FAIL", "not enabled", ("RSUSB", "uvcvideo")),
    ("NOT RUN", "unknown to this backend", ("cannot tell",)),
])
def test_metadata_not_enabled_points_at_the_rsusb_build_or_the_patched_uvcvideo(result, value, words):
    # The frame_metadata item comes from the backend's DeviceInfo.metadata_enabled (device manager work).
    row = Row("7.5 g", "frame_metadata", result, value, "per-frame exposure, projector state and timestamps")
    assert all(w in next_step(row) for w in words)
    assert next_step(Row("7.5 g", "frame_metadata", "PASS", "enabled", "")) == ""


def test_every_check_doctor_runs_has_a_next_step_for_failure(capsys):
    main(["doctor", "sim://?fps=8", "--frames", "6", "--json"])
    for c in json.loads(capsys.readouterr().out)["checks"]:
        key = "lux_response" if c["check"].startswith(("lux_response", "exposure_response")) else c["check"]
        assert NEXT_STEPS[key][0], key


def test_the_dot_reference_row_says_whether_the_pattern_check_can_run(tmp_path):
    uri = "sim://?realtime=0"
    row = dot_reference_row(uri, None)
    assert row.result == "NOT RUN" and "pattern check is absent" in row.value
    assert "projector-enrol" in next_step(row)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a reference")
    assert dot_reference_row(uri, bad).result == "FAIL"
    ir = next(p.intrinsics for p in drivers.open(uri).profiles() if p.kind == StreamKind.IR)
    shape = (ir.height, ir.width + MARGIN_PX)
    good = DotReference(np.ones(shape, np.float32), np.ones(shape, bool), 9.6, -MARGIN_PX, ir.fx)
    good.save(tmp_path / "good.npz")
    row = dot_reference_row(uri, tmp_path / "good.npz")
    assert row.result == "PASS" and "f·b 9.60" in row.value and next_step(row) == ""
    other = DotReference(np.ones(shape, np.float32), np.ones(shape, bool), 9.6, -MARGIN_PX, ir.fx * 2)
    other.save(tmp_path / "other.npz")
    row = dot_reference_row(uri, tmp_path / "other.npz")
    assert row.result == "FAIL" and "another IR mode" in row.value and "again" in next_step(row)
