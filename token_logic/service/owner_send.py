"""A message to the owner with the stored logins: ``python -m token_logic send-message`` in a
checkout with the store, and the success page's test message.

The same sending as a script's through the token endpoint (kakao/to_owner.py): from the sender
when the deployment has one and it is logged in (so it rings), else a memo with the owner's
token, saying why. Tokens come from the store, refreshed first when they are about to expire,
under the same lease as every other refresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import NoTokenStored
from ..kakao.to_owner import (
    NO_SENDER_NOTE,
    MessageResult,
    send_as_memos,
    send_from_sender,
    templates_for,
)
from ..language import Words
from ..logins import SENDER
from .token_service import TokenService

# A token valid for at least this long is used (else refreshed first): the sends take seconds.
_MIN_VALID_SECONDS = 120


def message_owner(
    service: TokenService,
    text: str | None = None,
    *,
    template: Mapping[str, Any] | None = None,
    link: str | None = None,
    memo: bool = False,
    user_id: int | None = None,
) -> MessageResult:
    """Send ``text`` (numbered parts past 200 characters) or a default ``template`` to the
    owner (``user_id``'s login, with one per user: a memo, such a deployment has no sender);
    what Kakao did is the result. KakaoTokenError when a token cannot be had."""
    settings = service.settings
    deadline = service.deadline()
    templates = templates_for(text, template, link or settings.memo_link)
    custom = template is not None
    note: Words | None = None
    if settings.sender and not memo and user_id is None:
        owner = service.stored_user_id(deadline)
        try:
            name = service.document_name(None, SENDER)
            sender = service.valid_document(name, _MIN_VALID_SECONDS, deadline)
        except NoTokenStored:
            note = NO_SENDER_NOTE
        else:
            if owner is not None:
                return send_from_sender(service.kakao, sender, owner, templates, custom=custom)
    elif not memo and user_id is None:
        note = NO_SENDER_NOTE
    owner_name = service.document_name(user_id)
    owner_login = service.valid_document(owner_name, _MIN_VALID_SECONDS, deadline)
    return send_as_memos(service.kakao, owner_login, templates, note, custom=custom)
