"""Fake Notion, OpenAI, web and webhook servers on 127.0.0.1 for tests and benchmarks."""

from __future__ import annotations

import sys
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Callable, TypeVar

_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class QuietHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that does not print a traceback when a client hangs up.

    Clients cut a download at its size cap, get killed by the crash tests or
    drop a keep-alive connection: normal events for these fakes, not errors.
    """

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - socketserver API
        if isinstance(sys.exc_info()[1], _GONE):
            return
        super().handle_error(request, client_address)


_Fake = TypeVar("_Fake", bound="ServedFake")


class ServedFake:
    """A fake whose ``_server`` answers from a daemon thread; ``close()``, or the end of ``with``, stops it."""

    _server: ThreadingHTTPServer
    _thread: threading.Thread | None = None

    def _serve(self, server: ThreadingHTTPServer, name: str | None = None) -> None:
        """Answer on ``server`` from now on."""
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name,
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self: _Fake) -> _Fake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def max_in_window(times: list[float], window: float) -> int:
    """The most requests whose start times fit in any window of ``window`` seconds."""
    best, low = 0, 0
    ordered = sorted(times)
    for high, t in enumerate(ordered):
        while t - ordered[low] >= window:
            low += 1
        best = max(best, high - low + 1)
    return best


def serve_until_interrupted(close: Callable[[], None]) -> None:
    """Keep a fake started from the command line running until Ctrl-C, then ``close`` it."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        close()


def reply(handler, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:  # noqa: ANN001
    """Send one complete response; a client that hung up is not an error for a fake."""
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)
    except _GONE:
        handler.close_connection = True
