"""How every local run starts the function: one command line, shared by make run, the tests
and the benchmark; and how make run waits for its servers and stops them."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

STARTUP_SECONDS = 60.0
STOP_SECONDS = 10.0


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


def wait_until_listening(
    servers: list[subprocess.Popen[bytes]], ports: list[int], stopped: threading.Event
) -> bool:
    """True once every port accepts connections; False if a server exits, ``stopped`` is set
    or STARTUP_SECONDS pass first."""
    deadline = time.monotonic() + STARTUP_SECONDS
    waiting = list(ports)
    while waiting and time.monotonic() < deadline:
        if stopped.is_set() or any(server.poll() is not None for server in servers):
            return False
        waiting = [port for port in waiting if not is_listening(port)]
        time.sleep(0.1)
    return not waiting


def stop_all(servers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to all at once (gunicorn stops gracefully), SIGKILL to any still there later."""
    for server in servers:
        server.terminate()
    for server in servers:
        try:
            server.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def port_is_free(port: int) -> bool:
    """Whether a server could bind 127.0.0.1:``port`` now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def is_listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
