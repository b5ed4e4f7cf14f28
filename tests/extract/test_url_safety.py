"""Article URLs are untrusted: only public http(s) hosts are fetched unless ALLOW_PRIVATE_URLS.

The "internet" in these tests is a resolver that maps made-up public names to
public addresses and a network backend that carries those connections to the
fake server on 127.0.0.1, reporting the public address as the peer (as NAT
would). Nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpcore
import pytest

from knowledge_pipeline.errors import ServiceError
from knowledge_pipeline.extract.fetch import AddressGuard, UnsafeURLError, blocked_reason
from tests.data.generate import ARTICLE_HTML
from tests.extract.support import fetcher_for, make_settings
from tests.fakes.web_server import FakeWebServer

PUBLIC_IP = "93.184.216.34"


@pytest.fixture
def web():
    with FakeWebServer() as server:
        server.page("/article", ARTICLE_HTML)
        server.page("/secret", "<p>instance credentials</p>")
        yield server


class _ReportedStream(httpcore.AsyncNetworkStream):
    """A real stream that reports another peer address."""

    def __init__(self, stream: httpcore.AsyncNetworkStream, peer: tuple[str, int]) -> None:
        self.stream, self.peer = stream, peer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self.stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self.stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise NotImplementedError

    def get_extra_info(self, info: str) -> Any:
        return self.peer if info == "server_addr" else self.stream.get_extra_info(info)


class FakeInternet(httpcore.AsyncNetworkBackend):
    """Carries every connection to the fake server; ``nat=True`` reports the address asked for."""

    def __init__(self, port: int, nat: bool = True) -> None:
        self.port, self.nat = port, nat
        self.connects: list[tuple[str, int]] = []
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.connects.append((host, port))
        stream = await self.inner.connect_tcp("127.0.0.1", self.port, timeout=timeout)
        return _ReportedStream(stream, (host, port)) if self.nat else stream

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def resolver_of(table: dict[str, list[str]]):
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def fetch(url: str, settings=None, **options):
    settings = settings or make_settings()

    async def run():
        async with fetcher_for(settings, **options) as (fetcher, recorder):
            try:
                return await fetcher.fetch(url), recorder
            except ServiceError as exc:
                return exc, recorder

    return asyncio.run(run())


@pytest.mark.parametrize(
    "url, shown",
    [
        ("javascript:alert(document.cookie)", "javascript:"),
        ("data:text/html,<script>alert(1)</script>", "data:"),
        ("file:///etc/passwd", "file:"),
        ("ftp://example.com/file.txt", "ftp:"),
        ("gopher://example.com:70/1", "gopher:"),
        ("example.com/no-scheme", "no scheme"),
    ],
)
def test_only_http_and_https_are_fetched(url, shown):
    error, recorder = fetch(url)
    assert isinstance(error, UnsafeURLError)
    assert "only http and https are fetched" in str(error) and f"({shown})" in str(error)
    assert recorder.of("api_call_complete") == [] and recorder.of("api_call_error") == []


@pytest.mark.parametrize(
    "host, label",
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("2130706433", "loopback"),
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("[fe80::1]", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
    ],
)
def test_private_and_special_addresses_are_refused(host, label):
    error, _ = fetch(f"http://{host}/latest/meta-data/")
    assert isinstance(error, UnsafeURLError)
    assert f"resolves to {label} address" in str(error)
    assert "ALLOW_PRIVATE_URLS" in str(error)


def test_localhost_is_refused_and_never_contacted(web):
    error, _ = fetch(f"http://localhost:{web.port}/article")
    assert isinstance(error, UnsafeURLError) and "loopback" in str(error)
    assert web.paths() == []


def test_a_name_resolving_to_a_private_address_is_refused():
    resolver = resolver_of({"intranet.corp": ["10.1.2.3"], "mixed.example": [PUBLIC_IP, "192.168.0.7"]})
    for host, address in (("intranet.corp", "10.1.2.3"), ("mixed.example", "192.168.0.7")):
        error, _ = fetch(f"https://{host}/", resolver=resolver)
        assert isinstance(error, UnsafeURLError)
        assert str(error).startswith(f"refused host {host}: it resolves to private address {address}")


def test_an_unknown_host_is_a_clear_error():
    error, _ = fetch("https://no-such-host.invalid/x", resolver=resolver_of({}))
    assert isinstance(error, ServiceError) and not isinstance(error, UnsafeURLError)
    assert str(error).startswith("cannot resolve host no-such-host.invalid")


def test_a_public_host_is_fetched(web):
    internet = FakeInternet(web.port)
    fetched, _ = fetch(
        "http://news.example/article", resolver=resolver_of({"news.example": [PUBLIC_IP]}), network_backend=internet
    )
    assert fetched.status_code == 200 and b"NVIDIA" in fetched.body
    assert internet.connects == [(PUBLIC_IP, 80)]
    assert web.stats()["requests"][0]["host"] == "news.example"


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/secret", "http://169.254.169.254/latest/meta-data/"])
def test_a_redirect_to_a_private_address_is_refused(web, target):
    web.redirect("/go", target.format(port=web.port))
    internet = FakeInternet(web.port)
    error, _ = fetch(
        "http://news.example/go", resolver=resolver_of({"news.example": [PUBLIC_IP]}), network_backend=internet
    )
    assert isinstance(error, UnsafeURLError)
    assert "redirected from http://news.example/go" in str(error)
    assert web.paths() == ["/go"]
    assert internet.connects == [(PUBLIC_IP, 80)]


def test_dns_rebinding_between_check_and_connect_is_refused(web):
    answers = iter([[PUBLIC_IP], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    internet = FakeInternet(web.port)
    error, _ = fetch("http://rebind.example/secret", resolver=rebinding, network_backend=internet)
    assert isinstance(error, UnsafeURLError) and "loopback address 127.0.0.1" in str(error)
    assert internet.connects == [] and web.paths() == []


def test_the_address_actually_connected_to_is_checked(web):
    # The resolver says "public" both times, but the socket ends up on 127.0.0.1.
    internet = FakeInternet(web.port, nat=False)
    error, _ = fetch(
        "http://news.example/secret", resolver=resolver_of({"news.example": [PUBLIC_IP]}), network_backend=internet
    )
    assert isinstance(error, UnsafeURLError)
    assert "the connection went to loopback address 127.0.0.1" in str(error)
    assert web.paths() == []


def test_allow_private_urls_lets_the_local_server_through(web):
    settings = make_settings(allow_private_urls="true")
    fetched, _ = fetch(web.url + "/article", settings=settings)
    assert fetched.status_code == 200
    fetched, _ = fetch(f"http://localhost:{web.port}/article", settings=settings)
    assert fetched.status_code == 200
    assert web.paths() == ["/article", "/article"]


def test_allow_private_urls_still_refuses_other_schemes():
    error, _ = fetch("file:///etc/passwd", settings=make_settings(allow_private_urls="true"))
    assert isinstance(error, UnsafeURLError)


@pytest.mark.parametrize(
    "address, reason",
    [
        ("93.184.216.34", None),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("fd00::1", "private"),
        ("fe80::1%eth0", "link-local"),
        ("169.254.169.254", "link-local"),
        ("ff02::1", "multicast"),
        ("::", "unspecified"),
        ("not-an-ip", "unparsable"),
    ],
)
def test_blocked_reason(address, reason):
    assert blocked_reason(address) == reason


@pytest.mark.parametrize(
    "address, reason",
    [
        ("2002:7f00:1::", "6to4-embedded loopback"),
        ("2002:a00:1::1", "6to4-embedded private"),
        ("2002:a9fe:a9fe::", "6to4-embedded link-local"),
        ("2002:5db8:d822::1", None),
        ("64:ff9b::7f00:1", "NAT64-embedded loopback"),
        ("64:ff9b::a9fe:a9fe", "NAT64-embedded link-local"),
        ("64:ff9b::5db8:d822", None),
        ("64:ff9b:1:7f00:0:100::", "NAT64-embedded loopback"),
        ("64:ff9b:1:c0a8:1:100::", "NAT64-embedded private"),
        ("64:ff9b:1:5db8:d8:2200::", None),
        # RFC 8215: a /56, /64 or /96 inside 64:ff9b:1::/48, so every RFC 6052 layout is read
        ("64:ff9b:1:5db8:d822:0:a00:1", "NAT64-embedded private"),
        ("64:ff9b:1::7f00:1", "NAT64-embedded loopback"),
        ("64:ff9b:1::5db8:d822", None),
        ("64:ff9b:1:0:a9:fea9:fe00:0", "NAT64-embedded link-local"),
        ("64:ff9b:1:0:5d:b8d8:2200:0", None),
        ("64:ff9b:1:c0:a8:1:100:0", "NAT64-embedded private"),
        ("64:ff9b:1:5d:b8:d822::", None),
        ("64:ff9b:1::", "NAT64-embedded unspecified"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo-embedded loopback"),
        ("2001:0:a00:1:8000:63bf:a247:27dd", "Teredo-embedded private"),
        ("2001:0:4136:e378:8000:63bf:a247:27dd", None),
    ],
)
def test_ipv4_embedded_in_ipv6_is_judged_like_the_ipv4_it_carries(address, reason):
    assert blocked_reason(address) == reason


@pytest.mark.parametrize("host", ["[2002:7f00:1::]", "[64:ff9b::7f00:1]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]"])
def test_an_embedded_loopback_address_is_refused_and_never_contacted(web, host):
    internet = FakeInternet(web.port)
    error, _ = fetch(f"http://{host}/secret", network_backend=internet)
    assert isinstance(error, UnsafeURLError) and "-embedded loopback address" in str(error)
    assert internet.connects == [] and web.paths() == []


def test_a_name_resolving_to_an_embedded_private_address_is_refused(web):
    internet = FakeInternet(web.port)
    error, _ = fetch("http://six.example/secret", resolver=resolver_of({"six.example": ["64:ff9b::a00:5"]}),
                     network_backend=internet)
    assert str(error).startswith("refused host six.example: it resolves to NAT64-embedded private address")
    assert internet.connects == []


def test_guard_checks_every_resolved_address():
    guard = AddressGuard(False, resolver_of({"h": [PUBLIC_IP, "10.0.0.1"]}))
    with pytest.raises(UnsafeURLError):
        asyncio.run(guard.check_url("https://h/"))
    assert asyncio.run(AddressGuard(True, resolver_of({"h": ["10.0.0.1"]})).resolve("h", 443)) == ["10.0.0.1"]
