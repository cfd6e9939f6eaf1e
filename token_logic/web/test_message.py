"""``POST <callback>/test-message``: the success page's "send a test message" button.

The callback is public, so the press must come from the person who just finished a login, in
that browser, on our own page:
- same origin: the browser's ``Sec-Fetch-Site`` says ``same-origin``, or (older browsers) its
  ``Origin`` is the callback's. A page elsewhere cannot make the press (nor can a script
  without a browser's headers: it would need the cookie below anyway);
- the done cookie (done_cookie.py), HttpOnly and only ever given to the browser that finished
  the login, names that login and proves its access token: the stored login's token must still
  be that one;
- at most one press a minute per instance: a message costs Kakao quota (20 a day per pair).
Every refusal is a page saying what to do; nothing is sent, and no token is ever shown.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import flask

from ..config import Settings
from ..errors import KakaoTokenError
from ..log import log_event
from ..logins import SENDER
from ..service.token_service import ServiceFactory, TokenService
from ..storage.protocol import stored_document
from .done_cookie import (
    DONE_COOKIE_LIFETIME_SECONDS,
    DoneLogin,
    done_login_from_cookies,
    token_proof,
)
from .responses import finish, method_not_allowed

PRESS_INTERVAL_SECONDS = 60


class PressLimit:
    """One press per interval in this instance (monotonic clock: a wall-clock jump changes
    nothing)."""

    def __init__(
        self,
        interval: float = PRESS_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def take(self) -> int:
        """0 when this press may go; else the seconds to wait."""
        now = self._clock()
        with self._lock:
            if self._last is not None and now - self._last < self._interval:
                return int(self._interval - (now - self._last)) + 1
            self._last = now
            return 0


_LIMIT = PressLimit()


def handle_test_message(
    request: flask.Request, get_service: ServiceFactory, limit: PressLimit | None = None
) -> flask.Response:
    """Check the press (see the module docstring), send, and show what Kakao did; every
    failure a page (a bug: a clean 500 page, its stack in the log only)."""
    from ..problems import problem_for
    from .pages import problem_page

    if request.method != "POST":
        return method_not_allowed("POST")
    settings: Settings | None = None
    try:
        service = get_service()
        settings = service.settings
        return _press(request, service, limit or _LIMIT)
    except KakaoTokenError as exc:
        problem = problem_for(exc)
        log_event(logging.WARNING, "test message failed", error=type(exc).__name__)
    except Exception:  # noqa: BLE001 - the outermost edge: a trace must never reach a page
        log_event(logging.ERROR, "unexpected error in the test message", exc_info=True)
        problem = problem_for(KakaoTokenError())
    start_url = settings.redirect_uri if settings else ""
    html = problem_page(problem, start_url=start_url, demo=bool(settings and settings.demo))
    return finish(flask.Response(html, status=problem.status, mimetype="text/html"), start_url)


def _press(request: flask.Request, service: TokenService, limit: PressLimit) -> flask.Response:
    from ..service.test_message import send_test_message
    from .pages import test_message_page, test_refused_page

    settings = service.settings
    start_url, demo = settings.redirect_uri, settings.demo

    def page(html: str, status: int) -> flask.Response:
        return finish(flask.Response(html, status=status, mimetype="text/html"), start_url)

    if not _same_origin(request, start_url):
        log_event(logging.WARNING, "test message refused: not from our page")
        return page(test_refused_page("origin", start_url=start_url, demo=demo), 403)
    done = done_login_from_cookies(request.cookies)
    # One login per user: the press is that user's, and sends as a memo with their token.
    user_id = done.facts.user_id if done and settings.per_user_documents else None
    if done is None or not _proves(service, done, user_id):
        log_event(logging.WARNING, "test message refused: no finished login in this browser")
        return page(test_refused_page("login", start_url=start_url, demo=demo), 403)
    wait = limit.take()
    if wait:
        response = page(test_refused_page("wait", start_url=start_url, demo=demo), 429)
        response.headers["Retry-After"] = str(wait)
        return response
    result = send_test_message(service, user_id)
    log_event(
        logging.INFO,
        "test message sent" if result.ok else "test message not delivered",
        route=result.route,
        error_code=result.failures[0].code if result.failures else "",
        user_id=result.receiver_user_id,
    )
    html = test_message_page(result, start_url=start_url, demo=demo)
    return page(html, 200 if result.ok else 502)


def _same_origin(request: flask.Request, redirect_uri: str) -> bool:
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("Origin", "")
    parts = urlsplit(redirect_uri)
    return bool(origin) and origin == f"{parts.scheme}://{parts.netloc}"


def _proves(service: TokenService, done: DoneLogin, user_id: int | None) -> bool:
    """Whether the cookie's proof is the stored login's access token's, made within the done
    cookie's lifetime (done_cookie.token_proof): a copied cookie value stops working then,
    whatever a client does with the cookie's own expiry."""
    if not done.proof or not 0 <= service.now() - done.issued_at <= DONE_COOKIE_LIFETIME_SECONDS:
        return False
    if done.login == SENDER:
        if not service.settings.sender:
            return False
        name = service.settings.sender_object
    else:
        name = service.document_name(user_id)
    document = stored_document(service.store, name, service.deadline())
    if document is None or not document.fields.get("access_token"):
        return False
    expected = token_proof(document.access_token, done.issued_at)
    return hmac.compare_digest(expected, done.proof)
