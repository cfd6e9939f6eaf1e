"""The deployment deploy.sh made, as the command line finds it: its deploy.env read the way
deploy.sh reads it, merged with the environment, and whether a claim link made from here would
reach the store the deployed functions read.

deploy.env (in the current directory, or ``--env-file PATH``) is the record of what was
deployed, so **a setting it names wins over the environment**; the environment fills in what
the file does not name (STORAGE_EMULATOR_HOST, credentials, KAKAO_REDIRECT_URI when it is not
kept there). A file that names TOKEN_BUCKET therefore sends the claim to ``gs://TOKEN_BUCKET``,
never to a local TOKEN_DIR. One exception: where the tokens live (TOKEN_BUCKET, TOKEN_OBJECT)
named differently by the environment and the file is refused, not decided, since deploy.sh lets
the environment win at deploy time and either may be the one deployed.

The file is parsed, never executed: KEY=VALUE lines, ``#`` comments and blank lines, one pair
of quotes taken off a value. A line that is not KEY=VALUE is named by its number, never shown
(it may hold a secret).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ..config import Settings
from ..errors import ConfigError
from ..logins import SENDER

DEPLOY_ENV = "deploy.env"
STORE_SETTINGS = ("TOKEN_BUCKET", "TOKEN_OBJECT")
# A claim never calls Kakao, so the key is not needed for one: Settings wants some value.
_UNUSED_KEY = "unused-by-claim-url"
_LINE = re.compile(r"\s*([A-Z_]+)=(.*)")
_SKIPPED = re.compile(r"\s*(#.*)?")


@dataclass(frozen=True)
class Deployment:
    """The merged settings, the file they came from (None: none found) and the store settings
    the environment and the file name differently."""

    environ: Mapping[str, str] = field(repr=False)  # holds the client secret
    file: Path | None = None
    conflicts: tuple[str, ...] = ()

    def claim_environ(self) -> dict[str, str]:
        """The settings for making a claim, which needs no Kakao key (Settings wants one)."""
        environ = dict(self.environ)
        if not environ.get("KAKAO_REST_API_KEY", "").strip():
            environ["KAKAO_REST_API_KEY"] = _UNUSED_KEY
        return environ

    def settings(self) -> Settings:
        return Settings.from_env(self.claim_environ(), need_redirect_uri=False)


def read_env_file(path: Path) -> dict[str, str]:
    """A deploy.env's settings, as deploy.sh's load_env_file reads them (the first non-empty
    value of a name wins)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror} / {path}을 읽을 수 없습니다"
        ) from exc
    values: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")  # a file saved with Windows line endings
        if _SKIPPED.fullmatch(line):
            continue
        found = _LINE.fullmatch(line)
        if found is None:
            raise ConfigError(
                f"{path}: cannot read line {number} (want KEY=VALUE) / {path}의 {number}번째 "
                "줄을 읽을 수 없습니다(KEY=VALUE 형식)"
            )
        key, value = found.groups()
        value = value.removesuffix('"').removeprefix('"').removesuffix("'").removeprefix("'")
        if not values.get(key):
            values[key] = value
    return values


def find_deployment(environ: Mapping[str, str], env_file: str | None = None) -> Deployment:
    """The environment with ``env_file`` (or ./deploy.env, when there is one) over it."""
    path = Path(env_file) if env_file else Path(DEPLOY_ENV)
    if env_file and not path.is_file():
        raise ConfigError(f"no such file: {path} / 파일이 없습니다: {path}")
    if not path.is_file():
        return Deployment(dict(environ))
    values = read_env_file(path)
    conflicts = tuple(
        name
        for name in STORE_SETTINGS
        if values.get(name) and environ.get(name, "").strip() not in ("", values[name].strip())
    )
    merged = {**environ, **{key: value for key, value in values.items() if value}}
    if values.get("TOKEN_BUCKET"):
        merged.pop("TOKEN_DIR", None)  # the deployment's tokens are in the bucket
    return Deployment(merged, path, conflicts)


def store_conflict(deployment: Deployment) -> str:
    """Why the store is in doubt ("" if it is not), naming the variables."""
    if not deployment.conflicts:
        return ""
    names = " and ".join(deployment.conflicts)
    return (
        f"{names} in the environment differ from {deployment.file}: the claim must go where "
        "the deployed functions read, and either may be what deploy.sh deployed (it lets the "
        f"environment win). Unset {names} in the environment, or correct {deployment.file} / "
        f"환경 변수의 {names} 값이 {deployment.file}와 다릅니다: 환경 변수에서 지우거나 "
        f"{deployment.file}를 고치세요"
    )


def claim_refusal(settings: Settings, login: str) -> str:
    """Why a claim link made with ``settings`` would not work ("" if it would): each reason
    names the variable to set, in English and Korean."""
    if login == SENDER and not settings.sender:
        return (
            "this deployment has no sender: set KAKAO_SENDER=1 in deploy.env and run "
            "./deploy.sh / 보내는 계정이 없는 배포입니다: deploy.env에 KAKAO_SENDER=1을 넣고 "
            "./deploy.sh를 실행하세요"
        )
    if login != SENDER and not (settings.single_owner or settings.per_user_claims):
        return (
            "no claim link is needed here: ALLOWED_KAKAO_USER_IDS decides who may log in, at "
            "the callback URL itself / ALLOWED_KAKAO_USER_IDS의 계정은 콜백 URL에서 바로 "
            "로그인합니다(소유권 링크가 필요 없음)"
        )
    if not settings.redirect_uri:
        return (
            "KAKAO_REDIRECT_URI is not set: put the deployed kakao_callback URL (deploy.sh "
            "prints it) in deploy.env or the environment; the link is built on it / "
            "KAKAO_REDIRECT_URI가 없습니다: deploy.sh가 출력한 kakao_callback URL을 deploy.env나 "
            "환경 변수에 넣으세요"
        )
    parts = urlsplit(settings.redirect_uri)
    deployed = parts.scheme == "https" or (parts.hostname or "").endswith(".run.app")
    if deployed and not settings.token_bucket:
        return (
            f"TOKEN_BUCKET is not set: the claim would go to a local file under "
            f"{settings.token_dir}, which the function at {settings.redirect_uri} never reads, "
            "and its link would be dead. Set TOKEN_BUCKET (deploy.env or the environment) to "
            "the deployment's bucket / TOKEN_BUCKET이 없습니다: 배포된 함수는 로컬 파일을 읽지 "
            "않아 링크가 동작하지 않습니다. TOKEN_BUCKET을 배포의 버킷으로 설정하세요"
        )
    return ""
