"""A bench that fails one scenario (the lamp cannot reach its light) is recorded with the rig's code
and the run goes on; the agent is not called for that session."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from hil import runner
from hil.errors import LuxUnreachable
from hil.rig.base import Conditions, Rig
from hil.scenario import parse_set


class DarkRoomRig(Rig):
    name = "dark-room"
    camera_uri = "realsense://843112070001"

    def device_policy(self):
        return {}

    def check(self, scenario):
        pass

    def prepare(self, scenario, repetition):
        if scenario.lux < 20:
            raise LuxUnreachable(f"{scenario.lux:g} lux is below the room's own light")
        return Conditions(scenario.lux, scenario.lux, scenario.cct, scenario.distance_mm, scenario.yaw)


def test_a_rig_error_is_a_recorded_session_not_the_end_of_the_run(tmp_path, monkeypatch):
    sset = parse_set({"set": {"name": "t"}, "scenario": [
        {"name": "dim", "lux": 15, "repetitions": 2, "expect": ["accepted"]},
        {"name": "office", "lux": 300, "expect": ["accepted"]}]})
    calls = []

    def fake_capture(socket, s, k, **kw):
        calls.append(s.name)
        return {"started_at": 0.0, "outcome": "accepted", "code": "OK", "detail": "", "session_id": "sid",
                "verdict": "live", "prompts": [], "progress": [(1.0, 100, "done")], "timings_ms": {"total": 900.0},
                "wall_ms": 950.0}

    monkeypatch.setattr(runner, "capture", fake_capture)
    out = tmp_path / "s.jsonl"
    result = runner.run([sset], DarkRoomRig(), SimpleNamespace(socket=Path("/nonexistent")), out_jsonl=out)
    assert [(r.scenario, r.outcome, r.code) for r in result.sessions] == [
        ("dim", "error", "HIL_LUX_UNREACHABLE"), ("dim", "error", "HIL_LUX_UNREACHABLE"), ("office", "accepted", "OK")]
    assert calls == ["office"] and len(out.read_text().splitlines()) == 3
    assert result.sessions[0].conditions["scene"] == {"rig_error": "HIL_LUX_UNREACHABLE"}
