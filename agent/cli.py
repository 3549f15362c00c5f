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
    from agent import commands
    own = sorted(f"{commands.__name__}.{m.name}" for m in pkgutil.iter_modules(commands.__path__) if not m.ispkg)
    plugins = sorted(ep.value for ep in importlib.metadata.entry_points(group="capture_agent.commands"))
    return own + [m for m in plugins if m not in own]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="capture-agent", description="capture-agent: face capture for bank terminals")
    parser.add_argument("--version", action="version", version=f"capture-agent {__version__}")
    parser.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"],
                        help="log level (default: the config's [logging] level for `run`, else warning)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _command_modules():
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
