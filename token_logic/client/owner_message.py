"""A message to the deployment's owner through the token endpoint, one that rings when it can.

A memo to oneself lands silently in 나와의 채팅 (../shared/KAKAO_API.md §10). So when the
deployment has a sender (KAKAO_SENDER=1 and a second Kakao account logged in), the endpoint's
``?login=sender`` answer gives the sender's token and the owner's user id; the owner's uuid is
looked up in the sender's friends list (never kept: it is per app and may change) and the
message goes from the sender to the owner as an ordinary chat message. Without a sender (the
endpoint's 404 no_token_stored), or with one the endpoint cannot serve now (its login dead,
Kakao unreachable), it goes as a memo with the owner's token, and says why. The
sending itself, parts and failures, is kakao/to_owner.py's. Kakao's answers become the result
(MessageResult); the endpoint's refusals raise the package's errors, as get_access_token()
does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from ..errors import ConfigError, KakaoTokenError
from ..kakao.api import DEFAULT_AUTH_BASE_URL, DEFAULT_MEMO_LINK, KakaoClient
from ..kakao.message_parts import too_many_parts
from ..kakao.to_owner import (
    NO_OWNER_NAMED_NOTE,
    SENDER_UNAVAILABLE_NOTE,
    MessageResult,
    send_as_memos,
    send_from_sender,
    templates_for,
    why_no_sender,
)
from ..language import Words
from ..logins import SENDER
from ..network import new_session
from .answers import RemoteToken
from .remote import URL_VARIABLE, RemoteSettings, forget_token, remote_token

NOT_SET = (
    f"{URL_VARIABLE}이 설정되지 않았습니다: ./deploy.sh가 출력한 토큰 엔드포인트 URL로 "
    "설정하세요 / "
    f"{URL_VARIABLE} is not set: set it to the token endpoint's URL that ./deploy.sh printed"
)


def send_message(
    text: str | None = None,
    *,
    template: Mapping[str, Any] | None = None,
    link: str | None = None,
    memo: bool = False,
    user_id: int | None = None,
    all_parts: bool = False,
    environ: Mapping[str, str] | None = None,
) -> MessageResult:
    """Send ``text`` (numbered parts of at most 200 characters) or one of Kakao's default
    ``template`` objects, as is, to the deployment's owner: from the sender when the
    deployment has one, so it rings; else, or with ``memo``, as a memo with the owner's token.

    A text of more than MAX_PARTS (5) parts is refused (ValueError) unless ``all_parts``: the
    sender may send the owner 20 messages a day. ``link`` is what a text opens (default:
    KAKAO_MEMO_LINK here, else the deployment's, else Kakao Developers). ``user_id`` names the
    login of a deployment with one per user (a memo: such a deployment has no sender). Needs
    KAKAO_TOKEN_URL in ``environ`` (default os.environ). Returns what Kakao did (MessageResult:
    check ``ok``); raises a KakaoTokenError when the endpoint refuses or cannot be reached.
    """
    environ = os.environ if environ is None else environ
    settings = RemoteSettings.from_env(environ)
    if settings is None:
        raise ConfigError(NOT_SET, (URL_VARIABLE,))
    return send_to_owner(
        settings,
        text,
        template=template,
        link=link,
        memo=memo,
        user_id=user_id,
        all_parts=all_parts,
    )


def send_to_owner(
    settings: RemoteSettings,
    text: str | None,
    *,
    template: Mapping[str, Any] | None = None,
    link: str | None = None,
    memo: bool = False,
    user_id: int | None = None,
    all_parts: bool = False,
    kakao: KakaoClient | None = None,
    on_token: Callable[[RemoteToken], None] | None = None,
) -> MessageResult:
    """send_message() with the endpoint's settings read already (the command line's path).
    ``on_token`` sees each token the endpoint gives before it is used (the Action masks it)."""
    if (text is None) == (template is None) or (template is not None and link):
        raise ValueError("give a text (with its link, if any) or a template")
    if text is not None and not text.strip():
        raise ValueError("the text is empty")
    if text is not None and not all_parts and (problem := too_many_parts(text, "all_parts=True")):
        raise ValueError(problem)  # before the endpoint is asked
    kakao = kakao or kakao_for(settings)
    seen = on_token or (lambda token: None)

    def parts(token: RemoteToken) -> list[dict[str, Any]]:
        link_url = memo_link_for(settings, link, token)
        return templates_for(text, template, link_url, all_parts=all_parts)

    note: Words | None = None
    if not memo and user_id is None:
        from_sender, note = _from_sender(settings, kakao, seen, parts, template is not None)
        if from_sender is not None:
            return from_sender
    return _as_memos(settings, kakao, seen, parts, note, user_id, template is not None)


def _as_memos(
    settings: RemoteSettings,
    kakao: KakaoClient,
    seen: Callable[[RemoteToken], None],
    parts: Callable[[RemoteToken], list[dict[str, Any]]],
    note: Words | None,
    user_id: int | None,
    custom: bool,
) -> MessageResult:
    """The message as the owner's memos. Kakao refusing the owner's token (-401) before a part
    arrived means a token kept from before the owner logged out or handed over: the endpoint is
    asked once more."""

    def attempt() -> tuple[RemoteToken, MessageResult]:
        owner = remote_token(settings, user_id)
        seen(owner)
        return owner, send_as_memos(kakao, owner, parts(owner), note, custom=custom)

    owner, result = attempt()
    if _token_refused(result) and not result.delivered:
        forget_token(settings, owner, user_id)
        _, result = attempt()
    return result


def _from_sender(
    settings: RemoteSettings,
    kakao: KakaoClient,
    seen: Callable[[RemoteToken], None],
    parts: Callable[[RemoteToken], list[dict[str, Any]]],
    custom: bool,
) -> tuple[MessageResult | None, Words | None]:
    """The message from the sender; else None and why it goes as a memo.

    Kakao refusing the sender's token (-401) before a part arrived means a token kept from
    before the sender logged out, logged in again or was replaced: the endpoint is asked
    again, once, and what it says now decides (a new token, or a memo saying why).
    """
    for _ in range(2):
        sender, note = _sender(settings, seen)
        if sender is None:
            return None, note
        if sender.receiver_user_id is None:
            return None, NO_OWNER_NAMED_NOTE
        result = send_from_sender(
            kakao, sender, sender.receiver_user_id, parts(sender), custom=custom
        )
        if not _token_refused(result):
            return result, None
        forget_token(settings, sender, login=SENDER)
        if result.delivered:
            return result, None  # the parts that arrived would arrive twice
    # Refused twice and nothing arrived: the endpoint still hands out the dead token (it keeps
    # one for its own 30 s), so the message goes as the owner's memo rather than nowhere.
    return None, SENDER_UNAVAILABLE_NOTE


def _sender(
    settings: RemoteSettings, seen: Callable[[RemoteToken], None]
) -> tuple[RemoteToken | None, Words | None]:
    """The sender's token from the endpoint; else None and why a memo goes instead."""
    try:
        sender = remote_token(settings, login=SENDER)
    except KakaoTokenError as exc:
        note = why_no_sender(exc)
        if note is None:  # the endpoint itself unreachable, our identity refused: say so
            raise
        return None, note
    seen(sender)
    return sender, None


def _token_refused(result: MessageResult) -> bool:
    """Kakao refused the token (-401): nothing after it was sent."""
    return bool(result.failures) and result.failures[-1].code == "-401"


def memo_link_for(settings: RemoteSettings, given: str | None, token: RemoteToken) -> str:
    """--link; else KAKAO_MEMO_LINK set here; else the deployment's; else Kakao Developers."""
    if given:
        return given
    if settings.memo_link_set:
        return settings.memo_link
    return token.memo_link or DEFAULT_MEMO_LINK


def kakao_for(settings: RemoteSettings) -> KakaoClient:
    """Kakao's API as a script calls it: no app key, the endpoint's proxies and CA bundle."""
    return KakaoClient(
        partial(new_session, settings.proxies, settings.ca_bundle),
        rest_api_key="",
        client_secret="",
        redirect_uri="",
        auth_base_url=DEFAULT_AUTH_BASE_URL,
        api_base_url=settings.api_base_url,
    )
