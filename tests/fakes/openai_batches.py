"""The Files and Batches endpoints of the fake OpenAI, per OpenAI's published shapes.

Built from /work/shared/reference/openai/batch-files-schema.yaml (the
``Batch``, ``OpenAIFile``, list, delete, ``BatchRequestInput`` and
``BatchRequestOutput`` schemas and the documented limits and statuses):

* ``POST /v1/files`` (multipart ``file`` + ``purpose``), ``GET /v1/files``
  (``purpose``, ``order``, ``limit``, ``after``), ``GET /v1/files/{id}``,
  ``GET /v1/files/{id}/content``, ``DELETE /v1/files/{id}``.
* ``POST /v1/batches`` (``input_file_id``, ``endpoint``, ``completion_window``
  ``24h``, ``metadata``), ``GET /v1/batches`` (newest first, ``after``,
  ``limit`` 1-100), ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``.

A batch is ``validating`` when created; when it is retrieved after
``batch_delay`` seconds it runs every line through the same chat-completions
logic as a direct call (so answers and usage are identical) and ends as
``batch_outcome`` says: ``completed`` (every line answered, lines whose
``custom_id`` contains one of ``batch_line_errors`` go to the error file with
a 500), ``expired`` or ``cancelled`` (only the first ``batch_partial`` share of
lines answered; the rest in the error file with ``batch_expired`` /
``batch_cancelled``), or ``failed``. An input that breaks the rules (not
JSONL, a duplicate ``custom_id``, a wrong ``url`` or ``method``, more than
``max_batch_requests`` lines or ``max_batch_bytes`` bytes) fails validation
with ``errors.data`` naming the line. ``POST .../cancel`` makes the batch
``cancelling``; the next retrieve finds it ``cancelled`` with partial results.
With ``batch_auto=False`` batches stay ``in_progress`` until
``finish_batches()``. ``batch_delete_fails`` answers every file ``DELETE``
with a 500. ``batch_latency`` holds each answer back after the
request was carried out and logged.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from tests.fakes.openai_server import FakeOpenAI

ENDPOINTS = ("/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/moderations",
             "/v1/images/generations", "/v1/images/edits", "/v1/videos")
SUPPORTED = ("/v1/chat/completions",)
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
TERMINAL = ("completed", "failed", "expired", "cancelled")
BATCH_FILE_SECONDS = 30 * 24 * 3600


def _error(message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


class FakeBatches:
    """Files and batches kept in memory, answered through the fake's chat logic."""

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake
        self._lock = threading.Lock()
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._lines: dict[str, list[dict[str, Any]]] = {}
        self._failure: dict[str, list[dict[str, Any]]] = {}
        self._created_mono: dict[str, float] = {}
        self.log: list[dict[str, Any]] = []

    # --- what tests look at --------------------------------------------------------------

    def requests(self) -> list[dict[str, Any]]:
        """Every Files/Batches request: method, path, status, t."""
        with self._lock:
            return [dict(r) for r in self.log]

    def input_lines(self, batch_id: str) -> list[dict[str, Any]]:
        """The parsed request lines a batch was created with."""
        with self._lock:
            return [dict(line) for line in self._lines.get(batch_id, [])]

    def finish_batches(self) -> None:
        """Let every batch waiting with ``batch_auto=False`` finish on its next retrieve."""
        with self._lock:
            for batch in self.batches.values():
                batch["_release"] = True

    def expire_all(self) -> None:
        """Turn every open batch ``expired`` on its next retrieve, as if 24 hours had passed."""
        with self._lock:
            for batch in self.batches.values():
                if batch["status"] not in TERMINAL:
                    batch["_outcome"] = "expired"
                    batch["_release"] = True

    # --- routing --------------------------------------------------------------------------

    def route(self, method: str, path: str, query: str, headers: dict[str, str], raw: bytes
              ) -> tuple[int, Any, str] | None:
        """(status, JSON payload or bytes, content type), or None when the path is not a Files/Batches one."""
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "v1" or parts[1] not in ("files", "batches"):
            return None
        if not self.fake.options()["batch_api"]:  # a compatible server without the Batch API
            return None
        started = time.monotonic()
        if headers.get("authorization") != f"Bearer {self.fake.api_key}":
            result: tuple[int, Any, str] = (401, _error("Incorrect API key provided.", "invalid_api_key"), "json")
        else:
            params = {k: v[-1] for k, v in parse_qs(query).items()}
            try:
                result = self._dispatch(method, parts[1:], params, headers, raw)
            except ValueError as exc:
                result = (400, _error(str(exc)), "json")
        with self._lock:
            self.log.append({"t": started, "method": method, "path": path, "status": result[0],
                             "endpoint": _endpoint(method, parts[1:])})
        latency = self.fake.options()["batch_latency"]
        if latency:  # done and logged, not yet answered: the window a kill -9 must survive
            time.sleep(latency)
        return result

    def _dispatch(self, method: str, parts: list[str], params: dict[str, str], headers: dict[str, str], raw: bytes
                  ) -> tuple[int, Any, str]:
        kind, rest = parts[0], parts[1:]
        if kind == "files":
            if method == "POST" and not rest:
                return self._upload(headers, raw)
            if method == "GET" and not rest:
                return 200, self._list_files(params), "json"
            if len(rest) == 1 and method == "DELETE" and self.fake.options()["batch_delete_fails"]:
                return 500, _error("The server had an error while processing your request."), "json"
            if len(rest) == 1 and method in ("GET", "DELETE"):
                return self._file(rest[0], delete=method == "DELETE")
            if len(rest) == 2 and rest[1] == "content" and method == "GET":
                with self._lock:
                    data = self.contents.get(rest[0])
                if data is None:
                    return 404, _error(f"No such File object: {rest[0]}", param="id"), "json"
                return 200, data, "application/octet-stream"
        if kind == "batches":
            if method == "POST" and not rest:
                return self._create(json.loads(raw or b"{}"))
            if method == "GET" and not rest:
                return 200, self._list_batches(params), "json"
            if method == "GET" and len(rest) == 1:
                return self._retrieve(rest[0])
            if method == "POST" and len(rest) == 2 and rest[1] == "cancel":
                return self._cancel(rest[0])
        return 404, _error(f"Invalid URL ({method} /v1/{'/'.join(parts)})"), "json"

    # --- files ----------------------------------------------------------------------------

    def _upload(self, headers: dict[str, str], raw: bytes) -> tuple[int, Any, str]:
        content_type = headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return 400, _error("Expected multipart/form-data"), "json"
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[name] = (part.get_filename(), part.get_payload(decode=True))
        if "file" not in fields or "purpose" not in fields:
            return 400, _error("Missing required parameter: 'file' and 'purpose'.", param="file"), "json"
        purpose = fields["purpose"][1].decode()
        if purpose not in UPLOAD_PURPOSES:
            return 400, _error(f"Invalid value for 'purpose': {purpose}.", param="purpose"), "json"
        filename, data = fields["file"]
        if purpose == "batch" and not (filename or "").endswith(".jsonl"):
            return 400, _error("Invalid file format for Batch API. Must be .jsonl", param="file"), "json"
        return 200, self._store_file(filename or "upload", data or b"", purpose), "json"

    def _store_file(self, filename: str, data: bytes, purpose: str) -> dict[str, Any]:
        now = int(time.time())
        file = {"id": "file-" + uuid.uuid4().hex[:24], "object": "file", "bytes": len(data), "created_at": now,
                "expires_at": now + BATCH_FILE_SECONDS if purpose.startswith("batch") else None,
                "filename": filename, "purpose": purpose, "status": "processed", "status_details": None}
        with self._lock:
            self.files[file["id"]] = file
            self.contents[file["id"]] = data
        return dict(file)

    def _list_files(self, params: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            files = [dict(f) for f in self.files.values()]
        if params.get("purpose"):
            files = [f for f in files if f["purpose"] == params["purpose"]]
        files.sort(key=lambda f: f["created_at"], reverse=params.get("order", "desc") == "desc")
        return _page(files, params, 10_000)

    def _file(self, file_id: str, *, delete: bool) -> tuple[int, Any, str]:
        with self._lock:
            file = self.files.get(file_id)
            if file is not None and delete:
                del self.files[file_id]
                self.contents.pop(file_id, None)
        if file is None:
            return 404, _error(f"No such File object: {file_id}", param="id"), "json"
        if delete:
            return 200, {"id": file_id, "object": "file", "deleted": True}, "json"
        return 200, dict(file), "json"

    # --- batches --------------------------------------------------------------------------

    def _create(self, body: dict[str, Any]) -> tuple[int, Any, str]:
        for key in ("input_file_id", "endpoint", "completion_window"):
            if key not in body:
                return 400, _error(f"Missing required parameter: '{key}'.", param=key), "json"
        if body["endpoint"] not in ENDPOINTS:
            return 400, _error(f"Invalid value for 'endpoint': {body['endpoint']}.", param="endpoint"), "json"
        if body["completion_window"] != "24h":
            return 400, _error("Invalid value for 'completion_window': only '24h' is supported.",
                               param="completion_window"), "json"
        metadata = body.get("metadata")
        if metadata is not None and (len(metadata) > 16 or any(len(k) > 64 or len(str(v)) > 512 for k, v in metadata.items())):
            return 400, _error("Invalid 'metadata': at most 16 pairs, keys <= 64, values <= 512 chars.",
                               param="metadata"), "json"
        with self._lock:
            file = self.files.get(body["input_file_id"])
            data = self.contents.get(body["input_file_id"])
        if file is None or file["purpose"] != "batch":
            return 400, _error(f"Invalid 'input_file_id': {body['input_file_id']}.", param="input_file_id"), "json"
        now = int(time.time())
        batch = {
            "id": "batch_" + uuid.uuid4().hex[:24], "object": "batch", "endpoint": body["endpoint"],
            "model": None, "errors": None, "input_file_id": file["id"], "completion_window": "24h",
            "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": now,
            "in_progress_at": None, "expires_at": now + 86400, "finalizing_at": None, "completed_at": None,
            "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "usage": None,
            "metadata": metadata,
        }
        lines, failures = self._validate(data or b"", body["endpoint"])
        with self._lock:
            self.batches[batch["id"]] = batch
            self._lines[batch["id"]] = lines
            self._failure[batch["id"]] = failures
            self._created_mono[batch["id"]] = time.monotonic()
            batch["request_counts"]["total"] = len(lines)
            batch["model"] = next((line["body"].get("model") for line in lines), None)
        return 200, _public(batch), "json"

    def _validate(self, data: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        opts = self.fake.options()
        failures: list[dict[str, Any]] = []
        lines: list[dict[str, Any]] = []
        seen: set[str] = set()
        if len(data) > opts["max_batch_bytes"]:
            failures.append({"code": "file_too_large", "message": f"The input file exceeds {opts['max_batch_bytes']} bytes.",
                             "param": None, "line": None})
        for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                failures.append({"code": "invalid_json_line", "message": "This line is not parseable as valid JSON.",
                                 "param": None, "line": number})
                continue
            custom_id = line.get("custom_id")
            if not isinstance(custom_id, str) or custom_id in seen:
                failures.append({"code": "duplicate_custom_id", "message": "The custom_id for this request is a duplicate "
                                 "of another request. The custom_id parameter must be unique for each request in a batch.",
                                 "param": "custom_id", "line": number})
            elif line.get("method") != "POST" or line.get("url") != endpoint or endpoint not in SUPPORTED:
                failures.append({"code": "invalid_request", "message": f"The url must be {endpoint} and method POST.",
                                 "param": "url", "line": number})
            elif not isinstance(line.get("body"), dict):
                failures.append({"code": "missing_required_parameter", "message": "Missing 'body'.",
                                 "param": "body", "line": number})
            seen.add(str(custom_id))
            lines.append(line)
        if len(lines) > opts["max_batch_requests"]:
            failures.append({"code": "too_many_requests",
                             "message": f"The batch input file has more than {opts['max_batch_requests']} requests.",
                             "param": None, "line": None})
        if not lines and not failures:
            failures.append({"code": "empty_file", "message": "The batch input file is empty.", "param": None, "line": None})
        return lines, failures

    def _list_batches(self, params: dict[str, str]) -> dict[str, Any]:
        for batch_id in list(self.batches):
            self._advance(batch_id)
        with self._lock:
            batches = [_public(b) for b in self.batches.values()]
        batches.sort(key=lambda b: (b["created_at"], b["id"]), reverse=True)
        return _page(batches, params, 20, maximum=100)

    def _retrieve(self, batch_id: str) -> tuple[int, Any, str]:
        if batch_id not in self.batches:
            return 404, _error(f"No batch found with id '{batch_id}'.", param="batch_id"), "json"
        self._advance(batch_id)
        with self._lock:
            return 200, _public(self.batches[batch_id]), "json"

    def _cancel(self, batch_id: str) -> tuple[int, Any, str]:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return 404, _error(f"No batch found with id '{batch_id}'.", param="batch_id"), "json"
            if batch["status"] in TERMINAL:
                return 400, _error(f"Cannot cancel a batch with status '{batch['status']}'."), "json"
            batch["status"] = "cancelling"
            batch["cancelling_at"] = int(time.time())
            batch["_outcome"] = "cancelled"
            batch["_release"] = True
            return 200, _public(batch), "json"

    # --- running a batch ----------------------------------------------------------------------

    def _advance(self, batch_id: str) -> None:
        """Move a batch on when it is looked at: fail validation, or run it once its time has come."""
        opts = self.fake.options()
        with self._lock:
            batch = self.batches[batch_id]
            if batch["status"] in TERMINAL:
                return
            failures = self._failure[batch_id]
            due = time.monotonic() - self._created_mono[batch_id] >= opts["batch_delay"]
            release = batch.get("_release") or (opts["batch_auto"] and due)
            outcome = batch.get("_outcome") or opts["batch_outcome"]
            if failures or outcome == "failed":
                batch.update(status="failed", failed_at=int(time.time()),
                             errors={"object": "list", "data": failures or [
                                 {"code": "batch_failed", "message": "The batch failed.", "param": None, "line": None}]})
                return
            if batch["status"] == "validating":
                batch.update(status="in_progress", in_progress_at=int(time.time()))
            if not release:
                return
            batch["status"] = "finalizing"  # claimed: a concurrent look does not run it twice
            lines = list(self._lines[batch_id])
        self._run(batch_id, lines, outcome, opts)

    def _run(self, batch_id: str, lines: list[dict[str, Any]], outcome: str, opts: dict[str, Any]) -> None:
        answered = len(lines) if outcome == "completed" else int(len(lines) * opts["batch_partial"])
        outputs, errors = [], []
        usage = {"input_tokens": 0, "cached_tokens": 0, "output_tokens": 0}
        for index, line in enumerate(lines):
            custom_id = line["custom_id"]
            if index >= answered:
                code = "batch_expired" if outcome == "expired" else "batch_cancelled"
                message = ("This request could not be executed before the completion window expired."
                           if outcome == "expired" else "This request was cancelled before it was executed.")
                errors.append({"id": "batch_req_" + uuid.uuid4().hex[:24], "custom_id": custom_id, "response": None,
                               "error": {"code": code, "message": message}})
                continue
            if any(marker in custom_id for marker in opts["batch_line_errors"]):
                body = {"error": {"message": "The server had an error while processing your request.",
                                  "type": "server_error", "param": None, "code": None}}
                errors.append({"id": "batch_req_" + uuid.uuid4().hex[:24], "custom_id": custom_id,
                               "response": {"status_code": 500, "request_id": "req_" + uuid.uuid4().hex, "body": body},
                               "error": None})
                continue
            answer = next((mode for marker, mode in opts["batch_line_answers"].items() if marker in custom_id), None)
            status, body, record = self.fake.answer_batch_line(line["body"], answer)
            entry = {"id": "batch_req_" + uuid.uuid4().hex[:24], "custom_id": custom_id,
                     "response": {"status_code": status, "request_id": "req_" + uuid.uuid4().hex, "body": body},
                     "error": None}
            (outputs if status == 200 else errors).append(entry)
            if status == 200:
                usage["input_tokens"] += record["usage"]["prompt_tokens"]
                usage["cached_tokens"] += record["usage"]["cached_tokens"]
                usage["output_tokens"] += record["usage"]["completion_tokens"]
        now = int(time.time())
        output_file = self._jsonl_file(f"batch_{batch_id}_output.jsonl", outputs) if outputs else None
        error_file = self._jsonl_file(f"batch_{batch_id}_error.jsonl", errors) if errors else None
        with self._lock:
            batch = self.batches[batch_id]
            batch.update(
                output_file_id=output_file, error_file_id=error_file, finalizing_at=now,
                request_counts={"total": len(lines), "completed": len(outputs), "failed": len(errors)},
                usage={"input_tokens": usage["input_tokens"],
                       "input_tokens_details": {"cached_tokens": usage["cached_tokens"]},
                       "output_tokens": usage["output_tokens"], "output_tokens_details": {"reasoning_tokens": 0},
                       "total_tokens": usage["input_tokens"] + usage["output_tokens"]},
            )
            batch["status"] = outcome
            batch[{"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}[outcome]] = now

    def _jsonl_file(self, name: str, entries: list[dict[str, Any]]) -> str:
        data = "".join(json.dumps(e) + "\n" for e in entries).encode()
        return self._store_file(name, data, "batch_output")["id"]


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_")}


def _page(items: list[dict[str, Any]], params: dict[str, str], default: int, maximum: int | None = None) -> dict[str, Any]:
    limit = int(params.get("limit") or default)
    if limit < 1 or (maximum is not None and limit > maximum):
        raise ValueError(f"Invalid 'limit': {limit}.")
    after = params.get("after")
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    page = items[:limit]
    return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None, "has_more": len(items) > limit}


def _endpoint(method: str, parts: list[str]) -> str:
    kind, rest = parts[0], parts[1:]
    if kind == "files":
        if not rest:
            return "files.create" if method == "POST" else "files.list"
        if len(rest) == 2:
            return "files.content"
        return "files.delete" if method == "DELETE" else "files.retrieve"
    if not rest:
        return "batches.create" if method == "POST" else "batches.list"
    return "batches.cancel" if len(rest) == 2 else "batches.retrieve"
