"""The daemon never loads OpenCV, not even to word a refusal (issue 20, growth28).

On main a1e6124 the first ``NOT_LIVE`` whose challenge passed (a live subject the motion detector
refused, say) had the daemon word its prompt (``events.verdict_prompt`` -> ``material_prompt`` ->
``detectors.material_light``), and ``agent.liveness.detectors`` imported ``agent.liveness.features``,
which imports OpenCV: 16.7 MiB more RSS for good (cv2 and its bundled libraries 13.7 MiB, OpenBLAS's
thread, their buffers) in one session, the memory bench's one-off daemon step (17.6 MiB at session 36
of growth27's run; at session 32, the first NOT_LIVE, in growth28's, read from the daemon's mappings).
The face work is the worker's; a fresh interpreter (the daemon's own imports) is the only way to see
a module load that any earlier test in this process would hide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys
import agent.commands.run, agent.localapi.service, agent.session.capture   # what the daemon imports
loaded = {"start": "cv2" in sys.modules}
from agent.liveness.fusion import LivenessVerdict
from agent.session.events import verdict_prompt
from tests.session.test_material_prompt import LIVE_MIN, OTHERS, PASSED, PATTERNED
# A live subject the motion detector refused, the challenge passed, the material measured (the bench's).
motion = {**OTHERS, "material": 1.0, "motion": 0.24}
told = [verdict_prompt(LivenessVerdict("inconclusive", 0.24, motion, [], {}, True, PASSED, {}, [], {}), LIVE_MIN)]
loaded["motion refused"] = "cv2" in sys.modules
# The material left out by patterned light, every other detector live: material_light runs.
told.append(verdict_prompt(LivenessVerdict("inconclusive", 0.45, OTHERS, [], {}, True, PASSED, {}, [], PATTERNED),
                           LIVE_MIN))
loaded["material unmeasured"] = "cv2" in sys.modules
print(json.dumps({"loaded": loaded, "told": [t.code if t is not None else None for t in told]}))
"""


def test_a_refusal_whose_challenge_passed_is_worded_without_loading_opencv():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["loaded"] == {"start": False, "motion refused": False, "material unmeasured": False}
    # The prompts are what they were: none for the motion refusal, less light for the patterned light.
    assert got["told"] == [None, "TOO_BRIGHT_TO_VERIFY"]
