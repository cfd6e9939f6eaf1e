"""The sender's login (KAKAO_SENDER=1, logins.py): who is admitted as the sender, and storing it.

The sender is a second account beside a single document's owner: admitted by a sender claim
link of its own (claim.py), stored in its own document and never the owner's; it logs in again
freely after that. One account never holds both logins: the owner's account is refused as the
sender (SenderIsOwner), the sender's as the owner (OwnerIsSender), and a sender link opened
before any owner has logged in is refused (SenderNeedsOwner), or it would trap the intended
owner as the sender. login.py asks here first, then takes the owner's paths.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..budget import Deadline
from ..clock import Clock
from ..config import Settings
from ..errors import (
    ClaimRequired,
    KakaoTokenError,
    NotTheOwner,
    OwnerIsSender,
    SenderIsOwner,
    SenderNeedsOwner,
)
from ..log import ALERT_OWNERSHIP, log_event
from ..logins import SENDER
from ..storage.protocol import Stored, TokenStore, stored_document
from ..tokens import TokenDocument, from_json_or_none
from .claim import claim_name, valid_claim
from .login_writer import LoginWriter


class SenderAdmission:
    """Tells the sender's login from the owner's, and stores the sender's."""

    def __init__(
        self, settings: Settings, store: TokenStore, clock: Clock, writer: LoginWriter
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self._writer = writer

    def is_sender(self, user_id: int, claim_secret: str, work: Deadline) -> bool:
        """Whether this login is the sender's: it carries a valid sender claim, or it is the
        stored sender logging in again. An owner's claim link wins (the owner path then refuses
        an account that is the sender). One account never holds both logins: SenderIsOwner when
        the owner opens the sender link, SenderNeedsOwner before any owner has logged in (a
        sender link opened first would trap the intended owner as the sender)."""
        template = self._settings.token_object
        now = self._clock.now()
        if claim_secret and valid_claim(self._store, claim_name(template), claim_secret, now, work):
            return False
        if claim_secret and valid_claim(
            self._store, claim_name(template, SENDER), claim_secret, now, work
        ):
            owner = self._owner_id(user_id, work)
            if owner is None:
                log_event(logging.WARNING, "sender link refused: no owner has logged in yet")
                raise SenderNeedsOwner(user_id)
            if owner == user_id:
                log_event(logging.WARNING, "sender link refused: opened by the owner")
                raise SenderIsOwner(user_id)
            return True
        if self._stored_user(self._settings.sender_object, work) != user_id:
            return False
        # The stored sender logging in again, unless it is the owner too (a sender from before
        # KAKAO_SENDER was turned off and on again that took ownership meanwhile): the owner wins.
        return self._stored_user(template, work) != user_id

    def may_be_sender(self, user_id: int | None, deadline: Deadline) -> bool:
        """Whether ``user_id`` holds the stored sender's login, or that cannot be told (the
        store failing, out of time): a Kakao logout of that user would end it too."""
        if not self._settings.sender:
            return False
        try:
            return self._stored_user(self._settings.sender_object, deadline) == user_id
        except KakaoTokenError:
            return True

    def refuse_if_sender(self, user_id: int | None, work: Deadline) -> None:
        """OwnerIsSender when this account is the stored sender (no logout: that would end the
        sender's stored login too)."""
        if not self._settings.sender or user_id is None:
            return
        sender = stored_document(self._store, self._settings.sender_object, work)
        # A token-less marker (a sender whose login ended) holds nobody back; nor does a sender
        # document of the owner's own (the owner wins, see is_sender).
        if sender is None or sender.user_id != user_id or not sender.fields.get("refresh_token"):
            return
        if self._stored_user(self._settings.token_object, work) == user_id:
            return
        log_event(logging.WARNING, "owner login refused: the account is the sender")
        raise OwnerIsSender(user_id)

    def store_sender(
        self,
        name: str,
        document: TokenDocument,
        response: Mapping[str, Any],
        claim_secret: str,
        work: Deadline,
        deadline: Deadline,
    ) -> None:
        """Store the sender's login over its own document, or as a new sender with the sender
        claim link, spent before the write; a previous sender's tokens are logged out then."""
        user_id = document.user_id
        claimed: list[bool] = []
        previous: list[TokenDocument] = []
        owners: list[int | None] = []

        def vet(current: Stored | None) -> None:
            owner = self._owner_id(user_id or 0, work)  # again, right before each write
            if owner == user_id:
                raise SenderIsOwner(user_id or 0)
            owners[:] = [owner]
            stored_document = from_json_or_none(current.data) if current else None
            if stored_document is not None and stored_document.user_id == user_id:
                return
            if claimed or (claim_secret and self._writer.redeem_claim(claim_secret, work, SENDER)):
                claimed.append(True)
                previous[:] = [stored_document] if stored_document else []
                return
            self._writer.revoke(response, user_id, "sender login refused: no sender link", deadline)
            raise ClaimRequired(user_id or 0, link_given=bool(claim_secret))

        self._writer.write_vetted(name, document, vet, lambda: bool(claimed), work, deadline)
        if claimed:
            log_event(
                logging.WARNING,
                "sender admitted with a sender link",
                alert=ALERT_OWNERSHIP,
                user_id=user_id,
                previous_sender=previous[0].user_id if previous else None,
            )
        for old in previous:  # replaced: the previous sender's tokens end here too
            if old.fields.get("access_token") and old.user_id not in (user_id, *owners):
                self._writer.log_out(old.access_token, deadline)

    def _owner_id(self, user_id: int, work: Deadline) -> int | None:
        """The stored owner's user id (None: no owner yet). For a document written without
        one, Kakao is asked whose its token is; if that cannot be told, NotTheOwner (refused
        with no logout: this may be the owner)."""
        document = stored_document(self._store, self._settings.token_object, work)
        if document is None:
            return None
        if document.user_id is not None:
            return document.user_id
        owner = self._writer.owner_of_stored_tokens(document, work)
        if owner is None:
            raise NotTheOwner(user_id, owner_known=False)
        return owner

    def _stored_user(self, name: str, work: Deadline) -> int | None:
        document = stored_document(self._store, name, work)
        return document.user_id if document else None
