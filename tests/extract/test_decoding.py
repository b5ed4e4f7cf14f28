"""Content-codings decoded layer by layer with every step's output bounded (decompression bombs)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import zlib
from importlib import metadata
from pathlib import Path

import pytest

from knowledge_pipeline.extract.decoding import ContentCodingError, accept_encoding, decoder_for
from tests.data.generate import zeros_bomb
from tests.extract.support import coding_param

MB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]
TEXT = ("<p>Microsoft and OpenAI signed another agreement about compute.</p>\n" * 5000).encode()


def _compress(coding: str, data: bytes) -> bytes:
    if coding in ("gzip", "x-gzip"):
        return gzip.compress(data)
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "br":
        import brotli

        return brotli.compress(data)
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


CODINGS = ["gzip", "deflate", "br", "zstd"]


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


@pytest.mark.parametrize("coding", [coding_param(c) for c in ["br", "deflate", "gzip", "x-gzip", "zstd"]])
def test_each_supported_coding_decodes_in_pieces(coding):
    decoded, _ = decode_all(coding, _compress(coding, TEXT), limit=4096)
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
        ("compress", f"refused Content-Encoding 'compress': unsupported content-coding (decoded: {accept_encoding()})"),
        ("rot13", "refused Content-Encoding 'rot13': unsupported content-coding"),
    ],
)
def test_layers_and_unknown_codings_are_refused_with_the_reason(header, reason):
    with pytest.raises(ContentCodingError) as refused:
        decoder_for(header)
    assert str(refused.value).startswith(reason)


def _installed_at_least(distribution: str, minimum: tuple[int, int]) -> bool:
    try:
        version = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return tuple(int(part) for part in version.split(".")[:2]) >= minimum


def test_only_what_is_decoded_is_asked_for():
    expected = ["gzip", "deflate"]
    expected += ["br"] if _installed_at_least("brotli", (1, 2)) else []
    expected += ["zstd"] if _installed_at_least("zstandard", (0, 22)) else []
    assert accept_encoding() == ", ".join(expected)


# Stand-ins put before the real modules on a child interpreter's path.
_MISSING = 'raise ImportError("not installed")\n'
_OLD_BROTLI = textwrap.dedent(
    """
    # brotli 1.1: Decompressor.process(data) alone, no bound on its output
    error = Exception
    class Decompressor:
        def process(self, data):
            return b""
    """
)
_OLD_ZSTANDARD = textwrap.dedent(
    """
    # zstandard 0.21: decompressobj() has no read_across_frames
    ZstdError = Exception
    class ZstdDecompressor:
        def decompressobj(self, write_size=131072):
            return object()
    """
)
_PROBE = textwrap.dedent(
    """
    import gzip, json, zlib
    from knowledge_pipeline.extract.decoding import ContentCodingError, accept_encoding, decoder_for
    refused = {}
    for coding in ("br", "zstd"):
        try:
            decoder_for(coding)
        except ContentCodingError as exc:
            refused[coding] = str(exc)
    decoded = {}
    for coding, body in (("gzip", gzip.compress(b"<p>hi</p>")), ("deflate", zlib.compress(b"<p>hi</p>"))):
        decoder = decoder_for(coding)
        decoded[coding] = (decoder.decode(body, 4096) + decoder.finish(4096)).decode()
    print(json.dumps({"accept": accept_encoding(), "refused": refused, "decoded": decoded}))
    """
)


@pytest.mark.parametrize(
    "brotli_source, zstandard_source", [(_MISSING, _MISSING), (_OLD_BROTLI, _OLD_ZSTANDARD)], ids=["missing", "too-old"]
)
def test_br_and_zstd_are_neither_asked_for_nor_accepted_without_a_recent_enough_module(
    tmp_path, brotli_source, zstandard_source
):
    (tmp_path / "brotli.py").write_text(brotli_source)
    (tmp_path / "zstandard.py").write_text(zstandard_source)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["accept"] == "gzip, deflate"
    assert seen["refused"] == {
        coding: f"refused Content-Encoding '{coding}': unsupported content-coding (decoded: gzip, deflate)"
        for coding in ("br", "zstd")
    }
    assert seen["decoded"] == {"gzip": "<p>hi</p>", "deflate": "<p>hi</p>"}


@pytest.mark.parametrize("coding", [coding_param(c) for c in CODINGS])
def test_corrupt_content_is_a_one_line_reason(coding):
    with pytest.raises(ContentCodingError, match=f"^corrupt {coding} content"):
        decode_all(coding, b"this is not compressed at all, not even a little" * 10)


@pytest.mark.parametrize("coding", [coding_param(c) for c in CODINGS])
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
