"""The token endpoint's client: a valid access token from ``KAKAO_TOKEN_URL``, no Kakao secret.

The caller proves who it is with a Google ID token (see google_id_token.py). Access tokens
are kept in this process until they near expiry, so a script asking in a loop calls the
endpoint once. Each answer is told apart by who spoke: the function (answers.py reads its token
or its JSON error), Cloud Run refusing the caller (refusals.py says why), or the network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..checks import configured_destination
from ..errors import (
    ConfigError,
    EndpointUnreachable,
    IdentityRejected,
)
from ..kakao.api import DEFAULT_MEMO_LINK, memo_link_from
from ..network import body_within, ca_bundle_from, proxies_for
from ..retry import Retry
from .answers import RemoteToken, endpoint_error, json_body, token_from
from .google_id_token import IdentitySettings, IdTokenSource, default_sources, find_id_token
from .refusals import check_audience, refusal_message

if TYPE_CHECKING:  # pragma: no cover
    import requests

URL_VARIABLE = "KAKAO_TOKEN_URL"
API_BASE_VARIABLE = "KAKAO_API_BASE_URL"
_URL_MUST_BE = (
    f"{URL_VARIABLE} must be the token function's URL (https://..., no query), as ./deploy.sh "
    "printed it"
)
_API_BASE_MUST_BE = f"{API_BASE_VARIABLE} must be https://... (or unset: https://kapi.kakao.com)"
# (connect, read): the endpoint may refresh at Kakao first, under its own deadline.
TIMEOUT = (5.0, 60.0)
ATTEMPTS = 3  # a network failure is tried twice more
# All attempts of one ask end by then (each may wait on the function's own 55 s deadline).
TOTAL_SECONDS = 150.0
MAX_BODY_BYTES = 64 * 1024
RETRY_PAUSE_SECONDS = 1.0
# An attempt is given at least this long, and not started with less left of TOTAL_SECONDS.
MIN_ATTEMPT_SECONDS = 1.0
# Answers of Google's front end or Cloud Run itself (not JSON from the function): retried.
_TRANSIENT_STATUSES = {429, 500, 502, 503, 504}
# The endpoint serves tokens valid for at most this much longer (its min_valid cap); a fresh
# Kakao access token lives about 6 hours, so a larger leeway could never be met.
MAX_LEEWAY_SECONDS = 3600


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
        # The ID token travels in the request: never in clear text, but to this machine; and
        # where it goes is read as requests reads it (checks.destination), by every check.
        endpoint = configured_destination(URL_VARIABLE, url, _URL_MUST_BE)
        if not endpoint.never_in_clear_text or urlsplit(url).query:
            raise ConfigError(_URL_MUST_BE, (URL_VARIABLE,))
        api_base_url = (environ.get(API_BASE_VARIABLE, "").strip() or cls.api_base_url).rstrip("/")
        # send-memo sends the Kakao access token there: never in clear text over a network.
        kakao = configured_destination(API_BASE_VARIABLE, api_base_url, _API_BASE_MUST_BE)
        if not kakao.never_in_clear_text:
            raise ConfigError(_API_BASE_MUST_BE, (API_BASE_VARIABLE,))
        return cls(
            url=url,
            identity=IdentitySettings.from_env(environ),
            api_base_url=api_base_url,
            proxies=proxies_for(environ, (url, api_base_url)),
            ca_bundle=ca_bundle_from(environ),
            memo_link=_memo_link(environ),
        )


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
        check_audience(id_token, source, settings.audience)
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
    retry = Retry.linear(RETRY_PAUSE_SECONDS, ATTEMPTS, min_attempt_seconds=MIN_ATTEMPT_SECONDS)
    tried = 0
    for _ in retry.attempts(sleep=sleep, time_left=lambda: give_up_at - time.monotonic()):
        tried += 1
        left = give_up_at - time.monotonic()
        try:
            # The ID token goes to KAKAO_TOKEN_URL and nowhere else: a person's may open every
            # Cloud Run service they can call (google_id_token.audience_less_token_may_go_to), so no
            # answer may send it on, not even to another path (requests would keep it there).
            response = session.get(
                settings.url,
                params=params,
                headers=headers,
                timeout=(TIMEOUT[0], max(MIN_ATTEMPT_SECONDS, min(TIMEOUT[1], left))),
                allow_redirects=False,
                stream=True,
            )
            with response:
                # An endpoint (or something posing as one) that drips or floods cannot hold
                # a script past its time.
                raw = body_within(response, give_up_at, MAX_BODY_BYTES)
        except requests.RequestException as exc:
            failure = f"{type(exc).__name__}: no answer"
            continue
        body = json_body(response, raw)
        if response.status_code == 200 and body is not None:
            return token_from(body, settings.url)
        if response.is_redirect:
            raise ConfigError(_redirect_message(settings.url, response), (URL_VARIABLE,))
        if body is not None and isinstance(body.get("error"), str):
            raise endpoint_error(response.status_code, body, response.headers)
        if response.status_code in (401, 403):
            raise IdentityRejected(
                refusal_message(
                    settings.url, settings.audience, source, response.status_code, id_token
                ),
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


def _default_session(settings: RemoteSettings) -> requests.Session:
    """One session per process (kept-alive connections); proxies and CA bundle from the first
    settings."""
    global _session
    with _session_lock:
        if _session is None:
            from ..network import new_session

            _session = new_session(settings.proxies, settings.ca_bundle)
        return _session
