"""Writing a login, for the owner's paths (login.py) and the sender's (sender_login.py) alike.

A login is written conditionally on the version just read, after a ``vet`` that may refuse it
(by raising) or spend a claim link (claim.py). Once Kakao has issued tokens, a login that could
not be written is settled by its fate: a read tells whether it landed after all (kept), whether
a live login of the same user is stored (its fresh tokens are left to expire: a Kakao logout
ends every token of that user for this app), or neither (they are logged out at Kakao).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..budget import LOGIN_CLEANUP_SECONDS, MAX_CONFLICT_ATTEMPTS, Deadline
from ..clock import Clock
from ..config import USER_ID_PLACEHOLDER, Settings
from ..errors import KakaoTokenError, StorageError, WriteConflict
from ..kakao.api import KakaoClient
from ..log import ALERT_OWNERSHIP, log_event
from ..logins import OWNER
from ..storage.protocol import Stored, TokenStore, stored_document
from ..tokens import TokenDocument, from_json_or_none, to_json
from .claim import claim_name, spend_claim, valid_claim

# What a failed login left in the store (LoginWriter.fate).
LANDED, _SAME_USER, _NONE, _UNKNOWN = "landed", "same_user", "none", "unknown"


class LoginWriter:
    """The store and Kakao as a login uses them: vetted writes, claim links, cleanup."""

    def __init__(
        self, settings: Settings, kakao: KakaoClient, store: TokenStore, clock: Clock
    ) -> None:
        self._settings = settings
        self._kakao = kakao
        self._store = store
        self._clock = clock

    def write_vetted(
        self,
        name: str,
        document: TokenDocument,
        vet: Callable[[Stored | None], None],
        claimed: Callable[[], bool],
        work: Deadline,
        deadline: Deadline,
    ) -> None:
        """The vetted conditional write. If it seemed to fail after ``vet`` spent a claim link,
        the login counts as stored when it did land (the link is gone either way)."""
        try:
            self.write_over_read_version(name, to_json(document), vet, work)
        except KakaoTokenError:
            if not claimed() or self.fate(name, document, deadline) != LANDED:
                raise

    def write_over_read_version(
        self, name: str, data: bytes, vet: Callable[[Stored | None], None], work: Deadline
    ) -> None:
        """Read the version, let ``vet`` refuse (by raising), write conditionally on that
        version; again from the read if someone wrote in between."""
        for _ in range(MAX_CONFLICT_ATTEMPTS):
            current = self._store.read(name, work)
            vet(current)
            try:
                self._store.write(name, data, current.version if current else None, work)
                return
            except WriteConflict:
                continue
        raise StorageError(f"gave up storing the login: {name} kept changing")

    def redeem_claim(self, secret: str, deadline: Deadline, login: str = OWNER) -> bool:
        """Whether ``secret`` is a live claim link for ``login`` (claim.py), spent here now."""
        name = claim_name(self._settings.token_object, login)
        stored = valid_claim(self._store, name, secret, self._clock.now(), deadline)
        if stored is None:
            return False
        try:
            return spend_claim(self._store, name, stored, deadline)
        except WriteConflict:
            return False  # spent (or replaced by a newer link) in between

    def owner_of_stored_tokens(
        self, document: TokenDocument | None, deadline: Deadline
    ) -> int | None:
        """For a document written without user_id (an older version): ask Kakao whose its
        access token is. None when that cannot be told (expired, unreadable, Kakao down)."""
        if document is None:
            return None
        try:
            return self._kakao.user_id(document.access_token, deadline)
        except KakaoTokenError:
            return None

    def fate(self, name: str, document: TokenDocument | None, deadline: Deadline) -> str:
        """After a login failed past Kakao: is it stored after all (a write whose answer was
        lost), is another login of the same user stored, or neither; or can't that be told."""
        template = self._settings.token_object
        if document is None:  # who logged in is not known: only an empty single document is safe
            if USER_ID_PLACEHOLDER in template or self._settings.sender:
                return _UNKNOWN  # it may be the stored sender's (or a user's own) login
            name = template
        try:
            stored = self._store.read(name, deadline.earlier_by(LOGIN_CLEANUP_SECONDS / 2))
        except KakaoTokenError:
            return _UNKNOWN
        latest = from_json_or_none(stored.data) if stored else None
        if self._settings.sender and document is not None:
            # The same account may hold the sender's login: a logout would end it too.
            sender_fate = self._stored_fate(self._settings.sender_object, document, deadline)
            if sender_fate != _NONE and name != self._settings.sender_object:
                return sender_fate
        if latest is None or not latest.fields.get("refresh_token"):
            return _NONE
        if document is None:
            return _UNKNOWN
        if latest.fields.get("refresh_token") == document.refresh_token:
            return LANDED
        return _SAME_USER if latest.user_id == document.user_id else _NONE

    def _stored_fate(self, name: str, document: TokenDocument, deadline: Deadline) -> str:
        """_SAME_USER when ``name`` holds this user's live login, _UNKNOWN when it can't be
        read, else _NONE."""
        try:
            held = stored_document(
                self._store, name, deadline.earlier_by(LOGIN_CLEANUP_SECONDS / 2)
            )
        except KakaoTokenError:
            return _UNKNOWN
        if held is not None and held.user_id == document.user_id:
            return _SAME_USER if held.fields.get("refresh_token") else _NONE
        return _NONE

    def discard(
        self, response: Mapping[str, Any], exc: KakaoTokenError, fate: str, deadline: Deadline
    ) -> None:
        """The tokens of a login that could not be stored: logged out at Kakao, unless that
        could end a stored login too (Kakao's logout ends every token of that user for this
        app). Then they are left to expire: nobody holds the refresh token to renew them."""
        if fate != _NONE:
            log_event(
                logging.WARNING,
                "login not stored; its fresh tokens are left to expire (a Kakao logout could "
                "end this user's stored login too)",
                error=type(exc).__name__,
                stored=fate,
            )
            return
        log_event(
            logging.WARNING,
            "login not stored; logging its fresh tokens out at Kakao",
            error=type(exc).__name__,
        )
        self.log_out(str(response.get("access_token", "")), deadline)

    def revoke(
        self, response: Mapping[str, Any], user_id: int | None, why: str, deadline: Deadline
    ) -> None:
        """Log out a refused login's fresh tokens at Kakao, so nothing usable is left behind."""
        log_event(logging.WARNING, why, user_id=user_id, alert=ALERT_OWNERSHIP)
        self.log_out(str(response.get("access_token", "")), deadline)

    def log_out(self, access_token: str, deadline: Deadline) -> None:
        """End tokens at Kakao; if Kakao cannot be told, they expire on their own (nobody holds
        the refresh token, so nobody can renew them)."""
        try:
            self._kakao.logout(access_token, deadline)
        except KakaoTokenError as exc:
            log_event(
                logging.WARNING,
                "could not log tokens out at Kakao; they expire on their own",
                error=type(exc).__name__,
                error_code=getattr(exc, "code", ""),
            )
