"""Claim links: who may become (or take over as) the owner of a single-document deployment.

The callback URL is public (it is in every Kakao authorize URL), so "whoever logs in first owns
it" hands a fresh deployment to a stranger. Instead the operator makes a claim link
(``python -m token_logic claim-url``, or deploy.sh at the end): 256 random bits, of which the
store keeps only the SHA-256, with an expiry within a day, next to the token document. The
secret travels in the link's fragment (``…/claim#SECRET``), which browsers never send, so it
reaches no request log; the claim page posts it, and the login carries it in its HttpOnly
cookie to the end, where the claim is spent (a conditional delete) before the login is stored.
A link works once. deploy.sh writes the same JSON with bash and gcloud (keep the two alike).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import posixpath
import secrets
from dataclasses import dataclass

from ..budget import Deadline
from ..checks import json_object
from ..storage.protocol import Stored, TokenStore

CLAIM_OBJECT = ".kakao-token-claim.json"  # a dot-name: never a TOKEN_OBJECT (config.py)
CLAIM_LIFETIME_SECONDS = 24 * 3600
MAX_CLAIM_LENGTH = 100


@dataclass(frozen=True)
class IssuedClaim:
    """A new claim: the secret for the link (never stored, logged or shown but in the link)."""

    secret: str
    expires_at: int

    def __repr__(self) -> str:
        return f"IssuedClaim(expires_at={self.expires_at})"

    def link(self, redirect_uri: str) -> str:
        return f"{claim_url(redirect_uri)}#{self.secret}"


def claim_url(redirect_uri: str) -> str:
    """The claim page: the callback URL plus ``/claim``."""
    return redirect_uri.rstrip("/") + "/claim"


def claim_name(token_object: str) -> str:
    """Where the claim lives: beside the token document."""
    folder = posixpath.dirname(token_object)
    return posixpath.join(folder, CLAIM_OBJECT) if folder else CLAIM_OBJECT


def issue_claim(store: TokenStore, name: str, now: int) -> IssuedClaim:
    """A fresh claim, replacing any older one (only the newest link works)."""
    secret = secrets.token_urlsafe(32)
    expires_at = now + CLAIM_LIFETIME_SECONDS
    record = {"sha256": _digest(secret), "expires_at": expires_at, "created_at": now}
    store.overwrite(name, json.dumps(record, sort_keys=True).encode())
    return IssuedClaim(secret, expires_at)


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
