"""What a verified account status event does: end the user's login, once per event.

web/account_status.py checks the Security Event Token (signature, issuer, audience, age) and
hands over the ``AccountEvent`` it carries. Here: the events that end a user's tokens
(ENDING_EVENTS) end the stored login at once, as the legacy unlink webhook does
(TokenService.end_login: unless the stored login is newer than the event; for token-revoked,
which names one token, only when Kakao says the stored one is dead), with an alert, and a single
document's owner marker names the event (``tokens_revoked``...); every other event,
``user-linked`` included, is logged only.

Each event is acted on once across instances: a marker object per ``jti`` in the token store
(an instance's memory would let a replay through another instance), written only once the
event was acted on, and created only if absent. A failure before it (Kakao, the store, the
time) leaves no marker, so Kakao's next try of the same SET is acted on, not refused as a
replay; acting twice is harmless (a login ends once; a token-less document is left alone).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from ..budget import Deadline
from ..checks import json_object
from ..errors import KakaoTokenError, WriteConflict
from ..kakao.events import (
    ACCOUNT_DISABLED,
    ACCOUNT_PURGED,
    ENDING_EVENTS,
    TOKEN_REVOKED,
    TOKENS_REVOKED,
    USER_UNLINKED,
)
from ..log import ALERT_LOGIN_DEAD, log_event
from ..tokens import UNLINKED
from .ending import LoginEnded
from .token_service import TokenService

# What a single document's owner marker says after each of Kakao's ENDING_EVENTS, the first
# that applies (one for each: tests/service/test_account_events.py). token-revoked names one
# token: the login ends only when Kakao says the stored one is dead (end_login's one_token), so
# a revoked token that is not ours leaves the login alone.
_MARKER_REASONS = (
    (USER_UNLINKED, UNLINKED),
    (ACCOUNT_PURGED, "account_purged"),
    (ACCOUNT_DISABLED, "account_disabled"),
    (TOKENS_REVOKED, "tokens_revoked"),
    (TOKEN_REVOKED, "token_revoked"),
)

# The jti markers: a dot-folder at the store's root is never a TOKEN_OBJECT (config.py), and the
# sweep never lists it. Each marker is a few bytes; a bucket lifecycle rule may age them out.
EVENTS_FOLDER = ".kakao-token-events"


@dataclass(frozen=True)
class AccountEvent:
    """A verified SET: whose, which events, why (``reason`` of user-unlinked), and its id."""

    user_id: int | None
    events: tuple[str, ...]
    reason: str
    iat: float
    jti: str = field(repr=False)


def handle_event(service: TokenService, event: AccountEvent, deadline: Deadline) -> bool:
    """Act on the event unless its jti was handled before (then False, and nothing changes),
    then remember the jti; the old versions of an ended login go last."""
    marker = _marker_name(event)
    if _was_handled(service, marker, deadline):
        return False
    ended = _act(service, event, deadline)
    _remember(service, event, marker, deadline)
    if ended is not None and ended.document is not None and event.user_id is not None:
        # Last: the clean-up may use whatever time the marker left.
        service.forget_old_versions(ended.document, event.user_id, deadline)
    return True


def _marker_name(event: AccountEvent) -> str:
    return f"{EVENTS_FOLDER}/{hashlib.sha256(event.jti.encode()).hexdigest()}.json"


def _was_handled(service: TokenService, name: str, deadline: Deadline) -> bool:
    """Whether the jti's marker says its event was handled (a marker without ``handled``, as
    older versions wrote before acting, proves nothing: acting again is harmless)."""
    stored = service.store.read(name, deadline)
    if stored is None:
        return False
    record = json_object(stored.data)
    return record is not None and record.get("handled") is True


def _remember(service: TokenService, event: AccountEvent, name: str, deadline: Deadline) -> None:
    """Mark the jti handled, only if no marker is there yet; never undoes the answer: the event
    was acted on, and the marker only spares a replay a second, harmless, turn."""
    handled = {"handled": True, "iat": int(event.iat), "handled_at": service.now()}
    try:
        service.store.write(name, json.dumps(handled).encode(), None, deadline)
    except WriteConflict:
        # Marked already: a delivery of the same SET at the same time, or this very write
        # landing on a first try whose answer was lost, then retried by the client (412).
        return
    except KakaoTokenError as exc:
        log_event(
            logging.WARNING,
            "account status event handled, but its jti could not be remembered: the same SET "
            "sent again within 10 minutes would be handled again",
            user_id=event.user_id,
            error=type(exc).__name__,
        )


def _act(service: TokenService, event: AccountEvent, deadline: Deadline) -> LoginEnded | None:
    names = [uri.rsplit("/", 1)[-1][:64] for uri in event.events]
    facts: dict[str, Any] = {"user_id": event.user_id, "events": names}
    if event.reason:
        facts["reason"] = event.reason
    ending = [uri for uri in event.events if uri in ENDING_EVENTS]
    if event.user_id is None or not ending:
        log_event(logging.INFO, "account status event received; nothing to do", **facts)
        return None
    one_token = set(ending) == {TOKEN_REVOKED}
    marker_says = next(reason for uri, reason in _MARKER_REASONS if uri in ending)
    ended = service.end_login(
        event.user_id,
        deadline,
        reason=marker_says,
        one_token=one_token,
        clean_old_versions=False,  # after the jti's marker (handle_event)
    )
    if ended.kept and ended.kakao_says == "expired":
        log_event(
            logging.INFO,
            "token-revoked names one token, and the stored access token has expired, so Kakao "
            "cannot say whether it was ours; kept (a revoked refresh token ends the login at "
            "its next refresh, with an alert)",
            **facts,
        )
    elif ended.kept and one_token:
        log_event(
            logging.INFO,
            "token-revoked named another token than the stored login's (Kakao still accepts "
            "it, or a newer login landed); kept",
            **facts,
        )
    elif ended.kept:
        log_event(
            logging.INFO,
            "account status event is older than the stored login (Kakao still accepts its "
            "token); kept",
            **facts,
        )
    elif ended.already_ended:
        log_event(
            logging.INFO,
            "account status event: the stored login had ended already (no tokens stored); "
            "left as it is",
            **facts,
        )
    elif ended.document is None:
        log_event(logging.INFO, "account status event: nothing stored for this user", **facts)
    else:
        log_event(
            logging.ERROR,
            "Kakao ended this user's tokens: they were deleted; "
            "they must log in again to be served",
            alert=ALERT_LOGIN_DEAD,
            document=ended.document,
            login_url=service.settings.redirect_uri,
            kakao_check=ended.kakao_says or "not asked",
            **facts,
        )
    return ended
