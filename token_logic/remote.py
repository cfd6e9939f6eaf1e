"""The token endpoint's client: a valid access token from ``KAKAO_TOKEN_URL``, no Kakao secret.

The caller proves who it is with a Google ID token (see id_tokens.py). Access tokens are kept in
this process until they near expiry, so a script asking in a loop calls the endpoint once.
The endpoint's JSON errors become the package's exceptions, with the endpoint's message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .config import ca_bundle_from, proxies_for
from .errors import (
    ConfigError,
    KakaoError,
    KakaoTokenError,
    KakaoUnavailable,
    LoginRequired,
    NoTokenStored,
    StorageError,
)
from .id_tokens import IdentitySettings, IdTokenSource, default_sources, find_id_token
from .text import is_decimal

if TYPE_CHECKING:  # pragma: no cover
    import requests

URL_VARIABLE = "KAKAO_TOKEN_URL"
# (connect, read): the endpoint may refresh at Kakao first, under its own deadline.
TIMEOUT = (5.0, 60.0)
ATTEMPTS = 3  # a network failure is tried twice more
RETRY_PAUSE_SECONDS = 1.0
# Answers of Google's front end or Cloud Run itself (not JSON from the function): retried.
_TRANSIENT_STATUSES = {429, 500, 502, 503, 504}
# The endpoint serves tokens valid for at most this much longer (its min_valid cap); a fresh
# Kakao access token lives about 6 hours, so a larger leeway could never be met.
MAX_LEEWAY_SECONDS = 3600


_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class RemoteSettings:
    """Where the endpoint is and how to prove who we are; read once from the environment."""

    url: str
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    api_base_url: str = "https://kapi.kakao.com"
    proxies: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold a password
    ca_bundle: str = ""

    @property
    def audience(self) -> str:
        """What the ID token must be issued for: the endpoint's URL, as Cloud Run expects."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], url: str | None = None) -> RemoteSettings | None:
        """The endpoint's settings, or None when neither ``url`` nor KAKAO_TOKEN_URL is set."""
        url = (url or environ.get(URL_VARIABLE, "")).strip()
        if not url:
            return None
        parts = urlsplit(url)
        # The ID token travels in the request: never in clear text, but to this machine.
        secure = parts.scheme == "https" or (
            parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
        )
        if not secure or not parts.netloc or parts.query:
            raise ConfigError(
                f"{URL_VARIABLE} must be the token function's URL (https://..., no query)",
                (URL_VARIABLE,),
            )
        api_base_url = (environ.get("KAKAO_API_BASE_URL") or cls.api_base_url).rstrip("/")
        return cls(
            url=url,
            identity=IdentitySettings.from_env(environ),
            api_base_url=api_base_url,
            proxies=proxies_for(environ, (url, api_base_url)),
            ca_bundle=ca_bundle_from(environ),
        )


@dataclass(frozen=True)
class RemoteToken:
    """An access token from the endpoint and its facts; the repr shows no token."""

    access_token: str = field(repr=False)
    expires_at: int
    scope: str
    user_id: int | None
    token_type: str = "bearer"


class TokenCache:
    """Access tokens by (URL, user), held until they near expiry; safe across threads.

    One lock per key: callers of one key wait for the first one's answer instead of all asking.
    """

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, int | None], RemoteToken] = {}
        self._key_locks: dict[tuple[str, int | None], threading.Lock] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenCache(entries={len(self._tokens)})"

    def get_or_fetch(
        self,
        key: tuple[str, int | None],
        leeway_seconds: int,
        now: Callable[[], float],
        fetch: Callable[[], RemoteToken],
    ) -> RemoteToken:
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                token = self._tokens.get(key)
            if token is not None and token.expires_at - now() > leeway_seconds:
                return token
            token = fetch()
            with self._lock:
                self._tokens[key] = token
            return token

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


_CACHE = TokenCache()
_session: requests.Session | None = None
_session_lock = threading.Lock()


def remote_token(
    settings: RemoteSettings,
    user_id: int | None = None,
    leeway_seconds: int = 300,
    *,
    sources: Sequence[tuple[str, IdTokenSource]] | None = None,
    session: requests.Session | None = None,
    cache: TokenCache = _CACHE,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> RemoteToken:
    """An access token valid for at least ``leeway_seconds`` (at most an hour), from memory or
    the endpoint."""
    leeway = min(max(leeway_seconds, 0), MAX_LEEWAY_SECONDS)

    def fetch() -> RemoteToken:
        chosen = sources if sources is not None else default_sources(settings.identity)
        id_token, source = find_id_token(settings.audience, chosen)
        params: dict[str, Any] = {"min_valid": leeway}
        if user_id is not None:
            params["user_id"] = user_id
        http = session or _default_session(settings)
        return _ask(settings, http, id_token, source, params, sleep)

    return cache.get_or_fetch((settings.url, user_id), leeway, now, fetch)


def _ask(
    settings: RemoteSettings,
    session: requests.Session,
    id_token: str,
    source: str,
    params: Mapping[str, Any],
    sleep: Callable[[float], None],
) -> RemoteToken:
    import requests

    headers = {"Authorization": f"Bearer {id_token}", "Accept": "application/json"}
    failure = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            sleep(RETRY_PAUSE_SECONDS * attempt)
        try:
            response = session.get(settings.url, params=params, headers=headers, timeout=TIMEOUT)
        except requests.RequestException as exc:
            failure = type(exc).__name__
            continue
        body = _json_object(response)
        if response.status_code == 200 and body is not None:
            return _token_from(body, settings.url)
        if body is not None and isinstance(body.get("error"), str):
            raise _endpoint_error(response.status_code, body, response.headers)
        if response.status_code in (401, 403):
            raise ConfigError(_refused(settings, source, response.status_code))
        if response.status_code not in _TRANSIENT_STATUSES:
            failure = f"HTTP {response.status_code}"
            break
        failure = f"HTTP {response.status_code}"
    raise StorageError(
        f"the token endpoint {settings.url} did not answer ({failure}); check "
        f"{URL_VARIABLE} and try again in a minute"
    )


def _refused(settings: RemoteSettings, source: str, status: int) -> str:
    return (
        f"the token endpoint {settings.url} refused this Google identity (HTTP {status}; ID "
        f"token from {source}). Ask the operator to add it to TOKEN_READERS (roles/run.invoker "
        f"on the token function), and check that its audience is {settings.audience}."
    )


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    if "json" not in response.headers.get("Content-Type", ""):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _token_from(body: Mapping[str, Any], url: str) -> RemoteToken:
    token, expires_at = body.get("access_token"), body.get("expires_at")
    if not isinstance(token, str) or not token or not isinstance(expires_at, int):
        raise StorageError(f"the token endpoint {url} answered without a token")
    user_id = body.get("user_id")
    return RemoteToken(
        access_token=token,
        expires_at=expires_at,
        scope=str(body.get("scope") or ""),
        user_id=user_id if isinstance(user_id, int) else None,
        token_type=str(body.get("token_type") or "bearer"),
    )


def _endpoint_error(status: int, body: Mapping[str, Any], headers: Mapping[str, str]) -> Exception:
    """The package exception for the endpoint's JSON error, carrying the endpoint's message."""
    error, code = str(body.get("error")), str(body.get("code") or "")
    message = str(body.get("message") or error)
    retry_after = headers.get("Retry-After", "")
    exc: KakaoTokenError
    if error == "login_required":
        exc = LoginRequired(status, "invalid_grant", code)
    elif error == "kakao_error":
        exc = KakaoError(
            status,
            "",
            code,
            float(retry_after) if is_decimal(retry_after) else None,
        )
    elif error == "kakao_unavailable":
        exc = KakaoUnavailable(code or "server_error")
    elif error == "no_token_stored":
        exc = NoTokenStored(message)
    elif error in ("not_configured", "bad_request"):
        exc = ConfigError(message)
    else:
        exc = StorageError(message)
    # The endpoint's words (what to do, the login URL) replace the class's generic text.
    exc.args = (message,)
    return exc


def _default_session(settings: RemoteSettings) -> requests.Session:
    """One session per process (kept-alive connections); proxies and CA bundle from the first
    settings."""
    global _session
    with _session_lock:
        if _session is None:
            from .kakao import new_session

            _session = new_session(settings.proxies, settings.ca_bundle)
        return _session
