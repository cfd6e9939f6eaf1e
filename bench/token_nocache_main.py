"""kakao_token with its in-process cache off: every GET reads storage (the cache-miss path)."""

import flask
import functions_framework

import main
from token_logic.web.token_endpoint import FreshTokenCache, handle_token

_no_cache = FreshTokenCache(ttl_seconds=0)


@functions_framework.http
def kakao_token(request: flask.Request) -> flask.Response:
    return handle_token(request, main._get_service, _no_cache)
