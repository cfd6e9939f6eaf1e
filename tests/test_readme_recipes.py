"""The recipes people copy run as written: the curl recipe of docs/en/scripts.md (only Kakao's
API host is swapped for the fake's) against the token function behind Cloud Run's invoker check,
the same block in docs/ko/scripts.md, and the README quickstart's lines for `make run`, which are
the ones it prints."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from dev.loopback import LoopbackServer, send
from dev.run_local import (
    DEMO_ID_TOKEN,
    ENDPOINT_FILE,
    Ports,
    assignments,
    endpoint_environment,
    guide,
)
from tests.conftest import ROOT
from tests.endpoint import PERSON, Endpoint, running_endpoint
from tests.fake_google import SERVICE_ACCOUNT, id_token_for

README = ROOT / "README.md"
SCRIPTS = {language: ROOT / "docs" / language / "scripts.md" for language in ("en", "ko")}


def curl_recipe(page: Path = SCRIPTS["en"]) -> str:
    """The fenced block after the page's curl-recipe marker."""
    text = page.read_text()
    after = text[text.index("<!-- curl-recipe") :]
    match = re.search(r"```sh\n(.*?)```", after, re.DOTALL)
    assert match is not None
    return match.group(1)


def test_both_languages_hold_the_same_curl_recipe() -> None:
    """The Korean page's recipe is the very block the tests below run."""
    assert curl_recipe(SCRIPTS["ko"]) == curl_recipe(SCRIPTS["en"])


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    with running_endpoint(tmp_path, {PERSON, SERVICE_ACCOUNT}) as served:
        yield served


def gcloud_on_path(directory: Path, token: str) -> Path:
    """A `gcloud` whose print-identity-token prints ``token`` (a person's)."""
    directory.mkdir(exist_ok=True)
    script = directory / "gcloud"
    script.write_text(f"#!/bin/sh\necho {token}\n")
    script.chmod(0o755)
    return directory


class FakeMetadata:
    """Google Cloud's metadata server: an ID token for the audience asked, only with the
    Metadata-Flavor header (as the real one insists)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                audience = parse_qs(parts.query).get("audience", [""])[0]
                wanted = "/computeMetadata/v1/instance/service-accounts/default/identity"
                if self.headers.get("Metadata-Flavor") != "Google" or parts.path != wanted:
                    send(self, 403, b"Missing Metadata-Flavor:Google header.")
                    return
                send(self, 200, id_token_for(audience, SERVICE_ACCOUNT).encode())

        self._server = LoopbackServer(Handler).start()
        self.host = self._server.url.removeprefix("http://")

    def stop(self) -> None:
        self._server.stop()


def run_recipe(endpoint: Endpoint, tail: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = curl_recipe().replace("https://kapi.kakao.com", endpoint.kakao.url) + tail
    return subprocess.run(
        ["bash", "-c", script],
        env={"KAKAO_TOKEN_URL": endpoint.url, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_curl_recipe_gets_a_token_and_sends_a_memo(tmp_path: Path, endpoint: Endpoint) -> None:
    """A person with gcloud: the recipe's function prints the token, and its memo is sent."""
    document = endpoint.log_in()
    path = gcloud_on_path(tmp_path / "bin", id_token_for(endpoint.url, PERSON))

    result = run_recipe(endpoint, 'echo "token=$ACCESS_TOKEN"\n', PATH=f"{path}:/usr/bin:/bin")

    assert result.returncode == 0, result.stderr
    assert f"token={document['access_token']}" in result.stdout
    assert endpoint.kakao.state.memos[-1]["text"] == "curl에서 보냄"


def test_the_curl_recipe_on_google_cloud_uses_the_metadata_server(endpoint: Endpoint) -> None:
    """On Google Cloud: the metadata server's ID token for the URL buys the token."""
    document = endpoint.log_in()
    metadata = FakeMetadata()
    try:
        result = run_recipe(
            endpoint,
            "kakao_access_token_on_google_cloud\n",
            PATH="/usr/bin:/bin",
            GCE_METADATA_HOST=metadata.host,
        )
    finally:
        metadata.stop()

    assert result.returncode == 0, result.stderr
    assert document["access_token"] in result.stdout.splitlines()


def test_the_curl_recipe_fails_with_the_functions_message(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    """Nothing stored: the function returns non-zero and prints the function's JSON message."""
    path = gcloud_on_path(tmp_path / "bin", id_token_for(endpoint.url, PERSON))

    result = run_recipe(
        endpoint, "kakao_access_token || echo failed\n", PATH=f"{path}:/usr/bin:/bin"
    )

    assert "failed" in result.stdout
    assert "HTTP 404: no_token_stored: No token stored yet: Log in first" in result.stderr
    assert endpoint.kakao.state.memos == []


def test_the_curl_recipe_never_prints_the_token_but_as_its_answer(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    """Without jq it stops before asking; a refusal by Cloud Run (a stranger's ID token) is one
    line; neither prints the access token anywhere."""
    document = endpoint.log_in()
    bare = tmp_path / "bare"
    bare.mkdir()
    for tool in ("curl", "bash", "printf"):
        found = subprocess.run(["which", tool], capture_output=True, text=True, check=False)
        if found.stdout.strip():
            (bare / tool).symlink_to(found.stdout.strip())
    gcloud_on_path(bare, id_token_for(endpoint.url, PERSON))
    stranger = gcloud_on_path(tmp_path / "stranger", id_token_for(endpoint.url, "x@evil.example"))

    no_jq = run_recipe(endpoint, "kakao_access_token || echo failed\n", PATH=str(bare))
    refused = run_recipe(
        endpoint, "kakao_access_token || echo failed\n", PATH=f"{stranger}:/usr/bin:/bin"
    )

    assert "install jq first" in no_jq.stderr and "failed" in no_jq.stdout
    assert "HTTP 403: not the function's answer" in refused.stderr
    for result in (no_jq, refused):
        assert document["access_token"] not in result.stdout + result.stderr
    assert endpoint.check.forwarded == 0


# The README quickstart: what `make run` prints, so pasting either works.

FAKE_KAKAO = "http://127.0.0.1:9090"
PORTS = Ports(callback=8080, refresh=8081, token=8082, fake_kakao=9090)


def printed_by_make_run(*, demo: bool) -> str:
    """make run's guide for the default ports, in demo mode or with a real app."""
    env = {"KAKAO_REDIRECT_URI": "http://localhost:8080/", "TOKEN_DIR": ".run/demo-8080"}
    if demo:
        env["KAKAO_API_BASE_URL"] = FAKE_KAKAO
    endpoint = endpoint_environment(env, PORTS.token, DEMO_ID_TOKEN if demo else "secret")
    env_file = None if demo else ENDPOINT_FILE.format(port=PORTS.token)
    fake_url = FAKE_KAKAO if demo else None
    return guide(env, PORTS, fake_url, endpoint, env_file, env["KAKAO_REDIRECT_URI"])


def token_curl(printed: str) -> str:
    """The token endpoint's curl line of make run's guide."""
    (line,) = [line for line in printed.splitlines() if "Token / " in line]
    return line[line.index("curl ") :]


def readme_commands() -> list[str]:
    """The README's shell lines, continuations joined, comments left out."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.DOTALL)
    joined = "\n".join(blocks).replace("\\\n", " ")
    return [" ".join(line.split("#")[0].split()) for line in joined.splitlines()]


def test_the_quickstart_asks_the_token_endpoint_as_make_run_prints_it() -> None:
    """The demo's curl sends the demo bearer, and a real app's reads the header file make run
    writes: a bare `curl http://localhost:8082/` would be a 401."""
    commands = readme_commands()

    assert token_curl(printed_by_make_run(demo=True)) in commands
    assert token_curl(printed_by_make_run(demo=False)) in commands
    assert [c for c in commands if c.startswith("curl ") and " -H " not in c] == []


def test_the_quickstarts_demo_memo_goes_to_the_fake_kakao() -> None:
    """The demo's send-memo and send-message carry KAKAO_API_BASE_URL pointing at the fake,
    exactly the environment make run prints; without it they would go to the real Kakao."""
    endpoint = endpoint_environment({"KAKAO_API_BASE_URL": FAKE_KAKAO}, 8082, DEMO_ID_TOKEN)
    prefix = " ".join(assignments(endpoint))
    commands = [c for c in readme_commands() if DEMO_ID_TOKEN in c]
    sends = {
        name: [c for c in commands if f" {name} " in c] for name in ("send-memo", "send-message")
    }

    assert prefix in printed_by_make_run(demo=True)
    for name, found in sends.items():
        assert found and all(c.startswith(prefix + " ") for c in found), name
