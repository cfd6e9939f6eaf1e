"""Login state and PKCE: random, bound to the browser, compared in constant time."""

from __future__ import annotations

import base64
import hashlib

import pytest

from token_logic.errors import LoginStateError
from token_logic.kakao.id_token import id_token_subject
from token_logic.kakao.state import start_login, verify_state


def test_state_is_long_random_and_unique() -> None:
    """Each login gets a fresh state of at least 128 bits."""
    states = {start_login(pkce=True).state for _ in range(50)}

    assert len(states) == 50
    assert all(len(state) >= 22 for state in states)


def test_challenge_is_base64url_sha256_of_the_verifier() -> None:
    """The S256 challenge matches the verifier that verify_state hands back."""
    start = start_login(pkce=True)

    verifier = verify_state(start.state, {start.cookie_name: start.cookie_value}).verifier

    digest = hashlib.sha256(verifier.encode()).digest()
    assert start.code_challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert 43 <= len(verifier) <= 128


def test_without_pkce_there_is_no_verifier() -> None:
    """PKCE off: no challenge, empty verifier."""
    start = start_login(pkce=False)

    assert start.code_challenge == ""
    assert verify_state(start.state, {start.cookie_name: start.cookie_value}).verifier == ""


@pytest.mark.parametrize("cookies", [{}, {"other": "x"}])
def test_missing_cookie_is_refused(cookies: dict[str, str]) -> None:
    """No cookie for this state: refused."""
    with pytest.raises(LoginStateError):
        verify_state(start_login(pkce=True).state, cookies)


def test_another_logins_cookie_is_refused() -> None:
    """The cookie of a different login does not validate this state."""
    mine, theirs = start_login(pkce=True), start_login(pkce=True)

    with pytest.raises(LoginStateError):
        verify_state(
            mine.state,
            {theirs.cookie_name: theirs.cookie_value, mine.cookie_name: theirs.cookie_value},
        )


def test_repr_hides_the_verifier() -> None:
    """The cookie value (state + verifier) is kept out of the repr."""
    start = start_login(pkce=True)

    assert start.cookie_value not in repr(start)


def _jwt(claims: dict[str, object]) -> str:
    import json

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.sig"


GOOD = {"iss": "https://kauth.kakao.com", "aud": "key", "sub": "42", "exp": 2000, "nonce": "n"}


def test_id_token_subject_after_checks() -> None:
    """A well-formed ID token for our app yields its sub as an int."""
    subject = id_token_subject(
        _jwt(GOOD), issuer="https://kauth.kakao.com", audience="key", nonce="n", now=1000
    )

    assert subject == 42


@pytest.mark.parametrize(
    "bad", [{"iss": "https://evil"}, {"aud": "other"}, {"exp": 10}, {"nonce": "x"}, {"sub": "a"}]
)
def test_id_token_with_a_failed_claim_is_refused(bad: dict[str, object]) -> None:
    """Wrong issuer, audience, nonce, an expired token or a non-numeric sub are refused."""
    from token_logic.errors import KakaoUnavailable

    with pytest.raises(KakaoUnavailable):
        id_token_subject(
            _jwt({**GOOD, **bad}),
            issuer="https://kauth.kakao.com",
            audience="key",
            nonce="n",
            now=1000,
        )


def test_an_id_token_without_the_nonce_that_was_sent_is_refused() -> None:
    """We sent a nonce: an ID token that carries none is refused, not waved through."""
    from token_logic.errors import KakaoUnavailable

    claims = {key: value for key, value in GOOD.items() if key != "nonce"}

    with pytest.raises(KakaoUnavailable):
        id_token_subject(
            _jwt(claims), issuer="https://kauth.kakao.com", audience="key", nonce="n", now=1000
        )


def test_the_nonce_is_a_cookie_secret_not_derived_from_the_state() -> None:
    """The nonce comes back only from this browser's cookie; the state alone does not give it,
    and two logins never share one."""
    first, second = start_login(pkce=True), start_login(pkce=True)

    secrets = verify_state(first.state, {first.cookie_name: first.cookie_value})

    assert secrets.nonce == first.nonce and len(first.nonce) >= 22
    assert first.nonce != second.nonce
    assert first.state not in first.nonce and first.nonce not in first.state
    assert first.nonce not in repr(first) and first.nonce not in repr(secrets)
