"""The GitHub Action's step (action.yml): a valid access token as the step's outputs.

Inputs arrive as INPUT_* variables (action.yml maps them); the token is masked with
``::add-mask::`` before it is written to GITHUB_OUTPUT, so no later log line shows it. A
failure is one ``::error::`` line with the client's message and exit 1, and writes no output.
The refresh token never comes near this: the token endpoint does not hand it out.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

from ..checks import is_decimal
from ..errors import ConfigError, KakaoTokenError
from .github_oidc import ACCOUNT_VARIABLE, PROVIDER_VARIABLE
from .remote import MAX_LEEWAY_SECONDS, URL_VARIABLE, RemoteSettings, remote_token


def main(environ: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run the step; return the exit code."""
    environ = os.environ if environ is None else environ
    out = sys.stdout if out is None else out
    try:
        settings, leeway, user_id = _inputs(environ)
        token = remote_token(settings, user_id, leeway)
    except KakaoTokenError as exc:
        print(f"::error title=kakao-token::{_escaped(str(exc))}", file=out, flush=True)
        return 1
    lines = {"access_token": token.access_token, "expires_at": str(token.expires_at)}
    if any("\n" in value or "\r" in value for value in lines.values()):
        print("::error title=kakao-token::the endpoint answered an odd token", file=out)
        return 1
    # The mask must be in the log before the value exists anywhere else.
    print(f"::add-mask::{token.access_token}", file=out, flush=True)
    with open(environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as outputs:
        outputs.writelines(f"{name}={value}\n" for name, value in lines.items())
    print(f"Kakao access token for user {token.user_id}, valid until {token.expires_at}", file=out)
    return 0


def _inputs(environ: Mapping[str, str]) -> tuple[RemoteSettings, int, int | None]:
    url = environ.get("INPUT_URL", "").strip()
    if not url:
        raise ConfigError(
            "the `url` input is empty: give the token endpoint's URL that ./deploy.sh printed "
            f"(if it comes from ${{{{ vars.{URL_VARIABLE} }}}}, set that repository variable)"
        )
    id_token = environ.get("INPUT_ID_TOKEN", "").strip()
    provider = environ.get("INPUT_WORKLOAD_IDENTITY_PROVIDER", "").strip()
    account = environ.get("INPUT_SERVICE_ACCOUNT", "").strip()
    if id_token and (provider or account):
        raise ConfigError(
            "give either `id_token` or `workload_identity_provider` with `service_account`, "
            "not both"
        )
    leeway = _whole_seconds(environ.get("INPUT_MIN_VALID", "").strip() or "300")
    user = environ.get("INPUT_USER_ID", "").strip()
    if user and not is_decimal(user):
        raise ConfigError("the `user_id` input must be a Kakao user id (digits)")
    # The runner's own variables (GitHub's OIDC request, PATH, proxies) stay visible.
    client_env = {
        **environ,
        URL_VARIABLE: url,
        "KAKAO_TOKEN_ID_TOKEN": id_token,
        PROVIDER_VARIABLE: provider,
        ACCOUNT_VARIABLE: account,
    }
    settings = RemoteSettings.from_env(client_env)
    if settings is None:  # pragma: no cover - the URL was checked above
        raise ConfigError("the `url` input is empty")
    return settings, leeway, int(user) if user else None


def _whole_seconds(raw: str) -> int:
    if not is_decimal(raw) or int(raw) > MAX_LEEWAY_SECONDS:
        raise ConfigError(f"the `min_valid` input must be whole seconds, 0 to {MAX_LEEWAY_SECONDS}")
    return int(raw)


def _escaped(message: str) -> str:
    """A workflow command's data: GitHub reads %, CR and LF as its own syntax."""
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


if __name__ == "__main__":
    sys.exit(main())
