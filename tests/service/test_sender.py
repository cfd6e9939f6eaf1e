"""The sender: a second Kakao account beside the owner's login (KAKAO_SENDER=1), admitted by a
link of its own, stored apart, kept alive and ended like the owner's, and never the owner."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from dev.fake_kakao import FakeKakao
from tests.conftest import function_app, service_over, settings_env
from tests.helpers import (
    REDIRECT_URI,
    FakeClock,
    FrozenClock,
    complete_login,
    path_and_query,
    rewrite_stored,
    run_cli,
)
from token_logic.budget import Deadline
from token_logic.config import Settings
from token_logic.errors import (
    ConfigError,
    NotTheOwner,
    OwnerIsSender,
    SenderIsOwner,
    SenderNeedsOwner,
    StorageError,
)
from token_logic.logins import SENDER
from token_logic.service.claim import CLAIM_LIFETIME_SECONDS
from token_logic.service.owner_send import message_owner
from token_logic.service.token_service import TokenService
from token_logic.storage.files import FileTokenStore
from token_logic.storage.protocol import Stored
from token_logic.tokens import TokenDocument

OWNER, BOT, STRANGER = 4127000001, 4127000002, 4127000666
DAY = 24 * 3600
SENDER_FILE = "kakao_token.sender.json"


def sender_service(
    fake: FakeKakao, tmp_path: Path, clock: FakeClock | None = None, **env: str
) -> TokenService:
    return service_over(
        FileTokenStore(tmp_path), fake, clock, TOKEN_DIR=str(tmp_path), KAKAO_SENDER="1", **env
    )


def login_as(service: TokenService, fake: FakeKakao, user_id: int, claim: str = "") -> Any:
    fake.state.user_id = user_id
    return complete_login(service, claim)


def with_owner(service: TokenService, fake: FakeKakao) -> bytes:
    """The owner logged in (with their claim link); the stored bytes."""
    login_as(service, fake, OWNER, service.issue_claim().secret)
    return (Path(service.settings.token_dir) / "kakao_token.json").read_bytes()


def stored(tmp_path: Path, name: str = SENDER_FILE) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / name).read_text())
    return data


def live_tokens_of(fake: FakeKakao, user_id: int) -> int:
    return sum(1 for info in fake.state.refresh_tokens.values() if info.user_id == user_id)


def test_the_sender_link_stores_the_second_account_beside_the_owner_untouched(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """A login through the sender link lands in the sender's document; the owner's document is
    the same bytes, and the owner is still the owner."""
    service = sender_service(fake_kakao, tmp_path)
    owner_bytes = with_owner(service, fake_kakao)

    document = login_as(service, fake_kakao, BOT, service.issue_claim(SENDER).secret)

    assert document.user_id == BOT and stored(tmp_path)["user_id"] == BOT
    assert (tmp_path / "kakao_token.json").read_bytes() == owner_bytes
    assert service.stored_user_id(service.deadline()) == OWNER


def test_a_sender_link_works_once(fake_kakao: FakeKakao, tmp_path: Path) -> None:
    """The second account through a spent sender link is refused and logged out; the first
    sender stays."""
    service = sender_service(fake_kakao, tmp_path)
    with_owner(service, fake_kakao)
    claim = service.issue_claim(SENDER).secret
    login_as(service, fake_kakao, BOT, claim)

    with pytest.raises(NotTheOwner):  # a spent link is no link: just another account
        login_as(service, fake_kakao, STRANGER, claim)

    assert stored(tmp_path)["user_id"] == BOT
    assert live_tokens_of(fake_kakao, STRANGER) == 0


def test_an_expired_sender_link_admits_nobody(fake_kakao: FakeKakao, tmp_path: Path) -> None:
    """A day later the sender link is dead: nothing stored, the fresh tokens logged out."""
    clock = FakeClock()
    fake_kakao.state.clock = clock.time
    service = sender_service(fake_kakao, tmp_path, clock)
    with_owner(service, fake_kakao)
    claim = service.issue_claim(SENDER).secret
    clock.advance(CLAIM_LIFETIME_SECONDS)

    with pytest.raises(NotTheOwner):  # without a valid link it is just another account
        login_as(service, fake_kakao, BOT, claim)

    assert not (tmp_path / SENDER_FILE).exists()
    assert live_tokens_of(fake_kakao, BOT) == 0


def test_a_stranger_without_a_link_gets_nothing(fake_kakao: FakeKakao, tmp_path: Path) -> None:
    """With a sender stored, a stranger's login is refused like before: neither document
    changes."""
    service = sender_service(fake_kakao, tmp_path)
    owner_bytes = with_owner(service, fake_kakao)
    login_as(service, fake_kakao, BOT, service.issue_claim(SENDER).secret)
    sender_bytes = (tmp_path / SENDER_FILE).read_bytes()

    with pytest.raises(NotTheOwner):
        login_as(service, fake_kakao, STRANGER)

    assert (tmp_path / "kakao_token.json").read_bytes() == owner_bytes
    assert (tmp_path / SENDER_FILE).read_bytes() == sender_bytes


def test_the_owner_opening_the_sender_link_is_refused_without_a_logout(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """The owner's own account cannot be the sender (Kakao refuses a message to oneself as a
    friend): refused, the owner's stored login still alive at Kakao, the link still good."""
    service = sender_service(fake_kakao, tmp_path)
    owner_bytes = with_owner(service, fake_kakao)
    claim = service.issue_claim(SENDER).secret

    with pytest.raises(SenderIsOwner):
        login_as(service, fake_kakao, OWNER, claim)

    assert (tmp_path / "kakao_token.json").read_bytes() == owner_bytes
    assert json.loads(owner_bytes)["refresh_token"] in fake_kakao.state.valid_refresh_tokens()
    assert login_as(service, fake_kakao, BOT, claim).user_id == BOT


def test_the_sender_logs_in_again_without_a_link_and_never_becomes_the_owner(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """Once admitted, the sender logs in again freely (e.g. to add a consent) into the
    sender's document. Through the owner's claim link it is refused (one account, one login):
    nothing changes, nothing is logged out, the owner's link stays good for the right account."""
    service = sender_service(fake_kakao, tmp_path)
    owner_bytes = with_owner(service, fake_kakao)
    login_as(service, fake_kakao, BOT, service.issue_claim(SENDER).secret)

    again = login_as(service, fake_kakao, BOT)
    owner_link = service.issue_claim().secret
    with pytest.raises(OwnerIsSender):
        login_as(service, fake_kakao, BOT, owner_link)

    assert stored(tmp_path)["access_token"] == again.access_token
    assert stored(tmp_path)["refresh_token"] in fake_kakao.state.valid_refresh_tokens()
    assert (tmp_path / "kakao_token.json").read_bytes() == owner_bytes
    assert login_as(service, fake_kakao, STRANGER, owner_link).user_id == STRANGER


def test_a_sender_link_before_any_owner_is_refused_and_stays_good(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """The intended owner opening the sender link first would be trapped as the sender: before
    any owner logged in, the sender link is refused (nothing stored, the link unspent); after
    the owner's login it admits the second account."""
    service = sender_service(fake_kakao, tmp_path)
    claim = service.issue_claim(SENDER).secret

    with pytest.raises(SenderNeedsOwner):
        login_as(service, fake_kakao, OWNER, claim)
    assert not (tmp_path / SENDER_FILE).exists()

    with_owner(service, fake_kakao)
    assert login_as(service, fake_kakao, BOT, claim).user_id == BOT


def test_an_owner_document_without_a_user_id_still_refuses_the_owner_as_sender(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """An owner's document written before user_id was kept: Kakao is asked whose its token is,
    and the owner opening the sender link is refused without a logout."""
    service = sender_service(fake_kakao, tmp_path)
    with_owner(service, fake_kakao)
    rewrite_stored(
        FileTokenStore(tmp_path),
        lambda d: TokenDocument({k: v for k, v in d.fields.items() if k != "user_id"}),
    )
    owner_bytes = (tmp_path / "kakao_token.json").read_bytes()

    with pytest.raises(SenderIsOwner):
        login_as(service, fake_kakao, OWNER, service.issue_claim(SENDER).secret)

    assert (tmp_path / "kakao_token.json").read_bytes() == owner_bytes
    assert json.loads(owner_bytes)["refresh_token"] in fake_kakao.state.valid_refresh_tokens()


class OwnerArrivesMidway(FileTokenStore):
    """A store where, just as a sender login reads the sender's document to write it, the same
    account's owner login lands (the race of one account through both links)."""

    def __init__(self, root: Path, owner_document: bytes) -> None:
        super().__init__(root)
        self.owner_document = owner_document
        self.armed = True

    def read(self, name: str, deadline: Deadline | None = None) -> Stored | None:
        if name == SENDER_FILE and self.armed:
            self.armed = False
            self.overwrite("kakao_token.json", self.owner_document)
        return super().read(name, deadline)


def test_one_account_racing_through_both_links_is_never_both(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """The check against the owner is made again right before the sender's write: an account
    that became the owner in between is refused as the sender."""
    service = sender_service(fake_kakao, tmp_path)
    with_owner(service, fake_kakao)
    claim = service.issue_claim(SENDER).secret
    as_bot = json.loads((tmp_path / "kakao_token.json").read_text()) | {"user_id": BOT}
    racing = OwnerArrivesMidway(tmp_path, json.dumps(as_bot).encode())
    raced = service_over(racing, fake_kakao, None, TOKEN_DIR=str(tmp_path), KAKAO_SENDER="1")

    with pytest.raises(SenderIsOwner):
        login_as(raced, fake_kakao, BOT, claim)

    assert not (tmp_path / SENDER_FILE).exists()


def test_a_sender_deployment_asks_both_logins_for_friends_and_talk_message(
    fake_kakao: FakeKakao,
) -> None:
    """KAKAO_SENDER=1 adds the friends and talk_message consents to KAKAO_SCOPE."""
    settings = Settings.from_env(settings_env(fake_kakao, KAKAO_SCOPE="openid", KAKAO_SENDER="1"))

    assert settings.scope.split(",") == ["openid", "friends", "talk_message"]


def test_a_sender_needs_a_single_document(fake_kakao: FakeKakao) -> None:
    """With one login per user there is no one owner to send to: a configuration error."""
    with pytest.raises(ConfigError, match="KAKAO_SENDER=1 needs a single-document"):
        Settings.from_env(
            settings_env(fake_kakao, KAKAO_SENDER="1", TOKEN_OBJECT="tokens/{user_id}.json")
        )


def test_the_sweep_keeps_the_sender_alive_too(fake_kakao: FakeKakao, tmp_path: Path) -> None:
    """A month on, one sweep rotates both logins; each stored refresh token is Kakao's live
    one."""
    clock = FakeClock()
    fake_kakao.state.clock = clock.time
    service = sender_service(fake_kakao, tmp_path, clock)
    with_owner(service, fake_kakao)
    login_as(service, fake_kakao, BOT, service.issue_claim(SENDER).secret)
    clock.advance(31 * DAY)

    outcomes = service.sweep()

    assert sorted((o.name, o.result.refreshed) for o in outcomes if o.result) == [
        ("kakao_token.json", True),
        (SENDER_FILE, True),
    ]
    live = fake_kakao.state.valid_refresh_tokens()
    assert stored(tmp_path)["refresh_token"] in live
    assert stored(tmp_path, "kakao_token.json")["refresh_token"] in live


def test_concurrent_sender_refreshes_at_rotation_call_kakao_once(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """16 callers of the sender's token at the rotation moment: one Kakao refresh, and the
    stored sender refresh token is the live one."""
    clock = FrozenClock()
    fake_kakao.state.clock = clock.time
    service = sender_service(fake_kakao, tmp_path, clock)
    with_owner(service, fake_kakao)
    login_as(service, fake_kakao, BOT, service.issue_claim(SENDER).secret)
    clock.advance(31 * DAY)
    name = service.document_name(None, SENDER)

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(service.valid_document, name, 7 * 3600) for _ in range(16)]
        tokens = {future.result().access_token for future in futures}

    assert fake_kakao.state.refresh_calls() == 1
    assert tokens == {stored(tmp_path)["access_token"]}
    assert stored(tmp_path)["refresh_token"] in fake_kakao.state.valid_refresh_tokens()


def callback_client(
    monkeypatch: pytest.MonkeyPatch, fake: FakeKakao, tmp_path: Path, target: str = "kakao_callback"
) -> FlaskClient:
    env = settings_env(
        fake,
        TOKEN_DIR=str(tmp_path),
        KAKAO_SENDER="1",
        KAKAO_ADMIN_KEY=fake.state.admin_key,
        KAKAO_APP_ID=fake.state.app_id,
    )
    return function_app(monkeypatch, target, env).test_client()


def test_an_unlink_of_the_sender_ends_the_sender_alone(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """Kakao's unlink webhook for the sender: its tokens go (a marker keeps who it was), the
    owner's document is the same bytes."""
    service = sender_service(fake_kakao, tmp_path)
    owner_bytes = with_owner(service, fake_kakao)
    login_as(service, fake_kakao, BOT, service.issue_claim(SENDER).secret)
    client = callback_client(monkeypatch, fake_kakao, tmp_path)

    def transport(method: str, url: str, headers: dict[str, str], params: dict[str, str]) -> int:
        return client.open(
            path_and_query(url), method=method, headers=headers, data=params
        ).status_code

    status = fake_kakao.send_unlink_webhook(REDIRECT_URI + "unlink", BOT, transport=transport)

    assert status == 200
    assert not (tmp_path / SENDER_FILE).exists()  # a new sender link admits the next one
    assert (tmp_path / "kakao_token.json").read_bytes() == owner_bytes


def test_the_token_endpoint_serves_the_senders_token_with_the_receiver(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """``?login=sender``: the sender's access token, whom it sends to (the owner's id) and the
    deployment's memo link; the owner's stays the default."""
    service = sender_service(fake_kakao, tmp_path)
    with_owner(service, fake_kakao)
    login_as(service, fake_kakao, BOT, service.issue_claim(SENDER).secret)
    client = callback_client(monkeypatch, fake_kakao, tmp_path, "kakao_token")

    sender = client.get("/?login=sender").get_json()
    owner = client.get("/").get_json()

    assert sender["access_token"] == stored(tmp_path)["access_token"]
    assert (sender["user_id"], sender["receiver_user_id"]) == (BOT, OWNER)
    assert sender["memo_link"] == service.settings.memo_link
    assert owner["user_id"] == OWNER and "receiver_user_id" not in owner
    assert "refresh_token" not in json.dumps(sender)


@pytest.mark.parametrize(
    ("sender", "query", "status", "error"),
    [
        ("1", "login=sender", 404, "no_token_stored"),  # configured, nobody logged in yet
        ("0", "login=sender", 404, "no_token_stored"),  # no sender in this deployment
        ("1", "login=bot", 400, "bad_request"),
        ("1", "login=sender&user_id=4127000002", 400, "bad_request"),
    ],
)
def test_the_token_endpoint_refuses_what_it_cannot_serve_as_the_sender(
    monkeypatch: pytest.MonkeyPatch,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    sender: str,
    query: str,
    status: int,
    error: str,
) -> None:
    """No sender (not configured, or not logged in) is a 404 naming what to do; a bad login
    value, or a user id with the sender, a 400."""
    env = settings_env(fake_kakao, TOKEN_DIR=str(tmp_path), KAKAO_SENDER=sender)
    client = function_app(monkeypatch, "kakao_token", env).test_client()

    response = client.get(f"/?{query}")

    assert response.status_code == status
    assert response.get_json()["error"] == error


def test_status_shows_both_logins_and_logout_sender_ends_only_the_senders(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """``status`` lists the owner's and the sender's login; ``logout --sender`` logs the sender
    out at Kakao and keeps the owner's login as it was."""
    service = sender_service(fake_kakao, tmp_path)
    owner_bytes = with_owner(service, fake_kakao)
    login_as(service, fake_kakao, BOT, service.issue_claim(SENDER).secret)
    env = settings_env(fake_kakao, TOKEN_DIR=str(tmp_path), KAKAO_SENDER="1")

    status = run_cli(env, "status")
    logout = run_cli(env, "logout", "--sender")

    assert status.returncode == 0, status.stderr
    assert f"{SENDER_FILE} (sender / 보내는 계정): user {BOT}, ok" in status.stdout
    assert f"kakao_token.json: user {OWNER}, ok" in status.stdout
    assert logout.returncode == 0, logout.stderr
    assert live_tokens_of(fake_kakao, BOT) == 0 and not (tmp_path / SENDER_FILE).exists()
    assert (tmp_path / "kakao_token.json").read_bytes() == owner_bytes


def test_status_names_the_friends_consent_a_login_from_before_the_sender_lacks(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """An owner who logged in before KAKAO_SENDER=1 has no friends consent: status says to log
    in again, which asks Kakao for it."""
    plain = service_over(FileTokenStore(tmp_path), fake_kakao, None, TOKEN_DIR=str(tmp_path))
    login_as(plain, fake_kakao, OWNER, plain.issue_claim().secret)
    env = settings_env(fake_kakao, TOKEN_DIR=str(tmp_path), KAKAO_SENDER="1")

    status = run_cli(env, "status")

    assert "missing consent friends: log in again at the callback URL" in status.stdout


def test_send_message_from_the_store_goes_from_the_sender_to_the_owner(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """`python -m token_logic send-message` in a checkout with the store: the stored sender
    messages the owner (found in its friends list), 450 characters in three ordered parts."""
    service = sender_service(fake_kakao, tmp_path)
    with_owner(service, fake_kakao)
    login_as(service, fake_kakao, BOT, service.issue_claim(SENDER).secret)
    fake_kakao.state.ready_to_message(BOT, OWNER)
    env = settings_env(fake_kakao, TOKEN_DIR=str(tmp_path), KAKAO_SENDER="1")

    sent = run_cli(env, "send-message", "가" * 450)

    assert sent.returncode == 0, sent.stderr
    messages = fake_kakao.state.friend_messages
    assert [(m["sender_id"], m["receiver_id"]) for m in messages] == [(BOT, OWNER)] * 3
    assert "".join(m["text"].split(" ", 1)[1] for m in messages) == "가" * 450
    assert [m["text"][:6] for m in messages] == ["(1/3) ", "(2/3) ", "(3/3) "]
    assert sent.stdout.count(f"delivered to {OWNER}") == 3


def test_send_message_from_the_store_without_a_sender_is_a_memo_that_says_so(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """No sender logged in yet: a memo to the owner, and a note naming the sender link."""
    service = sender_service(fake_kakao, tmp_path)
    with_owner(service, fake_kakao)
    env = settings_env(fake_kakao, TOKEN_DIR=str(tmp_path), KAKAO_SENDER="1")

    sent = run_cli(env, "send-message", "메모")

    assert sent.returncode == 0, sent.stderr
    assert [(m["user_id"], m["text"]) for m in fake_kakao.state.memos] == [(OWNER, "메모")]
    assert "claim-url --sender" in sent.stderr


def test_send_message_from_the_store_fails_with_the_cause_and_exit_1(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """Not KakaoTalk friends: nothing delivered, one line with the cause and fix, exit 1."""
    service = sender_service(fake_kakao, tmp_path)
    with_owner(service, fake_kakao)
    login_as(service, fake_kakao, BOT, service.issue_claim(SENDER).secret)
    fake_kakao.state.ready_to_message(BOT, OWNER)
    fake_kakao.state.kakaotalk_friends.clear()
    env = settings_env(fake_kakao, TOKEN_DIR=str(tmp_path), KAKAO_SENDER="1")

    sent = run_cli(env, "send-message", "안녕")

    assert sent.returncode == 1
    assert fake_kakao.state.friend_messages == []
    assert "friends list" in sent.stderr and "friends" in sent.stderr


class SenderReadFails(FileTokenStore):
    """A store whose first read of the sender's document fails (a storage blip)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.failures = 1

    def read(self, name: str, deadline: Deadline | None = None) -> Stored | None:
        if name == SENDER_FILE and self.failures:
            self.failures -= 1
            raise StorageError("storage blip")
        return super().read(name, deadline)


def test_a_storage_blip_on_the_senders_new_login_never_ends_its_stored_login(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """Who a login is could not be settled (the sender's document unreadable): its fresh tokens
    are left to expire rather than logged out, since Kakao's logout would end the sender's
    stored login too (the owner's document holds no tokens here to tell)."""
    service = sender_service(fake_kakao, tmp_path)
    with_owner(service, fake_kakao)
    login_as(service, fake_kakao, BOT, service.issue_claim(SENDER).secret)
    service.logout()  # the owner's document is a token-less marker
    blip = service_over(
        SenderReadFails(tmp_path), fake_kakao, None, TOKEN_DIR=str(tmp_path), KAKAO_SENDER="1"
    )

    with pytest.raises(StorageError):
        login_as(blip, fake_kakao, BOT)

    assert stored(tmp_path)["refresh_token"] in fake_kakao.state.valid_refresh_tokens()


def test_a_dead_sender_login_still_gets_the_message_through_as_a_memo(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """The sender's login died at Kakao (its refresh token revoked): the message still reaches
    the owner, as a memo, with a note naming the sender's login and how to bring it back."""
    clock = FakeClock()
    fake_kakao.state.clock = clock.time
    service = sender_service(fake_kakao, tmp_path, clock)
    with_owner(service, fake_kakao)
    login_as(service, fake_kakao, BOT, service.issue_claim(SENDER).secret)
    fake_kakao.revoke_tokens(BOT)
    clock.advance(7 * 3600)  # the sender's access token expired: a refresh is needed, and fails
    service.valid_document("kakao_token.json", 60)  # the owner's is refreshed and fine

    result = message_owner(service, "서버가 멈췄습니다")

    assert result.ok and result.route == "memo"
    assert result.note is not None and "login=sender" in result.note.en
    assert [(m["user_id"], m["text"]) for m in fake_kakao.state.memos] == [
        (OWNER, "서버가 멈췄습니다")
    ]


def test_send_message_from_the_store_refuses_more_than_five_parts_unless_asked(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """A text of more than five parts: exit 2 naming --all-parts, nothing sent; with
    --all-parts, every part."""
    service = sender_service(fake_kakao, tmp_path)
    with_owner(service, fake_kakao)
    env = settings_env(fake_kakao, TOKEN_DIR=str(tmp_path), KAKAO_SENDER="1")

    refused = run_cli(env, "send-message", "가" * 1200)
    sent = run_cli(env, "send-message", "--all-parts", "가" * 1200)

    assert refused.returncode == 2 and "--all-parts" in refused.stderr
    assert sent.returncode == 0, sent.stderr
    assert len(fake_kakao.state.memos) == 7


def unlink_through_the_function(
    monkeypatch: pytest.MonkeyPatch, fake: FakeKakao, tmp_path: Path, user_id: int
) -> int:
    client = callback_client(monkeypatch, fake, tmp_path)

    def transport(method: str, url: str, headers: dict[str, str], params: dict[str, str]) -> int:
        path = path_and_query(url)
        return client.open(path, method=method, headers=headers, data=params).status_code

    return fake.send_unlink_webhook(REDIRECT_URI + "unlink", user_id, transport=transport)


def test_an_account_that_is_both_owner_and_sender_is_the_owner(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """A sender that took ownership while KAKAO_SENDER was off (so nothing checked it) logs in
    as the owner once it is on again, never locked out; Kakao's unlink then ends both of its
    documents, not just the first."""
    service = sender_service(fake_kakao, tmp_path)
    with_owner(service, fake_kakao)
    login_as(service, fake_kakao, BOT, service.issue_claim(SENDER).secret)
    plain = service_over(FileTokenStore(tmp_path), fake_kakao, None, TOKEN_DIR=str(tmp_path))
    login_as(plain, fake_kakao, BOT, plain.issue_claim().secret)  # BOT takes ownership

    again = login_as(service, fake_kakao, BOT)

    assert stored(tmp_path, "kakao_token.json")["access_token"] == again.access_token
    assert unlink_through_the_function(monkeypatch, fake_kakao, tmp_path, BOT) == 200
    assert not stored(tmp_path, "kakao_token.json").get("refresh_token")
    assert not (tmp_path / SENDER_FILE).exists()


def test_a_storage_blip_on_the_senders_owner_link_login_never_ends_its_stored_login(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """The sender opening the owner's claim link while the sender's document cannot be read:
    the login fails, and its fresh tokens are not logged out (that would end the stored
    sender's login, the same account's)."""
    service = sender_service(fake_kakao, tmp_path)
    with_owner(service, fake_kakao)
    login_as(service, fake_kakao, BOT, service.issue_claim(SENDER).secret)
    owner_link = service.issue_claim().secret
    blip = service_over(
        SenderReadFails(tmp_path), fake_kakao, None, TOKEN_DIR=str(tmp_path), KAKAO_SENDER="1"
    )

    with pytest.raises(StorageError):
        login_as(blip, fake_kakao, BOT, owner_link)

    assert stored(tmp_path)["refresh_token"] in fake_kakao.state.valid_refresh_tokens()


def test_an_unlink_kakao_cannot_confirm_leaves_the_senders_marker(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """An unlink event for the sender while Kakao cannot say whether the stored token is dead
    (the event may be older than a new login): the tokens go, a marker keeps who the sender is,
    so the sender logs in again without a new link."""
    service = sender_service(fake_kakao, tmp_path)
    with_owner(service, fake_kakao)
    login_as(service, fake_kakao, BOT, service.issue_claim(SENDER).secret)
    fake_kakao.state.inject("/v1/user/access_token_info", "500", "500", "500")

    assert unlink_through_the_function(monkeypatch, fake_kakao, tmp_path, BOT) == 200

    marker = stored(tmp_path)
    assert marker["user_id"] == BOT and not marker.get("refresh_token")
    assert login_as(service, fake_kakao, BOT).user_id == BOT
    assert stored(tmp_path)["refresh_token"] in fake_kakao.state.valid_refresh_tokens()
