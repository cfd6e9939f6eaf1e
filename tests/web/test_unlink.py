"""Kakao's unlink webhook at <callback URL>/unlink, sent by the fake Kakao to the real function."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from dev.fake_kakao import FakeKakao, WebhookTransport
from tests.conftest import ROOT, EnvFor, function_app, settings_env
from tests.helpers import (
    REDIRECT_URI,
    FunctionServer,
    GcsEmulator,
    begin_login,
    complete_login,
    consent,
    path_and_query,
)
from token_logic.config import Settings
from token_logic.errors import StorageError
from token_logic.network import new_session
from token_logic.service.token_service import TokenService
from token_logic.storage.gcs import GcsTokenStore
from token_logic.wiring import build_service

ADMIN_KEY = "test-admin-key"  # the fake's default
PER_USER = "tokens/{user_id}.json"
OTHER_USER = 4127000002

ClientFactory = Callable[..., FlaskClient]


@pytest.fixture
def make_client(monkeypatch: pytest.MonkeyPatch, env_for: EnvFor, tmp_path: Path) -> ClientFactory:
    def make(target: str = "kakao_callback", **overrides: str) -> FlaskClient:
        env = env_for(
            **{
                "TOKEN_DIR": str(tmp_path),
                "KAKAO_ADMIN_KEY": ADMIN_KEY,
                "KAKAO_APP_ID": "1234567",
                **overrides,
            }
        )
        return function_app(monkeypatch, target, env).test_client()

    return make


class Sent:
    """A transport for the fake's webhook through a Flask test client; keeps every answer."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.bodies: list[dict[str, Any]] = []

    def __call__(
        self, method: str, url: str, headers: dict[str, str], params: dict[str, str]
    ) -> int:
        where: dict[str, Any] = {"data": params} if method == "POST" else {"query_string": params}
        response = self.client.open(path_and_query(url), method=method, headers=headers, **where)
        self.bodies.append(json.loads(response.get_data(as_text=True)))
        return response.status_code


def log_in(client: FlaskClient, fake: FakeKakao, user_id: int) -> None:
    """A whole browser login of ``user_id`` through the function."""
    fake.state.user_id = user_id
    start = begin_login(client)

    callback = path_and_query(consent(start.headers["Location"]))
    assert client.get(callback).status_code < 400  # 303 to the done page


def unlink(fake: FakeKakao, transport: WebhookTransport, user_id: int, **kwargs: Any) -> int:
    return fake.send_unlink_webhook(REDIRECT_URI + "unlink", user_id, transport=transport, **kwargs)


def test_right_key_deletes_the_users_per_user_document_and_alerts(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Kakao's call deletes tokens/{id}.json, answers 200 and logs alert=login_dead (no key)."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    log_in(client, fake_kakao, fake_kakao.state.user_id)
    user_id = fake_kakao.state.user_id
    capsys.readouterr()  # the login's own lines (its admission by claim link) are not the news
    sent = Sent(client)

    status = unlink(fake_kakao, sent, user_id, referrer_type="ACCOUNT_DELETE")

    assert status == 200 and sent.bodies == [{"status": "ok", "deleted": True}]
    assert not (tmp_path / f"tokens/{user_id}.json").exists()
    alerts = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "alert" in line]
    assert len(alerts) == 1
    assert alerts[0]["alert"] == "login_dead" and alerts[0]["severity"] == "ERROR"
    assert alerts[0]["user_id"] == user_id and alerts[0]["referrer_type"] == "ACCOUNT_DELETE"


def test_right_key_clears_the_single_document_but_keeps_its_owner(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """With one TOKEN_OBJECT of the unlinked user: its tokens go, a dead-login marker with the
    owner stays, so a stranger cannot become the owner next; the owner may log in again."""
    owner = fake_kakao.state.user_id
    client = make_client()
    log_in(client, fake_kakao, owner)

    status = unlink(fake_kakao, Sent(client), owner)

    assert status == 200
    left = json.loads((tmp_path / "kakao_token.json").read_text())
    assert left["access_token"] == "" and left["refresh_token"] == ""
    assert left["user_id"] == owner and left["login_error"]["error_code"] == "unlinked"
    fake_kakao.state.user_id = OTHER_USER
    stranger = client.get(path_and_query(consent(client.get("/").headers["Location"])))
    assert stranger.status_code == 403
    log_in(client, fake_kakao, owner)
    again = json.loads((tmp_path / "kakao_token.json").read_text())
    assert again["user_id"] == owner and again["refresh_token"] and "login_error" not in again


def test_single_document_of_someone_else_is_kept(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """Another user's unlink leaves the single document byte for byte; still 200."""
    client = make_client()
    log_in(client, fake_kakao, fake_kakao.state.user_id)
    before = (tmp_path / "kakao_token.json").read_bytes()
    sent = Sent(client)

    status = unlink(fake_kakao, sent, OTHER_USER)

    assert status == 200 and sent.bodies == [{"status": "ok", "deleted": False}]
    assert (tmp_path / "kakao_token.json").read_bytes() == before


def test_a_second_unlink_of_the_same_user_changes_nothing_and_alerts_no_one(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same unlink reported twice (both webhooks registered, or Kakao sending again): the
    second finds the owner's token-less marker, an already ended login: 200, not deleted, the
    marker byte for byte, and only the first made a login_dead alert."""
    owner = fake_kakao.state.user_id
    client = make_client()
    log_in(client, fake_kakao, owner)
    sent = Sent(client)
    assert unlink(fake_kakao, sent, owner) == 200
    before = (tmp_path / "kakao_token.json").read_bytes()

    assert unlink(fake_kakao, sent, owner) == 200

    assert sent.bodies == [{"status": "ok", "deleted": True}, {"status": "ok", "deleted": False}]
    assert (tmp_path / "kakao_token.json").read_bytes() == before
    logged = capsys.readouterr().err
    assert logged.count("login_dead") == 1 and "ended already" in logged


def test_an_unlink_after_our_own_logout_keeps_the_logged_out_marker(
    make_client: ClientFactory,
    file_service: TokenService,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m token_logic logout` left the owner's logged_out marker: an unlink webhook for
    that user after it is no news (200, nothing deleted, no alert; the marker stays as it was)."""
    owner = fake_kakao.state.user_id
    client = make_client()
    log_in(client, fake_kakao, owner)
    file_service.logout()
    before = (tmp_path / "kakao_token.json").read_bytes()
    capsys.readouterr()
    sent = Sent(client)

    assert unlink(fake_kakao, sent, owner) == 200

    assert sent.bodies == [{"status": "ok", "deleted": False}]
    assert (tmp_path / "kakao_token.json").read_bytes() == before
    assert json.loads(before)["login_error"]["error_code"] == "logged_out"
    assert "login_dead" not in capsys.readouterr().err


def test_a_user_never_stored_is_200(make_client: ClientFactory, fake_kakao: FakeKakao) -> None:
    """Kakao wants 200 for users we know nothing about, or it pauses the webhook."""
    client = make_client(TOKEN_OBJECT=PER_USER)

    assert unlink(fake_kakao, Sent(client), OTHER_USER) == 200


@pytest.mark.parametrize("key", ["", "wrong-key", "test-admin-keyX", "KakaoAK test-admin-key"])
def test_wrong_or_missing_key_is_401_and_changes_nothing(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    key: str,
) -> None:
    """Without KakaoAK and the right admin key: 401, the document stays, no alert."""
    client = make_client()
    log_in(client, fake_kakao, fake_kakao.state.user_id)
    before = (tmp_path / "kakao_token.json").read_bytes()

    status = unlink(fake_kakao, Sent(client), fake_kakao.state.user_id, admin_key=key)

    assert status == 401
    assert (tmp_path / "kakao_token.json").read_bytes() == before
    assert "login_dead" not in capsys.readouterr().err


def test_a_bare_key_without_the_kakaoak_scheme_is_refused(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """The header must be exactly "KakaoAK {key}": a bare key or a Bearer one is refused."""
    client = make_client()
    log_in(client, fake_kakao, fake_kakao.state.user_id)
    params = {"app_id": "1234567", "user_id": str(fake_kakao.state.user_id)}

    for header in (ADMIN_KEY, f"Bearer {ADMIN_KEY}", f"kakaoak {ADMIN_KEY}"):
        response = client.post("/unlink", data=params, headers={"Authorization": header})
        assert response.status_code == 401
    assert (tmp_path / "kakao_token.json").exists()


def test_another_app_id_is_refused_and_changes_nothing(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """An app_id other than KAKAO_APP_ID: 403 (our setting is wrong, so Kakao shows errors)."""
    client = make_client()
    log_in(client, fake_kakao, fake_kakao.state.user_id)
    before = (tmp_path / "kakao_token.json").read_bytes()

    status = unlink(fake_kakao, Sent(client), fake_kakao.state.user_id, app_id="7654321")

    assert status == 403
    assert (tmp_path / "kakao_token.json").read_bytes() == before


def test_without_kakao_app_id_any_app_id_is_accepted(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """KAKAO_APP_ID is optional: the admin key alone proves the call is for this app."""
    client = make_client(KAKAO_APP_ID="")
    log_in(client, fake_kakao, fake_kakao.state.user_id)

    assert unlink(fake_kakao, Sent(client), fake_kakao.state.user_id, app_id="1") == 200
    assert json.loads((tmp_path / "kakao_token.json").read_text())["refresh_token"] == ""


@pytest.mark.parametrize("user_id", ["", "abc", "12a", "-5", "１２"])
def test_a_user_id_that_is_not_digits_is_400(make_client: ClientFactory, user_id: str) -> None:
    """user_id must be an ASCII number."""
    client = make_client()
    params = {"app_id": "1234567", "user_id": user_id}

    response = client.post(
        "/unlink", data=params, headers={"Authorization": f"KakaoAK {ADMIN_KEY}"}
    )

    assert response.status_code == 400


def test_without_an_admin_key_the_webhook_is_off(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """No KAKAO_ADMIN_KEY: 404 with a JSON body saying so; nothing is deleted."""
    client = make_client(KAKAO_ADMIN_KEY="")
    log_in(client, fake_kakao, fake_kakao.state.user_id)
    sent = Sent(client)

    status = unlink(fake_kakao, sent, fake_kakao.state.user_id)

    assert status == 404 and sent.bodies[0]["status"] == "disabled"
    assert "KAKAO_ADMIN_KEY" in sent.bodies[0]["message"]
    assert (tmp_path / "kakao_token.json").exists()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_get_with_a_query_and_post_with_a_form_both_work(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path, method: str
) -> None:
    """The console lets the operator pick GET or POST: both unlink."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    log_in(client, fake_kakao, fake_kakao.state.user_id)

    assert unlink(fake_kakao, Sent(client), fake_kakao.state.user_id, method=method) == 200
    assert not (tmp_path / f"tokens/{fake_kakao.state.user_id}.json").exists()


def test_other_methods_are_405(make_client: ClientFactory) -> None:
    """PUT, DELETE and friends are not Kakao's."""
    response = make_client().put("/unlink")

    assert response.status_code == 405 and "POST" in response.headers["Allow"]


def test_the_admin_key_is_in_no_log_line_or_body(
    make_client: ClientFactory, fake_kakao: FakeKakao, capsys: pytest.CaptureFixture[str]
) -> None:
    """Right key, wrong key, unknown user, bad input: the key never appears anywhere."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    log_in(client, fake_kakao, fake_kakao.state.user_id)
    sent = Sent(client)

    unlink(fake_kakao, sent, fake_kakao.state.user_id)
    unlink(fake_kakao, sent, OTHER_USER)
    unlink(fake_kakao, sent, OTHER_USER, admin_key=ADMIN_KEY + "x")
    unlink(fake_kakao, sent, OTHER_USER, app_id="99")

    output = capsys.readouterr()
    assert ADMIN_KEY not in output.err + output.out
    assert ADMIN_KEY not in json.dumps(sent.bodies)
    settings = Settings.from_env(settings_env(fake_kakao, KAKAO_ADMIN_KEY=ADMIN_KEY))
    assert ADMIN_KEY not in repr(settings)


def test_other_users_stay_and_the_sweep_still_refreshes_them(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """After one user's unlink, the other user's document is untouched and still refreshed."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    unlinked = fake_kakao.state.user_id
    log_in(client, fake_kakao, unlinked)
    log_in(client, fake_kakao, OTHER_USER)
    other = tmp_path / f"tokens/{OTHER_USER}.json"
    before = other.read_bytes()

    assert unlink(fake_kakao, Sent(client), unlinked) == 200
    assert other.read_bytes() == before
    sweep = make_client("kakao_refresh", TOKEN_OBJECT=PER_USER).post("/?force=1")

    assert sweep.status_code == 200, sweep.text
    documents = sweep.get_json()["documents"]
    assert [d["user_id"] for d in documents] == [OTHER_USER]
    refreshed = json.loads(other.read_text())
    assert refreshed["access_token"] != json.loads(before)["access_token"]
    assert refreshed["access_token"] in fake_kakao.state.access_tokens


def test_a_storage_failure_is_a_503_for_kakao_to_retry(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A store that fails: 503 with a JSON body, no trace; the next try (Kakao's retry) works."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    log_in(client, fake_kakao, fake_kakao.state.user_id)

    def broken(*args: object, **kwargs: object) -> bool:
        raise StorageError("cannot delete: disk on fire")

    monkeypatch.setattr("token_logic.storage.files.FileTokenStore.delete", broken)
    sent = Sent(client)

    assert unlink(fake_kakao, sent, fake_kakao.state.user_id) == 503
    assert sent.bodies[0]["status"] == "error"
    assert "Traceback" not in capsys.readouterr().err
    monkeypatch.undo()
    client = make_client(TOKEN_OBJECT=PER_USER)
    assert unlink(fake_kakao, Sent(client), fake_kakao.state.user_id) == 200


def test_old_versions_left_behind_are_a_warning_not_an_error_for_kakao(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The document is deleted but its old versions cannot be: still 200 (the tokens are dead at
    Kakao, and an error would only pause the webhook), with a warning naming the document."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    user_id = fake_kakao.state.user_id
    log_in(client, fake_kakao, user_id)
    capsys.readouterr()  # the login's own lines (its admission by claim link) are not the news

    def broken(*args: object, **kwargs: object) -> int:
        raise StorageError("Cloud Storage delete failed (ServiceUnavailable)")

    monkeypatch.setattr("token_logic.storage.files.FileTokenStore.delete_old_versions", broken)
    sent = Sent(client)

    assert unlink(fake_kakao, sent, user_id) == 200
    assert sent.bodies == [{"status": "ok", "deleted": True}]
    assert not (tmp_path / f"tokens/{user_id}.json").exists()
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    [warning] = [line for line in logged if line["severity"] == "WARNING"]
    assert warning["document"] == f"tokens/{user_id}.json" and warning["error"] == "StorageError"


def test_a_late_unlink_after_a_new_login_keeps_the_new_login(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The user unlinked and logged in again before Kakao's webhook arrived: Kakao still accepts
    the stored access token, so the login is newer than the event: 200, kept, no alert."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    user_id = fake_kakao.state.user_id
    log_in(client, fake_kakao, user_id)
    fake_kakao.end_tokens(user_id)  # the unlink, at Kakao
    log_in(client, fake_kakao, user_id)  # a new login
    stored = tmp_path / f"tokens/{user_id}.json"
    before = stored.read_bytes()
    capsys.readouterr()
    params = {"app_id": "1234567", "user_id": str(user_id), "referrer_type": "UNLINK_FROM_APPS"}

    late = client.post("/unlink", data=params, headers={"Authorization": f"KakaoAK {ADMIN_KEY}"})

    assert late.status_code == 200 and late.get_json() == {"status": "ok", "deleted": False}
    assert stored.read_bytes() == before
    logged = capsys.readouterr().err
    assert "login_dead" not in logged and "newer than the event" in logged


def test_when_kakao_cannot_be_asked_the_unlinked_tokens_go_anyway(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """access_token_info answers 500: whether a newer login is stored cannot be known, and the
    webhook is Kakao's (its admin key): privacy first, the document goes, with the alert."""
    client = make_client(TOKEN_OBJECT=PER_USER)
    user_id = fake_kakao.state.user_id
    log_in(client, fake_kakao, user_id)
    fake_kakao.state.inject("/v1/user/access_token_info", "500")
    capsys.readouterr()

    assert unlink(fake_kakao, Sent(client), user_id) == 200

    assert not (tmp_path / f"tokens/{user_id}.json").exists()
    alerts = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "alert" in line]
    assert [alert["kakao_check"] for alert in alerts] == ["unknown"]


def test_a_login_landing_between_read_and_delete_is_kept(
    fake_kakao: FakeKakao, gcs: GcsEmulator, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """forget_user deletes at the version it read; a newer login (new tokens) is not deleted."""
    settings = Settings.from_env(settings_env(fake_kakao, TOKEN_BUCKET=bucket))
    service = build_service(settings, session=new_session(), store=GcsTokenStore(bucket))
    complete_login(service)
    store = service.store
    real_read = store.read
    reads: list[int] = []

    def read_then_a_login_lands(name: str, *args: Any) -> Any:
        stored = real_read(name, *args)
        reads.append(1)
        if len(reads) == 1:
            complete_login(service)  # same user logs in again, after our read
        return stored

    monkeypatch.setattr(store, "read", read_then_a_login_lands)
    # The bundled emulator ignores delete preconditions (see test_stores.py): emulate GCS's 412.
    monkeypatch.setattr(store, "delete", _delete_checking_generation(store, real_read))

    assert service.forget_user(fake_kakao.state.user_id) is None
    assert real_read("kakao_token.json") is not None


def _delete_checking_generation(store: Any, read: Any) -> Any:
    real_delete = store.delete

    def delete(name: str, expected_version: str | None = None) -> bool:
        from token_logic.errors import WriteConflict

        current = read(name)
        if expected_version is not None and current and current.version != expected_version:
            raise WriteConflict("changed")
        return bool(real_delete(name, expected_version))

    return delete


def test_the_running_function_serves_the_webhook_over_http(
    fake_kakao: FakeKakao, gcs: GcsEmulator, bucket: str
) -> None:
    """functions-framework subprocess, GCS emulator, real HTTP: POST /unlink deletes the object."""
    env = settings_env(
        fake_kakao,
        TOKEN_BUCKET=bucket,
        STORAGE_EMULATOR_HOST=gcs.url,
        KAKAO_ADMIN_KEY=ADMIN_KEY,
        KAKAO_APP_ID=fake_kakao.state.app_id,
    )
    settings = Settings.from_env(env)
    complete_login(build_service(settings, session=new_session(), store=GcsTokenStore(bucket)))
    assert gcs.read_object(bucket, "kakao_token.json") is not None

    with FunctionServer("kakao_callback", env, ROOT) as server:
        refused = fake_kakao.send_unlink_webhook(
            server.url + "/unlink", fake_kakao.state.user_id, admin_key="nope"
        )
        kept = gcs.read_object(bucket, "kakao_token.json") is not None
        status = fake_kakao.send_unlink_webhook(
            server.url + "/unlink", fake_kakao.state.user_id, method="GET"
        )
        page = requests.get(server.url + "/?login=done", timeout=10)
        logs = server.logs()

    assert (refused, kept, status) == (401, True, 200)
    left = json.loads(gcs.read_object(bucket, "kakao_token.json") or b"{}")
    assert left["refresh_token"] == "" and left["login_error"]["error_code"] == "unlinked"
    assert '"alert": "login_dead"' in logs and ADMIN_KEY not in logs
    assert page.status_code == 200 and str(fake_kakao.state.user_id) not in page.text


def test_a_hanging_bucket_still_answers_kakao_within_its_3_seconds(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    gcs: GcsEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Storage answering 503 to everything: the webhook gives up on its own deadline (2.5 s)
    and answers 503 before Kakao's 3 s, instead of retrying for the storage client's 20 s."""
    import time

    from tests.helpers import FlakyProxy

    bucket = gcs.new_bucket()
    with FlakyProxy(gcs.url) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        client = make_client(TOKEN_BUCKET=bucket, TOKEN_OBJECT=PER_USER)
        log_in(client, fake_kakao, fake_kakao.state.user_id)
        proxy.paused = True
        started = time.monotonic()

        status = unlink(fake_kakao, Sent(client), fake_kakao.state.user_id)

        elapsed = time.monotonic() - started
    assert status == 503
    assert elapsed < 3.0, elapsed
