"""Only the owner's login is stored: identity checks, allowlist, and one document per user."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from dev.fake_kakao import FakeKakao
from tests.conftest import function_app, settings_env
from tests.helpers import begin_login, consent, path_and_query

OWNER = 4127000001
STRANGER = 4127000999
SUCCESS = 303  # a stored login redirects to the clean success address

ClientFactory = Callable[..., FlaskClient]


@pytest.fixture
def make_client(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> ClientFactory:
    def make(target: str = "kakao_callback", **overrides: str) -> FlaskClient:
        env = settings_env(fake_kakao, TOKEN_DIR=str(tmp_path), **overrides)
        return function_app(monkeypatch, target, env).test_client()

    return make


def login_as(client: FlaskClient, fake: FakeKakao, user_id: int) -> TestResponse:
    fake.state.user_id = user_id
    callback = consent(begin_login(client).headers["Location"])
    return client.get(path_and_query(callback))


def test_a_stranger_is_refused_and_their_token_revoked(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
) -> None:
    """A user outside ALLOWED_KAKAO_USER_IDS: 403, nothing stored, their new token logged out."""
    client = make_client(ALLOWED_KAKAO_USER_IDS=str(OWNER))

    response = login_as(client, fake_kakao, STRANGER)

    assert response.status_code == 403
    assert str(STRANGER) in response.get_data(as_text=True)
    assert not (tmp_path / "kakao_token.json").exists()
    assert fake_kakao.state.calls["/v1/user/logout"] == 1
    assert fake_kakao.state.calls["/v1/user/unlink"] == 0
    assert all(info.user_id != STRANGER for info in fake_kakao.state.access_tokens.values())


def test_a_stranger_cannot_overwrite_the_owners_token(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
) -> None:
    """The owner logs in; a stranger's later login leaves the owner's document byte for byte."""
    client = make_client(ALLOWED_KAKAO_USER_IDS=f"{OWNER},12")
    assert login_as(client, fake_kakao, OWNER).status_code == 303
    before = (tmp_path / "kakao_token.json").read_bytes()

    assert login_as(client, fake_kakao, STRANGER).status_code == 403

    assert (tmp_path / "kakao_token.json").read_bytes() == before


def test_identity_lookup_failure_with_an_allowlist_fails_closed(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/v2/user/me failing while an allowlist is set: 503 and nothing stored."""
    monkeypatch.setattr("token_logic.kakao.api.BACKOFF_SECONDS", (0.0, 0.0))
    client = make_client(ALLOWED_KAKAO_USER_IDS=str(OWNER))
    fake_kakao.state.inject("/v2/user/me", "500", "500", "500")

    response = login_as(client, fake_kakao, OWNER)

    assert response.status_code == 503
    assert not (tmp_path / "kakao_token.json").exists()


@pytest.mark.parametrize("token_object", ["kakao_token.json", "tokens/{user_id}.json"])
def test_identity_lookup_failure_without_allowlist_fails_closed(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    token_object: str,
) -> None:
    """No allowlist either: a login whose user id cannot be established is never stored (503)."""
    monkeypatch.setattr("token_logic.kakao.api.BACKOFF_SECONDS", (0.0, 0.0))
    client = make_client(TOKEN_OBJECT=token_object)
    fake_kakao.state.inject("/v2/user/me", "500", "500", "500")

    response = login_as(client, fake_kakao, OWNER)

    assert response.status_code == 503
    stored = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert [path for path in stored if not path.name.startswith(".")] == []  # a claim is kept


def test_the_first_login_owns_a_single_document_deployment(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
) -> None:
    """No allowlist: the first user (through the claim link) owns it; another account gets 403
    saying how to hand it over, nothing of the owner's changes, and the stranger's fresh token
    is logged out at Kakao. The owner may log in again."""
    client = make_client()
    assert login_as(client, fake_kakao, OWNER).status_code == SUCCESS
    before = (tmp_path / "kakao_token.json").read_bytes()

    refused = login_as(client, fake_kakao, STRANGER)

    assert refused.status_code == 403
    assert "claim-url" in refused.get_data(as_text=True)
    assert (tmp_path / "kakao_token.json").read_bytes() == before
    assert all(info.user_id != STRANGER for info in fake_kakao.state.access_tokens.values())
    assert login_as(client, fake_kakao, OWNER).status_code == SUCCESS
    again = json.loads((tmp_path / "kakao_token.json").read_text())
    assert again["user_id"] == OWNER and again["access_token"] != json.loads(before)["access_token"]


def test_a_document_without_user_id_is_adopted_only_by_the_user_of_its_token(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
) -> None:
    """A document written without user_id (an older version): Kakao says whose its access token
    is. A stranger is refused (and only their token logged out: the stored login lives on); the
    owner logging in again adopts it."""
    client = make_client()
    assert login_as(client, fake_kakao, OWNER).status_code == SUCCESS
    path = tmp_path / "kakao_token.json"
    legacy = {**json.loads(path.read_text()), "user_id": None}
    path.write_text(json.dumps(legacy))

    assert login_as(client, fake_kakao, STRANGER).status_code == 403
    assert legacy["refresh_token"] in fake_kakao.state.valid_refresh_tokens()
    assert login_as(client, fake_kakao, OWNER).status_code == SUCCESS

    assert json.loads(path.read_text())["user_id"] == OWNER


def test_a_document_whose_owner_cannot_be_told_is_left_alone(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
) -> None:
    """No user_id and an access token Kakao no longer knows: every login is refused with the
    fix named (logout or the allowlist), nothing is revoked and the document is untouched."""
    client = make_client()
    assert login_as(client, fake_kakao, OWNER).status_code == SUCCESS
    path = tmp_path / "kakao_token.json"
    legacy = {**json.loads(path.read_text()), "user_id": None, "access_token": "expired"}
    path.write_text(json.dumps(legacy))
    before = path.read_bytes()

    refused = login_as(client, fake_kakao, OWNER)

    assert refused.status_code == 403
    assert "ALLOWED_KAKAO_USER_IDS" in refused.get_data(as_text=True)
    assert path.read_bytes() == before
    assert legacy["refresh_token"] in fake_kakao.state.valid_refresh_tokens()


def test_the_allowlist_wins_over_first_login_ownership(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
) -> None:
    """With ALLOWED_KAKAO_USER_IDS set, any listed user may replace the single document."""
    client = make_client(ALLOWED_KAKAO_USER_IDS=f"{OWNER},{STRANGER}")
    assert login_as(client, fake_kakao, OWNER).status_code == SUCCESS

    assert login_as(client, fake_kakao, STRANGER).status_code == SUCCESS

    assert json.loads((tmp_path / "kakao_token.json").read_text())["user_id"] == STRANGER


def test_openid_login_takes_the_user_from_the_checked_id_token(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
) -> None:
    """With openid in the scope the ID token's sub is used and /v2/user/me is not called."""
    client = make_client(KAKAO_SCOPE="openid,talk_message", ALLOWED_KAKAO_USER_IDS=str(OWNER))

    response = login_as(client, fake_kakao, OWNER)

    assert response.status_code == 303  # to the done page
    document = json.loads((tmp_path / "kakao_token.json").read_text())
    assert document["user_id"] == OWNER and document["id_token"]
    assert fake_kakao.state.calls["/v2/user/me"] == 0


def test_each_user_gets_their_own_document(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
) -> None:
    """TOKEN_OBJECT=tokens/{user_id}.json keeps one document per allowed user."""
    client = make_client(
        TOKEN_OBJECT="tokens/{user_id}.json", ALLOWED_KAKAO_USER_IDS=f"{OWNER},{STRANGER}"
    )

    login_as(client, fake_kakao, OWNER)
    login_as(client, fake_kakao, STRANGER)

    for user in (OWNER, STRANGER):
        document = json.loads((tmp_path / "tokens" / f"{user}.json").read_text())
        assert document["user_id"] == user


def test_refresh_target_refreshes_every_user_and_isolates_failures(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
) -> None:
    """One dead login does not stop the others; the answer lists each and is non-2xx."""
    env = {"TOKEN_OBJECT": "tokens/{user_id}.json"}
    client = make_client(**env)
    login_as(client, fake_kakao, OWNER)
    login_as(client, fake_kakao, STRANGER)
    for token, info in list(fake_kakao.state.refresh_tokens.items()):
        if info.user_id == STRANGER:
            del fake_kakao.state.refresh_tokens[token]

    response = make_client("kakao_refresh", **env).post("/?force=1")

    assert response.status_code == 401
    statuses = {d["document"]: d["status"] for d in response.get_json()["documents"]}
    assert statuses == {f"tokens/{OWNER}.json": "refreshed", f"tokens/{STRANGER}.json": "failed"}
