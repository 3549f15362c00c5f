"""The packages import downward only: hil -> agent -> firmware -> drivers (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"drivers": ("agent", "hil", "firmware"), "firmware": ("agent", "hil"), "agent": ("hil",)}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_no_package_imports_upward():
    offences = []
    for package, above in FORBIDDEN.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            bad = imported_packages(path) & set(above)
            if bad:
                offences.append(f"{path.relative_to(ROOT)} imports {', '.join(sorted(bad))}")
    assert offences == []


def test_the_check_sees_an_upward_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from hil.ingest.server import serve\nimport agent.cli\n")
    assert imported_packages(probe) == {"hil", "agent"}
