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
    ).document

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

    merged = apply_refresh_response(document, response, NOW + 10).document

    assert merged.refresh_token == "RT-2"
    assert merged.refresh_token_expires_at == NOW + 10 + 5183999


def test_refresh_clears_a_lease_and_a_dead_login_marker() -> None:
    """A successful refresh removes the bookkeeping of earlier refresh attempts."""
    document = from_token_response(EXCHANGE, NOW, 7).with_fields(
        refresh_lease={"owner": "o", "until": NOW + 5}, login_error={"error_code": "KOE322"}
    )

    merged = apply_refresh_response(
        document, {"access_token": "AT-2", "expires_in": 10}, NOW
    ).document

    assert merged.lease is None and merged.login_error is None


@pytest.mark.parametrize("broken", [{"access_token": ""}, {"refresh_token": None}])
def test_a_login_answer_without_tokens_is_rejected(broken: dict[str, object]) -> None:
    """A code-exchange answer without an access or refresh token is a bad_response."""
    with pytest.raises(KakaoUnavailable):
        from_token_response({**EXCHANGE, **broken}, NOW, 7)


@pytest.mark.parametrize(
    ("odd", "expires_after", "refresh_expires_after"),
    [
        ({"expires_in": "21599"}, 21599, 5183999),  # a numeric string is read as a number
        ({"expires_in": "soon"}, 3600, 5183999),  # garbage: assume one hour
        ({"refresh_token_expires_in": 0}, 21599, ROTATION_WINDOW_SECONDS),
        ({"refresh_token_expires_in": None}, 21599, ROTATION_WINDOW_SECONDS),
    ],
)
def test_a_login_answer_with_odd_lifetimes_is_kept_with_conservative_ones(
    odd: dict[str, object], expires_after: int, refresh_expires_after: int
) -> None:
    """Odd lifetimes in a login answer: stored with a conservative stand-in, never refused."""
    document = from_token_response({**EXCHANGE, **odd}, NOW, 7)

    assert document.expires_at == NOW + expires_after
    assert document.refresh_token_expires_at == NOW + refresh_expires_after


@pytest.mark.parametrize(
    ("response", "assumed"),
    [
        (
            {"access_token": "AT-2", "refresh_token": "RT-2"},
            ("refresh_token_expires_in", "expires_in"),
        ),
        (
            {
                "access_token": "AT-2",
                "expires_in": "21599",
                "refresh_token": "RT-2",
                "refresh_token_expires_in": "5183999",
            },
            (),
        ),
        (
            {
                "access_token": "AT-2",
                "expires_in": -5,
                "refresh_token": "RT-2",
                "refresh_token_expires_in": True,
            },
            ("refresh_token_expires_in", "expires_in"),
        ),
    ],
)
def test_a_rotated_refresh_token_is_kept_whatever_else_is_odd(
    response: dict[str, object], assumed: tuple[str, ...]
) -> None:
    """Missing or garbled lifetimes never drop a new refresh token: it is kept with a
    conservative expiry, and the assumed fields are named (for a warning, never the value)."""
    document = from_token_response(EXCHANGE, NOW, 7)

    update = apply_refresh_response(document, response, NOW + 10)

    assert update.document.refresh_token == "RT-2"
    assert update.document.access_token == "AT-2"
    assert update.assumed == assumed
    assert update.refused == ""
    expected_rt = 5183999 if not assumed else ROTATION_WINDOW_SECONDS
    assert update.document.refresh_token_expires_at == NOW + 10 + expected_rt
    assert update.document.expires_at == NOW + 10 + (21599 if not assumed else 3600)


def test_an_answer_without_access_token_still_keeps_its_new_refresh_token() -> None:
    """No access token is the one reason to refuse an answer, and even then a rotated refresh
    token in it is kept (with the old, still valid access token) and the refusal reported."""
    document = from_token_response(EXCHANGE, NOW, 7)

    update = apply_refresh_response(document, {"refresh_token": "RT-2"}, NOW + 10)

    assert update.refused
    assert update.document.refresh_token == "RT-2"
    assert update.document.access_token == document.access_token
    assert update.document.expires_at == document.expires_at
    with pytest.raises(KakaoUnavailable):
        apply_refresh_response(document, {"expires_in": 21599}, NOW + 10)


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
