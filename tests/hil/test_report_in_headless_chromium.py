"""The HTML report as a person sees it: rendered by headless Chromium (Debian ``chromium``), a
screenshot that is not blank, and in the rendered page every table and every plot present, the plots
decoded by the browser (a probe script added to a copy of the report reads their natural sizes;
the report itself carries no script)."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from hil import report
from hil.records import SessionRecord
from tests.helpers.chromium import CHROMIUM, chromium

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh)")

TABLES = ("run", "scenarios", "apcer", "bpcer", "bpcer-at-apcer", "conditions", "injection", "latency",
          "quality-refusals", "lux-sweep", "recovery", "errors", "sessions")
FIGURES = ("det", "latency-histogram", "quality-refusals-chart", "lux-sweep-chart", "recovery-chart")


def records() -> list[SessionRecord]:
    rng = np.random.default_rng(5)
    out: list[SessionRecord] = []

    def add(species, kind, outcome, score=None, lux=300.0, **kw):
        out.append(SessionRecord(set="synthetic", scenario=f"{species}-{lux:g}", repetition=len(out),
                                 species=species, kind=kind, purpose=kw.pop("purpose", "verify"), channel="kiosk",
                                 expected=["accepted"] if kind == "bona_fide" else ["not_live"],
                                 conditions={"lux_set": lux, "lux_measured": lux * 1.02, "cct": 5000.0,
                                             "distance_mm": 500.0, "yaw": 0.0}, outcome=outcome, score=score,
                                 budget_ms=2000.0, **kw))
    for lux in (15.0, 60.0, 300.0, 1000.0, 7500.0):
        for _ in range(6):
            s = float(rng.uniform(0.5, 1.0))
            add("live", "bona_fide", "accepted" if s > 0.55 else "not_live", s, lux,
                timings_ms={"total": float(rng.normal(1600, 200)), "quality": 400.0},
                prompts=[(10.0, "MOVE_CLOSER")])
    add("live", "bona_fide", "not_acquired", lux=15.0, last_prompt="TOO_DARK", code="SES_STAGE_TIMEOUT")
    for sp in ("print", "mask", "screen_video"):
        for _ in range(8):
            add(sp, "attack", "not_live", float(rng.uniform(0.0, 0.45)))
    add("mask", "attack", "accepted", 0.7, timings_ms={"total": 1500.0})
    add("screen_video", "attack", "not_acquired", last_prompt="MOVE_CLOSER", code="SES_STAGE_TIMEOUT")
    add("injection:virtual_camera", "injection", "device_refused", code="DRV_DEVICE_REFUSED")
    add("injection:usb_gadget", "injection", "not_live", 0.0)
    add("live", "unplug", "accepted", 0.9, unplug={"off_s": 2.0, "attempts": 1, "recovered_s": 4.2,
                                                   "while_off": {"outcome": "error", "code": "DRV_DEVICE_NOT_FOUND"}})
    add("live", "bona_fide", "error", code="UPL_UNAVAILABLE")
    return out


def test_the_report_renders_with_its_tables_and_plots(tmp_path):
    page = report.render(records(), title="HIL report (synthetic sessions)", run_info={"rig": "sim"})
    path = tmp_path / "report.html"
    path.write_text(page)
    assert "<script" not in page and "http://" not in page and "https://" not in page   # self-contained

    shot = tmp_path / "shot.png"
    out = chromium("--window-size=1200,2400", f"--screenshot={shot}", path.as_uri(), tmp=tmp_path)
    assert shot.exists(), out.stderr[-2000:]
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[:2] == (2400, 1200)
    ink = (img.min(axis=2) < 200).mean()                      # share of pixels that are not background
    assert 0.02 < ink < 0.6, ink
    assert len(np.unique(img.reshape(-1, 3)[::37], axis=0)) > 50   # plots bring colour, not only text

    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", """<script>
window.addEventListener('load', () => {
  const out = document.createElement('pre'); out.id = 'probe';
  const t = [...document.querySelectorAll('table')].map(x => x.id + ':' + x.querySelectorAll('tbody tr').length);
  const i = [...document.querySelectorAll('figure')].map(f => {
    const im = f.querySelector('img'); return f.id + ':' + im.naturalWidth + 'x' + im.naturalHeight; });
  out.textContent = 'TABLES ' + t.join(' ') + '\\nIMAGES ' + i.join(' ');
  document.body.appendChild(out);
});
</script></body>"""))
    out = chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri(), tmp=tmp_path)
    m = re.search(r"TABLES (.*)\nIMAGES (.*)</pre>", out.stdout)
    assert m, out.stdout[-2000:] + out.stderr[-2000:]
    tables = dict(x.split(":") for x in m.group(1).split())
    images = dict(x.split(":") for x in m.group(2).split())
    for t in TABLES:
        assert int(tables[t]) >= 1, t
    for f in FIGURES:
        w, h = map(int, images[f].split("x"))
        assert w > 300 and h > 150, (f, w, h)                 # decoded by the browser, not a broken image
    # the ISO/IEC 30107-3 tables carry what they claim
    assert re.search(r"Worst species: <b>mask</b>, APCER 11.11 %", page)
    assert "BPCER (refused as attack)" in page and "BPNRR (not acquired: quality gate)" in page
