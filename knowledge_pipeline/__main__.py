"""python3 -m knowledge_pipeline: look at and set up the knowledge pipeline.

The pipeline captures feeds, web articles and PDFs into a Sources store
(SQLite or Notion) and enriches each item with summaries and labels; the
enrich scripts (enrich_rss.py, enrich.py, *_enhanced.py, pipeline_enhanced.sh)
run it. These commands read the Sources (list, show, search, serve, digest,
export), copy them between SQLite and Notion (sync), show the runs recorded
in the log (report), create or check the Notion Sources database (notion),
list or cancel the OpenAI Batch API batches of this pipeline (batches), and
manage the feed list and each feed's health (feeds).

"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

if __name__ == "__main__":  # before the imports below, which need the dependencies
    from .project_venv import use_project_venv

    use_project_venv(module="knowledge_pipeline")

from .config import load_settings
from .errors import ConfigError

COMMAND_MODULES = ("listing", "show", "search", "serve", "digest", "export", "sync", "report", "notion", "batches", "feeds")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m knowledge_pipeline",
        description=__doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
        epilog="Settings come from the environment and .env (see README). "
        "Run `python3 -m knowledge_pipeline COMMAND --help` for a command's options.",
    )
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
        print(f"{args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    return int(args.handler(args, settings) or 0)


if __name__ == "__main__":
    from .cli import exit_code_of

    sys.exit(exit_code_of(main))
