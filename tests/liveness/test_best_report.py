"""The worker's report of the best frameset so far (``best``), as the daemon takes it: checked like
every worker message, and handed over only as a frameset this session sent. The worker here is the
test, on the other end of the control socket (no process, no face model)."""

from __future__ import annotations

import socket

import pytest

from agent.liveness import warmup
from agent.liveness.supervisor import (
    LivenessBestInvalid,
    LivenessSupervisor,
    LivenessVerdictUnbound,
    SupervisorSettings,
)
from agent.liveness.wire import Ring, recv, send

SLOTS = 2


class _Proc:
    """Stands for the worker's process: alive until killed."""

    pid = 4242

    def __init__(self) -> None:
        self.killed = False

    def poll(self):
        return -9 if self.killed else None

    def kill(self) -> None:
        self.killed = True

    def wait(self, timeout=None):
        return -9

    def send_signal(self, sig) -> None:
        self.killed = True


@pytest.fixture(scope="module")
def framesets():
    return warmup.framesets(None, 4)


@pytest.fixture
def worker(framesets):
    """(supervisor, the worker's end of its socket): a supervisor connected to the test."""
    size = sum(f.pixels.nbytes for f in framesets[0].frames.values())
    sup = LivenessSupervisor(SupervisorSettings(slots=SLOTS, slot_bytes=size, frame_timeout_s=2.0))
    daemon_end, worker_end = socket.socketpair()
    sup._proc, sup._sock, sup._ring = _Proc(), daemon_end, Ring(SLOTS, size)
    yield sup, worker_end
    sup._teardown()
    worker_end.close()


def _open(sup, worker_end, named):
    """A judge session with ``on_best`` (recording what it is handed), its ``begin`` read."""
    send(worker_end, {"op": "ready"})
    judge = sup.open_judge(frames=4, on_best=lambda k, fs: named.append((k, fs)))
    judge.__enter__()
    begin = recv(worker_end)
    return judge, begin


def _until(worker_end, op: str) -> list[str]:
    """The daemon's messages to the worker up to ``op`` (which must come), by their ops."""
    ops = [recv(worker_end)["op"]]
    while ops[-1] != op:
        ops.append(recv(worker_end)["op"])
    return ops


def _two_sent(sup, worker_end, named, framesets):
    """A judge session (``_open``) that has sent framesets 0 and 1 (their acks not yet sent)."""
    judge, _ = _open(sup, worker_end, named)
    judge.add(framesets[0])
    judge.add(framesets[1])
    return judge


def _abandon_two(sup, worker_end, named, framesets) -> None:
    """A session that sent two framesets, had both acked and was cancelled: the daemon's messages
    up to its ``abort`` read."""
    judge = _two_sent(sup, worker_end, named, framesets)
    send(worker_end, {"op": "ack", "slot": 0})
    send(worker_end, {"op": "ack", "slot": 1})
    judge.__exit__(None, None, None)              # cancelled: the acks collected, ``abort`` sent
    assert _until(worker_end, "abort") == ["frameset", "frameset", "abort"]


def _reports(worker_end, *indices: int) -> None:
    """The worker's ``best`` reports naming ``indices``, in order."""
    for k in indices:
        send(worker_end, {"op": "best", "index": k})


def test_a_session_that_wants_reports_asks_for_them_and_gets_its_own_framesets(worker, framesets):
    sup, w = worker
    named: list = []
    judge, begin = _open(sup, w, named)
    assert begin["op"] == "begin" and begin["best"] is True
    judge.add(framesets[0])
    judge.add(framesets[1])
    send(w, {"op": "ack", "slot": 0})
    send(w, {"op": "best", "index": 0})
    send(w, {"op": "ack", "slot": 1})
    send(w, {"op": "best", "index": 1})
    judge.add(framesets[2])            # reads what is waiting before it needs a slot (the acks, the reports)
    assert [k for k, _ in named] == [0, 1]
    assert named[0][1] is framesets[0] and named[1][1] is framesets[1]     # the very framesets sent
    # A report that comes while the daemon waits for the verdict is taken before it.
    send(w, {"op": "ack", "slot": 0})
    send(w, {"op": "best", "index": 2})
    send(w, {"op": "verdict", "liveness": {"verdict": "live", "score": 0.9, "detectors": {},
                                           "frame_digests": judge.digests}, "best": None})
    r = judge.finish()
    assert r.verdict.verdict == "live" and [k for k, _ in named] == [0, 1, 2] and named[2][1] is framesets[2]
    judge.__exit__(None, None, None)
    assert judge.sets == [] and sup.alive()


@pytest.mark.parametrize("report", [
    {"op": "best", "index": 3},                   # a frameset not sent (three were when it is read)
    {"op": "best", "index": 99},
    {"op": "best", "index": -1},
    {"op": "best", "index": True},                # a bool is not an index
    {"op": "best", "index": 1.0},
    {"op": "best", "index": "1"},
    {"op": "best"},
    {"op": "best", "index": 1, "bbox": [0, 0, 9, 9]},   # nothing more than the index
    {"op": "best", "index": 0},                   # the one named last again: not a change
])
def test_a_malformed_or_foreign_report_kills_the_worker_with_its_own_code(worker, framesets, report):
    sup, w = worker
    named: list = []
    judge, _ = _open(sup, w, named)
    judge.add(framesets[0])
    send(w, {"op": "best", "index": 0})
    send(w, {"op": "ack", "slot": 0})
    judge.add(framesets[1])
    assert [k for k, _ in named] == [0]
    send(w, report)
    restarts = sup.restarts
    with pytest.raises(LivenessBestInvalid) as exc:
        judge.add(framesets[2])
    assert exc.value.code == "LIV_BEST_INVALID"
    assert sup.restarts == restarts + 1 and sup._proc is None          # torn down: a fresh worker next
    assert [k for k, _ in named] == [0]                                # nothing more was handed over
    sup._lock.release()


def test_more_reports_than_framesets_sent_are_refused(worker, framesets):
    sup, w = worker
    named: list = []
    judge = _two_sent(sup, w, named, framesets)
    _reports(w, 0, 1, 0)                          # three changes after two framesets: not the worker's judge
    with pytest.raises(LivenessBestInvalid):
        judge.add(framesets[2])
    assert [k for k, _ in named] == [0, 1]
    sup._lock.release()


def test_a_session_that_did_not_ask_gets_no_reports(worker, framesets):
    sup, w = worker
    send(w, {"op": "ready"})
    judge = sup.open_judge(frames=4)
    judge.__enter__()
    assert "best" not in recv(w)
    judge.add(framesets[0])
    send(w, {"op": "best", "index": 0})
    judge.add(framesets[1])
    with pytest.raises(LivenessVerdictUnbound):
        judge.add(framesets[2])                   # needs slot 0's ack, and gets a report instead
    sup._lock.release()


def test_an_abandoned_sessions_late_reports_are_skipped_but_no_more(worker, framesets):
    # Framesets the worker folded before it took the ``abort`` may each have brought a report the
    # daemon never read: the next session's ``ready`` is found behind them. At most one per frameset
    # sent (less those read); one more is the worker's own doing.
    sup, w = worker
    named: list = []
    _abandon_two(sup, w, named, framesets)
    _reports(w, 0, 1)
    send(w, {"op": "ready"})
    nxt = sup.open_judge(frames=4)
    nxt.__enter__()
    assert recv(w)["op"] == "begin" and named == []
    nxt.__exit__(None, None, None)
    assert recv(w)["op"] == "abort"
    # Once more, three reports after a session of two framesets.
    _abandon_two(sup, w, named, framesets)
    _reports(w, 0, 1, 0)
    send(w, {"op": "ready"})
    with pytest.raises(LivenessVerdictUnbound):
        sup.open_judge(frames=4).__enter__()
