"""The command line imports the module of the command it runs, not every command's: the daemon's
``run`` must not carry the simulator (SciPy) and the development tools (issue 20)."""

from __future__ import annotations

import subprocess
import sys

from agent.cli import _module_of, build_parser

PROBE = """
import sys
from agent.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print(sorted(m for m in sys.modules if m.split(".")[0] in ("scipy", "hil") or m.startswith("drivers.sim")))
"""


def loaded_by(argv: list[str]) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_run_imports_neither_the_simulator_nor_the_development_tools():
    assert loaded_by(["--log-level", "info", "run", "--help"]) == "[]"


def test_a_command_is_found_in_its_own_module_and_plugins_by_their_entry_point():
    assert _module_of(["run", "--config", "x.toml"]) == "agent.commands.run"
    assert _module_of(["--log-level", "debug", "sim-preview", "out.png"]) == "agent.commands.sim_preview"
    assert _module_of(["pad-eval", "--split", "train"]) == "hil.commands.pad_eval"
    assert _module_of(["--version"]) is None and _module_of(["no-such-command"]) is None


def test_help_still_lists_every_command():
    names = set(build_parser()._subparsers._group_actions[0].choices)
    assert {"run", "analyze", "sim-preview", "keys", "demo", "server", "pad-eval", "dev-provision"} <= names
    assert "hil" in loaded_by(["--help"])             # the full parser: the plugins' modules too
