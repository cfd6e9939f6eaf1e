"""The file store's layout on disk: per-user folders are found, and every rename is durable."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev.fake_kakao import FakeKakao
from tests.conftest import settings_env
from tests.helpers import FakeClock, GcsEmulator, complete_login
from token_logic.config import Settings
from token_logic.network import new_session
from token_logic.service.sweep import outcome_kind
from token_logic.storage.files import FileTokenStore
from token_logic.wiring import build_service

FOLDER_TEMPLATE = "users/{user_id}/token.json"
USERS = (4127000001, 4127000002)


@pytest.mark.parametrize("kind", ["file", "gcs"])
def test_a_sweep_refreshes_every_user_of_a_folder_template(
    kind: str,
    request: pytest.FixtureRequest,
    fake_kakao: FakeKakao,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    """TOKEN_OBJECT=users/{user_id}/token.json: the sweep finds both users' documents and
    refreshes them, and takes no other document under users/ for a user."""
    if kind == "file":
        where = {"TOKEN_DIR": str(tmp_path)}
    else:
        gcs: GcsEmulator = request.getfixturevalue("gcs")
        where = {"TOKEN_BUCKET": gcs.new_bucket()}
    env = settings_env(fake_kakao, TOKEN_OBJECT=FOLDER_TEMPLATE, **where)
    service = build_service(Settings.from_env(env), session=new_session(), clock=clock)
    for user in USERS:
        fake_kakao.state.user_id = user
        complete_login(service)
    stored = service.store.read(f"users/{USERS[0]}/token.json")
    assert stored is not None
    strays = (  # a copy of a real login each: refreshed, if any were taken for a user
        "users/token.json",
        "users/me/token.json",
        "users/4127000003/token.json.bak",
        "users/4127000003/old/token.json",
        "users/4127000003-old/token.json",
    )
    for name in strays:
        service.store.overwrite(name, stored.data)
    clock.advance(6 * 3600)  # every access token is due

    outcomes = {o.name: outcome_kind(o) for o in service.sweep()}

    assert outcomes == {f"users/{user}/token.json": "refreshed" for user in USERS}
    assert fake_kakao.state.refresh_calls() == len(USERS)
    assert [view["document"] for view in service.status()] == sorted(outcomes)


def test_file_names_walk_only_folders_a_user_id_can_start(tmp_path: Path) -> None:
    """Below the prefix's folder only folders continuing it with a digit are walked, so a busy
    TOKEN_DIR (TOKEN_OBJECT={user_id}/token.json, TOKEN_DIR=.) is not read from end to end."""
    store = FileTokenStore(tmp_path)
    for name in ("5/token.json", "17/deep/token.json", "kakao_token.json", "node_modules/x.js"):
        store.overwrite(name, b"{}")
    (tmp_path / "19").symlink_to(tmp_path / "node_modules")  # a loop or an escape, never walked

    assert store.names("") == ["17/deep/token.json", "5/token.json", "kakao_token.json"]
    assert [item.name for item in store.listing("")] == store.names("")
    assert store.names("kakao_token.json") == ["kakao_token.json"]
    assert store.names("1") == ["17/deep/token.json"]


def test_a_document_in_a_new_user_folder_is_private_and_alone(tmp_path: Path) -> None:
    """A first write into a new user folder makes the folders, a 0600 document and its lock
    file, and leaves no temporary file behind."""
    store = FileTokenStore(tmp_path)

    store.write("users/5/token.json", b"{}", None)

    assert stat.S_IMODE(os.stat(tmp_path / "users/5/token.json").st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "users/5").iterdir()) == [
        ".token.json.lock",
        "token.json",
    ]


class SyncLog:
    """What the OS was asked to do, in order: renames, unlinks and fsyncs (of a folder or a
    file, by inode), recorded around the real calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, object]] = []
        real_fsync, real_replace, real_unlink = os.fsync, os.replace, os.unlink

        def fsync(fd: int) -> None:
            info = os.fstat(fd)
            kind = "fsync-dir" if stat.S_ISDIR(info.st_mode) else "fsync-file"
            self.events.append((kind, (info.st_dev, info.st_ino)))
            real_fsync(fd)

        def replace(src: str, dst: str | os.PathLike[str], **kwargs: object) -> None:
            real_replace(src, dst, **kwargs)  # type: ignore[arg-type]
            self.events.append(("replace", Path(dst)))

        def unlink(path: str | os.PathLike[str], **kwargs: object) -> None:
            real_unlink(path, **kwargs)  # type: ignore[arg-type]
            self.events.append(("unlink", Path(path)))

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(os, "unlink", unlink)

    def after(self, kind: str, path: Path) -> list[tuple[str, object]]:
        """The events after the last ``kind`` of ``path``."""
        index = max(i for i, event in enumerate(self.events) if event == (kind, path))
        return self.events[index + 1 :]


def inode(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


@pytest.fixture
def sync_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncLog]:
    yield SyncLog(monkeypatch)


def test_a_write_syncs_the_file_then_its_folder_after_the_rename(
    tmp_path: Path, sync_log: SyncLog
) -> None:
    """The temporary file is synced before the rename, and the folder after it: a power cut
    then keeps the new document, not an empty or vanished one."""
    store = FileTokenStore(tmp_path)
    store.write("kakao_token.json", b"{}", None)
    sync_log.events.clear()

    store.overwrite("kakao_token.json", b'{"a": 1}')

    path = tmp_path / "kakao_token.json"
    assert sync_log.events[0] == ("fsync-file", inode(path))  # the renamed file is the temp one
    assert ("fsync-dir", inode(tmp_path)) in sync_log.after("replace", path)


def test_a_first_write_syncs_every_folder_it_created(tmp_path: Path, sync_log: SyncLog) -> None:
    """A new user's folders are entries in their parents too: each parent is synced."""
    store = FileTokenStore(tmp_path / "store")

    store.write("users/5/token.json", b"{}", None)

    synced = {event[1] for event in sync_log.events if event[0] == "fsync-dir"}
    for folder in ("store/users/5", "store/users", "store", ""):
        assert inode(tmp_path / folder) in synced, folder


def test_a_delete_syncs_the_folder_after_the_unlink(tmp_path: Path, sync_log: SyncLog) -> None:
    """A logout's delete survives a power cut: the folder is synced after the unlink."""
    store = FileTokenStore(tmp_path)
    store.write("kakao_token.json", b"{}", None)

    assert store.delete("kakao_token.json")

    after = sync_log.after("unlink", tmp_path / "kakao_token.json")
    assert ("fsync-dir", inode(tmp_path)) in after


def test_a_folder_that_cannot_be_synced_is_skipped_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the platform cannot sync a folder (EINVAL, as some file systems answer), the write
    still succeeds."""
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store = FileTokenStore(tmp_path)

    store.write("kakao_token.json", b"{}", None)

    assert store.read("kakao_token.json") is not None
    assert store.delete("kakao_token.json")
