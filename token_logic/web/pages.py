"""The small HTML pages a person sees: Korean first, then English; escaped, token-free."""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..clock import format_time

if TYPE_CHECKING:  # pragma: no cover
    from ..kakao.to_owner import MessageResult
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
    "button.btn{border:0;font-size:1em;cursor:pointer}"
    ".btn{display:inline-block;margin-top:12px;padding:10px 16px;background:#fee500;"
    "color:#191919;border-radius:8px;text-decoration:none;font-weight:bold}"
    ".demo{background:#ffe8a3;padding:8px 12px;border-radius:8px;margin-bottom:16px}"
)


def _csp_source(inline: str) -> str:
    """The Content-Security-Policy source that allows exactly this inline style or script."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode() + "'"


# The pages' only style is inline; the CSP allows exactly this stylesheet and nothing else.
STYLE_CSP_SOURCE = _csp_source(_STYLE)


def success_page(
    facts: TokenFacts, *, start_url: str, demo: bool, login: str = "owner", test: bool = False
) -> str:
    """Who is connected and until when, and (``test``) the test message button; never a
    token."""
    user = str(facts.user_id) if facts.user_id is not None else "?"
    who = "보내는 계정 / Sender" if login == "sender" else "소유자 / Owner"
    rows = [
        ("로그인 / Login", who),
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
        f"{_test_form(start_url) if test else ''}"
        f'<a class=btn href="{escape(start_url, quote=True)}">다시 로그인 / Log in again</a>'
    )
    return _document("카카오 로그인 완료 / Kakao login complete", body, ok=True, demo=demo)


def test_message_action(start_url: str) -> str:
    """Where the test message button posts: the callback's path plus ``/test-message``."""
    return (urlsplit(start_url).path or "/").rstrip("/") + "/test-message"


def _test_form(start_url: str) -> str:
    return (
        f'<form method=post action="{escape(test_message_action(start_url), quote=True)}">'
        "<p>스크립트가 보내는 방식 그대로 짧은 메시지를 보내 봅니다(보내는 계정이 있으면 그 계정이 "
        "소유자에게, 없으면 나에게 메모).</p>"
        "<p class=en>Sends one short message the way your scripts will (from the sender to the "
        "owner when there is one, else a memo to yourself).</p>"
        "<button class=btn type=submit>테스트 메시지 보내기 / Send a test message</button></form>"
    )


def test_message_page(result: MessageResult, *, start_url: str, demo: bool) -> str:
    """What Kakao did with the test message; on a failure, why and the fix."""
    who = escape(str(result.receiver_user_id))
    if result.ok and result.route == "friend":
        title_ko, title_en = "테스트 메시지를 보냈습니다", "Test message sent"
        text = (
            f"<p>보내는 계정이 소유자(사용자 {who})에게 보냈습니다. 카카오톡에서 알림과 함께 "
            "도착합니다.</p>"
            f"<p class=en>The sender messaged the owner (user {who}); it arrives in KakaoTalk "
            "with a notification.</p>"
        )
    elif result.ok:
        title_ko, title_en = "테스트 메모를 보냈습니다", "Test memo sent"
        text = (
            "<p>카카오톡 '나와의 채팅'에 메모로 보냈습니다(알림이 울리지 않습니다). 알림이 울리게 "
            "하려면 보내는 계정을 추가하세요(KAKAO_SENDER=1).</p>"
            "<p class=en>Sent as a memo to your own chat in KakaoTalk (no notification). For a "
            "message that rings, add a sender (KAKAO_SENDER=1).</p>"
        )
    else:
        title_ko = "테스트 메시지가 전달되지 않았습니다"
        title_en = "The test message was not delivered"
        text = "".join(
            f"<p>{escape(failure.ko)}</p><p class=en>{escape(failure.en)}</p>"
            for failure in result.failures
        )
    body = f"<h1>{title_ko}</h1><h2>{title_en}</h2>{text}{_test_form(start_url)}"
    return _document(f"{title_ko} / {title_en}", body, ok=result.ok, demo=demo)


# Why a press of the test button was refused: (Korean, English).
_TEST_REFUSED = {
    "origin": (
        "테스트 메시지는 로그인 완료 페이지의 버튼으로만 보낼 수 있습니다.",
        "A test message is sent only by the button on the login's success page.",
    ),
    "login": (
        "방금 이 브라우저에서 끝낸 로그인이 없습니다(10분이 지났거나 다른 브라우저). 다시 "
        "로그인한 뒤 버튼을 누르세요.",
        "No login was just finished in this browser (ten minutes passed, or another browser). "
        "Log in again, then press the button.",
    ),
    "wait": (
        "테스트 메시지는 1분에 한 번만 보낼 수 있습니다. 잠시 후 다시 누르세요.",
        "One test message a minute: press again in a moment.",
    ),
}


def test_refused_page(why: str, *, start_url: str, demo: bool) -> str:
    """A press of the test button that was not honoured, and what to do."""
    korean, english = _TEST_REFUSED[why]
    body = (
        "<h1>테스트 메시지를 보내지 않았습니다</h1><h2>No test message was sent</h2>"
        f"<p>{escape(korean)}</p><p class=en>{escape(english)}</p>"
        f'<a class=btn href="{escape(start_url, quote=True)}">다시 로그인 / Log in again</a>'
    )
    return _document("테스트 메시지 / Test message", body, ok=False, demo=demo)


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


# What a claim link makes of the account that logs in through it: (title, heading, Korean,
# English), for the owner's link and the sender's.
_CLAIM_WORDS = {
    False: (
        "소유자 되기 / Become the owner",
        "<h1>이 배포의 소유자 되기</h1><h2>Become this deployment's owner</h2>",
        "이 링크로 로그인한 카카오 계정이 이 배포의 소유자가 됩니다.",
        "The Kakao account that logs in through this link becomes this deployment's owner.",
    ),
    True: (
        "보내는 계정 되기 / Become the sender",
        "<h1>보내는 계정 되기</h1><h2>Become the sender</h2>",
        "이 링크로 로그인한 카카오 계정이 소유자에게 카카오톡 메시지를 보내는 계정이 됩니다. "
        "소유자와 다른 두 번째 계정으로 로그인하세요(다른 브라우저나 시크릿 창).",
        "The Kakao account that logs in through this link becomes the sender, which messages "
        "the owner on KakaoTalk. Log in with a second account, not the owner's (another "
        "browser or a private window).",
    ),
}


def claim_page(*, demo: bool, sender: bool = False) -> str:
    """A claim link's page: posts the secret from the fragment, or takes it pasted."""
    title, heading, what_ko, what_en = _CLAIM_WORDS[sender]
    body = (
        f"{heading}"
        f"<p>{what_ko} 링크는 한 번만 쓸 수 "
        "있습니다. 잠시 후 카카오 로그인으로 넘어가지 않으면 링크의 # 뒤 코드를 붙여 넣으세요.</p>"
        f"<p class=en>{what_en} The link works once. If Kakao's login does not open by itself, "
        "paste the code after # in the link.</p>"
        '<form id=f method=post action=""><input id=c name=claim type=password '
        'autocomplete=off aria-label="소유권 코드 / claim code"> '
        "<button class=btn type=submit>카카오로 로그인 / Log in with Kakao</button></form>"
        f"<script>{_CLAIM_SCRIPT}</script>"
    )
    return _document(title, body, ok=True, demo=demo)


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
    step = (
        f"<p><b>다시 할 단계:</b> {escape(problem.step_ko)}</p>"
        f"<p class=en><b>Step to redo:</b> {escape(problem.step_en)}</p>"
        if problem.step_ko
        else ""
    )
    body = (
        f"<h1>{escape(problem.title_ko)}</h1><h2>{escape(problem.title_en)}</h2>"
        f"<p>{escape(problem.detail_ko)}</p><p class=en>{escape(problem.detail_en)}</p>"
        f"{step}{code}{again}"
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
