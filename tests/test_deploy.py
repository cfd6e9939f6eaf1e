"""deploy.sh, run against a recording gcloud: first run, re-run, bad input; flags checked
against the real gcloud CLI when it is installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

INPUTS = {
    "GOOGLE_CLOUD_PROJECT": "kakao-demo-123",
    "TOKEN_BUCKET": "kakao-demo-123-tokens",
    "KAKAO_REST_API_KEY": "rest-key-0123456789",
    "KAKAO_CLIENT_SECRET": "client-secret-SHOULD-NOT-LEAK",
    "KAKAO_SCOPE": "talk_message,openid",
    "ALLOWED_KAKAO_USER_IDS": "4127000001,42",
}
CALLBACK_URL = "https://kakao-callback-abc123-du.a.run.app"


class Deployer:
    """Runs deploy.sh with the fake gcloud first on PATH and reads what it recorded."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        stub = self.bin / "gcloud"
        stub.write_text(
            f"#!{sys.executable}\nimport runpy\n"
            f"runpy.run_path({str(ROOT / 'tests' / 'fake_gcloud.py')!r}, "
            "run_name='__main__')\n"
        )
        stub.chmod(0o755)
        self.log = tmp_path / "gcloud.log"
        self.state = tmp_path / "gcloud-state.json"

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        self.log.write_text("")
        full_env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "FAKE_GCLOUD_LOG": str(self.log),
            "FAKE_GCLOUD_STATE": str(self.state),
            "HOME": str(self.bin.parent),
            **env,
        }
        return subprocess.run(
            ["bash", str(ROOT / "deploy.sh"), *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def calls(self) -> list[list[str]]:
        return [json.loads(line)["args"] for line in self.log.read_text().splitlines()]

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def find(calls: list[list[str]], *words: str) -> list[list[str]]:
    return [call for call in calls if call[: len(words)] == list(words)]


@pytest.fixture
def deployer(tmp_path: Path) -> Deployer:
    return Deployer(tmp_path)


def test_help_explains_every_input(deployer: Deployer) -> None:
    """--help exits 0 and names every input."""
    result = deployer.run("--help")

    assert result.returncode == 0
    for name in (
        "GOOGLE_CLOUD_PROJECT",
        "REGION",
        "TOKEN_BUCKET",
        "KAKAO_REST_API_KEY",
        "KAKAO_CLIENT_SECRET",
        "KAKAO_SCOPE",
        "ALLOWED_KAKAO_USER_IDS",
        "TOKEN_OBJECT",
        "REFRESH_SCHEDULE",
        "deploy.env",
    ):
        assert name in result.stdout
    assert deployer.calls() == []


def test_missing_inputs_fail_before_anything_is_created(deployer: Deployer) -> None:
    """Without the required inputs: exit 2 naming all of them, and no gcloud call at all."""
    result = deployer.run(GOOGLE_CLOUD_PROJECT="kakao-demo-123")

    assert result.returncode == 2
    for name in ("TOKEN_BUCKET", "KAKAO_REST_API_KEY", "KAKAO_CLIENT_SECRET"):
        assert name in result.stderr
    assert deployer.calls() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GOOGLE_CLOUD_PROJECT", "My Project"),
        ("TOKEN_BUCKET", "Bad_Bucket!"),
        ("REFRESH_SCHEDULE", "every 30 minutes"),
        ("ALLOWED_KAKAO_USER_IDS", "me"),
    ],
)
def test_malformed_inputs_are_refused_up_front(deployer: Deployer, name: str, value: str) -> None:
    """A malformed input is named before any gcloud call."""
    result = deployer.run(**{**INPUTS, name: value})

    assert result.returncode == 2 and name in result.stderr
    assert deployer.calls() == []


def test_first_run_creates_everything_safely(deployer: Deployer) -> None:
    """From an empty project: APIs, private versioned bucket, secrets, accounts, functions, job."""
    result = deployer.run(**INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    assert find(calls, "services", "enable")
    create = find(calls, "storage", "buckets", "create")[0]
    assert "--uniform-bucket-level-access" in create and "--public-access-prevention" in create
    assert "--location=asia-northeast3" in create
    assert any("--versioning" in c for c in find(calls, "storage", "buckets", "update"))
    assert {c[2] for c in find(calls, "secrets", "create")} == {
        "kakao-rest-api-key",
        "kakao-client-secret",
    }
    assert len(find(calls, "iam", "service-accounts", "create")) == 2
    binding = find(calls, "storage", "buckets", "add-iam-policy-binding")[0]
    assert "gs://kakao-demo-123-tokens" in binding and "--role=roles/storage.objectUser" in binding
    assert len(find(calls, "secrets", "add-iam-policy-binding")) == 2

    callback_deploys = find(calls, "functions", "deploy", "kakao-callback")
    assert len(callback_deploys) == 2  # once to learn its URL, once with it
    final = callback_deploys[-1]
    assert "--allow-unauthenticated" in final and "--gen2" in final
    assert any(arg.startswith("--runtime=python3") for arg in final)
    env_vars = next(arg for arg in final if arg.startswith("--set-env-vars="))
    assert f"KAKAO_REDIRECT_URI={CALLBACK_URL}" in env_vars
    assert "KAKAO_SCOPE=talk_message,openid" in env_vars
    assert "KAKAO_CLIENT_SECRET" not in env_vars and "KAKAO_REST_API_KEY" not in env_vars
    secrets_flag = next(arg for arg in final if arg.startswith("--set-secrets="))
    assert "KAKAO_CLIENT_SECRET=kakao-client-secret:latest" in secrets_flag

    refresh = find(calls, "functions", "deploy", "kakao-refresh")[0]
    assert "--no-allow-unauthenticated" in refresh
    invoker = find(calls, "functions", "add-invoker-policy-binding")
    assert [c[2] for c in invoker] == ["kakao-refresh"]
    assert any("kakao-token-scheduler@" in arg for arg in invoker[0])
    job = find(calls, "scheduler", "jobs", "create", "http")[0]
    assert (
        "--oidc-service-account-email=kakao-token-scheduler@kakao-demo-123.iam.gserviceaccount.com"
        in job
    )
    assert "--schedule=*/30 * * * *" in job and "--http-method=POST" in job

    assert CALLBACK_URL in result.stdout and "Redirect URI" in result.stdout


def test_secrets_never_appear_on_a_command_line_or_in_output(deployer: Deployer) -> None:
    """Secret values travel on stdin only."""
    result = deployer.run(**INPUTS)

    assert result.returncode == 0
    assert INPUTS["KAKAO_CLIENT_SECRET"] not in deployer.log.read_text()
    assert INPUTS["KAKAO_CLIENT_SECRET"] not in result.stdout + result.stderr
    assert any(e["stdin_length"] == len(INPUTS["KAKAO_CLIENT_SECRET"]) for e in deployer.entries())


def test_second_run_changes_nothing_that_is_right(deployer: Deployer) -> None:
    """Re-running creates nothing, adds no secret version, deploys the callback once."""
    deployer.run(**INPUTS)

    result = deployer.run(**INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    assert [c for c in calls if "create" in c] == []
    assert find(calls, "secrets", "versions", "add") == []
    assert len(find(calls, "functions", "deploy", "kakao-callback")) == 1
    assert find(calls, "scheduler", "jobs", "update", "http")


def test_a_changed_secret_gets_a_new_version(deployer: Deployer) -> None:
    """A new client secret adds a version to that secret only."""
    deployer.run(**INPUTS)

    deployer.run(**{**INPUTS, "KAKAO_CLIENT_SECRET": "rotated-secret"})

    added = find(deployer.calls(), "secrets", "versions", "add")
    assert [c[3] for c in added] == ["kakao-client-secret"]


def test_inputs_can_come_from_deploy_env(deployer: Deployer, tmp_path: Path) -> None:
    """A deploy.env file supplies inputs; the environment wins over it."""
    env_file = tmp_path / "deploy.env"
    env_file.write_text(
        "".join(f'{k}="{v}"\n' for k, v in INPUTS.items()) + "REGION=asia-northeast1\n"
    )

    result = deployer.run("--env-file", str(env_file), REGION="asia-northeast3")

    assert result.returncode == 0, result.stderr
    create = find(deployer.calls(), "storage", "buckets", "create")[0]
    assert "--location=asia-northeast3" in create


def real_gcloud() -> str | None:
    return shutil.which("gcloud", path="/usr/bin:/usr/local/bin:/usr/lib/google-cloud-sdk/bin")


@pytest.mark.skipif(real_gcloud() is None, reason="the real gcloud CLI is not installed")
def test_every_recorded_command_parses_in_the_real_gcloud(deployer: Deployer) -> None:
    """The real gcloud, without credentials, refuses each command only for lack of an account."""
    deployer.run(**INPUTS)
    deployer.run(**INPUTS)
    unique = {tuple(call) for call in deployer.calls()}
    config = tempfile.mkdtemp(prefix="gcloud-config-")

    def check(args: tuple[str, ...]) -> tuple[tuple[str, ...], int, str]:
        env = {**os.environ, "CLOUDSDK_CONFIG": config, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
        done = subprocess.run(
            [str(real_gcloud()), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return args, done.returncode, done.stderr

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(check, sorted(unique)))

    for args, code, stderr in results:
        assert code != 2, f"gcloud rejected {args}: {stderr}"
        assert "You do not currently have an active account selected" in stderr, (args, stderr)


@pytest.mark.skipif(real_gcloud() is None, reason="the real gcloud CLI is not installed")
def test_gcloudignore_uploads_only_the_function(tmp_path: Path) -> None:
    """The uploaded source is main.py, token_logic/ and requirements.txt: no tests, no tokens."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    tree = tmp_path / "tree"
    for name in [*tracked, ".gcloudignore"]:
        if (ROOT / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, tree / name)
    for leftover in ("kakao_token.json", "deploy.env", "tokens/1.json", ".venv/bin/python"):
        (tree / leftover).parent.mkdir(parents=True, exist_ok=True)
        (tree / leftover).write_text("secret")
    env = {**os.environ, "CLOUDSDK_CONFIG": str(tmp_path / "config")}

    listed = subprocess.run(
        [str(real_gcloud()), "meta", "list-files-for-upload", str(tree)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    uploaded = {Path(p).relative_to(tree).as_posix() if p.startswith("/") else p for p in listed}
    assert "main.py" in uploaded and "requirements.txt" in uploaded
    assert "token_logic/web.py" in uploaded
    assert all(
        p == "main.py" or p == "requirements.txt" or p.startswith("token_logic/") for p in uploaded
    ), uploaded
