"""Google Drive v3 through the project's HTTP stack: service-account token, files.list/get/export.

google-auth reads the service-account key and signs the JWT grant (RS256, the
key's id in the header); the grant is exchanged at the key's ``token_uri`` and
every Drive request is made with httpx through :meth:`ServiceGateway.call`
(service ``drive``), so retries (``Retry-After`` honoured on 429 and on 403
``rateLimitExceeded``/``userRateLimitExceeded``) and ``api_call_*`` events
are the pipeline's own. google-auth's token refresh is not used because it
is synchronous and retries by itself, invisibly.

Google's error body (``{"error": {"code", "message", "errors": [{"reason"}]}}``)
is turned into one line that says what to do.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any, AsyncIterator, Mapping

import httpx

from .. import USER_AGENT
from ..config import Settings
from ..errors import ServiceError
from ..extract.decoding import ContentCodingError, read_capped
from ..services import ServiceGateway, retry_after_seconds

SCOPE = "https://www.googleapis.com/auth/drive.readonly"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth signs service-account grants for this audience whatever the key's token_uri.
TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
FOLDER = "application/vnd.google-apps.folder"
GOOGLE_DOC = "application/vnd.google-apps.document"
PDF = "application/pdf"
FILE_FIELDS = "id,name,mimeType,md5Checksum,size,createdTime,modifiedTime,webViewLink,driveId,trashed"
_REFRESH_MARGIN = 225.0  # seconds before expiry a token is renewed (google-auth's threshold)
_ERROR_BODY_CAP = 64 * 1024
_CHUNK = 64 * 1024
_ENABLE_URL = re.compile(r"https://console\.(?:developers|cloud)\.google\.com/\S+?(?=[\s,]|$)")
_QUOTA_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
_CONFIG_REASONS = {"accessNotConfigured", "SERVICE_DISABLED", "invalid_grant", "unauthorized_client",
                   "invalid_client", "key_unreadable"}


class DriveError(ServiceError):
    """A Drive failure; ``reason`` is Google's (``notFound``, ``accessNotConfigured``...)."""

    def __init__(self, message: str, *, reason: str | None = None, **options: Any) -> None:
        code = options.pop("code", None)
        super().__init__("drive", message, code=reason or code, **options)
        self.google_reason = reason

    @property
    def is_configuration(self) -> bool:
        """True when every later Drive request would fail the same way (key, API disabled)."""
        return self.google_reason in _CONFIG_REASONS


class DriveApi:
    """One service account's session with the Drive API; ``close()`` it."""

    def __init__(self, settings: Settings, gateway: ServiceGateway, *, client: httpx.AsyncClient | None = None) -> None:
        if settings.google_app_credentials is None:
            raise DriveError("GOOGLE_APP_CREDENTIALS is not set: Drive files cannot be read without a service-account key",
                             reason="key_unreadable")
        self.settings = settings
        self.gateway = gateway
        self._info = _read_key(settings.google_app_credentials)
        self.client_email: str = self._info["client_email"]
        self._base = settings.google_drive_base_url.rstrip("/") + "/drive/v3"
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.api_timeout), headers={"User-Agent": USER_AGENT}, trust_env=False
        )
        self._token: str | None = None
        self._expires = 0.0
        self._token_lock = asyncio.Lock()
        self._signer: Any = None

    async def close(self) -> None:
        await self._client.aclose()

    # -- token ---------------------------------------------------------------------------

    async def _access_token(self) -> str:
        """The current token, renewed through its own retried call (``oauth.token``).

        Called inside a Drive request's attempt, a failure here has already spent
        its retries: it is raised not retryable, so the Drive request's retries
        do not multiply the token requests (4 x 4 with RETRY_ATTEMPTS=3).
        """
        try:
            return await self._renewed_token()
        except ServiceError as exc:
            exc.retryable = False
            raise

    async def _renewed_token(self) -> str:
        async with self._token_lock:
            if self._token is None or time.time() >= self._expires - _REFRESH_MARGIN:
                self._token, self._expires = await self.gateway.call(
                    "drive", "oauth.token", self._exchange, classify=_classify, limiter_key="drive:oauth"
                )
            return self._token

    def _assertion(self) -> bytes:
        from google.auth import jwt
        from google.oauth2 import service_account

        if self._signer is None:
            try:
                credentials = service_account.Credentials.from_service_account_info(self._info, scopes=[SCOPE])
            except (ValueError, TypeError) as exc:
                raise DriveError(
                    f"GOOGLE_APP_CREDENTIALS: the private key cannot be read ({type(exc).__name__}); "
                    "download a new JSON key of the service account", reason="key_unreadable",
                ) from None
            self._signer = credentials.signer
        now = int(time.time())
        claims = {"iss": self.client_email, "scope": SCOPE, "aud": TOKEN_AUDIENCE, "iat": now, "exp": now + 3600}
        return jwt.encode(self._signer, claims)

    async def _exchange(self) -> tuple[str, float]:
        assertion = self._assertion()
        async with self._client.stream(
            "POST", self._info["token_uri"], data={"grant_type": GRANT_TYPE, "assertion": assertion.decode("ascii")}
        ) as response:
            body, _ = await _bounded_with_flag(response, _ERROR_BODY_CAP)
        data = _json(body)
        if response.status_code != 200:
            raise _token_error(response, data, self.client_email)
        token = data.get("access_token") if isinstance(data, dict) else None
        if not token:
            raise DriveError("the token endpoint answered without an access_token", code="token_error")
        try:
            lifetime = float(data.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        return str(token), time.time() + lifetime

    # -- Drive methods -------------------------------------------------------------------

    async def get_file(self, file_id: str, *, fields: str = FILE_FIELDS) -> dict:
        """files.get (metadata); a 404 keeps Google's ``notFound`` reason for the caller's message."""
        params = {"fields": fields, "supportsAllDrives": "true"}
        return await self._call("files.get", f"files/{file_id}", params)

    async def list_children(self, folder_id: str, mime_types: tuple[str, ...]) -> AsyncIterator[list[dict]]:
        """files.list of a folder's untrashed children of ``mime_types``, page by page (shared drives too)."""
        kinds = " or ".join(f"mimeType = '{kind}'" for kind in mime_types)
        params = {
            "q": f"'{_quoted(folder_id)}' in parents and trashed = false and ({kinds})",
            "fields": f"nextPageToken,incompleteSearch,files({FILE_FIELDS})",
            "pageSize": "1000",
            "orderBy": "createdTime",
            "corpora": "allDrives",
            "supportsAllDrives": "true",
            "includeItemsFromAllDrives": "true",
        }
        while True:
            page = await self._call("files.list", "files", params)
            yield list(page.get("files") or [])
            token = page.get("nextPageToken")
            if not token:
                return
            params = {**params, "pageToken": token}

    async def download(self, file_id: str, cap: int) -> tuple[bytes, bool]:
        """The file's bytes (files.get ``alt=media``), cut at ``cap``; True when it was longer."""
        params = {"alt": "media", "supportsAllDrives": "true"}
        return await self._call("files.get.media", f"files/{file_id}", params, cap=cap)

    async def export_pdf(self, file_id: str, cap: int) -> tuple[bytes, bool]:
        """A Google Doc exported as PDF (files.export), cut at ``cap``."""
        return await self._call("files.export", f"files/{file_id}/export", {"mimeType": PDF}, cap=cap)

    async def _call(self, operation: str, path: str, params: Mapping[str, str], *, cap: int | None = None) -> Any:
        url = f"{self._base}/{path}"
        await self._access_token()  # before the retried request: a token endpoint down fails here, with one error

        async def attempt() -> Any:
            token = await self._access_token()
            async with self._client.stream("GET", url, params=params, headers={"Authorization": f"Bearer {token}"}) as r:
                if r.status_code >= 400:
                    if r.status_code == 401:
                        self._token = None  # expired or revoked: the retry gets a new one
                    raise _api_error(r, await _bounded(r, _ERROR_BODY_CAP))
                if cap is None:
                    body, _ = await _bounded_with_flag(r, 32 * 1024 * 1024)
                    return _json(body)
                return await _bounded_with_flag(r, cap)

        def fields(result: Any) -> dict[str, Any]:
            if isinstance(result, tuple):
                return {"bytes": len(result[0])}
            return {"files": len(result.get("files") or [])} if operation == "files.list" else {}

        return await self.gateway.call("drive", operation, attempt, classify=_classify, fields=fields)


# -- key, errors ---------------------------------------------------------------------------


def _read_key(path: Path) -> dict:
    """The key's JSON (validated in config.py; re-checked here for a file changed since)."""
    try:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DriveError(f"GOOGLE_APP_CREDENTIALS {path} cannot be read: {type(exc).__name__}",
                         reason="key_unreadable") from None
    if not isinstance(info, dict) or info.get("type") != "service_account" or not info.get("client_email"):
        raise DriveError(f"GOOGLE_APP_CREDENTIALS {path} is not a service-account key", reason="key_unreadable")
    return info


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


async def _bounded(response: httpx.Response, cap: int) -> bytes:
    return (await _bounded_with_flag(response, cap))[0]


async def _bounded_with_flag(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    """The body cut at ``cap``, decoded with every step bounded (a compressed answer cannot balloon)."""
    try:
        body = await read_capped(response, cap)
    except ContentCodingError as exc:
        raise DriveError(exc.at("the Drive answer"), code="content_coding") from None
    if body.bomb:
        raise DriveError(body.bomb_reason("the Drive answer", cap), code="decompression_bomb")
    return bytes(body.data), body.truncated


def _token_error(response: httpx.Response, data: Any, email: str) -> DriveError:
    error = data.get("error") if isinstance(data, dict) else None
    description = data.get("error_description") if isinstance(data, dict) else None
    status = response.status_code
    if status == 429 or status >= 500:
        return DriveError(f"Google token endpoint HTTP {status}", code=f"http_{status}", status_code=status,
                          retryable=True, retry_after=retry_after_seconds(response.headers))
    detail = f"{error}: {description}" if description else str(error or f"HTTP {status}")
    return DriveError(
        f"Google refused the service-account key of {email} ({detail}): the key may have been deleted or "
        "disabled, or the clock of this machine is wrong; create a new JSON key and set GOOGLE_APP_CREDENTIALS",
        reason=str(error or "token_error"), status_code=status,
    )


def _api_error(response: httpx.Response, body: bytes) -> DriveError:
    status = response.status_code
    data = _json(body)
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    details = error.get("errors") if isinstance(error.get("errors"), list) else []
    reason = next((d.get("reason") for d in details if isinstance(d, dict) and d.get("reason")), None)
    reason = reason or error.get("status") or f"http_{status}"
    message = " ".join(str(error.get("message") or "").split())[:300]
    retry_after = retry_after_seconds(response.headers)
    if status == 429 or reason in _QUOTA_REASONS:
        return DriveError(
            f"Drive API quota exceeded ({reason}); retried with backoff. If it persists, lower "
            "PARALLEL_MAX_WORKERS or raise the Drive API quota in the Google Cloud console",
            reason=str(reason), status_code=429 if status == 429 else status, retryable=True, retry_after=retry_after,
        )
    if reason in ("accessNotConfigured", "SERVICE_DISABLED"):
        link = _ENABLE_URL.search(message)
        where = link.group(0) if link else "Google Cloud console > APIs & Services > Library > Google Drive API"
        return DriveError(
            f"the Google Drive API is not enabled for the service account's project ({reason}): enable it at "
            f"{where}, wait a few minutes, then run again", reason=str(reason), status_code=status,
        )
    if status == 401:
        return DriveError(f"Drive API refused the access token ({reason})", reason=str(reason), status_code=401,
                          retryable=True)
    retryable = status >= 500 or reason in ("backendError", "internalError")
    return DriveError(f"Drive API HTTP {status} ({reason}): {message}" if message else f"Drive API HTTP {status} ({reason})",
                      reason=str(reason), status_code=status, retryable=retryable, retry_after=retry_after)


def _classify(exc: BaseException) -> ServiceError:
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        return DriveError(f"Drive request timed out: {type(exc).__name__}", code="timeout", retryable=True)
    if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError, ConnectionError)):
        detail = (str(exc).splitlines() or [""])[0] or type(exc).__name__
        return DriveError(f"cannot reach the Drive API: {detail}", code="connection_error", retryable=True)
    return DriveError(f"Drive request failed: {type(exc).__name__}: {exc}", code="error")
