import pytest

from knowledge_pipeline.migration.manifest import FileEntry, Manifest, ManifestError, safe_relative


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "", ".", "a\\..\\b", "x\x00"])
def test_paths_that_could_escape_are_rejected(path: str) -> None:
    with pytest.raises(ManifestError):
        safe_relative(path)


@pytest.mark.parametrize("path", ["enrich.py", ".env", "data/sources.db", "./pipeline.sh"])
def test_plain_relative_paths_are_accepted(path: str) -> None:
    assert not safe_relative(path).is_absolute()


def test_manifest_round_trips_with_octal_modes() -> None:
    manifest = Manifest("2024-01-15T10:30:00+00:00", "1.0.0", "migrate", (FileEntry("enrich.py", 3, 0o755, "ab"),))
    text = manifest.to_json()
    assert '"mode": "0755"' in text
    assert Manifest.from_json(text) == manifest


@pytest.mark.parametrize("text", ["{", "[]", '{"format": 2}', '{"format": 1, "created_at": "x", "files": [{"path": "a"}]}'])
def test_malformed_manifests_are_errors(text: str) -> None:
    with pytest.raises(ManifestError):
        Manifest.from_json(text)
