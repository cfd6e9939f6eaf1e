"""Kakao's signing keys (the JWKS at ``<auth base URL>/.well-known/jwks.json``), cached.

Kakao rotates keys rarely and announces a new one only by using it: a key id (``kid``) the
cache does not know makes it fetch the set again. Anyone can post a SET with a made-up ``kid``,
and anyone can post while Kakao's JWKS cannot be reached: neither may make each request a call
to Kakao. So after a fetch an unknown kid caused, and after a fetch that failed, no other is
made for ``REFETCH_SECONDS``; a request that needs one meanwhile gets KakaoUnavailable (the
webhook's 503: Kakao sends the SET again later), never "no such key", which RFC 8935 makes
final for the sender: a key Kakao rotated in just after a made-up kid's fetch would be lost. A
set is kept ``KEYS_KEPT_SECONDS``, so a key Kakao withdrew stops being trusted within that time.

PyJWT (with cryptography) is imported only here and in web/account_status.py, on first use: cold
starts of the other paths never load it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import KakaoTokenError, KakaoUnavailable

KEYS_KEPT_SECONDS = 3600.0
REFETCH_SECONDS = 30.0

# timeout in seconds -> the JWKS document (KakaoClient.signing_keys); raises KakaoTokenError
FetchKeys = Callable[[float], Mapping[str, Any]]
# -> how long a fetch starting now may take (0: none may start). Asked once the lock is held:
# waiting there for another request's fetch used up some of the caller's time.
FetchSeconds = Callable[[], float]


class SigningKeys:
    """One instance's cache of one JWKS URL's keys; thread-safe."""

    def __init__(self, fetch: FetchKeys, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._monotonic = monotonic
        self._keys: dict[str, Any] = {}  # kid -> jwt.PyJWK
        self._fetched_at: float | None = None  # the last fetch that succeeded
        # No fetch before this (after one an unknown kid caused, or one that failed), and why.
        self._quiet_until: float | None = None
        self._quiet_reason = ""
        self._lock = threading.Lock()

    def key_for(self, kid: str, fetch_seconds: FetchSeconds) -> Any | None:
        """The public key (a ``jwt.PyJWK``) with this ``kid``, or None when Kakao has none.

        KakaoUnavailable when the set is needed and cannot be fetched: Kakao does not answer
        within ``fetch_seconds()``, no time is left, or Kakao was asked moments ago (see above).
        Waiting for another request's fetch takes at most ``fetch_seconds()`` too.
        """
        if not self._lock.acquire(timeout=max(fetch_seconds(), 0.0)):
            raise KakaoUnavailable("timeout", "another request is fetching Kakao's keys")
        try:
            return self._key_for(kid, fetch_seconds)
        finally:
            self._lock.release()

    def _key_for(self, kid: str, fetch_seconds: FetchSeconds) -> Any | None:
        """key_for, with the lock held."""
        now = self._monotonic()
        fresh = self._fetched_at is not None and now - self._fetched_at < KEYS_KEPT_SECONDS
        if fresh and kid in self._keys:
            return self._keys[kid]
        if self._quiet_until is not None and now < self._quiet_until:
            wait = self._quiet_until - now
            raise KakaoUnavailable(
                self._quiet_reason,
                f"Kakao's keys were asked for moments ago; again in {wait:.0f} s",
                retry_after=wait,
            )
        seconds = fetch_seconds()
        if seconds <= 0:
            raise KakaoUnavailable("timeout", "no time left to fetch Kakao's keys")
        try:
            keys = _parse(self._fetch(seconds))
        except KakaoTokenError as exc:
            self._quiet(getattr(exc, "reason", "unreachable"))
            raise
        self._keys = keys
        self._fetched_at = self._monotonic()
        if fresh:  # the set was fresh, yet lacked this kid: a rotation, or a made-up kid
            self._quiet("bad_response")
        return keys.get(kid)

    def _quiet(self, reason: str) -> None:
        self._quiet_until = self._monotonic() + REFETCH_SECONDS
        self._quiet_reason = reason


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
