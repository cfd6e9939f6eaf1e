"""The one place that turns an error into an HTTP status and words a person can act on.

Every message says what to do next: start again (the person) or which setting to fix (the
operator). Nothing here ever includes a token, a code or a secret. The pages, the token
endpoint, the sweep's report and the command line all speak through ``problem_for``.

The words are tables: one row per kind of error (``_BY_KIND``, most specific first) and one per
Kakao code (``_BY_KAKAO_CODE``); a detail may name the error's non-secret facts as
``{exc.user_id}`` (str.format over the error).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .budget import LONGEST_WAIT_SECONDS
from .errors import (
    AuthorizationDenied,
    ClaimRequired,
    ConfigError,
    DeadlineReached,
    IdentityUnverified,
    KakaoError,
    KakaoTokenError,
    KakaoUnavailable,
    LoginRequired,
    LoginStateError,
    NoTokenStored,
    NotTheOwner,
    OwnerIsSender,
    SenderIsOwner,
    SenderNeedsOwner,
    StorageError,
    UserIdRequired,
    UserNotAllowed,
)
from .kakao.codes import RATE_LIMIT_CODES, TEMPORARY_CODES
from .kakao.console import STEP_TO_REDO
from .language import Languages, Words

CONSOLE = "Kakao Developers console (developers.kakao.com > 내 애플리케이션)"
# Kakao's token rate limit resets within ten minutes (KAKAO_API.md §3) when it sends no
# Retry-After.
_RATE_LIMIT_SECONDS = 600


@dataclass(frozen=True)
class Problem:
    """What went wrong, for a person: HTTP status, Korean and English text, a retry hint."""

    status: int
    title_ko: str
    title_en: str
    detail_ko: str
    detail_en: str
    code: str = ""
    start_again: bool = False
    retry_after: int | None = None
    # The Kakao console step to redo, when a console setting is wrong (kakao/console.py).
    step_ko: str = ""
    step_en: str = ""

    def one_line(self) -> str:
        """English, one line: for logs' readers (and the command line's English readers)."""
        code = f" [{self.code}]" if self.code else ""
        step = f" Step to redo: {self.step_en}" if self.step_en else ""
        return f"{self.title_en}{code}: {self.detail_en}{step}"

    def said(self, languages: Languages) -> str:
        """One line a language (language.py): what the command line prints."""
        code = f" [{self.code}]" if self.code else ""
        step_ko = f" 다시 할 단계: {self.step_ko}" if self.step_ko else ""
        korean = f"{self.title_ko}{code}: {self.detail_ko}{step_ko}"
        return Words(korean, self.one_line()).said(languages)


@dataclass(frozen=True)
class _Words:
    """A row of the tables: the status and the texts, whose details may name ``{exc...}``."""

    status: int
    title_ko: str
    title_en: str
    detail_ko: str
    detail_en: str
    start_again: bool = False

    def problem(
        self, exc: KakaoTokenError, *, code: str = "", retry_after: int | None = None
    ) -> Problem:
        return Problem(
            self.status,
            self.title_ko,
            self.title_en,
            self.detail_ko.format(exc=exc),
            self.detail_en.format(exc=exc),
            code=code,
            start_again=self.start_again,
            retry_after=retry_after,
        )


_NOT_CONFIGURED = _Words(
    500,
    "설정이 필요합니다",
    "Not configured",
    "운영자: 환경 변수를 확인하세요. {exc}",
    "Operator: set the environment variables. {exc}",
)
_NAME_THE_USER = _Words(
    400,
    "사용자를 지정하세요",
    "Name the Kakao user",
    "이 배포는 카카오 사용자마다 토큰을 따로 저장합니다. 요청에 user_id(Action의 user_id 입력, "
    "kakao-token --user)를 넣으세요. {exc}",
    "This deployment keeps one login per Kakao user: add user_id (the Action's user_id input, "
    "kakao-token --user). {exc}",
)
_START_AGAIN = _Words(
    400,
    "로그인을 다시 시작하세요",
    "Please start the login again",
    "이 로그인 링크는 만료되었거나, 이미 사용되었거나, 이 브라우저에서 시작되지 "
    "않았습니다. 저장된 토큰은 바뀌지 않았습니다.",
    "This login link expired, was already used, or was not started in this "
    "browser. The stored token was not changed.",
    start_again=True,
)
_CANCELLED = _Words(
    403,
    "로그인을 취소했습니다",
    "Login cancelled",
    "카카오 로그인 동의를 취소했습니다. 아무것도 저장하지 않았습니다.",
    "You cancelled the Kakao login. Nothing was stored.",
    start_again=True,
)
_NOT_COMPLETED = _Words(
    400,
    "카카오가 로그인을 완료하지 않았습니다",
    "Kakao did not complete the login",
    "카카오가 오류를 돌려주었습니다. 아무것도 저장하지 않았습니다. 동의 항목(KAKAO_SCOPE)이 "
    "콘솔에서 설정되어 있는지 확인하세요.",
    "Kakao returned an error; nothing was stored. Check that the consent items in "
    f"KAKAO_SCOPE are enabled in the {CONSOLE}.",
    start_again=True,
)
_NOT_ALLOWED = _Words(
    403,
    "허용되지 않은 사용자입니다",
    "This Kakao account is not allowed",
    "카카오 사용자 {exc.user_id}는 ALLOWED_KAKAO_USER_IDS에 없습니다. 아무것도 "
    "저장하지 않았고 방금 받은 토큰은 로그아웃 처리했습니다.",
    "Kakao user {exc.user_id} is not in ALLOWED_KAKAO_USER_IDS. Nothing was "
    "stored and the new token was logged out.",
    start_again=True,
)
_NOT_THE_OWNER = _Words(
    403,
    "다른 계정의 배포입니다",
    "This deployment belongs to another account",
    "이 배포는 다른 카카오 계정의 것입니다(사용자 {exc.user_id}는 소유자가 아님). "
    "아무것도 저장하지 않았고 방금 받은 토큰은 로그아웃 처리했습니다. 소유자를 바꾸려면 "
    "운영자가 `python -m token_logic claim-url`로 만든 소유권 링크를 새 계정으로 여세요.",
    "This deployment belongs to another Kakao account (user {exc.user_id} is not it). "
    "Nothing was stored and the new token was logged out. To hand it over, the "
    "operator makes a claim link with `python -m token_logic claim-url` and the new "
    "account opens it.",
    start_again=True,
)
_SENDER_IS_OWNER = _Words(
    409,
    "보내는 계정은 소유자와 다른 계정이어야 합니다",
    "The sender must be a second Kakao account",
    "사용자 {exc.user_id}는 이 배포의 소유자입니다. 보내는 계정 링크는 소유자에게 메시지를 "
    "보낼 두 번째 카카오 계정으로 여세요(다른 브라우저나 시크릿 창에서 그 계정으로 로그인). "
    "아무것도 저장하지 않았고 링크는 아직 쓸 수 있습니다.",
    "User {exc.user_id} owns this deployment. Open the sender link with the second Kakao "
    "account that will message the owner (another browser or a private window, logged in as "
    "that account). Nothing was stored and the link still works.",
)
_SENDER_NEEDS_OWNER = _Words(
    409,
    "소유자가 먼저 로그인해야 합니다",
    "The owner logs in first",
    "보내는 계정은 소유자에게 메시지를 보내는 두 번째 계정입니다. 소유자 계정으로 소유권 링크나 "
    "콜백 URL에서 먼저 로그인한 뒤, 두 번째 계정으로 이 링크를 다시 여세요(링크는 아직 쓸 수 "
    "있습니다). 아무것도 저장하지 않았습니다.",
    "The sender is a second account that messages the owner. Log the owner in first (the "
    "owner's claim link, or the callback URL), then open this link again with the second "
    "account (it still works). Nothing was stored.",
)
_OWNER_IS_SENDER = _Words(
    409,
    "이 계정은 보내는 계정입니다",
    "This account is the sender",
    "사용자 {exc.user_id}는 이 배포의 보내는 계정이라 소유자가 될 수 없습니다(한 계정은 둘 중 "
    "하나만). 소유자는 다른 계정으로 로그인하세요. 이 계정을 소유자로 하려면 먼저 "
    "`python -m token_logic logout --sender`를 실행하세요. 아무것도 바꾸지 않았습니다.",
    "User {exc.user_id} is this deployment's sender, so it cannot be the owner too (one account, "
    "one login). Log the owner in with another account; to make this account the owner, run "
    "`python -m token_logic logout --sender` first. Nothing was changed.",
)
_OWNER_UNKNOWN = _Words(
    403,
    _NOT_THE_OWNER.title_ko,
    _NOT_THE_OWNER.title_en,
    "저장된 토큰에 소유자(user_id)가 없습니다. 아무것도 저장하지 않았습니다. 운영자가 "
    "`python -m token_logic claim-url`로 소유권 링크를 만들어 열거나 "
    "ALLOWED_KAKAO_USER_IDS를 설정하세요.",
    "The stored token names no owner (no user_id), so nothing was stored. The "
    "operator opens a claim link made with `python -m token_logic claim-url`, or sets "
    "ALLOWED_KAKAO_USER_IDS.",
    start_again=True,
)
_UNVERIFIED = _Words(
    503,
    "사용자를 확인하지 못했습니다",
    "Could not verify who logged in",
    "카카오 사용자 확인에 실패해 아무것도 저장하지 않았습니다. 잠시 후 다시 로그인하세요.",
    "The Kakao user could not be verified, so nothing was stored. Try again in a minute.",
    start_again=True,
)
_LOG_IN_AGAIN = _Words(
    401,
    "다시 로그인해야 합니다",
    "Log in again",
    "리프레시 토큰이 만료되었거나 폐기되었습니다. 콜백 URL을 열어 다시 로그인하세요.",
    "The refresh token expired or was revoked. Open the callback URL and log in again.",
    start_again=True,
)
_KAKAO_DOWN = _Words(
    502,
    "카카오 서버에 연결하지 못했습니다",
    "Kakao is not answering",
    "카카오 서버가 응답하지 않거나 올바르지 않은 응답을 보냈습니다. 잠시 후 다시 "
    "시도하세요. 저장된 토큰은 그대로입니다.",
    "Kakao did not answer or answered something unexpected. Try again in a "
    "minute; the stored token is unchanged.",
    start_again=True,
)
# Kakao unreachable is 503, a timeout 504; anything else (5xx, garbage) a bad gateway.
_KAKAO_DOWN_STATUS = {"timeout": 504, "unreachable": 503}
_NOTHING_STORED = _Words(
    404,
    "저장된 토큰이 없습니다",
    "No token stored yet",
    "먼저 콜백 URL을 열어 카카오 로그인을 하세요.",
    "Log in first: open the callback URL. ({exc})",
    start_again=True,
)
_OUT_OF_TIME = _Words(
    503,
    "시간이 부족합니다",
    "Out of time",
    "요청 시간 안에 토큰을 안전하게 갱신·저장할 수 없어 중단했습니다. 저장된 토큰은 "
    "그대로입니다. 잠시 후 다시 시도하세요.",
    "The request ran out of time before the token could be refreshed and stored "
    "safely ({exc}); the stored token is unchanged. Try again shortly.",
    start_again=True,
)
_STORAGE_FAILED = _Words(
    503,
    "토큰 저장소 오류",
    "Token storage failed",
    "토큰 저장소(TOKEN_BUCKET 또는 TOKEN_DIR)를 읽거나 쓰지 못했습니다. 버킷 "
    "이름과 서비스 계정 권한을 확인하세요.",
    "Could not use the token store. Check TOKEN_BUCKET / TOKEN_DIR and the "
    "service account's access. ({exc})",
)
_UNEXPECTED = _Words(
    500,
    "알 수 없는 오류",
    "Unexpected error",
    "잠시 후 다시 시도하세요.",
    "Please try again later.",
)

# What Kakao's own codes ask of whom (KAKAO_API.md §3 and §8).
_BY_KAKAO_CODE = {
    "KOE320": _Words(
        400,
        "인증 코드가 만료되었습니다",
        "The login code expired or was used",
        "카카오 인증 코드는 한 번만 쓸 수 있습니다(새로고침·두 번째 탭). 다시 "
        "로그인하세요. 저장된 토큰은 바뀌지 않았습니다.",
        "Kakao codes work once (a reload or second tab reuses it). Start again; "
        "the stored token was not changed.",
        start_again=True,
    ),
    # The operator's console settings; each Problem also names the step to redo (_kakao_error).
    "KOE303": _Words(
        502,
        "Redirect URI 불일치",
        "Redirect URI mismatch",
        "운영자: KAKAO_REDIRECT_URI가 카카오에 등록한 리다이렉트 URI와 다릅니다. 아무것도 "
        "저장하지 않았습니다.",
        "Operator: KAKAO_REDIRECT_URI differs from the Redirect URI registered at Kakao. "
        "Nothing was stored.",
    ),
    "KOE010": _Words(
        502,
        "클라이언트 시크릿 오류",
        "Client secret missing or wrong",
        "운영자: 카카오가 KAKAO_CLIENT_SECRET을 받아들이지 않았습니다(비어 있거나 이 REST API "
        "키의 클라이언트 시크릿이 아님).",
        "Operator: Kakao refused KAKAO_CLIENT_SECRET (empty, or not the client secret of this "
        "REST API key).",
    ),
    "KOE101": _Words(
        502,
        "앱 키 오류",
        "Wrong app key",
        "운영자: 카카오가 KAKAO_REST_API_KEY의 키를 모릅니다.",
        "Operator: Kakao does not know the key in KAKAO_REST_API_KEY.",
    ),
    "KOE006": _Words(
        502,
        "Redirect URI 미등록",
        "Redirect URI not registered",
        "운영자: 이 배포의 콜백 URL이 REST API 키의 리다이렉트 URI로 등록되어 있지 않습니다.",
        "Operator: this deployment's callback URL is not a registered Redirect URI of the "
        "REST API key.",
    ),
    "KOE004": _Words(
        502,
        "카카오 로그인이 꺼져 있습니다",
        "Kakao Login is switched off",
        "운영자: 앱의 카카오 로그인이 꺼져 있어 아무도 로그인할 수 없습니다.",
        "Operator: Kakao Login is switched off for the app, so nobody can log in.",
    ),
    "-402": _Words(
        403,
        "동의가 필요합니다",
        "Consent missing",
        "이 기능에 필요한 동의 항목이 없습니다. KAKAO_SCOPE에 talk_message를 넣고 다시 "
        "로그인하세요.",
        "A consent item is missing: add talk_message to KAKAO_SCOPE (and enable it "
        f"under Consent Items in the {CONSOLE}), then log in again.",
        start_again=True,
    ),
}
_RATE_LIMITED = _Words(
    429,
    "요청이 너무 많습니다",
    "Too many requests",
    "카카오 토큰 요청 한도를 넘었습니다. 몇 분 뒤에 다시 시도하세요.",
    "Kakao's token rate limit was hit. Try again in a few minutes.",
)
_KAKAO_TEMPORARY = _Words(
    503,
    "카카오 일시 오류",
    "Kakao is temporarily failing",
    "카카오 서버 오류입니다. 잠시 후 다시 시도하세요.",
    "Kakao reported a temporary fault. Try again in a minute.",
    start_again=True,
)
_KAKAO_REFUSED = _Words(
    502,
    "카카오가 요청을 거부했습니다",
    "Kakao refused the request",
    "다시 로그인해 보세요. 계속되면 운영자에게 오류 코드를 알려 주세요.",
    "Try logging in again; if it keeps failing, give the operator this code.",
    start_again=True,
)
_CLAIM_NEEDED = _Words(
    403,
    "소유권 링크가 필요합니다",
    "A claim link is needed",
    "{why_ko} {done_ko}운영자가 `python -m token_logic claim-url`을 실행하거나 "
    "`./deploy.sh`를 다시 실행하면 새 링크(하루 동안 한 번 유효)가 출력됩니다. 그 링크를 "
    "여세요.",
    "{why_en} {done_en}The operator runs `python -m token_logic claim-url` (or "
    "./deploy.sh again), which prints a new link, good once within a day: open that link.",
)
# Why the claim was refused (a link given, or none) and whether a token was logged out.
_CLAIM_WHY = {
    True: (
        "이 소유권 링크는 이미 쓰였거나 만료되었거나 새 링크로 바뀌었습니다.",
        "This claim link was used already, expired, or was replaced by a newer one.",
    ),
    False: (
        "이 배포는 아직 소유자가 없고, 소유권 링크로만 첫 로그인을 할 수 있습니다.",
        "Nobody owns this deployment yet; only a login through its claim link can.",
    ),
}
_CLAIM_DONE = {
    True: (
        "아무것도 저장하지 않았고 방금 받은 토큰은 로그아웃 처리했습니다. ",
        "Nothing was stored and the new token was logged out. ",
    ),
    False: ("", ""),
}


def problem_for(exc: KakaoTokenError) -> Problem:
    """Map any package error to its Problem."""
    for kind, explain in _BY_KIND:
        if isinstance(exc, kind):
            return explain(exc)
    return _UNEXPECTED.problem(exc)


def _kakao_error(exc: KakaoError) -> Problem:
    code = exc.code
    words = _BY_KAKAO_CODE.get(code)
    step = STEP_TO_REDO.get(code)
    if words is not None and step is not None:  # no Kakao call: the code names the setting
        return replace(words.problem(exc, code=code), step_ko=step.ko, step_en=step.en)
    if words is not None:
        return words.problem(exc, code=code)
    if code in RATE_LIMIT_CODES:
        wait = _seconds(exc.retry_after) or _RATE_LIMIT_SECONDS
        return _RATE_LIMITED.problem(exc, code=code, retry_after=wait)
    retry_after = _seconds(exc.retry_after)
    if code in TEMPORARY_CODES or exc.status >= 500:
        return _KAKAO_TEMPORARY.problem(exc, code=code, retry_after=retry_after)
    return _KAKAO_REFUSED.problem(exc, code=code or str(exc.status), retry_after=retry_after)


def _kakao_down(exc: KakaoUnavailable) -> Problem:
    problem = _KAKAO_DOWN.problem(exc, code=exc.reason, retry_after=_seconds(exc.retry_after))
    return replace(problem, status=_KAKAO_DOWN_STATUS.get(exc.reason, 502))


def _claim_required(exc: ClaimRequired) -> Problem:
    why_ko, why_en = _CLAIM_WHY[exc.link_given]
    done_ko, done_en = _CLAIM_DONE[exc.logged_out]
    filled = {"why_ko": why_ko, "why_en": why_en, "done_ko": done_ko, "done_en": done_en}
    return Problem(
        _CLAIM_NEEDED.status,
        _CLAIM_NEEDED.title_ko,
        _CLAIM_NEEDED.title_en,
        _CLAIM_NEEDED.detail_ko.format(**filled),
        _CLAIM_NEEDED.detail_en.format(**filled),
    )


def _seconds(retry_after: float | None) -> int | None:
    """A Retry-After in whole seconds, from 1 to the longest wait we ever ask for: whatever a
    stored document or Kakao says, no caller is told to come back in a day."""
    return min(max(1, int(retry_after)), LONGEST_WAIT_SECONDS) if retry_after else None


# Most specific first: a subclass before its parent.
_BY_KIND: tuple[tuple[type[Any], Callable[[Any], Problem]], ...] = (
    (UserIdRequired, _NAME_THE_USER.problem),
    (ConfigError, _NOT_CONFIGURED.problem),
    (LoginStateError, _START_AGAIN.problem),
    (
        AuthorizationDenied,
        lambda exc: (_CANCELLED if exc.error == "access_denied" else _NOT_COMPLETED).problem(
            exc, code=exc.error
        ),
    ),
    (ClaimRequired, _claim_required),
    (SenderIsOwner, _SENDER_IS_OWNER.problem),
    (SenderNeedsOwner, _SENDER_NEEDS_OWNER.problem),
    (OwnerIsSender, _OWNER_IS_SENDER.problem),
    (
        NotTheOwner,
        lambda exc: (_NOT_THE_OWNER if exc.owner_known else _OWNER_UNKNOWN).problem(exc),
    ),
    (UserNotAllowed, _NOT_ALLOWED.problem),
    (IdentityUnverified, _UNVERIFIED.problem),
    (LoginRequired, lambda exc: _LOG_IN_AGAIN.problem(exc, code=exc.code)),
    (KakaoError, _kakao_error),
    (KakaoUnavailable, _kakao_down),
    (NoTokenStored, _NOTHING_STORED.problem),
    (
        DeadlineReached,
        lambda exc: _OUT_OF_TIME.problem(
            exc, code="deadline", retry_after=_seconds(exc.retry_after)
        ),
    ),
    (StorageError, _STORAGE_FAILED.problem),
)
