"""Where token documents live: one small compare-and-swap interface, two implementations.

``read`` returns the bytes and an opaque version; ``write`` succeeds only if the stored version
is still the one the caller read (``None``: only if nothing is stored), else WriteConflict.
That single guarantee is what makes concurrent refreshes safe on any backend. ``overwrite`` is
the one unconditional write: a login, which supersedes whatever is stored. ``delete``
removes a document (an unlinked user, a logout), guarded by a version when one is given;
``delete_old_versions`` then removes the older copies a store may keep of it (a versioned
bucket keeps every overwritten or deleted generation, each with the tokens it held).
A store may also list just a part of the names (``PartListingStore``, a shard of the sweep).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..budget import Deadline
from ..checks import is_decimal
from ..config import USER_ID_PLACEHOLDER
from ..errors import NoTokenStored
from ..tokens import TokenDocument, from_json, from_json_or_none
from .facts import Listed


@dataclass(frozen=True)
class Stored:
    """A stored document's bytes and the version they were read at."""

    data: bytes = field(repr=False)  # token bytes: never in a repr
    version: str


class TokenStore(Protocol):
    """Compare-and-swap storage for token documents, addressed by name."""

    def read(self, name: str, deadline: Deadline | None = None) -> Stored | None:
        """The document and its version, or None when nothing is stored.

        With a ``deadline``, the call and its retries end by then (DeadlineReached if no time
        is left to start); without one, the store's own per-call limits apply.
        """
        ...

    def write(
        self, name: str, data: bytes, expected_version: str | None, deadline: Deadline | None = None
    ) -> str:
        """Store ``data`` if the version is still ``expected_version``; return the new one."""
        ...

    def overwrite(self, name: str, data: bytes) -> str:
        """Store ``data`` over whatever is stored (a new login); return the new version.

        Tried once: without a version to check, a repeated write could undo one made in between,
        so a failure leaves the caller to fall back to read and ``write``.
        """
        ...

    def delete(
        self, name: str, expected_version: str | None = None, deadline: Deadline | None = None
    ) -> bool:
        """Delete the document; False when nothing was stored.

        With ``expected_version``, only if the document is still at that version, else
        WriteConflict: a login that lands between a read and the delete is not deleted.
        """
        ...

    def delete_old_versions(self, name: str, deadline: Deadline | None = None) -> int:
        """Delete every older copy the store keeps of ``name``; return how many went.

        The current document, if one is stored, stays: a logout deletes it first, an unlink of
        a single document leaves its marker there, and a login landing meanwhile is kept.
        """
        ...

    def names(self, prefix: str) -> list[str]:
        """Every stored name starting with ``prefix`` (for refreshing many users)."""
        ...


@dataclass(frozen=True)
class NamePart:
    """Some of the names starting with ``prefix``: those ``holds`` accepts (a shard,
    service/shards.py).

    ``glob`` says the same in Cloud Storage's glob syntax, so that a listing there returns only
    these names; None when it cannot be said that way (the listing is filtered afterwards).
    """

    prefix: str
    holds: Callable[[str], bool] = field(compare=False)
    glob: str | None = None


@runtime_checkable
class PartListingStore(Protocol):
    """A store that lists only the documents of a part, with their facts (facts.py)."""

    def listing_part(self, part: NamePart, deadline: Deadline | None = None) -> list[Listed]:
        """Every stored document of ``part``, with its facts when it has them."""
        ...


def read_document(
    store: TokenStore, name: str, deadline: Deadline | None = None
) -> tuple[str, TokenDocument]:
    """The parsed document and its version; NoTokenStored when there is none."""
    stored = store.read(name, deadline)
    if stored is None:
        raise NoTokenStored(f"no token stored at {name}")
    return stored.version, from_json(stored.data)


def stored_document(
    store: TokenStore, name: str, deadline: Deadline | None = None
) -> TokenDocument | None:
    """The parsed document, or None when nothing is stored there or it is not a document."""
    stored = store.read(name, deadline)
    return from_json_or_none(stored.data) if stored else None


def document_name(template: str, user_id: int | None) -> str:
    """The name of a user's document; ``{user_id}`` in the template selects per-user files."""
    if USER_ID_PLACEHOLDER not in template:
        return template
    if user_id is None:
        raise ValueError("this TOKEN_OBJECT needs a user id")
    return template.replace(USER_ID_PLACEHOLDER, str(user_id))


def template_matches(template: str) -> Callable[[str], bool]:
    """A predicate telling whether a stored name belongs to the template."""
    if USER_ID_PLACEHOLDER not in template:
        return lambda name: name == template
    return lambda name: template_user_id(template, name) is not None


def template_user_id(template: str, name: str) -> int | None:
    """The user id in a per-user document's name; None for a single document or another name."""
    if USER_ID_PLACEHOLDER not in template:
        return None
    prefix, suffix = template.split(USER_ID_PLACEHOLDER, 1)
    if len(name) <= len(prefix) + len(suffix):
        return None
    middle = name[len(prefix) : len(name) - len(suffix)]
    fits = name.startswith(prefix) and name.endswith(suffix) and is_decimal(middle)
    return int(middle) if fits else None


def template_prefix(template: str) -> str:
    """The listing prefix shared by every name the template can produce."""
    return template.split(USER_ID_PLACEHOLDER, 1)[0]
