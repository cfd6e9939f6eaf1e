"""The command line's commands through the token endpoint (``--url`` or KAKAO_TOKEN_URL).

Only what an access token allows: ``access-token``, ``send-memo`` and ``status``. They are the
whole of ``kakao-token``, the command ``pip install`` gives scripts (``main`` below), and the
same commands of ``python -m token_logic`` when KAKAO_TOKEN_URL is set. Errors print one line:
the function's own message (what to do, where to log in), Cloud Run's refusal explained, or
the network.

Exit codes: 0 ok, 2 bad usage, 1 any other failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from functools import partial

from ..clock import DEFAULT_ACCESS_TOKEN_LEEWAY, format_time
from ..errors import ConfigError, KakaoTokenError
from ..kakao.api import DEFAULT_AUTH_BASE_URL, KakaoClient
from ..network import new_session
from .answers import RemoteToken
from .remote import EMPTY_URL_MESSAGE, URL_VARIABLE, RemoteSettings, remote_token

REMOTE_COMMANDS = ("access-token", "send-memo", "status")
MAX_MEMO_LENGTH = 200  # Kakao's limit for a text template


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """``kakao-token``: the token endpoint's commands, and nothing that needs the store."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="kakao-token",
        description="A valid Kakao access token from your kakao-token-function deployment's "
        f"token endpoint ({URL_VARIABLE}), for scripts that hold no Kakao key.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_url_and_user(parser)
    add_token_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    if not memo_fits(args):
        return 2
    try:
        settings = RemoteSettings.from_env(environ, url=args.url)
        if settings is None:
            raise ConfigError(EMPTY_URL_MESSAGE.replace("is empty", "is not set"), (URL_VARIABLE,))
        return run_remote(settings, args)
    except KakaoTokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def add_url_and_user(parser: argparse.ArgumentParser) -> None:
    """The options every token command takes."""
    parser.add_argument("--user", type=int, help="Kakao user id (when several are stored)")
    parser.add_argument(
        "--url",
        help=f"the token endpoint (kakao_token) to ask; default: {URL_VARIABLE}",
    )


def add_token_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``status``, ``access-token`` and ``send-memo`` with their flags, for both commands."""
    status = commands.add_parser("status", help="who is logged in and when each token expires")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    token = commands.add_parser("access-token", help="print a valid access token")
    token.add_argument(
        "--leeway",
        type=int,
        default=DEFAULT_ACCESS_TOKEN_LEEWAY,
        help="refresh if it expires within this many seconds (default 300)",
    )
    memo = commands.add_parser("send-memo", help="send yourself a KakaoTalk message")
    memo.add_argument("text", help=f"the message (at most {MAX_MEMO_LENGTH} characters)")


def memo_fits(args: argparse.Namespace) -> bool:
    """False (after saying why) when a memo's text is empty or longer than Kakao takes."""
    if args.command == "send-memo" and not 0 < len(args.text) <= MAX_MEMO_LENGTH:
        print(f"error: the text must be 1 to {MAX_MEMO_LENGTH} characters", file=sys.stderr)
        return False
    return True


def run_remote(settings: RemoteSettings, args: argparse.Namespace) -> int:
    """Run one command against the endpoint; return the exit code."""
    if args.command not in REMOTE_COMMANDS:
        print(
            f"error: with --url or KAKAO_TOKEN_URL only {', '.join(REMOTE_COMMANDS)} work; "
            f"`{args.command}` needs the store (unset KAKAO_TOKEN_URL)",
            file=sys.stderr,
        )
        return 2
    try:
        leeway = getattr(args, "leeway", DEFAULT_ACCESS_TOKEN_LEEWAY)
        token = remote_token(settings, args.user, leeway)
        if args.command == "access-token":
            print(token.access_token)
        elif args.command == "status":
            _status(settings, token, as_json=args.json)
        else:
            _send_memo(settings, token, args.text)
            print("sent")
        return 0
    except ConfigError:
        raise  # the caller prints it like any configuration error
    except KakaoTokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _status(settings: RemoteSettings, token: RemoteToken, *, as_json: bool) -> None:
    facts = {
        "endpoint": settings.url,
        "user_id": token.user_id,
        "expires_at": token.expires_at,
        "scope": token.scope,
    }
    if as_json:
        print(json.dumps(facts, ensure_ascii=False, indent=2))
        return
    print(
        f"{settings.url}: user {token.user_id}, ok\n"
        f"  access token until  {format_time(token.expires_at)}\n"
        f"  scopes: {token.scope or '-'}"
    )


def _send_memo(settings: RemoteSettings, token: RemoteToken, text: str) -> None:
    kakao = KakaoClient(
        partial(new_session, settings.proxies),
        rest_api_key="",
        client_secret="",
        redirect_uri="",
        auth_base_url=DEFAULT_AUTH_BASE_URL,
        api_base_url=settings.api_base_url,
    )
    kakao.send_memo(token.access_token, text, settings.memo_link)
