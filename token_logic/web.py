"""HTTP requests to use cases to responses, for both entry points.

Every response carries the hardening headers; every package error becomes its Problem's status
and page; anything else becomes a clean 500 page, logged with its stack but no request data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import flask

from .config import Settings
from .errors import AuthorizationDenied, KakaoTokenError, LoginRequired, NoTokenStored
from .log import log_event
from .pages import STYLE_CSP_SOURCE, problem_page, success_page
from .problems import Problem, problem_for
from .service import TokenService
from .state import COOKIE_LIFETIME_SECONDS, cookie_name_for
from .summary import summarize
from .unlink import handle_unlink, is_unlink_request

ServiceFactory = Callable[[], TokenService]

_MAX_CODE_LENGTH = 512
_MAX_ERROR_LENGTH = 64
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src {STYLE_CSP_SOURCE}; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'"
    ),
}


def handle_callback(request: flask.Request, get_service: ServiceFactory) -> flask.Response:
    """The redirect URI: start a login, or finish one Kakao sent back; and ``/unlink``."""
    if is_unlink_request(request):
        status, body = handle_unlink(request, get_service)
        response = _json_response(status, body)
        if status == 405:
            response.headers["Allow"] = "GET, POST"
        return response
    if request.method not in ("GET", "HEAD"):
        return _method_not_allowed("GET, HEAD")
    settings: Settings | None = None  # unknown when the configuration itself is broken
    try:
        service = get_service()
        settings = service.settings
        return _callback(request, service)
    except KakaoTokenError as exc:
        return _problem_response(problem_for(exc), exc, settings, request)
    except Exception:  # noqa: BLE001 - the outermost edge: a trace must never reach a page
        log_event(logging.ERROR, "unexpected error in kakao_callback", exc_info=True)
        return _problem_response(problem_for(KakaoTokenError()), None, settings, request)


def handle_refresh(request: flask.Request, get_service: ServiceFactory) -> flask.Response:
    """The scheduled refresh: refresh every stored document that is due; JSON summary."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    login_url = "the callback URL"  # until the settings are known (they may be broken)
    try:
        service = get_service()
        login_url = service.settings.redirect_uri or login_url
        force = request.args.get("force", "") in ("1", "true", "yes")
        outcomes = service.sweep(force=force)
        return _refresh_summary([summarize(o, service.now()) for o in outcomes], login_url)
    except KakaoTokenError as exc:
        return _refresh_failure(exc, login_url)
    except Exception:  # noqa: BLE001 - the outermost edge
        log_event(logging.ERROR, "unexpected error in kakao_refresh", exc_info=True)
        return _json_response(500, {"status": "error", "message": "unexpected error; see logs"})


def _refresh_summary(summary: list[dict[str, Any]], login_url: str) -> flask.Response:
    failed = [item for item in summary if item["status"] == "failed"]
    for item in summary:
        severity = logging.ERROR if item["status"] == "failed" else logging.INFO
        facts = {key: value for key, value in item.items() if key not in ("status", "message")}
        log_event(
            severity,
            f"refresh {item['status']}: {item.get('message', 'ok')}",
            login_url=login_url,
            **facts,
        )
    if not failed:
        return _json_response(200, {"status": "ok", "documents": summary})
    body = {"status": "failed", "documents": summary, "message": f"log in again at {login_url}"}
    return _json_response(max(item["http_status"] for item in failed), body)


def _callback(request: flask.Request, service: TokenService) -> flask.Response:
    args = request.args
    settings = service.settings
    if "error" in args:
        raise AuthorizationDenied(
            args.get("error", "")[:_MAX_ERROR_LENGTH], args.get("error_description", "")[:200]
        )
    code = args.get("code", "")
    if not code:
        return _start_login(service)
    if request.method == "HEAD":
        # Link previewers and prefetchers must not spend the single-use code.
        return _finish(flask.Response(status=204), settings.redirect_uri)
    state = args.get("state", "")
    if len(code) > _MAX_CODE_LENGTH or not code.isprintable():
        raise AuthorizationDenied("invalid_request", "malformed code")
    document = service.finish_login(code, state, request.cookies)
    page = success_page(document, start_url=settings.redirect_uri, demo=settings.demo)
    response = flask.Response(page, status=200, mimetype="text/html")
    _forget_login(response, state, settings.redirect_uri, settings.secure_cookies)
    return _finish(response, settings.redirect_uri)


def _start_login(service: TokenService) -> flask.Response:
    redirect = service.start_login()
    settings = service.settings
    response = flask.Response(status=302, headers={"Location": redirect.url})
    response.set_cookie(
        redirect.start.cookie_name,
        redirect.start.cookie_value,
        max_age=COOKIE_LIFETIME_SECONDS,
        path=_cookie_path(settings.redirect_uri),
        secure=settings.secure_cookies,
        httponly=True,
        samesite="Lax",  # Kakao's redirect back is a top-level GET: Lax sends the cookie
    )
    log_event(logging.INFO, "login started", pkce=settings.pkce)
    return _finish(response, settings.redirect_uri)


def _problem_response(
    problem: Problem, exc: Exception | None, settings: Settings | None, request: flask.Request
) -> flask.Response:
    severity = logging.WARNING if problem.status < 500 else logging.ERROR
    log_event(
        severity,
        "callback refused",
        status=problem.status,
        problem=problem.one_line(),
        error_code=problem.code,
        error=type(exc).__name__ if exc else "",
    )
    start_url = settings.redirect_uri if settings else ""
    page = problem_page(problem, start_url=start_url, demo=settings.demo if settings else False)
    response = flask.Response(page, status=problem.status, mimetype="text/html")
    if problem.retry_after:
        response.headers["Retry-After"] = str(problem.retry_after)
    state = request.args.get("state", "")
    if state and settings:
        _forget_login(response, state, settings.redirect_uri, settings.secure_cookies)
    return _finish(response, start_url)


def _refresh_failure(exc: KakaoTokenError, login_url: str) -> flask.Response:
    problem = problem_for(exc)
    severity = logging.ERROR if isinstance(exc, (LoginRequired, NoTokenStored)) else logging.WARNING
    log_event(
        severity,
        "refresh failed",
        status=problem.status,
        error_code=problem.code,
        error=type(exc).__name__,
        login_url=login_url,
    )
    return _json_response(
        problem.status,
        {
            "status": "failed",
            "error_code": problem.code,
            "message": problem.one_line(),
            "login_url": login_url,
        },
    )


def _json_response(status: int, body: dict[str, Any]) -> flask.Response:
    response = flask.Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json"
    )
    return _finish(response, "")


def _method_not_allowed(allow: str) -> flask.Response:
    response = flask.Response("Method Not Allowed\n", status=405, mimetype="text/plain")
    response.headers["Allow"] = allow
    return _finish(response, "")


def _forget_login(response: flask.Response, state: str, redirect_uri: str, secure: bool) -> None:
    response.delete_cookie(
        cookie_name_for(state),
        path=_cookie_path(redirect_uri),
        secure=secure,
        httponly=True,
        samesite="Lax",
    )


def _cookie_path(redirect_uri: str) -> str:
    return urlsplit(redirect_uri).path or "/"


def _finish(response: flask.Response, redirect_uri: str) -> flask.Response:
    response.headers.update(SECURITY_HEADERS)
    if redirect_uri.startswith("https://"):
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response
