"""The one place time is read (and waited on), so tests pass literal times and never sleep."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Current Unix time in whole seconds, and a way to wait."""

    def now(self) -> int:
        """Seconds since the epoch."""

    def time(self) -> float:
        """Seconds since the epoch, with a fraction (deadlines)."""

    def sleep(self, seconds: float) -> None:
        """Wait (tests advance a fake clock instead)."""


class SystemClock:
    """The real clock."""

    def now(self) -> int:
        return int(time.time())

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
