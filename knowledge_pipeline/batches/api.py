"""OpenAI's Files and Batches endpoints through the ServiceGateway (service ``openai_batch``).

The model calls of a batch are not API calls of this run, so these requests
have their own service name: the ``api_call_complete`` events of service
``openai`` stay the model calls, each with its tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar


from ..config import Settings
from ..errors import ServiceError
from ..services import ServiceGateway
from ..enrichers.openai import classify_error, sdk_client
from ..enrichers.transport import LazySdkClient

SERVICE = "openai_batch"
ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
METADATA_KEY = "kp_batch"
# Documented limits of one batch input file: 50,000 requests and 200 MB.
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
TERMINAL = ("completed", "failed", "expired", "cancelled")
CHUNK_BYTES = 1 << 16  # how much of an output file is read at a time

T = TypeVar("T")


class BatchApi(LazySdkClient):
    def __init__(self, settings: Settings, gateway: ServiceGateway) -> None:
        self._settings = settings
        self._gateway = gateway

    def _new_client(self) -> Any:
        return sdk_client(self._settings, max(self._settings.api_timeout, 60.0))

    async def _call(self, operation: str, fn: Callable[[], Awaitable[T]], **context: Any) -> T:
        def classify(exc: BaseException) -> ServiceError:
            error = classify_error(exc, secrets=self._settings.secrets, timeout=self._settings.api_timeout)
            if error.status_code == 404:  # a batch or file this server does not know, not a wrong model: not fatal
                error = ServiceError(SERVICE, f"OpenAI Batch API {operation}: not found (404)",
                                     status_code=404, code=error.code or "not_found")
            error.service = SERVICE
            return error

        return await self._gateway.call(SERVICE, operation, fn, classify=classify, context=context or None)

    async def supported(self) -> bool:
        """Whether the server has the Batch API (OpenAI has; local servers answer 404)."""
        try:
            await self._call("batches.list", lambda: self._client.batches.list(limit=1))
        except ServiceError as exc:
            if exc.status_code in (404, 405, 501):
                return False
            raise
        return True

    async def upload(self, path: Path, filename: str) -> Any:
        async def send() -> Any:
            with open(path, "rb") as handle:
                return await self._client.files.create(file=(filename, handle, "application/jsonl"), purpose="batch")

        return await self._call("files.create", send, file=filename)

    async def find_file(self, filename: str) -> Any | None:
        """The uploaded batch file of that name, newest first; None when there is none."""
        after: str | None = None
        while True:
            page = await self._call(
                "files.list",
                lambda: self._client.files.list(purpose="batch", order="desc", limit=1000,
                                                **({"after": after} if after else {})),
            )
            for file in page.data:
                if file.filename == filename:
                    return file
            if not page.has_more or not page.data:
                return None
            after = page.data[-1].id

    async def create(self, input_file_id: str, local_id: str) -> Any:
        return await self._call(
            "batches.create",
            lambda: self._client.batches.create(
                input_file_id=input_file_id, endpoint=ENDPOINT, completion_window=COMPLETION_WINDOW,
                metadata={METADATA_KEY: local_id},
            ),
            batch=local_id,
        )

    async def find_batch(self, local_id: str, since: int) -> Any | None:
        """The batch created for ``local_id`` (newest first, stopping at batches older than ``since``)."""
        after: str | None = None
        while True:
            page = await self._call(
                "batches.list", lambda: self._client.batches.list(limit=100, **({"after": after} if after else {})))
            for batch in page.data:
                if (batch.metadata or {}).get(METADATA_KEY) == local_id:
                    return batch
            if not page.has_more or not page.data or page.data[-1].created_at < since:
                return None
            after = page.data[-1].id

    async def retrieve(self, remote_id: str) -> Any:
        return await self._call("batches.retrieve", lambda: self._client.batches.retrieve(remote_id), batch=remote_id)

    async def cancel(self, remote_id: str) -> Any:
        return await self._call("batches.cancel", lambda: self._client.batches.cancel(remote_id), batch=remote_id)

    async def download(self, file_id: str, path: Path) -> int:
        """Write a file's content to ``path`` as it arrives (never whole in memory); returns its bytes."""
        async def read() -> int:
            size = 0
            async with self._client.files.with_streaming_response.content(file_id) as response:
                with open(path, "wb") as handle:  # a retry starts the file again
                    async for chunk in response.iter_bytes(CHUNK_BYTES):
                        handle.write(chunk)
                        size += len(chunk)
            return size

        return await self._call("files.content", read, file=file_id)

    async def delete_file(self, file_id: str) -> None:
        await self._call("files.delete", lambda: self._client.files.delete(file_id), file=file_id)
