"""A fake Anthropic Messages API, faithful enough for the real ``anthropic.AsyncAnthropic``.

Built from /work/shared/reference/anthropic/messages-api.md (facts read from
the SDK's types and Anthropic's docs). ``POST /v1/messages`` checks the
headers (the key as ``x-api-key`` or, as SDK 2.x sends it, ``Authorization:
Bearer``; an ``anthropic-version`` date) and the body (``model``,
``max_tokens``, ``messages`` of user/assistant turns, ``system`` as a string
or text blocks, ``tools`` with an object ``input_schema``, ``tool_choice``),
and answers a ``Message``: a ``tool_use`` block whose ``input`` satisfies the
forced tool's schema (the same deterministic answers as the fake OpenAI), or
a ``text`` block; ``stop_reason`` ``tool_use``/``end_turn``/``max_tokens``/
``refusal``; ``usage`` with ``input_tokens``, ``output_tokens`` and the
prompt cache's ``cache_creation_input_tokens``/``cache_read_input_tokens``:
the prefix up to the last ``cache_control`` breakpoint (tools, then system,
then messages) is written on first sight and read afterwards, from
``min_cache_tokens`` on. Errors use the documented body
``{"type": "error", "error": {"type", "message"}, "request_id"}`` and status:
400 ``invalid_request_error`` (also "prompt is too long: N tokens > M
maximum" past ``context_tokens``), 401 ``authentication_error``, 402
``billing_error``, 403 ``permission_error``, 404 ``not_found_error``, 413
``request_too_large``, 429 ``rate_limit_error`` (with ``retry-after``), 500
``api_error``, 529 ``overloaded_error``. A ``script`` of per-request actions
makes faults deterministic, as in the fake OpenAI.

Use from tests::

    with start_fake_anthropic() as fake:
        settings = Settings(enricher="anthropic", anthropic_api_key=fake.api_key, anthropic_base_url=fake.url)
        fake.configure(script=[{"status": 529}])
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler
from typing import Any, Iterator

from tests.fakes import QuietHTTPServer, ServedFake
from tests.fakes.openai_server import REFUSAL_TEXT, Answerer, message_text, schema_errors

DEFAULT_API_KEY = "sk-ant-fake-test-key-0123456789abcdef"
ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
    529: "overloaded_error",
}
ANSWERS = ("normal", "refusal", "max_tokens", "no_tool")


@dataclass
class Options:
    latency: float = 0.0
    context_tokens: int | None = None
    min_cache_tokens: int = 1024
    answer: str = "normal"
    retry_after: float | None = 1.0
    models: tuple[str, ...] = ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5")
    script: list[dict[str, Any]] = field(default_factory=list)


def _tokens(chars: int) -> int:
    return math.ceil(chars / 4)


def _error(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": ERROR_TYPES[status], "message": message},
            "request_id": "req_" + uuid.uuid4().hex[:24]}


def _blocks_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text")


class FakeAnthropic(ServedFake):
    def __init__(self, *, api_key: str = DEFAULT_API_KEY, **options: Any) -> None:
        self.api_key = api_key
        self._lock = threading.Lock()
        self._options = Options()
        self._log: list[dict[str, Any]] = []
        self._cache: set[str] = set()
        self.configure(**options)
        self._server = QuietHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base_url to give the SDK (it adds /v1/messages)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeAnthropic:
        self._serve(self._server, "fake-anthropic")
        return self

    def configure(self, **options: Any) -> None:
        known = {f.name for f in fields(Options)}
        if set(options) - known:
            raise ValueError(f"unknown fake Anthropic options: {sorted(set(options) - known)}")
        if options.get("answer", "normal") not in ANSWERS:
            raise ValueError(f"answer must be one of {ANSWERS}")
        with self._lock:
            for key, value in options.items():
                setattr(self._options, key, [dict(v) for v in value] if key == "script" else value)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._log]

    def stats(self) -> dict[str, Any]:
        log = self.requests()
        ok = [r for r in log if r["status"] == 200]
        keys = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        return {"calls": len(log), "ok": len(ok), "usage": {k: sum(r["usage"][k] for r in ok) for k in keys}}

    # -- one request (handler threads)
    def handle(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any], dict[str, str], float]:
        with self._lock:
            action = self._options.script.pop(0) if self._options.script else {}
            opts = Options(**{f.name: getattr(self._options, f.name) for f in fields(Options)})
        record: dict[str, Any] = {"t": time.monotonic(), "retry_count": headers.get("x-stainless-retry-count"),
                                  "usage": dict.fromkeys(("input_tokens", "output_tokens", "cache_creation_input_tokens",
                                                          "cache_read_input_tokens"), 0)}
        status, body, extra = self._messages(opts, action, headers, raw, record)
        record["status"] = status
        with self._lock:
            self._log.append(record)
        return status, body, extra, action.get("latency", opts.latency)

    def _messages(self, opts: Options, action: dict[str, Any], headers: dict[str, str], raw: bytes,
                  record: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
        if given != self.api_key:
            return 401, _error(401, "invalid x-api-key"), {}
        record["anthropic_version"] = headers.get("anthropic-version")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", headers.get("anthropic-version") or ""):
            return 400, _error(400, "anthropic-version: header is required (e.g. 2023-06-01)"), {}
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return 400, _error(400, "There was an error parsing the body of your request"), {}
        record["body"] = body
        problem = _invalid_request(body)
        if problem:
            return 400, _error(400, problem), {}
        if body["model"] not in opts.models:
            return 404, _error(404, f"model: {body['model']}"), {}
        status = action.get("status")
        if status == 429:
            retry_after = action.get("retry_after", opts.retry_after)
            extra = {"retry-after": str(retry_after)} if retry_after is not None else {}
            return 429, _error(429, "Number of request tokens has exceeded your per-minute rate limit"), extra
        if status in ERROR_TYPES:
            return status, _error(status, action.get("message", f"fake {ERROR_TYPES[status]}")), {}
        segments = _segments(body)
        prompt_tokens = sum(_tokens(len(text)) for text, _ in segments) + 3 * len(body["messages"])
        if opts.context_tokens is not None and prompt_tokens > opts.context_tokens:
            return 400, _error(400, f"prompt is too long: {prompt_tokens} tokens > {opts.context_tokens} maximum"), {}
        read, written = self._cache_tokens(body["model"], segments, opts.min_cache_tokens)
        content, stop = self._answer(body, action.get("answer", opts.answer))
        output = max(_tokens(len(json.dumps(content))), 1)
        usage = {
            "input_tokens": prompt_tokens - read - written,
            "output_tokens": output,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": written, "ephemeral_1h_input_tokens": 0},
            "server_tool_use": None,
            "service_tier": "standard",
        }
        record["usage"] = {k: usage[k] for k in record["usage"]}
        return 200, {
            "id": "msg_" + uuid.uuid4().hex[:24],
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }, {}

    def _cache_tokens(self, model: str, segments: list[tuple[str, bool]], minimum: int) -> tuple[int, int]:
        """(read, written): the prefix up to the last breakpoint, cached from ``minimum`` tokens on."""
        marks = [i for i, (_, breakpoint) in enumerate(segments) if breakpoint]
        if not marks:
            return 0, 0
        prefix = "".join(text for text, _ in segments[: marks[-1] + 1])
        tokens = _tokens(len(prefix))
        if tokens < minimum:
            return 0, 0
        key = model + "\x00" + prefix
        with self._lock:
            if key in self._cache:
                return tokens, 0
            self._cache.add(key)
        return 0, tokens

    def _answer(self, body: dict[str, Any], mode: str) -> tuple[list[dict[str, Any]], str]:
        user = next((_blocks_text(m["content"]) for m in body["messages"] if m["role"] == "user"), "")
        answerer = Answerer(user)
        if mode == "refusal":
            return [{"type": "text", "text": REFUSAL_TEXT}], "refusal"
        choice = body.get("tool_choice") or {}
        tool = next((t for t in body.get("tools") or [] if t["name"] == choice.get("name")), None)
        if tool is None or mode == "no_tool":
            text = answerer.plain()
            if mode == "max_tokens":
                return [{"type": "text", "text": text[: len(text) // 2]}], "max_tokens"
            return [{"type": "text", "text": text}], "end_turn"
        value = answerer.fill(tool["input_schema"])
        errors = schema_errors(value, tool["input_schema"])
        assert not errors, f"the fake's own tool input breaks the schema: {errors}"
        if mode == "max_tokens":
            return [{"type": "text", "text": "Here is"}], "max_tokens"
        block = {"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:24], "name": tool["name"], "input": value}
        return [block], "tool_use"


def _invalid_request(body: dict[str, Any]) -> str | None:
    """What a real server would reject with 400 invalid_request_error (the subset the pipeline could get wrong)."""
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            return f"{key}: Field required"
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return "max_tokens: Input should be a positive integer"
    messages = body["messages"]
    if not isinstance(messages, list) or not messages or messages[0].get("role") != "user":
        return "messages: the first message must use the user role"
    if any(m.get("role") not in ("user", "assistant") for m in messages):
        return "messages: roles must be user or assistant"
    system = body.get("system")
    if system is not None and not isinstance(system, str) and not (
        isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in system)
    ):
        return "system: Input should be a valid string or a list of text blocks"
    for tool in body.get("tools") or []:
        schema = tool.get("input_schema")
        if not tool.get("name") or not isinstance(schema, dict) or schema.get("type") != "object":
            return "tools.0.input_schema: Input should be an object schema"
    choice = body.get("tool_choice")
    if choice is not None:
        if choice.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
        if choice.get("type") == "tool" and choice.get("name") not in {t.get("name") for t in body.get("tools") or []}:
            return "tool_choice.name: no tool of that name"
    return None


def _segments(body: dict[str, Any]) -> list[tuple[str, bool]]:
    """The prompt in the order Anthropic reads it (tools, system, messages), each piece with its breakpoint."""
    segments: list[tuple[str, bool]] = []
    for tool in body.get("tools") or []:
        segments.append((json.dumps(tool.get("input_schema"), sort_keys=True) + tool.get("description", ""),
                         bool(tool.get("cache_control"))))
    system = body.get("system")
    if isinstance(system, str):
        segments.append((system, False))
    for block in system if isinstance(system, list) else []:
        segments.append((block.get("text", ""), bool(block.get("cache_control"))))
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, str):
            segments.append((content, False))
        else:
            segments += [(message_text({"content": [b]}), bool(b.get("cache_control"))) for b in content]
    return segments


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path.split("?")[0] != "/v1/messages":
            self._send(404, _error(404, f"Not found: {self.path}"), {})
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body, extra, latency = self.server.fake.handle(headers, raw)  # type: ignore[attr-defined]
        if latency:
            time.sleep(latency)
        self._send(status, body, extra)

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", payload.get("request_id") or "req_" + uuid.uuid4().hex[:24])
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


@contextmanager
def start_fake_anthropic(**options: Any) -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic(**options).start()
    try:
        yield fake
    finally:
        fake.close()
