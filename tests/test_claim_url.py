"""``python -m token_logic claim-url`` outside the deployment: it reads deploy.env as deploy.sh
does, so its claim lands in the bucket the deployed functions read, or it refuses, naming the
variable to set."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import FakeClock, GcsEmulator
from token_logic.budget import Deadline
from token_logic.logins import OWNER, SENDER
from token_logic.service.claim import claim_name, valid_claim
from token_logic.storage.files import FileTokenStore
from token_logic.storage.gcs import GcsTokenStore
from token_logic.storage.protocol import TokenStore

CALLBACK = "https://kakao-callback-abc123-du.a.run.app"
SECRET = "client-secret-SHOULD-NOT-LEAK"


def deploy_env(folder: Path, bucket: str = "", name: str = "deploy.env", **more: str) -> Path:
    """A deploy.env as deploy.env.example has people write it: comments, quotes, blank lines."""
    lines = [
        "# Copy to deploy.env and fill in",
        "GOOGLE_CLOUD_PROJECT=kakao-demo-123",
        f'TOKEN_BUCKET="{bucket}"' if bucket else "# TOKEN_BUCKET=",
        "KAKAO_REST_API_KEY=rest-key-0123456789",
        f"KAKAO_CLIENT_SECRET='{SECRET}'\r",  # saved on Windows
        "",
        *(f"{key}={value}" for key, value in more.items()),
    ]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def claim_url(
    cwd: Path, *args: str, gcs: GcsEmulator | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """``python -m token_logic claim-url ARGS`` from ``cwd``, with exactly ``env`` (plus the
    emulator's address, where a bucket is used)."""
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    if gcs is not None:
        base["STORAGE_EMULATOR_HOST"] = gcs.url
    return subprocess.run(
        [sys.executable, "-m", "token_logic", "claim-url", *args],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def claimed(store: TokenStore, result: subprocess.CompletedProcess[str], login: str) -> bool:
    """Whether the printed link's secret is the claim token_logic finds in ``store``."""
    secret = result.stdout.strip().split("#", 1)[1]
    now = int(time.time())
    name = claim_name("kakao_token.json", login)
    return valid_claim(store, name, secret, now, Deadline.after(10, FakeClock(now))) is not None


def test_the_claim_lands_in_the_bucket_deploy_env_names(
    gcs: GcsEmulator, bucket: str, tmp_path: Path
) -> None:
    """./deploy.env names TOKEN_BUCKET and the callback: the claim goes to that bucket, where
    the functions read it, not to the TOKEN_DIR this shell happens to set; KAKAO_TOKEN_URL (the
    scripts' endpoint) does not get in the way; the link alone is on stdout."""
    deploy_env(tmp_path, bucket, KAKAO_REDIRECT_URI=CALLBACK)
    local = tmp_path / "local"
    local.mkdir()

    result = claim_url(
        tmp_path,
        gcs=gcs,
        TOKEN_DIR=str(local),
        KAKAO_TOKEN_URL="https://kakao-token-abc123-du.a.run.app",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{CALLBACK}/claim#") and result.stdout.count("\n") == 1
    assert claimed(GcsTokenStore(bucket), result, OWNER)
    assert list(local.iterdir()) == []
    assert f"gs://{bucket}" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_no_bucket_for_a_deployed_callback_is_refused_naming_token_bucket(
    tmp_path: Path,
) -> None:
    """A run.app callback and no TOKEN_BUCKET anywhere: the claim would sit in a local file no
    deployed function reads, so no link is printed and nothing is written; the error names
    TOKEN_BUCKET in English and Korean."""
    deploy_env(tmp_path, KAKAO_REDIRECT_URI=CALLBACK)

    result = claim_url(tmp_path, TOKEN_DIR=str(tmp_path))

    assert result.returncode == 1 and result.stdout == ""
    assert "TOKEN_BUCKET is not set" in result.stderr and "TOKEN_BUCKET이 없습니다" in result.stderr
    assert not (tmp_path / ".kakao-token-claim.json").exists()


def test_a_local_callback_keeps_its_local_store(tmp_path: Path) -> None:
    """``make run``'s function on localhost reads TOKEN_DIR: there the local claim is right, and
    no Kakao key is needed to make it."""
    result = claim_url(
        tmp_path, TOKEN_DIR=str(tmp_path), KAKAO_REDIRECT_URI="http://localhost:8080/"
    )

    assert result.returncode == 0, result.stderr
    assert claimed(FileTokenStore(tmp_path), result, OWNER)


def test_the_environment_naming_another_bucket_is_refused(
    gcs: GcsEmulator, bucket: str, tmp_path: Path
) -> None:
    """TOKEN_BUCKET in the environment and in deploy.env differ: deploy.sh lets the environment
    win, so either may be the deployed one; refused, naming TOKEN_BUCKET, nothing written."""
    env_file = deploy_env(tmp_path, bucket, name="prod.env", KAKAO_REDIRECT_URI=CALLBACK)
    other = gcs.new_bucket()

    result = claim_url(tmp_path, "--env-file", str(env_file), gcs=gcs, TOKEN_BUCKET=other)

    assert result.returncode == 1 and result.stdout == ""
    assert "TOKEN_BUCKET" in result.stderr and "prod.env" in result.stderr
    name = claim_name("kakao_token.json")
    assert GcsTokenStore(bucket).read(name) is None
    assert GcsTokenStore(other).read(name) is None


def test_without_kakao_redirect_uri_it_is_named(tmp_path: Path, bucket: str) -> None:
    """The link is built on the deployed callback's URL: without it, KAKAO_REDIRECT_URI is
    named, and where deploy.sh prints it."""
    deploy_env(tmp_path, bucket)

    result = claim_url(tmp_path)

    assert result.returncode == 1
    assert "KAKAO_REDIRECT_URI is not set" in result.stderr and "deploy.sh" in result.stderr


def test_a_sender_link_from_a_sender_deployment(
    gcs: GcsEmulator, bucket: str, tmp_path: Path
) -> None:
    """``--sender`` with KAKAO_SENDER=1 in the env file: the sender's claim in the bucket, its
    link saying so (?login=sender)."""
    env_file = deploy_env(tmp_path, bucket, KAKAO_REDIRECT_URI=CALLBACK, KAKAO_SENDER="1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = claim_url(elsewhere, "--sender", "--env-file", str(env_file), gcs=gcs)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{CALLBACK}/claim?login=sender#")
    assert claimed(GcsTokenStore(bucket), result, SENDER)
    assert "sender" in result.stderr


def test_a_sender_link_without_a_sender_names_kakao_sender(tmp_path: Path, bucket: str) -> None:
    """``--sender`` where the deployment has no sender: KAKAO_SENDER=1 in deploy.env is named."""
    deploy_env(tmp_path, bucket, KAKAO_REDIRECT_URI=CALLBACK)

    result = claim_url(tmp_path, "--sender")

    assert result.returncode == 1 and result.stdout == ""
    assert "KAKAO_SENDER=1" in result.stderr and "deploy.env" in result.stderr


@pytest.mark.parametrize("line", ["kakao_client_secret=TOP-SECRET-1", "export X=TOP-SECRET-1"])
def test_a_line_it_cannot_read_is_named_by_number_never_shown(tmp_path: Path, line: str) -> None:
    """deploy.env is parsed as deploy.sh parses it, never run: a line that is not KEY=VALUE is
    named by its number and never printed (it may hold a secret)."""
    (tmp_path / "deploy.env").write_text(f"# settings\nREGION=asia-northeast3\n{line}\n")

    result = claim_url(tmp_path)

    assert result.returncode == 1
    assert "line 3" in result.stderr and "TOP-SECRET-1" not in result.stderr + result.stdout


def test_an_env_file_that_is_not_there_is_named(tmp_path: Path) -> None:
    """--env-file naming no file: said so, nothing else tried."""
    result = claim_url(tmp_path, "--env-file", str(tmp_path / "prod.env"))

    assert result.returncode == 1 and "no such file" in result.stderr
