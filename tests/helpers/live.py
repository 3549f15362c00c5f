"""A live sim face accepted, the way a kiosk app gets one from a person.

The liveness judge refuses some live faces as ``inconclusive``: before ``motion_snr`` (issue 14,
docs/liveness.md) about 1 session in 6 of ``sim://?seed=21&identity=0&lux=300&subject=live`` with a
48-frameset window, on the motion detector; after it 0 of 24 at 48 (at 32, 0 of 21 for that face but
2 inconclusive live sessions of other faces in one run of the suite), and the held-out family's
BPCER is still 22 %. Measured again on 2026-12-03: 1 of 80 daemon sessions of
``sim://?seed=21&lux=150`` at 48 (motion 0.497 against a live threshold of 0.536, every other
detector 1.0), and a whole-suite CI run failed on one such session in a test that did not ask
again; with a random nonce, 40 sessions of that face had motion SNRs from 2.69 (5th percentile
3.04, median 4.82) and 40 of ``identity=3`` from 2.57 (3.30, 4.41), where about 3.07 is needed
when nothing else moves. A still person near the threshold is the detector's, not the tests'
concern (issue 14). A kiosk app answers an inconclusive verdict by asking the person to look at the
screen again, in a new session. Tests whose subject is plumbing (a page, a ledger, a daemon) and
that need an accepted session do the same, instead of failing on the judge's error rate; the rate
itself is measured by ``pad-eval``, not by these tests. A challenge window that lost frames
(``SES_FRAMES_LOST``: a paced simulator on a loaded machine can lose a frameset to the matcher's
latency bound) is asked again too, as a kiosk app does. An ``attack`` verdict, any other error or
anything else is never retried."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

ATTEMPTS = 4          # even at the old 1 in 6 inconclusive, four in a row happen once in ~1300 fixtures


def inconclusive(result: dict[str, Any]) -> bool:
    """Asked again by a kiosk app: an inconclusive verdict, or a window that lost frames."""
    if (result.get("error") or {}).get("code") == "SES_FRAMES_LOST":
        return True
    r = result.get("result") or {}
    return r.get("reason") == "NOT_LIVE" and r.get("liveness_verdict") == "inconclusive"


Events = list[dict[str, Any]]


def until_accepted(session: Callable[[int], Events], attempts: int = ATTEMPTS) -> list[Events]:
    """Run ``session(attempt)`` (its events as dicts) again while it ends inconclusive, at most
    ``attempts`` times. Returns every attempt's events; the last one ends in a result that is
    not an inconclusive refusal, or the assertion says how many were."""
    runs: list[list[dict[str, Any]]] = []
    for attempt in range(attempts):
        runs.append(session(attempt))
        if not inconclusive(runs[-1][-1]):
            return runs
    raise AssertionError(f"a live face judged inconclusive {attempts} times in a row: {runs[-1][-1]}")


def cli_events(out: subprocess.CompletedProcess) -> Events:
    """The events ``capture-agent capture --json`` printed, for ``until_accepted``: its exit status
    must be 0 (accepted) or 1 (refused: an inconclusive verdict is asked again), never an error but
    ``SES_FRAMES_LOST`` (asked again)."""
    events = [json.loads(line) for line in out.stdout.splitlines()]
    lost = out.returncode == 2 and bool(events) and inconclusive(events[-1]) and "error" in events[-1]
    assert out.returncode in (0, 1) or lost, out.stdout[-2000:] + out.stderr[-2000:]
    return events
