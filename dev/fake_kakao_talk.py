"""The fake Kakao's KakaoTalk: the friends list and messages to friends, with Kakao's rules
(../shared/KAKAO_API.md §10). dev/fake_kakao.py routes the requests here and keeps the state.

Who sees whom: a friend appears in a user's list only when the two are KakaoTalk friends
(``state.kakaotalk_friends``), the friend has linked this app (``state.linked_users``) and
consented to ``friends`` (a consent given once, ``state.consents``, or the scope of any live
token), and, while the app lacks the message permission (``state.message_permission``), is a
member of the app (``state.members``; the caller must be one too, else -5, as Kakao limits the
API to members). Each user has a per-app uuid, stable and random-looking
(``state.talk_uuids``).

A send to friends checks, in order: the sender's talk_message consent (-402 with
required_scopes), the app's permission or membership (-5), at most 5 well-formed receiver uuids
and a valid template (-2); then per receiver: a uuid of this app that is not the sender's own,
a receiver who linked and consented to friends, and, without the permission, a member (each
-2, "Not allowed to send a message to some of receivers", the words of Kakao's troubleshooting
page), a KakaoTalk friend (-502), a receiver who takes messages (-530), then the quotas: the
sender's month (-531), the sender's day (-532), the receiver's day (-533), the pair's day
(-536). Days are KST dates of the fake's clock. As Kakao does, a send to one receiver that
fails is an error answer (HTTP 400 with the code); a send to several answers 200 with
``failure_info`` for those that failed.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from dev.fake_kakao import FakeKakaoState, Tokens

FRIENDS_PATH = "/v1/api/talk/friends"
FRIEND_SEND_PATH = "/v1/api/talk/friends/message/default/send"
MAX_LIMIT = 100
DEFAULT_LIMIT = 10
MAX_RECEIVERS = 5
MAX_TEXT = 200
MAX_BUTTONS = 2
NOT_ALLOWED = "Constraints on the parameter [receiver_uuids] are unsatisfied. Not allowed to "
NOT_ALLOWED += "send a message to some of receivers."
# Each default template's parts that must be there (Kakao's message template reference).
TEMPLATE_PARTS = {
    "text": ("text", "link"),
    "feed": ("content",),
    "list": ("header_title", "header_link", "contents"),
    "location": ("address", "content"),
    "commerce": ("content", "commerce"),
    "calendar": ("id_type", "id", "content"),
}
LINK_KEYS = ("web_url", "mobile_web_url", "android_execution_params", "ios_execution_params")
_KST = timezone(timedelta(hours=9), "KST")


@dataclass
class TalkLimits:
    """Kakao's daily quotas (per sender, receiver and pair), and a monthly one per sender that
    Kakao names (-531) without publishing a number: the fake's is only for tests to lower."""

    sender_daily: int = 100
    receiver_daily: int = 100
    pair_daily: int = 20
    sender_monthly: int = 3000


def ready_to_message(state: FakeKakaoState, sender: int, owner: int) -> None:
    """The set-up a sender needs: the two are KakaoTalk friends, both are members of the app,
    both linked it and consented to friends and talk_message."""
    with state.lock:
        state.kakaotalk_friends.add(frozenset((sender, owner)))
        for user in (sender, owner):
            state.members.add(user)
            state.linked_users.add(user)
            state.consents.setdefault(user, set()).update({"friends", "talk_message"})


def uuid_of(state: FakeKakaoState, user_id: int) -> str:
    """The user's uuid in this app: made once, random-looking, stable."""
    with state.lock:
        return state.talk_uuids.setdefault(user_id, secrets.token_urlsafe(16))


def consented(state: FakeKakaoState, user_id: int) -> set[str]:
    """What the user has consented to: given once (``state.consents``) or in a live token."""
    scopes = set(state.consents.get(user_id, set()))
    for table in (state.access_tokens, state.refresh_tokens):
        for info in table.values():
            if info.user_id == user_id:
                scopes |= _scopes(info.scope)
    return scopes


def friends_answer(
    state: FakeKakaoState, caller: Tokens, query: dict[str, str], base_url: str
) -> tuple[int, dict[str, Any]]:
    """GET /v1/api/talk/friends: one page of the caller's friends who may be listed."""
    if "friends" not in _scopes(caller.scope):
        return _insufficient("friends")
    if not state.message_permission and caller.user_id not in state.members:
        return 403, {"msg": "App has no permission to request this API.", "code": -5}
    offset, limit = query.get("offset", "0"), query.get("limit", str(DEFAULT_LIMIT))
    if not (offset.isdigit() and limit.isdigit() and 0 < int(limit) <= MAX_LIMIT):
        return 400, {"msg": "offset and limit (1 to 100) must be numbers", "code": -2}
    start, size = int(offset), int(limit)
    listed = sorted(f for f in _friends_of(state, caller.user_id) if _listable(state, f))
    elements = [
        {
            "id": friend,
            "uuid": uuid_of(state, friend),
            "profile_nickname": f"친구 {friend}",
            "profile_thumbnail_image": "",
            "favorite": False,
            "allowed_msg": friend not in state.refuses_messages,
        }
        for friend in listed[start : start + size]
    ]
    after = start + size
    after_url = (
        f"{base_url}{FRIENDS_PATH}?offset={after}&limit={size}" if after < len(listed) else None
    )
    return 200, {
        "elements": elements,
        "total_count": len(listed),
        "after_url": after_url,
        "favorite_count": 0,
    }


def send_answer(
    state: FakeKakaoState, caller: Tokens, form: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """POST /v1/api/talk/friends/message/default/send, with Kakao's rules (module docstring)."""
    if "talk_message" not in _scopes(caller.scope):
        return _insufficient("talk_message")
    if not state.message_permission and caller.user_id not in state.members:
        return 403, {"msg": "App has no permission to request this API.", "code": -5}
    uuids = _receiver_uuids(form.get("receiver_uuids", ""))
    if uuids is None:
        return 400, {"msg": "receiver_uuids: a JSON array of 1 to 5 uuids", "code": -2}
    template = form.get("template_object", "")
    if problem := template_problem(template):
        return 400, {"msg": f"template_object is invalid: {problem}", "code": -2}
    now = state.clock()
    successful: list[str] = []
    failed: dict[int, tuple[str, list[str]]] = {}
    for uuid in uuids:
        refusal = _refusal(state, caller.user_id, uuid, now)
        if refusal is None:
            _deliver(state, caller.user_id, _user_with(state, uuid), template, now)
            successful.append(uuid)
        else:
            code, message = refusal
            failed.setdefault(code, (message, []))[1].append(uuid)
    if len(uuids) == 1 and failed:
        ((code, (message, _)),) = failed.items()
        return 400, {"msg": message, "code": code}
    body: dict[str, Any] = {"successful_receiver_uuids": successful}
    if failed:
        body["failure_info"] = [
            {"code": code, "msg": message, "receiver_uuids": receivers}
            for code, (message, receivers) in failed.items()
        ]
    return 200, body


def template_problem(raw: str) -> str:
    """Why a template_object is not a default template Kakao takes ("" when it is)."""
    try:
        template = json.loads(raw)
    except ValueError:
        return "not JSON"
    if not isinstance(template, dict):
        return "not a JSON object"
    object_type = template.get("object_type")
    parts = TEMPLATE_PARTS.get(object_type) if isinstance(object_type, str) else None
    if parts is None:
        return f"object_type must be one of {', '.join(TEMPLATE_PARTS)}"
    if missing := [part for part in parts if not template.get(part)]:
        return f"{object_type} needs {', '.join(missing)}"
    if object_type == "text":
        text = template["text"]
        if not (isinstance(text, str) and 0 < len(text) <= MAX_TEXT):
            return f"text must be 1 to {MAX_TEXT} characters"
        if not _is_link(template["link"]):
            return f"link needs one of {', '.join(LINK_KEYS)}"
    buttons = template.get("buttons", [])
    if not isinstance(buttons, list) or len(buttons) > MAX_BUTTONS:
        return f"at most {MAX_BUTTONS} buttons"
    return ""


def template_text(template: dict[str, Any]) -> str:
    """What a person reads first in a message: a text's text, else the content's title."""
    if isinstance(template.get("text"), str):
        return str(template["text"])
    content = template.get("content")
    if isinstance(content, dict):
        return str(content.get("title") or content.get("description") or "")
    return str(template.get("header_title") or "")


def memo_page_items(state: FakeKakaoState) -> str:
    """The /memos page's list items, newest first: memos to oneself and messages to friends,
    every value escaped (the text is anyone's input)."""
    entries: list[tuple[float, int, str]] = []
    for index, memo in enumerate(state.memos):
        who = f"사용자 / user {escape(str(memo['user_id']))}"
        entries.append((memo.get("sent_at") or 0.0, index, _item(memo, who)))
    for index, message in enumerate(state.friend_messages):
        who = (
            f"보낸 사람 / from {escape(str(message['sender_id']))} → "
            f"받는 사람 / to {escape(str(message['receiver_id']))}"
        )
        entries.append((message["sent_at"], len(state.memos) + index, _item(message, who)))
    return "".join(item for _, _, item in sorted(entries, reverse=True))


def _item(entry: dict[str, Any], who: str) -> str:
    return (
        f"<li><p class=meta>{_kst(entry.get('sent_at'))} · {who}</p>"
        f"<p class=text>{escape(str(entry['text']))}</p></li>"
    )


def _refusal(state: FakeKakaoState, sender: int, uuid: str, now: float) -> tuple[int, str] | None:
    receiver = _user_with(state, uuid)
    if receiver is None or receiver == sender:
        return -2, NOT_ALLOWED
    if receiver not in state.linked_users or "friends" not in consented(state, receiver):
        return -2, NOT_ALLOWED
    if not state.message_permission and receiver not in state.members:
        return -2, NOT_ALLOWED
    if frozenset((sender, receiver)) not in state.kakaotalk_friends:
        return -502, "receiver is not a friend of the sender"
    if receiver in state.refuses_messages:
        return -530, "receiver refuses to receive messages"
    limits, counts = state.talk_limits, state.talk_counts
    day, month = _kst_day(now), _kst_day(now)[:7]
    if counts[("sender-month", month, sender)] >= limits.sender_monthly:
        return -531, "sender exceeded the monthly quota"
    if counts[("sender-day", day, sender)] >= limits.sender_daily:
        return -532, "sender exceeded the daily quota"
    if counts[("receiver-day", day, receiver)] >= limits.receiver_daily:
        return -533, "receiver exceeded the daily quota"
    if counts[("pair-day", day, sender, receiver)] >= limits.pair_daily:
        return -536, "sender and receiver exceeded the daily quota of the pair"
    return None


def _deliver(
    state: FakeKakaoState, sender: int, receiver: int | None, raw: str, now: float
) -> None:
    assert receiver is not None  # _refusal let it through
    day, month = _kst_day(now), _kst_day(now)[:7]
    counts: Counter[tuple[Any, ...]] = state.talk_counts
    for key in (
        ("sender-month", month, sender),
        ("sender-day", day, sender),
        ("receiver-day", day, receiver),
        ("pair-day", day, sender, receiver),
    ):
        counts[key] += 1
    template = json.loads(raw)
    state.friend_messages.append(
        {
            "sender_id": sender,
            "receiver_id": receiver,
            "text": template_text(template),
            "template": template,
            "sent_at": now,
        }
    )


def _friends_of(state: FakeKakaoState, user_id: int) -> set[int]:
    return {other for pair in state.kakaotalk_friends if user_id in pair for other in pair} - {
        user_id
    }


def _listable(state: FakeKakaoState, friend: int) -> bool:
    return (
        friend in state.linked_users
        and "friends" in consented(state, friend)
        and (state.message_permission or friend in state.members)
    )


def _user_with(state: FakeKakaoState, uuid: str) -> int | None:
    return next((user for user, known in state.talk_uuids.items() if known == uuid), None)


def _receiver_uuids(raw: str) -> list[str] | None:
    try:
        uuids = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(uuids, list) or not 0 < len(uuids) <= MAX_RECEIVERS:
        return None
    if not all(isinstance(uuid, str) and uuid for uuid in uuids):
        return None
    return uuids


def _is_link(link: Any) -> bool:
    return isinstance(link, dict) and any(link.get(key) for key in LINK_KEYS)


def _insufficient(scope: str) -> tuple[int, dict[str, Any]]:
    return 403, {"msg": "insufficient scopes.", "code": -402, "required_scopes": [scope]}


def _scopes(scope: str) -> set[str]:
    return set(scope.replace(",", " ").split())


def _kst_day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).astimezone(_KST).date().isoformat()


def _kst(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).astimezone(_KST).strftime("%Y-%m-%d %H:%M:%S KST")
