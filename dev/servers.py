"""How every local run starts the function: one command line, shared by make run, the tests
and the benchmark; how make run starts, waits for and stops its servers; and the stand-in for
Cloud Run's invoker check that guards make run's token endpoint."""

from __future__ import annotations

import ctypes
import hmac
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from dev.loopback import LoopbackServer, send

STARTUP_SECONDS = 60.0
STOP_SECONDS = 10.0
# Longer than the function's own deadline (60 s): a late answer is the function's to give.
UPSTREAM_SECONDS = 70.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# The names a page can only use once it is served by this machine; a DNS-rebinding page's
# requests carry its own host name, whatever address that name now points at.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# Per connection or written by ``send``: never copied across the check.
_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer"}
    | {"upgrade", "proxy-connection", "date", "server"}
)
# The bearer is the check's alone: the function never reads it, so it stays in this process.
_NOT_RELAYED = _HOP_HEADERS | {"authorization"}
_HTML = "text/html; charset=UTF-8"
_REFUSALS = {
    401: b"<html><body>401 Unauthorized: send the header Authorization: Bearer "
    b"&lt;KAKAO_TOKEN_ID_TOKEN&gt; that make run gave for this run.</body></html>",
    403: b"<html><body>403 Forbidden: the Host header must name this machine (localhost, "
    b"127.0.0.1 or [::1]) with the port.</body></html>",
}


def function_command(target: str, source: Path, port: int) -> list[str]:
    """functions-framework serving ``target`` from ``source`` on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "functions_framework",
        "--target",
        target,
        "--source",
        str(source),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def start_child(command: list[str], env: Mapping[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """``command`` as a child that ends when this process does, even by SIGKILL (on Linux).

    Start children before any thread of this process runs: a preexec_fn is only safe then.
    """
    return subprocess.Popen(command, env=env, cwd=cwd, preexec_fn=_dies_with_parent())


def _dies_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux for SIGTERM when the parent dies; None where there is no prctl.

    No handler of ours runs on SIGKILL, and an orphaned server would keep its port, so the next
    make run would fail with "in use". SIGTERM, as from Ctrl+C, lets gunicorn stop its workers.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the child
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(ctypes.c_int(PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before prctl: no signal will come
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def wait_until_listening(
    servers: list[subprocess.Popen[bytes]], ports: list[int], stopped: threading.Event
) -> bool:
    """True once every port accepts connections; False if a server exits, ``stopped`` is set
    or STARTUP_SECONDS pass first."""
    deadline = time.monotonic() + STARTUP_SECONDS
    waiting = list(ports)
    while waiting and time.monotonic() < deadline:
        if stopped.is_set() or any(server.poll() is not None for server in servers):
            return False
        waiting = [port for port in waiting if not is_listening(port)]
        time.sleep(0.1)
    return not waiting


def stop_all(servers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to all at once (gunicorn stops gracefully), SIGKILL to any still there later."""
    for server in servers:
        server.terminate()
    for server in servers:
        try:
            server.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


class LocalInvokerCheck:
    """What Cloud Run checks before the token function runs, as far as this machine can, on
    127.0.0.1:``port`` in front of the function on ``upstream_port``.

    A request passes only if its one Host header names this machine with the port (else 403)
    and it sends ``Authorization: Bearer <bearer>`` (else 401); refusals are HTML pages, as
    Cloud Run's are. What passes is relayed as it came, but for the Authorization header.
    """

    def __init__(self, port: int, upstream_port: int, bearer: str) -> None:
        self.upstream_port = upstream_port
        self._bearer = bearer.encode()
        self._hosts = {f"{name}:{port}" for name in LOCAL_HOSTS}
        if port == 80:  # where clients leave the port out
            self._hosts.update(LOCAL_HOSTS)
        check = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _check(self) -> None:
                check._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _check

        self._server = LoopbackServer(Handler, port, quiet=True)
        self.url = self._server.url

    def start(self) -> LocalInvokerCheck:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def refusal(self, hosts: list[str], authorization: str | None) -> int | None:
        """403 for a Host not this machine's, 401 for a bearer not this run's; None passes."""
        if len(hosts) != 1 or hosts[0].strip().lower() not in self._hosts:
            return 403
        scheme, _, token = (authorization or "").partition(" ")
        # Header values arrive decoded as latin-1, so they encode back losslessly.
        given = token.strip().encode("latin-1")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, self._bearer):
            return 401
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        hosts = handler.headers.get_all("Host") or []
        status = self.refusal(hosts, handler.headers.get("Authorization"))
        if status is not None:
            shown = repr(hosts[0][:80]) if hosts else "none"
            print(f"token endpoint: refused {status} (Host {shown})", file=sys.stderr, flush=True)
            send(handler, status, _REFUSALS[status], {"Content-Type": _HTML, "Connection": "close"})
            return
        try:
            status, headers, body = self._relay(handler)
        except (OSError, http.client.HTTPException):
            body = b"<html><body>502 Bad Gateway: the token function did not answer.</body></html>"
            send(handler, 502, body, {"Content-Type": _HTML})
            return
        send(handler, status, body, headers)

    def _relay(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _NOT_RELAYED}
        # http.client reads no proxy settings from the environment: loopback goes straight.
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.upstream_port, timeout=UPSTREAM_SECONDS
        )
        try:
            connection.request(handler.command, handler.path, body, headers)
            answer = connection.getresponse()
            kept = {k: v for k, v in answer.getheaders() if k.lower() not in _HOP_HEADERS}
            return answer.status, kept, answer.read()
        finally:
            connection.close()


def free_port() -> int:
    """A port nothing listens on now, for a server only this run talks to."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether a server could bind 127.0.0.1:``port`` now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def is_listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port`` now."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Return once 127.0.0.1:``port`` accepts connections; RuntimeError after ``timeout``
    seconds (for one server whose process the caller does not watch, unlike
    wait_until_listening)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_listening(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")
