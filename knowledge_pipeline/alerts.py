"""Alerts: decide whether a run deserves one, log it, and post it to a webhook.

A run alerts when it failed (exit code not 0), when every configured source
(feed, PDF folder) failed to be read, or when more than
``ALERT_FAILURE_RATE`` of its attempted items failed. The alert is always an
ERROR ``alert`` event in the log; with ``ALERT_WEBHOOK_URL`` it is also POSTed
as Slack-style JSON (``{"text": ...}`` plus structured fields).

The webhook is best effort (``webhooks.post_json``: one attempt, bounded,
never raising); only its scheme and host ever reach the log.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from .telemetry import Telemetry
from .webhooks import post_json, safe_origin

__all__ = ["alert_payload", "safe_origin", "send_alert", "should_alert"]

_EXIT_MEANINGS = {1: "failed", 2: "configuration error", 75: "another run holds the lock", 130: "interrupted"}


def should_alert(metrics: dict[str, Any], *, exit_code: int, threshold: float) -> str | None:
    """Why this run deserves an alert, or None when it does not."""
    reasons = []
    if exit_code != 0:
        meaning = _EXIT_MEANINGS.get(exit_code)
        reasons.append(f"run {meaning or 'failed'} (exit code {exit_code})")
    sources = int(metrics.get("sources_total") or 0)
    if sources and int(metrics.get("sources_failed") or 0) == sources:
        reasons.append(f"every configured source failed ({_sources_text(metrics)})")
    failed = int(metrics.get("items_failed") or 0)
    attempted = failed + int(metrics.get("items_processed") or 0)
    if attempted:
        rate = failed / attempted
        if rate > threshold:
            reasons.append(f"failure rate {rate:.0%} above {threshold:.0%} ({failed} of {attempted} items failed)")
    return "; ".join(reasons) or None


def _sources_text(metrics: dict[str, Any]) -> str:
    feeds = {name: int(metrics.get(f"feeds_{name}") or 0) for name in ("failing", "paused", "deferred")}
    parts = [f"{count} feed(s) {name}" for name, count in feeds.items() if count]
    others = int(metrics.get("sources_total") or 0) - sum(feeds.values())
    if others > 0:
        parts.append(f"{others} other source(s) failed")
    return ", ".join(parts) or f"{metrics.get('sources_total')} source(s)"


async def send_alert(
    telemetry: Telemetry,
    *,
    reason: str,
    script: str,
    metrics: dict[str, Any],
    webhook_url: str | None,
    timeout: float = 5.0,
) -> None:
    """Log an ERROR ``alert`` event and, if ``webhook_url`` is set, POST it there.

    Never raises; a webhook that fails or does not answer within ``timeout``
    seconds gives a WARNING ``alert_webhook_failed`` event.
    """
    payload = alert_payload(reason=reason, script=script, metrics=metrics)
    origin = safe_origin(webhook_url) if webhook_url else None
    telemetry.event(
        "alert",
        f"ALERT {script}: {reason}",
        level=logging.ERROR,
        **{key: value for key, value in payload.items() if key != "text"},
        webhook=origin,
    )
    if not webhook_url:
        return
    error = await post_json(webhook_url, payload, timeout)
    if error is not None:
        telemetry.event(
            "alert_webhook_failed",
            f"Alert webhook {origin} failed: {error}",
            level=logging.WARNING,
            webhook=origin,
            error=error,
        )


def alert_payload(*, reason: str, script: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The webhook body: a one-line ``text`` for chat tools plus the numbers."""
    host = socket.gethostname()
    enriched = int(metrics.get("items_processed") or 0)
    failed = int(metrics.get("items_failed") or 0)
    skipped = int(metrics.get("items_skipped") or 0)
    text = (
        f"knowledge-pipeline alert on {host}: {script}: {reason}; "
        f"{enriched} enriched, {failed} failed, {skipped} skipped"
    )
    return {
        "text": text,
        "script": script,
        "reason": reason,
        "host": host,
        "failure_rate": metrics.get("failure_rate"),
        "items_total": int(metrics.get("items_total") or 0),
        "items_processed": enriched,
        "items_failed": failed,
        "items_skipped": skipped,
        "duration_seconds": metrics.get("duration_seconds"),
        "top_errors": [list(entry) for entry in (metrics.get("top_errors") or [])[:3]],
    }
