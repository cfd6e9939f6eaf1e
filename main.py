"""Cloud Functions entry points. Thin on purpose: settings are read here, once, lazily."""

from __future__ import annotations

import os
import threading

import flask
import functions_framework

from token_logic.config import Settings
from token_logic.service.token_service import TokenService
from token_logic.web.callback import handle_callback
from token_logic.web.refresh_endpoint import handle_refresh
from token_logic.web.token_endpoint import FreshTokenCache, handle_token
from token_logic.wiring import build_service, warm_up_in_background

_service: TokenService | None = None
_service_lock = threading.Lock()
_token_cache = FreshTokenCache()  # per instance, like the service


def _get_service() -> TokenService:
    """The instance's one service; a ConfigError propagates (and becomes a clear 500 page)."""
    global _service
    with _service_lock:
        just_built = _service is None
        if _service is None:
            _service = build_service(Settings.from_env(os.environ))
    if just_built:
        flask.after_this_request(_warm_up_after_response)
    return _service


def _warm_up_after_response(response: flask.Response) -> flask.Response:
    # After the first answer has gone out, load what later requests need (see BENCHMARKS.md).
    service = _service
    if service is not None:
        response.call_on_close(lambda: warm_up_in_background(service))
    return response


@functions_framework.http
def kakao_callback(request: flask.Request) -> flask.Response:
    """The Kakao redirect URI: opening it starts a login; Kakao's redirect back finishes it."""
    return handle_callback(request, _get_service)


@functions_framework.http
def kakao_refresh(request: flask.Request) -> flask.Response:
    """Cloud Scheduler's target: POST refreshes every stored token that is due."""
    return handle_refresh(request, _get_service)


@functions_framework.http
def kakao_token(request: flask.Request) -> flask.Response:
    """Scripts' private endpoint: GET answers a valid access token (never the refresh token)."""
    return handle_token(request, _get_service, _token_cache)
