"""Reads without google-cloud-storage (storage/gcs_reader.py): the same answers as the client's
read, against the real fake-gcs-server; retried like it; authorized on Cloud Run by the metadata
server; and a cold token endpoint that never imports the storage client."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote

import pytest

from dev.loopback import LoopbackServer, send
from tests.conftest import ROOT
from tests.helpers import FakeClock, FlakyProxy, GcsEmulator
from token_logic.budget import Deadline
from token_logic.config import Settings
from token_logic.errors import DeadlineReached, StorageError, WriteConflict
from token_logic.network import new_session
from token_logic.storage.gcs import GcsTokenStore
from token_logic.storage.gcs_reader import GcsReader, MetadataToken
from token_logic.wiring import build_store

NAME = "tokens/12345.json"  # a slash: the name is one path segment, quoted
BASE = {"KAKAO_REST_API_KEY": "key", "KAKAO_REDIRECT_URI": "https://function.test/"}


class FakeTime:
    """Monotonic time that moves only when the reader sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def reader_for(
    url: str, token: MetadataToken | None = None, ticks: FakeTime | None = None
) -> GcsReader:
    if ticks is None:
        return GcsReader(url, token, new_session)
    return GcsReader(url, token, new_session, sleep=ticks.sleep, now=lambda: ticks.now)


@pytest.fixture
def both(gcs: GcsEmulator, bucket: str) -> tuple[GcsTokenStore, GcsTokenStore]:
    """The same bucket through the storage client alone, and with the light reader."""
    return GcsTokenStore(bucket), GcsTokenStore(bucket, reader=reader_for(gcs.url))


def test_a_stored_document_reads_as_the_client_reads_it(
    both: tuple[GcsTokenStore, GcsTokenStore],
) -> None:
    """Same bytes, same version (the generation) as the storage client's read."""
    client, light = both
    first = client.write(NAME, b'{"access_token": "a"}', None)
    data = '{"access_token": "b", "name": "한"}'.encode()
    version = client.write(NAME, data, first)

    stored = light.read(NAME)
    assert stored == client.read(NAME)
    assert stored is not None and (stored.data, stored.version) == (data, version)


def test_nothing_stored_reads_as_none(
    gcs: GcsEmulator, both: tuple[GcsTokenStore, GcsTokenStore]
) -> None:
    """An absent object, and an absent bucket, read as None, as with the client."""
    client, light = both

    assert light.read(NAME) is None and client.read(NAME) is None
    assert GcsTokenStore("no-such-bucket", reader=reader_for(gcs.url)).read(NAME) is None
    assert GcsTokenStore("no-such-bucket").read(NAME) is None


def test_a_write_guarded_by_the_light_reads_version_works(
    both: tuple[GcsTokenStore, GcsTokenStore],
) -> None:
    """Compare-and-swap with the version the light read returned: it lands, and a writer still
    holding the older version then conflicts."""
    _, light = both
    first = light.write(NAME, b"one", None)
    stored = light.read(NAME)
    assert stored is not None and stored.version == first

    second = light.write(NAME, b"two", stored.version)

    with pytest.raises(WriteConflict):
        light.write(NAME, b"three", stored.version)
    after = light.read(NAME)
    assert after is not None and (after.data, after.version) == (b"two", second)


def test_a_few_storage_faults_are_retried(gcs: GcsEmulator, bucket: str) -> None:
    """503s are retried with the client's backoff (1 s, doubling) and the read succeeds."""
    GcsTokenStore(bucket).write(NAME, b"doc", None)
    ticks = FakeTime()
    with FlakyProxy(gcs.url) as proxy:
        store = GcsTokenStore(bucket, reader=reader_for(proxy.url, ticks=ticks))
        proxy.fail_next = 2

        stored = store.read(NAME)

    assert stored is not None and stored.data == b"doc"
    assert [status for _, _, status in proxy.seen] == [503, 503, 200]
    assert len(ticks.sleeps) == 2 and 0.5 <= ticks.sleeps[0] <= 1.0 <= ticks.sleeps[1] <= 2.0


def test_storage_that_stays_down_is_a_storage_error_within_the_budget(
    gcs: GcsEmulator, bucket: str
) -> None:
    """Retried until the next pause would end past the budget, then StorageError naming the
    last cause; never a sleep past the budget."""
    ticks = FakeTime()
    with FlakyProxy(gcs.url) as proxy:
        proxy.paused = True
        reader = reader_for(proxy.url, ticks=ticks)

        with pytest.raises(StorageError, match=r"read failed \(HTTP 503\).*TOKEN_BUCKET"):
            reader.read(bucket, NAME, timeout=5, budget=10)

    assert proxy.failed == len(ticks.sleeps) + 1 >= 3
    assert ticks.now <= 10


def test_an_unreachable_endpoint_is_retried_then_a_storage_error() -> None:
    """Connection refused is retried like a 503, then StorageError."""
    ticks = FakeTime()
    reader = reader_for("http://127.0.0.1:9", ticks=ticks)

    with pytest.raises(StorageError, match="ConnectionError"):
        reader.read("bucket", NAME, timeout=1, budget=3)
    assert ticks.sleeps


def test_no_time_left_is_deadline_reached(gcs: GcsEmulator, bucket: str) -> None:
    """Under a second left of the request's deadline: DeadlineReached, no request sent."""
    clock = FakeClock()
    with FlakyProxy(gcs.url) as proxy:
        store = GcsTokenStore(bucket, reader=reader_for(proxy.url))

        with pytest.raises(DeadlineReached):
            store.read(NAME, Deadline.after(0.5, clock))
    assert proxy.seen == []


def test_a_refused_request_is_not_retried(gcs: GcsEmulator) -> None:
    """A 4xx other than 404 (a bad bucket name here) is a StorageError at once."""
    ticks = FakeTime()
    with FlakyProxy(gcs.url) as proxy:
        reader = reader_for(proxy.url, ticks=ticks)
        proxy.intercept = lambda method, path: (403, b'{"error": {"code": 403}}')  # type: ignore[method-assign]

        with pytest.raises(StorageError, match="HTTP 403"):
            reader.read("bucket", NAME, timeout=1, budget=10)
    assert ticks.sleeps == []


# --- Cloud Run: the metadata server's access token ---


class FakeGoogle:
    """The metadata server's token URL and Cloud Storage's media GET, on one loopback port:
    storage accepts only the newest token issued, and can be told to refuse it once."""

    def __init__(self) -> None:
        self.issued = 0
        self.metadata_requests: list[dict[str, str]] = []
        self.storage_authorizations: list[str] = []
        self.revoke_next = False
        self.objects = {("bucket", NAME): (b'{"access_token": "a"}', "1700000000000001")}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                fake.answer(self)

        self._server = LoopbackServer(Handler)
        self.url = self._server.url
        self.host = self.url.removeprefix("http://")

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        if path == "/computeMetadata/v1/instance/service-accounts/default/token":
            self.metadata_requests.append(dict(handler.headers))
            if handler.headers.get("Metadata-Flavor") != "Google":
                send(handler, 403, b"Missing Metadata-Flavor:Google header.")
                return
            self.issued += 1
            body = {
                "access_token": f"ya29.{self.issued}",
                "expires_in": 3599,
                "token_type": "Bearer",
            }
            send(handler, 200, json.dumps(body).encode(), {"Content-Type": "application/json"})
            return
        authorization = handler.headers.get("Authorization", "")
        self.storage_authorizations.append(authorization)
        if self.revoke_next or authorization != f"Bearer ya29.{self.issued}":
            self.revoke_next = False
            send(handler, 401, b'{"error": {"code": 401}}')
            return
        bucket, name = path.split("/")[4], unquote(path.split("/")[6])
        data, generation = self.objects[(bucket, name)]
        send(handler, 200, data, {"x-goog-generation": generation})

    def __enter__(self) -> FakeGoogle:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        yield fake


def test_cloud_run_reads_carry_the_metadata_servers_token_fetched_once(google: FakeGoogle) -> None:
    """The access token comes from the metadata server (Metadata-Flavor: Google), is sent as a
    bearer, and is kept for later reads: one metadata request for three reads."""
    reader = reader_for(google.url, MetadataToken(google.host))

    for _ in range(3):
        stored = reader.read("bucket", NAME, timeout=5, budget=5)
        assert stored is not None and stored.version == "1700000000000001"

    assert len(google.metadata_requests) == 1
    assert google.metadata_requests[0]["Metadata-Flavor"] == "Google"
    assert google.storage_authorizations == ["Bearer ya29.1"] * 3


def test_a_token_near_expiry_is_fetched_again(google: FakeGoogle) -> None:
    """Within five minutes of its expiry the cached token is replaced before use."""
    ticks = FakeTime()
    reader = reader_for(google.url, MetadataToken(google.host, now=lambda: ticks.now), ticks)
    reader.read("bucket", NAME, timeout=5, budget=5)

    ticks.now += 3599 - 300 - 1
    reader.read("bucket", NAME, timeout=5, budget=5)
    ticks.now += 2
    reader.read("bucket", NAME, timeout=5, budget=5)

    assert google.storage_authorizations == ["Bearer ya29.1", "Bearer ya29.1", "Bearer ya29.2"]


def test_a_refused_token_is_replaced_once(google: FakeGoogle) -> None:
    """A 401 from storage drops the cached token; the read is tried once more with a new one."""
    reader = reader_for(google.url, MetadataToken(google.host))
    reader.read("bucket", NAME, timeout=5, budget=5)
    google.revoke_next = True

    stored = reader.read("bucket", NAME, timeout=5, budget=5)

    assert stored is not None
    assert google.storage_authorizations == ["Bearer ya29.1", "Bearer ya29.1", "Bearer ya29.2"]


def test_no_metadata_server_is_a_storage_error() -> None:
    """Off Google Cloud there is no token to get: a StorageError, not a trace or a hang."""
    ticks = FakeTime()
    reader = reader_for("http://127.0.0.1:9", MetadataToken("127.0.0.1:9"), ticks)

    with pytest.raises(StorageError, match="metadata server"):
        reader.read("bucket", NAME, timeout=1, budget=3)


def test_tokens_stay_out_of_reprs(google: FakeGoogle) -> None:
    """Neither the reader nor its token source shows the access token."""
    token = MetadataToken(google.host)
    reader = reader_for(google.url, token)
    reader.read("bucket", NAME, timeout=5, budget=5)

    assert "ya29" not in repr(reader) + repr(token)


# --- where light reads are used ---


def test_cloud_run_and_the_emulator_read_light_a_script_reads_with_the_client() -> None:
    """K_SERVICE: Cloud Storage with the metadata server (GCE_METADATA_HOST honoured); the
    emulator: its URL, no token; a script with a person's credentials: the client."""
    run = Settings.from_env({**BASE, "K_SERVICE": "kakao-token", "TOKEN_BUCKET": "b"})
    moved = Settings.from_env(
        {
            **BASE,
            "K_SERVICE": "kakao-token",
            "TOKEN_BUCKET": "b",
            "GCE_METADATA_HOST": "10.0.0.1:8080",
        }
    )
    emulated = Settings.from_env({**BASE, "STORAGE_EMULATOR_HOST": "localhost:4443"})
    script = Settings.from_env({**BASE, "TOKEN_BUCKET": "b"})

    assert (run.storage_read_endpoint, run.metadata_host) == (
        "https://storage.googleapis.com",
        "metadata.google.internal",
    )
    assert moved.metadata_host == "10.0.0.1:8080"
    assert (emulated.storage_read_endpoint, emulated.metadata_host) == ("http://localhost:4443", "")
    assert (script.storage_read_endpoint, script.metadata_host) == ("", "")


def test_the_storage_proxy_applies_to_light_reads() -> None:
    """HTTPS_PROXY reaches Cloud Storage's reads too (NO_PROXY applied), read once."""
    env = {**BASE, "K_SERVICE": "x", "TOKEN_BUCKET": "b", "HTTPS_PROXY": "http://proxy:3128"}

    assert Settings.from_env(env).proxies["https://storage.googleapis.com"] == "http://proxy:3128"
    exempt = Settings.from_env({**env, "NO_PROXY": "googleapis.com"})
    assert "https://storage.googleapis.com" not in exempt.proxies


def test_the_wired_store_reads_through_the_emulator(gcs: GcsEmulator, bucket: str) -> None:
    """build_store gives the light reader with the emulator, and it reads what was written."""
    store = build_store(
        Settings.from_env({**BASE, "TOKEN_BUCKET": bucket, "STORAGE_EMULATOR_HOST": gcs.url})
    )
    version = store.write(NAME, b"doc", None)

    assert "GcsReader" not in repr(store)  # the store's repr names only the bucket
    stored = store.read(NAME)
    assert stored is not None and (stored.data, stored.version) == (b"doc", version)


_COLD_TOKEN = r"""
import json, sys, threading
import functions_framework
app = functions_framework.create_app("kakao_token", "main.py")
answer = app.test_client().get("/")
for thread in threading.enumerate():  # the warm-up after the first answer, too
    if thread is not threading.main_thread():
        thread.join(10)
loaded = [m for m in ("google.cloud.storage", "google.auth", "google.api_core",
                      "token_logic.access_token", "token_logic.client.remote") if m in sys.modules]
print(json.dumps({"status": answer.status_code, "body": answer.get_json(), "loaded": loaded}))
"""


def test_a_cold_token_endpoint_never_imports_the_storage_client_or_the_script_client(
    gcs: GcsEmulator, bucket: str
) -> None:
    """`import main` and one token request on a stored login (and the warm-up after it) load
    neither google-cloud-storage (nor google-auth) nor the script client."""
    now = int(time.time())
    document = {
        "access_token": "cold-access",
        "refresh_token": "cold-refresh",
        "expires_at": now + 5 * 3600,
        "refresh_token_expires_at": now + 50 * 86400,
        "updated_at": now - 86400,
        "user_id": 7,
    }
    GcsTokenStore(bucket).write("kakao_token.json", json.dumps(document).encode(), None)
    env = {
        "PATH": "/usr/bin:/bin",
        "KAKAO_REST_API_KEY": "key",
        "KAKAO_REDIRECT_URI": "https://function.test/",
        "TOKEN_BUCKET": bucket,
        "STORAGE_EMULATOR_HOST": gcs.url,
    }

    done = subprocess.run(
        [sys.executable, "-c", _COLD_TOKEN],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 200 and result["body"]["access_token"] == "cold-access"
    assert result["loaded"] == []


def test_the_script_api_still_imports_from_the_package() -> None:
    """`from token_logic import get_access_token` works, loading the client only then."""
    code = (
        "import sys, token_logic\n"
        "assert 'token_logic.client.remote' not in sys.modules\n"
        "from token_logic import get_access_token\n"
        "assert callable(get_access_token) and 'token_logic.client.remote' in sys.modules\n"
    )

    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr


def test_concurrent_first_reads_fetch_one_token(google: FakeGoogle) -> None:
    """Threads starting together on a cold instance share one metadata request."""
    reader = reader_for(google.url, MetadataToken(google.host))
    barrier = threading.Barrier(8)

    def read() -> None:
        barrier.wait()
        reader.read("bucket", NAME, timeout=5, budget=5)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(google.metadata_requests) == 1 and len(google.storage_authorizations) == 8
