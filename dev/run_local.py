"""``make run``: the whole product on this machine.

kakao_callback on http://localhost:8080 (PORT), kakao_refresh on :8081 (REFRESH_PORT) and the
token endpoint kakao_token on :8082 (TOKEN_PORT). Without KAKAO_REST_API_KEY it starts the
bundled fake Kakao on :9090 (FAKE_KAKAO_PORT) and runs in demo mode, so a newcomer sees the
whole login, the command line and a memo arrive before creating a Kakao app.

The token endpoint hands out a real Kakao access token with a real app, and a forced refresh
spends Kakao's token calls (too many pause the login: KOE237); anything that can reach
localhost could ask: another local user, a web page too, by DNS rebinding or a cross-site POST.
So, as Cloud Run guards the deployed functions, a stand-in guards all three
(invoker_check.LocalInvokerCheck): the functions listen on Unix sockets in a directory only
this user may enter, and the three ports are the checks in front of them. Each wants a Host
naming this machine; kakao_refresh and kakao_token also want no web page's request and a
bearer made for this run. With a real app that bearer is never printed: it goes to
.run/token-endpoint-<port>.env and, as a header for curl's ``-H @file`` (never in its argv,
which every local user can read), .run/token-endpoint-<port>.header (both mode 0600), which
the printed command lines read; both are removed when make run stops. In demo mode it is
local-demo, shown as it is, so the demo never touches a real store: it keeps its tokens in
.run/demo-<port>, whatever TOKEN_DIR, TOKEN_BUCKET or the emulator the shell names.

Once every server listens it prints what to open and the command lines with their complete
environment, ready to paste in another terminal at the repository root.

The demo has a sender too (KAKAO_SENDER=1, token_logic/logins.py): the fake's consent page
offers the owner and a second account, the two already KakaoTalk friends and members of the
app, and the guide prints the sender's claim link (nothing in the demo is secret) and the
``send-message`` line, whose message shows on the fake's /memos page as from the one to the
other.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dev.fake_kakao import DEFAULT_USER_ID, MEMOS_PATH, FakeKakao, FakeKakaoState
from dev.invoker_check import LocalInvokerCheck
from dev.servers import (
    port_is_free,
    socket_function_command,
    start_child,
    stop_all,
    wait_until_listening,
)

ROOT = Path(__file__).resolve().parent.parent
DEMO_REST_API_KEY = "demo-rest-api-key"
DEMO_CLIENT_SECRET = "demo-client-secret"
# The bearer LocalInvokerCheck wants in demo mode, where the fake's tokens are worth nothing;
# the client sends it as its ID token (it accepts any explicit one for a loopback http URL).
DEMO_ID_TOKEN = "local-demo"
# The demo's two Kakao accounts, as the fake's consent page offers them.
DEMO_OWNER_ID = DEFAULT_USER_ID
DEMO_SENDER_ID = 4127000002
DEMO_ACCOUNTS = {
    DEMO_OWNER_ID: "소유자 (데모) / demo owner",
    DEMO_SENDER_ID: "보내는 계정 (데모) / demo sender",
}
# Deployed, these answer only callers with roles/run.invoker; the callback answers anyone.
PRIVATE_FUNCTIONS = frozenset({"kakao_refresh", "kakao_token"})
# Relative to ROOT, where the printed commands run; one per port, so a test run on other ports
# never overwrites the file of a make run in another terminal.
ENDPOINT_FILE = ".run/token-endpoint-{port}.env"
HEADER_FILE = ".run/token-endpoint-{port}.header"
# The demo's store, by the login port for the same reason. Anyone may use the demo's public
# bearer, and a forced refresh sends the stored refresh token to the fake (KOE322 there, which
# marks the login dead): so the demo never reads a store the environment names.
DEMO_STORE = ".run/demo-{port}"
DEMO_IGNORED = ("TOKEN_BUCKET", "STORAGE_EMULATOR_HOST", "TOKEN_DIR", "TOKEN_OBJECT")
# What the command line reads in store mode, in the order printed (when set).
STORE_VARIABLES = (
    "TOKEN_BUCKET",
    "STORAGE_EMULATOR_HOST",
    "TOKEN_DIR",
    "TOKEN_OBJECT",
    "KAKAO_REST_API_KEY",
    "KAKAO_CLIENT_SECRET",
    "KAKAO_REDIRECT_URI",
    "KAKAO_AUTH_BASE_URL",
    "KAKAO_API_BASE_URL",
    "KAKAO_SCOPE",
    "KAKAO_SENDER",
    "KAKAO_PKCE",
    "ALLOWED_KAKAO_USER_IDS",
    "REFRESH_MARGIN_SECONDS",
    "KAKAO_TIMEOUT_SECONDS",
)
# Printed as a reference to the reader's own shell, never as a value (except the demo's).
SECRET_VARIABLES = frozenset({"KAKAO_CLIENT_SECRET"})
SECRET_NOTE = (
    "  (the client secret is never printed: set KAKAO_CLIENT_SECRET in that terminal first /"
    " 클라이언트 시크릿은 출력하지 않습니다: 그 터미널에서 먼저 설정하세요)"
)


@dataclass(frozen=True)
class Ports:
    """Where each server listens; the defaults are what the README and the Kakao console say."""

    callback: int
    refresh: int
    token: int
    fake_kakao: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Ports:
        callback = _port(environ, "PORT", 8080)
        return cls(
            callback=callback,
            refresh=_port(environ, "REFRESH_PORT", callback + 1),
            token=_port(environ, "TOKEN_PORT", callback + 2),
            fake_kakao=_port(environ, "FAKE_KAKAO_PORT", 9090),
        )

    def named(self, demo: bool) -> list[tuple[str, int]]:
        """(the variable that moves it, port) for each port this run needs."""
        named = [
            ("PORT", self.callback),
            ("REFRESH_PORT", self.refresh),
            ("TOKEN_PORT", self.token),
        ]
        return [*named, ("FAKE_KAKAO_PORT", self.fake_kakao)] if demo else named


def main() -> int:
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        ports = Ports.from_env(os.environ)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env.setdefault("KAKAO_REDIRECT_URI", f"http://localhost:{ports.callback}/")
    # The demo key too: a terminal where the printed demo environment was pasted is a demo.
    demo = env.get("KAKAO_REST_API_KEY", DEMO_REST_API_KEY) in ("", DEMO_REST_API_KEY)
    busy = [f"{name}={port}" for name, port in ports.named(demo) if not port_is_free(port)]
    if busy:
        print(
            f"error: in use: {', '.join(busy)}; set the variable to another port / 사용 중인 "
            "포트입니다: 그 변수로 다른 포트를 정하세요",
            file=sys.stderr,
        )
        return 1
    fake = _fake_kakao(env, ports.fake_kakao) if demo else None
    ignored: list[str] = []
    if demo:
        ignored = [name for name in DEMO_IGNORED if env.pop(name, "")]
        env["TOKEN_DIR"] = DEMO_STORE.format(port=ports.callback)  # relative to ROOT, the cwd
    if not env.get("TOKEN_BUCKET"):
        env["TOKEN_DIR"] = env.get("TOKEN_DIR") or "."
    bearer = DEMO_ID_TOKEN if demo else secrets.token_urlsafe(32)
    functions = {
        "kakao_callback": ports.callback,
        "kakao_refresh": ports.refresh,
        "kakao_token": ports.token,
    }
    # mkdtemp's mode 0700: only this user reaches the functions, so no port is left open that
    # serves the token or a refresh without the checks. Not under .run/: a socket's whole path
    # must fit in ~100 bytes, and a checkout may lie deep.
    sockets = Path(tempfile.mkdtemp(prefix="kakao-run-"))
    upstreams = {target: sockets / f"{target}.sock" for target in functions}
    callback_host = urlsplit(env["KAKAO_REDIRECT_URI"]).netloc  # a tunnel's, say
    checks = [
        LocalInvokerCheck(target, port, upstreams[target], bearer)
        if target in PRIVATE_FUNCTIONS
        else LocalInvokerCheck(target, port, upstreams[target], None, hosts=[callback_host])
        for target, port in functions.items()
    ]
    # Every child is forked before the first thread of ours starts (see start_child).
    servers = [_serve(target, path, env) for target, path in upstreams.items()]
    for check in checks:
        check.start()
    if fake is not None:
        fake.start()
    endpoint = endpoint_environment(env, ports.token, bearer)
    env_file = None if demo else ENDPOINT_FILE.format(port=ports.token)
    header_file = HEADER_FILE.format(port=ports.token)
    code = 0
    try:
        if wait_until_listening(servers, list(upstreams.values()), stopped):
            if env_file:
                write_private(ROOT / env_file, "".join(f"{a}\n" for a in assignments(endpoint)))
                write_private(ROOT / header_file, f"Authorization: Bearer {bearer}\n")
            login = login_link(env, demo)
            fake_url = fake.url if fake else None
            sender = sender_link(env) if demo else None
            text = guide(env, ports, fake_url, endpoint, env_file, login, ignored, sender)
            print(text, flush=True)
        elif not stopped.is_set():
            print(
                "error: a function server did not start (its output is above) / 함수 서버가 "
                "시작하지 못했습니다(출력은 위에 있습니다)",
                file=sys.stderr,
            )
            code = 1
        while code == 0 and not stopped.wait(0.5):
            if any(server.poll() is not None for server in servers):
                print(
                    "error: a function server stopped (its output is above) / 함수 서버가 "
                    "멈췄습니다(출력은 위에 있습니다)",
                    file=sys.stderr,
                )
                code = 1
    except KeyboardInterrupt:
        pass
    finally:
        # The checks first, and the directory last, by us alone: while a check may relay, no
        # one else may create that directory again and its sockets.
        for check in checks:
            check.stop()
        stop_all(servers)
        if fake is not None:
            fake.stop()
        if env_file:  # its bearer died with this run
            (ROOT / env_file).unlink(missing_ok=True)
            (ROOT / header_file).unlink(missing_ok=True)
        shutil.rmtree(sockets, ignore_errors=True)
    return code


def login_link(env: Mapping[str, str], demo: bool) -> str:
    """Where the first login goes: with a real app and nobody stored yet, a claim link (its
    login owns the deployment, as deploy.sh's does); else the callback URL itself."""
    redirect_uri = env["KAKAO_REDIRECT_URI"]
    if demo:
        return redirect_uri  # the demo needs no claim (and its pages say so)
    from token_logic.config import Settings
    from token_logic.errors import KakaoTokenError
    from token_logic.wiring import build_service

    try:
        settings = Settings.from_env(env)
        if not settings.single_owner:
            return redirect_uri
        service = build_service(settings)
        if service.store.read(settings.token_object) is not None:
            return redirect_uri  # owned already: the owner logs in at the callback URL
        return service.issue_claim().link(redirect_uri)
    except KakaoTokenError as exc:
        print(
            f"warning: no claim link ({exc}); the first login will be refused / 소유권 링크를 "
            "만들지 못해 첫 로그인은 거절됩니다",
            file=sys.stderr,
        )
        return redirect_uri


def sender_link(env: Mapping[str, str]) -> str | None:
    """The demo's sender claim link (only the newest works; printed, as nothing in the demo is
    secret), made in the demo's store as the functions see it; None when it cannot be."""
    from token_logic.config import Settings
    from token_logic.errors import KakaoTokenError
    from token_logic.logins import SENDER
    from token_logic.wiring import build_service

    # TOKEN_DIR is relative to ROOT, the functions' working directory, maybe not ours.
    here = {**env, "TOKEN_DIR": str(ROOT / env["TOKEN_DIR"])}
    try:
        service = build_service(Settings.from_env(here))
        return service.issue_claim(SENDER).link(env["KAKAO_REDIRECT_URI"])
    except KakaoTokenError as exc:
        print(
            f"warning: no sender link ({exc}) / 보내는 계정 링크를 만들지 못했습니다",
            file=sys.stderr,
        )
        return None


def endpoint_environment(env: Mapping[str, str], port: int, bearer: str) -> dict[str, str]:
    """What a client of the local token endpoint needs, as a script elsewhere would set it."""
    endpoint = {"KAKAO_TOKEN_URL": f"http://localhost:{port}/", "KAKAO_TOKEN_ID_TOKEN": bearer}
    if env.get("KAKAO_API_BASE_URL"):  # the demo's fake: send-memo must not go to real Kakao
        endpoint["KAKAO_API_BASE_URL"] = env["KAKAO_API_BASE_URL"]
    return endpoint


def guide(
    env: Mapping[str, str],
    ports: Ports,
    fake_url: str | None,
    endpoint: Mapping[str, str],
    env_file: str | None,
    login: str,
    ignored: Sequence[str] = (),
    sender: str | None = None,
) -> str:
    """What to open and what to paste, every command with the environment it needs; with
    ``env_file`` the endpoint's environment is read from that file, never shown; ``ignored``:
    the store settings of the shell the demo left out; ``sender``: the demo's sender link."""
    python = _shown_path(Path(sys.executable))
    cli = f"{python} -m token_logic"
    token_url = endpoint["KAKAO_TOKEN_URL"]
    stored = f"bucket {env['TOKEN_BUCKET']}" if env.get("TOKEN_BUCKET") else env["TOKEN_DIR"]
    if fake_url:
        where = "DEMO MODE / 데모 모드: KAKAO_REST_API_KEY is not set, so the bundled fake Kakao "
        where += f"runs on {fake_url} and nothing goes to the real Kakao."
        where_ko = f"KAKAO_REST_API_KEY가 없어 내장 가짜 카카오가 {fake_url}에서 실행되며, 진짜 "
        where_ko += "카카오로는 아무것도 보내지 않습니다."
        memos = f"open {fake_url}{MEMOS_PATH}"
    else:
        where = f"Your Kakao app / 내 카카오 앱: register {env['KAKAO_REDIRECT_URI']} as a "
        where += "Redirect URI in the Kakao console."
        where_ko = f"카카오 디벨로퍼스 콘솔의 Redirect URI에 {env['KAKAO_REDIRECT_URI']} 값을 "
        where_ko += "등록하세요."
        memos = "in KakaoTalk, your chat with yourself / 카카오톡 '나와의 채팅'"
    refresh_url = f"http://localhost:{ports.refresh}/"
    if env_file:
        header_file = HEADER_FILE.format(port=ports.token)
        curl = f"curl -s -H @{header_file} {token_url}"
        refresh = f"curl -s -X POST -H @{header_file} {refresh_url}"
        bearer = f"a bearer made for this run, kept in {env_file} and {header_file} (mode 0600, "
        bearer += "never printed)"
        bearer_ko = f"이번 실행용 bearer({env_file}, {header_file}; 권한 0600, 출력하지 않음)"
        prefix, sourcing = "", [f"    set -a; . {env_file}; set +a"]
    else:
        given = endpoint["KAKAO_TOKEN_ID_TOKEN"]
        header = shlex.quote(f"Authorization: Bearer {given}")
        curl = f"curl -s -H {header} {token_url}"
        refresh = f"curl -s -X POST -H {header} {refresh_url}"
        bearer = f"the bearer {given} (the fake's tokens are worth nothing)"
        bearer_ko = f"bearer {given}(가짜 카카오의 토큰이라 쓸모없음)"
        prefix, sourcing = " ".join(assignments(endpoint)) + " ", []
    lines = [
        f"{where} Tokens go to {stored}.",
        f"{where_ko} 토큰은 {stored}에 저장합니다.",
        *(
            [f"Ignored in demo mode, from your shell / 데모라 무시한 설정: {', '.join(ignored)}"]
            if ignored
            else []
        ),
        "",
        f"  Log in / 로그인:          open {login}",
        *(
            [
                "      A claim link: the Kakao account that logs in through it owns this "
                "deployment (once, within a day). / 소유권 링크: 이 링크로 로그인한 계정이 "
                "소유자가 됩니다(한 번, 하루 안에)."
            ]
            if "#" in login
            else []
        ),
        *(sender_lines(sender) if sender else []),
        f"  Refresh / 갱신:           {refresh}",
        f"  Token / 토큰:             {curl}",
        "      Both behind a stand-in for Cloud Run's check: only the Host localhost, 127.0.0.1 or "
        f"[::1], no request from a web page, and {bearer}. On Google Cloud, Cloud Run checks the "
        "caller's Google ID token (roles/run.invoker).",
        "      둘 다 Cloud Run의 확인을 흉내 내어 보호합니다: Host는 localhost, 127.0.0.1, [::1]만 "
        f"받고, 웹 페이지가 보낸 요청은 거절하며, {bearer_ko}도 필요합니다. Google Cloud에서는 "
        "Cloud Run이 호출자의 Google ID 토큰을 확인합니다.",
        f"  Memos sent / 보낸 메모:   {memos}",
        "  Stop / 종료:              Ctrl+C",
        "",
        *(message_lines(f"{prefix}{cli}", memos) if sender else []),
        "  Command line from the store, in another terminal at the repository root /",
        "  저장소에서 바로 (다른 터미널, 저장소 최상위 폴더에서):",
        *([] if fake_url or not env.get("KAKAO_CLIENT_SECRET") else [SECRET_NOTE]),
        *[f"    export {assignment}" for assignment in store_environment(env, demo=bool(fake_url))],
        f"    {cli} status",
        f"    {cli} access-token",
        f"    {cli} refresh --force",
        f'    {cli} send-memo "안녕하세요, 저장소에서 / hello from the store"',
        f"    {cli} login-url",
        "",
        "  Command line through the token endpoint, as a script elsewhere would /",
        "  토큰 엔드포인트를 거쳐 (다른 곳의 스크립트처럼):",
        *sourcing,
        f"    {prefix}{cli} access-token",
        f'    {prefix}{cli} send-memo "안녕하세요, 엔드포인트에서 / hello via the endpoint"',
        "",
    ]
    return "\n".join(lines)


def sender_lines(link: str) -> list[str]:
    """The demo's sender login, under the owner's."""
    sender = DEMO_SENDER_ID
    return [
        f"  Sender / 보내는 계정:     open {link}",
        f"      Then, as the second account, open it and approve as {sender} (the demo sender) "
        f"on the fake's consent page. / 그다음 두 번째 계정으로 링크를 열고, 가짜 카카오 동의 "
        f"화면에서 {sender}(데모 보내는 계정)로 동의하세요.",
    ]


def message_lines(command: str, memos: str) -> list[str]:
    """The demo's message from the sender to the owner, and where it shows."""
    sender, owner = DEMO_SENDER_ID, DEMO_OWNER_ID
    return [
        "  A message that rings, from the sender to the owner, after both logins /",
        "  알림이 울리는 메시지, 두 로그인 다음에 보내는 계정이 소유자에게:",
        f'    {command} send-message "안녕하세요, 보내는 계정에서 / hello from the sender"',
        f"  Delivered / 도착:         {memos} (from {sender} to {owner}; real Kakao: the "
        f"owner's KakaoTalk rings / {sender} → {owner}, 진짜 카카오라면 소유자의 카카오톡이 "
        "울립니다)",
        "",
    ]


def assignments(environment: Mapping[str, str]) -> list[str]:
    """``NAME=value`` for each variable, quoted for a POSIX shell."""
    return [f"{name}={shlex.quote(value)}" for name, value in environment.items()]


def write_private(path: Path, text: str) -> None:
    """``text`` in ``path``, mode 0600 from its first byte (mkstemp), put in place whole."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def store_environment(env: Mapping[str, str], *, demo: bool) -> list[str]:
    """``NAME=value`` for each store-mode variable that is set; a real secret as a reference."""
    assignments = []
    for name in STORE_VARIABLES:
        value = env.get(name, "")
        if not value:
            continue
        if name in SECRET_VARIABLES and not demo:
            assignments.append(f'{name}="${name}"')
        else:
            assignments.append(f"{name}={shlex.quote(value)}")
    return assignments


def _fake_kakao(env: dict[str, str], port: int) -> FakeKakao:
    """The fake, bound to its port but not yet serving (no thread before the children fork)."""
    state = FakeKakaoState(
        client_id=DEMO_REST_API_KEY,
        client_secret=DEMO_CLIENT_SECRET,
        redirect_uris={env["KAKAO_REDIRECT_URI"]},
        user_id=DEMO_OWNER_ID,
        accounts=dict(DEMO_ACCOUNTS),
    )
    # As a real sender's set-up leaves them (KakaoTalk friends, members of the app, linked,
    # consented): the demo's message is delivered once both have logged in.
    state.ready_to_message(DEMO_SENDER_ID, DEMO_OWNER_ID)
    fake = FakeKakao(state, port=port)
    env.update(
        {
            "KAKAO_REST_API_KEY": state.client_id,
            "KAKAO_CLIENT_SECRET": state.client_secret,
            "KAKAO_AUTH_BASE_URL": fake.url,
            "KAKAO_API_BASE_URL": fake.url,
            "KAKAO_SCOPE": env.get("KAKAO_SCOPE") or "talk_message",
            "KAKAO_SENDER": "1",  # both logins then ask for friends and talk_message
            "KAKAO_DEMO": "1",
        }
    )
    return fake


def _serve(target: str, socket_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return start_child(socket_function_command(target, ROOT / "main.py", socket_path), env, ROOT)


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(
            f"{name} must be a port number (1-65535), not {raw!r} / {name} 값은 포트 "
            "번호(1-65535)여야 합니다"
        )
    return int(raw)


def _shown_path(path: Path) -> str:
    """Relative to the repository root when inside it: the printed commands run from there."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
