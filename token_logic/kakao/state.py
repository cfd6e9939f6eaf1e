"""Login state and PKCE, bound to the browser that started the login.

Each login gets its own short-lived cookie whose name is derived from the state and whose value
holds the state and the PKCE verifier. Any instance can finish the login with no server-side
session, two tabs can log in at once, and a code arriving in a browser that did not start that
login (CSRF, a leaked callback URL) is refused before it reaches Kakao.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import LoginStateError

COOKIE_PREFIX = "kakao_login_"
COOKIE_LIFETIME_SECONDS = 600
_MAX_STATE_LENGTH = 128


@dataclass(frozen=True)
class LoginStart:
    """What a new login needs: the values for Kakao and the cookie for the browser."""

    state: str
    code_challenge: str
    nonce: str = field(repr=False)
    cookie_name: str = ""
    cookie_value: str = field(default="", repr=False)


@dataclass(frozen=True)
class LoginSecrets:
    """What only the browser that started a login holds: the PKCE verifier, the nonce, and the
    claim link's secret when the login began from one (service/claim.py)."""

    verifier: str = field(repr=False)
    nonce: str = field(repr=False)
    claim: str = field(default="", repr=False)


def start_login(pkce: bool, claim: str = "") -> LoginStart:
    """A fresh state (256 random bits), a nonce and, with PKCE, a verifier and its challenge;
    ``claim`` (a claim link's secret) rides along in the cookie to the end of the login.

    The nonce is a secret of the cookie, not derived from the public state: whoever sees the
    state in an address bar or a log cannot predict the nonce an ID token must carry.
    """
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(48) if pkce else ""
    nonce = secrets.token_urlsafe(24)
    return LoginStart(
        state=state,
        code_challenge=_s256(verifier) if verifier else "",
        nonce=nonce,
        cookie_name=cookie_name_for(state),
        cookie_value=f"{state}.{verifier}.{nonce}.{claim}",
    )


def verify_state(state: str, cookies: Mapping[str, str]) -> LoginSecrets:
    """Check the callback's state against this browser's cookie; return its secrets."""
    if not state or len(state) > _MAX_STATE_LENGTH:
        raise LoginStateError("missing or malformed state")
    value = cookies.get(cookie_name_for(state), "")
    issued_state, _, rest = value.partition(".")
    verifier, _, rest = rest.partition(".")
    nonce, _, claim = rest.partition(".")
    if not hmac.compare_digest(issued_state.encode(), state.encode()):
        raise LoginStateError("this browser did not start this login, or it expired")
    return LoginSecrets(verifier, nonce, claim)


def cookie_name_for(state: str) -> str:
    """The cookie that carries one login's state (a hash: the name reveals nothing)."""
    return COOKIE_PREFIX + hashlib.sha256(state.encode()).hexdigest()[:16]


def _s256(value: str) -> str:
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
