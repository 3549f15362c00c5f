"""Build and seal one probe in this process, pausing so the parent can count, in this process's
memory, the copies of a stretch of the face crop (``tests/uplink/test_plaintext_copies.py``).

A first probe of another frame is built and sealed before anything is counted: as in a daemon after
its first session, glibc's dynamic mmap threshold has then grown past the crop sizes, so freed
copies stay in the heap instead of being unmapped.

Protocol on stdin/stdout: prints ``needle HEX`` (64 bytes of a crop row of the frame); waits for
``go``; builds the payload and zeroes the frame's own pixels (every array of the frameset), so the
payload is the only place the face should be; prints ``built``; waits for ``go``; seals (which
wipes the payload), drops everything and collects garbage; prints ``sealed``; waits for ``quit``."""

from __future__ import annotations

import ctypes
import gc
import sys

import numpy as np

import drivers
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import FramesetReader
from agent.purpose import Purpose
from agent.uplink.probe import build_payload, crop_box, seal_probe
from agent.uplink.seal import ServerKey
from proto.capture_agent.v1 import ingest_pb2 as pb


class Signer:
    algorithm, key_id = "ed25519", "0" * 16

    def sign(self, data: bytes) -> bytes:
        return b"\0" * 64


def main() -> None:
    cam = drivers.open("sim://?realtime=0&seed=21&identity=3&lux=150")
    with cam:
        sets = list(FramesetReader(cam).take(2))
    earlier, fs = align_frameset(sets[0]), align_frameset(sets[1])
    raw = sets[1]
    h, w = fs.depth_m.shape
    bbox = [w * 0.35, h * 0.25, w * 0.65, h * 0.75]
    key = ServerKey.generate("x25519")
    ch = pb.Challenge(nonce=b"\1" * 32, server_key_id=key.key_id, server_public_key=key.public_bytes,
                      hpke_suite="x25519", frames=12)

    def probe(a, pause: bool) -> None:
        payload = build_payload(a, {"bbox": bbox, "landmarks": np.zeros((468, 3)).tolist()}, quality={},
                                liveness={"verdict": "live"}, device=cam.info, timings_ms={"total": 1.0},
                                frame_digest="0" * 64)
        if pause:
            assert raw.color is not None and a.ir is not None
            for arr in (a.color.pixels, a.depth_u16, a.ir, raw.color.pixels):
                ctypes.memset(arr.ctypes.data, 0, arr.nbytes)       # the face now only in the payload
            print("built", flush=True)
            assert sys.stdin.readline().strip() == "go"
        sealed = seal_probe(ch, payload, terminal_id="t", session_id="s", counter=1, signer=Signer(),
                            purpose=Purpose.VERIFY)
        assert not any(payload)                                   # sealing wiped it
        del payload, sealed
        gc.collect()

    probe(earlier, False)                                         # the session before this one
    x0, y0, _, _ = crop_box(bbox, w, h)
    needle = bytes(fs.color.pixels[y0 + 20, x0 + 8: x0 + 8 + 22].tobytes()[:64])
    print("needle", needle.hex(), flush=True)
    ctypes.memset(id(needle) + sys.getsizeof(needle) - 65, 0, 64)   # not the needle object itself
    del needle
    assert sys.stdin.readline().strip() == "go"
    probe(fs, True)
    print("sealed", flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main()
