"""One self-contained HTML report of a run: tables and plots (matplotlib, PNG as data URIs), no
external files, scripts or fonts, so it can be mailed, archived and opened offline.

Sections: scenarios expected vs observed; ISO/IEC 30107-3 tables (APCER per species with 95 %
bounds, BPCER, BPNRR/APNRR, BPCER at fixed APCER) and DET curves; injection attacks; latency
against the §7.2 budgets; quality refusals by reason; the lux sweep; recovery from unplug cycles;
errors; every session.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
from collections.abc import Iterable
from typing import Any

import matplotlib

matplotlib.use("Agg")                      # no display: files only
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen before pyplot loads)
import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402

from agent import __version__  # noqa: E402
from hil import metrics  # noqa: E402
from hil.records import SessionRecord  # noqa: E402

SCOPE = ("Simulated rig: the figures come from the simulator, which cannot show real skin optics, "
         "real projector latency or real sensor noise, and renders frames far slower than a camera "
         "delivers them (latencies include that). Every rate here must be measured again on the "
         "physical rig before it is claimed for a camera.")
CSS = """
body{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #bbb;padding:.25em .6em;text-align:left}th{background:#eee}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#176117;font-weight:bold}.bad{color:#a01010;font-weight:bold}
.note{color:#555;font-size:.9em}figure{margin:1em 0}img{max-width:100%}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _pct(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:.2f} %"


def _rate_cells(r: dict[str, Any]) -> str:
    if not r["n"]:
        return '<td class="num">–</td><td class="num">0</td><td class="num">–</td><td class="num">–</td>'
    return (f'<td class="num">{_pct(r["rate"])}</td><td class="num">{r["errors"]}/{r["n"]}</td>'
            f'<td class="num">{_pct(r["lower"])} – {_pct(r["upper"])}</td>'
            f'<td class="num">{_pct(r["upper_one_sided"])}</td>')


RATE_HEAD = "<th>rate</th><th>errors/n</th><th>95 % CI (Clopper–Pearson)</th><th>95 % upper bound</th>"


def _table(tid: str, head: str, rows: Iterable[str], caption: str = "") -> str:
    body = "".join(rows) or '<tr><td colspan="12" class="note">none in this run</td></tr>'
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    return f'<table id="{tid}">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _figure(fid: str, fig, alt: str) -> str:
    return (f'<figure id="{fid}"><img alt="{_e(alt)}" src="data:image/png;base64,{_png(fig)}">'
            f"<figcaption class=note>{_e(alt)}</figcaption></figure>")


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


# -- figures ---------------------------------------------------------------------------------
def det_figure(records: list[SessionRecord]):
    live, attacks = metrics.scores(records)
    fig, ax = plt.subplots(figsize=(6, 5))
    if not live.size or not attacks:
        _empty(ax, "no liveness scores for both bona fide and attack presentations")
        return fig
    lo = 0.5 / max(live.size, *(a.size for a in attacks.values()))
    ticks = [t for t in (0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95) if t >= lo]
    for sp, a in attacks.items():
        apcer, bpcer = metrics.det_points(live, a)
        ax.plot(norm.ppf(np.clip(apcer, lo, 1 - lo)), norm.ppf(np.clip(bpcer, lo, 1 - lo)), marker=".",
                label=f"{sp} (n={a.size})")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_ticks(norm.ppf(ticks))
        axis.set_ticklabels([f"{100 * t:g}%" for t in ticks])
    ax.set_xlabel("APCER")
    ax.set_ylabel(f"BPCER (bona fide n={live.size})")
    ax.set_title("DET per attack species (normal deviate scale)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def latency_figure(records: list[SessionRecord]):
    lat = metrics.latency(records)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, purpose in zip(axes, ("enroll", "verify"), strict=True):
        totals = [r.timings_ms["total"] for r in records
                  if r.purpose == purpose and r.outcome == "accepted" and "total" in r.timings_ms]
        if not totals:
            _empty(ax, f"no accepted {purpose} sessions")
            ax.set_title(purpose)
            continue
        budget = lat[purpose]["budget_ms"]
        ax.hist(totals, bins=min(30, max(5, len(totals))), color="#4477aa")
        ax.axvline(budget, color="#a01010", ls="--", label=f"§7.2 budget {budget:.0f} ms")
        ax.axvline(lat[purpose]["p95_ms"], color="#222", ls=":", label=f"p95 {lat[purpose]['p95_ms']:.0f} ms")
        ax.set_xlabel("capture to receipt, ms (agent's timing)")
        ax.set_ylabel("sessions")
        ax.set_title(f"{purpose} (n={len(totals)})")
        ax.legend(fontsize=8)
    return fig


def refusals_figure(records: list[SessionRecord]):
    ref = metrics.quality_refusals(records)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    reasons = sorted({k for v in ref.values() for k in v})
    if not reasons:
        _empty(ax, "no session was refused by the quality gate")
        return fig
    left = np.zeros(len(reasons))
    for kind, counts in ref.items():
        vals = np.array([counts.get(r, 0) for r in reasons])
        ax.barh(reasons, vals, left=left, label=kind)
        left += vals
    ax.set_xlabel("sessions not acquired (last prompt shown)")
    ax.legend(fontsize=8)
    return fig


def lux_figure(records: list[SessionRecord]):
    rows = metrics.lux_sweep(records)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    if not rows:
        _empty(ax, "no bona fide sessions")
        return fig
    lux = [r["lux"] for r in rows]
    ax.plot(lux, [r["accepted"]["rate"] for r in rows], "o-", label="accepted")
    ax.plot(lux, [r["not_acquired"] / r["n"] for r in rows], "s--", label="not acquired (quality)")
    ax.plot(lux, [r["not_live"] / r["n"] for r in rows], "^:", label="refused as attack")
    sc = [(r["lux"], r["score_mean"]) for r in rows if r["score_mean"] is not None]
    if sc:
        ax.plot(*zip(*sc, strict=True), "d-.", color="#888", label="mean liveness score")
    ax.axvspan(15, 7500, color="#4a4", alpha=0.07, label="§7.5 d: 15–7500 lux")
    ax.set_xscale("log")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("illuminance on the face, lux")
    ax.set_ylabel("share of bona fide sessions")
    ax.legend(fontsize=8)
    return fig


def recovery_figure(records: list[SessionRecord]):
    rec = metrics.recovery(records)
    fig, ax = plt.subplots(figsize=(6, 3))
    if not rec["times_s"]:
        _empty(ax, "no unplug cycle recovered" if rec["cycles"] else "no unplug cycles in this run")
        return fig
    ax.bar(range(1, len(rec["times_s"]) + 1), rec["times_s"], color="#aa7744")
    ax.set_xlabel("unplug cycle")
    ax.set_ylabel("power-on to accepted capture, s")
    return fig


# -- the page --------------------------------------------------------------------------------
def render(records: list[SessionRecord], *, title: str, run_info: dict[str, Any]) -> str:
    s = metrics.summarize(records)
    p = s["presentations"]
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{_e(title)}</h1>"]
    info_rows = [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in run_info.items()]
    info_rows += [f"<tr><th>sessions</th><td>{s['sessions']} ({s['distinct_scenes']} distinct scenes)</td></tr>",
                  f"<tr><th>capture-agent</th><td>{_e(__version__)}</td></tr>"]
    parts.append(_table("run", "<th>run</th><th></th>", info_rows))
    if run_info.get("rig") == "sim":
        parts.append(f'<p class=note id="scope">{_e(SCOPE)}</p>')

    ok_all = all(row["as_expected"] == row["n"] for row in s["scenarios"])
    parts.append(f"<h2>Scenarios: expected and observed</h2><p>"
                 f"<span class={'ok' if ok_all else 'bad'}>{'every' if ok_all else 'not every'}</span> "
                 f"session came out as its scenario documents.</p>")
    parts.append(_table("scenarios", "<th>set</th><th>scenario</th><th>species</th><th>expected</th><th>n</th>"
                        "<th>as expected</th><th>observed</th>",
                        (f"<tr><td>{_e(r['set'])}</td><td>{_e(r['scenario'])}</td><td>{_e(r['species'])}</td>"
                         f"<td>{_e(', '.join(r['expected']))}</td><td class=num>{r['n']}</td>"
                         f"<td class='num {'ok' if r['as_expected'] == r['n'] else 'bad'}'>{r['as_expected']}</td>"
                         f"<td>{_e(', '.join(f'{k} {v}' for k, v in r['outcomes'].items()))}</td></tr>"
                         for r in s["scenarios"])))

    parts.append("<h2>Presentation attack detection (ISO/IEC 30107-3)</h2>")
    worst = p["max_apcer"]
    if worst:
        parts.append(f"<p>Worst species: <b>{_e(worst['species'])}</b>, APCER {_pct(worst['rate'])} "
                     f"(95 % upper bound {_pct(worst['upper_one_sided'])}, n={worst['n']}).</p>")
    parts.append(_table("apcer", "<th>species</th><th>presentations</th>" + RATE_HEAD.replace("rate", "APCER", 1)
                        + "<th>APNRR</th><th>not acquired/n</th><th>errors</th>",
                        (f"<tr><td>{_e(sp)}</td><td class=num>{v['presentations']}</td>{_rate_cells(v['apcer'])}"
                         f"<td class=num>{_pct(v['apnrr']['rate'])}</td>"
                         f"<td class=num>{v['apnrr']['errors']}/{v['apnrr']['n']}</td>"
                         f"<td class=num>{v['errors']}</td></tr>"
                         for sp, v in sorted(p["species"].items(), key=lambda kv: -_sortable(kv[1]["apcer"]["rate"]))),
                        "APCER per species among presentations decided on; APNRR among all presentations"))
    parts.append(_table("bpcer", "<th>bona fide</th>" + RATE_HEAD,
                        [f"<tr><td>BPCER (refused as attack)</td>{_rate_cells(p['bpcer'])}</tr>",
                         f"<tr><td>BPNRR (not acquired: quality gate)</td>{_rate_cells(p['bpnrr'])}</tr>"],
                        f"{p['bona_fide']} bona fide sessions, {p['bona_fide_errors']} ended in an error"))
    parts.append(_table("bpcer-at-apcer", "<th>APCER target</th><th>threshold (score ≥)</th>" + RATE_HEAD
                        + "<th>attack n supports it</th>",
                        (f"<tr><td>{_pct(r['apcer_target'])}</td>"
                         f"<td class=num>{_num(r['threshold'], '.3f')}</td>"
                         f"{_rate_cells(r['bpcer'])}<td>{'yes' if r['supported'] else 'no'}</td></tr>"
                         for r in s["bpcer_at_apcer"]),
                        "BPCER at fixed APCER, threshold chosen on this run's own scores (optimistic)"))
    parts.append(_figure("det", det_figure(records), "DET curves: one per attack species against the bona fide "
                                                     "sessions, from the terminal's liveness scores"))

    parts.append(_table("conditions", "<th>condition</th><th>band</th><th>bona fide</th><th>accepted</th>"
                        "<th>not acquired</th><th>attacks</th><th>attacks accepted</th>",
                        (f"<tr><td>{_e(r['dimension'])}</td><td>{_e(r['band'])}</td>"
                         f"<td class=num>{r['bona_fide']}</td><td class=num>{r['bona_fide_accepted']}</td>"
                         f"<td class=num>{r['bona_fide_not_acquired']}</td><td class=num>{r['attacks']}</td>"
                         f"<td class='num {'bad' if r['attacks_accepted'] else ''}'>{r['attacks_accepted']}</td></tr>"
                         for r in s["conditions"]),
                        "Outcomes by condition: an average can hide a condition where everything fails"))

    parts.append("<h2>Injection attacks (camera link)</h2>")
    parts.append(_table("injection", "<th>attack</th><th>n</th>" + RATE_HEAD.replace("rate", "accepted", 1)
                        + "<th>how refused</th>",
                        (f"<tr><td>{_e(k)}</td><td class=num>{v['n']}</td>{_rate_cells(v['accepted'])}"
                         f"<td>{_e(', '.join(f'{a} {b}' for a, b in v['how_refused'].items()))}</td></tr>"
                         for k, v in s["injection"].items())))

    parts.append("<h2>Latency against the §7.2 budgets</h2>")
    parts.append(_table("latency", "<th>purpose</th><th>accepted n</th><th>budget</th><th>p50</th><th>p95</th>"
                        "<th>max</th><th>over budget</th><th>stage medians, ms</th>",
                        (f"<tr><td>{_e(k)}</td><td class=num>{v['n']}</td><td class=num>{v['budget_ms']:.0f} ms</td>"
                         f"<td class=num>{v['p50_ms']:.0f} ms</td><td class=num>{v['p95_ms']:.0f} ms</td>"
                         f"<td class=num>{v['max_ms']:.0f} ms</td>"
                         f"<td class=num>{v['over_budget']['errors']}/{v['n']}</td>"
                         f"<td>{_e(', '.join(f'{a} {b:.0f}' for a, b in v['stages_p50_ms'].items()))}</td></tr>"
                         for k, v in s["latency"].items())))
    parts.append(_figure("latency-histogram", latency_figure(records),
                         "Capture-to-receipt time of accepted sessions with the §7.2 budget"))

    parts.append("<h2>Quality refusals by reason</h2>")
    parts.append(_table("quality-refusals", "<th>kind</th><th>last prompt</th><th>sessions</th>",
                        (f"<tr><td>{_e(kind)}</td><td>{_e(reason)}</td><td class=num>{n}</td></tr>"
                         for kind, counts in s["quality_refusals"].items() for reason, n in counts.items())))
    parts.append(_figure("quality-refusals-chart", refusals_figure(records),
                         "Sessions the quality gate never let through, by the last prompt shown"))

    parts.append("<h2>Lux sweep (bona fide)</h2>")
    parts.append(_table("lux-sweep", "<th>lux set</th><th>lux measured</th><th>n</th><th>accepted</th>"
                        "<th>not acquired</th><th>refused as attack</th><th>errors</th><th>mean score</th>",
                        (f"<tr><td class=num>{r['lux']:g}</td><td class=num>{_num(r['lux_measured'], '.0f')}</td>"
                         f"<td class=num>{r['n']}</td><td class=num>{_pct(r['accepted']['rate'])}</td>"
                         f"<td class=num>{r['not_acquired']}</td><td class=num>{r['not_live']}</td>"
                         f"<td class=num>{r['errors']}</td><td class=num>"
                         f"{_num(r['score_mean'], '.3f')}</td></tr>"
                         for r in s["lux_sweep"])))
    parts.append(_figure("lux-sweep-chart", lux_figure(records), "Bona fide outcomes against illuminance"))

    rec = s["recovery"]
    parts.append("<h2>Recovery from unplug cycles</h2>")
    parts.append(_table("recovery", "<th>cycles</th><th>recovered</th><th>median</th><th>max</th>"
                        "<th>capture while unplugged</th>",
                        [f"<tr><td class=num>{rec['cycles']}</td><td class=num>{rec['recovered']}</td>"
                         f"<td class=num>{_secs(rec['p50_s'])}</td><td class=num>{_secs(rec['max_s'])}</td>"
                         f"<td>{_e(', '.join(f'{k} {v}' for k, v in rec['while_off'].items()))}</td></tr>"]
                        if rec["cycles"] else []))
    parts.append(_figure("recovery-chart", recovery_figure(records), "Power-on to the next accepted capture"))

    parts.append("<h2>Errors</h2>")
    parts.append(_table("errors", "<th>code</th><th>sessions</th>",
                        (f"<tr><td>{_e(k)}</td><td class=num>{v}</td></tr>" for k, v in s["errors"].items())))

    parts.append("<h2>Sessions</h2><details><summary>every session</summary>")
    parts.append(_table("sessions", "<th>#</th><th>scenario</th><th>rep</th><th>species</th><th>outcome</th>"
                        "<th>code</th><th>score</th><th>wall ms</th><th>prompts</th><th>conditions</th>",
                        (f"<tr><td class=num>{i}</td><td>{_e(r.scenario)}</td><td class=num>{r.repetition}</td>"
                         f"<td>{_e(r.species)}</td><td class={'ok' if r.as_expected else 'bad'}>{_e(r.outcome)}</td>"
                         f"<td>{_e(r.code)}</td><td class=num>{'' if r.score is None else f'{r.score:.3f}'}</td>"
                         f"<td class=num>{r.wall_ms:.0f}</td>"
                         f"<td>{_e(' → '.join(c for _, c in r.prompts))}</td>"
                         f"<td>{_e(_conditions(r))}</td></tr>" for i, r in enumerate(records, 1))))
    parts.append(f"</details><p class=note>Generated {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} "
                 f"by python -m hil.</p></body></html>")
    return "\n".join(parts)


def _sortable(x: float) -> float:
    return -1.0 if math.isnan(x) else x


def _num(x: float | None, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def _secs(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f} s"


def _conditions(r: SessionRecord) -> str:
    c = r.conditions
    lux = f"{c.get('lux_set'):g} lux" + (f" (meter {c['lux_measured']:.0f})" if c.get("lux_measured") else "")
    return f"{lux}, {c.get('cct', 0):.0f} K, {c.get('distance_mm', 0):.0f} mm, yaw {c.get('yaw', 0):g}°"
