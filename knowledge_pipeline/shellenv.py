"""``python3 -m knowledge_pipeline.shellenv``: the settings pipeline_enhanced.sh needs, as shell assignments.

The wrapper used to parse ``.env`` in bash and disagreed with python-dotenv
(quotes followed by a comment, escapes). Now Python owns ``.env`` and
``.env.migration`` and their precedence (config.merged_environment), validates
every setting, and prints only what the wrapper decides with:

    use_enhanced=true enable_parallel=false log_dir=logs workers=5 rate_limit=0.1

A configuration error is one line on stderr and exit code 2, as for every script.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Sequence

if __name__ == "__main__":  # before the imports below, which need the dependencies
    from .project_venv import use_project_venv

    use_project_venv(module="knowledge_pipeline.shellenv")

from .config import Settings, load_settings
from .errors import ConfigError

EXIT_CONFIG = 2


def assignments(settings: Settings) -> str:
    values = {
        "use_enhanced": str(settings.use_enhanced).lower(),
        "enable_parallel": str(settings.enable_parallel).lower(),
        "log_dir": str(settings.log_dir),
        "workers": str(settings.parallel_max_workers),
        "rate_limit": f"{settings.parallel_rate_limit:g}",
    }
    return "\n".join(f"{name}={shlex.quote(value)}" for name, value in values.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m knowledge_pipeline.shellenv",
        description="Print the settings pipeline_enhanced.sh needs as shell assignments (for eval), read from "
        "the environment, .env.migration and .env in that order of precedence.",
    )
    parser.add_argument("--for", dest="caller", default="pipeline_enhanced.sh", help="name used in error messages")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"{args.caller}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(assignments(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
