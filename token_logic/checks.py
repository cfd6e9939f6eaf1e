"""Checks on text that comes from outside (the environment, a request, an answer, a stored
record): a whole number, an http(s) URL, a URL a secret may be sent to, a JSON object."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

# This machine: where plain http is no network, so a token may travel there in the clear.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_decimal(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` alone accepts "²" and other digits ``int`` refuses."""
    return text.isascii() and text.isdigit()


def is_http_url(value: str) -> bool:
    """An absolute http or https URL."""
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def json_object(raw: bytes | str) -> dict[str, Any] | None:
    """The JSON object ``raw`` holds; None when it is not JSON, or JSON but not an object."""
    try:
        value = json.loads(raw)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return value if isinstance(value, dict) else None


def never_in_clear_text(url: str) -> bool:
    """https, or http to this machine: a URL a token or an ID token may be sent to."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)
