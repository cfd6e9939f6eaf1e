"""The command line: ``python -m token_logic COMMAND`` (status, access-token, refresh, login-url,
claim-url, send-memo, logout, doctor).

``claim-url`` and ``doctor`` read the deployment's deploy.env (service/deployment.py: what it
names wins over the environment); the others read the environment alone.

Exit codes: 0 ok, 2 bad usage, 1 any other failure (with a one-line reason on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from .client.cli import add_token_commands, add_url_and_user, memo_fits, run_remote
from .client.remote import RemoteSettings
from .clock import format_time
from .config import USER_ID_PLACEHOLDER
from .errors import ConfigError, KakaoTokenError, NoTokenStored
from .kakao.doctor import run as run_doctor
from .language import Words, languages_from
from .logins import OWNER, SENDER, missing_consents
from .problems import problem_for
from .service.deployment import claim_refusal, find_deployment, store_conflict
from .service.sweep import RefreshOutcome, summarize
from .service.token_service import TokenService
from .wiring import service_from_env


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    make_service: Callable[[Mapping[str, str]], TokenService] = service_from_env,
) -> int:
    """Run one command; return the exit code."""
    args = _parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    args.languages = languages_from(environ)  # the reader's, for what the commands print
    if not memo_fits(args):
        return 2
    try:
        if args.command == "login-url":
            return _login_url(environ)
        if args.command == "doctor":  # Kakao's console settings: no store, no token endpoint
            return _doctor(environ, args)
        if args.command == "claim-url":  # the deployment's store, never the token endpoint
            return _claim_url(environ, args, make_service)
        remote = RemoteSettings.from_env(environ, url=args.url)
        if remote is not None:  # the token endpoint: no Kakao key, secret or bucket here
            return run_remote(remote, args)
        service = make_service(environ)
        return int(args.handler(service, args))
    except ConfigError as exc:
        said = Words(f"설정을 확인하세요: {exc}", str(exc)).said(args.languages)
        print(f"error: {said}", file=sys.stderr)
        return 1
    except KakaoTokenError as exc:
        print(f"error: {problem_for(exc).said(args.languages)}", file=sys.stderr)
        return 1


def _status(service: TokenService, args: argparse.Namespace) -> int:
    views = service.status()
    if args.json:
        print(json.dumps(views, ensure_ascii=False, indent=2))
        return 0
    if not views:
        nothing = Words(
            "저장된 토큰이 없습니다: 콜백 URL을 열어 로그인하세요",
            "no token stored yet: open the callback URL to log in",
        )
        print(nothing.said(args.languages))
        return 1
    for view in views:
        state = f"LOGIN REQUIRED ({view['login_error']})" if view["login_error"] else "ok"
        login = " (sender / 보내는 계정)" if view.get("login") == SENDER else ""
        print(
            f"{view['document']}{login}: user {view['user_id']}, {state}\n"
            f"  access token until  {format_time(view['expires_at'])}"
            f" ({view['expires_in_seconds'] / 3600:.1f} h)\n"
            f"  refresh token until {format_time(view['refresh_token_expires_at'])}"
            f" ({view['refresh_token_days_left']} days left)\n"
            f"  scopes: {view['scope'] or '-'}"
        )
        missing = ", ".join(missing_consents(service.settings.scope, view["scope"]))
        if missing and not view["login_error"]:
            where = service.settings.redirect_uri or "KAKAO_REDIRECT_URI"
            again = Words(
                f"  빠진 동의 {missing}: 콜백 URL({where})에서 다시 로그인하면 카카오가 추가 "
                "동의를 받습니다",
                f"  missing consent {missing}: log in again at the callback URL ({where}); "
                "Kakao asks for the added items",
            )
            print(again.said(args.languages))
    return 0


def _access_token(service: TokenService, args: argparse.Namespace) -> int:
    print(service.access_token(args.user, args.leeway))
    return 0


def _refresh(service: TokenService, args: argparse.Namespace) -> int:
    if args.user is None:
        outcomes = service.sweep(force=args.force)
        if not outcomes:
            raise NoTokenStored("no token stored yet")
    else:
        result = service.refresh_user(args.user, force=args.force)
        outcomes = [RefreshOutcome(result.name, result, None)]
    summary = [summarize(outcome, service.now()) for outcome in outcomes]
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    failed = [outcome for outcome in outcomes if outcome.result is None]
    for outcome in failed:
        problem = problem_for(outcome.error or KakaoTokenError())
        print(f"error: {outcome.name}: {problem.said(args.languages)}", file=sys.stderr)
    return 1 if failed else 0


def _send_memo(service: TokenService, args: argparse.Namespace) -> int:
    service.send_memo(args.text, args.user)
    print(Words("보냈습니다", "sent").said(args.languages))
    return 0


def _send_message(service: TokenService, args: argparse.Namespace) -> int:
    from functools import partial

    from .client.message_command import send_and_print
    from .service.owner_send import message_owner

    return send_and_print(partial(message_owner, service), args, args.languages)


def _logout(service: TokenService, args: argparse.Namespace) -> int:
    if args.sender:
        document = service.logout(login=SENDER)
        done = Words(
            f"보내는 계정(사용자 {document.user_id})을 로그아웃하고 저장된 토큰을 지웠습니다. "
            "콜백 URL에서 다시 로그인하거나, `python -m token_logic claim-url --sender`로 새 "
            "보내는 계정을 들이세요",
            f"logged the sender (user {document.user_id}) out and removed its stored tokens; "
            "it logs in again at the callback URL, or a new sender through "
            "`python -m token_logic claim-url --sender`",
        )
        print(done.said(args.languages))
        return 0
    document = service.logout(args.user)
    known = document.user_id is not None
    out = Words(
        f"{f'사용자 {document.user_id}' if known else '저장된 로그인'}을 로그아웃하고 저장된 "
        "토큰을 지웠습니다",
        f"logged out {f'user {document.user_id}' if known else 'the stored login'} and "
        "removed the stored tokens",
    )
    print(out.said(args.languages))
    if USER_ID_PLACEHOLDER not in service.settings.token_object:
        stays = Words(
            "배포는 계속 소유자의 것입니다: 콜백 URL에서 다시 로그인하거나, "
            "`python -m token_logic claim-url`로 넘기세요(새 계정이 그 링크를 엽니다)",
            "the deployment stays its owner's: log in again at the callback URL, or hand it "
            "over with `python -m token_logic claim-url` (the new account opens that link)",
        )
        print(stays.said(args.languages))
    return 0


def _claim_url(
    environ: Mapping[str, str],
    args: argparse.Namespace,
    make_service: Callable[[Mapping[str, str]], TokenService],
) -> int:
    deployment = find_deployment(environ, args.env_file)
    login = SENDER if args.sender else OWNER
    refusal = store_conflict(deployment) or claim_refusal(deployment.settings(), login)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 1
    service = make_service(deployment.claim_environ())
    settings = service.settings
    claim = service.issue_claim(login)
    print(claim.link(settings.redirect_uri))  # stdout only: the link is the secret
    where = f"gs://{settings.token_bucket}" if settings.token_bucket else settings.token_dir
    if login == SENDER:
        what = "becomes the sender (a second Kakao account, never the owner's)"
    elif settings.single_owner:
        what = "owns this deployment"
    else:
        what = "admits one Kakao account (its own document; make a link per account)"
    print(f"the claim is stored in {where} / 소유권 기록: {where}", file=sys.stderr)
    print(
        f"one login through it {what}; it works once, until "
        f"{format_time(claim.expires_at)} (a newer link replaces it)",
        file=sys.stderr,
    )
    return 0


def _doctor(environ: Mapping[str, str], args: argparse.Namespace) -> int:
    deployment = find_deployment(environ, args.env_file)
    if deployment.file is not None:
        print(f"settings from {deployment.file} over the environment", file=sys.stderr)
    return run_doctor(deployment.environ, redirect_uri_only=args.redirect_uri_only, out=sys.stdout)


def _login_url(environ: Mapping[str, str]) -> int:
    url = environ.get("KAKAO_REDIRECT_URI", "").strip()
    if not url:
        print(
            "error: KAKAO_REDIRECT_URI is not set (the deployed kakao_callback URL)",
            file=sys.stderr,
        )
        return 1
    print(url)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m token_logic",
        description="Kakao Login tokens stored by kakao-token-function. Reads the same "
        "environment variables as the function (TOKEN_BUCKET or TOKEN_DIR, TOKEN_OBJECT, "
        "KAKAO_REST_API_KEY, KAKAO_CLIENT_SECRET); with KAKAO_TOKEN_URL or --url, "
        "status, access-token and send-memo ask the token endpoint instead.",
    )
    add_url_and_user(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    add_token_commands(commands)
    for name, handler in (
        ("status", _status),
        ("access-token", _access_token),
        ("send-memo", _send_memo),
        ("send-message", _send_message),
    ):
        commands.choices[name].set_defaults(handler=handler)
    refresh = commands.add_parser("refresh", help="refresh stored tokens that are due")
    refresh.add_argument("--force", action="store_true", help="refresh even if not due")
    refresh.set_defaults(handler=_refresh)
    commands.add_parser("login-url", help="where to open a browser to log in")
    claim = commands.add_parser(
        "claim-url",
        help="a link whose login owns this deployment (first owner, or hand-over); once, 24 h",
        description="Reads deploy.env (here, or --env-file) over the environment, as deployed: "
        "the claim goes to the store the functions read, the link to KAKAO_REDIRECT_URI.",
    )
    _add_env_file(claim)
    claim.add_argument(
        "--sender",
        action="store_true",
        help="a link for the sender's login (KAKAO_SENDER=1), a second Kakao account",
    )
    doctor = commands.add_parser(
        "doctor",
        help="ask Kakao whether the key, client secret and Redirect URI are set up right",
        description="Reads KAKAO_REST_API_KEY, KAKAO_CLIENT_SECRET and KAKAO_REDIRECT_URI "
        "(optional) from deploy.env (here, or --env-file) over the environment. Exit 0 all "
        "right or could not tell, 1 a setting is wrong.",
    )
    _add_env_file(doctor)
    doctor.add_argument(
        "--redirect-uri-only", action="store_true", help="check KAKAO_REDIRECT_URI alone"
    )
    logout = commands.add_parser(
        "logout",
        help="log the stored token out at Kakao and delete it (hand the deployment over)",
    )
    logout.add_argument(
        "--sender", action="store_true", help="the sender's login (KAKAO_SENDER=1), not the owner's"
    )
    logout.set_defaults(handler=_logout)
    return parser


def _add_env_file(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--env-file", metavar="PATH", help="the deployment's settings (default: ./deploy.env)"
    )


if __name__ == "__main__":
    sys.exit(main())
