"""The scheduled sweep at scale: N stored users, storage 25 ms away, Kakao 60 ms away.

The documents are seeded straight into fake-gcs-server in parallel (as earlier logins would have
written them, with their facts); the due users' refresh tokens are put into the fake Kakao's
state, each user distinct so Kakao's per-user limits hold. Each sweep runs in a fresh process
(``python -m bench.sweep child``) so its peak RSS is its own; the proxies count requests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
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
    emulator = GcsEmulator().start()
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


if __name__ == "__main__":
    if sys.argv[1:] == ["child"]:
        child()
    else:
        sizes = tuple(int(n) for n in sys.argv[1:]) or (1000, 10000)
        print("\n".join(lines(run_all(sizes))))
