"""The token endpoint: ``GET /`` answers a valid access token as JSON, and nothing more.

Scripts anywhere call it with a Google ID token (Cloud Run checks it: ``roles/run.invoker``), so
they need no Kakao key, no client secret and no bucket. The body carries the access token and
non-secret facts; never the refresh token, the ID token or the client secret.

A token with plenty of life left is kept in a short per-instance cache: Kakao access tokens
stay valid until they expire, so serving one from memory for a few seconds is safe, and it
spares a storage read per call. Everything else goes through the service, whose refresh takes
the same lease as the scheduled refresh: any number of callers make one Kakao call.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import flask

from ..checks import is_decimal
from ..clock import DEFAULT_ACCESS_TOKEN_LEEWAY
from ..errors import (
    BAD_REQUEST,
    METHOD_NOT_ALLOWED,
    KakaoTokenError,
    LoginRequired,
    NoTokenStored,
)
from ..log import ALERT_LOGIN_DEAD, log_event
from ..logins import LOGINS, OWNER, SENDER
from ..problems import problem_for
from ..service.token_service import ServiceFactory, TokenService
from ..tokens import TokenDocument, TokenFacts
from .responses import json_response

MAX_MIN_VALID_SECONDS = 3600
# How long an instance serves a token from memory before reading storage again: a new login
# or a dead one elsewhere shows here within this time.
CACHE_SECONDS = 30
_MAX_PARAMETER_LENGTH = 20
# Answers a caller may simply ask again later: each carries Retry-After
# (docs/en/token-endpoint.md).
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
DEFAULT_RETRY_AFTER_SECONDS = 30


@dataclass(frozen=True)
class ServedToken:
    """What the endpoint hands out: the access token and the login's facts, no refresh token.
    The sender's carries the owner's user id too (``receiver_user_id``): whom its messages go
    to, found in the sender's friends list by the client (logins.py)."""

    access_token: str = field(repr=False)
    facts: TokenFacts
    receiver_user_id: int | None = None

    @classmethod
    def of(cls, document: TokenDocument, receiver_user_id: int | None = None) -> ServedToken:
        return cls(document.access_token, document.facts(), receiver_user_id)

    def body(self, now: int, memo_link: str, login: str = OWNER) -> dict[str, Any]:
        body = {
            "access_token": self.access_token,
            "token_type": self.facts.token_type,
            "expires_at": self.facts.expires_at,
            "expires_in": self.facts.expires_at - now,
            "scope": self.facts.scope,
            "user_id": self.facts.user_id,
            "memo_link": memo_link,
        }
        if login == SENDER:
            body["receiver_user_id"] = self.receiver_user_id
        return body


class FreshTokenCache:
    """Per-instance memory of served tokens, by document name, for ``ttl_seconds`` at most."""

    def __init__(self, ttl_seconds: int = CACHE_SECONDS) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[ServedToken, int]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FreshTokenCache(ttl_seconds={self._ttl}, entries={len(self._entries)})"

    def get(self, name: str, now: int, min_valid: int) -> ServedToken | None:
        """The remembered token if it is recent and still has ``min_valid`` seconds to live."""
        with self._lock:
            entry = self._entries.get(name)
        if entry is None:
            return None
        token, stored_at = entry
        if now - stored_at >= self._ttl or token.facts.expires_at - now < min_valid:
            return None
        return token

    def put(self, name: str, token: ServedToken, now: int) -> None:
        """Remember a token only when it outlives the cache entry by a wide margin."""
        with self._lock:
            if token.facts.expires_at - now > MAX_MIN_VALID_SECONDS + self._ttl:
                self._entries[name] = (token, now)
            else:
                self._entries.pop(name, None)


def handle_token(
    request: flask.Request, get_service: ServiceFactory, cache: FreshTokenCache
) -> flask.Response:
    """GET: a valid access token as JSON; every failure a JSON error naming what to do."""
    login_url = ""  # unknown until the settings are read (they may be broken)
    user_id: int | None = None
    if request.method != "GET":
        return _method_not_allowed(get_service)
    try:
        service = get_service()
        login_url = service.settings.redirect_uri
        min_valid = _seconds_parameter(request, "min_valid", DEFAULT_ACCESS_TOKEN_LEEWAY)
        user_id = _user_id_parameter(request)
        login = request.args.get("login", OWNER)
        if (
            min_valid is None
            or (user_id is None and "user_id" in request.args)
            or login not in LOGINS
            or (login == SENDER and "user_id" in request.args)
        ):
            return _bad_request(login_url)
        return _serve(service, cache, user_id, min_valid, login)
    except KakaoTokenError as exc:
        return _refusal(exc, login_url, user_id)
    except Exception:  # noqa: BLE001 - the outermost edge: a trace must never reach a caller
        log_event(logging.ERROR, "unexpected error in kakao_token", exc_info=True)
        message = "unexpected error; see the function's logs (gcloud functions logs read)"
        return _error(500, KakaoTokenError.wire_name, message, login_url)


def _method_not_allowed(get_service: ServiceFactory) -> flask.Response:
    """405 whatever else is wrong; the login URL too when the settings can be read."""
    try:
        login_url = get_service().settings.redirect_uri
    except Exception:  # noqa: BLE001 - broken settings must not turn a 405 into a 500
        login_url = ""
    response = _error(405, METHOD_NOT_ALLOWED, "use GET", login_url)
    response.headers["Allow"] = "GET"
    return response


def _serve(
    service: TokenService,
    cache: FreshTokenCache,
    user_id: int | None,
    min_valid: int,
    login: str = OWNER,
) -> flask.Response:
    deadline = service.deadline()  # one for the whole request: a read, then a refresh
    name = service.document_name(user_id, login)
    now = service.now()
    token = cache.get(name, now, min_valid)
    if token is None:
        document = service.valid_document(name, min_valid, deadline)
        receiver = service.stored_user_id(deadline) if login == SENDER else None
        token = ServedToken.of(document, receiver)
        now = service.now()
        cache.put(name, token, now)
    if not token.access_token:  # never a 200 without a token, whatever the store holds
        raise LoginRequired(401, "invalid_grant", "no_token")
    if user_id is not None and token.facts.user_id != user_id:
        # One document for everyone: a request for another user must not get the owner's.
        raise NoTokenStored(f"no token stored for user {user_id}")
    return json_response(200, token.body(now, service.settings.memo_link, login))


def _seconds_parameter(request: flask.Request, name: str, default: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not is_decimal(raw) or len(raw) > _MAX_PARAMETER_LENGTH:
        return None
    value = int(raw)
    return value if value <= MAX_MIN_VALID_SECONDS else None


def _user_id_parameter(request: flask.Request) -> int | None:
    raw = request.args.get("user_id", "")
    if not is_decimal(raw) or len(raw) > _MAX_PARAMETER_LENGTH:
        return None
    return int(raw)


def _bad_request(login_url: str) -> flask.Response:
    message = (
        f"min_valid must be whole seconds from 0 to {MAX_MIN_VALID_SECONDS}, user_id a "
        "Kakao user id (digits), and login owner or sender (without user_id)"
    )
    return _error(400, BAD_REQUEST, message, login_url)


def _refusal(exc: KakaoTokenError, login_url: str, user_id: int | None) -> flask.Response:
    problem = problem_for(exc)
    message = problem.one_line()
    facts: dict[str, Any] = {
        "status": problem.status,
        "error_code": problem.code,
        "error": type(exc).__name__,
        "user_id": user_id,
    }
    if isinstance(exc, LoginRequired):
        # Cloud Monitoring alerts match on alert=ALERT_LOGIN_DEAD: a person must log in again.
        message = f"{message} Log in again at {login_url or 'the callback URL'}."
        log_event(
            logging.ERROR,
            "token refused: login dead",
            alert=ALERT_LOGIN_DEAD,
            login_url=login_url,
            **facts,
        )
    else:
        severity = logging.WARNING if problem.status < 500 else logging.ERROR
        log_event(severity, "token refused", **facts)
    return _error(
        problem.status,
        exc.wire_name,
        message,
        login_url,
        code=problem.code,
        retry_after=problem.retry_after,
    )


def _error(
    status: int,
    error: str,
    message: str,
    login_url: str,
    *,
    code: str = "",
    retry_after: int | None = None,
) -> flask.Response:
    """Every refusal has one shape, and every answer worth retrying says when."""
    body = {"error": error, "message": message, "code": code, "login_url": login_url}
    response = json_response(status, body)
    if status in RETRYABLE_STATUSES:
        response.headers["Retry-After"] = str(retry_after or DEFAULT_RETRY_AFTER_SECONDS)
    return response
