"""The scheduled sweep over many users: decide from one listing, refresh the due in parallel.

1. One listing (with each document's facts, storage/facts.py) tells what is due; nothing else
   is read.
   A shard (``?shard=I/N``) lists only its own documents (shards.py).
   A dead login is reported from its facts; a document under another's lease is left to it.
2. Documents without facts (older than the index, or written by another tool) are read by one
   sweep, which attaches their facts, so later sweeps decide on the listing alone. (One that is
   due then is read again by its refresh: the protocol reads under its own versions.) A
   document whose facts can't be made (odd values) is read by every sweep, and costs only its
   own user if it fails.
3. The due ones are refreshed, most urgent first, by a bounded pool of workers, each through the
   one-document protocol (refresh.py: read, lease, Kakao, compare-and-swap). One failure stops
   nobody else; a document deleted since the listing is ``gone``.
4. No work starts that could not finish before the deadline (budget.py): what is left is
   ``deferred`` and the next run picks it up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..budget import Deadline
from ..errors import DeadlineReached, KakaoTokenError, LoginRequired, NoTokenStored, StorageError
from ..log import log_event
from ..problems import problem_for
from ..storage.facts import EXPIRES_AT_KEY, Listed, ListingStore, document_of, usable_facts
from ..storage.protocol import NamePart, PartListingStore, TokenStore
from ..tokens import TokenDocument, from_json
from .refresh import RefreshResult

RefreshOne = Callable[[str, Deadline], RefreshResult]


@dataclass(frozen=True)
class RefreshOutcome:
    """One document's refresh: its result, or the error that stopped it.

    ``under_way``: deferred because another refresh of this login holds its lease (that one
    refreshes it), not for lack of time.
    """

    name: str
    result: RefreshResult | None
    error: KakaoTokenError | None
    under_way: bool = False


def run_sweep(
    store: TokenStore,
    listed: list[Listed],
    refresh_one: RefreshOne,
    *,
    now: int,
    margin_seconds: int,
    deadline: Deadline,
    workers: int,
    force: bool = False,
) -> list[RefreshOutcome]:
    """Refresh what is due among ``listed``; one outcome per document, in listing order."""

    def decide(item: Listed) -> RefreshOutcome | None:
        """The outcome known from the facts alone, or None when the document needs work."""
        if item.facts is None:
            return None
        try:
            facts = document_of(item.facts)
        except ValueError:  # edited by hand or another tool: the document itself decides
            return None
        if facts.login_error:
            dead = LoginRequired(401, "invalid_grant", facts.login_error, known=True)
            return RefreshOutcome(item.name, None, dead)
        lease = facts.lease
        if lease is not None and lease[1] > now:
            return _deferred(item.name, "another refresh of this login is under way", True)
        if force or facts.needs_refresh(now, margin_seconds):
            return None
        return RefreshOutcome(item.name, RefreshResult(item.name, facts, refreshed=False), None)

    def work(item: Listed) -> RefreshOutcome:
        if not deadline.leaves_room_for_refresh():
            return _deferred(item.name, "the sweep's deadline is near")
        try:
            if item.facts is None:
                document = _read_and_backfill(store, item, deadline)
                if document is not None and not (
                    force or document.needs_refresh(now, margin_seconds)
                ):
                    return RefreshOutcome(
                        item.name, RefreshResult(item.name, document, refreshed=False), None
                    )
            return RefreshOutcome(item.name, refresh_one(item.name, deadline), None)
        except KakaoTokenError as exc:  # gone since the listing (logout, unlink) included
            return RefreshOutcome(item.name, None, exc)
        except Exception:  # noqa: BLE001 - one user's bug must not cost every later user theirs
            log_event(
                logging.ERROR, "unexpected error refreshing", document=item.name, exc_info=True
            )
            return RefreshOutcome(item.name, None, KakaoTokenError("unexpected error"))

    outcomes: dict[str, RefreshOutcome] = {}
    pending = []
    for item in listed:
        known = decide(item)
        if known is None:
            pending.append(item)
        else:
            outcomes[item.name] = known
    # Most urgent first, so that when the deadline defers work it is never the same users'
    # tokens that wait, run after run; documents without facts are read first.
    pending.sort(key=_urgency)
    if pending:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep") as pool:
            for outcome in pool.map(work, pending):
                outcomes[outcome.name] = outcome
    return [outcomes[item.name] for item in listed]


def list_for_sweep(
    store: TokenStore,
    prefix: str,
    belongs: Callable[[str], bool],
    deadline: Deadline,
    part: NamePart | None = None,
) -> list[Listed]:
    """The documents to sweep with their facts: one listing when the store keeps facts.

    With ``part`` (a shard), only that part's documents; a store that can list a part alone is
    asked for just that (Cloud Storage by a glob, local files by name before reading them).
    """
    if part is not None and isinstance(store, PartListingStore):
        found = store.listing_part(part, deadline)
    elif isinstance(store, ListingStore):
        found = store.listing(prefix, deadline)
    else:  # a store without an index: every document is read, as before
        found = [Listed(name, "", "", None) for name in store.names(prefix)]
    if part is None:
        return [item for item in found if belongs(item.name)]
    return [item for item in found if belongs(item.name) and part.holds(item.name)]


def outcome_kind(outcome: RefreshOutcome) -> str:
    """refreshed, skipped, dead, gone, deferred or failed."""
    if outcome.result is not None:
        return "refreshed" if outcome.result.refreshed else "skipped"
    if isinstance(outcome.error, LoginRequired):
        return "dead"
    if isinstance(outcome.error, NoTokenStored):
        return "gone"
    if isinstance(outcome.error, DeadlineReached):
        return "deferred"
    return "failed"


def out_of_time(outcome: RefreshOutcome) -> bool:
    """Deferred because the deadline came first (not left to a refresh already under way)."""
    return outcome_kind(outcome) == "deferred" and not outcome.under_way


def _urgency(item: Listed) -> int:
    """Sort key: when the access token expires (0, first, when the facts don't say).

    A document due only for rotation sorts by its later access-token expiry: its refresh token
    still has weeks, while an expiring access token stops a script within the hour.
    """
    try:
        return int((item.facts or {}).get(EXPIRES_AT_KEY, 0))
    except ValueError:
        return 0


def _read_and_backfill(store: TokenStore, item: Listed, deadline: Deadline) -> TokenDocument:
    """Read a document that has no facts yet and attach them (guarded by its versions).

    NoTokenStored when it is gone since the listing. The facts only save later reads: if
    attaching them fails, the document is refreshed all the same and read again next run.
    """
    stored = store.read(item.name, deadline)
    if stored is None:
        raise NoTokenStored(f"no token stored at {item.name}")
    document = from_json(stored.data)
    facts = usable_facts(document)
    if facts and isinstance(store, ListingStore) and stored.version == item.version:
        try:
            store.backfill(item, facts, deadline)
        except (StorageError, DeadlineReached):
            log_event(logging.WARNING, "could not attach the sweep's facts", document=item.name)
    return document


def _deferred(name: str, why: str, under_way: bool = False) -> RefreshOutcome:
    return RefreshOutcome(name, None, DeadlineReached(why, retry_after=60), under_way)


def summarize(outcome: RefreshOutcome, now: int) -> dict[str, Any]:
    """What happened to one document: refreshed, skipped or failed, with non-secret facts."""
    if outcome.result is not None:
        status = "refreshed" if outcome.result.refreshed else "skipped"
        return {
            "document": outcome.name,
            "status": status,
            **outcome.result.document.facts().public(now),
        }
    problem = problem_for(outcome.error or KakaoTokenError())
    return {
        "document": outcome.name,
        "status": "failed",
        "http_status": problem.status,
        "error_code": problem.code,
        "message": problem.one_line(),
    }
