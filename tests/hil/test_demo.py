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
