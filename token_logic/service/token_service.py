"""TokenService, the one face of the use cases: start and finish a login (login.py), refresh
(refresh.py) and sweep (sweep.py), hand out a valid access token, end a login (ending.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..budget import UNLINK_WEBHOOK_SECONDS, Deadline, request_deadline
from ..clock import DEFAULT_ACCESS_TOKEN_LEEWAY, Clock, SystemClock
from ..config import USER_ID_PLACEHOLDER, Settings
from ..errors import NoTokenStored, UserIdRequired
from ..kakao.api import KakaoClient
from ..kakao.state import LoginStart, start_login
from ..logins import OWNER, SENDER
from ..storage.protocol import (
    TokenStore,
    document_name,
    read_document,
    stored_document,
    template_matches,
    template_prefix,
)
from ..tokens import UNLINKED, TokenDocument

if TYPE_CHECKING:  # pragma: no cover
    from ..storage.facts import Listed
    from .claim import IssuedClaim
    from .ending import LoginEnded, LoginEnder
    from .login import LoginFinisher
    from .refresh import Refresher, RefreshResult
    from .shards import Shard
    from .sweep import RefreshOutcome


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
        self._parts_lock = threading.Lock()
        self._parts: tuple[Refresher, LoginFinisher, LoginEnder] | None = None

    def warm_up(self) -> None:
        """Load and build the use cases now (after the first answer: a login start, the first
        request of most instances, needs none of them)."""
        self._use_cases()

    def _use_cases(self) -> tuple[Refresher, LoginFinisher, LoginEnder]:
        """The refresher, the login finisher and the ender, built on first use: importing them
        costs a cold start more than the whole login start does (BENCHMARKS.md section 1)."""
        with self._parts_lock:
            if self._parts is None:
                from .ending import LoginEnder
                from .login import LoginFinisher
                from .refresh import Refresher

                refresher = Refresher(self.kakao, self.store, self._clock)
                self._parts = (
                    refresher,
                    LoginFinisher(self.settings, self.kakao, self.store, self._clock),
                    LoginEnder(self.settings, self.kakao, self.store, self._clock, refresher),
                )
            return self._parts

    @property
    def _refresher(self) -> Refresher:
        return self._use_cases()[0]

    @property
    def _login(self) -> LoginFinisher:
        return self._use_cases()[1]

    @property
    def _ender(self) -> LoginEnder:
        return self._use_cases()[2]

    def start_login(self, claim: str = "") -> LoginRedirect:
        """A new login: fresh state and PKCE, and Kakao's authorize URL; ``claim`` is a claim
        link's secret the login carries to its end (claim.py)."""
        start = start_login(self.settings.pkce, claim)
        url = self.kakao.authorize_url(
            start.state,
            scope=self.settings.scope,
            code_challenge=start.code_challenge,
            # Always sent: an ID token arriving is then checked against it whatever the scope.
            nonce=start.nonce,
        )
        return LoginRedirect(url, start)

    def issue_claim(self, login: str = OWNER) -> IssuedClaim:
        """A new claim link's secret for the owner's or the sender's login (the older link of
        that login stops working); see claim.py."""
        from .claim import claim_name, issue_claim

        if login == SENDER and not self.settings.sender:
            raise NoTokenStored(
                "this deployment has no sender: set KAKAO_SENDER=1 in deploy.env and run "
                "./deploy.sh / 보내는 계정이 설정되지 않았습니다: deploy.env에 KAKAO_SENDER=1"
            )
        name = claim_name(self.settings.token_object, login)
        return issue_claim(self.store, name, self._clock.now(), login)

    def claim_is_valid(self, secret: str) -> bool:
        """Whether ``secret`` is a current claim's (the owner's or the sender's), unexpired; it
        is spent only at the end of the login it starts."""
        from .claim import claim_name, valid_claim

        logins = (OWNER, SENDER) if self.settings.sender else (OWNER,)
        deadline = self.deadline()
        return any(
            valid_claim(
                self.store,
                claim_name(self.settings.token_object, login),
                secret,
                self._clock.now(),
                deadline,
            )
            is not None
            for login in logins
        )

    def finish_login(self, code: str, state: str, cookies: Mapping[str, str]) -> TokenDocument:
        """Verify the state, exchange the code, check who it is, store the document."""
        return self.finish_login_as(code, state, cookies)[0]

    def finish_login_as(
        self, code: str, state: str, cookies: Mapping[str, str]
    ) -> tuple[TokenDocument, str]:
        """finish_login, and whose login it was: logins.OWNER or SENDER."""
        return self._login.finish(code, state, cookies, self.deadline())

    def deadline(self) -> Deadline:
        """The deadline of a request starting now (see budget.py)."""
        return request_deadline(self.settings.function_timeout_seconds, self._clock)

    def refresh_user(self, user_id: int | None = None, *, force: bool = False) -> RefreshResult:
        """Refresh one user's document if it is due (or always, with ``force``)."""
        return self._ensure_fresh(self.document_name(user_id), force, self.deadline())

    def sweep(
        self, *, force: bool = False, shard: Shard | None = None, deadline: Deadline | None = None
    ) -> list[RefreshOutcome]:
        """Refresh every stored document that is due (in ``shard``, which lists only its own:
        shards.py), in parallel; one failure does not stop the others, and what the deadline
        (the request's, or one from now) leaves is deferred (sweep.py)."""
        from .shards import Shard
        from .sweep import list_for_sweep, run_sweep

        deadline = deadline or self.deadline()
        template = self.settings.token_object
        shard = shard or Shard()
        listed = list_for_sweep(
            self.store,
            template_prefix(template),
            template_matches(template),
            deadline,
            shard.part(template),
        )
        if shard.index == 0:  # a single document's shard holds the sender's beside it
            listed += self._sender_listed(deadline)
        return run_sweep(
            self.store,
            listed,
            lambda name, within: self._ensure_fresh(name, force, within),
            now=self._clock.now(),
            margin_seconds=self.settings.refresh_margin_seconds,
            deadline=deadline,
            workers=self.settings.sweep_workers,
            force=force,
        )

    def _ensure_fresh(self, name: str, force: bool, deadline: Deadline) -> RefreshResult:
        return self._refresher.ensure_fresh(
            name,
            margin_seconds=self.settings.refresh_margin_seconds,
            deadline=deadline,
            force=force,
        )

    def logout(self, user_id: int | None = None, login: str = OWNER) -> TokenDocument:
        """Log the stored login (the owner's, or the sender's) out at Kakao (best effort) and
        remove its tokens, with every older version the store kept; a single document stays
        its owner's, as a token-less marker (ending.py). With nothing stored, NoTokenStored."""
        return self._ender.logout(self.document_name(user_id, login), self.deadline())

    def forget_user(
        self, user_id: int, within_seconds: float = UNLINK_WEBHOOK_SECONDS
    ) -> str | None:
        """Delete what is stored for a user whose tokens died (unlinked at Kakao, logged out).

        Returns the deleted document's name, or None when nothing of that user's was stored
        (or only a token-less marker: already ended, left as it is). A single TOKEN_OBJECT is
        deleted only if it is that user's. Every delete carries the version just read, so a
        document whose tokens changed since (a new login) is kept. The older versions the
        store kept go too (see forget_old_versions).
        """
        deadline = Deadline.after(within_seconds, self._clock)  # Kakao waits 3 s for the answer
        return self._ender.end(user_id, deadline, reason=UNLINKED).document

    def webhook_deadline(self) -> Deadline:
        """The deadline of a Kakao webhook request starting now (Kakao waits 3 s)."""
        return Deadline.after(UNLINK_WEBHOOK_SECONDS, self._clock)

    def end_login(
        self,
        user_id: int,
        deadline: Deadline,
        *,
        reason: str = UNLINKED,
        one_token: bool = False,
        clean_old_versions: bool = True,
    ) -> LoginEnded:
        """A Kakao event says this user's tokens ended (an unlink, a revocation): forget them,
        unless the stored login is newer than the event (LoginEnder.end says how)."""
        return self._ender.end(
            user_id,
            deadline,
            reason=reason,
            unless_live=True,
            one_token=one_token,
            clean_old_versions=clean_old_versions,
        )

    def forget_old_versions(self, name: str, user_id: int, deadline: Deadline) -> None:
        """The older versions of an ended login's document (failures logged, not raised)."""
        self._ender.forget_old_versions(name, user_id, deadline)

    def now(self) -> int:
        """The service clock's time (for summaries computed by callers)."""
        return self._clock.now()

    def access_token(
        self, user_id: int | None = None, leeway_seconds: int = DEFAULT_ACCESS_TOKEN_LEEWAY
    ) -> str:
        """A valid access token for scripts, refreshed first when it expires within the leeway."""
        return self.valid_document(self.document_name(user_id), leeway_seconds).access_token

    def valid_document(
        self, name: str, leeway_seconds: int, deadline: Deadline | None = None
    ) -> TokenDocument:
        """The document ``name`` with an access token valid for at least ``leeway_seconds``.

        Refreshed first if it is not, under the lease (one Kakao call for any number of callers),
        all within ``deadline`` (a new request's when not given).
        """
        margin = max(leeway_seconds, 0)
        return self._refresher.ensure_fresh(
            name, margin_seconds=margin, deadline=deadline or self.deadline()
        ).document

    def stored_user_id(self, deadline: Deadline) -> int | None:
        """Whose login the single document holds (the owner's id), or None: nothing stored,
        or no id in it. The sender's messages go to this user."""
        document = stored_document(self.store, self.settings.token_object, deadline)
        return document.user_id if document else None

    def status(self) -> list[dict[str, Any]]:
        """Non-secret facts about every stored document."""
        now = self._clock.now()
        views = []
        for name in self.stored_names():
            _, document = read_document(self.store, name)
            login = SENDER if name == self.settings.sender_object else OWNER
            views.append({"document": name, "login": login, **document.facts().public(now)})
        return views

    def send_memo(self, text: str, user_id: int | None = None) -> None:
        """Send a KakaoTalk text to the token's owner: proves the whole chain works."""
        token = self.access_token(user_id)
        self.kakao.send_memo(token, text, self.settings.memo_link)

    def document_name(self, user_id: int | None, login: str = OWNER) -> str:
        """The document for a user, or the sender's (``login`` SENDER; no user id then). With
        one document per user and no id given, the one allowed user's
        (Settings.default_user_id), never whichever document happens to be stored: with only a
        stranger's stored, the owner's scripts would get the stranger's token."""
        template = self.settings.token_object
        if login == SENDER:
            if not self.settings.sender:
                raise NoTokenStored(
                    "this deployment has no sender (KAKAO_SENDER=1 in deploy.env, then "
                    "./deploy.sh) / 보내는 계정이 설정되지 않았습니다"
                )
            return self.settings.sender_object
        if user_id is None and USER_ID_PLACEHOLDER in template:
            user_id = self.settings.default_user_id
            if user_id is None:
                raise UserIdRequired(
                    f"this deployment keeps one login per Kakao user ({template}): name the "
                    "user (user_id=, the Action's user_id input, or --user USER_ID)"
                )
        return document_name(template, user_id)

    def stored_names(self, deadline: Deadline | None = None) -> list[str]:
        """Every stored document that belongs to TOKEN_OBJECT, listed within ``deadline``."""
        from .sweep import list_for_sweep

        template = self.settings.token_object
        deadline = deadline or self.deadline()
        listed = list_for_sweep(
            self.store, template_prefix(template), template_matches(template), deadline
        )
        return sorted(item.name for item in listed + self._sender_listed(deadline))

    def _sender_listed(self, deadline: Deadline) -> list[Listed]:
        """The sender's document as a listing holds it (with its facts), if one is stored: a
        listing of its own, since no TOKEN_OBJECT prefix covers it (logins.py)."""
        from .sweep import list_for_sweep

        name = self.settings.sender_object
        if not name:
            return []
        return list_for_sweep(self.store, name, lambda found: found == name, deadline)


# How an edge gets its instance's one service: built on first use (main.py), so that a broken
# configuration becomes a clean error page instead of a failed import.
ServiceFactory = Callable[[], TokenService]
