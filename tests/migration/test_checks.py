from pathlib import Path

from knowledge_pipeline.migration.checks import (
    Check,
    CheckFailed,
    CheckResult,
    CheckSkipped,
    dependencies,
    module_name,
    requirement_names,
    run_checks,
)


def test_every_check_runs_and_failures_are_one_line_without_secrets() -> None:
    def fails() -> str:
        raise CheckFailed("bad key sk-live-123456\nsecond line")

    def skipped() -> str:
        raise CheckSkipped("not configured")

    def crashes() -> str:
        raise RuntimeError("boom")

    results = run_checks(
        [Check("a", fails), Check("b", lambda: "fine"), Check("c", skipped), Check("d", crashes)],
        secrets=("sk-live-123456",),
    )

    assert results == (
        CheckResult("a", False, "bad key *** second line"),
        CheckResult("b", True, "fine"),
        CheckResult("c", None, "not configured"),
        CheckResult("d", False, "RuntimeError: boom"),
    )


def test_requirement_names_follow_includes_and_ignore_options(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("httpx>=0.27,<1  # pinned\n--index-url https://example.invalid\n")
    (tmp_path / "dev.txt").write_text("-r base.txt\npython-dotenv[cli]>=1.0\n\n# comment\npytest ; python_version >= '3.11'\n")
    assert requirement_names(tmp_path / "dev.txt") == ["httpx", "python-dotenv", "pytest"]


def test_module_names_for_distributions_that_differ() -> None:
    assert module_name("python-dotenv") == "dotenv"
    assert module_name("python_json_logger") == "pythonjsonlogger"
    assert module_name("notion-client") == "notion_client"
    assert module_name("lxml_html_clean") == "lxml_html_clean"
    assert module_name("prometheus_client") == "prometheus_client"
    assert module_name("PyYAML") == "yaml"
    assert module_name("tenacity") == "tenacity"


def test_dependencies_check_of_the_project_requirements_passes() -> None:
    [result] = run_checks([dependencies(Path(__file__).resolve().parents[2] / "requirements.txt")])
    assert result.ok, result.detail
