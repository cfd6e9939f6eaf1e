"""`pip install kakao-token` gives scripts `kakao-token` and `get_access_token()` with requests
alone, run as a stranger's repository would run it: the wheel the release builds
(.github/release/build.sh), in a fresh virtual environment outside this checkout, against the
token function behind Cloud Run's invoker check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev.servers import free_port
from tests.conftest import ROOT
from tests.endpoint import PERSON, Endpoint, running_endpoint
from tests.fake_google import id_token_for
from tests.helpers import REDIRECT_URI
from token_logic import __version__

pytestmark = pytest.mark.slow  # builds and installs the wheel in a fresh venv

# What a client may bring: requests and its own dependencies, and the venv's tools.
CLIENT_PACKAGES = {
    "kakao-token",
    "requests",
    "urllib3",
    "idna",
    "charset-normalizer",
    "certifi",
    "pip",
    "setuptools",
}
SERVER_PACKAGES = {"functions-framework", "flask", "werkzeug", "google-cloud-storage"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel the release builds from this checkout; its bin folder."""
    base = tmp_path_factory.mktemp("client")
    wheels = base / "wheels"
    subprocess.run(
        ["bash", str(ROOT / ".github" / "release" / "build.sh"), __version__, str(wheels)],
        env={**os.environ, "PYTHON": sys.executable},
        check=True,
        cwd=base,
        capture_output=True,
    )
    (wheel,) = wheels.glob("kakao_token-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True,
        cwd=base,
    )
    return venv / "bin"


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    with running_endpoint(tmp_path, {PERSON}) as served:
        yield served


def kakao_token(client: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed command, from a folder outside the checkout, with only ``env``."""
    return subprocess.run(
        [str(client / "kakao-token"), *args],
        env={"PATH": f"{client}:/usr/bin:/bin", **env},
        cwd=client.parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_wheel_brings_requests_and_no_server_package(client: Path) -> None:
    """Installed: only requests' family; token_logic comes from the venv, not this checkout."""
    listed = subprocess.run(
        [str(client / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {item["name"].lower() for item in json.loads(listed.stdout)}
    where = subprocess.run(
        [str(client / "python"), "-c", "import token_logic; print(token_logic.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=client.parent.parent,
    )

    assert names <= CLIENT_PACKAGES, names - CLIENT_PACKAGES
    assert not names & SERVER_PACKAGES
    assert where.stdout.startswith(str(client.parent))
    assert kakao_token(client, "--version").stdout.strip().startswith("kakao-token 0.")


def test_access_token_status_and_send_memo(client: Path, endpoint: Endpoint) -> None:
    """The three commands work with an ID token and the URL alone: no Kakao key anywhere."""
    document = endpoint.log_in()
    env = {
        "KAKAO_TOKEN_URL": endpoint.url,
        "KAKAO_TOKEN_ID_TOKEN": id_token_for(endpoint.url, PERSON),
        "KAKAO_API_BASE_URL": endpoint.kakao.url,
    }

    token = kakao_token(client, "access-token", "--leeway", "600", **env)
    status = kakao_token(client, "status", "--json", **env)
    memo = kakao_token(client, "send-memo", "설치한 클라이언트에서", **env)

    assert (token.returncode, token.stdout) == (0, document["access_token"] + "\n"), token.stderr
    assert json.loads(status.stdout)["user_id"] == document["user_id"]
    assert document["access_token"] not in status.stdout
    assert (memo.returncode, memo.stdout) == (0, "sent\n"), memo.stderr
    assert endpoint.kakao.state.memos[-1]["text"] == "설치한 클라이언트에서"


def test_get_access_token_from_the_installed_library(client: Path, endpoint: Endpoint) -> None:
    """`from token_logic import get_access_token` works in a script's own environment."""
    document = endpoint.log_in()
    script = (
        "from token_logic import get_access_token; import sys; sys.stdout.write(get_access_token())"
    )

    result = subprocess.run(
        [str(client / "python"), "-c", script],
        env={
            "KAKAO_TOKEN_URL": endpoint.url,
            "KAKAO_TOKEN_ID_TOKEN": id_token_for(endpoint.url, PERSON),
        },
        cwd=client.parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )

    assert (result.returncode, result.stdout) == (0, document["access_token"]), result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "KAKAO_TOKEN_URL is not set"),
        ({"KAKAO_TOKEN_URL": ""}, "KAKAO_TOKEN_URL is empty"),
        ({"KAKAO_TOKEN_URL": "http://kakao-token.example"}, "must be the token function's URL"),
        ({"LANG": "ko_KR.UTF-8"}, "KAKAO_TOKEN_URL이 설정되지 않았습니다"),
        ({"LANG": "ko_KR.UTF-8", "KAKAO_TOKEN_URL": ""}, "KAKAO_TOKEN_URL 값이 비어 있습니다"),
    ],
)
def test_a_missing_url_is_an_error_about_that_variable(
    client: Path, env: dict[str, str], expected: str
) -> None:
    """No URL (an unset GitHub variable expands to ""): the message is about KAKAO_TOKEN_URL,
    never a request for KAKAO_REST_API_KEY, which a reader must not hold."""
    result = kakao_token(client, "access-token", **env)

    assert result.returncode == 1
    assert expected in result.stderr and "KAKAO_REST_API_KEY" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_cloud_runs_refusals_are_told_apart_with_their_fix(
    client: Path, endpoint: Endpoint
) -> None:
    """An expired ID token and an identity that is not a reader: Cloud Run's own HTML 401/403,
    each with its own one-line fix; one given for another audience is not even sent. None
    reaches the function."""
    endpoint.log_in()
    expired = id_token_for(endpoint.url, PERSON, lifetime=-60)
    elsewhere = id_token_for("https://other-abc-du.a.run.app", PERSON)
    stranger = id_token_for(endpoint.url, "ci@other.iam.gserviceaccount.com")

    results = {
        name: kakao_token(
            client, "access-token", KAKAO_TOKEN_URL=endpoint.url, KAKAO_TOKEN_ID_TOKEN=token
        )
        for name, token in (("expired", expired), ("elsewhere", elsewhere), ("stranger", stranger))
    }

    assert all(result.returncode == 1 for result in results.values())
    assert "expired at" in results["expired"].stderr
    assert "Fetch a fresh one" in results["expired"].stderr
    assert f"not for {endpoint.url}; it was not sent" in results["elsewhere"].stderr
    assert (
        "Add serviceAccount:ci@other.iam.gserviceaccount.com to TOKEN_READERS"
        in results["stranger"].stderr
    )
    assert endpoint.check.forwarded == 0
    for token, result in zip((expired, elsewhere, stranger), results.values(), strict=True):
        assert token not in result.stderr and result.stderr.count("\n") == 1


def test_the_functions_own_errors_name_the_login_url(client: Path, endpoint: Endpoint) -> None:
    """Nothing stored, then a dead login: the function's JSON message, with where to log in."""
    env = {
        "KAKAO_TOKEN_URL": endpoint.url,
        "KAKAO_TOKEN_ID_TOKEN": id_token_for(endpoint.url, PERSON),
    }
    nothing = kakao_token(client, "access-token", **env)
    endpoint.log_in()
    endpoint.kill_login()

    dead = kakao_token(client, "access-token", **env)

    assert nothing.returncode == 1 and "Log in first" in nothing.stderr
    assert dead.returncode == 1 and f"Log in again at {REDIRECT_URI}" in dead.stderr


def test_the_network_is_named_as_the_cause(client: Path) -> None:
    """Nobody listening: after the retries, one line about the network and the URL."""
    url = f"http://127.0.0.1:{free_port()}"

    result = kakao_token(client, "access-token", KAKAO_TOKEN_URL=url, KAKAO_TOKEN_ID_TOKEN="x.y.z")

    assert result.returncode == 1
    assert "did not answer" in result.stderr and "check the network" in result.stderr
    assert url in result.stderr


def test_bad_usage_exits_2(client: Path) -> None:
    """An unknown command or a memo Kakao would refuse: exit 2 before any request."""
    unknown = kakao_token(client, "refresh", KAKAO_TOKEN_URL="https://t.example")
    too_long = kakao_token(client, "send-memo", "가" * 201, KAKAO_TOKEN_URL="https://t.example")

    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
    assert too_long.returncode == 2 and "1 to 200 characters" in too_long.stderr


def test_every_module_of_the_wheel_imports_and_the_command_answers(client: Path) -> None:
    """Each module the wheel brings imports in the fresh venv (nothing it needs was left out),
    and `kakao-token --version` and `--help` answer without a URL."""
    python = str(client / "python")
    listed = subprocess.run(
        [python, "-c", _LIST_INSTALLED_MODULES],
        capture_output=True,
        text=True,
        check=True,
        cwd=client.parent.parent,
    )
    modules = listed.stdout.split()

    import_all = "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]"
    imported = subprocess.run(
        [python, "-c", import_all, *modules],
        capture_output=True,
        text=True,
        check=False,
        cwd=client.parent.parent,
    )
    version = kakao_token(client, "--version")
    usage = kakao_token(client, "--help")

    assert "token_logic.client.cli" in modules and "token_logic.access_token" in modules
    assert imported.returncode == 0, imported.stderr
    assert (version.returncode, version.stdout) == (0, f"kakao-token {__version__}\n")
    assert usage.returncode == 0 and "access-token" in usage.stdout


# Every token_logic module in the venv's site-packages, dotted.
_LIST_INSTALLED_MODULES = """
import pathlib, token_logic
root = pathlib.Path(token_logic.__file__).parent
for path in sorted(root.rglob("*.py")):
    parts = path.relative_to(root.parent).with_suffix("").parts
    print(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
"""


@pytest.mark.parametrize("module", ["web", "service", "storage", "wiring", "config", "tokens"])
def test_no_server_module_is_installed(client: Path, module: str) -> None:
    """The server stays in the checkout and the deployed function: the wheel has none of it,
    and `python -m token_logic` (the server's command line) is not there either."""
    look_up = f"import importlib.util as u; print(u.find_spec('token_logic.{module}'))"
    found = subprocess.run(
        [str(client / "python"), "-c", look_up],
        capture_output=True,
        text=True,
        check=True,
        cwd=client.parent.parent,
    )
    server_cli = subprocess.run(
        [str(client / "python"), "-m", "token_logic"],
        capture_output=True,
        text=True,
        check=False,
        cwd=client.parent.parent,
    )

    assert found.stdout == "None\n"
    assert server_cli.returncode == 1
    assert "No module named token_logic.__main__" in server_cli.stderr


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ({}, "KAKAO_TOKEN_URL is not set: "),
        ({"LANG": "C"}, "KAKAO_TOKEN_URL is not set: "),
        ({"LANG": "ko_KR.UTF-8"}, "KAKAO_TOKEN_URL이 설정되지 않았습니다: "),
        ({"LC_ALL": "C", "KAKAO_TOKEN_LANG": "ko"}, "KAKAO_TOKEN_URL이 설정되지 않았습니다: "),
    ],
)
def test_get_access_token_without_the_url_names_the_url(
    client: Path, locale: dict[str, str], expected: str
) -> None:
    """In the client-only install, get_access_token() with no KAKAO_TOKEN_URL is a ConfigError
    that says to set it (there is no store to fall back to), not an ImportError, in the
    reader's language; the same words as the kakao-token command's."""
    script = (
        "from token_logic import ConfigError, get_access_token\n"
        "try:\n    get_access_token()\n"
        "except ConfigError as exc:\n    print(exc.missing, exc)\n"
    )

    result = subprocess.run(
        [str(client / "python"), "-c", script],
        env={"PATH": "/usr/bin:/bin", **locale},
        capture_output=True,
        text=True,
        check=False,
        cwd=client.parent.parent,
    )
    command = kakao_token(client, "access-token", **locale)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"('KAKAO_TOKEN_URL',) {expected}")
    assert "KAKAO_REST_API_KEY" not in result.stdout
    assert command.stderr == "error: " + result.stdout.removeprefix("('KAKAO_TOKEN_URL',) ")
