"""Acting on Kakao's account events (service/account_events.py): every event after which Kakao
takes a user's tokens back has the reason the owner's marker names (the webhook's tests walk
each one: tests/web/test_account_status.py)."""

from __future__ import annotations

from token_logic.kakao.events import ENDING_EVENTS
from token_logic.service.account_events import _MARKER_REASONS


def test_each_token_ending_event_has_one_marker_reason() -> None:
    """A token-ending event the marker had no word for would fail the webhook with a 500."""
    events = [uri for uri, _ in _MARKER_REASONS]

    assert sorted(events) == sorted(ENDING_EVENTS)
