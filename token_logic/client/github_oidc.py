"""A Google ID token for a GitHub Actions job, through workload identity federation, no key.

Three calls, as Google's own auth action makes them:
1. GitHub's OIDC token for this job (``permissions: id-token: write`` gives the job
   ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN), with the provider as its audience;
2. Google's STS trades it for a federated access token, if the provider's attribute condition
   admits the repository;
3. IAM Credentials' ``generateIdToken`` for the reader service account, with the token
   endpoint's URL as the audience, if the repository's principal set may act as that account
   (``roles/iam.workloadIdentityUser``; ``deploy.sh`` with GITHUB_REPOSITORY sets all this up).

No token ever reaches a message; Google's own error text does, whole, because it names the fix.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..checks import configured_destination
from ..errors import ConfigError, EndpointUnreachable
from ..language import ENGLISH, Languages, Words, languages_from
from ..retry import Retry

PROVIDER_VARIABLE = "KAKAO_TOKEN_WORKLOAD_IDENTITY_PROVIDER"
ACCOUNT_VARIABLE = "KAKAO_TOKEN_SERVICE_ACCOUNT"
REQUEST_URL_VARIABLE = "ACTIONS_ID_TOKEN_REQUEST_URL"
STS_URL = "https://sts.googleapis.com/v1/token"
IAM_CREDENTIALS_URL = "https://iamcredentials.googleapis.com/v1"
TIMEOUT = (5.0, 20.0)
ATTEMPTS = 3  # Google or GitHub answering 429/5xx, or not at all: tried twice more
RETRY_PAUSE_SECONDS = 2.0
_PROVIDER = re.compile(
    r"projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]+/providers/[a-z0-9-]+"
)
_ACCOUNT = re.compile(r"[a-z0-9-]+@[a-z0-9-]+\.iam\.gserviceaccount\.com")
_SETUP = Words(
    "deploy.sh에 GITHUB_REPOSITORY=owner/repo를 주면 이것을 설정하고 값을 출력합니다",
    "deploy.sh with GITHUB_REPOSITORY=owner/repo sets this up and prints the values",
)


@dataclass(frozen=True)
class GitHubFederation:
    """What the exchange needs, read once from the job's environment."""

    provider: str
    service_account: str
    request_url: str = ""
    request_token: str = field(default="", repr=False)
    sts_url: str = STS_URL
    iam_credentials_url: str = IAM_CREDENTIALS_URL
    languages: Languages = ENGLISH  # what its errors are said in (language.py)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], languages: Languages | None = None
    ) -> GitHubFederation | None:
        """None when neither variable is set; a ConfigError when only one is, or one is
        malformed (the project *number* is the usual slip)."""
        languages = languages or languages_from(environ)
        provider = environ.get(PROVIDER_VARIABLE, "").strip()
        account = environ.get(ACCOUNT_VARIABLE, "").strip()
        if not provider and not account:
            return None
        if not provider or not account:
            missing = PROVIDER_VARIABLE if not provider else ACCOUNT_VARIABLE
            half = Words(
                f"{missing} 값이 없습니다: 워크로드 아이덴티티에는 {PROVIDER_VARIABLE}(Action의 "
                f"workload_identity_provider)와 {ACCOUNT_VARIABLE}(service_account)가 모두 "
                f"필요합니다. {_SETUP.ko}",
                f"{missing} is not set: workload identity needs both {PROVIDER_VARIABLE} "
                f"(the action's workload_identity_provider) and {ACCOUNT_VARIABLE} "
                f"(service_account); {_SETUP.en}",
            )
            raise ConfigError(half.said(languages), (missing,))
        if not _PROVIDER.fullmatch(provider):
            not_a_provider = Words(
                f"{PROVIDER_VARIABLE} 값은 projects/123456789012/locations/global/"
                "workloadIdentityPools/POOL/providers/PROVIDER 꼴이어야 하며, 프로젝트 ID가 아닌 "
                f"프로젝트 번호를 씁니다. {_SETUP.ko}",
                f"{PROVIDER_VARIABLE} must look like projects/123456789012/locations/global/"
                "workloadIdentityPools/POOL/providers/PROVIDER, with the project number (not "
                f"its id); {_SETUP.en}",
            )
            raise ConfigError(not_a_provider.said(languages), (PROVIDER_VARIABLE,))
        if not _ACCOUNT.fullmatch(account):
            not_an_account = Words(
                f"{ACCOUNT_VARIABLE} 값은 서비스 계정의 이메일"
                f"(NAME@PROJECT.iam.gserviceaccount.com)이어야 합니다. {_SETUP.ko}",
                f"{ACCOUNT_VARIABLE} must be a service account's email "
                f"(NAME@PROJECT.iam.gserviceaccount.com); {_SETUP.en}",
            )
            raise ConfigError(not_an_account.said(languages), (ACCOUNT_VARIABLE,))
        return cls(
            provider=provider,
            service_account=account,
            request_url=_github_url(environ, languages),
            request_token=environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", ""),
            sts_url=_google_url(environ, "KAKAO_TOKEN_STS_URL", STS_URL, languages),
            iam_credentials_url=_google_url(
                environ, "KAKAO_TOKEN_IAM_CREDENTIALS_URL", IAM_CREDENTIALS_URL, languages
            ).rstrip("/"),
            languages=languages,
        )


def _google_url(
    environ: Mapping[str, str], variable: str, default: str, languages: Languages
) -> str:
    """Google's endpoint, or another of Google's hosts (Private Service Connect), or this
    machine (tests): GitHub's OIDC token and the federated token go there, so never elsewhere,
    and the host is the one requests connects to (checks.destination)."""
    url = environ.get(variable, "").strip() or default
    must_be = Words(
        f"{variable} 값은 https://...googleapis.com URL이어야 합니다(또는 비워 두기)",
        f"{variable} must be an https://...googleapis.com URL (or unset)",
    )
    where = configured_destination(variable, url, must_be, languages)
    google = where.scheme == "https" and (
        where.host == "googleapis.com" or where.host.endswith(".googleapis.com")
    )
    if not google and not where.on_this_machine:
        raise ConfigError(must_be.said(languages), (variable,))
    return url


def _github_url(environ: Mapping[str, str], languages: Languages) -> str:
    """Where GitHub's OIDC request token goes: GitHub Actions sets the URL, https ("" when
    the job may not ask; federated_id_token says so)."""
    url = environ.get(REQUEST_URL_VARIABLE, "").strip()
    if url:
        must_be = Words(
            f"{REQUEST_URL_VARIABLE} 값은 GitHub Actions가 설정하는 https:// URL이어야 합니다"
            "(러너에 맡기세요)",
            f"{REQUEST_URL_VARIABLE} must be the https:// URL GitHub Actions sets (leave it to "
            "the runner)",
        )
        where = configured_destination(REQUEST_URL_VARIABLE, url, must_be, languages)
        if not where.never_in_clear_text:
            raise ConfigError(must_be.said(languages), (REQUEST_URL_VARIABLE,))
    return url


def federated_id_token(
    federation: GitHubFederation,
    audience: str,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """A Google ID token for ``audience`` (the token endpoint), naming the service account."""
    import requests

    languages = federation.languages
    if not federation.request_url or not federation.request_token:
        no_oidc = Words(
            "GitHub가 이 작업에 OIDC 토큰을 주지 않았습니다: 워크플로(또는 작업)에 "
            "`permissions: id-token: write`를 넣고 GitHub Actions에서 실행하세요"
            "(ACTIONS_ID_TOKEN_REQUEST_URL이 설정되지 않음)",
            "GitHub gave this job no OIDC token: add `permissions: id-token: write` to the "
            "workflow (or the job), and run it on GitHub Actions (ACTIONS_ID_TOKEN_REQUEST_URL "
            "is not set)",
        )
        raise ConfigError(no_oidc.said(languages))
    with requests.Session() as http:
        github = _call(
            Words("GitHub의 OIDC 토큰", "GitHub's OIDC token"),
            lambda: http.get(
                federation.request_url,
                params={"audience": f"https://iam.googleapis.com/{federation.provider}"},
                headers={"Authorization": f"Bearer {federation.request_token}"},
                timeout=TIMEOUT,
            ),
            "value",
            Words(
                "`permissions: id-token: write`를 확인하세요",
                "check `permissions: id-token: write`",
            ),
            languages,
            sleep,
        )
        federated = _call(
            Words("Google STS(워크로드 아이덴티티)", "Google STS (workload identity)"),
            lambda: http.post(
                federation.sts_url,
                json={
                    "audience": f"//iam.googleapis.com/{federation.provider}",
                    "grantType": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "requestedTokenType": "urn:ietf:params:oauth:token-type:access_token",
                    "scope": "https://www.googleapis.com/auth/cloud-platform",
                    "subjectTokenType": "urn:ietf:params:oauth:token-type:jwt",
                    "subjectToken": github,
                },
                timeout=TIMEOUT,
            ),
            "access_token",
            Words(
                "이 저장소가 deploy.env의 GITHUB_REPOSITORY에 있고, 공급자가 ./deploy.sh가 출력한 "
                "그것인가요?",
                "is this repository in GITHUB_REPOSITORY of deploy.env, and the provider the one "
                "./deploy.sh printed?",
            ),
            languages,
            sleep,
        )
        account = federation.service_account
        return _call(
            Words(f"{account}의 IAM Credentials", f"IAM Credentials for {account}"),
            lambda: http.post(
                f"{federation.iam_credentials_url}/projects/-/serviceAccounts/"
                f"{federation.service_account}:generateIdToken",
                json={"audience": audience, "includeEmail": True},
                headers={"Authorization": f"Bearer {federated}"},
                timeout=TIMEOUT,
            ),
            "token",
            Words(
                "이 저장소는 그 계정으로 행동할 수 없습니다: deploy.env의 GITHUB_REPOSITORY에 "
                "넣고 ./deploy.sh를 다시 실행하세요(roles/iam.workloadIdentityUser; IAM "
                "Credentials API가 사용 설정되어 있어야 합니다; ./deploy.sh 뒤 IAM이 적용되기까지 "
                "1분쯤 걸립니다)",
                "this repository may not act as that account: add it to GITHUB_REPOSITORY in "
                "deploy.env and run ./deploy.sh again (roles/iam.workloadIdentityUser; the IAM "
                "Credentials API must be enabled; allow a minute after ./deploy.sh for IAM to "
                "apply)",
            ),
            languages,
            sleep,
        )


def _call(
    step: Words,
    send: Callable[[], Any],
    field_name: str,
    fix: Words,
    languages: Languages,
    sleep: Callable[[float], None],
) -> str:
    """One step's value; its 4xx is the caller's set-up (``fix``), its 429/5xx or silence an
    outage, tried again and then named as one."""
    import requests

    failure = Words("", "")
    for _ in Retry.linear(RETRY_PAUSE_SECONDS, ATTEMPTS).attempts(sleep=sleep):
        try:
            response = send()
        except requests.RequestException as exc:
            name = type(exc).__name__
            failure = Words(f"{name}: 응답 없음", f"{name}: no answer")
            continue
        try:
            body = response.json()
        except ValueError:
            body = None
        value = body.get(field_name) if isinstance(body, dict) else None
        if response.status_code == 200 and isinstance(value, str) and value:
            return value
        said = _google_words(body)
        status = f"HTTP {response.status_code}"
        if response.status_code == 429 or response.status_code >= 500:
            failure = Words(f"{status}: {said.ko}", f"{status}: {said.en}")
            continue
        refused = Words(
            f"{step.ko} 요청 실패({status}: {said.ko}): {fix.ko}",
            f"{step.en} failed ({status}: {said.en}): {fix.en}",
        )
        raise ConfigError(refused.said(languages))
    silent = Words(
        f"{step.ko} 요청에 답이 없습니다({failure.ko}, {ATTEMPTS}번 시도): GitHub나 Google의 "
        "서비스가 실패하고 있거나 닿지 않습니다. 나중에 워크플로를 다시 실행하세요",
        f"{step.en} did not answer ({failure.en}, {ATTEMPTS} attempts): GitHub's or Google's "
        "service is failing or unreachable; run the workflow again later",
    )
    raise EndpointUnreachable(silent.said(languages))


def _google_words(body: object) -> Words:
    """Google's (or GitHub's) own explanation, whole (it never holds a token), in its own
    language; ours when it gives none."""
    if not isinstance(body, dict):
        return Words("JSON 아님", "no JSON")
    error = body.get("error")
    if isinstance(error, dict):  # Google APIs: {"error": {"code", "message", "status"}}
        google = f"{error.get('status', '')} {error.get('message', '')}".strip()
        return Words(google, google)
    words = [
        str(body.get(key)) for key in ("error", "error_description", "message") if body.get(key)
    ]
    said = ": ".join(words)
    return Words(said, said) if said else Words("설명 없음", "no explanation")
