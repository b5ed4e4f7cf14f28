"""The README's crontab line, run the way cron runs it: /bin/sh, minimal environment, cwd=/."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from .conftest import ROOT, list_items, clean_env

PLACEHOLDER = "/path/to/knowledge-pipeline"


def crontab_line() -> str:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```cron\n(.*?)```", readme, re.S).group(1)
    [line] = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    return line


def project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "knowledge-pipeline"
    copy.mkdir()
    for name in ("knowledge_pipeline", "examples"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for path in ROOT.iterdir():
        if path.suffix in (".py", ".sh"):
            shutil.copy2(path, copy / path.name)
    (copy / "logs").mkdir()
    (copy / ".venv").symlink_to(ROOT / ".venv")
    feeds = ",".join(str(p.relative_to(ROOT)) for p in sorted((ROOT / "examples" / "feeds").glob("*.xml")))
    (copy / ".env").write_text(f"RSS_FEEDS={feeds}\nRSS_WINDOW_DAYS=0\nPDF_DIR=examples/pdfs\n")
    return copy


def test_the_readme_crontab_line_runs_under_crons_environment(tmp_path: Path):
    line = crontab_line()
    fields = line.split(None, 5)
    assert len(fields) == 6, "five schedule fields and a command"
    copy = project_copy(tmp_path)
    command = fields[5].replace(PLACEHOLDER, str(copy))
    cron_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHELL": "/bin/sh", "LOGNAME": "root"}
    done = subprocess.run(["/bin/sh", "-c", command], cwd="/", env=cron_env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, (copy / "logs" / "cron.log").read_text()
    cron_log = (copy / "logs" / "cron.log").read_text()
    assert "knowledge pipeline: enhanced, sequential" in cron_log
    assert "enrich_rss_enhanced.py: captured" in cron_log and "enrich_enhanced.py: captured" in cron_log
    assert (copy / "logs" / "pipeline.jsonl").exists()
    items = list_items(copy, clean_env(SOURCES_DB_PATH=str(copy / "data" / "sources.db")))
    assert items and all(i["status"] == "Enriched" for i in items)
