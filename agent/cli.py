"""``capture-agent`` command line.

Each sub-command lives in its own module under ``agent.commands`` and exposes
``register(subparsers)``; the module sets ``func`` on its parser. Errors reach the user as
``error[CODE]: message`` on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import pkgutil
import sys

from drivers.errors import CaptureAgentError

from . import __version__



def _command_modules() -> list[str]:
    """Every module in ``agent.commands``: adding a command is adding a file."""
    from . import commands
    return sorted(f"{commands.__name__}.{m.name}" for m in pkgutil.iter_modules(commands.__path__) if not m.ispkg)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="capture-agent", description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("--version", action="version", version=f"capture-agent {__version__}")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _command_modules():
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
