"""What a run records per session, and how a session's events become an outcome.

One JSON object per line (``sessions.jsonl``): the scenario and repetition, the conditions the
rig set up, what the kiosk app saw (prompts and progress with their times, the result or error),
the agent's own stage timings, and the liveness verdict and score from the agent's audit log.
Nothing biometric: no frames, no crops, no subject references.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The quality loop's timeout names the capture spec (agent/session/capture.py: _quality_loop).
_NOT_ACQUIRED_PREFIX = "the capture spec was not met"
_DEVICE_REFUSED = ("DRV_DEVICE_REFUSED", "AGT_SPEC_VIOLATION")
# Receipt reasons about the protocol, not the presentation (docs/uplink.md): a probe refused for
# these is an error of the run (a late nonce, a replay), never a PAD decision in BPCER or APCER.
PROTOCOL_REASONS = frozenset({"EXPIRED", "REPLAYED", "UNBOUND", "TAMPERED", "MALFORMED", "UNKNOWN_TERMINAL"})


@dataclass
class SessionRecord:
    set: str
    scenario: str
    repetition: int
    species: str                       # "live", a PAI species, "none"/"multi", or "injection:<kind>"
    kind: str                          # "bona_fide" | "attack" | "injection" | "no_presentation" | "unplug"
    purpose: str
    channel: str
    expected: list[str]
    conditions: dict[str, Any]
    started_at: float = 0.0            # wall clock (time.time) at the call
    outcome: str = "error"
    code: str = ""                     # the result's reason or the error's code
    detail: str = ""
    session_id: str = ""
    verdict: str = ""                  # the terminal's liveness verdict (result, or audit log)
    score: float | None = None         # the terminal's liveness score (audit log)
    prompts: list[tuple[float, str]] = field(default_factory=list)        # (ms since the call, code)
    progress: list[tuple[float, int, str]] = field(default_factory=list)  # (ms, percent, stage)
    timings_ms: dict[str, float] = field(default_factory=dict)            # the agent's stage timings
    wall_ms: float = 0.0               # the call as the kiosk app timed it
    budget_ms: float = 0.0             # §7.2 for this purpose
    last_prompt: str = ""
    unplug: dict[str, Any] | None = None   # unplug cycles: power-off attempt and recovery

    @property
    def as_expected(self) -> bool:
        return self.outcome in self.expected

    def to_json(self) -> str:
        d = asdict(self)
        d["as_expected"] = self.as_expected
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SessionRecord:
        d = {k: v for k, v in d.items() if k != "as_expected"}
        d["prompts"] = [tuple(p) for p in d.get("prompts", [])]
        d["progress"] = [tuple(p) for p in d.get("progress", [])]
        return cls(**d)


def outcome_of(accepted: bool | None, code: str, message: str) -> str:
    """accepted | not_live | rejected | not_acquired | device_refused | error. ``accepted`` is the
    result's flag (None: an error event), ``code`` its reason or the error's code."""
    if accepted:
        return "accepted"
    if accepted is False:
        if code in PROTOCOL_REASONS:
            return "error"
        return "not_live" if code == "NOT_LIVE" else "rejected"
    if code == "SES_STAGE_TIMEOUT" and message.startswith(_NOT_ACQUIRED_PREFIX):
        return "not_acquired"
    if code in _DEVICE_REFUSED:
        return "device_refused"
    return "error"


def write(records: list[SessionRecord], path: Path) -> None:
    path.write_text("".join(r.to_json() + "\n" for r in records))


def read(path: str | Path) -> list[SessionRecord]:
    return [SessionRecord.from_dict(json.loads(line)) for line in Path(path).read_text().splitlines() if line.strip()]


def scores_from_audit(audit_path: Path) -> dict[str, dict[str, Any]]:
    """``{session_id: {"verdict", "score"}}`` from the agent's audit log ``result`` entries."""
    out: dict[str, dict[str, Any]] = {}
    if not audit_path.exists():
        return out
    for line in audit_path.read_text(encoding="utf-8").splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        data = e.get("data") or {}
        if e.get("event") == "result" and data.get("session_id"):
            out[data["session_id"]] = {"verdict": data.get("verdict"), "score": data.get("score")}
    return out
