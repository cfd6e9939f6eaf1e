"""The token endpoint's client: a valid access token from ``KAKAO_TOKEN_URL``, no Kakao secret.

The caller proves who it is with a Google ID token (see google_id_token.py). Access tokens
are kept in this process until they near expiry, so a script asking in a loop calls the
endpoint once.
The endpoint's JSON errors become the package's exceptions, with the endpoint's message.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..checks import is_decimal, never_in_clear_text
from ..clock import format_time
from ..errors import (
    ConfigError,
    DeadlineReached,
    EndpointUnreachable,
    IdentityRejected,
    KakaoError,
    KakaoTokenError,
    KakaoUnavailable,
    LoginRequired,
    NoTokenStored,
    StorageError,
)
from ..kakao.api import DEFAULT_MEMO_LINK, memo_link_from
from ..network import ca_bundle_from, proxies_for
from .google_id_token import IdentitySettings, IdTokenSource, default_sources, find_id_token

if TYPE_CHECKING:  # pragma: no cover
    import requests

URL_VARIABLE = "KAKAO_TOKEN_URL"
# (connect, read): the endpoint may refresh at Kakao first, under its own deadline.
TIMEOUT = (5.0, 60.0)
ATTEMPTS = 3  # a network failure is tried twice more
# All attempts of one ask end by then (each may wait on the function's own 55 s deadline).
TOTAL_SECONDS = 150.0
MAX_BODY_BYTES = 64 * 1024
RETRY_PAUSE_SECONDS = 1.0
# Answers of Google's front end or Cloud Run itself (not JSON from the function): retried.
_TRANSIENT_STATUSES = {429, 500, 502, 503, 504}
# The endpoint serves tokens valid for at most this much longer (its min_valid cap); a fresh
# Kakao access token lives about 6 hours, so a larger leeway could never be met.
MAX_LEEWAY_SECONDS = 3600


GITHUB_READER_PREFIX = "kakao-token-github@"  # the account deploy.sh makes for GitHub
EMPTY_URL_MESSAGE = (
    f"{URL_VARIABLE} is empty: set it to the token endpoint's URL that ./deploy.sh printed "
    f"(https://kakao-token-...run.app; in GitHub Actions a repository variable, "
    f"${{{{ vars.{URL_VARIABLE} }}}}, that may not be set yet), or pass --url"
)


@dataclass(frozen=True)
class RemoteSettings:
    """Where the endpoint is and how to prove who we are; read once from the environment."""

    url: str
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    api_base_url: str = "https://kapi.kakao.com"
    proxies: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold a password
    ca_bundle: str = ""
    memo_link: str = DEFAULT_MEMO_LINK

    @property
    def audience(self) -> str:
        """What the ID token must be issued for: the endpoint's URL, as Cloud Run expects."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], url: str | None = None) -> RemoteSettings | None:
        """The endpoint's settings, or None when neither ``url`` nor KAKAO_TOKEN_URL is set.

        KAKAO_TOKEN_URL present but empty (a GitHub variable that was never set expands to "")
        is an error about that variable: falling back to the store would ask a reader for
        Kakao's keys, which a reader must never hold.
        """
        url = (url or environ.get(URL_VARIABLE, "")).strip()
        if not url:
            if URL_VARIABLE in environ:
                raise ConfigError(EMPTY_URL_MESSAGE, (URL_VARIABLE,))
            return None
        parts = urlsplit(url)
        # The ID token travels in the request: never in clear text, but to this machine.
        if not never_in_clear_text(url) or not parts.netloc or parts.query:
            raise ConfigError(
                f"{URL_VARIABLE} must be the token function's URL (https://..., no query), as "
                "./deploy.sh printed it",
                (URL_VARIABLE,),
            )
        api_base_url = (environ.get("KAKAO_API_BASE_URL") or cls.api_base_url).rstrip("/")
        if not never_in_clear_text(api_base_url):
            # send-memo sends the Kakao access token there: never in clear text over a network.
            raise ConfigError(
                "KAKAO_API_BASE_URL must be https://... (or unset: https://kapi.kakao.com)",
                ("KAKAO_API_BASE_URL",),
            )
        return cls(
            url=url,
            identity=IdentitySettings.from_env(environ),
            api_base_url=api_base_url,
            proxies=proxies_for(environ, (url, api_base_url)),
            ca_bundle=ca_bundle_from(environ),
            memo_link=_memo_link(environ),
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
        _check_audience(id_token, source, settings.audience)
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
    """One answer from the endpoint, telling apart who spoke: the function (JSON with an
    ``error``), Cloud Run refusing the caller (its own HTML 401/403), or neither (the network,
    a proxy, Google's front end)."""
    import requests

    headers = {"Authorization": f"Bearer {id_token}", "Accept": "application/json"}
    failure = ""
    give_up_at = time.monotonic() + TOTAL_SECONDS
    tried = 0
    for attempt in range(ATTEMPTS):
        left = give_up_at - time.monotonic()
        if attempt:
            if left < RETRY_PAUSE_SECONDS * attempt + 1:
                break
            sleep(RETRY_PAUSE_SECONDS * attempt)
            left = give_up_at - time.monotonic()
        tried += 1
        try:
            # The ID token goes to KAKAO_TOKEN_URL and nowhere else: a person's may open every
            # Cloud Run service they can call (google_id_token.audience_less_token_may_go_to), so no
            # answer may send it on, not even to another path (requests would keep it there).
            response = session.get(
                settings.url,
                params=params,
                headers=headers,
                timeout=(TIMEOUT[0], max(1.0, min(TIMEOUT[1], left))),
                allow_redirects=False,
                stream=True,
            )
            with response:
                raw = _bounded_body(response, give_up_at)
        except requests.RequestException as exc:
            failure = f"{type(exc).__name__}: no answer"
            continue
        body = _json_object(response, raw)
        if response.status_code == 200 and body is not None:
            return _token_from(body, settings.url)
        if response.is_redirect:
            raise ConfigError(_redirect_message(settings.url, response), (URL_VARIABLE,))
        if body is not None and isinstance(body.get("error"), str):
            raise _endpoint_error(response.status_code, body, response.headers)
        if response.status_code in (401, 403):
            raise IdentityRejected(
                refusal_message(settings, source, response.status_code, id_token),
                response.status_code,
            )
        failure = f"HTTP {response.status_code} without the function's JSON"
        if response.status_code >= 500:
            failure += " (a proxy, Google's front end, or a deployment that does not start: "
            failure += "gcloud functions logs read kakao-token)"
        if response.status_code == 404:
            raise ConfigError(
                f"{settings.url} answered HTTP 404 without the function's JSON: check "
                f"{URL_VARIABLE} (the kakao-token URL that ./deploy.sh printed)",
                (URL_VARIABLE,),
            )
        if response.status_code not in _TRANSIENT_STATUSES:
            break
    attempts = "1 attempt" if tried == 1 else f"{tried} attempts"
    raise EndpointUnreachable(
        f"the token endpoint {settings.url} did not answer usably ({failure}; {attempts}): "
        f"check the network (proxy, DNS) and {URL_VARIABLE}, then try again in a minute"
    )


def _bounded_body(response: requests.Response, give_up_at: float) -> bytes:
    """The answer's body, at most MAX_BODY_BYTES and read by ``give_up_at``: an endpoint (or
    something posing as one) that drips or floods cannot hold a script forever."""
    import requests

    chunks, size = [], 0
    for chunk in response.iter_content(8192):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise requests.ConnectionError("answer larger than any token endpoint's")
        if time.monotonic() > give_up_at:
            raise requests.Timeout("answer still arriving when time ran out")
        chunks.append(chunk)
    return b"".join(chunks)


def _redirect_message(url: str, response: requests.Response) -> str:
    target = urlsplit(response.headers.get("Location", ""))
    where = f"{target.scheme}://{target.hostname}" if target.hostname else "another path"
    return (
        f"{url} answered HTTP {response.status_code}, a redirect to {where}; the token function "
        "never redirects, and the ID token is not sent on: set "
        f"{URL_VARIABLE} to the kakao-token URL that ./deploy.sh printed"
    )


def _memo_link(environ: Mapping[str, str]) -> str:
    problems: list[str] = []
    link = memo_link_from(environ, problems)
    if problems:
        raise ConfigError(problems[0], ("KAKAO_MEMO_LINK",))
    return link


def _check_audience(id_token: str, source: str, audience: str) -> None:
    """A token given by hand for another URL is not sent at all: it would open that other
    service to whoever runs this URL."""
    if source != "KAKAO_TOKEN_ID_TOKEN":
        return
    claims = unverified_claims(id_token)
    issued_for = claims.get("aud") if claims else None
    if isinstance(issued_for, str) and issued_for.rstrip("/") != audience:
        raise ConfigError(
            f"KAKAO_TOKEN_ID_TOKEN was issued for the audience {issued_for}, not for "
            f"{audience}; it was not sent. Fetch one with the audience {audience}.",
            ("KAKAO_TOKEN_ID_TOKEN",),
        )


def refusal_message(settings: RemoteSettings, source: str, status: int, id_token: str) -> str:
    """Why Cloud Run refused the caller, and the fix, from the ID token's own claims (read, not
    verified: only to explain; Cloud Run has judged it). Never the token itself."""
    claims = unverified_claims(id_token)
    where = f"the ID token from {source}"
    if claims is None:
        return (
            f"Cloud Run refused {where} (HTTP {status}): it is not a Google ID token. "
            + _fresh_token_hint(source, settings.audience)
        )
    expires_at = claims.get("exp")
    if isinstance(expires_at, int) and expires_at <= time.time():
        return (
            f"Cloud Run refused {where} (HTTP {status}): it expired at "
            f"{format_time(expires_at)}. " + _fresh_token_hint(source, settings.audience)
        )
    audience = claims.get("aud")
    if status == 401 and audience != settings.audience:
        return (
            f"Cloud Run refused {where} (HTTP 401): it was issued for the audience "
            f"{audience!s}, and this endpoint needs {settings.audience}. "
            + _fresh_token_hint(source, settings.audience)
        )
    if status == 401:
        return (
            f"Cloud Run refused {where} (HTTP 401): not accepted as a Google ID token for "
            f"{settings.audience}. " + _fresh_token_hint(source, settings.audience)
        )
    email = claims.get("email")
    if not isinstance(email, str) or not email:
        return (
            f"Cloud Run refused {where} (HTTP 403): the token names no email, so its identity "
            "cannot be among the readers; ask for an ID token that includes the email "
            "(google-github-actions/auth: id_token_include_email: true)."
        )
    if email.startswith(GITHUB_READER_PREFIX):
        return (
            f"Cloud Run refused {email} (HTTP 403): it may not call {settings.url}. That is the "
            "GitHub reader account deploy.sh made: run ./deploy.sh again with this repository "
            "in GITHUB_REPOSITORY (it grants roles/run.invoker on kakao-token), and allow a "
            "minute for IAM to apply."
        )
    kind = "serviceAccount" if email.endswith(".gserviceaccount.com") else "user"
    return (
        f"Cloud Run refused {email} (HTTP 403): it may not call {settings.url}. Add "
        f"{kind}:{email} to TOKEN_READERS in deploy.env and run ./deploy.sh again (it grants "
        "roles/run.invoker on kakao-token; allow a minute for IAM to apply)."
    )


def _fresh_token_hint(source: str, audience: str) -> str:
    if source == "KAKAO_TOKEN_ID_TOKEN":
        return (
            f"Fetch a fresh one for each run, with the audience {audience} (an ID token lives "
            "one hour), and put it in KAKAO_TOKEN_ID_TOKEN."
        )
    if source == "gcloud":
        return "Run `gcloud auth login` again, then retry."
    return f"Check the identity's set-up ({source}) and that the audience is {audience}."


def unverified_claims(id_token: str) -> dict[str, Any] | None:
    """The payload of a JWT, unverified; None when it is not one."""
    parts = id_token.split(".")
    if len(parts) != 3:  # header.payload.signature
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def _json_object(response: requests.Response, raw: bytes) -> dict[str, Any] | None:
    if "json" not in response.headers.get("Content-Type", ""):
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _token_from(body: Mapping[str, Any], url: str) -> RemoteToken:
    token, expires_at = body.get("access_token"), body.get("expires_at")
    if (
        not isinstance(token, str)
        or not token
        or not isinstance(expires_at, int)
        or isinstance(expires_at, bool)
    ):
        raise EndpointUnreachable(f"the token endpoint {url} answered 200 without a token")
    if expires_at <= time.time():
        raise EndpointUnreachable(
            f"the token endpoint {url} answered a token that expired at "
            f"{format_time(expires_at)}: is KAKAO_TOKEN_URL an old or foreign deployment?"
        )
    user_id = body.get("user_id")
    return RemoteToken(
        access_token=token,
        expires_at=expires_at,
        scope=str(body.get("scope") or ""),
        user_id=user_id if isinstance(user_id, int) else None,
        token_type=str(body.get("token_type") or "bearer"),
    )


def _endpoint_error(status: int, body: Mapping[str, Any], headers: Mapping[str, str]) -> Exception:
    """The package exception for the function's JSON error (the ``error`` values of the
    README's table), carrying the function's message."""
    error, code = str(body.get("error")), str(body.get("code") or "")
    message = str(body.get("message") or error)
    raw_retry_after = headers.get("Retry-After", "")
    retry_after = int(raw_retry_after) if is_decimal(raw_retry_after) else None
    exc: KakaoTokenError
    if error == "login_required":
        exc = LoginRequired(status, "invalid_grant", code)
    elif error == "kakao_error":
        exc = KakaoError(status, "", code, retry_after)
    elif error == "kakao_unavailable":
        exc = KakaoUnavailable(code or "server_error")
    elif error == "no_token_stored":
        exc = NoTokenStored(message)
    elif error == "deadline_reached":
        exc = DeadlineReached(message, retry_after or 5)
    elif error == "storage_unavailable":
        exc = StorageError(message)
    elif error in ("not_configured", "bad_request", "method_not_allowed"):
        exc = ConfigError(message)
    else:  # "internal", or a value from a newer function
        exc = KakaoTokenError(message)
    # The function's words (what to do, the login URL) replace the class's generic text.
    exc.args = (message,)
    return exc


def _default_session(settings: RemoteSettings) -> requests.Session:
    """One session per process (kept-alive connections); proxies and CA bundle from the first
    settings."""
    global _session
    with _session_lock:
        if _session is None:
            from ..network import new_session

            _session = new_session(settings.proxies, settings.ca_bundle)
        return _session
