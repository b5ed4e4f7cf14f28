"""``python3 -m knowledge_pipeline batches`` and ``batches cancel ID`` against the fake OpenAI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge_pipeline.__main__ import main
from tests.batches.support import env, run, seed, statuses
from tests.fakes.openai_server import start_fake_openai


def command(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], *args: str) -> int:
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    return main(["batches", *args])


def test_no_state_file_means_no_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert command(monkeypatch, {"JOURNAL_PATH": str(tmp_path / "journal.db")}) == 0
    assert "No batches" in capsys.readouterr().out
    assert not list(tmp_path.iterdir()), "listing creates nothing"


def test_list_shows_open_and_finished_batches_with_counts_and_cost(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    seed(tmp_path / "data" / "sources.db", 4)
    with start_fake_openai(batch_auto=False) as fake:
        environment = env(tmp_path, fake, OPENAI_BATCH="always")
        run(environment)
        assert command(monkeypatch, environment) == 0
        listed = capsys.readouterr().out
        remote_id = next(iter(fake.batches.batches))
        assert remote_id in listed and "validating" in listed
        fake.batches.finish_batches()
        run(environment)
        assert command(monkeypatch, environment, "--json") == 0
        (batch,) = json.loads(capsys.readouterr().out)
    assert batch["remote_id"] == remote_id and batch["state"] == "finished" and batch["remote_status"] == "completed"
    assert (batch["items"], batch["requests"], batch["completed"], batch["items_enriched"]) == (4, 4, 4, 4)
    assert batch["cost_usd"] > 0


def test_cancel_then_the_next_run_collects_what_finished_and_enriches_the_rest(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    seed(tmp_path / "data" / "sources.db", 4)
    with start_fake_openai(batch_auto=False, batch_partial=0.5) as fake:
        environment = env(tmp_path, fake, OPENAI_BATCH="always")
        run(environment)
        remote_id = next(iter(fake.batches.batches))
        assert command(monkeypatch, environment, "cancel", remote_id) == 0
        assert f"{remote_id} is cancelling" in capsys.readouterr().out
        after = run(environment)
        assert command(monkeypatch, environment, "cancel", remote_id) == 1
        assert "only a submitted, unfinished batch can be cancelled" in capsys.readouterr().err
        direct = fake.stats()["calls"]
    (collected,) = after.of("batch_collected")
    assert collected["status"] == "cancelled" and (collected["items_enriched"], collected["items_retry"]) == (2, 2)
    assert direct == 2 and set(statuses(tmp_path).values()) == {"Enriched"}


def test_cancel_of_an_unknown_batch_says_so(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    seed(tmp_path / "data" / "sources.db", 1)
    with start_fake_openai(batch_auto=False) as fake:
        environment = env(tmp_path, fake, OPENAI_BATCH="always")
        run(environment)
        assert command(monkeypatch, environment, "cancel", "batch_nope") == 1
    assert capsys.readouterr().err.startswith("batches cancel: no batch batch_nope")
