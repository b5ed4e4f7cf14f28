"""Content-codings decoded layer by layer with every step's output bounded (decompression bombs)."""

from __future__ import annotations

import gzip
import zlib

import pytest

from knowledge_pipeline.extract.decoding import ContentCodingError, accept_encoding, decoder_for
from tests.data.generate import zeros_bomb

MB = 1024 * 1024
TEXT = ("<p>Microsoft and OpenAI signed another agreement about compute.</p>\n" * 5000).encode()
brotli = pytest.importorskip("brotli")
zstandard = pytest.importorskip("zstandard")

ENCODED = {
    "gzip": gzip.compress(TEXT),
    "x-gzip": gzip.compress(TEXT),
    "deflate": zlib.compress(TEXT),
    "br": brotli.compress(TEXT),
    "zstd": zstandard.ZstdCompressor().compress(TEXT),
}


def decode_all(coding: str, data: bytes, *, limit: int = 1 << 30, chunk: int = 1000) -> tuple[bytes, int]:
    """Everything the decoder yields for ``data`` fed in chunks; and the largest single step."""
    decoder = decoder_for(coding)
    assert decoder is not None
    out, largest = bytearray(), 0
    for start in range(0, len(data), chunk):
        piece = decoder.decode(data[start:start + chunk], limit)
        largest = max(largest, len(piece))
        out += piece
        while decoder.pending:
            piece = decoder.decode(b"", limit)
            largest = max(largest, len(piece))
            out += piece
    out += decoder.finish(limit)
    return bytes(out), largest


@pytest.mark.parametrize("coding", sorted(ENCODED))
def test_each_supported_coding_decodes_in_pieces(coding):
    decoded, _ = decode_all(coding, ENCODED[coding], limit=4096)
    assert decoded == TEXT


def test_raw_deflate_without_the_zlib_wrapper_is_decoded_too():
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert decode_all("deflate", raw.compress(TEXT) + raw.flush())[0] == TEXT


def test_two_gzip_members_are_one_body_and_trailing_bytes_are_ignored():
    assert decode_all("gzip", gzip.compress(b"first ") + gzip.compress(b"second"))[0] == b"first second"
    assert decode_all("gzip", gzip.compress(b"body") + b"\x00\x00\x00")[0] == b"body"


@pytest.mark.parametrize("header", [None, "", "identity", " Identity "])
def test_no_coding_needs_no_decoder(header):
    assert decoder_for(header) is None


@pytest.mark.parametrize(
    "header, reason",
    [
        ("gzip, gzip", "refused Content-Encoding 'gzip, gzip': more than one content-coding layer"),
        ("deflate,br", "refused Content-Encoding 'deflate,br': more than one content-coding layer"),
        ("compress", "refused Content-Encoding 'compress': unsupported content-coding (decoded: gzip, deflate, br, "
                     "zstd)"),
        ("rot13", "refused Content-Encoding 'rot13': unsupported content-coding"),
    ],
)
def test_layers_and_unknown_codings_are_refused_with_the_reason(header, reason):
    with pytest.raises(ContentCodingError) as refused:
        decoder_for(header)
    assert str(refused.value).startswith(reason)


def test_only_what_is_decoded_is_asked_for():
    assert accept_encoding() == "gzip, deflate, br, zstd"


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_corrupt_content_is_a_one_line_reason(coding):
    with pytest.raises(ContentCodingError, match=f"^corrupt {coding} content"):
        decode_all(coding, b"this is not compressed at all, not even a little" * 10)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_no_step_of_a_bomb_yields_much_more_than_asked(coding):
    bomb = zeros_bomb(coding, 256 * MB)
    decoder = decoder_for(coding)
    produced, steps = 0, 0
    for start in range(0, len(bomb), 64 * 1024):
        piece = decoder.decode(bomb[start:start + 64 * 1024], MB)
        while True:
            assert len(piece) <= MB + 256 * 1024, (coding, len(piece))
            produced += len(piece)
            steps += 1
            if produced >= 8 * MB or not decoder.pending:
                break
            piece = decoder.decode(b"", MB)
        if produced >= 8 * MB:
            break
    assert produced >= 8 * MB and steps >= 8
