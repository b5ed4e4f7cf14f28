"""Prompt text and the JSON schema of the OpenAI enricher's answer."""

from __future__ import annotations

import json
from typing import Any

from ..models import Item, Taxonomy

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

JSON_OBJECT_SUFFIX = (
    "\n\nReply with only a JSON object (no code fences, no prose) that validates against this JSON schema:\n"
)

PARTIAL_NOTE = (
    "The document was too long to read at once: the user message holds summaries of its "
    "consecutive parts, in order. Enrich the whole document from them."
)

CHUNK_SYSTEM = (
    "You summarise one part of a longer document so the parts can later be combined. "
    "Write plain text of at most 200 words: the main points, facts, names, numbers and dates "
    "of this part. No introduction, no headings."
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


def enrichment_schema(taxonomy: Taxonomy) -> dict[str, Any]:
    """Strict-mode schema: every property required, no extras, nullables as ``[type, "null"]``."""
    return {
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


def json_schema_format(taxonomy: Taxonomy) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": enrichment_schema(taxonomy)},
    }


def _labels(taxonomy: Taxonomy, names: tuple[str, ...]) -> str:
    """The labels, each with the description the user's taxonomy file gives it."""
    described = []
    for name in names:
        hint = taxonomy.hint(name)
        described.append(f"{name} ({hint.description})" if hint and hint.description else name)
    return "; ".join(described)


def system_prompt(taxonomy: Taxonomy, *, schema_in_prompt: bool, partial: bool) -> str:
    """The structured call's instructions; with ``json_object`` the schema travels in here."""
    text = SYSTEM
    text += "\nAllowed content_type labels: " + _labels(taxonomy, taxonomy.content_types)
    text += "\nAllowed ai_primitives labels: " + _labels(taxonomy, taxonomy.ai_primitives)
    if partial:
        text += "\n" + PARTIAL_NOTE
    if schema_in_prompt:
        text += JSON_OBJECT_SUFFIX + json.dumps(enrichment_schema(taxonomy), ensure_ascii=False)
    return text


def document_message(item: Item, body: str) -> str:
    """The user message: what is known about the item, then its text."""
    header = [f"Title: {item.title}"]
    if item.url:
        header.append(f"URL: {item.url}")
    header.append(f"Source type: {item.source_type.value}")
    if item.created_date:
        header.append(f"Date given by the source: {item.created_date.isoformat()}")
    return "\n".join(header) + "\n\n" + body


def chunk_message(item: Item, chunk: str, index: int, total: int) -> str:
    return f"Document: {item.title}\nPart {index} of {total}:\n\n{chunk}"


def correction(kind: str, problem: str = "") -> str:
    return CORRECTIONS[kind].format(problem=problem)
