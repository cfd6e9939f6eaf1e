"""After a failed refresh, a pause per login, kept in its document so every instance honours it.

Kakao counts calls per user (20 access tokens per 10 minutes, 30 refresh tokens per hour;
KAKAO_API.md), and a failing Kakao must not be asked again by every caller. So a refresh that
Kakao refused or could not answer leaves ``refresh_backoff: {"until", "code", "status",
"failures"}`` in the document, written as the lease is given back; until then no instance calls
Kakao for that login. Callers get the same failure with ``Retry-After`` (429 or 5xx), or the
stored access token when it still lives as long as they asked. The next success removes it.

How long, by what Kakao said (``failures`` counts the failures in a row):
- KOE237 or -10, rate limit: 10 minutes, doubling to an hour (Kakao's windows are 10 and 60);
- KOE003, -1, -9798, 5xx, no answer: 10 s, tripling to 15 minutes (a refresh tries Kakao up to
  three times, so a whole hour of faults stays under 30 calls);
- anything else (a wrong key or secret: the operator must act): 5 minutes, doubling to an hour;
- never shorter than a ``Retry-After`` Kakao sent, never longer than an hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from ..budget import LONGEST_WAIT_SECONDS
from ..errors import KakaoError, KakaoTokenError, KakaoUnavailable
from ..kakao.codes import RATE_LIMIT_CODES, TEMPORARY_CODES

# (first pause, growth per failure in a row, longest pause), in seconds
_RATE_LIMITED = (600, 2, 3600)
_TEMPORARY = (10, 3, 900)
_REFUSED = (300, 2, 3600)
LONGEST_PAUSE_SECONDS = LONGEST_WAIT_SECONDS
_UNAVAILABLE_REASONS = frozenset({"timeout", "unreachable", "server_error", "bad_response"})


@dataclass(frozen=True)
class Backoff:
    """No Kakao call for this login before ``until``; ``code`` is what Kakao last said."""

    until: int
    code: str
    status: int
    failures: int

    @classmethod
    def of(cls, fields: Mapping[str, Any], now: int | None = None) -> Backoff | None:
        """The document's pause, or None (also for a malformed one: never block on garbage)."""
        raw = fields.get("refresh_backoff")
        if not isinstance(raw, dict):
            return None
        until, status, failures = raw.get("until"), raw.get("status"), raw.get("failures")
        if not (_whole(until) and _whole(status) and _whole(failures)):
            return None
        # A pause ending further ahead than the longest we ever set was set by no one (a clock
        # far ahead, a hand edit): it is no pause, or it would hold the login off for good
        # (a cap that moves with the clock never ends) and let its refresh token die.
        if now is not None and until > now + LONGEST_PAUSE_SECONDS:
            return None
        return cls(
            until=until,
            code=str(raw.get("code", "")),
            status=status,
            failures=min(max(failures, 0), 64),
        )

    def field(self) -> dict[str, Any]:
        return {
            "until": self.until,
            "code": self.code,
            "status": self.status,
            "failures": self.failures,
        }

    def error(self, now: int) -> KakaoTokenError:
        """The failure a caller gets while the pause lasts, with when to try again."""
        wait = max(1, self.until - now)
        if self.code in _UNAVAILABLE_REASONS:
            return KakaoUnavailable(
                self.code, f"paused after the last failure; retry in {wait} s", retry_after=wait
            )
        return KakaoError(self.status, "", self.code, retry_after=float(wait))


def backoff_after(
    exc: KakaoError | KakaoUnavailable, previous: Backoff | None, now: int
) -> Backoff:
    """The pause after a refresh that failed with ``exc``; longer for failures in a row."""
    failures = (previous.failures if previous is not None else 0) + 1
    if isinstance(exc, KakaoUnavailable):
        code, status, plan = exc.reason, 503, _TEMPORARY
    else:
        code, status = exc.code, exc.status
        if exc.code in RATE_LIMIT_CODES:
            plan = _RATE_LIMITED
        elif exc.code in TEMPORARY_CODES or exc.status >= 500:
            plan = _TEMPORARY
        else:
            plan = _REFUSED
    first, growth, longest = plan
    seconds = min(first * growth ** min(failures - 1, 16), longest)
    if exc.retry_after:
        # Kakao's word, within reason: a pause past LONGEST_PAUSE_SECONDS would let the
        # refresh token (2 months) die unrefreshed behind an odd Retry-After.
        seconds = min(max(seconds, int(exc.retry_after)), LONGEST_PAUSE_SECONDS)
    return Backoff(until=now + seconds, code=code, status=status, failures=failures)


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
