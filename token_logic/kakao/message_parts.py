"""A text of any length as KakaoTalk messages: Kakao's text template takes at most 200
characters, so a longer text goes in numbered parts, ``(1/3) ...``, each at most 200 characters
with its number, cut at a line break or a space where one is near the end of a part.

Characters are counted as UTF-16 code units, as a Java string counts them: one per Korean or
Latin character (what Python's ``len`` counts too), two for a character outside the Basic
Multilingual Plane such as most emoji. Kakao does not say how it counts; counting an emoji as
two can only make a part shorter than it could be, never longer than Kakao takes. A part never
cuts a character in half, though it may cut between the pieces of a composed emoji.
"""

from __future__ import annotations

MAX_PART_LENGTH = 200  # Kakao's limit for a text template's text
# A text that makes more parts is refused unless the caller says to send them all: 20 parts use
# up the sender/owner pair's daily quota (20, KAKAO_API.md §10), so the next real alert would
# fail until midnight KST, and a text may come from anyone (an issue title in a workflow).
# Refused, not cut short: an alert that silently loses its end is worse than one that fails.
MAX_PARTS = 5
# A cut at whitespace is taken only in the last half of a part: earlier, a hard cut wastes less.
_CUT_AT_WHITESPACE_FROM = 0.5


def kakao_length(text: str) -> int:
    """The text's length as Kakao may count it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def numbered_parts(text: str, limit: int = MAX_PART_LENGTH) -> list[str]:
    """The text as it is when it fits in one message; else numbered parts ``(i/n) ``, each at
    most ``limit`` long with its number, together the whole text (the whitespace at a cut is
    where one part ends and the next begins)."""
    if kakao_length(text) <= limit:
        return [text]
    count = 2
    while True:
        # Every number is given the width of the largest, so each part surely fits.
        pieces = _pieces(text, limit - kakao_length(_number(count, count)))
        if len(pieces) <= count:
            total = len(pieces)
            return [_number(index, total) + piece for index, piece in enumerate(pieces, 1)]
        count = len(pieces)


def too_many_parts(text: str, option: str) -> str:
    """Why ``text`` is not sent without ``option`` (the caller's way to say "all parts": it
    makes more than MAX_PARTS parts), or "" when it is within the limit."""
    count = len(numbered_parts(text))
    if count <= MAX_PARTS:
        return ""
    return (
        f"the text makes {count} messages of at most {MAX_PART_LENGTH} characters, more than "
        f"the limit of {MAX_PARTS}: shorten it, or give {option} to send them all (Kakao lets "
        "the sender send the owner 20 messages a day)"
    )


def _number(index: int, total: int) -> str:
    return f"({index}/{total}) "


def _pieces(text: str, capacity: int) -> list[str]:
    pieces: list[str] = []
    rest = text
    while kakao_length(rest) > capacity:
        fits = _fitting(rest, capacity)
        cut = _whitespace_cut(rest, fits)
        if cut is None:
            pieces.append(rest[:fits])
            rest = rest[fits:]
        else:
            pieces.append(rest[:cut])
            rest = rest[cut + 1 :]  # the whitespace at the cut separates the two parts
    if rest:
        pieces.append(rest)
    return pieces


def _fitting(text: str, capacity: int) -> int:
    """How many characters from the start of ``text`` fit in ``capacity`` code units."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > capacity:
            return index
    return len(text)


def _whitespace_cut(text: str, fits: int) -> int | None:
    """Where to cut among the first ``fits`` characters (the one right after them counts: a
    part may end just before it): the last line break, else the last whitespace, in the
    part's last half; None when there is none."""
    window = text[: fits + 1]
    earliest = max(1, int(fits * _CUT_AT_WHITESPACE_FROM))
    newline = window.rfind("\n")
    if newline >= earliest:
        return newline
    for index in range(len(window) - 1, earliest - 1, -1):
        if window[index].isspace():
            return index
    return None
