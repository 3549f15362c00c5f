"""Build a probe: the face crops (colour, and depth and IR aligned to colour), landmarks, the quality
and liveness reports, device attestation and timings; then seal it (``seal.py``).

The session hands over the best frameset already aligned (``agent.pipeline.align``); this module
only cuts and packs. Face pixels exist only in memory: the serialized payload lives in a
``bytearray`` that sealing overwrites, and the crops are copies that go out of scope with the
payload message.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from agent.pipeline.align import AlignedFrameSet
from agent.purpose import Purpose
from agent.uplink.seal import crop_digest, digest_field, load_public_key, seal
from drivers.base import DeviceInfo
from proto.capture_agent.v1 import ingest_pb2 as pb

CROP_MARGIN = 0.25          # of the face box, each side


def crop_box(bbox, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = bbox
    mx, my = (x1 - x0) * CROP_MARGIN, (y1 - y0) * CROP_MARGIN
    cx0, cy0 = max(int(x0 - mx), 0), max(int(y0 - my), 0)
    cx1, cy1 = min(int(np.ceil(x1 + mx)), width), min(int(np.ceil(y1 + my)), height)
    if cx1 - cx0 < 8 or cy1 - cy0 < 8:
        raise ValueError("face box too small to crop")
    return cx0, cy0, cx1, cy1


def _crop(arr: np.ndarray, box, fmt: str, x: int, y: int, depth_scale: float = 0.0, suite: str = "x25519") -> pb.Crop:
    x0, y0, x1, y1 = box
    px = np.ascontiguousarray(arr[y0:y1, x0:x1]).tobytes()
    crop = pb.Crop(width=x1 - x0, height=y1 - y0, format=fmt, pixels=px, x=x, y=y, depth_scale=depth_scale)
    setattr(crop, digest_field(suite), crop_digest(suite, px))   # SHA-256, or SM3 under the GM suite
    return crop


def attestation(info: DeviceInfo) -> pb.DeviceAttestation:
    usb = info.usb
    return pb.DeviceAttestation(backend=info.backend, model=info.name, serial=info.serial,
                                usb_id=f"{usb.vendor_id:04x}:{usb.product_id:04x}" if usb else "",
                                usb_bus=usb.bus_path if usb else "", firmware=info.firmware,
                                recording=info.is_recording)


def build_payload(a: AlignedFrameSet, best: dict[str, Any], *, quality: dict[str, Any] | None,
                  liveness: dict[str, Any], device: DeviceInfo, timings_ms: dict[str, float],
                  frame_digest: str, suite: str = "x25519") -> bytearray:
    """Serialize a ProbePayload of frameset ``a`` into a bytearray (the caller seals and thereby
    wipes it). ``best``: the face's box and landmarks in colour pixels; ``suite``: the challenge's,
    which decides the crops' digest (SM3 under the GM suite, SHA-256 otherwise)."""
    h, w = a.depth_m.shape
    box = crop_box(best["bbox"], w, h)
    x0, y0 = box[0], box[1]
    lm = np.asarray(best["landmarks"], dtype=np.float32)
    lm_crop = (lm - np.array([x0, y0, 0], dtype=np.float32)).reshape(-1)
    payload = pb.ProbePayload(
        color=_crop(a.color.pixels, box, "bgr8", x0, y0, suite=suite),
        depth=_crop(a.depth_u16, box, "z16", x0, y0, a.depth_scale, suite=suite),
        ir=_crop(a.ir, box, "y8", x0, y0, suite=suite) if a.ir is not None else None,
        landmarks=lm_crop.tolist(),
        quality_json=json.dumps(quality or {}, separators=(",", ":")),
        liveness_json=json.dumps(liveness, separators=(",", ":")),
        device=attestation(device),
        timings_ms={k: float(v) for k, v in timings_ms.items()},
        frame_digest=frame_digest)
    out = bytearray(payload.SerializeToString())
    payload.Clear()
    return out


def build_header(*, terminal_id: str, session_id: str, counter: int, nonce: bytes, server_key_id: str, suite: str,
                 signer, purpose: Purpose, quote: pb.PlatformQuote | None = None) -> pb.ProbeHeader:
    # The stubs type EnumTypeWrapper.Value() as int; it is the pb.Purpose of that name.
    value = cast("pb.Purpose", pb.Purpose.Value(purpose.name))
    return pb.ProbeHeader(version=1, probe_id=str(uuid.uuid4()), terminal_id=terminal_id, session_id=session_id,
                          counter=counter, nonce=nonce, server_key_id=server_key_id, hpke_suite=suite,
                          created_unix_ms=int(time.time() * 1000), signer_key_id=signer.key_id,
                          signature_algorithm=signer.algorithm, purpose=value, platform_quote=quote)


@dataclass(frozen=True)
class SealedProbe:
    """A sealed probe ready to submit, with what the session needs to know about it."""

    message: pb.SealedProbe
    probe_id: str
    counter: int


def seal_probe(challenge: pb.Challenge, payload: bytearray, *, terminal_id: str, session_id: str, counter: int,
               signer, purpose: Purpose, quote: pb.PlatformQuote | None = None) -> SealedProbe:
    """Seal and sign; ``quote``: the TPM's quote for this challenge (``agent/security/tpm.py``), if any."""
    header = build_header(terminal_id=terminal_id, session_id=session_id, counter=counter, nonce=challenge.nonce,
                          server_key_id=challenge.server_key_id, suite=challenge.hpke_suite, signer=signer,
                          purpose=purpose, quote=quote)
    message = seal(header, payload, load_public_key(challenge.hpke_suite, challenge.server_public_key), signer)
    return SealedProbe(message, header.probe_id, counter)
