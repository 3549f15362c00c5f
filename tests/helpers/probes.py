"""Synthetic probes for server tests: a well-formed payload (random crops with their digests, 468
landmarks, a liveness report bound to the challenge's nonce, and challenge evidence that meets the
challenge: ``hil/fakes/evidence.py``) sealed to the challenge's key and signed, so each server check
can be reached without a camera. The pixels are noise, not a face: these probes test the protocol
checks, not liveness (tests/uplink/test_uplink_e2e.py sends real captures).

``mutate`` hooks change the payload (``payload=``), the liveness report (``liveness=``) or the
header (``header=``) before sealing; the probe is still sealed and signed correctly afterwards,
which is what "signed but malformed" means.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.uplink.seal import load_public_key, seal
from hil.fakes.evidence import for_challenge
from proto.capture_agent.v1 import ingest_pb2 as pb

_COUNTER = itertools.count(10_000)          # per test run, increasing (every terminal's counter must)


def next_counter() -> int:
    return next(_COUNTER)


def crop(fmt: str, w: int = 16, h: int = 16) -> pb.Crop:
    px = os.urandom(w * h * {"bgr8": 3, "z16": 2, "y8": 1}[fmt])
    return pb.Crop(width=w, height=h, format=fmt, pixels=px, sha256=hashlib.sha256(px).digest(),
                   depth_scale=0.001 if fmt == "z16" else 0.0)


def liveness_report(nonce: bytes, frame_digest: str, *, verdict: str = "live", passed: bool = True,
                    digests: list[str] | None = None) -> dict[str, Any]:
    return {"verdict": verdict, "score": 0.9,
            "frame_digests": digests or [frame_digest, hashlib.sha256(b"x").hexdigest()],
            "challenge_used": True, "challenge": {"passed": passed, "nonce_sha256": hashlib.sha256(nonce).hexdigest()}}


@dataclass
class Made:
    message: pb.SealedProbe
    header: pb.ProbeHeader

    @property
    def probe_id(self) -> str:
        return self.header.probe_id


def make_probe(ch: pb.Challenge, signer, *, terminal_id: str, session_id: str, purpose: pb.Purpose = pb.VERIFY,
               counter: int | None = None, verdict: str = "live", passed: bool = True,
               liveness: Callable[[dict], Any] | None = None, payload: Callable[[pb.ProbePayload], None] | None = None,
               header: Callable[[pb.ProbeHeader], None] | None = None, liveness_json: str | None = None,
               evidence: bool = True) -> Made:
    """``evidence``: challenge evidence that meets ``ch`` (and a colour crop consistent with it), or
    none and noise crops, as a hand-made probe would have."""
    syn = for_challenge(ch) if evidence and ch.challenges else None
    fd = syn.frame_digest if syn is not None else hashlib.sha256(os.urandom(16)).hexdigest()
    lv: Any = liveness_report(ch.nonce, fd, verdict=verdict, passed=passed, digests=syn.digests if syn else None)
    if liveness is not None:
        lv = liveness(lv) or lv
    color = syn.color if syn is not None else crop("bgr8")
    p = pb.ProbePayload(color=color, depth=crop("z16", color.width, color.height),
                        ir=crop("y8", color.width, color.height), landmarks=[0.5] * (3 * 468),
                        quality_json="{}", liveness_json=liveness_json if liveness_json is not None else json.dumps(lv),
                        frame_digest=fd)
    if syn is not None:
        p.evidence.CopyFrom(syn.evidence)
    p.device.backend = "sim"
    if payload is not None:
        payload(p)
    h = pb.ProbeHeader(version=1, probe_id=str(uuid.uuid4()), terminal_id=terminal_id, session_id=session_id,
                       counter=counter if counter is not None else next_counter(), nonce=ch.nonce,
                       server_key_id=ch.server_key_id, hpke_suite=ch.hpke_suite,
                       created_unix_ms=int(time.time() * 1000), signer_key_id=signer.key_id,
                       signature_algorithm=signer.algorithm, purpose=purpose)
    if header is not None:
        header(h)
    sealed = seal(h, bytearray(p.SerializeToString()), load_public_key(ch.hpke_suite, ch.server_public_key), signer)
    return Made(sealed, h)
