"""The one place time is read (and waited on), so tests pass literal times and never sleep;
and how a time is shown to a person."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Protocol

KST = timezone(timedelta(hours=9), "KST")
# An access token handed to a script lives at least this long unless it asks otherwise.
DEFAULT_ACCESS_TOKEN_LEEWAY = 300


class Clock(Protocol):
    """Current Unix time in whole seconds, and a way to wait."""

    def now(self) -> int:
        """Seconds since the epoch."""
        ...

    def time(self) -> float:
        """Seconds since the epoch, with a fraction (deadlines)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait (tests advance a fake clock instead)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> int:
        return int(time.time())

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def format_time(unix_seconds: int) -> str:
    """Korean time, which our users read first, with the UTC offset spelled out."""
    return datetime.fromtimestamp(unix_seconds, KST).strftime("%Y-%m-%d %H:%M KST")
