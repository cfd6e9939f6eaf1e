"""The check before the first login (token_logic/kakao/doctor.py) against the fake Kakao, as
deploy.sh runs it (the standard library alone), and the console step a failed login's page
names."""

from __future__ import annotations

import html
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev.fake_kakao import FakeKakao, FakeKakaoState
from tests.conftest import ROOT, EnvFor, function_app
from tests.helpers import begin_login, consent, path_and_query
from token_logic.errors import KakaoError
from token_logic.kakao.console import LOGIN_SWITCH, REDIRECT_URI_FIELD, REST_API_KEY_PAGE
from token_logic.problems import problem_for
from token_logic.web.pages import problem_page

CALLBACK = "https://kakao-callback-abc123-du.a.run.app"
KEY = "doctor-rest-key"
SECRET = "doctor-secret-SHOULD-NOT-LEAK"


@pytest.fixture
def kakao() -> Iterator[FakeKakao]:
    """A Kakao app with its callback registered, which sends a browser that is not logged in
    on to its accounts host first, as Kakao does."""
    state = FakeKakaoState(
        client_id=KEY,
        client_secret=SECRET,
        redirect_uris={CALLBACK},
        login_host="accounts.kakao.test",
    )
    fake = FakeKakao(state).start()
    yield fake
    fake.stop()


def doctor(
    fake_url: str, *args: str, redirect_uri: str = "", key: str = KEY, secret: str = SECRET
) -> subprocess.CompletedProcess[str]:
    """``python -P -S -m token_logic.kakao.doctor``, as deploy.sh runs it: no site-packages."""
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "KAKAO_AUTH_BASE_URL": fake_url,
        "KAKAO_REST_API_KEY": key,
        "KAKAO_CLIENT_SECRET": secret,
        "KAKAO_REDIRECT_URI": redirect_uri,
    }
    return subprocess.run(
        [sys.executable, "-P", "-S", "-m", "token_logic.kakao.doctor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stdout.splitlines()


def test_all_fine_is_exit_0_with_a_line_per_setting(kakao: FakeKakao) -> None:
    """Key known, secret the key's, callback registered: exit 0, three [ok] lines, Korean first
    then English; Kakao was asked with a made-up code (KOE320) and an unfollowed authorize."""
    result = doctor(kakao.url, redirect_uri=CALLBACK)

    assert result.returncode == 0, result.stdout + result.stderr
    found = lines(result)
    assert len(found) == 3 and all(line.startswith("[ok] ") for line in found)
    assert found[0].index("REST API 키") < found[0].index("REST API key")
    assert CALLBACK in found[2] and "registered" in found[2]
    [asked] = kakao.state.token_requests
    assert asked["grant_type"] == "authorization_code"
    assert asked["code"].startswith("kakao-token-doctor-")
    assert kakao.state.calls["/oauth/authorize"] == 1  # the redirect to login is not followed


def test_a_wrong_key_is_exit_1_naming_koe101_and_the_key_page(kakao: FakeKakao) -> None:
    """A key Kakao does not know: KOE101, and where the key is copied from."""
    result = doctor(kakao.url, key="not-the-key")

    assert result.returncode == 1
    [key_line, secret_line, redirect_line] = lines(result)
    assert key_line.startswith("[실패 / FAIL]") and "KOE101" in key_line
    assert REST_API_KEY_PAGE in key_line and "KAKAO_REST_API_KEY" in key_line
    assert "could not tell" in secret_line  # the key comes first
    assert "skipped" in redirect_line  # no KAKAO_REDIRECT_URI before the first deploy


def test_a_wrong_secret_is_exit_1_naming_koe010_and_that_keys_secret(kakao: FakeKakao) -> None:
    """A secret that is not the key's: KOE010, the key known; the secret is never shown."""
    result = doctor(kakao.url, secret="another-SECRET-value")

    assert result.returncode == 1
    key_line, secret_line, _ = lines(result)
    assert key_line.startswith("[ok]")
    assert secret_line.startswith("[실패 / FAIL]") and "KOE010" in secret_line
    assert "KAKAO_CLIENT_SECRET" in secret_line and "클라이언트 시크릿" in secret_line
    assert "another-SECRET-value" not in result.stdout + result.stderr


def test_an_empty_secret_for_a_key_whose_secret_is_on_says_so(kakao: FakeKakao) -> None:
    """The key's client secret is on (new keys' default) and KAKAO_CLIENT_SECRET is empty."""
    result = doctor(kakao.url, secret="")

    assert result.returncode == 1
    assert "KAKAO_CLIENT_SECRET is empty" in lines(result)[1]


def test_a_key_without_a_client_secret_needs_none(kakao: FakeKakao) -> None:
    """A key whose secret is off takes calls without one: ok, and the line says why."""
    kakao.state.client_secret = ""

    result = doctor(kakao.url, secret="")

    assert result.returncode == 0
    assert lines(result)[1].startswith("[ok]") and "off" in lines(result)[1]


def test_an_unregistered_redirect_uri_names_the_console_field(kakao: FakeKakao) -> None:
    """Kakao's KOE006 page: exit 1, the URI to paste and the field it goes into."""
    elsewhere = "https://kakao-callback-other-du.a.run.app"

    result = doctor(kakao.url, "--redirect-uri-only", redirect_uri=elsewhere)

    assert result.returncode == 1
    [line] = lines(result)  # the key and secret are not asked again
    assert line.startswith("[실패 / FAIL]") and "KOE006" in line
    assert elsewhere in line and REDIRECT_URI_FIELD in line
    assert kakao.state.token_requests == []


def test_kakao_login_switched_off_is_named_when_kakao_says_so(kakao: FakeKakao) -> None:
    """KOE004 at authorize: Kakao Login is off, and where to switch it on."""
    kakao.state.login_enabled = False

    result = doctor(kakao.url, redirect_uri=CALLBACK)

    assert result.returncode == 1
    [login_line] = [line for line in lines(result) if "KOE004" in line and "FAIL" in line]
    assert LOGIN_SWITCH in login_line and "ON" in login_line


@pytest.mark.parametrize("fault", ["html", "500"])
def test_an_answer_it_cannot_read_is_could_not_tell_never_a_failure(
    kakao: FakeKakao, fault: str
) -> None:
    """Kakao's pages are no contract: an authorize answer that is neither KOE006 nor a redirect
    to the login is "확인할 수 없음 / could not tell", and the exit status stays 0."""
    kakao.state.inject("/oauth/authorize", fault)

    result = doctor(kakao.url, "--redirect-uri-only", redirect_uri=CALLBACK)

    assert result.returncode == 0
    [line] = lines(result)
    assert line.startswith("[확인할 수 없음 / could not tell]")


def test_kakao_unreachable_is_could_not_tell(tmp_path: Path) -> None:
    """No Kakao at all (a closed port): nothing can be told, exit 0."""
    result = doctor("http://127.0.0.1:9", redirect_uri=CALLBACK)

    assert result.returncode == 0
    assert all("could not tell" in line for line in lines(result))


@pytest.mark.parametrize(
    ("args", "env_key", "words"),
    [
        ((), "", "KAKAO_REST_API_KEY"),
        (("--redirect-uri-only",), KEY, "KAKAO_REDIRECT_URI"),
        (("--verbose",), KEY, "usage"),
    ],
)
def test_bad_usage_is_exit_2(
    kakao: FakeKakao, args: tuple[str, ...], env_key: str, words: str
) -> None:
    """No key, --redirect-uri-only without a Redirect URI, an unknown flag: exit 2."""
    result = doctor(kakao.url, *args, key=env_key)

    assert result.returncode == 2 and words in result.stderr
    assert kakao.state.calls == {}


def test_python_m_token_logic_doctor_reads_deploy_env(kakao: FakeKakao, tmp_path: Path) -> None:
    """``python -m token_logic doctor`` reads ./deploy.env (here the deployment's key and
    secret, and the callback kept as KAKAO_REDIRECT_URI) over the environment."""
    (tmp_path / "deploy.env").write_text(
        f'KAKAO_REST_API_KEY={KEY}\nKAKAO_CLIENT_SECRET="{SECRET}"\nKAKAO_REDIRECT_URI={CALLBACK}\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "token_logic", "doctor"],
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "KAKAO_AUTH_BASE_URL": kakao.url,
            "KAKAO_REST_API_KEY": "an-older-key",
            "KAKAO_TOKEN_URL": "https://kakao-token-abc123-du.a.run.app",  # not needed here
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert [line[:4] for line in lines(result)] == ["[ok]"] * 3
    assert SECRET not in result.stdout + result.stderr


# The login page: a token call failing on a console setting names the step to redo, from the
# code alone (no second Kakao call).


@pytest.mark.parametrize(
    ("code", "setting", "place"),
    [
        ("KOE101", "KAKAO_REST_API_KEY", REST_API_KEY_PAGE),
        ("KOE010", "KAKAO_CLIENT_SECRET", REST_API_KEY_PAGE),
        ("KOE006", "리다이렉트 URI", REDIRECT_URI_FIELD),
        ("KOE004", "ON", LOGIN_SWITCH),
    ],
)
def test_a_console_code_names_the_step_to_redo(code: str, setting: str, place: str) -> None:
    """Each code a console setting causes: the page's "which step to redo" line, Korean and
    English, with the console path; the command line's one line carries it too."""
    problem = problem_for(KakaoError(401, "invalid_client", code))

    page = problem_page(problem, start_url="/", demo=False)

    assert "다시 할 단계" in page and "Step to redo" in page
    assert setting in problem.step_ko + problem.step_en
    assert place in problem.step_ko and place in problem.step_en
    assert "Step to redo:" in problem.one_line()


@pytest.mark.parametrize("mistake", ["secret", "key"])
def test_a_login_failing_on_the_key_or_secret_shows_the_console_step(
    monkeypatch: pytest.MonkeyPatch,
    fake_kakao: FakeKakao,
    env_for: EnvFor,
    tmp_path: Path,
    mistake: str,
) -> None:
    """The deployed login page, when Kakao's token call says KOE010 or KOE101 (the secret or the
    key changed in the console after the login started): the step to redo, and one Kakao call,
    the failed exchange."""
    env = env_for(TOKEN_DIR=str(tmp_path))
    client = function_app(monkeypatch, "kakao_callback", env).test_client()
    start = begin_login(client)
    callback = path_and_query(consent(start.headers["Location"]))
    if mistake == "secret":
        fake_kakao.state.client_secret = "rotated-in-the-console"
    else:
        fake_kakao.state.client_id = "another-key"

    response = client.get(callback)

    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 502
    assert ("KOE010" if mistake == "secret" else "KOE101") in page
    assert "다시 할 단계" in page and REST_API_KEY_PAGE in page
    assert fake_kakao.state.calls["/oauth/token"] == 1
    assert "rotated-in-the-console" not in page and env["KAKAO_CLIENT_SECRET"] not in page
