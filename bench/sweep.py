"""The scheduled sweep at scale: N stored users, storage 25 ms away, Kakao 60 ms away.

The documents are written straight into fake-gcs-server's filesystem backend (in /dev/shm when
there is one), as earlier logins would have stored them, with their facts: one file per object
and its attributes in an extended attribute, the backend's whole format (fake-gcs-server
v1.54.0, internal/backend/fs.go). 100,000 uploads through its HTTP API would each take its
global lock and rewrite the bucket's own metadata file. The due users' refresh tokens are put
into the fake Kakao's state, each user distinct so Kakao's per-user limits hold.

Storage is reached through tests/listing_index.py: it adds the 25 ms to every request, answers
listings from an index as Cloud Storage does (with ``matchGlob``, which the emulator ignores;
the emulator itself re-reads every object for every page), and counts requests and the names
its listings returned. Kakao is behind a 60 ms proxy. Each sweep runs in a fresh process
(``python -m bench.sweep child``) so its peak RSS is its own, and runs as the function's
``kakao_refresh`` does: the sweep, its memory of deferrals, the report.

At 100,000 users the bucket is split with ``REFRESH_SHARDS=10``: each shard run is timed with
10 % of all users due (about a tenth of them in each shard), then again with none due (what
that run refreshed). ``python -m bench.sweep shards 100000 0 1`` runs only shards 0 and 1.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import google_crc32c

from bench.latency_proxy import LatencyProxy
from dev.fake_kakao import FakeKakao, FakeKakaoState, Tokens
from tests.helpers import GcsEmulator
from tests.listing_index import ListingIndex
from token_logic.storage.facts import facts_of_bytes
from token_logic.tokens import TokenDocument, to_json

STORAGE_DELAY = 0.025
KAKAO_DELAY = 0.060
DAY = 86400
TEMPLATE = "tokens/{user_id}.json"
FIRST_USER = 5_000_000_000
SHARDED_USERS = 100_000
SHARDS = 10


def _scratch_dir() -> Path:
    """Where the emulator keeps its objects: memory-backed when the machine has /dev/shm, so the
    emulator's own disk writes add as little as possible to the 25 ms the proxy stands for."""
    shm = Path("/dev/shm")  # noqa: S108 - mkdtemp makes a private (0700) directory in it
    return Path(tempfile.mkdtemp(prefix="bench-gcs-", dir=shm if shm.is_dir() else None))


class Bench:
    """An emulator on the filesystem backend, the listing index in front of it, a fake Kakao
    behind a proxy; buckets seeded straight into the backend's files."""

    def __enter__(self) -> Bench:
        self.root = _scratch_dir()
        self.emulator = GcsEmulator(backend_root=self.root).start()
        self.fake = FakeKakao(FakeKakaoState(redirect_uris={"http://function.test/"})).start()
        self.storage = ListingIndex(self.emulator.url, STORAGE_DELAY).__enter__()
        self.kakao = LatencyProxy(self.fake.url, KAKAO_DELAY).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kakao.__exit__()
        self.storage.__exit__()
        self.fake.stop()
        self.emulator.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def seed(self, users: int, due_every: int) -> tuple[str, dict[str, float]]:
        """A bucket of ``users`` documents, one in ``due_every`` due (0: none), and how long
        writing them and indexing them took."""
        bucket = self.emulator.new_bucket()
        began = time.perf_counter()
        due = write_documents(self.root / bucket, users, due_every, int(time.time()))
        written = time.perf_counter() - began
        with self.fake.state.lock:
            self.fake.state.refresh_tokens.update(due)
        began = time.perf_counter()
        indexed = self.storage.load(bucket)
        assert indexed == users, f"the emulator sees {indexed} of {users} documents"
        seconds = time.perf_counter() - began
        return bucket, {"due": len(due), "write_seconds": written, "index_seconds": seconds}

    def run(self, bucket: str, **child_env: str) -> dict[str, Any]:
        """One sweep in a fresh process; its facts, with the requests and names it cost."""
        self.storage.reset_counts()
        kakao_before = self.fake.state.refresh_calls()
        env = {
            **os.environ,
            "STORAGE_EMULATOR_HOST": self.storage.url,
            "TOKEN_BUCKET": bucket,
            "TOKEN_OBJECT": TEMPLATE,
            "KAKAO_REST_API_KEY": self.fake.state.client_id,
            "KAKAO_CLIENT_SECRET": self.fake.state.client_secret,
            "KAKAO_AUTH_BASE_URL": self.kakao.url,
            "KAKAO_API_BASE_URL": self.kakao.url,
            **child_env,
        }
        done = subprocess.run(
            [sys.executable, "-m", "bench.sweep", "child"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        result.update(
            storage_requests=self.storage.requests,
            names_listed=self.storage.names_listed,
            globs=sorted(set(self.storage.globs)),
            kakao_calls=self.fake.state.refresh_calls() - kakao_before,
        )
        return result


def write_documents(folder: Path, users: int, due_every: int, now: int) -> dict[str, Tokens]:
    """Store ``users`` documents as fake-gcs-server's filesystem backend keeps them, one in
    ``due_every`` due (0: none); the due users' refresh tokens as the fake Kakao must know them."""
    (folder / "tokens").mkdir(parents=True, exist_ok=True)
    first_generation = time.time_ns() // 1000

    def put(index: int) -> tuple[str, Tokens] | None:
        user_id = FIRST_USER + index
        # Not index % due_every: that picks one last digit, so one shard would hold every due
        # user. By tens, every last digit (every shard) gets its share.
        due = due_every > 0 and index // 10 % due_every == 0
        refresh_token = f"bench-refresh-{user_id}"
        document = TokenDocument(
            {
                "access_token": f"bench-access-{user_id}",
                "refresh_token": refresh_token,
                "token_type": "bearer",
                "scope": "talk_message",
                "expires_at": now - 60 if due else now + 5 * 3600,
                "refresh_token_expires_at": now + 50 * DAY,
                "updated_at": now - DAY,
                "user_id": user_id,
            }
        )
        data = to_json(document)
        name = f"tokens/{user_id}.json"
        _write_object(folder, name, data, facts_of_bytes(data), first_generation + index)
        if not due:
            return None
        return refresh_token, Tokens(user_id, "talk_message", now - 60, now + 50 * DAY)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(found for found in pool.map(put, range(users), chunksize=500) if found)


def _write_object(
    folder: Path, name: str, data: bytes, metadata: dict[str, str], generation: int
) -> None:
    """One object: its bytes in a file, its attributes (as the backend's ObjectAttrs JSON, what
    GcsTokenStore's upload would have left) in the file's ``user.metadata`` attribute."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(generation / 1e6))
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - as GCS does
    attrs = {
        "StorageClass": "STANDARD",
        "ContentType": "application/json",
        "ContentEncoding": "",
        "ContentDisposition": "",
        "ContentLanguage": "",
        "CacheControl": "no-store",
        "Crc32c": base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode(),
        "Md5Hash": md5,
        "Etag": md5,
        "ACL": None,
        "Metadata": metadata,
        "Created": stamp,
        "Deleted": "0001-01-01T00:00:00Z",
        "Updated": stamp,
        "CustomTime": "0001-01-01T00:00:00Z",
        "Generation": generation,
        "RetentionMode": "",
        "RetentionRetainUntil": "",
    }
    path = folder / name
    path.write_bytes(data)
    os.chmod(path, 0o600)
    os.setxattr(path, "user.metadata", json.dumps(attrs).encode())


def child() -> None:
    """Run one sweep as ``kakao_refresh`` runs it; print its facts as one JSON line.

    BENCH_SHARD=I/N sweeps one shard; BENCH_LIST_ONLY=1 only lists, as the whole sweep did
    before shards listed their own part (every shard listed the whole bucket).
    """
    import logging
    import resource

    from token_logic.service.shards import Shard
    from token_logic.service.sweep import list_for_sweep, outcome_kind
    from token_logic.service.sweep_memory import remember_run
    from token_logic.storage.protocol import template_matches, template_prefix
    from token_logic.web.sweep_report import sweep_report
    from token_logic.wiring import service_from_env

    logging.disable(logging.INFO)  # the per-refresh INFO lines are not what is measured
    service = service_from_env(os.environ)
    shard = Shard.parse(os.environ.get("BENCH_SHARD", "0/1"))
    template = service.settings.token_object
    began = time.perf_counter()
    deadline = service.deadline()
    if os.environ.get("BENCH_LIST_ONLY"):
        listed = list_for_sweep(
            service.store, template_prefix(template), template_matches(template), deadline
        )
        counts = {"listed": len(listed)}
    else:
        outcomes = service.sweep(shard=shard, deadline=deadline)
        runs = remember_run(service.store, template, shard, outcomes, service.now(), deadline)
        status, _ = sweep_report(
            outcomes, service.now(), template, "", whole=shard.count == 1, deferred_runs=runs
        )
        counts = {"http_status": status}
        for outcome in outcomes:
            kind = outcome_kind(outcome)
            counts[kind] = counts.get(kind, 0) + 1
    elapsed = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    facts = {"seconds": elapsed, "counts": counts, "peak_rss_mib": _peak_rss_kib() / 1024}
    print(json.dumps({**facts, "cpu_seconds": usage.ru_utime + usage.ru_stime}))


def _peak_rss_kib() -> int:
    """This process's own peak RSS. Not getrusage's ru_maxrss: Linux keeps that across fork and
    exec, so a child would report the bench's own peak (its index of 100,000 names)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def run_whole(sizes: tuple[int, ...] = (1000, 10000)) -> list[dict[str, Any]]:
    """One unsharded sweep per size, with 10 % due and with none due."""
    results = []
    with Bench() as bench:
        for users in sizes:
            for due_every in (0, 10):
                bucket, seeding = bench.seed(users, due_every)
                result = bench.run(bucket)
                result.update(users=users, **seeding)
                print(json.dumps(result), file=sys.stderr)
                results.append(result)
    return results


def run_shards(
    users: int = SHARDED_USERS, shards: tuple[int, ...] = tuple(range(SHARDS))
) -> dict[str, Any]:
    """``users`` users, 10 % due, REFRESH_SHARDS=10: each of ``shards`` swept with its due users,
    then again with none due; and the whole-bucket listing every shard used to make."""
    with Bench() as bench:
        bucket, seeding = bench.seed(users, 10)
        print(json.dumps(seeding), file=sys.stderr)
        runs = []
        for index in shards:
            label = f"{index}/{SHARDS}"
            due = bench.run(bucket, BENCH_SHARD=label)
            none = bench.run(bucket, BENCH_SHARD=label)
            runs.append({"shard": label, "due": due, "none": none})
            print(json.dumps(runs[-1]), file=sys.stderr)
        whole = bench.run(bucket, BENCH_LIST_ONLY="1")
        print(json.dumps(whole), file=sys.stderr)
    return {"users": users, "seeding": seeding, "runs": runs, "whole_listing": whole}


def lines(results: dict[str, Any]) -> list[str]:
    """Section 6 of BENCHMARKS.md from ``run_all``'s results."""
    out = [
        "## 6. Scheduled sweep: N stored users, storage +25 ms per request, Kakao +60 ms",
        "",
        "Documents written straight into fake-gcs-server's filesystem backend; storage reached "
        "through tests/listing_index.py (+25 ms per request; listings answered from an index, "
        "with `matchGlob`, as Cloud Storage does); each sweep in a fresh process, run as "
        "`kakao_refresh` runs it (SWEEP_WORKERS default).",
        "",
        "| users | due | wall time | storage requests | names listed | Kakao calls | outcomes "
        "| peak RSS | sweep CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["whole"]:
        out.append(
            f"| {r['users']:,} | {r['due']:,} | {r['seconds']:.1f} s | {r['storage_requests']:,} "
            f"| {r['names_listed']:,} | {r['kakao_calls']:,} | {_outcomes(r)} "
            f"| {r['peak_rss_mib']:.0f} MiB | {r['cpu_seconds']:.1f} s |"
        )
    out += [
        "",
        "Targets: 10,000 users with 10 % due under 20 s, none due under 5 s, Kakao calls = due.",
        "",
    ]
    if results.get("sharded"):
        out += _shard_lines(results["sharded"])
    return out


def _shard_lines(sharded: dict[str, Any]) -> list[str]:
    users, seeding, whole = sharded["users"], sharded["seeding"], sharded["whole_listing"]
    out = [
        f"### {users:,} users, `REFRESH_SHARDS={SHARDS}`, 10 % due",
        "",
        "Each shard lists only its own part: Cloud Storage filters the listing by a glob on the "
        "last digits of the user id (token_logic/service/shards.py; with N = 10, shard 3 is "
        "`tokens/*3.json`), so a shard's listing carries about 1/N of the names. Until issue 20 "
        "every shard listed the whole bucket and filtered it afterwards (by a hash of the name): "
        "`REFRESH_SHARDS` did not cut listing time, though the note on the ceiling below said "
        "it did. The last line shows what that cost each shard here.",
        "",
        f"Seeded in {seeding['write_seconds']:.1f} s (files and extended attributes written "
        f"straight into the backend, 4 threads), indexed in {seeding['index_seconds']:.1f} s "
        "(one listing from the emulator). Each shard is swept with its due users, then again "
        "with none due. Targets: with 10 % due under 20 s, with none due under 5 s, a listing of "
        f"about {users // SHARDS:,} names.",
        "",
        "| shard | glob | due: wall time | names listed | storage requests | Kakao calls "
        "| outcomes | peak RSS | sweep CPU | none due: wall time | names listed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in sharded["runs"]:
        due, none = run["due"], run["none"]
        globs = ", ".join(f"`{glob}`" for glob in due["globs"])
        out.append(
            f"| {run['shard']} | {globs} | {due['seconds']:.1f} s | {due['names_listed']:,} "
            f"| {due['storage_requests']:,} | {due['kakao_calls']:,} | {_outcomes(due)} "
            f"| {due['peak_rss_mib']:.0f} MiB | {due['cpu_seconds']:.1f} s "
            f"| {none['seconds']:.1f} s | {none['names_listed']:,} |"
        )
    out += [
        "",
        f"What every shard listed before each listed its own part (the whole bucket, filtered "
        f"afterwards): {whole['counts']['listed']:,} names in {whole['seconds']:.1f} s, "
        f"{whole['storage_requests']:,} requests.",
        "",
    ]
    return out


def _outcomes(result: dict[str, Any]) -> str:
    counts = {k: v for k, v in result["counts"].items() if k != "http_status"}
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def emulator_costs(sizes: tuple[int, ...] = (100, 10000)) -> None:
    """Per-request time of each fake-gcs-server backend with ``sizes`` objects stored (no proxy)."""
    import requests

    for backend in ("memory", "filesystem"):
        root = _scratch_dir()
        emulator = GcsEmulator(backend_root=root if backend == "filesystem" else None).start()
        session = requests.Session()
        try:
            for size in sizes:
                bucket = emulator.new_bucket()
                upload = f"{emulator.url}/upload/storage/v1/b/{bucket}/o?uploadType=media&name="

                def put(index: int, upload: str = upload) -> None:
                    requests.post(f"{upload}u{index}", data=b"{}", timeout=30).raise_for_status()

                with ThreadPoolExecutor(max_workers=16) as pool:
                    list(pool.map(put, range(size)))
                began = time.perf_counter()
                for index in range(200):
                    session.post(f"{upload}u{index % size}", data=b"{}").raise_for_status()
                each = (time.perf_counter() - began) / 200 * 1000
                began = time.perf_counter()
                pages, token = 0, ""
                while token is not None:
                    listing = session.get(
                        f"{emulator.url}/storage/v1/b/{bucket}/o",
                        params={"maxResults": "1000", "pageToken": token},
                    ).json()
                    pages, token = pages + 1, listing.get("nextPageToken")
                listed = (time.perf_counter() - began) * 1000
                print(
                    f"{backend}, {size:,} objects: one upload {each:.2f} ms, "
                    f"listing them all ({pages} pages) {listed:.0f} ms"
                )
        finally:
            emulator.stop()
            shutil.rmtree(root, ignore_errors=True)


def run_all() -> dict[str, Any]:
    """Everything section 6 shows (bench/run.py writes it)."""
    return {"whole": run_whole(), "sharded": run_shards()}


if __name__ == "__main__":
    args = sys.argv[1:]
    if args == ["child"]:
        child()
    elif args == ["emulator"]:
        emulator_costs()
    elif args[:1] == ["shards"]:
        users = int(args[1]) if len(args) > 1 else SHARDED_USERS
        chosen = tuple(int(n) for n in args[2:]) or tuple(range(SHARDS))
        print("\n".join(_shard_lines(run_shards(users, chosen))))
    else:
        sizes = tuple(int(n) for n in args) or (1000, 10000)
        print("\n".join(lines({"whole": run_whole(sizes)})))
