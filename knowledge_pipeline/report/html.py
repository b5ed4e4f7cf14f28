"""The HTML report: one self-contained page with charts and the run table.

plotly.js is inlined once (``include_plotlyjs=True``), so the page opens
offline and loads nothing from a CDN or any other URL.
"""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, Sequence

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from .feeds import feed_lines
from .runs import RunReport, top_errors
from .text import format_batch_cost, format_cost, format_duration, format_rate, format_seconds, status_text

CHARTS = {
    "chart-items": "Items per run",
    "chart-throughput": "Throughput per run (items/s)",
    "chart-latency": "API call latency per service (s)",
    "chart-usage": "Tokens and cost per day",
}

_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
_ENRICHED, _FAILED, _SKIPPED = "#2ca02c", "#d62728", "#7f7f7f"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
.meta { color: #666; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1rem; }
.chart { min-width: 0; }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
tr.incomplete td { color: #8a6d00; } tr.failed td { color: #b00020; }
"""


def render_html(
    runs: Sequence[RunReport],
    *,
    skipped_lines: int = 0,
    errors: Sequence[tuple[str, int]] | None = None,
    generated_at: datetime | None = None,
    title: str = "Knowledge pipeline report",
) -> str:
    """The whole page as one string."""
    generated = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    labels = _labels(runs)
    figures = [
        ("chart-items", _items_figure(runs, labels)),
        ("chart-throughput", _throughput_figure(runs, labels)),
        ("chart-latency", _latency_figure(runs)),
        ("chart-usage", _usage_figure(runs)),
    ]
    charts = [
        figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=div_id,
            config=_PLOTLY_CONFIG,
            default_height="380px",
        )
        for div_id, figure in figures
    ]
    shown_errors = top_errors(runs) if errors is None else list(errors)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        # plotly.js inlined once, before any chart, so every chart is laid out in the finished grid
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>',
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{len(runs)} run(s), generated {generated}'
        + (f"; {skipped_lines} log line(s) skipped" if skipped_lines else "")
        + "</p>",
        '<div class="charts">',
        *[f'<div class="chart">{chart}</div>' for chart in charts],
        "</div>",
        "<h2>Runs</h2>",
        _run_table(runs, labels),
        "<h2>Feeds</h2>",
        _feed_table(runs),
        "<h2>Top error reasons</h2>",
        _error_table(shown_errors),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _labels(runs: Sequence[RunReport]) -> list[str]:
    """Unique x-axis labels (plotly merges equal category labels)."""
    return [f"{i}. {run.started_at:%m-%d %H:%M} {run.script}" for i, run in enumerate(runs, 1)]


def _layout(figure: go.Figure, div_id: str, **extra: Any) -> go.Figure:
    figure.update_layout(
        title={"text": CHARTS[div_id]},
        margin={"l": 50, "r": 30, "t": 70, "b": 40},
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.0, "yanchor": "bottom"},
        **extra,
    )
    return figure


def _empty(figure: go.Figure, text: str) -> None:
    figure.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)


def _items_figure(runs: Sequence[RunReport], labels: list[str]) -> go.Figure:
    figure = go.Figure(
        [
            go.Bar(name="enriched", x=labels, y=[r.enriched for r in runs], marker_color=_ENRICHED),
            go.Bar(name="failed", x=labels, y=[r.failed for r in runs], marker_color=_FAILED),
            go.Bar(name="skipped", x=labels, y=[r.skipped for r in runs], marker_color=_SKIPPED),
        ]
    )
    if not runs:
        _empty(figure, "no runs")
    return _layout(figure, "chart-items", barmode="stack", yaxis_title="items")


def _throughput_figure(runs: Sequence[RunReport], labels: list[str]) -> go.Figure:
    figure = go.Figure(
        go.Bar(
            name="items/s",
            x=labels,
            y=[r.items_per_second for r in runs],
            customdata=[[r.mode, r.workers or 0] for r in runs],
            hovertemplate="%{y:.3f} items/s<br>%{customdata[0]}, %{customdata[1]} worker(s)<extra></extra>",
        )
    )
    if not runs:
        _empty(figure, "no runs")
    return _layout(figure, "chart-throughput", yaxis_title="items per second")


def _latency_figure(runs: Sequence[RunReport]) -> go.Figure:
    durations: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        for service, values in run.api_durations.items():
            durations[service].extend(values)
    figure = go.Figure([go.Box(name=service, y=values, boxpoints=False) for service, values in sorted(durations.items())])
    if not durations:
        _empty(figure, "no api_call_complete events in the shown runs")
    return _layout(figure, "chart-latency", yaxis_title="seconds", showlegend=False)


def _usage_figure(runs: Sequence[RunReport]) -> go.Figure:
    days: dict[str, dict[str, float]] = defaultdict(lambda: {"prompt": 0, "completion": 0, "cost": 0.0, "batch": 0.0})
    for run in runs:
        day = days[run.started_at.strftime("%Y-%m-%d")]
        day["prompt"] += run.tokens["prompt"]
        day["completion"] += run.tokens["completion"]
        day["cost"] += run.cost_usd or 0.0
        day["batch"] += run.cost_by_tier["batch"] or 0.0
    x = sorted(days)
    figure = go.Figure(
        [
            go.Bar(name="prompt tokens", x=x, y=[days[d]["prompt"] for d in x]),
            go.Bar(name="completion tokens", x=x, y=[days[d]["completion"] for d in x]),
            go.Scatter(
                name="cost (USD)", x=x, y=[round(days[d]["cost"], 6) for d in x], yaxis="y2", mode="lines+markers"
            ),
            go.Scatter(
                name="of it batch (USD)", x=x, y=[round(days[d]["batch"], 6) for d in x], yaxis="y2",
                mode="lines+markers", line={"dash": "dot"},
            ),
        ]
    )
    if not x:
        _empty(figure, "no runs")
    return _layout(
        figure,
        "chart-usage",
        barmode="stack",
        xaxis={"type": "category"},
        yaxis={"title": {"text": "tokens"}},
        yaxis2={"title": {"text": "USD"}, "overlaying": "y", "side": "right", "rangemode": "tozero"},
    )


def _run_table(runs: Sequence[RunReport], labels: list[str]) -> str:
    head = (
        "<tr><th class='l'>Run</th><th class='l'>Script</th><th class='l'>Mode</th><th>Workers</th>"
        "<th>Found</th><th>Enriched</th><th>Failed</th><th>Skipped</th><th>Success</th><th>Duration</th>"
        "<th>Items/s</th><th>p95 item</th><th class='l'>API calls (errors)</th><th>Tokens</th><th>Cache hits</th>"
        "<th>Cost</th><th>Batch cost</th>"
        "<th class='l'>Status</th></tr>"
    )
    rows = []
    for label, run in zip(labels, runs):
        api = "<br>".join(
            f"{html.escape(name)}: {int(data.get('count') or 0)} ({int(data.get('errors') or 0)})"
            for name, data in run.api_calls.items()
        )
        cells = [
            ("l", f"{html.escape(label.split('. ', 1)[0])}. {run.started_at:%Y-%m-%d %H:%M:%S}"),
            ("l", html.escape(run.script)),
            ("l", html.escape(run.mode)),
            ("", str(run.workers) if run.workers is not None else "-"),
            ("", str(run.items_total)),
            ("", str(run.enriched)),
            ("", str(run.failed)),
            ("", str(run.skipped)),
            ("", format_rate(run.success_rate)),
            ("", format_duration(run.duration_seconds)),
            ("", f"{run.items_per_second:.2f}"),
            ("", format_seconds(run.item_p95)),
            ("l", api or "-"),
            ("", f"{run.tokens['total']:,}"),
            ("", format_rate(run.cache_hit_share)),
            ("", html.escape(format_cost(run.cost_usd))),
            ("", html.escape(format_batch_cost(run))),
            ("l", html.escape(status_text(run))),
        ]
        row = "".join(f"<td class='{cls}'>{value}</td>" if cls else f"<td>{value}</td>" for cls, value in cells)
        rows.append(f"<tr class='{html.escape(run.status)}'>{row}</tr>")
    return f"<table id='runs'>{head}{''.join(rows)}</table>"


def _feed_table(runs: Sequence[RunReport]) -> str:
    """Every feed seen in the shown runs, those needing attention first."""
    lines = feed_lines(runs)
    if not lines:
        return "<p>No feed was read in the shown runs.</p>"
    head = ("<tr><th class='l'>Status</th><th class='l'>Feed</th><th class='l'>Category</th><th>Added</th>"
            "<th class='l'>Last success</th><th>Errors</th><th class='l'>Last error or note</th></tr>")
    rows = []
    for line in lines:
        status = line.status.replace("_", " ") + (" (stale)" if line.stale else "")
        css = "failed" if line.status in ("failing", "paused") else ("incomplete" if line.needs_attention else "")
        cells = [
            ("l", html.escape(status)),
            ("l", html.escape(line.source)),
            ("l", html.escape(line.category or "")),
            ("", str(line.added)),
            ("l", html.escape((line.last_success or "-").replace("T", " ")[:16])),
            ("", str(line.consecutive_errors)),
            ("l", html.escape(line.error or ("no new entry for FEED_STALE_DAYS" if line.stale else ""))),
        ]
        row = "".join(f"<td class='{cls}'>{value}</td>" if cls else f"<td>{value}</td>" for cls, value in cells)
        rows.append(f"<tr class='{css}'>{row}</tr>")
    return f"<table id='feeds'>{head}{''.join(rows)}</table>"


def _error_table(errors: Sequence[tuple[str, int]]) -> str:
    if not errors:
        return "<p>No item errors in the shown runs.</p>"
    rows = "".join(f"<tr><td>{count}</td><td class='l'>{html.escape(reason)}</td></tr>" for reason, count in errors)
    return f"<table id='errors'><tr><th>Count</th><th class='l'>Reason</th></tr>{rows}</table>"
