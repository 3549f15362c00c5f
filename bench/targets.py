"""Issue 20's targets, stated on the ``make bench`` rows that measure its figures.

A row's ``reference`` and ``ratio`` are a reference run in the same process (``bench/__init__.py``); a
target is not one, and a budget or a limit of the spec is neither. A row that measures one of issue 20's
figures carries (:func:`issue20`):

* ``target_source``: "issue 20: " and the figure as the issue's table names it;
* ``target`` (in the row's unit) with ``vs_target`` (value / target), or ``target_ratio`` (for the row's
  same-process ``ratio``), or for growth ``target`` 0 "within noise" (no ratio to a target of 0 exists:
  the row's 95 % interval says it);
* ``target_met``: whether this run met it; None for a row that measures a part of the figure only (a
  lower bound of a part meets nothing by itself).

The README's bench section says which are met on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    what: str                           # the figure, as issue 20's table names it
    value: float | None = None          # at most this, in the row's unit
    ratio: float | None = None          # the row's same-process ratio at most this
    zero_growth: bool = False           # growth 0 within noise: the row's 95 % interval reaches 0


ISSUE20: dict[str, Target] = {
    "verify": Target("verify end to end at 30 fps, p95, with a D435-class camera profile", value=500.0),
    "overhead": Target("agent overhead, last frame to receipt, p95", value=30.0),
    "quality": Target("quality stage, median", value=70.0),
    "worker": Target("worker judging per frameset vs the same work in-process", ratio=1.2),
    "align": Target("align 640x480 vs rs.align, same run", ratio=0.5),
    "rss": Target("RSS, daemon + liveness worker together (a RealSense recording as the camera)", value=300.0),
    "growth": Target("RSS growth over 1,000 sessions, 0 within noise", zero_growth=True),
}


def issue20(row: dict[str, Any], key: str, *, part: bool = False) -> dict[str, Any]:
    """``row`` with issue 20's target ``key`` (``ISSUE20``) stated on it; ``part``: the row measures a part
    of the figure (its ``target_met`` is None)."""
    t = ISSUE20[key]
    out = {**row, "target_source": f"issue 20: {t.what}" + (" (this row: a part of it)" if part else "")}
    met: bool | None
    if t.value is not None:
        out.update(target=t.value, vs_target=row["value"] / t.value)
        met = row["value"] <= t.value
    elif t.ratio is not None:
        ratio = row.get("ratio")
        out["target_ratio"] = t.ratio
        met = isinstance(ratio, (int, float)) and ratio <= t.ratio
    else:
        low, _high = row["ci95"]
        out["target"] = 0.0
        met = low <= 0.0                # no growth the interval can tell from none
    out["target_met"] = None if part else bool(met)
    return out


def target_cell(row: dict[str, Any]) -> str:
    """The table's TARGET column: ``<=500`` or ``<=0.5x``, and whether this run met it."""
    if "target_ratio" in row:
        goal = f"<={row['target_ratio']:g}x"
    elif "target" in row:
        goal = f"<={row['target']:g}"
    else:
        return ""
    met = row.get("target_met")
    return goal + (" part" if met is None else " met" if met else " NOT")
