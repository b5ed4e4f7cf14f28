"""The commands that are not in the operations guide (python3 -m knowledge_pipeline).

list (the Sources as a table or JSON), report (runs from the logs),
notion setup / notion check (the Sources database schema),
feeds (the feed list and each feed's health).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .config import load_settings
from .errors import ConfigError

COMMAND_MODULES = ("listing", "report", "notion", "feeds")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m knowledge_pipeline", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__package__}.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.commands.{name}":
                raise
            continue
        module.add_parser(subparsers)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return int(args.handler(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
