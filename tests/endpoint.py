"""The deployed picture for scripts, run here: the token function (a real functions-framework
process), Cloud Run's invoker check in front of it, Google's token endpoint and Kakao."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dev.fake_kakao import FakeKakao, FakeKakaoState
from tests.conftest import ROOT, settings_env
from tests.fake_google import FakeGoogleOAuth, InvokerCheck
from tests.helpers import REDIRECT_URI, FunctionServer, complete_login
from token_logic.config import Settings
from token_logic.network import new_session
from token_logic.storage.files import FileTokenStore
from token_logic.wiring import build_service

PERSON = "me@example.com"


@dataclass
class Endpoint:
    """The function, the invoker check, Google's token endpoint, Kakao, and the store."""

    kakao: FakeKakao
    google: FakeGoogleOAuth
    check: InvokerCheck
    store_dir: Path
    key_file: Path

    @property
    def url(self) -> str:
        return self.check.url

    def log_in(self) -> dict[str, Any]:
        settings = Settings.from_env(settings_env(self.kakao, TOKEN_DIR=str(self.store_dir)))
        service = build_service(
            settings, session=new_session(), store=FileTokenStore(self.store_dir)
        )
        return dict(complete_login(service).fields)

    def stored(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.store_dir / "kakao_token.json").read_text())
        return data

    def kill_login(self) -> None:
        """The refresh token dies at Kakao and the stored access token is due."""
        stored = self.stored()
        stored["updated_at"] -= 600  # not "just refreshed" (that is served as it is)
        stored["expires_at"] = stored["updated_at"] + 610
        (self.store_dir / "kakao_token.json").write_text(json.dumps(stored))
        self.kakao.state.refresh_tokens.clear()


@contextmanager
def running_endpoint(tmp_path: Path, readers: set[str]) -> Iterator[Endpoint]:
    """The token endpoint whose invoker check admits ``readers`` (ID token emails)."""
    kakao = FakeKakao(FakeKakaoState(redirect_uris={REDIRECT_URI})).start()
    google = FakeGoogleOAuth()
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    env = settings_env(kakao, TOKEN_DIR=str(store_dir))
    try:
        with FunctionServer("kakao_token", env, ROOT) as server:
            check = InvokerCheck(server.url, readers)
            try:
                yield Endpoint(kakao, google, check, store_dir, google.key_file(tmp_path))
            finally:
                check.stop()
    finally:
        google.stop()
        kakao.stop()
