"""Both stores keep one promise: compare-and-swap. Same tests, GCS emulator and local files."""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from token_logic.errors import StorageError, WriteConflict
from token_logic.file_store import FileTokenStore
from token_logic.gcs_store import GcsTokenStore
from token_logic.store import TokenStore, document_name, template_matches, template_prefix


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
    monkeypatch.setattr("token_logic.gcs_store.RETRY_BUDGET", 1.0)
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
