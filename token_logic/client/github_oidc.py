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
_SETUP = "deploy.sh with GITHUB_REPOSITORY=owner/repo sets this up and prints the values"


@dataclass(frozen=True)
class GitHubFederation:
    """What the exchange needs, read once from the job's environment."""

    provider: str
    service_account: str
    request_url: str = ""
    request_token: str = field(default="", repr=False)
    sts_url: str = STS_URL
    iam_credentials_url: str = IAM_CREDENTIALS_URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GitHubFederation | None:
        """None when neither variable is set; a ConfigError when only one is, or one is
        malformed (the project *number* is the usual slip)."""
        provider = environ.get(PROVIDER_VARIABLE, "").strip()
        account = environ.get(ACCOUNT_VARIABLE, "").strip()
        if not provider and not account:
            return None
        if not provider or not account:
            missing = PROVIDER_VARIABLE if not provider else ACCOUNT_VARIABLE
            raise ConfigError(
                f"{missing} is not set: workload identity needs both {PROVIDER_VARIABLE} "
                f"(the action's workload_identity_provider) and {ACCOUNT_VARIABLE} "
                f"(service_account); {_SETUP}",
                (missing,),
            )
        if not _PROVIDER.fullmatch(provider):
            raise ConfigError(
                f"{PROVIDER_VARIABLE} must look like projects/123456789012/locations/global/"
                "workloadIdentityPools/POOL/providers/PROVIDER, with the project number (not "
                f"its id); {_SETUP}",
                (PROVIDER_VARIABLE,),
            )
        if not _ACCOUNT.fullmatch(account):
            raise ConfigError(
                f"{ACCOUNT_VARIABLE} must be a service account's email "
                f"(NAME@PROJECT.iam.gserviceaccount.com); {_SETUP}",
                (ACCOUNT_VARIABLE,),
            )
        return cls(
            provider=provider,
            service_account=account,
            request_url=_github_url(environ),
            request_token=environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", ""),
            sts_url=_google_url(environ, "KAKAO_TOKEN_STS_URL", STS_URL),
            iam_credentials_url=_google_url(
                environ, "KAKAO_TOKEN_IAM_CREDENTIALS_URL", IAM_CREDENTIALS_URL
            ).rstrip("/"),
        )


def _google_url(environ: Mapping[str, str], variable: str, default: str) -> str:
    """Google's endpoint, or another of Google's hosts (Private Service Connect), or this
    machine (tests): GitHub's OIDC token and the federated token go there, so never elsewhere,
    and the host is the one requests connects to (checks.destination)."""
    url = environ.get(variable, "").strip() or default
    must_be = f"{variable} must be an https://...googleapis.com URL (or unset)"
    where = configured_destination(variable, url, must_be)
    google = where.scheme == "https" and (
        where.host == "googleapis.com" or where.host.endswith(".googleapis.com")
    )
    if not google and not where.on_this_machine:
        raise ConfigError(must_be, (variable,))
    return url


def _github_url(environ: Mapping[str, str]) -> str:
    """Where GitHub's OIDC request token goes: GitHub Actions sets the URL, https ("" when
    the job may not ask; federated_id_token says so)."""
    url = environ.get(REQUEST_URL_VARIABLE, "").strip()
    if url:
        must_be = (
            f"{REQUEST_URL_VARIABLE} must be the https:// URL GitHub Actions sets (leave it to "
            "the runner)"
        )
        if not configured_destination(REQUEST_URL_VARIABLE, url, must_be).never_in_clear_text:
            raise ConfigError(must_be, (REQUEST_URL_VARIABLE,))
    return url


def federated_id_token(
    federation: GitHubFederation,
    audience: str,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """A Google ID token for ``audience`` (the token endpoint), naming the service account."""
    import requests

    if not federation.request_url or not federation.request_token:
        raise ConfigError(
            "GitHub gave this job no OIDC token: add `permissions: id-token: write` to the "
            "workflow (or the job), and run it on GitHub Actions (ACTIONS_ID_TOKEN_REQUEST_URL "
            "is not set)",
        )
    with requests.Session() as http:
        github = _call(
            "GitHub's OIDC token",
            lambda: http.get(
                federation.request_url,
                params={"audience": f"https://iam.googleapis.com/{federation.provider}"},
                headers={"Authorization": f"Bearer {federation.request_token}"},
                timeout=TIMEOUT,
            ),
            "value",
            "check `permissions: id-token: write`",
            sleep,
        )
        federated = _call(
            "Google STS (workload identity)",
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
            "is this repository in GITHUB_REPOSITORY of deploy.env, and the provider the one "
            "./deploy.sh printed?",
            sleep,
        )
        return _call(
            f"IAM Credentials for {federation.service_account}",
            lambda: http.post(
                f"{federation.iam_credentials_url}/projects/-/serviceAccounts/"
                f"{federation.service_account}:generateIdToken",
                json={"audience": audience, "includeEmail": True},
                headers={"Authorization": f"Bearer {federated}"},
                timeout=TIMEOUT,
            ),
            "token",
            "this repository may not act as that account: add it to GITHUB_REPOSITORY in "
            "deploy.env and run ./deploy.sh again (roles/iam.workloadIdentityUser; the IAM "
            "Credentials API must be enabled; allow a minute after ./deploy.sh for IAM to apply)",
            sleep,
        )


def _call(
    step: str,
    send: Callable[[], Any],
    field_name: str,
    fix: str,
    sleep: Callable[[float], None],
) -> str:
    """One step's value; its 4xx is the caller's set-up (``fix``), its 429/5xx or silence an
    outage, tried again and then named as one."""
    import requests

    failure = ""
    for _ in Retry.linear(RETRY_PAUSE_SECONDS, ATTEMPTS).attempts(sleep=sleep):
        try:
            response = send()
        except requests.RequestException as exc:
            failure = f"{type(exc).__name__}: no answer"
            continue
        try:
            body = response.json()
        except ValueError:
            body = None
        value = body.get(field_name) if isinstance(body, dict) else None
        if response.status_code == 200 and isinstance(value, str) and value:
            return value
        words = f"HTTP {response.status_code}: {_google_words(body)}"
        if response.status_code == 429 or response.status_code >= 500:
            failure = words
            continue
        raise ConfigError(f"{step} failed ({words}): {fix}")
    raise EndpointUnreachable(
        f"{step} did not answer ({failure}, {ATTEMPTS} attempts): GitHub's or Google's "
        "service is failing or unreachable; run the workflow again later"
    )


def _google_words(body: object) -> str:
    """Google's (or GitHub's) own explanation, whole: it never holds a token."""
    if not isinstance(body, dict):
        return "no JSON"
    error = body.get("error")
    if isinstance(error, dict):  # Google APIs: {"error": {"code", "message", "status"}}
        return f"{error.get('status', '')} {error.get('message', '')}".strip()
    words = [
        str(body.get(key)) for key in ("error", "error_description", "message") if body.get(key)
    ]
    return ": ".join(words) or "no explanation"
