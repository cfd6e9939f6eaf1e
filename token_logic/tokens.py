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

from .errors import KakaoUnavailable, StorageError

# Kakao rotates the refresh token only when less than one month is left on it.
ROTATION_WINDOW_SECONDS = 30 * 24 * 3600
# If Kakao's "one month" turns out shorter than ours, a rotation-driven refresh returns no new
# refresh token; wait this long before trying again instead of refreshing on every call.
ROTATION_RETRY_SECONDS = 3600


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
    def lease(self) -> tuple[str, int] | None:
        """(owner, until) of a refresh in progress, or None."""
        lease = self.fields.get("refresh_lease")
        if not isinstance(lease, dict):
            return None
        return str(lease["owner"]), int(lease["until"])

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
        return self.expires_at - now <= margin_seconds or rotation_due


def from_token_response(
    response: Mapping[str, Any], now: int, user_id: int | None
) -> TokenDocument:
    """Build the document from a code-exchange response, received at ``now``."""
    expires_in = _seconds(response, "expires_in")
    refresh_expires_in = _seconds(response, "refresh_token_expires_in")
    for name in ("access_token", "refresh_token"):
        if not isinstance(response.get(name), str) or not response[name]:
            raise KakaoUnavailable("bad_response", f"token response without {name}")
    return TokenDocument(
        {
            **response,
            "expires_at": now + expires_in,
            "refresh_token_expires_at": now + refresh_expires_in,
            "user_id": user_id,
            "updated_at": now,
        }
    )


def apply_refresh_response(
    document: TokenDocument, response: Mapping[str, Any], now: int
) -> TokenDocument:
    """Apply a refresh response: what Kakao leaves out (refresh token, scope) is kept."""
    expires_in = _seconds(response, "expires_in")
    if not isinstance(response.get("access_token"), str) or not response["access_token"]:
        raise KakaoUnavailable("bad_response", "refresh response without access_token")
    changes: dict[str, Any] = {
        **{key: value for key, value in response.items() if value not in (None, "")},
        "expires_at": now + expires_in,
        "updated_at": now,
        "login_error": None,
        "refresh_lease": None,
    }
    if "refresh_token" in changes:
        # Rotation: the old refresh token is already dead at Kakao; this one must be stored.
        changes["refresh_token_expires_at"] = now + _seconds(response, "refresh_token_expires_in")
    return document.with_fields(**changes)


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


def public_view(document: TokenDocument, now: int) -> dict[str, Any]:
    """Non-secret facts about a document, for pages, summaries and `status`."""
    return {
        "user_id": document.user_id,
        "scope": document.scope,
        "expires_at": document.expires_at,
        "expires_in_seconds": document.expires_at - now,
        "refresh_token_expires_at": document.refresh_token_expires_at,
        "refresh_token_days_left": round((document.refresh_token_expires_at - now) / 86400, 1),
        "updated_at": document.updated_at,
        "login_error": document.login_error,
    }


def _seconds(response: Mapping[str, Any], name: str) -> int:
    value = response.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise KakaoUnavailable("bad_response", f"token response without a valid {name}")
    return value
