"""The finished login's facts, carried to the clean ``?login=done`` address in a cookie.

After a login the browser is sent (303) away from the address holding the code. The success
page there needs the non-secret facts it shows (user id, expiries, scopes); they travel in a
short-lived HttpOnly cookie of the browser that logged in, so a reload shows them again and
any other browser opening the address learns nothing.

The cookie is not signed: it holds no secret and grants nothing by itself, is read to draw a
page for the browser that holds it, and every value is type-checked and escaped. Forging it can
only change what one's own browser shows oneself. Signing would need a server secret that this
function does not otherwise have.

One thing it allows: the success page's test message (test_message.py). For that it carries
whose login it was (the owner's or the sender's) and a proof: the SHA-256 of the access token
just stored, cut to 128 bits. Only the browser that finished that login was given it, and the
press is honoured only while it matches the stored login's access token; the hash gives the
token away no more than the token's own randomness allows (none).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from ..checks import json_object
from ..logins import LOGINS, OWNER
from ..tokens import TokenFacts

DONE_COOKIE = "kakao_done"
DONE_COOKIE_LIFETIME_SECONDS = 600
_MAX_COOKIE_LENGTH = 1024
_MAX_SCOPE_LENGTH = 400


@dataclass(frozen=True)
class DoneLogin:
    """A finished login as this browser's cookie tells it: the facts shown, whose login it was,
    and the proof the test message asks for ("" in a cookie from before it)."""

    facts: TokenFacts
    login: str = OWNER
    proof: str = ""
    issued_at: int = 0

    def __repr__(self) -> str:
        return f"DoneLogin(facts={self.facts!r}, login={self.login!r})"


def token_proof(access_token: str, issued_at: int) -> str:
    """What the cookie keeps of the stored access token: the SHA-256 of it and the cookie's
    issue time, 128 bits of it (a copied value stops proving anything with the lifetime)."""
    return hashlib.sha256(f"{access_token}:{issued_at}".encode()).hexdigest()[:32]


def encode_facts(
    facts: TokenFacts, login: str = OWNER, access_token: str = "", issued_at: int = 0
) -> str:
    """The cookie value: base64url of compact JSON (cookie-safe characters only), with what the
    success page shows (user id, expiries, scopes, the scopes cut to a cookie's size), whose
    login it was and the proof of its access token."""
    raw = json.dumps(
        {
            "u": facts.user_id,
            "e": facts.expires_at,
            "r": facts.refresh_token_expires_at,
            "s": facts.scope[:_MAX_SCOPE_LENGTH],
            "l": login,
            "t": token_proof(access_token, issued_at) if access_token else "",
            "i": issued_at,
        },
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def facts_from_cookies(cookies: Mapping[str, str]) -> TokenFacts | None:
    """This browser's finished login's facts, or None (no cookie, expired, or not ours)."""
    done = done_login_from_cookies(cookies)
    return done.facts if done else None


def done_login_from_cookies(cookies: Mapping[str, str]) -> DoneLogin | None:
    """This browser's finished login, or None (no cookie, expired, or not ours)."""
    value = cookies.get(DONE_COOKIE, "")
    if not value or len(value) > _MAX_COOKIE_LENGTH:
        return None
    try:
        fields = json_object(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except ValueError:  # not base64 (binascii.Error)
        return None
    if fields is None:
        return None
    user_id, scope = fields.get("u"), fields.get("s")
    expires_at, refresh_expires_at = _int_or_none(fields.get("e")), _int_or_none(fields.get("r"))
    if (
        (user_id is not None and _int_or_none(user_id) is None)
        or expires_at is None
        or refresh_expires_at is None
        or not isinstance(scope, str)
        or len(scope) > _MAX_SCOPE_LENGTH
    ):
        return None
    login, proof = fields.get("l", OWNER), fields.get("t", "")
    issued_at = _int_or_none(fields.get("i", 0))
    if login not in LOGINS or not isinstance(proof, str) or len(proof) > 64 or issued_at is None:
        return None
    facts = TokenFacts(user_id, scope, expires_at, refresh_expires_at)
    return DoneLogin(facts, login, proof, issued_at)


def _int_or_none(value: object) -> int | None:
    # Bounded so that formatting a date can never fail on a hand-made cookie.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**36:
        return value
    return None
