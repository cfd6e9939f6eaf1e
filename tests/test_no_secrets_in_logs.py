"""Everything the function servers log over a full run contains no token, code or secret."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests

from dev.fake_kakao import FakeKakao
from tests.conftest import ROOT, settings_env
from tests.helpers import REDIRECT_URI, FunctionServer, claim_for, claim_form, consent, query_of


def test_a_full_run_logs_no_secret(fake_kakao: FakeKakao, tmp_path: Path) -> None:
    """Login, replay, cancel, CSRF attempt, refresh, dead login: the logs hold no secret."""
    env = settings_env(fake_kakao, TOKEN_DIR=str(tmp_path))
    secrets_seen: set[str] = {fake_kakao.state.client_secret}
    with (
        FunctionServer("kakao_callback", env, ROOT) as callback,
        FunctionServer("kakao_refresh", env, ROOT) as refresh,
    ):
        browser = requests.Session()
        browser.base_url = callback.url  # type: ignore[attr-defined]
        claim = claim_for(callback.env)
        secrets_seen.add(claim)
        start = browser.post(
            callback.url + "/claim", data=claim_form(claim), allow_redirects=False, timeout=10
        )
        login = consent(start.headers["Location"])
        query = query_of(login)
        secrets_seen |= {query["code"], query["state"], *browser.cookies.values()}
        tail = login[len(REDIRECT_URI) :]
        assert browser.get(f"{callback.url}/{tail}", timeout=10).status_code == 200
        replay = browser.get(f"{callback.url}/{tail}", timeout=10)  # the finished login, again
        assert replay.status_code == 200 and replay.url.endswith("?login=done")
        assert requests.get(f"{callback.url}/{tail}", timeout=10).status_code == 400  # no cookie
        cancelled = consent(
            browser.get(callback.url + "/", allow_redirects=False, timeout=10).headers["Location"],
            approve=False,
        )
        browser.get(f"{callback.url}/{cancelled[len(REDIRECT_URI) :]}", timeout=10)
        first = json.loads((tmp_path / "kakao_token.json").read_text())
        assert requests.post(refresh.url + "/?force=1", timeout=30).status_code == 200
        second = json.loads((tmp_path / "kakao_token.json").read_text())
        fake_kakao.state.refresh_tokens.clear()
        assert requests.post(refresh.url + "/?force=1", timeout=30).status_code == 401
        logs = callback.logs() + refresh.logs()

    for document in (first, second):
        secrets_seen |= {document["access_token"], document["refresh_token"]}
    for secret in secrets_seen:
        assert secret not in logs
    lines = [line for line in logs.splitlines() if line.startswith("{")]
    assert len(lines) >= 6
    for line in lines:
        entry = json.loads(line)
        assert entry["severity"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
        assert entry["message"]
    assert any(json.loads(line)["severity"] == "ERROR" and "KOE322" in line for line in lines)
    assert not re.search(r"fake-(access|refresh)-", logs)


def test_a_logged_stack_has_types_and_frames_but_never_exception_messages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A library error whose text echoes a request (and its cause's) is logged as types and
    frames only: the secret in the messages never reaches the line."""
    import logging

    from token_logic.log import log_event

    token, code = "SECRET-IN-CAUSE", "SECRET-IN-MESSAGE"

    def fail() -> None:
        try:
            raise ValueError(f"refresh_token={token}")
        except ValueError as cause:
            raise RuntimeError(f"POST /oauth/token code={code}") from cause

    try:
        fail()
    except RuntimeError:
        log_event(logging.ERROR, "unexpected error", exc_info=True)

    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert "SECRET" not in json.dumps(line)
    assert line["exception"] == "RuntimeError"
    assert "builtins.ValueError" in line["stack"] and "in fail" in line["stack"]


def test_values_holding_token_bytes_keep_them_out_of_their_repr() -> None:
    """Stored bytes, login secrets, settings and documents: reprs show facts, never secrets."""
    from token_logic.config import Settings
    from token_logic.kakao.state import start_login, verify_state
    from token_logic.storage.protocol import Stored
    from token_logic.tokens import from_json

    data = json.dumps(
        {
            "access_token": "AT-SECRET",
            "refresh_token": "RT-SECRET",
            "expires_at": 1,
            "refresh_token_expires_at": 2,
        }
    ).encode()
    start = start_login(pkce=True)
    values = [
        Stored(data, "v1"),
        from_json(data),
        start,
        verify_state(start.state, {start.cookie_name: start.cookie_value}),
        Settings.from_env(
            {"KAKAO_REST_API_KEY": "k", "KAKAO_CLIENT_SECRET": "CS-SECRET"}, need_redirect_uri=False
        ),
    ]

    text = " ".join(repr(value) for value in values)

    for secret in ("AT-SECRET", "RT-SECRET", "CS-SECRET", start.nonce, start.cookie_value):
        assert secret not in text
    assert "v1" in text
