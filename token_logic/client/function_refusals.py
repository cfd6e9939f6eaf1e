"""The token function's own JSON refusals, said to a Korean reader too.

The function's ``message`` is one English line, and part of the endpoint's contract
(docs: the table of ``error``s): the client never changes it. For a Korean reader it puts a
Korean line before it, written from what the refusal names (``error``, Kakao's ``code``, the
``login_url``, Retry-After): what happened and who does what.
"""

from __future__ import annotations

from ..kakao.codes import RATE_LIMIT_CODES, TEMPORARY_CODES
from ..language import Languages, Words

# Kakao refusing the app itself (docs: 502 kakao_error): the operator's setting to fix.
_APP_SETTINGS = {
    "KOE101": "REST API 키, KAKAO_REST_API_KEY",
    "KOE010": "Client Secret, KAKAO_CLIENT_SECRET",
    "KOE303": "Redirect URI, KAKAO_REDIRECT_URI",
}
_OPERATOR = "운영자가 deploy.env를 고치고 ./deploy.sh를 다시 실행해야 합니다"


def with_korean(
    message: str,
    error: str,
    *,
    status: int,
    code: str = "",
    login_url: str = "",
    retry_after: int | None = None,
    languages: Languages,
) -> str:
    """The function's ``message`` in ``languages``: as it is in English; in Korean, a Korean
    line with the function's own words after it (they name the setting, the user, the code);
    with both, the Korean line, then the message."""
    korean = _korean(error, status, code, login_url, retry_after)
    if len(languages) > 1:
        return Words(korean, message).said(languages)
    return Words(f"{korean} (토큰 함수: {message})", message).said(languages)


def _korean(error: str, status: int, code: str, login_url: str, retry_after: int | None) -> str:
    where = login_url or "콜백 URL"
    later = f"{retry_after}초 뒤에" if retry_after else "잠시 후"
    if error == "login_required":
        return (
            "카카오 로그인이 끊겼습니다(리프레시 토큰 만료·폐기, 또는 앱 연결 해제): "
            f"{where}에서 다시 로그인하세요"
        )
    if error == "no_token_stored":
        return (
            "저장된 토큰이 없습니다(아직 아무도 로그인하지 않았거나, 이 사용자는 없음): "
            f"{where}에서 먼저 로그인하세요"
        )
    if error == "kakao_error":
        return _kakao_refused(status, code, later)
    if error == "kakao_unavailable":
        return (
            f"카카오가 응답하지 않거나 알 수 없는 답을 했습니다({code or status}): {later} 다시 "
            "시도하세요"
        )
    if error == "deadline_reached":
        return (
            f"토큰 함수가 시간 안에 토큰을 안전하게 갱신·저장하지 못했습니다: {later} 다시 "
            "시도하세요"
        )
    if error == "storage_unavailable":
        return (
            f"토큰 저장소(Cloud Storage)를 쓰지 못했습니다: {later} 다시 시도하고, 계속되면 "
            "운영자가 버킷을 확인해야 합니다"
        )
    if error == "not_configured":
        return f"토큰 함수의 설정이 빠졌거나 잘못되었습니다: {_OPERATOR}"
    if error == "bad_request":
        return "토큰 함수가 요청을 거절했습니다(잘못된 요청): 함수의 말대로 요청을 고치세요"
    if error == "method_not_allowed":
        return "토큰 함수는 GET 요청만 받습니다"
    if error == "internal":
        return (
            "토큰 함수에서 예상하지 못한 오류가 났습니다: 운영자가 "
            "`gcloud functions logs read kakao-token`으로 로그를 확인해야 합니다"
        )
    return f"토큰 함수가 요청을 거절했습니다(HTTP {status} {error})"


def _kakao_refused(status: int, code: str, later: str) -> str:
    if code in RATE_LIMIT_CODES:
        return (
            f"카카오의 요청 한도에 걸렸습니다({code}): {later} 다시 시도하세요(곧바로 되풀이해 "
            "묻지 마세요)"
        )
    setting = _APP_SETTINGS.get(code)
    if setting is not None:  # a 502: the operator's, however long one waits
        return f"카카오가 앱 설정을 받아들이지 않았습니다({code}: {setting}): {_OPERATOR}"
    if code in TEMPORARY_CODES or status >= 500:
        return f"카카오의 일시적인 오류입니다({code or status}): {later} 다시 시도하세요"
    return f"카카오가 요청을 거부했습니다({code or status})"
