"""Google Drive folder capture and reading, with the real google-auth against the fake Drive server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from knowledge_pipeline.capture.drive import DriveReader, capture_drive, drive_file
from knowledge_pipeline.errors import ConfigError, ItemError
from knowledge_pipeline.models import SourceType
from tests.data.generate import sample_pdf, text_pdf
from tests.extract.support import all_items, make_gateway, make_settings, make_telemetry, open_store
from tests.fakes.drive_server import FakeDrive


@pytest.fixture
def drive():
    with FakeDrive() as server:
        yield server


def settings_for(drive: FakeDrive, key: Path, folder: str, **env: str):
    return make_settings(google_app_credentials=str(key), drive_folder_id=folder,
                         google_drive_base_url=drive.url, **env)


def capture(tmp_path: Path, settings, *, dry_run: bool = False, sleeps: list | None = None):
    telemetry, recorder = make_telemetry()

    async def run():
        async with open_store(tmp_path) as store:
            known = await store.known_hashes()
            report = await capture_drive(settings=settings, store=store, telemetry=telemetry, known_hashes=known,
                                         dry_run=dry_run, gateway=make_gateway(telemetry, retries=3, sleeps=sleeps))
            return report, await all_items(store)

    report, items = asyncio.run(run())
    return report, items, recorder


def read(settings, item, sleeps: list | None = None):
    telemetry, recorder = make_telemetry()

    async def run():
        reader = DriveReader(settings, make_gateway(telemetry, retries=3, sleeps=sleeps))
        try:
            return await reader.read(item)
        except ItemError as exc:
            return exc
        finally:
            await reader.close()

    return asyncio.run(run()), recorder


def test_pdfs_of_a_shared_folder_become_pdf_items_with_their_drive_url(tmp_path, drive):
    account = drive.service_account(tmp_path)
    folder = drive.folder("Reports", shared_with=account.email)
    q3 = drive.file("Q3_market_report.pdf", sample_pdf("Q3 market report"), parent=folder)
    drive.file("notes.txt", b"not a pdf", parent=folder, mime_type="text/plain")
    drive.file("old.pdf", sample_pdf("old"), parent=folder, trashed=True)
    report, items, recorder = capture(tmp_path, settings_for(drive, account.key_file, folder))
    assert (report.found, report.added, report.errors) == (1, 1, [])
    (item,) = items
    assert item.source_type is SourceType.PDF and item.title == "Q3 market report"
    assert item.pdf_path == f"https://drive.google.com/file/d/{q3}/view?usp=drivesdk"
    assert recorder.of("capture_complete")[0]["kind"] == "drive"
    listing = next(r for r in drive.api_requests() if r["path"] == "/drive/v3/files")
    assert listing["params"]["supportsAllDrives"] == "true" and listing["params"]["includeItemsFromAllDrives"] == "true"
    assert f"'{folder}' in parents" in listing["params"]["q"] and "md5Checksum" in listing["params"]["fields"]
    assert all(r["params"].get("alt") != "media" for r in drive.api_requests()), "nothing downloaded at capture"


def test_a_file_already_captured_is_recognised_by_id_and_md5_without_downloading(tmp_path, drive):
    account = drive.service_account(tmp_path)
    folder = drive.folder("Reports", shared_with=account.email)
    file_id = drive.file("a.pdf", sample_pdf("A"), parent=folder)
    settings = settings_for(drive, account.key_file, folder)
    capture(tmp_path, settings)
    report, items, _ = capture(tmp_path, settings)
    assert (report.found, report.added, report.duplicates) == (1, 0, 1) and len(items) == 1
    drive.files[file_id].content = sample_pdf("A, second version")
    report, items, _ = capture(tmp_path, settings)
    assert report.added == 1 and len(items) == 2, "a new version (new md5Checksum) is captured again"
    assert not [r for r in drive.api_requests() if r["params"].get("alt") == "media"]


def test_pagination_subfolders_and_shared_drives(tmp_path, drive):
    drive.max_page_size = 2
    account = drive.service_account(tmp_path)
    folder = drive.folder("Team", shared_with=account.email, drive_id="0AShared")
    sub = drive.folder("2026", parent=folder)
    deeper = drive.folder("Q4", parent=sub)
    for n in range(5):
        drive.file(f"top{n}.pdf", sample_pdf(f"top {n}"), parent=folder)
    drive.file("sub.pdf", sample_pdf("sub"), parent=sub)
    drive.file("deep.pdf", sample_pdf("deep"), parent=deeper)
    flat, _, _ = capture(tmp_path / "flat", settings_for(drive, account.key_file, folder))
    assert flat.added == 5, "pageToken followed over three pages of a shared-drive folder"
    deep, items, _ = capture(tmp_path / "deep", settings_for(drive, account.key_file, folder, drive_recursive="true"))
    assert deep.added == 7 and {i.title for i in items} >= {"sub", "deep"}
    assert any("pageToken" in r["params"] for r in drive.api_requests())


def test_google_docs_are_exported_as_pdf_only_when_asked(tmp_path, drive):
    account = drive.service_account(tmp_path)
    folder = drive.folder("Docs", shared_with=account.email)
    doc = drive.doc("Strategy memo", text_pdf([["Strategy memo: agents in production need evaluation."]]),
                    parent=folder)
    without, _, _ = capture(tmp_path / "a", settings_for(drive, account.key_file, folder))
    assert without.found == 0
    settings = settings_for(drive, account.key_file, folder, drive_export_docs="true")
    report, items, _ = capture(tmp_path / "b", settings)
    assert report.added == 1 and items[0].pdf_path.startswith(f"https://docs.google.com/document/d/{doc}/")
    text, _ = read(settings, items[0])
    assert "agents in production need evaluation" in text
    assert any(r["path"].endswith(f"/{doc}/export") and r["params"]["mimeType"] == "application/pdf"
               for r in drive.api_requests())


def test_enrichment_downloads_by_file_id_within_max_download_mb(tmp_path, drive):
    account = drive.service_account(tmp_path)
    folder = drive.folder("Reports", shared_with=account.email)
    small = drive.file("small.pdf", text_pdf([["Inference prices fell by half this quarter."]]), parent=folder)
    big = drive.file("big.pdf", sample_pdf("big", pages=40) + b"%" * 1_200_000, parent=folder)
    settings = settings_for(drive, account.key_file, folder, max_download_mb="1")
    _, items, _ = capture(tmp_path, settings)
    by_id = {drive_file(i.pdf_path)[0]: i for i in items}
    text, _ = read(settings, by_id[small])
    assert "Inference prices fell by half" in text
    error, _ = read(settings, by_id[big])
    assert isinstance(error, ItemError) and "larger than MAX_DOWNLOAD_MB (1 MB)" in str(error)
    media = [r for r in drive.api_requests() if r["params"].get("alt") == "media"]
    assert {r["path"].rsplit("/", 1)[1] for r in media} == {small, big}


def test_the_token_grant_is_a_jwt_signed_by_the_key_and_reused(tmp_path, drive):
    account = drive.service_account(tmp_path)
    folder = drive.folder("Reports", shared_with=account.email)
    drive.file("a.pdf", sample_pdf("A"), parent=folder)
    capture(tmp_path, settings_for(drive, account.key_file, folder))
    assert len(drive.api_requests("/token")) == 1, "one token for every request of the run"
    assert all(r["authorization"].startswith("Bearer ya29.") for r in drive.api_requests())
    (tmp_path / "other").mkdir()
    forged = drive.service_account(tmp_path / "other", email="intruder@kp-test.iam.gserviceaccount.com")
    info = json.loads(forged.key_file.read_text())
    info["private_key_id"] = "0" * 40  # a key id Google does not know for this account: signature refused
    forged.key_file.write_text(json.dumps(info))
    report, _, recorder = capture(tmp_path / "other", settings_for(drive, forged.key_file, folder))
    assert report.added == 0 and "Google refused the service-account key of intruder@" in report.errors[0]
    assert "Invalid JWT Signature" in report.errors[0] and "create a new JSON key" in report.errors[0]
    assert "PRIVATE KEY" not in json.dumps(recorder.events)


def test_a_folder_not_shared_names_the_service_account_email(tmp_path, drive):
    account = drive.service_account(tmp_path)
    folder = drive.folder("Private")
    report, items, recorder = capture(tmp_path, settings_for(drive, account.key_file, folder))
    assert items == [] and len(report.errors) == 1
    assert f"share it with {account.email}" in report.errors[0]
    assert recorder.of("capture_error")[0]["kind"] == "drive"


def test_drive_api_not_enabled_says_how_to_enable_it(tmp_path, drive):
    account = drive.service_account(tmp_path)
    folder = drive.folder("Reports", shared_with=account.email)
    drive.api_disabled = True
    report, _, _ = capture(tmp_path, settings_for(drive, account.key_file, folder))
    (error,) = report.errors
    assert "Google Drive API is not enabled" in error and "accessNotConfigured" in error
    assert "https://console.developers.google.com/apis/api/drive.googleapis.com/overview?project=" in error
    assert "\n" not in error


@pytest.mark.parametrize("status, reason", [(403, "userRateLimitExceeded"), (403, "rateLimitExceeded"),
                                            (429, "rateLimitExceeded")])
def test_quota_errors_are_retried_with_retry_after(tmp_path, drive, status, reason):
    account = drive.service_account(tmp_path)
    folder = drive.folder("Reports", shared_with=account.email)
    drive.file("a.pdf", sample_pdf("A"), parent=folder)
    drive.fail_next(2, status=status, reason=reason, retry_after=7)
    sleeps: list[float] = []
    report, items, recorder = capture(tmp_path, settings_for(drive, account.key_file, folder), sleeps=sleeps)
    assert report.added == 1 and report.errors == []
    retries = recorder.of("api_call_retry")
    assert [r["wait"] for r in retries] == [7, 7] and {r["service"] for r in retries} == {"drive"}
    assert 7 in sleeps


def test_quota_that_never_recovers_is_one_line(tmp_path, drive):
    account = drive.service_account(tmp_path)
    folder = drive.folder("Reports", shared_with=account.email)
    drive.fail_next(10, status=403, reason="userRateLimitExceeded")
    report, _, _ = capture(tmp_path, settings_for(drive, account.key_file, folder), sleeps=[])
    assert "Drive API quota exceeded (userRateLimitExceeded)" in report.errors[0]


def test_reading_a_file_no_longer_shared_fails_that_item_with_the_email(tmp_path, drive):
    account = drive.service_account(tmp_path)
    folder = drive.folder("Reports", shared_with=account.email)
    drive.file("a.pdf", sample_pdf("A"), parent=folder)
    settings = settings_for(drive, account.key_file, folder)
    _, items, _ = capture(tmp_path, settings)
    drive.files[folder].shared_with.clear()
    error, _ = read(settings, items[0])
    assert isinstance(error, ItemError) and f"no longer shared with {account.email}" in str(error)


def test_drive_links_are_recognised_and_nothing_else():
    assert drive_file("https://drive.google.com/file/d/1AbCdEfGhIjKlMn/view?usp=drivesdk") == ("1AbCdEfGhIjKlMn", False)
    assert drive_file("https://docs.google.com/document/d/1AbCdEfGhIjKlMn/edit") == ("1AbCdEfGhIjKlMn", True)
    assert drive_file("https://drive.google.com/open?id=1AbCdEfGhIjKlMn") == ("1AbCdEfGhIjKlMn", False)
    for other in ("/tmp/a.pdf", "https://example.com/file/d/1AbCdEfGhIjKlMn/view", "file:///x.pdf", None):
        assert drive_file(other) is None


@pytest.mark.parametrize("content, expected", [
    (None, "no such file"),
    ("not json", "not a JSON key file"),
    (json.dumps({"type": "authorized_user", "client_id": "x", "refresh_token": "y"}),
     "a authorized_user credential, not a service-account key"),
    (json.dumps({"installed": {"client_id": "x"}}), "a OAuth client credential, not a service-account key"),
    (json.dumps({"type": "service_account", "client_email": "a@b"}), "lacks private_key, token_uri"),
])
def test_key_file_mistakes_are_one_line_config_errors(tmp_path, content, expected):
    key = tmp_path / "key.json"
    if content is not None:
        key.write_text(content)
    with pytest.raises(ConfigError) as raised:
        make_settings(google_app_credentials=str(key), drive_folder_id="1AbCdEfGhIjKlMnOp")
    message = str(raised.value)
    assert expected in message and "GOOGLE_APP_CREDENTIALS" in message and "Add key > JSON" in message


def test_folder_id_accepts_the_folder_url_and_needs_a_key(tmp_path, drive):
    account = drive.service_account(tmp_path)
    settings = make_settings(google_app_credentials=str(account.key_file),
                             drive_folder_id="https://drive.google.com/drive/folders/1AbCdEfGhIjKlMnOp?usp=sharing")
    assert settings.drive_folder_id == "1AbCdEfGhIjKlMnOp"
    with pytest.raises(ConfigError, match="GOOGLE_APP_CREDENTIALS.*required when DRIVE_FOLDER_ID is set"):
        make_settings(drive_folder_id="1AbCdEfGhIjKlMnOp")
    with pytest.raises(ConfigError, match="DRIVE_FOLDER_ID"):
        make_settings(drive_folder_id="not a folder!")


def test_a_broken_private_key_or_a_file_id_instead_of_a_folder_is_one_line(tmp_path, drive):
    account = drive.service_account(tmp_path)
    folder = drive.folder("Reports", shared_with=account.email)
    pdf = drive.file("a.pdf", sample_pdf("A"), parent=folder)
    report, _, _ = capture(tmp_path / "a", settings_for(drive, account.key_file, pdf))
    assert "is a file ('a.pdf'), not a folder" in report.errors[0]
    info = json.loads(account.key_file.read_text())
    info["private_key"] = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"
    account.key_file.write_text(json.dumps(info))
    report, _, recorder = capture(tmp_path / "b", settings_for(drive, account.key_file, folder))
    assert "the private key cannot be read" in report.errors[0] and "download a new JSON key" in report.errors[0]
    assert "not a key" not in json.dumps(recorder.events)


def test_a_grant_signed_with_another_key_is_refused_by_its_signature(tmp_path, drive):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    account = drive.service_account(tmp_path)
    folder = drive.folder("Reports", shared_with=account.email)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = json.loads(account.key_file.read_text())
    info["private_key"] = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()).decode()
    account.key_file.write_text(json.dumps(info))
    report, _, _ = capture(tmp_path, settings_for(drive, account.key_file, folder))
    assert "(invalid_grant: Invalid JWT Signature.)" in report.errors[0]
    assert drive.api_requests() == [], "no Drive request without a token"


class TokenEndpointDown(FakeDrive):
    def grant(self, form):
        return 503, {"error": "backend"}


def test_a_token_endpoint_down_costs_its_own_retries_once_per_request_not_multiplied(tmp_path):
    with TokenEndpointDown() as drive:
        account = drive.service_account(tmp_path)
        folder = drive.folder("Reports", shared_with=account.email)
        drive.file("a.pdf", sample_pdf("A"), parent=folder)
        report, items, recorder = capture(tmp_path, settings_for(drive, account.key_file, folder), sleeps=[])
        assert items == [] and "Google token endpoint HTTP 503" in report.errors[0]
        assert len(drive.api_requests("/token")) == 4, "1 + RETRY_ATTEMPTS (3) token requests, not 4 x 4"
        assert drive.api_requests() == []
        assert len(recorder.of("api_call_error")) == 1


def test_a_revoked_token_is_replaced_by_the_retry(tmp_path, drive):
    account = drive.service_account(tmp_path)
    folder = drive.folder("Reports", shared_with=account.email)
    drive.file("a.pdf", sample_pdf("A"), parent=folder)
    settings = settings_for(drive, account.key_file, folder)
    _, items, _ = capture(tmp_path, settings)
    telemetry, _ = make_telemetry()

    async def run():
        reader = DriveReader(settings, make_gateway(telemetry, retries=3, sleeps=[]))
        try:
            first = await reader.read(items[0])
            drive.tokens.clear()  # revoked: the next request answers 401
            second = await reader.read(items[0])
            return first, second
        finally:
            await reader.close()

    first, second = asyncio.run(run())
    assert first == second and "A" in second
    assert len(drive.api_requests("/token")) == 3, "the capture's, the reader's, and one after the 401"
