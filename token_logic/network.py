"""The HTTP session a process uses (Kakao, the token endpoint, Cloud Storage reads): one per
process for connection reuse, with the proxies and CA bundle read once from the environment."""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .checks import LOOPBACK_HOSTS

if TYPE_CHECKING:  # pragma: no cover
    import requests


def new_session(proxies: Mapping[str, str] | None = None, ca_bundle: str = "") -> requests.Session:
    """A session that keeps connections alive; a process builds one and reuses it.

    Proxies (NO_PROXY applied) and the CA bundle come from the settings, read once; ``trust_env``
    is off so requests does not scan the environment again on every call.
    """
    import requests

    session = requests.Session()
    session.trust_env = False
    session.proxies.update(proxies or {})
    if ca_bundle:
        session.verify = ca_bundle
    session.headers["User-Agent"] = "kakao-token-function"
    return session


def proxies_for(env: Mapping[str, str], urls: tuple[str, ...]) -> dict[str, str]:
    """The proxy for each host of ``urls`` (Kakao's, the token endpoint's), as requests would
    choose it from HTTP(S)_PROXY and NO_PROXY, read once here: the session then skips
    re-reading the environment on every request (about half a millisecond each; BENCHMARKS.md).
    Keys are ``scheme://host``, which requests matches per request; a host NO_PROXY exempts
    gets no key, so no proxy."""
    no_proxy = env.get("no_proxy") or env.get("NO_PROXY") or ""
    found = {}
    for url in urls:
        parts = urlsplit(url)
        proxy = env.get(f"{parts.scheme}_proxy") or env.get(f"{parts.scheme.upper()}_PROXY")
        host = parts.hostname or ""
        if proxy and not _bypasses_proxy(host, no_proxy):
            found[f"{parts.scheme}://{host}"] = proxy
    return found


def ca_bundle_from(env: Mapping[str, str]) -> str:
    """The CA bundle requests would use from the environment ("" for its own)."""
    return env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or ""


def _bypasses_proxy(host: str, no_proxy: str) -> bool:
    """NO_PROXY as requests reads it: ``*``, a domain and its subdomains, or an IP network; and
    this machine always: a credential sent to an http:// loopback URL (trusted in clear text
    for that reason) must not travel in clear text to a proxy instead."""
    if host.strip("[]") in LOOPBACK_HOSTS or host.startswith("127."):
        return True
    for entry in (item.strip().lower() for item in no_proxy.split(",")):
        entry = entry.lstrip(".")
        if entry.count(":") == 1:  # host:port (an IPv6 network has more colons)
            entry = entry.rsplit(":", 1)[0]
        if not entry:
            continue
        if entry == "*" or host == entry or host.endswith("." + entry):
            return True
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return True
    return False


def body_within(response: requests.Response, give_up_at: float, max_bytes: int) -> bytes:
    """The body of a response opened with ``stream=True``, read by ``give_up_at`` (a
    ``time.monotonic()`` time) and at most ``max_bytes`` long.

    A read timeout bounds each wait for the next bytes, not the whole answer: a server that
    sends one byte at a time, each in time, would hold the caller for as long as it likes. Here
    each read takes what one arrives with (``read1``), and the clock is looked at before each.
    Raises ``requests.Timeout`` or ``requests.ConnectionError`` (too large), as the request
    itself would.
    """
    import requests

    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > give_up_at:
            raise requests.Timeout("answer still arriving when time ran out")
        chunk = response.raw.read1(8192, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise requests.ConnectionError(f"answer larger than {max_bytes} bytes")
        chunks.append(chunk)
