"""Cold starts at the CPU share Cloud Run gives a function, with production's latency.

Each function process is held to a share of one CPU by a cgroup CPU quota (cgroup v1
``cpu.cfs_quota_us`` over a 100 ms ``cpu.cfs_period_us``, or cgroup v2 ``cpu.max``), as Cloud
Run holds an instance to the vCPU its memory buys (256Mi: 0.167 vCPU). On full cores a cold
start looks 1.1x a bare function; at 0.167 vCPU every CPU-second of imports and client set-up
costs six. Storage (fake-gcs-server) sits behind a 25 ms latency proxy and the fake Kakao behind
a 60 ms one (STYLE habit 12).

A cold start is timed from spawning ``functions-framework`` to the last byte of its first answer:
the port is polled, then one request is sent. Variants run interleaved, one of each per round,
so drift on a shared machine weighs on all alike. The bytecode is compiled first, as Google's
buildpacks do at build time (``compileall`` of the source, pip's compiled site-packages).

``python -m bench.run cold`` rewrites only this section of BENCHMARKS.md. Needs root and a
cgroup CPU controller; without them the section is left as it is. ``python -m bench.cold_start
profile`` prints where a cold kakao_token's first request spends its time (import times and a
cProfile of a fresh process, and production's credentials lookup against a fake metadata
server); it writes nothing.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.latency_proxy import LatencyProxy
from dev.fake_kakao import DEFAULT_USER_ID, FakeKakao, FakeKakaoState
from dev.servers import free_port, function_command
from tests.helpers import GcsEmulator

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## 1. Cold start"  # what BENCHMARKS.md's section starts with (replace_section)
RUNS = 5
# Cloud Run functions' memory -> vCPU table (cloud.google.com/functions/docs/configuring/memory):
# 256Mi 0.167, 512Mi 0.333, 1Gi 0.583, 2Gi (or --cpu=1) 1. Two vCPU: does more than one help a
# start that is one Python thread (what startup CPU boost would add)?
SHARES = {
    0.167: "256Mi",
    0.333: "512Mi",
    0.583: "1Gi",
    1.0: "--cpu=1, as deploy.sh gives each function; or 2Gi",
    2.0: "--cpu=2",
}
# The share deploy.sh gives each function: --cpu=1 for all three. Change together with
# deploy.sh's resources.
DEPLOYED_SHARES = {"login": 1.0, "token": 1.0, "sweep": 1.0}
PERIOD_US = 100_000
STORAGE_DELAY = 0.025
KAKAO_DELAY = 0.060
START_SECONDS = 120.0  # at 0.083 vCPU a start takes ~4 s; anything near this is broken
DOCUMENT = "kakao_token.json"
DAY = 86400
TARGETS = {"token_seconds": 1.0, "login_seconds": 0.5, "token_vs_bare": 2.0, "login_vs_bare": 1.3}
# Where the login page is held against the bare function: full cores (--cpu=2), where our own
# imports weigh most against the framework's.
FULL_CORES = 2.0


class QuietLatencyProxy(LatencyProxy):
    """A latency proxy that says nothing when a client hangs up: each function process is
    killed right after its first answer, often while its warm-up thread is mid-request."""

    def __init__(self, upstream: str, delay_seconds: float) -> None:
        super().__init__(upstream, delay_seconds)
        self._server._server.handle_error = lambda *args: None  # type: ignore[method-assign]


class QuotaUnavailable(RuntimeError):
    """No cgroup CPU controller this process may use (not root, or none mounted)."""


class CpuQuota:
    """A cgroup holding every process started through ``command`` to ``share`` of one CPU.

    Removed on exit, after any process still in it has been killed (by pid: only processes
    this bench started are ever in it).
    """

    def __init__(self, share: float, name: str = "") -> None:
        self.share = share
        quota_us = round(share * PERIOD_US)
        self.name = name or f"kakao-bench-{os.getpid()}-{quota_us}"
        v1, v2 = _cpu_controllers()
        if v1 is not None:
            self.path = v1 / self.name
            self.kind = "cgroup v1 (cpu.cfs_period_us / cpu.cfs_quota_us)"
            self._settings = {
                "cpu.cfs_period_us": str(PERIOD_US),
                "cpu.cfs_quota_us": str(quota_us),
            }
        elif v2 is not None:
            self.path = v2 / self.name
            self.kind = "cgroup v2 (cpu.max)"
            self._settings = {"cpu.max": f"{quota_us} {PERIOD_US}"}
        else:
            raise QuotaUnavailable("no cgroup CPU controller is mounted")

    def __enter__(self) -> CpuQuota:
        try:
            self.path.mkdir()
            for file, value in self._settings.items():
                (self.path / file).write_text(value)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self.path.rmdir()
            raise QuotaUnavailable(f"cannot set a CPU quota in {self.path}: {exc}") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill_all()
        self.path.rmdir()

    def command(self, command: list[str]) -> list[str]:
        """``command``, entering this cgroup before it runs (the shell execs it in place)."""
        return [
            "sh",
            "-c",
            'echo $$ > "$0" && exec "$@"',
            str(self.path / "cgroup.procs"),
            *command,
        ]

    def pids(self) -> list[int]:
        return [int(pid) for pid in (self.path / "cgroup.procs").read_text().split()]

    def kill_all(self, timeout: float = 10.0) -> None:
        """SIGKILL every process in the cgroup, and wait until it is empty."""
        deadline = time.monotonic() + timeout
        while pids := self.pids():
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes {pids} stay in {self.path}")
            time.sleep(0.01)


def _cpu_controllers() -> tuple[Path | None, Path | None]:
    """The cgroup v1 hierarchy with the cpu controller, and a cgroup v2 one offering cpu."""
    v1 = v2 = None
    for line in Path("/proc/mounts").read_text().splitlines():
        _, mountpoint, kind, options, *_ = line.split()
        if kind == "cgroup" and "cpu" in options.split(","):
            v1 = Path(mountpoint)
        elif kind == "cgroup2":
            controllers = Path(mountpoint) / "cgroup.controllers"
            subtree = Path(mountpoint) / "cgroup.subtree_control"
            if controllers.exists() and "cpu" in controllers.read_text().split():
                with contextlib.suppress(OSError):  # children get cpu.max only when enabled
                    if "cpu" not in subtree.read_text().split():
                        subtree.write_text("+cpu")
                    v2 = Path(mountpoint)
    return v1, v2


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    target: str
    source: Path
    method: str
    accept: Callable[[Answer], bool]


def variants(kakao_url: str, access_token: str) -> list[Variant]:
    def redirect_to_kakao(answer: Answer) -> bool:
        location = answer.headers.get("location", "")
        return answer.status == 302 and location.startswith(f"{kakao_url}/oauth/authorize")

    def token(answer: Answer) -> bool:
        return answer.status == 200 and json.loads(answer.body)["access_token"] == access_token

    def sweep(answer: Answer) -> bool:
        return answer.status == 200 and json.loads(answer.body).get("status") == "ok"

    return [
        Variant("bare", "bare function", "hello", ROOT / "bench" / "hello.py", "GET",
                lambda answer: answer.status == 200 and answer.body == b"hello"),
        Variant("login", "login page (302 to Kakao)", "kakao_callback", ROOT / "main.py", "GET",
                redirect_to_kakao),
        Variant("token", "first token", "kakao_token", ROOT / "main.py", "GET", token),
        Variant("sweep", "first sweep (1 login, not due)", "kakao_refresh", ROOT / "main.py",
                "POST", sweep),
    ]  # fmt: skip


def cold_start(quota: CpuQuota, variant: Variant, env: dict[str, str], log: Path) -> float:
    """Seconds from spawning the function process to the last byte of its first answer."""
    port = free_port()
    command = quota.command(function_command(variant.target, variant.source, port))
    with log.open("ab") as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=output)
    try:
        answer = _first_answer(port, variant.method, process)
        elapsed = time.perf_counter() - started
    finally:
        quota.kill_all()
        process.wait(timeout=10)
    if not variant.accept(answer):
        raise RuntimeError(
            f"{variant.target}: unexpected first answer {answer.status} "
            f"{answer.body[:300]!r} (log: {log})"
        )
    return elapsed


def _first_answer(port: int, method: str, process: subprocess.Popen[bytes]) -> Answer:
    """Poll the port until it accepts, then send one request on that connection."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=START_SECONDS)
            break
        except ConnectionRefusedError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the function exited or never listened on {port}") from None
            time.sleep(0.005)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=START_SECONDS)
    connection.sock = sock
    try:
        connection.request(method, "/")
        response = connection.getresponse()
        body = response.read()
        headers = {key.lower(): value for key, value in response.getheaders()}
        return Answer(response.status, headers, body)
    finally:
        connection.close()


def compile_sources() -> None:
    """Bytecode for the function's own source, as Google's buildpack compiles it at build."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "main.py", "token_logic", "bench/hello.py"],
        cwd=ROOT,
        check=True,
    )


def seed_login(bucket: str, emulator_url: str) -> str:
    """One stored login that is not due; its access token."""
    from token_logic.storage.gcs import GcsTokenStore
    from token_logic.tokens import TokenDocument, to_json

    os.environ["STORAGE_EMULATOR_HOST"] = emulator_url
    now = int(time.time())
    access_token = "bench-cold-access"
    document = TokenDocument(
        {
            "access_token": access_token,
            "refresh_token": "bench-cold-refresh",
            "token_type": "bearer",
            "scope": "talk_message",
            "expires_at": now + 5 * 3600,
            "refresh_token_expires_at": now + 50 * DAY,
            "updated_at": now - DAY,
            "user_id": DEFAULT_USER_ID,
        }
    )
    GcsTokenStore(bucket).overwrite(DOCUMENT, to_json(document))
    return access_token


@contextlib.contextmanager
def production_like() -> Iterator[tuple[dict[str, str], str, str]]:
    """Emulator, fake Kakao and their latency proxies; (function env, Kakao URL, token)."""
    emulator = GcsEmulator().start()
    redirect_uri = "https://bench.test/"
    fake = FakeKakao(FakeKakaoState(redirect_uris={redirect_uri})).start()
    try:
        bucket = emulator.new_bucket()
        access_token = seed_login(bucket, emulator.url)
        with (
            QuietLatencyProxy(emulator.url, STORAGE_DELAY) as storage,
            QuietLatencyProxy(fake.url, KAKAO_DELAY) as kakao,
        ):
            env = {
                key: value
                for key, value in os.environ.items()
                # Production runs from compiled bytecode; stale files are rewritten, not re-read.
                if key not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
            }
            env.update(
                KAKAO_REST_API_KEY=fake.state.client_id,
                KAKAO_CLIENT_SECRET=fake.state.client_secret,
                KAKAO_REDIRECT_URI=redirect_uri,
                KAKAO_AUTH_BASE_URL=kakao.url,
                KAKAO_API_BASE_URL=kakao.url,
                TOKEN_BUCKET=bucket,
                STORAGE_EMULATOR_HOST=storage.url,
            )
            yield env, kakao.url, access_token
    finally:
        fake.stop()
        emulator.stop()


def measure(runs: int = RUNS, shares: tuple[float, ...] = tuple(SHARES)) -> dict[str, Any]:
    """{"kind": cgroup kind, "times": {share: {variant key: [seconds, ...]}}, "load": ...}."""
    compile_sources()
    log = Path(tempfile.mkdtemp(prefix="bench-cold-")) / "functions.log"
    times: dict[float, dict[str, list[float]]] = {}
    load_before = os.getloadavg()
    kind = ""
    with production_like() as (env, kakao_url, access_token):
        cases = variants(kakao_url, access_token)
        for share in shares:
            with CpuQuota(share) as quota:
                kind = quota.kind
                if not times:  # one untimed start of each: page cache, bytecode rewritten
                    for variant in cases:
                        cold_start(quota, variant, env, log)
                times[share] = {variant.key: [] for variant in cases}
                for _ in range(runs):
                    for variant in cases:
                        times[share][variant.key].append(cold_start(quota, variant, env, log))
                        print(
                            f"{share:.3f} vCPU {variant.key}: "
                            f"{times[share][variant.key][-1]:.2f} s",
                            file=sys.stderr,
                        )
    return {"kind": kind, "times": times, "load": (load_before, os.getloadavg()), "runs": runs}


def lines(result: dict[str, Any]) -> list[str]:
    times: dict[float, dict[str, list[float]]] = result["times"]
    runs = result["runs"]
    before, after = result["load"]
    out = [
        f"{SECTION} at Cloud Run's CPU share: process start to the first answer (median of {runs})",
        "",
        f"Each function process held to a share of one CPU by a {result['kind']} quota, as "
        "Cloud Run holds an instance to the vCPU its memory buys; storage +25 ms and Kakao "
        "+60 ms per request (latency proxies); bytecode compiled, as Google's buildpack does. "
        "Timed from spawning `functions-framework` to the last byte of the first answer; "
        "the four variants interleaved. "
        f"Measured {time.strftime('%Y-%m-%d')}; load average (1 min) {before[0]:.2f} before, "
        f"{after[0]:.2f} after.",
        "",
        "| CPU share (memory) | bare function | login page (302 to Kakao) | first token "
        "(`kakao_token`, one stored login) | first sweep (`kakao_refresh`, one login not due) |",
        "|---|---|---|---|---|",
    ]
    medians = {
        share: {k: statistics.median(v) for k, v in row.items()} for share, row in times.items()
    }
    for share, row in medians.items():
        bare = row["bare"]
        cells = [f"{bare:.2f} s"] + [
            f"{row[key]:.2f} s ({row[key] / bare:.2f}x)" for key in ("login", "token", "sweep")
        ]
        out.append(f"| {share:.3f} vCPU ({SHARES.get(share, '?')}) | " + " | ".join(cells) + " |")
    out += ["", *verdicts(medians), ""]
    return out


def verdicts(medians: dict[float, dict[str, float]]) -> list[str]:
    """The issue's targets, each at the share deploy.sh gives that function."""
    token_share, login_share = DEPLOYED_SHARES["token"], DEPLOYED_SHARES["login"]
    if token_share not in medians or login_share not in medians:
        return ["Targets not judged: the deployed shares were not measured."]
    token = medians[token_share]["token"]
    ratio = token / medians[token_share]["bare"]
    login = medians[login_share]["login"]

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    sweep_share = DEPLOYED_SHARES["sweep"]
    out = [
        f"Targets at the share deploy.sh gives each function (callback and token "
        f"{login_share} vCPU, refresh {sweep_share} vCPU):",
        f"- first token ≤ {TARGETS['token_seconds']:.1f} s: {token:.2f} s, "
        f"{met(token <= TARGETS['token_seconds'])}",
        f"- login page ≤ {TARGETS['login_seconds']:.1f} s: {login:.2f} s, "
        f"{met(login <= TARGETS['login_seconds'])}",
        f"- first token ≤ {TARGETS['token_vs_bare']:.0f}x the bare function: {ratio:.2f}x, "
        f"{met(ratio <= TARGETS['token_vs_bare'])}",
    ]
    if FULL_CORES in medians:
        login_ratio = medians[FULL_CORES]["login"] / medians[FULL_CORES]["bare"]
        out.append(
            f"- login page ≤ {TARGETS['login_vs_bare']}x the bare function at full cores "
            f"({FULL_CORES} vCPU): {login_ratio:.2f}x, "
            f"{met(login_ratio <= TARGETS['login_vs_bare'])}"
        )
    if sweep_share in medians:
        sweep = medians[sweep_share]["sweep"]
        out.append(f"- first sweep at {sweep_share} vCPU (no target): {sweep:.2f} s")
    return out


# --- profile: where a cold kakao_token's first request spends its time (prints only) ---

_PROFILED_CHILD = r"""
import cProfile, sys, time
profile = sys.argv[1]
profiler = cProfile.Profile() if profile else None
marks = []
def mark(name):
    marks.append((name, time.perf_counter(), time.process_time()))
    print(f"-- {name}", file=sys.stderr, flush=True)
if profiler: profiler.enable()
mark("start")
import functions_framework
mark("functions_framework imported")
app = functions_framework.create_app("kakao_token", "main.py")
mark("main.py loaded")
client = app.test_client()
answer = client.get("/")
mark("first token answered")
if profiler:
    profiler.disable()
    profiler.dump_stats(profile)
assert answer.status_code == 200, answer.data
print(repr(marks))
"""


def profile_first_token(quota_share: float | None = None) -> None:
    """Print import times and a cProfile of a fresh process's first token (test client)."""
    import pstats

    compile_sources()
    with production_like() as (env, _kakao_url, _token):
        workdir = Path(tempfile.mkdtemp(prefix="bench-cold-profile-"))
        script = workdir / "child.py"
        script.write_text(_PROFILED_CHILD)
        stats = workdir / "first-token.prof"

        def run(*args: str, profile: str = "") -> subprocess.CompletedProcess[str]:
            command = [sys.executable, *args, str(script), profile]
            if quota_share is None:
                return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
            with CpuQuota(quota_share) as quota:
                return subprocess.run(
                    quota.command(command), env=env, cwd=ROOT, capture_output=True, text=True
                )

        run()  # bytecode and page cache
        timed = [_phases(run().stdout) for _ in range(3)]
        print("Phases of a fresh process (wall / CPU seconds, median of 3):")
        for index, (name, _, _) in enumerate(timed[0]):
            wall = statistics.median(t[index][1] for t in timed)
            cpu = statistics.median(t[index][2] for t in timed)
            print(f"  {name:<32} {wall:6.3f} s / {cpu:6.3f} s CPU")
        imports = run("-X", "importtime")
        print("\nImports, by when they happen (-X importtime, cumulative ms of top-level imports):")
        print(_import_summary(imports.stderr))
        run(profile=str(stats))
        print("\ncProfile of the whole first token (cumulative, the largest entries):")
        pstats.Stats(str(stats)).sort_stats("cumulative").print_stats(45)
    print("\nProduction-only: access tokens from a fake metadata server (the emulator needs none)")
    print(credentials_lookup_costs())


def _phases(stdout: str) -> list[tuple[str, float, float]]:
    marks: list[tuple[str, float, float]] = eval(stdout.strip().splitlines()[-1])  # noqa: S307 - our child's repr
    return [
        (name, wall - previous[1], cpu - previous[2])
        for (name, wall, cpu), previous in zip(marks[1:], marks, strict=False)
    ]


def _import_summary(stderr: str) -> str:
    """Top-level imports of each phase (the imports before each mark), largest first, and their
    self time grouped by package."""
    top: dict[str, list[tuple[int, str]]] = {}
    by_package: dict[str, dict[str, int]] = {}
    entries: list[tuple[int, str]] = []
    packages: dict[str, int] = {}
    for line in stderr.splitlines():
        if line.startswith("-- "):  # a mark: what came before it is that phase's
            top[line[3:]], by_package[line[3:]] = entries, packages
            entries, packages = [], {}
            continue
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line[len("import time:") :].split("|")
        self_us, cumulative_us, name = int(parts[0]), int(parts[1]), parts[2]
        module = name.strip()
        if not name[1:].startswith(" "):  # no indentation: imported directly, not by a module
            entries.append((cumulative_us, module))
        package = ".".join(module.split(".")[: 3 if module.startswith("google.") else 1])
        packages[package] = packages.get(package, 0) + self_us
    out = []
    for phase, imported in top.items():
        total = sum(us for us, _ in imported)
        out.append(f"  until '{phase}': {total / 1000:.0f} ms in all")
        for us, module in sorted(imported, reverse=True)[:8]:
            out.append(f"    {us / 1000:7.1f} ms  {module}")
        ranked = sorted(((us, p) for p, us in by_package[phase].items()), reverse=True)
        out.append("    self time by package: " + ", ".join(
            f"{p} {us / 1000:.0f} ms" for us, p in ranked[:12]
        ))  # fmt: skip
    return "\n".join(out)


_CREDENTIALS_CHILD = r"""
import os, time
t0 = time.perf_counter(); c0 = time.process_time()
import requests
from token_logic.storage.gcs_reader import MetadataToken
t1 = time.perf_counter(); c1 = time.process_time()
MetadataToken(os.environ["GCE_METADATA_HOST"]).authorization(requests.Session(), 5)
t2 = time.perf_counter(); c2 = time.process_time()
import google.auth, google.auth.transport.requests
from google.cloud import storage
t3 = time.perf_counter(); c3 = time.process_time()
client = storage.Client()
t4 = time.perf_counter(); c4 = time.process_time()
client._credentials.refresh(google.auth.transport.requests.Request())
t5 = time.perf_counter(); c5 = time.process_time()
print(repr([
    ("light reads (what the token endpoint uses): import requests", t1 - t0, c1 - c0),
    ("light reads: first access token from the metadata server", t2 - t1, c2 - c1),
    ("writes (the client): import google.auth + google.cloud.storage", t3 - t2, c3 - c2),
    ("writes: storage.Client(), google.auth.default() on the metadata server", t4 - t3, c4 - c3),
    ("writes: first access token from the metadata server", t5 - t4, c5 - c4),
]))
"""


def credentials_lookup_costs() -> str:
    """What the light reader's and the client's access tokens cost on Cloud Run, where the
    emulator skips them (each in a fresh process: imports, then the metadata requests)."""
    from http.server import BaseHTTPRequestHandler

    from dev.loopback import LoopbackServer, send

    class Metadata(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else a 40 ms delayed-ACK stall per answer

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            answers = {
                "/computeMetadata/v1/project/project-id": b"bench-project",
                "/computeMetadata/v1/instance/service-accounts/default/token": json.dumps(
                    {"access_token": "ya29.bench", "expires_in": 3599, "token_type": "Bearer"}
                ).encode(),
                "/computeMetadata/v1/instance/service-accounts/default/": json.dumps(
                    {"email": "runtime@bench-project.iam.gserviceaccount.com",
                     "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
                ).encode(),
            }  # fmt: skip
            body = answers.get(path, b"")
            kind = "application/json" if body.startswith(b"{") else "application/text"
            send(self, 200, body, {"Metadata-Flavor": "Google", "Content-Type": kind})

    server = LoopbackServer(Metadata).start()
    host = server.url.removeprefix("http://")
    home = tempfile.mkdtemp(prefix="bench-cold-home-")  # no gcloud credentials file, as on Run
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS")
    }
    env.update(GCE_METADATA_HOST=host, GCE_METADATA_IP=host, HOME=home, CLOUDSDK_CONFIG=home)
    try:
        runs = []
        for _ in range(4):
            done = subprocess.run(
                [sys.executable, "-c", _CREDENTIALS_CHILD],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                return f"  failed: {done.stderr.strip().splitlines()[-1:]}"
            runs.append(eval(done.stdout.strip().splitlines()[-1]))  # noqa: S307 - our child
    finally:
        server.stop()
    out = []
    for index, (name, _, _) in enumerate(runs[0]):
        wall = statistics.median(run[index][1] for run in runs[1:])
        cpu = statistics.median(run[index][2] for run in runs[1:])
        out.append(f"  {name:<72} {wall:6.3f} s / {cpu:6.3f} s CPU (median of 3)")
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["profile"]:
        share = float(sys.argv[2]) if len(sys.argv) > 2 else None
        profile_first_token(share)
    else:
        print("\n".join(lines(measure())))
