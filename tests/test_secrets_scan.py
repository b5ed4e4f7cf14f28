"""Planted secrets never leave .env (issue: reliability and security).

A temporary copy of the project gets a ``.env`` holding a Notion token and an
OpenAI key that the fakes accept. The values are chosen NOT to look like keys
(no ``sk-``/``ntn_``/``secret_`` prefix), so only the pipeline's knowledge of
its own secrets can keep them out, not the pattern fallback of the log
redactor. Then everything a user would run: the whole pipeline against the
fake Notion and fake OpenAI with faults, a feed URL carrying both, alerts
to a webhook and a metrics textfile; runs with a wrong key (which the fake
OpenAI echoes back in its 401, as some compatible servers do) and a wrong
token; ``list``, ``report``, ``notion check``; ``migrate_to_parallel.py
migrate --with-data``, ``status`` and ``list``. Every byte written under the
temp dir, every byte printed, every request the fakes received (but the
credentials headers) and every alert delivered is scanned: no secret appears,
except in ``.env`` and its backup copies, which are mode 0600, as are the logs.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from .conftest import EXAMPLE_FEEDS, EXAMPLE_PDFS, ROOT
from .fakes.notion_server import start_fake_notion
from .fakes.openai_server import start_fake_openai
from .fakes.web_server import FakeWebServer
from .fakes.webhook_server import start_fake_webhook

NOTION_TOKEN = "PLANTEDnotionToken7f3e9a1c5b2d"
OPENAI_KEY = "PLANTEDopenaiKey4b8d2f6a9c1e"
WRONG_NOTION_TOKEN = "WRONGnotionToken0a1b2c3d4e5f"
WRONG_OPENAI_KEY = "WRONGopenaiKey9f8e7d6c5b4a"
SECRETS = (NOTION_TOKEN, OPENAI_KEY, WRONG_NOTION_TOKEN, WRONG_OPENAI_KEY)
ARTICLE = ("<html><body><article><h1>Pending</h1>" + "<p>Mistral shipped a model for coding tasks and measured a "
           "12% gain across five benchmarks. Analysts expect automation budgets to grow.</p>" * 4
           + "</article></body></html>")
TOP_LEVEL = ("migrate_to_parallel.py", "requirements.txt", "pipeline.sh", "pipeline_enhanced.sh", "enrich.py",
             "enrich_rss.py", "enrich_enhanced.py", "enrich_rss_enhanced.py", "parallel_enricher.py",
             "structured_logging.py")


def make_project(root: Path) -> Path:
    project = root / "project"
    project.mkdir()
    shutil.copytree(ROOT / "knowledge_pipeline", project / "knowledge_pipeline",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in TOP_LEVEL:
        shutil.copy2(ROOT / name, project / name)
    (project / ".venv").symlink_to(ROOT / ".venv")
    return project


def base_env(project: Path) -> dict[str, str]:
    """A bare environment: every setting comes from the project's .env unless a run overrides it."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(project.parent),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(project),
    }


class Session:
    """Runs commands in the project and keeps everything they printed."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.printed: list[str] = []

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.project / args[0]), *args[1:]] if args[0].endswith(".sh") else [sys.executable, *args]
        done = subprocess.run(command, cwd=self.project, env={**base_env(self.project), **env}, capture_output=True,
                              text=True, timeout=180, stdin=subprocess.DEVNULL)
        self.printed += [f"$ {' '.join(args)}\n{done.stdout}{done.stderr}"]
        return done


def find_secrets(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_planted_secrets_appear_nowhere_but_in_env_files(tmp_path: Path):
    project = make_project(tmp_path)
    session = Session(project)
    with start_fake_notion(database="full", token=NOTION_TOKEN, rps=None, seed=3) as notion, \
            start_fake_openai(api_key=OPENAI_KEY, seed=3) as openai, start_fake_webhook() as hook, \
            FakeWebServer() as web:
        notion.configure(error_share=0.05, rate_limit_share=0.05, retry_after=0, lost_reply_share=0.05)
        openai.configure(error_rate_5xx=0.05, error_rate_429=0.05, retry_after=0, leak_key_in_errors=True)
        feeds = [f"{web.url}/feed.xml?key={OPENAI_KEY}&token={NOTION_TOKEN}", *map(str, EXAMPLE_FEEDS)]
        env_file = project / ".env"
        env_file.write_text("\n".join([
            f"NOTION_TOKEN={NOTION_TOKEN}",
            f"OPENAI_API_KEY={OPENAI_KEY}",
            "SOURCES_BACKEND=notion",
            f"NOTION_SOURCES_DB={notion.database_id}",
            f"NOTION_BASE_URL={notion.url}",
            "NOTION_MAX_RPS=100",
            "PARALLEL_RATE_LIMIT=0",
            "ENRICHER=openai",
            f"OPENAI_BASE_URL={openai.url}",
            f"RSS_FEEDS={','.join(feeds[1:])}",
            "RSS_WINDOW_DAYS=0",
            f"PDF_DIR={EXAMPLE_PDFS}",
            "LOG_LEVEL=DEBUG",
            "RETRY_ATTEMPTS=6",
            "ALLOW_PRIVATE_URLS=true",
            f"ALERT_WEBHOOK_URL={hook.url}/services/T0/B0/hook",
            f"METRICS_TEXTFILE={project / 'metrics' / 'pipeline.prom'}",
        ]) + "\n")
        env_file.chmod(0o644)

        good = session.run("pipeline_enhanced.sh", RSS_FEEDS=",".join(feeds), ENABLE_PARALLEL="true")
        assert good.returncode == 0, good.stdout + good.stderr
        assert "HTTP 404" in good.stdout + good.stderr, "the feed URL carrying the secrets was reported"

        web.page("/pending", ARTICLE)
        notion.seed([{"Title": "Pending", "Status": "Inbox", "Source Type": "RSS",
                      "Article URL": f"{web.url}/pending", "Hash": "pending"}])
        wrong_key = session.run("enrich_rss_enhanced.py", OPENAI_API_KEY=WRONG_OPENAI_KEY, RSS_FEEDS="")
        wrong_token = session.run("enrich_enhanced.py", NOTION_TOKEN=WRONG_NOTION_TOKEN)
        wrong_check = session.run("-m", "knowledge_pipeline", "notion", "check", NOTION_TOKEN=WRONG_NOTION_TOKEN)
        for args in (("-m", "knowledge_pipeline", "notion", "check"), ("-m", "knowledge_pipeline", "list"),
                     ("-m", "knowledge_pipeline", "list", "--json"), ("-m", "knowledge_pipeline", "report"),
                     ("migrate_to_parallel.py", "migrate", "--with-data"), ("migrate_to_parallel.py", "status"),
                     ("migrate_to_parallel.py", "list")):
            done = session.run(*args)
            assert done.returncode == 0, (args, done.stdout, done.stderr)

        received = json.dumps(notion.stats()["log"]) + json.dumps([notion.values(p["id"]) for p in notion.pages()])
        received += json.dumps([notion.blocks_of(p["id"]) for p in notion.pages()])
        received += json.dumps(openai.requests())
        alerts = hook.stats()["requests"]

    assert wrong_key.returncode == 1 and "401" in wrong_key.stderr + wrong_key.stdout
    assert wrong_token.returncode == 1 and "unauthorized" in wrong_token.stderr + wrong_token.stdout
    assert wrong_check.returncode != 0
    assert alerts, "the failed runs sent alerts"

    leaks = {"printed": [(out.splitlines()[0], line) for out in session.printed for line in out.splitlines()
                         if find_secrets(line)], "sent to the fakes": find_secrets(received),
             "alerts": find_secrets(json.dumps(alerts))}
    env_copies = []
    for path in sorted(tmp_path.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        found = find_secrets(path.read_bytes().decode("utf-8", "replace"))
        if path.name == ".env":
            env_copies.append(path)
            continue
        if found:
            leaks[str(path.relative_to(tmp_path))] = found
    assert not any(leaks.values()), leaks

    backups = [p for p in env_copies if p != project / ".env"]
    assert backups, "migrate backed up .env"
    for copy in backups:
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600, copy
        assert NOTION_TOKEN in copy.read_text(), "the backup is a true copy"
    logs = [p for p in (project / "logs").iterdir() if p.is_file() and not p.name.startswith(".")]
    assert logs and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in logs), {
        p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in logs}
    jsonl = (project / "logs" / "pipeline.jsonl").read_text()
    assert "[REDACTED]" in jsonl, "the secrets were met, and redacted"


def test_migrate_status_blanks_a_secret_inside_another_setting(tmp_path: Path):
    project = make_project(tmp_path)
    (project / ".env").write_text(f"OPENAI_API_KEY={OPENAI_KEY}\nENRICHER=local\n"
                                  f"RSS_FEEDS=https://feeds.example.com/ai.xml?key={OPENAI_KEY}\n")
    session = Session(project)
    done = session.run("migrate_to_parallel.py", "status")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "feeds.example.com" in done.stdout
    assert OPENAI_KEY not in done.stdout + done.stderr
