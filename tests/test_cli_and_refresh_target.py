"""The command line and the kakao_refresh target, end to end, across real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from dev.fake_kakao import FakeKakao, FakeKakaoState
from tests.conftest import ROOT, function_app, settings_env
from tests.helpers import (
    REDIRECT_URI,
    GcsEmulator,
    backdate,
    complete_login,
    rewrite_stored,
    run_cli,
)
from token_logic.config import Settings
from token_logic.errors import NotTheOwner
from token_logic.network import new_session
from token_logic.storage.files import FileTokenStore
from token_logic.storage.gcs import GcsTokenStore
from token_logic.storage.protocol import TokenStore
from token_logic.wiring import build_service

DAY = 86400


@pytest.fixture
def live_kakao() -> Iterator[FakeKakao]:
    """A fake Kakao on the real clock whose refresh tokens always sit in their last month."""
    state = FakeKakaoState(redirect_uris={REDIRECT_URI}, refresh_lifetime=20 * DAY)
    fake = FakeKakao(state).start()
    yield fake
    fake.stop()


@pytest.fixture(params=["file", "gcs"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[dict[str, str], TokenStore]:
    """The environment naming a store, and that store, for each backend."""
    if request.param == "file":
        return {"TOKEN_DIR": str(tmp_path)}, FileTokenStore(tmp_path)
    gcs: GcsEmulator = request.getfixturevalue("gcs")
    bucket = gcs.new_bucket()
    return {"TOKEN_BUCKET": bucket, "STORAGE_EMULATOR_HOST": gcs.url}, GcsTokenStore(bucket)


def log_in(
    fake: FakeKakao, env: dict[str, str], store: TokenStore, claim: str | None = None
) -> dict[str, Any]:
    service = build_service(
        Settings.from_env(settings_env(fake, **env)), session=new_session(), store=store
    )
    return dict(complete_login(service, claim).fields)


def cli(fake: FakeKakao, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli({"PATH": "/usr/bin:/bin", **settings_env(fake, **env)}, *args)


def test_processes_racing_at_rotation_keep_a_valid_token(
    live_kakao: FakeKakao, where: tuple[dict[str, str], TokenStore]
) -> None:
    """Six processes asking for a token at the rotation moment: one Kakao call, all agree."""
    env, store = where
    log_in(live_kakao, env, store)
    backdate(store, 7200)  # rotation is due and the 1-hour guard has passed

    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "token_logic", "access-token"],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", **settings_env(live_kakao, **env)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [p.communicate(timeout=60) for p in processes]

    assert [p.returncode for p in processes] == [0] * 6, outputs
    stored = json.loads(store.read("kakao_token.json").data)  # type: ignore[union-attr]
    assert {out.strip() for out, _ in outputs} == {stored["access_token"]}
    assert live_kakao.state.refresh_calls() == 1
    assert stored["refresh_token"] in live_kakao.state.valid_refresh_tokens()


def test_status_shows_facts_and_no_secret(
    live_kakao: FakeKakao, where: tuple[dict[str, str], TokenStore]
) -> None:
    """`status` names the user and expiries; no token is printed."""
    env, store = where
    document = log_in(live_kakao, env, store)

    result = cli(live_kakao, env, "status")

    assert result.returncode == 0, result.stderr
    assert str(document["user_id"]) in result.stdout
    assert "days left" in result.stdout and "KST" in result.stdout
    assert document["access_token"] not in result.stdout + result.stderr
    assert document["refresh_token"] not in result.stdout + result.stderr


def test_access_token_prints_a_token_kakao_accepts(live_kakao: FakeKakao, tmp_path: Path) -> None:
    """`access-token` prints exactly one line: a token valid at Kakao."""
    env = {"TOKEN_DIR": str(tmp_path)}
    log_in(live_kakao, env, FileTokenStore(tmp_path))

    result = cli(live_kakao, env, "access-token")

    assert result.returncode == 0
    assert result.stdout.count("\n") == 1
    assert result.stdout.strip() in live_kakao.state.access_tokens


def test_refresh_force_then_summary(live_kakao: FakeKakao, tmp_path: Path) -> None:
    """`refresh --force` refreshes and prints a JSON summary without tokens."""
    env = {"TOKEN_DIR": str(tmp_path)}
    document = log_in(live_kakao, env, FileTokenStore(tmp_path))

    result = cli(live_kakao, env, "refresh", "--force")

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary[0]["status"] == "refreshed"
    assert document["refresh_token"] not in result.stdout
    assert "access_token" not in result.stdout


def test_send_memo_reaches_kakao(live_kakao: FakeKakao, tmp_path: Path) -> None:
    """`send-memo` sends a send-to-me text with the stored token."""
    env = {"TOKEN_DIR": str(tmp_path)}
    log_in(live_kakao, env, FileTokenStore(tmp_path))

    result = cli(live_kakao, env, "send-memo", "안녕하세요 from a test")

    assert result.returncode == 0, result.stderr
    assert live_kakao.state.memos[-1]["text"] == "안녕하세요 from a test"


def test_send_memo_without_consent_names_the_fix(live_kakao: FakeKakao, tmp_path: Path) -> None:
    """-402 (no talk_message consent) exits 1 with one line naming KAKAO_SCOPE."""
    env = {"TOKEN_DIR": str(tmp_path), "KAKAO_SCOPE": ""}
    log_in(live_kakao, env, FileTokenStore(tmp_path))

    result = cli(live_kakao, env, "send-memo", "hi")

    assert result.returncode == 1
    assert "talk_message" in result.stderr and "-402" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args", [[], ["bogus"], ["send-memo", "x" * 201], ["--user", "abc", "status"]]
)
def test_bad_usage_exits_2(live_kakao: FakeKakao, tmp_path: Path, args: list[str]) -> None:
    """Unknown commands, missing arguments and a too-long memo exit with 2."""
    assert cli(live_kakao, {"TOKEN_DIR": str(tmp_path)}, *args).returncode == 2


def test_nothing_stored_exits_1_with_a_reason(live_kakao: FakeKakao, tmp_path: Path) -> None:
    """Before any login, `access-token` fails with one line saying to log in."""
    result = cli(live_kakao, {"TOKEN_DIR": str(tmp_path)}, "access-token")

    assert result.returncode == 1
    assert "Log in first" in result.stderr


def test_login_url_is_the_callback(live_kakao: FakeKakao, tmp_path: Path) -> None:
    """`login-url` prints where to open the browser."""
    result = cli(live_kakao, {"TOKEN_DIR": str(tmp_path)}, "login-url")

    assert result.returncode == 0 and result.stdout.strip() == REDIRECT_URI


def test_missing_key_is_a_clear_error(live_kakao: FakeKakao, tmp_path: Path) -> None:
    """No KAKAO_REST_API_KEY: exit 1 naming it."""
    result = cli(live_kakao, {"TOKEN_DIR": str(tmp_path), "KAKAO_REST_API_KEY": ""}, "status")

    assert result.returncode == 1 and "KAKAO_REST_API_KEY" in result.stderr


# -- the kakao_refresh target ----------------------------------------------------------------


def refresh_client(
    monkeypatch: pytest.MonkeyPatch, fake: FakeKakao, env: dict[str, str]
) -> FlaskClient:
    return function_app(monkeypatch, "kakao_refresh", settings_env(fake, **env)).test_client()


def test_refresh_target_refreshes_what_is_due(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, where: tuple[dict[str, str], TokenStore]
) -> None:
    """POST refreshes a due document and answers a token-free JSON summary."""
    env, store = where
    document = log_in(live_kakao, env, store)
    backdate(store, 7200)

    response = refresh_client(monkeypatch, live_kakao, env).post("/")

    assert response.status_code == 200
    body = response.get_json()
    assert body["documents"][0]["status"] == "refreshed"
    assert body["documents"][0]["refresh_token_days_left"] > 19
    text = response.get_data(as_text=True)
    assert document["access_token"] not in text and document["refresh_token"] not in text
    stored = json.loads(store.read("kakao_token.json").data)  # type: ignore[union-attr]
    assert stored["refresh_token"] in live_kakao.state.valid_refresh_tokens()


def test_refresh_target_skips_fresh_tokens(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, tmp_path: Path
) -> None:
    """A fresh document is skipped; ?force=1 refreshes it anyway."""
    env = {"TOKEN_DIR": str(tmp_path)}
    log_in(live_kakao, env, FileTokenStore(tmp_path))
    client = refresh_client(monkeypatch, live_kakao, env)

    assert client.post("/").get_json()["documents"][0]["status"] == "skipped"
    assert client.post("/?force=1").get_json()["documents"][0]["status"] == "refreshed"


def test_refresh_target_only_accepts_post(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, tmp_path: Path
) -> None:
    """GET and friends are 405."""
    client = refresh_client(monkeypatch, live_kakao, {"TOKEN_DIR": str(tmp_path)})

    assert client.get("/").status_code == 405


def test_refresh_target_with_nothing_stored(
    monkeypatch: pytest.MonkeyPatch,
    live_kakao: FakeKakao,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Nobody has logged in yet: not an outage. 200 with status "empty" saying where to log in,
    no ERROR line and no alert, every run; Kakao is not called."""
    client = refresh_client(monkeypatch, live_kakao, {"TOKEN_DIR": str(tmp_path)})

    responses = [client.post("/") for _ in range(3)]

    for response in responses:
        body = response.get_json()
        assert response.status_code == 200 and body["status"] == "empty"
        assert REDIRECT_URI in body["message"] and body["total"] == 0
    logged = capfd.readouterr().err
    assert '"severity": "ERROR"' not in logged and '"alert"' not in logged
    assert live_kakao.state.calls["/oauth/token"] == 0


def test_refresh_target_reports_a_dead_login(
    monkeypatch: pytest.MonkeyPatch,
    live_kakao: FakeKakao,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """KOE322: 401 with the code and 'log in again at <url>', logged at ERROR, document kept."""
    env = {"TOKEN_DIR": str(tmp_path)}
    log_in(live_kakao, env, FileTokenStore(tmp_path))
    live_kakao.state.refresh_tokens.clear()
    client = refresh_client(monkeypatch, live_kakao, env)

    response = client.post("/?force=1")

    assert response.status_code == 401
    body = response.get_json()
    assert body["documents"][0]["error_code"] == "KOE322"
    assert body["message"] == f"log in again at {REDIRECT_URI}"
    logs = capfd.readouterr().err
    assert '"severity": "ERROR"' in logs and "KOE322" in logs
    assert json.loads((tmp_path / "kakao_token.json").read_text())["login_error"]


def test_refresh_target_summary_time_is_current(
    monkeypatch: pytest.MonkeyPatch, live_kakao: FakeKakao, tmp_path: Path
) -> None:
    """expires_in_seconds in the summary is about the access token's remaining life."""
    env = {"TOKEN_DIR": str(tmp_path)}
    log_in(live_kakao, env, FileTokenStore(tmp_path))

    item = refresh_client(monkeypatch, live_kakao, env).post("/").get_json()["documents"][0]

    assert abs(item["expires_at"] - time.time() - item["expires_in_seconds"]) < 5


def test_cli_picks_a_user_when_several_are_stored(live_kakao: FakeKakao, tmp_path: Path) -> None:
    """With per-user documents, --user selects one; without it the CLI asks for it."""
    env = {"TOKEN_DIR": str(tmp_path), "TOKEN_OBJECT": "tokens/{user_id}.json"}
    for user in (11, 22):
        live_kakao.state.user_id = user
        log_in(live_kakao, env, FileTokenStore(tmp_path))

    ambiguous = cli(live_kakao, env, "access-token")
    chosen = cli(live_kakao, env, "--user", "22", "access-token")

    assert ambiguous.returncode == 1 and "--user" in ambiguous.stderr
    assert chosen.returncode == 0
    stored = json.loads((tmp_path / "tokens" / "22.json").read_text())
    assert chosen.stdout.strip() == stored["access_token"]


def test_logout_keeps_the_owner_and_a_claim_link_hands_the_deployment_over(
    live_kakao: FakeKakao, tmp_path: Path
) -> None:
    """`logout` logs the token out at Kakao and removes the tokens (exit 0), but the deployment
    stays its owner's: another account is refused until the operator's `claim-url` link (on
    stdout alone) hands it over; a logout of a logged-out deployment changes nothing."""
    env = {"TOKEN_DIR": str(tmp_path)}
    store = FileTokenStore(tmp_path)
    owner = log_in(live_kakao, env, store)

    result = cli(live_kakao, env, "logout")

    assert result.returncode == 0, result.stderr
    assert str(owner["user_id"]) in result.stdout and "claim-url" in result.stdout
    left = json.loads((tmp_path / "kakao_token.json").read_text())
    assert left["user_id"] == owner["user_id"] and not left["access_token"]
    assert left["login_error"]["error_code"] == "logged_out"
    assert owner["access_token"] not in live_kakao.state.access_tokens  # logged out at Kakao
    assert owner["refresh_token"] not in live_kakao.state.refresh_tokens
    live_kakao.state.user_id = 4127000999
    with pytest.raises(NotTheOwner):
        log_in(live_kakao, env, store)
    no_deploy_env = tmp_path / "empty.env"  # never the checkout's own deploy.env
    no_deploy_env.write_text("")
    link = cli(live_kakao, env, "claim-url", "--env-file", str(no_deploy_env))
    assert link.returncode == 0 and link.stdout.count("\n") == 1
    secret = link.stdout.strip().split("#", 1)[1]
    assert link.stdout.startswith(REDIRECT_URI.rstrip("/") + "/claim#")
    assert secret not in link.stderr
    assert log_in(live_kakao, env, store, claim=secret)["user_id"] == 4127000999
    assert cli(live_kakao, env, "logout").returncode == 0
    assert cli(live_kakao, env, "logout").returncode == 0


def test_logout_removes_the_tokens_even_when_kakao_is_down(
    live_kakao: FakeKakao, tmp_path: Path
) -> None:
    """Kakao's logout failing does not keep the tokens: the owner asked for them to go."""
    env = {"TOKEN_DIR": str(tmp_path)}
    log_in(live_kakao, env, FileTokenStore(tmp_path))
    live_kakao.state.inject("/v1/user/logout", "500", "500", "500")

    result = cli(live_kakao, env, "logout")

    assert result.returncode == 0, result.stderr
    left = json.loads((tmp_path / "kakao_token.json").read_text())
    assert not left["access_token"] and not left["refresh_token"]


def test_logout_on_a_versioned_bucket_leaves_no_generation(
    live_kakao: FakeKakao, gcs: GcsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`logout` on Cloud Storage with versioning: every older generation of the document (each
    with a refresh token) is gone; what stays is the owner's marker, holding no token."""
    from tests.storage.test_storage_hygiene import versioned_bucket

    with versioned_bucket(gcs, monkeypatch) as versioned:
        env = {"TOKEN_BUCKET": versioned.name, "STORAGE_EMULATOR_HOST": versioned.relay.url}
        log_in(live_kakao, env, GcsTokenStore(versioned.name))
        assert cli(live_kakao, env, "refresh", "--force").returncode == 0
        assert [g.document["refresh_token"] != "" for g in versioned.generations()] == [True] * 3

        result = cli(live_kakao, env, "logout")

        assert result.returncode == 0, result.stderr
        (left,) = versioned.generations()  # only the owner's token-less marker
        assert left.live and not left.document["refresh_token"]


def test_get_access_token_itself(live_kakao: FakeKakao, tmp_path: Path) -> None:
    """The library call on the local path: the stored token while fresh, a refreshed one (and
    stored) when it expires within the leeway, NoTokenStored before any login."""
    from token_logic import NoTokenStored, get_access_token

    env = settings_env(live_kakao, TOKEN_DIR=str(tmp_path))
    with pytest.raises(NoTokenStored):
        get_access_token(environ=env)
    stored = log_in(live_kakao, {"TOKEN_DIR": str(tmp_path)}, FileTokenStore(tmp_path))

    assert get_access_token(environ=env) == stored["access_token"]
    assert live_kakao.state.refresh_calls() == 0
    backdate(FileTokenStore(tmp_path), 300)  # not "just refreshed" (150 s, tokens.py)
    fresh = get_access_token(environ=env, leeway_seconds=7 * 3600)  # longer than it lives
    assert fresh != stored["access_token"] and fresh in live_kakao.state.access_tokens
    on_disk = json.loads((tmp_path / "kakao_token.json").read_text())
    assert on_disk["access_token"] == fresh
    assert on_disk["refresh_token"] in live_kakao.state.valid_refresh_tokens()


def test_a_memo_links_somewhere_neutral_never_to_the_login(
    live_kakao: FakeKakao, tmp_path: Path
) -> None:
    """`send-memo`'s link is KAKAO_MEMO_LINK, by default the callback's done page (a domain the
    console can register), never the login URL: tapping a memo must not start a Kakao login."""
    env = {"TOKEN_DIR": str(tmp_path)}
    log_in(live_kakao, env, FileTokenStore(tmp_path))

    default = cli(live_kakao, env, "send-memo", "기본 링크")
    chosen = cli(
        live_kakao, {**env, "KAKAO_MEMO_LINK": "https://example.com/bot"}, "send-memo", "x"
    )

    assert default.returncode == chosen.returncode == 0, default.stderr + chosen.stderr
    links = [memo["link"]["web_url"] for memo in live_kakao.state.memos]
    assert links == [REDIRECT_URI + "?login=done", "https://example.com/bot"]
    assert REDIRECT_URI not in links


def test_logout_with_an_expired_access_token_still_ends_the_refresh_token(
    live_kakao: FakeKakao, tmp_path: Path
) -> None:
    """Kakao's logout needs a live access token to end the refresh token: an expired one is
    refreshed first, so a copied refresh token dies with the logout."""
    env = {"TOKEN_DIR": str(tmp_path)}
    store = FileTokenStore(tmp_path)
    owner = log_in(live_kakao, env, store)
    rewrite_stored(store, lambda d: d.with_fields(expires_at=int(time.time()) - 10))
    live_kakao.state.access_tokens.pop(owner["access_token"], None)  # expired at Kakao too

    result = cli(live_kakao, env, "logout")

    assert result.returncode == 0, result.stderr
    assert not [
        t for t, i in live_kakao.state.refresh_tokens.items() if i.user_id == owner["user_id"]
    ]


@pytest.mark.parametrize(
    ("language", "nothing", "dead"),
    [
        ("ko_KR.UTF-8", "저장된 토큰이 없습니다", "다시 로그인"),
        ("C", "no token stored yet", "Log in again"),
    ],
)
def test_the_store_command_line_speaks_the_readers_language(
    live_kakao: FakeKakao, tmp_path: Path, language: str, nothing: str, dead: str
) -> None:
    """In a checkout with the store, `python -m token_logic` says what it says in Korean for a
    Korean locale and in English otherwise: nothing stored, and a dead login (KOE322)."""
    env = {"TOKEN_DIR": str(tmp_path), "LANG": language}

    empty = cli(live_kakao, env, "status")
    log_in(live_kakao, {"TOKEN_DIR": str(tmp_path)}, FileTokenStore(tmp_path))
    live_kakao.state.refresh_tokens.clear()  # the login died at Kakao
    refused = cli(live_kakao, env, "refresh", "--force")

    assert empty.returncode == 1 and nothing in empty.stdout
    assert refused.returncode == 1 and dead in refused.stderr, refused.stderr
