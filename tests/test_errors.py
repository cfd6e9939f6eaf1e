"""The exception tree's names on the wire: what the token endpoint writes for an error, the
script client reads back into the same class."""

from __future__ import annotations

import pytest

from tests.web.test_token_endpoint import documented_errors
from token_logic.client.answers import endpoint_error
from token_logic.errors import (
    BAD_REQUEST,
    METHOD_NOT_ALLOWED,
    ConfigError,
    DeadlineReached,
    IdentityRejected,
    KakaoError,
    KakaoTokenError,
    KakaoUnavailable,
    LoginRequired,
    NoTokenStored,
    StorageError,
    WriteConflict,
    error_class_for,
)

SERVED = [
    ConfigError("KAKAO_REST_API_KEY is missing"),
    KakaoError(502, "", "KOE101"),
    LoginRequired(401, "invalid_grant", "KOE322"),
    KakaoUnavailable("timeout"),
    NoTokenStored("nothing stored"),
    DeadlineReached("out of time", 7),
    StorageError("bucket down"),
]


@pytest.mark.parametrize("error", SERVED, ids=lambda e: type(e).__name__)
def test_each_served_error_comes_back_as_its_own_class(error: KakaoTokenError) -> None:
    """The endpoint's ``error`` for an exception is read by the client as that very class."""
    answer = {"error": error.wire_name, "message": "what to do", "code": "KOE101"}

    read = endpoint_error(503, answer, {"Retry-After": "7"})

    assert type(read) is type(error)
    assert str(read) == "what to do"


def test_the_documented_table_names_only_known_errors() -> None:
    """Every ``error`` in docs/en/token-endpoint.md is a class's name or one of the endpoint's
    own refusals: a renamed class would leave the table (and the client) behind."""
    names = {error for _status, error in documented_errors()}
    known = {type(e).wire_name for e in SERVED} | {
        BAD_REQUEST,
        METHOD_NOT_ALLOWED,
        KakaoTokenError.wire_name,
    }

    assert names == known


def test_the_korean_table_has_the_same_rows() -> None:
    """docs/ko/token-endpoint.md documents exactly the (status, error) rows of the English
    page: a row added to one and not the other fails here."""
    assert documented_errors("ko") == documented_errors("en")


def test_subclasses_speak_as_their_parent_unless_they_name_themselves() -> None:
    """A lost race is a storage failure on the wire; Cloud Run's refusal, the client's own,
    never comes back from a name."""
    assert WriteConflict.wire_name == StorageError.wire_name
    assert error_class_for(ConfigError.wire_name) is ConfigError
    assert error_class_for(IdentityRejected.wire_name) is not IdentityRejected


@pytest.mark.parametrize("name", [BAD_REQUEST, METHOD_NOT_ALLOWED])
def test_refusals_of_the_request_read_as_the_callers_set_up(name: str) -> None:
    """400 and 405 are the caller's request being wrong: ConfigError."""
    assert error_class_for(name) is ConfigError


@pytest.mark.parametrize("name", ["internal", "from_a_newer_function", None, 7])
def test_unknown_names_read_as_the_base_error(name: object) -> None:
    """A bug's "internal", a name only a newer function knows, or no string: the base class."""
    assert error_class_for(name) is KakaoTokenError
