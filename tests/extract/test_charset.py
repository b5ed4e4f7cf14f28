"""Web pages decoded right: the HTTP header's charset, then the page's own declaration, then detection.

Every page goes through the real Fetcher and TextExtractor from the fake web server.
"""

from __future__ import annotations

import pytest

from knowledge_pipeline.extract.charset import decode_html
from knowledge_pipeline.models import Item, SourceType
from tests.extract.support import extract
from tests.fakes.web_server import FakeWebServer

GERMAN = (
    "Fahrspaß im Winter: Die Straßen in Zürich und München sind glatt, und große Autohäuser melden "
    "trotzdem höhere Verkäufe. „Der Kunde will Fahrspaß“, sagt die Händlerin – und verweist auf Preise "
    "ab 30.000 €. Viele Käufer entscheiden sich für Allradantrieb, weil die Wege im Gebirge steil sind. "
    "Ein Leser aus España fragt: „¿Qué año?“ – die Antwort kommt später."
)
LATIN1 = (
    "Le café crème de la place du Marché reste ouvert. Les élèves de l'école voisine y révisent "
    "leurs leçons; à midi, la brasserie sert un déjeuner complet pour douze euros. Où est la clé? Straße, Grüße, Öl."
)
JAPANESE = (
    "東京の新しい研究所は、人工知能の安全性について三年間の研究計画を発表した。研究者たちは、"
    "大規模な言語モデルの評価方法を改善し、その結果を公開すると述べている。計画には国内の大学も参加する。"
)


def page(text: str, meta: str = "") -> str:
    paragraphs = "".join(f"<p>{part}</p>" for part in text.split(". ") if part)
    return (f"<!doctype html><html><head>{meta}<title>Artikel</title></head><body><article>"
            f"<h1>Bericht</h1>{paragraphs}</article></body></html>")


@pytest.fixture(scope="module")
def web():
    with FakeWebServer() as server:
        # charset only in the Content-Type header (no <meta>): the case that came out garbled
        server.page("/cp1252", page(GERMAN).encode("cp1252"), content_type="text/html; charset=windows-1252")
        server.page("/latin1", page(LATIN1).encode("latin-1"), content_type="text/html; charset=ISO-8859-1")
        server.page("/sjis", page(JAPANESE).encode("shift_jis"), content_type="text/html; charset=Shift_JIS")
        # the header lies: the bytes are UTF-8
        server.page("/utf8-wrong-header", page(GERMAN).encode("utf-8"), content_type="text/html; charset=iso-8859-1")
        # no header charset: the page's own declaration, then detection
        server.page("/meta", page(GERMAN, '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">')
                    .encode("cp1252"), content_type="text/html")
        server.page("/xml-decl", ('<?xml version="1.0" encoding="windows-1252"?>\n' + page(LATIN1)).encode("cp1252"),
                    content_type="text/html")
        server.page("/nothing-declared", page(GERMAN).encode("cp1252"), content_type="text/html")
        server.page("/sjis-undeclared", page(JAPANESE).encode("shift_jis"), content_type="text/html")
        yield server


def text_of(web: FakeWebServer, path: str) -> str:
    result = extract(Item(id="1", title="t", source_type=SourceType.WEBSITE, url=web.url + path))
    assert isinstance(result, str), result
    return " ".join(result.split())


@pytest.mark.parametrize("path, expected", [
    ("/cp1252", "Fahrspaß im Winter"),
    ("/cp1252", "„Der Kunde will Fahrspaß“, sagt die Händlerin – und verweist auf Preise ab 30.000 €"),
    ("/latin1", "Le café crème de la place du Marché"),
    ("/latin1", "Straße, Grüße, Öl"),
    ("/sjis", "東京の新しい研究所は、人工知能の安全性について"),
    ("/utf8-wrong-header", "„Der Kunde will Fahrspaß“"),
    ("/meta", "„Der Kunde will Fahrspaß“"),
    ("/xml-decl", "Les élèves de l'école voisine"),
    ("/nothing-declared", "Fahrspaß im Winter"),
    ("/nothing-declared", "Ein Leser aus España fragt: „¿Qué año?“"),
    ("/cp1252", "Ein Leser aus España fragt: „¿Qué año?“"),
    ("/latin1", "Où est la clé?"),
    ("/sjis-undeclared", "大規模な言語モデルの評価方法を改善し"),
])
def test_pages_are_decoded_with_the_right_charset(web, path, expected):
    assert expected in text_of(web, path)


def test_the_order_header_then_declaration_then_detection():
    body = page(LATIN1, "<meta charset='koi8-r'>").encode("latin-1")
    assert decode_html(body, "iso-8859-1").count("élèves") == 1          # the header wins over the page
    assert "élèves" not in decode_html(body, None)                        # without it, the declaration
    assert decode_html("<p>Größe</p>".encode("utf-8"), "utf-8") == "<p>Größe</p>"
    sentence = "<p>Die Größe der Straße überrascht die Fahrer in München.</p>"
    assert decode_html(sentence.encode("cp1252"), "utf-8") == sentence   # not UTF-8 after all: detected
    assert decode_html(b"\xef\xbb\xbf<p>x</p>", "iso-8859-1") == "<p>x</p>"          # a BOM beats everything
    assert decode_html("<p>x</p>".encode("utf-8"), "no-such-charset") == "<p>x</p>"
