"""One deadline per request, everywhere. Fresh tokens Kakao issued to a login that could not
be stored inside it are logged out at Kakao, and the person sees our page, not the platform's
504; a token request's listing and refresh share one deadline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flask
import pytest

from dev.fake_kakao import FakeKakao
from tests.conftest import service_over
from tests.helpers import FakeClock, claim_form, complete_login, consent, owner_claim, query_of
from token_logic.budget import ANSWER_RESERVE_SECONDS
from token_logic.errors import DeadlineReached, IdentityUnverified, StorageError
from token_logic.service.claim import CLAIM_OBJECT
from token_logic.storage.files import FileTokenStore
from token_logic.storage.protocol import Stored, TokenStore
from token_logic.web.callback import handle_callback


class SlowFailingStore:
    """Wraps a store: every write first takes ``seconds`` of the (fake) clock, then either
    fails or, with ``land=True``, lands and still reports a failure (the answer was lost)."""

    def __init__(
        self, inner: TokenStore, clock: FakeClock, seconds: float, *, land: bool = False
    ) -> None:
        self.inner, self.clock, self.seconds, self.land = inner, clock, seconds, land

    def _fail_write(self, name: str, data: bytes) -> None:
        self.clock.advance(self.seconds)
        if self.land:
            self.inner.overwrite(name, data)
        raise StorageError("Cloud Storage upload failed (ServiceUnavailable)")

    def overwrite(self, name: str, data: bytes) -> str:
        if name.endswith(CLAIM_OBJECT):  # the operator's claim link is made beforehand
            return self.inner.overwrite(name, data)
        self._fail_write(name, data)
        raise AssertionError("unreachable")

    def write(self, name: str, data: bytes, *args: Any) -> str:
        self._fail_write(name, data)
        raise AssertionError("unreachable")

    def read(self, name: str, *args: Any) -> Stored | None:
        return self.inner.read(name, *args)

    # The rest of TokenStore comes through here: mypy counts __getattr__ toward a protocol,
    # pyright does not, so the calls that pass this as a TokenStore silence pyright alone.
    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)


def live_tokens(fake: FakeKakao) -> int:
    return len(fake.state.access_tokens) + len(fake.state.refresh_tokens)


@pytest.mark.parametrize("per_user", [False, True])
def test_storage_down_during_a_login_logs_its_tokens_out(
    fake_kakao: FakeKakao, tmp_path: Path, clock: FakeClock, per_user: bool
) -> None:
    """The write fails and nothing landed: the fresh tokens are logged out at Kakao, nothing
    is stored, and the whole login ends before the request's deadline."""
    inner = FileTokenStore(tmp_path)
    store = SlowFailingStore(inner, clock, seconds=20)
    env = {"TOKEN_OBJECT": "tokens/{user_id}.json"} if per_user else {}
    service = service_over(store, fake_kakao, clock, **env)  # pyright: ignore[reportArgumentType]
    started = clock.time()

    with pytest.raises((StorageError, DeadlineReached)):
        complete_login(service)

    assert live_tokens(fake_kakao) == 0
    assert inner.names("") == []
    assert clock.time() - started <= 60 - ANSWER_RESERVE_SECONDS


def test_a_login_whose_write_landed_though_it_seemed_to_fail_is_kept(
    fake_kakao: FakeKakao, tmp_path: Path, clock: FakeClock
) -> None:
    """The write's answer was lost but the write landed: a read settles it, the login is kept
    and its tokens stay alive at Kakao."""
    inner = FileTokenStore(tmp_path)
    service = service_over(SlowFailingStore(inner, clock, seconds=1, land=True), fake_kakao, clock)  # pyright: ignore[reportArgumentType]

    document = complete_login(service)

    stored = inner.read("kakao_token.json")
    assert stored is not None and document.refresh_token.encode() in stored.data
    assert document.refresh_token in fake_kakao.state.refresh_tokens


def test_an_unverifiable_user_leaves_no_live_token(
    fake_kakao: FakeKakao, tmp_path: Path, clock: FakeClock
) -> None:
    """Kakao cannot say who logged in (user/me failing): nothing stored, tokens logged out."""
    service = service_over(FileTokenStore(tmp_path), fake_kakao, clock)
    fake_kakao.state.inject("/v2/user/me", "500", "500", "500")

    with pytest.raises(IdentityUnverified):
        complete_login(service)

    assert live_tokens(fake_kakao) == 0


def test_the_person_sees_our_page_with_a_way_to_start_again(
    fake_kakao: FakeKakao, tmp_path: Path, clock: FakeClock
) -> None:
    """Through the callback: storage down after Kakao answered is a 503 page of ours, in Korean
    and English, with the login link; no trace, no token."""
    store = SlowFailingStore(FileTokenStore(tmp_path), clock, seconds=1)
    service = service_over(store, fake_kakao, clock)  # pyright: ignore[reportArgumentType]
    app = flask.Flask(__name__)
    app.add_url_rule(
        "/", "callback", lambda: handle_callback(flask.request, lambda: service), methods=["GET"]
    )
    app.add_url_rule(
        "/claim", "claim", lambda: handle_callback(flask.request, lambda: service), methods=["POST"]
    )
    client = app.test_client()
    start = client.post("/claim", data=claim_form(owner_claim(service)))
    callback = query_of(consent(start.headers["Location"]))

    page = client.get("/", query_string=callback)

    text = page.get_data(as_text=True)
    assert page.status_code == 503
    assert "저장소" in text and "Token storage failed" in text
    assert "Traceback" not in text and callback["code"] not in text
    assert live_tokens(fake_kakao) == 0


class SlowListingStore:
    """Wraps a store whose listing takes ``seconds`` of the fake clock."""

    def __init__(self, inner: TokenStore, clock: FakeClock, seconds: float) -> None:
        self.inner, self.clock, self.seconds = inner, clock, seconds

    def listing(self, prefix: str, deadline: Any = None) -> Any:
        self.clock.advance(self.seconds)
        return self.inner.listing(prefix, deadline)  # type: ignore[attr-defined]

    def names(self, prefix: str) -> list[str]:
        self.clock.advance(self.seconds)
        return self.inner.names(prefix)

    # The rest of TokenStore comes through here: mypy counts __getattr__ toward a protocol,
    # pyright does not, so the calls that pass this as a TokenStore silence pyright alone.
    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)


def test_a_per_user_token_request_naming_no_user_lists_nothing(
    fake_kakao: FakeKakao, tmp_path: Path, clock: FakeClock
) -> None:
    """Per-user documents, no user_id: a 400 asking for one at once. The store is never
    listed to find "the one user" (a slow listing spent the request's time, and the one found
    could be a stranger's), and Kakao is not called."""
    from token_logic.web.token_endpoint import FreshTokenCache, handle_token

    inner = FileTokenStore(tmp_path)
    env = {"TOKEN_OBJECT": "tokens/{user_id}.json"}
    complete_login(service_over(inner, fake_kakao, clock, **env))
    clock.advance(6 * 3600 - 100)  # the access token is due
    service = service_over(SlowListingStore(inner, clock, 40), fake_kakao, clock, **env)  # pyright: ignore[reportArgumentType]
    app = flask.Flask(__name__)
    app.add_url_rule(
        "/", "token", lambda: handle_token(flask.request, lambda: service, FreshTokenCache())
    )
    started = clock.time()

    response = app.test_client().get("/")

    assert response.status_code == 400 and "user_id" in response.get_json()["message"]
    assert clock.time() == started  # no listing: SlowListingStore would have taken 40 s
    assert fake_kakao.state.refresh_calls() == 0


def test_an_owners_failed_re_login_does_not_end_the_stored_login(
    fake_kakao: FakeKakao, tmp_path: Path, clock: FakeClock
) -> None:
    """The owner logs in again and storage fails: Kakao's logout ends every token of a user, so
    the new tokens are left to expire (nobody holds them) instead: the stored login still
    refreshes."""
    inner = FileTokenStore(tmp_path)
    first = complete_login(service_over(inner, fake_kakao, clock))
    failing = service_over(SlowFailingStore(inner, clock, seconds=1), fake_kakao, clock)  # pyright: ignore[reportArgumentType]

    with pytest.raises(StorageError):
        complete_login(failing)

    assert first.refresh_token in fake_kakao.state.valid_refresh_tokens()
    assert service_over(inner, fake_kakao, clock).refresh_user(force=True).refreshed
