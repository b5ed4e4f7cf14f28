from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from knowledge_pipeline.report import CHARTS, build_runs, read_events, render_html
from tests.report.logs import ENRICHED, FAILED, SimulatedRun, utc, write_log


class _Resources(HTMLParser):
    """Every src/href attribute and every <script>/<link> tag of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.urls += [value or "" for name, value in attrs if name in ("src", "href")]


def _plots(page: str) -> dict[str, tuple[list, dict]]:
    """div id -> (traces, layout) of every ``Plotly.newPlot(id, data, layout, config)`` call."""
    decoder = json.JSONDecoder()
    plots = {}
    for match in re.finditer(r"Plotly\.newPlot\(", page):
        values, position = [], match.end()
        for _ in range(3):
            position = re.compile(r"[\s,]*").match(page, position).end()
            value, position = decoder.raw_decode(page, position)
            values.append(value)
        plots[values[0]] = (values[1], values[2])
    return plots


def _page(log_dir: Path) -> str:
    events, count = read_events(log_dir)
    return render_html(build_runs(events), skipped_lines=count.skipped)


def test_page_is_self_contained(log_dir: Path) -> None:
    page = _page(log_dir)
    parser = _Resources()
    parser.feed(page)
    assert not [url for url in parser.urls if re.match(r"(?i)\s*(https?:)?//", url)]
    assert not [tag for tag, attrs in parser.tags if tag == "script" and attrs.get("src")]
    assert not [tag for tag, _ in parser.tags if tag == "link"]
    # plotly.js itself is inlined (several MB), not fetched
    assert len(page) > 1_000_000 and "Plotly.newPlot" in page


def test_page_has_the_four_charts_and_the_run_table(log_dir: Path) -> None:
    page = _page(log_dir)
    assert set(CHARTS) == {"chart-items", "chart-throughput", "chart-latency", "chart-usage"}
    plots = _plots(page)
    assert {div_id: layout["title"]["text"] for div_id, (_, layout) in plots.items()} == CHARTS
    for div_id in CHARTS:
        assert f'id="{div_id}"' in page
    assert page.count("<tr class='") == 3
    assert "failed (exit 1)" in page and "incomplete" in page
    assert "HTTP 404 Not Found" in page


def test_chart_data_match_the_runs(log_dir: Path) -> None:
    page = _page(log_dir)
    data = {div_id: traces for div_id, (traces, _) in _plots(page).items()}
    items = {trace["name"]: trace["y"] for trace in data["chart-items"]}
    assert items == {"enriched": [4, 6, 2], "failed": [1, 3, 1], "skipped": [1, 0, 0]}
    latency = {trace["name"]: trace["y"] for trace in data["chart-latency"]}
    assert set(latency) == {"openai", "web"} and len(latency["openai"]) == 12
    usage = {trace["name"]: trace["x"] for trace in data["chart-usage"]}
    assert usage["cost (USD)"] == ["2024-01-14", "2024-01-15"]


def test_log_text_is_escaped(tmp_path: Path) -> None:
    run = SimulatedRun("x", "enrich.py", "sequential", utc(2024, 1, 1), [ENRICHED, FAILED],
                       error="<script>alert(1)</script> broke")
    write_log(tmp_path, run.lines)
    page = _page(tmp_path)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; broke" in page


def test_empty_log_still_renders(tmp_path: Path) -> None:
    page = render_html([])
    assert all(f'id="{div_id}"' in page for div_id in CHARTS)
