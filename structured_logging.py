"""Structured JSONL logging for every script: ``setup_logging(settings)`` once per process.

Re-exports the package's logging setup so scripts and tools outside the
package can use it. See knowledge_pipeline/logging_setup.py for the format.
"""

import logging

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
