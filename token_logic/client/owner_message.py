"""A message to the deployment's owner through the token endpoint, one that rings when it can.

A memo to oneself lands silently in 나와의 채팅 (../shared/KAKAO_API.md §10). So when the
deployment has a sender (KAKAO_SENDER=1 and a second Kakao account logged in), the endpoint's
``?login=sender`` answer gives the sender's token and the owner's user id; the owner's uuid is
looked up in the sender's friends list (never kept: it is per app and may change) and the
message goes from the sender to the owner as an ordinary chat message. Without a sender (the
endpoint's 404 no_token_stored) it goes as a memo with the owner's token, and says so.

A text longer than a message takes goes in numbered parts (message_parts.py), in order; a
failure that would repeat (a quota, not friends) stops the rest, which are counted as not sent.
Kakao's answers become the result (MessageResult); the endpoint's refusals raise the package's
errors, as get_access_token() does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..errors import ConfigError, KakaoError, KakaoUnavailable, NoTokenStored
from ..kakao.api import DEFAULT_AUTH_BASE_URL, DEFAULT_MEMO_LINK, KakaoClient
from ..kakao.talk import find_friend, send_memo_template, send_to_friends, text_template
from ..logins import SENDER
from ..network import new_session
from .answers import RemoteToken
from .message_failures import (
    FRIEND,
    MEMO,
    MessageFailure,
    failure_for,
    failure_for_code,
    not_in_friends,
)
from .message_parts import numbered_parts
from .remote import URL_VARIABLE, RemoteSettings, remote_token

# Why a message went as a memo, and how to make the next one ring.
NO_SENDER_NOTE = (
    "보내는 계정이 없어 메모(나와의 채팅, 알림 없음)로 보냈습니다. 알림이 울리게 하려면 "
    "deploy.env에 KAKAO_SENDER=1을 넣고 ./deploy.sh를 다시 실행한 뒤, "
    "`python -m token_logic claim-url --sender`가 만든 링크를 두 번째 카카오 계정으로 "
    "여세요 / no sender: sent as a memo (나와의 채팅, no notification). To make it ring, "
    "set KAKAO_SENDER=1 in deploy.env, run ./deploy.sh again, "
    "and open the link `python -m token_logic claim-url --sender` prints with a second Kakao "
    "account"
)
NO_OWNER_NAMED_NOTE = (
    "엔드포인트가 보내는 계정의 받는 사람을 알려 주지 않아(이전 버전 배포?) 메모로 보냈습니다: "
    "./deploy.sh를 다시 실행하세요 / the endpoint named no owner for the sender (an older "
    "deployment?): sent as a memo. Run ./deploy.sh again"
)
NOT_SET = (
    f"{URL_VARIABLE}이 설정되지 않았습니다: ./deploy.sh가 출력한 토큰 엔드포인트 URL로 "
    "설정하세요 / "
    f"{URL_VARIABLE} is not set: set it to the token endpoint's URL that ./deploy.sh printed"
)


@dataclass(frozen=True)
class MessageResult:
    """What Kakao did with a message: how it went (``friend``: from the sender, it rings;
    ``memo``: the owner's own chat, silent), to whom, in how many parts, which were delivered
    (numbered from 1), each failure, and how many parts were not sent after one that would
    repeat. ``note``: why it went as a memo when a sender was wanted."""

    route: str
    receiver_user_id: int | None
    parts: int
    delivered: tuple[int, ...] = ()
    failures: tuple[MessageFailure, ...] = ()
    not_sent: int = 0
    note: str = ""

    @property
    def ok(self) -> bool:
        """Every part was delivered."""
        return len(self.delivered) == self.parts and not self.failures

    @property
    def summary(self) -> str:
        """``delivered``, or the first failure's short form (``failed: -502 not friends``)."""
        return "delivered" if self.ok else f"failed: {self.failures[0].short}"


def send_message(
    text: str | None = None,
    *,
    template: Mapping[str, Any] | None = None,
    link: str | None = None,
    memo: bool = False,
    user_id: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> MessageResult:
    """Send ``text`` (any length: numbered parts of at most 200 characters) or one of Kakao's
    default ``template`` objects, as is, to the deployment's owner: from the sender when the
    deployment has one, so it rings; else, or with ``memo``, as a memo with the owner's token.

    ``link`` is what a text opens (default: KAKAO_MEMO_LINK here, else the deployment's, else
    Kakao Developers). ``user_id`` names the login of a deployment with one per user (a memo:
    such a deployment has no sender). Needs KAKAO_TOKEN_URL in ``environ`` (default
    os.environ). Returns what Kakao did (MessageResult: check ``ok``); raises a
    KakaoTokenError when the endpoint refuses or cannot be reached.
    """
    environ = os.environ if environ is None else environ
    settings = RemoteSettings.from_env(environ)
    if settings is None:
        raise ConfigError(NOT_SET, (URL_VARIABLE,))
    return send_to_owner(settings, text, template=template, link=link, memo=memo, user_id=user_id)


def send_to_owner(
    settings: RemoteSettings,
    text: str | None,
    *,
    template: Mapping[str, Any] | None = None,
    link: str | None = None,
    memo: bool = False,
    user_id: int | None = None,
    kakao: KakaoClient | None = None,
) -> MessageResult:
    """send_message() with the endpoint's settings read already (the command line's path)."""
    if (text is None) == (template is None) or (template is not None and link):
        raise ValueError("give a text (with its link, if any) or a template")
    if text is not None and not text.strip():
        raise ValueError("the text is empty")
    kakao = kakao or _kakao_for(settings)
    note = ""
    if not memo and user_id is None:
        try:
            sender = remote_token(settings, login=SENDER)
        except NoTokenStored:
            note = NO_SENDER_NOTE
        else:
            if sender.receiver_user_id is not None:
                templates = _templates(text, template, _link(settings, link, sender))
                return _from_sender(kakao, sender, templates, custom=template is not None)
            note = NO_OWNER_NAMED_NOTE
    owner = remote_token(settings, user_id)
    templates = _templates(text, template, _link(settings, link, owner))
    return _as_memos(kakao, owner, templates, note, custom=template is not None)


def _from_sender(
    kakao: KakaoClient, sender: RemoteToken, templates: list[dict[str, Any]], *, custom: bool
) -> MessageResult:
    owner, count = sender.receiver_user_id, len(templates)
    if owner is None:  # pragma: no cover - the caller sends a memo instead
        raise ValueError("the sender's answer names no owner")
    try:
        friend = find_friend(kakao, sender.access_token, owner)
    except (KakaoError, KakaoUnavailable) as exc:
        failure = failure_for(exc, route=FRIEND, receiver=owner, part=0)
        return MessageResult(FRIEND, owner, count, failures=(failure,), not_sent=count)
    if friend is None:
        failure = not_in_friends(owner, sender.user_id)
        return MessageResult(FRIEND, owner, count, failures=(failure,), not_sent=count)

    def send(template: dict[str, Any], part: int) -> MessageFailure | None:
        try:
            result = send_to_friends(kakao, sender.access_token, [friend.uuid], template)
        except (KakaoError, KakaoUnavailable) as exc:
            return failure_for(exc, route=FRIEND, receiver=owner, part=part, template=custom)
        if friend.uuid in result.successful_receiver_uuids:
            return None
        code = result.failures[0].code if result.failures else ""
        return failure_for_code(code, route=FRIEND, receiver=owner, part=part, template=custom)

    return _each_part(FRIEND, owner, templates, send)


def _as_memos(
    kakao: KakaoClient,
    owner: RemoteToken,
    templates: list[dict[str, Any]],
    note: str,
    *,
    custom: bool,
) -> MessageResult:
    def send(template: dict[str, Any], part: int) -> MessageFailure | None:
        try:
            send_memo_template(kakao, owner.access_token, template)
        except (KakaoError, KakaoUnavailable) as exc:
            return failure_for(exc, route=MEMO, receiver=owner.user_id, part=part, template=custom)
        return None

    return _each_part(MEMO, owner.user_id, templates, send, note)


def _each_part(
    route: str,
    receiver: int | None,
    templates: list[dict[str, Any]],
    send: Callable[[dict[str, Any], int], MessageFailure | None],
    note: str = "",
) -> MessageResult:
    """Send the parts in order; after a failure that would repeat, the rest are not sent."""
    delivered: list[int] = []
    failures: list[MessageFailure] = []
    not_sent = 0
    for part, template in enumerate(templates, 1):
        failure = send(template, part)
        if failure is None:
            delivered.append(part)
            continue
        failures.append(failure)
        if failure.repeats:
            not_sent = len(templates) - part
            break
    return MessageResult(
        route, receiver, len(templates), tuple(delivered), tuple(failures), not_sent, note
    )


def _templates(
    text: str | None, template: Mapping[str, Any] | None, link: str
) -> list[dict[str, Any]]:
    if template is not None or text is None:
        return [dict(template or {})]  # sent as it is
    return [text_template(part, link) for part in numbered_parts(text)]


def _link(settings: RemoteSettings, given: str | None, token: RemoteToken) -> str:
    """--link; else KAKAO_MEMO_LINK set here; else the deployment's; else Kakao Developers."""
    if given:
        return given
    if settings.memo_link_set:
        return settings.memo_link
    return token.memo_link or DEFAULT_MEMO_LINK


def _kakao_for(settings: RemoteSettings) -> KakaoClient:
    return KakaoClient(
        partial(new_session, settings.proxies, settings.ca_bundle),
        rest_api_key="",
        client_secret="",
        redirect_uri="",
        auth_base_url=DEFAULT_AUTH_BASE_URL,
        api_base_url=settings.api_base_url,
    )
