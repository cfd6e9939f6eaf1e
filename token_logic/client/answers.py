"""The token function's answers, read: a token with its facts, or its JSON error as the
package's exception carrying the function's own message (the README's table of ``error``s)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..checks import is_decimal, json_object
from ..clock import format_time
from ..errors import EndpointUnreachable, error_class_for

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


def json_body(response: requests.Response, raw: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, when the answer says it is JSON and it is one; else None."""
    if "json" not in response.headers.get("Content-Type", ""):
        return None
    return json_object(raw)


def token_from(body: Mapping[str, Any], url: str) -> RemoteToken:
    """The token of a 200 answer; a 200 without a live token is no answer (EndpointUnreachable)."""
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


def endpoint_error(status: int, body: Mapping[str, Any], headers: Mapping[str, str]) -> Exception:
    """The package exception for the function's JSON error (the ``error`` values of the
    README's table), carrying the function's message."""
    code = str(body.get("code") or "")
    message = str(body.get("message") or body.get("error"))
    raw_retry_after = headers.get("Retry-After", "")
    retry_after = int(raw_retry_after) if is_decimal(raw_retry_after) else None
    exc = error_class_for(body.get("error")).from_wire(status, code, message, retry_after)
    # The function's words (what to do, the login URL) replace the class's generic text.
    exc.args = (message,)
    return exc
