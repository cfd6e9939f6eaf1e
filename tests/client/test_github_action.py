"""The GitHub Action (action.yml): its script run as GitHub runs it (inputs as INPUT_*, a
GITHUB_OUTPUT file, the action's own checkout as GITHUB_ACTION_PATH), against the token
function behind Cloud Run's invoker check, with GitHub's OIDC and Google's STS and IAM
Credentials faked; and its metadata and the example workflow checked by GitHub's schemas and
actionlint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dev.fake_kakao_talk import FRIEND_SEND_PATH
from dev.servers import free_port
from tests.conftest import ROOT
from tests.endpoint import PERSON, Endpoint, running_endpoint
from tests.fake_google import PROVIDER, READER, FakeFederation, id_token_for, jwt_claims
from tests.helpers import REDIRECT_URI
from tests.linters import CHECK_JSONSCHEMA, actionlint
from token_logic.logins import SENDER

pytestmark = pytest.mark.slow  # runs the Action's step as subprocesses

SCRIPT = ROOT / "action" / "get-token.sh"


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    with running_endpoint(tmp_path, {PERSON, READER}) as served:
        yield served


@pytest.fixture
def federation() -> Iterator[FakeFederation]:
    fake = FakeFederation("me/bot")
    yield fake
    fake.stop()


class Step:
    """One run of the action's step; stdout and GITHUB_OUTPUT share one file, so the order in
    which the runner would see the mask and the output shows."""

    def __init__(
        self, tmp_path: Path, python: str = sys.executable, workspace: Path | None = None
    ) -> None:
        self.tmp_path = tmp_path
        self.workspace = workspace or tmp_path  # the job's working directory
        self.bin = tmp_path / "bin"
        self.bin.mkdir(exist_ok=True)
        link = self.bin / "python3"
        if not link.exists():
            link.symlink_to(python)
        self.transcript = tmp_path / "transcript"

    def run(self, **inputs: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_OUTPUT": str(self.transcript),
            "RUNNER_TEMP": str(self.tmp_path),
            "GITHUB_WORKSPACE": str(self.workspace),
            **{k: v for k, v in inputs.items() if not k.startswith("INPUT_")},
            **{f"INPUT_{k.upper()}": v for k, v in inputs.items() if k.islower()},
        }
        self.transcript.write_text("")
        with self.transcript.open("a") as out:
            return subprocess.run(
                [str(SCRIPT)],
                env=env,
                stdout=out,
                stderr=subprocess.PIPE,
                text=True,
                cwd=self.workspace,
                timeout=180,
                check=False,
            )

    def lines(self) -> list[str]:
        return self.transcript.read_text().splitlines()

    def outputs(self) -> dict[str, str]:
        pairs = [line.split("=", 1) for line in self.lines() if "=" in line and "::" not in line]
        return dict(pairs)


def test_an_id_token_gives_a_masked_access_token(tmp_path: Path, endpoint: Endpoint) -> None:
    """The mask comes before the value anywhere else; outputs: access_token and expires_at."""
    document = endpoint.log_in()
    step = Step(tmp_path)

    result = step.run(url=endpoint.url, id_token=id_token_for(endpoint.url, PERSON))

    assert result.returncode == 0, (result.stderr, step.lines())
    lines = step.lines()
    mask = lines.index(f"::add-mask::{document['access_token']}")
    output = lines.index(f"access_token={document['access_token']}")
    assert mask < output
    assert step.outputs() == {
        "access_token": document["access_token"],
        "expires_at": str(document["expires_at"]),
    }
    assert document["refresh_token"] not in step.transcript.read_text()


def test_workload_identity_gets_its_own_id_token(
    tmp_path: Path, endpoint: Endpoint, federation: FakeFederation
) -> None:
    """workload_identity_provider + service_account: GitHub's OIDC token, STS, then an ID token
    for the reader account with the URL as audience; no key anywhere."""
    document = endpoint.log_in()
    step = Step(tmp_path)

    result = step.run(
        url=endpoint.url,
        workload_identity_provider=PROVIDER,
        service_account=READER,
        min_valid="600",
        **federation.job_env(),
    )

    assert result.returncode == 0, (result.stderr, step.lines())
    assert step.outputs()["access_token"] == document["access_token"]
    assert federation.calls == ["github", "sts", "iam"]
    assert jwt_claims(federation.issued[0])["aud"] == endpoint.url
    assert endpoint.check.bearers == federation.issued


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("no_permission", "add `permissions: id-token: write`"),
        ("repository_not_admitted", "rejected by the attribute condition"),
        ("may_not_act_as_reader", "may not act as that account"),
        ("project_id_not_number", "with the project number"),
        ("both_ways", "not both"),
        ("no_url", "the `url` input is empty"),
        ("bad_min_valid", "the `min_valid` input must be whole seconds"),
    ],
)
def test_each_failure_is_one_error_line_and_no_output(
    tmp_path: Path,
    endpoint: Endpoint,
    federation: FakeFederation,
    change: str,
    expected: str,
) -> None:
    """Every failure ends the step with exit 1, one `::error` line naming the fix, and no
    output written."""
    endpoint.log_in()
    inputs = {
        "url": endpoint.url,
        "workload_identity_provider": PROVIDER,
        "service_account": READER,
        **federation.job_env(),
    }
    if change == "no_permission":
        del inputs["ACTIONS_ID_TOKEN_REQUEST_URL"]
    elif change == "repository_not_admitted":
        federation.repositories.clear()
    elif change == "may_not_act_as_reader":
        federation.impersonators.clear()
    elif change == "project_id_not_number":
        inputs["workload_identity_provider"] = PROVIDER.replace("123456789012", "my-project")
    elif change == "both_ways":
        inputs["id_token"] = id_token_for(endpoint.url, PERSON)
    elif change == "no_url":
        inputs["url"] = ""
    elif change == "bad_min_valid":
        inputs["min_valid"] = "1h"
    step = Step(tmp_path)

    result = step.run(**inputs)

    assert result.returncode == 1
    errors = [line for line in step.lines() if line.startswith("::error title=kakao-token::")]
    assert len(errors) == 1 and expected in errors[0], step.lines()
    assert step.outputs() == {}
    assert federation.request_token not in step.transcript.read_text()


def test_a_dead_login_names_the_login_url(tmp_path: Path, endpoint: Endpoint) -> None:
    """The function's own refusal reaches the log: where a person logs in again."""
    endpoint.log_in()
    endpoint.kill_login()
    step = Step(tmp_path)

    result = step.run(url=endpoint.url, id_token=id_token_for(endpoint.url, PERSON))

    assert result.returncode == 1
    assert any(REDIRECT_URI in line for line in step.lines() if line.startswith("::error"))
    assert step.outputs() == {}


def test_a_runner_python_without_requests_gets_it_in_a_venv(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    """The runner's python3 lacks requests: the step makes a venv in RUNNER_TEMP with requests
    alone (nothing of the server), and works."""
    probe = subprocess.run(["/usr/bin/python3", "-c", "import requests"], check=False)
    if probe.returncode == 0:
        pytest.skip("this machine's /usr/bin/python3 already has requests")
    document = endpoint.log_in()
    step = Step(tmp_path, python="/usr/bin/python3")

    result = step.run(url=endpoint.url, id_token=id_token_for(endpoint.url, PERSON))

    assert result.returncode == 0, (result.stderr, step.lines())
    assert step.outputs()["access_token"] == document["access_token"]
    installed = subprocess.run(
        [str(tmp_path / "kakao-token-venv" / "bin" / "python"), "-m", "pip", "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert "requests" in installed and "flask" not in installed and "google" not in installed


def test_action_metadata_passes_githubs_schema() -> None:
    """action.yml is valid action metadata (GitHub's schema, vendored by check-jsonschema)."""
    result = subprocess.run(
        [*CHECK_JSONSCHEMA, "vendor.github-actions", str(ROOT / "action.yml")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_workflow_passes_actionlint_and_uses_the_actions_inputs() -> None:
    """The README's workflow: actionlint and GitHub's workflow schema find nothing, and it
    passes exactly inputs that action.yml declares (actionlint cannot check that), with
    `id-token: write`."""
    workflow = ROOT / "examples" / "kakao-memo.yml"
    lint = actionlint(workflow)
    schema = subprocess.run(
        [*CHECK_JSONSCHEMA, "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
        check=False,
    )
    declared = set(yaml.safe_load((ROOT / "action.yml").read_text())["inputs"])
    parsed = yaml.safe_load(workflow.read_text())
    (step,) = [s for s in parsed["jobs"]["memo"]["steps"] if "uses" in s]

    assert lint.returncode == 0, lint.stdout
    assert schema.returncode == 0, schema.stdout
    assert set(step["with"]) <= declared
    assert parsed["permissions"]["id-token"] == "write"


def test_actionlint_does_find_mistakes(tmp_path: Path) -> None:
    """The linter used above really lints: a step output that does not exist is reported."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ steps.kakao.outputs.access_token }}\n"
    )

    result = actionlint(broken)

    assert result.returncode == 1 and "kakao" in result.stdout


def test_the_workflows_own_checkout_never_runs_inside_the_step(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    """A requests.py or token_logic/ in the job's working directory (the workflow's checkout)
    is not imported next to GitHub's OIDC request token."""
    document = endpoint.log_in()
    marker = tmp_path / "workspace-code-ran"
    planted = f"open({str(marker)!r}, 'w').write('ran')\n"
    (tmp_path / "requests.py").write_text(planted)
    (tmp_path / "token_logic").mkdir()
    (tmp_path / "token_logic" / "__init__.py").write_text(planted)
    step = Step(tmp_path)

    result = step.run(url=endpoint.url, id_token=id_token_for(endpoint.url, PERSON))

    assert result.returncode == 0, (result.stderr, step.lines())
    assert step.outputs()["access_token"] == document["access_token"]
    assert not marker.exists()


@pytest.mark.parametrize("on_pythonpath", [False, True], ids=["cwd", "cwd-and-pythonpath"])
def test_the_workspace_never_runs_while_the_step_builds_its_venv(
    on_pythonpath: bool, tmp_path: Path, endpoint: Endpoint, federation: FakeFederation
) -> None:
    """The runner's python3 lacks requests (actions/setup-python's), the workflow's checkout is
    the working directory, and a workflow's PYTHONPATH may name it too: the checkout's venv.py,
    pip/, requests.py and sitecustomize.py never run beside GitHub's OIDC request token (the
    review's finding 2), and the step still builds its venv and gives the token."""
    probe = subprocess.run(["/usr/bin/python3", "-c", "import requests"], check=False)
    if probe.returncode == 0:
        pytest.skip("this machine's /usr/bin/python3 already has requests")
    document = endpoint.log_in()
    workspace = tmp_path / "workspace"
    (workspace / "pip").mkdir(parents=True)
    planted = ["venv.py", "pip/__init__.py", "pip/__main__.py", "requests.py", "sitecustomize.py"]
    for name in planted:
        marker = tmp_path / f"ran-{name.replace('/', '-')}"
        (workspace / name).write_text(
            f"import os\nopen({str(marker)!r}, 'w').write("
            "os.environ.get('ACTIONS_ID_TOKEN_REQUEST_TOKEN', ''))\n"
        )
    step = Step(tmp_path, python="/usr/bin/python3", workspace=workspace)

    result = step.run(
        url=endpoint.url,
        workload_identity_provider=PROVIDER,
        service_account=READER,
        **federation.job_env(),
        **({"PYTHONPATH": str(workspace)} if on_pythonpath else {}),
    )

    assert sorted(marker.name for marker in tmp_path.glob("ran-*")) == []
    assert result.returncode == 0, (result.stderr, step.lines())
    assert step.outputs()["access_token"] == document["access_token"]
    assert (tmp_path / "kakao-token-venv" / "bin" / "python").exists()


def test_a_python_named_relative_to_the_checkout_still_runs(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    """The step runs from the action's own directory, yet KAKAO_TOKEN_PYTHON given relative
    to the job's working directory still names the workflow's Python."""
    document = endpoint.log_in()
    workspace = tmp_path / "workspace"
    (workspace / "tools").mkdir(parents=True)
    (workspace / "tools" / "python").symlink_to(sys.executable)
    step = Step(tmp_path, workspace=workspace)
    (step.bin / "python3").unlink()  # only the workflow's own Python is there

    result = step.run(
        url=endpoint.url,
        id_token=id_token_for(endpoint.url, PERSON),
        KAKAO_TOKEN_PYTHON="tools/python",
    )

    assert result.returncode == 0, (result.stderr, step.lines())
    assert step.outputs()["access_token"] == document["access_token"]


def test_a_failed_install_is_an_error_line_every_time(tmp_path: Path) -> None:
    """No PyPI: the step says it could not install requests, and says so again on a second
    use in the same job (a half-made venv is never taken for a working one)."""
    probe = subprocess.run(["/usr/bin/python3", "-c", "import requests"], check=False)
    if probe.returncode == 0:
        pytest.skip("this machine's /usr/bin/python3 already has requests")
    step = Step(tmp_path, python="/usr/bin/python3")

    runs = [
        step.run(url="https://x-du.a.run.app", id_token="a.b.c", PIP_NO_INDEX="1") for _ in range(2)
    ]

    for result in runs:
        assert result.returncode == 1
        errors = [line for line in step.lines() if line.startswith("::error")]
        assert len(errors) == 1 and "could not install requests" in errors[0], step.lines()


def test_google_unreachable_is_one_error_line_not_a_trace(
    tmp_path: Path, endpoint: Endpoint, federation: FakeFederation
) -> None:
    """STS not answering at all: retried, then one `::error` naming the outage."""
    step = Step(tmp_path)
    closed = f"http://127.0.0.1:{free_port()}/sts/v1/token"

    result = step.run(
        url=endpoint.url,
        workload_identity_provider=PROVIDER,
        service_account=READER,
        **{**federation.job_env(), "KAKAO_TOKEN_STS_URL": closed},
    )

    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in step.lines() if line.startswith("::error")]
    assert len(errors) == 1 and "did not answer" in errors[0]


# The message: inputs text, link and template_json; output result.

OWNER, BOT = 4127000001, 4127000002
HOSTILE = (
    'it\'s "quoted" $(touch "$MARKER") `touch "$MARKER"` %0A::error::injected\n'
    "::set-output name=result::delivered\n::add-mask::x\nresult<<EOF\nfailed\nEOF\n"
    "::stop-commands::x"
)


@pytest.fixture
def sender_endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    """A deployment with a sender; owner and sender logged in, friends, members."""
    with running_endpoint(tmp_path, {PERSON}, KAKAO_SENDER="1") as served:
        served.log_in(user_id=OWNER)
        served.log_in(SENDER, user_id=BOT)
        served.kakao.state.ready_to_message(BOT, OWNER)
        yield served


def delimited_outputs(lines: list[str]) -> dict[str, str]:
    """GITHUB_OUTPUT's delimiter form (name<<DELIMITER, the value's lines, DELIMITER), as the
    runner reads it."""
    outputs: dict[str, str] = {}
    index = 0
    while index < len(lines):
        start = re.fullmatch(r"(\w+)<<(ghadelimiter_[0-9a-f]{32})", lines[index])
        if start is None:
            index += 1
            continue
        end = lines.index(start[2], index + 1)
        outputs[start[1]] = "\n".join(lines[index + 1 : end])
        index = end + 1
    return outputs


def message_step(tmp_path: Path, endpoint: Endpoint, **inputs: str) -> tuple[Step, int]:
    step = Step(tmp_path)
    result = step.run(
        url=endpoint.url,
        id_token=id_token_for(endpoint.url, PERSON),
        KAKAO_API_BASE_URL=endpoint.kakao.url,
        **inputs,
    )
    return step, result.returncode


def test_the_text_is_sent_and_nothing_in_it_runs_or_reaches_the_log(
    tmp_path: Path, sender_endpoint: Endpoint
) -> None:
    """A text with quotes, command substitutions, %0A and workflow commands: it arrives
    exactly as given, from the sender to the owner; nothing in it runs; the log never shows it
    (so none of its :: lines is a command); result is `delivered`, written with a random
    delimiter; the access token outputs and mask stay as before."""
    marker = tmp_path / "text-ran"  # where $MARKER points, were anything in the text run
    text = HOSTILE

    step, code = message_step(tmp_path, sender_endpoint, text=text, MARKER=str(marker))

    assert code == 0, step.lines()
    assert sender_endpoint.kakao.state.friend_messages[-1]["text"] == text
    assert not marker.exists()
    transcript = step.transcript.read_text()
    assert "injected" not in transcript and "stop-commands" not in transcript
    commands = [line for line in step.lines() if line.startswith("::")]
    assert [line.split("::")[1] for line in commands] == ["add-mask", "add-mask"]  # two tokens
    assert delimited_outputs(step.lines()) == {"result": "delivered"}
    assert set(step.outputs()) == {"access_token", "expires_at"}
    assert f"delivered to {OWNER} (part 1/1)" in transcript


def test_the_senders_token_is_masked_before_anything_after_it_is_printed(
    tmp_path: Path, sender_endpoint: Endpoint
) -> None:
    """The sender's access token is never printed, but it is masked all the same, as the
    owner's is: its ::add-mask:: line comes before the lines that follow its arrival."""
    sender = json.loads((sender_endpoint.store_dir / "kakao_token.sender.json").read_text())

    step, code = message_step(tmp_path, sender_endpoint, text="가리기")

    lines = step.lines()
    assert code == 0, lines
    mask = lines.index(f"::add-mask::{sender['access_token']}")
    assert mask < lines.index(f"delivered to {OWNER} (part 1/1)")
    assert sum(sender["access_token"] in line for line in lines) == 1


def test_a_text_of_more_than_five_parts_needs_all_parts(
    tmp_path: Path, sender_endpoint: Endpoint
) -> None:
    """A text of six parts (its length may be anyone's: an issue title): the step fails with
    an ::error naming the limit and `all_parts`, result `failed: bad input`, nothing sent;
    with `all_parts: "true"` every part is sent."""
    text = "가" * 1100

    refused, refused_code = message_step(tmp_path, sender_endpoint, text=text)
    refused_lines = refused.lines()
    sent, sent_code = message_step(tmp_path, sender_endpoint, text=text, all_parts="true")

    errors = [line for line in refused_lines if line.startswith("::error")]
    assert refused_code == 1 and len(errors) == 1
    assert "limit of 5" in errors[0] and '`all_parts: "true"`' in errors[0]
    assert delimited_outputs(refused_lines) == {"result": "failed: bad input"}
    assert sent_code == 0, sent.lines()
    assert delimited_outputs(sent.lines()) == {"result": "delivered"}
    assert len(sender_endpoint.kakao.state.friend_messages) == 6


def test_a_refusal_fails_the_step_with_a_short_result(
    tmp_path: Path, sender_endpoint: Endpoint
) -> None:
    """Kakao refusing (-502): exit 1, one escaped ::error line with the cause and fix, result
    `failed: -502 not friends`; the token outputs were written before."""
    sender_endpoint.kakao.state.inject(FRIEND_SEND_PATH, "-502")

    step, code = message_step(tmp_path, sender_endpoint, text="안녕")

    assert code == 1
    errors = [line for line in step.lines() if line.startswith("::error title=kakao-token::")]
    assert len(errors) == 1 and "(-502)" in errors[0] and "KakaoTalk" in errors[0]
    assert delimited_outputs(step.lines()) == {"result": "failed: -502 not friends"}
    assert "access_token" in step.outputs()


def test_a_long_text_goes_in_parts_and_a_link_with_it(
    tmp_path: Path, sender_endpoint: Endpoint
) -> None:
    """450 characters and a link: three numbered parts, each opening the link."""
    text = " ".join(f"word{n:04d}" for n in range(45))  # 449 characters

    step, code = message_step(tmp_path, sender_endpoint, text=text, link="https://x.example/")

    messages = sender_endpoint.kakao.state.friend_messages
    assert code == 0, step.lines()
    assert [m["text"][:6] for m in messages] == ["(1/3) ", "(2/3) ", "(3/3) "]
    assert {m["template"]["link"]["web_url"] for m in messages} == {"https://x.example/"}


def test_a_template_json_is_sent_as_it_is(tmp_path: Path, sender_endpoint: Endpoint) -> None:
    """template_json: one of Kakao's templates as JSON text, delivered unchanged."""
    feed = {
        "object_type": "feed",
        "content": {"title": "CI", "link": {"web_url": "https://example.com"}},
    }

    step, code = message_step(tmp_path, sender_endpoint, template_json=json.dumps(feed))

    assert code == 0, step.lines()
    assert sender_endpoint.kakao.state.friend_messages[-1]["template"] == feed
    assert delimited_outputs(step.lines()) == {"result": "delivered"}


@pytest.mark.parametrize(
    ("inputs", "why"),
    [
        ({"text": "a", "template_json": '{"object_type": "text"}'}, "not both"),
        ({"text": "a", "link": "javascript:alert(1)"}, "`link` input"),
        ({"template_json": "[1]"}, "`template_json` input"),
        ({"text": "   "}, "blank"),
        ({"text": "a", "all_parts": "yes"}, "`all_parts` input"),
    ],
    ids=["both", "bad-link", "not-a-template", "blank", "bad-all-parts"],
)
def test_inputs_that_make_no_message_fail_the_step(
    tmp_path: Path, sender_endpoint: Endpoint, inputs: dict[str, str], why: str
) -> None:
    """Inputs that make no message: exit 1, an ::error naming the input, result `failed: bad
    input`, nothing sent."""
    step, code = message_step(tmp_path, sender_endpoint, **inputs)

    assert code == 1
    errors = [line for line in step.lines() if line.startswith("::error")]
    assert len(errors) == 1 and why in errors[0]
    assert delimited_outputs(step.lines()) == {"result": "failed: bad input"}
    assert sender_endpoint.kakao.state.friend_messages == []


def test_action_yml_declares_the_message_inputs_and_output() -> None:
    """text, link, template_json and all_parts reach the step as INPUT_* variables (never
    inside the script), and result is the step's output; `text` says the limit of parts."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    (step,) = action["runs"]["steps"]

    assert "at most 5 parts" in action["inputs"]["text"]["description"]
    assert "`all_parts`" in action["inputs"]["text"]["description"]
    for name in ("text", "link", "template_json", "all_parts"):
        assert action["inputs"][name]["required"] is False
        assert step["env"][f"INPUT_{name.upper()}"] == f"${{{{ inputs.{name} }}}}"
        assert "inputs." not in step["run"]
    assert action["outputs"]["result"]["value"] == "${{ steps.token.outputs.result }}"
