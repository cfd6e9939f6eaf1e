"""The use cases: start and finish a login, refresh, hand out a valid access token."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .clock import Clock, SystemClock
from .config import Settings
from .errors import (
    IdentityUnverified,
    KakaoTokenError,
    KakaoUnavailable,
    NoTokenStored,
    StorageError,
    UserNotAllowed,
    WriteConflict,
)
from .idtoken import id_token_subject
from .kakao import KakaoClient
from .log import log_event
from .refresh import Refresher, RefreshResult
from .state import LoginStart, nonce_for, start_login, verify_state
from .store import (
    USER_ID_PLACEHOLDER,
    TokenStore,
    document_name,
    read_document,
    template_matches,
    template_prefix,
)
from .tokens import TokenDocument, from_json, from_token_response, public_view, to_json

# Scripts asking for an access token get one valid for at least this long.
DEFAULT_ACCESS_TOKEN_LEEWAY = 300
_MAX_LOGIN_WRITE_ATTEMPTS = 5


@dataclass(frozen=True)
class RefreshOutcome:
    """One document's refresh: its result, or the error that stopped it."""

    name: str
    result: RefreshResult | None
    error: KakaoTokenError | None


@dataclass(frozen=True)
class LoginRedirect:
    """Where to send the browser, and the cookie that binds the login to it."""

    url: str
    start: LoginStart


class TokenService:
    """Everything the entry points and the command line do, over injected boundaries."""

    def __init__(
        self, settings: Settings, kakao: KakaoClient, store: TokenStore, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.kakao = kakao
        self.store = store
        self._clock = clock or SystemClock()
        self._refresher = Refresher(kakao, store, self._clock)

    def start_login(self) -> LoginRedirect:
        """A new login: fresh state and PKCE, and Kakao's authorize URL."""
        start = start_login(self.settings.pkce)
        wants_id_token = "openid" in self.settings.scope.split(",")
        url = self.kakao.authorize_url(
            start.state,
            scope=self.settings.scope,
            code_challenge=start.code_challenge,
            nonce=start.nonce if wants_id_token else "",
        )
        return LoginRedirect(url, start)

    def finish_login(self, code: str, state: str, cookies: Mapping[str, str]) -> TokenDocument:
        """Verify the state, exchange the code, check who it is, store the document."""
        verifier = verify_state(state, cookies)  # before anything reaches Kakao
        response = self.kakao.exchange_code(code, verifier)
        user_id = self._identify(response, state)
        if self.settings.allowed_user_ids and user_id not in self.settings.allowed_user_ids:
            self._revoke(response, user_id)
            raise UserNotAllowed(user_id or 0)
        document = from_token_response(response, self._clock.now(), user_id)
        name = document_name(self.settings.token_object, user_id)
        self._store_login(name, document)
        log_event(
            logging.INFO,
            "login stored",
            user_id=user_id,
            document=name,
            expires_at=document.expires_at,
            refresh_token_expires_at=document.refresh_token_expires_at,
        )
        return document

    def refresh_user(self, user_id: int | None = None, *, force: bool = False) -> RefreshResult:
        """Refresh one user's document if it is due (or always, with ``force``)."""
        return self._ensure_fresh(self.document_name(user_id), force)

    def sweep(self, *, force: bool = False) -> list[RefreshOutcome]:
        """Refresh every stored document; one failure does not stop the others."""
        names = self.stored_names()
        if not names:
            raise NoTokenStored("no token stored yet")
        outcomes = []
        for name in names:
            try:
                outcomes.append(RefreshOutcome(name, self._ensure_fresh(name, force), None))
            except KakaoTokenError as exc:
                outcomes.append(RefreshOutcome(name, None, exc))
        return outcomes

    def _ensure_fresh(self, name: str, force: bool) -> RefreshResult:
        return self._refresher.ensure_fresh(
            name, margin_seconds=self.settings.refresh_margin_seconds, force=force
        )

    def forget_user(self, user_id: int) -> str | None:
        """Delete what is stored for a user whose tokens died (unlinked at Kakao, logged out).

        Returns the deleted document's name, or None when nothing of that user's was stored. A
        single TOKEN_OBJECT is deleted only if it is that user's. Every delete carries the
        version just read, so a document whose tokens changed since (a new login) is kept.
        """
        name = document_name(self.settings.token_object, user_id)
        per_user = USER_ID_PLACEHOLDER in self.settings.token_object
        first_read: bytes | None = None
        for _ in range(_MAX_LOGIN_WRITE_ATTEMPTS):
            stored = self.store.read(name)
            if stored is None or not (per_user or _owner(stored.data) == user_id):
                return None
            tokens = _token_fingerprint(stored.data)
            if first_read is not None and tokens != first_read:
                return None  # new tokens landed after the first read: not the dead ones
            first_read = tokens
            try:
                return name if self.store.delete(name, stored.version) else None
            except WriteConflict:  # bookkeeping (a refresh lease, login_error): read again
                continue
        raise StorageError(f"gave up deleting {name}: it kept changing")

    def now(self) -> int:
        """The service clock's time (for summaries computed by callers)."""
        return self._clock.now()

    def access_token(
        self, user_id: int | None = None, leeway_seconds: int = DEFAULT_ACCESS_TOKEN_LEEWAY
    ) -> str:
        """A valid access token for scripts, refreshed first when it expires within the leeway."""
        return self.valid_document(self.document_name(user_id), leeway_seconds).access_token

    def valid_document(self, name: str, leeway_seconds: int) -> TokenDocument:
        """The document ``name`` with an access token valid for at least ``leeway_seconds``.

        Refreshed first if it is not, under the lease (one Kakao call for any number of callers).
        """
        margin = max(leeway_seconds, 0)
        return self._refresher.ensure_fresh(name, margin_seconds=margin).document

    def status(self) -> list[dict[str, Any]]:
        """Non-secret facts about every stored document."""
        now = self._clock.now()
        views = []
        for name in self.stored_names():
            _, document = read_document(self.store, name)
            views.append({"document": name, **public_view(document, now)})
        return views

    def send_memo(self, text: str, user_id: int | None = None) -> None:
        """Send a KakaoTalk text to the token's owner: proves the whole chain works."""
        token = self.access_token(user_id)
        link = self.settings.redirect_uri or "https://developers.kakao.com"
        self.kakao.send_memo(token, text, link)

    def document_name(self, user_id: int | None) -> str:
        """The document for a user; with one stored user and no id given, that one."""
        template = self.settings.token_object
        if user_id is None and USER_ID_PLACEHOLDER in template:
            names = self.stored_names()
            if len(names) == 1:
                return names[0]
            raise NoTokenStored(
                f"{len(names)} users are stored under {template}: name one with --user USER_ID"
            )
        return document_name(template, user_id)

    def stored_names(self) -> list[str]:
        """Every stored document that belongs to TOKEN_OBJECT."""
        template = self.settings.token_object
        matches = template_matches(template)
        return [name for name in self.store.names(template_prefix(template)) if matches(name)]

    def _identify(self, response: Mapping[str, Any], state: str) -> int | None:
        """The Kakao user id: from the checked ID token, else from /v2/user/me."""
        id_token = response.get("id_token")
        if isinstance(id_token, str) and id_token:
            try:
                return id_token_subject(
                    id_token,
                    issuer=self.settings.auth_base_url,
                    audience=self.settings.rest_api_key,
                    nonce=nonce_for(state),
                    now=self._clock.now(),
                )
            except KakaoUnavailable as exc:  # a token for another app or login: never store it
                raise IdentityUnverified(str(exc)) from exc
        try:
            return self.kakao.user_id(str(response.get("access_token", "")))
        except KakaoTokenError as exc:
            needs_id = (
                self.settings.allowed_user_ids or USER_ID_PLACEHOLDER in self.settings.token_object
            )
            if needs_id:  # fail closed: an unchecked identity must not be stored
                raise IdentityUnverified("the Kakao user id could not be checked") from exc
            log_event(logging.WARNING, "user id lookup failed; storing without user_id")
            return None

    def _revoke(self, response: Mapping[str, Any], user_id: int | None) -> None:
        log_event(logging.WARNING, "login refused: user not allowed", user_id=user_id)
        try:
            self.kakao.logout(str(response.get("access_token", "")))
        except KakaoTokenError as exc:
            log_event(logging.WARNING, "could not revoke the refused login", **_failure_facts(exc))

    def _store_login(self, name: str, document: TokenDocument) -> None:
        """A new login replaces whatever is stored: one write, no read before it.

        A refresh racing with it loses its compare-and-swap and finds the newer login (see
        refresh.py). Only if that one write fails (it may or may not have landed) does the login
        take the retried path: read the version, write conditionally.
        """
        data = to_json(document)
        try:
            self.store.overwrite(name, data)
            return
        except StorageError as exc:
            log_event(
                logging.WARNING,
                "login write failed; retrying with read and conditional write",
                document=name,
                error=type(exc.__cause__ or exc).__name__,
            )
        for _ in range(_MAX_LOGIN_WRITE_ATTEMPTS):
            current = self.store.read(name)
            try:
                self.store.write(name, data, current.version if current else None)
                return
            except WriteConflict:
                continue
        raise StorageError(f"gave up storing the login: {name} kept changing")


def _owner(data: bytes) -> int | None:
    """Whose document this is; None when it names nobody or cannot be read."""
    try:
        return from_json(data).user_id
    except StorageError:
        return None


def _token_fingerprint(data: bytes) -> bytes:
    """The tokens a document holds, compared to tell a new login from bookkeeping writes."""
    try:
        document = from_json(data)
    except StorageError:
        return data
    return f"{document.access_token}\n{document.refresh_token}".encode()


def _failure_facts(exc: KakaoTokenError) -> dict[str, Any]:
    return {"error": type(exc).__name__, "error_code": getattr(exc, "code", "")}
