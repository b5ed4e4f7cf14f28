"""A fake Google Drive v3 API and OAuth token endpoint on 127.0.0.1, built from Google's documented shapes.

Shapes follow ``/work/shared/reference/google-drive`` (the Drive v3 discovery
document excerpt and its README): ``GET /drive/v3/files`` (``q``, ``fields``,
``pageSize``, ``pageToken``, ``supportsAllDrives``, ``includeItemsFromAllDrives``,
``corpora``) answering a ``FileList``; ``GET /drive/v3/files/{id}`` (partial
``File`` resources, ``alt=media`` for the bytes); ``GET
/drive/v3/files/{id}/export?mimeType=``; Google's error body
``{"error": {"code", "message", "errors": [{"domain", "reason", "message"}], "status"}}``.

``POST /token`` is the service-account grant (RFC 7523): the JWT assertion's
RS256 signature is verified with the public key of the registered service
account named by ``iss`` and ``kid``, and its ``aud``, ``iat``/``exp`` and
``scope`` are checked as Google does; the answer is ``{"access_token",
"expires_in", "token_type"}`` or ``{"error", "error_description"}``.

Files are visible to a service account when they, or a folder above them, are
shared with its email. Files of a shared drive (``drive_id``) are listed only
with ``supportsAllDrives=true`` and ``includeItemsFromAllDrives=true``, and
``files.get`` finds them only with ``supportsAllDrives=true``, as on Drive.

    with FakeDrive() as drive:
        account = drive.service_account(tmp_path)                # key file + registered public key
        folder = drive.folder("Reports", shared_with=account.email)
        drive.file("q3.pdf", pdf_bytes, parent=folder)
        drive.fail_next(2, status=403, reason="userRateLimitExceeded", retry_after=0)
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes import QuietHTTPServer, ServedFake, reply

FOLDER = "application/vnd.google-apps.folder"
GOOGLE_DOC = "application/vnd.google-apps.document"
PDF = "application/pdf"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
DRIVE_SCOPES = {
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/drive.readonly",
    "https://www.googleapis.com/auth/drive.file",
}
EXPORT_LIMIT = 10 * 1024 * 1024
DEFAULT_FILE_FIELDS = ("kind", "id", "name", "mimeType")
PROJECT_NUMBER = "123456789012"
DISABLED_MESSAGE = (
    f"Google Drive API has not been used in project {PROJECT_NUMBER} before or it is disabled. Enable it by "
    f"visiting https://console.developers.google.com/apis/api/drive.googleapis.com/overview?project={PROJECT_NUMBER} "
    "then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems and retry."
)

_PRIVATE_KEY: rsa.RSAPrivateKey | None = None


def _shared_private_key() -> rsa.RSAPrivateKey:
    """One RSA key per test session: generating 2048-bit keys costs ~0.1 s each."""
    global _PRIVATE_KEY
    if _PRIVATE_KEY is None:
        _PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _PRIVATE_KEY


@dataclass
class ServiceAccount:
    email: str
    key_id: str
    key_file: Path
    public_key: Any
    disabled: bool = False


@dataclass
class DriveFile:
    id: str
    name: str
    mime_type: str
    parents: list[str]
    content: bytes = b""
    export_pdf: bytes = b""
    drive_id: str | None = None
    trashed: bool = False
    shared_with: set[str] = field(default_factory=set)
    created: str = "2026-11-01T09:00:00.000Z"
    modified: str = "2026-11-01T09:00:00.000Z"

    def resource(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": "drive#file",
            "id": self.id,
            "name": self.name,
            "mimeType": self.mime_type,
            "parents": list(self.parents),
            "trashed": self.trashed,
            "createdTime": self.created,
            "modifiedTime": self.modified,
            "webViewLink": (
                f"https://docs.google.com/document/d/{self.id}/edit?usp=drivesdk"
                if self.mime_type == GOOGLE_DOC
                else f"https://drive.google.com/drive/folders/{self.id}"
                if self.mime_type == FOLDER
                else f"https://drive.google.com/file/d/{self.id}/view?usp=drivesdk"
            ),
        }
        if self.drive_id:
            data["driveId"] = self.drive_id
        if not self.mime_type.startswith("application/vnd.google-apps."):
            data["md5Checksum"] = hashlib.md5(self.content).hexdigest()
            data["size"] = str(len(self.content))
        return data


class FakeDrive(ServedFake):
    """ThreadingHTTPServer on 127.0.0.1 (ephemeral port) serving Drive v3 and the token endpoint."""

    def __init__(self, *, max_page_size: int = 1000, token_lifetime: int = 3599) -> None:
        self.accounts: dict[str, ServiceAccount] = {}
        self.files: dict[str, DriveFile] = {}
        self.tokens: dict[str, tuple[str, float]] = {}
        self.requests: list[dict[str, Any]] = []
        self.max_page_size = max_page_size
        self.token_lifetime = token_lifetime
        self.api_disabled = False
        self._faults: list[tuple[int, str, float | None]] = []
        self._lock = threading.Lock()
        self._serve(QuietHTTPServer(("127.0.0.1", 0), _handler_for(self)), "fake-drive")
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    # -- set-up -------------------------------------------------------------------------
    def service_account(self, directory: Path, email: str = "pipeline@kp-test.iam.gserviceaccount.com") -> ServiceAccount:
        """A service-account JSON key file in ``directory`` whose public key this server trusts."""
        key = _shared_private_key()
        key_id = secrets.token_hex(20)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        info = {
            "type": "service_account",
            "project_id": "kp-test",
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": "109876543210987654321",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": f"{self.url}/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        }
        path = Path(directory) / f"{email.split('@')[0]}-key.json"
        path.write_text(json.dumps(info, indent=2))
        account = ServiceAccount(email, key_id, path, key.public_key())
        with self._lock:
            self.accounts[email] = account
        return account

    def folder(self, name: str, *, parent: str | None = None, shared_with: str | None = None,
               drive_id: str | None = None) -> str:
        return self._add(name, FOLDER, parent, b"", shared_with, drive_id)

    def file(self, name: str, content: bytes, *, parent: str, mime_type: str = PDF, shared_with: str | None = None,
             **options: Any) -> str:
        return self._add(name, mime_type, parent, content, shared_with, None, **options)

    def doc(self, name: str, export_pdf: bytes, *, parent: str) -> str:
        """A Google Doc: not downloadable, exported as ``export_pdf``."""
        return self._add(name, GOOGLE_DOC, parent, b"", None, None, export_pdf=export_pdf)

    def _add(self, name: str, mime: str, parent: str | None, content: bytes, shared_with: str | None,
             drive_id: str | None, **options: Any) -> str:
        file_id = "1" + secrets.token_urlsafe(24).replace("-", "A").replace("_", "B")
        with self._lock:
            inherited = self.files[parent].drive_id if parent and parent in self.files else None
            self.files[file_id] = DriveFile(
                file_id, name, mime, [parent] if parent else [], content=content, drive_id=drive_id or inherited,
                shared_with={shared_with} if shared_with else set(), **options,
            )
        return file_id

    def fail_next(self, count: int, *, status: int = 403, reason: str = "userRateLimitExceeded",
                  retry_after: float | None = None) -> None:
        """The next ``count`` Drive API requests answer this error."""
        with self._lock:
            self._faults += [(status, reason, retry_after)] * count

    def api_requests(self, path_prefix: str = "/drive/v3/") -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"].startswith(path_prefix)]

    # -- behaviour --------------------------------------------------------------------
    def visible(self, file: DriveFile, email: str) -> bool:
        seen: set[str] = set()
        stack = [file]
        while stack:
            current = stack.pop()
            if email in current.shared_with:
                return True
            for parent in current.parents:
                if parent in self.files and parent not in seen:
                    seen.add(parent)
                    stack.append(self.files[parent])
        return False

    def grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != JWT_BEARER:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: "
                         + form.get("grant_type", "")}
        try:
            header_b64, payload_b64, signature_b64 = form.get("assertion", "").split(".")
            header = json.loads(_unb64(header_b64))
            claims = json.loads(_unb64(payload_b64))
            signature = _unb64(signature_b64)
        except (ValueError, json.JSONDecodeError):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: malformed assertion."}
        account = self.accounts.get(str(claims.get("iss")))
        if account is None or account.disabled:
            return 400, {"error": "invalid_grant", "error_description": "Invalid grant: account not found"}
        if header.get("alg") != "RS256" or header.get("kid") != account.key_id:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        try:
            account.public_key.verify(signature, f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(),
                                      hashes.SHA256())
        except InvalidSignature:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if (claims.get("aud") != GOOGLE_TOKEN_AUDIENCE or not isinstance(iat, int) or not isinstance(exp, int)
                or iat > now + 300 or exp < now or exp - iat > 3600):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: Token must be a short-lived "
                         "token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."}
        if not DRIVE_SCOPES & set(str(claims.get("scope", "")).split()):
            return 400, {"error": "invalid_scope", "error_description": "Invalid OAuth scope or ID token audience provided."}
        token = "ya29." + secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[token] = (account.email, now + self.token_lifetime)
        return 200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}

    def caller(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        with self._lock:
            entry = self.tokens.get(authorization[7:])
        if entry is None or entry[1] < time.time():
            return None
        return entry[0]

    def next_fault(self) -> tuple[int, str, float | None] | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None


# -- query language (the subset the pipeline and typical clients use) ------------------------------

_TOKEN = re.compile(r"\s*(?:(\()|(\))|'((?:[^'\\]|\\.)*)'|(!=|=|<=|>=|<|>)|([A-Za-z_]+))")


def parse_query(q: str) -> Callable[[DriveFile], bool]:
    """``'<id>' in parents``, ``trashed = false``, ``mimeType = / != '...'``, ``name = / contains '...'``,
    combined with ``and``, ``or``, ``not`` and parentheses. ValueError for anything else."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(q.rstrip()):
        match = _TOKEN.match(q, position)
        if not match:
            raise ValueError(f"Invalid Value at {position}")
        position = match.end()
        opened, closed, string, operator, word = match.groups()
        if opened:
            tokens.append(("(", "("))
        elif closed:
            tokens.append((")", ")"))
        elif string is not None:
            tokens.append(("str", re.sub(r"\\(.)", r"\1", string)))
        elif operator:
            tokens.append(("op", operator))
        else:
            tokens.append(("word", word))
    parser = _QueryParser(tokens)
    predicate = parser.expression()
    if parser.index != len(tokens):
        raise ValueError("Invalid Value")
    return predicate


class _QueryParser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.index = 0

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise ValueError("Invalid Value")
        self.index += 1
        return token

    def expression(self) -> Callable[[DriveFile], bool]:
        left = self.conjunction()
        while self._peek() == ("word", "or"):
            self._take()
            right, first = self.conjunction(), left
            left = lambda f, a=first, b=right: a(f) or b(f)  # noqa: E731
        return left

    def conjunction(self) -> Callable[[DriveFile], bool]:
        left = self.unary()
        while self._peek() == ("word", "and"):
            self._take()
            right, first = self.unary(), left
            left = lambda f, a=first, b=right: a(f) and b(f)  # noqa: E731
        return left

    def unary(self) -> Callable[[DriveFile], bool]:
        if self._peek() == ("word", "not"):
            self._take()
            inner = self.unary()
            return lambda f: not inner(f)
        if self._peek() == ("(", "("):
            self._take()
            inner = self.expression()
            if self._take() != (")", ")"):
                raise ValueError("Invalid Value")
            return inner
        return self.term()

    def term(self) -> Callable[[DriveFile], bool]:
        first = self._take()
        if first[0] == "str":
            if self._take() != ("word", "in") or self._take() != ("word", "parents"):
                raise ValueError("Invalid Value")
            return lambda f, parent=first[1]: parent in f.parents
        if first[0] != "word":
            raise ValueError("Invalid Value")
        name, operator = first[1], self._take()
        value = self._take()
        if name == "trashed" and operator == ("op", "=") and value in (("word", "true"), ("word", "false")):
            return lambda f, wanted=value[1] == "true": f.trashed == wanted
        if name in ("mimeType", "name") and value[0] == "str":
            attribute = "mime_type" if name == "mimeType" else "name"
            if operator == ("op", "="):
                return lambda f: getattr(f, attribute) == value[1]
            if operator == ("op", "!="):
                return lambda f: getattr(f, attribute) != value[1]
            if operator == ("word", "contains") and name == "name":
                return lambda f: value[1].lower() in f.name.lower()
        raise ValueError("Invalid Value")


def select_fields(resource: dict[str, Any], selector: str | None, default: tuple[str, ...]) -> dict[str, Any]:
    """A partial response: ``fields=id,name`` or ``nextPageToken,files(id,name)``; ``*`` keeps all."""
    if not selector:
        return {k: resource[k] for k in default if k in resource}
    if selector.strip() == "*":
        return dict(resource)
    chosen: dict[str, Any] = {}
    for name, inner in _split_fields(selector):
        if name not in resource:
            continue
        value = resource[name]
        if inner is not None and isinstance(value, list):
            value = [select_fields(v, inner, ()) for v in value]
        chosen[name] = value
    return chosen


def _split_fields(selector: str) -> list[tuple[str, str | None]]:
    parts, depth, current = [], 0, ""
    for char in selector + ",":
        if char == "," and depth == 0:
            if current.strip():
                name, _, inner = current.strip().partition("(")
                parts.append((name.strip(), inner[:-1] if inner else None))
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    if depth:
        raise ValueError("Invalid field selection")
    return parts


def error_body(status: int, reason: str, message: str, *, domain: str = "global", location: str | None = None,
               location_type: str | None = None, status_name: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"message": message, "domain": domain, "reason": reason}
    if location:
        detail["location"], detail["locationType"] = location, location_type or "parameter"
    body: dict[str, Any] = {"code": status, "message": message, "errors": [detail]}
    if status_name:
        body["status"] = status_name
    return {"error": body}


def _unb64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _handler_for(drive: FakeDrive) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_POST(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._record("POST", parts.path, {})
            if parts.path != "/token":
                return self._json(404, error_body(404, "notFound", "Not Found"))
            if not (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
                return self._json(400, {"error": "invalid_request", "error_description": "Bad Request"})
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            status, payload = drive.grant(form)
            self._json(status, payload)

        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            self._record("GET", parts.path, params)
            if not parts.path.startswith("/drive/v3/files"):
                return self._json(404, error_body(404, "notFound", "Not Found"))
            email = drive.caller(self.headers.get("Authorization"))
            if email is None:
                return self._json(401, error_body(
                    401, "authError", "Invalid Credentials", location="Authorization", location_type="header",
                    status_name="UNAUTHENTICATED"), {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
            if drive.api_disabled:
                body = error_body(403, "accessNotConfigured", DISABLED_MESSAGE, domain="usageLimits",
                                  status_name="PERMISSION_DENIED")
                body["error"]["errors"][0]["extendedHelp"] = "https://console.developers.google.com"
                return self._json(403, body)
            fault = drive.next_fault()
            if fault is not None:
                status, reason, retry_after = fault
                message = {"userRateLimitExceeded": "User rate limit exceeded.",
                           "rateLimitExceeded": "Rate Limit Exceeded"}.get(reason, reason)
                headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
                return self._json(status, error_body(status, reason, message, domain="usageLimits"), headers)
            rest = parts.path[len("/drive/v3/files"):].strip("/")
            try:
                if not rest:
                    return self._list(email, params)
                file_id, _, action = rest.partition("/")
                return self._get(email, file_id, action, params)
            except ValueError as exc:
                return self._json(400, error_body(400, "invalidParameter", str(exc), location="fields"))

        def _list(self, email: str, params: dict[str, str]) -> None:
            try:
                predicate = parse_query(params.get("q", "")) if params.get("q") else (lambda f: True)
            except ValueError as exc:
                return self._json(400, error_body(400, "invalid", str(exc), location="q"))
            all_drives = params.get("supportsAllDrives") == "true" and params.get("includeItemsFromAllDrives") == "true"
            corpora = params.get("corpora", "user")
            if corpora not in ("user", "allDrives", "drive", "domain"):
                return self._json(400, error_body(400, "invalid", f"Invalid Value: {corpora}", location="corpora"))
            size = min(int(params.get("pageSize") or 100), 1000, drive.max_page_size)
            with drive._lock:
                files = [f for f in drive.files.values() if predicate(f) and drive.visible(f, email)
                         and (f.drive_id is None or (all_drives and corpora != "user"))]
            files.sort(key=lambda f: (f.created, f.id))
            start = 0
            if params.get("pageToken"):
                try:
                    start = int(_unb64(params["pageToken"]).decode().removeprefix("offset:"))
                except ValueError:
                    return self._json(400, error_body(400, "invalid", "Invalid Value", location="pageToken"))
            page = files[start:start + size]
            result: dict[str, Any] = {"kind": "drive#fileList", "incompleteSearch": False,
                                      "files": [f.resource() for f in page]}
            if start + size < len(files):
                result["nextPageToken"] = base64.urlsafe_b64encode(f"offset:{start + size}".encode()).decode().rstrip("=")
            fields = params.get("fields")
            if fields:
                result = select_fields(result, fields, ())
            else:
                result["files"] = [select_fields(f, None, DEFAULT_FILE_FIELDS) for f in result["files"]]
            self._json(200, result)

        def _get(self, email: str, file_id: str, action: str, params: dict[str, str]) -> None:
            with drive._lock:
                file = drive.files.get(file_id)
            hidden = (file is None or not drive.visible(file, email)
                      or (file.drive_id is not None and params.get("supportsAllDrives") != "true"))
            if hidden:
                return self._json(404, error_body(404, "notFound", f"File not found: {file_id}.",
                                                  location="fileId", status_name="NOT_FOUND"))
            assert file is not None
            if action == "export":
                wanted = params.get("mimeType")
                if not wanted:
                    return self._json(400, error_body(400, "required", "Required parameter: mimeType",
                                                      location="mimeType"))
                if file.mime_type != GOOGLE_DOC or wanted != PDF:
                    return self._json(403 if file.mime_type != GOOGLE_DOC else 400, error_body(
                        403 if file.mime_type != GOOGLE_DOC else 400,
                        "fileNotExportable" if file.mime_type != GOOGLE_DOC else "badRequest",
                        "Export only supports Docs Editors files." if file.mime_type != GOOGLE_DOC
                        else "The requested conversion is not supported."))
                if len(file.export_pdf) > EXPORT_LIMIT:
                    return self._json(403, error_body(403, "exportSizeLimitExceeded",
                                                      "This file is too large to be exported."))
                return self._bytes(file.export_pdf, PDF)
            if action:
                return self._json(404, error_body(404, "notFound", "Not Found"))
            if params.get("alt") == "media":
                if file.mime_type.startswith("application/vnd.google-apps."):
                    return self._json(403, error_body(
                        403, "fileNotDownloadable",
                        "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
                        location="alt"))
                return self._bytes(file.content, file.mime_type)
            self._json(200, select_fields(file.resource(), params.get("fields"), DEFAULT_FILE_FIELDS))

        def _record(self, method: str, path: str, params: dict[str, str]) -> None:
            with drive._lock:
                drive.requests.append({"method": method, "path": path, "params": params, "time": time.monotonic(),
                                       "authorization": self.headers.get("Authorization")})

        def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json; charset=UTF-8", headers)

        def _bytes(self, data: bytes, content_type: str) -> None:
            self._send(200, data, content_type)

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            reply(self, status, body, content_type, headers)

    return Handler
