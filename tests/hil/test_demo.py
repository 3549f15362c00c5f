"""``capture-agent demo`` (the README's first command, minus set-up) runs the whole flow and every
refusal it shows is the one it should be."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_passes_every_step():
    out = subprocess.run([sys.executable, "-m", "agent.cli", "demo"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "FAIL " not in text and "demo OK" in text
    for line in ("enrolment accepted", "verification accepted", "replayed probe rejected", "REPLAYED",
                 "presentation attack (printed photo) rejected", "injected stream ignoring the challenge rejected",
                 "audit log chained and signed"):
        assert line in text, line
    assert "progress 100%" in text and "last frame to receipt" in text


@pytest.mark.parametrize("verdicts, calls, accepted", [
    (["inconclusive", "live"], 2, True),            # a still face asked again, then judged live
    (["attack"], 1, False),                         # an attack is never asked again
    (["inconclusive"] * 4, 3, False),               # at most three sessions
])
def test_the_demo_asks_again_on_inconclusive_as_a_kiosk_app_does(monkeypatch, capsys, verdicts, calls, accepted):
    from pathlib import Path

    from agent.purpose import Purpose
    from agent.session.events import Result
    from hil.commands import demo
    seen = []

    def capture(sock, purpose, consent, quiet=False):
        v = verdicts[len(seen)]
        seen.append(consent)
        return Result(v == "live", "OK" if v == "live" else "NOT_LIVE", "", v, "", {})
    monkeypatch.setattr(demo, "_capture", capture)
    r = demo._capture_as_kiosk(Path("/nonexistent.sock"), Purpose.VERIFY, "CONSENT-DEMO-0002")
    assert len(seen) == calls and r.accepted is accepted and set(seen) == {"CONSENT-DEMO-0002"}
    assert capsys.readouterr().out.count("look at the screen again") == calls - 1
