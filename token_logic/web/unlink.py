"""Kakao's unlink webhook (연결 해제 웹훅): a user disconnected the app outside it.

Kakao calls ``<callback URL>/unlink`` (GET or POST, registered in the console) with
``Authorization: KakaoAK {primary admin key}`` and ``app_id``, ``user_id``, ``referrer_type``
(and ``group_user_token`` for group apps) in the query or a form body. That user's tokens are
already dead at Kakao, so what we store for them goes, older versions of the document included
(a single document keeps only its owner's marker), and a person is told (``alert``).

Kakao looks only at the status, wants it within 3 seconds and pauses the webhook after many
errors (it is not documented to retry). So: 200 whenever the request is Kakao's and was
handled, also for a user we never stored, whose stored login is newer than the event (a late
webhook: Kakao still accepts the stored access token; TokenService.end_login), or whose login
had ended already (a logout, or the account status webhook first: no write, no alert); 401/403/400
for requests that are not Kakao's or not for this app; 503 when storage failed (the tokens are
dead at Kakao anyway: the next refresh gets KOE322 and marks the login dead, which alerts).
Bodies are small JSON, never a trace or the key. The account status change webhook
(account_status.py) carries the same event signed, without the admin key: it is recommended.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import flask

from ..budget import Deadline
from ..checks import is_decimal
from ..errors import KakaoTokenError
from ..log import ALERT_LOGIN_DEAD, log_event
from ..service.token_service import ServiceFactory, TokenService

_MAX_PARAMETER_LENGTH = 64


def handle_unlink(
    request: flask.Request, get_service: ServiceFactory
) -> tuple[int, dict[str, Any]]:
    """Check that the call is Kakao's, for this app, then forget the user: (status, body)."""
    if request.method not in ("GET", "POST"):
        return 405, {"status": "error", "message": "use GET or POST"}
    try:
        service = get_service()
        return _unlink(request, service, service.webhook_deadline())
    except KakaoTokenError as exc:
        log_event(
            logging.ERROR,
            "unlink webhook failed: the stored tokens of this user were not removed",
            error=type(exc).__name__,
            problem=str(exc),
        )
        return 503, {"status": "error", "message": "could not delete the tokens; try again"}
    except Exception:  # noqa: BLE001 - the outermost edge: a trace must never reach a body
        log_event(logging.ERROR, "unexpected error in the unlink webhook", exc_info=True)
        return 500, {"status": "error", "message": "unexpected error; see logs"}


def _unlink(
    request: flask.Request, service: TokenService, deadline: Deadline
) -> tuple[int, dict[str, Any]]:
    settings = service.settings
    if not settings.admin_key:
        log_event(logging.WARNING, "unlink webhook called, but KAKAO_ADMIN_KEY is not set")
        return 404, {
            "status": "disabled",
            "message": "the unlink webhook is off: set KAKAO_ADMIN_KEY; nothing was changed",
        }
    if not _is_kakao(request.headers.get("Authorization", ""), settings.admin_key):
        log_event(logging.WARNING, "unlink webhook refused: wrong or missing admin key")
        return 401, {"status": "refused", "message": "wrong or missing KakaoAK admin key"}
    params = _parameters(request)
    app_id = params.get("app_id", "")
    if settings.app_id and not hmac.compare_digest(app_id.encode(), settings.app_id.encode()):
        # The admin key is this app's, so another app_id means KAKAO_APP_ID is wrong: a 4xx
        # shows up in Kakao's console (and pauses the webhook) instead of a 200 that would
        # silently keep every unlinked user's dead tokens.
        log_event(
            logging.ERROR,
            "unlink webhook refused: app_id is not KAKAO_APP_ID; check the setting",
            app_id=app_id,
        )
        return 403, {"status": "refused", "message": "app_id is not this app's KAKAO_APP_ID"}
    user_id = params.get("user_id", "")
    if not is_decimal(user_id):
        log_event(logging.WARNING, "unlink webhook refused: user_id is not a Kakao user id")
        return 400, {"status": "refused", "message": "user_id must be a Kakao user id"}
    referrer_type = params.get("referrer_type", "")
    ended = service.end_login(int(user_id), deadline)
    if ended.kept:
        log_event(
            logging.INFO,
            "unlink webhook: the stored login is newer than the event (Kakao still accepts its "
            "token); kept",
            user_id=int(user_id),
            referrer_type=referrer_type,
        )
        return 200, {"status": "ok", "deleted": False}
    if ended.already_ended:
        # Our own logout, or the account status webhook, got there first: no second alert.
        log_event(
            logging.INFO,
            "unlink webhook: the stored login had ended already (no tokens stored); left as it is",
            user_id=int(user_id),
            referrer_type=referrer_type,
        )
        return 200, {"status": "ok", "deleted": False}
    if ended.document is None:
        log_event(
            logging.INFO,
            "unlink webhook: nothing stored for this user",
            user_id=int(user_id),
            referrer_type=referrer_type,
        )
        return 200, {"status": "ok", "deleted": False}
    log_event(
        logging.ERROR,
        "Kakao unlinked this user: their tokens are dead and were deleted; "
        "they must log in again to be served",
        alert=ALERT_LOGIN_DEAD,
        user_id=int(user_id),
        referrer_type=referrer_type,
        document=ended.document,
        login_url=settings.redirect_uri,
        kakao_check=ended.kakao_says or "not asked",
    )
    return 200, {"status": "ok", "deleted": True}


def _is_kakao(authorization: str, admin_key: str) -> bool:
    """``KakaoAK {admin key}``, compared in constant time (no early exit on a prefix)."""
    expected = f"KakaoAK {admin_key}".encode()
    return hmac.compare_digest(authorization.encode("utf-8", "replace"), expected)


def _parameters(request: flask.Request) -> dict[str, str]:
    """The webhook's parameters from the query, or a form body (POST); short and printable."""
    found: dict[str, str] = {}
    for name in ("app_id", "user_id", "referrer_type"):  # group_user_token: unused
        value = request.form.get(name) or request.args.get(name) or ""
        if len(value) <= _MAX_PARAMETER_LENGTH and value.isprintable():
            found[name] = value
    return found
