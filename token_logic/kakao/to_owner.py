"""A message to the deployment's owner, from whichever tokens the caller holds: one that rings
when it can.

A memo to oneself lands silently in 나와의 채팅 (../shared/KAKAO_API.md §10). So with a sender's
token, the owner's uuid is looked up in the sender's friends list by the owner's user id (never
kept: it is per app and may change) and each part goes from the sender to the owner as an
ordinary chat message; without one, each part goes as a memo with the owner's token. The
command line's ``send-message`` gets the tokens from the token endpoint (client/owner_message.py)
or from the store (service/owner_send.py), the success page's test message from the store.

Parts go in order; a failure that would repeat (a quota, not friends) stops the rest, which are
counted as not sent. Kakao's answers become the result (MessageResult), never an exception; so
does a request's ``deadline`` (the server's: a script has none) reached before a call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..budget import Deadline
from ..errors import (
    DeadlineReached,
    KakaoError,
    KakaoTokenError,
    KakaoUnavailable,
    LoginRequired,
    NoTokenStored,
)
from ..language import Words
from .api import KakaoClient
from .message_parts import numbered_parts, too_many_parts
from .talk import find_friend, send_memo_template, send_to_friends, text_template
from .talk_failures import (
    FRIEND,
    MEMO,
    MessageFailure,
    failure_for,
    failure_for_code,
    not_in_friends,
)

# Why a message went as a memo, and how to make the next one ring. The store's path
# (service/owner_send.py) says the same: keep the names.
NO_SENDER_NOTE = Words(
    "보내는 계정이 없어 메모(나와의 채팅, 알림 없음)로 보냈습니다. 배포에 보내는 계정 설정이 "
    "없거나(deploy.env에 KAKAO_SENDER=1을 넣고 ./deploy.sh를 다시 실행하세요), 아직 보내는 "
    "계정이 로그인하지 않았습니다. 알림이 울리게 하려면 "
    "`python -m token_logic claim-url --sender`가 만든 링크를 두 번째 카카오 계정으로 여세요",
    "no sender: sent as a memo (나와의 채팅, no notification). Either the deployment has no "
    "sender (set KAKAO_SENDER=1 in deploy.env and run ./deploy.sh again), or no sender account "
    "has logged in yet. To make it ring, open the link "
    "`python -m token_logic claim-url --sender` prints with a second Kakao account",
)
NO_OWNER_NAMED_NOTE = Words(
    "보내는 계정의 받는 사람(소유자)을 알 수 없어 메모로 보냈습니다(알림 없음). 소유자가 "
    "로그인하지 않았거나(소유자 계정으로 로그인 URL(kakao_callback)을 여세요), 배포가 이 "
    "클라이언트보다 오래되었습니다(./deploy.sh를 다시 실행하세요)",
    "no owner named for the sender: sent as a memo (no notification). Either the owner is not "
    "logged in (open the login URL (kakao_callback) with the owner's account), or the "
    "deployment is older than this client (run ./deploy.sh again)",
)
# The sender's login is stored, but its token cannot be had: Kakao refused its refresh token
# (logged out, unlinked, expired), so only the sender account itself can bring it back.
SENDER_LOGIN_DEAD_NOTE = Words(
    "보내는 계정(login=sender)의 로그인이 끝나(로그아웃, 연결 해제, 또는 리프레시 토큰 만료) "
    "메모(나와의 채팅, 알림 없음)로 보냈습니다. 알림이 다시 울리게 하려면 보내는 계정으로 콜백 "
    "URL(kakao_callback)에서 다시 로그인하거나, `python -m token_logic claim-url --sender`가 "
    "만든 링크로 새 보내는 계정을 들이세요",
    "the sender's login (login=sender) has ended (logged out, unlinked, or its refresh token "
    "expired): sent as a memo (나와의 채팅, no notification). To make it ring again, log in "
    "again with the sender account at the callback URL (kakao_callback), or admit a new sender "
    "through the link `python -m token_logic claim-url --sender` prints",
)
# The sender's token cannot be had right now (Kakao unreachable or refusing for now, or out of
# time): it passes, and nobody need act.
SENDER_UNAVAILABLE_NOTE = Words(
    "지금은 보내는 계정(login=sender)의 토큰을 받을 수 없어(카카오 연결 실패나 일시적 거부, 또는 "
    "시간 초과) 메모(나와의 채팅, 알림 없음)로 보냈습니다. 다음 메시지는 다시 보내는 계정으로 "
    "보냅니다",
    "the sender's token (login=sender) could not be had just now (Kakao unreachable or refusing "
    "for now, or out of time): sent as a memo (나와의 채팅, no notification). The next message "
    "tries the sender again",
)


# What a call to Kakao may raise that becomes a failure in the result.
_CALL_FAILURES = (KakaoError, KakaoUnavailable, DeadlineReached)


class Login(Protocol):
    """What a send needs of a login (the endpoint's answer, or a stored document): its access
    token and whose it is."""

    @property
    def access_token(self) -> str: ...

    @property
    def user_id(self) -> int | None: ...


def why_no_sender(exc: KakaoTokenError) -> Words | None:
    """The note for a message that goes as a memo because the sender's token could not be had
    (``exc``): none stored, its login ended, or it cannot be had now. None when ``exc`` is no
    reason to send a memo instead (the caller lets it raise)."""
    if isinstance(exc, NoTokenStored):
        return NO_SENDER_NOTE
    if isinstance(exc, LoginRequired):  # a KakaoError: before it
        return SENDER_LOGIN_DEAD_NOTE
    if isinstance(exc, (KakaoError, KakaoUnavailable, DeadlineReached)):
        return SENDER_UNAVAILABLE_NOTE
    return None


@dataclass(frozen=True)
class MessageResult:
    """What Kakao did with a message: how it went (``friend``: from the sender, it rings;
    ``memo``: the owner's own chat, silent), to whom, in how many parts, which were delivered
    (numbered from 1), each failure, and how many parts were not sent after one that would
    repeat. ``note``: why it went as a memo when a sender was wanted."""

    route: str
    receiver_user_id: int | None
    parts: int
    delivered: tuple[int, ...] = ()
    failures: tuple[MessageFailure, ...] = ()
    not_sent: int = 0
    note: Words | None = None

    @property
    def ok(self) -> bool:
        """Every part was delivered."""
        return len(self.delivered) == self.parts and not self.failures

    @property
    def summary(self) -> str:
        """``delivered``, or the first failure's short form (``failed: -502 not friends``)."""
        return "delivered" if self.ok else f"failed: {self.failures[0].short}"


def send_from_sender(
    kakao: KakaoClient,
    sender: Login,
    owner: int,
    templates: list[dict[str, Any]],
    *,
    custom: bool,
    deadline: Deadline | None = None,
) -> MessageResult:
    """Each template from the sender to the owner, found by user id in the sender's friends
    list (the uuid is used for this send and never kept); no call started that could not
    finish by ``deadline``."""
    count = len(templates)
    try:
        friend = find_friend(kakao, sender.access_token, owner, deadline=deadline)
    except _CALL_FAILURES as exc:
        failure = failure_for(exc, route=FRIEND, receiver=owner, part=0)
        return MessageResult(FRIEND, owner, count, failures=(failure,), not_sent=count)
    if friend is None:
        failure = not_in_friends(owner, sender.user_id)
        return MessageResult(FRIEND, owner, count, failures=(failure,), not_sent=count)

    def send(template: dict[str, Any], part: int) -> MessageFailure | None:
        try:
            result = send_to_friends(kakao, sender.access_token, [friend.uuid], template, deadline)
        except _CALL_FAILURES as exc:
            return failure_for(exc, route=FRIEND, receiver=owner, part=part, template=custom)
        if friend.uuid in result.successful_receiver_uuids:
            return None
        code = result.failures[0].code if result.failures else ""
        return failure_for_code(code, route=FRIEND, receiver=owner, part=part, template=custom)

    return _each_part(FRIEND, owner, templates, send)


def send_as_memos(
    kakao: KakaoClient,
    owner: Login,
    templates: list[dict[str, Any]],
    note: Words | None = None,
    *,
    custom: bool,
    deadline: Deadline | None = None,
) -> MessageResult:
    """Each template as a memo with the owner's token (나와의 채팅: silent); ``note`` says why
    it is not from the sender. No call started that could not finish by ``deadline``."""

    def send(template: dict[str, Any], part: int) -> MessageFailure | None:
        try:
            send_memo_template(kakao, owner.access_token, template, deadline)
        except _CALL_FAILURES as exc:
            return failure_for(exc, route=MEMO, receiver=owner.user_id, part=part, template=custom)
        return None

    return _each_part(MEMO, owner.user_id, templates, send, note)


def _each_part(
    route: str,
    receiver: int | None,
    templates: list[dict[str, Any]],
    send: Callable[[dict[str, Any], int], MessageFailure | None],
    note: Words | None = None,
) -> MessageResult:
    """Send the parts in order; after a failure that would repeat, the rest are not sent."""
    delivered: list[int] = []
    failures: list[MessageFailure] = []
    not_sent = 0
    for part, template in enumerate(templates, 1):
        failure = send(template, part)
        if failure is None:
            delivered.append(part)
            continue
        failures.append(failure)
        if failure.repeats:
            not_sent = len(templates) - part
            break
    return MessageResult(
        route, receiver, len(templates), tuple(delivered), tuple(failures), not_sent, note
    )


def templates_for(
    text: str | None,
    template: Mapping[str, Any] | None,
    link: str,
    *,
    all_parts: bool = False,
) -> list[dict[str, Any]]:
    """The templates to send: ``template`` as it is, or ``text`` in numbered parts with
    ``link``. ValueError for a text of more than MAX_PARTS parts, unless ``all_parts``."""
    if template is not None or text is None:
        return [dict(template or {})]  # sent as it is
    if not all_parts and (problem := too_many_parts(text, "all_parts=True")):
        raise ValueError(problem)
    return [text_template(part, link) for part in numbered_parts(text)]
