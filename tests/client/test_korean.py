"""A client that speaks Korean: the command's and the library's messages in the reader's
language (KAKAO_TOKEN_LANG, else the locale), the Action's in both, Korean first; each still
one line, still without a token."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from dev.loopback import LoopbackServer, send
from dev.servers import free_port
from tests.conftest import ROOT
from tests.endpoint import PERSON, Endpoint, running_endpoint
from tests.fake_google import id_token_for
from tests.helpers import REDIRECT_URI
from token_logic import get_access_token
from token_logic.client import cli, github_action, remote
from token_logic.client.answers import endpoint_error
from token_logic.errors import ConfigError, EndpointUnreachable, LoginRequired
from token_logic.language import BOTH, ENGLISH, KOREAN, Words, languages_from

KOREAN_LOCALE = {"LANG": "ko_KR.UTF-8"}
C_LOCALES = [{"LANG": "C"}, {}]
STRANGER = "ci@other.iam.gserviceaccount.com"


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    remote._CACHE.clear()
    yield
    remote._CACHE.clear()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LANG": "ko_KR.UTF-8"}, KOREAN),
        ({"LC_MESSAGES": "ko_KR.UTF-8", "LANG": "en_US.UTF-8"}, KOREAN),
        ({"LC_ALL": "C", "LANG": "ko_KR.UTF-8"}, ENGLISH),  # the first one set decides
        ({"LC_ALL": "", "LANG": "ko"}, KOREAN),  # an empty one is not set
        ({"LANG": "C.UTF-8"}, ENGLISH),
        ({}, ENGLISH),
        ({"KAKAO_TOKEN_LANG": "ko", "LANG": "C"}, KOREAN),
        ({"KAKAO_TOKEN_LANG": "EN", "LC_ALL": "ko_KR.UTF-8"}, ENGLISH),
        ({"KAKAO_TOKEN_LANG": "fr", "LANG": "ko_KR.UTF-8"}, KOREAN),  # not one: the locale
    ],
)
def test_the_reader_s_language_comes_from_kakao_token_lang_then_the_locale(
    environ: dict[str, str], expected: tuple[str, ...]
) -> None:
    """KAKAO_TOKEN_LANG (ko or en) wins; else LC_ALL, LC_MESSAGES, LANG as POSIX reads them."""
    assert languages_from(environ) == expected


def test_the_action_s_default_is_both_unless_kakao_token_lang_says_one() -> None:
    """A runner's locale is not its reader's: both, Korean first, one line each."""
    words = Words("한국어", "English")

    assert words.said(languages_from({"LANG": "C.UTF-8"}, default=BOTH)) == "한국어\nEnglish"
    assert words.said(languages_from({"KAKAO_TOKEN_LANG": "en"}, default=BOTH)) == "English"
    assert words.said(languages_from({"KAKAO_TOKEN_LANG": "ko"}, default=BOTH)) == "한국어"


def kakao_token(
    capsys: pytest.CaptureFixture[str], environ: dict[str, str], *argv: str
) -> tuple[int, str]:
    """``kakao-token ARGV`` in this process with exactly ``environ``: (exit code, stderr)."""
    code = cli.main(list(argv), environ)
    return code, capsys.readouterr().err


def one_line(stderr: str) -> str:
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("error: "), stderr
    return stderr.removeprefix("error: ").rstrip("\n")


@pytest.mark.parametrize("locale", [KOREAN_LOCALE, *C_LOCALES], ids=["ko", "C", "unset"])
def test_no_url_names_kakao_token_url_in_the_command_and_the_library_alike(
    locale: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No KAKAO_TOKEN_URL: kakao-token and get_access_token() in the kakao-token package (no
    store) say the same one line, about the URL, never about Kakao's keys."""
    monkeypatch.setitem(sys.modules, "token_logic.wiring", None)  # absent, as in the wheel

    code, stderr = kakao_token(capsys, locale, "access-token")
    with pytest.raises(ConfigError) as raised:
        get_access_token(environ=locale)

    assert code == 1
    assert one_line(stderr) == str(raised.value)
    assert raised.value.missing == ("KAKAO_TOKEN_URL",)
    assert "KAKAO_REST_API_KEY" not in stderr
    if locale == KOREAN_LOCALE:
        assert str(raised.value).startswith("KAKAO_TOKEN_URL이 설정되지 않았습니다: ")
        assert "is not set" not in stderr
    else:
        assert str(raised.value).startswith("KAKAO_TOKEN_URL is not set: ")


class CloudRunRefusing:
    """Cloud Run's own refusal: an HTML 403 (or 401), whoever asks."""

    def __init__(self, status: int = 403) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = b"<html><body>Error: Forbidden</body></html>"
                send(self, status, body, {"Content-Type": "text/html; charset=UTF-8"})

        self._server = LoopbackServer(Handler).start()
        self.url = self._server.url

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture
def cloud_run() -> Iterator[CloudRunRefusing]:
    server = CloudRunRefusing()
    yield server
    server.stop()


@pytest.mark.parametrize("locale", [KOREAN_LOCALE, *C_LOCALES], ids=["ko", "C", "unset"])
def test_cloud_run_s_403_says_whom_to_add_to_token_readers(
    locale: dict[str, str], cloud_run: CloudRunRefusing, capsys: pytest.CaptureFixture[str]
) -> None:
    """An identity that is not a reader: the fix (TOKEN_READERS, deploy.sh) in the reader's
    language, on one line, without the ID token."""
    id_token = id_token_for(cloud_run.url, STRANGER)
    env = {**locale, "KAKAO_TOKEN_URL": cloud_run.url, "KAKAO_TOKEN_ID_TOKEN": id_token}

    code, stderr = kakao_token(capsys, env, "access-token")

    line = one_line(stderr)
    assert code == 1 and id_token not in stderr
    if locale == KOREAN_LOCALE:
        assert line.startswith(f"Cloud Run이 {STRANGER}의 호출을 거부했습니다(HTTP 403)")
        assert f"TOKEN_READERS에 serviceAccount:{STRANGER} 항목을 추가하고" in line
        assert "Add serviceAccount" not in line
    else:
        assert line.startswith(f"Cloud Run refused {STRANGER} (HTTP 403)")
        assert f"Add serviceAccount:{STRANGER} to TOKEN_READERS" in line


@pytest.mark.parametrize("locale", [KOREAN_LOCALE, *C_LOCALES], ids=["ko", "C", "unset"])
def test_a_network_failure_names_the_network_and_the_url(
    locale: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody listening: after the retries, the command and the library say so in the
    reader's language, naming the URL."""
    monkeypatch.setattr(remote, "RETRY_PAUSE_SECONDS", 0.0)
    url = f"http://127.0.0.1:{free_port()}"
    env = {**locale, "KAKAO_TOKEN_URL": url, "KAKAO_TOKEN_ID_TOKEN": "x.y.z"}

    code, stderr = kakao_token(capsys, env, "access-token")
    with pytest.raises(EndpointUnreachable) as raised:
        get_access_token(environ=env)

    assert code == 1 and one_line(stderr) == str(raised.value)
    if locale == KOREAN_LOCALE:
        assert f"토큰 엔드포인트({url})가 쓸 만한 답을 하지 않았습니다" in stderr
        assert "3번 시도): 네트워크(프록시, DNS)와 KAKAO_TOKEN_URL을 확인하고" in stderr
    else:
        assert f"the token endpoint {url} did not answer usably" in stderr
        assert "3 attempts): check the network (proxy, DNS) and KAKAO_TOKEN_URL" in stderr


@pytest.fixture
def dead_login(tmp_path: Path) -> Iterator[Endpoint]:
    """The real function whose stored login Kakao no longer honours (KOE322)."""
    with running_endpoint(tmp_path, {PERSON}) as served:
        served.log_in()
        served.kill_login()
        yield served


def test_the_function_s_401_keeps_its_message_and_a_korean_reader_gets_a_line_first(
    dead_login: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """login_required: in English the function's own message as it is (the endpoint's
    contract); in Korean a Korean line naming the login URL, then the function's words."""
    env = {
        "KAKAO_TOKEN_URL": dead_login.url,
        "KAKAO_TOKEN_ID_TOKEN": id_token_for(dead_login.url, PERSON),
    }
    with pytest.raises(LoginRequired) as english:
        get_access_token(environ={**env, "LANG": "C"})

    code, stderr = kakao_token(capsys, {**env, **KOREAN_LOCALE}, "access-token")
    with pytest.raises(LoginRequired) as korean:
        get_access_token(environ={**env, **KOREAN_LOCALE})

    message = str(english.value)
    assert message.startswith("Log in again [KOE322]: ")
    assert message.endswith(f"Log in again at {REDIRECT_URI}.")
    assert code == 1 and one_line(stderr) == str(korean.value)
    assert str(korean.value) == (
        "카카오 로그인이 끊겼습니다(리프레시 토큰 만료·폐기, 또는 앱 연결 해제): "
        f"{REDIRECT_URI}에서 다시 로그인하세요 (토큰 함수: {message})"
    )
    assert korean.value.code == english.value.code == "KOE322"


def action_step(environ: dict[str, str]) -> list[str]:
    """The Action's step in this process (its inputs as INPUT_*): the lines it logs."""
    out = io.StringIO()
    assert github_action.main(environ, out) == 1
    return out.getvalue().splitlines()


@pytest.mark.parametrize("locale", [KOREAN_LOCALE, {"LANG": "C.UTF-8"}], ids=["ko", "C"])
def test_the_action_s_error_is_one_annotation_korean_line_first(
    locale: dict[str, str], cloud_run: CloudRunRefusing
) -> None:
    """Whatever the runner's locale: one ::error with the Korean line, then (%0A) the English
    one; no ID token."""
    id_token = id_token_for(cloud_run.url, STRANGER)
    inputs = {"INPUT_URL": cloud_run.url, "INPUT_ID_TOKEN": id_token}

    (line,) = action_step({**locale, **inputs})

    prefix = "::error title=kakao-token::"
    korean, english = line.removeprefix(prefix).split("%0A")
    assert line.startswith(prefix) and id_token not in line
    assert korean.startswith(f"Cloud Run이 {STRANGER}의 호출을 거부했습니다(HTTP 403)")
    assert english.startswith(f"Cloud Run refused {STRANGER} (HTTP 403)")


@pytest.mark.parametrize(
    ("chosen", "expected"),
    [("ko", "`url` 입력이 비어 있습니다: "), ("en", "the `url` input is empty: ")],
)
def test_the_workflow_may_keep_one_language(chosen: str, expected: str) -> None:
    """KAKAO_TOKEN_LANG in the workflow's env: the Action's line in that language alone."""
    (line,) = action_step({"KAKAO_TOKEN_LANG": chosen, "INPUT_URL": ""})

    assert line.startswith(f"::error title=kakao-token::{expected}")
    assert "%0A" not in line


@pytest.mark.parametrize(
    ("chosen", "expected"),
    [
        ("", "::error title=kakao-token::이 러너에 python3이 없습니다: "),
        ("ko", "::error title=kakao-token::이 러너에 python3이 없습니다: "),
        ("en", "::error title=kakao-token::no python3 on this runner: "),
    ],
)
def test_get_token_sh_fails_in_both_languages_too(
    chosen: str, expected: str, tmp_path: Path
) -> None:
    """The step's shell part (before any Python runs) speaks as the Action does: Korean, then
    English, unless KAKAO_TOKEN_LANG keeps one."""
    result = subprocess.run(
        [str(ROOT / "action" / "get-token.sh")],
        env={
            "PATH": "/usr/bin:/bin",
            "GITHUB_ACTION_PATH": str(ROOT),
            "RUNNER_TEMP": str(tmp_path),
            "KAKAO_TOKEN_PYTHON": "no-such-python3",
            "KAKAO_TOKEN_LANG": chosen,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    (line,) = result.stdout.splitlines()
    assert result.returncode == 1 and line.startswith(expected)
    assert ("%0Ano python3 on this runner: " in line) == (chosen == "")


@pytest.mark.parametrize("locale", [KOREAN_LOCALE, {"LANG": "C"}], ids=["ko", "C"])
def test_a_bad_url_is_explained_in_the_reader_s_language_without_quoting_it(
    locale: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A URL with a password in it: why it is refused, in the reader's language, and the
    password nowhere."""
    url = "https://me:secret-pw@kakao-token-abc-du.a.run.app/"

    code, stderr = kakao_token(capsys, {**locale, "KAKAO_TOKEN_URL": url}, "access-token")

    line = one_line(stderr)
    assert code == 1 and "secret-pw" not in line
    if locale == KOREAN_LOCALE:
        assert line.startswith("KAKAO_TOKEN_URL 값은 ./deploy.sh가 출력한 토큰 함수의 URL")
        assert line.endswith("사용자 이름이나 비밀번호(user:pass@)가 있습니다: 보내지 않습니다")
    else:
        assert line.endswith("it holds a user name or password (user:pass@), which is never sent")


def test_a_memo_kakao_refuses_says_why_in_korean(capsys: pytest.CaptureFixture[str]) -> None:
    """Kakao's own refusal of a memo (-402, a consent missing) is said in the reader's language
    with the fix, and without the access token."""
    refusing = KakaoRefusingMemos()
    try:
        env = {
            **KOREAN_LOCALE,
            "KAKAO_TOKEN_URL": refusing.url,
            "KAKAO_TOKEN_ID_TOKEN": id_token_for(refusing.url, PERSON),
            "KAKAO_API_BASE_URL": refusing.url,
        }
        code, stderr = kakao_token(capsys, env, "send-memo", "안녕")
    finally:
        refusing.stop()

    line = one_line(stderr)
    assert code == 1
    assert line.startswith("카카오톡 메시지 동의(talk_message)가 없습니다(-402): ")
    assert "the-access-token" not in stderr


class KakaoRefusingMemos:
    """One server as both the token endpoint (GET: a token) and Kakao's API (POST: every memo
    refused with -402)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                token = {"access_token": "the-access-token", "expires_at": 4_000_000_000}
                send(self, 200, json.dumps(token).encode(), {"Content-Type": "application/json"})

            def do_POST(self) -> None:
                refusal = {"msg": "insufficient scopes.", "code": -402}
                send(self, 403, json.dumps(refusal).encode(), {"Content-Type": "application/json"})

        self._server = LoopbackServer(Handler).start()
        self.url = self._server.url

    def stop(self) -> None:
        self._server.stop()


@pytest.mark.parametrize(
    ("error", "status", "code", "retry_after", "korean"),
    [
        ("kakao_error", 429, "KOE237", 600, "카카오의 요청 한도에 걸렸습니다(KOE237): 600초 뒤에"),
        ("kakao_error", 502, "KOE101", None, "카카오가 앱 설정을 받아들이지 않았습니다(KOE101: "),
        ("kakao_unavailable", 504, "timeout", 5, "카카오가 응답하지 않거나"),
        ("not_configured", 500, "", None, "토큰 함수의 설정이 빠졌거나 잘못되었습니다: 운영자가"),
        ("no_token_stored", 404, "", None, "저장된 토큰이 없습니다"),
        ("a_newer_kind", 418, "", None, "토큰 함수가 요청을 거절했습니다(HTTP 418 a_newer_kind)"),
    ],
)
def test_each_of_the_function_s_errors_gets_its_korean_line(
    error: str, status: int, code: str, retry_after: int | None, korean: str
) -> None:
    """Every `error` of the endpoint's table (and one only a newer function knows) gets a
    Korean line before the function's message, which stays as it is in English."""
    body = {"error": error, "message": "The function's own words.", "code": code}
    headers = {"Retry-After": str(retry_after)} if retry_after else {}

    in_korean = endpoint_error(status, body, headers, KOREAN)
    in_both = endpoint_error(status, body, headers, BOTH)
    in_english = endpoint_error(status, body, headers, ENGLISH)

    assert str(in_korean).startswith(korean)
    assert str(in_korean).endswith(" (토큰 함수: The function's own words.)")
    assert str(in_both).split("\n") == [str(in_korean).split(" (토큰 함수: ")[0], body["message"]]
    assert str(in_english) == body["message"]
    assert type(in_korean) is type(in_english)
