"""Arbitrary requests against the callback: never a 5xx, never a write, never Kakao unprompted."""

from __future__ import annotations

from pathlib import Path

import flask
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dev.fake_kakao import FakeKakao
from tests.conftest import function_app, settings_env
from token_logic.kakao.state import COOKIE_PREFIX

HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
PARAM_NAMES = st.sampled_from(["code", "state", "error", "error_description", "scope", "x", ""])
ANY_TEXT = st.text(max_size=300)
METHODS = st.sampled_from(
    ["GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "PROPFIND"]
)
COOKIE_NAMES = st.one_of(
    st.just(COOKIE_PREFIX + "0" * 16),
    st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=';,= "\\'),
        min_size=1,
        max_size=40,
    ),
)


@pytest.fixture
def hostile_client(
    monkeypatch: pytest.MonkeyPatch, fake_kakao: FakeKakao, tmp_path: Path
) -> flask.Flask:
    return function_app(
        monkeypatch, "kakao_callback", settings_env(fake_kakao, TOKEN_DIR=str(tmp_path))
    )


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=METHODS,
    params=st.lists(st.tuples(PARAM_NAMES, ANY_TEXT), max_size=5),
    headers=st.dictionaries(
        st.sampled_from(
            ["Referer", "User-Agent", "X-Forwarded-For", "Accept", "Content-Type", "X-Custom"]
        ),
        HEADER_TEXT,
        max_size=4,
    ),
    cookies=st.dictionaries(COOKIE_NAMES, HEADER_TEXT, max_size=3),
    body=st.binary(max_size=200),
)
def test_no_input_breaks_the_callback(
    hostile_client: flask.Flask,
    fake_kakao: FakeKakao,
    tmp_path: Path,
    method: str,
    params: list[tuple[str, str]],
    headers: dict[str, str],
    cookies: dict[str, str],
    body: bytes,
) -> None:
    """Whatever arrives: status < 500, no document written, no token request to Kakao."""
    client = hostile_client.test_client()
    for name, value in cookies.items():
        client.set_cookie(name, value)

    response = client.open("/", method=method, query_string=params, headers=headers, data=body)

    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    assert "Traceback" not in response.get_data(as_text=True)
    assert list(tmp_path.iterdir()) == []
    assert fake_kakao.state.calls["/oauth/token"] == 0
    assert response.headers["Cache-Control"] == "no-store"
