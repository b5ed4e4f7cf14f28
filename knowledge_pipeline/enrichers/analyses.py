"""Optional analyses: the original pipeline's extra sections, and the user's own.

The original appended up to 15 analysis sections to every item, each a
separate call over the full text. Here each analysis is one more field of the
single structured answer (``ANALYSES``), so it costs output tokens and a few
schema tokens, not another copy of the document. ``ANALYSES_FILE`` (YAML)
defines more: a name, an instruction and the shape of the answer.

Every shape is sent to the model as the smallest schema that says it: one
string, whose description gives the shape (``bullets``: one per line;
``table``: rows with cells separated by `` | ``, the header row first) and the
instruction, once. The prompt grows by about 35 tokens per analysis
(docs/performance.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..models import BODY_TOGGLES, AnalysisResult

SHAPES = ("paragraph", "bullets", "table")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_ANALYSES = 40
MAX_INSTRUCTION_CHARS = 400
CELL_SEPARATOR = " | "
# Typical answer length in tokens per shape, to plan calls under the model's output limit.
EXPECTED_OUTPUT_TOKENS = {"paragraph": 160, "bullets": 220, "table": 260}


@dataclass(frozen=True)
class Analysis:
    name: str
    title: str
    instruction: str
    shape: str = "bullets"


ORIGINAL: tuple[Analysis, ...] = (
    Analysis("overview", "Bullet Overview", "5-8 bullets on the whole text", "bullets"),
    Analysis("risks", "Risks, Opportunities and Implications", "each starts Risk:, Opportunity: or Implication:", "bullets"),
    Analysis("market", "Market and Competitor Insights", "market moves and competitors named", "bullets"),
    Analysis("tags", "Thematic Tags", "5-10 lowercase topic tags", "bullets"),
    Analysis("personas", "Audience Personas", "Persona | Why it matters", "table"),
    Analysis("social", "Social Posts", "LinkedIn post (60 words), X post (270 chars)", "bullets"),
    Analysis("newsletter", "Newsletter Paragraph", "80-word newsletter paragraph", "paragraph"),
    Analysis("qa", "Q&A", "4 'Q: ... A: ...' checking understanding", "bullets"),
    Analysis("swot", "SWOT", "S/W/O/T | Point", "table"),
    Analysis("actions", "Action Items", "next steps for a reader", "bullets"),
    Analysis("metadata", "Metadata", "Field | Value: author, organisation, type, region, people", "table"),
    Analysis("related", "Related Items", "topics, products or sources to read next", "bullets"),
    Analysis("faqs", "FAQs", "'Q: ... A: ...' a newcomer would ask", "bullets"),
    Analysis("talk", "Talk Outline", "10-minute talk outline", "bullets"),
)
BY_NAME = {analysis.name: analysis for analysis in ORIGINAL}


def select(spec: str | None, defined: Iterable[Analysis] = ()) -> tuple[Analysis, ...]:
    """The analyses ``ANALYSES`` names: none, original, or names (original's or ``defined``), in order.

    Raises ValueError with the accepted names.
    """
    user = {a.name: a for a in defined}
    if spec is None:
        return tuple(user.values())
    known = {**BY_NAME, **user}
    chosen: dict[str, Analysis] = {}
    for word in (w.strip().lower() for w in spec.split(",")):
        if not word or word == "none":
            continue
        if word == "original":
            chosen.update((a.name, a) for a in ORIGINAL)
        elif word in known:
            chosen[word] = known[word]
        else:
            raise ValueError("expected none, original or names among " + ", ".join(sorted(known)))
    return tuple(chosen.values())


def load_file(path: Path) -> tuple[Analysis, ...]:
    """The analyses a YAML file defines: a list (or ``analyses:`` list) of name, title, instruction, shape."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"expected a readable YAML file ({exc.strerror})") from None
    except yaml.YAMLError:
        raise ValueError("expected YAML: a list of {name, instruction, shape, title}") from None
    if isinstance(data, dict):
        data = data.get("analyses")
    if not isinstance(data, list) or not data:
        raise ValueError("expected a non-empty list of {name, instruction, shape, title}")
    if len(data) > MAX_ANALYSES:
        raise ValueError(f"expected at most {MAX_ANALYSES} analyses")
    analyses: list[Analysis] = []
    for number, entry in enumerate(data, 1):
        analyses.append(_analysis(entry, number))
    names = [a.name for a in analyses]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"analysis names must be unique ({', '.join(duplicates)})")
    return tuple(analyses)


def _analysis(entry: Any, number: int) -> Analysis:
    where = f"analysis {number}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping of name, instruction, shape, title")
    name = str(entry.get("name") or "").strip().lower()
    if not NAME.match(name):
        raise ValueError(f"{where}: name must be lowercase letters, digits and _ (at most 40)")
    instruction = " ".join(str(entry.get("instruction") or "").split())
    if not instruction or len(instruction) > MAX_INSTRUCTION_CHARS:
        raise ValueError(f"{where} ({name}): instruction must be 1-{MAX_INSTRUCTION_CHARS} characters")
    shape = str(entry.get("shape") or "paragraph").strip().lower()
    if shape not in SHAPES:
        raise ValueError(f"{where} ({name}): shape must be one of {', '.join(SHAPES)}")
    title = " ".join(str(entry.get("title") or name.replace("_", " ").capitalize()).split())[:100]
    if title in BODY_TOGGLES:
        raise ValueError(f"{where} ({name}): title {title!r} is a standard toggle; choose another")
    return Analysis(name, title, instruction, shape)


def schema_property(analysis: Analysis) -> dict[str, Any]:
    """The field of the answer schema: a string, the shape and instruction as its description.

    Bullets and table rows are lines of one string rather than an array:
    the same answer for about 30 fewer schema characters per analysis.
    """
    lead = "rows, header first: " if analysis.shape == "table" else ""
    return {"type": "string", "description": lead + analysis.instruction}


def expected_output_tokens(analyses: Iterable[Analysis]) -> int:
    return sum(EXPECTED_OUTPUT_TOKENS[a.shape] for a in analyses)


def groups(analyses: tuple[Analysis, ...], first_budget: int, budget: int) -> list[tuple[Analysis, ...]]:
    """The analyses split into calls whose expected output stays within the budgets.

    The first group (possibly empty) shares its call with the standard fields
    (``first_budget`` left for analyses); each further group is a call of its
    own (``budget``). A single analysis larger than a budget still gets a call.
    """
    result: list[list[Analysis]] = [[]]
    room = first_budget
    for analysis in analyses:
        need = EXPECTED_OUTPUT_TOKENS[analysis.shape]
        if need > room and (result[-1] or len(result) == 1):
            result.append([])
            room = budget
        result[-1].append(analysis)
        room -= need
    return [tuple(group) for group in result]


def result_from_answer(analysis: Analysis, value: Any) -> AnalysisResult | None:
    """The model's answer for one analysis as lines; None when it gave nothing usable."""
    if isinstance(value, str):
        parts = [p.strip() for p in re.split(r"\n\s*\n", value) if p.strip()]
        if analysis.shape != "paragraph":
            parts = [line.strip(" -*\t") for line in value.splitlines() if line.strip(" -*\t")]
    elif isinstance(value, list):
        parts = [" ".join(str(v).split()) for v in value if isinstance(v, (str, int, float)) and str(v).strip()]
        if analysis.shape == "paragraph":
            parts = ["\n\n".join(parts)] if parts else []
    else:
        return None
    if not parts:
        return None
    return AnalysisResult(analysis.name, analysis.title, analysis.shape, tuple(parts))


def placeholder(analysis: Analysis, reason: str) -> AnalysisResult:
    """A clearly marked stand-in for an analysis that could not be produced."""
    return AnalysisResult(analysis.name, analysis.title, analysis.shape, (f"[Not available: {reason}]",), True)


def body_lines(result: AnalysisResult) -> list[tuple[str, str]]:
    """The result as (block kind, text) pairs: ``paragraph`` or ``bullet``; a table's header is a paragraph."""
    if result.shape == "paragraph" or result.placeholder:
        return [("paragraph", line) for line in result.lines]
    if result.shape == "table":
        header, *rows = result.lines
        return [("paragraph", header)] + [("bullet", row) for row in rows]
    return [("bullet", line) for line in result.lines]
