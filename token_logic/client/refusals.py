"""Why the token endpoint refused a caller, told from the caller's own ID token.

Cloud Run answers a refused caller with its own HTML 401 or 403, which says nothing useful; the
ID token's claims (read, not verified: Cloud Run has judged it, this only explains) tell which
fix applies: a fresh token, the right audience, or the identity added to TOKEN_READERS. A token
given by hand for another URL is not sent at all. Never the token itself in a message.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from ..checks import json_object
from ..clock import format_time
from ..errors import ConfigError
from ..language import Languages, Words

GITHUB_READER_PREFIX = "kakao-token-github@"  # the account deploy.sh makes for GitHub


def check_audience(id_token: str, source: str, audience: str, languages: Languages) -> None:
    """A token given by hand for another URL is not sent at all: it would open that other
    service to whoever runs this URL."""
    if source != "KAKAO_TOKEN_ID_TOKEN":
        return
    claims = unverified_claims(id_token)
    issued_for = claims.get("aud") if claims else None
    if isinstance(issued_for, str) and issued_for.rstrip("/") != audience:
        not_sent = Words(
            f"KAKAO_TOKEN_ID_TOKEN은 대상(audience) {issued_for}용으로 발급되어 {audience}용이 "
            f"아니므로 보내지 않았습니다. 대상이 {audience}인 ID 토큰을 받으세요.",
            f"KAKAO_TOKEN_ID_TOKEN was issued for the audience {issued_for}, not for "
            f"{audience}; it was not sent. Fetch one with the audience {audience}.",
        )
        raise ConfigError(not_sent.said(languages), ("KAKAO_TOKEN_ID_TOKEN",))


def refusal_message(url: str, audience: str, source: str, status: int, id_token: str) -> Words:
    """Why Cloud Run refused the caller, and the fix, from the ID token's own claims (read, not
    verified: only to explain; Cloud Run has judged it). Never the token itself."""
    claims = unverified_claims(id_token)
    refused = Words(
        f"Cloud Run이 {source}에서 받은 ID 토큰을 거부했습니다(HTTP {status})",
        f"Cloud Run refused the ID token from {source} (HTTP {status})",
    )
    hint = _fresh_token_hint(source, audience)
    if claims is None:
        not_google = Words("Google ID 토큰이 아닙니다.", "it is not a Google ID token.")
        return _joined(refused, not_google, hint)
    expires_at = claims.get("exp")
    if isinstance(expires_at, int) and expires_at <= time.time():
        when = format_time(expires_at)
        return _joined(refused, Words(f"{when}에 만료되었습니다.", f"it expired at {when}."), hint)
    issued_for = claims.get("aud")
    if status == 401 and issued_for != audience:
        other_audience = Words(
            f"대상(audience) {issued_for!s}용으로 발급되었는데, 이 엔드포인트에는 {audience}용이 "
            "필요합니다.",
            f"it was issued for the audience {issued_for!s}, and this endpoint needs {audience}.",
        )
        return _joined(refused, other_audience, hint)
    if status == 401:
        not_accepted = Words(
            f"{audience}용 Google ID 토큰으로 받아들여지지 않았습니다.",
            f"not accepted as a Google ID token for {audience}.",
        )
        return _joined(refused, not_accepted, hint)
    email = claims.get("email")
    if not isinstance(email, str) or not email:
        no_email = Words(
            "토큰에 이메일이 없어 읽기 권한자(TOKEN_READERS)일 수 없습니다. 이메일을 포함한 ID "
            "토큰을 받으세요(google-github-actions/auth: id_token_include_email: true).",
            "the token names no email, so its identity cannot be among the readers; ask for an "
            "ID token that includes the email (google-github-actions/auth: "
            "id_token_include_email: true).",
        )
        return _joined(refused, no_email)
    if email.startswith(GITHUB_READER_PREFIX):
        return Words(
            f"Cloud Run이 {email}의 호출을 거부했습니다(HTTP 403): 이 엔드포인트({url})를 호출할 "
            "권한이 없습니다. deploy.sh가 만든 GitHub 읽기 계정이니, 이 저장소를 "
            "GITHUB_REPOSITORY에 넣고 ./deploy.sh를 다시 실행하세요(kakao-token에 "
            "roles/run.invoker를 부여합니다). IAM이 적용되기까지 1분쯤 기다리세요.",
            f"Cloud Run refused {email} (HTTP 403): it may not call {url}. That is the "
            "GitHub reader account deploy.sh made: run ./deploy.sh again with this repository "
            "in GITHUB_REPOSITORY (it grants roles/run.invoker on kakao-token), and allow a "
            "minute for IAM to apply.",
        )
    kind = "serviceAccount" if email.endswith(".gserviceaccount.com") else "user"
    return Words(
        f"Cloud Run이 {email}의 호출을 거부했습니다(HTTP 403): 이 엔드포인트({url})를 호출할 "
        f"권한이 없습니다. deploy.env의 TOKEN_READERS에 {kind}:{email} 항목을 추가하고 "
        "./deploy.sh를 다시 실행하세요(kakao-token에 roles/run.invoker를 부여합니다. IAM이 "
        "적용되기까지 1분쯤 걸립니다).",
        f"Cloud Run refused {email} (HTTP 403): it may not call {url}. Add "
        f"{kind}:{email} to TOKEN_READERS in deploy.env and run ./deploy.sh again (it grants "
        "roles/run.invoker on kakao-token; allow a minute for IAM to apply).",
    )


def _joined(refused: Words, why: Words, hint: Words | None = None) -> Words:
    """Cloud Run's refusal, why, and the fix (when there is one), in each language."""
    return Words(
        f"{refused.ko}: {why.ko}" + (f" {hint.ko}" if hint else ""),
        f"{refused.en}: {why.en}" + (f" {hint.en}" if hint else ""),
    )


def _fresh_token_hint(source: str, audience: str) -> Words:
    if source == "KAKAO_TOKEN_ID_TOKEN":
        return Words(
            f"실행할 때마다 대상(audience)이 {audience}인 새 ID 토큰을 받아(ID 토큰은 1시간 "
            "유효합니다) KAKAO_TOKEN_ID_TOKEN에 넣으세요.",
            f"Fetch a fresh one for each run, with the audience {audience} (an ID token lives "
            "one hour), and put it in KAKAO_TOKEN_ID_TOKEN.",
        )
    if source == "gcloud":
        return Words(
            "`gcloud auth login`을 다시 실행한 뒤 재시도하세요.",
            "Run `gcloud auth login` again, then retry.",
        )
    return Words(
        f"ID 토큰을 주는 설정({source})과, 대상(audience)이 {audience}인지 확인하세요.",
        f"Check the identity's set-up ({source}) and that the audience is {audience}.",
    )


def unverified_claims(id_token: str) -> dict[str, Any] | None:
    """The payload of a JWT, unverified; None when it is not one."""
    parts = id_token.split(".")
    if len(parts) != 3:  # header.payload.signature
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
    except (ValueError, TypeError):
        return None
    return json_object(payload)
