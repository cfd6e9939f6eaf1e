"""A stand-in for the GitHub CLI as the release's scripts use it: `gh api` on a repository's
tags and commits, `gh release view` and `gh release create`, over a JSON state file.

State (FAKE_GH_STATE): {"tags": {name: commit}, "releases": [name]}; "down": true makes every
call fail as an outage does.
Every call that changes something is appended to FAKE_GH_WRITES as one JSON line. `--jq` is
applied by the real jq, raw, as gh does. ``install(bin_dir)`` puts a `gh` there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


def install(bin_dir: Path) -> Path:
    """A `gh` in ``bin_dir`` that runs this module with this interpreter."""
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\nexec "{sys.executable}" -P "{HERE}" "$@"\n')
    gh.chmod(0o755)
    return gh


def main(argv: list[str]) -> int:
    state_file = Path(os.environ["FAKE_GH_STATE"])
    state: dict[str, Any] = json.loads(state_file.read_text())
    if state.get("down"):
        print("gh: HTTP 502: Server Error", file=sys.stderr)
        return 1
    if argv[:2] == ["release", "view"]:
        return 0 if argv[2] in state["releases"] else 1
    if argv[:2] == ["release", "create"]:
        tag, target = argv[2], argv[argv.index("--target") + 1]
        state["tags"].setdefault(tag, target)
        state["releases"].append(tag)
        record(state_file, state, {"release": tag, "target": target})
        return 0
    if argv[0] != "api":
        print(f"fake gh: no such command {argv}", file=sys.stderr)
        return 2
    return api(state_file, state, argv[1:])


def api(state_file: Path, state: dict[str, Any], args: list[str]) -> int:
    method, jq, fields, path = "GET", None, {}, ""
    rest = iter(args)
    for arg in rest:
        if arg == "--method":
            method = next(rest)
        elif arg == "--jq":
            jq = next(rest)
        elif arg in ("-f", "-F"):
            key, _, value = next(rest).partition("=")
            fields[key] = value
        elif arg == "--paginate":
            continue
        else:
            path = arg
    parts = path.split("/")  # repos OWNER REPO ...
    tail = "/".join(parts[3:])
    tags: dict[str, str] = state["tags"]
    if method == "GET" and tail.startswith("git/matching-refs/tags/"):
        prefix = tail.removeprefix("git/matching-refs/tags/")
        answer: Any = [
            {"ref": f"refs/tags/{name}", "object": {"sha": sha, "type": "commit"}}
            for name, sha in sorted(tags.items())
            if name.startswith(prefix)
        ]
    elif method == "GET" and tail.startswith("commits/"):
        ref = tail.removeprefix("commits/")
        if ref not in tags:
            print("gh: No commit found for SHA: " + ref + " (HTTP 422)", file=sys.stderr)
            return 1
        answer = {"sha": tags[ref]}
    elif method == "POST" and tail == "git/refs":
        name = fields["ref"].removeprefix("refs/tags/")
        if name in tags:
            print("gh: Reference already exists (HTTP 422)", file=sys.stderr)
            return 1
        tags[name] = fields["sha"]
        record(state_file, state, {"create": fields["ref"], "sha": fields["sha"]})
        answer = {"ref": fields["ref"]}
    elif method == "PATCH" and tail.startswith("git/refs/tags/"):
        name = tail.removeprefix("git/refs/tags/")
        tags[name] = fields["sha"]
        record(state_file, state, {"move": f"refs/tags/{name}", "sha": fields["sha"]})
        answer = {"ref": f"refs/tags/{name}"}
    else:
        print(f"fake gh: no such call {method} {path}", file=sys.stderr)
        return 2
    text = json.dumps(answer)
    if jq is None:
        print(text)
        return 0
    return subprocess.run(["jq", "-r", jq], input=text, text=True, check=False).returncode


def record(state_file: Path, state: dict[str, Any], write: dict[str, str]) -> None:
    state_file.write_text(json.dumps(state))
    with open(os.environ["FAKE_GH_WRITES"], "a") as writes:
        writes.write(json.dumps(write) + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
