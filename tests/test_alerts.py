from __future__ import annotations

import asyncio
import json
import logging
import socket
import time

import pytest

from knowledge_pipeline.alerts import safe_origin, send_alert, should_alert
from knowledge_pipeline.telemetry import Telemetry
from tests.extract.support import Recorder
from tests.fakes.webhook_server import start_fake_webhook

SECRET_PATH = "/services/T0000/B0000/XXXXsecretXXXX"
METRICS = {
    "items_total": 10, "items_processed": 4, "items_failed": 6, "items_skipped": 0,
    "failure_rate": 0.6, "duration_seconds": 12.5, "top_errors": [["HTTP 404", 4], ["timeout", 2]],
}


def _telemetry() -> tuple[Telemetry, Recorder]:
    telemetry = Telemetry("knowledge_pipeline.test_alerts")
    recorder = Recorder()
    telemetry.add_observer(recorder)
    return telemetry, recorder


def _alert(telemetry: Telemetry, webhook_url: str | None, timeout: float = 5.0) -> float:
    started = time.monotonic()
    asyncio.run(send_alert(telemetry, reason="failure rate 60% above 50%", script="enrich_rss.py",
                           metrics=METRICS, webhook_url=webhook_url, timeout=timeout))
    return time.monotonic() - started


def _logged_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() + json.dumps(getattr(r, "extra_fields", {})) for r in caplog.records)


@pytest.mark.parametrize(
    ("metrics", "exit_code", "expected"),
    [
        ({"items_processed": 9, "items_failed": 1}, 0, None),
        ({"items_processed": 5, "items_failed": 5}, 0, None),  # exactly at the threshold
        ({"items_processed": 0, "items_failed": 0}, 0, None),
        ({"items_processed": 4, "items_failed": 6}, 0, "failure rate 60% above 50% (6 of 10 items failed)"),
        ({"items_processed": 9, "items_failed": 0}, 1, "run failed (exit code 1)"),
        ({"items_processed": 1, "items_failed": 0}, 130, "run interrupted (exit code 130)"),
        (
            {"items_processed": 1, "items_failed": 3}, 1,
            "run failed (exit code 1); failure rate 75% above 50% (3 of 4 items failed)",
        ),
    ],
)
def test_should_alert(metrics: dict, exit_code: int, expected: str | None) -> None:
    assert should_alert(metrics, exit_code=exit_code, threshold=0.5) == expected


def test_alert_is_logged_as_an_error_event(caplog: pytest.LogCaptureFixture) -> None:
    telemetry, recorder = _telemetry()
    with caplog.at_level(logging.INFO, logger="knowledge_pipeline.test_alerts"):
        _alert(telemetry, None)
    [alert] = recorder.of("alert")
    assert alert["reason"] == "failure rate 60% above 50%"
    assert (alert["script"], alert["failure_rate"], alert["items_failed"]) == ("enrich_rss.py", 0.6, 6)
    assert alert["webhook"] is None
    assert [r.levelno for r in caplog.records] == [logging.ERROR]


def test_webhook_receives_the_alert_and_the_secret_path_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    telemetry, recorder = _telemetry()
    with start_fake_webhook() as hook, caplog.at_level(logging.DEBUG, logger="knowledge_pipeline.test_alerts"):
        _alert(telemetry, hook.url + SECRET_PATH)
        [request] = hook.stats()["requests"]
    assert request["path"] == SECRET_PATH
    body = request["json"]
    assert "enrich_rss.py" in body["text"] and "failure rate 60% above 50%" in body["text"]
    assert "4 enriched, 6 failed" in body["text"] and "\n" not in body["text"]
    assert (body["script"], body["items_failed"], body["failure_rate"]) == ("enrich_rss.py", 6, 0.6)
    assert request["headers"]["Content-Type"] == "application/json"
    assert recorder.of("alert")[0]["webhook"] == hook.url
    assert recorder.of("alert_webhook_failed") == []
    assert "XXXXsecretXXXX" not in _logged_text(caplog)


def test_webhook_error_status_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    telemetry, recorder = _telemetry()
    with start_fake_webhook(status=500) as hook, caplog.at_level(logging.INFO, logger="knowledge_pipeline.test_alerts"):
        _alert(telemetry, hook.url + SECRET_PATH)
    [failure] = recorder.of("alert_webhook_failed")
    assert failure["error"] == "HTTP 500" and failure["webhook"] == hook.url
    assert [r.levelname for r in caplog.records] == ["ERROR", "WARNING"]
    assert "XXXXsecretXXXX" not in _logged_text(caplog)


def test_dead_webhook_does_not_fail_or_hang(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    telemetry, recorder = _telemetry()
    with caplog.at_level(logging.INFO, logger="knowledge_pipeline.test_alerts"):
        elapsed = _alert(telemetry, f"http://127.0.0.1:{port}{SECRET_PATH}", timeout=2.0)
    assert elapsed < 2.0
    [failure] = recorder.of("alert_webhook_failed")
    assert failure["webhook"] == f"http://127.0.0.1:{port}"
    assert "XXXXsecretXXXX" not in _logged_text(caplog)


def test_webhook_that_does_not_answer_is_abandoned_after_the_timeout() -> None:
    telemetry, recorder = _telemetry()
    with start_fake_webhook(latency=3.0) as hook:
        elapsed = _alert(telemetry, hook.url + SECRET_PATH, timeout=0.3)
    assert elapsed < 1.5
    [failure] = recorder.of("alert_webhook_failed")
    assert "0.3" in failure["error"]


def test_safe_origin_drops_credentials_path_and_query() -> None:
    assert safe_origin("https://user:pw@hooks.example.com/services/T/B/secret?token=x") == "https://hooks.example.com"
    assert safe_origin("http://127.0.0.1:8080/x") == "http://127.0.0.1:8080"
