"""Every port ``make run`` opens, under the security review's attacks: a local user who found
the port (``ss -ltn``) asks it for the token or a refresh without this run's bearer, a
DNS-rebinding page names its own Host, and a web page POSTs ``/?force=1`` cross-site. None of
them gets a token or makes Kakao's token endpoint work (the fake counts its calls)."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from dev.fake_kakao import FakeKakao
from dev.servers import free_port
from tests.conftest import ROOT
from tests.test_run_local import (  # real_app: a fixture, one run of this module's own
    GUIDE_END,
    LocalRun,
    clean_environment,
    descendants,
    endpoint_file,
    read_env_file,
    real_app,  # noqa: F401
)

# Real make run servers in subprocesses: part of make test, left out of the quick loop.
pytestmark = pytest.mark.slow

TOKEN_CALLS = "/oauth/token"
LISTEN = "0A"  # a socket's state in /proc/net/tcp: TCP_LISTEN
FOREIGN_HOST = "attacker.example"


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket ``pid`` and the processes below it listen on, from
    /proc (what ``ss -ltnp`` shows; psutil is not a dependency)."""
    inodes = set()
    for process in {pid, *descendants(pid)}:
        try:
            fds = os.listdir(f"/proc/{process}/fd")
        except OSError:  # it ended while we looked
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{process}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link.removeprefix("socket:[").removesuffix("]"))
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == LISTEN and fields[9] in inodes:
                address, _, port = fields[1].partition(":")
                found.add((_reachable(address), int(port, 16)))
    return found


def _reachable(hex_address: str) -> str:
    """A /proc/net/tcp address (32-bit words in host byte order) as a URL's host part."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(raw) == 4:
        ip4 = ipaddress.IPv4Address(words)
        return "127.0.0.1" if ip4.is_unspecified else str(ip4)
    ip6 = ipaddress.IPv6Address(words)
    return "[::1]" if ip6.is_unspecified else f"[{ip6}]"


def has_ipv6_loopback() -> bool:
    """Whether this machine can bind ::1 (checked here, not with make run's own helper)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6_loopback = pytest.mark.skipif(
    not has_ipv6_loopback(), reason="this machine has no IPv6 loopback: ::1 cannot be bound"
)


def gave_a_token(response: requests.Response) -> bool:
    return "access_token" in response.text or "fake-access-" in response.text


@pytest.fixture(scope="module")
def guarded_run(
    real_app: tuple[LocalRun, FakeKakao],  # noqa: F811 - the imported fixture, by name
) -> tuple[LocalRun, FakeKakao, str]:
    """The review's setting: a real app (its Kakao a fake this test starts and counts), a
    token stored by one login; with this run's bearer, read from the file the guide names."""
    run, kakao = real_app
    bearer = read_env_file(endpoint_file(run.text()))["KAKAO_TOKEN_ID_TOKEN"]
    return run, kakao, bearer


def attacks(port: int, bearer: str) -> list[dict[str, str]]:
    """The headers of each attack on one port: a local user without the bearer (as any user,
    ``nobody`` too, can), a foreign Host, and a DNS-rebinding page that somehow has the
    bearer (the demo's is public)."""
    return [
        {},
        {"Host": FOREIGN_HOST},
        {"Host": f"{FOREIGN_HOST}:{port}", "Authorization": f"Bearer {bearer}"},
    ]


def test_no_port_of_the_run_answers_the_token_without_this_runs_bearer(
    guarded_run: tuple[LocalRun, FakeKakao, str],
) -> None:
    """Review finding 1: a GET to every port the run listens on, found as a local user finds
    them, gives no token without the bearer or with a foreign Host; only the token port,
    with the bearer and this machine's name, does."""
    run, kakao, bearer = guarded_run
    addresses = listening_addresses(run.process.pid)
    calls = kakao.state.calls[TOKEN_CALLS]

    leaks = []
    for address, port in sorted(addresses):
        for headers in attacks(port, bearer):
            url = f"http://{address}:{port}/"
            response = requests.get(url, headers=headers, allow_redirects=False, timeout=10)
            if gave_a_token(response):
                leaks.append((port, headers.get("Host", "(its own)"), response.status_code))
    granted = requests.get(
        f"http://localhost:{run.ports['TOKEN_PORT']}/",
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=10,
    )

    named = {run.ports[name] for name in ("PORT", "REFRESH_PORT", "TOKEN_PORT")}
    assert named <= {port for _, port in addresses}, addresses
    assert not leaks, f"ports that gave the token: {leaks}"
    assert kakao.state.calls[TOKEN_CALLS] == calls
    assert granted.status_code == 200 and granted.json()["access_token"]


def test_no_port_of_the_run_refreshes_without_this_runs_bearer(
    guarded_run: tuple[LocalRun, FakeKakao, str],
) -> None:
    """Review finding 2, from this machine: ``POST /?force=1`` to every port the run listens
    on makes no Kakao token call without the bearer or with a foreign Host; the refresh port,
    with the bearer and this machine's name, makes one."""
    run, kakao, bearer = guarded_run
    addresses = listening_addresses(run.process.pid)
    calls = kakao.state.calls[TOKEN_CALLS]

    refreshed_by = []
    for address, port in sorted(addresses):
        for headers in attacks(port, bearer):
            url = f"http://{address}:{port}/?force=1"
            response = requests.post(url, headers=headers, allow_redirects=False, timeout=30)
            if kakao.state.calls[TOKEN_CALLS] != calls:
                refreshed_by.append((port, headers.get("Host", "(its own)"), response.status_code))
                calls = kakao.state.calls[TOKEN_CALLS]
    granted = requests.post(
        f"http://localhost:{run.ports['REFRESH_PORT']}/?force=1",
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=30,
    )

    assert not refreshed_by, f"ports that made Kakao refresh: {refreshed_by}"
    assert granted.status_code == 200, granted.text
    assert kakao.state.calls[TOKEN_CALLS] == calls + 1


@pytest.mark.parametrize("with_bearer", [False, True])
def test_a_cross_site_page_cannot_make_the_refresh_call_kakao(
    guarded_run: tuple[LocalRun, FakeKakao, str], with_bearer: bool
) -> None:
    """Review finding 2 as reported: 40 cross-origin ``POST /?force=1`` from a web page (a
    browser's simple request: Origin, Sec-Fetch-Site: cross-site, text/plain) to the refresh
    port make no Kakao token call and answer no sweep; nor with a bearer the page might know."""
    run, kakao, bearer = guarded_run
    port = run.ports["REFRESH_PORT"]
    headers = {
        "Origin": f"http://{FOREIGN_HOST}",
        "Sec-Fetch-Site": "cross-site",
        "Sec-Fetch-Mode": "no-cors",
        "Content-Type": "text/plain;charset=UTF-8",
    }
    if with_bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    calls = kakao.state.calls[TOKEN_CALLS]

    statuses = {
        requests.post(
            f"http://localhost:{port}/?force=1", headers=headers, data=b"", timeout=30
        ).status_code
        for _ in range(40)
    }

    assert kakao.state.calls[TOKEN_CALLS] == calls
    assert statuses <= {401, 403}, statuses


@pytest.fixture
def ipv6_squatter() -> Iterator[int]:
    """Another local user's server on [::1]:<port> alone (IPV6_V6ONLY), 127.0.0.1:<port> free:
    what ``localhost:<port>`` reaches first on most machines; the port."""
    while True:
        port = free_port()
        squatter = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        squatter.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            squatter.bind(("::1", port))
        except OSError:  # taken there already: draw another
            squatter.close()
            continue
        break
    squatter.listen()
    with squatter:
        yield port


@needs_ipv6_loopback
@pytest.mark.parametrize("name", ["PORT", "REFRESH_PORT", "TOKEN_PORT"])
def test_make_run_refuses_a_port_someone_holds_on_ipv6_loopback(
    ipv6_squatter: int, name: str, tmp_path: Path
) -> None:
    """Review finding: with a stranger listening on [::1]:<port>, make run does not start (it
    says the port is in use), so the printed localhost lines can never send it this run's
    bearer, a claim link or a login's callback."""
    ports = {n: free_port() for n in ("PORT", "REFRESH_PORT", "TOKEN_PORT", "FAKE_KAKAO_PORT")}
    ports[name] = ipv6_squatter
    output = tmp_path / "run_local.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "dev.run_local"],
            cwd=ROOT,
            env={**clean_environment(), **{k: str(v) for k, v in ports.items()}},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while process.poll() is None and GUIDE_END not in output.read_text(errors="replace"):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if process.poll() is None:  # it started, on a port a stranger shares
        process.terminate()
        process.wait(timeout=30)
        pytest.fail(f"make run started:\n{output.read_text(errors='replace')}")

    assert process.returncode == 1
    assert f"error: in use: {name}={ipv6_squatter};" in output.read_text(errors="replace")


@needs_ipv6_loopback
def test_every_port_answers_on_ipv6_loopback_through_the_check(
    guarded_run: tuple[LocalRun, FakeKakao, str],
) -> None:
    """Review finding: the three ports listen on [::1] as well as 127.0.0.1, so no stranger
    can take [::1]:<port> during the run; there the token port is our check: an HTML 401
    without the bearer, the token with it."""
    run, _, bearer = guarded_run
    named = {run.ports[name] for name in ("PORT", "REFRESH_PORT", "TOKEN_PORT")}
    addresses = listening_addresses(run.process.pid)
    url = f"http://[::1]:{run.ports['TOKEN_PORT']}/"

    bare = requests.get(url, timeout=10)
    granted = requests.get(url, headers={"Authorization": f"Bearer {bearer}"}, timeout=10)

    assert {("[::1]", port) for port in named} <= addresses, addresses
    assert bare.status_code == 401 and bare.headers["Content-Type"].startswith("text/html")
    assert not gave_a_token(bare)
    assert granted.status_code == 200 and granted.json()["access_token"]
