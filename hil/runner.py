"""The runner: every session of every scenario through the agent's local API, as a kiosk app makes
it, with the rig setting up the scene first; outcomes, prompts, timings and verdicts per session.

An unplug cycle powers the camera's port off, makes one capture (which must fail), powers it on,
and captures until one is accepted: the recovery time is from power-on to that accepted result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.localapi.client import LocalApiError, LocalClient
from agent.quality.prompts import Prompt
from agent.session.events import Error, Progress, Result
from agent.session.request import CaptureRequest
from drivers.errors import CaptureAgentError
from hil import records
from hil.agentrun import AgentUnderTest
from hil.errors import RigUnsupported
from hil.records import SessionRecord, outcome_of
from hil.rig.base import Conditions, Rig
from hil.scenario import BONA_FIDE, NO_PRESENTATION, Scenario, ScenarioSet

BUDGETS_MS = {"enroll": 3000.0, "verify": 2000.0}     # §7.2 (the agent's [session] defaults)
Progressed = Callable[[int, int, SessionRecord], None]


@dataclass
class RunResult:
    sets: list[ScenarioSet]
    rig: str
    sessions: list[SessionRecord] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0
    finished_at: float = 0.0


def _kind(s: Scenario) -> str:
    if s.unplug is not None:
        return "unplug"
    if s.injection:
        return "injection"
    if s.subject == BONA_FIDE:
        return "bona_fide"
    if s.subject in NO_PRESENTATION:
        return "no_presentation"
    return "attack"


def capture(socket: Path, s: Scenario, repetition: int, *, timeout_s: float = 120.0) -> dict[str, Any]:
    """One ``Capture`` call as the kiosk app makes it; what it saw, timed from the call."""
    req = CaptureRequest(s.purpose_enum, s.channel, f"HIL-CONSENT-{int(time.time() * 1000) % 10**9:09d}",
                         subject_ref=f"hil-{s.name}-{repetition}"[:64], business_ref="hil-run")
    seen: dict[str, Any] = {"prompts": [], "progress": [], "accepted": None, "code": "", "detail": "",
                            "session_id": "", "verdict": "", "timings_ms": {}, "started_at": time.time()}
    t0 = time.perf_counter()

    def ms() -> float:
        return round((time.perf_counter() - t0) * 1000, 1)

    with LocalClient(str(socket), timeout_s=timeout_s) as client:
        call = client.capture(req)
        try:
            for ev in call:
                if isinstance(ev, Prompt):
                    seen["prompts"].append((ms(), ev.code))
                elif isinstance(ev, Progress):
                    seen["progress"].append((ms(), ev.percent, ev.stage))
                elif isinstance(ev, Result):
                    seen.update(accepted=ev.accepted, code=ev.reason, detail=ev.detail, verdict=ev.liveness_verdict,
                                timings_ms=dict(ev.timings_ms))
                elif isinstance(ev, Error):
                    seen.update(code=ev.code, detail=ev.message)
        except LocalApiError as exc:
            seen.update(code=exc.code, detail=exc.message)
        seen["session_id"] = call.session_id
    seen["wall_ms"] = ms()
    seen["outcome"] = outcome_of(seen["accepted"], seen["code"], seen["detail"])
    return seen


def _record(sset: ScenarioSet, s: Scenario, k: int, cond: Conditions, seen: dict[str, Any]) -> SessionRecord:
    return SessionRecord(
        set=sset.name, scenario=s.name, repetition=k, species=s.species, kind=_kind(s), purpose=s.purpose,
        channel=s.channel, expected=list(s.expect), conditions=cond.to_dict(), started_at=seen["started_at"],
        outcome=seen["outcome"], code=seen["code"], detail=seen["detail"][:300], session_id=seen["session_id"],
        verdict=seen["verdict"], prompts=seen["prompts"], progress=seen["progress"], timings_ms=seen["timings_ms"],
        wall_ms=seen["wall_ms"], budget_ms=BUDGETS_MS[s.purpose],
        last_prompt=seen["prompts"][-1][1] if seen["prompts"] else "")


def unplug_cycle(rig: Rig, socket: Path, s: Scenario, k: int) -> dict[str, Any]:
    """Power off, one capture that must fail, power on, captures until one is accepted."""
    assert s.unplug is not None
    if rig.usb is None:
        raise RigUnsupported(f"scenario {s.name!r} cycles USB power, and the rig has none")
    rig.usb.power(False)
    time.sleep(s.unplug.off_s)
    while_off = capture(socket, s, k)
    rig.usb.power(True)
    t_on = time.perf_counter()
    attempts = 0
    last: dict[str, Any] = while_off
    recovered_s = None
    while time.perf_counter() - t_on < s.unplug.recover_timeout_s:
        attempts += 1
        last = capture(socket, s, k)
        if last["outcome"] == "accepted":
            recovered_s = round(time.perf_counter() - t_on, 3)
            break
    last["unplug"] = {"off_s": s.unplug.off_s, "while_off": {"outcome": while_off["outcome"],
                                                             "code": while_off["code"]},
                      "attempts": attempts, "recovered_s": recovered_s}
    return last


def run(sets: list[ScenarioSet], rig: Rig, agent: AgentUnderTest, *, progress: Progressed | None = None,
        out_jsonl: Path | None = None) -> RunResult:
    """Every scenario's repetitions in file order. ``agent`` must be started. Each record is
    appended to ``out_jsonl`` as it completes, so an interrupted run keeps what it measured."""
    plan = [(sset, s, k) for sset in sets for s in sset.scenarios for k in range(s.repetitions)]
    result = RunResult(sets, rig.name, started_at=time.time())
    if out_jsonl is not None:
        out_jsonl.write_text("")
    for i, (sset, s, k) in enumerate(plan):
        try:
            cond = rig.prepare(s, k)
            seen = unplug_cycle(rig, agent.socket, s, k) if s.unplug is not None else capture(agent.socket, s, k)
        except CaptureAgentError as exc:
            # The bench, not the agent, failed this session (lamp out of reach, uhubctl refused...):
            # recorded as an error with the rig's code, and the run goes on.
            cond = Conditions(s.lux, None, s.cct, s.distance_mm, s.yaw, {"rig_error": exc.code})
            seen = {"started_at": time.time(), "outcome": "error", "code": exc.code, "detail": exc.message,
                    "session_id": "", "verdict": "", "prompts": [], "progress": [], "timings_ms": {}, "wall_ms": 0.0}
        rec = _record(sset, s, k, cond, seen)
        rec.unplug = seen.get("unplug")
        result.sessions.append(rec)
        if out_jsonl is not None:
            with out_jsonl.open("a") as fh:
                fh.write(rec.to_json() + "\n")
        if progress is not None:
            progress(i + 1, len(plan), rec)
    result.finished_at = time.time()
    return result


def attach_scores(result: RunResult, audit_path: Path) -> None:
    """The terminal's liveness score per session, from the agent's audit log."""
    found = records.scores_from_audit(audit_path)
    for r in result.sessions:
        got = found.get(r.session_id)
        if got:
            r.score = got.get("score")
            r.verdict = r.verdict or (got.get("verdict") or "")


def preflight(sets: list[ScenarioSet], rig: Rig) -> None:
    """Refuse, before anything runs, a scenario the rig cannot set up."""
    for sset in sets:
        for s in sset.scenarios:
            rig.check(s)
