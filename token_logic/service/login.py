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
- The sender (KAKAO_SENDER=1), a second account beside a single document's owner: told apart
  and stored by sender_login.py, in its own document; one account never holds both logins.
A login whose user id could not be established is never stored (fail closed).

A login has the request's deadline (budget.py) like everything else. Once Kakao has issued
tokens, a login that cannot be stored in time (who it is unknown, storage down, out of time)
is logged out at Kakao, so no live token is left in nobody's hands; if the write's fate is
unknown, a read settles it first (a login that did land is kept; login_writer.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..budget import LOGIN_CLEANUP_SECONDS, Deadline
from ..clock import Clock
from ..config import Settings
from ..errors import (
    ClaimRequired,
    IdentityUnverified,
    KakaoTokenError,
    KakaoUnavailable,
    NotTheOwner,
    StorageError,
    UserNotAllowed,
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
from .login_writer import LANDED, LoginWriter
from .sender_login import SenderAdmission

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
        self._writer = LoginWriter(settings, kakao, store, clock)
        self._sender = SenderAdmission(settings, store, clock, self._writer)

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
            sender = self._settings.sender and self._sender.is_sender(user_id, secrets.claim, work)
            allowed = self._settings.allowed_user_ids
            if allowed and user_id not in allowed and not sender:
                self._writer.revoke(response, user_id, "login refused: user not allowed", deadline)
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
                self._sender.store_sender(name, document, response, secrets.claim, work, deadline)
            elif self._settings.sender and not self._settings.single_owner:
                # The allowlist's own check comes first.
                self._sender.refuse_if_sender(user_id, work)
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
            fate = self._writer.fate(name, document, deadline)
            if fate == LANDED and document is not None:
                log_event(logging.WARNING, "login stored, though the write seemed to fail")
                return document, SENDER if sender else OWNER
            self._writer.discard(response, exc, fate, deadline)
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
            if not claimed and claim_secret and self._writer.redeem_claim(claim_secret, work):
                claimed.append(owner)
            return bool(claimed)

        def vet(current: Stored | None) -> None:
            self._sender.refuse_if_sender(user_id, work)
            stored_document = from_json_or_none(current.data) if current else None
            if current is None:
                if self._settings.demo or take_claim(None):
                    return
                self._writer.revoke(
                    response, user_id, "login refused: nobody owns this yet", deadline
                )
                raise ClaimRequired(user_id or 0, link_given=bool(claim_secret))
            owner = stored_document.user_id if stored_document else None
            if owner is None:
                owner = self._writer.owner_of_stored_tokens(stored_document, work)
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
            self._writer.revoke(
                response, user_id, "login refused: another user owns this", deadline
            )
            raise NotTheOwner(user_id or 0, owner_known=True)

        self._writer.write_vetted(name, document, vet, lambda: bool(claimed), work, deadline)
        if claimed:
            log_event(
                logging.WARNING,
                "deployment claimed with a claim link",
                alert=ALERT_OWNERSHIP,
                user_id=user_id,
                previous_owner=claimed[0],
            )
        for old in previous:  # handed over: the previous owner's tokens end here too
            if not old.fields.get("access_token"):
                continue  # nothing to end (and no need to read who the sender is)
            if old.user_id != user_id and not self._sender.may_be_sender(old.user_id, deadline):
                self._writer.log_out(old.access_token, deadline)

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
            if claim_secret and self._writer.redeem_claim(claim_secret, work):
                claimed.append(True)
                return
            self._writer.revoke(
                response, user_id, "login refused: no claim link for a new user", deadline
            )
            raise ClaimRequired(user_id or 0, link_given=bool(claim_secret))

        self._writer.write_vetted(name, document, vet, lambda: bool(claimed), work, deadline)
        if claimed:
            log_event(
                logging.WARNING,
                "a new account admitted with a claim link",
                alert=ALERT_OWNERSHIP,
                user_id=user_id,
            )

    def _store_over_anything(self, name: str, document: TokenDocument, work: Deadline) -> None:
        """Who may store is settled (allowlist, or the user's own document): one write, no read.

        A refresh racing with it loses its compare-and-swap and finds the newer login (see
        refresh.py). Only if that one write fails (it may or may not have landed) does the login
        take the retried path: read the version, write conditionally.
        """
        data = to_json(document)
        if work.remaining() < _UNBOUNDED_WRITE_SECONDS:  # overwrite takes no deadline
            self._writer.write_over_read_version(name, data, lambda current: None, work)
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
        self._writer.write_over_read_version(name, data, lambda current: None, work)
