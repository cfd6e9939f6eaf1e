"""Checks on text that comes from outside (the environment, a request, an answer, a stored
record): a whole number, an http(s) URL, where a request for a URL really goes, a JSON object."""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from .errors import ConfigError
from .language import Languages, Words

# This machine: where plain http is no network, so a token may travel there in the clear.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# A host as DNS or an address writes it: no "%" that urllib3 would decode and urllib would not.
_PLAIN_HOST = re.compile(r"[a-z0-9._-]+|\[[0-9a-f:.]+\]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


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


class Destination(NamedTuple):
    """Where a request goes: the scheme, host and port the connection is made with."""

    scheme: str  # "http" or "https"
    host: str  # lower case; an IPv6 address without its brackets
    port: int  # the scheme's own when the URL names none

    @property
    def on_this_machine(self) -> bool:
        """The loopback host, compared whole ("mylocalhost" or "x.localhost" is not it)."""
        return self.host in LOOPBACK_HOSTS

    @property
    def never_in_clear_text(self) -> bool:
        """https, or http to this machine: where a token or an ID token may be sent."""
        return self.scheme == "https" or (self.scheme == "http" and self.on_this_machine)


class UnsendableUrl(ValueError):
    """Why a URL is refused (``destination``): ``words`` in Korean and English; str() is the
    English."""

    def __init__(self, korean: str, english: str) -> None:
        super().__init__(english)
        self.words = Words(korean, english)


def destination(url: str) -> Destination:
    """Where requests sends a request for ``url``, as its urllib3 parses it (``parse_url``,
    which ``PreparedRequest`` uses), so as the connection is made.

    Python's ``urlsplit`` can read another host in the same text (``http://a:1\\@b/``: urllib3
    connects to ``a``, urlsplit says ``b``), and so could any other check or reader of the URL.
    So a URL is refused, with an UnsendableUrl (a ValueError) saying why (never quoting it: it
    may hold a password), when it holds a backslash, whitespace, a control character or anything but
    ASCII, a user name or password (``user:pass@``), a host that is not plainly written, a
    scheme other than http(s), or when urlsplit's scheme, host or port differ from urllib3's.
    """
    # Lazily: urllib3 is requests' own, imported anyway before anything is sent, but a
    # module that imports this one (config.py) must not pay for it on the server's cold start.
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    if not url.isascii():
        raise UnsendableUrl(
            "ASCII가 아닌 문자가 있습니다(도메인은 xn-- 형식으로 쓰세요)",
            "it holds a character that is not ASCII (write a domain in its xn-- form)",
        )
    if "\\" in url:
        raise UnsendableUrl(
            "백슬래시(\\)가 있습니다: urllib3와 urllib가 다르게 읽습니다",
            "it holds a backslash, which urllib3 and urllib read differently",
        )
    if any(char == " " or not char.isprintable() for char in url):
        raise UnsendableUrl(
            "공백이나 제어 문자가 있습니다", "it holds whitespace or a control character"
        )
    try:
        parsed = parse_url(url)
        split = urlsplit(url)
        split_port = split.port
    except (LocationParseError, ValueError):
        raise UnsendableUrl(
            "requests가 보낼 수 있는 URL이 아닙니다(호스트나 포트)",
            "it is not a URL requests can send to (its host or port)",
        ) from None
    scheme = parsed.scheme or ""
    if scheme not in _DEFAULT_PORTS:
        raise UnsendableUrl(
            "http:// 또는 https:// URL이 아닙니다", "it is not an http:// or https:// URL"
        )
    if parsed.auth is not None or "@" in split.netloc:
        raise UnsendableUrl(
            "사용자 이름이나 비밀번호(user:pass@)가 있습니다: 보내지 않습니다",
            "it holds a user name or password (user:pass@), which is never sent",
        )
    host = parsed.host or ""
    if not host:
        raise UnsendableUrl("호스트가 없습니다", "it names no host")
    if not _PLAIN_HOST.fullmatch(host):
        raise UnsendableUrl(
            "호스트가 평범한 도메인 이름이나 IP 주소가 아닙니다",
            "its host is not a plain domain name or IP address",
        )
    host = host.removeprefix("[").removesuffix("]")
    if (split.scheme, split.hostname, split_port) != (scheme, host, parsed.port):
        raise UnsendableUrl(
            "보내는 urllib3와 urllib가 그 안에서 서로 다른 곳을 읽습니다",
            "urllib3, which sends it, and urllib read different places in it",
        )
    return Destination(scheme, host, parsed.port or _DEFAULT_PORTS[scheme])


def configured_destination(
    variable: str, url: str, must_be: Words, languages: Languages
) -> Destination:
    """``destination`` of the URL ``variable`` holds; else a ConfigError naming the variable,
    ``must_be`` (what it must be: the fix) and what is wrong with it, in ``languages``."""
    try:
        return destination(url)
    except UnsendableUrl as exc:
        why = Words(f"{must_be.ko}: {exc.words.ko}", f"{must_be.en}: {exc.words.en}")
        raise ConfigError(why.said(languages), (variable,)) from exc
