"""Cloud Storage's object listing in front of fake-gcs-server: an index, and ``matchGlob``.

The bundled fake-gcs-server (v1.54.0) cannot stand in for Cloud Storage's listing:
- it ignores ``matchGlob`` (every object under the prefix comes back), so a shard's listing
  could not be tested at all;
- every page request lists and reads every object under the prefix again, on both backends, so a
  listing of n objects in pages of 1,000 costs n * n / 1,000 object reads: at 100,000 objects,
  minutes. Cloud Storage answers a page from an index.

``ListingIndex`` is a reverse proxy that answers object listings (prefix, startOffset, endOffset,
matchGlob, maxResults, pageToken) from its own sorted index of the bucket, loaded from the
emulator once and kept current from the answers to every upload, metadata update and delete that
passes through it; every other request goes to the emulator. A listing item carries what the
sweep asks for (name, generation, metageneration, metadata), not the whole resource. It adds
``delay_seconds`` to every request, as bench/latency_proxy.py does, and counts requests and the
names its listings returned.

``glob_pattern`` follows Cloud Storage's glob syntax as Google's own system test of it runs
against the real service (googleapis/python-storage, tests/system/test_bucket.py,
``test_bucket_list_blobs_w_match_glob``): ``*`` is any run of characters but ``/``; ``**``
any run at all (``**/`` any folders, or none); ``?`` one character but ``/``; ``[...]`` and
``[!...]`` character classes; ``{a,b}`` alternatives, themselves globs; ``\\`` an escape.
tests/service/test_shards.py checks it on that test's table.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests

from dev.loopback import LoopbackServer, send

_LIST = re.compile(r"^/storage/v1/b/([^/]+)/o$")
_OBJECT = re.compile(r"^/storage/v1/b/([^/]+)/o/(.+)$")
_UPLOAD = re.compile(r"^/upload/storage/v1/b/([^/]+)/o$")
_HOP_HEADERS = ("host", "content-length", "connection", "transfer-encoding", "content-encoding")
_PAGE_LIMIT = 1000  # Cloud Storage's most per page


def glob_pattern(glob: str) -> re.Pattern[str]:
    """The regular expression that matches exactly the names ``glob`` matches."""
    regex, rest = _translate(glob, top=True)
    if rest:
        raise ValueError(f"unbalanced glob: {glob!r}")
    return re.compile(regex, re.S)


def _translate(glob: str, *, top: bool) -> tuple[str, str]:
    """(regex, what is left) of ``glob`` up to the end, or to a ``,`` or ``}`` inside braces."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if not top and char in ",}":
            return "".join(out), glob[i:]
        if glob.startswith("**/", i):  # any folders, or none
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "\\" and i + 1 < len(glob):
            out.append(re.escape(glob[i + 1]))
            i += 2
        elif char == "[":
            end = glob.index("]", i + 2)  # a "]" right after "[" (or "[!") is a member
            members = glob[i + 1 : end]
            negate = members.startswith("!")
            members = members[1:] if negate else members
            escaped = "".join("\\" + m if m in "\\^[]" else m for m in members)
            out.append(f"[^/{escaped}]" if negate else f"[{escaped}]")
            i = end + 1
        elif char == "{":
            choices = []
            rest = glob[i + 1 :]
            while True:
                choice, rest = _translate(rest, top=False)
                choices.append(choice)
                if not rest:
                    raise ValueError(f"unbalanced glob: {glob!r}")
                separator, rest = rest[0], rest[1:]
                if separator == "}":
                    break
            out.append("(?:" + "|".join(choices) + ")")
            i = len(glob) - len(rest)
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out), ""


class ListingIndex:
    """A reverse proxy to fake-gcs-server answering object listings from an index."""

    def __init__(self, upstream: str, delay_seconds: float = 0.0) -> None:
        self.upstream = upstream
        self.delay = delay_seconds
        self.requests = 0
        self.names_listed = 0
        self.globs: list[str] = []  # every matchGlob asked for, in order
        self._lock = threading.Lock()
        self._names: dict[str, list[str]] = {}  # bucket -> sorted names
        self._entries: dict[str, dict[str, tuple[str, str, dict[str, str]]]] = {}
        self._local = threading.local()
        index = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _serve(self) -> None:
                index._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._server = LoopbackServer(Handler, quiet=True)
        self.url = self._server.url

    def __enter__(self) -> ListingIndex:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def reset_counts(self) -> None:
        with self._lock:
            self.requests = self.names_listed = 0
            self.globs = []

    def load(self, bucket: str) -> int:
        """Index every object of ``bucket`` as the emulator has it now; how many there are."""
        response = self._session().get(f"{self.upstream}/storage/v1/b/{bucket}/o", timeout=600)
        response.raise_for_status()
        entries = {item["name"]: _entry(item) for item in response.json().get("items", [])}
        with self._lock:
            self._entries[bucket] = entries
            self._names[bucket] = sorted(entries)
        return len(entries)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests += 1
        if self.delay:
            time.sleep(self.delay)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        split = urlsplit(handler.path)
        query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        listing = _LIST.match(split.path)
        if handler.command == "GET" and listing and not _beyond_the_index(query):
            answer = self._list(unquote(listing.group(1)), query)
            send(handler, 200, json.dumps(answer).encode(), {"Content-Type": "application/json"})
            return
        upstream = self._session().request(
            handler.command,
            self.upstream + handler.path,
            headers={k: v for k, v in handler.headers.items() if k.lower() not in _HOP_HEADERS},
            data=body,
            timeout=60,
            allow_redirects=False,
        )
        if handler.command != "GET" and 200 <= upstream.status_code < 300:
            self._note_change(handler.command, split.path, query, upstream.content)
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS}
        send(handler, upstream.status_code, upstream.content, headers)

    def _list(self, bucket: str, query: dict[str, str]) -> dict[str, Any]:
        if bucket not in self._names:
            self.load(bucket)
        prefix = query.get("prefix", "")
        end = query.get("endOffset", "")
        glob = query.get("matchGlob")
        pattern = glob_pattern(glob) if glob else None
        limit = min(int(query.get("maxResults") or _PAGE_LIMIT), _PAGE_LIMIT)
        items: list[dict[str, Any]] = []
        more = False
        with self._lock:
            if glob:
                self.globs.append(glob)
            names, entries = self._names[bucket], self._entries[bucket]
            if "pageToken" in query:
                at = bisect.bisect_right(names, query["pageToken"])
            else:
                at = bisect.bisect_left(names, max(prefix, query.get("startOffset", "")))
            for name in names[at:]:
                if not name.startswith(prefix) or (end and name >= end):
                    break
                if pattern and not pattern.fullmatch(name):
                    continue
                if len(items) == limit:
                    more = True
                    break
                generation, metageneration, metadata = entries[name]
                item: dict[str, Any] = {
                    "kind": "storage#object",
                    "bucket": bucket,
                    "name": name,
                    "generation": generation,
                    "metageneration": metageneration,
                }
                if metadata:
                    item["metadata"] = dict(metadata)
                items.append(item)
            self.names_listed += len(items)
        answer: dict[str, Any] = {"kind": "storage#objects", "items": items}
        if more:
            answer["nextPageToken"] = items[-1]["name"]
        return answer

    def _note_change(self, method: str, path: str, query: dict[str, str], content: bytes) -> None:
        found = _OBJECT.match(path) or _UPLOAD.match(path)
        if not found:
            return
        bucket = unquote(found.group(1))
        with self._lock:
            if bucket not in self._names:
                return  # not loaded yet: loading will see this change
            names, entries = self._names[bucket], self._entries[bucket]
            if method == "DELETE" and _OBJECT.match(path):
                name = unquote(found.group(2))
                live = entries.get(name)
                if live and query.get("generation", live[0]) == live[0]:
                    del entries[name]
                    names.pop(bisect.bisect_left(names, name))
                return
            try:
                resource = json.loads(content)
            except ValueError:
                return
            if not (isinstance(resource, dict) and "name" in resource and "generation" in resource):
                return
            name = resource["name"]
            if name not in entries:
                bisect.insort(names, name)
            entries[name] = _entry(resource)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False
        return session


def _beyond_the_index(query: dict[str, str]) -> bool:
    """Listings the index does not answer (old versions, folders): the emulator does."""
    return query.get("versions", "").lower() == "true" or bool(query.get("delimiter"))


def _entry(resource: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    return (
        str(resource["generation"]),
        str(resource.get("metageneration") or "1"),
        dict(resource.get("metadata") or {}),
    )
