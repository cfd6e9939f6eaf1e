"""Claim links: who may become (or take over as) the owner of a single-document deployment.

The callback URL is public (it is in every Kakao authorize URL), so "whoever logs in first owns
it" hands a fresh deployment to a stranger. Instead the operator makes a claim link
(``python -m token_logic claim-url``, or deploy.sh at the end): 256 random bits, of which the
store keeps only the SHA-256, with an expiry within a day, next to the token document. The
secret travels in the link's fragment (``…/claim#SECRET``), which browsers never send, so it
reaches no request log; the claim page posts it, and the login carries it in its HttpOnly
cookie to the end, where the claim is spent (a conditional delete) before the login is stored.
A link works once. deploy.sh makes its claim here too (``main``, below): it runs this module
with the standard library alone, so what it loads must stay within it (the storage types are
for annotations only).

A deployment with a sender (logins.py) has a second claim beside the first: its link admits
one Kakao account as the sender, never as the owner.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import posixpath
import secrets
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..checks import json_object
from ..clock import SystemClock
from ..logins import OWNER, SENDER, sender_document_name

if TYPE_CHECKING:  # pragma: no cover
    from ..budget import Deadline
    from ..storage.protocol import Stored, TokenStore

CLAIM_OBJECT = ".kakao-token-claim.json"  # a dot-name: never a TOKEN_OBJECT (config.py)
SENDER_CLAIM_OBJECT = ".kakao-token-sender-claim.json"
CLAIM_LIFETIME_SECONDS = 24 * 3600
MAX_CLAIM_LENGTH = 100


@dataclass(frozen=True)
class IssuedClaim:
    """A new claim: the secret for the link (never stored, logged or shown but in the link).
    A sender's link says so in its query (``?login=sender``), for the page's words only: the
    secret alone decides which login it admits."""

    secret: str
    expires_at: int
    login: str = OWNER

    def __repr__(self) -> str:
        return f"IssuedClaim(expires_at={self.expires_at}, login={self.login!r})"

    def link(self, redirect_uri: str) -> str:
        query = f"?login={SENDER}" if self.login == SENDER else ""
        return f"{claim_url(redirect_uri)}{query}#{self.secret}"


def claim_url(redirect_uri: str) -> str:
    """The claim page: the callback URL plus ``/claim``."""
    return redirect_uri.rstrip("/") + "/claim"


def claim_name(token_object: str, login: str = OWNER) -> str:
    """Where a login's claim lives: beside the token document."""
    folder = posixpath.dirname(token_object)
    base = SENDER_CLAIM_OBJECT if login == SENDER else CLAIM_OBJECT
    return posixpath.join(folder, base) if folder else base


def issue_claim(store: TokenStore, name: str, now: int, login: str = OWNER) -> IssuedClaim:
    """A fresh claim, replacing any older one (only the newest link works)."""
    claim, record = new_claim(now)
    store.overwrite(name, record)
    return IssuedClaim(claim.secret, claim.expires_at, login)


def new_claim(now: int) -> tuple[IssuedClaim, bytes]:
    """A fresh secret, and the record the store keeps of it: its SHA-256 and when it ends."""
    secret = secrets.token_urlsafe(32)
    expires_at = now + CLAIM_LIFETIME_SECONDS
    record = {"sha256": _digest(secret), "expires_at": expires_at, "created_at": now}
    return IssuedClaim(secret, expires_at), json.dumps(record, sort_keys=True).encode()


def valid_claim(
    store: TokenStore, name: str, secret: str, now: int, deadline: Deadline
) -> Stored | None:
    """The stored claim if ``secret`` is its secret and it has not expired; else None."""
    if not secret or len(secret) > MAX_CLAIM_LENGTH:
        return None
    stored = store.read(name, deadline)
    if stored is None:
        return None
    record = json_object(stored.data)
    if record is None:
        return None
    try:
        digest, expires_at = str(record["sha256"]), int(record["expires_at"])
    except (ValueError, KeyError, TypeError):  # not a claim record
        return None
    if expires_at <= now or not hmac.compare_digest(digest, _digest(secret)):
        return None
    return stored


def spend_claim(store: TokenStore, name: str, claim: Stored, deadline: Deadline) -> bool:
    """Delete the claim if it is still the one checked: True for exactly one caller."""
    return bool(store.delete(name, claim.version, deadline))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    """``python3 -P -S -m token_logic.service.claim TOKEN_OBJECT [--sender]``, as deploy.sh
    runs it: four lines on stdout, where the claim lives beside TOKEN_OBJECT, a fresh secret,
    the record to store there, and the document the claimed login is stored in (the owner's,
    or with ``--sender`` the sender's). The caller stores the record and puts the secret in
    the link; the secret goes nowhere else (no argument, stderr or log line)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2) or (len(args) == 2 and args[1] != "--sender"):
        print(
            "usage: python3 -P -S -m token_logic.service.claim TOKEN_OBJECT [--sender]",
            file=sys.stderr,
        )
        return 2
    token_object = args[0]
    login = SENDER if len(args) == 2 else OWNER
    document = sender_document_name(token_object) if login == SENDER else token_object
    claim, record = new_claim(SystemClock().now())
    name = claim_name(token_object, login)
    sys.stdout.write(f"{name}\n{claim.secret}\n{record.decode()}\n{document}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
