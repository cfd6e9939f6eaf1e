"""Where a caller's Google ID token for the token endpoint comes from, tried in order.

1. ``KAKAO_TOKEN_ID_TOKEN``: given explicitly (GitHub Actions' ``google-github-actions/auth``
   with ``token_format: id_token``).
2. GitHub Actions' own OIDC token through workload identity federation, when
   KAKAO_TOKEN_WORKLOAD_IDENTITY_PROVIDER and KAKAO_TOKEN_SERVICE_ACCOUNT are set (github_oidc.py;
   this project's action sets them from its inputs). Set up but failing is an error, not a
   reason to try the next source.
3. google-auth's ``fetch_id_token``: a service-account key file (GOOGLE_APPLICATION_CREDENTIALS)
   or, on Google Cloud, the metadata server.
4. ``gcloud auth print-identity-token``: a person logged in with ``gcloud auth login``; a
   person's token has no audience, so it is fetched only for a KAKAO_TOKEN_URL on a Cloud Run
   or Cloud Functions host, or this machine (``audience_less_token_may_go_to`` says why).

Cloud Run checks the token (``roles/run.invoker``); it is never logged, never put in an error
and never kept beyond the request it is for.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..checks import destination
from ..errors import ConfigError
from ..language import ENGLISH, Languages, Words, languages_from
from .github_oidc import PROVIDER_VARIABLE, GitHubFederation, federated_id_token

GCLOUD_TIMEOUT_SECONDS = 30
# Set on Google Cloud's serverless platforms; elsewhere the metadata server is there only on
# Google's own machines (the DMI product name says so, as google-auth itself checks).
_GOOGLE_CLOUD_MARKERS = ("K_SERVICE", "CLOUD_RUN_JOB", "FUNCTION_TARGET", "GAE_ENV")
_METADATA_OVERRIDES = ("GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT")
_DMI_PRODUCT_NAME = Path("/sys/class/dmi/id/product_name")

# Where a deployment of this project answers: Cloud Run and Cloud Functions hosts, and this
# machine itself (compared whole: "mylocalhost" or "x.localhost" is not this machine).
_FUNCTION_HOST_SUFFIXES = (".run.app", ".cloudfunctions.net")


class NotHere(Exception):
    """A source has no ID token in this environment; ``words`` say why, in Korean and English
    (no secret in them); str() is the English."""

    def __init__(self, korean: str, english: str) -> None:
        super().__init__(english)
        self.words = Words(korean, english)


IdTokenSource = Callable[[str], str]


@dataclass(frozen=True)
class IdentitySettings:
    """What the sources need to know, read once from the environment at the edge."""

    explicit_token: str = ""
    credentials_file: str = ""
    on_google_cloud: bool = False
    path: str = ""
    github: GitHubFederation | None = None

    def __repr__(self) -> str:
        given = "given" if self.explicit_token else "not given"
        return (
            f"IdentitySettings(explicit_token={given}, credentials_file={self.credentials_file!r}"
            f", on_google_cloud={self.on_google_cloud}, github={self.github!r})"
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], languages: Languages | None = None
    ) -> IdentitySettings:
        markers = any(environ.get(name) for name in _GOOGLE_CLOUD_MARKERS + _METADATA_OVERRIDES)
        return cls(
            explicit_token=environ.get("KAKAO_TOKEN_ID_TOKEN", "").strip(),
            credentials_file=environ.get("GOOGLE_APPLICATION_CREDENTIALS", "").strip(),
            on_google_cloud=markers or _google_hardware(),
            path=environ.get("PATH", ""),
            github=GitHubFederation.from_env(environ, languages or languages_from(environ)),
        )


def default_sources(settings: IdentitySettings) -> list[tuple[str, IdTokenSource]]:
    """The four sources in their order, each named for the error message."""
    return [
        ("KAKAO_TOKEN_ID_TOKEN", lambda _audience: _explicit(settings)),
        ("github-actions", lambda audience: _from_github(settings, audience)),
        ("google-auth", lambda audience: _from_google_auth(settings, audience)),
        ("gcloud", lambda audience: _from_gcloud(settings, audience)),
    ]


def find_id_token(
    audience: str,
    sources: Sequence[tuple[str, IdTokenSource]],
    languages: Languages = ENGLISH,
) -> tuple[str, str]:
    """(the ID token, the name of the source that gave it); ConfigError naming the ways, in
    ``languages``."""
    reasons = []
    for name, source in sources:
        try:
            token = source(audience)
        except NotHere as exc:
            reasons.append(Words(f"{name}: {exc.words.ko}", f"{name}: {exc.words.en}"))
            continue
        if token:
            return token, name
        reasons.append(Words(f"{name}: 비어 있음", f"{name}: empty"))
    none_works = _none_works(audience, reasons)
    raise ConfigError(none_works.said(languages), ("KAKAO_TOKEN_ID_TOKEN",))


def _explicit(settings: IdentitySettings) -> str:
    if not settings.explicit_token:
        raise NotHere("설정되지 않음", "not set")
    return settings.explicit_token


def _from_github(settings: IdentitySettings, audience: str) -> str:
    if settings.github is None:
        raise NotHere(f"{PROVIDER_VARIABLE} 설정되지 않음", f"{PROVIDER_VARIABLE} not set")
    return federated_id_token(settings.github, audience)


def _from_google_auth(settings: IdentitySettings, audience: str) -> str:
    if not settings.credentials_file and not settings.on_google_cloud:
        # Off Google Cloud, google-auth's probe of the metadata address can hang ~10 s.
        raise NotHere(
            "GOOGLE_APPLICATION_CREDENTIALS 없음, Google Cloud 위도 아님",
            "no GOOGLE_APPLICATION_CREDENTIALS, and not on Google Cloud",
        )
    try:
        import google.auth.transport.requests
        import google.oauth2.id_token
        from google.auth.exceptions import GoogleAuthError
    except ImportError as exc:
        raise NotHere(
            "google-auth가 설치되지 않음(pip install google-auth)",
            "google-auth is not installed (pip install google-auth)",
        ) from exc
    try:
        request = google.auth.transport.requests.Request()
        token = google.oauth2.id_token.fetch_id_token(request, audience)  # type: ignore[no-untyped-call]
    except GoogleAuthError as exc:
        # google-auth's own words name the cause (a revoked key, a wrong file); no token in them.
        said = f"{type(exc).__name__}: {_one_line(str(exc))}"
        raise NotHere(f"실패: {said}", f"failed: {said}") from exc
    return str(token or "")


def _from_gcloud(settings: IdentitySettings, audience: str) -> str:
    gcloud = shutil.which("gcloud", path=settings.path or None)
    if gcloud is None:
        raise NotHere(
            "gcloud가 설치되지 않음(PATH에 없음)", "gcloud is not installed (not on PATH)"
        )
    said: list[str] = []  # gcloud's own words (it never prints a token on stderr)
    # A user account's token cannot carry --audiences (gcloud refuses); Cloud Run accepts
    # that token without it, a service account's only with it: try with, then without.
    for extra in (["--audiences", audience], []):
        if not extra and not audience_less_token_may_go_to(audience):
            raise NotHere(
                f"{audience}용 ID 토큰 없음({said[0]}); 사람 계정의 gcloud 토큰에는 대상"
                "(audience)이 없어 Cloud Run이나 Cloud Functions URL(*.run.app, "
                "*.cloudfunctions.net) 또는 이 컴퓨터에만 보냅니다: 다른 호스트라면 그 대상의 "
                "ID 토큰을 KAKAO_TOKEN_ID_TOKEN에 넣으세요",
                f"no identity token for {audience} ({said[0]}); a person's gcloud token has no "
                "audience, so it is sent only to a Cloud Run or Cloud Functions URL (*.run.app, "
                "*.cloudfunctions.net) or this machine: for another host, put an ID token for "
                "that audience in KAKAO_TOKEN_ID_TOKEN",
            )
        try:
            result = subprocess.run(  # noqa: S603 - a fixed command, no shell
                [gcloud, "auth", "print-identity-token", *extra],
                capture_output=True,
                text=True,
                timeout=GCLOUD_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            name = type(exc).__name__
            raise NotHere(
                f"gcloud를 실행하지 못함({name})", f"could not run gcloud ({name})"
            ) from exc
        token = result.stdout.strip()
        if result.returncode == 0 and token:
            return token
        said.append(_one_line(result.stderr) or f"exit {result.returncode}")
    if said[0] == said[1]:
        raise NotHere(f"ID 토큰 없음({said[0]})", f"no identity token ({said[0]})")
    raise NotHere(
        f"ID 토큰 없음(--audiences로: {said[0]}; 없이: {said[1]})",
        f"no identity token (with --audiences: {said[0]}; without: {said[1]})",
    )


def audience_less_token_may_go_to(endpoint: str) -> bool:
    """Whether a person's gcloud token without an audience may be sent to ``endpoint``.

    That token opens, for an hour, every Cloud Run service and function the person may call,
    and *.run.app and *.cloudfunctions.net are shared by every Google Cloud customer: a
    stranger's function there would receive a key to all of them. It is sent all the same,
    because it is the only token Cloud Run takes from a person's own account, but to one host
    only: the host of ``endpoint``, which is KAKAO_TOKEN_URL (or --url), the person's own
    statement of where their deployment is (./deploy.sh printed it), never a URL an answer
    names (remote.py follows no redirect, so no answer can carry the token on). It must be a
    host where a deployment answers (anywhere else it could only leak) or, compared whole, this
    machine (a local endpoint, or ``gcloud run services proxy``). Nothing here can tell a
    stranger's *.run.app URL from the person's own: that is what KAKAO_TOKEN_URL vouches for.
    The host is the one requests connects to (``checks.destination``), never another reading
    of the same text.
    """
    try:
        where = destination(endpoint)
    except ValueError:
        return False
    return where.on_this_machine or where.host.endswith(_FUNCTION_HOST_SUFFIXES)


def _one_line(text: str) -> str:
    """A tool's whole message on one line (our errors are one line), within reason."""
    return " ".join(text.split())[:2000]


def _none_works(audience: str, reasons: list[Words]) -> Words:
    korean = (
        f"토큰 엔드포인트 {audience}에 쓸 Google ID 토큰이 없습니다. 다음 중 하나를 설정하세요: "
        "(1) GitHub Actions: 이 프로젝트의 Action에 workload_identity_provider와 service_account"
        f"(또는 {PROVIDER_VARIABLE}와 KAKAO_TOKEN_SERVICE_ACCOUNT)를 ./deploy.sh가 "
        "GITHUB_REPOSITORY와 함께 출력한 대로 주기; (2) KAKAO_TOKEN_ID_TOKEN=<대상(audience)이 "
        "그 URL인 ID 토큰>; (3) GOOGLE_APPLICATION_CREDENTIALS=/path/to/service-account-key.json"
        "과 `pip install google-auth`(또는 메타데이터 서버가 토큰을 주는 Google Cloud에서 실행); "
        "(4) 사람: `gcloud auth login`으로 `gcloud auth print-identity-token`이 되게 하기. 그 "
        "신원은 배포의 TOKEN_READERS 중 하나여야 합니다. 시도한 것: "
        + "; ".join(reason.ko for reason in reasons)
        + "."
    )
    english = (
        f"No Google ID token for the token endpoint {audience}. Set up one of: "
        "(1) GitHub Actions: this project's action with workload_identity_provider and "
        f"service_account (or {PROVIDER_VARIABLE} and KAKAO_TOKEN_SERVICE_ACCOUNT), as "
        "./deploy.sh with GITHUB_REPOSITORY prints them; (2) KAKAO_TOKEN_ID_TOKEN=<an ID token "
        "whose audience is that URL>; (3) GOOGLE_APPLICATION_CREDENTIALS=/path/to/"
        "service-account-key.json with `pip install google-auth` (or run on Google Cloud, "
        "where the metadata server gives one); (4) a person: `gcloud auth login`, so that "
        "`gcloud auth print-identity-token` works. The identity must be one of the "
        "deployment's TOKEN_READERS. Tried: " + "; ".join(reason.en for reason in reasons) + "."
    )
    return Words(korean, english)


def _google_hardware() -> bool:
    try:
        return _DMI_PRODUCT_NAME.read_text().strip().startswith("Google")
    except OSError:
        return False
