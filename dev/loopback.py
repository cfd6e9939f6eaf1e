"""HTTP servers on loopback (127.0.0.1, or ::1) for the fakes and proxies that tests, benchmarks
and make run start.

``LoopbackServer`` serves a handler from a daemon thread; ``Relay`` is a reverse proxy built on
it, which subclasses use to add production's latency or inject faults in front of a fake.
"""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Mapping
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

# How often the serving loop looks for stop(): the default 0.5 s made every stop wait that long,
# and tests start and stop several hundred servers.
POLL_SECONDS = 0.02
# Per connection or recomputed on each side of the relay: never copied across it.
_HOP_HEADERS = ("host", "content-length", "connection", "transfer-encoding", "content-encoding")


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # injected resets and clients hanging up are expected here


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _QuietIPv6Server(_QuietServer):
    address_family = socket.AF_INET6


@functools.cache
def ipv6_loopback() -> bool:
    """Whether this machine has the IPv6 loopback ::1: the kernel is asked by a bind, as
    /proc/sys/net/ipv6 is absent on some machines and present on others that disable it."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


class LoopbackServer:
    """A threaded HTTP server on ``host`` (127.0.0.1, or ::1), port ``port`` (0: any free one),
    between start() and stop()."""

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        port: int = 0,
        quiet: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        if ":" in host:
            server_class: type[ThreadingHTTPServer] = _QuietIPv6Server if quiet else _IPv6Server
        else:
            server_class = _QuietServer if quiet else ThreadingHTTPServer
        self._server = server_class((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=partial(self._server.serve_forever, poll_interval=POLL_SECONDS), daemon=True
        )
        self.port = int(self._server.server_address[1])
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for a serving loop: forever if none ran
            self._server.shutdown()
        self._server.server_close()


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
) -> None:
    """One whole answer: status, headers, Content-Length and body."""
    handler.send_response(status)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class Relay:
    """A reverse proxy to ``upstream`` on a loopback port, as a context manager.

    Subclasses answer a request themselves (``intercept``) or note what went through
    (``relayed``). Each handler thread keeps its own upstream connection, so the relay itself
    adds little.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._local = threading.local()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _relay(self) -> None:
                relay._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

        self._server = LoopbackServer(Handler)
        self.url = self._server.url

    def intercept(self, method: str, path: str) -> tuple[int, bytes] | None:
        """An answer (status, JSON body) to give instead of relaying; None relays."""
        return None

    def relayed(self, method: str, path: str, status: int) -> None:
        """Called with the upstream's status after each relayed request."""

    def __enter__(self) -> Relay:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        answer = self.intercept(handler.command, handler.path)
        if answer is not None:
            send(handler, answer[0], answer[1], {"Content-Type": "application/json"})
            return
        upstream = self._session().request(
            handler.command,
            self.upstream + handler.path,
            headers=_end_to_end(handler.headers.items()),
            data=body,
            timeout=30,
            allow_redirects=False,
        )
        self.relayed(handler.command, handler.path, upstream.status_code)
        send(handler, upstream.status_code, upstream.content, _end_to_end(upstream.headers.items()))

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False  # loopback: no proxy from the environment applies
        return session


def _end_to_end(headers: Any) -> dict[str, str]:
    return {key: value for key, value in headers if key.lower() not in _HOP_HEADERS}
