"""TAXONOMY_FILE: the user's own content types and AI primitives for the SQLite store.

A YAML or JSON object with ``content_types`` and/or ``ai_primitives``, each a
list of labels; a label is a name, or an object with ``name`` and optional
``description`` (given to OpenAI with the allowed labels) and ``keywords``
(what the offline enricher counts to choose it)::

    content_types:
      - Market News
      - name: Regulation
        description: laws, rulings and standards that bind AI vendors or users
        keywords: [regulation, regulator, law, act, compliance, ruling]
    ai_primitives: [Coding, Research, Automation]

A list that is left out keeps the default labels. Names follow Notion's
option rules (no commas, at most 100 characters) so the same file can create
a Notion database (``notion setup``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


from .models import LabelHint, Taxonomy

KEYS = ("content_types", "ai_primitives")
MAX_LABEL = 100


class TaxonomyFileError(ValueError):
    """What is wrong with the file, in one line."""


def load_taxonomy(path: Path) -> Taxonomy:
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaxonomyFileError(f"cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise TaxonomyFileError("it is not UTF-8 text") from None
    import yaml  # only when a taxonomy file is set (start-up, docs/performance.md)

    try:
        data = json.loads(raw) if path.suffix.lower() == ".json" else yaml.safe_load(raw)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise TaxonomyFileError(f"it is not valid {kind} ({' '.join(str(exc).split())[:160]})") from None
    return parse_taxonomy(data)


def parse_taxonomy(data: Any) -> Taxonomy:
    if not isinstance(data, dict) or not data:
        raise TaxonomyFileError("expected an object with content_types and/or ai_primitives")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise TaxonomyFileError(f"unknown key {unknown[0]!r} (expected content_types and/or ai_primitives)")
    default = Taxonomy()
    lists: dict[str, tuple[str, ...]] = {}
    hints: list[LabelHint] = []
    for key in KEYS:
        if key not in data:
            lists[key] = getattr(default, key)
            continue
        entries = data[key]
        if not isinstance(entries, list) or not entries:
            raise TaxonomyFileError(f"{key} must be a non-empty list of labels")
        labels = [_label(key, n, entry) for n, entry in enumerate(entries, 1)]
        seen: set[str] = set()
        for label in labels:
            if label.name.casefold() in seen:
                raise TaxonomyFileError(f"{key} lists {label.name!r} twice")
            seen.add(label.name.casefold())
        lists[key] = tuple(label.name for label in labels)
        hints.extend(label for label in labels if label.description or label.keywords)
    return Taxonomy(content_types=lists["content_types"], ai_primitives=lists["ai_primitives"], hints=tuple(hints))


def _label(key: str, number: int, entry: Any) -> LabelHint:
    where = f"{key} entry {number}"
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict):
        raise TaxonomyFileError(f"{where} must be a name or an object with a name")
    extra = sorted(set(entry) - {"name", "description", "keywords"})
    if extra:
        raise TaxonomyFileError(f"{where} has an unknown field {extra[0]!r} (name, description, keywords)")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise TaxonomyFileError(f"{where} has no name")
    name = " ".join(name.split())
    if "," in name or len(name) > MAX_LABEL:
        raise TaxonomyFileError(f"{where} {name[:40]!r}: a label has no comma and at most {MAX_LABEL} characters")
    description = entry.get("description") or ""
    keywords = entry.get("keywords") or []
    if not isinstance(description, str):
        raise TaxonomyFileError(f"{where} {name!r}: description must be text")
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
        raise TaxonomyFileError(f"{where} {name!r}: keywords must be a list of words")
    return LabelHint(name, " ".join(description.split()), tuple(k.strip().lower() for k in keywords))
