"""The callback function (``kakao_callback``): the redirect URI a person's browser opens.

It starts a login, finishes the one Kakao sends back, serves ``/claim``, and passes ``/unlink``
and ``/account-status`` to their webhooks. Every package error becomes its Problem's status and
page; anything else becomes a clean 500 page, logged with its stack but no request data.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import flask

from ..config import DONE_QUERY, Settings
from ..errors import (
    AuthorizationDenied,
    ClaimRequired,
    KakaoError,
    KakaoTokenError,
    LoginStateError,
)
from ..kakao.state import COOKIE_LIFETIME_SECONDS, cookie_name_for
from ..log import log_event
from ..logins import SENDER
from ..service.token_service import ServiceFactory, TokenService
from .done_cookie import (
    DONE_COOKIE,
    DONE_COOKIE_LIFETIME_SECONDS,
    done_login_from_cookies,
    encode_facts,
    facts_from_cookies,
)
from .responses import (
    CLAIM_PAGE_POLICY,
    DONE_PAGE_POLICY,
    finish,
    json_response,
    method_not_allowed,
)

# The callback function's other paths. Each part loads on its first use: a login start, the
# first request of most instances, never loads the webhooks, the pages or the error words
# (cold start, BENCHMARKS.md section 1).
CLAIM_PATH_SUFFIX = "/claim"
UNLINK_PATH_SUFFIX = "/unlink"
ACCOUNT_STATUS_PATH_SUFFIX = "/account-status"
TEST_MESSAGE_PATH_SUFFIX = "/test-message"
_MAX_CODE_LENGTH = 512
_MAX_ERROR_LENGTH = 64


def handle_callback(request: flask.Request, get_service: ServiceFactory) -> flask.Response:
    """The redirect URI: start a login, or finish one Kakao sent back; ``/claim``,
    ``/unlink`` and ``/account-status``."""
    if request.path.endswith(CLAIM_PATH_SUFFIX):
        return _claim(request, get_service)
    if request.path.endswith(TEST_MESSAGE_PATH_SUFFIX):
        from .test_message import handle_test_message

        response = handle_test_message(request, get_service)
        response.headers["Content-Security-Policy"] = DONE_PAGE_POLICY
        return response
    if request.path.endswith(ACCOUNT_STATUS_PATH_SUFFIX):
        from .account_status import handle_account_status

        status, event_body = handle_account_status(request, get_service)
        # RFC 8935: 202 with no body; an error as {"err", "description"}.
        response = (
            json_response(status, event_body)
            if event_body
            else finish(flask.Response(status=status), "")
        )
        if status == 405:
            response.headers["Allow"] = "POST"
        return response
    if request.path.endswith(UNLINK_PATH_SUFFIX):
        from .unlink import handle_unlink

        status, body = handle_unlink(request, get_service)
        response = json_response(status, body)
        if status == 405:
            response.headers["Allow"] = "GET, POST"
        return response
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed("GET, HEAD")
    settings: Settings | None = None  # unknown when the configuration itself is broken
    try:
        service = get_service()
        settings = service.settings
        return _callback(request, service)
    except KakaoTokenError as exc:
        return _problem_response(exc, settings, request)
    except Exception:  # noqa: BLE001 - the outermost edge: a trace must never reach a page
        log_event(logging.ERROR, "unexpected error in kakao_callback", exc_info=True)
        return _problem_response(None, settings, request)


def _callback(request: flask.Request, service: TokenService) -> flask.Response:
    args = request.args
    settings = service.settings
    if "error" in args:
        raise AuthorizationDenied(
            args.get("error", "")[:_MAX_ERROR_LENGTH], args.get("error_description", "")[:200]
        )
    code = args.get("code", "")
    if not code and args.get("login") == "done":
        return _done_page(request, settings)
    if not code:
        return _start_login(service)
    if request.method == "HEAD":
        # Link previewers and prefetchers must not spend the single-use code.
        return finish(flask.Response(status=204), settings.redirect_uri)
    state = args.get("state", "")
    if len(code) > _MAX_CODE_LENGTH or not code.isprintable():
        raise AuthorizationDenied("invalid_request", "malformed code")
    try:
        document, login = service.finish_login_as(code, state, request.cookies)
    except (LoginStateError, KakaoError) as exc:
        # The back button or a replay after a finished login (the state cookie is gone, or
        # Kakao says the code was used): nothing is exchanged or stored; show that login again.
        finished = facts_from_cookies(request.cookies)
        if finished is None or (isinstance(exc, KakaoError) and exc.code != "KOE320"):
            raise
        log_event(logging.INFO, "callback after a finished login", user_id=finished.user_id)
        response = _see_done()
    else:
        # 303 away from the address holding the code: a reload or the history never sends it
        # again, and the success page's facts travel only in this browser's cookie.
        response = _see_done()
        response.set_cookie(
            DONE_COOKIE,
            encode_facts(document.facts(), login, document.access_token, service.now()),
            max_age=DONE_COOKIE_LIFETIME_SECONDS,
            path=_cookie_path(settings.redirect_uri),
            secure=settings.secure_cookies,
            httponly=True,
            samesite="Lax",
        )
    _forget_login(response, state, settings.redirect_uri, settings.secure_cookies)
    return finish(response, settings.redirect_uri)


def _see_done() -> flask.Response:
    # Relative (query only): the browser keeps the address it used, whatever proxy or path
    # prefix is in front of the function; the result is <redirect URI>?login=done.
    return flask.Response(status=303, headers={"Location": "?" + DONE_QUERY})


def _done_page(request: flask.Request, settings: Settings) -> flask.Response:
    from .pages import start_page, success_page

    done = done_login_from_cookies(request.cookies)
    start_url, demo = settings.redirect_uri, settings.demo
    page = (
        success_page(
            done.facts, start_url=start_url, demo=demo, login=done.login, test=bool(done.proof)
        )
        if done
        else start_page(start_url=start_url, demo=demo)
    )
    response = finish(flask.Response(page, status=200, mimetype="text/html"), start_url)
    if done:  # its one form posts the test message to this function (test_message.py)
        response.headers["Content-Security-Policy"] = DONE_PAGE_POLICY
    return response


def _claim(request: flask.Request, get_service: ServiceFactory) -> flask.Response:
    """GET: the claim page; POST (its form): a login that carries the claim, if it is valid."""
    if request.method not in ("GET", "POST"):
        return method_not_allowed("GET, POST")
    settings: Settings | None = None
    try:
        service = get_service()
        settings = service.settings
        if request.method == "GET":
            from .pages import claim_page

            sender = request.args.get("login") == SENDER
            page = flask.Response(
                claim_page(demo=settings.demo, sender=sender), mimetype="text/html"
            )
            page = finish(page, settings.redirect_uri)
            page.headers["Content-Security-Policy"] = CLAIM_PAGE_POLICY  # with its script
            return page
        secret = request.form.get("claim", "").strip()
        if not service.claim_is_valid(secret):
            # No alert: anyone can post junk here, and the alert mail (one an hour) must stay
            # free for logins that matter (a refused Kakao login, a claim made, a dead login).
            log_event(logging.WARNING, "claim link refused (wrong, used or expired)")
            raise ClaimRequired(0, link_given=True, logged_out=False)
        return _start_login(service, claim=secret, status=303)
    except KakaoTokenError as exc:
        return _problem_response(exc, settings, request)
    except Exception:  # noqa: BLE001 - the outermost edge: a trace must never reach a page
        log_event(logging.ERROR, "unexpected error in kakao_callback /claim", exc_info=True)
        return _problem_response(None, settings, request)


def _start_login(service: TokenService, claim: str = "", status: int = 302) -> flask.Response:
    redirect = service.start_login(claim)
    settings = service.settings
    response = flask.Response(status=status, headers={"Location": redirect.url})
    response.set_cookie(
        redirect.start.cookie_name,
        redirect.start.cookie_value,
        max_age=COOKIE_LIFETIME_SECONDS,
        path=_cookie_path(settings.redirect_uri),
        secure=settings.secure_cookies,
        httponly=True,
        samesite="Lax",  # Kakao's redirect back is a top-level GET: Lax sends the cookie
    )
    # A new login begins: the last one's success page is no longer the news.
    response.delete_cookie(
        DONE_COOKIE,
        path=_cookie_path(settings.redirect_uri),
        secure=settings.secure_cookies,
        httponly=True,
        samesite="Lax",
    )
    log_event(logging.INFO, "login started", pkce=settings.pkce)
    return finish(response, settings.redirect_uri)


def _problem_response(
    exc: KakaoTokenError | None, settings: Settings | None, request: flask.Request
) -> flask.Response:
    """The page for a refusal (``exc``), or for a bug (None)."""
    from ..problems import problem_for
    from .pages import problem_page

    problem = problem_for(exc or KakaoTokenError())
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
    return finish(response, start_url)


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
