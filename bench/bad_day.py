"""Kakao calls in one simulated hour for one login on a bad day: 10 callers ask every second
(and the scheduled sweep runs every 30 minutes) while Kakao answers KOE237 to everything, or
KOE003 to everything, or leaves `expires_in` out of every refresh answer.

Time is simulated (a fake clock drives the service, its Kakao retries and the fake Kakao), so
an hour takes seconds; every Kakao call is real HTTP to the fake. The target is Kakao's
per-user limits (KAKAO_API.md): at most 30 refreshes an hour and 20 tokens in any 10 minutes;
here every call to the token endpoint counts, failed ones included, which is stricter.
``python -m bench.run bad-day`` rewrites only this section of BENCHMARKS.md.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dev.fake_kakao import FakeKakao, FakeKakaoState
from tests.conftest import settings_env
from tests.helpers import REDIRECT_URI, FakeClock, complete_login, rewrite_stored
from token_logic.config import Settings
from token_logic.errors import KakaoTokenError
from token_logic.network import new_session
from token_logic.storage.files import FileTokenStore
from token_logic.wiring import build_service

SECTION = "## 8. A bad day at Kakao: calls per hour for one login"
HOUR = 3600
CALLERS = 10
SWEEP_EVERY = 1800
HOUR_LIMIT = 30
TEN_MINUTE_LIMIT = 20


def without_expires_in(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "expires_in"}


def simulate(storm: str, min_valid: int) -> dict[str, Any]:
    """One hour of ``storm`` ("KOE237", "KOE003" or "no expires_in"); Kakao calls made."""
    clock = FakeClock()
    fake = FakeKakao(FakeKakaoState(redirect_uris={REDIRECT_URI}, clock=clock.time)).start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            store = FileTokenStore(Path(folder))
            settings = Settings.from_env(settings_env(fake, TOKEN_DIR=folder))
            service = build_service(settings, session=new_session(), store=store, clock=clock)
            complete_login(service)
            now = clock.now()  # the token is due right away: every caller needs a refresh
            rewrite_stored(
                store, lambda d: d.with_fields(expires_at=now + 60, updated_at=now - 9000)
            )
            if storm == "no expires_in":
                fake.state.edit_refresh_answer = without_expires_in
            else:
                fake.state.inject("/oauth/token", *[storm] * 100_000)
            start_calls = fake.state.calls["/oauth/token"]
            call_times: list[int] = []
            served = failed = 0
            for second in range(HOUR):
                asks: list[Callable[[], object]] = [
                    lambda: service.access_token(leeway_seconds=min_valid)
                ] * CALLERS
                if second % SWEEP_EVERY == 0:
                    asks.append(service.sweep)
                for index, ask in enumerate(asks):
                    before = fake.state.calls["/oauth/token"]
                    try:
                        ask()
                        served += index < CALLERS  # the sweep is not a caller
                    except KakaoTokenError:
                        failed += index < CALLERS
                    call_times += [second] * (fake.state.calls["/oauth/token"] - before)
                clock.advance(1)
            calls = fake.state.calls["/oauth/token"] - start_calls
    finally:
        fake.stop()
    windows = [sum(1 for t in call_times if s <= t < s + 600) for s in range(HOUR)]
    return {
        "storm": storm,
        "min_valid": min_valid,
        "calls": calls,
        "worst_10_min": max(windows, default=0),
        "served": served,
        "failed": failed,
    }


def measure() -> list[dict[str, Any]]:
    return [
        simulate("KOE237", 300),
        simulate("KOE003", 300),
        simulate("no expires_in", 300),
        simulate("no expires_in", 3600),
    ]


def lines(results: list[dict[str, Any]]) -> list[str]:
    rows = []
    for r in results:
        met = r["calls"] <= HOUR_LIMIT and r["worst_10_min"] <= TEN_MINUTE_LIMIT
        rows.append(
            f"| {r['storm']} | {r['min_valid']} s | **{r['calls']}** | {r['worst_10_min']} | "
            f"{r['served']:,} / {r['failed']:,} | {'met' if met else 'MISSED'} |"
        )
    return [
        SECTION,
        "",
        f"{CALLERS} callers every second for one simulated hour, plus the scheduled sweep every "
        f"{SWEEP_EVERY // 60} minutes; the stored access token is due at the start. Every "
        "request to Kakao's token endpoint is counted, failed ones included.",
        "",
        "| Kakao answers | callers' min_valid | Kakao calls in the hour | worst 10 minutes | "
        "asks served / refused | within 30 an hour and 20 in 10 min |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Before the refresh pause (service/backoff.py) a KOE237 storm cost a Kakao call per ask "
        "and a KOE003 storm three; now each failure pauses that login for every instance (KOE237: "
        "10 min doubling to 1 h; KOE003: 10 s tripling to 15 min), and a token refreshed in "
        "the last 150 s is served as it is, which bounds a missing `expires_in` (1 h assumed) "
        "to 24 refreshes an hour.",
        "",
    ]
