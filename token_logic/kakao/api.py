"""The Kakao client: authorize URL, code exchange, refresh, user id, logout, send-to-me (and,
through ``call_api``, talk.py's friends and messages).

It is handed a factory for its ``requests.Session`` (one per process, for connection reuse;
created on first use because importing requests costs ~90 ms of cold start) and a ``sleep``
for backoff, so tests run it against a fake Kakao without waiting.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:  # pragma: no cover
    import requests

from ..budget import MIN_KAKAO_ATTEMPT_SECONDS, Deadline
from ..checks import is_decimal, is_http_url
from ..errors import DeadlineReached, KakaoError, KakaoUnavailable
from ..network import body_within
from ..retry import Retry
from .codes import RETRIED_IN_A_CALL

DEFAULT_AUTH_BASE_URL = "https://kauth.kakao.com"
DEFAULT_API_BASE_URL = "https://kapi.kakao.com"
DEFAULT_MEMO_LINK = "https://developers.kakao.com"
# (connect, read) seconds: Kakao answers in well under a second when healthy.
DEFAULT_TIMEOUT = (3.05, 10.0)
BACKOFF_SECONDS = (0.5, 1.5)
_FORM = "application/x-www-form-urlencoded;charset=utf-8"
# Kakao's answers are small (a JWKS is ~2 KB): anything far larger is not Kakao's.
MAX_ANSWER_BYTES = 256 * 1024


class KakaoClient:
    """Speaks Kakao's OAuth and API endpoints; raises KakaoError or KakaoUnavailable."""

    def __init__(
        self,
        session: requests.Session | Callable[[], requests.Session],
        *,
        rest_api_key: str,
        client_secret: str,
        redirect_uri: str,
        auth_base_url: str,
        api_base_url: str,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._session_or_factory = session
        self._session: requests.Session | None = None
        self._rest_api_key = rest_api_key
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._auth_base_url = auth_base_url
        self._api_base_url = api_base_url
        self._timeout = timeout
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"KakaoClient(auth_base_url={self._auth_base_url!r})"

    def warm_up(self) -> None:
        """Import requests and build the session now, off the request path."""
        self._http()

    def _http(self) -> requests.Session:
        if self._session is None:
            given = self._session_or_factory
            self._session = given() if callable(given) else given
        return self._session

    def authorize_url(
        self, state: str, *, scope: str = "", code_challenge: str = "", nonce: str = ""
    ) -> str:
        """Where to send the browser to start a login."""
        params = {
            "client_id": self._rest_api_key,
            "redirect_uri": self._redirect_uri,
            "response_type": "code",
            "state": state,
        }
        if scope:
            params["scope"] = scope
        if code_challenge:
            params["code_challenge"] = code_challenge
            params["code_challenge_method"] = "S256"
        if nonce:
            params["nonce"] = nonce
        return f"{self._auth_base_url}/oauth/authorize?{urlencode(params)}"

    def exchange_code(
        self, code: str, code_verifier: str = "", deadline: Deadline | None = None
    ) -> dict[str, Any]:
        """Trade a single-use authorization code for tokens.

        Not retried once the request may have reached Kakao: a replayed code is KOE320.
        """
        form = {
            "grant_type": "authorization_code",
            "client_id": self._rest_api_key,
            "redirect_uri": self._redirect_uri,
            "code": code,
        }
        if code_verifier:
            form["code_verifier"] = code_verifier
        return self._call(
            "POST",
            self._auth_base_url + "/oauth/token",
            form=self._signed(form),
            retry_when_sent=False,
            deadline=deadline,
        )

    def redeem_refresh_token(
        self, refresh_token: str, deadline: Deadline | None = None
    ) -> dict[str, Any]:
        """Get a new access token (and, in its last month, a new refresh token).

        No attempt starts that could not finish by ``deadline``. A timed-out or reset attempt is
        tried again: if Kakao had processed it without rotating, the same refresh token still
        works; if it had rotated, the retry gets KOE322, and the login really is dead (the new
        refresh token was lost with the answer; only a person logging in again can help).
        """
        form = {
            "grant_type": "refresh_token",
            "client_id": self._rest_api_key,
            "refresh_token": refresh_token,
        }
        return self._call(
            "POST",
            self._auth_base_url + "/oauth/token",
            form=self._signed(form),
            retry_when_sent=True,
            deadline=deadline,
        )

    def user_id(self, access_token: str, deadline: Deadline | None = None) -> int:
        """The Kakao user id (a 64-bit integer) the access token belongs to."""
        body = self._call(
            "GET",
            self._api_base_url + "/v2/user/me",
            token=access_token,
            retry_when_sent=True,
            deadline=deadline,
        )
        user_id = body.get("id")
        if not isinstance(user_id, int) or isinstance(user_id, bool):
            raise KakaoUnavailable("bad_response", "/v2/user/me without an integer id")
        return user_id

    def logout(self, access_token: str, deadline: Deadline | None = None) -> None:
        """Expire the user's tokens at Kakao (a refused or unstored fresh login, a logout)."""
        self._call(
            "POST",
            self._api_base_url + "/v1/user/logout",
            token=access_token,
            retry_when_sent=True,
            deadline=deadline,
        )

    def send_memo(self, access_token: str, text: str, link_url: str) -> None:
        """Send a KakaoTalk text message to the token's owner ("send to me")."""
        template = {
            "object_type": "text",
            "text": text,
            "link": {"web_url": link_url, "mobile_web_url": link_url},
        }
        self._call(
            "POST",
            self._api_base_url + "/v2/api/talk/memo/default/send",
            form={"template_object": json.dumps(template, ensure_ascii=False)},
            token=access_token,
            retry_when_sent=False,
        )

    def call_api(
        self,
        method: str,
        path: str,
        access_token: str,
        *,
        query: Mapping[str, str | int] | None = None,
        form: Mapping[str, str] | None = None,
        retry_when_sent: bool,
        deadline: Deadline | None = None,
    ) -> dict[str, Any]:
        """One call of Kakao's API (``path`` on the API host) as the token's user: the answer's
        JSON object, else KakaoError or KakaoUnavailable (DeadlineReached when no attempt could
        finish by ``deadline``). For talk.py's friends and messages."""
        url = self._api_base_url + path + (f"?{urlencode(query)}" if query else "")
        return self._call(
            method,
            url,
            form=form,
            token=access_token,
            retry_when_sent=retry_when_sent,
            deadline=deadline,
        )

    def access_token_info(self, access_token: str, timeout_seconds: float) -> dict[str, Any]:
        """Kakao's facts about an access token (``id``, ``expires_in``, ``app_id``); KakaoError
        -401 when it is invalid or ended. One attempt within ``timeout_seconds``: a webhook's
        3 seconds leave no room for _call's retries."""
        return self._get_once("/v1/user/access_token_info", access_token, timeout_seconds)

    def signing_keys(self, timeout_seconds: float) -> dict[str, Any]:
        """Kakao's public keys (JWKS) that sign ID tokens and account status events."""
        return self._get_once("/.well-known/jwks.json", "", timeout_seconds)

    def _get_once(self, path: str, token: str, timeout_seconds: float) -> dict[str, Any]:
        base = self._auth_base_url if path.startswith("/.well-known/") else self._api_base_url
        # No compressed answer: a decoder may read on without end before it yields a byte
        # (a gzip header that never ends), past body_within's clock.
        headers = {"Accept-Encoding": "identity"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        timeout = (min(self._timeout[0], timeout_seconds), timeout_seconds)
        # The whole answer, not each read, within timeout_seconds: a webhook has 3 s in all.
        give_up_at = time.monotonic() + timeout_seconds
        try:
            response = self._http().get(base + path, headers=headers, timeout=timeout, stream=True)
            with response:
                body = body_within(response, give_up_at, MAX_ANSWER_BYTES)
        except _request_errors() as exc:
            raise _classify(exc, retry_when_sent=False)[0] from exc
        return parse_response(response, body)

    def _signed(self, form: dict[str, str]) -> dict[str, str]:
        # Kakao accepts client authentication only as client_secret_post.
        return {**form, "client_secret": self._client_secret} if self._client_secret else form

    def _call(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None = None,
        token: str = "",
        retry_when_sent: bool,
        deadline: Deadline | None = None,
    ) -> dict[str, Any]:
        headers = {"Content-Type": _FORM} if form is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # Another attempt only if it can still finish by the deadline, after its pause.
        retry = Retry(BACKOFF_SECONDS, min_attempt_seconds=MIN_KAKAO_ATTEMPT_SECONDS)
        time_left = deadline.remaining if deadline is not None else None
        failure: Exception = AssertionError("unreachable: the first attempt is always made")
        for _ in retry.attempts(sleep=self._sleep, time_left=time_left):
            timeout = self._attempt_timeout(deadline)
            if timeout is None:
                raise DeadlineReached("no time left for a Kakao call before the deadline")
            try:
                response = self._http().request(
                    method, url, data=form, headers=headers, timeout=timeout
                )
                return parse_response(response)
            except (_request_errors(), KakaoError, KakaoUnavailable) as exc:
                failure, retriable = _classify(exc, retry_when_sent)
                if failure is not exc:
                    failure.__cause__ = exc  # as `raise failure from exc` would set it
                if not retriable:
                    break
        raise failure

    def _attempt_timeout(self, deadline: Deadline | None) -> tuple[float, float] | None:
        """This attempt's (connect, read) timeout, cut to the deadline; None: do not start."""
        if deadline is None:
            return self._timeout
        left = deadline.remaining()
        if left < MIN_KAKAO_ATTEMPT_SECONDS:
            return None
        connect, read = self._timeout
        connect = min(connect, left / 2)
        return connect, min(read, left - connect)


def _request_errors() -> type[Exception]:
    import requests

    return requests.RequestException


def _classify(exc: Exception, retry_when_sent: bool) -> tuple[Exception, bool]:
    """The error to raise for a failed attempt, and whether another attempt is safe."""
    import requests

    if isinstance(exc, requests.ConnectTimeout):
        return KakaoUnavailable("timeout", "could not connect"), True  # never reached Kakao
    if isinstance(exc, requests.Timeout):
        return KakaoUnavailable("timeout"), retry_when_sent
    if isinstance(exc, requests.ConnectionError):
        return KakaoUnavailable("unreachable"), retry_when_sent
    if isinstance(exc, requests.RequestException):
        return KakaoUnavailable("unreachable"), False
    if isinstance(exc, KakaoError):
        # Kakao answered, so it saw the request: a call that must not happen twice (a message,
        # a code exchange) is not made again even after a "temporary" -1 or KOE003, which Kakao
        # may give after doing the work (a message would arrive twice).
        return exc, retry_when_sent and exc.code in RETRIED_IN_A_CALL
    return exc, retry_when_sent


def parse_response(response: requests.Response, raw: bytes | None = None) -> dict[str, Any]:
    """A 200 JSON object, or the matching error. Raw bodies are never kept: they echo codes.
    ``raw`` is the body when it was read already (``network.body_within``)."""
    try:
        body = json.loads(response.content if raw is None else raw)
    except ValueError:
        body = None
    if response.status_code == 200:
        if not isinstance(body, dict):
            raise KakaoUnavailable("bad_response", "Kakao answered 200 without a JSON object")
        return body
    if isinstance(body, dict) and ("error" in body or "error_code" in body or "code" in body):
        code = str(body.get("error_code") or body.get("code") or "")
        error = str(body.get("error") or "")
        scopes = body.get("required_scopes")
        required = (
            tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else ()
        )
        raise KakaoError(
            response.status_code, error, code, _retry_after(response), required_scopes=required
        )
    if response.status_code >= 500:
        raise KakaoUnavailable("server_error", f"HTTP {response.status_code}")
    raise KakaoError(response.status_code, "", "")


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if is_decimal(value) else None


def memo_link_from(env: Mapping[str, str], problems: list[str]) -> str:
    """KAKAO_MEMO_LINK, an http(s) URL (Kakao opens only domains registered for the app)."""
    link = env.get("KAKAO_MEMO_LINK", "").strip() or DEFAULT_MEMO_LINK
    if not is_http_url(link):
        problems.append("KAKAO_MEMO_LINK must be an absolute http(s) URL")
    return link
