"""``make run``: the function on http://localhost:8080 (and the refresh target on :8081).

Without KAKAO_REST_API_KEY it starts the bundled fake Kakao and runs in demo mode, so a
newcomer sees the whole login work before creating a Kakao app.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from dev.fake_kakao import FakeKakao, FakeKakaoState
from dev.servers import function_command

ROOT = Path(__file__).resolve().parent.parent
CALLBACK_PORT = int(os.environ.get("PORT", "8080"))
REFRESH_PORT = CALLBACK_PORT + 1
FAKE_KAKAO_PORT = 9090


def main() -> int:
    env = dict(os.environ)
    env.setdefault("KAKAO_REDIRECT_URI", f"http://localhost:{CALLBACK_PORT}/")
    fake = None
    if not env.get("KAKAO_REST_API_KEY"):
        state = FakeKakaoState(
            client_id="demo-rest-api-key",
            client_secret="demo-client-secret",
            redirect_uris={env["KAKAO_REDIRECT_URI"]},
        )
        fake = FakeKakao(state, port=FAKE_KAKAO_PORT).start()
        env.update(
            {
                "KAKAO_REST_API_KEY": state.client_id,
                "KAKAO_CLIENT_SECRET": state.client_secret,
                "KAKAO_AUTH_BASE_URL": fake.url,
                "KAKAO_API_BASE_URL": fake.url,
                "KAKAO_SCOPE": env.get("KAKAO_SCOPE", "talk_message"),
                "KAKAO_DEMO": "1",
                "TOKEN_DIR": env.get("TOKEN_DIR", str(ROOT / ".run" / "demo")),
            }
        )
        print(
            "DEMO MODE / 데모 모드: KAKAO_REST_API_KEY is not set, so the bundled fake Kakao "
            f"runs on {fake.url}. Tokens go to {env['TOKEN_DIR']}."
        )
    servers = [
        _serve("kakao_callback", CALLBACK_PORT, env),
        _serve("kakao_refresh", REFRESH_PORT, env),
    ]
    print(
        f"\n  Log in / 로그인:   open {env['KAKAO_REDIRECT_URI']}\n"
        f"  Refresh / 갱신:    curl -X POST http://localhost:{REFRESH_PORT}/\n"
        f"  Status / 상태:     TOKEN_DIR={env.get('TOKEN_DIR', '.')} "
        f"KAKAO_REST_API_KEY={env['KAKAO_REST_API_KEY']} .venv/bin/python -m token_logic status\n"
        "  Stop / 종료:       Ctrl+C\n",
        flush=True,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(0.5):
            if any(server.poll() is not None for server in servers):
                break
    except KeyboardInterrupt:
        pass
    for server in servers:
        server.terminate()
        server.wait(timeout=10)
    if fake is not None:
        fake.stop()
    return 0


def _serve(target: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        function_command(target, ROOT / "main.py", port),
        env=env,
        cwd=ROOT,
    )


if __name__ == "__main__":
    sys.exit(main())
