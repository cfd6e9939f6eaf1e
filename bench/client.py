"""A script's cold `kakao-token access-token`: process start to the token printed, against a
bare `python -c "import requests"` in the same fresh virtual environment.

The wheel is built from this checkout and installed outside it, as `pip install git+...`
would; the token function (a warm functions-framework process with one stored login) answers
on loopback, so the figure is the client's own start-up: Python, requests, our modules, one
HTTP round trip. ``python -m bench.run client`` rewrites only this section of BENCHMARKS.md.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dev.fake_kakao import FakeKakao, FakeKakaoState
from tests.fake_google import id_token_for
from tests.helpers import REDIRECT_URI, FunctionServer, complete_login
from token_logic.config import Settings
from token_logic.network import new_session
from token_logic.storage.files import FileTokenStore
from token_logic.wiring import build_service

ROOT = Path(__file__).resolve().parent.parent
RUNS = 21
TARGET_MS = 150
SECTION = "## 7. Script client: a cold `kakao-token access-token`"


def install_client(base: Path) -> Path:
    """The wheel from this checkout in a fresh venv under ``base``; its bin folder."""
    wheels = base / "wheels"
    build = ["wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels)]
    subprocess.run([sys.executable, "-m", "pip", *build, str(ROOT)], check=True)
    (wheel,) = wheels.glob("*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True)
    python = base / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True)
    return python.parent


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def measure() -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        client = install_client(base)
        store_dir = base / "store"
        store_dir.mkdir()
        kakao = FakeKakao(FakeKakaoState(redirect_uris={REDIRECT_URI})).start()
        env = {
            "KAKAO_REST_API_KEY": kakao.state.client_id,
            "KAKAO_CLIENT_SECRET": kakao.state.client_secret,
            "KAKAO_REDIRECT_URI": REDIRECT_URI,
            "KAKAO_AUTH_BASE_URL": kakao.url,
            "KAKAO_API_BASE_URL": kakao.url,
            "TOKEN_DIR": str(store_dir),
        }
        settings = Settings.from_env(env)
        complete_login(
            build_service(settings, session=new_session(), store=FileTokenStore(store_dir))
        )
        try:
            with FunctionServer("kakao_token", env, ROOT) as server:
                script_env = {
                    "PATH": f"{client}:/usr/bin:/bin",
                    "KAKAO_TOKEN_URL": server.url,
                    "KAKAO_TOKEN_ID_TOKEN": id_token_for(server.url, "me@example.com"),
                }
                bare_cmd = [str(client / "python"), "-c", "import requests"]
                token_cmd = [str(client / "kakao-token"), "access-token"]
                for _ in range(3):  # warm the function and the page cache
                    timed(token_cmd, script_env, base)
                    timed(bare_cmd, script_env, base)
                bare, token = [], []
                for _ in range(RUNS):  # interleaved, so drift weighs on both alike
                    bare.append(timed(bare_cmd, script_env, base))
                    token.append(timed(token_cmd, script_env, base))
        finally:
            kakao.stop()
    return {"bare": bare, "token": token}


def lines(figures: dict[str, list[float]]) -> list[str]:
    bare = statistics.median(figures["bare"])
    token = statistics.median(figures["token"])
    difference = (token - bare) * 1000
    met = "met" if difference <= TARGET_MS else "MISSED"
    return [
        f"{SECTION} (median of {RUNS}, interleaved)",
        "",
        "Process start to the token printed, in a fresh venv holding only the installed client "
        "(requests and its dependencies); the token function runs warm on loopback.",
        "",
        "| command | median | min | max |",
        "|---|---|---|---|",
        *[
            f"| {label} | {statistics.median(v) * 1000:.0f} ms | {min(v) * 1000:.0f} ms | "
            f"{max(v) * 1000:.0f} ms |"
            for label, v in (
                ('bare `python -c "import requests"`', figures["bare"]),
                ("`kakao-token access-token`", figures["token"]),
            )
        ],
        "",
        f"Difference: **{difference:.0f} ms** (target: within {TARGET_MS} ms: {met}).",
        "",
    ]
