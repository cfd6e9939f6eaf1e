"""``make run`` (dev/run_local.py) as a person uses it: a real process on free ports, its printed
commands pasted as they are, the memo on the fake's page, the demo's sender (its link, its
message to the owner), the guard of the refresh and token ports (Host and bearer;
tests/test_run_local_ports.py attacks every port), a clean stop on SIGTERM and no server left
behind after SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape, unescape
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from dev.fake_kakao import FakeKakao, FakeKakaoState
from dev.servers import (
    free_port,
    is_listening,
    is_serving,
    port_is_free,
    socket_function_command,
)
from tests.conftest import ROOT
from tests.helpers import consent, run_cli

# Real make run servers in subprocesses: part of make test, left out of the quick loop.
pytestmark = pytest.mark.slow

CLI = ("-m", "token_logic")
GUIDE_END = "Command line through the token endpoint"
SECRET = "dummy-client-secret-5f2c9e"
REBINDING_HOSTS = ("rebind.attacker.example:{port}", "127.0.0.1.nip.io:{port}", "localhost")
OWNER_ID = 4127000001
SENDER_ID = 4127000002  # the demo's second account at the fake's consent page
SENDER_LABEL = "Sender / 보내는 계정:"
FROM_SENDER_TO_OWNER = f"보낸 사람 / from {SENDER_ID} → 받는 사람 / to {OWNER_ID}"


@dataclass
class LocalRun:
    """``python -m dev.run_local`` running, with everything it printed so far."""

    process: subprocess.Popen[bytes]
    output: Path
    ports: dict[str, int]

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def demo_store(self) -> Path:
        """Where a demo run keeps its tokens, whatever the environment says."""
        return ROOT / ".run" / f"demo-{self.ports['PORT']}"

    def stop(self) -> int:
        """SIGTERM, as a service manager or `kill` sends; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def clean_environment() -> dict[str, str]:
    """This process's environment without anything the function or the client reads."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KAKAO_", "TOKEN_", "STORAGE_", "K_SERVICE"))
    }


def start_run_local(tmp_path: Path, **settings: str) -> LocalRun:
    """run_local on free ports, with a clean environment plus ``settings``; waits for its guide."""
    ports = {
        "PORT": free_port(),
        "REFRESH_PORT": free_port(),
        "TOKEN_PORT": free_port(),
        "FAKE_KAKAO_PORT": free_port(),
    }
    env = {**clean_environment(), **{k: str(v) for k, v in ports.items()}, **settings}
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
    store_part = text.partition(GUIDE_END)[0]
    [args] = [
        args for prefix, args in printed_commands(store_part) if not prefix and args[0] == name
    ]
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


def printed_line(text: str, label: str) -> str:
    """What the guide prints after ``label`` on its line."""
    match = re.search(rf"^\s*{re.escape(label)}\s+(.+)$", text, re.MULTILINE)
    assert match, text
    return match.group(1)


def endpoint_lines(text: str) -> list[str]:
    """The lines under the token-endpoint heading, as a person would copy them."""
    block = text.partition(GUIDE_END)[2].splitlines()[2:]  # after both lines of the heading
    return [line.strip() for line in block[: block.index("")]]


def endpoint_file(text: str) -> Path:
    """The file the printed ``set -a; . FILE; set +a`` line reads."""
    [line] = [line for line in endpoint_lines(text) if line.startswith("set -a")]
    match = re.fullmatch(r"set -a; \. (\S+); set \+a", line)
    assert match, line
    return ROOT / match.group(1)


def paste(*lines: str, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``lines`` pasted into a fresh shell at the repository root, with no KAKAO_* set;
    ``path``: a directory searched for commands first."""
    env = clean_environment()
    if path is not None:
        env["PATH"] = f"{path}{os.pathsep}{env.get('PATH', os.defpath)}"
    return subprocess.run(
        ["/bin/sh", "-c", "\n".join(lines)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def token_url(run: LocalRun, host: str = "localhost") -> str:
    return f"http://{host}:{run.ports['TOKEN_PORT']}/"


def log_in(callback_url: str, account: int | None = None) -> None:
    """The browser's part over HTTP: open the URL (a claim link's page posts its secret, as
    its script does), approve at the fake (as ``account``, else the page's first account),
    come back with the login cookie (sent by hand: requests keeps Secure cookies from
    http://localhost)."""
    page, _, claim = callback_url.partition("#")
    if claim:
        start = requests.post(page, data={"claim": claim}, allow_redirects=False, timeout=10)
    else:
        start = requests.get(callback_url, allow_redirects=False, timeout=10)
    assert start.status_code in (302, 303), start.text
    cookies = start.cookies.get_dict()
    authorize = start.headers["Location"]
    callback = consent(authorize) if account is None else consent_as(authorize, account)
    back = requests.get(callback, cookies=cookies, allow_redirects=False, timeout=10)
    assert back.status_code == 303, back.text
    assert back.headers["Location"] == "?login=done"


def consent_as(authorize_url: str, account: int) -> str:
    """Approve at the fake's consent page with ``account``'s own link; the callback URL."""
    page = requests.get(authorize_url, timeout=5)
    match = re.search(rf'id=approve-{account} href="([^"]+)"', page.text)
    assert match, page.text
    base = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
    decision = requests.get(base + unescape(match.group(1)), allow_redirects=False, timeout=5)
    assert decision.status_code == 302, decision.text
    return str(decision.headers["Location"])


def printed_line_with(text: str, *words: str) -> str:
    """The one printed line holding every one of ``words``, as a person would copy it."""
    [line] = [line.strip() for line in text.splitlines() if all(w in line for w in words)]
    return line


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    """A demo-mode run with one login done through its printed URL."""
    tmp_path = tmp_path_factory.mktemp("run_local")
    run = start_run_local(tmp_path, TOKEN_DIR=str(tmp_path / "tokens"))
    log_in(printed_url(run.text(), "Log in", "open"))
    yield run
    if run.process.poll() is None:
        run.stop()
    shutil.rmtree(run.demo_store(), ignore_errors=True)


def test_demo_prints_every_local_address(demo: LocalRun) -> None:
    """The guide names the login, refresh, token and memo addresses on the chosen ports, and
    prints the refresh and token curl lines with the demo bearer and says what guards them."""
    text = demo.text()

    assert printed_url(text, "Log in", "open") == f"http://localhost:{demo.ports['PORT']}/"
    refresh = printed_line(text, "Refresh / 갱신:")
    assert refresh == (
        "curl -s -X POST -H 'Authorization: Bearer local-demo' "
        f"http://localhost:{demo.ports['REFRESH_PORT']}/"
    )
    curl = printed_line(text, "Token / 토큰:")
    assert curl == f"curl -s -H 'Authorization: Bearer local-demo' {token_url(demo)}"
    fake = f"http://127.0.0.1:{demo.ports['FAKE_KAKAO_PORT']}"
    assert printed_url(text, "Memos sent", "open") == f"{fake}/memos"
    assert "stand-in for Cloud Run's check: only the Host localhost, 127.0.0.1 or [::1]" in text
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
    assert "나에게 보낸 메모" in page and "Memos and messages sent to me" in page
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


def test_demo_prints_the_sender_link_and_the_send_message_line(demo: LocalRun) -> None:
    """The demo runs with a sender: the guide prints the sender's claim link and which account
    to approve as, the send-message line with the endpoint's whole environment (the fake as
    Kakao), and the memos page as where the message from the sender to the owner shows."""
    text = demo.text()
    fake = f"http://127.0.0.1:{demo.ports['FAKE_KAKAO_PORT']}"

    link = printed_url(text, SENDER_LABEL, "open")
    prefix, args = endpoint_command(text, "send-message")

    callback = f"http://localhost:{demo.ports['PORT']}/"
    assert re.fullmatch(rf"{re.escape(callback)}claim\?login=sender#[\w-]{{43}}", link), link
    assert f"approve as {SENDER_ID} (the demo sender)" in text and f"{SENDER_ID}(데모" in text
    assert text.index(printed_url(text, "Log in", "open")) < text.index(link)
    assert prefix == {
        "KAKAO_TOKEN_URL": token_url(demo),
        "KAKAO_TOKEN_ID_TOKEN": "local-demo",
        "KAKAO_API_BASE_URL": fake,
    }
    assert args[1] and len(args) == 2
    assert printed_url(text, "Delivered / 도착:", "open") == f"{fake}/memos"
    assert f"from {SENDER_ID} to {OWNER_ID}" in printed_line(text, "Delivered / 도착:")
    assert printed_exports(text)["KAKAO_SENDER"] == "1"


def test_demo_consent_page_offers_the_owner_and_the_demo_sender(demo: LocalRun) -> None:
    """The fake's consent page in the demo asks for friends and talk_message and has one
    approve link per demo account, the owner's the plain ``approve``; an account it does not
    offer is refused."""
    login = printed_url(demo.text(), "Log in", "open")
    authorize = requests.get(login, allow_redirects=False, timeout=10).headers["Location"]

    page = requests.get(authorize, timeout=5).text
    sender_link = re.search(rf'id=approve-{SENDER_ID} href="([^"]+)"', page)
    assert sender_link, page
    forged = unescape(sender_link.group(1)).replace(f"account={SENDER_ID}", "account=4127000099")
    fake = "{0.scheme}://{0.netloc}".format(urlsplit(authorize))
    refused = requests.get(fake + forged, allow_redirects=False, timeout=5)

    assert "friends" in page and "talk_message" in page
    assert re.search(rf"id=approve href=[^>]+>{OWNER_ID} 소유자 \(데모\)", page), page
    assert re.search(rf"id=approve-{SENDER_ID} href=[^>]+>{SENDER_ID} 보내는 계정", page), page
    assert refused.status_code == 400


def test_following_the_guide_the_senders_message_reaches_the_memos_page(demo: LocalRun) -> None:
    """The owner logged in at the printed address (the fixture), the second account logs in
    through the printed sender link choosing the demo sender, and the send-message line run as
    printed delivers: the memos page shows the message from the sender to the owner."""
    text = demo.text()
    line = printed_line_with(text, "KAKAO_TOKEN_URL=", " send-message ")
    _, args = endpoint_command(text, "send-message")

    log_in(printed_url(text, SENDER_LABEL, "open"), account=SENDER_ID)
    result = paste(line)

    assert result.returncode == 0, result.stderr
    assert f"delivered to {OWNER_ID}" in result.stdout
    page = requests.get(printed_url(text, "Delivered / 도착:", "open"), timeout=5).text
    assert FROM_SENDER_TO_OWNER in page
    item = page[page.index(FROM_SENDER_TO_OWNER) :]
    assert item.index(escape(args[1])) < item.index("</li>")


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
def test_printed_curl_gets_json_with_an_access_token(demo: LocalRun) -> None:
    """The printed curl line, pasted into a shell, answers JSON with an access token and no
    refresh token."""
    curl = printed_line(demo.text(), "Token / 토큰:")

    result = paste(curl)

    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["access_token"].startswith("fake-access-")
    assert "refresh_token" not in body


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
def test_printed_refresh_curl_sweeps_as_pasted(demo: LocalRun) -> None:
    """The printed refresh line, pasted into a shell, gets the sweep's JSON report; without
    its bearer the refresh port answers an HTML 401 instead."""
    refresh = printed_line(demo.text(), "Refresh / 갱신:")

    result = paste(refresh)
    bare = requests.post(f"http://localhost:{demo.ports['REFRESH_PORT']}/", timeout=10)

    assert result.returncode == 0, result.stderr
    assert "status" in json.loads(result.stdout), result.stdout
    assert bare.status_code == 401
    assert bare.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}"])
def test_this_machines_names_pass_the_host_check(demo: LocalRun, host: str) -> None:
    """With the bearer, a Host naming this machine and the port gets the token."""
    host = host.format(port=demo.ports["TOKEN_PORT"])

    response = requests.get(
        token_url(demo, "127.0.0.1"),
        headers={"Host": host, "Authorization": "Bearer local-demo"},
        timeout=10,
    )

    assert response.status_code == 200, response.text
    assert response.json()["access_token"]


@pytest.mark.parametrize("host", REBINDING_HOSTS)
def test_a_foreign_host_gets_403_and_no_token(demo: LocalRun, host: str) -> None:
    """A request naming another host (a DNS-rebinding page's), or this one without the port,
    gets Cloud Run's kind of HTML 403 and no token, even with the right bearer."""
    host = host.format(port=demo.ports["TOKEN_PORT"])

    response = requests.get(
        token_url(demo, "127.0.0.1"),
        headers={"Host": host, "Authorization": "Bearer local-demo"},
        timeout=10,
    )

    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("text/html")
    assert "access_token" not in response.text and "fake-access-" not in response.text


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", "Bearer local-demo-", "Basic bG9jYWwtZGVtbzo=", "x"]
)
def test_no_or_a_wrong_bearer_gets_401_html(demo: LocalRun, authorization: str | None) -> None:
    """Without ``Authorization: Bearer <this run's bearer>`` the endpoint answers an HTML 401,
    as Cloud Run does, and no token."""
    headers = {"Authorization": authorization} if authorization else {}

    response = requests.get(token_url(demo), headers=headers, timeout=10)

    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("text/html")
    assert "access_token" not in response.text and "fake-access-" not in response.text


def test_the_client_with_a_wrong_bearer_is_refused(demo: LocalRun) -> None:
    """The printed endpoint command with another KAKAO_TOKEN_ID_TOKEN fails with the 401 and
    prints no token."""
    env, _ = endpoint_command(demo.text(), "access-token")

    result = run_cli({**env, "KAKAO_TOKEN_ID_TOKEN": "not-this-run"}, "access-token")

    assert result.returncode != 0
    assert "HTTP 401" in result.stderr
    assert result.stdout == ""


def test_sigterm_stops_every_server_and_frees_the_ports(tmp_path: Path) -> None:
    """SIGTERM ends run_local with exit 0, and nothing listens on its four ports afterwards."""
    run = start_run_local(tmp_path, TOKEN_DIR=str(tmp_path / "tokens"))
    assert all(is_listening(port) for port in run.ports.values())

    code = run.stop()
    shutil.rmtree(run.demo_store(), ignore_errors=True)

    assert code == 0, run.text()
    assert not [port for port in run.ports.values() if is_listening(port)]


def test_sigkill_leaves_no_server_behind(tmp_path: Path) -> None:
    """Killed by SIGKILL (no handler of its own runs), run_local still takes its servers down
    within seconds, so every port is free for the next make run, and their sockets' private
    directory is gone."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the servers follow run_local down by Linux's PR_SET_PDEATHSIG")
    run = start_run_local(tmp_path, TOKEN_DIR=str(tmp_path / "tokens"))
    family = descendants(run.process.pid)
    assert len(family) >= 3, family  # three function servers, and their gunicorn workers
    directories = {Path(arguments(pid)[-1]).parent for pid in family}
    assert len(directories) == 1 and next(iter(directories)).is_dir(), directories

    run.process.kill()
    run.process.wait()
    shutil.rmtree(run.demo_store(), ignore_errors=True)
    deadline = time.monotonic() + 10
    while alive(family) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = alive(family)
    for pid in left:  # so that a failure here leaves nothing running either
        os.kill(pid, signal.SIGKILL)

    assert not left, left
    assert all(port_is_free(port) for port in run.ports.values())
    assert not [directory for directory in directories if directory.exists()]


def arguments(pid: int) -> list[str]:
    """The command line ``pid`` was started with."""
    return Path(f"/proc/{pid}/cmdline").read_text().rstrip("\0").split("\0")


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, read from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # it ended while we looked
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie waiting for a reaper has ended)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


def test_a_real_app_secret_is_never_printed(tmp_path: Path) -> None:
    """With a real app's key and secret, the guide refers to $KAKAO_CLIENT_SECRET and never
    prints its value; no fake Kakao is started; the endpoint's environment file names the
    endpoint and a bearer and nothing else (no fake's address), and is gone after the stop."""
    run = start_run_local(
        tmp_path,
        KAKAO_REST_API_KEY="dummy-rest-api-key",
        KAKAO_CLIENT_SECRET=SECRET,
        TOKEN_DIR=str(tmp_path / "tokens"),
    )
    env_file = endpoint_file(run.text())
    header_file = env_file.with_suffix(".header")
    try:
        assert not is_listening(run.ports["FAKE_KAKAO_PORT"])
        endpoint = read_env_file(env_file)
        assert header_file.is_file()
    finally:
        assert run.stop() == 0
    text = run.text()

    assert SECRET not in text
    assert 'export KAKAO_CLIENT_SECRET="$KAKAO_CLIENT_SECRET"' in text
    assert "export KAKAO_REST_API_KEY=dummy-rest-api-key" in text
    assert "DEMO MODE" not in text
    assert "KAKAO_API_BASE_URL" not in text  # real Kakao: the client's default
    assert endpoint.keys() == {"KAKAO_TOKEN_URL", "KAKAO_TOKEN_ID_TOKEN"}
    assert endpoint["KAKAO_TOKEN_URL"] == token_url(run)
    assert not env_file.exists()
    assert not header_file.exists()


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines as a POSIX shell reads them."""
    pairs = (shlex.split(line)[0].partition("=") for line in path.read_text().splitlines())
    return {name: value for name, _, value in pairs}


@pytest.fixture(scope="module")
def real_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalRun, FakeKakao]]:
    """A run with an app's own key, so no demo and no bundled fake: its Kakao is a fake this
    test starts (the addresses set as a person could), with one login done."""
    tmp_path = tmp_path_factory.mktemp("run_local_real_app")
    kakao = FakeKakao(FakeKakaoState(client_id="my-app-key", client_secret=SECRET)).start()
    run = start_run_local(
        tmp_path,
        KAKAO_REST_API_KEY="my-app-key",
        KAKAO_CLIENT_SECRET=SECRET,
        KAKAO_AUTH_BASE_URL=kakao.url,
        KAKAO_API_BASE_URL=kakao.url,
        KAKAO_SCOPE="talk_message",
        TOKEN_DIR=str(tmp_path / "tokens"),
    )
    kakao.state.redirect_uris.add(f"http://localhost:{run.ports['PORT']}/")
    log_in(printed_url(run.text(), "Log in", "open"))
    yield run, kakao
    if run.process.poll() is None:
        run.stop()
    kakao.stop()


def test_a_real_apps_bearer_is_private_and_never_printed(
    real_app: tuple[LocalRun, FakeKakao],
) -> None:
    """With a real app the bearer is made for the run, kept in a mode-0600 file the guide
    names, never printed, and the demo's local-demo opens nothing."""
    run, _ = real_app
    text = run.text()
    env_file = endpoint_file(text)

    bearer = read_env_file(env_file)["KAKAO_TOKEN_ID_TOKEN"]
    demo_bearer = requests.get(
        token_url(run), headers={"Authorization": "Bearer local-demo"}, timeout=10
    )

    assert env_file.stat().st_mode & 0o777 == 0o600
    assert len(bearer) >= 32 and bearer not in text
    assert "KAKAO_TOKEN_ID_TOKEN=" not in text
    assert demo_bearer.status_code == 401


@pytest.mark.parametrize("with_bearer", [False, True])
def test_a_real_apps_token_is_refused_to_a_rebinding_page(
    real_app: tuple[LocalRun, FakeKakao], with_bearer: bool
) -> None:
    """The review's reproduction, ``Host: rebind.attacker.example:<port>`` to 127.0.0.1, gets
    a 403 and no token, with or without the bearer."""
    run, _ = real_app
    headers = {"Host": f"rebind.attacker.example:{run.ports['TOKEN_PORT']}"}
    if with_bearer:
        bearer = read_env_file(endpoint_file(run.text()))["KAKAO_TOKEN_ID_TOKEN"]
        headers["Authorization"] = f"Bearer {bearer}"

    response = requests.get(token_url(run, "127.0.0.1"), headers=headers, timeout=10)

    assert response.status_code == 403
    assert "access_token" not in response.text and "fake-access-" not in response.text


def test_a_real_apps_endpoint_commands_work_as_pasted(
    real_app: tuple[LocalRun, FakeKakao],
) -> None:
    """The printed ``set -a; . FILE; set +a`` line and the endpoint commands under it, pasted
    into a fresh shell, print a token Kakao accepts and send a memo to this run's Kakao."""
    run, kakao = real_app
    sourcing, access_token, send_memo = endpoint_lines(run.text())

    token = paste(sourcing, access_token)
    memo = paste(sourcing, send_memo)

    assert token.returncode == 0, token.stderr
    me = requests.get(
        kakao.url + "/v2/user/me",
        headers={"Authorization": f"Bearer {token.stdout.strip()}"},
        timeout=5,
    )
    assert me.status_code == 200, me.text
    assert memo.returncode == 0, memo.stderr
    assert len(kakao.state.memos) == 1


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
def test_a_real_apps_printed_refresh_works_as_pasted(
    real_app: tuple[LocalRun, FakeKakao],
) -> None:
    """The printed refresh line reads the bearer from the file, and the sweep answers JSON."""
    run, _ = real_app
    refresh = printed_line(run.text(), "Refresh / 갱신:")

    result = paste(refresh)

    assert result.returncode == 0, result.stderr
    assert "status" in json.loads(result.stdout), result.stdout
    assert "KAKAO_TOKEN_ID_TOKEN=" not in refresh


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
def test_a_real_apps_printed_curl_works_as_pasted(real_app: tuple[LocalRun, FakeKakao]) -> None:
    """The printed curl line reads the bearer from the file and gets the token as JSON."""
    run, _ = real_app
    curl = printed_line(run.text(), "Token / 토큰:")

    result = paste(curl)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["access_token"].startswith("fake-access-")


def test_a_real_apps_printed_curl_lines_keep_the_bearer_out_of_curls_arguments(
    real_app: tuple[LocalRun, FakeKakao], tmp_path: Path
) -> None:
    """The printed refresh and token lines hand curl the bearer in a mode-0600 header file
    (``-H @file``), never as an argument: any local user reads /proc/PID/cmdline while curl
    runs."""
    run, _ = real_app
    bearer = read_env_file(endpoint_file(run.text()))["KAKAO_TOKEN_ID_TOKEN"]
    spy = tmp_path / "curl"  # records its arguments, one a line, as ps would show them
    spy.write_text('#!/bin/sh\nprintf "%s\\n" "$@" >> "$0.argv"\n')
    spy.chmod(0o755)
    lines = [printed_line(run.text(), "Refresh / 갱신:"), printed_line(run.text(), "Token / 토큰:")]

    results = [paste(line, path=tmp_path) for line in lines]

    assert all(result.returncode == 0 for result in results), results
    argv = (tmp_path / "curl.argv").read_text().splitlines()
    assert len([word for word in argv if word.startswith("http://localhost:")]) == 2, argv
    assert not [word for word in argv if bearer in word]
    [header] = {word.removeprefix("@") for word in argv if word.startswith("@")}
    assert (ROOT / header).read_text() == f"Authorization: Bearer {bearer}\n"
    assert (ROOT / header).stat().st_mode & 0o777 == 0o600


def write_real_looking_token(directory: Path) -> Path:
    """A stored document as a real login leaves it (tokens that never came from the demo's
    fake, fresh for hours), in ``directory``; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    document = {
        "access_token": "real-access-token-must-not-leak",
        "refresh_token": "real-refresh-token-must-not-leak",
        "token_type": "bearer",
        "scope": "talk_message",
        "expires_in": 21599,
        "refresh_token_expires_in": 5183999,
        "expires_at": now + 21599,
        "refresh_token_expires_at": now + 5183999,
        "user_id": 4127000099,
        "updated_at": now,
    }
    path = directory / "kakao_token.json"
    path.write_text(json.dumps(document, indent=2, sort_keys=True))
    path.chmod(0o600)
    return path


def test_demo_never_reads_or_refreshes_the_store_the_shell_names(tmp_path: Path) -> None:
    """In demo mode (whose bearer local-demo is public) TOKEN_DIR and TOKEN_OBJECT left in the
    shell are ignored, and the guide says so: the token port never gives that store's token,
    and a forced refresh leaves its document as it was (its refresh token never goes to the
    fake Kakao, whose KOE322 would mark the real login dead)."""
    stored = write_real_looking_token(tmp_path / "real")
    before = stored.read_bytes()
    run = start_run_local(tmp_path, TOKEN_DIR=str(stored.parent), TOKEN_OBJECT=stored.name)
    try:
        demo_bearer = {"Authorization": "Bearer local-demo"}
        token = requests.get(token_url(run), headers=demo_bearer, timeout=10)
        refreshed = requests.post(
            f"http://localhost:{run.ports['REFRESH_PORT']}/?force=1",
            headers=demo_bearer,
            timeout=30,
        )
        text = run.text()
    finally:
        run.stop()
        shutil.rmtree(run.demo_store(), ignore_errors=True)

    assert "real-access-token" not in token.text and "real-refresh-token" not in token.text
    assert "real-access-token" not in refreshed.text
    assert stored.read_bytes() == before
    assert re.search(r"^Ignored in demo mode.*: TOKEN_DIR, TOKEN_OBJECT$", text, re.MULTILINE)
    assert str(stored.parent) not in text


def unix_listeners(pids: set[int]) -> set[str]:
    """The paths of the Unix sockets ``pids`` listen on, from /proc (as ``ss -lxp`` shows)."""
    inodes = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link.removeprefix("socket:[").removesuffix("]"))
    found = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        # Flags 00010000: __SO_ACCEPTCON, a listening socket; the path, when it has one, last.
        if len(fields) >= 8 and fields[6] in inodes and int(fields[3], 16) & 0x10000:
            found.add(fields[7])
    return found


def test_a_function_server_listens_only_in_its_directory_and_leaves_it_to_make_run(
    tmp_path: Path,
) -> None:
    """A function server of make run listens on its socket alone (no gunicorn control socket
    elsewhere), and stopped while make run lives it leaves the private directory in place:
    make run removes it once its checks stop relaying, so no one can make it again before."""
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    directory = tmp_path / "sockets"
    directory.mkdir(mode=0o700)
    socket_path = directory / "kakao_token.sock"
    runtime = tmp_path / "runtime"  # where gunicorn would put its control socket
    runtime.mkdir(mode=0o700)
    env = {**clean_environment(), "XDG_RUNTIME_DIR": str(runtime), "HOME": str(runtime)}
    server = subprocess.Popen(
        socket_function_command("kakao_token", ROOT / "main.py", socket_path),
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not is_serving(socket_path) and time.monotonic() < deadline:
            assert server.poll() is None
            time.sleep(0.1)
        time.sleep(1)  # what gunicorn opens after its first socket
        listeners = unix_listeners({server.pid, *descendants(server.pid)})
    finally:
        server.terminate()
        code = server.wait(timeout=30)

    assert listeners == {str(socket_path)}, listeners
    assert code == 0
    assert directory.is_dir()
