from pathlib import Path

import stat

from knowledge_pipeline.migration.envfile import Change, read_env_file, update_env_file


def test_update_replaces_assignments_in_place_and_appends_new_ones(tmp_path: Path) -> None:
    path = tmp_path / ".env.migration"
    path.write_text("# keep me\nexport ENABLE_PARALLEL=false\nOTHER='x y'\n")
    path.chmod(0o640)

    changes = update_env_file(path, {"ENABLE_PARALLEL": "true", "PARALLEL_MAX_WORKERS": "3"})

    assert changes == (Change("ENABLE_PARALLEL", "false", "true"), Change("PARALLEL_MAX_WORKERS", None, "3"))
    assert path.read_text() == "# keep me\nexport ENABLE_PARALLEL=true\nOTHER='x y'\nPARALLEL_MAX_WORKERS=3\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert read_env_file(path)["OTHER"] == "x y"


def test_no_change_leaves_the_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / ".env.migration"
    path.write_text("USE_ENHANCED=true\n")
    before = path.stat().st_mtime_ns
    assert update_env_file(path, {"USE_ENHANCED": "true"}) == ()
    assert path.stat().st_mtime_ns == before


def test_a_new_file_is_private_and_gets_the_header(tmp_path: Path) -> None:
    path = tmp_path / ".env.migration"
    update_env_file(path, {"USE_ENHANCED": "true"}, header="# header\n")
    assert path.read_text() == "# header\nUSE_ENHANCED=true\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
