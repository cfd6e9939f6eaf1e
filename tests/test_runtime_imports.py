"""The deployed function loads each part of the package on first use (main.py, web/callback.py:
a cheap cold start), so a module that cannot be imported on the runtime would no longer stop a
deploy: the new revision would go live and fail on requests. Here every module is imported
where the deployment's requirements.txt alone is installed, before anything is deployed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # installs requirements.txt into a fresh venv

_IMPORT_EVERYTHING = r"""
import importlib, json, pkgutil, sys
import token_logic
failed = {}
names = ["main"] + [m.name for m in pkgutil.walk_packages(token_logic.__path__, "token_logic.")]
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - every failure is the answer
        failed[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"imported": len(names), "failed": failed}))
"""


def test_every_module_imports_with_the_runtime_requirements_alone(tmp_path: Path) -> None:
    """A fresh venv with only requirements.txt (what Cloud Functions installs): main.py and
    every module of token_logic import, so no request can be the first to find a missing
    dependency or a broken module."""
    venv = tmp_path / "runtime"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "-r", str(ROOT / "requirements.txt")],
        check=True,
        capture_output=True,
    )

    done = subprocess.run(
        [python, "-P", "-c", _IMPORT_EVERYTHING],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}
    assert result["imported"] > 50
