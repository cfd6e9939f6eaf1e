"""How every local run starts the function: one command line, shared by make run, the tests
and the benchmark."""

from __future__ import annotations

import sys
from pathlib import Path


def function_command(target: str, source: Path, port: int) -> list[str]:
    """functions-framework serving ``target`` from ``source`` on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "functions_framework",
        "--target",
        target,
        "--source",
        str(source),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
