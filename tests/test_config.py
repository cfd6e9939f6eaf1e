"""Settings are read once, validated, and keep secrets out of their repr."""

from __future__ import annotations

import pytest

from token_logic.config import Settings
from token_logic.errors import ConfigError
from token_logic.network import new_session, proxies_for

BASE = {"KAKAO_REST_API_KEY": "key", "KAKAO_REDIRECT_URI": "https://fn.example/kakao_callback"}


def test_missing_required_variables_are_all_named_at_once() -> None:
    """One error names every missing required variable."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({})

    assert caught.value.missing == ("KAKAO_REST_API_KEY", "KAKAO_REDIRECT_URI")
    assert "KAKAO_REST_API_KEY" in str(caught.value) and "KAKAO_REDIRECT_URI" in str(caught.value)


def test_defaults_match_the_documentation() -> None:
    """Unset optional variables take the documented defaults."""
    settings = Settings.from_env(BASE)

    assert settings.auth_base_url == "https://kauth.kakao.com"
    assert settings.api_base_url == "https://kapi.kakao.com"
    assert settings.token_object == "kakao_token.json"
    assert settings.token_dir == "."
    assert settings.pkce is True
    assert settings.refresh_margin_seconds == 3600
    assert settings.secure_cookies is True


def test_client_secret_never_appears_in_repr() -> None:
    """repr(settings) is safe to log."""
    settings = Settings.from_env({**BASE, "KAKAO_CLIENT_SECRET": "s3cr3t-value"})

    assert "s3cr3t-value" not in repr(settings)
    assert settings.client_secret == "s3cr3t-value"


def test_scope_is_normalized_to_kakaos_comma_form() -> None:
    """Spaces, blanks and duplicates in KAKAO_SCOPE are cleaned up."""
    settings = Settings.from_env({**BASE, "KAKAO_SCOPE": " talk_message, openid ,,talk_message"})

    assert settings.scope == "talk_message,openid"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("KAKAO_PKCE", "maybe", "KAKAO_PKCE"),
        ("KAKAO_REDIRECT_URI", "localhost:8080", "absolute"),
        ("REFRESH_MARGIN_SECONDS", "-5", "REFRESH_MARGIN_SECONDS"),
        ("ALLOWED_KAKAO_USER_IDS", "12,abc", "ALLOWED_KAKAO_USER_IDS"),
        ("TOKEN_OBJECT", "tokens/{user}.json", "{user_id}"),
        ("TOKEN_OBJECT", "u{user_id}/{user_id}.json", "TOKEN_OBJECT may contain {user_id} only"),
        ("TOKEN_OBJECT", "./tokens/{user_id}.json", "TOKEN_OBJECT must be a relative name"),
        ("TOKEN_OBJECT", "tokens//{user_id}.json", "TOKEN_OBJECT must be a relative name"),
        ("TOKEN_OBJECT", "/kakao_token.json", "TOKEN_OBJECT must be a relative name"),
        ("TOKEN_OBJECT", "users/{user_id}/.token.json", "TOKEN_OBJECT must be a relative name"),
        ("TOKEN_OBJECT", "../kakao_token.json", "users/{user_id}/token.json"),
        ("KAKAO_TIMEOUT_SECONDS", "30", "KAKAO_TIMEOUT_SECONDS"),
    ],
)
def test_invalid_values_are_explained(name: str, value: str, fragment: str) -> None:
    """Each malformed value gets a message naming the variable and what it must be."""
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_env({**BASE, name: value})


@pytest.mark.parametrize(
    "template",
    ["kakao_token.json", "tokens/{user_id}.json", "users/{user_id}/token.json", "{user_id}.json"],
)
def test_token_object_forms_a_sweep_can_find_are_accepted(template: str) -> None:
    """One document, or {user_id} once in the file name or in a folder."""
    assert Settings.from_env({**BASE, "TOKEN_OBJECT": template}).token_object == template


def test_cloud_run_without_a_bucket_is_refused() -> None:
    """On Cloud Run (K_SERVICE set) a local token file would vanish: TOKEN_BUCKET is required."""
    with pytest.raises(ConfigError, match="TOKEN_BUCKET"):
        Settings.from_env({**BASE, "K_SERVICE": "kakao-callback"})

    assert Settings.from_env({**BASE, "K_SERVICE": "x", "TOKEN_BUCKET": "b"}).token_bucket == "b"


def test_demo_mode_is_refused_on_cloud_run() -> None:
    """KAKAO_DEMO (no claim needed) on Cloud Run (K_SERVICE set) is a configuration error naming
    it, however it got there; off, or off Cloud Run, it is fine."""
    cloud = {**BASE, "K_SERVICE": "kakao-callback", "TOKEN_BUCKET": "b"}

    with pytest.raises(ConfigError, match="KAKAO_DEMO"):
        Settings.from_env({**cloud, "KAKAO_DEMO": "1"})

    assert Settings.from_env({**cloud, "KAKAO_DEMO": "0"}).demo is False
    assert Settings.from_env({**BASE, "KAKAO_DEMO": "1"}).demo is True


def test_allowed_user_ids_are_parsed_as_integers() -> None:
    """ALLOWED_KAKAO_USER_IDS becomes a set of ints."""
    settings = Settings.from_env({**BASE, "ALLOWED_KAKAO_USER_IDS": "4127000001, 99"})

    assert settings.allowed_user_ids == frozenset({4127000001, 99})


def test_command_line_settings_do_not_need_a_redirect_uri() -> None:
    """Scripts refreshing tokens need the key but not the redirect URI."""
    settings = Settings.from_env({"KAKAO_REST_API_KEY": "k"}, need_redirect_uri=False)

    assert settings.redirect_uri == ""


def test_no_proxy_and_the_ca_bundle_apply_to_kakao_as_requests_would() -> None:
    """HTTPS_PROXY reaches Kakao unless NO_PROXY exempts its host (a domain, its subdomains, an
    IP network); REQUESTS_CA_BUNDLE becomes the session's CA bundle. All read once, here."""
    base = {"KAKAO_REST_API_KEY": "k", "HTTPS_PROXY": "http://proxy:3128"}

    proxied = Settings.from_env(base, need_redirect_uri=False)
    exempt = Settings.from_env(
        {**base, "NO_PROXY": "localhost,.kakao.com"}, need_redirect_uri=False
    )
    partly = Settings.from_env({**base, "no_proxy": "kapi.kakao.com"}, need_redirect_uri=False)
    local = Settings.from_env(
        {
            **base,
            "KAKAO_AUTH_BASE_URL": "https://10.1.2.3",
            "KAKAO_API_BASE_URL": "https://10.1.2.3",
            "NO_PROXY": "10.0.0.0/8",
            "REQUESTS_CA_BUNDLE": "/etc/corp-ca.pem",
        },
        need_redirect_uri=False,
    )

    assert dict(proxied.proxies) == {
        "https://kauth.kakao.com": "http://proxy:3128",
        "https://kapi.kakao.com": "http://proxy:3128",
    }
    assert dict(exempt.proxies) == {}
    assert dict(partly.proxies) == {"https://kauth.kakao.com": "http://proxy:3128"}
    assert dict(local.proxies) == {} and local.ca_bundle == "/etc/corp-ca.pem"
    session = new_session(local.proxies, local.ca_bundle)
    assert session.verify == "/etc/corp-ca.pem" and session.trust_env is False


@pytest.mark.parametrize("value", ["10", "abc", "7200"])
def test_function_timeout_must_leave_room_for_a_safe_refresh(value: str) -> None:
    """FUNCTION_TIMEOUT_SECONDS below what one Kakao call plus the store reserve needs (or
    absurd) is refused, naming the deploy flag it must match."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"KAKAO_REST_API_KEY": "k", "FUNCTION_TIMEOUT_SECONDS": value})

    assert "FUNCTION_TIMEOUT_SECONDS" in str(caught.value)


def test_function_timeout_sets_every_requests_deadline() -> None:
    """FUNCTION_TIMEOUT_SECONDS reaches the settings, and a request's deadline is 5 s before it."""
    from tests.helpers import FakeClock
    from token_logic.budget import request_deadline

    settings = Settings.from_env(
        {"KAKAO_REST_API_KEY": "k", "FUNCTION_TIMEOUT_SECONDS": "120"}, need_redirect_uri=False
    )

    assert settings.function_timeout_seconds == 120
    clock = FakeClock()
    assert request_deadline(settings.function_timeout_seconds, clock).remaining() == 115


def test_this_machine_is_never_reached_through_a_proxy() -> None:
    """A loopback endpoint is trusted over plain http (nothing leaves the machine), so no proxy
    from the environment may stand in between, whatever NO_PROXY says: the ID token would
    reach the proxy in clear text."""
    env = {"HTTP_PROXY": "http://proxy:3128", "HTTPS_PROXY": "http://proxy:3128"}
    urls = (
        "http://localhost:8082/",
        "http://127.0.0.1:8082/",
        "http://127.0.0.2:8082/",
        "http://[::1]:8082/",
        "https://kapi.kakao.com",
    )

    proxies = proxies_for(env, urls)

    assert proxies == {"https://kapi.kakao.com": "http://proxy:3128"}
