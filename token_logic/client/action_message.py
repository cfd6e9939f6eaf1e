"""The GitHub Action's message (inputs ``text``, ``link``, ``template_json``, ``all_parts``):
after the step has its token, a message to the owner as ``send-message`` sends it, and the
output ``result``: ``delivered``, or the first failure's short form (``failed: -502 not
friends``). A text of more than MAX_PARTS parts fails the step unless ``all_parts: "true"``:
its length may be anyone's (an issue title), and the sender may send the owner 20 a day.

The text is anyone's: it travels as an environment variable into a form field and nowhere
else. It is never printed, so no ``::`` workflow command and no ``%0A`` in it reaches the log;
each line the step prints is ours, a failure's escaped as a workflow command's data; and the
output is written in GITHUB_OUTPUT's delimiter form with a random delimiter, so not even a
value of ours could end it early. The sender's access token, never printed, is masked all
the same (``mask``) before anything that follows its arrival is printed.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from ..checks import is_http_url
from ..errors import KakaoTokenError
from ..kakao.message_parts import too_many_parts
from ..kakao.to_owner import MessageResult
from ..language import Languages
from .answers import RemoteToken
from .message_command import delivered_line, not_sent_line, template_from
from .owner_message import send_to_owner
from .remote import RemoteSettings

TITLE = "title=kakao-token"


def message_asked(environ: Mapping[str, str]) -> bool:
    """Whether the workflow gave a ``text`` or a ``template_json``."""
    return bool(environ.get("INPUT_TEXT", "") or environ.get("INPUT_TEMPLATE_JSON", "").strip())


def send_from_action(
    settings: RemoteSettings,
    environ: Mapping[str, str],
    out: TextIO | None,
    user_id: int | None,
    mask: Callable[[RemoteToken], None] | None = None,
) -> int:
    """Send the message the inputs describe; print what Kakao did (on ``out``, default
    stdout) and set ``result``. ``mask`` sees each token the endpoint gives, before it is used.
    Exit code: 0 delivered, 1 not (or the inputs make no message)."""
    log: TextIO = sys.stdout if out is None else out
    text = environ.get("INPUT_TEXT", "")
    link = environ.get("INPUT_LINK", "").strip() or None
    all_parts = environ.get("INPUT_ALL_PARTS", "").strip().lower()
    template, problem = _template(environ.get("INPUT_TEMPLATE_JSON", "").strip())
    problem = problem or _problem(text, template, link, all_parts)
    if problem:
        return _failed(environ, log, problem, "failed: bad input")
    try:
        result = send_to_owner(
            settings,
            text or None,
            template=template,
            link=link,
            user_id=user_id,
            all_parts=all_parts == "true",
            on_token=mask,
        )
    except KakaoTokenError as exc:
        reason = exc.wire_name if exc.wire_name != "internal" else type(exc).__name__
        return _failed(environ, log, str(exc), f"failed: {reason}")
    _print(result, log, settings.languages)
    write_output(environ, "result", result.summary)
    return 0 if result.ok else 1


def write_output(environ: Mapping[str, str], name: str, value: str) -> None:
    """``name`` as a step output, in GITHUB_OUTPUT's delimiter form: a value of any lines, and
    a delimiter nobody can guess to end it."""
    delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
    with open(environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as outputs:
        outputs.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def _template(raw: str) -> tuple[dict[str, Any] | None, str]:
    if not raw:
        return None, ""
    template, problem = template_from(raw)
    return template, f"the `template_json` input: {problem}" if problem else ""


def _problem(text: str, template: dict[str, Any] | None, link: str | None, all_parts: str) -> str:
    if all_parts not in ("", "true", "false"):
        return 'the `all_parts` input must be "true" or "false"'
    if text and template is not None:
        return "give `text` or `template_json`, not both"
    if text and not text.strip():
        return "the `text` input is blank"
    if link is not None and template is not None:
        return "`link` goes with `text`; a template carries its own links"
    if link is not None and not is_http_url(link):
        return "the `link` input must be an absolute http(s) URL"
    if text and all_parts != "true":
        return too_many_parts(text, '`all_parts: "true"`')
    return ""


def _print(result: MessageResult, out: TextIO, languages: Languages) -> None:
    if result.note:
        print(f"::warning {TITLE}::{_escaped(result.note.said(languages))}", file=out)
    failed = {failure.part: failure for failure in result.failures}
    if 0 in failed:
        print(f"::error {TITLE}::{_escaped(failed[0].line(languages))}", file=out)
    for part in range(1, result.parts + 1):
        if part in result.delivered:
            print(delivered_line(result, part, languages), file=out)
        elif part in failed:
            line = f"({part}/{result.parts}) {failed[part].line(languages)}"
            print(f"::error {TITLE}::{_escaped(line)}", file=out)
    if result.not_sent and result.parts > 1:
        print(f"::error {TITLE}::{_escaped(not_sent_line(result, languages))}", file=out)
    out.flush()


def _failed(environ: Mapping[str, str], out: TextIO, message: str, result: str) -> int:
    print(f"::error {TITLE}::{_escaped(message)}", file=out, flush=True)
    write_output(environ, "result", result)
    return 1


def _escaped(message: str) -> str:
    """A workflow command's data: GitHub reads %, CR and LF as its own syntax."""
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
