"""The deployed picture for scripts, run here: the token function (a real functions-framework
process), Cloud Run's invoker check in front of it, Google's token endpoint and Kakao."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dev.fake_kakao import FakeKakao, FakeKakaoState
from tests.conftest import ROOT, settings_env
from tests.fake_google import FakeGoogleOAuth, InvokerCheck
from tests.helpers import REDIRECT_URI, FunctionServer, complete_login
from token_logic.config import Settings
from token_logic.logins import OWNER, SENDER
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
    env: dict[str, str] = field(default_factory=dict)  # the function's settings beyond these

    @property
    def url(self) -> str:
        return self.check.url

    def log_in(self, login: str = OWNER, user_id: int | None = None) -> dict[str, Any]:
        """A whole login as the fake's user (``user_id``, else the fake's current one): the
        owner's, or with ``login`` SENDER the sender's through a sender link."""
        if user_id is not None:
            self.kakao.state.user_id = user_id
        env = settings_env(self.kakao, TOKEN_DIR=str(self.store_dir), **self.env)
        service = build_service(
            Settings.from_env(env), session=new_session(), store=FileTokenStore(self.store_dir)
        )
        claim = service.issue_claim(SENDER).secret if login == SENDER else None
        return dict(complete_login(service, claim).fields)

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
def running_endpoint(tmp_path: Path, readers: set[str], **settings: str) -> Iterator[Endpoint]:
    """The token endpoint whose invoker check admits ``readers`` (ID token emails); ``settings``
    adds to the function's environment (KAKAO_SENDER="1": a sender may log in)."""
    kakao = FakeKakao(FakeKakaoState(redirect_uris={REDIRECT_URI})).start()
    google = FakeGoogleOAuth()
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    env = settings_env(kakao, TOKEN_DIR=str(store_dir), **settings)
    try:
        with FunctionServer("kakao_token", env, ROOT) as server:
            check = InvokerCheck(server.url, readers)
            try:
                key_file = google.key_file(tmp_path)
                yield Endpoint(kakao, google, check, store_dir, key_file, dict(settings))
            finally:
                check.stop()
    finally:
        google.stop()
        kakao.stop()
