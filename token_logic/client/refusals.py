"""Why the token endpoint refused a caller, told from the caller's own ID token.

Cloud Run answers a refused caller with its own HTML 401 or 403, which says nothing useful; the
ID token's claims (read, not verified: Cloud Run has judged it, this only explains) tell which
fix applies: a fresh token, the right audience, or the identity added to TOKEN_READERS. A token
given by hand for another URL is not sent at all. Never the token itself in a message.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from ..checks import json_object
from ..clock import format_time
from ..errors import ConfigError

GITHUB_READER_PREFIX = "kakao-token-github@"  # the account deploy.sh makes for GitHub


def check_audience(id_token: str, source: str, audience: str) -> None:
    """A token given by hand for another URL is not sent at all: it would open that other
    service to whoever runs this URL."""
    if source != "KAKAO_TOKEN_ID_TOKEN":
        return
    claims = unverified_claims(id_token)
    issued_for = claims.get("aud") if claims else None
    if isinstance(issued_for, str) and issued_for.rstrip("/") != audience:
        raise ConfigError(
            f"KAKAO_TOKEN_ID_TOKEN was issued for the audience {issued_for}, not for "
            f"{audience}; it was not sent. Fetch one with the audience {audience}.",
            ("KAKAO_TOKEN_ID_TOKEN",),
        )


def refusal_message(url: str, audience: str, source: str, status: int, id_token: str) -> str:
    """Why Cloud Run refused the caller, and the fix, from the ID token's own claims (read, not
    verified: only to explain; Cloud Run has judged it). Never the token itself."""
    claims = unverified_claims(id_token)
    where = f"the ID token from {source}"
    if claims is None:
        return (
            f"Cloud Run refused {where} (HTTP {status}): it is not a Google ID token. "
            + _fresh_token_hint(source, audience)
        )
    expires_at = claims.get("exp")
    if isinstance(expires_at, int) and expires_at <= time.time():
        return (
            f"Cloud Run refused {where} (HTTP {status}): it expired at "
            f"{format_time(expires_at)}. " + _fresh_token_hint(source, audience)
        )
    issued_for = claims.get("aud")
    if status == 401 and issued_for != audience:
        return (
            f"Cloud Run refused {where} (HTTP 401): it was issued for the audience "
            f"{issued_for!s}, and this endpoint needs {audience}. "
            + _fresh_token_hint(source, audience)
        )
    if status == 401:
        return (
            f"Cloud Run refused {where} (HTTP 401): not accepted as a Google ID token for "
            f"{audience}. " + _fresh_token_hint(source, audience)
        )
    email = claims.get("email")
    if not isinstance(email, str) or not email:
        return (
            f"Cloud Run refused {where} (HTTP 403): the token names no email, so its identity "
            "cannot be among the readers; ask for an ID token that includes the email "
            "(google-github-actions/auth: id_token_include_email: true)."
        )
    if email.startswith(GITHUB_READER_PREFIX):
        return (
            f"Cloud Run refused {email} (HTTP 403): it may not call {url}. That is the "
            "GitHub reader account deploy.sh made: run ./deploy.sh again with this repository "
            "in GITHUB_REPOSITORY (it grants roles/run.invoker on kakao-token), and allow a "
            "minute for IAM to apply."
        )
    kind = "serviceAccount" if email.endswith(".gserviceaccount.com") else "user"
    return (
        f"Cloud Run refused {email} (HTTP 403): it may not call {url}. Add "
        f"{kind}:{email} to TOKEN_READERS in deploy.env and run ./deploy.sh again (it grants "
        "roles/run.invoker on kakao-token; allow a minute for IAM to apply)."
    )


def _fresh_token_hint(source: str, audience: str) -> str:
    if source == "KAKAO_TOKEN_ID_TOKEN":
        return (
            f"Fetch a fresh one for each run, with the audience {audience} (an ID token lives "
            "one hour), and put it in KAKAO_TOKEN_ID_TOKEN."
        )
    if source == "gcloud":
        return "Run `gcloud auth login` again, then retry."
    return f"Check the identity's set-up ({source}) and that the audience is {audience}."


def unverified_claims(id_token: str) -> dict[str, Any] | None:
    """The payload of a JWT, unverified; None when it is not one."""
    parts = id_token.split(".")
    if len(parts) != 3:  # header.payload.signature
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
    except (ValueError, TypeError):
        return None
    return json_object(payload)
