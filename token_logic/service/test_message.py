"""The success page's test message: one short message, sent the way scripts send
(owner_send.py): from the sender to the owner when a sender is logged in, else a memo."""

from __future__ import annotations

from ..kakao.to_owner import MessageResult
from .owner_send import message_owner
from .token_service import TokenService

TEST_TEXT = (
    "kakao-token-function 테스트 메시지입니다. 스크립트도 이렇게 보냅니다.\n"
    "A test message from kakao-token-function: scripts send the same way."
)


def send_test_message(service: TokenService, user_id: int | None = None) -> MessageResult:
    """Send the test message (``user_id``: that user's login, with one per user).
    KakaoTokenError when a token cannot be had (the page shows its problem); what Kakao
    refused is in the result."""
    return message_owner(service, TEST_TEXT, user_id=user_id)
