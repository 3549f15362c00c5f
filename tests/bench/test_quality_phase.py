"""``bench.quality_phase`` measures the quality phase pad-eval runs: ``offline.capture`` itself, ended
before the window (``window=False``), not a copy of its set-up that could drift from it."""

from __future__ import annotations

import drivers
from agent.session import offline

NONCE = bytes.fromhex("5be1c0de" * 8)


def test_the_benchs_row_is_captures_own_quality_phase(monkeypatch):
    from bench import quality_phase

    asked: list[tuple] = []
    phase = offline.QualityPhase(True, False, 17, "MOVE_CLOSER", {"MOVE_CLOSER": 17}, 17, 48.0)

    def capture(cam, n, nonce, gate, **kw):
        asked.append((n, nonce, gate, kw))
        return offline.OfflineCapture(None, [], [], phase)
    monkeypatch.setattr(offline, "capture", capture)
    gate = object()
    uri = "sim://?realtime=0&seed=3"
    assert quality_phase.run_one(uri, NONCE, gate) == {"uri": uri, "complete": False, "framesets": 17,
                                                       "reason": "MOVE_CLOSER"}
    # pad-eval's patience (require_quality: QUALITY_MAX_SETS), and no window read.
    assert asked == [(32, NONCE, gate, {"require_quality": True, "window": False})]


def test_a_capture_without_its_window_ends_after_the_quality_phase(gate):
    with drivers.open("sim://?realtime=0&seed=21&identity=3&lux=150") as cam:
        cap = offline.capture(cam, 32, NONCE, gate, require_quality=True, window=False)
    assert cap.quality.complete and cap.quality.framesets < 32
    assert cap.challenge is not None and cap.sets == []
