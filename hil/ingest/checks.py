"""Shape checks of what a terminal sends: the probe header's fields and the decrypted payload.

Everything here is a pure function of its input and raises :class:`ProbeRejected` with the receipt
reason; nothing may raise anything else, whatever the bytes (the fuzz bench, ``bench/bench_fuzz.py``,
feeds it 10^5 inputs). A signed probe that fails these checks is ``MALFORMED`` (or ``TAMPERED`` for
a crop that does not match its digest) and does not use its nonce.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from agent.security.keys import ALGORITHMS
from agent.uplink.seal import ProbeRejected, crop_digest_matches
from proto.capture_agent.v1 import ingest_pb2 as pb

FORMATS = {"bgr8": 3, "z16": 2, "y8": 1}
LANDMARKS = 468
PURPOSES = (pb.ENROLL, pb.VERIFY)
MAX_COUNTER = 2**53 - 1               # stores compare counters as doubles (Redis Lua)
MAX_JSON = 256 << 10                  # a liveness report is a few KiB
MAX_FRAMES = 240                      # frame digests in a liveness report
PROBE_ID = re.compile(r"[0-9A-Za-z-]{1,64}")
IDENT = re.compile(r"[\x21-\x7e]{1,64}")       # printable ASCII, no spaces: terminal, session, key ids
_HEX64 = re.compile(r"[0-9a-f]{64}")


def check_header(h: pb.ProbeHeader) -> None:
    """The header's fields, once it has parsed (``agent.uplink.seal.read_header``)."""
    if not PROBE_ID.fullmatch(h.probe_id):
        raise ProbeRejected("MALFORMED", "probe id must be 1-64 letters, digits or '-'")
    for name in ("terminal_id", "session_id", "server_key_id", "signer_key_id"):
        if not IDENT.fullmatch(getattr(h, name)):
            raise ProbeRejected("MALFORMED", f"{name} must be 1-64 printable ASCII characters")
    if h.signature_algorithm not in ALGORITHMS:
        raise ProbeRejected("MALFORMED", f"signature algorithm must be one of {', '.join(ALGORITHMS)}")
    if h.purpose not in PURPOSES:
        raise ProbeRejected("MALFORMED", "purpose must be ENROLL or VERIFY")
    if not 1 <= h.counter <= MAX_COUNTER:
        raise ProbeRejected("MALFORMED", f"counter must be 1-{MAX_COUNTER}")
    if h.created_unix_ms <= 0:
        raise ProbeRejected("MALFORMED", "created_unix_ms must be set")


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    """A JSON object of bounded size; deep nesting, bad numbers and other types are ``MALFORMED``."""
    if len(text) > MAX_JSON:
        raise ProbeRejected("MALFORMED", f"{what} is larger than {MAX_JSON >> 10} KiB")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise ProbeRejected("MALFORMED", f"{what} is not valid JSON (or nests too deeply)") from None
    if not isinstance(value, dict):
        raise ProbeRejected("MALFORMED", f"{what} is not a JSON object")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _check_crop(payload: pb.ProbePayload, name: str, suite: str) -> None:
    c = getattr(payload, name)
    if c.format not in FORMATS or not (8 <= c.width <= 4096 and 8 <= c.height <= 4096):
        raise ProbeRejected("MALFORMED", f"{name} crop has a bad format or size")
    if len(c.pixels) != c.width * c.height * FORMATS[c.format]:
        raise ProbeRejected("MALFORMED", f"{name} crop pixel count does not match its size")
    if len(c.sha256 or c.sm3) != 32:
        raise ProbeRejected("MALFORMED", f"{name} crop digest is not 32 bytes (SHA-256, or SM3 under the GM suite)")
    if name == "depth" and not (math.isfinite(c.depth_scale) and c.depth_scale > 0):
        raise ProbeRejected("MALFORMED", "depth crop has no positive depth scale")
    if not crop_digest_matches(c, suite):
        raise ProbeRejected("TAMPERED", f"{name} crop does not match its digest")


def liveness_report(payload: pb.ProbePayload) -> dict[str, Any]:
    """The liveness report's fields the server relies on, each of the right type."""
    lv = parse_json_object(payload.liveness_json, "liveness report")
    verdict, digests = lv.get("verdict"), lv.get("frame_digests")
    if not isinstance(verdict, str) or not 1 <= len(verdict) <= 32:
        raise ProbeRejected("MALFORMED", "liveness report has no verdict")
    if not isinstance(digests, list) or not 1 <= len(digests) <= MAX_FRAMES \
            or not all(isinstance(d, str) and _HEX64.fullmatch(d) for d in digests):
        raise ProbeRejected("MALFORMED", f"liveness report needs 1-{MAX_FRAMES} frame digests (SHA-256 hex)")
    if not isinstance(lv.get("challenge_used", False), bool):
        raise ProbeRejected("MALFORMED", "liveness report's challenge_used is not true or false")
    ref = lv.get("dot_reference_sha256")
    if ref is not None and not (isinstance(ref, str) and _HEX64.fullmatch(ref)):
        raise ProbeRejected("MALFORMED", "liveness report's dot_reference_sha256 is not null or SHA-256 hex")
    challenge = lv.get("challenge")
    if challenge is not None:
        if not isinstance(challenge, dict):
            raise ProbeRejected("MALFORMED", "liveness report's challenge is not an object")
        if not isinstance(challenge.get("passed"), bool) or not isinstance(challenge.get("nonce_sha256"), str):
            raise ProbeRejected("MALFORMED", "liveness report's challenge lacks passed or nonce_sha256")
    return lv


def validate_payload(payload: pb.ProbePayload, suite: str = "x25519") -> dict[str, Any]:
    """Schema and binding checks of a decrypted payload sealed under ``suite`` (whose crop digest it
    must carry: SHA-256, or SM3 under the GM suite); returns the liveness report."""
    for name in ("color", "depth", "ir"):
        if not payload.HasField(name):
            if name == "ir":
                continue
            raise ProbeRejected("MALFORMED", f"probe has no {name} crop")
        _check_crop(payload, name, suite)
    if (payload.depth.width, payload.depth.height) != (payload.color.width, payload.color.height):
        raise ProbeRejected("MALFORMED", "depth crop is not aligned to the colour crop")
    if payload.HasField("ir") and (payload.ir.width, payload.ir.height) != (payload.color.width, payload.color.height):
        raise ProbeRejected("MALFORMED", "IR crop is not aligned to the colour crop")
    landmarks = np.asarray(payload.landmarks, dtype=np.float64)
    if landmarks.shape != (3 * LANDMARKS,) or not np.isfinite(landmarks).all():
        raise ProbeRejected("MALFORMED", f"probe needs {LANDMARKS} finite landmarks")
    if payload.quality_json:
        parse_json_object(payload.quality_json, "quality report")
    lv = liveness_report(payload)
    if not _HEX64.fullmatch(payload.frame_digest) or payload.frame_digest not in lv["frame_digests"]:
        raise ProbeRejected("UNBOUND", "the crops' frameset is not among the frames liveness judged")
    return lv
