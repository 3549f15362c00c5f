"""A structure-aware fuzzer for the ingest server: ``run(n, seed)`` feeds ``n`` inputs to the real
servicer and reports crashes (any exception out of a handler) and nonces used by input that did not
earn it (anything but an ``OK``, ``NOT_LIVE`` or ``EVIDENCE_FAILED`` receipt, the server's judgements
of a presentation, must leave its nonce unused).

Each input gets a fresh challenge, then one of:

* ``raw``: random or bit-flipped bytes as the SubmitProbe request, through the server's own parser;
* ``fields``: random header, ciphertext and signature bytes;
* ``header``: a valid probe whose header has one field set to a hostile value (empty, huge, control
  characters, unknown algorithm or suite, out-of-range numbers), re-signed by the terminal's key
  half of the time (signed but malformed) and left with a stale signature otherwise;
* ``payload``: a valid header over a payload with hostile content (crops, landmarks, digests,
  100 000-deep JSON, wrong JSON types, ``"challenge": "x"``, non-finite numbers, bytes that do not
  parse), sealed and signed correctly;
* ``ciphertext``/``signature``: flipped, cut or extended, re-signed or not;
* ``valid``: a well-formed probe with challenge evidence that meets its challenge (OK or NOT_LIVE),
  then the identical retry, which must get the identical receipt;
* ``begin``: random BeginCapture requests, which must get a challenge or a typed refusal.

The servicer is called the way gRPC calls it, with a context whose authentication properties are
what TLS hands over for a registered terminal's real certificate; only the socket is left out, so
10^5 inputs take minutes (the e2e tests cover the transport). The choice of inputs and mutations is
seeded; the server's nonces and the probe ids are fresh random values, so a rerun makes the same
kinds of input and its answer counts differ by a handful in 10^5.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from agent.security.keys import generate_file_key
from agent.uplink.seal import HPKE_SUITES, ServerKey, load_public_key, signed_bytes
from hil import pki
from hil.fakes.evidence import for_challenge
from hil.ingest.identity import Registry, Terminal, spki_sha256
from hil.ingest.limits import FailureLimits
from hil.ingest.server import Ingest, ServerState
from proto.capture_agent.v1 import ingest_pb2 as pb

REASONS = {"OK", "TAMPERED", "EXPIRED", "REPLAYED", "WRONG_KEY", "UNKNOWN_TERMINAL", "REVOKED", "MALFORMED",
           "NOT_LIVE", "UNBOUND", "EVIDENCE_FAILED", "UNKNOWN_CAMERA"}
JUDGED = ("OK", "NOT_LIVE", "EVIDENCE_FAILED")       # receipts that use their nonce
BEGIN_REFUSALS = {"INVALID_ARGUMENT", "PERMISSION_DENIED", "FAILED_PRECONDITION"}
# What the fuzzer's terminal declares it can be challenged with.
CAPABILITIES = pb.ChallengeCapabilities(projector=True, illumination=True, exposure_lock=True, depth_fps=30,
                                        color_fps=30)
TERMINAL = "kiosk-fuzz-0001"
KINDS = ("raw", "fields", "header", "payload", "payload", "payload", "ciphertext", "signature", "valid", "begin")


class Aborted(Exception):
    def __init__(self, code, details: str):
        super().__init__(details)
        self.code, self.details = code, details


class TlsPeer:
    """The servicer context of a call from a client certificate: its auth properties as gRPC's TLS
    layer sets them (the PEM of the verified certificate and its common name)."""

    def __init__(self, cert_pem: bytes, cn: str):
        self._auth = {"x509_pem_cert": [cert_pem], "x509_common_name": [cn.encode()],
                      "transport_security_type": [b"ssl"]}

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth

    def is_active(self) -> bool:
        return True

    def abort(self, code, details: str):
        raise Aborted(code, details)


@dataclass
class World:
    state: ServerState
    ingest: Ingest
    signer: Any
    peer: TlsPeer
    counter: int = 0

    def next_counter(self) -> int:
        self.counter += 1
        return self.counter

    def challenge(self, session_id: str = "fuzz-session", purpose: pb.Purpose = pb.VERIFY) -> pb.Challenge:
        return self.ingest.BeginCapture(pb.BeginCaptureRequest(terminal_id=TERMINAL, session_id=session_id,
                                                               purpose=purpose, capabilities=CAPABILITIES,
                                                               channel="kiosk"), self.peer)


def make_world(tmp: Path | None = None) -> World:
    tmp = tmp or Path(tempfile.mkdtemp(prefix="ingest-fuzz-"))
    ca = pki.make_ca("fuzz CA")
    cert = pki.issue(ca, TERMINAL, server=False)
    signer = generate_file_key(tmp / "terminal.pem")
    key = ServerKey.generate("x25519")
    registry = Registry([Terminal(TERMINAL, signer.public_key(), frozenset({spki_sha256(cert.cert_pem)}))])
    # Many NOT_LIVE probes on purpose: the failure limit is not what is being fuzzed.
    state = ServerState(registry=registry, keys={key.key_id: key}, current_key_id=key.key_id,
                        limits=FailureLimits(max_failures=0))             # no limits: the fuzzer issues without end
    return World(state, Ingest(state), signer, TlsPeer(cert.cert_pem, TERMINAL))


# -- hostile values ------------------------------------------------------------------------------

_NASTY_STRINGS = ["", " ", "\n", "a\nb", "\u202eevil", "\x00", "é" * 40, "x" * 65, "x" * 5000, "../../etc/passwd",
                  "ed25519 ", "ED25519", "foo", "ecdsa-p256-sha256\x00", "mlkem768-x25519", "x25519", "%s%n",
                  "\ud7ff", "🙂" * 10, "live", "null"]
_NASTY_INTS = [0, 1, -1, 2**31 - 1, 2**31, 2**32 - 1, 2**53, 2**63 - 1, -(2**63)]           # int64


def _nasty_json(rng: random.Random, nonce: bytes, fd: str) -> str:
    deep = rng.choice([1000, 10_000, 100_000])
    choices = [
        "[" * deep + "]" * deep, "[" * deep, '{"a":' * deep + "1" + "}" * deep, "NaN", "Infinity", "-Infinity",
        '"live"', "[]", "null", "true", "1e999", "", "{", '{"verdict":"live"', "\ufeff{}", '{"verdict":5}',
        '{"verdict":"live","frame_digests":"' + fd + '"}', '{"verdict":"live","frame_digests":[1,2]}',
        json.dumps({"verdict": "live", "frame_digests": [fd], "challenge": "x"}),
        json.dumps({"verdict": "live", "frame_digests": [fd], "challenge": ["x"]}),
        json.dumps({"verdict": "live", "frame_digests": [fd], "challenge": {"passed": "yes",
                                                                            "nonce_sha256": "x"}}),
        json.dumps({"verdict": "live", "frame_digests": [fd], "challenge": {"passed": True, "nonce_sha256": 5}}),
        json.dumps({"verdict": "live", "frame_digests": [fd], "challenge_used": "true",
                    "challenge": {"passed": True, "nonce_sha256": hashlib.sha256(nonce).hexdigest()}}),
        json.dumps({"verdict": "live", "frame_digests": [fd] * 10_000}),
        json.dumps({"verdict": ["live"], "frame_digests": [fd]}),
        json.dumps({"verdict": "live" * 100, "frame_digests": [fd]}),
        '{"verdict":"live","frame_digests":["' + fd + '"],"score":NaN}',
        '{"verdict":"live","frame_digests":["' + fd + '"],"x":' + "9" * 5000 + "}",
        json.dumps({"verdict": "live", "frame_digests": [fd], "pad": "x" * (300 << 10)}),
        '{"verdict":"live","verdict":"attack","frame_digests":["' + fd + '"]}',
    ]
    return rng.choice(choices)


def _random_json_value(rng: random.Random) -> Any:
    return rng.choice([None, True, False, 0, -1, 1.5, float("inf"), "", "x", [], {}, [None], {"a": {}}, "live"])


# -- inputs ----------------------------------------------------------------------------------------

def _report(nonce: bytes, fd: str, verdict: str, passed: bool) -> dict[str, Any]:
    return {"verdict": verdict, "score": 0.9, "frame_digests": [fd, hashlib.sha256(fd.encode()).hexdigest()],
            "challenge_used": True, "challenge": {"passed": passed, "nonce_sha256": hashlib.sha256(nonce).hexdigest()}}


def _crop(rng: random.Random, fmt: str, w: int = 8, h: int = 8) -> pb.Crop:
    px = rng.randbytes(w * h * {"bgr8": 3, "z16": 2, "y8": 1}[fmt])
    return pb.Crop(width=w, height=h, format=fmt, pixels=px, sha256=hashlib.sha256(px).digest(),
                   depth_scale=0.001 if fmt == "z16" else 0.0)


def _payload(rng: random.Random, ch: pb.Challenge, verdict: str = "live", passed: bool = True) -> pb.ProbePayload:
    syn = for_challenge(ch, seed=rng.randrange(1 << 30))
    fd = syn.frame_digest
    w, h = syn.color.width, syn.color.height
    report = {**_report(ch.nonce, fd, verdict, passed), "frame_digests": syn.digests}
    p = pb.ProbePayload(color=syn.color, depth=_crop(rng, "z16", w, h), ir=_crop(rng, "y8", w, h),
                        landmarks=[0.25] * (3 * 468), quality_json="{}",
                        liveness_json=json.dumps(report), frame_digest=fd, evidence=syn.evidence)
    p.device.backend = "sim"
    return p


def _header(w: World, ch: pb.Challenge) -> pb.ProbeHeader:
    return pb.ProbeHeader(version=1, probe_id=str(uuid.uuid4()), terminal_id=TERMINAL, session_id="fuzz-session",
                          counter=w.next_counter(), nonce=ch.nonce, server_key_id=ch.server_key_id,
                          hpke_suite=ch.hpke_suite, created_unix_ms=int(time.time() * 1000),
                          signer_key_id=w.signer.key_id, signature_algorithm=w.signer.algorithm, purpose=pb.VERIFY)


def _seal(w: World, ch: pb.Challenge, h: pb.ProbeHeader, plain: bytes) -> pb.SealedProbe:
    hdr = h.SerializeToString()
    ct = HPKE_SUITES[ch.hpke_suite].encrypt(plain, load_public_key(ch.hpke_suite, ch.server_public_key),
                               info=b"capture-agent/probe/v1\x00" + hdr)
    return pb.SealedProbe(header=hdr, ciphertext=ct, signature=w.signer.sign(signed_bytes(hdr, ct)))


def _resign(w: World, sealed: pb.SealedProbe) -> pb.SealedProbe:
    return pb.SealedProbe(header=sealed.header, ciphertext=sealed.ciphertext,
                          signature=w.signer.sign(signed_bytes(sealed.header, sealed.ciphertext)))


def _flip(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    how = rng.randrange(4)
    if how == 0 and b:
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif how == 1:
        del b[rng.randrange(len(b) + 1):]
    elif how == 2:
        b += rng.randbytes(rng.randint(1, 64))
    elif b:
        i = rng.randrange(len(b))
        b[i:i + rng.randint(1, 16)] = rng.randbytes(rng.randint(0, 16))
    return bytes(b)


def _mutate_header(rng: random.Random, h: pb.ProbeHeader) -> None:
    name = rng.choice(["version", "probe_id", "terminal_id", "session_id", "counter", "nonce", "server_key_id",
                       "hpke_suite", "created_unix_ms", "signer_key_id", "signature_algorithm", "purpose"])
    if name in ("probe_id", "terminal_id", "session_id", "server_key_id", "hpke_suite", "signer_key_id",
                "signature_algorithm"):
        setattr(h, name, rng.choice(_NASTY_STRINGS))
    elif name == "nonce":
        h.nonce = rng.randbytes(rng.choice([0, 1, 31, 33, 64, 32]))
    elif name == "purpose":
        h.purpose = cast(pb.Purpose, rng.choice([0, 3, 99, -5, 2**31 - 1]))      # values no enum member has
    elif name == "version":
        h.version = rng.choice([0, 2, 2**32 - 1])
    elif name == "counter":
        h.counter = rng.choice([0, 1, 2**53, 2**64 - 1])
    else:
        h.created_unix_ms = rng.choice(_NASTY_INTS)


def _mutate_payload(rng: random.Random, p: pb.ProbePayload, nonce: bytes) -> bytes | None:
    """Change ``p``; returns replacement bytes when the mutation is below the protobuf level."""
    what = rng.randrange(13)
    crop = getattr(p, rng.choice(["color", "depth", "ir"]))
    if what == 0:
        field_ = rng.choice(["width", "height"])
        setattr(crop, field_, rng.choice([0, 1, 7, 4097, 2**32 - 1, getattr(crop, field_) + 1]))
    elif what == 1:
        crop.format = rng.choice(["", "rgb", "BGR8", "y16", "z16", "bgr8", "y8"])
    elif what == 2:
        crop.pixels = _flip(rng, crop.pixels)
    elif what == 3:
        crop.sha256 = rng.choice([b"", rng.randbytes(31), rng.randbytes(32), rng.randbytes(64)])
    elif what == 4:
        crop.depth_scale = rng.choice([float("nan"), float("inf"), -1.0, 0.0, 1e38])
    elif what == 5:
        p.ClearField(rng.choice(["color", "depth", "ir"]))
    elif what == 6:
        vals = list(p.landmarks)
        choice = rng.randrange(3)
        if choice == 0:
            del vals[rng.randrange(len(vals)):]
        elif choice == 1:
            vals[rng.randrange(len(vals))] = rng.choice([float("nan"), float("inf"), -float("inf")])
        else:
            vals += [0.0] * rng.randint(1, 5)
        p.ClearField("landmarks")
        p.landmarks.extend(vals)
    elif what == 7:
        p.liveness_json = _nasty_json(rng, nonce, p.frame_digest)
    elif what == 8:
        lv = json.loads(p.liveness_json)
        key = rng.choice(sorted(lv))
        if rng.random() < 0.5:
            del lv[key]
        else:
            lv[key] = _random_json_value(rng)
        if rng.random() < 0.3 and isinstance(lv.get("challenge"), dict):
            lv["challenge"][rng.choice(["passed", "nonce_sha256"])] = _random_json_value(rng)
        p.liveness_json = json.dumps(lv)
    elif what == 9:
        p.quality_json = _nasty_json(rng, nonce, p.frame_digest)
    elif what == 10:
        p.frame_digest = rng.choice(["", "x", p.frame_digest.upper(), p.frame_digest[:-1], "é" * 64])
    elif what == 11:
        _mutate_evidence(rng, p.evidence)
    else:
        return _flip(rng, p.SerializeToString())
    return None


def _mutate_evidence(rng: random.Random, ev: pb.ChallengeEvidence) -> None:
    """Hostile challenge evidence: non-finite or huge numbers, grids of the wrong size, unknown
    challenges, frames dropped or duplicated, digests that do not match."""
    f = ev.frames[rng.randrange(len(ev.frames))] if ev.frames else ev.frames.add()
    what = rng.randrange(8)
    if what == 0:
        setattr(f, rng.choice(["timestamp_ms", "color_timestamp_ms", "ir_energy"]),
                rng.choice([float("nan"), float("inf"), -1e300, 0.0]))
    elif what == 1:
        vals = list(f.face_grid)
        f.ClearField("face_grid")
        f.face_grid.extend(rng.choice([vals[:-1], vals + [0.5], [float("nan")] * len(vals), []]))
    elif what == 2:
        ev.challenges.append(cast(pb.ChallengeKind, rng.choice([0, 3, 2**31 - 1])))
    elif what == 3:
        del ev.frames[rng.randrange(len(ev.frames)):]
    elif what == 4:
        ev.frames.add().CopyFrom(f)
    elif what == 5:
        f.digest = rng.choice(["", "x" * 64, f.digest.upper(), "é" * 32])
    elif what == 6:
        ev.ClearField("face_box")
        ev.face_box.extend(rng.choice([[], [1, 2, 3], [-5, -5, 10**6, 10**6], [2**31 - 1] * 4]))
    else:
        f.frame_counter = rng.choice([0, 2**64 - 1, f.frame_counter])


@dataclass
class Report:
    inputs: int = 0
    crashes: int = 0
    nonces_burned: int = 0
    retries_changed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    by_reason: dict[str, int] = field(default_factory=dict)
    first_crashes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, kind: str, reason: str) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1


def one(w: World, rng: random.Random, report: Report, kind: str | None = None) -> None:
    """Make and submit one fuzzed input, and check what the server did with it."""
    kind = kind or rng.choice(KINDS)
    report.inputs += 1
    try:
        reason = _one(w, rng, kind, report)
    except Exception as exc:               # the finding this fuzzer exists for
        report.crashes += 1
        if len(report.first_crashes) < 10:
            report.first_crashes.append(f"{kind}: {type(exc).__name__}: {str(exc)[:160]}")
        reason = "CRASH"
    report.count(kind, reason)


def _one(w: World, rng: random.Random, kind: str, report: Report) -> str:
    if kind == "begin":
        raw = rng.choice([rng.randbytes(rng.randint(0, 80)),
                          _flip(rng, pb.BeginCaptureRequest(terminal_id=TERMINAL, session_id="s",
                                                            purpose=pb.VERIFY).SerializeToString())])
        try:
            ch = w.ingest._begin_raw(raw, w.peer)
        except Aborted as exc:
            if exc.code.name not in BEGIN_REFUSALS:
                raise AssertionError(f"BeginCapture refused with {exc.code.name}") from None
            return exc.code.name
        if len(ch.nonce) != 32:
            raise AssertionError("BeginCapture answered without a nonce")
        return "CHALLENGE"
    ch = w.challenge()
    h = _header(w, ch)
    p = _payload(rng, ch, verdict=rng.choice(["live", "live", "attack"]))
    if kind == "raw":
        good = _seal(w, ch, h, p.SerializeToString()).SerializeToString()
        raw = rng.choice([rng.randbytes(rng.randint(0, 512)), _flip(rng, good)])
        receipt = w.ingest._submit_raw(raw, w.peer)
    elif kind == "fields":
        receipt = w.ingest.SubmitProbe(pb.SealedProbe(header=rng.randbytes(rng.randint(0, 300)),
                                                      ciphertext=rng.randbytes(rng.randint(0, 300)),
                                                      signature=rng.randbytes(rng.randint(0, 80))), w.peer)
    elif kind == "header":
        _mutate_header(rng, h)
        sealed = _seal(w, ch, h, p.SerializeToString())
        if rng.random() < 0.5:                       # a stale signature: the header changed after signing
            sealed = pb.SealedProbe(header=sealed.header, ciphertext=sealed.ciphertext,
                                    signature=w.signer.sign(signed_bytes(_header(w, ch).SerializeToString(),
                                                                         sealed.ciphertext)))
        receipt = w.ingest.SubmitProbe(sealed, w.peer)
    elif kind == "payload":
        replaced = _mutate_payload(rng, p, ch.nonce)
        receipt = w.ingest.SubmitProbe(_seal(w, ch, h, replaced if replaced is not None else p.SerializeToString()),
                                       w.peer)
    elif kind in ("ciphertext", "signature"):
        sealed = _seal(w, ch, h, p.SerializeToString())
        if kind == "ciphertext":
            sealed = pb.SealedProbe(header=sealed.header, ciphertext=_flip(rng, sealed.ciphertext),
                                    signature=sealed.signature)
            if rng.random() < 0.5:
                sealed = _resign(w, sealed)
        else:
            sealed = pb.SealedProbe(header=sealed.header, ciphertext=sealed.ciphertext,
                                    signature=rng.choice([b"", _flip(rng, sealed.signature), rng.randbytes(64)]))
        receipt = w.ingest.SubmitProbe(sealed, w.peer)
    else:                                            # valid, then its identical retry
        sealed = _seal(w, ch, h, p.SerializeToString())
        receipt = w.ingest.SubmitProbe(sealed, w.peer)
        again = w.ingest.SubmitProbe(sealed, w.peer)
        if again != receipt:
            report.retries_changed += 1
        if receipt.reason not in ("OK", "NOT_LIVE"):
            raise AssertionError(f"a valid probe got {receipt.reason}: {receipt.detail}")
    if receipt.reason not in REASONS:
        raise AssertionError(f"unknown receipt reason {receipt.reason!r}")
    rec = w.state.store.get_nonce(ch.nonce, w.state.now_ms())
    used = rec is not None and rec.used
    if receipt.reason in JUDGED:
        if not used:
            raise AssertionError(f"{receipt.reason} without using its nonce")
    elif used:
        report.nonces_burned += 1
    return receipt.reason


def run(n: int, seed: int = 1, world: World | None = None) -> Report:
    w = world or make_world()
    rng = random.Random(seed)
    report = Report()
    t0 = time.perf_counter()
    for _ in range(n):
        one(w, rng, report)
    report.seconds = time.perf_counter() - t0
    return report


if __name__ == "__main__":          # python -m hil.ingest.fuzz N [SEED]
    import sys
    r = run(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000, int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    print(json.dumps(r.__dict__, indent=1))
    raise SystemExit(1 if r.crashes or r.nonces_burned or r.retries_changed else 0)
