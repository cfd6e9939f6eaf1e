"""Token documents in local files: how the function runs locally and in tests.

Writes go to a temporary file that is renamed over the old one (a reader never sees half a
document), with mode 0600. An exclusive lock around compare-and-swap makes concurrent writers,
threads or processes, serialize exactly like GCS generation preconditions do.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from .budget import Deadline
from .errors import StorageError, WriteConflict
from .index import Listed, facts_of_bytes
from .store import Stored


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
            path.parent.mkdir(parents=True, exist_ok=True)
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
        except FileNotFoundError:  # the directory (and so the lock file) does not exist
            return False
        except OSError as exc:
            raise StorageError(f"cannot delete {path}: {exc.strerror}; check TOKEN_DIR") from exc
        return True

    def names(self, prefix: str) -> list[str]:
        # Only the prefix's own directory is listed: TOKEN_DIR may be a busy working directory.
        directory = self._root / prefix.rpartition("/")[0]
        if not directory.is_dir():
            return []
        found = []
        for path in directory.iterdir():
            name = path.relative_to(self._root).as_posix()
            if path.is_file() and not path.name.startswith(".") and name.startswith(prefix):
                found.append(name)
        return sorted(found)

    def listing(self, prefix: str, deadline: Deadline | None = None) -> list[Listed]:
        # Local files are the index: reading one costs about as little as a metadata entry.
        found = []
        for name in self.names(prefix):
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
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
