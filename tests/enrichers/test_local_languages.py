"""The offline enricher in every language: Unicode sentences, words or CJK characters, limits kept."""

from __future__ import annotations

import asyncio

import pytest

from knowledge_pipeline.enrichers.local import (
    EXECUTIVE_SENTENCES,
    SUMMARY_WORDS,
    LocalEnricher,
    split_sentences,
    text_units,
)
from knowledge_pipeline.models import Item, SourceType, Taxonomy

GERMAN = [
    "Über den neuen Rechenzentren in Bayern wird seit Monaten gestritten.",
    "Ärzte und Ökonomen warnen vor dem Stromverbrauch der Anlagen.",
    "Öffentliche Anhörungen sollen im Frühjahr beginnen.",
    "Die Betreiber versprechen Abwärme für mehrere tausend Haushalte.",
    "Ob das reicht, entscheidet am Ende der Landtag.",
    "Zwölf Gemeinden haben bereits Einwände eingereicht.",
    "Übrigens rechnen Fachleute mit weiteren Verzögerungen.",
]
RUSSIAN = [
    "Новая модель обработки языка была представлена в Москве.",
    "Разработчики утверждают, что она работает вдвое быстрее.",
    "Эксперты пока осторожно оценивают эти заявления.",
    "Испытания продолжатся до конца года в трёх университетах.",
    "Результаты будут опубликованы в открытом доступе.",
    "Частные компании уже проявили интерес к технологии.",
]
GREEK = [
    "Η κυβέρνηση ανακοίνωσε νέο πρόγραμμα για την τεχνητή νοημοσύνη.",
    "Οι ερευνητές θα λάβουν χρηματοδότηση για τρία χρόνια.",
    "Ένα μέρος των πόρων θα πάει σε μικρές επιχειρήσεις.",
    "Ωστόσο η αντιπολίτευση ζητά περισσότερη διαφάνεια.",
    "Ψηφιακές υπηρεσίες θα δοκιμαστούν πρώτα στην Αθήνα.",
    "Άλλες πόλεις θα ακολουθήσουν τον επόμενο χρόνο.",
]
ARABIC = [
    "أعلنت الشركة عن نموذج جديد للذكاء الاصطناعي.",
    "يقول الباحثون إن النموذج يفهم اللغة العربية بشكل أفضل.",
    "هل سيغير هذا طريقة عمل المترجمين؟",
    "يعتقد الخبراء أن التأثير سيكون كبيرا على التعليم.",
    "ستبدأ التجارب في ثلاث جامعات خلال الشهر المقبل.",
    "وسيتم نشر النتائج في نهاية العام الدراسي.",
]
CHINESE = [
    "人工智能公司今天发布了新的大型语言模型。",
    "研究人员表示，该模型在中文理解方面有明显提升！",
    "这会改变翻译行业吗？",
    "专家认为，教育领域将首先受到影响。",
    "测试将在三所大学同时进行。",
    "结果预计在年底前公开发布。",
]
JAPANESE = [
    "東京の研究所は新しい言語モデルを発表した。",
    "研究者によると、日本語の理解が大きく向上したという！",
    "これは翻訳の仕事を変えるだろうか？",
    "専門家は教育分野への影響が最も大きいと見ている。",
    "試験は三つの大学で同時に行われる。",
    "結果は年末までに公開される予定だ。",
]
LANGUAGES = {"de": GERMAN, "ru": RUSSIAN, "el": GREEK, "ar": ARABIC, "zh": CHINESE, "ja": JAPANESE}


def joined(sentences: list[str]) -> str:
    cjk = sentences[0][-1] in "。！？"
    return ("" if cjk else " ").join(sentences)


def enrich(text: str):
    item = Item(id="1", title="t", source_type=SourceType.RSS)
    return asyncio.run(LocalEnricher().enrich(item, text, Taxonomy()))


@pytest.mark.parametrize("language", LANGUAGES)
def test_sentences_are_split_in_every_script(language):
    sentences = LANGUAGES[language]
    assert split_sentences(joined(sentences)) == sentences


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_long_article_in_any_language_keeps_the_limits(language):
    sentences = LANGUAGES[language]
    article = "\n\n".join(joined(sentences) for _ in range(40))  # the 11,694-character case, and more
    result = enrich(article)
    assert len(split_sentences(result.executive_summary)) == EXECUTIVE_SENTENCES
    assert text_units(result.summary) <= SUMMARY_WORDS
    assert len(result.summary) < len(article) / 10 and len(result.executive_summary) < len(article) / 10
    assert 3 <= len(result.key_insights) <= 5
    assert all(insight in sentences for insight in result.key_insights)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_short_text_is_summarised_not_failed(language):
    text = LANGUAGES[language][0]
    result = enrich(text)
    assert result.summary == text and result.executive_summary == text


def test_a_text_with_no_punctuation_at_all_is_cut_to_the_limits():
    words = [f"wort{n % 97}" for n in range(5000)]
    result = enrich(" ".join(words))
    assert text_units(result.summary) <= SUMMARY_WORDS
    assert len(split_sentences(result.executive_summary)) <= EXECUTIVE_SENTENCES
    assert text_units(result.executive_summary) <= SUMMARY_WORDS * 2
    assert all(text_units(insight) <= SUMMARY_WORDS for insight in result.key_insights)


def test_cjk_is_counted_in_characters_and_spaced_scripts_in_words():
    assert text_units("one two three") == 3
    assert text_units("人工智能公司") == 3          # two characters count as one word
    assert text_units("Die KI 模型 ist neu") == 5


@pytest.mark.parametrize("language", ["zh", "ja"])
def test_cjk_sentences_are_joined_without_a_space(language):
    sentences = LANGUAGES[language]
    result = enrich("".join(sentences * 3))
    assert " " not in result.executive_summary and " " not in result.summary
    long_one = "，".join(sentence[:-1] for sentence in sentences * 4) + "。"  # cut at its commas
    assert len(split_sentences(long_one)) > 1 and not any(" " in piece for piece in split_sentences(long_one))


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_offline_analyses_read_every_script(language):
    from knowledge_pipeline.enrichers.analyses import ORIGINAL

    sentences = LANGUAGES[language]
    item = Item(id="1", title="t", source_type=SourceType.RSS)
    result = asyncio.run(LocalEnricher(ORIGINAL).enrich(item, joined(sentences), Taxonomy()))
    by_name = {a.name: a for a in result.analyses}
    overview, tags = by_name["overview"], by_name["tags"]
    assert not overview.placeholder and not tags.placeholder
    assert list(overview.lines) == split_sentences(result.summary) and len(overview.lines) > 1
    assert 1 < len(tags.lines) <= 8
    assert all(tag in joined(sentences).lower() for tag in tags.lines)
