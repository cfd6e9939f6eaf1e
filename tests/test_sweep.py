"""The sweep over many users: facts beside every document, one listing, parallel, deadline-bound."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import requests

from dev.fake_kakao import FakeKakao
from tests.conftest import settings_env
from tests.helpers import REDIRECT_URI, FakeClock, GcsEmulator, complete_login, rewrite_stored
from token_logic.budget import Deadline
from token_logic.config import Settings
from token_logic.errors import DeadlineReached, KakaoUnavailable, LoginRequired
from token_logic.file_store import FileTokenStore
from token_logic.gcs_store import GcsTokenStore
from token_logic.index import Listed, ListingStore, document_of, facts_of
from token_logic.kakao import new_session
from token_logic.refresh import RefreshResult
from token_logic.service import TokenService
from token_logic.store import TokenStore, read_document
from token_logic.sweep import RefreshOutcome, Shard, outcome_kind, run_sweep
from token_logic.sweep_report import sweep_report
from token_logic.tokens import TokenDocument, to_json
from token_logic.wiring import build_service

NAME = "kakao_token.json"
DAY = 86400


@pytest.fixture(params=["file", "gcs"])
def service(
    request: pytest.FixtureRequest, fake_kakao: FakeKakao, clock: FakeClock, tmp_path: Path
) -> TokenService:
    """A single-document service on each store in turn."""
    store: TokenStore
    if request.param == "file":
        store = FileTokenStore(tmp_path)
    else:
        gcs: GcsEmulator = request.getfixturevalue("gcs")
        store = GcsTokenStore(gcs.new_bucket())
    settings = Settings.from_env(settings_env(fake_kakao, TOKEN_DIR=str(tmp_path)))
    return build_service(settings, session=new_session(), store=store, clock=clock)


def listed(store: TokenStore, name: str = NAME) -> Listed | None:
    assert isinstance(store, ListingStore)
    return next((item for item in store.listing("") if item.name == name), None)


def assert_in_step(store: TokenStore) -> TokenDocument:
    """The listing's facts say what the document says."""
    _, document = read_document(store, NAME)
    item = listed(store)
    assert item is not None and item.facts is not None
    assert dict(item.facts) == facts_of(document)
    return document


def test_facts_follow_login_refresh_lease_and_dead_login(
    service: TokenService, fake_kakao: FakeKakao, clock: FakeClock
) -> None:
    """Every write carries the facts: a login, a refresh, a lease and a dead login."""
    complete_login(service)
    assert_in_step(service.store)

    clock.advance(6 * 3600)
    service.refresh_user(force=True)
    refreshed = assert_in_step(service.store)
    assert refreshed.lease is None and refreshed.expires_at > clock.now()

    rewrite_stored(
        service.store,
        lambda d: d.with_fields(refresh_lease={"owner": "x", "until": clock.now() + 60}),
    )
    leased = assert_in_step(service.store)
    assert document_of(listed(service.store).facts or {}).lease == ("", clock.now() + 60)
    assert leased.lease is not None

    rewrite_stored(service.store, lambda d: d.with_fields(refresh_lease=None))
    fake_kakao.state.refresh_tokens.clear()  # revoked at Kakao
    with pytest.raises(LoginRequired):
        service.refresh_user(force=True)
    dead = assert_in_step(service.store)
    assert dead.login_error == "KOE322"


def test_unlink_and_logout_keep_the_listing_in_step(service: TokenService) -> None:
    """An unlinked login's marker is listed as dead; a deleted document (logout) is not listed."""
    document = complete_login(service)
    assert document.user_id is not None

    service.forget_user(document.user_id)

    stored = service.store.read(NAME)
    if stored is not None:  # a single document keeps its owner as a dead-login marker
        item = listed(service.store)
        assert item is not None and document_of(item.facts or {}).login_error
    service.logout()
    assert listed(service.store) is None


def test_sweep_decides_from_the_listing_alone(service: TokenService, fake_kakao: FakeKakao) -> None:
    """Nothing due: the sweep reads no document and calls Kakao zero times."""
    complete_login(service)
    reads = Counter[str]()
    original = service.store.read

    def counting_read(name: str, deadline: Deadline | None = None):  # type: ignore[no-untyped-def]
        reads[name] += 1
        return original(name, deadline)

    service.store.read = counting_read  # type: ignore[method-assign]

    outcomes = service.sweep()

    assert [outcome_kind(o) for o in outcomes] == ["skipped"]
    assert reads[NAME] == 0 and fake_kakao.state.refresh_calls() == 0


def test_dead_login_reported_from_the_listing(service: TokenService, fake_kakao: FakeKakao) -> None:
    """A login marked dead is reported as dead on every sweep without asking Kakao."""
    complete_login(service)
    rewrite_stored(service.store, lambda d: d.with_fields(login_error={"error_code": "KOE322"}))

    outcomes = service.sweep(force=True)

    assert [outcome_kind(o) for o in outcomes] == ["dead"]
    assert fake_kakao.state.refresh_calls() == 0


def test_old_document_without_facts_is_read_once_and_backfilled(
    gcs: GcsEmulator, fake_kakao: FakeKakao, clock: FakeClock, tmp_path: Path
) -> None:
    """A document uploaded without metadata is read by the first sweep, which attaches its facts
    (a metadata-only update: same generation); the next sweep decides on the listing alone."""
    bucket = gcs.new_bucket()
    store = GcsTokenStore(bucket)
    settings = Settings.from_env(settings_env(fake_kakao, TOKEN_BUCKET=bucket))
    service = build_service(settings, session=new_session(), store=store, clock=clock)
    complete_login(service)
    _, document = read_document(store, NAME)
    requests.post(  # as another tool, or this project before the index, wrote it
        f"{gcs.url}/upload/storage/v1/b/{bucket}/o",
        params={"uploadType": "media", "name": NAME},
        data=to_json(document),
        timeout=5,
    ).raise_for_status()
    before = listed(store)
    assert before is not None and before.facts is None

    assert [outcome_kind(o) for o in service.sweep()] == ["skipped"]

    after = listed(store)
    assert after is not None and after.version == before.version
    assert dict(after.facts or {}) == facts_of(document)
    assert fake_kakao.state.refresh_calls() == 0


def due_listing(count: int, clock: FakeClock) -> list[Listed]:
    """``count`` documents whose access tokens have expired, as a listing shows them."""
    expired = TokenDocument(
        {
            "access_token": "a",
            "refresh_token": "r",
            "expires_at": clock.now() - 1,
            "refresh_token_expires_at": clock.now() + 50 * DAY,
            "updated_at": clock.now() - DAY,
        }
    )
    return [Listed(f"tokens/{i}.json", "1", "1", facts_of(expired)) for i in range(count)]


def test_deadline_leaves_the_rest_deferred(clock: FakeClock, tmp_path: Path) -> None:
    """No refresh starts that could not finish before the deadline: the rest is deferred."""
    items = due_listing(5, clock)

    def slow_refresh(name: str, deadline: Deadline) -> RefreshResult:
        clock.advance(10)
        return RefreshResult(name, TokenDocument({}), refreshed=True)

    outcomes = run_sweep(
        FileTokenStore(tmp_path),
        items,
        slow_refresh,
        now=clock.now(),
        margin_seconds=3600,
        deadline=Deadline.after(55, clock),
        workers=1,
    )

    # Starts at 55, 45 and 35 s left; 25 s is too little (2 s Kakao + 32 s storage reserve).
    assert [outcome_kind(o) for o in outcomes] == ["refreshed"] * 3 + ["deferred"] * 2


def test_one_failing_user_stops_nobody(clock: FakeClock, tmp_path: Path) -> None:
    """A Kakao failure and even a bug for one user leave every other user refreshed."""
    items = due_listing(6, clock)

    def refresh(name: str, deadline: Deadline) -> RefreshResult:
        if name == "tokens/1.json":
            raise KakaoUnavailable("timeout")
        if name == "tokens/4.json":
            raise RuntimeError("a bug")
        return RefreshResult(name, TokenDocument({}), refreshed=True)

    outcomes = run_sweep(
        FileTokenStore(tmp_path),
        items,
        refresh,
        now=clock.now(),
        margin_seconds=3600,
        deadline=Deadline.after(55, clock),
        workers=3,
    )

    kinds = {o.name: outcome_kind(o) for o in outcomes}
    assert kinds.pop("tokens/1.json") == kinds.pop("tokens/4.json") == "failed"
    assert set(kinds.values()) == {"refreshed"}


def test_shards_split_every_document_exactly_once() -> None:
    """Each name lands in exactly one of N shards, the same one every time, roughly evenly."""
    names = [f"tokens/{1_000_000 + i}.json" for i in range(4000)]
    shards = [Shard.parse(f"{i}/4") for i in range(4)]

    holders = [[s.index for s in shards if s.holds(name)] for name in names]

    assert all(len(h) == 1 for h in holders)
    sizes = Counter(h[0] for h in holders)
    assert min(sizes.values()) > 800
    assert Shard.parse("0/1").holds(names[0])


@pytest.mark.parametrize("text", ["", "1", "4/4", "-1/2", "a/b", "1/0"])
def test_bad_shard_is_refused(text: str) -> None:
    """A shard must be I/N with 0 <= I < N."""
    with pytest.raises(ValueError):
        Shard.parse(text)


def test_summary_counts_and_caps_failures(
    clock: FakeClock, capfd: pytest.CaptureFixture[str]
) -> None:
    """Counts by outcome; failure details capped, with user ids; one ERROR line per dead login
    (alert=login_dead) and failed refresh (refresh_failed); none for deferred work."""
    outcomes = (
        [
            RefreshOutcome(f"tokens/{i}.json", None, LoginRequired(401, "invalid_grant", "KOE322"))
            for i in range(30)
        ]
        + [RefreshOutcome("tokens/77.json", None, KakaoUnavailable("timeout"))]
        + [
            RefreshOutcome(f"tokens/{100 + i}.json", None, DeadlineReached("late"))
            for i in range(5)
        ]
    )

    status, body = sweep_report(outcomes, clock.now(), "tokens/{user_id}.json", REDIRECT_URI)

    assert status == 504 and body["status"] == "failed"  # the worst: a Kakao timeout
    assert body["counts"] == {"refreshed": 0, "skipped": 0, "dead": 30, "failed": 1, "deferred": 5}
    assert len(body["failures"]) == 20 and body["failures_omitted"] == 11
    assert body["failures"][0]["user_id"] == 0 and "documents" not in body
    lines = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    alerts = Counter(line.get("alert") for line in lines if line["severity"] == "ERROR")
    assert alerts == {"login_dead": 30, "refresh_failed": 1}


def test_shards_of_a_sweep_cover_every_document_once(
    fake_kakao: FakeKakao, clock: FakeClock, tmp_path: Path
) -> None:
    """Sweeping shards 0/3, 1/3 and 2/3 visits every stored document exactly once."""
    env = settings_env(fake_kakao, TOKEN_DIR=str(tmp_path), TOKEN_OBJECT="tokens/{user_id}.json")
    service = build_service(Settings.from_env(env), session=new_session(), clock=clock)
    fresh = TokenDocument(
        {
            "access_token": "a",
            "refresh_token": "r",
            "expires_at": clock.now() + 6 * 3600,
            "refresh_token_expires_at": clock.now() + 50 * DAY,
            "updated_at": clock.now(),
        }
    )
    names = {f"tokens/{1000 + i}.json" for i in range(30)}
    for name in names:
        service.store.overwrite(name, to_json(fresh))

    seen = [o.name for i in range(3) for o in service.sweep(shard=Shard(i, 3))]

    assert sorted(seen) == sorted(names)
