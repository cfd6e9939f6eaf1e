"""Kakao's account status change webhook (계정 상태 변경 웹훅): signed events about a user.

Kakao POSTs to ``<callback URL>/account-status`` (registered in the console) a Security Event
Token (SET, RFC 8417) as the body, ``Content-Type: application/secevent+jwt``, in the format of
the OpenID Shared Signals Framework (OAuth, RISC, CAEP event types, and Kakao's own). It needs
no admin key: the SET is signed, and checked here before anything happens:

- RS256 with a key from Kakao's JWKS (kakao/jwks.py); never ``none``, never HS*;
- ``iss`` is the auth base URL (https://kauth.kakao.com), ``aud`` this app's REST API key or,
  when KAKAO_APP_ID is set, that app ID (both name this app, and Kakao's pages, only partly
  readable here, do not settle which one it sends); an ``app_id`` claim, where one comes, must
  be KAKAO_APP_ID;
- ``iat`` is at most MAX_SET_AGE_SECONDS old and at most FUTURE_SKEW_SECONDS ahead;
- ``jti`` is an identifier, and the event names a Kakao user when it would end a login.
What the event then does, and that each jti is acted on once across instances, is the use case's
(service/account_events.py). Answers (RFC 8935): 202 with no body for a verified SET; 400 with
``{"err", "description"}`` for one that is not, or that was handled before, and nothing
changes; 503 when Kakao (its keys, whether a token lives) or the store cannot answer in time (the
SET may be good, and a 400 would tell Kakao it is not). All within the webhook's 2.5 s
(budget.py), inside Kakao's 3 s, keeping back what the storage work after Kakao's answers needs.
Neither the SET nor any token reaches a log line.

PyJWT is imported here only on first use: cold starts of the other paths never load it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import flask

from ..budget import (
    Deadline,
)
from ..checks import is_decimal
from ..errors import KakaoTokenError
from ..kakao.events import ENDING_EVENTS
from ..kakao.jwks import SigningKeys
from ..log import log_event
from ..service.account_events import AccountEvent, handle_event
from ..service.token_service import ServiceFactory, TokenService

MAX_SET_BYTES = 16 * 1024
# Kakao sends at once and answers within 3 s count; 10 minutes allow for a slow delivery and
# clocks a little apart, and bound how long each jti must be remembered.
MAX_SET_AGE_SECONDS = 600
FUTURE_SKEW_SECONDS = 60
_MAX_JTI_LENGTH = 256

_keys_by_url: dict[str, SigningKeys] = {}
_keys_lock = threading.Lock()


class SetRejected(KakaoTokenError):
    """The SET is not a valid one for this app: a 400 with an RFC 8935 error code."""

    def __init__(self, err: str, description: str) -> None:
        super().__init__(description)
        self.err = err
        self.description = description


def handle_account_status(
    request: flask.Request, get_service: ServiceFactory
) -> tuple[int, dict[str, str] | None]:
    """Verify the SET, then hand its event to the use case (service/account_events.py), which
    refuses one handled before: (status, RFC 8935 body or None)."""
    if request.method != "POST":
        return 405, {"err": "invalid_request", "description": "use POST"}
    try:
        service = get_service()
        deadline = service.webhook_deadline()
        event = verify_set(_body(request), service, deadline)
        if not handle_event(service, event, deadline):
            raise SetRejected("invalid_request", "this SET was received before (jti replayed)")
        return 202, None
    except SetRejected as exc:
        log_event(
            logging.WARNING, "account status event refused", err=exc.err, problem=exc.description
        )
        return 400, {"err": exc.err, "description": exc.description}
    except KakaoTokenError as exc:
        log_event(
            logging.ERROR,
            "account status event not handled (Kakao or the store did not answer in time); "
            "nothing was changed, and Kakao will send it again",
            error=type(exc).__name__,
            problem=str(exc),
        )
        return 503, {"err": "temporarily_unavailable", "description": "try again later"}
    except Exception:  # noqa: BLE001 - the outermost edge: a trace must never reach a body
        log_event(logging.ERROR, "unexpected error in the account status webhook", exc_info=True)
        return 500, {"err": "server_error", "description": "unexpected error; see logs"}


def verify_set(token: bytes, service: TokenService, deadline: Deadline) -> AccountEvent:
    """The event a SET carries, once its signature and claims are checked; else SetRejected."""
    import jwt

    settings = service.settings
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise SetRejected("invalid_request", "the body is not a signed JWT") from exc
    if header.get("alg") != "RS256":
        # Kakao signs with RS256; "none" or HS* (keyed with the public key) would let anyone.
        raise SetRejected("invalid_key", "only SETs signed with RS256 are accepted")
    typ = header.get("typ")
    if typ is not None and str(typ).lower().removeprefix("application/") != "secevent+jwt":
        # Kakao signs ID tokens (typ JWT) with the same keys for the same audience.
        raise SetRejected("invalid_request", "the JWT is not a SET (typ secevent+jwt)")
    kid = header.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= 200:
        raise SetRejected("invalid_key", "the SET names no key (kid)")
    key = _signing_keys(service).key_for(kid, deadline.webhook_kakao_seconds)
    if key is None:  # Kakao's keys, fetched just now, lack it
        raise SetRejected("invalid_key", "no key of Kakao's has this kid")
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=_audiences(settings.rest_api_key, settings.app_id),
            issuer=settings.auth_base_url,
            # iat is checked below against the service's clock, not PyJWT's.
            options={"require": ["iss", "aud", "iat", "jti", "events"], "verify_iat": False},
        )
    except jwt.InvalidSignatureError as exc:
        raise SetRejected("invalid_key", "the signature does not verify") from exc
    except jwt.InvalidIssuerError as exc:
        raise SetRejected("invalid_issuer", f"iss is not {settings.auth_base_url}") from exc
    except jwt.InvalidAudienceError as exc:
        raise SetRejected("invalid_audience", "aud names another app") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise SetRejected("invalid_request", f"the {exc.claim} claim is missing") from exc
    except jwt.PyJWTError as exc:
        raise SetRejected("invalid_request", "the SET is malformed") from exc
    return _event(claims, service, settings.auth_base_url)


def _event(claims: Mapping[str, Any], service: TokenService, issuer: str) -> AccountEvent:
    iat = claims["iat"]
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise SetRejected("invalid_request", "iat is not a time")
    now = service.now()
    if now - iat > MAX_SET_AGE_SECONDS:
        raise SetRejected("invalid_request", "the SET is too old (iat over 10 minutes ago)")
    if iat - now > FUTURE_SKEW_SECONDS:
        raise SetRejected("invalid_request", "iat is in the future")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_JTI_LENGTH:
        raise SetRejected("invalid_request", "jti is not an identifier")
    app_id = claims.get("app_id")
    if app_id is not None and service.settings.app_id and str(app_id) != service.settings.app_id:
        raise SetRejected("invalid_audience", "app_id is not this app's KAKAO_APP_ID")
    events = claims["events"]
    if not (
        isinstance(events, dict)
        and events
        and all(isinstance(uri, str) and isinstance(body, dict) for uri, body in events.items())
    ):
        raise SetRejected("invalid_request", "events must map event types to objects")
    user_id = _user_id(claims, events, issuer)
    if user_id is None and ENDING_EVENTS.intersection(events):
        raise SetRejected("invalid_request", "the event names no Kakao user")
    reasons = [body.get("reason") for body in events.values()]
    reason = next((r for r in reasons if isinstance(r, str) and r.isprintable()), "")
    return AccountEvent(user_id, tuple(events), reason[:64], float(iat), jti)


def _user_id(claims: Mapping[str, Any], events: Mapping[str, Any], issuer: str) -> int | None:
    """The Kakao user id: ``sub``, and each event's ``subject`` (``iss``+``sub``); they agree."""
    found = set()
    if claims.get("sub") is not None:
        found.add(str(claims["sub"]))
    for body in events.values():
        subject = body.get("subject")
        if not isinstance(subject, dict) or subject.get("sub") is None:
            continue
        if subject.get("iss", issuer) != issuer:
            raise SetRejected("invalid_request", "the subject is another issuer's")
        found.add(str(subject["sub"]))
    if len(found) > 1:
        raise SetRejected("invalid_request", "the SET's subjects disagree")
    value = found.pop() if found else ""
    if not value:
        return None
    if not (is_decimal(value) and len(value) <= 20):
        raise SetRejected("invalid_request", "the subject is not a Kakao user id")
    return int(value)


def _body(request: flask.Request) -> bytes:
    # The Content-Type is not checked: the signature proves the body, whatever a proxy did to
    # the header's parameters.
    if (request.content_length or 0) > MAX_SET_BYTES:
        raise SetRejected("invalid_request", "the body is too large for a SET")
    data = request.stream.read(MAX_SET_BYTES + 1).strip()  # never more, whatever was sent
    if not data or len(data) > MAX_SET_BYTES:
        raise SetRejected("invalid_request", "the body must be one SET (application/secevent+jwt)")
    return data


def _signing_keys(service: TokenService) -> SigningKeys:
    """This instance's cache of Kakao's keys (one per auth base URL)."""
    url = service.settings.auth_base_url
    with _keys_lock:
        keys = _keys_by_url.get(url)
        if keys is None:
            keys = _keys_by_url[url] = SigningKeys(service.kakao.signing_keys)
        return keys


def _audiences(rest_api_key: str, app_id: str) -> list[str]:
    """The ``aud`` values that name this app: its REST API key, and its app ID when known."""
    return [rest_api_key, app_id] if app_id else [rest_api_key]
