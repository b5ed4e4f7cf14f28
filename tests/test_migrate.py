"""migrate_to_parallel.py run as a process in a temporary copy of the project."""

from __future__ import annotations

import hashlib
import json
import fcntl
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import knowledge_pipeline

REPO = Path(__file__).resolve().parents[1]
SECRETS = ("sk-test-SECRET123", "secret_TEST456")
STAND_INS = {
    "pipeline.sh": "#!/usr/bin/env bash\npython3 enrich_rss.py && python3 enrich.py\n",
    "enrich.py": "print('original PDF enrichment')\n",
    "enrich_rss.py": "print('original RSS enrichment')\n",
}
TOP_LEVEL = (
    "migrate_to_parallel.py",
    "requirements.txt",
    "pipeline_enhanced.sh",
    "enrich_enhanced.py",
    "enrich_rss_enhanced.py",
    "parallel_enricher.py",
    "structured_logging.py",
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "knowledge_pipeline", root / "knowledge_pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    for name in TOP_LEVEL:
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, root / name)
    for name, text in STAND_INS.items():
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, root / name)
        else:
            (root / name).write_text(text)
    (root / "pipeline.sh").chmod(0o755)
    (root / ".env").write_text(f"OPENAI_API_KEY={SECRETS[0]}\nNOTION_TOKEN={SECRETS[1]}\nENRICHER=local\n")
    (root / ".env").chmod(0o644)
    return root


def run_tool(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root.parent),
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return subprocess.run(
        [sys.executable, "migrate_to_parallel.py", *args],
        cwd=root,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def backups(root: Path) -> list[Path]:
    return sorted(p for p in (root / "backups").iterdir() if p.name.startswith("migration_"))


def manifest(backup: Path) -> dict:
    return json.loads((backup / "MANIFEST.json").read_text())


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, tuple]:
    """Content, mode and link target of every path, except the log folder."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ("logs", "__pycache__")]
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                state[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                state[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                state[rel] = ("file", stat.S_IMODE(st.st_mode), sha(path))
    return state


def events(root: Path, event_type: str | None = None) -> list[dict]:
    path = root / "logs" / "pipeline.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    for record in records:
        assert set(record) == {"timestamp", "level", "logger", "message", "extra_fields"}
    return [r for r in records if event_type is None or r["extra_fields"].get("event_type") == event_type]


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.removeprefix("export ").partition("=")
            values[key.strip()] = value.strip()
    return values


# --- migrate -------------------------------------------------------------------------


def test_migrate_creates_a_backup_whose_manifest_matches_the_files(project: Path) -> None:
    result = run_tool(project, "migrate")

    assert result.returncode == 0, result.stderr
    [backup] = backups(project)
    doc = manifest(backup)
    assert doc["tool_version"] == knowledge_pipeline.__version__
    assert doc["created_at"]
    listed = {e["path"]: e for e in doc["files"]}
    assert {"pipeline.sh", "enrich.py", "enrich_rss.py", ".env"} <= set(listed)
    for path, entry in listed.items():
        assert sha(backup / path) == entry["sha256"] == sha(project / path)
        assert (backup / path).stat().st_size == entry["size"]
        assert int(entry["mode"], 8) == stat.S_IMODE((project / path).stat().st_mode)
    assert env_file(project / ".env.migration") == {"USE_ENHANCED": "true", "ENABLE_PARALLEL": "false"}
    assert "Next steps" in result.stdout
    logged = {e["extra_fields"]["event_type"] for e in events(project)}
    assert {"migration_preflight", "migration_backup", "migration_phase"} <= logged


def test_backup_keeps_env_private(project: Path) -> None:
    assert run_tool(project, "migrate").returncode == 0
    [backup] = backups(project)

    assert stat.S_IMODE(backup.stat().st_mode) == 0o700
    assert stat.S_IMODE((backup / ".env").stat().st_mode) == 0o600
    assert stat.S_IMODE((backup / "MANIFEST.json").stat().st_mode) & 0o077 == 0
    entry = next(e for e in manifest(backup)["files"] if e["path"] == ".env")
    assert entry["mode"] == "0644"  # the original's mode, put back on restore


def test_migrate_twice_in_one_second_makes_two_backups(project: Path) -> None:
    clock = {"MIGRATE_NOW": "2024-01-15T10:30:00"}
    first = run_tool(project, "migrate", env=clock)
    run_tool(project, "phase", "3")
    second = run_tool(project, "migrate", env=clock)

    assert first.returncode == second.returncode == 0, second.stderr
    assert [b.name for b in backups(project)] == ["migration_20240115_103000", "migration_20240115_103000_1"]
    assert "✓" in run_tool(project, "list").stdout
    assert run_tool(project, "list").returncode == 0
    # the second migrate backed up phase 3 and left it in place
    assert env_file(project / ".env.migration")["PARALLEL_MAX_WORKERS"] == "5"
    assert ".env.migration" in {e["path"] for e in manifest(backups(project)[1])["files"]}


def test_migrate_refuses_when_preflight_fails(project: Path) -> None:
    (project / ".env").write_text("PARALLEL_MAX_WORKERS=lots\n")
    result = run_tool(project, "migrate")

    assert result.returncode == 2
    assert "✗ configuration: PARALLEL_MAX_WORKERS='lots' is invalid" in result.stdout
    assert not (project / "backups").exists() or not backups(project)
    assert not (project / ".env.migration").exists()


def test_with_data_snapshots_the_store_and_rollback_restores_it(project: Path) -> None:
    (project / "data").mkdir()
    db = project / "data" / "sources.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.execute("INSERT INTO t VALUES ('before')")
    conn.close()

    assert run_tool(project, "migrate", "--with-data").returncode == 0
    [backup] = backups(project)
    [entry] = manifest(backup)["data"]
    assert entry["role"] == "sources_db" and sha(backup / entry["path"]) == entry["sha256"]
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO t VALUES ('after')")
    conn.close()

    result = run_tool(project, "rollback", "--with-data")

    assert result.returncode == 0, result.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT v FROM t").fetchall() == [("before",)]
    conn.close()


# --- rollback ------------------------------------------------------------------------


def test_rollback_restores_bytes_and_modes(project: Path) -> None:
    originals = {name: ((project / name).read_bytes(), stat.S_IMODE((project / name).stat().st_mode)) for name in ("enrich.py", "pipeline.sh", ".env")}
    assert run_tool(project, "migrate").returncode == 0
    run_tool(project, "phase", "2")
    (project / "enrich.py").write_text("broken = True\n")
    (project / "enrich.py").chmod(0o600)
    (project / "pipeline.sh").chmod(0o600)
    (project / ".env").chmod(0o600)

    result = run_tool(project, "rollback")

    assert result.returncode == 0, result.stderr
    for name, (content, mode) in originals.items():
        assert (project / name).read_bytes() == content
        assert stat.S_IMODE((project / name).stat().st_mode) == mode
    flags = env_file(project / ".env.migration")
    assert flags["USE_ENHANCED"] == "false" and flags["ENABLE_PARALLEL"] == "false"
    assert "restored enrich.py" in result.stdout
    # the state before the rollback was saved and can itself be restored
    pre = max(backups(project), key=lambda b: manifest(b)["created_at"] + b.name)
    assert manifest(pre)["reason"].startswith("before rollback")
    assert (pre / "enrich.py").read_text() == "broken = True\n"
    undo = run_tool(project, "rollback", str(pre.relative_to(project)))
    assert undo.returncode == 0, undo.stderr
    assert (project / "enrich.py").read_text() == "broken = True\n"
    assert stat.S_IMODE((project / "enrich.py").stat().st_mode) == 0o600


@pytest.mark.parametrize("held", ["logs/.pipeline.lock", "data/sources.db.lock", "data/journal.db.lock"])
def test_rollback_waits_while_a_pipeline_run_holds_its_lock(project: Path, held: str) -> None:
    """The shell script's lock, the store's (an enrich script run by hand) and the journal's."""
    assert run_tool(project, "migrate").returncode == 0
    (project / "enrich.py").write_text("edited = True\n")
    lock = project / held
    lock.parent.mkdir(exist_ok=True)
    with open(lock, "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused = run_tool(project, "rollback")
    assert refused.returncode == 1
    assert "a pipeline run is active" in refused.stdout + refused.stderr
    assert (project / "enrich.py").read_text() == "edited = True\n"
    assert run_tool(project, "rollback").returncode == 0, "once the run is over the rollback goes ahead"
    assert (project / "enrich.py").read_text() != "edited = True\n"


def test_rollback_without_argument_uses_the_migrate_backup_again(project: Path) -> None:
    original = (project / "enrich.py").read_bytes()
    run_tool(project, "migrate", env={"MIGRATE_NOW": "2024-01-15T10:30:00"})
    (project / "enrich.py").write_text("edited\n")
    assert run_tool(project, "rollback", env={"MIGRATE_NOW": "2024-01-15T10:31:00"}).returncode == 0
    assert run_tool(project, "rollback", env={"MIGRATE_NOW": "2024-01-15T10:32:00"}).returncode == 0
    assert (project / "enrich.py").read_bytes() == original


def _tamper(project: Path, backup: Path, outside: Path) -> str:
    with open(backup / "enrich.py", "a") as handle:
        handle.write("# altered\n")
    return str(backup)


def _missing(project: Path, backup: Path, outside: Path) -> str:
    (backup / "enrich_rss.py").unlink()
    return str(backup)


def _no_manifest(project: Path, backup: Path, outside: Path) -> str:
    (backup / "MANIFEST.json").unlink()
    return str(backup)


def _traversal(project: Path, backup: Path, outside: Path) -> str:
    return "backups/../.."


def _absolute_elsewhere(project: Path, backup: Path, outside: Path) -> str:
    copy = outside / backup.name
    shutil.copytree(backup, copy)
    return str(copy)


def _dir_symlink_out(project: Path, backup: Path, outside: Path) -> str:
    copy = outside / backup.name
    shutil.copytree(backup, copy)
    link = project / "backups" / "migration_20990101_000000"
    link.symlink_to(copy, target_is_directory=True)
    return str(link)


def _file_symlink_out(project: Path, backup: Path, outside: Path) -> str:
    # same bytes as the real copy, so only the symlink itself can give it away
    target = outside / "enrich.py"
    shutil.copy2(backup / "enrich.py", target)
    (backup / "enrich.py").unlink()
    (backup / "enrich.py").symlink_to(target)
    return str(backup)


def _entry_escapes(path_for: str):
    def tamper(project: Path, backup: Path, outside: Path) -> str:
        victim = outside / "victim.txt"
        victim.write_text("attacker controlled\n")
        doc = manifest(backup)
        path = path_for.replace("{outside}", str(victim))
        doc["files"].append({"path": path, "size": victim.stat().st_size, "mode": "0644", "sha256": sha(victim)})
        (backup / "MANIFEST.json").write_text(json.dumps(doc))
        return str(backup)

    return tamper


def _listed_in_backup(rel: str, content: bytes, mode: str):
    """A file planted in the backup and listed in its manifest with the right size and hash."""
    def tamper(project: Path, backup: Path, outside: Path) -> str:
        copy = backup / rel
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(content)
        doc = manifest(backup)
        doc["files"] = [e for e in doc["files"] if e["path"] != rel]
        doc["files"].append({"path": rel, "size": len(content), "mode": mode, "sha256": hashlib.sha256(content).hexdigest()})
        (backup / "MANIFEST.json").write_text(json.dumps(doc))
        return str(backup)

    return tamper


def _unsafe_mode(mode: str):
    def tamper(project: Path, backup: Path, outside: Path) -> str:
        doc = manifest(backup)
        for entry in doc["files"]:
            if entry["path"] == "enrich.py":
                entry["mode"] = mode
        (backup / "MANIFEST.json").write_text(json.dumps(doc))
        return str(backup)

    return tamper


@pytest.mark.parametrize(
    "attack",
    [
        _listed_in_backup(".git/hooks/pre-commit", b"#!/bin/sh\necho owned\n", "0755"),
        _listed_in_backup("knowledge_pipeline/config.py", b"OWNED = True\n", "0644"),
        _unsafe_mode("4755"),
        _unsafe_mode("2755"),
        _unsafe_mode("0777"),
        _tamper,
        _missing,
        _no_manifest,
        _traversal,
        _absolute_elsewhere,
        _dir_symlink_out,
        _file_symlink_out,
        _entry_escapes("../../outside/victim.txt"),
        _entry_escapes("{outside}"),
    ],
    ids=["git-hook", "not-a-file-migrate-backs-up", "setuid", "setgid", "world-writable", "altered", "missing-file", "no-manifest", "dotdot", "absolute-elsewhere", "dir-symlink-out",
         "file-symlink-out", "entry-dotdot", "entry-absolute"],
)
def test_rollback_refuses_an_untrustworthy_backup_and_changes_nothing(project: Path, tmp_path: Path, attack) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    assert run_tool(project, "migrate").returncode == 0
    [backup] = backups(project)
    (project / "enrich.py").write_text("current\n")
    target = attack(project, backup, outside)
    before = tree(project)

    result = run_tool(project, "rollback", target)

    assert result.returncode == 1
    assert "rollback refused, nothing changed" in result.stderr
    assert tree(project) == before
    [refusal] = events(project, "migration_rollback")
    assert refusal["extra_fields"]["outcome"] == "refused"


def test_list_marks_each_backup(project: Path) -> None:
    run_tool(project, "migrate", env={"MIGRATE_NOW": "2024-01-15T10:30:00"})
    run_tool(project, "migrate", env={"MIGRATE_NOW": "2024-01-15T10:30:00"})
    first = backups(project)[0]
    with open(first / "pipeline.sh", "a") as handle:
        handle.write("echo injected\n")

    result = run_tool(project, "list")

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("✓ migration_20240115_103000_1")
    assert lines[1].startswith("✗ migration_20240115_103000 ")
    assert "pipeline.sh: checksum mismatch" in lines[1]


# --- phase ---------------------------------------------------------------------------

GUIDE = {
    1: {"USE_ENHANCED": "true", "ENABLE_PARALLEL": "false"},
    2: {"USE_ENHANCED": "true", "ENABLE_PARALLEL": "true", "PARALLEL_MAX_WORKERS": "3", "PARALLEL_RATE_LIMIT": "0.2"},
    3: {"USE_ENHANCED": "true", "ENABLE_PARALLEL": "true", "PARALLEL_MAX_WORKERS": "5", "PARALLEL_RATE_LIMIT": "0.1"},
}


@pytest.mark.parametrize("phase", [1, 2, 3])
def test_phase_writes_the_guides_values_and_keeps_other_lines(project: Path, phase: int) -> None:
    (project / ".env.migration").write_text("# my notes\nFOO=bar\nexport ENABLE_PARALLEL=false\n\nLOG_LEVEL=DEBUG\n")

    result = run_tool(project, "phase", str(phase))

    assert result.returncode == 0, result.stderr
    text = (project / ".env.migration").read_text()
    assert text.startswith("# my notes\nFOO=bar\n")
    assert env_file(project / ".env.migration") == {"FOO": "bar", "LOG_LEVEL": "DEBUG", **GUIDE[phase]}
    if phase > 1:
        assert "ENABLE_PARALLEL: false -> true" in result.stdout
    assert "USE_ENHANCED: (unset) -> true" in result.stdout


def test_phase_3_after_phase_1_runs_parallel(project: Path) -> None:
    run_tool(project, "phase", "1")
    run_tool(project, "phase", "3")
    assert env_file(project / ".env.migration") == GUIDE[3]
    assert "phase 3" in run_tool(project, "status").stdout


def test_phase_rejects_an_unknown_phase(project: Path) -> None:
    result = run_tool(project, "phase", "4")
    assert result.returncode == 2
    assert not (project / ".env.migration").exists()


# --- status --------------------------------------------------------------------------


def test_status_shows_values_with_their_origin_and_the_last_run(project: Path) -> None:
    (project / ".env").write_text("ENABLE_PARALLEL=false\nLOG_LEVEL=DEBUG\nENRICHER=local\n")
    (project / ".env.migration").write_text("USE_ENHANCED=true\nENABLE_PARALLEL=true\n")
    (project / "logs").mkdir()
    summary = {"event_type": "pipeline_summary", "metrics": {"items_total": 7, "items_processed": 6, "items_failed": 1,
                                                             "items_skipped": 0, "success_rate": 0.8571, "duration_seconds": 3.5,
                                                             "items_per_second": 2.0}}
    old = dict(summary, metrics=dict(summary["metrics"], items_processed=99))
    lines = [
        json.dumps({"timestamp": "t1", "level": "INFO", "logger": "x", "message": "", "extra_fields": old}),
        "not json at all {",
        json.dumps({"timestamp": "2024-01-15T10:30:00.000Z", "level": "INFO", "logger": "enrich_rss_enhanced",
                    "message": "", "extra_fields": summary}),
        '{"truncated": ',
    ]
    (project / "logs" / "pipeline.jsonl").write_text("\n".join(lines) + "\n")

    result = run_tool(project, "status", env={"PARALLEL_MAX_WORKERS": "7"})

    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.startswith("  ") and len(line.split()) == 3}
    assert rows["ENABLE_PARALLEL"][1:] == ["true", ".env.migration"]
    assert rows["LOG_LEVEL"][1:] == ["DEBUG", ".env"]
    assert rows["PARALLEL_MAX_WORKERS"][1:] == ["7", "environment"]
    assert rows["LOG_DIR"][1:] == ["logs", "default"]
    assert "Phase: custom (parallel, 7 workers" in result.stdout
    assert "Last run (2024-01-15T10:30:00.000Z, enrich_rss_enhanced): 6 enriched, 1 failed" in result.stdout


def test_status_reports_an_invalid_configuration(project: Path) -> None:
    (project / ".env.migration").write_text("ENABLE_PARALLEL=maybe\n")
    result = run_tool(project, "status")
    assert result.returncode == 1
    assert "Configuration: invalid: ENABLE_PARALLEL='maybe'" in result.stdout


# --- secrets -------------------------------------------------------------------------


def test_secrets_never_reach_output_or_log(project: Path) -> None:
    outputs = []
    for args in (("migrate", "--with-data"), ("phase", "2"), ("status",), ("list",), ("test", "--no-smoke"), ("rollback",), ("status",)):
        result = run_tool(project, *args)
        outputs += [result.stdout, result.stderr]
    (project / ".env").write_text(f"OPENAI_API_KEY={SECRETS[0]}\nNOTION_TOKEN={SECRETS[1]}\nENRICHER=bogus\n")
    for args in (("status",), ("migrate",), ("test", "--no-smoke")):
        result = run_tool(project, *args)
        outputs += [result.stdout, result.stderr]

    everything = "\n".join(outputs) + (project / "logs" / "pipeline.jsonl").read_text()
    everything += "".join((b / "MANIFEST.json").read_text() for b in backups(project))
    assert "OPENAI_API_KEY" in everything and "set" in everything
    for secret in SECRETS:
        assert secret not in everything


# --- test ----------------------------------------------------------------------------


def test_test_reports_a_missing_dependency(project: Path, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "feedparser.py").write_text('raise ImportError("simulated: feedparser is not installed")\n')

    result = run_tool(project, "test", "--no-smoke", env={"PYTHONPATH": str(shadow)})

    assert result.returncode == 1
    [line] = [l for l in result.stdout.splitlines() if l.startswith("✗ dependencies:")]
    assert "feedparser (import feedparser: ImportError: simulated: feedparser is not installed)" in line
    assert "pip install -r requirements.txt" in line
    assert "✓ python version" in result.stdout
    failed = [e for e in events(project, "migration_test")][-1]["extra_fields"]
    assert failed["ok"] is False


def test_test_reads_the_dependency_list_it_is_given(project: Path) -> None:
    requirements = project / "requirements-extra.txt"
    requirements.write_text("httpx>=0.27\nsurely-not-installed-pkg-4711>=1.0  # comment\n")

    result = run_tool(project, "test", "--no-smoke", "--requirements", str(requirements))

    assert result.returncode == 1
    assert "✗ dependencies: not importable: surely-not-installed-pkg-4711" in result.stdout


@pytest.mark.skipif(not (REPO / "enrich_rss_enhanced.py").is_file(), reason="enrich_rss_enhanced.py not written yet")
def test_test_passes_on_a_healthy_project(project: Path) -> None:
    user_store = project / "data" / "sources.db"

    result = run_tool(project, "test")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ smoke test, sequential: 3 generated items Enriched" in result.stdout
    assert "✓ smoke test, parallel: 3 generated items Enriched" in result.stdout
    assert not any(line.startswith("✗") for line in result.stdout.splitlines())
    assert not user_store.exists()


@pytest.mark.parametrize("command", [[], ["migrate"], ["test"], ["phase"], ["rollback"], ["status"], ["list"]])
def test_every_command_has_help(project: Path, command: list[str]) -> None:
    result = run_tool(project, *command, "--help")
    assert result.returncode == 0
    assert "exit codes" in result.stdout


# --- test --live against the fake services --------------------------------------------


def _live_env(notion, openai_fake, **extra: str) -> dict[str, str]:
    return {
        "NOTION_TOKEN": notion.token,
        "NOTION_SOURCES_DB": notion.database_id,
        "NOTION_BASE_URL": notion.url,
        "OPENAI_API_KEY": openai_fake.api_key,
        "OPENAI_BASE_URL": openai_fake.url,
        "ENRICHER": "local",
        "SOURCES_BACKEND": "sqlite",
        "RETRY_ATTEMPTS": "0",
        **extra,
    }


def test_live_checks_pass_against_healthy_services(project: Path) -> None:
    from tests.fakes.notion_server import start_fake_notion
    from tests.fakes.openai_server import start_fake_openai

    with start_fake_notion() as notion, start_fake_openai() as openai_fake:
        result = run_tool(project, "test", "--live", "--no-smoke", env=_live_env(notion, openai_fake))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ OpenAI (live): key accepted, model gpt-4.1-mini available" in result.stdout
    assert "✓ Notion (live): token accepted" in result.stdout
    for secret in (notion.token, openai_fake.api_key):
        assert secret not in result.stdout + result.stderr


def test_live_checks_name_what_is_wrong(project: Path) -> None:
    from tests.fakes.notion_server import start_fake_notion
    from tests.fakes.openai_server import start_fake_openai

    with start_fake_notion(database="original") as notion, start_fake_openai() as openai_fake:
        env = _live_env(notion, openai_fake, OPENAI_MODEL="gpt-does-not-exist")
        result = run_tool(project, "test", "--live", "--no-smoke", env=env)

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    [openai_line] = [line for line in lines if "OpenAI (live)" in line]
    assert openai_line.startswith("✗") and "model gpt-does-not-exist is not among" in openai_line
    [notion_line] = [line for line in lines if "Notion (live)" in line]
    assert notion_line.startswith("✗") and "needs changes" in notion_line


def test_live_checks_report_an_unreachable_service(project: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"OPENAI_API_KEY": "sk-unreachable-test-key-123", "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
           "RETRY_ATTEMPTS": "0", "ENRICHER": "local", "NOTION_TOKEN": ""}

    result = run_tool(project, "test", "--live", "--no-smoke", env=env)

    assert result.returncode == 1
    assert "✗ OpenAI (live): OpenAI connection failed" in result.stdout
    assert "– Notion (live): NOTION_TOKEN / NOTION_SOURCES_DB not set" in result.stdout
    assert "sk-unreachable-test-key-123" not in result.stdout + result.stderr
