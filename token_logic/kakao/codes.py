"""Kakao's error codes that say "wait" rather than "fix something" (../shared/KAKAO_API.md §3,
§8): one vocabulary for the pause a login takes (service/backoff.py) and the status a caller
sees (problems.py), so the two cannot disagree."""

from __future__ import annotations

# Too many calls for this user or app: KOE237 (auth), -10 (API).
RATE_LIMIT_CODES = frozenset({"KOE237", "-10"})
# A fault on Kakao's side, worth trying again later: KOE003 (auth), -1 and -9798 (API).
TEMPORARY_CODES = frozenset({"KOE003", "-1", "-9798"})
# Of those, what one call tries again after a short pause (kakao/api.py): maintenance (-9798)
# lasts longer than any call may wait, so it only pauses the login (service/backoff.py).
RETRIED_IN_A_CALL = TEMPORARY_CODES - {"-9798"}
