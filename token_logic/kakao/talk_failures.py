"""Why a message to the owner was not delivered, and what to do, in the words a person reads:
each failure in Korean and in English, said in the reader's language (language.py).

Kakao's codes for messages are in ../shared/KAKAO_API.md §10 (and §4 for -2, -401, -402, -10).
A failure that will repeat (a quota, not friends, a missing consent) stops the parts after it;
only Kakao's temporary fault (-1) lets the next part be tried.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DeadlineReached, KakaoError, KakaoTokenError, KakaoUnavailable
from ..language import BOTH, Languages, Words
from .talk import (
    NOT_FRIEND,
    PAIR_DAILY_QUOTA,
    RECEIVER_DAILY_QUOTA,
    RECEIVER_REFUSES,
    SENDER_DAILY_QUOTA,
    SENDER_MONTHLY_QUOTA,
)

FRIEND = "friend"  # the sender's message to the owner: it rings
MEMO = "memo"  # the owner's memo to themselves (나와의 채팅): silent
NOT_IN_FRIENDS = "not_in_friends"  # our own code: the owner is missing from the sender's list
UNAVAILABLE = "unavailable"
OUT_OF_TIME = "out_of_time"  # our own code: the request's deadline came before the call
# (Korean, English): a cause, or a fix.
_Said = tuple[str, str]
_DAILY_RESET = ("한국 시간 자정에 다시 채워집니다", "it resets at midnight KST")
_MEMBERS = (
    "카카오 디벨로퍼스의 [앱] > [멤버]에서 {ko}을 멤버로 초대하거나, [앱] > [추가 기능 신청] > "
    "[카카오톡 친구/메시지]에서 권한을 신청하세요",
    "invite {en} as members at [앱] > [멤버] in the Kakao Developers console, or request the "
    "permission at [앱] > [추가 기능 신청] > [카카오톡 친구/메시지]",
)
_SENDER_LOGIN = (
    "보내는 계정으로 보내는 계정 링크를 다시 열어 로그인하세요"
    "(`python -m token_logic claim-url --sender`가 만듭니다)",
    "log in again with the sender's account through the sender link "
    "(`python -m token_logic claim-url --sender` makes one)",
)


@dataclass(frozen=True)
class MessageFailure:
    """One part not delivered (``part`` 0: none could be sent): Kakao's code (``-502``, or
    ``not_in_friends``, ``unavailable``), a short form (``-502 not friends``), the cause and
    fix in Korean (``ko``) and in English (``en``), and whether the next part would fail the
    same way."""

    code: str
    short: str
    ko: str
    en: str
    part: int = 0
    repeats: bool = True

    def line(self, languages: Languages = BOTH) -> str:
        """The failure in ``languages``, one line each (language.py)."""
        return Words(self.ko, self.en).said(languages)


def failure_for(
    exc: KakaoTokenError, *, route: str, receiver: int | None, part: int, template: bool = False
) -> MessageFailure:
    """The failure of a Kakao call that raised (a send, or the friends list with part 0)."""
    if isinstance(exc, KakaoUnavailable):
        cause = (
            f"카카오에 연결하지 못했습니다({exc.reason})",
            f"Kakao could not be reached ({exc.reason})",
        )
        words = _joined(cause, ("잠시 뒤 다시 보내세요", "try again later"))
        return MessageFailure(UNAVAILABLE, f"Kakao unavailable ({exc.reason})", *words, part)
    if isinstance(exc, DeadlineReached):
        cause = (
            "요청의 시간이 다 되어 카카오에 보내지 못했습니다",
            "the request ran out of time before Kakao was asked",
        )
        words = _joined(cause, ("잠시 뒤 다시 보내세요", "try again later"))
        return MessageFailure(OUT_OF_TIME, "out of time", *words, part)
    if isinstance(exc, KakaoError):
        scopes = exc.required_scopes or (("talk_message",) if exc.code == "-402" else ())
        return failure_for_code(
            exc.code, route=route, receiver=receiver, part=part, scopes=scopes, template=template
        )
    return failure_for_code("", route=route, receiver=receiver, part=part)


def failure_for_code(
    code: str,
    *,
    route: str,
    receiver: int | None,
    part: int,
    scopes: tuple[str, ...] = (),
    template: bool = False,
) -> MessageFailure:
    """The failure Kakao's code stands for (an error answer, or a ``failure_info`` entry)."""
    # The code reaches log lines and the Action's output: a number, or nothing.
    code = code if code.removeprefix("-").isdigit() and code.isascii() else ""
    owner = (
        (f"사용자 {receiver}", f"user {receiver}")
        if receiver is not None
        else ("받는 계정", "the owner")
    )
    short, cause, fix = _quota(code) or _refusal(code, route, owner, scopes, template)
    return MessageFailure(code, short, *_joined(cause, fix), part, repeats=code != "-1")


def not_in_friends(receiver: int, sender: int | None) -> MessageFailure:
    """The owner is not in the sender's friends list, so no part can be sent."""
    ko_sender = f"(사용자 {sender})" if sender is not None else ""
    en_sender = f" (user {sender})" if sender is not None else ""
    cause = (
        f"받는 계정(사용자 {receiver})이 보내는 계정{ko_sender}의 친구 목록에 없습니다",
        f"the owner (user {receiver}) is not in the sender's{en_sender} friends list",
    )
    fix = (
        "받는 계정이 '카카오 서비스 내 친구목록(friends)'에 동의해야 합니다: 받는 계정으로 "
        "로그인 URL(kakao_callback)을 다시 열면 카카오가 friends 추가 동의를 묻습니다. 두 계정이 "
        "카카오톡 친구인지, 메시지 권한이 없는 앱이면 두 계정이 [앱] > [멤버]에 있는지도 "
        "확인하세요",
        "the owner must consent to friends: open the login URL (kakao_callback) again with the "
        "owner's account, and Kakao asks the additional consent for friends. Check too that "
        "the two accounts are KakaoTalk friends and, for an app without the message "
        "permission, that both are members at [앱] > [멤버]",
    )
    return MessageFailure(
        NOT_IN_FRIENDS, "owner not in the sender's friends list", *_joined(cause, fix)
    )


def _joined(cause: _Said, fix: _Said) -> _Said:
    return f"{cause[0]}; {fix[0]}", f"{cause[1]}; {fix[1]}"


def _quota(code: str) -> tuple[str, _Said, _Said] | None:
    if code == SENDER_MONTHLY_QUOTA:
        return (
            "-531 sender's monthly quota",
            (
                "보내는 계정의 한 달 전송 한도를 넘었습니다(-531)",
                "the sender's monthly quota is used up (-531)",
            ),
            ("매월 1일(한국 시간)에 다시 채워집니다", "it resets on the 1st of the month (KST)"),
        )
    daily = {
        SENDER_DAILY_QUOTA: (
            "sender's daily quota",
            "보내는 계정의 하루 전송 한도(100건)",
            "the sender's daily quota (100 messages)",
        ),
        RECEIVER_DAILY_QUOTA: (
            "receiver's daily quota",
            "받는 계정의 하루 수신 한도(100건)",
            "the owner's daily quota of received messages (100)",
        ),
        PAIR_DAILY_QUOTA: (
            "pair's daily quota",
            "두 계정 사이의 하루 한도(20건)",
            "the daily quota between the sender and the owner (20 messages)",
        ),
    }.get(code)
    if daily is None:
        return None
    short, ko, en = daily
    return (
        f"{code} {short}",
        (f"{ko}를 넘었습니다({code})", f"{en} is used up ({code})"),
        _DAILY_RESET,
    )


def _refusal(
    code: str, route: str, owner: _Said, scopes: tuple[str, ...], template: bool
) -> tuple[str, _Said, _Said]:
    ko_owner, en_owner = owner
    if code == NOT_FRIEND:
        return (
            "-502 not friends",
            (
                f"보내는 계정과 받는 계정({ko_owner})이 카카오톡 친구가 아닙니다(-502)",
                f"the sender and the owner ({en_owner}) are not KakaoTalk friends (-502)",
            ),
            (
                "카카오톡에서 두 계정을 서로 친구로 추가하세요",
                "make the two accounts friends in KakaoTalk (each adds the other)",
            ),
        )
    if code == RECEIVER_REFUSES:
        return (
            "-530 receiver refuses messages",
            (
                f"받는 계정({ko_owner})이 메시지를 받지 않습니다(-530)",
                f"the owner ({en_owner}) refuses messages (-530)",
            ),
            (
                "받는 계정의 카카오톡에서 메시지 수신 거부와 프로필 비공개를 풀어 주세요",
                "in the owner's KakaoTalk, allow messages and make the profile public",
            ),
        )
    if code == "-2" and route == FRIEND:
        ko_also, en_also = (
            (
                "; --template-json이면 템플릿도 확인하세요",
                "; with --template-json, check the template",
            )
            if template
            else ("", "")
        )
        return (
            "-2 not allowed (app member?)",
            (
                f"카카오가 {ko_owner}에게 보내기를 거부했습니다(-2): 메시지 권한이 없는 앱은 "
                "앱 멤버에게만 보냅니다",
                f"Kakao refused to send to {en_owner} (-2): an app without the message "
                "permission sends only to its members",
            ),
            (
                _MEMBERS[0].format(ko="받는 계정") + ko_also,
                _MEMBERS[1].format(en="the owner's account") + en_also,
            ),
        )
    if code == "-2":
        return (
            "-2 bad template",
            (
                "카카오가 메시지 템플릿을 거부했습니다(-2)",
                "Kakao refused the message template (-2)",
            ),
            (
                "text는 200자 이하, link에는 web_url 같은 주소가 하나 필요합니다",
                "a text of at most 200 characters, and a link with web_url or mobile_web_url",
            ),
        )
    if code == "-402":
        return _consent(route, scopes)
    if code == "-5":
        return (
            "-5 no permission (members only)",
            (
                "이 앱은 카카오톡 친구/메시지 권한이 없어 앱 멤버만 친구 API를 씁니다(-5)",
                "the app lacks the friends/message permission, so only its members may use it (-5)",
            ),
            (
                _MEMBERS[0].format(ko="보내는 계정과 받는 계정"),
                _MEMBERS[1].format(en="the sender's and the owner's accounts"),
            ),
        )
    if code == "-10":
        return (
            "-10 Kakao's quota",
            ("카카오 API 사용량 한도를 넘었습니다(-10)", "Kakao's API quota is exceeded (-10)"),
            (
                "잠시 뒤 다시 보내세요(앱의 하루 한도는 한국 시간 자정에 다시 채워집니다)",
                "try again later (the app's daily quota resets at midnight KST)",
            ),
        )
    if code == "-401":
        return (
            "-401 token refused",
            ("카카오가 액세스 토큰을 거부했습니다(-401)", "Kakao refused the access token (-401)"),
            (
                "잠시 뒤 다시 보내세요; 계속되면 그 계정으로 다시 로그인하세요",
                "try again in a minute; if it repeats, log in again with that account",
            ),
        )
    return (
        f"{code or 'error'} not delivered",
        (
            f"카카오가 메시지를 보내지 않았습니다({code or '?'})",
            f"Kakao did not deliver the message ({code or 'no code'})",
        ),
        ("잠시 뒤 다시 보내세요", "try again later"),
    )


def _consent(route: str, scopes: tuple[str, ...]) -> tuple[str, _Said, _Said]:
    named = ", ".join(scopes) or "?"
    if route == FRIEND:
        return (
            f"-402 sender's consent missing: {named}",
            (
                f"보내는 계정이 {named} 동의항목에 동의하지 않았습니다(-402)",
                f"the sender has not consented to {named} (-402)",
            ),
            _SENDER_LOGIN,
        )
    return (
        f"-402 consent missing: {named}",
        (
            f"받는 계정이 {named} 동의항목에 동의하지 않았습니다(-402)",
            f"the owner has not consented to {named} (-402)",
        ),
        (
            "받는 계정으로 로그인 URL(kakao_callback)을 다시 열어 동의하세요"
            "(KAKAO_SCOPE에 talk_message 포함)",
            "open the login URL (kakao_callback) again with the owner's account and consent "
            "(KAKAO_SCOPE must include talk_message)",
        ),
    )
