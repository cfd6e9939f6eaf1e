"""Asking Kakao, with no user, whether the app's console settings are right, and reading its
answers (../shared/KAKAO_API.md §1-3). Standard library only (urllib): deploy.sh runs the
doctor (doctor.py) with ``python3 -P -S``, where requests is not importable.

Two questions. A token call with a made-up code: Kakao checks the client before the code, so
the answer is KOE320 (no such code) once the REST API key (KOE101 otherwise) and the client
secret (KOE010) are right. And an authorize request, not followed: a Redirect URI that is not
registered for the key is Kakao's own page with KOE006; a registered one sends the browser on to
Kakao's login. What exactly Kakao's pages look like is not documented (unconfirmed): an answer
read here as neither is UNKNOWN, never a failure. No answer body is ever kept or shown.
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import unquote, urlencode

OK = "ok"
FAIL = "fail"
UNKNOWN = "unknown"
TIMEOUT_SECONDS = 10.0
# Sent as the token call's redirect_uri when none is known yet (before the first deploy): a
# made-up code fails (KOE320) before any Redirect URI comparison (KOE303) is made.
PLACEHOLDER_REDIRECT_URI = "https://localhost/kakao-token-doctor"
_KOE = re.compile(r"KOE\d{3}")
_MAX_BODY_BYTES = 64 * 1024
_FORM = "application/x-www-form-urlencoded;charset=utf-8"


@dataclass(frozen=True)
class Answer:
    """What Kakao answered: its HTTP status (0: no answer, ``reason`` says why), the KOE code it
    named (in a JSON body, a page or where it redirected; "" none), its ``error`` field and the
    redirect's Location."""

    status: int
    code: str = ""
    error: str = ""
    location: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Reading:
    """One setting's verdict: OK, FAIL or UNKNOWN, and the Kakao code that says so."""

    outcome: str
    code: str = ""


def token_answer(
    auth_base_url: str,
    rest_api_key: str,
    client_secret: str,
    redirect_uri: str,
    timeout: float = TIMEOUT_SECONDS,
) -> Answer:
    """Kakao's answer to exchanging a made-up code (it can only fail)."""
    form = {
        "grant_type": "authorization_code",
        "client_id": rest_api_key,
        "redirect_uri": redirect_uri or PLACEHOLDER_REDIRECT_URI,
        "code": "kakao-token-doctor-" + secrets.token_urlsafe(16),
    }
    if client_secret:
        form["client_secret"] = client_secret
    request = urllib.request.Request(  # noqa: S310 - http(s) only: _ask refuses the rest
        auth_base_url.rstrip("/") + "/oauth/token",
        data=urlencode(form).encode(),
        headers={"Content-Type": _FORM, "Accept": "application/json"},
        method="POST",
    )
    return _ask(request, timeout)


def authorize_answer(
    auth_base_url: str, rest_api_key: str, redirect_uri: str, timeout: float = TIMEOUT_SECONDS
) -> Answer:
    """Kakao's first answer to a browser starting a login (its redirect is not followed)."""
    query = urlencode(
        {"client_id": rest_api_key, "redirect_uri": redirect_uri, "response_type": "code"}
    )
    request = urllib.request.Request(  # noqa: S310 - http(s) only: _ask refuses the rest
        f"{auth_base_url.rstrip('/')}/oauth/authorize?{query}", headers={"Accept": "text/html"}
    )
    return _ask(request, timeout)


def read_token_answer(answer: Answer) -> dict[str, Reading]:
    """The key's, the secret's and (when Kakao said so) Kakao Login's verdicts."""
    code = answer.code
    if code == "KOE101":
        return {"key": Reading(FAIL, code), "secret": Reading(UNKNOWN)}
    if code == "KOE010":
        return {"key": Reading(OK), "secret": Reading(FAIL, code)}
    if code == "KOE004":
        return {"key": Reading(OK), "secret": Reading(UNKNOWN), "login": Reading(FAIL, code)}
    # Past the client checks, Kakao judges the code (KOE320) or its Redirect URI (KOE303).
    if answer.error == "invalid_grant" or code in ("KOE320", "KOE303"):
        return {"key": Reading(OK, code), "secret": Reading(OK, code)}
    return {"key": Reading(UNKNOWN, code), "secret": Reading(UNKNOWN, code)}


def read_authorize_answer(answer: Answer) -> dict[str, Reading]:
    """The Redirect URI's verdict (and Kakao Login's, when Kakao said it is off)."""
    code = answer.code
    if code in ("KOE006", "KOE101"):
        return {"redirect_uri": Reading(FAIL, code)}
    if code == "KOE004":
        return {"redirect_uri": Reading(UNKNOWN, code), "login": Reading(FAIL, code)}
    where = answer.location.lower()
    # On to Kakao's login (accounts.kakao.com/login?continue=…/oauth/authorize…) or consent.
    if (
        300 <= answer.status < 400
        and not code
        and "error" not in where
        and any(word in where for word in ("login", "authorize", "consent"))
    ):
        return {"redirect_uri": Reading(OK)}
    return {"redirect_uri": Reading(UNKNOWN, code)}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Leave a redirect unfollowed: urllib then raises it as an HTTPError, Location and all."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _ask(request: urllib.request.Request, timeout: float) -> Answer:
    if request.type not in ("http", "https"):  # never file: or another scheme urllib opens
        raise ValueError("Kakao's address must be an http(s) URL")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return _read(response.status, response.headers, response.read(_MAX_BODY_BYTES))
    except urllib.error.HTTPError as exc:
        with exc:
            return _read(exc.code, exc.headers, exc.read(_MAX_BODY_BYTES))
    except TimeoutError:
        return Answer(0, reason="timeout")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Answer(0, reason="timeout" if isinstance(reason, TimeoutError) else "unreachable")


def _read(status: int, headers: Message, raw: bytes) -> Answer:
    location = unquote(headers.get("Location", "") or "")
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("error_code") or "")
        error = str(body.get("error") or "")
    else:
        code, error = "", ""
    if not code:
        found = _KOE.search(location) or _KOE.search(text)
        code = found.group(0) if found else ""
    return Answer(status, code, error, location)
