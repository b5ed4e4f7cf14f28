"""Builders of hostile and broken inputs that are too large (or too dangerous) to commit.

Each builder returns bytes or writes a file into a folder the test owns
(``tmp_path``). The small inputs are committed under tests/data/{feeds,pages,pdfs}
and rewritten by ``python -m tests.data.generate --fixtures``; the large ones
(a 10,000-entry feed, a 50 MB page, thousands of pages, a decompression bomb)
are built at test time. ``python -m tests.data.generate OUTDIR`` writes
everything for manual poking.

The PDFs are written by a tiny hand-made writer (``pdf_bytes``) so the tests
need nothing beyond the runtime dependencies; ``pypdf`` itself encrypts the
encrypted sample.
"""

from __future__ import annotations

import functools
import gzip
import io
import struct
import sys
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Iterator
from xml.sax.saxutils import escape

# --------------------------------------------------------------------- PDFs


def _pdf_string(text: str) -> bytes:
    raw = text.encode("latin-1", "replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def text_page_stream(lines: Iterable[str]) -> bytes:
    """A page content stream writing ``lines`` in Helvetica from the top of an A4 page."""
    ops = [b"BT /F1 11 Tf 14 TL 56 780 Td"]
    for line in lines:
        ops.append(_pdf_string(line) + b" Tj T*")
    ops.append(b"ET")
    return b"\n".join(ops)


def pdf_bytes(
    page_streams: Iterable[bytes | tuple[bytes, bytes]],
    *,
    title: str | None = None,
    extra_objects: dict[int, bytes] | None = None,
    page_resources: bytes | None = None,
) -> bytes:
    """A valid PDF whose pages have the given content streams.

    A stream given as ``(filter_name, data)`` is written with that filter
    (``b"/FlateDecode"``) and ``data`` as the already-encoded bytes.
    """
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}

    def obj(number: int, body: bytes) -> None:
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")

    streams = list(page_streams)
    font, pages_obj, info = 3, 2, 4
    first = 10 + len(extra_objects or {})
    kids = []
    resources = page_resources or b"<< /Font << /F1 %d 0 R >> >>" % font
    for i, stream in enumerate(streams):
        page, content = first + 2 * i, first + 2 * i + 1
        kids.append(b"%d 0 R" % page)
        if isinstance(stream, tuple):
            filt, data = stream
            obj(content, b"<< /Length %d /Filter %s >>\nstream\n" % (len(data), filt) + data + b"\nendstream")
        else:
            obj(content, b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        obj(
            page,
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Resources %s /Contents %d 0 R >>"
            % (pages_obj, resources, content),
        )
    obj(1, b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj)
    obj(pages_obj, b"<< /Type /Pages /Kids [" + b" ".join(kids) + b"] /Count %d >>" % len(kids))
    obj(font, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    obj(info, b"<< /Title " + _pdf_string(title or "") + b" /Producer (tests.data.generate) >>")
    for number, body in (extra_objects or {}).items():
        obj(number, body)
    size = max(offsets) + 1
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
    for number in range(1, size):
        if number in offsets:
            out.write(b"%010d 00000 n \n" % offsets[number])
        else:
            out.write(b"0000000000 65535 f \n")
    out.write(b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, info, xref))
    return out.getvalue()


def text_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    return pdf_bytes([text_page_stream(lines) for lines in pages], title=title)


def sample_pdf(title: str = "Sample report", pages: int = 3) -> bytes:
    """A small, ordinary PDF with a text layer."""
    return text_pdf(
        [
            [f"{title} - page {n}", f"Marker PAGE-{n:04d}.", "NVIDIA and Microsoft discussed inference costs."]
            for n in range(1, pages + 1)
        ],
        title=title,
    )


def many_pages_pdf(pages: int) -> bytes:
    """Thousands of tiny pages, each with a ``PAGE-nnnn`` marker."""
    return pdf_bytes([text_page_stream([f"PAGE-{n:04d}"]) for n in range(1, pages + 1)], title="Many pages")


def image_only_pdf() -> bytes:
    """Pages that only paint an image (a scan): no text operators at all."""
    width = height = 64
    pixels = zlib.compress(bytes(((x ^ y) & 0xFF) for y in range(height) for x in range(width)))
    image = (
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n" % (width, height, len(pixels))
        + pixels
        + b"\nendstream"
    )
    draw = b"q 400 0 0 400 100 300 cm /Im1 Do Q"
    return pdf_bytes(
        [draw, draw],
        title="Scanned letter",
        extra_objects={5: image},
        page_resources=b"<< /XObject << /Im1 5 0 R >> >>",
    )


def bomb_pdf(inflated_bytes: int = 400 * 1024 * 1024) -> bytes:
    """A small PDF whose one content stream inflates to ``inflated_bytes`` of spaces."""
    compressor = zlib.compressobj(9)
    chunk = b" " * (1024 * 1024)
    parts = []
    for _ in range(inflated_bytes // len(chunk)):
        parts.append(compressor.compress(chunk))
    parts.append(compressor.flush())
    return pdf_bytes([(b"/FlateDecode", b"".join(parts))], title="Looks harmless")


def encrypted_pdf(password: str = "s3cret", *, algorithm: str = "RC4-128", title: str = "Confidential") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(sample_pdf(title))))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def aes_encrypted_pdf(title: str = "Protected report") -> bytes:
    """AES-256 with an empty user password: anyone may open it (common for "protected" reports)."""
    return encrypted_pdf("", algorithm="AES-256", title=title)


def incremental_pdf(pages: int, title: str = "Long report") -> tuple[bytes, int]:
    """A PDF saved twice: first the page tree (promising every page) and page 1, then the other pages
    as an incremental update. Returns the bytes and where the first save ends."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets: dict[int, int] = {}

    def obj(number: int, body: bytes) -> None:
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")

    def page(n: int) -> None:
        stream = text_page_stream([f"{title} - page {n + 1}", f"Marker PAGE-{n + 1:04d}.",
                                   "Findings on inference costs and the adoption of AI agents."])
        obj(11 + 2 * n, b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        obj(10 + 2 * n, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                        b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (11 + 2 * n))

    def xref(numbers: list[int], size: int, prev: int | None) -> None:
        start = out.tell()
        out.write(b"xref\n0 1\n0000000000 65535 f \n")
        for number in numbers:
            out.write(b"%d 1\n%010d 00000 n \n" % (number, offsets[number]))
        previous = b" /Prev %d" % prev if prev is not None else b""
        out.write(b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R%s >>\nstartxref\n%d\n%%%%EOF\n"
                  % (size, previous, start))

    kids = b" ".join(b"%d 0 R" % (10 + 2 * n) for n in range(pages))
    obj(1, b"<< /Type /Catalog /Pages 2 0 R >>")
    obj(2, b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages)
    obj(3, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    obj(4, b"<< /Title " + _pdf_string(title) + b" >>")
    page(0)
    first = sorted(offsets)
    xref(first, 12, None)
    first_save = out.tell()
    first_xref = int(out.getvalue().rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
    for n in range(1, pages):
        page(n)
    xref([n for n in sorted(offsets) if n not in first], 10 + 2 * pages, first_xref)
    return out.getvalue(), first_save


def truncated_long_pdf(pages: int = 23) -> bytes:
    """A download cut short: the page tree promises ``pages`` pages, only the first one arrived whole."""
    data, first_save = incremental_pdf(pages, title="Cut short")
    return data[: first_save + (len(data) - first_save) // 3]


def corrupt_pdf() -> bytes:
    """A PDF header followed by garbage: no objects, no xref, no trailer."""
    return b"%PDF-1.7\n" + bytes((i * 7919) % 251 for i in range(4000)) + b"\n%%EOF\n"


def truncated_pdf() -> bytes:
    """The first 40% of a valid PDF: cut mid-object, xref and trailer gone."""
    data = sample_pdf("Cut short", pages=4)
    return data[: int(len(data) * 0.4)]


# -------------------------------------------------------------------- feeds


def rss_item(
    n: int, *, link: str | None = "default", title: str | None = "default", when: datetime | None = None
) -> str:
    when = when or datetime(2026, 11, 1, tzinfo=timezone.utc) - timedelta(minutes=n)
    parts = ["<item>"]
    if title is not None:
        parts.append(f"<title>{escape(f'Entry {n}' if title == 'default' else title)}</title>")
    if link is not None:
        parts.append(f"<link>{escape(f'https://example.com/posts/{n}' if link == 'default' else link)}</link>")
    parts.append(f"<pubDate>{when.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>")
    parts.append(f"<description>Short summary of entry {n}.</description></item>")
    return "".join(parts)


def rss_feed(items: Iterable[str], title: str = "Generated feed") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://example.com/</link><description>test</description>"
        + "".join(items)
        + "</channel></rss>\n"
    )


def huge_feed(entries: int = 10_000) -> bytes:
    """An RSS feed of ``entries`` distinct items (a few MB)."""
    return rss_feed(rss_item(n) for n in range(entries)).encode("utf-8")


def billion_laughs_feed(levels: int = 10) -> bytes:
    """The classic entity-expansion attack inside an RSS document."""
    entities = ['<!ENTITY lol0 "lol">']
    for level in range(1, levels):
        entities.append(f'<!ENTITY lol{level} "' + f"&lol{level - 1};" * 10 + '">')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE rss [\n'
        + "\n".join(entities)
        + f"\n]>\n<rss version=\"2.0\"><channel><title>Laughs</title><link>https://example.com/</link>"
        f"<description>x</description><item><title>&lol{levels - 1};</title>"
        "<link>https://example.com/laughs</link><description>boom</description></item></channel></rss>\n"
    ).encode("utf-8")


def external_entity_feed(target: Path) -> bytes:
    """An XXE attempt: an entity whose value is a local file."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{target}">]>\n'
        '<rss version="2.0"><channel><title>XXE</title><link>https://example.com/</link><description>x</description>'
        "<item><title>Leak &xxe;</title><link>https://example.com/xxe</link><description>&xxe;</description></item>"
        "</channel></rss>\n"
    ).encode("utf-8")


# ----------------------------------------------------- compression bombs


@functools.lru_cache(maxsize=2)
def _deflated_zeros(inflated: int) -> bytes:
    """Raw deflate of ``inflated`` zero bytes (~1/1000 of it), made piece by piece."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = bytes(4 * 1024 * 1024)
    pieces, left = [], inflated
    while left > 0:
        pieces.append(compressor.compress(block[: min(left, len(block))]))
        left -= len(block)
    pieces.append(compressor.flush())
    return b"".join(pieces)


def _zeros_checksum(inflated: int, function) -> int:
    block, value, left = bytes(4 * 1024 * 1024), function(b""), inflated
    while left > 0:
        value = function(block[: min(left, len(block))], value)
        left -= len(block)
    return value


def zeros_bomb(coding: str, inflated: int = 1024 * 1024 * 1024) -> bytes:
    """A response body of ``inflated`` zeros compressed with ``coding``.

    ``gzip``, ``deflate`` (zlib-wrapped), ``raw-deflate``, ``gzip-gzip``
    (gzip of that gzip, to serve as ``Content-Encoding: gzip, gzip``), ``br``
    and ``zstd`` (these two need the brotli / zstandard modules).
    """
    if coding in ("gzip", "gzip-gzip"):
        raw = _deflated_zeros(inflated)
        trailer = struct.pack("<II", _zeros_checksum(inflated, zlib.crc32), inflated & 0xFFFFFFFF)
        body = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + raw + trailer
        return gzip.compress(body, 9) if coding == "gzip-gzip" else body
    if coding == "deflate":
        adler = struct.pack(">I", _zeros_checksum(inflated, zlib.adler32))
        return b"\x78\xda" + _deflated_zeros(inflated) + adler
    if coding == "raw-deflate":
        return _deflated_zeros(inflated)
    block = bytes(4 * 1024 * 1024)
    if coding == "br":
        import brotli

        compressor = brotli.Compressor(quality=5)
        pieces = [compressor.process(block) for _ in range(inflated // len(block))]
        return b"".join(pieces) + compressor.finish()
    if coding == "zstd":
        import zstandard

        compressor = zstandard.ZstdCompressor(level=3).compressobj()
        pieces = [compressor.compress(block) for _ in range(inflated // len(block))]
        return b"".join(pieces) + compressor.flush()
    raise ValueError(f"unknown coding {coding}")


# -------------------------------------------------------------------- pages


def huge_html_chunks(total_bytes: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """An endless-looking article page, produced piece by piece (never whole in memory)."""
    head = b"<html><head><title>Huge</title></head><body><article>"
    paragraph = b"<p>Microsoft and OpenAI signed another agreement about compute. </p>\n"
    yield head
    sent = len(head)
    block = paragraph * max(chunk // len(paragraph), 1)
    while sent < total_bytes:
        piece = block[: total_bytes - sent]
        sent += len(piece)
        yield piece


ARTICLE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Chip export rules reshape AI supply chains</title></head>
<body>
<header><nav><a href="/">Home</a> | <a href="/markets">Markets</a> | <a href="/subscribe">Subscribe</a></nav></header>
<main><article>
<h1>Chip export rules reshape AI supply chains</h1>
<p>NVIDIA said on Tuesday that new export rules would change how it ships data-centre accelerators to
customers in several regions, and that it expects demand to remain ahead of supply well into next year.</p>
<p>Analysts said the rules mostly affect the highest-end parts. Cloud providers such as Microsoft and Google
have already moved some capacity to regions where the rules do not apply, according to people familiar
with the plans.</p>
<p>The company also said its software stack now runs on more partner systems, which lowers the cost of
switching for customers who build on its platform.</p>
</article></main>
<footer><p>Copyright 2026 Example News. All rights reserved.</p></footer>
</body></html>
"""

NO_TEXT_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title></title>
<script>window.__APP__ = {"route": "/story/1"};</script><style>body{margin:0}</style></head>
<body><div id="root"></div><noscript></noscript>
<script src="/static/app.3f9a.js"></script></body></html>
"""


def truncated_feed(cut_inside_entry: bool = True) -> bytes:
    """A feed cut off by a dropped connection: mid-entry (3 complete entries first) or in the header."""
    whole = rss_feed(rss_item(n) for n in range(1, 6)).encode("utf-8")
    if cut_inside_entry:
        return whole[: whole.index(b"<item>", whole.index(b"Entry 4") - 200) + 40]
    return whole[:120]


def wrong_encoding_feed() -> bytes:
    """Declared UTF-8, actually Windows-1252 (a common CMS bug)."""
    return rss_feed([rss_item(1, title="Café crème: naïve résumé")]).encode("cp1252")


def missing_declaration_feed() -> bytes:
    """No XML declaration at all (so UTF-8 by the XML rules), Latin-1 bytes inside."""
    text = rss_feed([rss_item(1, title="Zürich AI summit")])
    return text.split("\n", 1)[1].encode("latin-1")


def non_utf8_feed() -> bytes:
    """Declared UTF-8 with invalid byte sequences and control bytes in the title."""
    text = rss_feed([rss_item(1, title="BADBYTES"), rss_item(2)]).encode("utf-8")
    return text.replace(b"BADBYTES", b"Bad \xff\xfe bytes \x00\x07 here")


def bad_entries_feed() -> bytes:
    """Entries a capture must refuse or repair, around two good ones."""
    items = [
        rss_item(1, link=None),
        rss_item(2, link="javascript:alert(document.cookie)"),
        rss_item(3, link="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="),
        rss_item(4, link="file:///etc/passwd"),
        rss_item(5, link="  "),
        rss_item(6, title=None),
        rss_item(7, title="<b>Bold</b> &amp; <script>alert(1)</script>markup"),
    ]
    return rss_feed(items, title="Bad entries").encode("utf-8")


def duplicate_feeds() -> tuple[bytes, bytes]:
    """Two feeds sharing two stories under differently written links."""
    one = [
        rss_item(1),
        rss_item(2, link="https://example.com/shared/a"),
        rss_item(3, link="https://example.com/shared/b"),
    ]
    two = [
        rss_item(4, link="HTTPS://EXAMPLE.COM/shared/a?utm_source=two#comments"),
        rss_item(5, link="https://example.com:443/shared/b"),
        rss_item(6),
    ]
    return rss_feed(one, "One").encode("utf-8"), rss_feed(two, "Two").encode("utf-8")


def write_fixtures(root: Path) -> None:
    """The small committed inputs under tests/data (rerun to regenerate them)."""
    dup_one, dup_two = duplicate_feeds()
    files = {
        "feeds/truncated.xml": truncated_feed(),
        "feeds/truncated_header.xml": truncated_feed(cut_inside_entry=False),
        "feeds/wrong_encoding.xml": wrong_encoding_feed(),
        "feeds/missing_declaration.xml": missing_declaration_feed(),
        "feeds/non_utf8.xml": non_utf8_feed(),
        "feeds/billion_laughs.xml": billion_laughs_feed(),
        "feeds/bad_entries.xml": bad_entries_feed(),
        "feeds/duplicates_one.xml": dup_one,
        "feeds/duplicates_two.xml": dup_two,
        "pages/article.html": ARTICLE_HTML.encode("utf-8"),
        "pages/no_text.html": NO_TEXT_HTML.encode("utf-8"),
        "pdfs/corrupt.pdf": corrupt_pdf(),
        "pdfs/truncated.pdf": truncated_pdf(),
        "pdfs/encrypted.pdf": encrypted_pdf(),
        "pdfs/image_only.pdf": image_only_pdf(),
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def write_all(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    files = {
        "pdfs/sample.pdf": sample_pdf(),
        "pdfs/many_pages.pdf": many_pages_pdf(3000),
        "pdfs/image_only.pdf": image_only_pdf(),
        "pdfs/bomb.pdf": bomb_pdf(),
        "pdfs/encrypted.pdf": encrypted_pdf(),
        "pdfs/aes_encrypted.pdf": aes_encrypted_pdf(),
        "pdfs/corrupt.pdf": corrupt_pdf(),
        "pdfs/truncated.pdf": truncated_pdf(),
        "feeds/huge.xml": huge_feed(),
        "feeds/billion_laughs.xml": billion_laughs_feed(),
        "pages/article.html": ARTICLE_HTML.encode(),
        "pages/no_text.html": NO_TEXT_HTML.encode(),
    }
    for name, data in files.items():
        path = outdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"{path} {len(data)} bytes")


if __name__ == "__main__":
    if sys.argv[1:] == ["--fixtures"]:
        write_fixtures(Path(__file__).resolve().parent)
    else:
        write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "generated"))
