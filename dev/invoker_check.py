"""The stand-in for Cloud Run's checks in front of ``make run``'s functions: the only way in.

Each function listens on a Unix socket (dev/function_socket.py) in a directory only this user
may enter, and a LocalInvokerCheck on its public port relays to it, after the checks Cloud Run
makes before the deployed function runs, as far as this machine can:

- every port: the one Host header names this machine (or the redirect URI's host) with the
  port, else 403. Cloud Run routes by Host, and a DNS-rebinding page's requests carry its own
  host name, whatever address that name now points at.
- a private function's (kakao_refresh, kakao_token: roles/run.invoker only, as deployed) also:
  no request a web page made, else 403. No page of ours calls them, so a request with an Origin,
  or a Sec-Fetch-Site other than "none", is another page's: a cross-site ``POST /?force=1``
  would spend Kakao's token calls and pause the login (KOE237).
- and ``Authorization: Bearer <this run's bearer>``, else 401.

Each check listens on 127.0.0.1 and [::1] alike (but where this machine has no IPv6 loopback):
"localhost" is often ::1 first, so a port free on [::1] would let another local user listen
there and be sent this run's bearer, a claim link or a login's callback.

Refusals are HTML pages, as Cloud Run's are. What passes is relayed as it came, but for a
private function's Authorization header (the bearer is the check's alone).
"""

from __future__ import annotations

import hmac
import http.client
import socket
import sys
from collections.abc import Iterable
from email.message import Message
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from dev.loopback import LoopbackServer, ipv6_loopback, send

# Longer than the function's own deadline (60 s): a late answer is the function's to give.
UPSTREAM_SECONDS = 70.0
# The names a page can only use once it is served by this machine.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# Per connection or written by ``_answer``: never copied across the check.
_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer"}
    | {"upgrade", "proxy-connection", "date", "server"}
)
_HTML = "text/html; charset=UTF-8"
# What a refusal says, by reason: (status, page).
_REFUSALS = {
    "host": (
        403,
        b"<html><body>403 Forbidden: the Host header must name this machine (localhost, "
        b"127.0.0.1 or [::1]) with the port.</body></html>",
    ),
    "page": (
        403,
        b"<html><body>403 Forbidden: this function answers scripts and schedulers, not a web "
        b"page's requests (Origin, Sec-Fetch-Site).</body></html>",
    ),
    "bearer": (
        401,
        b"<html><body>401 Unauthorized: send the header Authorization: Bearer "
        b"&lt;KAKAO_TOKEN_ID_TOKEN&gt; that make run gave for this run.</body></html>",
    ),
}


class LocalInvokerCheck:
    """The checks for ``name`` on 127.0.0.1:``port`` and [::1]:``port``, relaying what passes
    to the function on the Unix socket ``upstream``; ``bearer`` None for a public function (the
    callback), which gets the Host check alone; ``hosts``: other Host values it answers (the
    redirect URI's)."""

    def __init__(
        self, name: str, port: int, upstream: Path, bearer: str | None, hosts: Iterable[str] = ()
    ) -> None:
        self.name = name
        self.upstream = upstream
        self._bearer = bearer.encode() if bearer is not None else None
        self._hosts = {f"{local}:{port}" for local in LOCAL_HOSTS} | {h.lower() for h in hosts if h}
        if port == 80:  # where clients leave the port out
            self._hosts.update(LOCAL_HOSTS)
        check = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _check(self) -> None:
                check._serve(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _check

        self._servers = [LoopbackServer(Handler, port, quiet=True)]
        if ipv6_loopback():
            try:  # the same port as on 127.0.0.1, also when ``port`` is 0
                self._servers.append(
                    LoopbackServer(Handler, self._servers[0].port, quiet=True, host="::1")
                )
            except OSError:
                self._servers[0].stop()
                raise

    def start(self) -> LocalInvokerCheck:
        for server in self._servers:
            server.start()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()

    def refusal(self, headers: Message) -> str | None:
        """Why a request with ``headers`` is refused ("host", "page", "bearer"); None passes."""
        hosts = headers.get_all("Host") or []
        if len(hosts) != 1 or hosts[0].strip().lower() not in self._hosts:
            return "host"
        if self._bearer is None:
            return None
        site = (headers.get("Sec-Fetch-Site") or "none").strip().lower()
        if "Origin" in headers or site != "none":
            return "page"
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        # Header values arrive decoded as latin-1, so they encode back losslessly.
        given = token.strip().encode("latin-1")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, self._bearer):
            return "bearer"
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        reason = self.refusal(handler.headers)
        if reason is not None:
            status, page = _REFUSALS[reason]
            hosts = handler.headers.get_all("Host") or []
            shown = repr(hosts[0][:80]) if hosts else "none"
            print(
                f"{self.name}: refused {status}, {reason} (Host {shown})",
                file=sys.stderr,
                flush=True,
            )
            send(handler, status, page, {"Content-Type": _HTML, "Connection": "close"})
            return
        try:
            status, headers, body = self._relay(handler)
        except (OSError, http.client.HTTPException):
            page = b"<html><body>502 Bad Gateway: the function did not answer.</body></html>"
            send(handler, 502, page, {"Content-Type": _HTML, "Connection": "close"})
            return
        _answer(handler, status, headers, body)

    def _relay(self, handler: BaseHTTPRequestHandler) -> tuple[int, list[tuple[str, str]], bytes]:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        dropped = _HOP_HEADERS if self._bearer is None else _HOP_HEADERS | {"authorization"}
        connection = _UnixConnection(self.upstream)
        try:
            # Header by header, both ways: a header sent twice stays twice (the callback's
            # Set-Cookie above all: it clears one cookie and sets another in one answer).
            connection.putrequest(
                handler.command, handler.path, skip_host=True, skip_accept_encoding=True
            )
            for key, value in handler.headers.items():
                if key.lower() not in dropped:
                    connection.putheader(key, value)
            if body or handler.command in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            answer = connection.getresponse()
            kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_HEADERS]
            if handler.command == "HEAD" and answer.getheader("Content-Length"):
                kept.append(("Content-Length", answer.getheader("Content-Length", "")))
            return answer.status, kept, answer.read()
        finally:
            connection.close()


class _UnixConnection(http.client.HTTPConnection):
    """HTTP to a server on a Unix socket (http.client speaks only TCP)."""

    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=UPSTREAM_SECONDS)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _answer(
    handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    """The function's answer, each header as often as it came; a body only where HTTP has one."""
    handler.send_response(status)
    for key, value in headers:
        handler.send_header(key, value)
    bodiless = status in (204, 304) or status < 200
    if not bodiless and handler.command != "HEAD":
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if not bodiless and handler.command != "HEAD":
        handler.wfile.write(body)
