"""The time budget of one request: every deadline, wait, retry and lease is derived here.

A request (a scheduled sweep, a token-endpoint call, a command) gets one ``Deadline`` a little
before the platform would cut it off, so that it can still answer with a clear 503 instead of
being killed mid-write. Inside it, with the defaults (function timeout 60 s, as deployed)::

    0 s ─ request starts
          read, claim the lease (storage; each call bounded by what is left)
          Kakao refresh attempts: each starts only if it can finish AND leave STORE_RESERVE
    ...   ─ Kakao answered: from here on the rotated refresh token exists only in our memory
          write the result, retried on storage faults until the deadline (>= 32 s of retrying)
   55 s ─ deadline: stop, answer 503 with Retry-After
   60 s ─ the platform's timeout

A lease ends at the holder's deadline plus ``CLOCK_SKEW_SECONDS``: it covers everything the
holder can still do (nothing of ours runs past its deadline) and never blocks others longer.
"""

from __future__ import annotations

from dataclasses import dataclass

from .clock import Clock

# The function's timeout as deployed (deploy.sh --timeout=60s); FUNCTION_TIMEOUT_SECONDS
# overrides it for other platforms.
DEFAULT_FUNCTION_TIMEOUT_SECONDS = 60
# The longest FUNCTION_TIMEOUT_SECONDS a deployment may set (config.py; Cloud Run's limit for an
# HTTP function is 60 minutes).
MAX_FUNCTION_TIMEOUT_SECONDS = 3600
# Kept back from the platform's timeout to answer (a 503 page or JSON) and log.
ANSWER_RESERVE_SECONDS = 5.0
# After Kakao answers, at least this long remains to store the result: a storage outage of
# 30 s right after a rotation loses nothing.
STORE_RESERVE_SECONDS = 32.0
# A Kakao attempt needs at least this long to be worth starting (connect + a slow answer).
MIN_KAKAO_ATTEMPT_SECONDS = 2.0
# Lease holders and waiters run on different machines whose clocks may differ this much.
CLOCK_SKEW_SECONDS = 5.0
# A login's work (exchange, who it is, the write) stops this long before the deadline, so that
# fresh tokens that could not be stored can still be logged out at Kakao (a read to make sure
# they did not land, then one Kakao call) and the person sees our page, not the platform's 504.
LOGIN_CLEANUP_SECONDS = 6.0
# Kakao waits 3 s for a webhook's answer (unlink, account status); its work stops before that.
UNLINK_WEBHOOK_SECONDS = 2.5
# Of those, what a webhook keeps for its storage work after asking Kakao (its keys, whether a
# stored token lives): a Cloud Storage call starts only with 1 s left (storage/gcs.py), and the
# delete (or the owner's marker) and then the event's jti marker must both start.
WEBHOOK_STORE_RESERVE_SECONDS = 1.2
# A webhook's one call to Kakao takes at most this long, and is not made with less to spare.
WEBHOOK_KAKAO_CALL_SECONDS = 1.0
WEBHOOK_MIN_KAKAO_CALL_SECONDS = 0.2
# How often a waiter re-reads a leased document, growing from the first to the last.
WAIT_STEPS_SECONDS = (0.1, 0.2, 0.4, 0.8)
# How long to wait after a storage fault before trying the write of a rotated token again.
STORE_RETRY_PAUSE_SECONDS = 1.0
# The longest any caller is told to wait (Retry-After): a login's longest pause after Kakao's
# failures (service/backoff.py); nothing we store or are sent may make it longer.
LONGEST_WAIT_SECONDS = 3600
# How many times in all a read-then-conditional-write of one document (a login, a logout, an
# ending) is tried while other writers land in between (WriteConflict). What races it is
# bookkeeping that is soon over: a refresh writes its lease, then its result or the release.
# Losing five times running means the document keeps changing: StorageError (a 503 the caller
# may try again) then beats spinning until the deadline, which bounds each try anyway.
MAX_CONFLICT_ATTEMPTS = 5


@dataclass(frozen=True)
class Deadline:
    """An absolute time (the clock's float seconds) by which a request's work must be done."""

    at: float
    clock: Clock

    @classmethod
    def after(cls, seconds: float, clock: Clock) -> Deadline:
        """The deadline ``seconds`` from now."""
        return cls(clock.time() + seconds, clock)

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - self.clock.time()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def earlier_by(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` before this one (to keep time back for a later step)."""
        return Deadline(self.at - seconds, self.clock)

    def leaves_room_for_refresh(self) -> bool:
        """Whether a Kakao call started now could finish and still be stored before this."""
        return self.remaining() >= MIN_KAKAO_ATTEMPT_SECONDS + STORE_RESERVE_SECONDS

    def webhook_kakao_seconds(self) -> float:
        """How long a webhook's call to Kakao (its keys, whether a token lives) may take, asked
        when the call starts: what the storage work after it needs is kept back; 0 when too
        little is left to be worth a call."""
        seconds = min(WEBHOOK_KAKAO_CALL_SECONDS, self.remaining() - WEBHOOK_STORE_RESERVE_SECONDS)
        return seconds if seconds >= WEBHOOK_MIN_KAKAO_CALL_SECONDS else 0.0

    def lease_until(self) -> int:
        """Where a lease taken under this deadline ends, in whole Unix seconds."""
        return int(self.at + CLOCK_SKEW_SECONDS) + 1


def longest_lease_seconds() -> float:
    """How far ahead of now a live lease can end: a holder that started just now ends it at its
    deadline plus the clock skew (lease_until), and no holder runs past the longest function
    timeout a deployment may set (MAX_FUNCTION_TIMEOUT_SECONDS: a command or a function with a
    longer timeout than the reader's may hold a lease longer than the reader ever would). A
    lease ending later was written by no one still working (a clock far off, a hand edit, a
    bug): it counts as expired, or it would hold every caller off for as long as it says."""
    return MAX_FUNCTION_TIMEOUT_SECONDS + CLOCK_SKEW_SECONDS + 1


def request_deadline(function_timeout_seconds: float, clock: Clock) -> Deadline:
    """The deadline of a request that started now on a platform with this timeout."""
    return Deadline.after(function_timeout_seconds - ANSWER_RESERVE_SECONDS, clock)
