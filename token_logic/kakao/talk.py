"""Kakao's friend API (../shared/KAKAO_API.md §10): the friends list, a message to friends, and
a memo with any default template.

A memo lands silently in 나와의 채팅; a message from another account (the sender) to a friend
rings. The receiver is found by user id in the sender's friends list each time: a uuid is per
app and may change, so it is looked up for the send at hand and never kept. Calls go through
``KakaoClient.call_api`` (its session, timeouts and error mapping); the access token travels in
the header only, never in a message, an exception or a repr.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..budget import Deadline
from ..errors import KakaoUnavailable
from .api import KakaoClient

FRIENDS_PATH = "/v1/api/talk/friends"
FRIEND_SEND_PATH = "/v1/api/talk/friends/message/default/send"
MEMO_SEND_PATH = "/v2/api/talk/memo/default/send"
MAX_FRIENDS_PER_PAGE = 100  # Kakao's limit for `limit`
MAX_RECEIVERS = 5  # receiver_uuids per send
MAX_TEXT_LENGTH = 200  # a text template's text
# Past this many pages (5,000 friends) the list is not Kakao's, or not worth the wait: a friends
# list holds a few hundred, and a page that always says "more" must not keep a send going.
MAX_PAGES = 50

# What Kakao answers when a message was not delivered (§10), by who must act.
NOT_FRIEND = "-502"
RECEIVER_REFUSES = "-530"
SENDER_MONTHLY_QUOTA = "-531"
SENDER_DAILY_QUOTA = "-532"
RECEIVER_DAILY_QUOTA = "-533"
PAIR_DAILY_QUOTA = "-536"
QUOTA_CODES = frozenset(
    {SENDER_MONTHLY_QUOTA, SENDER_DAILY_QUOTA, RECEIVER_DAILY_QUOTA, PAIR_DAILY_QUOTA}
)


@dataclass(frozen=True)
class Friend:
    """One entry of the friends list. ``uuid`` addresses a send in this app only, and may
    change: use it for the send at hand."""

    user_id: int
    uuid: str = field(repr=False)
    allowed_msg: bool = True
    nickname: str = ""


@dataclass(frozen=True)
class FailedReceivers:
    """One ``failure_info`` entry: Kakao's code (``-530``), its message, the receivers."""

    code: str
    message: str
    receiver_uuids: tuple[str, ...] = field(repr=False)


@dataclass(frozen=True)
class FriendSendResult:
    """What a send did: a 200 may still name failed receivers."""

    successful_receiver_uuids: tuple[str, ...] = field(repr=False)
    failures: tuple[FailedReceivers, ...] = ()


def text_template(text: str, link_url: str) -> dict[str, Any]:
    """Kakao's default text template: the text and the link it opens (web and mobile web)."""
    return {
        "object_type": "text",
        "text": text,
        "link": {"web_url": link_url, "mobile_web_url": link_url},
    }


def find_friend(
    kakao: KakaoClient,
    access_token: str,
    user_id: int,
    *,
    page_size: int = MAX_FRIENDS_PER_PAGE,
    deadline: Deadline | None = None,
) -> Friend | None:
    """The token's user's friend with this user id, paging through the list until found or the
    list ends (at most MAX_PAGES pages, none started that could not finish by ``deadline``:
    DeadlineReached); None when absent (not friends in KakaoTalk, or the friend never consented
    to ``friends`` in this app, or, without the message permission, is not the app's member).

    The next offset is counted here: ``after_url`` only says whether more follow, and is never
    fetched (the token would go wherever it points).
    """
    offset = 0
    for _ in range(MAX_PAGES):
        friends, total, more = friends_page(kakao, access_token, offset, page_size, deadline)
        for friend in friends:
            if friend.user_id == user_id:
                return friend
        offset += len(friends)
        if not friends or not more or offset >= total:
            return None
    return None


def friends_page(
    kakao: KakaoClient,
    access_token: str,
    offset: int,
    limit: int,
    deadline: Deadline | None = None,
) -> tuple[list[Friend], int, bool]:
    """One page of the friends list: the friends, ``total_count``, and whether more follow."""
    body = kakao.call_api(
        "GET",
        FRIENDS_PATH,
        access_token,
        query={"offset": offset, "limit": min(max(limit, 1), MAX_FRIENDS_PER_PAGE)},
        retry_when_sent=True,  # a read: asking again changes nothing
        deadline=deadline,
    )
    elements, total = body.get("elements"), body.get("total_count")
    if not isinstance(elements, list) or not isinstance(total, int) or isinstance(total, bool):
        raise KakaoUnavailable("bad_response", f"{FRIENDS_PATH} without elements and total_count")
    friends = [friend for item in elements if (friend := _friend(item)) is not None]
    return friends, total, bool(body.get("after_url"))


def send_to_friends(
    kakao: KakaoClient,
    access_token: str,
    receiver_uuids: Sequence[str],
    template: Mapping[str, Any],
    deadline: Deadline | None = None,
) -> FriendSendResult:
    """Send one default template to up to five friends. Kakao refuses a send to one receiver
    with an error (KakaoError: -502, -530, -532, ...), and names per-receiver failures of a
    send to several in a 200's ``failure_info``. Never retried once Kakao may have seen it,
    whatever it answered: it would arrive twice. Not started when it could not finish by
    ``deadline`` (DeadlineReached)."""
    if not 0 < len(receiver_uuids) <= MAX_RECEIVERS:
        raise ValueError(f"1 to {MAX_RECEIVERS} receivers per send")
    body = kakao.call_api(
        "POST",
        FRIEND_SEND_PATH,
        access_token,
        form={
            "receiver_uuids": json.dumps(list(receiver_uuids)),
            "template_object": json.dumps(template, ensure_ascii=False),
        },
        retry_when_sent=False,
        deadline=deadline,
    )
    successful = body.get("successful_receiver_uuids") or []
    failures = body.get("failure_info") or []
    if not isinstance(successful, list) or not isinstance(failures, list):
        raise KakaoUnavailable("bad_response", f"{FRIEND_SEND_PATH}: an answer of another shape")
    return FriendSendResult(
        tuple(str(uuid) for uuid in successful),
        tuple(failed for item in failures if (failed := _failed(item)) is not None),
    )


def send_memo_template(
    kakao: KakaoClient,
    access_token: str,
    template: Mapping[str, Any],
    deadline: Deadline | None = None,
) -> None:
    """A memo ("send to me") with any default template; KakaoError when refused. Never sent
    twice, and not started when it could not finish by ``deadline`` (DeadlineReached)."""
    kakao.call_api(
        "POST",
        MEMO_SEND_PATH,
        access_token,
        form={"template_object": json.dumps(template, ensure_ascii=False)},
        retry_when_sent=False,
        deadline=deadline,
    )


def _friend(item: Any) -> Friend | None:
    if not isinstance(item, dict) or not _is_int(item.get("id")):
        return None
    uuid = item.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        return None
    return Friend(
        user_id=int(item["id"]),
        uuid=uuid,
        allowed_msg=item.get("allowed_msg") is not False,
        nickname=str(item.get("profile_nickname") or ""),
    )


def _failed(item: Any) -> FailedReceivers | None:
    if not isinstance(item, dict):
        return None
    uuids, code = item.get("receiver_uuids"), item.get("code")
    return FailedReceivers(
        # Only a number: the code reaches log lines and the Action's output.
        code=str(code) if _is_int(code) else "",
        message=str(item.get("msg", "")),
        receiver_uuids=tuple(str(u) for u in uuids) if isinstance(uuids, list) else (),
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
