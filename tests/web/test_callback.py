"""The redirect-URI function through functions-framework's app: every path a browser can take."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import Cookie

from dev.fake_kakao import FakeKakao
from tests.conftest import ROOT, EnvFor, function_app
from tests.helpers import (
    REDIRECT_URI,
    GcsEmulator,
    begin_login,
    claim_for,
    claim_form,
    consent,
    path_and_query,
    query_of,
)

ClientFactory = Callable[..., FlaskClient]


@pytest.fixture
def make_client(monkeypatch: pytest.MonkeyPatch, env_for: EnvFor, tmp_path: Path) -> ClientFactory:
    def make(target: str = "kakao_callback", **overrides: str) -> FlaskClient:
        env = env_for(**{"TOKEN_DIR": str(tmp_path), **overrides})
        return function_app(monkeypatch, target, env).test_client()

    return make


def start_and_consent(client: FlaskClient, *, approve: bool = True) -> str:
    start = begin_login(client)
    assert start.status_code in (302, 303)
    return path_and_query(consent(start.headers["Location"], approve=approve))


def stored(tmp_path: Path, name: str = "kakao_token.json") -> dict[str, Any] | None:
    path = tmp_path / name
    return json.loads(path.read_text()) if path.exists() else None


def cookies_in(client: FlaskClient) -> list[Cookie]:
    """Every cookie the client keeps (werkzeug lists them only in a private attribute, typed
    None for a client made with cookies off, which these tests never make)."""
    assert client._cookies is not None
    return list(client._cookies.values())


def test_opening_the_url_redirects_to_kakao_with_state_and_pkce(
    make_client: ClientFactory, fake_kakao: FakeKakao
) -> None:
    """GET / answers 302 to Kakao's authorize URL with every required parameter."""
    response = make_client().get("/")

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(fake_kakao.url + "/oauth/authorize?")
    query = query_of(location)
    assert query["client_id"] == fake_kakao.state.client_id
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["response_type"] == "code"
    assert query["scope"] == "talk_message"
    assert len(query["state"]) >= 43  # 256 bits, base64url
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert response.headers["Cache-Control"] == "no-store"


def test_login_cookie_is_httponly_lax_scoped_and_short_lived(make_client: ClientFactory) -> None:
    """The state cookie is HttpOnly, SameSite=Lax, expires in 10 minutes, Secure on localhost."""
    cookie = make_client(KAKAO_REDIRECT_URI="http://localhost:8080/").get("/").headers["Set-Cookie"]

    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Max-Age=600" in cookie
    assert "Path=/" in cookie
    assert "Secure" in cookie  # browsers treat http://localhost as a secure context


def test_login_cookie_is_not_secure_on_plain_http_elsewhere(
    make_client: ClientFactory, fake_kakao: FakeKakao
) -> None:
    """On plain http to another host a Secure cookie would be dropped, so none is set."""
    client = make_client(KAKAO_REDIRECT_URI="http://kakao-dev.example/callback")

    assert "Secure" not in client.get("/").headers["Set-Cookie"]


def test_login_cookie_is_secure_when_the_redirect_uri_is_https(make_client: ClientFactory) -> None:
    """An https redirect URI makes the cookie Secure and scopes it to the function's path."""
    client = make_client(KAKAO_REDIRECT_URI="https://example.run.app/kakao_callback")
    cookie = client.get("/").headers["Set-Cookie"]

    assert "Secure" in cookie
    assert "Path=/kakao_callback" in cookie


def test_pkce_can_be_turned_off(make_client: ClientFactory) -> None:
    """KAKAO_PKCE=0 sends no code_challenge."""
    location = make_client(KAKAO_PKCE="0").get("/").headers["Location"]

    assert "code_challenge" not in query_of(location)


def test_full_login_stores_a_complete_document(
    make_client: ClientFactory, tmp_path: Path, fake_kakao: FakeKakao
) -> None:
    """Approving at Kakao stores every Kakao field plus absolute expiries, user id and time."""
    client = make_client()
    callback = start_and_consent(client)

    response = client.get(callback)

    assert response.status_code == 303, response.text
    assert response.headers["Location"] == "?login=done"
    document = stored(tmp_path)
    assert document is not None
    assert document["user_id"] == fake_kakao.state.user_id
    assert document["access_token"] in fake_kakao.state.access_tokens
    assert document["refresh_token"] in fake_kakao.state.valid_refresh_tokens()
    for name in ("token_type", "expires_in", "refresh_token_expires_in", "scope"):
        assert name in document
    assert document["expires_at"] == document["updated_at"] + document["expires_in"]
    assert document["refresh_token_expires_at"] == (
        document["updated_at"] + document["refresh_token_expires_in"]
    )
    assert (tmp_path / "kakao_token.json").stat().st_mode & 0o777 == 0o600


def test_success_page_names_the_user_and_hides_every_secret(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    """The success page is bilingual, says who and until when, and has no token or code."""
    client = make_client()
    callback = start_and_consent(client)
    code = query_of(callback)["code"]

    response = client.get(callback, follow_redirects=True)

    assert response.request.url.endswith("/?login=done")
    page = response.get_data(as_text=True)
    document = stored(tmp_path)
    assert document is not None
    assert str(document["user_id"]) in page
    assert "카카오 로그인 완료" in page and "Kakao login complete" in page
    assert "KST" in page
    for secret in (document["access_token"], document["refresh_token"], code, "test-client-secret"):
        assert str(secret) not in page
    assert not [c for c in cookies_in(client) if c.key.startswith("kakao_login_")]


def test_code_exchange_sends_secret_redirect_uri_and_verifier(
    make_client: ClientFactory, fake_kakao: FakeKakao
) -> None:
    """The token request is form-encoded and carries client_secret and the PKCE verifier."""
    client = make_client()
    client.get(start_and_consent(client))

    request = fake_kakao.state.token_requests[-1]
    assert request["grant_type"] == "authorization_code"
    assert request["client_secret"] == "test-client-secret"
    assert request["redirect_uri"] == REDIRECT_URI
    assert len(request["code_verifier"]) >= 43


def test_login_writes_to_the_emulator_bucket(
    make_client: ClientFactory, gcs: GcsEmulator, bucket: str, fake_kakao: FakeKakao
) -> None:
    """With TOKEN_BUCKET the document lands in Cloud Storage as JSON with no-store caching."""
    client = make_client(TOKEN_BUCKET=bucket)

    response = client.get(start_and_consent(client))

    assert response.status_code == 303, response.text
    data = gcs.read_object(bucket, "kakao_token.json")
    assert data is not None
    assert json.loads(data)["user_id"] == fake_kakao.state.user_id
    metadata = gcs.object_metadata(bucket, "kakao_token.json")
    assert metadata["contentType"] == "application/json"
    assert metadata["cacheControl"] == "no-store"


def test_a_second_login_replaces_the_first(make_client: ClientFactory, tmp_path: Path) -> None:
    """Logging in again overwrites the stored document with the newer tokens."""
    client = make_client()
    client.get(start_and_consent(client))
    first = stored(tmp_path)

    client.get(start_and_consent(client))

    second = stored(tmp_path)
    assert first is not None and second is not None
    assert second["access_token"] != first["access_token"]


def test_callback_without_cookie_is_refused_before_kakao(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """A code arriving in a browser that did not start the login is a 400; Kakao never sees it."""
    callback = start_and_consent(make_client())
    other_browser = make_client()

    response = other_browser.get(callback)

    assert response.status_code == 400
    assert "다시" in response.get_data(as_text=True)
    assert fake_kakao.state.calls["/oauth/token"] == 0
    assert stored(tmp_path) is None


def test_callback_with_a_foreign_state_is_refused(
    make_client: ClientFactory, fake_kakao: FakeKakao
) -> None:
    """A state that is not this browser's (tampered or from another login) is a 400."""
    client = make_client()
    callback = start_and_consent(client)
    code = query_of(callback)["code"]

    for state in ("", "x" * 43, "y" * 5000):
        response = client.get("/", query_string={"code": code, "state": state})
        assert response.status_code == 400
    assert fake_kakao.state.calls["/oauth/token"] == 0


def test_replaying_the_callback_shows_the_finished_login_and_changes_nothing(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """The code URL again in the browser that finished it (history, back): 303 to the done
    page, no second exchange (it would be KOE320), the stored token untouched."""
    client = make_client()
    callback = start_and_consent(client)
    assert client.get(callback).status_code == 303
    before = (tmp_path / "kakao_token.json").read_bytes()

    again = client.get(callback)

    assert again.status_code == 303 and again.headers["Location"] == "?login=done"
    assert fake_kakao.state.calls["/oauth/token"] == 1
    assert (tmp_path / "kakao_token.json").read_bytes() == before
    assert "카카오 로그인 완료" in client.get("/?login=done").get_data(as_text=True)


def test_a_fresh_code_with_the_finished_logins_state_is_not_exchanged(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """Back to Kakao's authorize page, which (for a consented user) sends a new code with the
    old state: the login is already done, so nothing is exchanged or stored."""
    client = make_client()
    start = begin_login(client)
    first = path_and_query(consent(start.headers["Location"]))
    client.get(first)
    before = (tmp_path / "kakao_token.json").read_bytes()
    second = path_and_query(consent(start.headers["Location"]))  # Kakao, again, same state

    response = client.get(second)

    assert response.status_code == 303 and response.headers["Location"] == "?login=done"
    assert fake_kakao.state.calls["/oauth/token"] == 1
    assert (tmp_path / "kakao_token.json").read_bytes() == before


def test_the_done_page_survives_a_reload_and_tells_other_browsers_nothing(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    """?login=done shows the success again on reload; another browser gets only a login button."""
    client = make_client()
    client.get(start_and_consent(client))
    user_id = str((stored(tmp_path) or {})["user_id"])

    reloads = [client.get("/?login=done") for _ in range(2)]
    elsewhere = make_client().get("/?login=done")

    for response in reloads:
        assert response.status_code == 200
        assert user_id in response.get_data(as_text=True)
    assert elsewhere.status_code == 200
    page = elsewhere.get_data(as_text=True)
    assert user_id not in page and "완료" not in page and "KST" not in page
    assert f'href="{REDIRECT_URI}"' in page and "로그인" in page


def test_done_cookie_is_httponly_lax_short_lived_and_scoped(
    make_client: ClientFactory, fake_kakao: FakeKakao
) -> None:
    """The success facts travel in a 10-minute HttpOnly, SameSite=Lax cookie on the function's
    path, Secure wherever the state cookie is."""
    fake_kakao.state.redirect_uris.add("https://example.run.app/kakao_callback")

    cookies = _done_cookies(make_client(), secure=False)
    secure = _done_cookies(
        make_client(KAKAO_REDIRECT_URI="https://example.run.app/kakao_callback"), secure=True
    )

    for cookie in (cookies, secure):
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=600" in cookie
    assert "Path=/;" in cookies + ";" and "Secure" not in cookies
    assert "Path=/kakao_callback" in secure and "Secure" in secure


def _done_cookies(client: FlaskClient, *, secure: bool) -> str:
    from token_logic.web.done_cookie import DONE_COOKIE

    base = "https://example.run.app" if secure else "http://localhost"
    claim = claim_for(os.environ)  # as the app reads its settings (function_app)
    start = (
        client.post("/claim", data=claim_form(claim), base_url=base)
        if claim
        else client.get("/", base_url=base)
    )
    callback = consent(start.headers["Location"])
    response = client.get(
        path_and_query(callback),
        base_url="https://example.run.app" if secure else "http://localhost",
    )
    assert response.status_code == 303, response.text
    found = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(DONE_COOKIE)]
    assert len(found) == 1
    return str(found[0])


@pytest.mark.parametrize("value", ["garbage", "e30", "x" * 5000, "eyJ1IjoiPGI-In0"])
def test_a_hand_made_done_cookie_shows_only_the_login_button(
    make_client: ClientFactory, value: str
) -> None:
    """A done cookie that is not ours (bad base64, wrong shape, too long) is ignored."""
    client = make_client()
    client.set_cookie("kakao_done", value)

    page = client.get("/?login=done").get_data(as_text=True)

    assert "완료" not in page and "KST" not in page


def test_starting_a_new_login_forgets_the_last_success(make_client: ClientFactory) -> None:
    """Opening the function URL again clears the done cookie: the next news is the new login."""
    client = make_client()
    client.get(start_and_consent(client))

    start = client.get("/")

    assert any(
        c.startswith("kakao_done=;") and "Max-Age=0" in c
        for c in start.headers.getlist("Set-Cookie")
    )
    assert "완료" not in client.get("/?login=done").get_data(as_text=True)


def test_a_used_code_with_a_live_cookie_is_koe320_page(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """If Kakao says KOE320 (code used/expired) the person is told to start again; nothing lost."""
    client = make_client()
    callback = start_and_consent(client)
    fake_kakao.state.codes.clear()  # the code expired at Kakao

    response = client.get(callback)

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "KOE320" in page and "Start again" in page
    assert query_of(callback)["code"] not in page
    assert stored(tmp_path) is None


def test_cancel_at_consent_is_a_friendly_page(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """error=access_denied: a 403 page saying the login was cancelled; nothing sent or stored."""
    client = make_client()
    callback = start_and_consent(client, approve=False)

    response = client.get(callback)

    assert response.status_code == 403
    assert "취소" in response.get_data(as_text=True)
    assert fake_kakao.state.calls["/oauth/token"] == 0
    assert stored(tmp_path) is None


def test_reflected_error_text_is_escaped(make_client: ClientFactory) -> None:
    """Whatever comes back in ?error= is shown escaped, never as markup."""
    response = make_client().get("/", query_string={"error": "<script>alert(1)</script>"})

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


@pytest.mark.parametrize(
    ("secret", "redirect", "status", "code", "hint"),
    [
        ("wrong-secret", None, 502, "KOE010", "KAKAO_CLIENT_SECRET"),
        (None, "http://function.test/other", 502, "KOE303", "KAKAO_REDIRECT_URI"),
    ],
)
def test_operator_mistakes_name_the_fix(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    secret: str | None,
    redirect: str | None,
    status: int,
    code: str,
    hint: str,
) -> None:
    """KOE010 and KOE303 pages tell the operator which setting to fix."""
    fake_kakao.state.redirect_uris.add("http://function.test/other")
    overrides = {}
    if secret:
        overrides["KAKAO_CLIENT_SECRET"] = secret
    client = make_client(**overrides)
    callback = start_and_consent(client)
    if redirect:  # the deployment's redirect URI changed between authorize and token
        client = _with_cookies_of(client, make_client(KAKAO_REDIRECT_URI=redirect))

    response = client.get(callback)

    assert response.status_code == status
    page = response.get_data(as_text=True)
    assert code in page and hint in page
    assert "wrong-secret" not in page
    assert stored(tmp_path) is None


def _with_cookies_of(source: FlaskClient, target: FlaskClient) -> FlaskClient:
    for cookie in cookies_in(source):
        target.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
    return target


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ("timeout", 504),
        ("500", 502),
        ("html", 502),
        ("reset", 503),
        ("KOE003", 503),
        ("KOE237", 429),
    ],
)
def test_kakao_faults_at_exchange_give_clear_5xx_pages(
    make_client: ClientFactory,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    status: int,
) -> None:
    """Kakao timing out, failing or answering garbage is a clean 4xx/5xx page, never a trace."""
    monkeypatch.setattr("token_logic.kakao.api.BACKOFF_SECONDS", (0.0, 0.0))
    client = make_client(KAKAO_TIMEOUT_SECONDS="1")
    callback = start_and_consent(client)
    fake_kakao.state.inject("/oauth/token", *[fault] * 3)

    response = client.get(callback)

    assert response.status_code == status
    page = response.get_data(as_text=True)
    assert "Traceback" not in page
    assert "Kakao" in page
    assert stored(tmp_path) is None


def test_existing_token_survives_a_failed_login(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """A later login that fails at Kakao leaves the earlier stored document byte for byte."""
    client = make_client()
    client.get(start_and_consent(client))
    before = (tmp_path / "kakao_token.json").read_bytes()
    callback = start_and_consent(client)
    fake_kakao.state.inject("/oauth/token", "KOE320")

    assert client.get(callback).status_code == 400
    assert (tmp_path / "kakao_token.json").read_bytes() == before


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405(make_client: ClientFactory, method: str) -> None:
    """Only GET and HEAD reach the callback."""
    response = make_client().open("/", method=method)

    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_head_with_a_code_does_not_spend_it(
    make_client: ClientFactory, fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """A link previewer's HEAD must not exchange the single-use code."""
    client = make_client()
    callback = start_and_consent(client)

    assert client.head(callback).status_code == 204
    assert fake_kakao.state.calls["/oauth/token"] == 0
    assert client.get(callback).status_code == 303


def test_missing_configuration_is_a_clear_500_page(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the required variables: a 500 page naming every missing one, no trace."""
    client = make_client(KAKAO_REST_API_KEY="", KAKAO_REDIRECT_URI="")

    response = client.get("/")

    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "KAKAO_REST_API_KEY" in page and "KAKAO_REDIRECT_URI" in page
    assert "Traceback" not in page


def test_every_page_carries_the_hardening_headers(make_client: ClientFactory) -> None:
    """no-store, nosniff, a CSP forbidding everything but our style, and no referrer."""
    client = make_client()
    for response in (client.get("/"), client.get("/?error=x"), client.post("/")):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp


_COLD_LOGIN_START = r"""
import json, sys, threading
import functions_framework
import token_logic.wiring as wiring

seen = {}
warm_up = wiring.warm_up_in_background
def noted_warm_up(service):  # what the answer itself loaded, before the warm-up's thread
    seen["answer"] = sorted(m for m in sys.modules if m.startswith("token_logic"))
    warm_up(service)
wiring.warm_up_in_background = noted_warm_up

app = functions_framework.create_app("kakao_callback", "main.py")
answer = app.test_client().get("/")
answer.close()  # as the server closes it once sent: then the warm-up starts
for thread in threading.enumerate():
    if thread is not threading.main_thread():
        thread.join(10)
print(json.dumps({"status": answer.status_code, "location": answer.headers.get("Location", ""),
                  "answer": seen["answer"], "warm": sorted(sys.modules)}))
"""
# What a login start, the first request of most callback instances, never needs: the other
# entry points, the use cases behind a finished login, the webhooks, the pages, the error words.
_NOT_FOR_A_LOGIN_START = {
    "token_logic.web.token_endpoint",
    "token_logic.web.refresh_endpoint",
    "token_logic.web.unlink",
    "token_logic.web.account_status",
    "token_logic.problems",
    "token_logic.service.login",
    "token_logic.service.sender_login",
    "token_logic.service.login_writer",
    "token_logic.service.refresh",
    "token_logic.service.ending",
    "token_logic.service.sweep",
    "token_logic.service.claim",
    "token_logic.service.account_events",
}


def test_a_cold_login_start_loads_only_what_it_uses(tmp_path: Path) -> None:
    """`import main` and one login start (a 302 to Kakao) load none of the other parts of the
    package: each instance pays at its cold start only for its own requests, and loads the
    login's use cases after the first answer has gone out."""
    env = {
        "PATH": "/usr/bin:/bin",
        "KAKAO_REST_API_KEY": "key",
        "KAKAO_REDIRECT_URI": REDIRECT_URI,
        "TOKEN_DIR": str(tmp_path),
    }

    done = subprocess.run(
        [sys.executable, "-c", _COLD_LOGIN_START],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 302 and "/oauth/authorize?" in result["location"]
    assert "token_logic.web.callback" in result["answer"]
    assert _NOT_FOR_A_LOGIN_START.isdisjoint(result["answer"])
    # After the answer, the warm-up loads what finishing the login will need.
    assert {"token_logic.service.login", "token_logic.service.refresh"} <= set(result["warm"])
