"""Fault injection: Kakao and the bucket failing in every way. Clear answers, retries where
safe, and nothing already stored is lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev.fake_kakao import FakeKakao
from tests.conftest import service_over
from tests.helpers import FakeClock, FlakyProxy, GcsEmulator, complete_login, owner_claim
from token_logic.errors import KakaoError, KakaoUnavailable, StorageError
from token_logic.problems import problem_for
from token_logic.service.token_service import TokenService
from token_logic.storage.gcs import GcsTokenStore

KOE_CODES = ["KOE320", "KOE303", "KOE010", "KOE101", "KOE319", "KOE322", "KOE237", "KOE003"]


def service_for(fake: FakeKakao, bucket: str, clock: FakeClock, **env: str) -> TokenService:
    # One-second Kakao timeouts: the fake's "timeout" fault (1.5 s) is then a real client timeout.
    return service_over(
        GcsTokenStore(bucket), fake, clock, TOKEN_BUCKET=bucket, KAKAO_TIMEOUT_SECONDS="1", **env
    )


@pytest.fixture
def flaky_bucket(
    gcs: GcsEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, FlakyProxy]]:
    """A bucket reached through a proxy that can answer 503."""
    bucket = gcs.new_bucket()
    with FlakyProxy(gcs.url) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        yield bucket, proxy


@pytest.mark.parametrize("code", KOE_CODES)
def test_every_koe_code_at_refresh_keeps_the_stored_document(
    fake_kakao: FakeKakao, bucket: str, gcs: GcsEmulator, clock: FakeClock, code: str
) -> None:
    """Each KOE error at refresh gives a mapped problem and leaves the tokens in place."""
    service = service_for(fake_kakao, bucket, clock)
    complete_login(service)
    before = json.loads(gcs.read_object(bucket, "kakao_token.json") or b"{}")
    fake_kakao.state.inject("/oauth/token", *[code] * 3)

    with pytest.raises((KakaoError, KakaoUnavailable)) as caught:
        service.refresh_user(force=True)

    problem = problem_for(caught.value)
    assert 400 <= problem.status < 600 and problem.status != 500
    after = json.loads(gcs.read_object(bucket, "kakao_token.json") or b"{}")
    assert after["access_token"] == before["access_token"]
    assert after["refresh_token"] == before["refresh_token"]


@pytest.mark.parametrize("fault", ["timeout", "reset", "html", "500", "502"])
def test_kakao_outages_at_refresh_keep_the_stored_document(
    fake_kakao: FakeKakao, bucket: str, gcs: GcsEmulator, clock: FakeClock, fault: str
) -> None:
    """Timeouts, resets, HTML and 5xx: retried, then KakaoUnavailable; the document intact."""
    service = service_for(fake_kakao, bucket, clock)
    complete_login(service)
    before = gcs.read_object(bucket, "kakao_token.json")
    fake_kakao.state.inject("/oauth/token", fault, fault, fault)

    with pytest.raises(KakaoUnavailable) as caught:
        service.refresh_user(force=True)

    assert caught.value.reason == {"timeout": "timeout", "reset": "unreachable"}.get(
        fault, "server_error" if fault != "html" else "bad_response"
    )
    assert fake_kakao.state.calls["/oauth/token"] == 1 + 3  # the login, then three attempts
    after = json.loads(gcs.read_object(bucket, "kakao_token.json") or b"{}")
    assert after["access_token"] == json.loads(before or b"{}")["access_token"]
    assert "refresh_lease" not in after


def test_a_transient_kakao_fault_is_retried_to_success(
    fake_kakao: FakeKakao, bucket: str, gcs: GcsEmulator, clock: FakeClock
) -> None:
    """One 503 then success: the refresh succeeds and is stored."""
    service = service_for(fake_kakao, bucket, clock)
    complete_login(service)
    fake_kakao.state.inject("/oauth/token", "503")

    assert service.refresh_user(force=True).refreshed is True


def test_bucket_503s_are_retried(
    fake_kakao: FakeKakao,
    flaky_bucket: tuple[str, FlakyProxy],
    clock: FakeClock,
    gcs: GcsEmulator,
) -> None:
    """A couple of 503s from storage are retried by the client; the login is stored."""
    bucket, proxy = flaky_bucket
    service = service_for(fake_kakao, bucket, clock)
    proxy.fail_next = 2

    complete_login(service)

    assert proxy.failed == 2
    assert json.loads(gcs.read_object(bucket, "kakao_token.json") or b"{}")["user_id"]


def test_a_login_is_one_storage_request(
    fake_kakao: FakeKakao,
    flaky_bucket: tuple[str, FlakyProxy],
    clock: FakeClock,
    gcs: GcsEmulator,
) -> None:
    """Where who may store is settled (an allowlist), a login replaces the document with one
    upload: no read before it (one round trip less)."""
    bucket, proxy = flaky_bucket
    service = service_for(
        fake_kakao, bucket, clock, ALLOWED_KAKAO_USER_IDS=str(fake_kakao.state.user_id)
    )
    complete_login(service)  # over nothing
    complete_login(service)  # over an existing document

    assert [request for request in proxy.seen if request[1] != "api"] == [
        ("POST", "upload", 200),
        ("POST", "upload", 200),
    ]
    stored = json.loads(gcs.read_object(bucket, "kakao_token.json") or b"{}")
    assert stored["access_token"] == list(fake_kakao.state.access_tokens)[-1]


def test_a_failed_login_upload_falls_back_to_read_and_conditional_write(
    fake_kakao: FakeKakao,
    flaky_bucket: tuple[str, FlakyProxy],
    clock: FakeClock,
    gcs: GcsEmulator,
) -> None:
    """The one upload is not retried blindly: after a 503 the login reads, then writes with a
    generation precondition, and is stored."""
    bucket, proxy = flaky_bucket
    service = service_for(
        fake_kakao, bucket, clock, ALLOWED_KAKAO_USER_IDS=str(fake_kakao.state.user_id)
    )
    complete_login(service)
    proxy.fail_kind, proxy.fail_next = "upload", 1

    complete_login(service)

    assert [request for request in proxy.seen if request[1] != "api"][1:] == [
        ("POST", "upload", 503),
        ("GET", "download", 200),
        ("POST", "upload", 200),
    ]
    stored = json.loads(gcs.read_object(bucket, "kakao_token.json") or b"{}")
    assert stored["access_token"] == list(fake_kakao.state.access_tokens)[-1]  # the second login


def test_an_owned_deployment_reads_then_writes_conditionally(
    fake_kakao: FakeKakao,
    flaky_bucket: tuple[str, FlakyProxy],
    clock: FakeClock,
    gcs: GcsEmulator,
) -> None:
    """Without an allowlist a login must know the owner: it reads, then writes guarded by the
    generation it read, so no other account's login can slip in between."""
    bucket, proxy = flaky_bucket
    service = service_for(fake_kakao, bucket, clock)
    claim = owner_claim(service)  # the operator's claim link, made beforehand
    proxy.seen.clear()
    complete_login(service, claim)  # over nothing
    complete_login(service, "")  # the owner again, with no claim

    uploads = [request for request in proxy.seen if request[1] != "api"]
    assert uploads == [
        ("GET", "download", 404),  # the document: nobody owns it yet
        ("GET", "download", 200),  # the claim, then spent (a guarded delete)
        ("POST", "upload", 200),
        ("GET", "download", 200),
        ("POST", "upload", 200),
    ]


def test_a_bucket_that_stays_down_is_a_clear_storage_error(
    fake_kakao: FakeKakao,
    flaky_bucket: tuple[str, FlakyProxy],
    clock: FakeClock,
    gcs: GcsEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Storage down during refresh: StorageError (503) after bounded retries; nothing lost."""
    monkeypatch.setattr("token_logic.storage.gcs.RETRY_BUDGET", 2.0)
    bucket, proxy = flaky_bucket
    service = service_for(fake_kakao, bucket, clock)
    complete_login(service)
    before = gcs.read_object(bucket, "kakao_token.json")
    proxy.paused = True

    with pytest.raises(StorageError) as caught:
        service.refresh_user(force=True)

    assert problem_for(caught.value).status == 503
    assert fake_kakao.state.calls["/oauth/token"] == 1  # Kakao not called without a lease
    assert gcs.read_object(bucket, "kakao_token.json") == before


def test_emulator_stopped_mid_run_then_restarted(
    fake_kakao: FakeKakao, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The storage server dies after the login: refresh fails clearly; after restart the
    document is exactly as it was and a refresh works."""
    monkeypatch.setattr("token_logic.storage.gcs.RETRY_BUDGET", 2.0)
    emulator = GcsEmulator(backend_root=tmp_path / "gcs-data").start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    try:
        bucket = emulator.new_bucket()
        service = service_for(fake_kakao, bucket, clock)
        complete_login(service)
        before = emulator.read_object(bucket, "kakao_token.json")
        emulator.stop()

        with pytest.raises(StorageError):
            service.refresh_user(force=True)

        emulator.start()
        assert emulator.read_object(bucket, "kakao_token.json") == before
        assert service.refresh_user(force=True).refreshed is True
    finally:
        emulator.stop()
