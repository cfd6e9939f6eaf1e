"""The fake Kakao's KakaoTalk speaks Kakao's friend API as ../shared/KAKAO_API.md §10 says:
who appears in a friends list, paging, and a send to friends with the team-member rule, at most
five receivers, failure_info, each quota code and the KST day."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from dev.fake_kakao import FakeKakao, Tokens
from dev.fake_kakao_talk import FRIEND_SEND_PATH, FRIENDS_PATH
from tests.helpers import FakeClock

SENDER, OWNER, OTHER = 4127000002, 4127000001, 4127000003
TEXT = {"object_type": "text", "text": "안녕", "link": {"web_url": "https://example.com"}}


def token_for(fake: FakeKakao, user_id: int, scope: str = "friends,talk_message") -> str:
    """An access token of ``user_id`` with ``scope``, as a login would leave it."""
    token = f"fake-access-test-{user_id}-{scope}"
    now = fake.state.clock()
    fake.state.access_tokens[token] = Tokens(user_id, scope, now + 21599, now + 5183999)
    return token


def friends(fake: FakeKakao, token: str, **query: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.get(fake.url + FRIENDS_PATH, params=query, headers=headers, timeout=5)


def send(fake: FakeKakao, token: str, uuids: list[str], template: Any = TEXT) -> requests.Response:
    form = {
        "receiver_uuids": json.dumps(uuids),
        "template_object": template if isinstance(template, str) else json.dumps(template),
    }
    headers = {"Authorization": f"Bearer {token}"}
    return requests.post(fake.url + FRIEND_SEND_PATH, data=form, headers=headers, timeout=5)


def listed_ids(response: requests.Response) -> list[int]:
    return [element["id"] for element in response.json()["elements"]]


def test_ready_to_message_lists_the_owner_with_a_stable_uuid(fake_kakao: FakeKakao) -> None:
    """After ready_to_message, the sender's list holds the owner with allowed_msg, the fields
    Kakao gives, and the same random-looking uuid every time; a uuid is never a user id."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)
    token = token_for(fake_kakao, SENDER)

    first, second = friends(fake_kakao, token), friends(fake_kakao, token)

    assert first.status_code == 200
    (element,) = first.json()["elements"]
    assert element["id"] == OWNER and element["allowed_msg"] is True
    assert set(element) >= {"uuid", "profile_nickname", "profile_thumbnail_image", "favorite"}
    assert element["uuid"] == second.json()["elements"][0]["uuid"]
    assert str(OWNER) not in element["uuid"] and len(element["uuid"]) >= 16
    assert first.json()["total_count"] == 1 and first.json()["after_url"] is None


def test_only_friends_who_linked_and_consented_are_listed(fake_kakao: FakeKakao) -> None:
    """A KakaoTalk friend who never linked the app, or linked without the friends consent, is
    not listed; one whose live token carries friends is; a stranger never is."""
    state = fake_kakao.state
    state.ready_to_message(SENDER, OWNER)
    state.message_permission = True  # membership aside
    never_linked, no_consent, by_token, stranger = 4127000010, 4127000011, 4127000012, 4127000013
    for friend in (never_linked, no_consent, by_token):
        state.kakaotalk_friends.add(frozenset((SENDER, friend)))
    state.linked_users |= {no_consent, by_token, stranger}
    state.consents[stranger] = {"friends"}
    token_for(fake_kakao, no_consent, "talk_message")
    token_for(fake_kakao, by_token, "profile_nickname,friends")

    response = friends(fake_kakao, token_for(fake_kakao, SENDER))

    assert listed_ids(response) == [OWNER, by_token]


def test_without_the_permission_only_members_are_listed_and_may_ask(
    fake_kakao: FakeKakao,
) -> None:
    """An app without the message permission lists only its members, and a caller who is not
    a member gets -5; with the permission, everyone."""
    state = fake_kakao.state
    state.ready_to_message(SENDER, OWNER)
    state.ready_to_message(SENDER, OTHER)
    state.members.discard(OTHER)
    outsider = 4127000099
    state.ready_to_message(outsider, OWNER)
    state.members.discard(outsider)

    members_only = friends(fake_kakao, token_for(fake_kakao, SENDER))
    refused = friends(fake_kakao, token_for(fake_kakao, outsider))
    state.message_permission = True
    everyone = friends(fake_kakao, token_for(fake_kakao, SENDER))

    assert listed_ids(members_only) == [OWNER]
    assert refused.status_code == 403 and refused.json()["code"] == -5
    assert listed_ids(everyone) == [OWNER, OTHER]


def test_a_friend_who_refuses_messages_is_listed_with_allowed_msg_false(
    fake_kakao: FakeKakao,
) -> None:
    """allowed_msg is false for a friend who refuses messages."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)
    fake_kakao.state.refuses_messages.add(OWNER)

    response = friends(fake_kakao, token_for(fake_kakao, SENDER))

    assert response.json()["elements"][0]["allowed_msg"] is False


def test_the_list_pages_with_offset_limit_total_count_and_after_url(
    fake_kakao: FakeKakao,
) -> None:
    """25 friends, 10 a page: three pages, after_url naming the next offset until the last;
    a limit above 100 or not a number is -2."""
    many = [4127100000 + n for n in range(25)]
    for friend in many:
        fake_kakao.state.ready_to_message(SENDER, friend)
    token = token_for(fake_kakao, SENDER)

    pages = [friends(fake_kakao, token, offset=offset, limit=10) for offset in (0, 10, 20)]
    too_many = friends(fake_kakao, token, limit=101)
    not_a_number = friends(fake_kakao, token, offset="x")

    assert [listed_ids(page) for page in pages] == [many[:10], many[10:20], many[20:]]
    assert {page.json()["total_count"] for page in pages} == {25}
    assert pages[0].json()["after_url"] == f"{fake_kakao.url}{FRIENDS_PATH}?offset=10&limit=10"
    assert pages[2].json()["after_url"] is None
    assert too_many.status_code == 400 and too_many.json()["code"] == -2
    assert not_a_number.status_code == 400


def test_the_list_needs_the_friends_consent(fake_kakao: FakeKakao) -> None:
    """A token without friends: 403 -402 naming friends in required_scopes."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)

    response = friends(fake_kakao, token_for(fake_kakao, SENDER, "talk_message"))

    assert response.status_code == 403
    assert response.json()["code"] == -402 and response.json()["required_scopes"] == ["friends"]


def test_a_send_to_a_friend_is_delivered_and_shown(fake_kakao: FakeKakao) -> None:
    """The friend's uuid gets the message: successful_receiver_uuids names it, and the fake
    records who sent what to whom."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)
    uuid = fake_kakao.state.talk_uuid(OWNER)

    response = send(fake_kakao, token_for(fake_kakao, SENDER), [uuid])

    assert response.status_code == 200
    assert response.json() == {"successful_receiver_uuids": [uuid]}
    (message,) = fake_kakao.state.friend_messages
    assert (message["sender_id"], message["receiver_id"], message["text"]) == (
        SENDER,
        OWNER,
        "안녕",
    )


def test_a_send_needs_talk_message(fake_kakao: FakeKakao) -> None:
    """The sender without talk_message: 403 -402 with required_scopes talk_message."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)
    token = token_for(fake_kakao, SENDER, "friends")

    response = send(fake_kakao, token, [fake_kakao.state.talk_uuid(OWNER)])

    assert response.status_code == 403
    assert response.json()["required_scopes"] == ["talk_message"]
    assert fake_kakao.state.friend_messages == []


@pytest.mark.parametrize(
    "receivers",
    [[], ["a"] * 6, "not json", [1]],
    ids=["none", "six", "not-json", "not-strings"],
)
def test_receiver_uuids_must_be_one_to_five_strings(fake_kakao: FakeKakao, receivers: Any) -> None:
    """No receivers, six, a body that is no JSON array of strings: -2."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)
    token = token_for(fake_kakao, SENDER)
    form = {
        "receiver_uuids": receivers if isinstance(receivers, str) else json.dumps(receivers),
        "template_object": json.dumps(TEXT),
    }

    response = requests.post(
        fake_kakao.url + FRIEND_SEND_PATH,
        data=form,
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )

    assert response.status_code == 400 and response.json()["code"] == -2


@pytest.mark.parametrize(
    "template",
    [
        {**TEXT, "text": "가" * 201},
        {"object_type": "text", "text": "no link"},
        {**TEXT, "link": {"nothing": "here"}},
        {"object_type": "poster", "content": {}},
        "[1, 2]",
    ],
    ids=["201-characters", "no-link", "empty-link", "unknown-type", "not-an-object"],
)
def test_a_template_kakao_would_refuse_is_minus_2(fake_kakao: FakeKakao, template: Any) -> None:
    """Text over 200 characters, a text without a link, an unknown object_type: -2."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)

    response = send(
        fake_kakao, token_for(fake_kakao, SENDER), [fake_kakao.state.talk_uuid(OWNER)], template
    )

    assert response.status_code == 400 and response.json()["code"] == -2


def test_a_feed_template_is_sent_as_it_is(fake_kakao: FakeKakao) -> None:
    """Any default template: a feed with a content and its link is delivered."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)
    feed = {
        "object_type": "feed",
        "content": {"title": "빌드", "link": {"web_url": "https://example.com"}},
    }

    response = send(
        fake_kakao, token_for(fake_kakao, SENDER), [fake_kakao.state.talk_uuid(OWNER)], feed
    )

    assert response.status_code == 200
    assert fake_kakao.state.friend_messages[0]["template"] == feed


def test_several_receivers_answer_200_with_failure_info(fake_kakao: FakeKakao) -> None:
    """To several receivers: 200, the delivered ones in successful_receiver_uuids, each
    failure code with its receivers in failure_info (not a member: -2, not a friend: -502,
    refuses: -530, a uuid of nobody: -2)."""
    state = fake_kakao.state
    refuser, not_member, not_friend = 4127000020, 4127000021, 4127000022
    for user in (OWNER, refuser, not_member):
        state.ready_to_message(SENDER, user)
    state.refuses_messages.add(refuser)
    state.members.discard(not_member)
    state.ready_to_message(OTHER, not_friend)  # a member who linked, but not SENDER's friend
    uuid = {user: state.talk_uuid(user) for user in (OWNER, refuser, not_member, not_friend)}

    response = send(fake_kakao, token_for(fake_kakao, SENDER), [*uuid.values(), "nobody-uuid"])

    assert response.status_code == 200
    body = response.json()
    assert body["successful_receiver_uuids"] == [uuid[OWNER]]
    failures = {entry["code"]: entry["receiver_uuids"] for entry in body["failure_info"]}
    assert failures == {
        -530: [uuid[refuser]],
        -2: [uuid[not_member], "nobody-uuid"],
        -502: [uuid[not_friend]],
    }
    assert all(entry["msg"] for entry in body["failure_info"])


def test_one_receiver_that_fails_is_an_error_answer(fake_kakao: FakeKakao) -> None:
    """A send to one receiver that fails is HTTP 400 with the code, as Kakao answers it: a
    receiver not a member of an app without the permission is -2 (Kakao's words: not allowed
    to send a message to some of receivers); the sender itself is -2."""
    state = fake_kakao.state
    state.ready_to_message(SENDER, OWNER)
    state.members.discard(OWNER)
    token = token_for(fake_kakao, SENDER)

    not_member = send(fake_kakao, token, [state.talk_uuid(OWNER)])
    to_self = send(fake_kakao, token, [state.talk_uuid(SENDER)])
    state.message_permission = True
    with_permission = send(fake_kakao, token, [state.talk_uuid(OWNER)])

    assert not_member.status_code == 400 and not_member.json()["code"] == -2
    assert "Not allowed to send a message" in not_member.json()["msg"]
    assert to_self.status_code == 400 and to_self.json()["code"] == -2
    assert with_permission.status_code == 200


def send_between(fake: FakeKakao, pairs: list[tuple[int, int]]) -> None:
    """Deliver one message for each (sender, receiver), each of them ready to message."""
    for sender, receiver in pairs:
        fake.state.ready_to_message(sender, receiver)
        answer = send(fake, token_for(fake, sender), [fake.state.talk_uuid(receiver)])
        assert answer.status_code == 200, answer.json()


SENDERS = [4127200000 + n for n in range(6)]
RECEIVERS = [4127300000 + n for n in range(6)]


@pytest.mark.parametrize(
    ("sent", "then", "code"),
    [
        # 20 a day from one sender to one receiver.
        ([(SENDER, OWNER)] * 20, (SENDER, OWNER), -536),
        # 100 a day to one receiver (from 5 senders, 20 each).
        ([(s, OWNER) for s in SENDERS[:5] for _ in range(20)], (SENDERS[5], OWNER), -533),
        # 100 a day from one sender (to 5 receivers, 20 each).
        ([(SENDER, r) for r in RECEIVERS[:5] for _ in range(20)], (SENDER, RECEIVERS[5]), -532),
        # The sender's month, lowered to 30 here: 20 + 10, then a third receiver.
        ([(SENDER, RECEIVERS[0])] * 20 + [(SENDER, RECEIVERS[1])] * 10, (SENDER, OWNER), -531),
    ],
    ids=["pair-day", "receiver-day", "sender-day", "sender-month"],
)
def test_each_quota_has_its_code(
    fake_kakao: FakeKakao, sent: list[tuple[int, int]], then: tuple[int, int], code: int
) -> None:
    """Once a quota is used up the next send answers its code: 20 a day per pair (-536), 100
    a day per receiver (-533) and per sender (-532), and the sender's month (-531)."""
    if code == -531:
        fake_kakao.state.talk_limits.sender_monthly = 30
    send_between(fake_kakao, sent)
    sender, receiver = then
    fake_kakao.state.ready_to_message(sender, receiver)

    response = send(
        fake_kakao, token_for(fake_kakao, sender), [fake_kakao.state.talk_uuid(receiver)]
    )

    assert response.status_code == 400 and response.json()["code"] == code


def test_the_monthly_quota_outlives_the_day_and_resets_on_the_first_kst(
    fake_kakao: FakeKakao, clock: FakeClock
) -> None:
    """The month's count stays past midnight, and starts again on the 1st (KST)."""
    fake_kakao.state.talk_limits.sender_monthly = 20
    send_between(fake_kakao, [(SENDER, OWNER)] * 20)
    uuid = fake_kakao.state.talk_uuid(OWNER)
    clock.advance(24 * 3600)
    next_day = send(fake_kakao, token_for(fake_kakao, SENDER), [uuid])
    clock.current = 1_801_407_600.0  # 2027-02-01 00:00 KST
    next_month = send(fake_kakao, token_for(fake_kakao, SENDER), [uuid])

    assert next_day.json()["code"] == -531
    assert next_month.status_code == 200


def test_daily_quotas_roll_over_at_midnight_kst(fake_kakao: FakeKakao, clock: FakeClock) -> None:
    """20 to the owner today: the 21st is -536 until midnight KST (15:00 UTC), not a second
    longer; then 20 more go."""
    state = fake_kakao.state
    state.ready_to_message(SENDER, OWNER)
    token, uuid = token_for(fake_kakao, SENDER), state.talk_uuid(OWNER)
    # 1_800_000_000 is 17:00 KST; midnight KST is 7 hours later.
    to_midnight = 7 * 3600 - (int(clock.time()) % 3600)
    for _ in range(20):
        assert send(fake_kakao, token, [uuid]).status_code == 200

    clock.advance(to_midnight - 1)
    before = send(fake_kakao, token_for(fake_kakao, SENDER), [uuid])
    clock.advance(1)
    after = send(fake_kakao, token_for(fake_kakao, SENDER), [uuid])

    assert before.json()["code"] == -536
    assert after.status_code == 200


def test_the_memos_page_lists_friend_messages_escaped(fake_kakao: FakeKakao) -> None:
    """/memos shows a friend message as from the sender to the owner, its text escaped."""
    fake_kakao.state.ready_to_message(SENDER, OWNER)
    hostile = {**TEXT, "text": "<script>alert(1)</script>"}
    send(fake_kakao, token_for(fake_kakao, SENDER), [fake_kakao.state.talk_uuid(OWNER)], hostile)

    page = requests.get(fake_kakao.url + "/memos", timeout=5).text

    assert f"보낸 사람 / from {SENDER} → 받는 사람 / to {OWNER}" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
