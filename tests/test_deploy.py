"""deploy.sh, run against a recording gcloud: first run, re-run, bad input; flags checked
against the real gcloud CLI when it is installed."""

from __future__ import annotations

import json
import os
import re
import shlex
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

    assert {"TOKEN_READERS", "KAKAO_ADMIN_KEY", "KAKAO_APP_ID", "ALERT_EMAIL"} <= set(names)
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
    assert f"KAKAO_TOKEN_URL={TOKEN_URL} python -m token_logic access-token" in result.stdout


def test_the_sweep_gets_a_whole_cpu_and_the_others_stay_small(deployer: Deployer) -> None:
    """256Mi alone means 0.167 vCPU: too little for a sweep of thousands (BENCHMARKS.md)."""
    result = deployer.run(**FULL_INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    [refresh] = find(calls, "functions", "deploy", "kakao-refresh")
    assert (flag(refresh, "cpu"), flag(refresh, "memory")) == ("1", "512Mi")
    others = find(calls, "functions", "deploy", "kakao-callback")
    others += find(calls, "functions", "deploy", "kakao-token")
    assert len(others) >= 2
    for call in others:
        assert flag(call, "memory") == "256Mi", call[3]
        assert not any(arg.startswith("--cpu") for arg in call), call[3]


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
    """The admin key: a secret on stdin, readable by the runtime account, mounted on the callback
    alone; the app id is a plain variable there; the unlink webhook URL and its place are shown."""
    result = deployer.run(**FULL_INPUTS)

    assert result.returncode == 0, result.stderr
    calls = deployer.calls()
    created = [
        e for e in deployer.entries() if e["args"][:3] == ["secrets", "create", "kakao-admin-key"]
    ]
    assert [e["stdin_length"] for e in created] == [len(FULL_INPUTS["KAKAO_ADMIN_KEY"])]
    granted = [c[2] for c in find(calls, "secrets", "add-iam-policy-binding")]
    assert "kakao-admin-key" in granted
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
    """No KAKAO_ADMIN_KEY: no admin secret, no grant on it, no webhook URL printed."""
    result = deployer.run(**INPUTS)

    assert result.returncode == 0, result.stderr
    assert "kakao-admin-key" not in deployer.log.read_text()
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


def real_gcloud() -> str | None:
    return shutil.which("gcloud", path="/usr/bin:/usr/local/bin:/usr/lib/google-cloud-sdk/bin")


@pytest.mark.skipif(real_gcloud() is None, reason="the real gcloud CLI is not installed")
def test_every_recorded_command_parses_in_the_real_gcloud(deployer: Deployer) -> None:
    """The real gcloud, without credentials, refuses each command only for lack of an account."""
    config = tempfile.mkdtemp(prefix="gcloud-config-")
    unique: set[tuple[str, ...]] = set()
    sharded = {**FULL_INPUTS, "REFRESH_SHARDS": "3"}
    fewer = {**FULL_INPUTS, "REFRESH_SHARDS": "2"}  # updates two jobs, deletes the third
    # The second full run updates the policy; the sharded ones create, update and delete jobs.
    for inputs in (INPUTS, FULL_INPUTS, FULL_INPUTS, sharded, fewer):
        deployer.run(**inputs)
        for entry in deployer.entries():
            args = entry["args"]
            if "policy" in entry:  # deploy.sh deleted it; gcloud reads it while parsing
                kept = Path(tempfile.mkstemp(prefix="policy-", suffix=".json", dir=config)[1])
                kept.write_text(entry["policy"])
                args = [
                    f"--policy-from-file={kept}" if "policy-from-file" in a else a for a in args
                ]
            unique.add(tuple(args))
    for policy in deployer.policies():  # the commands the alert mail tells a person to run
        for command in re.findall(r"`(gcloud [^`]+)`", policy["documentation"]["content"]):
            unique.add(tuple(shlex.split(command)[1:]))
    checked = {args[:4] for args in unique}
    assert ("logging", "read") in {args[:2] for args in unique}
    assert ("alpha", "monitoring", "policies", "create") in checked
    assert ("alpha", "monitoring", "policies", "update") in checked
    assert ("beta", "monitoring", "channels", "create") in checked

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


def gcloud_python() -> tuple[Path, Path] | None:
    gcloud = real_gcloud()
    if gcloud is None:
        return None
    root = Path(gcloud).resolve().parents[1]
    python = root / "platform" / "bundledpythonunix" / "bin" / "python3"
    return (python, root / "lib") if python.exists() and (root / "lib").is_dir() else None


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


@pytest.mark.skipif(gcloud_python() is None, reason="gcloud's bundled Python is not installed")
def test_alert_policy_has_only_fields_the_monitoring_api_knows(deployer: Deployer) -> None:
    """Every field of the policy file is one of AlertPolicy's, as gcloud's API client has them."""
    deployer.run(**FULL_INPUTS)
    [policy] = deployer.policies()
    misspelt = {**policy, "alertStrategy": {"notificationRateLimits": {"period": "3600s"}}}

    assert unknown_fields(policy) == []
    assert unknown_fields(misspelt) == [".alertStrategy.notificationRateLimits"]


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
