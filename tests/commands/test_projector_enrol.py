"""``capture-agent projector-enrol``: a sim camera's projector pattern recorded from its own frames
(a board near it, then the wall), written as a reference file that loads, fits the camera's IR mode
and predicts the dots of a third scene."""

from __future__ import annotations

import cv2
import numpy as np

import drivers
from agent.cli import main
from agent.commands.projector_enrol import collect_pairs
from agent.liveness.dotref import DotReference
from drivers.frame import StreamKind

BASE = "sim://?realtime=0&camera=d435&lux=100&background=plain&identity=1&seed=1"


def test_enrolment_writes_a_reference_that_predicts_another_scene(tmp_path, capsys):
    out = tmp_path / "dots.npz"
    assert main(["projector-enrol", BASE + "&subject=print&distance_mm=450", BASE + "&subject=none",
                 "--out", str(out), "--pairs", "6"]) == 0
    printed = capsys.readouterr().out
    ref = DotReference.load(out)
    assert ref.digest in printed
    ir = next(p.intrinsics for p in drivers.open(BASE).profiles() if p.kind == StreamKind.IR)
    assert ref.fits(ir.width, ir.height, ir.fx)
    # A third scene (the print at 0.6 m): its pairs' dots are where the reference puts them.
    cam = drivers.open(BASE + "&subject=print&distance_mm=600")
    with cam:
        pairs, _ = collect_pairs(cam, 2)
    p = pairs[0]
    box = (slice(200, 280), slice(280, 360))
    z = np.nan_to_num(p.z_m[box], nan=float(np.nanmedian(p.z_m[box])))
    predicted, covered = ref.predict(280, 200, z)
    assert covered.mean() > 0.9

    def band(x: np.ndarray) -> np.ndarray:
        return np.asarray(x - cv2.GaussianBlur(x, (0, 0), 2.0))

    seen = band(p.diff[box])[covered]
    right = np.corrcoef(seen, band(predicted)[covered])[0, 1]
    wrong = np.corrcoef(seen, band(np.roll(predicted, 3, axis=1))[covered])[0, 1]
    assert right > 0.5 > 0.2 > wrong


def test_bad_pair_counts_are_refused(tmp_path, capsys):
    assert main(["projector-enrol", BASE, "--out", str(tmp_path / "x.npz"), "--pairs", "1"]) == 2
    assert "LIV_DOT_ENROLMENT_FAILED" in capsys.readouterr().err
