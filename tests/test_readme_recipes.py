"""The README's curl recipe runs as written (only Kakao's API host is swapped for the fake's),
against the token function behind Cloud Run's invoker check."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from dev.loopback import LoopbackServer, send
from tests.conftest import ROOT
from tests.endpoint import PERSON, Endpoint, running_endpoint
from tests.fake_google import SERVICE_ACCOUNT, id_token_for

README = ROOT / "README.md"


def curl_recipe() -> str:
    """The fenced block after the README's curl-recipe marker."""
    text = README.read_text()
    after = text[text.index("<!-- curl-recipe") :]
    match = re.search(r"```sh\n(.*?)```", after, re.DOTALL)
    assert match is not None
    return match.group(1)


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
