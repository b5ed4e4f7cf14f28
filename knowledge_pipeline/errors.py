"""The pipeline's error hierarchy.

Third-party errors are mapped into these at the boundary (``raise X from exc``)
so callers handle one family of errors::

    PipelineError
    ├── ConfigError          a setting is invalid; the run stops before any work (exit 2)
    ├── LockHeldError        another run holds the lock (exit 75)
    ├── FatalRunError        the run cannot go on (bad credentials, quota gone) (exit 1)
    │   └── ServiceUnavailableError  a service is down (circuit breaker): no new item starts
    ├── StoreError           the Sources store failed outside of one item
    │   └── SearchQueryError the search index rejected a query (its syntax)
    ├── EnrichmentDeferred   not an error: the item went into a Batch API batch and stays in the Inbox
    └── ItemError            one item failed; it is marked Failed and the run goes on
        ├── ExtractionError  no text could be had (fetch, PDF, empty text)
        ├── EnrichmentError  the enricher gave no usable result
        ├── ItemNotFound     the store has no item of that id (get)
        └── ServiceError     an external API call failed after its retries
"""

from __future__ import annotations

from typing import Any


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""


class ConfigError(PipelineError):
    """A setting is missing or invalid.

    The message names the variable, the value and what is accepted, in one line.
    """

    def __init__(self, variable: str, value: object, accepted: str) -> None:
        self.variable = variable
        self.value = value
        self.accepted = accepted
        super().__init__(f"{variable}={value!r} is invalid: {accepted}")


class LockHeldError(PipelineError):
    """Another run holds the enrichment lock."""


class FatalRunError(PipelineError):
    """An error after which no further item can succeed (auth, quota, schema)."""


class ServiceUnavailableError(FatalRunError):
    """Too many connection failures or timeouts in a row to one service (the circuit breaker opened)."""

    def __init__(self, service: str, base_url: str, failures: int, last_error: str) -> None:
        self.service = service
        self.base_url = base_url
        self.failures = failures
        super().__init__(
            f"{service} is unreachable at {base_url}: {failures} connection failures or timeouts in a row "
            f"(last: {last_error}); no new item starts and the untried ones stay in the Inbox"
        )


class StoreError(PipelineError):
    """The Sources store failed in a way not tied to one item."""


class SearchQueryError(StoreError):
    """FTS5 could not parse a search query; the message says how to write it."""
class EnrichmentDeferred(PipelineError):
    """The enricher handed the item to a batch (OPENAI_BATCH); a later run writes the answer."""

    def __init__(self, batch: str) -> None:
        self.batch = batch
        super().__init__(f"submitted in batch {batch}")


class ItemError(PipelineError):
    """One item could not be processed; ``reason`` is what the store records."""

    error_type = "item_error"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ExtractionError(ItemError):
    error_type = "extraction_error"


class EnrichmentError(ItemError):
    error_type = "enrichment_error"


class ItemNotFound(ItemError):
    """The store holds no item of that id (it was deleted, or never was)."""

    error_type = "item_not_found"


class ServiceError(ItemError):
    """An external call failed for good (after retries, or not retryable).

    ``retryable`` says whether another attempt could succeed; ``retry_after``
    is the server's advice in seconds when it gave one. ``fields`` are added
    to the attempt's ``api_call_retry``/``api_call_error`` event: the
    estimated tokens and cost of a request the provider bills although its
    answer was lost (a read timeout).
    """

    error_type = "service_error"

    def __init__(
        self,
        service: str,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        fatal: bool = False,
    ) -> None:
        self.service = service
        self.status_code = status_code
        self.code = code
        self.retryable = retryable
        self.retry_after = retry_after
        self.fatal = fatal
        self.duration = 0.0
        self.fields: dict[str, Any] = {}
        super().__init__(message)


def one_line(text: object, limit: int) -> str:
    """``text`` as reasons (and titles) are shown: whitespace folded to one line, at most ``limit`` characters,
    ``…`` marking a cut."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
