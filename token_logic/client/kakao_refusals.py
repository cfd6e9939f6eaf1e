"""Kakao's API refusing what a script sends with the token (``send-memo``), said in the
reader's language with the fix: kakao.api raises the package's KakaoError or KakaoUnavailable,
whose own text is the server's terse English."""

from __future__ import annotations

from typing import TypeVar

from ..errors import KakaoError, KakaoTokenError, KakaoUnavailable
from ..kakao.codes import RATE_LIMIT_CODES, TEMPORARY_CODES
from ..language import Languages, Words

Failure = TypeVar("Failure", bound=KakaoTokenError)


def reworded(exc: Failure, text: str) -> Failure:
    """``exc`` saying ``text`` instead of its class's generic words (its facts unchanged)."""
    exc.args = (text,)
    return exc


def reword_memo_failure(exc: KakaoTokenError, languages: Languages) -> None:
    """The failure of a memo to oneself, reworded in place (the caller re-raises it) with its
    cause and fix in ``languages``."""
    reworded(exc, _memo_words(exc).said(languages))


def _memo_words(exc: KakaoTokenError) -> Words:
    if isinstance(exc, KakaoUnavailable):
        return Words(
            f"카카오에 연결하지 못했습니다({exc.reason}): 잠시 뒤 다시 보내세요",
            f"Kakao could not be reached ({exc.reason}): try again in a minute",
        )
    if not isinstance(exc, KakaoError):
        return Words(f"메모를 보내지 못했습니다: {exc}", f"the memo was not sent: {exc}")
    code = exc.code or f"HTTP {exc.status}"
    if exc.code == "-402":
        return Words(
            "카카오톡 메시지 동의(talk_message)가 없습니다(-402): KAKAO_SCOPE에 talk_message를 "
            "넣고(카카오 디벨로퍼스 [카카오 로그인] > [동의항목]에서도 설정) 콜백 URL에서 다시 "
            "로그인하세요",
            "the talk_message consent is missing (-402): add talk_message to KAKAO_SCOPE (and "
            "enable it under Consent Items in the Kakao Developers console), then log in again "
            "at the callback URL",
        )
    if exc.code == "-401":
        return Words(
            "카카오가 액세스 토큰을 거부했습니다(-401): 잠시 뒤 다시 보내고, 계속되면 콜백 "
            "URL에서 다시 로그인하세요",
            "Kakao refused the access token (-401): try again in a minute; if it repeats, log "
            "in again at the callback URL",
        )
    if exc.code == "-2":
        return Words(
            "카카오가 메모를 거부했습니다(-2): 텍스트는 200자 이하, KAKAO_MEMO_LINK는 앱에 "
            "등록한 도메인의 http(s) URL이어야 합니다",
            "Kakao refused the memo (-2): the text must be at most 200 characters, and "
            "KAKAO_MEMO_LINK an http(s) URL on a domain registered for the app",
        )
    if exc.code in RATE_LIMIT_CODES:
        return Words(
            f"카카오 API 사용 한도를 넘었습니다({code}): 잠시 뒤 다시 보내세요",
            f"Kakao's API quota is used up ({code}): try again later",
        )
    if exc.code in TEMPORARY_CODES or exc.status >= 500:
        return Words(
            f"카카오의 일시적인 오류입니다({code}): 잠시 뒤 다시 보내세요",
            f"Kakao reported a temporary fault ({code}): try again in a minute",
        )
    said = " ".join(part for part in (f"HTTP {exc.status}", exc.error, exc.code) if part)
    return Words(f"카카오가 메모를 거부했습니다({said})", f"Kakao refused the memo ({said})")
