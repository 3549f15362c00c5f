"""Build a probe: the face crops (colour, and depth and IR aligned to colour), landmarks, the quality
and liveness reports, device attestation and timings; then seal it (``seal.py``).

The session hands over the best frameset already aligned (``agent.pipeline.align``); this module
only cuts and packs. Face pixels exist only in memory, and only once outside the frames: the crops
and landmarks are copied straight into the serialized payload's ``bytearray`` (``plaintext.py``),
which sealing encrypts without another copy and then zeroes.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from agent.pipeline.align import AlignedFrameSet
from agent.purpose import Purpose
from agent.security.audit import Anchor
from agent.uplink.plaintext import CropSource, serialize
from agent.uplink.seal import crop_digest, digest_field, load_public_key, seal
from drivers.base import Camera, DeviceInfo
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


def calibration_digest(cam: Camera) -> str:
    """SHA-256 (hex) of a started camera's calibration as it streams now: every active stream's size
    and intrinsics (focal lengths, principal point, distortion) and the extrinsics between them,
    as canonical JSON with numbers rounded to 1e-6. A unit's factory calibration differs from any
    other unit's, so the server's registry can pin the camera by it (with its serial and firmware);
    it changes with the stream mode, so provision the mode the terminal runs."""
    def num(v: float) -> float | None:
        return round(float(v), 6) if math.isfinite(v) else None
    streams = []
    for p in sorted(cam.profiles(), key=lambda p: (p.kind.value, p.index)):
        i = p.intrinsics
        streams.append({"kind": p.kind.value, "index": p.index, "size": [p.width, p.height],
                        "intrinsics": None if i is None else {
                            "fx": num(i.fx), "fy": num(i.fy), "ppx": num(i.ppx), "ppy": num(i.ppy),
                            "model": i.model.value, "coeffs": [num(c) for c in i.coeffs]}})
    pairs = sorted(cam.all_extrinsics().items(), key=lambda kv: (kv[0][0].value, kv[0][1].value))
    extrinsics = [{"from": a.value, "to": b.value, "rotation": [num(v) for v in e.rotation],
                   "translation": [num(v) for v in e.translation]} for (a, b), e in pairs]
    text = json.dumps({"streams": streams, "extrinsics": extrinsics}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def camera_identity(cam: Camera) -> dict[str, str]:
    """What the server's terminal registry pins of a started camera (``[terminals.camera]``): its
    serial, firmware and calibration digest, as every probe from it will carry them."""
    info = cam.info
    return {"serial": info.serial, "firmware": info.firmware, "calibration_sha256": calibration_digest(cam)}


def attestation(info: DeviceInfo, calibration: str = "") -> pb.DeviceAttestation:
    usb = info.usb
    return pb.DeviceAttestation(backend=info.backend, model=info.name, serial=info.serial,
                                usb_id=f"{usb.vendor_id:04x}:{usb.product_id:04x}" if usb else "",
                                usb_bus=usb.bus_path if usb else "", firmware=info.firmware,
                                recording=info.is_recording, calibration_sha256=calibration)


def evidence_to_proto(ev: dict[str, Any]) -> pb.ChallengeEvidence:
    """The judge's challenge evidence (``agent.liveness.judge.FrameSelection.evidence``, checked by
    the supervisor) as the probe carries it."""
    kinds = [cast("pb.ChallengeKind", pb.ChallengeKind.Value(k.upper())) for k in ev["challenges"]]
    out = pb.ChallengeEvidence(challenges=kinds, face_box=[int(v) for v in ev["face_box"]])
    for f in ev["frames"]:
        out.frames.add(frame_counter=f["frame_counter"], timestamp_ms=f["timestamp_ms"],
                       color_frame_counter=f["color_frame_counter"], color_timestamp_ms=f["color_timestamp_ms"],
                       ir_energy=f["ir_energy"], face_grid=f["face_grid"], digest=f["digest"], face=f["face"])
    return out


def build_payload(a: AlignedFrameSet, best: dict[str, Any], *, quality: dict[str, Any] | None,
                  liveness: dict[str, Any], device: DeviceInfo, timings_ms: dict[str, float],
                  frame_digest: str, suite: str = "x25519", evidence: dict[str, Any] | None = None,
                  calibration: str = "", ima_log: bytes = b"") -> bytearray:
    """Serialize a ProbePayload of frameset ``a`` into a bytearray (the caller seals and thereby
    wipes it). ``best``: the face's box and landmarks in colour pixels; ``suite``: the challenge's,
    which decides the crops' digest (SM3 under the GM suite, SHA-256 otherwise); ``evidence``: the
    challenge window's per-frame measurements; ``calibration``: the camera's calibration digest; ``ima_log``: the
    kernel's IMA measurement list read after the quote (pin34)."""
    h, w = a.depth_m.shape
    box = crop_box(best["bbox"], w, h)
    x0, y0 = box[0], box[1]
    lm = np.asarray(best["landmarks"], dtype=np.float32)
    lm_crop = lm - np.array([x0, y0, 0], dtype=np.float32)
    # Everything but the face data; crops and landmarks are written straight into the buffer.
    payload = pb.ProbePayload(
        quality_json=json.dumps(quality or {}, separators=(",", ":")),
        liveness_json=json.dumps(liveness, separators=(",", ":")),
        device=attestation(device, calibration),
        timings_ms={k: float(v) for k, v in timings_ms.items()},
        frame_digest=frame_digest, ima_log=ima_log)
    if evidence is not None:
        payload.evidence.CopyFrom(evidence_to_proto(evidence))
    crops = [CropSource(1, a.color.pixels, box, "bgr8"), CropSource(2, a.depth_u16, box, "z16", a.depth_scale)]
    if a.ir is not None:
        crops.append(CropSource(3, a.ir, box, "y8"))
    try:
        return serialize(payload, crops, lm_crop, digest=lambda px: crop_digest(suite, px),
                         digest_field=digest_field(suite))
    finally:
        lm_crop.fill(0)


def build_header(*, terminal_id: str, session_id: str, counter: int, nonce: bytes, server_key_id: str, suite: str,
                 signer, purpose: Purpose, audit_anchor: Anchor | None = None,
                 quote: pb.PlatformQuote | None = None) -> pb.ProbeHeader:
    # The stubs type EnumTypeWrapper.Value() as int; it is the pb.Purpose of that name.
    value = cast("pb.Purpose", pb.Purpose.Value(purpose.name))
    header = pb.ProbeHeader(version=1, probe_id=str(uuid.uuid4()), terminal_id=terminal_id, session_id=session_id,
                            counter=counter, nonce=nonce, server_key_id=server_key_id, hpke_suite=suite,
                            created_unix_ms=int(time.time() * 1000), signer_key_id=signer.key_id,
                            signature_algorithm=signer.algorithm, purpose=value, platform_quote=quote)
    if audit_anchor is not None:
        header.audit_anchor.CopyFrom(anchor_to_proto(audit_anchor))
    return header


def anchor_to_proto(a: Anchor) -> pb.AuditAnchor:
    """The audit log's signed checkpoint as it travels in the probe header (kept off the terminal)."""
    return pb.AuditAnchor(seq=a.seq, head=bytes.fromhex(a.head), signature=a.signature,
                          log_id=bytes.fromhex(a.log_id) if a.log_id else b"", tpm_count=a.tpm_count,
                          tpm_certify=a.certificates)


@dataclass(frozen=True)
class SealedProbe:
    """A sealed probe ready to submit, with what the session needs to know about it."""

    message: pb.SealedProbe
    probe_id: str
    counter: int


def seal_probe(challenge: pb.Challenge, payload: bytearray, *, terminal_id: str, session_id: str, counter: int,
               signer, purpose: Purpose, audit_anchor: Anchor | None = None,
               quote: pb.PlatformQuote | None = None) -> SealedProbe:
    """Seal and sign; ``audit_anchor``: the audit log's latest signed checkpoint; ``quote``: the TPM's
    quote for this challenge (``agent/security/tpm.py``), if any."""
    header = build_header(terminal_id=terminal_id, session_id=session_id, counter=counter, nonce=challenge.nonce,
                          server_key_id=challenge.server_key_id, suite=challenge.hpke_suite, signer=signer,
                          purpose=purpose, audit_anchor=audit_anchor, quote=quote)
    message = seal(header, payload, load_public_key(challenge.hpke_suite, challenge.server_public_key), signer)
    return SealedProbe(message, header.probe_id, counter)
