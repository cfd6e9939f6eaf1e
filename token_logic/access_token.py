"""The library API for scripts: one call for a valid access token."""

from __future__ import annotations

import os
from collections.abc import Mapping

from .client.remote import RemoteSettings, remote_token, url_not_set
from .clock import DEFAULT_ACCESS_TOKEN_LEEWAY
from .language import languages_from


def get_access_token(
    user_id: int | None = None,
    *,
    leeway_seconds: int = DEFAULT_ACCESS_TOKEN_LEEWAY,
    environ: Mapping[str, str] | None = None,
) -> str:
    """A Kakao access token valid for at least ``leeway_seconds``, refreshed when needed.

    With KAKAO_TOKEN_URL set (what ``pip install`` is for), it asks the token endpoint and needs
    no Kakao key, secret or bucket: only a Google identity among the deployment's TOKEN_READERS
    (see client/google_id_token.py for where its ID token comes from). The token is then kept
    in this process until it nears expiry. KAKAO_TOKEN_URL present but empty (an unset CI
    variable) is an error about that variable, never a fall back to the store.

    Without it, in a checkout of the whole project, it reads the same variables as the function
    (KAKAO_REST_API_KEY, KAKAO_CLIENT_SECRET, TOKEN_BUCKET or TOKEN_DIR, TOKEN_OBJECT) from
    ``environ`` (default: ``os.environ``) and refreshes with the same concurrency guarantees;
    in the kakao-token package, which holds no store, that is a ``ConfigError`` naming
    KAKAO_TOKEN_URL. Raises a ``KakaoTokenError`` subclass on failure, its message in the
    reader's language (KAKAO_TOKEN_LANG, else the locale: see language.py).
    """
    environ = os.environ if environ is None else environ
    remote = RemoteSettings.from_env(environ)
    if remote is not None:
        return remote_token(remote, user_id, leeway_seconds).access_token
    try:
        from .wiring import service_from_env  # the store's code: loaded only on this path
    except ImportError as exc:
        if not (exc.name or "").startswith(f"{__package__}."):
            raise  # a checkout missing a server dependency: pip says which
        # `pip install kakao-token` brings the client alone: no store to fall back to, and the
        # fix is the URL, never Kakao's keys (which a reader must not hold).
        raise url_not_set(languages_from(environ)) from exc

    service = service_from_env(environ)
    return service.access_token(user_id, leeway_seconds)
