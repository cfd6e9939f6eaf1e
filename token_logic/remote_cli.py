"""The command line's commands through the token endpoint (``--url`` or KAKAO_TOKEN_URL).

Only what an access token allows: ``access-token``, ``send-memo`` and ``status``. Errors print
the endpoint's own one-line message (what to do, where to log in).
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial

from .config import DEFAULT_AUTH_BASE_URL
from .errors import ConfigError, KakaoTokenError
from .kakao import KakaoClient, new_session
from .pages import format_time
from .remote import RemoteSettings, RemoteToken, remote_token

REMOTE_COMMANDS = ("access-token", "send-memo", "status")
_MEMO_LINK = "https://developers.kakao.com"


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
        leeway = getattr(args, "leeway", 300)
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
    kakao.send_memo(token.access_token, text, _MEMO_LINK)
