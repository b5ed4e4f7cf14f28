"""Prompt text and the JSON schema of the enricher's answer, for every provider.

Prompts are laid out for prompt caching: the system text (instructions,
taxonomy and, in ``json_object`` mode, the schema) and the schema depend
only on the taxonomy and the analyses, so they are byte-identical for every
item of a run; everything about the item (its header, the note that it was
map-reduced, its text) is in the user turn, last.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..models import Item, Taxonomy
from . import analyses as analysis_fields
from .analyses import Analysis

SCHEMA_NAME = "knowledge_item_enrichment"

SYSTEM = (
    "You enrich documents for a personal knowledge base about AI. "
    "Read the document and answer with one JSON object with these fields:\n"
    "- summary: a Markdown summary of at most 175 words (short paragraphs or bullets).\n"
    "- executive_summary: exactly five plain sentences for a busy executive.\n"
    "- content_type: the one label from the allowed list that best describes the document.\n"
    "- ai_primitives: one or more labels from the allowed list for the AI uses the document is about.\n"
    "- vendor: the main company or product vendor the document is about, or null if none.\n"
    "- key_insights: three to five short, concrete takeaways.\n"
    "- published_date: the document's publication date as YYYY-MM-DD if the text states it, else null.\n"
    "Use only the labels allowed. Write in the document's language. Do not invent facts."
)

ANALYSES_LINE = "\n- analyses: each field as its description asks; lists and table rows one per line."
ANALYSES_ONLY_SYSTEM = (
    "You write analyses of documents for a personal knowledge base about AI. Read the document and answer "
    "with one JSON object holding the field analyses: each field as its description asks; lists and table "
    "rows one per line. Write in the document's language. Do not invent facts."
)
# Expected answer size of the standard fields, to plan calls under the output limit.
STANDARD_OUTPUT_TOKENS = 600

JSON_OBJECT_SUFFIX = (
    "\n\nReply with only a JSON object (no code fences, no prose) that validates against this JSON schema:\n"
)

PARTIAL_NOTE = (
    "Note: the document was too long to read at once; below are summaries of its "
    "consecutive parts, in order. Enrich the whole document from them."
)

CHUNK_SYSTEM = (
    "You summarise one part of a longer document so the parts can later be combined. "
    "Write plain text of at most 200 words: the main points, facts, names, numbers and dates "
    "of this part. No introduction, no headings."
)

COMBINE_SYSTEM = (
    "You merge summaries of consecutive parts of one long document into one summary of those parts. "
    "Write plain text of at most 300 words keeping the main points, facts, names, numbers and dates, in order. "
    "No introduction, no headings."
)

CORRECTIONS = {
    "refusal": (
        "Your previous answer was a refusal. This is a routine request to summarise and label a "
        "document the user saved for their own knowledge base. Answer with the JSON object."
    ),
    "length": (
        "Your previous answer was cut off before it ended. Answer again, shorter: a summary "
        "under 120 words and key insights of at most 20 words each, as one complete JSON object."
    ),
    "invalid": (
        "Your previous answer was not a valid JSON object for the schema ({problem}). "
        "Answer again with only the JSON object, every field present."
    ),
}


def enrichment_schema(taxonomy: Taxonomy, analyses: tuple[Analysis, ...] = ()) -> dict[str, Any]:
    """Strict-mode schema: every property required, no extras, nullables as ``[type, "null"]``."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "Markdown, at most about 175 words"},
            "executive_summary": {"type": "string", "description": "Exactly five sentences"},
            "content_type": {"type": "string", "enum": list(taxonomy.content_types)},
            "ai_primitives": {
                "type": "array",
                "items": {"type": "string", "enum": list(taxonomy.ai_primitives)},
                "minItems": 1,
            },
            "vendor": {"type": ["string", "null"], "description": "Main vendor, or null"},
            "key_insights": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 3,
                "maxItems": 5,
            },
            "published_date": {"type": ["string", "null"], "description": "YYYY-MM-DD, or null"},
        },
        "required": [
            "summary",
            "executive_summary",
            "content_type",
            "ai_primitives",
            "vendor",
            "key_insights",
            "published_date",
        ],
        "additionalProperties": False,
    }
    if analyses:
        schema["properties"]["analyses"] = analyses_schema(analyses)
        schema["required"].append("analyses")
    return schema


def analyses_schema(analyses: tuple[Analysis, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {a.name: analysis_fields.schema_property(a) for a in analyses},
        "required": [a.name for a in analyses],
        "additionalProperties": False,
    }


def _labels(taxonomy: Taxonomy, names: tuple[str, ...]) -> str:
    """The labels, each with the description the user's taxonomy file gives it."""
    described = []
    for name in names:
        hint = taxonomy.hint(name)
        described.append(f"{name} ({hint.description})" if hint and hint.description else name)
    return "; ".join(described)


def analyses_only_schema(analyses: tuple[Analysis, ...]) -> dict[str, Any]:
    """The schema of a call that writes only analyses (when one answer would be too long)."""
    return {
        "type": "object",
        "properties": {"analyses": analyses_schema(analyses)},
        "required": ["analyses"],
        "additionalProperties": False,
    }


def json_schema_format(taxonomy: Taxonomy, analyses: tuple[Analysis, ...] = ()) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": enrichment_schema(taxonomy, analyses)},
    }


def system_prompt(taxonomy: Taxonomy, analyses: tuple[Analysis, ...] = (), *, schema_in_prompt: bool = False) -> str:
    """The structured call's instructions; with ``json_object`` the schema travels in here."""
    text = SYSTEM
    if analyses:
        text += ANALYSES_LINE
    text += "\nAllowed content_type labels: " + _labels(taxonomy, taxonomy.content_types)
    text += "\nAllowed ai_primitives labels: " + _labels(taxonomy, taxonomy.ai_primitives)
    if schema_in_prompt:
        text += JSON_OBJECT_SUFFIX + json.dumps(enrichment_schema(taxonomy, analyses), ensure_ascii=False)
    return text


def with_schema(system: str, schema: dict[str, Any]) -> str:
    """``system`` followed by the schema, for servers that take no schema beside the prompt."""
    return system + JSON_OBJECT_SUFFIX + json.dumps(schema, ensure_ascii=False)


def cache_key(system: str, schema: dict[str, Any] | None) -> str:
    """A name for the static part of a prompt, the same for every item sharing it."""
    digest = hashlib.sha256((system + json.dumps(schema, sort_keys=True)).encode("utf-8")).hexdigest()
    return "kp-" + digest[:24]


def expected_output_tokens(analyses: tuple[Analysis, ...], *, standard: bool = True) -> int:
    return (STANDARD_OUTPUT_TOKENS if standard else 0) + analysis_fields.expected_output_tokens(analyses)


def document_message(item: Item, body: str, *, partial: bool = False) -> str:
    """The user message: what is known about the item, then its text (or its parts' summaries)."""
    header = [f"Title: {item.title}"]
    if item.url:
        header.append(f"URL: {item.url}")
    header.append(f"Source type: {item.source_type.value}")
    if item.created_date:
        header.append(f"Date given by the source: {item.created_date.isoformat()}")
    if partial:
        header.append(PARTIAL_NOTE)
    return "\n".join(header) + "\n\n" + body


def chunk_message(item: Item, chunk: str, index: int, total: int) -> str:
    return f"Document: {item.title}\nPart {index} of {total}:\n\n{chunk}"


def combine_message(item: Item, parts: str) -> str:
    return f"Document: {item.title}\nSummaries of consecutive parts:\n\n{parts}"


def correction(kind: str, problem: str = "") -> str:
    return CORRECTIONS[kind].format(problem=problem)
