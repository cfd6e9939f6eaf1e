"""Every error maps to one exact HTTP status and a message naming the fix: the table."""

from __future__ import annotations

import pytest

from token_logic.budget import LONGEST_WAIT_SECONDS
from token_logic.errors import (
    DeadlineReached,
    KakaoError,
    KakaoTokenError,
    KakaoUnavailable,
    LoginRequired,
    NotTheOwner,
    UserNotAllowed,
)
from token_logic.problems import problem_for

# Every KOE code of ../shared/KAKAO_API.md §3, as Kakao sends it (status, error), and what we
# answer: the fix lies with the person (4xx), the operator's settings (502) or Kakao (503).
KOE_TABLE = [
    ("KOE320", 400, "invalid_grant", 400, "Start again"),
    ("KOE303", 400, "invalid_grant", 502, "KAKAO_REDIRECT_URI"),
    ("KOE010", 401, "invalid_client", 502, "KAKAO_CLIENT_SECRET"),
    ("KOE101", 401, "invalid_client", 502, "KAKAO_REST_API_KEY"),
    ("KOE319", 400, "invalid_grant", 502, "operator"),
    ("KOE322", 400, "invalid_grant", 502, "operator"),  # a dead refresh token is LoginRequired
    ("KOE237", 400, "invalid_request", 429, "few minutes"),
    ("KOE003", 500, "server_error", 503, "Try again"),
]


@pytest.mark.parametrize(("code", "kakao_status", "error", "status", "words"), KOE_TABLE)
def test_each_koe_code_has_its_exact_status(
    code: str, kakao_status: int, error: str, status: int, words: str
) -> None:
    """One row per KOE code: the HTTP status we answer and words that say what to do."""
    problem = problem_for(KakaoError(kakao_status, error, code))

    assert problem.status == status
    assert problem.code == code
    assert words.lower() in problem.one_line().lower()


def test_the_rate_limit_carries_retry_after() -> None:
    """KOE237 says when to come back: Kakao's Retry-After, or ten minutes."""
    assert problem_for(KakaoError(400, "invalid_request", "KOE237", 42)).retry_after == 42
    assert problem_for(KakaoError(400, "invalid_request", "KOE237")).retry_after == 600


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (LoginRequired(400, "invalid_grant", "KOE322"), 401, None),
        (DeadlineReached("out of time", retry_after=7), 503, 7),
        (KakaoUnavailable("timeout"), 504, None),
        (KakaoUnavailable("unreachable"), 503, None),
        (KakaoUnavailable("bad_response"), 502, None),
        (UserNotAllowed(42), 403, None),
        (NotTheOwner(42, owner_known=True), 403, None),
    ],
)
def test_other_errors_have_their_exact_status(
    error: Exception, status: int, retry_after: int | None
) -> None:
    """The dead login, the deadline, Kakao down and refused users: one status each."""
    problem = problem_for(error)  # type: ignore[arg-type]

    assert (problem.status, problem.retry_after) == (status, retry_after)


@pytest.mark.parametrize(
    "error",
    [
        DeadlineReached("another refresh of this login is still under way", 2305942912),
        KakaoError(400, "invalid_request", "KOE237", 10.0**9),
        KakaoUnavailable("server_error", retry_after=86400.0),
        KakaoError(503, "", "-1", 86400.0),
    ],
    ids=lambda e: type(e).__name__,
)
def test_no_retry_after_is_longer_than_an_hour(error: KakaoTokenError) -> None:
    """Whatever a stored document or Kakao says, a caller is never told to wait past the
    longest pause a login takes (an hour)."""
    assert problem_for(error).retry_after == LONGEST_WAIT_SECONDS
