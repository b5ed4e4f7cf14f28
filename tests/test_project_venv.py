"""Every `python3 ...` command of the README and the operations guide works as written after `make run`,
even when the `python3` on the PATH lacks the dependencies (they are in .venv): the entry points re-run
themselves under the project's .venv."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from knowledge_pipeline.project_venv import REQUIRED_MODULES

from .conftest import ROOT
from .fakes.web_server import FakeWebServer
from .test_cron import project_copy
from .test_requirements import _declared

DOCS = (ROOT / "README.md", ROOT / "docs" / "PARALLEL_PROCESSING.md")
# Commands whose documented outcome is not exit 0: the bare command prints its help, and the guide's
# rollback names an example backup that does not exist here.
EXPECTED = {
    "python3 -m knowledge_pipeline": (2, "usage: python3 -m knowledge_pipeline"),
    "python3 migrate_to_parallel.py rollback backups/migration_20240115_103000": (1, "rollback refused"),
}


def documented_commands() -> list[str]:
    commands: list[str] = []
    for doc in DOCS:
        text = doc.read_text()
        found = re.findall(r"^(python3 [^\n#]*)", text, re.M) + re.findall(r"`(python3 [^`]*)`", text)
        commands += [" ".join(c.split()) for c in found if "…" not in c]  # "every `python3 …` command"
    return list(dict.fromkeys(commands))


def base_interpreter() -> Path:
    """The interpreter .venv was made from (pyvenv.cfg's home), which has none of .venv's packages."""
    config = (ROOT / ".venv" / "pyvenv.cfg").read_text()
    home = re.search(r"^home\s*=\s*(.+)$", config, re.M)
    candidates = [Path(home.group(1).strip()) / "python3"] if home else []
    candidates.append(Path(getattr(sys, "_base_executable", sys.executable)))
    return next(path for path in candidates if path.exists())


def test_the_module_list_is_requirements_txt():
    distributions = metadata.packages_distributions()
    declared = {r.name.lower().replace("_", "-") for r in _declared()}
    provided = {module: {d.lower().replace("_", "-") for d in distributions.get(module.split(".")[0], [])} & declared
                for module in REQUIRED_MODULES}
    assert all(provided.values()), f"modules of no declared requirement: {[m for m, d in provided.items() if not d]}"
    assert set().union(*provided.values()) == declared


def test_the_documented_commands_are_the_ones_this_test_runs():
    assert "python3 enrich_rss.py --add URL" in documented_commands()
    assert "python3 migrate_to_parallel.py migrate" in documented_commands()
    assert "python3 -m knowledge_pipeline list" in documented_commands()


def test_every_documented_python3_command_works_under_a_python_without_the_dependencies(tmp_path: Path):
    python = base_interpreter()
    probe = subprocess.run([str(python), "-c", "import httpx"], capture_output=True, text=True)
    if probe.returncode == 0:
        pytest.skip(f"{python} has the dependencies installed: nothing to show")
    copy = project_copy(tmp_path)
    shutil.copy2(ROOT / "requirements.txt", copy / "requirements.txt")
    with (copy / ".env").open("a") as env_file:
        env_file.write("ALLOW_PRIVATE_URLS=true\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    made = subprocess.run([str(copy / "pipeline_enhanced.sh")], cwd=copy, env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)  # what `make run` leaves behind
    assert made.returncode == 0, made.stdout + made.stderr
    with FakeWebServer() as web:
        web.page("/later", "<html><head><title>Saved</title></head><body><article>"
                 + "<p>Anthropic and OpenAI shipped agent tooling, and analysts said budgets grow.</p>" * 5
                 + "</article></body></html>")
        for command in documented_commands():
            argv = shlex.split(command.replace(" URL", f" {web.url}/later"))
            done = subprocess.run([str(python), *argv[1:]], cwd=copy, env=env, capture_output=True, text=True,
                                  timeout=300, stdin=subprocess.DEVNULL)
            output = done.stdout + done.stderr
            code, expected = EXPECTED.get(command, (0, ""))
            assert "Traceback" not in output and "ModuleNotFoundError" not in output, f"{command}:\n{output}"
            assert done.returncode == code and expected in output, f"{command} exited {done.returncode}:\n{output}"


def test_without_a_venv_the_message_says_how_to_install(tmp_path: Path):
    python = base_interpreter()
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("enrich_rss.py",):
        (copy / name).write_text((ROOT / name).read_text())
    shutil.copytree(ROOT / "knowledge_pipeline", copy / "knowledge_pipeline",
                    ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([str(python), "enrich_rss.py", "--help"], cwd=copy, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"}, timeout=60)
    if "lacks" not in done.stderr and done.returncode == 0:
        pytest.skip(f"{python} has the dependencies installed: nothing to show")
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(f"enrich_rss.py: {python}") and "run `make install`" in line
