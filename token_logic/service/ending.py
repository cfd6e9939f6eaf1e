"""Ending a login: our logout, and Kakao's events that ended a user's tokens (the unlink
webhook, the account status webhook).

Kakao's logout needs a live access token to end the refresh token too, so a logout refreshes a
nearly expired one first. An event may arrive after the person logged in again, so the stored
access token is checked with Kakao before the login ends (``unless_live``). A single document
keeps its owner as a token-less marker saying why the login ended; per-user documents are
deleted. The older versions the store kept go too: each holds a refresh token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..budget import MAX_CONFLICT_ATTEMPTS, Deadline
from ..clock import Clock
from ..config import USER_ID_PLACEHOLDER, Settings
from ..errors import (
    KakaoError,
    KakaoTokenError,
    KakaoUnavailable,
    NoTokenStored,
    StorageError,
    WriteConflict,
)
from ..kakao.api import KakaoClient
from ..log import log_event
from ..logins import sender_document_name
from ..storage.protocol import TokenStore, document_name
from ..tokens import TokenDocument, from_json_or_none, owner_marker, to_json
from .refresh import Refresher

_LOGOUT_MIN_VALID_SECONDS = 60
# What a single document's marker says when Kakao ended the login by an unlink (forget_user).


@dataclass(frozen=True)
class LoginEnded:
    """What ending a login did: ``document``, the one whose tokens it removed (deleted, or replaced
    by its owner's marker), or None. With None: ``kept`` when the stored login stays (Kakao
    still accepts its access token: a login newer than the event or, when the event named one
    token, another token; or that token expired and the event named one token);
    ``already_ended`` when the stored document held no tokens. ``kakao_says`` is what Kakao
    answered about the stored access token: live, dead, unknown, or expired (by the document's
    own clock: not asked); "" when not asked."""

    document: str | None
    kept: bool = False
    already_ended: bool = False
    kakao_says: str = ""


class LoginEnder:
    """Ends stored logins, over the service's boundaries."""

    def __init__(
        self,
        settings: Settings,
        kakao: KakaoClient,
        store: TokenStore,
        clock: Clock,
        refresher: Refresher,
    ) -> None:
        self.settings = settings
        self.kakao = kakao
        self.store = store
        self._clock = clock
        self._refresher = refresher

    def logout(self, name: str, deadline: Deadline) -> TokenDocument:
        """Log the stored login out at Kakao (best effort) and remove its tokens, with every
        older version the store kept of the document (each holds a refresh token).

        A single document with a known owner stays the owner's: it becomes a token-less marker
        (the next login must be the owner's or carry a claim link; handing over is explicit).
        Per-user documents, and one naming no owner, are deleted. The write or delete carries
        the version read, and is tried again if bookkeeping (a lease) moved it. With nothing
        stored, the older versions an interrupted logout left are deleted, and NoTokenStored
        is raised.
        """
        for _ in range(MAX_CONFLICT_ATTEMPTS):
            stored = self.store.read(name, deadline)
            if stored is None:
                self.store.delete_old_versions(name, deadline)
                raise NoTokenStored(f"no token stored at {name}")
            document = from_json_or_none(stored.data)
            if document is not None and document.access_token:
                self._logout_at_kakao(self._live_for_logout(name, document, deadline))
            owner = document.user_id if document else None
            # The owner's single document stays theirs; the sender's is deleted (a new sender
            # link admits the next one, and that account may then become the owner).
            keep_owner = (
                owner is not None
                and USER_ID_PLACEHOLDER not in self.settings.token_object
                and name != sender_document_name(self.settings.token_object)
            )
            try:
                if keep_owner:
                    marker = owner_marker(owner or 0, self._clock.now(), "logged_out")
                    self.store.write(name, to_json(marker), stored.version, deadline)
                else:
                    self.store.delete(name, stored.version, deadline)
            except WriteConflict:
                continue
            old_versions = self.store.delete_old_versions(name, deadline)
            log_event(
                logging.INFO,
                "logged out and deleted",
                document=name,
                user_id=document.user_id if document else None,
                old_versions_deleted=old_versions,
            )
            return document or TokenDocument({})
        raise StorageError(f"gave up deleting {name}: it kept changing")

    def _live_for_logout(
        self, name: str, document: TokenDocument, deadline: Deadline
    ) -> TokenDocument:
        """A document whose access token Kakao still takes: Kakao's logout needs a live one to
        end the refresh token too, else a copied refresh token would outlive the logout."""
        if document.expires_at - self._clock.now() > _LOGOUT_MIN_VALID_SECONDS:
            return document
        try:
            return self._refresher.ensure_fresh(
                name, margin_seconds=_LOGOUT_MIN_VALID_SECONDS, deadline=deadline
            ).document
        except KakaoTokenError:  # dead already, or Kakao down: log out with what we have
            return document

    def _logout_at_kakao(self, document: TokenDocument) -> None:
        try:
            self.kakao.logout(document.access_token)
        except KakaoTokenError as exc:  # an expired access token, Kakao down: delete anyway
            log_event(
                logging.WARNING,
                "Kakao logout failed; deleting the stored document anyway",
                user_id=document.user_id,
                **_failure_facts(exc),
            )

    def end(
        self,
        user_id: int,
        deadline: Deadline,
        *,
        reason: str,
        unless_live: bool = False,
        one_token: bool = False,
        clean_old_versions: bool = True,
    ) -> LoginEnded:
        """Forget this user's stored tokens: the user's document is deleted, or a single
        document becomes its owner's marker saying ``reason``. With ``unless_live`` (a Kakao event
        said the tokens ended: an unlink, a revocation), not when the stored login is newer than
        the event.

        With ``unless_live``: events can arrive late, after the person logged in again. Kakao ends
        every token of a user when it unlinks or revokes them all, so a stored access token Kakao
        still accepts for that user is a newer login: it is kept. When Kakao cannot be asked in time
        (down, slow, a temporary error), the document is forgotten all the same: the event is
        Kakao's (signed, or carrying the admin key), a late one is rare, and keeping the tokens of a
        person who left would be the worse mistake; a wrongly ended login costs one login, with an
        alert.

        ``one_token`` (only with ``unless_live``; ValueError without it): the event ended one token
        (token-revoked), maybe not the stored one. The login then ends only when Kakao says the
        stored access token is dead, and KakaoUnavailable says Kakao could not tell in time (the
        sender should try again): ending a live login over another token would protect no one. A
        stored access token already expired by the document's own clock proves nothing either way
        (Kakao calls it dead regardless): the login is kept, and if the revoked token was its
        refresh token, the next refresh finds it dead and alerts.

        A document that holds no tokens (logged out, or ended by an earlier event: both webhooks
        report an unlink) is already ended: left as it is, no write. ``clean_old_versions``
        False leaves the older versions to the caller (forget_old_versions), after its own write.
        """
        if one_token and not unless_live:
            raise ValueError("one_token needs unless_live: only Kakao can say which token died")
        ended = LoginEnded(None)
        # The user may be the owner or the sender (logins.py): each document is checked, and
        # only the one that is this user's ends.
        template = self.settings.token_object
        # A sender's document is ended even when KAKAO_SENDER was turned off since: Kakao's
        # word that a user left holds for every login of theirs we keep.
        sender = "" if USER_ID_PLACEHOLDER in template else sender_document_name(template)
        ended = self._end_at(
            document_name(template, user_id),
            user_id,
            deadline,
            reason,
            unless_live,
            one_token,
            clean_old_versions,
        )
        if not sender:
            return ended
        # Every document of this user: one account may hold both logins. Once the first has
        # ended, the sender's is best effort within what is left of the deadline.
        try:
            also = self._end_at(
                sender, user_id, deadline, reason, unless_live, one_token, clean_old_versions
            )
        except KakaoTokenError as exc:
            if ended == LoginEnded(None):
                raise
            log_event(
                logging.WARNING,
                "the sender's document of this user is left for the next event",
                user_id=user_id,
                error=type(exc).__name__,
            )
            return ended
        return ended if ended != LoginEnded(None) else also

    def _end_at(
        self,
        name: str,
        user_id: int,
        deadline: Deadline,
        reason: str,
        unless_live: bool,
        one_token: bool,
        clean_old_versions: bool,
    ) -> LoginEnded:
        """``end`` at one document: only if it is this user's (see end)."""
        # Per-user documents (named by the user) and the sender's are deleted; the owner's
        # single one is marked. Only a per-user name says by itself whose it is.
        per_user = USER_ID_PLACEHOLDER in self.settings.token_object
        delete = per_user or name == sender_document_name(self.settings.token_object)
        first_read: bytes | None = None
        kakao_says = ""
        for _ in range(MAX_CONFLICT_ATTEMPTS):
            stored = self.store.read(name, deadline)
            document = from_json_or_none(stored.data) if stored else None
            if stored is None or not (per_user or (document and document.user_id == user_id)):
                return LoginEnded(None)
            if document and not (document.access_token or document.refresh_token):
                # Ended before (our logout, the other webhook): its marker keeps saying why.
                return LoginEnded(None, already_ended=True, kakao_says=kakao_says)
            tokens = _token_fingerprint(document, stored.data)
            if first_read is not None and tokens != first_read:
                # New tokens landed after the first read: not the dead ones.
                return LoginEnded(None, kept=True, kakao_says=kakao_says)
            if first_read is None and unless_live and document:
                kakao_says = self._token_state(document, user_id, deadline)
                if kakao_says == "live" or (one_token and kakao_says == "expired"):
                    return LoginEnded(None, kept=True, kakao_says=kakao_says)
                if one_token and kakao_says != "dead":
                    raise KakaoUnavailable(
                        "timeout", "Kakao could not say whether the stored token is the revoked one"
                    )
            first_read = tokens
            try:
                # The sender's document goes only when Kakao said its token is dead (or could not
                # be asked because it expired): an event that may be older than a new login of the
                # sender leaves the marker, so that login would not need a new link.
                if delete and (per_user or kakao_says in ("", "dead", "expired")):
                    if not self.store.delete(name, stored.version, deadline):
                        return LoginEnded(None)
                else:
                    # A single document keeps its owner: its tokens go, but only that user may
                    # log in again, so an unlink never leaves the deployment to whoever comes next.
                    marker = to_json(owner_marker(user_id, self._clock.now(), reason))
                    self.store.write(name, marker, stored.version, deadline)
            except WriteConflict:  # bookkeeping (a refresh lease, login_error): read again
                continue
            if clean_old_versions:
                self.forget_old_versions(name, user_id, deadline)
            return LoginEnded(name, kakao_says=kakao_says)
        raise StorageError(f"gave up deleting {name}: it kept changing")

    def _token_state(self, document: TokenDocument, user_id: int, deadline: Deadline) -> str:
        """What Kakao says of a stored access token: ``live`` (valid, this user's), ``dead``
        (-401: ended or expired), or ``unknown`` (no answer in the time the webhook can spare
        before its storage work, a temporary error, a valid token of someone else, no token);
        ``expired`` without asking when the document says so (Kakao's -401 would tell nothing).
        """
        if not document.access_token:
            return "unknown"
        if document.expires_at <= self._clock.now():
            return "expired"
        seconds = deadline.webhook_kakao_seconds()
        if not seconds:
            return "unknown"
        try:
            info = self.kakao.access_token_info(document.access_token, seconds)
        except KakaoError as exc:
            return "dead" if exc.status == 401 or exc.code == "-401" else "unknown"
        except KakaoTokenError:  # unreachable, timed out, 5xx
            return "unknown"
        return "live" if info.get("id") == user_id else "unknown"

    def forget_old_versions(self, name: str, user_id: int, deadline: Deadline) -> None:
        """The older versions of an ended login's document, whose tokens Kakao already ended.

        A failure (the webhook's 3 seconds ran out, storage faults) is logged, not raised: the
        live document is already done, Kakao would only pause the webhook over an error, and
        the bucket's lifecycle rule deletes old versions within days anyway (deploy.sh).
        """
        try:
            deleted = self.store.delete_old_versions(name, deadline)
        except KakaoTokenError as exc:
            log_event(
                logging.WARNING,
                "the unlinked user's tokens were removed, but older versions of the document "
                "are left until the bucket's lifecycle rule deletes them",
                document=name,
                user_id=user_id,
                error=type(exc).__name__,
            )
            return
        if deleted:
            log_event(logging.INFO, "older versions deleted", document=name, count=deleted)


def _token_fingerprint(document: TokenDocument | None, data: bytes) -> bytes:
    """The tokens a document holds, compared to tell a new login from bookkeeping writes
    (the bytes themselves when they are not a document)."""
    if document is None:
        return data
    return f"{document.access_token}\n{document.refresh_token}".encode()


def _failure_facts(exc: KakaoTokenError) -> dict[str, Any]:
    return {"error": type(exc).__name__, "error_code": getattr(exc, "code", "")}
