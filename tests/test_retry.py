"""Retry: attempts counted, every pause slept through the injected sleep, and none begun that
the budget cannot hold."""

from __future__ import annotations

from tests.helpers import FakeClock
from token_logic.budget import Deadline
from token_logic.retry import Retry


def run(retry: Retry, clock: FakeClock, seconds: float | None = None) -> list[int]:
    """Every attempt a call that always fails gets, ``seconds`` from now (None: no limit)."""
    time_left = Deadline.after(seconds, clock).remaining if seconds is not None else None
    return list(retry.attempts(sleep=clock.sleep, time_left=time_left))


class Sleeps(FakeClock):
    """A fake clock that also keeps every pause it was asked to sleep."""

    def __init__(self) -> None:
        super().__init__(0)
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        super().sleep(seconds)


def test_a_sequence_of_pauses_allows_one_attempt_more() -> None:
    """Without a budget, N pauses give N + 1 attempts, numbered from 1."""
    assert run(Retry((0.5, 1.5)), Sleeps()) == [1, 2, 3]


def test_each_pause_goes_to_sleep_in_order() -> None:
    """The pauses are slept through the injected sleep, one before each attempt but the first."""
    clock = Sleeps()

    run(Retry((0.5, 1.5)), clock)

    assert clock.pauses == [0.5, 1.5]
    assert clock.current == 2.0


def test_no_pauses_means_one_attempt() -> None:
    """An empty sequence of pauses: the one attempt, and no sleep."""
    clock = Sleeps()

    assert run(Retry(()), clock) == [1]
    assert clock.pauses == []


def test_a_caller_that_succeeds_stops_the_pauses() -> None:
    """Leaving the loop (a success, a failure not worth retrying) sleeps nothing more."""
    clock = Sleeps()

    for _ in Retry((0.5, 1.5)).attempts(sleep=clock.sleep):
        break

    assert clock.pauses == []


def test_stops_when_the_next_pause_would_leave_too_little_time() -> None:
    """Another attempt only if, after its pause, ``min_attempt_seconds`` are still left."""
    clock = Sleeps()
    retry = Retry((1.0, 2.0, 4.0), min_attempt_seconds=1.0)

    attempts = run(retry, clock, seconds=5.0)

    # 5 s left: pause 1 (4 left); then pause 2 (2 left); then pause 4 would leave none.
    assert attempts == [1, 2, 3]
    assert clock.pauses == [1.0, 2.0]


def test_a_pause_that_just_fits_is_taken() -> None:
    """Exactly ``min_attempt_seconds`` left after the pause is enough."""
    clock = Sleeps()

    attempts = run(Retry((0.5,), min_attempt_seconds=2.0), clock, seconds=2.5)

    assert attempts == [1, 2]
    assert clock.pauses == [0.5]


def test_no_pause_ends_past_the_budget() -> None:
    """With no minimum, a pause is taken only if it ends within the budget."""
    clock = Sleeps()

    attempts = run(Retry((1.0, 1.0, 1.0)), clock, seconds=2.5)

    assert attempts == [1, 2, 3]
    assert clock.current <= 2.5


def test_the_first_attempt_is_made_even_with_no_time_left() -> None:
    """The first attempt never waits on the budget: whether it may start is the caller's call."""
    clock = Sleeps()

    attempts = run(Retry((0.5, 1.5), min_attempt_seconds=2.0), clock, seconds=-1.0)

    assert attempts == [1]
    assert clock.pauses == []


def test_the_time_left_is_asked_only_before_a_pause() -> None:
    """``time_left`` is read once per pause due, not after the last attempt."""
    clock = Sleeps()
    asked: list[float] = []

    def time_left() -> float:
        asked.append(clock.current)
        return 100.0

    list(Retry((0.5, 1.5)).attempts(sleep=clock.sleep, time_left=time_left))

    assert asked == [0.0, 0.5]


def test_linear_pauses_grow_by_one_step_each() -> None:
    """``Retry.linear(step, n)``: n attempts, pausing step, 2 step, 3 step..."""
    clock = Sleeps()

    attempts = run(Retry.linear(2.0, 4), clock)

    assert attempts == [1, 2, 3, 4]
    assert clock.pauses == [2.0, 4.0, 6.0]


def test_doubling_pauses_grow_to_the_longest_and_last_until_the_budget() -> None:
    """``Retry.doubling``: first, doubled up to the longest, attempts ended only by the budget."""
    clock = Sleeps()

    attempts = run(Retry.doubling(1.0, 4.0), clock, seconds=16.0)

    # 15 s of pauses; a sixth of 4 s would end past the 16 s.
    assert clock.pauses == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert attempts == [1, 2, 3, 4, 5, 6]


def test_jitter_cuts_each_pause_by_a_random_fraction() -> None:
    """``jitter=0.5`` draws each pause's factor from [0.5, 1.0], when the pause is due; the
    doubling goes on from the pause before its cut."""
    clock = Sleeps()
    drawn: list[tuple[float, float]] = []

    def lowest(low: float, high: float) -> float:
        drawn.append((low, high))
        return low

    retry = Retry.doubling(1.0, 60.0, jitter=0.5, uniform=lowest)
    attempts = retry.attempts(sleep=clock.sleep)
    next(attempts)

    assert drawn == []
    assert [next(attempts) for _ in range(3)] == [2, 3, 4]
    assert clock.pauses == [0.5, 1.0, 2.0]
    assert drawn == [(0.5, 1.0)] * 3


def test_without_jitter_nothing_is_drawn() -> None:
    """No jitter, no random draw: the pauses are exactly as given."""

    def never(low: float, high: float) -> float:
        raise AssertionError("drawn")

    clock = Sleeps()

    run(Retry.doubling(0.25, 1.0, uniform=never), clock, seconds=2.0)

    assert clock.pauses == [0.25, 0.5, 1.0]


def test_one_policy_serves_many_calls() -> None:
    """A policy is a value: every ``attempts()`` starts again from its first pause."""
    retry = Retry.doubling(1.0, 8.0)
    first, second = Sleeps(), Sleeps()

    run(retry, first, seconds=4.0)
    run(retry, second, seconds=4.0)

    assert first.pauses == second.pauses == [1.0, 2.0]
