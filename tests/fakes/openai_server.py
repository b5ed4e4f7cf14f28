"""A fake OpenAI chat-completions server, faithful enough for the real ``openai.AsyncOpenAI``.

``POST /v1/chat/completions`` answers with the real response shape
(``chatcmpl-`` id, ``choices[0].message`` with ``content``/``refusal``,
``usage`` with token details, ``x-ratelimit-*`` and ``x-request-id``
headers) and the real error bodies ``{"error": {message, type, param,
code}}``. Answers are derived deterministically from the first user message:

- ``json_schema``: an object satisfying the requested schema (enums honoured);
  ``summary`` is the first sentences of the text, ``content_type`` the allowed
  label mentioned first in the text (else one picked by a hash of the text),
  ``vendor`` the first well-known vendor named, ``published_date`` the first
  ``YYYY-MM-DD`` in the text.
- ``json_object``: the same, using the JSON schema found in the messages.
- no ``response_format``: a plain-text summary (``"Summary: ..."``).

Tokens are estimated as characters / 4. Faults: latency (+ jitter), shares of
5xx and 429, a context size (400 ``context_length_exceeded``), a wrong key
(401), exhausted quota (429 ``insufficient_quota``), a server that rejects
``json_schema`` (400), and answers that are refusals, cut off
(``finish_reason: length``), invalid JSON, fenced JSON or off-taxonomy. A
``script`` of per-request actions makes a sequence of faults deterministic.

Use from tests::

    with start_fake_openai(context_tokens=8000) as fake:
        settings = Settings(openai_api_key=fake.api_key, openai_base_url=fake.url)
        fake.configure(script=[{"status": 429, "retry_after_ms": 5}])
        fake.stats()["calls"]

or on its own: ``python -m tests.fakes.openai_server --port 8788`` and drive it
with ``POST /__control`` (JSON of options, ``{"reset": true}``) and
``GET /__stats`` / ``GET /__requests``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler
from typing import Any, Iterator

from tests.fakes import QuietHTTPServer, ServedFake, max_in_window
from tests.fakes.openai_batches import FakeBatches

DEFAULT_API_KEY = "sk-fake-test-key-0123456789abcdef"
ANSWER_MODES = ("normal", "refusal", "length", "invalid_json", "off_taxonomy", "fenced")
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
VENDORS = (
    "OpenAI", "Anthropic", "Google", "Microsoft", "Meta", "NVIDIA", "Amazon", "AWS",
    "Mistral", "Notion", "Apple", "IBM", "Salesforce", "Cohere", "Hugging Face",
)
# What OpenAI answers in ``model`` for an alias: the dated snapshot it served.
SNAPSHOTS = {
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
    "o4-mini": "o4-mini-2025-04-16",
}
SCRIPT_SHORTHANDS: dict[str, dict[str, Any]] = {
    "429": {"status": 429, "retry_after": 0},
    "500": {"status": 500},
    "503": {"status": 503},
    "quota": {"status": 429, "code": "insufficient_quota"},
    "reject_json_schema": {"reject_json_schema": True},
    **{mode: {"answer": mode} for mode in ANSWER_MODES},
}

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_HEADER_LINE = re.compile(r"^[A-Z][\w ]{0,30}:( |$)")
_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


@dataclass
class Options:
    """Behaviour settable with ``configure(**options)`` or ``POST /__control``."""

    latency: float = 0.0
    jitter: float = 0.0
    error_rate_5xx: float = 0.0
    error_rate_429: float = 0.0
    retry_after: float | None = 1.0
    retry_after_ms: int | None = None
    context_tokens: int | None = None
    reject_json_schema: bool = False
    quota_exhausted: bool = False
    answer: str = "normal"
    response_model: str | None = None
    cached_share: float = 0.0
    prompt_cache: bool = False
    reject_params: list[str] = field(default_factory=list)
    server: str = "openai"
    server_context: int | None = None
    ollama_num_ctx: int | None = None
    local_api_key: bool = False  # vLLM / llama.cpp started with --api-key: their own endpoints want it too
    model_context: int = 131072
    served_model: str = "gpt-4.1-mini"
    batch_api: bool = True
    batch_latency: float = 0.0
    batch_auto: bool = True
    batch_delay: float = 0.0
    batch_outcome: str = "completed"
    batch_partial: float = 0.5
    batch_line_errors: list[str] = field(default_factory=list)
    batch_line_answers: dict[str, str] = field(default_factory=dict)
    batch_delete_fails: bool = False
    max_batch_requests: int = 50_000
    max_batch_bytes: int = 200 * 1024 * 1024
    leak_key_in_errors: bool = False
    rpm_limit: int = 500
    tpm_limit: int = 200_000
    seed: int = 0
    script: list[Any] = field(default_factory=list)


# --- answers ------------------------------------------------------------------------


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def document_body(text: str) -> str:
    """The text without a leading block of ``Key: value`` header lines."""
    head, sep, rest = text.partition("\n\n")
    if sep and rest.strip() and all(_HEADER_LINE.match(line) for line in head.splitlines() if line.strip()):
        return rest
    return text


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(" ".join(text.split())) if s]


def _words(text: str, limit: int) -> str:
    words = text.split()
    return " ".join(words[:limit])


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16)


def _labels_in_order(text: str, allowed: list[str]) -> list[str]:
    lowered = text.lower()
    found = [(lowered.find(label.lower()), label) for label in allowed if label.lower() in lowered]
    return [label for _, label in sorted(found)]


class Answerer:
    """Builds the deterministic content for one document text."""

    def __init__(self, text: str) -> None:
        self.body = document_body(text)
        self.sentences = sentences(self.body) or ["The document is empty."]
        self.hash = _digest(self.body)

    def summary(self) -> str:
        return _words(" ".join(self.sentences[:3]), 170)

    def sentences_padded(self, count: int) -> list[str]:
        picked = [_words(s, 40) for s in self.sentences[:count]]
        while len(picked) < count:
            picked.append(f"Point {len(picked) + 1} of the document is not elaborated further.")
        return picked

    def label(self, allowed: list[str]) -> str:
        mentioned = _labels_in_order(self.body, allowed)
        return mentioned[0] if mentioned else allowed[self.hash % len(allowed)]

    def labels(self, allowed: list[str], low: int, high: int) -> list[str]:
        chosen = _labels_in_order(self.body, allowed)[: max(high, 1)] or [allowed[self.hash % len(allowed)]]
        for label in allowed:
            if len(chosen) >= low:
                break
            if label not in chosen:
                chosen.append(label)
        return chosen

    def vendor(self) -> str | None:
        hits = [(m.start(), v) for v in VENDORS for m in [re.search(rf"\b{re.escape(v)}\b", self.body)] if m]
        return min(hits)[1] if hits else None

    def published_date(self) -> str | None:
        match = _ISO_DATE.search(self.body)
        return match.group(0) if match else None

    def plain(self) -> str:
        return "Summary: " + _words(" ".join(self.sentences[:2]), 60)

    def fill(self, schema: dict[str, Any] | None, name: str = "") -> Any:
        """A value for ``schema`` (named ``name``) that validates against it."""
        schema = schema or {}
        types = schema.get("type", "object")
        types = types if isinstance(types, list) else [types]
        if "enum" in schema:
            return self.label(list(schema["enum"]))
        if name == "vendor" and "null" in types:
            return self.vendor()
        if name == "published_date" and "null" in types:
            return self.published_date()
        kind = next((t for t in types if t != "null"), "null")
        if kind == "object":
            return {key: self.fill(sub, key) for key, sub in schema.get("properties", {}).items()}
        if kind == "array":
            return self._array(schema, name)
        if kind == "string":
            return self._string(name)
        if kind in ("integer", "number"):
            return 0
        if kind == "boolean":
            return False
        return None

    def _array(self, schema: dict[str, Any], name: str) -> list[Any]:
        low, high = int(schema.get("minItems", 1)), int(schema.get("maxItems", max(schema.get("minItems", 1), 3)))
        items = schema.get("items", {})
        if "enum" in items:
            return self.labels(list(items["enum"]), low, min(high, 2) if high >= low else low)
        count = max(low, min(3, high))
        if name == "key_insights" or items.get("type") == "string":
            return self.sentences_padded(count)
        return [self.fill(items) for _ in range(count)]

    def _string(self, name: str) -> str:
        if name == "summary":
            return self.summary()
        if name == "executive_summary":
            return " ".join(self.sentences_padded(5))
        return _words(self.sentences[0], 30)


def schema_in_messages(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first JSON object with ``properties`` written into a message (json_object mode)."""
    decoder = json.JSONDecoder()
    for message in messages:
        text = message_text(message)
        for match in re.finditer(r"\{", text):
            try:
                value, _ = decoder.raw_decode(text, match.start())
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict) and isinstance(value.get("properties"), dict):
                return value
    return None


def off_taxonomy(value: Any, schema: dict[str, Any] | None) -> Any:
    """The same answer with every enum label bent slightly out of the allowed set."""
    if not isinstance(value, dict) or not schema:
        return value
    bent = dict(value)
    for key, sub in schema.get("properties", {}).items():
        if "enum" in sub and isinstance(bent.get(key), str):
            bent[key] = bent[key].lower()[:-1]
        elif "enum" in sub.get("items", {}) and isinstance(bent.get(key), list):
            bent[key] = [v.lower()[:-1] for v in bent[key]]
    return bent


# --- a mini JSON-schema validator (the subset used by OpenAI's spec and our schemas) ----

_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def schema_errors(instance: Any, schema: dict[str, Any], root: dict[str, Any] | None = None, path: str = "$") -> list[str]:
    """Where ``instance`` breaks ``schema``: $ref, anyOf, type, enum, properties, items, sizes."""
    root = root if root is not None else schema
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return [] if target is None else schema_errors(instance, target, root, path)  # not copied: unchecked
    if "anyOf" in schema:
        if all(schema_errors(instance, option, root, path) for option in schema["anyOf"]):
            return [f"{path}: matches no anyOf option"]
    errors: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is_type(instance, k) for k in kinds):
            return [f"{path}: {instance!r:.60} is not of type {kinds}"]
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: {instance!r} not in enum")
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        errors += [f"{path}: missing {key!r}" for key in schema.get("required", []) if key not in instance]
        if schema.get("additionalProperties") is False:
            errors += [f"{path}: unexpected {key!r}" for key in instance if key not in props]
        for key, value in instance.items():
            if key in props:
                errors += schema_errors(value, props[key], root, f"{path}.{key}")
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, value in enumerate(instance):
                errors += schema_errors(value, schema["items"], root, f"{path}[{i}]")
    return errors


# --- the server ------------------------------------------------------------------------


def _estimate_tokens(chars: int) -> int:
    return math.ceil(chars / 4)


OLLAMA_SERVER_DEFAULT_CONTEXT = 4096


def _local_context(opts: Options) -> int | None:
    """The context a local server runs the model with (None: OpenAI, or no limit set)."""
    if opts.server == "ollama":
        return opts.ollama_num_ctx or min(opts.model_context, OLLAMA_SERVER_DEFAULT_CONTEXT)
    if opts.server in ("vllm", "llama.cpp"):
        return opts.server_context
    return None


def local_server_info(opts: Options, method: str, path: str, body: dict[str, Any], model: str | None) -> dict[str, Any] | None:
    """What Ollama (POST /api/show), vLLM (GET /v1/models) or llama.cpp (GET /props) answer; None: 404."""
    if opts.server == "ollama" and (method, path) == ("POST", "/api/show"):
        parameters = 'stop "<|eot_id|>"\ntemperature 0.6'
        if opts.ollama_num_ctx:
            parameters = f"num_ctx {opts.ollama_num_ctx}\n" + parameters
        name = body.get("model") or body.get("name")
        return {
            "modelfile": f"FROM {name}",
            "parameters": parameters,
            "template": "{{ .Prompt }}",
            "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                        "parameter_size": "8.0B", "quantization_level": "Q4_K_M"},
            "model_info": {"general.architecture": "llama", "general.parameter_count": 8030261248,
                           "llama.context_length": opts.model_context, "llama.embedding_length": 4096},
            "capabilities": ["completion", "tools"],
            "modified_at": "2026-10-01T12:00:00.000000000Z",
        }
    if opts.server == "vllm" and (method, path) == ("GET", "/v1/models"):
        return {"object": "list", "data": [{
            "id": model, "object": "model", "created": 1764000000, "owned_by": "vllm", "root": model, "parent": None,
            "max_model_len": opts.server_context,
            "permission": [{"id": "modelperm-fake", "object": "model_permission", "allow_sampling": True}],
        }]}
    if opts.server == "llama.cpp" and (method, path) == ("GET", "/props"):
        return {
            "default_generation_settings": {"id": 0, "n_ctx": opts.server_context, "speculative": False,
                                            "is_processing": False, "params": {"n_predict": -1, "temperature": 0.8}},
            "total_slots": 1,
            "model_path": "/models/model.gguf",
            "chat_template": "{{ messages }}",
            "build_info": "b6000-fake",
        }
    return None


def _cache_text(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
    """The prompt as the cache sees it: the schema (tools and formats come first), then the messages."""
    return json.dumps(schema or {}, sort_keys=True) + "".join(message_text(m) for m in messages)


def _error(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class FakeOpenAI(ServedFake):
    """The fake server; start it with ``start()`` or as a context manager."""

    def __init__(self, *, api_key: str = DEFAULT_API_KEY, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self.api_key = api_key
        self._lock = threading.Lock()
        self._options = Options()
        self._rng = random.Random(0)
        self._log: list[dict[str, Any]] = []
        self._cache: dict[str, list[str]] = {}
        self._probes: list[dict[str, Any]] = []
        self.batches = FakeBatches(self)
        self._in_flight = 0
        self._max_in_flight = 0
        self.configure(**options)
        self._server = QuietHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # -- life cycle
    @property
    def root_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The base_url to give the SDK (ends in /v1)."""
        return self.root_url + "/v1"

    def env(self) -> dict[str, str]:
        """The settings that make the pipeline enrich with this fake."""
        return {"ENRICHER": "openai", "OPENAI_API_KEY": self.api_key, "OPENAI_BASE_URL": self.url}

    def start(self) -> FakeOpenAI:
        self._serve(self._server, "fake-openai")
        return self

    def __enter__(self) -> FakeOpenAI:
        return self.start() if self._thread is None else self

    # -- control
    def configure(self, **options: Any) -> None:
        """Change behaviour; ``script`` replaces the queue of per-request actions."""
        known = {f.name for f in fields(Options)}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"unknown fake OpenAI options: {sorted(unknown)}")
        if options.get("answer", "normal") not in ANSWER_MODES:
            raise ValueError(f"answer must be one of {ANSWER_MODES}")
        with self._lock:
            for key, value in options.items():
                if key == "script":
                    value = [SCRIPT_SHORTHANDS[v] if isinstance(v, str) else dict(v) for v in value]
                setattr(self._options, key, value)
            if "seed" in options:
                self._rng = random.Random(options["seed"])

    def local_endpoint(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            opts = Options(**{f.name: getattr(self._options, f.name) for f in fields(Options)})
        return local_server_info(opts, method, path, body, opts.served_model)

    def answer_batch_line(self, body: dict[str, Any], answer: str | None) -> tuple[int, dict[str, Any], dict[str, Any]]:
        """One line of a batch, answered like a direct chat completion (not logged as one)."""
        with self._lock:
            opts = Options(**{f.name: getattr(self._options, f.name) for f in fields(Options)})
        record: dict[str, Any] = {"usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
                                            "cached_tokens": 0}}
        headers = {"authorization": f"Bearer {self.api_key}"}
        action = {"answer": answer} if answer else {}
        status, response, _ = self._chat(opts, action, None, headers, json.dumps(body).encode(), record)
        return status, response, record

    def log_probe(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self._probes.append({"method": method, "path": path, "status": status})

    def probes(self) -> list[dict[str, Any]]:
        """Requests to endpoints other than chat completions (the context probes), answered or 404."""
        with self._lock:
            return list(self._probes)

    def reset(self) -> None:
        """Forget the request log and statistics (options stay)."""
        with self._lock:
            self._log.clear()
            self._max_in_flight = self._in_flight

    def options(self) -> dict[str, Any]:
        with self._lock:
            return asdict(self._options)

    def requests(self) -> list[dict[str, Any]]:
        """One record per request: time (monotonic), path, status, model, format, messages, tokens."""
        with self._lock:
            return [dict(r) for r in self._log]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            log = list(self._log)
            max_in_flight = self._max_in_flight
        chat = [r for r in log if r["path"].endswith("/chat/completions")]
        ok = [r for r in chat if r["status"] == 200]
        times = sorted(r["t"] for r in chat)
        by_status: dict[str, int] = {}
        for r in chat:
            by_status[str(r["status"])] = by_status.get(str(r["status"]), 0) + 1
        return {
            "calls": len(chat),
            "ok": len(ok),
            "by_status": by_status,
            "usage": {
                key: sum(r["usage"][key] for r in ok)
                for key in ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens")
            },
            "timestamps": times,
            "max_in_1s": max_in_window(times, 1.0),
            "max_in_10s": max_in_window(times, 10.0),
            "max_concurrency": max_in_flight,
        }

    # -- request handling (called from handler threads)
    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _record(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._log.append(record)

    def _next_action(self) -> tuple[Options, dict[str, Any], float, str | None]:
        """Options snapshot, this request's script action, its latency and random fault (5xx/429)."""
        with self._lock:
            action = self._options.script.pop(0) if self._options.script else {}
            opts = Options(**{f.name: getattr(self._options, f.name) for f in fields(Options)})
            fault_draw, jitter_draw = self._rng.random(), self._rng.random()
        delay = action.get("latency", opts.latency + jitter_draw * opts.jitter)
        fault = None
        if fault_draw < opts.error_rate_5xx:
            fault = "5xx"
        elif fault_draw < opts.error_rate_5xx + opts.error_rate_429:
            fault = "429"
        return opts, action, delay, fault

    def _rate_headers(self, now: float) -> dict[str, str]:
        with self._lock:
            recent = [r for r in self._log if now - r["t"] < 60.0]
        used_tokens = sum(r.get("usage", {}).get("total_tokens", 0) for r in recent)
        return {
            "x-ratelimit-limit-requests": str(self._options.rpm_limit),
            "x-ratelimit-remaining-requests": str(max(self._options.rpm_limit - len(recent), 0)),
            "x-ratelimit-reset-requests": f"{max(int(60000 / self._options.rpm_limit), 1)}ms",
            "x-ratelimit-limit-tokens": str(self._options.tpm_limit),
            "x-ratelimit-remaining-tokens": str(max(self._options.tpm_limit - used_tokens, 0)),
            "x-ratelimit-reset-tokens": "6m0s" if used_tokens else "0s",
        }

    def handle_chat(self, headers: dict[str, str], raw: bytes, started: float) -> tuple[int, dict[str, Any], dict[str, str]]:
        opts, action, delay, fault = self._next_action()
        record: dict[str, Any] = {
            "t": started,
            "path": "/v1/chat/completions",
            "retry_count": headers.get("x-stainless-retry-count"),
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cached_tokens": 0},
        }
        status, body, extra = self._chat(opts, action, fault, headers, raw, record)
        record["status"] = status
        self._record(record)  # logged on arrival: a request whose answer the client never waits for still counts
        if delay > 0:
            time.sleep(delay)
        return status, body, {**self._rate_headers(time.monotonic()), **extra}

    def _chat(
        self, opts: Options, action: dict[str, Any], fault: str | None, headers: dict[str, str], raw: bytes, record: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        auth = headers.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            given = auth.removeprefix("Bearer ")
            shown = given if opts.leak_key_in_errors else (given[:7] + "*" * 8 + given[-4:] if len(given) > 11 else "***")
            message = (
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
            return 401, _error(message, "invalid_request_error", "invalid_api_key"), {}
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return 400, _error("We could not parse the JSON body of your request.", "invalid_request_error", None), {}
        model = body.get("model")
        messages = body.get("messages")
        record["model"] = model
        record["messages"] = messages
        record["response_format"] = (body.get("response_format") or {}).get("type")
        record["prompt_cache_key"] = body.get("prompt_cache_key")
        rejected = [p for p in opts.reject_params if p in body]
        if rejected:
            message = f"Unrecognized request argument supplied: {rejected[0]}"
            return 400, _error(message, "invalid_request_error", None), {}
        if not model or not isinstance(messages, list) or not messages:
            missing = "model" if not model else "messages"
            return 400, _error(f"Missing required parameter: '{missing}'.", "invalid_request_error", "missing_required_parameter", missing), {}
        if opts.quota_exhausted or action.get("code") == "insufficient_quota":
            return 429, self._quota_error(), {}
        status = action.get("status") or {"5xx": 500, "429": 429}.get(fault or "")
        if status == 429:
            return self._rate_limited(model, action, opts)
        if status in (500, 502, 503):
            return self._server_error(status)
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema" and (opts.reject_json_schema or action.get("reject_json_schema")):
            message = "Invalid value for 'response_format': 'json_schema' is not supported by this server; use 'json_object' or 'text'."
            return 400, _error(message, "invalid_request_error", None, "response_format"), {}
        schema = response_format.get("json_schema", {}).get("schema") if response_format.get("type") == "json_schema" else None
        prompt_chars = sum(len(message_text(m)) for m in messages) + (len(json.dumps(schema)) if schema else 0)
        prompt_tokens = _estimate_tokens(prompt_chars) + 3 * len(messages)
        if opts.context_tokens is not None and prompt_tokens > opts.context_tokens:
            message = (
                f"This model's maximum context length is {opts.context_tokens} tokens. However, your messages "
                f"resulted in {prompt_tokens} tokens. Please reduce the length of the messages."
            )
            return 400, _error(message, "invalid_request_error", "context_length_exceeded", "messages"), {}
        limit = _local_context(opts)
        if limit is not None and prompt_tokens > limit:
            if opts.server == "ollama":  # Ollama keeps the last num_ctx tokens and says nothing
                record["truncated"] = True
                prompt_tokens = limit
            elif opts.server == "llama.cpp":
                return 400, {"error": {"code": 400, "type": "exceed_context_size_error",
                                       "message": "the request exceeds the available context size, try increasing it",
                                       "n_prompt_tokens": prompt_tokens, "n_ctx": limit}}, {}
            else:
                message = (f"This model's maximum context length is {limit} tokens. However, you requested "
                           f"{prompt_tokens} tokens in the messages. Please reduce the length of the messages.")
                return 400, {"object": "error", "message": message, "type": "BadRequestError", "param": None,
                             "code": 400}, {}
        content, refusal, finish = self._answer(body, messages, response_format, action.get("answer", opts.answer))
        completion_tokens = max(_estimate_tokens(len(content or refusal or "")), 1)
        cached = 0
        if prompt_tokens >= 1024 and opts.cached_share > 0:
            cached = int(prompt_tokens * opts.cached_share) // 128 * 128
        elif opts.prompt_cache:
            cached = self._cached_prefix_tokens(body.get("prompt_cache_key"), _cache_text(messages, schema))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        record["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cached_tokens": cached,
        }
        return 200, {
            "id": "chatcmpl-" + uuid.uuid4().hex[:29],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": opts.response_model or SNAPSHOTS.get(model, model),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal, "annotations": []},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_fake0openai",
        }, {}

    def _cached_prefix_tokens(self, key: str | None, text: str) -> int:
        """Like OpenAI's prompt cache: the longest prefix shared with an earlier prompt of the same key,
        in steps of 128 tokens, from 1024 tokens on (a prompt without a key shares with every prompt)."""
        with self._lock:
            earlier = self._cache.setdefault(key or "", [])
            shared = max((len(os.path.commonprefix([text, e])) for e in earlier), default=0)
            earlier.append(text)
        tokens = _estimate_tokens(shared) // 128 * 128
        return tokens if tokens >= 1024 else 0

    def _answer(
        self, body: dict[str, Any], messages: list[dict[str, Any]], response_format: dict[str, Any], mode: str
    ) -> tuple[str | None, str | None, str]:
        user = next((message_text(m) for m in messages if m.get("role") == "user"), "")
        answerer = Answerer(user)
        kind = response_format.get("type")
        if mode == "refusal":
            return None, REFUSAL_TEXT, "stop"
        if kind in ("json_schema", "json_object"):
            schema = response_format["json_schema"].get("schema") if kind == "json_schema" else schema_in_messages(messages)
            value = answerer.fill(schema) if schema else {"summary": answerer.summary()}
            if mode == "off_taxonomy":
                value = off_taxonomy(value, schema)
            content = json.dumps(value, ensure_ascii=False)
            if mode == "invalid_json":
                content = "Here is the JSON you asked for: " + content[:-1]
            elif mode == "fenced":
                content = "```json\n" + content + "\n```"
        else:
            content = answerer.plain()
        if mode == "length":
            return content[: max(len(content) // 2, 1)], None, "length"
        return content, None, "stop"

    def _quota_error(self) -> dict[str, Any]:
        message = (
            "You exceeded your current quota, please check your plan and billing details. For more information "
            "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
        )
        return _error(message, "insufficient_quota", "insufficient_quota")

    def _rate_limited(self, model: str, action: dict[str, Any], opts: Options) -> tuple[int, dict[str, Any], dict[str, str]]:
        retry_after = action.get("retry_after", opts.retry_after if "retry_after_ms" not in action else None)
        retry_after_ms = action.get("retry_after_ms", opts.retry_after_ms)
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["retry-after"] = str(math.ceil(retry_after))
        if retry_after_ms is not None:
            headers["retry-after-ms"] = str(int(retry_after_ms))
        wait = f"{retry_after_ms}ms" if retry_after_ms is not None else f"{retry_after or 1:g}s"
        message = (
            f"Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
            f"Limit {opts.rpm_limit}, Used {opts.rpm_limit}, Requested 1. Please try again in {wait}. "
            "Visit https://platform.openai.com/account/rate-limits to learn more."
        )
        return 429, _error(message, "requests", "rate_limit_exceeded"), headers

    def _server_error(self, status: int) -> tuple[int, dict[str, Any], dict[str, str]]:
        if status == 503:
            message = "The server is overloaded or not ready yet."
            return 503, _error(message, "server_error", "overloaded"), {}
        message = "The server had an error while processing your request. Sorry about that!"
        return status, _error(message, "server_error", None), {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-openai/1.0"

    @property
    def fake(self) -> FakeOpenAI:
        return self.server.fake  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms each
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.send_header("x-request-id", "req_" + uuid.uuid4().hex)
            self.send_header("openai-version", "2020-10-01")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout)

    def do_POST(self) -> None:
        started = time.monotonic()
        raw = self._body()
        path = self.path.split("?")[0]
        if path == "/__control":
            options = json.loads(raw or b"{}")
            if options.pop("reset", False):
                self.fake.reset()
            try:
                self.fake.configure(**options)
            except ValueError as exc:
                self._send(400, {"error": str(exc)})
                return
            self._send(200, self.fake.options())
            return
        if path != "/v1/chat/completions":
            if self._files_or_batches("POST", raw):
                return
            if not self._local_server("POST", path, raw):
                self._send(404, _error(f"Invalid URL (POST {path})", "invalid_request_error", None))
                self.fake.log_probe("POST", path, 404)
            return
        self.fake._enter()
        try:
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body, extra = self.fake.handle_chat(headers, raw, started)
            extra["openai-processing-ms"] = str(int((time.monotonic() - started) * 1000))
            self._send(status, body, extra)
        finally:
            self.fake._leave()

    def _files_or_batches(self, method: str, raw: bytes) -> bool:
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = self.fake.batches.route(method, path, query, headers, raw)
        if answer is None:
            return False
        status, payload, content_type = answer
        self._send(status, payload, content_type="application/json" if content_type == "json" else content_type)
        return True

    def do_DELETE(self) -> None:
        if not self._files_or_batches("DELETE", b""):
            self._send(404, _error(f"Invalid URL (DELETE {self.path})", "invalid_request_error", None))

    def _local_server(self, method: str, path: str, raw: bytes) -> bool:
        """Answer a local server's own endpoint (context probes); False when this server has none there."""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {}
        answer = self.fake.local_endpoint(method, path, body)
        if answer is None:
            return False
        if self.fake.options()["local_api_key"] and self.headers.get("authorization") != f"Bearer {self.fake.api_key}":
            self._send(401, {"error": {"message": "Unauthorized", "type": "invalid_request_error", "code": 401}})
            self.fake.log_probe(method, path, 401)
            return True
        self._send(200, answer)
        self.fake.log_probe(method, path, 200)
        return True

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/__stats":
            self._send(200, self.fake.stats())
        elif path == "/__requests":
            self._send(200, self.fake.requests())
        elif self._files_or_batches("GET", b""):
            return
        elif self._local_server("GET", path, b""):
            return
        elif path == "/v1/models":
            models = [{"id": m, "object": "model", "created": 1744588800, "owned_by": "system"} for m in SNAPSHOTS]
            self._send(200, {"object": "list", "data": models})
            self.fake.log_probe("GET", path, 200)
        else:
            self._send(404, _error(f"Invalid URL (GET {path})", "invalid_request_error", None))
            self.fake.log_probe("GET", path, 404)


@contextmanager
def start_fake_openai(**options: Any) -> Iterator[FakeOpenAI]:
    """Run a fake on an ephemeral 127.0.0.1 port for the duration of the block."""
    fake = FakeOpenAI(**options).start()
    try:
        yield fake
    finally:
        fake.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI chat-completions server for tests and benchmarks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8788)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--error-rate-5xx", type=float, default=0.0)
    parser.add_argument("--error-rate-429", type=float, default=0.0)
    parser.add_argument("--context-tokens", type=int, default=None)
    parser.add_argument("--reject-json-schema", action="store_true")
    args = parser.parse_args(argv)
    fake = FakeOpenAI(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        latency=args.latency,
        jitter=args.jitter,
        error_rate_5xx=args.error_rate_5xx,
        error_rate_429=args.error_rate_429,
        context_tokens=args.context_tokens,
        reject_json_schema=args.reject_json_schema,
    )
    print(f"fake OpenAI on {fake.url} (key {fake.api_key})", flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake._server.server_close()


if __name__ == "__main__":
    main()
