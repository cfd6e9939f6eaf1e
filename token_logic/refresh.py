"""Refreshing one stored document so that, whatever the interleaving, nothing is lost.

Kakao kills the old refresh token the moment it issues a new one, so two instances must never
refresh with the same token at once, and a rotated token must be stored before anything else.
The protocol, built only on the store's compare-and-swap:

1. Read the document. Fresh enough (or refreshed by someone else since our first read): done.
2. Another instance holds an unexpired lease: wait briefly and re-read; use its result.
3. Claim the lease with a conditional write; losing that race means re-reading (step 1).
4. Call Kakao, merge (keeping what Kakao left out), and write conditionally on the leased
   version. If that write loses, re-read: a newer refresh token elsewhere wins; otherwise ours
   is the only live one and is written over whatever replaced it.
5. KOE322: re-read once; a changed refresh token means another instance rotated it (use it);
   otherwise the login is dead: the document is kept, marked ``login_error``.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass

from .clock import Clock
from .errors import (
    KakaoError,
    KakaoTokenError,
    LoginRequired,
    StorageError,
    WriteConflict,
)
from .kakao import KakaoClient
from .store import TokenStore, read_document
from .tokens import TokenDocument, apply_refresh_response, to_json

LEASE_SECONDS = 45  # longer than a Kakao call with all its retries
WAIT_STEP_SECONDS = 0.25
MAX_ROUNDS = 400
DEAD_REFRESH_TOKEN = "KOE322"


@dataclass(frozen=True)
class RefreshResult:
    """The document after the call, and whether this call obtained it from Kakao."""

    name: str
    document: TokenDocument
    refreshed: bool


class Refresher:
    """Refreshes stored documents through one Kakao client and one store."""

    def __init__(self, kakao: KakaoClient, store: TokenStore, clock: Clock) -> None:
        self._kakao = kakao
        self._store = store
        self._clock = clock

    def ensure_fresh(self, name: str, *, margin_seconds: int, force: bool = False) -> RefreshResult:
        """Refresh ``name`` if it is due (or ``force``); see the module docstring."""
        owner = uuid.uuid4().hex
        first_access_token = None
        for _ in range(MAX_ROUNDS):
            version, document = read_document(self._store, name)
            first_access_token = first_access_token or document.access_token
            now = self._clock.now()
            if document.login_error:
                raise LoginRequired(401, "invalid_grant", document.login_error)
            # A new access token since our first read: someone refreshed for us (even forced).
            refreshed_since_start = (
                document.access_token != first_access_token and document.lease is None
            )
            if (force and refreshed_since_start) or not (
                force or document.needs_refresh(now, margin_seconds)
            ):
                return RefreshResult(name, document, refreshed=False)
            lease = document.lease
            if lease is not None and lease[1] > now and lease[0] != owner:
                self._clock.sleep(WAIT_STEP_SECONDS)
                continue
            leased = document.with_fields(
                refresh_lease={"owner": owner, "until": now + LEASE_SECONDS}
            )
            try:
                leased_version = self._store.write(name, to_json(leased), version)
            except WriteConflict:
                continue
            result = self._refresh_under_lease(name, document, leased_version)
            if result is not None:
                return result
        raise StorageError(f"gave up refreshing {name}: the document kept changing")

    def _refresh_under_lease(
        self, name: str, document: TokenDocument, leased_version: str
    ) -> RefreshResult | None:
        """Call Kakao and store the result; None means: start over from a fresh read."""
        try:
            response = self._kakao.redeem_refresh_token(document.refresh_token)
        except KakaoError as exc:
            if exc.code == DEAD_REFRESH_TOKEN:
                return self._handle_dead_token(name, document, exc)
            self._release(name, document, leased_version)
            raise
        except KakaoTokenError:
            self._release(name, document, leased_version)
            raise
        # Persist before anything uses the new access token: a rotated refresh token exists
        # nowhere else, and the old one is already dead at Kakao.
        refreshed = apply_refresh_response(document, response, self._clock.now())
        expected = leased_version
        for _ in range(MAX_ROUNDS):
            try:
                self._store.write(name, to_json(refreshed), expected)
                return RefreshResult(name, refreshed, refreshed=True)
            except WriteConflict:
                expected, latest = read_document(self._store, name)
                if latest.refresh_token != document.refresh_token:
                    return RefreshResult(name, latest, refreshed=False)  # a newer login wins
        raise StorageError(f"gave up storing the refreshed {name}")

    def _handle_dead_token(
        self, name: str, document: TokenDocument, exc: KakaoError
    ) -> RefreshResult | None:
        version, latest = read_document(self._store, name)
        if latest.refresh_token != document.refresh_token:
            return None  # another instance rotated it under us: use theirs
        marked = latest.with_fields(
            login_error={"error_code": exc.code, "at": self._clock.now()}, refresh_lease=None
        )
        try:
            self._store.write(name, to_json(marked), version)
        except WriteConflict:
            return None
        raise LoginRequired(exc.status, exc.error, exc.code) from exc

    def _release(self, name: str, document: TokenDocument, leased_version: str) -> None:
        """Give the lease back after a failure, so others need not wait for it to expire."""
        # On failure the lease expires by itself; the original error is what matters.
        with contextlib.suppress(StorageError):
            self._store.write(
                name, to_json(document.with_fields(refresh_lease=None)), leased_version
            )
