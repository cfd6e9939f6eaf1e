"""Bad days after Kakao answered: storage down, answers lost or odd, the deadline near.

A refresh token that Kakao has rotated exists nowhere but in our hands; these tests pin what
happens to it in each case (see the module docstring of token_logic/service/refresh.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from dev.fake_kakao import FakeKakao
from tests.conftest import service_over
from tests.helpers import FakeClock, FlakyProxy, GcsEmulator, complete_login, rewrite_stored
from token_logic.budget import CLOCK_SKEW_SECONDS, STORE_RESERVE_SECONDS, Deadline
from token_logic.errors import (
    DeadlineReached,
    KakaoUnavailable,
    LoginRequired,
    StorageError,
    WriteConflict,
)
from token_logic.problems import problem_for
from token_logic.service.token_service import TokenService
from token_logic.storage.gcs import GcsTokenStore
from token_logic.storage.protocol import TokenStore
from token_logic.tokens import MIN_REFRESH_INTERVAL_SECONDS

DAY = 86400
NAME = "kakao_token.json"


def make_service(fake: FakeKakao, store: TokenStore, clock: FakeClock, **env: str) -> TokenService:
    """A short Kakao timeout: a bad day's waits stay short."""
    return service_over(store, fake, clock, KAKAO_TIMEOUT_SECONDS="1", **env)


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The package's JSON log lines written so far (it logs to stderr, not through caplog)."""
    lines = capsys.readouterr().err.splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def stored(store: TokenStore) -> dict[str, Any]:
    found = store.read(NAME)
    assert found is not None
    return dict(json.loads(found.data))


class OutageClock(FakeClock):
    """A fake clock that ends a storage outage once enough (fake) time has passed."""

    def __init__(self) -> None:
        super().__init__()
        self.proxy: FlakyProxy | None = None
        self.outage_ends = float("inf")

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if self.proxy is not None and self.current >= self.outage_ends:
            self.proxy.paused = False


@pytest.fixture
def outage(gcs: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, FlakyProxy]]:
    """A bucket behind a proxy that can go down; the storage client gives up on a request fast
    (its own retries wait in real time), so our retries until the deadline are what is tested."""
    monkeypatch.setattr("token_logic.storage.gcs.RETRY_BUDGET", 0.3)
    bucket = gcs.new_bucket()
    with FlakyProxy(gcs.url) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        yield bucket, proxy


def logged_in_at_rotation(
    fake_kakao: FakeKakao, bucket: str
) -> tuple[TokenService, GcsTokenStore, OutageClock]:
    """A login in the bucket, 31 days old: Kakao's next refresh issues a new refresh token."""
    clock = OutageClock()
    fake_kakao.state.clock = clock.time
    store = GcsTokenStore(bucket)
    service = make_service(fake_kakao, store, clock, TOKEN_BUCKET=bucket)
    complete_login(service)
    clock.advance(31 * DAY)
    return service, store, clock


def storage_down_after_kakao_answers(
    service: TokenService, proxy: FlakyProxy, clock: OutageClock, seconds: float
) -> None:
    real = service.kakao.redeem_refresh_token

    def answer_then_outage(refresh_token: str, deadline: Deadline | None = None) -> Any:
        response = real(refresh_token, deadline)
        proxy.paused = True
        clock.proxy, clock.outage_ends = proxy, clock.time() + seconds
        return response

    service.kakao.redeem_refresh_token = answer_then_outage  # type: ignore[method-assign]


def test_a_30_second_storage_outage_right_after_a_rotation_loses_nothing(
    fake_kakao: FakeKakao,
    outage: tuple[str, FlakyProxy],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Kakao rotates, then storage is down for 30 s: the write is retried until it lands; the
    stored refresh token is the live one and no lease is left behind."""
    bucket, proxy = outage
    service, store, clock = logged_in_at_rotation(fake_kakao, bucket)
    storage_down_after_kakao_answers(service, proxy, clock, seconds=30)

    result = service.refresh_user()

    document = stored(store)
    assert result.refreshed is True
    assert proxy.failed >= 10  # it really was down, and really retried
    assert document["refresh_token"] in fake_kakao.state.valid_refresh_tokens()
    assert "refresh_lease" not in document
    retries = [line for line in log_lines(capsys) if "until the deadline" in line["message"]]
    assert retries and all(line["severity"] == "WARNING" for line in retries)


def test_storage_down_past_the_deadline_is_a_clear_error_and_the_lease_expires(
    fake_kakao: FakeKakao,
    outage: tuple[str, FlakyProxy],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Storage down for longer than the request may run: the rotated token cannot be kept; the
    caller gets a 503 and an ERROR line for a person, and the lease left in the document ends
    no later than the deadline plus clock skew."""
    bucket, proxy = outage
    service, store, clock = logged_in_at_rotation(fake_kakao, bucket)
    started = clock.time()
    storage_down_after_kakao_answers(service, proxy, clock, seconds=3600)

    with pytest.raises((StorageError, DeadlineReached)) as caught:
        service.refresh_user()

    assert problem_for(caught.value).status == 503
    assert clock.time() - started <= 55  # gave up by the deadline (60 s timeout - 5 s)
    proxy.paused = False
    lease = stored(store)["refresh_lease"]
    assert lease["until"] <= started + 55 + CLOCK_SKEW_SECONDS + 1
    errors = [line for line in log_lines(capsys) if line["severity"] == "ERROR"]
    assert errors and errors[-1]["alert"] == "refresh_failed"


@pytest.mark.parametrize("lost", ["processed-reset", "processed-500", "processed-timeout"])
def test_a_lost_answer_outside_the_rotation_window_is_retried_to_success(
    fake_kakao: FakeKakao, clock: FakeClock, tmp_path: Any, lost: str
) -> None:
    """Kakao did the refresh but its answer was lost (reset, 5xx, a real client timeout): the
    refresh token was not rotated, so the retry with it succeeds."""
    from token_logic.storage.files import FileTokenStore

    store = FileTokenStore(tmp_path)
    service = make_service(fake_kakao, store, clock)
    complete_login(service)
    before = stored(store)
    fake_kakao.state.inject("/oauth/token", lost)

    result = service.refresh_user(force=True)

    assert result.refreshed is True
    assert fake_kakao.state.lost_answers == 1
    assert stored(store)["refresh_token"] == before["refresh_token"]


def test_a_lost_answer_that_rotated_is_a_dead_login_said_clearly(
    fake_kakao: FakeKakao, clock: FakeClock, tmp_path: Any
) -> None:
    """Kakao rotated and the answer (the only copy of the new refresh token) was lost: the
    retry gets KOE322, the re-read shows the same dead token, and the login is marked dead with
    a clear "log in again": nothing on our side can recover it."""
    from token_logic.storage.files import FileTokenStore

    store = FileTokenStore(tmp_path)
    service = make_service(fake_kakao, store, clock)
    complete_login(service)
    clock.advance(31 * DAY)
    fake_kakao.state.inject("/oauth/token", "processed-reset")

    with pytest.raises(LoginRequired) as caught:
        service.refresh_user()

    assert problem_for(caught.value).status == 401
    assert "log in again" in problem_for(caught.value).one_line().lower()
    document = stored(store)
    assert document["login_error"]["error_code"] == "KOE322"
    assert "refresh_lease" not in document


class _MarkLandsThenConflicts:
    """A file store whose write of the dead-login marker lands, then reports a conflict: what a
    retried upload whose first attempt landed sees."""

    def __init__(self, inner: TokenStore) -> None:
        self._inner = inner

    # The rest of TokenStore comes through here: mypy counts __getattr__ toward a protocol,
    # pyright does not, so the calls that pass this as a TokenStore silence pyright alone.
    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def write(self, name: str, data: bytes, expected: str | None, deadline: Any = None) -> str:
        version = self._inner.write(name, data, expected, deadline)
        if b"login_error" in data:
            raise WriteConflict(f"{name} changed since it was read")
        return version


def test_a_login_that_dies_now_is_news_even_if_its_mark_seemed_to_fail(
    fake_kakao: FakeKakao, clock: FakeClock, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """KOE322 in this run is reported as newly dead (alerting), however the mark came back;
    only a mark older than the call counts as known (its alert went out then)."""
    from token_logic.storage.files import FileTokenStore

    store = _MarkLandsThenConflicts(FileTokenStore(tmp_path))
    service = make_service(fake_kakao, store, clock)  # pyright: ignore[reportArgumentType]
    complete_login(service)
    fake_kakao.state.refresh_tokens.clear()  # dead at Kakao: KOE322

    with pytest.raises(LoginRequired) as now_dead:
        service.refresh_user(force=True)
    clock.advance(1800)
    with pytest.raises(LoginRequired) as still_dead:
        service.refresh_user(force=True)

    assert (now_dead.value.known, still_dead.value.known) == (False, True)
    assert stored(store)["login_error"]["error_code"] == "KOE322"  # pyright: ignore[reportArgumentType]


@pytest.mark.parametrize(
    "edit",
    [
        lambda body: {k: v for k, v in body.items() if k != "refresh_token_expires_in"},
        lambda body: {**body, "refresh_token_expires_in": str(body["refresh_token_expires_in"])},
        lambda body: {k: v for k, v in body.items() if k != "expires_in"},
    ],
)
def test_an_odd_rotating_answer_still_stores_the_new_refresh_token(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock, edit: Any
) -> None:
    """Kakao's rotating answer with a lifetime missing or as a string: the new refresh token is
    stored (it is the only live one), and the refresh succeeds."""
    service = make_service(fake_kakao, store, clock)
    complete_login(service)
    clock.advance(31 * DAY)
    fake_kakao.state.edit_refresh_answer = edit

    result = service.refresh_user()

    document = stored(store)
    assert result.refreshed is True
    assert document["refresh_token"] in fake_kakao.state.valid_refresh_tokens()
    assert document["expires_at"] > clock.now() and document["refresh_token_expires_at"] > (
        clock.now()
    )


def test_an_answer_without_access_token_keeps_its_refresh_token_then_fails_clearly(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """A rotating answer without an access token is refused (KakaoUnavailable), but only after
    its new refresh token has been stored; the next refresh works with it."""
    service = make_service(fake_kakao, store, clock)
    complete_login(service)
    clock.advance(31 * DAY)
    fake_kakao.state.edit_refresh_answer = lambda body: {
        k: v for k, v in body.items() if k != "access_token"
    }

    with pytest.raises(KakaoUnavailable):
        service.refresh_user()

    document = stored(store)
    assert document["refresh_token"] in fake_kakao.state.valid_refresh_tokens()
    assert "refresh_lease" not in document
    fake_kakao.state.edit_refresh_answer = None
    assert service.refresh_user(force=True).refreshed is True


def test_waiting_for_another_instances_lease_is_bounded_by_the_deadline(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """A lease held elsewhere for longer than we may wait (64 s ahead: another instance's
    lease can end 66 s from now at most, with 60 s functions): 503 with Retry-After by our
    deadline, not a loop of a fixed number of rounds; Kakao never called."""
    service = make_service(fake_kakao, store, clock)
    complete_login(service)
    clock.advance(21599)  # due
    rewrite_stored(
        store,
        lambda d: d.with_fields(refresh_lease={"owner": "other", "until": clock.now() + 64}),
    )
    started = clock.time()

    with pytest.raises(DeadlineReached) as caught:
        service.refresh_user()

    assert 50 <= clock.time() - started <= 55
    assert problem_for(caught.value).status == 503
    assert problem_for(caught.value).retry_after == pytest.approx(64 - 55, abs=2)
    assert fake_kakao.state.refresh_calls() == 0


def test_a_longer_running_holders_lease_is_waited_for_not_taken(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """A lease four minutes ahead, as a command or function with a 5-minute timeout holds it
    while it calls Kakao: still a live lease to a 60 s function (never taken over, which would
    spend the same refresh token twice); only one past the longest timeout any deployment may
    set counts as expired."""
    service = make_service(fake_kakao, store, clock)
    complete_login(service)
    clock.advance(21599)  # due
    rewrite_stored(
        store,
        lambda d: d.with_fields(refresh_lease={"owner": "other", "until": clock.now() + 240}),
    )

    with pytest.raises(DeadlineReached):
        service.refresh_user()

    assert fake_kakao.state.refresh_calls() == 0


def test_no_kakao_call_starts_that_could_not_be_stored_in_time(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """With less time left than a Kakao call plus the store reserve, nothing starts: no Kakao
    call, no lease left, a 503 to try again."""
    service = make_service(fake_kakao, store, clock)
    complete_login(service)
    clock.advance(21599)
    before = stored(store)
    refresher = service._refresher
    short = Deadline.after(STORE_RESERVE_SECONDS, clock)

    with pytest.raises(DeadlineReached):
        refresher.ensure_fresh(NAME, margin_seconds=3600, deadline=short)

    assert fake_kakao.state.refresh_calls() == 0
    assert stored(store) == before


def test_the_lease_covers_the_whole_request_and_no_more(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """While Kakao is called, the stored lease ends at the deadline plus clock skew."""
    service = make_service(fake_kakao, store, clock)
    complete_login(service)
    clock.advance(21599)
    seen: dict[str, Any] = {}
    real = service.kakao.redeem_refresh_token

    def look_at_the_lease(refresh_token: str, deadline: Deadline | None = None) -> Any:
        seen.update(stored(store)["refresh_lease"])
        return real(refresh_token, deadline)

    service.kakao.redeem_refresh_token = look_at_the_lease  # type: ignore[method-assign]
    started = clock.time()

    service.refresh_user()

    assert (
        started + 55 + CLOCK_SKEW_SECONDS <= seen["until"] <= started + 55 + CLOCK_SKEW_SECONDS + 1
    )


@pytest.mark.parametrize("left", [1.5, 4.0, 12.0, 32.0, 55.0])
def test_a_storage_call_and_its_retries_fit_in_what_is_left(left: float) -> None:
    """The storage client checks its retry budget only before another attempt, which may then
    take its whole timeout: budget + timeout must end before the deadline."""
    from token_logic.storage.gcs import _limits

    clock = FakeClock()
    timeout, budget = _limits(Deadline.after(left, clock))

    assert 0 < timeout <= 10 and budget >= 0
    assert budget + timeout <= left - 0.5


def test_asking_for_more_life_than_kakao_gives_does_not_refresh_every_call(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """A caller wanting 7 h from a 6 h token gets one refresh, then the just-refreshed token
    (still valid) on the next calls within MIN_REFRESH_INTERVAL_SECONDS: no KOE237 from a
    loop."""
    service = make_service(fake_kakao, store, clock)
    complete_login(service)
    clock.advance(MIN_REFRESH_INTERVAL_SECONDS)

    tokens = {service.access_token(leeway_seconds=7 * 3600) for _ in range(5)}

    assert fake_kakao.state.refresh_calls() == 1
    assert len(tokens) == 1 and tokens == {stored(store)["access_token"]}
