"""Run reports from the JSONL log: a text table, JSON, and an HTML page with charts.

``read_events`` reads the log (rotated files first), ``build_runs`` groups the
events into :class:`RunReport` objects, and the ``render_*`` functions turn
runs into text, JSON or HTML. All of them are pure apart from reading the log;
the ``report`` command (``knowledge_pipeline.commands.report``) wires them up.
"""

from .feeds import FeedLine, feed_lines
from .html import CHARTS, render_html
from .reader import KNOWN_EVENTS, Event, LineCount, log_files, read_events
from .runs import RunReport, build_runs, select_runs, top_errors
from .text import render_json, render_text, report_data

__all__ = [
    "CHARTS",
    "KNOWN_EVENTS",
    "Event",
    "FeedLine",
    "LineCount",
    "RunReport",
    "build_runs",
    "feed_lines",
    "log_files",
    "read_events",
    "render_html",
    "render_json",
    "render_text",
    "report_data",
    "select_runs",
    "top_errors",
]
