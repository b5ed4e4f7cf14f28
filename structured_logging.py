#!/usr/bin/env python3
"""Structured JSONL logging for every script: ``setup_logging(settings)`` once per process.

Re-exports the package's logging setup so scripts and tools outside the
package can use it. See knowledge_pipeline/logging_setup.py for the format.
Run it to print the path of the log file the current settings write to.
"""

import argparse
import logging
import sys

if __name__ == "__main__":  # before the imports below, which need the dependencies
    from knowledge_pipeline.project_venv import use_project_venv

    use_project_venv()

from knowledge_pipeline.logging_setup import (
    LOG_FILE_NAME,
    PipelineJsonFormatter,
    Redactor,
    log_path,
    setup_logging,
)
from knowledge_pipeline.telemetry import Telemetry

__all__ = ["LOG_FILE_NAME", "PipelineJsonFormatter", "Redactor", "Telemetry", "get_logger", "log_path", "setup_logging"]


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="structured_logging.py",
        description="Print the path of the structured log (LOG_DIR/pipeline.jsonl) the current settings "
        "write to, e.g. tail -f \"$(python3 structured_logging.py)\" | jq '.'. Each line is one JSON object "
        "with the keys timestamp, level, logger, message and extra_fields (see README, Monitor).",
        epilog="exit codes: 0 printed; 2 configuration error. Settings come from the environment and .env.",
    )
    parser.parse_args(argv)
    from knowledge_pipeline.config import load_settings
    from knowledge_pipeline.errors import ConfigError

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"structured_logging.py: configuration error: {exc}", file=sys.stderr)
        return 2
    print(log_path(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
