"""The small HTML pages a person sees: Korean first, then English; escaped, token-free."""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import TYPE_CHECKING

from ..clock import format_time

if TYPE_CHECKING:  # pragma: no cover
    from ..problems import Problem
    from ..tokens import TokenFacts

_STYLE = (
    "body{font-family:-apple-system,'Apple SD Gothic Neo','Noto Sans KR',sans-serif;"
    "margin:0;padding:24px 16px;background:#f6f6f6;color:#191919;line-height:1.6;"
    "word-break:keep-all}"
    "main{max-width:520px;margin:auto;background:#fff;border-radius:12px;padding:24px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.08)}h1{font-size:1.3em;margin:0 0 4px}"
    "h2{font-size:1em;color:#555;font-weight:normal;margin:0 0 16px}"
    ".ok{border-top:6px solid #fee500}.bad{border-top:6px solid #e5484d}"
    "dl{margin:0 0 16px}dt{color:#666;font-size:.9em;margin-top:10px}"
    "dd{margin:0;font-weight:600;overflow-wrap:anywhere}p.en{color:#555}"
    "code{background:#f0f0f0;padding:0 4px}"
    "a.btn{display:inline-block;margin-top:12px;padding:10px 16px;background:#fee500;"
    "color:#191919;border-radius:8px;text-decoration:none;font-weight:bold}"
    ".demo{background:#ffe8a3;padding:8px 12px;border-radius:8px;margin-bottom:16px}"
)


def _csp_source(inline: str) -> str:
    """The Content-Security-Policy source that allows exactly this inline style or script."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode() + "'"


# The pages' only style is inline; the CSP allows exactly this stylesheet and nothing else.
STYLE_CSP_SOURCE = _csp_source(_STYLE)


def success_page(facts: TokenFacts, *, start_url: str, demo: bool) -> str:
    """Who is connected and until when; never a token."""
    user = str(facts.user_id) if facts.user_id is not None else "?"
    rows = [
        ("카카오 사용자 / Kakao user", user),
        ("액세스 토큰 만료 / Access token until", format_time(facts.expires_at)),
        (
            "리프레시 토큰 만료 / Refresh token until",
            format_time(facts.refresh_token_expires_at),
        ),
        ("동의 항목 / Scopes", facts.scope or "-"),
    ]
    listed = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    body = (
        "<h1>카카오 로그인 완료</h1><h2>Kakao login complete</h2>"
        f"<dl>{listed}</dl>"
        "<p>토큰을 안전하게 저장했습니다. 이 창은 닫아도 됩니다. 예약된 갱신이 토큰을 계속 "
        "살려 둡니다.</p>"
        "<p class=en>The tokens are stored safely; you can close this window. The scheduled "
        "refresh keeps them alive.</p>"
        f'<a class=btn href="{escape(start_url, quote=True)}">다시 로그인 / Log in again</a>'
    )
    return _document("카카오 로그인 완료 / Kakao login complete", body, ok=True, demo=demo)


def start_page(*, start_url: str, demo: bool) -> str:
    """The done address in a browser that did not just log in: a way to log in, nothing else."""
    body = (
        "<h1>카카오 로그인</h1><h2>Kakao login</h2>"
        "<p>아래 버튼을 눌러 카카오로 로그인하세요.</p>"
        "<p class=en>Press the button to log in with Kakao.</p>"
        f'<a class=btn href="{escape(start_url, quote=True)}">로그인 / Log in</a>'
    )
    return _document("카카오 로그인 / Kakao login", body, ok=True, demo=demo)


# The claim page's one script: move the link's secret from the fragment (which no request and
# so no log ever carries) into the form, wipe it from the address bar, and post it.
_CLAIM_SCRIPT = (
    'var c=location.hash.slice(1);if(c){history.replaceState(null,"",location.pathname);'
    'document.getElementById("c").value=c;document.getElementById("f").submit();}'
)
CLAIM_SCRIPT_CSP_SOURCE = _csp_source(_CLAIM_SCRIPT)


def claim_page(*, demo: bool) -> str:
    """A claim link's page: posts the secret from the fragment, or takes it pasted."""
    body = (
        "<h1>이 배포의 소유자 되기</h1><h2>Become this deployment's owner</h2>"
        "<p>이 링크로 로그인한 카카오 계정이 이 배포의 소유자가 됩니다. 링크는 한 번만 쓸 수 "
        "있습니다. 잠시 후 카카오 로그인으로 넘어가지 않으면 링크의 # 뒤 코드를 붙여 넣으세요.</p>"
        "<p class=en>The Kakao account that logs in through this link becomes this "
        "deployment's owner. The link works once. If Kakao's login does not open by itself, "
        "paste the code after # in the link.</p>"
        '<form id=f method=post action=""><input id=c name=claim type=password '
        'autocomplete=off aria-label="소유권 코드 / claim code"> '
        "<button class=btn type=submit>카카오로 로그인 / Log in with Kakao</button></form>"
        f"<script>{_CLAIM_SCRIPT}</script>"
    )
    return _document("소유자 되기 / Become the owner", body, ok=True, demo=demo)


def problem_page(problem: Problem, *, start_url: str, demo: bool) -> str:
    """A clear error page: what happened and what to do, in both languages."""
    code = (
        f"<p>오류 코드 / Error code: <code>{escape(problem.code)}</code></p>"
        if problem.code
        else ""
    )
    again = (
        f'<a class=btn href="{escape(start_url, quote=True)}">다시 로그인 / Start again</a>'
        if problem.start_again and start_url
        else ""
    )
    body = (
        f"<h1>{escape(problem.title_ko)}</h1><h2>{escape(problem.title_en)}</h2>"
        f"<p>{escape(problem.detail_ko)}</p><p class=en>{escape(problem.detail_en)}</p>"
        f"{code}{again}"
    )
    return _document(f"{problem.title_ko} / {problem.title_en}", body, ok=False, demo=demo)


def _document(title: str, body: str, *, ok: bool, demo: bool) -> str:
    banner = (
        "<p class=demo>데모 모드: 진짜 카카오가 아닌 내장 가짜 카카오 서버를 사용 중입니다. "
        "소유권 링크 없이 처음 로그인한 계정이 소유자가 됩니다.<br>"
        "Demo mode: this runs against the bundled fake Kakao, not the real one; the first "
        "login owns it without a claim link.</p>"
        if demo
        else ""
    )
    return (
        "<!doctype html><html lang=ko><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><main class="{"ok" if ok else "bad"}">{banner}{body}</main></body></html>'
    )
