"""A failed refresh pauses that login's refreshes for every instance (service/backoff.py): a bad
day at Kakao costs Kakao no extra calls, and callers get the failure with Retry-After."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dev.fake_kakao import FakeKakao, FakeKakaoState
from tests.conftest import service_over
from tests.helpers import REDIRECT_URI, FakeClock, complete_login, rewrite_stored
from token_logic.errors import KakaoError, KakaoUnavailable
from token_logic.problems import problem_for
from token_logic.service.backoff import Backoff, backoff_after
from token_logic.storage.files import FileTokenStore
from token_logic.storage.protocol import TokenStore

NAME = "kakao_token.json"


def stored(store: TokenStore) -> dict[str, Any]:
    found = store.read(NAME)
    assert found is not None
    return dict(json.loads(found.data))


def due_in(store: TokenStore, seconds: int, now: int) -> None:
    """The access token expires ``seconds`` from ``now``, issued hours ago."""
    rewrite_stored(
        store, lambda d: d.with_fields(expires_at=now + seconds, updated_at=now - 3 * 3600)
    )


def kakao_token_calls(fake: FakeKakao) -> int:
    """Every request Kakao's token endpoint received, failed ones included."""
    return fake.state.calls["/oauth/token"]


@pytest.mark.parametrize(
    ("code", "status", "pauses"),
    [
        ("KOE237", 400, [600, 1200, 2400, 3600, 3600]),
        ("KOE003", 500, [10, 30, 90, 270, 810, 900, 900]),
        ("KOE101", 401, [300, 600, 1200, 2400, 3600, 3600]),
    ],
)
def test_pauses_grow_by_what_kakao_said(code: str, status: int, pauses: list[int]) -> None:
    """Rate limits pause minutes, temporary faults seconds, a refused app minutes; each grows
    with failures in a row up to its longest pause."""
    previous = None
    seen = []
    for _ in pauses:
        previous = backoff_after(KakaoError(status, "", code), previous, 1000)
        seen.append(previous.until - 1000)

    assert seen == pauses


def test_kakaos_retry_after_is_never_cut_short_and_garbage_blocks_nothing() -> None:
    """A Retry-After longer than the plan wins; a malformed stored pause is ignored."""
    pause = backoff_after(KakaoUnavailable("server_error", retry_after=1234), None, 0)

    assert (pause.until, pause.code, pause.status) == (1234, "server_error", 503)
    assert Backoff.of({"refresh_backoff": {"until": "soon", "status": 500, "failures": 1}}) is None
    assert Backoff.of({"refresh_backoff": {"until": True, "status": 500, "failures": 1}}) is None


def test_ten_concurrent_callers_in_a_koe003_storm_cost_one_refresh(tmp_path: Path) -> None:
    """Kakao answers KOE003 to everything: ten callers at once make one refresh (its three
    attempts), not thirty calls; each gets 503 with Retry-After; the tokens stay stored."""
    fake = FakeKakao(FakeKakaoState(redirect_uris={REDIRECT_URI})).start()
    try:
        store = FileTokenStore(tmp_path)
        service = service_over(store, fake)
        complete_login(service)
        before = stored(store)
        due_in(store, 100, int(time.time()))
        fake.state.inject("/oauth/token", *["KOE003"] * 30)
        calls_before = kakao_token_calls(fake)
        errors: list[Exception] = []

        def ask() -> None:
            try:
                service.access_token()
            except (KakaoError, KakaoUnavailable) as exc:
                errors.append(exc)

        threads = [threading.Thread(target=ask) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert kakao_token_calls(fake) - calls_before == 3
        assert len(errors) == 10
        problems = [problem_for(exc) for exc in errors]  # type: ignore[arg-type]
        assert {p.status for p in problems} == {503}
        assert all(p.retry_after and 0 < p.retry_after <= 10 for p in problems)
        after = stored(store)
        assert after["refresh_token"] == before["refresh_token"]
        assert after["refresh_backoff"]["code"] == "KOE003" and "refresh_lease" not in after
    finally:
        fake.stop()


def test_inside_the_pause_a_token_that_lives_long_enough_is_served(
    fake_kakao: FakeKakao, tmp_path: Path, clock: FakeClock
) -> None:
    """A rate-limited rotation: the access token still has hours, so callers get it; one who
    asks for more life than it has gets 429 with Retry-After; Kakao is not asked again."""
    store = FileTokenStore(tmp_path)
    service = service_over(store, fake_kakao, clock)
    complete_login(service)
    fake_kakao.state.inject("/oauth/token", "KOE237", "KOE237")
    with pytest.raises(KakaoError):
        service.refresh_user(force=True)
    calls = kakao_token_calls(fake_kakao)
    clock.advance(200)  # past the "just refreshed" interval, inside the 600 s pause

    token = service.access_token(leeway_seconds=300)
    with pytest.raises(KakaoError) as refused:
        service.access_token(leeway_seconds=7 * 3600)

    assert token == stored(store)["access_token"]
    problem = problem_for(refused.value)
    assert (problem.status, problem.code, problem.retry_after) == (429, "KOE237", 400)
    assert kakao_token_calls(fake_kakao) == calls


def test_after_the_pause_one_refresh_and_a_success_clears_it(
    fake_kakao: FakeKakao, tmp_path: Path, clock: FakeClock
) -> None:
    """When the pause ends the next caller refreshes once; success removes the pause, so the
    next failure starts from the shortest pause again."""
    store = FileTokenStore(tmp_path)
    service = service_over(store, fake_kakao, clock)
    complete_login(service)
    due_in(store, 100, clock.now())
    fake_kakao.state.inject("/oauth/token", "KOE003", "KOE003", "KOE003")
    with pytest.raises(KakaoError):
        service.access_token()
    clock.advance(11)

    token = service.access_token()

    after = stored(store)
    assert token == after["access_token"] and "refresh_backoff" not in after
    assert after["expires_at"] > clock.now() + 3600


def test_waiters_on_a_failing_lease_get_its_failure(
    fake_kakao: FakeKakao, tmp_path: Path, clock: FakeClock
) -> None:
    """A caller that finds another instance's lease, which then fails, gets that failure from
    the document instead of calling Kakao itself."""
    store = FileTokenStore(tmp_path)
    service = service_over(store, fake_kakao, clock)
    complete_login(service)
    due_in(store, 100, clock.now())
    rewrite_stored(
        store,
        lambda d: d.with_fields(refresh_lease={"owner": "other", "until": clock.now() + 30}),
    )
    calls = kakao_token_calls(fake_kakao)
    real_sleep = clock.sleep

    def other_instance_fails_while_we_wait(seconds: float) -> None:
        rewrite_stored(
            store,
            lambda d: d.with_fields(
                refresh_lease=None,
                refresh_backoff={
                    "until": clock.now() + 30,
                    "code": "KOE003",
                    "status": 500,
                    "failures": 1,
                },
            ),
        )
        real_sleep(seconds)

    clock.sleep = other_instance_fails_while_we_wait  # type: ignore[method-assign]

    with pytest.raises(KakaoError) as caught:
        service.access_token()

    assert caught.value.code == "KOE003" and caught.value.retry_after
    assert kakao_token_calls(fake_kakao) == calls


def test_no_pause_outlasts_an_hour_whatever_kakao_or_the_document_says() -> None:
    """An odd Retry-After (a year) is cut to an hour, and a stored pause ending further ahead
    than an hour was set by no one (a clock far ahead, a hand edit): it is no pause at all, so
    it cannot hold the login off for good (a cap moving with the clock would never end) while
    its refresh token (2 months) dies unrefreshed."""
    pause = backoff_after(KakaoError(429, "", "KOE237", retry_after=365 * 86400.0), None, 0)
    edited = {"until": 10**12, "code": "KOE237", "status": 400, "failures": 10**9}
    odd_count = {**edited, "until": 1000 + 3600}

    assert pause.until == 3600
    for now in (1000, 1000 + 86400, 1000 + 59 * 86400):
        assert Backoff.of({"refresh_backoff": edited}, now=now) is None
    counted = Backoff.of({"refresh_backoff": odd_count}, now=1000)
    assert counted is not None and counted.until == 4600 and counted.failures == 64
