"""The offline enricher: deterministic, no network, no account.

Sentences are scored by the frequency of their content words (a classic
extractive summariser); labels are chosen from the taxonomy by scored
keywords; the vendor is the known organisation named most often; the date is
the first plausible date written in the text. Good enough to try the pipeline
end to end and to test everything around the LLM.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

from ..errors import EnrichmentError
from ..models import Enrichment, Item, Taxonomy

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

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]+")
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


def split_sentences(text: str) -> list[str]:
    sentences = []
    for paragraph in re.split(r"\n\s*\n|\r\n\s*\r\n", text):
        paragraph = " ".join(paragraph.split())
        for sentence in _SENTENCE_END.split(paragraph):
            sentence = sentence.strip()
            if len(sentence.split()) >= 4:
                sentences.append(sentence)
    return sentences


def _content_words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text) if w.lower() not in _STOPWORDS and len(w) > 2]


def _rank_sentences(sentences: list[str]) -> list[int]:
    frequencies = Counter(w for s in sentences for w in _content_words(s))
    if not frequencies:
        return list(range(len(sentences)))
    top = max(frequencies.values())

    def score(index: int) -> float:
        words = _content_words(sentences[index])
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
    total = 0
    for sentence in sentences:
        words = len(sentence.split())
        if chosen and total + words > limit:
            break
        chosen.append(sentence)
        total += words
    return " ".join(chosen)


class LocalEnricher:
    """Extractive, keyword-based enrichment that runs offline."""

    name = "local"

    async def enrich(self, item: Item, text: str, taxonomy: Taxonomy) -> Enrichment:
        sentences = split_sentences(text)
        if not sentences:
            raise EnrichmentError("no sentences to summarise in the extracted text")
        ranking = _rank_sentences(sentences)
        in_order = lambda n: [sentences[i] for i in sorted(ranking[:n])]  # noqa: E731
        summary = _words_cap(in_order(max(3, min(len(sentences), 8))), SUMMARY_WORDS)
        executive = " ".join(in_order(5))
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
        return Enrichment(
            summary=summary,
            executive_summary=executive,
            content_type=content_type,
            ai_primitives=primitives[:3],
            vendor=find_vendor(labelled),
            key_insights=tuple(insights[:5]),
            published_date=find_date(text),
        )

    async def close(self) -> None:
        return None
