"""Content-codings (``Content-Encoding``) decoded with a bound on the output of every step.

httpx decodes a whole network read at once, so a few kilobytes of nested gzip
can expand to gigabytes before any size cap is looked at. The fetcher reads
the raw bytes instead and decodes them here: one layer at most (``gzip``,
``deflate``, and ``br``/``zstd`` when ``brotli`` >= 1.2 / ``zstandard`` >= 0.22
are installed), each call returning at most about ``limit`` bytes and keeping the
input it has not used yet. Anything else is refused with a one-line reason.
"""

from __future__ import annotations

import zlib
from typing import Any, Protocol


def _usable_brotli() -> Any:
    """The ``brotli`` module if it can bound its output (brotli >= 1.2), else None."""
    try:
        import brotli
    except ImportError:
        return None
    # Decompressor.can_accept_more_data and process(output_buffer_limit=) came with 1.2;
    # without them no step's output can be bounded.
    if not hasattr(getattr(brotli, "Decompressor", None), "can_accept_more_data"):
        return None
    return brotli


def _usable_zstandard() -> Any:
    """The ``zstandard`` module if its decompressobj reads across frames (zstandard >= 0.22), else None."""
    try:
        import zstandard
    except ImportError:
        return None
    try:
        zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
    except (AttributeError, TypeError):
        return None
    return zstandard


# Optional: br/zstd are neither asked for nor accepted unless a recent enough module is installed.
brotli = _usable_brotli()
zstandard = _usable_zstandard()

# zstd cannot stop at an output size; its densest block (RLE) yields 128 KiB
# from 4 bytes, so input is fed in slices small enough for the room left.
_ZSTD_MAX_RATIO = 32 * 1024
_ZSTD_MAX_BLOCK = 128 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


# A compressed body that reaches the size cap while inflating more than this is
# refused as a bomb; honest HTML, feeds and JSON compress 3-20x.
MAX_INFLATE_RATIO = 100
_CHUNK = 64 * 1024
_RAW_CHUNK = 16 * 1024


class ContentCodingError(ValueError):
    """A response whose content-coding is refused or cannot be decoded; the message is the reason."""

    def __init__(self, what: str, problem: str) -> None:
        self.what = what
        self.problem = problem
        super().__init__(f"{what}: {problem}")

    def at(self, where: str) -> str:
        """The reason naming the URL it came from."""
        return f"{self.what} at {where}: {self.problem}"


class Decoder(Protocol):
    def decode(self, data: bytes, limit: int) -> bytes:
        """Take ``data`` and return at most about ``limit`` (>= 1) bytes of output; keep the rest of the input."""
        ...

    @property
    def pending(self) -> bool:
        """Whether input taken earlier may still yield output (call ``decode(b"", limit)`` again)."""
        ...

    def finish(self, limit: int) -> bytes:
        """At the end of the input: what output is still held back, at most about ``limit`` bytes."""
        ...

    @property
    def buffered(self) -> int:
        """Input bytes taken but not decoded yet (so the ones decoded are known)."""
        ...


def supported_codings() -> tuple[str, ...]:
    codings = ["gzip", "deflate"]
    if brotli is not None:
        codings.append("br")
    if zstandard is not None:
        codings.append("zstd")
    return tuple(codings)


def accept_encoding() -> str:
    """The ``Accept-Encoding`` request header: only the codings decoded here."""
    return ", ".join(supported_codings())


def decoder_for(content_encoding: str | None) -> Decoder | None:
    """The decoder of a ``Content-Encoding`` header, None for none/identity; ContentCodingError if refused."""
    header = " ".join((content_encoding or "").split())
    codings = [c.strip().lower() for c in header.split(",") if c.strip() and c.strip().lower() != "identity"]
    if not codings:
        return None
    if len(codings) > 1:
        raise ContentCodingError(f"refused Content-Encoding {header!r}", "more than one content-coding layer")
    coding = codings[0]
    if coding in ("gzip", "x-gzip"):
        return _GzipDecoder()
    if coding == "deflate":
        return _DeflateDecoder()
    if coding == "br" and brotli is not None:
        return _BrotliDecoder()
    if coding == "zstd" and zstandard is not None:
        return _ZstdDecoder()
    raise ContentCodingError(
        f"refused Content-Encoding {header!r}", f"unsupported content-coding (decoded: {accept_encoding()})"
    )


class _TailDecoder:
    """A decoder that keeps the input it has not decoded yet in ``_tail``."""

    _tail = b""

    @property
    def pending(self) -> bool:
        return bool(self._tail)

    @property
    def buffered(self) -> int:
        return len(self._tail)


class _ZlibDecoder(_TailDecoder):
    """zlib's ``max_length``: exact output bound, unused input kept in ``unconsumed_tail``."""

    def __init__(self, wbits: int, name: str) -> None:
        self._wbits = wbits
        self._name = name
        self._inflater = zlib.decompressobj(wbits)
        self._tail = b""

    def decode(self, data: bytes, limit: int) -> bytes:
        source = self._tail + data if self._tail else data
        self._tail = b""
        try:
            out = self._inflater.decompress(source, max(limit, 1))
        except zlib.error as exc:
            raise ContentCodingError(f"corrupt {self._name} content", str(exc)) from None
        self._tail = self._inflater.unconsumed_tail
        if self._inflater.eof and self._inflater.unused_data:
            self._next_member(self._inflater.unused_data)
        return out

    def _next_member(self, rest: bytes) -> None:
        """Data after the end of the stream: another gzip member, or trailing bytes (ignored, as browsers do)."""
        self._inflater = zlib.decompressobj(self._wbits)
        self._tail = rest if self._name == "gzip" and _GZIP_MAGIC.startswith(rest[:2]) else b""

    def finish(self, limit: int) -> bytes:
        try:
            return self._inflater.flush(max(limit, 1))
        except zlib.error as exc:
            raise ContentCodingError(f"corrupt {self._name} content", str(exc)) from None


class _GzipDecoder(_ZlibDecoder):
    def __init__(self) -> None:
        super().__init__(16 + zlib.MAX_WBITS, "gzip")


class _DeflateDecoder(_ZlibDecoder):
    """HTTP ``deflate`` is zlib-wrapped, but some servers send raw deflate: told by the first bytes."""

    def __init__(self) -> None:
        super().__init__(zlib.MAX_WBITS, "deflate")
        self._started = False

    def decode(self, data: bytes, limit: int) -> bytes:
        if not self._started and data:
            self._started = True
            if not _is_zlib_header(data):
                self._wbits = -zlib.MAX_WBITS
                self._inflater = zlib.decompressobj(self._wbits)
        return super().decode(data, limit)


def _is_zlib_header(data: bytes) -> bool:
    if len(data) < 2:
        return True
    return data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


class _BrotliDecoder:
    """brotli's ``output_buffer_limit`` lets the buffer end up to twice the limit: half is asked for."""

    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()
        self._waiting: list[bytes] = []
        self._full = False

    def decode(self, data: bytes, limit: int) -> bytes:
        if data:
            self._waiting.append(data)
        asked = max(limit // 2, 1)
        source = b""
        if self._decompressor.can_accept_more_data() and self._waiting:
            source = b"".join(self._waiting)
            self._waiting.clear()
        try:
            out = self._decompressor.process(source, output_buffer_limit=asked)
        except brotli.error as exc:
            raise ContentCodingError("corrupt br content", str(exc)) from None
        self._full = len(out) >= asked
        return out

    @property
    def pending(self) -> bool:
        return bool(self._waiting) or self._full or not self._decompressor.can_accept_more_data()

    @property
    def buffered(self) -> int:
        return sum(map(len, self._waiting))

    def finish(self, limit: int) -> bytes:
        return b""


class _ZstdDecoder(_TailDecoder):
    def __init__(self) -> None:
        self._decompressor = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
        self._tail = b""

    def decode(self, data: bytes, limit: int) -> bytes:
        source = self._tail + data if self._tail else data
        step = max(1, (max(limit, 1) - _ZSTD_MAX_BLOCK) // _ZSTD_MAX_RATIO)
        piece, self._tail = source[:step], source[step:]
        try:
            return self._decompressor.decompress(piece) if piece else b""
        except zstandard.ZstdError as exc:
            raise ContentCodingError("corrupt zstd content", str(exc)) from None

    def finish(self, limit: int) -> bytes:
        return b""


async def read_capped(response: Any, cap: int) -> CappedBody:
    """An httpx response's body, decoded and kept up to ``cap`` bytes; ContentCodingError if refused.

    Reads ``aiter_raw()``, so the response must come from a client that did
    not decode it (every streamed httpx response qualifies).
    """
    coding = response.headers.get("content-encoding")
    body = CappedBody(cap, decoder_for(coding), " ".join((coding or "").split()))
    async for raw in response.aiter_raw(_RAW_CHUNK if body.decoder else _CHUNK):
        if body.take(raw):
            return body
    body.finish()
    return body


class CappedBody:
    """A response body kept up to ``cap`` bytes, decoded with every step's output bounded by the room left."""

    def __init__(self, cap: int, decoder: Decoder | None, coding: str = "") -> None:
        self.cap = cap
        self.decoder = decoder
        self.coding = coding
        self.data = bytearray()
        self.raw_bytes = 0
        self.truncated = False

    @property
    def bomb(self) -> bool:
        """The cap was reached while inflating more than MAX_INFLATE_RATIO times the input used."""
        if not self.truncated or self.decoder is None:
            return False
        return len(self.data) > MAX_INFLATE_RATIO * (self.raw_bytes - self.decoder.buffered)

    def bomb_reason(self, where: str, cap: int) -> str:
        return (f"refused {where}: its {self.coding} content inflates more than {MAX_INFLATE_RATIO}x, "
                f"past MAX_DOWNLOAD_MB ({cap / 1048576:g} MB): a possible decompression bomb")

    def take(self, raw: bytes) -> bool:
        """Add a raw chunk; True once the cap is reached (read no further)."""
        self.raw_bytes += len(raw)
        if self.decoder is None:
            return self._keep(raw)
        piece = self.decoder.decode(raw, self._room + 1)
        while not self._keep(piece):
            if not self.decoder.pending:
                return False
            piece = self.decoder.decode(b"", self._room + 1)
        return True

    def finish(self) -> None:
        if self.decoder is not None:
            self._keep(self.decoder.finish(self._room + 1))

    @property
    def _room(self) -> int:
        return self.cap - len(self.data)

    def _keep(self, piece: bytes) -> bool:
        room = self._room
        if len(piece) > room:
            self.data += piece[:room]
            self.truncated = True
            return True
        self.data += piece
        return False
