"""Why a KakaoTalk message was not delivered, and the fix, in Korean and English.

One home for the words: the command line's ``send-message``, the Action and the success page's
test message all explain Kakao's message failures (../shared/KAKAO_API.md §10) with these.
"""

from __future__ import annotations

from dataclasses import dataclass

# Not Kakao's codes: the owner is not in the sender's friends list (Kakao lists only friends
# who linked the app and consented to friends), or the deployment stores no owner.
OWNER_NOT_FOUND = "owner_not_found"
NO_OWNER = "no_owner"
_MEMBERS = (
    "[앱] > [멤버]에서 소유자 계정을 앱 멤버로 초대하세요(카카오톡 메시지 권한이 없는 앱은 "
    "멤버에게만 보낼 수 있습니다; 모두에게 보내려면 [앱] > [추가 기능 신청] > "
    "[카카오톡 친구/메시지])",
    "invite the owner's account as a member of the app at [앱] > [멤버] (an app without the "
    "message permission sends to its members only; for everyone, request it at [앱] > "
    "[추가 기능 신청] > [카카오톡 친구/메시지])",
)


@dataclass(frozen=True)
class Explained:
    """A failure: what happened and what to do, in both languages."""

    cause_ko: str
    cause_en: str
    fix_ko: str
    fix_en: str

    def line(self, code: str) -> str:
        """One line for a terminal or a log: Korean first, then English."""
        return f"{self.cause_ko}: {self.fix_ko} / {self.cause_en}: {self.fix_en}" + (
            f" (Kakao {code})" if code.startswith("-") else ""
        )


_WORDS: dict[str, Explained] = {
    "-502": Explained(
        "보내는 계정과 소유자가 카카오톡 친구가 아닙니다",
        "the sender and the owner are not KakaoTalk friends",
        "두 계정을 카카오톡에서 서로 친구로 추가하세요",
        "add each other as friends in KakaoTalk",
    ),
    "-530": Explained(
        "소유자가 이 앱의 메시지 받기를 거부했습니다",
        "the owner refuses messages from this app",
        "소유자의 카카오톡 설정에서 이 앱의 메시지 수신을 허용하세요",
        "allow this app's messages in the owner's KakaoTalk settings",
    ),
    "-531": Explained(
        "보내는 계정의 월간 한도를 넘었습니다",
        "the sender's monthly quota is used up",
        "다음 달 1일(한국 시간)에 다시 보내세요",
        "send again on the 1st of next month (KST)",
    ),
    "-532": Explained(
        "보내는 계정의 하루 한도(100건)를 넘었습니다",
        "the sender's daily quota (100) is used up",
        "자정(한국 시간) 이후 다시 보내세요",
        "send again after midnight KST",
    ),
    "-533": Explained(
        "받는 사람의 하루 한도(100건)를 넘었습니다",
        "the receiver's daily quota (100) is used up",
        "자정(한국 시간) 이후 다시 보내세요",
        "send again after midnight KST",
    ),
    "-536": Explained(
        "이 두 계정 사이의 하루 한도(20건)를 넘었습니다",
        "the daily quota between these two accounts (20) is used up",
        "자정(한국 시간) 이후 다시 보내세요; 여러 줄은 한 메시지로 묶으세요",
        "send again after midnight KST; put several lines in one message",
    ),
    "-402": Explained(
        "동의 항목이 빠졌습니다(friends 또는 talk_message)",
        "a consent item is missing (friends or talk_message)",
        "보내는 계정은 콜백 URL에서 다시 로그인해 추가 동의하세요; [카카오 로그인] > [동의항목]에 "
        "두 항목이 설정돼 있어야 합니다",
        "log the sender in again at the callback URL to consent; both items must be set at "
        "[카카오 로그인] > [동의항목]",
    ),
    "-2": Explained(
        "카카오가 받는 사람이나 메시지를 거절했습니다",
        "Kakao refused the receiver or the message",
        _MEMBERS[0] + "; 템플릿은 텍스트 200자 이하, link 필수",
        _MEMBERS[1] + "; a template's text is at most 200 characters and needs a link",
    ),
    "-10": Explained(
        "앱의 하루 한도를 넘었습니다",
        "the app's daily quota is used up",
        "자정(한국 시간) 이후 다시 보내세요",
        "send again after midnight KST",
    ),
    OWNER_NOT_FOUND: Explained(
        "보내는 계정의 친구 목록에 소유자가 없습니다",
        "the owner is not in the sender's friends list",
        "두 계정이 카카오톡 친구인지 확인하고, 소유자가 콜백 URL에서 다시 로그인해 friends "
        "동의를 추가하세요(카카오가 추가 동의를 묻습니다); " + _MEMBERS[0],
        "make sure the two accounts are KakaoTalk friends, and have the owner log in again at "
        "the callback URL to add the friends consent (Kakao asks for it); " + _MEMBERS[1],
    ),
    NO_OWNER: Explained(
        "소유자의 로그인이 저장돼 있지 않습니다",
        "no owner's login is stored",
        "소유자 계정으로 콜백 URL에서 로그인하세요",
        "log the owner in at the callback URL",
    ),
}
_UNKNOWN = Explained(
    "카카오가 메시지를 전달하지 않았습니다",
    "Kakao did not deliver the message",
    "잠시 후 다시 보내고, 계속되면 함수 로그를 확인하세요",
    "try again later; if it lasts, read the function's logs",
)


def explain(code: str) -> Explained:
    """The words for Kakao's failure ``code`` (``-502``), or for one of this module's."""
    return _WORDS.get(code, _UNKNOWN)
