"""The run table as plain text and as JSON.

``Cache`` is the share of prompt tokens the provider served from its prompt
cache; ``Cost`` is the run's whole estimated spend and ``Batch`` the part of
it that was Batch API results (priced at batch rates).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from .feeds import feed_counts, feed_lines
from .runs import INCOMPLETE, OK, RunReport, top_errors

_COLUMNS = (
    ("Started (UTC)", "<"),
    ("Script", "<"),
    ("Mode", "<"),
    ("W", ">"),
    ("Found", ">"),
    ("Enriched", ">"),
    ("Failed", ">"),
    ("Skipped", ">"),
    ("Success", ">"),
    ("Duration", ">"),
    ("Items/s", ">"),
    ("p95 item", ">"),
    ("Tokens", ">"),
    ("Cache", ">"),
    ("Cost", ">"),
    ("Batch", ">"),
    ("Status", "<"),
)


def render_text(
    runs: Sequence[RunReport],
    *,
    skipped_lines: int = 0,
    errors: Sequence[tuple[str, int]] | None = None,
) -> str:
    """A table of the runs (oldest first), API calls per run, then the top error reasons."""
    if not runs:
        lines = ["No runs found in the log."]
    else:
        rows = [[title for title, _ in _COLUMNS]] + [_row(run) for run in runs]
        widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
        indent = " " * (widths[0] + 2)
        lines = [_format(rows[0], widths)]
        for run, row in zip(runs, rows[1:]):
            lines.append(_format(row, widths))
            if run.captured_by_kind:
                lines.append(indent + "capture: " + "; ".join(
                    _capture(kind, counts) for kind, counts in sorted(run.captured_by_kind.items())))
            if run.api_calls:
                lines.append(indent + "api: " + "; ".join(_api(name, data) for name, data in run.api_calls.items()))
            if run.feeds:
                lines.append(indent + "feeds: " + feeds_text(run.feeds))
    lines += _feed_section(runs)
    shown = top_errors(runs) if errors is None else list(errors)
    if shown:
        lines += ["", "Top error reasons (item_error, shown runs):"]
        lines += [f"  {count:>5}  {reason}" for reason, count in shown]
    if skipped_lines:
        lines += ["", f"{skipped_lines} log line(s) skipped (not pipeline events)."]
    return "\n".join(lines) + "\n"


def report_data(
    runs: Sequence[RunReport],
    *,
    skipped_lines: int = 0,
    errors: Sequence[tuple[str, int]] | None = None,
) -> dict[str, Any]:
    """``{"runs": [...], "top_errors": [[reason, count], ...], "skipped_lines": N}``."""
    shown = top_errors(runs) if errors is None else list(errors)
    return {
        "runs": [run.to_dict() for run in runs],
        "feeds": [line.to_dict() for line in feed_lines(runs)],
        "top_errors": [[reason, count] for reason, count in shown],
        "skipped_lines": skipped_lines,
    }


def render_json(
    runs: Sequence[RunReport],
    *,
    skipped_lines: int = 0,
    errors: Sequence[tuple[str, int]] | None = None,
) -> str:
    return json.dumps(report_data(runs, skipped_lines=skipped_lines, errors=errors), indent=2) + "\n"


def feeds_text(counts: dict[str, int]) -> str:
    """``3 ok, 480 not modified, 2 failing`` (statuses with a count only)."""
    return ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items() if n) or "none"


def _feed_section(runs: Sequence[RunReport]) -> list[str]:
    lines = feed_lines(runs)
    if not lines:
        return []
    stale = sum(line.stale for line in lines)
    out = ["", f"Feeds (latest state in the shown runs): {len(lines)} feeds, {feeds_text(feed_counts(runs))}"
           + (f"; {stale} stale" if stale else "")]
    attention = [line for line in lines if line.needs_attention]
    for line in attention:
        status = line.status.replace("_", " ")
        if line.stale and line.status not in ("paused", "failing"):
            status = f"stale ({status})"
        detail = f"{line.consecutive_errors} error(s): {line.error}" if line.consecutive_errors else (
            "no new entry for FEED_STALE_DAYS" if line.stale else line.error or "")
        out.append(f"  {status:<20} {line.source}  {detail}".rstrip())
    if not attention:
        out.append("  every feed is healthy")
    return out


def _row(run: RunReport) -> list[str]:
    return [
        run.started_at.strftime("%Y-%m-%d %H:%M"),
        run.script,
        run.mode,
        str(run.workers) if run.workers is not None else "-",
        str(run.items_total),
        str(run.enriched),
        str(run.failed),
        str(run.skipped),
        format_rate(run.success_rate),
        format_duration(run.duration_seconds),
        f"{run.items_per_second:.2f}",
        format_seconds(run.item_p95),
        f"{run.tokens['total']:,}",
        format_rate(run.cache_hit_share),
        format_cost(run.cost_usd),
        format_batch_cost(run),
        status_text(run),
    ]


def status_text(run: RunReport) -> str:
    if run.status == OK:
        return "ok"
    if run.status == INCOMPLETE:
        return "incomplete"
    return f"failed (exit {run.exit_code})"


def _format(row: list[str], widths: list[int]) -> str:
    cells = []
    for (title, align), cell, width in zip(_COLUMNS, row, widths):
        cells.append(cell.ljust(width) if align == "<" else cell.rjust(width))
    return "  ".join(cells).rstrip()


def _capture(kind: str, counts: dict[str, int]) -> str:
    text = f"{kind} {counts.get('found', 0)} found, {counts.get('added', 0)} added"
    if counts.get("errors"):
        text += f", {counts['errors']} errors"
    return text


def _api(name: str, data: dict[str, Any]) -> str:
    text = f"{name} {int(data.get('count') or 0)} calls, {int(data.get('errors') or 0)} errors"
    p95 = data.get("p95")
    if p95 is not None:
        text += f", p95 {format_seconds(p95)}"
    return text


def format_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def format_seconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}s"


def format_duration(seconds: float) -> str:
    whole = int(round(seconds))
    if whole < 60:
        return f"{seconds:.1f}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def format_cost(cost: float | None) -> str:
    return "?" if cost is None else f"${cost:.4f}"


def format_batch_cost(run: RunReport) -> str:
    """The part of the run's cost that was Batch API results, at batch prices ('-' when none)."""
    batch = run.cost_by_tier["batch"]
    return "-" if batch == 0 else format_cost(batch)
