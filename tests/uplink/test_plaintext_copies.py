"""The probe's face data is serialized without copies Python cannot wipe (``agent/uplink/plaintext.py``):
what the server parses is the crops and landmarks, and after sealing no copy of the face is left in
the process's memory beyond the frame it came from."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import drivers
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import FramesetReader
from agent.uplink.plaintext import varint, wipe
from agent.uplink.probe import build_payload, crop_box
from proto.capture_agent.v1 import ingest_pb2 as pb

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def aligned():
    cam = drivers.open("sim://?realtime=0&seed=21&identity=3&lux=150")
    with cam:
        return align_frameset(list(FramesetReader(cam).take(1))[0]), cam.info


def test_the_payload_parses_to_the_crops_and_landmarks(aligned):
    a, info = aligned
    h, w = a.depth_m.shape
    bbox = [w * 0.3, h * 0.2, w * 0.7, h * 0.8]
    lm = np.random.default_rng(1).uniform(0, 400, (468, 3)).astype(np.float32)
    buf = build_payload(a, {"bbox": bbox, "landmarks": lm.tolist()}, quality={"ok": True},
                        liveness={"verdict": "live"}, device=info, timings_ms={"total": 3.5}, frame_digest="ab" * 32)
    p = pb.ProbePayload.FromString(bytes(buf))
    x0, y0, x1, y1 = crop_box(bbox, w, h)
    for crop, img, fmt in ((p.color, a.color.pixels, "bgr8"), (p.depth, a.depth_u16, "z16"), (p.ir, a.ir, "y8")):
        want = np.ascontiguousarray(img[y0:y1, x0:x1]).astype(img.dtype.newbyteorder("<")).tobytes()
        assert crop.pixels == want and crop.sha256 == hashlib.sha256(want).digest() and crop.format == fmt
        assert (crop.width, crop.height, crop.x, crop.y) == (x1 - x0, y1 - y0, x0, y0)
    assert p.depth.depth_scale == pytest.approx(a.depth_scale)
    assert np.allclose(np.array(p.landmarks).reshape(-1, 3), lm - [x0, y0, 0])
    assert (p.quality_json, p.timings_ms["total"], p.frame_digest, p.device.backend) == \
        ('{"ok":true}', 3.5, "ab" * 32, info.backend)
    wipe(buf)
    assert not any(buf)
    assert [varint(n) for n in (0, 127, 128, 300, 1 << 21)] == [b"\0", b"\x7f", b"\x80\x01", b"\xac\x02",
                                                                 b"\x80\x80\x80\x01"]


def count_in_memory(pid: int, needle: bytes) -> int:
    n = 0
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if not m or not m.group(3).startswith("rw"):
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            try:
                mem.seek(start)
                n += mem.read(end - start).count(needle)
            except (OSError, OverflowError, ValueError):
                continue                                   # [vvar] and guard pages
    return n


@pytest.mark.skipif(os.geteuid() != 0 and not os.access("/proc/self/mem", os.R_OK), reason="needs /proc/PID/mem")
def test_the_payload_is_the_only_copy_of_the_face_and_sealing_leaves_none():
    """Counted in the child's writable memory: once the frame's own pixels are zeroed, the face is
    only in the payload buffer (before: the buffer plus copies from tobytes(), the protobuf arena,
    SerializeToString()); after sealing, nowhere (before: bytes(payload) and the rest, freed but
    not overwritten)."""
    child = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "helpers", "payload_copies.py")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": ROOT})

    def step(expect: str) -> int:
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == expect
        return count_in_memory(child.pid, needle)
    try:
        kind, hexed = child.stdout.readline().split()
        needle = bytes.fromhex(hexed)
        assert count_in_memory(child.pid, needle) >= 1            # the frame
        built = step("built")
        sealed = step("sealed")
    finally:
        child.stdin.write("quit\n")
        child.stdin.flush()
        child.wait(30)
    assert (built, sealed) == (1, 0), f"{built} copies of the face with the payload built, {sealed} after sealing"
