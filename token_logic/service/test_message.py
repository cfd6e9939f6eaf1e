"""The success page's test message: one short message, sent the way scripts send.

From the sender to the owner when a sender is stored (the owner found in the sender's friends
list by user id, the uuid never kept), else a memo to the owner. What Kakao answered comes back
as a code the page explains (kakao/talk_words.py): "" when delivered.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import KakaoError, NoTokenStored
from ..kakao.talk import (
    RECEIVER_REFUSES,
    find_friend,
    send_memo_template,
    send_to_friends,
    text_template,
)
from ..kakao.talk_words import NO_OWNER, OWNER_NOT_FOUND
from ..logins import SENDER
from .token_service import TokenService

TEST_TEXT = (
    "kakao-token-function 테스트 메시지입니다. 스크립트도 이렇게 보냅니다.\n"
    "A test message from kakao-token-function: scripts send the same way."
)
# A valid access token for at least this long is used for the test (else refreshed first).
_MIN_VALID_SECONDS = 60


@dataclass(frozen=True)
class TestMessageResult:
    """What the test did: ``via`` friend (from the sender) or memo; ``code`` "" when Kakao
    delivered it, else Kakao's code (``-502``, ``-402``, ...) or one of this module's."""

    via: str
    code: str = ""
    receiver_user_id: int | None = None

    @property
    def delivered(self) -> bool:
        return not self.code


def send_test_message(service: TokenService) -> TestMessageResult:
    """Send the test message. KakaoTokenError when a token cannot be had or Kakao cannot be
    reached (the page shows its problem); what Kakao refused is the result's code."""
    deadline = service.deadline()
    settings = service.settings
    owner = service.stored_user_id(deadline)
    sender_token = ""
    if settings.sender:
        try:
            name = service.document_name(None, SENDER)
            sender_token = service.valid_document(name, _MIN_VALID_SECONDS, deadline).access_token
        except NoTokenStored:
            sender_token = ""  # no sender has logged in yet: a memo, as scripts would send
    link = settings.memo_link
    try:
        if not sender_token:
            owner_token = service.valid_document(
                settings.token_object, _MIN_VALID_SECONDS, deadline
            ).access_token
            send_memo_template(service.kakao, owner_token, text_template(TEST_TEXT, link))
            return TestMessageResult("memo", receiver_user_id=owner)
        if owner is None:
            return TestMessageResult("friend", NO_OWNER)
        friend = find_friend(service.kakao, sender_token, owner)
        if friend is None:
            return TestMessageResult("friend", OWNER_NOT_FOUND, owner)
        if not friend.allowed_msg:
            return TestMessageResult("friend", RECEIVER_REFUSES, owner)
        sent = send_to_friends(
            service.kakao, sender_token, [friend.uuid], text_template(TEST_TEXT, link)
        )
    except KakaoError as exc:
        if exc.status == 401 or exc.code in ("-401", "KOE322"):
            raise  # the login itself is dead: the page says to log in again
        return TestMessageResult("memo" if not sender_token else "friend", exc.code, owner)
    if friend.uuid in sent.successful_receiver_uuids:
        return TestMessageResult("friend", receiver_user_id=owner)
    code = next((failed.code for failed in sent.failures), "") or "unknown"
    return TestMessageResult("friend", code, owner)
