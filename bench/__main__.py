from __future__ import annotations

import importlib
import json
import pkgutil
import platform
import sys
import time
import traceback
from pathlib import Path

import bench
from bench.targets import target_cell


def main(argv: list[str]) -> int:
    if argv[:1] == ["fleet"] and any(a.startswith("-") for a in argv[1:]):
        from bench.fleet import main as fleet_main  # fleet sizes and durations as options
        return fleet_main(argv[1:])
    only = set(argv)
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    rows: list[dict] = []
    failed: list[str] = []
    for name in names:
        if only and name not in only and name.removeprefix("bench_") not in only:
            continue
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(f"bench.{name}")
            for row in mod.run():
                rows.append({"suite": name.removeprefix("bench_"), **row})
        except Exception:
            failed.append(name)
            traceback.print_exc()
        print(f"[{name}: {time.perf_counter() - t0:.1f} s]", file=sys.stderr)
    return write_results(rows, failed)


def write_results(rows: list[dict], failed: list[str]) -> int:
    """``bench-results.json`` and the table on stdout; 1 if a suite failed."""
    out = {"machine": {"python": platform.python_version(), "platform": platform.platform()},
           "results": rows, "failed_suites": failed}
    Path("bench-results.json").write_text(json.dumps(out, indent=2))
    print(f"{'SUITE':<10} {'NAME':<58} {'VALUE':>12} {'UNIT':<8} {'REFERENCE':>12} {'RATIO':>7}  TARGET (issue 20)")
    for r in rows:
        ref = f"{r['reference']:.4g}" if isinstance(r.get("reference"), (int, float)) else ""
        ratio = f"{r['ratio']:.3f}" if isinstance(r.get("ratio"), (int, float)) else ""
        print(f"{r['suite']:<10} {r['name']:<58} {r['value']:>12.4g} {r['unit']:<8} {ref:>12} {ratio:>7}  "
              f"{target_cell(r)}")
    print("wrote bench-results.json")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
