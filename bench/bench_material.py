"""What the projector material measure costs per frameset on its own skin region (issue 20), against
the skin patches it replaced (issue 14, seventeenth session: ``features.material_skin``, discs of
0.2 eye spacings inside the face's oval, about three times the pixels).

Train-family live presentations (``BENCH_MATERIAL_SESSIONS``, default 4: ``train:live:0`` on), each
captured as pad-eval captures it (the quality phase, the 32-frameset window under both challenges,
the camera's projector pattern enrolled), are measured once as the judge measures them; then on the
very same frames, alternating call by call and timed by the process's CPU time
(``time.process_time``), median of ``BENCH_MATERIAL_REPEATS`` calls (default 5):

* **finding the region**, per face frame: ``material_skin`` now; the same with each point's depth
  looked up window by window as the seventeenth session wrote it (``tests/helpers/
  material_reference.py``; the same region, to the bit, checked here on every frame); and the skin
  patches (``ir_skin``, what the measure read before; the cues still find them for the native dot
  sharpness, so the region is found on top of them);
* **reading the on-off pairs** the judge reads (``projector_light_on`` with the noise pair and the
  recorded pattern, the pairs ``Judge.finish`` takes) on the region and on the patches.

The measure's cost per frameset is both together over the window's framesets. The reference of each
row is the skin patches' cost: the ratio is what the larger region costs over what it replaced.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np

SPLIT = "train"
FRAMES = 32


def _env(name: str, default: int) -> int:
    return max(1, int(os.environ.get(name, default)))


def _cpu_ms(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    t0 = time.process_time()
    out = fn(*args)
    return (time.process_time() - t0) * 1000, out


def _window(index: int, gate: Any, thresholds: Any) -> Any:
    """Train live ``index`` captured and measured as pad-eval's judge measures it: the judge (folded,
    not finished), its pairs as ``finish`` takes them, and the recorded pattern."""
    import drivers
    from agent.liveness.challenge import projector_states
    from agent.liveness.judge import Judge, _edges, _noise_pair, _usual_power
    from agent.session.offline import capture
    from hil.pad_enrolment import dot_reference_for
    from hil.pad_presentations import Presentation, presentation_nonce, presentation_uri
    p = Presentation("bona_fide", "live", SPLIT, index, presentation_uri(SPLIT, "live", index))
    ref = dot_reference_for(p.uri)
    with drivers.open(p.uri) as cam:
        cap = capture(cam, FRAMES, presentation_nonce(p), gate, require_quality=True)
    if len(cap.sets) < FRAMES:
        raise RuntimeError(f"{p.key}: {len(cap.sets)} of {FRAMES} framesets in the window")
    j = Judge(gate, thresholds, challenge=cap.challenge, dot_reference=ref)
    for fs in cap.sets:
        j._fold(fs, j._measure(fs, j._inspect(fs)))
    lit = [bool(v) for v in projector_states(j.energies)]
    usual = _usual_power(j.sets, lit)
    pairs = [(on, off, _noise_pair(lit, k, len(j.sets))) for k, on, off in _edges(lit)
             if j.faces[on] is not None and usual(on)]
    return j, pairs, ref


def run() -> list[dict]:
    from agent.liveness import features as F
    from agent.liveness.fusion import load_thresholds
    from agent.quality import QualityGate
    from tests.helpers import material_reference as R
    gate, thresholds = QualityGate(), load_thresholds("kiosk", challenged=True)
    repeats = _env("BENCH_MATERIAL_REPEATS", 5)
    find: dict[str, list[float]] = {"now": [], "as written": [], "patches": []}
    read: dict[str, list[float]] = {"region": [], "patches": []}
    framesets = 0
    pixels: dict[str, list[int]] = {"region": [], "patches": []}
    for index in range(_env("BENCH_MATERIAL_SESSIONS", 4)):
        j, pairs, ref = _window(index, gate, thresholds)
        framesets += len(j.sets)
        patches: dict[int, Any] = {}
        for k, (a, face) in enumerate(zip(j.aligned, j.faces, strict=True)):
            if face is None:
                continue
            t: dict[str, list[float]] = {name: [] for name in find}
            for _ in range(repeats):
                ms, fast = _cpu_ms(F.material_skin, a, face)
                t["now"].append(ms)
                with mock.patch.object(F, "depth_around", R.depth_around):
                    ms, slow = _cpu_ms(F.material_skin, a, face)
                    t["as written"].append(ms)
                    ms, patches[k] = _cpu_ms(F.ir_skin, a, face)
                    t["patches"].append(ms)
                if (fast is None) != (slow is None) or (fast is not None and (
                        fast.box != slow.box or not np.array_equal(fast.mask, slow.mask))):
                    raise RuntimeError(f"train:live:{index} frameset {k}: the region differs from the loop's")
            for name, v in t.items():
                find[name].append(statistics.median(v))
        a, s = j.aligned, j.sets
        for on, off, noise in pairs:
            same = (a[noise[0]], a[noise[1]]) if noise is not None else None
            t = {"region": [], "patches": []}
            for _ in range(repeats):
                ms, _light = _cpu_ms(F.projector_light_on, j.skins[on], a[on], a[off], same, ref)
                t["region"].append(ms)
                ms, _light = _cpu_ms(F.projector_light_on, patches.get(on), a[on], a[off], same, ref)
                t["patches"].append(ms)
            for name, v in t.items():
                read[name].append(statistics.median(v))
            pixels["region"].append(int(j.skins[on].mask.sum()) if j.skins[on] is not None else 0)
            pixels["patches"].append(int(patches[on].mask.sum()) if patches.get(on) is not None else 0)
        del s
    n = max(framesets, 1)
    per = {name: sum(v) / n for name, v in find.items()}
    reads = {name: sum(v) / n for name, v in read.items()}
    old = per["patches"] + reads["patches"]
    label = f"{len(find['now'])} face frames, {len(read['region'])} pairs, train live x{n // FRAMES}"
    rows: list[dict] = [
        {"name": f"material measure CPU per frameset, own region, as written ({label})",
         "value": per["as written"] + reads["region"], "unit": "ms", "reference": old,
         "ratio": (per["as written"] + reads["region"]) / old},
        {"name": "material measure CPU per frameset, own region, depths gathered at once",
         "value": per["now"] + reads["region"], "unit": "ms", "reference": old,
         "ratio": (per["now"] + reads["region"]) / old},
        {"name": "  finding the region, per face frame, as written (median)",
         "value": statistics.median(find["as written"]), "unit": "ms",
         "reference": statistics.median(find["patches"]),
         "ratio": statistics.median(find["as written"]) / statistics.median(find["patches"])},
        {"name": "  finding the region, per face frame, at once (median)",
         "value": statistics.median(find["now"]), "unit": "ms",
         "reference": statistics.median(find["patches"]),
         "ratio": statistics.median(find["now"]) / statistics.median(find["patches"])},
        {"name": "  reading an on-off pair on it (median)", "value": statistics.median(read["region"]),
         "unit": "ms", "reference": statistics.median(read["patches"]),
         "ratio": statistics.median(read["region"]) / statistics.median(read["patches"])},
        {"name": "  its pixels per pair (median)", "value": float(statistics.median(pixels["region"])),
         "unit": "px", "reference": float(statistics.median(pixels["patches"])),
         "ratio": statistics.median(pixels["region"]) / max(statistics.median(pixels["patches"]), 1)},
        {"name": "load average during the bench (1 min)", "value": os.getloadavg()[0], "unit": ""},
    ]
    return rows
