"""Kakao's account status change webhook speaks Security Event Tokens (SET, RFC 8417) whose
events are named by these URIs (OpenID's OAuth and RISC event types), and after some of them
Kakao takes the user's tokens back. The service acts on them (service/account_events.py); the
fake Kakao sends them (dev/fake_kakao.py)."""

from __future__ import annotations

_OAUTH = "https://schemas.openid.net/secevent/oauth/event-type/"
_RISC = "https://schemas.openid.net/secevent/risc/event-type/"
USER_LINKED = _OAUTH + "user-linked"
USER_UNLINKED = _OAUTH + "user-unlinked"
TOKENS_REVOKED = _OAUTH + "tokens-revoked"
TOKEN_REVOKED = _OAUTH + "token-revoked"
ACCOUNT_DISABLED = _RISC + "account-disabled"
ACCOUNT_PURGED = _RISC + "account-purged"
# After these Kakao no longer honours the user's tokens (a disabled account may come back, but
# its tokens do not); token-revoked: the one token it names.
ENDING_EVENTS = frozenset(
    {USER_UNLINKED, TOKENS_REVOKED, TOKEN_REVOKED, ACCOUNT_DISABLED, ACCOUNT_PURGED}
)
