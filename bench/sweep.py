"""The scheduled sweep at scale: N stored users, storage 25 ms away, Kakao 60 ms away.

The documents are seeded straight into fake-gcs-server in parallel (as earlier logins would have
written them, with their facts); the due users' refresh tokens are put into the fake Kakao's
state, each user distinct so Kakao's per-user limits hold. Each sweep runs in a fresh process
(``python -m bench.sweep child``) so its peak RSS is its own; the proxies count requests.

The emulator runs on its filesystem backend: its memory backend looks an object up by scanning
every object of the bucket, so each request there costs more the more users are stored, which
Cloud Storage does not do. ``python -m bench.sweep emulator`` measures both backends.
"""

from __future__ import annotations

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

from bench.latency_proxy import LatencyProxy
from dev.fake_kakao import FakeKakao, FakeKakaoState, Tokens
from tests.helpers import GcsEmulator
from token_logic.tokens import TokenDocument, to_json

STORAGE_DELAY = 0.025
KAKAO_DELAY = 0.060
DAY = 86400
TEMPLATE = "tokens/{user_id}.json"
FIRST_USER = 5_000_000_000


def _scratch_dir() -> Path:
    """Where the emulator keeps its objects: memory-backed when the machine has /dev/shm, so the
    emulator's own disk writes add as little as possible to the 25 ms the proxy stands for."""
    shm = Path("/dev/shm")  # noqa: S108 - mkdtemp makes a private (0700) directory in it
    return Path(tempfile.mkdtemp(prefix="bench-gcs-", dir=shm if shm.is_dir() else None))


def seed(emulator: GcsEmulator, fake: FakeKakao, users: int, due_every: int) -> str:
    """A bucket of ``users`` documents, every ``due_every``-th one due (0: none)."""
    from token_logic.gcs_store import GcsTokenStore

    bucket = emulator.new_bucket()
    os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
    store = GcsTokenStore(bucket)
    now = int(time.time())

    def put(index: int) -> None:
        user_id = FIRST_USER + index
        due = due_every > 0 and index % due_every == 0
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
        store.overwrite(TEMPLATE.replace("{user_id}", str(user_id)), to_json(document))
        if due:
            with fake.state.lock:
                fake.state.refresh_tokens[refresh_token] = Tokens(
                    user_id, "talk_message", now - 60, now + 50 * DAY
                )

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(put, range(users)))
    return bucket


def measure(users: int, due_every: int) -> dict[str, Any]:
    """One sweep over freshly seeded users; wall time, requests, Kakao calls, peak RSS."""
    # The filesystem backend: the memory backend scans every object on each request, a cost
    # that grows with the bucket and that Cloud Storage does not have (BENCHMARKS.md).
    emulator_root = _scratch_dir()
    emulator = GcsEmulator(backend_root=emulator_root).start()
    fake = FakeKakao(FakeKakaoState(redirect_uris={"http://function.test/"})).start()
    try:
        bucket = seed(emulator, fake, users, due_every)
        with (
            LatencyProxy(emulator.url, STORAGE_DELAY) as storage,
            LatencyProxy(fake.url, KAKAO_DELAY) as kakao,
        ):
            env = {
                **os.environ,
                "STORAGE_EMULATOR_HOST": storage.url,
                "TOKEN_BUCKET": bucket,
                "TOKEN_OBJECT": TEMPLATE,
                "KAKAO_REST_API_KEY": fake.state.client_id,
                "KAKAO_CLIENT_SECRET": fake.state.client_secret,
                "KAKAO_AUTH_BASE_URL": kakao.url,
                "KAKAO_API_BASE_URL": kakao.url,
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
                users=users,
                due=users // due_every if due_every else 0,
                storage_requests=storage.requests,
                kakao_calls=fake.state.refresh_calls(),
            )
            return result
    finally:
        fake.stop()
        emulator.stop()
        shutil.rmtree(emulator_root, ignore_errors=True)


def child() -> None:
    """Run one sweep as the function would, print its facts as one JSON line."""
    import logging
    import resource

    from token_logic.sweep import outcome_kind
    from token_logic.wiring import service_from_env

    logging.disable(logging.INFO)  # the per-refresh INFO lines are not what is measured
    service = service_from_env(os.environ)
    began = time.perf_counter()
    outcomes = service.sweep()
    elapsed = time.perf_counter() - began
    counts: dict[str, int] = {}
    for outcome in outcomes:
        kind = outcome_kind(outcome)
        counts[kind] = counts.get(kind, 0) + 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    facts = {"seconds": elapsed, "counts": counts, "peak_rss_mib": usage.ru_maxrss / 1024}
    print(json.dumps({**facts, "cpu_seconds": usage.ru_utime + usage.ru_stime}))


def run_all(sizes: tuple[int, ...] = (1000, 10000)) -> list[dict[str, Any]]:
    results = []
    for users in sizes:
        for due_every in (0, 10):
            result = measure(users, due_every)
            print(json.dumps(result), file=sys.stderr)
            results.append(result)
    return results


def lines(results: list[dict[str, Any]]) -> list[str]:
    out = [
        "## 6. Scheduled sweep: N stored users, storage +25 ms per request, Kakao +60 ms",
        "",
        "Documents seeded straight into fake-gcs-server; each sweep in a fresh process "
        "(SWEEP_WORKERS default), through latency proxies.",
        "",
        "| users | due | wall time | storage requests | Kakao calls | outcomes | peak RSS "
        "| sweep CPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(r["counts"].items()))
        out.append(
            f"| {r['users']:,} | {r['due']:,} | {r['seconds']:.1f} s | {r['storage_requests']:,} "
            f"| {r['kakao_calls']:,} | {counts} | {r['peak_rss_mib']:.0f} MiB "
            f"| {r['cpu_seconds']:.1f} s |"
        )
    out += [
        "",
        "Targets: 10,000 users with 10 % due under 20 s, none due under 5 s, Kakao calls = due.",
        "",
    ]
    return out


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
                        params={"maxResults": 1000, "pageToken": token},
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


if __name__ == "__main__":
    if sys.argv[1:] == ["child"]:
        child()
    elif sys.argv[1:] == ["emulator"]:
        emulator_costs()
    else:
        sizes = tuple(int(n) for n in sys.argv[1:]) or (1000, 10000)
        print("\n".join(lines(run_all(sizes))))
