"""`send-message` and send_message() end to end: the real token function (behind Cloud Run's
invoker check) hands out the sender's token with ``?login=sender``, the client finds the owner
in the sender's friends list at the fake Kakao and sends; without a sender, a memo. Every
failure is a line with its cause and fix, and the exit status says whether all arrived."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dev.fake_kakao_talk import FRIEND_SEND_PATH, FRIENDS_PATH
from tests.conftest import ROOT, settings_env
from tests.endpoint import PERSON, Endpoint, running_endpoint
from tests.fake_google import id_token_for
from tests.helpers import complete_login
from token_logic import MessageResult, send_message
from token_logic.client import cli, remote
from token_logic.client.remote import SENDER_CACHE_SECONDS, RemoteSettings, remote_token
from token_logic.config import Settings
from token_logic.errors import NoTokenStored
from token_logic.kakao.message_parts import MAX_PARTS
from token_logic.kakao.to_owner import (
    NO_OWNER_NAMED_NOTE,
    NO_SENDER_NOTE,
    SENDER_LOGIN_DEAD_NOTE,
    SENDER_UNAVAILABLE_NOTE,
)
from token_logic.logins import SENDER
from token_logic.network import new_session
from token_logic.service.token_service import TokenService
from token_logic.storage.files import FileTokenStore
from token_logic.wiring import build_service

OWNER, BOT = 4127000001, 4127000002
DEPLOYMENT_LINK = "https://deployment.example/memo"
WORDS = " ".join(f"낱말{n:03d}" for n in range(75))  # 449 characters, spaces between


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    remote._CACHE.clear()
    yield
    remote._CACHE.clear()


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    """A deployment with a sender (KAKAO_SENDER=1) and a memo link of its own."""
    with running_endpoint(
        tmp_path, {PERSON}, KAKAO_SENDER="1", KAKAO_MEMO_LINK=DEPLOYMENT_LINK
    ) as served:
        yield served


@pytest.fixture
def ready(endpoint: Endpoint) -> Endpoint:
    """The owner and the sender logged in; friends, members, consented."""
    endpoint.log_in(user_id=OWNER)
    endpoint.log_in(SENDER, user_id=BOT)
    endpoint.kakao.state.ready_to_message(BOT, OWNER)
    return endpoint


@pytest.fixture
def unkept(endpoint: Endpoint) -> Endpoint:
    """As ``ready``, with tokens that live under 3,630 s: the endpoint never keeps those in its
    own memory (web/token_endpoint.py), so each ask reads the store, as it does 30 s on."""
    endpoint.kakao.state.access_lifetime = 3000
    endpoint.log_in(user_id=OWNER)
    endpoint.log_in(SENDER, user_id=BOT)
    endpoint.kakao.state.ready_to_message(BOT, OWNER)
    return endpoint


@dataclass
class Ran:
    code: int
    out: str
    err: str


def client_env(endpoint: Endpoint, **extra: str) -> dict[str, str]:
    """A script's environment: the endpoint, an ID token for it, Kakao's host (the fake)."""
    return {
        "KAKAO_TOKEN_URL": endpoint.url,
        "KAKAO_TOKEN_ID_TOKEN": id_token_for(endpoint.url, PERSON),
        "KAKAO_API_BASE_URL": endpoint.kakao.url,
        **extra,
    }


def kakao_token(
    capsys: pytest.CaptureFixture[str], endpoint: Endpoint, *args: str, **extra: str
) -> Ran:
    """``kakao-token ARGS`` in this process (what the logins logged before is not its)."""
    capsys.readouterr()
    code = cli.main(list(args), client_env(endpoint, **extra))
    captured = capsys.readouterr()
    return Ran(code, captured.out, captured.err)


def service_of(endpoint: Endpoint) -> TokenService:
    """The deployment's service over its store, as the command line in a checkout has it."""
    env = settings_env(endpoint.kakao, TOKEN_DIR=str(endpoint.store_dir), **endpoint.env)
    return build_service(
        Settings.from_env(env), session=new_session(), store=FileTokenStore(endpoint.store_dir)
    )


def sender_due(endpoint: Endpoint) -> None:
    """The stored sender's access token is about to expire: the endpoint refreshes it first."""
    path = endpoint.store_dir / "kakao_token.sender.json"
    stored = json.loads(path.read_text())
    stored["updated_at"] -= 600  # not "just refreshed" (that is served as it is)
    stored["expires_at"] = stored["updated_at"] + 610
    path.write_text(json.dumps(stored))


def sent_texts(endpoint: Endpoint) -> list[str]:
    return [message["text"] for message in endpoint.kakao.state.friend_messages]


def scope_of(endpoint: Endpoint, user_id: int, scope: str) -> None:
    """The user's live tokens at Kakao carry ``scope`` only (a login that consented less)."""
    for table in (endpoint.kakao.state.access_tokens, endpoint.kakao.state.refresh_tokens):
        for info in table.values():
            if info.user_id == user_id:
                info.scope = scope


def test_a_message_goes_from_the_sender_to_the_owner(
    capsys: pytest.CaptureFixture[str], ready: Endpoint
) -> None:
    """The sender's token from ?login=sender, the owner's uuid from the sender's friends
    list, one message from the sender to the owner; no memo, no uuid or token printed."""
    ran = kakao_token(capsys, ready, "send-message", "빌드가 끝났습니다")

    assert ran.code == 0, ran.err
    assert ran.out.splitlines() == [f"delivered to {OWNER} (part 1/1)"]
    (message,) = ready.kakao.state.friend_messages
    assert (message["sender_id"], message["receiver_id"]) == (BOT, OWNER)
    assert message["text"] == "빌드가 끝났습니다"
    assert ready.kakao.state.memos == []
    printed = ran.out + ran.err
    assert ready.kakao.state.talk_uuid(OWNER) not in printed
    assert not [token for token in ready.kakao.state.access_tokens if token in printed]


def test_450_characters_arrive_as_three_parts_in_order(
    capsys: pytest.CaptureFixture[str], ready: Endpoint
) -> None:
    """A text of 449 characters: three numbered parts, each at most 200 characters with its
    number, cut between words, in order; together the whole text."""
    ran = kakao_token(capsys, ready, "send-message", WORDS)

    texts = sent_texts(ready)
    assert ran.code == 0, ran.err
    assert [text[:6] for text in texts] == ["(1/3) ", "(2/3) ", "(3/3) "]
    assert all(len(text) <= 200 for text in texts)
    assert " ".join(text[6:] for text in texts) == WORDS
    assert [line.rsplit("(", 1)[1] for line in ran.out.splitlines()] == [
        "part 1/3)",
        "part 2/3)",
        "part 3/3)",
    ]


@pytest.mark.parametrize(
    ("with_sender_setting", "words"),
    [(False, "no sender"), (True, "no sender")],
    ids=["deployment-without-sender", "sender-not-logged-in"],
)
def test_without_a_sender_it_goes_as_a_memo_and_says_how_to_ring(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, with_sender_setting: bool, words: str
) -> None:
    """The endpoint's 404 no_token_stored for the sender: a memo with the owner's token, and a
    note that it will not ring and how to add a sender."""
    settings = {"KAKAO_SENDER": "1"} if with_sender_setting else {}
    with running_endpoint(tmp_path, {PERSON}, **settings) as plain:
        plain.log_in(user_id=OWNER)

        ran = kakao_token(capsys, plain, "send-message", "메모로 갑니다")
        memos = plain.kakao.state.memos

    assert ran.code == 0, ran.err
    assert memos[-1]["text"] == "메모로 갑니다" and memos[-1]["user_id"] == OWNER
    assert f"delivered as a memo to {OWNER} (part 1/1, no notification)" in ran.out
    assert words in ran.err and "KAKAO_SENDER=1" in ran.err
    assert "no sender account has logged in yet" in ran.err  # either may be why
    assert "claim-url --sender" in ran.err


def test_memo_sends_a_memo_even_with_a_sender(
    capsys: pytest.CaptureFixture[str], ready: Endpoint
) -> None:
    """--memo: the owner's memo to themselves, no friend message, no note."""
    ran = kakao_token(capsys, ready, "send-message", "--memo", "나에게")

    assert ran.code == 0, ran.err
    assert ready.kakao.state.memos[-1]["text"] == "나에게"
    assert ready.kakao.state.friend_messages == [] and ran.err == ""


def test_the_link_is_given_else_local_else_the_deployments(
    capsys: pytest.CaptureFixture[str], ready: Endpoint
) -> None:
    """--link wins; without it KAKAO_MEMO_LINK here; without that the deployment's own."""
    kakao_token(capsys, ready, "send-message", "--link", "https://given.example/", "하나")
    kakao_token(capsys, ready, "send-message", "둘", KAKAO_MEMO_LINK="https://local.example/")
    kakao_token(capsys, ready, "send-message", "셋")

    links = [m["template"]["link"]["web_url"] for m in ready.kakao.state.friend_messages]
    assert links == ["https://given.example/", "https://local.example/", DEPLOYMENT_LINK]


def test_a_template_is_sent_as_it_is(
    capsys: pytest.CaptureFixture[str], ready: Endpoint, tmp_path: Path
) -> None:
    """--template-json FILE: any default template (a feed here), no TEXT, sent unchanged."""
    feed = {
        "object_type": "feed",
        "content": {
            "title": "배포 완료",
            "description": "v1.2.3",
            "image_url": "https://example.com/i.png",
            "link": {"web_url": "https://example.com"},
        },
        "buttons": [{"title": "보기", "link": {"web_url": "https://example.com/run"}}],
    }
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(feed, ensure_ascii=False))

    ran = kakao_token(capsys, ready, "send-message", "--template-json", str(path))

    assert ran.code == 0, ran.err
    assert ready.kakao.state.friend_messages[-1]["template"] == feed


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("-502", ["not KakaoTalk friends", "make the two accounts friends in KakaoTalk"]),
        ("-530", ["refuses messages", "allow messages"]),
        ("-531", ["monthly quota", "resets on the 1st of the month (KST)"]),
        ("-532", ["the sender's daily quota (100 messages)", "resets at midnight KST"]),
        ("-533", ["the owner's daily quota of received messages", "midnight KST"]),
        ("-536", ["between the sender and the owner (20 messages)", "midnight KST"]),
        ("-2", ["an app without the message permission", "[앱] > [멤버]", "[추가 기능 신청]"]),
    ],
)
def test_each_refusal_is_a_line_with_its_cause_and_fix(
    capsys: pytest.CaptureFixture[str], ready: Endpoint, code: str, words: list[str]
) -> None:
    """Kakao refusing the first of three parts: exit 1, one line with Kakao's code, the cause
    and the fix (in English, or in Korean for a Korean reader), and the two other parts not
    sent."""
    ready.kakao.state.inject(FRIEND_SEND_PATH, code, code)

    ran = kakao_token(capsys, ready, "send-message", WORDS)
    korean = kakao_token(capsys, ready, "send-message", WORDS, KAKAO_TOKEN_LANG="ko")

    assert ran.code == korean.code == 1 and ran.out == korean.out == ""
    (line, not_sent) = ran.err.splitlines()
    assert line.startswith("error: (1/3) ") and f"({code})" in line
    assert all(word in line for word in words), line
    assert not_sent.endswith("2 of 3 parts not sent")
    (korean_line, korean_not_sent) = korean.err.splitlines()
    assert f"({code})" in korean_line and korean_not_sent.endswith("2개 부분은 보내지 않았습니다")
    assert sum("\uac00" <= char <= "\ud7a3" for char in korean_line) > 10  # Hangul
    assert ready.kakao.state.calls[FRIEND_SEND_PATH] == 2


def test_a_quota_met_midway_stops_the_rest(
    capsys: pytest.CaptureFixture[str], ready: Endpoint
) -> None:
    """The pair's daily quota runs out after the first part (the fake's own rule): part 1 is
    delivered, part 2 is -536, part 3 is not sent; exit 1."""
    ready.kakao.state.talk_limits.pair_daily = 1

    ran = kakao_token(capsys, ready, "send-message", WORDS)

    assert ran.code == 1
    assert ran.out.splitlines() == [f"delivered to {OWNER} (part 1/3)"]
    assert "(2/3)" in ran.err and "(-536)" in ran.err and "1 of 3 parts not sent" in ran.err
    assert len(sent_texts(ready)) == 1


def test_an_owner_who_is_no_member_is_not_found_and_the_fix_names_the_member_page(
    capsys: pytest.CaptureFixture[str], ready: Endpoint
) -> None:
    """An app without the message permission, the owner not its member: Kakao lists only
    members, so the owner is not in the sender's friends list; nothing is sent, and the line
    says to consent, to be friends, and to invite the owner as a member."""
    ready.kakao.state.members.discard(OWNER)

    ran = kakao_token(capsys, ready, "send-message", "안녕")

    assert ran.code == 1
    assert f"the owner (user {OWNER}) is not in the sender's (user {BOT}) friends list" in ran.err
    assert "[앱] > [멤버]" in ran.err and "KakaoTalk friends" in ran.err
    assert ready.kakao.state.calls[FRIEND_SEND_PATH] == 0


def test_an_owner_without_the_friends_consent_is_told_to_log_in_again(
    capsys: pytest.CaptureFixture[str], ready: Endpoint
) -> None:
    """The owner never consented to friends: not in the list; the fix is Kakao's additional
    consent through the login URL, with the owner's account."""
    ready.kakao.state.consents.pop(OWNER)
    scope_of(ready, OWNER, "talk_message")

    ran = kakao_token(capsys, ready, "send-message", "안녕")

    assert ran.code == 1
    assert "must consent to friends" in ran.err
    assert "open the login URL (kakao_callback) again with the owner's account" in ran.err


def test_a_sender_without_the_friends_consent_logs_in_again_through_the_sender_link(
    capsys: pytest.CaptureFixture[str], ready: Endpoint
) -> None:
    """The sender's token lacks friends: Kakao's -402 names it, and the fix is the sender's
    own login through the sender link."""
    ready.kakao.state.consents.pop(BOT)
    scope_of(ready, BOT, "talk_message")

    ran = kakao_token(capsys, ready, "send-message", "안녕")

    assert ran.code == 1
    assert "the sender has not consented to friends (-402)" in ran.err
    assert "claim-url --sender" in ran.err


@pytest.mark.parametrize(
    ("args", "why"),
    [
        ([], "give the text or --template-json FILE"),
        (["a", "--template-json", "x.json"], "give the text or --template-json FILE"),
        (["   "], "the text is empty"),
        (["a", "--link", "javascript:alert(1)"], "--link must be an absolute http(s) URL"),
        (["--template-json", "/nonexistent.json"], "cannot read"),
        (["--template-json", "-", "--link", "https://x.example"], "--link goes with a text"),
        (["가" * 1200], "the text makes 7 messages of at most 200 characters"),
        (["가" * 1200], f"more than the limit of {MAX_PARTS}: shorten it, or give --all-parts"),
    ],
    ids=[
        "nothing",
        "both",
        "blank",
        "bad-link",
        "no-file",
        "link-with-template",
        "too-many-parts",
        "too-many-parts-names-the-option",
    ],
)
def test_bad_usage_is_exit_2_before_anything_is_asked(
    capsys: pytest.CaptureFixture[str], endpoint: Endpoint, args: list[str], why: str
) -> None:
    """Arguments that make no message: exit 2 and why, and the endpoint is never asked."""
    ran = kakao_token(capsys, endpoint, "send-message", *args)

    assert ran.code == 2 and why in ran.err
    assert endpoint.check.forwarded == 0


def test_a_template_that_is_not_a_template_is_bad_usage(
    capsys: pytest.CaptureFixture[str], endpoint: Endpoint, tmp_path: Path
) -> None:
    """A file that is no JSON object, or one without object_type: exit 2."""
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "bare.json").write_text('{"text": "x"}')

    not_object = kakao_token(
        capsys, endpoint, "send-message", "--template-json", str(tmp_path / "list.json")
    )
    bare = kakao_token(
        capsys, endpoint, "send-message", "--template-json", str(tmp_path / "bare.json")
    )

    assert not_object.code == 2 and "JSON object" in not_object.err
    assert bare.code == 2 and "object_type" in bare.err


def test_send_message_returns_what_kakao_did(ready: Endpoint) -> None:
    """The Python API: a MessageResult (route, receiver, parts delivered); a refusal is in the
    result, not raised."""
    env = client_env(ready)

    delivered = send_message("파이썬에서", environ=env)
    ready.kakao.state.inject(FRIEND_SEND_PATH, "-536")
    refused = send_message("또", environ=env)

    assert isinstance(delivered, MessageResult)
    assert (delivered.ok, delivered.route, delivered.receiver_user_id) == (True, "friend", OWNER)
    assert delivered.delivered == (1,) and delivered.summary == "delivered"
    assert not refused.ok and refused.summary == "failed: -536 pair's daily quota"
    assert refused.failures[0].code == "-536" and refused.failures[0].part == 1


def test_send_message_raises_the_endpoints_refusal(endpoint: Endpoint) -> None:
    """Nobody logged in: no sender (a memo then), and no owner: the endpoint's NoTokenStored
    is raised, as get_access_token() raises it."""
    with pytest.raises(NoTokenStored):
        send_message("아무도 없음", environ=client_env(endpoint))

    assert endpoint.kakao.state.memos == []


def test_python_m_token_logic_sends_a_template_from_stdin(ready: Endpoint) -> None:
    """`python -m token_logic send-message --template-json -` through the endpoint: the same
    command, the template read from standard input."""
    template = {
        "object_type": "text",
        "text": "표준 입력",
        "link": {"web_url": "https://a.example"},
    }

    done = subprocess.run(
        [sys.executable, "-m", "token_logic", "send-message", "--template-json", "-"],
        input=json.dumps(template),
        env={"PATH": "/usr/bin:/bin", **client_env(ready)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert f"delivered to {OWNER} (part 1/1)" in done.stdout
    assert ready.kakao.state.friend_messages[-1]["template"] == template
    assert ready.kakao.state.calls[FRIENDS_PATH] == 1


def test_send_memo_through_the_endpoint_links_where_the_deployment_says(
    capsys: pytest.CaptureFixture[str], ready: Endpoint
) -> None:
    """`kakao-token send-memo` takes the deployment's memo link (the answer's memo_link) when
    KAKAO_MEMO_LINK is not set where it runs, as send-message does."""
    ran = kakao_token(capsys, ready, "send-memo", "링크")

    assert ran.code == 0, ran.err
    assert ready.kakao.state.memos[-1]["link"]["web_url"] == DEPLOYMENT_LINK


def test_more_parts_than_the_limit_go_with_all_parts_only(
    capsys: pytest.CaptureFixture[str], ready: Endpoint
) -> None:
    """A text of 6 parts: refused from Python before the endpoint is asked (ValueError naming
    the limit and all_parts=True), even as memos; sent with --all-parts, every part."""
    text = "가" * 1100  # six parts

    with pytest.raises(ValueError, match=rf"limit of {MAX_PARTS}.*all_parts=True"):
        send_message(text, memo=True, environ=client_env(ready))
    asked = ready.check.forwarded
    ran = kakao_token(capsys, ready, "send-message", "--all-parts", text)

    assert asked == 0 and ready.kakao.state.memos == []
    assert ran.code == 0, ran.err
    assert [t[:6] for t in sent_texts(ready)] == [f"({n}/6) " for n in range(1, 7)]


def test_the_notes_name_every_cause() -> None:
    """No sender: the deployment may lack KAKAO_SENDER=1 or no sender has logged in yet. No
    owner named: the owner may not be logged in, or the deployment is older. Each in both
    languages."""
    assert "KAKAO_SENDER=1" in NO_SENDER_NOTE.en and "logged in yet" in NO_SENDER_NOTE.en
    assert "KAKAO_SENDER=1" in NO_SENDER_NOTE.ko and "로그인하지 않았습니다" in NO_SENDER_NOTE.ko
    assert "owner is not logged in" in NO_OWNER_NAMED_NOTE.en
    assert "older" in NO_OWNER_NAMED_NOTE.en and "./deploy.sh" in NO_OWNER_NAMED_NOTE.en
    assert "로그인하지 않았거나" in NO_OWNER_NAMED_NOTE.ko and "오래" in NO_OWNER_NAMED_NOTE.ko


def test_a_dead_sender_login_sends_a_memo_saying_how_to_revive_it(
    capsys: pytest.CaptureFixture[str], ready: Endpoint
) -> None:
    """The sender's refresh token died at Kakao (logged out, unlinked, expired): the endpoint
    answers 401 login_required for ?login=sender; the message goes as the owner's memo, and the
    note names the sender's login and both ways back (the callback URL, a new sender link)."""
    sender_due(ready)
    for token, info in list(ready.kakao.state.refresh_tokens.items()):
        if info.user_id == BOT:
            del ready.kakao.state.refresh_tokens[token]

    ran = kakao_token(capsys, ready, "send-message", "서버가 멈췄습니다")

    assert ran.code == 0, ran.err
    assert ready.kakao.state.memos[-1]["text"] == "서버가 멈췄습니다"
    assert ready.kakao.state.friend_messages == []
    assert f"note: {SENDER_LOGIN_DEAD_NOTE.en}" in ran.err
    assert "login=sender" in ran.err and "callback URL" in ran.err
    assert "claim-url --sender" in ran.err


def test_a_sender_kakao_cannot_refresh_now_sends_a_memo(ready: Endpoint) -> None:
    """Kakao failing the sender's refresh (5xx): the endpoint cannot serve the sender now, so
    the message goes as the owner's memo, with the note that says so."""
    sender_due(ready)
    ready.kakao.state.inject("/oauth/token", *["500"] * 6)

    result = send_message("카카오가 느립니다", environ=client_env(ready))

    assert (result.ok, result.route, result.note) == (True, "memo", SENDER_UNAVAILABLE_NOTE)
    assert ready.kakao.state.memos[-1]["text"] == "카카오가 느립니다"


def test_the_senders_answer_is_not_kept_past_its_time(unkept: Endpoint) -> None:
    """The owner changes hands while a script holds the sender's answer: once that answer is
    SENDER_CACHE_SECONDS old, the next message asks again and goes to the new owner."""
    new_owner = 4127000009
    settings = RemoteSettings.from_env(client_env(unkept))
    assert settings is not None
    long_ago = time.time() - SENDER_CACHE_SECONDS
    kept = remote_token(settings, login=SENDER, now=lambda: long_ago)
    service = service_of(unkept)
    unkept.kakao.state.user_id = new_owner
    complete_login(service, service.issue_claim().secret)  # the deployment handed over
    unkept.kakao.state.ready_to_message(BOT, new_owner)

    result = send_message("인수인계 뒤", environ=client_env(unkept))

    assert kept.receiver_user_id == OWNER
    assert (result.ok, result.receiver_user_id) == (True, new_owner)
    (message,) = unkept.kakao.state.friend_messages
    assert message["receiver_id"] == new_owner


def test_a_sender_token_kakao_refuses_is_asked_for_once_more(unkept: Endpoint) -> None:
    """The sender logged out and in again after a script kept its token: Kakao answers -401
    for the kept one; the script asks the endpoint once more and the message arrives once."""
    env = client_env(unkept)
    send_message("하나", environ=env)
    service_of(unkept).logout(login=SENDER)
    unkept.log_in(SENDER, user_id=BOT)
    asked = unkept.check.forwarded

    result = send_message("둘", environ=env)

    assert (result.ok, result.route) == (True, "friend")
    assert sent_texts(unkept) == ["하나", "둘"]
    assert unkept.check.forwarded == asked + 1
    assert unkept.kakao.state.calls[FRIENDS_PATH] == 3  # the first, the refused, the new


def test_a_sender_logged_out_since_its_token_was_kept_sends_a_memo(
    unkept: Endpoint,
) -> None:
    """The sender logged out after a script kept its token: Kakao's -401, then the endpoint's
    no_token_stored: the message goes as the owner's memo, saying there is no sender."""
    env = client_env(unkept)
    send_message("하나", environ=env)
    service_of(unkept).logout(login=SENDER)

    result = send_message("둘", environ=env)

    assert (result.ok, result.route, result.note) == (True, "memo", NO_SENDER_NOTE)
    assert unkept.kakao.state.memos[-1]["text"] == "둘"


def test_a_send_refused_with_minus_401_is_tried_once_more(ready: Endpoint) -> None:
    """Kakao refuses the send itself with -401 (nothing sent): the sender's token is asked for
    again and the message sent once more, once; it arrives once."""
    ready.kakao.state.inject(FRIEND_SEND_PATH, "-401")

    result = send_message("다시", environ=client_env(ready))

    assert result.ok and sent_texts(ready) == ["다시"]
    assert ready.kakao.state.calls[FRIEND_SEND_PATH] == 2


def test_a_sender_token_refused_twice_leaves_a_memo(ready: Endpoint) -> None:
    """-401 on the send and on the one retry (the endpoint still hands out the dead token from
    its own short memory): nothing is tried a third time from the sender, and the message goes
    as the owner's memo, with a note saying why."""
    ready.kakao.state.inject(FRIEND_SEND_PATH, "-401", "-401")

    result = send_message("또", environ=client_env(ready))

    assert result.ok and result.route == "memo" and result.note is not None
    assert ready.kakao.state.calls[FRIEND_SEND_PATH] == 2
    assert [(m["user_id"], m["text"]) for m in ready.kakao.state.memos] == [(OWNER, "또")]


def test_an_owner_token_refused_is_asked_for_once_more(ready: Endpoint) -> None:
    """A memo refused with -401 (a token kept from before the owner logged out or handed over):
    the endpoint is asked once more and the memo sent once more."""
    ready.kakao.state.inject("/v2/api/talk/memo/default/send", "-401")

    result = send_message("메모", memo=True, environ=client_env(ready))

    assert result.ok and result.route == "memo"
    assert ready.kakao.state.calls["/v2/api/talk/memo/default/send"] == 2
    assert [m["text"] for m in ready.kakao.state.memos] == ["메모"]


def test_status_through_the_endpoint_shows_the_owner_and_the_sender(
    capsys: pytest.CaptureFixture[str], ready: Endpoint
) -> None:
    """`kakao-token status` names both logins: the owner's, and the sender's with whom it
    sends to (in --json too)."""
    text = kakao_token(capsys, ready, "status")
    as_json = kakao_token(capsys, ready, "status", "--json")

    assert text.code == as_json.code == 0, text.err
    assert f"user {OWNER}, ok" in text.out
    assert f"sender: user {BOT}, ok (sends to {OWNER})" in text.out
    assert json.loads(as_json.out)["sender"]["user_id"] == BOT


def test_status_without_a_sender_shows_the_owner_alone(
    capsys: pytest.CaptureFixture[str], endpoint: Endpoint
) -> None:
    """No sender logged in: the owner's login, and nothing about a sender."""
    endpoint.log_in(user_id=OWNER)

    ran = kakao_token(capsys, endpoint, "status")

    assert ran.code == 0, ran.err
    assert "sender" not in ran.out
