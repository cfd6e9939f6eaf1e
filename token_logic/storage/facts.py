"""What the sweep needs to know about a document, kept beside it so one listing tells what is due.

Every write of a document carries these non-secret facts in the same request (GCS custom
metadata; the file store derives them from the file itself). Skipped and dead are decided from
them alone; that is sound because a document can only change by a new upload, and an upload
that is not ours carries no facts, so that document is read. A refresh still reads the document
and compare-and-swaps it, so facts never cause a wrong write. Values are strings, as custom
metadata must be.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..budget import Deadline
from ..checks import json_object
from ..tokens import TokenDocument

# The keys, prefixed so they never collide with metadata another tool put on the object.
_PREFIX = "kt-"
_INT_FIELDS = ("expires_at", "refresh_token_expires_at", "updated_at", "user_id")
_REQUIRED = ("expires_at", "refresh_token_expires_at")
EXPIRES_AT_KEY = f"{_PREFIX}expires_at"


@dataclass(frozen=True)
class Listed:
    """One stored document as a listing shows it: its name, versions and facts (None: none
    were written with it, e.g. a document older than this index or written by another tool)."""

    name: str
    version: str
    metageneration: str
    facts: Mapping[str, str] | None


@runtime_checkable
class ListingStore(Protocol):
    """A store that can list documents with their facts and add facts to an old document."""

    def listing(self, prefix: str, deadline: Deadline | None = None) -> list[Listed]:
        """Every stored document starting with ``prefix``, with its facts when it has them."""
        ...

    def backfill(
        self, listed: Listed, facts: Mapping[str, str], deadline: Deadline | None = None
    ) -> None:
        """Attach ``facts`` to a document written without them, only if it is still the
        version (and metadata version) listed; a change in between leaves it alone."""
        ...


def facts_of(document: TokenDocument) -> dict[str, str]:
    """The facts to store beside ``document``."""
    # Through the document's own int conversions, so every stored fact parses back (an odd
    # value raises here, and the document is stored without facts: the sweep reads it instead).
    facts = {
        "expires_at": str(document.expires_at),
        "refresh_token_expires_at": str(document.refresh_token_expires_at),
        "updated_at": str(document.updated_at),
        "scope": document.scope,
    }
    if document.user_id is not None:
        facts["user_id"] = str(document.user_id)
    lease = document.lease
    if lease is not None:
        facts["lease_until"] = str(lease[1])
    if document.login_error:
        facts["login_error"] = document.login_error
    return {_PREFIX + key: value for key, value in facts.items()}


def facts_of_bytes(data: bytes) -> dict[str, str]:
    """The facts of a serialized document; none when it is not one (it is stored all the same)."""
    fields = json_object(data)
    if fields is None or "expires_at" not in fields:
        return {}
    return usable_facts(TokenDocument(fields))


def usable_facts(document: TokenDocument) -> dict[str, str]:
    """``facts_of``, or none when a value does not convert (stored without facts: read instead)."""
    try:
        return facts_of(document)
    except (TypeError, ValueError, KeyError):
        return {}


def has_facts(metadata: Mapping[str, str] | None) -> bool:
    return bool(metadata) and all(f"{_PREFIX}{key}" in (metadata or {}) for key in _REQUIRED)


def document_of(facts: Mapping[str, str]) -> TokenDocument:
    """A token-free stand-in built from the facts: ``needs_refresh``, ``lease``,
    ``login_error`` and ``facts()`` answer on it exactly as on the stored document.
    ValueError when a fact does not parse (metadata edited by hand, or by another tool)."""
    fields: dict[str, object] = {"access_token": "", "refresh_token": ""}
    for key in _INT_FIELDS:
        value = facts.get(_PREFIX + key)
        if value is not None:
            fields[key] = int(value)
    fields["scope"] = facts.get(f"{_PREFIX}scope", "")
    if f"{_PREFIX}lease_until" in facts:
        fields["refresh_lease"] = {"owner": "", "until": int(facts[f"{_PREFIX}lease_until"])}
    if f"{_PREFIX}login_error" in facts:
        fields["login_error"] = {"error_code": facts[f"{_PREFIX}login_error"]}
    return TokenDocument(fields)
