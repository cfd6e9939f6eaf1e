"""Fixtures: a fresh fake Kakao per test, one GCS emulator per session, wired services."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol, cast

import flask
import functions_framework
import pytest

from dev.fake_kakao import FakeKakao, FakeKakaoState
from tests.helpers import REDIRECT_URI, FakeClock, GcsEmulator
from token_logic.config import Settings
from token_logic.network import new_session
from token_logic.service.token_service import TokenService
from token_logic.storage.files import FileTokenStore
from token_logic.storage.gcs import GcsTokenStore
from token_logic.storage.protocol import TokenStore
from token_logic.wiring import build_service

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_kakao(clock: FakeClock) -> Iterator[FakeKakao]:
    state = FakeKakaoState(redirect_uris={REDIRECT_URI}, clock=clock.time)
    fake = FakeKakao(state, hang_seconds=1.5).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def gcs() -> Iterator[GcsEmulator]:
    emulator = GcsEmulator().start()
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
    yield emulator
    emulator.stop()
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture(params=["file", "gcs"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TokenStore:
    """Each store in turn: local files, and a fresh bucket in the emulator."""
    if request.param == "file":
        return FileTokenStore(tmp_path)
    gcs: GcsEmulator = request.getfixturevalue("gcs")
    return GcsTokenStore(gcs.new_bucket())


@pytest.fixture
def bucket(gcs: GcsEmulator) -> str:
    return gcs.new_bucket()


def settings_env(fake: FakeKakao, **overrides: str) -> dict[str, str]:
    """The environment a deployed function would have, pointed at the fake Kakao."""
    env = {
        "KAKAO_REST_API_KEY": fake.state.client_id,
        "KAKAO_CLIENT_SECRET": fake.state.client_secret,
        "KAKAO_REDIRECT_URI": REDIRECT_URI,
        "KAKAO_AUTH_BASE_URL": fake.url,
        "KAKAO_API_BASE_URL": fake.url,
        "KAKAO_SCOPE": "talk_message",
    }
    env.update(overrides)
    return env


def service_over(
    store: TokenStore, fake: FakeKakao, clock: FakeClock | None = None, **env: str
) -> TokenService:
    """The service as wiring.build_service makes it, over a given store and clock, pointed at
    the fake Kakao (``env`` adds or overrides settings)."""
    settings = Settings.from_env(settings_env(fake, **env))
    return build_service(settings, session=new_session(), store=store, clock=clock)


# Set by some tests and by Cloud Run; an app under test sees them only when a test says so.
_STRAY_SETTINGS = ("TOKEN_BUCKET", "K_SERVICE", "ALLOWED_KAKAO_USER_IDS", "TOKEN_OBJECT")


def function_app(
    monkeypatch: pytest.MonkeyPatch, target: str, env: Mapping[str, str | None]
) -> flask.Flask:
    """The app functions-framework builds from main.py, under exactly ``env`` (None: unset)."""
    for name in _STRAY_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    # create_app is unannotated; for plain HTTP functions like main.py's it builds a Flask app
    # (a Starlette one only for async functions).
    app = functions_framework.create_app(  # type: ignore[no-untyped-call]
        target=target, source=str(ROOT / "main.py")
    )
    return cast(flask.Flask, app)


class EnvFor(Protocol):
    """What the env_for fixture gives: settings_env for this test's fake Kakao."""

    def __call__(self, **overrides: str) -> dict[str, str]: ...


@pytest.fixture
def env_for(fake_kakao: FakeKakao) -> EnvFor:
    def make(**overrides: str) -> dict[str, str]:
        return settings_env(fake_kakao, **overrides)

    return make


@pytest.fixture
def file_service(fake_kakao: FakeKakao, clock: FakeClock, tmp_path: Path) -> TokenService:
    return service_over(FileTokenStore(tmp_path), fake_kakao, clock, TOKEN_DIR=str(tmp_path))


@pytest.fixture
def gcs_service(fake_kakao: FakeKakao, clock: FakeClock, bucket: str) -> TokenService:
    return service_over(GcsTokenStore(bucket), fake_kakao, clock, TOKEN_BUCKET=bucket)
