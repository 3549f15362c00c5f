"""When a session ends in the worker (verdict, abort, error, a new session in its place), nothing of
it stays: no judge task of it runs afterwards, no judge thread keeps alignment temporaries, the
aligned results' pool and the ring's frame copies are let go, and no frame copy of it is reachable.

The worker's serving code (``serve``: its reader thread and judge loop) runs on threads of this
process, on a real control socket and frame ring, so a test can hold the judge threads while
framesets queue behind them and look into what the process keeps afterwards (the sandboxed worker
process cannot be looked into).
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import threading
import weakref

import numpy as np
import pytest

import drivers
from agent.liveness import wire
from agent.liveness import worker as worker_mod
from agent.liveness.challenge import Challenge
from agent.liveness.judge import JUDGE_THREADS, Judge, judge_pool
from agent.pipeline import align
from agent.pipeline.frames import FramesetReader
from agent.quality import QualityGate
from agent.session.projector import Projector
from agent.session.window import collect
from drivers.frame import FrameSet

NONCE = bytes.fromhex("5e55" * 16)
FRAMES = 12                        # the reviewer's repro: 12 framesets queued when the session ends
SLOTS, SLOT_BYTES = 4, 4 << 20


@pytest.fixture(scope="module")
def sets():
    cam = drivers.open("sim://?realtime=0&seed=8&identity=2&lux=150")
    with cam:
        return collect(FramesetReader(cam), FRAMES, Challenge.from_nonce(NONCE, FRAMES), Projector(cam),
                       per_frameset=True)


@pytest.fixture
def kept():
    """Alignment temporaries kept per judge thread, as in the worker (``warm_up``)."""
    align.keep_scratch(True)
    align.release_scratch()
    yield
    align.keep_scratch(False)


class InProcessWorker:
    """``serve`` on a socket pair and a ring pair: the daemon's ends are this object's."""

    def __init__(self, gate: QualityGate):
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.ring = wire.Ring(SLOTS, SLOT_BYTES)
        self.peer = wire.Ring(SLOTS, SLOT_BYTES, fd=os.dup(self.ring.fd), writable=False)
        # Every pixel array the worker copied out of the ring, by weak reference only.
        self.copies: list[weakref.ref] = []
        read = self.peer.read

        def read_and_note(desc):
            fs = read(desc)
            self.copies += [weakref.ref(f.pixels) for f in fs.frames.values()]
            return fs
        self.peer.read = read_and_note  # type: ignore[method-assign]
        self.failure: list[BaseException] = []

        def run() -> None:
            try:
                worker_mod.serve(theirs, self.peer, gate, {})
            except BaseException as exc:           # the test reads it
                self.failure.append(exc)
        self.thread = threading.Thread(target=run, name="test-worker", daemon=True)
        self.thread.start()
        self.sent = 0

    def send(self, msg: dict) -> None:
        wire.send(self.sock, msg)

    def expect(self, op: str) -> dict:
        msg = wire.recv(self.sock)
        assert msg["op"] == op, msg
        return msg

    def begin(self) -> None:
        self.send({"op": "begin", "nonce": NONCE.hex(), "frames": FRAMES, "live_min": 0.5, "attack_max": 0.2})
        self.expect("ready")

    def frameset(self, fs) -> None:
        self.send({"op": "frameset", **self.ring.write(self.sent % SLOTS, fs)})
        self.expect("ack")                          # copied out by the reader: queued for the judge
        self.sent += 1

    def reachable(self) -> int:
        gc.collect()
        return sum(1 for ref in self.copies if ref() is not None)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send({"op": "quit"})
        self.sock.close()
        self.thread.join(timeout=60)
        self.peer.close()
        self.ring.close()


@pytest.fixture
def worker(gate, kept):
    w = InProcessWorker(gate)
    yield w
    w.close()


@contextlib.contextmanager
def held_judge_threads():
    """Every judge thread busy until the block ends: whatever is queued meanwhile waits behind."""
    pool = judge_pool()
    arrived, go = threading.Barrier(JUDGE_THREADS + 1), threading.Event()

    def hold() -> None:
        arrived.wait(timeout=60)
        go.wait(timeout=120)
    held = [pool.submit(hold) for _ in range(JUDGE_THREADS)]
    arrived.wait(timeout=60)
    try:
        yield
    finally:
        go.set()
        for f in held:
            f.result()


def settle() -> None:
    """Return once every judge thread has finished whatever was queued before: each thread runs one
    of these tasks at the same time, so none is still in an earlier task or holds one."""
    met = threading.Barrier(JUDGE_THREADS + 1)
    fences = [judge_pool().submit(met.wait, 60) for _ in range(JUDGE_THREADS)]
    met.wait(timeout=60)
    for f in fences:
        f.result()


def nothing_kept(w: InProcessWorker) -> None:
    assert not align._SCRATCH, "a judge thread keeps alignment temporaries"
    assert align._RESULTS.kept() == 0, "the aligned results' pool keeps arrays"
    assert w.peer.buffers.kept() == 0, "the ring's pool keeps frame copies"
    assert w.reachable() == 0, "frame copies of the session are still reachable"


@pytest.mark.parametrize("end", ["abort", "error", "begin"])
def test_a_session_ended_with_framesets_queued_leaves_nothing_of_them(worker, sets, end):
    # The reviewer's repro: 12 framesets queued behind busy judge threads when the session ends.
    # Their tasks must never run afterwards (they would make alignment temporaries again and fill
    # the results' pool with the session's aligned depth and IR), and nothing of them stays.
    with held_judge_threads():
        worker.begin()
        for fs in sets:
            worker.frameset(fs)
        assert worker.reachable() == 3 * FRAMES        # the judge holds every copy, none has run
        if end == "abort":
            worker.send({"op": "abort"})
            worker.send({"op": "judge"})               # answered after the abort: no session any more
            assert worker.expect("error")["message"] == "judge before begin"
        elif end == "error":                           # a frameset the worker refuses fails the session
            desc = worker.ring.write(0, sets[0])
            desc["frames"][0]["offset"] = SLOT_BYTES - 10
            worker.send({"op": "frameset", **desc})
            assert worker.expect("error")["code"] == "LIV_WIRE_INVALID"
        else:                                          # another session in its place
            worker.begin()
    settle()                                           # whatever was still queued has had its turn
    nothing_kept(worker)
    assert not worker.failure


def test_a_verdict_leaves_nothing_of_its_session(worker, sets):
    # The worker empties the ring's pool, drops its alignment temporaries and results at ``judge``:
    # right after the verdict's reply, before its loop takes the next request.
    worker.begin()
    for fs in sets:
        worker.frameset(fs)
    worker.send({"op": "judge"})
    assert worker.expect("verdict")["framesets"] == FRAMES
    worker.send({"op": "judge"})                       # answered once the loop is past the session's end
    assert worker.expect("error")["message"] == "judge before begin"
    settle()
    nothing_kept(worker)
    worker.begin()                                     # and serves the next session
    worker.frameset(sets[0])
    worker.send({"op": "abort"})
    worker.send({"op": "judge"})
    assert worker.expect("error")["message"] == "judge before begin"
    settle()
    nothing_kept(worker)


def test_the_verdict_goes_out_before_its_session_is_let_go(worker, sets, monkeypatch):
    # Letting a session go (its judge's framesets and aligned results, the alignment temporaries, the
    # ring's frame copies: several ms of freeing) came before the verdict's reply and delayed it.
    # The verdict now goes out first: it arrives while the session's end is held here.
    go, closing = threading.Event(), threading.Event()
    close = Judge.close

    def held_close(self, timeout=None):
        closing.set()
        go.wait(timeout=60)
        return close(self, timeout)
    worker.begin()
    for fs in sets:
        worker.frameset(fs)
    monkeypatch.setattr(Judge, "close", held_close)
    try:
        worker.send({"op": "judge"})
        assert worker.expect("verdict")["framesets"] == FRAMES
    finally:
        go.set()
    worker.send({"op": "judge"})                       # answered once the loop is past the session's end
    assert worker.expect("error")["message"] == "judge before begin"
    assert closing.is_set()
    settle()
    nothing_kept(worker)
    assert not worker.failure


def test_a_frameset_the_alignment_refuses_is_answered_with_its_code_and_the_worker_serves_on(worker, sets):
    # A frameset without the depth-to-colour calibration cannot be aligned (SYN_ALIGN_INPUT). That
    # ended the worker (an untyped escape from its loop: the daemon saw a crash and paid a restart);
    # it is the request's failure, answered with its code, and nothing of the session stays.
    worker.begin()
    worker.frameset(FrameSet(sets[0].frames, {}, sets[0].skew_ms))
    assert worker.expect("error")["code"] == "SYN_ALIGN_INPUT"   # once the judge measured it
    settle()
    nothing_kept(worker)
    worker.begin()                                     # the same worker serves the next session
    for fs in sets:
        worker.frameset(fs)
    worker.send({"op": "judge"})
    assert worker.expect("verdict")["framesets"] == FRAMES
    assert not worker.failure


def test_a_failed_session_is_answered_once_and_the_next_session_is_served(worker, sets):
    # A frameset the alignment refuses fails the session at its fold while the daemon's next
    # framesets and its ``judge`` are on their way (it reads replies only when it needs a slot or
    # the verdict). Answering each of them with an error of its own ("frameset before begin",
    # "judge before begin") left replies the daemon never reads for that session: the next
    # session's ``begin`` read one of them (LIV_VERDICT_UNBOUND: the worker killed, that session failed).
    worker.begin()
    worker.frameset(FrameSet(sets[0].frames, {}, sets[0].skew_ms))
    assert worker.expect("error")["code"] == "SYN_ALIGN_INPUT"   # the session failed at its fold
    for fs in sets[1:]:                                # already sent when it failed
        worker.send({"op": "frameset", **worker.ring.write(worker.sent % SLOTS, fs)})
        worker.sent += 1
    worker.send({"op": "judge"})
    worker.send({"op": "begin", "nonce": NONCE.hex(), "frames": FRAMES, "live_min": 0.5, "attack_max": 0.2})
    replies = []
    while (msg := wire.recv(worker.sock))["op"] != "ready":
        replies.append((msg["op"], msg.get("message")))
    assert replies == [("ack", None)] * (FRAMES - 1)   # the failed session's error was its only answer
    for fs in sets:                                    # and the next session is served
        worker.frameset(fs)
    worker.send({"op": "judge"})
    assert worker.expect("verdict")["framesets"] == FRAMES
    assert not worker.failure


def face_model_inputs_nonzero() -> int:
    """How many face-model input tensors, over every judge thread's interpreters, hold anything but
    zeros (one task per thread, held at a barrier so each runs on its own thread)."""
    from agent.face import models

    met = threading.Barrier(JUDGE_THREADS)

    def count() -> int:
        met.wait(timeout=60)
        its = getattr(models._PER_THREAD, "interpreters", None) or {}
        return sum(int(np.any(it.get_tensor(d["index"]))) for it in its.values() for d in it.get_input_details())
    return sum(f.result() for f in [judge_pool().submit(count) for _ in range(JUDGE_THREADS)])


@pytest.mark.parametrize("end", ["judge", "abort"])
def test_no_face_crop_stays_in_the_face_models_inputs(worker, sets, end):
    # The face models' interpreters kept the last face crop each judge thread saw (found by searching
    # the worker's memory): a session's end overwrites their inputs and runs them once on a blank.
    worker.begin()
    for fs in sets:
        worker.frameset(fs)
    worker.send({"op": end})
    if end == "judge":
        assert worker.expect("verdict")["framesets"] == FRAMES   # the wipe comes after the reply
    worker.send({"op": "judge"})                       # answered once the loop is past the session's end
    assert worker.expect("error")["message"] == "judge before begin"
    settle()
    assert face_model_inputs_nonzero() == 0
    assert not worker.failure


class _Stalling:
    """A face detector whose first call waits until the test lets it go (a judge task that runs
    on past the worker's bound); it detects with the real detector."""

    def __init__(self, detector):
        self.detector, self.entered, self.go = detector, threading.Event(), threading.Event()

    def detect(self, *args, **kwargs):
        if not self.entered.is_set():
            self.entered.set()
            self.go.wait(timeout=120)
        return self.detector.detect(*args, **kwargs)


def test_a_judge_task_that_does_not_stop_ends_the_worker(gate, kept, sets, monkeypatch):
    # A task still running after the bound cannot be made to let go of the session's frames; the
    # worker ends (the supervisor starts a fresh one) rather than keep them.
    monkeypatch.setattr(worker_mod, "JUDGE_CLOSE_TIMEOUT_S", 0.2)
    stalling = _Stalling(gate.detector)
    w = InProcessWorker(QualityGate(gate.settings, detector=stalling))
    try:
        w.begin()
        w.frameset(sets[0])
        assert stalling.entered.wait(timeout=60)       # its inspection is running, and stays
        w.send({"op": "abort"})
        w.thread.join(timeout=60)
        assert not w.thread.is_alive()
        assert [type(e) for e in w.failure] == [worker_mod.JudgeStuck]
    finally:
        stalling.go.set()
        settle()
        w.close()


# --- the judge loop alone, on this thread: a queue of work in, replies out -------------------------

BEGIN = {"op": "begin", "frames": 3, "live_min": 0.5, "attack_max": 0.2}


def run_loop(gate: QualityGate, items: list, on_reply=None) -> list[dict]:
    """``judge_loop`` on this thread over ``items`` (what the reader queues), to its ``quit``;
    ``on_reply(reply, work)`` sees each reply as it goes out. Returns the replies."""
    import queue

    work: queue.Queue = queue.Queue()
    for item in items:
        work.put(item)
    replies: list[dict] = []

    def reply(msg: dict) -> None:
        replies.append(msg)
        if on_reply is not None:
            on_reply(msg, work)
    worker_mod.judge_loop(work, reply, gate, {}, [0])
    return replies


def test_a_fold_of_an_ended_session_does_not_reach_the_next_sessions_judge(gate, monkeypatch):
    # A measurement that finishes (or is cancelled) as its session ends queues its fold event behind
    # the next session's ``begin``: it used to be folded by that session's judge (an extra pass).
    from agent.liveness import judge as judge_mod

    judges: list = []

    class Recording(judge_mod.Judge):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.folds = 0
            judges.append(self)

        def fold_ready(self) -> None:
            self.folds += 1
            super().fold_ready()
    monkeypatch.setattr(judge_mod, "Judge", Recording)

    def on_reply(msg: dict, work) -> None:
        if msg["op"] == "ready" and len(judges) == 2:    # session B has begun, in A's place
            a, b = judges
            a.on_measured()                              # A's measurement lands now
            b.on_measured()                              # and one of B's own
            work.put(("quit", {}))
    replies = run_loop(gate, [("begin", BEGIN), ("begin", BEGIN)], on_reply)
    assert [r["op"] for r in replies] == ["ready", "ready"]
    assert [j.folds for j in judges] == [0, 1]           # B folded its own event only


class _Recorded(QualityGate):
    """The worker's quality gates, as it makes them: recorded so the test can look at them."""

    made: list[QualityGate] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _Recorded.made.append(self)


def history(g: QualityGate) -> int:
    """Numbers the gate keeps of the faces it measured: depth completeness and eyelid openings."""
    return len(g._depth_window) + len(g._openness)


def test_the_quality_loops_gate_forgets_its_history_when_the_loop_ends(gate, sets, monkeypatch):
    # The daemon ends a quality loop with ``abort``; the gate's history of the person's face stayed
    # until the next session's ``quality``.
    import agent.quality

    monkeypatch.setattr(_Recorded, "made", [])
    monkeypatch.setattr(agent.quality, "QualityGate", _Recorded)
    loop = {"op": "quality", "channel": "kiosk", "settings": {}}
    seen: list[int] = []

    def on_reply(msg: dict, work) -> None:
        if msg["op"] == "assessment":
            seen.append(history(_Recorded.made[0]))
    replies = run_loop(gate, [("quality", loop), ("assess", (sets[1], {})), ("assess", (sets[2], {})),
                              ("abort", {}), ("quit", {})], on_reply)
    assert [r["op"] for r in replies] == ["ready", "assessment", "assessment"]
    assert history(_Recorded.made[0]) == 0
    assert seen[-1] > 0                                   # it had measured the face


@pytest.mark.parametrize("end", ["judge", "error"])
def test_the_judges_gate_forgets_its_history_when_the_session_ends(gate, sets, end):
    # A window's gate kept the session's history until the next session's ``begin`` reset it.
    gate.reset()
    items = [("begin", BEGIN), ("frameset", (0, sets[1])), ("frameset", (0, sets[2]))]
    if end == "judge":
        items += [("judge", {}), ("quit", {})]
    else:                                                 # a frameset the alignment refuses, at its fold
        items += [("frameset", (0, FrameSet(sets[3].frames, {}, sets[3].skew_ms)))]
    kept: list[int] = []

    def on_reply(msg: dict, work) -> None:
        if msg["op"] == "error":
            work.put(("quit", {}))
    original = QualityGate.reset

    def reset(self) -> None:                               # what it had when it was reset
        kept.append(history(self))
        original(self)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(QualityGate, "reset", reset)
        replies = run_loop(gate, items, on_reply)
    assert replies[-1]["op"] == ("verdict" if end == "judge" else "error"), replies[-1]
    assert history(gate) == 0
    assert max(kept) > 0                                  # it had the session's two framesets' history
