"""Refreshing one stored document so that, whatever the interleaving, nothing is lost.

Kakao kills the old refresh token the moment it issues a new one, so two instances must never
refresh with the same token at once, and a rotated token must be stored before anything else.
The protocol, built only on the store's compare-and-swap and one deadline (budget.py):

1. Read the document. Fresh enough (or refreshed by someone else since our first read): done.
2. Another instance holds an unexpired lease: wait (bounded by our deadline) and re-read; use
   its result. Out of time first: DeadlineReached (503, Retry-After).
3. Claim the lease with a conditional write; losing that race means re-reading (step 1). The
   lease ends at our deadline plus clock skew, so it covers everything we may still do.
4. Call Kakao (no attempt starts that could not finish with STORE_RESERVE_SECONDS left), merge
   (keeping what Kakao left out), and write conditionally on the leased version, retrying
   storage faults until the deadline. If the write loses, re-read: a newer refresh token
   elsewhere wins; otherwise ours is the only live one and is written over whatever replaced it.
5. KOE322: re-read once; a changed refresh token means another writer replaced it (use it);
   otherwise the login is dead: the document is kept, marked ``login_error``.
6. Any other failure from Kakao gives the lease back with a pause (backoff.py): until it ends,
   nobody calls Kakao for this login, and waiters get the failure instead of a call each.
Whatever happens, a lease we still hold is released (``finally``).

What each bad day does:
- Kakao times out or resets after it may have processed a refresh: the attempt is retried. If
  Kakao had not rotated, the same refresh token works; if it had, the new refresh token was lost
  with the answer and the retry gets KOE322: the login is marked dead (a person must log in
  again), the one case nothing on our side can save.
- Kakao answered, then storage fails: the write is retried until the deadline (at least
  STORE_RESERVE_SECONDS). Only if storage stays down past that is a rotated token lost; that is
  logged as an ERROR for a person.
- Kakao's answer is odd (missing lifetimes, numbers as strings): see tokens.py; a new refresh
  token is always kept.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass

from ..budget import (
    STORE_RESERVE_SECONDS,
    STORE_RETRY_PAUSE_SECONDS,
    WAIT_STEPS_SECONDS,
    Deadline,
    longest_lease_seconds,
)
from ..clock import Clock
from ..errors import (
    DeadlineReached,
    KakaoError,
    KakaoTokenError,
    KakaoUnavailable,
    LoginRequired,
    StorageError,
    WriteConflict,
)
from ..kakao.api import KakaoClient
from ..log import ALERT_REFRESH_FAILED, log_event
from ..storage.protocol import TokenStore, read_document
from ..tokens import TokenDocument, apply_refresh_response, to_json
from .backoff import Backoff, backoff_after

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

    def ensure_fresh(
        self, name: str, *, margin_seconds: int, deadline: Deadline, force: bool = False
    ) -> RefreshResult:
        """Refresh ``name`` if it is due (or ``force``); see the module docstring."""
        owner = uuid.uuid4().hex
        began = self._clock.now()
        first_access_token = None
        waits = 0
        while True:  # every pass reads the store under the deadline, so this ends by then
            version, document = read_document(self._store, name, deadline)
            first_access_token = first_access_token or document.access_token
            now = self._clock.now()
            if document.login_error:
                # Marked during this call (by us, say a write that landed though it seemed to
                # fail, or by a racer) is news: only an older mark has had its alert already.
                known = document.login_error_at < began
                raise LoginRequired(401, "invalid_grant", document.login_error, known=known)
            # A new access token since our first read: someone refreshed for us (even forced).
            refreshed_since_start = (
                document.access_token != first_access_token and document.lease is None
            )
            if (force and refreshed_since_start) or not (
                force or document.needs_refresh(now, margin_seconds)
            ):
                return RefreshResult(name, document, refreshed=False)
            backoff = Backoff.of(document.fields, now)
            if backoff is not None and backoff.until > now:
                # Kakao failed this login's last refresh: no call before the pause ends, by
                # anyone (backoff.py); a token that still lives as long as asked is served.
                if document.expires_at - now >= margin_seconds and not force:
                    return RefreshResult(name, document, refreshed=False)
                raise backoff.error(now)
            lease = document.lease
            if lease is not None and lease[1] > now + longest_lease_seconds():
                log_event(logging.WARNING, "lease too far ahead, taken as expired", document=name)
            elif lease is not None and lease[1] > now and lease[0] != owner:
                self._wait_for(lease[1], deadline, waits)
                waits += 1
                continue
            _check_time_for_refresh(deadline, retry_after=1)
            leased = document.with_fields(
                refresh_lease={"owner": owner, "until": deadline.lease_until()}
            )
            try:
                leased_version = self._store.write(name, to_json(leased), version, deadline)
            except WriteConflict:
                continue
            result = self._refresh_under_lease(name, document, leased_version, deadline)
            if result is not None:
                return result

    def _wait_for(self, lease_until: int, deadline: Deadline, waits: int) -> None:
        step = WAIT_STEPS_SECONDS[min(waits, len(WAIT_STEPS_SECONDS) - 1)]
        if deadline.remaining() - step < 1:
            raise DeadlineReached(
                "another refresh of this login is still under way",
                retry_after=max(1, lease_until - self._clock.now()),
            )
        self._clock.sleep(step)

    def _refresh_under_lease(
        self, name: str, document: TokenDocument, leased_version: str, deadline: Deadline
    ) -> RefreshResult | None:
        """Call Kakao and store the result; None means: start over from a fresh read."""
        settled = False  # True once a write of ours ended the lease, or Kakao answered
        try:
            _check_time_for_refresh(deadline, retry_after=5)
            try:
                response = self._kakao.redeem_refresh_token(
                    document.refresh_token, deadline.earlier_by(STORE_RESERVE_SECONDS)
                )
            except (KakaoError, KakaoUnavailable) as exc:
                if isinstance(exc, KakaoError) and exc.code == DEAD_REFRESH_TOKEN:
                    dead = self._mark_if_dead(name, document, exc, deadline)
                    settled = True  # marked (no lease), or replaced by another writer
                    if dead is not None:
                        raise dead from exc
                    return None
                self._back_off(name, document, leased_version, exc, deadline)
                settled = True
                raise
            # Kakao answered: from here the old refresh token may be dead, so releasing the
            # lease (writing the old document back) could bury a rotated one. If storing fails,
            # the lease ends by itself at our deadline plus clock skew.
            settled = True
            # Persist before anything uses the new access token: a rotated refresh token
            # exists nowhere else, and the old one is already dead at Kakao.
            merged = apply_refresh_response(document, response, self._clock.now())
            for field_name in merged.assumed:
                log_event(
                    logging.WARNING,
                    "Kakao's refresh answer had no usable value; a conservative one is assumed",
                    field=field_name,
                    document=name,
                )
            result = self._store_refreshed(
                name,
                document,
                merged.document.with_fields(refresh_backoff=None),
                leased_version,
                deadline,
            )
            settled = True
            if merged.refused:
                raise KakaoUnavailable("bad_response", merged.refused)
            return result
        finally:
            if not settled:
                self._release(name, document, leased_version, deadline)

    def _store_refreshed(
        self,
        name: str,
        old: TokenDocument,
        refreshed: TokenDocument,
        expected: str,
        deadline: Deadline,
    ) -> RefreshResult:
        """Write Kakao's answer, retrying storage faults until the deadline."""
        rotated = refreshed.refresh_token != old.refresh_token
        while True:
            try:
                try:
                    self._store.write(name, to_json(refreshed), expected, deadline)
                    return RefreshResult(name, refreshed, refreshed=True)
                except WriteConflict as conflict:
                    expected, latest = read_document(self._store, name, deadline)
                    if not latest.access_token or not latest.refresh_token:
                        # An unlink or logout replaced the document while we held the lease:
                        # its word is final; never hand out what it left (no token at all).
                        # (A KOE322 mark keeps the tokens: our rotated one is written over it.)
                        code = latest.login_error or "gone"
                        raise LoginRequired(401, "invalid_grant", code) from conflict
                    if latest.refresh_token != old.refresh_token:
                        # A newer login, or our own write that landed before a retry saw it.
                        return RefreshResult(name, latest, refreshed=False)
            except (StorageError, DeadlineReached) as exc:
                if deadline.remaining() - STORE_RETRY_PAUSE_SECONDS < 1:
                    _log_lost(name, rotated, exc)
                    raise
                log_event(
                    logging.WARNING,
                    "storage failed after Kakao answered; retrying until the deadline",
                    document=name,
                    rotated=rotated,
                    seconds_left=round(deadline.remaining(), 1),
                )
                self._clock.sleep(STORE_RETRY_PAUSE_SECONDS)

    def _mark_if_dead(
        self, name: str, document: TokenDocument, exc: KakaoError, deadline: Deadline
    ) -> LoginRequired | None:
        """After KOE322: the error to raise once the login is marked dead, or None when another
        writer replaced the refresh token under us (start over and use theirs)."""
        version, latest = read_document(self._store, name, deadline)
        if latest.refresh_token != document.refresh_token:
            return None
        marked = latest.with_fields(
            login_error={"error_code": exc.code, "at": self._clock.now()}, refresh_lease=None
        )
        try:
            self._store.write(name, to_json(marked), version, deadline)
        except WriteConflict:
            return None
        return LoginRequired(exc.status, exc.error, exc.code)

    def _back_off(
        self,
        name: str,
        document: TokenDocument,
        leased_version: str,
        exc: KakaoError | KakaoUnavailable,
        deadline: Deadline,
    ) -> None:
        """Give the lease back with a pause in it: callers waiting on this lease, and every
        later one, get this failure without calling Kakao until the pause ends."""
        now = self._clock.now()
        backoff = backoff_after(exc, Backoff.of(document.fields), now)
        # This caller is told the same "try again in" as everyone waiting on the pause.
        exc.retry_after = max(1, backoff.until - now)
        log_event(
            logging.WARNING,
            "refresh failed; this login's refreshes pause",
            document=name,
            code=backoff.code,
            failures=backoff.failures,
            seconds=backoff.until - now,
        )
        paused = document.with_fields(refresh_backoff=backoff.field())
        self._release(name, paused, leased_version, deadline)

    def _release(
        self, name: str, document: TokenDocument, leased_version: str, deadline: Deadline
    ) -> None:
        """Give the lease back after a failure, so others need not wait for it to expire."""
        # If this fails too, the lease ends by itself at our deadline plus clock skew; the
        # original error is what the caller must see.
        with contextlib.suppress(KakaoTokenError):
            unleased = document.with_fields(refresh_lease=None)
            self._store.write(name, to_json(unleased), leased_version, deadline)


def _check_time_for_refresh(deadline: Deadline, retry_after: int) -> None:
    """No Kakao call may start that could not finish and be stored before the deadline."""
    if not deadline.leaves_room_for_refresh():
        raise DeadlineReached("too little time left to refresh safely", retry_after=retry_after)


def _log_lost(name: str, rotated: bool, exc: Exception) -> None:
    if rotated:
        # The old refresh token is dead at Kakao and the new one could not be stored.
        log_event(
            logging.ERROR,
            "a rotated refresh token could not be stored before the deadline; if the login "
            "fails from now on, log in again",
            alert=ALERT_REFRESH_FAILED,
            document=name,
            error=type(exc).__name__,
        )
    else:
        log_event(
            logging.WARNING,
            "a refreshed access token could not be stored; the stored refresh token still works",
            document=name,
            error=type(exc).__name__,
        )
