"""PDF folder capture: each new file (by content hash) becomes one PDF Inbox item."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import threading
import time
from datetime import date
from pathlib import Path

from knowledge_pipeline.capture.pdfs import capture_pdfs
from knowledge_pipeline.models import SourceType, Status
from tests.data.generate import aes_encrypted_pdf, corrupt_pdf, text_pdf
from tests.extract.support import all_items, make_settings, make_telemetry, open_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pdfs"


def capture(tmp_path: Path, pdf_dir: Path, *, dry_run: bool = False):
    settings = make_settings(pdf_dir=str(pdf_dir))
    telemetry, recorder = make_telemetry()

    async def run():
        async with open_store(tmp_path) as store:
            known = await store.known_hashes()
            report = await capture_pdfs(settings, store, telemetry, known_hashes=known, dry_run=dry_run)
            return report, await all_items(store)

    report, items = asyncio.run(run())
    return report, items, recorder


def example_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    shutil.copytree(EXAMPLES, folder)
    return folder


def test_example_pdfs_become_inbox_items(tmp_path):
    folder = example_folder(tmp_path)
    report, items, recorder = capture(tmp_path, folder)
    assert (report.found, report.added, report.duplicates, report.errors) == (3, 3, 0, [])
    assert {i.source_type for i in items} == {SourceType.PDF} and {i.status for i in items} == {Status.INBOX}
    memo = next(i for i in items if i.title == "Board Memo: AI Strategy Roadmap 2027")
    path = folder / "board_memo_ai_strategy.pdf"
    assert memo.pdf_path == str(path.resolve())
    assert memo.hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert memo.created_date == date(2026, 11, 17)
    assert recorder.of("capture_complete")[0]["added"] == 3


def test_a_second_run_and_a_renamed_copy_add_nothing(tmp_path):
    folder = example_folder(tmp_path)
    capture(tmp_path, folder)
    shutil.copy(folder / "board_memo_ai_strategy.pdf", folder / "copy of memo.pdf")
    report, items, _ = capture(tmp_path, folder)
    assert (report.found, report.added, report.duplicates) == (4, 0, 4)
    assert len(items) == 3


def test_only_pdf_files_of_the_folder_itself_are_taken(tmp_path):
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    (folder / "UPPER.PDF").write_bytes(text_pdf([["upper case extension"]], title="Upper"))
    (folder / "notes.txt").write_text("not a pdf")
    (folder / "sub" / "nested.pdf").write_bytes(text_pdf([["nested"]], title="Nested"))
    report, items, _ = capture(tmp_path, folder)
    assert [i.title for i in items] == ["Upper"] and report.found == 1


def test_without_a_metadata_title_the_file_name_is_the_title(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    sentence = "this page holds one long sentence of body text and no heading at all, " * 2
    (folder / "quarterly_ai_review.pdf").write_bytes(text_pdf([[sentence]], title=""))
    (folder / "broken_scan.pdf").write_bytes(corrupt_pdf())
    _, items, _ = capture(tmp_path, folder)
    assert sorted(i.title for i in items) == ["broken scan", "quarterly ai review"]


def test_a_junk_metadata_title_gives_way_to_the_first_heading_then_the_file_name(tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    heading = [["3", "Inference Platforms Compared", "OpenAI and Anthropic offer hosted models."]]
    for n, junk in enumerate(["Title", "Binder1.pdf", "Microsoft Word - Test.docx", "Model"]):
        (folder / f"file_{n}.pdf").write_bytes(text_pdf([[f"Heading {n} of the report"], ["more"]], title=junk))
    (folder / "aes.pdf").write_bytes(aes_encrypted_pdf("Protected report"))
    (folder / "good.pdf").write_bytes(text_pdf(heading, title="Vendor Briefing 2026"))
    (folder / "no_heading_either.pdf").write_bytes(text_pdf([["12", "https://example.com"]], title="Untitled"))
    _, items, _ = capture(tmp_path, folder)
    assert sorted(i.title for i in items) == [
        "Heading 0 of the report", "Heading 1 of the report", "Heading 2 of the report", "Heading 3 of the report",
        "Protected report", "Vendor Briefing 2026", "no heading either",
    ]


def test_a_missing_pdf_dir_is_reported_not_a_crash(tmp_path):
    report, items, recorder = capture(tmp_path, tmp_path / "nowhere")
    assert report.errors == [f"PDF_DIR {tmp_path / 'nowhere'} does not exist"]
    assert items == [] and recorder.of("capture_error")[0]["error"] == report.errors[0]
    assert recorder.of("capture_complete")[0]["found"] == 0


def test_a_pdf_dir_that_is_a_file_is_reported(tmp_path):
    target = tmp_path / "file.pdf"
    target.write_bytes(b"%PDF-1.4")
    report, _, _ = capture(tmp_path, target)
    assert report.errors and "cannot be read" in report.errors[0]


def test_dry_run_adds_nothing(tmp_path):
    report, items, _ = capture(tmp_path, example_folder(tmp_path), dry_run=True)
    assert items == [] and len(report.would_add) == 3 and report.added == 0


@contextlib.contextmanager
def released_after(fifo: Path, seconds: float):
    """Should a reader block on ``fifo``, open its other end after ``seconds`` so the test ends and fails."""
    done = threading.Event()

    def release() -> None:
        if not done.wait(seconds):
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def test_only_regular_files_inside_the_folder_are_taken_the_rest_is_rejected_with_a_reason(tmp_path):
    """Links out (a private PDF, /etc/shadow, a device), a FIFO and a folder: doors, not files."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    private = tmp_path / "private"
    private.mkdir()
    secret = private / "salaries.pdf"
    secret.write_bytes(text_pdf([["CONFIDENTIAL salary review"]], title="Salaries"))
    (folder / "report.pdf").write_bytes(text_pdf([["public"]], title="Public report"))
    (folder / "alias.pdf").symlink_to(folder / "report.pdf")
    (folder / "salaries.pdf").symlink_to(secret)
    (folder / "shadow.pdf").symlink_to("/etc/shadow")
    (folder / "null.pdf").symlink_to("/dev/null")
    (folder / "dir.pdf").mkdir()
    os.mkfifo(folder / "pipe.pdf")
    with released_after(folder / "pipe.pdf", 10):
        started = time.monotonic()
        report, items, recorder = capture(tmp_path, folder)
        elapsed = time.monotonic() - started
    assert elapsed < 5, "a FIFO blocked the capture"
    assert [i.title for i in items] == ["Public report"]
    assert items[0].pdf_path == str((folder / "report.pdf").resolve())
    assert (report.found, report.added, report.duplicates, report.rejected) == (7, 1, 1, 5)
    why = {error.split(":", 1)[0]: error for error in report.errors}
    assert set(why) == {"salaries.pdf", "shadow.pdf", "null.pdf", "pipe.pdf", "dir.pdf"}
    for name in ("salaries.pdf", "shadow.pdf", "null.pdf"):
        assert "outside PDF_DIR" in why[name]
    assert "not a regular file (FIFO)" in why["pipe.pdf"] and "not a regular file (directory)" in why["dir.pdf"]
    complete = recorder.of("capture_complete")[0]
    assert complete["rejected"] == 5 and complete["errors"] == report.errors
    assert len(recorder.of("entry_rejected")) == 5
