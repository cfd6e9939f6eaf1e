"""The token endpoint's client: a valid access token from ``KAKAO_TOKEN_URL``, no Kakao secret.

The caller proves who it is with a Google ID token (see google_id_token.py). Access tokens
are kept in this process until they near expiry, so a script asking in a loop calls the
endpoint once; the sender's for SENDER_CACHE_SECONDS at most, as it names the owner too. Each
answer is told apart by who spoke: the function (answers.py reads its token or its JSON error),
Cloud Run refusing the caller (refusals.py says why), or the network.
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
from ..language import ENGLISH, Languages, Words, languages_from
from ..logins import OWNER, SENDER
from ..network import body_within, ca_bundle_from, proxies_for
from ..retry import Retry
from .answers import RemoteToken, endpoint_error, json_body, token_from
from .google_id_token import IdentitySettings, IdTokenSource, default_sources, find_id_token
from .refusals import check_audience, refusal_message

if TYPE_CHECKING:  # pragma: no cover
    import requests

URL_VARIABLE = "KAKAO_TOKEN_URL"
API_BASE_VARIABLE = "KAKAO_API_BASE_URL"
_URL_MUST_BE = Words(
    f"{URL_VARIABLE} 값은 ./deploy.sh가 출력한 토큰 함수의 URL(https://..., 쿼리 없이)이어야 "
    "합니다",
    f"{URL_VARIABLE} must be the token function's URL (https://..., no query), as ./deploy.sh "
    "printed it",
)
_API_BASE_MUST_BE = Words(
    f"{API_BASE_VARIABLE} 값은 https://... 이어야 합니다(비워 두면 https://kapi.kakao.com)",
    f"{API_BASE_VARIABLE} must be https://... (or unset: https://kapi.kakao.com)",
)
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
# The sender's answer is kept this long at most, not until its token nears expiry: it names
# the owner (receiver_user_id), who may change hands, and its token dies when the sender logs
# out or is replaced. The same as the endpoint's own memory of a served token (CACHE_SECONDS
# in web/token_endpoint.py, which the client, shipped alone, cannot import): past it, a change
# in the store shows here as soon as it shows at the endpoint.
SENDER_CACHE_SECONDS = 30


_EMPTY_URL = Words(
    f"{URL_VARIABLE} 값이 비어 있습니다: ./deploy.sh가 출력한 토큰 엔드포인트 URL"
    "(https://kakao-token-...run.app)을 넣거나 --url을 주세요(GitHub Actions라면 아직 설정하지 "
    f"않은 저장소 변수 ${{{{ vars.{URL_VARIABLE} }}}}일 수 있습니다)",
    f"{URL_VARIABLE} is empty: set it to the token endpoint's URL that ./deploy.sh printed "
    f"(https://kakao-token-...run.app; in GitHub Actions a repository variable, "
    f"${{{{ vars.{URL_VARIABLE} }}}}, that may not be set yet), or pass --url",
)
# What the kakao-token command and get_access_token() both say with no URL at all: the wheel
# holds no store to fall back to, and the fix is the URL, never Kakao's keys (which a reader
# must not hold).
_URL_NOT_SET = Words(
    f"{URL_VARIABLE}이 설정되지 않았습니다: ./deploy.sh가 출력한 토큰 엔드포인트 URL"
    "(https://kakao-token-...run.app)로 설정하세요(kakao-token 명령은 --url도 받습니다). "
    "kakao-token 패키지는 그 엔드포인트에 묻기만 하므로 카카오 키가 필요 없습니다. 토큰 "
    "저장소를 직접 읽으려면 kakao-token-function 체크아웃과 그 requirements.txt가 필요합니다",
    f"{URL_VARIABLE} is not set: set it to the token endpoint's URL that ./deploy.sh printed "
    "(https://kakao-token-...run.app; the kakao-token command also takes --url). The "
    "kakao-token package asks that endpoint and needs no Kakao key; reading the store itself "
    "needs a checkout of kakao-token-function with its requirements.txt",
)


def url_not_set(languages: Languages) -> ConfigError:
    """The error for no KAKAO_TOKEN_URL and no --url where there is no store to read instead
    (the kakao-token command, get_access_token() in the kakao-token package)."""
    return ConfigError(_URL_NOT_SET.said(languages), (URL_VARIABLE,))


@dataclass(frozen=True)
class RemoteSettings:
    """Where the endpoint is and how to prove who we are; read once from the environment."""

    url: str
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    api_base_url: str = "https://kapi.kakao.com"
    proxies: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold a password
    ca_bundle: str = ""
    memo_link: str = DEFAULT_MEMO_LINK
    # KAKAO_MEMO_LINK is set here: send-message takes it over the deployment's own.
    memo_link_set: bool = False
    # What the client's messages are said in (language.py): the reader's, read once.
    languages: Languages = ENGLISH

    @property
    def audience(self) -> str:
        """What the ID token must be issued for: the endpoint's URL, as Cloud Run expects."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        url: str | None = None,
        languages: Languages | None = None,
    ) -> RemoteSettings | None:
        """The endpoint's settings, or None when neither ``url`` nor KAKAO_TOKEN_URL is set.

        KAKAO_TOKEN_URL present but empty (a GitHub variable that was never set expands to "")
        is an error about that variable: falling back to the store would ask a reader for
        Kakao's keys, which a reader must never hold. Messages are said in ``languages``
        (default: the reader's, language.languages_from).
        """
        languages = languages or languages_from(environ)
        url = (url or environ.get(URL_VARIABLE, "")).strip()
        if not url:
            if URL_VARIABLE in environ:
                raise ConfigError(_EMPTY_URL.said(languages), (URL_VARIABLE,))
            return None
        # The ID token travels in the request: never in clear text, but to this machine; and
        # where it goes is read as requests reads it (checks.destination), by every check.
        endpoint = configured_destination(URL_VARIABLE, url, _URL_MUST_BE, languages)
        if not endpoint.never_in_clear_text or urlsplit(url).query:
            raise ConfigError(_URL_MUST_BE.said(languages), (URL_VARIABLE,))
        api_base_url = (environ.get(API_BASE_VARIABLE, "").strip() or cls.api_base_url).rstrip("/")
        # send-memo sends the Kakao access token there: never in clear text over a network.
        kakao = configured_destination(
            API_BASE_VARIABLE, api_base_url, _API_BASE_MUST_BE, languages
        )
        if not kakao.never_in_clear_text:
            raise ConfigError(_API_BASE_MUST_BE.said(languages), (API_BASE_VARIABLE,))
        return cls(
            url=url,
            identity=IdentitySettings.from_env(environ, languages),
            api_base_url=api_base_url,
            proxies=proxies_for(environ, (url, api_base_url)),
            ca_bundle=ca_bundle_from(environ),
            memo_link=_memo_link(environ, languages),
            memo_link_set=bool(environ.get("KAKAO_MEMO_LINK", "").strip()),
            languages=languages,
        )


# (endpoint URL, user id, login): the owner's token and the sender's are two entries.
CacheKey = tuple[str, int | None, str]


class TokenCache:
    """Access tokens by (URL, user, login), held until they near expiry, or for at most
    ``max_age_seconds`` after they were fetched when one is given; safe across threads.

    One lock per key: callers of one key wait for the first one's answer instead of all asking.
    """

    def __init__(self) -> None:
        # Each token with when it was fetched (the caller's clock).
        self._tokens: dict[CacheKey, tuple[RemoteToken, float]] = {}
        self._key_locks: dict[CacheKey, threading.Lock] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenCache(entries={len(self._tokens)})"

    def get_or_fetch(
        self,
        key: CacheKey,
        leeway_seconds: int,
        now: Callable[[], float],
        fetch: Callable[[], RemoteToken],
        max_age_seconds: float | None = None,
    ) -> RemoteToken:
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                entry = self._tokens.get(key)
            if entry is not None:
                token, fetched_at = entry
                young = max_age_seconds is None or now() - fetched_at < max_age_seconds
                if young and token.expires_at - now() > leeway_seconds:
                    return token
            fetched_at = now()
            token = fetch()
            with self._lock:
                self._tokens[key] = (token, fetched_at)
            return token

    def forget(self, key: CacheKey, token: RemoteToken) -> None:
        """Drop ``token`` (one Kakao refused), unless another caller has replaced it already."""
        with self._lock:
            entry = self._tokens.get(key)
            if entry is not None and entry[0].access_token == token.access_token:
                del self._tokens[key]

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
    login: str = OWNER,
) -> RemoteToken:
    """An access token valid for at least ``leeway_seconds`` (at most an hour), from memory or
    the endpoint: the owner's, or with ``login`` SENDER the sender's (which names the owner as
    its ``receiver_user_id``; NoTokenStored when the deployment has no sender)."""
    leeway = min(max(leeway_seconds, 0), MAX_LEEWAY_SECONDS)

    def fetch() -> RemoteToken:
        chosen = sources if sources is not None else default_sources(settings.identity)
        id_token, source = find_id_token(settings.audience, chosen, settings.languages)
        check_audience(id_token, source, settings.audience, settings.languages)
        params: dict[str, Any] = {"min_valid": leeway}
        if user_id is not None:
            params["user_id"] = user_id
        if login != OWNER:
            params["login"] = login
        http = session or _default_session(settings)
        return _ask(settings, http, id_token, source, params, sleep)

    max_age = SENDER_CACHE_SECONDS if login == SENDER else None
    return cache.get_or_fetch((settings.url, user_id, login), leeway, now, fetch, max_age)


def forget_token(
    settings: RemoteSettings,
    token: RemoteToken,
    user_id: int | None = None,
    *,
    login: str = OWNER,
    cache: TokenCache = _CACHE,
) -> None:
    """Stop serving ``token`` from memory (Kakao refused it: -401), so that the next
    remote_token() for this login asks the endpoint."""
    cache.forget((settings.url, user_id, login), token)


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
    languages = settings.languages
    failure = Words("", "")
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
            name = type(exc).__name__
            failure = Words(f"{name}: 응답 없음", f"{name}: no answer")
            continue
        body = json_body(response, raw)
        if response.status_code == 200 and body is not None:
            return token_from(body, settings.url, languages)
        if response.is_redirect:
            redirected = _redirect_message(settings.url, response)
            raise ConfigError(redirected.said(languages), (URL_VARIABLE,))
        if body is not None and isinstance(body.get("error"), str):
            raise endpoint_error(response.status_code, body, response.headers, languages)
        status = response.status_code
        if status in (401, 403):
            refusal = refusal_message(settings.url, settings.audience, source, status, id_token)
            raise IdentityRejected(refusal.said(languages), status)
        if status == 404:
            not_found = Words(
                f"{settings.url}에서 토큰 함수의 JSON 없이 HTTP 404가 왔습니다: {URL_VARIABLE}"
                "(./deploy.sh가 출력한 kakao-token URL)을 확인하세요",
                f"{settings.url} answered HTTP 404 without the function's JSON: check "
                f"{URL_VARIABLE} (the kakao-token URL that ./deploy.sh printed)",
            )
            raise ConfigError(not_found.said(languages), (URL_VARIABLE,))
        failure = _not_the_function(status)
        if status not in _TRANSIENT_STATUSES:
            break
    attempts = "1 attempt" if tried == 1 else f"{tried} attempts"
    unreachable = Words(
        f"토큰 엔드포인트({settings.url})가 쓸 만한 답을 하지 않았습니다({failure.ko}; "
        f"{tried}번 시도): 네트워크(프록시, DNS)와 {URL_VARIABLE}을 확인하고 1분 뒤에 다시 "
        "시도하세요",
        f"the token endpoint {settings.url} did not answer usably ({failure.en}; {attempts}): "
        f"check the network (proxy, DNS) and {URL_VARIABLE}, then try again in a minute",
    )
    raise EndpointUnreachable(unreachable.said(languages))


def _not_the_function(status: int) -> Words:
    """An HTTP answer that is not the function's JSON, as a cause."""
    if status < 500:
        return Words(
            f"HTTP {status}, 토큰 함수의 JSON이 아님", f"HTTP {status} without the function's JSON"
        )
    return Words(
        f"HTTP {status}, 토큰 함수의 JSON이 아님(프록시, Google 프런트엔드, 또는 시작하지 못하는 "
        "배포: gcloud functions logs read kakao-token)",
        f"HTTP {status} without the function's JSON (a proxy, Google's front end, or a "
        "deployment that does not start: gcloud functions logs read kakao-token)",
    )


def _redirect_message(url: str, response: requests.Response) -> Words:
    target = urlsplit(response.headers.get("Location", ""))
    status = response.status_code
    where = f"{target.scheme}://{target.hostname}" if target.hostname else ""
    return Words(
        f"{url}에서 HTTP {status}, {where or '다른 경로'}(으)로 가라는 리디렉션이 왔습니다: 토큰 "
        "함수는 리디렉션하지 않으며, ID 토큰은 넘겨 보내지 않았습니다. "
        f"{URL_VARIABLE}을 ./deploy.sh가 출력한 kakao-token URL로 설정하세요",
        f"{url} answered HTTP {status}, a redirect to {where or 'another path'}; the token "
        "function never redirects, and the ID token is not sent on: set "
        f"{URL_VARIABLE} to the kakao-token URL that ./deploy.sh printed",
    )


def _memo_link(environ: Mapping[str, str], languages: Languages) -> str:
    problems: list[str] = []
    link = memo_link_from(environ, problems)
    if problems:
        # kakao.api says it in English for the server's settings too.
        bad_link = Words(
            "KAKAO_MEMO_LINK 값은 http(s)로 시작하는 절대 URL이어야 합니다", problems[0]
        )
        raise ConfigError(bad_link.said(languages), ("KAKAO_MEMO_LINK",))
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
