"""Refresh: merge rules, rotation, dead logins and races, on both stores, with a fake clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from dev.fake_kakao import FakeKakao
from tests.conftest import service_over
from tests.helpers import FakeClock, FrozenClock, complete_login, rewrite_stored
from token_logic.errors import KakaoError, LoginRequired, NoTokenStored
from token_logic.service.token_service import TokenService
from token_logic.storage.protocol import TokenStore

DAY = 86400


def stored_document(store: TokenStore) -> dict[str, Any]:
    stored = store.read("kakao_token.json")
    assert stored is not None
    return dict(json.loads(stored.data))


def after_kakao_refreshes(service: TokenService, interference: Callable[[], object]) -> None:
    """Make ``interference`` happen after Kakao answers a refresh, before its result is stored."""
    real_refresh = service.kakao.redeem_refresh_token

    def refresh_then_interfere(refresh_token: str, deadline: object = None) -> dict[str, Any]:
        response = real_refresh(refresh_token)
        interference()
        return response

    service.kakao.redeem_refresh_token = refresh_then_interfere  # type: ignore[method-assign]


def test_a_fresh_token_is_not_refreshed(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """Within its lifetime and outside the margin: skipped, Kakao not called."""
    service = service_over(store, fake_kakao, clock)
    complete_login(service)

    result = service.refresh_user()

    assert result.refreshed is False
    assert fake_kakao.state.refresh_calls() == 0


def test_refresh_without_rotation_keeps_the_refresh_token(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """Near access-token expiry: new access token, same refresh token, scope kept."""
    service = service_over(store, fake_kakao, clock)
    complete_login(service)
    before = stored_document(store)
    clock.advance(21599 - 1800)

    result = service.refresh_user()

    after = stored_document(store)
    assert result.refreshed is True
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] == before["refresh_token"]
    assert after["refresh_token_expires_at"] == before["refresh_token_expires_at"]
    assert after["scope"] == before["scope"]
    assert after["expires_at"] == clock.now() + 21599
    assert "refresh_lease" not in after


def test_refresh_in_the_last_month_rotates_and_stores_the_new_token(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """In the rotation window Kakao issues a new refresh token; it is stored, the old is dead."""
    service = service_over(store, fake_kakao, clock)
    complete_login(service)
    old = stored_document(store)["refresh_token"]
    clock.advance(31 * DAY)  # 29 days left on the refresh token

    result = service.refresh_user()

    new = stored_document(store)
    assert result.refreshed is True
    assert new["refresh_token"] != old
    assert new["refresh_token"] in fake_kakao.state.valid_refresh_tokens()
    assert old not in fake_kakao.state.valid_refresh_tokens()
    assert new["refresh_token_expires_at"] == clock.now() + 5183999


def test_force_refreshes_a_fresh_token(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """force=True calls Kakao even when nothing is due."""
    service = service_over(store, fake_kakao, clock)
    complete_login(service)
    clock.advance(5)

    assert service.refresh_user(force=True).refreshed is True
    assert fake_kakao.state.refresh_calls() == 1


def test_a_dead_refresh_token_is_reported_and_marked(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """KOE322 after a re-read: LoginRequired, the document kept and marked; no second call."""
    service = service_over(store, fake_kakao, clock)
    complete_login(service)
    fake_kakao.state.refresh_tokens.clear()  # revoked at Kakao (e.g. the user unlinked)

    with pytest.raises(LoginRequired) as caught:
        service.refresh_user(force=True)

    assert caught.value.code == "KOE322"
    document = stored_document(store)
    assert document["login_error"]["error_code"] == "KOE322"
    assert document["access_token"]  # nothing was thrown away
    with pytest.raises(LoginRequired):
        service.refresh_user(force=True)
    assert fake_kakao.state.refresh_calls() == 1


def test_a_new_login_revives_a_dead_document(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """Logging in again replaces the marked document with a live one."""
    service = service_over(store, fake_kakao, clock)
    complete_login(service)
    fake_kakao.state.refresh_tokens.clear()
    with pytest.raises(LoginRequired):
        service.refresh_user(force=True)

    complete_login(service)

    assert "login_error" not in stored_document(store)
    assert service.refresh_user(force=True).refreshed is True


def test_a_login_during_a_refresh_wins(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """A login that replaces the document while a refresh holds the lease is what stays stored;
    the refresh returns it instead of writing tokens from the old login over it."""
    service = service_over(store, fake_kakao, clock)
    complete_login(service)
    clock.advance(31 * DAY)
    after_kakao_refreshes(service, lambda: complete_login(service))

    result = service.refresh_user()

    document = stored_document(store)
    assert document["access_token"] == list(fake_kakao.state.access_tokens)[-1]  # the login's
    assert result.refreshed is False and result.document.access_token == document["access_token"]
    assert "refresh_lease" not in document


def test_nothing_stored_is_no_token_stored(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """Refreshing before any login is NoTokenStored, not a crash."""
    with pytest.raises(NoTokenStored):
        service_over(store, fake_kakao, clock).refresh_user()


def test_rate_limit_releases_the_lease(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """KOE237: reported at once, the lease released with a 10-minute pause in it, the tokens
    unchanged; inside the pause the same failure comes with Retry-After and no Kakao call."""
    service = service_over(store, fake_kakao, clock)
    complete_login(service)
    before = stored_document(store)
    fake_kakao.state.inject("/oauth/token", "KOE237", "KOE237")

    with pytest.raises(KakaoError) as caught:
        service.refresh_user(force=True)
    clock.advance(120)
    with pytest.raises(KakaoError) as paused:
        service.refresh_user(force=True)

    assert caught.value.code == paused.value.code == "KOE237"
    after = stored_document(store)
    assert after.pop("refresh_backoff")["until"] == clock.now() - 120 + 600
    assert after == before
    assert paused.value.retry_after == 480
    assert len(fake_kakao.state.faults["/oauth/token"]) == 1  # Kakao was asked once


def test_concurrent_refreshes_at_rotation_call_kakao_once(
    fake_kakao: FakeKakao, store: TokenStore
) -> None:
    """16 threads refreshing at the rotation moment: one Kakao call, the stored token valid.

    Time stands still while they wait (FrozenClock), so the outcome depends on the lease alone,
    never on how the threads happened to be scheduled."""
    clock = FrozenClock()
    fake_kakao.state.clock = clock.time
    service = service_over(store, fake_kakao, clock)
    complete_login(service)
    clock.advance(31 * DAY)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = [f.result() for f in [pool.submit(service.refresh_user) for _ in range(16)]]

    document = stored_document(store)
    assert fake_kakao.state.refresh_calls() == 1
    assert document["refresh_token"] in fake_kakao.state.valid_refresh_tokens()
    assert {r.document.access_token for r in results} == {document["access_token"]}
    assert sum(r.refreshed for r in results) == 1


def test_koe322_after_the_document_changed_uses_the_newer_login(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """KOE322 while a new login replaced the document under our lease: re-read, adopt it, and
    never mark the new login dead."""
    service = service_over(store, fake_kakao, clock)
    complete_login(service)
    clock.advance(31 * DAY)
    real_refresh = service.kakao.redeem_refresh_token

    def refresh_after_a_new_login(refresh_token: str, deadline: object = None) -> dict[str, Any]:
        complete_login(service_over(store, fake_kakao, clock))  # the owner logs in again
        fake_kakao.state.inject("/oauth/token", "KOE322")
        return real_refresh(refresh_token)

    service.kakao.redeem_refresh_token = refresh_after_a_new_login  # type: ignore[method-assign]

    result = service.refresh_user()

    document = stored_document(store)
    assert result.refreshed is False
    assert result.document.refresh_token == document["refresh_token"]
    assert document["refresh_token"] in fake_kakao.state.valid_refresh_tokens()
    assert "login_error" not in document and "refresh_lease" not in document


def test_a_rotated_token_survives_losing_the_write_race(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """If another instance marks the login dead while ours holds a rotated token, ours wins."""
    service = service_over(store, fake_kakao, clock)
    complete_login(service)
    clock.advance(31 * DAY)
    after_kakao_refreshes(
        service,
        lambda: rewrite_stored(
            store, lambda d: d.with_fields(login_error={"error_code": "KOE322"}, refresh_lease=None)
        ),
    )

    service.refresh_user()

    document = stored_document(store)
    assert document["refresh_token"] in fake_kakao.state.valid_refresh_tokens()
    assert "login_error" not in document


def test_a_crashed_lease_holder_does_not_block_forever(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """A lease left by a crashed instance expires; the next caller refreshes."""
    service = service_over(store, fake_kakao, clock)
    complete_login(service)
    leased = rewrite_stored(
        store,
        lambda d: d.with_fields(refresh_lease={"owner": "crashed", "until": clock.now() + 60}),
    )
    clock.advance(21599)

    result = service.refresh_user()

    assert result.refreshed is True
    assert clock.now() >= leased.lease[1]  # type: ignore[index]


def test_an_unlink_during_a_refresh_is_never_a_token_less_answer(
    fake_kakao: FakeKakao, store: TokenStore, clock: FakeClock
) -> None:
    """The unlink webhook replaces a single document by its marker while a refresh holds the
    lease and Kakao has answered: the refresh's write loses, and the caller gets LoginRequired,
    never a document with an empty access token; the marker stays."""
    service = service_over(store, fake_kakao, clock)
    document = complete_login(service)
    assert document.user_id is not None
    user_id = document.user_id
    clock.advance(300)  # not "just refreshed"
    after_kakao_refreshes(service, lambda: service.forget_user(user_id, within_seconds=30))

    with pytest.raises(LoginRequired):
        service.access_token(leeway_seconds=7 * 3600)

    left = stored_document(store)
    assert left["access_token"] == "" and left["login_error"]["error_code"] == "unlinked"
