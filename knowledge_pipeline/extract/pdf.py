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
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from pypdf import PdfReader, apply_configuration
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PyPdfError

from ..errors import ExtractionError
from ..models import PartialRead
from .html import looks_like_html
from .titles import best_title, looks_like_title, normalize

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
_MAX_DECLARED_PAGES = 1_000_000  # a larger /Count is garbage, not a promise of pages
_BOMB = "PDF content inflates beyond the decompression limit (possible decompression bomb)"


@dataclass(frozen=True)
class PdfText:
    """The text of a PDF and how much of it was read.

    ``pages_total`` is what the document says it has (its page tree's
    count, when a damaged or cut-off file has fewer pages left);
    ``pages_read`` the pages whose text was read.
    """

    text: str
    pages_read: int
    pages_total: int
    causes: tuple[str, ...] = ()
    title: str | None = None

    def partial_read(self) -> PartialRead | None:
        """The warning to keep with the item when not every page was read."""
        if self.pages_read >= self.pages_total:
            return None
        return PartialRead("pages", self.pages_read, self.pages_total, "; ".join(self.causes))


def pdf_to_text(data: bytes, max_pages: int) -> str:
    """The text of the first ``max_pages`` pages of a PDF, pages separated by blank lines."""
    return read_pdf(data, max_pages).text


def read_pdf(data: bytes, max_pages: int) -> PdfText:
    """The text of the first ``max_pages`` pages of a PDF, and how many of its pages that is.

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
        found, declared = _page_counts(reader)
        texts, failed = _page_texts(reader, min(found, max_pages))
        title = _metadata_title(reader)
    pages = [text for text in texts if text]
    if not pages:
        raise ExtractionError("no extractable text in PDF (image-only or scanned?)")
    causes = [
        cause for cause, applies in (
            ("damaged or truncated PDF", declared > found),
            (f"{failed} could not be parsed", failed > 0),
            ("MAX_PDF_PAGES", found > max_pages),
        ) if applies
    ]
    text = "\n\n".join(pages)
    return PdfText(text, min(found, max_pages) - failed, max(found, declared), tuple(causes), best_title(title, text))


def pdf_metadata(source: bytes | str | Path) -> tuple[str | None, date | None]:
    """A title and the creation date, cheaply (for capture); (None, None) when unreadable.

    The title is the metadata title when it looks like one, else the first
    heading line of the first page; None leaves the file name to the caller.
    Encrypted files are read only when the empty password opens them.
    """
    try:
        with apply_configuration(**_LIMITS):
            reader = PdfReader(io.BytesIO(source) if isinstance(source, bytes) else source, strict=False)
            if reader.is_encrypted and not _decrypts_without_password(reader):
                return None, None
            metadata = reader.metadata
            title = _metadata_title(reader)
            if not looks_like_title(title) and len(reader.pages):
                title = best_title(None, reader.pages[0].extract_text() or "")
            created = metadata.creation_date if metadata is not None else None
    except Exception:  # noqa: BLE001 - metadata is optional; an unreadable file simply has none
        return None, None
    return normalize(title) or None, created.date() if isinstance(created, datetime) else None


def _metadata_title(reader: PdfReader) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata is not None else None
    except Exception:  # noqa: BLE001 - a broken Info dictionary is no title
        return None
    return title.replace("\x00", "") if isinstance(title, str) and looks_like_title(title) else None


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


def _page_counts(reader: PdfReader) -> tuple[int, int]:
    """Pages found, and pages the page tree declares (more when objects are missing from a cut-off file)."""
    try:
        found = len(reader.pages)
    except LimitReachedError:
        raise ExtractionError(_BOMB) from None
    except (PyPdfError, ValueError, KeyError, RecursionError) as exc:
        raise ExtractionError(f"corrupt PDF: {_reason(exc)}") from None
    try:
        declared = int(reader.trailer["/Root"]["/Pages"]["/Count"])
    except Exception:  # noqa: BLE001 - a damaged page tree has no trustworthy count; the pages found are it
        declared = found
    return found, declared if found <= declared <= _MAX_DECLARED_PAGES else found


def _page_texts(reader: PdfReader, count: int) -> tuple[list[str], int]:
    """Text of each of the first ``count`` pages and how many could not be parsed (skipped); a bomb stops all."""
    texts: list[str] = []
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
        texts.append(text.replace("\x00", "").strip())
    if failures and len(failures) == count:
        raise ExtractionError(f"corrupt PDF: no page could be read ({failures[0]})")
    return texts, len(failures)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
