"""The Kakao client against the fake Kakao: errors classified, retries only where safe."""

from __future__ import annotations

import pytest

from dev.fake_kakao import FakeKakao
from tests.helpers import REDIRECT_URI, FakeClock, consent, query_of
from token_logic.errors import KakaoError, KakaoUnavailable
from token_logic.kakao.api import KakaoClient
from token_logic.network import new_session


@pytest.fixture
def client(fake_kakao: FakeKakao, clock: FakeClock) -> KakaoClient:
    return KakaoClient(
        new_session(),
        rest_api_key=fake_kakao.state.client_id,
        client_secret=fake_kakao.state.client_secret,
        redirect_uri=REDIRECT_URI,
        auth_base_url=fake_kakao.url,
        api_base_url=fake_kakao.url,
        timeout=(1.0, 1.0),
        sleep=clock.sleep,
    )


def fresh_code(client: KakaoClient) -> str:
    return query_of(consent(client.authorize_url("state-1", scope="talk_message")))["code"]


def test_exchange_then_user_id(client: KakaoClient, fake_kakao: FakeKakao) -> None:
    """A code exchanges for tokens whose owner /v2/user/me reports."""
    tokens = client.exchange_code(fresh_code(client))

    assert client.user_id(tokens["access_token"]) == fake_kakao.state.user_id
    assert tokens["refresh_token"] in fake_kakao.state.valid_refresh_tokens()


def test_a_code_works_once(client: KakaoClient) -> None:
    """The second exchange of the same code is KOE320, as at Kakao."""
    code = fresh_code(client)
    client.exchange_code(code)

    with pytest.raises(KakaoError) as caught:
        client.exchange_code(code)

    assert caught.value.code == "KOE320" and caught.value.error == "invalid_grant"
    assert code not in str(caught.value)  # Kakao echoes the code; we never keep the body


def test_temporary_faults_are_retried_with_backoff(
    client: KakaoClient, fake_kakao: FakeKakao, clock: FakeClock
) -> None:
    """KOE003 and 5xx on refresh are retried (with backoff on the injected clock)."""
    tokens = client.exchange_code(fresh_code(client))
    fake_kakao.state.inject("/oauth/token", "KOE003", "502")
    before = clock.current

    refreshed = client.redeem_refresh_token(tokens["refresh_token"])

    assert refreshed["access_token"]
    assert fake_kakao.state.calls["/oauth/token"] == 4
    assert clock.current - before == pytest.approx(2.0)


def test_invalid_grant_is_never_retried(client: KakaoClient, fake_kakao: FakeKakao) -> None:
    """KOE322 comes back after exactly one call."""
    with pytest.raises(KakaoError) as caught:
        client.redeem_refresh_token("not-a-token")

    assert caught.value.code == "KOE322"
    assert fake_kakao.state.calls["/oauth/token"] == 1


def test_rate_limit_is_not_retried(client: KakaoClient, fake_kakao: FakeKakao) -> None:
    """KOE237 is reported at once: backing off is the caller's job, never a loop."""
    fake_kakao.state.inject("/oauth/token", "KOE237")

    with pytest.raises(KakaoError) as caught:
        client.redeem_refresh_token("whatever")

    assert caught.value.code == "KOE237"
    assert fake_kakao.state.calls["/oauth/token"] == 1


def test_code_exchange_is_not_replayed_after_a_timeout(
    client: KakaoClient, fake_kakao: FakeKakao
) -> None:
    """A timed-out exchange may have spent the code: it is not sent again."""
    code = fresh_code(client)
    fake_kakao.state.inject("/oauth/token", "timeout")

    with pytest.raises(KakaoUnavailable) as caught:
        client.exchange_code(code)

    assert caught.value.reason == "timeout"
    assert fake_kakao.state.calls["/oauth/token"] == 1


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("html", "bad_response"), ("503", "server_error"), ("reset", "unreachable")],
)
def test_garbage_and_outages_become_kakao_unavailable(
    client: KakaoClient, fake_kakao: FakeKakao, fault: str, reason: str
) -> None:
    """HTML, 5xx and resets end as KakaoUnavailable with a reason, after the retries."""
    fake_kakao.state.inject("/oauth/token", fault, fault, fault)

    with pytest.raises(KakaoUnavailable) as caught:
        client.redeem_refresh_token("x")

    assert caught.value.reason == reason
    assert fake_kakao.state.calls["/oauth/token"] == 3


def test_unreachable_kakao(clock: FakeClock) -> None:
    """Nothing listening: KakaoUnavailable, not a requests exception."""
    client = KakaoClient(
        new_session(),
        rest_api_key="k",
        client_secret="",
        redirect_uri="x",
        auth_base_url="http://127.0.0.1:9",
        api_base_url="http://127.0.0.1:9",
        sleep=clock.sleep,
    )

    with pytest.raises(KakaoUnavailable):
        client.redeem_refresh_token("x")


def test_send_memo_needs_talk_message_consent(client: KakaoClient, fake_kakao: FakeKakao) -> None:
    """Without talk_message consent Kakao answers -402, which surfaces as KakaoError -402."""
    code = query_of(consent(client.authorize_url("s", scope="")))["code"]
    tokens = client.exchange_code(code)

    with pytest.raises(KakaoError) as caught:
        client.send_memo(tokens["access_token"], "hello", "https://example.com")

    assert caught.value.code == "-402" and caught.value.status == 403
    assert fake_kakao.state.memos == []


def test_the_fake_enforces_kakaos_token_rate_limit(
    client: KakaoClient, fake_kakao: FakeKakao
) -> None:
    """The 21st access token within 10 minutes is KOE237, as KAKAO_API.md documents."""
    for _ in range(20):
        client.exchange_code(fresh_code(client))

    with pytest.raises(KakaoError) as caught:
        client.exchange_code(fresh_code(client))

    assert caught.value.code == "KOE237"
