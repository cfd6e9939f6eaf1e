"""The kakao_token entry point: a valid access token as JSON, and nothing secret, ever."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import flask
import pytest
import requests
from flask.testing import FlaskClient

from dev.fake_kakao import FakeKakao, FakeKakaoState
from tests.conftest import ROOT, function_app, settings_env
from tests.helpers import REDIRECT_URI, FakeClock, FunctionServer, complete_login, rewrite_stored
from token_logic.config import Settings
from token_logic.errors import StorageError
from token_logic.network import new_session
from token_logic.storage.files import FileTokenStore
from token_logic.storage.gcs import GcsTokenStore
from token_logic.storage.protocol import Stored, TokenStore
from token_logic.web.token_endpoint import FreshTokenCache, handle_token
from token_logic.wiring import build_service

NAME = "kakao_token.json"
PUBLIC_FIELDS = {
    "access_token",
    "token_type",
    "expires_at",
    "expires_in",
    "scope",
    "user_id",
    "memo_link",
}


@pytest.fixture
def live_kakao(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKakao]:
    """A fake Kakao on the real clock (the function under test reads the real clock, and
    sleeps for real: its pauses between Kakao attempts are cut to a moment)."""
    monkeypatch.setattr("token_logic.kakao.api.BACKOFF_SECONDS", (0.01, 0.02))
    fake = FakeKakao(FakeKakaoState(redirect_uris={REDIRECT_URI})).start()
    yield fake
    fake.stop()


def log_in(fake: FakeKakao, store: TokenStore, **env: str) -> dict[str, Any]:
    settings = Settings.from_env(settings_env(fake, **env))
    service = build_service(settings, session=new_session(), store=store)
    return dict(complete_login(service).fields)


def expire_in(store: TokenStore, seconds: int, name: str = NAME) -> None:
    """Make the stored access token expire ``seconds`` from now (issued hours ago, as such a
    token would be: one refreshed in the last 150 s is served as it is)."""
    now = int(time.time())
    rewrite_stored(
        store, lambda d: d.with_fields(expires_at=now + seconds, updated_at=now - 3 * 3600), name
    )


def token_client(monkeypatch: pytest.MonkeyPatch, fake: FakeKakao, **env: str) -> FlaskClient:
    return function_app(monkeypatch, "kakao_token", settings_env(fake, **env)).test_client()


def secrets_of(document: dict[str, Any], fake: FakeKakao) -> list[str]:
    return [
        value
        for value in (document["refresh_token"], document.get("id_token"), fake.state.client_secret)
        if value
    ]


def test_fresh_token_is_served_without_calling_kakao(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, bucket: str
) -> None:
    """GET answers the stored access token and its facts, no-store, and Kakao is not called."""
    store = GcsTokenStore(bucket)
    document = log_in(live_kakao, store, TOKEN_BUCKET=bucket)

    response = token_client(monkeypatch, live_kakao, TOKEN_BUCKET=bucket).get("/")

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == PUBLIC_FIELDS
    assert body["access_token"] == document["access_token"]
    assert body["user_id"] == document["user_id"] and body["scope"] == document["scope"]
    assert abs(body["expires_in"] - (body["expires_at"] - time.time())) < 3
    assert response.headers["Cache-Control"] == "no-store"
    assert live_kakao.state.refresh_calls() == 0
    text = response.get_data(as_text=True)
    assert not [secret for secret in secrets_of(document, live_kakao) if secret in text]


def test_token_near_expiry_is_refreshed_once(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, bucket: str
) -> None:
    """Less life left than min_valid: one refresh, a new token stored and served."""
    store = GcsTokenStore(bucket)
    document = log_in(live_kakao, store, TOKEN_BUCKET=bucket)
    expire_in(store, 100)
    client = token_client(monkeypatch, live_kakao, TOKEN_BUCKET=bucket)

    first = client.get("/").get_json()
    second = client.get("/").get_json()

    assert live_kakao.state.refresh_calls() == 1
    assert first["access_token"] != document["access_token"]
    assert first["access_token"] in live_kakao.state.access_tokens
    assert second["access_token"] == first["access_token"]
    assert first["expires_in"] > 3600


@pytest.mark.parametrize("when", ["a_day_ahead", "in_2100"])
def test_a_lease_further_ahead_than_any_request_runs_counts_as_expired(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, tmp_path: Path, when: str
) -> None:
    """A refresh lease ending past the function's timeout plus clock skew was written by no one
    still working: it is taken over, so callers get a refreshed token at once, not a 503
    telling them to come back in a day (or in 2100)."""
    store = FileTokenStore(tmp_path)
    log_in(live_kakao, store, TOKEN_DIR=str(tmp_path))
    expire_in(store, 100)
    until = int(time.time()) + 86400 if when == "a_day_ahead" else 4102444800
    rewrite_stored(store, lambda d: d.with_fields(refresh_lease={"owner": "x", "until": until}))
    client = token_client(monkeypatch, live_kakao, TOKEN_DIR=str(tmp_path))

    response = client.get("/")

    assert response.status_code == 200, response.get_json()
    assert live_kakao.state.refresh_calls() == 1
    assert "refresh_lease" not in json.loads((tmp_path / NAME).read_text())


@pytest.mark.parametrize(
    ("left", "min_valid", "refreshes"),
    [(2000, "3600", 1), (2000, "1000", 0), (100, "60", 0), (100, "0", 0), (100, "", 1)],
)
def test_min_valid_decides_whether_to_refresh(
    monkeypatch: pytest.MonkeyPatch,
    live_kakao: FakeKakao,
    tmp_path: Path,
    left: int,
    min_valid: str,
    refreshes: int,
) -> None:
    """The served token lives at least min_valid seconds (default 300); no more refreshing."""
    store = FileTokenStore(tmp_path)
    log_in(live_kakao, store, TOKEN_DIR=str(tmp_path))
    expire_in(store, left)
    query = f"/?min_valid={min_valid}" if min_valid else "/"

    body = token_client(monkeypatch, live_kakao, TOKEN_DIR=str(tmp_path)).get(query).get_json()

    assert live_kakao.state.refresh_calls() == refreshes
    assert body["expires_in"] >= int(min_valid or 300)


@pytest.mark.parametrize(
    "query", ["min_valid=abc", "min_valid=-1", "min_valid=3601", "min_valid=1e3", "user_id=x"]
)
def test_bad_parameters_are_400_json(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, tmp_path: Path, query: str
) -> None:
    """A bad min_valid (not 0-3600 whole seconds) or user_id: 400 JSON naming both rules."""
    log_in(live_kakao, FileTokenStore(tmp_path), TOKEN_DIR=str(tmp_path))

    response = token_client(monkeypatch, live_kakao, TOKEN_DIR=str(tmp_path)).get(f"/?{query}")

    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "bad_request" and "3600" in body["message"]
    assert body["login_url"] == REDIRECT_URI
    assert "access_token" not in body


def test_user_id_picks_the_user(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, tmp_path: Path
) -> None:
    """With per-user documents, ?user_id= picks one; without it, a 400 asking for user_id."""
    env = {"TOKEN_DIR": str(tmp_path), "TOKEN_OBJECT": "tokens/{user_id}.json"}
    tokens = {}
    for user in (11, 22):
        live_kakao.state.user_id = user
        tokens[user] = log_in(live_kakao, FileTokenStore(tmp_path), **env)["access_token"]
    client = token_client(monkeypatch, live_kakao, **env)

    chosen = client.get("/?user_id=22")
    unnamed = client.get("/")

    assert chosen.status_code == 200
    assert chosen.get_json()["access_token"] == tokens[22]
    assert chosen.get_json()["user_id"] == 22
    assert unnamed.status_code == 400
    assert unnamed.get_json()["error"] == "bad_request"
    assert "user_id" in unnamed.get_json()["message"]


def test_a_strangers_only_login_is_never_served_to_a_request_naming_no_user(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, tmp_path: Path
) -> None:
    """Per-user documents with only one stored, a stranger's (before the owner's first login,
    or after an unlink deleted the owner's): / without user_id answers 400 asking for one,
    never the stranger's token (the owner's scripts would send their memos to the stranger)."""
    env = {"TOKEN_DIR": str(tmp_path), "TOKEN_OBJECT": "tokens/{user_id}.json"}
    live_kakao.state.user_id = 666
    stranger = log_in(live_kakao, FileTokenStore(tmp_path), **env)

    response = token_client(monkeypatch, live_kakao, **env).get("/")

    assert response.status_code == 400 and "user_id" in response.get_json()["message"]
    assert stranger["access_token"] not in response.get_data(as_text=True)


def test_the_one_allowed_user_needs_no_user_id(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, tmp_path: Path
) -> None:
    """Per-user documents and one allowed user: / serves that user's login, whatever else is
    stored; with two allowed users the request must name one."""
    owner = live_kakao.state.user_id
    env = {"TOKEN_DIR": str(tmp_path), "TOKEN_OBJECT": "tokens/{user_id}.json"}
    document = log_in(live_kakao, FileTokenStore(tmp_path), **env)
    # Each app reads its settings on its first request: asked before the next one is made.
    one = token_client(monkeypatch, live_kakao, **env, ALLOWED_KAKAO_USER_IDS=str(owner)).get("/")
    two = token_client(monkeypatch, live_kakao, **env, ALLOWED_KAKAO_USER_IDS=f"{owner},42").get(
        "/"
    )

    assert one.get_json()["access_token"] == document["access_token"]
    assert two.status_code == 400


def test_a_single_document_is_not_served_for_another_user_id(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, tmp_path: Path
) -> None:
    """One document for the owner: ?user_id= of the owner serves it, any other id is a 404."""
    document = log_in(live_kakao, FileTokenStore(tmp_path), TOKEN_DIR=str(tmp_path))
    client = token_client(monkeypatch, live_kakao, TOKEN_DIR=str(tmp_path))

    mine = client.get(f"/?user_id={document['user_id']}")
    other = client.get("/?user_id=42")

    assert mine.status_code == 200 and mine.get_json()["access_token"] == document["access_token"]
    assert other.status_code == 404 and document["access_token"] not in other.get_data(as_text=True)


def test_nothing_stored_is_404_with_the_login_url(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, bucket: str
) -> None:
    """Before any login: 404 {error, message, login_url}, the message saying to log in."""
    response = token_client(monkeypatch, live_kakao, TOKEN_BUCKET=bucket).get("/")

    assert response.status_code == 404
    body = response.get_json()
    assert body["error"] == "no_token_stored"
    assert "Log in first" in body["message"]
    assert body["login_url"] == REDIRECT_URI


def test_dead_login_is_401_and_an_alert_log_line(
    monkeypatch: pytest.MonkeyPatch,
    live_kakao: FakeKakao,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """KOE322: 401 saying to log in again at the callback URL; ERROR log with alert=login_dead."""
    store = FileTokenStore(tmp_path)
    document = log_in(live_kakao, store, TOKEN_DIR=str(tmp_path))
    expire_in(store, 100)
    live_kakao.state.refresh_tokens.clear()  # the user unlinked the app, or it lay unused
    client = token_client(monkeypatch, live_kakao, TOKEN_DIR=str(tmp_path))
    capfd.readouterr()

    first = client.get("/")
    again = client.get("/")  # the document is marked: no second Kakao call

    assert first.status_code == again.status_code == 401
    body = first.get_json()
    assert body["error"] == "login_required" and body["code"] == "KOE322"
    assert f"Log in again at {REDIRECT_URI}" in body["message"]
    assert body["login_url"] == REDIRECT_URI
    assert live_kakao.state.refresh_calls() == 1
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line]
    alerts = [line for line in lines if line.get("alert") == "login_dead"]
    assert len(alerts) == 2
    assert alerts[0]["severity"] == "ERROR" and alerts[0]["login_url"] == REDIRECT_URI
    logged = json.dumps(lines)
    assert document["access_token"] not in logged and document["refresh_token"] not in logged


def test_kakao_failing_is_a_5xx_json(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, tmp_path: Path
) -> None:
    """Kakao answering HTML where JSON belongs (after its retries): 502 JSON, token kept."""
    store = FileTokenStore(tmp_path)
    document = log_in(live_kakao, store, TOKEN_DIR=str(tmp_path))
    expire_in(store, 100)
    live_kakao.state.inject("/oauth/token", "html", "html", "html")

    response = token_client(monkeypatch, live_kakao, TOKEN_DIR=str(tmp_path)).get("/")

    assert response.status_code == 502
    body = response.get_json()
    assert body["error"] == "kakao_unavailable" and body["login_url"] == REDIRECT_URI
    stored = json.loads((tmp_path / NAME).read_text())
    assert stored["refresh_token"] == document["refresh_token"]


def test_kakao_rate_limit_is_429_with_retry_after(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, tmp_path: Path
) -> None:
    """KOE237 while refreshing: 429 with Retry-After, error kakao_error, code KOE237."""
    store = FileTokenStore(tmp_path)
    log_in(live_kakao, store, TOKEN_DIR=str(tmp_path))
    expire_in(store, 100)
    live_kakao.state.inject("/oauth/token", "KOE237")

    response = token_client(monkeypatch, live_kakao, TOKEN_DIR=str(tmp_path)).get("/")

    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert response.get_json()["code"] == "KOE237"


class BrokenStore:
    """A store whose every call fails as Cloud Storage does after its retries."""

    def __getattr__(self, attribute: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise StorageError(f"Cloud Storage {attribute} failed (ServiceUnavailable)")

        return fail


class CountingStore:
    """Counts reads of the store it wraps."""

    def __init__(self, inner: TokenStore) -> None:
        self.inner = inner
        self.reads = 0

    def read(self, name: str, *args: Any) -> Stored | None:
        self.reads += 1
        return self.inner.read(name, *args)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)


def endpoint_app(
    store: Any, fake: FakeKakao, cache: FreshTokenCache, clock: FakeClock | None = None
) -> flask.Flask:
    """handle_token on its own, over a store the test hands in (and a clock, if given)."""
    settings = Settings.from_env(settings_env(fake))
    service = build_service(settings, session=new_session(), store=store, clock=clock)
    app = flask.Flask(__name__)
    app.add_url_rule(
        "/", "token", lambda: handle_token(flask.request, lambda: service, cache), methods=["GET"]
    )
    return app


def test_storage_failing_is_503_json(live_kakao: FakeKakao) -> None:
    """The store failing: 503 {error: storage_unavailable, message, login_url}, no trace."""
    app = endpoint_app(BrokenStore(), live_kakao, FreshTokenCache())

    response = app.test_client().get("/")

    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "storage_unavailable"
    assert "TOKEN_BUCKET" in body["message"] and body["login_url"] == REDIRECT_URI
    assert "Traceback" not in response.get_data(as_text=True)


def test_cache_spares_storage_reads_of_a_fresh_token(live_kakao: FakeKakao, tmp_path: Path) -> None:
    """Many GETs of a token with hours left: one storage read, the same token every time."""
    inner = FileTokenStore(tmp_path)
    log_in(live_kakao, inner, TOKEN_DIR=str(tmp_path))
    store = CountingStore(inner)
    client = endpoint_app(store, live_kakao, FreshTokenCache()).test_client()

    bodies = [client.get("/?min_valid=3600").get_json() for _ in range(20)]

    assert store.reads == 1
    assert len({body["access_token"] for body in bodies}) == 1


def test_cache_keeps_no_token_that_could_fall_below_min_valid(
    live_kakao: FakeKakao, tmp_path: Path
) -> None:
    """A token with less than the largest min_valid (plus the ttl) left is read every time."""
    inner = FileTokenStore(tmp_path)
    log_in(live_kakao, inner, TOKEN_DIR=str(tmp_path))
    expire_in(inner, 2000)
    store = CountingStore(inner)
    client = endpoint_app(store, live_kakao, FreshTokenCache()).test_client()

    for _ in range(3):
        assert client.get("/?min_valid=60").status_code == 200

    assert store.reads == 3
    assert live_kakao.state.refresh_calls() == 0


def test_cache_entry_expires(live_kakao: FakeKakao, tmp_path: Path) -> None:
    """A cached token is served for ttl seconds at most: a new login elsewhere shows after."""
    inner = FileTokenStore(tmp_path)
    log_in(live_kakao, inner, TOKEN_DIR=str(tmp_path))
    store = CountingStore(inner)
    clock = FakeClock(time.time())
    client = endpoint_app(store, live_kakao, FreshTokenCache(ttl_seconds=30), clock).test_client()

    client.get("/")
    clock.advance(29)
    client.get("/")
    clock.advance(1)
    client.get("/")

    assert store.reads == 2


def test_other_methods_are_405(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, tmp_path: Path
) -> None:
    """POST and friends: 405 with Allow: GET, JSON with the login URL like every refusal."""
    client = token_client(monkeypatch, live_kakao, TOKEN_DIR=str(tmp_path))

    for method in ("post", "put", "delete"):
        response = getattr(client, method)("/")
        assert response.status_code == 405
        assert response.headers["Allow"] == "GET"
        assert response.get_json()["error"] == "method_not_allowed"
        assert response.get_json()["login_url"] == REDIRECT_URI


def test_broken_configuration_is_json_not_a_trace(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao
) -> None:
    """No KAKAO_REST_API_KEY: 500 JSON naming it, never a stack trace."""
    app = function_app(
        monkeypatch, "kakao_token", {**settings_env(live_kakao), "KAKAO_REST_API_KEY": None}
    )

    response = app.test_client().get("/")

    assert response.status_code == 500
    body = response.get_json()
    assert body["error"] == "not_configured" and "KAKAO_REST_API_KEY" in body["message"]


def test_two_processes_near_expiry_make_one_kakao_call(live_kakao: FakeKakao, bucket: str) -> None:
    """40 concurrent callers on two function processes, token near expiry: one refresh; no
    secret in any body or log line."""
    store = GcsTokenStore(bucket)
    document = log_in(live_kakao, store, TOKEN_BUCKET=bucket)
    expire_in(store, 100)
    env = settings_env(live_kakao, TOKEN_BUCKET=bucket)

    with (
        FunctionServer("kakao_token", env, ROOT) as one,
        FunctionServer("kakao_token", env, ROOT) as two,
    ):
        urls = [one.url, two.url] * 20
        with ThreadPoolExecutor(max_workers=40) as pool:
            responses = list(pool.map(lambda url: requests.get(url + "/", timeout=60), urls))
        logs = one.logs() + two.logs()

    assert {r.status_code for r in responses} == {200}
    served = {r.json()["access_token"] for r in responses}
    stored = json.loads(store.read(NAME).data)  # type: ignore[union-attr]
    assert served == {stored["access_token"]}
    assert live_kakao.state.refresh_calls() == 1
    everything = logs + "".join(r.text for r in responses)
    for secret in [*secrets_of(document, live_kakao), stored["refresh_token"]]:
        assert secret not in everything
    assert stored["access_token"] not in logs


def documented_errors(language: str = "en") -> set[tuple[int, str]]:
    """The (status, error) rows of docs/{language}/token-endpoint.md's error table."""
    text = (ROOT / "docs" / language / "token-endpoint.md").read_text()
    table = text[text.index("<!-- error-table") :].split("\n\n")[0]
    rows = re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", table, re.MULTILINE)
    return {(int(status), error) for status, error in rows}


@pytest.mark.parametrize(
    "case",
    ["405", "400", "404", "401", "429", "502-html", "503-koe003", "503-storage", "500-config"],
)
def test_every_refusal_has_one_shape_and_is_documented(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, tmp_path: Path, case: str
) -> None:
    """Each refusal: JSON {error, message, code, login_url}, its (status, error) a row of the
    table in docs/en/token-endpoint.md, and Retry-After on every answer worth retrying (429,
    502, 503, 504)."""
    store = FileTokenStore(tmp_path)
    env = {"TOKEN_DIR": str(tmp_path)}
    if case not in ("404", "500-config"):
        log_in(live_kakao, store, **env)
    if case in ("401", "429", "502-html", "503-koe003"):
        expire_in(store, 100)
    faults = {"429": ("KOE237",), "502-html": ("html",) * 3, "503-koe003": ("KOE003",) * 3}
    live_kakao.state.inject("/oauth/token", *faults.get(case, ()))
    if case == "401":
        live_kakao.state.refresh_tokens.clear()
    if case == "503-storage":
        client = endpoint_app(BrokenStore(), live_kakao, FreshTokenCache()).test_client()
    elif case == "500-config":
        client = function_app(
            monkeypatch, "kakao_token", {**settings_env(live_kakao), "KAKAO_REST_API_KEY": None}
        ).test_client()
    else:
        client = token_client(monkeypatch, live_kakao, **env)

    response = (
        client.post("/")
        if case == "405"
        else client.get("/?min_valid=abc" if case == "400" else "/")
    )

    body = response.get_json()
    assert response.status_code == int(case[:3])
    assert set(body) == {"error", "message", "code", "login_url"}
    assert (response.status_code, body["error"]) in documented_errors()
    retryable = response.status_code in (429, 502, 503, 504)
    assert ("Retry-After" in response.headers) == retryable
    if retryable:
        assert int(response.headers["Retry-After"]) > 0
