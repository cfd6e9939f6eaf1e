"""Trying a call again: how many attempts, the pause before each, and the time they must fit.

Use it for a call that may fail for a moment and is safe to make again (Kakao, the token
endpoint, a Cloud Storage read, Google's and GitHub's token services). The call site keeps what
only it knows (which failures are worth another attempt, what to raise once none is left); this
module owns the counting, the pauses and the budget::

    failure = None
    for attempt in Retry((0.5, 1.5)).attempts(sleep=clock.sleep, time_left=deadline.remaining):
        try:
            return call()
        except TemporaryFault as exc:  # any other failure ends the loop at once
            failure = exc
    raise Unavailable(f"{failure}; {attempt} attempts") from failure

The first attempt is always made: whether even that one fits the time left is the caller's to
decide (Kakao's client raises DeadlineReached instead). Another attempt follows a failure only
while pauses are left (a sequence of N pauses allows N + 1 attempts; ``Retry.doubling`` never
runs out) and while the budget allows it: ``time_left()`` is asked just before the pause, and
the pause is taken only if at least ``min_attempt_seconds`` remain after it. So no pause ends
past the budget, and no attempt starts that could not do its work. Each attempt's own timeout
is the caller's to cut to what is left. Every pause goes through the injected ``sleep``, so
tests pass a fake clock and never wait.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Retry:
    """The pauses between attempts (a sequence, or ``Retry.doubling``'s endless ones) and the
    least time an attempt needs to be worth starting."""

    pauses: Iterable[float]  # read afresh by every attempts(): a tuple, not a generator
    min_attempt_seconds: float = 0.0

    @classmethod
    def linear(cls, step: float, attempts: int, min_attempt_seconds: float = 0.0) -> Retry:
        """At most ``attempts`` attempts, pausing ``step``, then twice it, three times..."""
        return cls(tuple(step * n for n in range(1, attempts)), min_attempt_seconds)

    @classmethod
    def doubling(
        cls,
        first: float,
        longest: float,
        *,
        jitter: float = 0.0,
        min_attempt_seconds: float = 0.0,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> Retry:
        """Attempts until the budget ends, pausing ``first`` and doubling up to ``longest``;
        each pause cut by a random fraction of at most ``jitter`` (0.5: to between half and all
        of it), so that many callers that failed together do not come back together."""
        return cls(_Doubling(first, longest, jitter, uniform), min_attempt_seconds)

    def attempts(
        self, *, sleep: Callable[[float], None], time_left: Callable[[], float] | None = None
    ) -> Iterator[int]:
        """The attempt numbers (1, 2, ...), sleeping the pause before each but the first; stops
        when the pauses run out, or when after the next one fewer than ``min_attempt_seconds``
        of ``time_left()`` would remain (None: no time limit)."""
        yield 1
        for attempt, pause in enumerate(self.pauses, start=2):
            if time_left is not None and time_left() - pause < self.min_attempt_seconds:
                return
            sleep(pause)
            yield attempt


@dataclass(frozen=True)
class _Doubling:
    """Endless pauses: ``first``, doubling up to ``longest``, each cut by up to ``jitter``."""

    first: float
    longest: float
    jitter: float
    uniform: Callable[[float, float], float] = field(repr=False, compare=False)

    def __iter__(self) -> Iterator[float]:
        pause = self.first
        while True:
            yield pause * self.uniform(1.0 - self.jitter, 1.0) if self.jitter else pause
            pause = min(pause * 2, self.longest)
