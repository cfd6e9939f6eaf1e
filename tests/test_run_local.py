"""``make run`` (dev/run_local.py) as a person uses it: a real process on free ports, its printed
commands pasted as they are, the memo on the fake's page, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT
from tests.helpers import consent, free_port, run_cli

CLI = ("-m", "token_logic")
GUIDE_END = "Command line through the token endpoint"
SECRET = "dummy-client-secret-5f2c9e"


@dataclass
class LocalRun:
    """``python -m dev.run_local`` running, with everything it printed so far."""

    process: subprocess.Popen[bytes]
    output: Path
    ports: dict[str, int]

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, as a service manager or `kill` sends; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def start_run_local(tmp_path: Path, **settings: str) -> LocalRun:
    """run_local on free ports, with a clean environment plus ``settings``; waits for its guide."""
    ports = {
        "PORT": free_port(),
        "REFRESH_PORT": free_port(),
        "TOKEN_PORT": free_port(),
        "FAKE_KAKAO_PORT": free_port(),
    }
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KAKAO_", "TOKEN_", "STORAGE_", "K_SERVICE"))
    }
    env = {**inherited, **{k: str(v) for k, v in ports.items()}, **settings}
    output = tmp_path / "run_local.out"
    with output.open("wb") as sink:  # a file, not a pipe: no one must drain it
        process = subprocess.Popen(
            [sys.executable, "-m", "dev.run_local"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    run = LocalRun(process, output, ports)
    deadline = time.monotonic() + 60
    while GUIDE_END not in run.text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"run_local printed no guide:\n{run.text()}")
        time.sleep(0.1)
    time.sleep(0.2)  # the guide's last lines, written in the same print
    return run


def printed_exports(text: str) -> dict[str, str]:
    """The ``export NAME=value`` lines, as a shell would read them."""
    env = {}
    for line in text.splitlines():
        if line.strip().startswith("export "):
            for assignment in shlex.split(line)[1:]:
                name, _, value = assignment.partition("=")
                env[name] = value
    return env


def printed_commands(text: str) -> list[tuple[dict[str, str], list[str]]]:
    """Each printed ``[NAME=value ...] python -m token_logic ARGS`` as (its prefix, ARGS)."""
    commands = []
    for line in text.splitlines():
        if " ".join(CLI) not in line:
            continue
        words = shlex.split(line)
        prefix: dict[str, str] = {}
        while re.fullmatch(r"[A-Z_]+=.*", words[0]):
            name, _, value = words.pop(0).partition("=")
            prefix[name] = value
        python, *rest = words
        assert (ROOT / python).exists() or Path(python).is_absolute(), line
        assert tuple(rest[:2]) == CLI, line
        commands.append((prefix, rest[2:]))
    return commands


def store_command(text: str, name: str) -> tuple[dict[str, str], list[str]]:
    """A printed store-mode command with the printed exports as its whole environment."""
    [args] = [args for prefix, args in printed_commands(text) if not prefix and args[0] == name]
    return printed_exports(text), args


def endpoint_command(text: str, name: str) -> tuple[dict[str, str], list[str]]:
    """A printed endpoint-mode command with its own prefix as its whole environment."""
    [found] = [
        (prefix, args)
        for prefix, args in printed_commands(text)
        if "KAKAO_TOKEN_URL" in prefix and args[0] == name
    ]
    return found


def printed_url(text: str, label: str, verb: str) -> str:
    match = re.search(rf"{re.escape(label)}.*?{verb} (http://\S+)", text)
    assert match, text
    return match.group(1)


def log_in(callback_url: str) -> None:
    """The browser's part over HTTP: open the URL, approve at the fake, come back with the
    login cookie (sent by hand: requests keeps Secure cookies from http://localhost)."""
    start = requests.get(callback_url, allow_redirects=False, timeout=10)
    assert start.status_code == 302, start.text
    cookies = {cookie.name: cookie.value for cookie in start.cookies}
    back = requests.get(
        consent(start.headers["Location"]), cookies=cookies, allow_redirects=False, timeout=10
    )
    assert back.status_code == 303, back.text
    assert back.headers["Location"] == "?login=done"


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    """A demo-mode run with one login done through its printed URL."""
    tmp_path = tmp_path_factory.mktemp("run_local")
    run = start_run_local(tmp_path, TOKEN_DIR=str(tmp_path / "tokens"))
    log_in(printed_url(run.text(), "Log in", "open"))
    yield run
    if run.process.poll() is None:
        run.stop()


def test_demo_prints_every_local_address(demo: LocalRun) -> None:
    """The guide names the login, refresh, token and memo addresses on the chosen ports, and
    says that locally nobody checks the caller's ID token."""
    text = demo.text()

    assert printed_url(text, "Log in", "open") == f"http://localhost:{demo.ports['PORT']}/"
    assert f"curl -X POST http://localhost:{demo.ports['REFRESH_PORT']}/" in text
    assert f"curl -s http://localhost:{demo.ports['TOKEN_PORT']}/" in text
    fake = f"http://127.0.0.1:{demo.ports['FAKE_KAKAO_PORT']}"
    assert printed_url(text, "Memos sent", "open") == f"{fake}/memos"
    assert "Locally nothing checks the caller's Google ID token" in text
    assert "DEMO MODE / 데모 모드" in text


def test_printed_store_environment_points_only_at_the_fake(demo: LocalRun) -> None:
    """Every Kakao address in the printed store environment is the fake's, and it is complete
    for a login (key, secret, redirect URI, scope, where tokens are)."""
    env = printed_exports(demo.text())
    fake = f"http://127.0.0.1:{demo.ports['FAKE_KAKAO_PORT']}"

    assert env["KAKAO_AUTH_BASE_URL"] == fake
    assert env["KAKAO_API_BASE_URL"] == fake
    for name in ("TOKEN_DIR", "KAKAO_REST_API_KEY", "KAKAO_CLIENT_SECRET", "KAKAO_SCOPE"):
        assert env[name], name
    assert env["KAKAO_REDIRECT_URI"] == f"http://localhost:{demo.ports['PORT']}/"


@pytest.mark.parametrize("command", ["status", "access-token", "refresh", "login-url"])
def test_printed_store_commands_work_as_pasted(demo: LocalRun, command: str) -> None:
    """status, access-token, refresh --force and login-url succeed with only the printed
    environment."""
    env, args = store_command(demo.text(), command)

    result = run_cli(env, *args)

    assert result.returncode == 0, result.stderr
    if command == "status":
        assert "user 4127000001, ok" in result.stdout


def test_printed_store_send_memo_shows_on_the_memos_page(demo: LocalRun) -> None:
    """The printed store-mode send-memo reaches the fake, and its text is on the memos page."""
    env, args = store_command(demo.text(), "send-memo")

    result = run_cli(env, *args)

    assert result.returncode == 0, result.stderr
    page = requests.get(printed_url(demo.text(), "Memos sent", "open"), timeout=5).text
    assert escape(args[1]) in page


def test_printed_endpoint_access_token_works_as_pasted(demo: LocalRun) -> None:
    """The endpoint-mode access-token, with only its printed prefix, prints a token the fake
    Kakao accepts."""
    env, args = endpoint_command(demo.text(), "access-token")

    result = run_cli(env, *args)

    assert result.returncode == 0, result.stderr
    me = requests.get(
        env["KAKAO_API_BASE_URL"] + "/v2/user/me",
        headers={"Authorization": f"Bearer {result.stdout.strip()}"},
        timeout=5,
    )
    assert me.status_code == 200 and me.json()["id"] == 4127000001


def test_printed_endpoint_send_memo_shows_on_the_memos_page_newest_first(demo: LocalRun) -> None:
    """The endpoint-mode send-memo goes to the fake (never real Kakao); the page lists it above
    older memos, and shows no token."""
    env, args = endpoint_command(demo.text(), "send-memo")
    earlier = run_cli(env, "send-memo", "an earlier memo")

    result = run_cli(env, *args)

    assert earlier.returncode == 0 and result.returncode == 0, result.stderr
    page = requests.get(printed_url(demo.text(), "Memos sent", "open"), timeout=5).text
    assert "나에게 보낸 메모" in page and "Memos sent" in page
    assert page.index(escape(args[1])) < page.index("an earlier memo")
    token = run_cli(env, "access-token").stdout.strip()
    assert token and token not in page


def test_memos_page_escapes_the_text(demo: LocalRun) -> None:
    """A memo that looks like markup comes out as text, never as a script."""
    env, _ = endpoint_command(demo.text(), "send-memo")
    hostile = '<script>alert("memo")</script>'

    result = run_cli(env, "send-memo", hostile)

    assert result.returncode == 0, result.stderr
    page = requests.get(printed_url(demo.text(), "Memos sent", "open"), timeout=5)
    assert "&lt;script&gt;alert(&quot;memo&quot;)&lt;/script&gt;" in page.text
    assert "<script>" not in page.text
    assert page.headers["Cache-Control"] == "no-store"


def test_printed_curl_gets_json_with_an_access_token(demo: LocalRun) -> None:
    """The printed ``curl -s`` on the token port answers JSON with an access token and no
    refresh token."""
    url = printed_url(demo.text(), "Token", "curl -s")

    response = requests.get(url, timeout=10)

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["access_token"].startswith("fake-access-")
    assert "refresh_token" not in body


def test_sigterm_stops_every_server_and_frees_the_ports(tmp_path: Path) -> None:
    """SIGTERM ends run_local with exit 0, and nothing listens on its four ports afterwards."""
    run = start_run_local(tmp_path, TOKEN_DIR=str(tmp_path / "tokens"))
    assert all(listening(port) for port in run.ports.values())

    code = run.stop()

    assert code == 0, run.text()
    assert not [port for port in run.ports.values() if listening(port)]


def test_a_real_app_secret_is_never_printed(tmp_path: Path) -> None:
    """With a real app's key and secret, the guide refers to $KAKAO_CLIENT_SECRET and never
    prints its value; no fake Kakao is started."""
    run = start_run_local(
        tmp_path,
        KAKAO_REST_API_KEY="dummy-rest-api-key",
        KAKAO_CLIENT_SECRET=SECRET,
        TOKEN_DIR=str(tmp_path / "tokens"),
    )
    try:
        assert not listening(run.ports["FAKE_KAKAO_PORT"])
    finally:
        assert run.stop() == 0
    text = run.text()

    assert SECRET not in text
    assert 'export KAKAO_CLIENT_SECRET="$KAKAO_CLIENT_SECRET"' in text
    assert "export KAKAO_REST_API_KEY=dummy-rest-api-key" in text
    assert "DEMO MODE" not in text
    assert "KAKAO_API_BASE_URL" not in text  # real Kakao: the client's default
    [(prefix, _)] = [c for c in printed_commands(text) if c[1][0] == "access-token" and c[0]]
    assert prefix == {
        "KAKAO_TOKEN_URL": f"http://localhost:{run.ports['TOKEN_PORT']}/",
        "KAKAO_TOKEN_ID_TOKEN": "local-demo",
    }
