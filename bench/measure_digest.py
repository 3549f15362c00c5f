"""Every measurement the liveness judge makes on eight simulated scenes, digested per frameset and
field, as JSON on stdout: for changes meant to leave every measurement as it was.

Run it under two code trees (``python -m bench.measure_digest > a.json`` in each; scene names as
arguments for fewer) and compare the files: equal files, bit-identical measurements. The judge's
detections, projector energy, aligned frames, checks, values, face, depth, cues and IR skin of every
frameset, and the verdict with its evidence, are each digested (SHA-256 over their exact bytes, and
floats by their hex form). The equivalence tests hold fast paths to reference paths within one tree;
this compares two trees. Nothing is written to disk; the frames are simulated.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import sys
from typing import Any

import numpy as np

from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import Judge, judge
from agent.quality import QualityGate
from bench.windows import challenged_window

SCENES = {                                          # query, framesets
    "live32": ("&seed=21&identity=3&skin=3&lux=150", 32),
    "d455": ("&camera=d455&seed=5", 8),
    "multi": ("&camera=d455&subject=multi&seed=3", 8),
    "bystander": ("&camera=d455&bystander=1&background=clutter&seed=3", 8),
    "glints": ("&glasses=clear&identity=4", 8),
    "mask": ("&subject=mask&seed=31", 8),
    "turned_dim": ("&yaw=28&lux=12&identity=2", 8),
    "print_clip": ("&subject=print&lux=300&distance_mm=500", 8),
}
NONCE = bytes(range(32))


def _feed(x: Any, h: Any) -> None:
    """Feed ``x``'s exact content to hash ``h``, through dataclasses, mappings and sequences."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        h.update(type(x).__name__.encode())
        for f in dataclasses.fields(x):
            h.update(f.name.encode())
            _feed(getattr(x, f.name), h)
    elif isinstance(x, np.ndarray):
        h.update(str((x.dtype, x.shape)).encode())
        h.update(np.ascontiguousarray(x).tobytes())
    elif isinstance(x, dict):
        for k in sorted(x, key=str):
            h.update(str(k).encode())
            _feed(x[k], h)
    elif isinstance(x, (list, tuple)):
        h.update(b"[%d" % len(x))
        for v in x:
            _feed(v, h)
    elif isinstance(x, (float, np.floating)):
        h.update(float(x).hex().encode())
    elif isinstance(x, slice):
        h.update(repr((x.start, x.stop, x.step)).encode())
    elif isinstance(x, enum.Enum):
        h.update(repr(x.value).encode())
    elif x is None or isinstance(x, (int, str, bool, np.integer, np.bool_)):
        h.update(repr(x).encode())
    elif hasattr(x, "__dict__"):
        h.update(type(x).__name__.encode())
        _feed(vars(x), h)
    else:
        raise TypeError(f"cannot digest a {type(x).__name__}")


def digest(x: Any) -> str:
    h = hashlib.sha256()
    _feed(x, h)
    return h.hexdigest()[:16]


def scene(name: str, gate: QualityGate) -> dict[str, Any]:
    query, n = SCENES[name]
    challenge, sets = challenged_window("sim://?realtime=0" + query, n, NONCE)
    measurer = Judge(gate, VerdictThresholds(), challenge=challenge)
    frames = []
    for fs in sets:
        seen = measurer._inspect(fs)
        m = measurer._measure(fs, seen)
        q = m.measurement
        frames.append({"digest": seen.digest, "detections": digest(seen.detections), "energy": digest(seen.energy),
                       "aligned": digest([m.aligned.depth_m[...], m.aligned.depth_u16, m.aligned.ir]),
                       "checks": digest(q.checks), "values": digest(q.values), "faces_found": q.faces_found,
                       "face": digest(q.face), "depth": digest(q.depth), "cues": digest(m.cues),
                       "skin": digest(m.skin)})
    r = judge(sets, gate, VerdictThresholds(), challenge=challenge)
    v = r.verdict
    return {"frames": frames, "verdict": digest([v.verdict, v.score, v.detectors, v.cues, v.notes, v.challenge,
                                                 v.injection, r.evidence, r.best_index])}


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in SCENES]
    if unknown:
        print(f"unknown scenes {unknown}; known: {sorted(SCENES)}", file=sys.stderr)
        return 2
    gate = QualityGate()
    json.dump({name: scene(name, gate) for name in names or list(SCENES)}, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
