"""The command line's commands through the token endpoint (``--url`` or KAKAO_TOKEN_URL).

Only what an access token allows: ``access-token``, ``send-memo``, ``send-message``
(message_command.py) and ``status``. They are the
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
from typing import Any

from ..clock import DEFAULT_ACCESS_TOKEN_LEEWAY, format_time
from ..errors import ConfigError, KakaoTokenError, LoginRequired, NoTokenStored
from ..language import Words, languages_from
from ..logins import SENDER
from .answers import RemoteToken
from .kakao_refusals import reword_memo_failure
from .message_command import add_send_message, message_usage_ok, run_send_message
from .owner_message import kakao_for, memo_link_for
from .remote import URL_VARIABLE, RemoteSettings, remote_token, url_not_set

REMOTE_COMMANDS = ("access-token", "send-memo", "send-message", "status")
MAX_MEMO_LENGTH = 200  # Kakao's limit for a text template


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """``kakao-token``: the token endpoint's commands, and nothing that needs the store."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="kakao-token",
        description="kakao-token-function 배포의 토큰 엔드포인트(KAKAO_TOKEN_URL)에서 받는 "
        "유효한 카카오 액세스 토큰: 카카오 키 없이 쓰는 스크립트용. / A valid Kakao access token "
        f"from your kakao-token-function deployment's token endpoint ({URL_VARIABLE}), for "
        "scripts that hold no Kakao key. 메시지 언어 / messages: KAKAO_TOKEN_LANG=ko|en "
        "(기본: 로케일 / default: the locale).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_url_and_user(parser)
    add_token_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    if not memo_fits(args, environ):
        return 2
    try:
        settings = RemoteSettings.from_env(environ, url=args.url)
        if settings is None:
            raise url_not_set(languages_from(environ))
        return run_remote(settings, args)
    except KakaoTokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def add_url_and_user(parser: argparse.ArgumentParser) -> None:
    """The options every token command takes."""
    parser.add_argument(
        "--user",
        type=int,
        help="카카오 사용자 id(여러 명을 저장할 때) / Kakao user id (when several are stored)",
    )
    parser.add_argument(
        "--url",
        help=f"물어볼 토큰 엔드포인트(kakao_token), 기본: {URL_VARIABLE} / the token endpoint "
        f"(kakao_token) to ask; default: {URL_VARIABLE}",
    )


def add_token_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``status``, ``access-token``, ``send-memo`` and ``send-message`` with their flags, for
    both commands."""
    status = commands.add_parser(
        "status",
        help="누가 로그인했고 토큰이 언제 만료되는지 / who is logged in and when each token "
        "expires",
    )
    status.add_argument(
        "--json", action="store_true", help="기계가 읽는 출력 / machine-readable output"
    )
    token = commands.add_parser(
        "access-token", help="유효한 액세스 토큰 출력 / print a valid access token"
    )
    token.add_argument(
        "--leeway",
        type=int,
        default=DEFAULT_ACCESS_TOKEN_LEEWAY,
        help="이 초 안에 만료되면 갱신(기본 300) / refresh if it expires within this many "
        "seconds (default 300)",
    )
    memo = commands.add_parser(
        "send-memo", help="나에게 카카오톡 메시지 보내기 / send yourself a KakaoTalk message"
    )
    memo.add_argument(
        "text",
        help=f"메시지({MAX_MEMO_LENGTH}자 이하) / the message (at most {MAX_MEMO_LENGTH} "
        "characters)",
    )
    add_send_message(commands)


def memo_fits(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> bool:
    """False (after saying why, in the reader's language: ``environ``, default os.environ)
    when a memo's text is empty or longer than Kakao takes."""
    if args.command == "send-message":
        return message_usage_ok(args)
    if args.command == "send-memo" and not 0 < len(args.text) <= MAX_MEMO_LENGTH:
        too_long = Words(
            f"텍스트는 1~{MAX_MEMO_LENGTH}자여야 합니다",
            f"the text must be 1 to {MAX_MEMO_LENGTH} characters",
        )
        languages = languages_from(os.environ if environ is None else environ)
        print(f"error: {too_long.said(languages)}", file=sys.stderr)
        return False
    return True


def run_remote(settings: RemoteSettings, args: argparse.Namespace) -> int:
    """Run one command against the endpoint; return the exit code."""
    if args.command not in REMOTE_COMMANDS:
        remote_only = ", ".join(REMOTE_COMMANDS)
        needs_store = Words(
            f"--url이나 KAKAO_TOKEN_URL이 있으면 {remote_only}만 됩니다. `{args.command}`에는 "
            "토큰 저장소가 필요합니다(KAKAO_TOKEN_URL을 지우세요)",
            f"with --url or KAKAO_TOKEN_URL only {remote_only} work; "
            f"`{args.command}` needs the store (unset KAKAO_TOKEN_URL)",
        )
        print(f"error: {needs_store.said(settings.languages)}", file=sys.stderr)
        return 2
    try:
        if args.command == "send-message":
            return run_send_message(settings, args)
        leeway = getattr(args, "leeway", DEFAULT_ACCESS_TOKEN_LEEWAY)
        token = remote_token(settings, args.user, leeway)
        if args.command == "access-token":
            print(token.access_token)
        elif args.command == "status":
            _status(settings, token, as_json=args.json)
        else:
            _send_memo(settings, token, args.text)
            print(Words("보냈습니다", "sent").said(settings.languages))
        return 0
    except ConfigError:
        raise  # the caller prints it like any configuration error
    except KakaoTokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _status(settings: RemoteSettings, token: RemoteToken, *, as_json: bool) -> None:
    """The owner's login, and the sender's when the deployment has one logged in."""
    sender = _sender_or_none(settings, token)
    facts: dict[str, Any] = {
        "endpoint": settings.url,
        "user_id": token.user_id,
        "expires_at": token.expires_at,
        "scope": token.scope,
    }
    if sender is not None:
        facts["sender"] = {
            "user_id": sender.user_id,
            "expires_at": sender.expires_at,
            "scope": sender.scope,
        }
    if as_json:
        print(json.dumps(facts, ensure_ascii=False, indent=2))
        return
    until, scopes = format_time(token.expires_at), token.scope or "-"
    said = Words(
        f"{settings.url}: 사용자 {token.user_id}, 정상\n"
        f"  액세스 토큰 만료  {until}\n"
        f"  동의 항목: {scopes}",
        f"{settings.url}: user {token.user_id}, ok\n"
        f"  access token until  {until}\n"
        f"  scopes: {scopes}",
    )
    print(said.said(settings.languages))
    if sender is not None:
        until, scopes = format_time(sender.expires_at), sender.scope or "-"
        said = Words(
            f"보내는 계정: 사용자 {sender.user_id}, 정상 (받는 사람 {sender.receiver_user_id})\n"
            f"  액세스 토큰 만료  {until}\n"
            f"  동의 항목: {scopes}",
            f"sender: user {sender.user_id}, ok (sends to {sender.receiver_user_id})\n"
            f"  access token until  {until}\n"
            f"  scopes: {scopes}",
        )
        print(said.said(settings.languages))


def _sender_or_none(settings: RemoteSettings, owner: RemoteToken) -> RemoteToken | None:
    """The sender's login as the endpoint serves it; None when the deployment has none. A
    sender whose login ended is said, not raised: the owner's login is fine."""
    if owner.user_id is None:
        return None
    try:
        return remote_token(settings, login=SENDER)
    except NoTokenStored:
        return None
    except LoginRequired:
        dead = Words(
            "보내는 계정: 다시 로그인해야 합니다(보내는 계정으로 콜백 URL을 여세요)",
            "sender: login required (open the callback URL as the sender's account)",
        )
        print(dead.said(settings.languages), file=sys.stderr)
        return None
    except KakaoTokenError as exc:  # the owner's login is fine: say it, don't fail the status
        failed = Words(
            f"보내는 계정: 지금은 확인할 수 없습니다({type(exc).__name__})",
            f"sender: cannot be checked now ({type(exc).__name__})",
        )
        print(failed.said(settings.languages), file=sys.stderr)
        return None


def _send_memo(settings: RemoteSettings, token: RemoteToken, text: str) -> None:
    """A memo with the link KAKAO_MEMO_LINK names here, else the deployment's."""
    try:
        kakao_for(settings).send_memo(
            token.access_token, text, memo_link_for(settings, None, token)
        )
    except KakaoTokenError as exc:
        reword_memo_failure(exc, settings.languages)
        raise
