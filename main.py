"""Cloud Functions entry points. Thin on purpose: settings are read here, once, lazily.

Each deployed function serves one of these targets, yet functions-framework loads this whole
file: so each entry point imports its own handler on its first request, and an instance loads
only its own part of the package (a login start never loads the token endpoint or the sweep).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import flask
import functions_framework

if TYPE_CHECKING:  # pragma: no cover
    from token_logic.service.token_service import TokenService
    from token_logic.web.token_endpoint import FreshTokenCache

_service: TokenService | None = None
_token_cache: FreshTokenCache | None = None  # per instance, like the service
_service_lock = threading.Lock()


def _get_service() -> TokenService:
    """The instance's one service; a ConfigError propagates (and becomes a clear 500 page)."""
    global _service
    with _service_lock:
        just_built = _service is None
        if _service is None:
            from token_logic.config import Settings
            from token_logic.wiring import build_service

            _service = build_service(Settings.from_env(os.environ))
    if just_built:
        flask.after_this_request(_warm_up_after_response)
    return _service


def _warm_up_after_response(response: flask.Response) -> flask.Response:
    # After the first answer has gone out, load what later requests need (see BENCHMARKS.md).
    service = _service
    if service is not None:
        from token_logic.wiring import warm_up_in_background

        response.call_on_close(lambda: warm_up_in_background(service))
    return response


@functions_framework.http
def kakao_callback(request: flask.Request) -> flask.Response:
    """The Kakao redirect URI: opening it starts a login; Kakao's redirect back finishes it."""
    from token_logic.web.callback import handle_callback

    return handle_callback(request, _get_service)


@functions_framework.http
def kakao_refresh(request: flask.Request) -> flask.Response:
    """Cloud Scheduler's target: POST refreshes every stored token that is due."""
    from token_logic.web.refresh_endpoint import handle_refresh

    return handle_refresh(request, _get_service)


@functions_framework.http
def kakao_token(request: flask.Request) -> flask.Response:
    """Scripts' private endpoint: GET answers a valid access token (never the refresh token)."""
    global _token_cache
    from token_logic.web.token_endpoint import FreshTokenCache, handle_token

    with _service_lock:
        if _token_cache is None:
            _token_cache = FreshTokenCache()
    return handle_token(request, _get_service, _token_cache)
