"""The sweep over many users: facts beside every document, one listing, parallel, deadline-bound."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from dev.fake_kakao import FakeKakao
from tests.conftest import service_over, settings_env
from tests.helpers import REDIRECT_URI, FakeClock, GcsEmulator, complete_login, rewrite_stored
from token_logic.budget import Deadline
from token_logic.config import Settings
from token_logic.errors import (
    DeadlineReached,
    KakaoUnavailable,
    LoginRequired,
    NoTokenStored,
    StorageError,
)
from token_logic.network import new_session
from token_logic.service.refresh import RefreshResult
from token_logic.service.shards import Shard
from token_logic.service.sweep import RefreshOutcome, outcome_kind, run_sweep
from token_logic.service.token_service import TokenService
from token_logic.storage.facts import Listed, ListingStore, document_of, facts_of
from token_logic.storage.files import FileTokenStore
from token_logic.storage.gcs import GcsTokenStore
from token_logic.storage.protocol import Stored, TokenStore, read_document
from token_logic.tokens import TokenDocument, to_json
from token_logic.web.sweep_report import sweep_report
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
    return service_over(store, fake_kakao, clock, TOKEN_DIR=str(tmp_path))


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
    item = listed(service.store)
    assert item is not None
    assert document_of(item.facts or {}).lease == ("", clock.now() + 60)
    assert leased.lease is not None

    rewrite_stored(service.store, lambda d: d.with_fields(refresh_lease=None))
    fake_kakao.state.refresh_tokens.clear()  # revoked at Kakao
    with pytest.raises(LoginRequired):
        service.refresh_user(force=True)
    dead = assert_in_step(service.store)
    assert dead.login_error == "KOE322"


def test_unlink_and_logout_keep_the_listing_in_step(service: TokenService) -> None:
    """An unlinked or logged-out single document is listed as a dead login (its owner kept);
    a deleted per-user document is not listed."""
    document = complete_login(service)
    assert document.user_id is not None

    service.forget_user(document.user_id)

    stored = service.store.read(NAME)
    if stored is not None:  # a single document keeps its owner as a dead-login marker
        item = listed(service.store)
        assert item is not None and document_of(item.facts or {}).login_error
    service.logout()
    after = listed(service.store)
    if stored is None:  # per-user: the document is gone
        assert after is None
    else:  # a single document stays its owner's, as a dead-login marker
        assert after is not None and document_of(after.facts or {}).login_error


def test_sweep_decides_from_the_listing_alone(service: TokenService, fake_kakao: FakeKakao) -> None:
    """Nothing due: the sweep reads no document and calls Kakao zero times."""
    complete_login(service)
    reads = Counter[str]()
    original = service.store.read

    def counting_read(name: str, deadline: Deadline | None = None) -> Stored | None:
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


def due_fields(clock: FakeClock) -> dict[str, object]:
    """A document whose access token has expired."""
    return {
        "access_token": "a",
        "refresh_token": "r",
        "expires_at": clock.now() - 1,
        "refresh_token_expires_at": clock.now() + 50 * DAY,
        "updated_at": clock.now() - DAY,
    }


def due_listing(count: int, clock: FakeClock) -> list[Listed]:
    """``count`` documents whose access tokens have expired, as a listing shows them."""
    facts = facts_of(TokenDocument(due_fields(clock)))
    return [Listed(f"tokens/{i}.json", "1", "1", facts) for i in range(count)]


def sweep_with(
    store: TokenStore,
    items: list[Listed],
    refresh: Callable[[str, Deadline], RefreshResult],
    clock: FakeClock,
    workers: int = 1,
) -> list[RefreshOutcome]:
    """run_sweep with a 55 s deadline and a 1 h margin, as the function runs it."""
    return run_sweep(
        store,
        items,
        refresh,
        now=clock.now(),
        margin_seconds=3600,
        deadline=Deadline.after(55, clock),
        workers=workers,
    )


def test_deadline_leaves_the_rest_deferred(clock: FakeClock, tmp_path: Path) -> None:
    """No refresh starts that could not finish before the deadline: the rest is deferred."""
    items = due_listing(5, clock)

    def slow_refresh(name: str, deadline: Deadline) -> RefreshResult:
        clock.advance(10)
        return RefreshResult(name, TokenDocument({}), refreshed=True)

    outcomes = sweep_with(FileTokenStore(tmp_path), items, slow_refresh, clock)

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

    outcomes = sweep_with(FileTokenStore(tmp_path), items, refresh, clock, workers=3)

    kinds = {o.name: outcome_kind(o) for o in outcomes}
    assert kinds.pop("tokens/1.json") == kinds.pop("tokens/4.json") == "failed"
    assert set(kinds.values()) == {"refreshed"}


def test_most_urgent_first_so_deferral_never_starves_the_same_users(
    clock: FakeClock, tmp_path: Path
) -> None:
    """Work starts in order of expiry (documents without facts first), not in name order."""
    items = due_listing(4, clock)
    expiries = [clock.now() - 10, clock.now() - 400, clock.now() - 30, clock.now() - 200]
    items = [
        Listed(item.name, "1", "1", {**(item.facts or {}), "kt-expires_at": str(expires)})
        for item, expires in zip(items, expiries, strict=True)
    ] + [Listed("tokens/9.json", "1", "1", None)]
    started: list[str] = []

    def refresh(name: str, deadline: Deadline) -> RefreshResult:
        started.append(name)
        return RefreshResult(name, TokenDocument({}), refreshed=True)

    store = FileTokenStore(tmp_path)
    store.overwrite("tokens/9.json", to_json(TokenDocument(dict(due_fields(clock)))))
    outcomes = sweep_with(store, items, refresh, clock)

    assert started == [f"tokens/{i}.json" for i in (9, 1, 3, 2, 0)]
    assert [o.name for o in outcomes] == [item.name for item in items]  # answered in order


def test_a_document_gone_since_the_listing_is_gone_not_failed(
    clock: FakeClock, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Logged out or unlinked between the listing and its turn: counted gone, no alert."""
    items = [Listed("tokens/5.json", "1", "1", None)]  # listed, then deleted

    def refresh(name: str, deadline: Deadline) -> RefreshResult:
        raise AssertionError("nothing to refresh")

    outcomes = sweep_with(FileTokenStore(tmp_path), items, refresh, clock)
    status, body = sweep_report(outcomes, clock.now(), "tokens/{user_id}.json", REDIRECT_URI)

    assert [outcome_kind(o) for o in outcomes] == ["gone"]
    assert (status, body["status"], body["failures"]) == (200, "ok", [])
    assert '"severity": "ERROR"' not in capfd.readouterr().err


@pytest.mark.parametrize(
    "odd",
    [
        {"expires_at": 1.5e9},  # a float
        {"user_id": "abc"},
        {"refresh_token_expires_at": None},
        {"expires_at": "soon"},
    ],
    ids=["float", "user_id", "missing", "text"],
)
def test_one_odd_document_costs_only_its_own_user(
    gcs: GcsEmulator,
    fake_kakao: FakeKakao,
    clock: FakeClock,
    odd: dict[str, object],
) -> None:
    """Written by another tool with odd values, stored with no facts or with garbage facts:
    the sweep reads it and its user alone may fail; everyone else is refreshed, every run."""
    bucket = gcs.new_bucket()
    template = "tokens/{user_id}.json"
    env = settings_env(fake_kakao, TOKEN_BUCKET=bucket, TOKEN_OBJECT=template)
    service = build_service(Settings.from_env(env), session=new_session(), clock=clock)
    store = service.store
    good = complete_login(service)
    mine = f"tokens/{good.user_id}.json"
    odd_fields = {**good.fields, **odd}
    odd_document = {key: value for key, value in odd_fields.items() if value is not None}
    store.overwrite("tokens/8.json", json.dumps(odd_document).encode())
    store.overwrite("tokens/9.json", to_json(good))
    requests.patch(  # facts that do not parse, as a hand edit in the console would leave them
        f"{gcs.url}/storage/v1/b/{bucket}/o/tokens%2F9.json",
        json={"metadata": {"kt-expires_at": "soon", "kt-refresh_token_expires_at": "x"}},
        timeout=5,
    ).raise_for_status()
    clock.advance(6 * 3600)  # every access token is due

    for _ in range(2):  # the first run may attach facts; the second decides from them
        kinds = {o.name: outcome_kind(o) for o in service.sweep()}
        assert kinds[mine] in ("refreshed", "skipped")
        assert kinds["tokens/9.json"] in ("refreshed", "skipped")
        assert kinds["tokens/8.json"] in ("refreshed", "skipped", "failed")


@pytest.mark.parametrize("text", ["", "1", "4/4", "-1/2", "a/b", "1/0"])
def test_bad_shard_is_refused(text: str) -> None:
    """A shard must be I/N with 0 <= I < N."""
    with pytest.raises(ValueError):
        Shard.parse(text)


def test_summary_counts_and_caps_failures(
    clock: FakeClock, capfd: pytest.CaptureFixture[str]
) -> None:
    """Counts by outcome; failure details capped, with user ids; one ERROR line per login found
    dead in this run (alert=login_dead); failed refreshes logged one by one up to the cap, then
    once; deferred work with nothing refreshed, one ERROR line (alert=refresh_deferred)."""
    dead = LoginRequired(401, "invalid_grant", "KOE322")
    outcomes = (
        [RefreshOutcome(f"tokens/{i}.json", None, dead) for i in range(30)]
        + [
            RefreshOutcome(f"tokens/{50 + i}.json", None, KakaoUnavailable("timeout"))
            for i in range(25)
        ]
        + [
            RefreshOutcome(f"tokens/{100 + i}.json", None, DeadlineReached("late"))
            for i in range(5)
        ]
        + [RefreshOutcome("tokens/200.json", None, NoTokenStored("logged out meanwhile"))]
    )

    status, body = sweep_report(outcomes, clock.now(), "tokens/{user_id}.json", REDIRECT_URI)

    assert status == 504 and body["status"] == "failed"  # the worst: a Kakao timeout
    assert body["counts"] == {
        "refreshed": 0,
        "skipped": 0,
        "dead": 30,
        "gone": 1,
        "failed": 25,
        "deferred": 5,
    }
    assert len(body["failures"]) == 20 and body["failures_omitted"] == 35
    assert body["failures"][0]["user_id"] == 0 and "documents" not in body
    lines = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    alerts = Counter(line.get("alert") for line in lines if line["severity"] == "ERROR")
    assert alerts == {"login_dead": 30, "refresh_failed": 20 + 1, "refresh_deferred": 1}
    [rest] = [line for line in lines if line.get("not_logged")]
    assert rest["not_logged"] == 5
    [deferred] = [line for line in lines if line.get("alert") == "refresh_deferred"]
    assert deferred["deferred"] == 5


def test_a_login_already_marked_dead_is_counted_without_alerting_again(
    clock: FakeClock, capfd: pytest.CaptureFixture[str]
) -> None:
    """Its alert went out when it died: later sweeps count and detail it, log no ERROR, and
    answer 200, so a few dead users among thousands never make every run look failed."""
    known = LoginRequired(401, "invalid_grant", "KOE322", known=True)
    outcomes = [RefreshOutcome(f"tokens/{i}.json", None, known) for i in range(3)]

    status, body = sweep_report(outcomes, clock.now(), "tokens/{user_id}.json", REDIRECT_URI)

    assert (status, body["status"], body["counts"]["dead"]) == (200, "ok", 3)
    assert [f["user_id"] for f in body["failures"]] == [0, 1, 2]
    assert body["message"] == f"log in again at {REDIRECT_URI}"
    assert '"severity": "ERROR"' not in capfd.readouterr().err


def test_this_runs_failures_are_detailed_before_logins_long_dead(clock: FakeClock) -> None:
    """With more long-dead users than the cap, the details still name this run's failures,
    and the message speaks of both."""
    known = LoginRequired(401, "invalid_grant", "KOE322", known=True)
    outcomes = [RefreshOutcome(f"tokens/{i}.json", None, known) for i in range(25)] + [
        RefreshOutcome(f"tokens/{90 + i}.json", None, KakaoUnavailable("timeout")) for i in range(3)
    ]

    status, body = sweep_report(outcomes, clock.now(), "tokens/{user_id}.json", REDIRECT_URI)

    assert status == 504 and body["status"] == "failed"
    assert [f["user_id"] for f in body["failures"][:3]] == [90, 91, 92]
    assert len(body["failures"]) == 20 and body["failures_omitted"] == 8
    assert body["message"].startswith(f"log in again at {REDIRECT_URI}; some refreshes failed")


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


class _SlowPages(FakeClock):
    """Each look at the time finds 30 s gone: a listing whose pages come back slowly."""

    def time(self) -> float:
        self.current += 30
        return self.current


def test_listing_goes_page_by_page_within_the_deadline(
    gcs: GcsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page is its own request fitted to what is left; none starts past the deadline."""
    monkeypatch.setattr("token_logic.storage.gcs._LISTING_PAGE", 2)
    store = GcsTokenStore(gcs.new_bucket())
    for i in range(5):
        store.overwrite(f"tokens/{i}.json", b"{}")

    assert len(store.listing("tokens/", Deadline.after(55, FakeClock()))) == 5  # three pages
    slow = _SlowPages()
    with pytest.raises(DeadlineReached):
        store.listing("tokens/", Deadline(slow.current + 55, slow))


class _NoMetadataUpdates(FileTokenStore):
    def backfill(self, listed: Listed, facts: object, deadline: Deadline | None = None) -> None:
        raise StorageError("metadata update failed")


def test_a_failed_backfill_is_not_the_users_failure(clock: FakeClock, tmp_path: Path) -> None:
    """Attaching facts only saves later reads: if it fails, the user is refreshed all the same."""
    store = _NoMetadataUpdates(tmp_path)
    store.overwrite("tokens/3.json", to_json(TokenDocument(dict(due_fields(clock)))))

    def refresh(name: str, deadline: Deadline) -> RefreshResult:
        return RefreshResult(name, TokenDocument({}), refreshed=True)

    outcomes = sweep_with(
        store,
        [Listed("tokens/3.json", _version_of(store, "tokens/3.json"), "1", None)],
        refresh,
        clock,
    )

    assert [outcome_kind(o) for o in outcomes] == ["refreshed"]


def _version_of(store: TokenStore, name: str) -> str:
    stored = store.read(name)
    assert stored is not None
    return stored.version


# -- falling behind: deferrals that ask a person to act ------------------------------------


def alerts_in(capfd: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    """The log lines that carry an alert (what deploy.sh's policy mails on)."""
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line[:1] == "{"]
    return [line for line in lines if line.get("alert")]


REFRESHED = TokenDocument(
    {"access_token": "a", "refresh_token": "r", "expires_at": 2, "refresh_token_expires_at": 3}
)


def run_of(refreshed: int, deferred: int, under_way: int = 0) -> list[RefreshOutcome]:
    """A run's outcomes: some refreshed, some deferred for lack of time, some left to a
    refresh already under way."""
    late = DeadlineReached("the sweep's deadline is near", retry_after=60)
    held = DeadlineReached("another refresh of this login is under way", retry_after=60)
    return (
        [
            RefreshOutcome(f"tokens/{i}.json", RefreshResult("", REFRESHED, True), None)
            for i in range(refreshed)
        ]
        + [RefreshOutcome(f"tokens/{100 + i}.json", None, late) for i in range(deferred)]
        + [RefreshOutcome(f"tokens/{200 + i}.json", None, held, True) for i in range(under_way)]
    )


def report(
    outcomes: list[RefreshOutcome], clock: FakeClock, runs: int = 0
) -> tuple[int, dict[str, Any]]:
    return sweep_report(
        outcomes, clock.now(), "tokens/{user_id}.json", REDIRECT_URI, deferred_runs=runs
    )


def test_a_run_that_refreshes_nobody_while_some_are_due_alerts(
    clock: FakeClock, capfd: pytest.CaptureFixture[str]
) -> None:
    """Every due login deferred for lack of time: one ERROR line (alert=refresh_deferred), the
    status failed and a 503, a message naming the way out; even the first time it happens."""
    status, body = report(run_of(refreshed=0, deferred=40), clock, runs=1)

    assert (status, body["status"]) == (503, "failed")
    assert "REFRESH_SHARDS" in body["message"] and body["deferred_runs"] == 1
    [alert] = alerts_in(capfd)
    assert alert["alert"] == "refresh_deferred" and alert["severity"] == "ERROR"
    assert (alert["deferred"], alert["refreshed"]) == (40, 0)


def test_one_run_that_defers_some_is_only_a_warning(
    clock: FakeClock, capfd: pytest.CaptureFixture[str]
) -> None:
    """Some refreshed, some left for the next run, the first time: a WARNING, 200, no alert."""
    status, body = report(run_of(refreshed=900, deferred=100), clock, runs=1)

    assert (status, body["status"]) == (200, "ok")
    assert alerts_in(capfd) == []


def test_deferrals_run_after_run_alert(clock: FakeClock, capfd: pytest.CaptureFixture[str]) -> None:
    """The second run in a row that defers due logins: ERROR alert, failed, 503."""
    status, body = report(run_of(refreshed=900, deferred=100), clock, runs=2)

    assert (status, body["status"]) == (503, "failed")
    assert "2 runs in a row" in body["message"]
    [alert] = alerts_in(capfd)
    assert (alert["alert"], alert["deferred_runs"]) == ("refresh_deferred", 2)


def test_a_normal_run_alerts_nothing(clock: FakeClock, capfd: pytest.CaptureFixture[str]) -> None:
    """Refreshed and skipped, nothing deferred: 200 ok, no alert, no WARNING."""
    status, body = report(run_of(refreshed=5, deferred=0), clock)

    assert (status, body["status"]) == (200, "ok") and "deferred_runs" not in body
    assert '"severity": "WARNING"' not in capfd.readouterr().err


def test_a_login_left_to_a_refresh_under_way_is_not_falling_behind(
    clock: FakeClock, capfd: pytest.CaptureFixture[str]
) -> None:
    """Its lease's holder refreshes it: counted deferred, but never the alert, even when the
    run refreshed nobody else."""
    status, body = report(run_of(refreshed=0, deferred=0, under_way=2), clock)

    assert (status, body["counts"]["deferred"]) == (200, 2)
    assert alerts_in(capfd) == []


class _CountingStore(FileTokenStore):
    """Counts writes and deletes: the memory changes the store only when it changes."""

    changes = 0

    def write(
        self,
        name: str,
        data: bytes,
        expected_version: str | None,
        deadline: Deadline | None = None,
    ) -> str:
        self.changes += 1
        return super().write(name, data, expected_version, deadline)

    def delete(
        self, name: str, expected_version: str | None = None, deadline: Deadline | None = None
    ) -> bool:
        self.changes += 1
        return super().delete(name, expected_version, deadline)


def test_the_sweeps_memory_counts_runs_in_a_row_and_changes_only_when_it_must(
    clock: FakeClock, tmp_path: Path
) -> None:
    """Kept per shard in the store, so every instance sees it: runs that defer count up (each a
    write), the first run that does not resets it (a delete), runs like it write nothing; the
    same shard of another N, or another shard, keeps its own count."""
    from token_logic.service.sweep_memory import memory_name, remember_run

    store = _CountingStore(tmp_path)
    template = "tokens/{user_id}.json"
    shard = Shard(3, 10)
    deadline = Deadline.after(55, clock)

    def run(deferred: int, on: Shard = shard) -> int:
        return remember_run(store, template, on, run_of(5, deferred), clock.now(), deadline)

    assert [run(0), run(0)] == [0, 0] and store.changes == 0
    assert [run(7), run(3), run(9)] == [1, 2, 3] and store.changes == 3
    assert [run(1, Shard(3, 12)), run(1, Shard(4, 10))] == [1, 1]
    assert [run(0), run(0), run(2)] == [0, 0, 1] and store.changes == 3 + 2 + 1 + 1
    assert memory_name(template, shard) == "tokens/.kakao-token-sweep-3-of-10.json"
    assert store.names("tokens/") == []  # a dot-name: never one of the documents
    assert memory_name("users/{user_id}/token.json", shard).startswith("users/.kakao")


def test_a_memory_the_store_cannot_keep_never_costs_the_answer(
    clock: FakeClock, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Storage failing for the memory: a WARNING, and the run counts as the first."""
    from token_logic.service.sweep_memory import remember_run

    class Broken(FileTokenStore):
        def read(self, name: str, deadline: Deadline | None = None) -> Stored | None:
            raise StorageError("down")

    runs = remember_run(
        Broken(tmp_path), "tokens/{user_id}.json", Shard(), run_of(0, 3), clock.now(),
        Deadline.after(55, clock),
    )  # fmt: skip

    assert runs == 1
    assert "could not keep the sweep's memory" in capfd.readouterr().err


def test_the_scheduled_refresh_alerts_when_it_falls_behind_run_after_run(
    fake_kakao: FakeKakao, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Through kakao_refresh's handler: a shard whose every due login is deferred answers 503
    with an alert each run, counting the runs; once it keeps up it answers 200, no alert."""
    import flask

    from token_logic.web.refresh_endpoint import handle_refresh

    clock = _SlowPages()  # every look at the time finds 30 s gone: no refresh can start
    env = settings_env(fake_kakao, TOKEN_DIR=str(tmp_path), TOKEN_OBJECT="tokens/{user_id}.json")
    service = build_service(Settings.from_env(env), session=new_session(), clock=clock)
    for user_id in range(10, 20):
        service.store.overwrite(
            f"tokens/{user_id}.json", to_json(TokenDocument(dict(due_fields(clock))))
        )
    app = flask.Flask(__name__)

    def post(shard: str) -> tuple[int, dict[str, Any]]:
        with app.test_request_context(f"/?shard={shard}", method="POST"):
            response = handle_refresh(flask.request, lambda: service)
        return response.status_code, response.get_json()

    first, second = post("3/10"), post("3/10")

    assert [first[0], second[0]] == [503, 503]
    assert [first[1]["deferred_runs"], second[1]["deferred_runs"]] == [1, 2]
    assert first[1]["counts"]["deferred"] == 1  # tokens/13.json alone is shard 3's
    assert [a["alert"] for a in alerts_in(capfd)] == ["refresh_deferred"] * 2
    status, body = post("4/10")  # another shard: its own memory
    assert body["deferred_runs"] == 1
    capfd.readouterr()
    service.store.overwrite("tokens/13.json", to_json(TokenDocument({**due_fields(clock),
        "expires_at": clock.now() + 6 * 3600})))  # fmt: skip
    status, body = post("3/10")
    assert (status, body["status"], "deferred_runs" in body) == (200, "ok", False)
    assert alerts_in(capfd) == []
