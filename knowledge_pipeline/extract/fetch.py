"""Guarded web fetching: one shared httpx client, size caps, manual redirects, URL safety.

An article URL comes from a feed or a user, so it is untrusted. Before any
request the URL must be http(s) and its host must resolve only to public
addresses (unless ``ALLOW_PRIVATE_URLS``); every redirect hop is checked the
same way; and the connection itself is made by :class:`_GuardedBackend`, which
resolves the host again, refuses private answers (DNS rebinding) and checks
the peer address of the socket it actually opened.

Every request goes through :meth:`ServiceGateway.call` as service ``web`` with
one limiter per host (``web:<host>``), so retries and rate limits are shared
and reported like every other API call.

Bodies are read raw and decoded here (:mod:`.decoding`), one content-coding
layer at most, so the size cap bounds what decompression produces, not only
what it is left with: a few kilobytes of nested gzip never become gigabytes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from .. import USER_AGENT
from ..config import Settings
from ..errors import ServiceError
from ..services import ServiceGateway, parse_retry_after
from ..urls import shown_url
from .decoding import ContentCodingError, accept_encoding, read_capped

MAX_REDIRECTS = 5
_REDIRECT_CODES = {301, 302, 303, 307, 308}
_ACCEPT = "text/html,application/xhtml+xml,application/pdf,application/xml;q=0.9,*/*;q=0.8"

# getaddrinfo's answers meaning "this name does not exist" (not "the resolver failed")
_NAME_MISSING = {getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA") if hasattr(socket, name)}

Resolver = Callable[[str, int], Awaitable[list[str]]]


class UnsafeURLError(ServiceError):
    """A URL the fetcher refuses to request (scheme, or a non-public address)."""

    error_type = "unsafe_url"

    def __init__(self, message: str) -> None:
        super().__init__("web", message, code="unsafe_url")


@dataclass(frozen=True)
class Fetched:
    """A downloaded response. ``truncated`` means the body was cut at the size cap.

    ``headers`` are the final response's headers (lower-case names);
    ``redirects`` lists each redirect followed as (status, URL that answered it).
    A conditional request (``If-None-Match``...) can come back as status 304
    with an empty body.
    """

    url: str
    status_code: int
    content_type: str
    body: bytes
    truncated: bool
    charset: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, compare=False)
    redirects: tuple[tuple[int, str], ...] = ()

    @property
    def is_pdf(self) -> bool:
        return self.content_type == "application/pdf" or self.body.lstrip()[:5] == b"%PDF-"


async def system_resolver(host: str, port: int) -> list[str]:
    """All addresses ``host`` resolves to, via the OS resolver (without blocking the loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# The bytes holding the IPv4 address for NAT64 prefixes of /48, /56, /64 and /96 (RFC 6052 2.2; byte 8,
# bits 64-71, is the reserved "u" octet). /32 and /40 prefixes cannot lie inside 64:ff9b:1::/48.
_NAT64_LOCAL_LAYOUTS = ((6, 7, 9, 10), (7, 9, 10, 11), (9, 10, 11, 12), (12, 13, 14, 15))
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


def blocked_reason(address: str) -> str | None:
    """Why ``address`` must not be fetched (``"loopback"``, ``"private"``...), or None if public.

    An IPv6 address that carries an IPv4 one (mapped, 6to4, NAT64, Teredo) is
    judged like the IPv4 address it leads to.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "unparsable"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        else:
            embedded = _embedded_ipv4(ip)
            if embedded is not None:
                kind, carried = embedded
                reasons = [_reason(v4) for v4 in carried]
                return next((f"{kind}-embedded {r}" for r in reasons if r is not None), None)
    return _reason(ip)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, list[ipaddress.IPv4Address]] | None:
    """The IPv4 addresses a 6to4, NAT64 (RFC 6052, RFC 8215) or Teredo address carries."""
    if ip.sixtofour is not None:
        return "6to4", [ip.sixtofour]
    if ip.teredo is not None:
        return "Teredo", list(ip.teredo)
    packed = ip.packed
    if ip in _NAT64:
        return "NAT64", [ipaddress.IPv4Address(packed[12:16])]
    if ip in _NAT64_LOCAL:
        # RFC 8215: a translator may use any /48 to /96 inside it, so the address is read in every
        # RFC 6052 layout that fits; a reading in 0.0.0.0/8 is the zero padding of another layout.
        readings = [ipaddress.IPv4Address(bytes(packed[i] for i in where)) for where in _NAT64_LOCAL_LAYOUTS]
        carried = [v4 for v4 in readings if v4 not in _THIS_NETWORK]
        return "NAT64", carried or readings
    return None


def _reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    for check, label in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(ip, check):
            return label
    return None if ip.is_global else "non-public"


class AddressGuard:
    """Decides whether a URL or an address may be fetched."""

    def __init__(self, allow_private: bool, resolver: Resolver = system_resolver) -> None:
        self.allow_private = allow_private
        self.resolver = resolver

    @staticmethod
    def check_scheme(url: str) -> tuple[str, int]:
        """The URL's host and port; UnsafeURLError unless it is an http(s) URL with a host."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise UnsafeURLError(f"refused URL {shown_url(url)}: malformed ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            shown = f"{scheme}:" if scheme else "no scheme"
            raise UnsafeURLError(f"refused URL {shown_url(url)}: only http and https are fetched ({shown})")
        if not parts.hostname:
            raise UnsafeURLError(f"refused URL {shown_url(url)}: no host")
        return parts.hostname, port or (443 if scheme == "https" else 80)

    async def check_url(self, url: str) -> None:
        host, port = self.check_scheme(url)
        await self.resolve(host, port)

    async def resolve(self, host: str, port: int) -> list[str]:
        """The host's addresses, all checked; UnsafeURLError if any is not public."""
        try:
            addresses = [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            addresses = await self._lookup(host, port)
        for address in addresses:
            self.check_address(host, address)
        return addresses

    async def _lookup(self, host: str, port: int) -> list[str]:
        try:
            addresses = await self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            missing = isinstance(exc, socket.gaierror) and exc.errno in _NAME_MISSING
            code = "dns_not_found" if missing else "dns_error"
            raise ServiceError("web", f"cannot resolve host {host}: {exc}", code=code) from None
        if not addresses:
            raise ServiceError("web", f"cannot resolve host {host}: no address", code="dns_error")
        return addresses

    def check_address(self, host: str, address: str, *, connected: bool = False) -> None:
        if self.allow_private:
            return
        reason = blocked_reason(address)
        if reason is not None:
            how = "the connection went to" if connected else "it resolves to"
            raise UnsafeURLError(
                f"refused host {host}: {how} {reason} address {address} (set ALLOW_PRIVATE_URLS=true to allow)"
            )


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to checked addresses, then checks the socket's real peer address."""

    def __init__(self, guard: AddressGuard, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.guard = guard
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.guard.resolve(host, port)
        stream = await self._connect_first(addresses, port, timeout, local_address, socket_options)
        peer = stream.get_extra_info("server_addr")
        try:
            if peer is None:
                if not self.guard.allow_private:
                    raise UnsafeURLError(f"refused host {host}: the connected address is unknown")
            else:
                self.guard.check_address(host, str(peer[0]), connected=True)
        except BaseException:
            await stream.aclose()
            raise
        return stream

    async def _connect_first(
        self,
        addresses: list[str],
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: typing.Iterable[typing.Any] | None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: typing.Iterable[typing.Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeURLError("refused: unix sockets are never fetched")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool built on :class:`_GuardedBackend`.

    ``httpx.AsyncHTTPTransport`` has no parameter for the network backend, so
    the pool it builds is replaced by an identical one that has ours.
    """

    def __init__(self, backend: _GuardedBackend, limits: httpx.Limits | None = None) -> None:
        super().__init__(trust_env=False)
        limits = limits or httpx.Limits()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


@dataclass(frozen=True)
class _Hop:
    url: str
    status_code: int
    content_type: str
    location: str | None
    body: bytes
    truncated: bool
    charset: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class Fetcher:
    """Downloads URLs for capture and extraction; share one per run and ``close()`` it.

    ``limits`` sizes the connection pool (httpx's defaults otherwise).
    """

    def __init__(
        self,
        settings: Settings,
        gateway: ServiceGateway,
        *,
        resolver: Resolver | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.guard = AddressGuard(settings.allow_private_urls, resolver or system_resolver)
        self._network_backend = network_backend
        self._client = httpx.AsyncClient(
            transport=_GuardedTransport(_GuardedBackend(self.guard, network_backend), limits),
            timeout=httpx.Timeout(settings.api_timeout),
            headers={"User-Agent": USER_AGENT, "Accept": _ACCEPT, "Accept-Encoding": accept_encoding()},
            follow_redirects=False,
            trust_env=False,
        )

    async def close(self) -> None:
        await self._client.aclose()

    def with_pool(self, max_connections: int) -> Fetcher:
        """A Fetcher like this one (settings, gateway, resolver) with a pool of its own; ``close()`` it."""
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max(1, max_connections // 2))
        return Fetcher(self.settings, self.gateway, resolver=self.guard.resolver,
                       network_backend=self._network_backend, limits=limits)

    async def fetch(
        self,
        url: str,
        *,
        max_bytes: int | None = None,
        missing_ok: bool = False,
        headers: Mapping[str, str] | None = None,
        max_retry_wait: float | None = None,
    ) -> Fetched:
        """GET ``url``, following at most five redirects, each hop checked.

        The body is cut at ``max_bytes`` (default ``MAX_DOWNLOAD_MB``) and the
        result says so. Raises UnsafeURLError for a refused URL and
        ServiceError for an HTTP error or a network failure after retries;
        with ``missing_ok`` a 404/410 is an empty answer with that status
        (a robots.txt or sitemap that does not exist is not an error).
        ``headers`` are sent with every hop (conditional requests);
        ``max_retry_wait`` is passed to the gateway.
        """
        cap = self.settings.max_download_bytes if max_bytes is None else max_bytes
        current = url.strip()
        redirects: list[tuple[int, str]] = []
        for _ in range(MAX_REDIRECTS + 1):
            try:
                await self.guard.check_url(current)
            except UnsafeURLError as exc:
                if current == url.strip():
                    raise
                raise UnsafeURLError(f"{exc} (redirected from {shown_url(url)})") from None
            hop = await self._get(current, cap, missing_ok, headers, max_retry_wait)
            if hop.location is None:
                return Fetched(hop.url, hop.status_code, hop.content_type, hop.body, hop.truncated, hop.charset,
                               hop.headers, tuple(redirects))
            redirects.append((hop.status_code, current))
            current = urljoin(current, hop.location)
        raise ServiceError(
            "web", f"too many redirects (more than {MAX_REDIRECTS}) from {shown_url(url)}", code="too_many_redirects"
        )

    async def _get(
        self,
        url: str,
        cap: int,
        missing_ok: bool = False,
        headers: Mapping[str, str] | None = None,
        max_retry_wait: float | None = None,
    ) -> _Hop:
        host = (urlsplit(url).hostname or "").lower()

        async def attempt() -> _Hop:
            try:
                async with asyncio.timeout(self.settings.api_timeout):
                    return await self._download(url, cap, missing_ok, headers)
            except (TimeoutError, httpx.TimeoutException):
                raise ServiceError(
                    "web",
                    f"timed out after {self.settings.api_timeout:g}s fetching {shown_url(url)}",
                    code="timeout",
                    retryable=True,
                ) from None

        return await self.gateway.call(
            "web",
            "GET",
            attempt,
            classify=lambda exc: classify_web_error(exc, url),
            limiter_key=f"web:{host}",
            fields=lambda hop: {"status_code": hop.status_code, "bytes": len(hop.body), "host": host},
            max_retry_wait=max_retry_wait,
        )

    def _site_headers(self, url: str) -> dict[str, str]:
        """WEBSITE_AUTH_CONFIGS headers and cookies for this URL's own domain only, hop by hop.

        Redirects are followed by hand, so a hop to another domain never gets them; plain http
        gets them only on loopback (a local test server). Never logged.
        """
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" and blocked_reason(host) != "loopback" and host != "localhost":
            return {}
        for auth in self.settings.website_auth.values():
            if auth.matches(host):
                return auth.request_headers()
        return {}

    async def _download(
        self, url: str, cap: int, missing_ok: bool = False, headers: Mapping[str, str] | None = None
    ) -> _Hop:
        sent = {**self._site_headers(url), **(headers or {})}
        async with self._client.stream("GET", url, headers=sent) as response:
            if response.status_code in _REDIRECT_CODES and response.headers.get("location"):
                return _Hop(url, response.status_code, "", response.headers["location"], b"", False)
            if missing_ok and response.status_code in (404, 410):
                return _Hop(url, response.status_code, "", None, b"", False)
            if response.status_code >= 400:
                raise _status_error(response, url)
            try:
                body = await read_capped(response, cap)
            except ContentCodingError as exc:
                raise ServiceError("web", exc.at(shown_url(url)), code="content_coding") from None
            if body.bomb:
                raise ServiceError("web", body.bomb_reason(shown_url(url), cap), code="decompression_bomb")
            content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            return _Hop(
                url=str(response.url),
                status_code=response.status_code,
                content_type=content_type,
                location=None,
                body=bytes(body.data),
                truncated=body.truncated,
                charset=response.charset_encoding,
                headers={key.lower(): value for key, value in response.headers.items()},
            )


def _status_error(response: httpx.Response, url: str) -> ServiceError:
    status = response.status_code
    retryable = status == 429 or status >= 500 or status == 408
    return ServiceError(
        "web",
        f"HTTP {status} for {shown_url(url)}",
        status_code=status,
        code=f"http_{status}",
        retryable=retryable,
        retry_after=parse_retry_after(response.headers.get("retry-after")) if retryable else None,
    )


def classify_web_error(exc: BaseException, url: str = "") -> ServiceError:
    """Map an httpx / network exception to a ServiceError: timeouts and connection errors retry."""
    if isinstance(exc, ServiceError):
        return exc
    where = f" for {shown_url(url)}" if url else ""
    detail = (str(exc).splitlines() or [""])[0] or type(exc).__name__
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        return ServiceError("web", f"timed out{where}: {type(exc).__name__}", code="timeout", retryable=True)
    if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError, ConnectionError)):
        return ServiceError("web", f"connection failed{where}: {detail}", code="connection_error", retryable=True)
    if isinstance(exc, httpx.HTTPStatusError):
        return _status_error(exc.response, str(exc.request.url))
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        return UnsafeURLError(f"refused URL{where}: {detail}")
    if isinstance(exc, httpx.DecodingError):
        return ServiceError("web", f"could not decode the response{where}: {detail}", code="decoding_error")
    return ServiceError("web", f"request failed{where}: {type(exc).__name__}: {detail}", code="error")
