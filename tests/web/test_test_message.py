"""The success page's test message: one press sends the way scripts send (from the sender to
the owner, else a memo), shows what Kakao did, and only the browser that just finished the login
may press it, from our own page, once a minute."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from dev.fake_kakao import FakeKakao
from tests.conftest import function_app, service_over, settings_env
from tests.helpers import claim_form, consent, path_and_query
from token_logic.logins import SENDER
from token_logic.service.test_message import TEST_TEXT
from token_logic.storage.files import FileTokenStore
from token_logic.web.done_cookie import DONE_COOKIE, DONE_COOKIE_LIFETIME_SECONDS, token_proof
from token_logic.web.test_message import PressLimit

OWNER, BOT = 4127000001, 4127000002
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def browser(
    monkeypatch: pytest.MonkeyPatch, fake: FakeKakao, tmp_path: Path, **env: str
) -> FlaskClient:
    """A browser on the callback function (its own cookie jar)."""
    settings = settings_env(fake, TOKEN_DIR=str(tmp_path), **env)
    return function_app(monkeypatch, "kakao_callback", settings).test_client()


def log_in_through_link(client: FlaskClient, fake: FakeKakao, user_id: int, link: str) -> None:
    """A login through a claim link's form, walked to the success page's cookie."""
    fake.state.user_id = user_id
    secret = link.rsplit("#", 1)[1]
    start = client.post(path_and_query(link.split("#")[0]), data=claim_form(secret))
    callback = client.get(path_and_query(consent(start.headers["Location"])))
    assert callback.status_code == 303, callback.text


def deployment(
    monkeypatch: pytest.MonkeyPatch, fake: FakeKakao, tmp_path: Path, *, sender: bool
) -> FlaskClient:
    """The owner logged in (in another browser); with ``sender``, the sender logs in in the
    browser returned, friends with the owner in KakaoTalk. Without, the owner's browser."""
    env = {"KAKAO_SENDER": "1"} if sender else {}
    service = service_over(FileTokenStore(tmp_path), fake, None, TOKEN_DIR=str(tmp_path), **env)
    owner_browser = browser(monkeypatch, fake, tmp_path, **env)
    log_in_through_link(
        owner_browser, fake, OWNER, service.issue_claim().link(service.settings.redirect_uri)
    )
    if not sender:
        return owner_browser
    fake.state.ready_to_message(BOT, OWNER)
    sender_browser = browser(monkeypatch, fake, tmp_path, **env)
    link = service.issue_claim(SENDER).link(service.settings.redirect_uri)
    log_in_through_link(sender_browser, fake, BOT, link)
    return sender_browser


@pytest.fixture(autouse=True)
def fresh_press_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("token_logic.web.test_message._LIMIT", PressLimit())


def test_the_senders_success_page_sends_a_ringing_message_to_the_owner(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """With a sender, the button sends from the sender to the owner (found in its friends
    list), and the page says it was delivered; no token on either page."""
    client = deployment(monkeypatch, fake_kakao, tmp_path, sender=True)
    done = client.get("/?login=done")

    pressed = client.post("/test-message", headers=SAME_ORIGIN)

    assert 'action="/test-message"' in done.text and "form-action 'self'" in str(
        done.headers["Content-Security-Policy"]
    )
    assert pressed.status_code == 200, pressed.text
    sent = fake_kakao.state.friend_messages
    assert [(m["sender_id"], m["receiver_id"], m["text"]) for m in sent] == [
        (BOT, OWNER, TEST_TEXT)
    ]
    assert f"소유자(사용자 {OWNER})에게" in pressed.text
    stored = (tmp_path / "kakao_token.sender.json").read_text()
    assert json.loads(stored)["access_token"] not in pressed.text + done.text


def test_without_a_sender_the_button_sends_a_memo_and_says_it_will_not_ring(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """No sender: a memo to the owner, and the page names KAKAO_SENDER for one that rings."""
    client = deployment(monkeypatch, fake_kakao, tmp_path, sender=False)

    pressed = client.post("/test-message", headers=SAME_ORIGIN)

    assert pressed.status_code == 200, pressed.text
    assert [(m["user_id"], m["text"]) for m in fake_kakao.state.memos] == [(OWNER, TEST_TEXT)]
    assert "KAKAO_SENDER=1" in pressed.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {},
    ],
)
def test_a_press_from_anywhere_but_our_page_sends_nothing(
    monkeypatch: pytest.MonkeyPatch,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    headers: dict[str, str],
) -> None:
    """A cross-site form, another origin, or a request with neither header: 403, nothing
    sent, even with the right cookie."""
    client = deployment(monkeypatch, fake_kakao, tmp_path, sender=True)

    pressed = client.post("/test-message", headers=headers)

    assert pressed.status_code == 403
    assert fake_kakao.state.friend_messages == []


def test_the_callbacks_own_origin_is_accepted_where_browsers_send_no_fetch_metadata(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """An older browser sends only Origin: the callback's own origin is a press."""
    client = deployment(monkeypatch, fake_kakao, tmp_path, sender=True)

    pressed = client.post("/test-message", headers={"Origin": "http://function.test"})

    assert pressed.status_code == 200, pressed.text


def test_only_the_browser_that_finished_the_login_may_press(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """Another browser (no done cookie), or a forged one (facts right, proof made up): 403,
    nothing sent."""
    deployment(monkeypatch, fake_kakao, tmp_path, sender=True)
    stranger = browser(monkeypatch, fake_kakao, tmp_path, KAKAO_SENDER="1")
    forged_value = {"u": BOT, "e": 2**31, "r": 2**31, "s": "", "l": SENDER, "t": "0" * 32}
    forged = browser(monkeypatch, fake_kakao, tmp_path, KAKAO_SENDER="1")
    raw = json.dumps(forged_value).encode()
    forged.set_cookie(DONE_COOKIE, base64.urlsafe_b64encode(raw).rstrip(b"=").decode())

    assert stranger.post("/test-message", headers=SAME_ORIGIN).status_code == 403
    assert forged.post("/test-message", headers=SAME_ORIGIN).status_code == 403
    assert fake_kakao.state.friend_messages == []


def test_one_press_a_minute(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """A second press within the minute: 429 with Retry-After, nothing more sent."""
    client = deployment(monkeypatch, fake_kakao, tmp_path, sender=True)
    first = client.post("/test-message", headers=SAME_ORIGIN)

    second = client.post("/test-message", headers=SAME_ORIGIN)

    assert first.status_code == 200
    assert second.status_code == 429 and 0 < int(second.headers["Retry-After"]) <= 60
    assert len(fake_kakao.state.friend_messages) == 1


def test_the_press_limit_opens_again_after_a_minute() -> None:
    """The limit is a minute by the monotonic clock."""
    now = [1000.0]
    limit = PressLimit(clock=lambda: now[0])

    assert limit.take() == 0
    now[0] += 59.5
    assert limit.take() == 1
    now[0] += 0.5
    assert limit.take() == 0


def not_friends(fake: FakeKakao) -> None:
    fake.state.kakaotalk_friends.clear()


def refuses_messages(fake: FakeKakao) -> None:
    fake.state.refuses_messages.add(OWNER)


def pair_quota_used(fake: FakeKakao) -> None:
    fake.state.talk_limits.pair_daily = 0


@pytest.mark.parametrize(
    ("break_it", "words"),
    [
        (
            not_friends,
            f"받는 계정(사용자 {OWNER})이 보내는 계정(사용자 {BOT})의 친구 목록에 없습니다",
        ),
        (refuses_messages, f"받는 계정(사용자 {OWNER})이 메시지를 받지 않습니다(-530)"),
        (pair_quota_used, "두 계정 사이의 하루 한도(20건)를 넘었습니다(-536)"),
    ],
)
def test_a_failure_shows_the_cause_and_the_fix(
    monkeypatch: pytest.MonkeyPatch,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    break_it: object,
    words: str,
) -> None:
    """Not friends, a receiver who refuses, a used-up quota: 502 with the cause and the fix in
    both languages; nothing delivered."""
    client = deployment(monkeypatch, fake_kakao, tmp_path, sender=True)
    assert callable(break_it)
    break_it(fake_kakao)

    pressed = client.post("/test-message", headers=SAME_ORIGIN)

    assert pressed.status_code == 502
    assert words in pressed.text and "class=en" in pressed.text
    assert fake_kakao.state.friend_messages == []


def test_the_test_message_path_takes_only_post(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """A GET (a prefetch, a link) sends nothing: 405."""
    client = deployment(monkeypatch, fake_kakao, tmp_path, sender=True)

    assert client.get("/test-message").status_code == 405
    assert fake_kakao.state.friend_messages == []


def test_a_cookie_value_older_than_the_done_cookies_lifetime_proves_nothing(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """The proof binds the cookie's issue time: a value made eleven minutes ago (a copied
    cookie kept past its expiry) is refused even with the right token behind it."""
    client = deployment(monkeypatch, fake_kakao, tmp_path, sender=True)
    token = json.loads((tmp_path / "kakao_token.sender.json").read_text())["access_token"]
    old = int(time.time()) - DONE_COOKIE_LIFETIME_SECONDS - 60
    value = {"u": BOT, "e": 2**31, "r": 2**31, "s": "", "l": SENDER}
    value |= {"t": token_proof(token, old), "i": old}
    raw = base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    client.set_cookie(DONE_COOKIE, raw)

    assert client.post("/test-message", headers=SAME_ORIGIN).status_code == 403
    assert fake_kakao.state.friend_messages == []


def test_a_broken_deployment_answers_a_clean_page(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """Broken settings behind the button: a 500 page in both languages with the hardening
    headers, no trace."""
    env = settings_env(fake_kakao, TOKEN_DIR=str(tmp_path), KAKAO_TIMEOUT_SECONDS="x")
    client = function_app(monkeypatch, "kakao_callback", env).test_client()

    pressed = client.post("/test-message", headers=SAME_ORIGIN)

    assert pressed.status_code == 500
    assert "Traceback" not in pressed.text and "class=en" in pressed.text
    assert "default-src 'none'" in str(pressed.headers["Content-Security-Policy"])


def test_per_user_documents_test_with_the_users_own_login(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """One login per user: the browser that just logged in user X presses, and X gets a memo
    with X's own token."""
    env = {"TOKEN_OBJECT": "tokens/{user_id}.json", "ALLOWED_KAKAO_USER_IDS": str(OWNER)}
    client = browser(monkeypatch, fake_kakao, tmp_path, **env)
    fake_kakao.state.user_id = OWNER
    start = client.get("/")
    assert client.get(path_and_query(consent(start.headers["Location"]))).status_code == 303

    pressed = client.post("/test-message", headers=SAME_ORIGIN)

    assert pressed.status_code == 200, pressed.text
    assert [(m["user_id"], m["text"]) for m in fake_kakao.state.memos] == [(OWNER, TEST_TEXT)]
