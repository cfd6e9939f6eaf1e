"""Both stores keep one promise: compare-and-swap. Same tests, GCS emulator and local files."""

from __future__ import annotations

import json
import logging
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from token_logic.errors import StorageError, WriteConflict
from token_logic.storage.files import FileTokenStore
from token_logic.storage.gcs import GcsTokenStore
from token_logic.storage.protocol import (
    NamePart,
    PartListingStore,
    TokenStore,
    document_name,
    template_matches,
    template_prefix,
)


def test_read_of_nothing_is_none(store: TokenStore) -> None:
    """An absent document reads as None."""
    assert store.read("kakao_token.json") is None


def test_create_then_read_back(store: TokenStore) -> None:
    """A create (expected None) stores the bytes; read returns them with the new version."""
    version = store.write("kakao_token.json", b'{"a": 1}', None)

    stored = store.read("kakao_token.json")
    assert stored is not None
    assert stored.data == b'{"a": 1}' and stored.version == version


def test_create_over_an_existing_document_conflicts(store: TokenStore) -> None:
    """Two creators: the second loses, the first's bytes stay."""
    store.write("doc.json", b"first", None)

    with pytest.raises(WriteConflict):
        store.write("doc.json", b"second", None)
    stored = store.read("doc.json")
    assert stored is not None and stored.data == b"first"


def test_write_with_a_stale_version_conflicts(store: TokenStore) -> None:
    """A writer holding an old version cannot overwrite a newer document."""
    v1 = store.write("doc.json", b"one", None)
    store.write("doc.json", b"two", v1)

    with pytest.raises(WriteConflict):
        store.write("doc.json", b"three", v1)
    stored = store.read("doc.json")
    assert stored is not None and stored.data == b"two"


def test_identical_bytes_from_a_stale_writer_still_conflict(store: TokenStore) -> None:
    """Two writers computing the same bytes from one version must not both succeed."""
    v1 = store.write("doc.json", b"one", None)
    store.write("doc.json", b"two", v1)

    with pytest.raises(WriteConflict):
        store.write("doc.json", b"two", v1)


def test_replace_overwrites_and_a_writer_holding_the_old_version_then_conflicts(
    store: TokenStore,
) -> None:
    """overwrite (a login) wins over what is stored; a stale compare-and-swap after it loses."""
    created = store.overwrite("doc.json", b"first login")
    second = store.overwrite("doc.json", b"second login")

    with pytest.raises(WriteConflict):
        store.write("doc.json", b"refreshed from the first login", created)
    stored = store.read("doc.json")
    assert stored is not None
    assert stored.data == b"second login" and stored.version == second != created


def test_concurrent_read_modify_write_loses_no_update(store: TokenStore) -> None:
    """24 writers incrementing a counter through CAS end at exactly 24."""
    store.write("counter.json", b'{"n": 0}', None)

    def increment() -> None:
        while True:
            current = store.read("counter.json")
            assert current is not None
            value = json.loads(current.data)["n"] + 1
            try:
                store.write("counter.json", json.dumps({"n": value}).encode(), current.version)
                return
            except WriteConflict:
                continue

    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(increment) for _ in range(24)]:
            future.result()

    final = store.read("counter.json")
    assert final is not None and json.loads(final.data) == {"n": 24}


def test_names_lists_documents_under_a_prefix(store: TokenStore) -> None:
    """names(prefix) finds per-user documents and nothing else."""
    for name in ("tokens/1.json", "tokens/22.json", "other.json"):
        store.write(name, b"{}", None)

    assert store.names("tokens/") == ["tokens/1.json", "tokens/22.json"]


def test_a_part_listing_gives_exactly_the_parts_documents(store: TokenStore) -> None:
    """listing_part gives the part's documents with their facts, and nothing else, whether the
    server filters by the glob (Cloud Storage) or not (this emulator, local files)."""
    for name in ("tokens/13.json", "tokens/3.json", "tokens/14.json", "tokens/x3.json"):
        store.write(name, b"{}", None)
    wanted = ("tokens/13.json", "tokens/3.json")
    part = NamePart("tokens/", lambda name: name in wanted, "tokens/*3.json")

    assert isinstance(store, PartListingStore)
    listed = store.listing_part(part)

    assert sorted(item.name for item in listed) == ["tokens/13.json", "tokens/3.json"]


def test_local_file_is_private_and_leaves_no_temp_files(tmp_path: Path) -> None:
    """Local documents are mode 0600 and the temporary file is renamed away."""
    store = FileTokenStore(tmp_path)

    store.write("kakao_token.json", b"{}", None)

    assert stat.S_IMODE(os.stat(tmp_path / "kakao_token.json").st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_local_names_outside_token_dir_are_refused(tmp_path: Path) -> None:
    """A document name cannot escape TOKEN_DIR."""
    with pytest.raises(StorageError):
        FileTokenStore(tmp_path).read("../escape.json")


def test_unreachable_bucket_is_a_storage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead storage endpoint becomes StorageError (after the client's bounded retries)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    monkeypatch.setattr("token_logic.storage.gcs.RETRY_BUDGET", 1.0)
    store = GcsTokenStore("nowhere")

    with pytest.raises(StorageError, match="TOKEN_BUCKET"):
        store.read("kakao_token.json")


def test_document_names_from_the_template() -> None:
    """{user_id} selects one document per user; the predicate recognizes only those."""
    assert document_name("kakao_token.json", 5) == "kakao_token.json"
    assert document_name("tokens/{user_id}.json", 5) == "tokens/5.json"
    matches = template_matches("tokens/{user_id}.json")
    assert matches("tokens/5.json") and not matches("tokens/x.json")
    assert not matches("tokens/.json") and not matches("other/5.json")
    assert template_prefix("tokens/{user_id}.json") == "tokens/"


def test_delete_removes_the_document(store: TokenStore) -> None:
    """delete without a version removes what is stored and says so."""
    store.write("tokens/5.json", b"{}", None)

    assert store.delete("tokens/5.json") is True
    assert store.read("tokens/5.json") is None
    assert store.names("tokens/") == []


def test_delete_of_nothing_is_false(store: TokenStore) -> None:
    """Deleting an absent document, with or without a version, changes nothing: False."""
    store.write("other.json", b"kept", None)

    assert store.delete("tokens/5.json") is False
    assert store.delete("kakao_token.json", "12345") is False
    stored = store.read("other.json")
    assert stored is not None and stored.data == b"kept"


def test_delete_at_the_read_version_removes_it(store: TokenStore) -> None:
    """delete with the version just read succeeds."""
    version = store.write("doc.json", b"one", None)

    assert store.delete("doc.json", version) is True
    assert store.read("doc.json") is None


def test_delete_with_a_stale_version_conflicts_and_keeps_the_newer_document(
    store: TokenStore,
) -> None:
    """A login that lands between the read and the delete is not deleted."""
    if isinstance(store, GcsTokenStore):
        pytest.skip(
            "the bundled fake-gcs-server ignores ifGenerationMatch on DELETE "
            "(fsouza/fake-gcs-server#1282; real GCS answers 412): see the GCS test below"
        )
    read_version = store.write("doc.json", b"old login", None)
    store.overwrite("doc.json", b"new login")

    with pytest.raises(WriteConflict):
        store.delete("doc.json", read_version)
    stored = store.read("doc.json")
    assert stored is not None and stored.data == b"new login"


def test_a_document_can_be_created_again_after_a_delete(store: TokenStore) -> None:
    """After a delete, a create (expected None) succeeds: nothing is stored any more."""
    version = store.write("doc.json", b"one", None)
    store.delete("doc.json", version)

    store.write("doc.json", b"two", None)

    stored = store.read("doc.json")
    assert stored is not None and stored.data == b"two"


class _RecordingBlob:
    """A blob whose delete answers like GCS: 412 on a generation mismatch, 404 when absent."""

    def __init__(self, bucket: _RecordingBucket, name: str) -> None:
        self._bucket, self._name = bucket, name

    def delete(self, *, if_generation_match: int | None, timeout: float, retry: object) -> None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        self._bucket.calls.append((if_generation_match, retry))
        generation = self._bucket.generations.get(self._name)
        # api_core's exceptions leave __init__ unannotated.
        if generation is None:
            raise NotFound("no such object")  # type: ignore[no-untyped-call]
        if if_generation_match is not None and if_generation_match != generation:
            raise PreconditionFailed("conditionNotMet")  # type: ignore[no-untyped-call]
        del self._bucket.generations[self._name]


class _RecordingBucket:
    def __init__(self, generations: dict[str, int]) -> None:
        self.generations = generations
        self.calls: list[tuple[int | None, object]] = []

    def blob(self, name: str) -> _RecordingBlob:
        return _RecordingBlob(self, name)


def test_gcs_delete_sends_the_generation_precondition_and_maps_412() -> None:
    """GCS delete carries if_generation_match; a 412 is WriteConflict; only guarded is retried."""
    bucket = _RecordingBucket({"doc.json": 7})
    client: Any = type("Client", (), {"bucket": lambda self, name: bucket})()  # not a real Client
    store = GcsTokenStore("b", client_factory=lambda: client)

    with pytest.raises(WriteConflict):
        store.delete("doc.json", "6")
    assert store.delete("doc.json", "7") is True
    assert store.delete("doc.json") is False

    (stale, _), (current, guarded_retry), (unguarded, unguarded_retry) = bucket.calls
    assert (stale, current, unguarded) == (6, 7, None)
    assert guarded_retry is not None and unguarded_retry is None


def test_many_concurrent_calls_keep_one_connection_each(
    bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A sweep's 16 workers on one store: connections are opened once and then reused.

    requests keeps 10 connections per session; on one shared client the other 6 workers would
    open a connection for every request and drop it (TLS each time against Cloud Storage).
    Each client opens at most two: its first call also fetches the bucket's metadata in a
    background thread (google-cloud-storage's own cache), on a second connection."""
    store = GcsTokenStore(bucket)
    store.write("doc.json", b'{"n": 1}', None)
    workers, rounds = 16, 20
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    caplog.clear()

    def reads(_: int) -> None:
        for _ in range(rounds):
            assert store.read("doc.json") is not None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(reads, range(workers)))

    opened = [r for r in caplog.records if r.getMessage().startswith("Starting new HTTP")]
    dropped = [r for r in caplog.records if "pool is full" in r.getMessage()]
    assert 1 <= len(opened) <= 2 * workers and not dropped


def test_delete_old_versions_keeps_the_current_document(store: TokenStore) -> None:
    """A store keeping no older copies (local files; an unversioned bucket) deletes nothing: the
    document stays as it is."""
    version = store.write("doc.json", b"one", None)
    store.write("doc.json", b"two", version)

    assert store.delete_old_versions("doc.json") == 0
    stored = store.read("doc.json")
    assert stored is not None and stored.data == b"two"
    assert store.delete_old_versions("never-stored.json") == 0


def test_local_old_versions_are_a_killed_writers_temporary_files(tmp_path: Path) -> None:
    """A writer killed before its rename leaves .NAME.XXXXXXXX.tmp with the tokens it was writing:
    deleted; the document, its lock and another document's temporary file stay."""
    store = FileTokenStore(tmp_path)
    store.write("kakao_token.json", b'{"refresh_token": "live"}', None)
    left = tmp_path / ".kakao_token.json.k1ll3d_w.tmp"
    left.write_bytes(b'{"refresh_token": "half-written"}')
    others = tmp_path / ".kakao_token.json.x.a1b2c3d4.tmp"  # document kakao_token.json.x's
    others.write_bytes(b"{}")

    assert store.delete_old_versions("kakao_token.json") == 1

    assert not left.exists() and others.exists()
    assert (tmp_path / ".kakao_token.json.lock").exists()
    stored = store.read("kakao_token.json")
    assert stored is not None and b"live" in stored.data
    assert store.delete_old_versions("kakao_token.json") == 0


class _VersionedBlob:
    def __init__(self, bucket: _VersionedBucket, name: str, generation: int) -> None:
        self._bucket, self.name, self.generation = bucket, name, generation
        self.time_deleted = "2026-01-01T00:00:00Z" if generation in bucket.noncurrent else None

    def delete(self, *, timeout: float, retry: object) -> None:
        from google.api_core.exceptions import NotFound, ServiceUnavailable

        self._bucket.deleted.append((self.name, self.generation, retry))
        # api_core's exceptions leave __init__ unannotated.
        if self.generation in self._bucket.failing:
            raise ServiceUnavailable("injected")  # type: ignore[no-untyped-call]
        if self.generation in self._bucket.vanished:
            raise NotFound("deleted by the lifecycle rule meanwhile")  # type: ignore[no-untyped-call]


class _VersionedBucket:
    """Generations 5 to 9 of doc.json (9 live) and an old generation 4 of doc.json.bak."""

    def __init__(self) -> None:
        self.live, self.noncurrent = 9, {4, 5, 6, 7, 8}
        self.vanished: set[int] = set()
        self.failing: set[int] = set()
        self.listed: list[dict[str, object]] = []
        self.deleted: list[tuple[str, int, object]] = []

    def list_blobs(self, **kwargs: object) -> list[_VersionedBlob]:
        self.listed.append(kwargs)
        return [
            _VersionedBlob(self, "doc.json.bak", 4),
            *(_VersionedBlob(self, "doc.json", g) for g in (5, 6, 7, 8, self.live)),
        ]

    def blob(self, name: str, generation: int) -> _VersionedBlob:
        return _VersionedBlob(self, name, generation)


def test_gcs_delete_old_versions_names_each_noncurrent_generation() -> None:
    """Listed with versions=true, each noncurrent generation of exactly that name is deleted by
    its number (retried: a repeat finds it gone), never the live one nor doc.json.bak; one the
    lifecycle rule took meanwhile is not counted."""
    bucket = _VersionedBucket()
    bucket.vanished = {6}
    client: Any = type("Client", (), {"bucket": lambda self, name: bucket})()  # not a real Client
    store = GcsTokenStore("b", client_factory=lambda: client)

    assert store.delete_old_versions("doc.json") == 3

    [listing] = bucket.listed
    assert listing["prefix"] == "doc.json" and listing["versions"] == "true"
    assert sorted(g for _, g, _ in bucket.deleted) == [5, 6, 7, 8]
    assert {name for name, _, _ in bucket.deleted} == {"doc.json"}
    assert all(retry is not None for _, _, retry in bucket.deleted)


def test_gcs_delete_old_versions_tries_every_one_then_reports_a_failure() -> None:
    """One generation failing: the others are still deleted, then a StorageError says so."""
    bucket = _VersionedBucket()
    bucket.failing = {7}
    client: Any = type("Client", (), {"bucket": lambda self, name: bucket})()  # not a real Client
    store = GcsTokenStore("b", client_factory=lambda: client)

    with pytest.raises(StorageError, match="delete"):
        store.delete_old_versions("doc.json")

    assert sorted(g for _, g, _ in bucket.deleted) == [5, 6, 7, 8]
