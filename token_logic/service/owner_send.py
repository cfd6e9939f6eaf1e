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

from ..budget import Deadline
from ..errors import KakaoTokenError
from ..kakao.to_owner import (
    NO_OWNER_NAMED_NOTE,
    NO_SENDER_NOTE,
    SENDER_UNAVAILABLE_NOTE,
    MessageResult,
    send_as_memos,
    send_from_sender,
    templates_for,
    why_no_sender,
)
from ..language import Words
from ..logins import SENDER
from ..tokens import TokenDocument
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
    all_parts: bool = False,
) -> MessageResult:
    """Send ``text`` (numbered parts past 200 characters, at most MAX_PARTS of them unless
    ``all_parts``) or a default ``template`` to the owner (``user_id``'s login, with one per
    user: a memo, such a deployment has no sender); what Kakao did is the result, all within
    one request deadline. A sender that cannot be used now (none yet, its login dead, Kakao or
    the store failing for it) leaves a memo with a note saying why. KakaoTokenError when the
    owner's token cannot be had."""
    settings = service.settings
    deadline = service.deadline()
    templates = templates_for(text, template, link or settings.memo_link, all_parts=all_parts)
    custom = template is not None
    note: Words | None = None
    if settings.sender and not memo and user_id is None:
        owner = service.stored_user_id(deadline)
        sender, note = _sender(service, deadline)
        if sender is not None and owner is not None:
            return send_from_sender(
                service.kakao, sender, owner, templates, custom=custom, deadline=deadline
            )
        note = note or NO_OWNER_NAMED_NOTE
    elif not memo and user_id is None:
        note = NO_SENDER_NOTE
    owner_name = service.document_name(user_id)
    owner_login = service.valid_document(owner_name, _MIN_VALID_SECONDS, deadline)
    return send_as_memos(
        service.kakao, owner_login, templates, note, custom=custom, deadline=deadline
    )


def _sender(service: TokenService, deadline: Deadline) -> tuple[TokenDocument | None, Words | None]:
    """The sender's login valid for a while, or None and why not (a note for the memo)."""
    try:
        name = service.document_name(None, SENDER)
        return service.valid_document(name, _MIN_VALID_SECONDS, deadline), None
    except KakaoTokenError as exc:  # the store failing for the sender too: a memo, saying so
        return None, why_no_sender(exc) or SENDER_UNAVAILABLE_NOTE
