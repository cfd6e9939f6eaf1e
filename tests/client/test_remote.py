"""Scripts anywhere: get_access_token() and the command line through the token endpoint.

The function runs as a real functions-framework process behind a stand-in for Cloud Run's
invoker check; the caller's ID token comes from real google-auth code signing with a real key
against a fake Google token endpoint, from a fake gcloud, or from KAKAO_TOKEN_ID_TOKEN.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from dev.loopback import LoopbackServer, send
from dev.servers import free_port
from tests.client.person_gcloud import fake_gcloud, gcloud_calls
from tests.endpoint import PERSON, Endpoint, running_endpoint
from tests.fake_google import SERVICE_ACCOUNT, id_token_for
from tests.helpers import REDIRECT_URI, run_cli
from token_logic import get_access_token
from token_logic.client import remote
from token_logic.client.google_id_token import IdentitySettings, default_sources, find_id_token
from token_logic.client.remote import (
    SENDER_CACHE_SECONDS,
    RemoteSettings,
    forget_token,
    remote_token,
)
from token_logic.errors import ConfigError, EndpointUnreachable, LoginRequired, NoTokenStored
from token_logic.logins import SENDER
from token_logic.network import new_session


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    remote._CACHE.clear()
    yield
    remote._CACHE.clear()


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    with running_endpoint(tmp_path, {SERVICE_ACCOUNT, PERSON}) as served:
        yield served


def closed_metadata_server() -> dict[str, str]:
    """Point google-auth's metadata lookup at a closed port, and let it try once."""
    address = f"127.0.0.1:{free_port()}"
    return {
        "GCE_METADATA_HOST": address,
        "GCE_METADATA_IP": address,
        "GCE_METADATA_DETECT_RETRIES": "1",
    }


def with_key(monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint) -> dict[str, str]:
    """The environment of a machine holding the service-account key (google-auth reads the
    process environment itself)."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(endpoint.key_file))
    return {
        "KAKAO_TOKEN_URL": endpoint.url,
        "GOOGLE_APPLICATION_CREDENTIALS": str(endpoint.key_file),
    }


def test_get_access_token_with_a_service_account_key(
    monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint
) -> None:
    """No Kakao key, secret or bucket: the key's ID token for the URL buys the stored token."""
    document = endpoint.log_in()

    token = get_access_token(environ=with_key(monkeypatch, endpoint))

    assert token == document["access_token"]
    assert endpoint.google.grants == [endpoint.url]  # audience: the endpoint's URL
    assert endpoint.check.bearers == endpoint.google.issued
    assert endpoint.kakao.state.refresh_calls() == 0


def test_a_loop_asks_the_endpoint_once(monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint) -> None:
    """get_access_token() in a loop and from threads: one endpoint call, one ID token."""
    endpoint.log_in()
    env = with_key(monkeypatch, endpoint)

    tokens = {get_access_token(environ=env) for _ in range(25)}
    threads = [
        threading.Thread(target=lambda: tokens.add(get_access_token(environ=env)))
        for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(tokens) == 1
    assert endpoint.check.forwarded == 1
    assert len(endpoint.google.grants) == 1


def test_a_token_near_expiry_is_asked_for_again(
    monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint
) -> None:
    """A cached token with less life left than the leeway is not used: the endpoint is asked."""
    endpoint.log_in()
    settings = RemoteSettings.from_env(with_key(monkeypatch, endpoint))
    assert settings is not None
    first = remote_token(settings)
    later = first.expires_at - 200  # as if hours had passed: 200 s left, leeway 300

    remote_token(settings, now=lambda: later)

    assert endpoint.check.forwarded == 2


def test_a_leeway_above_an_hour_is_capped(
    monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint
) -> None:
    """A leeway the endpoint would refuse (over 3600 s) asks for 3600 s instead."""
    document = endpoint.log_in()

    token = get_access_token(environ=with_key(monkeypatch, endpoint), leeway_seconds=7 * 3600)

    assert token == document["access_token"]


def test_users_are_cached_apart(monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint) -> None:
    """The cache is keyed by URL and user: another user is another request."""
    document = endpoint.log_in()
    env = with_key(monkeypatch, endpoint)

    get_access_token(environ=env)
    get_access_token(document["user_id"], environ=env)

    assert endpoint.check.forwarded == 2


def test_the_senders_answer_is_kept_for_seconds_the_owners_for_hours(tmp_path: Path) -> None:
    """The sender's answer names the owner, who may change hands, and its token dies when the
    sender logs out: it is kept SENDER_CACHE_SECONDS at most (the endpoint's own memory),
    however long it lives. The owner's is kept until it nears expiry. forget_token drops one
    that Kakao refused, so the next ask goes to the endpoint."""
    with running_endpoint(tmp_path, {PERSON}, KAKAO_SENDER="1") as served:
        served.log_in(user_id=4127000001)
        served.log_in(SENDER, user_id=4127000002)
        id_token = id_token_for(served.url, PERSON)
        settings = RemoteSettings.from_env(
            {"KAKAO_TOKEN_URL": served.url, "KAKAO_TOKEN_ID_TOKEN": id_token}
        )
        assert settings is not None
        start = time.time()

        def at(seconds: float) -> int:
            before = served.check.forwarded
            remote_token(settings, login=SENDER, now=lambda: start + seconds)
            remote_token(settings, now=lambda: start + seconds * 100)
            return served.check.forwarded - before

        first, within, past = at(0), at(SENDER_CACHE_SECONDS - 1), at(SENDER_CACHE_SECONDS)
        kept = remote_token(settings, login=SENDER, now=lambda: start + SENDER_CACHE_SECONDS)
        forget_token(settings, kept, login=SENDER)
        forgotten = at(SENDER_CACHE_SECONDS)

    assert (first, within, past, forgotten) == (2, 0, 1, 1)


def test_explicit_id_token_comes_first(
    monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint, tmp_path: Path
) -> None:
    """KAKAO_TOKEN_ID_TOKEN wins over a key file and gcloud: neither is touched."""
    document = endpoint.log_in()
    log = fake_gcloud(tmp_path / "bin", id_token_for(endpoint.url, PERSON))
    given = id_token_for(endpoint.url, SERVICE_ACCOUNT)
    env = {
        **with_key(monkeypatch, endpoint),
        "KAKAO_TOKEN_ID_TOKEN": given,
        "PATH": str(tmp_path / "bin"),
    }

    assert get_access_token(environ=env) == document["access_token"]
    assert endpoint.check.bearers == [given]
    assert endpoint.google.grants == [] and gcloud_calls(log) == []


def test_key_file_comes_before_gcloud(
    monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint, tmp_path: Path
) -> None:
    """With a key file and gcloud both present, google-auth's token is used."""
    endpoint.log_in()
    log = fake_gcloud(tmp_path / "bin", id_token_for(endpoint.url, PERSON))
    env = {**with_key(monkeypatch, endpoint), "PATH": str(tmp_path / "bin")}

    get_access_token(environ=env)

    assert len(endpoint.google.grants) == 1 and gcloud_calls(log) == []


def test_gcloud_for_a_person_retries_without_audiences(
    monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint, tmp_path: Path
) -> None:
    """No key, not on Google Cloud: gcloud's token; a user account refusing --audiences is
    asked again without it."""
    document = endpoint.log_in()
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    person_token = id_token_for(endpoint.url, PERSON)
    log = fake_gcloud(tmp_path / "bin", person_token, fail_audiences=True)
    env = {"KAKAO_TOKEN_URL": endpoint.url, "PATH": str(tmp_path / "bin")}

    assert get_access_token(environ=env) == document["access_token"]
    calls = gcloud_calls(log)
    assert calls[0] == ["auth", "print-identity-token", "--audiences", endpoint.url]
    assert calls[1] == ["auth", "print-identity-token"]
    assert endpoint.check.bearers == [person_token]


@pytest.mark.parametrize(
    "url",
    [
        "https://kakao-token-abc123xyz-du.a.run.app",
        "https://kakao-token-418990000123.asia-northeast3.run.app/",
        "https://asia-northeast3-my-project.cloudfunctions.net/kakao-token",
        "http://127.0.0.1:8082",
        "http://localhost:8082",
        "http://[::1]:8082",
    ],
)
def test_a_persons_gcloud_token_without_an_audience_for_a_function_host(
    url: str, tmp_path: Path
) -> None:
    """A Cloud Run or Cloud Functions endpoint, or this machine: the audience-less token is
    fetched for it (and, by remote_token, sent to that URL alone)."""
    log = fake_gcloud(tmp_path / "bin", "person-token", fail_audiences=True)
    identity = IdentitySettings(path=str(tmp_path / "bin"))

    assert find_id_token(url, default_sources(identity)) == ("person-token", "gcloud")
    assert [call[2:] for call in gcloud_calls(log)] == [["--audiences", url], []]


@pytest.mark.parametrize(
    "url",
    [
        "https://tokens.example.com",
        "https://run.app.example.com",
        "https://x.cloudfunctions.net.example.com/kakao-token",
        "https://mylocalhost",
        "https://evil.localhost",
        "https://127.0.0.1.nip.io",
    ],
)
def test_no_audience_less_token_for_any_other_host(url: str, tmp_path: Path) -> None:
    """Any other host gets no audience-less token (gcloud is not even asked), and the message
    keeps gcloud's own words and says what to do instead."""
    log = fake_gcloud(tmp_path / "bin", "person-token", fail_audiences=True)
    identity = IdentitySettings(path=str(tmp_path / "bin"))

    with pytest.raises(ConfigError) as caught:
        find_id_token(url, default_sources(identity))

    assert [call[2:] for call in gcloud_calls(log)] == [["--audiences", url]]
    message = str(caught.value)
    assert "Invalid account type for `--audiences`. Requires valid service account." in message
    assert "*.run.app" in message and "KAKAO_TOKEN_ID_TOKEN" in message
    assert "person-token" not in message


def test_gcloud_failing_both_ways_is_reported_in_its_own_words(tmp_path: Path) -> None:
    """With and without --audiences failing for different reasons, both of gcloud's messages
    are in the error, whole."""
    fake_gcloud(tmp_path / "bin", "", fail_audiences=True)
    identity = IdentitySettings(path=str(tmp_path / "bin"))

    with pytest.raises(ConfigError) as caught:
        find_id_token("http://127.0.0.1:8082", default_sources(identity))

    assert (
        "gcloud: no identity token (with --audiences: ERROR: (gcloud.auth.print-identity-token) "
        "Invalid account type for `--audiences`. Requires valid service account.; without: "
        "ERROR: (gcloud.auth.print-identity-token) You do not currently have an active account "
        "selected.)"
    ) in str(caught.value)


class Recorder:
    """An HTTP server on this machine that records each request's path and Authorization
    header, and answers with ``status``, ``headers`` and ``body``."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.seen: list[tuple[str, str | None]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                recorder.seen.append((self.path, self.headers.get("Authorization")))
                send(self, status, body, headers)

        self._server = LoopbackServer(Handler).start()
        self.url = self._server.url

    def stop(self) -> None:
        self._server.stop()


@pytest.mark.parametrize("elsewhere", ["localhost", "127.0.0.1"], ids=["host", "port"])
def test_the_token_is_not_carried_through_a_redirect(
    elsewhere: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """KAKAO_TOKEN_URL answers with a redirect elsewhere (another host, another port): the
    person's audience-less token went to the configured URL alone, the redirect is not
    followed, and the error names it."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    token = {"access_token": "not-from-the-endpoint", "expires_at": 4_000_000_000}
    target = Recorder(200, {"Content-Type": "application/json"}, json.dumps(token).encode())
    port = target.url.rsplit(":", 1)[1]
    configured = Recorder(302, {"Location": f"http://{elsewhere}:{port}/steal"})
    fake_gcloud(tmp_path / "bin", "person-token", fail_audiences=True)
    env = {"KAKAO_TOKEN_URL": configured.url, "PATH": str(tmp_path / "bin")}
    try:
        with pytest.raises(ConfigError) as caught:
            get_access_token(environ=env)
    finally:
        configured.stop()
        target.stop()

    assert [auth for _, auth in configured.seen] == ["Bearer person-token"]
    assert target.seen == []
    assert f"redirect to http://{elsewhere}" in str(caught.value)
    assert "person-token" not in str(caught.value)


def test_no_identity_says_which_to_set_up(tmp_path: Path) -> None:
    """No explicit token, no key, no metadata server, gcloud logged out: exit 1 with a message
    naming the three ways and what each source said."""
    fake_gcloud(tmp_path / "bin", "")
    env = {
        "PATH": str(tmp_path / "bin"),
        "HOME": str(tmp_path),
        "KAKAO_TOKEN_URL": f"http://127.0.0.1:{free_port()}",
        **closed_metadata_server(),
    }

    result = run_cli(env, "access-token")

    assert result.returncode == 1
    for needed in ("KAKAO_TOKEN_ID_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS", "gcloud auth login"):
        assert needed in result.stderr
    assert "no active account" in result.stderr.lower() or "active account" in result.stderr
    assert "TOKEN_READERS" in result.stderr


def test_metadata_server_is_not_probed_off_google_cloud() -> None:
    """Off Google Cloud without a key, google-auth is skipped (its probe can hang ~10 s)."""
    identity = IdentitySettings(on_google_cloud=False)

    with pytest.raises(ConfigError) as caught:
        find_id_token("https://x.test", [s for s in default_sources(identity) if s[0] != "gcloud"])

    assert "not on Google Cloud" in str(caught.value)


def test_endpoint_errors_become_package_errors(
    monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint
) -> None:
    """Nothing stored: NoTokenStored; a dead login: LoginRequired; each with the endpoint's
    words; a refused identity: ConfigError naming TOKEN_READERS. No token in any of them."""
    env = with_key(monkeypatch, endpoint)
    with pytest.raises(NoTokenStored, match="Log in first"):
        get_access_token(environ=env)

    document = endpoint.log_in()
    endpoint.kill_login()
    with pytest.raises(LoginRequired, match=f"Log in again at {REDIRECT_URI}") as dead:
        get_access_token(environ=env)

    endpoint.check.allowed.clear()
    with pytest.raises(ConfigError, match="TOKEN_READERS") as refused:
        get_access_token(environ=env)

    texts = [str(dead.value), repr(dead.value), str(refused.value)]
    for secret in [document["access_token"], document["refresh_token"], *endpoint.google.issued]:
        assert not [text for text in texts if secret in text]


def test_network_failures_are_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed port: three attempts, then EndpointUnreachable naming the URL and the network
    (no ID token in it)."""
    url = f"http://127.0.0.1:{free_port()}"
    pauses: list[float] = []
    settings = RemoteSettings(url=url)

    with pytest.raises(EndpointUnreachable, match=url) as caught:
        remote_token(settings, sources=[("given", lambda _a: "id-token-xyz")], sleep=pauses.append)

    assert len(pauses) == remote.ATTEMPTS - 1
    assert "id-token-xyz" not in str(caught.value)


def test_settings_hide_the_id_token() -> None:
    """The explicit ID token never shows in a repr."""
    settings = RemoteSettings.from_env(
        {"KAKAO_TOKEN_URL": "https://t.example/", "KAKAO_TOKEN_ID_TOKEN": "secret-id-token"}
    )

    assert settings is not None and "secret-id-token" not in repr(settings)
    assert settings.audience == "https://t.example"


def cli(endpoint: Endpoint, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """The command line with only a key file: no Kakao key, no secret, no bucket."""
    env = {
        "PATH": "/usr/bin:/bin",
        "GOOGLE_APPLICATION_CREDENTIALS": str(endpoint.key_file),
        **extra,
    }
    return run_cli(env, *args)


def test_cli_access_token_with_url(endpoint: Endpoint) -> None:
    """`--url URL access-token` prints the stored token, through the real google-auth path."""
    document = endpoint.log_in()

    result = cli(endpoint, "--url", endpoint.url, "access-token")

    assert result.returncode == 0, result.stderr
    assert result.stdout == document["access_token"] + "\n"
    assert endpoint.google.grants == [endpoint.url]


def test_cli_status_and_send_memo_through_the_endpoint(endpoint: Endpoint) -> None:
    """`status` shows facts without the token; `send-memo` reaches Kakao with it."""
    document = endpoint.log_in()
    env = {"KAKAO_TOKEN_URL": endpoint.url, "KAKAO_API_BASE_URL": endpoint.kakao.url}

    status = cli(endpoint, "status", **env)
    memo = cli(endpoint, "send-memo", "원격으로 보냄", **env)
    refresh = cli(endpoint, "refresh", **env)

    assert status.returncode == 0, status.stderr
    assert str(document["user_id"]) in status.stdout and "KST" in status.stdout
    assert document["access_token"] not in status.stdout
    assert memo.returncode == 0, memo.stderr
    assert endpoint.kakao.state.memos[-1]["text"] == "원격으로 보냄"
    assert refresh.returncode == 2 and "KAKAO_TOKEN_URL" in refresh.stderr


def test_cli_reports_the_endpoints_message(endpoint: Endpoint) -> None:
    """Nothing stored: exit 1 with the endpoint's one line."""
    result = cli(endpoint, "--url", endpoint.url, "access-token")

    assert result.returncode == 1
    assert "Log in first" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "url", ["http://kakao-token-abc-du.a.run.app", "ftp://x", "https://x.run.app/?a=1"]
)
def test_the_endpoint_url_must_be_https_except_on_this_machine(url: str) -> None:
    """The Google ID token travels with every request: an http:// URL (but loopback) is refused
    before any token is fetched."""
    with pytest.raises(ConfigError, match="KAKAO_TOKEN_URL"):
        RemoteSettings.from_env({"KAKAO_TOKEN_URL": url})
    assert RemoteSettings.from_env({"KAKAO_TOKEN_URL": "http://127.0.0.1:8082"}) is not None


def test_no_proxy_and_the_ca_bundle_apply_to_the_endpoint_as_requests_would() -> None:
    """A corporate network: HTTPS_PROXY for the world, NO_PROXY for an internal endpoint, and a
    CA bundle of its own. The endpoint is reached directly, Kakao through the proxy, both with
    that bundle (the session does not read the environment again)."""
    env = {
        "KAKAO_TOKEN_URL": "https://tokens.corp.example/kakao-token",
        "HTTPS_PROXY": "http://proxy.corp.example:3128",
        "NO_PROXY": "localhost,.corp.example",
        "REQUESTS_CA_BUNDLE": "/etc/corp-ca.pem",
    }

    settings = RemoteSettings.from_env(env)

    assert settings is not None
    assert dict(settings.proxies) == {"https://kapi.kakao.com": "http://proxy.corp.example:3128"}
    session = new_session(settings.proxies, settings.ca_bundle)
    assert session.verify == "/etc/corp-ca.pem" and session.trust_env is False
    proxied = RemoteSettings.from_env({**env, "NO_PROXY": ""})
    assert proxied is not None and "https://tokens.corp.example" in proxied.proxies


def test_without_the_url_the_client_alone_asks_for_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kakao-token wheel holds no store (no token_logic.wiring): with KAKAO_TOKEN_URL unset,
    get_access_token() is a ConfigError naming that variable, never a request for Kakao's keys."""
    monkeypatch.setitem(sys.modules, "token_logic.wiring", None)  # absent, as in the wheel

    with pytest.raises(ConfigError) as raised:
        get_access_token(environ={})

    assert raised.value.missing == ("KAKAO_TOKEN_URL",)
    assert str(raised.value).startswith("KAKAO_TOKEN_URL is not set")
    assert "KAKAO_REST_API_KEY" not in str(raised.value)
