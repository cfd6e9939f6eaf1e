"""Token documents in a Cloud Storage bucket, every write guarded by ``if_generation_match``.

google-cloud-storage is imported only when a call first needs it: the import costs ~0.2
CPU-seconds (over a second at a small CPU share), and neither the login redirect nor, on Cloud
Run, the token endpoint's first answer waits for it. With a ``GcsReader`` (gcs_reader.py; wiring
gives one on Cloud Run and with the emulator) reads go through it, without the client; writes,
deletes and listings always use the client.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..budget import Deadline
from ..errors import DeadlineReached, StorageError, WriteConflict
from .facts import Listed, facts_of_bytes, has_facts
from .gcs_reader import GcsReader, storage_error
from .protocol import NamePart, Stored

if TYPE_CHECKING:  # pragma: no cover
    from google.cloud.storage import Blob, Bucket, Client

# Seconds for one storage request, and for all of the client's retries of it together.
REQUEST_TIMEOUT = 10.0
RETRY_BUDGET = 20.0
# What a sweep's listing asks for: no more than it needs to decide what is due.
_LISTING_FIELDS = "items(name,generation,metageneration,metadata),nextPageToken"
_LISTING_PAGE = 1000  # the most one listing request returns
# What listing a document's generations asks for, and how many deletes of them run at once.
_VERSIONS_FIELDS = "items(name,generation,timeDeleted),nextPageToken"
_DELETE_WORKERS = 8
# google-cloud-storage leaves its parameters unannotated, and pyright infers each one's type
# from its default: ``timeout`` as int (the default is 60), though the client documents "float
# or tuple" and hands it to requests as it is, and ``retry`` as a Retry, though None turns
# retries off. Rounding a timeout would make a sub-second one 0, so those arguments carry
# ``pyright: ignore[reportArgumentType]`` instead.


def default_client() -> Client:
    """A storage client with the ambient credentials (or the emulator's, in tests).

    Its HTTP session is requests' own, so HTTPS_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE apply as
    requests normally applies them (read on every request; BENCHMARKS.md has the cost).
    """
    from google.cloud import storage

    return storage.Client()


class GcsTokenStore:
    """Compare-and-swap token storage on GCS; the generation number is the version."""

    def __init__(
        self,
        bucket_name: str,
        client_factory: Callable[[], Client] = default_client,
        reader: GcsReader | None = None,
    ) -> None:
        self._bucket_name = bucket_name
        self._client_factory = client_factory
        self._reader = reader
        self._idle: list[Bucket] = []  # handles not in use, each on a client of its own
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GcsTokenStore(bucket={self._bucket_name!r})"

    def warm_up(self) -> None:
        """Make ready, off the request path, what reads need: the reader's session, else the
        client (with a reader, the client waits for the first write: on Cloud Run an instance
        gets almost no CPU between requests, so a warm-up would only slow the next one)."""
        if self._reader is not None:
            self._reader.warm_up()
            return
        with self._bucket():
            pass

    def read(self, name: str, deadline: Deadline | None = None) -> Stored | None:
        timeout, budget = _limits(deadline)
        if self._reader is not None:
            return self._reader.read(self._bucket_name, name, timeout, budget)
        from google.api_core.exceptions import NotFound

        with self._bucket() as bucket:
            blob = bucket.blob(name)
            try:
                data = blob.download_as_bytes(timeout=timeout, retry=_retry(budget))  # pyright: ignore[reportArgumentType]
            except NotFound:
                return None
            except _failures() as exc:
                raise _storage_error("read", exc) from exc
        return Stored(data, str(blob.generation))

    def write(
        self, name: str, data: bytes, expected_version: str | None, deadline: Deadline | None = None
    ) -> str:
        # The precondition makes the upload idempotent, so the client may retry it.
        generation = int(expected_version) if expected_version else 0
        timeout, budget = _limits(deadline)
        return self._upload(name, data, generation, _retry(budget), timeout)

    def overwrite(self, name: str, data: bytes) -> str:
        # No precondition, so no retry: a repeated upload could undo a write made in between.
        return self._upload(name, data, None, None, REQUEST_TIMEOUT)

    def _upload(
        self, name: str, data: bytes, generation: int | None, retry: Any, timeout: float
    ) -> str:
        from google.api_core.exceptions import PreconditionFailed

        with self._bucket() as bucket:
            blob = bucket.blob(name)
            blob.cache_control = "no-store"
            # The sweep's facts travel in the same upload: never a second write on this path.
            blob.metadata = facts_of_bytes(data)
            try:
                blob.upload_from_string(
                    data,
                    content_type="application/json",
                    if_generation_match=generation,
                    timeout=timeout,  # pyright: ignore[reportArgumentType]
                    retry=retry,
                )
            except PreconditionFailed as exc:
                # Also what a retried upload whose first attempt landed sees: callers re-read
                # and decide, which is safe either way (comparing bytes would merge writers).
                raise WriteConflict(f"{name} changed since it was read") from exc
            except _failures() as exc:
                raise _storage_error("write", exc) from exc
        return str(blob.generation)

    def delete(
        self, name: str, expected_version: str | None = None, deadline: Deadline | None = None
    ) -> bool:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        # Retried only under a precondition: an unguarded retry could delete a login that
        # landed after the first attempt. A guarded retry whose first attempt landed sees
        # NotFound, which is the truth now: nothing is stored.
        generation = int(expected_version) if expected_version else None
        timeout, budget = _limits(deadline)
        retry = _retry(budget) if generation is not None else None
        try:
            with self._bucket() as bucket:
                bucket.blob(name).delete(
                    if_generation_match=generation,
                    timeout=timeout,  # pyright: ignore[reportArgumentType]
                    retry=retry,  # pyright: ignore[reportArgumentType]
                )
        except NotFound:
            return False
        except PreconditionFailed as exc:
            raise WriteConflict(f"{name} changed since it was read") from exc
        except _failures() as exc:
            raise _storage_error("delete", exc) from exc
        return True

    def delete_old_versions(self, name: str, deadline: Deadline | None = None) -> int:
        # The bucket is versioned (deploy.sh), so every overwrite and delete left a noncurrent
        # generation holding that moment's tokens. Only noncurrent ones are listed for deletion:
        # the live generation (an unlink marker, a login landing meanwhile) is never touched.
        generations = self._noncurrent_generations(name, deadline)
        if not generations:
            return 0
        # In parallel: a few days of refreshes are dozens of generations, and the unlink webhook
        # has under 3 seconds for all of them.
        with ThreadPoolExecutor(max_workers=min(_DELETE_WORKERS, len(generations))) as pool:
            futures = [pool.submit(self._delete_generation, name, g, deadline) for g in generations]
        deleted, failures = 0, []
        for future in futures:
            try:
                deleted += future.result()
            except (StorageError, DeadlineReached) as exc:
                failures.append(exc)
        if failures:  # each delete was tried; the first failure says why the rest are left
            raise failures[0]
        return deleted

    def _noncurrent_generations(self, name: str, deadline: Deadline | None) -> list[int]:
        timeout, budget = _limits(deadline)
        try:
            with self._bucket() as bucket:
                blobs = bucket.list_blobs(
                    prefix=name,
                    # The JSON API's spelling: a bool goes out as "True", which Cloud Storage
                    # takes and fake-gcs-server ignores (it would list live objects only).
                    versions="true",
                    fields=_VERSIONS_FIELDS,
                    timeout=timeout,  # pyright: ignore[reportArgumentType]
                    retry=_retry(budget),
                )
                # timeDeleted is there "if and only if this version has been deleted" (made
                # noncurrent): the JSON API's own test for an old version.
                return [
                    int(blob.generation)
                    for blob in blobs
                    if blob.name == name and blob.time_deleted is not None
                ]
        except _failures() as exc:
            raise _storage_error("list", exc) from exc

    def _delete_generation(self, name: str, generation: int, deadline: Deadline | None) -> bool:
        from google.api_core.exceptions import NotFound

        timeout, budget = _limits(deadline)
        # Naming the generation deletes exactly that one, and for good: retrying it is safe
        # (a repeat finds it gone).
        try:
            with self._bucket() as bucket:
                bucket.blob(name, generation=generation).delete(
                    timeout=timeout,  # pyright: ignore[reportArgumentType]
                    retry=_retry(budget),
                )
        except NotFound:
            return False  # gone already: another purge, or the bucket's lifecycle rule
        except _failures() as exc:
            raise _storage_error("delete", exc) from exc
        return True

    def names(self, prefix: str) -> list[str]:
        try:
            with self._bucket() as bucket:
                blobs = bucket.list_blobs(
                    prefix=prefix,
                    timeout=REQUEST_TIMEOUT,  # pyright: ignore[reportArgumentType]
                    retry=_retry(RETRY_BUDGET),
                )
                return sorted(blob.name for blob in blobs)
        except _failures() as exc:
            raise _storage_error("list", exc) from exc

    def listing(self, prefix: str, deadline: Deadline | None = None) -> list[Listed]:
        return self._listing(prefix, None, deadline)

    def listing_part(self, part: NamePart, deadline: Deadline | None = None) -> list[Listed]:
        # Cloud Storage applies the glob on its side: a shard's listing carries only its own
        # names, however many other shards' documents share the prefix.
        return [
            item
            for item in self._listing(part.prefix, part.glob, deadline)
            if part.holds(item.name)
        ]

    def _listing(
        self, prefix: str, match_glob: str | None, deadline: Deadline | None
    ) -> list[Listed]:
        # Page by page, each request fitted to what is left of the deadline: 10,000 documents
        # are ten requests, and one slow page must not carry the sweep past the timeout.
        found: list[Listed] = []
        page_token: str | None = None
        try:
            with self._bucket() as bucket:
                while True:
                    timeout, budget = _limits(deadline)
                    blobs = bucket.list_blobs(
                        prefix=prefix,
                        match_glob=match_glob,
                        fields=_LISTING_FIELDS,
                        page_size=_LISTING_PAGE,
                        page_token=page_token,
                        timeout=timeout,  # pyright: ignore[reportArgumentType]
                        retry=_retry(budget),
                    )
                    # One page per call: the iterator would fetch the next ones with the
                    # limits worked out for the first. (With a glob a page may hold fewer
                    # names, even none, and still not be the last.)
                    found += [_listed(blob) for blob in next(blobs.pages)]
                    page_token = blobs.next_page_token
                    if not page_token:
                        return found
        except _failures() as exc:
            raise _storage_error("list", exc) from exc

    def backfill(
        self, listed: Listed, facts: Mapping[str, str], deadline: Deadline | None = None
    ) -> None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        timeout, budget = _limits(deadline)
        try:
            with self._bucket() as bucket:
                blob = bucket.blob(listed.name)
                blob.metadata = dict(facts)
                # Both guards: the document is still the one read, and nobody changed its
                # metadata since the listing. Guarded, so the client may retry it.
                blob.patch(
                    if_generation_match=int(listed.version),
                    if_metageneration_match=int(listed.metageneration),
                    timeout=timeout,  # pyright: ignore[reportArgumentType]
                    retry=_retry(budget),
                )
        except (NotFound, PreconditionFailed):
            return  # changed or gone since the listing: its next write carries the facts
        except _failures() as exc:
            raise _storage_error("metadata update", exc) from exc

    @contextlib.contextmanager
    def _bucket(self) -> Iterator[Bucket]:
        """A bucket handle for one call, on a client no other call is using meanwhile.

        requests keeps at most 10 connections per session and drops the rest after each use; a
        sweep runs more workers than that. So each call borrows a client (one kept-alive
        connection) and gives it back: as many clients as calls ever ran at once, all reused.
        """
        with self._lock:
            bucket = self._idle.pop() if self._idle else None
        if bucket is None:
            bucket = self._new_bucket()
        try:
            yield bucket
        finally:
            with self._lock:
                self._idle.append(bucket)

    def _new_bucket(self) -> Bucket:
        try:
            client = self._client_factory()
        except _failures() as exc:  # e.g. no credentials
            raise StorageError(
                "could not create the Cloud Storage client: check the credentials "
                "(gcloud auth application-default login) and TOKEN_BUCKET"
            ) from exc
        return client.bucket(self._bucket_name)


def _listed(blob: Blob) -> Listed:
    metadata = blob.metadata  # a deep copy on every access: read it once
    facts = metadata if has_facts(metadata) else None
    # A listed blob always has its name; str() only says so to a checker, which sees the
    # client's optional name (a Blob may be built without one).
    return Listed(str(blob.name), str(blob.generation), str(blob.metageneration), facts)


@functools.cache
def _failures() -> tuple[type[Exception], ...]:
    """What the storage client raises when the service or the network fails."""
    import requests
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    return (GoogleAPIError, GoogleAuthError, requests.RequestException, OSError)


def _limits(deadline: Deadline | None) -> tuple[float, float]:
    """(timeout of one request, budget of all its retries), cut to the deadline if any.

    The client checks its budget only before it starts another attempt, and each attempt may
    then take its whole timeout, so budget + timeout must fit in what is left: a third of it
    for an attempt, the rest (less a second) for starting retries. Budgets are whole seconds so
    the cache of retry policies stays small.
    """
    if deadline is None:
        return REQUEST_TIMEOUT, RETRY_BUDGET
    left = deadline.remaining()
    if left < 1:
        raise DeadlineReached("no time left for a storage call before the deadline")
    timeout = min(REQUEST_TIMEOUT, left / 3)
    return timeout, float(max(0, min(RETRY_BUDGET, int(left - timeout - 1))))


@functools.cache  # built on first use (the import is lazy), then shared: Retry is immutable
def _retry(budget: float) -> Any:
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(budget)


def _storage_error(action: str, exc: Exception) -> StorageError:
    return storage_error(action, type(exc).__name__)
