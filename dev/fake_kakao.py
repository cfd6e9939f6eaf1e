"""A fake Kakao (kauth + kapi) that behaves as ../shared/KAKAO_API.md says, over real HTTP.

Used by the tests and by ``make run``'s demo mode. It enforces what real Kakao enforces:
registered redirect URIs byte for byte, client secret, single-use 10-minute codes, PKCE S256,
refresh-token rotation only in the last month (the old token dying at once), per-user rate
limits, error bodies with KOE codes. Faults can be injected per endpoint. Its clock is
injectable so tests can jump months ahead without sleeping.

It is also Kakao's webhook sender: the legacy unlink webhook (``send_unlink_webhook``), and the
account status change webhook: Security Event Tokens signed RS256 with its own key, whose JWKS
it serves at ``/.well-known/jwks.json``. With ``state.account_status_url`` set, a SET goes there
(in the background, as Kakao's do) on a first login (user-linked), the service's own logout
(tokens-revoked) and unlink (user-unlinked, UNLINK_FROM_SERVICE), an unlink outside the service
(user-unlinked with its referrer type) and ``revoke_tokens``; ``send_account_status_event``
sends one at once, with options to forge it.

KakaoTalk's friends list and messages to friends live in dev/fake_kakao_talk.py (who is whose
friend, the app's members, consents, quotas by KST day); ``state.ready_to_message`` sets up a
sender and an owner in one call.

Beyond Kakao's API it serves one page for people, ``GET /memos``: the memos sent to oneself
and the messages to friends through it, newest first, so a demo shows where a message went
(real Kakao: KakaoTalk).

Run alone: ``python -m dev.fake_kakao --port 9090 --redirect-uri http://localhost:8080/``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
import json
import secrets
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from dev import fake_kakao_talk as talk
from dev.loopback import LoopbackServer
from token_logic.kakao.events import ENDING_EVENTS, TOKENS_REVOKED, USER_LINKED, USER_UNLINKED

CODE_LIFETIME = 600
ACCESS_LIFETIME = 21599
REFRESH_LIFETIME = 5183999
ROTATION_WINDOW = 30 * 24 * 3600
ACCESS_LIMIT = (20, 600)  # per user: 20 access tokens per 10 minutes
REFRESH_LIMIT = (30, 3600)  # per user: 30 refreshes per hour
DEFAULT_USER_ID = 4127000001
MEMOS_PATH = "/memos"  # not Kakao's: the page listing memos sent, for a person to look at
JWKS_PATH = "/.well-known/jwks.json"
# The "trickle" fault's pause between bytes.
TRICKLE_SECONDS = 0.05
SSE_CONFIGURATION_PATH = "/.well-known/sse-configuration"


@dataclass
class Grant:
    user_id: int
    redirect_uri: str
    scope: str
    code_challenge: str
    nonce: str
    issued_at: float


@dataclass
class Tokens:
    user_id: int
    scope: str
    access_expires: float
    refresh_expires: float


@dataclass
class FakeKakaoState:
    """Everything the fake knows; tests read and change it directly."""

    client_id: str = "test-rest-api-key"
    client_secret: str = "test-client-secret"  # "" = client secret turned off
    admin_key: str = "test-admin-key"  # the primary admin key: signs the unlink webhook
    app_id: str = "1234567"
    redirect_uris: set[str] = field(default_factory=set)
    user_id: int = DEFAULT_USER_ID  # who "logs in" at the consent page
    # More Kakao accounts the consent page offers, by user id, with a name to show: user_id's
    # link stays id=approve, each other's is id=approve-<user id> (a second account logging in
    # from another browser, as the sender does). Empty: user_id alone, the page as ever.
    accounts: dict[int, str] = field(default_factory=dict)
    refresh_lifetime: int = REFRESH_LIFETIME
    access_lifetime: int = ACCESS_LIFETIME
    clock: Callable[[], float] = time.time
    access_limit: tuple[int, int] = ACCESS_LIMIT
    refresh_limit: tuple[int, int] = REFRESH_LIMIT
    codes: dict[str, Grant] = field(default_factory=dict)
    used_codes: set[str] = field(default_factory=set)
    access_tokens: dict[str, Tokens] = field(default_factory=dict)
    refresh_tokens: dict[str, Tokens] = field(default_factory=dict)
    pending: dict[str, dict[str, str]] = field(default_factory=dict)
    faults: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    token_requests: list[dict[str, str]] = field(default_factory=list)
    memos: list[dict[str, Any]] = field(default_factory=list)
    lost_answers: int = 0
    # "host:port": /oauth/authorize first redirects there, as Kakao's login does to its
    # accounts host (a browser must follow a redirect chain across hosts).
    login_host: str = ""
    # [카카오 로그인] > [사용 설정] > [상태]: off, /oauth/authorize shows KOE004.
    login_enabled: bool = True
    # Tests make Kakao's refresh answers odd (fields missing, numbers as strings) with this.
    edit_refresh_answer: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    issued_access: dict[int, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    issued_refresh: dict[int, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    # The account status change webhook: where SETs go ("" = not registered), the signing keys
    # (kid, RSA private key; the first signs, all are in the JWKS), who has linked the app, and
    # every background delivery's result.
    account_status_url: str = ""
    signing_keys: list[tuple[str, Any]] = field(default_factory=list)
    linked_users: set[int] = field(default_factory=set)
    deliveries: list[Delivery] = field(default_factory=list)
    # KakaoTalk and the friend API (dev/fake_kakao_talk.py): KakaoTalk friendships, the app's
    # members, whether the app has the message permission (without it: members only), consents
    # given once (beside live tokens' scopes), who refuses messages, per-app uuids, quotas and
    # their counters (by KST date), and the messages sent to friends.
    kakaotalk_friends: set[frozenset[int]] = field(default_factory=set)
    members: set[int] = field(default_factory=set)
    message_permission: bool = False
    consents: dict[int, set[str]] = field(default_factory=dict)
    refuses_messages: set[int] = field(default_factory=set)
    talk_uuids: dict[int, str] = field(default_factory=dict)
    talk_limits: talk.TalkLimits = field(default_factory=talk.TalkLimits)
    talk_counts: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    friend_messages: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def inject(self, endpoint: str, *faults: str) -> None:
        """Make the next requests to ``endpoint`` fail: timeout, reset, html, 500, trickle (the
        JWKS a byte at a time), or a code
        (Kakao never saw the request), or processed-reset, processed-timeout, processed-500
        (Kakao did the work, then the answer was lost)."""
        with self.lock:
            self.faults[endpoint].extend(faults)

    def refresh_calls(self) -> int:
        """How many refresh_token grants were asked for (each one may rotate the token)."""
        with self.lock:
            return sum(1 for r in self.token_requests if r.get("grant_type") == "refresh_token")

    def ready_to_message(self, sender_id: int, owner_id: int = DEFAULT_USER_ID) -> None:
        """The sender and the owner are KakaoTalk friends, both members of the app, both
        linked and consented to friends and talk_message: a send between them is delivered."""
        talk.ready_to_message(self, sender_id, owner_id)

    def approvers(self) -> list[tuple[int, str]]:
        """Who may approve at the consent page, with a name ("" when none): user_id first,
        then the other accounts by id."""
        others = sorted(user for user in self.accounts if user != self.user_id)
        return [(user, self.accounts.get(user, "")) for user in (self.user_id, *others)]

    def talk_uuid(self, user_id: int) -> str:
        """The user's uuid in this app (stable, random-looking), as the friends list shows it."""
        return talk.uuid_of(self, user_id)

    def valid_refresh_tokens(self) -> set[str]:
        now = self.clock()
        with self.lock:
            return {t for t, info in self.refresh_tokens.items() if info.refresh_expires > now}


@dataclass(frozen=True)
class Delivery:
    """One SET sent to the account status webhook, and the answer (status 0: none in time)."""

    event: str
    user_id: int
    status: int
    body: dict[str, Any] | None = None


class FakeKakao:
    """The server: start() on a loopback port, stop() when done."""

    def __init__(
        self, state: FakeKakaoState | None = None, port: int = 0, hang_seconds: float = 3.0
    ) -> None:
        self.state = state or FakeKakaoState()
        self.hang_seconds = hang_seconds
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = LoopbackServer(handler, port, quiet=True)
        self.url = self._server.url

    def start(self) -> FakeKakao:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def send_unlink_webhook(
        self,
        url: str,
        user_id: int,
        referrer_type: str = "UNLINK_FROM_APPS",
        method: str = "POST",
        *,
        admin_key: str | None = None,
        app_id: str | None = None,
        transport: WebhookTransport | None = None,
    ) -> int:
        """Unlink ``user_id`` as Kakao does: kill their tokens, then call the webhook URL.

        POST sends the parameters as a form body, GET in the query; the header carries
        ``KakaoAK {admin key}`` (``admin_key`` overrides it, "" sends no header). Like Kakao,
        it waits at most 3 seconds and follows no redirect. Returns the HTTP status (0: no
        answer in time). ``transport`` replaces the HTTP call (a test client).
        """
        with self.state.lock:
            for table in (self.state.access_tokens, self.state.refresh_tokens):
                for token in [t for t, info in table.items() if info.user_id == user_id]:
                    del table[token]
        key = self.state.admin_key if admin_key is None else admin_key
        headers = {"Authorization": f"KakaoAK {key}"} if key else {}
        params = {
            "app_id": self.state.app_id if app_id is None else app_id,
            "user_id": str(user_id),
            "referrer_type": referrer_type,
        }
        self.state.linked_users.discard(user_id)
        self.emit(user_id, USER_UNLINKED, reason=referrer_type)
        return (transport or _send_webhook)(method, url, headers, params)

    # -- the account status change webhook ------------------------------------------------
    def end_tokens(self, user_id: int) -> None:
        """Every token of the user stops working (what an unlink or a revocation does)."""
        with self.state.lock:
            for table in (self.state.access_tokens, self.state.refresh_tokens):
                for token in [t for t, info in table.items() if info.user_id == user_id]:
                    del table[token]

    def revoke_tokens(self, user_id: int) -> None:
        """Kakao ends the user's tokens (a password change, a security measure) and tells the
        registered account status webhook (tokens-revoked)."""
        self.end_tokens(user_id)
        self.emit(user_id, TOKENS_REVOKED)

    def signing_key(self) -> tuple[str, Any]:
        """(kid, private key) that signs SETs now; made on first use (RSA 2048)."""
        with self.state.lock:
            if not self.state.signing_keys:
                self.state.signing_keys.append(_new_signing_key())
            return self.state.signing_keys[0]

    def rotate_signing_key(self, *, keep_old: bool = True) -> str:
        """A new key signs from now on (in the JWKS first); the old one stays listed unless
        ``keep_old`` is False. Returns the new kid."""
        self.signing_key()
        with self.state.lock:
            new = _new_signing_key()
            kept = self.state.signing_keys if keep_old else []
            self.state.signing_keys = [new, *kept]
            return new[0]

    def jwks(self) -> dict[str, Any]:
        """The public half of every signing key, as served at /.well-known/jwks.json."""
        from jwt.algorithms import RSAAlgorithm

        self.signing_key()
        keys = []
        with self.state.lock:
            for kid, private in self.state.signing_keys:
                jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
                keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def make_set(
        self,
        user_id: int,
        event: str,
        *,
        reason: str | None = None,
        forge: str = "",
        iat: float | None = None,
        jti: str | None = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        """A Security Event Token as Kakao signs it: RS256 with ``kid`` and ``typ
        secevent+jwt``; ``iss`` the auth host, ``aud`` the REST API key, ``iat``, ``jti``,
        ``toe``, ``txn``, ``sub`` (the user id as a string) and ``events`` keyed by the event
        type URI, with the subject (iss-sub) and, for an unlink, its ``reason``.

        ``forge``: ``wrong-key`` (signed by a key not in the JWKS, under the current kid),
        ``unknown-kid``, ``alg-none`` (unsigned), ``hs256`` (HMAC keyed with the public JWK,
        the classic confusion). ``iat``, ``jti`` and ``claims`` (merged; None removes a claim)
        override the rest.
        """
        import jwt

        now = self.state.clock()
        subject = {"subject_type": "iss-sub", "iss": self.url, "sub": str(user_id)}
        body: dict[str, Any] = {"subject": subject}
        if reason:
            body["reason"] = reason
        payload: dict[str, Any] = {
            "iss": self.url,
            "aud": self.state.client_id,
            "iat": int(now if iat is None else iat),
            "jti": jti or secrets.token_hex(16),
            "toe": int(now),
            "txn": secrets.token_hex(8),
            "sub": str(user_id),
            "events": {event: body},
        }
        for name, value in (claims or {}).items():
            if value is None:
                payload.pop(name, None)
            else:
                payload[name] = value
        kid, private = self.signing_key()
        headers = {"kid": kid, "typ": "secevent+jwt"}
        if forge == "alg-none":
            return _unsigned_jwt({"alg": "none", **headers}, payload)
        if forge == "hs256":
            secret = json.dumps(self.jwks()["keys"][0], sort_keys=True).encode()
            return _hs256_jwt({"alg": "HS256", **headers}, payload, secret)
        if forge == "wrong-key":
            private = _new_signing_key()[1]
        if forge == "unknown-kid":
            headers["kid"] = "not-" + kid
        return jwt.encode(payload, private, algorithm="RS256", headers=headers)

    def send_account_status_event(
        self,
        url: str,
        user_id: int,
        event: str,
        *,
        reason: str | None = None,
        end_tokens: bool | None = None,
        token: str | None = None,
        transport: SetTransport | None = None,
        **forgery: Any,
    ) -> Delivery:
        """Send one SET to ``url`` now, as Kakao does: POST, ``application/secevent+jwt``, no
        redirect followed, 3 seconds' patience. A token-ending event ends the user's tokens
        first (``end_tokens`` False: not, for a late event). ``token`` sends that SET as it is
        (a replay); otherwise make_set's options (``forge``, ``iat``, ``jti``, ``claims``)."""
        # The fake ends all of the user's tokens, token-revoked's too (Kakao: the one it names).
        if end_tokens if end_tokens is not None else event in ENDING_EVENTS:
            self.end_tokens(user_id)
        signed = token or self.make_set(user_id, event, reason=reason, **forgery)
        status, answer = (transport or _post_set)(url, _SET_HEADERS, signed.encode())
        try:
            body = json.loads(answer) if answer else None
        except ValueError:
            body = {"unparsed": answer.decode("utf-8", "replace")[:200]}
        return Delivery(event, user_id, status, body)

    def emit(self, user_id: int, event: str, reason: str | None = None) -> None:
        """Send a SET to the registered account status webhook, if any, in the background
        (Kakao delivers after the action, not within it); the result lands in deliveries."""
        url = self.state.account_status_url
        if not url:
            return
        signed = self.make_set(user_id, event, reason=reason)

        def deliver() -> None:
            delivery = self.send_account_status_event(
                url, user_id, event, end_tokens=False, token=signed
            )
            with self.state.lock:
                self.state.deliveries.append(delivery)

        threading.Thread(target=deliver, name="fake-kakao-set", daemon=True).start()

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """The first ``count`` background deliveries, waiting for them up to ``timeout``."""
        waited_until = time.monotonic() + timeout
        while time.monotonic() < waited_until:
            with self.state.lock:
                if len(self.state.deliveries) >= count:
                    return list(self.state.deliveries)
            time.sleep(0.01)
        raise AssertionError(f"{len(self.state.deliveries)} of {count} SETs delivered in time")


# (method, url, headers, parameters) -> HTTP status
WebhookTransport = Callable[[str, str, dict[str, str], dict[str, str]], int]
# (url, headers, body) -> (HTTP status, answer body)
SetTransport = Callable[[str, dict[str, str], bytes], tuple[int, bytes]]
WEBHOOK_TIMEOUT_SECONDS = 3.0
_SET_HEADERS = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}


def _post_set(url: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    import requests

    try:
        response = requests.post(
            url, data=body, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS, allow_redirects=False
        )
    except requests.RequestException:
        return 0, b""
    return response.status_code, response.content


def _new_signing_key() -> tuple[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return "fake-" + secrets.token_hex(6), rsa.generate_private_key(65537, 2048)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned_jwt(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}."


def _hs256_jwt(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    import hmac

    signing_input = _unsigned_jwt(header, payload)[:-1]
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _send_webhook(method: str, url: str, headers: dict[str, str], params: dict[str, str]) -> int:
    import requests

    post = method == "POST"  # the unlink webhook: a form body for POST, the query for GET
    try:
        response = requests.request(
            method,
            url,
            params=None if post else params,
            data=params if post else None,
            headers=headers,
            timeout=WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException:
        return 0
    return response.status_code


def _token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(40)


def _s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


class _Handler(BaseHTTPRequestHandler):
    fake: FakeKakao
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm and delayed
    # ACKs add ~40 ms to every keep-alive response, which would swamp any measurement.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the fake echoes codes in URLs, and tests read clean output

    # -- plumbing -------------------------------------------------------------------------
    @property
    def st(self) -> FakeKakaoState:
        return self.fake.state

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        self.query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.form: dict[str, str] = {}
        content_type = self.headers.get("Content-Type", "")
        if raw and content_type.startswith("application/x-www-form-urlencoded"):
            parsed = parse_qs(raw.decode(), keep_blank_values=True)
            self.form = {k: v[0] for k, v in parsed.items()}
        route = (method, parts.path)
        with self.st.lock:
            self.st.calls[parts.path] += 1
            fault = self.st.faults[parts.path].popleft() if self.st.faults[parts.path] else None
        if fault and not fault.startswith("processed-") and self._fault(fault):
            return
        routes = {
            ("GET", "/oauth/authorize"): self._authorize,
            ("GET", "/oauth/authorize/decide"): self._decide,
            ("POST", "/oauth/token"): self._token_endpoint,
            ("GET", "/v2/user/me"): self._me,
            ("GET", "/v1/user/access_token_info"): self._token_info,
            ("POST", "/v1/user/logout"): self._logout,
            ("POST", "/v1/user/unlink"): self._unlink,
            ("POST", "/v2/api/talk/memo/default/send"): self._memo,
            ("GET", talk.FRIENDS_PATH): self._talk_friends,
            ("POST", talk.FRIEND_SEND_PATH): self._talk_send,
            ("GET", MEMOS_PATH): self._memos_page,
            ("GET", JWKS_PATH): lambda: self._json(200, self.fake.jwks()),
            ("GET", SSE_CONFIGURATION_PATH): self._sse_configuration,
        }
        handler = routes.get(route)
        if handler is None:
            self._json(404, {"msg": "not found", "code": -404})
            return
        if fault and fault.startswith("processed-"):
            self._processed_then_lost(handler, fault.removeprefix("processed-"))
            return
        with self.st.lock:
            handler()

    def _processed_then_lost(self, handler: Callable[[], None], then: str) -> None:
        """Do the work (a refresh rotates, a code is spent), then lose the answer on the way:
        ``reset`` drops the connection, ``timeout`` hangs past the client's patience, a number
        answers that status instead. What real Kakao does when its answer never reaches us."""
        real_wfile = self.wfile
        self.wfile = io.BytesIO()  # the answer is computed and thrown away
        try:
            with self.st.lock:
                handler()
        finally:
            self.wfile = real_wfile
        with self.st.lock:
            self.st.lost_answers += 1
        if then == "reset":
            self.connection.shutdown(2)
            self.close_connection = True
        elif then == "timeout":
            time.sleep(self.fake.hang_seconds)
            self.close_connection = True
        else:
            self._send(int(then), b"<html>upstream error</html>", "text/html")

    def _fault(self, fault: str) -> bool:
        if fault == "timeout":
            time.sleep(self.fake.hang_seconds)
            self.close_connection = True
            return True
        if fault == "reset":
            self.connection.shutdown(2)
            self.close_connection = True
            return True
        if fault == "html":
            self._send(200, b"<html><body>Service Unavailable</body></html>", "text/html")
            return True
        if fault == "trickle":
            # A whole answer, a byte at a time, each well within any read timeout: only a
            # deadline on the whole answer ends the wait.
            body = json.dumps(self.fake.jwks()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up: as intended
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(TRICKLE_SECONDS)
            self.close_connection = True
            return True
        if fault.isdigit():
            self._send(int(fault), b"<html>upstream error</html>", "text/html")
            return True
        if fault.startswith("KOE"):
            error = {"KOE003": "server_error", "KOE237": "invalid_request"}.get(
                fault, "invalid_grant"
            )
            status = 500 if fault == "KOE003" else 400
            self._oauth_error(status, error, fault, "injected")
            return True
        if fault.startswith("-"):
            status = {"-401": 401, "-402": 403, "-9798": 503}.get(fault, 400)
            self._json(status, {"msg": "injected", "code": int(fault)})
            return True
        return False

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json;charset=UTF-8")

    def _oauth_error(self, status: int, error: str, code: str, description: str) -> None:
        self._json(status, {"error": error, "error_description": description, "error_code": code})

    def _redirect(self, location: str) -> None:
        self._send(302, b"", "text/html", {"Location": location})

    # -- kauth ----------------------------------------------------------------------------
    def _authorize(self) -> None:
        q = self.query
        if q.get("client_id") != self.st.client_id:
            self._page(400, "KOE101", "잘못된 앱 키 / invalid client_id")
            return
        if not self.st.login_enabled:
            self._page(400, "KOE004", "카카오 로그인이 꺼져 있음 / Kakao Login is off")
            return
        if q.get("redirect_uri") not in self.st.redirect_uris:
            self._page(400, "KOE006", "등록되지 않은 Redirect URI / redirect_uri not registered")
            return
        if q.get("response_type") != "code":
            self._page(400, "KOE005", "response_type must be code")
            return
        if q.get("code_challenge") and q.get("code_challenge_method") != "S256":
            self._page(400, "KOE302", "only S256 is supported")
            return
        if self.st.login_host and self.headers.get("Host") != self.st.login_host:
            # Real Kakao sends a browser that is not logged in on to another host
            # (accounts.kakao.com) before the consent page, once the request itself is valid.
            self._redirect(f"http://{self.st.login_host}{self.path}")
            return
        request_id = secrets.token_urlsafe(12)
        self.st.pending[request_id] = dict(q)
        cancel = "/oauth/authorize/decide?" + urlencode(
            {"request": request_id, "decision": "cancel"}
        )
        scope = escape(q.get("scope", "") or "(기본)")
        body = (
            "<!doctype html><html lang=ko><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width,initial-scale=1">'
            "<title>카카오 로그인 (가짜) / Fake Kakao consent</title></head><body>"
            "<h1>동의하고 계속하기</h1><p>Fake Kakao consent page</p>"
            f"{self._approve_links(request_id, scope)}"
            f'<a id=cancel href="{escape(cancel)}">취소 / Cancel</a></body></html>'
        )
        self._send(200, body.encode(), "text/html;charset=utf-8")

    def _approve_links(self, request_id: str, scope: str) -> str:
        """The approve links: user_id's (id=approve, naming no account: whoever user_id is when
        it is followed, as ever), then one per other account (id=approve-<user id>)."""
        approvers = self.st.approvers()
        if len(approvers) == 1:
            href = escape(self._decision(request_id, None))
            return (
                f"<p>사용자 / user: {self.st.user_id}</p><p>동의 항목 / scopes: {scope}</p>"
                f'<a id=approve href="{href}">동의하고 계속하기 / Approve</a> '
            )
        items = []
        for user, name in approvers:
            chosen = None if user == self.st.user_id else user
            link_id = "approve" if chosen is None else f"approve-{user}"
            href = escape(self._decision(request_id, chosen))
            who = escape(f"{user} {name}".strip())
            label = f"{who}: 동의하고 계속하기 / Approve"
            items.append(f'<li><a id={link_id} href="{href}">{label}</a></li>')
        return (
            f"<p>동의 항목 / scopes: {scope}</p>"
            "<p>동의할 계정을 고르세요 / Choose the account that approves:</p>"
            f"<ul>{''.join(items)}</ul>"
        )

    @staticmethod
    def _decision(request_id: str, account: int | None) -> str:
        decision = {"request": request_id, "decision": "approve"}
        if account is not None:
            decision["account"] = str(account)
        return "/oauth/authorize/decide?" + urlencode(decision)

    def _decide(self) -> None:
        request = self.st.pending.pop(self.query.get("request", ""), None)
        if request is None:
            self._page(400, "KOE000", "unknown or used consent request")
            return
        redirect_uri = request["redirect_uri"]
        sep = "&" if "?" in redirect_uri else "?"
        back: dict[str, str] = {}
        if self.query.get("decision") == "approve":
            account = self.query.get("account", str(self.st.user_id))
            if account not in {str(user) for user, _ in self.st.approvers()}:
                self._page(400, "KOE000", "unknown account at the consent page")
                return
            code = secrets.token_urlsafe(64)
            self.st.codes[code] = Grant(
                user_id=int(account),
                redirect_uri=redirect_uri,
                scope=request.get("scope", ""),
                code_challenge=request.get("code_challenge", ""),
                nonce=request.get("nonce", ""),
                issued_at=self.st.clock(),
            )
            back["code"] = code
        else:
            back = {"error": "access_denied", "error_description": "User denied access"}
        if "state" in request:
            back["state"] = request["state"]
        self._redirect(redirect_uri + sep + urlencode(back))

    def _page(self, status: int, code: str, text: str) -> None:
        body = f"<html><body><h1>{escape(code)}</h1><p>{escape(text)}</p></body></html>"
        self._send(status, body.encode(), "text/html;charset=utf-8")

    def _token_endpoint(self) -> None:
        form = self.form
        self.st.token_requests.append(dict(form))
        if not self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            self._oauth_error(400, "invalid_request", "KOE002", "form body required")
            return
        if form.get("client_id") != self.st.client_id:
            self._oauth_error(401, "invalid_client", "KOE101", "invalid client_id")
            return
        if self.st.client_secret and form.get("client_secret") != self.st.client_secret:
            self._oauth_error(401, "invalid_client", "KOE010", "Bad client credentials")
            return
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            self._exchange(form)
        elif grant_type == "refresh_token":
            self._refresh(form)
        else:
            self._oauth_error(400, "unsupported_grant_type", "KOE002", "bad grant_type")

    def _exchange(self, form: dict[str, str]) -> None:
        code = form.get("code", "")
        grant = self.st.codes.pop(code, None)  # single use, even when the exchange fails
        now = self.st.clock()
        if grant is None or now - grant.issued_at > CODE_LIFETIME:
            # Real Kakao echoes the code here: our client must never log this body.
            self._oauth_error(
                400, "invalid_grant", "KOE320", f"authorization code not found for code={code}"
            )
            return
        if form.get("redirect_uri") != grant.redirect_uri:
            self._oauth_error(400, "invalid_grant", "KOE303", "Redirect URI mismatch.")
            return
        if grant.code_challenge and _s256(form.get("code_verifier", "")) != grant.code_challenge:
            self._oauth_error(400, "invalid_grant", "KOE320", "code_verifier mismatch")
            return
        if not self._within_limit(self.st.issued_access[grant.user_id], self.st.access_limit):
            self._oauth_error(400, "invalid_request", "KOE237", "token request rate limit exceeded")
            return
        body = self._issue(grant.user_id, grant.scope, with_refresh=True)
        if "openid" in grant.scope.split(","):
            body["id_token"] = self._id_token(grant)
        self._json(200, body)
        if grant.user_id not in self.st.linked_users:  # the first consent links the app
            self.st.linked_users.add(grant.user_id)
            self.fake.emit(grant.user_id, USER_LINKED)

    def _refresh(self, form: dict[str, str]) -> None:
        refresh_token = form.get("refresh_token", "")
        if not refresh_token:
            self._oauth_error(400, "invalid_grant", "KOE319", "refresh_token is required")
            return
        info = self.st.refresh_tokens.get(refresh_token)
        now = self.st.clock()
        if info is None or info.refresh_expires <= now:
            self._oauth_error(400, "invalid_grant", "KOE322", "expired_or_invalid_refresh_token")
            return
        if not self._within_limit(self.st.issued_refresh[info.user_id], self.st.refresh_limit):
            self._oauth_error(400, "invalid_request", "KOE237", "token request rate limit exceeded")
            return
        rotate = info.refresh_expires - now < ROTATION_WINDOW
        if rotate:
            del self.st.refresh_tokens[refresh_token]  # the old one dies at once
        body = self._issue(info.user_id, info.scope, with_refresh=rotate)
        del body["scope"]  # not part of the refresh response
        if self.st.edit_refresh_answer is not None:
            body = self.st.edit_refresh_answer(body)
        self._json(200, body)

    def _issue(self, user_id: int, scope: str, *, with_refresh: bool) -> dict[str, Any]:
        now = self.st.clock()
        access = _token("fake-access-")
        info = Tokens(user_id, scope, now + self.st.access_lifetime, now + self.st.refresh_lifetime)
        self.st.access_tokens[access] = info
        body: dict[str, Any] = {
            "token_type": "bearer",
            "access_token": access,
            "expires_in": self.st.access_lifetime,
            "scope": " ".join(s for s in scope.split(",") if s) or "profile_nickname",
        }
        if with_refresh:
            refresh = _token("fake-refresh-")
            self.st.refresh_tokens[refresh] = info
            body["refresh_token"] = refresh
            body["refresh_token_expires_in"] = self.st.refresh_lifetime
        return body

    def _id_token(self, grant: Grant) -> str:
        now = int(self.st.clock())
        claims = {
            "iss": self.fake.url,
            "aud": self.st.client_id,
            "sub": str(grant.user_id),
            "iat": now,
            "exp": now + self.st.access_lifetime,
            "auth_time": now,
        }
        if grant.nonce:
            claims["nonce"] = grant.nonce

        def part(value: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

        return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.fake-signature"

    def _within_limit(self, issued: deque[float], limit: tuple[int, int]) -> bool:
        count, window = limit
        now = self.st.clock()
        while issued and issued[0] <= now - window:
            issued.popleft()
        if len(issued) >= count:
            return False
        issued.append(now)
        return True

    # -- kapi -----------------------------------------------------------------------------
    def _bearer(self) -> Tokens | None:
        header = self.headers.get("Authorization", "")
        info = self.st.access_tokens.get(header.removeprefix("Bearer "))
        if info is None or info.access_expires <= self.st.clock():
            self._json(401, {"msg": "this access token does not exist", "code": -401})
            return None
        return info

    def _me(self) -> None:
        info = self._bearer()
        if info:
            self._json(200, {"id": info.user_id, "connected_at": "2026-01-01T00:00:00Z"})

    def _token_info(self) -> None:
        info = self._bearer()
        if info:
            remaining = int(info.access_expires - self.st.clock())
            self._json(
                200, {"id": info.user_id, "expires_in": remaining, "app_id": int(self.st.app_id)}
            )

    def _logout(self) -> None:
        info = self._bearer()
        if info is None:
            return
        self.fake.end_tokens(info.user_id)
        self._json(200, {"id": info.user_id})
        self.fake.emit(info.user_id, TOKENS_REVOKED)

    def _unlink(self) -> None:
        # Kakao sends no legacy unlink webhook for an unlink the service asks for itself.
        info = self._bearer()
        if info is None:
            return
        self.fake.end_tokens(info.user_id)
        self.st.linked_users.discard(info.user_id)
        self._json(200, {"id": info.user_id})
        self.fake.emit(info.user_id, USER_UNLINKED, reason="UNLINK_FROM_SERVICE")

    def _sse_configuration(self) -> None:
        self._json(
            200,
            {
                "issuer": self.fake.url,
                "jwks_uri": self.fake.url + JWKS_PATH,
                "delivery_methods_supported": (
                    "http://schemas.openid.net/secevent/risc/delivery-method/push"
                ),
            },
        )

    def _memo(self) -> None:
        info = self._bearer()
        if info is None:
            return
        if "talk_message" not in info.scope.split(","):
            self._json(
                403,
                {"msg": "insufficient scopes.", "code": -402, "required_scopes": ["talk_message"]},
            )
            return
        raw = self.form.get("template_object", "")
        if talk.template_problem(raw):  # any default template, as Kakao takes it
            self._json(400, {"msg": "template_object is invalid", "code": -2})
            return
        template = json.loads(raw)
        self.st.memos.append(
            {
                "user_id": info.user_id,
                "text": talk.template_text(template),
                "link": template.get("link", {}),
                "template": template,
                "sent_at": self.st.clock(),
            }
        )
        self._json(200, {"result_code": 0})

    def _talk_friends(self) -> None:
        info = self._bearer()
        if info:
            self._json(*talk.friends_answer(self.st, info, self.query, self.fake.url))

    def _talk_send(self) -> None:
        info = self._bearer()
        if info:
            self._json(*talk.send_answer(self.st, info, self.form))

    def _memos_page(self) -> None:
        """Where a demo's memo shows up, and a sender's message to the owner: who and when,
        and the text escaped (it is anyone's input). Nothing else is kept per memo or message,
        so no token can appear here."""
        items = talk.memo_page_items(self.st)
        listing = (
            f"<ol>{items}</ol>"
            if items
            else "<p>아직 보낸 메모나 메시지가 없습니다. / Nothing sent yet: try "
            "<code>python -m token_logic send-memo</code> or <code>send-message</code>.</p>"
        )
        body = (
            "<!doctype html><html lang=ko><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width,initial-scale=1">'
            "<meta http-equiv=refresh content=5>"
            "<title>나에게 보낸 메모와 메시지 (가짜 카카오) / Memos and messages sent to me "
            "(fake Kakao)</title>"
            "<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}"
            "li{margin-bottom:1em}.meta{color:#666;margin:0}.text{white-space:pre-wrap;"
            "margin:.2em 0}</style></head><body>"
            "<h1>나에게 보낸 메모와 메시지 / Memos and messages sent to me</h1>"
            "<p>가짜 카카오가 받은 메모와 친구에게 보낸 메시지입니다(최신순). 진짜 카카오라면 "
            "메모는 카카오톡 '나와의 채팅'에 조용히, 메시지(보낸 사람 → 받는 사람)는 받는 "
            "사람의 카카오톡에 알림과 함께 도착합니다. / What the fake Kakao received, newest "
            "first: real Kakao puts a memo in your own chat in KakaoTalk, silently, and a "
            "message to a friend (from → to) in the receiver's KakaoTalk, with a "
            "notification.</p>"
            f"{listing}</body></html>"
        )
        headers = {
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        }
        self._send(200, body.encode(), "text/html;charset=utf-8", headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--redirect-uri", action="append", required=True)
    parser.add_argument("--client-id", default="demo-rest-api-key")
    parser.add_argument("--client-secret", default="demo-client-secret")
    args = parser.parse_args()
    state = FakeKakaoState(
        client_id=args.client_id,
        client_secret=args.client_secret,
        redirect_uris=set(args.redirect_uri),
    )
    fake = FakeKakao(state, port=args.port).start()
    print(f"fake Kakao listening on {fake.url}; memos sent: {fake.url}{MEMOS_PATH}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
