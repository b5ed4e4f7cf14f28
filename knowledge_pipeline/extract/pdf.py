"""PDF to text with pypdf, bounded in pages, decompressed bytes and parsing work.

PDFs come from a folder anyone may drop files into and from the web, so they
are read as untrusted: pypdf's decompression limits are tightened for the
duration of one extraction (a content stream that inflates beyond
``MAX_STREAM_BYTES`` is refused as a likely decompression bomb), at most
``max_pages`` pages are read, and every pypdf failure becomes one
:class:`ExtractionError` with a short reason.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from pathlib import Path
from typing import Iterator

from pypdf import PdfReader, apply_configuration
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PyPdfError

from ..errors import ExtractionError
from .html import looks_like_html

MAX_STREAM_BYTES = 32 * 1024 * 1024
_LIMITS = {
    "zlib_maximum_output_length": MAX_STREAM_BYTES,
    "lzw_maximum_output_length": MAX_STREAM_BYTES,
    "run_length_maximum_output_length": MAX_STREAM_BYTES,
    "brotli_maximum_output_length": MAX_STREAM_BYTES,
    "jbig2_maximum_output_length": MAX_STREAM_BYTES,
    "array_based_stream_maximum_output_length": MAX_STREAM_BYTES,
    "image_maximum_buffer_size": MAX_STREAM_BYTES,
    "maximum_declared_stream_length": MAX_STREAM_BYTES,
    "stream_decoding_work_maximum_length": 4 * MAX_STREAM_BYTES,
}
_PAGE_ERRORS = (
    PyPdfError, ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, OverflowError,
    DependencyError, NotImplementedError, ArithmeticError, LookupError,
)
_BOMB = "PDF content inflates beyond the decompression limit (possible decompression bomb)"


def pdf_to_text(data: bytes, max_pages: int) -> str:
    """The text of the first ``max_pages`` pages of a PDF, pages separated by blank lines.

    Raises ExtractionError: "corrupt PDF: ...", "not a PDF (looks like HTML)", "encrypted PDF",
    "no extractable text ..." (image-only or scanned) or the decompression
    bomb reason.
    """
    if not data.strip():
        raise ExtractionError("corrupt PDF: empty file")
    if b"%PDF-" not in data[:1024] and looks_like_html(data):
        raise ExtractionError("not a PDF (looks like HTML)")
    with apply_configuration(**_LIMITS):
        reader = _open(data)
        pages = [text for text in _page_texts(reader, max_pages) if text]
    if not pages:
        raise ExtractionError("no extractable text in PDF (image-only or scanned?)")
    return "\n\n".join(pages)


def pdf_metadata(source: bytes | str | Path) -> tuple[str | None, date | None]:
    """Title and creation date from the PDF's metadata; (None, None) when unreadable or encrypted."""
    try:
        with apply_configuration(**_LIMITS):
            reader = PdfReader(io.BytesIO(source) if isinstance(source, bytes) else source, strict=False)
            if reader.is_encrypted or reader.metadata is None:
                return None, None
            title = reader.metadata.title
            created = reader.metadata.creation_date
    except Exception:  # noqa: BLE001 - metadata is optional; an unreadable file simply has none
        return None, None
    return _clean_title(title), created.date() if isinstance(created, datetime) else None


def _clean_title(title: object) -> str | None:
    if not isinstance(title, str):
        return None
    title = " ".join(title.replace("\x00", "").split())[:300]
    return title if title and title.lower() not in {"untitled", "untitled document"} else None


def _open(data: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not _decrypts_without_password(reader):
            raise ExtractionError("encrypted PDF (a password is needed to read it)")
        len(reader.pages)
    except ExtractionError:
        raise
    except FileNotDecryptedError:
        raise ExtractionError("encrypted PDF (a password is needed to read it)") from None
    except LimitReachedError:
        raise ExtractionError(_BOMB) from None
    except DependencyError as exc:
        raise ExtractionError(_missing_dependency(exc)) from None
    except (PyPdfError, ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        raise ExtractionError(f"corrupt PDF: {_reason(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - any other library error is this file's problem, in one line
        raise ExtractionError(f"unreadable PDF: {type(exc).__name__}: {_reason(exc)}") from None
    return reader


def _missing_dependency(exc: DependencyError) -> str:
    """pypdf's DependencyError as what to install (AES needs cryptography, listed in requirements.txt)."""
    if "AES" in str(exc) or "cryptography" in str(exc):
        return "encrypted PDF (AES) needs the cryptography package: pip install -r requirements.txt"
    return f"PDF needs a component that is not installed: {_reason(exc)}"


def _decrypts_without_password(reader: PdfReader) -> bool:
    """Whether the empty user password opens it; DependencyError (AES without cryptography) propagates."""
    try:
        return bool(reader.decrypt(""))
    except (PyPdfError, NotImplementedError, ValueError):
        return False


def _page_texts(reader: PdfReader, max_pages: int) -> Iterator[str]:
    """Text of each page read; a page that cannot be parsed is skipped, a bomb stops everything."""
    try:
        count = min(len(reader.pages), max_pages)
    except LimitReachedError:
        raise ExtractionError(_BOMB) from None
    except (PyPdfError, ValueError, KeyError, RecursionError) as exc:
        raise ExtractionError(f"corrupt PDF: {_reason(exc)}") from None
    failures: list[str] = []
    for index in range(count):
        try:
            text = reader.pages[index].extract_text() or ""
        except LimitReachedError:
            raise ExtractionError(_BOMB) from None
        except DependencyError as exc:
            if index == 0 and reader.is_encrypted:
                raise ExtractionError(_missing_dependency(exc)) from None
            failures.append(_reason(exc))
            continue
        except _PAGE_ERRORS as exc:
            failures.append(_reason(exc))
            continue
        yield text.replace("\x00", "").strip()
    if failures and len(failures) == count:
        raise ExtractionError(f"corrupt PDF: no page could be read ({failures[0]})")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
