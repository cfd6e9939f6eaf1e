"""The login in a real headless Chromium: consent, cancel, a callback in a second profile, and
the demo of ``make run`` with its sender: the test message button from the sender to the owner.

Proves the cookie attributes (HttpOnly, SameSite=Lax, Secure on localhost, path, expiry) work
in a browser, not just in a test client. Screenshots at a phone-sized viewport are written to
.run/screenshots/ for a person to look at.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dev.fake_kakao import FakeKakao, FakeKakaoState
from dev.servers import free_port
from tests.conftest import ROOT, settings_env
from tests.helpers import FunctionServer, GcsEmulator, claim_for, consent
from tests.test_run_local import (
    FROM_SENDER_TO_OWNER,
    OWNER_ID,
    SENDER_ID,
    SENDER_LABEL,
    LocalRun,
    printed_url,
    start_run_local,
)

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / ".run" / "screenshots"
PHONE = {"width": 390, "height": 844}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does this)",
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def stack(gcs: GcsEmulator, bucket: str) -> Iterator[dict[str, Any]]:
    """The fake Kakao and the running function, whose redirect URI is on localhost."""
    port = free_port()
    redirect_uri = f"http://localhost:{port}/"
    fake = FakeKakao(FakeKakaoState(redirect_uris={redirect_uri})).start()
    env = settings_env(
        fake, KAKAO_REDIRECT_URI=redirect_uri, TOKEN_BUCKET=bucket, STORAGE_EMULATOR_HOST=gcs.url
    )
    with FunctionServer("kakao_callback", env, ROOT, port=port) as server:
        claim = claim_for(server.env)  # what deploy.sh prints for the first owner
        yield {
            "url": redirect_uri,
            "claim_link": f"{redirect_uri}claim#{claim}",
            "claim": claim,
            "fake": fake,
            "bucket": bucket,
            "gcs": gcs,
            "server": server,
        }
    fake.stop()


def phone_page(browser: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, locale="ko-KR")
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    return context, page, console


def test_login_in_a_real_browser(browser: Any, stack: dict[str, Any]) -> None:
    """Open the URL, approve on the consent page, see success; the document is in the bucket."""
    context, page, console = phone_page(browser)

    page.goto(stack["claim_link"])  # the claim page posts the link's secret, then Kakao
    page.wait_for_url(stack["fake"].url + "/**")
    assert "consent" in page.title().lower() or "카카오" in page.title()
    cookies = [c for c in context.cookies() if c["name"].startswith("kakao_login_")]
    assert len(cookies) == 1
    cookie = cookies[0]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax" and cookie["secure"] is True
    assert cookie["path"] == "/" and cookie["domain"] == "localhost"
    assert 590 <= cookie["expires"] - time.time() <= 610

    page.click("#approve")
    page.wait_for_load_state()

    assert "카카오 로그인 완료" in page.content() and "Kakao login complete" in page.content()
    stored = json.loads(stack["gcs"].read_object(stack["bucket"], "kakao_token.json") or b"{}")
    assert stored["user_id"] == stack["fake"].state.user_id
    assert stored["access_token"] not in page.content()
    assert not [c for c in context.cookies() if c["name"].startswith("kakao_login_")]
    assert not [m for m in console if "Content Security Policy" in m]
    background = page.eval_on_selector("main", "e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(255, 255, 255)"  # the inline style was allowed by the CSP hash
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "success-phone.png"), full_page=True)
    context.close()


def test_cancel_at_the_consent_page(browser: Any, stack: dict[str, Any]) -> None:
    """Cancelling at Kakao shows a friendly bilingual page and stores nothing."""
    context, page, _ = phone_page(browser)

    page.goto(stack["claim_link"])
    page.wait_for_url(stack["fake"].url + "/**")
    page.click("#cancel")
    page.wait_for_load_state()

    assert "로그인을 취소했습니다" in page.content() and "Login cancelled" in page.content()
    assert stack["gcs"].read_object(stack["bucket"], "kakao_token.json") is None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "cancelled-phone.png"), full_page=True)
    context.close()


def test_callback_in_a_second_profile_is_refused(browser: Any, stack: dict[str, Any]) -> None:
    """A callback URL opened in another browser profile (no cookie) is refused; the profile
    that started the login can still finish it."""
    first, first_page, _ = phone_page(browser)
    first_page.goto(stack["claim_link"])
    first_page.wait_for_url(stack["fake"].url + "/**")
    callback = consent(first_page.url)  # approve, but capture where Kakao sends the browser
    second, second_page, _ = phone_page(browser)

    response = second_page.goto(callback)

    assert response is not None and response.status == 400
    assert "다시 시작" in second_page.content()
    assert stack["gcs"].read_object(stack["bucket"], "kakao_token.json") is None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    second_page.screenshot(path=str(SCREENSHOTS / "refused-phone.png"), full_page=True)
    finished = first_page.goto(callback)
    assert finished is not None and finished.status == 200
    first.close()
    second.close()


def test_success_survives_reload_back_and_a_second_tab(browser: Any, stack: dict[str, Any]) -> None:
    """After the login the address holds no code; a reload shows the success again; the back
    button never exchanges a code twice or changes the stored login; a second tab of the same
    browser sees the success, another browser only a login button."""
    context, page, _ = phone_page(browser)
    page.goto(stack["claim_link"])
    page.wait_for_url(stack["fake"].url + "/**")
    page.click("#approve")
    page.wait_for_load_state()
    stored = stack["gcs"].read_object(stack["bucket"], "kakao_token.json")
    user_id = str(stack["fake"].state.user_id)
    exchanges = stack["fake"].state.calls["/oauth/token"]

    assert page.url == stack["url"] + "?login=done"
    assert "code=" not in page.evaluate("location.href")
    reloaded = page.reload()
    assert reloaded is not None and reloaded.status == 200
    assert "카카오 로그인 완료" in page.content() and user_id in page.content()

    # The 303 replaced the code URL: Chromium's history holds Kakao's page, then ours.
    page.go_back()
    page.wait_for_load_state()
    assert page.url.startswith(stack["fake"].url + "/oauth/authorize?")
    page.reload()  # a fresh consent request, as real Kakao would show
    page.click("#approve")  # Kakao sends a fresh code with the finished login's state
    page.wait_for_load_state()

    assert page.url == stack["url"] + "?login=done"
    assert "카카오 로그인 완료" in page.content()
    assert stack["fake"].state.calls["/oauth/token"] == exchanges
    assert stack["gcs"].read_object(stack["bucket"], "kakao_token.json") == stored

    tab = context.new_page()
    tab.goto(stack["url"] + "?login=done")
    assert user_id in tab.content()
    other, other_page, _ = phone_page(browser)
    other_page.goto(stack["url"] + "?login=done")
    assert user_id not in other_page.content() and "완료" not in other_page.content()
    assert other_page.query_selector("a.btn") is not None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "done-phone.png"), full_page=True)
    other_page.screenshot(path=str(SCREENSHOTS / "done-elsewhere-phone.png"), full_page=True)
    other.close()
    context.close()


def test_a_claim_link_works_once_and_its_secret_reaches_no_log(
    browser: Any, stack: dict[str, Any]
) -> None:
    """The operator's claim link makes the first login the owner, through Kakao's redirect to
    another host (which a form-action CSP would block); the same link opened again is refused
    with how to get a new one. The secret
    travels in the fragment: it is in no request line the function logs, and the address bar
    no longer shows it."""
    context, page, console = phone_page(browser)
    accounts = stack["fake"].url.replace("127.0.0.1", "localhost").removeprefix("http://")
    stack["fake"].state.login_host = accounts  # Kakao's login hops to another host first
    page.goto(stack["claim_link"])
    page.wait_for_url(f"http://{accounts}/**")
    page.click("#approve")
    page.wait_for_load_state()
    assert "카카오 로그인 완료" in page.content()
    assert not [m for m in console if "Content Security Policy" in m]

    again, again_page, _ = phone_page(browser)
    again_page.goto(stack["claim_link"])
    again_page.wait_for_load_state()

    assert "소유권 링크가 필요합니다" in again_page.content()
    assert "claim-url" in again_page.content()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    again_page.screenshot(path=str(SCREENSHOTS / "claim-used-phone.png"), full_page=True)
    assert stack["claim"] not in stack["server"].logs()
    stored = json.loads(stack["gcs"].read_object(stack["bucket"], "kakao_token.json") or b"{}")
    assert stack["claim"] not in json.dumps(stored)
    again.close()
    context.close()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[LocalRun]:
    """``make run`` in demo mode (no KAKAO_REST_API_KEY), on free ports."""
    run = start_run_local(tmp_path)
    yield run
    if run.process.poll() is None:
        run.stop()
    shutil.rmtree(run.demo_store(), ignore_errors=True)


def test_demo_sender_sends_the_owner_a_test_message(browser: Any, demo: LocalRun) -> None:
    """In the demo the owner logs in at the printed address, the second account logs in in
    another browser through the printed sender link choosing the demo sender, presses the
    success page's test message button, and reads that the owner got it; the fake's memos page
    shows the message from the sender to the owner."""
    text = demo.text()
    fake = f"http://127.0.0.1:{demo.ports['FAKE_KAKAO_PORT']}"
    owner, owner_page, _ = phone_page(browser)
    owner_page.goto(printed_url(text, "Log in", "open"))
    owner_page.wait_for_url(fake + "/**")
    owner_page.click("#approve")  # the page's first account: the owner
    owner_page.wait_for_load_state()
    assert str(OWNER_ID) in owner_page.content() and "소유자 / Owner" in owner_page.content()
    sender, page, console = phone_page(browser)

    page.goto(printed_url(text, SENDER_LABEL, "open"))  # its page posts the link's secret
    page.wait_for_url(fake + "/**")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "demo-consent-phone.png"), full_page=True)
    page.click(f"#approve-{SENDER_ID}")
    page.wait_for_load_state()
    assert "보내는 계정 / Sender" in page.content() and str(SENDER_ID) in page.content()
    page.click("text=테스트 메시지 보내기 / Send a test message")
    page.wait_for_load_state()

    assert "테스트 메시지를 보냈습니다" in page.content(), page.content()
    assert "Test message sent" in page.content() and str(OWNER_ID) in page.content()
    assert not [m for m in console if "Content Security Policy" in m]
    page.screenshot(path=str(SCREENSHOTS / "demo-test-message-phone.png"), full_page=True)
    memos = owner.new_page()
    memos.goto(printed_url(text, "Delivered / 도착:", "open"))
    assert FROM_SENDER_TO_OWNER in memos.content()
    memos.screenshot(path=str(SCREENSHOTS / "demo-memos-phone.png"), full_page=True)
    sender.close()
    owner.close()
