"""Where each Kakao setting lives in the Kakao Developers console (the console since its
overhaul of 2025-12-03, ../shared/KAKAO_API.md §9), and which console step to redo for each
Kakao code that means a setting there is wrong. One vocabulary for the check before the first
login (doctor.py) and the pages a failed login shows (problems.py). Standard library only:
deploy.sh runs the doctor with ``python3 -P -S``."""

from __future__ import annotations

from dataclasses import dataclass

CONSOLE = "Kakao Developers console (developers.kakao.com)"
REST_API_KEY_PAGE = "[앱] > [플랫폼 키] > [REST API 키]"
REDIRECT_URI_FIELD = f"{REST_API_KEY_PAGE} > [리다이렉트 URI]"
LOGIN_SWITCH = "[카카오 로그인] > [사용 설정] > [상태]"


@dataclass(frozen=True)
class Step:
    """A console step to redo, in Korean and in English (each a sentence)."""

    ko: str
    en: str


# The codes a console setting causes (KAKAO_API.md §1, §3, §9). The secret and the Redirect URI
# belong to one REST API key: the same key's page holds both.
STEP_TO_REDO = {
    "KOE101": Step(
        f"카카오 콘솔 {REST_API_KEY_PAGE}에서 REST API 키를 복사해 KAKAO_REST_API_KEY에 넣으세요.",
        f"Copy the REST API key from {REST_API_KEY_PAGE} in the {CONSOLE} into KAKAO_REST_API_KEY.",
    ),
    "KOE010": Step(
        f"카카오 콘솔 {REST_API_KEY_PAGE}에서 KAKAO_REST_API_KEY의 키를 열고, 그 키의 클라이언트 "
        "시크릿을 KAKAO_CLIENT_SECRET에 넣으세요.",
        f"Open the key of KAKAO_REST_API_KEY at {REST_API_KEY_PAGE} in the {CONSOLE} and copy "
        "that key's client secret (클라이언트 시크릿) into KAKAO_CLIENT_SECRET.",
    ),
    "KOE006": Step(
        f"카카오 콘솔 {REDIRECT_URI_FIELD}(KAKAO_REST_API_KEY와 같은 키)에 콜백 URL을 한 글자도 "
        "다르지 않게 등록하세요.",
        f"Register the callback URL, byte for byte, at {REDIRECT_URI_FIELD} of the key in "
        f"KAKAO_REST_API_KEY, in the {CONSOLE}.",
    ),
    "KOE303": Step(
        f"KAKAO_REDIRECT_URI를 카카오 콘솔 {REDIRECT_URI_FIELD}에 등록한 값과 똑같이 맞추세요"
        "(슬래시, http/https까지).",
        f"Make KAKAO_REDIRECT_URI equal, byte for byte (slash, http/https), the Redirect URI "
        f"registered at {REDIRECT_URI_FIELD} in the {CONSOLE}.",
    ),
    "KOE004": Step(
        f"카카오 콘솔 {LOGIN_SWITCH}를 ON으로 바꾸세요.",
        f"Set {LOGIN_SWITCH} to ON in the {CONSOLE}.",
    ),
}
