"""The token document: absolute expiries on receipt, merge rules on refresh, safe JSON."""

from __future__ import annotations

import json

import pytest

from token_logic.errors import KakaoUnavailable, StorageError
from token_logic.tokens import (
    ROTATION_WINDOW_SECONDS,
    apply_refresh_response,
    from_json,
    from_token_response,
    to_json,
)

NOW = 1_800_000_000
EXCHANGE = {
    "token_type": "bearer",
    "access_token": "AT-1",
    "expires_in": 21599,
    "refresh_token": "RT-1",
    "refresh_token_expires_in": 5183999,
    "scope": "talk_message profile_nickname",
}


def test_expiries_are_computed_from_the_response_numbers() -> None:
    """expires_at and refresh_token_expires_at are now + the lifetimes Kakao sent."""
    document = from_token_response({**EXCHANGE, "expires_in": 100}, NOW, user_id=7)

    assert document.expires_at == NOW + 100
    assert document.refresh_token_expires_at == NOW + 5183999
    assert document.user_id == 7
    assert document.updated_at == NOW


def test_every_kakao_field_is_kept() -> None:
    """Fields the seed's consumers read (and unknown future ones) stay in the document."""
    document = from_token_response({**EXCHANGE, "id_token": "x.y.z", "new_field": 1}, NOW, 7)

    stored = json.loads(to_json(document))
    for name, value in {**EXCHANGE, "id_token": "x.y.z", "new_field": 1}.items():
        assert stored[name] == value


def test_refresh_without_rotation_keeps_refresh_token_and_scope() -> None:
    """A refresh response without refresh_token keeps the stored one, its expiry and scope."""
    document = from_token_response(EXCHANGE, NOW, 7)

    merged = apply_refresh_response(
        document, {"token_type": "bearer", "access_token": "AT-2", "expires_in": 21599}, NOW + 50
    )

    assert merged.access_token == "AT-2"
    assert merged.refresh_token == "RT-1"
    assert merged.refresh_token_expires_at == document.refresh_token_expires_at
    assert merged.scope == EXCHANGE["scope"]
    assert merged.expires_at == NOW + 50 + 21599
    assert merged.updated_at == NOW + 50


def test_refresh_with_rotation_stores_the_new_refresh_token() -> None:
    """A rotated refresh token and its new expiry replace the old ones."""
    document = from_token_response(EXCHANGE, NOW, 7)
    response = {
        "access_token": "AT-2",
        "expires_in": 21599,
        "refresh_token": "RT-2",
        "refresh_token_expires_in": 5183999,
    }

    merged = apply_refresh_response(document, response, NOW + 10)

    assert merged.refresh_token == "RT-2"
    assert merged.refresh_token_expires_at == NOW + 10 + 5183999


def test_refresh_clears_a_lease_and_a_dead_login_marker() -> None:
    """A successful refresh removes the bookkeeping of earlier refresh attempts."""
    document = from_token_response(EXCHANGE, NOW, 7).with_fields(
        refresh_lease={"owner": "o", "until": NOW + 5}, login_error={"error_code": "KOE322"}
    )

    merged = apply_refresh_response(document, {"access_token": "AT-2", "expires_in": 10}, NOW)

    assert merged.lease is None and merged.login_error is None


@pytest.mark.parametrize(
    "broken",
    [
        {"expires_in": "soon"},
        {"access_token": ""},
        {"refresh_token": None},
        {"refresh_token_expires_in": 0},
    ],
)
def test_malformed_responses_are_rejected(broken: dict[str, object]) -> None:
    """A token response missing a field or with a bad lifetime is a bad_response, not a crash."""
    with pytest.raises(KakaoUnavailable):
        from_token_response({**EXCHANGE, **broken}, NOW, 7)


def test_needs_refresh_on_margin_and_in_the_rotation_window() -> None:
    """Due when the access token is within the margin, or the refresh token in its last month."""
    document = from_token_response(EXCHANGE, NOW, 7)

    assert not document.needs_refresh(NOW, 3600)
    assert document.needs_refresh(NOW + 21599 - 3600, 3600)
    rotation_time = document.refresh_token_expires_at - ROTATION_WINDOW_SECONDS
    fresh = document.with_fields(expires_at=rotation_time + 21599, updated_at=rotation_time - 4000)
    assert fresh.needs_refresh(rotation_time, 3600)
    just_refreshed = fresh.with_fields(updated_at=rotation_time - 10)
    assert not just_refreshed.needs_refresh(rotation_time, 3600)


def test_repr_shows_no_token() -> None:
    """repr(document) is safe to log."""
    text = repr(from_token_response(EXCHANGE, NOW, 7))

    assert "AT-1" not in text and "RT-1" not in text and "user_id=7" in text


def test_json_round_trip_and_corruption() -> None:
    """A stored document reads back equal; a corrupt one is a StorageError."""
    document = from_token_response(EXCHANGE, NOW, 7)

    assert from_json(to_json(document)).fields == document.fields
    for corrupt in (b"{not json", b"[]", b'{"access_token": "x"}', b"\xff\xfe"):
        with pytest.raises(StorageError):
            from_json(corrupt)
