"""``capture-agent`` command line.

Each sub-command lives in its own module and exposes ``register(subparsers)``; the module sets
``func`` on its parser. The runtime's commands are the modules of ``agent.commands``; tooling that
is not part of the runtime (the demo, the reference server, provisioning, the PAD bench: package
``hil``) adds its commands through the ``capture_agent.commands`` entry-point group, so the agent
never imports it. Errors reach the user as ``error[CODE]: message`` on stderr with exit status 2,
never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import logging
import pkgutil
import sys

from agent import __version__
from drivers.errors import CaptureAgentError


def _command_modules() -> list[str]:
    """Every module in ``agent.commands`` (adding a command is adding a file), then the modules
    other installed packages register in the ``capture_agent.commands`` entry-point group."""
    own = sorted(_command_modules_own())
    plugins = sorted(ep.value for ep in importlib.metadata.entry_points(group="capture_agent.commands"))
    return own + [m for m in plugins if m not in own]


def _module_of(argv: list[str]) -> str | None:
    """The one module that registers ``argv``'s command, told from its name (``sim-preview`` is
    ``agent.commands.sim_preview``; a plugin's is its entry point's name), or None. Importing every
    command module to parse one command line would put the simulator, SciPy and the development
    tools into the daemon's ``run`` (about 50 MiB of its memory, issue 20)."""
    words = iter(argv)
    command = None
    for a in words:
        if a == "--log-level":
            next(words, None)
        elif not a.startswith("-"):
            command = a
            break
    if command is None:
        return None
    own = f"agent.commands.{command.replace('-', '_')}"
    if own in _command_modules_own():
        return own
    return next((ep.value for ep in importlib.metadata.entry_points(group="capture_agent.commands")
                 if ep.name == command), None)


def _command_modules_own() -> list[str]:
    from agent import commands
    return [f"{commands.__name__}.{m.name}" for m in pkgutil.iter_modules(commands.__path__) if not m.ispkg]


def build_parser(modules: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line of every command, or of ``modules``' commands only."""
    parser = argparse.ArgumentParser(prog="capture-agent", description="capture-agent: face capture for bank terminals")
    parser.add_argument("--version", action="version", version=f"capture-agent {__version__}")
    parser.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"],
                        help="log level (default: the config's [logging] level for `run`, else warning)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules if modules is not None else _command_modules():
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    module = _module_of(argv)
    # One command's module when the command line names one; every command's for help and errors.
    parser = build_parser([module] if module is not None else None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=(args.log_level or "warning").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CaptureAgentError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": exc.to_dict()}))
        print(f"error[{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
