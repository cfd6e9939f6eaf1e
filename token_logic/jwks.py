"""Kakao's signing keys (the JWKS at ``<auth base URL>/.well-known/jwks.json``), cached.

Kakao rotates keys rarely and announces a new one only by using it: a key id (``kid``) the
cache does not know makes it fetch the set again, once; such a fetch happens at most once in
``REFETCH_SECONDS`` (anyone can post a SET with a made-up ``kid``; that must not make each
request a call to Kakao). A set is kept ``MAX_AGE_SECONDS``, so a key Kakao withdrew stops
being trusted within that time.

PyJWT (with cryptography) is imported only here and in account_events.py, on first use: cold
starts of the other paths never load it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .errors import KakaoUnavailable

MAX_AGE_SECONDS = 3600.0
REFETCH_SECONDS = 30.0

# timeout in seconds -> the JWKS document (KakaoClient.signing_keys); raises KakaoTokenError
FetchKeys = Callable[[float], Mapping[str, Any]]


class SigningKeys:
    """One instance's cache of one JWKS URL's keys; thread-safe."""

    def __init__(self, fetch: FetchKeys, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._monotonic = monotonic
        self._keys: dict[str, Any] = {}  # kid -> jwt.PyJWK
        self._fetched_at: float | None = None
        self._refetched_at: float | None = None  # the last fetch an unknown kid caused
        self._lock = threading.Lock()

    def key_for(self, kid: str, timeout_seconds: float) -> Any | None:
        """The public key (a ``jwt.PyJWK``) with this ``kid``, or None when Kakao has none.

        KakaoUnavailable when the set is needed and cannot be fetched within the timeout.
        """
        with self._lock:
            now = self._monotonic()
            fresh = self._fetched_at is not None and now - self._fetched_at < MAX_AGE_SECONDS
            if fresh and kid in self._keys:
                return self._keys[kid]
            refetch = fresh  # the set is fresh, yet lacks this kid
            last = self._refetched_at
            if refetch and last is not None and now - last < REFETCH_SECONDS:
                return None  # an unknown kid fetched the set just now: still unknown
            self._keys = _parse(self._fetch(timeout_seconds))
            self._fetched_at = self._monotonic()
            if refetch:
                self._refetched_at = self._fetched_at
            return self._keys.get(kid)


def _parse(document: Mapping[str, Any]) -> dict[str, Any]:
    """The RSA signing keys of a JWKS, by ``kid`` (others are skipped: only RS256 is used)."""
    import jwt

    found: dict[str, Any] = {}
    entries = document.get("keys")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or entry.get("use", "sig") != "sig":
            continue
        try:
            found[kid] = jwt.PyJWK(entry, algorithm="RS256")
        except jwt.PyJWTError:
            continue  # one malformed key must not hide the others
    if not found:
        raise KakaoUnavailable("bad_response", "Kakao's JWKS holds no RSA signing key")
    return found
