"""One small test for text that must be a whole number."""

from __future__ import annotations


def is_decimal(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` alone accepts "²" and other digits ``int`` refuses."""
    return text.isascii() and text.isdigit()
