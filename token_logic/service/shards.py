"""How the scheduled sweep splits the documents into shards: by the last digits of the user id.

``REFRESH_SHARDS=N`` makes N scheduler jobs, each calling ``?shard=I/N``. A shard must list only
its own documents (listing the whole bucket and filtering afterwards costs every shard the whole
bucket), so the split is one a listing can ask for: Cloud Storage filters names by a glob on its
side (``matchGlob``), and the local file store tests the same rule before reading a file.

The rule looks at the last k digits of the user id in the name, read backwards (the last digit
first), as a number from 0 to 10^k - 1; shard I holds the I-th of N equal ranges of it. With
N = 10 that is simply the last digit (``tokens/*3.json`` is shard 3); with N = 4, ranges of the
last two digits (``tokens/{*[0-9][01],*[0-4]2}.json`` is shard 0). k is the fewest digits that
split evenly: 10^k a multiple of N, or at least 10 N (no shard then holds more than 1.1 times
another's share). Why the last digits:

- each document is in exactly one shard, decided by its own name: a user never moves while N
  stays the same, however many users come and go;
- nothing is renamed: documents stored before sharding are found where they are;
- even where it matters: Kakao user ids are large integers handed out in sequence, so their
  last digits are uniform (the leading digits are not: most users share them).

Ids shorter than k digits (never a real Kakao id) belong to shard 0. A single-document
TOKEN_OBJECT has nothing to split: shard 0 holds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import is_decimal
from ..config import USER_ID_PLACEHOLDER
from ..storage.protocol import NamePart, template_prefix

# Characters that mean something in Cloud Storage's glob syntax: a TOKEN_OBJECT holding one is
# listed by its prefix and filtered here instead (no escaping convention is relied on).
_GLOB_SPECIAL = frozenset("*?[]{}\\,!")


@dataclass(frozen=True)
class Shard:
    """Part ``index`` of ``count``: a stable split of the documents by their user ids."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` with 0 <= I < N; ValueError otherwise."""
        index, _, count = text.partition("/")
        if not (is_decimal(index) and is_decimal(count)) or not 0 <= int(index) < int(count):
            raise ValueError("shard must be I/N with 0 <= I < N, e.g. 0/4")
        return cls(int(index), int(count))

    def holds_id(self, digits: str) -> bool:
        """Whether the user id written ``digits`` (as in a document name) is in this shard."""
        if self.count == 1:
            return True
        width = key_digits(self.count)
        if len(digits) < width:
            return self.index == 0
        position = int(digits[-width:][::-1])
        return bool(position * self.count // 10**width == self.index)

    def part(self, template: str) -> NamePart | None:
        """What this shard lists of TOKEN_OBJECT ``template``; None: everything (one shard)."""
        if self.count == 1:
            return None
        prefix = template_prefix(template)
        if USER_ID_PLACEHOLDER not in template:
            return NamePart(prefix, lambda name: self.index == 0 and name == template)
        before, after = template.split(USER_ID_PLACEHOLDER, 1)

        def holds(name: str) -> bool:
            if len(name) <= len(before) + len(after):
                return False
            if not (name.startswith(before) and name.endswith(after)):
                return False
            digits = name[len(before) : len(name) - len(after)]  # as written: "007" too
            return is_decimal(digits) and self.holds_id(digits)

        special = _GLOB_SPECIAL.intersection(before + after)
        return NamePart(prefix, holds, None if special else before + self.glob() + after)

    def glob(self) -> str:
        """The user ids of this shard in Cloud Storage's glob syntax (what replaces ``{user_id}``).

        ``*`` never crosses a ``/``, so ``users/{user_id}/token.json`` keeps its folders.
        """
        width = key_digits(self.count)
        scale = 10**width
        low = -(-self.index * scale // self.count)  # the first position with this index
        high = -(-(self.index + 1) * scale // self.count)
        # Each run of positions as digit classes, the last digit first: reversed to name order.
        ends = [
            "*" + "".join(_digit_class(bounds) for bounds in reversed(pattern))
            for pattern in _ranges(low, high, width)
        ]
        if self.index == 0:  # ids shorter than the key
            ends += ["[0-9]" * length for length in range(1, width)]
        return ends[0] if len(ends) == 1 else "{" + ",".join(ends) + "}"


def key_digits(count: int) -> int:
    """How many trailing digits split ``count`` shards evenly (see the module docstring)."""
    width = 1
    while 10**width % count and 10**width < 10 * count:
        width += 1
    return width


def _ranges(low: int, high: int, width: int) -> list[list[tuple[int, int]]]:
    """Digit-class patterns (most significant first) covering ``low <= x < high``, ``width``
    digits each: at most two partial blocks and one run of whole blocks per digit."""
    if low >= high:
        return []
    if width == 0:
        return [[]]
    unit = 10 ** (width - 1)
    first, last = low // unit, (high - 1) // unit
    if first == last:
        rest = _ranges(low % unit, (high - 1) % unit + 1, width - 1)
        return [[(first, first), *pattern] for pattern in rest]
    head: list[list[tuple[int, int]]] = []
    tail: list[list[tuple[int, int]]] = []
    if low % unit:
        head = [[(first, first), *p] for p in _ranges(low % unit, unit, width - 1)]
        first += 1
    if high % unit:
        tail = [[(last, last), *p] for p in _ranges(0, high % unit, width - 1)]
        last -= 1
    whole = [[(first, last)] + [(0, 9)] * (width - 1)] if first <= last else []
    return head + whole + tail


def _digit_class(bounds: tuple[int, int]) -> str:
    low, high = bounds
    return str(low) if low == high else f"[{low}-{high}]"
