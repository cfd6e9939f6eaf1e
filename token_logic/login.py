"""Finishing a login: who logged in, whether they may store it, and storing it.

Who may store a login:
- With ALLOWED_KAKAO_USER_IDS, exactly those users (the allowlist wins when set).
- Without it, a single-document deployment (no ``{user_id}`` in TOKEN_OBJECT) belongs to the
  first Kakao user whose login it stored; anyone else is refused and their fresh token logged
  out at Kakao. The owner can always log in again; ``python -m token_logic logout`` hands the
  deployment over.
- Per-user documents: every user has their own document.
A login whose user id could not be established is never stored (fail closed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from .clock import Clock
from .config import Settings
from .errors import (
    IdentityUnverified,
    KakaoTokenError,
    KakaoUnavailable,
    NotTheOwner,
    StorageError,
    UserNotAllowed,
    WriteConflict,
)
from .idtoken import id_token_subject
from .kakao import KakaoClient
from .log import log_event
from .state import verify_state
from .store import USER_ID_PLACEHOLDER, Stored, TokenStore, document_name
from .tokens import (
    TokenDocument,
    from_json_or_none,
    from_token_response,
    to_json,
    unusable_lifetimes,
)

_MAX_WRITE_ATTEMPTS = 5


class LoginFinisher:
    """Turns Kakao's redirect back (code, state, this browser's cookies) into a stored login."""

    def __init__(
        self, settings: Settings, kakao: KakaoClient, store: TokenStore, clock: Clock
    ) -> None:
        self._settings = settings
        self._kakao = kakao
        self._store = store
        self._clock = clock

    def finish(self, code: str, state: str, cookies: Mapping[str, str]) -> TokenDocument:
        """Verify the state, exchange the code, check who it is, store the document."""
        secrets = verify_state(state, cookies)  # before anything reaches Kakao
        response = self._kakao.exchange_code(code, secrets.verifier)
        user_id = self._identify(response, secrets.nonce)
        allowed = self._settings.allowed_user_ids
        if allowed and user_id not in allowed:
            self._revoke(response, user_id, "login refused: user not allowed")
            raise UserNotAllowed(user_id)
        for field_name in unusable_lifetimes(response):
            log_event(
                logging.WARNING,
                "Kakao's login answer had no usable value; a conservative one is assumed",
                field=field_name,
            )
        document = from_token_response(response, self._clock.now(), user_id)
        name = document_name(self._settings.token_object, user_id)
        if allowed or USER_ID_PLACEHOLDER in self._settings.token_object:
            self._store_over_anything(name, document)
        else:
            self._store_if_owner(name, document, response)
        log_event(
            logging.INFO,
            "login stored",
            user_id=user_id,
            document=name,
            expires_at=document.expires_at,
            refresh_token_expires_at=document.refresh_token_expires_at,
        )
        return document

    def _identify(self, response: Mapping[str, Any], nonce: str) -> int:
        """The Kakao user id: from the checked ID token, else from /v2/user/me."""
        id_token = response.get("id_token")
        if isinstance(id_token, str) and id_token:
            try:
                return id_token_subject(
                    id_token,
                    issuer=self._settings.auth_base_url,
                    audience=self._settings.rest_api_key,
                    nonce=nonce,
                    now=self._clock.now(),
                )
            except KakaoUnavailable as exc:  # a token for another app or login: never store it
                raise IdentityUnverified(str(exc)) from exc
        try:
            return self._kakao.user_id(str(response.get("access_token", "")))
        except KakaoTokenError as exc:
            # Fail closed: whose login this is decides whether it may be stored at all.
            raise IdentityUnverified("the Kakao user id could not be checked") from exc

    def _store_if_owner(
        self, name: str, document: TokenDocument, response: Mapping[str, Any]
    ) -> None:
        """Store the login over the owner's own document (or nothing), never over another's.

        The read's version guards the write, so a stranger's login cannot slip in between.
        """
        user_id = document.user_id

        def vet(current: Stored | None) -> None:
            if current is None:
                return
            stored_document = from_json_or_none(current.data)
            owner = stored_document.user_id if stored_document else None
            if owner is None:
                owner = self._owner_of_stored_tokens(stored_document)
                if owner is None:
                    # Whose it is cannot be told: refuse, but revoke nothing, since this
                    # may be the owner, and a Kakao logout would end the stored login too.
                    log_event(logging.WARNING, "login refused: stored document names no owner")
                    raise NotTheOwner(user_id or 0, owner_known=False)
            if owner != user_id:
                self._revoke(response, user_id, "login refused: another user owns this")
                raise NotTheOwner(user_id or 0, owner_known=True)

        self._write_over_read_version(name, to_json(document), vet)

    def _owner_of_stored_tokens(self, document: TokenDocument | None) -> int | None:
        """For a document written without user_id (an older version): ask Kakao whose its
        access token is. None when that cannot be told (expired, unreadable, Kakao down)."""
        if document is None:
            return None
        try:
            return self._kakao.user_id(document.access_token)
        except KakaoTokenError:
            return None

    def _store_over_anything(self, name: str, document: TokenDocument) -> None:
        """Who may store is settled (allowlist, or the user's own document): one write, no read.

        A refresh racing with it loses its compare-and-swap and finds the newer login (see
        refresh.py). Only if that one write fails (it may or may not have landed) does the login
        take the retried path: read the version, write conditionally.
        """
        data = to_json(document)
        try:
            self._store.overwrite(name, data)
            return
        except StorageError as exc:
            log_event(
                logging.WARNING,
                "login write failed; retrying with read and conditional write",
                document=name,
                error=type(exc.__cause__ or exc).__name__,
            )
        self._write_over_read_version(name, data, lambda current: None)

    def _write_over_read_version(
        self, name: str, data: bytes, vet: Callable[[Stored | None], None]
    ) -> None:
        """Read the version, let ``vet`` refuse (by raising), write conditionally on that
        version; again from the read if someone wrote in between."""
        for _ in range(_MAX_WRITE_ATTEMPTS):
            current = self._store.read(name)
            vet(current)
            try:
                self._store.write(name, data, current.version if current else None)
                return
            except WriteConflict:
                continue
        raise StorageError(f"gave up storing the login: {name} kept changing")

    def _revoke(self, response: Mapping[str, Any], user_id: int | None, why: str) -> None:
        """Log out a refused login's fresh tokens at Kakao, so nothing usable is left behind."""
        log_event(logging.WARNING, why, user_id=user_id)
        try:
            self._kakao.logout(str(response.get("access_token", "")))
        except KakaoTokenError as exc:
            log_event(
                logging.WARNING,
                "could not revoke the refused login",
                error=type(exc).__name__,
                error_code=getattr(exc, "code", ""),
            )
