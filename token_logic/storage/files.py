"""Token documents in local files: how the function runs locally and in tests.

Writes go to a temporary file that is renamed over the old one (a reader never sees half a
document), with mode 0600; the file is synced before the rename and its folder after it (and
after a delete), so a power cut keeps the new document, never half or none of it. An exclusive
lock around compare-and-swap makes concurrent writers, threads or processes, serialize exactly
like GCS generation preconditions do.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..budget import Deadline
from ..checks import is_decimal
from ..errors import StorageError, WriteConflict
from .facts import Listed, facts_of_bytes
from .protocol import NamePart, Stored

_TEMP_SUFFIX = ".tmp"  # a writer's temporary file: .{name}.XXXXXXXX.tmp


class FileTokenStore:
    """Compare-and-swap token storage in a directory; a content hash is the version."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._root = Path(directory).resolve()

    def __repr__(self) -> str:
        return f"FileTokenStore(directory={str(self._root)!r})"

    def read(self, name: str, deadline: Deadline | None = None) -> Stored | None:
        # Local files answer at once; the deadline matters only for remote stores.
        path = self._path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror}; check TOKEN_DIR") from exc
        return Stored(data, _version(data))

    def write(
        self, name: str, data: bytes, expected_version: str | None, deadline: Deadline | None = None
    ) -> str:
        return self._put(name, data, check=True, expected_version=expected_version)

    def overwrite(self, name: str, data: bytes) -> str:
        return self._put(name, data, check=False, expected_version=None)

    def _put(self, name: str, data: bytes, *, check: bool, expected_version: str | None) -> str:
        path = self._path(name)
        try:
            _make_folders(path.parent)
            with _locked(path):  # an overwrite too: a compare-and-swap must never interleave it
                if check:
                    current = self.read(name)
                    if (current.version if current else None) != expected_version:
                        raise WriteConflict(f"{name} changed since it was read")
                _replace_atomically(path, data)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror}; check TOKEN_DIR") from exc
        return _version(data)

    def delete(
        self, name: str, expected_version: str | None = None, deadline: Deadline | None = None
    ) -> bool:
        path = self._path(name)
        if not path.exists():  # as if before any write racing in; and no lock file left behind
            return False
        try:
            with _locked(path):  # the writers' lock: a delete never interleaves a write
                current = self.read(name)
                if current is None:
                    return False
                if expected_version is not None and current.version != expected_version:
                    raise WriteConflict(f"{name} changed since it was read")
                path.unlink()
            _sync_folder(path.parent)
        except FileNotFoundError:  # the directory (and so the lock file) does not exist
            return False
        except OSError as exc:
            raise StorageError(f"cannot delete {path}: {exc.strerror}; check TOKEN_DIR") from exc
        return True

    def delete_old_versions(self, name: str, deadline: Deadline | None = None) -> int:
        """A file keeps no older versions; what may be left is a writer's temporary copy.

        A writer killed between creating its temporary file and the rename leaves that file,
        with the tokens it was writing. Every writer of ``name`` holds the lock while its
        temporary file exists, so under the lock any such file is one of those: deleted.
        """
        path = self._path(name)
        try:
            if not _temporary_copies(path):  # the usual case: no lock taken, no lock file made
                return 0
            with _locked(path):
                stale = _temporary_copies(path)
                for entry in stale:
                    entry.unlink(missing_ok=True)
            _sync_folder(path.parent)
        except OSError as exc:
            raise StorageError(f"cannot clean up {path}: {exc.strerror}; check TOKEN_DIR") from exc
        return len(stale)

    def names(self, prefix: str) -> list[str]:
        """Every document name starting with ``prefix`` that a TOKEN_OBJECT can produce.

        The prefix's own folder is listed, and below it only the folders whose name continues
        the prefix with a digit: where a user id in a folder puts documents
        (``users/{user_id}/token.json``), each walked whole. TOKEN_DIR may be a busy working
        directory (TOKEN_DIR=. with ``{user_id}.json``), and the listing reads every name it
        gives, so nothing else is walked. Cloud Storage gives every name under the prefix; the
        caller's template test keeps the same documents from both.
        """
        folder, _, start = prefix.rpartition("/")
        found = []
        for path in _entries(self._root / folder):
            if not path.name.startswith(start):
                continue
            if path.is_file():
                found.append(path)
            elif _is_real_folder(path) and is_decimal(path.name[len(start) : len(start) + 1]):
                found += _files_under(path)
        return sorted(path.relative_to(self._root).as_posix() for path in found)

    def listing(self, prefix: str, deadline: Deadline | None = None) -> list[Listed]:
        return self._listed(self.names(prefix))

    def listing_part(self, part: NamePart, deadline: Deadline | None = None) -> list[Listed]:
        # The shard's rule is tested on the name, before the file is read: a shard reads only
        # its own documents, as a Cloud Storage listing carries only its own.
        return self._listed([name for name in self.names(part.prefix) if part.holds(name)])

    def _listed(self, names: list[str]) -> list[Listed]:
        # Local files are the index: reading one costs about as little as a metadata entry.
        found = []
        for name in names:
            try:
                data = self._path(name).read_bytes()
            except FileNotFoundError:  # deleted since the directory was listed
                continue
            except OSError as exc:
                raise StorageError(f"cannot read {name}: {exc.strerror}; check TOKEN_DIR") from exc
            found.append(Listed(name, _version(data), "", facts_of_bytes(data) or None))
        return found

    def backfill(
        self, listed: Listed, facts: Mapping[str, str], deadline: Deadline | None = None
    ) -> None:
        """Nothing to add: a file's facts are read from the file itself."""

    def _path(self, name: str) -> Path:
        path = (self._root / name).resolve()
        if self._root not in path.parents:
            raise StorageError(f"document name {name!r} leaves TOKEN_DIR")
        return path


def _version(data: bytes) -> str:
    # The content is the version: equal bytes mean an equal state, so a writer whose document
    # went A -> B -> A may still write. Every state the refresh protocol cares about (a lease,
    # a refresh) carries a unique owner or time, so such a round trip never hides a change.
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock_path = path.with_name(f".{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _replace_atomically(path: Path, data: bytes) -> None:
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as temp:  # mkstemp already created it with mode 0600
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    # The rename is a change to the folder, kept only once the folder itself is synced: until
    # then a power cut may bring back the old document (a rotated-away refresh token).
    _sync_folder(path.parent)


def _temporary_copies(path: Path) -> list[Path]:
    """The temporary files writers of ``path`` made (a killed writer's stay behind).

    Exactly mkstemp's names (8 random characters between prefix and suffix): a document named
    ``{name}.x`` has temporary files that start alike, and they are not this lock's to touch.
    """
    own = re.compile(re.escape(f".{path.name}.") + "[a-z0-9_]{8}" + re.escape(_TEMP_SUFFIX))
    return [entry for entry in _all_entries(path.parent) if own.fullmatch(entry.name)]


def _make_folders(folder: Path) -> None:
    """``mkdir -p``, each new folder's entry in its parent synced as a rename's is."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made by another writer meanwhile
            new.mkdir()
        _sync_folder(new.parent)


# What fsync of a folder answers where the platform or file system cannot do it.
_CANNOT_SYNC_FOLDER = {errno.EINVAL, errno.ENOTSUP, errno.EBADF}


def _sync_folder(folder: Path) -> None:
    """Make the renames, new entries and deletes in ``folder`` durable, where the OS can."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # a platform that cannot open a folder (Windows): nothing to sync
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _CANNOT_SYNC_FOLDER:
            raise
    finally:
        os.close(fd)


def _entries(folder: Path) -> list[Path]:
    """The folder's entries but hidden ones (lock and temporary files); none if it is gone."""
    return [path for path in _all_entries(folder) if not path.name.startswith(".")]


def _all_entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _is_real_folder(path: Path) -> bool:
    # A linked folder could loop, or lead out of TOKEN_DIR: never walked.
    return path.is_dir() and not path.is_symlink()


def _files_under(folder: Path) -> list[Path]:
    found = []
    for path in _entries(folder):
        if _is_real_folder(path):
            found += _files_under(path)
        elif path.is_file():
            found.append(path)
    return found
