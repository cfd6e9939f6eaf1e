"""Run by gcloud's own Python (tests/test_deploy.py): each command of a JSON file through one
real gcloud CLI, loaded once, as ``gcloud ARGS...`` would run it without credentials.

Prints a JSON list with each command's exit status and what it wrote to stderr. One process
instead of one per command: loading gcloud costs about a second of CPU, and the deploy tests
check a hundred commands. ``CLI.Execute`` is what the ``gcloud`` command itself calls.
"""

import io
import json
import os
import sys

from googlecloudsdk import gcloud_main  # type: ignore[import-not-found]
from googlecloudsdk.core import log  # type: ignore[import-not-found]


def main(path: str) -> None:
    with open(path) as listed:
        commands = json.load(listed)
    cli = gcloud_main.CreateCLI([])
    answers = []
    answer_to = sys.stdout  # what a command prints is not the answer
    for args in commands:
        stderr = io.StringIO()
        log.Reset(io.StringIO(), stderr)  # gcloud's console writers, bound to this command
        sys.stdout = io.StringIO()
        sys.stdin = open(os.devnull)  # noqa: SIM115 - as the subprocess had: nothing to read
        status = 0
        try:
            cli.Execute(list(args))
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        answers.append([status, stderr.getvalue()])
    answer_to.write(json.dumps(answers))


if __name__ == "__main__":
    main(sys.argv[1])
