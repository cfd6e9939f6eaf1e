"""A text of any length as numbered parts that Kakao's 200-character text template takes."""

from __future__ import annotations

import re

import pytest

from token_logic.kakao.message_parts import (
    MAX_PARTS,
    kakao_length,
    numbered_parts,
    too_many_parts,
)
from token_logic.kakao.to_owner import templates_for

NUMBER = re.compile(r"\((\d+)/(\d+)\) ")


def bodies(parts: list[str]) -> list[str]:
    """The parts without their numbers, checking the numbers run 1..n."""
    found = [NUMBER.match(part) for part in parts]
    assert all(found)
    assert [(int(m[1]), int(m[2])) for m in found if m] == [
        (i, len(parts)) for i in range(1, len(parts) + 1)
    ]
    return [part[m.end() :] for part, m in zip(parts, found, strict=True) if m]


def test_a_text_that_fits_goes_as_it_is() -> None:
    """200 characters: one part, no number."""
    assert numbered_parts("가" * 200) == ["가" * 200]


def test_201_characters_without_spaces_are_cut_hard_in_two() -> None:
    """No whitespace to cut at: two parts, each at most 200 with its number, the text whole."""
    parts = numbered_parts("가" * 201)

    assert len(parts) == 2 and all(kakao_length(part) <= 200 for part in parts)
    assert "".join(bodies(parts)) == "가" * 201


def test_a_cut_prefers_a_line_break_then_a_space() -> None:
    """A line break in the last half of a part is where it ends; else the last space."""
    lines = "\n".join(["첫 줄 " * 30, "둘째 줄 " * 30])
    parts = numbered_parts(lines)

    assert bodies(parts)[0] == ("첫 줄 " * 30)
    assert all(not body.startswith(" ") for body in bodies(parts)[1:])


def test_emoji_count_as_two_so_no_part_is_too_long() -> None:
    """Characters beyond the BMP count as two (as a UTF-16 string counts them): 150 emoji are
    300 units, so two parts, each at most 200 units with its number."""
    parts = numbered_parts("😀" * 150)

    assert [kakao_length(part) <= 200 for part in parts] == [True, True]
    assert "".join(bodies(parts)) == "😀" * 150


@pytest.mark.parametrize("words", [100, 400, 2000])
def test_many_parts_keep_their_numbers_within_the_limit(words: int) -> None:
    """Texts of 2 to 60-odd parts: every part within 200 with its (widest) number, in order,
    together the whole text (a space between parts where the cut was)."""
    text = " ".join(f"w{n}" for n in range(words))

    parts = numbered_parts(text)

    assert max(kakao_length(part) for part in parts) <= 200
    assert " ".join(bodies(parts)) == text


def test_more_than_max_parts_is_refused_naming_the_limit_and_the_option() -> None:
    """Five parts pass; a sixth makes a refusal that names the count, the limit and the
    caller's option; templates_for refuses it too (ValueError) unless all_parts."""
    five, six = "가" * (190 * MAX_PARTS), "가" * (190 * (MAX_PARTS + 1))
    assert len(numbered_parts(five)) == MAX_PARTS
    assert len(numbered_parts(six)) == MAX_PARTS + 1

    refusal = too_many_parts(six, "--all-parts")

    assert too_many_parts(five, "--all-parts") == ""
    assert "6 messages" in refusal and f"limit of {MAX_PARTS}" in refusal
    assert "--all-parts" in refusal
    with pytest.raises(ValueError, match="all_parts=True"):
        templates_for(six, None, "https://example.com")
    assert len(templates_for(six, None, "https://example.com", all_parts=True)) == 6
