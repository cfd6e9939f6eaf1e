"""One Cloud Storage read without google-cloud-storage: a JSON-API media GET over requests.

A cold token endpoint needs exactly one storage call before its first answer, a read, and
importing google-cloud-storage for it (google-auth, cryptography, protobuf, the resumable-media
module) costs ~0.2 CPU-seconds, over a second at a small CPU share (BENCHMARKS.md section 1).
This is the same read: ``GET {endpoint}/storage/v1/b/{bucket}/o/{name}?alt=media``, the object's
generation from the ``x-goog-generation`` header as the version, 404 as nothing stored. On Cloud
Run it sends the instance's service-account token from the metadata server; against the
emulator none. Writes, deletes and listings keep the client (gcs.py): they need its
preconditions, uploads and paging, and they are not on a cold start's path.

Retried as the client retries a download: 408, 429 and 5xx answers, connection failures and
timeouts, 1 s doubling up to 60 s, for as long as the budget the store works out allows.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

from ..errors import StorageError
from ..retry import Retry
from .protocol import Stored

if TYPE_CHECKING:  # pragma: no cover
    import requests

_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
# A cached access token is replaced this long before it expires (google-auth: 3 min 45 s).
TOKEN_MARGIN_SECONDS = 300
# What google-cloud-storage retries (google/cloud/storage/retry.py), and its backoff.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
FIRST_PAUSE_SECONDS = 1.0
MAX_PAUSE_SECONDS = 60.0


class _Retryable(Exception):
    """A failure worth another attempt; the message is its short cause."""


class _Refused(Exception):
    """Cloud Storage refused the access token (401): worth one attempt with a new one."""


def storage_error(action: str, cause: str) -> StorageError:
    """The one wording of a storage failure, for the client's and this module's."""
    return StorageError(
        f"Cloud Storage {action} failed ({cause}); "
        "check TOKEN_BUCKET and the service account's access"
    )


class MetadataToken:
    """The instance's service-account access token, from the metadata server, kept until
    ``TOKEN_MARGIN_SECONDS`` before it expires; one fetch at a time for all threads."""

    def __init__(self, host: str, now: Callable[[], float] = time.monotonic) -> None:
        self._url = f"http://{host}{_TOKEN_PATH}"
        self._now = now
        self._token = ""
        self._renew_at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the token
        return f"MetadataToken(url={self._url!r})"

    def authorization(self, session: requests.Session, timeout: float) -> str:
        """The Authorization header's value; raises _Retryable or StorageError."""
        import requests

        with self._lock:
            if self._token and self._now() < self._renew_at:
                return f"Bearer {self._token}"
            try:
                answer = session.get(
                    self._url,
                    headers={"Metadata-Flavor": "Google"},
                    timeout=timeout,
                    allow_redirects=False,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise _Retryable(f"metadata server: {type(exc).__name__}") from exc
            if answer.status_code in RETRYABLE_STATUSES:
                raise _Retryable(f"metadata server: HTTP {answer.status_code}")
            try:
                if answer.status_code != 200:
                    raise ValueError(f"HTTP {answer.status_code}")
                body = json.loads(answer.content)
                token, lifetime = str(body["access_token"]), int(body["expires_in"])
            except (ValueError, KeyError, TypeError) as exc:
                raise storage_error(
                    "read", "no access token from the metadata server: not on Google Cloud?"
                ) from exc
            self._token = token
            self._renew_at = self._now() + lifetime - TOKEN_MARGIN_SECONDS
            return f"Bearer {token}"

    def forget(self) -> None:
        """Drop the cached token (Cloud Storage refused it): the next call fetches a new one."""
        with self._lock:
            self._token = ""


class GcsReader:
    """Reads whole objects of any bucket at ``endpoint``; thread-safe, one session."""

    def __init__(
        self,
        endpoint: str,
        token: MetadataToken | None,
        session: Callable[[], requests.Session],
        *,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._token = token
        self._session_factory = session
        self._session: requests.Session | None = None
        self._lock = threading.Lock()
        self._sleep = sleep
        self._now = now

    def __repr__(self) -> str:
        return f"GcsReader(endpoint={self._endpoint!r}, authorized={self._token is not None})"

    def warm_up(self) -> None:
        """Import requests and build the session now."""
        self._http()

    def read(self, bucket: str, name: str, timeout: float, budget: float) -> Stored | None:
        """The object's bytes and generation, or None when it does not exist (nor its bucket).

        Each attempt may take ``timeout``; another starts only if its pause ends within
        ``budget`` of the first (the store fits both into the request's deadline).
        """
        url = f"{self._endpoint}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
        give_up_at = self._now() + budget
        retry = Retry.doubling(FIRST_PAUSE_SECONDS, MAX_PAUSE_SECONDS, jitter=0.5)
        refused_token = False

        def attempt() -> Stored | None:
            nonlocal refused_token
            try:
                return self._attempt(url, timeout)
            except _Refused as exc:
                if refused_token or self._token is None:
                    raise storage_error("read", str(exc)) from exc
                # A token revoked or expired early: fetch a new one, once, at once.
                self._token.forget()
                refused_token = True
            return attempt()

        failure: _Retryable | None = None
        for _ in retry.attempts(sleep=self._sleep, time_left=lambda: give_up_at - self._now()):
            try:
                return attempt()
            except _Retryable as exc:
                failure = exc
        raise storage_error("read", str(failure)) from failure

    def _attempt(self, url: str, timeout: float) -> Stored | None:
        import requests

        session = self._http()
        headers = {}
        if self._token is not None:
            headers["Authorization"] = self._token.authorization(session, timeout)
        try:
            answer = session.get(
                url,
                params={"alt": "media"},
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            )
            data = answer.content
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            raise _Retryable(type(exc).__name__) from exc
        except requests.RequestException as exc:
            raise storage_error("read", type(exc).__name__) from exc
        status = answer.status_code
        if status == 404:
            return None
        if status == 401:
            raise _Refused("HTTP 401")
        if status in RETRYABLE_STATUSES:
            raise _Retryable(f"HTTP {status}")
        if status != 200:
            raise storage_error("read", f"HTTP {status}")
        generation = answer.headers.get("x-goog-generation", "")
        if not generation.isdigit():
            raise storage_error("read", "no generation in the answer")
        if not _intact(data, answer.headers):
            raise _Retryable("checksum mismatch")
        return Stored(data, generation)

    def _http(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                self._session = self._session_factory()
            return self._session


def _intact(data: bytes, headers: Mapping[str, str]) -> bool:
    """Whether ``data`` has the MD5 Cloud Storage gives for the object (when it gives one, and
    the bytes are as stored: a gzip-encoded object comes back decoded). ``headers`` is
    requests' case-insensitive mapping."""
    if headers.get("content-encoding", "identity") != "identity":
        return True
    for part in headers.get("x-goog-hash", "").split(","):
        kind, _, digest = part.strip().partition("=")
        if kind == "md5":
            return base64.b64encode(hashlib.md5(data).digest()).decode() == digest  # noqa: S324 - Cloud Storage's checksum, not security
    return True
