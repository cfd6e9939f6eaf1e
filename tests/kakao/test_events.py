"""The account status events' names, spelled out as Kakao sends them (KAKAO_API.md §8): the
fake Kakao imports token_logic.kakao.events, so only this spelling catches a typo there."""

from __future__ import annotations

from token_logic.kakao import events

OAUTH = "https://schemas.openid.net/secevent/oauth/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
SPELLED = {
    "USER_LINKED": OAUTH + "user-linked",
    "USER_UNLINKED": OAUTH + "user-unlinked",
    "TOKENS_REVOKED": OAUTH + "tokens-revoked",
    "TOKEN_REVOKED": OAUTH + "token-revoked",
    "ACCOUNT_DISABLED": RISC + "account-disabled",
    "ACCOUNT_PURGED": RISC + "account-purged",
}


def test_the_event_uris_are_the_ones_kakao_sends() -> None:
    """Each URI letter for letter, and the ones after which Kakao takes the tokens back."""
    named = {name: getattr(events, name) for name in SPELLED}
    ending = {SPELLED[name] for name in SPELLED if name != "USER_LINKED"}

    assert named == SPELLED
    assert set(events.ENDING_EVENTS) == ending
