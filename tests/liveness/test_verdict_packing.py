"""The verdict's face grids and landmarks cross the worker boundary packed (``wire.pack_floats``),
not as JSON lists: checked on the daemon's side (dtype, shape, length, size, finite values: anything
else refused, ``LIV_WIRE_INVALID`` from the wire, ``LIV_VERDICT_UNBOUND`` from the supervisor) and
rebuilt as the lists were, to the bit; and the worker's rounding of the landmarks is Python's."""

from __future__ import annotations

import binascii
import json
import socket

import numpy as np
import pytest

from agent.liveness import wire
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.supervisor import (
    LivenessSupervisor,
    LivenessVerdictUnbound,
    RemoteJudge,
    check_evidence,
    unpack_best,
    unpack_evidence,
)
from agent.liveness.wire import LANDMARKS, MAX_PACKED_BYTES, WireError, pack_floats, rounded, unpack_floats
from agent.liveness.worker import pack_evidence
from agent.uplink.probe import evidence_to_proto

FRAMES = 12


def _json(v):
    """What the old path delivered: the value through the control channel's JSON."""
    return json.loads(json.dumps(v, separators=(",", ":"), allow_nan=False))


def _evidence(seed: int = 3, without_grid: tuple[int, ...] = (0, 7)) -> tuple[dict, list[str]]:
    """Evidence shaped as ``FrameSelection.evidence`` makes it (grids rounded to 6 decimals, frames
    without a colour frame carrying none)."""
    rng = np.random.default_rng(seed)
    digests = [f"{k:064x}" for k in range(FRAMES)]
    frames = []
    for k in range(FRAMES):
        grid = [] if k in without_grid else [round(float(v), 6) for v in rng.uniform(0.0, 0.8, 48)]
        frames.append({"frame_counter": 100 + k, "timestamp_ms": 1000.0 + 33.3 * k, "color_frame_counter": 90 + k,
                       "color_timestamp_ms": 999.5 + 33.3 * k, "ir_energy": float(rng.uniform(0, 50)),
                       "face_grid": grid, "digest": digests[k], "face": k not in without_grid})
    return {"challenges": ["illumination", "projector"], "face_box": [210, 140, 430, 380], "frames": frames}, digests


def _packed(ev: dict) -> dict:
    return _json(pack_evidence(ev))


def test_packed_evidence_is_rebuilt_as_the_json_lists_were_to_the_bit():
    ev, digests = _evidence()
    old = _json(ev)
    new = unpack_evidence(_packed(ev), digests)
    assert new is not None and check_evidence(new, digests)
    assert json.dumps(new) == json.dumps(old)                       # the same keys, order, numbers
    assert all(type(a) is type(b) for fa, fb in zip(new["frames"], old["frames"], strict=True)
               for a, b in zip(fa["face_grid"], fb["face_grid"], strict=True))
    assert evidence_to_proto(new).SerializeToString() == evidence_to_proto(old).SerializeToString()
    # Every frame without a grid, and none.
    for without in ((), tuple(range(FRAMES))):
        ev, digests = _evidence(5, without)
        assert json.dumps(unpack_evidence(_packed(ev), digests)) == json.dumps(_json(ev))


def test_packed_landmarks_are_rebuilt_as_the_json_lists_were():
    rng = np.random.default_rng(8)
    mesh = rng.uniform(-40, 640, (LANDMARKS, 3)).astype(np.float32)
    listed = [[round(float(v), 2) for v in p] for p in mesh]             # the worker's lists before
    best = {"index": 5, "bbox": [261.96, 175.42, 422.18, 335.64], "landmarks": pack_floats(rounded(mesh, 2))}
    got = unpack_best(_json(best), 32)
    assert got is not None and json.dumps(got) == json.dumps(_json({**best, "landmarks": listed}))
    assert np.asarray(got["landmarks"], np.float32).tobytes() == np.asarray(listed, np.float32).tobytes()


@pytest.mark.parametrize("ndigits", [2, 6])
def test_rounded_is_pythons_round_to_the_bit(ndigits):
    rng = np.random.default_rng(ndigits)
    v = rng.uniform(-700, 700, 20000)
    scale = 10.0 ** ndigits
    ties = (np.round(v * scale) + 0.5) / scale                          # at or next to a half: Python decides
    special = np.array([0.125, 2.675, 0.285, -0.005, -0.0, 0.0, 1e300, -1e300, 5e-324, 12345678.125])
    for a in (v, ties, v.astype(np.float32), special):
        assert rounded(a, ndigits).tobytes() == np.array([round(float(x), ndigits) for x in a]).tobytes()


def test_unpack_floats_round_trips_and_is_read_only():
    a = np.arange(6, dtype=np.float64).reshape(2, 3) / 7
    got = unpack_floats(_json(pack_floats(a)), (None, 3))
    assert got.tobytes() == a.tobytes() and got.shape == (2, 3) and not got.flags.writeable
    assert unpack_floats(_json(pack_floats(np.zeros((0, 48)))), (0, 48)).shape == (0, 48)


def _b64(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).decode()


GOOD = pack_floats(np.ones((2, 3)))
BAD_PACKINGS = {
    "truncated": {**GOOD, "data": GOOD["data"][:-4]},
    "fewer bytes, as many characters": {**GOOD, "data": _b64(b"\0" * 46)},
    "longer": {**GOOD, "data": _b64(b"\0" * 51)},
    "wrong shape": {**GOOD, "shape": [3, 2]},
    "wrong rank": {**GOOD, "shape": [6]},
    "shape of bools": {**GOOD, "shape": [True, 3]},
    "negative size": {**GOOD, "shape": [-2, 3]},
    "float size": {**GOOD, "shape": [2.0, 3]},
    "wrong dtype": {**GOOD, "dtype": "<f4"},
    "big-endian": {**GOOD, "dtype": ">f8"},
    "not base64": {**GOOD, "data": "!" * len(GOOD["data"])},
    "data not a string": {**GOOD, "data": list(np.ones(6))},
    "non-ascii data": {**GOOD, "data": "é" * len(GOOD["data"])},
    "a field more": {**GOOD, "order": "C"},
    "a field less": {"dtype": GOOD["dtype"], "shape": GOOD["shape"]},
    "not an object": [GOOD],
    "nan": pack_floats(np.array([[1.0, np.nan, 0.0]] * 2)),
    "inf": pack_floats(np.array([[1.0, 0.0, -np.inf]] * 2)),
}


@pytest.mark.parametrize("name", BAD_PACKINGS)
def test_a_malformed_packed_array_is_refused_with_the_wires_code(name):
    with pytest.raises(WireError) as exc:
        unpack_floats(_json(BAD_PACKINGS[name]), (2, 3))
    assert exc.value.code == "LIV_WIRE_INVALID"


def test_an_oversized_packed_array_is_refused_before_its_data_is_decoded(monkeypatch):
    decoded = []
    real = binascii.a2b_base64
    monkeypatch.setattr(wire.binascii, "a2b_base64", lambda *a, **k: decoded.append(1) or real(*a, **k))
    rows = MAX_PACKED_BYTES // (48 * 8) + 1
    big = {"dtype": "<f8", "shape": [rows, 48], "data": "A" * (4 * ((rows * 48 * 8 + 2) // 3))}
    with pytest.raises(WireError, match="exceeds"):
        unpack_floats(big, (None, 48))
    huge = {"dtype": "<f8", "shape": [1 << 40, 1 << 40], "data": ""}          # no product overflows
    with pytest.raises(WireError):
        unpack_floats(huge, (None, None))
    assert not decoded


def _tampered_frames(ev: dict, change) -> dict:
    out = json.loads(json.dumps(ev))
    change(out)
    return out


EVIDENCE_TAMPERINGS = {
    "a grid flag more than rows": lambda e: e["frames"][0].update(grid=True),
    "a grid flag fewer than rows": lambda e: e["frames"][3].update(grid=False),
    "grid flag not a bool": lambda e: e["frames"][3].update(grid=1),
    "a frame field more": lambda e: e["frames"][3].update(extra=1),
    "the list form beside": lambda e: e["frames"][3].update(face_grid=[0.5] * 48),
    "a frame field less": lambda e: e["frames"][3].pop("ir_energy"),
    "rows of 47": lambda e: e.update(grids=pack_floats(np.zeros((FRAMES - 2, 47)))),
    "grids as lists": lambda e: e.update(grids=[[0.5] * 48] * (FRAMES - 2)),
    "no grids": lambda e: e.pop("grids"),
    "a digest swapped": lambda e: e["frames"][4].update(digest="0" * 64),
    "a field at top more": lambda e: e.update(extra=[]),
    "a non-finite energy": lambda e: e["frames"][2].update(ir_energy=float("inf")),
    "truncated grids": lambda e: e["grids"].update(data=e["grids"]["data"][:-8]),
}


@pytest.mark.parametrize("name", EVIDENCE_TAMPERINGS)
def test_tampered_packed_evidence_is_refused(name):
    ev, digests = _evidence()
    wire_ev = pack_evidence(ev)
    assert unpack_evidence(_json(wire_ev), digests) is not None
    assert unpack_evidence(_tampered_frames(wire_ev, EVIDENCE_TAMPERINGS[name]), digests) is None


@pytest.mark.parametrize("best", [
    {"index": 32, "bbox": [0, 0, 9, 9]},                                # a frameset not sent
    {"index": True, "bbox": [0, 0, 9, 9]},
    {"index": 1, "bbox": [0, 0, 9]},
    {"index": 1, "bbox": [0, 0, 9, float("inf")]},
    {"index": 1, "bbox": [0, 0, 9, "9"]},
    {"index": 1, "bbox": [0, 0, 9, 9], "landmarks_shape": (LANDMARKS - 1, 3)},
    {"index": 1, "bbox": [0, 0, 9, 9], "landmarks_shape": (LANDMARKS, 2)},
    {"index": 1, "bbox": [0, 0, 9, 9], "landmarks": [[1.0, 2.0, 3.0]] * LANDMARKS},    # the list form
    {"index": 1, "bbox": [0, 0, 9, 9], "extra": 1},
])
def test_a_malformed_best_is_refused(best):
    lm = pack_floats(np.zeros(best.pop("landmarks_shape", (LANDMARKS, 3))))
    msg = {"landmarks": lm, **best}
    assert unpack_best(json.loads(json.dumps(msg)), 32) is None          # (JSON as the daemon reads it: NaN too)
    assert unpack_best(_json({"index": 1, "bbox": [0, 0, 9, 9], "landmarks": pack_floats(np.zeros((LANDMARKS, 3)))}),
                       32) is not None


def _verdict(ev: dict, digests: list[str], best: dict) -> dict:
    """A verdict as the worker sends it, packed (``worker.pack_evidence``, ``best_face``'s landmarks)."""
    return {"op": "verdict", "liveness": {"verdict": "live", "score": 0.9, "detectors": {"x": 0.9},
                                          "frame_digests": digests},
            "quality": {"ok": True}, "max_skew_ms": 1.0, "timing_ms": {"total": 20.0}, "worker_ms": 20.0,
            "finish_ms": 2.0, "framesets": len(digests), "best": best, "evidence": pack_evidence(ev)}


def _finish(msg: dict, digests: list[str]):
    """``RemoteJudge.finish`` of a session that sent ``digests``' framesets, the worker's verdict
    ``msg`` already on the channel (the other end of a socketpair: no worker process)."""
    sup = LivenessSupervisor()
    daemon, worker = socket.socketpair()
    try:
        sup._sock = daemon
        wire.send(worker, msg)
        rj = RemoteJudge(sup, len(digests), None, VerdictThresholds(), [], "kiosk")
        rj.sent = rj.acked = len(digests)
        rj.digests = list(digests)
        return rj.finish(), sup
    finally:
        worker.close()
        if sup._sock is not None:
            sup._sock.close()


def test_the_supervisor_rebuilds_a_packed_verdicts_evidence_and_best_as_the_lists_were():
    ev, digests = _evidence()
    lm = np.random.default_rng(4).uniform(0, 640, (LANDMARKS, 3))
    best = {"index": 3, "bbox": [1.5, 2.25, 300.0, 310.75], "landmarks": pack_floats(rounded(lm, 2))}
    r, _ = _finish(_verdict(ev, digests, best), digests)
    assert json.dumps(r.evidence) == json.dumps(_json(ev))
    assert json.dumps(r.best) == json.dumps({**best, "landmarks": [[round(float(v), 2) for v in p] for p in lm]})


@pytest.mark.parametrize("part", ["evidence", "best"])
def test_a_verdict_with_a_packed_array_cut_short_is_unbound_and_the_worker_dropped(part):
    ev, digests = _evidence()
    msg = _verdict(ev, digests, {"index": 3, "bbox": [1, 2, 300, 310],
                                 "landmarks": pack_floats(np.zeros((LANDMARKS, 3)))})
    packed = msg["evidence"]["grids"] if part == "evidence" else msg["best"]["landmarks"]
    packed["data"] = packed["data"][:-8]
    with pytest.raises(LivenessVerdictUnbound) as exc:
        _finish(msg, digests)
    assert exc.value.code == "LIV_VERDICT_UNBOUND" and "malformed" in exc.value.message
