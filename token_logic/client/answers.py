"""The token function's answers, read: a token with its facts, or its JSON error as the
package's exception carrying the function's own message (the README's table of ``error``s)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..checks import is_decimal, is_http_url, json_object
from ..clock import format_time
from ..errors import EndpointUnreachable, error_class_for
from ..language import ENGLISH, Languages, Words
from .function_refusals import with_korean

if TYPE_CHECKING:  # pragma: no cover
    import requests


@dataclass(frozen=True)
class RemoteToken:
    """An access token from the endpoint and its facts; the repr shows no token."""

    access_token: str = field(repr=False)
    expires_at: int
    scope: str
    user_id: int | None
    token_type: str = "bearer"
    # The sender's answer (?login=sender) names whom its messages go to: the owner.
    receiver_user_id: int | None = None
    memo_link: str = ""  # the deployment's KAKAO_MEMO_LINK ("" from an older endpoint)


def json_body(response: requests.Response, raw: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, when the answer says it is JSON and it is one; else None."""
    if "json" not in response.headers.get("Content-Type", ""):
        return None
    return json_object(raw)


def token_from(body: Mapping[str, Any], url: str, languages: Languages = ENGLISH) -> RemoteToken:
    """The token of a 200 answer; a 200 without a live token is no answer (EndpointUnreachable)."""
    token, expires_at = body.get("access_token"), body.get("expires_at")
    if (
        not isinstance(token, str)
        or not token
        or not isinstance(expires_at, int)
        or isinstance(expires_at, bool)
    ):
        no_token = Words(
            f"토큰 엔드포인트({url})가 200으로 답했지만 토큰이 없습니다",
            f"the token endpoint {url} answered 200 without a token",
        )
        raise EndpointUnreachable(no_token.said(languages))
    if expires_at <= time.time():
        expired = Words(
            f"토큰 엔드포인트({url})가 {format_time(expires_at)}에 이미 만료된 토큰을 주었습니다: "
            "KAKAO_TOKEN_URL이 옛 배포나 다른 사람의 배포를 가리키지 않나요?",
            f"the token endpoint {url} answered a token that expired at "
            f"{format_time(expires_at)}: is KAKAO_TOKEN_URL an old or foreign deployment?",
        )
        raise EndpointUnreachable(expired.said(languages))
    user_id, receiver = body.get("user_id"), body.get("receiver_user_id")
    memo_link = body.get("memo_link")
    return RemoteToken(
        access_token=token,
        expires_at=expires_at,
        scope=str(body.get("scope") or ""),
        user_id=user_id if isinstance(user_id, int) else None,
        token_type=str(body.get("token_type") or "bearer"),
        receiver_user_id=receiver if isinstance(receiver, int) else None,
        memo_link=memo_link if isinstance(memo_link, str) and is_http_url(memo_link) else "",
    )


def endpoint_error(
    status: int,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    languages: Languages = ENGLISH,
) -> Exception:
    """The package exception for the function's JSON error (the ``error`` values of the
    README's table), carrying the function's message (after a Korean line for a Korean reader:
    function_refusals.py)."""
    code = str(body.get("code") or "")
    message = str(body.get("message") or body.get("error"))
    raw_retry_after = headers.get("Retry-After", "")
    retry_after = int(raw_retry_after) if is_decimal(raw_retry_after) else None
    exc = error_class_for(body.get("error")).from_wire(status, code, message, retry_after)
    login_url = body.get("login_url")
    said = with_korean(
        message,
        str(body.get("error")),
        status=status,
        code=code,
        login_url=login_url if isinstance(login_url, str) and is_http_url(login_url) else "",
        retry_after=retry_after,
        languages=languages,
    )
    # The function's words (what to do, the login URL) replace the class's generic text.
    exc.args = (said,)
    return exc
