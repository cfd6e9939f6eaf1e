"""How every local run starts the function: one command line on a TCP port, shared by the tests
and the benchmark, and its twin on a Unix socket for make run (whose ports belong to the checks
in dev/invoker_check.py); how make run starts, waits for and stops its servers."""

from __future__ import annotations

import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from dev.loopback import ipv6_loopback

STARTUP_SECONDS = 60.0
# Where test workers draw their ports (free_port): below Linux's ephemeral range.
_WORKER_PORTS = (20000, 32000)
STOP_SECONDS = 10.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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


def socket_function_command(target: str, source: Path, socket_path: Path) -> list[str]:
    """The same server for ``target`` on the Unix socket ``socket_path``, not a port."""
    return [sys.executable, "-m", "dev.function_socket", target, str(source), str(socket_path)]


def start_child(command: list[str], env: Mapping[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """``command`` as a child that ends when this process does, even by SIGKILL (on Linux).

    Start children before any thread of this process runs: a preexec_fn is only safe then.
    """
    return subprocess.Popen(command, env=env, cwd=cwd, preexec_fn=_dies_with_parent())


def _dies_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux for SIGTERM when the parent dies; None where there is no prctl.

    No handler of ours runs on SIGKILL, and an orphaned server would keep its port, so the next
    make run would fail with "in use". SIGTERM, as from Ctrl+C, lets gunicorn stop its workers.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the child
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(ctypes.c_int(PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before prctl: no signal will come
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def wait_until_listening(
    servers: list[subprocess.Popen[bytes]], sockets: list[Path], stopped: threading.Event
) -> bool:
    """True once every Unix socket accepts connections; False if a server exits, ``stopped``
    is set or STARTUP_SECONDS pass first."""
    deadline = time.monotonic() + STARTUP_SECONDS
    waiting = list(sockets)
    while waiting and time.monotonic() < deadline:
        if stopped.is_set() or any(server.poll() is not None for server in servers):
            return False
        waiting = [path for path in waiting if not is_serving(path)]
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


def free_port() -> int:
    """A port nothing listens on now, for a server only this run talks to.

    The port is free only until someone binds it. Test workers running side by side
    (pytest-xdist sets PYTEST_XDIST_WORKER=gwN and PYTEST_XDIST_WORKER_COUNT) each draw from a
    slice of their own below the kernel's ephemeral range (which starts at 32768 on Linux), so
    no other worker and no outgoing connection is handed the same port in that moment.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "").removeprefix("gw")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if not worker.isdigit() or count < 2:
        while True:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if port_is_free(port):  # on ::1 too, where make run's checks listen as well
                return port
    width = (_WORKER_PORTS[1] - _WORKER_PORTS[0]) // count
    low = _WORKER_PORTS[0] + int(worker) * width
    while True:
        port = random.randrange(low, low + width)  # noqa: S311 - a port, not a secret
        if port_is_free(port):
            return port


def port_is_free(port: int) -> bool:
    """Whether a server could bind ``port`` now on 127.0.0.1 and, where this machine has it,
    on ::1: "localhost" is often ::1 first, so whoever holds [::1]:``port`` would be sent
    what is meant for make run's check on 127.0.0.1 (a bearer, a login)."""
    addresses = [(socket.AF_INET, "127.0.0.1")]
    if ipv6_loopback():
        addresses.append((socket.AF_INET6, "::1"))
    for family, host in addresses:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def is_listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port`` now."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def is_serving(path: Path) -> bool:
    """Whether something accepts connections on the Unix socket ``path`` now."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(str(path)) == 0


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Return once 127.0.0.1:``port`` accepts connections; RuntimeError after ``timeout``
    seconds (for one server whose process the caller does not watch, unlike
    wait_until_listening)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_listening(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")
