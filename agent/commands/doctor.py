"""``capture-agent doctor URI [--json]``: check a camera against T/IIFAA 3001.1 §7.5.

Checks streams, resolution and measured frame rate, measured RGB–depth sync, depth accuracy on a
flat target at 50 cm (plane-fit RMS), depth completeness on a face, and which §7.5 d judgement
applies (illuminance on a camera with a measured lux calibration, exposure from the image otherwise)
with the camera's response across the lux range. On the simulator every check runs (the flat
target and the light are scene settings); on a real camera the flat-target check needs
``--flat-target`` (a flat board 50 cm in front of the camera) and the lux sweep cannot run (nobody
can turn the room's light from here): both say so.

The output is a checklist: each check with its clause, its result and value, and for every check that
failed or could not run, the next step an installer takes (``next_step``). A camera that cannot be
opened at all is one failed ``camera_open`` item with its next step, then ``error[CODE]``. The same
checklist appears on the diagnostics page (``capture-agent diagnose --web``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import numpy as np

import drivers
from agent.errors import SpecViolation, UsageError
from agent.liveness.dotref import DotReference, ReferenceInvalid
from agent.liveness.dotref_file import ReferenceMismatch, check_for_camera, ir_mode
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import framesets
from agent.pipeline.streamstats import StreamStats
from agent.quality import QualityGate, QualitySettings, check_stream_spec
from agent.quality.metering import FaceMetering
from drivers.errors import CaptureAgentError


def register(sub) -> None:
    p = sub.add_parser("doctor", help="check a camera against the capture spec (§7.5) and print a pass/fail table")
    p.add_argument("uri")
    p.add_argument("--frames", type=int, default=45, help="framesets to measure (default 45)")
    p.add_argument("--flat-target", action="store_true",
                   help="a flat board stands 50 cm in front of the camera: measure depth accuracy on it")
    p.add_argument("--config", help="read [quality] (thresholds, lux calibration) from this agent config")
    p.add_argument("--dot-reference", type=Path, metavar="FILE",
                   help="the camera's projector dot reference (default: the --config file's [camera] dot_reference)")
    p.add_argument("--lux-k", type=float,
                   help="try a lux calibration constant for this camera (lux x exposure s x gain per linear level)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


# What an installer does next, by check: (when it failed, when it could not run).
NEXT_STEPS: dict[str, tuple[str, str]] = {
    "dot_reference": ("record the projector's pattern on this camera again (`capture-agent projector-enrol URI "
                      "URI --out FILE`: a board 0.4-0.6 m away, then the bare wall) and name it in [camera] "
                      "dot_reference",
                      "record the projector's pattern on this camera (`capture-agent projector-enrol URI URI --out "
                      "FILE`) and name it in [camera] dot_reference (docs/liveness.md)"),
    "color_present": ("the camera gives no colour stream: use an RGB-IR-depth model from the allowlist, or add a "
                      "colour camera to [camera] uris", ""),
    "depth_present": ("the camera gives no depth stream: use a depth camera (RealSense D4xx, Orbbec) or check that "
                      "its depth sensor is enabled", ""),
    "ir_present": ("the camera gives no IR stream: enable the IR (infrared 1) stream; a camera without one cannot "
                   "be used for liveness", ""),
    "depth_resolution": ("depth below the spec: connect the camera to a USB 3 port (blue, on the host, no hub) with "
                         "its own cable; on USB 2 it falls back to small modes", ""),
    "depth_fps": ("depth below 10 fps: give the camera a USB 3 port of its own and check the host's CPU load; "
                  "`capture-agent stream URI --frames 300` shows drops per stream", ""),
    "color_resolution": ("colour below 640x480: connect to a USB 3 port; check that no other program holds the "
                         "camera in a smaller mode", ""),
    "frame_metadata": ("per-frame metadata is not enabled: install the RSUSB build of librealsense or the patched "
                       "uvcvideo kernel module (realsense-dkms), then re-plug the camera",
                       "this backend cannot tell whether metadata is enabled: check the vendor's tool"),
    "rgb_depth_sync": ("colour and depth drift more than one frame apart: enable per-frame metadata (hardware "
                       "timestamps), keep both streams on one camera, and lower the USB load", ""),
    "depth_accuracy_50cm": ("depth noisier than 3 mm on a flat board: clean the lenses, make sure the projector is "
                            "on, and run the camera's on-chip self-calibration (RealSense Depth Quality Tool)",
                            "place a flat, matte board 50 cm in front of the camera and rerun with --flat-target"),
    "depth_completeness_face": ("holes in the face's depth: turn the projector on, shade the kiosk from direct "
                                "sunlight, and check the distance (40-60 cm)",
                                "stand 40-60 cm in front of the camera, facing it, and rerun"),
    "depth_completeness_eyes_nose_mouth": ("holes at eyes, nose or mouth: turn the projector on, shade the kiosk "
                                           "from direct sunlight, remove reflective glasses for the check",
                                           "stand 40-60 cm in front of the camera, facing it, and rerun"),
    "lux_response": ("the face is not usable at this light, or the illuminance estimate is off: measure this "
                     "camera's [quality] lux_calibration with a lux meter (docs/quality.md) and check the "
                     "exposure metadata",
                     "needs controlled light: on a rig, run `python -m hil run lux-sweep`; on site, check 20, 300 "
                     "and 6000 lux with a lux meter"),
    "lux_calibration": ("the lux calibration does not fit this camera: measure it again with a lux meter "
                        "(docs/quality.md) and set [quality] lux_calibration",
                        "illuminance (15-7500 lux) is judged only on a camera with a measured lux calibration: "
                        "measure it with a lux meter and set [quality] lux_calibration (docs/quality.md); until "
                        "then the face's exposure is judged from the image"),
}

# When the camera cannot be opened at all, by error code (prefix).
OPEN_STEPS: tuple[tuple[str, str], ...] = (
    ("DRV_DEVICE_NOT_FOUND", "no such camera: check the cable and power, then `capture-agent devices`; a stopped "
                             "daemon frees a camera it held"),
    ("DRV_DEVICE_LOST", "the camera went away while streaming: re-seat the cable, use a port on the host (no hub)"),
    ("DRV_DEVICE_REFUSED", "the camera is refused by the USB allowlist or as a virtual camera: add its vendor and "
                           "product to [devices] allow (docs/devices.md) if it is genuine"),
    ("DRV_BACKEND_UNAVAILABLE", "the camera's SDK is not installed: run `make setup` (librealsense, OpenNI2)"),
    ("DRV_UNSUPPORTED_MODE", "the camera has no mode the spec needs: check the model against docs/drivers.md"),
    ("DRV_FRAME_TIMEOUT", "no frames: another program may hold the camera (stop the daemon: systemctl stop "
                          "capture-agent), or the USB link is overloaded"),
    ("DRV_RECORDING_INVALID", "the recording is missing or damaged: check the path, or record it again"),
    ("DRV_UNSAFE_LIBRARY_DIR", "the OpenNI2 library directory is writable by others: fix its owner and mode"),
    ("DRV_", "check the URI and `capture-agent devices`"),
    ("FW_MAINTENANCE", "a firmware update is running: wait for it to end"),
    ("FW_", "the camera's firmware is not approved: `capture-agent firmware check --device URI` (docs/firmware.md)"),
    ("SYN_", "streams never formed a frameset: enable hardware timestamps (metadata) and check every stream runs"),
    ("AGT_SPEC_VIOLATION", "the camera's streams do not meet §7.5: see the checks above, or choose another mode"),
)


def next_step(row: Row) -> str:
    """What to do about ``row`` ("" when it passed, or when there is nothing to do but read it)."""
    if row.result == "PASS":
        return ""
    if row.check == "camera_open":
        return next((step for prefix, step in OPEN_STEPS if row.value.startswith(prefix)),
                    f"see {row.value} in the README's error tables")
    key = "lux_response" if row.check.startswith(("lux_response", "exposure_response")) else row.check
    failed, not_run = NEXT_STEPS.get(key, ("", ""))
    return (failed if row.result == "FAIL" else not_run) or row.requirement


def open_failure(exc: CaptureAgentError) -> Row:
    """The checklist's one item when the camera cannot be opened or streamed at all."""
    row = Row("7.5", "camera_open", "FAIL", exc.code, "the camera opens and delivers framesets")
    row.next_step = next_step(row)
    return row


def checklist(uri: str, n: int = 45, flat_target: bool = False, settings: QualitySettings | None = None) -> list[Row]:
    """``diagnose`` with each item's next step filled in."""
    rows = diagnose(uri, n, flat_target, settings)
    for r in rows:
        r.next_step = next_step(r)
    return rows


@dataclass
class Row:
    clause: str
    check: str
    result: str           # PASS | FAIL | NOT RUN
    value: str
    requirement: str
    next_step: str = ""   # what to do when it failed or did not run (``next_step``)

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def dot_reference_row(uri: str, path: Path | None) -> Row:
    """Whether the material measure can test each on-off pair against this camera's own projector
    pattern (``agent.liveness.dotref``): a valid reference recorded in the IR mode the camera streams."""
    requirement = "a projector dot reference recorded on this camera ([camera] dot_reference)"
    if path is None:
        return Row("liveness", "dot_reference", "NOT RUN", "no projector dot reference: the material measure's pattern "
                   "check is absent", requirement)
    try:
        ref = DotReference.load(path)
    except ReferenceInvalid as exc:
        return Row("liveness", "dot_reference", "FAIL", str(exc), requirement)
    try:
        check_for_camera(ref, ir_mode(drivers.open(uri).profiles()), str(path))
    except ReferenceMismatch as exc:
        return Row("liveness", "dot_reference", "FAIL", str(exc), requirement)
    return Row("liveness", "dot_reference", "PASS", f"f·b {ref.parallax_px_m:.2f} px·m, "
               f"{float(ref.covered.mean()):.0%} of the projector's field, sha256 {ref.digest[:16]}", requirement)


def _with_query(uri: str, **changes) -> str:
    parts = urlsplit(uri)
    q = dict(parse_qsl(parts.query))
    q.update({k: str(v) for k, v in changes.items()})
    q.setdefault("realtime", "0")
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(q)}"


def _plane_rms_mm(depth_m: np.ndarray) -> tuple[float, float]:
    """(plane-fit RMS in mm, mean distance in m) over the central 16 % of the image (the target)."""
    h, w = depth_m.shape
    roi = depth_m[int(h * 0.42):int(h * 0.58), int(w * 0.42):int(w * 0.58)]
    v, u = np.nonzero(np.isfinite(roi))
    z = roi[v, u].astype(np.float64)
    a = np.c_[u, v, np.ones_like(u)].astype(np.float64)
    coef, *_ = np.linalg.lstsq(a, z, rcond=None)
    return float(np.sqrt(np.mean((a @ coef - z) ** 2)) * 1000), float(z.mean())


# §7.5 d on the simulator: the face is judged once the camera's auto-exposure has done what it can,
# not after a fixed count. Metered on the face, a camera takes a few frames to apply a new region
# (4 framesets on the simulator) and then corrects a share of the error per frame (a Gemini 2 L 15 %):
# a Fitzpatrick VI face, metered on the picture at gray ~54, reaches the band after 10-12 framesets,
# where 6 judged it before its exposure had moved (docs/diagnostics.md).
LUX_MAX_FRAMESETS = 40
LUX_SETTLED_OK = 3          # consecutive usable framesets: converged
LUX_SETTLED_STILL = 8       # framesets with exposure x gain within 1 %: nothing left to change


def _exposure_settled(reports: list, products: list[float]) -> bool:
    """Whether the auto-exposure is done: the face usable for ``LUX_SETTLED_OK`` framesets, or the
    exposure x gain unchanged for ``LUX_SETTLED_STILL`` (at its limit, or converged out of band)."""
    if len(reports) >= LUX_SETTLED_OK and all(r.ok for r in reports[-LUX_SETTLED_OK:]):
        return True
    last = np.asarray(products[-LUX_SETTLED_STILL:], np.float64)
    return bool(last.size == LUX_SETTLED_STILL and np.all(np.isfinite(last))
                and (last.max() - last.min()) <= 0.01 * last.max())


def _lux_rows(uri: str, settings: QualitySettings, serial: str, is_sim: bool) -> list[Row]:
    """§7.5 d: which judgement applies to this camera, and (on the simulator, where the light can be
    set) the camera's response across 20-6000 lux with the exposure metered on the face."""
    k = QualityGate(settings).lux_k(serial)
    rows = []
    if k is None:
        rows.append(Row("7.5 d", "lux_calibration", "NOT RUN",
                        f"no measured calibration for {serial}: illuminance not judged, exposure judged from the image",
                        "measure k with a lux meter into [quality.lux_calibration] to judge 15-7500 lux"))
    else:
        rows.append(Row("7.5 d", "lux_calibration", "PASS", f"k = {k:g} for {serial}: illuminance judged 15-7500 lux",
                        "a measured calibration"))
    if not is_sim:
        rows.append(Row("7.5 d", "lux_response", "NOT RUN", "", "needs controlled lighting (20, 300, 6000 lux)"))
        return rows
    for lux in (20, 300, 6000):          # inside 15-7500 with margin for the estimate
        g = QualityGate(settings)
        lcam = drivers.open(_with_query(uri, lux=lux, subject="live"))
        with lcam:
            metering = FaceMetering(lcam)
            reports = []
            products: list[float] = []
            for fs in framesets(lcam, LUX_MAX_FRAMESETS, timeout_s=float(LUX_MAX_FRAMESETS)):
                a = align_frameset(fs)
                reports.append(g.evaluate(a))
                metering.observe(reports[-1].face, a.color.width, a.color.height)
                g.face_metered = metering.active
                md = a.color.metadata
                products.append((md.exposure_us or np.nan) * (md.gain or np.nan))
                if _exposure_settled(reports, products):
                    break
            metering.end()
        usable = reports[-1].ok
        share = float(np.median([r.metrics.get("gray_share", np.nan) for r in reports[-3:]]))
        snr = float(np.median([r.metrics.get("face_snr", np.nan) for r in reports[-3:]]))
        seen = f"{share:.0%} of face in 85-200, face SNR {snr:.0f} after {len(reports)} framesets"
        if k is None:
            rows.append(Row("7.5 d", f"exposure_response_{lux}", "PASS" if usable else "FAIL",
                            seen, "face usable (exposure judged from the image)"))
            continue
        est = float(np.median([r.metrics.get("lux", np.nan) for r in reports[-3:]]))
        ok = usable and abs(est - lux) / lux < 0.25
        rows.append(Row("7.5 d", f"lux_response_{lux}", "PASS" if ok else "FAIL",
                        f"estimated {est:.0f} lux, {seen}",
                        "face usable, illuminance estimate within 25 %"))
    return rows


def diagnose(uri: str, n: int, flat_target: bool, settings: QualitySettings | None = None) -> list[Row]:
    rows: list[Row] = []
    settings = settings or QualitySettings()
    t = settings.thresholds_for()
    gate = QualityGate(settings)
    is_sim = uri.startswith("sim://")
    cam = drivers.open(_with_query(uri) if is_sim else uri)
    stats: dict[str, StreamStats] = {}
    skews, face_cov, core_cov = [], [], []
    with cam:
        profiles = cam.profiles()
        for fs in framesets(cam, n, timeout_s=max(20.0, n)):
            for f in fs.frames.values():
                stats.setdefault(f.stream.value, StreamStats(f.stream.value)).add(f)
            skews.append(fs.skew_ms)
            r = gate.evaluate(align_frameset(fs))
            if r.face is not None:
                face_cov.append(r.metrics["depth_face_completeness"])
                core_cov.append(r.metrics["depth_core_completeness"])
    fps = {k: s.fps for k, s in stats.items()}
    for c in check_stream_spec(profiles, t, fps):
        value = "" if c.value is None else (f"{c.value:.1f}" if "fps" in c.name else "")
        if c.name.endswith("_resolution"):
            p = next(p for p in profiles if p.kind.value == c.name.split("_")[0])
            value = f"{p.width}x{p.height}@{p.fps:g}"       # the mode the camera streams (chosen or forced)
        rows.append(Row(c.clause, c.name, "PASS" if c.ok else "FAIL", value, c.limit))
    md = cam.info.metadata_enabled
    rows.append(Row("7.5 g", "frame_metadata", "NOT RUN" if md is None else ("PASS" if md else "FAIL"),
                    "unknown to this backend" if md is None else ("enabled" if md else "not enabled"),
                    "per-frame exposure, projector state and hardware timestamps"))
    period = 1000.0 / max(min(p.fps for p in profiles), 1e-6)
    max_skew = max(skews) if skews else float("inf")
    rows.append(Row("7.5 g", "rgb_depth_sync", "PASS" if max_skew < period else "FAIL",
                    f"max {max_skew:.2f} ms over {len(skews)} sets", f"< 1 frame ({period:.1f} ms)"))

    if is_sim or flat_target:
        target_uri = _with_query(uri, subject="print", distance_mm=500) if is_sim else uri
        rms, dist = [], []
        tcam = drivers.open(target_uri)
        with tcam:
            for fs in framesets(tcam, 5):
                if fs.depth is None:
                    raise SpecViolation(f"{target_uri}: no depth stream to measure the flat target with")
                r_mm, d_m = _plane_rms_mm(fs.depth.depth_m())
                rms.append(r_mm)
                dist.append(d_m)
        v = float(np.median(rms))
        rows.append(Row("7.5 h", "depth_accuracy_50cm", "PASS" if v <= 3.0 else "FAIL",
                        f"plane-fit RMS {v:.2f} mm at {np.mean(dist) * 100:.1f} cm", "<= 3 mm at 50 cm"))
    else:
        rows.append(Row("7.5 h", "depth_accuracy_50cm", "NOT RUN", "",
                        "place a flat board 50 cm away and rerun with --flat-target"))

    if face_cov:
        fc, cc = float(np.median(face_cov)), float(np.median(core_cov))
        rows.append(Row("7.5 h", "depth_completeness_face", "PASS" if fc > t.depth_face_completeness_min else "FAIL",
                        f"{fc:.1%}", f"> {t.depth_face_completeness_min:.0%}"))
        rows.append(Row("7.5 h", "depth_completeness_eyes_nose_mouth",
                        "PASS" if cc > t.depth_core_completeness_min else "FAIL", f"{cc:.1%}",
                        f"> {t.depth_core_completeness_min:.0%}"))
    else:
        rows.append(Row("7.5 h", "depth_completeness_face", "NOT RUN", "no face in view",
                        "a face in front of the camera"))

    rows += _lux_rows(uri, settings, cam.info.serial, is_sim)
    return rows


def run(args) -> int:
    if args.frames < 5:
        raise drivers.InvalidUri("--frames must be at least 5")
    settings = QualitySettings()
    dot_reference = args.dot_reference
    if args.config:
        from agent.config import load
        config = load(Path(args.config))
        settings = config.quality
        if dot_reference is None and config.camera.dot_reference:
            dot_reference = config.path(config.camera.dot_reference)
    if args.lux_k is not None:
        if not (args.lux_k > 0 and np.isfinite(args.lux_k)):
            raise UsageError("--lux-k must be a positive number")
        settings = dataclasses.replace(settings, lux_calibration={**settings.lux_calibration, "default": args.lux_k})
    try:
        rows = checklist(args.uri, args.frames, args.flat_target, settings)
        # Not a §7.5 clause (the diagnostics page shows those only): the projector pattern reference.
        row = dot_reference_row(args.uri, dot_reference)
        row.next_step = next_step(row)
        rows.append(row)
    except CaptureAgentError as exc:
        if not args.json:                     # the item and its next step, then error[CODE] as always
            print(f"capture-agent doctor {args.uri}")
            print_checklist([open_failure(exc)])
        raise
    failed = [r for r in rows if r.result == "FAIL"]
    if args.json:
        print(json.dumps({"uri": args.uri, "ok": not failed, "checks": [r.to_dict() for r in rows]}, indent=2))
    else:
        print(f"capture-agent doctor {args.uri}")
        print_checklist(rows)
        not_run = sum(r.result == "NOT RUN" for r in rows)
        print("RESULT: " + ("PASS" if not failed else f"FAIL ({len(failed)} check(s))") +
              (f", {not_run} not run" if not_run else ""))
    return 1 if failed else 0


def print_checklist(rows: list[Row]) -> None:
    """One line per check (result, clause, check, value, requirement), the next step under each that
    failed or did not run."""
    for r in rows:
        mark = {"PASS": "[x]", "FAIL": "[!]"}.get(r.result, "[ ]")
        print(f"{mark} {r.result:<7} §{r.clause:<6} {r.check:<36} {r.value:<44} {r.requirement}")
        if r.next_step:
            print(f"{'':<20}next: {r.next_step}")
