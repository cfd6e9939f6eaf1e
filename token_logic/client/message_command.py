"""``send-message TEXT``: a KakaoTalk message to the deployment's owner that rings (from the
sender, when the deployment has one), else a memo; for ``kakao-token`` and ``python -m
token_logic`` alike (cli.py adds it beside the other token commands).

It prints what Kakao did, one line a part: ``delivered to <owner id> (part i/n)``, or the
failure with its cause and fix (Korean first, then English). Exit codes: 0 every part was
delivered, 1 otherwise, 2 bad usage (a text of more than MAX_PARTS parts without
``--all-parts`` too).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from ..checks import is_http_url, json_object
from ..kakao.message_parts import MAX_PART_LENGTH, MAX_PARTS, too_many_parts
from ..kakao.to_owner import MessageResult
from ..language import Languages, Words
from .owner_message import send_to_owner
from .remote import RemoteSettings

COMMAND = "send-message"
MAX_TEMPLATE_BYTES = 64 * 1024  # a default template is a few hundred bytes


def add_send_message(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``send-message`` subcommand and its options."""
    message = commands.add_parser(
        COMMAND,
        help="send the owner a KakaoTalk message that rings (from the sender account), else a memo",
    )
    message.add_argument(
        "text",
        nargs="?",
        help=f"the message: numbered parts of at most {MAX_PART_LENGTH} characters, at most "
        f"{MAX_PARTS} parts unless --all-parts",
    )
    message.add_argument(
        "--link",
        help="the http(s) URL the message opens (default: KAKAO_MEMO_LINK, else the deployment's)",
    )
    message.add_argument(
        "--template-json",
        metavar="FILE",
        help="one of Kakao's default templates (a JSON object), sent as it is; '-' reads "
        "standard input",
    )
    message.add_argument(
        "--memo", action="store_true", help="send a memo to yourself instead (no notification)"
    )
    message.add_argument(
        "--all-parts",
        action="store_true",
        help=f"send a text of more than {MAX_PARTS} parts too (the sender may send the owner "
        "20 messages a day; past them every message fails until midnight KST)",
    )
    message.set_defaults(template=None)


def message_usage_ok(args: argparse.Namespace) -> bool:
    """False (after saying why) when the arguments cannot make a message; the template, read,
    is left in ``args.template``."""
    problem = _usage_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
    return not problem


def run_send_message(settings: RemoteSettings, args: argparse.Namespace) -> int:
    """Send through the endpoint and print what Kakao did; the endpoint's refusals raise (the
    caller prints them)."""
    return send_and_print(partial(send_to_owner, settings), args, settings.languages)


def send_and_print(
    send: Callable[..., MessageResult], args: argparse.Namespace, languages: Languages
) -> int:
    """``send`` (through the endpoint, or from the store) what the arguments say, print what
    Kakao did, and the exit code: 0 when every part was delivered."""
    result = send(
        args.text,
        template=args.template,
        link=args.link,
        memo=args.memo,
        user_id=args.user,
        all_parts=args.all_parts,
    )
    print_result(result, languages)
    return 0 if result.ok else 1


def print_result(
    result: MessageResult,
    languages: Languages,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> None:
    """One line a part, in order (in ``languages``): delivered ones on ``out``, failures (and
    the note, and the parts not sent) on ``err``."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if result.note:
        print(f"note: {result.note.said(languages)}", file=err)
    for failure in result.failures:
        if failure.part == 0:
            print(f"error: {failure.line(languages)}", file=err)
    failed = {failure.part: failure for failure in result.failures}
    for part in range(1, result.parts + 1):
        if part in result.delivered:
            print(delivered_line(result, part, languages), file=out)
        elif part in failed:
            print(f"error: ({part}/{result.parts}) {failed[part].line(languages)}", file=err)
    if result.not_sent and result.parts > 1:
        print(f"error: {not_sent_line(result, languages)}", file=err)


def delivered_line(result: MessageResult, part: int, languages: Languages) -> str:
    """``delivered to <owner id> (part i/n)``, in ``languages``."""
    who, where = result.receiver_user_id, f"{part}/{result.parts}"
    if result.route == "memo":
        return Words(
            f"사용자 {who}의 나와의 채팅에 메모로 보냈습니다({where}, 알림 없음)",
            f"delivered as a memo to {who} (part {where}, no notification)",
        ).said(languages)
    return Words(
        f"사용자 {who}에게 보냈습니다({where})", f"delivered to {who} (part {where})"
    ).said(languages)


def not_sent_line(result: MessageResult, languages: Languages) -> str:
    """How many parts were not sent after a failure that would repeat."""
    return Words(
        f"{result.parts}개 중 {result.not_sent}개 부분은 보내지 않았습니다",
        f"{result.not_sent} of {result.parts} parts not sent",
    ).said(languages)


def _usage_problem(args: argparse.Namespace) -> str:
    has_text = args.text is not None
    if has_text == (args.template_json is not None):
        return "give the text or --template-json FILE (one of them)"
    if has_text and not args.text.strip():
        return "the text is empty"
    if args.link is not None and not has_text:
        return "--link goes with a text; a template carries its own links"
    if args.link is not None and not is_http_url(args.link):
        return "--link must be an absolute http(s) URL"
    if has_text:
        return "" if args.all_parts else too_many_parts(args.text, "--all-parts")
    template, problem = read_template(args.template_json)
    args.template = template
    return problem


def read_template(source: str) -> tuple[dict[str, Any] | None, str]:
    """The template in a file (``-``: standard input): a JSON object with an ``object_type``;
    else None and why not."""
    try:
        if source == "-":
            raw = sys.stdin.buffer.read(MAX_TEMPLATE_BYTES + 1)
        else:
            with Path(source).open("rb") as file:
                raw = file.read(MAX_TEMPLATE_BYTES + 1)
    except OSError as exc:
        return None, f"--template-json: cannot read {source} ({exc.strerror})"
    return template_from(raw)


def template_from(raw: bytes | str) -> tuple[dict[str, Any] | None, str]:
    """A default template from its JSON text, or None and why not."""
    if len(raw) > MAX_TEMPLATE_BYTES:
        return None, f"the template is larger than {MAX_TEMPLATE_BYTES} bytes"
    template = json_object(raw)
    if template is None:
        return None, "the template must be a JSON object"
    if not isinstance(template.get("object_type"), str):
        return None, (
            "the template needs an object_type (text, feed, list, location, commerce or "
            "calendar): see Kakao's message template reference"
        )
    return template, ""
