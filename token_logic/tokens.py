"""The token document stored as ``kakao_token.json``.

It keeps every field Kakao returned (so scripts written against the raw response keep working)
and adds absolute times computed on receipt: ``expires_at``, ``refresh_token_expires_at``,
``updated_at`` (Unix seconds), plus ``user_id``. Two optional bookkeeping fields:
``login_error`` (the login is dead: a person must log in again) and ``refresh_lease`` (one
instance is refreshing right now; the others wait for its result instead of calling Kakao).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .checks import is_decimal
from .errors import KakaoUnavailable, StorageError

# Kakao rotates the refresh token only when less than one month is left on it.
ROTATION_WINDOW_SECONDS = 30 * 24 * 3600
# Stand-ins for a lifetime Kakao left out or sent garbled: short enough never to serve an expired
# token (Kakao issues 6 h) and to keep refreshing a refresh token we know too little about (the
# rotation window: it is refreshed at most hourly until Kakao rotates it again).
_ASSUMED_LIFETIMES = {"expires_in": 3600, "refresh_token_expires_in": ROTATION_WINDOW_SECONDS}
# If Kakao's "one month" turns out shorter than ours, a rotation-driven refresh returns no new
# refresh token; wait this long before trying again instead of refreshing on every call.
ROTATION_RETRY_SECONDS = 3600
# A token refreshed this recently and still valid is served as it is, even if it lives less than
# asked (Kakao issued it so): otherwise a caller asking for more life than Kakao gives would
# make every call a refresh and run into KOE237. 150 s keeps even that case, or a Kakao that
# leaves expires_in out (a 1 h lifetime is assumed), under Kakao's 30 refreshes an hour.
MIN_REFRESH_INTERVAL_SECONDS = 150


@dataclass(frozen=True)
class TokenFacts:
    """What may be shown of a stored login, and nothing secret: the one view the success page
    (through its cookie), the token endpoint's answer, the sweep's report and ``status`` share."""

    user_id: int | None
    scope: str
    expires_at: int
    refresh_token_expires_at: int
    token_type: str = "bearer"
    updated_at: int = 0
    login_error: str | None = None

    def public(self, now: int) -> dict[str, Any]:
        """The facts as the sweep's report and ``status`` print them, with what is left."""
        return {
            "user_id": self.user_id,
            "scope": self.scope,
            "expires_at": self.expires_at,
            "expires_in_seconds": self.expires_at - now,
            "refresh_token_expires_at": self.refresh_token_expires_at,
            "refresh_token_days_left": round((self.refresh_token_expires_at - now) / 86400, 1),
            "updated_at": self.updated_at,
            "login_error": self.login_error,
        }


@dataclass(frozen=True)
class TokenDocument:
    """One user's tokens; the repr shows facts, never a token."""

    fields: Mapping[str, Any]

    def __repr__(self) -> str:
        return (
            f"TokenDocument(user_id={self.user_id}, expires_at={self.expires_at}, "
            f"refresh_token_expires_at={self.refresh_token_expires_at})"
        )

    @property
    def access_token(self) -> str:
        return str(self.fields["access_token"])

    @property
    def refresh_token(self) -> str:
        return str(self.fields["refresh_token"])

    @property
    def expires_at(self) -> int:
        return int(self.fields["expires_at"])

    @property
    def refresh_token_expires_at(self) -> int:
        return int(self.fields["refresh_token_expires_at"])

    @property
    def updated_at(self) -> int:
        return int(self.fields.get("updated_at", 0))

    @property
    def user_id(self) -> int | None:
        value = self.fields.get("user_id")
        return int(value) if value is not None else None

    @property
    def scope(self) -> str:
        return str(self.fields.get("scope", ""))

    @property
    def login_error(self) -> str | None:
        """The Kakao error code that killed this login, or None while it is alive."""
        marker = self.fields.get("login_error")
        return str(marker["error_code"]) if isinstance(marker, dict) else None

    @property
    def login_error_at(self) -> int:
        """When the login was marked dead (0 if it is alive, or the marker has no usable time)."""
        marker = self.fields.get("login_error")
        at = marker.get("at") if isinstance(marker, dict) else None
        return at if isinstance(at, int) and not isinstance(at, bool) else 0

    @property
    def lease(self) -> tuple[str, int] | None:
        """(owner, until) of a refresh in progress, or None."""
        lease = self.fields.get("refresh_lease")
        if not isinstance(lease, dict):
            return None
        return str(lease["owner"]), int(lease["until"])

    def facts(self) -> TokenFacts:
        """This login's non-secret facts."""
        return TokenFacts(
            user_id=self.user_id,
            scope=self.scope,
            expires_at=self.expires_at,
            refresh_token_expires_at=self.refresh_token_expires_at,
            token_type=str(self.fields.get("token_type") or "bearer"),
            updated_at=self.updated_at,
            login_error=self.login_error,
        )

    def with_fields(self, **changes: Any) -> TokenDocument:
        """A copy with some fields set; a value of None removes the field."""
        merged = {**self.fields, **changes}
        return TokenDocument({key: value for key, value in merged.items() if value is not None})

    def needs_refresh(self, now: int, margin_seconds: int) -> bool:
        """True when the access token expires within the margin or rotation is due."""
        rotation_due = (
            self.refresh_token_expires_at - now <= ROTATION_WINDOW_SECONDS
            and now - self.updated_at >= ROTATION_RETRY_SECONDS
        )
        just_refreshed = (
            now - self.updated_at < MIN_REFRESH_INTERVAL_SECONDS and self.expires_at > now
        )
        return not just_refreshed and (self.expires_at - now <= margin_seconds or rotation_due)


def from_token_response(
    response: Mapping[str, Any], now: int, user_id: int | None
) -> TokenDocument:
    """Build the document from a code-exchange response, received at ``now``.

    Without an access or a refresh token there is nothing worth storing: KakaoUnavailable.
    A lifetime that is missing or odd is assumed conservatively (see ``unusable_lifetimes``).
    """
    for name in ("access_token", "refresh_token"):
        if not _is_token(response.get(name)):
            raise KakaoUnavailable("bad_response", f"token response without {name}")
    return TokenDocument(
        {
            **response,
            "expires_at": now + _lifetime(response, "expires_in"),
            "refresh_token_expires_at": now + _lifetime(response, "refresh_token_expires_in"),
            "user_id": user_id,
            "updated_at": now,
        }
    )


@dataclass(frozen=True)
class RefreshUpdate:
    """A refresh answer applied to a document.

    ``document`` is what must be stored (it always keeps a new refresh token); ``assumed`` names
    the lifetimes that had to be assumed; ``refused`` says why the answer is unusable (no access
    token), in which case the caller stores ``document`` and then reports the failure.
    """

    document: TokenDocument
    assumed: tuple[str, ...] = ()
    refused: str = ""


def apply_refresh_response(
    document: TokenDocument, response: Mapping[str, Any], now: int
) -> RefreshUpdate:
    """Apply a refresh response: what Kakao leaves out (refresh token, scope) is kept.

    A new refresh token is never dropped, whatever else is wrong with the answer: Kakao has
    already killed the old one, so this is the only copy in the world.
    """
    new_refresh = response.get("refresh_token")
    rotated = _is_token(new_refresh)
    changes: dict[str, Any] = {"updated_at": now, "login_error": None, "refresh_lease": None}
    assumed = []
    if rotated:
        changes["refresh_token"] = new_refresh
        changes["refresh_token_expires_at"] = now + _lifetime(response, "refresh_token_expires_in")
        if _positive_seconds(response.get("refresh_token_expires_in")) is None:
            assumed.append("refresh_token_expires_in")
    if not _is_token(response.get("access_token")):
        if not rotated:
            raise KakaoUnavailable("bad_response", "refresh response without access_token")
        return RefreshUpdate(
            document.with_fields(**changes),
            tuple(assumed),
            "refresh response without access_token (its new refresh token was kept)",
        )
    # Kakao's own fields are kept as sent (scripts read them); the tokens were handled above.
    skipped = {"refresh_token"}
    changes.update(
        {
            key: value
            for key, value in response.items()
            if key not in skipped and value not in (None, "")
        }
    )
    changes["expires_at"] = now + _lifetime(response, "expires_in")
    if _positive_seconds(response.get("expires_in")) is None:
        assumed.append("expires_in")
    return RefreshUpdate(document.with_fields(**changes), tuple(assumed))


def unusable_lifetimes(response: Mapping[str, Any]) -> list[str]:
    """The lifetime fields of a token response that are missing or odd (never their values)."""
    return [
        name
        for name in ("expires_in", "refresh_token_expires_in")
        if name in _ASSUMED_LIFETIMES and _positive_seconds(response.get(name)) is None
    ]


# The owner marker's reason when Kakao says the user unlinked the app (the unlink webhook, the
# user-unlinked event).
UNLINKED = "unlinked"


def owner_marker(user_id: int, now: int, reason: str) -> TokenDocument:
    """What stays of a single document whose login ended (``reason``: ``logged_out`` by the
    operator, ``unlinked`` at Kakao, or the account status event that ended it, such as
    ``tokens_revoked``): no token, the owner, and a dead-login marker saying why, so only the
    owner (or a claim link) may log in next."""
    return TokenDocument(
        {
            "access_token": "",
            "refresh_token": "",
            "expires_at": 0,
            "refresh_token_expires_at": 0,
            "updated_at": now,
            "user_id": user_id,
            "login_error": {"error_code": reason, "at": now},
        }
    )


def to_json(document: TokenDocument) -> bytes:
    """Serialize for storage: stable key order, UTF-8."""
    return json.dumps(dict(document.fields), ensure_ascii=False, indent=2, sort_keys=True).encode()


def from_json(data: bytes) -> TokenDocument:
    """Parse a stored document; a corrupt one is a StorageError, not a crash."""
    try:
        fields = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StorageError("the stored token document is not valid JSON") from exc
    required = ("access_token", "refresh_token", "expires_at", "refresh_token_expires_at")
    if not isinstance(fields, dict) or any(name not in fields for name in required):
        raise StorageError("the stored token document is missing required fields")
    return TokenDocument(fields)


def from_json_or_none(data: bytes) -> TokenDocument | None:
    """The document, or None when the bytes are not one (corrupt, or written by another tool)."""
    try:
        return from_json(data)
    except StorageError:
        return None


def _is_token(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _positive_seconds(value: Any) -> int | None:
    """A lifetime as Kakao sends it (an int), or as an odd answer might (a numeric string, a
    float); None when it is missing, negative, zero or not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and is_decimal(value.strip()):
        value = int(value.strip())
    if isinstance(value, float) and value == value and value != float("inf"):
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None


def _lifetime(response: Mapping[str, Any], name: str) -> int:
    """The lifetime in seconds, or a conservative stand-in when Kakao's value is unusable."""
    seconds = _positive_seconds(response.get(name))
    return seconds if seconds is not None else _ASSUMED_LIFETIMES[name]
