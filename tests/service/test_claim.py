"""Nobody takes over a deployment: the first owner of a single document needs a claim link, a
link works once and within a day, logout keeps the owner, and handing over is explicit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import flask
import pytest
from flask.testing import FlaskClient

from dev.fake_kakao import FakeKakao
from tests.conftest import ROOT, function_app, service_over, settings_env
from tests.helpers import (
    REDIRECT_URI,
    FakeClock,
    claim_form,
    complete_login,
    consent,
    path_and_query,
    run_cli,
)
from token_logic.budget import Deadline
from token_logic.config import Settings
from token_logic.errors import ClaimRequired, NotTheOwner
from token_logic.logins import SENDER
from token_logic.network import new_session
from token_logic.service.claim import CLAIM_LIFETIME_SECONDS, claim_name, valid_claim
from token_logic.service.token_service import TokenService
from token_logic.storage.files import FileTokenStore
from token_logic.wiring import build_service

OWNER, STRANGER = 4127000001, 4127000666


def service_for(
    fake: FakeKakao, tmp_path: Path, clock: FakeClock | None = None, **env: str
) -> TokenService:
    return service_over(FileTokenStore(tmp_path), fake, clock, TOKEN_DIR=str(tmp_path), **env)


def login_as(service: TokenService, fake: FakeKakao, user_id: int, claim: str = "") -> Any:
    fake.state.user_id = user_id
    return complete_login(service, claim)


def stored(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "kakao_token.json").read_text())
    return data


def live_tokens_of(fake: FakeKakao, user_id: int) -> int:
    return sum(1 for info in fake.state.refresh_tokens.values() if info.user_id == user_id)


def alerts(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    return [line for line in lines if line.get("alert") == "ownership"]


def test_a_stranger_before_the_first_login_is_refused_logged_out_and_alerted(
    fake_kakao: FakeKakao, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whoever finds the callback URL first does not own the deployment: no claim, no store;
    their fresh token is logged out at Kakao and an alert line says so."""
    service = service_for(fake_kakao, tmp_path)

    with pytest.raises(ClaimRequired) as refused:
        login_as(service, fake_kakao, STRANGER)

    assert not refused.value.link_given
    assert not (tmp_path / "kakao_token.json").exists()
    assert live_tokens_of(fake_kakao, STRANGER) == 0
    assert [a["user_id"] for a in alerts(capsys)] == [STRANGER]


def test_a_claim_link_makes_its_login_the_owner_once(
    fake_kakao: FakeKakao, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator's link: its login owns the deployment (alert line), and the link is spent:
    a stranger holding the same link afterwards is refused; the owner logs in again freely."""
    service = service_for(fake_kakao, tmp_path)
    claim = service.issue_claim()

    owner = login_as(service, fake_kakao, OWNER, claim.secret)
    with pytest.raises(NotTheOwner):
        login_as(service, fake_kakao, STRANGER, claim.secret)
    again = login_as(service, fake_kakao, OWNER)

    assert owner.user_id == again.user_id == OWNER == stored(tmp_path)["user_id"]
    assert not (tmp_path / claim_name("kakao_token.json")).exists()
    logged = alerts(capsys)
    assert "deployment claimed with a claim link" in [a["message"] for a in logged]
    assert claim.secret not in json.dumps(logged) and claim.secret not in repr(claim)
    assert claim.secret not in (tmp_path / "kakao_token.json").read_text()


def test_a_claim_link_expires_within_a_day_and_only_the_newest_works(
    fake_kakao: FakeKakao, tmp_path: Path, clock: FakeClock
) -> None:
    """A link older than a day, or replaced by a newer one, is refused."""
    service = service_for(fake_kakao, tmp_path, clock)
    old = service.issue_claim()
    newer = service.issue_claim()

    with pytest.raises(ClaimRequired) as replaced:
        login_as(service, fake_kakao, OWNER, old.secret)
    clock.advance(CLAIM_LIFETIME_SECONDS + 1)
    with pytest.raises(ClaimRequired) as expired:
        login_as(service, fake_kakao, OWNER, newer.secret)

    assert replaced.value.link_given and expired.value.link_given
    assert newer.expires_at - old.expires_at >= 0 and not (tmp_path / "kakao_token.json").exists()


def test_logout_keeps_the_owner_and_a_claim_hands_the_deployment_over(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """After logout a stranger is still refused (their token logged out); the owner could log in
    again; a claim link hands it over, and the previous owner's tokens end at Kakao too."""
    service = service_for(fake_kakao, tmp_path)
    login_as(service, fake_kakao, OWNER, service.issue_claim().secret)
    service.logout()

    with pytest.raises(NotTheOwner):
        login_as(service, fake_kakao, STRANGER)
    login_as(service, fake_kakao, OWNER)
    handed = login_as(service, fake_kakao, STRANGER, service.issue_claim().secret)

    assert handed.user_id == STRANGER == stored(tmp_path)["user_id"]
    assert live_tokens_of(fake_kakao, OWNER) == 0


@pytest.mark.parametrize(
    "env",
    [
        {"TOKEN_OBJECT": "tokens/{user_id}.json", "ALLOWED_KAKAO_USER_IDS": str(STRANGER)},
        {"ALLOWED_KAKAO_USER_IDS": str(STRANGER)},
        {"KAKAO_DEMO": "1"},
        {"KAKAO_DEMO": "1", "TOKEN_OBJECT": "tokens/{user_id}.json"},
    ],
)
def test_allowlisted_and_demo_deployments_need_no_claim(
    fake_kakao: FakeKakao, tmp_path: Path, env: dict[str, str]
) -> None:
    """An allowlist (one document or per-user), and the bundled demo: no link is needed."""
    # clock named: a type checker would otherwise take **env's strings for it
    service = service_for(fake_kakao, tmp_path, clock=None, **env)

    document = login_as(service, fake_kakao, STRANGER, "")

    assert document.user_id == STRANGER


PER_USER = {"TOKEN_OBJECT": "tokens/{user_id}.json"}


def test_per_user_without_an_allowlist_admits_a_new_account_only_by_a_claim_link(
    fake_kakao: FakeKakao, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One document per user, no allowlist: a stranger's login through the public callback is
    refused (nothing stored, its fresh token logged out, an alert); a claim link admits one
    account, once; an admitted account logs in again with no link."""
    service = service_for(fake_kakao, tmp_path, clock=None, **PER_USER)

    with pytest.raises(ClaimRequired):
        login_as(service, fake_kakao, STRANGER, "")
    link = service.issue_claim().secret
    admitted = login_as(service, fake_kakao, OWNER, link)
    with pytest.raises(ClaimRequired):
        login_as(service, fake_kakao, STRANGER, link)  # the link was spent
    again = login_as(service, fake_kakao, OWNER, "")

    assert not (tmp_path / f"tokens/{STRANGER}.json").exists()
    assert live_tokens_of(fake_kakao, STRANGER) == 0
    assert admitted.user_id == again.user_id == OWNER
    assert (tmp_path / f"tokens/{OWNER}.json").exists()
    messages = [a["message"] for a in alerts(capsys)]
    assert messages.count("login refused: no claim link for a new user") == 2
    assert messages.count("a new account admitted with a claim link") == 1


def test_claim_url_for_per_user_documents_admits_one_account(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """``claim-url`` with one document per user and no allowlist prints a link, saying it
    admits one account, stored beside the documents."""
    no_deploy_env = tmp_path / "empty.env"  # never the checkout's own deploy.env
    no_deploy_env.write_text("")
    result = run_cli(
        {"PATH": "/usr/bin:/bin", **settings_env(fake_kakao, TOKEN_DIR=str(tmp_path), **PER_USER)},
        "claim-url",
        "--env-file",
        str(no_deploy_env),
    )

    assert result.returncode == 0 and "/claim#" in result.stdout
    assert "admits one Kakao account" in result.stderr
    assert (tmp_path / "tokens" / ".kakao-token-claim.json").exists()


def claim_client(monkeypatch: pytest.MonkeyPatch, fake: FakeKakao, tmp_path: Path) -> FlaskClient:
    env = settings_env(fake, TOKEN_DIR=str(tmp_path))
    app: flask.Flask = function_app(monkeypatch, "kakao_callback", env)
    return app.test_client()


def test_the_claim_page_keeps_the_secret_out_of_the_url_and_allows_only_its_script(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """GET /claim: a page whose one script (allowed by its hash) posts the fragment; no inline
    script else; no-store and the other headers as usual."""
    client = claim_client(monkeypatch, fake_kakao, tmp_path)

    page = client.get("/claim")

    policy = page.headers["Content-Security-Policy"]
    assert page.status_code == 200 and "<form" in page.get_data(as_text=True)
    assert "script-src 'sha256-" in policy and "unsafe-inline" not in policy
    assert "form-action" not in policy  # it would block Kakao's redirects across its hosts
    assert page.headers["Cache-Control"] == "no-store"


def test_a_posted_claim_starts_a_login_that_owns_the_deployment(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """POST /claim with the link's secret: 303 to Kakao, and that login is stored as the
    owner's; the secret is in no response header but the HttpOnly login cookie."""
    client = claim_client(monkeypatch, fake_kakao, tmp_path)
    claim = service_for(fake_kakao, tmp_path).issue_claim().secret

    start = client.post("/claim", data=claim_form(claim))
    finished = client.get(path_and_query(consent(start.headers["Location"])))

    assert start.status_code == 303 and start.headers["Location"].startswith(fake_kakao.url)
    assert claim not in start.headers["Location"]
    assert finished.status_code == 303 and stored(tmp_path)["user_id"] == fake_kakao.state.user_id


@pytest.mark.parametrize("claim", ["", "not-the-secret", "x" * 5000])
def test_a_wrong_claim_is_refused_before_kakao(
    monkeypatch: pytest.MonkeyPatch,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    claim: str,
) -> None:
    """A wrong, empty or huge claim: 403 page saying how to get a link, no login cookie, no
    alert (anyone can post junk), and Kakao never asked."""
    service_for(fake_kakao, tmp_path).issue_claim()
    client = claim_client(monkeypatch, fake_kakao, tmp_path)

    refused = client.post("/claim", data=claim_form(claim))

    assert refused.status_code == 403 and "claim-url" in refused.get_data(as_text=True)
    assert "logged out" not in refused.get_data(as_text=True)
    assert not [c for c in refused.headers.getlist("Set-Cookie") if "kakao_login_" in c]
    assert fake_kakao.state.calls["/oauth/authorize"] == 0
    assert not alerts(capsys)  # junk posts must not flood the alert mail


def test_the_stranger_sees_how_to_get_a_claim_link(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """The callback URL opened directly before anyone owns the deployment: a 403 page in
    Korean and English naming claim-url and deploy.sh."""
    client = claim_client(monkeypatch, fake_kakao, tmp_path)
    start = client.get("/")

    page = client.get(path_and_query(consent(start.headers["Location"])))

    text = page.get_data(as_text=True)
    assert page.status_code == 403
    assert "소유권 링크" in text and "claim-url" in text and "deploy.sh" in text
    assert REDIRECT_URI in text or "claim" in text


def test_a_hand_over_whose_write_landed_though_it_seemed_to_fail_still_alerts(
    fake_kakao: FakeKakao, tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """The claim is spent and the new owner's write lands, but its answer is lost: the login
    is the owner's all the same, the hand-over is alerted, the previous owner's tokens end."""
    from tests.test_deadlines import SlowFailingStore

    inner = FileTokenStore(tmp_path)
    first = service_for(fake_kakao, tmp_path)
    login_as(first, fake_kakao, OWNER, first.issue_claim().secret)
    capsys.readouterr()
    settings = Settings.from_env(settings_env(fake_kakao, TOKEN_DIR=str(tmp_path)))
    flaky = build_service(
        settings,
        session=new_session(),
        store=SlowFailingStore(inner, clock, seconds=1, land=True),  # pyright: ignore[reportArgumentType]
        clock=clock,
    )

    handed = login_as(flaky, fake_kakao, STRANGER, flaky.issue_claim().secret)

    assert handed.user_id == STRANGER == stored(tmp_path)["user_id"]
    assert [a["message"] for a in alerts(capsys)] == ["deployment claimed with a claim link"]
    assert live_tokens_of(fake_kakao, OWNER) == 0


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"TOKEN_OBJECT": "tokens/{user_id}.json", "ALLOWED_KAKAO_USER_IDS": str(OWNER)},
            "no claim link is needed",
        ),
        ({"ALLOWED_KAKAO_USER_IDS": str(OWNER)}, "no claim link is needed"),
        ({"KAKAO_REDIRECT_URI": ""}, "KAKAO_REDIRECT_URI is not set"),
    ],
)
def test_claim_url_refuses_where_a_link_would_mislead(
    fake_kakao: FakeKakao, tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    """No link for allowlisted deployments (nothing would use it), nor without the callback
    URL to build it on; nothing is written."""
    result = run_cli(
        {"PATH": "/usr/bin:/bin", **settings_env(fake_kakao, TOKEN_DIR=str(tmp_path), **env)},
        "claim-url",
    )

    assert result.returncode == 1 and expected in result.stderr and result.stdout == ""
    assert not list(tmp_path.glob(".kakao-token-claim*"))


def test_deploy_shs_claim_comes_from_token_logic_on_the_standard_library_alone(
    tmp_path: Path,
) -> None:
    """``python3 -P -S -m token_logic.service.claim TOKEN_OBJECT``, as deploy.sh runs it (no
    site-packages, nothing from the current directory), prints where the claim lives, a fresh
    secret and the record: stored there, valid_claim takes that secret for a day, and only it;
    the secret is nowhere but stdout."""
    made = subprocess.run(
        [sys.executable, "-P", "-S", "-m", "token_logic.service.claim", "tokens/kakao.json"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    name, secret, record, document = made.stdout.splitlines()
    assert name == claim_name("tokens/kakao.json") == "tokens/.kakao-token-claim.json"
    assert document == "tokens/kakao.json"
    assert len(secret) == 43 and made.stderr == ""
    store = FileTokenStore(tmp_path / "store")
    store.overwrite(name, record.encode())
    now = json.loads(record)["created_at"]
    deadline = Deadline.after(10, FakeClock(now))
    assert valid_claim(store, name, secret, now + CLAIM_LIFETIME_SECONDS - 1, deadline)
    assert not valid_claim(store, name, secret, now + CLAIM_LIFETIME_SECONDS, deadline)
    other = secret[:-1] + ("B" if secret.endswith("A") else "A")
    assert not valid_claim(store, name, other, now, deadline)


def test_the_senders_claim_from_the_standard_library_lives_apart_from_the_owners(
    tmp_path: Path,
) -> None:
    """With ``--sender`` the claim module names the sender's claim and document, beside the
    owner's and never theirs."""
    made = subprocess.run(
        [sys.executable, "-P", "-S", "-m", "token_logic.service.claim", "t/kakao.json", "--sender"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    name, secret, _, document = made.stdout.splitlines()
    assert name == claim_name("t/kakao.json", SENDER) == "t/.kakao-token-sender-claim.json"
    assert document == "t/kakao.sender.json" and len(secret) == 43
