"""The subject of an OpenID Connect ID token received straight from Kakao's token endpoint.

Received over TLS from the token endpoint, the signature check may be skipped (OIDC Core
3.1.3.7), but issuer, audience, expiry and nonce are still checked.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ..checks import is_decimal
from ..errors import KakaoUnavailable

LEEWAY_SECONDS = 60


def id_token_subject(id_token: str, *, issuer: str, audience: str, nonce: str, now: int) -> int:
    """The Kakao user id in ``sub``, after checking ``iss``, ``aud``, ``exp`` and ``nonce``."""
    claims = _claims(id_token)
    audiences = claims.get("aud")
    audience_ok = audience == audiences or (isinstance(audiences, list) and audience in audiences)
    checks = {
        "iss": claims.get("iss") == issuer,
        "aud": audience_ok,
        "exp": isinstance(claims.get("exp"), int) and claims["exp"] + LEEWAY_SECONDS > now,
        # The nonce we sent must come back; a token without it may be replayed from elsewhere.
        "nonce": claims.get("nonce") == nonce if nonce else "nonce" not in claims,
        "sub": is_decimal(str(claims.get("sub", ""))),
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise KakaoUnavailable("bad_response", "ID token failed checks: " + ", ".join(failed))
    return int(claims["sub"])


def _claims(id_token: str) -> dict[str, Any]:
    parts = id_token.split(".")
    if len(parts) != 3:
        raise KakaoUnavailable("bad_response", "ID token is not a JWT")
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError) as exc:
        raise KakaoUnavailable("bad_response", "ID token payload is not JSON") from exc
    if not isinstance(claims, dict):
        raise KakaoUnavailable("bad_response", "ID token payload is not an object")
    return claims
