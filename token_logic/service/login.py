"""Finishing a login: who logged in, whether they may store it, and storing it.

Who may store a login:
- With ALLOWED_KAKAO_USER_IDS, exactly those users (the allowlist wins when set).
- Without it, a single-document deployment (no ``{user_id}`` in TOKEN_OBJECT) has one owner:
  the first login must carry a claim link (claim.py; the bundled demo needs none), and so does
  a login of another account, which then takes the deployment over. Anyone else is refused
  with an alert line and their fresh token logged out at Kakao. The owner can always log in
  again; ``logout`` keeps the deployment theirs.
- Per-user documents without an allowlist: each account is admitted once, by a claim link of
  its own (claim.py: ``claim-url`` makes one, for the next account to open); an account whose
  document is stored logs in again freely. Anyone else is refused as above: the callback is
  public, and a stranger's stored login would be a document the owner's scripts could reach.
- Per-user documents with an allowlist: the allowed users, each their own document.
- The sender (KAKAO_SENDER=1, logins.py), a second account beside a single document's owner:
  admitted by a sender claim link of its own, stored in its own document and never the owner's;
  it logs in again freely after that. The owner's account is refused as the sender.
A login whose user id could not be established is never stored (fail closed).

A login has the request's deadline (budget.py) like everything else. Once Kakao has issued
tokens, a login that cannot be stored in time (who it is unknown, storage down, out of time)
is logged out at Kakao, so no live token is left in nobody's hands; if the write's fate is
unknown, a read settles it first (a login that did land is kept).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..budget import LOGIN_CLEANUP_SECONDS, MAX_CONFLICT_ATTEMPTS, Deadline
from ..clock import Clock
from ..config import USER_ID_PLACEHOLDER, Settings
from ..errors import (
    ClaimRequired,
    IdentityUnverified,
    KakaoTokenError,
    KakaoUnavailable,
    NotTheOwner,
    OwnerIsSender,
    SenderIsOwner,
    SenderNeedsOwner,
    StorageError,
    UserNotAllowed,
    WriteConflict,
)
from ..kakao.api import KakaoClient
from ..kakao.id_token import id_token_subject
from ..kakao.state import verify_state
from ..log import ALERT_OWNERSHIP, log_event
from ..logins import OWNER, SENDER
from ..storage.protocol import Stored, TokenStore, document_name
from ..tokens import (
    TokenDocument,
    from_json_or_none,
    from_token_response,
    to_json,
    unusable_lifetimes,
)
from .claim import claim_name, spend_claim, valid_claim

# What a failed login left in the store (LoginFinisher._fate).
_LANDED, _SAME_USER, _NONE, _UNKNOWN = "landed", "same_user", "none", "unknown"
# An unconditional overwrite takes no deadline (one attempt, its own timeout): only with this
# much time left; otherwise the deadline-bounded read and conditional write.
_UNBOUNDED_WRITE_SECONDS = 15.0


class LoginFinisher:
    """Turns Kakao's redirect back (code, state, this browser's cookies) into a stored login."""

    def __init__(
        self, settings: Settings, kakao: KakaoClient, store: TokenStore, clock: Clock
    ) -> None:
        self._settings = settings
        self._kakao = kakao
        self._store = store
        self._clock = clock

    def finish(
        self, code: str, state: str, cookies: Mapping[str, str], deadline: Deadline
    ) -> tuple[TokenDocument, str]:
        """Verify the state, exchange the code, check who it is, store the document; all by
        ``deadline``, or the fresh tokens are logged out (see the module docstring). Returns
        the document and whose login it is (logins.OWNER or SENDER)."""
        secrets = verify_state(state, cookies)  # before anything reaches Kakao
        work = deadline.earlier_by(LOGIN_CLEANUP_SECONDS)
        response = self._kakao.exchange_code(code, secrets.verifier, work)
        document: TokenDocument | None = None
        name = ""
        sender = False
        try:
            user_id = self._identify(response, secrets.nonce, work)
            sender = self._settings.sender and self._is_sender(user_id, secrets.claim, work)
            allowed = self._settings.allowed_user_ids
            if allowed and user_id not in allowed and not sender:
                self._revoke(response, user_id, "login refused: user not allowed", deadline)
                raise UserNotAllowed(user_id)
            for field_name in unusable_lifetimes(response):
                log_event(
                    logging.WARNING,
                    "Kakao's login answer had no usable value; a conservative one is assumed",
                    field=field_name,
                )
            document = from_token_response(response, self._clock.now(), user_id)
            name = document_name(self._settings.token_object, user_id)
            if sender:
                name = self._settings.sender_object
                self._store_sender(name, document, response, secrets.claim, work, deadline)
            elif self._settings.sender and not self._settings.single_owner:
                self._refuse_if_sender(user_id, work)  # the allowlist's own check comes first
                self._store_over_anything(name, document, work)
            elif self._settings.single_owner:
                self._store_if_owner(name, document, response, secrets.claim, work, deadline)
            elif self._settings.per_user_claims:
                self._store_if_admitted(name, document, response, secrets.claim, work, deadline)
            else:
                self._store_over_anything(name, document, work)
        except UserNotAllowed:
            raise  # refused: its tokens were logged out already (or, owner unknown, kept)
        except KakaoTokenError as exc:
            fate = self._fate(name, document, deadline)
            if fate == _LANDED and document is not None:
                log_event(logging.WARNING, "login stored, though the write seemed to fail")
                return document, SENDER if sender else OWNER
            self._discard(response, exc, fate, deadline)
            raise
        log_event(
            logging.INFO,
            "login stored",
            user_id=user_id,
            document=name,
            expires_at=document.expires_at,
            refresh_token_expires_at=document.refresh_token_expires_at,
        )
        return document, SENDER if sender else OWNER

    def _identify(self, response: Mapping[str, Any], nonce: str, deadline: Deadline) -> int:
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
            return self._kakao.user_id(str(response.get("access_token", "")), deadline)
        except KakaoTokenError as exc:
            # Fail closed: whose login this is decides whether it may be stored at all.
            raise IdentityUnverified("the Kakao user id could not be checked") from exc

    def _store_if_owner(
        self,
        name: str,
        document: TokenDocument,
        response: Mapping[str, Any],
        claim_secret: str,
        work: Deadline,
        deadline: Deadline,
    ) -> None:
        """Store the login over the owner's own document, never over another's, and as the
        first owner or a new one only with a claim link (claim.py; the bundled demo needs none
        to begin). The read's version guards the write, so no stranger slips in between; the
        claim is spent before the write, once however often the write is tried."""
        user_id = document.user_id
        claimed: list[int | None] = []  # the previous owner, once the claim is spent
        previous: list[TokenDocument] = []

        def take_claim(owner: int | None) -> bool:
            if not claimed and claim_secret and self._spend_claim(claim_secret, work):
                claimed.append(owner)
            return bool(claimed)

        def vet(current: Stored | None) -> None:
            self._refuse_if_sender(user_id, work)
            stored_document = from_json_or_none(current.data) if current else None
            if current is None:
                if self._settings.demo or take_claim(None):
                    return
                self._revoke(response, user_id, "login refused: nobody owns this yet", deadline)
                raise ClaimRequired(user_id or 0, link_given=bool(claim_secret))
            owner = stored_document.user_id if stored_document else None
            if owner is None:
                owner = self._owner_of_stored_tokens(stored_document, work)
            if owner == user_id and owner is not None:
                return
            if take_claim(owner):
                previous[:] = [stored_document] if stored_document else []
                return
            if owner is None:
                # Whose it is cannot be told: refuse, but revoke nothing, since this may be the
                # owner, and a Kakao logout would end the stored login too.
                log_event(logging.WARNING, "login refused: stored document names no owner")
                raise NotTheOwner(user_id or 0, owner_known=False)
            self._revoke(response, user_id, "login refused: another user owns this", deadline)
            raise NotTheOwner(user_id or 0, owner_known=True)

        self._write_vetted(name, document, vet, lambda: bool(claimed), work, deadline)
        if claimed:
            log_event(
                logging.WARNING,
                "deployment claimed with a claim link",
                alert=ALERT_OWNERSHIP,
                user_id=user_id,
                previous_owner=claimed[0],
            )
        for old in previous:  # handed over: the previous owner's tokens end here too
            if old.fields.get("access_token") and old.user_id not in (user_id, self._sender_id()):
                self._log_out(old.access_token, deadline)

    def _store_if_admitted(
        self,
        name: str,
        document: TokenDocument,
        response: Mapping[str, Any],
        claim_secret: str,
        work: Deadline,
        deadline: Deadline,
    ) -> None:
        """Store a per-user login: over the user's own document (admitted before), or as a new
        account only with a claim link, spent before the write (the bundled demo needs none)."""
        user_id = document.user_id
        claimed: list[bool] = []

        def vet(current: Stored | None) -> None:
            if current is not None or self._settings.demo or claimed:
                return  # the name is this user's own: a document there admitted them before
            if claim_secret and self._spend_claim(claim_secret, work):
                claimed.append(True)
                return
            self._revoke(response, user_id, "login refused: no claim link for a new user", deadline)
            raise ClaimRequired(user_id or 0, link_given=bool(claim_secret))

        self._write_vetted(name, document, vet, lambda: bool(claimed), work, deadline)
        if claimed:
            log_event(
                logging.WARNING,
                "a new account admitted with a claim link",
                alert=ALERT_OWNERSHIP,
                user_id=user_id,
            )

    def _is_sender(self, user_id: int, claim_secret: str, work: Deadline) -> bool:
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

    def _owner_id(self, user_id: int, work: Deadline) -> int | None:
        """The stored owner's user id (None: no owner yet). For a document written without
        one, Kakao is asked whose its token is; if that cannot be told, NotTheOwner (refused
        with no logout: this may be the owner)."""
        stored = self._store.read(self._settings.token_object, work)
        document = from_json_or_none(stored.data) if stored else None
        if document is None:
            return None
        if document.user_id is not None:
            return document.user_id
        owner = self._owner_of_stored_tokens(document, work)
        if owner is None:
            raise NotTheOwner(user_id, owner_known=False)
        return owner

    def _stored_user(self, name: str, work: Deadline) -> int | None:
        stored = self._store.read(name, work)
        document = from_json_or_none(stored.data) if stored else None
        return document.user_id if document else None

    def _sender_id(self) -> int | None:
        """The stored sender's user id, when there is a sender; never raises (None)."""
        if not self._settings.sender:
            return None
        try:
            return self._stored_user(self._settings.sender_object, Deadline.after(2, self._clock))
        except KakaoTokenError:
            return None

    def _refuse_if_sender(self, user_id: int | None, work: Deadline) -> None:
        """OwnerIsSender when this account is the stored sender (no logout: that would end the
        sender's stored login too)."""
        if not self._settings.sender or user_id is None:
            return
        stored = self._store.read(self._settings.sender_object, work)
        sender = from_json_or_none(stored.data) if stored else None
        # A token-less marker (a sender whose login ended) holds nobody back; nor does a sender
        # document of the owner's own (the owner wins, see _is_sender).
        if sender is None or sender.user_id != user_id or not sender.fields.get("refresh_token"):
            return
        if self._stored_user(self._settings.token_object, work) == user_id:
            return
        log_event(logging.WARNING, "owner login refused: the account is the sender")
        raise OwnerIsSender(user_id)

    def _store_sender(
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
            if claimed or (claim_secret and self._spend_claim(claim_secret, work, SENDER)):
                claimed.append(True)
                previous[:] = [stored_document] if stored_document else []
                return
            self._revoke(response, user_id, "sender login refused: no sender link", deadline)
            raise ClaimRequired(user_id or 0, link_given=bool(claim_secret))

        self._write_vetted(name, document, vet, lambda: bool(claimed), work, deadline)
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
                self._log_out(old.access_token, deadline)

    def _write_vetted(
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
            self._write_over_read_version(name, to_json(document), vet, work)
        except KakaoTokenError:
            if not claimed() or self._fate(name, document, deadline) != _LANDED:
                raise

    def _spend_claim(self, secret: str, deadline: Deadline, login: str = OWNER) -> bool:
        name = claim_name(self._settings.token_object, login)
        stored = valid_claim(self._store, name, secret, self._clock.now(), deadline)
        if stored is None:
            return False
        try:
            return spend_claim(self._store, name, stored, deadline)
        except WriteConflict:
            return False  # spent (or replaced by a newer link) in between

    def _owner_of_stored_tokens(
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

    def _store_over_anything(self, name: str, document: TokenDocument, work: Deadline) -> None:
        """Who may store is settled (allowlist, or the user's own document): one write, no read.

        A refresh racing with it loses its compare-and-swap and finds the newer login (see
        refresh.py). Only if that one write fails (it may or may not have landed) does the login
        take the retried path: read the version, write conditionally.
        """
        data = to_json(document)
        if work.remaining() < _UNBOUNDED_WRITE_SECONDS:  # overwrite takes no deadline
            self._write_over_read_version(name, data, lambda current: None, work)
            return
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
        self._write_over_read_version(name, data, lambda current: None, work)

    def _write_over_read_version(
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

    def _fate(self, name: str, document: TokenDocument | None, deadline: Deadline) -> str:
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
            return _LANDED
        return _SAME_USER if latest.user_id == document.user_id else _NONE

    def _stored_fate(self, name: str, document: TokenDocument, deadline: Deadline) -> str:
        """_SAME_USER when ``name`` holds this user's live login, _UNKNOWN when it can't be
        read, else _NONE."""
        try:
            stored = self._store.read(name, deadline.earlier_by(LOGIN_CLEANUP_SECONDS / 2))
        except KakaoTokenError:
            return _UNKNOWN
        held = from_json_or_none(stored.data) if stored else None
        if held is not None and held.user_id == document.user_id:
            return _SAME_USER if held.fields.get("refresh_token") else _NONE
        return _NONE

    def _discard(
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
        self._log_out(str(response.get("access_token", "")), deadline)

    def _revoke(
        self, response: Mapping[str, Any], user_id: int | None, why: str, deadline: Deadline
    ) -> None:
        """Log out a refused login's fresh tokens at Kakao, so nothing usable is left behind."""
        log_event(logging.WARNING, why, user_id=user_id, alert=ALERT_OWNERSHIP)
        self._log_out(str(response.get("access_token", "")), deadline)

    def _log_out(self, access_token: str, deadline: Deadline) -> None:
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
