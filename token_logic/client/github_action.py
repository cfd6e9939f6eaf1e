"""The GitHub Action's step (action.yml): a valid access token as the step's outputs.

Inputs arrive as INPUT_* variables (action.yml maps them); the token is masked with
``::add-mask::`` before it is written to GITHUB_OUTPUT, so no later log line shows it; so is
the sender's, which a message uses and nothing prints, as soon as it arrives. A
failure is one ``::error::`` line with the client's message and exit 1, and writes no output.
The refresh token never comes near this: the token endpoint does not hand it out.

What the step says is in Korean and in English, a line each (one annotation), unless the
workflow sets KAKAO_TOKEN_LANG (ko or en): a runner's locale is C whoever reads the log.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import TextIO

from ..checks import is_decimal
from ..errors import ConfigError, EndpointUnreachable, KakaoTokenError
from ..language import BOTH, Languages, Words, languages_from
from .action_message import message_asked, send_from_action
from .answers import RemoteToken
from .github_oidc import ACCOUNT_VARIABLE, PROVIDER_VARIABLE
from .remote import MAX_LEEWAY_SECONDS, URL_VARIABLE, RemoteSettings, remote_token


def main(environ: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run the step; return the exit code."""
    environ = os.environ if environ is None else environ
    log: TextIO = sys.stdout if out is None else out
    languages = languages_from(environ, default=BOTH)
    mask = masker(log, languages)
    try:
        settings, leeway, user_id = _inputs(environ, languages)
        token = remote_token(settings, user_id, leeway)
        mask(token)
    except KakaoTokenError as exc:
        print(f"::error title=kakao-token::{_escaped(str(exc))}", file=log, flush=True)
        return 1
    lines = {"access_token": token.access_token, "expires_at": str(token.expires_at)}
    with open(environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as outputs:
        outputs.writelines(f"{name}={value}\n" for name, value in lines.items())
    got = Words(
        f"카카오 사용자 {token.user_id}의 액세스 토큰을 받았습니다(만료: {token.expires_at})",
        f"Kakao access token for user {token.user_id}, valid until {token.expires_at}",
    )
    print(got.said(languages), file=log)
    if message_asked(environ):  # `text` or `template_json`: send as send-message does
        return send_from_action(settings, environ, log, user_id, mask)
    return 0


def masker(out: TextIO, languages: Languages) -> Callable[[RemoteToken], None]:
    """What masks each access token the step gets (the owner's, the sender's) in the log, once:
    ``::add-mask::`` before the value exists anywhere else, or is used. A token that would
    break the mask's line (CR, LF) is refused (EndpointUnreachable)."""

    masked: set[str] = set()

    def mask(token: RemoteToken) -> None:
        if token.access_token in masked:
            return
        if any(char in token.access_token for char in "\r\n"):
            odd = Words(
                "엔드포인트가 이상한 토큰을 주었습니다", "the endpoint answered an odd token"
            )
            raise EndpointUnreachable(odd.said(languages))
        print(f"::add-mask::{token.access_token}", file=out, flush=True)
        masked.add(token.access_token)

    return mask


def _inputs(
    environ: Mapping[str, str], languages: Languages
) -> tuple[RemoteSettings, int, int | None]:
    url = environ.get("INPUT_URL", "").strip()
    if not url:
        no_url = Words(
            "`url` 입력이 비어 있습니다: ./deploy.sh가 출력한 토큰 엔드포인트 URL을 주세요"
            f"(${{{{ vars.{URL_VARIABLE} }}}}에서 온다면 그 저장소 변수를 설정하세요)",
            "the `url` input is empty: give the token endpoint's URL that ./deploy.sh printed "
            f"(if it comes from ${{{{ vars.{URL_VARIABLE} }}}}, set that repository variable)",
        )
        raise ConfigError(no_url.said(languages))
    id_token = environ.get("INPUT_ID_TOKEN", "").strip()
    provider = environ.get("INPUT_WORKLOAD_IDENTITY_PROVIDER", "").strip()
    account = environ.get("INPUT_SERVICE_ACCOUNT", "").strip()
    if id_token and (provider or account):
        both_ways = Words(
            "`id_token`과, `workload_identity_provider`와 `service_account` 중 한쪽만 주세요",
            "give either `id_token` or `workload_identity_provider` with `service_account`, "
            "not both",
        )
        raise ConfigError(both_ways.said(languages))
    leeway = _whole_seconds(environ.get("INPUT_MIN_VALID", "").strip() or "300", languages)
    user = environ.get("INPUT_USER_ID", "").strip()
    if user and not is_decimal(user):
        not_an_id = Words(
            "`user_id` 입력은 카카오 사용자 id(숫자)여야 합니다",
            "the `user_id` input must be a Kakao user id (digits)",
        )
        raise ConfigError(not_an_id.said(languages))
    # The runner's own variables (GitHub's OIDC request, PATH, proxies) stay visible.
    client_env = {
        **environ,
        URL_VARIABLE: url,
        "KAKAO_TOKEN_ID_TOKEN": id_token,
        PROVIDER_VARIABLE: provider,
        ACCOUNT_VARIABLE: account,
    }
    settings = RemoteSettings.from_env(client_env, languages=languages)
    if settings is None:  # pragma: no cover - the URL was checked above
        raise ConfigError("the `url` input is empty")
    return settings, leeway, int(user) if user else None


def _whole_seconds(raw: str, languages: Languages) -> int:
    if not is_decimal(raw) or int(raw) > MAX_LEEWAY_SECONDS:
        not_seconds = Words(
            f"`min_valid` 입력은 0부터 {MAX_LEEWAY_SECONDS}까지의 정수(초)여야 합니다",
            f"the `min_valid` input must be whole seconds, 0 to {MAX_LEEWAY_SECONDS}",
        )
        raise ConfigError(not_seconds.said(languages))
    return int(raw)


def _escaped(message: str) -> str:
    """A workflow command's data: GitHub reads %, CR and LF as its own syntax."""
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


if __name__ == "__main__":
    sys.exit(main())
