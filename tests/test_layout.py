"""The package's layout is its architecture: imports point downward, and the client a script
installs loads nothing of the server's (docs/en/how-it-works.md draws the same map)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "token_logic"
FOUNDATION = {  # and errors.py, below all
    "checks",
    "clock",
    "budget",
    "language",
    "network",
    "log",
    "retry",
    "logins",
}
# The server's layers, top to bottom, as docs/en/how-it-works.md draws them: each may import its
# own layer and any below it, never one above.
LAYERS = ["web", "service", "storage", "model", "kakao", "foundation", "errors"]
# What the client stands on of Kakao's side: the API, its codes, messages to the owner.
CLIENT_KAKAO = {
    "kakao.api",
    "kakao.codes",
    "kakao.message_parts",
    "kakao.talk",
    "kakao.talk_failures",
    "kakao.to_owner",
}
ALLOWED = {part: set(LAYERS[index:]) for index, part in enumerate(LAYERS)}
ALLOWED["errors"] = set()  # the exception tree imports nothing of the package
ALLOWED.update(
    {
        # Beside the server, not above it: Kakao's API for memos and messages to friends, the
        # version from the package.
        "client": {"errors", "foundation", *CLIENT_KAKAO, "client", "package"},
        "wiring": ALLOWED["service"],  # builds the service; the edges above use it
        # The store through wiring; without it (the kakao-token wheel) a ConfigError.
        "access_token": {"errors", "foundation", "client", "wiring"},
    }
)


def part_of(module: str) -> str:
    """The part a module (dotted, under token_logic) belongs to."""
    first = module.split(".")[0]
    if not module:
        return "package"
    if first in FOUNDATION:
        return "foundation"
    if first in ("config", "tokens", "problems"):
        return "model"
    return first


def parsed(path: Path) -> ast.Module:
    """A module's syntax tree, parsed when this file is collected: Python 3.11's parser can
    fail (SystemError: AST constructor recursion depth mismatch, CPython gh-106905) while other
    threads run, and the servers of earlier tests in the same worker may still have some."""
    return _TREES[path]


def imports_of(path: Path) -> set[str]:
    """Every token_logic module a file imports, lazily inside functions too (dotted, relative
    to token_logic); names imported from a package count as that package's."""
    here = path.relative_to(PACKAGE).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(here[: len(here) - node.level + 1])
            found.add(".".join(base + ([node.module] if node.module else [])))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("token_logic"):
            found.add(node.module.removeprefix("token_logic").lstrip("."))  # type: ignore[union-attr]
    return found


def package_modules() -> list[Path]:
    """Every module but the command line and the package's public names, which stand above
    every part and may use any."""
    above = {PACKAGE / "__main__.py", PACKAGE / "__init__.py"}
    return sorted(
        p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts and p not in above
    )


_TREES = {
    path: ast.parse(path.read_text())
    for path in PACKAGE.rglob("*.py")
    if "__pycache__" not in path.parts
}


@pytest.mark.parametrize("path", package_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_downward(path: Path) -> None:
    """Each module imports only its own part and the parts below it."""
    module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    part = part_of(module.removesuffix(".__init__"))
    allowed = ALLOWED[part]

    wrong = {
        imported
        for imported in imports_of(path)
        if part_of(imported) not in allowed and imported not in allowed
    }

    assert not wrong, f"{module} ({part}) imports {sorted(wrong)}"


def test_the_package_root_loads_only_the_exception_tree() -> None:
    """``import token_logic`` costs a script nothing: every other public name loads on use."""
    tree = parsed(PACKAGE / "__init__.py")
    eager = {
        node.module
        for node in tree.body  # module level only: the TYPE_CHECKING block is an `if`
        if isinstance(node, ast.ImportFrom) and node.level
    }

    assert eager == {"errors"}


@pytest.mark.parametrize(
    "module", ["token_logic.client.cli", "token_logic.client.github_action", "token_logic"]
)
def test_the_client_loads_nothing_of_the_server(module: str) -> None:
    """What ``pip install`` and the GitHub Action run imports no server module, nor flask or
    google-cloud-storage, and `get_access_token` is one import away."""
    script = (
        f"import sys, json, {module}\n"
        "from token_logic import get_access_token\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = modules_loaded_by(script)
    ours = [
        m.removeprefix("token_logic").lstrip(".") for m in loaded if m.startswith("token_logic")
    ]

    assert "client.remote" in ours
    assert [m for m in ours if not _client_side(m)] == []
    assert [m for m in loaded if m.split(".")[0] in ("flask", "functions_framework")] == []
    assert [m for m in loaded if m.startswith(("google.cloud.storage", "google.auth"))] == []


def _client_side(module: str) -> bool:
    """The client, what it stands on (Kakao's API for memos and messages), and the public
    names."""
    return module in ("", "access_token", "errors", "kakao", *CLIENT_KAKAO) or part_of(module) in (
        "client",
        "foundation",
    )


def test_the_command_line_loads_no_web_module() -> None:
    """``python -m token_logic`` needs no HTTP edge: its words come from problems.py and its
    summaries from service/, so neither web/ nor flask loads."""
    assert not {m for m in imports_of(PACKAGE / "__main__.py") if part_of(m) == "web"}
    script = "import sys, json, token_logic.__main__\nprint(json.dumps(sorted(sys.modules)))"
    loaded = modules_loaded_by(script)

    assert [m for m in loaded if m.startswith("token_logic.web")] == []
    assert [m for m in loaded if m.split(".")[0] in ("flask", "functions_framework")] == []


def modules_loaded_by(script: str) -> list[str]:
    """The module names a fresh ``python -P`` has loaded once ``script`` has printed them (as
    JSON, its last act), run from this checkout alone."""
    done = subprocess.run(
        [sys.executable, "-P", "-c", script],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded
