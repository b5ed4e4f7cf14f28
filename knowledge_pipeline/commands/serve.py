"""``serve``: the read-only reading page on http://127.0.0.1:8765/ (another address only with --host)."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from typing import Any

import uvicorn

from ..config import Settings
from ..errors import PipelineError
from ..reading.web import create_app
from ..sources import open_local_store

DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="a read-only reading page in the browser (search, filters, every toggle)",
        description="Serves the Sources on http://127.0.0.1:8765/: a search box, filters, results with their "
        "executive summary and a page per item. Read-only, no script, nothing loaded from the internet. With the "
        "Notion backend it reads the local copy made by `sync --from notion`.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="address to listen on (default 127.0.0.1: this machine only; another address lets "
                        "anyone who reaches it read your Sources, there is no login)")
    parser.set_defaults(handler=handle)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket for ``host``:``port`` (IPv4 or IPv6), so port 0 can be printed as the real one.

    Made with ``IPPROTO_TCP`` as its protocol: asyncio turns Nagle off (TCP_NODELAY)
    only on such sockets, and without it every response after the first on a
    keep-alive connection waits ~40 ms for a delayed ACK.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         proto=socket.IPPROTO_TCP)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class AnnouncingServer(uvicorn.Server):
    """Says its address once it has started: by then Ctrl-C is its own to handle.

    Printed any earlier, a Ctrl-C right after the line could land while uvicorn was
    still starting, before it took the signal over, and the server then hung.
    """

    def __init__(self, config: uvicorn.Config, announcement: str) -> None:
        super().__init__(config)
        self.announcement = announcement

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(self.announcement, flush=True)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    try:
        store = open_local_store(settings)
    except PipelineError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 1
    if not is_loopback(args.host):
        print(f"WARNING: serving on {args.host}: anyone who can reach this address can read your Sources "
              "(there is no login). Use the default 127.0.0.1 unless you mean it.", file=sys.stderr)
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(f"serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    server = AnnouncingServer(uvicorn.Config(create_app(store), log_level="warning", access_log=False,
                                             server_header=False),
                              f"Reading page on {url_of(sock)} ({store.path}); Ctrl-C stops it.")
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn hands Ctrl-C back once it has shut down
        pass
    print("Stopped.", flush=True)
    return 0
