"""Kakao's account status change webhook at <callback URL>/account-status: signed SETs, sent by
the fake Kakao to the real function."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask
import jwt
import pytest
from flask.testing import FlaskClient

from dev.fake_kakao import JWKS_PATH, Delivery, FakeKakao
from tests.conftest import ROOT, EnvFor, function_app, settings_env
from tests.helpers import (
    REDIRECT_URI,
    FakeClock,
    FunctionServer,
    GcsEmulator,
    begin_login,
    complete_login,
    consent,
    path_and_query,
)
from token_logic.config import Settings
from token_logic.errors import KakaoUnavailable, StorageError, WriteConflict
from token_logic.kakao.events import (
    ACCOUNT_DISABLED,
    ACCOUNT_PURGED,
    TOKEN_REVOKED,
    TOKENS_REVOKED,
    USER_LINKED,
    USER_UNLINKED,
)
from token_logic.kakao.jwks import REFETCH_SECONDS, SigningKeys
from token_logic.network import new_session
from token_logic.service.account_events import EVENTS_FOLDER
from token_logic.service.token_service import TokenService
from token_logic.storage.files import FileTokenStore
from token_logic.storage.gcs import GcsTokenStore
from token_logic.web.account_status import handle_account_status
from token_logic.wiring import build_service

PER_USER = "tokens/{user_id}.json"
APP_ID = "1234567"  # the fake's
OTHER_USER = 4127000002
WEBHOOK = REDIRECT_URI + "account-status"
PROFILE_CHANGED = "https://schemas.kakao.com/platevent/kakao/event-type/user-profile-changed"

ClientFactory = Callable[..., FlaskClient]


@pytest.fixture(autouse=True)
def real_time(clock: FakeClock) -> None:
    """The function under test reads the system clock: the fake signs with the same time."""
    clock.current = time.time()


@pytest.fixture(autouse=True)
def no_cached_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's instance starts without Kakao's keys (a port, and so a URL, may come again)."""
    monkeypatch.setattr("token_logic.web.account_status._keys_by_url", {})


class Ticks:
    """The monotonic clock of the instance's key cache, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks(monkeypatch: pytest.MonkeyPatch) -> Ticks:
    """The key cache the function builds reads this clock."""
    ticks = Ticks()
    monkeypatch.setattr(
        "token_logic.web.account_status.SigningKeys",
        lambda fetch: SigningKeys(fetch, monotonic=ticks),
    )
    return ticks


@pytest.fixture
def make_client(monkeypatch: pytest.MonkeyPatch, env_for: EnvFor, tmp_path: Path) -> ClientFactory:
    def make(**overrides: str) -> FlaskClient:
        env = env_for(**{"TOKEN_DIR": str(tmp_path), "KAKAO_APP_ID": APP_ID, **overrides})
        return function_app(monkeypatch, "kakao_callback", env).test_client()

    return make


class Posted:
    """The fake's SET transport through a Flask test client."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def __call__(self, url: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        response = self.client.post(path_and_query(url), data=body, headers=headers)
        return response.status_code, response.get_data()


def log_in(client: FlaskClient, fake: FakeKakao, user_id: int) -> None:
    """A whole browser login of ``user_id`` through the function."""
    fake.state.user_id = user_id
    start = begin_login(client)
    assert client.get(path_and_query(consent(start.headers["Location"]))).status_code < 400


def send(fake: FakeKakao, client: FlaskClient, user_id: int, event: str, **kwargs: Any) -> Delivery:
    return fake.send_account_status_event(
        WEBHOOK, user_id, event, transport=Posted(client), **kwargs
    )


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]


def post_set(service: TokenService, token: str) -> tuple[int, dict[str, str] | None]:
    """The webhook's handler called with ``service`` (its clock, its store) for one SET."""
    app = flask.Flask(__name__)
    with app.test_request_context(
        "/account-status",
        method="POST",
        data=token.encode(),
        content_type="application/secevent+jwt",
    ):
        return handle_account_status(flask.request, lambda: service)


def test_user_unlinked_deletes_the_per_user_document_with_an_alert(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A verified user-unlinked SET: 202 with no body, tokens/{id}.json gone, alert=login_dead."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    user_id = fake_kakao.state.user_id
    log_in(client, fake_kakao, user_id)
    capsys.readouterr()

    delivery = send(fake_kakao, client, user_id, USER_UNLINKED, reason="UNLINK_FROM_APPS")

    assert (delivery.status, delivery.body) == (202, None)
    assert not (tmp_path / f"tokens/{user_id}.json").exists()
    [alert] = [line for line in log_lines(capsys) if line.get("alert")]
    assert alert["alert"] == "login_dead" and alert["severity"] == "ERROR"
    assert alert["user_id"] == user_id and alert["events"] == ["user-unlinked"]
    assert alert["reason"] == "UNLINK_FROM_APPS" and alert["kakao_check"] == "dead"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (USER_UNLINKED, "unlinked"),
        (TOKENS_REVOKED, "tokens_revoked"),
        (TOKEN_REVOKED, "token_revoked"),
        (ACCOUNT_DISABLED, "account_disabled"),
        (ACCOUNT_PURGED, "account_purged"),
    ],
)
def test_each_token_ending_event_leaves_only_the_owners_marker_naming_it(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path, event: str, reason: str
) -> None:
    """user-unlinked, tokens-revoked, token-revoked, account-disabled, account-purged: the single
    document's tokens go at once, its owner stays (only they may log in next), and its marker
    says which event ended the login."""
    owner = fake_kakao.state.user_id
    client = make_client()
    log_in(client, fake_kakao, owner)

    assert send(fake_kakao, client, owner, event).status == 202

    left = json.loads((tmp_path / "kakao_token.json").read_text())
    assert left["access_token"] == "" and left["refresh_token"] == ""
    assert left["user_id"] == owner and left["login_error"]["error_code"] == reason


@pytest.mark.parametrize(
    "event", [USER_LINKED, PROFILE_CHANGED, "https://example.com/event-type/unheard-of"]
)
def test_other_events_are_acknowledged_and_change_nothing(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    event: str,
) -> None:
    """user-linked is never an unlink; profile changes and unknown types are logged only: 202,
    the document byte for byte, no alert."""
    owner = fake_kakao.state.user_id
    client = make_client()
    log_in(client, fake_kakao, owner)
    before = (tmp_path / "kakao_token.json").read_bytes()
    capsys.readouterr()

    assert send(fake_kakao, client, owner, event).status == 202

    assert (tmp_path / "kakao_token.json").read_bytes() == before
    lines = log_lines(capsys)
    assert not [line for line in lines if line.get("alert")]
    assert any(line["message"].endswith("nothing to do") for line in lines)


@pytest.mark.parametrize(
    ("forgery", "err"),
    [
        ({"forge": "wrong-key"}, "invalid_key"),
        ({"forge": "unknown-kid"}, "invalid_key"),
        ({"forge": "alg-none"}, "invalid_key"),
        ({"forge": "hs256"}, "invalid_key"),
        ({"claims": {"aud": "someone-elses-rest-api-key"}}, "invalid_audience"),
        ({"claims": {"app_id": "7654321"}}, "invalid_audience"),
        ({"claims": {"iss": "https://kauth.example.com"}}, "invalid_issuer"),
        ({"iat_offset": -601}, "invalid_request"),
        ({"iat_offset": 600}, "invalid_request"),
        ({"claims": {"jti": None}}, "invalid_request"),
        ({"claims": {"events": None}}, "invalid_request"),
        ({"claims": {"events": ["user-unlinked"]}}, "invalid_request"),
        ({"claims": {"sub": "4127000999"}}, "invalid_request"),
        ({"claims": {"sub": "abc"}}, "invalid_request"),
    ],
)
def test_a_bad_set_is_400_with_an_rfc8935_body_and_changes_nothing(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    clock: FakeClock,
    forgery: dict[str, Any],
    err: str,
) -> None:
    """Forged signatures, alg none or HS256, another app's aud or app_id, another issuer, a stale
    or future iat, a missing jti, bad events, disagreeing subjects: 400 {err, description}; the
    tokens were really ended at the fake, yet the document stays as it was, with no alert."""
    owner = fake_kakao.state.user_id
    client = make_client()
    log_in(client, fake_kakao, owner)
    before = (tmp_path / "kakao_token.json").read_bytes()
    capsys.readouterr()
    if "iat_offset" in forgery:
        forgery = {"iat": clock.time() + forgery["iat_offset"]}

    delivery = send(fake_kakao, client, owner, USER_UNLINKED, **forgery)

    assert delivery.status == 400
    assert delivery.body is not None and set(delivery.body) == {"err", "description"}
    assert delivery.body["err"] == err
    assert (tmp_path / "kakao_token.json").read_bytes() == before
    assert not [line for line in log_lines(capsys) if line.get("alert")]


@pytest.mark.parametrize("body", [b"", b"not a jwt", b'{"events": {}}', b"a." * 9000])
def test_a_body_that_is_no_set_is_400(make_client: ClientFactory, body: bytes) -> None:
    """Empty, not a JWT, JSON, too large: 400 invalid_request."""
    response = make_client().post(
        "/account-status", data=body, headers={"Content-Type": "application/secevent+jwt"}
    )

    assert response.status_code == 400
    assert response.get_json()["err"] == "invalid_request"


def test_an_id_token_is_not_taken_for_a_set(
    make_client: ClientFactory, fake_kakao: FakeKakao
) -> None:
    """Kakao signs ID tokens with the same keys for the same audience: typ JWT is refused."""
    client = make_client()
    token = fake_kakao.make_set(fake_kakao.state.user_id, USER_UNLINKED)
    claims = jwt.decode(token, options={"verify_signature": False})
    kid, key = fake_kakao.signing_key()
    id_token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "JWT"})

    response = client.post("/account-status", data=id_token)

    assert response.status_code == 400 and "typ" in response.get_json()["description"]


def test_other_methods_are_405(make_client: ClientFactory) -> None:
    """Kakao POSTs; anything else is 405 with Allow: POST."""
    response = make_client().get("/account-status")

    assert response.status_code == 405 and response.headers["Allow"] == "POST"


def test_a_replayed_set_is_400_on_any_instance_and_changes_nothing(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """The jti is remembered in the store, not in an instance: the same SET sent again, after
    the person logged in again, to a fresh instance, is refused and the new login stays."""
    owner = fake_kakao.state.user_id
    first = make_client()
    log_in(first, fake_kakao, owner)
    token = fake_kakao.make_set(owner, USER_UNLINKED)
    assert send(fake_kakao, first, owner, USER_UNLINKED, token=token).status == 202
    log_in(first, fake_kakao, owner)
    before = (tmp_path / "kakao_token.json").read_bytes()

    other_instance = make_client()
    replay = send(fake_kakao, other_instance, owner, USER_UNLINKED, token=token)

    assert replay.status == 400 and replay.body is not None
    assert replay.body["err"] == "invalid_request" and "jti" in replay.body["description"]
    assert (tmp_path / "kakao_token.json").read_bytes() == before


def test_a_late_event_after_a_new_login_keeps_the_new_login(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The user unlinked, logged in again, then the (late) event arrives: Kakao still accepts
    the stored access token, so the login is newer than the event: kept, 202, no alert."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    user_id = fake_kakao.state.user_id
    log_in(client, fake_kakao, user_id)
    fake_kakao.end_tokens(user_id)  # the unlink, at Kakao
    log_in(client, fake_kakao, user_id)  # and a new login
    stored = tmp_path / f"tokens/{user_id}.json"
    before = stored.read_bytes()
    capsys.readouterr()

    delivery = send(fake_kakao, client, user_id, USER_UNLINKED, end_tokens=False)

    assert delivery.status == 202
    assert stored.read_bytes() == before
    lines = log_lines(capsys)
    assert not [line for line in lines if line.get("alert")]
    assert any("older than the stored login" in line["message"] for line in lines)


def test_when_kakao_cannot_be_asked_in_time_the_tokens_go_anyway(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """access_token_info hangs: privacy first, the verified event is acted on (the alert says
    Kakao's answer is unknown), and the answer is still inside Kakao's 3 seconds."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    user_id = fake_kakao.state.user_id
    log_in(client, fake_kakao, user_id)
    fake_kakao.state.inject("/v1/user/access_token_info", "timeout")  # hangs 1.5 s
    capsys.readouterr()
    started = time.monotonic()

    delivery = send(fake_kakao, client, user_id, TOKENS_REVOKED, end_tokens=False)

    assert time.monotonic() - started < 3.0
    assert delivery.status == 202
    assert not (tmp_path / f"tokens/{user_id}.json").exists()
    [alert] = [line for line in log_lines(capsys) if line.get("alert")]
    assert alert["kakao_check"] == "unknown"


def test_an_event_for_a_user_never_stored_is_202(
    make_client: ClientFactory, fake_kakao: FakeKakao
) -> None:
    """Nothing stored for that user: acknowledged, nothing to delete."""
    client = make_client(TOKEN_OBJECT=PER_USER)

    assert send(fake_kakao, client, OTHER_USER, USER_UNLINKED).status == 202


def test_kakaos_keys_are_fetched_once_and_again_for_a_new_kid(
    make_client: ClientFactory, fake_kakao: FakeKakao
) -> None:
    """The JWKS is cached per instance; a rotated key (a kid the cache lacks) fetches it once
    more; a made-up kid right after that does not send each request to Kakao: 503 (it might be
    a newer rotation still), not the final 400."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    jwks_calls: Callable[[], int] = lambda: fake_kakao.state.calls[JWKS_PATH]  # noqa: E731

    assert send(fake_kakao, client, OTHER_USER, USER_LINKED).status == 202
    assert send(fake_kakao, client, OTHER_USER, PROFILE_CHANGED).status == 202
    assert jwks_calls() == 1

    fake_kakao.rotate_signing_key()
    assert send(fake_kakao, client, OTHER_USER, USER_LINKED).status == 202
    assert jwks_calls() == 2

    forged = send(fake_kakao, client, OTHER_USER, USER_LINKED, forge="unknown-kid")
    assert forged.status == 503 and jwks_calls() == 2


def test_a_rotation_right_after_a_made_up_kid_is_503_then_accepted(
    make_client: ClientFactory, fake_kakao: FakeKakao, ticks: Ticks
) -> None:
    """A made-up kid makes the instance fetch Kakao's keys (400: Kakao's set, just fetched, lacks
    it); Kakao rotates its key seconds later: that SET gets 503, not the 400 Kakao would take as
    final, and once the 30 s are over the same SET is fetched for and accepted."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    jwks_calls: Callable[[], int] = lambda: fake_kakao.state.calls[JWKS_PATH]  # noqa: E731
    assert send(fake_kakao, client, OTHER_USER, USER_LINKED).status == 202
    junk = send(fake_kakao, client, OTHER_USER, USER_LINKED, forge="unknown-kid")
    assert junk.status == 400 and jwks_calls() == 2
    fake_kakao.rotate_signing_key()
    token = fake_kakao.make_set(OTHER_USER, USER_LINKED)
    ticks.now += 5

    soon = send(fake_kakao, client, OTHER_USER, USER_LINKED, token=token)
    ticks.now += REFETCH_SECONDS
    later = send(fake_kakao, client, OTHER_USER, USER_LINKED, token=token)

    assert soon.status == 503 and soon.body is not None
    assert soon.body["err"] == "temporarily_unavailable"
    assert later.status == 202 and jwks_calls() == 3


def test_kakaos_keys_unreachable_is_503_and_the_set_can_come_again(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path, ticks: Ticks
) -> None:
    """No JWKS: the SET may be good, so 503 (not 400); nothing changes, and the same SET sent
    again later is acted on (its jti was not spent)."""
    owner = fake_kakao.state.user_id
    client = make_client()
    log_in(client, fake_kakao, owner)
    before = (tmp_path / "kakao_token.json").read_bytes()
    token = fake_kakao.make_set(owner, USER_UNLINKED)
    fake_kakao.state.inject(JWKS_PATH, "500")

    failed = send(fake_kakao, client, owner, USER_UNLINKED, token=token)

    assert failed.status == 503 and failed.body is not None
    assert failed.body["err"] == "temporarily_unavailable"
    assert (tmp_path / "kakao_token.json").read_bytes() == before
    ticks.now += REFETCH_SECONDS
    assert send(fake_kakao, client, owner, USER_UNLINKED, token=token).status == 202
    assert json.loads((tmp_path / "kakao_token.json").read_text())["refresh_token"] == ""


def test_an_unreachable_jwks_is_asked_once_per_30_s_whatever_is_posted(
    make_client: ClientFactory, fake_kakao: FakeKakao, ticks: Ticks
) -> None:
    """The cached keys have aged out and Kakao's JWKS does not answer: the first request tries
    (503); the next ones in the 30 s, good SETs and junk alike, are 503 without a call to Kakao;
    after them, one more try, which works."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    jwks_calls: Callable[[], int] = lambda: fake_kakao.state.calls[JWKS_PATH]  # noqa: E731
    assert send(fake_kakao, client, OTHER_USER, USER_LINKED).status == 202
    ticks.now += 3601  # the cached set is stale
    fake_kakao.state.inject(JWKS_PATH, "500", "500", "500", "500")

    statuses = [
        send(fake_kakao, client, OTHER_USER, USER_LINKED).status,
        send(fake_kakao, client, OTHER_USER, USER_LINKED, forge="unknown-kid").status,
        send(fake_kakao, client, OTHER_USER, USER_LINKED, forge="wrong-key").status,
        send(fake_kakao, client, OTHER_USER, PROFILE_CHANGED).status,
    ]
    calls_while_down = jwks_calls()
    fake_kakao.state.faults[JWKS_PATH].clear()
    ticks.now += REFETCH_SECONDS

    assert statuses == [503, 503, 503, 503] and calls_while_down == 2
    assert send(fake_kakao, client, OTHER_USER, USER_LINKED).status == 202
    assert jwks_calls() == 3


def test_the_keys_fetch_gets_the_time_left_after_waiting_for_the_lock(
    fake_kakao: FakeKakao,
) -> None:
    """Two SETs at once on a cold instance: the second waits while the first fetches (0.6 s);
    needing a fetch of its own (a newer kid), it may take what is left of its time after that
    wait, not what was left before it."""
    first_kid = fake_kakao.signing_key()[0]
    before_rotation = fake_kakao.jwks()
    second_kid = fake_kakao.rotate_signing_key()
    now = [0.0]
    started, release = threading.Event(), threading.Event()
    timeouts: list[float] = []

    def fetch(timeout: float) -> dict[str, Any]:
        timeouts.append(timeout)
        if len(timeouts) == 1:
            started.set()
            release.wait(5)
            now[0] += 0.6
            return before_rotation
        return fake_kakao.jwks()

    keys = SigningKeys(fetch, monotonic=lambda: now[0])
    time_left = lambda: 1.0 - now[0]  # noqa: E731 - both requests started at 0
    found: dict[str, Any] = {}
    first = threading.Thread(target=lambda: found.update(a=keys.key_for(first_kid, time_left)))
    second = threading.Thread(target=lambda: found.update(b=keys.key_for(second_kid, time_left)))

    first.start()
    assert started.wait(5)
    second.start()
    time.sleep(0.1)  # the second now waits for the lock
    release.set()
    first.join(5)
    second.join(5)

    assert timeouts == [1.0, pytest.approx(0.4)]
    assert found["a"] is not None and found["b"] is not None


def test_a_trickling_jwks_answer_is_given_up_on_within_kakaos_3_seconds(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """Kakao's keys arriving a byte at a time, each within the read timeout: the fetch ends at
    its own time (1 s), and the webhook answers 503 well inside the 3 s Kakao waits, storing
    nothing; the same SET later is acted on."""
    owner = fake_kakao.state.user_id
    client = make_client()
    log_in(client, fake_kakao, owner)
    before = (tmp_path / "kakao_token.json").read_bytes()
    token = fake_kakao.make_set(owner, USER_UNLINKED)
    fake_kakao.state.inject(JWKS_PATH, "trickle")

    started = time.monotonic()
    failed = send(fake_kakao, client, owner, USER_UNLINKED, token=token)
    elapsed = time.monotonic() - started

    assert failed.status == 503 and elapsed < 2.5, elapsed
    assert (tmp_path / "kakao_token.json").read_bytes() == before


def test_waiting_for_another_requests_key_fetch_ends_with_the_callers_time() -> None:
    """A fetch that hangs holds the key cache's lock: a second request waits for it no longer
    than its own time allows (0.3 s here), then answers 503, instead of queueing behind it."""
    release = threading.Event()

    def fetch(timeout: float) -> dict[str, Any]:
        release.wait(10)
        raise KakaoUnavailable("timeout")

    keys = SigningKeys(fetch)
    first = threading.Thread(target=lambda: _swallow(lambda: keys.key_for("a", lambda: 5.0)))
    first.start()
    time.sleep(0.05)  # the first now holds the lock, fetching

    started = time.monotonic()
    with pytest.raises(KakaoUnavailable) as caught:
        keys.key_for("a", lambda: 0.3)
    waited = time.monotonic() - started
    release.set()
    first.join(5)

    assert caught.value.reason == "timeout" and 0.25 <= waited < 1.0


def _swallow(call: Callable[[], object]) -> None:
    with contextlib.suppress(KakaoUnavailable):
        call()


@pytest.mark.parametrize(("app_id", "status"), [(APP_ID, 202), ("", 400)])
def test_aud_may_be_the_app_id_when_kakao_app_id_is_set(
    make_client: ClientFactory, fake_kakao: FakeKakao, app_id: str, status: int
) -> None:
    """aud carrying the app ID instead of the REST API key: accepted when KAKAO_APP_ID names it
    (both identify this app), invalid_audience without it."""
    client = make_client(TOKEN_OBJECT=PER_USER, KAKAO_APP_ID=app_id)

    delivery = send(fake_kakao, client, OTHER_USER, USER_LINKED, claims={"aud": APP_ID})

    assert delivery.status == status
    if status == 400:
        assert delivery.body is not None and delivery.body["err"] == "invalid_audience"


def test_a_storage_failure_is_503_and_the_same_set_works_afterwards(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The delete fails: 503, and no jti marker is written, so Kakao's next try of the same SET is
    not refused as a replay."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    user_id = fake_kakao.state.user_id
    log_in(client, fake_kakao, user_id)
    token = fake_kakao.make_set(user_id, USER_UNLINKED)
    real_delete = FileTokenStore.delete

    def broken(self: Any, name: str, *args: Any) -> bool:
        if name.startswith("tokens/"):
            raise StorageError("cannot delete: disk on fire")
        return real_delete(self, name, *args)

    monkeypatch.setattr("token_logic.storage.files.FileTokenStore.delete", broken)

    assert send(fake_kakao, client, user_id, USER_UNLINKED, token=token).status == 503
    monkeypatch.undo()
    assert send(fake_kakao, client, user_id, USER_UNLINKED, token=token).status == 202
    assert not (tmp_path / f"tokens/{user_id}.json").exists()


def test_when_the_store_refuses_everything_kakaos_next_try_is_still_acted_on(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Out of time, every storage call refuses (the delete, and any clean-up of a marker): 503,
    and since nothing was marked before acting, Kakao's next try of the same SET ends the login
    instead of being refused as a replay while the login was never ended."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    user_id = fake_kakao.state.user_id
    log_in(client, fake_kakao, user_id)
    token = fake_kakao.make_set(user_id, USER_UNLINKED)

    def refused(*args: Any, **kwargs: Any) -> bool:
        raise StorageError("no time left for a storage call before the deadline")

    monkeypatch.setattr("token_logic.storage.files.FileTokenStore.delete", refused)
    first = send(fake_kakao, client, user_id, USER_UNLINKED, token=token)
    monkeypatch.undo()
    again = send(fake_kakao, client, user_id, USER_UNLINKED, token=token)

    assert (first.status, again.status) == (503, 202)
    assert not (tmp_path / f"tokens/{user_id}.json").exists()


def test_a_marker_write_that_landed_before_its_412_is_no_replay(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The jti marker's upload lands, its answer is lost and the client's retry gets 412
    (WriteConflict): the event is still acted on (202, tokens gone), and only a later delivery
    of the same SET is a replay (400, nothing changes)."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    user_id = fake_kakao.state.user_id
    log_in(client, fake_kakao, user_id)
    token = fake_kakao.make_set(user_id, USER_UNLINKED)
    real_write = FileTokenStore.write
    lost_answers = [1]

    def landed_then_412(self: Any, name: str, *args: Any) -> str:
        version = real_write(self, name, *args)
        if name.startswith(EVENTS_FOLDER + "/") and lost_answers:
            lost_answers.pop()
            raise WriteConflict(f"{name} changed since it was read")
        return version

    monkeypatch.setattr("token_logic.storage.files.FileTokenStore.write", landed_then_412)
    first = send(fake_kakao, client, user_id, USER_UNLINKED, token=token)
    log_in(client, fake_kakao, user_id)
    stored = tmp_path / f"tokens/{user_id}.json"
    before = stored.read_bytes()
    replay = send(fake_kakao, client, user_id, USER_UNLINKED, token=token)

    assert first.status == 202
    assert replay.status == 400 and replay.body is not None and "jti" in replay.body["description"]
    assert stored.read_bytes() == before


def test_a_slow_kakao_leaves_the_storage_work_after_it_its_time(
    fake_kakao: FakeKakao,
    bucket: str,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cold instance's key fetch takes 0.8 s and access_token_info hangs: the question gets
    only what the storage work after it does not need (a Cloud Storage call starts only with
    1 s left), so the delete and the jti's marker both run within the 2.5 s: 202, tokens gone,
    and the same SET again is a replay."""
    env = settings_env(fake_kakao, TOKEN_BUCKET=bucket, TOKEN_OBJECT=PER_USER)
    store = GcsTokenStore(bucket)
    service = build_service(Settings.from_env(env), session=new_session(), store=store, clock=clock)
    user_id = complete_login(service).user_id
    assert user_id is not None
    real_keys = service.kakao.signing_keys
    asked: list[float] = []

    def slow_keys(timeout: float) -> dict[str, Any]:
        clock.advance(0.8)
        return real_keys(timeout)

    def hanging_info(access_token: str, timeout: float) -> dict[str, Any]:
        asked.append(timeout)
        clock.advance(timeout)
        raise KakaoUnavailable("timeout", "no answer")

    monkeypatch.setattr(service.kakao, "signing_keys", slow_keys)
    monkeypatch.setattr(service.kakao, "access_token_info", hanging_info)
    token = fake_kakao.make_set(user_id, USER_UNLINKED)

    answer = post_set(service, token)

    assert answer == (202, None)
    assert asked and asked[0] < 1.0
    assert store.read(f"tokens/{user_id}.json") is None
    assert post_set(service, token)[0] == 400


def test_token_revoked_when_kakao_cannot_tell_is_503_and_changes_nothing(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """token-revoked names one token, maybe not the stored one: when access_token_info cannot
    answer in time the login is not ended on a guess; 503 so Kakao sends it again, and that
    next try is acted on (Kakao still accepts the stored token: kept)."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    user_id = fake_kakao.state.user_id
    log_in(client, fake_kakao, user_id)
    stored = tmp_path / f"tokens/{user_id}.json"
    before = stored.read_bytes()
    token = fake_kakao.make_set(user_id, TOKEN_REVOKED)
    fake_kakao.state.inject("/v1/user/access_token_info", "timeout")  # hangs 1.5 s
    capsys.readouterr()

    first = send(fake_kakao, client, user_id, TOKEN_REVOKED, token=token, end_tokens=False)
    again = send(fake_kakao, client, user_id, TOKEN_REVOKED, token=token, end_tokens=False)

    assert first.status == 503 and first.body is not None
    assert first.body["err"] == "temporarily_unavailable"
    assert again.status == 202
    assert stored.read_bytes() == before
    lines = log_lines(capsys)
    assert not [line for line in lines if line.get("alert")]
    assert any("another token" in line["message"] for line in lines)


def test_token_revoked_with_the_stored_access_token_expired_keeps_the_login(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The stored access token expired by the document's own clock: Kakao would call it dead
    whichever token was revoked, so it is not asked and the login stays (its next refresh shows
    whether the refresh token still lives); 202, no alert."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    user_id = fake_kakao.state.user_id
    log_in(client, fake_kakao, user_id)
    stored = tmp_path / f"tokens/{user_id}.json"
    document = json.loads(stored.read_text())
    stored.write_text(json.dumps({**document, "expires_at": int(time.time()) - 60}))
    before = stored.read_bytes()
    fake_kakao.end_tokens(user_id)  # Kakao answers -401 for it now, as for an expired one
    asked = fake_kakao.state.calls["/v1/user/access_token_info"]
    capsys.readouterr()

    delivery = send(fake_kakao, client, user_id, TOKEN_REVOKED, end_tokens=False)

    assert delivery.status == 202
    assert stored.read_bytes() == before
    assert fake_kakao.state.calls["/v1/user/access_token_info"] == asked
    lines = log_lines(capsys)
    assert not [line for line in lines if line.get("alert")]
    assert any("has expired" in line["message"] for line in lines)


@pytest.mark.parametrize("event", [TOKENS_REVOKED, USER_UNLINKED])
def test_after_our_own_logout_kakaos_event_changes_nothing_and_alerts_no_one(
    make_client: ClientFactory,
    file_service: TokenService,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    event: str,
) -> None:
    """`python -m token_logic logout` leaves the owner's logged_out marker; Kakao then reports
    the tokens it ended: already ended, so 202, the marker byte for byte (still logged_out),
    no login_dead alert."""
    owner = fake_kakao.state.user_id
    client = make_client()
    log_in(client, fake_kakao, owner)
    file_service.logout()
    before = (tmp_path / "kakao_token.json").read_bytes()
    assert json.loads(before)["login_error"]["error_code"] == "logged_out"
    capsys.readouterr()

    delivery = send(fake_kakao, client, owner, event)

    assert delivery.status == 202
    assert (tmp_path / "kakao_token.json").read_bytes() == before
    lines = log_lines(capsys)
    assert not [line for line in lines if line.get("alert")]
    assert any("ended already" in line["message"] for line in lines)


def test_no_token_or_set_reaches_a_log_line(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Accepted, forged, replayed, late: the logs hold facts (user id, event names), never a
    token, a SET or a part of one."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    user_id = fake_kakao.state.user_id
    log_in(client, fake_kakao, user_id)
    document = json.loads((tmp_path / f"tokens/{user_id}.json").read_text())
    secrets_seen = [document["access_token"], document["refresh_token"]]
    tokens = [fake_kakao.make_set(user_id, USER_LINKED) for _ in range(2)]
    forged = fake_kakao.make_set(user_id, USER_UNLINKED, forge="wrong-key")

    send(fake_kakao, client, user_id, USER_LINKED, token=tokens[0])
    send(fake_kakao, client, user_id, USER_LINKED, token=tokens[0])
    send(fake_kakao, client, user_id, USER_UNLINKED, token=forged)
    send(fake_kakao, client, user_id, USER_UNLINKED, end_tokens=False)
    send(fake_kakao, client, user_id, USER_UNLINKED, token=tokens[1])

    output = capsys.readouterr()
    logged = output.err + output.out
    for token in [*tokens, forged]:
        for part in token.split("."):
            if part:
                assert part not in logged
    for secret in secrets_seen:
        assert secret not in logged


def test_import_main_loads_no_jwt_library() -> None:
    """Cold starts of the login, refresh and token paths never pay for PyJWT or cryptography."""
    code = (
        "import sys, main; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jwt', 'cryptography')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


def test_the_running_function_handles_kakaos_sets_over_http(
    fake_kakao: FakeKakao, gcs: GcsEmulator, bucket: str
) -> None:
    """functions-framework subprocess, GCS emulator, real HTTP: with the webhook registered at
    the fake, a first login's user-linked changes nothing, a revocation ends the login (the
    object becomes the owner's marker), a forged SET is 400; the logs hold no token."""
    env = settings_env(
        fake_kakao, TOKEN_BUCKET=bucket, STORAGE_EMULATOR_HOST=gcs.url, KAKAO_APP_ID=APP_ID
    )
    service = build_service(
        Settings.from_env(env), session=new_session(), store=GcsTokenStore(bucket)
    )

    with FunctionServer("kakao_callback", env, ROOT) as server:
        fake_kakao.state.account_status_url = server.url + "/account-status"
        document = complete_login(service)
        [linked] = fake_kakao.wait_for_deliveries(1)
        kept = json.loads(gcs.read_object(bucket, "kakao_token.json") or b"{}")
        fake_kakao.revoke_tokens(fake_kakao.state.user_id)
        revoked = fake_kakao.wait_for_deliveries(2)[1]
        forged = fake_kakao.send_account_status_event(
            server.url + "/account-status", OTHER_USER, USER_UNLINKED, forge="alg-none"
        )
        logs = server.logs()

    assert (linked.event, linked.status) == (USER_LINKED, 202)
    assert kept["refresh_token"] == document.refresh_token
    assert (revoked.event, revoked.status) == (TOKENS_REVOKED, 202)
    left = json.loads(gcs.read_object(bucket, "kakao_token.json") or b"{}")
    assert left["refresh_token"] == "" and left["login_error"]["error_code"] == "tokens_revoked"
    assert forged.status == 400 and forged.body == {
        "err": "invalid_key",
        "description": "only SETs signed with RS256 are accepted",
    }
    assert '"alert": "login_dead"' in logs
    assert document.access_token not in logs and document.refresh_token not in logs
