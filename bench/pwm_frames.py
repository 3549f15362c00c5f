"""Issue 14 (pwm24, diagnosis): what a PWM-dimmed room does to the projector challenge's IR frames,
frame by frame, for records of the thirteenth family (a development set since its one evaluation).

For each record key the record's URI is opened as a ``SimCamera`` (not streamed): its IR
auto-exposure settled as at start, the scene's ``PwmLight``, one depth tick rendered with the
projector on and one with it off (the face held still: only the light changes between frames). Frame
``k`` of a 32-frame window starting at tick ``--start`` is then exposed as the camera exposes it
(``SimCamera._flickered``: the ambient part scaled by ``PwmLight.factor(k / fps, exposure)``; the
camera's own noise bank), in the state the projector schedule of a nonce drawn from the key asks,
and measured as the judge measures it (``challenge.dot_energy`` on the whole IR image), and the
energies are given to ``challenge.verify_projector``. Printed per key: the dimmer, the exposure in
periods, the face's ambient level (DN), the dots' step in dot energy, the frame-to-frame jump of the
unlit frames' energy, and the verdict with the light flickering and with it held at its mean (and,
``--leak-off``, without the visible light the IR imagers see: ``_visible_ir`` returns None, a
diagnosis only; the URI's ``ir_leak=0`` cannot switch a family's flag off). ``--frames`` prints the
per-frame table. ``--exposure-periods N`` sets the IR exposure to N whole periods of the dimmer, or
(``0``) to the whole number of periods nearest the auto-exposure's own, at least one (the closed
form's claim that a whole number of periods removes the flicker, measured; ``face_clipped``: the
largest share of face pixels at 255 in a frame). ``unlit_light``: a failed window that the judge's
unlit-light rule (``challenge._projector_unlit_light``, pwm25) relabels not measurable, the face's mean
IR as its one cell, the schedule as the frames lit; ``measurable``: the verifier's own.

    python -m bench.pwm_frames /work/thirteenth-records/live.jsonl --keys KEYS.txt [--frames] [--leak-off]
    python -m bench.pwm_frames /work/thirteenth-records/live.jsonl --keys KEYS.txt --bands

``--bands`` reads the dimmer's frequency from the colour image's rolling bands instead (``bands``).

Nothing of a face is written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from agent.liveness.challenge import (
    PROJECTOR_MAX_LAG,
    PROJECTOR_MIN_SEPARATION,
    _projector_unlit_light,
    dot_energy,
    projector_schedule,
    relabelable,
    verify_projector,
)
from drivers.sim import SimCamera, SimConfig
from drivers.sim.camera import BLACK
from drivers.sim.pwm import READOUT_FRACTION, PwmLight
from drivers.sim.sensor import FULL_WELL_E, expose_ir

FRAMES = 32


def measure(uri: str, key: str, *, start: int, leak_off: bool, periods: float | None,
            frames: bool) -> dict:
    cfg = SimConfig.from_query(dict(parse_qsl(urlsplit(uri).query)))
    cam = SimCamera(cfg, uri)
    if leak_off:
        cam._leak_gains = None                       # diagnosis only: the IR imagers see no visible light
    cam._init_auto_exposure()
    exposure_s, gain = cam._ir_ae.setting
    light = cam._scene.flicker
    assert isinstance(light, PwmLight), uri
    if periods is not None:
        # a whole number of the dimmer's periods: N, or (N == 0) the nearest to the AE's own (>= 1)
        exposure_s = (periods if periods > 0 else max(1.0, round(exposure_s * light.hz))) / light.hz
    fps = cam._depth_fps
    power = cam.POWER_RANGE.default
    ticks = {on: cam._render_depth(0.0, on, power) for on in (True, False)}
    dmaps = ticks[False][1]
    face = np.isfinite(dmaps.z) & (dmaps.z < cfg.distance_mm / 1000.0 + 0.12)
    dn = 9000.0 * exposure_s * gain * 255.0 / FULL_WELL_E          # signal -> DN (expose_ir)
    amb = ticks[False][0].ambient
    amb_face = float(np.mean(amb[face])) * dn if amb is not None and face.any() else 0.0
    sched = projector_schedule(hashlib.sha256(key.encode()).digest()[:16], FRAMES)

    sat_max = [0.0]

    def energies(flicker: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        e, f_all, lvl, sat = [], [], [], []
        for i in range(FRAMES):
            k = start + i
            tick = ticks[sched[i]][0]
            f = light.factor(k / fps + cfg.t0_s, exposure_s) if flicker else 1.0
            sig = tick.ir_signal if tick.ambient is None else \
                tick.ir_signal + np.float32(f - 1.0) * tick.ambient.astype(np.float32)
            y8, _ = expose_ir(sig, exposure_s, gain, cam._noise)
            e.append(dot_energy(y8))
            f_all.append(f)
            lvl.append(float(np.mean(y8[face])) if face.any() else float("nan"))
            sat.append(float(np.mean(y8[face] >= 255)) if face.any() else 0.0)
        sat_max[0] = max(sat)
        return np.array(e), np.array(f_all), np.array(lvl)

    out: dict = {"key": key, "hz": round(light.hz, 1), "duty": round(light.duty, 2), "lux": cfg.lux,
                 "exposure_ms": round(exposure_s * 1e3, 3), "periods": round(exposure_s * light.hz, 3),
                 "gain": round(gain, 2), "ambient_face_dn": round(amb_face, 1)}
    for name, flick in (("flicker", True), ("steady", False)):
        e, f, lvl = energies(flick)
        s = np.array(sched)
        step = float(np.median(e[s]) - np.median(e[~s]))
        off = e[~s]
        # frame-to-frame change of the unlit frames' energy within runs (consecutive unlit frames)
        idx = np.flatnonzero(~s[1:] & ~s[:-1]) + 1
        jump = float(np.median(np.abs(e[idx] - e[idx - 1]))) if idx.size else float("nan")
        r = verify_projector(sched, e)
        # The judge's unlit-light rule (pwm25) on a failed window, the face's mean IR as its one cell
        # and the schedule as the frames lit (this model has no lag): relabelled not measurable or not.
        relabel = relabelable(r) and _projector_unlit_light(sched, e, lvl[:, None], s, PROJECTOR_MAX_LAG,
                                                             PROJECTOR_MIN_SEPARATION)
        out[name] = {"step": round(step, 3), "off_mean": round(float(off.mean()), 3),
                     "off_sd": round(float(off.std()), 3), "jump_med": round(jump, 3),
                     "jump_max": round(float(np.max(np.abs(e[idx] - e[idx - 1]))) if idx.size else float("nan"), 3),
                     "f_min": round(float(f.min()), 3), "f_max": round(float(f.max()), 3),
                     "face_clipped": round(sat_max[0], 3), "passed": r.passed, "sep": round(r.separation, 2),
                     "detail": r.detail[:40], "measurable": r.measurable, "unlit_light": bool(relabel)}
        if frames and flick:
            out["table"] = [(int(start + i), bool(sched[i]), round(float(f[i]), 3), round(float(lvl[i]), 1),
                             round(float(e[i]), 3)) for i in range(FRAMES)]
    return out


def bands(uri: str, key: str) -> dict:
    """The dimmer's frequency read from the colour image's rolling bands: the log ratio of two
    consecutive frames' row means (the scene cancels, the bands, free-running, move), its strongest
    row frequency, and ``hz = H * fps / (readout_fraction * rows_per_period)`` (the readout fraction is
    the simulator's; a real device needs its line time)."""
    cfg = SimConfig.from_query(dict(parse_qsl(urlsplit(uri).query)))
    cam = SimCamera(cfg, uri)
    cam._init_auto_exposure()
    light = cam._scene.flicker
    assert isinstance(light, PwmLight), uri
    fps = cam._color_fps
    a = cam._render_color(0.0, BLACK, False).color.astype(np.float64).mean(axis=(1, 2))
    b = cam._render_color(1.0 / fps, BLACK, False).color.astype(np.float64).mean(axis=(1, 2))
    ratio = np.log((b + 1.0) / (a + 1.0))
    ratio -= ratio.mean()
    h = ratio.size
    spec = np.abs(np.fft.rfft(ratio * np.hanning(h)))
    cycles = int(np.argmax(spec[2:])) + 2
    return {"key": key, "hz": round(light.hz, 1), "color_exposure_ms": round(cam._ae.exposure_s * 1e3, 2),
            "color_periods": round(cam._ae.exposure_s * light.hz, 2), "rows_per_period": round(h / cycles, 1),
            "hz_read": round(h * fps / (READOUT_FRACTION * h / cycles), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", type=Path)
    ap.add_argument("--keys", type=Path, required=True)
    ap.add_argument("--start", type=int, default=12, help="the window's first depth tick")
    ap.add_argument("--leak-off", action="store_true")
    ap.add_argument("--exposure-periods", type=float, default=None)
    ap.add_argument("--frames", action="store_true")
    ap.add_argument("--bands", action="store_true", help="only read the dimmer's frequency from the colour bands")
    a = ap.parse_args(argv)
    keys = [k.strip() for k in a.keys.read_text().splitlines() if k.strip()]
    recs = {}
    with a.records.open() as fh:
        for line in fh:
            r = json.loads(line)
            recs[r["key"]] = r
    for key in keys:
        rec = recs[key]
        if a.bands:
            print(json.dumps(bands(rec["uri"], key)), flush=True)
            continue
        m = measure(rec["uri"], key, start=a.start, leak_off=a.leak_off, periods=a.exposure_periods,
                    frames=a.frames)
        m["record"] = rec.get("verdict") or rec.get("outcome")
        m["record_detail"] = ((rec.get("challenge") or {}).get("projector") or {}).get("detail", "")[:40]
        print(json.dumps(m), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
