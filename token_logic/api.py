"""The library API for scripts: one call for a valid access token."""

from __future__ import annotations

import os
from collections.abc import Mapping

from .remote import RemoteSettings, remote_token
from .service import DEFAULT_ACCESS_TOKEN_LEEWAY
from .wiring import service_from_env


def get_access_token(
    user_id: int | None = None,
    *,
    leeway_seconds: int = DEFAULT_ACCESS_TOKEN_LEEWAY,
    environ: Mapping[str, str] | None = None,
) -> str:
    """A Kakao access token valid for at least ``leeway_seconds``, refreshed when needed.

    Reads the same variables as the function (KAKAO_REST_API_KEY, KAKAO_CLIENT_SECRET,
    TOKEN_BUCKET or TOKEN_DIR, TOKEN_OBJECT) from ``environ`` (default: ``os.environ``), and
    refreshes with the same concurrency guarantees, so scripts, the scheduled refresh and other
    instances can all call it at once. Raises a ``KakaoTokenError`` subclass on failure.

    With KAKAO_TOKEN_URL set, it asks the token endpoint instead and needs none of those: only a
    Google identity among the deployment's TOKEN_READERS (see id_tokens.py for where its ID
    token comes from). The token is then kept in this process until it nears expiry.
    """
    environ = os.environ if environ is None else environ
    remote = RemoteSettings.from_env(environ)
    if remote is not None:
        return remote_token(remote, user_id, leeway_seconds).access_token
    service = service_from_env(environ)
    return service.access_token(user_id, leeway_seconds)
