"""The offline enricher: deterministic, no network, no account, any language.

Sentences are scored by the frequency of their content words (a classic
extractive summariser); labels are chosen from the taxonomy by scored
keywords; the vendor is the known organisation named most often; the date is
the first plausible date written in the text. Good enough to try the pipeline
end to end and to test everything around the LLM.

Sentences end at ``. ! ? …`` followed by a space and anything but a lowercase
letter (so any script's capitals, and caseless scripts such as Arabic), and
at ``。！？؟।`` and their kin with or without a space. Length is counted in
words for space-separated scripts and in characters for Chinese and Japanese
(two characters = one word). A "sentence" longer than MAX_SENTENCE_WORDS (a
text without punctuation) is cut at clause marks or spaces, so the limits
hold for any input: summary at most SUMMARY_WORDS, executive summary
EXECUTIVE_SENTENCES sentences.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

from ..errors import EnrichmentError
from ..models import Enrichment, Item, Taxonomy
from .analyses import Analysis

_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves said says new one two may might must shall us its it's""".split()
)

CONTENT_TYPE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "Market News": ("announced", "announces", "launch", "launched", "acquire", "acquisition", "funding",
                    "raised", "revenue", "shares", "market", "quarter", "earnings", "deal", "investors",
                    "valuation", "release", "released", "today"),
    "Thought Leadership": ("believe", "future", "should", "lessons", "why", "perspective", "opinion",
                           "essay", "argue", "think", "strategy", "leaders", "vision", "trend", "era"),
    "Personal Note": ("i ", "my ", "me ", "note to self", "reminder", "todo", "journal", "personal"),
    "Vendor Capability": ("api", "feature", "features", "model", "pricing", "platform", "sdk",
                          "benchmark", "context window", "available", "supports", "capability",
                          "capabilities", "integration", "tokens", "latency"),
    "Client Deliverable": ("client", "deliverable", "proposal", "statement of work", "engagement",
                           "recommendations", "executive summary", "findings", "roadmap", "assessment"),
}

PRIMITIVE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "Content Creation": ("write", "writing", "content", "image", "video", "generate", "generation",
                         "copy", "marketing", "creative", "design", "draft"),
    "Research": ("research", "study", "paper", "analysis", "findings", "survey", "evidence",
                 "literature", "search", "discover", "scientists"),
    "Coding": ("code", "coding", "developer", "developers", "programming", "software", "github",
               "repository", "debug", "engineering", "compiler", "agentic coding"),
    "Data Analysis": ("data", "dataset", "analytics", "metrics", "statistics", "forecast", "dashboard",
                      "sql", "spreadsheet", "insights"),
    "Ideation/Strategy": ("strategy", "strategic", "brainstorm", "ideas", "ideation", "planning",
                          "roadmap", "vision", "decision", "leaders"),
    "Automation": ("automation", "automate", "automated", "agent", "agents", "workflow", "workflows",
                   "pipeline", "orchestration", "robotic", "autonomous"),
}

KNOWN_VENDORS: tuple[str, ...] = (
    "OpenAI", "Anthropic", "Google DeepMind", "Google", "DeepMind", "Microsoft", "Meta", "Amazon",
    "AWS", "NVIDIA", "Apple", "IBM", "Oracle", "Salesforce", "Mistral AI", "Mistral", "Cohere",
    "Hugging Face", "Stability AI", "xAI", "Perplexity", "Databricks", "Snowflake", "Intel", "AMD",
    "Samsung", "Baidu", "Alibaba", "Tencent", "DeepSeek", "Adobe", "SAP", "ServiceNow", "Palantir",
    "Scale AI", "Runway", "Midjourney", "GitHub", "Notion", "Zapier", "UiPath",
)

_CLOSERS = "\"'”’»)]）」』】"
# A full stop, !, ? or … then a space: a boundary unless a lowercase letter follows (an abbreviation, "e.g. the").
_LATIN_END = re.compile(r"[.!?…]+[" + re.escape(_CLOSERS) + r"]*\s+")
# Terminators of scripts that need no space after them (CJK), or have their own marks (Arabic, Devanagari...).
_OTHER_END = re.compile(r"[。！？｡︒﹒﹗﹖！？؟۔।॥።᙮᠃᠉]+[" + re.escape(_CLOSERS) + r"]*\s*")
_CLAUSE = re.compile(r"(?<=[,;:，、；：])\s*")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]")
# what a Chinese/Japanese text runs on from without a space: its characters, its punctuation (。「」…), full-width forms
_NO_SPACE_AFTER = re.compile(_CJK.pattern[:-1] + r"\u3000-\u303f\uff01-\uff65]")
_WORD = re.compile(r"[^\W\d_][\w'\-]+")
_MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), 1)}
_ISO_DATE = re.compile(r"\b(20\d{2}|19\d{2})-(\d{2})-(\d{2})\b")
_LONG_DATE = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December)"
    r"\s+(\d{1,2}),?\s+(\d{4})\b"
)
_DAY_FIRST = re.compile(
    r"\b(\d{1,2})\s+(January|February|March|April|May|June|July|August|September|October|November|December)"
    r"\s+(\d{4})\b"
)
SUMMARY_WORDS = 150
EXECUTIVE_SENTENCES = 5
MAX_SENTENCE_WORDS = 60
MIN_SENTENCE_WORDS = 4
_CJK_CHARS_PER_WORD = 2


def text_units(text: str) -> float:
    """Length in words: whitespace-separated words, Chinese/Japanese characters at two per word."""
    if text.isascii():
        return float(len(text.split()))
    spaced, cjk = _CJK.subn(" ", text)
    return len(spaced.split()) + cjk / _CJK_CHARS_PER_WORD


def split_sentences(text: str) -> list[str]:
    """The text's sentences, in order, each at most MAX_SENTENCE_WORDS long; fragments shorter than
    MIN_SENTENCE_WORDS are dropped unless the text has nothing longer."""
    pieces = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        for sentence in _sentences(paragraph):
            pieces.extend(_bounded(sentence))
    long_enough = [p for p in pieces if text_units(p) >= MIN_SENTENCE_WORDS]
    return long_enough or [p for p in pieces if any(ch.isalpha() for ch in p)]


def _sentences(paragraph: str) -> list[str]:
    cuts = [m.end() for m in _OTHER_END.finditer(paragraph)]
    cuts += [m.end() for m in _LATIN_END.finditer(paragraph)
             if m.end() < len(paragraph) and not paragraph[m.end()].islower()]
    sentences, start = [], 0
    for cut in sorted(set(cuts)):
        sentences.append(paragraph[start:cut].strip())
        start = cut
    sentences.append(paragraph[start:].strip())
    return [s for s in sentences if s]


def _bounded(sentence: str) -> list[str]:
    """A sentence longer than MAX_SENTENCE_WORDS cut into pieces: at clause marks, else at spaces or characters."""
    if text_units(sentence) <= MAX_SENTENCE_WORDS:
        return [sentence]
    pieces: list[str] = []
    current: list[str] = []
    size = 0.0
    for part in _tokens(sentence):
        units = text_units(part)
        if current and size + units > MAX_SENTENCE_WORDS:
            pieces.append("".join(current).strip())
            current, size = [], 0.0
        current.append(part)
        size += units
    if current:
        pieces.append("".join(current).strip())
    return [piece for piece in pieces if piece]


def _tokens(sentence: str) -> list[str]:
    """Clauses if they are short enough, else words (with their spaces), else characters (CJK)."""
    clauses = [c for c in _CLAUSE.split(sentence) if c]
    if all(text_units(c) <= MAX_SENTENCE_WORDS for c in clauses) and len(clauses) > 1:
        return [c if c.endswith(" ") or _NO_SPACE_AFTER.match(c[-1:]) else c + " " for c in clauses]
    words = re.findall(r"\S+\s*", sentence)
    if len(words) > 1:
        return [piece for word in words
                for piece in (_tokens(word) if len(word) > MAX_SENTENCE_WORDS and text_units(word) > MAX_SENTENCE_WORDS
                              else [word])]
    return list(sentence)


def content_words(text: str) -> list[str]:
    """Words that carry meaning: no stopwords or short words; Chinese/Japanese as character pairs."""
    words = []
    for word in _WORD.findall(text):
        cjk = "".join(_CJK.findall(word))
        if cjk:
            words.extend(cjk[i:i + 2] for i in range(max(len(cjk) - 1, 1)))
        elif len(word) > 2 and word.lower() not in _STOPWORDS:
            words.append(word.lower())
    return words


def _rank_sentences(sentences: list[str]) -> list[int]:
    frequencies = Counter(w for s in sentences for w in content_words(s))
    if not frequencies:
        return list(range(len(sentences)))
    top = max(frequencies.values())

    def score(index: int) -> float:
        words = content_words(sentences[index])
        if not words:
            return 0.0
        lead_bonus = 1.15 if index < 3 else 1.0
        return lead_bonus * sum(frequencies[w] / top for w in words) / (len(words) ** 0.5)

    return sorted(range(len(sentences)), key=lambda i: (-score(i), i))


def _keyword_scores(
    text: str, table: dict[str, tuple[str, ...]], labels: tuple[str, ...], taxonomy: Taxonomy
) -> dict[str, int]:
    """Keyword hits per label: the taxonomy file's keywords, else the built-in ones, else the label's words."""
    lowered = " " + text.lower() + " "
    scores = {}
    for label in labels:
        hint = taxonomy.hint(label)
        keywords = (hint.keywords if hint else ()) or table.get(label) or tuple(w.lower() for w in _WORD.findall(label))
        scores[label] = sum(len(re.findall(r"\b" + re.escape(k.strip()) + r"\b", lowered)) for k in keywords)
    return scores


def find_date(text: str) -> date | None:
    candidates: list[tuple[int, date]] = []
    for match in _ISO_DATE.finditer(text):
        candidates.append((match.start(), _safe_date(int(match[1]), int(match[2]), int(match[3]))))
    for match in _LONG_DATE.finditer(text):
        candidates.append((match.start(), _safe_date(int(match[3]), _MONTHS[match[1].lower()], int(match[2]))))
    for match in _DAY_FIRST.finditer(text):
        candidates.append((match.start(), _safe_date(int(match[3]), _MONTHS[match[2].lower()], int(match[1]))))
    valid = [(pos, d) for pos, d in candidates if d is not None]
    return min(valid)[1] if valid else None


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def find_vendor(text: str) -> str | None:
    counts = Counter()
    for vendor in KNOWN_VENDORS:
        hits = len(re.findall(r"(?<![\w-])" + re.escape(vendor) + r"(?![\w-])", text))
        if hits:
            counts[vendor] = hits
    if not counts:
        return None
    return sorted(counts.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0]))[0][0]


def _words_cap(sentences: list[str], limit: int) -> str:
    chosen: list[str] = []
    total = 0.0
    for sentence in sentences:
        words = text_units(sentence)
        if chosen and total + words > limit:
            break
        chosen.append(sentence)
        total += words
    return _joined(chosen)


def _joined(sentences: list[str]) -> str:
    """Sentences as one text: Chinese/Japanese ones without a space between them."""
    text = ""
    for sentence in sentences:
        text += sentence if not text or _NO_SPACE_AFTER.match(text[-1]) else " " + sentence
    return text


class LocalEnricher:
    """Extractive, keyword-based enrichment that runs offline."""

    name = "local"

    def __init__(self, analyses: tuple[Analysis, ...] = ()) -> None:
        self.analyses = analyses

    async def enrich(self, item: Item, text: str, taxonomy: Taxonomy) -> Enrichment:
        sentences = split_sentences(text)
        if not sentences:
            raise EnrichmentError("no sentences to summarise in the extracted text")
        ranking = _rank_sentences(sentences)
        in_order = lambda n: [sentences[i] for i in sorted(ranking[:n])]  # noqa: E731
        summary = _words_cap(in_order(max(3, min(len(sentences), 8))), SUMMARY_WORDS)
        executive = _joined(in_order(EXECUTIVE_SENTENCES))
        insights = [s for s in (sentences[i] for i in ranking) if re.search(r"\d|%", s)][:3]
        for index in ranking:
            if len(insights) >= 5 or (len(insights) >= 3 and len(insights) >= len(sentences)):
                break
            if sentences[index] not in insights:
                insights.append(sentences[index])
        labelled = f"{item.title}\n{text}"
        type_scores = _keyword_scores(labelled, CONTENT_TYPE_KEYWORDS, taxonomy.content_types, taxonomy)
        content_type = max(taxonomy.content_types, key=lambda t: (type_scores[t], -taxonomy.content_types.index(t)))
        primitive_scores = _keyword_scores(labelled, PRIMITIVE_KEYWORDS, taxonomy.ai_primitives, taxonomy)
        best = max(primitive_scores.values())
        primitives = tuple(
            p for p in taxonomy.ai_primitives if best and primitive_scores[p] >= max(2, best // 2)
        ) or (taxonomy.ai_primitives[0] if not best else max(taxonomy.ai_primitives, key=primitive_scores.get),)
        enrichment = Enrichment(
            summary=summary,
            executive_summary=executive,
            content_type=content_type,
            ai_primitives=primitives[:3],
            vendor=find_vendor(labelled),
            key_insights=tuple(insights[:5]),
            published_date=find_date(text),
        )
        from .local_analyses import with_local_analyses  # it reads text with this module's functions

        return with_local_analyses(enrichment, self.analyses, text)

    async def close(self) -> None:
        return None
