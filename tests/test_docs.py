"""The README is a short front door and docs/ holds the reference, in Korean (docs/ko/) and
English (docs/en/): every link lands on a file and a heading, every page has its twin in the
other language, every shell block parses, and every command they name exists."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT
from token_logic.__main__ import main as store_cli
from token_logic.client.cli import main as installed_cli

README = ROOT / "README.md"
DOCS = ROOT / "docs"
LANGUAGES = ("ko", "en")
MAX_README_LINES = 260
SHELLS = ("sh", "bash", "shell")


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, its code (dedented) and where it starts."""

    language: str
    code: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [README, *sorted(DOCS.rglob("*.md"))]


FENCE = re.compile(r"^(\s*)(```+)\s*([\w-]*)\s*$")


def split_fences(path: Path) -> tuple[list[Block], str]:
    """The fenced blocks of ``path``, and its text with those blocks blanked out (line numbers
    kept)."""
    blocks: list[Block] = []
    prose: list[str] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            prose.append(lines[index])
            index += 1
            continue
        indent, fence, language = opening.groups()
        start, body = index + 1, []
        index += 1
        while index < len(lines) and lines[index].strip() != fence:
            body.append(lines[index].removeprefix(indent))
            index += 1
        blocks.append(Block(language, "\n".join(body) + "\n", path, start))
        prose.extend([""] * (len(body) + 2))
        index += 1
    return blocks, "\n".join(prose)


def prose_of_with_code(path: Path) -> str:
    """The text outside code blocks and HTML comments, inline code kept."""
    return re.sub(r"<!--.*?-->", "", split_fences(path)[1], flags=re.DOTALL)


def prose_of(path: Path) -> str:
    """The text outside code blocks, inline code and HTML comments."""
    text = split_fences(path)[1]
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def blocks_of(languages: Sequence[str] | None = None) -> list[Block]:
    return [
        block
        for path in pages()
        for block in split_fences(path)[0]
        if languages is None or block.language in languages
    ]


def inline_code(path: Path) -> list[str]:
    text = re.sub(r"<!--.*?-->", "", split_fences(path)[1], flags=re.DOTALL)
    return re.findall(r"`([^`\n]+)`", text)


# Links and anchors.

LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text lowercased, punctuation but '-' and '_'
    dropped, each space a '-'; letters of every script (Korean too) kept."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in "-_ ")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in ``path``; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in split_fences(path)[1].splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading is None:
            continue
        slug = github_slug(heading.group(1))
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"<!--.*?-->", "", split_fences(path)[1], flags=re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    return [
        target
        for target in LINK.findall(text)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)  # https:, mailto:
    ]


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no such heading")
    return broken


def test_the_readme_is_a_front_door() -> None:
    """At most 260 lines: what it is, the two commands, the way to a first memo, and where to
    read more."""
    lines = README.read_text().splitlines()

    assert len(lines) <= MAX_README_LINES


@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_lands_on_a_file_and_a_heading(path: Path) -> None:
    """A relative link names a file that exists; its #anchor, a heading of that file by
    GitHub's rules."""
    assert broken_links(path) == []


def test_the_link_check_finds_broken_links(tmp_path: Path) -> None:
    """The check above does catch a missing file and a missing heading, and reads Korean
    headings as GitHub does."""
    (tmp_path / "other.md").write_text("# 오류 / Errors\n## Who answered?\n## Who answered?\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[a](other.md#오류--errors) [b](other.md#who-answered-1) [c](gone.md) "
        "[d](other.md#nowhere) `[e](inline.md)` <https://example.com> [f](https://x.y/z)\n"
        "```sh\n[g](in-code.md)\n```\n"
    )

    assert broken_links(page) == ["gone.md: no such file", "other.md#nowhere: no such heading"]


def test_every_page_has_its_twin_in_the_other_language() -> None:
    """docs/ko/ and docs/en/ hold the same file names, nothing else lies beside them, and each
    page links to its twin at the top."""
    names = {language: {p.name for p in (DOCS / language).glob("*.md")} for language in LANGUAGES}
    stray = [p for p in DOCS.rglob("*.md") if p.parent.name not in LANGUAGES]

    assert names["ko"] == names["en"] and names["en"]
    assert stray == []
    for language, other in (("ko", "en"), ("en", "ko")):
        for name in names[language]:
            top = "\n".join((DOCS / language / name).read_text().splitlines()[:5])
            assert f"](../{other}/{name})" in top, f"docs/{language}/{name}"


def test_the_readme_links_every_page_in_both_languages() -> None:
    """The "where to read more" table reaches every page, Korean and English."""
    links = set(relative_links(README))

    for page in sorted(DOCS.rglob("*.md")):
        assert str(page.relative_to(ROOT)) in links


def hangul_share(path: Path) -> float:
    """Of the letters in the prose (code left out), the share that is Hangul."""
    prose = prose_of(path)
    hangul = sum(1 for c in prose if "\uac00" <= c <= "\ud7a3")
    latin = sum(1 for c in prose if c.isascii() and c.isalpha())
    return hangul / max(hangul + latin, 1)


@pytest.mark.parametrize("name", sorted(p.name for p in (DOCS / "ko").glob("*.md")))
def test_korean_pages_are_korean_and_english_pages_english(name: str) -> None:
    """A Korean page is written in Korean (not an English copy); an English page names Korean
    console menus, nothing more."""
    assert hangul_share(DOCS / "ko" / name) > 0.5
    assert hangul_share(DOCS / "en" / name) < 0.15


OLD_CONSOLE = ["앱 키 > REST API 키", "활성화 설정", "보안 > Client Secret", "앱 키 > Admin 키"]


@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_sends_people_to_the_old_consoles_menus(path: Path) -> None:
    """Kakao's console was rebuilt on 2025-12-03: its old menus no longer exist."""
    text = path.read_text()

    assert [menu for menu in OLD_CONSOLE if menu in text] == []


# What the pages say a default is.


def configuration_row(language: str, variable: str) -> list[str]:
    """The cells of ``variable``'s row in docs/{language}/configuration.md's first table."""
    text = (DOCS / language / "configuration.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| `{variable}` |"))
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_memo_links_default_is_the_callbacks_done_page(language: str) -> None:
    """KAKAO_MEMO_LINK unset is the callback's done page (config.done_address), not Kakao
    Developers: the configuration table says so, and no page calls Kakao Developers the
    default."""
    from token_logic.config import Settings

    settings = Settings.from_env(
        {"KAKAO_REST_API_KEY": "k", "KAKAO_REDIRECT_URI": "https://cb.example"}
    )
    default = configuration_row(language, "KAKAO_MEMO_LINK")[2]
    stale = [
        f"{path.relative_to(ROOT)}: {found.group(0)}"
        for path in pages()
        for found in re.finditer(
            r"(기본값|default)[^.|]*`https://developers\.kakao\.com`",
            re.sub(r"\s+", " ", prose_of_with_code(path)),
        )
    ]

    assert settings.memo_link == "https://cb.example?login=done"
    assert "?login=done" in default and "developers.kakao.com" not in default
    assert stale == []


def test_the_readmes_first_message_is_the_actions_text_as_deploy_sh_prints_it() -> None:
    """Step 7's workflow sends with the Action's `text` input, as the workflow deploy.sh prints
    and examples/kakao-memo.yml do; no hand-written template_object is left to copy."""
    workflows = [b.code for b in split_fences(README)[0] if b.language == "yaml"]
    printed = (ROOT / "deploy.sh").read_text()
    example = (ROOT / "examples" / "kakao-memo.yml").read_text()

    assert len(workflows) == 1
    for workflow in (workflows[0], printed, example):
        assert re.search(r"^ +text: ", workflow, re.MULTILINE)
    assert "template_object" not in workflows[0]


# Shell blocks.


@pytest.mark.parametrize("block", blocks_of(SHELLS), ids=str)
def test_every_shell_block_parses(block: Block) -> None:
    """Every ```sh / ```bash block is at least valid bash (bash -n)."""
    result = subprocess.run(
        ["bash", "-n"], input=block.code, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr


def test_the_readmes_commands_are_what_ci_runs() -> None:
    """The README's two commands are `make run` and the very test command .ci/run runs."""
    ci = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip().startswith("make ")
    ]
    readme = {
        line.split("#")[0].strip()
        for block in split_fences(README)[0]
        if block.language in SHELLS
        for line in block.code.splitlines()
    }

    assert ci and set(ci) <= readme
    assert "make run" in readme


# Commands named in code.


@dataclass(frozen=True)
class Grammar:
    """What a command accepts: options (True: it takes a value), subcommands (empty: none
    required), and each subcommand's options."""

    options: dict[str, bool]
    subcommands: dict[str, dict[str, bool]]


ARGPARSE_OPTION = re.compile(r"(?<![\w-])(-{1,2}[\w-]+)( [A-Z_]+)?")


def _help(main: Callable[[list[str]], object], argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(argv)
    return out.getvalue()


def _argparse_options(help_text: str) -> dict[str, bool]:
    section = help_text.split("options:", 1)[1]
    options: dict[str, bool] = {}
    for line in section.splitlines():
        if re.match(r"^\s{1,4}-", line):
            for name, metavar in ARGPARSE_OPTION.findall(line.split("  ", 2)[1]):
                options[name] = bool(metavar)
    return options


def argparse_grammar(main: Callable[[list[str]], object]) -> Grammar:
    """Read from the command's own --help and each subcommand's --help."""
    top = _help(main, ["--help"])
    choices = re.search(r"\{([\w,-]+)\}", top)
    assert choices is not None, top
    return Grammar(
        _argparse_options(top),
        {name: _argparse_options(_help(main, [name, "--help"])) for name in choices[1].split(",")},
    )


@cache
def grammars() -> dict[str, Grammar]:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", makefile, re.MULTILINE))
    usage = subprocess.run(
        ["bash", str(ROOT / "deploy.sh"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    usage_lines = usage.split("\n\n")[0].splitlines()  # "Usage: ./deploy.sh ..." and its forms
    flags = {"-h": False, "--help": False}
    subcommands: dict[str, dict[str, bool]] = {}
    for line in usage_lines:
        found = {n: bool(m) for n, m in re.findall(r"(--[\w-]+)( [A-Z_]+)?", line)}
        sub = re.search(r"\./deploy\.sh ([a-z][\w-]*)", line)
        if sub:
            subcommands[sub[1]] = found | {"-h": False, "--help": False}
        else:
            flags |= found
    return {
        "python -m token_logic": argparse_grammar(store_cli),
        "kakao-token": argparse_grammar(installed_cli),
        "make": Grammar({}, {t: {} for t in targets}),
        "./deploy.sh": Grammar(flags, subcommands),
    }


SHELL_OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "2>", "<", ")"}


def at_command_position(words: list[str], index: int) -> bool:
    """Whether ``words[index]`` is run, not an argument (`gcloud functions ... kakao-token`)
    or a package (`pipx install kakao-token`)."""
    before = words[index - 1] if index else ""
    return (
        index == 0
        or before in SHELL_OPERATORS
        or before in ("uvx", "exec", "then", "do")
        or words[max(index - 2, 0) : index] == ["pipx", "run"]
        or re.fullmatch(r"[A-Za-z_]\w*=.*", before) is not None  # VARIABLE=value program
    )


def commands_in(line: str) -> list[tuple[str, list[str]]]:
    """(program, its arguments) for each of our programs run on ``line`` (a shell line)."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # a line inside a multi-line quote: nothing of ours starts there
        return []
    found = []
    for index, word in enumerate(words):
        if re.fullmatch(r"(\S*/)?python3?", word) and words[index + 1 : index + 3] == [
            "-m",
            "token_logic",
        ]:
            program, start = "python -m token_logic", index + 3
        elif word in ("kakao-token", "make", "./deploy.sh") and at_command_position(words, index):
            program, start = word, index + 1
        else:
            continue
        arguments = []
        for argument in words[start:]:
            if argument in SHELL_OPERATORS or argument.rstrip(";") != argument:
                break
            arguments.append(argument)
        found.append((program, arguments))
    return found


def unknown_arguments(program: str, arguments: list[str]) -> list[str]:
    """What ``program`` would refuse among ``arguments`` (values of options left alone)."""
    grammar = grammars()[program]
    if program == "make":
        return [
            a
            for a in arguments
            if "=" not in a and not a.startswith("-") and a not in grammar.subcommands
        ]
    unknown: list[str] = []
    options, subcommand = grammar.options, None
    words = iter(arguments)
    for word in words:
        if word.startswith("-"):
            name = word.split("=")[0]
            if name not in options:
                unknown.append(word)
                break  # whether it takes a value is unknown
            if options[name] and "=" not in word:
                next(words, None)
        elif subcommand is None and grammar.subcommands:
            subcommand = word
            if word not in grammar.subcommands:
                unknown.append(word)
                break
            options = grammar.subcommands[word]
    return unknown


def shell_lines() -> list[tuple[str, str]]:
    """(where, line) for every line of code in the pages: fenced blocks (continuations joined)
    and inline code."""
    lines = []
    for block in blocks_of((*SHELLS, "yaml")):  # not the diagrams
        joined = block.code.replace("\\\n", " ")
        lines += [(str(block), line) for line in joined.splitlines()]
    for path in pages():
        lines += [(str(path.relative_to(ROOT)), span) for span in inline_code(path)]
    return lines


def test_every_command_in_the_pages_names_a_real_subcommand_flag_or_target() -> None:
    """`python -m token_logic ...`, `kakao-token ...`, `make ...` and `./deploy.sh ...` in the
    pages' code name subcommands, flags and targets that exist (read from --help, the Makefile
    and deploy.sh's usage)."""
    checked, wrong = 0, []
    for where, line in shell_lines():
        for program, arguments in commands_in(line):
            checked += 1
            unknown = unknown_arguments(program, arguments)
            if unknown:
                wrong.append(f"{where}: {program} {' '.join(arguments)}: {unknown}")

    assert wrong == []
    assert checked > 40


def test_the_command_check_finds_made_up_commands() -> None:
    """The check above does catch a subcommand, a flag and a target that do not exist, and
    leaves installs and option values alone."""
    lines = [
        "python -m token_logic refresh --forced",
        "kakao-token acces-token",
        "WORKERS=0 make tests",
        "./deploy.sh --env prod.env",
        "pipx install kakao-token && kakao-token status",
        "gcloud functions delete kakao-token --region=asia-northeast3",
        ".venv/bin/python -m token_logic --user 1234 status --json",
        "./deploy.sh --env-file prod.env | tee deploy.log",
    ]

    found = [(p, unknown_arguments(p, a)) for line in lines for p, a in commands_in(line)]

    assert found == [
        ("python -m token_logic", ["--forced"]),
        ("kakao-token", ["acces-token"]),
        ("make", ["tests"]),
        ("./deploy.sh", ["--env"]),
        ("kakao-token", []),
        ("python -m token_logic", []),
        ("./deploy.sh", []),
    ]
