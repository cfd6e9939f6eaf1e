"""The real function server (functions-framework subprocess) over real HTTP, storing in GCS."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import requests

from dev.fake_kakao import FakeKakao
from tests.conftest import ROOT, settings_env
from tests.helpers import REDIRECT_URI, FunctionServer, GcsEmulator, begin_login, consent


def login_through(server: FunctionServer) -> requests.Response:
    """A browser-like session: open the function, consent at Kakao, follow back."""
    browser = requests.Session()
    browser.base_url = server.url  # type: ignore[attr-defined]
    start = begin_login(browser, server.env)
    assert start.status_code in (302, 303)
    callback = consent(start.headers["Location"])
    assert callback.startswith(REDIRECT_URI)
    return browser.get(server.url + "/" + callback[len(REDIRECT_URI) :], timeout=10)


def test_login_through_the_running_function_stores_in_the_bucket(
    fake_kakao: FakeKakao, gcs: GcsEmulator, bucket: str
) -> None:
    """A whole login through functions-framework writes a correct document to the emulator."""
    env = settings_env(fake_kakao, TOKEN_BUCKET=bucket, STORAGE_EMULATOR_HOST=gcs.url)
    with FunctionServer("kakao_callback", env, ROOT) as server:
        response = login_through(server)
        logs = server.logs()

    assert response.status_code == 200, response.text
    document = json.loads(gcs.read_object(bucket, "kakao_token.json") or b"{}")
    assert document["user_id"] == fake_kakao.state.user_id
    assert document["refresh_token"] in fake_kakao.state.valid_refresh_tokens()
    assert '"severity": "INFO", "message": "login stored"' in logs
    assert document["access_token"] not in logs and document["refresh_token"] not in logs


def test_login_through_the_running_function_stores_a_local_file(
    fake_kakao: FakeKakao, tmp_path: Path
) -> None:
    """Without a bucket the running function writes kakao_token.json under TOKEN_DIR."""
    env = settings_env(fake_kakao, TOKEN_DIR=str(tmp_path))
    with FunctionServer("kakao_callback", env, ROOT) as server:
        response = login_through(server)

    assert response.status_code == 200
    document = json.loads((tmp_path / "kakao_token.json").read_text())
    assert document["access_token"] in fake_kakao.state.access_tokens


def test_unconfigured_function_answers_a_clean_500(tmp_path: Path) -> None:
    """Missing variables: the running function answers 500 naming them, and logs them, no trace."""
    env = {"KAKAO_REST_API_KEY": "", "KAKAO_REDIRECT_URI": "", "TOKEN_DIR": str(tmp_path)}
    with FunctionServer("kakao_callback", env, ROOT) as server:
        response = requests.get(server.url + "/", timeout=10)
        logs = server.logs()

    assert response.status_code == 500
    assert "KAKAO_REST_API_KEY" in response.text and "KAKAO_REDIRECT_URI" in response.text
    assert "Traceback" not in response.text and "Traceback" not in logs
    assert "missing KAKAO_REST_API_KEY" in logs


def test_importing_main_loads_neither_requests_nor_the_storage_client() -> None:
    """Cold start: the first redirect needs neither library, so main.py must not import them."""
    code = (
        "import sys, main\n"
        "loaded = [m for m in ('requests', 'google.cloud.storage') if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert result.stdout.strip() == ""


def test_clients_are_warmed_after_the_first_answer(
    fake_kakao: FakeKakao, gcs: GcsEmulator, bucket: str
) -> None:
    """After the first request has been answered, the instance loads its clients in the
    background, so the first login does not pay for the imports."""
    env = settings_env(fake_kakao, TOKEN_BUCKET=bucket, STORAGE_EMULATOR_HOST=gcs.url)
    with FunctionServer("kakao_callback", env, ROOT) as server:
        assert requests.get(server.url + "/", allow_redirects=False, timeout=10).status_code == 302
        deadline = time.monotonic() + 20
        while "clients warmed up" not in server.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        logs = server.logs()

    assert "clients warmed up" in logs
    assert logs.index("login started") < logs.index("clients warmed up")
