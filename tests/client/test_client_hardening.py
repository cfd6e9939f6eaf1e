"""The script-side client against endpoints and services that misbehave or lie: what it sends,
where, and what it tells the person."""

from __future__ import annotations

import argparse
import contextlib
import json
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import flask
import pytest
import requests
from requests.adapters import HTTPAdapter

from dev.fake_kakao import FakeKakao
from dev.loopback import LoopbackServer, send
from dev.servers import free_port
from tests.client.person_gcloud import fake_gcloud
from tests.conftest import function_app, settings_env
from tests.endpoint import running_endpoint
from tests.fake_google import PROVIDER, READER, FakeFederation, id_token_for
from token_logic.checks import destination
from token_logic.client import remote
from token_logic.client.cli import add_token_commands, add_url_and_user, run_remote
from token_logic.client.github_oidc import GitHubFederation, federated_id_token
from token_logic.client.remote import MAX_BODY_BYTES, RemoteSettings, remote_token
from token_logic.errors import ConfigError, EndpointUnreachable, IdentityRejected


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    remote._CACHE.clear()
    yield
    remote._CACHE.clear()


class Liar:
    """An "endpoint" answering whatever the test sets, recording the Authorization it got."""

    def __init__(self) -> None:
        self.status = 200
        self.body: bytes = b"{}"
        self.content_type = "application/json"
        self.seen: list[str] = []
        liar = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                liar.seen.append(self.headers.get("Authorization", ""))
                send(self, liar.status, liar.body, {"Content-Type": liar.content_type})

        self._server = LoopbackServer(Handler).start()
        self.url = self._server.url

    def answer(self, body: dict[str, Any] | bytes, status: int = 200) -> None:
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture
def liar() -> Iterator[Liar]:
    server = Liar()
    yield server
    server.stop()


def ask(url: str, token: str = "") -> str:
    settings = RemoteSettings(url=url)
    id_token = token or id_token_for(settings.audience, "me@example.com")
    return remote_token(
        settings, sources=[("KAKAO_TOKEN_ID_TOKEN", lambda _a: id_token)], sleep=lambda _s: None
    ).access_token


@pytest.mark.parametrize(
    "body",
    [
        {"access_token": "old-token", "expires_at": 1_000_000_000},
        {"access_token": "odd-token", "expires_at": True},
    ],
)
def test_an_expired_or_odd_token_is_not_handed_to_the_script(liar: Liar, body: Any) -> None:
    """A 200 whose token has expired (an old or foreign deployment) or whose expiry is not a
    number is an error, not a token."""
    liar.answer(body)

    with pytest.raises(EndpointUnreachable) as caught:
        ask(liar.url)

    assert "token" in str(caught.value) and body["access_token"] not in str(caught.value)


def test_a_flood_is_cut_off(liar: Liar) -> None:
    """An answer larger than any token endpoint's is not read to the end."""
    liar.answer(b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}")

    with pytest.raises(EndpointUnreachable, match="did not answer usably"):
        ask(liar.url)


def test_a_non_transient_html_answer_is_one_attempt_and_says_so(liar: Liar) -> None:
    """A captive portal's 200 HTML: one attempt, and the message counts it right."""
    liar.content_type = "text/html"
    liar.answer(b"<html>Sign in to the Wi-Fi</html>")

    with pytest.raises(EndpointUnreachable, match="1 attempt"):
        ask(liar.url)

    assert len(liar.seen) == 1


def test_an_id_token_given_for_another_url_is_not_sent(liar: Liar) -> None:
    """KAKAO_TOKEN_ID_TOKEN issued for another service never leaves this machine."""
    other = id_token_for("https://other-abc-du.a.run.app", "me@example.com")

    with pytest.raises(ConfigError, match="it was not sent"):
        ask(liar.url, other)

    assert liar.seen == []


def test_the_github_reader_account_is_told_to_rerun_deploy(tmp_path: Path) -> None:
    """Cloud Run refusing deploy.sh's own GitHub reader: the fix is deploy.sh, not
    TOKEN_READERS."""
    with running_endpoint(tmp_path, set()) as endpoint:
        endpoint.log_in()
        with pytest.raises(IdentityRejected) as caught:
            ask(endpoint.url, id_token_for(endpoint.url, READER))

    assert "GITHUB_REPOSITORY" in str(caught.value) and "TOKEN_READERS" not in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("KAKAO_TOKEN_STS_URL", "https://sts.evil.example/v1/token"),
        ("KAKAO_TOKEN_STS_URL", "http://sts.googleapis.com/v1/token"),
        ("KAKAO_TOKEN_IAM_CREDENTIALS_URL", "https://googleapis.com.evil.example/v1"),
    ],
)
def test_githubs_token_goes_to_google_or_this_machine_only(variable: str, url: str) -> None:
    """An injected variable cannot send GitHub's OIDC token or the federated token elsewhere."""
    env = {
        "KAKAO_TOKEN_WORKLOAD_IDENTITY_PROVIDER": PROVIDER,
        "KAKAO_TOKEN_SERVICE_ACCOUNT": READER,
        variable: url,
    }

    with pytest.raises(ConfigError, match=variable):
        GitHubFederation.from_env(env)


class Bystander:
    """A listener on this machine standing in for an attacker's host (192.0.2.2,
    attacker.example): it records what each connection sends it first, then hangs up."""

    def __init__(self) -> None:
        self.heard: list[bytes] = []
        bystander = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(5)
                with contextlib.suppress(OSError):
                    bystander.heard.append(self.request.recv(65536))

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def bystander() -> Iterator[Bystander]:
    listener = Bystander()
    yield listener
    listener.stop()


def kakao_token(env: dict[str, str], *argv: str) -> int:
    """`kakao-token ARGV` as cli.main runs it, but letting its ConfigError out to be seen."""
    parser = argparse.ArgumentParser()
    add_url_and_user(parser)
    add_token_commands(parser.add_subparsers(dest="command", required=True))
    settings = RemoteSettings.from_env(env)
    assert settings is not None
    return run_remote(settings, parser.parse_args(argv))


# `\@`: urlsplit reads the host after it (this machine, Google's, Kakao's); urllib3, which
# sends, connects to {host} before it. Per variable: the URL, the review's {host}, the command.
BACKSLASH_AT = {
    "KAKAO_TOKEN_URL": ("http://{host}\\@localhost/", "192.0.2.2:8080", ["access-token"]),
    "KAKAO_TOKEN_STS_URL": (
        "https://{host}\\@sts.googleapis.com/v1/token",
        "attacker.example",
        ["access-token"],
    ),
    "KAKAO_API_BASE_URL": (
        "https://{host}\\@kapi.kakao.com",
        "attacker.example",
        ["send-memo", "hi"],
    ),
}


def caller_env(
    variable: str, endpoint: str, federation: FakeFederation, path: Path
) -> dict[str, str]:
    """A caller whose credential follows ``variable``: a person with gcloud, whose token has no
    audience (KAKAO_TOKEN_URL); a GitHub job with workload identity, whose OIDC token goes to
    STS; a script with an ID token, whose access token goes to Kakao (KAKAO_API_BASE_URL)."""
    env = {"PATH": str(path), "KAKAO_TOKEN_URL": endpoint}
    if variable == "KAKAO_TOKEN_STS_URL":
        env.update(
            KAKAO_TOKEN_WORKLOAD_IDENTITY_PROVIDER=PROVIDER,
            KAKAO_TOKEN_SERVICE_ACCOUNT=READER,
            **federation.job_env(),
        )
    elif variable == "KAKAO_API_BASE_URL":
        env["KAKAO_TOKEN_ID_TOKEN"] = id_token_for(endpoint, "me@example.com")
    return env


@pytest.mark.parametrize("variable", list(BACKSLASH_AT))
def test_a_url_read_as_two_hosts_is_refused_and_nothing_is_sent(
    variable: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    liar: Liar,
    bystander: Bystander,
) -> None:
    """A credential's URL written with `\\@` (the review's finding 5) is a ConfigError naming the
    variable, both as the review wrote it and with a listener on this machine as the host urllib3
    would connect to; that listener hears nothing, and no token is fetched for it."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    url, reviewed_host, command = BACKSLASH_AT[variable]
    liar.answer({"access_token": "access-token-xyz", "expires_at": 4_000_000_000})
    fake_gcloud(tmp_path / "bin", "person-token", fail_audiences=True)
    federation = FakeFederation()
    env = caller_env(variable, liar.url, federation, tmp_path / "bin")
    try:
        with pytest.raises(ConfigError) as as_reviewed:
            RemoteSettings.from_env({**env, variable: url.format(host=reviewed_host)})
        with pytest.raises(ConfigError) as attacked:
            kakao_token({**env, variable: url.format(host=bystander.address)}, *command)
    finally:
        federation.stop()

    for caught in (as_reviewed, attacked):
        assert caught.value.missing == (variable,)
        assert str(caught.value).startswith(f"{variable} must be")
        assert "backslash" in str(caught.value)
    assert bystander.heard == []
    assert federation.calls == [] and liar.seen == []


@pytest.mark.parametrize(
    "url",
    [
        "https://kakao-token-abc-du.a.run.app/",
        "HTTPS://STS.GoogleAPIs.com:443/v1/token",
        "http://[::1]:8082",
        "http://127.0.0.1:0080/x?y=1",
        "https://x-du.a.run.app#@evil.example/",
        "https://x-du.a.run.app/?next=@evil.example/",
    ],
)
def test_the_destination_is_where_requests_connects(url: str) -> None:
    """checks.destination names the scheme, host and port that requests' own adapter keys its
    connection by (so every check of a URL judges the place the credential really goes)."""
    prepared = requests.Request("GET", url).prepare()
    pool, _ = HTTPAdapter().build_connection_pool_key_attributes(prepared, True)

    where = destination(url)

    assert (where.scheme, where.host) == (pool["scheme"], pool["host"])
    assert where.port == (pool["port"] or {"http": 80, "https": 443}[where.scheme])


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.2:8080\\@localhost/",
        "https://me:secret-pw@x-du.a.run.app/",
        "https://x-du.a.run.app;@evil.example/",
        "http://localhost%2eevil.example/",
        "https://x-du.a.run.app\t.evil.example/",
        "https://x-du.a.run.app/ x",
        "https://x-du.a.run.app\x00/",
        "https://\u0435vil.run.app/",
        "ftp://x-du.a.run.app/",
        "https:evil.example",
    ],
)
def test_a_url_two_parsers_could_read_apart_is_refused(url: str) -> None:
    """A backslash, whitespace, a control or non-ASCII character, a user name or password, a
    percent in the host, or no http(s) host: refused, and the reason never quotes the URL."""
    with pytest.raises(ValueError) as caught:
        destination(url)

    assert "secret-pw" not in str(caught.value) and "evil" not in str(caught.value)


def test_kakao_api_base_url_must_not_be_clear_text_over_a_network() -> None:
    """send-memo sends the access token to KAKAO_API_BASE_URL: https, or this machine."""
    with pytest.raises(ConfigError, match="KAKAO_API_BASE_URL"):
        RemoteSettings.from_env(
            {"KAKAO_TOKEN_URL": "https://t.example", "KAKAO_API_BASE_URL": "http://kapi.example"}
        )


def test_google_failing_is_an_outage_not_a_setup_mistake() -> None:
    """STS answering 503 (then nothing at all): retried, then named as Google's or GitHub's
    outage; the advice about GITHUB_REPOSITORY is kept for real refusals."""
    federation_fake = FakeFederation()
    try:
        env = {
            "KAKAO_TOKEN_WORKLOAD_IDENTITY_PROVIDER": PROVIDER,
            "KAKAO_TOKEN_SERVICE_ACCOUNT": READER,
            **federation_fake.job_env(),
            "KAKAO_TOKEN_STS_URL": f"http://127.0.0.1:{free_port()}/sts/v1/token",
        }
        federation = GitHubFederation.from_env(env)
        assert federation is not None
        pauses: list[float] = []

        with pytest.raises(EndpointUnreachable) as caught:
            federated_id_token(federation, "https://x-du.a.run.app", sleep=pauses.append)
    finally:
        federation_fake.stop()

    assert "Google STS" in str(caught.value) and "GITHUB_REPOSITORY" not in str(caught.value)
    assert len(pauses) == 2
    assert federation_fake.request_token not in str(caught.value)


def test_a_405_stays_a_405_when_the_settings_are_broken(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao
) -> None:
    """POST with no KAKAO_REST_API_KEY: 405 with Allow (the method is the caller's mistake),
    not a 500 about settings."""
    app: flask.Flask = function_app(
        monkeypatch, "kakao_token", {**settings_env(fake_kakao), "KAKAO_REST_API_KEY": None}
    )

    response = app.test_client().post("/")

    assert response.status_code == 405 and response.headers["Allow"] == "GET"
    assert response.get_json()["error"] == "method_not_allowed"


def test_a_slow_endpoint_is_given_up_on_in_bounded_time(
    monkeypatch: pytest.MonkeyPatch, endpoint_that_hangs: str
) -> None:
    """An endpoint that never answers: the whole ask ends by the client's total budget."""
    monkeypatch.setattr(remote, "TOTAL_SECONDS", 3.0)
    monkeypatch.setattr(remote, "TIMEOUT", (1.0, 60.0))
    started = time.monotonic()

    with pytest.raises(EndpointUnreachable):
        ask(endpoint_that_hangs)

    assert time.monotonic() - started < 8


@pytest.fixture
def endpoint_that_hangs() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            time.sleep(10)

    server = LoopbackServer(Handler).start()
    yield server.url
    server.stop()


def test_an_endpoint_that_drips_its_answer_is_given_up_on_in_bounded_time(
    monkeypatch: pytest.MonkeyPatch, endpoint_that_drips: str
) -> None:
    """A small answer sent a byte at a time, each within the read timeout: the ask still ends
    by the client's total budget (a read timeout bounds each wait, not the answer)."""
    monkeypatch.setattr(remote, "TOTAL_SECONDS", 2.0)
    monkeypatch.setattr(remote, "TIMEOUT", (1.0, 60.0))
    started = time.monotonic()

    with pytest.raises(EndpointUnreachable):
        ask(endpoint_that_drips)

    assert time.monotonic() - started < 5


@pytest.fixture
def endpoint_that_drips() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = b'{"access_token": "x", "expires_at": 9999999999}' + b" " * 400
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass  # the client gave up, as it should

    server = LoopbackServer(Handler, quiet=True).start()
    yield server.url
    server.stop()
