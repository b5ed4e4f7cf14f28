"""PDF to text with pypdf: text, page cap, and one clear reason for every unreadable PDF."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from knowledge_pipeline.errors import ExtractionError
from knowledge_pipeline.extract.pdf import pdf_metadata, pdf_to_text
from tests.data import generate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pdfs"


def test_example_pdfs_give_their_text():
    data = (EXAMPLES / "inference_platforms_briefing.pdf").read_bytes()
    text = pdf_to_text(data, max_pages=500)
    assert text.startswith("Vendor Briefing: Inference Platforms Compared")
    for words in ("OpenAI and Anthropic offer", "NVIDIA accelerators", "Re-evaluate self-hosting"):
        assert words in text


def test_pages_are_separated_by_a_blank_line():
    text = pdf_to_text(generate.text_pdf([["first page"], ["second page"]]), max_pages=10)
    assert text == "first page\n\nsecond page"


def test_at_most_max_pages_are_read():
    text = pdf_to_text(generate.many_pages_pdf(120), max_pages=10)
    assert "PAGE-0010" in text and "PAGE-0011" not in text


def test_an_encrypted_pdf_is_reported():
    with pytest.raises(ExtractionError, match=r"^encrypted PDF"):
        pdf_to_text(generate.encrypted_pdf(), max_pages=10)


def test_a_pdf_encrypted_with_an_empty_user_password_is_read():
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(generate.sample_pdf("Open to all"))))
    writer.encrypt(user_password="", owner_password="owner-only", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    assert "Open to all - page 1" in pdf_to_text(out.getvalue(), max_pages=10)


def test_an_aes_encrypted_pdf_with_an_empty_user_password_is_read():
    assert "Protected report - page 2" in pdf_to_text(generate.aes_encrypted_pdf(), max_pages=10)


def test_a_missing_crypto_library_is_one_clear_reason(tmp_path):
    """pypdf without cryptography raises DependencyError for AES; the item says what to install."""
    pdf = tmp_path / "aes.pdf"
    pdf.write_bytes(generate.aes_encrypted_pdf())
    program = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from knowledge_pipeline.errors import ExtractionError\n"
        "from knowledge_pipeline.extract.pdf import pdf_to_text\n"
        "try:\n"
        f"    pdf_to_text(open({str(pdf)!r}, 'rb').read(), max_pages=10)\n"
        "except ExtractionError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "encrypted PDF (AES) needs the cryptography package: pip install -r requirements.txt"
    )


def test_any_other_library_error_is_one_line(monkeypatch):
    import knowledge_pipeline.extract.pdf as pdf_module

    class Broken:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("unexpected state\nin the parser")

    monkeypatch.setattr(pdf_module, "PdfReader", Broken)
    with pytest.raises(ExtractionError) as caught:
        pdf_to_text(generate.sample_pdf(), max_pages=10)
    assert str(caught.value) == "unreadable PDF: RuntimeError: unexpected state in the parser"


def test_an_image_only_pdf_has_no_extractable_text():
    with pytest.raises(ExtractionError, match=r"^no extractable text"):
        pdf_to_text(generate.image_only_pdf(), max_pages=10)


@pytest.mark.parametrize(
    "data",
    [generate.corrupt_pdf(), generate.truncated_pdf(), b"", b"   "],
    ids=["garbage", "truncated", "empty", "blank"],
)
def test_unreadable_pdfs_are_corrupt(data):
    with pytest.raises(ExtractionError, match=r"^corrupt PDF: "):
        pdf_to_text(data, max_pages=10)


@pytest.mark.parametrize(
    "data",
    [
        b"<html>not a pdf</html>",
        b"\xef\xbb\xbf\n  <!DOCTYPE html>\n<html lang=en><head><title>Sign in</title></head><body>Log in</body></html>",
        b"<?xml version='1.0'?><html xmlns='http://www.w3.org/1999/xhtml'><body>Moved</body></html>",
        b"<head><meta charset=utf-8><title>Error 403</title></head><body>Forbidden</body>",
    ],
    ids=["bare", "bom-doctype", "xhtml", "no-html-tag"],
)
def test_an_html_page_named_pdf_is_not_a_pdf(data):
    with pytest.raises(ExtractionError) as caught:
        pdf_to_text(data, max_pages=10)
    assert str(caught.value) == "not a PDF (looks like HTML)"


def test_metadata_title_and_creation_date(tmp_path):
    path = EXAMPLES / "board_memo_ai_strategy.pdf"
    assert pdf_metadata(path) == ("Board Memo: AI Strategy Roadmap 2027", date(2026, 11, 17))
    assert pdf_metadata(generate.sample_pdf("From bytes"))[0] == "From bytes"
    assert pdf_metadata(generate.text_pdf([["x"]], title="untitled")) == (None, None)
    assert pdf_metadata(generate.corrupt_pdf()) == (None, None)
    assert pdf_metadata(generate.encrypted_pdf()) == (None, None)
