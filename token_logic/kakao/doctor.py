"""The check before the first login: ``python -m token_logic doctor``, and deploy.sh's
``python3 -P -S -m token_logic.kakao.doctor`` (``main``, below).

It asks Kakao, with no user (probe.py), whether the REST API key is known, the client secret
is that key's, and, once KAKAO_REDIRECT_URI is set (after the first deploy), whether that
Redirect URI is registered for the key. Each finding is one line, Korean then English, naming
the console step that fixes it (console.py). Kakao's pages are not a documented contract: what
cannot be read is "확인할 수 없음 / could not tell", never a failure.

Reads KAKAO_REST_API_KEY, KAKAO_CLIENT_SECRET, KAKAO_REDIRECT_URI (optional) and
KAKAO_AUTH_BASE_URL (tests) from the environment: deploy.sh hands the secret over there, never
in an argument; no finding ever shows the key or the secret.

Exit codes: 0 all right (or some could not be told), 1 a setting is wrong, 2 bad usage.
Standard library only, like claim.py: what it loads must stay within it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import urlsplit

from .console import REDIRECT_URI_FIELD, STEP_TO_REDO
from .probe import (
    FAIL,
    OK,
    UNKNOWN,
    Answer,
    Reading,
    authorize_answer,
    read_authorize_answer,
    read_token_answer,
    token_answer,
)

DEFAULT_AUTH_BASE_URL = "https://kauth.kakao.com"  # as kakao/api.py's, without requests
REDIRECT_URI_ONLY = "--redirect-uri-only"
SKIPPED = "skipped"
_MARKS = {
    OK: "[ok]",
    FAIL: "[실패 / FAIL]",
    UNKNOWN: "[확인할 수 없음 / could not tell]",
    SKIPPED: "[건너뜀 / skipped]",
}


@dataclass(frozen=True)
class Finding:
    """One checked setting: its outcome and its line (Korean, then English)."""

    outcome: str
    ko: str
    en: str

    def line(self) -> str:
        return f"{_MARKS[self.outcome]} {self.ko} / {self.en}"


def run(environ: Mapping[str, str], *, redirect_uri_only: bool = False, out: TextIO) -> int:
    """Check, print one line per finding to ``out``; return the exit code."""
    key = environ.get("KAKAO_REST_API_KEY", "").strip()
    secret = environ.get("KAKAO_CLIENT_SECRET", "").strip()
    redirect_uri = environ.get("KAKAO_REDIRECT_URI", "").strip()
    base = (environ.get("KAKAO_AUTH_BASE_URL", "").strip() or DEFAULT_AUTH_BASE_URL).rstrip("/")
    problem = _usage_problem(key, redirect_uri, base, redirect_uri_only)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    findings: list[Finding] = []
    if not redirect_uri_only:
        answer = token_answer(base, key, secret, redirect_uri)
        readings = read_token_answer(answer)
        findings += [_key(readings["key"], answer), _secret(readings["secret"], answer, secret)]
        findings += _login(readings, findings)
    if redirect_uri:
        answer = authorize_answer(base, key, redirect_uri)
        readings = read_authorize_answer(answer)
        findings += [_redirect_uri(readings["redirect_uri"], answer, redirect_uri)]
        findings += _login(readings, findings)
    else:
        findings.append(
            Finding(
                SKIPPED,
                "리다이렉트 URI: KAKAO_REDIRECT_URI가 없어 건너뜀(배포 뒤 deploy.sh가 확인)",
                "Redirect URI: skipped, KAKAO_REDIRECT_URI is not set (deploy.sh checks it "
                "once the callback is deployed)",
            )
        )
    for finding in findings:
        print(finding.line(), file=out)
    return 1 if any(f.outcome == FAIL for f in findings) else 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """``python3 -P -S -m token_logic.kakao.doctor [--redirect-uri-only]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args not in ([], [REDIRECT_URI_ONLY]):
        print(
            f"usage: python3 -P -S -m token_logic.kakao.doctor [{REDIRECT_URI_ONLY}]",
            file=sys.stderr,
        )
        return 2
    environ = os.environ if environ is None else environ
    return run(environ, redirect_uri_only=bool(args), out=sys.stdout)


def _usage_problem(key: str, redirect_uri: str, base: str, redirect_uri_only: bool) -> str:
    if not key:
        return "KAKAO_REST_API_KEY is not set / KAKAO_REST_API_KEY가 없습니다"
    if redirect_uri_only and not redirect_uri:
        return f"{REDIRECT_URI_ONLY} needs KAKAO_REDIRECT_URI / KAKAO_REDIRECT_URI가 없습니다"
    for name, value in (("KAKAO_REDIRECT_URI", redirect_uri), ("KAKAO_AUTH_BASE_URL", base)):
        parts = urlsplit(value)
        if value and not (parts.scheme in ("http", "https") and parts.netloc):
            return f"{name} must be an absolute http(s) URL / {name}는 http(s) URL이어야 합니다"
    return ""


def _why(answer: Answer, code: str) -> tuple[str, str]:
    """Why a setting could not be told, in Korean and English."""
    if not answer.status:
        return f"카카오에 연결하지 못함({answer.reason})", f"no answer from Kakao ({answer.reason})"
    said = f"HTTP {answer.status}" + (f", {code}" if code else "")
    return f"카카오의 응답을 해석하지 못함: {said}", f"an answer from Kakao we cannot read: {said}"


def _key(reading: Reading, answer: Answer) -> Finding:
    if reading.outcome == OK:
        return Finding(OK, "REST API 키: 카카오가 아는 키입니다", "REST API key: known to Kakao")
    if reading.outcome == FAIL:
        step = STEP_TO_REDO[reading.code]
        return Finding(
            FAIL,
            f"REST API 키: 카카오가 모르는 키입니다({reading.code}). {step.ko}",
            f"REST API key: Kakao does not know it ({reading.code}). {step.en}",
        )
    ko, en = _why(answer, reading.code)
    return Finding(
        UNKNOWN, f"REST API 키: 확인할 수 없음({ko})", f"REST API key: could not tell ({en})"
    )


def _secret(reading: Reading, answer: Answer, secret: str) -> Finding:
    if reading.outcome == OK and secret:
        return Finding(OK, "클라이언트 시크릿: 이 키의 것입니다", "client secret: this key's")
    if reading.outcome == OK:
        return Finding(
            OK,
            "클라이언트 시크릿: 이 키는 시크릿 없이 받습니다(꺼져 있음)",
            "client secret: this key takes calls without one (its client secret is off)",
        )
    if reading.outcome == FAIL:
        step = STEP_TO_REDO[reading.code]
        if secret:
            ko, en = "이 키의 시크릿이 아닙니다", "not this key's"
        else:
            ko = "이 키는 클라이언트 시크릿이 켜져 있는데 KAKAO_CLIENT_SECRET이 비어 있습니다"
            en = "this key's client secret is on, but KAKAO_CLIENT_SECRET is empty"
        return Finding(
            FAIL,
            f"클라이언트 시크릿: {ko}({reading.code}). {step.ko}",
            f"client secret: {en} ({reading.code}). {step.en}",
        )
    if answer.code == "KOE101":
        return Finding(
            UNKNOWN,
            "클라이언트 시크릿: 확인할 수 없음(키부터 고치세요)",
            "client secret: could not tell until the key is right",
        )
    ko, en = _why(answer, reading.code)
    return Finding(
        UNKNOWN, f"클라이언트 시크릿: 확인할 수 없음({ko})", f"client secret: could not tell ({en})"
    )


def _redirect_uri(reading: Reading, answer: Answer, redirect_uri: str) -> Finding:
    if reading.outcome == OK:
        return Finding(
            OK,
            f"리다이렉트 URI: {redirect_uri} 는 이 키에 등록되어 있습니다",
            f"Redirect URI: {redirect_uri} is registered for this key",
        )
    if reading.code == "KOE101":
        step = STEP_TO_REDO["KOE101"]
        return Finding(
            FAIL,
            f"리다이렉트 URI: 카카오가 REST API 키를 몰라 확인하지 못했습니다(KOE101). {step.ko}",
            f"Redirect URI: not checked, Kakao does not know the REST API key (KOE101). {step.en}",
        )
    if reading.outcome == FAIL:
        return Finding(
            FAIL,
            f"리다이렉트 URI: {redirect_uri} 는 이 키에 등록되어 있지 않습니다({reading.code}). "
            f"이 주소를 카카오 콘솔 {REDIRECT_URI_FIELD}에 그대로 붙여 넣으세요",
            f"Redirect URI: {redirect_uri} is not registered for this key ({reading.code}). "
            f"Paste it, exactly, into {REDIRECT_URI_FIELD} in the Kakao Developers console",
        )
    if reading.code == "KOE004":
        ko, en = "카카오 로그인부터 켜세요", "Kakao Login is off"
    else:
        ko, en = _why(answer, reading.code)
    return Finding(
        UNKNOWN, f"리다이렉트 URI: 확인할 수 없음({ko})", f"Redirect URI: could not tell ({en})"
    )


def _login(readings: Mapping[str, Reading], found: list[Finding]) -> list[Finding]:
    """Kakao Login switched off, when Kakao said so (KOE004), once."""
    step = STEP_TO_REDO["KOE004"]
    finding = Finding(
        FAIL,
        f"카카오 로그인: 꺼져 있습니다(KOE004). {step.ko}",
        f"Kakao Login: switched off (KOE004). {step.en}",
    )
    return [finding] if "login" in readings and finding not in found else []


if __name__ == "__main__":
    sys.exit(main())
