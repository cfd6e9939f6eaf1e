"""Kakao's friend API through our client (kakao/talk.py) against the fake Kakao: the friends
list paged until the user is found, a send to friends read with its failure_info, a memo with
any template, Kakao's errors with their codes, and no token or uuid in what is printed."""

from __future__ import annotations

import pytest

from dev.fake_kakao import FakeKakao, Tokens
from dev.fake_kakao_talk import FRIEND_SEND_PATH, FRIENDS_PATH
from tests.helpers import REDIRECT_URI, FakeClock
from token_logic.budget import Deadline
from token_logic.errors import DeadlineReached, KakaoError, KakaoUnavailable
from token_logic.kakao.api import KakaoClient
from token_logic.kakao.talk import (
    MAX_PAGES,
    MEMO_SEND_PATH,
    find_friend,
    send_memo_template,
    send_to_friends,
    text_template,
)
from token_logic.kakao.to_owner import send_as_memos, send_from_sender
from token_logic.network import new_session

SENDER, OWNER = 4127000002, 4127000001


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


def token_for(fake: FakeKakao, user_id: int, scope: str = "friends,talk_message") -> str:
    token = f"fake-access-talk-{user_id}-{scope}"
    now = fake.state.clock()
    fake.state.access_tokens[token] = Tokens(user_id, scope, now + 21599, now + 5183999)
    return token


def test_the_owner_is_found_on_the_third_page(client: KakaoClient, fake_kakao: FakeKakao) -> None:
    """250 friends listed before the owner: three pages of 100, the third names the owner
    with the uuid the fake gave; nothing after it is asked."""
    for other in range(4126000000, 4126000250):  # ids below the owner's: listed first
        fake_kakao.state.ready_to_message(SENDER, other)
    fake_kakao.state.ready_to_message(SENDER, OWNER)

    friend = find_friend(client, token_for(fake_kakao, SENDER), OWNER)

    assert friend is not None and friend.user_id == OWNER
    assert friend.uuid == fake_kakao.state.talk_uuid(OWNER)
    assert fake_kakao.state.calls[FRIENDS_PATH] == 3
    assert friend.uuid not in repr(friend)


def test_the_search_stops_when_found(client: KakaoClient, fake_kakao: FakeKakao) -> None:
    """The owner on the first page: one call, however long the list."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)
    for other in range(4128000000, 4128000150):
        fake_kakao.state.ready_to_message(SENDER, other)

    friend = find_friend(client, token_for(fake_kakao, SENDER), OWNER)

    assert friend is not None and fake_kakao.state.calls[FRIENDS_PATH] == 1


def test_someone_not_listed_is_none_after_the_last_page(
    client: KakaoClient, fake_kakao: FakeKakao
) -> None:
    """The owner not among 120 friends (never consented to friends): None, after two pages,
    and small pages page as far."""
    for friend in range(4128000000, 4128000120):
        fake_kakao.state.ready_to_message(SENDER, friend)
    fake_kakao.state.ready_to_message(SENDER, OWNER)
    fake_kakao.state.consents[OWNER] = {"talk_message"}
    token = token_for(fake_kakao, SENDER)

    found = find_friend(client, token, OWNER)
    calls = fake_kakao.state.calls[FRIENDS_PATH]
    small = find_friend(client, token, OWNER, page_size=50)

    assert found is None and small is None
    assert calls == 2 and fake_kakao.state.calls[FRIENDS_PATH] == 2 + 3


def test_a_missing_friends_consent_names_the_scope(
    client: KakaoClient, fake_kakao: FakeKakao
) -> None:
    """The sender's token without friends: KakaoError -402 carrying required_scopes, and no
    token in its message."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)
    token = token_for(fake_kakao, SENDER, "talk_message")

    with pytest.raises(KakaoError) as caught:
        find_friend(client, token, OWNER)

    assert caught.value.code == "-402" and caught.value.required_scopes == ("friends",)
    assert token not in str(caught.value) and token not in repr(caught.value)


def test_a_send_to_several_reads_successes_and_failure_info(
    client: KakaoClient, fake_kakao: FakeKakao
) -> None:
    """Two receivers, one refusing messages: the delivered uuid, and the failure with its code
    and receiver."""
    refuser = 4127000030
    for user in (OWNER, refuser):
        fake_kakao.state.ready_to_message(SENDER, user)
    fake_kakao.state.refuses_messages.add(refuser)
    owner_uuid, refuser_uuid = (fake_kakao.state.talk_uuid(u) for u in (OWNER, refuser))

    result = send_to_friends(
        client,
        token_for(fake_kakao, SENDER),
        [owner_uuid, refuser_uuid],
        text_template("안녕", "https://example.com"),
    )

    assert result.successful_receiver_uuids == (owner_uuid,)
    (failure,) = result.failures
    assert (failure.code, failure.receiver_uuids) == ("-530", (refuser_uuid,))
    assert owner_uuid not in repr(result)


def test_one_receiver_refused_is_a_kakao_error(client: KakaoClient, fake_kakao: FakeKakao) -> None:
    """A send to one receiver who is no KakaoTalk friend: KakaoError -502, nothing sent."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)
    fake_kakao.state.kakaotalk_friends.clear()

    with pytest.raises(KakaoError) as caught:
        send_to_friends(
            client,
            token_for(fake_kakao, SENDER),
            [fake_kakao.state.talk_uuid(OWNER)],
            text_template("안녕", "https://example.com"),
        )

    assert caught.value.code == "-502" and fake_kakao.state.friend_messages == []


def test_more_than_five_receivers_are_never_sent(
    client: KakaoClient, fake_kakao: FakeKakao
) -> None:
    """Six receivers: refused here, before Kakao is asked."""
    with pytest.raises(ValueError, match="1 to 5"):
        send_to_friends(client, "token", ["u"] * 6, text_template("x", "https://example.com"))

    assert fake_kakao.state.calls[FRIEND_SEND_PATH] == 0


def test_a_lost_answer_is_not_sent_again(client: KakaoClient, fake_kakao: FakeKakao) -> None:
    """Kakao delivered, then the answer timed out: KakaoUnavailable, one delivery, one call
    (a second would ring twice)."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)
    fake_kakao.state.inject(FRIEND_SEND_PATH, "processed-timeout")

    with pytest.raises(KakaoUnavailable):
        send_to_friends(
            client,
            token_for(fake_kakao, SENDER),
            [fake_kakao.state.talk_uuid(OWNER)],
            text_template("한 번만", "https://example.com"),
        )

    assert fake_kakao.state.calls[FRIEND_SEND_PATH] == 1
    assert len(fake_kakao.state.friend_messages) == 1


def test_a_memo_takes_any_default_template(client: KakaoClient, fake_kakao: FakeKakao) -> None:
    """A feed template as a memo: delivered as it is."""
    feed = {
        "object_type": "feed",
        "content": {"title": "빌드 끝", "link": {"web_url": "https://example.com"}},
        "buttons": [{"title": "열기", "link": {"web_url": "https://example.com"}}],
    }

    send_memo_template(client, token_for(fake_kakao, OWNER, "talk_message"), feed)

    assert fake_kakao.state.memos[-1]["template"] == feed
    assert fake_kakao.state.memos[-1]["text"] == "빌드 끝"


@pytest.mark.parametrize("path", [FRIEND_SEND_PATH, MEMO_SEND_PATH])
def test_a_message_kakao_answered_minus_1_is_posted_once(
    client: KakaoClient, fake_kakao: FakeKakao, path: str
) -> None:
    """Kakao's temporary error (-1) for a friend send or a memo: KakaoError -1 after one POST.
    Kakao may have delivered before it answered, and a second POST would arrive twice."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)
    fake_kakao.state.inject(path, "-1")
    template = text_template("한 번만", "https://example.com")
    token = token_for(fake_kakao, SENDER)

    with pytest.raises(KakaoError) as caught:
        if path == FRIEND_SEND_PATH:
            send_to_friends(client, token, [fake_kakao.state.talk_uuid(OWNER)], template)
        else:
            send_memo_template(client, token, template)

    assert caught.value.code == "-1"
    assert fake_kakao.state.calls[path] == 1


def test_a_read_answered_minus_1_is_asked_again(client: KakaoClient, fake_kakao: FakeKakao) -> None:
    """The friends list is a read: after Kakao's -1 it is asked again in the same call."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)
    fake_kakao.state.inject(FRIENDS_PATH, "-1")

    friend = find_friend(client, token_for(fake_kakao, SENDER), OWNER)

    assert friend is not None and fake_kakao.state.calls[FRIENDS_PATH] == 2


def test_the_search_stops_after_50_pages(client: KakaoClient, fake_kakao: FakeKakao) -> None:
    """A list longer than 50 pages (5,000 friends at 100 a page), the user not in it: the
    search gives up (None) after 50 pages instead of reading on."""
    for other in range(4128000000, 4128000060):
        fake_kakao.state.ready_to_message(SENDER, other)

    found = find_friend(client, token_for(fake_kakao, SENDER), OWNER, page_size=1)

    assert found is None and fake_kakao.state.calls[FRIENDS_PATH] == MAX_PAGES == 50


def test_no_call_starts_past_the_deadline(
    client: KakaoClient, fake_kakao: FakeKakao, clock: FakeClock
) -> None:
    """A deadline too close for a Kakao attempt: DeadlineReached from the friends list and a
    send, and nothing asked of Kakao."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)
    token = token_for(fake_kakao, SENDER)
    deadline = Deadline.after(1.0, clock)

    with pytest.raises(DeadlineReached):
        find_friend(client, token, OWNER, deadline=deadline)
    with pytest.raises(DeadlineReached):
        send_to_friends(
            client, token, ["uuid"], text_template("x", "https://example.com"), deadline
        )
    with pytest.raises(DeadlineReached):
        send_memo_template(client, token, text_template("x", "https://example.com"), deadline)

    assert sum(fake_kakao.state.calls.values()) == 0


def test_a_deadline_reached_is_a_failure_in_the_result(
    client: KakaoClient, fake_kakao: FakeKakao, clock: FakeClock
) -> None:
    """send_from_sender and send_as_memos with the request's deadline at hand: no part sent,
    the result says it ran out of time (never an exception), the rest counted as not sent."""

    class Login:
        def __init__(self, user_id: int) -> None:
            self.access_token = token_for(fake_kakao, user_id)
            self.user_id = user_id

    fake_kakao.state.ready_to_message(SENDER, OWNER)
    templates = [text_template(f"{n}", "https://example.com") for n in (1, 2)]
    deadline = Deadline.after(1.0, clock)

    friend = send_from_sender(
        client, Login(SENDER), OWNER, templates, custom=False, deadline=deadline
    )
    memo = send_as_memos(client, Login(OWNER), templates, custom=False, deadline=deadline)

    for result in (friend, memo):
        assert result.delivered == () and result.summary == "failed: out of time"
        assert result.not_sent == (2 if result is friend else 1)
    assert sum(fake_kakao.state.calls.values()) == 0
