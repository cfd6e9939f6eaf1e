"""The reader's language, and words written in Korean and English to say things in it.

What the client tells a person (the ``kakao-token`` command, ``get_access_token()``'s errors,
the GitHub Action's lines) is written in both languages and said in the reader's, chosen once
at the edge from the environment: ``KAKAO_TOKEN_LANG`` (``ko`` or ``en``) when set; else the
locale as POSIX reads it, the first of LC_ALL, LC_MESSAGES and LANG that is set: ``ko...``
(ko_KR.UTF-8) is Korean, anything else (C, POSIX, en_US.UTF-8, unset) English.

A one-line error stays one line: two languages on one line double a message that already
carries its fix, and a terminal wraps it into a paragraph read twice. Where the environment
says nothing about the reader, the edge asks for both instead (the Action: a runner's locale is
C whoever reads its log), one line each, Korean first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

LANGUAGE_VARIABLE = "KAKAO_TOKEN_LANG"
_LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")

Language = Literal["ko", "en"]
# The languages a message is said in, one line each, in this order.
Languages = tuple[Language, ...]
KOREAN: Languages = ("ko",)
ENGLISH: Languages = ("en",)
BOTH: Languages = ("ko", "en")


def languages_from(environ: Mapping[str, str], default: Languages | None = None) -> Languages:
    """The reader's language: KAKAO_TOKEN_LANG when it names one, else ``default`` when given
    (the caller knows better than the locale), else the locale's."""
    chosen = environ.get(LANGUAGE_VARIABLE, "").strip().lower()
    if chosen.startswith(("ko", "en")):
        return KOREAN if chosen.startswith("ko") else ENGLISH
    if default is not None:
        return default
    for name in _LOCALE_VARIABLES:
        value = environ.get(name, "")
        if value:  # POSIX: the first one set decides, even "C"
            return KOREAN if value.lower().startswith("ko") else ENGLISH
    return ENGLISH


@dataclass(frozen=True)
class Words:
    """One message, in Korean and in English (each on one line)."""

    ko: str
    en: str

    def said(self, languages: Languages) -> str:
        """The message in ``languages``: one line each, in their order."""
        return "\n".join(self.ko if language == "ko" else self.en for language in languages)
