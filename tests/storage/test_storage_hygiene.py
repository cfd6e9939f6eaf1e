"""No copy of a token outlives a logout or an unlink: a versioned bucket's older generations go.

The token bucket is versioned (deploy.sh), so every write leaves the document before it as a
noncurrent generation, with both tokens. These tests run the real storage client against
fake-gcs-server with versioning on, and read every generation back (``versions=true``).

The bundled fake-gcs-server keeps and lists noncurrent generations as Cloud Storage does, but
a DELETE naming a generation acts on the live object instead (fsouza/fake-gcs-server#1326,
fixed upstream by #2322, after the binary the wrapper ships). ``GenerationDeletes`` stands in
front of it and gives that one request Cloud Storage's meaning; everything else reaches the
emulator untouched.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
import requests

from dev.fake_kakao import FakeKakao
from dev.loopback import Relay
from tests.conftest import function_app, service_over, settings_env
from tests.helpers import REDIRECT_URI, FakeClock, GcsEmulator, complete_login
from tests.web.test_unlink import ADMIN_KEY, Sent
from token_logic.budget import UNLINK_WEBHOOK_SECONDS, Deadline
from token_logic.errors import NoTokenStored
from token_logic.service.token_service import TokenService
from token_logic.storage.gcs import GcsTokenStore

DOCUMENT = "kakao_token.json"
PER_USER = "tokens/{user_id}.json"
_OBJECT = re.compile(r"(?:/download)?/storage/v1/b/([^/]+)/o/([^/?]+)")
_LISTING = re.compile(r"/storage/v1/b/([^/]+)/o")
_NOT_FOUND = b'{"error": {"code": 404, "message": "No such object"}}'


class GenerationDeletes(Relay):
    """fake-gcs-server, with Cloud Storage's DELETE of a named generation: that generation is
    gone for good (live or not), and no listing or read shows it again. ``delay`` adds
    Cloud Storage's latency to every request (a loopback answers in well under a millisecond).
    """

    def __init__(self, upstream: str, delay: float = 0.0) -> None:
        super().__init__(upstream)
        self.delay = delay
        self.generation_deletes = 0
        self._gone: set[tuple[str, str, int]] = set()
        self._lock = threading.Lock()
        self._upstream = requests.Session()
        self._upstream.trust_env = False

    def intercept(self, method: str, path: str) -> tuple[int, bytes] | None:
        time.sleep(self.delay)
        parts = urlsplit(path)
        query = parse_qs(parts.query)
        listing = _LISTING.fullmatch(parts.path)
        if method == "GET" and listing is not None and query.get("versions"):
            return self._listing(path, listing.group(1))
        found = _OBJECT.fullmatch(parts.path)
        if found is None or "generation" not in query:
            return None
        key = (found.group(1), unquote(found.group(2)), int(query["generation"][0]))
        with self._lock:
            if key in self._gone:
                return 404, _NOT_FOUND
        return self._delete(key) if method == "DELETE" else None

    def __enter__(self) -> GenerationDeletes:
        super().__enter__()
        return self

    def _delete(self, key: tuple[str, str, int]) -> tuple[int, bytes]:
        bucket, name, generation = key
        url = f"{self.upstream}/storage/v1/b/{bucket}/o/{quote(name, safe='')}"
        if self._upstream.get(url, params={"generation": generation}, timeout=5).status_code != 200:
            return 404, _NOT_FOUND
        live = self._upstream.get(url, timeout=5)
        if live.status_code == 200 and int(live.json()["generation"]) == generation:
            self._upstream.delete(url, timeout=5)  # the emulator keeps it as noncurrent: hidden
        with self._lock:
            self._gone.add(key)
            self.generation_deletes += 1
        return 204, b""

    def _listing(self, path: str, bucket: str) -> tuple[int, bytes]:
        answer = self._upstream.get(self.upstream + path, timeout=5)
        listing = answer.json()
        with self._lock:
            listing["items"] = [
                item
                for item in listing.get("items", [])
                if (bucket, item["name"], int(item["generation"])) not in self._gone
            ]
        return answer.status_code, json.dumps(listing).encode()


@dataclass(frozen=True)
class Generation:
    number: int
    live: bool
    document: dict[str, Any]


@dataclass
class VersionedBucket:
    """A versioned bucket in the emulator, reached through ``GenerationDeletes``."""

    name: str
    relay: GenerationDeletes

    def generations(self, name: str = DOCUMENT) -> list[Generation]:
        """Every generation of ``name`` still stored, oldest first, each read back whole."""
        base = f"{self.relay.url}/storage/v1/b/{self.name}/o"
        listing = requests.get(base, params={"versions": "true", "prefix": name}, timeout=5)
        found = []
        for item in listing.json().get("items", []):
            if item["name"] != name:
                continue
            number = int(item["generation"])
            data = requests.get(
                f"{base}/{quote(name, safe='')}",
                params={"alt": "media", "generation": str(number)},
                timeout=5,
            )
            live = "timeDeleted" not in item
            found.append(Generation(number, live, json.loads(data.content)))
        return sorted(found, key=lambda generation: generation.number)


def holding_tokens(generations: list[Generation]) -> list[Generation]:
    return [
        g for g in generations if g.document.get("refresh_token") or g.document.get("access_token")
    ]


@contextlib.contextmanager
def versioned_bucket(
    gcs: GcsEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[VersionedBucket]:
    """A new bucket with versioning on, the storage client pointed at it through the relay."""
    bucket = gcs.new_bucket()
    turned_on = requests.patch(
        f"{gcs.url}/storage/v1/b/{bucket}", json={"versioning": {"enabled": True}}, timeout=5
    )
    assert turned_on.json()["versioning"] == {"enabled": True}
    # The old versions are deleted 8 at a time, each on a new connection: more than the 5
    # unaccepted connections a Python server queues by default (the 6th waits a second for
    # its SYN to be sent again, past the webhook's connect timeout). Cloud Storage queues more.
    monkeypatch.setattr(ThreadingHTTPServer, "request_queue_size", 64)
    with GenerationDeletes(gcs.url) as relay:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", relay.url)
        yield VersionedBucket(bucket, relay)


@pytest.fixture
def versioned(gcs: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[VersionedBucket]:
    with versioned_bucket(gcs, monkeypatch) as bucket:
        yield bucket


def service_on(
    bucket: VersionedBucket, fake: FakeKakao, clock: FakeClock | None, **env: str
) -> TokenService:
    return service_over(GcsTokenStore(bucket.name), fake, clock, TOKEN_BUCKET=bucket.name, **env)


def logged_in_and_refreshed(service: TokenService, clock: FakeClock, times: int = 3) -> int:
    """A login, then ``times`` refreshes (each two writes: the lease and the result)."""
    user_id = complete_login(service).user_id
    assert user_id is not None  # a login always stores its user's id
    for _ in range(times):
        clock.advance(600)
        service.refresh_user(user_id, force=True)
    return user_id


def test_the_versioned_bucket_keeps_every_refresh_with_its_tokens(
    versioned: VersionedBucket, fake_kakao: FakeKakao, clock: FakeClock
) -> None:
    """What the finding is about: after a login and three refreshes, seven generations, six of
    them noncurrent, every one holding the refresh token."""
    service = service_on(versioned, fake_kakao, clock)

    logged_in_and_refreshed(service, clock)

    generations = versioned.generations()
    assert len(generations) == 7 and [g.live for g in generations].count(True) == 1
    assert holding_tokens(generations) == generations


def test_logout_leaves_no_generation_holding_a_token(
    versioned: VersionedBucket, fake_kakao: FakeKakao, clock: FakeClock
) -> None:
    """logout: the tokens end at Kakao, and no generation of the document holds one; only the
    owner's token-less marker stays (the deployment remains the owner's)."""
    service = service_on(versioned, fake_kakao, clock)
    logged_in_and_refreshed(service, clock)
    before = versioned.generations()

    service.logout()

    (left,) = versioned.generations()
    assert left.live and holding_tokens([left]) == []
    assert versioned.relay.generation_deletes == len(before)  # the live one became old first
    assert not fake_kakao.state.valid_refresh_tokens()


def test_a_logout_cut_short_is_finished_by_the_next_one(
    versioned: VersionedBucket, fake_kakao: FakeKakao, clock: FakeClock
) -> None:
    """The live document deleted but its old generations left (a logout that died halfway): the
    next logout has nothing to log out, says so, and deletes what was left."""
    service = service_on(versioned, fake_kakao, clock)
    logged_in_and_refreshed(service, clock)
    stored = service.store.read(DOCUMENT)
    assert stored is not None and service.store.delete(DOCUMENT, stored.version)
    assert len(versioned.generations()) == 7  # every one of them old now

    with pytest.raises(NoTokenStored):
        service.logout()

    assert versioned.generations() == []


def test_the_unlink_webhook_leaves_only_the_single_documents_marker(
    versioned: VersionedBucket,
    fake_kakao: FakeKakao,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kakao's unlink webhook, through the function: the single document's live generation is
    the owner's marker, with no token, and it is the only generation left."""
    service = service_on(versioned, fake_kakao, clock)
    owner = logged_in_and_refreshed(service, clock)
    env = settings_env(
        fake_kakao,
        TOKEN_BUCKET=versioned.name,
        KAKAO_ADMIN_KEY=ADMIN_KEY,
        KAKAO_APP_ID=fake_kakao.state.app_id,
    )
    sent = Sent(function_app(monkeypatch, "kakao_callback", env).test_client())

    status = fake_kakao.send_unlink_webhook(REDIRECT_URI + "unlink", owner, transport=sent)

    assert status == 200 and sent.bodies == [{"status": "ok", "deleted": True}]
    [marker] = versioned.generations()
    assert marker.live and holding_tokens([marker]) == []
    assert marker.document["user_id"] == owner
    assert marker.document["login_error"]["error_code"] == "unlinked"


def test_unlink_of_a_per_user_document_leaves_nothing_and_spares_the_others(
    versioned: VersionedBucket, fake_kakao: FakeKakao, clock: FakeClock
) -> None:
    """tokens/{user_id}.json: the unlinked user's every generation goes; another user's
    document and its history stay as they were."""
    service = service_on(versioned, fake_kakao, clock, TOKEN_OBJECT=PER_USER)
    gone = logged_in_and_refreshed(service, clock)
    fake_kakao.state.user_id = 4127000002
    kept = logged_in_and_refreshed(service, clock, times=1)
    theirs = versioned.generations(f"tokens/{kept}.json")

    assert service.forget_user(gone) == f"tokens/{gone}.json"

    assert versioned.generations(f"tokens/{gone}.json") == []
    assert versioned.generations(f"tokens/{kept}.json") == theirs


def test_a_login_landing_after_the_delete_keeps_its_live_document(
    versioned: VersionedBucket, fake_kakao: FakeKakao, clock: FakeClock
) -> None:
    """Old versions only: between a logout's delete and its clean-up a new login lands; its live
    document stays, every generation before it goes."""
    service = service_on(versioned, fake_kakao, clock)
    logged_in_and_refreshed(service, clock)
    stored = service.store.read(DOCUMENT)
    assert stored is not None and service.store.delete(DOCUMENT, stored.version)
    fresh = complete_login(service)

    deleted = service.store.delete_old_versions(DOCUMENT)

    [live] = versioned.generations()
    assert deleted == 7 and live.live
    assert live.document["refresh_token"] == fresh.refresh_token


def test_a_webhook_deadline_that_runs_out_still_answers_and_leaves_the_marker(
    versioned: VersionedBucket,
    fake_kakao: FakeKakao,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No time left for the clean-up: forget_user still answers (the marker is written), says
    in a warning that old versions are left, and they wait for the bucket's lifecycle rule."""
    service = service_on(versioned, fake_kakao, clock)
    owner = logged_in_and_refreshed(service, clock)
    store = service.store
    real = store.delete_old_versions

    def out_of_time(name: str, deadline: Deadline | None = None) -> int:
        clock.advance(UNLINK_WEBHOOK_SECONDS)  # the write took the webhook's whole budget
        return real(name, deadline)

    store.delete_old_versions = out_of_time  # type: ignore[method-assign]

    assert service.forget_user(owner) == DOCUMENT

    generations = versioned.generations()
    assert generations[-1].live and generations[-1].document["login_error"]["error_code"]
    assert len(holding_tokens(generations)) == 7
    warnings = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    [left] = [
        w for w in warnings if w["severity"] == "WARNING" and "older versions" in w["message"]
    ]
    assert left["error"] == "DeadlineReached" and "lifecycle rule" in left["message"]


def test_forty_old_generations_go_within_the_webhooks_seconds_at_real_latency(
    gcs: GcsEmulator, fake_kakao: FakeKakao, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three days of refreshes are about forty generations; with 25 ms per Cloud Storage call
    the unlink, clean-up included, is done well inside Kakao's 3 seconds."""
    with versioned_bucket(gcs, monkeypatch) as versioned:
        relay = versioned.relay
        service = service_on(versioned, fake_kakao, None)  # the system clock: real seconds
        owner = complete_login(service).user_id
        assert owner is not None
        stored = service.store.read(DOCUMENT)
        assert stored is not None
        version = stored.version
        for _ in range(40):
            version = service.store.write(DOCUMENT, stored.data, version)
        relay.delay = 0.025
        started = time.monotonic()

        assert service.forget_user(owner) == DOCUMENT

        elapsed = time.monotonic() - started
        relay.delay = 0.0
        generations = versioned.generations()
    assert elapsed < UNLINK_WEBHOOK_SECONDS, elapsed
    assert len(generations) == 1 and holding_tokens(generations) == []


def test_the_bundled_emulator_still_deletes_the_live_object_for_a_named_generation(
    gcs: GcsEmulator,
) -> None:
    """Why GenerationDeletes exists: fake-gcs-server as bundled answers a DELETE of an old
    generation by making the live object old instead. When this fails, the emulator has
    fsouza/fake-gcs-server#2322: the relay can go."""
    bucket = gcs.new_bucket()
    requests.patch(
        f"{gcs.url}/storage/v1/b/{bucket}", json={"versioning": {"enabled": True}}, timeout=5
    )
    upload = f"{gcs.url}/upload/storage/v1/b/{bucket}/o"
    first = requests.post(
        upload, params={"uploadType": "media", "name": "doc"}, data=b"1", timeout=5
    )
    requests.post(upload, params={"uploadType": "media", "name": "doc"}, data=b"2", timeout=5)
    url = f"{gcs.url}/storage/v1/b/{bucket}/o/doc"

    requests.delete(url, params={"generation": first.json()["generation"]}, timeout=5)

    assert requests.get(url, timeout=5).status_code == 404  # the live one went
    old = requests.get(url, params={"generation": first.json()["generation"]}, timeout=5)
    assert old.status_code == 200  # the one named stayed
